/*  metrics module: renders a snapshot (mx_snapshot.h) in the Prometheus
    text exposition format, version 0.0.4:

        # HELP name text
        # TYPE name counter|gauge|histogram
        name{label="value",...} value

    Every family is written once with all its samples together, label
    values escaped (backslash, quote, newline), histograms as cumulative
    _bucket{le="..."} lines ending in le="+Inf", then _sum and _count, in
    seconds.  Durations are measured in microseconds, so the bounds and
    sums print exactly with six decimals.  */
#include "mx_snapshot.h"
#include "titan/bus_types.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------- text buffer */

typedef struct {
    char *data;
    size_t len, cap;
    bool failed;                 /* out of memory: the result is dropped */
} s_buf_t;

static void
s_printf (s_buf_t *b, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_printf (s_buf_t *b, const char *format, ...)
{
    if (b->failed)
        return;
    while (true) {
        va_list args;
        va_start (args, format);
        int n = vsnprintf (b->data + b->len, b->cap - b->len, format, args);
        va_end (args);
        if (n < 0) {
            b->failed = true;
            return;
        }
        if ((size_t) n < b->cap - b->len) {
            b->len += (size_t) n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t) n + 1;
        char *data = realloc (b->data, cap);
        if (!data) {
            b->failed = true;
            return;
        }
        b->data = data;
        b->cap = cap;
    }
}

/*  Appends a label value, escaped as the format requires.  */
static void
s_label_value (s_buf_t *b, const char *value)
{
    for (const char *p = value ? value : ""; *p; p++) {
        if (*p == '\\')
            s_printf (b, "\\\\");
        else if (*p == '"')
            s_printf (b, "\\\"");
        else if (*p == '\n')
            s_printf (b, "\\n");
        else
            s_printf (b, "%c", *p);
    }
}

static void
s_family (s_buf_t *b, const char *name, const char *type, const char *help)
{
    s_printf (b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/*  Seconds from microseconds, exactly, without trailing zeros.  */
static void
s_seconds (s_buf_t *b, uint64_t us)
{
    char text [48];
    snprintf (text, sizeof text, "%" PRIu64 ".%06" PRIu64, us / 1000000u,
              us % 1000000u);
    size_t n = strlen (text);
    while (text [n - 1] == '0')
        text [--n] = 0;
    if (text [n - 1] == '.')
        text [--n] = 0;
    s_printf (b, "%s", text);
}

/*  One histogram's samples; `labels` is the label list without braces
    (may be empty).  A histogram whose bounds do not have one fewer entry
    than its counts is skipped (a malformed reply).  */
static void
s_histogram (s_buf_t *b, const char *name, const char *labels,
             const Titan__Bus__Histogram *h)
{
    if (!h || h->n_counts != h->n_upper_bounds_us + 1)
        return;
    const char *sep = *labels ? "," : "";
    uint64_t cumulative = 0;
    for (size_t i = 0; i < h->n_upper_bounds_us; i++) {
        cumulative += h->counts [i];
        s_printf (b, "%s_bucket{%s%sle=\"", name, labels, sep);
        s_seconds (b, h->upper_bounds_us [i]);
        s_printf (b, "\"} %" PRIu64 "\n", cumulative);
    }
    cumulative += h->counts [h->n_upper_bounds_us];
    s_printf (b, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, labels,
              sep, cumulative);
    s_printf (b, "%s_sum{%s} ", name, labels);
    s_seconds (b, h->sum_us);
    s_printf (b, "\n%s_count{%s} %" PRIu64 "\n", name, labels, cumulative);
}

/* ---------------------------------------------------------- sources */

const char *
mx_source_name (mx_source_t source)
{
    static const char *const names [MX_SOURCES] = {
        "kernel", "raft", "storage", "gateway"
    };
    return source < MX_SOURCES ? names [source] : "?";
}

static const char *
s_code_name (int code)
{
    static const char *const names [] = {
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
        "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
        "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE",
        "DATA_LOSS", "UNAUTHENTICATED"
    };
    return code >= 0 && code < (int) (sizeof names / sizeof names [0])
         ? names [code] : "UNKNOWN";
}

/*  The shard label of a group: its number, or "meta".  */
static void
s_shard_label (char *out, size_t size, uint32_t shard)
{
    if (shard == TITAN_META_SHARD)
        snprintf (out, size, "shard=\"meta\"");
    else
        snprintf (out, size, "shard=\"%" PRIu32 "\"", shard);
}

static void
s_render_self (s_buf_t *b, const mx_snapshot_t *self)
{
    s_family (b, "titan_node_info", "gauge",
              "Always 1; the node id of this titand as a label.");
    s_printf (b, "titan_node_info{node=\"");
    s_label_value (b, self->node_id);
    s_printf (b, "\"} 1\n");
    s_family (b, "titan_metrics_source_up", "gauge",
              "1 when the source answered the metrics module's last gather "
              "in time, 0 when its figures below are from an earlier one.");
    for (int s = 0; s < MX_SOURCES; s++)
        if (self->present [s])
            s_printf (b, "titan_metrics_source_up{source=\"%s\"} %d\n",
                      mx_source_name ((mx_source_t) s), self->fresh [s] ? 1 : 0);
    s_family (b, "titan_scrape_errors_total", "counter",
              "Gathers in which a source did not answer within "
              "scrape_timeout_ms or answered with an error.");
    for (int s = 0; s < MX_SOURCES; s++)
        s_printf (b, "titan_scrape_errors_total{source=\"%s\"} %" PRIu64 "\n",
                  mx_source_name ((mx_source_t) s), self->errors [s]);
}

static void
s_render_kernel (s_buf_t *b, const Titan__Bus__ModuleListReply *r)
{
    static const struct { const char *name, *type, *help; } families [] = {
        { "titan_module_up", "gauge",
          "1 when the module's actor is running, else 0." },
        { "titan_module_restarts_total", "counter",
          "Restarts of the module by the kernel's supervisor (crash, hang, "
          "admin restart or reload)." },
        { "titan_module_held_messages", "gauge",
          "Bus messages the kernel holds for the module (its queue while it "
          "is not connected or its pipe is full)." },
    };
    for (size_t f = 0; f < 3; f++) {
        s_family (b, families [f].name, families [f].type, families [f].help);
        for (size_t i = 0; i < r->n_modules; i++) {
            const Titan__Bus__ModuleInfo *m = r->modules [i];
            s_printf (b, "%s{module=\"", families [f].name);
            s_label_value (b, m->name);
            uint64_t value = f == 0 ? (uint64_t) (m->state && strcmp (m->state, "running") == 0)
                           : f == 1 ? m->restarts : m->held_messages;
            s_printf (b, "\"} %" PRIu64 "\n", value);
        }
    }
}

static const mx_leader_t *
s_leader (const mx_snapshot_t *self, uint32_t shard)
{
    for (size_t i = 0; i < self->nleaders; i++)
        if (self->leaders [i].shard == shard)
            return &self->leaders [i];
    return NULL;
}

static void
s_render_raft (s_buf_t *b, const mx_snapshot_t *self)
{
    const Titan__Bus__RaftStatusReply *r = self->raft;
    static const struct { const char *name, *type, *help; } families [] = {
        { "titan_raft_term", "gauge", "Current Raft term of the group on this node." },
        { "titan_raft_commit_index", "gauge", "Highest log index known committed." },
        { "titan_raft_applied_index", "gauge", "Highest log index applied to the state machine." },
        { "titan_raft_last_index", "gauge", "Last index in this node's log." },
        { "titan_raft_snapshot_index", "gauge", "Index covered by the latest snapshot." },
        { "titan_raft_is_leader", "gauge", "1 when this node leads the group." },
        { "titan_raft_has_leader", "gauge", "1 when this node knows a leader of the group." },
        { "titan_raft_members", "gauge", "Voting members of the group in this node's configuration." },
        { "titan_raft_leader_changes_seen_total", "counter",
          "Leader changes the metrics module observed (a new leader id or term; "
          "the first leader seen counts)." },
    };
    for (size_t f = 0; f < sizeof families / sizeof families [0]; f++) {
        s_family (b, families [f].name, families [f].type, families [f].help);
        for (size_t i = 0; i < r->n_groups; i++) {
            const Titan__Bus__RaftGroupStatus *g = r->groups [i];
            char label [48];
            s_shard_label (label, sizeof label, g->shard);
            uint64_t value = 0;
            switch (f) {
                case 0: value = g->term; break;
                case 1: value = g->commit_index; break;
                case 2: value = g->applied_index; break;
                case 3: value = g->last_index; break;
                case 4: value = g->snapshot_index; break;
                case 5: value = g->role && strcmp (g->role, "leader") == 0; break;
                case 6: value = g->leader_id && *g->leader_id; break;
                case 7:
                    for (size_t k = 0; k < g->n_members; k++)
                        value += g->members [k]->voter;
                    break;
                default: {
                    const mx_leader_t *l = s_leader (self, g->shard);
                    value = l ? l->changes : 0;
                }
            }
            s_printf (b, "%s{%s} %" PRIu64 "\n", families [f].name, label, value);
        }
    }
}

static void
s_render_storage (s_buf_t *b, const mx_snapshot_t *self)
{
    static const struct { const char *name, *type, *help; } families [] = {
        { "titan_bitcask_keys", "gauge", "Live keys in the shard's keydir." },
        { "titan_bitcask_live_bytes", "gauge", "Bytes of live records in the shard's data files." },
        { "titan_bitcask_dead_bytes", "gauge", "Bytes of overwritten or deleted records (reclaimed by merges)." },
        { "titan_bitcask_data_files", "gauge", "Data files of the shard." },
        { "titan_bitcask_merges_total", "counter", "Merges (compactions) completed since the shard was opened." },
        { "titan_bitcask_commits_total", "counter", "Group commits (one data-file write each) since the shard was opened." },
        { "titan_bitcask_tail_truncated_bytes", "gauge",
          "Bytes of a torn tail cut off the active file when the shard was last opened (crash repair)." },
        { "titan_bitcask_read_errors_total", "counter", "Reads that found a damaged record or a missing data file (DATA_LOSS, then read repair)." },
        { "titan_bitcask_load_errors", "gauge", "Damaged hint files and damaged data-file regions found when the shard was last opened." },
        { "titan_bitcask_repairs_total", "counter", "Damaged records rewritten from a healthy replica (read repair and scrub)." },
        { "titan_bitcask_scrub_passes_total", "counter", "Complete scrub passes since the storage module started." },
        { "titan_bitcask_scrub_records_total", "counter", "Records verified by scrubs since the storage module started." },
        { "titan_bitcask_scrub_errors_total", "counter", "Damaged records found by scrubs since the storage module started." },
        { "titan_bitcask_scrub_last_pass_ms", "gauge", "Duration of the last complete scrub pass, in milliseconds (0: none yet)." },
        { "titan_bitcask_durable_applied_index", "gauge",
          "Raft applied index the shard's last fdatasync covered (apply_sync = interval: "
          "the log is kept above it; up to apply_sync_interval_ms behind the applied index)." },
    };
    for (size_t f = 0; f < sizeof families / sizeof families [0]; f++) {
        s_family (b, families [f].name, families [f].type, families [f].help);
        for (size_t i = 0; i < self->nkv; i++) {
            const Titan__Bus__KvStatsReply *st = self->kv [i].stats;
            char label [48];
            s_shard_label (label, sizeof label, self->kv [i].shard);
            uint64_t values [] = { st->keys, st->live_bytes, st->dead_bytes,
                                   st->data_files, st->merges, st->commits,
                                   st->tail_truncated_bytes, st->read_errors,
                                   st->load_errors, st->repairs,
                                   st->scrub_passes, st->scrub_records,
                                   st->scrub_errors, st->last_scrub_ms,
                                   st->durable_applied_index };
            s_printf (b, "%s{%s} %" PRIu64 "\n", families [f].name, label,
                      values [f]);
        }
    }
    s_family (b, "titan_bitcask_fsync_duration_seconds", "histogram",
              "Latency of the data-file fdatasync of each group commit.");
    for (size_t i = 0; i < self->nkv; i++) {
        char label [48];
        s_shard_label (label, sizeof label, self->kv [i].shard);
        s_histogram (b, "titan_bitcask_fsync_duration_seconds", label,
                     self->kv [i].stats->fsync_latency);
    }
}

/*  "/titan.v1.KV/Put" -> service "titan.v1.KV", method "Put".  */
static void
s_grpc_labels (char *out, size_t size, const char *path, int code)
{
    const char *p = path && *path == '/' ? path + 1 : (path ? path : "");
    const char *slash = strchr (p, '/');
    int service_len = slash ? (int) (slash - p) : (int) strlen (p);
    const char *method = slash ? slash + 1 : "";
    snprintf (out, size, "grpc_service=\"%.*s\",grpc_method=\"%s\","
              "grpc_code=\"%s\"", service_len, p, method, s_code_name (code));
}

static void
s_render_gateway (s_buf_t *b, const Titan__Bus__GwStatsReply *r)
{
    s_family (b, "titan_grpc_requests_total", "counter",
              "gRPC calls this node's gateway finished, by method and status code.");
    char label [256];
    for (size_t i = 0; i < r->n_calls; i++) {
        const Titan__Bus__GwCallStats *c = r->calls [i];
        if (!c->latency)
            continue;
        uint64_t count = 0;
        for (size_t k = 0; k < c->latency->n_counts; k++)
            count += c->latency->counts [k];
        s_grpc_labels (label, sizeof label, c->method, c->code);
        s_printf (b, "titan_grpc_requests_total{%s} %" PRIu64 "\n", label, count);
    }
    s_family (b, "titan_grpc_request_duration_seconds", "histogram",
              "Time from receiving a gRPC call to starting its reply, by method and status code.");
    for (size_t i = 0; i < r->n_calls; i++) {
        const Titan__Bus__GwCallStats *c = r->calls [i];
        s_grpc_labels (label, sizeof label, c->method, c->code);
        s_histogram (b, "titan_grpc_request_duration_seconds", label, c->latency);
    }
}

char *
mx_render (const mx_snapshot_t *self)
{
    s_buf_t b = { malloc (16384), 0, 16384, false };
    if (!b.data)
        return NULL;
    b.data [0] = 0;
    s_render_self (&b, self);
    if (self->modules)
        s_render_kernel (&b, self->modules);
    if (self->raft)
        s_render_raft (&b, self);
    if (self->present [MX_SRC_STORAGE])
        s_render_storage (&b, self);
    if (self->gw)
        s_render_gateway (&b, self->gw);
    if (b.failed) {
        free (b.data);
        return NULL;
    }
    return b.data;
}

/* ---------------------------------------------------------- readiness */

bool
mx_ready (const mx_snapshot_t *self, char *reason, size_t reason_size)
{
    if (!self->present [MX_SRC_RAFT]) {
        snprintf (reason, reason_size, "this node runs no raft module");
        return false;
    }
    if (!self->fresh [MX_SRC_RAFT] || !self->raft) {
        snprintf (reason, reason_size, "raft did not report its status: %s",
                  self->raft_error [0] ? self->raft_error : "no answer");
        return false;
    }
    const Titan__Bus__RaftStatusReply *r = self->raft;
    if (r->n_groups == 0) {
        snprintf (reason, reason_size, "node %s is not a member of any group "
                  "(not joined yet)", self->node_id);
        return false;
    }
    for (size_t i = 0; i < r->n_groups; i++) {
        const Titan__Bus__RaftGroupStatus *g = r->groups [i];
        char label [24];
        if (g->shard == TITAN_META_SHARD)
            snprintf (label, sizeof label, "meta");
        else
            snprintf (label, sizeof label, "%" PRIu32, g->shard);
        bool member = false;
        for (size_t k = 0; k < g->n_members; k++)
            if (g->members [k]->node_id
            &&  strcmp (g->members [k]->node_id, self->node_id) == 0)
                member = true;
        if (!member) {
            snprintf (reason, reason_size, "node %s is not a member of shard "
                      "%s (not joined yet, or removed)", self->node_id, label);
            return false;
        }
        if (!g->leader_id || !*g->leader_id) {
            snprintf (reason, reason_size, "shard %s has no leader (election "
                      "in progress, or no quorum); term %" PRIu64, label, g->term);
            return false;
        }
    }
    snprintf (reason, reason_size, "ready: member of %zu group(s), each with "
              "a leader", r->n_groups);
    return true;
}

/* ---------------------------------------------------------- snapshot */

void
mx_snapshot_clear (mx_snapshot_t *self)
{
    if (self->modules)
        titan__bus__module_list_reply__free_unpacked (self->modules, NULL);
    if (self->raft)
        titan__bus__raft_status_reply__free_unpacked (self->raft, NULL);
    if (self->gw)
        titan__bus__gw_stats_reply__free_unpacked (self->gw, NULL);
    for (size_t i = 0; i < self->nkv; i++)
        titan__bus__kv_stats_reply__free_unpacked (self->kv [i].stats, NULL);
    free (self->kv);
    free (self->leaders);
    memset (self, 0, sizeof *self);
}

int
mx_snapshot_set_kv (mx_snapshot_t *self, uint32_t shard,
                    Titan__Bus__KvStatsReply **stats_p)
{
    for (size_t i = 0; i < self->nkv; i++)
        if (self->kv [i].shard == shard) {
            titan__bus__kv_stats_reply__free_unpacked (self->kv [i].stats, NULL);
            self->kv [i].stats = *stats_p;
            *stats_p = NULL;
            return 0;
        }
    mx_kv_t *kv = realloc (self->kv, (self->nkv + 1) * sizeof *kv);
    if (!kv) {
        titan__bus__kv_stats_reply__free_unpacked (*stats_p, NULL);
        *stats_p = NULL;
        return -ENOMEM;
    }
    self->kv = kv;
    self->kv [self->nkv].shard = shard;
    self->kv [self->nkv].stats = *stats_p;
    self->nkv++;
    *stats_p = NULL;
    return 0;
}

int
mx_snapshot_note_leaders (mx_snapshot_t *self)
{
    if (!self->raft)
        return 0;
    for (size_t i = 0; i < self->raft->n_groups; i++) {
        const Titan__Bus__RaftGroupStatus *g = self->raft->groups [i];
        mx_leader_t *l = (mx_leader_t *) s_leader (self, g->shard);
        if (!l) {
            mx_leader_t *all = realloc (self->leaders,
                                        (self->nleaders + 1) * sizeof *all);
            if (!all)
                return -ENOMEM;
            self->leaders = all;
            l = &all [self->nleaders++];
            memset (l, 0, sizeof *l);
            l->shard = g->shard;
        }
        const char *leader = g->leader_id ? g->leader_id : "";
        if (*leader && (strcmp (leader, l->leader) != 0 || g->term != l->term)) {
            snprintf (l->leader, sizeof l->leader, "%s", leader);
            l->term = g->term;
            l->changes++;
        }
    }
    return 0;
}
