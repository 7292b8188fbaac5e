/*  The bus router: the ROUTER side of a node's inproc bus.

    Every message arrives as [sender][to][from][type][kind+corr][payload].
    The router checks the frames, overwrites `from` with the sender's real
    routing id and forwards the rest to the module named by `to` (or hands
    it to admin.c when `to` is "kernel").  The ROUTER runs with
    ZMQ_ROUTER_MANDATORY and every send is non-blocking, so a message that
    cannot be delivered comes back as an error instead of vanishing:

    - Per-destination queue.  A message for a module that is not connected
      (starting, restarting) or whose pipe is full, and a request or event
      for a module that is stopping, is held in that module's queue, in
      arrival order, and sent when the module says bus.hello (or when its
      pipe has room again).  Once a queue is not
      empty, later messages for that module queue behind it, so the order
      of each sender's messages is kept.
    - Request tracking.  A copy of every delivered request is kept until
      the reply with the same (requester, correlation id) passes back.  If
      the module's incarnation ends first, the copies go back to the front
      of its queue and are delivered to the next incarnation.
    - Overflow.  A queue holds at most kernel/queue_limit messages.  A
      request that does not fit is answered at once with a reply (from the
      destination's name, same type and id) whose payload is an AdminReply
      {code UNAVAILABLE, message}; every reply message of proto/bus.proto
      starts with the same two fields, so the requester decodes it with the
      reply type it expects.  Events and replies that do not fit are
      dropped with a logged warning and counted.  A request for a module
      that failed for good is answered the same way; a request for a name
      that is neither a module nor a connected client gets UNIMPLEMENTED.
*/
#include "kernel.h"
#include "bus.pb-c.h"

#include <string.h>

#define KIND_FRAME_SIZE 9

/*  Kind and correlation id of a kind frame.  */
static void
s_kind_corr (zframe_t *frame, int *kind, uint64_t *corr)
{
    const byte *data = zframe_data (frame);
    *kind = data [0];
    uint64_t value = 0;
    for (int i = 1; i < KIND_FRAME_SIZE; i++)
        value = (value << 8) | data [i];
    *corr = value;
}

/*  A frame as a NUL-terminated name; false if empty, too long or holding
    a NUL byte.  */
static bool
s_frame_name (zframe_t *frame, char *name)
{
    size_t size = zframe_size (frame);
    if (size == 0 || size > TITAN_BUS_NAME_MAX
    ||  memchr (zframe_data (frame), '\0', size))
        return false;
    memcpy (name, zframe_data (frame), size);
    name [size] = '\0';
    return true;
}

/*  Sends [identity][frames of msg...] on the ROUTER without blocking; the
    message stays the caller's.  The frames are handed to ZeroMQ as
    references to their messages (zframe_send with ZFRAME_REUSE: a payload
    longer than ZeroMQ's inline size is reference-counted, not copied), so
    forwarding and keeping a tracked copy cost no memcpy of the payload.
    Returns 0, -EHOSTUNREACH (no such peer) or -EAGAIN (its pipe is
    full).  */
static int
s_send (titan_node_t *node, const char *identity, zmsg_t *msg)
{
    void *handle = zsock_resolve (node->router);
    if (zmq_send (handle, identity, strlen (identity),
                  ZMQ_DONTWAIT | ZMQ_SNDMORE) < 0)
        return -zmq_errno ();
    size_t count = zmsg_size (msg), index = 0;
    for (zframe_t *frame = zmsg_first (msg); frame; frame = zmsg_next (msg)) {
        int flags = ZFRAME_REUSE | ZFRAME_DONTWAIT
                  | (++index < count ? ZFRAME_MORE : 0);
        /* Parts after the first are always accepted. */
        zframe_t *ref = frame;
        if (zframe_send (&ref, node->router, flags) != 0)
            return -zmq_errno ();
    }
    return 0;
}

static void
s_inflight_key (char *key, size_t size, zmsg_t *msg)
{
    zframe_t *from = zmsg_first (msg);
    from = zmsg_next (msg);
    zframe_t *type = zmsg_next (msg);
    zframe_t *kc = zmsg_next (msg);
    (void) type;
    int kind;
    uint64_t corr;
    s_kind_corr (kc, &kind, &corr);
    snprintf (key, size, "%.*s/%016" PRIx64, (int) zframe_size (from),
              (const char *) zframe_data (from), corr);
}

/*  Keeps the copy of a delivered request; takes ownership.  */
static void
s_track (titan_node_t *node, titan_kmodule_t *m, zmsg_t *msg)
{
    char key [TITAN_BUS_NAME_MAX + 24];
    s_inflight_key (key, sizeof key, msg);
    if ((int64_t) zlistx_size (m->inflight) >= node->queue_limit) {
        zmsg_t *oldest = (zmsg_t *) zlistx_first (m->inflight);
        char old_key [TITAN_BUS_NAME_MAX + 24];
        s_inflight_key (old_key, sizeof old_key, oldest);
        zhashx_delete (m->inflight_index, old_key);
        zlistx_delete (m->inflight, zlistx_cursor (m->inflight));
        titan_klog_warning (node, "module %s has %" PRId64 " unanswered "
                           "requests; no longer tracking %s",
                           m->name, node->queue_limit, old_key);
    }
    void *handle = zlistx_add_end (m->inflight, msg);
    void *previous = zhashx_lookup (m->inflight_index, key);
    if (previous) {
        /* A re-sent duplicate: keep one copy only. */
        zlistx_delete (m->inflight, previous);
    }
    zhashx_update (m->inflight_index, key, handle);
}

/*  The reply (requester, corr) from module `m` passed: forget the copy.  */
static void
s_untrack (titan_kmodule_t *m, const char *requester, uint64_t corr)
{
    char key [TITAN_BUS_NAME_MAX + 24];
    snprintf (key, sizeof key, "%s/%016" PRIx64, requester, corr);
    void *handle = zhashx_lookup (m->inflight_index, key);
    if (handle) {
        zlistx_delete (m->inflight, handle);
        zhashx_delete (m->inflight_index, key);
    }
}

titan_kmodule_t *
titan_node_find (titan_node_t *node, const char *name, size_t len)
{
    for (size_t i = 0; i < node->count; i++) {
        titan_kmodule_t *m = node->modules [i];
        if (strlen (m->name) == len && memcmp (m->name, name, len) == 0)
            return m;
    }
    return NULL;
}

/*  Builds [to][from][type][kc REPLY corr][payload].  */
static zmsg_t *
s_reply_msg (const char *to, const char *from, const char *type,
             uint64_t corr, const void *payload, size_t size)
{
    titan_envelope_t *env = titan_envelope_new (to, type, TITAN_MSG_REPLY,
                                                corr, payload, size);
    if (!env)
        return NULL;
    snprintf (env->from, sizeof env->from, "%s", from);
    return titan_envelope_encode (&env);
}

/*  Sends a message the kernel made to `to`: through the module's queue
    when `to` is a module, else straight to the connected client.  */
static void
s_send_made (titan_node_t *node, const char *to, zmsg_t **msg_p)
{
    titan_kmodule_t *m = titan_node_find (node, to, strlen (to));
    if (m) {
        titan_router_deliver (node, m, msg_p);
        return;
    }
    int rc = s_send (node, to, *msg_p);
    if (rc)
        titan_klog_warning (node, "reply to %s dropped: %s", to,
                           zmq_strerror (-rc));
    zmsg_destroy (msg_p);
}

void
titan_router_error_reply (titan_node_t *node, const char *requester,
                          const char *from, const char *type, uint64_t corr,
                          int code, const char *message)
{
    Titan__Bus__AdminReply reply = TITAN__BUS__ADMIN_REPLY__INIT;
    reply.code = (Titan__Bus__Code) code;
    reply.message = (char *) message;
    size_t size = titan__bus__admin_reply__get_packed_size (&reply);
    uint8_t *buffer = (uint8_t *) malloc (size ? size : 1);
    if (!buffer)
        return;
    titan__bus__admin_reply__pack (&reply, buffer);
    zmsg_t *msg = s_reply_msg (requester, from, type, corr, buffer, size);
    free (buffer);
    if (msg)
        s_send_made (node, requester, &msg);
}

void
titan_router_kernel_reply (titan_node_t *node, const char *requester,
                           const char *type, uint64_t corr,
                           const void *payload, size_t size)
{
    zmsg_t *msg = s_reply_msg (requester, TITAN_KERNEL_NAME, type, corr,
                               payload, size);
    if (msg)
        s_send_made (node, requester, &msg);
}

/*  Handles a message that cannot be held: answers a request, logs the
    rest.  Takes ownership.  */
static void
s_refuse (titan_node_t *node, titan_kmodule_t *m, zmsg_t **msg_p, int code,
          const char *why)
{
    zmsg_t *msg = *msg_p;
    *msg_p = NULL;
    zframe_t *to = zmsg_first (msg);
    zframe_t *from = zmsg_next (msg);
    zframe_t *type = zmsg_next (msg);
    zframe_t *kc = zmsg_next (msg);
    char to_name [TITAN_BUS_NAME_MAX + 1] = "?";
    char from_name [TITAN_BUS_NAME_MAX + 1] = "?";
    char type_name [TITAN_BUS_NAME_MAX + 1] = "?";
    s_frame_name (to, to_name);
    s_frame_name (from, from_name);
    s_frame_name (type, type_name);
    int kind;
    uint64_t corr;
    s_kind_corr (kc, &kind, &corr);
    zmsg_destroy (&msg);
    if (m)
        m->dropped++;
    if (kind == TITAN_MSG_REQUEST && strcmp (from_name, TITAN_KERNEL_NAME)) {
        char text [256];
        snprintf (text, sizeof text, "%s: %s", to_name, why);
        titan_router_error_reply (node, from_name, to_name, type_name, corr,
                                  code, text);
    }
    else
        titan_klog_warning (node, "dropped %s %s from %s to %s: %s",
                           kind == TITAN_MSG_EVENT ? "event" : "reply",
                           type_name, from_name, to_name, why);
}

void
titan_router_deliver (titan_node_t *node, titan_kmodule_t *m, zmsg_t **msg_p)
{
    zmsg_t *msg = *msg_p;
    if (m->state == TITAN_MODULE_FAILED) {
        s_refuse (node, m, msg_p, TITAN__BUS__CODE__UNAVAILABLE,
                  "module failed and is not restarted");
        return;
    }
    int kind;
    uint64_t corr;
    zframe_t *kc = zmsg_first (msg);
    for (int i = 0; i < 3; i++)
        kc = zmsg_next (msg);
    s_kind_corr (kc, &kind, &corr);
    /* A stopping module gets only replies (to what it asks while it
       drains), at once: what is held waits for its next incarnation
       anyway, so no order is broken.  Requests and events wait, since it
       may exit without reading them and events are not tracked. */
    bool sendable = m->connected
        && (m->state == TITAN_MODULE_STOPPING ? kind == TITAN_MSG_REPLY
                                              : zlistx_size (m->held) == 0);
    if (sendable) {
        int rc = s_send (node, m->name, msg);
        if (rc == 0) {
            if (kind == TITAN_MSG_REQUEST)
                s_track (node, m, msg);
            else
                zmsg_destroy (&msg);
            *msg_p = NULL;
            return;
        }
        if (rc == -EHOSTUNREACH)
            m->connected = false;       /* its DEALER is gone */
    }
    if ((int64_t) zlistx_size (m->held) >= node->queue_limit) {
        char why [128];
        snprintf (why, sizeof why, "queue full (%zu messages held while "
                  "the module is %s)", zlistx_size (m->held),
                  titan_module_state_name (m->state));
        s_refuse (node, m, msg_p, TITAN__BUS__CODE__UNAVAILABLE, why);
        return;
    }
    zlistx_add_end (m->held, msg);
    *msg_p = NULL;
}

void
titan_router_drain (titan_node_t *node, titan_kmodule_t *m)
{
    while (m->connected && m->state != TITAN_MODULE_STOPPING
    &&     zlistx_size (m->held)) {
        zmsg_t *msg = (zmsg_t *) zlistx_first (m->held);
        int rc = s_send (node, m->name, msg);
        if (rc == -EAGAIN)
            return;                     /* retried on the next loop turn */
        if (rc) {
            m->connected = false;
            return;
        }
        msg = (zmsg_t *) zlistx_detach (m->held, NULL);
        zframe_t *kc = zmsg_first (msg);
        for (int i = 0; i < 3; i++)
            kc = zmsg_next (msg);
        int kind;
        uint64_t corr;
        s_kind_corr (kc, &kind, &corr);
        if (kind == TITAN_MSG_REQUEST)
            s_track (node, m, msg);
        else
            zmsg_destroy (&msg);
    }
}

void
titan_router_module_gone (titan_node_t *node, titan_kmodule_t *m)
{
    (void) node;
    m->connected = false;
    /* Unanswered requests go back to the front, oldest first: take them
       from the newest and push each in front of the queue. */
    while (zlistx_size (m->inflight)) {
        zlistx_last (m->inflight);
        zmsg_t *msg = (zmsg_t *) zlistx_detach (m->inflight,
                                                zlistx_cursor (m->inflight));
        zlistx_add_start (m->held, msg);
    }
    zhashx_purge (m->inflight_index);
}

void
titan_router_fail_held (titan_node_t *node, titan_kmodule_t *m)
{
    zmsg_t *msg;
    while ((msg = (zmsg_t *) zlistx_detach (m->held, NULL)))
        s_refuse (node, m, &msg, TITAN__BUS__CODE__UNAVAILABLE,
                  "module failed and is not restarted");
    while ((msg = (zmsg_t *) zlistx_detach (m->inflight, NULL)))
        s_refuse (node, m, &msg, TITAN__BUS__CODE__UNAVAILABLE,
                  "module failed before answering");
    zhashx_purge (m->inflight_index);
}

void
titan_router_on_message (titan_node_t *node, zmsg_t **msg_p)
{
    zmsg_t *msg = *msg_p;
    *msg_p = NULL;
    char sender [TITAN_BUS_NAME_MAX + 1];
    char to [TITAN_BUS_NAME_MAX + 1];
    zframe_t *id = zmsg_first (msg);
    if (zmsg_size (msg) != 6 || !s_frame_name (id, sender)) {
        titan_klog_warning (node, "dropped a malformed bus message "
                           "(%zu frames)", zmsg_size (msg));
        zmsg_destroy (&msg);
        return;
    }
    zframe_t *to_frame = zmsg_next (msg);
    zframe_t *from_frame = zmsg_next (msg);
    zframe_t *type_frame = zmsg_next (msg);
    zframe_t *kc = zmsg_next (msg);
    /* the same checks as titan_envelope_decode, so that nothing is routed
       that its receiver would drop unanswered */
    char type [TITAN_BUS_NAME_MAX + 1];
    if (!s_frame_name (to_frame, to) || !s_frame_name (type_frame, type)
    ||  zframe_size (kc) != KIND_FRAME_SIZE
    ||  zframe_data (kc) [0] > TITAN_MSG_REPLY) {
        titan_klog_warning (node, "dropped a malformed bus message from %s",
                           sender);
        zmsg_destroy (&msg);
        return;
    }
    /* The sender cannot lie about who it is. */
    zframe_reset (from_frame, sender, strlen (sender));
    zmsg_remove (msg, id);
    zframe_destroy (&id);

    if (strcmp (to, TITAN_KERNEL_NAME) == 0) {
        titan_admin_on_message (node, sender, &msg);
        return;
    }
    int kind;
    uint64_t corr;
    s_kind_corr (kc, &kind, &corr);
    if (kind == TITAN_MSG_REPLY) {
        titan_kmodule_t *replier = titan_node_find (node, sender,
                                                    strlen (sender));
        if (replier)
            s_untrack (replier, to, corr);
    }
    titan_kmodule_t *m = titan_node_find (node, to, strlen (to));
    if (m) {
        titan_router_deliver (node, m, &msg);
        return;
    }
    /* Not a module: a client socket connected under its own name.  While
       anything is held for it, later messages queue behind (order). */
    zlistx_t *held = (zlistx_t *) zhashx_lookup (node->client_held, to);
    int rc = held ? -EAGAIN : s_send (node, to, msg);
    if (rc == 0) {
        zmsg_destroy (&msg);
        return;
    }
    if (rc == -EAGAIN) {
        if (!held) {
            held = zlistx_new ();
            assert (held);
            zlistx_set_destructor (held, (zlistx_destructor_fn *) zmsg_destroy);
            zhashx_insert (node->client_held, to, held);
        }
        if ((int64_t) zlistx_size (held) < node->queue_limit) {
            zlistx_add_end (held, msg);
            return;
        }
    }
    char why [160];
    snprintf (why, sizeof why, "no module or client of that name on the "
              "bus of node %s (%s)", node->id, zmq_strerror (-rc));
    s_refuse (node, NULL, &msg, rc == -EHOSTUNREACH
              ? TITAN__BUS__CODE__UNIMPLEMENTED : TITAN__BUS__CODE__UNAVAILABLE,
              why);
}

bool
titan_router_drain_clients (titan_node_t *node)
{
    zlistx_t *held = (zlistx_t *) zhashx_first (node->client_held);
    while (held) {
        const char *name = (const char *) zhashx_cursor (node->client_held);
        int rc = 0;
        zmsg_t *msg;
        while ((msg = (zmsg_t *) zlistx_first (held))
        &&     (rc = s_send (node, name, msg)) == 0)
            zlistx_delete (held, zlistx_cursor (held));
        if (rc && rc != -EAGAIN)
            titan_klog_warning (node, "bus client %s is gone; dropped %zu "
                               "messages held for it", name,
                               zlistx_size (held));
        if (rc != -EAGAIN) {
            /* Emptied, or its owner disconnected: forget it.  Deleting the
               current item restarts the iteration, which is harmless. */
            zhashx_delete (node->client_held, name);
            held = (zlistx_t *) zhashx_first (node->client_held);
            continue;
        }
        held = (zlistx_t *) zhashx_next (node->client_held);
    }
    return zhashx_size (node->client_held) > 0;
}
