/*  grpc_gateway module: the client-facing gRPC server of a node (titan.v1,
    proto/titan.proto) as a module actor.

    The actor thread owns the bus connection.  The server's completion-queue
    thread (gw_server.c) hands it each received call over an inproc PULL
    socket; the actor decodes and validates the request (gw_api.c), sends
    a bus request to the module that serves it (gw_route.h: raft for
    reads, writes and membership), keeps the call in a table keyed by the
    correlation id, and completes the gRPC call when the reply arrives (or
    sends the next request of a two-step method).  Many calls are in
    flight at once; nothing blocks the actor.

    Leader forwarding: when the raft module refuses a write, a linearizable
    read or a membership change with UNAVAILABLE and names the leader, the
    call is forwarded over gRPC to the leader's client address
    (gw_forward.h: asynchronous, its own completion-queue thread) with the
    metadata `titan-hops` counting the gateways it went through; a call
    that arrives having taken GW_MAX_HOPS (3) hops is refused instead of
    forwarded again.  When no leader is known (an election is running, or
    no quorum), or the forwarded call failed with UNAVAILABLE (the leader
    just died), the bus request is sent again after a short backoff (20 ms
    doubling to 50 ms) until the call's deadline; then the call fails with
    UNAVAILABLE "no leader for shard N (no quorum?)".  So a failover costs
    latency, not errors.  LOCAL reads never leave the node.

    Shards (docs/sharding.md): a key's shard is ring_key_shard (key, Q)
    (gw_api_key_shard), with Q from the raft module's `shards` setting.
    The gateway remembers, per shard, the leader the raft module last
    named (a leader hint) and sends the linearizable reads of that shard
    straight to it (or reads locally when the hint is this node); writes
    of a shard hosted here go to the local raft module all the same, which
    forwards them to the leader over the peer transport
    (modules/raft/forward_proposals = on), else to the hinted leader
    too; a forwarded call that fails with UNAVAILABLE drops the hint and
    asks the local raft module again, and a hinted node that does not
    answer in time (DEADLINE_EXCEEDED: cut off or stopped) is forgotten as
    the leader of every shard, so later calls ask the raft module.

    Read repair (gw_repair.h, docs/repair.md): a Get whose local read
    answers DATA_LOSS is handed to the repairer, which reads a healthy
    replica and answers the call; the kv.corrupt events of the local
    bitcask's scrub start repairs too.  A Get carrying the metadata
    titan-repair-source is served from this node's replica only (no
    leader hint, no forwarding, no repair of its own).

    Ring mode (docs/sharding.md, gw_ring.h): the gateway asks the ring
    module for its routing table at start (again every 2 s while it has
    no cluster) and takes every newer table from ring.table events; Q is
    then the table's.  A KV call for a shard the table does not place here,
    or that the raft module refuses for lack of a replica, is forwarded to
    the shard's replicas in rank order at their client addresses, the next
    one when one fails with UNAVAILABLE; a new table forgets the leader
    hints of nodes no longer placed on their shard.

    Deadlines: each call waits at most until its client's deadline, and at
    most `request_timeout_ms` (setting, default 10000) when the client set
    none.  When that passes the call fails with DEADLINE_EXCEEDED (client
    deadline) or UNAVAILABLE (our own timeout: the module did not answer,
    safe to retry), and a reply that comes later is dropped.

    Hinted handoff (docs/handoff.md): a Put with deferred = true is not
    sent anywhere: it is appended to this node's hint log (gw_hints.h,
    under <data_dir>/hints, fdatasynced) and answered at once with
    PutResponse.deferred = true.  A delivery worker in this actor takes
    the oldest pending hint of each shard and submits it to this node's
    own gRPC listener as an ordinary Put carrying the hint log's dedup
    pair (the shard's client id, the hint's sequence), so that it takes
    the path of any client's put (local proposal, or forwarding to the
    shard's leader, retried until its deadline).  One hint per shard is
    in flight, in sequence order: the next is sent only once the shard
    answered the previous, so the Raft dedup table answers any hint sent
    again from its record.  While the shard is unreachable the hint is
    sent again after a backoff (GW_HINT_RETRY_MIN_MS doubling to
    GW_HINT_RETRY_MAX_MS).

    Settings (the module's subtree): max_key_bytes (65535) and
    max_value_bytes (8 MiB), the same names and defaults as the bitcask
    module's (when only the bitcask module sets them, its values are used),
    request_timeout_ms and hint_log_max_bytes (the most bytes of
    deferred puts waiting for delivery, default 64 MiB); it reads
    modules/raft/shards for Q (default 16, RING_DEFAULT_SHARDS) until the
    ring's table brings it, and modules/raft/forward_proposals (on: the
    writes of a shard hosted here go to the local raft module, which
    forwards them to the leader over the peer transport, even when a
    leader hint names another node; off: straight to the hinted leader
    over gRPC).  reads_via_raft (off): on sends linearizable reads of a
    hosted shard to the local raft module too (ReadIndex through the
    leader) instead of the hinted leader.  TLS and
    the client token (tls_cert, tls_key, tls_ca, tls_client_auth,
    auth_token, auth_token_file) are read by gw_security.h, which says how
    they work.  The listen address is the node's
    client_addr.  The actor also answers "PORT" on its pipe with the bound
    TCP port (tests listen on port 0).
*/
#include "gw_api.h"
#include "gw_forward.h"
#include "gw_hints.h"
#include "gw_local.h"
#include "gw_repair.h"
#include "gw_ring.h"
#include "gw_route.h"
#include "ring_place.h"
#include "gw_security.h"
#include "gw_server.h"
#include "titan/bus.h"
#include "titan/bus_types.h"
#include "titan/module.h"
#include "titan/status.h"
#include "bus.pb-c.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define GW_VERSION "0.2.0"
#define GW_RETRY_MIN_MS 20
#define GW_RETRY_MAX_MS 50
#define GW_DEFAULT_REQUEST_TIMEOUT_MS 10000
#define S_STOP_GRACE_MS 1000          /* calls in flight may finish at stop */
#define GW_DEFAULT_HINT_LOG_MAX_BYTES (64 << 20)
#define GW_HINT_DEADLINE_MS 5000     /* one delivery attempt */
#define GW_HINT_RETRY_MIN_MS 100
#define GW_HINT_RETRY_MAX_MS 5000

/*  A call waiting for its bus reply.  */
typedef struct {
    gw_call_t *call;
    gw_method_t method;
    uint64_t corr;
    uint64_t expected;
    int64_t deadline_ms;
    int client_deadline;         /* the deadline is the client's own */
    int targets_self;            /* a restart/reload of this gateway */
    const char *to;
    const char *type;
    int step;                    /* bus requests answered so far */
    uint8_t *prev;               /* the replies so far (gw_api_prev_append) */
    size_t prev_size;
    uint8_t *payload;            /* the current bus request, for retries */
    size_t payload_size;
    uint8_t *request;            /* the gRPC request bytes, for forwarding */
    size_t request_size;
    int hops;                    /* gateways the call came through */
    int forwarding;              /* a forwarded call is in flight */
    char forwarded_to [128];
    int64_t retry_at;            /* 0, or when to send the request again */
    int backoff_ms;
    int no_leader;               /* the last refusal named no leader */
    char refusal [160];          /* the last refusal's message */
    uint32_t shard;              /* the shard of a KV call */
    int routable;                /* may go straight to the shard's leader */
    int repair_source;           /* a Get sent by another node's read
                                    repair: local replica only, no repair */
    uint32_t ring_next;          /* ring mode: next replica rank to try */
    int ring_forward;            /* the forward in flight is to a replica */
} s_pending_t;

typedef gw_leader_hint_t s_hint_t;

/*  The delivery of one shard's hints.  */
typedef struct {
    uint64_t corr;               /* the attempt in flight, 0: none */
    uint64_t sequence;           /* its hint */
    int64_t retry_at;            /* no attempt before (zclock_mono) */
    int backoff_ms;
    int warned;                  /* the outage was logged */
} s_delivery_t;

typedef struct {
    titan_module_ctx_t *ctx;
    titan_bus_t *bus;
    zsock_t *pull;
    gw_server_t *server;
    gw_env_t env;
    zhashx_t *pending;           /* corr -> s_pending_t * */
    int64_t request_timeout_ms;
    zsock_t *done;               /* forwarded-call results (PULL) */
    gw_forward_t *forward;
    gw_repair_t *repair;         /* read repair (gw_repair.h) */
    gw_security_t *security;     /* TLS credentials, client token */
    gw_hints_t *hint_log;        /* deferred puts; NULL: it did not open */
    char hint_log_error [300];   /* why it did not */
    s_delivery_t *deliveries;    /* per shard */
    size_t deliveries_in_flight;
    gw_hint_stats_t *hint_stats; /* env.hint_parts + 1, for Cluster.Status */
    char self_target [300];      /* where deliveries are submitted */
    gw_local_t *local;           /* shards whose LOCAL reads skip raft */
    s_hint_t *hints;             /* per shard, n_hints of them */
    uint32_t n_hints;            /* env.shards, unless memory ran out */
    gw_ring_t *ring;             /* the newest routing table, if any */
    int writes_via_raft;         /* writes of hosted shards: local raft,
                                  which forwards them to the leader */
    int reads_via_raft;          /* the same for linearizable reads */
    uint64_t ring_corr;          /* our ring.table request in flight */
    int64_t ring_ask_at;         /* when to ask again (0: never) */
} s_gateway_t;

static size_t
s_corr_hash (const void *key)
{
    uint64_t x = (uint64_t) (uintptr_t) key;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t) x;
}

static int
s_corr_cmp (const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) a, y = (uintptr_t) b;
    return x < y ? -1 : x > y;
}

static void
s_pending_free (s_pending_t **p_p)
{
    s_pending_t *p = *p_p;
    if (!p)
        return;
    free (p->prev);
    free (p->payload);
    free (p->request);
    free (p);
    *p_p = NULL;
}

static void
s_finish (gw_call_t **call_p, const gw_result_t *res)
{
    gw_server_finish (call_p, res->code, res->message,
                      res->response, res->response_size);
}

static void
s_fail (gw_call_t **call_p, grpc_status_code code, const char *message)
{
    gw_server_finish (call_p, code, message, NULL, 0);
}

/*  Reads a positive size setting; returns -1 with ctx->error set when it is
    not one.  */
static int64_t
s_size_setting (titan_module_ctx_t *ctx, const char *name, int64_t fallback,
                int64_t max)
{
    /* the bitcask module's own setting is the default: one limit per node */
    zconfig_t *bitcask = ctx->node_config
                       ? zconfig_locate (ctx->node_config, "modules/bitcask")
                       : NULL;
    int status = 0;
    if (bitcask && strncmp (name, "max_", 4) == 0)
        fallback = titan_setting_int (bitcask, name, fallback, &status);
    int64_t value = status ? -1
                  : titan_setting_int (ctx->settings, name, fallback, &status);
    if (status || value <= 0 || value > max) {
        snprintf (ctx->error, sizeof ctx->error,
                  "grpc_gateway: setting %s must be a whole number from 1 to %"
                  PRId64, name, max);
        return -1;
    }
    return value;
}

static void
s_gateway_destroy (s_gateway_t **self_p)
{
    s_gateway_t *self = *self_p;
    if (!self)
        return;
    gw_server_destroy (&self->server);
    gw_repair_destroy (&self->repair);
    gw_forward_destroy (&self->forward);
    if (self->done) {
        /* results pushed before the forwarder stopped */
        void *ptr = NULL;
        while ((zsock_events (self->done) & ZMQ_POLLIN)
        &&     zsock_recv (self->done, "p", &ptr) == 0 && ptr) {
            gw_fwd_result_t *res = ptr;
            gw_fwd_result_destroy (&res);
        }
    }
    zsock_destroy (&self->done);
    zhashx_destroy (&self->pending);
    free (self->hints);
    gw_hints_destroy (&self->hint_log);
    free (self->deliveries);
    free (self->hint_stats);
    gw_local_destroy (&self->local);
    gw_ring_destroy (&self->ring);
    zsock_destroy (&self->pull);
    titan_bus_destroy (&self->bus);
    gw_security_destroy (&self->security);
    free (self);
    *self_p = NULL;
}

/*  Opens the hint log under <data_dir>/hints.  A log that cannot be
    opened (an I/O error, a damaged id file) leaves the gateway running
    without it: deferred puts are then refused, saying why.  */
static void
s_hint_log_open (s_gateway_t *self, uint64_t max_bytes, size_t max_request)
{
    titan_module_ctx_t *ctx = self->ctx;
    if (!ctx->data_dir || !*ctx->data_dir) {
        snprintf (self->hint_log_error, sizeof self->hint_log_error,
                  "the node has no data directory");
        return;
    }
    char dir [1024], error [300] = "";
    snprintf (dir, sizeof dir, "%s/hints", ctx->data_dir);
    self->hint_log = gw_hints_open (dir, self->env.hint_parts, max_bytes,
                                    max_request, error, sizeof error);
    if (!self->hint_log) {
        snprintf (self->hint_log_error, sizeof self->hint_log_error, "%s", error);
        titan_log_error ("grpc_gateway: hint log %s not opened: %s; deferred "
                         "puts are refused", dir, error);
        return;
    }
    gw_hint_stats_t all;
    gw_hints_totals (self->hint_log, &all);
    if (all.pending)
        titan_log_info ("grpc_gateway: %" PRIu64 " deferred puts (%" PRIu64
                        " bytes) wait for delivery in %s", all.pending,
                        all.pending_bytes, dir);
    /* deliveries go to this node's own listener: a wildcard listen
       address is reached on loopback */
    const char *addr = ctx->client_addr && *ctx->client_addr
                     ? ctx->client_addr : "127.0.0.1:7400";
    const char *port = strrchr (addr, ':');
    if (port && (strncmp (addr, "0.0.0.0:", 8) == 0 || strncmp (addr, "[::]:", 5) == 0))
        snprintf (self->self_target, sizeof self->self_target, "%s%s",
                  addr [0] == '[' ? "[::1]" : "127.0.0.1", port);
    else
        snprintf (self->self_target, sizeof self->self_target, "%s", addr);
}

static s_gateway_t *
s_gateway_new (titan_module_ctx_t *ctx)
{
    s_gateway_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (ctx->error, sizeof ctx->error, "grpc_gateway: out of memory");
        return NULL;
    }
    self->ctx = ctx;
    int64_t max_key = s_size_setting (ctx, "max_key_bytes",
                                      GW_DEFAULT_MAX_KEY_BYTES, 1 << 20);
    int64_t max_value = s_size_setting (ctx, "max_value_bytes",
                                        GW_DEFAULT_MAX_VALUE_BYTES, 1 << 30);
    self->request_timeout_ms = s_size_setting (ctx, "request_timeout_ms",
                                               GW_DEFAULT_REQUEST_TIMEOUT_MS,
                                               24 * 3600 * 1000);
    if (max_key < 0 || max_value < 0 || self->request_timeout_ms < 0) {
        gw_security_destroy (&self->security);
        free (self);
        return NULL;
    }
    self->security = gw_security_new (ctx->settings, ctx->error,
                                      sizeof ctx->error);
    if (!self->security) {
        free (self);
        return NULL;
    }
    self->env.node_id = ctx->node_id;
    self->env.client_addr = ctx->client_addr;
    self->env.peer_addr = ctx->peer_addr;
    self->env.module_name = ctx->module_name;
    self->env.max_key_bytes = (size_t) max_key;
    self->env.max_value_bytes = (size_t) max_value;
    int status = 0;
    int64_t shards = ctx->node_config
                   ? titan_setting_int (ctx->node_config, "modules/raft/shards",
                                        RING_DEFAULT_SHARDS, &status)
                   : RING_DEFAULT_SHARDS;
    if (status || shards < 1 || shards > 4096) {
        snprintf (ctx->error, sizeof ctx->error, "grpc_gateway: "
                  "modules/raft/shards must be a whole number from 1 to 4096");
        gw_security_destroy (&self->security);
        free (self);
        return NULL;
    }
    self->env.shards = (uint32_t) shards;
    const char *fwd = ctx->node_config
        ? titan_setting_str (ctx->node_config, "modules/raft/forward_proposals",
                             "on") : "on";
    self->writes_via_raft = streq (fwd, "on");
    self->reads_via_raft = streq (titan_setting_str (ctx->settings,
                                                     "reads_via_raft", "off"),
                                  "on");
    int64_t hint_max = s_size_setting (ctx, "hint_log_max_bytes",
                                       GW_DEFAULT_HINT_LOG_MAX_BYTES,
                                       (int64_t) 1 << 40);
    if (hint_max < 0) {
        gw_security_destroy (&self->security);
        free (self);
        return NULL;
    }
    /* the hint log's partitions stay Q as configured at start even when
       the ring's table brings another Q: a key's hints stay in one
       partition, delivered in order */
    self->env.hint_parts = self->env.shards;
    self->hints = calloc (self->env.shards, sizeof *self->hints);
    self->n_hints = self->env.shards;
    self->ring = gw_ring_new ();
    self->env.ring = self->ring;
    self->deliveries = calloc (self->env.hint_parts, sizeof *self->deliveries);
    self->hint_stats = calloc (self->env.hint_parts + 1, sizeof *self->hint_stats);
    self->local = gw_local_new (self->env.shards);
    if (!self->hints || !self->ring || !self->deliveries || !self->hint_stats
    ||  !self->local) {
        snprintf (ctx->error, sizeof ctx->error, "grpc_gateway: out of memory");
        free (self->hints);
        gw_ring_destroy (&self->ring);
        free (self->deliveries);
        free (self->hint_stats);
        gw_local_destroy (&self->local);
        gw_security_destroy (&self->security);
        free (self);
        return NULL;
    }
    s_hint_log_open (self, (uint64_t) hint_max,
                     (size_t) max_key + (size_t) max_value + GW_MESSAGE_HEADROOM);

    self->pending = zhashx_new ();
    assert (self->pending);
    zhashx_set_key_hasher (self->pending, s_corr_hash);
    zhashx_set_key_comparator (self->pending, s_corr_cmp);
    zhashx_set_key_duplicator (self->pending, NULL);
    zhashx_set_key_destructor (self->pending, NULL);

    self->bus = titan_bus_connect (ctx->bus_endpoint, ctx->module_name);
    if (!self->bus) {
        snprintf (ctx->error, sizeof ctx->error,
                  "grpc_gateway: cannot connect to the bus at %s",
                  ctx->bus_endpoint);
        s_gateway_destroy (&self);
        return NULL;
    }
    /* unique per start: the endpoint of a stopped incarnation may not be
       released yet (inproc names are freed asynchronously on close) */
    zuuid_t *uuid = zuuid_new ();
    assert (uuid);
    char handoff [256], done [256];
    snprintf (handoff, sizeof handoff, "inproc://titan-%.64s-gateway-%s",
              ctx->node_id, zuuid_str (uuid));
    snprintf (done, sizeof done, "inproc://titan-%.64s-gwforward-%s",
              ctx->node_id, zuuid_str (uuid));
    zuuid_destroy (&uuid);
    self->done = zsock_new (ZMQ_PULL);
    assert (self->done);
    zsock_set_rcvhwm (self->done, 0);
    if (zsock_bind (self->done, "%s", done) != 0) {
        snprintf (ctx->error, sizeof ctx->error,
                  "grpc_gateway: cannot bind %.200s", done);
        s_gateway_destroy (&self);
        return NULL;
    }
    char ferror [200];
    self->forward = gw_forward_new (done, ferror, sizeof ferror);
    if (!self->forward) {
        snprintf (ctx->error, sizeof ctx->error, "grpc_gateway: %s", ferror);
        s_gateway_destroy (&self);
        return NULL;
    }
    self->repair = gw_repair_new (self->bus, self->forward, ctx->node_id);
    if (!self->repair) {
        snprintf (ctx->error, sizeof ctx->error, "grpc_gateway: out of memory");
        s_gateway_destroy (&self);
        return NULL;
    }
    /* one bound for what the server reads and what a forward brings back */
    size_t max_recv = (size_t) max_key + (size_t) max_value + GW_MESSAGE_HEADROOM;
    gw_forward_set_max_message (self->forward, max_recv);
    grpc_channel_credentials *fcreds =
        gw_security_channel_creds (self->security);
    if (!fcreds && gw_security_tls (self->security)) {
        snprintf (ctx->error, sizeof ctx->error, "grpc_gateway: cannot make "
                  "TLS channel credentials from tls_cert, tls_key and tls_ca");
        s_gateway_destroy (&self);
        return NULL;
    }
    if (gw_forward_set_credentials (self->forward, &fcreds,
                                    gw_security_token (self->security))) {
        if (fcreds)
            grpc_channel_credentials_release (fcreds);
        snprintf (ctx->error, sizeof ctx->error, "grpc_gateway: out of memory");
        s_gateway_destroy (&self);
        return NULL;
    }
    self->pull = zsock_new (ZMQ_PULL);
    assert (self->pull);
    zsock_set_rcvhwm (self->pull, 0);
    if (zsock_bind (self->pull, "%s", handoff) != 0) {
        snprintf (ctx->error, sizeof ctx->error,
                  "grpc_gateway: cannot bind %.200s", handoff);
        s_gateway_destroy (&self);
        return NULL;
    }
    const char *addr = ctx->client_addr && *ctx->client_addr
                     ? ctx->client_addr : "127.0.0.1:7400";
    char error [200];
    grpc_server_credentials *creds = gw_security_server_creds (self->security);
    if (!creds) {
        snprintf (ctx->error, sizeof ctx->error, "grpc_gateway: cannot make "
                  "the server's credentials (tls_cert, tls_key, tls_ca)");
        s_gateway_destroy (&self);
        return NULL;
    }
    self->server = gw_server_new (addr, max_recv, creds, handoff, error,
                                  sizeof error);
    grpc_server_credentials_release (creds);
    if (!self->server) {
        snprintf (ctx->error, sizeof ctx->error, "grpc_gateway: %s", error);
        s_gateway_destroy (&self);
        return NULL;
    }
    return self;
}

/*  True for a LOCAL Get (gw_local.h).  */
static bool
s_local_read (const s_pending_t *p)
{
    return p->method == GW_M_GET && !p->routable;
}

/*  A call arrived from the server.  */
/*  The leader hint of a call's shard, or NULL when there is none (or the
    call is not one that may go straight to a leader).  */
static s_hint_t *
s_hint (s_gateway_t *self, const s_pending_t *p)
{
    if (!p->routable || p->shard >= self->n_hints)
        return NULL;
    s_hint_t *h = &self->hints [p->shard];
    return *h->id ? h : NULL;
}

/*  Notes (or, with empty strings, forgets) the leader of a shard.  */
static void
s_hint_set (s_gateway_t *self, const s_pending_t *p, const char *id,
            const char *addr)
{
    if (!p->routable || p->shard >= self->n_hints)
        return;
    s_hint_t *h = &self->hints [p->shard];
    snprintf (h->id, sizeof h->id, "%s", id);
    snprintf (h->addr, sizeof h->addr, "%s", *id ? addr : "");
}

/*  Forgets every shard's leader hint that names address `addr`.  */
static void
s_hints_forget_addr (s_gateway_t *self, const char *addr)
{
    for (uint32_t shard = 0; shard < self->n_hints; shard++) {
        s_hint_t *h = &self->hints [shard];
        if (*h->id && streq (h->addr, addr))
            *h->id = *h->addr = '\0';
    }
}

/*  ------------------------------------------------------------ ring  */

#define GW_RING_ASK_MS 2000      /* ask again while the ring has no cluster */

/*  Asks the ring module for its table (the reply comes as a bus reply
    with ring_corr).  A node without a ring module answers UNIMPLEMENTED
    (the kernel) and the gateway stays in static mode.  */
static void
s_ring_ask (s_gateway_t *self)
{
    Titan__Bus__RingTableRequest q = TITAN__BUS__RING_TABLE_REQUEST__INIT;
    uint8_t buf [16];
    size_t size = titan__bus__ring_table_request__pack (&q, buf);
    self->ring_ask_at = 0;
    if (titan_bus_request (self->bus, "ring", TITAN_T_RING_TABLE, buf, size,
                           &self->ring_corr) != 0)
        self->ring_ask_at = zclock_mono () + GW_RING_ASK_MS;
}

/*  A ring.table event or reply: keeps the table when it is the newest,
    then Q is the table's and the leader hints that name a node no longer
    placed on their shard are forgotten.  */
static void
s_ring_take (s_gateway_t *self, const uint8_t *data, size_t size)
{
    char err [300] = "";
    int rc = gw_ring_offer (self->ring, data, size, err, sizeof err);
    if (rc == -EAGAIN) {
        titan_log_debug ("grpc_gateway: %s; asking again in %d ms", err,
                         GW_RING_ASK_MS);
        self->ring_ask_at = zclock_mono () + GW_RING_ASK_MS;
        return;
    }
    if (rc == -ENOENT)
        return;                  /* no ring module: static placement */
    if (rc < 0) {
        titan_log_warning ("grpc_gateway: %s", err);
        return;
    }
    if (rc == 0)
        return;                  /* not newer than ours */
    /* keys map over the table's Q from now on, hints or not */
    uint32_t q = gw_ring_shards (self->ring);
    self->env.shards = q;
    if (q != self->n_hints) {
        s_hint_t *hints = calloc (q, sizeof *hints);
        if (hints)
            memcpy (hints, self->hints, (q < self->n_hints ? q : self->n_hints)
                                        * sizeof *hints);
        else
            titan_log_error ("grpc_gateway: out of memory for the leader hints "
                             "of %u shards; calls go through the raft module", q);
        free (self->hints);
        self->hints = hints;
        self->n_hints = hints ? q : 0;
        /* LOCAL reads go through raft again until confirmed per shard */
        gw_local_t *local = gw_local_new (q);
        if (local) {
            gw_local_destroy (&self->local);
            self->local = local;
        }
    }
    uint32_t forgotten = gw_ring_prune_hints (self->ring, self->hints,
                                              self->n_hints);
    titan_log_info ("grpc_gateway: ring table of epoch %" PRIu64 ": %u shards, "
                    "%u replicas, %zu members; %u leader hint(s) forgotten",
                    gw_ring_epoch (self->ring), q, gw_ring_replicas (self->ring),
                    gw_ring_members (self->ring), forgotten);
}

/*  Whether a method is a KV call (its shard is its key's).  */
static int
s_is_kv (gw_method_t method)
{
    return method == GW_M_PUT || method == GW_M_GET || method == GW_M_DELETE
        || method == GW_M_CAS;
}

/*  Whether a KV call must go to another node's replicas in ring mode:
    the table does not place its shard here, or the raft module said it
    has no replica of it (`refusal`, may be NULL: not asked yet).  */
static int
s_ring_elsewhere (s_gateway_t *self, const s_pending_t *p, const char *refusal)
{
    if (!s_is_kv (p->method) || !gw_ring_active (self->ring)
    ||  p->shard >= gw_ring_shards (self->ring))
        return 0;
    return !gw_ring_places (self->ring, p->shard, self->env.node_id)
        || (refusal && strstr (refusal, "no replica on this node"));
}

/*  Forwards a call (not in the table) to the next replica of its shard
    in rank order, from p->ring_next.  Returns 1 when it did (the call is
    in the table), 0 when every replica was tried (p->ring_next is reset
    for the next round) or the call took its hops (then it was failed and
    freed: *p_p is NULL).  */
static int
s_forward_to_replica (s_gateway_t *self, s_pending_t **p_p)
{
    s_pending_t *p = *p_p;
    if (p->hops >= GW_MAX_HOPS) {
        char message [300];
        snprintf (message, sizeof message, "not forwarded: the call already "
                  "took %d hops and this node holds no replica of shard %u",
                  p->hops, p->shard);
        s_fail (&p->call, GRPC_STATUS_UNAVAILABLE, message);
        s_pending_free (p_p);
        return 0;
    }
    const char *id, *addr;
    while (gw_ring_target (self->ring, p->shard, self->env.node_id,
                           &p->ring_next, &id, &addr)) {
        p->corr = titan_bus_next_corr (self->bus);
        if (gw_forward_start (self->forward, addr, gw_api_method_path (p->method),
                              p->request, p->request_size, p->deadline_ms,
                              p->hops + 1, p->corr) != 0)
            continue;
        p->forwarding = 1;
        p->ring_forward = 1;
        snprintf (p->forwarded_to, sizeof p->forwarded_to, "%.127s", addr);
        zhashx_insert (self->pending, (void *) (uintptr_t) p->corr, p);
        return 1;
    }
    p->ring_next = 0;
    char last [sizeof p->refusal];
    snprintf (last, sizeof last, "%s", p->refusal);
    snprintf (p->refusal, sizeof p->refusal, "no replica of shard %u "
              "answered (table epoch %" PRIu64 "); last: %.70s", p->shard,
              gw_ring_epoch (self->ring), *last ? last : "none reachable");
    return 0;
}

/*  Whether a new call goes to the local raft module even when another
    node is known to lead its shard: a write of a shard hosted here while
    the raft module forwards proposals to the leader over its peer
    transport (modules/raft/forward_proposals = on; one gRPC call instead
    of two), or a linearizable read with reads_via_raft = on (the raft
    core asks the leader for a read index).  */
static int
s_via_raft (s_gateway_t *self, const s_pending_t *p)
{
    int write = p->method == GW_M_PUT || p->method == GW_M_DELETE
             || p->method == GW_M_CAS;
    int read = p->method == GW_M_GET && p->routable;
    if ((write && !self->writes_via_raft) || (read && !self->reads_via_raft)
    ||  (!write && !read))
        return 0;
    return !s_ring_elsewhere (self, p, NULL);
}

/*  Sends a new call (not in the table) straight to its shard's leader
    when another node is known to lead it, and puts it in the table under
    a fresh corr.  Returns 1 when it did, 0 when the call should go to the
    local raft module instead.  */
static int
s_forward_to_hint (s_gateway_t *self, s_pending_t *p)
{
    s_hint_t *h = s_hint (self, p);
    if (!h || streq (h->id, self->env.node_id) || p->hops >= GW_MAX_HOPS)
        return 0;
    p->corr = titan_bus_next_corr (self->bus);
    if (gw_forward_start (self->forward, h->addr, gw_api_method_path (p->method),
                          p->request, p->request_size, p->deadline_ms,
                          p->hops + 1, p->corr) != 0)
        return 0;
    p->forwarding = 1;
    snprintf (p->forwarded_to, sizeof p->forwarded_to, "%.127s", h->addr);
    zhashx_insert (self->pending, (void *) (uintptr_t) p->corr, p);
    return 1;
}

/*  A deferred put (hinted handoff): appends the request that
    gw_api_prepare made (req->payload, freed here) to the hint log and
    answers "accepted, not yet committed", or why it was not accepted.  */
static void
s_defer (s_gateway_t *self, gw_call_t **call_p, gw_bus_req_t *req)
{
    gw_result_t res = { GRPC_STATUS_OK, "", NULL, 0 };
    char error [400] = "";
    uint64_t sequence = 0;
    int rc = self->hint_log
           ? gw_hints_append (self->hint_log, req->shard, req->payload,
                              req->size, zclock_time (), &sequence, error,
                              sizeof error)
           : -ENODEV;
    free (req->payload);
    req->payload = NULL;
    if (rc == 0) {
        gw_api_deferred (&res);
        titan_log_debug ("grpc_gateway: deferred put accepted: shard %" PRIu32
                         " hint sequence %" PRIu64, req->shard, sequence);
    }
    else if (rc == -ENODEV)
        gw_api_fail (&res, GRPC_STATUS_FAILED_PRECONDITION, "deferred puts "
                     "are refused: this node's hint log is not open (%.200s)",
                     self->hint_log_error);
    else if (rc == -ENOSPC)
        gw_api_fail (&res, GRPC_STATUS_RESOURCE_EXHAUSTED, "%.250s", error);
    else if (rc == -EPERM)
        gw_api_fail (&res, GRPC_STATUS_FAILED_PRECONDITION, "%.250s", error);
    else if (rc == -EINVAL)
        gw_api_fail (&res, GRPC_STATUS_INVALID_ARGUMENT, "%.250s", error);
    else
        gw_api_fail (&res, GRPC_STATUS_INTERNAL, "the deferred put was not "
                     "accepted: %.200s", error);
    s_finish (call_p, &res);
    gw_result_reset (&res);
}

static void
s_handle_call (s_gateway_t *self, gw_call_t *call)
{
    char refusal [200];
    if (!gw_security_authorize (self->security, &call->request_md, refusal,
                                sizeof refusal)) {
        s_fail (&call, GRPC_STATUS_UNAUTHENTICATED, refusal);
        return;
    }
    int method = gw_api_method (call->method_path, strlen (call->method_path));
    if (method < 0) {
        char message [200];
        snprintf (message, sizeof message, "unknown method %s (titan.v1 has "
                  "KV, Cluster and Admin services)", call->method_path);
        s_fail (&call, GRPC_STATUS_UNIMPLEMENTED, message);
        return;
    }
    if (!call->have_request) {
        s_fail (&call, GRPC_STATUS_INVALID_ARGUMENT,
                "the call carried no request message");
        return;
    }
    int64_t now = zclock_mono ();
    if (call->deadline_ms <= now) {
        s_fail (&call, GRPC_STATUS_DEADLINE_EXCEEDED,
                "the deadline passed before the gateway received the request");
        return;
    }
    int hops = gw_forward_hops (&call->request_md);
    if (hops > GW_MAX_HOPS) {
        char message [200];
        snprintf (message, sizeof message, "refused: the call was forwarded "
                  "more than %d times (metadata %s)", GW_MAX_HOPS, GW_HOPS_KEY);
        s_fail (&call, GRPC_STATUS_UNAVAILABLE, message);
        return;
    }
    gw_bus_req_t req;
    gw_result_t res = { GRPC_STATUS_OK, "", NULL, 0 };
    if (!gw_api_prepare (&self->env, (gw_method_t) method, call->request,
                         call->request_size, &req, &res)) {
        s_finish (&call, &res);
        gw_result_reset (&res);
        return;
    }
    if (req.deferred) {
        s_defer (self, &call, &req);
        return;
    }
    s_pending_t *p = calloc (1, sizeof *p);
    if (!p) {
        free (req.payload);
        s_fail (&call, GRPC_STATUS_RESOURCE_EXHAUSTED, "gateway out of memory");
        return;
    }
    /* the gRPC request is kept for forwarding, the bus payload for
       retries; both only as long as the call lives */
    p->request = call->request;
    p->request_size = call->request_size;
    call->request = NULL;
    p->payload = req.payload;
    p->payload_size = req.size;
    p->call = call;
    p->method = (gw_method_t) method;
    p->expected = req.expected;
    p->to = req.to;
    p->type = req.type;
    p->hops = hops;
    p->targets_self = req.targets_self;
    p->shard = req.shard;
    p->routable = req.routable;
    if (method == GW_M_GET && gw_repair_is_source (&call->request_md)) {
        /* another node repairs from our replica: serve it here, after the
           ReadIndex barrier its LINEARIZABLE consistency asks for */
        p->repair_source = 1;
        p->routable = 0;
    }
    int64_t ours = now + self->request_timeout_ms;
    p->client_deadline = call->deadline_ms <= ours;
    p->deadline_ms = p->client_deadline ? call->deadline_ms : ours;
    if (!s_via_raft (self, p) && s_forward_to_hint (self, p))
        return;
    if (!p->repair_source && s_ring_elsewhere (self, p, NULL)) {
        if (s_forward_to_replica (self, &p))
            return;
        if (!p)
            return;              /* failed: too many hops */
        /* no replica reachable: ask the local raft module, which refuses
           and retries from the table after a backoff */
    }
    else if (s_local_read (p) && gw_local_direct (self->local, p->shard, now)) {
        p->to = GW_ROUTE_LOCAL_READS;
        p->type = GW_ROUTE_LOCAL_READ_TYPE;
    }

    uint64_t corr = 0;
    int rc = titan_bus_request (self->bus, p->to, p->type, p->payload,
                                p->payload_size, &corr);
    if (rc) {
        char message [200];
        snprintf (message, sizeof message, "cannot reach the %s module: %s",
                  p->to, titan_strerror (rc));
        s_fail (&p->call, GRPC_STATUS_UNAVAILABLE, message);
        s_pending_free (&p);
        return;
    }
    p->corr = corr;
    zhashx_insert (self->pending, (void *) (uintptr_t) corr, p);
}

/*  Fails a pending call that found no leader: UNAVAILABLE.  Takes it out
    of the table (the caller did, or it is not in it).  */
static void
s_fail_no_leader (s_pending_t **p_p)
{
    s_pending_t *p = *p_p;
    char message [400];
    snprintf (message, sizeof message, "no leader for shard %u (no quorum?): "
              "%s found none before the deadline; retry%s%s%s", p->shard,
              gw_api_method_path (p->method), *p->refusal ? " (last answer: " : "",
              p->refusal, *p->refusal ? ")" : "");
    s_fail (&p->call, GRPC_STATUS_UNAVAILABLE, message);
    s_pending_free (p_p);
}

/*  Schedules the bus request of a pending call (out of the table) to be
    sent again after a backoff, or fails it when the deadline is too near.
    Reinserts it under its old corr: s_expire rekeys it when resending.  */
static void
s_schedule_retry (s_gateway_t *self, s_pending_t *p)
{
    int64_t now = zclock_mono ();
    p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2 : GW_RETRY_MIN_MS;
    if (p->backoff_ms > GW_RETRY_MAX_MS)
        p->backoff_ms = GW_RETRY_MAX_MS;
    /* give up a little before the client's deadline, so that it sees why */
    if (now + p->backoff_ms >= p->deadline_ms - 10) {
        s_fail_no_leader (&p);
        return;
    }
    p->retry_at = now + p->backoff_ms;
    zhashx_insert (self->pending, (void *) (uintptr_t) p->corr, p);
}

/*  Sends the bus request of a call again (its retry time came).  The call
    is out of the table; it goes back in under the new corr.  */
static void
s_retry (s_gateway_t *self, s_pending_t *p)
{
    p->retry_at = 0;
    uint64_t corr = 0;
    int rc = titan_bus_request (self->bus, p->to, p->type, p->payload,
                                p->payload_size, &corr);
    if (rc) {
        char message [200];
        snprintf (message, sizeof message, "cannot reach the %s module: %s",
                  p->to, titan_strerror (rc));
        s_fail (&p->call, GRPC_STATUS_UNAVAILABLE, message);
        s_pending_free (&p);
        return;
    }
    p->corr = corr;
    zhashx_insert (self->pending, (void *) (uintptr_t) corr, p);
}

/*  The raft module refused a call (out of the table) with UNAVAILABLE:
    forward it to the leader it named, or retry.  */
static void
s_redirect (s_gateway_t *self, s_pending_t *p, const char *leader_id,
            const char *leader_addr)
{
    int is_self = streq (leader_id, self->env.node_id);
    if ((!*leader_addr || !*leader_id) && !p->repair_source
    &&  s_ring_elsewhere (self, p, p->refusal)) {
        /* ring mode: no replica here; the replicas in rank order */
        p->no_leader = 0;
        if (s_forward_to_replica (self, &p) || !p)
            return;
        p->no_leader = 1;
        s_schedule_retry (self, p);
        return;
    }
    if (!*leader_addr || !*leader_id || is_self || p->repair_source) {
        /* no leader known (or we are a leader that cannot commit) */
        s_hint_set (self, p, "", "");
        p->no_leader = 1;
        s_schedule_retry (self, p);
        return;
    }
    p->no_leader = 0;
    s_hint_set (self, p, leader_id, leader_addr);
    if (p->hops >= GW_MAX_HOPS) {
        char message [320];
        snprintf (message, sizeof message, "not forwarded: the call already "
                  "took %d hops and this node is not the leader (the leader "
                  "is %.60s at %.100s)", p->hops, leader_id, leader_addr);
        s_fail (&p->call, GRPC_STATUS_UNAVAILABLE, message);
        s_pending_free (&p);
        return;
    }
    int rc = gw_forward_start (self->forward, leader_addr,
                               gw_api_method_path (p->method), p->request,
                               p->request_size, p->deadline_ms, p->hops + 1,
                               p->corr);
    if (rc) {
        titan_log_warning ("grpc_gateway: cannot forward to %s: %s", leader_addr,
                      titan_strerror (rc));
        s_schedule_retry (self, p);
        return;
    }
    p->forwarding = 1;
    snprintf (p->forwarded_to, sizeof p->forwarded_to, "%.127s", leader_addr);
    zhashx_insert (self->pending, (void *) (uintptr_t) p->corr, p);
}

/*  A forwarded call completed.  */
/*  Starts the delivery attempts that are due: the oldest pending hint of
    each shard with none in flight.  Returns the ms until the next one is
    due (at most `cap`).  */
static int
s_handoff_pump (s_gateway_t *self, int cap)
{
    if (!self->hint_log || gw_hints_empty (self->hint_log)
    ||  !*self->self_target || !self->forward)
        return cap;
    int64_t now = zclock_mono ();
    int64_t next = now + cap;
    for (uint32_t shard = 0; shard < self->env.hint_parts; shard++) {
        s_delivery_t *d = &self->deliveries [shard];
        if (d->corr)
            continue;
        const gw_hint_t *hint = gw_hints_head (self->hint_log, shard);
        if (!hint)
            continue;
        if (d->retry_at > now) {
            if (d->retry_at < next)
                next = d->retry_at;
            continue;
        }
        uint8_t *request = NULL;
        size_t size = 0;
        int rc = gw_api_hint_request (hint->request, hint->request_size,
                                      gw_hints_client_id (self->hint_log, shard),
                                      hint->sequence, &request, &size);
        if (rc == -EINVAL) {
            titan_log_error ("grpc_gateway: hinted handoff: shard %" PRIu32
                             " hint %" PRIu64 " does not decode as a put; "
                             "dropped", shard, hint->sequence);
            gw_hints_delivered (self->hint_log, shard, hint->sequence);
            next = now;
            continue;
        }
        uint64_t corr = titan_bus_next_corr (self->bus);
        if (!rc)
            rc = gw_forward_start (self->forward, self->self_target,
                                   gw_api_method_path (GW_M_PUT), request, size,
                                   now + GW_HINT_DEADLINE_MS, 0, corr);
        free (request);
        if (rc) {
            titan_log_warning ("grpc_gateway: hinted handoff: cannot submit "
                               "shard %" PRIu32 " hint %" PRIu64 " to %s: %s",
                               shard, hint->sequence, self->self_target,
                               titan_strerror (rc));
            d->retry_at = now + GW_HINT_RETRY_MAX_MS;
            continue;
        }
        d->corr = corr;
        d->sequence = hint->sequence;
        self->deliveries_in_flight++;
    }
    int64_t wait = next - now;
    return wait < 0 ? 0 : (int) wait;
}

/*  The outcome of a delivery attempt; returns 0 when `res` is not one.  */
static int
s_handoff_result (s_gateway_t *self, const gw_fwd_result_t *res)
{
    if (!self->deliveries_in_flight)
        return 0;
    uint32_t shard = 0;
    while (shard < self->env.hint_parts && self->deliveries [shard].corr != res->corr)
        shard++;
    if (shard == self->env.hint_parts)
        return 0;
    s_delivery_t *d = &self->deliveries [shard];
    d->corr = 0;
    self->deliveries_in_flight--;
    uint64_t client = gw_hints_client_id (self->hint_log, shard);
    int done = 1;
    if (res->code == GRPC_STATUS_OK)
        titan_log_info ("grpc_gateway: hinted handoff: shard %" PRIu32
                        " hint %" PRIu64 " (client %016" PRIx64 ") committed "
                        "at revision %" PRIu64, shard, d->sequence, client,
                        gw_api_put_revision (res->response, res->size));
    else if (res->code == GRPC_STATUS_ABORTED)
        /* the dedup table knows this sequence: applied before (its result
           lost to a restart, or older than the client's kept writes, which
           in-order delivery only allows once it was applied) */
        titan_log_info ("grpc_gateway: hinted handoff: shard %" PRIu32
                        " hint %" PRIu64 " (client %016" PRIx64 ") was "
                        "applied before: %s", shard, d->sequence, client,
                        res->details);
    else if (res->code == GRPC_STATUS_INVALID_ARGUMENT)
        titan_log_error ("grpc_gateway: hinted handoff: shard %" PRIu32
                         " hint %" PRIu64 " refused for good (%s); dropped",
                         shard, d->sequence, res->details);
    else
        done = 0;
    if (done) {
        if (d->warned)
            titan_log_info ("grpc_gateway: hinted handoff: shard %" PRIu32
                            " reachable again", shard);
        d->warned = 0;
        d->backoff_ms = 0;
        d->retry_at = 0;
        if (gw_hints_delivered (self->hint_log, shard, d->sequence))
            titan_log_error ("grpc_gateway: hinted handoff: shard %" PRIu32
                             " hint %" PRIu64 " delivered but not recorded "
                             "(the hint log failed); it may be sent again "
                             "after a restart, where the dedup table absorbs "
                             "it", shard, d->sequence);
        return 1;
    }
    d->backoff_ms = d->backoff_ms ? d->backoff_ms * 2 : GW_HINT_RETRY_MIN_MS;
    if (d->backoff_ms > GW_HINT_RETRY_MAX_MS)
        d->backoff_ms = GW_HINT_RETRY_MAX_MS;
    d->retry_at = zclock_mono () + d->backoff_ms;
    if (!d->warned) {
        gw_hint_stats_t st;
        gw_hints_stats (self->hint_log, shard, &st);
        titan_log_warning ("grpc_gateway: hinted handoff: shard %" PRIu32
                           " not reachable (%s: %s); %" PRIu64 " hints "
                           "pending, retrying", shard,
                           gw_status_name (res->code), res->details, st.pending);
        d->warned = 1;
    }
    return 1;
}

/*  Refreshes the hinted handoff figures that Cluster.Status reports.  */
static void
s_hint_stats_refresh (s_gateway_t *self)
{
    if (!self->hint_log) {
        self->env.hint_stats = NULL;
        return;
    }
    for (uint32_t shard = 0; shard < self->env.hint_parts; shard++)
        gw_hints_stats (self->hint_log, shard, &self->hint_stats [shard]);
    gw_hints_totals (self->hint_log, &self->hint_stats [self->env.hint_parts]);
    self->env.hint_stats = self->hint_stats;
    self->env.hint_now_ms = zclock_time ();
}

static void
s_handle_forwarded (s_gateway_t *self, gw_fwd_result_t *res)
{
    if (s_handoff_result (self, res))
        return;
    if (res->code == GRPC_STATUS_DEADLINE_EXCEEDED
    ||  res->code == GRPC_STATUS_UNKNOWN)
        /* that node did not answer in time (cut off, stopped), even if
           the call timed out here first: forget it as the leader of any
           shard, so the next call asks the local raft module, which
           knows the current leader, instead of waiting on it again */
        s_hints_forget_addr (self, res->target);
    if (gw_repair_forwarded (self->repair, res))
        return;
    s_pending_t *p = zhashx_lookup (self->pending, (void *) (uintptr_t) res->corr);
    if (!p || !p->forwarding)
        return;                  /* the call timed out meanwhile */
    zhashx_delete (self->pending, (void *) (uintptr_t) res->corr);
    p->forwarding = 0;
    int to_replica = p->ring_forward;
    p->ring_forward = 0;
    if (res->code == GRPC_STATUS_UNAVAILABLE && to_replica) {
        /* that replica is down or has no leader: the next one */
        snprintf (p->refusal, sizeof p->refusal, "%.60s: %.90s",
                  res->target, res->details);
        if (s_forward_to_replica (self, &p) || !p)
            return;
        p->no_leader = 1;
        s_schedule_retry (self, p);
        return;
    }
    if (res->code == GRPC_STATUS_UNAVAILABLE) {
        /* the leader we knew is gone or has no quorum: ask raft again */
        s_hint_t *h = s_hint (self, p);
        if (h && streq (h->addr, res->target))
            s_hint_set (self, p, "", "");
        snprintf (p->refusal, sizeof p->refusal, "%.60s: %.90s",
                  res->target, res->details);
        s_schedule_retry (self, p);
        return;
    }
    gw_server_finish (&p->call, res->code, res->details,
                      res->response, res->size);
    s_pending_free (&p);
}

/*  The bus reply to a pending call (out of the table) arrived.  */
static void
s_handle_reply (s_gateway_t *self, s_pending_t *p, titan_envelope_t *env)
{
    const uint8_t *data = titan_envelope_data (env);
    size_t size = titan_envelope_size (env);
    if (s_local_read (p)
    &&  gw_local_note (self->local, p->shard,
                       streq (p->to, GW_ROUTE_LOCAL_READS), data, size,
                       zclock_mono ())) {
        /* the storage engine refused it: raft gives the right answer */
        p->to = GW_ROUTE_READS;
        p->type = GW_ROUTE_READ_TYPE;
        s_retry (self, p);
        return;
    }
    char leader_id [128], leader_addr [256];
    if (gw_api_redirect (p->method, p->step, data, size, leader_id,
                         sizeof leader_id, leader_addr, sizeof leader_addr,
                         p->refusal, sizeof p->refusal)) {
        s_redirect (self, p, leader_id, leader_addr);
        return;
    }
    if (p->method == GW_M_GET && !p->repair_source
    &&  gw_repair_read (self->repair, &p->call, p->payload, p->payload_size,
                        data, size, p->deadline_ms)) {
        s_pending_free (&p);     /* the repair answers the call */
        return;
    }
    gw_bus_req_t req;
    gw_result_t res = { GRPC_STATUS_OK, "", NULL, 0 };
    if (p->method == GW_M_STATUS)
        s_hint_stats_refresh (self);
    if (gw_api_step (&self->env, p->method, p->expected, p->step, p->prev,
                     p->prev_size, data, size, &req, &res)) {
        /* the next request of a many-step method: keep this reply */
        if (gw_api_prev_append (&p->prev, &p->prev_size, data, size)) {
            free (req.payload);
            s_fail (&p->call, GRPC_STATUS_RESOURCE_EXHAUSTED,
                    "gateway out of memory");
            s_pending_free (&p);
            return;
        }
        p->step++;
        free (p->payload);
        p->payload = req.payload;
        p->payload_size = req.size;
        p->to = req.to;
        p->type = req.type;
        p->backoff_ms = 0;
        s_retry (self, p);
        return;
    }
    s_finish (&p->call, &res);
    gw_result_reset (&res);
    s_pending_free (&p);
}

/*  Handles the next bus message if one waits; false when none did.  */
static bool
s_handle_bus (s_gateway_t *self)
{
    titan_envelope_t *env = titan_bus_try_recv (self->bus);
    if (!env)
        return false;
    if (env->kind == TITAN_MSG_REPLY && self->ring_corr
    &&  env->corr == self->ring_corr) {
        self->ring_corr = 0;
        s_ring_take (self, titan_envelope_data (env), titan_envelope_size (env));
    }
    else if (env->kind == TITAN_MSG_EVENT
         &&  streq (env->type, TITAN_T_RING_TABLE))
        s_ring_take (self, titan_envelope_data (env), titan_envelope_size (env));
    else if (env->kind == TITAN_MSG_REPLY) {
        s_pending_t *p = zhashx_lookup (self->pending, (void *) (uintptr_t) env->corr);
        if (p && !p->forwarding && !p->retry_at) {
            zhashx_delete (self->pending, (void *) (uintptr_t) env->corr);
            s_handle_reply (self, p, env);
        }
        else
        if (!p)
            (void) gw_repair_bus_reply (self->repair, env);
        /* else: a late reply to a call that already timed out; dropped */
    }
    else if (env->kind == TITAN_MSG_EVENT
         &&  streq (env->type, TITAN_T_KV_CORRUPT))
        gw_repair_corrupt (self->repair, titan_envelope_data (env),
                           titan_envelope_size (env));
    else if (env->kind == TITAN_MSG_REQUEST
         &&  streq (env->type, TITAN_T_GW_STATS)) {
        uint8_t *buf;
        size_t size;
        if (gw_metrics_pack (gw_server_metrics (self->server), &buf, &size) == 0)
            titan_bus_reply (self->bus, env, buf, size);
        free (buf);
    }
    else if (env->kind == TITAN_MSG_REQUEST) {
        Titan__Bus__AdminReply reply = TITAN__BUS__ADMIN_REPLY__INIT;
        reply.code = TITAN__BUS__CODE__UNIMPLEMENTED;
        reply.message = "grpc_gateway serves only gw.stats on the bus";
        uint8_t buf [128];
        size_t size = titan__bus__admin_reply__pack (&reply, buf);
        titan_bus_reply (self->bus, env, buf, size);
    }
    titan_envelope_destroy (&env);
    return true;
}

/*  The next pointer waiting on an inproc PULL socket (one frame holding a
    pointer, as zsock_send (sock, "p", ptr) sends it), or NULL when none
    waits.  A raw receive without wait: no ZMQ_EVENTS query (a fork check
    and a poll, two system calls) per message.  */
static void *
s_recv_ptr (zsock_t *sock)
{
    void *ptr = NULL;
    int size = zmq_recv (zsock_resolve (sock), &ptr, sizeof ptr, ZMQ_DONTWAIT);
    return size == (int) sizeof ptr ? ptr : NULL;
}

/*  Fails the calls whose deadline has passed; returns the ms until the
    next deadline (capped at `cap`).  */
static int
s_expire (s_gateway_t *self, int cap)
{
    int64_t now = zclock_mono ();
    int64_t next = now + cap;
    zlistx_t *expired = NULL;
    zlistx_t *due = NULL;
    for (s_pending_t *p = zhashx_first (self->pending); p;
         p = zhashx_next (self->pending)) {
        if (p->deadline_ms <= now) {
            if (!expired)
                expired = zlistx_new ();
            zlistx_add_end (expired, p);
        }
        else if (p->retry_at && p->retry_at <= now) {
            if (!due)
                due = zlistx_new ();
            zlistx_add_end (due, p);
        }
        else {
            if (p->deadline_ms < next)
                next = p->deadline_ms;
            if (p->retry_at && p->retry_at < next)
                next = p->retry_at;
        }
    }
    if (due) {
        for (s_pending_t *p = zlistx_first (due); p; p = zlistx_next (due)) {
            zhashx_delete (self->pending, (void *) (uintptr_t) p->corr);
            s_retry (self, p);
        }
        zlistx_destroy (&due);
        next = now;              /* the new requests' times: look again */
    }
    if (expired) {
        for (s_pending_t *p = zlistx_first (expired); p; p = zlistx_next (expired)) {
            zhashx_delete (self->pending, (void *) (uintptr_t) p->corr);
            char message [256];
            if (p->no_leader) {
                s_fail_no_leader (&p);
                continue;
            }
            if (p->forwarding) {
                snprintf (message, sizeof message,
                          "deadline exceeded waiting for the leader at %s "
                          "(forwarded %s); a write may or may not have been "
                          "applied", p->forwarded_to,
                          gw_api_method_path (p->method));
                s_fail (&p->call, p->client_deadline
                        ? GRPC_STATUS_DEADLINE_EXCEEDED
                        : GRPC_STATUS_UNAVAILABLE, message);
            }
            else if (p->client_deadline) {
                snprintf (message, sizeof message,
                          "deadline exceeded waiting for the %s module "
                          "(%s); the write may or may not have been applied",
                          p->to, gw_api_method_path (p->method));
                s_fail (&p->call, GRPC_STATUS_DEADLINE_EXCEEDED, message);
            }
            else {
                snprintf (message, sizeof message,
                          "the %s module did not answer within %" PRId64
                          " ms (request_timeout_ms); retry", p->to,
                          self->request_timeout_ms);
                s_fail (&p->call, GRPC_STATUS_UNAVAILABLE, message);
            }
            s_pending_free (&p);
        }
        zlistx_destroy (&expired);
    }
    int64_t wait = next - now;
    int repair_wait = gw_repair_expire (self->repair, cap);
    if (repair_wait < wait)
        wait = repair_wait;
    return wait < 0 ? 0 : (int) wait;
}

/*  Shuts down: fails what waits on the bus, stops the server and finishes
    every call it still hands over, until it reports the queue drained.  */
static void
s_stop (s_gateway_t *self)
{
    for (s_pending_t *p = zhashx_first (self->pending); p;
         p = zhashx_next (self->pending)) {
        if (p->targets_self) {
            /* the kernel is carrying out this very command: stopping us */
            gw_result_t res = { GRPC_STATUS_OK, "", NULL, 0 };
            gw_api_self_command (p->method, &res);
            s_finish (&p->call, &res);
            gw_result_reset (&res);
        }
        else
            s_fail (&p->call, GRPC_STATUS_UNAVAILABLE,
                    "the node's gateway is shutting down; retry");
        s_pending_free (&p);
    }
    zhashx_purge (self->pending);
    gw_repair_destroy (&self->repair);
    gw_forward_destroy (&self->forward);
    gw_server_shutdown (self->server);
    /* a grace period before cancelling what is still in flight, so that
       answers already queued (the "being reloaded" reply above) go out */
    zsock_set_rcvtimeo (self->pull, S_STOP_GRACE_MS);
    bool cancelled = false;
    while (true) {
        void *ptr = NULL;
        if (zsock_recv (self->pull, "p", &ptr) != 0) {
            if (zmq_errno () != EAGAIN || cancelled)
                break;           /* interrupted */
            gw_server_cancel_all (self->server);
            cancelled = true;
            zsock_set_rcvtimeo (self->pull, -1);
            continue;
        }
        if (!ptr)
            break;               /* the CQ thread is done */
        gw_call_t *call = ptr;
        s_fail (&call, GRPC_STATUS_UNAVAILABLE,
                "the node's gateway is shutting down; retry");
    }
}

static void
s_gateway_actor (zsock_t *pipe, void *args)
{
    titan_module_ctx_t *ctx = args;
    titan_log_bind (ctx->logger, ctx->module_name);
    s_gateway_t *self = s_gateway_new (ctx);
    if (!self) {
        titan_log_error ("%s", ctx->error);
        zsock_signal (pipe, 1);
        return;
    }
    titan_log_info ("grpc_gateway: node %s serving titan.v1 on %s (port %d, %s%s)",
               ctx->node_id, ctx->client_addr ? ctx->client_addr : "?",
               gw_server_port (self->server),
               gw_security_tls (self->security) ? "TLS" : "plain text",
               gw_security_token (self->security) ? ", token required" : "");
    zsock_signal (pipe, 0);

    /* zmq_poll with every socket's revents rather than a zpoller, which
       names one ready socket per wait: all that is ready is served in one
       turn, and each wait queries every socket (ZMQ_EVENTS: two system
       calls each), so fewer waits are fewer system calls under load. */
    enum { PIPE, BUS, CALLS, DONE, ITEMS };
    zmq_pollitem_t items [ITEMS] = {
        { zsock_resolve (pipe), 0, ZMQ_POLLIN, 0 },
        { zsock_resolve (titan_bus_sock (self->bus)), 0, ZMQ_POLLIN, 0 },
        { zsock_resolve (self->pull), 0, ZMQ_POLLIN, 0 },
        { zsock_resolve (self->done), 0, ZMQ_POLLIN, 0 },
    };
    s_ring_ask (self);
    bool terminated = false;
    while (!terminated) {
        int timeout = s_handoff_pump (self, s_expire (self, 1000));
        if (self->ring_ask_at) {
            int64_t wait = self->ring_ask_at - zclock_mono ();
            if (wait <= 0)
                s_ring_ask (self);
            else if (wait < timeout)
                timeout = (int) wait;
        }
        if (zmq_poll (items, ITEMS, timeout) < 0 || zsys_interrupted)
            break;                      /* context terminated, or interrupted */
        if (items [PIPE].revents & ZMQ_POLLIN) {
            char *command;
            if (titan_module_pipe_recv (pipe, &command))
                terminated = true;
            else if (command && streq (command, "PORT"))
                zstr_sendf (pipe, "%d", gw_server_port (self->server));
            else if (command)
                titan_log_warning ("grpc_gateway: unknown command '%s'", command);
            zstr_free (&command);
        }
        /* drain what is there without starving the other sockets */
        if (items [BUS].revents & ZMQ_POLLIN)
            for (int i = 0; i < 64 && s_handle_bus (self); i++)
                ;
        void *ptr;
        if (items [CALLS].revents & ZMQ_POLLIN)
            for (int i = 0; i < 64 && (ptr = s_recv_ptr (self->pull)); i++)
                s_handle_call (self, ptr);
        if (items [DONE].revents & ZMQ_POLLIN)
            for (int i = 0; i < 64 && (ptr = s_recv_ptr (self->done)); i++) {
                gw_fwd_result_t *res = ptr;
                s_handle_forwarded (self, res);
                gw_fwd_result_destroy (&res);
            }
    }
    s_stop (self);
    s_gateway_destroy (&self);
}

TITAN_MODULE_DEFINE ("grpc_gateway", GW_VERSION, s_gateway_actor);
