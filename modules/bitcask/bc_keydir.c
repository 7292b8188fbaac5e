/*  Bitcask keydir (see bc_keydir.h): linear-probing table of 8-byte slots
    over an arena of packed entries.

    Slot: high 32 bits the key hash, low 32 bits the entry reference
    (0 = empty).  Reference r names arena chunk r >> 18 at byte offset
    (r & 0x3FFFF) * 4; chunk 0 starts at offset 4 so that no entry has
    reference 0.  The home slot of a hash is (hash * capacity) >> 32, which
    lets the capacity be any size (growth by 1.5x keeps memory tight).  */
#include "bc_keydir.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_SHIFT  20
#define CHUNK_BYTES  (1u << CHUNK_SHIFT)
#define REF_OFF_BITS (CHUNK_SHIFT - 2)
#define MAX_CHUNKS   (1u << (32 - REF_OFF_BITS))
#define ENTRY_HEAD   22u
#define TOMB_BIT     0x80000000u
#define MIN_CAP      1024u

struct bc_keydir {
    uint64_t *slots;
    size_t cap;
    size_t count;
    uint8_t **chunks;
    size_t nchunks;
    size_t chunks_cap;
    uint32_t cur_off;        /* next free byte in the last chunk */
    size_t used_bytes;       /* bytes of entries, live or dead */
    size_t dead_bytes;       /* bytes of removed entries */
    size_t tombstones;       /* tombstone entries (loading only) */
};

uint32_t
bc_keydir_hash (const void *key, size_t len)
{
    const uint8_t *p = key;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (len * 0xC2B2AE3D27D4EB4Full);
    while (len >= 8) {
        uint64_t w;
        memcpy (&w, p, 8);
        h = (h ^ (w * 0x87C37B91114253D5ull)) * 0x9E3779B97F4A7C15ull;
        h ^= h >> 29;
        p += 8;
        len -= 8;
    }
    uint64_t w = 0;
    for (size_t i = 0; i < len; i++)
        w |= (uint64_t) p [i] << (8 * i);
    h = (h ^ (w * 0x87C37B91114253D5ull)) * 0x9E3779B97F4A7C15ull;
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDull;
    h ^= h >> 33;
    h *= 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 33;
    return (uint32_t) h;
}

static inline uint8_t *
s_entry (bc_keydir_t *self, uint32_t ref)
{
    return self->chunks [ref >> REF_OFF_BITS]
         + (size_t) (ref & ((1u << REF_OFF_BITS) - 1)) * 4;
}

static inline uint16_t
s_klen (const uint8_t *e)
{
    uint16_t k;
    memcpy (&k, e + 20, 2);
    return k;
}

static inline size_t
s_entry_size (size_t klen)
{
    return (ENTRY_HEAD + klen + 3) & ~(size_t) 3;
}

static void
s_read_loc (const uint8_t *e, bc_loc_t *loc)
{
    uint32_t size;
    memcpy (&loc->file_id, e, 4);
    memcpy (&loc->offset, e + 4, 4);
    memcpy (&size, e + 8, 4);
    memcpy (&loc->revision, e + 12, 8);
    loc->size = size & ~TOMB_BIT;
    loc->tombstone = (size & TOMB_BIT) != 0;
}

static void
s_write_loc (uint8_t *e, const bc_loc_t *loc)
{
    uint32_t size = loc->size | (loc->tombstone ? TOMB_BIT : 0);
    memcpy (e, &loc->file_id, 4);
    memcpy (e + 4, &loc->offset, 4);
    memcpy (e + 8, &size, 4);
    memcpy (e + 12, &loc->revision, 8);
}

static inline size_t
s_home (const bc_keydir_t *self, uint32_t hash)
{
    return (size_t) (((uint64_t) hash * self->cap) >> 32);
}

bc_keydir_t *
bc_keydir_new (void)
{
    bc_keydir_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->cap = MIN_CAP;
    self->slots = calloc (self->cap, sizeof *self->slots);
    if (!self->slots) {
        free (self);
        return NULL;
    }
    return self;
}

static void
s_free_chunks (uint8_t **chunks, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free (chunks [i]);
    free (chunks);
}

void
bc_keydir_destroy (bc_keydir_t **self_p)
{
    if (*self_p) {
        bc_keydir_t *self = *self_p;
        s_free_chunks (self->chunks, self->nchunks);
        free (self->slots);
        free (self);
        *self_p = NULL;
    }
}

/* Allocates room for an entry; returns its reference or 0. */
static uint32_t
s_alloc (bc_keydir_t *self, size_t bytes)
{
    if (self->nchunks == 0 || self->cur_off + bytes > CHUNK_BYTES) {
        if (self->nchunks == MAX_CHUNKS)
            return 0;
        if (self->nchunks == self->chunks_cap) {
            size_t cap = self->chunks_cap ? self->chunks_cap * 2 : 8;
            uint8_t **chunks = realloc (self->chunks, cap * sizeof *chunks);
            if (!chunks)
                return 0;
            self->chunks = chunks;
            self->chunks_cap = cap;
        }
        uint8_t *chunk = malloc (CHUNK_BYTES);
        if (!chunk)
            return 0;
        self->chunks [self->nchunks++] = chunk;
        self->cur_off = self->nchunks == 1 ? 4 : 0;
    }
    uint32_t ref = (uint32_t) ((self->nchunks - 1) << REF_OFF_BITS)
                 | (self->cur_off / 4);
    self->cur_off += (uint32_t) bytes;
    self->used_bytes += bytes;
    return ref;
}

/* Finds the slot of a key; returns its index or SIZE_MAX. */
static size_t
s_find (bc_keydir_t *self, uint32_t hash, const void *key, size_t len)
{
    size_t i = s_home (self, hash);
    for (;;) {
        uint64_t s = self->slots [i];
        if (s == 0)
            return SIZE_MAX;
        if ((uint32_t) (s >> 32) == hash) {
            const uint8_t *e = s_entry (self, (uint32_t) s);
            if (s_klen (e) == len && memcmp (e + ENTRY_HEAD, key, len) == 0)
                return i;
        }
        if (++i == self->cap)
            i = 0;
    }
}

static void
s_place (uint64_t *slots, size_t cap, uint64_t slot)
{
    size_t i = (size_t) (((slot >> 32) * cap) >> 32);
    while (slots [i])
        if (++i == cap)
            i = 0;
    slots [i] = slot;
}

static int
s_resize (bc_keydir_t *self, size_t cap)
{
    uint64_t *slots = calloc (cap, sizeof *slots);
    if (!slots)
        return -ENOMEM;
    for (size_t i = 0; i < self->cap; i++)
        if (self->slots [i])
            s_place (slots, cap, self->slots [i]);
    free (self->slots);
    self->slots = slots;
    self->cap = cap;
    return 0;
}

/* Rebuilds the arena without holes (and without tombstones if asked). */
static int
s_compact (bc_keydir_t *self, bool drop_tombstones)
{
    bc_keydir_t fresh;
    memset (&fresh, 0, sizeof fresh);
    fresh.cap = self->cap;
    fresh.slots = calloc (fresh.cap, sizeof *fresh.slots);
    if (!fresh.slots)
        return -ENOMEM;
    for (size_t i = 0; i < self->cap; i++) {
        uint64_t s = self->slots [i];
        if (!s)
            continue;
        const uint8_t *e = s_entry (self, (uint32_t) s);
        bc_loc_t loc;
        s_read_loc (e, &loc);
        if (drop_tombstones && loc.tombstone)
            continue;
        size_t bytes = s_entry_size (s_klen (e));
        uint32_t ref = s_alloc (&fresh, bytes);
        if (!ref) {
            s_free_chunks (fresh.chunks, fresh.nchunks);
            free (fresh.slots);
            return -ENOMEM;
        }
        memcpy (s_entry (&fresh, ref), e, ENTRY_HEAD + s_klen (e));
        s_place (fresh.slots, fresh.cap, (s & 0xFFFFFFFF00000000ull) | ref);
        fresh.count++;
    }
    s_free_chunks (self->chunks, self->nchunks);
    free (self->slots);
    *self = fresh;
    return 0;
}

static int s_insert (bc_keydir_t *self, uint32_t hash, const void *key,
                     size_t len, const bc_loc_t *loc);

bool
bc_keydir_get (bc_keydir_t *self, uint32_t hash, const void *key,
               size_t len, bc_loc_t *loc)
{
    size_t i = s_find (self, hash, key, len);
    if (i == SIZE_MAX)
        return false;
    s_read_loc (s_entry (self, (uint32_t) self->slots [i]), loc);
    return true;
}

int
bc_keydir_put (bc_keydir_t *self, uint32_t hash, const void *key,
               size_t len, const bc_loc_t *loc, bc_loc_t *old)
{
    size_t i = s_find (self, hash, key, len);
    if (i != SIZE_MAX) {
        uint8_t *e = s_entry (self, (uint32_t) self->slots [i]);
        bc_loc_t prev;
        s_read_loc (e, &prev);
        if (old)
            *old = prev;
        self->tombstones += (size_t) loc->tombstone - (size_t) prev.tombstone;
        s_write_loc (e, loc);
        return 1;
    }
    return s_insert (self, hash, key, len, loc);
}

int
bc_keydir_put_newer (bc_keydir_t *self, uint32_t hash, const void *key,
                     size_t len, const bc_loc_t *loc, bc_loc_t *old)
{
    size_t i = s_find (self, hash, key, len);
    if (i != SIZE_MAX) {
        uint8_t *e = s_entry (self, (uint32_t) self->slots [i]);
        bc_loc_t prev;
        s_read_loc (e, &prev);
        if (prev.revision > loc->revision)
            return 0;
        self->tombstones += (size_t) loc->tombstone - (size_t) prev.tombstone;
        s_write_loc (e, loc);
        *old = prev;
        return 2;
    }
    int rc = s_insert (self, hash, key, len, loc);
    return rc < 0 ? rc : 1;
}

void
bc_keydir_prefetch (bc_keydir_t *self, uint32_t hash)
{
    __builtin_prefetch (&self->slots [s_home (self, hash)]);
}

int
bc_keydir_reserve (bc_keydir_t *self, size_t n)
{
    if (n * 100 <= self->cap * 85)
        return 0;
    return s_resize (self, n * 100 / 80 + 1);
}

/* Inserts a key known to be absent. */
static int
s_insert (bc_keydir_t *self, uint32_t hash, const void *key, size_t len,
          const bc_loc_t *loc)
{
    if ((self->count + 1) * 100 > self->cap * 85) {
        int rc = s_resize (self, self->cap + self->cap / 2);
        if (rc)
            return rc;
    }
    uint32_t ref = s_alloc (self, s_entry_size (len));
    if (!ref)
        return -ENOMEM;
    uint8_t *e = s_entry (self, ref);
    s_write_loc (e, loc);
    uint16_t k = (uint16_t) len;
    memcpy (e + 20, &k, 2);
    memcpy (e + ENTRY_HEAD, key, len);
    s_place (self->slots, self->cap, (uint64_t) hash << 32 | ref);
    self->count++;
    self->tombstones += loc->tombstone;
    return 0;
}

bool
bc_keydir_delete (bc_keydir_t *self, uint32_t hash, const void *key,
                  size_t len, bc_loc_t *old)
{
    size_t i = s_find (self, hash, key, len);
    if (i == SIZE_MAX)
        return false;
    uint8_t *e = s_entry (self, (uint32_t) self->slots [i]);
    bc_loc_t prev;
    s_read_loc (e, &prev);
    if (old)
        *old = prev;
    self->tombstones -= prev.tombstone;
    self->dead_bytes += s_entry_size (s_klen (e));
    /* Backward-shift: pull later members of the probe run into the hole. */
    size_t j = i;
    for (;;) {
        if (++j == self->cap)
            j = 0;
        uint64_t s = self->slots [j];
        if (!s)
            break;
        size_t home = s_home (self, (uint32_t) (s >> 32));
        size_t dist_home = (j + self->cap - home) % self->cap;
        size_t dist_hole = (j + self->cap - i) % self->cap;
        if (dist_home >= dist_hole) {
            self->slots [i] = s;
            i = j;
        }
    }
    self->slots [i] = 0;
    self->count--;
    if (self->dead_bytes > (4u << 20) && self->dead_bytes * 2 > self->used_bytes)
        (void) s_compact (self, false);    /* on ENOMEM keep the holes */
    return true;
}

bool
bc_keydir_switch (bc_keydir_t *self, uint32_t hash, const void *key,
                  size_t len, uint32_t file_id, uint32_t offset,
                  const bc_loc_t *loc)
{
    size_t i = s_find (self, hash, key, len);
    if (i == SIZE_MAX)
        return false;
    uint8_t *e = s_entry (self, (uint32_t) self->slots [i]);
    bc_loc_t cur;
    s_read_loc (e, &cur);
    if (cur.tombstone || cur.file_id != file_id || cur.offset != offset)
        return false;
    s_write_loc (e, loc);
    return true;
}

int
bc_keydir_purge_tombstones (bc_keydir_t *self)
{
    if (self->tombstones == 0 && self->dead_bytes == 0)
        return 0;
    return s_compact (self, true);
}

void
bc_keydir_foreach (bc_keydir_t *self,
                   void (*fn) (const uint8_t *key, size_t len,
                               const bc_loc_t *loc, void *arg),
                   void *arg)
{
    size_t cursor = 0;
    (void) bc_keydir_walk (self, &cursor, SIZE_MAX, fn, arg);
}

bool
bc_keydir_walk (bc_keydir_t *self, size_t *cursor, size_t max,
                void (*fn) (const uint8_t *key, size_t len,
                            const bc_loc_t *loc, void *arg),
                void *arg)
{
    size_t i = *cursor, seen = 0;
    for (; i < self->cap && seen < max; i++) {
        uint64_t s = self->slots [i];
        if (!s)
            continue;
        const uint8_t *e = s_entry (self, (uint32_t) s);
        bc_loc_t loc;
        s_read_loc (e, &loc);
        fn (e + ENTRY_HEAD, s_klen (e), &loc, arg);
        seen++;
    }
    *cursor = i < self->cap ? i : 0;
    return i >= self->cap;
}

size_t
bc_keydir_count (bc_keydir_t *self)
{
    return self->count;
}

size_t
bc_keydir_memory (bc_keydir_t *self)
{
    return self->cap * sizeof *self->slots
         + self->nchunks * (size_t) CHUNK_BYTES
         + self->chunks_cap * sizeof *self->chunks + sizeof *self;
}
