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

/*  Below this size a payload is copied into the ZeroMQ message itself
    (ZeroMQ keeps messages of up to 33 bytes inline, without an
    allocation), which is cheaper than taking a buffer over (that costs an
    allocation of ZeroMQ's reference-counted header).  */
#define TAKE_MIN_SIZE 64

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

/*  Allocates an envelope with its names, kind and id checked; its payload
    is not yet initialised (the caller does it once).  NULL when a name or
    the kind is invalid.  */
static titan_envelope_t *
s_envelope_alloc (const char *to, const char *type, titan_msg_kind_t kind,
                  uint64_t corr)
{
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
    return self;
}

titan_envelope_t *
titan_envelope_new (const char *to, const char *type, titan_msg_kind_t kind,
                    uint64_t corr, const void *payload, size_t size)
{
    assert (payload || size == 0);
    titan_envelope_t *self = s_envelope_alloc (to, type, kind, corr);
    if (!self)
        return NULL;
    if (zmq_msg_init_size (&self->payload, size) != 0) {
        free (self);
        return NULL;
    }
    if (size)
        memcpy (zmq_msg_data (&self->payload), payload, size);
    return self;
}

/*  zmq_msg_init_data's release callback for a buffer taken over.  */
static void
s_free_taken (void *data, void *hint)
{
    (void) hint;
    free (data);
}

titan_envelope_t *
titan_envelope_new_take (const char *to, const char *type,
                         titan_msg_kind_t kind, uint64_t corr,
                         uint8_t **payload_p, size_t size)
{
    assert (payload_p);
    uint8_t *payload = *payload_p;
    *payload_p = NULL;
    assert (payload || size == 0);
    if (size < TAKE_MIN_SIZE) {
        titan_envelope_t *self = titan_envelope_new (to, type, kind, corr,
                                                     payload, size);
        free (payload);
        return self;
    }
    titan_envelope_t *self = s_envelope_alloc (to, type, kind, corr);
    if (!self) {
        free (payload);
        return NULL;
    }
    if (zmq_msg_init_data (&self->payload, payload, size, s_free_taken,
                           NULL) != 0) {
        free (payload);
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
        zmq_msg_close (&self->payload);
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
    zframe_t *payload = zmsg_last (msg);
    if (zmq_msg_init_size (&self->payload, zframe_size (payload)) != 0)
        goto fail;
    memcpy (zmq_msg_data (&self->payload), zframe_data (payload),
            zframe_size (payload));
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
    rc |= zmsg_addmem (msg, zmq_msg_data (&self->payload),
                       zmq_msg_size (&self->payload));
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
        /* the payload moves into the envelope: no copy */
        zmq_msg_init (&self->payload);
        zmq_msg_move (&self->payload, &part [4]);
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
    const void *data [PARTS - 1] = { self->to, self->from, self->type, kc };
    size_t size [PARTS - 1] = { strlen (self->to), strlen (self->from),
                                strlen (self->type), sizeof kc };
    int status = 0;
    for (size_t i = 0; i < PARTS - 1 && status == 0; i++)
        /* ZeroMQ accepts all parts of a message once it accepted the
           first, so only the first part can fail with EAGAIN. */
        if (zmq_send (handle, data [i], size [i],
                      ZMQ_DONTWAIT | ZMQ_SNDMORE) < 0)
            status = -zmq_errno ();
    /* The payload is handed to ZeroMQ as it is (a successful send empties
       the message): a buffer taken over is never copied. */
    if (status == 0 && zmq_msg_send (&self->payload, handle, ZMQ_DONTWAIT) < 0)
        status = -zmq_errno ();
    titan_envelope_destroy (self_p);
    return status;
}

const uint8_t *
titan_envelope_data (const titan_envelope_t *self)
{
    assert (self);
    return (const uint8_t *) zmq_msg_data ((zmq_msg_t *) &self->payload);
}

size_t
titan_envelope_size (const titan_envelope_t *self)
{
    assert (self);
    return zmq_msg_size ((zmq_msg_t *) &self->payload);
}
