/*  The Raft core's life cycle, its Ready/Advance cycle, ticks, message
    dispatch and role changes.

    raft_step applies the rules every message obeys (group check, the term
    comparison of Raft's figure 2 plus the pre-vote and leader-lease
    exceptions) and hands the message to the file that knows its type.
    Outgoing messages accumulate in r->msgs until the caller collects them
    with raft_ready; raft_advance frees them and records what the caller has
    made durable.  A storage error is sticky: the core refuses further work.
*/
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "raft_core_impl.h"

void
raft_options_init (raft_options_t *opts)
{
    memset (opts, 0, sizeof *opts);
    opts->election_ticks = 10;
    opts->heartbeat_ticks = 1;
    opts->pre_vote = true;
    opts->check_quorum = true;
    opts->max_msg_bytes = 1u << 20;
    opts->max_inflight = 64;
    opts->snapshot_chunk_bytes = 64u << 10;
    opts->max_snapshot_bytes = 1u << 30;
    opts->max_uncommitted = 8192;
}

int
rc_fail (raft_t *r, int rc)
{
    if (rc < 0 && rc != RAFT_ECOMPACTED && rc != RAFT_EUNAVAILABLE
        && r->failed == 0)
        r->failed = rc;
    return rc;
}

size_t
rc_quorum (const raft_t *r)
{
    return rc_cfg (r)->n_voters / 2 + 1;
}

void
rc_reset_timeout (raft_t *r)
{
    r->election_elapsed = 0;
    r->heartbeat_elapsed = 0;
    r->randomized_timeout = r->opts.election_ticks
        + r->opts.rand_fn (r->opts.rand_ud, r->opts.election_ticks);
}

raft_msg_t *
rc_msg (raft_t *r, uint64_t to, raft_msg_type_t type)
{
    if (r->n_msgs == r->cap_msgs) {
        size_t cap = r->cap_msgs ? r->cap_msgs * 2 : 16;
        raft_msg_t *grown = realloc (r->msgs, cap * sizeof *grown);
        if (!grown)
            return NULL;
        r->msgs = grown;
        r->cap_msgs = cap;
    }
    raft_msg_t *m = &r->msgs[r->n_msgs++];
    memset (m, 0, sizeof *m);
    m->group = r->opts.group;
    m->from = r->opts.id;
    m->to = to;
    m->type = type;
    m->term = r->term;
    return m;
}

static void
s_free_chunks (raft_t *r)
{
    for (size_t i = 0; i < r->n_chunks; i++)
        free (r->chunks[i].data);
    r->n_chunks = 0;
}

static void
s_free_msgs (raft_t *r)
{
    for (size_t i = 0; i < r->n_msgs; i++) {
        raft_entries_free (&r->msgs[i].entries, r->msgs[i].n_entries);
        free (r->msgs[i].data);
    }
    r->n_msgs = 0;
}

void
rc_become_follower (raft_t *r, uint64_t term, uint64_t leader)
{
    if (term != r->term) {
        r->term = term;
        r->vote = 0;
    }
    if (r->role == RAFT_LEADER) {
        rc_prs_free (r);
        rc_reads_drop (r);
    }
    r->role = RAFT_FOLLOWER;
    r->leader = leader;
    r->transferee = 0;
    r->n_votes = 0;
    rc_reset_timeout (r);
}

void
rc_become_candidate (raft_t *r, bool pre)
{
    if (pre)
        r->role = RAFT_PRECANDIDATE;
    else {
        r->term++;
        r->vote = r->opts.id;
        r->role = RAFT_CANDIDATE;
    }
    r->leader = 0;
    r->n_votes = 0;
    rc_reset_timeout (r);
}

int
rc_become_leader (raft_t *r)
{
    r->role = RAFT_LEADER;
    r->leader = r->opts.id;
    r->transferee = 0;
    r->n_votes = 0;
    r->read_round = 0;
    rc_lease_reset (r);
    rc_reset_timeout (r);
    int rc = rc_prs_sync (r);
    if (rc)
        return rc;
    rc = rc_append_local (r, r->term, RAFT_ENTRY_NOOP, NULL, 0);
    if (rc)
        return rc_fail (r, rc);
    raft_progress_t *self = rc_pr (r, r->opts.id);
    if (self) {
        self->match = rc_stable_last (r);
        self->next = rc_last_index (r) + 1;
    }
    rc = rc_bcast_append (r);
    if (rc)
        return rc;
    /* a single-voter group may already commit (nothing to wait for) */
    if (rc_maybe_commit (r))
        return rc_on_commit_advanced (r);
    return 0;
}

/* ---------------------------------------------------------------------- */

static int
s_bootstrap (raft_t *r, const raft_config_t *boot)
{
    if (boot->n_learners || boot->n_voters > RAFT_MAX_MEMBERS)
        return -EINVAL;
    for (uint32_t i = 0; i < boot->n_voters; i++) {
        uint8_t buf[9];
        raft_conf_encode (RAFT_CONF_BOOTSTRAP_VOTER, boot->voters[i], buf);
        raft_entry_t e = { .term = 1, .index = i + 1, .type = RAFT_ENTRY_CONF,
                           .size = 9, .data = buf };
        int rc = rc_log_accept (r, &e, 1);
        if (rc)
            return rc;
    }
    if (r->term < 1)
        r->term = 1;
    r->commit = boot->n_voters;
    return 0;
}

static int
s_scan_config (raft_t *r)
{
    uint64_t lo = r->st->first_index (r->st->ud);
    uint64_t hi = r->st->last_index (r->st->ud) + 1;
    while (lo < hi) {
        raft_entry_t *ents = NULL;
        size_t n = 0;
        int rc = r->st->entries (r->st->ud, lo, hi, 1u << 20, &ents, &n);
        if (rc)
            return rc;
        if (n == 0)
            return TITAN_ECORRUPT;
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = rc_hist_note_entry (r, &ents[i]);
        raft_entries_free (&ents, n);
        if (rc)
            return rc;
        lo += n;
    }
    return 0;
}

int
raft_new (const raft_options_t *opts, raft_t **self_p, char *err,
          size_t err_size)
{
    *self_p = NULL;
    const raft_storage_t *st = opts->storage;
    const char *why = NULL;
    if (opts->id == 0)
        why = "node id must be nonzero";
    else if (!st || !st->first_index || !st->last_index || !st->term
             || !st->entries || !st->snapshot_meta || !st->snapshot_read)
        why = "incomplete storage interface";
    else if (!opts->rand_fn)
        why = "rand_fn is required";
    else if (opts->heartbeat_ticks == 0
             || opts->election_ticks <= opts->heartbeat_ticks)
        why = "need 0 < heartbeat_ticks < election_ticks";
    else if (opts->max_inflight == 0 || opts->snapshot_chunk_bytes == 0
             || opts->max_msg_bytes == 0)
        why = "max_inflight, snapshot_chunk_bytes, max_msg_bytes must be > 0";
    else if (opts->lease_duration
             && (!opts->clock_fn || opts->lease_duration >= opts->election_time))
        why = "a lease needs clock_fn and lease_duration < election_time";
    if (why) {
        snprintf (err, err_size, "raft group %llu: %s",
                  (unsigned long long) opts->group, why);
        return -EINVAL;
    }
    raft_t *r = calloc (1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->opts = *opts;
    r->st = st;
    r->hist = calloc (4, sizeof *r->hist);
    if (!r->hist) {
        free (r);
        return -ENOMEM;
    }
    r->cap_hist = 4;
    r->n_hist = 1;

    raft_snapshot_meta_t snap;
    memset (&snap, 0, sizeof snap);
    int rc = st->snapshot_meta (st->ud, &snap);
    if (rc) {
        snprintf (err, err_size, "raft group %llu: reading snapshot meta: error %d",
                  (unsigned long long) opts->group, rc);
        raft_destroy (&r);
        return rc;
    }
    rc_hist_reset (r, snap.index, &snap.config);
    r->term = opts->hard_state.term;
    r->vote = opts->hard_state.vote;
    r->commit = opts->hard_state.commit;
    r->prev_hs = opts->hard_state;
    rc = s_scan_config (r);
    if (rc == 0 && snap.index == 0 && st->last_index (st->ud) == 0
        && opts->bootstrap && opts->bootstrap->n_voters)
        rc = s_bootstrap (r, opts->bootstrap);
    if (rc) {
        snprintf (err, err_size, "raft group %llu: loading the log: error %d",
                  (unsigned long long) opts->group, rc);
        raft_destroy (&r);
        return rc;
    }
    uint64_t last = rc_last_index (r);
    if (r->commit < snap.index)
        r->commit = snap.index;
    r->applied = opts->applied > snap.index ? opts->applied : snap.index;
    if (r->applied > r->commit)
        r->commit = r->applied;
    if (r->commit > last) {
        snprintf (err, err_size, "raft group %llu: commit index %llu beyond "
                  "the last log index %llu", (unsigned long long) opts->group,
                  (unsigned long long) r->commit, (unsigned long long) last);
        raft_destroy (&r);
        return TITAN_ECORRUPT;
    }
    rc_hist_prune (r);
    r->role = RAFT_FOLLOWER;
    /* a restarted voter forgot which leader it heard from last: it keeps
       quiet for an election time, so that leases it granted expire */
    if (rc_lease_on (r))
        r->heard_at = rc_clock (r);
    rc_reset_timeout (r);
    /* the only voter campaigns at its first tick: no other node can lead
       or hold a vote of this configuration, so waiting out an election
       timeout (or a lease) protects nothing and only delays a fresh or
       restarted one-node group (17 of them on a one-node cluster) */
    const raft_config_t *cfg = rc_cfg (r);
    if (cfg->n_voters == 1 && cfg->voters [0] == r->opts.id)
        r->election_elapsed = r->randomized_timeout - 1;
    *self_p = r;
    return 0;
}

void
raft_destroy (raft_t **self_p)
{
    if (*self_p) {
        raft_t *r = *self_p;
        /* destroying between ready and advance is allowed: a crash */
        raft_entries_free (&r->rd_committed, r->n_rd_committed);
        rc_clear_unstable (r);
        free (r->unstable);
        if (r->pending_snap) {
            free (r->pending_snap->data);
            free (r->pending_snap);
        }
        free (r->rx_buf);
        free (r->hist);
        rc_prs_free (r);
        free (r->reads_pending);
        s_free_msgs (r);
        free (r->msgs);
        s_free_chunks (r);
        free (r->chunks);
        free (r->reads);
        free (r);
        *self_p = NULL;
    }
}

/* ---------------------------------------------------------------------- */

int
raft_tick (raft_t *r)
{
    assert (!r->in_ready);
    if (r->failed)
        return r->failed;
    if (r->role == RAFT_LEADER) {
        r->heartbeat_elapsed++;
        r->election_elapsed++;
        if (r->transferee && ++r->transfer_elapsed >= r->opts.election_ticks)
            r->transferee = 0;
        if (r->election_elapsed >= r->opts.election_ticks) {
            r->election_elapsed = 0;
            if (r->opts.check_quorum) {
                int rc = rc_check_quorum (r);
                if (rc || r->role != RAFT_LEADER)
                    return rc;
            }
        }
        if (r->heartbeat_elapsed >= r->opts.heartbeat_ticks) {
            r->heartbeat_elapsed = 0;
            rc_heartbeat_round (r);
        }
        return r->failed;
    }
    r->election_elapsed++;
    if (r->election_elapsed >= r->randomized_timeout) {
        if (!raft_config_is_voter (rc_cfg (r), r->opts.id)) {
            /* a non-voter never campaigns; its timer stays expired (not
               wrapped to 0) so that rc_in_lease stops counting a leader
               it no longer hears from and it can grant votes (it may be a
               voter in a configuration it has not received yet) */
            r->election_elapsed = r->randomized_timeout;
            return 0;
        }
        r->election_elapsed = 0;
        return rc_campaign (r, r->opts.pre_vote, false);
    }
    return 0;
}

static bool
s_from_leader (uint32_t type)
{
    return type == RAFT_MSG_APPEND || type == RAFT_MSG_HEARTBEAT
        || type == RAFT_MSG_SNAPSHOT;
}

int
raft_step (raft_t *r, const raft_msg_t *m)
{
    assert (!r->in_ready);
    if (r->failed)
        return r->failed;
    if (m->group != r->opts.group || m->from == 0 || m->to != r->opts.id
        || m->from == r->opts.id || (m->n_entries && !m->entries)
        || m->type < RAFT_MSG_PREVOTE || m->type > RAFT_MSG_READ_INDEX_RESP)
        return -EINVAL;
    if (m->term > r->term) {
        bool vote_req = m->type == RAFT_MSG_PREVOTE || m->type == RAFT_MSG_VOTE;
        if (vote_req && !m->force && rc_in_lease (r))
            return 0;          /* we hear from a live leader: ignore */
        if (m->type == RAFT_MSG_PREVOTE)
            ;                  /* a pre-vote changes no term */
        else if (m->type == RAFT_MSG_PREVOTE_RESP && !m->reject)
            ;                  /* the future term we asked about */
        else
            rc_become_follower (r, m->term,
                                s_from_leader (m->type) ? m->from : 0);
    }
    else if (m->term < r->term) {
        if (s_from_leader (m->type)
            && (r->opts.check_quorum || r->opts.pre_vote)) {
            /* tell a stale leader about the newer term so it steps down */
            raft_msg_t *resp = rc_msg (r, m->from, RAFT_MSG_APPEND_RESP);
            if (!resp)
                return rc_fail (r, -ENOMEM);
            resp->reject = true;
            resp->index = m->log_index;
        }
        else if (m->type == RAFT_MSG_PREVOTE) {
            raft_msg_t *resp = rc_msg (r, m->from, RAFT_MSG_PREVOTE_RESP);
            if (!resp)
                return rc_fail (r, -ENOMEM);
            resp->reject = true;
        }
        return 0;
    }

    switch (m->type) {
    case RAFT_MSG_PREVOTE:
    case RAFT_MSG_VOTE:
        return rc_handle_vote (r, m);
    case RAFT_MSG_PREVOTE_RESP:
    case RAFT_MSG_VOTE_RESP:
        return rc_handle_vote_resp (r, m);
    case RAFT_MSG_APPEND:
    case RAFT_MSG_HEARTBEAT:
    case RAFT_MSG_SNAPSHOT:
        if (r->role == RAFT_LEADER)
            return 0;          /* same-term leader: cannot happen */
        if (r->role != RAFT_FOLLOWER)
            rc_become_follower (r, m->term, m->from);
        r->leader = m->from;
        r->election_elapsed = 0;
        if (rc_lease_on (r))
            r->heard_at = rc_clock (r);
        if (m->type == RAFT_MSG_APPEND)
            return rc_handle_append (r, m);
        if (m->type == RAFT_MSG_HEARTBEAT)
            return rc_handle_heartbeat (r, m);
        return rc_handle_snapshot (r, m);
    case RAFT_MSG_APPEND_RESP:
        return r->role == RAFT_LEADER ? rc_handle_append_resp (r, m) : 0;
    case RAFT_MSG_HEARTBEAT_RESP:
        return r->role == RAFT_LEADER ? rc_handle_heartbeat_resp (r, m) : 0;
    case RAFT_MSG_SNAPSHOT_RESP:
        return r->role == RAFT_LEADER ? rc_handle_snapshot_resp (r, m) : 0;
    case RAFT_MSG_TIMEOUT_NOW:
        return rc_handle_timeout_now (r, m);
    case RAFT_MSG_READ_INDEX:
        return rc_handle_read_index (r, m);
    case RAFT_MSG_READ_INDEX_RESP:
        return rc_handle_read_index_resp (r, m);
    default:
        return -EINVAL;
    }
}

int
raft_propose (raft_t *r, const void *data, uint32_t size, uint64_t *index,
              uint64_t *term)
{
    assert (!r->in_ready);
    if (r->failed)
        return r->failed;
    if (r->role != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    if (r->transferee)
        return RAFT_EBUSY;
    if (r->opts.max_uncommitted
        && rc_last_index (r) - r->commit >= r->opts.max_uncommitted)
        return -ENOBUFS;
    if (size && !data)
        return -EINVAL;
    int rc = rc_append_local (r, r->term, RAFT_ENTRY_NORMAL, data, size);
    if (rc)
        return rc_fail (r, rc);
    if (index)
        *index = rc_last_index (r);
    if (term)
        *term = r->term;
    return rc_bcast_append (r);
}

/* ---------------------------------------------------------------------- */

static uint64_t
s_apply_limit (const raft_t *r)
{
    if (r->pending_snap)
        return r->applied;
    uint64_t hi = rc_stable_last (r);
    return r->commit < hi ? r->commit : hi;
}

bool
raft_has_ready (raft_t *r)
{
    if (r->failed)
        return false;
    return r->n_msgs || r->n_unstable || r->pending_snap || r->n_reads
        || r->n_chunks
        || r->prev_hs.term != r->term || r->prev_hs.vote != r->vote
        || r->prev_hs.commit != r->commit
        || s_apply_limit (r) > r->applied;
}

int
raft_ready (raft_t *r, raft_ready_t *rd)
{
    assert (!r->in_ready);
    memset (rd, 0, sizeof *rd);
    if (r->failed)
        return r->failed;
    uint64_t hi = s_apply_limit (r);
    if (hi > r->applied) {
        int rc = rc_log_slice (r, r->applied + 1, hi + 1, r->opts.max_msg_bytes,
                               &rd->committed, &rd->n_committed);
        if (rc)
            return rc_fail (r, rc);
    }
    r->in_ready = true;
    r->rd_committed = rd->committed;
    r->n_rd_committed = rd->n_committed;
    rd->snapshot = r->pending_snap;
    rd->entries = r->unstable;
    rd->n_entries = r->n_unstable;
    rd->hard_state.term = r->term;
    rd->hard_state.vote = r->vote;
    rd->hard_state.commit = r->commit;
    rd->has_hard_state = memcmp (&rd->hard_state, &r->prev_hs,
                                 sizeof rd->hard_state) != 0;
    rd->msgs = r->msgs;
    rd->n_msgs = r->n_msgs;
    rd->reads = r->reads;
    rd->n_reads = r->n_reads;
    rd->snap_chunks = r->chunks;
    rd->n_snap_chunks = r->n_chunks;
    return 0;
}

int
raft_advance (raft_t *r, raft_ready_t *rd)
{
    assert (r->in_ready);
    r->in_ready = false;
    if (rd->snapshot) {
        uint64_t idx = r->pending_snap->meta.index;
        free (r->pending_snap->data);
        free (r->pending_snap);
        r->pending_snap = NULL;
        if (r->applied < idx)
            r->applied = idx;
    }
    if (rd->n_entries) {
        /* no step can happen between ready and advance: all are durable */
        rc_clear_unstable (r);
    }
    if (rd->has_hard_state)
        r->prev_hs = rd->hard_state;
    if (r->n_rd_committed) {
        uint64_t last = r->rd_committed[r->n_rd_committed - 1].index;
        if (last > r->applied)
            r->applied = last;
    }
    raft_entries_free (&r->rd_committed, r->n_rd_committed);
    r->n_rd_committed = 0;
    rc_hist_prune (r);
    s_free_msgs (r);
    s_free_chunks (r);
    r->n_reads = 0;
    memset (rd, 0, sizeof *rd);
    if (r->failed)
        return r->failed;
    if (r->role == RAFT_LEADER) {
        raft_progress_t *self = rc_pr (r, r->opts.id);
        if (self) {
            self->match = rc_stable_last (r);
            self->recent_active = true;
        }
        if (rc_maybe_commit (r))
            return rc_on_commit_advanced (r);
    }
    return 0;
}

/* ---------------------------------------------------------------------- */

raft_role_t raft_role (const raft_t *self) { return self->role; }
uint64_t raft_id (const raft_t *self) { return self->opts.id; }
uint64_t raft_term (const raft_t *self) { return self->term; }
uint64_t raft_leader (const raft_t *self) { return self->leader; }
uint64_t raft_commit_index (const raft_t *self) { return self->commit; }
uint64_t raft_applied_index (const raft_t *self) { return self->applied; }
uint64_t raft_last_index (const raft_t *self) { return rc_last_index (self); }
const raft_config_t *raft_config (const raft_t *self) { return rc_cfg (self); }

int
raft_progress (const raft_t *self, uint64_t node, uint64_t *match)
{
    if (self->role != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    for (size_t i = 0; i < self->n_prs; i++)
        if (self->prs[i].id == node) {
            *match = self->prs[i].match;
            return 0;
        }
    return -ENOENT;
}
