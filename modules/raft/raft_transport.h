/*  Raft peer transport: opaque messages between nodes over ZeroMQ TCP.

    One transport per node serves every Raft group on it.  It binds one
    ROUTER on the node's peer address for inbound traffic and keeps one
    DEALER per peer for outbound traffic, so each pair of nodes shares one
    connection per direction whatever the number of groups.  Messages queued
    for a peer with raft_transport_queue are sent together, as one multipart
    ZeroMQ message, by raft_transport_flush: batching per destination.

    Wire format of one batch: [sender node id][msg 1][msg 2]...[msg n].
    The transport does not look inside messages; Raft tolerates loss, so a
    batch that cannot be sent at once (peer unreachable, queue full) is
    dropped and counted, never blocks the caller.  Inbound, ZeroMQ refuses
    a frame larger than the configured maximum before allocating it
    (ZMQ_MAXMSGSIZE), and raft_transport_recv refuses a batch of more
    messages or bytes than a sender may queue (4096 messages, 64 MiB),
    reading its frames one at a time without keeping them.  With CURVE
    (raft_curve.h) every connection is encrypted, only peers whose key is
    allowed can connect, and a batch whose sender id is not the node its
    key is bound to is dropped (counted in batches_forged).  The object is
    not thread-safe: one
    thread (the raft actor) owns it.
*/
#ifndef TITAN_RAFT_TRANSPORT_H_INCLUDED
#define TITAN_RAFT_TRANSPORT_H_INCLUDED

#include <czmq.h>

#include "raft_curve.h"
#include <stddef.h>
#include <stdint.h>

typedef struct raft_transport raft_transport_t;

typedef struct {
    uint64_t batches_sent;
    uint64_t messages_sent;
    uint64_t batches_dropped;    /* peer unknown, unreachable or queue full */
    uint64_t batches_received;
    uint64_t messages_received;
    uint64_t batches_malformed;  /* refused inbound batches */
    uint64_t batches_forged;     /* CURVE key bound to another node id */
} raft_transport_stats_t;

/*  Creates a transport for node `self_id` listening on `bind_addr`
    ("host:port"; a host of "*" or "0.0.0.0" binds every interface).
    `max_message_bytes` bounds one inbound message.  Returns 0 and the new
    transport in *self_p, or a negative errno with a message in err.  */
int raft_transport_new (const char *self_id, const char *bind_addr,
                        size_t max_message_bytes, raft_transport_t **self_p,
                        char *err, size_t err_size);

/*  The same with CURVE security: `curve` (borrowed, must outlive the
    transport; NULL: plain TCP as raft_transport_new) secures the listener
    and every peer connection.  */
int raft_transport_new_curve (const char *self_id, const char *bind_addr,
                              size_t max_message_bytes, raft_curve_t *curve,
                              raft_transport_t **self_p,
                              char *err, size_t err_size);

/*  Stops listening, closes every connection, frees queued messages and
    nulls the pointer.  */
void raft_transport_destroy (raft_transport_t **self_p);

/*  The inbound socket, to add to the owner's zpoller.  Not the caller's. */
zsock_t *raft_transport_sock (raft_transport_t *self);

/*  Adds or updates a peer: later messages to `peer_id` go to `addr`
    ("host:port").  Changing an address reconnects.  Returns 0 or a
    negative errno (-EINVAL for a bad address or id).  */
int raft_transport_set_peer (raft_transport_t *self, const char *peer_id,
                             const char *addr);

/*  Forgets a peer and drops what is queued for it.  */
void raft_transport_remove_peer (raft_transport_t *self, const char *peer_id);

/*  Queues a copy of `size` bytes for `peer_id`, to go in its next batch.
    Returns 0, -ENOENT for an unknown peer (the message is dropped), or
    -ENOBUFS when the peer's queue is full (dropped).  */
int raft_transport_queue (raft_transport_t *self, const char *peer_id,
                          const void *data, size_t size);

/*  Sends every peer's queued messages, one batch per peer, without
    blocking.  Returns the number of batches sent.  */
int raft_transport_flush (raft_transport_t *self);

/*  Receives one inbound batch without blocking.  Returns the number of
    messages, with the sender's id in *from_p and the messages in *batch_p
    (a zmsg_t of one frame per message, the caller's); 0 when nothing is
    waiting; a negative errno for a malformed batch (-EPROTO) or one over
    the batch limits (-EMSGSIZE), dropped and counted.  */
int raft_transport_recv (raft_transport_t *self, char **from_p,
                         zmsg_t **batch_p);

/*  Current counters.  */
raft_transport_stats_t raft_transport_stats (raft_transport_t *self);

#endif
