/*  raft_log: segmented, CRC-checked, fsynced Raft log (see raft_log.h for
    the on-disk format and the recovery rules; recovery itself is in
    raft_log_recover.c).

    In memory the log keeps the list of segments (each with an open file
    descriptor, its first and last index and its valid length) and one slot
    per live entry [first_index, last_index]: the entry's term, the segment
    it is in and the offset and size of its record.  term() is answered
    from memory; entries() reads records back with pread and checks their
    CRC again.  Segments carry a monotonically increasing id so that slots
    stay valid when segments are dropped from the front by compaction.

    Crash safety rests on ordering:
    - a segment's header is synced (and the directory) before records go in,
      and a segment is synced before the next one is started, so only the
      last segment can hold a torn tail;
    - truncate_suffix deletes later segments and syncs the directory before
      it cuts and syncs the segment that keeps the prefix;
    - compaction writes the meta file (atomically) before deleting
      segments, and recovery deletes any segment wholly below first_index;
    - a reset that discards everything deletes the segments (last first)
      before it writes the new meta, so a crash leaves a prefix of the old
      log with the old meta.  */
#include "raft_log_impl.h"

#include "titan/crc32c.h"
#include "titan/status.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

//  --------------------------------------------------------------------------
//  Errors

void
rlog_setmsg (raft_log_t *self, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    vsnprintf (self->errmsg, sizeof self->errmsg, fmt, args);
    va_end (args);
}

//  Marks the log failed with `rc` (an I/O failure) and returns rc.
int
rlog_fail (raft_log_t *self, int rc, const char *what, const char *path)
{
    rlog_setmsg (self, "raft log: %s %s: %s", what, path,
              rc < 0 && rc > -4096 ? strerror (-rc) : "storage failure");
    if (!self->failed)
        self->failed = rc;
    return rc;
}

//  --------------------------------------------------------------------------
//  Encoding of headers and records

static void
s_encode_seg_header (uint8_t *p, uint64_t first)
{
    memset (p, 0, SEG_HDR_SIZE);
    memcpy (p, SEG_MAGIC, 8);
    rlog_put32 (p + 8, SEG_VERSION);
    rlog_put64 (p + 16, first);
    rlog_put32 (p + 28, titan_crc32c (0, p, 28));
}

static void
s_encode_rec_header (uint8_t *p, const raft_log_entry_t *entry)
{
    rlog_put32 (p + 4, entry->size);
    rlog_put64 (p + 8, entry->index);
    rlog_put64 (p + 16, entry->term);
    p [24] = entry->type;
    p [25] = p [26] = p [27] = 0;
    uint32_t crc = titan_crc32c (0, p + 4, REC_HDR_SIZE - 4);
    if (entry->size)
        crc = titan_crc32c (crc, entry->data, entry->size);
    rlog_put32 (p, crc);
}

//  --------------------------------------------------------------------------
//  Slots and segments

int
rlog_push_slot (raft_log_t *self, uint64_t term, uint64_t offset, uint64_t seg,
             uint32_t size)
{
    if (self->nslots == self->slots_cap) {
        size_t cap = self->slots_cap ? self->slots_cap * 2 : 1024;
        rlog_slot_t *slots = realloc (self->slots, cap * sizeof (rlog_slot_t));
        if (!slots)
            return -ENOMEM;
        self->slots = slots;
        self->slots_cap = cap;
    }
    self->slots [self->nslots++] = (rlog_slot_t) { term, offset, seg, size };
    return 0;
}

static uint64_t
s_last_index (raft_log_t *self)
{
    return self->first_index + self->nslots - 1;
}

static uint64_t
s_last_term (raft_log_t *self)
{
    return self->nslots ? self->slots [self->nslots - 1].term : self->prev_term;
}

static rlog_segment_t *
s_seg_by_id (raft_log_t *self, uint64_t id)
{
    assert (id >= self->seg_base && id - self->seg_base < self->nsegs);
    return &self->segs [id - self->seg_base];
}

char *
rlog_seg_path (raft_log_t *self, uint64_t first)
{
    size_t len = strlen (self->dir) + 32;
    char *path = malloc (len);
    if (path)
        snprintf (path, len, "%s/%020" PRIu64 ".seg", self->dir, first);
    return path;
}

int
rlog_add_segment (raft_log_t *self, uint64_t first, int fd, char *path,
               uint64_t size)
{
    if (self->nsegs == self->segs_cap) {
        size_t cap = self->segs_cap ? self->segs_cap * 2 : 8;
        rlog_segment_t *segs = realloc (self->segs, cap * sizeof (rlog_segment_t));
        if (!segs)
            return -ENOMEM;
        self->segs = segs;
        self->segs_cap = cap;
    }
    self->segs [self->nsegs] = (rlog_segment_t) {
        self->seg_base + self->nsegs, first, first - 1, size, fd, path
    };
    self->nsegs++;
    return 0;
}

static void
s_close_segment (raft_log_t *self, rlog_segment_t *seg)
{
    raft_fio_close (self->fio, seg->fd);
    seg->fd = -1;
    free (seg->path);
    seg->path = NULL;
}

//  Deletes segment positions [from, nsegs) from the end backwards, so that
//  a crash leaves a prefix.  Does not sync the directory.
static int
s_delete_tail_segments (raft_log_t *self, size_t from)
{
    while (self->nsegs > from) {
        rlog_segment_t *seg = &self->segs [self->nsegs - 1];
        int rc = raft_fio_unlink (self->fio, seg->path);
        if (rc)
            return rlog_fail (self, rc, "cannot delete segment", seg->path);
        s_close_segment (self, seg);
        self->nsegs--;
    }
    return 0;
}

//  Deletes the first `count` segments (oldest first).  No directory sync.
int
rlog_delete_head_segments (raft_log_t *self, size_t count)
{
    size_t done = 0;
    int rc = 0;
    for (; done < count; done++) {
        rc = raft_fio_unlink (self->fio, self->segs [done].path);
        if (rc) {
            rlog_fail (self, rc, "cannot delete segment", self->segs [done].path);
            break;
        }
        s_close_segment (self, &self->segs [done]);
    }
    memmove (self->segs, self->segs + done,
             (self->nsegs - done) * sizeof (rlog_segment_t));
    self->nsegs -= done;
    self->seg_base += done;
    return rc;
}

//  --------------------------------------------------------------------------
//  Meta file

static int
s_write_meta (raft_log_t *self, uint64_t first, uint64_t prev_term)
{
    uint8_t buf [META_SIZE];
    memset (buf, 0, sizeof buf);
    memcpy (buf, META_MAGIC, 8);
    rlog_put64 (buf + 8, first);
    rlog_put64 (buf + 16, prev_term);
    rlog_put32 (buf + 24, SEG_VERSION);
    rlog_put32 (buf + 28, titan_crc32c (0, buf, 28));

    char tmp [PATH_MAX], path [PATH_MAX];
    snprintf (tmp, sizeof tmp, "%s/meta.tmp", self->dir);
    snprintf (path, sizeof path, "%s/meta", self->dir);
    int fd = raft_fio_open (self->fio, tmp, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return rlog_fail (self, fd, "cannot create", tmp);
    int rc = raft_fio_pwrite (self->fio, fd, buf, sizeof buf, 0);
    if (rc == 0)
        rc = raft_fio_sync (self->fio, fd);
    raft_fio_close (self->fio, fd);
    if (rc)
        return rlog_fail (self, rc, "cannot write", tmp);
    rc = raft_fio_rename (self->fio, tmp, path);
    if (rc)
        return rlog_fail (self, rc, "cannot rename to", path);
    rc = raft_fio_sync_dir (self->fio, self->dir);
    if (rc)
        return rlog_fail (self, rc, "cannot sync directory", self->dir);
    return 0;
}

//  --------------------------------------------------------------------------
//  Public API

int
raft_log_open (const char *dir, const raft_log_options_t *options,
               raft_log_t **self_p, char *errbuf, size_t errlen)
{
    assert (dir);
    assert (self_p);
    *self_p = NULL;
    raft_log_t *self = calloc (1, sizeof (raft_log_t));
    if (!self || !(self->dir = strdup (dir))) {
        free (self);
        if (errbuf)
            snprintf (errbuf, errlen, "raft log: out of memory opening %s", dir);
        return -ENOMEM;
    }
    self->segment_size = RAFT_LOG_DEFAULT_SEGMENT_SIZE;
    self->max_entry_size = RAFT_LOG_DEFAULT_MAX_ENTRY;
    if (options) {
        if (options->segment_size)
            self->segment_size = options->segment_size;
        if (options->max_entry_size)
            self->max_entry_size = options->max_entry_size;
        if (self->max_entry_size > RAFT_LOG_RECORD_LIMIT)
            self->max_entry_size = RAFT_LOG_RECORD_LIMIT;
        self->fio = options->fio;
    }
    int rc = raft_fio_mkdir (self->fio, dir);
    if (rc)
        rlog_setmsg (self, "raft log: cannot create directory %s: %s",
                  dir, strerror (-rc));
    if (rc == 0)
        rc = rlog_recover (self);
    if (rc) {
        if (errbuf)
            snprintf (errbuf, errlen, "%s", self->errmsg);
        raft_log_destroy (&self);
        return rc;
    }
    *self_p = self;
    return 0;
}

void
raft_log_destroy (raft_log_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        raft_log_t *self = *self_p;
        for (size_t i = 0; i < self->nsegs; i++)
            s_close_segment (self, &self->segs [i]);
        free (self->segs);
        free (self->slots);
        free (self->wbuf);
        free (self->dir);
        free (self);
        *self_p = NULL;
    }
}

uint64_t
raft_log_first_index (raft_log_t *self)
{
    assert (self);
    return self->first_index;
}

uint64_t
raft_log_last_index (raft_log_t *self)
{
    assert (self);
    return s_last_index (self);
}

uint64_t
raft_log_last_term (raft_log_t *self)
{
    assert (self);
    return s_last_term (self);
}

int
raft_log_term (raft_log_t *self, uint64_t index, uint64_t *term)
{
    assert (self);
    assert (term);
    if (self->failed)
        return self->failed;
    if (index + 1 < self->first_index)
        return -ERANGE;
    if (index > s_last_index (self))
        return TITAN_ENOTFOUND;
    *term = index + 1 == self->first_index
          ? self->prev_term : self->slots [index - self->first_index].term;
    return 0;
}

const char *
raft_log_errmsg (raft_log_t *self)
{
    assert (self);
    return self->errmsg;
}

void
raft_log_recovery_info (raft_log_t *self, raft_log_recovery_t *info)
{
    assert (self);
    assert (info);
    *info = self->recovery;
}

int
raft_log_entries (raft_log_t *self, uint64_t lo, uint64_t hi,
                  size_t max_bytes, raft_log_entry_t **entries_p,
                  size_t *count_p)
{
    assert (self);
    assert (entries_p && count_p);
    *entries_p = NULL;
    *count_p = 0;
    if (self->failed)
        return self->failed;
    if (lo >= hi)
        return -EINVAL;
    if (lo < self->first_index)
        return -ERANGE;
    if (hi > s_last_index (self) + 1)
        return TITAN_ENOTFOUND;

    //  How many entries fit, and the room their data needs.
    size_t count = 0, data_bytes = 0;
    for (uint64_t i = lo; i < hi; i++) {
        size_t size = self->slots [i - self->first_index].size;
        if (count > 0 && data_bytes + size > max_bytes)
            break;
        data_bytes += size;
        count++;
    }
    raft_log_entry_t *entries = malloc (count * sizeof (raft_log_entry_t)
                                        + data_bytes + 1);
    uint8_t *span = NULL;
    if (!entries)
        return -ENOMEM;
    uint8_t *data = (uint8_t *) (entries + count);

    //  Records of one segment are contiguous: read each run in one pread.
    int rc = 0;
    size_t done = 0;
    while (done < count) {
        const rlog_slot_t *first = &self->slots [lo + done - self->first_index];
        size_t run = 1;
        while (done + run < count
           &&  self->slots [lo + done + run - self->first_index].seg == first->seg)
            run++;
        const rlog_slot_t *last = first + run - 1;
        rlog_segment_t *seg = s_seg_by_id (self, first->seg);
        size_t span_len = (size_t) (last->offset + REC_HDR_SIZE + last->size
                                    - first->offset);
        uint8_t *grown = realloc (span, span_len);
        if (!grown) {
            rc = -ENOMEM;
            break;
        }
        span = grown;
        rc = raft_fio_pread (seg->fd, span, span_len, (off_t) first->offset);
        if (rc) {
            rlog_setmsg (self, "raft log: cannot read %s at offset %" PRIu64 ": %s",
                      seg->path, first->offset, strerror (-rc));
            break;
        }
        for (size_t k = 0; k < run; k++) {
            const rlog_slot_t *slot = first + k;
            const uint8_t *rec = span + (slot->offset - first->offset);
            uint64_t index = lo + done + k;
            if (rlog_get32 (rec + 4) != slot->size || rlog_get64 (rec + 8) != index
            ||  rlog_get64 (rec + 16) != slot->term
            ||  titan_crc32c (0, rec + 4, REC_HDR_SIZE - 4 + slot->size)
                != rlog_get32 (rec)) {
                rlog_setmsg (self, "raft log: corrupt record in %s at offset %"
                          PRIu64 " (index %" PRIu64 ") on read-back",
                          seg->path, slot->offset, index);
                rc = TITAN_ECORRUPT;
                break;
            }
            memcpy (data, rec + REC_HDR_SIZE, slot->size);
            entries [done + k] = (raft_log_entry_t) {
                index, slot->term, rec [24], data, slot->size
            };
            data += slot->size;
        }
        if (rc)
            break;
        done += run;
    }
    free (span);
    if (rc) {
        free (entries);
        return rc;
    }
    *entries_p = entries;
    *count_p = count;
    return 0;
}

//  Writes the encoded records in wbuf to the active segment.
static int
s_flush_wbuf (raft_log_t *self)
{
    if (self->wbuf_len == 0)
        return 0;
    rlog_segment_t *seg = &self->segs [self->nsegs - 1];
    int rc = raft_fio_pwrite (self->fio, seg->fd, self->wbuf, self->wbuf_len,
                              (off_t) seg->size);
    if (rc)
        return rlog_fail (self, rc, "cannot write", seg->path);
    seg->size += self->wbuf_len;
    self->wbuf_len = 0;
    return 0;
}

//  Starts a new segment whose first record will be `first`; the current
//  one (if any) must be flushed and synced already.
static int
s_new_segment (raft_log_t *self, uint64_t first)
{
    char *path = rlog_seg_path (self, first);
    if (!path)
        return rlog_fail (self, -ENOMEM, "out of memory for", self->dir);
    int fd = raft_fio_open (self->fio, path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        rlog_fail (self, fd, "cannot create segment", path);
        free (path);
        return fd;
    }
    uint8_t hdr [SEG_HDR_SIZE];
    s_encode_seg_header (hdr, first);
    int rc = raft_fio_pwrite (self->fio, fd, hdr, sizeof hdr, 0);
    if (rc == 0)
        rc = raft_fio_sync (self->fio, fd);
    if (rc == 0)
        rc = raft_fio_sync_dir (self->fio, self->dir);
    if (rc == 0)
        rc = rlog_add_segment (self, first, fd, path, SEG_HDR_SIZE);
    if (rc) {
        rlog_fail (self, rc, "cannot create segment", path);
        raft_fio_close (self->fio, fd);
        free (path);
        return rc;
    }
    return 0;
}

int
raft_log_truncate_suffix (raft_log_t *self, uint64_t from_index)
{
    assert (self);
    if (self->failed)
        return self->failed;
    uint64_t last = s_last_index (self);
    if (from_index == last + 1)
        return 0;
    if (from_index < self->first_index || from_index > last + 1) {
        rlog_setmsg (self, "raft log: truncate from %" PRIu64
                  " outside [%" PRIu64 ", %" PRIu64 "]",
                  from_index, self->first_index, last + 1);
        return -EINVAL;
    }
    const rlog_slot_t *slot = &self->slots [from_index - self->first_index];
    size_t pos = (size_t) (slot->seg - self->seg_base);
    uint64_t offset = slot->offset;
    if (pos + 1 < self->nsegs) {
        int rc = s_delete_tail_segments (self, pos + 1);
        if (rc == 0) {
            rc = raft_fio_sync_dir (self->fio, self->dir);
            if (rc)
                return rlog_fail (self, rc, "cannot sync directory", self->dir);
        }
        if (rc)
            return rc;
    }
    rlog_segment_t *seg = &self->segs [pos];
    int rc = raft_fio_truncate (self->fio, seg->fd, (off_t) offset);
    if (rc == 0)
        rc = raft_fio_sync (self->fio, seg->fd);
    if (rc)
        return rlog_fail (self, rc, "cannot truncate", seg->path);
    seg->size = offset;
    seg->last = from_index - 1;
    self->nslots = (size_t) (from_index - self->first_index);
    return 0;
}

int
raft_log_write (raft_log_t *self, const raft_log_entry_t *entries,
                size_t count)
{
    assert (self);
    assert (entries || count == 0);
    if (self->failed)
        return self->failed;
    if (count == 0)
        return 0;
    uint64_t start = entries [0].index;
    if (start < self->first_index || start > s_last_index (self) + 1) {
        rlog_setmsg (self, "raft log: append at %" PRIu64 " outside [%" PRIu64
                  ", %" PRIu64 "]", start, self->first_index,
                  s_last_index (self) + 1);
        return -EINVAL;
    }
    uint64_t prev_term = start == self->first_index
                       ? self->prev_term
                       : self->slots [start - 1 - self->first_index].term;
    for (size_t i = 0; i < count; i++) {
        if (entries [i].index != start + i || entries [i].term < prev_term
        ||  (entries [i].size && !entries [i].data)) {
            rlog_setmsg (self, "raft log: bad batch at entry %" PRIu64
                      " (indexes must be consecutive, terms must not decrease)",
                      entries [i].index);
            return -EINVAL;
        }
        if (entries [i].size > self->max_entry_size) {
            rlog_setmsg (self, "raft log: entry %" PRIu64 " of %" PRIu32
                      " bytes is above the limit of %" PRIu32,
                      entries [i].index, entries [i].size, self->max_entry_size);
            return TITAN_ETOOBIG;
        }
        prev_term = entries [i].term;
    }
    //  Entries the log already holds with the same term are the same
    //  entries (Raft's log matching property): skip them, so that only a
    //  real conflict truncates -- never entries that may be committed.
    while (count > 0 && entries [0].index <= s_last_index (self)
       &&  self->slots [entries [0].index - self->first_index].term
           == entries [0].term) {
        entries++;
        count--;
    }
    if (count == 0)
        return 0;
    if (entries [0].index <= s_last_index (self)) {
        int rc = raft_log_truncate_suffix (self, entries [0].index);
        if (rc)
            return rc;
    }

    int rc = 0;
    for (size_t i = 0; i < count && rc == 0; i++) {
        const raft_log_entry_t *entry = &entries [i];
        size_t rec_len = REC_HDR_SIZE + entry->size;
        rlog_segment_t *seg = self->nsegs ? &self->segs [self->nsegs - 1] : NULL;
        if (!seg || (seg->size + self->wbuf_len > SEG_HDR_SIZE
                     && seg->size + self->wbuf_len + rec_len > self->segment_size)) {
            if (seg) {
                rc = s_flush_wbuf (self);
                if (rc == 0 && (rc = raft_fio_sync (self->fio, seg->fd)))
                    rlog_fail (self, rc, "cannot sync", seg->path);
                if (rc)
                    break;
            }
            rc = s_new_segment (self, entry->index);
            if (rc)
                break;
            seg = &self->segs [self->nsegs - 1];
        }
        if (self->wbuf_len + rec_len > self->wbuf_cap) {
            size_t cap = self->wbuf_cap ? self->wbuf_cap : 64 * 1024;
            while (cap < self->wbuf_len + rec_len)
                cap *= 2;
            uint8_t *buf = realloc (self->wbuf, cap);
            if (!buf) {
                rc = rlog_fail (self, -ENOMEM, "out of memory appending to", seg->path);
                break;
            }
            self->wbuf = buf;
            self->wbuf_cap = cap;
        }
        uint8_t *rec = self->wbuf + self->wbuf_len;
        s_encode_rec_header (rec, entry);
        if (entry->size)
            memcpy (rec + REC_HDR_SIZE, entry->data, entry->size);
        rc = rlog_push_slot (self, entry->term, seg->size + self->wbuf_len, seg->id,
                          entry->size);
        if (rc) {
            rlog_fail (self, rc, "out of memory appending to", seg->path);
            break;
        }
        self->wbuf_len += rec_len;
        seg->last = entry->index;
    }
    if (rc == 0)
        rc = s_flush_wbuf (self);
    if (rc == 0) {
        self->unsynced = true;
        self->unsynced_seg = self->segs [self->nsegs - 1].id;
    }
    //  Large batches should not pin a large buffer.
    if (self->wbuf_cap > 1024 * 1024) {
        free (self->wbuf);
        self->wbuf = NULL;
        self->wbuf_cap = 0;
    }
    self->wbuf_len = 0;
    return rc;
}

int
raft_log_sync (raft_log_t *self)
{
    assert (self);
    if (self->failed)
        return self->failed;
    if (!self->unsynced)
        return 0;
    self->unsynced = false;
    //  The written segment may be gone since (truncated away, compacted or
    //  reset: each of those made what stays durable itself).
    if (self->unsynced_seg < self->seg_base
    ||  self->unsynced_seg - self->seg_base >= self->nsegs)
        return 0;
    rlog_segment_t *seg = s_seg_by_id (self, self->unsynced_seg);
    int rc = raft_fio_sync (self->fio, seg->fd);
    if (rc)
        return rlog_fail (self, rc, "cannot sync", seg->path);
    return 0;
}

bool
raft_log_unsynced (raft_log_t *self)
{
    assert (self);
    return self->unsynced;
}

int
raft_log_append (raft_log_t *self, const raft_log_entry_t *entries,
                 size_t count)
{
    int rc = raft_log_write (self, entries, count);
    return rc ? rc : raft_log_sync (self);
}

int
raft_log_compact_prefix (raft_log_t *self, uint64_t up_to_index)
{
    assert (self);
    if (self->failed)
        return self->failed;
    if (up_to_index < self->first_index)
        return 0;
    if (up_to_index > s_last_index (self)) {
        rlog_setmsg (self, "raft log: compact to %" PRIu64 " beyond the last index %"
                  PRIu64, up_to_index, s_last_index (self));
        return -EINVAL;
    }
    uint64_t term = self->slots [up_to_index - self->first_index].term;
    int rc = s_write_meta (self, up_to_index + 1, term);
    if (rc)
        return rc;
    size_t drop = (size_t) (up_to_index + 1 - self->first_index);
    memmove (self->slots, self->slots + drop,
             (self->nslots - drop) * sizeof (rlog_slot_t));
    self->nslots -= drop;
    self->first_index = up_to_index + 1;
    self->prev_term = term;

    size_t stale = 0;
    while (stale < self->nsegs && self->segs [stale].last <= up_to_index)
        stale++;
    if (stale) {
        rc = rlog_delete_head_segments (self, stale);
        if (rc == 0 && (rc = raft_fio_sync_dir (self->fio, self->dir)))
            rlog_fail (self, rc, "cannot sync directory", self->dir);
    }
    return rc;
}

int
raft_log_reset (raft_log_t *self, uint64_t index, uint64_t term)
{
    assert (self);
    if (self->failed)
        return self->failed;
    if (index + 1 < self->first_index) {
        rlog_setmsg (self, "raft log: snapshot at %" PRIu64 " is older than the"
                  " log's start %" PRIu64, index, self->first_index);
        return -EINVAL;
    }
    uint64_t have;
    if (raft_log_term (self, index, &have) == 0 && have == term)
        return raft_log_compact_prefix (self, index);

    //  Discard everything: segments first (newest first), then the meta.
    int rc = s_delete_tail_segments (self, 0);
    if (rc == 0 && (rc = raft_fio_sync_dir (self->fio, self->dir)))
        rlog_fail (self, rc, "cannot sync directory", self->dir);
    if (rc)
        return rc;
    self->nslots = 0;
    rc = s_write_meta (self, index + 1, term);
    if (rc)
        return rc;
    self->first_index = index + 1;
    self->prev_term = term;
    return 0;
}
