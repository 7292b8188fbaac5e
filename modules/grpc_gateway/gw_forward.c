/*  grpc_gateway forwarder: asynchronous gRPC client calls to other nodes'
    gateways on one completion queue and one thread (see gw_forward.h).

    A job lives from gw_forward_start until its single batch completes; it
    is in the `jobs` list meanwhile (guarded by `lock`, since the actor
    adds and cancels while the thread removes), so that destroy can cancel
    what is in flight.  Destroy: mark stopping, cancel every job, shut the
    queue down; the thread frees the remaining jobs as their (cancelled)
    batches complete and exits on GRPC_QUEUE_SHUTDOWN, which gRPC delivers
    only after every pending event.
*/
#include "gw_forward.h"
#include "gw_request.h"

#include <czmq.h>
#include <errno.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gw_forward {
    grpc_completion_queue *cq;
    pthread_t thread;
    int thread_started;
    char *done_endpoint;
    zhashx_t *channels;          /* target -> grpc_channel *; actor only */
    pthread_mutex_t lock;
    zlistx_t *jobs;              /* in flight; under lock */
    atomic_int stopping;
    int max_recv;                /* largest response accepted; -1: none */
    grpc_channel_credentials *creds;   /* NULL: insecure */
    char *authorization;               /* "Bearer <token>", or NULL */
};

typedef struct {
    uint64_t corr;
    char target [128];
    grpc_call *call;
    grpc_byte_buffer *send;
    grpc_byte_buffer *recv;
    grpc_metadata md [3];        /* titan-hops, authorization, extra */
    size_t n_md;
    grpc_metadata_array initial_md;
    grpc_metadata_array trailing_md;
    grpc_status_code status;
    grpc_slice status_details;
    void *handle;                /* its place in `jobs` */
} s_job_t;

static void
s_job_free (s_job_t *job)
{
    if (job->call)
        grpc_call_unref (job->call);
    if (job->send)
        grpc_byte_buffer_destroy (job->send);
    if (job->recv)
        grpc_byte_buffer_destroy (job->recv);
    for (size_t i = 0; i < job->n_md; i++) {
        grpc_slice_unref (job->md [i].key);
        grpc_slice_unref (job->md [i].value);
    }
    grpc_metadata_array_destroy (&job->initial_md);
    grpc_metadata_array_destroy (&job->trailing_md);
    grpc_slice_unref (job->status_details);
    free (job);
}

void
gw_fwd_result_destroy (gw_fwd_result_t **self_p)
{
    gw_fwd_result_t *self = *self_p;
    if (!self)
        return;
    free (self->response);
    free (self);
    *self_p = NULL;
}

/*  Turns a completed job into a result.  NULL when out of memory.  */
static gw_fwd_result_t *
s_result (s_job_t *job, int ok)
{
    gw_fwd_result_t *res = calloc (1, sizeof *res);
    if (!res)
        return NULL;
    res->corr = job->corr;
    snprintf (res->target, sizeof res->target, "%s", job->target);
    res->code = job->status;
    if (!ok) {
        res->code = GRPC_STATUS_UNAVAILABLE;
        snprintf (res->details, sizeof res->details,
                  "forwarding to %s failed in the completion queue",
                  job->target);
    }
    else if (job->status != GRPC_STATUS_OK)
        snprintf (res->details, sizeof res->details, "%.*s",
                  (int) GRPC_SLICE_LENGTH (job->status_details),
                  (const char *) GRPC_SLICE_START_PTR (job->status_details));
    else if (!job->recv) {
        res->code = GRPC_STATUS_INTERNAL;
        snprintf (res->details, sizeof res->details,
                  "the gateway at %s answered OK without a message",
                  job->target);
    }
    else {
        grpc_byte_buffer_reader reader;
        if (!grpc_byte_buffer_reader_init (&reader, job->recv)) {
            res->code = GRPC_STATUS_INTERNAL;
            snprintf (res->details, sizeof res->details,
                      "cannot read the response of %s", job->target);
            return res;
        }
        grpc_slice slice = grpc_byte_buffer_reader_readall (&reader);
        grpc_byte_buffer_reader_destroy (&reader);
        size_t size = GRPC_SLICE_LENGTH (slice);
        res->response = malloc (size ? size : 1);
        if (res->response) {
            memcpy (res->response, GRPC_SLICE_START_PTR (slice), size);
            res->size = size;
        }
        else {
            res->code = GRPC_STATUS_RESOURCE_EXHAUSTED;
            snprintf (res->details, sizeof res->details,
                      "out of memory copying a %zu-byte forwarded response",
                      size);
        }
        grpc_slice_unref (slice);
    }
    return res;
}

static void *
s_thread (void *args)
{
    gw_forward_t *self = args;
    zsock_t *push = zsock_new (ZMQ_PUSH);
    if (push) {
        zsock_set_sndhwm (push, 0);
        if (zsock_connect (push, "%s", self->done_endpoint) != 0)
            zsock_destroy (&push);
    }
    while (true) {
        grpc_event ev = grpc_completion_queue_next (
            self->cq, gpr_inf_future (GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        s_job_t *job = ev.tag;
        pthread_mutex_lock (&self->lock);
        zlistx_delete (self->jobs, job->handle);
        pthread_mutex_unlock (&self->lock);
        if (!atomic_load (&self->stopping) && push) {
            gw_fwd_result_t *res = s_result (job, ev.success);
            if (res && zsock_send (push, "p", res) != 0)
                gw_fwd_result_destroy (&res);
            /* a result lost to out-of-memory: the actor's deadline for
               that call still fires, so the client gets an answer */
        }
        s_job_free (job);
    }
    zsock_destroy (&push);
    return NULL;
}

static void
s_channel_destroy (void **item_p)
{
    if (*item_p) {
        grpc_channel_destroy ((grpc_channel *) *item_p);
        *item_p = NULL;
    }
}

gw_forward_t *
gw_forward_new (const char *done_endpoint, char *error, size_t error_size)
{
    gw_forward_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (error, error_size, "out of memory");
        return NULL;
    }
    grpc_init ();
    self->max_recv = -1;
    self->done_endpoint = strdup (done_endpoint);
    self->channels = zhashx_new ();
    self->jobs = zlistx_new ();
    self->cq = grpc_completion_queue_create_for_next (NULL);
    pthread_mutex_init (&self->lock, NULL);
    if (!self->done_endpoint || !self->channels || !self->jobs || !self->cq) {
        snprintf (error, error_size, "out of memory creating the forwarder");
        gw_forward_destroy (&self);
        return NULL;
    }
    zhashx_set_destructor (self->channels, s_channel_destroy);
    if (pthread_create (&self->thread, NULL, s_thread, self) != 0) {
        snprintf (error, error_size, "cannot start the forwarder thread");
        gw_forward_destroy (&self);
        return NULL;
    }
    self->thread_started = 1;
    return self;
}

void
gw_forward_destroy (gw_forward_t **self_p)
{
    gw_forward_t *self = *self_p;
    if (!self)
        return;
    atomic_store (&self->stopping, 1);
    if (self->jobs) {
        pthread_mutex_lock (&self->lock);
        for (s_job_t *job = zlistx_first (self->jobs); job;
             job = zlistx_next (self->jobs))
            grpc_call_cancel (job->call, NULL);
        pthread_mutex_unlock (&self->lock);
    }
    if (self->cq) {
        grpc_completion_queue_shutdown (self->cq);
        if (self->thread_started)
            pthread_join (self->thread, NULL);
        else
            while (grpc_completion_queue_next (
                       self->cq, gpr_inf_future (GPR_CLOCK_REALTIME),
                       NULL).type != GRPC_QUEUE_SHUTDOWN)
                ;
        grpc_completion_queue_destroy (self->cq);
    }
    zhashx_destroy (&self->channels);
    zlistx_destroy (&self->jobs);
    pthread_mutex_destroy (&self->lock);
    free (self->done_endpoint);
    if (self->creds)
        grpc_channel_credentials_release (self->creds);
    if (self->authorization) {
        memset (self->authorization, 0, strlen (self->authorization));
        free (self->authorization);
    }
    grpc_shutdown ();
    free (self);
    *self_p = NULL;
}

int
gw_forward_set_credentials (gw_forward_t *self,
                            grpc_channel_credentials **creds_p,
                            const char *token)
{
    if (creds_p && *creds_p) {
        if (self->creds)
            grpc_channel_credentials_release (self->creds);
        self->creds = *creds_p;
        *creds_p = NULL;
    }
    if (token) {
        free (self->authorization);
        self->authorization = zsys_sprintf ("Bearer %s", token);
        if (!self->authorization)
            return -ENOMEM;
    }
    return 0;
}

size_t
gw_forward_inflight (gw_forward_t *self)
{
    pthread_mutex_lock (&self->lock);
    size_t n = zlistx_size (self->jobs);
    pthread_mutex_unlock (&self->lock);
    return n;
}

void
gw_forward_set_max_message (gw_forward_t *self, size_t bytes)
{
    self->max_recv = bytes > INT32_MAX ? INT32_MAX : (int) bytes;
}

static grpc_channel *
s_channel (gw_forward_t *self, const char *target)
{
    grpc_channel *channel = zhashx_lookup (self->channels, target);
    if (channel)
        return channel;
    /* a leader that restarts at the same address must be reachable again
       within a few hundred ms, not after gRPC's default reconnect backoff
       (1 s growing to 120 s) */
    grpc_arg args [4];
    memset (args, 0, sizeof args);
    args [0].type = GRPC_ARG_INTEGER;
    args [0].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args [0].value.integer = self->max_recv;  /* gw_forward_set_max_message */
    args [1].type = GRPC_ARG_INTEGER;
    args [1].key = GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS;
    args [1].value.integer = 100;
    args [2].type = GRPC_ARG_INTEGER;
    args [2].key = GRPC_ARG_MIN_RECONNECT_BACKOFF_MS;
    args [2].value.integer = 100;
    args [3].type = GRPC_ARG_INTEGER;
    args [3].key = GRPC_ARG_MAX_RECONNECT_BACKOFF_MS;
    args [3].value.integer = 1000;
    grpc_channel_args channel_args = { 4, args };
    grpc_channel_credentials *insecure = self->creds ? NULL
                                       : grpc_insecure_credentials_create ();
    channel = grpc_channel_create (target, self->creds ? self->creds : insecure,
                                   &channel_args);
    if (insecure)
        grpc_channel_credentials_release (insecure);
    if (channel)
        zhashx_insert (self->channels, target, channel);
    return channel;
}

int
gw_forward_start (gw_forward_t *self, const char *target, const char *method,
                  const uint8_t *request, size_t request_size,
                  int64_t deadline_ms, int hops, uint64_t corr)
{
    return gw_forward_start_md (self, target, method, request, request_size,
                                deadline_ms, hops, corr, NULL, NULL);
}

int
gw_forward_start_md (gw_forward_t *self, const char *target,
                     const char *method, const uint8_t *request,
                     size_t request_size, int64_t deadline_ms, int hops,
                     uint64_t corr, const char *md_key, const char *md_value)
{
    size_t len = target ? strlen (target) : 0;
    if (len == 0 || len >= sizeof ((s_job_t *) 0)->target)
        return -EINVAL;
    grpc_channel *channel = s_channel (self, target);
    if (!channel)
        return -ENOMEM;
    s_job_t *job = calloc (1, sizeof *job);
    if (!job)
        return -ENOMEM;
    job->corr = corr;
    memcpy (job->target, target, len + 1);
    job->status = GRPC_STATUS_UNKNOWN;
    job->status_details = grpc_empty_slice ();
    grpc_metadata_array_init (&job->initial_md);
    grpc_metadata_array_init (&job->trailing_md);
    char hops_text [16];
    snprintf (hops_text, sizeof hops_text, "%d", hops);
    job->md [0].key = grpc_slice_from_static_string (GW_HOPS_KEY);
    job->md [0].value = grpc_slice_from_copied_string (hops_text);
    job->n_md = 1;
    if (self->authorization) {
        job->md [1].key = grpc_slice_from_static_string ("authorization");
        job->md [1].value = grpc_slice_from_copied_string (self->authorization);
        job->n_md = 2;
    }
    if (md_key) {
        job->md [job->n_md].key = grpc_slice_from_copied_string (md_key);
        job->md [job->n_md].value = grpc_slice_from_copied_string (md_value);
        job->n_md++;
    }

    int64_t left = deadline_ms - zclock_mono ();
    if (left < 1)
        left = 1;
    gpr_timespec deadline = gpr_time_add (
        gpr_now (GPR_CLOCK_MONOTONIC), gpr_time_from_millis (left, GPR_TIMESPAN));
    grpc_slice method_slice = grpc_slice_from_copied_string (method);
    job->call = grpc_channel_create_call (channel, NULL,
                                          GRPC_PROPAGATE_DEFAULTS, self->cq,
                                          method_slice, NULL, deadline, NULL);
    grpc_slice_unref (method_slice);
    grpc_slice slice = grpc_slice_from_copied_buffer ((const char *) request,
                                                      request_size);
    job->send = grpc_raw_byte_buffer_create (&slice, 1);
    grpc_slice_unref (slice);
    if (!job->call || !job->send) {
        s_job_free (job);
        return -ENOMEM;
    }

    grpc_op ops [6];
    memset (ops, 0, sizeof ops);
    ops [0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops [0].data.send_initial_metadata.count = job->n_md;
    ops [0].data.send_initial_metadata.metadata = job->md;
    ops [1].op = GRPC_OP_SEND_MESSAGE;
    ops [1].data.send_message.send_message = job->send;
    ops [2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops [3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops [3].data.recv_initial_metadata.recv_initial_metadata = &job->initial_md;
    ops [4].op = GRPC_OP_RECV_MESSAGE;
    ops [4].data.recv_message.recv_message = &job->recv;
    ops [5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops [5].data.recv_status_on_client.trailing_metadata = &job->trailing_md;
    ops [5].data.recv_status_on_client.status = &job->status;
    ops [5].data.recv_status_on_client.status_details = &job->status_details;

    pthread_mutex_lock (&self->lock);
    job->handle = zlistx_add_end (self->jobs, job);
    grpc_call_error err = grpc_call_start_batch (job->call, ops, 6, job, NULL);
    if (err != GRPC_CALL_OK)
        zlistx_delete (self->jobs, job->handle);
    pthread_mutex_unlock (&self->lock);
    if (err != GRPC_CALL_OK) {
        s_job_free (job);
        return -EIO;
    }
    return 0;
}

int
gw_forward_hops (const grpc_metadata_array *metadata)
{
    for (size_t i = 0; i < metadata->count; i++) {
        const grpc_metadata *md = &metadata->metadata [i];
        if (!grpc_slice_str_cmp (md->key, GW_HOPS_KEY))
            return gw_request_hops (GRPC_SLICE_START_PTR (md->value),
                                    GRPC_SLICE_LENGTH (md->value));
    }
    return 0;
}
