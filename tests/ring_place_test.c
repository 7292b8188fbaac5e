/*  Tests of shard placement (modules/ring/ring_place.c).

    The bounds asserted here are the ones ring_place.h states, checked for
    every cluster of N = 3..50 nodes with Q = 16, 64 and 256 shards and
    R = 3 (placement is deterministic, so each is an exact regression
    guard, not a sample):
      - every shard has min (R, N) distinct replicas;
      - replicas per node within [floor (QR/N) - 1, ceil (QR/N) + 1];
      - preferred leaders per node within [floor (Q/N), ceil (Q/N)];
      - a join moves on average (over N) at most 2x the ideal QR/(N+1)
        replicas, and never more than 6x in a single case;
      - a leave moves every replica of the departed node, on average at
        most 2.5x that many in all, and nothing moves off a node that
        stays unless the balance bound requires it;
      - with the bounds switched off (RING_SLACK_NONE, a plain ring) a
        leave moves exactly the departed node's replicas and a join only
        replicas that land on the newcomer.
    And: the table does not depend on the order members joined in; only
    JOINING and ACTIVE members hold replicas.
*/
#include <check.h>
#include "check_run.h"
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ring_member.h"
#include "ring_place.h"

#define R 3

static void
s_apply_add (ring_members_t *m, const char *id, ring_state_t state)
{
    ring_cmd_t cmd;
    char client [64], peer [64];
    snprintf (client, sizeof client, "%s:7000", id);
    snprintf (peer, sizeof peer, "%s:7001", id);
    ck_assert_int_eq (ring_cmd_add (&cmd, id, client, peer, NULL, 0), 0);
    ck_assert_int_eq (ring_members_apply_cmd (m, &cmd, NULL, 0), 0);
    if (state != RING_JOINING) {
        if (state == RING_REMOVED)
            ck_assert_int_eq (ring_cmd_remove (&cmd, id, NULL, 0), 0);
        else
            ck_assert_int_eq (ring_cmd_set_state (&cmd, id, state, NULL, 0), 0);
        ck_assert_int_eq (ring_members_apply_cmd (m, &cmd, NULL, 0), 0);
    }
}

//  Cluster of nodes n000..n(count-1), all ACTIVE, without node `skip`
//  (none if negative).
static ring_members_t *
s_cluster (uint32_t q, uint32_t count, int skip)
{
    ring_members_t *m = ring_members_new (q, R);
    ck_assert_ptr_nonnull (m);
    for (uint32_t i = 0; i < count; i++) {
        if ((int) i == skip)
            continue;
        char id [16];
        snprintf (id, sizeof id, "n%03u", i);
        s_apply_add (m, id, RING_ACTIVE);
    }
    return m;
}

static ring_table_t *
s_build (const ring_members_t *m, const ring_place_opts_t *opts)
{
    ring_table_t *t = NULL;
    ck_assert_int_eq (ring_table_build_opts (m, opts, &t), 0);
    ck_assert_ptr_nonnull (t);
    return t;
}

static ring_table_t *
s_table (uint32_t q, uint32_t count, int skip, const ring_place_opts_t *opts)
{
    ring_members_t *m = s_cluster (q, count, skip);
    ring_table_t *t = s_build (m, opts);
    ring_members_destroy (&m);
    return t;
}

//  Checks each shard has its full, distinct replica set; fills per-node
//  replica and leader counts (indexed like ring_table_node).
static void
s_check_loads (const ring_table_t *t, uint32_t *load, uint32_t *leaders)
{
    uint32_t n = ring_table_nodes (t);
    uint32_t width = n < R ? n : R;
    memset (load, 0, n * sizeof *load);
    memset (leaders, 0, n * sizeof *leaders);
    for (uint32_t s = 0; s < ring_table_shards (t); s++) {
        ck_assert_uint_eq (ring_table_shard_size (t, s), width);
        for (uint32_t k = 0; k < width; k++) {
            int node = ring_table_replica_index (t, s, k);
            ck_assert_int_ge (node, 0);
            ck_assert_int_lt (node, (int) n);
            for (uint32_t j = 0; j < k; j++)
                ck_assert_int_ne (ring_table_replica_index (t, s, j), node);
            load [node]++;
            if (k == 0)
                leaders [node]++;
        }
        ck_assert_int_eq (ring_table_replica_index (t, s, width), -1);
        ck_assert_ptr_null (ring_table_replica (t, s, width));
    }
}

//  Replicas held by node `id` in `t`.
static uint32_t
s_held (const ring_table_t *t, const char *id)
{
    uint32_t held = 0;
    for (uint32_t s = 0; s < ring_table_shards (t); s++)
        for (uint32_t k = 0; k < ring_table_shard_size (t, s); k++)
            held += strcmp (ring_table_replica (t, s, k), id) == 0;
    return held;
}

static const uint32_t s_qs [] = { 16, 64, 256 };

START_TEST (test_balance)
{
    uint32_t q = s_qs [_i];
    uint32_t load [64], leaders [64];
    for (uint32_t n = 3; n <= 50; n++) {
        ring_table_t *t = s_table (q, n, -1, NULL);
        ck_assert_uint_eq (ring_table_nodes (t), n);
        ck_assert_uint_eq (ring_table_shards (t), q);
        ck_assert_uint_eq (ring_table_replicas (t), R);
        s_check_loads (t, load, leaders);
        uint32_t lo = (q * R) / n, hi = (q * R + n - 1) / n;
        uint32_t llo = q / n, lhi = (q + n - 1) / n;
        for (uint32_t i = 0; i < n; i++) {
            ck_assert_msg (load [i] + 1 >= lo && load [i] <= hi + 1,
                           "Q=%u N=%u: node %u holds %u replicas, ideal %u..%u",
                           q, n, i, load [i], lo, hi);
            ck_assert_msg (leaders [i] >= llo && leaders [i] <= lhi,
                           "Q=%u N=%u: node %u leads %u shards, ideal %u..%u",
                           q, n, i, leaders [i], llo, lhi);
        }
        ring_table_destroy (&t);
        ck_assert_ptr_null (t);
    }
}
END_TEST

START_TEST (test_join_moves)
{
    uint32_t q = s_qs [_i];
    double ratio_sum = 0;
    uint32_t count = 0;
    for (uint32_t n = 3; n <= 50; n++) {
        ring_table_t *before = s_table (q, n, -1, NULL);
        ring_table_t *after = s_table (q, n + 1, -1, NULL);
        char newcomer [16];
        snprintf (newcomer, sizeof newcomer, "n%03u", n);
        uint32_t moved = ring_table_moves (before, after);
        double ideal = (double) q * R / (n + 1);
        //  At least the newcomer's share arrives, and it is all counted.
        ck_assert_uint_ge (moved, s_held (after, newcomer));
        ck_assert_uint_ge (s_held (after, newcomer) + 1, (q * R) / (n + 1));
        ck_assert_msg (moved <= 6 * ideal, "Q=%u N=%u->%u: %u moved, ideal %.1f",
                       q, n, n + 1, moved, ideal);
        ratio_sum += moved / ideal;
        count++;
        ring_table_destroy (&before);
        ring_table_destroy (&after);
    }
    ck_assert_msg (ratio_sum / count <= 2.0, "Q=%u: mean join moves %.2f x ideal",
                   q, ratio_sum / count);
}
END_TEST

START_TEST (test_leave_moves)
{
    uint32_t q = s_qs [_i];
    double ratio_sum = 0;
    uint32_t count = 0;
    for (uint32_t n = 4; n <= 50; n++) {
        ring_table_t *before = s_table (q, n, -1, NULL);
        //  Every node leaving for small clusters, a spread of them beyond.
        uint32_t step = n <= 12 ? 1 : n / 6;
        for (uint32_t i = 0; i < n; i += step) {
            ring_table_t *after = s_table (q, n, (int) i, NULL);
            const char *gone = ring_table_node (before, i);
            uint32_t held = s_held (before, gone);
            uint32_t moved = ring_table_moves (before, after);
            ck_assert_uint_eq (s_held (after, gone), 0);
            ck_assert_uint_ge (moved, held);
            ratio_sum += held ? (double) moved / held : 1.0;
            count++;
            ring_table_destroy (&after);
        }
        ring_table_destroy (&before);
    }
    ck_assert_msg (ratio_sum / count <= 2.5, "Q=%u: mean leave moves %.2f x departed",
                   q, ratio_sum / count);
}
END_TEST

START_TEST (test_plain_ring_minimal)
{
    //  Without load bounds the ring is strictly minimal: a leave moves the
    //  departed node's replicas and nothing else; a join moves only
    //  replicas onto the newcomer, at most one per shard.
    uint32_t q = s_qs [_i];
    ring_place_opts_t plain = { RING_DEFAULT_VNODES, RING_SLACK_NONE, RING_SLACK_NONE };
    for (uint32_t n = 4; n <= 24; n += 5) {
        ring_table_t *before = s_table (q, n, -1, &plain);
        for (uint32_t i = 0; i < n; i += 3) {
            ring_table_t *after = s_table (q, n, (int) i, &plain);
            const char *gone = ring_table_node (before, i);
            ck_assert_uint_eq (ring_table_moves (before, after), s_held (before, gone));
            //  Every surviving replica stays in its shard.
            for (uint32_t s = 0; s < q; s++)
                for (uint32_t k = 0; k < R; k++) {
                    const char *id = ring_table_replica (before, s, k);
                    if (strcmp (id, gone) == 0)
                        continue;
                    int found = 0;
                    for (uint32_t j = 0; j < R; j++)
                        found |= strcmp (id, ring_table_replica (after, s, j)) == 0;
                    ck_assert_msg (found, "Q=%u N=%u: %s left shard %u", q, n, id, s);
                }
            ring_table_destroy (&after);
        }
        ring_table_t *joined = s_table (q, n + 1, -1, &plain);
        char newcomer [16];
        snprintf (newcomer, sizeof newcomer, "n%03u", n);
        ck_assert_uint_eq (ring_table_moves (before, joined), s_held (joined, newcomer));
        ring_table_destroy (&joined);
        ring_table_destroy (&before);
    }
}
END_TEST

START_TEST (test_order_independent)
{
    //  Same membership reached by different command orders (and different
    //  detours) gives the same table.
    enum { N = 12 };
    ring_members_t *a = ring_members_new (64, R);
    ring_members_t *b = ring_members_new (64, R);
    char id [16];
    for (int i = 0; i < N; i++) {
        snprintf (id, sizeof id, "node-%c%d", 'a' + (i * 7) % N, i);
        s_apply_add (a, id, RING_ACTIVE);
    }
    for (int i = N - 1; i >= 0; i--) {
        snprintf (id, sizeof id, "node-%c%d", 'a' + (i * 7) % N, i);
        s_apply_add (b, id, i % 2 ? RING_ACTIVE : RING_JOINING);
    }
    //  A and B now differ only in states JOINING vs ACTIVE, which both
    //  hold replicas: placement must agree.
    ring_table_t *ta = s_build (a, NULL), *tb = s_build (b, NULL);
    ck_assert_uint_eq (ring_table_nodes (ta), N);
    for (uint32_t s = 0; s < 64; s++)
        for (uint32_t k = 0; k < R; k++)
            ck_assert_str_eq (ring_table_replica (ta, s, k), ring_table_replica (tb, s, k));
    ck_assert_uint_eq (ring_table_moves (ta, tb), 0);
    ck_assert_uint_eq (ring_table_leader_changes (ta, tb), 0);
    //  And building twice gives the same result.
    ring_table_t *again = s_build (a, NULL);
    ck_assert_uint_eq (ring_table_moves (ta, again), 0);
    ck_assert_uint_eq (ring_table_leader_changes (ta, again), 0);
    ck_assert_uint_eq (ring_table_epoch (ta), ring_members_epoch (a));
    ring_table_destroy (&again);
    ring_table_destroy (&ta);
    ring_table_destroy (&tb);
    ring_members_destroy (&a);
    ring_members_destroy (&b);
}
END_TEST

START_TEST (test_states)
{
    ring_members_t *m = ring_members_new (16, R);
    s_apply_add (m, "a", RING_ACTIVE);
    s_apply_add (m, "b", RING_JOINING);
    s_apply_add (m, "c", RING_LEAVING);
    s_apply_add (m, "d", RING_REMOVED);
    s_apply_add (m, "e", RING_ACTIVE);
    ring_table_t *t = s_build (m, NULL);
    ck_assert_uint_eq (ring_table_nodes (t), 3);
    ck_assert_str_eq (ring_table_node (t, 0), "a");
    ck_assert_str_eq (ring_table_node (t, 1), "b");
    ck_assert_str_eq (ring_table_node (t, 2), "e");
    ck_assert_uint_eq (s_held (t, "c"), 0);
    ck_assert_uint_eq (s_held (t, "d"), 0);
    //  Three nodes, R = 3: every node holds every shard.
    ck_assert_uint_eq (s_held (t, "a"), 16);
    ck_assert_uint_eq (s_held (t, "b"), 16);
    ring_table_destroy (&t);
    ring_members_destroy (&m);
}
END_TEST

START_TEST (test_small_clusters)
{
    uint32_t load [4], leaders [4];
    //  No node: empty rows.
    ring_members_t *m = ring_members_new (16, R);
    ring_table_t *t = s_build (m, NULL);
    ck_assert_uint_eq (ring_table_nodes (t), 0);
    ck_assert_uint_eq (ring_table_shard_size (t, 0), 0);
    ck_assert_ptr_null (ring_table_replica (t, 15, 0));
    ring_table_destroy (&t);
    //  One and two nodes: every shard on every node, leaders balanced.
    for (uint32_t n = 1; n <= 2; n++) {
        ring_members_destroy (&m);
        m = s_cluster (16, n, -1);
        t = s_build (m, NULL);
        s_check_loads (t, load, leaders);
        for (uint32_t i = 0; i < n; i++) {
            ck_assert_uint_eq (load [i], 16);
            ck_assert_uint_eq (leaders [i], 16 / n);
        }
        ring_table_destroy (&t);
    }
    //  Q = 1.
    ring_members_destroy (&m);
    m = s_cluster (1, 5, -1);
    t = s_build (m, NULL);
    ck_assert_uint_eq (ring_table_shard_size (t, 0), R);
    ring_table_destroy (&t);
    //  Bad options.
    ring_place_opts_t bad = { 0, 1, 0 };
    ck_assert_int_eq (ring_table_build_opts (m, &bad, &t), -EINVAL);
    ck_assert_ptr_null (t);
    bad.vnodes = RING_MAX_VNODES + 1;
    ck_assert_int_eq (ring_table_build_opts (m, &bad, &t), -EINVAL);
    ring_members_destroy (&m);
}
END_TEST

int
main (void)
{
    Suite *suite = suite_create ("ring_place");
    TCase *tc = tcase_create ("place");
    tcase_set_timeout (tc, 120);
    tcase_add_loop_test (tc, test_balance, 0, 3);
    tcase_add_loop_test (tc, test_join_moves, 0, 3);
    tcase_add_loop_test (tc, test_leave_moves, 0, 3);
    tcase_add_loop_test (tc, test_plain_ring_minimal, 0, 3);
    tcase_add_test (tc, test_order_independent);
    tcase_add_test (tc, test_states);
    tcase_add_test (tc, test_small_clusters);
    suite_add_tcase (suite, tc);
    return titan_check_run (suite, false);
}
