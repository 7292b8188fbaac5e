/*  A Titan-KV node: the microkernel as a library object.

    titan_node_new validates the config and resolves every module file;
    titan_node_start creates the data directory and the node's thread (a
    CZMQ actor), which binds the ROUTER bus, starts the modules one by one
    in config order (each must signal ready before the next starts) and
    then signals the caller.  From then on the thread polls the ROUTER, its
    own pipe and every module's pipe: it routes envelopes (router.c),
    answers the kernel's own messages (admin.c) and supervises the modules
    (supervisor.c).  titan_node_destroy sends $TERM to the thread, which
    stops the modules in reverse order, each with $TERM so that it drains
    and closes its files, serving the bus meanwhile so that a draining
    module can still talk to the others, and then returns.

    No state is global: the node's endpoint carries its id, and everything
    lives in the titan_node_t, so several nodes run in one process.  */
#include "kernel.h"
#include "node_config.h"
#include "titan/status.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

static void
s_err (char *err, size_t err_size, const char *format, ...)
{
    if (!err || err_size == 0)
        return;
    va_list args;
    va_start (args, format);
    vsnprintf (err, err_size, format, args);
    va_end (args);
}

const char *
titan_module_state_name (titan_module_state_t state)
{
    switch (state) {
        case TITAN_MODULE_STOPPED:    return "stopped";
        case TITAN_MODULE_STARTING:   return "starting";
        case TITAN_MODULE_RUNNING:    return "running";
        case TITAN_MODULE_STOPPING:   return "stopping";
        case TITAN_MODULE_RESTARTING: return "restarting";
        case TITAN_MODULE_FAILED:     return "failed";
    }
    return "unknown";
}

static void
s_module_destroy (titan_kmodule_t **m_p)
{
    if (*m_p) {
        titan_kmodule_t *m = *m_p;
        if (m->held && zlistx_size (m->held))
            titan_klog_warning (m->node, "module %s: %zu held messages "
                               "dropped at shutdown", m->name,
                               zlistx_size (m->held));
        zlistx_destroy (&m->held);
        zlistx_destroy (&m->inflight);
        zhashx_destroy (&m->inflight_index);
        free (m);
        *m_p = NULL;
    }
}

static titan_kmodule_t *
s_module_new (titan_node_t *node, zconfig_t *item, char *err, size_t err_size)
{
    titan_kmodule_t *m = (titan_kmodule_t *) zmalloc (sizeof *m);
    if (!m)
        return NULL;
    m->node = node;
    snprintf (m->name, sizeof m->name, "%s", zconfig_name (item));
    m->settings = item;
    char fallback [TITAN_BUS_NAME_MAX + 16];
    snprintf (fallback, sizeof fallback, "titan_%s.so", m->name);
    snprintf (m->spec, sizeof m->spec, "%s",
              zconfig_get (item, "path", fallback));
    m->held = zlistx_new ();
    m->inflight = zlistx_new ();
    m->inflight_index = zhashx_new ();
    if (!m->held || !m->inflight || !m->inflight_index) {
        s_module_destroy (&m);
        return NULL;
    }
    zlistx_set_destructor (m->held, (zlistx_destructor_fn *) zmsg_destroy);
    zlistx_set_destructor (m->inflight, (zlistx_destructor_fn *) zmsg_destroy);
    char reason [PATH_MAX + 256];
    if (titan_loader_find (m->spec, node->module_path, m->file, sizeof m->file,
                           reason, sizeof reason) != 0) {
        s_err (err, err_size, "modules/%s/path: %s", m->name, reason);
        s_module_destroy (&m);
        return NULL;
    }
    return m;
}

titan_node_t *
titan_node_new (zconfig_t **config_p, char *err, size_t err_size)
{
    assert (config_p);
    zconfig_t *config = *config_p;
    *config_p = NULL;
    if (!config) {
        s_err (err, err_size, "no config");
        return NULL;
    }
    if (titan_config_fill_defaults (config) != 0
    ||  titan_config_validate (config, NULL, err, err_size) != 0) {
        zconfig_destroy (&config);
        return NULL;
    }
    titan_node_t *self = (titan_node_t *) zmalloc (sizeof *self);
    if (!self) {
        zconfig_destroy (&config);
        s_err (err, err_size, "out of memory");
        return NULL;
    }
    self->config = config;
    snprintf (self->id, sizeof self->id, "%s",
              zconfig_get (config, "node/id", "node1"));
    snprintf (self->endpoint, sizeof self->endpoint,
              "inproc://titan-%s-bus", self->id);
    int level = TITAN_LOG_DEFAULT_LEVEL;        /* validated above */
    titan_log_level_parse (zconfig_get (config, "node/log_level", "info"), &level);
    titan_logger_init (&self->log, self->id, level);
    self->data_dir = zconfig_get (config, "node/data_dir", "./data");
    self->client_addr = zconfig_get (config, "node/client_addr", "");
    self->peer_addr = zconfig_get (config, "node/peer_addr", "");
    self->module_path = zconfig_get (config, "node/module_path", NULL);
    atomic_init (&self->start_status, 1);

    self->ping_interval = titan_config_kernel_int (config, "ping_interval_ms",
        TITAN_DEFAULT_PING_INTERVAL_MS);
    self->ping_timeout = titan_config_kernel_int (config, "ping_timeout_ms",
        TITAN_DEFAULT_PING_TIMEOUT_MS);
    self->start_timeout = titan_config_kernel_int (config, "start_timeout_ms",
        TITAN_DEFAULT_START_TIMEOUT_MS);
    self->stop_timeout = titan_config_kernel_int (config, "stop_timeout_ms",
        TITAN_DEFAULT_STOP_TIMEOUT_MS);
    self->restart_max = titan_config_kernel_int (config, "restart_max",
        TITAN_DEFAULT_RESTART_MAX);
    self->backoff = titan_config_kernel_int (config, "restart_backoff_ms",
        TITAN_DEFAULT_RESTART_BACKOFF_MS);
    self->backoff_max = titan_config_kernel_int (config,
        "restart_backoff_max_ms", TITAN_DEFAULT_RESTART_BACKOFF_MAX_MS);
    self->queue_limit = titan_config_kernel_int (config, "queue_limit",
        TITAN_DEFAULT_QUEUE_LIMIT);

    self->abandoned = zlistx_new ();
    self->client_held = zhashx_new ();
    if (self->client_held)
        zhashx_set_destructor (self->client_held,
                               (zhashx_destructor_fn *) zlistx_destroy);
    zconfig_t *modules = zconfig_locate (config, "modules");
    for (zconfig_t *item = zconfig_child (modules); item;
         item = zconfig_next (item))
        self->count++;
    self->modules = (titan_kmodule_t **) calloc (self->count,
                                                 sizeof *self->modules);
    if (!self->abandoned || !self->modules || !self->client_held) {
        s_err (err, err_size, "out of memory");
        titan_node_destroy (&self);
        return NULL;
    }
    size_t index = 0;
    for (zconfig_t *item = zconfig_child (modules); item;
         item = zconfig_next (item)) {
        self->modules [index] = s_module_new (self, item, err, err_size);
        if (!self->modules [index]) {
            titan_node_destroy (&self);
            return NULL;
        }
        index++;
    }
    return self;
}

/* ------------------------------------------------------------ sequence */

/*  Finishes the start sequence with `status` and wakes titan_node_start. */
static void
s_start_done (titan_node_t *node, int status)
{
    atomic_store (&node->start_status, status);
    zsock_signal (node->pipe, status == 0 ? 0 : 1);
}

/*  Starts module `cursor`, or finishes the start sequence.  */
static void
s_start_next (titan_node_t *node);

/*  Stops the last module that still runs; when none does, the stop
    sequence is over.  */
static void
s_shutdown_step (titan_node_t *node)
{
    for (size_t i = node->count; i-- > 0;) {
        titan_kmodule_t *m = node->modules [i];
        switch (m->state) {
            case TITAN_MODULE_STOPPING:
                return;                 /* wait for it */
            case TITAN_MODULE_RUNNING:
            case TITAN_MODULE_STARTING:
                titan_supervisor_stop (node, m, TITAN_AFTER_STAY);
                return;
            case TITAN_MODULE_RESTARTING:
                m->state = TITAN_MODULE_STOPPED;
                break;
            default:
                break;
        }
    }
    if (node->phase == TITAN_PHASE_SHUTDOWN) {
        if (atomic_load (&node->start_status) == 1) {
            /* stopping after a failed start */
            node->phase = TITAN_PHASE_FAILED;
            s_start_done (node, node->start_fail_status);
            if (node->terminated)
                node->phase = TITAN_PHASE_DONE;
        }
        else
            node->phase = TITAN_PHASE_DONE;
    }
}

static void
s_fail_start (titan_node_t *node, int status, const char *message)
{
    snprintf (node->start_error, sizeof node->start_error, "%s", message);
    node->start_fail_status = status;
    node->phase = TITAN_PHASE_SHUTDOWN;
    s_shutdown_step (node);
}

static void
s_start_next (titan_node_t *node)
{
    if (node->cursor >= node->count) {
        node->phase = TITAN_PHASE_RUNNING;
        titan_klog_info (node, "started %zu module(s) on %s", node->count,
                        node->endpoint);
        s_start_done (node, 0);
        return;
    }
    titan_kmodule_t *m = node->modules [node->cursor];
    int rc = titan_supervisor_start (node, m);
    if (rc) {
        m->state = TITAN_MODULE_FAILED;
        s_fail_start (node, rc, m->error);
    }
}

void
titan_node_on_module_ready (titan_node_t *node, titan_kmodule_t *m)
{
    titan_klog_info (node, "module %s ready (incarnation %u)", m->name,
                    m->incarnation - 1);
    char text [128];
    snprintf (text, sizeof text, "module %s running (incarnation %u)",
              m->name, m->incarnation - 1);
    titan_admin_complete (node, m, 0, text);
    if (node->phase == TITAN_PHASE_STARTING
    &&  node->modules [node->cursor] == m) {
        node->cursor++;
        s_start_next (node);
    }
    else
    if (node->phase == TITAN_PHASE_SHUTDOWN)
        s_shutdown_step (node);
}

void
titan_node_on_module_failed (titan_node_t *node, titan_kmodule_t *m)
{
    if (node->phase == TITAN_PHASE_STARTING)
        s_fail_start (node, TITAN_ECLOSED, m->error);
}

void
titan_node_on_module_stopped (titan_node_t *node, titan_kmodule_t *m)
{
    titan_klog_info (node, "module %s stopped", m->name);
    if (node->phase == TITAN_PHASE_SHUTDOWN)
        s_shutdown_step (node);
}

/* ------------------------------------------------------------ thread */

/*  Answers the API thread's commands: "STATE" name -> "state restarts" or
    "-1"; "$TERM" starts the stop sequence.  */
static void
s_on_api (titan_node_t *node)
{
    zmsg_t *msg = zmsg_recv (node->pipe);
    if (!msg)
        return;
    char *command = zmsg_popstr (msg);
    if (command && strcmp (command, "$TERM") == 0) {
        node->terminated = true;
        if (node->phase == TITAN_PHASE_STARTING) {
            node->start_fail_status = TITAN_ECLOSED;
            snprintf (node->start_error, sizeof node->start_error,
                      "node %s was destroyed while starting", node->id);
        }
        if (node->phase == TITAN_PHASE_RUNNING
        ||  node->phase == TITAN_PHASE_STARTING) {
            titan_klog_info (node, "stopping");
            node->phase = TITAN_PHASE_SHUTDOWN;
            s_shutdown_step (node);
        }
        else
        if (node->phase == TITAN_PHASE_FAILED)
            node->phase = TITAN_PHASE_DONE;
    }
    else
    if (command && strcmp (command, "STATE") == 0) {
        char *name = zmsg_popstr (msg);
        titan_kmodule_t *m = name ? titan_node_find (node, name, strlen (name))
                                  : NULL;
        if (m)
            zstr_sendf (node->pipe, "%d %u", (int) m->state, m->restarts);
        else
            zstr_send (node->pipe, "-1");
        zstr_free (&name);
    }
    zstr_free (&command);
    zmsg_destroy (&msg);
}

/*  How long a bus bind that finds its name in use is retried.  */
#define BUS_BIND_RETRY_MS 1000

/*  While the bus is busy, the modules' pipes (PONG, $EXITED, a ready
    signal: nothing that cannot wait a few milliseconds) are polled at most
    this often: each socket in a zmq_poll costs a ZMQ_EVENTS query (getpid
    and a poll, two system calls) every time, and a busy bus means a poll
    per burst of messages.  An idle bus waits on every socket.  */
#define PIPES_POLL_MS 5

static void
s_node_actor (zsock_t *pipe, void *args)
{
    titan_node_t *node = (titan_node_t *) args;
    node->pipe = pipe;
    pthread_setname_np (pthread_self (), "t:kernel");
    titan_log_bind (&node->log, "kernel");
    node->router = zsock_new (ZMQ_ROUTER);
    if (node->router) {
        zsock_set_router_mandatory (node->router, 1);
        zsock_set_router_handover (node->router, 1);
        zsock_set_sndhwm (node->router, 10000);
        zsock_set_rcvhwm (node->router, 0);   /* modules' sends never fail */
        zsock_set_linger (node->router, 0);
    }
    /* ZeroMQ releases an inproc name asynchronously: a node of the same id
       destroyed a moment ago (a restart within one process) may still hold
       it, so EADDRINUSE is retried briefly before it is an error. */
    int bound = node->router ? zsock_bind (node->router, "%s", node->endpoint) : -1;
    for (int64_t until = zclock_mono () + BUS_BIND_RETRY_MS;
         bound != 0 && node->router && zmq_errno () == EADDRINUSE
         && zclock_mono () < until; ) {
        zclock_sleep (20);
        bound = zsock_bind (node->router, "%s", node->endpoint);
    }
    if (bound != 0) {
        snprintf (node->start_error, sizeof node->start_error,
                  "cannot bind the bus at %s: %s (is another node with id "
                  "'%s' running in this process?)", node->endpoint,
                  zmq_strerror (zmq_errno ()), node->id);
        zsock_destroy (&node->router);
        s_start_done (node, -EADDRINUSE);
        char *term = zstr_recv (pipe);
        zstr_free (&term);
        return;
    }
    node->phase = TITAN_PHASE_STARTING;
    node->cursor = 0;
    node->poll_dirty = true;
    s_start_next (node);

    zmq_pollitem_t *items = NULL;
    titan_kmodule_t **owners = NULL;
    size_t nitems = 0;
    bool busy = false;                  /* the last wait found bus traffic */
    int64_t pipes_due = 0;              /* when the pipes must be polled */
    while (node->phase != TITAN_PHASE_DONE) {
        if (node->poll_dirty) {
            free (items);
            free (owners);
            items = (zmq_pollitem_t *) calloc (node->count + 2, sizeof *items);
            owners = (titan_kmodule_t **) calloc (node->count + 2,
                                                  sizeof *owners);
            assert (items && owners);
            nitems = 0;
            items [nitems++] = (zmq_pollitem_t) {
                zsock_resolve (pipe), 0, ZMQ_POLLIN, 0 };
            items [nitems++] = (zmq_pollitem_t) {
                zsock_resolve (node->router), 0, ZMQ_POLLIN, 0 };
            for (size_t i = 0; i < node->count; i++)
                if (node->modules [i]->actor) {
                    owners [nitems] = node->modules [i];
                    items [nitems++] = (zmq_pollitem_t) {
                        zsock_resolve (node->modules [i]->actor->pipe), 0,
                        ZMQ_POLLIN, 0 };
                }
            node->poll_dirty = false;
        }
        /* Messages held for a client with a full pipe are retried soon. */
        long timeout = (long) titan_supervisor_next_timeout (
            node, zhashx_size (node->client_held) ? 5 : 1000);
        size_t polled = nitems;
        int64_t now = zclock_mono ();
        if (busy && now < pipes_due) {
            polled = 2;                 /* own pipe and the bus only */
            if (timeout < 0 || timeout > pipes_due - now)
                timeout = (long) (pipes_due - now);
        }
        else
            pipes_due = now + PIPES_POLL_MS;
        int rc = zmq_poll (items, (int) polled, timeout);
        if (rc < 0 && zmq_errno () != EINTR)
            break;
        busy = rc > 0 && (items [1].revents & ZMQ_POLLIN);
        if (rc > 0) {
            if (items [1].revents & ZMQ_POLLIN) {
                /* A batch, so that a busy bus does not starve timers. */
                /* zmsg_recv_nowait, not zsock_events before each
                   receive: that asks ZMQ_EVENTS, a fork check (getpid)
                   and a poll of the socket's mailbox, two system calls
                   per message; a receive without wait looks at the
                   mailbox only when the queue is empty. */
                for (int n = 0; n < 256; n++) {
                    zmsg_t *msg = zmsg_recv_nowait (node->router);
                    if (!msg)
                        break;
                    titan_router_on_message (node, &msg);
                }
            }
            for (size_t i = 2; i < polled && !node->poll_dirty; i++)
                if (items [i].revents & ZMQ_POLLIN)
                    titan_supervisor_on_pipe (node, owners [i]);
            if (!node->poll_dirty && (items [0].revents & ZMQ_POLLIN))
                s_on_api (node);
        }
        titan_supervisor_tick (node);
        for (size_t i = 0; i < node->count; i++) {
            titan_kmodule_t *m = node->modules [i];
            if (m->connected && zlistx_size (m->held))
                titan_router_drain (node, m);
        }
        titan_router_drain_clients (node);
    }
    free (items);
    free (owners);
    zsock_destroy (&node->router);
    titan_klog_info (node, "stopped");
}

/* ------------------------------------------------------------ API */

int
titan_node_start (titan_node_t *self, char *err, size_t err_size)
{
    assert (self);
    if (self->actor) {
        s_err (err, err_size, "node %s is already started", self->id);
        return -EALREADY;
    }
    if (zsys_dir_create ("%s", self->data_dir) != 0) {
        int error = errno;
        s_err (err, err_size, "node/data_dir %s: cannot create it: %s",
               self->data_dir, strerror (error));
        return error ? -error : -EIO;
    }
    self->actor = zactor_new (s_node_actor, self);
    if (!self->actor) {
        s_err (err, err_size, "cannot start the thread of node %s", self->id);
        return -ENOMEM;
    }
    /* zactor_new returns after the first signal; an interrupt can cut that
       wait short, so wait until the outcome is known. */
    while (atomic_load (&self->start_status) == 1)
        zsock_wait (self->actor);
    int status = atomic_load (&self->start_status);
    if (status)
        s_err (err, err_size, "%s", self->start_error);
    return status;
}

void
titan_node_destroy (titan_node_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        titan_node_t *self = *self_p;
        zactor_destroy (&self->actor);
        titan_supervisor_release (self);
        for (size_t i = 0; i < self->count; i++)
            s_module_destroy (&self->modules [i]);
        free (self->modules);
        zlistx_destroy (&self->abandoned);
        zhashx_destroy (&self->client_held);
        zconfig_destroy (&self->config);
        free (self);
        *self_p = NULL;
    }
}

const char *
titan_node_id (titan_node_t *self)
{
    assert (self);
    return self->id;
}

titan_logger_t *
titan_node_logger (titan_node_t *self)
{
    assert (self);
    return &self->log;
}

const char *
titan_node_endpoint (titan_node_t *self)
{
    assert (self);
    return self->endpoint;
}

zconfig_t *
titan_node_config (titan_node_t *self)
{
    assert (self);
    return self->config;
}

size_t
titan_node_module_count (titan_node_t *self)
{
    assert (self);
    return self->count;
}

const char *
titan_node_module_name (titan_node_t *self, size_t index)
{
    assert (self);
    return index < self->count ? self->modules [index]->name : NULL;
}

int
titan_node_module_state (titan_node_t *self, const char *name,
                         titan_module_state_t *state_p, uint32_t *restarts_p)
{
    assert (self);
    if (!self->actor || atomic_load (&self->start_status) != 0)
        return TITAN_ECLOSED;
    if (zstr_sendx (self->actor, "STATE", name, NULL) != 0)
        return TITAN_ECLOSED;
    char *reply = zstr_recv (self->actor);
    if (!reply)
        return TITAN_ECLOSED;
    int state = -1;
    unsigned restarts = 0;
    int fields = sscanf (reply, "%d %u", &state, &restarts);
    zstr_free (&reply);
    if (fields != 2 || state < 0)
        return TITAN_ENOTFOUND;
    if (state_p)
        *state_p = (titan_module_state_t) state;
    if (restarts_p)
        *restarts_p = restarts;
    return 0;
}
