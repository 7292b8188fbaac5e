/*  libFuzzer target for the bus envelope decoder (titan_envelope_decode,
    kernel/bus_envelope.c), which every module runs on every message it
    receives, including messages whose bytes started as a client's.

    Input: a sequence of frames, each a length byte then that many bytes
    (a length past the end takes what is left); at most 8 frames, so that
    wrong frame counts are tried too.  Whatever the frames, decoding must
    not crash, leak or read out of bounds (ASan, UBSan); an envelope it
    accepts must hold NUL-free names within TITAN_BUS_NAME_MAX, a known
    kind, and must come back identical after encode + decode.  Built and
    run by `make fuzz-bus` (clang).  */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "titan/bus.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
s_check_name (const char *name, bool allow_empty)
{
    size_t len = strnlen (name, TITAN_BUS_NAME_MAX + 1);
    assert (len <= TITAN_BUS_NAME_MAX);
    assert (allow_empty || len > 0);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    zmsg_t *msg = zmsg_new ();
    assert (msg);
    size_t pos = 0;
    for (int frames = 0; pos < size && frames < 8; frames++) {
        size_t len = data [pos++];
        if (len > size - pos)
            len = size - pos;
        int rc = zmsg_addmem (msg, data + pos, len);
        assert (rc == 0);
        pos += len;
    }
    titan_envelope_t *env = titan_envelope_decode (&msg);
    assert (msg == NULL);
    if (!env)
        return 0;
    s_check_name (env->to, false);
    s_check_name (env->from, true);
    s_check_name (env->type, false);
    assert (env->kind == TITAN_MSG_EVENT || env->kind == TITAN_MSG_REQUEST
            || env->kind == TITAN_MSG_REPLY);
    titan_envelope_t copy = *env;
    size_t payload_size = titan_envelope_size (env);
    uint8_t *payload = malloc (payload_size ? payload_size : 1);
    assert (payload);
    if (payload_size)
        memcpy (payload, titan_envelope_data (env), payload_size);

    zmsg_t *again = titan_envelope_encode (&env);
    assert (again && !env);
    titan_envelope_t *back = titan_envelope_decode (&again);
    assert (back);
    assert (strcmp (back->to, copy.to) == 0);
    assert (strcmp (back->from, copy.from) == 0);
    assert (strcmp (back->type, copy.type) == 0);
    assert (back->kind == copy.kind && back->corr == copy.corr);
    assert (titan_envelope_size (back) == payload_size);
    assert (payload_size == 0
            || memcmp (titan_envelope_data (back), payload, payload_size) == 0);
    titan_envelope_destroy (&back);
    free (payload);
    return 0;
}
