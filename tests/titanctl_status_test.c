/*  Unit test of titanctl's status views (cli/tc_status.c): the views of
    several nodes merged (a shard's leader view wins over a follower's and
    over the placement alone; the newest ring epoch gives the header),
    the shards that still list a draining node, and the plain and JSON
    output (desired vs actual replicas, moves, the summary line).  */
#include "tc_status.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  A node's view: Q = 3 shards, each desired on n1,n2,n3; this view
    hosts `hosted` (a bit per shard) as `role`, with `keys` keys.  */
typedef struct {
    Titan__V1__StatusResponse st;
    Titan__V1__ShardStatus shards [3];
    Titan__V1__ShardStatus *ptrs [3];
    Titan__V1__NodeStatus nodes [4];
    Titan__V1__NodeStatus *node_ptrs [4];
} s_view_t;

static char *s_desired [3] = { "n1", "n2", "n3" };
static char *s_moving [4] = { "n1", "n2", "n3", "n4" };

static void
s_view (s_view_t *v, const char *self, uint64_t epoch, unsigned hosted,
        const char *role, uint64_t keys)
{
    memset (v, 0, sizeof *v);
    titan__v1__status_response__init (&v->st);
    v->st.node_id = (char *) self;
    v->st.placement = "ring";
    v->st.ring_epoch = epoch;
    v->st.shard_count = 3;
    v->st.replica_count = 3;
    static const char *ids [4] = { "n1", "n2", "n3", "n4" };
    static const char *states [4] = { "active", "active", "leaving", "joining" };
    for (int i = 0; i < 4; i++) {
        titan__v1__node_status__init (&v->nodes [i]);
        v->nodes [i].id = (char *) ids [i];
        v->nodes [i].client_addr = "127.0.0.1:1";
        v->nodes [i].ring_state = (char *) states [i];
        v->nodes [i].state = (char *) (i < 2 ? "up" : states [i]);
        v->node_ptrs [i] = &v->nodes [i];
    }
    v->st.n_nodes = epoch > 5 ? 4 : 3;
    v->st.nodes = v->node_ptrs;
    for (uint32_t s = 0; s < 3; s++) {
        Titan__V1__ShardStatus *sh = &v->shards [s];
        titan__v1__shard_status__init (sh);
        sh->id = s;
        sh->n_desired = 3;
        sh->desired = s_desired;
        if (hosted & (1u << s)) {
            sh->hosted = 1;
            sh->role = (char *) role;
            sh->leader = "n1";
            sh->keys = keys;
            sh->term = 4;
            /* shard 2 moves from n3 to n4: n4 is a learner */
            sh->n_replicas = s == 2 ? 4 : 3;
            sh->replicas = s == 2 ? s_moving : s_desired;
            sh->n_learners = s == 2 ? 1 : 0;
            sh->learners = s_moving + 3;
        }
        v->ptrs [s] = sh;
    }
    v->st.n_shards = 3;
    v->st.shards = v->ptrs;
}

START_TEST (test_merge_and_drain)
{
    s_view_t a, b, c;
    s_view (&a, "n1", 6, 0x7, "leader", 100);     /* leads everything */
    s_view (&b, "n2", 5, 0x3, "follower", 90);    /* a stale follower */
    s_view (&c, "n3", 6, 0x0, "", 0);             /* hosts nothing */
    Titan__V1__StatusResponse *views [3] = { &b.st, &c.st, &a.st };
    tc_status_t m;
    ck_assert_int_eq (tc_status_merge (views, 3, &m), 0);
    ck_assert_uint_eq (m.views, 3);
    ck_assert_uint_eq (m.status.ring_epoch, 6);
    ck_assert_uint_eq (m.status.n_nodes, 4);       /* from the newest view */
    ck_assert_uint_eq (m.status.n_shards, 3);
    for (uint32_t s = 0; s < 3; s++) {
        ck_assert_uint_eq (m.status.shards [s]->id, s);
        ck_assert_ptr_eq (m.status.shards [s], &a.shards [s]);   /* leader's */
    }
    ck_assert_uint_eq (tc_status_shards_on (&m.status, "n4"), 1);
    ck_assert_uint_eq (tc_status_shards_on (&m.status, "n3"), 3); /* desired */
    ck_assert_uint_eq (tc_status_shards_on (&m.status, "n9"), 0);
    ck_assert_ptr_nonnull (tc_status_node (&m.status, "n4"));
    ck_assert_ptr_null (tc_status_node (&m.status, "n9"));

    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    tc_status_print (out, &m, false);
    fclose (out);
    ck_assert_ptr_nonnull (strstr (text, "ring epoch 6, Q=3 shards, R=3 replicas"));
    ck_assert_ptr_nonnull (strstr (text, "RING_STATE"));
    ck_assert_ptr_nonnull (strstr (text, "n1,n2,n3                 n1,n2,n3,n4"));
    ck_assert_ptr_nonnull (strstr (text, "3 shard(s), 1 move(s) in progress, "
                                   "0 shard(s) without a leader, 1 shard(s) not "
                                   "at their desired replicas"));
    free (text);

    text = NULL;
    out = open_memstream (&text, &size);
    tc_status_print (out, &m, true);
    fclose (out);
    ck_assert_ptr_nonnull (strstr (text, "\"placement\":\"ring\",\"ring_epoch\":6,"
                                   "\"shard_count\":3,\"replica_count\":3"));
    ck_assert_ptr_nonnull (strstr (text, "\"shards\":[{\"id\":0,\"leader\":\"n1\""));
    ck_assert_ptr_nonnull (strstr (text, "\"desired\":[\"n1\",\"n2\",\"n3\"],"
                                   "\"settled\":false"));
    ck_assert_ptr_nonnull (strstr (text, "\"ring_state\":\"leaving\""));
    free (text);
    tc_status_clear (&m);

    /* without the leader's view the follower's wins over the placement */
    Titan__V1__StatusResponse *two [2] = { &c.st, &b.st };
    ck_assert_int_eq (tc_status_merge (two, 2, &m), 0);
    ck_assert_ptr_eq (m.status.shards [0], &b.shards [0]);
    ck_assert_ptr_eq (m.status.shards [2], &c.shards [2]);
    ck_assert_uint_eq (m.status.ring_epoch, 6);
    tc_status_clear (&m);
}
END_TEST

/*  Static mode (one view, no desired replicas): the old table layout and
    summary line.  */
START_TEST (test_static_output)
{
    s_view_t a;
    s_view (&a, "n1", 0, 0x1, "leader", 7);
    a.st.placement = "static";
    a.st.n_shards = 1;
    a.shards [0].n_desired = 0;
    for (size_t i = 0; i < 4; i++)
        a.nodes [i].ring_state = "";
    Titan__V1__StatusResponse *views [1] = { &a.st };
    tc_status_t m;
    ck_assert_int_eq (tc_status_merge (views, 1, &m), 0);
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    tc_status_print (out, &m, false);
    fclose (out);
    ck_assert_ptr_null (strstr (text, "ring epoch"));
    ck_assert_ptr_nonnull (strstr (text, "APPLIED_INDEX"));
    ck_assert_ptr_nonnull (strstr (text, "\n1 shard(s), 0 move(s) in progress, 0 deferred put(s) pending"));
    free (text);
    tc_status_clear (&m);
}
END_TEST

int
main (void)
{
    Suite *s = suite_create ("titanctl_status");
    TCase *tc = tcase_create ("status");
    tcase_add_test (tc, test_merge_and_drain);
    tcase_add_test (tc, test_static_output);
    suite_add_tcase (s, tc);
    SRunner *sr = srunner_create (s);
    srunner_run_all (sr, CK_NORMAL);
    int failed = srunner_ntests_failed (sr);
    srunner_free (sr);
    return failed ? 1 : 0;
}
