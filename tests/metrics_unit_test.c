/*  Unit tests of the metrics pieces that need no running node: the
    gateway's call table (gw_metrics), the Prometheus rendering and the
    readiness verdict of the metrics module (mx_snapshot.h), the shared
    histogram, and the logging API's line format and level filter.  */
#include "check_run.h"
#include "gw_metrics.h"
#include "mx_snapshot.h"
#include "titan/bus_types.h"
#include "titan/histogram_pb.h"
#include "titan/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*  Packs a message and unpacks it again: the snapshot frees what it
    holds with *_free_unpacked, so it must hold unpacked messages.  */
static ProtobufCMessage *
s_roundtrip (const ProtobufCMessage *msg)
{
    size_t size = protobuf_c_message_get_packed_size (msg);
    uint8_t *buf = malloc (size + 1);
    ck_assert_ptr_nonnull (buf);
    protobuf_c_message_pack (msg, buf);
    ProtobufCMessage *out = protobuf_c_message_unpack (msg->descriptor, NULL,
                                                       size, buf);
    free (buf);
    ck_assert_ptr_nonnull (out);
    return out;
}

/*  A raft.status reply: one group (shard 0) of members a and b, led by
    `leader` ("" = none) at `term`.  */
static Titan__Bus__RaftStatusReply *
s_raft_reply (const char *leader, uint64_t term, const char *member)
{
    Titan__Bus__RaftMember m1 = TITAN__BUS__RAFT_MEMBER__INIT;
    Titan__Bus__RaftMember m2 = TITAN__BUS__RAFT_MEMBER__INIT;
    m1.node_id = (char *) member;
    m1.voter = true;
    m2.node_id = "b";
    m2.voter = true;
    Titan__Bus__RaftMember *members [] = { &m1, &m2 };
    Titan__Bus__RaftGroupStatus g = TITAN__BUS__RAFT_GROUP_STATUS__INIT;
    g.shard = 0;
    g.role = strcmp (leader, member) == 0 ? "leader" : "follower";
    g.term = term;
    g.leader_id = (char *) leader;
    g.commit_index = 9;
    g.applied_index = 8;
    g.n_members = 2;
    g.members = members;
    Titan__Bus__RaftGroupStatus *gp = &g;
    Titan__Bus__RaftStatusReply r = TITAN__BUS__RAFT_STATUS_REPLY__INIT;
    r.node_id = "a";
    r.n_groups = 1;
    r.groups = &gp;
    return (Titan__Bus__RaftStatusReply *) s_roundtrip (&r.base);
}

START_TEST (test_histogram_buckets)
{
    titan_hist_t h;
    memset (&h, 0, sizeof h);
    titan_hist_observe (&h, 0);
    titan_hist_observe (&h, 50);          /* on the bound: first bucket */
    titan_hist_observe (&h, 51);
    titan_hist_observe (&h, 10000000);    /* the last finite bound */
    titan_hist_observe (&h, 10000001);    /* +Inf */
    titan_hist_t snap;
    titan_hist_read (&h, &snap);
    ck_assert_uint_eq (snap.counts [0], 2);
    ck_assert_uint_eq (snap.counts [1], 1);
    ck_assert_uint_eq (snap.counts [TITAN_HIST_BOUNDS - 1], 1);
    ck_assert_uint_eq (snap.counts [TITAN_HIST_BOUNDS], 1);
    ck_assert_uint_eq (titan_hist_count (&snap), 5);
    ck_assert_uint_eq (snap.sum_us, 0 + 50 + 51 + 10000000 + 10000001);
}
END_TEST

START_TEST (test_gw_metrics_pack)
{
    gw_metrics_t *m = gw_metrics_new ();
    ck_assert_ptr_nonnull (m);
    gw_metrics_observe (m, "/titan.v1.KV/Put", 0, 100);
    gw_metrics_observe (m, "/titan.v1.KV/Put", 0, 3000);
    gw_metrics_observe (m, "/titan.v1.KV/Put", 0, 20000000);
    gw_metrics_observe (m, "/titan.v1.KV/Get", 5, 40);
    gw_metrics_observe (m, "/no.such/Method", 12, 10);
    gw_metrics_observe (m, "/titan.v1.KV/Get", 99, 10);   /* bad code */
    uint8_t *buf;
    size_t size;
    ck_assert_int_eq (gw_metrics_pack (m, &buf, &size), 0);
    Titan__Bus__GwStatsReply *r = titan__bus__gw_stats_reply__unpack (NULL, size, buf);
    free (buf);
    ck_assert_ptr_nonnull (r);
    ck_assert_int_eq (r->code, TITAN__BUS__CODE__OK);
    ck_assert_uint_eq (r->n_calls, 4);
    int seen = 0;
    for (size_t i = 0; i < r->n_calls; i++) {
        const Titan__Bus__GwCallStats *c = r->calls [i];
        ck_assert_uint_eq (c->latency->n_counts, TITAN_HIST_COUNTS);
        ck_assert_uint_eq (c->latency->n_upper_bounds_us, TITAN_HIST_BOUNDS);
        uint64_t n = 0;
        for (size_t k = 0; k < c->latency->n_counts; k++)
            n += c->latency->counts [k];
        if (strcmp (c->method, "/titan.v1.KV/Put") == 0 && c->code == 0) {
            ck_assert_uint_eq (n, 3);
            ck_assert_uint_eq (c->latency->sum_us, 20003100);
            ck_assert_uint_eq (c->latency->counts [TITAN_HIST_BOUNDS], 1);
            seen |= 1;
        }
        else if (strcmp (c->method, "/titan.v1.KV/Get") == 0 && c->code == 5) {
            ck_assert_uint_eq (n, 1);
            seen |= 2;
        }
        else if (strcmp (c->method, "unknown") == 0 && c->code == 12)
            seen |= 4;
        else if (strcmp (c->method, "/titan.v1.KV/Get") == 0 && c->code == 2)
            seen |= 8;
        else
            ck_abort_msg ("unexpected entry %s %d", c->method, c->code);
    }
    ck_assert_int_eq (seen, 15);

    /* rendered: exact counts, cumulative buckets, +Inf = _count */
    mx_snapshot_t snap;
    memset (&snap, 0, sizeof snap);
    snprintf (snap.node_id, sizeof snap.node_id, "a");
    snap.gw = r;
    snap.present [MX_SRC_GATEWAY] = snap.fresh [MX_SRC_GATEWAY] = true;
    char *text = mx_render (&snap);
    ck_assert_ptr_nonnull (text);
    const char *put = "grpc_service=\"titan.v1.KV\",grpc_method=\"Put\",grpc_code=\"OK\"";
    char line [256];
    snprintf (line, sizeof line, "\ntitan_grpc_requests_total{%s} 3\n", put);
    ck_assert_msg (strstr (text, line), "missing %s in\n%s", line, text);
    snprintf (line, sizeof line, "\ntitan_grpc_request_duration_seconds_bucket{%s,le=\"0.0001\"} 1\n", put);
    ck_assert_msg (strstr (text, line), "missing %s", line);
    snprintf (line, sizeof line, "\ntitan_grpc_request_duration_seconds_bucket{%s,le=\"0.005\"} 2\n", put);
    ck_assert_msg (strstr (text, line), "missing %s", line);
    snprintf (line, sizeof line, "\ntitan_grpc_request_duration_seconds_bucket{%s,le=\"10\"} 2\n", put);
    ck_assert_msg (strstr (text, line), "missing %s", line);
    snprintf (line, sizeof line, "\ntitan_grpc_request_duration_seconds_bucket{%s,le=\"+Inf\"} 3\n", put);
    ck_assert_msg (strstr (text, line), "missing %s", line);
    snprintf (line, sizeof line, "\ntitan_grpc_request_duration_seconds_sum{%s} 20.0031\n", put);
    ck_assert_msg (strstr (text, line), "missing %s", line);
    snprintf (line, sizeof line, "\ntitan_grpc_request_duration_seconds_count{%s} 3\n", put);
    ck_assert_msg (strstr (text, line), "missing %s", line);
    ck_assert_ptr_nonnull (strstr (text, "grpc_service=\"unknown\",grpc_method=\"\",grpc_code=\"UNIMPLEMENTED\"} 1\n"));
    ck_assert_ptr_nonnull (strstr (text, "\n# TYPE titan_grpc_request_duration_seconds histogram\n"));
    /* one HELP and one TYPE per family */
    const char *first = strstr (text, "# TYPE titan_grpc_requests_total counter");
    ck_assert_ptr_nonnull (first);
    ck_assert_ptr_null (strstr (first + 1, "# TYPE titan_grpc_requests_total"));
    free (text);
    mx_snapshot_clear (&snap);
    gw_metrics_destroy (&m);
    ck_assert_ptr_null (m);
}
END_TEST

START_TEST (test_render_labels_and_storage)
{
    mx_snapshot_t snap;
    memset (&snap, 0, sizeof snap);
    snprintf (snap.node_id, sizeof snap.node_id, "n\"1\\x");
    for (int s = 0; s < MX_SOURCES; s++)
        snap.present [s] = snap.fresh [s] = true;
    snap.errors [MX_SRC_STORAGE] = 2;

    Titan__Bus__ModuleInfo info = TITAN__BUS__MODULE_INFO__INIT;
    info.name = "odd\"name";
    info.state = "restarting";
    info.restarts = 3;
    info.held_messages = 7;
    Titan__Bus__ModuleInfo *infos [] = { &info };
    Titan__Bus__ModuleListReply list = TITAN__BUS__MODULE_LIST_REPLY__INIT;
    list.n_modules = 1;
    list.modules = infos;
    snap.modules = (Titan__Bus__ModuleListReply *) s_roundtrip (&list.base);

    titan_hist_t h;
    memset (&h, 0, sizeof h);
    titan_hist_observe (&h, 400);
    titan_hist_observe (&h, 700);
    Titan__Bus__Histogram hp;
    titan_hist_to_pb (&h, &hp);
    Titan__Bus__KvStatsReply st = TITAN__BUS__KV_STATS_REPLY__INIT;
    st.keys = 42;
    st.dead_bytes = 5;
    st.commits = 2;
    st.tail_truncated_bytes = 17;
    st.durable_applied_index = 31;
    st.fsync_latency = &hp;
    Titan__Bus__KvStatsReply *kv = (Titan__Bus__KvStatsReply *) s_roundtrip (&st.base);
    ck_assert_int_eq (mx_snapshot_set_kv (&snap, 0, &kv), 0);
    ck_assert_ptr_null (kv);
    kv = (Titan__Bus__KvStatsReply *) s_roundtrip (&st.base);
    ck_assert_int_eq (mx_snapshot_set_kv (&snap, 0, &kv), 0);   /* replaces */
    ck_assert_uint_eq (snap.nkv, 1);
    snap.raft = s_raft_reply ("a", 4, "a");
    ck_assert_int_eq (mx_snapshot_note_leaders (&snap), 0);

    char *text = mx_render (&snap);
    ck_assert_ptr_nonnull (text);
    const char *want [] = {
        "titan_node_info{node=\"n\\\"1\\\\x\"} 1\n",
        "titan_module_up{module=\"odd\\\"name\"} 0\n",
        "titan_module_restarts_total{module=\"odd\\\"name\"} 3\n",
        "titan_module_held_messages{module=\"odd\\\"name\"} 7\n",
        "titan_scrape_errors_total{source=\"storage\"} 2\n",
        "titan_bitcask_keys{shard=\"0\"} 42\n",
        "titan_bitcask_tail_truncated_bytes{shard=\"0\"} 17\n",
        "titan_bitcask_durable_applied_index{shard=\"0\"} 31\n",
        "titan_bitcask_fsync_duration_seconds_bucket{shard=\"0\",le=\"0.00025\"} 0\n",
        "titan_bitcask_fsync_duration_seconds_bucket{shard=\"0\",le=\"0.0005\"} 1\n",
        "titan_bitcask_fsync_duration_seconds_bucket{shard=\"0\",le=\"0.001\"} 2\n",
        "titan_bitcask_fsync_duration_seconds_bucket{shard=\"0\",le=\"+Inf\"} 2\n",
        "titan_bitcask_fsync_duration_seconds_sum{shard=\"0\"} 0.0011\n",
        "titan_bitcask_fsync_duration_seconds_count{shard=\"0\"} 2\n",
        "titan_raft_term{shard=\"0\"} 4\n",
        "titan_raft_commit_index{shard=\"0\"} 9\n",
        "titan_raft_is_leader{shard=\"0\"} 1\n",
        "titan_raft_members{shard=\"0\"} 2\n",
        "titan_raft_leader_changes_seen_total{shard=\"0\"} 1\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want [0]; i++)
        ck_assert_msg (strstr (text, want [i]), "missing %s in\n%s", want [i], text);
    free (text);
    mx_snapshot_clear (&snap);
}
END_TEST

START_TEST (test_leader_changes)
{
    mx_snapshot_t snap;
    memset (&snap, 0, sizeof snap);
    const struct { const char *leader; uint64_t term; uint64_t changes; } steps [] = {
        { "", 1, 0 },          /* no leader yet: nothing counted */
        { "a", 2, 1 },         /* the first leader counts */
        { "a", 2, 1 },         /* same leader, same term */
        { "", 3, 1 },          /* election running */
        { "a", 3, 2 },         /* re-elected in a new term */
        { "b", 4, 3 },
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps [0]; i++) {
        if (snap.raft)
            titan__bus__raft_status_reply__free_unpacked (snap.raft, NULL);
        snap.raft = s_raft_reply (steps [i].leader, steps [i].term, "a");
        ck_assert_int_eq (mx_snapshot_note_leaders (&snap), 0);
        ck_assert_uint_eq (snap.nleaders, 1);
        ck_assert_uint_eq (snap.leaders [0].changes, steps [i].changes);
    }
    mx_snapshot_clear (&snap);
}
END_TEST

START_TEST (test_readiness)
{
    mx_snapshot_t snap;
    memset (&snap, 0, sizeof snap);
    snprintf (snap.node_id, sizeof snap.node_id, "a");
    char reason [256];
    ck_assert (!mx_ready (&snap, reason, sizeof reason));
    ck_assert_ptr_nonnull (strstr (reason, "no raft module"));

    snap.present [MX_SRC_RAFT] = true;
    snprintf (snap.raft_error, sizeof snap.raft_error, "raft did not answer");
    ck_assert (!mx_ready (&snap, reason, sizeof reason));
    ck_assert_ptr_nonnull (strstr (reason, "raft did not answer"));

    snap.fresh [MX_SRC_RAFT] = true;
    Titan__Bus__RaftStatusReply empty = TITAN__BUS__RAFT_STATUS_REPLY__INIT;
    snap.raft = (Titan__Bus__RaftStatusReply *) s_roundtrip (&empty.base);
    ck_assert (!mx_ready (&snap, reason, sizeof reason));
    ck_assert_ptr_nonnull (strstr (reason, "not a member of any group"));
    titan__bus__raft_status_reply__free_unpacked (snap.raft, NULL);

    snap.raft = s_raft_reply ("b", 2, "c");          /* we are not listed */
    ck_assert (!mx_ready (&snap, reason, sizeof reason));
    ck_assert_ptr_nonnull (strstr (reason, "not a member of shard 0"));
    titan__bus__raft_status_reply__free_unpacked (snap.raft, NULL);

    snap.raft = s_raft_reply ("", 5, "a");
    ck_assert (!mx_ready (&snap, reason, sizeof reason));
    ck_assert_str_eq (reason, "shard 0 has no leader (election in progress, "
                      "or no quorum); term 5");
    titan__bus__raft_status_reply__free_unpacked (snap.raft, NULL);

    snap.raft = s_raft_reply ("b", 5, "a");
    ck_assert (mx_ready (&snap, reason, sizeof reason));
    ck_assert_str_eq (reason, "ready: member of 1 group(s), each with a leader");
    snap.fresh [MX_SRC_RAFT] = false;                 /* stale: not ready */
    ck_assert (!mx_ready (&snap, reason, sizeof reason));
    mx_snapshot_clear (&snap);
}
END_TEST

START_TEST (test_log_line)
{
    int level = -1;
    ck_assert_int_eq (titan_log_level_parse ("DEBUG", &level), 0);
    ck_assert_int_eq (level, TITAN_LOG_DEBUG);
    ck_assert_int_eq (titan_log_level_parse ("warn", &level), 0);
    ck_assert_int_eq (level, TITAN_LOG_WARNING);
    ck_assert_int_eq (titan_log_level_parse ("loud", &level), -EINVAL);
    ck_assert_str_eq (titan_log_level_name (TITAN_LOG_ERROR), "error");

    /* capture stderr in a file */
    char path [] = "/tmp/titan-log-test.XXXXXX";
    int fd = mkstemp (path);
    ck_assert_int_ge (fd, 0);
    int saved = dup (STDERR_FILENO);
    dup2 (fd, STDERR_FILENO);

    titan_logger_t logger;
    titan_logger_init (&logger, "node7", TITAN_LOG_INFO);
    titan_log_bind (&logger, "raft");
    titan_log_debug ("hidden %d", 1);
    titan_log_kv (TITAN_LOG_INFO, "became leader", "term=%d shard=%d", 5, 0);
    titan_log_warning ("raft: quote \" backslash \\ newline \n end");
    ck_assert_int_eq (titan_logger_set_level (&logger, TITAN_LOG_DEBUG), TITAN_LOG_INFO);
    titan_log_debug ("shown %d", 2);
    titan_logger_set_level (&logger, TITAN_LOG_ERROR);
    titan_log_warning ("hidden too");
    titan_log_emit (&logger, "kernel", TITAN_LOG_ERROR, NULL, "from the %s", "kernel");
    titan_log_bind (NULL, NULL);
    titan_log_info ("unbound");

    fflush (stderr);
    dup2 (saved, STDERR_FILENO);
    close (saved);
    char text [4096];
    ssize_t n = pread (fd, text, sizeof text - 1, 0);
    close (fd);
    unlink (path);
    ck_assert_int_gt (n, 0);
    text [n] = 0;
    ck_assert_ptr_null (strstr (text, "hidden"));
    const char *want [] = {
        "Z level=info node=node7 module=raft msg=\"became leader\" term=5 shard=0\n",
        "Z level=warning node=node7 module=raft msg=\"quote \\\" backslash \\\\ newline \\n end\"\n",
        "Z level=debug node=node7 module=raft msg=\"shown 2\"\n",
        "Z level=error node=node7 module=kernel msg=\"from the kernel\"\n",
        "Z level=info node=- module=- msg=\"unbound\"\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want [0]; i++)
        ck_assert_msg (strstr (text, want [i]), "missing %s in\n%s", want [i], text);
    int lines = 0;
    for (char *p = text; *p; p++)
        lines += *p == '\n';
    ck_assert_int_eq (lines, 5);
    /* timestamp: 2026-11-26T02:10:11.123Z */
    ck_assert_int_eq (text [4], '-');
    ck_assert_int_eq (text [10], 'T');
    ck_assert_int_eq (text [19], '.');
    ck_assert_int_eq (text [23], 'Z');
}
END_TEST

int
main (void)
{
    Suite *suite = suite_create ("metrics_unit");
    TCase *tc = tcase_create ("unit");
    tcase_add_test (tc, test_histogram_buckets);
    tcase_add_test (tc, test_gw_metrics_pack);
    tcase_add_test (tc, test_render_labels_and_storage);
    tcase_add_test (tc, test_leader_changes);
    tcase_add_test (tc, test_readiness);
    tcase_add_test (tc, test_log_line);
    suite_add_tcase (suite, tc);
    return titan_check_run (suite, false);
}
