/*  raft_group: one Raft group of the raft module (one shard replica): the
    pure core, its durable log, hard state and snapshot store, the address
    book of its members, and the apply pipeline that feeds committed writes
    to the storage module (bitcask) on the node's bus.

    The group is driven by the raft module's actor thread, which owns the
    bus connection and the peer transport (both borrowed here):
      raft_group_tick          every tick (10 ms by default)
      raft_group_step          for every Raft message from a peer
      raft_group_propose / _read / _member_change   for bus requests
      raft_group_on_reply      for every bus reply (kv.apply_batch, kv.get)
      raft_group_join          for a join request from a peer
      raft_group_process       after each of these: drains the core's
                               readies (persist, then send, then queue the
                               committed entries), pumps the apply pipeline,
                               serves reads, expires waiters and runs the
                               leader's membership duties, and the
                               snapshot machinery (raft_group_snapshot.c:
                               taking snapshots, log compaction,
                               installing a received one).
    See docs/raft.md for the design: durability point, apply pipeline,
    client dedup, the join protocol and timing.
*/
#ifndef RAFT_GROUP_H_INCLUDED
#define RAFT_GROUP_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "titan/bus.h"
#include "raft_core.h"
#include "raft_fio.h"
#include "raft_reconcile.h"
#include "raft_transport.h"
#include "raft_wire.h"
#include "bus.pb-c.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct raft_group raft_group_t;

typedef struct {
    uint32_t shard;                /* group id = shard number */
    const char *dir;               /* the group's directory (created if missing) */
    raft_wire_node_t self;         /* this node's id and addresses */
    bool bootstrap;                /* fresh state: become the sole voter */
    uint64_t applied;              /* storage module's durable applied index */
    uint32_t election_ticks;       /* base election timeout in ticks */
    uint32_t heartbeat_ticks;
    uint64_t election_us;          /* election_ticks in real time */
    uint64_t lease_us;             /* leader read lease; 0: ReadIndex only */
    uint32_t max_value_bytes;      /* largest value accepted in a proposal */
    uint32_t promote_gap;          /* learner promoted when this close */
    int64_t propose_timeout_ms;    /* waiter gives up (DEADLINE_EXCEEDED) */
    int64_t read_timeout_ms;       /* ReadIndex gives up (UNAVAILABLE) */
    bool sync_hardstate_commit;    /* persist every commit advance at once */
    const char *storage_module;    /* "bitcask" */
    uint64_t snapshot_entries;     /* applied entries between snapshots; 0: never */
    uint64_t snapshot_slack;       /* entries kept in the log below a snapshot */
    uint32_t snapshot_chunk_bytes; /* bytes per kv.snapshot_read/_install */
    bool forward_proposals;        /* a follower forwards raft.propose to
                                      the leader over the transport
                                      (raft_group_forward.c) instead of
                                      refusing it with a leader hint */
    bool managed;                  /* ring placement: the module's planner
                                      promotes learners (raft_group_reconcile),
                                      not the group itself */
    titan_bus_t *bus;              /* borrowed */
    raft_transport_t *transport;   /* borrowed */
    raft_fio_t *fio;               /* borrowed file layer of the log and hard
                                      state (tests' fault injection; NULL:
                                      plain I/O).  Single-threaded: groups
                                      synced together must not share one */
} raft_group_config_t;

/*  Opens (creating if needed) the group in config->dir: log/, hardstate,
    snapshots/; loads the address book and the client dedup table from the
    latest snapshot and the log after it (and resumes the snapshot's
    install into the storage module if its applied index is below it);
    creates the core with opts.applied = config->applied.
    Returns 0 and *self_p, or a negative status with the reason (naming
    the file) in err.  */
int raft_group_new (const raft_group_config_t *config, raft_group_t **self_p,
                    char *err, size_t err_size);

/*  Persists the commit index if it is pending, answers every waiting
    request with UNAVAILABLE, closes the files and frees the group; nulls
    the pointer.  */
void raft_group_destroy (raft_group_t **self_p);

/*  One tick of logical time.  Returns 0 or the core's fatal error.  */
int raft_group_tick (raft_group_t *self);

/*  Feeds a Raft message from a peer (borrowed).  Messages of another
    group are ignored.  Returns 0 or a fatal error.  */
int raft_group_step (raft_group_t *self, const raft_msg_t *msg);

/*  Notes the addresses of a peer seen in a frame header (learned, not
    replicated) and points the transport at it.  */
void raft_group_learn_peer (raft_group_t *self, const raft_wire_node_t *peer);

/*  raft.propose: takes the request (*env_p nulled); it is answered once
    its entry is applied, or refused at once (UNAVAILABLE with the leader
    hint on a non-leader, INVALID_ARGUMENT for a bad write).  */
void raft_group_propose (raft_group_t *self, titan_envelope_t **env_p);

/*  raft.read: takes the request; LINEARIZABLE waits for a ReadIndex
    barrier and the apply of its index, LOCAL reads at once.  */
void raft_group_read (raft_group_t *self, titan_envelope_t **env_p);

/*  raft.member_add / raft.member_remove / raft.transfer_leader: takes the
    request; answered with a RaftMemberReply.  */
void raft_group_member_change (raft_group_t *self, titan_envelope_t **env_p);

/*  A bus reply: returns true (and takes it) when it answers one of the
    group's requests to the storage module.  */
bool raft_group_on_reply (raft_group_t *self, titan_envelope_t **env_p);

/*  A join request from a peer: fills *reply (accepted, redirect, retry or
    refused).  */
void raft_group_join (raft_group_t *self, const raft_wire_node_t *joiner,
                      raft_wire_join_reply_t *reply);

/*  Persisting readies in phases, so that a node makes the readies of all
    its groups durable with one round of concurrent syncs (raft_groups.h
    raft_groups_persist drives them; raft_group_process uses them for one
    group):
      raft_group_ready_write   takes the core's ready (if it has one),
                               stages / installs its snapshot, writes its
                               entries and hard state without syncing; a
                               leader whose ready changes neither term nor
                               vote sends its messages now (its own entries
                               count for the commit only after the sync:
                               the core sets its match index at advance);
      raft_group_ready_sync    fdatasyncs what was written (safe to run on
                               another thread, concurrently with other
                               groups' syncs: it touches only this group's
                               log and hard state files);
      raft_group_ready_finish  sends the messages that wait for durability
                               (follower acks, votes), queues the committed
                               entries, hands out read states, advances.
    ready_write returns true when a ready is held; then _sync and _finish
    must follow, in that order, before any other call on the group.  A
    failure fails the group (raft_group_ready_finish returns it).  */
bool raft_group_ready_write (raft_group_t *self);

/*  True when the ready held has written something raft_group_ready_sync
    must make durable.  */
bool raft_group_ready_unsynced (raft_group_t *self);

/*  See raft_group_ready_write.  */
void raft_group_ready_sync (raft_group_t *self);

/*  See raft_group_ready_write.  Returns 0 or the group's fatal error.  */
int raft_group_ready_finish (raft_group_t *self);

/*  Does every pending piece of work (see the top of this file).  Returns
    0, or a fatal error (storage failure): the group must be destroyed and
    reopened.  */
int raft_group_process (raft_group_t *self);

/*  Leader only, before a clean stop: hands leadership to the voter with
    the highest match index, so that the group does not wait an election
    timeout.  Returns 0 when a transfer started (its node id in `target`),
    RAFT_ENOTLEADER, or -ENOENT when there is no other voter.  */
int raft_group_transfer_out (raft_group_t *self, char *target,
                             size_t target_size);

/*  Leader only, leadership balancing: when the group's preferred leader
    is another voter that has caught up (its match index reaches the
    commit index), starts a leadership transfer to it (its node id in
    `target`).  The preferred leader is `preferred` (a node id: the
    routing table's rank 0) or, when NULL, the voter at position
    (shard mod voters) in raft id order, which spreads the leaders of
    many groups over their common voters.  Returns 0 when a transfer
    started, RAFT_ENOTLEADER, -ENOENT (a single voter), -EALREADY (this
    node is the preferred leader, or that node is not a voter), -EAGAIN
    (it has not caught up) or the core's error (RAFT_EBUSY: a transfer
    or change in progress).  */
int raft_group_balance (raft_group_t *self, const char *preferred,
                        char *target, size_t target_size);

/*  Ring placement (raft_group_placement.c).  Leader only: runs the
    planner (raft_reconcile.h) with the group's configuration, progress and
    commit index against `desired` (the shard's replicas in rank order,
    with their addresses, borrowed) and applies its step, which it copies
    into *taken.  Returns 0 (also when there is nothing to do),
    RAFT_ENOTLEADER, -EINVAL (more desired replicas than a group may have)
    or the core's refusal of the step (RAFT_EBUSY: try again later).  */
int raft_group_reconcile (raft_group_t *self, const raft_wire_node_t *desired,
                          size_t n_desired, raft_reconcile_action_t *taken);

/*  Leader only: starts adding `node` as a learner (its addresses are
    replicated first), as a join does.  Returns 0, RAFT_ENOTLEADER,
    -EEXIST or -EBUSY, with the reason in `why`.  */
int raft_group_add_node (raft_group_t *self, const raft_wire_node_t *node,
                         char *why, size_t why_size);

/*  Leader only: proposes the removal of member `id`.  Returns 0,
    RAFT_ENOTLEADER, RAFT_EBUSY or -EINVAL (not a member, the last voter). */
int raft_group_remove_node (raft_group_t *self, uint64_t id);

/*  Leader only: proposes a write the module makes itself (`kvwrite`: the
    packed KvWrite, validated by the caller); *index and *term identify
    the entry (raft_group_applied_entry).  Returns 0, RAFT_ENOTLEADER,
    RAFT_EBUSY or -ENOBUFS.  */
int raft_group_propose_local (raft_group_t *self, const uint8_t *kvwrite,
                              size_t size, uint64_t *index, uint64_t *term);

/*  True when the entry (index, term) is applied to the storage module
    (false if another entry took that index, or it is compacted).  */
bool raft_group_applied_entry (raft_group_t *self, uint64_t index,
                               uint64_t term);

/*  True when node `id` (a raft id) is a voter or learner of the
    configuration as of the applied index (a committed configuration).  */
bool raft_group_in_committed_config (raft_group_t *self, uint64_t id);

/*  True when node `id` (a raft id) is a voter of the configuration as of
    the applied index (so a committed voter: a node asking about itself
    may see false while it has not applied its promotion yet).  */
bool raft_group_committed_voter (raft_group_t *self, uint64_t id);

/*  True when this node is in the group's configuration (voter or
    learner).  */
bool raft_group_is_member (raft_group_t *self);

/*  Fills *st (initialised by the caller) with the group's status; the
    strings and the member array it points to belong to the group until
    the next call.  */
void raft_group_status (raft_group_t *self, Titan__Bus__RaftGroupStatus *st);

/*  A consistency check message from peer `from` (docs/consistency.md):
    digests to compare (leader) or the leader's (follower), a rebuild
    order, a snapshot piece asked for or received.  Messages from
    non-members, or of the wrong role, are ignored.  */
void raft_group_on_check (raft_group_t *self, const char *from,
                          const raft_wire_check_t *check);

/*  Forwarded proposals (docs/raft.md), counted since the group opened. */
typedef struct {
    uint64_t sent;             /* follower: forwarded to the leader */
    uint64_t appended;         /* follower: the leader appended them */
    uint64_t refused;          /* follower: the leader refused them */
    uint64_t expired;          /* follower: no RESULT in time */
    uint64_t served;           /* leader: forwarded proposals appended */
    uint64_t dropped;          /* frames dropped: PROPOSE from a node that
                                  is not a voter or learner, RESULT from
                                  another node than the one asked, or for
                                  an unknown request id */
} raft_group_forward_stats_t;

/*  A forwarded proposal (PROPOSE, on the leader) or its result (RESULT,
    on the follower that sent it) from peer `from` (node id), borrowed.
    A PROPOSE from a node that is not a voter or learner of the group's
    latest configuration, and a RESULT that answers nothing this node
    asked that node, are dropped and counted.  */
void raft_group_on_forward (raft_group_t *self, const char *from,
                            const raft_wire_forward_t *forward);

/*  The group's forwarding counters.  */
raft_group_forward_stats_t raft_group_forward_stats (raft_group_t *self);

/*  Fills the consistency fields of *st (consistency, divergences_detected,
    rebuilds, digest_index, digest); the string belongs to the group.  */
void raft_group_check_status (raft_group_t *self,
                              Titan__Bus__RaftGroupStatus *st);

/*  The core (read-only accessors only), for tests and the module.  */
const raft_t *raft_group_core (raft_group_t *self);

/*  Index up to which the storage module has applied (and made durable)
    the log.  */
uint64_t raft_group_applied (raft_group_t *self);

/*  Snapshot counters: snapshots taken locally and snapshots installed
    into the storage module (received from a leader, or resumed from the
    local store after a restart).  */
uint64_t raft_group_snapshots_taken (raft_group_t *self);
uint64_t raft_group_snapshots_installed (raft_group_t *self);

#ifdef __cplusplus
}
#endif
#endif
