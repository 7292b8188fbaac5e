/*  Messages addressed to "kernel": the bus.hello bookkeeping event and the
    admin requests of proto/bus.proto (admin.list, admin.restart,
    admin.reload, admin.log_level).

    List answers at once.  Restart and reload are long operations (the
    module drains and closes its files, then starts again), so the request
    is remembered on the module and answered from titan_admin_complete
    when the new incarnation signals ready, or fails.  One admin operation
    per module at a time; a second one is answered UNAVAILABLE.  Reload
    closes the shared object and opens it again from disk before starting:
    a hot swap of the module's code (see docs: dlopen returns the image
    already loaded while another node of the process still holds it).  */
#include "kernel.h"
#include "bus.pb-c.h"
#include "titan/bus_types.h"

#include <string.h>

static void
s_on_hello (titan_node_t *node, const char *sender)
{
    titan_kmodule_t *m = titan_node_find (node, sender, strlen (sender));
    if (!m)
        return;                         /* a client socket: nothing held */
    if (m->state != TITAN_MODULE_STARTING && m->state != TITAN_MODULE_RUNNING)
        return;                         /* a late hello from a dead one */
    m->connected = true;
    titan_router_drain (node, m);
}

static void
s_on_list (titan_node_t *node, const char *sender, titan_envelope_t *req)
{
    Titan__Bus__ModuleListReply reply = TITAN__BUS__MODULE_LIST_REPLY__INIT;
    Titan__Bus__ModuleInfo *infos = (Titan__Bus__ModuleInfo *)
        calloc (node->count ? node->count : 1, sizeof *infos);
    Titan__Bus__ModuleInfo **ptrs = (Titan__Bus__ModuleInfo **)
        calloc (node->count ? node->count : 1, sizeof *ptrs);
    if (!infos || !ptrs) {
        free (infos);
        free (ptrs);
        titan_router_error_reply (node, sender, TITAN_KERNEL_NAME, req->type,
            req->corr, TITAN__BUS__CODE__RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    for (size_t i = 0; i < node->count; i++) {
        titan_kmodule_t *m = node->modules [i];
        titan__bus__module_info__init (&infos [i]);
        infos [i].name = m->name;
        infos [i].version = m->dso.desc ? (char *) m->dso.desc->version : "";
        if (!infos [i].version)
            infos [i].version = "";
        infos [i].state = (char *) titan_module_state_name (m->state);
        infos [i].restarts = m->restarts;
        infos [i].path = m->dso.handle ? m->dso.path : m->file;
        infos [i].abi_version = m->dso.desc ? m->dso.desc->abi_version : 0;
        infos [i].held_messages = zlistx_size (m->held);
        ptrs [i] = &infos [i];
    }
    reply.code = TITAN__BUS__CODE__OK;
    reply.message = "";
    reply.n_modules = node->count;
    reply.modules = ptrs;
    size_t size = titan__bus__module_list_reply__get_packed_size (&reply);
    uint8_t *buffer = (uint8_t *) malloc (size ? size : 1);
    if (buffer) {
        titan__bus__module_list_reply__pack (&reply, buffer);
        titan_router_kernel_reply (node, sender, req->type, req->corr,
                                   buffer, size);
    }
    free (buffer);
    free (infos);
    free (ptrs);
}

static void
s_on_command (titan_node_t *node, const char *sender, titan_envelope_t *req,
              bool reload)
{
    Titan__Bus__ModuleCommand *cmd = titan__bus__module_command__unpack (
        NULL, titan_envelope_size (req), titan_envelope_data (req));
    if (!cmd || !cmd->name || !*cmd->name) {
        titan_router_error_reply (node, sender, TITAN_KERNEL_NAME, req->type,
            req->corr, TITAN__BUS__CODE__INVALID_ARGUMENT,
            "expected a ModuleCommand with a module name");
        if (cmd)
            titan__bus__module_command__free_unpacked (cmd, NULL);
        return;
    }
    titan_kmodule_t *m = titan_node_find (node, cmd->name, strlen (cmd->name));
    char text [256];
    if (!m) {
        snprintf (text, sizeof text, "no module named '%.63s' on node %s",
                  cmd->name, node->id);
        titan_router_error_reply (node, sender, TITAN_KERNEL_NAME, req->type,
            req->corr, TITAN__BUS__CODE__NOT_FOUND, text);
    }
    else
    if (node->phase != TITAN_PHASE_RUNNING) {
        titan_router_error_reply (node, sender, TITAN_KERNEL_NAME, req->type,
            req->corr, TITAN__BUS__CODE__UNAVAILABLE,
            "node is starting or shutting down");
    }
    else
    if (m->admin_pending) {
        snprintf (text, sizeof text, "module %s: another restart or reload "
                  "is in progress", m->name);
        titan_router_error_reply (node, sender, TITAN_KERNEL_NAME, req->type,
            req->corr, TITAN__BUS__CODE__UNAVAILABLE, text);
    }
    else {
        m->admin_pending = true;
        snprintf (m->admin_to, sizeof m->admin_to, "%s", sender);
        snprintf (m->admin_type, sizeof m->admin_type, "%s", req->type);
        m->admin_corr = req->corr;
        titan_after_t after = reload ? TITAN_AFTER_RELOAD : TITAN_AFTER_RESTART;
        titan_klog_info (node, "admin: %s module %s (requested by %s)",
                        reload ? "reload" : "restart", m->name, sender);
        if (m->state == TITAN_MODULE_RUNNING
        ||  m->state == TITAN_MODULE_STARTING)
            titan_supervisor_stop (node, m, after);
        else
        if (m->state == TITAN_MODULE_STOPPING)
            m->after = after;
        else {
            /* Not running (restarting, failed, stopped): start it now. */
            if (reload)
                titan_loader_close (&m->dso);
            m->attempts = 0;
            m->restarts++;
            if (titan_supervisor_start (node, m) != 0) {
                m->state = TITAN_MODULE_FAILED;
                titan_admin_complete (node, m, TITAN__BUS__CODE__FAILED_PRECONDITION,
                                      m->error);
            }
        }
    }
    titan__bus__module_command__free_unpacked (cmd, NULL);
}

/*  admin.log_level: sets (or, with an empty level, reports) the node's
    log level; every module sees the change on its next line.  */
static void
s_on_log_level (titan_node_t *node, const char *sender, titan_envelope_t *req)
{
    Titan__Bus__LogLevelRequest *q = titan__bus__log_level_request__unpack (
        NULL, titan_envelope_size (req), titan_envelope_data (req));
    if (!q) {
        titan_router_error_reply (node, sender, TITAN_KERNEL_NAME, req->type,
            req->corr, TITAN__BUS__CODE__INVALID_ARGUMENT,
            "expected a LogLevelRequest");
        return;
    }
    Titan__Bus__LogLevelReply reply = TITAN__BUS__LOG_LEVEL_REPLY__INIT;
    int previous = titan_logger_level (&node->log);
    int level = previous;
    char text [160] = "";
    if (q->level && *q->level) {
        if (titan_log_level_parse (q->level, &level) != 0) {
            snprintf (text, sizeof text, "unknown log level '%.40s' (expected "
                      "error, warning, info or debug)", q->level);
            titan__bus__log_level_request__free_unpacked (q, NULL);
            titan_router_error_reply (node, sender, TITAN_KERNEL_NAME,
                req->type, req->corr, TITAN__BUS__CODE__INVALID_ARGUMENT, text);
            return;
        }
        titan_logger_set_level (&node->log, level);
        /* at warning: on record at the default level and above */
        titan_log_emit (&node->log, "kernel", TITAN_LOG_WARNING, NULL,
                        "log level changed from %s to %s (requested by %s)",
                        titan_log_level_name (previous),
                        titan_log_level_name (level), sender);
    }
    titan__bus__log_level_request__free_unpacked (q, NULL);
    reply.code = TITAN__BUS__CODE__OK;
    reply.message = text;
    reply.level = (char *) titan_log_level_name (level);
    reply.previous = (char *) titan_log_level_name (previous);
    uint8_t buffer [256];
    size_t size = titan__bus__log_level_reply__pack (&reply, buffer);
    titan_router_kernel_reply (node, sender, req->type, req->corr, buffer, size);
}

void
titan_admin_on_message (titan_node_t *node, const char *sender,
                        zmsg_t **msg_p)
{
    titan_envelope_t *env = titan_envelope_decode (msg_p);
    if (!env)
        return;
    if (strcmp (env->type, TITAN_T_HELLO) == 0)
        s_on_hello (node, sender);
    else
    if (env->kind == TITAN_MSG_REQUEST) {
        if (strcmp (env->type, TITAN_T_MODULE_LIST) == 0)
            s_on_list (node, sender, env);
        else
        if (strcmp (env->type, TITAN_T_MODULE_RESTART) == 0)
            s_on_command (node, sender, env, false);
        else
        if (strcmp (env->type, TITAN_T_MODULE_RELOAD) == 0)
            s_on_command (node, sender, env, true);
        else
        if (strcmp (env->type, TITAN_T_LOG_LEVEL) == 0)
            s_on_log_level (node, sender, env);
        else {
            char text [128];
            snprintf (text, sizeof text, "the kernel does not handle '%s'",
                      env->type);
            titan_router_error_reply (node, sender, TITAN_KERNEL_NAME,
                env->type, env->corr, TITAN__BUS__CODE__UNIMPLEMENTED, text);
        }
    }
    titan_envelope_destroy (&env);
}

void
titan_admin_complete (titan_node_t *node, titan_kmodule_t *m, int code,
                      const char *message)
{
    if (!m->admin_pending)
        return;
    m->admin_pending = false;
    titan_router_error_reply (node, m->admin_to, TITAN_KERNEL_NAME,
                              m->admin_type, m->admin_corr, code, message);
}
