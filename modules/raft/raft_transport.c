/*  Raft peer transport over ZeroMQ TCP: see raft_transport.h.

    Outbound: a DEALER per peer with ZMQ_IMMEDIATE, so nothing queues
    towards a peer that is not connected (Raft re-sends what matters; stale
    bursts after a reconnect would only cost bandwidth), and a send timeout
    of zero, so a slow peer never blocks the raft thread.  ZeroMQ reconnects
    by itself after a peer restarts.  Inbound: one ROUTER; the first frame
    is the connection's routing id (ignored), the second the sender's node
    id, then the messages.
*/
#include "raft_transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#define PEER_ID_MAX          63
#define PEER_QUEUE_MAX_MSGS  4096
#define PEER_QUEUE_MAX_BYTES (64u << 20)

typedef struct {
    char id [PEER_ID_MAX + 1];
    char *endpoint;              /* tcp://host:port */
    zsock_t *dealer;
    zmsg_t *queued;              /* frames waiting for the next flush */
    size_t queued_bytes;
} s_peer_t;

struct raft_transport {
    char self_id [PEER_ID_MAX + 1];
    zsock_t *router;
    zhashx_t *peers;             /* id -> s_peer_t */
    raft_curve_t *curve;         /* borrowed; NULL: plain TCP */
    raft_transport_stats_t stats;
};

static void
s_peer_destroy (s_peer_t **self_p)
{
    if (*self_p) {
        s_peer_t *self = *self_p;
        zsock_destroy (&self->dealer);
        zmsg_destroy (&self->queued);
        free (self->endpoint);
        free (self);
        *self_p = NULL;
    }
}

static void
s_peer_destructor (void **item)
{
    s_peer_destroy ((s_peer_t **) item);
}

/*  Checks "host:port" and returns a new "tcp://host:port", or NULL.  */
static char *
s_endpoint_from_addr (const char *addr)
{
    const char *colon = addr ? strrchr (addr, ':') : NULL;
    if (!colon || colon == addr || colon [1] == '\0')
        return NULL;
    char *end = NULL;
    long port = strtol (colon + 1, &end, 10);
    if (*end != '\0' || port <= 0 || port > 65535)
        return NULL;
    return zsys_sprintf ("tcp://%s", addr);
}

/*  Returns the endpoint to listen on for "host:port": the address itself
    when host is a numeric IP or "*", else every interface at PORT — ZeroMQ cannot
    bind a host name, and a node advertised by name (a container's service
    name) must listen on every interface to be reached by it.  NULL when
    the address is malformed.  */
static char *
s_bind_endpoint (const char *addr)
{
    char *endpoint = s_endpoint_from_addr (addr);
    if (!endpoint)
        return NULL;
    const char *colon = strrchr (addr, ':');
    size_t host_len = (size_t) (colon - addr);
    char host [64];
    if (host_len >= sizeof host)
        host_len = sizeof host - 1;
    memcpy (host, addr, host_len);
    host [host_len] = '\0';
    if (host [0] == '[' && host_len > 1 && host [host_len - 1] == ']') {
        memmove (host, host + 1, host_len - 2);
        host [host_len - 2] = '\0';
    }
    unsigned char ip [16];
    if (streq (host, "*") || inet_pton (AF_INET, host, ip) == 1
    ||  inet_pton (AF_INET6, host, ip) == 1)
        return endpoint;
    free (endpoint);
    return zsys_sprintf ("tcp://*:%s", colon + 1);
}

static bool
s_valid_id (const char *id)
{
    size_t len = id ? strlen (id) : 0;
    return len > 0 && len <= PEER_ID_MAX;
}

int
raft_transport_new (const char *self_id, const char *bind_addr,
                    size_t max_message_bytes, raft_transport_t **self_p,
                    char *err, size_t err_size)
{
    return raft_transport_new_curve (self_id, bind_addr, max_message_bytes,
                                     NULL, self_p, err, err_size);
}

int
raft_transport_new_curve (const char *self_id, const char *bind_addr,
                          size_t max_message_bytes, raft_curve_t *curve,
                          raft_transport_t **self_p, char *err,
                          size_t err_size)
{
    *self_p = NULL;
    if (!s_valid_id (self_id)) {
        snprintf (err, err_size, "raft transport: node id '%s' must be 1..%d bytes",
                  self_id ? self_id : "", PEER_ID_MAX);
        return -EINVAL;
    }
    char *endpoint = s_bind_endpoint (bind_addr);
    if (!endpoint) {
        snprintf (err, err_size, "raft transport: peer address '%s' is not host:port",
                  bind_addr ? bind_addr : "");
        return -EINVAL;
    }
    raft_transport_t *self = (raft_transport_t *) zmalloc (sizeof (*self));
    snprintf (self->self_id, sizeof self->self_id, "%s", self_id);
    self->curve = curve;
    self->peers = zhashx_new ();
    zhashx_set_destructor (self->peers, s_peer_destructor);
    self->router = zsock_new (ZMQ_ROUTER);
    if (!self->router) {
        free (endpoint);
        raft_transport_destroy (&self);
        snprintf (err, err_size, "raft transport: cannot create socket: %s",
                  zmq_strerror (zmq_errno ()));
        return -ENOMEM;
    }
    zsock_set_maxmsgsize (self->router, (int64_t) max_message_bytes);
    zsock_set_rcvhwm (self->router, 10000);
    zsock_set_linger (self->router, 0);
    if (self->curve)
        raft_curve_apply_server (self->curve, self->router);
    if (zsock_bind (self->router, "%s", endpoint) < 0) {
        int code = zmq_errno ();
        snprintf (err, err_size, "raft transport: cannot listen on %s: %s",
                  bind_addr, zmq_strerror (code));
        free (endpoint);
        raft_transport_destroy (&self);
        return code ? -code : -EADDRINUSE;
    }
    free (endpoint);
    *self_p = self;
    return 0;
}

void
raft_transport_destroy (raft_transport_t **self_p)
{
    if (*self_p) {
        raft_transport_t *self = *self_p;
        zhashx_destroy (&self->peers);
        zsock_destroy (&self->router);
        free (self);
        *self_p = NULL;
    }
}

zsock_t *
raft_transport_sock (raft_transport_t *self)
{
    return self->router;
}

int
raft_transport_set_peer (raft_transport_t *self, const char *peer_id,
                         const char *addr)
{
    if (!s_valid_id (peer_id))
        return -EINVAL;
    char *endpoint = s_endpoint_from_addr (addr);
    if (!endpoint)
        return -EINVAL;
    s_peer_t *peer = (s_peer_t *) zhashx_lookup (self->peers, peer_id);
    if (peer && streq (peer->endpoint, endpoint)) {
        free (endpoint);
        return 0;
    }
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    if (!dealer) {
        free (endpoint);
        return -ENOMEM;
    }
    zsock_set_immediate (dealer, 1);
    zsock_set_sndtimeo (dealer, 0);
    zsock_set_sndhwm (dealer, 1000);
    zsock_set_linger (dealer, 0);
    zsock_set_reconnect_ivl (dealer, 100);
    zsock_set_reconnect_ivl_max (dealer, 1000);
    if (self->curve)
        raft_curve_apply_client (self->curve, dealer);
    if (zsock_connect (dealer, "%s", endpoint) < 0) {
        zsock_destroy (&dealer);
        free (endpoint);
        return -EINVAL;
    }
    if (peer) {                 /* address changed: replace the connection */
        zsock_destroy (&peer->dealer);
        free (peer->endpoint);
    }
    else {
        peer = (s_peer_t *) zmalloc (sizeof (*peer));
        snprintf (peer->id, sizeof peer->id, "%s", peer_id);
        peer->queued = zmsg_new ();
        zhashx_insert (self->peers, peer_id, peer);
    }
    peer->dealer = dealer;
    peer->endpoint = endpoint;
    return 0;
}

void
raft_transport_remove_peer (raft_transport_t *self, const char *peer_id)
{
    zhashx_delete (self->peers, peer_id);
}

int
raft_transport_queue (raft_transport_t *self, const char *peer_id,
                      const void *data, size_t size)
{
    s_peer_t *peer = (s_peer_t *) zhashx_lookup (self->peers, peer_id);
    if (!peer) {
        self->stats.batches_dropped++;
        return -ENOENT;
    }
    if (zmsg_size (peer->queued) >= PEER_QUEUE_MAX_MSGS
    ||  peer->queued_bytes + size > PEER_QUEUE_MAX_BYTES)
        return -ENOBUFS;
    zmsg_addmem (peer->queued, data, size);
    peer->queued_bytes += size;
    return 0;
}

int
raft_transport_flush (raft_transport_t *self)
{
    int sent = 0;
    s_peer_t *peer = (s_peer_t *) zhashx_first (self->peers);
    while (peer) {
        size_t count = zmsg_size (peer->queued);
        if (count > 0) {
            zmsg_t *batch = peer->queued;
            peer->queued = zmsg_new ();
            peer->queued_bytes = 0;
            zmsg_pushstr (batch, self->self_id);
            if (zmsg_send (&batch, peer->dealer) == 0) {
                self->stats.batches_sent++;
                self->stats.messages_sent += count;
                sent++;
            }
            else {
                zmsg_destroy (&batch);
                self->stats.batches_dropped++;
            }
        }
        peer = (s_peer_t *) zhashx_next (self->peers);
    }
    return sent;
}

/*  Receives the rest of a multipart message frame by frame, keeping at
    most what a sender may put in one batch (PEER_QUEUE_MAX_MSGS messages,
    PEER_QUEUE_MAX_BYTES bytes) after the routing id and sender frames.
    ZMQ_MAXMSGSIZE bounds each frame but not their number, so the count
    and the total are checked here before anything more is kept; the
    frames of an oversized batch are read and freed one at a time.
    `first` is the message's first frame, already received (taken).
    Returns the message, or NULL with *oversized set (or on interrupt). */
static zmsg_t *
s_recv_bounded (raft_transport_t *self, zframe_t *first, bool *oversized)
{
    zmsg_t *msg = zmsg_new ();
    if (!msg) {
        zframe_destroy (&first);
        return NULL;
    }
    size_t bytes = 0;
    bool more = true;
    *oversized = false;
    while (more) {
        zframe_t *frame = first ? first : zframe_recv (self->router);
        first = NULL;
        if (!frame) {
            zmsg_destroy (&msg);
            return NULL;
        }
        more = zframe_more (frame);
        bytes += zframe_size (frame);
        if (*oversized || zmsg_size (msg) >= PEER_QUEUE_MAX_MSGS + 2
        ||  bytes > PEER_QUEUE_MAX_BYTES + 2 * (PEER_ID_MAX + 256)) {
            *oversized = true;
            zframe_destroy (&frame);
        }
        else
            zmsg_append (msg, &frame);
    }
    if (*oversized)
        zmsg_destroy (&msg);
    return msg;
}

int
raft_transport_recv (raft_transport_t *self, char **from_p, zmsg_t **batch_p)
{
    *from_p = NULL;
    *batch_p = NULL;
    /* A receive without wait rather than zsock_events first: ZMQ_EVENTS
       costs a fork check and a poll (two system calls) per batch. */
    zframe_t *first = zframe_recv_nowait (self->router);
    if (!first)
        return 0;
    bool oversized = false;
    zmsg_t *msg = s_recv_bounded (self, first, &oversized);
    if (oversized) {
        self->stats.batches_malformed++;
        return -EMSGSIZE;
    }
    if (!msg)
        return 0;
    zframe_t *routing_id = zmsg_pop (msg);
    zframe_t *sender = zmsg_pop (msg);
    /* with CURVE, zauth reports the client's public key as User-Id on
       the frames that came from the peer (not on the routing id) */
    const char *bound = NULL;
    if (self->curve && sender) {
        const char *key = zframe_meta (sender, "User-Id");
        bound = key ? raft_curve_node_of (self->curve, key) : NULL;
    }
    size_t sender_size = sender ? zframe_size (sender) : 0;
    if (sender_size == 0 || sender_size > PEER_ID_MAX || zmsg_size (msg) == 0
    ||  memchr (zframe_data (sender), '\0', sender_size)) {
        zframe_destroy (&routing_id);
        zframe_destroy (&sender);
        zmsg_destroy (&msg);
        self->stats.batches_malformed++;
        return -EPROTO;
    }
    if (bound && !zframe_streq (sender, bound)) {
        zframe_destroy (&routing_id);
        zframe_destroy (&sender);
        zmsg_destroy (&msg);
        self->stats.batches_forged++;
        return -EPERM;
    }
    zframe_destroy (&routing_id);
    *from_p = zframe_strdup (sender);
    zframe_destroy (&sender);
    int count = (int) zmsg_size (msg);
    self->stats.batches_received++;
    self->stats.messages_received += (uint64_t) count;
    *batch_p = msg;
    return count;
}

raft_transport_stats_t
raft_transport_stats (raft_transport_t *self)
{
    return self->stats;
}
