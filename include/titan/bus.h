/*  Titan-KV bus: envelopes and a module's connection to its node's bus.

    Each node has one ROUTER socket, owned by the kernel, bound at
    inproc://titan-<node-id>-bus.  Each module connects one DEALER whose
    routing id is the module's name.  A message on the bus is the multipart
    envelope

        [to][from][type][kind+correlation][payload]

    - to, from: module names ("kernel" is the kernel itself).  The kernel
      overwrites `from` with the sender's real routing id.
    - type: a short string naming the payload, e.g. "kv.put"
      (include/titan/bus_types.h).  A reply carries its request's type.
    - kind+correlation: 9 bytes, one kind byte (event, request, reply) and a
      64-bit big-endian correlation id chosen by the requester; a reply
      carries its request's id.
    - payload: a protobuf-c message from proto/bus.proto (may be empty).

    The kernel keeps a copy of every request until the addressed module
    replies to it; if that module restarts in between, the kernel delivers
    the request again, so a receiver must tolerate a duplicate request (same
    from + correlation id).  Events are not tracked.

    The kernel may answer a request on behalf of its destination, with the
    request's type and correlation id and an AdminReply payload: UNAVAILABLE
    when the destination's held-message queue is full or the module has
    failed for good, UNIMPLEMENTED when no module of that name exists.  A
    requester therefore never waits forever on a request the kernel could
    not deliver.
*/
#ifndef TITAN_BUS_H_INCLUDED
#define TITAN_BUS_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    TITAN_MSG_EVENT   = 0,    /* fire and forget */
    TITAN_MSG_REQUEST = 1,    /* expects exactly one reply */
    TITAN_MSG_REPLY   = 2     /* answers the request with the same id */
} titan_msg_kind_t;

#define TITAN_BUS_NAME_MAX   63     /* longest module or type name */
#define TITAN_KERNEL_NAME    "kernel"

/*  ------------------------------------------------------------ envelope  */

typedef struct titan_envelope {
    char to [TITAN_BUS_NAME_MAX + 1];
    char from [TITAN_BUS_NAME_MAX + 1];
    char type [TITAN_BUS_NAME_MAX + 1];
    titan_msg_kind_t kind;
    uint64_t corr;
    zmq_msg_t payload;        /* owned by the envelope; always initialised.
                                 A ZeroMQ message, so that it moves from
                                 socket to envelope to socket without a
                                 copy (read it with titan_envelope_data) */
} titan_envelope_t;

/*  Creates an envelope; copies `size` bytes of `payload` (which may be NULL
    when size is 0).  Returns NULL if a name is empty or too long, or on
    allocation failure.  */
titan_envelope_t *titan_envelope_new (const char *to, const char *type,
                                      titan_msg_kind_t kind, uint64_t corr,
                                      const void *payload, size_t size);

/*  Creates an envelope whose payload is the malloc'd buffer *payload_p of
    `size` bytes, without copying it: the envelope takes ownership (the
    buffer is freed, with free(), when the last ZeroMQ reference to it is
    closed, in whichever thread that happens) and *payload_p is nulled,
    even on failure (then the buffer is freed at once).  For the hot paths
    whose payload is packed into a fresh buffer anyway.  Returns NULL as
    titan_envelope_new does.  */
titan_envelope_t *titan_envelope_new_take (const char *to, const char *type,
                                           titan_msg_kind_t kind,
                                           uint64_t corr, uint8_t **payload_p,
                                           size_t size);

/*  Destroys an envelope and nulls the pointer.  */
void titan_envelope_destroy (titan_envelope_t **self_p);

/*  Decodes a bus message [to][from][type][kind+corr][payload], taking
    ownership of *msg_p (always destroyed).  Returns NULL when the message
    is malformed (wrong frame count, oversized names, bad kind).  */
titan_envelope_t *titan_envelope_decode (zmsg_t **msg_p);

/*  Encodes an envelope into a new bus message, taking ownership of the
    envelope (*self_p is destroyed and nulled).  */
zmsg_t *titan_envelope_encode (titan_envelope_t **self_p);

/*  Receives one bus message from a raw ZeroMQ socket handle (zsock_resolve)
    without waiting, and decodes it as titan_envelope_decode does; reading
    straight from libzmq avoids a zmsg per message and CZMQ's per-call
    socket checks.  Returns 0 and stores a new envelope (the caller's) in
    *env_p; -EAGAIN when no message waits; -EPROTO when the message was
    malformed (it is consumed and dropped); another negative errno value on
    a socket error.  *env_p is NULL unless 0 is returned.  */
int titan_envelope_recv_nowait (void *handle, titan_envelope_t **env_p);

/*  Sends an envelope as one bus message on a raw ZeroMQ socket handle
    without blocking, taking ownership (*self_p is destroyed and nulled
    even on failure).  Returns 0 or a negative errno value (-EAGAIN when
    the socket cannot take it now).  */
int titan_envelope_send (titan_envelope_t **self_p, void *handle);

/*  Payload bytes and size (valid while the envelope lives).  */
const uint8_t *titan_envelope_data (const titan_envelope_t *self);
size_t titan_envelope_size (const titan_envelope_t *self);

/*  ------------------------------------------------------------ client  */

/*  A module's connection to its node's bus: a DEALER with routing id equal
    to the module name.  Owned by one thread (sockets are not thread-safe). */
typedef struct titan_bus titan_bus_t;

/*  Connects to the bus at `endpoint` as `name` and announces itself to
    the kernel (an event "bus.hello"), which then delivers any messages
    held for this module.  Returns NULL on failure.  */
titan_bus_t *titan_bus_connect (const char *endpoint, const char *name);

/*  Closes the connection and nulls the pointer.  */
void titan_bus_destroy (titan_bus_t **self_p);

/*  The underlying socket, to add to a zpoller.  Not the caller's.  */
zsock_t *titan_bus_sock (titan_bus_t *self);

/*  This connection's module name.  */
const char *titan_bus_name (titan_bus_t *self);

/*  Returns a fresh correlation id (unique on this connection).  */
uint64_t titan_bus_next_corr (titan_bus_t *self);

/*  Sends an envelope, taking ownership (*env_p is nulled even on failure).
    Returns 0, or a negative errno value (-EAGAIN when not
    connected to the kernel).  */
int titan_bus_send (titan_bus_t *self, titan_envelope_t **env_p);

/*  Sends a request of `type` with a fresh correlation id to `to`; stores
    the id in *corr_p when not NULL.  Returns 0 or a negative errno.  */
int titan_bus_request (titan_bus_t *self, const char *to, const char *type,
                       const void *payload, size_t size, uint64_t *corr_p);

/*  Sends the reply to `request` (same type and correlation id, addressed
    to its sender).  Returns 0 or a negative errno.  */
int titan_bus_reply (titan_bus_t *self, const titan_envelope_t *request,
                     const void *payload, size_t size);

/*  titan_bus_request without a copy of the payload: takes ownership of the
    malloc'd buffer *payload_p (nulled, even on failure) as
    titan_envelope_new_take does.  */
int titan_bus_request_take (titan_bus_t *self, const char *to,
                            const char *type, uint8_t **payload_p,
                            size_t size, uint64_t *corr_p);

/*  titan_bus_reply without a copy of the payload: takes ownership of the
    malloc'd buffer *payload_p (nulled, even on failure) as
    titan_envelope_new_take does.  */
int titan_bus_reply_take (titan_bus_t *self, const titan_envelope_t *request,
                          uint8_t **payload_p, size_t size);

/*  Packs a protobuf-c message (`message` is the generated struct, e.g. a
    Titan__Bus__KvReply *, whose first member is its ProtobufCMessage
    base) into a fresh buffer and sends it as the reply to `request`
    without a further copy (titan_bus_reply_take).  Returns 0, -ENOMEM, or
    a negative errno value of the send.  */
int titan_bus_reply_pb (titan_bus_t *self, const titan_envelope_t *request,
                        const void *message);

/*  Packs a protobuf-c message as titan_bus_reply_pb does and sends it as
    a request (titan_bus_request_take); the correlation id goes to *corr_p
    when not NULL.  Returns 0, -ENOMEM, or a negative errno value.  */
int titan_bus_request_pb (titan_bus_t *self, const char *to,
                          const char *type, const void *message,
                          uint64_t *corr_p);

/*  Receives the next envelope, blocking up to `timeout_ms` (-1 = forever;
    0 = only if one is waiting).  Returns a new envelope (the caller's), or
    NULL on timeout or interrupt.  Malformed messages are dropped and
    logged; one that arrives while waiting may end the wait early (NULL).  */
titan_envelope_t *titan_bus_recv (titan_bus_t *self, int timeout_ms);

/*  Receives the next envelope if one is waiting, without blocking (for
    the drain loop of an actor whose poller said the socket is readable:
    loop until it returns NULL).  Malformed messages are dropped, logged
    and skipped.  Returns a new envelope (the caller's), or NULL when none
    is waiting.  Costs no system call while messages are queued, unlike
    asking zsock_events before each receive.  */
titan_envelope_t *titan_bus_try_recv (titan_bus_t *self);

/*  Sends a request and waits for its reply, for up to `timeout_ms`.
    Envelopes that arrive meanwhile and are not the reply are handed to
    `other` (if not NULL; it takes ownership) or dropped.  Returns the
    reply (caller's) or NULL on timeout.  For modules and tests that need a
    simple synchronous call; the hot paths stay asynchronous.  */
titan_envelope_t *titan_bus_call (titan_bus_t *self, const char *to,
                                  const char *type, const void *payload,
                                  size_t size, int timeout_ms,
                                  void (*other) (titan_envelope_t **env_p,
                                                 void *arg),
                                  void *arg);

/*  Reads one command from a module actor's pipe and answers the kernel's
    supervision protocol ("PING" gets "PONG").  Returns true when the
    actor must stop ("$TERM", or the pipe closed).  A command of the
    module's own is stored in *command_p (the caller's, to zstr_free) when
    command_p is not NULL, else discarded; *command_p is NULL otherwise.  */
bool titan_module_pipe_recv (zsock_t *pipe, char **command_p);

#ifdef __cplusplus
}
#endif
#endif
