/*  metrics module: HTTP endpoints on libmicrohttpd (see mx_http.h).  */
#include "mx_http.h"

#include <czmq.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MX_CONTENT_TYPE_METRICS "text/plain; version=0.0.4; charset=utf-8"
#define MX_CONTENT_TYPE_TEXT    "text/plain; charset=utf-8"

struct mx_http {
    struct MHD_Daemon *daemon;
    zsock_t *pair;               /* used only by the MHD thread once started */
    int wait_ms;
    uint64_t seq;
    int port;
};

static enum MHD_Result
s_respond (struct MHD_Connection *connection, unsigned int status,
           const char *content_type, const char *body, size_t size)
{
    struct MHD_Response *response = MHD_create_response_from_buffer (
        size, (void *) body, MHD_RESPMEM_MUST_COPY);
    if (!response)
        return MHD_NO;
    MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    enum MHD_Result rc = MHD_queue_response (connection, status, response);
    MHD_destroy_response (response);
    return rc;
}

/*  Asks the actor for a gather; returns its answer frames [seq][ready]
    [reason][text] as a message (the caller's), or NULL on timeout.  */
static zmsg_t *
s_gather (mx_http_t *self)
{
    char seq [24];
    snprintf (seq, sizeof seq, "%" PRIu64, ++self->seq);
    if (zstr_sendm (self->pair, "GATHER") || zstr_send (self->pair, seq))
        return NULL;
    int64_t deadline = zclock_mono () + self->wait_ms;
    while (true) {
        int64_t left = deadline - zclock_mono ();
        if (left <= 0)
            return NULL;
        zsock_set_rcvtimeo (self->pair, (int) left);
        zmsg_t *msg = zmsg_recv (self->pair);
        if (!msg)
            return NULL;                 /* timeout or interrupted */
        char *got = zmsg_popstr (msg);
        bool match = got && strcmp (got, seq) == 0 && zmsg_size (msg) == 3;
        zstr_free (&got);
        if (match)
            return msg;
        zmsg_destroy (&msg);             /* the answer to an earlier request */
    }
}

static enum MHD_Result
s_handler (void *cls, struct MHD_Connection *connection, const char *url,
           const char *method, const char *version, const char *upload_data,
           size_t *upload_data_size, void **con_cls)
{
    (void) version;
    (void) upload_data;
    (void) upload_data_size;
    (void) con_cls;
    mx_http_t *self = cls;
    if (strcmp (method, "GET") != 0 && strcmp (method, "HEAD") != 0) {
        static const char body [] = "only GET and HEAD are served\n";
        return s_respond (connection, MHD_HTTP_METHOD_NOT_ALLOWED,
                          MX_CONTENT_TYPE_TEXT, body, sizeof body - 1);
    }
    if (strcmp (url, "/healthz") == 0)
        return s_respond (connection, MHD_HTTP_OK, MX_CONTENT_TYPE_TEXT, "ok\n", 3);

    bool metrics = strcmp (url, "/metrics") == 0;
    if (!metrics && strcmp (url, "/readyz") != 0) {
        static const char body [] = "not found: the endpoints are /metrics, "
                                    "/healthz and /readyz\n";
        return s_respond (connection, MHD_HTTP_NOT_FOUND, MX_CONTENT_TYPE_TEXT,
                          body, sizeof body - 1);
    }
    zmsg_t *answer = s_gather (self);
    if (!answer) {
        char body [160];
        int n = snprintf (body, sizeof body, "the metrics module did not "
                          "answer within %d ms\n", self->wait_ms);
        return s_respond (connection, MHD_HTTP_SERVICE_UNAVAILABLE,
                          MX_CONTENT_TYPE_TEXT, body, (size_t) n);
    }
    char *ready = zmsg_popstr (answer);
    zframe_t *reason = zmsg_pop (answer);
    zframe_t *text = zmsg_pop (answer);
    enum MHD_Result rc;
    if (metrics)
        rc = s_respond (connection, MHD_HTTP_OK, MX_CONTENT_TYPE_METRICS,
                        (const char *) zframe_data (text), zframe_size (text));
    else {
        bool ok = ready && strcmp (ready, "1") == 0;
        size_t size = zframe_size (reason);
        char *body = malloc (size + 2);
        if (body) {
            memcpy (body, zframe_data (reason), size);
            body [size] = '\n';
        }
        rc = body ? s_respond (connection, ok ? MHD_HTTP_OK
                               : MHD_HTTP_SERVICE_UNAVAILABLE,
                               MX_CONTENT_TYPE_TEXT, body, size + 1)
                  : MHD_NO;
        free (body);
    }
    zstr_free (&ready);
    zframe_destroy (&reason);
    zframe_destroy (&text);
    zmsg_destroy (&answer);
    return rc;
}

/*  Splits "host:port" / "[v6]:port" and resolves the host (numeric or a
    name) into *addr.  Returns 0 or -1 with the reason in err.  */
static int
s_resolve (const char *listen, struct sockaddr_storage *addr, socklen_t *len,
           char *err, size_t err_size)
{
    char host [256];
    const char *colon = strrchr (listen, ':');
    if (!colon || colon == listen || !colon [1]) {
        snprintf (err, err_size, "metrics: listen '%s': expected HOST:PORT", listen);
        return -1;
    }
    size_t hlen = (size_t) (colon - listen);
    const char *h = listen;
    if (*h == '[' && hlen >= 2 && h [hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    if (hlen >= sizeof host) {
        snprintf (err, err_size, "metrics: listen '%s': host too long", listen);
        return -1;
    }
    memcpy (host, h, hlen);
    host [hlen] = 0;
    char *end;
    long port = strtol (colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535) {
        snprintf (err, err_size, "metrics: listen '%s': bad port", listen);
        return -1;
    }
    struct addrinfo hints, *res = NULL;
    memset (&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int gai = getaddrinfo (host, colon + 1, &hints, &res);
    if (gai || !res) {
        snprintf (err, err_size, "metrics: listen '%s': %s", listen,
                  gai ? gai_strerror (gai) : "no address");
        return -1;
    }
    memcpy (addr, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo (res);
    return 0;
}

mx_http_t *
mx_http_new (const char *listen, const char *endpoint, int wait_ms,
             char *err, size_t err_size)
{
    struct sockaddr_storage addr;
    socklen_t addr_len = 0;
    if (s_resolve (listen, &addr, &addr_len, err, err_size))
        return NULL;
    mx_http_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, err_size, "metrics: out of memory");
        return NULL;
    }
    self->wait_ms = wait_ms;
    self->pair = zsock_new (ZMQ_PAIR);
    if (!self->pair || zsock_connect (self->pair, "%s", endpoint) != 0) {
        snprintf (err, err_size, "metrics: cannot connect %s", endpoint);
        mx_http_destroy (&self);
        return NULL;
    }
    zsock_set_linger (self->pair, 0);
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO
                       | MHD_USE_ERROR_LOG;
    if (addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    self->daemon = MHD_start_daemon (
        flags, 0, NULL, NULL, s_handler, self,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int) 64,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) 30,
        MHD_OPTION_END);
    if (!self->daemon) {
        snprintf (err, err_size, "metrics: cannot serve HTTP on %s (address "
                  "in use, or not local)", listen);
        mx_http_destroy (&self);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (
        self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    self->port = info ? info->port : 0;
    return self;
}

int
mx_http_port (mx_http_t *self)
{
    return self->port;
}

void
mx_http_destroy (mx_http_t **self_p)
{
    mx_http_t *self = *self_p;
    if (!self)
        return;
    if (self->daemon)
        MHD_stop_daemon (self->daemon);      /* joins its thread */
    zsock_destroy (&self->pair);
    free (self);
    *self_p = NULL;
}
