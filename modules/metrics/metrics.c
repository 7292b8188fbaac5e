/*  metrics module: the node's Prometheus endpoint, /healthz and /readyz
    (mx_http.h), as a module actor.  Optional: it runs only when listed in
    the config's modules section (docs/operations.md).

    It never reads another module's memory: it gathers by asking over the
    bus, all at once with one deadline (scrape_timeout_ms):
      - the kernel: admin.list (module states, restarts, held messages),
      - raft: raft.status (term, commit, applied, leader per group), and
        then the storage module: kv.stats for each data shard raft hosts
        (keys, bytes, merges, commits, fsync latency histogram),
      - the gateway: gw.stats (calls per method and status, latencies).
    Replies update a cached snapshot (mx_snapshot.h); a source that does
    not answer by the deadline keeps its previous figures, is reported
    with titan_metrics_source_up 0 and counts in titan_scrape_errors_total,
    and a reply that comes later is dropped.  A request to a module the
    node does not run is answered UNIMPLEMENTED by the kernel at once:
    that source is simply left out.

    A gather runs when the HTTP thread asks for one (each /metrics and
    /readyz request; requests that arrive during a gather are answered by
    the next one, which starts as soon as that one ends, so an answer
    always reflects what happened before its request) and every poll_ms,
    so that leader changes are observed between scrapes.

    Settings (modules/metrics): listen (HOST:PORT, default
    127.0.0.1:7402; port 0 picks a free port, logged and answered to
    "PORT" on the pipe; "0" disables HTTP), scrape_timeout_ms (1000),
    poll_ms (1000; 0: gather only on request), raft (module name, "raft"),
    storage ("bitcask"), gateway ("grpc_gateway").  */
#include "mx_http.h"
#include "mx_snapshot.h"

#include "titan/bus.h"
#include "titan/bus_types.h"
#include "titan/log.h"
#include "titan/module.h"
#include "bus.pb-c.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define MX_VERSION "0.1.0"
#define MX_DEFAULT_LISTEN "127.0.0.1:7402"
#define MX_MAX_WAITS 1024           /* outstanding requests of one gather */

/*  A request of the gather in flight.  */
typedef struct {
    uint64_t corr;
    mx_source_t source;
    uint32_t shard;                 /* kv.stats */
} s_wait_t;

typedef struct {
    titan_module_ctx_t *ctx;
    zsock_t *pipe;
    titan_bus_t *bus;
    zsock_t *pair;                  /* to the HTTP thread */
    mx_http_t *http;
    const char *raft, *storage, *gateway;
    int64_t timeout_ms, poll_ms;
    mx_snapshot_t snap;
    /* the gather in flight */
    bool gathering;
    int64_t deadline;
    s_wait_t waits [MX_MAX_WAITS];
    size_t nwaits;
    bool failed [MX_SOURCES];
    bool answered [MX_SOURCES];
    zlist_t *seqs;                  /* HTTP requests this gather answers */
    zlist_t *queued;                /* HTTP requests for the next gather */
    int64_t next_poll;
} s_metrics_t;

/* ---------------------------------------------------------- gathering */

static void
s_request (s_metrics_t *self, mx_source_t source, const char *to,
           const char *type, const ProtobufCMessage *msg, uint32_t shard)
{
    if (self->nwaits == MX_MAX_WAITS) {
        self->failed [source] = true;
        return;
    }
    uint8_t buf [64];                /* the requests are a few bytes */
    assert (!msg || protobuf_c_message_get_packed_size (msg) <= sizeof buf);
    size_t size = msg ? protobuf_c_message_pack (msg, buf) : 0;
    uint64_t corr = 0;
    if (titan_bus_request (self->bus, to, type, buf, size, &corr) != 0) {
        self->failed [source] = true;
        return;
    }
    s_wait_t *w = &self->waits [self->nwaits++];
    w->corr = corr;
    w->source = source;
    w->shard = shard;
}

static void
s_request_kv_stats (s_metrics_t *self, uint32_t shard)
{
    Titan__Bus__KvStatsRequest q = TITAN__BUS__KV_STATS_REQUEST__INIT;
    q.shard = shard;
    s_request (self, MX_SRC_STORAGE, self->storage, TITAN_T_KV_STATS,
               &q.base, shard);
}

static void
s_gather_start (s_metrics_t *self)
{
    if (self->gathering)
        return;
    self->gathering = true;
    self->deadline = zclock_mono () + self->timeout_ms;
    self->nwaits = 0;
    memset (self->failed, 0, sizeof self->failed);
    memset (self->answered, 0, sizeof self->answered);
    memset (self->snap.fresh, 0, sizeof self->snap.fresh);
    Titan__Bus__ModuleListRequest list = TITAN__BUS__MODULE_LIST_REQUEST__INIT;
    s_request (self, MX_SRC_KERNEL, TITAN_KERNEL_NAME, TITAN_T_MODULE_LIST,
               &list.base, 0);
    Titan__Bus__RaftStatusRequest status = TITAN__BUS__RAFT_STATUS_REQUEST__INIT;
    s_request (self, MX_SRC_RAFT, self->raft, TITAN_T_RAFT_STATUS,
               &status.base, 0);
    Titan__Bus__GwStatsRequest gw = TITAN__BUS__GW_STATS_REQUEST__INIT;
    s_request (self, MX_SRC_GATEWAY, self->gateway, TITAN_T_GW_STATS,
               &gw.base, 0);
}

/*  The gather is over (every reply in, or the deadline): account for the
    sources that missed it and answer the HTTP requests waiting.  */
static void
s_gather_finish (s_metrics_t *self)
{
    for (size_t i = 0; i < self->nwaits; i++) {
        self->failed [self->waits [i].source] = true;
        if (self->waits [i].source == MX_SRC_RAFT)
            snprintf (self->snap.raft_error, sizeof self->snap.raft_error,
                      "%s did not answer raft.status within %" PRId64 " ms",
                      self->raft, self->timeout_ms);
    }
    self->nwaits = 0;
    for (int s = 0; s < MX_SOURCES; s++) {
        if (self->failed [s] && self->snap.present [s]) {
            self->snap.errors [s]++;
            self->snap.fresh [s] = false;
        }
        else
            self->snap.fresh [s] = self->answered [s];
    }
    self->gathering = false;
    if (zlist_size (self->seqs) == 0)
        return;
    char reason [256];
    bool ready = mx_ready (&self->snap, reason, sizeof reason);
    char *text = mx_render (&self->snap);
    if (!text)
        titan_log_error ("metrics: out of memory rendering the metrics page");
    char *seq;
    while ((seq = zlist_pop (self->seqs))) {
        zmsg_t *msg = zmsg_new ();
        zmsg_addstr (msg, seq);
        zmsg_addstr (msg, ready ? "1" : "0");
        zmsg_addstr (msg, reason);
        zmsg_addstr (msg, text ? text : "# out of memory\n");
        zmsg_send (&msg, self->pair);
        free (seq);
    }
    free (text);
}

/*  Starts a gather for the HTTP requests queued during the last one.  */
static void
s_gather_queued (s_metrics_t *self)
{
    if (self->gathering || zlist_size (self->queued) == 0)
        return;
    char *seq;
    while ((seq = zlist_pop (self->queued)))
        zlist_append (self->seqs, seq);
    s_gather_start (self);
    if (self->nwaits == 0)
        s_gather_finish (self);            /* nothing could be sent */
}

/*  Takes the result of one source's reply: `code` from its payload.  A
    module the node does not run (UNIMPLEMENTED from the kernel) is left
    out without an error.  Returns true when the reply is usable.  */
static bool
s_outcome (s_metrics_t *self, mx_source_t source, int code, const char *message)
{
    if (code == TITAN__BUS__CODE__UNIMPLEMENTED && source != MX_SRC_KERNEL) {
        self->snap.present [source] = false;
        return false;
    }
    self->snap.present [source] = true;
    if (code != TITAN__BUS__CODE__OK) {
        self->failed [source] = true;
        if (source == MX_SRC_RAFT)
            snprintf (self->snap.raft_error, sizeof self->snap.raft_error,
                      "%s", message && *message ? message : "error");
        titan_log_debug ("metrics: %s answered code %d: %s",
                         mx_source_name (source), code, message ? message : "");
        return false;
    }
    if (source != MX_SRC_STORAGE || !self->failed [source])
        self->answered [source] = true;
    return true;
}

static void
s_on_reply (s_metrics_t *self, const s_wait_t *w, const titan_envelope_t *env)
{
    const uint8_t *data = titan_envelope_data (env);
    size_t size = titan_envelope_size (env);
    switch (w->source) {
        case MX_SRC_KERNEL: {
            Titan__Bus__ModuleListReply *r =
                titan__bus__module_list_reply__unpack (NULL, size, data);
            if (r && s_outcome (self, w->source, r->code, r->message)) {
                if (self->snap.modules)
                    titan__bus__module_list_reply__free_unpacked (self->snap.modules, NULL);
                self->snap.modules = r;
                r = NULL;
            }
            else if (!r)
                self->failed [w->source] = true;
            if (r)
                titan__bus__module_list_reply__free_unpacked (r, NULL);
            break;
        }
        case MX_SRC_RAFT: {
            Titan__Bus__RaftStatusReply *r =
                titan__bus__raft_status_reply__unpack (NULL, size, data);
            bool ok = r && s_outcome (self, w->source, r->code, r->message);
            if (!r)
                self->failed [w->source] = true;
            if (ok) {
                if (self->snap.raft)
                    titan__bus__raft_status_reply__free_unpacked (self->snap.raft, NULL);
                self->snap.raft = r;
                r = NULL;
                self->snap.raft_error [0] = 0;
                if (mx_snapshot_note_leaders (&self->snap))
                    titan_log_error ("metrics: out of memory noting leaders");
                for (size_t i = 0; i < self->snap.raft->n_groups; i++) {
                    uint32_t shard = self->snap.raft->groups [i]->shard;
                    if (shard != TITAN_META_SHARD)
                        s_request_kv_stats (self, shard);
                }
            }
            else
            if (!self->snap.present [MX_SRC_RAFT])
                s_request_kv_stats (self, 0);    /* storage without raft */
            if (r)
                titan__bus__raft_status_reply__free_unpacked (r, NULL);
            break;
        }
        case MX_SRC_STORAGE: {
            Titan__Bus__KvStatsReply *r =
                titan__bus__kv_stats_reply__unpack (NULL, size, data);
            if (r && s_outcome (self, w->source, r->code, r->message)) {
                if (mx_snapshot_set_kv (&self->snap, w->shard, &r))
                    self->failed [w->source] = true;
            }
            else if (!r)
                self->failed [w->source] = true;
            if (r)
                titan__bus__kv_stats_reply__free_unpacked (r, NULL);
            break;
        }
        case MX_SRC_GATEWAY: {
            Titan__Bus__GwStatsReply *r =
                titan__bus__gw_stats_reply__unpack (NULL, size, data);
            if (r && s_outcome (self, w->source, r->code, r->message)) {
                if (self->snap.gw)
                    titan__bus__gw_stats_reply__free_unpacked (self->snap.gw, NULL);
                self->snap.gw = r;
                r = NULL;
            }
            else if (!r)
                self->failed [w->source] = true;
            if (r)
                titan__bus__gw_stats_reply__free_unpacked (r, NULL);
            break;
        }
        default:
            break;
    }
}

/*  Handles the next bus message if one waits; false when none did.  */
static bool
s_on_bus (s_metrics_t *self)
{
    titan_envelope_t *env = titan_bus_try_recv (self->bus);
    if (!env)
        return false;
    if (env->kind == TITAN_MSG_REPLY) {
        for (size_t i = 0; i < self->nwaits; i++)
            if (self->waits [i].corr == env->corr) {
                s_wait_t w = self->waits [i];
                self->waits [i] = self->waits [--self->nwaits];
                s_on_reply (self, &w, env);
                break;
            }
        /* else: late, for a gather already finished; dropped */
        if (self->gathering && self->nwaits == 0) {
            s_gather_finish (self);
            s_gather_queued (self);
        }
    }
    else if (env->kind == TITAN_MSG_REQUEST) {
        Titan__Bus__AdminReply reply = TITAN__BUS__ADMIN_REPLY__INIT;
        reply.code = TITAN__BUS__CODE__UNIMPLEMENTED;
        reply.message = "metrics serves no bus requests";
        uint8_t buf [128];
        size_t size = titan__bus__admin_reply__pack (&reply, buf);
        titan_bus_reply (self->bus, env, buf, size);
    }
    titan_envelope_destroy (&env);
    return true;
}

static void
s_on_http (s_metrics_t *self)
{
    zmsg_t *msg = zmsg_recv (self->pair);
    if (!msg)
        return;
    char *command = zmsg_popstr (msg);
    char *seq = zmsg_popstr (msg);
    if (command && seq && streq (command, "GATHER")) {
        /* a gather in flight may have asked before this request came:
           the request gets the next one, so that it sees every call
           finished before it */
        zlist_append (self->queued, seq);
        seq = NULL;
        s_gather_queued (self);
    }
    zstr_free (&command);
    zstr_free (&seq);
    zmsg_destroy (&msg);
}

/* ---------------------------------------------------------- life cycle */

static void
s_metrics_destroy (s_metrics_t **self_p)
{
    s_metrics_t *self = *self_p;
    if (!self)
        return;
    mx_http_destroy (&self->http);     /* first: its thread uses the PAIR */
    zsock_destroy (&self->pair);
    titan_bus_destroy (&self->bus);
    zlist_t **lists [] = { &self->seqs, &self->queued };
    for (size_t i = 0; i < 2; i++)
        if (*lists [i]) {
            char *seq;
            while ((seq = zlist_pop (*lists [i])))
                free (seq);
            zlist_destroy (lists [i]);
        }
    mx_snapshot_clear (&self->snap);
    free (self);
    *self_p = NULL;
}

static s_metrics_t *
s_metrics_new (titan_module_ctx_t *ctx)
{
    s_metrics_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (ctx->error, sizeof ctx->error, "metrics: out of memory");
        return NULL;
    }
    self->ctx = ctx;
    snprintf (self->snap.node_id, sizeof self->snap.node_id, "%s", ctx->node_id);
    for (int s = 0; s < MX_SOURCES; s++)
        self->snap.present [s] = true;
    int bad_timeout = 0, bad_poll = 0;
    self->timeout_ms = titan_setting_int (ctx->settings, "scrape_timeout_ms",
                                          1000, &bad_timeout);
    self->poll_ms = titan_setting_int (ctx->settings, "poll_ms", 1000, &bad_poll);
    if (bad_timeout || self->timeout_ms < 10 || self->timeout_ms > 60000
    ||  bad_poll || self->poll_ms < 0 || self->poll_ms > 3600000) {
        snprintf (ctx->error, sizeof ctx->error, "metrics: scrape_timeout_ms "
                  "must be 10..60000 and poll_ms 0..3600000 (whole numbers)");
        s_metrics_destroy (&self);
        return NULL;
    }
    self->raft = titan_setting_str (ctx->settings, "raft", "raft");
    self->storage = titan_setting_str (ctx->settings, "storage", "bitcask");
    self->gateway = titan_setting_str (ctx->settings, "gateway", "grpc_gateway");
    self->seqs = zlist_new ();
    self->queued = zlist_new ();
    self->bus = titan_bus_connect (ctx->bus_endpoint, ctx->module_name);
    if (!self->seqs || !self->queued || !self->bus) {
        snprintf (ctx->error, sizeof ctx->error,
                  "metrics: cannot connect to the bus at %s", ctx->bus_endpoint);
        s_metrics_destroy (&self);
        return NULL;
    }
    const char *listen = titan_setting_str (ctx->settings, "listen",
                                            MX_DEFAULT_LISTEN);
    if (strcmp (listen, "0") == 0) {
        titan_log_info ("metrics: HTTP disabled (listen = 0)");
        return self;
    }
    /* unique per start: an old incarnation's inproc name may linger */
    zuuid_t *uuid = zuuid_new ();
    char endpoint [256];
    snprintf (endpoint, sizeof endpoint, "inproc://titan-%.64s-metrics-%s",
              ctx->node_id, zuuid_str (uuid));
    zuuid_destroy (&uuid);
    self->pair = zsock_new (ZMQ_PAIR);
    if (!self->pair || zsock_bind (self->pair, "%s", endpoint) != 0) {
        snprintf (ctx->error, sizeof ctx->error, "metrics: cannot bind %.200s",
                  endpoint);
        s_metrics_destroy (&self);
        return NULL;
    }
    zsock_set_sndtimeo (self->pair, 0);    /* the HTTP side may be gone */
    char err [256];
    /* a request may wait for the gather in flight, then its own */
    self->http = mx_http_new (listen, endpoint,
                              2 * (int) self->timeout_ms + 1000, err, sizeof err);
    if (!self->http) {
        snprintf (ctx->error, sizeof ctx->error, "%s", err);
        s_metrics_destroy (&self);
        return NULL;
    }
    return self;
}

static void
s_metrics_actor (zsock_t *pipe, void *args)
{
    titan_module_ctx_t *ctx = args;
    titan_log_bind (ctx->logger, ctx->module_name);
    s_metrics_t *self = s_metrics_new (ctx);
    if (!self) {
        titan_log_error ("%s", ctx->error);
        zsock_signal (pipe, 1);
        return;
    }
    self->pipe = pipe;
    int port = self->http ? mx_http_port (self->http) : 0;
    if (self->http)
        titan_log_kv (TITAN_LOG_INFO, "serving /metrics, /healthz, /readyz",
                      "listen=%s port=%d", titan_setting_str (ctx->settings,
                      "listen", MX_DEFAULT_LISTEN), port);
    zsock_signal (pipe, 0);

    zpoller_t *poller = zpoller_new (pipe, titan_bus_sock (self->bus), NULL);
    assert (poller);
    if (self->pair)
        zpoller_add (poller, self->pair);
    self->next_poll = self->poll_ms ? zclock_mono () : INT64_MAX;
    bool terminated = false;
    while (!terminated) {
        int64_t now = zclock_mono ();
        int64_t until = self->gathering ? self->deadline : self->next_poll;
        int64_t wait = until - now;
        if (wait > 1000)
            wait = 1000;
        void *which = zpoller_wait (poller, wait > 0 ? (int) wait : 0);
        if (which == pipe) {
            char *command;
            if (titan_module_pipe_recv (pipe, &command))
                terminated = true;
            else if (command && streq (command, "PORT"))
                zstr_sendf (pipe, "%d", port);
            zstr_free (&command);
        }
        else if (which == titan_bus_sock (self->bus)) {
            for (int i = 0; i < 64 && s_on_bus (self); i++)
                ;
        }
        else if (self->pair && which == self->pair)
            s_on_http (self);
        else if (zpoller_terminated (poller))
            terminated = true;
        now = zclock_mono ();
        if (self->gathering && now >= self->deadline) {
            s_gather_finish (self);
            s_gather_queued (self);
        }
        if (!self->gathering && now >= self->next_poll) {
            self->next_poll = now + self->poll_ms;
            s_gather_start (self);
        }
    }
    zpoller_destroy (&poller);
    s_metrics_destroy (&self);
}

TITAN_MODULE_DEFINE ("metrics", MX_VERSION, s_metrics_actor);
