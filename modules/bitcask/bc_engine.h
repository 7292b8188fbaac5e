/*  Bitcask storage engine: the public API of one shard's store.

    An engine owns one directory of append-only data files and keeps an
    in-memory keydir that maps every live key to its latest record.  All
    entry points are safe to call from many threads at once.  Writes are
    grouped: concurrent callers queue their batches, one of them (the
    leader) writes the whole queue with one pwrite and one fdatasync, then
    publishes the new locations to the keydir and wakes the others.

    Durability.  A write without an applied index (a direct put, delete,
    CAS or repair) returns success only after the fdatasync covering its
    bytes returned.  A batch with an applied index (a Raft apply) does too
    with apply_sync ALWAYS; with INTERVAL (the default) it is written and
    published without an fdatasync, and becomes durable at the next
    bc_engine_sync (the module calls it every apply_sync_interval_ms), any
    later fsynced write, a rotation, a seal (so a snapshot covers only
    durable data), or a clean close.  durable_applied_index (bc_stats_t)
    is the applied index covered by the last fdatasync: a crash may lose
    the batches above it, never one at or below it, and the engine reopens
    at an applied index in between; the caller (Raft) keeps its log from
    there and applies it again.  Reads see every published write: under
    Raft that is committed data (durable in a majority's logs), so
    serving it before the local fdatasync is linearizable.

    Revisions: every write records a revision.  A batch either supplies its
    first revision (a Raft index; op i is recorded at first_revision + i) or
    passes 0, and the engine assigns last_revision + 1 per op.  Supplied
    revisions at or below the engine's last revision are replays: those ops
    are skipped (status -EALREADY) so that a re-delivered write is never
    applied twice.  The last revision and the shard's last applied index
    survive restarts (META records, written in the same atomic group and
    covered by the same fsync as the data).

    Failure: a failed write is undone (the file truncated back) and only
    its batches fail; a failed fdatasync is never retried: the batches fail
    and the engine turns failed (every later call returns the error) until
    it is destroyed and reopened, which recovers from the files.
*/
#ifndef BC_ENGINE_H_INCLUDED
#define BC_ENGINE_H_INCLUDED

#include "titan/histogram.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bc_digest.h"
#include "bc_file.h"

typedef struct bc_engine bc_engine_t;

/*  When a batch that carries an applied index (a Raft apply) is fsynced.
    ALWAYS: before its submit returns, like every other write.  INTERVAL:
    it is written and published at once and made durable by the next
    bc_engine_sync, rotation, seal (snapshot), or close; the Raft log,
    which holds the entries until then, is the durability point.  */
typedef enum {
    BC_APPLY_SYNC_INTERVAL = 0,
    BC_APPLY_SYNC_ALWAYS = 1
} bc_apply_sync_t;

typedef struct {
    uint64_t max_file_bytes;   /* rotate the active file past this (256 MiB) */
    uint32_t max_value_bytes;  /* largest value accepted (8 MiB) */
    uint32_t max_open_files;   /* sealed files kept open (LRU, 64) */
    bool sync;                 /* fdatasync at all (true; false only for
                                  benchmarks and tests: nothing is durable) */
    bc_apply_sync_t apply_sync;/* when batches with an applied index are
                                  fsynced (BC_APPLY_SYNC_INTERVAL) */
    bc_fault_t *fault;         /* fault injection for tests, or NULL */
    int test_merge_stop;       /* tests: stop a merge after step N (0: off) */
    uint64_t digest_every;     /* record the state digest at applied indexes
                                  that are multiples of this (1000; 0: never) */
} bc_options_t;

/*  Fills `options` with the defaults above.  */
void bc_options_init (bc_options_t *options);

typedef enum {
    BC_OP_PUT = 0,
    BC_OP_DELETE = 1,
    BC_OP_CAS = 2,
    BC_OP_REPAIR = 3,            /* bc_engine_repair: rewrite a put */
    BC_OP_REPAIR_DELETE = 4      /* bc_engine_repair: the key is deleted */
} bc_op_kind_t;

/*  One write.  Inputs first; results are filled by bc_engine_submit.  */
typedef struct {
    bc_op_kind_t kind;
    const void *key;
    size_t key_len;
    const void *value;           /* PUT, CAS */
    size_t value_len;
    uint64_t expected_revision;  /* CAS, REPAIR*: required current revision */
    bool expect_absent;          /* CAS: key must not exist instead */
    /* results */
    int status;                  /* 0, TITAN_EMISMATCH (CAS), -EALREADY */
    uint64_t revision;           /* revision recorded (or replayed) */
    uint64_t current_revision;   /* CAS mismatch: key's revision, 0 absent */
    bool existed;                /* DELETE: the key was present */
    /* engine private */
    uint32_t hash_;
    uint32_t crc_;
    uint32_t offset_;
    uint32_t size_;
    uint8_t type_;
} bc_op_t;

/*  An atomic group of writes: all of its records reach the disk or none
    do.  `applied_index` (if not 0) is stored with them.  */
typedef struct bc_batch {
    bc_op_t *ops;
    size_t n_ops;
    uint64_t first_revision;     /* 0: the engine assigns */
    uint64_t applied_index;      /* 0: not recorded */
    /* results */
    int status;                  /* 0, -EALREADY (whole batch replayed), < 0 */
    char message [200];          /* why, when status < 0 */
    /* engine private */
    struct bc_batch *next_;
    bool done_;
    bool rotate_;
    bool sync_;                  /* bc_engine_sync: make everything durable */
    void *waiter_;               /* the submitting thread's condition */
    uint32_t file_id_;
    uint64_t sealed_applied_;    /* rotation: applied index at the seal */
    uint64_t sealed_revision_;   /* rotation: last revision at the seal */
    uint32_t sealed_active_;     /* rotation: id of the new active file */
} bc_batch_t;

typedef struct {
    uint64_t keys;
    uint64_t live_bytes;
    uint64_t dead_bytes;
    uint64_t total_bytes;
    uint64_t data_files;
    uint64_t applied_index;
    uint64_t durable_applied_index;  /* applied index covered by the last
                                        fdatasync (<= applied_index) */
    uint64_t last_revision;
    uint64_t merges;
    uint64_t bytes_reclaimed;
    uint64_t keydir_bytes;
    uint64_t commits;            /* groups written (one pwrite each) */
    uint64_t syncs;              /* data-file fdatasyncs of commits and
                                    bc_engine_sync */
    uint64_t batches;            /* batches committed */
    uint64_t tail_truncated;     /* bytes cut off the active file at open */
    titan_hist_t fsync;          /* fdatasync latency of group commits */
    /* data errors */
    uint64_t read_errors;        /* reads that found a damaged record or a
                                    missing/short file (TITAN_ECORRUPT) */
    uint64_t hint_fallbacks;     /* damaged hint files ignored at the last
                                    open (their data files scanned) */
    uint64_t resync_regions;     /* damaged regions skipped in data files
                                    at the last open */
    uint64_t resync_bytes;       /* bytes of those regions */
    uint64_t repairs;            /* records rewritten by bc_engine_repair */
    uint64_t repairs_refused;    /* repairs refused: the key had moved on */
    uint64_t open_files;
    int failed;                  /* 0, or the error that failed the engine */
} bc_stats_t;

/*  Opens (creating if needed) the engine in `dir`: loads hint files or
    scans data files, truncates a torn tail of the active file, finishes
    an interrupted merge.  `options` may be NULL (defaults).  Returns 0 and
    *engine_p, or a negative status with a message in err (e.g.
    TITAN_ECORRUPT naming the file and offset of a bad record in a sealed
    file, -EINVAL for bad options).  */
int bc_engine_open (const char *dir, const bc_options_t *options,
                    bc_engine_t **engine_p, char *err, size_t errlen);

/*  Closes the engine: waits for commits and merges in flight, writes
    missing hint files, closes files, frees, nulls the pointer.  */
void bc_engine_destroy (bc_engine_t **self_p);

/*  Commits `n` batches (each atomic, all in one fsync when possible) and
    returns when all are durable (written and published, for apply
    batches under apply_sync INTERVAL) or failed.  Returns 0 when every batch
    has status 0 or -EALREADY, else the first failing batch's status; each
    batch's status, message and op results are filled in.  A batch that
    breaks a limit (key 1..65535 bytes, value <= max_value_bytes, at most
    one million ops) fails with -EINVAL or TITAN_ETOOBIG and writes nothing.  */
int bc_engine_submit (bc_engine_t *self, bc_batch_t **batches, size_t n);

/*  Single-op conveniences over bc_engine_submit.  `revision` 0 lets the
    engine assign it; the revision recorded goes to *rev_out (may be NULL).
    bc_engine_delete returns TITAN_ENOTFOUND when the key was absent;
    bc_engine_cas TITAN_EMISMATCH with *rev_out = current revision.  */
int bc_engine_put (bc_engine_t *self, const void *key, size_t key_len,
                   const void *value, size_t value_len, uint64_t revision,
                   uint64_t *rev_out, char *err, size_t errlen);
int bc_engine_delete (bc_engine_t *self, const void *key, size_t key_len,
                      uint64_t revision, uint64_t *rev_out,
                      char *err, size_t errlen);
int bc_engine_cas (bc_engine_t *self, const void *key, size_t key_len,
                   const void *value, size_t value_len,
                   uint64_t expected_revision, bool expect_absent,
                   uint64_t revision, uint64_t *rev_out,
                   char *err, size_t errlen);

/*  Commits `ops` at first_revision.. with `applied_index` atomically
    (durable on return only with apply_sync ALWAYS; see the header).  */
int bc_engine_apply_batch (bc_engine_t *self, bc_op_t *ops, size_t n_ops,
                           uint64_t first_revision, uint64_t applied_index,
                           char *err, size_t errlen);

/*  Reads a key.  On success *value_p is a malloc'd copy (the caller's, to
    free) of *value_len bytes and *rev_p its revision.  Returns 0,
    TITAN_ENOTFOUND, TITAN_ECORRUPT or -errno.  TITAN_ECORRUPT: the record
    failed its checksum, is truncated, or its file is missing or short;
    no byte of it is returned, err names file, offset and reason, *rev_p
    is the revision of the damaged keydir entry (for bc_engine_repair)
    and the engine's read_errors counter grows.  */
int bc_engine_get (bc_engine_t *self, const void *key, size_t key_len,
                   uint8_t **value_p, size_t *value_len, uint64_t *rev_p,
                   char *err, size_t errlen);

/*  Repairs a damaged record: rewrites key's record at `revision` with
    `value` (or, with `deleted`, a tombstone: the key is absent on a healthy
    replica), only while the keydir still holds the key at `revision` — a
    newer write applied meanwhile wins.  The record keeps its revision;
    the engine's last revision and applied index do not change.  Durable
    (fsynced) when it returns 0; counts `repairs`.  Returns TITAN_EMISMATCH
    (counted as refused) when the key is absent or at another revision,
    -EINVAL/TITAN_ETOOBIG for bad sizes, or the engine's error.  */
int bc_engine_repair (bc_engine_t *self, const void *key, size_t key_len,
                      const void *value, size_t value_len, uint64_t revision,
                      bool deleted, char *err, size_t errlen);

/*  Current revision of a key (0 and TITAN_ENOTFOUND when absent).  */
int bc_engine_revision (bc_engine_t *self, const void *key, size_t key_len,
                        uint64_t *rev_p);

/*  Fills *stats.  */
void bc_engine_stats (bc_engine_t *self, bc_stats_t *stats);

/*  Merges every sealed data file into new data and hint files holding
    only live records, while reads and writes go on.  Reports files merged
    and bytes reclaimed.  Returns 0 (also when there was nothing to merge)
    or a negative status with a message.  */
int bc_engine_merge (bc_engine_t *self, uint64_t *files_merged,
                     uint64_t *bytes_reclaimed, char *err, size_t errlen);

/*  Makes every write returned so far durable: fdatasyncs the active file
    if it holds bytes not yet synced (else does nothing), after which the
    durable applied index equals the applied index.  Returns 0, or the
    error of the failed fdatasync, which fails the engine (never retried;
    reopen to recover).  */
int bc_engine_sync (bc_engine_t *self, char *err, size_t errlen);

/*  True when some written batch is not yet covered by an fdatasync (the
    module's cue to call bc_engine_sync at its interval).  */
bool bc_engine_unsynced (bc_engine_t *self);

/*  Seals the active file and starts a new one (tests, benchmarks, and the
    actor before a scheduled merge).  Returns 0 or a negative status.  */
int bc_engine_rotate (bc_engine_t *self, char *err, size_t errlen);

/*  Seals the active file like bc_engine_rotate and reports the state at
    the seal: every write with a revision at or below *last_revision (and
    the applied index *applied_index) is in a file whose id is below
    *active_id, and every later write is in *active_id or above.  Returns 0
    or a negative status with a message.  */
int bc_engine_seal (bc_engine_t *self, uint64_t *applied_index,
                    uint64_t *last_revision, uint32_t *active_id,
                    char *err, size_t errlen);

/*  The state digest (bc_digest.h): *digest gets the digest of the current
    keydir, and out (at most cap) the recorded (applied index, digest)
    points, oldest first; returns how many.  */
size_t bc_engine_digest (bc_engine_t *self, uint64_t *digest,
                         bc_digest_point_t *out, size_t cap);

/*  The engine's directory (not the caller's).  */
const char *bc_engine_dir (bc_engine_t *self);

#endif
