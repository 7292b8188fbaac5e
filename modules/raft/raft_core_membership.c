/*  Single-server membership changes (Raft dissertation, section 4).

    A change is a RAFT_ENTRY_CONF entry of 9 bytes (operation, node id
    little-endian).  Every member uses a configuration as soon as the entry
    is in its log, committed or not (raft_core_log.c keeps the history so a
    truncation rolls it back).  The leader accepts a new change only when
    the previous one is committed and it has committed an entry of its own
    term (the fix to the single-server algorithm described on raft-dev in
    2015), so at most one change is ever uncommitted.  A leader that
    removed itself keeps leading until the change commits, counting only
    the remaining voters, then steps down.
*/
#include <assert.h>
#include <string.h>
#include "raft_core_impl.h"

static bool
s_in (const uint64_t *ids, uint32_t n, uint64_t id)
{
    for (uint32_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

static void
s_remove (uint64_t *ids, uint32_t *n, uint64_t id)
{
    for (uint32_t i = 0; i < *n; i++)
        if (ids[i] == id) {
            ids[i] = ids[--*n];
            return;
        }
}

bool
raft_config_is_voter (const raft_config_t *cfg, uint64_t node)
{
    return s_in (cfg->voters, cfg->n_voters, node);
}

bool
raft_config_is_learner (const raft_config_t *cfg, uint64_t node)
{
    return s_in (cfg->learners, cfg->n_learners, node);
}

bool
raft_config_same (const raft_config_t *a, const raft_config_t *b)
{
    if (a->n_voters != b->n_voters || a->n_learners != b->n_learners)
        return false;
    for (uint32_t i = 0; i < a->n_voters; i++)
        if (!raft_config_is_voter (b, a->voters[i]))
            return false;
    for (uint32_t i = 0; i < a->n_learners; i++)
        if (!raft_config_is_learner (b, a->learners[i]))
            return false;
    return true;
}

void
raft_conf_encode (raft_conf_op_t op, uint64_t node, uint8_t out[9])
{
    out[0] = (uint8_t) op;
    for (int i = 0; i < 8; i++)
        out[1 + i] = (uint8_t) (node >> (8 * i));
}

int
raft_conf_decode (const uint8_t *data, uint32_t size, raft_conf_op_t *op,
                  uint64_t *node)
{
    if (size != 9 || !data || data[0] < RAFT_CONF_ADD_LEARNER
        || data[0] > RAFT_CONF_BOOTSTRAP_VOTER)
        return -EINVAL;
    *op = (raft_conf_op_t) data[0];
    *node = 0;
    for (int i = 0; i < 8; i++)
        *node |= (uint64_t) data[1 + i] << (8 * i);
    return *node ? 0 : -EINVAL;
}

int
raft_config_apply (raft_config_t *cfg, raft_conf_op_t op, uint64_t node)
{
    bool voter = raft_config_is_voter (cfg, node);
    bool learner = raft_config_is_learner (cfg, node);
    switch (op) {
    case RAFT_CONF_ADD_LEARNER:
    case RAFT_CONF_BOOTSTRAP_VOTER:
        if (node == 0 || voter || learner
            || cfg->n_voters + cfg->n_learners >= RAFT_MAX_MEMBERS)
            return -EINVAL;
        if (op == RAFT_CONF_ADD_LEARNER)
            cfg->learners[cfg->n_learners++] = node;
        else
            cfg->voters[cfg->n_voters++] = node;
        return 0;
    case RAFT_CONF_PROMOTE:
        if (!learner)
            return -EINVAL;
        s_remove (cfg->learners, &cfg->n_learners, node);
        cfg->voters[cfg->n_voters++] = node;
        return 0;
    case RAFT_CONF_REMOVE:
        if (learner) {
            s_remove (cfg->learners, &cfg->n_learners, node);
            return 0;
        }
        if (!voter || cfg->n_voters == 1)
            return -EINVAL;
        s_remove (cfg->voters, &cfg->n_voters, node);
        return 0;
    default:
        return -EINVAL;
    }
}

int
raft_propose_conf (raft_t *r, raft_conf_op_t op, uint64_t node,
                   uint64_t *index, uint64_t *term)
{
    assert (!r->in_ready);
    if (r->failed)
        return r->failed;
    if (r->role != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    if (op == RAFT_CONF_BOOTSTRAP_VOTER)
        return -EINVAL;
    if (r->transferee || rc_cfg_index (r) > r->commit
        || !rc_committed_in_term (r))
        return RAFT_EBUSY;
    raft_config_t cfg = *rc_cfg (r);
    if (raft_config_apply (&cfg, op, node) != 0)
        return -EINVAL;
    uint8_t buf[9];
    raft_conf_encode (op, node, buf);
    int rc = rc_append_local (r, r->term, RAFT_ENTRY_CONF, buf, sizeof buf);
    if (rc)
        return rc_fail (r, rc);
    if (index)
        *index = rc_last_index (r);
    if (term)
        *term = r->term;
    /* quorums change: the lease needs acknowledgements of later rounds */
    r->lease_round_min = r->read_round + 1;
    rc = rc_prs_sync (r);
    if (rc)
        return rc;
    /* removing a member may let the rest commit already */
    if (rc_maybe_commit (r)) {
        rc = rc_on_commit_advanced (r);
        if (rc || r->role != RAFT_LEADER)
            return rc;
    }
    return rc_bcast_append (r);
}

/*  Called when the commit index moves: a leader whose removal committed
    steps down.  */
int
rc_conf_committed (raft_t *r)
{
    if (r->role == RAFT_LEADER && rc_cfg_index (r) <= r->commit
        && !raft_config_is_voter (rc_cfg (r), r->opts.id))
        rc_become_follower (r, r->term, 0);
    return 0;
}
