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
#include <errno.h>
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

/*  Same as s_set_name from `len` bytes that are not NUL-terminated and
    must not contain a NUL byte.  */
static bool
s_bytes_name (char *dest, const void *data, size_t len, bool allow_empty)
{
    if (len > TITAN_BUS_NAME_MAX || (len == 0 && !allow_empty))
        return false;
    if (len && memchr (data, '\0', len))
        return false;
    if (len)
        memcpy (dest, data, len);
    dest [len] = '\0';
    return true;
}

/*  Decodes the kind+correlation frame into the envelope; false if it is
    not one.  */
static bool
s_kind_decode (titan_envelope_t *self, const byte *kc, size_t size)
{
    if (size != KIND_FRAME_SIZE || kc [0] > TITAN_MSG_REPLY)
        return false;
    self->kind = (titan_msg_kind_t) kc [0];
    uint64_t corr = 0;
    for (int i = 1; i < KIND_FRAME_SIZE; i++)
        corr = (corr << 8) | kc [i];
    self->corr = corr;
    return true;
}

/*  Encodes the kind+correlation frame of an envelope.  */
static void
s_kind_encode (const titan_envelope_t *self, byte kc [KIND_FRAME_SIZE])
{
    kc [0] = (byte) self->kind;
    for (int i = 0; i < 8; i++)
        kc [1 + i] = (byte) (self->corr >> (56 - 8 * i));
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
    if (!s_bytes_name (self->to, zframe_data (to), zframe_size (to), false)
    ||  !s_bytes_name (self->from, zframe_data (from), zframe_size (from), true)
    ||  !s_bytes_name (self->type, zframe_data (type), zframe_size (type), false)
    ||  !s_kind_decode (self, zframe_data (kindcorr), zframe_size (kindcorr)))
        goto fail;
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
    s_kind_encode (self, kc);
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

/*  The number of parts of a bus message.  */
#define PARTS 5

int
titan_envelope_recv_nowait (void *handle, titan_envelope_t **env_p)
{
    assert (handle);
    assert (env_p);
    *env_p = NULL;
    zmq_msg_t part [PARTS];
    zmq_msg_init (&part [0]);
    if (zmq_msg_recv (&part [0], handle, ZMQ_DONTWAIT) < 0) {
        int error = zmq_errno ();
        zmq_msg_close (&part [0]);
        return -error;
    }
    /* The other parts of a message arrive with its first one: they are
       read without waiting, whatever their number. */
    size_t count = 1;
    bool more = zmq_msg_more (&part [0]);
    int status = 0;
    while (more) {
        zmq_msg_t extra;
        zmq_msg_t *target = count < PARTS ? &part [count] : &extra;
        zmq_msg_init (target);
        if (zmq_msg_recv (target, handle, 0) < 0) {
            status = -zmq_errno ();
            zmq_msg_close (target);
            break;
        }
        more = zmq_msg_more (target);
        if (count < PARTS)
            count++;
        else {
            zmq_msg_close (&extra);
            status = -EPROTO;           /* too many parts */
        }
    }
    titan_envelope_t *self = NULL;
    if (status == 0 && count != PARTS)
        status = -EPROTO;
    if (status == 0) {
        self = (titan_envelope_t *) zmalloc (sizeof *self);
        if (!self)
            status = -ENOMEM;
    }
    if (status == 0
    &&  (!s_bytes_name (self->to, zmq_msg_data (&part [0]),
                        zmq_msg_size (&part [0]), false)
    ||   !s_bytes_name (self->from, zmq_msg_data (&part [1]),
                        zmq_msg_size (&part [1]), true)
    ||   !s_bytes_name (self->type, zmq_msg_data (&part [2]),
                        zmq_msg_size (&part [2]), false)
    ||   !s_kind_decode (self, zmq_msg_data (&part [3]),
                         zmq_msg_size (&part [3]))))
        status = -EPROTO;
    if (status == 0) {
        self->payload = zframe_new (zmq_msg_data (&part [4]),
                                    zmq_msg_size (&part [4]));
        if (!self->payload)
            status = -ENOMEM;
    }
    for (size_t i = 0; i < count; i++)
        zmq_msg_close (&part [i]);
    if (status) {
        free (self);
        return status;
    }
    *env_p = self;
    return 0;
}

int
titan_envelope_send (titan_envelope_t **self_p, void *handle)
{
    assert (self_p);
    assert (handle);
    titan_envelope_t *self = *self_p;
    if (!self)
        return -EINVAL;
    byte kc [KIND_FRAME_SIZE];
    s_kind_encode (self, kc);
    const void *data [PARTS] = { self->to, self->from, self->type, kc,
                                 zframe_data (self->payload) };
    size_t size [PARTS] = { strlen (self->to), strlen (self->from),
                            strlen (self->type), sizeof kc,
                            zframe_size (self->payload) };
    int status = 0;
    for (size_t i = 0; i < PARTS; i++) {
        int flags = ZMQ_DONTWAIT | (i + 1 < PARTS ? ZMQ_SNDMORE : 0);
        if (zmq_send (handle, data [i], size [i], flags) < 0) {
            /* ZeroMQ accepts all parts of a message once it accepted the
               first, so only the first part can fail with EAGAIN. */
            status = -zmq_errno ();
            break;
        }
    }
    titan_envelope_destroy (self_p);
    return status;
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
