/*  Little-endian fixed-width integers in byte buffers: the byte order of
    every on-disk record Titan-KV writes (Raft log, snapshots, hint log).
    Header-only, pure; the caller bounds the buffer.  */
#ifndef TITAN_LE_H_INCLUDED
#define TITAN_LE_H_INCLUDED

#include <stdint.h>

/*  Stores `v` in the 4 bytes at `p`, least significant first.  */
static inline void
titan_le_put32 (uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p [i] = (uint8_t) (v >> (8 * i));
}

/*  Stores `v` in the 8 bytes at `p`, least significant first.  */
static inline void
titan_le_put64 (uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p [i] = (uint8_t) (v >> (8 * i));
}

/*  The 4 bytes at `p`, least significant first.  */
static inline uint32_t
titan_le_get32 (const uint8_t *p)
{
    return (uint32_t) p [0] | (uint32_t) p [1] << 8
         | (uint32_t) p [2] << 16 | (uint32_t) p [3] << 24;
}

/*  The 8 bytes at `p`, least significant first.  */
static inline uint64_t
titan_le_get64 (const uint8_t *p)
{
    return (uint64_t) titan_le_get32 (p) | (uint64_t) titan_le_get32 (p + 4) << 32;
}

#endif
