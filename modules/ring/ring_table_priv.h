/*  Titan-KV ring: the routing table's layout, shared by the files that
    build it (ring_place.c) and read or encode it (ring_table.c); not for
    other users, who go through ring_table.h.
*/
#ifndef RING_TABLE_PRIV_H_INCLUDED
#define RING_TABLE_PRIV_H_INCLUDED

#include <stdint.h>

#include "ring_member.h"
#include "ring_table.h"

struct _ring_table_t {
    uint64_t epoch;
    uint32_t shards;
    uint32_t replicas;          //  configured R
    uint32_t width;             //  replicas placed per shard: min (R, nodes)
    uint32_t nodes;
    char (*ids) [RING_ID_MAX + 1];  //  [room for `max_nodes`], sorted
    int32_t *replica;           //  [shards * replicas], node index or -1
};

/*  Allocates a table with room for `max_nodes` ids and every replica slot
    at -1, nodes and width 0.  Returns NULL if out of memory.  */
ring_table_t *ring_table_new_priv (uint64_t epoch, uint32_t shards, uint32_t replicas,
                                   uint32_t max_nodes);

#endif
