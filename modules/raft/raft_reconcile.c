/*  raft_reconcile: the placement planner of one group (see the header for
    the rules).  Groups have at most RAFT_MAX_MEMBERS members and R desired
    replicas, so plain linear scans are all it needs.
*/
#include "raft_reconcile.h"

static const raft_reconcile_member_t *
s_member (const raft_reconcile_input_t *in, uint64_t id)
{
    for (size_t i = 0; i < in->n_members; i++)
        if (in->members [i].id == id)
            return &in->members [i];
    return NULL;
}

static bool
s_desired (const raft_reconcile_input_t *in, uint64_t id)
{
    for (size_t i = 0; i < in->n_desired; i++)
        if (in->desired [i] == id)
            return true;
    return false;
}

static raft_reconcile_action_t
s_action (raft_reconcile_kind_t kind, uint64_t node)
{
    raft_reconcile_action_t a = { kind, node };
    return a;
}

raft_reconcile_action_t
raft_reconcile_plan (const raft_reconcile_input_t *in)
{
    if (!in->leader || in->change_pending || in->n_desired == 0)
        return s_action (RAFT_RECONCILE_NONE, 0);
    /* 2: undesired learners carry no vote: remove them at any time */
    for (size_t i = 0; i < in->n_members; i++)
        if (!in->members [i].voter && !s_desired (in, in->members [i].id))
            return s_action (RAFT_RECONCILE_REMOVE, in->members [i].id);
    /* 3: missing desired replicas join as learners, in rank order */
    for (size_t i = 0; i < in->n_desired; i++)
        if (!s_member (in, in->desired [i]))
            return s_action (RAFT_RECONCILE_ADD_LEARNER, in->desired [i]);
    /* 4: caught-up desired learners become voters */
    bool all_voters = true;
    for (size_t i = 0; i < in->n_desired; i++) {
        const raft_reconcile_member_t *m = s_member (in, in->desired [i]);
        if (m->voter)
            continue;
        all_voters = false;
        if (m->match > 0 && m->match + in->promote_gap >= in->commit)
            return s_action (RAFT_RECONCILE_PROMOTE, m->id);
    }
    if (!all_voters)
        return s_action (RAFT_RECONCILE_NONE, 0);
    /* 5: every desired replica votes: undesired voters go, the leader
       last and by handing over first */
    bool self_undesired = false;
    for (size_t i = 0; i < in->n_members; i++) {
        const raft_reconcile_member_t *m = &in->members [i];
        if (s_desired (in, m->id))
            continue;
        if (m->id == in->self)
            self_undesired = true;
        else
            return s_action (RAFT_RECONCILE_REMOVE, m->id);
    }
    if (!self_undesired)
        return s_action (RAFT_RECONCILE_NONE, 0);
    for (size_t i = 0; i < in->n_desired; i++) {
        const raft_reconcile_member_t *m = s_member (in, in->desired [i]);
        if (m->match >= in->commit)
            return s_action (RAFT_RECONCILE_TRANSFER, m->id);
    }
    return s_action (RAFT_RECONCILE_NONE, 0);
}

const char *
raft_reconcile_kind_name (raft_reconcile_kind_t kind)
{
    switch (kind) {
        case RAFT_RECONCILE_ADD_LEARNER: return "add-learner";
        case RAFT_RECONCILE_PROMOTE:     return "promote";
        case RAFT_RECONCILE_REMOVE:      return "remove";
        case RAFT_RECONCILE_TRANSFER:    return "transfer";
        default:                         return "none";
    }
}
