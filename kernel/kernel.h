/*  Internal structures of the kernel, shared by node.c (the node object
    and its thread), router.c (envelope routing and per-module queues),
    supervisor.c (module threads, liveness, restarts) and admin.c
    (messages addressed to "kernel").  Everything here is owned by one
    node and touched only by that node's thread, except where noted.  */
#ifndef TITAN_KERNEL_KERNEL_H_INCLUDED
#define TITAN_KERNEL_KERNEL_H_INCLUDED

#include "titan/bus.h"
#include "titan/log.h"
#include "titan/module.h"
#include "titan/node.h"
#include "loader.h"

#include <pthread.h>
#include <stdatomic.h>

/*  One incarnation of a module: its thread and the pipe to it.  Heap
    allocated so that an abandoned (hung) thread keeps a valid context.  */
typedef struct {
    pthread_t thread;
    zsock_t *pipe;                  /* kernel's end of the pipe */
    zsock_t *child;                 /* module's end; the thread closes it */
    zactor_fn *fn;                  /* the module's actor function */
    titan_module_ctx_t ctx;         /* handed to the actor */
    void *dl_handle;                /* kept open while abandoned */
} titan_kactor_t;

/*  What to do when a module that we asked to stop has exited.  */
typedef enum {
    TITAN_AFTER_STAY = 0,           /* stay stopped (shutdown) */
    TITAN_AFTER_RESTART,            /* start again (admin restart) */
    TITAN_AFTER_RELOAD,             /* reload from disk, then start */
    TITAN_AFTER_SUPERVISE           /* it hung: restart with backoff */
} titan_after_t;

typedef struct {
    titan_node_t *node;
    char name [TITAN_BUS_NAME_MAX + 1];
    char spec [PATH_MAX];           /* modules/<name>/path as configured */
    char file [PATH_MAX];           /* resolved file */
    zconfig_t *settings;            /* modules/<name> subtree */
    titan_dso_t dso;                /* loaded object, if loaded */
    titan_kactor_t *actor;          /* current incarnation, or NULL */
    titan_module_state_t state;
    titan_after_t after;
    bool failed_start;              /* signalled failure before ready */
    bool connected;                 /* its DEALER said hello */
    uint32_t incarnation;           /* next ctx.incarnation */
    uint32_t restarts;              /* restarts so far */
    uint32_t attempts;              /* consecutive failed runs */
    int64_t deadline;               /* start/stop/backoff deadline */
    int64_t started_at;             /* when it signalled ready */
    int64_t next_ping;
    int64_t ping_sent;
    bool ping_outstanding;
    zlistx_t *held;                 /* zmsg_t [to][from][type][kc][payload] */
    zlistx_t *inflight;             /* delivered requests not yet answered */
    zhashx_t *inflight_index;       /* "requester/corr" -> zlistx handle */
    uint64_t dropped;               /* messages dropped (logged) */
    bool admin_pending;             /* an admin request awaits its end */
    char admin_to [TITAN_BUS_NAME_MAX + 1];
    char admin_type [TITAN_BUS_NAME_MAX + 1];
    uint64_t admin_corr;
    char error [512];               /* last failure, for logs and admin */
} titan_kmodule_t;

typedef enum {
    TITAN_PHASE_STARTING,           /* starting modules in config order */
    TITAN_PHASE_RUNNING,
    TITAN_PHASE_SHUTDOWN,           /* stopping modules in reverse order */
    TITAN_PHASE_FAILED,             /* start failed; waiting for $TERM */
    TITAN_PHASE_DONE
} titan_phase_t;

struct titan_node {
    zconfig_t *config;
    char id [64];
    char endpoint [128];
    titan_logger_t log;             /* the node's logger (handed to modules) */
    const char *data_dir;
    const char *client_addr;
    const char *peer_addr;
    const char *module_path;
    titan_kmodule_t **modules;
    size_t count;
    zactor_t *actor;                /* the node's thread */
    atomic_int start_status;        /* 1 while pending, then 0 or < 0 */
    char start_error [512];         /* written before start_status */
    int start_fail_status;          /* status of a failed start */

    /* tuning (kernel section) */
    int64_t ping_interval, ping_timeout, start_timeout, stop_timeout;
    int64_t restart_max, backoff, backoff_max, queue_limit;

    /* owned by the node's thread */
    zsock_t *router;
    zsock_t *pipe;                  /* the node actor's pipe */
    titan_phase_t phase;
    size_t cursor;                  /* module being started */
    bool terminated;                /* $TERM received */
    bool poll_dirty;                /* module pipes changed */
    zlistx_t *abandoned;            /* titan_kactor_t of hung threads */
    zhashx_t *client_held;          /* bus client name -> zlistx_t of zmsg_t */
};

/* ------------------------------------------------------------ router.c */

/*  Handles one message read from the ROUTER ([sender][to][from][type]
    [kc][payload]); takes ownership.  */
void titan_router_on_message (titan_node_t *node, zmsg_t **msg_p);

/*  Delivers or holds a message ([to][from][type][kc][payload]) for module
    `m`; takes ownership.  */
void titan_router_deliver (titan_node_t *node, titan_kmodule_t *m,
                           zmsg_t **msg_p);

/*  Sends what is held for bus clients that are not modules (test
    programs, tools) and whose pipes were full, in order; forgets clients
    that disconnected.  Returns true while something is still held.  */
bool titan_router_drain_clients (titan_node_t *node);

/*  Sends what is held for `m` while it is connected, in order.  */
void titan_router_drain (titan_node_t *node, titan_kmodule_t *m);

/*  `m`'s incarnation is gone: it is no longer connected, and requests it
    had not answered are held again (at the front, in order) for the next
    incarnation.  */
void titan_router_module_gone (titan_node_t *node, titan_kmodule_t *m);

/*  Answers every request held for `m` with an UNAVAILABLE error and drops
    the rest (logged): used when `m` failed for good.  */
void titan_router_fail_held (titan_node_t *node, titan_kmodule_t *m);

/*  Sends a reply to `requester` for the request (type, corr) that came
    from it, as if from `from`, carrying an AdminReply {code, message}.  */
void titan_router_error_reply (titan_node_t *node, const char *requester,
                               const char *from, const char *type,
                               uint64_t corr, int code, const char *message);

/*  Sends a reply payload from "kernel" to `requester`.  */
void titan_router_kernel_reply (titan_node_t *node, const char *requester,
                                const char *type, uint64_t corr,
                                const void *payload, size_t size);

/*  Finds a module by name, or NULL.  */
titan_kmodule_t *titan_node_find (titan_node_t *node, const char *name,
                                  size_t len);

/* ------------------------------------------------------------ admin.c */

/*  Handles a message addressed to "kernel"; takes ownership.  `sender` is
    the real routing id.  */
void titan_admin_on_message (titan_node_t *node, const char *sender,
                             zmsg_t **msg_p);

/*  Finishes the admin request pending on `m`, if any, with a code
    (proto Code) and message.  */
void titan_admin_complete (titan_node_t *node, titan_kmodule_t *m, int code,
                           const char *message);

/* ------------------------------------------------------------ supervisor.c */

/*  Starts a new incarnation of `m` (loading it first if needed).  Returns 0
    (state STARTING) or a negative status with m->error set.  */
int titan_supervisor_start (titan_node_t *node, titan_kmodule_t *m);

/*  Asks `m` to stop with $TERM; `after` says what follows its exit.  */
void titan_supervisor_stop (titan_node_t *node, titan_kmodule_t *m,
                            titan_after_t after);

/*  Handles a message on `m`'s pipe (ready signal, PONG, exit).  */
void titan_supervisor_on_pipe (titan_node_t *node, titan_kmodule_t *m);

/*  Runs timers: pings, hang detection, start/stop deadlines, restarts.  */
void titan_supervisor_tick (titan_node_t *node);

/*  Milliseconds until the next timer of any module (capped at `cap`).  */
int64_t titan_supervisor_next_timeout (titan_node_t *node, int64_t cap);

/*  Joins or abandons every incarnation and unloads every module (node
    teardown; the node's thread has ended).  */
void titan_supervisor_release (titan_node_t *node);

/* ------------------------------------------------------------ node.c */

/*  Callbacks from the supervisor into the node's start/stop sequence.  */
void titan_node_on_module_ready (titan_node_t *node, titan_kmodule_t *m);
void titan_node_on_module_failed (titan_node_t *node, titan_kmodule_t *m);
void titan_node_on_module_stopped (titan_node_t *node, titan_kmodule_t *m);

/*  Logging as module "kernel" of the node (include/titan/log.h), from
    whichever thread runs the kernel code.  */
#define titan_klog_info(node, ...)    \
    titan_log_emit (&(node)->log, "kernel", TITAN_LOG_INFO, NULL, __VA_ARGS__)
#define titan_klog_warning(node, ...) \
    titan_log_emit (&(node)->log, "kernel", TITAN_LOG_WARNING, NULL, __VA_ARGS__)
#define titan_klog_error(node, ...)   \
    titan_log_emit (&(node)->log, "kernel", TITAN_LOG_ERROR, NULL, __VA_ARGS__)
#define titan_klog_debug(node, ...)   \
    titan_log_emit (&(node)->log, "kernel", TITAN_LOG_DEBUG, NULL, __VA_ARGS__)

#endif
