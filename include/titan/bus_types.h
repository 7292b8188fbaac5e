/*  Titan-KV bus message types: the `type` frame of every envelope, with the
    payload message of proto/bus.proto that each carries.  A reply carries
    its request's type; its payload is the named reply message.  */
#ifndef TITAN_BUS_TYPES_H_INCLUDED
#define TITAN_BUS_TYPES_H_INCLUDED

/* kernel bookkeeping */
#define TITAN_T_HELLO          "bus.hello"      /* event, no payload: module (re)connected */

/* kernel admin (to "kernel") */
#define TITAN_T_MODULE_LIST    "admin.list"     /* ModuleListRequest -> ModuleListReply */
#define TITAN_T_MODULE_RESTART "admin.restart"  /* ModuleCommand -> AdminReply */
#define TITAN_T_MODULE_RELOAD  "admin.reload"   /* ModuleCommand -> AdminReply */
#define TITAN_T_LOG_LEVEL      "admin.log_level" /* LogLevelRequest -> LogLevelReply */

/* storage (to "bitcask") */
#define TITAN_T_KV_PUT         "kv.put"         /* KvWrite (op PUT) -> KvReply */
#define TITAN_T_KV_DELETE      "kv.delete"      /* KvWrite (op DELETE) -> KvReply */
#define TITAN_T_KV_CAS         "kv.cas"         /* KvWrite (op CAS) -> KvReply */
#define TITAN_T_KV_GET         "kv.get"         /* KvGet -> KvReply */
#define TITAN_T_KV_APPLY_BATCH "kv.apply_batch" /* KvApplyBatch -> KvApplyBatchReply */
#define TITAN_T_KV_STATS       "kv.stats"       /* KvStatsRequest -> KvStatsReply */
#define TITAN_T_KV_MERGE       "kv.merge"       /* KvMergeRequest -> KvMergeReply */
#define TITAN_T_KV_SNAPSHOT_BEGIN   "kv.snapshot_begin"   /* KvSnapshotBegin -> KvSnapshotInfo */
#define TITAN_T_KV_SNAPSHOT_READ    "kv.snapshot_read"    /* KvSnapshotRead -> KvSnapshotChunk */
#define TITAN_T_KV_SNAPSHOT_END     "kv.snapshot_end"     /* KvSnapshotEnd -> KvReply */
#define TITAN_T_KV_SNAPSHOT_INSTALL "kv.snapshot_install" /* KvSnapshotInstall -> KvSnapshotInstallReply */
#define TITAN_T_KV_DROP_SHARD  "kv.drop_shard"  /* KvDropShard -> KvReply (issue 6) */
#define TITAN_T_KV_REPAIR      "kv.repair"      /* KvRepair -> KvReply (issue 7) */
#define TITAN_T_KV_SCRUB       "kv.scrub"       /* KvScrubRequest -> KvScrubReply */
#define TITAN_T_KV_CORRUPT     "kv.corrupt"     /* KvCorrupt event, bitcask -> gateway */

/* replication (to "raft") */
#define TITAN_T_RAFT_PROPOSE   "raft.propose"   /* KvWrite -> KvReply, after commit + apply */
#define TITAN_T_RAFT_READ      "raft.read"      /* KvGet -> KvReply (ReadIndex, or LOCAL) */
#define TITAN_T_RAFT_STATUS    "raft.status"    /* RaftStatusRequest -> RaftStatusReply */
#define TITAN_T_RAFT_ADD       "raft.member_add"     /* RaftMemberChange -> RaftMemberReply */
#define TITAN_T_RAFT_REMOVE    "raft.member_remove"  /* RaftMemberChange -> RaftMemberReply */
#define TITAN_T_RAFT_TRANSFER  "raft.transfer_leader" /* RaftMemberChange -> RaftMemberReply */

/* membership and placement (to "ring").  The ring module is the state
   machine of the meta group: the raft module hosts that group (shard id
   TITAN_META_SHARD) with "ring" as its storage module, so the ring module
   answers kv.apply_batch, kv.stats and kv.snapshot_* for that shard exactly
   as the bitcask module does for data shards.  Each applied KvOp of the meta
   group is a PUT whose key is TITAN_RING_CMD_KEY and whose value is one
   membership command (ring_cmd_encode, modules/ring/ring_member.h).  After
   every change it sends a RingTable event (type ring.table, no reply) to
   each subscriber module (setting ring/subscribers, default
   "raft,grpc_gateway"), and answers a RingTableRequest with the current
   RingTable. */
#define TITAN_META_SHARD       0xFFFFFFFFu      /* shard id of the meta group */
#define TITAN_RING_CMD_KEY     "ring.cmd"       /* key of every meta-group op */
#define TITAN_T_RING_TABLE     "ring.table"     /* RingTableRequest -> RingTable; also an event */

/* metrics (modules/metrics gathers; the gateway answers gw.stats) */
#define TITAN_T_GW_STATS       "gw.stats"       /* GwStatsRequest -> GwStatsReply */

#endif
