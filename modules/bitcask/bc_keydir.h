/*  Bitcask keydir: the in-memory map key -> location of its latest record.

    An open-addressing hash table with linear probing and backward-shift
    deletion (no tombstone slots).  A slot is 8 bytes: the key's 32-bit
    hash and a 32-bit reference to its entry in an arena of 1 MiB chunks;
    an entry is 22 bytes plus the key (file id, offset, record size,
    revision, key length), 4-byte aligned, with no per-key malloc.  The
    table grows by 1.5x at 85% load, so a key costs about 22 + 11 bytes plus
    its length on average.  Deleted entries leave holes in the arena that
    are reclaimed by compaction once they outweigh the live entries.

    Not thread-safe: the engine guards it with its read-write lock.
*/
#ifndef BC_KEYDIR_H_INCLUDED
#define BC_KEYDIR_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct bc_keydir bc_keydir_t;

/*  Where a key's latest record lives.  `tombstone` entries exist only
    while the engine loads its files (a delete must beat older puts found
    later); they are purged before the engine serves.  */
typedef struct {
    uint32_t file_id;
    uint32_t offset;
    uint32_t size;
    uint64_t revision;
    bool tombstone;
} bc_loc_t;

/*  Creates an empty keydir, or NULL when out of memory.  */
bc_keydir_t *bc_keydir_new (void);

/*  Destroys the keydir and nulls the pointer.  */
void bc_keydir_destroy (bc_keydir_t **self_p);

/*  The hash the keydir uses for a key (compute it once per operation).  */
uint32_t bc_keydir_hash (const void *key, size_t len);

/*  Looks a key up.  Returns true and fills *loc when present.  */
bool bc_keydir_get (bc_keydir_t *self, uint32_t hash, const void *key,
                    size_t len, bc_loc_t *loc);

/*  Inserts or replaces a key's location.  Returns 1 when it replaced an
    entry (whose old location goes to *old if not NULL), 0 when it inserted,
    -ENOMEM when out of memory (the keydir is then unchanged).  */
int bc_keydir_put (bc_keydir_t *self, uint32_t hash, const void *key,
                   size_t len, const bc_loc_t *loc, bc_loc_t *old);

/*  Loading: records the key's location unless the keydir already holds a
    newer revision of it, in one probe.  Returns 1 when inserted, 2 when
    it replaced an entry (then in *old), 0 when the existing entry is
    newer, -ENOMEM.  */
int bc_keydir_put_newer (bc_keydir_t *self, uint32_t hash, const void *key,
                         size_t len, const bc_loc_t *loc, bc_loc_t *old);

/*  Hints the CPU to fetch the home slot of `hash` (bulk loading issues
    these a few keys ahead to overlap cache misses).  */
void bc_keydir_prefetch (bc_keydir_t *self, uint32_t hash);

/*  Makes room for `n` keys in one resize (loading).  Returns 0 or
    -ENOMEM (the keydir then grows as usual).  */
int bc_keydir_reserve (bc_keydir_t *self, size_t n);

/*  Removes a key.  Returns true (old location in *old if not NULL) when it
    was present.  */
bool bc_keydir_delete (bc_keydir_t *self, uint32_t hash, const void *key,
                       size_t len, bc_loc_t *old);

/*  Moves a key to `loc` only if it still lives at (file_id, offset): the
    merge's compare-and-switch.  Returns true when switched.  */
bool bc_keydir_switch (bc_keydir_t *self, uint32_t hash, const void *key,
                       size_t len, uint32_t file_id, uint32_t offset,
                       const bc_loc_t *loc);

/*  Drops every tombstone entry (end of loading).  Returns 0 or -ENOMEM.  */
int bc_keydir_purge_tombstones (bc_keydir_t *self);

/*  Calls fn for every entry (the keydir must not change meanwhile).  */
void bc_keydir_foreach (bc_keydir_t *self,
                        void (*fn) (const uint8_t *key, size_t len,
                                    const bc_loc_t *loc, void *arg),
                        void *arg);

/*  Calls fn for at most `max` entries, starting at slot *cursor (0 for
    the first call), and advances *cursor past them.  Returns true once
    every slot was visited (then *cursor is 0 again).  For walks that let
    go of the lock between calls (scrub): an entry added meanwhile, or
    moved by a resize, may be visited twice or not at all in one walk.  */
bool bc_keydir_walk (bc_keydir_t *self, size_t *cursor, size_t max,
                     void (*fn) (const uint8_t *key, size_t len,
                                 const bc_loc_t *loc, void *arg),
                     void *arg);

/*  Number of keys, and bytes of memory held (slots + arena).  */
size_t bc_keydir_count (bc_keydir_t *self);
size_t bc_keydir_memory (bc_keydir_t *self);

#endif
