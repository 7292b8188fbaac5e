/*  grpc_gateway security: TLS credentials and the client token check.

    Settings (the grpc_gateway module's subtree; all off by default, and a
    default node listens on loopback only):
      tls_cert, tls_key   PEM files of this node's certificate (chain) and
                          private key: the gRPC server speaks TLS only
      tls_ca              PEM file of the CA(s) trusted for peer and client
                          certificates; required with TLS (forwarding to
                          the leader verifies its certificate with it)
      tls_client_auth     none (default) | request | require: whether the
                          server asks clients for a certificate signed by
                          tls_ca (request: verified when sent; require:
                          refused without one — mutual TLS)
      auth_token          shared secret every client RPC must carry as
                          gRPC metadata `authorization: Bearer <token>`
      auth_token_file     the same, read from a file (surrounding blanks
                          and the final newline are ignored)
    With TLS on, calls this node forwards to the leader go over TLS too,
    presenting this node's certificate as client certificate (so a cluster
    with tls_client_auth = require is mutual TLS between peers), and carry
    this node's token: every node of a cluster has the same token.
*/
#ifndef GW_SECURITY_H_INCLUDED
#define GW_SECURITY_H_INCLUDED

#include <czmq.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <stdbool.h>
#include <stddef.h>

#define GW_AUTH_KEY "authorization"
#define GW_TOKEN_MAX 4096

typedef struct gw_security gw_security_t;

/*  Reads the settings above from `settings` (may be NULL: all off).
    Returns a new object, or NULL with the reason (naming the setting or
    file) in `error`.  */
gw_security_t *gw_security_new (zconfig_t *settings, char *error,
                                size_t error_size);

/*  Frees the object and nulls the pointer.  */
void gw_security_destroy (gw_security_t **self_p);

/*  True when the server speaks TLS.  */
bool gw_security_tls (const gw_security_t *self);

/*  New server credentials for grpc_server_add_http2_port: TLS with the
    configured certificate and client-certificate policy, or insecure.
    The caller releases them.  NULL when gRPC cannot make them (never a
    silent fallback to plain text).  */
grpc_server_credentials *gw_security_server_creds (const gw_security_t *self);

/*  New channel credentials for calls to other nodes: TLS trusting
    tls_ca with this node's certificate as client certificate, or NULL
    when TLS is off (insecure) or gRPC cannot make them (check
    gw_security_tls).  The caller owns them.  */
grpc_channel_credentials *gw_security_channel_creds (const gw_security_t *self);

/*  The configured token, or NULL when tokens are off.  */
const char *gw_security_token (const gw_security_t *self);

/*  Checks a call's metadata against the token.  Returns true when tokens
    are off or `authorization: Bearer <token>` matches (compared in
    constant time); else false with the reason in `message`.  */
bool gw_security_authorize (const gw_security_t *self,
                            const grpc_metadata_array *metadata,
                            char *message, size_t message_size);

#endif
