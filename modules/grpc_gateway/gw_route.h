/*  grpc_gateway routing: which module on the node's bus serves each kind
    of request.  This is the one place that decides where writes go.

    Writes (Put, Delete, CompareAndSwap) are proposed to the raft module,
    which answers once the entry is committed by a majority and applied to
    the local storage engine; the revision of a write is its Raft index.
    Reads go to the raft module too: LINEARIZABLE ones pass a ReadIndex
    barrier (on a follower the core asks the leader), LOCAL ones are served
    by the local replica at once; a LOCAL read of a shard that raft has
    just confirmed as hosted here goes straight to the storage engine
    (gw_local.h).  A follower's raft module forwards a proposal to
    its leader over the peer transport (modules/raft/forward_proposals,
    on by default) and answers once it applied the entry; a non-leader
    that cannot (setting off, no leader known) refuses with UNAVAILABLE
    and the leader's addresses, and the gateway then forwards the call
    (gateway.c, gw_forward.h).  It keeps the leader last named for each
    shard and sends linearizable reads for that shard straight there (and
    writes too when forward_proposals is off, or the shard has no replica
    here).  Storage statistics and merge stay on
    the local storage engine; cluster status and membership come from the
    raft module.
*/
#ifndef GW_ROUTE_H_INCLUDED
#define GW_ROUTE_H_INCLUDED

/*  Put, Delete, CompareAndSwap: the module, and the bus type of a write
    whose storage-level type is `kv_type` (TITAN_T_KV_PUT, _DELETE, _CAS):
    raft.propose for all three (the KvOp kind says which).  */
#define GW_ROUTE_WRITES              "raft"
#define GW_ROUTE_WRITE_TYPE(kv_type) ((void) (kv_type), TITAN_T_RAFT_PROPOSE)
/*  Get, both consistency levels (KvGet.consistency says which).  */
#define GW_ROUTE_READS               "raft"
#define GW_ROUTE_READ_TYPE           TITAN_T_RAFT_READ
/*  A LOCAL Get of a shard confirmed as hosted here (gw_local.h): the same
    KvGet payload, straight to the storage engine.  */
#define GW_ROUTE_LOCAL_READS         "bitcask"
#define GW_ROUTE_LOCAL_READ_TYPE     TITAN_T_KV_GET
/*  Cluster status, membership, leadership.  */
#define GW_ROUTE_REPLICATION         "raft"
/*  Storage statistics and merge: always the local storage engine.  */
#define GW_ROUTE_STORAGE  "bitcask"
/*  Module list / restart / reload.  */
#define GW_ROUTE_ADMIN    "kernel"
/*  Keys map to shards with ring_key_shard (modules/ring/ring_hash.h) over
    Q shards: Q is the ring's table's when the ring module publishes one,
    else the raft module's `shards` setting (1 by default, so everything
    is shard 0, as a single Raft group).  The shard of the requests that
    carry no key (status, storage statistics).  */
#define GW_ROUTE_SHARD    0u

#endif
