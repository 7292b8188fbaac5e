/*  libFuzzer target for the gateway's decoders of untrusted bytes: the
    request of every titan.v1 method (gw_request_decode, through
    gw_api_prepare exactly as the gateway calls it), the `titan-hops`
    metadata (gw_request_hops) and, since they come from other modules,
    the bus replies the gateway turns into responses (gw_api_step,
    gw_api_redirect).

    Input: byte 0 picks the method (byte 0 % GW_M_COUNT) and what to do
    with the rest (byte 0 / GW_M_COUNT % 4: 0 and 1 a request under
    small or default limits, 2 a first bus reply, 3 a second bus reply
    and a redirect); the other bytes are the message.  Whatever the input,
    nothing may crash, leak or read out of bounds (ASan, UBSan), every
    refusal carries a non-OK status and a message, and an accepted
    request's bus payload respects the limits.  Built and run by
    `make fuzz-gateway` (clang).  */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gw_api.h"
#include "gw_request.h"
#include "bus.pb-c.h"
#include "titan.pb-c.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

/*  A request the gateway accepted: its bus payload must decode and keep
    within the limits it was checked against.  */
static void
s_check_accepted (const gw_env_t *env, gw_method_t method,
                  const gw_bus_req_t *req)
{
    if (req->deferred) {
        /* a deferred put: the request kept in the hint log, and the put
           that delivers it, both within the limits */
        assert (method == GW_M_PUT);
        uint8_t *out = NULL;
        size_t out_size = 0;
        assert (gw_api_hint_request (req->payload, req->size, 7, 9, &out,
                                     &out_size) == 0);
        Titan__V1__PutRequest *put =
            titan__v1__put_request__unpack (NULL, out_size, out);
        assert (put && !put->deferred && put->client_id == 7 && put->sequence == 9);
        assert (put->key.len >= 1 && put->key.len <= env->max_key_bytes);
        assert (put->value.len <= env->max_value_bytes);
        titan__v1__put_request__free_unpacked (put, NULL);
        free (out);
        return;
    }
    assert (req->to && req->type);
    if (method == GW_M_PUT || method == GW_M_DELETE || method == GW_M_CAS) {
        Titan__Bus__KvWrite *w =
            titan__bus__kv_write__unpack (NULL, req->size, req->payload);
        assert (w && w->op);
        assert (w->op->key.len >= 1 && w->op->key.len <= env->max_key_bytes);
        assert (w->op->value.len <= env->max_value_bytes);
        titan__bus__kv_write__free_unpacked (w, NULL);
    }
    else
    if (method == GW_M_GET) {
        Titan__Bus__KvGet *g =
            titan__bus__kv_get__unpack (NULL, req->size, req->payload);
        assert (g);
        assert (g->key.len >= 1 && g->key.len <= env->max_key_bytes);
        titan__bus__kv_get__free_unpacked (g, NULL);
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    gw_method_t method = (gw_method_t) (data [0] % GW_M_COUNT);
    int mode = (data [0] / GW_M_COUNT) % 4;
    const uint8_t *msg = data + 1;
    size_t msg_size = size - 1;
    gw_env_t env = {
        .node_id = "fuzz", .client_addr = "127.0.0.1:1",
        .peer_addr = "127.0.0.1:2", .module_name = "grpc_gateway",
        .max_key_bytes = mode == 0 ? 16 : GW_DEFAULT_MAX_KEY_BYTES,
        .max_value_bytes = mode == 0 ? 64 : GW_DEFAULT_MAX_VALUE_BYTES,
    };
    gw_bus_req_t req;
    gw_result_t res = { GRPC_STATUS_OK, "", NULL, 0 };
    if (mode <= 1) {
        if (gw_api_prepare (&env, method, msg, msg_size, &req, &res)) {
            assert (res.code == GRPC_STATUS_OK);
            s_check_accepted (&env, method, &req);
            free (req.payload);
        }
        else {
            assert (res.code != GRPC_STATUS_OK && res.message [0]);
            assert (!res.response);
        }
        int hops = gw_request_hops (msg, msg_size);
        assert (hops >= 0 && hops <= 99);
    }
    else {
        int step = mode == 2 ? 0 : 1;
        if (gw_api_step (&env, method, 7, step, msg, msg_size, msg, msg_size,
                         &req, &res)) {
            assert (req.to && req.type);
            free (req.payload);
        }
        else
            assert (res.code != GRPC_STATUS_OK || res.response);
        char id [64], addr [128], why [160];
        if (gw_api_redirect (method, step, msg, msg_size, id, sizeof id, addr,
                             sizeof addr, why, sizeof why))
            assert (strlen (id) < sizeof id && strlen (addr) < sizeof addr);
    }
    gw_result_reset (&res);
    return 0;
}
