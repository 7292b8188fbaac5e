/*  TestCluster: N full Titan-KV nodes (kernel + bitcask + raft +
    grpc_gateway) inside one test process, for the integration tests.

    Each node has its own temporary data directory and free loopback ports
    (found by binding port 0; a start that finds its ports taken picks new
    ones while the node is fresh).  Node 0 bootstraps the group; the others
    join it.  A node can be stopped (titan_node_destroy: its gRPC server,
    Raft and storage stop; the clean stop of a leader hands leadership
    over first) and started again from the same directory and ports.
    Clients talk to the nodes over gRPC (cli/tc_client.h).  Modules are
    found along TITAN_MODULE_PATH (set by `make check`).  Every wait polls
    with a deadline; failures are check assertions.
*/
#ifndef INTEGRATION_CLUSTER_H_INCLUDED
#define INTEGRATION_CLUSTER_H_INCLUDED

#include "tc_client.h"

#include <grpc/status.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TC_MAX_NODES 8

typedef struct tc_cluster tc_cluster_t;
typedef struct Titan__V1__StatusResponse Titan__V1__StatusResponse;

/*  Starts `n` nodes (1..TC_MAX_NODES) and waits until all are voters and
    one leads.  Aborts the test on failure.  */
tc_cluster_t *tc_new (int n);

/*  Extra settings for every node of a cluster: ZPL lines appended to the
    module's subtree of the node's config, each indented by 8 spaces
    ("        snapshot_entries = 40\n"); NULL for none.  Copied.  */
typedef struct {
    const char *raft;
    const char *bitcask;
} tc_settings_t;

/*  tc_new with extra settings (NULL: none).  */
tc_cluster_t *tc_new_with (int n, const tc_settings_t *settings);

/*  Starts `n` nodes whose raft modules host `shards` groups (every node
    every shard: static placement) and waits, up to `timeout_ms`, until
    every shard has a leader and `n` voters as every node reports it.  */
tc_cluster_t *tc_new_sharded (int n, uint32_t shards, int timeout_ms);

/*  Starts `n` nodes with ring placement (the ring module loaded, raft
    setting placement = ring, Q = `shards`, R = `replicas`): node 0
    creates the cluster, the others join it; `settings` as tc_new_with
    (NULL: none).  Returns at once (the test waits for the placement it
    expects).  */
tc_cluster_t *tc_new_ring (int n, uint32_t shards, uint32_t replicas,
                           const tc_settings_t *settings);

/*  Starts one more node of a tc_new_ring cluster, joining through node
    `join_through`'s peer address; returns its index at once.  */
int tc_add_node_ring (tc_cluster_t *self, int join_through);

/*  Adds one node to a tc_new_sharded cluster (it joins every shard
    through node 0) and waits until every shard has `replicas` voters;
    returns its index.  */
int tc_add_node_sharded (tc_cluster_t *self, int replicas, int timeout_ms);

/*  Polls every running node's Cluster.Status until each shows all the
    cluster's shards with `replicas` voters, no learner and a leader;
    fails the test after `timeout_ms`.  */
void tc_wait_shards (tc_cluster_t *self, int replicas, int timeout_ms);

/*  Cluster.Status of node i (the caller's, to free with
    titan__v1__status_response__free_unpacked), or NULL when it did not
    answer OK.  */
Titan__V1__StatusResponse *tc_status (tc_cluster_t *self, int i);

/*  Stops every node, removes the directories, frees; nulls the pointer.  */
void tc_destroy (tc_cluster_t **self_p);

/*  Number of nodes (running or not).  */
int tc_size (tc_cluster_t *self);

/*  Adds one node that joins the group through node 0's peer address and
    waits until it is a voter; returns its index.  */
int tc_add_node (tc_cluster_t *self);

/*  Starts one more node that neither bootstraps nor finds a node to join
    (its join address has no listener), so it waits to be added with
    Cluster.Join; returns its index at once.  */
int tc_add_waiting_node (tc_cluster_t *self);

/*  Polls the leader's Cluster.Status until `count` members are voters
    ("up"); fails the test after 20 s.  */
void tc_wait_voters (tc_cluster_t *self, int count);

/*  Stops node `i` (a crash as far as its clients can tell).  */
void tc_stop_node (tc_cluster_t *self, int i);

/*  Starts node `i` again from its directory and ports.  */
void tc_start_node (tc_cluster_t *self, int i);

/*  Whether node `i` runs.  */
bool tc_running (tc_cluster_t *self, int i);

/*  Node i's id ("n0") and client (gRPC) address.  */
const char *tc_node_id (tc_cluster_t *self, int i);
const char *tc_client_addr (tc_cluster_t *self, int i);
const char *tc_peer_addr (tc_cluster_t *self, int i);

/*  The bus endpoint of running node i (for a test's own bus client).  */
const char *tc_bus_endpoint (tc_cluster_t *self, int i);

/*  The index of the node that leads, as the running nodes report it over
    Cluster.Status (a running leader that a running node names), polling
    up to `timeout_ms`; -1 when none was found in time.  */
int tc_get_leader (tc_cluster_t *self, int timeout_ms);

/*  A running node other than `not_this` (-1: any), or -1.  */
int tc_other (tc_cluster_t *self, int not_this);

/*  Put over gRPC to node i.  Returns the status; *revision (when not NULL)
    gets the revision on OK; details gets the server's message.  */
grpc_status_code tc_put (tc_cluster_t *self, int i, const char *key,
                         const char *value, int64_t timeout_ms,
                         uint64_t *revision, char *details, size_t details_size);

/*  Get over gRPC from node i (LOCAL or LINEARIZABLE).  On OK, *value_p is
    the value as a malloc'd C string (the caller's).  */
grpc_status_code tc_get (tc_cluster_t *self, int i, const char *key,
                         bool local, int64_t timeout_ms, char **value_p,
                         uint64_t *revision, char *details, size_t details_size);

/*  Put over an own connection (cli/tc_client.h; one per thread) instead
    of the cluster's: asserts nothing, so writer threads may call it.  An
    undecodable answer is INTERNAL.  Otherwise as tc_put.  */
grpc_status_code tc_conn_put (tc_conn_t *conn, const char *key,
                              const char *value, int64_t timeout_ms,
                              uint64_t *revision, char *details,
                              size_t details_size);

/*  Put through node i that must succeed, and a linearizable get through
    node i that must return `value` (check assertions naming the node).  */
void tc_put_ok (tc_cluster_t *self, int i, const char *key, const char *value,
                int64_t timeout_ms);
void tc_expect (tc_cluster_t *self, int i, const char *key, const char *value,
                int64_t timeout_ms);

/*  Shard 0 as node i reports it in Cluster.Status.  */
typedef struct {
    char leader [16];            /* node id, "" when none is known */
    uint64_t term;
    uint64_t commit_index;
    uint64_t applied_index;
    uint64_t keys;               /* live keys in node i's storage */
    uint64_t snapshot_index;     /* latest raft snapshot, 0: none */
    uint64_t snapshots_taken;    /* since node i's raft module started */
    uint64_t snapshots_installed;
} tc_shard_t;

/*  Fills *out from node i's Cluster.Status; false when it did not answer
    (or reported no single shard).  */
bool tc_shard_status (tc_cluster_t *self, int i, tc_shard_t *out);

/*  Polls a LOCAL read of `key` on node i until it equals `value`, up to
    `timeout_ms`.  Returns true when it did.  */
bool tc_wait_value (tc_cluster_t *self, int i, const char *key,
                    const char *value, int timeout_ms);

#endif
