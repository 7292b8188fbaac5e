/*  The supervisor: module threads, their liveness and their restarts.

    Each incarnation of a module runs on its own thread with a PAIR pipe to
    the kernel, exactly like a CZMQ zactor, so a module is written as a
    zactor function.  The kernel runs the thread itself rather than through
    zactor_new because it must see what zactor hides: the module's ready
    signal value (non-zero = failed start), and the moment the function
    returns, announced by the thread with the string "$EXITED" (sent
    without blocking) just before it ends.  Liveness is checked by "PING"
    on the pipe every kernel/ping_interval_ms; no "PONG" within
    kernel/ping_timeout_ms means hung.

    A module that exits, fails to start or hangs while the node runs is
    restarted after an exponential backoff (restart_backoff_ms doubling up
    to restart_backoff_max_ms), each time with ctx.incarnation + 1; after
    restart_max consecutive failed runs it is marked failed and the
    requests held for it are answered UNAVAILABLE.  A run that lasted ten
    times restart_backoff_max_ms resets the count.  A hung thread cannot be
    killed: after its stop deadline it is abandoned (detached, its shared
    object kept loaded, its pipe kept open) and a new incarnation started;
    this is logged because the old thread still holds its resources.  */
#include "kernel.h"
#include "bus.pb-c.h"

#include <dlfcn.h>
#include <errno.h>
#include <string.h>

/*  The module thread: runs the actor function, then announces its end.  */
static void *
s_module_thread (void *arg)
{
    titan_kactor_t *actor = (titan_kactor_t *) arg;
    zsock_t *child = actor->child;
    actor->child = NULL;
    /* "t:<module>" in top -H, perf and gdb (Linux keeps 15 characters) */
    char name [16];
    snprintf (name, sizeof name, "t:%s", actor->ctx.module_name);
    pthread_setname_np (pthread_self (), name);
    actor->fn (child, &actor->ctx);
    /* After "$EXITED" the kernel may free `actor` (abandoned threads are
       detached): touch only locals from here on. */
    zsock_set_sndtimeo (child, 0);
    zstr_send (child, "$EXITED");
    zsock_destroy (&child);
    return NULL;
}

static int64_t
s_backoff (titan_node_t *node, uint32_t attempts)
{
    int64_t delay = node->backoff;
    for (uint32_t i = 1; i < attempts && delay < node->backoff_max; i++)
        delay *= 2;
    return delay < node->backoff_max ? delay : node->backoff_max;
}

int
titan_supervisor_start (titan_node_t *node, titan_kmodule_t *m)
{
    assert (!m->actor);
    if (!m->dso.handle) {
        int rc = titan_loader_find (m->spec, node->module_path, m->file,
                                    sizeof m->file, m->error, sizeof m->error);
        if (rc == 0)
            rc = titan_loader_open (m->file, &m->dso, m->error,
                                    sizeof m->error);
        if (rc)
            return rc;
    }
    titan_kactor_t *actor = (titan_kactor_t *) zmalloc (sizeof *actor);
    if (!actor) {
        snprintf (m->error, sizeof m->error, "module %s: out of memory",
                  m->name);
        return -ENOMEM;
    }
    actor->fn = m->dso.desc->actor;
    actor->dl_handle = m->dso.handle;
    titan_module_ctx_t *ctx = &actor->ctx;
    ctx->abi_version = TITAN_MODULE_ABI_VERSION;
    ctx->node_id = node->id;
    ctx->module_name = m->name;
    ctx->bus_endpoint = node->endpoint;
    ctx->data_dir = node->data_dir;
    ctx->client_addr = node->client_addr;
    ctx->peer_addr = node->peer_addr;
    ctx->settings = m->settings;
    ctx->node_config = node->config;
    ctx->incarnation = m->incarnation;
    ctx->logger = &node->log;
    actor->pipe = zsys_create_pipe (&actor->child);
    if (!actor->pipe) {
        free (actor);
        snprintf (m->error, sizeof m->error, "module %s: cannot create its "
                  "pipe", m->name);
        return -EMFILE;
    }
    int rc = pthread_create (&actor->thread, NULL, s_module_thread, actor);
    if (rc) {
        zsock_destroy (&actor->pipe);
        zsock_destroy (&actor->child);
        free (actor);
        snprintf (m->error, sizeof m->error, "module %s: cannot start its "
                  "thread: %s", m->name, strerror (rc));
        return -rc;
    }
    m->actor = actor;
    m->incarnation++;
    m->state = TITAN_MODULE_STARTING;
    m->failed_start = false;
    m->after = TITAN_AFTER_STAY;
    m->ping_outstanding = false;
    m->deadline = zclock_mono () + node->start_timeout;
    m->error [0] = '\0';
    node->poll_dirty = true;
    return 0;
}

void
titan_supervisor_stop (titan_node_t *node, titan_kmodule_t *m,
                       titan_after_t after)
{
    assert (m->actor);
    m->after = after;
    if (m->state == TITAN_MODULE_STOPPING)
        return;
    m->state = TITAN_MODULE_STOPPING;
    m->deadline = zclock_mono () + (after == TITAN_AFTER_SUPERVISE
                                    ? node->ping_timeout : node->stop_timeout);
    zsock_set_sndtimeo (m->actor->pipe, 0);
    zstr_send (m->actor->pipe, "$TERM");
}

/*  Schedules a restart after a failed run, or gives up.  */
static void
s_supervise (titan_node_t *node, titan_kmodule_t *m)
{
    int64_t now = zclock_mono ();
    if (m->started_at && now - m->started_at > 10 * node->backoff_max)
        m->attempts = 0;
    m->started_at = 0;
    m->attempts++;
    if ((int64_t) m->attempts > node->restart_max) {
        m->state = TITAN_MODULE_FAILED;
        titan_klog_error (node, "module %s failed %u times in a row; not "
                         "restarting it again (last: %s)", m->name,
                         m->attempts, m->error [0] ? m->error : "exited");
        titan_admin_complete (node, m, TITAN__BUS__CODE__UNAVAILABLE,
                              m->error [0] ? m->error : "module failed");
        titan_router_fail_held (node, m);
        return;
    }
    m->state = TITAN_MODULE_RESTARTING;
    m->deadline = now + s_backoff (node, m->attempts);
    if (m->error [0])
        titan_klog_warning (node, "%s; restart %u in %" PRId64 " ms",
                           m->error, m->attempts, m->deadline - now);
    else
        titan_klog_warning (node, "module %s: actor exited; restart %u in %"
                           PRId64 " ms", m->name, m->attempts,
                           m->deadline - now);
}

/*  The current incarnation is over (joined or abandoned): decide what
    comes next.  */
static void
s_on_gone (titan_node_t *node, titan_kmodule_t *m)
{
    titan_router_module_gone (node, m);
    titan_module_state_t was = m->state;
    bool failed_start = m->failed_start || was == TITAN_MODULE_STARTING;
    if (failed_start && !m->error [0])
        snprintf (m->error, sizeof m->error, "module %s exited before "
                  "signalling ready", m->name);

    if (node->phase == TITAN_PHASE_STARTING && failed_start) {
        m->state = TITAN_MODULE_FAILED;
        titan_node_on_module_failed (node, m);
        return;
    }
    if (node->phase == TITAN_PHASE_SHUTDOWN || node->phase == TITAN_PHASE_FAILED
    ||  node->phase == TITAN_PHASE_DONE) {
        m->state = TITAN_MODULE_STOPPED;
        titan_admin_complete (node, m, TITAN__BUS__CODE__UNAVAILABLE,
                              "node is shutting down");
        titan_node_on_module_stopped (node, m);
        return;
    }
    if (failed_start) {
        s_supervise (node, m);          /* a restart that did not come up */
        return;
    }
    if (was == TITAN_MODULE_STOPPING && m->after == TITAN_AFTER_STAY) {
        m->state = TITAN_MODULE_STOPPED;
        titan_node_on_module_stopped (node, m);
        return;
    }
    if (was == TITAN_MODULE_STOPPING
    &&  (m->after == TITAN_AFTER_RESTART || m->after == TITAN_AFTER_RELOAD)) {
        if (m->after == TITAN_AFTER_RELOAD)
            titan_loader_close (&m->dso);
        m->restarts++;
        m->attempts = 0;
        if (titan_supervisor_start (node, m) != 0) {
            titan_klog_error (node, "%s", m->error);
            m->state = TITAN_MODULE_FAILED;
            titan_admin_complete (node, m,
                                  TITAN__BUS__CODE__FAILED_PRECONDITION,
                                  m->error);
            titan_router_fail_held (node, m);
        }
        return;
    }
    s_supervise (node, m);              /* crashed, or hung (SUPERVISE) */
}

/*  Joins a thread that announced its end.  */
static void
s_reap (titan_node_t *node, titan_kmodule_t *m)
{
    titan_kactor_t *actor = m->actor;
    pthread_join (actor->thread, NULL);
    zsock_destroy (&actor->pipe);
    free (actor);
    m->actor = NULL;
    node->poll_dirty = true;
}

/*  Gives up on a thread that does not answer: it keeps its pipe and its
    shared object (a new dlopen reference is taken for the next run).  */
static void
s_abandon (titan_node_t *node, titan_kmodule_t *m)
{
    titan_kactor_t *actor = m->actor;
    titan_klog_error (node, "module %s (incarnation %u) does not respond; "
                     "abandoning its thread", m->name,
                     actor->ctx.incarnation);
    pthread_detach (actor->thread);
    zlistx_add_end (node->abandoned, actor);
    m->actor = NULL;
    m->dso.handle = NULL;              /* the abandoned thread's now */
    m->dso.desc = NULL;
    node->poll_dirty = true;
}

void
titan_supervisor_on_pipe (titan_node_t *node, titan_kmodule_t *m)
{
    zmsg_t *msg = zmsg_recv (m->actor->pipe);
    if (!msg)
        return;
    int signal = zmsg_signal (msg);
    if (signal >= 0) {
        if (m->state == TITAN_MODULE_STARTING) {
            if (signal == 0) {
                m->state = TITAN_MODULE_RUNNING;
                m->started_at = zclock_mono ();
                m->next_ping = m->started_at + node->ping_interval;
                titan_router_drain (node, m);
                titan_node_on_module_ready (node, m);
            }
            else {
                const char *reason = m->actor->ctx.error;
                snprintf (m->error, sizeof m->error, "module %s failed to "
                          "start: %s", m->name, reason [0] ? reason
                          : "it signalled failure");
                m->failed_start = true;
                titan_supervisor_stop (node, m, m->after);
            }
        }
        zmsg_destroy (&msg);
        return;
    }
    char *text = zmsg_popstr (msg);
    zmsg_destroy (&msg);
    if (text && strcmp (text, "PONG") == 0)
        m->ping_outstanding = false;
    else
    if (text && strcmp (text, "$EXITED") == 0) {
        s_reap (node, m);
        s_on_gone (node, m);
    }
    zstr_free (&text);
}

void
titan_supervisor_tick (titan_node_t *node)
{
    int64_t now = zclock_mono ();
    for (size_t i = 0; i < node->count; i++) {
        titan_kmodule_t *m = node->modules [i];
        switch (m->state) {
            case TITAN_MODULE_RESTARTING:
                if (now >= m->deadline) {
                    m->restarts++;
                    if (titan_supervisor_start (node, m) != 0)
                        s_supervise (node, m);
                }
                break;
            case TITAN_MODULE_STARTING:
                if (now >= m->deadline) {
                    snprintf (m->error, sizeof m->error, "module %s did not "
                              "signal ready within %" PRId64 " ms", m->name,
                              node->start_timeout);
                    m->failed_start = true;
                    s_abandon (node, m);
                    s_on_gone (node, m);
                }
                break;
            case TITAN_MODULE_STOPPING:
                if (now >= m->deadline) {
                    if (!m->error [0])
                        snprintf (m->error, sizeof m->error, "module %s did "
                                  "not stop within its deadline", m->name);
                    s_abandon (node, m);
                    s_on_gone (node, m);
                }
                break;
            case TITAN_MODULE_RUNNING:
                if (m->ping_outstanding
                &&  now - m->ping_sent >= node->ping_timeout) {
                    snprintf (m->error, sizeof m->error, "module %s did not "
                              "answer PING within %" PRId64 " ms", m->name,
                              node->ping_timeout);
                    titan_supervisor_stop (node, m, TITAN_AFTER_SUPERVISE);
                }
                else
                if (!m->ping_outstanding && now >= m->next_ping) {
                    zsock_set_sndtimeo (m->actor->pipe, 0);
                    if (zstr_send (m->actor->pipe, "PING") == 0) {
                        m->ping_outstanding = true;
                        m->ping_sent = now;
                    }
                    m->next_ping = now + node->ping_interval;
                }
                break;
            default:
                break;
        }
    }
}

int64_t
titan_supervisor_next_timeout (titan_node_t *node, int64_t cap)
{
    int64_t now = zclock_mono ();
    int64_t next = now + cap;
    for (size_t i = 0; i < node->count; i++) {
        titan_kmodule_t *m = node->modules [i];
        int64_t at = INT64_MAX;
        switch (m->state) {
            case TITAN_MODULE_RESTARTING:
            case TITAN_MODULE_STARTING:
            case TITAN_MODULE_STOPPING:
                at = m->deadline;
                break;
            case TITAN_MODULE_RUNNING:
                at = m->ping_outstanding ? m->ping_sent + node->ping_timeout
                                         : m->next_ping;
                break;
            default:
                break;
        }
        if (at < next)
            next = at;
        if (m->connected && m->state != TITAN_MODULE_STOPPING
        &&  zlistx_size (m->held) && now + 1 < next)
            next = now + 1;             /* a full pipe: retry soon */
    }
    return next > now ? next - now : 0;
}

void
titan_supervisor_release (titan_node_t *node)
{
    for (size_t i = 0; i < node->count; i++) {
        titan_kmodule_t *m = node->modules [i];
        if (!m)
            continue;                   /* titan_node_new failed midway */
        if (m->actor) {
            /* Still running after the node's thread ended: only when the
               stop sequence was cut short.  Ask once more, then wait. */
            zsock_set_sndtimeo (m->actor->pipe, 0);
            zstr_send (m->actor->pipe, "$TERM");
            zsock_set_rcvtimeo (m->actor->pipe, (int) node->stop_timeout);
            bool exited = false;
            while (!exited) {
                char *text = zstr_recv (m->actor->pipe);
                if (!text)
                    break;
                exited = strcmp (text, "$EXITED") == 0;
                zstr_free (&text);
            }
            if (exited)
                s_reap (node, m);
            else
                s_abandon (node, m);
        }
        titan_loader_close (&m->dso);
    }
    /* An abandoned thread that has ended since can be cleaned up now; the
       others may still run module code: their objects stay loaded and
       their pipes open until the process ends. */
    titan_kactor_t *actor = (titan_kactor_t *) zlistx_first (node->abandoned);
    while (actor) {
        bool exited = false;
        zsock_set_rcvtimeo (actor->pipe, 0);
        char *text;
        while (!exited && (text = zstr_recv (actor->pipe))) {
            exited = strcmp (text, "$EXITED") == 0;
            zstr_free (&text);
        }
        if (exited) {
            zsock_destroy (&actor->pipe);
            if (actor->dl_handle)
                dlclose (actor->dl_handle);
            free (actor);
            zlistx_delete (node->abandoned, zlistx_cursor (node->abandoned));
            actor = (titan_kactor_t *) zlistx_first (node->abandoned);
        }
        else
            actor = (titan_kactor_t *) zlistx_next (node->abandoned);
    }
    if (zlistx_size (node->abandoned))
        titan_klog_error (node, "%zu module thread(s) abandoned; their "
                         "resources stay allocated", zlistx_size (node->abandoned));
}
