/*  raft_reconcile: the planner that moves one Raft group towards the
    replicas the ring's routing table places it on (ring placement,
    docs/sharding.md).

    It is a pure function: given what the group's leader knows (its
    configuration, each member's match index, the commit index, whether a
    membership change is still uncommitted) and the desired replica list
    of the shard (rank order, rank 0 the preferred leader), it returns the
    ONE next step; the raft module applies it and asks again later.  The
    rules, in order:

      1. only the leader acts, and only when no membership change is
         uncommitted (one change at a time);
      2. a member that is not desired and is a learner is removed (it
         carries no vote: removing it never weakens the group);
      3. a desired replica that is not a member is added as a learner
         (the first missing one in rank order);
      4. a desired learner that has caught up (match + promote_gap >=
         commit, and it has acknowledged something: an empty replica that
         never answered must not become a voter, which in a short log
         the gap alone would allow) is promoted;
      5. once EVERY desired replica is a voter, a voter that is not
         desired is removed; if that voter is the leader itself, it hands
         leadership to a desired voter whose match index reaches the commit
         index instead (the new leader removes it), and waits when none
         has caught up.

    So the group never has fewer voters than the desired ones it already
    holds, and an old replica leaves only after the new ones vote.
*/
#ifndef RAFT_RECONCILE_H_INCLUDED
#define RAFT_RECONCILE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*  One member of the group's latest configuration.  */
typedef struct {
    uint64_t id;               /* raft id */
    bool voter;                /* false: learner */
    uint64_t match;            /* leader's match index (its own: last index) */
} raft_reconcile_member_t;

typedef struct {
    uint64_t self;             /* this node's raft id */
    bool leader;               /* this node leads the group */
    uint64_t commit;           /* commit index */
    bool change_pending;       /* a membership change is not committed yet */
    const raft_reconcile_member_t *members;   /* latest configuration */
    size_t n_members;
    const uint64_t *desired;   /* raft ids, rank order; may be empty */
    size_t n_desired;
    uint64_t promote_gap;      /* learner promoted when this close */
} raft_reconcile_input_t;

typedef enum {
    RAFT_RECONCILE_NONE = 0,
    RAFT_RECONCILE_ADD_LEARNER,
    RAFT_RECONCILE_PROMOTE,
    RAFT_RECONCILE_REMOVE,
    RAFT_RECONCILE_TRANSFER
} raft_reconcile_kind_t;

typedef struct {
    raft_reconcile_kind_t kind;
    uint64_t node;             /* the raft id it applies to; 0 for NONE */
} raft_reconcile_action_t;

/*  Returns the next step for the group described by `in` (see the rules
    above).  With an empty desired list nothing is done (no table yet).  */
raft_reconcile_action_t raft_reconcile_plan (const raft_reconcile_input_t *in);

/*  The name of an action kind ("add-learner", ...), for logs.  */
const char *raft_reconcile_kind_name (raft_reconcile_kind_t kind);

#ifdef __cplusplus
}
#endif
#endif
