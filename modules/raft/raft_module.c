/*  The raft module: a CZMQ actor that hosts this node's Raft groups
    (multi-Raft: one group per shard replica, raft_groups.h) and serves
    raft.propose, raft.read, raft.status, raft.member_add,
    raft.member_remove and raft.transfer_leader on the bus, each request
    going to the group its `shard` field names.

    Start-up: connect to the bus, bind the peer transport on the node's
    peer address, and open the groups 0..shards-1 (setting `shards`;
    static placement: every node hosts every shard), each in
    <data_dir>/raft/shard-<n>/ (log/, hardstate, snapshots/) after asking
    the storage module (kv.stats of that shard) for the applied index it
    holds durably; then signal ready.  A node with fresh state bootstraps
    itself as the sole voter of each group unless `node/join` names
    another node (then it asks to be added, see below); `node/bootstrap =
    true` bootstraps whatever `node/join` says.

    Loop: one zmq_poll over the pipe, the bus and the transport, with a
    timeout that ends at the next tick.  Each wake-up drains the bus and
    the transport (those readable) without blocking, runs the ticks that are due on every
    group, lets every group do its work (raft_group_process) and flushes
    the transport once, so that every destination gets one batch per
    iteration whatever the number of groups: the idle heartbeats of all
    the groups a node leads go to a follower in the same batch whenever
    they fall due in the same tick (docs/sharding.md has the figures).
    All groups share the one transport; an inbound Raft message goes to
    the group its `group` field names, and one for a group this node does
    not host is dropped (logged at most once every 10 s).

    Join: while this node is not in a group's configuration and
    `node/join` is set, it sends a join request for that group (its node
    id and addresses) to that address, retrying with backoff
    (join_retry_ms doubling up to 2 s); a non-leader answers with a
    redirect to the group's leader, which becomes that group's target.

    Peers that are not members: a Raft message whose sender is not a
    voter or learner of the latest configuration of the group the message
    names (`group`, looked up in the registry) is dropped (logged at most
    every 5 s with a count), except (1) when this node is not in that
    group's configuration itself (joining, or removed: it has nothing to
    protect) and (2) with CURVE on, where the key proves the sender is one
    of the cluster's nodes, a leader's message (append, heartbeat,
    snapshot) at a term above the group's, or from the leader the group
    follows: a member that lags behind the entry that added the current
    leader must still hear from it.  Without CURVE such a member waits
    until a leader it knows is elected (docs/security.md).  A removed node
    that campaigns, or a stray node of another cluster, cannot disturb a
    group.  Join requests are always taken (the group's leader decides).
    With CURVE on (settings curve, curve_server_cert, curve_cert,
    curve_keys_dir; raft_curve.h) peer traffic is encrypted and only
    allowed keys connect at all.

    Stop: on $TERM this node first hands the leadership of every group it
    leads to that group's most caught-up voter and serves until none is
    left (at most two election timeouts).

    A storage failure in a group (the log or hard state could not be
    written) is fatal for the actor: it exits, and the kernel's supervisor
    restarts it, which reopens and recovers the files (fsyncs are never
    retried).

    Leadership balancing (with several shards): every balance_ms, each
    group this node leads hands leadership to its preferred leader (the
    voter at position shard mod voters in raft id order) once that voter
    has caught up, so that the leaders of the shards, and with them the
    write load, spread over the nodes.

    Ring placement (setting placement = ring; raft_placement.h,
    docs/sharding.md): the ring module is loaded before raft; this module
    hosts the meta group (TITAN_META_SHARD, storage module "ring") and
    only the data groups the ring's routing table places here (plus those
    it still had when it stopped).  A bootstrapping node creates the meta
    group and the cluster (CREATE, ADD of itself, then every data shard as
    sole voter); a `node/join` node joins the meta group only, and the
    meta leader ADDs it to the ring; the leaders of the data groups move
    the replicas as the table says (raft_reconcile.h).  raft.member_remove
    of the meta shard drains a node.  Without a table (yet) only the meta
    group is served.

    Settings (module subtree): placement (ring|static, default ring: the
    ring module must be loaded), placement_ms (100: ring reconciliation
    period), shards (16: the number of data shards Q of static placement,
    every node of a cluster must use the same; with ring placement Q is
    modules/ring/shards), balance_ms (1000; 0: no
    leadership balancing), tick_ms (10), election_ticks (10: elections
    after 100-200 ms of silence), heartbeat_ticks (2), read_lease (on:
    leaders answer linearizable reads from a lease of 90% of the election
    timeout, docs/raft.md; off: every read takes a heartbeat round),
    promote_gap (64),
    propose_timeout_ms (10000), read_timeout_ms (3000), join_retry_ms
    (200), storage_module ("bitcask"), max_message_bytes (64 MiB),
    startup_timeout_ms (20000), sync_commit (0), sync_threads (4: the
    readies of all groups are written, then synced together on N <= 16
    helper threads and the actor, docs/raft.md; 0: each group persists its
    readies on its own, one fdatasync after the other), bind_addr (where the
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
#include "raft_groups.h"
#include "raft_members.h"
#include "raft_placement.h"

/*  The setting sync_threads by default: 4 helper threads (plus the
    actor) sync the readies of all groups together.  The Q = 16
    clusters that failed to settle with it were held up by a learner's
    election timer (fixed in the core); measured after the fix:
    +15 % puts on 3 nodes with Q = 16 (docs/benchmarks.md).  */
#define RAFT_SYNC_POOL_THREADS  4
#include "ring_place.h"
#include "raft_transport.h"
#include "raft_wire.h"

#define JOIN_PEER        "~join"
#define JOIN_RETRY_MAX   2000
#define DRAIN_MAX        1024
#define REFUSED_LOG_MS   5000
#define UNKNOWN_LOG_MS   10000

/*  Dropped messages of one kind, logged at most once per period with the
    count since the last line.  */
typedef struct {
    uint64_t count;              /* dropped since the last line */
    int64_t logged_at;           /* when that line was logged (0: never) */
} s_drops_t;

/*  Counts one drop; returns the count to log (and starts a new period)
    when a line is due, else 0.  */
static uint64_t
s_drops_due (s_drops_t *drops, int64_t period_ms)
{
    drops->count++;
    int64_t now = zclock_mono ();
    if (drops->logged_at && now - drops->logged_at < period_ms)
        return 0;
    uint64_t count = drops->count;
    drops->count = 0;
    drops->logged_at = now;
    return count;
}

/*  The join of one group: where the next request goes and when.  */
typedef struct {
    uint32_t group;
    char target [RAFT_NODE_ID_MAX + 1];   /* transport peer id */
    int64_t interval;
    int64_t next;
} s_join_t;

typedef struct {
    titan_module_ctx_t *ctx;
    zsock_t *pipe;
    titan_bus_t *bus;
    raft_transport_t *transport;
    raft_groups_t *groups;
    raft_group_config_t gc;      /* template of every group's config */
    char raft_dir [1024];
    int64_t startup_timeout_ms;
    uint32_t shards;             /* Q */
    raft_wire_node_t self;
    zlist_t *early;              /* envelopes received during start-up */
    int64_t tick_ms;
    int64_t next_tick;
    char join_addr [RAFT_ADDR_MAX + 1];   /* node/join; empty: no join */
    int64_t join_retry_ms;
    s_join_t *joins;             /* groups this node still asks to join */
    size_t n_joins;
    int64_t election_ticks;
    int64_t stop_deadline;       /* $TERM received: leave by then */
    raft_curve_t *curve;         /* CURVE keys; NULL: plain TCP */
    s_drops_t refused;           /* peer frames dropped (rate-limited log) */
    int64_t started_at;          /* when the actor signalled ready */
    int64_t balance_ms;          /* leadership balancing period; 0: off */
    int64_t next_balance;
    s_drops_t unknown;           /* messages for groups not hosted here */
    raft_placement_t *placement; /* placement = ring; NULL: static */
    titan_job_pool_t *syncer;    /* syncs the groups' readies together */
    int64_t sync_threads;        /* 0: each group persists on its own */
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

/*  A setting that is one of two words: returns `first` or `second`
    (`first` when unset); anything else sets the error and *rc.  */
static const char *
s_setting_choice (s_actor_t *self, const char *key, const char *first,
                  const char *second, int *rc)
{
    const char *v = titan_setting_str (self->ctx->settings, key, first);
    if (streq (v, first))
        return first;
    if (streq (v, second))
        return second;
    snprintf (self->ctx->error, sizeof self->ctx->error, "raft: setting %s "
              "must be %s or %s, not '%.100s'", key, first, second, v);
    *rc = TITAN_ECONFIG;
    return first;
}

/*  Asks the storage module for a shard's durable applied index.  */
static int
s_storage_applied (s_actor_t *self, const char *module, uint32_t shard,
                   int timeout_ms, uint64_t *applied)
{
    Titan__Bus__KvStatsRequest req = TITAN__BUS__KV_STATS_REQUEST__INIT;
    req.shard = shard;
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
                  "raft: kv.stats of shard %u from '%s' failed: %s", shard,
                  module, r && r->message ? r->message : "malformed reply");
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

/*  Notes that group `id` must be joined through node/join (a fresh,
    non-bootstrapping node).  */
static int
s_join_add (s_actor_t *self, uint32_t id)
{
    s_join_t *grown = realloc (self->joins, (self->n_joins + 1) * sizeof *grown);
    if (!grown)
        return -ENOMEM;
    self->joins = grown;
    s_join_t *j = &self->joins [self->n_joins++];
    memset (j, 0, sizeof *j);
    j->group = id;
    snprintf (j->target, sizeof j->target, "%s", JOIN_PEER);
    j->interval = self->join_retry_ms;
    j->next = zclock_mono ();
    return 0;
}

/*  Opens (creating if needed) group `id` in its directory, with the
    storage module's applied index of that shard (0 for a `fresh` replica
    of ring placement: whatever the storage still holds of an earlier
    replica of the same group is a prefix of its log, and replays are
    skipped), and adds it to the registry; `bootstrap`: sole voter when
    its state is fresh.  Returns 0 or a negative status (message in
    ctx->error).  */
static int
s_open_group (s_actor_t *self, uint32_t id, const char *storage,
              bool bootstrap, bool fresh)
{
    titan_module_ctx_t *ctx = self->ctx;
    uint64_t applied = 0;
    int rc = fresh ? 0 : s_storage_applied (self, storage, id,
                                            (int) self->startup_timeout_ms,
                                            &applied);
    if (rc)
        return rc;
    char dir [1100];
    if (raft_groups_dir (self->raft_dir, id, dir, sizeof dir)) {
        snprintf (ctx->error, sizeof ctx->error, "raft: group %u: directory "
                  "name too long under %.160s", id, self->raft_dir);
        return -ENAMETOOLONG;
    }
    raft_group_config_t gc = self->gc;
    gc.shard = id;
    gc.dir = dir;
    gc.applied = applied;
    gc.bootstrap = bootstrap;
    gc.storage_module = storage;
    gc.managed = self->placement && id != TITAN_META_SHARD;
    raft_group_t *group = NULL;
    char err [256] = "";
    rc = raft_group_new (&gc, &group, err, sizeof err);
    if (rc) {
        snprintf (ctx->error, sizeof ctx->error, "raft: group %u: %.230s",
                  id, err);
        return rc;
    }
    bool join = *self->join_addr && !raft_group_is_member (group)
             && (!self->placement || id == TITAN_META_SHARD);
    rc = raft_groups_add (self->groups, id, &group);
    if (rc) {
        raft_group_destroy (&group);
        snprintf (ctx->error, sizeof ctx->error, "raft: group %u: %s", id,
                  titan_strerror (rc));
        return rc;
    }
    if (join) {
        raft_transport_set_peer (self->transport, JOIN_PEER, self->join_addr);
        rc = s_join_add (self, id);
    }
    return rc;
}

/*  raft_placement_open_fn: a data group the ring places here.  */
static int
s_placement_open (void *arg, uint32_t shard, bool bootstrap, bool fresh)
{
    s_actor_t *self = arg;
    const char *storage = titan_setting_str (self->ctx->settings,
                                             "storage_module", "bitcask");
    int rc = s_open_group (self, shard, storage, bootstrap, fresh);
    if (rc)
        titan_log_error ("%s", self->ctx->error);
    return rc;
}

/*  placement = ring: the meta group (storage module "ring"), every data
    group that has a directory here (the replicas this node held when it
    stopped), and the placement that creates and destroys the others.  */
static int
s_start_ring (s_actor_t *self, const char *storage, bool bootstrap,
              int64_t duty_ms)
{
    titan_module_ctx_t *ctx = self->ctx;
    char meta_dir [1100], marker [1100];
    raft_groups_dir (self->raft_dir, TITAN_META_SHARD, meta_dir, sizeof meta_dir);
    snprintf (marker, sizeof marker, "%s/ring-bootstrap", self->raft_dir);
    struct stat st;
    bool creating = (bootstrap && stat (meta_dir, &st) != 0)
                 || stat (marker, &st) == 0;
    int status = 0;
    int64_t q = titan_setting_int (ctx->node_config, "modules/ring/shards",
                                   RING_DEFAULT_SHARDS, &status);
    int64_t r = titan_setting_int (ctx->node_config, "modules/ring/replicas",
                                   RING_DEFAULT_REPLICAS, &status);
    if (status || q < 1 || q > 65536 || r < 1 || r > 7) {
        snprintf (ctx->error, sizeof ctx->error, "raft: modules/ring/shards "
                  "(1..65536) or replicas (1..7) is not valid");
        return TITAN_ECONFIG;
    }
    raft_placement_config_t pc = {
        .self = self->self,
        .raft_dir = self->raft_dir,
        .storage_module = storage,
        .create_shards = (uint32_t) q,
        .create_replicas = (uint32_t) r,
        .bootstrap = creating,
        .duty_ms = duty_ms,
        .bus = self->bus,
        .groups = self->groups,
        .transport = self->transport,
        .open = s_placement_open,
        .open_arg = self,
    };
    self->placement = raft_placement_new (&pc);
    if (!self->placement)
        return -ENOMEM;
    int rc = s_open_group (self, TITAN_META_SHARD, "ring", bootstrap, false);
    uint32_t *ids = NULL;
    size_t n = 0;
    if (rc == 0)
        rc = raft_groups_scan_dirs (self->raft_dir, &ids, &n);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = s_open_group (self, ids [i], storage, false, false);
    free (ids);
    return rc;
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
    self->shards = (uint32_t) s_setting (self, "shards", RING_DEFAULT_SHARDS,
                                         1, 4096, &rc);
    self->balance_ms = s_setting (self, "balance_ms", 1000, 0, 3600000, &rc);
    int64_t duty_ms = s_setting (self, "placement_ms", 100, 10, 60000, &rc);
    bool read_lease = streq (s_setting_choice (self, "read_lease", "on", "off",
                                               &rc), "on");
    const char *placement = s_setting_choice (self, "placement", "ring",
                                              "static", &rc);
    bool forward = streq (s_setting_choice (self, "forward_proposals", "on",
                                            "off", &rc), "on");
    if (rc)
        return rc;
    if (streq (placement, "ring") && !zconfig_locate (ctx->node_config,
                                                      "modules/ring")) {
        snprintf (ctx->error, sizeof ctx->error, "raft: placement = ring (the "
                  "default) needs the ring module: list modules/ring (path = "
                  "titan_ring.so) before raft, or set modules/raft/placement "
                  "= static");
        return TITAN_ECONFIG;
    }
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
        snprintf (self->join_addr, sizeof self->join_addr, "%s", join);
    }

    self->bus = titan_bus_connect (ctx->bus_endpoint, ctx->module_name);
    if (!self->bus) {
        snprintf (ctx->error, sizeof ctx->error,
                  "raft: cannot connect to the bus at %s", ctx->bus_endpoint);
        return -ECONNREFUSED;
    }
    snprintf (self->raft_dir, sizeof self->raft_dir, "%s/raft", ctx->data_dir);
    if (mkdir (self->raft_dir, 0755) && errno != EEXIST) {
        rc = -errno;
        snprintf (ctx->error, sizeof ctx->error, "raft: cannot create %.160s: %s",
                  self->raft_dir, strerror (errno));
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
    self->groups = raft_groups_new ();
    if (!self->groups)
        return -ENOMEM;
    self->startup_timeout_ms = startup_to;
    self->gc = (raft_group_config_t) {
        .self = self->self,
        .bootstrap = bootstrap,
        .election_ticks = (uint32_t) election,
        .heartbeat_ticks = (uint32_t) heartbeat,
        .election_us = (uint64_t) election * (uint64_t) self->tick_ms * 1000u,
        .lease_us = read_lease
                  ? (uint64_t) election * (uint64_t) self->tick_ms * 900u : 0,
        .max_value_bytes = (uint32_t) max_value,
        .promote_gap = (uint32_t) gap,
        .propose_timeout_ms = propose_to,
        .read_timeout_ms = read_to,
        .sync_hardstate_commit = sync_commit != 0,
        .storage_module = storage,
        .snapshot_entries = (uint64_t) snap_entries,
        .snapshot_slack = (uint64_t) snap_slack,
        .snapshot_chunk_bytes = (uint32_t) snap_chunk,
        .forward_proposals = forward,
        .bus = self->bus,
        .transport = self->transport,
    };
    if (streq (placement, "ring"))
        return s_start_ring (self, storage, bootstrap, duty_ms);
    for (uint32_t shard = 0; shard < self->shards && rc == 0; shard++)
        rc = s_open_group (self, shard, storage, bootstrap, false);
    return rc;
}

/* ------------------------------------------------------------ bus */

static void
s_status (s_actor_t *self, titan_envelope_t **env_p)
{
    Titan__Bus__RaftStatusReply r = TITAN__BUS__RAFT_STATUS_REPLY__INIT;
    size_t n = raft_groups_size (self->groups);
    Titan__Bus__RaftGroupStatus *gs = calloc (n ? n : 1, sizeof *gs);
    Titan__Bus__RaftGroupStatus **gp = calloc (n ? n : 1, sizeof *gp);
    if (gs && gp) {
        for (size_t i = 0; i < n; i++) {
            titan__bus__raft_group_status__init (&gs [i]);
            raft_group_status (raft_groups_at (self->groups, i, NULL), &gs [i]);
            gp [i] = &gs [i];
        }
        r.node_id = (char *) self->ctx->node_id;
        r.n_groups = n;
        r.groups = gp;
        titan_bus_reply_pb (self->bus, *env_p, &r);
    }
    /* out of memory: no reply; the caller times out */
    free (gp);
    free (gs);
    titan_envelope_destroy (env_p);
}

/*  Refuses a request with a KvReply (the reply type of raft.propose and
    raft.read; a RaftMemberReply has the same first two fields).  */
static void
s_refuse (s_actor_t *self, titan_envelope_t **env_p, Titan__Bus__Code code,
          const char *message)
{
    Titan__Bus__KvReply r = TITAN__BUS__KV_REPLY__INIT;
    r.code = code;
    r.message = (char *) message;
    titan_bus_reply_pb (self->bus, *env_p, &r);
    titan_envelope_destroy (env_p);
}

/*  The group a request is for, or NULL after refusing it (malformed, or
    a shard this node does not host: UNAVAILABLE without a leader hint, so
    that a coordinator asks the shard's replicas instead).  */
static raft_group_t *
s_request_group (s_actor_t *self, titan_envelope_t **env_p)
{
    uint32_t shard;
    char msg [160];
    if (raft_groups_peek_shard (titan_envelope_data (*env_p),
                                titan_envelope_size (*env_p), &shard)) {
        snprintf (msg, sizeof msg, "raft: malformed %s request",
                  (*env_p)->type);
        s_refuse (self, env_p, TITAN__BUS__CODE__INVALID_ARGUMENT, msg);
        return NULL;
    }
    raft_group_t *group = raft_groups_find (self->groups, shard);
    uint32_t q = self->placement ? raft_placement_shards (self->placement)
                                 : self->shards;
    if (!group) {
        if (q && shard >= q && shard != TITAN_META_SHARD) {
            snprintf (msg, sizeof msg, "raft: shard %u does not exist (the "
                      "cluster has %u shards)", shard, q);
            s_refuse (self, env_p, TITAN__BUS__CODE__INVALID_ARGUMENT, msg);
        }
        else {
            snprintf (msg, sizeof msg, "raft: shard %u has no replica on this "
                      "node (%s)", shard, self->self.node_id);
            s_refuse (self, env_p, TITAN__BUS__CODE__UNAVAILABLE, msg);
        }
    }
    return group;
}

/*  Offers a bus reply to each group until one takes it.  Correlation ids
    are unique per bus connection, so at most one group waits for it.  */
static void
s_route_reply (s_actor_t *self, titan_envelope_t **env_p)
{
    size_t n = raft_groups_size (self->groups);
    for (size_t i = 0; i < n && *env_p; i++)
        raft_group_on_reply (raft_groups_at (self->groups, i, NULL), env_p);
    titan_envelope_destroy (env_p);             /* late reply: ignore */
}

static void
s_handle_bus (s_actor_t *self, titan_envelope_t **env_p)
{
    titan_envelope_t *env = *env_p;
    if (self->placement && raft_placement_on_bus (self->placement, env_p))
        return;
    if (env->kind == TITAN_MSG_REPLY) {
        s_route_reply (self, env_p);
        return;
    }
    if (env->kind != TITAN_MSG_REQUEST) {
        titan_envelope_destroy (env_p);
        return;
    }
    if (streq (env->type, TITAN_T_RAFT_STATUS)) {
        s_status (self, env_p);
        return;
    }
    bool propose = streq (env->type, TITAN_T_RAFT_PROPOSE);
    bool read = streq (env->type, TITAN_T_RAFT_READ);
    bool member = streq (env->type, TITAN_T_RAFT_ADD)
               || streq (env->type, TITAN_T_RAFT_REMOVE)
               || streq (env->type, TITAN_T_RAFT_TRANSFER);
    if (!propose && !read && !member) {
        char msg [128];
        snprintf (msg, sizeof msg, "raft: unknown request type '%s'", env->type);
        s_refuse (self, env_p, TITAN__BUS__CODE__UNIMPLEMENTED, msg);
        return;
    }
    raft_group_t *group = s_request_group (self, env_p);
    if (!group)
        return;
    if (self->placement && streq ((*env_p)->type, TITAN_T_RAFT_REMOVE)
    &&  group == raft_groups_find (self->groups, TITAN_META_SHARD)) {
        raft_placement_drain (self->placement, env_p);    /* a drain */
        return;
    }
    if (propose)
        raft_group_propose (group, env_p);
    else
    if (read)
        raft_group_read (group, env_p);
    else
        raft_group_member_change (group, env_p);
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
    uint64_t count = s_drops_due (&self->refused, REFUSED_LOG_MS);
    if (count)
        titan_log_warning ("raft %s: dropped %" PRIu64 " peer frame(s); latest "
                           "from '%s': %s", self->self.node_id, count, from, why);
}

static bool
s_leader_message (raft_msg_type_t type)
{
    return type == RAFT_MSG_APPEND || type == RAFT_MSG_HEARTBEAT
        || type == RAFT_MSG_SNAPSHOT;
}

/*  True when the node with raft id `id` is a voter or learner of the
    group's latest configuration.  */
static bool
s_is_member (raft_group_t *group, uint64_t id)
{
    const raft_config_t *cfg = raft_config (raft_group_core (group));
    return raft_config_is_voter (cfg, id) || raft_config_is_learner (cfg, id);
}

/*  The hosted group a peer frame names, or NULL.  */
static raft_group_t *
s_group_of (s_actor_t *self, uint64_t group)
{
    return group <= UINT32_MAX ? raft_groups_find (self->groups, (uint32_t) group)
                               : NULL;
}

/*  True when a Raft message may be stepped (see the file comment): the
    filter of the group the message names; a message for a group this node
    does not host passes here and is dropped by s_unknown_group.  */
static bool
s_sender_allowed (s_actor_t *self, const raft_msg_t *msg)
{
    raft_group_t *group = s_group_of (self, msg->group);
    if (!group
    ||  s_is_member (group, msg->from)
    ||  !raft_group_is_member (group))
        return true;
    /* only when CURVE authenticated the sender as one of the cluster's
       keys: without it, a foreign cluster's leader would pass */
    const raft_t *core = raft_group_core (group);
    return self->curve && s_leader_message (msg->type)
        && (msg->term > raft_term (core)
            || (msg->term == raft_term (core) && raft_leader (core) == msg->from));
}

/*  A message for a group this node does not host: dropped, and logged at
    most once every UNKNOWN_LOG_MS with the count since.  */
static void
s_unknown_group (s_actor_t *self, const char *from, uint64_t group)
{
    uint64_t count = s_drops_due (&self->unknown, UNKNOWN_LOG_MS);
    if (count)
        titan_log_warning ("raft %s: dropped %" PRIu64 " message(s) for groups "
                           "this node does not host (latest: group %" PRIu64
                           " from '%s')", self->self.node_id, count, group, from);
}

static s_join_t *
s_join_find (s_actor_t *self, uint64_t group)
{
    for (size_t i = 0; i < self->n_joins; i++)
        if (self->joins [i].group == group)
            return &self->joins [i];
    return NULL;
}

static void
s_handle_join_reply (s_actor_t *self, const raft_wire_join_reply_t *reply,
                     const char *from)
{
    s_join_t *j = s_join_find (self, reply->group);
    if (!j)
        return;
    if (reply->status == RAFT_JOIN_REDIRECT && *reply->leader_id
    &&  *reply->leader_peer_addr
    &&  strcmp (reply->leader_id, self->self.node_id) != 0
    &&  strcmp (reply->leader_id, j->target) != 0
    &&  raft_transport_set_peer (self->transport, reply->leader_id,
                                 reply->leader_peer_addr) == 0) {
        snprintf (j->target, sizeof j->target, "%s", reply->leader_id);
        j->interval = self->join_retry_ms;
        j->next = zclock_mono () + self->join_retry_ms / 2;
    }
    else
    if (reply->status == RAFT_JOIN_REFUSED)
        titan_log_error ("raft %s: join of group %" PRIu64 " refused by '%s': %s",
                         self->self.node_id, reply->group, from, reply->message);
}

static void
s_handle_frame (s_actor_t *self, const char *from, const uint8_t *data,
                size_t size, bool *learned)
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
        if (self->placement)
            raft_placement_not_member (self->placement, frame.msg.group,
                                       &frame.sender);
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
    if (!*learned || frame.kind == RAFT_WIRE_JOIN) {
        /* the sender's addresses into every group's address book, once
           per batch (a batch has one sender); a join names a node outside
           the configuration: it must not redirect the traffic of a member
           of a group that has the same id */
        uint64_t sender_id = raft_members_id (frame.sender.node_id);
        size_t n = raft_groups_size (self->groups);
        for (size_t i = 0; i < n; i++) {
            raft_group_t *g = raft_groups_at (self->groups, i, NULL);
            if (frame.kind != RAFT_WIRE_JOIN || !s_is_member (g, sender_id))
                raft_group_learn_peer (g, &frame.sender);
        }
        if (frame.kind != RAFT_WIRE_JOIN)
            *learned = true;
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    switch (frame.kind) {
        case RAFT_WIRE_RAFT: {
            raft_group_t *group = s_group_of (self, frame.msg.group);
            if (group)
                raft_group_step (group, &frame.msg);
            else
                s_unknown_group (self, from, frame.msg.group);
            break;
        }
        case RAFT_WIRE_JOIN: {
            raft_wire_join_reply_t reply;
            raft_group_t *group = s_group_of (self, frame.join_group);
            if (!group
            ||  strcmp (frame.join.node_id, frame.sender.node_id) != 0) {
                memset (&reply, 0, sizeof reply);
                reply.group = frame.join_group;
                reply.status = RAFT_JOIN_REFUSED;
                snprintf (reply.message, sizeof reply.message,
                          "unknown group, or a join on behalf of another node");
            }
            else
                raft_group_join (group, &frame.join, &reply);
            if (raft_wire_encode_join_reply (&self->self, &reply, &buf, &len) == 0)
                s_send_frame (self, frame.sender.node_id, buf, len);
            break;
        }
        case RAFT_WIRE_JOIN_REPLY:
            if (RAFT_JOIN_IS_NOTICE (frame.reply.status)) {
                if (self->placement)
                    raft_placement_on_notice (self->placement,
                                              frame.sender.node_id, &frame.reply);
            }
            else
                s_handle_join_reply (self, &frame.reply, frame.sender.node_id);
            break;
        case RAFT_WIRE_CHECK: {
            raft_group_t *group = s_group_of (self, frame.check.group);
            if (group)
                raft_group_on_check (group, frame.sender.node_id,
                                     &frame.check);
            break;
        }
        case RAFT_WIRE_FORWARD: {
            raft_group_t *group = s_group_of (self, frame.forward.group);
            if (group)
                raft_group_on_forward (group, frame.sender.node_id,
                                       &frame.forward);
            else
                s_unknown_group (self, from, frame.forward.group);
            break;
        }
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
        bool learned = false;
        if (n > 0)
            for (zframe_t *f = zmsg_first (batch); f; f = zmsg_next (batch))
                s_handle_frame (self, from, zframe_data (f), zframe_size (f),
                                &learned);
        zmsg_destroy (&batch);
        zstr_free (&from);
    }
}

/*  Sends the join requests that are due, and forgets the groups this node
    has become a member of.  */
static void
s_join_duty (s_actor_t *self)
{
    if (!self->n_joins)
        return;
    int64_t now = zclock_mono ();
    size_t kept = 0;
    for (size_t i = 0; i < self->n_joins; i++) {
        s_join_t *j = &self->joins [i];
        raft_group_t *group = raft_groups_find (self->groups, j->group);
        if (!group || raft_group_is_member (group))
            continue;                   /* done (or gone): drop it */
        self->joins [kept++] = *j;
        j = &self->joins [kept - 1];
        if (now < j->next)
            continue;
        uint8_t *buf = NULL;
        size_t len = 0;
        if (raft_wire_encode_join (&self->self, j->group, &buf, &len) == 0)
            s_send_frame (self, j->target, buf, len);
        j->next = now + j->interval;
        j->interval = j->interval * 2 > JOIN_RETRY_MAX
                    ? JOIN_RETRY_MAX : j->interval * 2;
    }
    self->n_joins = kept;
    if (kept == 0)
        raft_transport_remove_peer (self->transport, JOIN_PEER);
}

/*  Starts handing over the leadership of every group this node leads.
    Returns how many transfers started.  */
static int
s_transfer_all (s_actor_t *self)
{
    int started = 0;
    size_t n = raft_groups_size (self->groups);
    for (size_t i = 0; i < n; i++) {
        uint32_t id;
        raft_group_t *group = raft_groups_at (self->groups, i, &id);
        char target [RAFT_NODE_ID_MAX + 1] = "";
        if (raft_group_transfer_out (group, target, sizeof target) == 0) {
            titan_log_info ("raft %s: stopping; handing leadership of group %u "
                            "to %s", self->self.node_id, id, target);
            started++;
        }
    }
    return started;
}

/*  True while this node leads at least one group.  */
static bool
s_leads_any (s_actor_t *self)
{
    size_t n = raft_groups_size (self->groups);
    for (size_t i = 0; i < n; i++)
        if (raft_role (raft_group_core (raft_groups_at (self->groups, i, NULL)))
            == RAFT_LEADER)
            return true;
    return false;
}

/*  Leadership balancing, every balance_ms when there are several data
    groups: each group this node leads moves its leadership to its
    preferred leader when that one is another caught-up voter (at most one
    transfer per group per period; raft_group_balance).  */
static void
s_balance_duty (s_actor_t *self)
{
    uint32_t q = self->placement ? raft_placement_shards (self->placement)
                                 : self->shards;
    if (!self->balance_ms || q < 2)
        return;
    int64_t now = zclock_mono ();
    if (now < self->next_balance)
        return;
    self->next_balance = now + self->balance_ms;
    size_t n = raft_groups_size (self->groups);
    for (size_t i = 0; i < n; i++) {
        uint32_t id;
        raft_group_t *group = raft_groups_at (self->groups, i, &id);
        if (id == TITAN_META_SHARD)
            continue;
        char target [RAFT_NODE_ID_MAX + 1] = "";
        const char *preferred = self->placement
            ? raft_placement_preferred (self->placement, id) : NULL;
        if (self->placement && !preferred)
            continue;
        if (raft_group_balance (group, preferred, target, sizeof target) == 0)
            titan_log_debug ("raft %s: group %u: leadership to its preferred "
                             "leader %s", self->self.node_id, id, target);
    }
}

/*  Ticks every group `ticks` times, with sync_threads > 0 makes the
    readies of all groups durable together (raft_groups_persist: one round
    of concurrent syncs for the node, whatever the number of busy groups)
    and lets every group do the rest of its work (with sync_threads = 0,
    raft_group_process persists each group's readies on its own).  Returns 0 or the first fatal error (its group
    named in the log).  */
static int
s_run_groups (s_actor_t *self, int ticks)
{
    int rc = 0;
    uint32_t id = 0;
    size_t n = raft_groups_size (self->groups);
    bool together = self->sync_threads > 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        raft_group_t *group = raft_groups_at (self->groups, i, &id);
        for (int t = 0; t < ticks && rc == 0; t++)
            rc = raft_group_tick (group);
        if (rc == 0 && !together)
            rc = raft_group_process (group);
    }
    if (rc == 0 && together)
        rc = raft_groups_persist (self->groups, self->syncer,
                                  self->transport, &id);
    for (size_t i = 0; i < n && rc == 0 && together; i++)
        rc = raft_group_process (raft_groups_at (self->groups, i, &id));
    if (rc)
        titan_log_error ("raft %s: group %u failed (%s); exiting so that the "
                         "supervisor restarts the module and recovery runs",
                         self->self.node_id, id, titan_strerror (rc));
    return rc;
}

/* ------------------------------------------------------------ actor */

static bool
s_handle_pipe (s_actor_t *self)
{
    return !titan_module_pipe_recv (self->pipe, NULL);
}

static void
s_teardown (s_actor_t *self)
{
    if (self->transport && self->started_at) {
        /* the transport's life in figures: what multi-Raft costs idle */
        raft_transport_stats_t st = raft_transport_stats (self->transport);
        double secs = (zclock_mono () - self->started_at) / 1000.0;
        titan_log_info ("raft %s: %zu groups; in %.1f s the transport sent %"
                        PRIu64 " messages in %" PRIu64 " batches (%" PRIu64
                        " dropped), received %" PRIu64 " in %" PRIu64,
                        self->self.node_id, self->groups
                        ? raft_groups_size (self->groups) : 0, secs,
                        st.messages_sent, st.batches_sent, st.batches_dropped,
                        st.messages_received, st.batches_received);
    }
    raft_placement_destroy (&self->placement);
    raft_groups_destroy (&self->groups);
    titan_job_pool_destroy (&self->syncer);
    if (self->transport)
        raft_transport_flush (self->transport);
    raft_transport_destroy (&self->transport);
    raft_curve_destroy (&self->curve);
    while (self->early && zlist_size (self->early)) {
        titan_envelope_t *env = zlist_pop (self->early);
        titan_envelope_destroy (&env);
    }
    zlist_destroy (&self->early);
    free (self->joins);
    self->joins = NULL;
    titan_bus_destroy (&self->bus);
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
    if (rc == 0)
        self->sync_threads = s_setting (self, "sync_threads",
                                        RAFT_SYNC_POOL_THREADS, 0, 16, &rc);
    if (rc == 0 && self->sync_threads > 0
    &&  (rc = titan_job_pool_new ((unsigned) self->sync_threads,
                                  &self->syncer)))
        snprintf (self->ctx->error, sizeof self->ctx->error,
                  "raft: cannot start %" PRId64 " sync threads: %s",
                  self->sync_threads, titan_strerror (rc));
    if (rc) {
        titan_log_error ("%s", self->ctx->error);
        s_teardown (self);
        zsock_signal (pipe, 1);
        return;
    }
    zsock_signal (pipe, 0);
    self->started_at = zclock_mono ();
    while (zlist_size (self->early)) {
        titan_envelope_t *env = zlist_pop (self->early);
        s_handle_bus (self, &env);
    }
    /* zmq_poll with each socket's revents (not a zpoller, which names one
       ready socket): only the sockets that are readable are drained, since
       a receive that finds nothing costs two system calls (the socket's
       command processing: getpid and a poll). */
    enum { PIPE, BUS, PEERS, ITEMS };
    zmq_pollitem_t items [ITEMS] = {
        { zsock_resolve (pipe), 0, ZMQ_POLLIN, 0 },
        { zsock_resolve (titan_bus_sock (self->bus)), 0, ZMQ_POLLIN, 0 },
        { zsock_resolve (raft_transport_sock (self->transport)), 0,
          ZMQ_POLLIN, 0 },
    };
    self->next_tick = zclock_mono () + self->tick_ms;
    bool running = true;
    while (running) {
        int64_t now = zclock_mono ();
        int timeout = self->next_tick > now ? (int) (self->next_tick - now) : 0;
        if (zmq_poll (items, ITEMS, timeout) < 0 || zsys_interrupted)
            break;
        if ((items [PIPE].revents & ZMQ_POLLIN) && !s_handle_pipe (self)) {
            /* a clean stop of a leader: hand leadership over first and
               keep serving until it moved (at most two election
               timeouts), so that the groups do not wait for a timeout */
            if (!self->stop_deadline && s_transfer_all (self) > 0)
                self->stop_deadline = zclock_mono ()
                                    + 2 * self->election_ticks * self->tick_ms;
            else
                break;
        }
        if (self->stop_deadline
        &&  (zclock_mono () > self->stop_deadline || !s_leads_any (self)))
            break;
        for (int i = 0; i < DRAIN_MAX && (items [BUS].revents & ZMQ_POLLIN);
             i++) {
            titan_envelope_t *env = titan_bus_try_recv (self->bus);
            if (!env)
                break;
            s_handle_bus (self, &env);
        }
        if (items [PEERS].revents & ZMQ_POLLIN)
            s_drain_transport (self);
        now = zclock_mono ();
        if (now - self->next_tick > 10 * self->tick_ms)
            self->next_tick = now;      /* stalled: do not tick in a burst */
        int ticks = 0;
        while (now >= self->next_tick) {
            ticks++;
            self->next_tick += self->tick_ms;
        }
        s_join_duty (self);
        if (!self->stop_deadline)
            s_balance_duty (self);
        if (self->placement && !self->stop_deadline)
            raft_placement_duty (self->placement);
        while (zlist_size (self->early)) {     /* stashed by a group's open */
            titan_envelope_t *env = zlist_pop (self->early);
            s_handle_bus (self, &env);
        }
        rc = s_run_groups (self, ticks);
        raft_transport_flush (self->transport);
        if (rc)
            running = false;
    }
    s_teardown (self);
}

TITAN_MODULE_DEFINE ("raft", "0.1.0", s_raft_actor);
