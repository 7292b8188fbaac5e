/*  Bitcask engine internals shared by bc_engine.c (commit and read
    paths), bc_load.c (open and recovery, hint files) and bc_merge.c.

    Locking, outermost first:
      merge_mu   one merge at a time;
      mu         the commit queue, the leader flag, the failed state;
      kd_lock    (rwlock, writer-preferring) the keydir, the file table
                 and its live-byte counters; readers hold it across their
                 pread, so a file is never closed or unlinked under them;
      fd_mu      the open descriptors of sealed files (LRU) and their
                 reference counts.
    Only the commit leader (one thread at a time, no lock held while it
    writes) touches the active file, last_revision, applied_index,
    durable_applied and unsynced (the last three also read atomically by
    bc_engine_stats and bc_engine_unsynced).  */
#ifndef BC_INTERNAL_H_INCLUDED
#define BC_INTERNAL_H_INCLUDED

#include "titan/histogram.h"
#include <pthread.h>
#include <stdio.h>

#include "bc_engine.h"
#include "bc_format.h"
#include "bc_keydir.h"

/* One data file. */
typedef struct {
    uint32_t id;
    bool merged;              /* written by a merge (.mdata) */
    bool hinted;              /* has a valid hint file */
    uint64_t size;            /* bytes (the active file: durable bytes) */
    bool crc_known;           /* crc covers bytes 0..size (a file this
                                 engine created and wrote; else computed
                                 by the first snapshot that needs it) */
    uint32_t crc;             /* CRC-32C of those bytes */
    uint64_t live;            /* bytes of records the keydir points to */
    uint64_t allocated;       /* active file: bytes preallocated */
    bc_file_t *file;          /* open descriptor, or NULL */
    const uint8_t *map;       /* read mapping (sealed: LRU-bounded), or NULL */
    size_t map_len;
    uint32_t refs;            /* readers using `file` (fd_mu) */
    uint64_t lru;             /* last use tick (fd_mu) */
} bc_dfile_t;

struct bc_engine {
    char *dir;
    bc_options_t opt;

    pthread_mutex_t merge_mu;

    pthread_mutex_t mu;
    pthread_cond_t cond;
    bc_batch_t *queue_head;
    bc_batch_t *queue_tail;
    bool leader;
    bool closing;
    int failed;
    char failed_msg [200];

    pthread_rwlock_t kd_lock;
    bc_keydir_t *keydir;
    bc_dfile_t **files;       /* sorted by id */
    size_t nfiles;
    size_t files_cap;
    uint32_t next_id;
    uint32_t active_id;
    uint64_t merges;
    uint64_t bytes_reclaimed;
    bc_digest_t digest;       /* of the keydir, and its recorded points */

    pthread_mutex_t fd_mu;
    uint32_t open_files;      /* sealed files with an open descriptor */
    uint64_t lru_tick;

    /* commit leader state */
    bc_dfile_t *active;
    uint64_t last_revision;
    uint64_t applied_index;
    uint64_t durable_applied;    /* applied index the last fdatasync covers */
    bool unsynced;               /* the active file has bytes not synced */
    uint8_t *wbuf;
    size_t wcap;
    titan_hist_t fsync_hist;     /* data-file fdatasync latency (atomic) */
    uint64_t commits;
    uint64_t syncs;
    uint64_t batches;
    uint64_t tail_truncated;
    /* data errors (atomic): see bc_stats_t */
    uint64_t read_errors;
    uint64_t hint_fallbacks;
    uint64_t resync_regions;
    uint64_t resync_bytes;
    uint64_t repairs;
    uint64_t repairs_refused;
};

/* Formats a message into err (if not NULL) and returns rc. */
int bc_err (char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));

/* Path of file `id` with suffix ("data", "mdata", "hint", "mdata.tmp"...). */
void bc_path (bc_engine_t *self, char *out, size_t size, uint32_t id,
              const char *suffix);

/* File table (caller holds kd_lock for writing, or reading for find). */
bc_dfile_t *bc_dfile_find (bc_engine_t *self, uint32_t id);
int bc_dfile_add (bc_engine_t *self, bc_dfile_t *df);
void bc_dfile_remove (bc_engine_t *self, uint32_t id);
void bc_dfile_free (bc_dfile_t **df_p);

/* The active file is preallocated this far ahead of its end. */
#define BC_PREALLOC_STEP (8u << 20)

/* Preallocates the active file to cover `end` plus a step (best effort:
   a file system without fallocate just appends). */
void bc_dfile_prealloc (bc_engine_t *self, bc_dfile_t *df, uint64_t end);

/* Maps the active file for reads, with room to grow to max_file_bytes
   (pages past the end are never touched: reads stay below `size`). */
int bc_dfile_map_active (bc_engine_t *self, bc_dfile_t *df);

/* Reads the record the keydir holds for key (hash precomputed) and
   checks it against the keydir entry: CRC, type, key, revision.  On
   success *rec_p is a malloc'd copy of the whole record (the caller's;
   *rec describes it) and *loc the entry.  Fails with TITAN_ENOTFOUND,
   TITAN_ECORRUPT (record damaged, truncated or its file missing; err
   names file, offset and reason, *loc is the entry) or -errno.  */
int bc_read_record (bc_engine_t *self, const void *key, size_t key_len,
                    uint32_t hash, uint8_t **rec_p, bc_record_t *rec,
                    bc_loc_t *loc, char *err, size_t errlen);

/* Open/recovery (bc_load.c). */
int bc_load (bc_engine_t *self, char *err, size_t errlen);

/* Writes the hint file of sealed data file df by scanning it.  */
int bc_write_hint (bc_engine_t *self, bc_dfile_t *df, char *err,
                   size_t errlen);

/* Finishes or discards an interrupted merge found at open (bc_merge.c). */
int bc_merge_recover (bc_engine_t *self, char *err, size_t errlen);

/* Maps a whole file read-only; *map_p NULL for an empty file.  */
int bc_map_file (bc_file_t *file, const uint8_t **map_p, size_t *size_p);
void bc_unmap_file (const uint8_t *map, size_t size);

#endif
