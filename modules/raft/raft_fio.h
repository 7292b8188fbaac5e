/*  raft_fio: the thin file layer under the Raft log, hard state and
    snapshot store, with fault injection for crash tests.

    Every write, sync, truncate, rename, unlink and create done by the Raft
    storage goes through these functions.  With a NULL `raft_fio_t` they are
    plain POSIX calls that retry EINTR and short writes.  A test creates a
    raft_fio_t and arms it (raft_fio_fail) to make the Nth operation of some
    kinds fail with a chosen errno (EIO, ENOSPC, ...), optionally tearing the
    failing write (a prefix of it reaches the file) and optionally making
    every later operation fail too, which models a process that died at that
    point.  The layer remembers, per path, how many bytes were last made
    durable by a sync; raft_fio_drop_unsynced then truncates every file to
    that length, which models a power loss that drops unsynced data (the
    pebble / bbolt crash-test idea).  Creates, unlinks and renames made
    through the layer are journaled until their directory is fsynced
    (raft_fio_sync_dir); raft_fio_drop_unsynced undoes the journaled ones
    too (unlinked files are kept under hidden names ending in
    ".fio-unlinked-N" meanwhile, replaced rename targets under
    ".fio-replaced-N").  A crash where only some of the unsynced changes
    reach the disk is not modelled: the layer takes the worst case.

    The layer is for one thread at a time, like the storage objects above it.
*/
#ifndef RAFT_FIO_H_INCLUDED
#define RAFT_FIO_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/*  Operation kinds, for raft_fio_fail and raft_fio_count.  */
#define RAFT_FIO_WRITE     0x01u
#define RAFT_FIO_SYNC      0x02u    /* fdatasync, fsync and directory fsync */
#define RAFT_FIO_TRUNCATE  0x04u
#define RAFT_FIO_RENAME    0x08u
#define RAFT_FIO_UNLINK    0x10u
#define RAFT_FIO_CREATE    0x20u    /* open with O_CREAT */
#define RAFT_FIO_ALL       0x3Fu

typedef struct _raft_fio_t raft_fio_t;

/*  Creates a fault-injecting file layer, not armed.  Returns NULL only when
    out of memory.  */
raft_fio_t *raft_fio_new (void);

/*  Destroys the layer and nulls *self_p.  Files stay as they are, and
    journaled directory changes are taken as durable (hidden files of
    unlinks and replaced rename targets are deleted).  */
void raft_fio_destroy (raft_fio_t **self_p);

/*  Arms a fault: the `nth` (1-based) operation, counted from this call, of
    a kind in `kinds` fails with -`err`.  If `torn` is set and that
    operation is a write, the first half of its bytes is written first.  If
    `sticky` is set every later operation of a kind in `kinds` fails too
    (the process is "dead" from that point on).  nth == 0 disarms.  */
void raft_fio_fail (raft_fio_t *self, unsigned kinds, unsigned nth, int err,
                    bool torn, bool sticky);

/*  With nosync set, syncs (file and directory) update the crash model
    but skip the system call: crash tests simulate the power loss
    themselves, so real flushes would only make them slow.  */
void raft_fio_set_nosync (raft_fio_t *self, bool nosync);

/*  Returns how many operations of a kind in `kinds` were attempted since
    the layer was created (failed ones included).  */
unsigned raft_fio_count (raft_fio_t *self, unsigned kinds);

/*  Returns true once an armed fault has fired.  */
bool raft_fio_fired (raft_fio_t *self);

/*  Simulates a power loss: undoes the creates, unlinks and renames whose
    directory was not fsynced since (newest first), then truncates every
    file written through this layer back to its length at its last
    successful sync (0 if it was created and never synced).  Disarms the
    layer.  Returns 0 or -errno.  */
int raft_fio_drop_unsynced (raft_fio_t *self);

/*  open(2).  Returns a file descriptor, or -errno.  */
int raft_fio_open (raft_fio_t *self, const char *path, int flags, mode_t mode);

/*  close(2); errors are ignored (the data that matters was synced).  */
void raft_fio_close (raft_fio_t *self, int fd);

/*  Writes all `size` bytes at `offset`.  Returns 0 or -errno (a short
    write that makes no progress is -EIO).  */
int raft_fio_pwrite (raft_fio_t *self, int fd, const void *data, size_t size,
                     off_t offset);

/*  fdatasync(2).  Returns 0 or -errno.  After a failure the caller must not
    retry: it fails the object and recovers by reopening.  */
int raft_fio_sync (raft_fio_t *self, int fd);

/*  Opens directory `dir` and fsyncs it, so that creates, renames and
    unlinks inside it are durable.  Returns 0 or -errno.  */
int raft_fio_sync_dir (raft_fio_t *self, const char *dir);

/*  Creates directory `dir` if it does not exist and, when it did not, makes
    its entry durable by fsyncing its parent.  Returns 0 or -errno.  */
int raft_fio_mkdir (raft_fio_t *self, const char *dir);

/*  ftruncate(2).  Returns 0 or -errno.  */
int raft_fio_truncate (raft_fio_t *self, int fd, off_t size);

/*  rename(2).  Returns 0 or -errno.  */
int raft_fio_rename (raft_fio_t *self, const char *from, const char *to);

/*  unlink(2); a missing file is success.  Returns 0 or -errno.  */
int raft_fio_unlink (raft_fio_t *self, const char *path);

/*  Reads exactly `size` bytes at `offset` (no fault injection: reads are
    not where durability is lost).  Returns 0, -EIO at a short read
    (end of file), or -errno.  */
int raft_fio_pread (int fd, void *data, size_t size, off_t offset);

#ifdef __cplusplus
}
#endif
#endif
