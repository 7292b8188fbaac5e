/*  Unit tests of the placement planner (modules/raft/raft_reconcile.h):
    every rule, its order, and the safety cases (never fewer voters than
    the desired ones held, the leader never removes itself, one change at
    a time, only the leader acts), plus a whole move driven to its end by
    replaying the planner's actions on a model group.
*/
#include "raft_reconcile.h"
#include "check_run.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

#define COMMIT 100
#define GAP    8

typedef raft_reconcile_member_t member_t;

static raft_reconcile_action_t
s_plan (uint64_t self, const member_t *m, size_t n, const uint64_t *desired,
        size_t nd)
{
    raft_reconcile_input_t in = {
        .self = self, .leader = true, .commit = COMMIT,
        .members = m, .n_members = n, .desired = desired, .n_desired = nd,
        .promote_gap = GAP,
    };
    return raft_reconcile_plan (&in);
}

#define ASSERT_ACTION(a, k, id) do { \
    ck_assert_msg ((a).kind == (k) && (a).node == (id), \
                   "got %s %llu, wanted %s %llu", \
                   raft_reconcile_kind_name ((a).kind), \
                   (unsigned long long) (a).node, raft_reconcile_kind_name (k), \
                   (unsigned long long) (id)); \
} while (0)

START_TEST (test_only_leader_one_change)
{
    member_t m [] = { { 1, true, COMMIT } };
    uint64_t d [] = { 1, 2, 3 };
    raft_reconcile_input_t in = {
        .self = 1, .leader = false, .commit = COMMIT, .members = m,
        .n_members = 1, .desired = d, .n_desired = 3, .promote_gap = GAP,
    };
    ASSERT_ACTION (raft_reconcile_plan (&in), RAFT_RECONCILE_NONE, 0);
    in.leader = true;
    in.change_pending = true;
    ASSERT_ACTION (raft_reconcile_plan (&in), RAFT_RECONCILE_NONE, 0);
    in.change_pending = false;
    ASSERT_ACTION (raft_reconcile_plan (&in), RAFT_RECONCILE_ADD_LEARNER, 2);
    /* no table yet: nothing */
    in.n_desired = 0;
    ASSERT_ACTION (raft_reconcile_plan (&in), RAFT_RECONCILE_NONE, 0);
}
END_TEST

START_TEST (test_add_in_rank_order)
{
    member_t m [] = { { 1, true, COMMIT }, { 3, true, COMMIT } };
    uint64_t d [] = { 4, 3, 2 };
    ASSERT_ACTION (s_plan (1, m, 2, d, 3), RAFT_RECONCILE_ADD_LEARNER, 4);
    member_t m2 [] = { { 1, true, COMMIT }, { 3, true, COMMIT },
                       { 4, false, 0 } };
    ASSERT_ACTION (s_plan (1, m2, 3, d, 3), RAFT_RECONCILE_ADD_LEARNER, 2);
}
END_TEST

START_TEST (test_promote_when_caught_up)
{
    uint64_t d [] = { 1, 2, 3 };
    member_t m [] = { { 1, true, COMMIT }, { 2, false, COMMIT - GAP - 1 },
                      { 3, false, COMMIT - GAP } };
    /* 2 lags by more than the gap, 3 is within it */
    ASSERT_ACTION (s_plan (1, m, 3, d, 3), RAFT_RECONCILE_PROMOTE, 3);
    m [2].match = 0;
    ASSERT_ACTION (s_plan (1, m, 3, d, 3), RAFT_RECONCILE_NONE, 0);
    m [1].match = COMMIT;
    ASSERT_ACTION (s_plan (1, m, 3, d, 3), RAFT_RECONCILE_PROMOTE, 2);
    /* a short log: within the gap, but a learner that never answered
       (match 0) is not promoted */
    member_t m2 [] = { { 1, true, 3 }, { 2, false, 0 } };
    uint64_t d2 [] = { 1, 2 };
    raft_reconcile_input_t in = {
        .self = 1, .leader = true, .commit = 3, .members = m2,
        .n_members = 2, .desired = d2, .n_desired = 2, .promote_gap = GAP,
    };
    ASSERT_ACTION (raft_reconcile_plan (&in), RAFT_RECONCILE_NONE, 0);
    m2 [1].match = 1;
    ASSERT_ACTION (raft_reconcile_plan (&in), RAFT_RECONCILE_PROMOTE, 2);
}
END_TEST

START_TEST (test_undesired_learner_removed_any_time)
{
    /* even while desired replicas are still missing or catching up */
    uint64_t d [] = { 1, 2, 3 };
    member_t m [] = { { 1, true, COMMIT }, { 9, false, COMMIT } };
    ASSERT_ACTION (s_plan (1, m, 2, d, 3), RAFT_RECONCILE_REMOVE, 9);
}
END_TEST

START_TEST (test_undesired_voter_waits_for_desired_voters)
{
    uint64_t d [] = { 1, 2, 3 };
    /* 2 and 3 not members yet: add, never remove 9 first */
    member_t m [] = { { 1, true, COMMIT }, { 9, true, COMMIT },
                      { 8, true, COMMIT } };
    ASSERT_ACTION (s_plan (1, m, 3, d, 3), RAFT_RECONCILE_ADD_LEARNER, 2);
    /* 2 and 3 learners that lag: nothing (no removal below the desired) */
    member_t m2 [] = { { 1, true, COMMIT }, { 9, true, COMMIT },
                       { 8, true, COMMIT }, { 2, false, 0 }, { 3, false, 0 } };
    ASSERT_ACTION (s_plan (1, m2, 5, d, 3), RAFT_RECONCILE_NONE, 0);
    /* all desired vote: the undesired voters go, one at a time */
    m2 [3].voter = true;
    m2 [4].voter = true;
    ASSERT_ACTION (s_plan (1, m2, 5, d, 3), RAFT_RECONCILE_REMOVE, 9);
    member_t m3 [] = { { 1, true, COMMIT }, { 8, true, COMMIT },
                       { 2, true, 0 }, { 3, true, 0 } };
    ASSERT_ACTION (s_plan (1, m3, 4, d, 3), RAFT_RECONCILE_REMOVE, 8);
    member_t m4 [] = { { 1, true, COMMIT }, { 2, true, 0 }, { 3, true, 0 } };
    ASSERT_ACTION (s_plan (1, m4, 3, d, 3), RAFT_RECONCILE_NONE, 0);
}
END_TEST

START_TEST (test_leader_not_desired_transfers)
{
    uint64_t d [] = { 2, 3, 4 };
    member_t m [] = { { 1, true, COMMIT }, { 2, true, COMMIT - 1 },
                      { 3, true, COMMIT }, { 4, true, COMMIT } };
    /* never removes itself: hands over to a caught-up desired voter */
    ASSERT_ACTION (s_plan (1, m, 4, d, 3), RAFT_RECONCILE_TRANSFER, 3);
    /* other undesired voters go first */
    member_t m2 [] = { { 1, true, COMMIT }, { 2, true, COMMIT },
                       { 3, true, COMMIT }, { 4, true, COMMIT },
                       { 5, true, COMMIT } };
    ASSERT_ACTION (s_plan (1, m2, 5, d, 3), RAFT_RECONCILE_REMOVE, 5);
    /* nobody caught up: wait */
    m [1].match = m [2].match = m [3].match = COMMIT - 1;
    ASSERT_ACTION (s_plan (1, m, 4, d, 3), RAFT_RECONCILE_NONE, 0);
}
END_TEST

START_TEST (test_fewer_desired_than_r)
{
    /* a one-node ring: the single desired replica is the leader */
    uint64_t d [] = { 1 };
    member_t m [] = { { 1, true, COMMIT } };
    ASSERT_ACTION (s_plan (1, m, 1, d, 1), RAFT_RECONCILE_NONE, 0);
}
END_TEST

/*  A model group replaying the planner's actions (each committed at once;
    learners catch up at once): from {1} to {3,4,5} with leader 1, the
    group must end exactly on the desired voters, never having fewer
    desired voters than before a step, and the leader moving once.  */
START_TEST (test_whole_move_converges)
{
    member_t m [16] = { { 1, true, COMMIT } };
    size_t n = 1;
    uint64_t leader = 1;
    uint64_t d [] = { 3, 4, 5 };
    int steps = 0, transfers = 0;
    for (;; steps++) {
        ck_assert_int_lt (steps, 50);
        raft_reconcile_action_t a = s_plan (leader, m, n, d, 3);
        if (a.kind == RAFT_RECONCILE_NONE)
            break;
        size_t i = 0;
        while (i < n && m [i].id != a.node)
            i++;
        switch (a.kind) {
            case RAFT_RECONCILE_ADD_LEARNER:
                ck_assert_uint_eq (i, n);
                m [n++] = (member_t) { a.node, false, COMMIT };
                break;
            case RAFT_RECONCILE_PROMOTE:
                ck_assert (i < n && !m [i].voter);
                m [i].voter = true;
                break;
            case RAFT_RECONCILE_REMOVE:
                ck_assert (i < n && a.node != leader);
                m [i] = m [--n];
                break;
            case RAFT_RECONCILE_TRANSFER:
                ck_assert (i < n && m [i].voter);
                leader = a.node;
                transfers++;
                break;
            default:
                break;
        }
        int voters = 0;
        for (size_t k = 0; k < n; k++)
            voters += m [k].voter;
        ck_assert_int_ge (voters, 1);
    }
    ck_assert_uint_eq (n, 3);
    for (size_t k = 0; k < n; k++)
        ck_assert (m [k].voter && m [k].id >= 3);
    ck_assert_int_eq (transfers, 1);
    ck_assert_uint_ne (leader, 1);
}
END_TEST

int
main (void)
{
    Suite *s = suite_create ("raft_reconcile");
    TCase *tc = tcase_create ("planner");
    tcase_add_test (tc, test_only_leader_one_change);
    tcase_add_test (tc, test_add_in_rank_order);
    tcase_add_test (tc, test_promote_when_caught_up);
    tcase_add_test (tc, test_undesired_learner_removed_any_time);
    tcase_add_test (tc, test_undesired_voter_waits_for_desired_voters);
    tcase_add_test (tc, test_leader_not_desired_transfers);
    tcase_add_test (tc, test_fewer_desired_than_r);
    tcase_add_test (tc, test_whole_move_converges);
    suite_add_tcase (s, tc);
    return titan_check_run (s, false);
}
