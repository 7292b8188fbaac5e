/*  metrics module: the HTTP endpoints, served by libmicrohttpd from its
    own thread (MHD_USE_INTERNAL_POLLING_THREAD: one thread runs every
    handler, so the one socket it uses is never shared).

      GET /metrics  Prometheus text (version 0.0.4) of a fresh gather
      GET /healthz  200 "ok": the process is up and serving HTTP
      GET /readyz   200 when the node is a member of its group(s) and each
                    has a leader, else 503 with the reason in the body

    For /metrics and /readyz the HTTP thread asks the actor for a gather
    over an inproc PAIR (frames ["GATHER"][seq]) and waits at most
    `wait_ms` for the answer ([seq]["1"|"0"][reason][text]); an answer to
    an earlier request that timed out is skipped by its sequence number.
    If the actor does not answer in time the endpoint says so with 503:
    a slow module never holds the HTTP thread longer than `wait_ms`.  */
#ifndef MX_HTTP_H_INCLUDED
#define MX_HTTP_H_INCLUDED

#include <stddef.h>

typedef struct mx_http mx_http_t;

/*  Starts serving on `listen` ("host:port", port 0 picks a free one; a
    host name, IPv4 or [IPv6] literal), asking the actor at the PAIR
    `endpoint` (bound by the actor).  Returns NULL with the reason in
    `err` when the address is bad or cannot be bound.  */
mx_http_t *mx_http_new (const char *listen, const char *endpoint, int wait_ms,
                        char *err, size_t err_size);

/*  The TCP port bound.  */
int mx_http_port (mx_http_t *self);

/*  Stops the server (waits for its thread) and nulls the pointer.  */
void mx_http_destroy (mx_http_t **self_p);

#endif
