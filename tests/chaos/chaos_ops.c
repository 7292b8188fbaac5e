/*  Titan-KV chaos harness: one titan.v1 call per operation, recorded as a
    lin_op_t (see chaos_ops.h for the outcome rules).  Every call goes
    through s_exchange: the request is packed with protobuf-c, sent with one
    tc_call (one attempt, the caller's deadline), and the response is
    unpacked through its descriptor; a response that does not parse is an
    unknown outcome (the server may have applied the write).  */
#include "chaos_ops.h"
#include "titan.pb-c.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t
chaos_now_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*  Starts an op record: the common fields, outcome unknown until told.  */
static void
s_begin (lin_op_t *op, const chaos_who_t *who, lin_op_kind_t kind,
         const uint8_t *key, size_t key_len)
{
    memset (op, 0, sizeof *op);
    op->client = who->client;
    op->kind = kind;
    op->key = (uint8_t *) key;
    op->key_len = key_len;
    op->outcome = LIN_OUT_UNKNOWN;
    op->complete = LIN_TIME_INF;
}

/*  Ends an op whose result was not learnt: INVALID_ARGUMENT is a definite
    no-effect refusal, anything else leaves the outcome unknown.  */
static void
s_end_error (lin_op_t *op, grpc_status_code code, int64_t now)
{
    if (code == GRPC_STATUS_INVALID_ARGUMENT) {
        op->outcome = LIN_OUT_FAILED;
        op->fail = LIN_FAIL_NOEFFECT;
        op->complete = now;
    }
    else {
        op->outcome = LIN_OUT_UNKNOWN;
        op->complete = LIN_TIME_INF;
    }
}

/*  One call: packs `req`, sends it to `method` (recording the invoke and
    completion times in *op), and on OK unpacks the response with
    `resp_desc` into *resp_p (the caller's: protobuf_c_message_free_unpacked).
    Returns the gRPC status; a response that does not parse is DATA_LOSS
    (the op stays unknown).  On any other failure the op is ended by
    s_end_error, except FAILED_PRECONDITION and NOT_FOUND, which the
    caller interprets (details in `details`).  */
static grpc_status_code
s_exchange (tc_conn_t *conn, const char *method, const ProtobufCMessage *req,
            const ProtobufCMessageDescriptor *resp_desc, int64_t timeout_ms,
            lin_op_t *op, ProtobufCMessage **resp_p,
            char *details, size_t details_size)
{
    *resp_p = NULL;
    size_t size = protobuf_c_message_get_packed_size (req);
    uint8_t *buf = malloc (size ? size : 1);
    if (!buf)
        return GRPC_STATUS_RESOURCE_EXHAUSTED;
    protobuf_c_message_pack (req, buf);
    uint8_t *resp;
    size_t resp_size;
    op->invoke = chaos_now_ns ();
    grpc_status_code code = tc_call (conn, method, buf, size, timeout_ms,
                                     &resp, &resp_size, details, details_size);
    int64_t now = chaos_now_ns ();
    free (buf);
    if (code == GRPC_STATUS_OK) {
        *resp_p = protobuf_c_message_unpack (resp_desc, NULL, resp_size, resp);
        free (resp);
        if (!*resp_p)
            return GRPC_STATUS_DATA_LOSS;
        op->outcome = LIN_OUT_OK;
        op->complete = now;
    }
    else
    if (code == GRPC_STATUS_FAILED_PRECONDITION || code == GRPC_STATUS_NOT_FOUND)
        op->complete = now;         /* the caller decides the outcome */
    else
        s_end_error (op, code, now);
    return code;
}

/*  The caller-decided failures of s_exchange that are not definite: the
    op goes back to unknown.  */
static void
s_undecided (lin_op_t *op, grpc_status_code code)
{
    s_end_error (op, code, op->complete);
}

grpc_status_code
chaos_op_put (tc_conn_t *conn, chaos_who_t *who, const uint8_t *key,
              size_t key_len, const uint8_t *value, size_t value_len,
              int64_t timeout_ms, lin_op_t *op)
{
    s_begin (op, who, LIN_OP_PUT, key, key_len);
    op->value = (uint8_t *) value;
    op->value_len = value_len;
    Titan__V1__PutRequest req = TITAN__V1__PUT_REQUEST__INIT;
    req.key.data = (uint8_t *) key;
    req.key.len = key_len;
    req.value.data = (uint8_t *) value;
    req.value.len = value_len;
    req.client_id = who->dedup_id;
    req.sequence = who->sequence;
    ProtobufCMessage *resp;
    grpc_status_code code = s_exchange (conn, "/titan.v1.KV/Put", &req.base,
                                        &titan__v1__put_response__descriptor,
                                        timeout_ms, op, &resp, NULL, 0);
    if (resp) {
        op->rev = ((Titan__V1__PutResponse *) resp)->revision;
        protobuf_c_message_free_unpacked (resp, NULL);
    }
    else
    if (code == GRPC_STATUS_FAILED_PRECONDITION || code == GRPC_STATUS_NOT_FOUND)
        s_undecided (op, code);
    return code;
}

grpc_status_code
chaos_op_get (tc_conn_t *conn, chaos_who_t *who, const uint8_t *key,
              size_t key_len, bool local, int64_t timeout_ms, lin_op_t *op)
{
    s_begin (op, who, LIN_OP_GET, key, key_len);
    Titan__V1__GetRequest req = TITAN__V1__GET_REQUEST__INIT;
    req.key.data = (uint8_t *) key;
    req.key.len = key_len;
    req.consistency = local ? TITAN__V1__CONSISTENCY__LOCAL
                            : TITAN__V1__CONSISTENCY__LINEARIZABLE;
    ProtobufCMessage *resp;
    grpc_status_code code = s_exchange (conn, "/titan.v1.KV/Get", &req.base,
                                        &titan__v1__get_response__descriptor,
                                        timeout_ms, op, &resp, NULL, 0);
    if (resp) {
        Titan__V1__GetResponse *r = (Titan__V1__GetResponse *) resp;
        op->out_value = malloc (r->value.len ? r->value.len : 1);
        if (op->out_value) {
            memcpy (op->out_value, r->value.data, r->value.len);
            op->out_len = r->value.len;
            op->found = true;
            op->rev = r->revision;
        }
        else {
            code = GRPC_STATUS_RESOURCE_EXHAUSTED;
            s_undecided (op, code);
        }
        protobuf_c_message_free_unpacked (resp, NULL);
    }
    else
    if (code == GRPC_STATUS_NOT_FOUND) {
        op->outcome = LIN_OUT_OK;
        op->found = false;
    }
    else
    if (code == GRPC_STATUS_FAILED_PRECONDITION)
        s_undecided (op, code);
    return code;
}

grpc_status_code
chaos_op_cas (tc_conn_t *conn, chaos_who_t *who, const uint8_t *key,
              size_t key_len, uint64_t expect, const uint8_t *value,
              size_t value_len, int64_t timeout_ms, lin_op_t *op)
{
    s_begin (op, who, LIN_OP_CAS, key, key_len);
    op->value = (uint8_t *) value;
    op->value_len = value_len;
    op->expect_absent = expect == 0;
    op->expect_rev = expect;
    Titan__V1__CompareAndSwapRequest req = TITAN__V1__COMPARE_AND_SWAP_REQUEST__INIT;
    req.key.data = (uint8_t *) key;
    req.key.len = key_len;
    req.expected_revision = expect;
    req.value.data = (uint8_t *) value;
    req.value.len = value_len;
    req.client_id = who->dedup_id;
    req.sequence = who->sequence;
    ProtobufCMessage *resp;
    char details [256] = "";
    grpc_status_code code = s_exchange (conn, "/titan.v1.KV/CompareAndSwap", &req.base,
                                        &titan__v1__compare_and_swap_response__descriptor,
                                        timeout_ms, op, &resp, details, sizeof details);
    if (resp) {
        op->rev = ((Titan__V1__CompareAndSwapResponse *) resp)->revision;
        protobuf_c_message_free_unpacked (resp, NULL);
    }
    else
    if (code == GRPC_STATUS_FAILED_PRECONDITION
    &&  strstr (details, "compare-and-swap failed")) {
        op->outcome = LIN_OUT_FAILED;
        op->fail = LIN_FAIL_PRECONDITION;
    }
    else
    if (code == GRPC_STATUS_FAILED_PRECONDITION || code == GRPC_STATUS_NOT_FOUND)
        s_undecided (op, code);
    return code;
}

grpc_status_code
chaos_op_delete (tc_conn_t *conn, chaos_who_t *who, const uint8_t *key,
                 size_t key_len, int64_t timeout_ms, lin_op_t *op)
{
    s_begin (op, who, LIN_OP_DELETE, key, key_len);
    Titan__V1__DeleteRequest req = TITAN__V1__DELETE_REQUEST__INIT;
    req.key.data = (uint8_t *) key;
    req.key.len = key_len;
    req.client_id = who->dedup_id;
    req.sequence = who->sequence;
    ProtobufCMessage *resp;
    grpc_status_code code = s_exchange (conn, "/titan.v1.KV/Delete", &req.base,
                                        &titan__v1__delete_response__descriptor,
                                        timeout_ms, op, &resp, NULL, 0);
    if (resp) {
        Titan__V1__DeleteResponse *r = (Titan__V1__DeleteResponse *) resp;
        if (r->deleted)
            op->rev = r->revision;
        else {
            op->outcome = LIN_OUT_FAILED;
            op->fail = LIN_FAIL_PRECONDITION;
        }
        protobuf_c_message_free_unpacked (resp, NULL);
    }
    else
    if (code == GRPC_STATUS_FAILED_PRECONDITION || code == GRPC_STATUS_NOT_FOUND)
        s_undecided (op, code);
    return code;
}

void
chaos_op_release (lin_op_t *op)
{
    assert (op);
    free (op->out_value);
    op->out_value = NULL;
    op->out_len = 0;
}
