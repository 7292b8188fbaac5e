/*  Internals of the Raft core shared by its source files (raft_core*.c).

    The core is split by purpose: raft_core.c (life cycle, ready/advance,
    tick, message dispatch, role changes), raft_core_log.c (the log view:
    storage + unstable entries, configuration history), raft_core_election.c
    (pre-vote, vote, check-quorum, transfer), raft_core_replication.c
    (progress, appends, commit, heartbeats), raft_core_snapshot.c
    (InstallSnapshot in chunks, both sides),
    raft_core_read.c (ReadIndex) and raft_core_membership.c (conf changes).
    Nothing here is part of the public API.
*/
#ifndef TITAN_RAFT_CORE_IMPL_H_INCLUDED
#define TITAN_RAFT_CORE_IMPL_H_INCLUDED

#include "raft_core.h"

typedef enum { PR_PROBE = 0, PR_REPLICATE, PR_SNAPSHOT } pr_state_t;

/*  Leader's view of one peer.  */
typedef struct {
    uint64_t id;
    uint64_t match;
    uint64_t next;
    pr_state_t state;
    bool paused;              /* probe: one append outstanding */
    bool recent_active;       /* heard from since the last quorum check */
    uint64_t read_ack;        /* highest read round acknowledged */
    uint64_t sent_commit;     /* highest commit index sent to it */
    uint32_t n_inflight;      /* ring of last indices of appends in flight */
    uint32_t inflight_head;
    uint64_t *inflight;
    uint64_t snap_index;      /* PR_SNAPSHOT: snapshot being sent */
    uint64_t snap_term;
    raft_config_t snap_config;
    uint64_t snap_offset;     /* next chunk to send */
    bool snap_wait;           /* a chunk is outstanding */
    uint32_t snap_heartbeats; /* heartbeat responses since it was sent */
} raft_progress_t;

/*  One entry of the configuration history: the configuration in force from
    log index `index` on (0 = snapshot or bootstrap).  */
typedef struct {
    uint64_t index;
    raft_config_t cfg;
} cfg_hist_t;

typedef struct {
    uint64_t ctx;
    uint64_t from;            /* requester; self for local reads */
    uint64_t index;
    uint64_t round;           /* 0: waits for a commit in this term */
} pending_read_t;

/*  Read rounds whose send times a leader remembers for its lease: a
    heartbeat goes out every heartbeat_ticks, so an acknowledgement older
    than this many rounds is far older than any lease.  */
#define RC_LEASE_ROUNDS 64

struct raft {
    raft_options_t opts;
    const raft_storage_t *st;
    int failed;               /* sticky storage error */
    bool in_ready;            /* between raft_ready and raft_advance */
    raft_entry_t *rd_committed;   /* the ready's committed copies, owned */
    size_t n_rd_committed;

    /* persistent state */
    uint64_t term;
    uint64_t vote;
    uint64_t commit;
    raft_hard_state_t prev_hs;  /* last hard state handed to the caller */

    /* volatile state */
    uint64_t applied;
    raft_role_t role;
    uint64_t leader;
    uint32_t election_elapsed;
    uint32_t heartbeat_elapsed;
    uint32_t randomized_timeout;
    uint64_t transferee;
    uint32_t transfer_elapsed;

    /* unstable log: entries u_off .. u_off + n_unstable - 1 */
    raft_entry_t *unstable;
    size_t n_unstable;
    size_t cap_unstable;
    uint64_t u_off;
    raft_snapshot_t *pending_snap;    /* received, not yet persisted */

    /* snapshot being received from the leader */
    raft_snapshot_meta_t rx_meta;
    uint8_t *rx_buf;
    uint64_t rx_size;
    uint64_t rx_cap;
    bool rx_active;

    /* configuration history: [0] is the base (committed) */
    cfg_hist_t *hist;
    size_t n_hist;
    size_t cap_hist;

    /* elections */
    uint64_t votes_for[RAFT_MAX_MEMBERS];
    bool votes_granted[RAFT_MAX_MEMBERS];
    size_t n_votes;

    /* leader */
    raft_progress_t *prs;
    size_t n_prs;

    /* read index */
    pending_read_t *reads_pending;
    size_t n_reads_pending;
    size_t cap_reads_pending;
    uint64_t read_round;

    /* leader lease (raft_core_read.c) */
    uint64_t lease_sent[RC_LEASE_ROUNDS];  /* clock when round r was sent,
                                              at r % RC_LEASE_ROUNDS */
    uint64_t lease_round_min; /* only acks of rounds >= this count */
    bool lease_revoked;       /* a transfer began: no lease this term */
    uint64_t heard_at;        /* clock when a leader was last heard from,
                                 or when the core started */
    uint64_t lease_reads;

    /* outputs */
    raft_msg_t *msgs;
    size_t n_msgs;
    size_t cap_msgs;
    raft_read_state_t *reads;
    size_t n_reads;
    size_t cap_reads;
    raft_snapshot_chunk_t *chunks;    /* streaming mode: chunks to stage */
    size_t n_chunks;
    size_t cap_chunks;
};

/* raft_core.c */
void rc_become_follower (raft_t *r, uint64_t term, uint64_t leader);
void rc_become_candidate (raft_t *r, bool pre);
int rc_become_leader (raft_t *r);
raft_msg_t *rc_msg (raft_t *r, uint64_t to, raft_msg_type_t type);
void rc_reset_timeout (raft_t *r);
int rc_fail (raft_t *r, int rc);
size_t rc_quorum (const raft_t *r);

/* raft_core_log.c */
uint64_t rc_last_index (const raft_t *r);
uint64_t rc_first_index (const raft_t *r);
uint64_t rc_stable_last (const raft_t *r);
int rc_term (const raft_t *r, uint64_t index, uint64_t *term);
uint64_t rc_last_term (raft_t *r);
bool rc_up_to_date (raft_t *r, uint64_t last_index, uint64_t last_term);
int rc_append_local (raft_t *r, uint64_t term, raft_entry_type_t type,
                     const void *data, uint32_t size);
int rc_log_accept (raft_t *r, const raft_entry_t *ents, size_t n);
int rc_log_slice (const raft_t *r, uint64_t lo, uint64_t hi, size_t max_bytes,
                  raft_entry_t **out, size_t *n);
int rc_copy_entry (raft_entry_t *dst, const raft_entry_t *src);
void rc_clear_unstable (raft_t *r);
const raft_config_t *rc_cfg (const raft_t *r);
uint64_t rc_cfg_index (const raft_t *r);
int rc_hist_push (raft_t *r, uint64_t index, const raft_config_t *cfg);
void rc_hist_truncate (raft_t *r, uint64_t from_index);
void rc_hist_prune (raft_t *r);
void rc_hist_reset (raft_t *r, uint64_t index, const raft_config_t *cfg);
int rc_hist_note_entry (raft_t *r, const raft_entry_t *e);

/* raft_core_election.c */
int rc_campaign (raft_t *r, bool pre, bool force);
int rc_handle_vote (raft_t *r, const raft_msg_t *m);
int rc_handle_vote_resp (raft_t *r, const raft_msg_t *m);
int rc_check_quorum (raft_t *r);
int rc_handle_timeout_now (raft_t *r, const raft_msg_t *m);
bool rc_in_lease (const raft_t *r);

/* raft_core_replication.c */
raft_progress_t *rc_pr (raft_t *r, uint64_t id);
int rc_prs_sync (raft_t *r);
void rc_prs_free (raft_t *r);
int rc_send_append (raft_t *r, raft_progress_t *pr, bool send_empty);
int rc_bcast_append (raft_t *r);
void rc_bcast_heartbeat (raft_t *r, uint64_t ctx);
/*  A per-voter figure, for rc_quorum_value.  */
typedef uint64_t rc_pr_value_fn (const raft_t *r, const raft_progress_t *pr);
/*  The highest v that a quorum of the latest configuration's voters reach
    (value >= v): the q-th largest; false with fewer voters than q.  */
bool rc_quorum_value (const raft_t *r, rc_pr_value_fn *value, uint64_t *out);
bool rc_maybe_commit (raft_t *r);
int rc_on_commit_advanced (raft_t *r);
int rc_handle_append (raft_t *r, const raft_msg_t *m);
int rc_handle_append_resp (raft_t *r, const raft_msg_t *m);
int rc_handle_heartbeat (raft_t *r, const raft_msg_t *m);
int rc_handle_heartbeat_resp (raft_t *r, const raft_msg_t *m);
bool rc_committed_in_term (const raft_t *r);
void rc_pr_become_probe (raft_progress_t *pr);
raft_msg_t *rc_reply (raft_t *r, const raft_msg_t *m, raft_msg_type_t type);
void rc_commit_to (raft_t *r, uint64_t index);

/* raft_core_snapshot.c */
int rc_send_chunk (raft_t *r, raft_progress_t *pr);
/*  How many heartbeat responses an outstanding snapshot chunk waits for
    before it is sent again.  */
uint32_t rc_snap_resend_heartbeats (const raft_t *r);
int rc_start_snapshot (raft_t *r, raft_progress_t *pr);
int rc_handle_snapshot (raft_t *r, const raft_msg_t *m);
int rc_handle_snapshot_resp (raft_t *r, const raft_msg_t *m);

/* raft_core_read.c */
int rc_read_request (raft_t *r, uint64_t ctx, uint64_t from);
void rc_read_on_ack (raft_t *r);
void rc_read_release_waiting (raft_t *r);
void rc_reads_drop (raft_t *r);
int rc_handle_read_index (raft_t *r, const raft_msg_t *m);
int rc_handle_read_index_resp (raft_t *r, const raft_msg_t *m);
int rc_push_read_state (raft_t *r, uint64_t ctx, uint64_t index, bool failed);
bool rc_lease_on (const raft_t *r);
uint64_t rc_clock (const raft_t *r);
void rc_lease_reset (raft_t *r);
void rc_heartbeat_round (raft_t *r);

/* raft_core_membership.c */
int rc_conf_committed (raft_t *r);

#endif
