/*  raft_snapshot_store: durable Raft snapshots of one group, in a
    directory of their own.

    A snapshot is its metadata (last included index and term, and the
    cluster configuration at that index as opaque bytes) plus the state
    machine's data as an opaque byte stream of any length, written in
    chunks.  It is written to `snap-<index>-<term>.snap.tmp`, closed with a
    trailer, fsynced, renamed to `snap-<index>-<term>.snap` and the directory
    fsynced: only then does it exist.  Temp files left by a crash are
    deleted when the store is opened, so an incomplete snapshot is never
    seen.

    File format (little-endian):
      header  40 bytes: magic "TKVRSNP1", u32 version, u32 conf size,
              u64 index, u64 term, u32 zero, u32 CRC-32C of the first 36
      conf    conf size bytes
      data    the stream
      trailer 24 bytes: magic "TKVRSEND", u64 data size, u32 CRC-32C of
              conf + data, u32 CRC-32C of the trailer's first 20 bytes
    Opening a snapshot for reading verifies the whole file first, so a
    reader never hands out bytes that fail their checksum (except a
    snapshot this store committed or already verified since it was
    opened: its header and trailer are checked, its data not read again,
    which for a 1 GB snapshot took longer than a module may stay busy); a sender of
    InstallSnapshot chunks should therefore keep one reader open per
    snapshot (raft_snapshot_store_open_index) and fetch chunks with
    raft_snapshot_reader_pread rather than reopen per chunk.
*/
#ifndef RAFT_SNAPSHOT_STORE_H_INCLUDED
#define RAFT_SNAPSHOT_STORE_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "raft_fio.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RAFT_SNAPSHOT_MAX_CONF   (1u << 20)     /* configuration bytes */

typedef struct _raft_snapshot_store_t raft_snapshot_store_t;
typedef struct _raft_snapshot_writer_t raft_snapshot_writer_t;
typedef struct _raft_snapshot_reader_t raft_snapshot_reader_t;

/*  A complete snapshot in the store, as named by its file.  */
typedef struct {
    uint64_t index;
    uint64_t term;
} raft_snapshot_id_t;

/*  Opens the store in `dir` (created if missing; its parent must exist)
    and deletes incomplete snapshots left by a crash.  `fio` is the file
    layer (NULL for plain I/O).  Returns 0 (and *self_p, the caller's) or
    -errno with a message in errbuf.  */
int raft_snapshot_store_open (const char *dir, raft_fio_t *fio,
                              raft_snapshot_store_t **self_p,
                              char *errbuf, size_t errlen);

/*  Frees the store and nulls *self_p.  Writers and readers must be gone.  */
void raft_snapshot_store_destroy (raft_snapshot_store_t **self_p);

/*  Lists the complete snapshots, oldest (lowest index) first, into a
    malloc'd array the caller frees.  Returns 0 or -errno / -ENOMEM.  */
int raft_snapshot_store_list (raft_snapshot_store_t *self,
                              raft_snapshot_id_t **ids_p, size_t *count_p);

/*  Deletes every complete snapshot with an index below `index`, durably.
    Returns 0 or -errno.  */
int raft_snapshot_store_remove_older (raft_snapshot_store_t *self,
                                      uint64_t index);

/*  Starts writing snapshot (index, term) with configuration `conf` (at
    most RAFT_SNAPSHOT_MAX_CONF bytes).  On success *writer_p is the
    caller's: it must end with commit or abort.  Returns 0, TITAN_ETOOBIG,
    -EINVAL (index 0) or -errno.  */
int raft_snapshot_store_begin (raft_snapshot_store_t *self, uint64_t index,
                               uint64_t term, const void *conf,
                               uint32_t conf_size,
                               raft_snapshot_writer_t **writer_p);

/*  Appends `size` bytes of data.  Returns 0 or -errno; after an error only
    abort is allowed.  */
int raft_snapshot_writer_write (raft_snapshot_writer_t *self, const void *data,
                                size_t size);

/*  Finishes the snapshot: trailer, fsync, rename, directory fsync.  Returns
    0 once it is durable (a snapshot with the same index and term is
    replaced), or -errno, in which case the temp file is removed.  Frees the
    writer and nulls *self_p either way.  */
int raft_snapshot_writer_commit (raft_snapshot_writer_t **self_p);

/*  Abandons the snapshot, removes its temp file, frees the writer and
    nulls *self_p.  */
void raft_snapshot_writer_abort (raft_snapshot_writer_t **self_p);

/*  Opens the complete snapshot with the highest index and verifies it.
    Returns 0 (and *reader_p, the caller's), TITAN_ENOTFOUND when there is
    none, TITAN_ECORRUPT (message from raft_snapshot_store_errmsg names the
    file and offset), or -errno.  */
int raft_snapshot_store_open_latest (raft_snapshot_store_t *self,
                                     raft_snapshot_reader_t **reader_p);

/*  Opens and verifies the complete snapshot with index `index` (the
    newest term if there are several).  Returns like open_latest;
    TITAN_ENOTFOUND when there is no such snapshot.  */
int raft_snapshot_store_open_index (raft_snapshot_store_t *self,
                                    uint64_t index,
                                    raft_snapshot_reader_t **reader_p);

/*  Returns the message of the last failure ("" if none).  */
const char *raft_snapshot_store_errmsg (raft_snapshot_store_t *self);

/*  Returns the last log index the open snapshot covers.  */
uint64_t raft_snapshot_reader_index (raft_snapshot_reader_t *self);

/*  Returns the term of that index.  */
uint64_t raft_snapshot_reader_term (raft_snapshot_reader_t *self);

/*  Returns the configuration bytes (owned by the reader, valid until it is
    destroyed) and stores their count in *size.  */
const void *raft_snapshot_reader_conf (raft_snapshot_reader_t *self,
                                       uint32_t *size);

/*  Returns the size of the snapshot's data stream.  */
uint64_t raft_snapshot_reader_data_size (raft_snapshot_reader_t *self);

/*  Reads up to `size` next bytes of data into `buf`; stores the count in
    *nread (0 at the end).  Returns 0 or -errno.  */
int raft_snapshot_reader_read (raft_snapshot_reader_t *self, void *buf,
                               size_t size, size_t *nread);

/*  Reads up to `size` bytes of data at data offset `offset` (for sending
    chunks in any order); *nread gets the count (0 at or past the end).
    Does not move the sequential position.  Returns 0 or -errno.  */
int raft_snapshot_reader_pread (raft_snapshot_reader_t *self, uint64_t offset,
                                void *buf, size_t size, size_t *nread);

/*  Closes the reader and nulls *self_p.  */
void raft_snapshot_reader_destroy (raft_snapshot_reader_t **self_p);

#ifdef __cplusplus
}
#endif
#endif
