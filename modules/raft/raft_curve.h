/*  raft_curve: ZeroMQ CURVE security for the Raft peer transport —
    encryption of all peer traffic, and authentication of the peers.

    Design (the simplest one that is correct; docs/security.md):
      - One *cluster server key* pair, the same on every node
        (`curve_server_cert`): every node's ROUTER is a CURVE server with
        it, so a node can connect to any address — including a join
        target it knows only by address — knowing a single public key.
      - One *node key* pair per node (`curve_cert`; default
        <data_dir>/curve/node.cert, generated on first start with the
        node id in its metadata): the node's DEALERs authenticate with it
        as CURVE clients.
      - The *allowed set* is a directory of public node certificates
        (`curve_keys_dir`, zcert format).  The ZAP handler (CZMQ's zauth)
        refuses every client whose key is not in it, before any message
        is delivered; certificates can be added or removed while running.
      - A certificate's `node-id` metadata binds the key to a node id: a
        batch that names another sender than the key's node is dropped, so
        a member cannot speak for another one.
    A thief of the cluster server secret alone cannot connect (its client
    key is not allowed); a member holding it could impersonate a server to
    another member, which is inside the threat model (members are trusted).

    ZeroMQ has one authentication handler per context, i.e. per process;
    nodes in one process (the integration tests) share it, which works
    when they use the same keys directory and is refused otherwise.

    Settings (the raft module's subtree): curve (false | true),
    curve_server_cert, curve_cert, curve_keys_dir.  A certificate path
    names the public file; its secret is the file of the same name with
    "_secret" appended (zcert_save's layout).
*/
#ifndef RAFT_CURVE_H_INCLUDED
#define RAFT_CURVE_H_INCLUDED

#include <czmq.h>
#include <stddef.h>

typedef struct raft_curve raft_curve_t;

/*  Reads the settings; when `curve` is off, returns 0 with *self_p NULL.
    Otherwise loads (or, at the default path, creates) the keys, starts or
    joins the process's authenticator, and returns 0 with the new object
    in *self_p, or a negative status with the reason in `err`.  */
int raft_curve_new (zconfig_t *settings, const char *data_dir,
                    const char *node_id, raft_curve_t **self_p,
                    char *err, size_t err_size);

/*  Releases the authenticator (stopped with its last user) and nulls the
    pointer.  */
void raft_curve_destroy (raft_curve_t **self_p);

/*  Makes `router` a CURVE server with the cluster key (before bind).  */
void raft_curve_apply_server (raft_curve_t *self, zsock_t *router);

/*  Makes `dealer` a CURVE client with this node's key, trusting the
    cluster server key (before connect).  */
void raft_curve_apply_client (raft_curve_t *self, zsock_t *dealer);

/*  The node id bound to an allowed client key (Z85 text, as ZeroMQ
    reports in a frame's "User-Id"), or NULL when its certificate names
    none.  The directory is read again, at most once a second, when a key
    is not known yet.  */
const char *raft_curve_node_of (raft_curve_t *self, const char *client_key);

#endif
