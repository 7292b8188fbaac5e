/*  raft_placement: ring-driven placement of the raft module's groups
    (setting placement = ring; docs/sharding.md).

    The raft module hosts the meta group (TITAN_META_SHARD, storage module
    "ring") and the data groups the ring's routing table places on this
    node.  This object, owned by the raft actor and driven from its loop,
    does the rest:

    - keeps the routing table of the highest epoch (ring.table events, and
      a ring.table request until one arrives);
    - as the meta group's leader, keeps the ring membership in step with
      the meta group: CREATE (Q, R) first when this node bootstrapped the
      cluster, ADD for every meta member the ring does not list (a node
      that joined the meta group, by `--join` or raft.member_add),
      SET_STATE active for a joining node that reported it is a committed
      voter of every data shard the table places on it (a READY notice,
      which every joining node sends while that holds), SET_STATE leaving
      for raft.member_remove of the meta shard (a drain, answered once
      committed; the last member that can hold replicas is not drained),
      REMOVE for a leaving node that reported
      it holds no replica any more (a LEFT notice), then its removal from
      the meta group.  Every command carries a dedup pair, so a retry
      applies once;
    - for every data shard the table places here and this node does not
      host: creates the group empty (it waits for its leader); the node
      that bootstrapped the cluster creates every shard once, as sole
      voter;
    - for every data group this node leads: runs the planner
      (raft_group_reconcile) towards the table's replicas;
    - destroys a replica the table does not place here once the group's
      leader said that its committed configuration no longer includes it
      (a NOT_MEMBER notice: the replica asks by a probe every second, as
      a removed learner hears nothing more), deletes its directory and
      asks the storage module to drop the shard's data (kv.drop_shard,
      retried while it fails).  A replica still in the committed
      configuration is never destroyed: its own view is not enough (a
      replica that has not yet applied the entry that made it a voter
      does not see itself in its applied configuration).

    Not thread-safe: the raft actor owns it.
*/
#ifndef RAFT_PLACEMENT_H_INCLUDED
#define RAFT_PLACEMENT_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#include "titan/bus.h"
#include "raft_groups.h"
#include "raft_transport.h"
#include "raft_wire.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct raft_placement raft_placement_t;

/*  Opens (creating if needed) data group `shard` and adds it to the
    registry; `bootstrap`: sole voter when fresh; `fresh`: a new replica
    (applied index 0, whatever the storage module still holds).  Returns 0
    or a negative status.  */
typedef int (raft_placement_open_fn) (void *arg, uint32_t shard,
                                      bool bootstrap, bool fresh);

typedef struct {
    raft_wire_node_t self;
    const char *raft_dir;          /* <data_dir>/raft (copied) */
    const char *storage_module;    /* data groups' ("bitcask"; copied) */
    uint32_t create_shards;        /* Q proposed in CREATE */
    uint32_t create_replicas;      /* R proposed in CREATE */
    bool bootstrap;                /* this node created the meta group now, or
                                      had not finished creating the cluster */
    int64_t duty_ms;               /* reconciliation period */
    titan_bus_t *bus;              /* borrowed */
    raft_groups_t *groups;         /* borrowed */
    raft_transport_t *transport;   /* borrowed */
    raft_placement_open_fn *open;
    void *open_arg;
} raft_placement_config_t;

/*  Creates the placement.  Returns NULL when out of memory.  */
raft_placement_t *raft_placement_new (const raft_placement_config_t *config);

/*  Answers what waits (UNAVAILABLE) and frees; nulls the pointer.  */
void raft_placement_destroy (raft_placement_t **self_p);

/*  A bus message: takes (and returns true for) a ring.table event and the
    replies to this object's requests (ring.table, kv.drop_shard).  */
bool raft_placement_on_bus (raft_placement_t *self, titan_envelope_t **env_p);

/*  raft.member_remove of the meta shard (a drain): takes the request; it
    is answered once `leaving` is committed, or refused.  */
void raft_placement_drain (raft_placement_t *self, titan_envelope_t **env_p);

/*  A Raft message of `group` from `sender` was refused because the sender
    is not a member: as that group's leader, tell it (rate-limited) when
    the committed configuration does not include it.  */
void raft_placement_not_member (raft_placement_t *self, uint64_t group,
                                const raft_wire_node_t *sender);

/*  A NOT_MEMBER or LEFT notice from `from` (see raft_wire.h).  */
void raft_placement_on_notice (raft_placement_t *self, const char *from,
                               const raft_wire_join_reply_t *notice);

/*  The periodic work (every duty_ms, and at once after a new table).  */
void raft_placement_duty (raft_placement_t *self);

/*  Q from the table (0 before the first table).  */
uint32_t raft_placement_shards (raft_placement_t *self);

/*  The preferred leader (rank 0) of `shard`, or NULL (no table).  */
const char *raft_placement_preferred (raft_placement_t *self, uint32_t shard);

/*  Shard moves started by this node (learners added) since it started. */
uint64_t raft_placement_moves (raft_placement_t *self);

#ifdef __cplusplus
}
#endif
#endif
