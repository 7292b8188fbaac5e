/*  grpc_gateway request decoding and validation (see gw_request.h).

    One table maps each method to its request descriptor; protobuf-c
    unpacks the bytes (every length checked against the buffer, so a
    truncated or over-long field fails there), then s_validate applies the
    method's checks.  Each refusal names the field and the limit.
*/
#include "gw_request.h"
#include "gw_forward.h"
#include "gw_route.h"
#include "titan.pb-c.h"

#include <inttypes.h>
#include <string.h>

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
    [GW_M_SET_LOG_LEVEL]   = &titan__v1__set_log_level_request__descriptor,
    [GW_M_SCRUB]           = &titan__v1__scrub_request__descriptor,
};

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
    if (len > GW_MODULE_NAME_MAX) {
        gw_api_fail (res, GRPC_STATUS_INVALID_ARGUMENT,
                     "module name is %zu bytes, over the limit of %u", len,
                     GW_MODULE_NAME_MAX);
        return -1;
    }
    return 0;
}

/*  Checks a node id field: 1..GW_NODE_ID_MAX bytes.  */
static int
s_check_node_id (const char *field, const char *id, gw_result_t *res)
{
    size_t len = id ? strlen (id) : 0;
    if (len == 0 || len > GW_NODE_ID_MAX) {
        gw_api_fail (res, GRPC_STATUS_INVALID_ARGUMENT,
                     "%s is %zu bytes (a node id is 1 to %u bytes)", field,
                     len, GW_NODE_ID_MAX);
        return -1;
    }
    return 0;
}

/*  Checks an address field: host:port with a port, at most GW_ADDR_MAX
    bytes.  */
static int
s_check_addr (const char *field, const char *addr, gw_result_t *res)
{
    const char *colon = addr ? strrchr (addr, ':') : NULL;
    if (!addr || !*addr || !colon || colon == addr || !colon [1]
    ||  strlen (addr) > GW_ADDR_MAX) {
        gw_api_fail (res, GRPC_STATUS_INVALID_ARGUMENT,
                     "%s \"%.100s\" is not host:port (at most %u bytes)",
                     field, addr ? addr : "", GW_ADDR_MAX);
        return -1;
    }
    return 0;
}

/*  Checks a shard number given by the client against the store's Q
    shards (env->shards; 0 means 1).  */
static int
s_check_shard (const gw_env_t *env, uint32_t shard, gw_result_t *res)
{
    uint32_t q = env->shards > 1 ? env->shards : 1;
    if (shard >= q) {
        gw_api_fail (res, GRPC_STATUS_INVALID_ARGUMENT,
                     "shard %" PRIu32 " does not exist (this store has "
                     "shards 0 to %" PRIu32 ")", shard, q - 1);
        return -1;
    }
    return 0;
}

/*  The checks of each method on the unpacked message.  Returns 0, or -1
    with *res failed.  */
static int
s_validate (const gw_env_t *env, gw_method_t method,
            const ProtobufCMessage *msg, gw_result_t *res)
{
    switch (method) {
        case GW_M_PUT: {
            const Titan__V1__PutRequest *put = (const Titan__V1__PutRequest *) msg;
            return s_check_key (env, &put->key, res)
                || s_check_value (env, &put->value, res) ? -1 : 0;
        }
        case GW_M_DELETE:
            return s_check_key (env, &((const Titan__V1__DeleteRequest *) msg)->key,
                                res);
        case GW_M_CAS: {
            const Titan__V1__CompareAndSwapRequest *cas =
                (const Titan__V1__CompareAndSwapRequest *) msg;
            return s_check_key (env, &cas->key, res)
                || s_check_value (env, &cas->value, res) ? -1 : 0;
        }
        case GW_M_GET: {
            const Titan__V1__GetRequest *get = (const Titan__V1__GetRequest *) msg;
            /* proto3 enums are open: any number decodes, so check it */
            if (get->consistency != TITAN__V1__CONSISTENCY__LINEARIZABLE
            &&  get->consistency != TITAN__V1__CONSISTENCY__LOCAL) {
                gw_api_fail (res, GRPC_STATUS_INVALID_ARGUMENT,
                             "consistency %d is not a Consistency value "
                             "(LINEARIZABLE = 0, LOCAL = 1)",
                             (int) get->consistency);
                return -1;
            }
            return s_check_key (env, &get->key, res);
        }
        case GW_M_JOIN: {
            const Titan__V1__JoinRequest *join = (const Titan__V1__JoinRequest *) msg;
            return s_check_node_id ("node_id", join->node_id, res)
                || s_check_addr ("peer_addr", join->peer_addr, res)
                || s_check_addr ("client_addr", join->client_addr, res) ? -1 : 0;
        }
        case GW_M_LEAVE:
            return s_check_node_id ("node_id",
                                    ((const Titan__V1__LeaveRequest *) msg)->node_id,
                                    res);
        case GW_M_TRANSFER_LEADER: {
            const Titan__V1__TransferLeaderRequest *tl =
                (const Titan__V1__TransferLeaderRequest *) msg;
            return s_check_shard (env, tl->shard, res)
                || s_check_node_id ("target_node_id", tl->target_node_id, res)
                 ? -1 : 0;
        }
        case GW_M_RESTART_MODULE:
        case GW_M_RELOAD_MODULE:
            return s_check_module_name (
                ((const Titan__V1__ModuleRequest *) msg)->name, res);
        case GW_M_MERGE:
            return s_check_shard (env,
                                  ((const Titan__V1__MergeRequest *) msg)->shard,
                                  res);
        case GW_M_SCRUB:
            return s_check_shard (env,
                                  ((const Titan__V1__ScrubRequest *) msg)->shard,
                                  res);
        case GW_M_SET_LOG_LEVEL: {
            /* empty: a query; the kernel checks the name; bound it here */
            const char *level = ((const Titan__V1__SetLogLevelRequest *) msg)->level;
            if (level && strlen (level) > 16) {
                gw_api_fail (res, GRPC_STATUS_INVALID_ARGUMENT,
                             "level must be one of error, warning, info, "
                             "debug, or empty to ask for the current one");
                return -1;
            }
            return 0;
        }
        case GW_M_STATUS:
        case GW_M_MEMBER_LIST:
        case GW_M_LIST_MODULES:
            return 0;                    /* no fields */
        default:
            gw_api_fail (res, GRPC_STATUS_UNIMPLEMENTED, "unknown method");
            return -1;
    }
}

int
gw_request_decode (const gw_env_t *env, gw_method_t method,
                   const uint8_t *data, size_t size, gw_request_t *req,
                   gw_result_t *res)
{
    req->method = method;
    req->msg = NULL;
    if ((unsigned) method >= GW_M_COUNT) {
        gw_api_fail (res, GRPC_STATUS_UNIMPLEMENTED, "unknown method");
        return -1;
    }
    const ProtobufCMessageDescriptor *desc = s_request_desc [method];
    ProtobufCMessage *msg = protobuf_c_message_unpack (desc, NULL, size, data);
    if (!msg) {
        gw_api_fail (res, GRPC_STATUS_INVALID_ARGUMENT,
                     "request does not decode as %s (%zu bytes: truncated, "
                     "or a field of the wrong type or length)",
                     desc->name, size);
        return -1;
    }
    if (s_validate (env, method, msg, res)) {
        protobuf_c_message_free_unpacked (msg, NULL);
        return -1;
    }
    req->msg = msg;
    return 0;
}

void
gw_request_clear (gw_request_t *req)
{
    if (req->msg)
        protobuf_c_message_free_unpacked (req->msg, NULL);
    req->msg = NULL;
}

int
gw_request_hops (const uint8_t *text, size_t len)
{
    if (len == 0 || len > 2)
        return GW_MAX_HOPS + 1;
    int hops = 0;
    for (size_t i = 0; i < len; i++) {
        if (text [i] < '0' || text [i] > '9')
            return GW_MAX_HOPS + 1;
        hops = hops * 10 + (text [i] - '0');
    }
    return hops;
}
