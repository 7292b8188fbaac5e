/*  raft_log: the durable, segmented, CRC-checked log of one Raft group.

    A group's log lives in its own directory:

      meta                     first index and the term of the entry before
                               it (written atomically: temp, fsync, rename,
                               directory fsync; CRC-checked)
      <first-index>.seg        segment files, named by the index of their
                               first record (20 decimal digits)

    A segment opens with a 32-byte CRC-checked header (magic, version, first
    index) and holds records back to back:

      u32 crc   CRC-32C of everything after this field up to the end of data
      u32 size  data size (checked against RAFT_LOG_RECORD_LIMIT before any
                read or allocation)
      u64 index, u64 term, u8 type, 3 zero bytes, data[size]

    All integers are little-endian.  Appends go to the last segment; when
    it would grow past segment_size a new segment is started (header written
    and synced, directory synced).  An append batch costs one fdatasync and
    returns only once the batch is durable.  The append is also split in
    two for a caller that makes many logs durable at once (the raft module
    syncs every group's log of one loop iteration together, concurrently):
    raft_log_write puts the records into the file without syncing, and
    raft_log_sync makes them durable; raft_log_append is the two in one.
    Until the sync returns, written entries are readable and counted by
    last_index but not durable: nothing may be promised about them.

    Recovery (raft_log_open) reads every segment once to rebuild the
    in-memory index (index -> segment, offset, size, term).  In the last
    segment an incomplete or bad record at the end is a torn write: the file
    is truncated there (durably) and the fact reported by
    raft_log_recovery_info.  A bad record that is followed by a valid next
    record (unless a sector-aligned piece of it of 32 bytes or more is all
    zeros: pages of one unsynced write may reach the disk out of order), or
    any bad record or header in a sealed (not last) segment, is
    corruption: open fails with TITAN_ECORRUPT and a message that names the
    file and offset.  Nothing is ever skipped silently.

    Index semantics are Raft's: indexes start at 1; an empty log has
    last_index == first_index - 1.  term(first_index - 1) is known (from the
    meta file after compaction, 0 for a fresh log).  Statuses: an index
    below first_index - 1 (compacted) is -ERANGE; above last_index is
    TITAN_ENOTFOUND; a misuse detectable only at run time (non-contiguous
    batch, decreasing terms) is -EINVAL.

    Failure: when a write, truncate or sync fails, the call returns its
    error and the log becomes failed; every later call returns that same
    status.  The fsync is never retried (after a failed fsync the kernel may
    have dropped the dirty pages): destroy the log and open it again, which
    recovers from what is actually on disk.

    One raft_log_t is used by one thread at a time (different logs may be
    synced on different threads at once).
*/
#ifndef RAFT_LOG_H_INCLUDED
#define RAFT_LOG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft_fio.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RAFT_LOG_DEFAULT_SEGMENT_SIZE   (64u * 1024 * 1024)
#define RAFT_LOG_DEFAULT_MAX_ENTRY      (16u * 1024 * 1024)
/*  The format's hard limit on one record's data (what recovery accepts,
    whatever max_entry_size was configured); max_entry_size is capped to it. */
#define RAFT_LOG_RECORD_LIMIT           (256u * 1024 * 1024)

typedef struct _raft_log_t raft_log_t;

/*  One log entry.  `data` is owned by whoever produced the struct: the
    caller for raft_log_append, the returned block for raft_log_entries.  */
typedef struct {
    uint64_t index;
    uint64_t term;
    uint8_t type;               /* opaque to the log (the core's entry type) */
    const void *data;
    uint32_t size;
} raft_log_entry_t;

/*  Options for raft_log_open; zero fields take the defaults.  */
typedef struct {
    uint64_t segment_size;      /* rotate past this many bytes; default 64 MiB */
    uint32_t max_entry_size;    /* largest data appended; default 16 MiB */
    raft_fio_t *fio;            /* file layer (fault injection); NULL = plain */
} raft_log_options_t;

/*  What recovery found, for logs and tests.  */
typedef struct {
    uint32_t segments;          /* segment files in use */
    uint64_t torn_bytes;        /* bytes cut off the last segment's tail */
    uint32_t removed_segments;  /* stale segments deleted (compacted, empty) */
} raft_log_recovery_t;

/*  Opens (creating if needed) the log in directory `dir` (created if
    missing, parent must exist; a new directory is made durable) and
    recovers it.  On success *self_p is the
    caller's (raft_log_destroy) and 0 is returned.  On failure returns a
    negative status (-errno, TITAN_ECORRUPT, -ENOMEM) and writes a message
    naming the file and offset into errbuf (when errbuf is not NULL).  */
int raft_log_open (const char *dir, const raft_log_options_t *options,
                   raft_log_t **self_p, char *errbuf, size_t errlen);

/*  Closes the files and frees the log; nulls *self_p.  Everything that was
    acknowledged is already durable, so close does not sync.  */
void raft_log_destroy (raft_log_t **self_p);

/*  Returns the index of the first entry held (last_index + 1 if empty).  */
uint64_t raft_log_first_index (raft_log_t *self);

/*  Returns the index of the last entry (first_index - 1 if empty).  */
uint64_t raft_log_last_index (raft_log_t *self);

/*  Returns the term of the last entry (or of first_index - 1 if empty).  */
uint64_t raft_log_last_term (raft_log_t *self);

/*  Stores in *term the term of entry `index`, for first_index - 1 <= index
    <= last_index (from memory; no I/O).  Returns 0, -ERANGE (compacted),
    TITAN_ENOTFOUND (beyond the end) or the failed status.  */
int raft_log_term (raft_log_t *self, uint64_t index, uint64_t *term);

/*  Reads entries [lo, hi) back from disk, stopping before the total data
    size would exceed max_bytes (but always returning at least one entry).
    On success *entries_p is one malloc'd block holding the entry array and
    their data (the caller frees it with free()), *count_p the number of
    entries.  Every record's CRC is checked again.  Returns 0, -ERANGE (lo
    compacted), TITAN_ENOTFOUND (hi > last_index + 1), -EINVAL (lo >= hi),
    TITAN_ECORRUPT, -ENOMEM or -errno.  */
int raft_log_entries (raft_log_t *self, uint64_t lo, uint64_t hi,
                      size_t max_bytes, raft_log_entry_t **entries_p,
                      size_t *count_p);

/*  Appends `count` entries durably: returns once they are written and
    fdatasync'ed.  entries[0].index may be at most last_index + 1; if it is
    lower, entries the log already holds with the same term are skipped and
    the suffix from the first conflicting one (different term) is truncated
    durably before the rest is written.
    Indexes must be consecutive and terms must not decrease (nor go below
    the term of the entry before).  Returns 0, -EINVAL (bad batch, or it
    would overwrite compacted entries), TITAN_ETOOBIG (entry larger than
    max_entry_size), or the I/O error that failed the log.  */
int raft_log_append (raft_log_t *self, const raft_log_entry_t *entries,
                     size_t count);

/*  raft_log_append without the fdatasync: the entries are written to the
    file (same rules, same statuses) and readable at once, but durable only
    after raft_log_sync.  A segment rotation or a conflict truncation on
    the way still syncs what it must inline.  Returns 0 or the status as
    raft_log_append.  */
int raft_log_write (raft_log_t *self, const raft_log_entry_t *entries,
                    size_t count);

/*  Makes every entry written by raft_log_write durable (one fdatasync of
    the segment they went to; nothing when there is nothing unsynced).
    Returns 0 or the I/O error that failed the log; the failed log is never
    synced again (see Failure above).  */
int raft_log_sync (raft_log_t *self);

/*  True when entries were written since the last raft_log_sync.  */
bool raft_log_unsynced (raft_log_t *self);

/*  Removes entries from `from_index` to the end, durably.  from_index must
    be in [first_index, last_index + 1] (the latter is a no-op).  Returns 0,
    -EINVAL, or the I/O error that failed the log.  */
int raft_log_truncate_suffix (raft_log_t *self, uint64_t from_index);

/*  Discards entries up to and including `up_to_index` (which must be <=
    last_index): records first index = up_to_index + 1 and the term of
    up_to_index durably in the meta file, then deletes the segment files
    wholly below it.  Entries in a partly covered segment stay on disk but
    are no longer readable.  up_to_index < first_index is a no-op.  Returns
    0, -EINVAL or the I/O error that failed the log.  */
int raft_log_compact_prefix (raft_log_t *self, uint64_t up_to_index);

/*  Makes the log start right after a snapshot (index, term), durably.  If
    the log holds entry `index` with that term, this is
    raft_log_compact_prefix (index) and the entries after it stay (Raft's
    InstallSnapshot rule); otherwise every entry is discarded and the log
    becomes empty with first_index = index + 1.  Crash-safe at every step:
    on reopen the log is either the old one (possibly a prefix of it) or the
    new one.  Returns 0, -EINVAL (index below first_index - 1: a snapshot
    older than the log's start) or the I/O error that failed the log.  */
int raft_log_reset (raft_log_t *self, uint64_t index, uint64_t term);

/*  Returns the message of the last failure (never NULL; "" if none).  */
const char *raft_log_errmsg (raft_log_t *self);

/*  Copies what recovery found at open into *info.  */
void raft_log_recovery_info (raft_log_t *self, raft_log_recovery_t *info);

#ifdef __cplusplus
}
#endif
#endif
