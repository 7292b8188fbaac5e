/*  Titan-KV module ABI: what a module shared object exports and what the
    kernel hands to it.

    A module is `titan_<name>.so` exporting exactly one symbol,
    TITAN_MODULE_SYMBOL ("titan_module_descriptor"), a const
    titan_module_descriptor_t.  Like nginx's NGX_MODULE_V1 the descriptor
    opens with a magic number and the ABI version it was built against, and
    ends with reserved room, so the kernel can refuse a mismatch before it
    calls anything.  Bump TITAN_MODULE_ABI_VERSION on every change of the
    layout of either struct below, and mark new fields "since version N".

    The kernel starts a module as a CZMQ actor: zactor_new (descriptor->actor,
    ctx).  The actor must
      - connect to the bus with titan_bus_connect (ctx->bus_endpoint, name),
      - zsock_signal (pipe, 0) once ready (a non-zero signal means start-up
        failed; ctx->error may then hold the reason),
      - answer "PING" on the pipe with "PONG" (liveness, checked by the
        supervisor),
      - return after "$TERM" on the pipe, having drained and closed its files.
    A module keeps no mutable global state: two nodes in one process load
    the same .so and must not see each other.
*/
#ifndef TITAN_MODULE_H_INCLUDED
#define TITAN_MODULE_H_INCLUDED

#include "titan/log.h"

#include <czmq.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TITAN_MODULE_MAGIC        0x5449544eu     /* "TITN" */
#define TITAN_MODULE_ABI_VERSION  1u
#define TITAN_MODULE_SYMBOL       "titan_module_descriptor"

/*  What the kernel gives a module actor as its argument.  Owned by the
    kernel and valid until the actor function returns; read-only for the
    module, except `error`.  */
typedef struct titan_module_ctx {
    uint32_t abi_version;        /* TITAN_MODULE_ABI_VERSION of the kernel */
    const char *node_id;         /* this node's id, e.g. "node1" */
    const char *module_name;     /* the name the module is routed by */
    const char *bus_endpoint;    /* inproc://titan-<node-id>-bus */
    const char *data_dir;        /* node data directory (exists) */
    const char *client_addr;     /* host:port of the client (gRPC) listener */
    const char *peer_addr;       /* host:port of the peer (Raft) listener */
    zconfig_t *settings;         /* the module's own config subtree, may be NULL */
    zconfig_t *node_config;      /* the whole node config (read-only) */
    uint32_t incarnation;        /* 0 on first start, +1 on each restart */
    char error [256];            /* start-up failure reason, set by module */
    /* since ABI 1, in the first reserved slot (NULL from an older kernel):
       the node's logger; an actor binds its thread to it with
       titan_log_bind (ctx->logger, ctx->module_name) (include/titan/log.h) */
    const titan_logger_t *logger;
    void *reserved [7];          /* room to grow without an ABI bump */
} titan_module_ctx_t;

/*  The one symbol a module exports.  */
typedef struct titan_module_descriptor {
    uint32_t magic;              /* TITAN_MODULE_MAGIC */
    uint32_t abi_version;        /* TITAN_MODULE_ABI_VERSION it was built for */
    const char *name;            /* e.g. "bitcask" */
    const char *version;         /* the module's own version, e.g. "0.1.0" */
    zactor_fn *actor;            /* actor function; args is titan_module_ctx_t * */
    void *reserved [8];          /* must be NULL */
} titan_module_descriptor_t;

/*  Declares a module's descriptor with the current magic and ABI version.  */
#define TITAN_MODULE_DEFINE(name_, version_, actor_)                        \
    __attribute__ ((visibility ("default")))                              \
    const titan_module_descriptor_t titan_module_descriptor = {            \
        TITAN_MODULE_MAGIC, TITAN_MODULE_ABI_VERSION, name_, version_,     \
        actor_, { NULL } }

/*  Reads an integer setting from a module's settings subtree: returns
    `fallback` when the key is absent, and -EINVAL into *status_p (if given)
    when present but not a whole number.  */
int64_t titan_setting_int (zconfig_t *settings, const char *path,
                           int64_t fallback, int *status_p);

/*  Reads a string setting; returns `fallback` when absent.  The returned
    string belongs to the config tree (or is `fallback`).  */
const char *titan_setting_str (zconfig_t *settings, const char *path,
                               const char *fallback);

#ifdef __cplusplus
}
#endif
#endif
