/*  raft_group consistency check: the replicas of a group compare a digest
    of their storage state at the same applied index, and a replica that
    diverged is rebuilt from the leader's snapshot (docs/consistency.md).

    Digests.  Every CHECK_POLL_MS the group asks the storage module for
    kv.stats, whose digest points are (applied index, digest of the state
    right after it) at the multiples of the bitcask's digest_every.  Since
    every replica applies the same log, healthy replicas have the same
    digest at the same index.

    Comparing (leader).  A follower sends its points to the leader
    (PeerCheck DIGEST) whenever it has a new one, and every
    CHECK_REPORT_MS anyway.  The leader takes, for each follower, the
    highest index of its report at which the leader has a point of its
    own, and counts the voters (itself and the followers whose reports
    hold that index) agreeing with each value: if the leader's value has
    a majority, a follower with another value diverged: it is logged,
    counted and told so (PeerCheck REBUILD, repeated each poll while it
    lasts); if the follower's value has a majority against the leader,
    the leader is the diverged one: it logs it and hands leadership to
    that follower (raft_transfer_leadership), whose own check will then
    find this node diverged.  Without a majority either way nothing is
    done (it is logged at debug level).

    Rebuilding (follower).  The follower fetches the leader's latest
    snapshot piece by piece (FETCH / PIECE, one piece in flight, the same
    chunks as InstallSnapshot) straight into its snapshot store; it names
    the oldest snapshot it can use, the index before its log's first
    entry, and a leader without such a snapshot takes one at once.  Its
    own snapshots and log compaction are held meanwhile.  Once the
    snapshot (index A) is stored and the group has applied at least A
    (no batch in flight), the log's entries A+1..applied are put back at
    the head of the apply queue and the snapshot is installed into the
    storage module by the usual install path (raft_group_snapshot.c),
    which replaces the storage state and the group state (dedup table,
    addresses, configuration) with the snapshot's; then those entries are
    applied again.  The Raft log and the core are untouched: only the
    state machine is replaced by a healthy one at a committed index, so
    Raft's safety does not depend on any of this.  A crash in between is
    covered by the usual start-up path (a storage module below the latest
    snapshot installs it; a rebuild not yet installed is found again by
    the next check).  LOCAL reads during a rebuild see the old state,
    then the snapshot's, then the replayed one; linearizable reads wait
    for the applied index to come back.
*/
#include "titan/log.h"
#include "raft_group_impl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "titan/bus_types.h"
#include "titan/status.h"

#define CHECK_POLL_MS       1000     /* kv.stats for the digests */
#define CHECK_REPORT_MS     5000     /* a follower reports at least this often */
#define FETCH_TIMEOUT_MS    3000     /* a piece not answered: ask again */
#define FETCH_RETRY_MS      300      /* the leader has no usable snapshot yet */
#define REBUILD_MAX_MS      120000   /* give up a fetch that makes no progress */

typedef enum { RB_IDLE = 0, RB_FETCH, RB_WAIT, RB_INSTALL } rb_state_t;

typedef struct {
    uint64_t id;
    size_t n;
    uint64_t idx [RAFT_CHECK_MAX_POINTS];
    uint64_t dig [RAFT_CHECK_MAX_POINTS];
    bool diverged;             /* found diverged, not yet seen agreeing */
    uint64_t ordered;          /* index of the last REBUILD sent */
    int64_t ordered_at;
} s_peer_t;

struct rg_check {
    int64_t poll_at;
    uint64_t poll_corr;        /* kv.stats in flight */
    int64_t poll_sent_at;
    size_t n;                  /* our points, from the last kv.stats */
    uint64_t idx [RAFT_CHECK_MAX_POINTS];
    uint64_t dig [RAFT_CHECK_MAX_POINTS];
    uint64_t reported;         /* follower: latest index reported */
    int64_t reported_at;
    s_peer_t peers [RAFT_MAX_MEMBERS];
    size_t n_peers;
    uint64_t self_diverged_term;   /* leader: term in which we found us */
    bool leading;              /* the role at the last work call */
    /* status */
    uint64_t detected;         /* divergences this node found as leader */
    uint64_t rebuilds;         /* rebuilds of this replica completed */
    uint64_t rebuilt_at;       /* the last one replaced the state up to
                                  this index (the applied index when its
                                  install began, at least its snapshot's) */
    uint64_t checked_index;    /* latest index compared */
    uint64_t checked_digest;
    char state [64];
    /* rebuild (follower) */
    rb_state_t rb;
    uint64_t rb_diverged_at;
    char rb_leader [RAFT_NODE_ID_MAX + 1];
    uint64_t rb_index, rb_term, rb_total, rb_offset;
    uint64_t rb_replaced_upto;  /* applied index when the install began */
    raft_config_t rb_cfg;
    raft_snapshot_writer_t *rb_writer;
    int64_t rb_sent_at;        /* 0: no fetch in flight */
    int64_t rb_retry_at;
    int64_t rb_started_at;
};

int
rg_check_open (raft_group_t *self)
{
    self->check = calloc (1, sizeof *self->check);
    if (!self->check)
        return -ENOMEM;
    snprintf (self->check->state, sizeof self->check->state, "unchecked");
    return 0;
}

void
rg_check_close (raft_group_t *self)
{
    if (!self->check)
        return;
    raft_snapshot_writer_abort (&self->check->rb_writer);
    free (self->check);
    self->check = NULL;
}

/*  Looks up the digest at `index` among n points; true when found.  */
static bool
s_lookup (const uint64_t *idx, const uint64_t *dig, size_t n, uint64_t index,
          uint64_t *digest)
{
    for (size_t i = 0; i < n; i++)
        if (idx [i] == index) {
            *digest = dig [i];
            return true;
        }
    return false;
}

static const char *
s_node_of (raft_group_t *self, uint64_t id)
{
    const raft_member_t *m = raft_members_get (self->members, id);
    return m ? m->node_id : NULL;
}

static void
s_send (raft_group_t *self, const char *node_id, const raft_wire_check_t *c)
{
    if (!node_id || !self->cfg.transport)
        return;
    uint8_t *buf = NULL;
    size_t size = 0;
    if (raft_wire_encode_check (&self->cfg.self, c, &buf, &size) == 0)
        raft_transport_queue (self->cfg.transport, node_id, buf, size);
    free (buf);
}

/* ------------------------------------------------------------ comparing */

static s_peer_t *
s_peer (rg_check_t *ck, uint64_t id, bool create)
{
    for (size_t i = 0; i < ck->n_peers; i++)
        if (ck->peers [i].id == id)
            return &ck->peers [i];
    if (!create || ck->n_peers == RAFT_MAX_MEMBERS)
        return NULL;
    s_peer_t *p = &ck->peers [ck->n_peers++];
    memset (p, 0, sizeof *p);
    p->id = id;
    return p;
}

/*  Voters among the reporting followers (other than `skip`) whose report
    holds `index` with `digest`.  */
static size_t
s_agreeing (raft_group_t *self, uint64_t index, uint64_t digest, uint64_t skip)
{
    const raft_config_t *cfg = raft_config (self->core);
    size_t n = 0;
    for (size_t i = 0; i < self->check->n_peers; i++) {
        const s_peer_t *p = &self->check->peers [i];
        uint64_t d;
        if (p->id != skip && raft_config_is_voter (cfg, p->id)
        &&  s_lookup (p->idx, p->dig, p->n, index, &d) && d == digest)
            n++;
    }
    return n;
}

static void
s_compare (raft_group_t *self, s_peer_t *p)
{
    rg_check_t *ck = self->check;
    uint64_t index = 0, mine = 0, theirs = 0;
    for (size_t i = p->n; i-- > 0; )
        if (s_lookup (ck->idx, ck->dig, ck->n, p->idx [i], &mine)) {
            index = p->idx [i];
            theirs = p->dig [i];
            break;
        }
    if (!index)
        return;                         /* no common point yet */
    const char *who = s_node_of (self, p->id);
    if (index > ck->checked_index) {
        ck->checked_index = index;
        ck->checked_digest = mine;
    }
    if (mine == theirs) {
        if (p->diverged)
            titan_log_info ("consistency: shard %u: %s agrees with the leader "
                            "again at index %" PRIu64 " (digest %016" PRIx64 ")",
                            self->cfg.shard, who ? who : "?", index, mine);
        p->diverged = false;
        return;
    }
    const raft_config_t *cfg = raft_config (self->core);
    size_t quorum = cfg->n_voters / 2 + 1;
    size_t with_leader = 1 + s_agreeing (self, index, mine, p->id);
    size_t with_peer = s_agreeing (self, index, theirs, 0);
    if (with_leader >= quorum) {
        if (!p->diverged) {
            ck->detected++;
            titan_log_warning ("consistency: shard %u: replica %s diverged at "
                               "index %" PRIu64 " (digest %016" PRIx64 ", the "
                               "leader and %zu other voter(s) have %016" PRIx64
                               "); rebuilding it from the leader's snapshot",
                               self->cfg.shard, who ? who : "?", index, theirs,
                               with_leader - 1, mine);
        }
        p->diverged = true;
        /* once per divergent point: the follower's next report comes
           from after its rebuild (again if the order was lost) */
        int64_t now = zclock_mono ();
        if (index > p->ordered || now - p->ordered_at >= REBUILD_MAX_MS) {
            p->ordered = index;
            p->ordered_at = now;
            raft_wire_check_t c = { .group = self->cfg.shard,
                                    .kind = RAFT_CHECK_REBUILD, .index = index };
            s_send (self, who, &c);
        }
    }
    else
    if (with_peer >= quorum && raft_config_is_voter (cfg, p->id)) {
        if (ck->self_diverged_term != raft_term (self->core)) {
            ck->self_diverged_term = raft_term (self->core);
            ck->detected++;
            snprintf (ck->state, sizeof ck->state, "diverged at %" PRIu64,
                      index);
            titan_log_warning ("consistency: shard %u: this leader diverged at "
                               "index %" PRIu64 " (digest %016" PRIx64 ", %zu "
                               "voters have %016" PRIx64 "); handing "
                               "leadership to %s to be rebuilt",
                               self->cfg.shard, index, mine, with_peer, theirs,
                               who ? who : "?");
        }
        raft_transfer_leadership (self->core, p->id);
    }
    else
        titan_log_debug ("consistency: shard %u: %s differs at index %" PRIu64
                         " but no value has a majority yet", self->cfg.shard,
                         who ? who : "?", index);
}

/*  Follower: the leader's points came back; notes whether we agree at the
    highest common index (the leader decides what to do about it).  */
static void
s_self_compare (raft_group_t *self, const raft_wire_check_t *c)
{
    rg_check_t *ck = self->check;
    if (ck->rb != RB_IDLE)
        return;
    for (size_t i = c->n_points; i-- > 0; ) {
        uint64_t mine;
        if (!s_lookup (ck->idx, ck->dig, ck->n, c->indexes [i], &mine))
            continue;
        ck->checked_index = c->indexes [i];
        ck->checked_digest = mine;
        if (mine == c->digests [i]) {
            if (strncmp (ck->state, "ok", 2) != 0)
                snprintf (ck->state, sizeof ck->state, "ok");
        }
        else
            snprintf (ck->state, sizeof ck->state, "differs from the leader "
                      "at %" PRIu64, c->indexes [i]);
        return;
    }
}

/* ------------------------------------------------------------ rebuilding */

static void
s_rb_reset (raft_group_t *self)
{
    rg_check_t *ck = self->check;
    raft_snapshot_writer_abort (&ck->rb_writer);
    ck->rb = RB_IDLE;
    ck->rb_index = ck->rb_offset = ck->rb_total = 0;
    ck->rb_sent_at = 0;
    self->snap_hold = false;
}

/*  The oldest snapshot of the leader's that a rebuild can use: we must
    hold the log entries after it, and it must not be older than our own
    latest snapshot (which may hold the diverged state, and would stay the
    latest otherwise: served to others, reinstalled at a restart).  */
static uint64_t
s_rb_min_index (raft_group_t *self)
{
    uint64_t first = raft_log_first_index (self->log);
    raft_snapshot_meta_t meta;
    raft_storage_adapter_iface (self->adapter)->snapshot_meta (self->adapter,
                                                               &meta);
    uint64_t min = first ? first - 1 : 0;
    return meta.index > min ? meta.index : min;
}

static void
s_rb_fetch (raft_group_t *self)
{
    rg_check_t *ck = self->check;
    raft_wire_check_t c = { .group = self->cfg.shard, .kind = RAFT_CHECK_FETCH,
                            .index = ck->rb_index, .offset = ck->rb_offset,
                            .min_index = s_rb_min_index (self) };
    s_send (self, ck->rb_leader, &c);
    ck->rb_sent_at = zclock_mono ();
}

static void
s_rb_start (raft_group_t *self, const char *leader, uint64_t at)
{
    rg_check_t *ck = self->check;
    if (ck->rb != RB_IDLE || at <= ck->rebuilt_at)
        return;                 /* busy, or about a state since replaced */
    snprintf (ck->rb_leader, sizeof ck->rb_leader, "%s", leader);
    ck->rb = RB_FETCH;
    ck->rb_diverged_at = at;
    ck->rb_started_at = zclock_mono ();
    ck->rb_index = ck->rb_offset = ck->rb_total = 0;
    self->snap_hold = true;
    snprintf (ck->state, sizeof ck->state, "rebuilding (diverged at %" PRIu64
              ")", at);
    titan_log_warning ("consistency: shard %u: leader %s found this replica "
                       "diverged at index %" PRIu64 "; rebuilding it from the "
                       "leader's snapshot", self->cfg.shard, leader, at);
    s_rb_fetch (self);
}

static void
s_rb_piece (raft_group_t *self, const raft_wire_check_t *c)
{
    rg_check_t *ck = self->check;
    if (ck->rb != RB_FETCH || !ck->rb_sent_at)
        return;
    ck->rb_sent_at = 0;
    if (c->status != 0) {
        ck->rb_retry_at = zclock_mono () + FETCH_RETRY_MS;
        return;
    }
    if (c->index != ck->rb_index || c->offset != ck->rb_offset) {
        if (c->offset != 0)
            return;                     /* stale: asked again on timeout */
        /* a (new) snapshot from its start */
        raft_snapshot_writer_abort (&ck->rb_writer);
        raft_config_t cfg;
        if (c->index < s_rb_min_index (self)
        ||  raft_storage_conf_decode (c->conf, c->conf_size, &cfg)) {
            ck->rb_index = ck->rb_offset = 0;
            ck->rb_retry_at = zclock_mono () + FETCH_RETRY_MS;
            return;
        }
        int rc = raft_snapshot_store_begin (self->snaps, c->index, c->term,
                                            c->conf, (uint32_t) c->conf_size,
                                            &ck->rb_writer);
        if (rc) {
            titan_log_error ("consistency: shard %u: storing the leader's "
                             "snapshot %" PRIu64 ": %s", self->cfg.shard,
                             c->index, titan_strerror (rc));
            ck->rb_index = ck->rb_offset = 0;
            ck->rb_retry_at = zclock_mono () + FETCH_RETRY_MS;
            return;
        }
        ck->rb_index = c->index;
        ck->rb_term = c->term;
        ck->rb_cfg = cfg;
        ck->rb_total = c->total;
        ck->rb_offset = 0;
    }
    if (c->total != ck->rb_total)
        return;
    int rc = c->size ? raft_snapshot_writer_write (ck->rb_writer, c->data,
                                                   c->size) : 0;
    if (rc) {
        raft_snapshot_writer_abort (&ck->rb_writer);
        ck->rb_index = ck->rb_offset = 0;
        ck->rb_retry_at = zclock_mono () + FETCH_RETRY_MS;
        return;
    }
    ck->rb_offset += c->size;
    if (ck->rb_offset < ck->rb_total) {
        if (c->size == 0) {             /* no progress: start over */
            raft_snapshot_writer_abort (&ck->rb_writer);
            ck->rb_index = ck->rb_offset = 0;
            ck->rb_retry_at = zclock_mono () + FETCH_RETRY_MS;
            return;
        }
        s_rb_fetch (self);
        return;
    }
    rc = raft_snapshot_writer_commit (&ck->rb_writer);
    if (rc) {
        titan_log_error ("consistency: shard %u: writing the leader's snapshot "
                         "%" PRIu64 ": %s", self->cfg.shard, ck->rb_index,
                         raft_snapshot_store_errmsg (self->snaps));
        ck->rb_index = ck->rb_offset = 0;
        ck->rb_retry_at = zclock_mono () + FETCH_RETRY_MS;
        return;
    }
    titan_log_info ("consistency: shard %u: leader's snapshot at %" PRIu64
                    " (%" PRIu64 " bytes) stored; installing it once %" PRIu64
                    " is applied", self->cfg.shard, ck->rb_index, ck->rb_total,
                    ck->rb_index);
    ck->rb = RB_WAIT;
}

/*  The snapshot is stored: once the group has applied its index, put the
    entries after it back in the queue and install it.  */
static void
s_rb_install (raft_group_t *self)
{
    rg_check_t *ck = self->check;
    if (self->busy || self->installing || self->snap_state != SNAP_IDLE
    ||  self->applied < ck->rb_index)
        return;
    if (ck->rb_index < s_rb_min_index (self)) {
        /* a snapshot of ours that was being taken when the rebuild began
           is newer: fetch a newer one of the leader's */
        ck->rb = RB_FETCH;
        ck->rb_index = ck->rb_offset = ck->rb_total = 0;
        ck->rb_started_at = zclock_mono ();
        s_rb_fetch (self);
        return;
    }
    int rc = rg_queue_prepend_log (self, ck->rb_index + 1, self->applied + 1);
    if (rc) {
        rg_fail (self, rc, "reading the log to apply again after a rebuild");
        return;
    }
    /* it is (or, at the same index and term, replaced) our latest */
    raft_snapshot_meta_t mine = { ck->rb_index, ck->rb_term, ck->rb_cfg };
    raft_storage_adapter_set_snapshot (self->adapter, &mine);
    raft_snapshot_store_remove_older (self->snaps, ck->rb_index);
    titan_log_info ("consistency: shard %u: installing the leader's snapshot "
                    "at %" PRIu64 ", then applying %" PRIu64 " entries again",
                    self->cfg.shard, ck->rb_index, self->applied - ck->rb_index);
    ck->rb_replaced_upto = self->applied;
    rg_snapshot_install_stored (self, ck->rb_index);
    ck->n = 0;                          /* our old points are void */
    ck->rb = RB_INSTALL;
}

static void
s_rb_work (raft_group_t *self)
{
    rg_check_t *ck = self->check;
    int64_t now = zclock_mono ();
    switch (ck->rb) {
        case RB_IDLE:
            return;
        case RB_FETCH:
            if (now - ck->rb_started_at > REBUILD_MAX_MS) {
                titan_log_error ("consistency: shard %u: no snapshot from %s "
                                 "in %d s; giving up this rebuild (the next "
                                 "check starts another)", self->cfg.shard,
                                 ck->rb_leader, REBUILD_MAX_MS / 1000);
                snprintf (ck->state, sizeof ck->state, "diverged at %" PRIu64,
                          ck->rb_diverged_at);
                s_rb_reset (self);
                return;
            }
            if (ck->rb_sent_at ? now - ck->rb_sent_at >= FETCH_TIMEOUT_MS
                               : now >= ck->rb_retry_at)
                s_rb_fetch (self);
            return;
        case RB_WAIT:
            s_rb_install (self);
            return;
        case RB_INSTALL:
            if (self->installing)
                return;
            ck->rebuilds++;
            /* every point up to the applied index of the replaced state
               may have been reported before the install: an order about
               one of them is about the replaced state (the leader compares
               the last report it has, which may predate the rebuild) */
            ck->rebuilt_at = ck->rb_replaced_upto > ck->rb_index
                           ? ck->rb_replaced_upto : ck->rb_index;
            titan_log_warning ("consistency: shard %u: replica rebuilt from the "
                               "leader's snapshot at %" PRIu64 " (it diverged "
                               "at %" PRIu64 ")", self->cfg.shard, ck->rb_index,
                               ck->rb_diverged_at);
            snprintf (ck->state, sizeof ck->state, "ok (rebuilt at %" PRIu64 ")",
                      ck->rb_index);
            s_rb_reset (self);
            return;
    }
}

/*  Leader: serves a piece of its latest snapshot.  */
static void
s_serve_fetch (raft_group_t *self, const char *from, const raft_wire_check_t *q)
{
    raft_wire_check_t c = { .group = self->cfg.shard, .kind = RAFT_CHECK_PIECE };
    const raft_storage_t *st = raft_storage_adapter_iface (self->adapter);
    raft_snapshot_meta_t meta;
    st->snapshot_meta (st->ud, &meta);
    if (meta.index == 0 || meta.index < q->min_index) {
        self->snap_wanted = true;       /* none usable: take one */
        c.status = 1;
        s_send (self, from, &c);
        return;
    }
    uint64_t offset = q->index == meta.index ? q->offset : 0;
    size_t cap = self->cfg.snapshot_chunk_bytes;
    uint8_t *buf = malloc (cap ? cap : 1);
    if (!buf)
        return;
    size_t n = 0;
    uint64_t total = 0;
    int rc = st->snapshot_read (st->ud, meta.index, offset, buf, cap, &n,
                                &total);
    if (rc) {
        c.status = 1;
        s_send (self, from, &c);
        free (buf);
        return;
    }
    c.index = meta.index;
    c.term = meta.term;
    c.conf_size = raft_storage_conf_encode (&meta.config, c.conf);
    c.offset = offset;
    c.total = total;
    c.size = n;
    c.data = buf;
    s_send (self, from, &c);
    free (buf);
}

void
raft_group_on_check (raft_group_t *self, const char *from,
                     const raft_wire_check_t *c)
{
    if (self->failed || !self->check || c->group != self->cfg.shard)
        return;
    uint64_t from_id = raft_members_id (from);
    const raft_config_t *cfg = raft_config (self->core);
    if (!raft_config_is_voter (cfg, from_id)
    &&  !raft_config_is_learner (cfg, from_id))
        return;                         /* only members take part */
    bool leader = raft_role (self->core) == RAFT_LEADER;
    bool from_leader = raft_leader (self->core) == from_id;
    switch (c->kind) {
        case RAFT_CHECK_DIGEST:
            if (from_leader && !leader)
                s_self_compare (self, c);
            else
            if (leader) {
                s_peer_t *p = s_peer (self->check, from_id, true);
                if (p) {
                    p->n = c->n_points;
                    memcpy (p->idx, c->indexes, sizeof p->idx);
                    memcpy (p->dig, c->digests, sizeof p->dig);
                    s_compare (self, p);
                }
                /* our points back, so that the follower sees it agrees */
                raft_wire_check_t mine = { .group = self->cfg.shard,
                                           .kind = RAFT_CHECK_DIGEST,
                                           .n_points = self->check->n };
                memcpy (mine.indexes, self->check->idx, sizeof mine.indexes);
                memcpy (mine.digests, self->check->dig, sizeof mine.digests);
                if (mine.n_points)
                    s_send (self, from, &mine);
            }
            break;
        case RAFT_CHECK_REBUILD:
            if (from_leader && !leader)
                s_rb_start (self, from, c->index);
            break;
        case RAFT_CHECK_FETCH:
            if (leader)
                s_serve_fetch (self, from, c);
            break;
        case RAFT_CHECK_PIECE:
            if (strcmp (from, self->check->rb_leader) == 0)
                s_rb_piece (self, c);
            break;
    }
}

/* ------------------------------------------------------------ polling */

static void
s_poll (raft_group_t *self)
{
    rg_check_t *ck = self->check;
    Titan__Bus__KvStatsRequest q = TITAN__BUS__KV_STATS_REQUEST__INIT;
    q.shard = self->cfg.shard;
    uint8_t buf [16];
    size_t size = titan__bus__kv_stats_request__pack (&q, buf);
    ck->poll_sent_at = zclock_mono ();
    if (titan_bus_request (self->cfg.bus, self->storage_module,
                           TITAN_T_KV_STATS, buf, size, &ck->poll_corr))
        ck->poll_corr = 0;
}

/*  Follower: sends our points to the leader when there is a new one.  */
static void
s_report (raft_group_t *self)
{
    rg_check_t *ck = self->check;
    uint64_t leader = raft_leader (self->core);
    if (!ck->n || !leader || leader == self->id)
        return;
    int64_t now = zclock_mono ();
    if (ck->idx [ck->n - 1] == ck->reported
    &&  now - ck->reported_at < CHECK_REPORT_MS)
        return;
    raft_wire_check_t c = { .group = self->cfg.shard, .kind = RAFT_CHECK_DIGEST,
                            .n_points = ck->n };
    memcpy (c.indexes, ck->idx, sizeof c.indexes);
    memcpy (c.digests, ck->dig, sizeof c.digests);
    s_send (self, s_node_of (self, leader), &c);
    ck->reported = ck->idx [ck->n - 1];
    ck->reported_at = now;
}

bool
rg_check_on_reply (raft_group_t *self, titan_envelope_t **env_p)
{
    rg_check_t *ck = self->check;
    titan_envelope_t *env = *env_p;
    if (!ck || !ck->poll_corr || env->corr != ck->poll_corr
    ||  !streq (env->type, TITAN_T_KV_STATS))
        return false;
    ck->poll_corr = 0;
    Titan__Bus__KvStatsReply *r = titan__bus__kv_stats_reply__unpack (NULL,
        titan_envelope_size (env), titan_envelope_data (env));
    titan_envelope_destroy (env_p);
    if (!r)
        return true;
    /* points taken while a rebuild is being installed describe no state
       the others had */
    if (r->code == TITAN__BUS__CODE__OK && ck->rb != RB_INSTALL
    &&  !self->installing && r->n_digest_indexes == r->n_digest_values) {
        size_t n = r->n_digest_indexes;
        size_t skip = n > RAFT_CHECK_MAX_POINTS ? n - RAFT_CHECK_MAX_POINTS : 0;
        ck->n = n - skip;
        for (size_t i = 0; i < ck->n; i++) {
            ck->idx [i] = r->digest_indexes [skip + i];
            ck->dig [i] = r->digest_values [skip + i];
        }
        if (raft_role (self->core) == RAFT_LEADER)
            for (size_t i = 0; i < ck->n_peers; i++)
                s_compare (self, &ck->peers [i]);
        else
            s_report (self);
    }
    titan__bus__kv_stats_reply__free_unpacked (r, NULL);
    return true;
}

void
rg_check_work (raft_group_t *self)
{
    rg_check_t *ck = self->check;
    if (!ck || self->failed)
        return;
    bool leading = raft_role (self->core) == RAFT_LEADER;
    if (!leading)
        ck->n_peers = 0;                /* reports are for a leader */
    if (leading != ck->leading && ck->rb == RB_IDLE) {
        /* what we compared in the other role says nothing of this one */
        ck->checked_index = ck->checked_digest = 0;
        snprintf (ck->state, sizeof ck->state, "unchecked");
    }
    ck->leading = leading;
    int64_t now = zclock_mono ();
    if (ck->poll_corr && now - ck->poll_sent_at >= 10 * CHECK_POLL_MS)
        ck->poll_corr = 0;              /* lost: ask again */
    if (!ck->poll_corr && now >= ck->poll_at) {
        ck->poll_at = now + CHECK_POLL_MS;
        s_poll (self);
    }
    const char *leader = s_node_of (self, raft_leader (self->core));
    if (ck->rb == RB_FETCH && (!leader || strcmp (ck->rb_leader, leader))) {
        /* the leader changed before we had its snapshot: the new one's
           check will tell us again if we still differ */
        snprintf (ck->state, sizeof ck->state, "diverged at %" PRIu64,
                  ck->rb_diverged_at);
        s_rb_reset (self);
    }
    s_rb_work (self);
}

void
raft_group_check_status (raft_group_t *self, Titan__Bus__RaftGroupStatus *st)
{
    rg_check_t *ck = self->check;
    if (!ck)
        return;
    if (raft_role (self->core) == RAFT_LEADER && ck->rb == RB_IDLE) {
        bool any = false;
        for (size_t i = 0; i < ck->n_peers; i++)
            any |= ck->peers [i].diverged;
        if (any)
            snprintf (ck->state, sizeof ck->state, "replica diverged");
        else
        if (raft_config (self->core)->n_voters
            + raft_config (self->core)->n_learners == 1)
            snprintf (ck->state, sizeof ck->state, "single replica");
        else
        if (ck->checked_index && ck->self_diverged_term != raft_term (self->core))
            snprintf (ck->state, sizeof ck->state, "ok");
    }
    st->consistency = ck->state;
    st->divergences_detected = ck->detected;
    st->rebuilds = ck->rebuilds;
    st->digest_index = ck->n ? ck->idx [ck->n - 1] : 0;
    st->digest = ck->n ? ck->dig [ck->n - 1] : 0;
}
