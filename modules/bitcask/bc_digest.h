/*  Bitcask state digest: an order-independent fingerprint of a shard's
    keydir, for the replicas' consistency check (docs/consistency.md).

    Every live key contributes a 64-bit hash of (key bytes, revision,
    record size); the digest is their sum modulo 2^64.  A sum does not
    depend on the order in which keys were written or loaded, and is
    updated in O(1) per applied op (add the new entry's hash, subtract the
    replaced or deleted one's).  Revisions are Raft indexes and a record's
    size is its header + key + value length, so two replicas that applied
    the same log hold the same entries and the same digest, whatever their
    file layout, batching, merges or restarts; a lost, extra or stale key
    changes it.  (The value bytes themselves are covered by the record
    CRCs that reads and the scrub verify, not by the digest.)

    Because replicas apply the same log, the state right after index i is
    the same on all of them.  The digest is therefore recorded at every
    applied index that is a multiple of `every`: before an op at revision
    r the points every < r not yet recorded are taken (no op in between
    changed the state), and at the end of a batch those up to its applied
    index.  The last BC_DIGEST_KEEP points are kept in memory (not on
    disk: after a restart recording resumes from the applied index).

    Not thread-safe: the engine guards it with its keydir lock.  */
#ifndef BC_DIGEST_H_INCLUDED
#define BC_DIGEST_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#define BC_DIGEST_KEEP 16

/*  The digest of the state right after applied index `index`.  */
typedef struct {
    uint64_t index;
    uint64_t digest;
} bc_digest_point_t;

typedef struct {
    uint64_t sum;              /* digest of the current keydir */
    uint64_t every;            /* record at multiples of this; 0: never */
    uint64_t cursor;           /* points up to here are decided */
    bc_digest_point_t points [BC_DIGEST_KEEP];   /* ring, oldest at head */
    size_t head;
    size_t count;
} bc_digest_t;

/*  The contribution of one live key.  */
uint64_t bc_digest_entry (const void *key, size_t key_len, uint64_t revision,
                          uint32_t record_size);

/*  Restarts the digest at `sum` (the keydir's, recomputed) for a state at
    applied index `applied`: drops the recorded points, and records one at
    `applied` itself when it is a multiple of `every`.  */
void bc_digest_reset (bc_digest_t *self, uint64_t every, uint64_t sum,
                      uint64_t applied);

/*  Records the current sum at every multiple of `every` in
    (cursor, upto] and moves the cursor to `upto` (no-op when upto <=
    cursor).  Call it with r - 1 before an op at revision r changes the
    state, and with the applied index at the end of a batch.  */
void bc_digest_advance (bc_digest_t *self, uint64_t upto);

/*  Copies the recorded points, oldest first, into out (at most cap);
    returns how many.  */
size_t bc_digest_points (const bc_digest_t *self, bc_digest_point_t *out,
                         size_t cap);

#endif
