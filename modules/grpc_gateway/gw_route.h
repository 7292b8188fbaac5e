/*  grpc_gateway routing: which module on the node's bus serves each kind
    of request.  This is the one place that decides where writes go.

    Today a single node has no Raft module, so writes and reads go straight
    to the bitcask module (shard 0), which assigns revisions itself.  When
    the raft module lands, writes (and linearizable reads, via ReadIndex)
    are proposed to it instead: change GW_ROUTE_WRITES / GW_ROUTE_READS and
    nothing else in the gateway needs to know.
*/
#ifndef GW_ROUTE_H_INCLUDED
#define GW_ROUTE_H_INCLUDED

/*  Put, Delete, CompareAndSwap: the module, and the bus type of a write
    whose storage-level type is `kv_type` (TITAN_T_KV_PUT, _DELETE, _CAS).
    With raft: "raft" and TITAN_T_RAFT_PROPOSE for all three.  */
#define GW_ROUTE_WRITES              "bitcask"
#define GW_ROUTE_WRITE_TYPE(kv_type) (kv_type)
/*  Get, both consistency levels (one replica: LOCAL is linearizable).
    With raft: "raft" and TITAN_T_RAFT_READ.  */
#define GW_ROUTE_READS               "bitcask"
#define GW_ROUTE_READ_TYPE           TITAN_T_KV_GET
/*  Storage statistics and merge: always the local storage engine.  */
#define GW_ROUTE_STORAGE  "bitcask"
/*  Module list / restart / reload.  */
#define GW_ROUTE_ADMIN    "kernel"
/*  The only shard of a single-node store.  */
#define GW_ROUTE_SHARD    0u

#endif
