/*  Bitcask snapshots: export of a shard as a manifest-headed stream of its
    sealed data and hint files, and the crash-safe restore of such a stream
    into a shard directory (see bc_snapshot.h and README.md "Snapshots").

    The export holds a read mapping of each file it covers; a mapping keeps
    the file's data alive even after a merge unlinks its name, so the
    engine's directory never holds files that only a snapshot needs (which
    a crash would then load as live data).  The restore writes into
    `<dir>.restore` and swaps it in with renames that bc_snapshot_recover
    can always finish or undo.  */
#include "bc_snapshot.h"
#include "bc_internal.h"

#include "titan/crc32c.h"
#include "titan/status.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MARKER "SNAPSHOT"

/* ---------------------------------------------------------- export */

typedef struct {
    uint8_t kind;
    uint32_t id;
    const uint8_t *map;
    size_t size;
    uint64_t start;            /* offset of its bytes in the stream */
    bool crc_known;            /* crc kept by the engine as it wrote it */
    uint32_t crc;
} s_sfile_t;

struct bc_snapshot {
    uint8_t *header;
    size_t header_len;
    s_sfile_t *files;
    size_t nfiles;
    bc_snapshot_info_t info;
};

static const char *
s_suffix (uint8_t kind)
{
    return kind == BC_SNAP_KIND_DATA ? "data"
         : kind == BC_SNAP_KIND_MDATA ? "mdata" : "hint";
}

/* Maps `path` into f; a missing hint is not an error (*skipped). */
static int
s_map_path (const char *path, s_sfile_t *f)
{
    bc_file_t *file;
    int rc = bc_file_open (path, O_RDONLY, 0, NULL, &file);
    if (rc)
        return rc;
    rc = bc_map_file (file, &f->map, &f->size);
    bc_file_close (&file);     /* the mapping keeps the data */
    return rc;
}

int
bc_snapshot_begin (bc_engine_t *engine, bc_snapshot_t **snap_p, char *err,
                   size_t errlen)
{
    *snap_p = NULL;
    bc_snapshot_t *self = calloc (1, sizeof *self);
    if (!self)
        return bc_err (err, errlen, -ENOMEM, "bitcask: out of memory");
    /* No merge may change the file set between the seal and the listing. */
    pthread_mutex_lock (&engine->merge_mu);
    uint32_t active_id = 0;
    int rc = bc_engine_seal (engine, &self->info.applied_index,
                             &self->info.last_revision, &active_id,
                             err, errlen);
    if (rc == 0) {
        pthread_rwlock_rdlock (&engine->kd_lock);
        size_t n = 0;
        for (size_t i = 0; i < engine->nfiles; i++)
            if (engine->files [i]->id < active_id)
                n++;
        self->files = calloc (2 * n + 1, sizeof *self->files);
        bc_dfile_t **dfs = calloc (n + 1, sizeof *dfs);
        n = 0;
        if (self->files && dfs)
            for (size_t i = 0; i < engine->nfiles; i++)
                if (engine->files [i]->id < active_id)
                    dfs [n++] = engine->files [i];
        pthread_rwlock_unlock (&engine->kd_lock);
        if (!self->files || !dfs)
            rc = bc_err (err, errlen, -ENOMEM, "bitcask: out of memory");
        /* The files stay in the table: merges wait on merge_mu. */
        for (size_t i = 0; i < n && rc == 0; i++) {
            bc_dfile_t *df = dfs [i];
            char path [4096];
            s_sfile_t *f = &self->files [self->nfiles];
            f->kind = df->merged ? BC_SNAP_KIND_MDATA : BC_SNAP_KIND_DATA;
            f->id = df->id;
            f->crc_known = df->crc_known;    /* sealed: no longer written */
            f->crc = df->crc;
            bc_path (engine, path, sizeof path, df->id, s_suffix (f->kind));
            rc = s_map_path (path, f);
            if (rc) {
                bc_err (err, errlen, rc, "bitcask: snapshot cannot map %s: "
                        "%s", path, strerror (-rc));
                break;
            }
            if (f->size != df->size) {
                rc = bc_err (err, errlen, TITAN_ECORRUPT, "bitcask: snapshot: "
                             "%s has %zu bytes, expected %llu", path, f->size,
                             (unsigned long long) df->size);
                bc_unmap_file (f->map, f->size);
                break;
            }
            self->nfiles++;
            /* A fresh hint makes the restored engine open fast; without
               one it scans the data file, so a failure only costs time. */
            if (!df->hinted)
                (void) bc_write_hint (engine, df, NULL, 0);
            s_sfile_t *h = &self->files [self->nfiles];
            h->kind = BC_SNAP_KIND_HINT;
            h->id = df->id;
            bc_path (engine, path, sizeof path, df->id, "hint");
            if (df->hinted && s_map_path (path, h) == 0)
                self->nfiles++;
            else
                memset (h, 0, sizeof *h);
        }
        free (dfs);
    }
    pthread_mutex_unlock (&engine->merge_mu);
    if (rc) {
        bc_snapshot_end (&self);
        return rc;
    }
    /* The manifest: checksums are computed outside the engine's locks,
       and only for the files whose CRC the engine did not keep while
       writing them (files of an earlier run, merge outputs, hints): for
       a large shard, reading every file again here took longer than the
       kernel waits for the module to answer a PING, and the module was
       restarted over and over.  */
    self->header_len = BC_SNAP_FIXED + BC_SNAP_ENTRY * self->nfiles + 4;
    self->header = calloc (1, self->header_len);
    if (!self->header) {
        bc_snapshot_end (&self);
        return bc_err (err, errlen, -ENOMEM, "bitcask: out of memory");
    }
    uint8_t *h = self->header;
    memcpy (h, BC_SNAP_MAGIC, 8);
    bc_put32 (h + 8, BC_SNAP_VERSION);
    bc_put32 (h + 12, (uint32_t) self->nfiles);
    bc_put64 (h + 16, self->info.applied_index);
    bc_put64 (h + 24, self->info.last_revision);
    uint64_t pos = self->header_len, data = 0;
    for (size_t i = 0; i < self->nfiles; i++) {
        s_sfile_t *f = &self->files [i];
        uint8_t *e = h + BC_SNAP_FIXED + BC_SNAP_ENTRY * i;
        e [0] = f->kind;
        bc_put32 (e + 4, f->id);
        bc_put64 (e + 8, f->size);
        bc_put32 (e + 16, f->crc_known ? f->crc
                          : f->size ? titan_crc32c (0, f->map, f->size) : 0);
        f->start = pos;
        pos += f->size;
        data += f->size;
    }
    bc_put64 (h + 32, data);
    bc_put32 (h + self->header_len - 4,
              titan_crc32c (0, h, self->header_len - 4));
    self->info.total_bytes = pos;
    self->info.files = (uint32_t) self->nfiles;
    *snap_p = self;
    return 0;
}

void
bc_snapshot_info (bc_snapshot_t *self, bc_snapshot_info_t *info)
{
    *info = self->info;
}

int
bc_snapshot_read (bc_snapshot_t *self, uint64_t offset, void *buf,
                  size_t cap, size_t *n)
{
    *n = 0;
    if (offset > self->info.total_bytes)
        return -EINVAL;
    uint8_t *out = buf;
    size_t done = 0;
    while (done < cap && offset < self->info.total_bytes) {
        const uint8_t *src;
        uint64_t avail;
        if (offset < self->header_len) {
            src = self->header + offset;
            avail = self->header_len - offset;
        }
        else {
            /* Binary search for the file holding `offset`. */
            size_t lo = 0, hi = self->nfiles;
            while (hi - lo > 1) {
                size_t mid = (lo + hi) / 2;
                if (self->files [mid].start <= offset)
                    lo = mid;
                else
                    hi = mid;
            }
            while (lo < self->nfiles && offset >= self->files [lo].start
                                                  + self->files [lo].size)
                lo++;             /* skip empty files */
            if (lo == self->nfiles)
                break;
            s_sfile_t *f = &self->files [lo];
            src = f->map + (offset - f->start);
            avail = f->start + f->size - offset;
        }
        size_t take = cap - done < avail ? cap - done : (size_t) avail;
        memcpy (out + done, src, take);
        done += take;
        offset += take;
    }
    *n = done;
    return 0;
}

void
bc_snapshot_end (bc_snapshot_t **self_p)
{
    bc_snapshot_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->nfiles; i++)
        bc_unmap_file (self->files [i].map, self->files [i].size);
    free (self->files);
    free (self->header);
    free (self);
    *self_p = NULL;
}

/* ---------------------------------------------------------- directories */

static bool
s_exists (const char *path)
{
    struct stat st;
    return stat (path, &st) == 0;
}

int
bc_snapshot_recover (const char *dir, bc_fault_t *fault, bool discard,
                     char *err, size_t errlen)
{
    char tmp [4096], old [4096], parent [4096], marker [4200];
    snprintf (tmp, sizeof tmp, "%s.restore", dir);
    snprintf (old, sizeof old, "%s.old", dir);
    bc_file_parent_dir (dir, parent, sizeof parent);
    int rc = 0;
    if (!s_exists (dir)) {
        snprintf (marker, sizeof marker, "%s/" MARKER, tmp);
        if (s_exists (marker))          /* crashed between the renames */
            rc = bc_file_rename (fault, tmp, dir);
        else
        if (s_exists (old))
            rc = bc_file_rename (fault, old, dir);
        if (rc == 0)
            rc = bc_file_sync_dir (fault, parent);
        if (rc)
            return bc_err (err, errlen, rc, "bitcask: cannot settle the "
                           "interrupted restore of %s: %s", dir,
                           strerror (-rc));
    }
    /* `dir` now holds one whole state; what is beside it is leftover
       (`<dir>.restore` may also be a restore being written right now:
       only its owner discards it). */
    rc = discard ? bc_file_remove_dir (fault, tmp) : 0;
    if (rc == 0)
        rc = bc_file_remove_dir (fault, old);
    snprintf (marker, sizeof marker, "%s/" MARKER, dir);
    if (rc == 0 && s_exists (marker)) {
        rc = bc_file_unlink (fault, marker);
        if (rc == 0)
            rc = bc_file_sync_dir (fault, dir);
    }
    if (rc == 0 && s_exists (parent))
        rc = bc_file_sync_dir (fault, parent);
    if (rc)
        return bc_err (err, errlen, rc, "bitcask: cannot remove the leftovers "
                       "of a restore of %s: %s", dir, strerror (-rc));
    return 0;
}

/* ---------------------------------------------------------- restore */

typedef struct {
    uint8_t kind;
    uint32_t id;
    uint64_t size;
    uint32_t crc;
    uint32_t got;             /* CRC of the bytes received */
} s_rfile_t;

struct bc_restore {
    char *dir;
    char *tmp;
    bc_fault_t *fault;
    int test_stop;
    int error;                /* sticky: a failed write */
    bool committed;
    uint8_t *header;          /* the manifest, as it arrives */
    size_t header_len;        /* 0 until nfiles is known */
    size_t header_got;
    bool header_ok;
    s_rfile_t *files;
    size_t nfiles;
    size_t cur;               /* file being received */
    uint64_t cur_off;         /* bytes of it received */
    bc_file_t *cur_file;
    uint64_t pos;             /* stream bytes received */
    bc_snapshot_info_t info;
};

int
bc_restore_begin (const char *dir, bc_fault_t *fault, bc_restore_t **restore_p,
                  char *err, size_t errlen)
{
    *restore_p = NULL;
    int rc = bc_snapshot_recover (dir, fault, true, err, errlen);
    if (rc)
        return rc;
    bc_restore_t *self = calloc (1, sizeof *self);
    if (!self)
        return bc_err (err, errlen, -ENOMEM, "bitcask: out of memory");
    self->dir = strdup (dir);
    self->tmp = malloc (strlen (dir) + sizeof ".restore");
    self->header = malloc (BC_SNAP_FIXED);
    self->fault = fault;
    if (!self->dir || !self->tmp || !self->header) {
        bc_restore_abort (&self);
        return bc_err (err, errlen, -ENOMEM, "bitcask: out of memory");
    }
    sprintf (self->tmp, "%s.restore", dir);
    if (mkdir (self->tmp, 0755) != 0) {
        rc = -errno;
        bc_err (err, errlen, rc, "bitcask: cannot create %s: %s", self->tmp,
                strerror (errno));
        free (self->tmp);
        self->tmp = NULL;        /* not ours to remove */
        bc_restore_abort (&self);
        return rc;
    }
    *restore_p = self;
    return 0;
}

uint64_t
bc_restore_written (bc_restore_t *self)
{
    return self->pos;
}

uint64_t
bc_restore_total (bc_restore_t *self)
{
    return self->header_ok ? self->info.total_bytes : 0;
}

bool
bc_restore_same_start (bc_restore_t *self, const void *data, size_t len)
{
    size_t n = len < self->header_got ? len : self->header_got;
    return memcmp (self->header, data, n) == 0;
}

void
bc_restore_test_stop (bc_restore_t *self, int step)
{
    self->test_stop = step;
}

/* Checks the complete manifest and prepares the file list. */
static int
s_parse_header (bc_restore_t *self, char *err, size_t errlen)
{
    const uint8_t *h = self->header;
    if (titan_crc32c (0, h, self->header_len - 4)
        != bc_get32 (h + self->header_len - 4))
        return bc_err (err, errlen, TITAN_ECORRUPT, "bitcask: snapshot "
                       "manifest checksum mismatch");
    self->files = calloc (self->nfiles + 1, sizeof *self->files);
    if (!self->files)
        return bc_err (err, errlen, -ENOMEM, "bitcask: out of memory");
    uint64_t data = 0;
    for (size_t i = 0; i < self->nfiles; i++) {
        const uint8_t *e = h + BC_SNAP_FIXED + BC_SNAP_ENTRY * i;
        s_rfile_t *f = &self->files [i];
        f->kind = e [0];
        f->id = bc_get32 (e + 4);
        f->size = bc_get64 (e + 8);
        f->crc = bc_get32 (e + 16);
        if (f->kind < BC_SNAP_KIND_DATA || f->kind > BC_SNAP_KIND_HINT
        ||  e [1] || e [2] || e [3] || bc_get32 (e + 20)
        ||  f->size > 0xFFFFFFFFull || f->id >= 100000000u)
            return bc_err (err, errlen, TITAN_ECORRUPT, "bitcask: snapshot "
                           "manifest entry %zu is invalid", i);
        /* Data files in increasing id order, each hint after its file. */
        if (f->kind == BC_SNAP_KIND_HINT
            ? (i == 0 || f[-1].kind == BC_SNAP_KIND_HINT || f[-1].id != f->id)
            : (i > 0 && f->id <= f[-1].id))
            return bc_err (err, errlen, TITAN_ECORRUPT, "bitcask: snapshot "
                           "manifest entry %zu is out of order", i);
        data += f->size;
    }
    if (data != bc_get64 (h + 32))
        return bc_err (err, errlen, TITAN_ECORRUPT, "bitcask: snapshot "
                       "manifest sizes do not add up");
    self->info.applied_index = bc_get64 (h + 16);
    self->info.last_revision = bc_get64 (h + 24);
    self->info.total_bytes = self->header_len + data;
    self->info.files = (uint32_t) self->nfiles;
    self->header_ok = true;
    return 0;
}

/* Finishes file `cur` (fsync, close) and moves to the next. */
static int
s_next_file (bc_restore_t *self, char *err, size_t errlen)
{
    int rc = 0;
    if (self->cur_file) {
        rc = bc_file_sync (self->cur_file);
        if (rc)
            bc_err (err, errlen, rc, "bitcask: cannot fsync %s: %s",
                    bc_file_path (self->cur_file), strerror (-rc));
        bc_file_close (&self->cur_file);
    }
    self->cur++;
    self->cur_off = 0;
    return rc;
}

static int
s_open_file (bc_restore_t *self, char *err, size_t errlen)
{
    s_rfile_t *f = &self->files [self->cur];
    char path [4096];
    snprintf (path, sizeof path, "%s/%08u.%s", self->tmp, f->id,
              s_suffix (f->kind));
    int rc = bc_file_open (path, O_WRONLY | O_CREAT | O_EXCL, 0644,
                           self->fault, &self->cur_file);
    if (rc)
        return bc_err (err, errlen, rc, "bitcask: cannot create %s: %s", path,
                       strerror (-rc));
    return 0;
}

static int
s_write (bc_restore_t *self, const uint8_t *p, size_t len, char *err,
         size_t errlen)
{
    while (len > 0) {
        if (!self->header_ok) {
            size_t want = self->header_len ? self->header_len : BC_SNAP_FIXED;
            size_t take = want - self->header_got < len
                        ? want - self->header_got : len;
            memcpy (self->header + self->header_got, p, take);
            self->header_got += take;
            p += take;
            len -= take;
            self->pos += take;
            if (self->header_got < want)
                return 0;
            if (!self->header_len) {
                if (memcmp (self->header, BC_SNAP_MAGIC, 8) != 0
                ||  bc_get32 (self->header + 8) != BC_SNAP_VERSION)
                    return bc_err (err, errlen, TITAN_ECORRUPT, "bitcask: not "
                                   "a version %u Titan snapshot stream",
                                   BC_SNAP_VERSION);
                uint32_t n = bc_get32 (self->header + 12);
                if (n > BC_SNAP_MAX_FILES)
                    return bc_err (err, errlen, TITAN_ECORRUPT, "bitcask: "
                                   "snapshot lists %u files (limit %u)", n,
                                   BC_SNAP_MAX_FILES);
                self->nfiles = n;
                self->header_len = BC_SNAP_FIXED + BC_SNAP_ENTRY * n + 4;
                uint8_t *h = realloc (self->header, self->header_len);
                if (!h)
                    return bc_err (err, errlen, -ENOMEM, "bitcask: out of "
                                   "memory");
                self->header = h;
                continue;
            }
            int rc = s_parse_header (self, err, errlen);
            if (rc)
                return rc;
            continue;
        }
        while (self->cur < self->nfiles
        &&     self->cur_off == self->files [self->cur].size) {
            /* An empty file, or one just completed. */
            if (!self->cur_file) {
                int rc = s_open_file (self, err, errlen);
                if (rc)
                    return rc;
            }
            int rc = s_next_file (self, err, errlen);
            if (rc)
                return rc;
        }
        if (self->cur == self->nfiles)
            return bc_err (err, errlen, -EINVAL, "bitcask: %zu bytes past the "
                           "end of the snapshot stream", len);
        s_rfile_t *f = &self->files [self->cur];
        if (!self->cur_file) {
            int rc = s_open_file (self, err, errlen);
            if (rc)
                return rc;
        }
        uint64_t room = f->size - self->cur_off;
        size_t take = room < len ? (size_t) room : len;
        int rc = bc_file_pwrite (self->cur_file, p, take, self->cur_off);
        if (rc)
            return bc_err (err, errlen, rc, "bitcask: cannot write %s: %s",
                           bc_file_path (self->cur_file), strerror (-rc));
        f->got = titan_crc32c (f->got, p, take);
        self->cur_off += take;
        self->pos += take;
        p += take;
        len -= take;
    }
    /* Close files completed by this write (and empty ones after them). */
    while (self->header_ok && self->cur < self->nfiles
    &&     self->cur_off == self->files [self->cur].size) {
        if (!self->cur_file) {
            int rc = s_open_file (self, err, errlen);
            if (rc)
                return rc;
        }
        int rc = s_next_file (self, err, errlen);
        if (rc)
            return rc;
    }
    return 0;
}

int
bc_restore_write (bc_restore_t *self, uint64_t offset, const void *data,
                  size_t len, char *err, size_t errlen)
{
    if (self->error)
        return bc_err (err, errlen, self->error, "bitcask: restore of %s "
                       "already failed", self->dir);
    if (self->committed)
        return bc_err (err, errlen, -EINVAL, "bitcask: restore of %s is "
                       "already committed", self->dir);
    if (offset > self->pos)
        return bc_err (err, errlen, -EINVAL, "bitcask: snapshot chunk at "
                       "offset %llu leaves a gap (received %llu bytes)",
                       (unsigned long long) offset,
                       (unsigned long long) self->pos);
    if (offset + len <= self->pos)
        return 0;                        /* re-sent: already have it */
    size_t skip = (size_t) (self->pos - offset);
    if (self->header_ok && self->pos + (len - skip) > self->info.total_bytes)
        return bc_err (err, errlen, -EINVAL, "bitcask: snapshot chunk ends "
                       "past the stream's %llu bytes",
                       (unsigned long long) self->info.total_bytes);
    int rc = s_write (self, (const uint8_t *) data + skip, len - skip, err,
                      errlen);
    if (rc)
        self->error = rc;
    return rc;
}

int
bc_restore_verify (bc_restore_t *self, bc_snapshot_info_t *info, char *err,
                   size_t errlen)
{
    if (self->error)
        return bc_err (err, errlen, self->error, "bitcask: restore of %s "
                       "already failed", self->dir);
    if (self->committed)
        return bc_err (err, errlen, -EINVAL, "bitcask: restore of %s is "
                       "already committed", self->dir);
    if (!self->header_ok || self->pos != self->info.total_bytes
    ||  self->cur != self->nfiles)
        return bc_err (err, errlen, -EINVAL, "bitcask: snapshot stream "
                       "incomplete: %llu of %llu bytes",
                       (unsigned long long) self->pos,
                       (unsigned long long) (self->header_ok
                                             ? self->info.total_bytes : 0));
    for (size_t i = 0; i < self->nfiles; i++) {
        s_rfile_t *f = &self->files [i];
        if (f->got != f->crc)
            return self->error = bc_err (err, errlen, TITAN_ECORRUPT,
                "bitcask: snapshot file %08u.%s fails its checksum (%08x, "
                "manifest %08x)", f->id, s_suffix (f->kind), f->got, f->crc);
    }
    if (info)
        *info = self->info;
    return 0;
}

int
bc_restore_commit (bc_restore_t *self, bc_snapshot_info_t *info, char *err,
                   size_t errlen)
{
    int vrc = bc_restore_verify (self, info, err, errlen);
    if (vrc)
        return vrc;
    char parent [4096], path [4096], old [4096];
    bc_file_parent_dir (self->dir, parent, sizeof parent);
    snprintf (old, sizeof old, "%s.old", self->dir);
    const char *step = "create its active file";
    /* 1: an empty active file above every id, so that the engine loads
       all the snapshot's files as sealed ones (from their hints); then the
       new directory is complete and durable, and marked so. */
    uint32_t next = 1;
    for (size_t i = 0; i < self->nfiles; i++)
        if (self->files [i].id >= next)
            next = self->files [i].id + 1;
    snprintf (path, sizeof path, "%s/%08u.data", self->tmp, next);
    bc_file_t *file;
    int rc = next < 100000000u
           ? bc_file_open (path, O_WRONLY | O_CREAT | O_EXCL, 0644,
                           self->fault, &file)
           : -EOVERFLOW;
    if (rc == 0) {
        rc = bc_file_sync (file);
        bc_file_close (&file);
    }
    if (rc)
        goto done;
    step = "write its marker";
    snprintf (path, sizeof path, "%s/" MARKER, self->tmp);
    rc = bc_file_open (path, O_WRONLY | O_CREAT | O_TRUNC, 0644,
                       self->fault, &file);
    if (rc == 0) {
        rc = bc_file_pwrite (file, self->header, self->header_len, 0);
        if (rc == 0)
            rc = bc_file_sync (file);
        bc_file_close (&file);
    }
    if (rc == 0)
        rc = bc_file_sync_dir (self->fault, self->tmp);
    if (rc == 0)
        rc = bc_file_sync_dir (self->fault, parent);
    if (rc || self->test_stop == 1)
        goto done;
    /* 2: the old state goes aside. */
    step = "move the old directory aside";
    bool had_old = s_exists (self->dir);
    if (had_old) {
        rc = bc_file_rename (self->fault, self->dir, old);
        if (rc == 0)
            rc = bc_file_sync_dir (self->fault, parent);
    }
    if (rc || self->test_stop == 2)
        goto done;
    /* 3: the new state comes in: the commit point. */
    step = "rename the new directory in";
    rc = bc_file_rename (self->fault, self->tmp, self->dir);
    if (rc == 0)
        rc = bc_file_sync_dir (self->fault, parent);
    if (rc)
        goto done;
    self->committed = true;
    if (self->test_stop == 3)
        goto done;
    /* 4: clean up. */
    step = "remove the leftovers";
    snprintf (path, sizeof path, "%s/" MARKER, self->dir);
    rc = bc_file_unlink (self->fault, path);
    if (rc == 0)
        rc = bc_file_sync_dir (self->fault, self->dir);
    if (rc || self->test_stop == 4)
        goto done;
    rc = bc_file_remove_dir (self->fault, old);
    if (rc == 0)
        rc = bc_file_sync_dir (self->fault, parent);
done:
    if (rc)
        return bc_err (err, errlen, rc, "bitcask: restore of %s cannot %s: "
                       "%s", self->dir, step, strerror (-rc));
    if (!self->committed && self->test_stop) {
        /* Simulated crash before the commit point: keep the files. */
        free (self->tmp);
        self->tmp = NULL;
    }
    if (info)
        *info = self->info;
    return 0;
}

void
bc_restore_abort (bc_restore_t **self_p)
{
    bc_restore_t *self = *self_p;
    if (!self)
        return;
    bc_file_close (&self->cur_file);
    if (self->tmp && !self->committed)
        (void) bc_file_remove_dir (self->fault, self->tmp);
    free (self->files);
    free (self->header);
    free (self->tmp);
    free (self->dir);
    free (self);
    *self_p = NULL;
}
