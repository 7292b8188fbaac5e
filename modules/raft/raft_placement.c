/*  raft_placement: ring-driven placement (see the header).

    Everything here is a reconciliation loop over state that is already
    replicated (the meta group's membership, the ring's table, each data
    group's configuration), so that a lost message, a lost leadership or a
    restart only delays the next step: nothing is remembered that cannot be
    derived again, except the dedup pair of the one ring command in flight
    and the answers owed to drain requests.
*/
#include "raft_placement.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "titan/log.h"
#include "titan/bus_types.h"
#include "titan/status.h"
#include "bus.pb-c.h"
#include "ring_member.h"
#include "ring_propose.h"
#include "ring_table.h"
#include "raft_group.h"
#include "raft_members.h"

#define TABLE_ASK_MS      1000      /* ring.table asked again while none */
#define CMD_RETRY_MS      3000      /* a ring command not applied by then */
#define CMD_SETTLE_MS     1000      /* an applied one shows in the table */
#define DRAINS_MAX        8
#define HEARD_MAX         16        /* LEFT / READY notices kept */
#define NOTICE_MS         1000      /* NOT_MEMBER per (node, group) */
#define NOTICES_MAX       64
#define NOTIFY_EVERY_MS   1000      /* LEFT / READY to the meta leader */
#define DROP_RETRY_MS     2000
#define DROP_RETRY_MAX_MS 30000
#define BOOT_MARKER       "ring-bootstrap"
#define PROBE_MS          1000      /* a stale replica asks its group */

/*  A ring command this node proposed to the meta group.  */
typedef struct {
    ring_cmd_t cmd;
    uint64_t seq;                /* dedup sequence */
    uint64_t index, term;        /* its entry; 0: not proposed (yet) */
    int64_t proposed_at;
    titan_envelope_t *env;       /* drain: raft.member_remove to answer */
} s_cmd_t;

/*  A storage drop (kv.drop_shard) still to be acknowledged.  */
typedef struct {
    uint32_t shard;
    uint64_t corr;               /* in flight; 0: none */
    int64_t next;                /* next attempt */
    int64_t interval;
    bool logged;
} s_drop_t;

typedef struct {
    char key [RAFT_NODE_ID_MAX + 24];
    int64_t at;
} s_notice_t;

/*  Nodes the meta leader heard a LEFT or READY notice from.  */
typedef struct {
    char ids [HEARD_MAX][RAFT_NODE_ID_MAX + 1];
    size_t size;
} s_heard_t;

struct raft_placement {
    raft_placement_config_t cfg;
    char *raft_dir;
    char *storage_module;
    char client_id [RAFT_NODE_ID_MAX + 16];
    uint64_t seq;

    Titan__Bus__RingTable *msg;  /* the newest table as received */
    ring_table_t *table;         /* its decoded placement */
    uint64_t table_corr;         /* ring.table request in flight */
    int64_t table_asked_at;
    bool table_new;              /* run the duty at once */

    s_cmd_t derived;             /* CREATE / ADD / REMOVE in flight */
    int64_t derived_at;          /* when the last one was applied */
    s_cmd_t drains [DRAINS_MAX];
    size_t n_drains;
    s_heard_t left;              /* leaving nodes that hold no replica */
    s_heard_t ready;             /* joining nodes that vote in their shards */

    s_drop_t *drops;
    size_t n_drops;
    uint32_t *evicted;           /* NOT_MEMBER received for these groups */
    size_t n_evicted;
    s_notice_t notices [NOTICES_MAX];
    size_t next_notice;

    int64_t next_duty;
    int64_t probed_at;
    bool probe_due;
    int64_t left_sent_at;
    int64_t ready_sent_at;
    bool removed_logged;
    uint64_t moves;
};

/* ------------------------------------------------------------ table */

/*  The member `id` of the newest table, or NULL.  */
static const Titan__Bus__RingNode *
s_node (raft_placement_t *self, const char *id)
{
    for (size_t i = 0; self->msg && i < self->msg->n_nodes; i++)
        if (self->msg->nodes [i]->node_id && streq (self->msg->nodes [i]->node_id, id))
            return self->msg->nodes [i];
    return NULL;
}

static bool
s_node_in_state (raft_placement_t *self, const char *id, ring_state_t state)
{
    const Titan__Bus__RingNode *n = s_node (self, id);
    return n && n->state && streq (n->state, ring_state_name (state));
}

/*  Takes a RingTable (event or reply) when its epoch is the newest.  */
static void
s_take_table (raft_placement_t *self, const titan_envelope_t *env)
{
    Titan__Bus__RingTable *m = titan__bus__ring_table__unpack (NULL,
        titan_envelope_size (env), titan_envelope_data (env));
    if (!m || m->code != TITAN__BUS__CODE__OK) {
        if (m)
            titan__bus__ring_table__free_unpacked (m, NULL);
        return;                      /* no cluster yet: asked again later */
    }
    if (self->msg && m->epoch <= self->msg->epoch
    &&  m->applied_index <= self->msg->applied_index) {
        titan__bus__ring_table__free_unpacked (m, NULL);
        return;
    }
    ring_table_t *table = NULL;
    char err [160] = "";
    if (ring_table_decode (m->table.data, m->table.len, &table, err, sizeof err)) {
        titan_log_warning ("raft %s: routing table of epoch %" PRIu64 " refused: %s",
                           self->cfg.self.node_id, m->epoch, err);
        titan__bus__ring_table__free_unpacked (m, NULL);
        return;
    }
    if (self->msg)
        titan__bus__ring_table__free_unpacked (self->msg, NULL);
    ring_table_destroy (&self->table);
    self->msg = m;
    self->table = table;
    self->table_new = true;
    titan_log_info ("raft %s: routing table of epoch %" PRIu64 " (%u shards, %u "
                    "replicas, %u nodes hold replicas)", self->cfg.self.node_id,
                    m->epoch, ring_table_shards (table), ring_table_replicas (table),
                    ring_table_nodes (table));
}

static void
s_ask_table (raft_placement_t *self)
{
    int64_t now = zclock_mono ();
    if (self->table || (self->table_asked_at && now - self->table_asked_at < TABLE_ASK_MS))
        return;
    Titan__Bus__RingTableRequest req = TITAN__BUS__RING_TABLE_REQUEST__INIT;
    uint8_t buf [8];
    size_t len = titan__bus__ring_table_request__pack (&req, buf);
    self->table_asked_at = now;
    if (titan_bus_request (self->cfg.bus, "ring", TITAN_T_RING_TABLE, buf, len,
                           &self->table_corr))
        self->table_corr = 0;
}

/*  The replicas of `shard` with their addresses into `out` (at most
    RAFT_MAX_MEMBERS); returns how many, and whether self is one.  */
static size_t
s_desired (raft_placement_t *self, uint32_t shard, raft_wire_node_t *out,
           bool *self_in)
{
    *self_in = false;
    size_t n = 0;
    uint32_t size = ring_table_shard_size (self->table, shard);
    for (uint32_t rank = 0; rank < size && n < RAFT_MAX_MEMBERS; rank++) {
        const char *id = ring_table_replica (self->table, shard, rank);
        const Titan__Bus__RingNode *node = s_node (self, id);
        if (!node)
            continue;
        raft_wire_node_t *w = &out [n++];
        memset (w, 0, sizeof *w);
        snprintf (w->node_id, sizeof w->node_id, "%s", id);
        snprintf (w->peer_addr, sizeof w->peer_addr, "%s",
                  node->peer_addr ? node->peer_addr : "");
        snprintf (w->client_addr, sizeof w->client_addr, "%s",
                  node->client_addr ? node->client_addr : "");
        if (streq (id, self->cfg.self.node_id))
            *self_in = true;
    }
    return n;
}

/* ------------------------------------------------------------ commands */

static raft_group_t *
s_meta (raft_placement_t *self)
{
    return raft_groups_find (self->cfg.groups, TITAN_META_SHARD);
}

static bool
s_meta_leader (raft_placement_t *self)
{
    raft_group_t *meta = s_meta (self);
    return meta && raft_role (raft_group_core (meta)) == RAFT_LEADER;
}

/*  Proposes `c` (again, with its own dedup pair) when it is not in the
    log or its entry was lost; true once applied.  */
static bool
s_cmd_step (raft_placement_t *self, s_cmd_t *c)
{
    raft_group_t *meta = s_meta (self);
    if (!meta)
        return false;
    if (c->index && raft_group_applied_entry (meta, c->index, c->term))
        return true;
    int64_t now = zclock_mono ();
    if (c->index && now - c->proposed_at < CMD_RETRY_MS)
        return false;
    uint8_t *data = NULL;
    size_t size = 0;
    int rc = ring_propose_payload (&c->cmd, self->client_id, c->seq, &data, &size);
    if (rc == 0)
        rc = raft_group_propose_local (meta, data, size, &c->index, &c->term);
    free (data);
    if (rc == 0)
        c->proposed_at = now;
    else
        c->index = 0;
    return false;
}

static void
s_cmd_init (raft_placement_t *self, s_cmd_t *c, const ring_cmd_t *cmd)
{
    memset (c, 0, sizeof *c);
    c->cmd = *cmd;
    c->seq = ++self->seq;
}

static void
s_reply_member (raft_placement_t *self, titan_envelope_t **env_p, int code,
                const char *message, uint64_t index)
{
    Titan__Bus__RaftMemberReply r = TITAN__BUS__RAFT_MEMBER_REPLY__INIT;
    r.code = (Titan__Bus__Code) code;
    r.message = (char *) message;
    r.index = index;
    size_t len = titan__bus__raft_member_reply__get_packed_size (&r);
    uint8_t *buf = malloc (len + 1);
    if (buf) {
        titan__bus__raft_member_reply__pack (&r, buf);
        titan_bus_reply (self->cfg.bus, *env_p, buf, len);
        free (buf);
    }
    titan_envelope_destroy (env_p);
}

/*  Whether a member other than `id` can hold replicas (joining or
    active): a drain must leave one.  */
static bool
s_holders_besides (raft_placement_t *self, const char *id)
{
    for (size_t i = 0; i < self->msg->n_nodes; i++) {
        const char *other = self->msg->nodes [i]->node_id;
        if (other && !streq (other, id)
        &&  (s_node_in_state (self, other, RING_JOINING)
             || s_node_in_state (self, other, RING_ACTIVE)))
            return true;
    }
    return false;
}

void
raft_placement_drain (raft_placement_t *self, titan_envelope_t **env_p)
{
    raft_group_t *meta = s_meta (self);
    Titan__Bus__RaftMemberChange *c = titan__bus__raft_member_change__unpack (
        NULL, titan_envelope_size (*env_p), titan_envelope_data (*env_p));
    char why [256] = "";
    ring_cmd_t cmd;
    if (!c || ring_cmd_set_state (&cmd, c->node_id, RING_LEAVING, why, sizeof why))
        s_reply_member (self, env_p, TITAN__BUS__CODE__INVALID_ARGUMENT,
                        *why ? why : "raft: malformed RaftMemberChange", 0);
    else
    if (!meta)
        s_reply_member (self, env_p, TITAN__BUS__CODE__UNAVAILABLE,
                        "raft: the meta group is not hosted here", 0);
    else
    if (!s_meta_leader (self))
        /* refused with the meta leader's hint */
        raft_group_member_change (meta, env_p);
    else
    if (!self->msg || !s_node (self, c->node_id)
    ||  s_node_in_state (self, c->node_id, RING_REMOVED)) {
        snprintf (why, sizeof why, "raft: node '%s' is not a member of the ring",
                  c->node_id);
        s_reply_member (self, env_p, TITAN__BUS__CODE__NOT_FOUND, why, 0);
    }
    else
    if (!s_holders_besides (self, c->node_id)) {
        snprintf (why, sizeof why, "raft: node '%s' is the last member that "
                  "can hold replicas: draining it would leave the data nowhere",
                  c->node_id);
        s_reply_member (self, env_p, TITAN__BUS__CODE__FAILED_PRECONDITION,
                        why, 0);
    }
    else
    if (self->n_drains == DRAINS_MAX)
        s_reply_member (self, env_p, TITAN__BUS__CODE__UNAVAILABLE,
                        "raft: too many drains in progress; retry", 0);
    else {
        s_cmd_t *d = &self->drains [self->n_drains++];
        s_cmd_init (self, d, &cmd);
        d->env = *env_p;
        *env_p = NULL;
        titan_log_info ("raft %s: draining node '%s'", self->cfg.self.node_id,
                        c->node_id);
        s_cmd_step (self, d);
    }
    if (c)
        titan__bus__raft_member_change__free_unpacked (c, NULL);
}

static void
s_drain_duty (raft_placement_t *self)
{
    bool leader = s_meta_leader (self);
    for (size_t i = 0; i < self->n_drains; ) {
        s_cmd_t *d = &self->drains [i];
        if (!leader) {
            s_reply_member (self, &d->env, TITAN__BUS__CODE__UNAVAILABLE,
                            "raft: lost the meta group's leadership; retry", 0);
            *d = self->drains [--self->n_drains];
            continue;
        }
        if (s_cmd_step (self, d)) {
            s_reply_member (self, &d->env, TITAN__BUS__CODE__OK, "", d->index);
            *d = self->drains [--self->n_drains];
            continue;
        }
        i++;
    }
}

static bool
s_heard (const s_heard_t *set, const char *id)
{
    for (size_t i = 0; i < set->size; i++)
        if (streq (set->ids [i], id))
            return true;
    return false;
}

/*  Adds `id`; false when it was there already or the set is full.  */
static bool
s_heard_add (s_heard_t *set, const char *id)
{
    if (s_heard (set, id) || set->size == HEARD_MAX)
        return false;
    snprintf (set->ids [set->size++], RAFT_NODE_ID_MAX + 1, "%s", id);
    return true;
}

/*  Forgets the ids whose node is no longer in `state` in the table (the
    notice did its work, or the node moved on), so the set never fills.  */
static void
s_heard_prune (raft_placement_t *self, s_heard_t *set, ring_state_t state)
{
    for (size_t i = 0; i < set->size; )
        if (s_node_in_state (self, set->ids [i], state))
            i++;
        else
            memcpy (set->ids [i], set->ids [--set->size], sizeof set->ids [i]);
}

/*  The next command that brings the ring in step with the meta group,
    into *cmd; false when there is none.  */
static bool
s_next_derived (raft_placement_t *self, raft_group_t *meta, ring_cmd_t *cmd)
{
    if (!self->msg)
        return self->cfg.bootstrap
            && ring_cmd_create (cmd, self->cfg.create_shards,
                                self->cfg.create_replicas, NULL, 0) == 0;
    /* every meta member is a ring member */
    Titan__Bus__RaftGroupStatus st = TITAN__BUS__RAFT_GROUP_STATUS__INIT;
    raft_group_status (meta, &st);
    for (size_t i = 0; i < st.n_members; i++) {
        const Titan__Bus__RaftMember *m = st.members [i];
        if (!m->node_id || s_node (self, m->node_id))
            continue;
        if (ring_cmd_add (cmd, m->node_id, m->client_addr, m->peer_addr,
                          NULL, 0) == 0)
            return true;
    }
    /* a joining node that votes in every shard placed on it; a leaving
       node that holds no replica any more */
    s_heard_prune (self, &self->ready, RING_JOINING);
    s_heard_prune (self, &self->left, RING_LEAVING);
    if (self->ready.size)
        return ring_cmd_set_state (cmd, self->ready.ids [0], RING_ACTIVE,
                                   NULL, 0) == 0;
    if (self->left.size)
        return ring_cmd_remove (cmd, self->left.ids [0], NULL, 0) == 0;
    return false;
}

/*  Meta leader: one ring command at a time; then the meta group follows
    the ring's removals.  */
static void
s_membership_duty (raft_placement_t *self)
{
    raft_group_t *meta = s_meta (self);
    if (!meta || !s_meta_leader (self)) {
        self->derived.index = 0;
        self->derived.cmd.type = 0;
        return;
    }
    int64_t now = zclock_mono ();
    if (self->derived.cmd.type) {
        if (!s_cmd_step (self, &self->derived))
            return;
        self->derived.cmd.type = 0;
        self->derived_at = now;
    }
    /* applied: give the table a moment to reflect it (a command that
       changed nothing publishes no table) */
    uint64_t seen = self->msg ? self->msg->applied_index : 0;
    if (self->derived.index > seen && now - self->derived_at < CMD_SETTLE_MS)
        return;
    ring_cmd_t cmd;
    if (s_next_derived (self, meta, &cmd)) {
        s_cmd_init (self, &self->derived, &cmd);
        titan_log_info ("raft %s: ring %s%s%s", self->cfg.self.node_id,
                        cmd.type == RING_CMD_CREATE ? "create" :
                        cmd.type == RING_CMD_ADD ? "add " :
                        cmd.type == RING_CMD_SET_STATE ? "activate " : "remove ",
                        cmd.id, "");
        s_cmd_step (self, &self->derived);
        return;
    }
    /* removed ring members leave the meta group; a leaving leader hands
       the meta group over first */
    const raft_config_t *cfg = raft_config (raft_group_core (meta));
    for (uint32_t i = 0; self->msg && i < self->msg->n_nodes; i++) {
        const char *id = self->msg->nodes [i]->node_id;
        uint64_t rid = id ? raft_members_id (id) : 0;
        if (!id || streq (id, self->cfg.self.node_id)
        ||  !s_node_in_state (self, id, RING_REMOVED)
        ||  !(raft_config_is_voter (cfg, rid) || raft_config_is_learner (cfg, rid)))
            continue;
        if (raft_group_remove_node (meta, rid) == 0)
            titan_log_info ("raft %s: node '%s' left the ring; removing it from "
                            "the meta group", self->cfg.self.node_id, id);
        return;
    }
    if (self->msg && (s_node_in_state (self, self->cfg.self.node_id, RING_LEAVING)
                   || s_node_in_state (self, self->cfg.self.node_id, RING_REMOVED))) {
        char target [RAFT_NODE_ID_MAX + 1] = "";
        if (raft_group_transfer_out (meta, target, sizeof target) == 0)
            titan_log_info ("raft %s: leaving the ring: meta group leadership to %s",
                            self->cfg.self.node_id, target);
    }
}

/* ------------------------------------------------------------ replicas */

static bool
s_evicted (raft_placement_t *self, uint32_t shard)
{
    for (size_t i = 0; i < self->n_evicted; i++)
        if (self->evicted [i] == shard)
            return true;
    return false;
}

static void
s_unevict (raft_placement_t *self, uint32_t shard)
{
    for (size_t i = 0; i < self->n_evicted; i++)
        if (self->evicted [i] == shard)
            self->evicted [i--] = self->evicted [--self->n_evicted];
}

static void
s_drop_cancel (raft_placement_t *self, uint32_t shard)
{
    for (size_t i = 0; i < self->n_drops; i++)
        if (self->drops [i].shard == shard)
            self->drops [i--] = self->drops [--self->n_drops];
}

static void
s_drop_add (raft_placement_t *self, uint32_t shard)
{
    s_drop_cancel (self, shard);
    s_drop_t *grown = realloc (self->drops, (self->n_drops + 1) * sizeof *grown);
    if (!grown)
        return;                 /* the data stays: harmless, reused on return */
    self->drops = grown;
    self->drops [self->n_drops++] = (s_drop_t) {
        .shard = shard, .next = zclock_mono (), .interval = DROP_RETRY_MS,
    };
}

static void
s_drop_duty (raft_placement_t *self)
{
    int64_t now = zclock_mono ();
    for (size_t i = 0; i < self->n_drops; i++) {
        s_drop_t *d = &self->drops [i];
        if (now < d->next)
            continue;
        Titan__Bus__KvDropShard req = TITAN__BUS__KV_DROP_SHARD__INIT;
        req.shard = d->shard;
        uint8_t buf [16];
        size_t len = titan__bus__kv_drop_shard__pack (&req, buf);
        if (titan_bus_request (self->cfg.bus, self->storage_module,
                               TITAN_T_KV_DROP_SHARD, buf, len, &d->corr))
            d->corr = 0;
        d->next = now + d->interval;
        d->interval = d->interval * 2 > DROP_RETRY_MAX_MS ? DROP_RETRY_MAX_MS
                                                          : d->interval * 2;
    }
}

static bool
s_drop_reply (raft_placement_t *self, titan_envelope_t **env_p)
{
    for (size_t i = 0; i < self->n_drops; i++) {
        s_drop_t *d = &self->drops [i];
        if (!d->corr || d->corr != (*env_p)->corr)
            continue;
        Titan__Bus__KvReply *r = titan__bus__kv_reply__unpack (NULL,
            titan_envelope_size (*env_p), titan_envelope_data (*env_p));
        if (r && r->code == TITAN__BUS__CODE__OK) {
            titan_log_info ("raft %s: shard %u: storage dropped",
                            self->cfg.self.node_id, d->shard);
            self->drops [i] = self->drops [--self->n_drops];
        }
        else {
            if (!d->logged)
                titan_log_warning ("raft %s: shard %u: %s did not drop the data "
                                   "(%s); retrying every %d s at most",
                                   self->cfg.self.node_id, d->shard,
                                   self->storage_module,
                                   r && r->message ? r->message : "malformed reply",
                                   DROP_RETRY_MAX_MS / 1000);
            d->logged = true;
            d->corr = 0;
        }
        if (r)
            titan__bus__kv_reply__free_unpacked (r, NULL);
        titan_envelope_destroy (env_p);
        return true;
    }
    return false;
}

/*  A replica the table no longer places here but that its own view of
    the committed configuration still includes (a removed learner hears
    nothing more, and a removed node may miss its removal entry) asks:
    it sends each member of its configuration and each replica the table
    names (the leader is among them) a heartbeat answer of term
    0, which a member steps and ignores (a stale term) and a leader whose
    committed configuration no longer includes it answers with NOT_MEMBER
    (raft_placement_not_member).  */
static void
s_probe (raft_placement_t *self, uint32_t shard, raft_group_t *g,
         const raft_wire_node_t *desired, size_t n_desired)
{
    Titan__Bus__RaftGroupStatus st = TITAN__BUS__RAFT_GROUP_STATUS__INIT;
    raft_group_status (g, &st);
    uint64_t me = raft_members_id (self->cfg.self.node_id);
    for (size_t i = 0; i < st.n_members + n_desired; i++) {
        const char *id = i < st.n_members ? st.members [i]->node_id
                                          : desired [i - st.n_members].node_id;
        if (!id || streq (id, self->cfg.self.node_id))
            continue;
        if (i >= st.n_members)
            raft_transport_set_peer (self->cfg.transport, id,
                                     desired [i - st.n_members].peer_addr);
        raft_msg_t msg;
        memset (&msg, 0, sizeof msg);
        msg.group = shard;
        msg.from = me;
        msg.to = raft_members_id (id);
        msg.type = RAFT_MSG_HEARTBEAT_RESP;
        uint8_t *buf = NULL;
        size_t len = 0;
        if (raft_wire_encode_msg (&self->cfg.self, &msg, &buf, &len) == 0)
            raft_transport_queue (self->cfg.transport, id, buf, len);
        free (buf);
    }
}

/*  Destroys data group `shard` (not placed here, not in its committed
    configuration), deletes its directory and drops its storage.  */
static void
s_destroy_replica (raft_placement_t *self, uint32_t shard)
{
    char dir [1100];
    raft_groups_remove (self->cfg.groups, shard);
    s_unevict (self, shard);
    if (raft_groups_dir (self->raft_dir, shard, dir, sizeof dir) == 0) {
        int rc = raft_groups_remove_dir (dir);
        if (rc)
            titan_log_warning ("raft %s: shard %u: cannot delete %s: %s",
                               self->cfg.self.node_id, shard, dir,
                               titan_strerror (rc));
    }
    titan_log_info ("raft %s: shard %u: replica removed from this node",
                    self->cfg.self.node_id, shard);
    s_drop_add (self, shard);
}

static void
s_bootstrap_data (raft_placement_t *self)
{
    char marker [1100];
    snprintf (marker, sizeof marker, "%s/%s", self->raft_dir, BOOT_MARKER);
    if (!self->cfg.bootstrap || access (marker, F_OK) != 0)
        return;
    uint32_t q = ring_table_shards (self->table);
    int rc = 0;
    for (uint32_t s = 0; s < q && rc == 0; s++)
        if (!raft_groups_find (self->cfg.groups, s))
            rc = self->cfg.open (self->cfg.open_arg, s, true, true);
    if (rc == 0 && unlink (marker) == 0)
        titan_log_info ("raft %s: created the %u data shards of the cluster",
                        self->cfg.self.node_id, q);
}

static void
s_replica_duty (raft_placement_t *self)
{
    if (!self->table || !s_node (self, self->cfg.self.node_id))
        return;
    s_bootstrap_data (self);
    uint32_t q = ring_table_shards (self->table);
    raft_wire_node_t desired [RAFT_MAX_MEMBERS];
    for (uint32_t s = 0; s < q; s++) {
        bool here = false;
        size_t n = s_desired (self, s, desired, &here);
        raft_group_t *g = raft_groups_find (self->cfg.groups, s);
        if (!g) {
            if (here) {
                s_drop_cancel (self, s);
                s_unevict (self, s);
                int rc = self->cfg.open (self->cfg.open_arg, s, false, true);
                if (rc)
                    titan_log_error ("raft %s: shard %u: cannot create the "
                                     "replica: %s", self->cfg.self.node_id, s,
                                     titan_strerror (rc));
                else
                    titan_log_info ("raft %s: shard %u: replica created, waiting "
                                    "for its leader", self->cfg.self.node_id, s);
            }
            continue;
        }
        if (raft_role (raft_group_core (g)) == RAFT_LEADER) {
            raft_reconcile_action_t a;
            if (raft_group_reconcile (g, desired, n, &a) == 0
            &&  a.kind != RAFT_RECONCILE_NONE) {
                if (a.kind == RAFT_RECONCILE_ADD_LEARNER)
                    self->moves++;
                titan_log_info ("raft %s: shard %u: %s %016" PRIx64,
                                self->cfg.self.node_id, s,
                                raft_reconcile_kind_name (a.kind), a.node);
            }
            continue;
        }
        /* Raft safety: only a replica out of the committed configuration,
           as the group's leader says (this node's own view may lag: a
           replica that has not applied the entry that made it a voter
           does not see itself in its applied configuration) */
        if (!here && s_evicted (self, s))
            s_destroy_replica (self, s);
        else
        if (!here && self->probe_due)
            s_probe (self, s, g, desired, n);
    }
    self->probe_due = false;
}

/*  Sends the meta group's leader a placement notice (`status`) from this
    node, at most every NOTIFY_EVERY_MS per kind (`*sent_at`); the meta
    leader keeps what it heard (raft_placement_on_notice).  */
static void
s_notify_meta_leader (raft_placement_t *self, raft_join_status_t status,
                      const char *message, int64_t *sent_at)
{
    int64_t now = zclock_mono ();
    if (now - *sent_at < NOTIFY_EVERY_MS)
        return;
    *sent_at = now;
    raft_group_t *meta = s_meta (self);
    uint64_t leader = meta ? raft_leader (raft_group_core (meta)) : 0;
    const char *leader_id = NULL;
    for (size_t i = 0; leader && i < self->msg->n_nodes && !leader_id; i++)
        if (self->msg->nodes [i]->node_id
        &&  raft_members_id (self->msg->nodes [i]->node_id) == leader)
            leader_id = self->msg->nodes [i]->node_id;
    if (!leader_id)
        return;
    raft_wire_join_reply_t notice;
    memset (&notice, 0, sizeof notice);
    notice.group = TITAN_META_SHARD;
    notice.status = status;
    snprintf (notice.message, sizeof notice.message, "%s", message);
    const char *me = self->cfg.self.node_id;
    if (streq (leader_id, me)) {
        raft_placement_on_notice (self, me, &notice);
        return;
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    if (raft_wire_encode_join_reply (&self->cfg.self, &notice, &buf, &len) == 0)
        raft_transport_queue (self->cfg.transport, leader_id, buf, len);
    free (buf);
}

/*  A draining node that hosts no data group any more tells the meta
    leader (LEFT), every NOTIFY_EVERY_MS until it is removed.  */
static void
s_left_duty (raft_placement_t *self)
{
    const char *me = self->cfg.self.node_id;
    if (!self->msg)
        return;
    if (s_node_in_state (self, me, RING_REMOVED)) {
        if (!self->removed_logged)
            titan_log_info ("raft %s: this node was removed from the ring; it "
                            "hosts no shard and keeps running idle", me);
        self->removed_logged = true;
        return;
    }
    if (!s_node_in_state (self, me, RING_LEAVING))
        return;
    size_t n = raft_groups_size (self->cfg.groups);
    for (size_t i = 0; i < n; i++) {
        uint32_t id;
        raft_groups_at (self->cfg.groups, i, &id);
        if (id != TITAN_META_SHARD)
            return;                           /* still hosts a replica */
    }
    s_notify_meta_leader (self, RAFT_JOIN_LEFT, "no replica left",
                          &self->left_sent_at);
}

/*  A joining node that is a committed voter of every data group the
    table places on it (its replicas have caught up and been promoted)
    tells the meta leader (READY), every NOTIFY_EVERY_MS until the ring
    lists it as active.  */
static void
s_ready_duty (raft_placement_t *self)
{
    const char *me = self->cfg.self.node_id;
    if (!self->table || !s_node_in_state (self, me, RING_JOINING))
        return;
    uint64_t my_id = raft_members_id (me);
    uint32_t q = ring_table_shards (self->table);
    for (uint32_t s = 0; s < q; s++) {
        bool here = false;
        for (uint32_t r = 0; r < ring_table_shard_size (self->table, s) && !here; r++)
            here = streq (ring_table_replica (self->table, s, r), me);
        raft_group_t *g = here ? raft_groups_find (self->cfg.groups, s) : NULL;
        if (here && (!g || !raft_group_committed_voter (g, my_id)))
            return;                   /* a replica still to catch up */
    }
    s_notify_meta_leader (self, RAFT_JOIN_READY, "a voter of every shard "
                          "placed here", &self->ready_sent_at);
}

/* ------------------------------------------------------------ notices */

void
raft_placement_not_member (raft_placement_t *self, uint64_t group,
                           const raft_wire_node_t *sender)
{
    raft_group_t *g = group <= UINT32_MAX
                    ? raft_groups_find (self->cfg.groups, (uint32_t) group) : NULL;
    if (!g || raft_role (raft_group_core (g)) != RAFT_LEADER
    ||  raft_group_in_committed_config (g, raft_members_id (sender->node_id))
    ||  !s_node (self, sender->node_id))
        return;                     /* only ring members hear from us */
    char key [sizeof self->notices [0].key];
    snprintf (key, sizeof key, "%s/%" PRIu64, sender->node_id, group);
    int64_t now = zclock_mono ();
    for (size_t i = 0; i < NOTICES_MAX; i++)
        if (streq (self->notices [i].key, key) && now - self->notices [i].at < NOTICE_MS)
            return;
    s_notice_t *slot = &self->notices [self->next_notice++ % NOTICES_MAX];
    snprintf (slot->key, sizeof slot->key, "%s", key);
    slot->at = now;
    raft_wire_join_reply_t notice;
    memset (&notice, 0, sizeof notice);
    notice.group = group;
    notice.status = RAFT_JOIN_NOT_MEMBER;
    snprintf (notice.message, sizeof notice.message, "not in the committed "
              "configuration of group %" PRIu64, group);
    uint8_t *buf = NULL;
    size_t len = 0;
    raft_transport_set_peer (self->cfg.transport, sender->node_id,
                             sender->peer_addr);
    if (raft_wire_encode_join_reply (&self->cfg.self, &notice, &buf, &len) == 0)
        raft_transport_queue (self->cfg.transport, sender->node_id, buf, len);
    free (buf);
}

void
raft_placement_on_notice (raft_placement_t *self, const char *from,
                          const raft_wire_join_reply_t *notice)
{
    if (notice->status == RAFT_JOIN_LEFT || notice->status == RAFT_JOIN_READY) {
        bool left = notice->status == RAFT_JOIN_LEFT;
        if (s_meta_leader (self)
        &&  s_node_in_state (self, from, left ? RING_LEAVING : RING_JOINING)
        &&  s_heard_add (left ? &self->left : &self->ready, from))
            titan_log_info ("raft %s: node '%s' %s", self->cfg.self.node_id,
                            from, left ? "holds no replica any more"
                                       : "votes in every shard placed on it");
        return;
    }
    if (notice->status != RAFT_JOIN_NOT_MEMBER || notice->group > UINT32_MAX)
        return;
    uint32_t id = (uint32_t) notice->group;
    raft_group_t *g = raft_groups_find (self->cfg.groups, id);
    /* believed from a ring member only (the leader that sends it checked
       its committed configuration; this node's own view may be empty) */
    if (!g || id == TITAN_META_SHARD || s_evicted (self, id)
    ||  !s_node (self, from))
        return;
    uint32_t *grown = realloc (self->evicted, (self->n_evicted + 1) * sizeof *grown);
    if (!grown)
        return;
    self->evicted = grown;
    self->evicted [self->n_evicted++] = id;
    self->table_new = true;
}

/* ------------------------------------------------------------ object */

raft_placement_t *
raft_placement_new (const raft_placement_config_t *config)
{
    raft_placement_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->cfg = *config;
    self->raft_dir = strdup (config->raft_dir);
    self->storage_module = strdup (config->storage_module);
    if (!self->raft_dir || !self->storage_module) {
        raft_placement_destroy (&self);
        return NULL;
    }
    snprintf (self->client_id, sizeof self->client_id, "raft-ring:%s",
              config->self.node_id);
    /* a fresh dedup sequence per start: above anything used before */
    self->seq = (uint64_t) zclock_time () * 1000;
    if (config->bootstrap) {
        char marker [1100];
        snprintf (marker, sizeof marker, "%s/%s", self->raft_dir, BOOT_MARKER);
        FILE *f = fopen (marker, "a");
        if (f)
            fclose (f);
    }
    return self;
}

void
raft_placement_destroy (raft_placement_t **self_p)
{
    raft_placement_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->n_drains; i++)
        s_reply_member (self, &self->drains [i].env, TITAN__BUS__CODE__UNAVAILABLE,
                        "raft: stopping", 0);
    if (self->msg)
        titan__bus__ring_table__free_unpacked (self->msg, NULL);
    ring_table_destroy (&self->table);
    free (self->drops);
    free (self->evicted);
    free (self->raft_dir);
    free (self->storage_module);
    free (self);
    *self_p = NULL;
}

bool
raft_placement_on_bus (raft_placement_t *self, titan_envelope_t **env_p)
{
    titan_envelope_t *env = *env_p;
    if (streq (env->type, TITAN_T_RING_TABLE)
    &&  (env->kind == TITAN_MSG_EVENT
         || (env->kind == TITAN_MSG_REPLY && env->corr == self->table_corr))) {
        s_take_table (self, env);
        titan_envelope_destroy (env_p);
        return true;
    }
    if (env->kind == TITAN_MSG_REPLY && streq (env->type, TITAN_T_KV_DROP_SHARD))
        return s_drop_reply (self, env_p);
    return false;
}

void
raft_placement_duty (raft_placement_t *self)
{
    int64_t now = zclock_mono ();
    if (!self->table_new && now < self->next_duty)
        return;
    self->table_new = false;
    self->next_duty = now + self->cfg.duty_ms;
    if (now - self->probed_at >= PROBE_MS) {
        self->probe_due = true;
        self->probed_at = now;
    }
    s_ask_table (self);
    s_membership_duty (self);
    s_drain_duty (self);
    s_replica_duty (self);
    s_left_duty (self);
    s_ready_duty (self);
    s_drop_duty (self);
}

uint32_t
raft_placement_shards (raft_placement_t *self)
{
    return self->table ? ring_table_shards (self->table) : 0;
}

const char *
raft_placement_preferred (raft_placement_t *self, uint32_t shard)
{
    if (!self->table || shard >= ring_table_shards (self->table))
        return NULL;
    return ring_table_replica (self->table, shard, 0);
}

uint64_t
raft_placement_moves (raft_placement_t *self)
{
    return self->moves;
}
