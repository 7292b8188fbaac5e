/*  raft_group: one Raft group wired to durable storage, the peer transport
    and the storage module; see raft_group.h and docs/raft.md.  This file
    opens and closes the group, runs the core's ready loop and reports the
    status; the apply pipeline is in raft_group_apply.c, the requests in
    raft_group_requests.c.

    Ready loop, in three phases (raft_group_ready_write, _sync, _finish;
    the raft module runs each phase over all its groups, raft_groups.h).
    Write: install the ready's snapshot if it carries one (store it, reset
    the log after it; raft_group_snapshot.c then feeds it to the storage
    module), write its entries to the log and, when term or vote changed,
    the hard state, without syncing (the commit index alone is persisted
    lazily, at most once a second and at close: losing it only makes a
    restarted node learn it again); a leader whose ready carries no new
    term or vote queues its messages now, so that replication overlaps its
    own disk write.  Sync: fdatasync the log and the hard state; this is
    the durability point of a write.  Finish: queue the other messages on
    the transport (a follower's ack, a vote: only once durable), copy the
    committed entries to the apply queue, note the read states, advance
    (the core counts the leader's own entries towards the commit only
    there, after the sync).
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
#include <time.h>

#include "titan/bus_types.h"
#include "titan/status.h"

static uint32_t
s_rand (void *ud, uint32_t bound)
{
    raft_group_t *self = ud;
    /* xorshift32, seeded per group from the clock and the node id */
    uint32_t x = self->rand_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    self->rand_state = x;
    return bound ? x % bound : 0;
}

/*  The core's lease clock: CLOCK_MONOTONIC in microseconds.  */
static uint64_t
s_clock_us (void *ud)
{
    (void) ud;
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

int
rg_fail (raft_group_t *self, int rc, const char *what)
{
    if (!self->failed) {
        self->failed = rc ? rc : -EIO;
        titan_log_error ("raft %s group %u: %s: %s (%d)", self->cfg.self.node_id,
                    self->cfg.shard, what, titan_strerror (self->failed),
                    self->failed);
    }
    return self->failed;
}

/*  Scans the log once: member info entries into the address book, writes
    up to `applied` into the dedup table and configuration changes up to
    `applied` into the applied configuration.  Entries kept at or below the
    snapshot's index (compaction slack) are already in the snapshot's
    state and skipped.  */
static int
s_replay (raft_group_t *self, uint64_t applied, char *err, size_t err_size)
{
    raft_snapshot_meta_t snap;
    raft_storage_adapter_iface (self->adapter)->snapshot_meta (self->adapter,
                                                               &snap);
    uint64_t lo = raft_log_first_index (self->log);
    uint64_t hi = raft_log_last_index (self->log) + 1;
    if (lo <= snap.index)
        lo = snap.index + 1;
    while (lo < hi) {
        raft_log_entry_t *ents = NULL;
        size_t n = 0;
        int rc = raft_log_entries (self->log, lo, hi, 4u << 20, &ents, &n);
        if (rc || n == 0) {
            snprintf (err, err_size, "%s/log: reading entries from %" PRIu64
                      ": %s", self->dir, lo, rc ? raft_log_errmsg (self->log)
                                                : "no entries");
            free (ents);
            return rc ? rc : TITAN_ECORRUPT;
        }
        for (size_t i = 0; i < n; i++) {
            const raft_log_entry_t *e = &ents [i];
            if (e->type == RAFT_ENTRY_CONF && e->index <= applied)
                rg_snapshot_note_conf (self, e->type, e->data, e->size);
            if (e->type != RAFT_ENTRY_NORMAL || e->size == 0)
                continue;
            const uint8_t *payload;
            size_t psize;
            int kind = raft_wire_command_kind (e->data, e->size, &payload,
                                               &psize);
            if (kind == RAFT_CMD_MEMBER) {
                raft_wire_node_t node;
                if (raft_wire_decode_member (e->data, e->size, &node) == 0)
                    rg_note_member (self, &node, true);
            }
            else
            if (kind == RAFT_CMD_WRITE && e->index <= applied) {
                Titan__Bus__KvWrite *w = titan__bus__kv_write__unpack (NULL,
                                                               psize, payload);
                if (w && w->client_id && *w->client_id && w->op) {
                    bool stale = false;
                    if (!rg_dedup_find (self, w->client_id, w->sequence, &stale)
                    &&  !stale)
                        rg_dedup_note (self, w->client_id, w->sequence,
                                       e->index,
                                       w->op->kind != TITAN__BUS__KV_OP__KIND__CAS);
                }
                if (w)
                    titan__bus__kv_write__free_unpacked (w, NULL);
            }
        }
        lo += n;
        free (ents);
    }
    return 0;
}

int
raft_group_new (const raft_group_config_t *config, raft_group_t **self_p,
                char *err, size_t err_size)
{
    *self_p = NULL;
    raft_group_t *self = calloc (1, sizeof *self);
    if (!self)
        return -ENOMEM;
    self->cfg = *config;
    self->dir = strdup (config->dir);
    self->storage_module = strdup (config->storage_module);
    self->cfg.dir = self->dir;
    self->cfg.storage_module = self->storage_module;
    if (self->cfg.snapshot_chunk_bytes == 0)
        self->cfg.snapshot_chunk_bytes = 1u << 20;
    self->members = raft_members_new ();
    self->dedup = zhashx_new ();
    self->reads = zlistx_new ();
    self->gets = zlistx_new ();
    if (!self->dir || !self->storage_module || !self->members || !self->dedup
    ||  !self->reads || !self->gets) {
        raft_group_destroy (&self);
        return -ENOMEM;
    }
    zhashx_set_destructor (self->dedup, rg_dedup_destructor);
    self->id = raft_members_id (config->self.node_id);
    self->rand_state = (uint32_t) (self->id ^ (self->id >> 32)
                                   ^ (uint64_t) zclock_usecs ()) | 1u;

    char path [1024];
    int rc = 0;
    if (mkdir (self->dir, 0755) && errno != EEXIST) {
        rc = -errno;
        snprintf (err, err_size, "cannot create %s: %s", self->dir,
                  strerror (errno));
    }
    if (rc == 0) {
        snprintf (path, sizeof path, "%s/log", self->dir);
        raft_log_options_t lopts = { .fio = config->fio };
        rc = raft_log_open (path, &lopts, &self->log, err, err_size);
    }
    raft_hardstate_t hs = { 0, 0, 0 };
    if (rc == 0)
        rc = raft_hardstate_open (self->dir, config->fio, &self->hs, &hs, err,
                                  err_size);
    if (rc == 0) {
        snprintf (path, sizeof path, "%s/snapshots", self->dir);
        rc = raft_snapshot_store_open (path, NULL, &self->snaps, err, err_size);
    }
    if (rc == 0)
        rc = raft_storage_adapter_new (self->log, self->snaps, &self->adapter,
                                       err, err_size);
    rg_note_member (self, &config->self, false);
    if (rc == 0)
        rc = rg_snapshot_open (self, err, err_size);
    if (rc == 0 && rg_check_open (self))
        rc = -ENOMEM;
    if (rc == 0)
        rc = s_replay (self, config->applied, err, err_size);
    if (rc) {
        raft_group_destroy (&self);
        return rc;
    }
    self->saved_hs = hs;
    self->want_hs = hs;
    self->hs_saved_at = zclock_mono ();

    raft_snapshot_meta_t snap;
    raft_storage_adapter_iface (self->adapter)->snapshot_meta (self->adapter,
                                                               &snap);
    uint64_t last = raft_log_last_index (self->log);
    if (config->applied > last && config->applied > snap.index) {
        snprintf (err, err_size, "raft state lost: applied index %" PRIu64
                  " is beyond the log in %s (last %" PRIu64 "); wipe the data "
                  "directory and join again", config->applied, self->dir, last);
        raft_group_destroy (&self);
        return TITAN_ECORRUPT;
    }
    raft_options_t opts;
    raft_options_init (&opts);
    opts.id = self->id;
    opts.group = config->shard;
    opts.storage = raft_storage_adapter_iface (self->adapter);
    opts.hard_state.term = hs.term;
    opts.hard_state.vote = hs.vote;
    opts.hard_state.commit = hs.commit;
    opts.applied = config->applied;
    opts.election_ticks = config->election_ticks;
    opts.heartbeat_ticks = config->heartbeat_ticks;
    opts.rand_fn = s_rand;
    opts.rand_ud = self;
    opts.lease_duration = config->lease_us;
    opts.election_time = config->election_us;
    opts.clock_fn = s_clock_us;
    opts.snapshot_chunk_bytes = self->cfg.snapshot_chunk_bytes;
    opts.snapshot_stream = true;   /* chunks go to disk, not to memory */
    raft_config_t boot;
    memset (&boot, 0, sizeof boot);
    bool fresh = raft_log_last_index (self->log) == 0 && hs.term == 0;
    if (config->bootstrap && fresh) {
        boot.n_voters = 1;
        boot.voters [0] = self->id;
        opts.bootstrap = &boot;
    }
    rc = raft_new (&opts, &self->core, err, err_size);
    if (rc) {
        raft_group_destroy (&self);
        return rc;
    }
    raft_storage_adapter_expose_slack (self->adapter, true);
    self->applied = config->applied;
    if (!self->installing && self->applied < snap.index)
        self->applied = snap.index;    /* only non-writes in between */
    self->last_role = raft_role (self->core);
    *self_p = self;
    return 0;
}

void
rg_entry_free (rg_entry_t *e)
{
    free (e->data);
    free (e->client_id);
    memset (e, 0, sizeof *e);
}

void
raft_group_destroy (raft_group_t **self_p)
{
    if (!*self_p)
        return;
    raft_group_t *self = *self_p;
    if (self->hs && !self->failed && self->hs_dirty)
        raft_hardstate_save (self->hs, &self->want_hs);
    for (size_t i = 0; i < self->n_waiters; i++)
        if (self->waiters [i].kind == W_PROPOSE)
            rg_refuse_kv (self, &self->waiters [i].env,
                          TITAN__BUS__CODE__UNAVAILABLE,
                          "raft: shutting down; outcome unknown");
        else
            rg_refuse_member (self, &self->waiters [i].env,
                              TITAN__BUS__CODE__UNAVAILABLE,
                              "raft: shutting down; outcome unknown");
    free (self->waiters);
    rg_forwards_close (self);
    if (self->reads) {
        for (rg_read_t *r = zlistx_first (self->reads); r;
             r = zlistx_next (self->reads)) {
            rg_refuse_kv (self, &r->env, TITAN__BUS__CODE__UNAVAILABLE,
                          "raft: shutting down");
            free (r);
        }
        zlistx_destroy (&self->reads);
    }
    if (self->gets) {
        for (rg_get_t *g = zlistx_first (self->gets); g;
             g = zlistx_next (self->gets)) {
            rg_refuse_kv (self, &g->env, TITAN__BUS__CODE__UNAVAILABLE,
                          "raft: shutting down");
            free (g);
        }
        zlistx_destroy (&self->gets);
    }
    for (size_t i = 0; i < self->n_adds; i++)
        if (self->adds [i].env)
            rg_refuse_member (self, &self->adds [i].env,
                              TITAN__BUS__CODE__UNAVAILABLE,
                              "raft: shutting down");
    for (size_t i = 0; i < self->q_count; i++)
        rg_entry_free (&self->queue [(self->q_head + i) % self->q_cap]);
    free (self->queue);
    free (self->batch_buf);
    free (self->split);
    rg_snapshot_close (self);
    rg_check_close (self);
    raft_destroy (&self->core);
    raft_storage_adapter_destroy (&self->adapter);
    raft_snapshot_store_destroy (&self->snaps);
    raft_hardstate_destroy (&self->hs);
    raft_log_destroy (&self->log);
    raft_members_destroy (&self->members);
    zhashx_destroy (&self->dedup);
    free (self->dir);
    free (self->storage_module);
    free (self);
    *self_p = NULL;
}

int
raft_group_tick (raft_group_t *self)
{
    if (self->failed)
        return self->failed;
    int rc = raft_tick (self->core);
    return rc ? rg_fail (self, rc, "tick") : 0;
}

int
raft_group_step (raft_group_t *self, const raft_msg_t *msg)
{
    if (self->failed)
        return self->failed;
    if (msg->group != self->cfg.shard || msg->to != self->id)
        return 0;
    int rc = raft_step (self->core, msg);
    if (rc == -EINVAL)
        return 0;                   /* malformed for the core: dropped */
    return rc ? rg_fail (self, rc, "step") : 0;
}

void
raft_group_learn_peer (raft_group_t *self, const raft_wire_node_t *peer)
{
    rg_note_member (self, peer, false);
}

/*  Writes the ready's entries and (when term or vote changed, or every
    commit is to be synced) its hard state, without syncing.  */
static int
s_write (raft_group_t *self, const raft_ready_t *rd)
{
    if (rd->n_entries) {
        raft_log_entry_t *ents = calloc (rd->n_entries, sizeof *ents);
        if (!ents)
            return -ENOMEM;
        for (size_t i = 0; i < rd->n_entries; i++) {
            ents [i].index = rd->entries [i].index;
            ents [i].term = rd->entries [i].term;
            ents [i].type = (uint8_t) rd->entries [i].type;
            ents [i].data = rd->entries [i].data;
            ents [i].size = rd->entries [i].size;
        }
        int rc = raft_log_write (self->log, ents, rd->n_entries);
        free (ents);
        if (rc) {
            titan_log_error ("raft group %u: log append: %s", self->cfg.shard,
                        raft_log_errmsg (self->log));
            return rc;
        }
    }
    if (rd->has_hard_state) {
        self->want_hs.term = rd->hard_state.term;
        self->want_hs.vote = rd->hard_state.vote;
        self->want_hs.commit = rd->hard_state.commit;
        if (self->want_hs.term != self->saved_hs.term
        ||  self->want_hs.vote != self->saved_hs.vote
        ||  self->cfg.sync_hardstate_commit) {
            int rc = raft_hardstate_write (self->hs, &self->want_hs);
            if (rc) {
                titan_log_error ("raft group %u: hard state: %s", self->cfg.shard,
                            raft_hardstate_errmsg (self->hs));
                return rc;
            }
            self->hs_written = true;
        }
        else
            self->hs_dirty = true;
    }
    return 0;
}

static void
s_send_msgs (raft_group_t *self, const raft_ready_t *rd)
{
    for (size_t i = 0; i < rd->n_msgs; i++) {
        const raft_msg_t *m = &rd->msgs [i];
        const raft_member_t *to = raft_members_get (self->members, m->to);
        if (!to || !self->cfg.transport || m->to == self->id)
            continue;                   /* unknown peer: Raft re-sends */
        uint8_t *buf = NULL;
        size_t size = 0;
        if (raft_wire_encode_msg (&self->cfg.self, m, &buf, &size) == 0)
            raft_transport_queue (self->cfg.transport, to->node_id, buf, size);
        free (buf);
    }
}

/*  True when the ready's messages may leave before its sync: a leader's
    (appends, heartbeats, snapshots, refusals: none promises anything
    about this node's disk, Raft thesis 10.2.1) when the ready persists no
    new term or vote.  A follower's ack and a vote grant wait.  */
static bool
s_may_send_early (raft_group_t *self, const raft_ready_t *rd)
{
    return raft_role (self->core) == RAFT_LEADER && !rd->snapshot
        && (!rd->has_hard_state
            || (rd->hard_state.term == self->saved_hs.term
                && rd->hard_state.vote == self->saved_hs.vote));
}

bool
raft_group_ready_write (raft_group_t *self)
{
    assert (!self->rd_held);
    if (self->failed || !raft_has_ready (self->core))
        return false;
    self->sync_rc = 0;
    self->rd_sent = false;
    self->hs_written = false;
    int rc = raft_ready (self->core, &self->rd);
    if (rc) {
        rg_fail (self, rc, "ready");
        return false;
    }
    self->rd_held = true;
    raft_ready_t *rd = &self->rd;
    for (size_t i = 0; i < rd->n_snap_chunks; i++)
        if (rg_snapshot_stage (self, &rd->snap_chunks [i]))
            return true;
    if (rd->snapshot && rg_snapshot_received (self, rd->snapshot))
        return true;
    rc = s_write (self, rd);
    if (rc) {
        rg_fail (self, rc, "persisting a ready");
        return true;
    }
    if (s_may_send_early (self, rd)) {
        s_send_msgs (self, rd);
        self->rd_sent = true;
    }
    return true;
}

bool
raft_group_ready_unsynced (raft_group_t *self)
{
    return self->rd_held && !self->failed
        && (raft_log_unsynced (self->log) || self->hs_written);
}

void
raft_group_ready_sync (raft_group_t *self)
{
    if (!self->rd_held || self->failed)
        return;
    int rc = raft_log_sync (self->log);
    if (rc) {
        self->sync_rc = rc;
        self->sync_what = raft_log_errmsg (self->log);
    }
    else
    if (self->hs_written && (rc = raft_hardstate_sync (self->hs))) {
        self->sync_rc = rc;
        self->sync_what = raft_hardstate_errmsg (self->hs);
    }
}

int
raft_group_ready_finish (raft_group_t *self)
{
    if (!self->rd_held)
        return self->failed;
    self->rd_held = false;
    raft_ready_t *rd = &self->rd;
    if (self->failed)
        return self->failed;       /* the core is abandoned with its ready */
    if (self->sync_rc) {
        titan_log_error ("raft group %u: %s", self->cfg.shard,
                         self->sync_what);
        return rg_fail (self, self->sync_rc, "syncing a ready");
    }
    if (self->hs_written) {
        self->saved_hs = self->want_hs;
        self->hs_dirty = false;
        self->hs_saved_at = zclock_mono ();
    }
    if (!self->rd_sent)
        s_send_msgs (self, rd);
    int rc = 0;
    for (size_t i = 0; i < rd->n_committed && rc == 0; i++)
        rc = rg_queue_push (self, &rd->committed [i]);
    if (rc)
        return rg_fail (self, rc, "queueing committed entries");
    for (size_t i = 0; i < rd->n_reads; i++)
        for (rg_read_t *r = zlistx_first (self->reads); r;
             r = zlistx_next (self->reads))
            if (r->ctx == rd->reads [i].ctx) {
                r->index = rd->reads [i].index;
                r->ready = true;
                break;
            }
    rc = raft_advance (self->core, rd);
    if (rc)
        return rg_fail (self, rc, "advance");
    return 0;
}

/*  Drains this group's readies alone: write, sync, finish each.  */
static int
s_drain_ready (raft_group_t *self)
{
    while (raft_group_ready_write (self)) {
        raft_group_ready_sync (self);
        if (raft_group_ready_finish (self))
            break;
    }
    return self->failed;
}

static const char *s_role_name (raft_role_t role);

int
raft_group_process (raft_group_t *self)
{
    if (self->failed)
        return self->failed;
    for (int round = 0; round < 4; round++) {
        if (s_drain_ready (self))
            return self->failed;
        rg_membership_duties (self);
        if (!raft_has_ready (self->core))
            break;
    }
    if (s_drain_ready (self))
        return self->failed;
    raft_role_t role = raft_role (self->core);
    if (role != self->last_role) {
        /* one line per role change: elections are what operators look for */
        titan_log_kv (role == RAFT_LEADER ? TITAN_LOG_INFO : TITAN_LOG_DEBUG,
                      role == RAFT_LEADER ? "became leader" : "role changed",
                      "shard=%u term=%" PRIu64 " role=%s was=%s",
                      self->cfg.shard, raft_term (self->core),
                      s_role_name (role), s_role_name (self->last_role));
        self->last_role = role;
    }
    if (self->busy && !self->batch_corr && zclock_mono () >= self->retry_at)
        rg_send_batch (self);
    else
    if (self->busy && self->batch_corr
    &&  zclock_mono () - self->batch_sent_at >= APPLY_RESEND_MS) {
        titan_log_warning ("raft group %u: no answer from %s to an apply batch in "
                      "%d ms; sending it again", self->cfg.shard,
                      self->storage_module, APPLY_RESEND_MS);
        rg_send_batch (self);
    }
    rg_snapshot_work (self);
    rg_check_work (self);
    if (!rg_snapshot_blocks_apply (self))
        rg_pump_apply (self);
    rg_serve_reads (self);
    rg_expire_waiters (self);
    if (self->hs_dirty && zclock_mono () - self->hs_saved_at >= HARDSTATE_LAZY_MS) {
        int rc = raft_hardstate_save (self->hs, &self->want_hs);
        if (rc)
            return rg_fail (self, rc, "saving the hard state");
        self->saved_hs = self->want_hs;
        self->hs_dirty = false;
        self->hs_saved_at = zclock_mono ();
    }
    return self->failed;
}

int
raft_group_transfer_out (raft_group_t *self, char *target, size_t target_size)
{
    if (self->failed || raft_role (self->core) != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    const raft_config_t *cfg = raft_config (self->core);
    uint64_t best = 0, best_match = 0;
    for (uint32_t i = 0; i < cfg->n_voters; i++) {
        uint64_t match = 0;
        if (cfg->voters [i] != self->id
        &&  raft_progress (self->core, cfg->voters [i], &match) == 0
        &&  (best == 0 || match > best_match)) {
            best = cfg->voters [i];
            best_match = match;
        }
    }
    if (best == 0)
        return -ENOENT;
    int rc = raft_transfer_leadership (self->core, best);
    if (rc == 0) {
        const raft_member_t *m = raft_members_get (self->members, best);
        snprintf (target, target_size, "%s", m ? m->node_id : "?");
    }
    return rc;
}

int
raft_group_balance (raft_group_t *self, const char *preferred, char *target,
                    size_t target_size)
{
    if (self->failed || raft_role (self->core) != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    const raft_config_t *cfg = raft_config (self->core);
    if (cfg->n_voters < 2)
        return -ENOENT;
    uint64_t want = 0;
    if (preferred)
        want = raft_members_id (preferred);
    else {
        /* voters in raft id order; shard s prefers the (s mod n)-th */
        uint64_t sorted [RAFT_MAX_MEMBERS];
        uint32_t n = cfg->n_voters;
        memcpy (sorted, cfg->voters, n * sizeof *sorted);
        for (uint32_t i = 1; i < n; i++)
            for (uint32_t j = i; j > 0 && sorted [j - 1] > sorted [j]; j--) {
                uint64_t t = sorted [j];
                sorted [j] = sorted [j - 1];
                sorted [j - 1] = t;
            }
        want = sorted [self->cfg.shard % n];
    }
    uint64_t match = 0;
    if (want == self->id || !raft_config_is_voter (cfg, want))
        return -EALREADY;
    if (raft_progress (self->core, want, &match) != 0
    ||  match < raft_commit_index (self->core))
        return -EAGAIN;              /* not caught up (or not answering) */
    int rc = raft_transfer_leadership (self->core, want);
    if (rc == 0) {
        const raft_member_t *m = raft_members_get (self->members, want);
        snprintf (target, target_size, "%s", m ? m->node_id : "?");
    }
    return rc;
}

bool
raft_group_is_member (raft_group_t *self)
{
    const raft_config_t *cfg = raft_config (self->core);
    return raft_config_is_voter (cfg, self->id)
        || raft_config_is_learner (cfg, self->id);
}

static const char *
s_role_name (raft_role_t role)
{
    switch (role) {
        case RAFT_LEADER:       return "leader";
        case RAFT_CANDIDATE:    return "candidate";
        case RAFT_PRECANDIDATE: return "precandidate";
        default:                return "follower";
    }
}

void
raft_group_status (raft_group_t *self, Titan__Bus__RaftGroupStatus *st)
{
    st->shard = self->cfg.shard;
    st->role = (char *) s_role_name (raft_role (self->core));
    st->term = raft_term (self->core);
    const char *lid, *laddr;
    rg_leader_hint (self, &lid, &laddr);
    st->leader_id = (char *) lid;
    st->commit_index = raft_commit_index (self->core);
    st->applied_index = self->applied;
    st->last_index = raft_last_index (self->core);
    raft_snapshot_meta_t meta;
    raft_storage_adapter_iface (self->adapter)->snapshot_meta (self->adapter,
                                                               &meta);
    st->snapshot_index = meta.index;
    st->snapshots_taken = raft_group_snapshots_taken (self);
    st->snapshots_installed = raft_group_snapshots_installed (self);
    st->forwards_sent = self->fwd_stats.sent;
    st->forwards_served = self->fwd_stats.served;
    st->forwards_dropped = self->fwd_stats.dropped;
    raft_group_check_status (self, st);
    const raft_config_t *cfg = raft_config (self->core);
    size_t n = 0;
    for (int pass = 0; pass < 2; pass++) {
        uint32_t count = pass == 0 ? cfg->n_voters : cfg->n_learners;
        const uint64_t *ids = pass == 0 ? cfg->voters : cfg->learners;
        for (uint32_t i = 0; i < count; i++, n++) {
            Titan__Bus__RaftMember *m = &self->status_members [n];
            titan__bus__raft_member__init (m);
            const raft_member_t *info = raft_members_get (self->members, ids [i]);
            m->node_id = info ? (char *) info->node_id : (char *) "?";
            m->peer_addr = info ? (char *) info->peer_addr : (char *) "";
            m->client_addr = info ? (char *) info->client_addr : (char *) "";
            m->voter = pass == 0;
            uint64_t match = 0;
            if (raft_progress (self->core, ids [i], &match) == 0)
                m->match_index = match;
            self->status_ptrs [n] = m;
        }
    }
    st->n_members = n;
    st->members = self->status_ptrs;
}

const raft_t *
raft_group_core (raft_group_t *self)
{
    return self->core;
}

uint64_t
raft_group_applied (raft_group_t *self)
{
    return self->applied;
}
