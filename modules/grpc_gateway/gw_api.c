/*  grpc_gateway API layer: decoding, validation and bus mapping of the
    titan.v1 methods (see gw_api.h).

    Validation happens here, at the edge, before anything reaches the bus:
    keys must be 1..max_key_bytes bytes, values 0..max_value_bytes, enums
    known, unsupported fields unset.  Each rejection says which field was
    wrong and what the limit is.  Bus reply codes are gRPC codes already
    (proto/bus.proto), so they pass through; the messages are filled in
    when the replying module left them empty.  Keys are binary and are
    never printed, only their sizes.
*/
#include "gw_api.h"
#include "gw_route.h"
#include "titan/bus_types.h"
#include "bus.pb-c.h"
#include "titan.pb-c.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *s_paths [GW_M_COUNT] = {
    [GW_M_PUT]             = "/titan.v1.KV/Put",
    [GW_M_GET]             = "/titan.v1.KV/Get",
    [GW_M_DELETE]          = "/titan.v1.KV/Delete",
    [GW_M_CAS]             = "/titan.v1.KV/CompareAndSwap",
    [GW_M_STATUS]          = "/titan.v1.Cluster/Status",
    [GW_M_MEMBER_LIST]     = "/titan.v1.Cluster/MemberList",
    [GW_M_JOIN]            = "/titan.v1.Cluster/Join",
    [GW_M_LEAVE]           = "/titan.v1.Cluster/Leave",
    [GW_M_TRANSFER_LEADER] = "/titan.v1.Cluster/TransferLeader",
    [GW_M_LIST_MODULES]    = "/titan.v1.Admin/ListModules",
    [GW_M_RESTART_MODULE]  = "/titan.v1.Admin/RestartModule",
    [GW_M_RELOAD_MODULE]   = "/titan.v1.Admin/ReloadModule",
    [GW_M_MERGE]           = "/titan.v1.Admin/Merge",
};

int
gw_api_method (const char *path, size_t len)
{
    for (int i = 0; i < GW_M_COUNT; i++)
        if (strlen (s_paths [i]) == len && memcmp (s_paths [i], path, len) == 0)
            return i;
    return -1;
}

const char *
gw_api_method_path (gw_method_t method)
{
    return method < GW_M_COUNT ? s_paths [method] : "?";
}

const char *
gw_status_name (grpc_status_code code)
{
    static const char *names [] = {
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
        "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
        "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE",
        "DATA_LOSS", "UNAUTHENTICATED"
    };
    if ((unsigned) code < sizeof names / sizeof names [0])
        return names [code];
    return "UNKNOWN";
}

void
gw_api_fail (gw_result_t *res, grpc_status_code code, const char *format, ...)
{
    free (res->response);
    res->response = NULL;
    res->response_size = 0;
    res->code = code;
    va_list args;
    va_start (args, format);
    vsnprintf (res->message, sizeof res->message, format, args);
    va_end (args);
}

void
gw_result_reset (gw_result_t *res)
{
    free (res->response);
    memset (res, 0, sizeof *res);
    res->code = GRPC_STATUS_OK;
}

/*  Packs a protobuf-c message into a new buffer.  Returns 0, or -1 when out
    of memory (then *res is RESOURCE_EXHAUSTED).  */
static int
s_pack (const ProtobufCMessage *msg, uint8_t **data_p, size_t *size_p,
        gw_result_t *res)
{
    size_t size = protobuf_c_message_get_packed_size (msg);
    uint8_t *data = malloc (size ? size : 1);
    if (!data) {
        gw_api_fail (res, GRPC_STATUS_RESOURCE_EXHAUSTED,
                     "out of memory packing a %zu-byte message", size);
        return -1;
    }
    protobuf_c_message_pack (msg, data);
    *data_p = data;
    *size_p = size;
    return 0;
}

/*  Sets an OK outcome with `msg` as the response.  */
static void
s_succeed (gw_result_t *res, const ProtobufCMessage *msg)
{
    gw_result_reset (res);
    s_pack (msg, &res->response, &res->response_size, res);
}

/*  Fills a bus request to `to` of `type` with `msg` packed.  Returns 1,
    or 0 with *res failed when packing failed.  */
static int
s_bus (gw_bus_req_t *req, const char *to, const char *type,
       const ProtobufCMessage *msg, gw_result_t *res)
{
    req->to = to;
    req->type = type;
    if (s_pack (msg, &req->payload, &req->size, res))
        return 0;
    return 1;
}

static int
s_check_key (const gw_env_t *env, const ProtobufCBinaryData *key,
             gw_result_t *res)
{
    if (key->len == 0) {
        gw_api_fail (res, GRPC_STATUS_INVALID_ARGUMENT,
                     "key is empty (a key is 1 to %zu bytes)",
                     env->max_key_bytes);
        return -1;
    }
    if (key->len > env->max_key_bytes) {
        gw_api_fail (res, GRPC_STATUS_INVALID_ARGUMENT,
                     "key is %zu bytes, over the limit of %zu (max_key_bytes)",
                     key->len, env->max_key_bytes);
        return -1;
    }
    return 0;
}

static int
s_check_value (const gw_env_t *env, const ProtobufCBinaryData *value,
               gw_result_t *res)
{
    if (value->len > env->max_value_bytes) {
        gw_api_fail (res, GRPC_STATUS_INVALID_ARGUMENT,
                     "value is %zu bytes, over the limit of %zu (max_value_bytes)",
                     value->len, env->max_value_bytes);
        return -1;
    }
    return 0;
}

static int
s_check_module_name (const char *name, gw_result_t *res)
{
    size_t len = name ? strlen (name) : 0;
    if (len == 0) {
        gw_api_fail (res, GRPC_STATUS_INVALID_ARGUMENT, "module name is empty");
        return -1;
    }
    if (len > 63) {
        gw_api_fail (res, GRPC_STATUS_INVALID_ARGUMENT,
                     "module name is %zu bytes, over the limit of 63", len);
        return -1;
    }
    return 0;
}

/*  The unpacked request of any method, freed by s_free_request.  */
static ProtobufCMessage *
s_unpack (const ProtobufCMessageDescriptor *desc, const uint8_t *data,
          size_t size, gw_result_t *res)
{
    ProtobufCMessage *msg = protobuf_c_message_unpack (desc, NULL, size, data);
    if (!msg)
        gw_api_fail (res, GRPC_STATUS_INVALID_ARGUMENT,
                     "request does not decode as %s (%zu bytes)",
                     desc->name, size);
    return msg;
}

static const ProtobufCMessageDescriptor *s_request_desc [GW_M_COUNT] = {
    [GW_M_PUT]             = &titan__v1__put_request__descriptor,
    [GW_M_GET]             = &titan__v1__get_request__descriptor,
    [GW_M_DELETE]          = &titan__v1__delete_request__descriptor,
    [GW_M_CAS]             = &titan__v1__compare_and_swap_request__descriptor,
    [GW_M_STATUS]          = &titan__v1__status_request__descriptor,
    [GW_M_MEMBER_LIST]     = &titan__v1__member_list_request__descriptor,
    [GW_M_JOIN]            = &titan__v1__join_request__descriptor,
    [GW_M_LEAVE]           = &titan__v1__leave_request__descriptor,
    [GW_M_TRANSFER_LEADER] = &titan__v1__transfer_leader_request__descriptor,
    [GW_M_LIST_MODULES]    = &titan__v1__list_modules_request__descriptor,
    [GW_M_RESTART_MODULE]  = &titan__v1__module_request__descriptor,
    [GW_M_RELOAD_MODULE]   = &titan__v1__module_request__descriptor,
    [GW_M_MERGE]           = &titan__v1__merge_request__descriptor,
};

static int
s_prepare_write (const gw_env_t *env, const char *type,
                 Titan__Bus__KvOp__Kind kind, ProtobufCBinaryData key,
                 const ProtobufCBinaryData *value, uint64_t expected,
                 uint64_t client_id, uint64_t sequence,
                 gw_bus_req_t *req, gw_result_t *res)
{
    if (s_check_key (env, &key, res))
        return 0;
    if (value && s_check_value (env, value, res))
        return 0;
    Titan__Bus__KvOp op = TITAN__BUS__KV_OP__INIT;
    op.kind = kind;
    op.key = key;
    if (value)
        op.value = *value;
    if (kind == TITAN__BUS__KV_OP__KIND__CAS) {
        op.expected_revision = expected;
        op.expect_absent = expected == 0;
    }
    Titan__Bus__KvWrite write = TITAN__BUS__KV_WRITE__INIT;
    write.shard = GW_ROUTE_SHARD;
    write.op = &op;
    write.revision = 0;          /* the engine assigns it (until Raft) */
    /* write dedup: the bus names a client by a string; ours is a number */
    char client [17] = "";
    if (client_id)
        snprintf (client, sizeof client, "%016" PRIx64, client_id);
    write.client_id = client;
    write.sequence = client_id ? sequence : 0;
    req->expected = expected;
    return s_bus (req, GW_ROUTE_WRITES, GW_ROUTE_WRITE_TYPE (type),
                  &write.base, res);
}

/*  Answers Join, Leave and TransferLeader: they need the raft module.  */
static int
s_needs_raft (gw_result_t *res, const char *what)
{
    gw_api_fail (res, GRPC_STATUS_FAILED_PRECONDITION,
                 "single-node store: %s needs the raft module, "
                 "which this node does not run", what);
    return 0;
}

static int
s_member_list (const gw_env_t *env, gw_result_t *res)
{
    Titan__V1__Member member = TITAN__V1__MEMBER__INIT;
    member.id = (char *) env->node_id;
    member.client_addr = (char *) env->client_addr;
    member.peer_addr = (char *) (env->peer_addr ? env->peer_addr : "");
    member.state = "up";
    Titan__V1__Member *members [1] = { &member };
    Titan__V1__MemberListResponse reply = TITAN__V1__MEMBER_LIST_RESPONSE__INIT;
    reply.n_members = 1;
    reply.members = members;
    s_succeed (res, &reply.base);
    return 0;
}

int
gw_api_prepare (const gw_env_t *env, gw_method_t method, const uint8_t *data,
                size_t size, gw_bus_req_t *req, gw_result_t *res)
{
    memset (req, 0, sizeof *req);
    gw_result_reset (res);
    if ((unsigned) method >= GW_M_COUNT) {
        gw_api_fail (res, GRPC_STATUS_UNIMPLEMENTED, "unknown method");
        return 0;
    }
    ProtobufCMessage *msg = s_unpack (s_request_desc [method], data, size, res);
    if (!msg)
        return 0;

    int rc = 0;
    switch (method) {
        case GW_M_PUT: {
            Titan__V1__PutRequest *put = (Titan__V1__PutRequest *) msg;
            if (put->deferred)
                gw_api_fail (res, GRPC_STATUS_INVALID_ARGUMENT,
                             "deferred puts (hinted handoff) are not "
                             "supported yet; send deferred = false");
            else
                rc = s_prepare_write (env, TITAN_T_KV_PUT,
                                      TITAN__BUS__KV_OP__KIND__PUT, put->key,
                                      &put->value, 0, put->client_id,
                                      put->sequence, req, res);
            break;
        }
        case GW_M_DELETE: {
            Titan__V1__DeleteRequest *del = (Titan__V1__DeleteRequest *) msg;
            rc = s_prepare_write (env, TITAN_T_KV_DELETE,
                                  TITAN__BUS__KV_OP__KIND__DELETE, del->key,
                                  NULL, 0, del->client_id, del->sequence,
                                  req, res);
            break;
        }
        case GW_M_CAS: {
            Titan__V1__CompareAndSwapRequest *cas =
                (Titan__V1__CompareAndSwapRequest *) msg;
            rc = s_prepare_write (env, TITAN_T_KV_CAS,
                                  TITAN__BUS__KV_OP__KIND__CAS, cas->key,
                                  &cas->value, cas->expected_revision,
                                  cas->client_id, cas->sequence, req, res);
            break;
        }
        case GW_M_GET: {
            Titan__V1__GetRequest *get = (Titan__V1__GetRequest *) msg;
            if (get->consistency != TITAN__V1__CONSISTENCY__LINEARIZABLE
            &&  get->consistency != TITAN__V1__CONSISTENCY__LOCAL) {
                gw_api_fail (res, GRPC_STATUS_INVALID_ARGUMENT,
                             "consistency %d is not a Consistency value "
                             "(LINEARIZABLE = 0, LOCAL = 1)",
                             (int) get->consistency);
                break;
            }
            if (s_check_key (env, &get->key, res))
                break;
            Titan__Bus__KvGet kv = TITAN__BUS__KV_GET__INIT;
            kv.shard = GW_ROUTE_SHARD;
            kv.key = get->key;
            kv.consistency = get->consistency == TITAN__V1__CONSISTENCY__LOCAL
                           ? TITAN__BUS__KV_GET__CONSISTENCY__LOCAL
                           : TITAN__BUS__KV_GET__CONSISTENCY__LINEARIZABLE;
            rc = s_bus (req, GW_ROUTE_READS, GW_ROUTE_READ_TYPE, &kv.base, res);
            break;
        }
        case GW_M_STATUS: {
            Titan__Bus__KvStatsRequest stats = TITAN__BUS__KV_STATS_REQUEST__INIT;
            stats.shard = GW_ROUTE_SHARD;
            rc = s_bus (req, GW_ROUTE_STORAGE, TITAN_T_KV_STATS, &stats.base, res);
            break;
        }
        case GW_M_MEMBER_LIST:
            rc = s_member_list (env, res);
            break;
        case GW_M_JOIN:
            rc = s_needs_raft (res, "adding a member (Join)");
            break;
        case GW_M_LEAVE:
            rc = s_needs_raft (res, "removing a member (Leave)");
            break;
        case GW_M_TRANSFER_LEADER:
            rc = s_needs_raft (res, "leadership transfer");
            break;
        case GW_M_LIST_MODULES: {
            Titan__Bus__ModuleListRequest list = TITAN__BUS__MODULE_LIST_REQUEST__INIT;
            rc = s_bus (req, GW_ROUTE_ADMIN, TITAN_T_MODULE_LIST, &list.base, res);
            break;
        }
        case GW_M_RESTART_MODULE:
        case GW_M_RELOAD_MODULE: {
            Titan__V1__ModuleRequest *mod = (Titan__V1__ModuleRequest *) msg;
            if (s_check_module_name (mod->name, res))
                break;
            Titan__Bus__ModuleCommand cmd = TITAN__BUS__MODULE_COMMAND__INIT;
            cmd.name = mod->name;
            req->targets_self = env->module_name
                             && strcmp (mod->name, env->module_name) == 0;
            rc = s_bus (req, GW_ROUTE_ADMIN,
                        method == GW_M_RESTART_MODULE ? TITAN_T_MODULE_RESTART
                                                      : TITAN_T_MODULE_RELOAD,
                        &cmd.base, res);
            break;
        }
        case GW_M_MERGE: {
            Titan__V1__MergeRequest *merge = (Titan__V1__MergeRequest *) msg;
            if (merge->shard != GW_ROUTE_SHARD) {
                gw_api_fail (res, GRPC_STATUS_INVALID_ARGUMENT,
                             "shard %" PRIu32 " does not exist (this store has "
                             "shard %u only)", merge->shard, GW_ROUTE_SHARD);
                break;
            }
            Titan__Bus__KvMergeRequest kv = TITAN__BUS__KV_MERGE_REQUEST__INIT;
            kv.shard = merge->shard;
            rc = s_bus (req, GW_ROUTE_STORAGE, TITAN_T_KV_MERGE, &kv.base, res);
            break;
        }
        default:
            gw_api_fail (res, GRPC_STATUS_UNIMPLEMENTED, "unknown method");
            break;
    }
    protobuf_c_message_free_unpacked (msg, NULL);
    return rc;
}

void
gw_api_self_command (gw_method_t method, gw_result_t *res)
{
    gw_result_reset (res);
    Titan__V1__ModuleResponse out = TITAN__V1__MODULE_RESPONSE__INIT;
    out.message = method == GW_M_RELOAD_MODULE
                ? "accepted: the gateway that served this call is being reloaded"
                : "accepted: the gateway that served this call is being restarted";
    s_succeed (res, &out.base);
}

/*  ------------------------------------------------------------ replies  */

/*  Takes the code and message of a reply; fills a default message for a
    failure that came without one.  Returns 0 when the reply is OK.  */
static int
s_reply_status (int code, const char *message, const char *fallback,
                gw_result_t *res)
{
    if (code == 0)
        return 0;
    if (code < 0 || code > 16)
        code = GRPC_STATUS_UNKNOWN;
    gw_api_fail (res, (grpc_status_code) code, "%s",
                 message && *message ? message : fallback);
    return -1;
}

static void
s_complete_kv (gw_method_t method, uint64_t expected,
               const Titan__Bus__KvReply *kv, gw_result_t *res)
{
    if (method == GW_M_CAS && kv->code == TITAN__BUS__CODE__FAILED_PRECONDITION) {
        if (kv->current_revision == 0)
            gw_api_fail (res, GRPC_STATUS_FAILED_PRECONDITION,
                         "compare-and-swap failed: expected revision %" PRIu64
                         ", but the key does not exist", expected);
        else if (expected == 0)
            gw_api_fail (res, GRPC_STATUS_FAILED_PRECONDITION,
                         "compare-and-swap failed: expected the key to be "
                         "absent, but it exists at revision %" PRIu64,
                         kv->current_revision);
        else
            gw_api_fail (res, GRPC_STATUS_FAILED_PRECONDITION,
                         "compare-and-swap failed: expected revision %" PRIu64
                         ", current revision is %" PRIu64,
                         expected, kv->current_revision);
        return;
    }
    if (method == GW_M_GET && kv->code == TITAN__BUS__CODE__NOT_FOUND) {
        gw_api_fail (res, GRPC_STATUS_NOT_FOUND, "key not found");
        return;
    }
    if (s_reply_status (kv->code, kv->message, "storage request failed", res))
        return;
    switch (method) {
        case GW_M_PUT: {
            Titan__V1__PutResponse out = TITAN__V1__PUT_RESPONSE__INIT;
            out.revision = kv->revision;
            s_succeed (res, &out.base);
            break;
        }
        case GW_M_GET: {
            Titan__V1__GetResponse out = TITAN__V1__GET_RESPONSE__INIT;
            out.value = kv->value;
            out.revision = kv->revision;
            s_succeed (res, &out.base);
            break;
        }
        case GW_M_DELETE: {
            Titan__V1__DeleteResponse out = TITAN__V1__DELETE_RESPONSE__INIT;
            out.deleted = kv->deleted;
            out.revision = kv->revision;
            s_succeed (res, &out.base);
            break;
        }
        case GW_M_CAS: {
            Titan__V1__CompareAndSwapResponse out =
                TITAN__V1__COMPARE_AND_SWAP_RESPONSE__INIT;
            out.revision = kv->revision;
            s_succeed (res, &out.base);
            break;
        }
        default:
            gw_api_fail (res, GRPC_STATUS_INTERNAL, "no KV reply expected");
            break;
    }
}

static void
s_complete_status (const gw_env_t *env, const Titan__Bus__KvStatsReply *st,
                   gw_result_t *res)
{
    if (s_reply_status (st->code, st->message, "storage statistics failed", res))
        return;
    Titan__V1__NodeStatus node = TITAN__V1__NODE_STATUS__INIT;
    node.id = (char *) env->node_id;
    node.client_addr = (char *) env->client_addr;
    node.state = "up";
    Titan__V1__NodeStatus *nodes [1] = { &node };
    char *replicas [1] = { (char *) env->node_id };
    Titan__V1__ShardStatus shard = TITAN__V1__SHARD_STATUS__INIT;
    shard.id = GW_ROUTE_SHARD;
    shard.leader = (char *) env->node_id;
    shard.n_replicas = 1;
    shard.replicas = replicas;
    shard.applied_index = st->applied_index;
    shard.keys = st->keys;
    shard.last_revision = st->last_revision;
    Titan__V1__ShardStatus *shards [1] = { &shard };
    Titan__V1__StatusResponse out = TITAN__V1__STATUS_RESPONSE__INIT;
    out.node_id = (char *) env->node_id;
    out.n_nodes = 1;
    out.nodes = nodes;
    out.n_shards = 1;
    out.shards = shards;
    s_succeed (res, &out.base);
}

static void
s_complete_modules (const Titan__Bus__ModuleListReply *list, gw_result_t *res)
{
    if (s_reply_status (list->code, list->message, "module list failed", res))
        return;
    Titan__V1__ModuleInfo *infos = calloc (list->n_modules + 1, sizeof *infos);
    Titan__V1__ModuleInfo **ptrs = calloc (list->n_modules + 1, sizeof *ptrs);
    if (!infos || !ptrs) {
        free (infos);
        free (ptrs);
        gw_api_fail (res, GRPC_STATUS_RESOURCE_EXHAUSTED,
                     "out of memory listing %zu modules", list->n_modules);
        return;
    }
    for (size_t i = 0; i < list->n_modules; i++) {
        const Titan__Bus__ModuleInfo *in = list->modules [i];
        titan__v1__module_info__init (&infos [i]);
        infos [i].name = in->name;
        infos [i].version = in->version;
        infos [i].state = in->state;
        infos [i].restarts = in->restarts;
        infos [i].path = in->path;
        infos [i].abi_version = in->abi_version;
        infos [i].held_messages = in->held_messages;
        ptrs [i] = &infos [i];
    }
    Titan__V1__ListModulesResponse out = TITAN__V1__LIST_MODULES_RESPONSE__INIT;
    out.n_modules = list->n_modules;
    out.modules = ptrs;
    s_succeed (res, &out.base);
    free (infos);
    free (ptrs);
}

static const ProtobufCMessageDescriptor *
s_reply_desc (gw_method_t method)
{
    switch (method) {
        case GW_M_PUT: case GW_M_GET: case GW_M_DELETE: case GW_M_CAS:
            return &titan__bus__kv_reply__descriptor;
        case GW_M_STATUS:
            return &titan__bus__kv_stats_reply__descriptor;
        case GW_M_LIST_MODULES:
            return &titan__bus__module_list_reply__descriptor;
        case GW_M_RESTART_MODULE: case GW_M_RELOAD_MODULE:
            return &titan__bus__admin_reply__descriptor;
        case GW_M_MERGE:
            return &titan__bus__kv_merge_reply__descriptor;
        default:
            return NULL;
    }
}

void
gw_api_complete (const gw_env_t *env, gw_method_t method, uint64_t expected,
                 const uint8_t *data, size_t size, gw_result_t *res)
{
    gw_result_reset (res);
    const ProtobufCMessageDescriptor *desc = s_reply_desc (method);
    if (!desc) {
        gw_api_fail (res, GRPC_STATUS_INTERNAL,
                     "%s makes no bus request", gw_api_method_path (method));
        return;
    }
    ProtobufCMessage *msg = protobuf_c_message_unpack (desc, NULL, size, data);
    if (!msg) {
        gw_api_fail (res, GRPC_STATUS_INTERNAL,
                     "bus reply to %s does not decode as %s (%zu bytes)",
                     gw_api_method_path (method), desc->name, size);
        return;
    }
    switch (method) {
        case GW_M_PUT: case GW_M_GET: case GW_M_DELETE: case GW_M_CAS:
            s_complete_kv (method, expected, (Titan__Bus__KvReply *) msg, res);
            break;
        case GW_M_STATUS:
            s_complete_status (env, (Titan__Bus__KvStatsReply *) msg, res);
            break;
        case GW_M_LIST_MODULES:
            s_complete_modules ((Titan__Bus__ModuleListReply *) msg, res);
            break;
        case GW_M_RESTART_MODULE:
        case GW_M_RELOAD_MODULE: {
            Titan__Bus__AdminReply *admin = (Titan__Bus__AdminReply *) msg;
            if (s_reply_status (admin->code, admin->message,
                                "module command failed", res))
                break;
            Titan__V1__ModuleResponse out = TITAN__V1__MODULE_RESPONSE__INIT;
            out.message = admin->message && *admin->message
                        ? admin->message
                        : (method == GW_M_RESTART_MODULE ? "restarted" : "reloaded");
            s_succeed (res, &out.base);
            break;
        }
        case GW_M_MERGE: {
            Titan__Bus__KvMergeReply *merge = (Titan__Bus__KvMergeReply *) msg;
            if (s_reply_status (merge->code, merge->message, "merge failed", res))
                break;
            Titan__V1__MergeResponse out = TITAN__V1__MERGE_RESPONSE__INIT;
            out.files_merged = merge->files_merged;
            out.bytes_reclaimed = merge->bytes_reclaimed;
            s_succeed (res, &out.base);
            break;
        }
        default:
            break;
    }
    protobuf_c_message_free_unpacked (msg, NULL);
}
