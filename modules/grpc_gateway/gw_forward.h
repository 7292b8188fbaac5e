/*  grpc_gateway forwarder: sends a call that this node cannot serve (it is
    not the Raft leader) to the leader's gateway over gRPC, without
    blocking the gateway actor.

    Choice: the asynchronous gRPC C-core client on one completion queue
    drained by one forwarder thread.  The actor starts a forwarded call
    (grpc_channel_create_call + one batch; both are thread-safe and do not
    block) and goes on; when the call completes, the forwarder thread
    pushes a gw_fwd_result_t pointer to the actor over an inproc PUSH
    socket, and the actor decides (finish the client's call, or retry).
    Many forwarded calls are in flight at once on one thread, which a
    worker-thread-per-call design would not give on a 2-core machine.

    Channels are cached per target ("host:port"), created on first use by
    the actor thread and kept until the forwarder is destroyed.  Every
    forwarded call carries the metadata `titan-hops: N` (N = how many
    gateways forwarded it so far), and the deadline it was given (the
    original call's), and `authorization` when the node has a token (see
    gw_security.h).  A call to an unreachable target fails fast with
    UNAVAILABLE (no wait-for-ready), so the actor can retry elsewhere.
*/
#ifndef GW_FORWARD_H_INCLUDED
#define GW_FORWARD_H_INCLUDED

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <stddef.h>
#include <stdint.h>

/*  The metadata key that counts forwarding hops, and the most hops a call
    may take (a call that arrives with this many is not forwarded again).  */
#define GW_HOPS_KEY "titan-hops"
#define GW_MAX_HOPS 3

typedef struct gw_forward gw_forward_t;

/*  The outcome of one forwarded call, pushed to the actor.  `corr` is the
    value given to gw_forward_start.  On OK, response/size is the response
    message (malloc'd, the holder's).  */
typedef struct {
    uint64_t corr;
    grpc_status_code code;
    char details [256];
    char target [128];
    uint8_t *response;
    size_t size;
} gw_fwd_result_t;

/*  Starts the forwarder thread; results go to the PULL socket bound at
    `done_endpoint` (bind it before calling).  Returns NULL on failure with
    the reason in `error`.  */
gw_forward_t *gw_forward_new (const char *done_endpoint,
                              char *error, size_t error_size);

/*  Secures the calls forwarded from now on: takes `*creds_p` (nulled;
    NULL keeps insecure channels) for the channels to other nodes, and
    sends `token` (copied; NULL: none) as `authorization: Bearer <token>`
    metadata.  Call before the first gw_forward_start.  Returns 0 or
    -ENOMEM.  */
int gw_forward_set_credentials (gw_forward_t *self,
                                grpc_channel_credentials **creds_p,
                                const char *token);

/*  Cancels the calls in flight (their results are dropped), stops the
    thread, closes the channels, releases gRPC; nulls the pointer.  Results
    already pushed stay in the actor's socket: drain them with
    gw_fwd_result_destroy.  */
void gw_forward_destroy (gw_forward_t **self_p);

/*  Forwards `method` with the request bytes (copied) to `target`, with
    deadline `deadline_ms` (zclock_mono clock) and `titan-hops: hops`.
    Returns 0, or a negative status (-ENOMEM, -EINVAL for a bad target,
    -EIO when gRPC refused to start the call); a result is pushed for
    every call started.  Call from one thread only (the actor).  */
int gw_forward_start (gw_forward_t *self, const char *target,
                      const char *method, const uint8_t *request,
                      size_t request_size, int64_t deadline_ms, int hops,
                      uint64_t corr);

/*  gw_forward_start with one more metadata entry `md_key: md_value`
    (both copied; md_key NULL: none), e.g. the read repair's marker.  */
int gw_forward_start_md (gw_forward_t *self, const char *target,
                         const char *method, const uint8_t *request,
                         size_t request_size, int64_t deadline_ms, int hops,
                         uint64_t corr, const char *md_key,
                         const char *md_value);

/*  Bounds the response of a forwarded call to `bytes` (the node's
    largest message: max_key_bytes + max_value_bytes + headroom), so that a
    faulty or hostile peer cannot make this node allocate without limit; a
    larger response fails the call with RESOURCE_EXHAUSTED.  Applies to
    channels created afterwards: call it right after gw_forward_new.  The
    default is no limit.  */
void gw_forward_set_max_message (gw_forward_t *self, size_t bytes);

/*  Number of calls in flight.  */
size_t gw_forward_inflight (gw_forward_t *self);

/*  The hop count of a received call: the value of `titan-hops` in its
    initial metadata, 0 when absent, GW_MAX_HOPS + 1 when malformed.  */
int gw_forward_hops (const grpc_metadata_array *metadata);

/*  Frees a result and nulls the pointer.  */
void gw_fwd_result_destroy (gw_fwd_result_t **self_p);

#endif
