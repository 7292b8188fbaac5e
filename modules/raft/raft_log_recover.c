/*  raft_log recovery: rebuilds a log's in-memory index from its meta file
    and segment files at open, repairing a torn tail and reporting
    corruption (see raft_log.h for the rules).

    Each segment is read once, front to back, through a buffered reader;
    every record's length is checked against the format limit before it is
    read, then its CRC, index and term.  In the last segment a bad record
    ends the log (the tail is cut off durably) unless a valid record follows
    it; anywhere else it is corruption, reported with file and offset.  */
#include "raft_log_impl.h"

#include "titan/crc32c.h"
#include "titan/status.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *
s_status_text (int rc)
{
    if (rc == TITAN_ECORRUPT)
        return "corrupt";
    if (rc == TITAN_ETOOBIG)
        return "too big";
    return rc < 0 && rc > -4096 ? strerror (-rc) : "error";
}


//  Returns true if `p` is a valid segment header; stores its first index.
static bool
s_decode_seg_header (const uint8_t *p, uint64_t *first)
{
    if (memcmp (p, SEG_MAGIC, 8) != 0
    ||  rlog_get32 (p + 8) != SEG_VERSION
    ||  rlog_get32 (p + 28) != titan_crc32c (0, p, 28))
        return false;
    *first = rlog_get64 (p + 16);
    return true;
}

//  --------------------------------------------------------------------------
//  Buffered sequential reader used by recovery

typedef struct {
    int fd;
    uint64_t file_size;
    uint8_t *buf;
    size_t cap;
    uint64_t buf_off;           /* file offset of buf [0] */
    size_t buf_len;
} s_reader_t;

//  Makes bytes [off, off + len) available; returns a pointer to them, or
//  NULL with *rc set (-ENOMEM, -errno).  The caller checked they are inside
//  the file.
static const uint8_t *
s_reader_get (s_reader_t *r, uint64_t off, size_t len, int *rc)
{
    if (off >= r->buf_off && off + len <= r->buf_off + r->buf_len)
        return r->buf + (off - r->buf_off);
    size_t want = len > READ_CHUNK ? len : READ_CHUNK;
    if (want > r->file_size - off)
        want = (size_t) (r->file_size - off);
    if (want > r->cap) {
        uint8_t *buf = realloc (r->buf, want);
        if (!buf) {
            *rc = -ENOMEM;
            return NULL;
        }
        r->buf = buf;
        r->cap = want;
    }
    *rc = raft_fio_pread (r->fd, r->buf, want, (off_t) off);
    if (*rc) {
        r->buf_len = 0;
        return NULL;
    }
    r->buf_off = off;
    r->buf_len = want;
    return r->buf;
}

//  Outcome of checking one record during recovery.
typedef enum { REC_OK, REC_BAD, REC_IOERR } s_rec_check_t;

//  Checks the record at `off` expected to carry index `expect`.  On REC_OK
//  fills the header fields.  `in_bounds` tells whether the record's length
//  fits in the file (so that the next record can be looked at).
static s_rec_check_t
s_check_record (s_reader_t *r, uint64_t off, uint64_t expect,
                uint32_t *size, uint64_t *term, bool *in_bounds, int *rc,
                const char **why)
{
    *in_bounds = false;
    *size = 0;
    if (r->file_size - off < REC_HDR_SIZE) {
        *why = "incomplete record header";
        return REC_BAD;
    }
    const uint8_t *h = s_reader_get (r, off, REC_HDR_SIZE, rc);
    if (!h)
        return REC_IOERR;
    uint32_t crc = rlog_get32 (h);
    uint32_t dsize = rlog_get32 (h + 4);
    uint64_t index = rlog_get64 (h + 8);
    uint64_t t = rlog_get64 (h + 16);
    bool pad_ok = h [25] == 0 && h [26] == 0 && h [27] == 0;
    //  The format's limit, not the configured one: lowering the option
    //  must never make recovery cut acknowledged records.
    if (dsize > RAFT_LOG_RECORD_LIMIT) {
        *why = "record size above the format limit";
        return REC_BAD;
    }
    if (r->file_size - off - REC_HDR_SIZE < dsize) {
        *why = "incomplete record";
        return REC_BAD;
    }
    *in_bounds = true;
    *size = dsize;
    const uint8_t *rec = s_reader_get (r, off, REC_HDR_SIZE + dsize, rc);
    if (!rec)
        return REC_IOERR;
    if (titan_crc32c (0, rec + 4, REC_HDR_SIZE - 4 + dsize) != crc || !pad_ok) {
        *why = "record checksum mismatch";
        return REC_BAD;
    }
    if (index != expect) {
        *why = "record index out of sequence";
        return REC_BAD;
    }
    *term = t;
    return REC_OK;
}

//  Returns true if a piece of [start, end) that lies within one 512-byte
//  sector of the file, and is at least ZERO_PIECE_MIN bytes long, is all
//  zeros: the mark of a sector that was never written.
#define SECTOR_SIZE     512u
#define ZERO_PIECE_MIN  32u

static bool
s_has_zero_sector (s_reader_t *r, uint64_t start, uint64_t end)
{
    int rc = 0;
    const uint8_t *p = s_reader_get (r, start, (size_t) (end - start), &rc);
    if (!p)
        return false;
    uint64_t piece = start;
    while (piece < end) {
        uint64_t stop = (piece / SECTOR_SIZE + 1) * SECTOR_SIZE;
        if (stop > end)
            stop = end;
        if (stop - piece >= ZERO_PIECE_MIN) {
            const uint8_t *q = p + (piece - start);
            size_t len = (size_t) (stop - piece);
            if (q [0] == 0 && memcmp (q, q + 1, len - 1) == 0)
                return true;
        }
        piece = stop;
    }
    return false;
}

//  Reads the meta file if there is one.  Returns 0 or a status with the
//  message set.
static int
s_read_meta (raft_log_t *self)
{
    char path [PATH_MAX];
    snprintf (path, sizeof path, "%s/meta", self->dir);
    self->first_index = 1;
    self->prev_term = 0;
    int fd = raft_fio_open (NULL, path, O_RDONLY, 0);
    if (fd == -ENOENT)
        return 0;
    if (fd < 0) {
        rlog_setmsg (self, "raft log: cannot open %s: %s", path, strerror (-fd));
        return fd;
    }
    uint8_t buf [META_SIZE];
    struct stat st;
    int rc = fstat (fd, &st) == 0 ? 0 : -errno;
    if (rc == 0 && st.st_size != META_SIZE)
        rc = TITAN_ECORRUPT;
    if (rc == 0)
        rc = raft_fio_pread (fd, buf, sizeof buf, 0);
    close (fd);
    if (rc == 0
    && (memcmp (buf, META_MAGIC, 8) != 0 || rlog_get32 (buf + 24) != SEG_VERSION
    ||  rlog_get32 (buf + 28) != titan_crc32c (0, buf, 28)
    ||  rlog_get64 (buf + 8) == 0))
        rc = TITAN_ECORRUPT;
    if (rc) {
        rlog_setmsg (self, "raft log: bad meta file %s at offset 0: %s",
                  path, s_status_text (rc));
        return rc;
    }
    self->first_index = rlog_get64 (buf + 8);
    self->prev_term = rlog_get64 (buf + 16);
    return 0;
}

//  --------------------------------------------------------------------------
//  Recovery

static int
s_cmp_u64 (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

//  Lists segment files by first index (sorted) and removes a stale
//  meta.tmp.  Returns 0 or a status.
static int
s_list_segments (raft_log_t *self, uint64_t **firsts_p, size_t *count_p)
{
    DIR *dir = opendir (self->dir);
    if (!dir) {
        int rc = -errno;
        rlog_setmsg (self, "raft log: cannot list %s: %s", self->dir, strerror (-rc));
        return rc;
    }
    uint64_t *firsts = NULL;
    size_t count = 0, cap = 0;
    int rc = 0;
    struct dirent *ent;
    while ((ent = readdir (dir))) {
        const char *name = ent->d_name;
        if (strcmp (name, "meta.tmp") == 0) {
            char path [PATH_MAX];
            snprintf (path, sizeof path, "%s/%s", self->dir, name);
            raft_fio_unlink (self->fio, path);
            continue;
        }
        size_t len = strlen (name);
        if (len != 24 || strcmp (name + 20, ".seg") != 0
        ||  strspn (name, "0123456789") != 20)
            continue;
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            uint64_t *grown = realloc (firsts, cap * sizeof (uint64_t));
            if (!grown) {
                rc = -ENOMEM;
                break;
            }
            firsts = grown;
        }
        firsts [count++] = strtoull (name, NULL, 10);
    }
    closedir (dir);
    if (rc) {
        free (firsts);
        rlog_setmsg (self, "raft log: out of memory listing %s", self->dir);
        return rc;
    }
    if (count > 1)
        qsort (firsts, count, sizeof (uint64_t), s_cmp_u64);
    *firsts_p = firsts;
    *count_p = count;
    return 0;
}

//  Scans one segment file, appending slots for live entries.  `is_last`
//  allows torn-tail repair.  `*expect` is the index its first record must
//  have (0 = unknown: take the header's); updated to one past its last.
static int
s_scan_segment (raft_log_t *self, uint64_t name_first, bool is_last,
                uint64_t *expect)
{
    char *path = rlog_seg_path (self, name_first);
    if (!path) {
        rlog_setmsg (self, "raft log: out of memory");
        return -ENOMEM;
    }
    int fd = raft_fio_open (self->fio, path, O_RDWR, 0);
    if (fd < 0) {
        rlog_setmsg (self, "raft log: cannot open %s: %s", path, strerror (-fd));
        free (path);
        return fd;
    }
    struct stat st;
    if (fstat (fd, &st) != 0) {
        int rc = -errno;
        rlog_setmsg (self, "raft log: cannot stat %s: %s", path, strerror (-rc));
        raft_fio_close (self->fio, fd);
        free (path);
        return rc;
    }
    s_reader_t r = { fd, (uint64_t) st.st_size, NULL, 0, 0, 0 };
    int rc = 0;
    uint64_t first = 0;
    const uint8_t *hdr = NULL;
    if (r.file_size >= SEG_HDR_SIZE) {
        hdr = s_reader_get (&r, 0, SEG_HDR_SIZE, &rc);
        if (!hdr) {
            rlog_setmsg (self, "raft log: cannot read %s: %s", path, strerror (-rc));
            goto fail;
        }
    }
    if (!hdr || !s_decode_seg_header (hdr, &first) || first != name_first) {
        if (is_last && r.file_size <= SEG_HDR_SIZE) {
            //  Crash while the segment was being created: its header was
            //  never synced, so it holds nothing that was acknowledged.
            rc = raft_fio_unlink (self->fio, path);
            if (rc == 0)
                rc = raft_fio_sync_dir (self->fio, self->dir);
            if (rc) {
                rlog_setmsg (self, "raft log: cannot remove torn segment %s: %s",
                          path, strerror (-rc));
                goto fail;
            }
            self->recovery.removed_segments++;
            self->recovery.torn_bytes += r.file_size;
            raft_fio_close (self->fio, fd);
            free (path);
            free (r.buf);
            return 0;
        }
        rlog_setmsg (self, "raft log: corrupt segment %s at offset 0: bad header",
                  path);
        rc = TITAN_ECORRUPT;
        goto fail;
    }
    if (*expect && first != *expect) {
        rlog_setmsg (self, "raft log: segment %s starts at index %" PRIu64
                  ", expected %" PRIu64 " (missing or overlapping segment)",
                  path, first, *expect);
        rc = TITAN_ECORRUPT;
        goto fail;
    }
    rc = rlog_add_segment (self, first, fd, path, SEG_HDR_SIZE);
    if (rc) {
        rlog_setmsg (self, "raft log: out of memory");
        goto fail;
    }
    rlog_segment_t *seg = &self->segs [self->nsegs - 1];
    fd = -1;            //  owned by the segment now
    path = NULL;

    uint64_t off = SEG_HDR_SIZE, index = first;
    uint64_t last_term = 0;
    const char *why = NULL;
    while (off < r.file_size) {
        uint32_t dsize;
        uint64_t term;
        bool in_bounds;
        s_rec_check_t check = s_check_record (&r, off, index, &dsize,
                                              &term, &in_bounds, &rc, &why);
        if (check == REC_IOERR) {
            rlog_setmsg (self, "raft log: cannot read %s at offset %" PRIu64 ": %s",
                      seg->path, off, strerror (-rc));
            goto done;
        }
        if (check == REC_OK && term < last_term) {
            why = "record term decreases";
            check = REC_BAD;
        }
        if (check == REC_BAD) {
            bool corrupt = !is_last;
            if (!corrupt && in_bounds) {
                //  A complete bad record followed by a good one is damage
                //  inside acknowledged data, not a torn tail -- unless part
                //  of it reads as zeros: the pages of one unsynced write can
                //  reach the disk out of order, leaving a hole (etcd's WAL
                //  makes the same call).
                uint32_t nsize;
                uint64_t nterm;
                bool nbounds;
                int nrc = 0;
                const char *nwhy;
                uint64_t next = off + REC_HDR_SIZE + dsize;
                if (next < r.file_size
                &&  s_check_record (&r, next, index + 1, &nsize, &nterm,
                                    &nbounds, &nrc, &nwhy) == REC_OK
                &&  !s_has_zero_sector (&r, off, next))
                    corrupt = true;
            }
            if (corrupt) {
                rlog_setmsg (self, "raft log: corrupt segment %s at offset %"
                          PRIu64 " (index %" PRIu64 "): %s",
                          seg->path, off, index, why);
                rc = TITAN_ECORRUPT;
                goto done;
            }
            //  Torn tail: cut it off durably before anything is appended.
            rc = raft_fio_truncate (self->fio, seg->fd, (off_t) off);
            if (rc == 0)
                rc = raft_fio_sync (self->fio, seg->fd);
            if (rc) {
                rlog_setmsg (self, "raft log: cannot truncate torn tail of %s"
                          " at offset %" PRIu64 ": %s",
                          seg->path, off, strerror (-rc));
                goto done;
            }
            self->recovery.torn_bytes += r.file_size - off;
            break;
        }
        //  Entries below first_index - 1 are compacted: checked, not kept.
        if (index == self->first_index - 1 && self->first_index > 1
        &&  term != self->prev_term) {
            rlog_setmsg (self, "raft log: segment %s at offset %" PRIu64
                      ": entry %" PRIu64 " has term %" PRIu64
                      " but the meta file says %" PRIu64,
                      seg->path, off, index, term, self->prev_term);
            rc = TITAN_ECORRUPT;
            goto done;
        }
        if (index >= self->first_index) {
            if (self->nslots == 0 && index != self->first_index) {
                rlog_setmsg (self, "raft log: %s starts at index %" PRIu64
                          ", after the first index %" PRIu64 " (gap)",
                          seg->path, index, self->first_index);
                rc = TITAN_ECORRUPT;
                goto done;
            }
            if (self->nslots == 0 && self->first_index > 1
            &&  term < self->prev_term) {
                rlog_setmsg (self, "raft log: %s entry %" PRIu64 " term %" PRIu64
                          " below the term before it", seg->path, index, term);
                rc = TITAN_ECORRUPT;
                goto done;
            }
            rc = rlog_push_slot (self, term, off, seg->id, dsize);
            if (rc) {
                rlog_setmsg (self, "raft log: out of memory");
                goto done;
            }
        }
        last_term = term;
        off += REC_HDR_SIZE + dsize;
        seg->last = index;
        index++;
    }
    seg->size = off;
    *expect = index;
done:
    free (r.buf);
    return rc;
fail:
    free (r.buf);
    raft_fio_close (self->fio, fd);
    free (path);
    return rc;
}

int
rlog_recover (raft_log_t *self)
{
    int rc = s_read_meta (self);
    if (rc)
        return rc;
    uint64_t *firsts = NULL;
    size_t count = 0;
    rc = s_list_segments (self, &firsts, &count);
    if (rc)
        return rc;
    uint64_t expect = 0;
    for (size_t i = 0; i < count && rc == 0; i++)
        rc = s_scan_segment (self, firsts [i], i + 1 == count, &expect);
    free (firsts);
    if (rc)
        return rc;

    //  Segments wholly below first_index are leftovers of a compaction
    //  interrupted by a crash.
    size_t stale = 0;
    while (stale < self->nsegs && self->segs [stale].last < self->first_index)
        stale++;
    if (self->nslots == 0 && self->nsegs > 0
    &&  self->segs [self->nsegs - 1].last + 1 < self->first_index) {
        rlog_setmsg (self, "raft log: %s ends at index %" PRIu64
                  " before the first index %" PRIu64 " (entries lost)",
                  self->dir, self->segs [self->nsegs - 1].last,
                  self->first_index);
        return TITAN_ECORRUPT;
    }
    if (stale) {
        rc = rlog_delete_head_segments (self, stale);
        if (rc == 0)
            rc = raft_fio_sync_dir (self->fio, self->dir);
        if (rc) {
            rlog_setmsg (self, "raft log: cannot delete compacted segments in %s: %s",
                      self->dir, strerror (-rc));
            return rc;
        }
        self->recovery.removed_segments += (uint32_t) stale;
    }
    self->recovery.segments = (uint32_t) self->nsegs;
    return 0;
}

