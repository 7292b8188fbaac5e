/*  Bitcask state digest (see bc_digest.h): the per-key hash, and the ring
    of (applied index, digest) points recorded at multiples of `every`.  */
#include "bc_digest.h"

/*  splitmix64's finalizer: every input bit affects every output bit.  */
static uint64_t
s_mix (uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

uint64_t
bc_digest_entry (const void *key, size_t key_len, uint64_t revision,
                 uint32_t record_size)
{
    const uint8_t *p = key;
    uint64_t h = 0xcbf29ce484222325ull;          /* FNV-1a 64 */
    for (size_t i = 0; i < key_len; i++) {
        h ^= p [i];
        h *= 0x100000001b3ull;
    }
    h = s_mix (h ^ key_len);
    h = s_mix (h ^ revision);
    return s_mix (h ^ record_size);
}

static void
s_record (bc_digest_t *self, uint64_t index)
{
    size_t slot = (self->head + self->count) % BC_DIGEST_KEEP;
    if (self->count == BC_DIGEST_KEEP)
        self->head = (self->head + 1) % BC_DIGEST_KEEP;
    else
        self->count++;
    self->points [slot].index = index;
    self->points [slot].digest = self->sum;
}

void
bc_digest_reset (bc_digest_t *self, uint64_t every, uint64_t sum,
                 uint64_t applied)
{
    self->sum = sum;
    self->every = every;
    self->cursor = applied;
    self->head = 0;
    self->count = 0;
    if (every && applied && applied % every == 0)
        s_record (self, applied);
}

void
bc_digest_advance (bc_digest_t *self, uint64_t upto)
{
    if (upto <= self->cursor)
        return;
    if (self->every) {
        uint64_t m = (self->cursor / self->every + 1) * self->every;
        /* a jump of more than a ring's worth records only the last ones:
           the state is the same at all of them */
        if (upto >= m && (upto - m) / self->every >= BC_DIGEST_KEEP)
            m += ((upto - m) / self->every - (BC_DIGEST_KEEP - 1)) * self->every;
        for (; m <= upto; m += self->every)
            s_record (self, m);
    }
    self->cursor = upto;
}

size_t
bc_digest_points (const bc_digest_t *self, bc_digest_point_t *out, size_t cap)
{
    size_t n = self->count < cap ? self->count : cap;
    size_t skip = self->count - n;               /* keep the newest */
    for (size_t i = 0; i < n; i++)
        out [i] = self->points [(self->head + skip + i) % BC_DIGEST_KEEP];
    return n;
}
