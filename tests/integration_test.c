/*  Integration tests of Titan-KV: whole nodes (kernel + bitcask + raft +
    grpc_gateway) in the test process, driven over gRPC like a client
    would, with the TestCluster helper (integration_cluster.h).

    Scenarios: a write to the leader read from a follower (LOCAL, polled
    until visible); the leader stopped, a new one elected among the other
    two and written to, the old one restarted from its directory and
    holding every key; a write sent to a follower and forwarded to the
    leader; a minority that cannot commit (a write fails with UNAVAILABLE
    or DEADLINE_EXCEEDED within its deadline, and succeeds once a second
    node is back); a fourth node that joins and receives all the data;
    Join, TransferLeader and Leave over gRPC through followers; the hop
    limit of forwarding (calls sent with the gateway's own forwarder,
    marked as already forwarded), with raft forward_proposals = off; with
    it on (the default), a put through a follower that may take no more
    gRPC hops succeeds, forwarded by the raft module.

    With INTEG_FAILOVER_TRIALS=N (not set by `make check`), one more test
    measures N failovers: the leader is stopped and the time until the
    first successful write through another node is printed (median, max).
    Every wait polls with a deadline.
*/
#include "gw_forward.h"
#include "integration_cluster.h"
#include "tc_client.h"
#include "titan.pb-c.h"

#include <check.h>
#include <czmq.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PUT_MS 10000

/*  Put that must succeed; returns the revision.  */
static uint64_t
s_put_ok (tc_cluster_t *c, int i, const char *key, const char *value)
{
    uint64_t revision = 0;
    char details [512] = "";
    grpc_status_code code = tc_put (c, i, key, value, PUT_MS, &revision,
                                    details, sizeof details);
    ck_assert_msg (code == GRPC_STATUS_OK, "put %s to %s: %s %s", key,
                   tc_node_id (c, i), tc_status_name (code), details);
    ck_assert_uint_gt (revision, 0);
    return revision;
}

/*  A linearizable read that must return `value`.  */
static void
s_expect_linearizable (tc_cluster_t *c, int i, const char *key,
                       const char *value)
{
    char *got = NULL;
    char details [512] = "";
    grpc_status_code code = tc_get (c, i, key, false, PUT_MS, &got, NULL,
                                    details, sizeof details);
    ck_assert_msg (code == GRPC_STATUS_OK, "get %s from %s: %s %s", key,
                   tc_node_id (c, i), tc_status_name (code), details);
    ck_assert_str_eq (got, value);
    free (got);
}

/*  Key and value number k of a series: PREFIX-00k = value-00k.  */
static void
s_series (const char *prefix, int k, char *key, char *value, size_t size)
{
    snprintf (key, size, "%s-%03d", prefix, k);
    snprintf (value, size, "value-%03d", k);
}

/*  Puts keys from..to-1 of a series to node i.  */
static void
s_put_series (tc_cluster_t *c, int i, const char *prefix, int from, int to)
{
    char key [64], value [64];
    for (int k = from; k < to; k++) {
        s_series (prefix, k, key, value, sizeof key);
        s_put_ok (c, i, key, value);
    }
}

START_TEST (test_basic_write_read)
{
    tc_cluster_t *c = tc_new (3);
    int leader = tc_get_leader (c, 10000);
    ck_assert_int_ge (leader, 0);
    uint64_t r1 = s_put_ok (c, leader, "alpha", "beta");
    int follower = tc_other (c, leader);
    ck_assert_msg (tc_wait_value (c, follower, "alpha", "beta", 10000),
                   "alpha never became visible on follower %s",
                   tc_node_id (c, follower));
    /* revisions are Raft indexes: they only grow */
    uint64_t r2 = s_put_ok (c, leader, "alpha", "gamma");
    ck_assert_uint_gt (r2, r1);
    s_expect_linearizable (c, follower, "alpha", "gamma");
    char *got = NULL;
    uint64_t revision = 0;
    ck_assert_int_eq (tc_get (c, leader, "alpha", false, PUT_MS, &got,
                              &revision, NULL, 0), GRPC_STATUS_OK);
    ck_assert_uint_eq (revision, r2);
    free (got);
    ck_assert_int_eq (tc_get (c, follower, "nosuch", true, PUT_MS, NULL,
                              NULL, NULL, 0), GRPC_STATUS_NOT_FOUND);
    tc_destroy (&c);
}
END_TEST

START_TEST (test_leader_failure_data_persistence)
{
    tc_cluster_t *c = tc_new (3);
    int old = tc_get_leader (c, 10000);
    ck_assert_int_ge (old, 0);
    uint64_t r1 = s_put_ok (c, old, "resilience", "test");
    tc_stop_node (c, old);
    int leader = tc_get_leader (c, 10000);
    ck_assert_msg (leader >= 0, "no new leader among the other two");
    ck_assert_int_ne (leader, old);
    uint64_t r2 = s_put_ok (c, leader, "after_crash", "success");
    ck_assert_uint_gt (r2, r1);
    tc_start_node (c, old);
    ck_assert (tc_wait_value (c, old, "resilience", "test", 10000));
    ck_assert (tc_wait_value (c, old, "after_crash", "success", 10000));
    /* and it serves the group again: a write through it */
    uint64_t r3 = s_put_ok (c, old, "back", "yes");
    ck_assert_uint_gt (r3, r2);
    tc_destroy (&c);
}
END_TEST

START_TEST (test_write_through_follower_forwarded)
{
    tc_cluster_t *c = tc_new (3);
    int leader = tc_get_leader (c, 10000);
    ck_assert_int_ge (leader, 0);
    int follower = tc_other (c, leader);
    uint64_t r1 = s_put_ok (c, follower, "fwd", "one");
    uint64_t r2 = s_put_ok (c, follower, "fwd", "two");
    ck_assert_uint_gt (r2, r1);
    s_expect_linearizable (c, leader, "fwd", "two");
    /* the value and revision on the leader are the forwarded write's */
    uint64_t revision = 0;
    char *got = NULL;
    ck_assert_int_eq (tc_get (c, leader, "fwd", false, PUT_MS, &got,
                              &revision, NULL, 0), GRPC_STATUS_OK);
    ck_assert_uint_eq (revision, r2);
    free (got);
    /* a linearizable read through the follower, and a delete forwarded */
    s_expect_linearizable (c, follower, "fwd", "two");
    Titan__V1__DeleteRequest del = TITAN__V1__DELETE_REQUEST__INIT;
    del.key.data = (uint8_t *) "fwd";
    del.key.len = 3;
    size_t size = titan__v1__delete_request__get_packed_size (&del);
    uint8_t buf [64];
    titan__v1__delete_request__pack (&del, buf);
    tc_conn_t *conn = tc_conn_new (tc_client_addr (c, follower));
    uint8_t *resp = NULL;
    size_t resp_size = 0;
    char details [256] = "";
    grpc_status_code code = tc_call (conn, "/titan.v1.KV/Delete", buf, size,
                                     PUT_MS, &resp, &resp_size, details,
                                     sizeof details);
    ck_assert_msg (code == GRPC_STATUS_OK, "%s", details);
    Titan__V1__DeleteResponse *d =
        titan__v1__delete_response__unpack (NULL, resp_size, resp);
    ck_assert_uint_eq (d->deleted, 1);
    ck_assert_uint_gt (d->revision, r2);
    titan__v1__delete_response__free_unpacked (d, NULL);
    free (resp);
    tc_conn_destroy (&conn);
    ck_assert_int_eq (tc_get (c, leader, "fwd", false, PUT_MS, NULL, NULL,
                              NULL, 0), GRPC_STATUS_NOT_FOUND);
    tc_destroy (&c);
}
END_TEST

START_TEST (test_minority_cannot_commit)
{
    tc_cluster_t *c = tc_new (3);
    int leader = tc_get_leader (c, 10000);
    ck_assert_int_ge (leader, 0);
    s_put_ok (c, leader, "before", "ok");
    int survivor = leader;
    int a = tc_other (c, survivor);
    tc_stop_node (c, a);
    int b = tc_other (c, survivor);
    tc_stop_node (c, b);

    int64_t start = zclock_mono ();
    char details [512] = "";
    grpc_status_code code = tc_put (c, survivor, "lonely", "x", 1500, NULL,
                                    details, sizeof details);
    int64_t took = zclock_mono () - start;
    ck_assert_msg (code == GRPC_STATUS_UNAVAILABLE
                || code == GRPC_STATUS_DEADLINE_EXCEEDED,
                   "a minority committed? %s %s", tc_status_name (code), details);
    /* within its deadline (plus scheduling slack on a loaded machine) */
    ck_assert_int_lt (took, 1500 + 2000);
    /* a LOCAL read still works on the survivor */
    ck_assert (tc_wait_value (c, survivor, "before", "ok", 5000));

    tc_start_node (c, a);
    s_put_ok (c, survivor, "lonely", "y");
    ck_assert (tc_wait_value (c, a, "lonely", "y", 10000));
    tc_start_node (c, b);
    ck_assert (tc_wait_value (c, b, "lonely", "y", 10000));
    tc_destroy (&c);
}
END_TEST

START_TEST (test_fourth_node_joins)
{
    tc_cluster_t *c = tc_new (3);
    int leader = tc_get_leader (c, 10000);
    ck_assert_int_ge (leader, 0);
    s_put_series (c, leader, "key", 0, 20);
    int fourth = tc_add_node (c);
    ck_assert_int_eq (fourth, 3);
    char key [64], value [64];
    for (int k = 0; k < 20; k++) {
        s_series ("key", k, key, value, sizeof key);
        ck_assert_msg (tc_wait_value (c, fourth, key, value, 10000),
                       "%s missing on the fourth node", key);
    }
    /* the membership as a client sees it, through the new node */
    Titan__V1__MemberListRequest req = TITAN__V1__MEMBER_LIST_REQUEST__INIT;
    uint8_t buf [8];
    size_t size = titan__v1__member_list_request__pack (&req, buf);
    tc_conn_t *conn = tc_conn_new (tc_client_addr (c, fourth));
    uint8_t *resp = NULL;
    size_t resp_size = 0;
    ck_assert_int_eq (tc_call (conn, "/titan.v1.Cluster/MemberList", buf, size,
                               5000, &resp, &resp_size, NULL, 0),
                      GRPC_STATUS_OK);
    Titan__V1__MemberListResponse *ml =
        titan__v1__member_list_response__unpack (NULL, resp_size, resp);
    ck_assert_uint_eq (ml->n_members, 4);
    for (size_t k = 0; k < ml->n_members; k++)
        ck_assert_str_eq (ml->members [k]->state, "up");
    titan__v1__member_list_response__free_unpacked (ml, NULL);
    free (resp);
    tc_conn_destroy (&conn);
    /* and writes through it */
    s_put_ok (c, fourth, "from-fourth", "v");
    ck_assert (tc_wait_value (c, leader, "from-fourth", "v", 10000));
    tc_destroy (&c);
}
END_TEST

/*  Calls a Cluster method on node i; returns the status, the response in
    *resp (to free).  */
static grpc_status_code
s_cluster_call (tc_cluster_t *c, int i, const char *method,
                const ProtobufCMessage *req, uint8_t **resp, size_t *resp_size,
                char *details, size_t details_size)
{
    size_t size = protobuf_c_message_get_packed_size (req);
    uint8_t *buf = malloc (size + 1);
    ck_assert_ptr_nonnull (buf);
    protobuf_c_message_pack (req, buf);
    tc_conn_t *conn = tc_conn_new (tc_client_addr (c, i));
    grpc_status_code code = tc_call (conn, method, buf, size, PUT_MS, resp,
                                     resp_size, details, details_size);
    tc_conn_destroy (&conn);
    free (buf);
    return code;
}

/*  Join, TransferLeader and Leave over gRPC, each sent to a follower (so
    forwarded to the leader).  */
START_TEST (test_membership_over_grpc)
{
    tc_cluster_t *c = tc_new (3);
    int leader = tc_get_leader (c, 10000);
    ck_assert_int_ge (leader, 0);
    int follower = tc_other (c, leader);
    s_put_ok (c, leader, "m", "1");
    int w = tc_add_waiting_node (c);

    Titan__V1__JoinRequest join = TITAN__V1__JOIN_REQUEST__INIT;
    join.node_id = (char *) tc_node_id (c, w);
    join.client_addr = (char *) tc_client_addr (c, w);
    join.peer_addr = (char *) tc_peer_addr (c, w);
    uint8_t *resp = NULL;
    size_t size = 0;
    char details [512] = "";
    grpc_status_code code = s_cluster_call (c, follower, "/titan.v1.Cluster/Join",
                                            &join.base, &resp, &size,
                                            details, sizeof details);
    ck_assert_msg (code == GRPC_STATUS_OK, "join: %s %s",
                   tc_status_name (code), details);
    Titan__V1__JoinResponse *jr = titan__v1__join_response__unpack (NULL, size, resp);
    ck_assert_ptr_nonnull (jr);
    ck_assert_uint_eq (jr->n_members, 4);
    bool listed = false;
    for (size_t k = 0; k < jr->n_members; k++)
        if (streq (jr->members [k]->id, tc_node_id (c, w)))
            listed = streq (jr->members [k]->client_addr, tc_client_addr (c, w));
    ck_assert (listed);
    titan__v1__join_response__free_unpacked (jr, NULL);
    free (resp);
    tc_wait_voters (c, 4);
    ck_assert (tc_wait_value (c, w, "m", "1", 10000));

    /* leadership to the new node, asked through a follower */
    Titan__V1__TransferLeaderRequest tl = TITAN__V1__TRANSFER_LEADER_REQUEST__INIT;
    tl.target_node_id = (char *) tc_node_id (c, w);
    code = s_cluster_call (c, follower, "/titan.v1.Cluster/TransferLeader",
                           &tl.base, &resp, &size, details, sizeof details);
    ck_assert_msg (code == GRPC_STATUS_OK, "transfer: %s %s",
                   tc_status_name (code), details);
    free (resp);
    int64_t deadline = zclock_mono () + 10000;
    while (tc_get_leader (c, 2000) != w) {
        ck_assert_msg (zclock_mono () < deadline, "leadership did not move");
        zclock_sleep (50);
    }
    s_put_ok (c, w, "m", "2");

    /* remove the old leader (a follower now), through another follower */
    int via = tc_other (c, leader);
    if (via == w)
        via = follower;
    Titan__V1__LeaveRequest leave = TITAN__V1__LEAVE_REQUEST__INIT;
    leave.node_id = (char *) tc_node_id (c, leader);
    code = s_cluster_call (c, via, "/titan.v1.Cluster/Leave", &leave.base,
                           &resp, &size, details, sizeof details);
    ck_assert_msg (code == GRPC_STATUS_OK, "leave: %s %s",
                   tc_status_name (code), details);
    Titan__V1__LeaveResponse *lr = titan__v1__leave_response__unpack (NULL, size, resp);
    ck_assert_ptr_nonnull (lr);
    ck_assert_uint_eq (lr->n_members, 3);
    for (size_t k = 0; k < lr->n_members; k++)
        ck_assert_str_ne (lr->members [k]->id, tc_node_id (c, leader));
    titan__v1__leave_response__free_unpacked (lr, NULL);
    free (resp);
    tc_stop_node (c, leader);
    s_put_ok (c, via, "m", "3");
    s_expect_linearizable (c, w, "m", "3");
    tc_destroy (&c);
}
END_TEST

/*  Sends a Put to node i through the gateway's forwarder, as if it had
    already been forwarded `hops` times; returns the result (to destroy).  */
static gw_fwd_result_t *
s_put_with_hops (tc_cluster_t *c, int i, int hops, const char *key)
{
    /* a new endpoint each time: ZeroMQ releases an inproc name
       asynchronously after its socket closed */
    static int calls;
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "inproc://integ-forward-%d", ++calls);
    zsock_t *pull = zsock_new_pull (endpoint);
    ck_assert_ptr_nonnull (pull);
    char error [200] = "";
    gw_forward_t *fwd = gw_forward_new (endpoint, error, sizeof error);
    ck_assert_msg (fwd != NULL, "%s", error);
    Titan__V1__PutRequest req = TITAN__V1__PUT_REQUEST__INIT;
    req.key.data = (uint8_t *) key;
    req.key.len = strlen (key);
    uint8_t buf [128];
    size_t size = titan__v1__put_request__pack (&req, buf);
    ck_assert_int_eq (gw_forward_start (fwd, tc_client_addr (c, i),
                                        "/titan.v1.KV/Put", buf, size,
                                        zclock_mono () + PUT_MS, hops, 42), 0);
    zsock_set_rcvtimeo (pull, PUT_MS + 2000);
    void *ptr = NULL;
    ck_assert_int_eq (zsock_recv (pull, "p", &ptr), 0);
    ck_assert_ptr_nonnull (ptr);
    gw_fwd_result_t *res = ptr;
    ck_assert_uint_eq (res->corr, 42);
    ck_assert_uint_eq (gw_forward_inflight (fwd), 0);
    gw_forward_destroy (&fwd);
    zsock_destroy (&pull);
    return res;
}

/*  forward_proposals = on (the default): a write through a follower goes
    to its raft module, which forwards it to the leader over the peer
    transport; no gRPC call leaves the follower.  A put that took its last
    gRPC hop already (it may not be forwarded again) still succeeds
    through a follower, even one whose gateway knows the leader, and its
    revision is the one the leader serves.  */
START_TEST (test_write_through_follower_no_grpc)
{
    tc_cluster_t *c = tc_new (3);
    int leader = tc_get_leader (c, 10000);
    ck_assert_int_ge (leader, 0);
    int follower = tc_other (c, leader);
    /* a linearizable read first: the follower's gateway learns the
       leader hint (reads still go to the hinted leader over gRPC) */
    s_put_ok (c, leader, "nogrpc", "zero");
    s_expect_linearizable (c, follower, "nogrpc", "zero");
    for (int k = 0; k < 3; k++) {
        gw_fwd_result_t *res = s_put_with_hops (c, follower, GW_MAX_HOPS,
                                                "nogrpc");
        ck_assert_msg (res->code == GRPC_STATUS_OK, "%s %s",
                       tc_status_name (res->code), res->details);
        Titan__V1__PutResponse *put = titan__v1__put_response__unpack (
            NULL, res->size, res->response);
        ck_assert_ptr_nonnull (put);
        uint64_t revision = 0;
        char *got = NULL;
        ck_assert_int_eq (tc_get (c, leader, "nogrpc", false, PUT_MS, &got,
                                  &revision, NULL, 0), GRPC_STATUS_OK);
        ck_assert_uint_eq (revision, put->revision);
        free (got);
        titan__v1__put_response__free_unpacked (put, NULL);
        gw_fwd_result_destroy (&res);
    }
    tc_destroy (&c);
}
END_TEST

/*  The hop limit of forwarding, with calls marked as forwarded already
    (raft forward_proposals = off: a follower's gateway forwards writes
    over gRPC).  */
START_TEST (test_forwarding_hop_limit)
{
    tc_settings_t settings = { .raft = "        forward_proposals = off\n" };
    tc_cluster_t *c = tc_new_with (3, &settings);
    int leader = tc_get_leader (c, 10000);
    ck_assert_int_ge (leader, 0);
    int follower = tc_other (c, leader);
    /* 1 hop so far: the follower forwards it once more */
    gw_fwd_result_t *res = s_put_with_hops (c, follower, 1, "hop1");
    ck_assert_msg (res->code == GRPC_STATUS_OK, "%s", res->details);
    gw_fwd_result_destroy (&res);
    /* 3 hops: the follower may not forward it again */
    res = s_put_with_hops (c, follower, GW_MAX_HOPS, "hop3");
    ck_assert_int_eq (res->code, GRPC_STATUS_UNAVAILABLE);
    ck_assert_msg (strstr (res->details, "already took 3 hops"), "%s", res->details);
    gw_fwd_result_destroy (&res);
    /* but the leader serves it */
    res = s_put_with_hops (c, leader, GW_MAX_HOPS, "hop3");
    ck_assert_msg (res->code == GRPC_STATUS_OK, "%s", res->details);
    gw_fwd_result_destroy (&res);
    /* over the limit: refused on arrival */
    res = s_put_with_hops (c, leader, GW_MAX_HOPS + 1, "hop4");
    ck_assert_int_eq (res->code, GRPC_STATUS_UNAVAILABLE);
    ck_assert_msg (strstr (res->details, "forwarded more than 3 times"),
                   "%s", res->details);
    gw_fwd_result_destroy (&res);
    ck_assert_int_eq (tc_get (c, leader, "hop4", false, PUT_MS, NULL, NULL,
                              NULL, 0), GRPC_STATUS_NOT_FOUND);
    tc_destroy (&c);
}
END_TEST

/*  Leadership transfer under write load.  Writer threads put distinct
    keys (writer w, sequence k: "tl-w-k" = "v-w-k") continuously, each
    through its own node, recording every outcome; meanwhile leadership is
    transferred TL_TRANSFERS times (Cluster.TransferLeader, as titanctl
    `leader transfer` sends it, through a different node each time), each
    after some writes were acknowledged under the current leader.  */
#define TL_WRITERS   4
#define TL_TRANSFERS 4
#define TL_MAX_KEYS  4000           /* per writer */

typedef struct {
    const char *addr;               /* the node it writes through */
    volatile int *stop;
    int id;
    int sent;                       /* keys 0..sent-1 were sent */
    grpc_status_code codes [TL_MAX_KEYS];
    uint64_t revisions [TL_MAX_KEYS];
    volatile int acked;             /* running count, read by the test */
} tl_writer_t;

static void
s_tl_key (int w, int k, char *key, char *value, size_t size)
{
    snprintf (key, size, "tl-%d-%d", w, k);
    snprintf (value, size, "v-%d-%d", w, k);
}

static void *
s_tl_writer (void *arg)
{
    tl_writer_t *self = arg;
    tc_conn_t *conn = tc_conn_new (self->addr);
    char key [32], value [32];
    while (conn && !*self->stop && self->sent < TL_MAX_KEYS) {
        int k = self->sent;
        s_tl_key (self->id, k, key, value, sizeof key);
        self->codes [k] = tc_conn_put (conn, key, value, PUT_MS,
                                       &self->revisions [k], NULL, 0);
        self->sent = k + 1;
        if (self->codes [k] == GRPC_STATUS_OK)
            __atomic_add_fetch (&self->acked, 1, __ATOMIC_RELEASE);
    }
    tc_conn_destroy (&conn);
    return NULL;
}

static int
s_tl_acked (tl_writer_t *writers)
{
    int total = 0;
    for (int w = 0; w < TL_WRITERS; w++)
        total += __atomic_load_n (&writers [w].acked, __ATOMIC_ACQUIRE);
    return total;
}

/*  Waits until `more` writes beyond `since` are acknowledged (30 s).  */
static int
s_tl_wait_acks (tl_writer_t *writers, int since, int more)
{
    int64_t deadline = zclock_mono () + 30000;
    int now;
    while ((now = s_tl_acked (writers)) < since + more) {
        ck_assert_msg (zclock_mono () < deadline, "writes stalled: %d "
                       "acknowledged, waited for %d", now, since + more);
        zclock_sleep (10);
    }
    return now;
}

/*  Sends Cluster.TransferLeader to `target` through node `via`.  */
static void
s_transfer (tc_cluster_t *c, int via, int target)
{
    Titan__V1__TransferLeaderRequest tl = TITAN__V1__TRANSFER_LEADER_REQUEST__INIT;
    tl.target_node_id = (char *) tc_node_id (c, target);
    size_t size = titan__v1__transfer_leader_request__get_packed_size (&tl);
    uint8_t buf [64];
    ck_assert_uint_le (size, sizeof buf);
    titan__v1__transfer_leader_request__pack (&tl, buf);
    tc_conn_t *conn = tc_conn_new (tc_client_addr (c, via));
    uint8_t *resp = NULL;
    size_t resp_size = 0;
    char details [256] = "";
    grpc_status_code code = tc_call (conn, "/titan.v1.Cluster/TransferLeader",
                                     buf, size, PUT_MS, &resp, &resp_size,
                                     details, sizeof details);
    ck_assert_msg (code == GRPC_STATUS_OK, "transfer to %s via %s: %s %s",
                   tc_node_id (c, target), tc_node_id (c, via),
                   tc_status_name (code), details);
    free (resp);
    tc_conn_destroy (&conn);
}

START_TEST (test_transfer_under_write_load)
{
    tc_cluster_t *c = tc_new (3);
    ck_assert_int_ge (tc_get_leader (c, 10000), 0);
    volatile int stop = 0;
    tl_writer_t *writers = calloc (TL_WRITERS, sizeof *writers);
    ck_assert_ptr_nonnull (writers);
    pthread_t threads [TL_WRITERS];
    for (int w = 0; w < TL_WRITERS; w++) {
        writers [w].addr = tc_client_addr (c, w % 3);
        writers [w].stop = &stop;
        writers [w].id = w;
        ck_assert_int_eq (pthread_create (&threads [w], NULL, s_tl_writer,
                                          &writers [w]), 0);
    }
    int acked = s_tl_wait_acks (writers, 0, 20);
    for (int t = 0; t < TL_TRANSFERS; t++) {
        int old = tc_get_leader (c, 10000);
        ck_assert_int_ge (old, 0);
        tc_shard_t before;
        ck_assert (tc_shard_status (c, old, &before));
        int target = (old + 1 + t % 2) % 3;
        s_transfer (c, (old + 2 - t % 2) % 3, target);
        int64_t deadline = zclock_mono () + 15000;
        int now;
        while ((now = tc_get_leader (c, 2000)) != target) {
            ck_assert_msg (zclock_mono () < deadline, "transfer %d: leadership "
                           "did not move from %s to %s (leader: %d)", t,
                           tc_node_id (c, old), tc_node_id (c, target), now);
            zclock_sleep (20);
        }
        tc_shard_t after;
        ck_assert (tc_shard_status (c, target, &after));
        ck_assert_uint_gt (after.term, before.term);
        /* writes go on under the new leader before the next transfer */
        acked = s_tl_wait_acks (writers, acked, 20);
    }
    stop = 1;
    for (int w = 0; w < TL_WRITERS; w++)
        ck_assert_int_eq (pthread_join (threads [w], NULL), 0);

    /* every acknowledged write, read linearizably from every node, has its
       value and the revision it was acknowledged at; a write of unknown
       outcome is there with its value or not at all */
    int leader = tc_get_leader (c, 10000);
    ck_assert_int_ge (leader, 0);
    uint64_t expected_keys = 0;
    int unknown = 0;
    char key [32], value [32];
    for (int w = 0; w < TL_WRITERS; w++) {
        for (int k = 0; k < writers [w].sent; k++) {
            s_tl_key (w, k, key, value, sizeof key);
            bool ok = writers [w].codes [k] == GRPC_STATUS_OK;
            for (int i = 0; i < 3; i++) {
                if (!ok && i != leader)
                    continue;
                char *got = NULL;
                uint64_t revision = 0;
                char details [256] = "";
                grpc_status_code code = tc_get (c, i, key, false, PUT_MS, &got,
                                                &revision, details,
                                                sizeof details);
                if (ok) {
                    ck_assert_msg (code == GRPC_STATUS_OK, "acknowledged %s "
                                   "missing on %s: %s %s", key,
                                   tc_node_id (c, i), tc_status_name (code),
                                   details);
                    ck_assert_str_eq (got, value);
                    ck_assert_uint_eq (revision, writers [w].revisions [k]);
                }
                else {
                    unknown++;
                    ck_assert_msg (code == GRPC_STATUS_OK
                                || code == GRPC_STATUS_NOT_FOUND,
                                   "get %s: %s %s", key, tc_status_name (code),
                                   details);
                    if (code == GRPC_STATUS_OK)
                        ck_assert_str_eq (got, value);
                }
                if (code == GRPC_STATUS_OK && i == leader)
                    expected_keys++;
                free (got);
            }
        }
    }
    /* nothing else appeared: once every node has applied all that is
       committed, each holds exactly those keys */
    tc_shard_t ls;
    ck_assert (tc_shard_status (c, leader, &ls));
    for (int i = 0; i < 3; i++) {
        int64_t deadline = zclock_mono () + 10000;
        tc_shard_t st;
        while (!tc_shard_status (c, i, &st) || st.applied_index < ls.commit_index) {
            ck_assert_msg (zclock_mono () < deadline, "%s did not apply up to "
                           "%" PRIu64, tc_node_id (c, i), ls.commit_index);
            zclock_sleep (20);
        }
        ck_assert_msg (st.keys == expected_keys, "%s holds %" PRIu64 " keys, "
                       "expected %" PRIu64, tc_node_id (c, i), st.keys,
                       expected_keys);
    }
    printf ("transfer under load: %d transfers, %d writes acknowledged, "
            "%d of unknown outcome\n", TL_TRANSFERS, s_tl_acked (writers),
            unknown);
    fflush (stdout);
    free (writers);
    tc_destroy (&c);
}
END_TEST

/*  A follower down while the others write past `snapshot_entries` and
    compact their logs: back, it catches up by InstallSnapshot (its status
    counts the install) and serves every key LOCAL.  */
START_TEST (test_snapshot_catch_up)
{
    tc_settings_t settings = {
        .raft = "        snapshot_entries = 40\n"
                "        snapshot_slack = 5\n"
                "        snapshot_chunk_bytes = 4096\n",
        .bitcask = "        snapshot_chunk_bytes = 4096\n",
    };
    tc_cluster_t *c = tc_new_with (3, &settings);
    int leader = tc_get_leader (c, 10000);
    ck_assert_int_ge (leader, 0);
    s_put_series (c, leader, "snap", 0, 20);
    int away = tc_other (c, leader);
    ck_assert (tc_wait_value (c, away, "snap-019", "value-019", 10000));
    tc_shard_t st;
    ck_assert (tc_shard_status (c, away, &st));
    uint64_t away_at = st.applied_index;
    tc_stop_node (c, away);

    /* well past snapshot_entries (+ slack): the entries it lacks are gone
       from the others' logs */
    s_put_series (c, tc_other (c, away), "snap", 20, 200);
    int64_t deadline = zclock_mono () + 10000;
    for (int i = 0; i < 3; i++) {
        if (i == away)
            continue;
        while (!tc_shard_status (c, i, &st)
           ||  st.snapshot_index < away_at + 100) {
            ck_assert_msg (zclock_mono () < deadline, "%s: snapshot at %"
                           PRIu64 ", the follower left at %" PRIu64,
                           tc_node_id (c, i), st.snapshot_index, away_at);
            zclock_sleep (20);
        }
        ck_assert_uint_gt (st.snapshots_taken, 0);
    }

    tc_start_node (c, away);
    deadline = zclock_mono () + 20000;
    while (!tc_shard_status (c, away, &st) || st.snapshots_installed == 0) {
        ck_assert_msg (zclock_mono () < deadline, "%s installed no snapshot "
                       "(applied %" PRIu64 ")", tc_node_id (c, away),
                       st.applied_index);
        zclock_sleep (20);
    }
    ck_assert_uint_gt (st.snapshot_index, away_at);
    char key [64], value [64];
    for (int k = 0; k < 200; k++) {
        s_series ("snap", k, key, value, sizeof key);
        ck_assert_msg (tc_wait_value (c, away, key, value, 10000),
                       "%s missing on %s after the snapshot", key,
                       tc_node_id (c, away));
    }
    /* and it keeps up by entries after it */
    s_put_ok (c, leader == away ? tc_other (c, away) : leader, "after", "1");
    ck_assert (tc_wait_value (c, away, "after", "1", 10000));
    tc_destroy (&c);
}
END_TEST

static int
s_cmp (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

/*  Measurement, not a check of speed: prints the failover times.  */
START_TEST (test_failover_trials)
{
    int trials = atoi (getenv ("INTEG_FAILOVER_TRIALS"));
    ck_assert_int_gt (trials, 0);
    int64_t *times = calloc ((size_t) trials, sizeof *times);
    tc_cluster_t *c = tc_new (3);
    char key [32];
    for (int t = 0; t < trials; t++) {
        int leader = tc_get_leader (c, 10000);
        ck_assert_int_ge (leader, 0);
        int via = (leader + 1) % 3;
        int64_t start = zclock_mono ();
        tc_stop_node (c, leader);
        snprintf (key, sizeof key, "failover-%d", t);
        s_put_ok (c, via, key, "v");   /* retried inside the gateway */
        times [t] = zclock_mono () - start;
        tc_start_node (c, leader);
        ck_assert (tc_wait_value (c, leader, key, "v", 10000));
    }
    qsort (times, (size_t) trials, sizeof *times, s_cmp);
    printf ("failover: %d trials, leader stopped -> first write OK through "
            "another node: median %" PRId64 " ms, max %" PRId64 " ms "
            "(min %" PRId64 ")\n", trials, times [trials / 2],
            times [trials - 1], times [0]);
    fflush (stdout);
    free (times);
    tc_destroy (&c);
}
END_TEST

static Suite *
s_suite (void)
{
    Suite *suite = suite_create ("integration");
    TCase *tc = tcase_create ("cluster");
    tcase_set_timeout (tc, 90);
    tcase_add_test (tc, test_basic_write_read);
    tcase_add_test (tc, test_leader_failure_data_persistence);
    tcase_add_test (tc, test_write_through_follower_forwarded);
    tcase_add_test (tc, test_minority_cannot_commit);
    tcase_add_test (tc, test_fourth_node_joins);
    tcase_add_test (tc, test_membership_over_grpc);
    tcase_add_test (tc, test_forwarding_hop_limit);
    tcase_add_test (tc, test_write_through_follower_no_grpc);
    tcase_add_test (tc, test_transfer_under_write_load);
    tcase_add_test (tc, test_snapshot_catch_up);
    suite_add_tcase (suite, tc);
    const char *trials = getenv ("INTEG_FAILOVER_TRIALS");
    if (trials && atoi (trials) > 0) {
        TCase *failover = tcase_create ("failover");
        tcase_set_timeout (failover, 900);
        tcase_add_test (failover, test_failover_trials);
        suite_add_tcase (suite, failover);
    }
    return suite;
}

int
main (void)
{
    SRunner *runner = srunner_create (s_suite ());
    srunner_run_all (runner, CK_NORMAL);
    int failed = srunner_ntests_failed (runner);
    srunner_free (runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
