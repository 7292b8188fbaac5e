/*  Leader election: pre-vote, vote, check-quorum and leadership transfer.

    With pre-vote a node whose election timer fires first asks the voters
    whether they would vote for it at term + 1 without changing any term;
    only with a quorum of "yes" does it start a real election.  A voter
    says no while it hears from a live leader (the lease: less than an
    election timeout since the leader's last message), so a node cut off by
    a partition cannot inflate the term and depose a healthy leader when it
    comes back.  Check-quorum is the other half: a leader that has not heard
    from a quorum during an election timeout steps down.  Leadership
    transfer ends with TIMEOUT_NOW, whose recipient campaigns at once and
    marks its vote requests `force` so that the lease does not stop them.
    With leader leases on, a voter also refuses votes for election_time
    of its clock after it last heard from the leader, and after it
    started (it may have acknowledged a lease just before it crashed):
    ticks can lag or run in a burst after a stall, the clock cannot.
*/
#include <assert.h>
#include <string.h>
#include "raft_core_impl.h"

bool
rc_in_lease (const raft_t *r)
{
    if (!r->opts.check_quorum)
        return false;
    if (r->leader != 0 && r->election_elapsed < r->opts.election_ticks)
        return true;
    /* leader leases: also for election_time since the leader was heard
       from (or since the start), whatever the ticks say */
    return rc_lease_on (r) && rc_clock (r) - r->heard_at < r->opts.election_time;
}

/*  Records a vote; returns the numbers of grants and rejections.  */
static void
s_tally (raft_t *r, uint64_t from, bool granted, size_t *yes, size_t *no)
{
    size_t i;
    for (i = 0; i < r->n_votes; i++)
        if (r->votes_for[i] == from)
            break;
    if (i == r->n_votes && r->n_votes < RAFT_MAX_MEMBERS) {
        r->votes_for[i] = from;
        r->votes_granted[i] = granted;
        r->n_votes++;
    }
    *yes = *no = 0;
    const raft_config_t *cfg = rc_cfg (r);
    for (i = 0; i < r->n_votes; i++) {
        if (!raft_config_is_voter (cfg, r->votes_for[i]))
            continue;
        if (r->votes_granted[i])
            (*yes)++;
        else
            (*no)++;
    }
}

static int
s_won (raft_t *r, bool pre, bool force)
{
    if (pre)
        return rc_campaign (r, false, force);
    return rc_become_leader (r);
}

int
rc_campaign (raft_t *r, bool pre, bool force)
{
    rc_become_candidate (r, pre);
    uint64_t vote_term = pre ? r->term + 1 : r->term;
    size_t yes, no;
    s_tally (r, r->opts.id, true, &yes, &no);
    if (yes >= rc_quorum (r))
        return s_won (r, pre, force);
    const raft_config_t *cfg = rc_cfg (r);
    uint64_t last = rc_last_index (r);
    uint64_t last_term = rc_last_term (r);
    if (r->failed)
        return r->failed;
    for (uint32_t i = 0; i < cfg->n_voters; i++) {
        if (cfg->voters[i] == r->opts.id)
            continue;
        raft_msg_t *m = rc_msg (r, cfg->voters[i],
                                pre ? RAFT_MSG_PREVOTE : RAFT_MSG_VOTE);
        if (!m)
            return rc_fail (r, -ENOMEM);
        m->term = vote_term;
        m->log_index = last;
        m->log_term = last_term;
        m->force = force;
    }
    return 0;
}

int
rc_handle_vote (raft_t *r, const raft_msg_t *m)
{
    bool pre = m->type == RAFT_MSG_PREVOTE;
    bool can_vote = r->vote == m->from
        || (r->vote == 0 && r->leader == 0)
        || (pre && m->term > r->term)
        || (r->opts.bugs & RAFT_BUG_VOTE_TWICE);
    bool log_ok = (r->opts.bugs & RAFT_BUG_VOTE_ANY_LOG)
        || rc_up_to_date (r, m->log_index, m->log_term);
    if (r->failed)
        return r->failed;
    raft_msg_t *resp = rc_msg (r, m->from, pre ? RAFT_MSG_PREVOTE_RESP
                                               : RAFT_MSG_VOTE_RESP);
    if (!resp)
        return rc_fail (r, -ENOMEM);
    if (can_vote && log_ok) {
        /* a granted pre-vote answers in the term asked about */
        resp->term = m->term;
        if (!pre) {
            r->vote = m->from;
            r->election_elapsed = 0;
        }
    }
    else
        resp->reject = true;
    return 0;
}

int
rc_handle_vote_resp (raft_t *r, const raft_msg_t *m)
{
    bool pre = m->type == RAFT_MSG_PREVOTE_RESP;
    if (pre ? r->role != RAFT_PRECANDIDATE : r->role != RAFT_CANDIDATE)
        return 0;
    if (pre && !m->reject && m->term != r->term + 1)
        return 0;              /* answer to an older pre-vote */
    size_t yes, no;
    s_tally (r, m->from, !m->reject, &yes, &no);
    if (yes >= rc_quorum (r))
        return s_won (r, pre, false);
    if (no >= rc_quorum (r))
        rc_become_follower (r, r->term, 0);
    return 0;
}

int
rc_check_quorum (raft_t *r)
{
    const raft_config_t *cfg = rc_cfg (r);
    size_t active = 0;
    for (size_t i = 0; i < r->n_prs; i++) {
        raft_progress_t *pr = &r->prs[i];
        bool is_self = pr->id == r->opts.id;
        if (raft_config_is_voter (cfg, pr->id) && (is_self || pr->recent_active))
            active++;
        if (!is_self)
            pr->recent_active = false;
    }
    if (active < rc_quorum (r))
        rc_become_follower (r, r->term, 0);
    return 0;
}

int
rc_handle_timeout_now (raft_t *r, const raft_msg_t *m)
{
    (void) m;
    if (r->role == RAFT_LEADER || !raft_config_is_voter (rc_cfg (r), r->opts.id))
        return 0;
    return rc_campaign (r, false, true);
}

int
raft_transfer_leadership (raft_t *r, uint64_t target)
{
    assert (!r->in_ready);
    if (r->failed)
        return r->failed;
    if (r->role != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    if (target == r->opts.id || !raft_config_is_voter (rc_cfg (r), target))
        return -EINVAL;
    raft_progress_t *pr = rc_pr (r, target);
    if (!pr)
        return -EINVAL;
    r->transferee = target;
    r->transfer_elapsed = 0;
    /* the transferee campaigns with force: voters in lease grant it */
    if (!(r->opts.bugs & RAFT_BUG_LEASE_TRANSFER))
        r->lease_revoked = true;
    if (pr->match == rc_last_index (r)) {
        raft_msg_t *m = rc_msg (r, target, RAFT_MSG_TIMEOUT_NOW);
        if (!m)
            return rc_fail (r, -ENOMEM);
        return 0;
    }
    return rc_send_append (r, pr, false);
}
