/*  Sharding tests: whole nodes (kernel + bitcask + raft + grpc_gateway) in
    the test process whose raft modules host Q Raft groups (multi-Raft,
    static placement: every node hosts every shard), driven over gRPC with
    the TestCluster helper (integration_cluster.h).

    Scenarios:
      - every key through every node: 3 nodes, Q = 8; 200 keys written
        round-robin through the nodes and read back (linearizable) through
        every node; every shard has a leader, and leadership is spread (the
        preferred leader of each shard takes over);
      - a node dies: the node leading most shards is stopped, and every
        key stays readable and writable through the survivors;
      - a node joins under write load: a writer thread keeps writing
        through the first nodes while a fourth node joins every shard;
        every acknowledged write is then read back through every node,
        including the new one, and every shard ends with 4 voters;
      - every shard takes snapshots: one node (ring placement, the
        default) with Q = 8 and snapshot_entries = 5; after 200 keys each
        shard has taken a snapshot of its own (the node offers each bus
        reply to its groups in turn: a group that took another's
        kv.snapshot_begin answer left that group's applying paused for
        2 s at every attempt, and its snapshot never taken).
    Every wait polls with a deadline.
*/
#include "integration_cluster.h"
#include "tc_client.h"
#include "titan.pb-c.h"
#include "check_run.h"

#include <check.h>
#include <czmq.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OP_MS     10000
#define SETTLE_MS 45000
#define SHARDS    8
#define KEYS      200

/*  Writes KEYS keys (value tag:i) round-robin through the running nodes
    and reads each back through every running node.  */
static void
s_all_keys_everywhere (tc_cluster_t *c, const char *tag)
{
    char key [32], value [64];
    int n = tc_size (c);
    int next = 0;
    for (int k = 0; k < KEYS; k++) {
        while (!tc_running (c, next % n))
            next++;
        snprintf (key, sizeof key, "key-%03d", k);
        snprintf (value, sizeof value, "%s:%d", tag, k);
        tc_put_ok (c, next++ % n, key, value, OP_MS);
    }
    for (int i = 0; i < n; i++) {
        if (!tc_running (c, i))
            continue;
        for (int k = 0; k < KEYS; k++) {
            snprintf (key, sizeof key, "key-%03d", k);
            snprintf (value, sizeof value, "%s:%d", tag, k);
            tc_expect (c, i, key, value, OP_MS);
        }
    }
}

/*  Counts the shards each node leads, from node i's status; returns the
    index of the node leading most.  */
static int
s_leaders (tc_cluster_t *c, int i, int counts [TC_MAX_NODES])
{
    memset (counts, 0, TC_MAX_NODES * sizeof *counts);
    Titan__V1__StatusResponse *st = tc_status (c, i);
    ck_assert_ptr_nonnull (st);
    for (size_t s = 0; s < st->n_shards; s++)
        for (int j = 0; j < tc_size (c); j++)
            if (streq (st->shards [s]->leader, tc_node_id (c, j)))
                counts [j]++;
    titan__v1__status_response__free_unpacked (st, NULL);
    int most = 0;
    for (int j = 1; j < tc_size (c); j++)
        if (counts [j] > counts [most])
            most = j;
    return most;
}

/*  Polls until no node leads more than `max` shards.  */
static bool
s_wait_spread (tc_cluster_t *c, int max, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    int counts [TC_MAX_NODES];
    do {
        int most = s_leaders (c, 0, counts);
        if (counts [most] <= max)
            return true;
        zclock_sleep (100);
    } while (zclock_mono () < deadline);
    return false;
}

START_TEST (test_every_key_through_every_node)
{
    tc_cluster_t *c = tc_new_sharded (3, SHARDS, SETTLE_MS);
    Titan__V1__StatusResponse *st = tc_status (c, 1);
    ck_assert_ptr_nonnull (st);
    ck_assert_uint_eq (st->n_shards, SHARDS);
    for (size_t s = 0; s < st->n_shards; s++) {
        ck_assert_uint_eq (st->shards [s]->id, s);
        ck_assert_uint_eq (st->shards [s]->n_replicas, 3);
    }
    titan__v1__status_response__free_unpacked (st, NULL);
    /* every shard starts led by node 0 (it bootstrapped them); the
       preferred leaders take over: ceil (8 / 3) = 3 at most per node */
    ck_assert_msg (s_wait_spread (c, 3, SETTLE_MS),
                   "leadership was not spread over the nodes");
    s_all_keys_everywhere (c, "first");
    tc_destroy (&c);
}
END_TEST

START_TEST (test_node_dies_shards_keep_serving)
{
    tc_cluster_t *c = tc_new_sharded (3, SHARDS, SETTLE_MS);
    s_all_keys_everywhere (c, "before");
    int counts [TC_MAX_NODES];
    int victim = s_leaders (c, 0, counts);
    tc_stop_node (c, victim);
    s_all_keys_everywhere (c, "after");
    tc_destroy (&c);
}
END_TEST

/*  The writer of the join test: puts w-<n> through nodes 0 and 1 until
    told to stop, recording how many were acknowledged (all of w-0 ..
    w-<acked-1>: it stops at the first failure of a key after retries). */
typedef struct {
    tc_cluster_t *c;
    volatile int stop;
    int acked;
    int failed;
    char failure [512];
} s_writer_t;

static void *
s_writer (void *arg)
{
    s_writer_t *w = arg;
    char key [32], value [32];
    for (int k = 0; !w->stop; k++) {
        snprintf (key, sizeof key, "w-%05d", k);
        snprintf (value, sizeof value, "v%d", k);
        grpc_status_code code = GRPC_STATUS_UNKNOWN;
        for (int attempt = 0; attempt < 5 && code != GRPC_STATUS_OK; attempt++)
            code = tc_put (w->c, k % 2, key, value, OP_MS, NULL, w->failure,
                           sizeof w->failure);
        if (code != GRPC_STATUS_OK) {
            w->failed = 1;
            break;
        }
        w->acked = k + 1;
    }
    return NULL;
}

START_TEST (test_node_joins_under_load)
{
    tc_cluster_t *c = tc_new_sharded (3, SHARDS, SETTLE_MS);
    s_writer_t w = { .c = c };
    pthread_t thread;
    ck_assert_int_eq (pthread_create (&thread, NULL, s_writer, &w), 0);
    while (w.acked < 20)
        zclock_sleep (10);
    int joined = tc_add_node_sharded (c, 4, SETTLE_MS);
    int at_join = w.acked;
    zclock_sleep (300);             /* a few more writes with 4 voters */
    w.stop = 1;
    pthread_join (thread, NULL);
    ck_assert_msg (!w.failed, "a write failed 5 times during the join: %s",
                   w.failure);
    printf ("sharding: %d writes acknowledged during the join (%d before "
            "it completed)\n", w.acked, at_join);
    char key [32], value [32];
    for (int i = 0; i < tc_size (c); i++)
        for (int k = 0; k < w.acked; k++) {
            snprintf (key, sizeof key, "w-%05d", k);
            snprintf (value, sizeof value, "v%d", k);
            tc_expect (c, i, key, value, OP_MS);
        }
    /* the new node holds every shard: a LOCAL read of the last key */
    snprintf (key, sizeof key, "w-%05d", w.acked - 1);
    snprintf (value, sizeof value, "v%d", w.acked - 1);
    ck_assert (tc_wait_value (c, joined, key, value, OP_MS));
    tc_destroy (&c);
}
END_TEST

START_TEST (test_every_shard_takes_snapshots)
{
    tc_settings_t settings = { .raft = "        snapshot_entries = 5\n" };
    tc_cluster_t *c = tc_new_ring (1, SHARDS, 1, &settings);
    tc_wait_shards (c, 1, SETTLE_MS);
    char key [32], value [32];
    for (int k = 0; k < KEYS; k++) {
        snprintf (key, sizeof key, "key-%03d", k);
        snprintf (value, sizeof value, "v%d", k);
        tc_put_ok (c, 0, key, value, OP_MS);
    }
    int64_t start = zclock_mono ();
    char why [128] = "no status";
    while (true) {
        Titan__V1__StatusResponse *st = tc_status (c, 0);
        bool all = st && st->n_shards == SHARDS;
        for (size_t s = 0; all && s < st->n_shards; s++)
            if (st->shards [s]->snapshots_taken == 0) {
                snprintf (why, sizeof why, "shard %u took no snapshot",
                          st->shards [s]->id);
                all = false;
            }
        if (st)
            titan__v1__status_response__free_unpacked (st, NULL);
        if (all)
            break;
        ck_assert_msg (zclock_mono () - start < 20000, "after %d keys: %s",
                       KEYS, why);
        zclock_sleep (100);
    }
    printf ("sharding: every one of %d shards took a snapshot (%.1f s after "
            "the last put)\n", SHARDS, (zclock_mono () - start) / 1000.0);
    tc_destroy (&c);
}
END_TEST

static Suite *
s_suite (void)
{
    Suite *suite = suite_create ("sharding");
    TCase *tc = tcase_create ("static placement");
    tcase_set_timeout (tc, 120);
    tcase_add_test (tc, test_every_key_through_every_node);
    tcase_add_test (tc, test_node_dies_shards_keep_serving);
    tcase_add_test (tc, test_node_joins_under_load);
    suite_add_tcase (suite, tc);
    tc = tcase_create ("snapshots");
    tcase_set_timeout (tc, 120);
    tcase_add_test (tc, test_every_shard_takes_snapshots);
    suite_add_tcase (suite, tc);
    return suite;
}

int
main (void)
{
    return titan_check_run (s_suite (), false);
}
