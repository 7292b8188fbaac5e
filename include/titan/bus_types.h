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

/* replication (to "raft") */
#define TITAN_T_RAFT_PROPOSE   "raft.propose"   /* KvWrite -> KvReply, after commit + apply */
#define TITAN_T_RAFT_READ      "raft.read"      /* KvGet -> KvReply (ReadIndex, or LOCAL) */
#define TITAN_T_RAFT_STATUS    "raft.status"    /* RaftStatusRequest -> RaftStatusReply */
#define TITAN_T_RAFT_ADD       "raft.member_add"     /* RaftMemberChange -> RaftMemberReply */
#define TITAN_T_RAFT_REMOVE    "raft.member_remove"  /* RaftMemberChange -> RaftMemberReply */
#define TITAN_T_RAFT_TRANSFER  "raft.transfer_leader" /* RaftMemberChange -> RaftMemberReply */

#endif
