/*  Titan-KV node: one microkernel instance as a library object.

    A node owns a validated config, the ROUTER bus bound at
    inproc://titan-<node-id>-bus and one thread (the node's actor) that
    routes envelopes between the modules and supervises them.  Nothing in
    a node is global, so several nodes live in one process (the integration
    tests start N of them); they only need different node ids.  titand is
    a thin main around one node.
*/
#ifndef TITAN_NODE_H_INCLUDED
#define TITAN_NODE_H_INCLUDED

#include <czmq.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct titan_node titan_node_t;

/*  Life cycle of one module as the supervisor sees it.  */
typedef enum {
    TITAN_MODULE_STOPPED    = 0,   /* not started, or stopped on request */
    TITAN_MODULE_STARTING   = 1,   /* actor started, waiting for its ready signal */
    TITAN_MODULE_RUNNING    = 2,   /* ready and answering pings */
    TITAN_MODULE_STOPPING   = 3,   /* $TERM sent, waiting for it to exit */
    TITAN_MODULE_RESTARTING = 4,   /* exited or hung; restart scheduled (backoff) */
    TITAN_MODULE_FAILED     = 5    /* restarts exhausted, or could not be loaded */
} titan_module_state_t;

/*  Creates a node from a config tree, taking ownership of *config_p (it is
    nulled, even on failure).  Node keys the config lacks get their
    defaults (id node1, data_dir ./data, client_addr 127.0.0.1:7400,
    peer_addr 127.0.0.1:7401), and a config without a modules section gets
    the default module list.  Validates the config (keys, addresses, ids)
    and resolves every module file along the module path, without loading
    anything.  Returns NULL on failure with the reason, naming the key or
    file involved, in `err` (if not NULL).  */
titan_node_t *titan_node_new (zconfig_t **config_p, char *err, size_t err_size);

/*  Starts the node: creates the data directory, binds the bus, then loads
    and starts every module in config order, waiting for each to signal
    ready.  Returns 0, or a negative status with the reason in `err`; on
    failure the modules already started are stopped again and the node may
    only be destroyed.  */
int titan_node_start (titan_node_t *self, char *err, size_t err_size);

/*  Stops the modules in reverse order with $TERM (each drains and closes
    its files), closes the bus, unloads the modules and frees the node.
    Nulls the pointer.  Safe on a node that was never started.  */
void titan_node_destroy (titan_node_t **self_p);

/*  The node's id.  Valid while the node lives.  */
const char *titan_node_id (titan_node_t *self);

/*  The node's logger (include/titan/log.h): its level may be changed
    from any thread.  Valid while the node lives.  */
struct titan_logger;
struct titan_logger *titan_node_logger (titan_node_t *self);

/*  The bus endpoint, inproc://titan-<node-id>-bus.  Valid while the node
    lives.  */
const char *titan_node_endpoint (titan_node_t *self);

/*  The node's config (read-only; owned by the node).  */
zconfig_t *titan_node_config (titan_node_t *self);

/*  Number of modules in the config, and the name of module `index`
    (config order; valid while the node lives; NULL if out of range).  */
size_t titan_node_module_count (titan_node_t *self);
const char *titan_node_module_name (titan_node_t *self, size_t index);

/*  Asks the node's thread for the state of module `name` and how often it
    was restarted.  Call it from the thread that owns the node (it talks
    to the node's thread over the node's pipe).  Returns 0, TITAN_ENOTFOUND for an unknown name, or
    TITAN_ECLOSED when the node is not running.  */
int titan_node_module_state (titan_node_t *self, const char *name,
                             titan_module_state_t *state_p,
                             uint32_t *restarts_p);

/*  Static name of a module state ("running", "restarting", ...).  */
const char *titan_module_state_name (titan_module_state_t state);

#ifdef __cplusplus
}
#endif
#endif
