/*  Bitcask merge: rewrites every sealed data file into new data and hint
    files that hold only live records, while reads and writes go on.

    Steps (a crash at any point loses nothing):
      1. Scan the sealed files; a put is live when the keydir still points
         at it.  Live records are copied verbatim (their CRC stays valid)
         into <id>.mdata.tmp files with <id>.hint.tmp hints; tombstones are
         dropped (every older record of their key is in the merged set,
         every newer one in a later file), and one META record keeps the
         highest revision and applied index seen.  Outputs are fsynced.
         A crash here leaves .tmp files, which the next open deletes.
      2. Commit: a manifest MERGE (old ids, new ids, CRC) is written to
         MERGE.tmp, fsynced and renamed into place, and the directory is
         fsynced.  From now on the next open completes the merge.
      3. The outputs are renamed to their final names.
      4. The new files join the file table and each moved key is switched
         to its new location only if the keydir still points at the old
         one (a concurrent write wins), in chunks under the write lock.
      5. The old files leave the table and are unlinked, then MERGE.
    No lock is held while reading or writing files; the keydir write lock
    is taken only for short chunks of switches and the table changes.  */
#include "bc_internal.h"

#include "titan/crc32c.h"
#include "titan/status.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MANIFEST_MAGIC  0x4D434254u    /* "TBCM" */
#define MANIFEST_MAX    1000000u
#define SWITCH_CHUNK    128
#define OUT_BUF         (1u << 20)
#define MERGE_SYNC_BYTES (4u << 20)

typedef struct {
    uint32_t id;
    bool merged;
    uint64_t size;
    bc_file_t *file;
    const uint8_t *map;
    size_t map_size;
} s_old_t;

typedef struct {
    uint32_t id;
    bc_file_t *file;
    uint64_t size;            /* bytes written + buffered */
    uint64_t flushed;
    uint64_t synced;
    uint8_t *hint;
    size_t hint_len, hint_cap;
    uint32_t count;
} s_out_t;

typedef struct {
    const uint8_t *key;
    uint32_t hash;
    uint16_t klen;
    uint32_t old_id, old_off, new_id, new_off, size;
    uint64_t rev;
} s_move_t;

typedef struct {
    bc_engine_t *engine;
    s_old_t *olds;
    size_t nolds;
    s_out_t *outs;
    size_t nouts, outs_cap;
    s_move_t *moves;
    size_t nmoves, moves_cap;
    uint8_t *buf;
    size_t buf_len;
    uint64_t max_rev, max_applied;
    uint64_t old_bytes_left;  /* bytes of old files not yet copied */
    char *err;
    size_t errlen;
} s_merge_t;

static int
s_out_flush (s_merge_t *m, s_out_t *o)
{
    if (!m->buf_len)
        return 0;
    int rc = bc_file_pwrite (o->file, m->buf, m->buf_len, o->flushed);
    if (rc)
        return bc_err (m->err, m->errlen, rc, "bitcask: merge write to %s "
                       "failed: %s", bc_file_path (o->file), strerror (-rc));
    o->flushed += m->buf_len;
    m->buf_len = 0;
    /* Sync as we go: a merge never leaves more than MERGE_SYNC_BYTES
       dirty, so it cannot make the writers' fdatasync wait behind one huge
       flush (their p99 latency during a merge stays near steady state). */
    if (o->flushed - o->synced >= MERGE_SYNC_BYTES) {
        if ((rc = bc_file_sync (o->file)))
            return bc_err (m->err, m->errlen, rc, "bitcask: merge fsync of %s "
                           "failed: %s", bc_file_path (o->file),
                           strerror (-rc));
        o->synced = o->flushed;
    }
    return 0;
}

static int
s_hint_add (s_out_t *o, uint8_t type, const uint8_t *key, uint16_t klen,
            uint32_t offset, uint32_t size, uint64_t rev)
{
    size_t need = o->hint_len + BC_HINT_HEADER * 2 + klen;
    if (need > o->hint_cap) {
        size_t cap = o->hint_cap ? o->hint_cap : 64 * 1024;
        while (cap < need)
            cap *= 2;
        uint8_t *h = realloc (o->hint, cap);
        if (!h)
            return -ENOMEM;
        o->hint = h;
        o->hint_cap = cap;
    }
    bc_hint_encode (o->hint + o->hint_len, type, key, klen, offset, size, rev);
    o->hint_len += BC_HINT_HEADER + klen;
    o->count++;
    return 0;
}

/* Finishes an output: flush, fsync, write and fsync its hint. */
static int
s_out_finish (s_merge_t *m, s_out_t *o)
{
    bc_engine_t *self = m->engine;
    int rc = s_out_flush (m, o);
    if (rc)
        return rc;
    if ((rc = bc_file_truncate (o->file, o->size)))
        return bc_err (m->err, m->errlen, rc, "bitcask: merge cannot trim "
                       "%s: %s", bc_file_path (o->file), strerror (-rc));
    if ((rc = bc_file_sync (o->file)))
        return bc_err (m->err, m->errlen, rc, "bitcask: merge fsync of %s "
                       "failed: %s", bc_file_path (o->file), strerror (-rc));
    if ((rc = s_hint_add (o, BC_HINT_END, NULL, 0, o->count, 0, o->size)))
        return bc_err (m->err, m->errlen, rc, "bitcask: out of memory");
    char path [4096];
    bc_path (self, path, sizeof path, o->id, "hint.tmp");
    bc_file_t *hf;
    rc = bc_file_open (path, O_WRONLY | O_CREAT | O_TRUNC, 0644,
                       self->opt.fault, &hf);
    if (rc == 0) {
        rc = bc_file_pwrite (hf, o->hint, o->hint_len, 0);
        if (rc == 0)
            rc = bc_file_sync (hf);
        bc_file_close (&hf);
    }
    if (rc)
        return bc_err (m->err, m->errlen, rc, "bitcask: merge cannot write "
                       "%s: %s", path, strerror (-rc));
    bc_file_close (&o->file);
    return 0;
}

static int
s_out_new (s_merge_t *m)
{
    bc_engine_t *self = m->engine;
    if (m->nouts == m->outs_cap) {
        size_t cap = m->outs_cap ? m->outs_cap * 2 : 8;
        s_out_t *outs = realloc (m->outs, cap * sizeof *outs);
        if (!outs)
            return bc_err (m->err, m->errlen, -ENOMEM, "bitcask: out of memory");
        m->outs = outs;
        m->outs_cap = cap;
    }
    s_out_t *o = &m->outs [m->nouts];
    memset (o, 0, sizeof *o);
    pthread_rwlock_wrlock (&self->kd_lock);
    o->id = self->next_id++;
    pthread_rwlock_unlock (&self->kd_lock);
    char path [4096];
    bc_path (self, path, sizeof path, o->id, "mdata.tmp");
    int rc = bc_file_open (path, O_RDWR | O_CREAT | O_TRUNC, 0644,
                           self->opt.fault, &o->file);
    if (rc)
        return bc_err (m->err, m->errlen, rc, "bitcask: merge cannot create "
                       "%s: %s", path, strerror (-rc));
    /* Preallocate: the output's blocks are then allocated up front, so a
       writer's fdatasync does not wait for the journal to flush the
       merge's freshly allocated data (ext4 data=ordered). */
    uint64_t room = m->old_bytes_left < self->opt.max_file_bytes
                  ? m->old_bytes_left : self->opt.max_file_bytes;
    if (room)
        (void) bc_file_allocate (o->file, room);
    m->nouts++;
    return 0;
}

/* Appends one record (bytes verbatim) to the current output. */
static int
s_emit (s_merge_t *m, const uint8_t *rec, uint32_t size, uint32_t *id,
        uint32_t *offset)
{
    s_out_t *o = m->nouts ? &m->outs [m->nouts - 1] : NULL;
    int rc;
    if (!o || (o->size && o->size + size > m->engine->opt.max_file_bytes)) {
        if (o && (rc = s_out_finish (m, o)))
            return rc;
        if ((rc = s_out_new (m)))
            return rc;
        o = &m->outs [m->nouts - 1];
    }
    if (m->buf_len + size > OUT_BUF && (rc = s_out_flush (m, o)))
        return rc;
    if (size > OUT_BUF) {
        rc = bc_file_pwrite (o->file, rec, size, o->flushed);
        if (rc)
            return bc_err (m->err, m->errlen, rc, "bitcask: merge write to %s "
                           "failed: %s", bc_file_path (o->file),
                           strerror (-rc));
        o->flushed += size;
    }
    else {
        memcpy (m->buf + m->buf_len, rec, size);
        m->buf_len += size;
    }
    *id = o->id;
    *offset = (uint32_t) o->size;
    o->size += size;
    return 0;
}

static int
s_move_add (s_merge_t *m, const s_move_t *mv)
{
    if (m->nmoves == m->moves_cap) {
        size_t cap = m->moves_cap ? m->moves_cap * 2 : 1024;
        s_move_t *mvs = realloc (m->moves, cap * sizeof *mvs);
        if (!mvs)
            return bc_err (m->err, m->errlen, -ENOMEM, "bitcask: out of memory");
        m->moves = mvs;
        m->moves_cap = cap;
    }
    m->moves [m->nmoves++] = *mv;
    return 0;
}

/* Step 1 for one old file. */
static int
s_copy_live (s_merge_t *m, s_old_t *old)
{
    bc_engine_t *self = m->engine;
    size_t pos = 0;
    while (pos < old->map_size) {
        bc_record_t rec;
        int64_t r = bc_record_decode (old->map + pos, old->map_size - pos,
                                      BC_VALUE_HARD_MAX, &rec);
        if (r <= 0)
            return bc_err (m->err, m->errlen, TITAN_ECORRUPT, "bitcask: "
                           "corrupt record in %s at offset %zu (merge)",
                           bc_file_path (old->file), pos);
        if (rec.revision > m->max_rev)
            m->max_rev = rec.revision;
        if (rec.type == BC_REC_META) {
            uint64_t applied = bc_get64 (rec.value);
            uint64_t last = bc_get64 (rec.value + 8);
            if (applied > m->max_applied)
                m->max_applied = applied;
            if (last > m->max_rev)
                m->max_rev = last;
        }
        else
        if (rec.type == BC_REC_PUT) {
            uint32_t hash = bc_keydir_hash (rec.key, rec.key_len);
            bc_loc_t loc;
            pthread_rwlock_rdlock (&self->kd_lock);
            bool live = bc_keydir_get (self->keydir, hash, rec.key,
                                       rec.key_len, &loc)
                     && loc.file_id == old->id && loc.offset == pos;
            pthread_rwlock_unlock (&self->kd_lock);
            if (live) {
                s_move_t mv = { rec.key, hash, rec.key_len, old->id,
                                (uint32_t) pos, 0, 0, rec.size, rec.revision };
                int rc = s_emit (m, old->map + pos, rec.size, &mv.new_id,
                                 &mv.new_off);
                if (rc == 0)
                    rc = s_hint_add (&m->outs [m->nouts - 1], BC_REC_PUT,
                                     rec.key, rec.key_len, mv.new_off,
                                     rec.size, rec.revision);
                if (rc == 0)
                    rc = s_move_add (m, &mv);
                if (rc)
                    return rc < 0 && m->err && !m->err [0]
                         ? bc_err (m->err, m->errlen, rc, "bitcask: merge "
                                   "out of memory") : rc;
            }
        }
        pos += (size_t) r;
    }
    return 0;
}

static int
s_write_manifest (s_merge_t *m)
{
    bc_engine_t *self = m->engine;
    size_t n = 4 + m->nolds + m->nouts;
    uint8_t *buf = malloc (n * 4);
    if (!buf)
        return bc_err (m->err, m->errlen, -ENOMEM, "bitcask: out of memory");
    bc_put32 (buf, MANIFEST_MAGIC);
    bc_put32 (buf + 4, (uint32_t) m->nolds);
    bc_put32 (buf + 8, (uint32_t) m->nouts);
    size_t p = 12;
    for (size_t i = 0; i < m->nolds; i++, p += 4)
        bc_put32 (buf + p, m->olds [i].id);
    for (size_t i = 0; i < m->nouts; i++, p += 4)
        bc_put32 (buf + p, m->outs [i].id);
    bc_put32 (buf + p, titan_crc32c (0, buf, p));
    char tmp [4096], path [4096];
    snprintf (tmp, sizeof tmp, "%s/MERGE.tmp", self->dir);
    snprintf (path, sizeof path, "%s/MERGE", self->dir);
    bc_file_t *f;
    int rc = bc_file_open (tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644,
                           self->opt.fault, &f);
    if (rc == 0) {
        rc = bc_file_pwrite (f, buf, n * 4, 0);
        if (rc == 0)
            rc = bc_file_sync (f);
        bc_file_close (&f);
    }
    if (rc == 0)
        rc = bc_file_rename (self->opt.fault, tmp, path);
    if (rc == 0)
        rc = bc_file_sync_dir (self->opt.fault, self->dir);
    free (buf);
    if (rc)
        return bc_err (m->err, m->errlen, rc, "bitcask: merge cannot commit "
                       "%s: %s", path, strerror (-rc));
    return 0;
}

/* Renames outputs and removes old files and the manifest: steps 3 and 5
   (also used by recovery). */
static int
s_rename_outputs (bc_engine_t *self, const uint32_t *ids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char from [4096], to [4096];
        const char *pairs [2][2] = { { "mdata.tmp", "mdata" },
                                     { "hint.tmp", "hint" } };
        for (int k = 0; k < 2; k++) {
            bc_path (self, from, sizeof from, ids [i], pairs [k][0]);
            bc_path (self, to, sizeof to, ids [i], pairs [k][1]);
            if (access (from, F_OK) == 0) {
                int rc = bc_file_rename (self->opt.fault, from, to);
                if (rc)
                    return rc;
            }
        }
    }
    return bc_file_sync_dir (self->opt.fault, self->dir);
}

static int
s_remove_olds (bc_engine_t *self, const uint32_t *ids, size_t n, int stop)
{
    for (size_t i = 0; i < n; i++) {
        if (stop == 5 && i == n / 2 && n > 1)
            return 0;
        const char *suffixes [] = { "data", "mdata", "hint" };
        for (int k = 0; k < 3; k++) {
            char path [4096];
            bc_path (self, path, sizeof path, ids [i], suffixes [k]);
            int rc = bc_file_unlink (self->opt.fault, path);
            if (rc && rc != -ENOENT)
                return rc;
        }
    }
    int rc = bc_file_sync_dir (self->opt.fault, self->dir);
    if (rc)
        return rc;
    char path [4096];
    snprintf (path, sizeof path, "%s/MERGE", self->dir);
    rc = bc_file_unlink (self->opt.fault, path);
    if (rc)
        return rc;
    return bc_file_sync_dir (self->opt.fault, self->dir);
}

int
bc_merge_recover (bc_engine_t *self, char *err, size_t errlen)
{
    char path [4096];
    snprintf (path, sizeof path, "%s/MERGE.tmp", self->dir);
    (void) unlink (path);
    snprintf (path, sizeof path, "%s/MERGE", self->dir);
    bc_file_t *f;
    int rc = bc_file_open (path, O_RDONLY, 0, NULL, &f);
    if (rc == -ENOENT)
        return 0;
    if (rc)
        return bc_err (err, errlen, rc, "bitcask: cannot open %s: %s", path,
                       strerror (-rc));
    int64_t size = bc_file_size (f);
    uint8_t *buf = NULL;
    if (size >= 16 && size <= (int64_t) (4 * (MANIFEST_MAX + 4))
    &&  size % 4 == 0 && (buf = malloc ((size_t) size))
    &&  bc_file_pread (f, buf, (size_t) size, 0) == size) {
        size_t words = (size_t) size / 4;
        uint32_t nold = bc_get32 (buf + 4), nnew = bc_get32 (buf + 8);
        if (bc_get32 (buf) != MANIFEST_MAGIC
        ||  (uint64_t) nold + nnew + 4 != words
        ||  titan_crc32c (0, buf, (size_t) size - 4)
            != bc_get32 (buf + size - 4))
            rc = TITAN_ECORRUPT;
        else {
            uint32_t *ids = malloc ((nold + nnew + 1) * sizeof *ids);
            if (!ids)
                rc = -ENOMEM;
            else {
                for (size_t i = 0; i < nold + nnew; i++)
                    ids [i] = bc_get32 (buf + 12 + 4 * i);
                rc = s_rename_outputs (self, ids + nold, nnew);
                if (rc == 0)
                    rc = s_remove_olds (self, ids, nold, 0);
                free (ids);
            }
        }
    }
    else
        rc = TITAN_ECORRUPT;
    free (buf);
    bc_file_close (&f);
    if (rc == TITAN_ECORRUPT)
        return bc_err (err, errlen, rc, "bitcask: corrupt merge manifest %s",
                       path);
    if (rc)
        return bc_err (err, errlen, rc, "bitcask: cannot complete the merge "
                       "recorded in %s: %s", path, strerror (-rc));
    return 0;
}

int
bc_engine_merge (bc_engine_t *self, uint64_t *files_merged,
                 uint64_t *bytes_reclaimed, char *err, size_t errlen)
{
    if (files_merged)
        *files_merged = 0;
    if (bytes_reclaimed)
        *bytes_reclaimed = 0;
    if (err && errlen)
        err [0] = 0;
    pthread_mutex_lock (&self->merge_mu);
    pthread_mutex_lock (&self->mu);
    int failed = self->failed;
    if (failed)
        bc_err (err, errlen, failed, "%s", self->failed_msg);
    pthread_mutex_unlock (&self->mu);
    if (failed) {
        pthread_mutex_unlock (&self->merge_mu);
        return failed;
    }
    s_merge_t m;
    memset (&m, 0, sizeof m);
    m.engine = self;
    m.err = err;
    m.errlen = errlen;
    int rc = 0;
    bool committed = false;
    int stop = self->opt.test_merge_stop;

    pthread_rwlock_rdlock (&self->kd_lock);
    m.olds = calloc (self->nfiles ? self->nfiles : 1, sizeof *m.olds);
    if (m.olds)
        for (size_t i = 0; i < self->nfiles; i++)
            if (self->files [i] != self->active) {
                s_old_t *o = &m.olds [m.nolds++];
                o->id = self->files [i]->id;
                o->merged = self->files [i]->merged;
                o->size = self->files [i]->size;
            }
    pthread_rwlock_unlock (&self->kd_lock);
    m.buf = malloc (OUT_BUF);
    if (!m.olds || !m.buf) {
        rc = bc_err (err, errlen, -ENOMEM, "bitcask: out of memory");
        goto cleanup;
    }
    if (m.nolds == 0)
        goto cleanup;
    uint64_t old_bytes = 0;
    for (size_t i = 0; i < m.nolds && !rc; i++) {
        s_old_t *o = &m.olds [i];
        char path [4096];
        bc_path (self, path, sizeof path, o->id, o->merged ? "mdata" : "data");
        rc = bc_file_open (path, O_RDONLY, 0, NULL, &o->file);
        if (rc == 0)
            rc = bc_map_file (o->file, &o->map, &o->map_size);
        if (rc)
            bc_err (err, errlen, rc, "bitcask: merge cannot read %s: %s",
                    path, strerror (-rc));
        else
        if (o->map_size < o->size)
            rc = bc_err (err, errlen, TITAN_ECORRUPT, "bitcask: %s is shorter "
                         "than expected", path);
        old_bytes += o->size;
    }
    m.old_bytes_left = old_bytes;
    for (size_t i = 0; i < m.nolds && !rc; i++) {
        rc = s_copy_live (&m, &m.olds [i]);
        m.old_bytes_left -= m.olds [i].size;
    }
    if (rc == 0) {
        /* Keep the highest revision and applied index of the merged set. */
        uint8_t meta [BC_REC_HEADER + BC_META_VALUE];
        bc_put64 (meta + BC_REC_HEADER, m.max_applied);
        bc_put64 (meta + BC_REC_HEADER + 8, m.max_rev);
        bc_record_header (meta, BC_REC_META, 0, 0, BC_META_VALUE, m.max_rev,
                          bc_record_payload_crc (meta, 0,
                                                 meta + BC_REC_HEADER,
                                                 BC_META_VALUE));
        uint32_t id, off;
        rc = s_emit (&m, meta, sizeof meta, &id, &off);
        if (rc == 0)
            rc = s_hint_add (&m.outs [m.nouts - 1], BC_REC_META,
                             meta + BC_REC_HEADER, BC_META_VALUE, off,
                             sizeof meta, m.max_rev);
        if (rc == 0)
            rc = s_out_finish (&m, &m.outs [m.nouts - 1]);
    }
    if (rc || stop == 1)
        goto cleanup;
    /* Step 2: the commit point. */
    if ((rc = s_write_manifest (&m)))
        goto cleanup;
    committed = true;
    if (stop == 2)
        goto cleanup;
    uint32_t *ids = malloc ((m.nolds + m.nouts) * sizeof *ids);
    if (!ids) {
        rc = bc_err (err, errlen, -ENOMEM, "bitcask: out of memory");
        goto cleanup;
    }
    for (size_t i = 0; i < m.nolds; i++)
        ids [i] = m.olds [i].id;
    for (size_t i = 0; i < m.nouts; i++)
        ids [m.nolds + i] = m.outs [i].id;
    rc = s_rename_outputs (self, ids + m.nolds, m.nouts);
    if (rc) {
        bc_err (err, errlen, rc, "bitcask: merge cannot rename its outputs "
                "in %s: %s", self->dir, strerror (-rc));
        free (ids);
        goto cleanup;
    }
    if (stop == 3) {
        free (ids);
        goto cleanup;
    }
    /* Step 4: new files join the table; keys switch if unchanged. */
    uint64_t new_bytes = 0;
    pthread_rwlock_wrlock (&self->kd_lock);
    for (size_t i = 0; i < m.nouts && !rc; i++) {
        bc_dfile_t *df = calloc (1, sizeof *df);
        if (df) {
            df->id = m.outs [i].id;
            df->merged = true;
            df->hinted = true;
            df->size = m.outs [i].size;
        }
        if (!df || bc_dfile_add (self, df)) {
            free (df);
            rc = bc_err (err, errlen, -ENOMEM, "bitcask: out of memory");
            break;
        }
        new_bytes += df->size;
    }
    pthread_rwlock_unlock (&self->kd_lock);
    for (size_t i = 0; i < m.nmoves && !rc; i += SWITCH_CHUNK) {
        size_t end = i + SWITCH_CHUNK < m.nmoves ? i + SWITCH_CHUNK : m.nmoves;
        pthread_rwlock_wrlock (&self->kd_lock);
        for (size_t j = i; j < end; j++) {
            s_move_t *mv = &m.moves [j];
            bc_loc_t loc = { mv->new_id, mv->new_off, mv->size, mv->rev,
                             false };
            if (bc_keydir_switch (self->keydir, mv->hash, mv->key, mv->klen,
                                  mv->old_id, mv->old_off, &loc)) {
                bc_dfile_t *nd = bc_dfile_find (self, mv->new_id);
                bc_dfile_t *od = bc_dfile_find (self, mv->old_id);
                if (nd)
                    nd->live += mv->size;
                if (od)
                    od->live -= mv->size;
            }
        }
        pthread_rwlock_unlock (&self->kd_lock);
    }
    if (rc || stop == 4) {
        free (ids);
        goto cleanup;
    }
    /* Step 5: old files go. */
    pthread_rwlock_wrlock (&self->kd_lock);
    for (size_t i = 0; i < m.nolds; i++)
        bc_dfile_remove (self, m.olds [i].id);
    self->merges++;
    self->bytes_reclaimed += old_bytes > new_bytes ? old_bytes - new_bytes : 0;
    pthread_rwlock_unlock (&self->kd_lock);
    rc = s_remove_olds (self, ids, m.nolds, stop);
    free (ids);
    if (rc)
        bc_err (err, errlen, rc, "bitcask: merge cannot remove old files in "
                "%s: %s", self->dir, strerror (-rc));
    else {
        if (files_merged)
            *files_merged = m.nolds;
        if (bytes_reclaimed)
            *bytes_reclaimed = old_bytes > new_bytes ? old_bytes - new_bytes : 0;
    }

cleanup:
    if (rc && committed) {
        char msg [200];
        snprintf (msg, sizeof msg, "bitcask: merge in %s failed after its "
                  "commit; reopen the engine to complete it", self->dir);
        pthread_mutex_lock (&self->mu);
        if (!self->failed) {
            self->failed = rc;
            snprintf (self->failed_msg, sizeof self->failed_msg, "%s", msg);
        }
        pthread_mutex_unlock (&self->mu);
    }
    for (size_t i = 0; i < m.nouts; i++) {
        bc_file_close (&m.outs [i].file);
        free (m.outs [i].hint);
        if (rc && !committed) {
            char path [4096];
            bc_path (self, path, sizeof path, m.outs [i].id, "mdata.tmp");
            (void) unlink (path);
            bc_path (self, path, sizeof path, m.outs [i].id, "hint.tmp");
            (void) unlink (path);
        }
    }
    for (size_t i = 0; i < m.nolds; i++) {
        bc_unmap_file (m.olds [i].map, m.olds [i].map_size);
        bc_file_close (&m.olds [i].file);
    }
    free (m.olds);
    free (m.outs);
    free (m.moves);
    free (m.buf);
    pthread_mutex_unlock (&self->merge_mu);
    return rc;
}
