/*  The bitcask module: a CZMQ actor that serves one Bitcask engine per
    shard directory (<data_dir>/shard-<n>, opened on first use) on the bus.

    Requests: kv.put, kv.delete, kv.cas (KvWrite), kv.apply_batch
    (KvApplyBatch), kv.get (KvGet), kv.stats, kv.merge, kv.snapshot_*,
    kv.drop_shard.  Group commit at the
    actor level: on each wake-up the actor drains every ready bus message;
    consecutive writes are collected and handed to each shard's engine in
    one bc_engine_submit, so one fdatasync covers them all, and only then
    are their replies sent.  A read, stats or merge request first flushes
    the writes received before it, so a sender always reads its own writes.

    Apply sync (bc_engine.h, docs/raft.md "Durability"): with apply_sync =
    interval (the default) a kv.apply_batch is written and published but
    not fsynced: the Raft log is the durability point, and every
    apply_sync_interval_ms the actor fsyncs each shard that holds unsynced
    batches (bc_engine_sync), as do a rotation, a snapshot's seal and the
    close.  kv.stats reports durable_applied_index and kv.snapshot_begin
    durable_index, below which Raft may compact its log.  apply_sync =
    always fsyncs each batch before its reply, as every kv.put, kv.delete,
    kv.cas and kv.repair (writes that do not come from Raft) always does.

    Duplicate requests (the kernel re-delivers a request whose reply it has
    not seen, e.g. after this module restarted) are handled in two ways:
      - durably, by revision: a write carrying a revision (the Raft index)
        at or below the engine's last revision, or an apply batch whose
        applied index is already stored, is not applied again; the reply is
        OK with that revision.  This is the path Raft uses and it survives
        restarts, because the revision and applied index are stored with
        the data;
      - within one incarnation, by a table of the last 4096 (from, corr)
        pairs and their encoded replies, which answers a re-sent request
        with the original reply.  A write without revision re-delivered
        across a restart of this module is therefore applied twice (same
        value, a new revision): callers that need exactly-once go through
        Raft, which always supplies revisions.

    Merges run in a worker thread (one at a time) so that the actor keeps
    serving: on kv.merge (after sealing the active file) and, checked every
    merge_check_ms, when a shard's dead bytes exceed merge_min_dead_bytes
    and merge_dead_percent of its files, or merge_interval_ms passed since
    its last merge with any dead bytes.

    Snapshots (the storage side of Raft snapshots, bc_snapshot.h):
    kv.snapshot_begin pins a point-in-time snapshot of a shard, read in
    chunks of at most snapshot_chunk_bytes by kv.snapshot_read and
    released by kv.snapshot_end, or after snapshot_idle_ms without a
    request (at most snapshot_max_open at once).  kv.snapshot_install takes
    a stream in order; its last chunk verifies it, closes the shard's
    engine, swaps the directory and reopens it.  An install idle for
    snapshot_idle_ms is aborted.

    Damaged data (docs/repair.md): a kv.get that finds a damaged record
    answers DATA_LOSS with the entry's revision and logs it; kv.repair
    rewrites it (bc_engine_repair).  Each shard has a scrubber
    (bc_scrub.h), started every scrub_interval_s or by kv.scrub and
    stepped every SCRUB_TICK_MS while it runs, at scrub_bytes_per_sec; a
    damaged record it finds is logged and published to the gateway as the
    event kv.corrupt, which repairs it.

    Dropping a replica that moved away (kv.drop_shard, bc_drop.h): the
    shard's pinned snapshots and any install in progress are cancelled,
    its engine closed and its directory deleted durably (renamed to
    `shard-<n>.trash`, parent fsynced, removed); a leftover trash from a
    crash is removed at start.  Idempotent: a shard not held is OK.  The
    meta group's shard (TITAN_META_SHARD) and shards beyond max_shards
    are refused with INVALID_ARGUMENT; a shard being merged with
    UNAVAILABLE (retry once the merge is done).

    Settings (module subtree): max_value_bytes (8 MiB), max_file_bytes
    (256 MiB), max_open_files (64 per shard), max_shards (65536),
    merge_check_ms (10000), merge_min_dead_bytes (64 MiB),
    merge_dead_percent (50), merge_interval_ms (0 = off), sync (1: 0
    never fsyncs, for benchmarks only), apply_sync ("interval" or
    "always"), apply_sync_interval_ms (200, 1..60000), sync_threads
    (3, 0..16: helper threads that, with the actor, fsync the shards
    holding unsynced applies concurrently at each interval; 0: one after
    the other on the actor),
    snapshot_chunk_bytes (1 MiB, at most 16 MiB), snapshot_idle_ms
    (60000), snapshot_max_open (16), scrub_bytes_per_sec (8 MiB; 0:
    unthrottled), scrub_interval_s (86400; 0: no scheduled pass), digest_every (1000:
    kv.stats reports the state digest recorded at applied indexes that are
    multiples of it, for the consistency check of docs/consistency.md; 0 =
    never).  */
#include "bc_drop.h"
#include "bc_engine.h"
#include "bc_format.h"
#include "bc_scrub.h"
#include "bc_snapshot.h"

#include "titan/bus.h"
#include "titan/bus_types.h"
#include "titan/escape.h"
#include "titan/histogram_pb.h"
#include "titan/job_pool.h"
#include "titan/module.h"
#include "titan/status.h"
#include "bus.pb-c.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define RECENT_MAX   4096
#define DRAIN_MAX    512

typedef struct {
    uint32_t id;
    bc_engine_t *engine;
    int64_t last_merge_ms;
    bc_scrubber_t *scrub;
    int64_t next_scrub_ms;       /* the next scheduled pass (0: none) */
} s_shard_t;

/* How often a running scrub takes its next step. */
#define SCRUB_TICK_MS 50

typedef struct {
    char from [TITAN_BUS_NAME_MAX + 1];
    uint64_t corr;
    uint8_t *reply;
    size_t len;
} s_recent_t;

/* An exported snapshot, pinned until released or idle. */
typedef struct {
    uint64_t id;
    uint32_t shard;
    bc_snapshot_t *snap;
    int64_t used_ms;
} s_export_t;

/* An install in progress (one per shard). */
typedef struct {
    uint32_t shard;
    uint64_t applied_index;      /* as requested at offset 0 */
    bc_restore_t *restore;
    int64_t used_ms;
} s_install_t;

#define SNAP_CHUNK_HARD_MAX (16u << 20)

/* A write waiting for its shard's group commit. */
typedef struct {
    titan_envelope_t *env;
    s_shard_t *shard;
    bool apply;                  /* kv.apply_batch, else a single write */
    Titan__Bus__KvWrite *write;
    Titan__Bus__KvApplyBatch *batch_msg;
    bc_op_t *ops;
    bc_batch_t batch;
} s_pending_t;

typedef struct {
    titan_module_ctx_t *ctx;
    zsock_t *pipe;
    titan_bus_t *bus;
    zpoller_t *poller;
    bc_options_t opt;
    int64_t max_shards;
    int64_t merge_check_ms, merge_min_dead, merge_dead_percent;
    int64_t merge_interval_ms;
    int64_t scrub_rate, scrub_interval_s;
    int64_t apply_sync_ms;       /* apply_sync_interval_ms */
    int64_t next_sync;           /* when the unsynced shards are synced */
    int64_t sync_threads;        /* helpers of the interval sync */
    titan_job_pool_t *syncer;    /* syncs the unsynced shards together */
    s_shard_t **shards;          /* each allocated apart: pointers stay valid */
    size_t nshards, shards_cap;
    s_recent_t recent [RECENT_MAX];
    s_pending_t *pend;
    size_t npend, pend_cap;
    /* the merge in flight */
    zactor_t *merger;
    s_shard_t *merge_shard;
    titan_envelope_t *merge_req;   /* kv.merge waiting for the result */
    int64_t next_check;
    bool terminated;
    /* snapshots */
    int64_t snap_chunk, snap_idle_ms, snap_max_open;
    s_export_t *exports;
    size_t nexports;
    s_install_t *installs;
    size_t ninstalls;
    uint64_t next_snap_id;
} s_actor_t;

/* ---------------------------------------------------------- helpers */

static Titan__Bus__Code
s_code (int rc)
{
    switch (rc) {
        case 0:
        case -EALREADY:       return TITAN__BUS__CODE__OK;
        case -EINVAL:
        case TITAN_ETOOBIG:   return TITAN__BUS__CODE__INVALID_ARGUMENT;
        case TITAN_ENOTFOUND: return TITAN__BUS__CODE__NOT_FOUND;
        case TITAN_EMISMATCH: return TITAN__BUS__CODE__FAILED_PRECONDITION;
        case TITAN_ECORRUPT:  return TITAN__BUS__CODE__DATA_LOSS;
        case TITAN_ECLOSED:   return TITAN__BUS__CODE__UNAVAILABLE;
        case -EBUSY:          return TITAN__BUS__CODE__UNAVAILABLE;
        case -ENOENT:         return TITAN__BUS__CODE__NOT_FOUND;
        case -EMFILE:         return TITAN__BUS__CODE__RESOURCE_EXHAUSTED;
        default:              return TITAN__BUS__CODE__INTERNAL;
    }
}

/* The table is direct-mapped by (from, corr): O(1) per request; a
   collision evicts the older entry, which only shortens the window. */
static s_recent_t *
s_recent_slot (s_actor_t *self, const titan_envelope_t *env)
{
    uint64_t h = env->corr * 0x9E3779B97F4A7C15ull;
    for (const char *p = env->from; *p; p++)
        h = (h ^ (uint8_t) *p) * 0x100000001B3ull;
    return &self->recent [(h >> 32) % RECENT_MAX];
}

static void
s_recent_store (s_actor_t *self, const titan_envelope_t *env,
                const uint8_t *reply, size_t len)
{
    s_recent_t *r = s_recent_slot (self, env);
    free (r->reply);
    r->reply = malloc (len ? len : 1);
    if (!r->reply) {
        r->len = 0;
        r->from [0] = 0;
        return;
    }
    memcpy (r->reply, reply, len);
    r->len = len;
    r->corr = env->corr;
    snprintf (r->from, sizeof r->from, "%s", env->from);
}

static s_recent_t *
s_recent_find (s_actor_t *self, const titan_envelope_t *env)
{
    s_recent_t *r = s_recent_slot (self, env);
    if (r->reply && r->corr == env->corr && strcmp (r->from, env->from) == 0)
        return r;
    return NULL;
}

/* Sends a packed reply; writes are remembered for de-duplication. */
static void
s_send (s_actor_t *self, titan_envelope_t **env_p, const uint8_t *buf,
        size_t len, bool remember)
{
    titan_envelope_t *env = *env_p;
    if (env->kind == TITAN_MSG_REQUEST) {
        if (remember)
            s_recent_store (self, env, buf, len);
        int rc = titan_bus_reply (self->bus, env, buf, len);
        if (rc)
            titan_log_warning ("bitcask: reply %s to %s failed: %s", env->type,
                          env->from, strerror (-rc));
    }
    titan_envelope_destroy (env_p);
}

static void
s_reply_kv (s_actor_t *self, titan_envelope_t **env_p,
            Titan__Bus__KvReply *reply, bool remember)
{
    size_t len = titan__bus__kv_reply__get_packed_size (reply);
    uint8_t *buf = malloc (len ? len : 1);
    if (!buf) {
        titan_envelope_destroy (env_p);
        return;
    }
    titan__bus__kv_reply__pack (reply, buf);
    s_send (self, env_p, buf, len, remember);
    free (buf);
}

static void
s_reply_error (s_actor_t *self, titan_envelope_t **env_p, int rc,
               const char *message)
{
    titan_envelope_t *env = *env_p;
    uint8_t *buf = NULL;
    size_t len = 0;
    Titan__Bus__Code code = rc ? s_code (rc) : TITAN__BUS__CODE__INVALID_ARGUMENT;
    char *msg = (char *) message;
    if (streq (env->type, TITAN_T_KV_APPLY_BATCH)) {
        Titan__Bus__KvApplyBatchReply r = TITAN__BUS__KV_APPLY_BATCH_REPLY__INIT;
        r.code = code; r.message = msg;
        len = titan__bus__kv_apply_batch_reply__get_packed_size (&r);
        if ((buf = malloc (len + 1)))
            titan__bus__kv_apply_batch_reply__pack (&r, buf);
    }
    else
    if (streq (env->type, TITAN_T_KV_STATS)) {
        Titan__Bus__KvStatsReply r = TITAN__BUS__KV_STATS_REPLY__INIT;
        r.code = code; r.message = msg;
        len = titan__bus__kv_stats_reply__get_packed_size (&r);
        if ((buf = malloc (len + 1)))
            titan__bus__kv_stats_reply__pack (&r, buf);
    }
    else
    if (streq (env->type, TITAN_T_KV_MERGE)) {
        Titan__Bus__KvMergeReply r = TITAN__BUS__KV_MERGE_REPLY__INIT;
        r.code = code; r.message = msg;
        len = titan__bus__kv_merge_reply__get_packed_size (&r);
        if ((buf = malloc (len + 1)))
            titan__bus__kv_merge_reply__pack (&r, buf);
    }
    else
    if (streq (env->type, TITAN_T_KV_SNAPSHOT_BEGIN)) {
        Titan__Bus__KvSnapshotInfo r = TITAN__BUS__KV_SNAPSHOT_INFO__INIT;
        r.code = code; r.message = msg;
        len = titan__bus__kv_snapshot_info__get_packed_size (&r);
        if ((buf = malloc (len + 1)))
            titan__bus__kv_snapshot_info__pack (&r, buf);
    }
    else
    if (streq (env->type, TITAN_T_KV_SNAPSHOT_READ)) {
        Titan__Bus__KvSnapshotChunk r = TITAN__BUS__KV_SNAPSHOT_CHUNK__INIT;
        r.code = code; r.message = msg;
        len = titan__bus__kv_snapshot_chunk__get_packed_size (&r);
        if ((buf = malloc (len + 1)))
            titan__bus__kv_snapshot_chunk__pack (&r, buf);
    }
    else
    if (streq (env->type, TITAN_T_KV_SNAPSHOT_INSTALL)) {
        Titan__Bus__KvSnapshotInstallReply r =
            TITAN__BUS__KV_SNAPSHOT_INSTALL_REPLY__INIT;
        r.code = code; r.message = msg;
        len = titan__bus__kv_snapshot_install_reply__get_packed_size (&r);
        if ((buf = malloc (len + 1)))
            titan__bus__kv_snapshot_install_reply__pack (&r, buf);
    }
    else {
        Titan__Bus__KvReply r = TITAN__BUS__KV_REPLY__INIT;
        r.code = code; r.message = msg;
        len = titan__bus__kv_reply__get_packed_size (&r);
        if ((buf = malloc (len + 1)))
            titan__bus__kv_reply__pack (&r, buf);
    }
    if (buf)
        s_send (self, env_p, buf, len, false);
    else
        titan_envelope_destroy (env_p);
    free (buf);
}

/* Finds or opens the engine of a shard. */
/*  The directory of shard `id`.  */
static void
s_shard_dir (s_actor_t *self, uint32_t id, char *dir, size_t size)
{
    snprintf (dir, size, "%s/shard-%u", self->ctx->data_dir, id);
}

/*  Closes a shard's engine, frees its scrubber and the shard; nulls the
    pointer.  */
static void
s_shard_free (s_shard_t **shard_p)
{
    s_shard_t *shard = *shard_p;
    bc_engine_destroy (&shard->engine);
    bc_scrubber_destroy (&shard->scrub);
    free (shard);
    *shard_p = NULL;
}

static int
s_shard (s_actor_t *self, uint32_t id, s_shard_t **shard_p, char *err,
         size_t errlen)
{
    for (size_t i = 0; i < self->nshards; i++)
        if (self->shards [i]->id == id) {
            *shard_p = self->shards [i];
            return 0;
        }
    if ((int64_t) id >= self->max_shards) {
        snprintf (err, errlen, "bitcask: shard %u out of range (max_shards "
                  "%" PRId64 ")", id, self->max_shards);
        return -EINVAL;
    }
    if (self->nshards == self->shards_cap) {
        size_t cap = self->shards_cap ? self->shards_cap * 2 : 8;
        s_shard_t **s = realloc (self->shards, cap * sizeof *s);
        if (!s) {
            snprintf (err, errlen, "bitcask: out of memory");
            return -ENOMEM;
        }
        self->shards = s;
        self->shards_cap = cap;
    }
    char dir [4096];
    s_shard_dir (self, id, dir, sizeof dir);
    s_shard_t *shard = calloc (1, sizeof *shard);
    if (!shard) {
        snprintf (err, errlen, "bitcask: out of memory");
        return -ENOMEM;
    }
    shard->id = id;
    shard->last_merge_ms = zclock_mono ();
    int rc = bc_engine_open (dir, &self->opt, &shard->engine, err, errlen);
    if (rc) {
        free (shard);
        return rc;
    }
    shard->scrub = bc_scrubber_new ((uint64_t) self->scrub_rate);
    if (!shard->scrub) {
        bc_engine_destroy (&shard->engine);
        free (shard);
        snprintf (err, errlen, "bitcask: out of memory");
        return -ENOMEM;
    }
    if (self->scrub_interval_s)
        shard->next_scrub_ms = zclock_mono () + self->scrub_interval_s * 1000;
    bc_stats_t st;
    bc_engine_stats (shard->engine, &st);
    if (st.hint_fallbacks || st.resync_regions)
        titan_log_warning ("bitcask: shard %u opened with damage: %" PRIu64
                           " damaged hint file(s) ignored (data scanned), %"
                           PRIu64 " damaged region(s) of %" PRIu64 " bytes "
                           "skipped in data files of %s", id,
                           st.hint_fallbacks, st.resync_regions,
                           st.resync_bytes, dir);
    self->shards [self->nshards++] = shard;
    *shard_p = shard;
    return 0;
}

/*  True when shard `id` is open or has its directory here; otherwise
    explains in `err` that it is not stored on this node.  A read never
    creates a shard: the gateway's LOCAL reads come straight here
    (modules/grpc_gateway/gw_local.h), and one that arrives after the
    shard was dropped must not bring it back empty.  */
static bool
s_shard_stored (s_actor_t *self, uint32_t id, char *err, size_t errlen)
{
    for (size_t i = 0; i < self->nshards; i++)
        if (self->shards [i]->id == id)
            return true;
    char dir [4096];
    s_shard_dir (self, id, dir, sizeof dir);
    struct stat st;
    if (stat (dir, &st) == 0 && S_ISDIR (st.st_mode))
        return true;
    snprintf (err, errlen, "bitcask: shard %u is not stored on this node", id);
    return false;
}

/* ---------------------------------------------------------- writes */

static void
s_op_from_proto (bc_op_t *op, const Titan__Bus__KvOp *p)
{
    memset (op, 0, sizeof *op);
    op->kind = p->kind == TITAN__BUS__KV_OP__KIND__DELETE ? BC_OP_DELETE
             : p->kind == TITAN__BUS__KV_OP__KIND__CAS ? BC_OP_CAS
             : p->kind == TITAN__BUS__KV_OP__KIND__PUT ? BC_OP_PUT
             : (bc_op_kind_t) 99;      /* rejected by the engine */
    op->key = p->key.data;
    op->key_len = p->key.len;
    op->value = p->value.data;
    op->value_len = p->value.len;
    op->expected_revision = p->expected_revision;
    op->expect_absent = p->expect_absent;
}

static void
s_op_reply (const bc_op_t *op, int batch_status, const char *message,
            Titan__Bus__KvReply *r)
{
    titan__bus__kv_reply__init (r);
    if (batch_status < 0 && batch_status != -EALREADY) {
        r->code = s_code (batch_status);
        r->message = (char *) message;
        return;
    }
    r->revision = op->revision;
    if (op->status == TITAN_EMISMATCH) {
        r->code = TITAN__BUS__CODE__FAILED_PRECONDITION;
        r->message = (char *) "compare-and-swap condition failed";
        r->current_revision = op->current_revision;
        r->revision = 0;
    }
    else
    if (op->kind == BC_OP_DELETE)
        r->deleted = op->existed ? 1 : 0;
}

static void
s_pending_free (s_pending_t *p)
{
    titan_envelope_destroy (&p->env);
    if (p->write)
        titan__bus__kv_write__free_unpacked (p->write, NULL);
    if (p->batch_msg)
        titan__bus__kv_apply_batch__free_unpacked (p->batch_msg, NULL);
    free (p->ops);
    memset (p, 0, sizeof *p);
}

/* Commits every pending write (one submit per shard) and replies. */
static void
s_flush (s_actor_t *self)
{
    if (!self->npend)
        return;
    bc_batch_t **list = malloc (self->npend * sizeof *list);
    for (size_t i = 0; i < self->npend; i++) {
        s_shard_t *shard = self->pend [i].shard;
        if (!shard)
            continue;       /* already done */
        size_t n = 0;
        for (size_t j = i; j < self->npend; j++)
            if (self->pend [j].shard == shard && list)
                list [n++] = &self->pend [j].batch;
        if (list)
            bc_engine_submit (shard->engine, list, n);
        for (size_t j = i; j < self->npend; j++) {
            s_pending_t *p = &self->pend [j];
            if (p->shard != shard)
                continue;
            p->shard = NULL;
            if (!list) {
                s_reply_error (self, &p->env, -ENOMEM, "bitcask: out of memory");
                s_pending_free (p);
                continue;
            }
            bc_batch_t *b = &p->batch;
            if (p->apply) {
                Titan__Bus__KvApplyBatchReply r =
                    TITAN__BUS__KV_APPLY_BATCH_REPLY__INIT;
                Titan__Bus__KvReply *results = calloc (b->n_ops + 1,
                                                       sizeof *results);
                Titan__Bus__KvReply **rp = calloc (b->n_ops + 1, sizeof *rp);
                bc_stats_t st;
                bc_engine_stats (shard->engine, &st);
                r.applied_index = st.applied_index;
                if (b->status < 0 && b->status != -EALREADY) {
                    r.code = s_code (b->status);
                    r.message = b->message;
                }
                else
                if (results && rp) {
                    for (size_t k = 0; k < b->n_ops; k++) {
                        s_op_reply (&b->ops [k], b->status, b->message,
                                    &results [k]);
                        rp [k] = &results [k];
                    }
                    r.n_results = b->n_ops;
                    r.results = rp;
                }
                size_t len = titan__bus__kv_apply_batch_reply__get_packed_size (&r);
                uint8_t *buf = malloc (len + 1);
                if (buf) {
                    titan__bus__kv_apply_batch_reply__pack (&r, buf);
                    s_send (self, &p->env, buf, len, true);
                }
                free (buf);
                free (results);
                free (rp);
            }
            else {
                Titan__Bus__KvReply r;
                s_op_reply (&b->ops [0], b->status, b->message, &r);
                s_reply_kv (self, &p->env, &r, b->status >= 0
                                                || b->status == -EALREADY);
            }
            s_pending_free (p);
        }
    }
    free (list);
    self->npend = 0;
}

static s_pending_t *
s_pending_new (s_actor_t *self)
{
    if (self->npend == self->pend_cap) {
        s_flush (self);
        if (self->pend_cap == 0) {
            self->pend = calloc (DRAIN_MAX, sizeof *self->pend);
            if (!self->pend)
                return NULL;
            self->pend_cap = DRAIN_MAX;
        }
    }
    s_pending_t *p = &self->pend [self->npend++];
    memset (p, 0, sizeof *p);
    return p;
}

static void
s_handle_write (s_actor_t *self, titan_envelope_t **env_p)
{
    titan_envelope_t *env = *env_p;
    char err [256];
    bool apply = streq (env->type, TITAN_T_KV_APPLY_BATCH);
    Titan__Bus__KvWrite *w = NULL;
    Titan__Bus__KvApplyBatch *ab = NULL;
    uint32_t shard_id;
    if (apply) {
        ab = titan__bus__kv_apply_batch__unpack (NULL,
                titan_envelope_size (env), titan_envelope_data (env));
        if (!ab) {
            s_reply_error (self, env_p, -EINVAL, "bitcask: malformed KvApplyBatch");
            return;
        }
        shard_id = ab->shard;
    }
    else {
        w = titan__bus__kv_write__unpack (NULL, titan_envelope_size (env),
                                          titan_envelope_data (env));
        Titan__Bus__KvOp__Kind want = streq (env->type, TITAN_T_KV_PUT)
            ? TITAN__BUS__KV_OP__KIND__PUT
            : streq (env->type, TITAN_T_KV_DELETE)
            ? TITAN__BUS__KV_OP__KIND__DELETE : TITAN__BUS__KV_OP__KIND__CAS;
        if (!w || !w->op || w->op->kind != want) {
            if (w)
                titan__bus__kv_write__free_unpacked (w, NULL);
            s_reply_error (self, env_p, -EINVAL, w
                ? "bitcask: KvWrite op missing or of the wrong kind for this type"
                : "bitcask: malformed KvWrite");
            return;
        }
        shard_id = w->shard;
    }
    s_shard_t *shard;
    int rc = s_shard (self, shard_id, &shard, err, sizeof err);
    if (rc) {
        if (w)
            titan__bus__kv_write__free_unpacked (w, NULL);
        if (ab)
            titan__bus__kv_apply_batch__free_unpacked (ab, NULL);
        s_reply_error (self, env_p, rc, err);
        return;
    }
    s_pending_t *p = s_pending_new (self);
    size_t n = apply ? ab->n_ops : 1;
    bc_op_t *ops = p ? calloc (n ? n : 1, sizeof *ops) : NULL;
    if (!ops) {
        if (p)
            self->npend--;
        if (w)
            titan__bus__kv_write__free_unpacked (w, NULL);
        if (ab)
            titan__bus__kv_apply_batch__free_unpacked (ab, NULL);
        s_reply_error (self, env_p, -ENOMEM, "bitcask: out of memory");
        return;
    }
    p->env = env;
    *env_p = NULL;
    p->shard = shard;
    p->apply = apply;
    p->write = w;
    p->batch_msg = ab;
    p->ops = ops;
    if (apply) {
        for (size_t i = 0; i < n; i++)
            s_op_from_proto (&ops [i], ab->ops [i]);
        p->batch.first_revision = ab->first_revision;
        p->batch.applied_index = ab->applied_index;
    }
    else {
        s_op_from_proto (&ops [0], w->op);
        p->batch.first_revision = w->revision;
    }
    p->batch.ops = ops;
    p->batch.n_ops = n;
}

/* ---------------------------------------------------------- reads */

/* One log line per damaged record found: shard, key (escaped), and the
   engine's message (file, offset, reason). */
static void
s_log_damage (uint32_t shard, const uint8_t *key, size_t len,
              const char *by, const char *why)
{
    char k [200];
    titan_escape (key, len, k, sizeof k);
    titan_log_warning ("bitcask: DATA_LOSS shard %u key \"%s\" (found by "
                       "%s): %s", shard, k, by, why);
}

static void
s_handle_get (s_actor_t *self, titan_envelope_t **env_p)
{
    titan_envelope_t *env = *env_p;
    Titan__Bus__KvGet *g = titan__bus__kv_get__unpack (NULL,
        titan_envelope_size (env), titan_envelope_data (env));
    if (!g) {
        s_reply_error (self, env_p, -EINVAL, "bitcask: malformed KvGet");
        return;
    }
    char err [256];
    s_shard_t *shard;
    int rc = s_shard_stored (self, g->shard, err, sizeof err)
           ? s_shard (self, g->shard, &shard, err, sizeof err) : TITAN_ECLOSED;
    if (rc) {
        titan__bus__kv_get__free_unpacked (g, NULL);
        s_reply_error (self, env_p, rc, err);
        return;
    }
    uint8_t *value = NULL;
    size_t vlen = 0;
    uint64_t rev = 0;
    rc = bc_engine_get (shard->engine, g->key.data, g->key.len, &value, &vlen,
                        &rev, err, sizeof err);
    Titan__Bus__KvReply r = TITAN__BUS__KV_REPLY__INIT;
    r.code = s_code (rc);
    if (rc)
        r.message = err;
    else {
        r.value.data = value;
        r.value.len = vlen;
    }
    r.revision = rev;       /* on DATA_LOSS: the damaged entry's */
    if (rc == TITAN_ECORRUPT)
        s_log_damage (shard->id, g->key.data, g->key.len, "read", err);
    titan__bus__kv_get__free_unpacked (g, NULL);
    s_reply_kv (self, env_p, &r, false);
    free (value);
}

static void
s_handle_stats (s_actor_t *self, titan_envelope_t **env_p)
{
    titan_envelope_t *env = *env_p;
    Titan__Bus__KvStatsRequest *q = titan__bus__kv_stats_request__unpack (
        NULL, titan_envelope_size (env), titan_envelope_data (env));
    if (!q) {
        s_reply_error (self, env_p, -EINVAL, "bitcask: malformed KvStatsRequest");
        return;
    }
    char err [256];
    s_shard_t *shard;
    int rc = s_shard (self, q->shard, &shard, err, sizeof err);
    titan__bus__kv_stats_request__free_unpacked (q, NULL);
    if (rc) {
        s_reply_error (self, env_p, rc, err);
        return;
    }
    bc_stats_t st;
    bc_engine_stats (shard->engine, &st);
    Titan__Bus__KvStatsReply r = TITAN__BUS__KV_STATS_REPLY__INIT;
    r.keys = st.keys;
    r.live_bytes = st.live_bytes;
    r.dead_bytes = st.dead_bytes;
    r.data_files = st.data_files;
    r.applied_index = st.applied_index;
    r.merges = st.merges;
    r.last_revision = st.last_revision;
    r.commits = st.commits;
    r.durable_applied_index = st.durable_applied_index;
    r.tail_truncated_bytes = st.tail_truncated;
    r.read_errors = st.read_errors;
    r.load_errors = st.hint_fallbacks + st.resync_regions;
    r.repairs = st.repairs;
    bc_scrub_stats_t ss;
    bc_scrubber_stats (shard->scrub, &ss);
    r.scrub_passes = ss.passes;
    r.scrub_records = ss.records;
    r.scrub_errors = ss.errors;
    r.last_scrub_ms = ss.last_pass_us / 1000;
    bc_digest_point_t points [BC_DIGEST_KEEP];
    uint64_t idx [BC_DIGEST_KEEP], dig [BC_DIGEST_KEEP];
    size_t n = bc_engine_digest (shard->engine, &r.digest, points,
                                 BC_DIGEST_KEEP);
    for (size_t i = 0; i < n; i++) {
        idx [i] = points [i].index;
        dig [i] = points [i].digest;
    }
    if (n) {
        r.digest_index = idx [n - 1];
        r.digest_at_index = dig [n - 1];
    }
    r.n_digest_indexes = r.n_digest_values = n;
    r.digest_indexes = idx;
    r.digest_values = dig;
    Titan__Bus__Histogram fsync;
    titan_hist_to_pb (&st.fsync, &fsync);
    r.fsync_latency = &fsync;
    if (st.failed) {
        r.code = s_code (st.failed);
        r.message = (char *) "bitcask: engine failed; restart the module";
    }
    size_t len = titan__bus__kv_stats_reply__get_packed_size (&r);
    uint8_t *buf = malloc (len + 1);
    if (buf) {
        titan__bus__kv_stats_reply__pack (&r, buf);
        s_send (self, env_p, buf, len, false);
    }
    else
        titan_envelope_destroy (env_p);
    free (buf);
}

/* ---------------------------------------------------------- merges */

/* Worker: merges one shard's engine, sends "DONE" rc files bytes msg. */
static void
s_merge_worker (zsock_t *pipe, void *arg)
{
    bc_engine_t *engine = arg;
    zsock_signal (pipe, 0);
    char err [256] = "";
    uint64_t files = 0, bytes = 0;
    int rc = bc_engine_rotate (engine, err, sizeof err);
    if (rc == 0)
        rc = bc_engine_merge (engine, &files, &bytes, err, sizeof err);
    zstr_sendm (pipe, "DONE");
    zsock_send (pipe, "i88s", rc, files, bytes, err);
    char *cmd;
    while ((cmd = zstr_recv (pipe))) {       /* wait for $TERM */
        bool term = streq (cmd, "$TERM");
        zstr_free (&cmd);
        if (term)
            break;
    }
}

static int
s_merge_start (s_actor_t *self, s_shard_t *shard)
{
    self->merger = zactor_new (s_merge_worker, shard->engine);
    if (!self->merger)
        return -ENOMEM;
    self->merge_shard = shard;
    zpoller_add (self->poller, self->merger);
    return 0;
}

static void
s_merge_done (s_actor_t *self)
{
    char *done = zstr_recv (self->merger);
    int rc = -EIO;
    uint64_t files = 0, bytes = 0;
    char *err = NULL;
    if (done && streq (done, "DONE"))
        zsock_recv (self->merger, "i88s", &rc, &files, &bytes, &err);
    zstr_free (&done);
    zpoller_remove (self->poller, self->merger);
    zactor_destroy (&self->merger);
    self->merge_shard->last_merge_ms = zclock_mono ();
    if (rc)
        titan_log_warning ("bitcask: merge of shard %u failed: %s",
                      self->merge_shard->id, err ? err : "?");
    else
        titan_log_info ("bitcask: merged %" PRIu64 " files of shard %u, "
                   "reclaimed %" PRIu64 " bytes", files,
                   self->merge_shard->id, bytes);
    self->merge_shard = NULL;
    if (self->merge_req) {
        Titan__Bus__KvMergeReply r = TITAN__BUS__KV_MERGE_REPLY__INIT;
        r.code = s_code (rc);
        r.message = rc && err ? err : (char *) "";
        r.files_merged = files;
        r.bytes_reclaimed = bytes;
        size_t len = titan__bus__kv_merge_reply__get_packed_size (&r);
        uint8_t *buf = malloc (len + 1);
        if (buf) {
            titan__bus__kv_merge_reply__pack (&r, buf);
            s_send (self, &self->merge_req, buf, len, false);
        }
        else
            titan_envelope_destroy (&self->merge_req);
        free (buf);
    }
    zstr_free (&err);
}

static void
s_handle_merge (s_actor_t *self, titan_envelope_t **env_p)
{
    titan_envelope_t *env = *env_p;
    Titan__Bus__KvMergeRequest *q = titan__bus__kv_merge_request__unpack (
        NULL, titan_envelope_size (env), titan_envelope_data (env));
    if (!q) {
        s_reply_error (self, env_p, -EINVAL, "bitcask: malformed KvMergeRequest");
        return;
    }
    char err [256];
    s_shard_t *shard;
    int rc = s_shard (self, q->shard, &shard, err, sizeof err);
    titan__bus__kv_merge_request__free_unpacked (q, NULL);
    if (rc) {
        s_reply_error (self, env_p, rc, err);
        return;
    }
    if (self->merger) {
        s_reply_error (self, env_p, TITAN_ECLOSED,
                       "bitcask: a merge is already running; retry later");
        return;
    }
    rc = s_merge_start (self, shard);
    if (rc) {
        s_reply_error (self, env_p, rc, "bitcask: cannot start the merge");
        return;
    }
    self->merge_req = env;
    *env_p = NULL;
}

/* Scheduled merges: fragmentation threshold or interval. */
static void
s_merge_check (s_actor_t *self)
{
    if (self->merger)
        return;
    int64_t now = zclock_mono ();
    for (size_t i = 0; i < self->nshards; i++) {
        s_shard_t *shard = self->shards [i];
        bc_stats_t st;
        bc_engine_stats (shard->engine, &st);
        if (st.failed) {
            /* A failed engine (fsync error) recovers only by reopening. */
            char err [256];
            bc_engine_destroy (&shard->engine);
            char dir [4096];
            snprintf (dir, sizeof dir, "%s/shard-%u", self->ctx->data_dir,
                      shard->id);
            int rc = bc_engine_open (dir, &self->opt, &shard->engine, err,
                                     sizeof err);
            if (rc) {
                titan_log_error ("bitcask: cannot reopen shard %u: %s", shard->id,
                            err);
                /* Exit: the supervisor restarts the module, which retries. */
                self->terminated = true;
                return;
            }
            titan_log_info ("bitcask: shard %u reopened after a failure",
                       shard->id);
            continue;
        }
        if (st.dead_bytes == 0)
            continue;
        bool fragmented = (int64_t) st.dead_bytes >= self->merge_min_dead
            && st.dead_bytes * 100 >= st.total_bytes
                                      * (uint64_t) self->merge_dead_percent;
        bool due = self->merge_interval_ms > 0
            && now - shard->last_merge_ms >= self->merge_interval_ms;
        if (fragmented || due) {
            if (s_merge_start (self, shard) == 0)
                return;
        }
    }
}

/* ---------------------------------------------------------- snapshots */

static s_export_t *
s_export_find (s_actor_t *self, uint32_t shard, uint64_t id)
{
    for (size_t i = 0; i < self->nexports; i++)
        if (self->exports [i].id == id && self->exports [i].shard == shard)
            return &self->exports [i];
    return NULL;
}

static void
s_export_remove (s_actor_t *self, s_export_t *x)
{
    bc_snapshot_end (&x->snap);
    *x = self->exports [--self->nexports];
}

static s_install_t *
s_install_find (s_actor_t *self, uint32_t shard)
{
    for (size_t i = 0; i < self->ninstalls; i++)
        if (self->installs [i].shard == shard)
            return &self->installs [i];
    return NULL;
}

static void
s_install_remove (s_actor_t *self, s_install_t *in)
{
    bc_restore_abort (&in->restore);
    *in = self->installs [--self->ninstalls];
}

/* Releases snapshots and aborts installs idle for snapshot_idle_ms. */
static void
s_snapshot_expire (s_actor_t *self)
{
    int64_t now = zclock_mono ();
    for (size_t i = self->nexports; i-- > 0; )
        if (now - self->exports [i].used_ms >= self->snap_idle_ms) {
            titan_log_info ("bitcask: snapshot %" PRIu64 " of shard %u released "
                       "after %" PRId64 " ms idle", self->exports [i].id,
                       self->exports [i].shard, self->snap_idle_ms);
            s_export_remove (self, &self->exports [i]);
        }
    for (size_t i = self->ninstalls; i-- > 0; )
        if (now - self->installs [i].used_ms >= self->snap_idle_ms) {
            titan_log_info ("bitcask: snapshot install of shard %u aborted after "
                       "%" PRId64 " ms idle", self->installs [i].shard,
                       self->snap_idle_ms);
            s_install_remove (self, &self->installs [i]);
        }
}

static void
s_handle_snapshot_begin (s_actor_t *self, titan_envelope_t **env_p)
{
    titan_envelope_t *env = *env_p;
    Titan__Bus__KvSnapshotBegin *q = titan__bus__kv_snapshot_begin__unpack (
        NULL, titan_envelope_size (env), titan_envelope_data (env));
    if (!q) {
        s_reply_error (self, env_p, -EINVAL, "bitcask: malformed KvSnapshotBegin");
        return;
    }
    uint32_t shard_id = q->shard;
    titan__bus__kv_snapshot_begin__free_unpacked (q, NULL);
    char err [256];
    s_shard_t *shard;
    int rc = s_shard (self, shard_id, &shard, err, sizeof err);
    if (rc) {
        s_reply_error (self, env_p, rc, err);
        return;
    }
    if (self->merge_shard == shard) {
        /* bc_snapshot_begin would wait for the merge: keep serving. */
        s_reply_error (self, env_p, -EBUSY, "bitcask: the shard is merging; "
                       "retry the snapshot later");
        return;
    }
    if ((int64_t) self->nexports >= self->snap_max_open) {
        snprintf (err, sizeof err, "bitcask: %zu snapshots open (limit "
                  "snapshot_max_open); end one or retry later",
                  self->nexports);
        s_reply_error (self, env_p, -EMFILE, err);
        return;
    }
    s_export_t *xs = realloc (self->exports,
                              (self->nexports + 1) * sizeof *xs);
    if (!xs) {
        s_reply_error (self, env_p, -ENOMEM, "bitcask: out of memory");
        return;
    }
    self->exports = xs;
    bc_snapshot_t *snap;
    rc = bc_snapshot_begin (shard->engine, &snap, err, sizeof err);
    if (rc) {
        s_reply_error (self, env_p, rc, err);
        return;
    }
    s_export_t *x = &self->exports [self->nexports++];
    x->id = self->next_snap_id++;
    x->shard = shard_id;
    x->snap = snap;
    x->used_ms = zclock_mono ();
    bc_snapshot_info_t info;
    bc_snapshot_info (snap, &info);
    Titan__Bus__KvSnapshotInfo r = TITAN__BUS__KV_SNAPSHOT_INFO__INIT;
    r.snapshot_id = x->id;
    r.applied_index = info.applied_index;
    r.last_revision = info.last_revision;
    r.total_bytes = info.total_bytes;
    bc_stats_t st;               /* after the seal: at least applied_index */
    bc_engine_stats (shard->engine, &st);
    r.durable_index = st.durable_applied_index;
    size_t len = titan__bus__kv_snapshot_info__get_packed_size (&r);
    uint8_t *buf = malloc (len + 1);
    if (buf) {
        titan__bus__kv_snapshot_info__pack (&r, buf);
        s_send (self, env_p, buf, len, false);
    }
    else
        titan_envelope_destroy (env_p);
    free (buf);
}

static void
s_handle_snapshot_read (s_actor_t *self, titan_envelope_t **env_p)
{
    titan_envelope_t *env = *env_p;
    Titan__Bus__KvSnapshotRead *q = titan__bus__kv_snapshot_read__unpack (
        NULL, titan_envelope_size (env), titan_envelope_data (env));
    if (!q) {
        s_reply_error (self, env_p, -EINVAL, "bitcask: malformed KvSnapshotRead");
        return;
    }
    s_export_t *x = s_export_find (self, q->shard, q->snapshot_id);
    char err [256];
    if (!x) {
        snprintf (err, sizeof err, "bitcask: no snapshot %" PRIu64 " of shard "
                  "%u (ended, expired, or the module restarted)",
                  q->snapshot_id, q->shard);
        titan__bus__kv_snapshot_read__free_unpacked (q, NULL);
        s_reply_error (self, env_p, -ENOENT, err);
        return;
    }
    bc_snapshot_info_t info;
    bc_snapshot_info (x->snap, &info);
    uint64_t offset = q->offset;
    size_t cap = (size_t) self->snap_chunk;
    if (q->max_bytes && q->max_bytes < cap)
        cap = q->max_bytes;
    titan__bus__kv_snapshot_read__free_unpacked (q, NULL);
    if (offset > info.total_bytes) {
        snprintf (err, sizeof err, "bitcask: offset %" PRIu64 " past the "
                  "snapshot's %" PRIu64 " bytes", offset, info.total_bytes);
        s_reply_error (self, env_p, -EINVAL, err);
        return;
    }
    if (cap > info.total_bytes - offset)
        cap = (size_t) (info.total_bytes - offset);
    x->used_ms = zclock_mono ();
    uint8_t *data = malloc (cap ? cap : 1);
    if (!data) {
        s_reply_error (self, env_p, -ENOMEM, "bitcask: out of memory");
        return;
    }
    size_t n = 0;
    (void) bc_snapshot_read (x->snap, offset, data, cap, &n);
    Titan__Bus__KvSnapshotChunk r = TITAN__BUS__KV_SNAPSHOT_CHUNK__INIT;
    r.data.data = data;
    r.data.len = n;
    r.offset = offset;
    r.done = offset + n == info.total_bytes;
    size_t len = titan__bus__kv_snapshot_chunk__get_packed_size (&r);
    uint8_t *buf = malloc (len + 1);
    if (buf) {
        titan__bus__kv_snapshot_chunk__pack (&r, buf);
        s_send (self, env_p, buf, len, false);
    }
    else
        titan_envelope_destroy (env_p);
    free (buf);
    free (data);
}

static void
s_handle_snapshot_end (s_actor_t *self, titan_envelope_t **env_p)
{
    titan_envelope_t *env = *env_p;
    Titan__Bus__KvSnapshotEnd *q = titan__bus__kv_snapshot_end__unpack (
        NULL, titan_envelope_size (env), titan_envelope_data (env));
    if (!q) {
        s_reply_error (self, env_p, -EINVAL, "bitcask: malformed KvSnapshotEnd");
        return;
    }
    s_export_t *x = s_export_find (self, q->shard, q->snapshot_id);
    titan__bus__kv_snapshot_end__free_unpacked (q, NULL);
    /* Releasing twice (or after expiry) is fine: the caller's goal holds. */
    if (x)
        s_export_remove (self, x);
    Titan__Bus__KvReply r = TITAN__BUS__KV_REPLY__INIT;
    s_reply_kv (self, env_p, &r, false);
}

static void
s_install_reply (s_actor_t *self, titan_envelope_t **env_p, uint64_t received,
                 const bc_stats_t *st)
{
    Titan__Bus__KvSnapshotInstallReply r =
        TITAN__BUS__KV_SNAPSHOT_INSTALL_REPLY__INIT;
    r.received = received;
    if (st) {
        r.applied_index = st->applied_index;
        r.last_revision = st->last_revision;
    }
    size_t len = titan__bus__kv_snapshot_install_reply__get_packed_size (&r);
    uint8_t *buf = malloc (len + 1);
    if (buf) {
        titan__bus__kv_snapshot_install_reply__pack (&r, buf);
        s_send (self, env_p, buf, len, false);
    }
    else
        titan_envelope_destroy (env_p);
    free (buf);
}

/* The last chunk arrived: verify, swap the shard's directory, reopen. */
static int
s_install_finish (s_actor_t *self, s_install_t *in, bc_stats_t *st,
                  char *err, size_t errlen)
{
    bc_snapshot_info_t info;
    int rc = bc_restore_verify (in->restore, &info, err, errlen);
    if (rc)
        return rc;
    if (in->applied_index && in->applied_index != info.applied_index) {
        snprintf (err, errlen, "bitcask: the stream holds applied index %"
                  PRIu64 ", the install announced %" PRIu64,
                  info.applied_index, in->applied_index);
        return TITAN_EMISMATCH;
    }
    s_shard_t *shard = NULL;
    for (size_t i = 0; i < self->nshards; i++)
        if (self->shards [i]->id == in->shard)
            shard = self->shards [i];
    if (shard)
        bc_engine_destroy (&shard->engine);
    rc = bc_restore_commit (in->restore, NULL, err, errlen);
    char dir [4096], oerr [256];
    snprintf (dir, sizeof dir, "%s/shard-%u", self->ctx->data_dir, in->shard);
    /* Reopen whichever state is in place (the open settles a failed
       commit to the old or the new one). */
    int orc = 0;
    if (shard)
        orc = bc_engine_open (dir, &self->opt, &shard->engine, oerr,
                              sizeof oerr);
    else
    if (rc == 0)
        orc = s_shard (self, in->shard, &shard, oerr, sizeof oerr);
    if (orc) {
        titan_log_error ("bitcask: cannot reopen shard %u after an install: %s",
                    in->shard, oerr);
        self->terminated = true;     /* the supervisor restarts us */
        if (rc == 0)
            rc = orc;
        snprintf (err, errlen, "%s", oerr);
        return rc;
    }
    if (rc)
        return rc;
    shard->last_merge_ms = zclock_mono ();
    bc_engine_stats (shard->engine, st);
    if (st->applied_index != info.applied_index) {
        snprintf (err, errlen, "bitcask: shard %u reopened at applied index %"
                  PRIu64 ", the snapshot says %" PRIu64, in->shard,
                  st->applied_index, info.applied_index);
        return TITAN_ECORRUPT;
    }
    return 0;
}

static void
s_handle_snapshot_install (s_actor_t *self, titan_envelope_t **env_p)
{
    titan_envelope_t *env = *env_p;
    Titan__Bus__KvSnapshotInstall *q = titan__bus__kv_snapshot_install__unpack (
        NULL, titan_envelope_size (env), titan_envelope_data (env));
    if (!q) {
        s_reply_error (self, env_p, -EINVAL,
                       "bitcask: malformed KvSnapshotInstall");
        return;
    }
    char err [256] = "";
    int rc = 0;
    s_install_t *in = s_install_find (self, q->shard);
    if ((int64_t) q->shard >= self->max_shards) {
        snprintf (err, sizeof err, "bitcask: shard %u out of range (max_shards "
                  "%" PRId64 ")", q->shard, self->max_shards);
        rc = -EINVAL;
    }
    else
    if (q->data.len > (size_t) self->snap_chunk) {
        snprintf (err, sizeof err, "bitcask: install chunk of %zu bytes "
                  "exceeds snapshot_chunk_bytes %" PRId64, q->data.len,
                  self->snap_chunk);
        rc = TITAN_ETOOBIG;
    }
    else
    if (self->merge_shard && self->merge_shard->id == q->shard) {
        snprintf (err, sizeof err, "bitcask: shard %u is merging; retry the "
                  "chunk later", q->shard);
        rc = -EBUSY;
        in = NULL;                   /* keep the install going */
    }
    else
    if (q->offset == 0 && (!in || in->applied_index != q->applied_index
                           || !bc_restore_same_start (in->restore,
                                                      q->data.data,
                                                      q->data.len))) {
        if (in)
            s_install_remove (self, in);
        s_install_t *ins = realloc (self->installs,
                                    (self->ninstalls + 1) * sizeof *ins);
        if (!ins) {
            snprintf (err, sizeof err, "bitcask: out of memory");
            rc = -ENOMEM;
        }
        else {
            self->installs = ins;
            in = &ins [self->ninstalls];
            memset (in, 0, sizeof *in);
            in->shard = q->shard;
            in->applied_index = q->applied_index;
            char dir [4096];
            snprintf (dir, sizeof dir, "%s/shard-%u", self->ctx->data_dir,
                      q->shard);
            rc = bc_restore_begin (dir, self->opt.fault, &in->restore, err,
                                   sizeof err);
            if (rc == 0)
                self->ninstalls++;
            in = rc == 0 ? in : NULL;
        }
    }
    else
    if (!in) {
        snprintf (err, sizeof err, "bitcask: no install of shard %u in "
                  "progress; start again at offset 0", q->shard);
        rc = -ENOENT;
    }
    if (rc == 0)
        rc = bc_restore_write (in->restore, q->offset, q->data.data,
                               q->data.len, err, sizeof err);
    bc_stats_t st;
    bool done = rc == 0 && q->done;
    uint64_t received = in && in->restore ? bc_restore_written (in->restore) : 0;
    titan__bus__kv_snapshot_install__free_unpacked (q, NULL);
    if (rc == 0 && done) {
        rc = s_install_finish (self, in, &st, err, sizeof err);
        s_install_remove (self, in);
    }
    else
    if (rc && rc != -EBUSY && in)
        s_install_remove (self, in);        /* a stream error ends it */
    else
    if (in)
        in->used_ms = zclock_mono ();
    if (rc) {
        titan_log_warning ("%s", err);
        s_reply_error (self, env_p, rc, err);
        return;
    }
    s_install_reply (self, env_p, received, done ? &st : NULL);
}

/* ---------------------------------------------------------- drop */

/* kv.drop_shard: cancels the shard's snapshots and install, closes its
   engine and deletes its directory durably. */
static void
s_handle_drop (s_actor_t *self, titan_envelope_t **env_p)
{
    titan_envelope_t *env = *env_p;
    Titan__Bus__KvDropShard *q = titan__bus__kv_drop_shard__unpack (
        NULL, titan_envelope_size (env), titan_envelope_data (env));
    if (!q) {
        s_reply_error (self, env_p, -EINVAL, "bitcask: malformed KvDropShard");
        return;
    }
    uint32_t id = q->shard;
    titan__bus__kv_drop_shard__free_unpacked (q, NULL);
    char err [512];
    if (id == TITAN_META_SHARD || (int64_t) id >= self->max_shards) {
        snprintf (err, sizeof err, "bitcask: cannot drop shard %u: %s", id,
                  id == TITAN_META_SHARD ? "it is the meta group's, which "
                  "the ring module stores" : "out of range (max_shards)");
        s_reply_error (self, env_p, -EINVAL, err);
        return;
    }
    if (self->merge_shard && self->merge_shard->id == id) {
        snprintf (err, sizeof err, "bitcask: shard %u is merging; retry the "
                  "drop once the merge is done", id);
        s_reply_error (self, env_p, -EBUSY, err);
        return;
    }
    int cancelled = 0;
    for (size_t i = self->nexports; i-- > 0; )
        if (self->exports [i].shard == id) {
            s_export_remove (self, &self->exports [i]);
            cancelled++;
        }
    s_install_t *in = s_install_find (self, id);
    if (in) {
        s_install_remove (self, in);
        cancelled++;
    }
    for (size_t i = 0; i < self->nshards; i++)
        if (self->shards [i]->id == id) {
            s_shard_free (&self->shards [i]);
            self->shards [i] = self->shards [--self->nshards];
            break;
        }
    char dir [4096];
    snprintf (dir, sizeof dir, "%s/shard-%u", self->ctx->data_dir, id);
    bool dropped = false;
    int rc = bc_drop_dir (dir, self->opt.fault, &dropped, err, sizeof err);
    if (rc) {
        titan_log_error ("%s", err);
        s_reply_error (self, env_p, rc, err);
        return;
    }
    if (dropped || cancelled)
        titan_log_info ("bitcask: shard %u dropped (%s; %d snapshot(s) or "
                        "install(s) cancelled)", id, dropped
                        ? "directory deleted" : "no directory", cancelled);
    Titan__Bus__KvReply r = TITAN__BUS__KV_REPLY__INIT;
    s_reply_kv (self, env_p, &r, false);
}

/* ---------------------------------------------------------- actor */

/* ---------------------------------------------------------- repair, scrub */

static void
s_handle_repair (s_actor_t *self, titan_envelope_t **env_p)
{
    titan_envelope_t *env = *env_p;
    Titan__Bus__KvRepair *q = titan__bus__kv_repair__unpack (NULL,
        titan_envelope_size (env), titan_envelope_data (env));
    if (!q) {
        s_reply_error (self, env_p, -EINVAL, "bitcask: malformed KvRepair");
        return;
    }
    char err [256];
    s_shard_t *shard;
    int rc = s_shard (self, q->shard, &shard, err, sizeof err);
    if (rc == 0 && !q->deleted && q->revision != q->local_revision) {
        snprintf (err, sizeof err, "bitcask: repair refused: the healthy "
                  "replica holds revision %" PRIu64 ", this one %" PRIu64
                  " (a different write; Raft brings the newer one)",
                  q->revision, q->local_revision);
        rc = TITAN_EMISMATCH;
    }
    if (rc == 0)
        rc = bc_engine_repair (shard->engine, q->key.data, q->key.len,
                               q->value.data, q->value.len, q->local_revision,
                               q->deleted, err, sizeof err);
    char k [200];
    titan_escape (q->key.data, q->key.len, k, sizeof k);
    if (rc == 0)
        titan_log_info ("bitcask: repaired shard %u key \"%s\" at revision %"
                        PRIu64 "%s", q->shard, k, q->local_revision,
                        q->deleted ? " (absent on the healthy replica: "
                                     "tombstone)" : "");
    else
        titan_log_warning ("bitcask: repair of shard %u key \"%s\" not done: "
                           "%s", q->shard, k, err);
    titan__bus__kv_repair__free_unpacked (q, NULL);
    Titan__Bus__KvReply r = TITAN__BUS__KV_REPLY__INIT;
    r.code = s_code (rc);
    if (rc)
        r.message = err;
    s_reply_kv (self, env_p, &r, false);
}

static void
s_handle_scrub (s_actor_t *self, titan_envelope_t **env_p)
{
    titan_envelope_t *env = *env_p;
    Titan__Bus__KvScrubRequest *q = titan__bus__kv_scrub_request__unpack (
        NULL, titan_envelope_size (env), titan_envelope_data (env));
    char err [256] = "";
    s_shard_t *shard = NULL;
    int rc = q ? s_shard (self, q->shard, &shard, err, sizeof err) : -EINVAL;
    if (!q)
        snprintf (err, sizeof err, "bitcask: malformed KvScrubRequest");
    Titan__Bus__KvScrubReply r = TITAN__BUS__KV_SCRUB_REPLY__INIT;
    r.code = s_code (rc);
    if (rc)
        r.message = err;
    else {
        if (!q->status_only
        &&  bc_scrubber_start (shard->scrub, zclock_usecs ())) {
            r.started = true;
            titan_log_info ("bitcask: scrub of shard %u started (%" PRId64
                            " bytes/s)", shard->id, self->scrub_rate);
        }
        bc_scrub_stats_t ss;
        bc_scrubber_stats (shard->scrub, &ss);
        r.running = ss.running;
        r.passes = ss.passes;
        r.records = ss.records;
        r.bytes = ss.bytes;
        r.errors = ss.errors;
        r.last_pass_ms = ss.last_pass_us / 1000;
        r.last_pass_errors = ss.last_pass_errors;
        r.bytes_per_sec = (uint64_t) self->scrub_rate;
    }
    if (q)
        titan__bus__kv_scrub_request__free_unpacked (q, NULL);
    size_t len = titan__bus__kv_scrub_reply__get_packed_size (&r);
    uint8_t *buf = malloc (len + 1);
    if (buf) {
        titan__bus__kv_scrub_reply__pack (&r, buf);
        s_send (self, env_p, buf, len, false);
    }
    else
        titan_envelope_destroy (env_p);
    free (buf);
}

typedef struct {
    s_actor_t *self;
    uint32_t shard;
} s_corrupt_ctx_t;

/* A scrub found a damaged record: log it and tell the gateway (which
   repairs it from a healthy replica). */
static void
s_on_corrupt (const uint8_t *key, size_t len, uint64_t revision,
              const char *why, void *arg)
{
    s_corrupt_ctx_t *c = arg;
    s_log_damage (c->shard, key, len, "scrub", why);
    Titan__Bus__KvCorrupt ev = TITAN__BUS__KV_CORRUPT__INIT;
    ev.shard = c->shard;
    ev.key.data = (uint8_t *) key;
    ev.key.len = len;
    ev.revision = revision;
    ev.reason = (char *) why;
    size_t size = titan__bus__kv_corrupt__get_packed_size (&ev);
    uint8_t *buf = malloc (size + 1);
    if (!buf)
        return;
    titan__bus__kv_corrupt__pack (&ev, buf);
    titan_envelope_t *env = titan_envelope_new ("grpc_gateway",
        TITAN_T_KV_CORRUPT, TITAN_MSG_EVENT, 0, buf, size);
    free (buf);
    int rc = env ? titan_bus_send (c->self->bus, &env) : -ENOMEM;
    if (rc)
        titan_log_warning ("bitcask: cannot report a damaged record of shard "
                           "%u to the gateway: %s", c->shard, strerror (-rc));
}

/* Starts the scheduled passes and steps the running ones.  Returns true
   when a pass is running (the actor then wakes every SCRUB_TICK_MS). */
static bool
s_scrub_tick (s_actor_t *self)
{
    bool running = false;
    int64_t now_ms = zclock_mono ();
    for (size_t i = 0; i < self->nshards; i++) {
        s_shard_t *shard = self->shards [i];
        if (!shard->engine)
            continue;            /* a failed reopen: the actor is exiting */
        if (shard->next_scrub_ms && now_ms >= shard->next_scrub_ms) {
            shard->next_scrub_ms = now_ms + self->scrub_interval_s * 1000;
            if (bc_scrubber_start (shard->scrub, zclock_usecs ()))
                titan_log_info ("bitcask: scheduled scrub of shard %u "
                                "started", shard->id);
        }
        s_corrupt_ctx_t c = { self, shard->id };
        int rc = bc_scrubber_step (shard->scrub, shard->engine,
                                   zclock_usecs (), s_on_corrupt, &c);
        bc_scrub_stats_t ss;
        bc_scrubber_stats (shard->scrub, &ss);
        if (rc == 1)
            titan_log_info ("bitcask: scrub of shard %u done in %" PRIu64
                            " ms: %" PRIu64 " damaged record(s) found (%"
                            PRIu64 " records, %" PRIu64 " bytes verified "
                            "since start)", shard->id, ss.last_pass_us / 1000,
                            ss.last_pass_errors, ss.records, ss.bytes);
        else
        if (rc < 0)
            titan_log_warning ("bitcask: scrub of shard %u abandoned: %s",
                               shard->id, strerror (-rc));
        running = running || ss.running;
    }
    return running;
}

/*  One shard's interval sync, run on the sync pool.  */
typedef struct {
    s_shard_t *shard;
    int rc;
    char err [256];
} s_sync_job_t;

static void
s_sync_job (void *item)
{
    s_sync_job_t *job = item;
    job->rc = bc_engine_sync (job->shard->engine, job->err, sizeof job->err);
}

/*  Makes the applied batches of every shard durable (apply_sync =
    interval): the shards holding unsynced batches are fsynced together on
    the sync pool (concurrent fdatasyncs of different files share the file
    system's journal commits), so 16 busy shards cost about one sync, not
    16 in a row on the actor.  A failed fsync fails that engine, which
    s_merge_check reopens.  */
static void
s_sync_tick (s_actor_t *self)
{
    self->next_sync = zclock_mono () + self->apply_sync_ms;
    size_t cap = 0;
    for (size_t i = 0; i < self->nshards; i++)
        cap += self->shards [i]->engine
            && bc_engine_unsynced (self->shards [i]->engine);
    if (!cap)
        return;                 /* idle: nothing to sync, nothing to allocate */
    s_sync_job_t *jobs = calloc (cap, sizeof *jobs);
    void **items = calloc (cap, sizeof *items);
    if (!jobs || !items) {
        free (jobs);
        free (items);
        titan_log_warning ("bitcask: out of memory for the interval sync; "
                           "retrying at the next interval");
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < self->nshards && n < cap; i++) {
        s_shard_t *shard = self->shards [i];
        if (shard->engine && bc_engine_unsynced (shard->engine)) {
            jobs [n].shard = shard;
            items [n] = &jobs [n];
            n++;
        }
    }
    titan_job_pool_run (self->syncer, s_sync_job, items, n);
    for (size_t i = 0; i < n; i++)
        if (jobs [i].rc)
            titan_log_error ("bitcask: shard %u: %s", jobs [i].shard->id,
                             jobs [i].err);
    free (jobs);
    free (items);
}

static void
s_dispatch (s_actor_t *self, titan_envelope_t **env_p)
{
    titan_envelope_t *env = *env_p;
    if (env->kind != TITAN_MSG_REQUEST) {
        titan_envelope_destroy (env_p);      /* events, stray replies */
        return;
    }
    s_recent_t *seen = s_recent_find (self, env);
    if (seen) {
        s_flush (self);
        titan_bus_reply (self->bus, env, seen->reply, seen->len);
        titan_envelope_destroy (env_p);
        return;
    }
    if (streq (env->type, TITAN_T_KV_PUT) || streq (env->type, TITAN_T_KV_DELETE)
    ||  streq (env->type, TITAN_T_KV_CAS)
    ||  streq (env->type, TITAN_T_KV_APPLY_BATCH)) {
        s_handle_write (self, env_p);
        return;
    }
    s_flush (self);       /* a read sees the writes received before it */
    if (streq (env->type, TITAN_T_KV_GET))
        s_handle_get (self, env_p);
    else
    if (streq (env->type, TITAN_T_KV_STATS))
        s_handle_stats (self, env_p);
    else
    if (streq (env->type, TITAN_T_KV_MERGE))
        s_handle_merge (self, env_p);
    else
    if (streq (env->type, TITAN_T_KV_SNAPSHOT_BEGIN))
        s_handle_snapshot_begin (self, env_p);
    else
    if (streq (env->type, TITAN_T_KV_SNAPSHOT_READ))
        s_handle_snapshot_read (self, env_p);
    else
    if (streq (env->type, TITAN_T_KV_SNAPSHOT_END))
        s_handle_snapshot_end (self, env_p);
    else
    if (streq (env->type, TITAN_T_KV_SNAPSHOT_INSTALL))
        s_handle_snapshot_install (self, env_p);
    else
    if (streq (env->type, TITAN_T_KV_REPAIR))
        s_handle_repair (self, env_p);
    else
    if (streq (env->type, TITAN_T_KV_SCRUB))
        s_handle_scrub (self, env_p);
    else
    if (streq (env->type, TITAN_T_KV_DROP_SHARD))
        s_handle_drop (self, env_p);
    else {
        char msg [128];
        snprintf (msg, sizeof msg, "bitcask: unknown request type '%s'",
                  env->type);
        Titan__Bus__KvReply r = TITAN__BUS__KV_REPLY__INIT;
        r.code = TITAN__BUS__CODE__UNIMPLEMENTED;
        r.message = msg;
        s_reply_kv (self, env_p, &r, false);
    }
}

static int
s_settings (s_actor_t *self, char *err, size_t errlen)
{
    zconfig_t *cfg = self->ctx->settings;
    int bad = 0, st = 0;
    bc_options_init (&self->opt);
#define GET(var, name, def, lo, hi) do { \
        int64_t v_ = titan_setting_int (cfg, name, def, &st); \
        if (st || v_ < (lo) || v_ > (hi)) { \
            snprintf (err, errlen, "bitcask: setting %s must be a whole " \
                      "number in %lld..%lld", name, (long long) (lo), \
                      (long long) (hi)); \
            bad = 1; \
        } \
        else var = v_; \
    } while (0)
    int64_t v = 0;
    GET (v, "max_value_bytes", 8 << 20, 0, 1 << 30);
    self->opt.max_value_bytes = (uint32_t) v;
    GET (v, "max_file_bytes", 256 << 20, 4096, 0xF0000000ll);
    self->opt.max_file_bytes = (uint64_t) v;
    GET (v, "max_open_files", 64, 1, 100000);
    self->opt.max_open_files = (uint32_t) v;
    GET (v, "sync", 1, 0, 1);
    self->opt.sync = v != 0;
    const char *mode = titan_setting_str (cfg, "apply_sync", "interval");
    if (streq (mode, "interval") || streq (mode, "always"))
        self->opt.apply_sync = streq (mode, "always") ? BC_APPLY_SYNC_ALWAYS
                                                      : BC_APPLY_SYNC_INTERVAL;
    else {
        snprintf (err, errlen, "bitcask: setting apply_sync must be "
                  "\"interval\" or \"always\", not \"%s\"", mode);
        bad = 1;
    }
    GET (self->apply_sync_ms, "apply_sync_interval_ms", 200, 1, 60000);
    GET (self->sync_threads, "sync_threads", 3, 0, 16);
    GET (v, "digest_every", 1000, 0, INT64_MAX);
    self->opt.digest_every = (uint64_t) v;
    GET (self->max_shards, "max_shards", 65536, 1, 1 << 24);
    GET (self->merge_check_ms, "merge_check_ms", 10000, 10, 86400000);
    GET (self->merge_min_dead, "merge_min_dead_bytes", 64 << 20, 0, INT64_MAX);
    GET (self->merge_dead_percent, "merge_dead_percent", 50, 1, 100);
    GET (self->merge_interval_ms, "merge_interval_ms", 0, 0, INT64_MAX);
    GET (self->snap_chunk, "snapshot_chunk_bytes", 1 << 20, 4096,
         SNAP_CHUNK_HARD_MAX);
    GET (self->snap_idle_ms, "snapshot_idle_ms", 60000, 10, 86400000);
    GET (self->snap_max_open, "snapshot_max_open", 16, 1, 1024);
    GET (self->scrub_rate, "scrub_bytes_per_sec", 8 << 20, 0, 1ll << 40);
    GET (self->scrub_interval_s, "scrub_interval_s", 86400, 0, 365ll * 86400);
#undef GET
    return bad ? TITAN_ECONFIG : 0;
}

static void
s_actor (zsock_t *pipe, void *args)
{
    titan_module_ctx_t *ctx = args;
    titan_log_bind (ctx->logger, ctx->module_name);
    s_actor_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (ctx->error, sizeof ctx->error, "bitcask: out of memory");
        zsock_signal (pipe, 1);
        return;
    }
    self->ctx = ctx;
    self->pipe = pipe;
    if (s_settings (self, ctx->error, sizeof ctx->error)) {
        free (self);
        zsock_signal (pipe, 1);
        return;
    }
    self->bus = titan_bus_connect (ctx->bus_endpoint, ctx->module_name
                                   ? ctx->module_name : "bitcask");
    self->poller = self->bus ? zpoller_new (pipe, titan_bus_sock (self->bus),
                                            NULL) : NULL;
    if (!self->poller) {
        snprintf (ctx->error, sizeof ctx->error, "bitcask: cannot connect to "
                  "the bus at %s", ctx->bus_endpoint);
        titan_bus_destroy (&self->bus);
        free (self);
        zsock_signal (pipe, 1);
        return;
    }
    int trashed = 0;
    if (bc_drop_clean (ctx->data_dir, self->opt.fault, &trashed, ctx->error,
                       sizeof ctx->error)) {
        zpoller_destroy (&self->poller);
        titan_bus_destroy (&self->bus);
        free (self);
        zsock_signal (pipe, 1);
        return;
    }
    if (trashed)
        titan_log_info ("bitcask: removed %d shard director%s left by an "
                        "interrupted drop", trashed, trashed == 1 ? "y" : "ies");
    int prc = titan_job_pool_new ((unsigned) self->sync_threads, &self->syncer);
    if (prc) {
        snprintf (ctx->error, sizeof ctx->error, "bitcask: cannot start %"
                  PRId64 " sync threads: %s", self->sync_threads,
                  strerror (-prc));
        zpoller_destroy (&self->poller);
        titan_bus_destroy (&self->bus);
        free (self);
        zsock_signal (pipe, 1);
        return;
    }
    self->next_check = zclock_mono () + self->merge_check_ms;
    self->next_sync = zclock_mono () + self->apply_sync_ms;
    /* Snapshot ids differ across incarnations, so a stale id misses. */
    self->next_snap_id = ((uint64_t) zclock_time () << 16) | 1;
    zsock_signal (pipe, 0);

    bool scrubbing = false;
    while (!self->terminated) {
        int64_t wait = self->next_check - zclock_mono ();
        if (self->next_sync - zclock_mono () < wait)
            wait = self->next_sync - zclock_mono ();
        if (scrubbing && wait > SCRUB_TICK_MS)
            wait = SCRUB_TICK_MS;
        if ((self->nexports || self->ninstalls) && wait > self->snap_idle_ms / 4)
            wait = self->snap_idle_ms / 4;       /* idle snapshot expiry */
        void *which = zpoller_wait (self->poller, wait > 0 ? (int) wait : 0);
        if (which == pipe) {
            if (titan_module_pipe_recv (pipe, NULL))
                self->terminated = true;
        }
        else
        if (which == titan_bus_sock (self->bus)) {
            /* Drain what is ready, then commit it all at once. */
            for (int n = 0; n < DRAIN_MAX; n++) {
                titan_envelope_t *env = titan_bus_recv (self->bus, 0);
                if (!env)
                    break;
                s_dispatch (self, &env);
            }
            s_flush (self);
        }
        else
        if (self->merger && which == self->merger)
            s_merge_done (self);
        else
        if (zpoller_terminated (self->poller))
            self->terminated = true;
        if (self->nexports || self->ninstalls)
            s_snapshot_expire (self);
        scrubbing = s_scrub_tick (self);
        if (zclock_mono () >= self->next_sync)
            s_sync_tick (self);
        if (zclock_mono () >= self->next_check) {
            s_merge_check (self);
            self->next_check = zclock_mono () + self->merge_check_ms;
        }
    }
    s_flush (self);
    if (self->merger)
        s_merge_done (self);       /* waits for the merge to finish */
    while (self->nexports)
        s_export_remove (self, &self->exports [0]);
    while (self->ninstalls)
        s_install_remove (self, &self->installs [0]);
    free (self->exports);
    free (self->installs);
    for (size_t i = 0; i < self->nshards; i++)
        s_shard_free (&self->shards [i]);
    free (self->shards);
    free (self->pend);
    for (size_t i = 0; i < RECENT_MAX; i++)
        free (self->recent [i].reply);
    titan_job_pool_destroy (&self->syncer);
    zpoller_destroy (&self->poller);
    titan_bus_destroy (&self->bus);
    free (self);
}

TITAN_MODULE_DEFINE ("bitcask", "0.1.0", s_actor);
