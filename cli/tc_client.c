/*  Titan-KV client connection (see tc_client.h): one channel, one pluck
    queue, one batch per call with all six client operations (send initial
    metadata, message and close; receive initial metadata, message and
    status), waited for with grpc_completion_queue_pluck.  */
#include "tc_client.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tc_conn {
    char *target;
    grpc_channel *channel;
    grpc_completion_queue *cq;
    char *authorization;         /* "Bearer <token>", or NULL */
};

struct tc_tls {
    char *ca_pem;
    char *cert_pem;
    char *key_pem;
};

/*  PEM files are small; anything larger is a wrong path.  */
#define S_PEM_MAX (1u << 20)

/*  Reads a whole PEM file into a new string, or NULL with the reason.  */
static char *
s_read_pem (const char *what, const char *path, char *error, size_t error_size)
{
    FILE *file = fopen (path, "rb");
    if (!file) {
        snprintf (error, error_size, "%s %s: %s", what, path, strerror (errno));
        return NULL;
    }
    char *text = malloc (S_PEM_MAX + 1);
    size_t size = text ? fread (text, 1, S_PEM_MAX + 1, file) : 0;
    int failed = ferror (file);
    fclose (file);
    if (!text || failed || size == 0 || size > S_PEM_MAX
    ||  !strstr (text, "-----BEGIN ")) {
        if (text)
            text [size > S_PEM_MAX ? S_PEM_MAX : size] = '\0';
        snprintf (error, error_size, "%s %s: %s", what, path,
                  !text ? "out of memory" : failed ? "cannot be read"
                  : size == 0 ? "is empty" : size > S_PEM_MAX ? "is over 1 MiB"
                  : "is not PEM");
        free (text);
        return NULL;
    }
    text [size] = '\0';
    return text;
}

tc_tls_t *
tc_tls_new (const char *ca_file, const char *cert_file, const char *key_file,
            char *error, size_t error_size)
{
    assert (ca_file);
    if (!cert_file != !key_file) {
        snprintf (error, error_size, "a client certificate needs its key, and "
                  "a key its certificate (--cert with --key)");
        return NULL;
    }
    tc_tls_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (error, error_size, "out of memory");
        return NULL;
    }
    self->ca_pem = s_read_pem ("CA certificate", ca_file, error, error_size);
    if (self->ca_pem && cert_file) {
        self->cert_pem = s_read_pem ("client certificate", cert_file, error,
                                     error_size);
        if (self->cert_pem)
            self->key_pem = s_read_pem ("client key", key_file, error,
                                        error_size);
    }
    if (!self->ca_pem || (cert_file && !self->key_pem))
        tc_tls_destroy (&self);
    return self;
}

void
tc_tls_destroy (tc_tls_t **self_p)
{
    assert (self_p);
    tc_tls_t *self = *self_p;
    if (!self)
        return;
    free (self->ca_pem);
    free (self->cert_pem);
    if (self->key_pem) {
        memset (self->key_pem, 0, strlen (self->key_pem));
        free (self->key_pem);
    }
    free (self);
    *self_p = NULL;
}

tc_conn_t *
tc_conn_new (const char *target)
{
    return tc_conn_new_secure (target, NULL);
}

tc_conn_t *
tc_conn_new_secure (const char *target, const tc_tls_t *tls)
{
    assert (target);
    tc_conn_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->target = strdup (target);
    if (!self->target) {
        free (self);
        return NULL;
    }
    grpc_init ();
    grpc_arg args [1];
    memset (args, 0, sizeof args);
    args [0].type = GRPC_ARG_INTEGER;
    args [0].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args [0].value.integer = -1;           /* the server enforces limits */
    grpc_channel_args channel_args = { 1, args };
    grpc_channel_credentials *creds;
    if (tls) {
        grpc_ssl_pem_key_cert_pair pair = { tls->key_pem, tls->cert_pem };
        creds = grpc_ssl_credentials_create (tls->ca_pem,
                                             tls->cert_pem ? &pair : NULL,
                                             NULL, NULL);
    }
    else
        creds = grpc_insecure_credentials_create ();
    if (!creds) {                       /* gRPC refused the TLS material */
        grpc_shutdown ();
        free (self->target);
        free (self);
        return NULL;
    }
    self->channel = grpc_channel_create (target, creds, &channel_args);
    grpc_channel_credentials_release (creds);
    self->cq = grpc_completion_queue_create_for_pluck (NULL);
    return self;
}

void
tc_conn_destroy (tc_conn_t **self_p)
{
    assert (self_p);
    tc_conn_t *self = *self_p;
    if (!self)
        return;
    grpc_channel_destroy (self->channel);
    grpc_completion_queue_shutdown (self->cq);
    while (grpc_completion_queue_pluck (self->cq, NULL,
               gpr_inf_future (GPR_CLOCK_REALTIME), NULL).type
           != GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy (self->cq);
    grpc_shutdown ();
    free (self->authorization);
    free (self->target);
    free (self);
    *self_p = NULL;
}

int
tc_conn_set_token (tc_conn_t *self, const char *token)
{
    free (self->authorization);
    self->authorization = NULL;
    if (!token)
        return 0;
    size_t size = strlen (token) + sizeof "Bearer ";
    self->authorization = malloc (size);
    if (!self->authorization)
        return -1;
    snprintf (self->authorization, size, "Bearer %s", token);
    return 0;
}

const char *
tc_conn_target (tc_conn_t *self)
{
    return self->target;
}

const char *
tc_status_name (grpc_status_code code)
{
    static const char *names [] = {
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
        "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
        "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE",
        "DATA_LOSS", "UNAUTHENTICATED"
    };
    if ((unsigned) code < sizeof names / sizeof names [0])
        return names [code];
    return "UNKNOWN";
}

/*  Copies a received message into a new buffer.  Returns 0 or -1.  */
static int
s_read_buffer (grpc_byte_buffer *buffer, uint8_t **data_p, size_t *size_p)
{
    grpc_byte_buffer_reader reader;
    if (!grpc_byte_buffer_reader_init (&reader, buffer))
        return -1;
    grpc_slice slice = grpc_byte_buffer_reader_readall (&reader);
    grpc_byte_buffer_reader_destroy (&reader);
    size_t size = GRPC_SLICE_LENGTH (slice);
    uint8_t *data = malloc (size ? size : 1);
    if (data)
        memcpy (data, GRPC_SLICE_START_PTR (slice), size);
    grpc_slice_unref (slice);
    if (!data)
        return -1;
    *data_p = data;
    *size_p = size;
    return 0;
}

/*  Copies `len` bytes of `text` into details as a C string.  */
static void
s_details (char *details, size_t details_size, const char *text, size_t len)
{
    if (details && details_size)
        snprintf (details, details_size, "%.*s", (int) len, text);
}

grpc_status_code
tc_call (tc_conn_t *self, const char *method, const uint8_t *request,
         size_t request_size, int64_t timeout_ms, uint8_t **response_p,
         size_t *response_size, char *details, size_t details_size)
{
    *response_p = NULL;
    *response_size = 0;
    if (details && details_size)
        details [0] = 0;
    gpr_timespec deadline = gpr_time_add (
        gpr_now (GPR_CLOCK_MONOTONIC),
        gpr_time_from_millis (timeout_ms, GPR_TIMESPAN));
    grpc_slice method_slice = grpc_slice_from_copied_string (method);
    grpc_call *call = grpc_channel_create_call (
        self->channel, NULL, GRPC_PROPAGATE_DEFAULTS, self->cq, method_slice,
        NULL, deadline, NULL);
    grpc_slice_unref (method_slice);

    grpc_slice request_slice = grpc_slice_from_copied_buffer (
        (const char *) request, request_size);
    grpc_byte_buffer *send = grpc_raw_byte_buffer_create (&request_slice, 1);
    grpc_slice_unref (request_slice);
    grpc_byte_buffer *recv = NULL;
    grpc_metadata_array initial_md, trailing_md;
    grpc_metadata_array_init (&initial_md);
    grpc_metadata_array_init (&trailing_md);
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice status_details = grpc_empty_slice ();

    grpc_metadata auth_md;
    memset (&auth_md, 0, sizeof auth_md);
    if (self->authorization) {
        auth_md.key = grpc_slice_from_static_string ("authorization");
        auth_md.value = grpc_slice_from_copied_string (self->authorization);
    }
    grpc_op ops [6];
    memset (ops, 0, sizeof ops);
    ops [0].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (self->authorization) {
        ops [0].data.send_initial_metadata.count = 1;
        ops [0].data.send_initial_metadata.metadata = &auth_md;
    }
    ops [1].op = GRPC_OP_SEND_MESSAGE;
    ops [1].data.send_message.send_message = send;
    ops [2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops [3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops [3].data.recv_initial_metadata.recv_initial_metadata = &initial_md;
    ops [4].op = GRPC_OP_RECV_MESSAGE;
    ops [4].data.recv_message.recv_message = &recv;
    ops [5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops [5].data.recv_status_on_client.trailing_metadata = &trailing_md;
    ops [5].data.recv_status_on_client.status = &status;
    ops [5].data.recv_status_on_client.status_details = &status_details;

    grpc_call_error err = grpc_call_start_batch (call, ops, 6, call, NULL);
    if (err == GRPC_CALL_OK) {
        grpc_event ev = grpc_completion_queue_pluck (
            self->cq, call, gpr_inf_future (GPR_CLOCK_REALTIME), NULL);
        if (ev.type != GRPC_OP_COMPLETE) {
            status = GRPC_STATUS_INTERNAL;
            s_details (details, details_size, "completion queue failed", 23);
        }
        else if (status == GRPC_STATUS_OK && !recv) {
            status = GRPC_STATUS_INTERNAL;
            s_details (details, details_size, "no response message", 19);
        }
        else if (status == GRPC_STATUS_OK
             &&  s_read_buffer (recv, response_p, response_size)) {
            status = GRPC_STATUS_RESOURCE_EXHAUSTED;
            s_details (details, details_size, "out of memory", 13);
        }
        else if (status != GRPC_STATUS_OK)
            s_details (details, details_size,
                       (const char *) GRPC_SLICE_START_PTR (status_details),
                       GRPC_SLICE_LENGTH (status_details));
    }
    else {
        status = GRPC_STATUS_INTERNAL;
        s_details (details, details_size, "cannot start the call", 21);
    }
    grpc_byte_buffer_destroy (send);
    if (self->authorization) {
        grpc_slice_unref (auth_md.key);
        grpc_slice_unref (auth_md.value);
    }
    if (recv)
        grpc_byte_buffer_destroy (recv);
    grpc_slice_unref (status_details);
    grpc_metadata_array_destroy (&initial_md);
    grpc_metadata_array_destroy (&trailing_md);
    grpc_call_unref (call);
    return status;
}
