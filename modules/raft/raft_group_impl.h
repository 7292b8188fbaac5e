/*  raft_group internals shared by its four files: raft_group.c (open,
    close, the ready loop, status), raft_group_apply.c (apply pipeline and
    client dedup), raft_group_requests.c (bus requests, joins, the
    leader's membership duties, reads and waiters) and
    raft_group_snapshot.c (snapshots, compaction, install).  Not a public header:
    only those files include it.  */
#ifndef RAFT_GROUP_IMPL_H_INCLUDED
#define RAFT_GROUP_IMPL_H_INCLUDED

#include "raft_group.h"
#include "raft_hardstate.h"
#include "raft_log.h"
#include "raft_members.h"
#include "raft_snapshot_store.h"
#include "raft_storage_adapter.h"

#define BATCH_MAX_OPS        4096
#define BATCH_MAX_BYTES      (16u << 20)
#define APPLY_RETRY_MS       200
#define APPLY_RESEND_MS      5000      /* no reply at all: send again */
#define HARDSTATE_LAZY_MS    1000
#define MAX_PENDING_ADDS     RAFT_MAX_MEMBERS
#define DEDUP_MAX_CLIENTS    20000
#define DEDUP_WINDOW         16
#define KEY_MAX              65535u

/*  A committed entry copied out of a ready, waiting to be applied.  */
typedef struct {
    uint64_t index;
    uint64_t term;
    uint32_t type;
    uint32_t size;
    uint8_t *data;
    int slot;                  /* op number in the in-flight batch, or -1 */
    bool dup;                  /* a duplicate write (answered from dedup) */
    uint64_t seq;              /* its client sequence */
    char *client_id;           /* dup: whose record answers it */
} rg_entry_t;

/*  The result of one applied write of a client.  */
typedef struct {
    uint64_t seq;
    uint64_t index;
    bool known;                /* result known (else ABORTED on a retry) */
    int code;
    uint64_t current_revision;
    uint64_t deleted;
} rg_dedup_rec_t;

/*  A client's DEDUP_WINDOW applied writes of highest sequence, so that a client
    may have that many writes in flight, in any order, and still have each
    of them deduplicated.  */
typedef struct {
    rg_dedup_rec_t recs [DEDUP_WINDOW];
    uint32_t count;            /* records held, <= DEDUP_WINDOW */
    uint64_t last_index;       /* index of its latest write (eviction) */
} rg_dedup_t;

/*  One op's result while a batch is applied op by op (split mode).  */
typedef struct {
    int code;
    uint64_t revision;
    uint64_t current_revision;
    uint64_t deleted;
    char message [160];
} rg_result_t;

typedef enum { W_PROPOSE, W_MEMBER } rg_waiter_kind_t;

typedef struct {
    uint64_t index;
    uint64_t term;
    rg_waiter_kind_t kind;
    titan_envelope_t *env;
    int64_t deadline;
} rg_waiter_t;

/*  A proposal forwarded to the leader, waiting for its RESULT
    (raft_group_forward.c).  */
typedef struct {
    uint64_t id;               /* request id in the PROPOSE */
    uint64_t leader;           /* raft id of the node it went to */
    titan_envelope_t *env;     /* the raft.propose to answer */
    int64_t deadline;
    bool moved;                /* another leader seen since: deadline cut */
    uint32_t tries;            /* earlier forwards of the same write */
} rg_forward_t;

#define RG_MAX_FORWARDS      4096      /* pending forwards per group */

typedef struct {
    uint64_t ctx;
    uint64_t index;
    bool ready;                /* index known */
    titan_envelope_t *env;
    int64_t deadline;
} rg_read_t;

typedef struct {
    uint64_t corr;
    titan_envelope_t *env;
    int64_t deadline;
} rg_get_t;

typedef struct {
    raft_wire_node_t node;
    uint64_t id;
    titan_envelope_t *env;     /* raft.member_add waiting, or NULL */
    uint64_t info_term;        /* term in which its member info was proposed */
    int64_t deadline;
} rg_add_t;

typedef struct rg_check rg_check_t;

struct raft_group {
    raft_group_config_t cfg;
    char *dir;
    char *storage_module;
    raft_log_t *log;
    raft_hardstate_file_t *hs;
    raft_snapshot_store_t *snaps;
    raft_storage_adapter_t *adapter;
    raft_t *core;
    raft_members_t *members;
    uint64_t id;
    uint32_t rand_state;

    raft_hardstate_t saved_hs;
    raft_hardstate_t want_hs;
    bool hs_dirty;
    int64_t hs_saved_at;

    rg_entry_t *queue;          /* apply queue: [head, head + count) */
    size_t q_head, q_count, q_cap;
    uint64_t applied;          /* applied by the storage module */
    bool busy;                 /* a batch is in flight */
    size_t batch_len;          /* entries of the queue it covers */
    size_t batch_ops;
    uint64_t batch_corr;
    int64_t batch_sent_at;
    uint8_t *batch_buf;
    size_t batch_size;
    rg_result_t *split;         /* split mode: results so far, else NULL */
    size_t split_slot;         /* the op in flight in split mode */
    int64_t retry_at;

    zhashx_t *dedup;           /* client id -> rg_dedup_t */

    rg_waiter_t *waiters;       /* sorted by index */
    size_t n_waiters, cap_waiters;
    rg_forward_t *fwds;         /* forwarded, awaiting their RESULT */
    size_t n_fwds, cap_fwds;
    uint64_t next_fwd_id;
    raft_group_forward_stats_t fwd_stats;
    int64_t fwd_logged_at;     /* last warning of a dropped forward */
    zlistx_t *reads;           /* rg_read_t */
    zlistx_t *gets;            /* rg_get_t */
    uint64_t next_ctx;
    rg_add_t adds [MAX_PENDING_ADDS];
    size_t n_adds;
    uint64_t self_info_term;   /* term in which we proposed our own info */
    raft_role_t last_role;

    Titan__Bus__RaftMember status_members [RAFT_MAX_MEMBERS * 2];
    Titan__Bus__RaftMember *status_ptrs [RAFT_MAX_MEMBERS * 2];
    /* snapshots (raft_group_snapshot.c) */
    raft_config_t applied_cfg; /* configuration as of `applied` */
    int snap_state;            /* SNAP_IDLE, SNAP_BEGIN, SNAP_READ */
    uint64_t snap_corr;
    uint64_t snap_late_corr;   /* the last kv.snapshot_begin given up on:
                                  its late answer is ended (0: none); an
                                  older one's is dropped, and the storage
                                  module releases that snapshot when idle */
    uint64_t snap_id;          /* the storage module's snapshot id */
    uint64_t snap_index;       /* A: the applied index it covers */
    uint64_t snap_durable;     /* the storage's durable applied index at
                                  its seal: the log is kept above it */
    uint64_t snap_term;
    raft_config_t snap_cfg;
    uint64_t snap_total;       /* storage stream bytes */
    uint64_t snap_last_bytes;  /* data bytes of the latest snapshot (taken,
                                  installed, or found at start; 0: none) */
    uint64_t snap_log_bytes;   /* entry bytes applied since then */
    uint64_t snap_offset;
    uint8_t *snap_header;      /* our header + group state, captured at A */
    size_t snap_header_size;
    raft_snapshot_writer_t *snap_writer;
    int64_t snap_sent_at;
    int64_t snap_retry_at;
    raft_snapshot_writer_t *rx_writer;  /* a snapshot being received */
    uint64_t rx_index;         /* its index and term */
    uint64_t rx_term;
    uint64_t rx_written;       /* bytes staged so far */
    uint8_t *rx_head;          /* its first bytes: header + group state */
    size_t rx_head_size;
    bool installing;           /* storage module must get the snapshot */
    uint64_t inst_index;       /* its index */
    raft_snapshot_reader_t *inst_reader;
    uint64_t inst_base;        /* data offset of the storage stream */
    uint64_t inst_storage;     /* the applied index the stream covers */
    uint64_t inst_offset;      /* storage stream bytes acknowledged */
    uint8_t *inst_buf;         /* the chunk in flight */
    size_t inst_len;
    bool inst_last;
    uint64_t inst_corr;
    int64_t inst_sent_at;
    int64_t inst_retry_at;
    uint32_t inst_failures;
    uint64_t snaps_taken;
    uint64_t snaps_installed;
    bool snap_wanted;          /* take a snapshot as soon as possible */
    bool snap_hold;            /* take none (a rebuild keeps the log) */
    rg_check_t *check;         /* the consistency check (raft_group_check.c) */
    /* the ready being persisted (raft_group_ready_write .. _finish) */
    raft_ready_t rd;
    bool rd_held;              /* taken from the core, not yet advanced */
    bool rd_sent;              /* its messages left before the sync (leader) */
    bool hs_written;           /* its hard state waits for the sync */
    int sync_rc;               /* status of raft_group_ready_sync */
    const char *sync_what;     /* its failure's message (the file's) */
    int failed;
};

#define SNAP_IDLE   0
#define SNAP_BEGIN  1          /* kv.snapshot_begin in flight (apply paused) */
#define SNAP_READ   2          /* reading the stream into the store */

/* ------------------------------------------------------------ snapshots */

/*  At open: loads the group state of the latest snapshot (address book,
    dedup table, configuration) and notes whether the storage module still
    has to install it (its applied index is below the snapshot's).  */
int rg_snapshot_open (raft_group_t *self, char *err, size_t err_size);

/*  A chunk of a snapshot being received (a ready's snap_chunks, in
    order): written to a new snapshot in the store (offset 0 starts one,
    abandoning any other), its header and group state kept to be checked
    at the end.  Returns 0 or a fatal error.  */
int rg_snapshot_stage (raft_group_t *self, const raft_snapshot_chunk_t *chunk);

/*  A ready's snapshot (received from the leader; its chunks staged by
    rg_snapshot_stage): verifies its header and group state, commits it to
    the store, resets the log after it and starts its install into the
    storage module.  Returns 0 or a fatal error.  */
int rg_snapshot_received (raft_group_t *self, const raft_snapshot_t *snap);

/*  Starts installing the stored snapshot `index` into the storage module
    (applying waits until it is in; see rg_snapshot_received).  */
void rg_snapshot_install_stored (raft_group_t *self, uint64_t index);

/*  Drives the snapshot policy and the install; called by process.  */
void rg_snapshot_work (raft_group_t *self);

/*  A bus reply for the snapshot machinery: true when taken.  */
bool rg_snapshot_on_reply (raft_group_t *self, titan_envelope_t **env_p);

/*  True while applying must wait (install pending, or a snapshot is
    being begun at the current applied index).  */
bool rg_snapshot_blocks_apply (raft_group_t *self);

/*  Applies the local effect of a configuration entry to applied_cfg.  */
void rg_snapshot_note_conf (raft_group_t *self, uint32_t type,
                            const uint8_t *data, uint32_t size);

/*  Releases what the snapshot machinery holds (at destroy).  */
void rg_snapshot_close (raft_group_t *self);


/* ------------------------------------------------------------ consistency */

/*  Creates the group's consistency check state; 0 or -ENOMEM.  */
int rg_check_open (raft_group_t *self);

/*  Frees it (at destroy).  */
void rg_check_close (raft_group_t *self);

/*  Polls the storage module's digests, reports them to the leader, and
    on the leader compares; drives a rebuild.  Called by process.  */
void rg_check_work (raft_group_t *self);

/*  A bus reply for the check (kv.stats): true when taken.  */
bool rg_check_on_reply (raft_group_t *self, titan_envelope_t **env_p);

/*  Inserts the log's entries [lo, hi) before the apply queue's head (a
    rebuild applies them again over the installed snapshot).  Returns 0,
    or the log's error or -ENOMEM (the queue is then unchanged).  */
int rg_queue_prepend_log (raft_group_t *self, uint64_t lo, uint64_t hi);

/* ------------------------------------------------------------ shared */

/*  Marks the group failed with `rc` (the first failure wins) and logs
    `what`; returns the failure status.  */
int rg_fail (raft_group_t *self, int rc, const char *what);

/*  Sends `reply` as the answer to *env_p, then destroys the request.  */
void rg_reply_kv (raft_group_t *self, titan_envelope_t **env_p,
                  const Titan__Bus__KvReply *reply);
void rg_reply_member (raft_group_t *self, titan_envelope_t **env_p,
                      const Titan__Bus__RaftMemberReply *reply);

/*  The leader as far as this node knows: its node id and client address
    (empty strings when unknown).  */
void rg_leader_hint (raft_group_t *self, const char **id_p,
                     const char **client_p);

/*  Answers a request with `code` and `message` (and the leader hint when
    UNAVAILABLE), then destroys it.  */
void rg_refuse_kv (raft_group_t *self, titan_envelope_t **env_p, int code,
                   const char *message);
void rg_refuse_member (raft_group_t *self, titan_envelope_t **env_p, int code,
                       const char *message);

/*  Records a peer's addresses and points the transport at it.  */
void rg_note_member (raft_group_t *self, const raft_wire_node_t *node,
                     bool replicated);

/*  The dedup table's item destructor.  */
void rg_dedup_destructor (void **item);

/*  Classifies the write (client, seq) about to be applied: returns its
    record when it was applied already (a duplicate), NULL otherwise; sets
    *stale when it is older than every write kept for that client with the
    window full (its fate is unknown: it must not be applied).  */
rg_dedup_rec_t *rg_dedup_find (raft_group_t *self, const char *client_id,
                               uint64_t seq, bool *stale);

/*  Notes that the write of (client, seq) was applied at `index` (result
    known or not yet); evicts the client whose latest write is oldest when
    the table is full (the same on every replica, since they apply the
    same log).  NULL when out of memory.  */
rg_dedup_rec_t *rg_dedup_note (raft_group_t *self, const char *client_id,
                               uint64_t seq, uint64_t index, bool known);

/*  Frees what an apply queue entry holds.  */
void rg_entry_free (rg_entry_t *e);

/*  Copies a committed entry to the tail of the apply queue.  Returns 0 or
    -ENOMEM.  */
int rg_queue_push (raft_group_t *self, const raft_entry_t *e);

/*  Sends (again) the in-flight batch's bytes to the storage module.
    Returns 0 or the bus error (then it is retried after APPLY_RETRY_MS).  */
int rg_send_batch (raft_group_t *self);

/*  Builds the next batch from the head of the apply queue and sends it;
    a batch without writes completes at once.  */
void rg_pump_apply (raft_group_t *self);

/*  Starts adding `node` (leader only): member info, then learner, then
    promotion once caught up (run by rg_membership_duties; by the planner
    when cfg.managed).  `env_p` (may be NULL) is a raft.member_add to
    answer once added.  Returns 0, -EEXIST or -EBUSY with why.  */
int rg_start_add (raft_group_t *self, const raft_wire_node_t *node,
                  titan_envelope_t **env_p, char *why, size_t why_size);

/*  Leader only: our own member info, the adds in progress, promotions.
    On a non-leader: refuses the adds in progress.  */
void rg_membership_duties (raft_group_t *self);

/*  The bus code of a raft_group_propose_local failure `rc`: UNAVAILABLE
    when this node does not lead (or is handing leadership over), the
    writer may retry at the leader; INTERNAL otherwise.  */
int rg_propose_refusal (int rc);

/*  Checks a packed KvWrite of a raft.propose (shard, op, key and value
    sizes, client id); returns true, or false with the reason in `why`.  */
bool rg_write_valid (raft_group_t *self, const uint8_t *kvwrite, size_t size,
                     char *why, size_t why_size);

/*  Adds a waiter for the entry (index, term), taking *env_p; it is
    answered when that index is applied, or after `timeout` ms.  */
void rg_waiter_add (raft_group_t *self, uint64_t index, uint64_t term,
                    rg_waiter_kind_t kind, titan_envelope_t **env_p,
                    int64_t timeout);

/*  Answers the waiters at or below `index` when a snapshot moved the
    applied index there: their entries' results are not known here.  */
void rg_waiters_covered (raft_group_t *self, uint64_t index);

/*  Follower with forward_proposals on and a known leader: forwards the
    (validated) raft.propose to the leader and takes *env_p; returns false
    (*env_p untouched) when it cannot, and the caller refuses it.  */
bool rg_forward_propose (raft_group_t *self, titan_envelope_t **env_p);

/*  Answers the forwarded proposals whose RESULT did not come in time.  */
void rg_expire_forwards (raft_group_t *self);

/*  Answers every forwarded proposal still pending (UNAVAILABLE) and frees
    the table (at destroy).  */
void rg_forwards_close (raft_group_t *self);

/*  Serves the linearizable reads whose index is applied; times out the
    others.  */
void rg_serve_reads (raft_group_t *self);

/*  Answers the proposals, changes and relayed reads that waited too long. */
void rg_expire_waiters (raft_group_t *self);

#endif
