/*  grpc_gateway server: a gRPC server on the gRPC C core API with one
    completion-queue thread, handing received calls to the gateway actor.

    The CQ thread keeps a few grpc_server_request_call (generic, any method)
    outstanding; when a call arrives it reads the request message
    (RECV_MESSAGE) and then hands the call to the actor by pushing its
    pointer on an inproc PUSH socket connected to `handoff_endpoint` (the
    actor binds the PULL end).  From then on the actor owns the call until
    it calls gw_server_finish, which starts the final batch (initial
    metadata, response, status, close) from the actor thread
    (grpc_call_start_batch is thread-safe); the CQ thread frees the call when
    that batch completes.

    Shutdown is two-step so that no call is lost and the completion queue
    is fully drained before the module's code can be unloaded:
    gw_server_shutdown stops accepting calls, lets those in flight finish
    for a grace period (answers already queued, such as the reply to the
    very command that reloads the gateway, are sent), and
    gw_server_cancel_all then cancels what is left; the actor keeps finishing what it is handed until it receives the NULL
    call pointer that the CQ thread pushes last; then gw_server_destroy
    joins the thread and releases gRPC (grpc_shutdown is reference-counted).
*/
#ifndef GW_SERVER_H_INCLUDED
#define GW_SERVER_H_INCLUDED

#include "gw_metrics.h"

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gw_server gw_server_t;

/*  One server-side call.  The fields the actor reads are `method_path`
    (the gRPC method, NUL-terminated), `request` / `request_size` (the
    request message bytes) and `deadline_ms` (the client's deadline on the
    zclock_mono clock, or INT64_MAX when it set none).  `user` is free for
    the actor.  */
typedef struct gw_call {
    char method_path [128];
    uint8_t *request;
    size_t request_size;
    int have_request;           /* 0 when the client sent no message */
    int64_t deadline_ms;
    void *user;
    /* private to gw_server.c */
    uint64_t received_us;       /* titan_mono_us when the call arrived */
    int phase;
    gw_server_t *server;
    grpc_call *call;
    grpc_call_details details;
    grpc_metadata_array request_md;
    grpc_byte_buffer *recv_buffer;
    grpc_byte_buffer *send_buffer;
    grpc_slice status_details;
    int cancelled;
} gw_call_t;

/*  Starts a server listening on `addr` ("host:port"; port 0 picks a free
    one, see gw_server_port) with `creds` (borrowed; NULL: insecure HTTP/2,
    see gw_security.h for TLS), accepting requests of up to
    `max_recv_bytes`, handing calls to `handoff_endpoint`.  Returns NULL on
    failure with the reason in `error`.  */
gw_server_t *gw_server_new (const char *addr, size_t max_recv_bytes,
                            grpc_server_credentials *creds,
                            const char *handoff_endpoint,
                            char *error, size_t error_size);

/*  The TCP port the server is bound to.  */
int gw_server_port (gw_server_t *self);

/*  The server's call figures (owned by the server; valid until
    gw_server_destroy).  */
gw_metrics_t *gw_server_metrics (gw_server_t *self);

/*  Completes a call handed over by the server, taking ownership of *call_p
    (nulled): sends `response` (copied; may be NULL when code != OK), the
    status `code` and `message`.  Thread-safe.  */
void gw_server_finish (gw_call_t **call_p, grpc_status_code code,
                       const char *message,
                       const uint8_t *response, size_t response_size);

/*  Begins shutdown: no new calls; calls in flight may still finish (their
    answers already queued are sent).  The CQ thread pushes a NULL pointer
    to the handoff endpoint once every call is finished and the completion
    queue is drained.  Idempotent.  */
void gw_server_shutdown (gw_server_t *self);

/*  Begins shutdown if not begun, and cancels every call still in flight
    (for the end of the grace period, or at once).  */
void gw_server_cancel_all (gw_server_t *self);

/*  Joins the CQ thread, destroys the server and the queue, releases gRPC;
    nulls the pointer.  Call after the NULL pointer arrived (or when the
    server never handed anything over; it then shuts down first).  */
void gw_server_destroy (gw_server_t **self_p);

#endif
