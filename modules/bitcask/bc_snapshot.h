/*  Bitcask snapshots: a point-in-time export of one shard as a
    self-describing, CRC-protected byte stream, and its crash-safe restore.

    Export: bc_snapshot_begin seals the active file (so the snapshot covers
    exactly the writes up to the seal, with that applied index and last
    revision), takes a read mapping of every sealed data file and hint
    file, and builds a manifest (file kinds, ids, sizes, CRC-32Cs) that
    heads the stream; bc_snapshot_read copies any range of the stream.
    The mappings are the snapshot's references to the files: a merge that
    removes a file's name while the snapshot is open does not free its
    data, which stays readable until bc_snapshot_end.  Reads and writes of
    the engine go on meanwhile; a merge waits only while the file set is
    taken.

    Restore: bc_restore_begin prepares `<dir>.restore`; bc_restore_write
    takes the stream in order (re-sent ranges are accepted and ignored);
    bc_restore_commit checks the manifest and every file's CRC and then
    replaces `dir` (fsync every file and the directory, mark it complete,
    rename `dir` aside to `<dir>.old`, rename the new one in, remove the
    old).  The engine of `dir` must be closed across the commit and opened
    afterwards.  bc_snapshot_recover (called by bc_engine_open and
    bc_restore_begin) finishes or undoes an interrupted commit, so a crash at any step leaves either the
    whole old state or the whole new one.  Stream format: README.md.
*/
#ifndef BC_SNAPSHOT_H_INCLUDED
#define BC_SNAPSHOT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bc_engine.h"

#define BC_SNAP_MAGIC        "TKVSNAP1"
#define BC_SNAP_VERSION      1u
#define BC_SNAP_FIXED        40u     /* header bytes before the entries */
#define BC_SNAP_ENTRY        24u     /* bytes per manifest entry */
#define BC_SNAP_MAX_FILES    (1u << 20)
#define BC_SNAP_KIND_DATA    1u
#define BC_SNAP_KIND_MDATA   2u
#define BC_SNAP_KIND_HINT    3u

typedef struct bc_snapshot bc_snapshot_t;
typedef struct bc_restore bc_restore_t;

typedef struct {
    uint64_t applied_index;
    uint64_t last_revision;
    uint64_t total_bytes;        /* length of the whole stream */
    uint32_t files;
} bc_snapshot_info_t;

/*  Takes a snapshot of `engine` at its current state.  Returns 0 and
    *snap_p, or a negative status with a message (the engine failed, a
    file cannot be mapped, out of memory).  */
int bc_snapshot_begin (bc_engine_t *engine, bc_snapshot_t **snap_p,
                       char *err, size_t errlen);

/*  Fills *info with the snapshot's applied index, revision and size.  */
void bc_snapshot_info (bc_snapshot_t *self, bc_snapshot_info_t *info);

/*  Copies up to `cap` bytes of the stream from `offset` into buf; *n gets
    the count (0 at or past the end).  Returns 0, or -EINVAL for an offset
    past the end.  Thread-safe for concurrent readers.  */
int bc_snapshot_read (bc_snapshot_t *self, uint64_t offset, void *buf,
                      size_t cap, size_t *n);

/*  Releases the snapshot's files and nulls the pointer.  */
void bc_snapshot_end (bc_snapshot_t **self_p);

/*  Starts a restore into `dir` (its engine may stay open until commit):
    finishes any interrupted restore, then creates an empty `<dir>.restore`.
    `fault` (tests) may be NULL.  Returns 0 and *restore_p, or a negative
    status with a message.  */
int bc_restore_begin (const char *dir, bc_fault_t *fault,
                      bc_restore_t **restore_p, char *err, size_t errlen);

/*  Writes `len` bytes of the stream at `offset`, which must be the number
    of bytes written so far (a range already written is ignored).  The
    manifest is checked as soon as it is complete.  Returns 0, -EINVAL (a
    gap, bytes past the end), TITAN_ECORRUPT (bad manifest) or -errno; after
    an error the restore can only be aborted.  */
int bc_restore_write (bc_restore_t *self, uint64_t offset, const void *data,
                      size_t len, char *err, size_t errlen);

/*  True when `data` (the start of a stream) agrees with the manifest
    bytes received so far: a re-sent first chunk rather than another
    stream.  */
bool bc_restore_same_start (bc_restore_t *self, const void *data,
                            size_t len);

/*  Bytes written so far and the stream's total (0 until the manifest is
    complete).  */
uint64_t bc_restore_written (bc_restore_t *self);
uint64_t bc_restore_total (bc_restore_t *self);

/*  Checks that the stream is complete and every CRC matches, without
    touching `dir` (so the caller can keep its engine open until this
    passed).  Fills *info (may be NULL).  Returns 0, -EINVAL (incomplete)
    or TITAN_ECORRUPT, with a message.  */
int bc_restore_verify (bc_restore_t *self, bc_snapshot_info_t *info,
                       char *err, size_t errlen);

/*  Verifies the complete stream (every CRC, the manifest) and replaces
    `dir` with it atomically; the engine of `dir` must be closed.  Fills
    *info (may be NULL).  Returns 0, or a negative status with a message:
    -EINVAL (incomplete stream), TITAN_ECORRUPT (a CRC), -errno (I/O; the
    old or the new state is in place, bc_snapshot_recover settles which).  */
int bc_restore_commit (bc_restore_t *self, bc_snapshot_info_t *info,
                       char *err, size_t errlen);

/*  Tests: make commit stop (as if the machine crashed) after step `step`
    (1: new directory complete, 2: old one renamed aside, 3: new one
    renamed in, 4: marker removed).  */
void bc_restore_test_stop (bc_restore_t *self, int step);

/*  Destroys the restore, removing `<dir>.restore` unless it was committed,
    and nulls the pointer.  */
void bc_restore_abort (bc_restore_t **self_p);

/*  Settles an interrupted restore of `dir`: when `dir` is missing, rolls
    forward to a complete (marked) `<dir>.restore` or back to `<dir>.old`;
    then removes `<dir>.old` and the marker, and with `discard` also an
    unfinished `<dir>.restore` (bc_engine_open passes false, so that opening
    an engine never destroys a restore being written; bc_restore_begin
    passes true).  Returns 0 or a negative status with a message.  */
int bc_snapshot_recover (const char *dir, bc_fault_t *fault, bool discard,
                         char *err, size_t errlen);

#endif
