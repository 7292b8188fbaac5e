/*  grpc_gateway routing table: the newest RingTable the ring module
    published (proto/bus.proto, modules/ring/ring_table.h), as the gateway
    uses it.  Pure data, no bus or gRPC: the gateway actor offers it every
    ring.table event and reply, and asks it where a shard's replicas are.

    With a table the node is in ring mode: Q is the table's shard count,
    a shard's replicas are the table's (rank 0 = preferred leader), and a
    call for a shard this node holds no replica of is forwarded to the
    replicas' client addresses (RingNode.client_addr) in rank order.
    Without one (no ring module, no cluster yet) the gateway stays in
    static mode (modules/raft/shards).
*/
#ifndef GW_RING_H_INCLUDED
#define GW_RING_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gw_ring gw_ring_t;

/*  Creates an empty view (no table).  Returns NULL when out of memory.  */
gw_ring_t *gw_ring_new (void);

/*  Destroys the view and nulls the pointer; NULL is fine.  */
void gw_ring_destroy (gw_ring_t **self_p);

/*  Offers the packed RingTable `data` of `size` bytes.  Returns 1 when it
    became the current table (the first, or a higher epoch than the
    current one), 0 when it was ignored (an epoch not above the current
    one), or a negative status with a message in `err`: -EINVAL when it
    does not decode, its code is not OK (then the message is the ring
    module's, e.g. "no membership yet"), its table bytes fail
    ring_table_decode, disagree with its Q/R, or name a node missing from
    its node list; -EAGAIN when the ring module answered UNAVAILABLE (no
    cluster yet: ask again later); -ENOENT when the answer is
    UNIMPLEMENTED (the node runs no ring module: static mode); -ENOMEM.
    A refused table leaves the current one.  */
int gw_ring_offer (gw_ring_t *self, const uint8_t *data, size_t size,
                   char *err, size_t err_size);

/*  Whether a table is held.  */
bool gw_ring_active (const gw_ring_t *self);

/*  The current table's epoch, Q, R (0 when there is none).  */
uint64_t gw_ring_epoch (const gw_ring_t *self);
uint32_t gw_ring_shards (const gw_ring_t *self);
uint32_t gw_ring_replicas (const gw_ring_t *self);

/*  The number of replicas the table places for `shard` (0 when there is
    no table or the shard is out of range).  */
uint32_t gw_ring_shard_size (const gw_ring_t *self, uint32_t shard);

/*  The node id of replica `rank` of `shard`, or NULL; owned by the view
    and valid until the next table is taken.  */
const char *gw_ring_replica (const gw_ring_t *self, uint32_t shard,
                            uint32_t rank);

/*  Whether the table places a replica of `shard` on node `node_id`.  */
bool gw_ring_places (const gw_ring_t *self, uint32_t shard,
                     const char *node_id);

/*  The number of members in the table's node list (tombstones
    included), and member `index`'s id, client address and state name
    ("joining", "active", "leaving", "removed"); NULL when out of range.
    Owned by the view, valid until the next table is taken.  */
size_t gw_ring_members (const gw_ring_t *self);
const char *gw_ring_member_id (const gw_ring_t *self, size_t index);
const char *gw_ring_member_addr (const gw_ring_t *self, size_t index);
const char *gw_ring_member_state (const gw_ring_t *self, size_t index);
const char *gw_ring_member_peer (const gw_ring_t *self, size_t index);

/*  The client address and the state of member `node_id`, or NULL when it
    is not in the node list.  */
const char *gw_ring_client_addr (const gw_ring_t *self, const char *node_id);
const char *gw_ring_state (const gw_ring_t *self, const char *node_id);

/*  The forwarding target for a call on `shard` that this node cannot
    serve: the first replica, in rank order from rank `*next`, that is
    not `self_id` and has a client address.  Stores its id and address
    (owned by the view), sets *next past it and returns true; returns
    false when no replica is left from rank *next on.  */
bool gw_ring_target (const gw_ring_t *self, uint32_t shard,
                     const char *self_id, uint32_t *next,
                     const char **id_p, const char **addr_p);

/*  The leader the raft module last named for one shard (empty id: none).  */
typedef struct {
    char id [128];
    char addr [256];
} gw_leader_hint_t;

/*  Forgets, among the `n` hints of shards 0..n-1, those naming a node
    that the table does not place as a replica of that shard (it cannot
    lead it any more).  Does nothing without a table.  Returns how many
    were forgotten.  */
uint32_t gw_ring_prune_hints (const gw_ring_t *self, gw_leader_hint_t *hints,
                              uint32_t n);

#endif
