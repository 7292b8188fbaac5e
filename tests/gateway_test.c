/*  Unit test of the grpc_gateway module: the actor is started directly
    (zactor_new on its descriptor) against a test bus whose ROUTER is played
    by a fake kernel + raft + bitcask actor in this file, and is called over
    real gRPC with the project's client library.  The fake insists that
    writes arrive as raft.propose and reads as raft.read, addressed to
    "raft" (the multi-node behaviour, forwarding included, is in
    tests/integration_test.c).

    The fake store keeps keys in memory with bitcask's semantics (revisions,
    CAS, NOT_FOUND), and misbehaves on purpose for some keys: "unavail"
    answers UNAVAILABLE without a leader (the gateway retries until its
    deadline), "drop" never answers, "late" answers after 600 ms.
    That covers the status mapping, the validation at the edge, the
    deadlines (client's and request_timeout_ms), late replies being
    dropped, concurrency, and stop/start and dlclose/dlopen of the module.
*/
#include "gw_api.h"
#include "gw_request.h"
#include "gw_forward.h"
#include "gw_ring.h"
#include "ring_member.h"
#include "ring_place.h"
#include "ring_table.h"
#include "tc_client.h"
#include "titan/bus.h"
#include "titan/bus_types.h"
#include "titan/module.h"
#include "bus.pb-c.h"
#include "titan.pb-c.h"

#include <check.h>
#include <errno.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const titan_module_descriptor_t titan_module_descriptor;

#define BUS_ENDPOINT "inproc://titan-gwtest-bus"
#define MAX_KEY 16
#define MAX_VALUE 1024

/*  ------------------------------------------------------------ fake bus  */

typedef struct {
    uint8_t *value;
    size_t size;
    uint64_t revision;
} s_item_t;

typedef struct {
    int64_t due;
    zmsg_t *msg;
} s_delayed_t;

static void
s_item_free (void **item_p)
{
    s_item_t *item = *item_p;
    if (item) {
        free (item->value);
        free (item);
        *item_p = NULL;
    }
}

/*  How many times the fake was asked to write "unavail" (the gateway
    retries a write that found no leader).  */
static _Atomic int s_unavail_seen;

/*  LOCAL reads the fake served as raft (raft.read) and as the storage
    module (kv.get, gw_local.h).  */
static _Atomic int s_raft_local_reads;
static _Atomic int s_direct_reads;
/*  Ring mode of the fake (test_ring_gateway): the RingTable it answers
    ring.table with (none: it does not answer, as a node without a ring
    module's cluster), and that table, by which the fake raft refuses the
    shards it does not place on "gwtest".  Set before the gateway starts.  */
static uint8_t *s_ring_reply;
static size_t s_ring_reply_size;
static gw_ring_t *s_fake_ring;
static _Atomic int s_ring_refused;

static zmsg_t *
s_reply_msg (zframe_t *routing, const titan_envelope_t *req,
             const ProtobufCMessage *payload)
{
    size_t size = protobuf_c_message_get_packed_size (payload);
    uint8_t *buf = malloc (size + 1);
    protobuf_c_message_pack (payload, buf);
    titan_envelope_t *reply = titan_envelope_new (req->from, req->type,
                                                  TITAN_MSG_REPLY, req->corr,
                                                  buf, size);
    free (buf);
    snprintf (reply->from, sizeof reply->from, "%s", req->to);
    zmsg_t *msg = titan_envelope_encode (&reply);
    zmsg_pushmem (msg, zframe_data (routing), zframe_size (routing));
    return msg;
}

static ProtobufCBinaryData
s_bin (const char *text)
{
    ProtobufCBinaryData b = { strlen (text), (uint8_t *) text };
    return b;
}

static int
s_is (ProtobufCBinaryData key, const char *text)
{
    return key.len == strlen (text) && memcmp (key.data, text, key.len) == 0;
}

/*  Serves one request; returns the reply (or NULL to not answer) and sets
    *delay_ms when the reply should wait.  */
static zmsg_t *
s_serve (zhashx_t *store, uint64_t *last_rev, zframe_t *routing,
         titan_envelope_t *req, int *delay_ms)
{
    const uint8_t *data = titan_envelope_data (req);
    size_t size = titan_envelope_size (req);
    *delay_ms = 0;
    if (streq (req->type, TITAN_T_KV_PUT) || streq (req->type, TITAN_T_KV_DELETE)
    ||  streq (req->type, TITAN_T_KV_CAS))
        ck_abort_msg ("%s went to the storage module, not through raft",
                      req->type);
    bool direct = streq (req->type, TITAN_T_KV_GET);
    if (direct || streq (req->type, TITAN_T_RAFT_READ)) {
        ck_assert_str_eq (req->to, direct ? "bitcask" : "raft");
        Titan__Bus__KvGet *get = titan__bus__kv_get__unpack (NULL, size, data);
        ck_assert_ptr_nonnull (get);
        bool local = get->consistency == TITAN__BUS__KV_GET__CONSISTENCY__LOCAL;
        /* only a LOCAL read may skip raft */
        ck_assert_msg (!direct || local, "a linearizable kv.get skipped raft");
        Titan__Bus__KvReply reply = TITAN__BUS__KV_REPLY__INIT;
        if (direct)
            s_direct_reads++;
        else
        if (local)
            s_raft_local_reads++;
        if ((direct && s_is (get->key, "gone")) || s_is (get->key, "nothosted")) {
            reply.code = TITAN__BUS__CODE__UNAVAILABLE;
            reply.message = direct ? "bitcask: shard 0 is not stored on this node"
                                   : "raft: shard 0 is not hosted on node gwtest";
            zmsg_t *msg = s_reply_msg (routing, req, &reply.base);
            titan__bus__kv_get__free_unpacked (get, NULL);
            return msg;
        }
        char hex [2 * MAX_KEY + 1];
        for (size_t i = 0; i < get->key.len; i++)
            sprintf (hex + 2 * i, "%02x", get->key.data [i]);
        hex [2 * get->key.len] = 0;
        s_item_t *item = zhashx_lookup (store, hex);
        if (s_is (get->key, "probe")) {
            /* echoes the consistency level the gateway passed on */
            reply.value = s_bin (get->consistency == TITAN__BUS__KV_GET__CONSISTENCY__LOCAL
                                 ? "local" : "linearizable");
            reply.revision = 1;
        }
        else if (item) {
            reply.value.data = item->value;
            reply.value.len = item->size;
            reply.revision = item->revision;
        }
        else
            reply.code = TITAN__BUS__CODE__NOT_FOUND;
        zmsg_t *msg = s_reply_msg (routing, req, &reply.base);
        titan__bus__kv_get__free_unpacked (get, NULL);
        return msg;
    }
    if (streq (req->type, TITAN_T_RING_TABLE)) {
        if (!s_ring_reply)
            return NULL;
        titan_envelope_t *reply = titan_envelope_new (req->from, req->type,
            TITAN_MSG_REPLY, req->corr, s_ring_reply, s_ring_reply_size);
        snprintf (reply->from, sizeof reply->from, "%s", req->to);
        zmsg_t *msg = titan_envelope_encode (&reply);
        zmsg_pushmem (msg, zframe_data (routing), zframe_size (routing));
        return msg;
    }
    if (streq (req->type, TITAN_T_RAFT_PROPOSE)) {
        ck_assert_str_eq (req->to, "raft");
        Titan__Bus__KvWrite *w = titan__bus__kv_write__unpack (NULL, size, data);
        ck_assert_ptr_nonnull (w);
        ck_assert_ptr_nonnull (w->op);
        Titan__Bus__KvReply reply = TITAN__BUS__KV_REPLY__INIT;
        zmsg_t *msg = NULL;
        if (!s_fake_ring)
            ck_assert_uint_eq (w->shard, 0);
        else if (!gw_ring_places (s_fake_ring, w->shard, "gwtest")) {
            char why [80];
            snprintf (why, sizeof why, "shard %u has no replica on this node",
                      w->shard);
            reply.code = TITAN__BUS__CODE__UNAVAILABLE;
            reply.message = why;
            s_ring_refused++;
            msg = s_reply_msg (routing, req, &reply.base);
            titan__bus__kv_write__free_unpacked (w, NULL);
            return msg;
        }
        if (s_is (w->op->key, "drop")) {
            titan__bus__kv_write__free_unpacked (w, NULL);
            return NULL;
        }
        if (s_is (w->op->key, "late"))
            *delay_ms = 600;
        if (s_is (w->op->key, "dedup")) {
            /* echoes the dedup pair: the revision is the sequence, and the
               value stored is the client id string */
            reply.revision = w->sequence;
            ProtobufCBinaryData value = s_bin (w->client_id);
            reply.value = value;
            reply.code = streq (w->client_id, "00000000000000ff")
                       ? TITAN__BUS__CODE__OK : TITAN__BUS__CODE__INTERNAL;
            reply.message = w->client_id;
            msg = s_reply_msg (routing, req, &reply.base);
            titan__bus__kv_write__free_unpacked (w, NULL);
            return msg;
        }
        if (s_is (w->op->key, "unavail")) {
            s_unavail_seen++;
            reply.code = TITAN__BUS__CODE__UNAVAILABLE;
            reply.message = "shard 0 has no quorum";
            msg = s_reply_msg (routing, req, &reply.base);
            titan__bus__kv_write__free_unpacked (w, NULL);
            return msg;
        }
        char hex [2 * MAX_KEY + 1];
        for (size_t i = 0; i < w->op->key.len; i++)
            sprintf (hex + 2 * i, "%02x", w->op->key.data [i]);
        hex [2 * w->op->key.len] = 0;
        s_item_t *item = zhashx_lookup (store, hex);
        if (w->op->kind == TITAN__BUS__KV_OP__KIND__DELETE) {
            reply.deleted = item ? 1 : 0;
            if (item) {
                zhashx_delete (store, hex);
                reply.revision = ++*last_rev;
            }
        }
        else {
            if (w->op->kind == TITAN__BUS__KV_OP__KIND__CAS) {
                uint64_t current = item ? item->revision : 0;
                int ok = w->op->expect_absent ? !item
                       : (item && current == w->op->expected_revision);
                if (!ok) {
                    reply.code = TITAN__BUS__CODE__FAILED_PRECONDITION;
                    reply.current_revision = current;
                    msg = s_reply_msg (routing, req, &reply.base);
                    titan__bus__kv_write__free_unpacked (w, NULL);
                    return msg;
                }
            }
            s_item_t *fresh = calloc (1, sizeof *fresh);
            fresh->size = w->op->value.len;
            fresh->value = malloc (fresh->size + 1);
            if (fresh->size)
                memcpy (fresh->value, w->op->value.data, fresh->size);
            fresh->revision = ++*last_rev;
            zhashx_update (store, hex, fresh);
            reply.revision = fresh->revision;
        }
        msg = s_reply_msg (routing, req, &reply.base);
        titan__bus__kv_write__free_unpacked (w, NULL);
        return msg;
    }
    if (streq (req->type, TITAN_T_RAFT_STATUS)) {
        /* this node leads; "node2" is a learner once it was added */
        Titan__Bus__RaftMember a = TITAN__BUS__RAFT_MEMBER__INIT;
        a.node_id = "gwtest"; a.peer_addr = "127.0.0.1:1";
        a.client_addr = "127.0.0.1:2"; a.voter = 1;
        Titan__Bus__RaftMember b = TITAN__BUS__RAFT_MEMBER__INIT;
        b.node_id = "node2"; b.peer_addr = "127.0.0.1:3";
        b.client_addr = "127.0.0.1:4"; b.voter = 0;
        Titan__Bus__RaftMember *members [2] = { &a, &b };
        Titan__Bus__RaftGroupStatus g = TITAN__BUS__RAFT_GROUP_STATUS__INIT;
        g.role = "leader"; g.leader_id = "gwtest"; g.term = 2;
        g.applied_index = *last_rev;
        g.n_members = zhashx_lookup (store, "6e6f646532") ? 2 : 1;
        g.members = members;
        Titan__Bus__RaftGroupStatus *groups [1] = { &g };
        Titan__Bus__RaftStatusReply reply = TITAN__BUS__RAFT_STATUS_REPLY__INIT;
        reply.node_id = "gwtest";
        reply.n_groups = 1;
        reply.groups = groups;
        return s_reply_msg (routing, req, &reply.base);
    }
    if (streq (req->type, TITAN_T_RAFT_ADD) || streq (req->type, TITAN_T_RAFT_REMOVE)
    ||  streq (req->type, TITAN_T_RAFT_TRANSFER)) {
        Titan__Bus__RaftMemberChange *c =
            titan__bus__raft_member_change__unpack (NULL, size, data);
        ck_assert_ptr_nonnull (c);
        ck_assert_uint_eq (c->shard, 0);
        Titan__Bus__RaftMemberReply reply = TITAN__BUS__RAFT_MEMBER_REPLY__INIT;
        if (!streq (c->node_id, "node2")) {
            reply.code = TITAN__BUS__CODE__NOT_FOUND;
            reply.message = "no member named that";
        }
        else if (streq (req->type, TITAN_T_RAFT_ADD)) {
            ck_assert_str_eq (c->peer_addr, "127.0.0.1:3");
            ck_assert_str_eq (c->client_addr, "127.0.0.1:4");
            /* remembered as a key "node2" so that raft.status lists it */
            s_item_t *item = calloc (1, sizeof *item);
            item->value = malloc (1);
            item->revision = ++*last_rev;
            zhashx_update (store, "6e6f646532", item);
            reply.index = item->revision;
        }
        else if (streq (req->type, TITAN_T_RAFT_REMOVE)) {
            zhashx_delete (store, "6e6f646532");
            reply.index = ++*last_rev;
        }
        zmsg_t *msg = s_reply_msg (routing, req, &reply.base);
        titan__bus__raft_member_change__free_unpacked (c, NULL);
        return msg;
    }
    if (streq (req->type, TITAN_T_KV_STATS)) {
        Titan__Bus__KvStatsReply reply = TITAN__BUS__KV_STATS_REPLY__INIT;
        reply.keys = zhashx_size (store);
        reply.applied_index = *last_rev;
        reply.last_revision = *last_rev;
        return s_reply_msg (routing, req, &reply.base);
    }
    if (streq (req->type, TITAN_T_KV_MERGE)) {
        Titan__Bus__KvMergeReply reply = TITAN__BUS__KV_MERGE_REPLY__INIT;
        reply.files_merged = 2;
        reply.bytes_reclaimed = 4096;
        return s_reply_msg (routing, req, &reply.base);
    }
    if (streq (req->type, TITAN_T_MODULE_LIST)) {
        Titan__Bus__ModuleInfo a = TITAN__BUS__MODULE_INFO__INIT;
        a.name = "bitcask"; a.version = "0.1.0"; a.state = "running";
        Titan__Bus__ModuleInfo b = TITAN__BUS__MODULE_INFO__INIT;
        b.name = "grpc_gateway"; b.version = "0.1.0"; b.state = "running";
        b.restarts = 1;
        Titan__Bus__ModuleInfo *list [2] = { &a, &b };
        Titan__Bus__ModuleListReply reply = TITAN__BUS__MODULE_LIST_REPLY__INIT;
        reply.n_modules = 2;
        reply.modules = list;
        return s_reply_msg (routing, req, &reply.base);
    }
    if (streq (req->type, TITAN_T_MODULE_RESTART)
    ||  streq (req->type, TITAN_T_MODULE_RELOAD)) {
        Titan__Bus__ModuleCommand *cmd =
            titan__bus__module_command__unpack (NULL, size, data);
        ck_assert_ptr_nonnull (cmd);
        Titan__Bus__AdminReply reply = TITAN__BUS__ADMIN_REPLY__INIT;
        if (!streq (cmd->name, "bitcask")) {
            reply.code = TITAN__BUS__CODE__NOT_FOUND;
            reply.message = "no module named that";
        }
        zmsg_t *msg = s_reply_msg (routing, req, &reply.base);
        titan__bus__module_command__free_unpacked (cmd, NULL);
        return msg;
    }
    return NULL;
}

static void
s_fake_bus (zsock_t *pipe, void *args)
{
    (void) args;
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    ck_assert_ptr_nonnull (router);
    zsock_set_router_handover (router, 1);   /* a restarted module reuses its id */
    ck_assert_int_eq (zsock_bind (router, BUS_ENDPOINT), 0);
    zhashx_t *store = zhashx_new ();
    zhashx_set_destructor (store, s_item_free);
    zlistx_t *delayed = zlistx_new ();
    uint64_t last_rev = 0;
    zsock_signal (pipe, 0);
    zpoller_t *poller = zpoller_new (pipe, router, NULL);
    while (true) {
        void *which = zpoller_wait (poller, 20);
        if (which == pipe)
            break;
        if (which == router) {
            zmsg_t *msg = zmsg_recv (router);
            zframe_t *routing = zmsg_pop (msg);
            titan_envelope_t *req = titan_envelope_decode (&msg);
            if (req && req->kind == TITAN_MSG_REQUEST) {
                int delay = 0;
                zmsg_t *reply = s_serve (store, &last_rev, routing, req, &delay);
                if (reply && delay) {
                    s_delayed_t *d = calloc (1, sizeof *d);
                    d->due = zclock_mono () + delay;
                    d->msg = reply;
                    zlistx_add_end (delayed, d);
                }
                else if (reply)
                    zmsg_send (&reply, router);
            }
            titan_envelope_destroy (&req);
            zframe_destroy (&routing);
        }
        s_delayed_t *d = zlistx_first (delayed);
        while (d) {
            if (d->due <= zclock_mono ()) {
                zmsg_send (&d->msg, router);
                free (d);
                zlistx_delete (delayed, zlistx_cursor (delayed));
                d = zlistx_first (delayed);
            }
            else
                d = zlistx_next (delayed);
        }
    }
    for (s_delayed_t *d = zlistx_first (delayed); d; d = zlistx_next (delayed)) {
        zmsg_destroy (&d->msg);
        free (d);
    }
    zlistx_destroy (&delayed);
    zpoller_destroy (&poller);
    zhashx_destroy (&store);
    zsock_destroy (&router);
}

/*  ------------------------------------------------------------ fixture  */

static zactor_t *s_bus;
static zactor_t *s_gateway;
static zconfig_t *s_settings;
static zconfig_t *s_node_config;   /* the fake raft is static, Q = 1 */
static titan_module_ctx_t s_ctx;
static char s_target [64];

static zactor_t *
s_start_gateway (zactor_fn *actor)
{
    memset (&s_ctx, 0, sizeof s_ctx);
    s_ctx.abi_version = TITAN_MODULE_ABI_VERSION;
    s_ctx.node_id = "gwtest";
    s_ctx.module_name = "grpc_gateway";
    s_ctx.bus_endpoint = BUS_ENDPOINT;
    s_ctx.data_dir = "/tmp";
    s_ctx.client_addr = "127.0.0.1:0";
    s_ctx.peer_addr = "127.0.0.1:0";
    s_ctx.settings = s_settings;
    s_ctx.node_config = s_node_config;
    zactor_t *gateway = zactor_new (actor, &s_ctx);
    ck_assert_msg (gateway, "gateway did not start: %s", s_ctx.error);
    zstr_send (gateway, "PORT");
    char *port = zstr_recv (gateway);
    ck_assert_ptr_nonnull (port);
    ck_assert_msg (atoi (port) > 0, "gateway did not start: %s", s_ctx.error);
    snprintf (s_target, sizeof s_target, "127.0.0.1:%s", port);
    zstr_free (&port);
    return gateway;
}

static void
s_setup (void)
{
    s_settings = zconfig_new ("grpc_gateway", NULL);
    zconfig_put (s_settings, "max_key_bytes", "16");
    zconfig_put (s_settings, "max_value_bytes", "1024");
    zconfig_put (s_settings, "request_timeout_ms", "300");
    s_node_config = zconfig_new ("root", NULL);
    zconfig_put (s_node_config, "modules/raft/shards", "1");
    s_bus = zactor_new (s_fake_bus, NULL);
    ck_assert_ptr_nonnull (s_bus);
    s_gateway = s_start_gateway (titan_module_descriptor.actor);
}

static void
s_teardown (void)
{
    zactor_destroy (&s_gateway);
    zactor_destroy (&s_bus);
    zconfig_destroy (&s_settings);
    zconfig_destroy (&s_node_config);
}

/*  One call; returns the status, stores the response (to free) and the
    details.  */
typedef struct {
    grpc_status_code code;
    char details [512];
    uint8_t *data;
    size_t size;
} s_result_t;

static s_result_t
s_call (const char *method, const ProtobufCMessage *req, int64_t timeout_ms)
{
    s_result_t r;
    memset (&r, 0, sizeof r);
    size_t size = protobuf_c_message_get_packed_size (req);
    uint8_t *buf = malloc (size + 1);
    protobuf_c_message_pack (req, buf);
    tc_conn_t *conn = tc_conn_new (s_target);
    r.code = tc_call (conn, method, buf, size, timeout_ms, &r.data, &r.size,
                      r.details, sizeof r.details);
    tc_conn_destroy (&conn);
    free (buf);
    return r;
}

static uint64_t
s_put (const char *key, const char *value, grpc_status_code expect)
{
    Titan__V1__PutRequest req = TITAN__V1__PUT_REQUEST__INIT;
    req.key = s_bin (key);
    req.value = s_bin (value);
    s_result_t r = s_call ("/titan.v1.KV/Put", &req.base, 5000);
    ck_assert_msg (r.code == expect, "put %s: %s %s", key,
                   tc_status_name (r.code), r.details);
    uint64_t revision = 0;
    if (r.code == GRPC_STATUS_OK) {
        Titan__V1__PutResponse *resp = titan__v1__put_response__unpack (NULL, r.size, r.data);
        ck_assert_ptr_nonnull (resp);
        revision = resp->revision;
        titan__v1__put_response__free_unpacked (resp, NULL);
    }
    free (r.data);
    return revision;
}

/*  ------------------------------------------------------------ tests  */

/*  A LOCAL Get with `key`; returns the gRPC status (value freed).  */
static int
s_local_get (const char *key, int timeout_ms)
{
    Titan__V1__GetRequest get = TITAN__V1__GET_REQUEST__INIT;
    get.key = s_bin (key);
    get.consistency = TITAN__V1__CONSISTENCY__LOCAL;
    s_result_t r = s_call ("/titan.v1.KV/Get", &get.base, timeout_ms);
    free (r.data);
    return r.code;
}

/*  LOCAL reads skip raft for a shard raft has just served one of
    (gw_local.h); a refusal of raft withdraws that, and a refusal of the
    storage module sends the read through raft.  */
START_TEST (test_local_reads_skip_raft_once_confirmed)
{
    s_put ("lk", "v", GRPC_STATUS_OK);
    /* each read through raft confirms the shard for a second: on a loaded
       machine a call may take longer, so try until one went straight */
    int direct0 = s_direct_reads;
    int64_t deadline = zclock_mono () + 30000;
    while (s_direct_reads == direct0 && zclock_mono () < deadline)
        ck_assert_int_eq (s_local_get ("lk", 5000), GRPC_STATUS_OK);
    ck_assert_int_gt (s_direct_reads, direct0);
    ck_assert_int_gt (s_raft_local_reads, 0);

    /* raft refuses (not hosted; the storage module too, had the read
       gone there): the next read asks raft again */
    int code = s_local_get ("nothosted", 300);
    ck_assert_msg (code == GRPC_STATUS_UNAVAILABLE
                   || code == GRPC_STATUS_DEADLINE_EXCEEDED, "code %d", code);
    int raft1 = s_raft_local_reads, direct1 = s_direct_reads;
    ck_assert_int_eq (s_local_get ("lk", 5000), GRPC_STATUS_OK);
    ck_assert_int_eq (s_direct_reads, direct1);
    ck_assert_int_eq (s_raft_local_reads, raft1 + 1);

    /* the storage module refuses: the same read is answered by raft
       (NOT_FOUND here), never with the storage module's refusal */
    bool refused_direct = false;
    deadline = zclock_mono () + 30000;
    while (!refused_direct && zclock_mono () < deadline) {
        int raft2 = s_raft_local_reads, direct2 = s_direct_reads;
        ck_assert_int_eq (s_local_get ("gone", 5000), GRPC_STATUS_NOT_FOUND);
        refused_direct = s_direct_reads == direct2 + 1;
        ck_assert_int_eq (s_raft_local_reads, raft2 + 1);
    }
    ck_assert (refused_direct);
}
END_TEST

START_TEST (test_put_get_delete)
{
    uint64_t r1 = s_put ("alpha", "one", GRPC_STATUS_OK);
    uint64_t r2 = s_put ("alpha", "two", GRPC_STATUS_OK);
    ck_assert_uint_gt (r1, 0);
    ck_assert_uint_gt (r2, r1);

    Titan__V1__GetRequest get = TITAN__V1__GET_REQUEST__INIT;
    get.key = s_bin ("alpha");
    s_result_t r = s_call ("/titan.v1.KV/Get", &get.base, 5000);
    ck_assert_int_eq (r.code, GRPC_STATUS_OK);
    Titan__V1__GetResponse *got = titan__v1__get_response__unpack (NULL, r.size, r.data);
    ck_assert_ptr_nonnull (got);
    ck_assert_uint_eq (got->value.len, 3);
    ck_assert_mem_eq (got->value.data, "two", 3);
    ck_assert_uint_eq (got->revision, r2);
    titan__v1__get_response__free_unpacked (got, NULL);
    free (r.data);

    get.consistency = TITAN__V1__CONSISTENCY__LOCAL;
    r = s_call ("/titan.v1.KV/Get", &get.base, 5000);
    ck_assert_int_eq (r.code, GRPC_STATUS_OK);
    free (r.data);

    /* the dedup pair reaches the bus */
    Titan__V1__PutRequest dedup = TITAN__V1__PUT_REQUEST__INIT;
    dedup.key = s_bin ("dedup");
    dedup.client_id = 255;
    dedup.sequence = 42;
    r = s_call ("/titan.v1.KV/Put", &dedup.base, 5000);
    ck_assert_msg (r.code == GRPC_STATUS_OK, "client id on the bus: %s", r.details);
    Titan__V1__PutResponse *pr = titan__v1__put_response__unpack (NULL, r.size, r.data);
    ck_assert_uint_eq (pr->revision, 42);
    titan__v1__put_response__free_unpacked (pr, NULL);
    free (r.data);

    /* the consistency level reaches the bus */
    const char *levels [2] = { "linearizable", "local" };
    for (int i = 0; i < 2; i++) {
        Titan__V1__GetRequest probe = TITAN__V1__GET_REQUEST__INIT;
        probe.key = s_bin ("probe");
        probe.consistency = (Titan__V1__Consistency) i;
        r = s_call ("/titan.v1.KV/Get", &probe.base, 5000);
        ck_assert_int_eq (r.code, GRPC_STATUS_OK);
        got = titan__v1__get_response__unpack (NULL, r.size, r.data);
        ck_assert_uint_eq (got->value.len, strlen (levels [i]));
        ck_assert_mem_eq (got->value.data, levels [i], got->value.len);
        titan__v1__get_response__free_unpacked (got, NULL);
        free (r.data);
    }

    Titan__V1__DeleteRequest del = TITAN__V1__DELETE_REQUEST__INIT;
    del.key = s_bin ("alpha");
    r = s_call ("/titan.v1.KV/Delete", &del.base, 5000);
    ck_assert_int_eq (r.code, GRPC_STATUS_OK);
    Titan__V1__DeleteResponse *d = titan__v1__delete_response__unpack (NULL, r.size, r.data);
    ck_assert_uint_eq (d->deleted, 1);
    ck_assert_uint_gt (d->revision, r2);
    titan__v1__delete_response__free_unpacked (d, NULL);
    free (r.data);

    r = s_call ("/titan.v1.KV/Delete", &del.base, 5000);
    ck_assert_int_eq (r.code, GRPC_STATUS_OK);
    d = titan__v1__delete_response__unpack (NULL, r.size, r.data);
    ck_assert_uint_eq (d->deleted, 0);
    titan__v1__delete_response__free_unpacked (d, NULL);
    free (r.data);

    r = s_call ("/titan.v1.KV/Get", &get.base, 5000);
    ck_assert_int_eq (r.code, GRPC_STATUS_NOT_FOUND);
    ck_assert_str_eq (r.details, "key not found");
}
END_TEST

START_TEST (test_binary_and_limits)
{
    /* a binary key with NULs and a binary value of exactly the limit */
    uint8_t key [MAX_KEY];
    for (int i = 0; i < MAX_KEY; i++)
        key [i] = (uint8_t) (i * 37);
    key [3] = 0;
    uint8_t value [MAX_VALUE + 1];
    for (int i = 0; i <= MAX_VALUE; i++)
        value [i] = (uint8_t) (255 - i);
    Titan__V1__PutRequest put = TITAN__V1__PUT_REQUEST__INIT;
    put.key.data = key;
    put.key.len = MAX_KEY;
    put.value.data = value;
    put.value.len = MAX_VALUE;
    s_result_t r = s_call ("/titan.v1.KV/Put", &put.base, 5000);
    ck_assert_msg (r.code == GRPC_STATUS_OK, "%s", r.details);
    free (r.data);

    Titan__V1__GetRequest get = TITAN__V1__GET_REQUEST__INIT;
    get.key = put.key;
    r = s_call ("/titan.v1.KV/Get", &get.base, 5000);
    ck_assert_int_eq (r.code, GRPC_STATUS_OK);
    Titan__V1__GetResponse *got = titan__v1__get_response__unpack (NULL, r.size, r.data);
    ck_assert_uint_eq (got->value.len, MAX_VALUE);
    ck_assert_mem_eq (got->value.data, value, MAX_VALUE);
    titan__v1__get_response__free_unpacked (got, NULL);
    free (r.data);

    /* one byte over each limit, and an empty key */
    put.value.len = MAX_VALUE + 1;
    r = s_call ("/titan.v1.KV/Put", &put.base, 5000);
    ck_assert_int_eq (r.code, GRPC_STATUS_INVALID_ARGUMENT);
    ck_assert_str_eq (r.details, "value is 1025 bytes, over the limit of 1024 (max_value_bytes)");

    uint8_t long_key [MAX_KEY + 1] = { 0 };
    put.key.data = long_key;
    put.key.len = MAX_KEY + 1;
    put.value.len = 1;
    r = s_call ("/titan.v1.KV/Put", &put.base, 5000);
    ck_assert_int_eq (r.code, GRPC_STATUS_INVALID_ARGUMENT);
    ck_assert_str_eq (r.details, "key is 17 bytes, over the limit of 16 (max_key_bytes)");

    get.key = put.key;
    r = s_call ("/titan.v1.KV/Get", &get.base, 5000);
    ck_assert_int_eq (r.code, GRPC_STATUS_INVALID_ARGUMENT);

    put.key.len = 0;
    r = s_call ("/titan.v1.KV/Put", &put.base, 5000);
    ck_assert_int_eq (r.code, GRPC_STATUS_INVALID_ARGUMENT);
    ck_assert_str_eq (r.details, "key is empty (a key is 1 to 16 bytes)");

    Titan__V1__DeleteRequest del = TITAN__V1__DELETE_REQUEST__INIT;
    r = s_call ("/titan.v1.KV/Delete", &del.base, 5000);
    ck_assert_int_eq (r.code, GRPC_STATUS_INVALID_ARGUMENT);

    /* an empty value is a value */
    s_put ("empty", "", GRPC_STATUS_OK);
}
END_TEST

START_TEST (test_bad_requests)
{
    Titan__V1__GetRequest get = TITAN__V1__GET_REQUEST__INIT;
    get.key = s_bin ("k");
    get.consistency = (Titan__V1__Consistency) 7;
    s_result_t r = s_call ("/titan.v1.KV/Get", &get.base, 5000);
    ck_assert_int_eq (r.code, GRPC_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull (strstr (r.details, "consistency 7"));

    /* a deferred put is validated as any put before it is accepted */
    Titan__V1__PutRequest put = TITAN__V1__PUT_REQUEST__INIT;
    put.key = s_bin ("");
    put.deferred = 1;
    r = s_call ("/titan.v1.KV/Put", &put.base, 5000);
    ck_assert_int_eq (r.code, GRPC_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull (strstr (r.details, "key is empty"));

    /* bytes that are not a PutRequest: field 1 as a varint-length overrun */
    tc_conn_t *conn = tc_conn_new (s_target);
    uint8_t junk [] = { 0x0a, 0x7f, 0x01 };
    uint8_t *data;
    size_t size;
    char details [256];
    grpc_status_code code = tc_call (conn, "/titan.v1.KV/Put", junk, sizeof junk,
                                     5000, &data, &size, details, sizeof details);
    ck_assert_int_eq (code, GRPC_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull (strstr (details, "does not decode"));
    code = tc_call (conn, "/titan.v1.KV/Nope", junk, sizeof junk,
                    5000, &data, &size, details, sizeof details);
    ck_assert_int_eq (code, GRPC_STATUS_UNIMPLEMENTED);
    ck_assert_ptr_nonnull (strstr (details, "/titan.v1.KV/Nope"));
    tc_conn_destroy (&conn);
}
END_TEST

START_TEST (test_cas)
{
    Titan__V1__CompareAndSwapRequest cas = TITAN__V1__COMPARE_AND_SWAP_REQUEST__INIT;
    cas.key = s_bin ("counter");
    cas.value = s_bin ("1");
    cas.expected_revision = 0;             /* create if absent */
    s_result_t r = s_call ("/titan.v1.KV/CompareAndSwap", &cas.base, 5000);
    ck_assert_msg (r.code == GRPC_STATUS_OK, "%s", r.details);
    Titan__V1__CompareAndSwapResponse *resp =
        titan__v1__compare_and_swap_response__unpack (NULL, r.size, r.data);
    uint64_t rev = resp->revision;
    ck_assert_uint_gt (rev, 0);
    titan__v1__compare_and_swap_response__free_unpacked (resp, NULL);
    free (r.data);

    r = s_call ("/titan.v1.KV/CompareAndSwap", &cas.base, 5000);
    ck_assert_int_eq (r.code, GRPC_STATUS_FAILED_PRECONDITION);
    char expect [200];
    snprintf (expect, sizeof expect, "compare-and-swap failed: expected the "
              "key to be absent, but it exists at revision %lu", (unsigned long) rev);
    ck_assert_str_eq (r.details, expect);

    cas.expected_revision = rev + 100;
    r = s_call ("/titan.v1.KV/CompareAndSwap", &cas.base, 5000);
    ck_assert_int_eq (r.code, GRPC_STATUS_FAILED_PRECONDITION);
    snprintf (expect, sizeof expect, "compare-and-swap failed: expected "
              "revision %lu, current revision is %lu",
              (unsigned long) rev + 100, (unsigned long) rev);
    ck_assert_str_eq (r.details, expect);

    cas.expected_revision = rev;
    cas.value = s_bin ("2");
    r = s_call ("/titan.v1.KV/CompareAndSwap", &cas.base, 5000);
    ck_assert_int_eq (r.code, GRPC_STATUS_OK);
    free (r.data);

    cas.key = s_bin ("nobody");
    cas.expected_revision = 5;
    r = s_call ("/titan.v1.KV/CompareAndSwap", &cas.base, 5000);
    ck_assert_int_eq (r.code, GRPC_STATUS_FAILED_PRECONDITION);
    ck_assert_ptr_nonnull (strstr (r.details, "does not exist"));
}
END_TEST

START_TEST (test_unavailable_and_deadlines)
{
    s_unavail_seen = 0;
    s_put ("unavail", "x", GRPC_STATUS_UNAVAILABLE);
    ck_assert_int_ge (s_unavail_seen, 3);          /* retried with backoff */
    Titan__V1__PutRequest put = TITAN__V1__PUT_REQUEST__INIT;
    put.key = s_bin ("unavail");
    s_result_t r = s_call ("/titan.v1.KV/Put", &put.base, 5000);
    ck_assert_int_eq (r.code, GRPC_STATUS_UNAVAILABLE);
    ck_assert_msg (strstr (r.details, "no leader for shard 0 (no quorum?)"),
                   "%s", r.details);
    ck_assert_msg (strstr (r.details, "(last answer: shard 0 has no quorum)"),
                   "%s", r.details);

    /* no answer, no client deadline to speak of: our own timeout */
    put.key = s_bin ("drop");
    int64_t start = zclock_mono ();
    r = s_call ("/titan.v1.KV/Put", &put.base, 20000);
    ck_assert_int_eq (r.code, GRPC_STATUS_UNAVAILABLE);
    ck_assert_str_eq (r.details, "the raft module did not answer within "
                      "300 ms (request_timeout_ms); retry");
    ck_assert_int_lt (zclock_mono () - start, 15000);

    /* a client deadline shorter than request_timeout_ms */
    r = s_call ("/titan.v1.KV/Put", &put.base, 150);
    ck_assert_int_eq (r.code, GRPC_STATUS_DEADLINE_EXCEEDED);

    /* a reply that comes after the timeout is dropped, and the gateway
       keeps serving */
    put.key = s_bin ("late");
    r = s_call ("/titan.v1.KV/Put", &put.base, 20000);
    ck_assert_int_eq (r.code, GRPC_STATUS_UNAVAILABLE);
    zclock_sleep (500);
    uint64_t rev = s_put ("after", "v", GRPC_STATUS_OK);
    ck_assert_uint_gt (rev, 0);
}
END_TEST

START_TEST (test_cluster_and_admin)
{
    /* membership goes to raft; Join and Leave answer with the members */
    Titan__V1__JoinRequest join = TITAN__V1__JOIN_REQUEST__INIT;
    join.node_id = "node2";
    s_result_t r = s_call ("/titan.v1.Cluster/Join", &join.base, 5000);
    ck_assert_int_eq (r.code, GRPC_STATUS_INVALID_ARGUMENT);   /* no addresses */
    ck_assert_ptr_nonnull (strstr (r.details, "peer_addr"));
    join.peer_addr = "127.0.0.1:3";
    join.client_addr = "127.0.0.1:4";
    r = s_call ("/titan.v1.Cluster/Join", &join.base, 5000);
    ck_assert_msg (r.code == GRPC_STATUS_OK, "%s", r.details);
    Titan__V1__JoinResponse *joined =
        titan__v1__join_response__unpack (NULL, r.size, r.data);
    ck_assert_ptr_nonnull (joined);
    ck_assert_uint_eq (joined->n_members, 2);
    ck_assert_str_eq (joined->members [1]->id, "node2");
    ck_assert_str_eq (joined->members [1]->state, "joining");
    ck_assert_str_eq (joined->members [1]->peer_addr, "127.0.0.1:3");
    titan__v1__join_response__free_unpacked (joined, NULL);
    free (r.data);

    Titan__V1__MemberListRequest ml = TITAN__V1__MEMBER_LIST_REQUEST__INIT;
    r = s_call ("/titan.v1.Cluster/MemberList", &ml.base, 5000);
    ck_assert_int_eq (r.code, GRPC_STATUS_OK);
    Titan__V1__MemberListResponse *members =
        titan__v1__member_list_response__unpack (NULL, r.size, r.data);
    ck_assert_uint_eq (members->n_members, 2);
    ck_assert_str_eq (members->members [0]->id, "gwtest");
    ck_assert_str_eq (members->members [0]->state, "up");
    ck_assert_str_eq (members->members [0]->client_addr, "127.0.0.1:2");
    titan__v1__member_list_response__free_unpacked (members, NULL);
    free (r.data);

    Titan__V1__TransferLeaderRequest tl = TITAN__V1__TRANSFER_LEADER_REQUEST__INIT;
    r = s_call ("/titan.v1.Cluster/TransferLeader", &tl.base, 5000);
    ck_assert_int_eq (r.code, GRPC_STATUS_INVALID_ARGUMENT);   /* no target */
    tl.target_node_id = "node2";
    tl.shard = 4;
    r = s_call ("/titan.v1.Cluster/TransferLeader", &tl.base, 5000);
    ck_assert_int_eq (r.code, GRPC_STATUS_INVALID_ARGUMENT);   /* no shard 4 */
    tl.shard = 0;
    r = s_call ("/titan.v1.Cluster/TransferLeader", &tl.base, 5000);
    ck_assert_msg (r.code == GRPC_STATUS_OK, "%s", r.details);
    free (r.data);

    Titan__V1__LeaveRequest leave = TITAN__V1__LEAVE_REQUEST__INIT;
    r = s_call ("/titan.v1.Cluster/Leave", &leave.base, 5000);
    ck_assert_int_eq (r.code, GRPC_STATUS_INVALID_ARGUMENT);   /* no id */
    leave.node_id = "node9";
    r = s_call ("/titan.v1.Cluster/Leave", &leave.base, 5000);
    ck_assert_int_eq (r.code, GRPC_STATUS_NOT_FOUND);
    ck_assert_str_eq (r.details, "no member named that");

    s_put ("s1", "v", GRPC_STATUS_OK);
    Titan__V1__StatusRequest st = TITAN__V1__STATUS_REQUEST__INIT;
    r = s_call ("/titan.v1.Cluster/Status", &st.base, 5000);
    ck_assert_int_eq (r.code, GRPC_STATUS_OK);
    Titan__V1__StatusResponse *status =
        titan__v1__status_response__unpack (NULL, r.size, r.data);
    ck_assert_str_eq (status->node_id, "gwtest");
    ck_assert_uint_eq (status->n_nodes, 2);
    ck_assert_uint_eq (status->n_shards, 1);
    ck_assert_str_eq (status->shards [0]->leader, "gwtest");
    ck_assert_uint_eq (status->shards [0]->n_replicas, 2);
    ck_assert_uint_eq (status->shards [0]->keys, 2);    /* s1 and the fake's node2 */
    ck_assert_uint_ge (status->shards [0]->applied_index, 1);
    titan__v1__status_response__free_unpacked (status, NULL);
    free (r.data);

    leave.node_id = "node2";
    r = s_call ("/titan.v1.Cluster/Leave", &leave.base, 5000);
    ck_assert_msg (r.code == GRPC_STATUS_OK, "%s", r.details);
    Titan__V1__LeaveResponse *left =
        titan__v1__leave_response__unpack (NULL, r.size, r.data);
    ck_assert_uint_eq (left->n_members, 1);
    titan__v1__leave_response__free_unpacked (left, NULL);
    free (r.data);

    Titan__V1__ListModulesRequest lm = TITAN__V1__LIST_MODULES_REQUEST__INIT;
    r = s_call ("/titan.v1.Admin/ListModules", &lm.base, 5000);
    ck_assert_int_eq (r.code, GRPC_STATUS_OK);
    Titan__V1__ListModulesResponse *mods =
        titan__v1__list_modules_response__unpack (NULL, r.size, r.data);
    ck_assert_uint_eq (mods->n_modules, 2);
    ck_assert_str_eq (mods->modules [1]->name, "grpc_gateway");
    ck_assert_uint_eq (mods->modules [1]->restarts, 1);
    titan__v1__list_modules_response__free_unpacked (mods, NULL);
    free (r.data);

    Titan__V1__ModuleRequest mr = TITAN__V1__MODULE_REQUEST__INIT;
    mr.name = "bitcask";
    r = s_call ("/titan.v1.Admin/RestartModule", &mr.base, 5000);
    ck_assert_int_eq (r.code, GRPC_STATUS_OK);
    free (r.data);
    mr.name = "nosuch";
    r = s_call ("/titan.v1.Admin/ReloadModule", &mr.base, 5000);
    ck_assert_int_eq (r.code, GRPC_STATUS_NOT_FOUND);
    ck_assert_str_eq (r.details, "no module named that");
    mr.name = "";
    r = s_call ("/titan.v1.Admin/ReloadModule", &mr.base, 5000);
    ck_assert_int_eq (r.code, GRPC_STATUS_INVALID_ARGUMENT);

    Titan__V1__MergeRequest merge = TITAN__V1__MERGE_REQUEST__INIT;
    r = s_call ("/titan.v1.Admin/Merge", &merge.base, 5000);
    ck_assert_int_eq (r.code, GRPC_STATUS_OK);
    Titan__V1__MergeResponse *m = titan__v1__merge_response__unpack (NULL, r.size, r.data);
    ck_assert_uint_eq (m->files_merged, 2);
    titan__v1__merge_response__free_unpacked (m, NULL);
    free (r.data);
    merge.shard = 3;
    r = s_call ("/titan.v1.Admin/Merge", &merge.base, 5000);
    ck_assert_int_eq (r.code, GRPC_STATUS_INVALID_ARGUMENT);
}
END_TEST

/*  Several clients at once, each on its own connection.  */
#define S_CLIENTS 8
#define S_PUTS 40

static void *
s_client (void *arg)
{
    int id = (int) (intptr_t) arg;
    tc_conn_t *conn = tc_conn_new (s_target);
    int ok = 0;
    for (int i = 0; i < S_PUTS; i++) {
        char key [16];
        snprintf (key, sizeof key, "c%d-%d", id, i);
        Titan__V1__PutRequest put = TITAN__V1__PUT_REQUEST__INIT;
        put.key = s_bin (key);
        put.value = s_bin (key);
        uint8_t buf [64];
        size_t size = titan__v1__put_request__pack (&put, buf);
        uint8_t *data;
        size_t dsize;
        if (tc_call (conn, "/titan.v1.KV/Put", buf, size, 10000, &data,
                     &dsize, NULL, 0) == GRPC_STATUS_OK) {
            ok++;
            free (data);
        }
    }
    tc_conn_destroy (&conn);
    return (void *) (intptr_t) ok;
}

START_TEST (test_concurrent)
{
    pthread_t threads [S_CLIENTS];
    for (int i = 0; i < S_CLIENTS; i++)
        pthread_create (&threads [i], NULL, s_client, (void *) (intptr_t) i);
    int total = 0;
    for (int i = 0; i < S_CLIENTS; i++) {
        void *ok;
        pthread_join (threads [i], &ok);
        total += (int) (intptr_t) ok;
    }
    ck_assert_int_eq (total, S_CLIENTS * S_PUTS);
    uint64_t rev = s_put ("last", "v", GRPC_STATUS_OK);
    ck_assert_uint_eq (rev, S_CLIENTS * S_PUTS + 1);
}
END_TEST

START_TEST (test_restart)
{
    /* stop and start the actor, as the supervisor does */
    for (int i = 0; i < 2; i++) {
        s_put ("r", "v", GRPC_STATUS_OK);
        zactor_destroy (&s_gateway);
        s_gateway = s_start_gateway (titan_module_descriptor.actor);
    }
    s_put ("r", "v", GRPC_STATUS_OK);

    /* stop while a call waits on the bus: the client gets UNAVAILABLE */
    tc_conn_t *conn = tc_conn_new (s_target);
    Titan__V1__PutRequest put = TITAN__V1__PUT_REQUEST__INIT;
    put.key = s_bin ("drop");
    uint8_t buf [64];
    size_t size = titan__v1__put_request__pack (&put, buf);
    zactor_destroy (&s_gateway);
    s_gateway = s_start_gateway (titan_module_descriptor.actor);
    uint8_t *data;
    size_t dsize;
    char details [256];
    (void) tc_call (conn, "/titan.v1.KV/Put", buf, size, 2000, &data, &dsize,
                    details, sizeof details);
    tc_conn_destroy (&conn);
}
END_TEST

START_TEST (test_reload_shared_object)
{
    /* dlclose + dlopen of the built module, as "module reload" does */
    const char *path_env = getenv ("TITAN_MODULE_PATH");
    char path [4096] = "";
    if (path_env) {
        char *paths = strdup (path_env);
        for (char *dir = strtok (paths, ":"); dir; dir = strtok (NULL, ":")) {
            snprintf (path, sizeof path, "%s/titan_grpc_gateway.so", dir);
            if (zsys_file_exists (path))
                break;
            path [0] = 0;
        }
        free (paths);
    }
    if (!*path) {
        fprintf (stderr, "gateway_test: titan_grpc_gateway.so not found in "
                 "TITAN_MODULE_PATH; skipping the reload check\n");
        return;
    }
    zactor_destroy (&s_gateway);
    for (int i = 0; i < 3; i++) {
        void *handle = dlopen (path, RTLD_NOW | RTLD_LOCAL);
        ck_assert_msg (handle, "dlopen %s: %s", path, dlerror ());
        const titan_module_descriptor_t *desc =
            dlsym (handle, TITAN_MODULE_SYMBOL);
        ck_assert_ptr_nonnull (desc);
        ck_assert_uint_eq (desc->abi_version, TITAN_MODULE_ABI_VERSION);
        zactor_t *gateway = s_start_gateway (desc->actor);
        s_put ("reload", "v", GRPC_STATUS_OK);
        zactor_destroy (&gateway);
        ck_assert_int_eq (dlclose (handle), 0);
    }
    s_gateway = s_start_gateway (titan_module_descriptor.actor);
}
END_TEST

/*  The API layer alone: method paths, and replies that are not what the
    bus contract says.  */
START_TEST (test_api_pure)
{
    gw_env_t env = { .node_id = "n1", .client_addr = "127.0.0.1:1", .peer_addr = "127.0.0.1:2", .module_name = "grpc_gateway", .max_key_bytes = 16, .max_value_bytes = 1024, .shards = 0, .ring = NULL };
    ck_assert_int_eq (gw_api_method ("/titan.v1.KV/Put", 16), GW_M_PUT);
    ck_assert_int_eq (gw_api_method ("/titan.v1.Admin/Merge", 21), GW_M_MERGE);
    ck_assert_int_eq (gw_api_method ("/titan.v1.KV/Pu", 15), -1);
    ck_assert_int_eq (gw_api_method ("/titan.v1.KV/Putt", 17), -1);
    for (int m = 0; m < GW_M_COUNT; m++) {
        const char *path = gw_api_method_path ((gw_method_t) m);
        ck_assert_int_eq (gw_api_method (path, strlen (path)), m);
    }

    gw_result_t res = { GRPC_STATUS_OK, "", NULL, 0 };
    uint8_t junk [] = { 0x0a, 0x7f };
    gw_api_complete (GW_M_PUT, 0, junk, sizeof junk, &res);
    ck_assert_int_eq (res.code, GRPC_STATUS_INTERNAL);
    ck_assert_ptr_nonnull (strstr (res.message, "does not decode"));

    /* a code outside gRPC's range becomes UNKNOWN, with its message kept */
    Titan__Bus__KvReply kv = TITAN__BUS__KV_REPLY__INIT;
    kv.code = (Titan__Bus__Code) 99;
    kv.message = "strange";
    uint8_t buf [64];
    size_t size = titan__bus__kv_reply__pack (&kv, buf);
    gw_api_complete (GW_M_GET, 0, buf, size, &res);
    ck_assert_int_eq (res.code, GRPC_STATUS_UNKNOWN);
    ck_assert_str_eq (res.message, "strange");

    /* a failure without a message gets one */
    kv.code = TITAN__BUS__CODE__INTERNAL;
    kv.message = "";
    size = titan__bus__kv_reply__pack (&kv, buf);
    gw_api_complete (GW_M_PUT, 0, buf, size, &res);
    ck_assert_int_eq (res.code, GRPC_STATUS_INTERNAL);
    ck_assert_str_eq (res.message, "storage request failed");

    /* no raft module on the node: the kernel's UNIMPLEMENTED, explained */
    kv.code = TITAN__BUS__CODE__UNIMPLEMENTED;
    kv.message = "raft: no module or client of that name";
    size = titan__bus__kv_reply__pack (&kv, buf);
    gw_api_complete (GW_M_PUT, 0, buf, size, &res);
    ck_assert_int_eq (res.code, GRPC_STATUS_UNIMPLEMENTED);
    ck_assert_ptr_nonnull (strstr (res.message, "does not run the raft module"));
    gw_bus_req_t next;
    Titan__Bus__RaftStatusReply rs = TITAN__BUS__RAFT_STATUS_REPLY__INIT;
    rs.code = TITAN__BUS__CODE__UNIMPLEMENTED;
    size = titan__bus__raft_status_reply__pack (&rs, buf);
    ck_assert_int_eq (gw_api_step (&env, GW_M_MEMBER_LIST, 0, 0, NULL, 0,
                                   buf, size, &next, &res), 0);
    ck_assert_int_eq (res.code, GRPC_STATUS_OK);       /* itself, alone */
    Titan__V1__MemberListResponse *ml =
        titan__v1__member_list_response__unpack (NULL, res.response_size,
                                                 res.response);
    ck_assert_uint_eq (ml->n_members, 1);
    ck_assert_str_eq (ml->members [0]->id, "n1");
    titan__v1__member_list_response__free_unpacked (ml, NULL);
    Titan__Bus__RaftMemberReply mrep = TITAN__BUS__RAFT_MEMBER_REPLY__INIT;
    mrep.code = TITAN__BUS__CODE__UNIMPLEMENTED;
    size = titan__bus__raft_member_reply__pack (&mrep, buf);
    ck_assert_int_eq (gw_api_step (&env, GW_M_LEAVE, 0, 0, NULL, 0,
                                   buf, size, &next, &res), 0);
    ck_assert_int_eq (res.code, GRPC_STATUS_UNIMPLEMENTED);

    /* redirects: a non-leader's refusal names the leader */
    char id [64], addr [64];
    kv.code = TITAN__BUS__CODE__UNAVAILABLE;
    kv.message = "not the leader";
    kv.leader_id = "n2";
    kv.leader_client_addr = "127.0.0.1:9";
    size = titan__bus__kv_reply__pack (&kv, buf);
    char why [64];
    ck_assert_int_eq (gw_api_redirect (GW_M_CAS, 0, buf, size, id, sizeof id,
                                       addr, sizeof addr, why, sizeof why), 1);
    ck_assert_str_eq (why, "not the leader");
    ck_assert_str_eq (id, "n2");
    ck_assert_str_eq (addr, "127.0.0.1:9");
    ck_assert_int_eq (gw_api_redirect (GW_M_MERGE, 0, buf, size, id, sizeof id,
                                       addr, sizeof addr, why, sizeof why), 0);
    kv.code = TITAN__BUS__CODE__NOT_FOUND;
    size = titan__bus__kv_reply__pack (&kv, buf);
    ck_assert_int_eq (gw_api_redirect (GW_M_GET, 0, buf, size, id, sizeof id,
                                       addr, sizeof addr, why, sizeof why), 0);

    /* the hop counter of a forwarded call */
    grpc_metadata_array md;
    grpc_metadata_array_init (&md);
    ck_assert_int_eq (gw_forward_hops (&md), 0);
    grpc_metadata one = { .key = grpc_slice_from_static_string ("titan-hops"),
                          .value = grpc_slice_from_static_string ("2") };
    md.metadata = &one;
    md.count = 1;
    ck_assert_int_eq (gw_forward_hops (&md), 2);
    one.value = grpc_slice_from_static_string ("x");
    ck_assert_int_gt (gw_forward_hops (&md), GW_MAX_HOPS);
    one.value = grpc_slice_from_static_string ("");
    ck_assert_int_gt (gw_forward_hops (&md), GW_MAX_HOPS);

    /* restart of the gateway itself is flagged */
    Titan__V1__ModuleRequest mr = TITAN__V1__MODULE_REQUEST__INIT;
    mr.name = "grpc_gateway";
    size = titan__v1__module_request__pack (&mr, buf);
    gw_bus_req_t req;
    ck_assert_int_eq (gw_api_prepare (&env, GW_M_RELOAD_MODULE, buf, size, &req, &res), 1);
    ck_assert_int_eq (req.targets_self, 1);
    ck_assert_str_eq (req.to, "kernel");
    free (req.payload);
    gw_result_reset (&res);
}
END_TEST

/*  gw_request_decode, the one step from request bytes to a validated
    request (also what the fuzz target runs): truncated messages, huge
    length prefixes, wrong wire types, unknown enums and every limit get
    a precise INVALID_ARGUMENT, for every method.  */
START_TEST (test_request_decode)
{
    gw_env_t env = { .node_id = "n1", .client_addr = "127.0.0.1:1", .peer_addr = "127.0.0.1:2", .module_name = "grpc_gateway", .max_key_bytes = 16, .max_value_bytes = 64, .shards = 0, .ring = NULL };
    gw_result_t res = { GRPC_STATUS_OK, "", NULL, 0 };
    gw_request_t req;
    /* truncated (a length past the end), a 64-bit length prefix, a
       varint that never ends, a wrong wire type for field 1 */
    const uint8_t bad [][12] = {
        { 0x0a, 0x7f, 0x01 },
        { 0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f },
        { 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },
        { 0x0d, 0x01 },
    };
    const size_t bad_size [] = { 3, 10, 12, 2 };
    for (int m = 0; m < GW_M_COUNT; m++)
        for (size_t i = 0; i < sizeof bad_size / sizeof bad_size [0]; i++) {
            ck_assert_int_eq (gw_request_decode (&env, (gw_method_t) m, bad [i],
                                                 bad_size [i], &req, &res), -1);
            ck_assert_int_eq (res.code, GRPC_STATUS_INVALID_ARGUMENT);
            ck_assert_ptr_nonnull (strstr (res.message, "does not decode"));
            ck_assert_ptr_null (req.msg);
            gw_result_reset (&res);
        }
    ck_assert_int_eq (gw_request_decode (&env, GW_M_COUNT, NULL, 0, &req, &res), -1);
    ck_assert_int_eq (res.code, GRPC_STATUS_UNIMPLEMENTED);
    gw_result_reset (&res);

    /* empty messages: fine where there are no fields (an empty SetLogLevel
       is the query of the current level), else the key or node id is
       missing */
    for (int m = 0; m < GW_M_COUNT; m++) {
        int rc = gw_request_decode (&env, (gw_method_t) m, NULL, 0, &req, &res);
        int fieldless = m == GW_M_STATUS || m == GW_M_MEMBER_LIST
                     || m == GW_M_LIST_MODULES || m == GW_M_MERGE
                     || m == GW_M_SET_LOG_LEVEL || m == GW_M_SCRUB;
        ck_assert_int_eq (rc, fieldless ? 0 : -1);
        ck_assert_int_eq (res.code, fieldless ? GRPC_STATUS_OK
                                              : GRPC_STATUS_INVALID_ARGUMENT);
        gw_request_clear (&req);
        gw_result_reset (&res);
    }

    uint8_t buf [256];
    char big [128];
    memset (big, 'k', sizeof big);
    Titan__V1__PutRequest put = TITAN__V1__PUT_REQUEST__INIT;
    put.key.data = (uint8_t *) big;
    put.key.len = 17;                       /* over max_key_bytes (16) */
    size_t size = titan__v1__put_request__pack (&put, buf);
    ck_assert_int_eq (gw_request_decode (&env, GW_M_PUT, buf, size, &req, &res), -1);
    ck_assert_str_eq (res.message, "key is 17 bytes, over the limit of 16 (max_key_bytes)");
    put.key.len = 16;
    put.value.data = (uint8_t *) big;
    put.value.len = 65;                     /* over max_value_bytes (64) */
    size = titan__v1__put_request__pack (&put, buf);
    ck_assert_int_eq (gw_request_decode (&env, GW_M_PUT, buf, size, &req, &res), -1);
    ck_assert_ptr_nonnull (strstr (res.message, "value is 65 bytes"));
    Titan__V1__CompareAndSwapRequest cas = TITAN__V1__COMPARE_AND_SWAP_REQUEST__INIT;
    cas.key = put.key;
    cas.value = put.value;
    size = titan__v1__compare_and_swap_request__pack (&cas, buf);
    ck_assert_int_eq (gw_request_decode (&env, GW_M_CAS, buf, size, &req, &res), -1);
    ck_assert_ptr_nonnull (strstr (res.message, "value is 65 bytes"));
    put.value.len = 64;
    size = titan__v1__put_request__pack (&put, buf);
    ck_assert_int_eq (gw_request_decode (&env, GW_M_PUT, buf, size, &req, &res), 0);
    ck_assert_uint_eq (((Titan__V1__PutRequest *) req.msg)->value.len, 64);
    gw_request_clear (&req);
    gw_request_clear (&req);                /* idempotent */
    ck_assert_ptr_null (req.msg);

    /* an unknown enum value (proto3 enums decode any number) */
    const uint8_t get_bad_enum [] = { 0x0a, 0x01, 'k', 0x10, 0x02 };
    ck_assert_int_eq (gw_request_decode (&env, GW_M_GET, get_bad_enum,
                                         sizeof get_bad_enum, &req, &res), -1);
    ck_assert_ptr_nonnull (strstr (res.message, "consistency 2"));
    const uint8_t get_neg_enum [] = { 0x0a, 0x01, 'k', 0x10, 0xff, 0xff, 0xff,
                                      0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 };
    ck_assert_int_eq (gw_request_decode (&env, GW_M_GET, get_neg_enum,
                                         sizeof get_neg_enum, &req, &res), -1);
    ck_assert_ptr_nonnull (strstr (res.message, "consistency -1"));

    Titan__V1__JoinRequest join = TITAN__V1__JOIN_REQUEST__INIT;
    join.node_id = "n9";
    join.peer_addr = "127.0.0.1:7";
    join.client_addr = "no-port";
    size = titan__v1__join_request__pack (&join, buf);
    ck_assert_int_eq (gw_request_decode (&env, GW_M_JOIN, buf, size, &req, &res), -1);
    ck_assert_ptr_nonnull (strstr (res.message, "client_addr \"no-port\" is not host:port"));
    Titan__V1__TransferLeaderRequest tl = TITAN__V1__TRANSFER_LEADER_REQUEST__INIT;
    tl.shard = 3;
    tl.target_node_id = "n2";
    size = titan__v1__transfer_leader_request__pack (&tl, buf);
    ck_assert_int_eq (gw_request_decode (&env, GW_M_TRANSFER_LEADER, buf, size,
                                         &req, &res), -1);
    ck_assert_ptr_nonnull (strstr (res.message, "shard 3 does not exist"));
    gw_result_reset (&res);
    /* with Q = 4 shards, shard 3 exists and shard 4 does not */
    env.shards = 4;
    ck_assert_int_eq (gw_request_decode (&env, GW_M_TRANSFER_LEADER, buf, size,
                                         &req, &res), 0);
    gw_request_clear (&req);
    tl.shard = 4;
    size = titan__v1__transfer_leader_request__pack (&tl, buf);
    ck_assert_int_eq (gw_request_decode (&env, GW_M_TRANSFER_LEADER, buf, size,
                                         &req, &res), -1);
    ck_assert_ptr_nonnull (strstr (res.message, "shards 0 to 3"));
    env.shards = 0;
    Titan__V1__ModuleRequest mod = TITAN__V1__MODULE_REQUEST__INIT;
    big [64] = 0;
    mod.name = big;                         /* 64 bytes: over 63 */
    size = titan__v1__module_request__pack (&mod, buf);
    ck_assert_int_eq (gw_request_decode (&env, GW_M_RESTART_MODULE, buf, size,
                                         &req, &res), -1);
    ck_assert_ptr_nonnull (strstr (res.message, "module name is 64 bytes"));
    gw_result_reset (&res);

    ck_assert_int_eq (gw_request_hops ((const uint8_t *) "0", 1), 0);
    ck_assert_int_eq (gw_request_hops ((const uint8_t *) "99", 2), 99);
    ck_assert_int_gt (gw_request_hops ((const uint8_t *) "100", 3), GW_MAX_HOPS);
    ck_assert_int_gt (gw_request_hops ((const uint8_t *) "-1", 2), GW_MAX_HOPS);
    ck_assert_int_gt (gw_request_hops ((const uint8_t *) "", 0), GW_MAX_HOPS);
}
END_TEST

/*  ------------------------------------------------------------ ring  */

/*  A packed RingTable of Q shards, R replicas, nodes n1..n`nodes` (client
    address 127.0.0.1:700<i>), node `leaving` (1-based, 0: none) set
    leaving; each change of membership raises the epoch, so more nodes
    means a higher epoch.  The caller frees *data_p.  */
static void
s_ring_msg_named (uint32_t q, uint32_t r, int nodes, int leaving,
                  const char *const *names, const char *const *clients,
                  uint8_t **data_p, size_t *size_p, uint64_t *epoch_p)
{
    ring_members_t *m = ring_members_new (q, r);
    ck_assert_ptr_nonnull (m);
    ring_cmd_t cmd;
    char err [200], id [16], client [32], peer [32];
    for (int i = 1; i <= nodes; i++) {
        snprintf (id, sizeof id, "n%d", i);
        snprintf (client, sizeof client, "127.0.0.1:700%d", i);
        if (names)
            snprintf (id, sizeof id, "%s", names [i - 1]);
        if (clients)
            snprintf (client, sizeof client, "%s", clients [i - 1]);
        snprintf (peer, sizeof peer, "127.0.0.1:800%d", i);
        ck_assert_int_eq (ring_cmd_add (&cmd, id, client, peer, err, sizeof err), 0);
        ck_assert_int_eq (ring_members_apply_cmd (m, &cmd, err, sizeof err), 0);
        ck_assert_int_eq (ring_cmd_set_state (&cmd, id, i == leaving
                                              ? RING_LEAVING : RING_ACTIVE,
                                              err, sizeof err), 0);
        ck_assert_int_eq (ring_members_apply_cmd (m, &cmd, err, sizeof err), 0);
    }
    ring_table_t *table = NULL;
    ck_assert_int_eq (ring_table_build (m, &table), 0);
    Titan__Bus__RingTable msg = TITAN__BUS__RING_TABLE__INIT;
    msg.epoch = ring_table_epoch (table);
    msg.shards = q;
    msg.replicas = r;
    ck_assert_int_eq (ring_table_encode (table, &msg.table.data,
                                         &msg.table.len), 0);
    uint32_t n = ring_members_size (m);
    Titan__Bus__RingNode *rn = calloc (n, sizeof *rn);
    Titan__Bus__RingNode **ptrs = calloc (n, sizeof *ptrs);
    for (uint32_t i = 0; i < n; i++) {
        const ring_member_t *mem = ring_members_at (m, i);
        titan__bus__ring_node__init (&rn [i]);
        rn [i].node_id = (char *) mem->id;
        rn [i].client_addr = (char *) mem->client_addr;
        rn [i].peer_addr = (char *) mem->peer_addr;
        rn [i].state = (char *) ring_state_name (mem->state);
        ptrs [i] = &rn [i];
    }
    msg.n_nodes = n;
    msg.nodes = ptrs;
    *size_p = titan__bus__ring_table__get_packed_size (&msg);
    *data_p = malloc (*size_p);
    titan__bus__ring_table__pack (&msg, *data_p);
    *epoch_p = msg.epoch;
    free (msg.table.data);
    free (rn);
    free (ptrs);
    ring_table_destroy (&table);
    ring_members_destroy (&m);
}

static void
s_ring_msg (uint32_t q, uint32_t r, int nodes, int leaving, uint8_t **data_p,
            size_t *size_p, uint64_t *epoch_p)
{
    s_ring_msg_named (q, r, nodes, leaving, NULL, NULL, data_p, size_p, epoch_p);
}

/*  A view holding the table of s_ring_msg; stores its epoch.  */
static gw_ring_t *
s_ring_new (uint32_t q, uint32_t r, int nodes, int leaving, uint64_t *epoch_p)
{
    gw_ring_t *ring = gw_ring_new ();
    uint8_t *t;
    size_t size;
    s_ring_msg (q, r, nodes, leaving, &t, &size, epoch_p);
    char err [300];
    ck_assert_int_eq (gw_ring_offer (ring, t, size, err, sizeof err), 1);
    free (t);
    return ring;
}

/*  The newest epoch wins; refusals (undecodable, damaged table bytes, a
    Q that disagrees, a placement naming an unlisted node, the ring
    module's UNAVAILABLE and the kernel's UNIMPLEMENTED) keep the current
    table and say why.  */
START_TEST (test_ring_table_epochs)
{
    gw_ring_t *ring = gw_ring_new ();
    ck_assert (!gw_ring_active (ring));
    ck_assert_uint_eq (gw_ring_shards (ring), 0);
    char err [300];
    uint8_t junk [] = { 0x0a, 0x7f, 0x01 };
    ck_assert_int_eq (gw_ring_offer (ring, junk, sizeof junk, err, sizeof err),
                      -EINVAL);
    ck_assert_ptr_nonnull (strstr (err, "does not decode"));
    Titan__Bus__RingTable no = TITAN__BUS__RING_TABLE__INIT;
    no.code = TITAN__BUS__CODE__UNAVAILABLE;
    no.message = "ring: no membership yet";
    uint8_t buf [256];
    size_t size = titan__bus__ring_table__pack (&no, buf);
    ck_assert_int_eq (gw_ring_offer (ring, buf, size, err, sizeof err), -EAGAIN);
    ck_assert_ptr_nonnull (strstr (err, "no membership yet"));
    no.code = TITAN__BUS__CODE__UNIMPLEMENTED;
    size = titan__bus__ring_table__pack (&no, buf);
    ck_assert_int_eq (gw_ring_offer (ring, buf, size, err, sizeof err), -ENOENT);
    ck_assert (!gw_ring_active (ring));

    uint8_t *t3, *t4;
    size_t s3, s4;
    uint64_t e3, e4;
    s_ring_msg (8, 3, 3, 0, &t3, &s3, &e3);
    s_ring_msg (8, 3, 4, 0, &t4, &s4, &e4);
    ck_assert_uint_gt (e4, e3);
    ck_assert_int_eq (gw_ring_offer (ring, t3, s3, err, sizeof err), 1);
    ck_assert_uint_eq (gw_ring_epoch (ring), e3);
    ck_assert_uint_eq (gw_ring_shards (ring), 8);
    ck_assert_uint_eq (gw_ring_replicas (ring), 3);
    ck_assert_uint_eq (gw_ring_members (ring), 3);
    ck_assert_int_eq (gw_ring_offer (ring, t3, s3, err, sizeof err), 0);
    ck_assert_int_eq (gw_ring_offer (ring, t4, s4, err, sizeof err), 1);
    ck_assert_uint_eq (gw_ring_epoch (ring), e4);
    ck_assert_uint_eq (gw_ring_members (ring), 4);
    ck_assert_int_eq (gw_ring_offer (ring, t3, s3, err, sizeof err), 0);
    ck_assert_uint_eq (gw_ring_epoch (ring), e4);       /* older: ignored */
    ck_assert_str_eq (gw_ring_client_addr (ring, "n2"), "127.0.0.1:7002");
    ck_assert_str_eq (gw_ring_state (ring, "n4"), "active");
    ck_assert_ptr_null (gw_ring_client_addr (ring, "n9"));

    /* a newer table with damaged placement bytes, a disagreeing Q, or a
       placement naming a node its list lacks: refused, e4 kept */
    uint8_t *t5;
    size_t s5;
    uint64_t e5;
    s_ring_msg (8, 3, 5, 0, &t5, &s5, &e5);
    Titan__Bus__RingTable *m5 = titan__bus__ring_table__unpack (NULL, s5, t5);
    ck_assert_ptr_nonnull (m5);
    uint8_t *bad = malloc (s5 + 64);
    m5->table.data [m5->table.len / 2] ^= 0x10;
    size = titan__bus__ring_table__pack (m5, bad);
    ck_assert_int_eq (gw_ring_offer (ring, bad, size, err, sizeof err), -EINVAL);
    ck_assert_ptr_nonnull (strstr (err, "refused"));
    m5->table.data [m5->table.len / 2] ^= 0x10;
    m5->shards = 16;
    size = titan__bus__ring_table__pack (m5, bad);
    ck_assert_int_eq (gw_ring_offer (ring, bad, size, err, sizeof err), -EINVAL);
    ck_assert_ptr_nonnull (strstr (err, "16 shards"));
    m5->shards = 8;
    m5->n_nodes--;                          /* drop the last node listed */
    size = titan__bus__ring_table__pack (m5, bad);
    m5->n_nodes++;
    ck_assert_int_eq (gw_ring_offer (ring, bad, size, err, sizeof err), -EINVAL);
    ck_assert_ptr_nonnull (strstr (err, "lacks"));
    ck_assert_uint_eq (gw_ring_epoch (ring), e4);
    ck_assert_int_eq (gw_ring_offer (ring, t5, s5, err, sizeof err), 1);
    ck_assert_uint_eq (gw_ring_epoch (ring), e5);
    titan__bus__ring_table__free_unpacked (m5, NULL);
    free (bad);
    free (t3);
    free (t4);
    free (t5);
    gw_ring_destroy (&ring);
    gw_ring_destroy (&ring);               /* NULL is fine */
}
END_TEST

/*  Forwarding targets: the shard's replicas in rank order, this node
    skipped, then none; leader hints naming a node that is no longer a
    replica of their shard are forgotten when a table comes.  */
START_TEST (test_ring_targets_and_hints)
{
    uint64_t epoch;
    gw_ring_t *ring = s_ring_new (8, 3, 5, 0, &epoch);
    for (uint32_t shard = 0; shard < 8; shard++) {
        ck_assert_uint_eq (gw_ring_shard_size (ring, shard), 3);
        const char *me = gw_ring_replica (ring, shard, 1);
        ck_assert (gw_ring_places (ring, shard, me));
        uint32_t next = 0;
        const char *id, *addr;
        uint32_t rank = 0, seen = 0;
        while (gw_ring_target (ring, shard, me, &next, &id, &addr)) {
            if (rank == 1)
                rank++;                      /* rank 1 is "me": skipped */
            ck_assert_str_eq (id, gw_ring_replica (ring, shard, rank));
            ck_assert_str_eq (addr, gw_ring_client_addr (ring, id));
            ck_assert_uint_eq (next, rank + 1);
            rank++;
            seen++;
        }
        ck_assert_uint_eq (seen, 2);
        ck_assert (!gw_ring_target (ring, shard, me, &next, &id, &addr));
        /* a node the table does not place here is no target at all */
        for (int i = 1; i <= 5; i++) {
            char other [8];
            snprintf (other, sizeof other, "n%d", i);
            if (!gw_ring_places (ring, shard, other)) {
                next = 0;
                while (gw_ring_target (ring, shard, NULL, &next, &id, &addr))
                    ck_assert_str_ne (id, other);
            }
        }
    }
    ck_assert_ptr_null (gw_ring_replica (ring, 8, 0));
    ck_assert_uint_eq (gw_ring_shard_size (ring, 99), 0);

    /* hints: rank 0 kept, a node not placed forgotten, empty untouched */
    gw_leader_hint_t hints [8];
    memset (hints, 0, sizeof hints);
    uint32_t expect = 0;
    for (uint32_t shard = 0; shard < 8; shard++) {
        const char *id = shard % 2 ? gw_ring_replica (ring, shard, 0) : NULL;
        if (!id) {
            for (int i = 1; i <= 5 && !id; i++) {
                static char name [8];
                snprintf (name, sizeof name, "n%d", i);
                if (!gw_ring_places (ring, shard, name))
                    id = name;
            }
            expect++;
        }
        snprintf (hints [shard].id, sizeof hints [shard].id, "%s", id);
        snprintf (hints [shard].addr, sizeof hints [shard].addr, "a");
    }
    *hints [6].id = *hints [6].addr = '\0';
    expect--;
    ck_assert_uint_eq (gw_ring_prune_hints (ring, hints, 8), expect);
    for (uint32_t shard = 0; shard < 8; shard++) {
        if (shard % 2)
            ck_assert_str_eq (hints [shard].id, gw_ring_replica (ring, shard, 0));
        else
            ck_assert_str_eq (hints [shard].id, "");
    }
    gw_ring_destroy (&ring);
    ck_assert_uint_eq (gw_ring_prune_hints (NULL, hints, 8), 0);
}
END_TEST

/*  Ring mode in the API layer: Join and Leave go to the meta group;
    Status asks kv.stats of every hosted data shard, then reports all Q
    shards (desired replicas from the table, this node's view of those it
    hosts) and the table's members with their ring states; MemberList is
    the table's members.  */
START_TEST (test_ring_status_api)
{
    uint64_t epoch;
    gw_ring_t *ring = s_ring_new (8, 3, 4, 4, &epoch);
    size_t size;
    gw_env_t env = { .node_id = "n1", .client_addr = "127.0.0.1:7001", .peer_addr = "127.0.0.1:8001", .module_name = "grpc_gateway", .max_key_bytes = 16, .max_value_bytes = 1024, .shards = 8, .ring = ring };
    gw_bus_req_t req;
    gw_result_t res = { GRPC_STATUS_OK, "", NULL, 0 };
    uint8_t buf [512];

    Titan__V1__JoinRequest join = TITAN__V1__JOIN_REQUEST__INIT;
    join.node_id = "n5";
    join.client_addr = "127.0.0.1:7005";
    join.peer_addr = "127.0.0.1:8005";
    size = titan__v1__join_request__pack (&join, buf);
    ck_assert_int_eq (gw_api_prepare (&env, GW_M_JOIN, buf, size, &req, &res), 1);
    ck_assert_uint_eq (req.shard, TITAN_META_SHARD);
    free (req.payload);
    Titan__V1__LeaveRequest leave = TITAN__V1__LEAVE_REQUEST__INIT;
    leave.node_id = "n4";
    size = titan__v1__leave_request__pack (&leave, buf);
    ck_assert_int_eq (gw_api_prepare (&env, GW_M_LEAVE, buf, size, &req, &res), 1);
    ck_assert_str_eq (req.type, TITAN_T_RAFT_REMOVE);
    Titan__Bus__RaftMemberChange *change =
        titan__bus__raft_member_change__unpack (NULL, req.size, req.payload);
    ck_assert_uint_eq (change->shard, TITAN_META_SHARD);
    ck_assert_str_eq (change->node_id, "n4");
    titan__bus__raft_member_change__free_unpacked (change, NULL);
    free (req.payload);

    /* raft.status: the meta group and shards 1 and 3 (3 moving in n4) */
    Titan__Bus__RaftMember a = TITAN__BUS__RAFT_MEMBER__INIT;
    a.node_id = "n1"; a.voter = 1;
    Titan__Bus__RaftMember b = TITAN__BUS__RAFT_MEMBER__INIT;
    b.node_id = "n4"; b.voter = 0;
    Titan__Bus__RaftMember *members [2] = { &a, &b };
    Titan__Bus__RaftGroupStatus meta = TITAN__BUS__RAFT_GROUP_STATUS__INIT;
    meta.shard = TITAN_META_SHARD; meta.role = "leader"; meta.leader_id = "n1";
    meta.n_members = 1; meta.members = members;
    Titan__Bus__RaftGroupStatus g1 = TITAN__BUS__RAFT_GROUP_STATUS__INIT;
    g1.shard = 1; g1.role = "leader"; g1.leader_id = "n1";
    g1.n_members = 1; g1.members = members;
    Titan__Bus__RaftGroupStatus g3 = TITAN__BUS__RAFT_GROUP_STATUS__INIT;
    g3.shard = 3; g3.role = "follower"; g3.leader_id = "n2";
    g3.n_members = 2; g3.members = members;
    Titan__Bus__RaftGroupStatus *groups [3] = { &meta, &g1, &g3 };
    Titan__Bus__RaftStatusReply rs = TITAN__BUS__RAFT_STATUS_REPLY__INIT;
    rs.n_groups = 3;
    rs.groups = groups;
    size_t rs_size = titan__bus__raft_status_reply__pack (&rs, buf);
    uint8_t *prev = NULL;
    size_t prev_size = 0;
    ck_assert_int_eq (gw_api_step (&env, GW_M_STATUS, 0, 0, prev, prev_size,
                                   buf, rs_size, &req, &res), 1);
    ck_assert_str_eq (req.type, TITAN_T_KV_STATS);
    Titan__Bus__KvStatsRequest *sq =
        titan__bus__kv_stats_request__unpack (NULL, req.size, req.payload);
    ck_assert_uint_eq (sq->shard, 1);
    titan__bus__kv_stats_request__free_unpacked (sq, NULL);
    free (req.payload);
    ck_assert_int_eq (gw_api_prev_append (&prev, &prev_size, buf, rs_size), 0);
    Titan__Bus__KvStatsReply st1 = TITAN__BUS__KV_STATS_REPLY__INIT;
    st1.keys = 11; st1.last_revision = 111; st1.applied_index = 112;
    uint8_t sbuf [128];
    size_t s1 = titan__bus__kv_stats_reply__pack (&st1, sbuf);
    ck_assert_int_eq (gw_api_step (&env, GW_M_STATUS, 0, 1, prev, prev_size,
                                   sbuf, s1, &req, &res), 1);
    sq = titan__bus__kv_stats_request__unpack (NULL, req.size, req.payload);
    ck_assert_uint_eq (sq->shard, 3);
    titan__bus__kv_stats_request__free_unpacked (sq, NULL);
    free (req.payload);
    ck_assert_int_eq (gw_api_prev_append (&prev, &prev_size, sbuf, s1), 0);
    Titan__Bus__KvStatsReply st3 = TITAN__BUS__KV_STATS_REPLY__INIT;
    st3.keys = 33; st3.last_revision = 333;
    size_t s3 = titan__bus__kv_stats_reply__pack (&st3, sbuf);
    ck_assert_int_eq (gw_api_step (&env, GW_M_STATUS, 0, 2, prev, prev_size,
                                   sbuf, s3, &req, &res), 0);
    ck_assert_msg (res.code == GRPC_STATUS_OK, "%s", res.message);
    free (prev);
    Titan__V1__StatusResponse *out =
        titan__v1__status_response__unpack (NULL, res.response_size, res.response);
    ck_assert_ptr_nonnull (out);
    ck_assert_str_eq (out->placement, "ring");
    ck_assert_uint_eq (out->ring_epoch, epoch);
    ck_assert_uint_eq (out->shard_count, 8);
    ck_assert_uint_eq (out->replica_count, 3);
    ck_assert_uint_eq (out->n_shards, 8);
    for (uint32_t i = 0; i < 8; i++) {
        const Titan__V1__ShardStatus *sh = out->shards [i];
        ck_assert_uint_eq (sh->id, i);
        ck_assert_uint_eq (sh->n_desired, 3);
        for (uint32_t rank = 0; rank < 3; rank++)
            ck_assert_str_eq (sh->desired [rank], gw_ring_replica (ring, i, rank));
        ck_assert_int_eq (sh->hosted, i == 1 || i == 3);
    }
    ck_assert_uint_eq (out->shards [1]->keys, 11);
    ck_assert_uint_eq (out->shards [1]->last_revision, 111);
    ck_assert_str_eq (out->shards [1]->role, "leader");
    ck_assert_uint_eq (out->shards [3]->keys, 33);
    ck_assert_str_eq (out->shards [3]->leader, "n2");
    ck_assert_uint_eq (out->shards [3]->n_learners, 1);
    ck_assert_str_eq (out->shards [3]->learners [0], "n4");
    ck_assert_uint_eq (out->shards [0]->keys, 0);
    ck_assert_uint_eq (out->n_nodes, 4);
    for (size_t i = 0; i < out->n_nodes; i++) {
        const Titan__V1__NodeStatus *n = out->nodes [i];
        int leaving = strcmp (n->id, "n4") == 0;
        ck_assert_str_eq (n->ring_state, leaving ? "leaving" : "active");
        ck_assert_str_eq (n->state, leaving ? "leaving" : "up");
    }
    titan__v1__status_response__free_unpacked (out, NULL);
    gw_result_reset (&res);

    ck_assert_int_eq (gw_api_step (&env, GW_M_MEMBER_LIST, 0, 0, NULL, 0,
                                   buf, rs_size, &req, &res), 0);
    Titan__V1__MemberListResponse *ml =
        titan__v1__member_list_response__unpack (NULL, res.response_size,
                                                 res.response);
    ck_assert_uint_eq (ml->n_members, 4);
    ck_assert_str_eq (ml->members [3]->id, "n4");
    ck_assert_str_eq (ml->members [3]->ring_state, "leaving");
    ck_assert_str_eq (ml->members [3]->peer_addr, "127.0.0.1:8004");
    titan__v1__member_list_response__free_unpacked (ml, NULL);
    gw_result_reset (&res);
    gw_ring_destroy (&ring);
}
END_TEST

/*  The gateway actor in ring mode: it asks the ring module for the table
    at start and takes it (Status says so, Q = 8); a key whose shard the
    table places here is proposed locally; a key whose shard is placed
    only on "far" (whose client address refuses connections) is sent
    there, then, since far is down, asked locally again (the fake raft
    refuses: no replica here) until the deadline: UNAVAILABLE naming
    the shard and far's answer.  */
START_TEST (test_ring_gateway)
{
    zactor_destroy (&s_gateway);
    const char *names [2] = { "far", "gwtest" };
    const char *clients [2] = { "127.0.0.1:1", "127.0.0.1:2" };
    uint64_t epoch;
    s_ring_msg_named (8, 1, 2, 0, names, clients, &s_ring_reply,
                      &s_ring_reply_size, &epoch);
    s_fake_ring = gw_ring_new ();
    char err [200];
    ck_assert_int_eq (gw_ring_offer (s_fake_ring, s_ring_reply,
                                     s_ring_reply_size, err, sizeof err), 1);
    s_gateway = s_start_gateway (titan_module_descriptor.actor);

    /* the table is taken: Status reports ring placement */
    Titan__V1__StatusResponse *st = NULL;
    int64_t deadline = zclock_mono () + 10000;
    while (zclock_mono () < deadline) {
        Titan__V1__StatusRequest sreq = TITAN__V1__STATUS_REQUEST__INIT;
        s_result_t r = s_call ("/titan.v1.Cluster/Status", &sreq.base, 5000);
        ck_assert_msg (r.code == GRPC_STATUS_OK, "%s", r.details);
        st = titan__v1__status_response__unpack (NULL, r.size, r.data);
        free (r.data);
        if (strcmp (st->placement, "ring") == 0)
            break;
        titan__v1__status_response__free_unpacked (st, NULL);
        st = NULL;
        zclock_sleep (20);
    }
    ck_assert_msg (st, "the gateway never took the ring table");
    ck_assert_uint_eq (st->ring_epoch, epoch);
    ck_assert_uint_eq (st->shard_count, 8);
    ck_assert_uint_eq (st->n_shards, 8);
    ck_assert_uint_eq (st->n_nodes, 2);
    titan__v1__status_response__free_unpacked (st, NULL);

    /* one key placed here, one placed on far */
    char here [16] = "", there [16] = "";
    gw_env_t env = { .node_id = "gwtest", .client_addr = "", .peer_addr = "", .module_name = "grpc_gateway", .max_key_bytes = 16, .max_value_bytes = 1024, .shards = 8, .ring = s_fake_ring };
    for (int i = 0; i < 1000 && (!*here || !*there); i++) {
        char key [16];
        snprintf (key, sizeof key, "k%d", i);
        uint32_t shard = gw_api_key_shard (&env, (const uint8_t *) key,
                                           strlen (key));
        if (gw_ring_places (s_fake_ring, shard, "gwtest"))
            snprintf (here, sizeof here, "%s", key);
        else
            snprintf (there, sizeof there, "%s", key);
    }
    ck_assert (*here && *there);
    ck_assert_uint_gt (s_put (here, "v", GRPC_STATUS_OK), 0);
    ck_assert_int_eq (s_ring_refused, 0);
    Titan__V1__PutRequest req = TITAN__V1__PUT_REQUEST__INIT;
    req.key = s_bin (there);
    req.value = s_bin ("v");
    s_result_t r = s_call ("/titan.v1.KV/Put", &req.base, 1500);
    /* UNAVAILABLE naming far's last answer, or (a loaded machine: the
       last forward still connecting at the deadline) DEADLINE_EXCEEDED
       naming far: either way it was forwarded there */
    ck_assert_msg (r.code == GRPC_STATUS_UNAVAILABLE
                   || r.code == GRPC_STATUS_DEADLINE_EXCEEDED, "%s: %s",
                   tc_status_name (r.code), r.details);
    ck_assert_msg (strstr (r.details, "127.0.0.1:1"), "%s", r.details);
    if (r.code == GRPC_STATUS_UNAVAILABLE)
        ck_assert_msg (strstr (r.details, "shard"), "%s", r.details);
    ck_assert_int_gt (s_ring_refused, 0);
    free (r.data);

    zactor_destroy (&s_gateway);
    free (s_ring_reply);
    s_ring_reply = NULL;
    gw_ring_destroy (&s_fake_ring);
    s_gateway = s_start_gateway (titan_module_descriptor.actor);
}
END_TEST

static Suite *
s_suite (void)
{
    Suite *suite = suite_create ("grpc_gateway");
    TCase *tc = tcase_create ("gateway");
    tcase_add_checked_fixture (tc, s_setup, s_teardown);
    tcase_set_timeout (tc, 60);
    tcase_add_test (tc, test_put_get_delete);
    tcase_add_test (tc, test_local_reads_skip_raft_once_confirmed);
    tcase_add_test (tc, test_binary_and_limits);
    tcase_add_test (tc, test_bad_requests);
    tcase_add_test (tc, test_cas);
    tcase_add_test (tc, test_unavailable_and_deadlines);
    tcase_add_test (tc, test_cluster_and_admin);
    tcase_add_test (tc, test_concurrent);
    tcase_add_test (tc, test_restart);
    tcase_add_test (tc, test_reload_shared_object);
    tcase_add_test (tc, test_ring_gateway);
    suite_add_tcase (suite, tc);
    TCase *pure = tcase_create ("api");
    tcase_add_test (pure, test_api_pure);
    tcase_add_test (pure, test_request_decode);
    tcase_add_test (pure, test_ring_table_epochs);
    tcase_add_test (pure, test_ring_targets_and_hints);
    tcase_add_test (pure, test_ring_status_api);
    suite_add_tcase (suite, pure);
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
