/*  grpc_gateway hint log: durable, CRC-checked, append-only files of
    deferred puts, one series of files per shard (see gw_hints.h).

    In memory each shard keeps its files (number, last hint sequence),
    the queue of its pending hints in sequence order, the next sequence,
    the highest delivered sequence and the file open for appending.  Every
    change that is acknowledged to someone is written with one write and
    made durable with fdatasync before the call returns; a new file or a
    deleted one is followed by an fsync of the directory.  On a failed
    write or fdatasync the shard stops taking hints (an fsync is never
    retried: its failure may have dropped the dirty pages) until the node
    restarts and re-reads what is really on disk.
*/
#include "gw_hints.h"
#include "titan/crc32c.h"
#include "titan/le.h"
#include "titan/log.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define S_REC_HEADER   1
#define S_REC_HINT     2
#define S_REC_DELIVERED 3
#define S_VERSION      1
#define S_FRAME        8u                    /* length + CRC */
#define S_HEADER_LEN   (1u + 1u + 4u + 8u + 8u)
#define S_HINT_FIXED   (1u + 8u + 8u)
#define S_MARK_LEN     (1u + 8u)

typedef struct {
    uint64_t number;             /* N of s<SHARD>-<N>.log */
    uint64_t last_seq;           /* highest hint sequence in it, 0: none */
} s_file_t;

typedef struct {
    gw_hint_t hint;              /* hint.request points into buf */
    uint8_t *buf;
    uint64_t record_bytes;
} s_item_t;

typedef struct {
    uint32_t id;
    s_file_t *files;             /* in order; the last is the active one */
    size_t n_files, files_cap;
    s_item_t *queue;             /* pending hints: [head, head + len) */
    size_t q_head, q_len, q_cap;
    uint64_t next_seq;           /* the sequence of the next hint */
    uint64_t acked;              /* every hint up to it is delivered */
    int fd;                      /* the active file, -1: not open */
    uint64_t active_size;
    uint64_t pending_bytes;
    uint64_t delivered;
    char blocked [320];          /* why delivery or appends stopped */
} s_shard_t;

struct gw_hints {
    char *dir;
    uint32_t shards;
    s_shard_t *shard;
    uint64_t max_bytes;
    uint64_t pending_bytes;
    size_t max_request;
    uint64_t base_id;            /* 0 until the directory exists */
};

/*  ----------------------------------------------------------- encoding  */

/*  Frames `payload` (its first byte already the record type) in `rec`,
    which has S_FRAME bytes of room before it.  */
static void
s_frame (uint8_t *rec, size_t payload_len)
{
    titan_le_put32 (rec, (uint32_t) payload_len);
    titan_le_put32 (rec + 4, titan_crc32c (0, rec + S_FRAME, payload_len));
}

/*  ---------------------------------------------------------- file I/O  */

static void
s_file_path (const gw_hints_t *self, uint32_t shard, uint64_t number,
             char *path, size_t size)
{
    snprintf (path, size, "%s/s%" PRIu32 "-%" PRIu64 ".log", self->dir, shard,
              number);
}

static int
s_fsync_dir (const char *dir)
{
    int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync (fd) ? -errno : 0;
    close (fd);
    return rc;
}

/*  Writes all of `data` at the end of `fd`, then fdatasync.  On failure
    cuts the file back to `size_before` (best effort) and returns -errno.  */
static int
s_write_durable (int fd, const uint8_t *data, size_t size, uint64_t size_before)
{
    size_t done = 0;
    while (done < size) {
        ssize_t n = pwrite (fd, data + done, size - done,
                            (off_t) (size_before + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int rc = n < 0 ? -errno : -EIO;
            if (ftruncate (fd, (off_t) size_before) != 0) { /* best effort */ }
            return rc;
        }
        done += (size_t) n;
    }
    if (fdatasync (fd) != 0) {
        int rc = -errno;
        if (ftruncate (fd, (off_t) size_before) != 0) { /* best effort */ }
        return rc;
    }
    return 0;
}

/*  Stops a shard's appends after an I/O failure (`what`: "create",
    "write", "append to"), with the reason.  */
static void
s_block (s_shard_t *sh, const char *what, const char *path, int rc)
{
    snprintf (sh->blocked, sizeof sh->blocked, "cannot %s %.200s: %.80s", what,
              path, strerror (-rc));
    titan_log_error ("grpc_gateway: hint log of shard %" PRIu32 ": %s",
                     sh->id, sh->blocked);
    if (sh->fd >= 0)
        close (sh->fd);
    sh->fd = -1;
}

/*  Creates the directory and the id file when they do not exist yet.  */
static int
s_ensure_dir (gw_hints_t *self, char *error, size_t error_size)
{
    if (self->base_id)
        return 0;
    if (mkdir (self->dir, 0755) != 0 && errno != EEXIST) {
        int rc = -errno;
        snprintf (error, error_size, "cannot create %s: %s", self->dir,
                  strerror (errno));
        return rc;
    }
    uint64_t id = 0;
    FILE *urandom = fopen ("/dev/urandom", "rb");
    if (urandom) {
        if (fread (&id, sizeof id, 1, urandom) != 1)
            id = 0;
        fclose (urandom);
    }
    if (!id)
        id = ((uint64_t) getpid () << 32) ^ (uint64_t) time (NULL);
    if (!id)
        id = 1;
    uint8_t rec [S_FRAME + 8];
    titan_le_put64 (rec + S_FRAME, id);
    s_frame (rec, 8);
    char path [1024], tmp [1040];
    snprintf (path, sizeof path, "%s/id", self->dir);
    snprintf (tmp, sizeof tmp, "%s.tmp", path);
    int fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int rc = fd < 0 ? -errno : s_write_durable (fd, rec, sizeof rec, 0);
    if (fd >= 0)
        close (fd);
    if (!rc && rename (tmp, path) != 0)
        rc = -errno;
    if (!rc)
        rc = s_fsync_dir (self->dir);
    if (rc) {
        snprintf (error, error_size, "cannot write %s: %s", path, strerror (-rc));
        return rc;
    }
    self->base_id = id;
    return 0;
}

/*  Reads the id file; 0 when absent, -EBADMSG when damaged.  */
static int
s_read_id (gw_hints_t *self, char *error, size_t error_size)
{
    char path [1024];
    snprintf (path, sizeof path, "%s/id", self->dir);
    FILE *f = fopen (path, "rb");
    if (!f)
        return errno == ENOENT ? 0 : -errno;
    uint8_t rec [S_FRAME + 9];
    size_t n = fread (rec, 1, sizeof rec, f);
    fclose (f);
    if (n != S_FRAME + 8 || titan_le_get32 (rec) != 8
    ||  titan_le_get32 (rec + 4) != titan_crc32c (0, rec + S_FRAME, 8)
    ||  titan_le_get64 (rec + S_FRAME) == 0) {
        snprintf (error, error_size, "%s is damaged (length or CRC-32C "
                  "mismatch); move the hint directory away to start afresh",
                  path);
        return -EBADMSG;
    }
    self->base_id = titan_le_get64 (rec + S_FRAME);
    return 0;
}

/*  Creates the shard's next file, holding its header, and makes it the
    active one.  */
static int
s_new_file (gw_hints_t *self, s_shard_t *sh)
{
    if (sh->n_files == sh->files_cap) {
        size_t cap = sh->files_cap ? sh->files_cap * 2 : 4;
        s_file_t *files = realloc (sh->files, cap * sizeof *files);
        if (!files)
            return -ENOMEM;
        sh->files = files;
        sh->files_cap = cap;
    }
    uint64_t number = sh->n_files ? sh->files [sh->n_files - 1].number + 1 : 1;
    char path [1024];
    s_file_path (self, sh->id, number, path, sizeof path);
    int fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        int rc = -errno;
        s_block (sh, "create", path, rc);
        return rc;
    }
    uint8_t rec [S_FRAME + S_HEADER_LEN];
    uint8_t *p = rec + S_FRAME;
    p [0] = S_REC_HEADER;
    p [1] = S_VERSION;
    titan_le_put32 (p + 2, sh->id);
    titan_le_put64 (p + 6, sh->next_seq);
    titan_le_put64 (p + 14, sh->acked);
    s_frame (rec, S_HEADER_LEN);
    int rc = s_write_durable (fd, rec, sizeof rec, 0);
    if (!rc)
        rc = s_fsync_dir (self->dir);
    if (rc) {
        close (fd);
        unlink (path);
        s_block (sh, "write", path, rc);
        return rc;
    }
    if (sh->fd >= 0)
        close (sh->fd);
    sh->fd = fd;
    sh->active_size = sizeof rec;
    sh->files [sh->n_files].number = number;
    sh->files [sh->n_files].last_seq = 0;
    sh->n_files++;
    return 0;
}

/*  Deletes the shard's files before the active one whose hints are all
    delivered (in order: a file is kept while an older one is).  */
static void
s_delete_delivered (gw_hints_t *self, s_shard_t *sh)
{
    size_t gone = 0;
    while (gone + 1 < sh->n_files && sh->files [gone].last_seq <= sh->acked) {
        char path [1024];
        s_file_path (self, sh->id, sh->files [gone].number, path, sizeof path);
        if (unlink (path) != 0 && errno != ENOENT) {
            titan_log_warning ("grpc_gateway: cannot delete delivered hint file "
                               "%s: %s", path, strerror (errno));
            break;
        }
        gone++;
    }
    if (!gone)
        return;
    memmove (sh->files, sh->files + gone, (sh->n_files - gone) * sizeof *sh->files);
    sh->n_files -= gone;
    s_fsync_dir (self->dir);
}

/*  ------------------------------------------------------------- queue  */

static int
s_queue_push (s_shard_t *sh, s_item_t *item)
{
    if (sh->q_head + sh->q_len == sh->q_cap) {
        if (sh->q_head) {
            memmove (sh->queue, sh->queue + sh->q_head, sh->q_len * sizeof *sh->queue);
            sh->q_head = 0;
        }
        if (sh->q_len == sh->q_cap) {
            size_t cap = sh->q_cap ? sh->q_cap * 2 : 16;
            s_item_t *queue = realloc (sh->queue, cap * sizeof *queue);
            if (!queue)
                return -ENOMEM;
            sh->queue = queue;
            sh->q_cap = cap;
        }
    }
    sh->queue [sh->q_head + sh->q_len++] = *item;
    return 0;
}

/*  Drops the queued hints up to sequence `acked`.  */
static void
s_queue_drop (gw_hints_t *self, s_shard_t *sh, uint64_t acked)
{
    while (sh->q_len && sh->queue [sh->q_head].hint.sequence <= acked) {
        s_item_t *it = &sh->queue [sh->q_head];
        sh->pending_bytes -= it->record_bytes;
        self->pending_bytes -= it->record_bytes;
        free (it->buf);
        sh->q_head++;
        sh->q_len--;
    }
    if (!sh->q_len)
        sh->q_head = 0;
}

/*  ------------------------------------------------------------ loading  */

/*  Reads a whole file; NULL with errno set on failure.  */
static uint8_t *
s_slurp (const char *path, size_t *size_p)
{
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat (fd, &st) != 0) {
        close (fd);
        return NULL;
    }
    size_t size = (size_t) st.st_size;
    uint8_t *data = malloc (size ? size : 1);
    size_t done = 0;
    while (data && done < size) {
        ssize_t n = read (fd, data + done, size - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            free (data);
            data = NULL;
            errno = n < 0 ? errno : EIO;
            break;
        }
        done += (size_t) n;
    }
    close (fd);
    *size_p = size;
    return data;
}

/*  Loads one file of a shard.  Returns 0 (the shard may have become
    blocked: a damaged record), or -errno on an I/O error.  */
static int
s_load_file (gw_hints_t *self, s_shard_t *sh, size_t index, bool last)
{
    char path [1024];
    s_file_path (self, sh->id, sh->files [index].number, path, sizeof path);
    size_t size = 0;
    uint8_t *data = s_slurp (path, &size);
    if (!data)
        return -errno;
    size_t max_payload = S_HINT_FIXED + self->max_request;
    size_t off = 0;
    const char *damage = NULL;
    while (off < size && !damage) {
        if (size - off < S_FRAME)
            break;                               /* torn */
        uint32_t len = titan_le_get32 (data + off);
        if (len == 0 || len > max_payload) {
            damage = "record length out of range";
            break;
        }
        if (size - off - S_FRAME < len)
            break;                               /* torn */
        const uint8_t *p = data + off + S_FRAME;
        if (titan_le_get32 (data + off + 4) != titan_crc32c (0, p, len)) {
            damage = "CRC-32C mismatch";
            break;
        }
        if (off == 0 && p [0] != S_REC_HEADER) {
            damage = "the file does not start with a header";
            break;
        }
        switch (p [0]) {
            case S_REC_HEADER:
                if (off != 0 || len != S_HEADER_LEN || p [1] != S_VERSION
                ||  titan_le_get32 (p + 2) != sh->id) {
                    damage = "bad header (version, shard or position)";
                    break;
                }
                if (titan_le_get64 (p + 6) > sh->next_seq)
                    sh->next_seq = titan_le_get64 (p + 6);
                if (titan_le_get64 (p + 14) > sh->acked)
                    sh->acked = titan_le_get64 (p + 14);
                break;
            case S_REC_HINT: {
                uint64_t seq = titan_le_get64 (p + 1);
                if (len < S_HINT_FIXED || seq < sh->next_seq || seq == 0) {
                    damage = "bad hint record (size or sequence order)";
                    break;
                }
                sh->next_seq = seq + 1;
                sh->files [index].last_seq = seq;
                if (seq <= sh->acked)
                    break;
                s_item_t item = { .record_bytes = S_FRAME + len };
                item.buf = malloc (len - S_HINT_FIXED + 1);
                if (!item.buf) {
                    free (data);
                    return -ENOMEM;
                }
                memcpy (item.buf, p + S_HINT_FIXED, len - S_HINT_FIXED);
                item.hint.shard = sh->id;
                item.hint.sequence = seq;
                item.hint.accepted_ms = (int64_t) titan_le_get64 (p + 9);
                item.hint.request = item.buf;
                item.hint.request_size = len - S_HINT_FIXED;
                if (s_queue_push (sh, &item)) {
                    free (item.buf);
                    free (data);
                    return -ENOMEM;
                }
                sh->pending_bytes += item.record_bytes;
                self->pending_bytes += item.record_bytes;
                break;
            }
            case S_REC_DELIVERED:
                if (len != S_MARK_LEN) {
                    damage = "bad delivery mark";
                    break;
                }
                if (titan_le_get64 (p + 1) > sh->acked)
                    sh->acked = titan_le_get64 (p + 1);
                s_queue_drop (self, sh, sh->acked);
                break;
            default:
                damage = "unknown record type";
                break;
        }
        if (!damage)
            off += S_FRAME + len;
    }
    if (!damage && off < size && !last)
        damage = "truncated record in a sealed file";
    if (damage && last) {
        /* zeros to the end: the file was extended but the append's bytes
           never reached the disk (a torn tail too) */
        size_t z = off;
        while (z < size && data [z] == 0)
            z++;
        if (z == size)
            damage = NULL;
    }
    free (data);
    if (!damage && off < size) {
        /* a torn tail: the append crashed before its fdatasync returned,
           so the record was never acknowledged */
        int fd = open (path, O_WRONLY | O_CLOEXEC);
        int rc = fd < 0 || ftruncate (fd, (off_t) off) != 0
              || fdatasync (fd) != 0 ? -errno : 0;
        if (fd >= 0)
            close (fd);
        if (rc)
            return rc;
        titan_log_warning ("grpc_gateway: hint file %s: cut a torn tail of "
                           "%zu bytes at offset %zu (an append that was "
                           "never acknowledged)", path, size - off, off);
    }
    if (damage) {
        snprintf (sh->blocked, sizeof sh->blocked, "%.200s: damaged record at "
                  "offset %zu (%s)", path, off, damage);
        titan_log_error ("grpc_gateway: hint file %s: damaged record at offset "
                         "%zu (%s): delivery of shard %" PRIu32 " stops "
                         "there and its deferred puts are refused; move the "
                         "file away (the hints from that offset on are lost) "
                         "and restart the node", path, off, damage, sh->id);
        return 0;
    }
    if (last)
        sh->active_size = off;
    return 0;
}

static int
s_file_cmp (const void *a, const void *b)
{
    const s_file_t *x = a, *y = b;
    return x->number < y->number ? -1 : x->number > y->number;
}

/*  Finds the shards' files in the directory.  */
static int
s_scan (gw_hints_t *self, char *error, size_t error_size)
{
    DIR *d = opendir (self->dir);
    if (!d) {
        if (errno == ENOENT)
            return 0;
        snprintf (error, error_size, "cannot read %s: %s", self->dir,
                  strerror (errno));
        return -errno;
    }
    struct dirent *e;
    while ((e = readdir (d))) {
        uint32_t shard;
        uint64_t number;
        char tail [8];
        if (sscanf (e->d_name, "s%" SCNu32 "-%" SCNu64 "%7s", &shard, &number,
                    tail) != 3 || strcmp (tail, ".log") != 0 || number == 0)
            continue;
        if (shard >= self->shards) {
            titan_log_warning ("grpc_gateway: hint file %s/%s is for shard %"
                               PRIu32 ", which this store does not have (%"
                               PRIu32 " shards); ignored", self->dir,
                               e->d_name, shard, self->shards);
            continue;
        }
        s_shard_t *sh = &self->shard [shard];
        if (sh->n_files == sh->files_cap) {
            size_t cap = sh->files_cap ? sh->files_cap * 2 : 4;
            s_file_t *files = realloc (sh->files, cap * sizeof *files);
            if (!files) {
                closedir (d);
                snprintf (error, error_size, "out of memory listing %s", self->dir);
                return -ENOMEM;
            }
            sh->files = files;
            sh->files_cap = cap;
        }
        sh->files [sh->n_files].number = number;
        sh->files [sh->n_files].last_seq = 0;
        sh->n_files++;
    }
    closedir (d);
    return 0;
}

/*  Loads a shard's files and opens its last one for appending.  */
static int
s_load_shard (gw_hints_t *self, s_shard_t *sh, char *error, size_t error_size)
{
    qsort (sh->files, sh->n_files, sizeof *sh->files, s_file_cmp);
    for (size_t i = 0; i < sh->n_files && !*sh->blocked; i++) {
        int rc = s_load_file (self, sh, i, i + 1 == sh->n_files);
        if (rc) {
            char path [1024];
            s_file_path (self, sh->id, sh->files [i].number, path, sizeof path);
            snprintf (error, error_size, "cannot read %s: %s", path,
                      strerror (-rc));
            return rc;
        }
    }
    if (*sh->blocked || !sh->n_files)
        return 0;
    char path [1024];
    s_file_path (self, sh->id, sh->files [sh->n_files - 1].number, path,
                 sizeof path);
    if (sh->active_size == 0) {
        /* created, header never written: start it again */
        unlink (path);
        sh->n_files--;
        return 0;
    }
    sh->fd = open (path, O_WRONLY | O_CLOEXEC);
    if (sh->fd < 0) {
        snprintf (error, error_size, "cannot open %s: %s", path, strerror (errno));
        return -errno;
    }
    if (sh->q_len)
        titan_log_info ("grpc_gateway: shard %" PRIu32 ": %zu pending hints "
                        "reloaded (sequences %" PRIu64 " to %" PRIu64 ")",
                        sh->id, sh->q_len, sh->queue [sh->q_head].hint.sequence,
                        sh->next_seq - 1);
    return 0;
}

/*  -------------------------------------------------------------- API  */

gw_hints_t *
gw_hints_open (const char *dir, uint32_t shards, uint64_t max_bytes,
               size_t max_request, char *error, size_t error_size)
{
    assert (dir && shards > 0);
    gw_hints_t *self = calloc (1, sizeof *self);
    if (self) {
        self->dir = strdup (dir);
        self->shard = calloc (shards, sizeof *self->shard);
    }
    if (!self || !self->dir || !self->shard) {
        snprintf (error, error_size, "out of memory opening the hint log");
        gw_hints_destroy (&self);
        return NULL;
    }
    self->shards = shards;
    self->max_bytes = max_bytes;
    self->max_request = max_request;
    for (uint32_t i = 0; i < shards; i++) {
        self->shard [i].id = i;
        self->shard [i].fd = -1;
        self->shard [i].next_seq = 1;
    }
    int rc = s_read_id (self, error, error_size);
    if (!rc)
        rc = s_scan (self, error, error_size);
    for (uint32_t i = 0; !rc && i < shards; i++) {
        s_shard_t *sh = &self->shard [i];
        if (sh->n_files && !self->base_id) {
            snprintf (error, error_size, "%s/id is missing but hint files "
                      "exist; move the hint directory away to start afresh",
                      dir);
            rc = -EBADMSG;
        }
        else if (sh->n_files)
            rc = s_load_shard (self, sh, error, error_size);
    }
    if (rc) {
        gw_hints_destroy (&self);
        return NULL;
    }
    return self;
}

void
gw_hints_destroy (gw_hints_t **self_p)
{
    gw_hints_t *self = *self_p;
    if (!self)
        return;
    for (uint32_t i = 0; self->shard && i < self->shards; i++) {
        s_shard_t *sh = &self->shard [i];
        s_queue_drop (self, sh, UINT64_MAX);
        free (sh->queue);
        free (sh->files);
        if (sh->fd >= 0)
            close (sh->fd);
    }
    free (self->shard);
    free (self->dir);
    free (self);
    *self_p = NULL;
}

int
gw_hints_append (gw_hints_t *self, uint32_t shard, const uint8_t *request,
                 size_t size, int64_t now_ms, uint64_t *sequence_p,
                 char *error, size_t error_size)
{
    if (shard >= self->shards || size > self->max_request) {
        snprintf (error, error_size, "hint for shard %" PRIu32 " of %zu bytes "
                  "refused (%" PRIu32 " shards, at most %zu bytes)", shard,
                  size, self->shards, self->max_request);
        return -EINVAL;
    }
    s_shard_t *sh = &self->shard [shard];
    if (*sh->blocked) {
        snprintf (error, error_size, "the hint log of shard %" PRIu32 " takes "
                  "no more deferred puts: %s", shard, sh->blocked);
        return -EPERM;
    }
    size_t len = S_HINT_FIXED + size;
    uint64_t record = S_FRAME + len;
    if (self->pending_bytes + record > self->max_bytes) {
        snprintf (error, error_size, "the hint log is full: %" PRIu64 " bytes "
                  "of deferred puts wait for delivery, and this one (%" PRIu64
                  " bytes) would pass hint_log_max_bytes (%" PRIu64 ")",
                  self->pending_bytes, record, self->max_bytes);
        return -ENOSPC;
    }
    int rc = s_ensure_dir (self, error, error_size);
    if (rc)
        return rc == -ENOMEM ? rc : -EIO;
    if (sh->fd < 0
    ||  (sh->active_size + record > GW_HINT_FILE_MAX
         && sh->active_size > S_FRAME + S_HEADER_LEN)) {
        rc = s_new_file (self, sh);
        if (rc) {
            snprintf (error, error_size, "%s", sh->blocked);
            return rc == -ENOMEM ? rc : -EIO;
        }
    }
    s_item_t item = { .record_bytes = record };
    item.buf = malloc (S_FRAME + len);
    if (!item.buf) {
        snprintf (error, error_size, "out of memory storing a hint");
        return -ENOMEM;
    }
    uint8_t *p = item.buf + S_FRAME;
    p [0] = S_REC_HINT;
    titan_le_put64 (p + 1, sh->next_seq);
    titan_le_put64 (p + 9, (uint64_t) now_ms);
    memcpy (p + S_HINT_FIXED, request, size);
    s_frame (item.buf, len);
    char path [1024];
    s_file_path (self, shard, sh->files [sh->n_files - 1].number, path,
                 sizeof path);
    rc = s_write_durable (sh->fd, item.buf, S_FRAME + len, sh->active_size);
    if (rc) {
        free (item.buf);
        s_block (sh, "append to", path, rc);
        snprintf (error, error_size, "%s", sh->blocked);
        return -EIO;
    }
    /* keep only the request: the queue's copy of it */
    memmove (item.buf, p + S_HINT_FIXED, size);
    item.hint.shard = shard;
    item.hint.sequence = sh->next_seq;
    item.hint.accepted_ms = now_ms;
    item.hint.request = item.buf;
    item.hint.request_size = size;
    if (s_queue_push (sh, &item)) {
        /* durable but not queued: it is delivered after a restart */
        free (item.buf);
        snprintf (error, error_size, "out of memory queueing a stored hint");
        return -ENOMEM;
    }
    sh->active_size += record;
    sh->files [sh->n_files - 1].last_seq = sh->next_seq;
    sh->pending_bytes += record;
    self->pending_bytes += record;
    *sequence_p = sh->next_seq++;
    return 0;
}

const gw_hint_t *
gw_hints_head (gw_hints_t *self, uint32_t shard)
{
    if (shard >= self->shards || !self->shard [shard].q_len)
        return NULL;
    s_shard_t *sh = &self->shard [shard];
    return &sh->queue [sh->q_head].hint;
}

bool
gw_hints_empty (const gw_hints_t *self)
{
    return self->pending_bytes == 0;
}

uint64_t
gw_hints_client_id (gw_hints_t *self, uint32_t shard)
{
    /* splitmix64 of the base and the shard: distinct per shard */
    uint64_t z = self->base_id + 0x9e3779b97f4a7c15ULL * ((uint64_t) shard + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return z ? z : 1;
}

int
gw_hints_delivered (gw_hints_t *self, uint32_t shard, uint64_t sequence)
{
    const gw_hint_t *head = gw_hints_head (self, shard);
    if (!head || head->sequence != sequence)
        return -EINVAL;
    s_shard_t *sh = &self->shard [shard];
    sh->acked = sequence;
    s_queue_drop (self, sh, sequence);
    sh->delivered++;
    if (sh->fd < 0)
        return *sh->blocked ? 0 : -EIO;  /* blocked: kept in memory only */
    uint8_t rec [S_FRAME + S_MARK_LEN];
    rec [S_FRAME] = S_REC_DELIVERED;
    titan_le_put64 (rec + S_FRAME + 1, sequence);
    s_frame (rec, S_MARK_LEN);
    char path [1024];
    s_file_path (self, shard, sh->files [sh->n_files - 1].number, path,
                 sizeof path);
    int rc = s_write_durable (sh->fd, rec, sizeof rec, sh->active_size);
    if (rc) {
        s_block (sh, "append to", path, rc);
        return -EIO;
    }
    sh->active_size += sizeof rec;
    if (!sh->q_len && sh->active_size > S_FRAME + S_HEADER_LEN) {
        /* all delivered: a fresh file carries the sequence on, and every
           older one goes */
        if (s_new_file (self, sh))
            return -EIO;
    }
    s_delete_delivered (self, sh);
    return 0;
}

void
gw_hints_stats (gw_hints_t *self, uint32_t shard, gw_hint_stats_t *stats)
{
    memset (stats, 0, sizeof *stats);
    stats->blocked = "";
    if (shard >= self->shards)
        return;
    s_shard_t *sh = &self->shard [shard];
    stats->pending = sh->q_len;
    stats->pending_bytes = sh->pending_bytes;
    stats->oldest_ms = sh->q_len ? sh->queue [sh->q_head].hint.accepted_ms : 0;
    stats->delivered = sh->delivered;
    stats->blocked = sh->blocked;
}

void
gw_hints_totals (gw_hints_t *self, gw_hint_stats_t *stats)
{
    memset (stats, 0, sizeof *stats);
    stats->blocked = "";
    for (uint32_t i = 0; i < self->shards; i++) {
        gw_hint_stats_t one;
        gw_hints_stats (self, i, &one);
        stats->pending += one.pending;
        stats->pending_bytes += one.pending_bytes;
        stats->delivered += one.delivered;
        if (one.oldest_ms && (!stats->oldest_ms || one.oldest_ms < stats->oldest_ms))
            stats->oldest_ms = one.oldest_ms;
        if (!*stats->blocked)
            stats->blocked = one.blocked;
    }
}
