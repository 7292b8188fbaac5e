/*  Log replication: per-follower progress, APPEND, commit and heartbeats.

    The leader keeps one raft_progress_t per member (itself included, so
    that quorum counting is uniform).  A follower is probed (one APPEND at a
    time, paused until answered) until an APPEND succeeds; then it is
    replicated optimistically: next advances as soon as a message is sent,
    with at most max_inflight APPENDs outstanding (pipelining).  A rejection
    carries a conflict hint (the follower's term at the rejected index and
    the first index it holds of that term, or its last index + 1 when its log
    is too short) so the leader skips a whole term per round trip (the
    "fast back-off" of the Raft paper, section 5.3).  When the entries a
    follower needs were compacted away it switches to sending the snapshot
    (raft_core_snapshot.c).  An entry is committed when a quorum of
    voters stores it and it belongs to the leader's current term (figure 8
    of the Raft paper); earlier entries are committed with it.
*/
#include <stdlib.h>
#include <string.h>
#include "raft_core_impl.h"

raft_progress_t *
rc_pr (raft_t *r, uint64_t id)
{
    for (size_t i = 0; i < r->n_prs; i++)
        if (r->prs[i].id == id)
            return &r->prs[i];
    return NULL;
}

void
rc_prs_free (raft_t *r)
{
    for (size_t i = 0; i < r->n_prs; i++)
        free (r->prs[i].inflight);
    free (r->prs);
    r->prs = NULL;
    r->n_prs = 0;
}

static bool
s_is_member (const raft_config_t *cfg, uint64_t id)
{
    return raft_config_is_voter (cfg, id) || raft_config_is_learner (cfg, id);
}

/*  Makes the progress set match the latest configuration.  */
int
rc_prs_sync (raft_t *r)
{
    const raft_config_t *cfg = rc_cfg (r);
    for (size_t i = 0; i < r->n_prs;) {
        if (!s_is_member (cfg, r->prs[i].id)) {
            free (r->prs[i].inflight);
            r->prs[i] = r->prs[--r->n_prs];
        }
        else
            i++;
    }
    uint64_t ids[2 * RAFT_MAX_MEMBERS];
    size_t n_ids = 0;
    for (uint32_t i = 0; i < cfg->n_voters; i++)
        ids[n_ids++] = cfg->voters[i];
    for (uint32_t i = 0; i < cfg->n_learners; i++)
        ids[n_ids++] = cfg->learners[i];
    for (size_t k = 0; k < n_ids; k++) {
        if (rc_pr (r, ids[k]))
            continue;
        raft_progress_t *grown = realloc (r->prs, (r->n_prs + 1) * sizeof *grown);
        if (!grown)
            return rc_fail (r, -ENOMEM);
        r->prs = grown;
        raft_progress_t *pr = &r->prs[r->n_prs];
        memset (pr, 0, sizeof *pr);
        pr->inflight = calloc (r->opts.max_inflight, sizeof *pr->inflight);
        if (!pr->inflight)
            return rc_fail (r, -ENOMEM);
        r->n_prs++;
        pr->id = ids[k];
        pr->next = rc_last_index (r) + 1;
        pr->recent_active = true;
        if (pr->id == r->opts.id)
            pr->match = rc_stable_last (r);
    }
    return 0;
}

static void
s_inflight_add (raft_t *r, raft_progress_t *pr, uint64_t last)
{
    uint32_t cap = r->opts.max_inflight;
    pr->inflight[(pr->inflight_head + pr->n_inflight) % cap] = last;
    pr->n_inflight++;
}

static void
s_inflight_free_to (raft_t *r, raft_progress_t *pr, uint64_t index)
{
    uint32_t cap = r->opts.max_inflight;
    while (pr->n_inflight && pr->inflight[pr->inflight_head] <= index) {
        pr->inflight_head = (pr->inflight_head + 1) % cap;
        pr->n_inflight--;
    }
}

void
rc_pr_become_probe (raft_progress_t *pr)
{
    pr->state = PR_PROBE;
    pr->paused = false;
    pr->n_inflight = 0;
    pr->inflight_head = 0;
    pr->next = pr->match + 1;
}

/* ---------------------------------------------------------------------- */
/* appends, leader side                                                    */

int
rc_send_append (raft_t *r, raft_progress_t *pr, bool send_empty)
{
    if (pr->id == r->opts.id)
        return 0;
    if (pr->state == PR_SNAPSHOT)
        return pr->snap_wait ? 0 : rc_send_chunk (r, pr);
    if (pr->paused
        || (pr->state == PR_REPLICATE && pr->n_inflight >= r->opts.max_inflight))
        return 0;
    uint64_t prev = pr->next - 1;
    uint64_t prev_term = 0;
    int rc = rc_term (r, prev, &prev_term);
    if (rc == RAFT_ECOMPACTED)
        return rc_start_snapshot (r, pr);
    if (rc)
        return rc_fail (r, rc);
    raft_entry_t *ents = NULL;
    size_t n = 0;
    uint64_t last = rc_last_index (r);
    if (pr->next <= last) {
        rc = rc_log_slice (r, pr->next, last + 1, r->opts.max_msg_bytes,
                           &ents, &n);
        if (rc == RAFT_ECOMPACTED)
            return rc_start_snapshot (r, pr);
        if (rc)
            return rc_fail (r, rc);
    }
    if (n == 0 && !send_empty)
        return 0;
    raft_msg_t *m = rc_msg (r, pr->id, RAFT_MSG_APPEND);
    if (!m) {
        raft_entries_free (&ents, n);
        return rc_fail (r, -ENOMEM);
    }
    m->log_index = prev;
    m->log_term = prev_term;
    m->commit = r->commit;
    pr->sent_commit = r->commit;
    m->entries = ents;
    m->n_entries = n;
    if (pr->state == PR_REPLICATE) {
        if (n) {
            pr->next = ents[n - 1].index + 1;
            s_inflight_add (r, pr, ents[n - 1].index);
        }
    }
    else
        pr->paused = true;
    return 0;
}

int
rc_bcast_append (raft_t *r)
{
    for (size_t i = 0; i < r->n_prs; i++) {
        int rc = rc_send_append (r, &r->prs[i], true);
        if (rc)
            return rc;
    }
    return 0;
}

void
rc_bcast_heartbeat (raft_t *r, uint64_t ctx)
{
    for (size_t i = 0; i < r->n_prs; i++) {
        raft_progress_t *pr = &r->prs[i];
        if (pr->id == r->opts.id)
            continue;
        raft_msg_t *m = rc_msg (r, pr->id, RAFT_MSG_HEARTBEAT);
        if (!m) {
            rc_fail (r, -ENOMEM);
            return;
        }
        m->commit = pr->match < r->commit ? pr->match : r->commit;
        m->ctx = ctx;
    }
}

static int
s_cmp_desc (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? 1 : x > y ? -1 : 0;
}

bool
rc_quorum_value (const raft_t *r, rc_pr_value_fn *value, uint64_t *out)
{
    const raft_config_t *cfg = rc_cfg (r);
    uint64_t values[RAFT_MAX_MEMBERS];
    size_t n = 0;
    for (size_t i = 0; i < r->n_prs; i++)
        if (raft_config_is_voter (cfg, r->prs[i].id))
            values[n++] = value (r, &r->prs[i]);
    size_t q = rc_quorum (r);
    if (n < q)
        return false;
    qsort (values, n, sizeof values[0], s_cmp_desc);
    *out = values[q - 1];
    return true;
}

static uint64_t
s_match (const raft_t *r, const raft_progress_t *pr)
{
    (void) r;
    return pr->match;
}

bool
rc_maybe_commit (raft_t *r)
{
    uint64_t idx;
    if (!rc_quorum_value (r, s_match, &idx) || idx <= r->commit)
        return false;
    uint64_t t = 0;
    if (rc_term (r, idx, &t) != 0)
        return false;
    if (t != r->term && !(r->opts.bugs & RAFT_BUG_COMMIT_OLD_TERM))
        return false;          /* figure 8: count only current-term entries */
    r->commit = idx;
    return true;
}

bool
rc_committed_in_term (const raft_t *r)
{
    uint64_t t = 0;
    return rc_term (r, r->commit, &t) == 0 && t == r->term;
}

int
rc_on_commit_advanced (raft_t *r)
{
    int rc = rc_conf_committed (r);
    if (rc || r->role != RAFT_LEADER)
        return rc;
    rc_read_release_waiting (r);
    return rc_bcast_append (r);
}

static int
s_maybe_transfer (raft_t *r, raft_progress_t *pr)
{
    if (r->transferee == pr->id && pr->match == rc_last_index (r)) {
        if (!rc_msg (r, pr->id, RAFT_MSG_TIMEOUT_NOW))
            return rc_fail (r, -ENOMEM);
    }
    return 0;
}

/*  Where to probe next after a rejection with a conflict hint.  */
static uint64_t
s_backoff (raft_t *r, const raft_msg_t *m)
{
    uint64_t next = m->hint_index;
    if (m->hint_term) {
        uint64_t j = m->index < rc_last_index (r) ? m->index : rc_last_index (r);
        uint64_t t = 0;
        while (j > 0) {
            int rc = rc_term (r, j, &t);
            if (rc || t <= m->hint_term)
                break;
            j--;
        }
        if (j > 0 && rc_term (r, j, &t) == 0 && t == m->hint_term)
            next = j + 1;
    }
    return next;
}

int
rc_handle_append_resp (raft_t *r, const raft_msg_t *m)
{
    raft_progress_t *pr = rc_pr (r, m->from);
    if (!pr)
        return 0;
    pr->recent_active = true;
    if (m->reject) {
        if (pr->state == PR_SNAPSHOT)
            return 0;
        if (pr->state == PR_REPLICATE) {
            if (m->index <= pr->match)
                return 0;      /* stale */
        }
        else if (m->index != pr->next - 1)
            return 0;          /* stale */
        uint64_t next = s_backoff (r, m);
        if (next > m->index)
            next = m->index;
        rc_pr_become_probe (pr);
        if (next < pr->match + 1)
            next = pr->match + 1;
        if (next < 1)
            next = 1;
        pr->next = next;
        return rc_send_append (r, pr, true);
    }
    bool updated = false;
    if (m->index > pr->match) {
        pr->match = m->index;
        updated = true;
    }
    if (pr->next <= pr->match)
        pr->next = pr->match + 1;
    if (pr->state == PR_SNAPSHOT) {
        if (pr->match >= pr->snap_index)
            rc_pr_become_probe (pr);
        else
            return 0;
    }
    if (pr->state == PR_PROBE) {
        if (updated || m->index + 1 == pr->next) {
            rc_pr_become_probe (pr);
            pr->state = PR_REPLICATE;
        }
        pr->paused = false;
    }
    else
        s_inflight_free_to (r, pr, pr->match);
    int rc = s_maybe_transfer (r, pr);
    if (rc)
        return rc;
    if (updated && rc_maybe_commit (r)) {
        rc = rc_on_commit_advanced (r);
        if (rc || r->role != RAFT_LEADER)
            return rc;
    }
    /* keep the pipe full */
    size_t before = r->n_msgs;
    while (pr->next <= rc_last_index (r) && pr->state != PR_SNAPSHOT) {
        size_t sent = r->n_msgs;
        rc = rc_send_append (r, pr, false);
        if (rc || r->n_msgs == sent || pr->state != PR_REPLICATE)
            break;
    }
    /* a commit index the follower has not heard of yet (the broadcast
       found its window full) goes in an empty append rather than waiting
       for the next heartbeat */
    if (rc == 0 && r->n_msgs == before && pr->state == PR_REPLICATE
        && pr->sent_commit < r->commit)
        rc = rc_send_append (r, pr, true);
    return rc;
}

int
rc_handle_heartbeat_resp (raft_t *r, const raft_msg_t *m)
{
    raft_progress_t *pr = rc_pr (r, m->from);
    if (!pr)
        return 0;
    pr->recent_active = true;
    if (m->ctx > pr->read_ack) {
        pr->read_ack = m->ctx;
        rc_read_on_ack (r);
    }
    if (pr->state == PR_SNAPSHOT) {
        /* the outstanding chunk is re-sent only once it looks lost */
        if (pr->snap_wait
            && ++pr->snap_heartbeats < rc_snap_resend_heartbeats (r))
            return 0;
        pr->snap_wait = false;
        return rc_send_chunk (r, pr);
    }
    pr->paused = false;
    if (pr->match < rc_last_index (r)) {
        if (pr->state == PR_REPLICATE && pr->n_inflight >= r->opts.max_inflight) {
            pr->inflight_head = (pr->inflight_head + 1) % r->opts.max_inflight;
            pr->n_inflight--;
        }
        return rc_send_append (r, pr, true);
    }
    return 0;
}

/* ---------------------------------------------------------------------- */
/* follower side                                                           */

raft_msg_t *
rc_reply (raft_t *r, const raft_msg_t *m, raft_msg_type_t type)
{
    raft_msg_t *resp = rc_msg (r, m->from, type);
    if (!resp)
        rc_fail (r, -ENOMEM);
    return resp;
}

void
rc_commit_to (raft_t *r, uint64_t index)
{
    if (index > r->commit)
        r->commit = index;
}

int
rc_handle_append (raft_t *r, const raft_msg_t *m)
{
    for (size_t i = 0; i < m->n_entries; i++)
        if (m->entries[i].index != m->log_index + 1 + i
            || (m->entries[i].size && !m->entries[i].data))
            return -EINVAL;
    raft_msg_t *resp;
    if (m->log_index < r->commit) {
        /* everything up to commit matches the leader already */
        if (!(resp = rc_reply (r, m, RAFT_MSG_APPEND_RESP)))
            return r->failed;
        resp->index = r->commit;
        return 0;
    }
    uint64_t t = 0;
    int rc = rc_term (r, m->log_index, &t);
    if (rc && rc != RAFT_EUNAVAILABLE)
        return rc_fail (r, rc);
    if ((rc == 0 && t == m->log_term)
        || (rc == 0 && (r->opts.bugs & RAFT_BUG_NO_PREV_CHECK))) {
        rc = rc_log_accept (r, m->entries, m->n_entries);
        if (rc)
            return rc_fail (r, rc);
        uint64_t last_new = m->log_index + m->n_entries;
        rc_commit_to (r, m->commit < last_new ? m->commit : last_new);
        if (!(resp = rc_reply (r, m, RAFT_MSG_APPEND_RESP)))
            return r->failed;
        resp->index = last_new;
        return 0;
    }
    /* reject with a hint */
    uint64_t hint_index, hint_term = 0;
    if (rc == RAFT_EUNAVAILABLE)
        hint_index = rc_last_index (r) + 1;
    else {
        hint_term = t;
        hint_index = m->log_index;
        uint64_t floor = r->commit + 1;
        while (hint_index > floor) {
            uint64_t pt = 0;
            if (rc_term (r, hint_index - 1, &pt) != 0 || pt != t)
                break;
            hint_index--;
        }
    }
    if (!(resp = rc_reply (r, m, RAFT_MSG_APPEND_RESP)))
        return r->failed;
    resp->reject = true;
    resp->index = m->log_index;
    resp->hint_index = hint_index;
    resp->hint_term = hint_term;
    return 0;
}

int
rc_handle_heartbeat (raft_t *r, const raft_msg_t *m)
{
    uint64_t last = rc_last_index (r);
    rc_commit_to (r, m->commit < last ? m->commit : last);
    raft_msg_t *resp = rc_reply (r, m, RAFT_MSG_HEARTBEAT_RESP);
    if (!resp)
        return r->failed;
    resp->ctx = m->ctx;
    return 0;
}
