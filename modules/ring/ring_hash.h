/*  Titan-KV ring: the one hash function of the placement layer.

    Everything that must agree between nodes (which shard a key lives in,
    where a virtual node or a shard sits on the ring) is derived from
    xxHash64 (Yann Collet's XXH64, specification in the xxHash repository,
    doc/xxhash_spec.md), implemented here from the specification.  Input
    words are read as little-endian byte by byte, so the value is the same
    on every platform whatever its byte order or alignment rules; test
    vectors published with the reference implementation are checked in
    tests/ring_hash_test.c.

    Keys map to shards by `xxh64 (key, RING_KEY_SEED) % Q`.  Q is fixed when
    the cluster is created and never changes, so the main virtue of jump
    consistent hashing (few keys move when the bucket count grows) buys
    nothing here, while its floating-point arithmetic would be one more
    thing to keep identical across platforms.  The bias of the modulo is at
    most Q / 2^64, far below anything measurable.
*/
#ifndef RING_HASH_H_INCLUDED
#define RING_HASH_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*  Seeds of the three uses of the hash, so that the key space, the vnode
    points and the shard points are independent of each other.  Changing
    any of them changes the placement of a running cluster: never do it. */
#define RING_KEY_SEED    UINT64_C (0)
#define RING_VNODE_SEED  UINT64_C (0x746974616E2D766E)   /* "titan-vn" */
#define RING_SHARD_SEED  UINT64_C (0x746974616E2D7368)   /* "titan-sh" */

/*  Largest shard count a cluster may be created with.  */
#define RING_MAX_SHARDS  65536

/*  Returns XXH64 of `size` bytes at `data` with `seed`.  `data` may be
    NULL when `size` is 0.  Pure and thread-safe.  */
uint64_t ring_xxh64 (const void *data, size_t size, uint64_t seed);

/*  Returns the shard, in [0, shards), that holds `key` of `size` bytes in a
    cluster of `shards` shards (1 <= shards <= RING_MAX_SHARDS, asserted).  */
uint32_t ring_key_shard (const void *key, size_t size, uint32_t shards);

#ifdef __cplusplus
}
#endif
#endif
