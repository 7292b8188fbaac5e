/*  Tests of forwarded proposals (modules/raft/raft_group_forward.c) on one
    real group on disk with a real transport.  The test plays everything
    around it: the bus broker (a ROUTER the group's bus connection talks
    to), the client that sends raft.propose, the storage module that
    answers kv.apply_batch, and the leader ("L", a bare transport; "M" a
    node that takes over in a later term) whose frames it crafts.

    Follower F: a forwarded write is answered with F's own apply result
    at the (index, term) the leader named; when another term's entry is
    applied at that index (the leader lost it) the answer is UNAVAILABLE,
    never OK; after a leader change the old leader's late answer still
    counts, and no answer within two election timeouts leaves the outcome
    unknown (DEADLINE_EXCEEDED); a refusal is UNAVAILABLE with the leader
    hint; a result from a node that was not asked is dropped.  Leader F
    (a single-voter group): a PROPOSE from a node that is not a member is
    dropped, counted and never appended.  */
#include "check_run.h"

#include <errno.h>
#include <string.h>

#include "titan/bus_types.h"
#include "raft_group.h"
#include "raft_members.h"
#include "raft_transport.h"
#include "raft_wire.h"
#include "raft_group_testutil.h"
#include "raft_log_testutil.h"
#include "test_free_addr.h"

typedef struct {
    char *root;
    char *leader_addr;
    char *follower_addr;
    char endpoint [64];
    zsock_t *router;                /* the bus broker */
    titan_bus_t *bus;               /* the group's bus connection */
    raft_transport_t *leader;       /* the fake leader's transport */
    raft_transport_t *transport;    /* the group's */
    raft_fio_t *fio;
    raft_group_t *group;
    uint64_t corr;                  /* client requests sent so far */
} s_fixture_t;

/*  Receives one envelope at the broker (5 s), with its sender.  */
static titan_envelope_t *
s_broker_recv (s_fixture_t *fx, int timeout_ms)
{
    zsock_set_rcvtimeo (fx->router, timeout_ms);
    zmsg_t *msg = zmsg_recv (fx->router);
    if (!msg)
        return NULL;
    char *id = zmsg_popstr (msg);
    ck_assert_str_eq (id, "raft");
    free (id);
    titan_envelope_t *env = titan_envelope_decode (&msg);
    ck_assert_ptr_nonnull (env);
    return env;
}

/*  The group takes whatever its bus has (replies of the fake storage
    module), then does its work.  */
static void
s_process (s_fixture_t *fx)
{
    titan_envelope_t *env;
    while ((env = titan_bus_try_recv (fx->bus)) != NULL) {
        raft_group_on_reply (fx->group, &env);
        titan_envelope_destroy (&env);
    }
    ck_assert_int_eq (raft_group_process (fx->group), 0);
}

/*  A KvWrite putting key = value, with the dedup pair (client, 1) when
    client is not NULL (packed into buf; returns its size).  */
static size_t
s_kvwrite_as (const char *client, const char *key, const char *value,
              uint8_t *buf)
{
    Titan__Bus__KvOp op = TITAN__BUS__KV_OP__INIT;
    op.kind = TITAN__BUS__KV_OP__KIND__PUT;
    op.key.data = (uint8_t *) key;
    op.key.len = strlen (key);
    op.value.data = (uint8_t *) value;
    op.value.len = strlen (value);
    Titan__Bus__KvWrite w = TITAN__BUS__KV_WRITE__INIT;
    w.op = &op;
    if (client) {
        w.client_id = (char *) client;
        w.sequence = 1;
    }
    return titan__bus__kv_write__pack (&w, buf);
}

static size_t
s_kvwrite (const char *key, const char *value, uint8_t *buf)
{
    return s_kvwrite_as (NULL, key, value, buf);
}

/*  A client's raft.propose of key = value, handed to the group as the
    raft module would; returns its corr.  */
static uint64_t
s_propose_as (s_fixture_t *fx, const char *client, const char *key,
              const char *value)
{
    uint8_t buf [256];
    size_t size = s_kvwrite_as (client, key, value, buf);
    titan_envelope_t *env = titan_envelope_new ("raft", TITAN_T_RAFT_PROPOSE,
                                                TITAN_MSG_REQUEST, ++fx->corr,
                                                buf, size);
    ck_assert_ptr_nonnull (env);
    snprintf (env->from, sizeof env->from, "tester");
    raft_group_propose (fx->group, &env);
    ck_assert_ptr_null (env);               /* taken: forwarded */
    return fx->corr;
}

static uint64_t
s_propose (s_fixture_t *fx, const char *key, const char *value)
{
    return s_propose_as (fx, NULL, key, value);
}

/*  Reads the group's batches to the fake leader until a forwarded
    PROPOSE (5 s); checks it carries `key` = `value`; returns its request
    id.  */
static uint64_t
s_expect_propose_as (s_fixture_t *fx, const char *client, const char *key,
                     const char *value)
{
    raft_transport_flush (fx->transport);
    zpoller_t *poller = zpoller_new (raft_transport_sock (fx->leader), NULL);
    uint64_t id = 0;
    while (!id && zpoller_wait (poller, 5000)) {
        char *from = NULL;
        zmsg_t *batch = NULL;
        ck_assert_int_ge (raft_transport_recv (fx->leader, &from, &batch), 1);
        ck_assert_str_eq (from, "F");
        for (zframe_t *f = zmsg_first (batch); f; f = zmsg_next (batch)) {
            raft_wire_frame_t wf;
            char err [256] = "";
            ck_assert_msg (raft_wire_decode (zframe_data (f), zframe_size (f),
                                             &wf, err, sizeof err) == 0,
                           "%s", err);
            if (wf.kind == RAFT_WIRE_FORWARD) {
                ck_assert_int_eq (wf.forward.kind, RAFT_FORWARD_PROPOSE);
                ck_assert_uint_eq (wf.forward.group, 0);
                uint8_t buf [256];
                size_t size = s_kvwrite_as (client, key, value, buf);
                ck_assert_uint_eq (wf.forward.size, size);
                ck_assert_mem_eq (wf.forward.data, buf, size);
                id = wf.forward.id;
                ck_assert_uint_gt (id, 0);
            }
            raft_wire_frame_clear (&wf);
        }
        zmsg_destroy (&batch);
        zstr_free (&from);
    }
    zpoller_destroy (&poller);
    ck_assert_msg (id, "no forwarded proposal reached the leader");
    return id;
}

static uint64_t
s_expect_propose (s_fixture_t *fx, const char *key, const char *value)
{
    return s_expect_propose_as (fx, NULL, key, value);
}

/*  The leader's RESULT for request `id`, from node `from`.  */
static void
s_result (s_fixture_t *fx, const char *from, uint64_t id, uint32_t code,
          uint64_t index, uint64_t term)
{
    raft_wire_forward_t r = { .group = 0, .kind = RAFT_FORWARD_RESULT,
                              .id = id, .code = code, .index = index,
                              .term = term };
    raft_group_on_forward (fx->group, from, &r);
}

/*  An APPEND from `leader` at `term` of one entry at `index` (entry
    term `eterm`; a put of key = value, or a no-op when key is NULL) after
    (index - 1, prev_term), with commit `commit`.  */
static void
s_append (s_fixture_t *fx, const char *leader, uint64_t term, uint64_t index,
          uint64_t eterm, uint64_t prev_term, const char *key,
          const char *value, uint64_t commit)
{
    uint8_t buf [256], *data = NULL;
    size_t size = 0;
    raft_entry_t e = { eterm, index, RAFT_ENTRY_NOOP, 0, NULL };
    if (key) {
        ck_assert_int_eq (raft_wire_encode_write (buf, s_kvwrite (key, value, buf),
                                                  &data, &size), 0);
        e.type = RAFT_ENTRY_NORMAL;
        e.size = (uint32_t) size;
        e.data = data;
    }
    raft_msg_t m;
    memset (&m, 0, sizeof m);
    m.from = raft_members_id (leader);
    m.to = raft_members_id ("F");
    m.type = RAFT_MSG_APPEND;
    m.term = term;
    m.log_index = index - 1;
    m.log_term = prev_term;
    m.commit = commit;
    m.n_entries = 1;
    m.entries = &e;
    ck_assert_int_eq (raft_group_step (fx->group, &m), 0);
    free (data);
}

/*  Plays the storage module: answers the group's kv.apply_batch requests
    (OK; revisions are the entries' indexes) until the group applied
    `index`.  */
static void
s_apply_until (s_fixture_t *fx, uint64_t index)
{
    int64_t deadline = zclock_mono () + 5000;
    while (true) {
        ck_assert (zclock_mono () < deadline);
        s_process (fx);
        if (raft_group_applied (fx->group) >= index)
            break;
        titan_envelope_t *env = s_broker_recv (fx, 50);
        if (!env)
            continue;
        if (env->kind == TITAN_MSG_REQUEST
        &&  streq (env->type, TITAN_T_KV_APPLY_BATCH)) {
            Titan__Bus__KvApplyBatch *b = titan__bus__kv_apply_batch__unpack (
                NULL, titan_envelope_size (env), titan_envelope_data (env));
            ck_assert_ptr_nonnull (b);
            Titan__Bus__KvApplyBatchReply r =
                TITAN__BUS__KV_APPLY_BATCH_REPLY__INIT;
            r.applied_index = b->applied_index;
            titan__bus__kv_apply_batch__free_unpacked (b, NULL);
            uint8_t buf [64];
            size_t size = titan__bus__kv_apply_batch_reply__pack (&r, buf);
            titan_envelope_t *reply = titan_envelope_new ("raft",
                TITAN_T_KV_APPLY_BATCH, TITAN_MSG_REPLY, env->corr, buf, size);
            snprintf (reply->from, sizeof reply->from, "bitcask");
            zmsg_t *msg = titan_envelope_encode (&reply);
            zmsg_pushstr (msg, "raft");
            ck_assert_int_eq (zmsg_send (&msg, fx->router), 0);
        }
        else
            ck_assert_msg (env->kind != TITAN_MSG_REPLY,
                           "a client was answered before the apply: %s",
                           env->type);
        titan_envelope_destroy (&env);
    }
}

/*  The client's answer to request `corr` (5 s), skipping the group's
    other bus traffic.  */
static Titan__Bus__KvReply *
s_answer (s_fixture_t *fx, uint64_t corr)
{
    int64_t deadline = zclock_mono () + 5000;
    while (zclock_mono () < deadline) {
        s_process (fx);
        titan_envelope_t *env = s_broker_recv (fx, 50);
        if (!env)
            continue;
        bool ours = env->kind == TITAN_MSG_REPLY && streq (env->to, "tester")
                 && env->corr == corr;
        Titan__Bus__KvReply *r = ours ? titan__bus__kv_reply__unpack (NULL,
            titan_envelope_size (env), titan_envelope_data (env)) : NULL;
        titan_envelope_destroy (&env);
        if (ours) {
            ck_assert_ptr_nonnull (r);
            return r;
        }
    }
    ck_abort_msg ("request %llu was not answered", (unsigned long long) corr);
    return NULL;
}

/*  No answer to any client within `ms` (other bus traffic is dropped). */
static void
s_no_answer (s_fixture_t *fx, int ms)
{
    int64_t deadline = zclock_mono () + ms;
    while (zclock_mono () < deadline) {
        s_process (fx);
        titan_envelope_t *env = s_broker_recv (fx, 20);
        if (env)
            ck_assert_msg (env->kind != TITAN_MSG_REPLY
                           || !streq (env->to, "tester"),
                           "a client was answered");
        titan_envelope_destroy (&env);
    }
}

static void
s_open (s_fixture_t *fx, bool bootstrap)
{
    static int opened;
    memset (fx, 0, sizeof *fx);
    fx->root = tu_tmpdir ("raft-group-forward");
    fx->leader_addr = tu_free_addr ();
    fx->follower_addr = tu_free_addr ();
    snprintf (fx->endpoint, sizeof fx->endpoint, "inproc://raft-fwd-%d",
              ++opened);
    fx->router = zsock_new_router (fx->endpoint);
    ck_assert_ptr_nonnull (fx->router);
    fx->bus = titan_bus_connect (fx->endpoint, "raft");
    ck_assert_ptr_nonnull (fx->bus);
    titan_envelope_t *hello = s_broker_recv (fx, 5000);
    ck_assert_ptr_nonnull (hello);
    titan_envelope_destroy (&hello);
    char err [256] = "";
    ck_assert_msg (raft_transport_new ("L", fx->leader_addr, 1 << 20,
                                       &fx->leader, err, sizeof err) == 0,
                   "%s", err);
    ck_assert_msg (raft_transport_new ("F", fx->follower_addr, 1 << 20,
                                       &fx->transport, err, sizeof err) == 0,
                   "%s", err);
    fx->fio = raft_fio_new ();
    raft_fio_set_nosync (fx->fio, true);
    char dir [600];
    snprintf (dir, sizeof dir, "%s/shard-0", fx->root);
    raft_group_config_t gc = {
        .shard = 0, .dir = dir, .bootstrap = bootstrap,
        .election_ticks = 10, .heartbeat_ticks = 2,
        .max_value_bytes = 1024, .storage_module = "bitcask",
        .propose_timeout_ms = 10000, .read_timeout_ms = 10000,
        .election_us = 100000,
        .forward_proposals = true,
        .bus = fx->bus, .transport = fx->transport, .fio = fx->fio,
    };
    snprintf (gc.self.node_id, sizeof gc.self.node_id, "F");
    snprintf (gc.self.peer_addr, sizeof gc.self.peer_addr, "%s",
              fx->follower_addr);
    ck_assert_msg (raft_group_new (&gc, &fx->group, err, sizeof err) == 0,
                   "%s", err);
    tg_meet_leader (fx->group, fx->transport, fx->leader, fx->leader_addr);
    if (!bootstrap) {
        //  L leads term 1: a no-op at index 1, committed and applied.
        s_append (fx, "L", 1, 1, 1, 0, NULL, NULL, 1);
        s_apply_until (fx, 1);
        ck_assert_uint_eq (raft_leader (raft_group_core (fx->group)),
                           raft_members_id ("L"));
    }
}

static void
s_close (s_fixture_t *fx)
{
    raft_group_destroy (&fx->group);
    /* whatever the group answered at its close */
    titan_envelope_t *env;
    while ((env = s_broker_recv (fx, 0)) != NULL)
        titan_envelope_destroy (&env);
    raft_fio_destroy (&fx->fio);
    raft_transport_destroy (&fx->transport);
    raft_transport_destroy (&fx->leader);
    titan_bus_destroy (&fx->bus);
    zsock_destroy (&fx->router);
    tu_rmrf (fx->root);
    free (fx->root);
    zstr_free (&fx->leader_addr);
    zstr_free (&fx->follower_addr);
}

START_TEST (test_forwarded_write_applied)
{
    s_fixture_t fx;
    s_open (&fx, false);
    uint64_t corr = s_propose (&fx, "k", "v");
    uint64_t id = s_expect_propose (&fx, "k", "v");
    ck_assert_uint_eq (raft_group_forward_stats (fx.group).sent, 1);
    s_result (&fx, "L", id, 0, 2, 1);
    s_no_answer (&fx, 50);                  /* appended, not yet applied */
    s_append (&fx, "L", 1, 2, 1, 1, "k", "v", 2);
    s_apply_until (&fx, 2);
    Titan__Bus__KvReply *r = s_answer (&fx, corr);
    ck_assert_msg (r->code == TITAN__BUS__CODE__OK, "%d %s", r->code,
                   r->message);
    ck_assert_uint_eq (r->revision, 2);
    titan__bus__kv_reply__free_unpacked (r, NULL);
    raft_group_forward_stats_t st = raft_group_forward_stats (fx.group);
    ck_assert_uint_eq (st.appended, 1);
    ck_assert_uint_eq (st.dropped, 0);
    s_close (&fx);
}
END_TEST

/*  The leader appended the write at (2, 1), then lost leadership before
    it committed: M, elected in term 2, puts its own entry at index 2.  */
START_TEST (test_forwarded_write_overwritten)
{
    s_fixture_t fx;
    s_open (&fx, false);
    uint64_t corr = s_propose (&fx, "k", "lost");
    uint64_t id = s_expect_propose (&fx, "k", "lost");
    s_result (&fx, "L", id, 0, 2, 1);
    s_append (&fx, "M", 2, 2, 2, 1, "k", "other", 2);
    s_apply_until (&fx, 2);
    Titan__Bus__KvReply *r = s_answer (&fx, corr);
    ck_assert_msg (r->code == TITAN__BUS__CODE__UNAVAILABLE, "%d %s", r->code,
                   r->message);
    ck_assert_ptr_nonnull (strstr (r->message, "replaced"));
    titan__bus__kv_reply__free_unpacked (r, NULL);
    s_close (&fx);
}
END_TEST

/*  A new leader (M, term 2) before L answered.  L, alive, answers one
    request after all: appended at (2, 1), and M's entry at index 2 makes
    it UNAVAILABLE.  The other gets no answer: two election timeouts
    (200 ms) after M was seen, DEADLINE_EXCEEDED, since L may have
    appended it.  */
START_TEST (test_leader_change_before_result)
{
    s_fixture_t fx;
    s_open (&fx, false);
    uint64_t late = s_propose (&fx, "k", "v");
    uint64_t late_id = s_expect_propose (&fx, "k", "v");
    uint64_t silent = s_propose (&fx, "k2", "v2");
    s_expect_propose (&fx, "k2", "v2");
    int64_t changed = zclock_mono ();
    s_append (&fx, "M", 2, 2, 2, 1, NULL, NULL, 1);
    s_process (&fx);
    s_result (&fx, "L", late_id, 0, 2, 1);
    Titan__Bus__KvReply *r = s_answer (&fx, silent);
    ck_assert_msg (r->code == TITAN__BUS__CODE__DEADLINE_EXCEEDED, "%d %s",
                   r->code, r->message);
    ck_assert_ptr_nonnull (strstr (r->message, "outcome unknown"));
    ck_assert_int_ge (zclock_mono () - changed, 200);
    ck_assert_int_lt (zclock_mono () - changed, 3000);
    titan__bus__kv_reply__free_unpacked (r, NULL);
    ck_assert_uint_eq (raft_group_forward_stats (fx.group).expired, 1);
    s_append (&fx, "M", 2, 2, 2, 1, NULL, NULL, 2);
    s_apply_until (&fx, 2);
    r = s_answer (&fx, late);
    ck_assert_msg (r->code == TITAN__BUS__CODE__UNAVAILABLE, "%d %s", r->code,
                   r->message);
    titan__bus__kv_reply__free_unpacked (r, NULL);
    s_close (&fx);
}
END_TEST

/*  A forwarded write with a client_id whose leader changed before it
    answered is proposed again (the dedup table applies it at most once):
    here to the new leader M, whose address this node does not know, so
    it is refused UNAVAILABLE (not the leader) -- which the gateway
    retries -- rather than DEADLINE_EXCEEDED (outcome unknown).  */
START_TEST (test_leader_change_reproposes_dedup_write)
{
    s_fixture_t fx;
    s_open (&fx, false);
    uint64_t corr = s_propose_as (&fx, "c1", "k", "v");
    s_expect_propose_as (&fx, "c1", "k", "v");
    s_append (&fx, "M", 2, 2, 2, 1, NULL, NULL, 1);
    s_process (&fx);
    Titan__Bus__KvReply *r = s_answer (&fx, corr);
    ck_assert_msg (r->code == TITAN__BUS__CODE__UNAVAILABLE, "%d %s",
                   r->code, r->message);
    ck_assert_ptr_nonnull (strstr (r->message, "not the leader"));
    titan__bus__kv_reply__free_unpacked (r, NULL);
    ck_assert_uint_eq (raft_group_forward_stats (fx.group).expired, 1);
    s_close (&fx);
}
END_TEST

/*  A refusal is UNAVAILABLE with the leader hint (the gateway falls back
    to its gRPC forward); a result from a node that was not asked, or for
    a request id never sent, is dropped.  */
START_TEST (test_refused_and_stray_results)
{
    s_fixture_t fx;
    s_open (&fx, false);
    uint64_t corr = s_propose (&fx, "k", "v");
    uint64_t id = s_expect_propose (&fx, "k", "v");
    s_result (&fx, "M", id, 0, 2, 1);               /* not asked */
    s_result (&fx, "L", id + 100, 0, 2, 1);         /* never sent */
    ck_assert_uint_eq (raft_group_forward_stats (fx.group).dropped, 2);
    s_no_answer (&fx, 50);
    s_result (&fx, "L", id, TITAN__BUS__CODE__UNAVAILABLE, 0, 0);
    Titan__Bus__KvReply *r = s_answer (&fx, corr);
    ck_assert_int_eq (r->code, TITAN__BUS__CODE__UNAVAILABLE);
    ck_assert_str_eq (r->leader_id, "L");
    titan__bus__kv_reply__free_unpacked (r, NULL);
    ck_assert_uint_eq (raft_group_forward_stats (fx.group).refused, 1);
    s_close (&fx);
}
END_TEST

/*  F leads a group of one voter: a PROPOSE from L, which is no member, is
    dropped and counted; nothing is appended and L gets no RESULT.  */
START_TEST (test_propose_from_non_member_dropped)
{
    s_fixture_t fx;
    s_open (&fx, true);
    int64_t deadline = zclock_mono () + 5000;
    while (raft_role (raft_group_core (fx.group)) != RAFT_LEADER) {
        ck_assert (zclock_mono () < deadline);
        ck_assert_int_eq (raft_group_tick (fx.group), 0);
        s_process (&fx);
    }
    for (int i = 0; i < 5; i++)             /* its own member info */
        s_process (&fx);
    uint64_t last = raft_last_index (raft_group_core (fx.group));
    raft_transport_flush (fx.transport);
    uint64_t sent = raft_transport_stats (fx.transport).messages_sent;
    uint8_t buf [256];
    size_t size = s_kvwrite ("k", "v", buf);
    raft_wire_forward_t p = { .group = 0, .kind = RAFT_FORWARD_PROPOSE,
                              .id = 7, .size = size, .data = buf };
    raft_group_on_forward (fx.group, "L", &p);
    s_process (&fx);
    raft_transport_flush (fx.transport);
    ck_assert_uint_eq (raft_group_forward_stats (fx.group).dropped, 1);
    ck_assert_uint_eq (raft_group_forward_stats (fx.group).served, 0);
    ck_assert_uint_eq (raft_last_index (raft_group_core (fx.group)), last);
    ck_assert_uint_eq (raft_transport_stats (fx.transport).messages_sent, sent);
    s_close (&fx);
}
END_TEST

int
main (void)
{
    Suite *suite = suite_create ("raft_group_forward");
    TCase *tc = tcase_create ("forward");
    tcase_set_timeout (tc, 30);
    tcase_add_test (tc, test_forwarded_write_applied);
    tcase_add_test (tc, test_forwarded_write_overwritten);
    tcase_add_test (tc, test_leader_change_before_result);
    tcase_add_test (tc, test_leader_change_reproposes_dedup_write);
    tcase_add_test (tc, test_refused_and_stray_results);
    tcase_add_test (tc, test_propose_from_non_member_dropped);
    suite_add_tcase (suite, tc);
    return titan_check_run (suite, false);
}
