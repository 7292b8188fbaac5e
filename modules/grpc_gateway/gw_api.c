/*  grpc_gateway API layer: decoding, validation and bus mapping of the
    titan.v1 methods (see gw_api.h).

    Validation happens at the edge, before anything reaches the bus, in
    gw_request.c (gw_request_decode, shared with the fuzz target): keys
    must be 1..max_key_bytes bytes, values 0..max_value_bytes, enums known,
    unsupported fields unset.  Each rejection says which field was wrong
    and what the limit is.  Bus reply codes are gRPC codes already
    (proto/bus.proto), so they pass through; the messages are filled in
    when the replying module left them empty.  Keys are binary and are
    never printed, only their sizes.
*/
#include "gw_api.h"
#include "gw_request.h"
#include "gw_route.h"
#include "ring_hash.h"
#include "titan/bus_types.h"
#include "bus.pb-c.h"
#include "titan.pb-c.h"

#include <errno.h>
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
    [GW_M_SET_LOG_LEVEL]   = "/titan.v1.Admin/SetLogLevel",
    [GW_M_SCRUB]           = "/titan.v1.Admin/Scrub",
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

uint32_t
gw_api_key_shard (const gw_env_t *env, const uint8_t *key, size_t size)
{
    return env->shards > 1 ? ring_key_shard (key, size, env->shards)
                           : GW_ROUTE_SHARD;
}

/*  A write of a validated request (gw_request_decode checked key and
    value) to the shard of its key.  */
static int
s_prepare_write (const gw_env_t *env, const char *type,
                 Titan__Bus__KvOp__Kind kind, ProtobufCBinaryData key,
                 const ProtobufCBinaryData *value, uint64_t expected,
                 uint64_t client_id, uint64_t sequence,
                 gw_bus_req_t *req, gw_result_t *res)
{
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
    write.shard = gw_api_key_shard (env, key.data, key.len);
    req->shard = write.shard;
    req->routable = 1;
    write.op = &op;
    write.revision = 0;          /* Raft assigns it: the entry's index */
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

/*  A membership request to the raft module.  */
static int
s_member_change (const char *type, uint32_t shard, const char *node_id,
                 const char *peer, const char *client, gw_bus_req_t *req,
                 gw_result_t *res)
{
    Titan__Bus__RaftMemberChange change = TITAN__BUS__RAFT_MEMBER_CHANGE__INIT;
    change.shard = shard;
    req->shard = shard;
    change.node_id = (char *) node_id;
    change.peer_addr = (char *) (peer ? peer : "");
    change.client_addr = (char *) (client ? client : "");
    return s_bus (req, GW_ROUTE_REPLICATION, type, &change.base, res);
}

/*  Whether the node routes by the ring's table.  */
static int
s_ring_mode (const gw_env_t *env)
{
    return env->ring && gw_ring_active (env->ring);
}

/*  The group whose membership Join and Leave change: the meta group in
    ring mode (the ring module turns it into placement), else shard 0.  */
static uint32_t
s_membership_shard (const gw_env_t *env)
{
    return s_ring_mode (env) ? TITAN_META_SHARD : GW_ROUTE_SHARD;
}

static int
s_raft_status (gw_bus_req_t *req, gw_result_t *res)
{
    Titan__Bus__RaftStatusRequest st = TITAN__BUS__RAFT_STATUS_REQUEST__INIT;
    return s_bus (req, GW_ROUTE_REPLICATION, TITAN_T_RAFT_STATUS, &st.base, res);
}

int
gw_api_prepare (const gw_env_t *env, gw_method_t method, const uint8_t *data,
                size_t size, gw_bus_req_t *req, gw_result_t *res)
{
    memset (req, 0, sizeof *req);
    gw_result_reset (res);
    gw_request_t request;
    if (gw_request_decode (env, method, data, size, &request, res))
        return 0;
    ProtobufCMessage *msg = request.msg;
    int rc = 0;
    switch (method) {
        case GW_M_PUT: {
            Titan__V1__PutRequest *put = (Titan__V1__PutRequest *) msg;
            if (put->deferred) {
                /* hinted handoff: what the hint log keeps and delivers
                   later as an ordinary put, with its own dedup pair */
                put->deferred = 0;
                put->client_id = put->sequence = 0;
                req->shard = env->hint_parts > 1
                           ? ring_key_shard (put->key.data, put->key.len,
                                             env->hint_parts) : 0;
                req->deferred = 1;
                rc = s_pack (&put->base, &req->payload, &req->size, res) ? 0 : 1;
                break;
            }
            rc = s_prepare_write (env, TITAN_T_KV_PUT, TITAN__BUS__KV_OP__KIND__PUT,
                                  put->key, &put->value, 0, put->client_id,
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
            rc = s_prepare_write (env, TITAN_T_KV_CAS, TITAN__BUS__KV_OP__KIND__CAS,
                                  cas->key, &cas->value, cas->expected_revision,
                                  cas->client_id, cas->sequence, req, res);
            break;
        }
        case GW_M_GET: {
            Titan__V1__GetRequest *get = (Titan__V1__GetRequest *) msg;
            Titan__Bus__KvGet kv = TITAN__BUS__KV_GET__INIT;
            kv.shard = gw_api_key_shard (env, get->key.data, get->key.len);
            kv.key = get->key;
            req->shard = kv.shard;
            req->routable = get->consistency != TITAN__V1__CONSISTENCY__LOCAL;
            kv.consistency = get->consistency == TITAN__V1__CONSISTENCY__LOCAL
                           ? TITAN__BUS__KV_GET__CONSISTENCY__LOCAL
                           : TITAN__BUS__KV_GET__CONSISTENCY__LINEARIZABLE;
            rc = s_bus (req, GW_ROUTE_READS, GW_ROUTE_READ_TYPE, &kv.base, res);
            break;
        }
        case GW_M_STATUS:
        case GW_M_MEMBER_LIST:
            rc = s_raft_status (req, res);
            break;
        case GW_M_JOIN: {
            Titan__V1__JoinRequest *join = (Titan__V1__JoinRequest *) msg;
            rc = s_member_change (TITAN_T_RAFT_ADD, s_membership_shard (env),
                                  join->node_id, join->peer_addr,
                                  join->client_addr, req, res);
            break;
        }
        case GW_M_LEAVE: {
            Titan__V1__LeaveRequest *leave = (Titan__V1__LeaveRequest *) msg;
            rc = s_member_change (TITAN_T_RAFT_REMOVE, s_membership_shard (env),
                                  leave->node_id, NULL, NULL, req, res);
            break;
        }
        case GW_M_TRANSFER_LEADER: {
            Titan__V1__TransferLeaderRequest *tl =
                (Titan__V1__TransferLeaderRequest *) msg;
            rc = s_member_change (TITAN_T_RAFT_TRANSFER, tl->shard,
                                  tl->target_node_id, NULL, NULL, req, res);
            break;
        }
        case GW_M_LIST_MODULES: {
            Titan__Bus__ModuleListRequest list = TITAN__BUS__MODULE_LIST_REQUEST__INIT;
            rc = s_bus (req, GW_ROUTE_ADMIN, TITAN_T_MODULE_LIST, &list.base, res);
            break;
        }
        case GW_M_RESTART_MODULE:
        case GW_M_RELOAD_MODULE: {
            Titan__V1__ModuleRequest *mod = (Titan__V1__ModuleRequest *) msg;
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
            Titan__Bus__KvMergeRequest kv = TITAN__BUS__KV_MERGE_REQUEST__INIT;
            kv.shard = merge->shard;
            rc = s_bus (req, GW_ROUTE_STORAGE, TITAN_T_KV_MERGE, &kv.base, res);
            break;
        }
        case GW_M_SCRUB: {
            Titan__V1__ScrubRequest *in = (Titan__V1__ScrubRequest *) msg;
            Titan__Bus__KvScrubRequest kv = TITAN__BUS__KV_SCRUB_REQUEST__INIT;
            kv.shard = in->shard;
            kv.status_only = in->status_only;
            rc = s_bus (req, GW_ROUTE_STORAGE, TITAN_T_KV_SCRUB, &kv.base, res);
            break;
        }
        case GW_M_SET_LOG_LEVEL: {
            Titan__V1__SetLogLevelRequest *in = (Titan__V1__SetLogLevelRequest *) msg;
            Titan__Bus__LogLevelRequest ll = TITAN__BUS__LOG_LEVEL_REQUEST__INIT;
            ll.level = in->level;       /* the kernel validates it */
            rc = s_bus (req, GW_ROUTE_ADMIN, TITAN_T_LOG_LEVEL, &ll.base, res);
            break;
        }
        default:
            gw_api_fail (res, GRPC_STATUS_UNIMPLEMENTED, "unknown method");
            break;
    }
    gw_request_clear (&request);
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
    if (kv->code == TITAN__BUS__CODE__UNIMPLEMENTED) {
        gw_api_fail (res, GRPC_STATUS_UNIMPLEMENTED,
                     "this node does not run the raft module, which serves "
                     "%s (%s)", gw_api_method_path (method),
                     kv->message && *kv->message ? kv->message : "no reason given");
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

/*  The group `shard` in a raft.status reply, or NULL.  */
static const Titan__Bus__RaftGroupStatus *
s_group (const Titan__Bus__RaftStatusReply *st, uint32_t shard)
{
    for (size_t i = 0; st && i < st->n_groups; i++)
        if (st->groups [i] && st->groups [i]->shard == shard)
            return st->groups [i];
    return NULL;
}

/*  What a client sees of a ring state: ACTIVE is "up", the others keep
    their names ("joining", "leaving", "removed").  */
static const char *
s_ring_client_state (const char *ring_state)
{
    if (!ring_state)
        return "";
    return strcmp (ring_state, "active") == 0 ? "up" : ring_state;
}

/*  What a client sees of a member: voters are "up", learners (being
    added, catching up) "joining".  */
static const char *
s_member_state (const Titan__Bus__RaftMember *m)
{
    return m->voter ? "up" : "joining";
}

/*  The members after MemberList, Join or Leave: in ring mode the ring
    table's members (tombstones included, with their ring states), else
    shard 0's group in a raft.status reply (NULL: the node runs no raft
    module, so it is its own only member).
    MemberListResponse, JoinResponse and LeaveResponse are the same
    message on the wire (`repeated Member members = 1`), so one is packed
    for all three.  */
static void
s_complete_members (const gw_env_t *env, const Titan__Bus__RaftStatusReply *st,
                    gw_result_t *res)
{
    int ring = s_ring_mode (env);
    const Titan__Bus__RaftGroupStatus *g = ring ? NULL
                                       : s_group (st, GW_ROUTE_SHARD);
    size_t n = ring ? gw_ring_members (env->ring) : g ? g->n_members : 1;
    Titan__V1__Member *members = calloc (n + 1, sizeof *members);
    Titan__V1__Member **ptrs = calloc (n + 1, sizeof *ptrs);
    if (!members || !ptrs) {
        free (members);
        free (ptrs);
        gw_api_fail (res, GRPC_STATUS_RESOURCE_EXHAUSTED,
                     "out of memory listing %zu members", n);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        titan__v1__member__init (&members [i]);
        if (ring) {
            members [i].id = (char *) gw_ring_member_id (env->ring, i);
            members [i].client_addr = (char *) gw_ring_member_addr (env->ring, i);
            members [i].peer_addr = (char *) gw_ring_member_peer (env->ring, i);
            members [i].ring_state = (char *) gw_ring_member_state (env->ring, i);
            members [i].state = (char *) s_ring_client_state (members [i].ring_state);
        }
        else if (g) {
            const Titan__Bus__RaftMember *m = g->members [i];
            members [i].id = m->node_id;
            members [i].client_addr = m->client_addr;
            members [i].peer_addr = m->peer_addr;
            members [i].state = (char *) s_member_state (m);
        }
        else {
            members [i].id = (char *) env->node_id;
            members [i].client_addr = (char *) env->client_addr;
            members [i].peer_addr = (char *) (env->peer_addr ? env->peer_addr : "");
            members [i].state = "up";
        }
        ptrs [i] = &members [i];
    }
    Titan__V1__MemberListResponse out = TITAN__V1__MEMBER_LIST_RESPONSE__INIT;
    out.n_members = n;
    out.members = ptrs;
    s_succeed (res, &out.base);
    free (members);
    free (ptrs);
}

/*  Copies the hinted handoff figures of `stats` into a shard's status.  */
static void
s_fill_hints (const gw_env_t *env, const gw_hint_stats_t *stats,
              Titan__V1__ShardStatus *shard)
{
    shard->hints_pending = stats->pending;
    shard->hints_pending_bytes = stats->pending_bytes;
    shard->hints_oldest_age_ms = stats->oldest_ms && env->hint_now_ms > stats->oldest_ms
                               ? (uint64_t) (env->hint_now_ms - stats->oldest_ms) : 0;
    shard->hints_delivered = stats->delivered;
    shard->hints_blocked = (char *) (stats->blocked ? stats->blocked : "");
}

/*  Adds the members of `g` that `nodes` lacks (by id).  */
static void
s_add_nodes (const Titan__Bus__RaftGroupStatus *g, Titan__V1__NodeStatus *nodes,
             size_t *n)
{
    for (size_t m = 0; m < g->n_members; m++) {
        const Titan__Bus__RaftMember *member = g->members [m];
        size_t i = 0;
        while (i < *n && strcmp (nodes [i].id, member->node_id) != 0)
            i++;
        if (i < *n) {
            if (member->voter)
                nodes [i].state = "up";   /* a voter anywhere is up */
            continue;
        }
        titan__v1__node_status__init (&nodes [i]);
        nodes [i].id = member->node_id;
        nodes [i].client_addr = member->client_addr;
        nodes [i].state = (char *) s_member_state (member);
        (*n)++;
    }
}

/*  Fills `shard` from the data group `g`: its replicas (every member,
    voters first) and, among them, the learners (replicas being added and
    catching up: a move in progress), pointing into `names` (room for
    2 * g->n_members).  */
static void
s_fill_shard (const Titan__Bus__RaftGroupStatus *g, Titan__V1__ShardStatus *shard,
              char **names)
{
    titan__v1__shard_status__init (shard);
    shard->id = g->shard;
    shard->leader = g->leader_id;
    shard->applied_index = g->applied_index;
    shard->term = g->term;
    shard->commit_index = g->commit_index;
    shard->snapshot_index = g->snapshot_index;
    shard->snapshots_taken = g->snapshots_taken;
    shard->snapshots_installed = g->snapshots_installed;
    shard->consistency = g->consistency;
    shard->divergences_detected = g->divergences_detected;
    shard->rebuilds = g->rebuilds;
    shard->digest_index = g->digest_index;
    shard->digest = g->digest;
    size_t n = 0, learners = 0;
    for (size_t m = 0; m < g->n_members; m++)
        if (g->members [m]->voter)
            names [n++] = g->members [m]->node_id;
    for (size_t m = 0; m < g->n_members; m++)
        if (!g->members [m]->voter) {
            names [n++] = g->members [m]->node_id;
            names [g->n_members + learners++] = g->members [m]->node_id;
        }
    shard->n_replicas = n;
    shard->replicas = names;
    shard->n_learners = learners;
    shard->learners = names + g->n_members;
}

/*  Copies the storage figures of a data shard from its kv.stats reply
    (NULL, or a failed one: left at 0).  */
static void
s_shard_stats (Titan__V1__ShardStatus *shard, const Titan__Bus__KvStatsReply *st)
{
    if (!st || st->code != TITAN__BUS__CODE__OK)
        return;
    shard->keys = st->keys;
    shard->last_revision = st->last_revision;
    shard->applied_index = st->applied_index;
    shard->read_repairs = st->repairs;
    shard->scrub_errors = st->scrub_errors;
    shard->scrub_passes = st->scrub_passes;
    shard->last_scrub_ms = st->last_scrub_ms;
    shard->data_errors = st->read_errors + st->load_errors;
}

/*  Cluster.Status from raft.status (NULL without a raft module: a
    single-node answer) and the storage engine's kv.stats of every data
    group the node hosts (`stats` [i] for the i-th data group of the
    reply, in its order; without data groups `stats` [0] is shard 0's).
    Static mode: one shard per data group this node hosts, the meta
    group left out, and the union of the groups' members as nodes.  Ring
    mode: every shard of the table with its desired replicas, this
    node's view of those it hosts, and the table's members as nodes.  */
static void
s_complete_status (const gw_env_t *env, const Titan__Bus__RaftStatusReply *raft,
                   Titan__Bus__KvStatsReply **stats, size_t n_stats,
                   gw_result_t *res)
{
    int ring = s_ring_mode (env);
    if (!ring && n_stats > 0
    &&  s_reply_status (stats [0]->code, stats [0]->message,
                        "storage statistics failed", res))
        return;
    size_t n_groups = raft ? raft->n_groups : 0;
    size_t n_members = 1 + gw_ring_members (env->ring);
    for (size_t i = 0; i < n_groups; i++)
        n_members += raft->groups [i]->n_members;
    uint32_t q = ring ? gw_ring_shards (env->ring) : 0;
    size_t n_slots = n_groups + q + 1;
    size_t n_names = 2 * n_members + (size_t) q * gw_ring_replicas (env->ring) + 1;
    Titan__V1__NodeStatus *nodes = calloc (n_members, sizeof *nodes);
    Titan__V1__NodeStatus **node_ptrs = calloc (n_members, sizeof *node_ptrs);
    Titan__V1__ShardStatus *shards = calloc (n_slots, sizeof *shards);
    Titan__V1__ShardStatus **shard_ptrs = calloc (n_slots, sizeof *shard_ptrs);
    char **names = calloc (n_names, sizeof *names);
    if (!nodes || !node_ptrs || !shards || !shard_ptrs || !names) {
        free (nodes);
        free (node_ptrs);
        free (shards);
        free (shard_ptrs);
        free (names);
        gw_api_fail (res, GRPC_STATUS_RESOURCE_EXHAUSTED,
                     "out of memory reporting %zu groups", n_groups);
        return;
    }
    size_t n = 0, n_shards = 0, used = 0;
    if (ring) {
        for (size_t i = 0; i < gw_ring_members (env->ring); i++) {
            titan__v1__node_status__init (&nodes [n]);
            nodes [n].id = (char *) gw_ring_member_id (env->ring, i);
            nodes [n].client_addr = (char *) gw_ring_member_addr (env->ring, i);
            nodes [n].ring_state = (char *) gw_ring_member_state (env->ring, i);
            nodes [n].state = (char *) s_ring_client_state (nodes [n].ring_state);
            n++;
        }
        for (uint32_t id = 0; id < q; id++)
            titan__v1__shard_status__init (&shards [id]), shards [id].id = id;
        n_shards = q;
    }
    size_t data_group = 0;
    for (size_t i = 0; i < n_groups; i++) {
        const Titan__Bus__RaftGroupStatus *g = raft->groups [i];
        if (g->shard == TITAN_META_SHARD)
            continue;
        const Titan__Bus__KvStatsReply *st = data_group < n_stats
                                           ? stats [data_group] : NULL;
        data_group++;
        Titan__V1__ShardStatus *shard;
        if (ring) {
            if (g->shard >= q)
                continue;        /* not in the table: being dropped */
            shard = &shards [g->shard];
        }
        else {
            s_add_nodes (g, nodes, &n);
            shard = &shards [n_shards++];
        }
        s_fill_shard (g, shard, names + used);
        used += 2 * g->n_members;
        shard->hosted = 1;
        shard->role = g->role;
        s_shard_stats (shard, st);
    }
    for (uint32_t id = 0; id < q; id++) {
        uint32_t size = gw_ring_shard_size (env->ring, id);
        shards [id].n_desired = size;
        shards [id].desired = names + used;
        for (uint32_t rank = 0; rank < size; rank++)
            names [used++] = (char *) gw_ring_replica (env->ring, id, rank);
    }
    if (n_shards == 0) {
        /* no raft module: this node alone holds the one shard */
        titan__v1__node_status__init (&nodes [0]);
        nodes [0].id = (char *) env->node_id;
        nodes [0].client_addr = (char *) env->client_addr;
        nodes [0].state = "up";
        n = 1;
        names [0] = nodes [0].id;
        titan__v1__shard_status__init (&shards [0]);
        shards [0].id = GW_ROUTE_SHARD;
        shards [0].leader = (char *) env->node_id;
        shards [0].n_replicas = 1;
        shards [0].replicas = names;
        shards [0].hosted = 1;
        shards [0].role = "leader";
        s_shard_stats (&shards [0], n_stats ? stats [0] : NULL);
        n_shards = 1;
    }
    for (size_t i = 0; i < n; i++)
        node_ptrs [i] = &nodes [i];
    for (size_t i = 0; i < n_shards; i++)
        shard_ptrs [i] = &shards [i];
    Titan__V1__StatusResponse out = TITAN__V1__STATUS_RESPONSE__INIT;
    uint32_t keyq = env->shards > 1 ? env->shards : 1;
    uint32_t parts = env->hint_parts > 1 ? env->hint_parts : 1;
    if (env->hint_stats) {
        /* per shard while the hint log's partitions are the shards (the
           ring's table did not bring another Q) */
        for (size_t i = 0; parts == keyq && i < n_shards; i++)
            if (shards [i].id < keyq)
                s_fill_hints (env, &env->hint_stats [shards [i].id], &shards [i]);
        /* the totals, in the same form */
        Titan__V1__ShardStatus all = TITAN__V1__SHARD_STATUS__INIT;
        s_fill_hints (env, &env->hint_stats [parts], &all);
        out.hints_pending = all.hints_pending;
        out.hints_pending_bytes = all.hints_pending_bytes;
        out.hints_oldest_age_ms = all.hints_oldest_age_ms;
    }
    out.node_id = (char *) env->node_id;
    out.n_nodes = n;
    out.nodes = node_ptrs;
    out.n_shards = n_shards;
    out.shards = shard_ptrs;
    out.placement = ring ? "ring" : "static";
    out.ring_epoch = gw_ring_epoch (env->ring);
    out.shard_count = ring ? q : (uint32_t) n_shards;
    out.replica_count = gw_ring_replicas (env->ring);
    s_succeed (res, &out.base);
    free (nodes);
    free (node_ptrs);
    free (shards);
    free (shard_ptrs);
    free (names);
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
        case GW_M_LIST_MODULES:
            return &titan__bus__module_list_reply__descriptor;
        case GW_M_RESTART_MODULE: case GW_M_RELOAD_MODULE:
            return &titan__bus__admin_reply__descriptor;
        case GW_M_MERGE:
            return &titan__bus__kv_merge_reply__descriptor;
        case GW_M_SET_LOG_LEVEL:
            return &titan__bus__log_level_reply__descriptor;
        case GW_M_SCRUB:
            return &titan__bus__kv_scrub_reply__descriptor;
        default:
            return NULL;
    }
}

void
gw_api_complete (gw_method_t method, uint64_t expected,
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
        case GW_M_SCRUB: {
            Titan__Bus__KvScrubReply *sc = (Titan__Bus__KvScrubReply *) msg;
            if (s_reply_status (sc->code, sc->message, "scrub failed", res))
                break;
            Titan__V1__ScrubResponse out = TITAN__V1__SCRUB_RESPONSE__INIT;
            out.started = sc->started;
            out.running = sc->running;
            out.passes = sc->passes;
            out.records = sc->records;
            out.bytes = sc->bytes;
            out.errors = sc->errors;
            out.last_pass_ms = sc->last_pass_ms;
            out.last_pass_errors = sc->last_pass_errors;
            out.bytes_per_sec = sc->bytes_per_sec;
            s_succeed (res, &out.base);
            break;
        }
        case GW_M_SET_LOG_LEVEL: {
            Titan__Bus__LogLevelReply *ll = (Titan__Bus__LogLevelReply *) msg;
            if (s_reply_status (ll->code, ll->message, "log level not set", res))
                break;
            Titan__V1__SetLogLevelResponse out = TITAN__V1__SET_LOG_LEVEL_RESPONSE__INIT;
            out.level = ll->level;
            out.previous = ll->previous;
            s_succeed (res, &out.base);
            break;
        }
        default:
            break;
    }
    protobuf_c_message_free_unpacked (msg, NULL);
}

/*  ------------------------------------------------------ hinted handoff  */

int
gw_api_hint_request (const uint8_t *stored, size_t stored_size,
                     uint64_t client_id, uint64_t sequence,
                     uint8_t **out_p, size_t *size_p)
{
    Titan__V1__PutRequest *put =
        titan__v1__put_request__unpack (NULL, stored_size, stored);
    if (!put)
        return -EINVAL;
    put->deferred = 0;
    put->client_id = client_id;
    put->sequence = sequence;
    gw_result_t res = { GRPC_STATUS_OK, "", NULL, 0 };
    int rc = s_pack (&put->base, out_p, size_p, &res) ? -ENOMEM : 0;
    titan__v1__put_request__free_unpacked (put, NULL);
    return rc;
}

void
gw_api_deferred (gw_result_t *res)
{
    Titan__V1__PutResponse out = TITAN__V1__PUT_RESPONSE__INIT;
    out.deferred = 1;
    s_succeed (res, &out.base);
}

uint64_t
gw_api_put_revision (const uint8_t *data, size_t size)
{
    Titan__V1__PutResponse *put = titan__v1__put_response__unpack (NULL, size, data);
    uint64_t revision = put ? put->revision : 0;
    if (put)
        titan__v1__put_response__free_unpacked (put, NULL);
    return revision;
}

/*  ------------------------------------------------------------ steps  */

/*  Fails *res with the refusal in a raft.status / raft.member_* reply;
    returns 0 when the reply is OK.  */
static int
s_raft_refusal (gw_method_t method, int code, const char *message,
                gw_result_t *res)
{
    if (code == TITAN__BUS__CODE__UNIMPLEMENTED) {
        gw_api_fail (res, GRPC_STATUS_UNIMPLEMENTED,
                     "this node does not run the raft module, which serves "
                     "%s (%s)", gw_api_method_path (method),
                     message && *message ? message : "no reason given");
        return -1;
    }
    return s_reply_status (code, message, "the raft module refused", res);
}

/*  Reply `index` of the replies `prev` (gw_api_prev_append); returns 0,
    or -1 when there is no such well-formed record.  */
static int
s_prev_at (const uint8_t *prev, size_t prev_size, size_t index,
           const uint8_t **data_p, size_t *size_p)
{
    size_t at = 0;
    for (size_t i = 0; ; i++) {
        if (at > prev_size || prev_size - at < 4)
            return -1;
        size_t len = (size_t) prev [at] | (size_t) prev [at + 1] << 8
                   | (size_t) prev [at + 2] << 16 | (size_t) prev [at + 3] << 24;
        at += 4;
        if (len > prev_size - at)
            return -1;
        if (i == index) {
            *data_p = prev + at;
            *size_p = len;
            return 0;
        }
        at += len;
    }
}

int
gw_api_prev_append (uint8_t **prev_p, size_t *size_p, const uint8_t *data,
                    size_t size)
{
    if (size > UINT32_MAX)
        return -ENOMEM;
    uint8_t *prev = realloc (*prev_p, *size_p + 4 + size);
    if (!prev)
        return -ENOMEM;
    uint8_t *at = prev + *size_p;
    for (int i = 0; i < 4; i++)
        at [i] = (uint8_t) (size >> (8 * i));
    if (size)
        memcpy (at + 4, data, size);
    *prev_p = prev;
    *size_p += 4 + size;
    return 0;
}

/*  The data shards of a raft.status reply (meta group left out), in its
    order: stores the shard of the `index`-th in *shard_p; returns the
    count.  */
static size_t
s_data_groups (const Titan__Bus__RaftStatusReply *raft, size_t index,
               uint32_t *shard_p)
{
    size_t count = 0;
    for (size_t i = 0; raft && i < raft->n_groups; i++) {
        if (raft->groups [i]->shard == TITAN_META_SHARD)
            continue;
        if (count == index && shard_p)
            *shard_p = raft->groups [i]->shard;
        count++;
    }
    return count;
}

/*  A raft.status reply decoded (the caller's, to free), or NULL with *res
    failed INTERNAL.  */
static Titan__Bus__RaftStatusReply *
s_unpack_raft_status (const uint8_t *data, size_t size, gw_result_t *res)
{
    Titan__Bus__RaftStatusReply *raft =
        titan__bus__raft_status_reply__unpack (NULL, size, data);
    if (!raft)
        gw_api_fail (res, GRPC_STATUS_INTERNAL, "raft.status reply does not "
                     "decode (%zu bytes)", size);
    return raft;
}

/*  Status and MemberList: step 0 is raft.status (refused UNIMPLEMENTED
    without a raft module); Status then asks kv.stats of each data group
    the node hosts (of shard 0 when it hosts none), one step each, and
    completes with the last.  */
static int
s_step_status (const gw_env_t *env, gw_method_t method, int step,
               const uint8_t *prev, size_t prev_size, const uint8_t *data,
               size_t size, gw_bus_req_t *req, gw_result_t *res)
{
    const uint8_t *raft_data = data;
    size_t raft_size = size;
    if (step > 0 && s_prev_at (prev, prev_size, 0, &raft_data, &raft_size)) {
        gw_api_fail (res, GRPC_STATUS_INTERNAL, "status step %d without the "
                     "raft.status reply", step);
        return 0;
    }
    Titan__Bus__RaftStatusReply *raft = s_unpack_raft_status (raft_data,
                                                              raft_size, res);
    if (!raft)
        return 0;
    int no_raft = raft->code == TITAN__BUS__CODE__UNIMPLEMENTED;
    if (no_raft) {
        titan__bus__raft_status_reply__free_unpacked (raft, NULL);
        raft = NULL;
    }
    else if (s_reply_status (raft->code, raft->message, "raft status failed",
                             res)) {
        titan__bus__raft_status_reply__free_unpacked (raft, NULL);
        return 0;
    }
    int rc = 0;
    size_t groups = s_data_groups (raft, 0, NULL);
    size_t wanted = groups ? groups : 1;
    if (method == GW_M_MEMBER_LIST)
        s_complete_members (env, raft, res);
    else if ((size_t) step < wanted) {
        /* the kv.stats of data group `step` (the replies so far: step) */
        Titan__Bus__KvStatsRequest q = TITAN__BUS__KV_STATS_REQUEST__INIT;
        q.shard = GW_ROUTE_SHARD;
        s_data_groups (raft, (size_t) step, &q.shard);
        rc = s_bus (req, GW_ROUTE_STORAGE, TITAN_T_KV_STATS, &q.base, res);
    }
    else {
        Titan__Bus__KvStatsReply **stats = calloc (wanted, sizeof *stats);
        size_t n_stats = 0;
        for (size_t i = 0; stats && i < wanted; i++) {
            const uint8_t *d = data;
            size_t len = size;
            if (i + 1 < wanted && s_prev_at (prev, prev_size, i + 1, &d, &len))
                break;
            stats [i] = titan__bus__kv_stats_reply__unpack (NULL, len, d);
            if (!stats [i])
                break;
            n_stats++;
        }
        if (!stats)
            gw_api_fail (res, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        else if (n_stats < wanted)
            gw_api_fail (res, GRPC_STATUS_INTERNAL, "kv.stats reply %zu of %zu "
                         "does not decode", n_stats + 1, wanted);
        else
            s_complete_status (env, raft, stats, n_stats, res);
        for (size_t i = 0; i < n_stats; i++)
            titan__bus__kv_stats_reply__free_unpacked (stats [i], NULL);
        free (stats);
    }
    if (raft)
        titan__bus__raft_status_reply__free_unpacked (raft, NULL);
    return rc;
}

int
gw_api_step (const gw_env_t *env, gw_method_t method, uint64_t expected,
             int step, const uint8_t *prev, size_t prev_size,
             const uint8_t *data, size_t size, gw_bus_req_t *req,
             gw_result_t *res)
{
    memset (req, 0, sizeof *req);
    gw_result_reset (res);
    int rc = 0;
    switch (method) {
        case GW_M_STATUS:
        case GW_M_MEMBER_LIST:
            return s_step_status (env, method, step, prev, prev_size, data,
                                  size, req, res);
        case GW_M_JOIN:
        case GW_M_LEAVE:
        case GW_M_TRANSFER_LEADER: {
            if (step == 1) {
                /* the membership after the change */
                Titan__Bus__RaftStatusReply *raft = s_unpack_raft_status (data,
                                                                  size, res);
                if (raft && !s_raft_refusal (method, raft->code, raft->message,
                                             res))
                    s_complete_members (env, raft, res);
                if (raft)
                    titan__bus__raft_status_reply__free_unpacked (raft, NULL);
                return 0;
            }
            Titan__Bus__RaftMemberReply *reply =
                titan__bus__raft_member_reply__unpack (NULL, size, data);
            if (!reply) {
                gw_api_fail (res, GRPC_STATUS_INTERNAL, "raft member reply "
                             "does not decode (%zu bytes)", size);
                return 0;
            }
            if (!s_raft_refusal (method, reply->code, reply->message, res)) {
                if (method == GW_M_TRANSFER_LEADER) {
                    Titan__V1__TransferLeaderResponse out =
                        TITAN__V1__TRANSFER_LEADER_RESPONSE__INIT;
                    s_succeed (res, &out.base);
                }
                else
                    rc = s_raft_status (req, res);
            }
            titan__bus__raft_member_reply__free_unpacked (reply, NULL);
            return rc;
        }
        default:
            gw_api_complete (method, expected, data, size, res);
            return 0;
    }
}

int
gw_api_redirect (gw_method_t method, int step, const uint8_t *data,
                 size_t size, char *leader_id, size_t id_size,
                 char *leader_addr, size_t addr_size,
                 char *message, size_t message_size)
{
    int unavailable = 0;
    const char *id = "", *addr = "", *why = "";
    ProtobufCMessage *msg = NULL;
    switch (method) {
        case GW_M_PUT: case GW_M_GET: case GW_M_DELETE: case GW_M_CAS: {
            Titan__Bus__KvReply *kv = titan__bus__kv_reply__unpack (NULL, size, data);
            if (kv && kv->code == TITAN__BUS__CODE__UNAVAILABLE) {
                unavailable = 1;
                id = kv->leader_id;
                addr = kv->leader_client_addr;
                why = kv->message;
            }
            msg = (ProtobufCMessage *) kv;
            break;
        }
        case GW_M_JOIN: case GW_M_LEAVE: case GW_M_TRANSFER_LEADER: {
            if (step != 0)
                return 0;
            Titan__Bus__RaftMemberReply *r =
                titan__bus__raft_member_reply__unpack (NULL, size, data);
            if (r && r->code == TITAN__BUS__CODE__UNAVAILABLE) {
                unavailable = 1;
                id = r->leader_id;
                addr = r->leader_client_addr;
                why = r->message;
            }
            msg = (ProtobufCMessage *) r;
            break;
        }
        default:
            return 0;
    }
    if (unavailable) {
        snprintf (leader_id, id_size, "%s", id ? id : "");
        snprintf (leader_addr, addr_size, "%s", addr ? addr : "");
        snprintf (message, message_size, "%s", why ? why : "");
    }
    if (msg)
        protobuf_c_message_free_unpacked (msg, NULL);
    return unavailable;
}
