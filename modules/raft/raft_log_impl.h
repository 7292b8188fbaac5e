/*  raft_log internals shared by raft_log.c (the API: append, read,
    truncate, compact, reset) and raft_log_recover.c (the recovery scan at
    open): on-disk format constants, the in-memory structures, and the few
    helpers both use.  Not a public header.  */
#ifndef RAFT_LOG_IMPL_H_INCLUDED
#define RAFT_LOG_IMPL_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft_log.h"

#define SEG_MAGIC       "TKVRLOG1"
#define META_MAGIC      "TKVRMET1"
#define SEG_VERSION     1u
#define SEG_HDR_SIZE    32u     /* magic 8, version 4, pad 4, first 8, pad 4, crc 4 */
#define REC_HDR_SIZE    28u     /* crc 4, size 4, index 8, term 8, type 1, pad 3 */
#define META_SIZE       32u     /* magic 8, first 8, prev_term 8, version 4, crc 4 */
#define READ_CHUNK      (256u * 1024)

typedef struct {
    uint64_t id;                /* stable id; position = id - seg_base */
    uint64_t first;             /* index of the first record (from header) */
    uint64_t last;              /* index of the last record; first - 1 if none */
    uint64_t size;              /* bytes of valid content (header included) */
    int fd;
    char *path;
} rlog_segment_t;

typedef struct {
    uint64_t term;
    uint64_t offset;            /* record start in its segment */
    uint64_t seg;               /* segment id */
    uint32_t size;              /* data size */
} rlog_slot_t;

struct _raft_log_t {
    char *dir;
    raft_fio_t *fio;
    uint64_t segment_size;
    uint32_t max_entry_size;

    uint64_t first_index;       /* first live entry */
    uint64_t prev_term;         /* term of first_index - 1 */
    rlog_slot_t *slots;         /* slots [i - first_index] for live entries */
    size_t nslots;
    size_t slots_cap;

    rlog_segment_t *segs;
    size_t nsegs;
    size_t segs_cap;
    uint64_t seg_base;          /* id of segs [0] */

    uint8_t *wbuf;              /* records encoded, not yet written */
    size_t wbuf_len;
    size_t wbuf_cap;
    bool unsynced;              /* records written since the last sync */
    uint64_t unsynced_seg;      /* id of the segment they went to */

    int failed;                 /* 0, or the status that failed the log */
    char errmsg [512];
    raft_log_recovery_t recovery;
};

//  --------------------------------------------------------------------------
//  Little-endian encoding

static inline void
rlog_put32 (uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p [i] = (uint8_t) (v >> (8 * i));
}

static inline void
rlog_put64 (uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p [i] = (uint8_t) (v >> (8 * i));
}

static inline uint32_t
rlog_get32 (const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p [i];
    return v;
}

static inline uint64_t
rlog_get64 (const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p [i];
    return v;
}


//  Formats the log's error message (the message of the current call).
void rlog_setmsg (raft_log_t *self, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

//  Marks the log failed with I/O status `rc`, sets the message naming
//  `what` and `path`, and returns rc.
int rlog_fail (raft_log_t *self, int rc, const char *what, const char *path);

//  Appends a slot for the next live entry.  Returns 0 or -ENOMEM.
int rlog_push_slot (raft_log_t *self, uint64_t term, uint64_t offset,
                    uint64_t seg, uint32_t size);

//  Returns the malloc'd path of the segment starting at `first`, or NULL.
char *rlog_seg_path (raft_log_t *self, uint64_t first);

//  Adds a segment at the end of the list, taking ownership of fd and path.
//  Returns 0 or -ENOMEM.
int rlog_add_segment (raft_log_t *self, uint64_t first, int fd, char *path,
                      uint64_t size);

//  Deletes the oldest `count` segments (no directory sync).  Returns 0 or
//  the I/O status (the log is then failed).
int rlog_delete_head_segments (raft_log_t *self, size_t count);

//  Reads the meta file and scans every segment (raft_log_recover.c).
//  Returns 0 or a status with the message set.
int rlog_recover (raft_log_t *self);

#endif
