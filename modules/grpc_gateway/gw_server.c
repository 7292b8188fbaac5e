/*  grpc_gateway server: the gRPC C core server, its completion-queue thread
    and the hand-off of calls to the actor (see gw_server.h for the life of
    a call and the shutdown protocol).

    Every call object moves through three phases, each with exactly one
    operation outstanding on the completion queue, so the tag of an event
    (the call itself) plus its phase says what completed:
      NEW   grpc_server_request_call is pending;
      RECV  the RECV_MESSAGE batch is pending;
      DONE  the final batch (metadata, message, status, close) is pending.
    `live` counts call objects; the queue is shut down only when the server
    has shut down and no call object is left, so no operation can be
    started on a dead queue.

    gRPC's global state is reference-counted (grpc_init / grpc_shutdown).
    A reload of this module dlcloses our code while libgrpc may keep
    background threads; libgrpc is therefore pinned in memory
    (RTLD_NODELETE) so that unloading this module never unloads it.
*/
#include "titan/log.h"
#include "gw_server.h"
#include "titan/histogram.h"

#include <czmq.h>
#include <dlfcn.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { S_NEW = 1, S_RECV, S_DONE };

/*  How many grpc_server_request_call are kept outstanding.  */
#define S_REQUESTED_CALLS 16

struct gw_server {
    grpc_server *server;
    grpc_completion_queue *cq;
    pthread_t thread;
    int thread_started;
    char *handoff;
    int port;
    atomic_int live;             /* call objects alive */
    atomic_int shutting_down;
    int shutdown_tag;            /* its address tags server shutdown */
    gw_metrics_t *metrics;       /* every finished call is recorded here */
    const titan_logger_t *logger;   /* the creating thread's log binding */
    char log_module [64];
};

static void
s_call_free (gw_call_t *c)
{
    gw_server_t *self = c->server;
    if (c->call)
        grpc_call_unref (c->call);
    grpc_call_details_destroy (&c->details);
    grpc_metadata_array_destroy (&c->request_md);
    if (c->recv_buffer)
        grpc_byte_buffer_destroy (c->recv_buffer);
    if (c->send_buffer)
        grpc_byte_buffer_destroy (c->send_buffer);
    grpc_slice_unref (c->status_details);
    free (c->request);
    free (c);
    atomic_fetch_sub (&self->live, 1);
}

/*  Asks the server for the next call of any method.  */
static void
s_request_call (gw_server_t *self)
{
    gw_call_t *c = calloc (1, sizeof *c);
    if (!c)
        return;                  /* fewer calls requested; still serving */
    c->server = self;
    c->phase = S_NEW;
    c->status_details = grpc_empty_slice ();
    grpc_call_details_init (&c->details);
    grpc_metadata_array_init (&c->request_md);
    atomic_fetch_add (&self->live, 1);
    grpc_call_error err = grpc_server_request_call (self->server, &c->call,
                                                    &c->details, &c->request_md,
                                                    self->cq, self->cq, c);
    if (err != GRPC_CALL_OK) {
        titan_log_error ("grpc_gateway: grpc_server_request_call failed (%d)", err);
        s_call_free (c);
    }
}

/*  The client's deadline on the zclock_mono clock, or INT64_MAX.  */
static int64_t
s_deadline_ms (gpr_timespec deadline)
{
    if (gpr_time_cmp (deadline, gpr_inf_future (deadline.clock_type)) == 0)
        return INT64_MAX;
    gpr_timespec mono = gpr_convert_clock_type (deadline, GPR_CLOCK_MONOTONIC);
    gpr_timespec left = gpr_time_sub (mono, gpr_now (GPR_CLOCK_MONOTONIC));
    int64_t ms = gpr_time_to_millis (left);
    if (ms > INT64_MAX / 2)
        return INT64_MAX;
    return zclock_mono () + ms;
}

/*  Copies the received message into c->request.  Returns 0 or -1.  */
static int
s_take_request (gw_call_t *c)
{
    if (!c->recv_buffer)
        return 0;                /* no message: have_request stays 0 */
    grpc_byte_buffer_reader reader;
    if (!grpc_byte_buffer_reader_init (&reader, c->recv_buffer))
        return -1;
    grpc_slice slice = grpc_byte_buffer_reader_readall (&reader);
    grpc_byte_buffer_reader_destroy (&reader);
    size_t size = GRPC_SLICE_LENGTH (slice);
    c->request = malloc (size ? size : 1);
    if (!c->request) {
        grpc_slice_unref (slice);
        return -1;
    }
    memcpy (c->request, GRPC_SLICE_START_PTR (slice), size);
    c->request_size = size;
    c->have_request = 1;
    grpc_slice_unref (slice);
    grpc_byte_buffer_destroy (c->recv_buffer);
    c->recv_buffer = NULL;
    return 0;
}

static void
s_start_recv (gw_call_t *c)
{
    size_t len = GRPC_SLICE_LENGTH (c->details.method);
    if (len >= sizeof c->method_path)
        len = sizeof c->method_path - 1;
    memcpy (c->method_path, GRPC_SLICE_START_PTR (c->details.method), len);
    c->method_path [len] = 0;
    c->deadline_ms = s_deadline_ms (c->details.deadline);
    c->received_us = titan_mono_us ();

    grpc_op op;
    memset (&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &c->recv_buffer;
    c->phase = S_RECV;
    grpc_call_error err = grpc_call_start_batch (c->call, &op, 1, c, NULL);
    if (err != GRPC_CALL_OK) {
        titan_log_error ("grpc_gateway: cannot receive a request (%d)", err);
        s_call_free (c);
    }
}

static void *
s_cq_thread (void *arg)
{
    gw_server_t *self = arg;
    titan_log_bind (self->logger, self->log_module);
    zsock_t *push = zsock_new (ZMQ_PUSH);
    assert (push);
    zsock_set_linger (push, 5000);
    zsock_set_sndhwm (push, 0);
    if (zsock_connect (push, "%s", self->handoff))
        titan_log_error ("grpc_gateway: cannot connect %s", self->handoff);

    for (int i = 0; i < S_REQUESTED_CALLS; i++)
        s_request_call (self);

    int server_down = 0;
    int cq_down = 0;
    while (1) {
        grpc_event ev = grpc_completion_queue_next (
            self->cq, gpr_inf_future (GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        if (ev.tag == &self->shutdown_tag)
            server_down = 1;
        else {
            gw_call_t *c = ev.tag;
            switch (c->phase) {
                case S_NEW:
                    if (!ev.success) {          /* server shutting down */
                        s_call_free (c);
                        break;
                    }
                    if (!atomic_load (&self->shutting_down))
                        s_request_call (self);
                    s_start_recv (c);
                    break;
                case S_RECV:
                    if (!ev.success || s_take_request (c)) {
                        gw_server_finish (&c, GRPC_STATUS_CANCELLED,
                                          "request not received", NULL, 0);
                        break;
                    }
                    /* the actor owns it now */
                    if (zsock_send (push, "p", c)) {
                        gw_server_finish (&c, GRPC_STATUS_UNAVAILABLE,
                                          "gateway is shutting down", NULL, 0);
                    }
                    break;
                case S_DONE:
                    s_call_free (c);
                    break;
                default:
                    assert (!"bad call phase");
            }
        }
        if (server_down && !cq_down && atomic_load (&self->live) == 0) {
            grpc_completion_queue_shutdown (self->cq);
            cq_down = 1;
        }
    }
    zsock_send (push, "p", NULL);           /* last: "all calls done" */
    zsock_destroy (&push);
    return NULL;
}

/*  Keeps libgrpc loaded for the life of the process (see the file
    comment).  */
static void
s_pin_grpc (void)
{
    Dl_info info;
    if (dladdr ((void *) grpc_init, &info) && info.dli_fname) {
        void *handle = dlopen (info.dli_fname, RTLD_NOW | RTLD_NODELETE);
        if (handle)
            dlclose (handle);            /* stays loaded: NODELETE */
    }
}

gw_server_t *
gw_server_new (const char *addr, size_t max_recv_bytes,
               grpc_server_credentials *creds, const char *handoff_endpoint,
               char *error, size_t error_size)
{
    assert (addr && handoff_endpoint);
    gw_server_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (error, error_size, "out of memory");
        return NULL;
    }
    const char *log_module;
    titan_log_current (&self->logger, &log_module);
    snprintf (self->log_module, sizeof self->log_module, "%s", log_module);
    self->handoff = strdup (handoff_endpoint);
    self->metrics = gw_metrics_new ();
    if (!self->handoff || !self->metrics) {
        free (self->handoff);
        gw_metrics_destroy (&self->metrics);
        free (self);
        snprintf (error, error_size, "out of memory");
        return NULL;
    }
    s_pin_grpc ();
    grpc_init ();

    grpc_arg args [2];
    memset (args, 0, sizeof args);
    args [0].type = GRPC_ARG_INTEGER;
    args [0].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args [0].value.integer = max_recv_bytes > INT32_MAX ? INT32_MAX
                                                        : (int) max_recv_bytes;
    args [1].type = GRPC_ARG_INTEGER;
    args [1].key = GRPC_ARG_ALLOW_REUSEPORT;  /* a busy port is an error */
    args [1].value.integer = 0;
    grpc_channel_args channel_args = { 2, args };

    self->cq = grpc_completion_queue_create_for_next (NULL);
    self->server = grpc_server_create (&channel_args, NULL);
    grpc_server_register_completion_queue (self->server, self->cq, NULL);
    grpc_server_credentials *insecure = creds ? NULL
                                      : grpc_insecure_server_credentials_create ();
    self->port = grpc_server_add_http2_port (self->server, addr,
                                             creds ? creds : insecure);
    if (insecure)
        grpc_server_credentials_release (insecure);
    if (self->port <= 0) {
        snprintf (error, error_size,
                  "cannot listen for gRPC on %s (address in use or invalid%s)",
                  addr, creds ? ", or the TLS certificate and key do not "
                                "load or match" : "");
        gw_server_destroy (&self);
        return NULL;
    }
    grpc_server_start (self->server);
    if (pthread_create (&self->thread, NULL, s_cq_thread, self)) {
        snprintf (error, error_size, "cannot start the completion-queue thread");
        gw_server_destroy (&self);
        return NULL;
    }
    self->thread_started = 1;
    return self;
}

int
gw_server_port (gw_server_t *self)
{
    return self->port;
}

gw_metrics_t *
gw_server_metrics (gw_server_t *self)
{
    return self->metrics;
}

void
gw_server_finish (gw_call_t **call_p, grpc_status_code code,
                  const char *message, const uint8_t *response,
                  size_t response_size)
{
    assert (call_p && *call_p);
    gw_call_t *c = *call_p;
    *call_p = NULL;
    uint64_t took_us = titan_mono_us () - c->received_us;
    gw_metrics_observe (c->server->metrics, c->method_path, (int) code, took_us);
    if (titan_log_enabled (TITAN_LOG_DEBUG))
        titan_log_kv (TITAN_LOG_DEBUG, "call finished", "method=%s code=%d "
                      "duration_us=%" PRIu64, c->method_path, (int) code, took_us);

    grpc_op ops [4];
    memset (ops, 0, sizeof ops);
    size_t n = 0;
    ops [n].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops [n].data.send_initial_metadata.count = 0;
    n++;
    if (code == GRPC_STATUS_OK) {
        grpc_slice slice = grpc_slice_from_copied_buffer (
            (const char *) response, response_size);
        c->send_buffer = grpc_raw_byte_buffer_create (&slice, 1);
        grpc_slice_unref (slice);
        ops [n].op = GRPC_OP_SEND_MESSAGE;
        ops [n].data.send_message.send_message = c->send_buffer;
        n++;
    }
    grpc_slice_unref (c->status_details);
    c->status_details = grpc_slice_from_copied_string (message ? message : "");
    ops [n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops [n].data.send_status_from_server.trailing_metadata_count = 0;
    ops [n].data.send_status_from_server.status = code;
    ops [n].data.send_status_from_server.status_details =
        code == GRPC_STATUS_OK ? NULL : &c->status_details;
    n++;
    ops [n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops [n].data.recv_close_on_server.cancelled = &c->cancelled;
    n++;
    c->phase = S_DONE;
    grpc_call_error err = grpc_call_start_batch (c->call, ops, n, c, NULL);
    if (err != GRPC_CALL_OK) {
        titan_log_error ("grpc_gateway: cannot complete %s (%d)", c->method_path, err);
        s_call_free (c);
    }
}

void
gw_server_shutdown (gw_server_t *self)
{
    if (atomic_exchange (&self->shutting_down, 1))
        return;
    grpc_server_shutdown_and_notify (self->server, self->cq, &self->shutdown_tag);
}

void
gw_server_cancel_all (gw_server_t *self)
{
    gw_server_shutdown (self);
    grpc_server_cancel_all_calls (self->server);
}

void
gw_server_destroy (gw_server_t **self_p)
{
    assert (self_p);
    gw_server_t *self = *self_p;
    if (!self)
        return;
    if (self->thread_started) {
        gw_server_cancel_all (self);
        pthread_join (self->thread, NULL);
    }
    if (self->server)
        grpc_server_destroy (self->server);   /* shut down, or never started */
    if (self->cq && !self->thread_started) {
        grpc_completion_queue_shutdown (self->cq);
        while (grpc_completion_queue_next (self->cq,
                   gpr_inf_future (GPR_CLOCK_REALTIME), NULL).type
               != GRPC_QUEUE_SHUTDOWN)
            ;
    }
    if (self->cq)
        grpc_completion_queue_destroy (self->cq);
    grpc_shutdown ();
    free (self->handoff);
    gw_metrics_destroy (&self->metrics);
    free (self);
    *self_p = NULL;
}
