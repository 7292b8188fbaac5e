/*  The pure Raft core: one consensus group as a deterministic state machine.

    The core does no I/O, reads no clock, draws no random numbers of its own
    and starts no threads.  Its inputs are calls: raft_tick (one unit of
    logical time), raft_step (a message from a peer), raft_propose and
    raft_propose_conf (new entries, leader only), raft_read_index (a
    linearizable read barrier), raft_transfer_leadership.  Its outputs are
    collected in a raft_ready_t which the caller drains and acknowledges, the
    model of etcd raft's Ready/Advance:

        while (raft_has_ready (r)) {
            raft_ready_t rd;
            raft_ready (r, &rd);
            1. stage rd.snap_chunks (streaming mode), then install
               rd.snapshot (if any) into the FSM and the log store;
            2. append rd.entries to the log store (an entry at index i replaces
               the stored entry at i and every later one), then persist
               rd.hard_state (if rd.has_hard_state), fsync;
            3. send rd.msgs (only after step 2: they may promise durability);
            4. apply rd.committed in order; hand rd.reads to their waiters;
            raft_advance (r, &rd);
        }

    Between raft_ready and raft_advance the caller must not call any other
    function of the core except the read-only accessors (asserted); a ready
    that cannot be completed (disk failure) is abandoned by destroying the
    core.  A node hosting many groups may batch: take the readies of all
    its groups, write them all with one fsync, then send and advance each.
    Everything a ready points to is owned by the core and freed by
    raft_advance: copy what must outlive it.  Term and vote must be durable
    before rd.msgs leave; a hard state differing only in commit may be
    written lazily (the commit index is recomputed after a restart, and
    raft_options_t.applied, the FSM's durable applied index, raises it).

    Bootstrap: a node given a bootstrap configuration and an empty storage
    writes entries 1..n (term 1, RAFT_CONF_BOOTSTRAP_VOTER, one per voter)
    and commits them; every initial member must use the same list.  A node
    joining later starts with no configuration and learns it from the
    leader's log or snapshot.  Proposals are accepted by the leader only
    (the caller forwards them); ReadIndex requests are forwarded by the core.

    Many groups live in one process: a core has no global state and every
    message carries its group id, so one transport serves every group.

    Log storage contract (raft_storage_t).  The core reads the persisted log
    through a table of functions supplied by the caller (raft_memstore.h for
    tests, the durable segmented log in production).  The storage holds a
    snapshot (index S, term, configuration, opaque data; S = 0 for none) and
    the entries S+1 .. L, all persisted.  The core never writes to it: the
    caller writes what readies tell it to write.  Entries the core holds but
    the caller has not yet persisted are "unstable": the core keeps them in
    memory, gives them out in rd.entries and forgets them at raft_advance,
    after which it reads them from the storage.  A crash loses unstable
    entries, which Raft tolerates because nothing was acknowledged for them.
    Functions return 0 or a negative status; RAFT_ECOMPACTED means the index
    is at or below the snapshot index (for term: below S, since term(S) is
    the snapshot term), RAFT_EUNAVAILABLE means it is above L.  Any other
    negative value is a storage failure: the core stops (raft_step etc.
    return it and the core refuses further work) because a consensus member
    that cannot read its log must not go on voting.

    Configuration: single-server changes are ordinary log entries
    (RAFT_ENTRY_CONF) that take effect as soon as they are appended, as in
    the Raft dissertation section 4; only one may be uncommitted at a time.
    A new member is added as a learner, promoted to voter when the caller
    sees it caught up (raft_progress), and removed with RAFT_CONF_REMOVE.

    Errors follow include/titan/status.h: 0 or a negative code.
*/
#ifndef TITAN_RAFT_CORE_H_INCLUDED
#define TITAN_RAFT_CORE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "titan/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/*  Status codes of the core's own conditions (beyond status.h and errno). */
#define RAFT_ECOMPACTED    (-10101)  /* index at/below the snapshot */
#define RAFT_EUNAVAILABLE  (-10102)  /* index above the last entry */
#define RAFT_ENOTLEADER    TITAN_ENOLEADER
#define RAFT_EBUSY         (-EBUSY)  /* change or transfer in progress */

#define RAFT_MAX_MEMBERS   16        /* voters + learners of one group */

typedef enum {
    RAFT_ENTRY_NORMAL = 0,    /* caller's command: opaque data */
    RAFT_ENTRY_NOOP = 1,      /* appended by a new leader; no data */
    RAFT_ENTRY_CONF = 2       /* a membership change, see raft_conf_op_t */
} raft_entry_type_t;

typedef struct {
    uint64_t term;
    uint64_t index;
    uint32_t type;            /* raft_entry_type_t */
    uint32_t size;
    uint8_t *data;            /* size bytes, NULL when size == 0 */
} raft_entry_t;

/*  A group configuration: voters and non-voting learners.  */
typedef struct {
    uint32_t n_voters;
    uint32_t n_learners;
    uint64_t voters[RAFT_MAX_MEMBERS];
    uint64_t learners[RAFT_MAX_MEMBERS];
} raft_config_t;

typedef enum {
    RAFT_CONF_ADD_LEARNER = 1,
    RAFT_CONF_PROMOTE = 2,
    RAFT_CONF_REMOVE = 3,
    /*  Only in the entries 1..n that raft_new writes when it bootstraps a
        group: adds a voter directly.  raft_propose_conf refuses it.  */
    RAFT_CONF_BOOTSTRAP_VOTER = 4
} raft_conf_op_t;

typedef struct {
    uint64_t index;           /* last index the snapshot covers; 0: none */
    uint64_t term;
    raft_config_t config;     /* configuration as of `index` */
} raft_snapshot_meta_t;

typedef struct {
    uint64_t term;
    uint64_t vote;            /* 0: none */
    uint64_t commit;
} raft_hard_state_t;

typedef enum {
    RAFT_FOLLOWER = 0,
    RAFT_PRECANDIDATE,
    RAFT_CANDIDATE,
    RAFT_LEADER
} raft_role_t;

typedef enum {
    RAFT_MSG_PREVOTE = 1,
    RAFT_MSG_PREVOTE_RESP,
    RAFT_MSG_VOTE,
    RAFT_MSG_VOTE_RESP,
    RAFT_MSG_APPEND,          /* log_index/log_term = previous entry */
    RAFT_MSG_APPEND_RESP,
    RAFT_MSG_HEARTBEAT,
    RAFT_MSG_HEARTBEAT_RESP,
    RAFT_MSG_SNAPSHOT,        /* one chunk of an InstallSnapshot */
    RAFT_MSG_SNAPSHOT_RESP,
    RAFT_MSG_TIMEOUT_NOW,     /* leadership transfer: campaign now */
    RAFT_MSG_READ_INDEX,      /* follower asks the leader for a read index */
    RAFT_MSG_READ_INDEX_RESP
} raft_msg_type_t;

/*  One message between peers.  Field use by type:
      PREVOTE/VOTE:      log_index, log_term = candidate's last entry;
                         force = transfer (bypasses the leader lease).
      *_RESP of votes:   reject.
      APPEND:            log_index, log_term = entry before `entries`;
                         commit; entries.
      APPEND_RESP:       reject=false: index = highest index now matching.
                         reject=true: index = rejected log_index,
                         hint_index/hint_term = conflict hint.
      HEARTBEAT(_RESP):  commit; ctx = read-index round echoed back.
      SNAPSHOT:          snapshot (meta), offset, data/size, done.
      SNAPSHOT_RESP:     snapshot.index, offset = next offset wanted,
                         done = installed (index = its snapshot index).
      READ_INDEX(_RESP): ctx = caller's request id; index = read index;
                         reject = the node asked could not serve it.  */
typedef struct {
    uint64_t group;
    uint64_t from;
    uint64_t to;
    uint32_t type;            /* raft_msg_type_t */
    uint64_t term;
    uint64_t log_index;
    uint64_t log_term;
    uint64_t commit;
    uint64_t index;
    uint64_t hint_index;
    uint64_t hint_term;
    uint64_t ctx;
    bool reject;
    bool force;
    bool done;
    size_t n_entries;
    raft_entry_t *entries;
    raft_snapshot_meta_t snapshot;
    uint64_t offset;
    uint32_t size;
    uint8_t *data;
} raft_msg_t;

/*  A confirmed read barrier: once the local state machine has applied
    `index`, a read served from it is linearizable.  With `failed` set the
    request was dropped (the leader serving it stepped down, or the node
    asked was no longer leader): retry it, at once or at the new leader.
    A failed state's index is UINT64_MAX, so that a caller that overlooks
    the flag waits (and times out) rather than serving a stale read.  */
typedef struct {
    uint64_t ctx;
    uint64_t index;
    bool failed;
} raft_read_state_t;

/*  A received snapshot.  data is NULL in streaming mode (see
    raft_options_t.snapshot_stream): the caller assembled it from chunks.  */
typedef struct {
    raft_snapshot_meta_t meta;
    uint64_t size;
    uint8_t *data;
} raft_snapshot_t;

/*  Streaming mode: one piece of an incoming snapshot, to be written to the
    caller's staging area at `offset` (persisted with the rest of the
    ready).  offset 0 starts a new snapshot: discard any staged bytes.  */
typedef struct {
    raft_snapshot_meta_t meta;
    uint64_t offset;
    uint32_t size;
    uint8_t *data;
} raft_snapshot_chunk_t;

typedef struct {
    raft_snapshot_t *snapshot;     /* to install first, or NULL */
    raft_entry_t *entries;         /* to append (persist) */
    size_t n_entries;
    bool has_hard_state;
    raft_hard_state_t hard_state;  /* to persist with the entries */
    raft_msg_t *msgs;              /* to send after persisting */
    size_t n_msgs;
    raft_entry_t *committed;       /* to apply, in order */
    size_t n_committed;
    raft_read_state_t *reads;
    size_t n_reads;
    raft_snapshot_chunk_t *snap_chunks;  /* streaming mode only: to stage */
    size_t n_snap_chunks;                /* before installing rd.snapshot */
} raft_ready_t;

/*  The log storage interface (see the contract at the top).  */
typedef struct {
    void *ud;
    /*  Index of the first entry held: snapshot index + 1.  */
    uint64_t (*first_index) (void *ud);
    /*  Index of the last persisted entry, or the snapshot index if none.  */
    uint64_t (*last_index) (void *ud);
    /*  Term of entry `index`, for snapshot index <= index <= last.  */
    int (*term) (void *ud, uint64_t index, uint64_t *term);
    /*  Copies entries [lo, hi) into a new array given to the caller (*out,
        *n; free with raft_entries_free), stopping once max_bytes of data
        are reached but always at least one entry.  lo >= first, hi <=
        last + 1, lo < hi.  */
    int (*entries) (void *ud, uint64_t lo, uint64_t hi, size_t max_bytes,
                    raft_entry_t **out, size_t *n);
    /*  The current snapshot's meta (index 0 when there is none).  */
    int (*snapshot_meta) (void *ud, raft_snapshot_meta_t *meta);
    /*  Reads up to cap bytes of the snapshot data at `offset` of the
        snapshot whose index is `index` into buf; *n gets the count, *total
        the data's size.  RAFT_ECOMPACTED if that snapshot is gone.  */
    int (*snapshot_read) (void *ud, uint64_t index, uint64_t offset,
                          uint8_t *buf, size_t cap, size_t *n, uint64_t *total);
} raft_storage_t;

/*  Test-only fault injection: deliberate bugs, to prove the simulation's
    checker catches them.  Never set in production.  */
#define RAFT_BUG_COMMIT_OLD_TERM  0x1u  /* commit previous-term entries by counting */
#define RAFT_BUG_VOTE_ANY_LOG     0x2u  /* grant votes without the log check */
#define RAFT_BUG_READ_NO_QUORUM   0x4u  /* answer ReadIndex without a heartbeat round */
#define RAFT_BUG_VOTE_TWICE       0x8u  /* grant a second vote in one term */
#define RAFT_BUG_NO_PREV_CHECK    0x10u /* accept APPEND without the previous-entry check */
#define RAFT_BUG_LEASE_LONG       0x20u /* read lease three times too long */
#define RAFT_BUG_LEASE_TRANSFER   0x40u /* keep the lease through a transfer */

typedef struct {
    uint64_t id;                   /* this node, nonzero */
    uint64_t group;                /* group id stamped on every message */
    const raft_storage_t *storage; /* borrowed; outlives the core */
    /*  The configuration to start from when storage is empty (bootstrap);
        NULL or empty for a node waiting to be added.  */
    const raft_config_t *bootstrap;
    raft_hard_state_t hard_state;  /* as persisted (zeros when new) */
    uint64_t applied;              /* last index the FSM holds (>= snapshot index) */
    uint32_t election_ticks;       /* base election timeout, e.g. 10 */
    uint32_t heartbeat_ticks;      /* e.g. 1; < election_ticks */
    /*  Injected randomness: returns a value in [0, bound).  The election
        timeout is election_ticks + rand_fn (rand_ud, election_ticks).  */
    uint32_t (*rand_fn) (void *rand_ud, uint32_t bound);
    void *rand_ud;
    bool pre_vote;                 /* true in production */
    bool check_quorum;             /* true in production */
    size_t max_msg_bytes;          /* entry data per APPEND (>= 1 entry) */
    uint32_t max_inflight;         /* APPENDs in flight per follower */
    uint32_t snapshot_chunk_bytes; /* data per SNAPSHOT message */
    uint32_t max_snapshot_bytes;   /* largest snapshot a follower accepts
                                      in memory (not in streaming mode) */
    /*  false: a follower assembles an incoming snapshot in memory and hands
        it over whole in rd.snapshot.  true: it hands each chunk over in
        rd.snap_chunks as it arrives (the caller stages them, e.g. in a
        file) and rd.snapshot then carries only the meta and size.  */
    bool snapshot_stream;
    /*  Flow control: a leader refuses proposals (-ENOBUFS) while this many
        entries are appended but not committed (a leader cut off from its
        quorum must not buffer without bound); 0: no limit.  */
    uint32_t max_uncommitted;
    /*  Leader lease reads (docs/raft.md): with lease_duration > 0 (and
        check_quorum on), a leader that committed an entry of its term
        answers raft_read_index at once with its commit index while less
        than lease_duration has passed since it *sent* a heartbeat round
        that a quorum of voters has acknowledged.  Each voter then refuses
        votes for election_time after it received that round (besides
        election_ticks ticks, check-quorum's vote lease), and for
        election_time after it started (it may have forgotten a lease it
        acknowledged), so no other leader can be elected meanwhile as long
        as lease_duration < election_time, less a bound on the clock-rate
        drift between nodes.  The lease ends at once with a leadership
        transfer (for the rest of the term), a membership change (until a
        round sent after it is acknowledged) and a step-down.  clock_fn
        returns a monotonic time in the unit of lease_duration and
        election_time; it is read only when the lease is on.  0: off.  */
    uint64_t lease_duration;
    uint64_t election_time;
    uint64_t (*clock_fn) (void *clock_ud);
    void *clock_ud;
    uint32_t bugs;                 /* RAFT_BUG_*; 0 */
} raft_options_t;

typedef struct raft raft_t;

/*  Fills `opts` with defaults (election 10 ticks, heartbeat 1, pre-vote and
    check-quorum on, 1 MiB per message, 64 in flight, 64 KiB chunks, 1 GiB
    snapshots, 8192 uncommitted entries); the caller sets id, group,
    storage, rand_fn.  */
void raft_options_init (raft_options_t *opts);

/*  Creates a core from persisted state: the hard state in opts, the
    storage's snapshot and entries (scanned for configuration entries).
    Returns 0 and *self_p, or -EINVAL (bad options, with a message in err),
    -ENOMEM, or the storage's error.  */
int raft_new (const raft_options_t *opts, raft_t **self_p, char *err,
              size_t err_size);

/*  Frees the core and everything it owns, including an outstanding
    ready's contents (destroying between raft_ready and raft_advance is how
    a crash is modelled); nulls *self_p.  */
void raft_destroy (raft_t **self_p);

/*  Advances logical time by one tick (elections, heartbeats, quorum checks,
    transfer timeout).  Returns 0 or a storage error.  */
int raft_tick (raft_t *self);

/*  Feeds a message from a peer.  The message is borrowed: the core copies
    what it keeps.  Returns 0 (also for stale or irrelevant messages, which
    Raft ignores), -EINVAL for a message of another group or malformed, or a
    storage error.  */
int raft_step (raft_t *self, const raft_msg_t *msg);

/*  Appends a command (data is copied) to the leader's log.  On success sets
    *index and *term (either may be NULL): the command is committed when an
    entry with that index AND term is applied; if another entry is applied
    at that index the proposal was lost (leader change) and may be retried.
    Returns RAFT_ENOTLEADER on a non-leader, RAFT_EBUSY during a leadership
    transfer, -ENOBUFS when max_uncommitted entries await commitment.  */
int raft_propose (raft_t *self, const void *data, uint32_t size,
                  uint64_t *index, uint64_t *term);

/*  Proposes one membership change.  Leader only; RAFT_EBUSY while another
    change is uncommitted or before the leader committed an entry of its
    term; -EINVAL if the change makes no sense (adding a member, promoting
    a non-learner, removing a non-member, removing the last voter,
    exceeding RAFT_MAX_MEMBERS).  */
int raft_propose_conf (raft_t *self, raft_conf_op_t op, uint64_t node,
                       uint64_t *index, uint64_t *term);

/*  Requests a linearizable read barrier identified by `ctx` (the caller's
    unique id).  Its result comes later in rd.reads: an index, or `failed`
    when the leader handling it stepped down first.  A leader holding a
    valid lease (raft_options_t.lease_duration) answers at once with its
    commit index, without a heartbeat round.  A request whose
    messages are lost gets no answer at all: callers also time out and
    retry.  Returns 0, or RAFT_ENOTLEADER when no leader is known.  */
int raft_read_index (raft_t *self, uint64_t ctx);

/*  Asks the leader to hand leadership to voter `target`: it brings the
    target up to date then sends it TIMEOUT_NOW.  Proposals are refused
    meanwhile; the attempt is abandoned after an election timeout.
    RAFT_ENOTLEADER, -EINVAL (target not a voter or self).  */
int raft_transfer_leadership (raft_t *self, uint64_t target);

/*  True when raft_ready would return something to do.  */
bool raft_has_ready (raft_t *self);

/*  Collects pending work into *rd (see the top of this file).  Returns 0,
    or a storage error reading committed entries.  */
int raft_ready (raft_t *self, raft_ready_t *rd);

/*  Acknowledges that everything in *rd was done: its entries, hard state
    and snapshot are persisted and its committed entries applied.  Frees
    the ready's contents.  Returns 0 or a storage error.  */
int raft_advance (raft_t *self, raft_ready_t *rd);

/*  Read-only accessors.  */
raft_role_t raft_role (const raft_t *self);
uint64_t raft_id (const raft_t *self);
uint64_t raft_term (const raft_t *self);
uint64_t raft_leader (const raft_t *self);     /* 0: unknown */
uint64_t raft_commit_index (const raft_t *self);
uint64_t raft_applied_index (const raft_t *self);
uint64_t raft_last_index (const raft_t *self);
/*  Term of entry `index` as the core sees its log (unstable included).  */
int raft_term_at (const raft_t *self, uint64_t index, uint64_t *term);
/*  The latest configuration (appended, maybe uncommitted).  */
const raft_config_t *raft_config (const raft_t *self);
/*  The configuration as of the applied index: what a snapshot taken at
    raft_applied_index must record.  */
const raft_config_t *raft_applied_config (const raft_t *self);
/*  True when this node is a leader whose read lease is valid now (reads
    it answers need no heartbeat round); reads the clock.  */
bool raft_lease_valid (const raft_t *self);
/*  How many reads this node answered from its lease since it started.  */
uint64_t raft_lease_reads (const raft_t *self);
/*  Leader only: replication progress of `node` (match index); -ENOENT.  */
int raft_progress (const raft_t *self, uint64_t node, uint64_t *match);

/*  Configuration helpers.  */
bool raft_config_is_voter (const raft_config_t *cfg, uint64_t node);
bool raft_config_is_learner (const raft_config_t *cfg, uint64_t node);
/*  True when both have the same voters and learners (in any order).  */
bool raft_config_same (const raft_config_t *a, const raft_config_t *b);
/*  Encodes/decodes a change as RAFT_ENTRY_CONF data (9 bytes).  */
void raft_conf_encode (raft_conf_op_t op, uint64_t node, uint8_t out[9]);
int raft_conf_decode (const uint8_t *data, uint32_t size,
                      raft_conf_op_t *op, uint64_t *node);
/*  Applies a change to cfg; -EINVAL if it does not apply.  */
int raft_config_apply (raft_config_t *cfg, raft_conf_op_t op, uint64_t node);

/*  Frees an array of n entries and their data; nulls *entries_p.  */
void raft_entries_free (raft_entry_t **entries_p, size_t n);

#ifdef __cplusplus
}
#endif
#endif
