/*  Titan-KV bus client: a module's connection to its node's bus.

    One DEALER socket whose routing id is the module name, connected to the
    kernel's ROUTER.  On connect it sends the event "bus.hello" to the
    kernel, which marks the module as present and flushes whatever it held
    for it while it was away.  Sends never block, and the pipe towards the
    kernel has no high-water mark: the kernel never blocks and keeps
    reading (it bounds what it holds per destination, and refuses requests
    past that bound with UNAVAILABLE), so a reply or request is never
    dropped just because the kernel was momentarily behind.  A send fails
    with -EAGAIN only when the socket has no connection to the kernel.  Correlation ids start from a
    clock-derived seed, so that a restarted module does not reuse the ids
    of its previous incarnation, which receivers use to de-duplicate.  */
#include "titan/bus.h"
#include "titan/log.h"

#include <protobuf-c/protobuf-c.h>

#include <assert.h>
#include <errno.h>
#include <string.h>

/*  Messages a DEALER may queue from the kernel before the kernel holds
    further ones on its side.  */
#define BUS_RCVHWM 10000

struct titan_bus {
    zsock_t *sock;                         /* DEALER, routing id = name */
    char name [TITAN_BUS_NAME_MAX + 1];    /* this module's name */
    uint64_t next_corr;                    /* last correlation id issued */
};

titan_bus_t *
titan_bus_connect (const char *endpoint, const char *name)
{
    assert (endpoint);
    size_t len = name ? strlen (name) : 0;
    if (len == 0 || len > TITAN_BUS_NAME_MAX)
        return NULL;
    titan_bus_t *self = (titan_bus_t *) zmalloc (sizeof *self);
    if (!self)
        return NULL;
    memcpy (self->name, name, len + 1);
    self->next_corr = (uint64_t) zclock_usecs () << 8;

    self->sock = zsock_new (ZMQ_DEALER);
    if (!self->sock)
        goto fail;
    zsock_set_identity (self->sock, name);
    zsock_set_sndhwm (self->sock, 0);           /* unlimited: see above */
    zsock_set_rcvhwm (self->sock, BUS_RCVHWM);
    zsock_set_linger (self->sock, 0);
    if (zsock_connect (self->sock, "%s", endpoint) != 0)
        goto fail;

    titan_envelope_t *hello = titan_envelope_new (TITAN_KERNEL_NAME,
        "bus.hello", TITAN_MSG_EVENT, 0, NULL, 0);
    if (titan_bus_send (self, &hello) != 0)
        goto fail;
    return self;

fail:
    zsock_destroy (&self->sock);
    free (self);
    return NULL;
}

void
titan_bus_destroy (titan_bus_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        titan_bus_t *self = *self_p;
        zsock_destroy (&self->sock);
        free (self);
        *self_p = NULL;
    }
}

zsock_t *
titan_bus_sock (titan_bus_t *self)
{
    assert (self);
    return self->sock;
}

const char *
titan_bus_name (titan_bus_t *self)
{
    assert (self);
    return self->name;
}

uint64_t
titan_bus_next_corr (titan_bus_t *self)
{
    assert (self);
    return ++self->next_corr;
}

int
titan_bus_send (titan_bus_t *self, titan_envelope_t **env_p)
{
    assert (self);
    assert (env_p);
    if (!*env_p)
        return -EINVAL;
    /* The kernel overwrites `from`; set it anyway so that the wire form is
       complete when no kernel sits in between (tests, direct sockets). */
    memcpy ((*env_p)->from, self->name, sizeof self->name);
    return titan_envelope_send (env_p, zsock_resolve (self->sock));
}

/*  Sends a request envelope (taking it, NULL when it could not be made)
    under a fresh correlation id, stored in *corr_p when not NULL.  */
static int
s_send_request (titan_bus_t *self, titan_envelope_t *env, uint64_t *corr_p)
{
    if (!env)
        return -EINVAL;
    uint64_t corr = env->corr;
    int rc = titan_bus_send (self, &env);
    if (rc == 0 && corr_p)
        *corr_p = corr;
    return rc;
}

int
titan_bus_request (titan_bus_t *self, const char *to, const char *type,
                   const void *payload, size_t size, uint64_t *corr_p)
{
    assert (self);
    return s_send_request (self, titan_envelope_new (to, type,
        TITAN_MSG_REQUEST, titan_bus_next_corr (self), payload, size), corr_p);
}

int
titan_bus_request_take (titan_bus_t *self, const char *to, const char *type,
                        uint8_t **payload_p, size_t size, uint64_t *corr_p)
{
    assert (self);
    return s_send_request (self, titan_envelope_new_take (to, type,
        TITAN_MSG_REQUEST, titan_bus_next_corr (self), payload_p, size),
        corr_p);
}

/*  Sends a reply envelope (taking it, NULL when it could not be made).  */
static int
s_send_reply (titan_bus_t *self, titan_envelope_t *env)
{
    if (!env)
        return -EINVAL;
    return titan_bus_send (self, &env);
}

int
titan_bus_reply (titan_bus_t *self, const titan_envelope_t *request,
                 const void *payload, size_t size)
{
    assert (self);
    assert (request);
    return s_send_reply (self, titan_envelope_new (request->from,
        request->type, TITAN_MSG_REPLY, request->corr, payload, size));
}

int
titan_bus_reply_take (titan_bus_t *self, const titan_envelope_t *request,
                      uint8_t **payload_p, size_t size)
{
    assert (self);
    assert (request);
    return s_send_reply (self, titan_envelope_new_take (request->from,
        request->type, TITAN_MSG_REPLY, request->corr, payload_p, size));
}

/*  Packs a protobuf-c message into a fresh buffer of exactly its size
    (at least one byte, so that an empty message is not a NULL buffer).
    Returns the buffer (the caller's) or NULL when out of memory.  */
static uint8_t *
s_pack (const void *message, size_t *size_p)
{
    const ProtobufCMessage *pb = (const ProtobufCMessage *) message;
    size_t size = protobuf_c_message_get_packed_size (pb);
    uint8_t *buf = (uint8_t *) malloc (size ? size : 1);
    if (buf)
        protobuf_c_message_pack (pb, buf);
    *size_p = size;
    return buf;
}

int
titan_bus_reply_pb (titan_bus_t *self, const titan_envelope_t *request,
                    const void *message)
{
    assert (self);
    assert (request);
    assert (message);
    size_t size;
    uint8_t *buf = s_pack (message, &size);
    if (!buf)
        return -ENOMEM;
    return titan_bus_reply_take (self, request, &buf, size);
}

int
titan_bus_request_pb (titan_bus_t *self, const char *to, const char *type,
                      const void *message, uint64_t *corr_p)
{
    assert (self);
    assert (message);
    size_t size;
    uint8_t *buf = s_pack (message, &size);
    if (!buf)
        return -ENOMEM;
    return titan_bus_request_take (self, to, type, &buf, size, corr_p);
}

titan_envelope_t *
titan_bus_try_recv (titan_bus_t *self)
{
    assert (self);
    void *handle = zsock_resolve (self->sock);
    while (true) {
        titan_envelope_t *env = NULL;
        int rc = titan_envelope_recv_nowait (handle, &env);
        if (rc == 0)
            return env;
        if (rc != -EPROTO)
            return NULL;                /* none waiting, or the socket closed */
        titan_log_warning ("bus %s: dropped a malformed message", self->name);
    }
}

titan_envelope_t *
titan_bus_recv (titan_bus_t *self, int timeout_ms)
{
    assert (self);
    /* A message already waiting needs no poll: the receive without wait
       processes the socket's commands itself when its queue is empty. */
    titan_envelope_t *env = titan_bus_try_recv (self);
    if (env || timeout_ms == 0)
        return env;
    zmq_pollitem_t item = { zsock_resolve (self->sock), 0, ZMQ_POLLIN, 0 };
    if (zmq_poll (&item, 1, timeout_ms) <= 0)
        return NULL;                    /* timeout, interrupt or error */
    return titan_bus_try_recv (self);
}

titan_envelope_t *
titan_bus_call (titan_bus_t *self, const char *to, const char *type,
                const void *payload, size_t size, int timeout_ms,
                void (*other) (titan_envelope_t **env_p, void *arg),
                void *arg)
{
    assert (self);
    uint64_t corr = 0;
    if (titan_bus_request (self, to, type, payload, size, &corr) != 0)
        return NULL;
    int64_t deadline = timeout_ms < 0 ? -1 : zclock_mono () + timeout_ms;
    while (true) {
        int wait = -1;
        if (deadline >= 0) {
            int64_t left = deadline - zclock_mono ();
            if (left <= 0)
                return NULL;
            wait = (int) left;
        }
        titan_envelope_t *env = titan_bus_recv (self, wait);
        if (!env) {
            if (zsys_interrupted)
                return NULL;
            continue;                   /* malformed, or woke early */
        }
        if (env->kind == TITAN_MSG_REPLY && env->corr == corr)
            return env;
        if (other)
            other (&env, arg);
        titan_envelope_destroy (&env);
    }
}

bool
titan_module_pipe_recv (zsock_t *pipe, char **command_p)
{
    if (command_p)
        *command_p = NULL;
    char *command = zstr_recv (pipe);
    bool stop = !command || strcmp (command, "$TERM") == 0;
    if (command && strcmp (command, "PING") == 0)
        zstr_send (pipe, "PONG");
    else
    if (command && !stop && command_p) {
        *command_p = command;
        return false;
    }
    zstr_free (&command);
    return stop;
}
