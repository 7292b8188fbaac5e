/*  Titan-KV client connection: blocking unary calls to a titan.v1 server
    on the gRPC C core API.  Used by titanctl, the load generator and the
    end-to-end tests.

    A connection is one HTTP/2 channel (plain text, or TLS with
    tc_conn_new_secure) and one pluck completion queue; calls on it are sequential (one thread per connection).  A call
    that cannot reach its server fails fast with UNAVAILABLE instead of
    waiting for the server to come up, so a caller can try the next
    endpoint.
*/
#ifndef TC_CLIENT_H_INCLUDED
#define TC_CLIENT_H_INCLUDED

#include <grpc/status.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tc_conn tc_conn_t;

/*  TLS material for secure connections: the CA to trust and, for servers
    that ask for one, a client certificate and key (PEM).  */
typedef struct tc_tls tc_tls_t;

/*  Reads the PEM files: `ca_file` (required) and optionally `cert_file`
    with `key_file` (both or neither).  Returns a new object, or NULL with
    the reason (naming the file) in `error`.  */
tc_tls_t *tc_tls_new (const char *ca_file, const char *cert_file,
                      const char *key_file, char *error, size_t error_size);

/*  Frees the object (wiping the key) and nulls the pointer.  */
void tc_tls_destroy (tc_tls_t **self_p);

/*  Opens a channel to `target` ("host:port").  Returns NULL when out of
    memory.  The channel connects lazily, on the first call.  */
tc_conn_t *tc_conn_new (const char *target);

/*  Opens a TLS channel to `target` with `tls` (borrowed; NULL: the same
    as tc_conn_new).  The server's certificate must be signed by the CA
    and name the target's host.  Returns NULL when out of memory or when
    gRPC cannot make TLS credentials of `tls`.  */
tc_conn_t *tc_conn_new_secure (const char *target, const tc_tls_t *tls);

/*  Sends `token` (copied; NULL: none) with every later call as metadata
    `authorization: Bearer <token>`.  Returns 0, or -1 when out of
    memory.  */
int tc_conn_set_token (tc_conn_t *self, const char *token);

/*  Closes the channel and nulls the pointer.  */
void tc_conn_destroy (tc_conn_t **self_p);

/*  The target this connection was opened for.  */
const char *tc_conn_target (tc_conn_t *self);

/*  Calls `method` ("/titan.v1.KV/Put") with the packed request, waiting at
    most `timeout_ms`.  Returns the gRPC status of the call.  On OK,
    *response_p is the response bytes (malloc'd, the caller's; never NULL)
    and *response_size its size.  On failure *response_p is NULL and
    `details` (when not NULL) holds the server's message.  */
grpc_status_code tc_call (tc_conn_t *self, const char *method,
                          const uint8_t *request, size_t request_size,
                          int64_t timeout_ms,
                          uint8_t **response_p, size_t *response_size,
                          char *details, size_t details_size);

/*  The canonical upper-case name of a gRPC status code ("UNAVAILABLE").  */
const char *tc_status_name (grpc_status_code code);

#endif
