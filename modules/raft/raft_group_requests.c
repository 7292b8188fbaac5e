/*  raft_group requests: raft.propose, raft.read, the membership changes
    of the bus and of the join protocol, the leader's membership duties
    (its own member info, adds in progress, promotion of caught-up
    learners), the reads waiting for their index and the expiry of
    waiters.  Every request is answered exactly once: at once when it is
    refused, else when its entry is applied, its read served, or its time
    is up.
*/
#include "titan/log.h"
#include "raft_group_impl.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "titan/bus_types.h"
#include "titan/status.h"

void
rg_reply_kv (raft_group_t *self, titan_envelope_t **env_p,
             const Titan__Bus__KvReply *reply)
{
    titan_bus_reply_pb (self->cfg.bus, *env_p, reply);
    titan_envelope_destroy (env_p);
}

void
rg_reply_member (raft_group_t *self, titan_envelope_t **env_p,
                 const Titan__Bus__RaftMemberReply *reply)
{
    titan_bus_reply_pb (self->cfg.bus, *env_p, reply);
    titan_envelope_destroy (env_p);
}

/*  The leader as far as this node knows: its node id and client address
    (empty strings when unknown).  */
void
rg_leader_hint (raft_group_t *self, const char **id_p, const char **client_p)
{
    *id_p = "";
    *client_p = "";
    uint64_t leader = raft_leader (self->core);
    const raft_member_t *m = leader ? raft_members_get (self->members, leader)
                                    : NULL;
    if (m) {
        *id_p = m->node_id;
        *client_p = m->client_addr;
    }
}

/*  Answers a raft.propose / raft.read with `code`, and the leader hint
    when UNAVAILABLE.  */
void
rg_refuse_kv (raft_group_t *self, titan_envelope_t **env_p, int code,
              const char *message)
{
    Titan__Bus__KvReply r = TITAN__BUS__KV_REPLY__INIT;
    r.code = (Titan__Bus__Code) code;
    r.message = (char *) message;
    const char *lid, *laddr;
    rg_leader_hint (self, &lid, &laddr);
    if (code == TITAN__BUS__CODE__UNAVAILABLE) {
        r.leader_id = (char *) lid;
        r.leader_client_addr = (char *) laddr;
    }
    rg_reply_kv (self, env_p, &r);
}

void
rg_refuse_member (raft_group_t *self, titan_envelope_t **env_p, int code,
                  const char *message)
{
    Titan__Bus__RaftMemberReply r = TITAN__BUS__RAFT_MEMBER_REPLY__INIT;
    r.code = (Titan__Bus__Code) code;
    r.message = (char *) message;
    const char *lid, *laddr;
    rg_leader_hint (self, &lid, &laddr);
    if (code == TITAN__BUS__CODE__UNAVAILABLE) {
        r.leader_id = (char *) lid;
        r.leader_client_addr = (char *) laddr;
    }
    rg_reply_member (self, env_p, &r);
}

/*  Records a peer's addresses and points the transport at it.  */
void
rg_note_member (raft_group_t *self, const raft_wire_node_t *node,
                bool replicated)
{
    int rc = raft_members_set (self->members, node->node_id, node->peer_addr,
                               node->client_addr, replicated);
    if (rc < 0) {
        titan_log_warning ("raft %s: member '%s' at '%s' not recorded: %s",
                      self->cfg.self.node_id, node->node_id, node->peer_addr,
                      rc == -EEXIST ? "raft id collides with another node id"
                                    : titan_strerror (rc));
        return;
    }
    if (rc == 1 && strcmp (node->node_id, self->cfg.self.node_id) != 0
    &&  self->cfg.transport)
        raft_transport_set_peer (self->cfg.transport, node->node_id,
                                 node->peer_addr);
}

void
rg_waiter_add (raft_group_t *self, uint64_t index, uint64_t term,
               rg_waiter_kind_t kind, titan_envelope_t **env_p, int64_t timeout)
{
    if (self->n_waiters == self->cap_waiters) {
        size_t cap = self->cap_waiters ? self->cap_waiters * 2 : 64;
        rg_waiter_t *grown = realloc (self->waiters, cap * sizeof *grown);
        if (!grown) {
            titan_envelope_destroy (env_p);
            return;             /* the caller times out and retries */
        }
        self->waiters = grown;
        self->cap_waiters = cap;
    }
    size_t pos = self->n_waiters;
    while (pos > 0 && self->waiters [pos - 1].index > index)
        pos--;
    memmove (&self->waiters [pos + 1], &self->waiters [pos],
             (self->n_waiters - pos) * sizeof *self->waiters);
    rg_waiter_t *w = &self->waiters [pos];
    w->index = index;
    w->term = term;
    w->kind = kind;
    w->env = *env_p;
    *env_p = NULL;
    w->deadline = zclock_mono () + timeout;
    self->n_waiters++;
}

/*  Answers a waiter whose outcome this node cannot know, and removes it
    (waiters [i]).  */
static void
s_waiter_unknown (raft_group_t *self, size_t i, const char *why)
{
    rg_waiter_t *w = &self->waiters [i];
    char msg [200];
    snprintf (msg, sizeof msg, "raft: %s; outcome unknown%s", why,
              w->kind == W_PROPOSE
              ? " (retry with the same client_id and sequence)" : "");
    if (w->kind == W_PROPOSE)
        rg_refuse_kv (self, &w->env, TITAN__BUS__CODE__DEADLINE_EXCEEDED, msg);
    else
        rg_refuse_member (self, &w->env, TITAN__BUS__CODE__DEADLINE_EXCEEDED,
                          msg);
    memmove (w, w + 1, (self->n_waiters - i - 1) * sizeof *w);
    self->n_waiters--;
}

void
rg_waiters_covered (raft_group_t *self, uint64_t index)
{
    while (self->n_waiters && self->waiters [0].index <= index)
        s_waiter_unknown (self, 0, "entry applied by an installed snapshot");
}

bool
rg_write_valid (raft_group_t *self, const uint8_t *kvwrite, size_t size,
                char *why, size_t why_size)
{
    Titan__Bus__KvWrite *w = titan__bus__kv_write__unpack (NULL, size, kvwrite);
    *why = '\0';
    if (!w)
        snprintf (why, why_size, "raft: malformed KvWrite");
    else if (w->shard != self->cfg.shard)
        snprintf (why, why_size, "raft: shard %u is not served here "
                  "(group %u)", w->shard, self->cfg.shard);
    else if (!w->op)
        snprintf (why, why_size, "raft: KvWrite without an op");
    else if (w->op->kind != TITAN__BUS__KV_OP__KIND__PUT
          && w->op->kind != TITAN__BUS__KV_OP__KIND__DELETE
          && w->op->kind != TITAN__BUS__KV_OP__KIND__CAS)
        snprintf (why, why_size, "raft: unknown op kind %d", w->op->kind);
    else if (w->op->key.len == 0 || w->op->key.len > KEY_MAX)
        snprintf (why, why_size, "raft: key of %zu bytes not in 1..%u",
                  w->op->key.len, KEY_MAX);
    else if (w->op->kind != TITAN__BUS__KV_OP__KIND__DELETE
          && w->op->value.len > self->cfg.max_value_bytes)
        snprintf (why, why_size, "raft: value of %zu bytes exceeds "
                  "max_value_bytes %u", w->op->value.len,
                  self->cfg.max_value_bytes);
    else if (w->client_id && strlen (w->client_id) > 255)
        snprintf (why, why_size, "raft: client_id longer than 255 bytes");
    if (w)
        titan__bus__kv_write__free_unpacked (w, NULL);
    return *why == '\0';
}

int
rg_propose_refusal (int rc)
{
    return rc == RAFT_ENOTLEADER || rc == RAFT_EBUSY
         ? TITAN__BUS__CODE__UNAVAILABLE : TITAN__BUS__CODE__INTERNAL;
}

void
raft_group_propose (raft_group_t *self, titan_envelope_t **env_p)
{
    titan_envelope_t *env = *env_p;
    if (self->failed) {
        rg_refuse_kv (self, env_p, TITAN__BUS__CODE__UNAVAILABLE,
                      "raft: group failed; restarting");
        return;
    }
    char why [160];
    if (!rg_write_valid (self, titan_envelope_data (env),
                         titan_envelope_size (env), why, sizeof why)) {
        rg_refuse_kv (self, env_p, TITAN__BUS__CODE__INVALID_ARGUMENT, why);
        return;
    }
    if (raft_role (self->core) != RAFT_LEADER) {
        if (!rg_forward_propose (self, env_p))
            rg_refuse_kv (self, env_p, TITAN__BUS__CODE__UNAVAILABLE,
                          "raft: not the leader");
        return;
    }
    uint64_t index = 0, term = 0;
    int rc = raft_group_propose_local (self, titan_envelope_data (env),
                                       titan_envelope_size (env), &index, &term);
    if (rc)
        rg_refuse_kv (self, env_p, rg_propose_refusal (rc),
                      rc == RAFT_EBUSY ? "raft: leadership transfer in progress"
                      : rc == RAFT_ENOTLEADER ? "raft: not the leader"
                      : titan_strerror (rc));
    else
        rg_waiter_add (self, index, term, W_PROPOSE, env_p,
                       self->cfg.propose_timeout_ms);
}

/*  Sends a kv.get for a read to the storage module; the reply is relayed
    to the reader.  */
static void
s_forward_get (raft_group_t *self, titan_envelope_t **env_p)
{
    rg_get_t *g = calloc (1, sizeof *g);
    int rc = g ? titan_bus_request (self->cfg.bus, self->storage_module,
                                    TITAN_T_KV_GET,
                                    titan_envelope_data (*env_p),
                                    titan_envelope_size (*env_p), &g->corr)
               : -ENOMEM;
    if (rc) {
        free (g);
        rg_refuse_kv (self, env_p, TITAN__BUS__CODE__UNAVAILABLE,
                      "raft: cannot reach the storage module");
        return;
    }
    g->env = *env_p;
    *env_p = NULL;
    g->deadline = zclock_mono () + self->cfg.read_timeout_ms;
    zlistx_add_end (self->gets, g);
}

void
raft_group_read (raft_group_t *self, titan_envelope_t **env_p)
{
    Titan__Bus__KvGet *g = titan__bus__kv_get__unpack (NULL,
                               titan_envelope_size (*env_p),
                               titan_envelope_data (*env_p));
    if (!g || g->shard != self->cfg.shard || g->key.len == 0
    ||  g->key.len > KEY_MAX) {
        rg_refuse_kv (self, env_p, TITAN__BUS__CODE__INVALID_ARGUMENT,
                      !g ? "raft: malformed KvGet"
                        : g->shard != self->cfg.shard
                        ? "raft: shard not served here"
                        : "raft: key length not in 1..65535");
        if (g)
            titan__bus__kv_get__free_unpacked (g, NULL);
        return;
    }
    bool local = g->consistency == TITAN__BUS__KV_GET__CONSISTENCY__LOCAL;
    titan__bus__kv_get__free_unpacked (g, NULL);
    if (local) {
        s_forward_get (self, env_p);
        return;
    }
    if (self->failed) {
        rg_refuse_kv (self, env_p, TITAN__BUS__CODE__UNAVAILABLE,
                      "raft: group failed; restarting");
        return;
    }
    if (raft_lease_valid (self->core)
    &&  self->applied >= raft_commit_index (self->core)) {
        /* a leader in lease whose storage module holds every committed
           entry: the read index would be the commit index, applied
           already, so the read needs no wait and no read state */
        s_forward_get (self, env_p);
        return;
    }
    uint64_t ctx = ++self->next_ctx;
    int rc = raft_read_index (self->core, ctx);
    if (rc) {
        rg_refuse_kv (self, env_p, TITAN__BUS__CODE__UNAVAILABLE,
                      "raft: no leader to confirm a linearizable read");
        return;
    }
    rg_read_t *r = calloc (1, sizeof *r);
    if (!r) {
        rg_refuse_kv (self, env_p, TITAN__BUS__CODE__RESOURCE_EXHAUSTED,
                      "raft: out of memory");
        return;
    }
    r->ctx = ctx;
    r->env = *env_p;
    *env_p = NULL;
    r->deadline = zclock_mono () + self->cfg.read_timeout_ms;
    zlistx_add_end (self->reads, r);
}

int
rg_start_add (raft_group_t *self, const raft_wire_node_t *node,
             titan_envelope_t **env_p, char *why, size_t why_size)
{
    uint64_t id = raft_members_id (node->node_id);
    const raft_member_t *known = raft_members_get (self->members, id);
    if (known && strcmp (known->node_id, node->node_id) != 0) {
        snprintf (why, why_size, "raft: node id '%s' has the same raft id as "
                  "member '%s'; choose another node id", node->node_id,
                  known->node_id);
        return -EEXIST;
    }
    for (size_t i = 0; i < self->n_adds; i++)
        if (self->adds [i].id == id) {
            if (env_p && *env_p) {
                if (self->adds [i].env)
                    rg_refuse_member (self, &self->adds [i].env,
                                      TITAN__BUS__CODE__ABORTED,
                                      "raft: superseded by a newer request");
                self->adds [i].env = *env_p;
                *env_p = NULL;
            }
            self->adds [i].node = *node;
            return 0;
        }
    if (self->n_adds == MAX_PENDING_ADDS) {
        snprintf (why, why_size, "raft: too many members being added");
        return -EBUSY;
    }
    rg_note_member (self, node, false);
    rg_add_t *a = &self->adds [self->n_adds++];
    memset (a, 0, sizeof *a);
    a->node = *node;
    a->id = id;
    a->deadline = zclock_mono () + self->cfg.propose_timeout_ms * 3;
    if (env_p) {
        a->env = *env_p;
        *env_p = NULL;
    }
    return 0;
}

void
raft_group_member_change (raft_group_t *self, titan_envelope_t **env_p)
{
    titan_envelope_t *env = *env_p;
    Titan__Bus__RaftMemberChange *c = titan__bus__raft_member_change__unpack (
        NULL, titan_envelope_size (env), titan_envelope_data (env));
    if (!c || c->shard != self->cfg.shard
    ||  !raft_members_valid_node_id (c->node_id)) {
        rg_refuse_member (self, env_p, TITAN__BUS__CODE__INVALID_ARGUMENT,
                          !c ? "raft: malformed RaftMemberChange"
                            : c->shard != self->cfg.shard
                            ? "raft: shard not served here"
                            : "raft: bad node_id");
        if (c)
            titan__bus__raft_member_change__free_unpacked (c, NULL);
        return;
    }
    uint64_t id = raft_members_id (c->node_id);
    char why [256] = "";
    if (raft_role (self->core) != RAFT_LEADER || self->failed)
        rg_refuse_member (self, env_p, TITAN__BUS__CODE__UNAVAILABLE,
                          "raft: not the leader");
    else
    if (streq (env->type, TITAN_T_RAFT_ADD)) {
        raft_wire_node_t node;
        memset (&node, 0, sizeof node);
        snprintf (node.node_id, sizeof node.node_id, "%s", c->node_id);
        snprintf (node.peer_addr, sizeof node.peer_addr, "%s",
                  c->peer_addr ? c->peer_addr : "");
        snprintf (node.client_addr, sizeof node.client_addr, "%s",
                  c->client_addr ? c->client_addr : "");
        if (!raft_members_valid_addr (c->peer_addr, false)
        ||  !raft_members_valid_addr (c->client_addr, true))
            rg_refuse_member (self, env_p, TITAN__BUS__CODE__INVALID_ARGUMENT,
                              "raft: member_add needs peer_addr host:port");
        else {
            int rc = rg_start_add (self, &node, env_p, why, sizeof why);
            if (rc)
                rg_refuse_member (self, env_p, rc == -EBUSY
                                  ? TITAN__BUS__CODE__UNAVAILABLE
                                  : TITAN__BUS__CODE__ALREADY_EXISTS, why);
        }
    }
    else
    if (streq (env->type, TITAN_T_RAFT_REMOVE)) {
        uint64_t index = 0, term = 0;
        int rc = raft_propose_conf (self->core, RAFT_CONF_REMOVE, id, &index,
                                    &term);
        if (rc == 0)
            rg_waiter_add (self, index, term, W_MEMBER, env_p,
                           self->cfg.propose_timeout_ms);
        else
            rg_refuse_member (self, env_p, rc == RAFT_EBUSY
                              ? TITAN__BUS__CODE__UNAVAILABLE
                              : rc == -EINVAL
                              ? TITAN__BUS__CODE__FAILED_PRECONDITION
                              : TITAN__BUS__CODE__UNAVAILABLE,
                              rc == RAFT_EBUSY
                              ? "raft: another membership change is in progress"
                              : rc == -EINVAL
                              ? "raft: not a member, or the last voter"
                              : "raft: not the leader");
    }
    else {
        int rc = raft_transfer_leadership (self->core, id);
        Titan__Bus__RaftMemberReply r = TITAN__BUS__RAFT_MEMBER_REPLY__INIT;
        r.code = rc == 0 ? TITAN__BUS__CODE__OK
               : rc == -EINVAL ? TITAN__BUS__CODE__FAILED_PRECONDITION
               : TITAN__BUS__CODE__UNAVAILABLE;
        r.message = rc == 0 ? (char *) ""
                  : rc == -EINVAL ? (char *) "raft: target is not a voter, or is self"
                  : (char *) "raft: not the leader";
        rg_reply_member (self, env_p, &r);
    }
    titan__bus__raft_member_change__free_unpacked (c, NULL);
}

void
raft_group_join (raft_group_t *self, const raft_wire_node_t *joiner,
                 raft_wire_join_reply_t *reply)
{
    memset (reply, 0, sizeof *reply);
    reply->group = self->cfg.shard;
    rg_note_member (self, joiner, false);
    if (raft_role (self->core) == RAFT_LEADER && !self->failed) {
        uint64_t id = raft_members_id (joiner->node_id);
        const raft_config_t *cfg = raft_config (self->core);
        if (raft_config_is_voter (cfg, id) || raft_config_is_learner (cfg, id)) {
            reply->status = RAFT_JOIN_ACCEPTED;
            snprintf (reply->message, sizeof reply->message, "already a member");
            return;
        }
        int rc = rg_start_add (self, joiner, NULL, reply->message,
                              sizeof reply->message);
        reply->status = rc == 0 ? RAFT_JOIN_ACCEPTED
                      : rc == -EBUSY ? RAFT_JOIN_RETRY : RAFT_JOIN_REFUSED;
        return;
    }
    uint64_t leader = raft_leader (self->core);
    const raft_member_t *m = leader && leader != self->id
                           ? raft_members_get (self->members, leader) : NULL;
    if (m) {
        reply->status = RAFT_JOIN_REDIRECT;
        snprintf (reply->leader_id, sizeof reply->leader_id, "%s", m->node_id);
        snprintf (reply->leader_peer_addr, sizeof reply->leader_peer_addr, "%s",
                  m->peer_addr);
    }
    else {
        reply->status = RAFT_JOIN_RETRY;
        snprintf (reply->message, sizeof reply->message, "no leader known");
    }
}

/*  Proposes a member info entry; returns 0 or the core's refusal.  */
static int
s_propose_member_info (raft_group_t *self, const raft_wire_node_t *node)
{
    uint8_t *data = NULL;
    size_t size = 0;
    int rc = raft_wire_encode_member (node, &data, &size);
    if (rc == 0)
        rc = raft_propose (self->core, data, (uint32_t) size, NULL, NULL);
    free (data);
    return rc;
}

static bool
s_info_replicated (raft_group_t *self, const raft_wire_node_t *node)
{
    const raft_member_t *m = raft_members_find (self->members, node->node_id);
    return m && m->replicated && streq (m->rep_peer_addr, node->peer_addr)
        && streq (m->rep_client_addr, node->client_addr);
}

/*  Leader only: our own member info, the adds in progress, promotions.  */
void
rg_membership_duties (raft_group_t *self)
{
    raft_role_t role = raft_role (self->core);
    if (role != RAFT_LEADER) {
        for (size_t i = 0; i < self->n_adds; i++)
            if (self->adds [i].env)
                rg_refuse_member (self, &self->adds [i].env,
                                  TITAN__BUS__CODE__UNAVAILABLE,
                                  "raft: lost leadership; retry");
        self->n_adds = 0;
        return;
    }
    uint64_t term = raft_term (self->core);
    if (!s_info_replicated (self, &self->cfg.self)
    &&  self->self_info_term != term
    &&  s_propose_member_info (self, &self->cfg.self) == 0)
        self->self_info_term = term;
    const raft_config_t *cfg = raft_config (self->core);
    const raft_config_t *applied_cfg = raft_applied_config (self->core);
    int64_t now = zclock_mono ();
    for (size_t i = 0; i < self->n_adds; ) {
        rg_add_t *a = &self->adds [i];
        bool done = false;
        if (!s_info_replicated (self, &a->node)) {
            if (a->info_term != term
            &&  s_propose_member_info (self, &a->node) == 0)
                a->info_term = term;
        }
        else
        if (!raft_config_is_voter (cfg, a->id)
        &&  !raft_config_is_learner (cfg, a->id))
            raft_propose_conf (self->core, RAFT_CONF_ADD_LEARNER, a->id,
                               NULL, NULL);     /* RAFT_EBUSY: next time */
        else
        if (raft_config_is_voter (applied_cfg, a->id)
        ||  raft_config_is_learner (applied_cfg, a->id))
            done = true;
        if (!done && now > a->deadline) {
            if (a->env)
                rg_refuse_member (self, &a->env, TITAN__BUS__CODE__DEADLINE_EXCEEDED,
                                  "raft: member not added in time");
            done = true;
        }
        if (done) {
            if (a->env) {
                Titan__Bus__RaftMemberReply r = TITAN__BUS__RAFT_MEMBER_REPLY__INIT;
                rg_reply_member (self, &a->env, &r);
            }
            self->adds [i] = self->adds [--self->n_adds];
        }
        else
            i++;
    }
    /* promote every learner that has caught up (with ring placement the
       planner decides which learners become voters) */
    if (self->cfg.managed)
        return;
    uint64_t last = raft_last_index (self->core);
    for (uint32_t i = 0; i < cfg->n_learners; i++) {
        uint64_t match = 0;
        if (raft_progress (self->core, cfg->learners [i], &match) == 0
        &&  match + self->cfg.promote_gap >= last) {
            raft_propose_conf (self->core, RAFT_CONF_PROMOTE,
                               cfg->learners [i], NULL, NULL);
            break;                  /* one change at a time */
        }
    }
}

void
rg_serve_reads (raft_group_t *self)
{
    int64_t now = zclock_mono ();
    rg_read_t *r = zlistx_first (self->reads);
    while (r) {
        bool drop = false;
        if (r->ready && r->index <= self->applied) {
            s_forward_get (self, &r->env);
            drop = true;
        }
        else
        if (now > r->deadline) {
            rg_refuse_kv (self, &r->env, TITAN__BUS__CODE__UNAVAILABLE,
                          "raft: linearizable read not confirmed in time "
                          "(leader change?); retry");
            drop = true;
        }
        if (drop) {
            zlistx_delete (self->reads, zlistx_cursor (self->reads));
            free (r);
            r = zlistx_first (self->reads);   /* restart: cursor is gone */
        }
        else
            r = zlistx_next (self->reads);
    }
}

void
rg_expire_waiters (raft_group_t *self)
{
    int64_t now = zclock_mono ();
    rg_get_t *g = zlistx_first (self->gets);
    while (g) {
        if (now > g->deadline) {
            rg_refuse_kv (self, &g->env, TITAN__BUS__CODE__UNAVAILABLE,
                          "raft: no answer from the storage module in time");
            zlistx_delete (self->gets, zlistx_cursor (self->gets));
            free (g);
            g = zlistx_first (self->gets);
        }
        else
            g = zlistx_next (self->gets);
    }
    for (size_t i = 0; i < self->n_waiters; ) {
        if (now <= self->waiters [i].deadline)
            i++;
        else
            s_waiter_unknown (self, i, self->waiters [i].kind == W_PROPOSE
                              ? "write not committed in time"
                              : "change not committed in time");
    }
    rg_expire_forwards (self);
}