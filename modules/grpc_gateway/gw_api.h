/*  grpc_gateway API layer: the titan.v1 methods (proto/titan.proto) as pure
    functions, with no sockets and no gRPC calls in them.

    For each incoming call the gateway asks gw_api_prepare to decode and
    validate the request.  Either the answer is known at once (bad input),
    or the request becomes a bus request (to, type, payload) whose reply
    gw_api_step turns into the gRPC response message and status, or into
    the next bus request (Status, MemberList, Join and Leave take two).  Being
    pure, both are unit-tested directly, and the gateway actor only moves
    bytes between gRPC and the bus.
*/
#ifndef GW_API_H_INCLUDED
#define GW_API_H_INCLUDED

#include "gw_hints.h"

#include "gw_ring.h"
#include <grpc/status.h>
#include <stddef.h>
#include <stdint.h>

/*  The methods of titan.v1, in the order of gw_api_method_path.  */
typedef enum {
    GW_M_PUT = 0,
    GW_M_GET,
    GW_M_DELETE,
    GW_M_CAS,
    GW_M_STATUS,
    GW_M_MEMBER_LIST,
    GW_M_JOIN,
    GW_M_LEAVE,
    GW_M_TRANSFER_LEADER,
    GW_M_LIST_MODULES,
    GW_M_RESTART_MODULE,
    GW_M_RELOAD_MODULE,
    GW_M_MERGE,
    GW_M_SET_LOG_LEVEL,
    GW_M_SCRUB,
    GW_M_COUNT
} gw_method_t;

/*  What the API layer needs to know about its node; read-only.  */
typedef struct {
    const char *node_id;
    const char *client_addr;
    const char *peer_addr;
    const char *module_name;     /* the gateway's own module name */
    size_t max_key_bytes;        /* setting max_key_bytes */
    size_t max_value_bytes;      /* setting max_value_bytes */
    uint32_t shards;             /* Q: keys map to shards 0..Q-1 (0 means 1) */
    uint32_t hint_parts;         /* partitions of the hint log: Q at start,
                                    fixed (0 means 1) */
    /* hinted handoff figures for Cluster.Status: `shards` entries, one
       per shard, then the totals (NULL: no hint log); the time their
       ages are counted to (wall clock ms) */
    const gw_hint_stats_t *hint_stats;
    int64_t hint_now_ms;
    const gw_ring_t *ring;       /* the ring's table (ring mode when it
                                    holds one), or NULL */
} gw_env_t;

/*  The outcome of a call: a status, a message when not OK, and the packed
    response message (malloc'd, the holder's) when OK.  */
typedef struct {
    grpc_status_code code;
    char message [256];
    uint8_t *response;
    size_t response_size;
} gw_result_t;

/*  One bus request to make for a call.  `payload` is malloc'd (the
    holder's; may be NULL when size is 0); `to` and `type` are static.
    `expected` keeps what gw_api_complete needs from the request (the CAS
    expected revision).  */
typedef struct {
    const char *to;
    const char *type;
    uint8_t *payload;
    size_t size;
    uint64_t expected;
    int targets_self;            /* restart/reload of the gateway itself */
    uint32_t shard;              /* the shard a KV request is for */
    int routable;                /* may go straight to the shard's leader:
                                    writes and LINEARIZABLE reads */
    int deferred;                /* a deferred put: nothing to send; payload
                                    is the PutRequest to keep in the hint
                                    log (deferred and dedup pair unset) */
} gw_bus_req_t;

/*  Default storage limits: the same settings and defaults as the bitcask
    module's.  */
#define GW_DEFAULT_MAX_KEY_BYTES    65535u
#define GW_DEFAULT_MAX_VALUE_BYTES  (8u * 1024u * 1024u)
/*  Room for the protobuf framing of a request around its key and value.  */
#define GW_MESSAGE_HEADROOM         4096u

/*  Returns the method named by a gRPC method path ("/titan.v1.KV/Put"),
    or -1 when the path names no method of titan.v1.  */
int gw_api_method (const char *path, size_t len);

/*  Returns the gRPC path of a method (static string).  */
const char *gw_api_method_path (gw_method_t method);

/*  The shard that holds `key` of `size` bytes: ring_key_shard with the
    env's shard count (shard 0 when it is 0 or 1).  */
uint32_t gw_api_key_shard (const gw_env_t *env, const uint8_t *key, size_t size);

/*  Decodes and validates the request bytes of `method`.  Returns 1 when
    *req is a bus request to send (then call gw_api_step with its
    reply) or, with req->deferred set, a deferred put to store in the hint
    log (req->payload is the request to keep, req->shard its shard), or 0
    when *res already holds the outcome.  On return the caller owns
    req->payload (1) or res->response (0).  */
int gw_api_prepare (const gw_env_t *env, gw_method_t method,
                    const uint8_t *data, size_t size,
                    gw_bus_req_t *req, gw_result_t *res);

/*  Turns the payload of the bus reply to a one-step method's request
    (KV, admin, merge) into the call's outcome in *res (res->response is
    then the caller's).  `expected` is req->expected of the request.  A
    reply that does not decode yields INTERNAL.  */
void gw_api_complete (gw_method_t method, uint64_t expected,
                      const uint8_t *data, size_t size, gw_result_t *res);

/*  Continues a call after the reply to its bus request number `step`
    (0 first).  Status and MemberList ask raft.status first (Status then
    kv.stats of every data shard the node hosts, one request each); Join
    and Leave ask raft.status after the change, for the membership they
    return; every other method has one step and this is gw_api_complete.
    `prev` holds the replies to steps 0..step-1 as gw_api_prev_append
    made it.  Returns 1 when *req is the next bus request to make (the
    caller then appends this reply to `prev` and calls again with step +
    1), or 0 when *res is the outcome.  In ring mode (env->ring holds a
    table) Join and Leave change the meta group (TITAN_META_SHARD) and
    Status and MemberList report the table's shards and members.  */
int gw_api_step (const gw_env_t *env, gw_method_t method, uint64_t expected,
                 int step, const uint8_t *prev, size_t prev_size,
                 const uint8_t *data, size_t size, gw_bus_req_t *req,
                 gw_result_t *res);

/*  Appends one reply (`data`, `size` bytes) to the replies `*prev_p` of
    `*size_p` bytes (malloc'd, the caller's; NULL/0 to start): a 4-byte
    little-endian length, then the bytes.  Returns 0 or -ENOMEM (then
    *prev_p is unchanged).  */
int gw_api_prev_append (uint8_t **prev_p, size_t *size_p,
                        const uint8_t *data, size_t size);

/*  Says whether the reply to step `step` of `method` is the raft module's
    UNAVAILABLE (this node is not the leader, or no leader is known), in
    which case the call may be forwarded or retried: returns 1 and copies
    the leader hint (empty strings when unknown) and the refusal's
    message.  Returns 0 for any other reply, and for methods that are
    never redirected.  */
int gw_api_redirect (gw_method_t method, int step, const uint8_t *data,
                     size_t size, char *leader_id, size_t id_size,
                     char *leader_addr, size_t addr_size,
                     char *message, size_t message_size);

/*  The PutRequest that delivers a hint: the stored request (`stored`, as
    gw_api_prepare gave it for a deferred put) with the hint log's dedup
    pair.  Returns 0 with *out_p (malloc'd, the caller's) and *size_p, or
    -EINVAL when the stored bytes do not decode, -ENOMEM.  */
int gw_api_hint_request (const uint8_t *stored, size_t stored_size,
                         uint64_t client_id, uint64_t sequence,
                         uint8_t **out_p, size_t *size_p);

/*  Sets *res to the answer of an accepted deferred put: OK, a PutResponse
    with deferred = true and revision 0.  */
void gw_api_deferred (gw_result_t *res);

/*  The revision in a packed PutResponse, or 0 when it does not decode.  */
uint64_t gw_api_put_revision (const uint8_t *data, size_t size);

/*  The outcome of a RestartModule / ReloadModule of the gateway itself
    that was still waiting for the kernel's reply when the gateway was
    stopped (by that very command): OK, saying so.  */
void gw_api_self_command (gw_method_t method, gw_result_t *res);

/*  Sets *res to a failure with a printf-style message.  */
void gw_api_fail (gw_result_t *res, grpc_status_code code,
                  const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

/*  Frees res->response and resets *res to an empty OK.  */
void gw_result_reset (gw_result_t *res);

/*  The canonical upper-case name of a gRPC status code ("NOT_FOUND").  */
const char *gw_status_name (grpc_status_code code);

#endif
