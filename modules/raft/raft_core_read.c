/*  ReadIndex and leader lease reads: linearizable reads.

    A read request is given the leader's commit index, then confirmed by a
    round of heartbeats: each round has a number carried in the heartbeat's
    ctx and echoed back, and a request registered before round k is
    confirmed once a quorum of voters (the leader included) has echoed a
    round >= k, proving that no other leader had been elected when the
    commit index was read.  A new leader first waits until it has
    committed an entry of its own term (its no-op), because before that its
    commit index may lag the true one.  A follower forwards the request to
    the leader and gets the index back; either way the result is a
    raft_read_state_t which the caller serves once it has applied the index.
    A leader that steps down fails its pending requests (read states with
    `failed` set, locally or through a rejecting READ_INDEX_RESP) so their
    callers retry at once; requests lost with their messages are retried
    by the callers' timeouts.

    Leader lease (raft_options_t.lease_duration, Raft thesis 6.4.1): every
    heartbeat broadcast is a new round, stamped with the clock before it is
    sent.  The q-th most recent stamp among the voters' acknowledged rounds
    (the leader's own counting as now) is the last time a quorum certainly
    still followed this leader; each of those voters then refuses votes for
    election_time (rc_in_lease), so until stamp + lease_duration (shorter
    by the clock-drift bound) no other leader can exist and the commit
    index is the true one: a read is answered with it at once.  A transfer revokes the lease for the rest
    of the term (its TIMEOUT_NOW makes the transferee campaign with
    `force`, which voters in lease grant), a membership change voids the
    acknowledgements of rounds sent before it, a step-down ends it.
*/
#include <stdlib.h>
#include <assert.h>
#include <string.h>
#include "raft_core_impl.h"

int
rc_push_read_state (raft_t *r, uint64_t ctx, uint64_t index, bool failed)
{
    if (r->n_reads == r->cap_reads) {
        size_t cap = r->cap_reads ? r->cap_reads * 2 : 8;
        raft_read_state_t *grown = realloc (r->reads, cap * sizeof *grown);
        if (!grown)
            return rc_fail (r, -ENOMEM);
        r->reads = grown;
        r->cap_reads = cap;
    }
    r->reads[r->n_reads].ctx = ctx;
    r->reads[r->n_reads].index = index;
    r->reads[r->n_reads].failed = failed;
    r->n_reads++;
    return 0;
}

static int
s_deliver (raft_t *r, const pending_read_t *p)
{
    if (p->from == r->opts.id)
        return rc_push_read_state (r, p->ctx, p->index, false);
    raft_msg_t *m = rc_msg (r, p->from, RAFT_MSG_READ_INDEX_RESP);
    if (!m)
        return rc_fail (r, -ENOMEM);
    m->ctx = p->ctx;
    m->index = p->index;
    return 0;
}

bool
rc_lease_on (const raft_t *r)
{
    return r->opts.lease_duration > 0 && r->opts.check_quorum;
}

uint64_t
rc_clock (const raft_t *r)
{
    return r->opts.clock_fn (r->opts.clock_ud);
}

void
rc_lease_reset (raft_t *r)
{
    memset (r->lease_sent, 0, sizeof r->lease_sent);
    r->lease_round_min = 0;
    r->lease_revoked = false;
}

/*  Opens read round read_round + 1: stamps it with the clock (the round's
    heartbeats leave after this) and acknowledges it for the leader.  */
static void
s_open_round (raft_t *r)
{
    r->read_round++;
    if (rc_lease_on (r))
        r->lease_sent[r->read_round % RC_LEASE_ROUNDS] = rc_clock (r);
    raft_progress_t *self = rc_pr (r, r->opts.id);
    if (self)
        self->read_ack = r->read_round;
}

void
rc_heartbeat_round (raft_t *r)
{
    s_open_round (r);
    rc_read_on_ack (r);
    rc_bcast_heartbeat (r, r->read_round);
}

/*  Starts a heartbeat round for every request waiting for one.  */
static void
s_new_round (raft_t *r)
{
    bool any = false;
    for (size_t i = 0; i < r->n_reads_pending; i++)
        if (r->reads_pending[i].round == 0) {
            if (!any)
                s_open_round (r);
            any = true;
            r->reads_pending[i].round = r->read_round;
            r->reads_pending[i].index = r->commit;
        }
    if (!any)
        return;
    rc_read_on_ack (r);
    if (r->n_reads_pending)
        rc_bcast_heartbeat (r, r->read_round);
}

/*  The send time of the round `pr` last acknowledged, 0 when unknown (not
    acknowledged since the lease was reset, or forgotten); the leader's
    own acknowledgement holds for ever.  */
static uint64_t
s_ack_sent (const raft_t *r, const raft_progress_t *pr)
{
    if (pr->id == r->opts.id)
        return UINT64_MAX;
    uint64_t a = pr->read_ack;
    if (a == 0 || a < r->lease_round_min || r->read_round - a >= RC_LEASE_ROUNDS)
        return 0;
    return r->lease_sent[a % RC_LEASE_ROUNDS];
}

bool
raft_lease_valid (const raft_t *r)
{
    if (!rc_lease_on (r) || r->role != RAFT_LEADER || r->lease_revoked
        || !rc_committed_in_term (r)
        || !raft_config_is_voter (rc_cfg (r), r->opts.id))
        return false;
    uint64_t since;
    if (!rc_quorum_value (r, s_ack_sent, &since) || since == 0)
        return false;
    if (since == UINT64_MAX)
        return true;                   /* the leader alone is a quorum */
    uint64_t span = r->opts.lease_duration;
    if (r->opts.bugs & RAFT_BUG_LEASE_LONG)
        span *= 3;
    return rc_clock (r) - since < span;
}

uint64_t
raft_lease_reads (const raft_t *r)
{
    return r->lease_reads;
}

void
rc_read_on_ack (raft_t *r)
{
    const raft_config_t *cfg = rc_cfg (r);
    size_t q = rc_quorum (r);
    size_t done = 0;
    while (done < r->n_reads_pending) {
        pending_read_t *p = &r->reads_pending[done];
        if (p->round == 0)
            break;
        size_t acks = 0;
        for (size_t i = 0; i < r->n_prs; i++)
            if (raft_config_is_voter (cfg, r->prs[i].id)
                && r->prs[i].read_ack >= p->round)
                acks++;
        if (acks < q && !(r->opts.bugs & RAFT_BUG_READ_NO_QUORUM))
            break;
        if (s_deliver (r, p))
            break;
        done++;
    }
    if (done) {
        memmove (r->reads_pending, r->reads_pending + done,
                 (r->n_reads_pending - done) * sizeof *r->reads_pending);
        r->n_reads_pending -= done;
    }
}

void
rc_read_release_waiting (raft_t *r)
{
    if (r->role == RAFT_LEADER && rc_committed_in_term (r))
        s_new_round (r);
}

/*  Leadership lost: every pending request fails, so that its requester
    retries at once instead of waiting for a timeout.  */
void
rc_reads_drop (raft_t *r)
{
    for (size_t i = 0; i < r->n_reads_pending; i++) {
        const pending_read_t *p = &r->reads_pending[i];
        if (p->from == r->opts.id)
            rc_push_read_state (r, p->ctx, UINT64_MAX, true);
        else {
            raft_msg_t *m = rc_msg (r, p->from, RAFT_MSG_READ_INDEX_RESP);
            if (!m) {
                rc_fail (r, -ENOMEM);
                break;
            }
            m->ctx = p->ctx;
            m->reject = true;
        }
    }
    r->n_reads_pending = 0;
}

int
rc_read_request (raft_t *r, uint64_t ctx, uint64_t from)
{
    if (raft_lease_valid (r)) {
        pending_read_t now = { .ctx = ctx, .from = from, .index = r->commit };
        r->lease_reads++;
        return s_deliver (r, &now);
    }
    if (r->n_reads_pending == r->cap_reads_pending) {
        size_t cap = r->cap_reads_pending ? r->cap_reads_pending * 2 : 8;
        pending_read_t *grown = realloc (r->reads_pending, cap * sizeof *grown);
        if (!grown)
            return rc_fail (r, -ENOMEM);
        r->reads_pending = grown;
        r->cap_reads_pending = cap;
    }
    pending_read_t *p = &r->reads_pending[r->n_reads_pending++];
    p->ctx = ctx;
    p->from = from;
    p->index = 0;
    p->round = 0;
    rc_read_release_waiting (r);
    return r->failed;
}

int
raft_read_index (raft_t *r, uint64_t ctx)
{
    assert (!r->in_ready);
    if (r->failed)
        return r->failed;
    if (r->role == RAFT_LEADER)
        return rc_read_request (r, ctx, r->opts.id);
    if (r->leader == 0)
        return RAFT_ENOTLEADER;
    raft_msg_t *m = rc_msg (r, r->leader, RAFT_MSG_READ_INDEX);
    if (!m)
        return rc_fail (r, -ENOMEM);
    m->ctx = ctx;
    return 0;
}

int
rc_handle_read_index (raft_t *r, const raft_msg_t *m)
{
    if (r->role == RAFT_LEADER)
        return rc_read_request (r, m->ctx, m->from);
    raft_msg_t *resp = rc_msg (r, m->from, RAFT_MSG_READ_INDEX_RESP);
    if (!resp)
        return rc_fail (r, -ENOMEM);
    resp->ctx = m->ctx;
    resp->reject = true;
    return 0;
}

int
rc_handle_read_index_resp (raft_t *r, const raft_msg_t *m)
{
    return rc_push_read_state (r, m->ctx, m->reject ? UINT64_MAX : m->index,
                               m->reject);
}
