/*  grpc_gateway request decoding: the bytes of a titan.v1 request become
    either a decoded request that has passed every check, or the precise
    gRPC status that refuses it.

    This is the one step between untrusted bytes and the rest of the
    gateway.  gw_api_prepare calls it for every call before mapping the
    request onto the bus, and the libFuzzer target
    (modules/grpc_gateway/fuzz_request.c) calls the same code, so what is
    fuzzed is what runs.  The bytes are bounded before they get here (the
    gRPC server's maximum receive size, derived from max_key_bytes and
    max_value_bytes); protobuf-c checks every length against the buffer;
    this step then checks what protobuf-c cannot: key and value sizes
    against the node's limits, enum values (an unknown Consistency is
    refused, not mapped to a default), shard ids, node ids, addresses and
    module names, and fields the store does not support yet.  It never
    prints key bytes, only their sizes.
*/
#ifndef GW_REQUEST_H_INCLUDED
#define GW_REQUEST_H_INCLUDED

#include "gw_api.h"

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

/*  Limits of the string fields of titan.v1 requests.  */
#define GW_NODE_ID_MAX      63u      /* JoinRequest.node_id, ... */
#define GW_ADDR_MAX         255u     /* host:port */
#define GW_MODULE_NAME_MAX  63u      /* ModuleRequest.name */

/*  A decoded, validated request: `msg` is the unpacked titan.v1 message
    of `method` (e.g. Titan__V1__PutRequest for GW_M_PUT), owned by the
    holder; release it with gw_request_clear.  */
typedef struct {
    gw_method_t method;
    ProtobufCMessage *msg;
} gw_request_t;

/*  Decodes the request bytes of `method` and validates them against the
    node's limits in `env`.  Returns 0 with *req holding the request (the
    caller's: gw_request_clear), or -1 with *res failed (INVALID_ARGUMENT
    naming the field and the limit, UNIMPLEMENTED for an unknown method)
    and *req empty.  Never reads past `size` bytes.  */
int gw_request_decode (const gw_env_t *env, gw_method_t method,
                       const uint8_t *data, size_t size, gw_request_t *req,
                       gw_result_t *res);

/*  Frees the request message and empties *req.  Idempotent.  */
void gw_request_clear (gw_request_t *req);

/*  The value of the `titan-hops` metadata (`len` bytes, not
    NUL-terminated): 0 to 99 in decimal; any other text (empty, longer,
    not digits) yields GW_MAX_HOPS + 1 so that the call is refused.  */
int gw_request_hops (const uint8_t *text, size_t len);

#endif
