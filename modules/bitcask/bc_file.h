/*  Bitcask file layer: every write, fsync, truncate, rename and unlink of
    the engine goes through here, so that tests can inject faults.

    A bc_fault_t (owned by a test, shared by the engines it is given to)
    can fail the Nth write or the Nth fsync from now with a chosen errno
    (a failed write first writes half its bytes, as a full disk may), and
    can simulate a machine crash: bc_fault_crash truncates every file it
    tracks to the length that was last made durable by a successful fsync
    and then fails every further operation with EIO, until
    bc_fault_revive.  Without a fault object the layer is a thin wrapper
    over the system calls.
*/
#ifndef BC_FILE_H_INCLUDED
#define BC_FILE_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct bc_fault bc_fault_t;
typedef struct bc_file bc_file_t;

/*  Creates a fault injector with no fault armed.  */
bc_fault_t *bc_fault_new (void);

/*  Destroys a fault injector and nulls the pointer.  */
void bc_fault_destroy (bc_fault_t **self_p);

/*  Fails the `nth` write (1 = the next one) with -err; 0 disarms.  */
void bc_fault_fail_write (bc_fault_t *self, int nth, int err);

/*  Fails the `nth` fsync (1 = the next one) with -err; 0 disarms.  */
void bc_fault_fail_sync (bc_fault_t *self, int nth, int err);

/*  Simulates a crash: truncates each tracked file to its last durable
    length and makes every later operation fail with -EIO.  Returns the
    number of bytes dropped.  */
uint64_t bc_fault_crash (bc_fault_t *self);

/*  Ends the crashed state (the "machine" restarted).  */
void bc_fault_revive (bc_fault_t *self);

/*  Counters: writes and fsyncs that succeeded so far.  */
uint64_t bc_fault_writes (bc_fault_t *self);
uint64_t bc_fault_syncs (bc_fault_t *self);

/*  Durable length of the tracked file `path` (last successful fsync), or
    -1 when untracked.  */
int64_t bc_fault_durable (bc_fault_t *self, const char *path);

/*  Opens `path` with open(2) flags and mode.  Returns 0 and *file_p, or a
    negative errno.  `fault` may be NULL.  */
int bc_file_open (const char *path, int flags, mode_t mode,
                  bc_fault_t *fault, bc_file_t **file_p);

/*  Closes the file and nulls the pointer (close errors are ignored: the
    data that matters was fsynced before).  */
void bc_file_close (bc_file_t **self_p);

/*  Writes all `len` bytes at `offset`.  Returns 0 or a negative errno.  */
int bc_file_pwrite (bc_file_t *self, const void *buf, size_t len,
                    uint64_t offset);

/*  Reads up to `len` bytes at `offset`; returns the count read (short only
    at end of file) or a negative errno.  */
int64_t bc_file_pread (bc_file_t *self, void *buf, size_t len,
                       uint64_t offset);

/*  fdatasync.  Returns 0 or a negative errno; never retry after failure.  */
int bc_file_sync (bc_file_t *self);

/*  ftruncate.  Returns 0 or a negative errno.  */
int bc_file_truncate (bc_file_t *self, uint64_t len);

/*  Preallocates the file to `len` bytes (fallocate; the size grows, the
    new bytes read as zeros), so that later appends inside it followed by
    fdatasync need not journal a size change.  Returns 0 or a negative
    errno (-EOPNOTSUPP where the file system cannot).  */
int bc_file_allocate (bc_file_t *self, uint64_t len);

/*  Current size (fstat).  Returns the size or a negative errno.  */
int64_t bc_file_size (bc_file_t *self);

/*  The file's descriptor and path (not the caller's).  */
int bc_file_fd (bc_file_t *self);
const char *bc_file_path (bc_file_t *self);

/*  rename(2), unlink(2) and fsync of a directory through the layer.  */
int bc_file_rename (bc_fault_t *fault, const char *from, const char *to);
int bc_file_unlink (bc_fault_t *fault, const char *path);
int bc_file_sync_dir (bc_fault_t *fault, const char *dir);

/*  Removes a flat directory and every file in it through the layer (a
    missing directory is fine; subdirectories are not expected).  Returns
    0 or a negative errno.  */
int bc_file_remove_dir (bc_fault_t *fault, const char *dir);

/*  Writes into `out` (of `size` bytes) the directory that holds `dir`
    ("." when it has no slash, "/" for a top-level one).  */
void bc_file_parent_dir (const char *dir, char *out, size_t size);

#endif
