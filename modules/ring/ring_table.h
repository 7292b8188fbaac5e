/*  Titan-KV ring: the routing table.

    For each of the Q shards, the ordered list of nodes holding a replica
    (rank 0 is the preferred leader), computed from the membership by
    ring_table_build (ring_place.h) and stamped with the membership epoch
    it came from, so that a receiver keeps the newest.  The table is
    immutable once built.

    It has a versioned binary encoding, for publishing it on the bus or
    caching it in the gateway; as every encoding of the ring it is
    little-endian, ends in a CRC-32C, and its decoder checks everything:
        "TRRT" | u16 version=1 | u16 flags=0 | u64 epoch | u32 shards
        | u32 replicas | u32 width | u32 nodes
        | nodes x (u8 id_len | id)          ids sorted, distinct
        | shards x width x u16 node index   distinct within a shard
        | u32 crc32c
*/
#ifndef RING_TABLE_H_INCLUDED
#define RING_TABLE_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _ring_table_t ring_table_t;

/*  Destroys the table and nulls `*self_p`; does nothing if it is NULL.  */
void ring_table_destroy (ring_table_t **self_p);

/*  Returns the membership epoch the table was computed from.  */
uint64_t ring_table_epoch (const ring_table_t *self);

/*  Returns the shard count Q.  */
uint32_t ring_table_shards (const ring_table_t *self);

/*  Returns the configured replication factor R.  */
uint32_t ring_table_replicas (const ring_table_t *self);

/*  Returns the number of nodes that hold replicas (JOINING or ACTIVE).  */
uint32_t ring_table_nodes (const ring_table_t *self);

/*  Returns the id of node `index` (< ring_table_nodes, asserted), in id
    order; owned by the table.  */
const char *ring_table_node (const ring_table_t *self, uint32_t index);

/*  Returns how many replicas shard `shard` has: min (R, nodes).  */
uint32_t ring_table_shard_size (const ring_table_t *self, uint32_t shard);

/*  Returns the node index of replica `rank` of `shard` (rank 0 is the
    preferred leader), or -1 if rank >= the shard's size.  */
int ring_table_replica_index (const ring_table_t *self, uint32_t shard, uint32_t rank);

/*  Returns the node id of replica `rank` of `shard`, or NULL if rank >=
    the shard's size; owned by the table.  */
const char *ring_table_replica (const ring_table_t *self, uint32_t shard, uint32_t rank);

/*  Returns the number of (shard, node) replicas `after` has that `before`
    had not: the replicas a change of placement must copy.  Both tables
    must have the same shard count (asserted).  */
uint32_t ring_table_moves (const ring_table_t *before, const ring_table_t *after);

/*  Returns the number of shards whose preferred leader differs.  */
uint32_t ring_table_leader_changes (const ring_table_t *before, const ring_table_t *after);

/*  Encodes the table into a new buffer stored in `*data_p` (the caller's,
    to free()) of `*size_p` bytes.  Returns 0 or -ENOMEM.  */
int ring_table_encode (const ring_table_t *self, uint8_t **data_p, size_t *size_p);

/*  Decodes a table into a new one stored in `*self_p` (the caller's, to
    destroy).  Returns 0, TITAN_ECORRUPT (checksum, length, or a field out
    of range), -ENOTSUP (unknown version) or -ENOMEM, with a message in
    `err` when not NULL; `*self_p` is NULL on failure.  */
int ring_table_decode (const uint8_t *data, size_t size, ring_table_t **self_p,
                       char *err, size_t err_size);

#ifdef __cplusplus
}
#endif
#endif
