/*  Titan-KV bus envelopes: the in-memory form of one bus message and its
    wire form, the five-frame multipart message

        [to][from][type][kind+correlation][payload]

    The kind+correlation frame is exactly 9 bytes: the kind byte (event,
    request, reply) followed by the 64-bit correlation id in big-endian
    order.  Decoding is strict because the bytes come from other threads
    and, through the gateway, indirectly from the network: a wrong frame
    count, an empty or over-long name, a name holding a NUL byte, a kind
    frame of the wrong size or an unknown kind all reject the message.
    `from` may be empty on the way in (the kernel overwrites it with the
    sender's real routing id); `to` and `type` may not.  */
#include "titan/bus.h"

#include <assert.h>
#include <string.h>

#define KIND_FRAME_SIZE 9

/*  Copies a name into a fixed buffer; false if it is too long, or empty
    while `allow_empty` is false.  */
static bool
s_set_name (char *dest, const char *name, bool allow_empty)
{
    size_t len = name ? strlen (name) : 0;
    if (len > TITAN_BUS_NAME_MAX || (len == 0 && !allow_empty))
        return false;
    if (len)
        memcpy (dest, name, len);
    dest [len] = '\0';
    return true;
}

/*  Same as s_set_name from a frame, which is not NUL-terminated and must
    not contain a NUL byte.  */
static bool
s_frame_name (char *dest, zframe_t *frame, bool allow_empty)
{
    size_t len = zframe_size (frame);
    if (len > TITAN_BUS_NAME_MAX || (len == 0 && !allow_empty))
        return false;
    const byte *data = zframe_data (frame);
    if (len && memchr (data, '\0', len))
        return false;
    if (len)
        memcpy (dest, data, len);
    dest [len] = '\0';
    return true;
}

titan_envelope_t *
titan_envelope_new (const char *to, const char *type, titan_msg_kind_t kind,
                    uint64_t corr, const void *payload, size_t size)
{
    assert (payload || size == 0);
    if (kind != TITAN_MSG_EVENT && kind != TITAN_MSG_REQUEST
    &&  kind != TITAN_MSG_REPLY)
        return NULL;
    titan_envelope_t *self = (titan_envelope_t *) zmalloc (sizeof *self);
    if (!self)
        return NULL;
    if (!s_set_name (self->to, to, false)
    ||  !s_set_name (self->type, type, false)) {
        free (self);
        return NULL;
    }
    self->kind = kind;
    self->corr = corr;
    self->payload = zframe_new (payload, size);
    if (!self->payload) {
        free (self);
        return NULL;
    }
    return self;
}

void
titan_envelope_destroy (titan_envelope_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        titan_envelope_t *self = *self_p;
        zframe_destroy (&self->payload);
        free (self);
        *self_p = NULL;
    }
}

titan_envelope_t *
titan_envelope_decode (zmsg_t **msg_p)
{
    assert (msg_p);
    zmsg_t *msg = *msg_p;
    *msg_p = NULL;
    if (!msg)
        return NULL;
    titan_envelope_t *self = NULL;
    if (zmsg_size (msg) != 5)
        goto fail;

    self = (titan_envelope_t *) zmalloc (sizeof *self);
    if (!self)
        goto fail;
    zframe_t *to = zmsg_first (msg);
    zframe_t *from = zmsg_next (msg);
    zframe_t *type = zmsg_next (msg);
    zframe_t *kindcorr = zmsg_next (msg);
    if (!s_frame_name (self->to, to, false)
    ||  !s_frame_name (self->from, from, true)
    ||  !s_frame_name (self->type, type, false))
        goto fail;
    if (zframe_size (kindcorr) != KIND_FRAME_SIZE)
        goto fail;
    const byte *kc = zframe_data (kindcorr);
    if (kc [0] > TITAN_MSG_REPLY)
        goto fail;
    self->kind = (titan_msg_kind_t) kc [0];
    uint64_t corr = 0;
    for (int i = 1; i < KIND_FRAME_SIZE; i++)
        corr = (corr << 8) | kc [i];
    self->corr = corr;
    self->payload = zmsg_last (msg);
    zmsg_remove (msg, self->payload);
    zmsg_destroy (&msg);
    return self;

fail:
    free (self);
    zmsg_destroy (&msg);
    return NULL;
}

zmsg_t *
titan_envelope_encode (titan_envelope_t **self_p)
{
    assert (self_p);
    titan_envelope_t *self = *self_p;
    if (!self)
        return NULL;
    zmsg_t *msg = zmsg_new ();
    if (!msg) {
        titan_envelope_destroy (self_p);
        return NULL;
    }
    byte kc [KIND_FRAME_SIZE];
    kc [0] = (byte) self->kind;
    for (int i = 0; i < 8; i++)
        kc [1 + i] = (byte) (self->corr >> (56 - 8 * i));
    int rc = zmsg_addmem (msg, self->to, strlen (self->to));
    rc |= zmsg_addmem (msg, self->from, strlen (self->from));
    rc |= zmsg_addmem (msg, self->type, strlen (self->type));
    rc |= zmsg_addmem (msg, kc, sizeof kc);
    rc |= zmsg_append (msg, &self->payload);
    if (rc != 0)
        zmsg_destroy (&msg);
    titan_envelope_destroy (self_p);
    return msg;
}

const uint8_t *
titan_envelope_data (const titan_envelope_t *self)
{
    assert (self);
    return zframe_data (self->payload);
}

size_t
titan_envelope_size (const titan_envelope_t *self)
{
    assert (self);
    return zframe_size (self->payload);
}
