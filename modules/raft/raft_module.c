/*  The raft module: a CZMQ actor that hosts this node's Raft group (shard
    0 for now) and serves raft.propose, raft.read, raft.status,
    raft.member_add, raft.member_remove and raft.transfer_leader on the bus.

    Start-up: connect to the bus, ask the storage module (kv.stats on shard
    0) for the applied index it holds durably, bind the peer transport on
    the node's peer address, open the group in <data_dir>/raft/shard-0/
    (log/, hardstate, snapshots/) and signal ready.  A node with fresh
    state bootstraps itself as the sole voter unless `node/join` names
    another node (then it asks to be added, see below); `node/bootstrap =
    true` bootstraps whatever `node/join` says.

    Loop: one zpoller over the pipe, the bus and the transport, with a
    timeout that ends at the next tick.  Each wake-up drains the bus and
    the transport without blocking, runs the ticks that are due, lets the
    group do its work (raft_group_process) and flushes the transport once,
    so that every destination gets one batch per iteration.

    Join: while this node is not in the group's configuration and
    `node/join` is set, it sends a join request (its node id and addresses)
    to that address, retrying with backoff (join_retry_ms doubling up to
    2 s); a non-leader answers with a redirect to the leader's peer
    address, which becomes the new target.

    Peers that are not members: a Raft message whose sender is not a
    voter or learner of the group's latest configuration is dropped
    (logged at most every 5 s with a count), except (1) on a node that is
    not in a configuration itself (joining, or removed: it has nothing to
    protect) and (2) with CURVE on, where the key proves the sender is one
    of the cluster's nodes, a leader's message (append, heartbeat,
    snapshot) at a term above ours, or from the leader we follow: a member
    that lags behind the entry that added the current leader must still
    hear from it.  Without CURVE such a member waits until a leader it
    knows is elected (docs/security.md).  A removed node that campaigns, or a stray node of another
    cluster, cannot disturb the group.  Join requests are always taken
    (the leader decides).  With CURVE on (settings curve,
    curve_server_cert, curve_cert, curve_keys_dir; raft_curve.h) peer
    traffic is encrypted and only allowed keys connect at all.

    Stop: on $TERM a leader first hands leadership to its most caught-up
    voter and serves until it moved (at most two election timeouts).

    A storage failure in the group (the log or hard state could not be
    written) is fatal for the actor: it exits, and the kernel's supervisor
    restarts it, which reopens and recovers the files (fsyncs are never
    retried).

    Settings (module subtree): tick_ms (10), election_ticks (10: elections
    after 100-200 ms of silence), heartbeat_ticks (2), promote_gap (64),
    propose_timeout_ms (10000), read_timeout_ms (3000), join_retry_ms
    (200), storage_module ("bitcask"), max_message_bytes (64 MiB),
    startup_timeout_ms (20000), sync_commit (0), bind_addr (where the
    transport listens; default: the peer address), max_value_bytes (default:
    the bitcask module's setting, 8 MiB; larger values are refused before
    they are proposed), snapshot_entries (10000 applied entries between
    snapshots; 0: never), snapshot_slack (128 entries kept in the log below
    a snapshot), snapshot_chunk_bytes (per snapshot read, install and
    InstallSnapshot message; default: the bitcask module's
    snapshot_chunk_bytes, 1 MiB, which kv.snapshot_install enforces).
*/
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "titan/log.h"
#include "titan/bus.h"
#include "titan/bus_types.h"
#include "titan/module.h"
#include "titan/status.h"
#include "bus.pb-c.h"

#include "raft_group.h"
#include "raft_members.h"
#include "raft_transport.h"
#include "raft_wire.h"

#define JOIN_PEER        "~join"
#define JOIN_RETRY_MAX   2000
#define DRAIN_MAX        1024
#define REFUSED_LOG_MS   5000

typedef struct {
    titan_module_ctx_t *ctx;
    zsock_t *pipe;
    titan_bus_t *bus;
    raft_transport_t *transport;
    raft_group_t *group;
    raft_wire_node_t self;
    zlist_t *early;              /* envelopes received during start-up */
    int64_t tick_ms;
    int64_t next_tick;
    char join_target [RAFT_ADDR_MAX + 1];
    int64_t join_retry_ms;
    int64_t join_interval;
    int64_t next_join;
    int64_t election_ticks;
    int64_t stop_deadline;       /* $TERM received: leave by then */
    raft_curve_t *curve;         /* CURVE keys; NULL: plain TCP */
    uint64_t refused;            /* peer frames dropped since last logged */
    int64_t refused_logged_at;
} s_actor_t;

static void
s_stash (titan_envelope_t **env_p, void *arg)
{
    s_actor_t *self = arg;
    zlist_append (self->early, *env_p);
    *env_p = NULL;
}

static int64_t
s_setting (s_actor_t *self, const char *key, int64_t fallback, int64_t min,
           int64_t max, int *rc)
{
    int status = 0;
    int64_t v = titan_setting_int (self->ctx->settings, key, fallback, &status);
    if (status || v < min || v > max) {
        snprintf (self->ctx->error, sizeof self->ctx->error,
                  "raft: setting %s must be a whole number in %" PRId64 "..%"
                  PRId64, key, min, max);
        *rc = TITAN_ECONFIG;
    }
    return v;
}

/*  Asks the storage module for shard 0's durable applied index.  */
static int
s_storage_applied (s_actor_t *self, const char *module, int timeout_ms,
                   uint64_t *applied)
{
    Titan__Bus__KvStatsRequest req = TITAN__BUS__KV_STATS_REQUEST__INIT;
    req.shard = 0;
    uint8_t buf [16];
    size_t len = titan__bus__kv_stats_request__pack (&req, buf);
    titan_envelope_t *reply = titan_bus_call (self->bus, module, TITAN_T_KV_STATS,
                                              buf, len, timeout_ms, s_stash,
                                              self);
    if (!reply) {
        snprintf (self->ctx->error, sizeof self->ctx->error,
                  "raft: no answer to kv.stats from module '%s' in %d ms "
                  "(is it loaded before raft?)", module, timeout_ms);
        return -ETIMEDOUT;
    }
    Titan__Bus__KvStatsReply *r = titan__bus__kv_stats_reply__unpack (NULL,
        titan_envelope_size (reply), titan_envelope_data (reply));
    int rc = 0;
    if (!r || r->code != TITAN__BUS__CODE__OK) {
        snprintf (self->ctx->error, sizeof self->ctx->error,
                  "raft: kv.stats of shard 0 from '%s' failed: %s", module,
                  r && r->message ? r->message : "malformed reply");
        rc = -EIO;
    }
    else
        *applied = r->applied_index;
    if (r)
        titan__bus__kv_stats_reply__free_unpacked (r, NULL);
    titan_envelope_destroy (&reply);
    return rc;
}

/*  The address the transport listens on: the `bind_addr` setting, else
    the peer address (the transport listens on every interface when its
    host is a name, which ZeroMQ cannot bind).  */
static void
s_bind_addr (s_actor_t *self, char *out, size_t size)
{
    const char *bind = titan_setting_str (self->ctx->settings, "bind_addr", "");
    snprintf (out, size, "%s", *bind ? bind : self->ctx->peer_addr);
}

static int
s_start (s_actor_t *self)
{
    titan_module_ctx_t *ctx = self->ctx;
    int rc = 0;
    self->tick_ms = s_setting (self, "tick_ms", 10, 1, 1000, &rc);
    int64_t election = s_setting (self, "election_ticks", 10, 2, 100000, &rc);
    self->election_ticks = election;
    int64_t heartbeat = s_setting (self, "heartbeat_ticks", 2, 1, 100000, &rc);
    int64_t gap = s_setting (self, "promote_gap", 64, 0, 1000000, &rc);
    int64_t propose_to = s_setting (self, "propose_timeout_ms", 10000, 10,
                                    3600000, &rc);
    int64_t read_to = s_setting (self, "read_timeout_ms", 3000, 10, 3600000, &rc);
    self->join_retry_ms = s_setting (self, "join_retry_ms", 200, 10, 60000, &rc);
    int64_t max_msg = s_setting (self, "max_message_bytes", 64 << 20, 4096,
                                 1 << 30, &rc);
    int64_t startup_to = s_setting (self, "startup_timeout_ms", 20000, 10,
                                    3600000, &rc);
    int64_t sync_commit = s_setting (self, "sync_commit", 0, 0, 1, &rc);
    int64_t snap_entries = s_setting (self, "snapshot_entries", 10000, 0,
                                      INT64_MAX, &rc);
    int64_t snap_slack = s_setting (self, "snapshot_slack", 128, 0,
                                    INT64_MAX, &rc);
    /* kv.snapshot_install refuses chunks above the storage module's own
       limit: default to it */
    int chunk_status = 0;
    int64_t bc_chunk = titan_setting_int (ctx->node_config,
                                          "modules/bitcask/snapshot_chunk_bytes",
                                          1 << 20, &chunk_status);
    if (chunk_status || bc_chunk < 4096 || bc_chunk > (16 << 20))
        bc_chunk = 1 << 20;
    int64_t snap_chunk = s_setting (self, "snapshot_chunk_bytes", bc_chunk,
                                    4096, 16 << 20, &rc);
    if (rc)
        return rc;
    if (snap_chunk + 4096 > max_msg && max_msg >= 8192)
        snap_chunk = max_msg - 4096;   /* a chunk must fit in a peer frame */
    else
    if (snap_chunk + 4096 > max_msg) {
        snprintf (ctx->error, sizeof ctx->error, "raft: max_message_bytes "
                  "must be at least 8 KiB to carry snapshot chunks");
        return TITAN_ECONFIG;
    }
    if (heartbeat >= election) {
        snprintf (ctx->error, sizeof ctx->error,
                  "raft: heartbeat_ticks must be below election_ticks");
        return TITAN_ECONFIG;
    }
    int status = 0;
    int64_t max_value = titan_setting_int (ctx->node_config,
                                           "modules/bitcask/max_value_bytes",
                                           8 << 20, &status);
    if (status || max_value < 0 || max_value > UINT32_MAX)
        max_value = 8 << 20;
    max_value = s_setting (self, "max_value_bytes", max_value, 0, UINT32_MAX,
                           &rc);
    if (rc)
        return rc;
    const char *storage = titan_setting_str (ctx->settings, "storage_module",
                                             "bitcask");
    const char *join = titan_setting_str (ctx->node_config, "node/join", "");
    const char *boot = titan_setting_str (ctx->node_config, "node/bootstrap",
                                          "false");
    bool bootstrap = streq (boot, "true") || streq (boot, "1")
                  || streq (boot, "yes") || !*join
                  || streq (join, ctx->peer_addr);

    snprintf (self->self.node_id, sizeof self->self.node_id, "%s", ctx->node_id);
    snprintf (self->self.peer_addr, sizeof self->self.peer_addr, "%s",
              ctx->peer_addr ? ctx->peer_addr : "");
    snprintf (self->self.client_addr, sizeof self->self.client_addr, "%s",
              ctx->client_addr ? ctx->client_addr : "");
    if (!raft_members_valid_node_id (self->self.node_id)
    ||  !raft_members_valid_addr (self->self.peer_addr, false)
    ||  !raft_members_valid_addr (self->self.client_addr, true)) {
        snprintf (ctx->error, sizeof ctx->error,
                  "raft: node id '%s' or peer address '%s' is not valid",
                  ctx->node_id, ctx->peer_addr ? ctx->peer_addr : "");
        return TITAN_ECONFIG;
    }
    if (*join && !bootstrap) {
        if (!raft_members_valid_addr (join, false)) {
            snprintf (ctx->error, sizeof ctx->error,
                      "raft: node/join '%s' is not host:port", join);
            return TITAN_ECONFIG;
        }
        snprintf (self->join_target, sizeof self->join_target, "%s", join);
    }

    self->bus = titan_bus_connect (ctx->bus_endpoint, ctx->module_name);
    if (!self->bus) {
        snprintf (ctx->error, sizeof ctx->error,
                  "raft: cannot connect to the bus at %s", ctx->bus_endpoint);
        return -ECONNREFUSED;
    }
    uint64_t applied = 0;
    rc = s_storage_applied (self, storage, (int) startup_to, &applied);
    if (rc)
        return rc;

    char dir [1024];
    snprintf (dir, sizeof dir, "%s/raft", ctx->data_dir);
    if (mkdir (dir, 0755) && errno != EEXIST) {
        rc = -errno;
        snprintf (ctx->error, sizeof ctx->error, "raft: cannot create %.160s: %s",
                  dir, strerror (errno));
        return rc;
    }
    char bind [RAFT_ADDR_MAX + 1];
    s_bind_addr (self, bind, sizeof bind);
    rc = raft_curve_new (ctx->settings, ctx->data_dir, ctx->node_id,
                         &self->curve, ctx->error, sizeof ctx->error);
    if (rc)
        return rc;
    rc = raft_transport_new_curve (ctx->node_id, bind, (size_t) max_msg,
                                   self->curve, &self->transport, ctx->error,
                                   sizeof ctx->error);
    if (rc)
        return rc;
    snprintf (dir, sizeof dir, "%s/raft/shard-0", ctx->data_dir);
    raft_group_config_t gc = {
        .shard = 0,
        .dir = dir,
        .self = self->self,
        .bootstrap = bootstrap,
        .applied = applied,
        .election_ticks = (uint32_t) election,
        .heartbeat_ticks = (uint32_t) heartbeat,
        .max_value_bytes = (uint32_t) max_value,
        .promote_gap = (uint32_t) gap,
        .propose_timeout_ms = propose_to,
        .read_timeout_ms = read_to,
        .sync_hardstate_commit = sync_commit != 0,
        .storage_module = storage,
        .snapshot_entries = (uint64_t) snap_entries,
        .snapshot_slack = (uint64_t) snap_slack,
        .snapshot_chunk_bytes = (uint32_t) snap_chunk,
        .bus = self->bus,
        .transport = self->transport,
    };
    char err [256] = "";
    rc = raft_group_new (&gc, &self->group, err, sizeof err);
    if (rc) {
        snprintf (ctx->error, sizeof ctx->error, "raft: group 0: %.230s", err);
        return rc;
    }
    if (*self->join_target && !raft_group_is_member (self->group)) {
        raft_transport_set_peer (self->transport, JOIN_PEER, self->join_target);
        self->join_interval = self->join_retry_ms;
        self->next_join = zclock_mono ();
    }
    return 0;
}

/* ------------------------------------------------------------ bus */

static void
s_status (s_actor_t *self, titan_envelope_t **env_p)
{
    Titan__Bus__RaftStatusReply r = TITAN__BUS__RAFT_STATUS_REPLY__INIT;
    Titan__Bus__RaftGroupStatus g = TITAN__BUS__RAFT_GROUP_STATUS__INIT;
    Titan__Bus__RaftGroupStatus *gp = &g;
    raft_group_status (self->group, &g);
    r.node_id = (char *) self->ctx->node_id;
    r.n_groups = 1;
    r.groups = &gp;
    size_t len = titan__bus__raft_status_reply__get_packed_size (&r);
    uint8_t *buf = malloc (len + 1);
    if (buf) {
        titan__bus__raft_status_reply__pack (&r, buf);
        titan_bus_reply (self->bus, *env_p, buf, len);
        free (buf);
    }
    titan_envelope_destroy (env_p);
}

static void
s_handle_bus (s_actor_t *self, titan_envelope_t **env_p)
{
    titan_envelope_t *env = *env_p;
    if (env->kind == TITAN_MSG_REPLY) {
        if (!raft_group_on_reply (self->group, env_p))
            titan_envelope_destroy (env_p);     /* late reply: ignore */
        return;
    }
    if (env->kind != TITAN_MSG_REQUEST) {
        titan_envelope_destroy (env_p);
        return;
    }
    if (streq (env->type, TITAN_T_RAFT_PROPOSE))
        raft_group_propose (self->group, env_p);
    else
    if (streq (env->type, TITAN_T_RAFT_READ))
        raft_group_read (self->group, env_p);
    else
    if (streq (env->type, TITAN_T_RAFT_STATUS))
        s_status (self, env_p);
    else
    if (streq (env->type, TITAN_T_RAFT_ADD) || streq (env->type, TITAN_T_RAFT_REMOVE)
    ||  streq (env->type, TITAN_T_RAFT_TRANSFER))
        raft_group_member_change (self->group, env_p);
    else {
        Titan__Bus__KvReply r = TITAN__BUS__KV_REPLY__INIT;
        r.code = TITAN__BUS__CODE__UNIMPLEMENTED;
        char msg [128];
        snprintf (msg, sizeof msg, "raft: unknown request type '%s'", env->type);
        r.message = msg;
        size_t len = titan__bus__kv_reply__get_packed_size (&r);
        uint8_t *buf = malloc (len + 1);
        if (buf) {
            titan__bus__kv_reply__pack (&r, buf);
            titan_bus_reply (self->bus, env, buf, len);
            free (buf);
        }
        titan_envelope_destroy (env_p);
    }
}

/* ------------------------------------------------------------ peers */

static void
s_send_frame (s_actor_t *self, const char *peer, uint8_t *buf, size_t size)
{
    if (buf)
        raft_transport_queue (self->transport, peer, buf, size);
    free (buf);
}

/*  Counts a dropped peer frame and logs it, at most every
    REFUSED_LOG_MS, with the number dropped since the last line.  */
static void
s_note_refused (s_actor_t *self, const char *from, const char *why)
{
    self->refused++;
    int64_t now = zclock_mono ();
    if (self->refused_logged_at && now - self->refused_logged_at < REFUSED_LOG_MS)
        return;
    titan_log_warning ("raft %s: dropped %" PRIu64 " peer frame(s); latest from "
                  "'%s': %s", self->self.node_id, self->refused, from, why);
    self->refused = 0;
    self->refused_logged_at = now;
}

static bool
s_leader_message (raft_msg_type_t type)
{
    return type == RAFT_MSG_APPEND || type == RAFT_MSG_HEARTBEAT
        || type == RAFT_MSG_SNAPSHOT;
}

/*  True when a Raft message may be stepped (see the file comment).  */
static bool
s_sender_allowed (s_actor_t *self, const raft_msg_t *msg)
{
    const raft_t *core = raft_group_core (self->group);
    const raft_config_t *cfg = raft_config (core);
    if (raft_config_is_voter (cfg, msg->from)
    ||  raft_config_is_learner (cfg, msg->from)
    ||  !raft_group_is_member (self->group))
        return true;
    /* only when CURVE authenticated the sender as one of the cluster's
       keys: without it, a foreign cluster's leader would pass */
    return self->curve && s_leader_message (msg->type)
        && (msg->term > raft_term (core)
            || (msg->term == raft_term (core) && raft_leader (core) == msg->from));
}

static void
s_handle_frame (s_actor_t *self, const char *from, const uint8_t *data,
                size_t size)
{
    raft_wire_frame_t frame;
    char err [256];
    int rc = raft_wire_decode (data, size, &frame, err, sizeof err);
    if (rc == 0 && strcmp (frame.sender.node_id, from) != 0) {
        snprintf (err, sizeof err, "frame claims sender '%s'",
                  frame.sender.node_id);
        rc = -EPROTO;
    }
    if (rc == 0 && frame.kind == RAFT_WIRE_RAFT
    &&  frame.msg.from != raft_members_id (frame.sender.node_id)) {
        snprintf (err, sizeof err, "Raft message from id %" PRIu64 " is not "
                  "the raft id of its sender", frame.msg.from);
        rc = -EPROTO;
    }
    if (rc == 0 && frame.kind == RAFT_WIRE_RAFT
    &&  !s_sender_allowed (self, &frame.msg)) {
        snprintf (err, sizeof err, "not a member of group %" PRIu64 " (Raft message "
                  "type %d, term %" PRIu64 ")", frame.msg.group,
                  (int) frame.msg.type, frame.msg.term);
        rc = -EPERM;
    }
    if (rc) {
        s_note_refused (self, from, err);
        raft_wire_frame_clear (&frame);
        return;
    }
    /* a join names a node outside the configuration: it must not
       redirect the traffic of a member that has the same id */
    const raft_config_t *cfg = raft_config (raft_group_core (self->group));
    uint64_t sender_id = raft_members_id (frame.sender.node_id);
    if (frame.kind != RAFT_WIRE_JOIN
    ||  !(raft_config_is_voter (cfg, sender_id)
          || raft_config_is_learner (cfg, sender_id)))
        raft_group_learn_peer (self->group, &frame.sender);
    uint8_t *buf = NULL;
    size_t len = 0;
    switch (frame.kind) {
        case RAFT_WIRE_RAFT:
            raft_group_step (self->group, &frame.msg);
            break;
        case RAFT_WIRE_JOIN: {
            raft_wire_join_reply_t reply;
            if (frame.join_group != 0
            ||  strcmp (frame.join.node_id, frame.sender.node_id) != 0) {
                memset (&reply, 0, sizeof reply);
                reply.group = frame.join_group;
                reply.status = RAFT_JOIN_REFUSED;
                snprintf (reply.message, sizeof reply.message,
                          "unknown group, or a join on behalf of another node");
            }
            else
                raft_group_join (self->group, &frame.join, &reply);
            if (raft_wire_encode_join_reply (&self->self, &reply, &buf, &len) == 0)
                s_send_frame (self, frame.sender.node_id, buf, len);
            break;
        }
        case RAFT_WIRE_JOIN_REPLY:
            if (!*self->join_target)
                break;
            if (frame.reply.status == RAFT_JOIN_REDIRECT
            &&  *frame.reply.leader_peer_addr
            &&  strcmp (frame.reply.leader_peer_addr, self->join_target) != 0) {
                snprintf (self->join_target, sizeof self->join_target, "%s",
                          frame.reply.leader_peer_addr);
                raft_transport_set_peer (self->transport, JOIN_PEER,
                                         self->join_target);
                self->join_interval = self->join_retry_ms;
                self->next_join = zclock_mono () + self->join_retry_ms / 2;
            }
            else
            if (frame.reply.status == RAFT_JOIN_REFUSED)
                titan_log_error ("raft %s: join refused by '%s': %s",
                            self->self.node_id, frame.sender.node_id,
                            frame.reply.message);
            break;
    }
    raft_wire_frame_clear (&frame);
}

static void
s_drain_transport (s_actor_t *self)
{
    for (int i = 0; i < DRAIN_MAX; i++) {
        char *from = NULL;
        zmsg_t *batch = NULL;
        int n = raft_transport_recv (self->transport, &from, &batch);
        if (n == 0)
            break;
        if (n == -EPERM)
            s_note_refused (self, "?", "a batch whose sender id is not the "
                            "node its CURVE key is bound to");
        if (n > 0)
            for (zframe_t *f = zmsg_first (batch); f; f = zmsg_next (batch))
                s_handle_frame (self, from, zframe_data (f), zframe_size (f));
        zmsg_destroy (&batch);
        zstr_free (&from);
    }
}

static void
s_join_duty (s_actor_t *self)
{
    if (!*self->join_target)
        return;
    if (raft_group_is_member (self->group)) {
        raft_transport_remove_peer (self->transport, JOIN_PEER);
        self->join_target [0] = '\0';
        return;
    }
    int64_t now = zclock_mono ();
    if (now < self->next_join)
        return;
    uint8_t *buf = NULL;
    size_t len = 0;
    if (raft_wire_encode_join (&self->self, 0, &buf, &len) == 0)
        s_send_frame (self, JOIN_PEER, buf, len);
    self->next_join = now + self->join_interval;
    self->join_interval = self->join_interval * 2 > JOIN_RETRY_MAX
                        ? JOIN_RETRY_MAX : self->join_interval * 2;
}

/* ------------------------------------------------------------ actor */

static bool
s_handle_pipe (s_actor_t *self)
{
    char *cmd = zstr_recv (self->pipe);
    if (!cmd)
        return false;
    bool go_on = true;
    if (streq (cmd, "$TERM"))
        go_on = false;
    else
    if (streq (cmd, "PING"))
        zstr_send (self->pipe, "PONG");
    zstr_free (&cmd);
    return go_on;
}

static void
s_raft_actor (zsock_t *pipe, void *args)
{
    s_actor_t actor;
    memset (&actor, 0, sizeof actor);
    s_actor_t *self = &actor;
    self->ctx = (titan_module_ctx_t *) args;
    titan_log_bind (self->ctx->logger, self->ctx->module_name);
    self->pipe = pipe;
    self->early = zlist_new ();
    int rc = s_start (self);
    if (rc) {
        titan_log_error ("%s", self->ctx->error);
        raft_group_destroy (&self->group);
        raft_transport_destroy (&self->transport);
        raft_curve_destroy (&self->curve);
        while (zlist_size (self->early)) {
            titan_envelope_t *env = zlist_pop (self->early);
            titan_envelope_destroy (&env);
        }
        zlist_destroy (&self->early);
        titan_bus_destroy (&self->bus);
        zsock_signal (pipe, 1);
        return;
    }
    zsock_signal (pipe, 0);
    while (zlist_size (self->early)) {
        titan_envelope_t *env = zlist_pop (self->early);
        s_handle_bus (self, &env);
    }
    zpoller_t *poller = zpoller_new (pipe, titan_bus_sock (self->bus),
                                     raft_transport_sock (self->transport),
                                     NULL);
    self->next_tick = zclock_mono () + self->tick_ms;
    bool running = true;
    while (running) {
        int64_t now = zclock_mono ();
        int timeout = self->next_tick > now ? (int) (self->next_tick - now) : 0;
        void *which = zpoller_wait (poller, timeout);
        if (zpoller_terminated (poller))
            break;
        if (which == pipe && !s_handle_pipe (self)) {
            /* a clean stop of the leader: hand leadership over first
               and keep serving until it moved (at most two election
               timeouts), so that the group does not wait for a timeout */
            char target [RAFT_NODE_ID_MAX + 1] = "";
            if (!self->stop_deadline
            &&  raft_group_transfer_out (self->group, target,
                                         sizeof target) == 0) {
                titan_log_info ("raft %s: stopping; handing leadership to %s",
                           self->self.node_id, target);
                self->stop_deadline = zclock_mono ()
                                    + 2 * self->election_ticks * self->tick_ms;
            }
            else
                break;
        }
        if (self->stop_deadline
        &&  (zclock_mono () > self->stop_deadline
             || raft_role (raft_group_core (self->group)) != RAFT_LEADER))
            break;
        for (int i = 0; i < DRAIN_MAX; i++) {
            if (!(zsock_events (titan_bus_sock (self->bus)) & ZMQ_POLLIN))
                break;
            titan_envelope_t *env = titan_bus_recv (self->bus, 0);
            if (!env)
                continue;               /* malformed, dropped */
            s_handle_bus (self, &env);
        }
        s_drain_transport (self);
        now = zclock_mono ();
        if (now - self->next_tick > 10 * self->tick_ms)
            self->next_tick = now;      /* stalled: do not tick in a burst */
        while (now >= self->next_tick) {
            raft_group_tick (self->group);
            self->next_tick += self->tick_ms;
        }
        s_join_duty (self);
        rc = raft_group_process (self->group);
        raft_transport_flush (self->transport);
        if (rc) {
            titan_log_error ("raft %s: group 0 failed (%s); exiting so that the "
                        "supervisor restarts the module and recovery runs",
                        self->self.node_id, titan_strerror (rc));
            running = false;
        }
    }
    zpoller_destroy (&poller);
    raft_group_destroy (&self->group);
    raft_transport_flush (self->transport);
    raft_transport_destroy (&self->transport);
    raft_curve_destroy (&self->curve);
    zlist_destroy (&self->early);
    titan_bus_destroy (&self->bus);
}

TITAN_MODULE_DEFINE ("raft", "0.1.0", s_raft_actor);
