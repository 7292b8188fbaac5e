/*  xxHash64, written from the specification (xxhash_spec.md, "XXH64
    algorithm description"): four 64-bit accumulators consume 32-byte
    stripes, are merged, then the tail is folded in 8, 4 and 1 bytes at a
    time and the result is avalanched.  Loads are explicit little-endian
    byte assembly, which gcc turns into single loads on x86-64, so the
    result does not depend on host byte order or alignment.
*/
#include <assert.h>

#include "ring_hash.h"

#define P1 UINT64_C (0x9E3779B185EBCA87)
#define P2 UINT64_C (0xC2B2AE3D27D4EB4F)
#define P3 UINT64_C (0x165667B19E3779F9)
#define P4 UINT64_C (0x85EBCA77C2B2AE63)
#define P5 UINT64_C (0x27D4EB2F165667C5)

static inline uint64_t
s_rotl (uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

static inline uint64_t
s_read64 (const uint8_t *p)
{
    return (uint64_t) p [0]       | (uint64_t) p [1] << 8
         | (uint64_t) p [2] << 16 | (uint64_t) p [3] << 24
         | (uint64_t) p [4] << 32 | (uint64_t) p [5] << 40
         | (uint64_t) p [6] << 48 | (uint64_t) p [7] << 56;
}

static inline uint32_t
s_read32 (const uint8_t *p)
{
    return (uint32_t) p [0]       | (uint32_t) p [1] << 8
         | (uint32_t) p [2] << 16 | (uint32_t) p [3] << 24;
}

static inline uint64_t
s_round (uint64_t acc, uint64_t input)
{
    acc += input * P2;
    acc = s_rotl (acc, 31);
    return acc * P1;
}

static inline uint64_t
s_merge (uint64_t acc, uint64_t val)
{
    acc ^= s_round (0, val);
    return acc * P1 + P4;
}

uint64_t
ring_xxh64 (const void *data, size_t size, uint64_t seed)
{
    assert (data || size == 0);
    const uint8_t *p = (const uint8_t *) data;
    const uint8_t *end = p + size;
    uint64_t h;

    if (size >= 32) {
        uint64_t v1 = seed + P1 + P2;
        uint64_t v2 = seed + P2;
        uint64_t v3 = seed;
        uint64_t v4 = seed - P1;
        const uint8_t *limit = end - 32;
        do {
            v1 = s_round (v1, s_read64 (p));
            v2 = s_round (v2, s_read64 (p + 8));
            v3 = s_round (v3, s_read64 (p + 16));
            v4 = s_round (v4, s_read64 (p + 24));
            p += 32;
        } while (p <= limit);
        h = s_rotl (v1, 1) + s_rotl (v2, 7) + s_rotl (v3, 12) + s_rotl (v4, 18);
        h = s_merge (h, v1);
        h = s_merge (h, v2);
        h = s_merge (h, v3);
        h = s_merge (h, v4);
    }
    else
        h = seed + P5;

    h += (uint64_t) size;
    while (end - p >= 8) {
        h ^= s_round (0, s_read64 (p));
        h = s_rotl (h, 27) * P1 + P4;
        p += 8;
    }
    if (end - p >= 4) {
        h ^= (uint64_t) s_read32 (p) * P1;
        h = s_rotl (h, 23) * P2 + P3;
        p += 4;
    }
    while (p < end) {
        h ^= (uint64_t) *p * P5;
        h = s_rotl (h, 11) * P1;
        p++;
    }
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    h ^= h >> 32;
    return h;
}

uint32_t
ring_key_shard (const void *key, size_t size, uint32_t shards)
{
    assert (shards >= 1 && shards <= RING_MAX_SHARDS);
    return (uint32_t) (ring_xxh64 (key, size, RING_KEY_SEED) % shards);
}
