/*  Bitcask engine: commit queue (group commit), read path, file table.

    Group commit follows the leader/follower pattern of LevelDB's writer
    queue: a caller appends its batches to the queue; if no leader is
    active it becomes the leader, takes the whole queue, and without any
    lock held stages every batch into one buffer (assigning revisions and
    checking CAS conditions against the keydir plus the batches staged
    before it), writes the buffer with one pwrite, makes it durable with one
    fdatasync, publishes the new locations to the keydir, and finally marks
    the batches done and wakes their callers.  A caller therefore returns
    only after the fsync that covers its bytes has returned, except for
    Raft apply batches under apply_sync INTERVAL: a window made only of
    those is written and published without an fdatasync (`unsynced`), and
    the next fsync of the active file (bc_engine_sync, a later fsynced
    window, a rotation or the close) advances durable_applied to the
    applied index it covers.  Files rotate between batches, so an atomic
    group never spans two files.  */
#include "bc_internal.h"
#include "titan/crc32c.h"
#include "bc_snapshot.h"

#include "titan/status.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_BATCH_OPS 1000000u

int
bc_err (char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start (ap, fmt);
        vsnprintf (err, errlen, fmt, ap);
        va_end (ap);
    }
    return rc;
}

void
bc_path (bc_engine_t *self, char *out, size_t size, uint32_t id,
         const char *suffix)
{
    snprintf (out, size, "%s/%08u.%s", self->dir, id, suffix);
}

void
bc_options_init (bc_options_t *options)
{
    memset (options, 0, sizeof *options);
    options->max_file_bytes = 256u << 20;
    options->max_value_bytes = 8u << 20;
    options->max_open_files = 64;
    options->sync = true;
    options->apply_sync = BC_APPLY_SYNC_INTERVAL;
    options->digest_every = 1000;
}

/* ---------------------------------------------------------- file table */

bc_dfile_t *
bc_dfile_find (bc_engine_t *self, uint32_t id)
{
    size_t lo = 0, hi = self->nfiles;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (self->files [mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < self->nfiles && self->files [lo]->id == id)
        return self->files [lo];
    return NULL;
}

int
bc_dfile_add (bc_engine_t *self, bc_dfile_t *df)
{
    if (self->nfiles == self->files_cap) {
        size_t cap = self->files_cap ? self->files_cap * 2 : 16;
        bc_dfile_t **files = realloc (self->files, cap * sizeof *files);
        if (!files)
            return -ENOMEM;
        self->files = files;
        self->files_cap = cap;
    }
    size_t i = self->nfiles;
    while (i > 0 && self->files [i - 1]->id > df->id) {
        self->files [i] = self->files [i - 1];
        i--;
    }
    self->files [i] = df;
    self->nfiles++;
    return 0;
}

void
bc_dfile_free (bc_dfile_t **df_p)
{
    if (*df_p) {
        if ((*df_p)->map)
            munmap ((void *) (*df_p)->map, (*df_p)->map_len);
        bc_file_close (&(*df_p)->file);
        free (*df_p);
        *df_p = NULL;
    }
}

/* Removes and frees file `id`; caller holds kd_lock for writing. */
void
bc_dfile_remove (bc_engine_t *self, uint32_t id)
{
    for (size_t i = 0; i < self->nfiles; i++)
        if (self->files [i]->id == id) {
            bc_dfile_t *df = self->files [i];
            memmove (self->files + i, self->files + i + 1,
                     (self->nfiles - i - 1) * sizeof *self->files);
            self->nfiles--;
            pthread_mutex_lock (&self->fd_mu);
            if (df->map && df != self->active)
                self->open_files--;
            pthread_mutex_unlock (&self->fd_mu);
            bc_dfile_free (&df);
            return;
        }
}

/* Closes least recently used idle sealed files until at most `keep` are
   open; caller holds fd_mu (and kd_lock). */
static void
s_evict_locked (bc_engine_t *self, uint32_t keep)
{
    while (self->open_files > keep) {
        bc_dfile_t *victim = NULL;
        for (size_t i = 0; i < self->nfiles; i++) {
            bc_dfile_t *c = self->files [i];
            if (c->map && c != self->active && c->refs == 0
            && (!victim || c->lru < victim->lru))
                victim = c;
        }
        if (!victim)
            return;          /* all in use: exceed the bound briefly */
        munmap ((void *) victim->map, victim->map_len);
        victim->map = NULL;
        bc_file_close (&victim->file);
        self->open_files--;
    }
}

/* Returns an open file for reading df, taking a reference; caller holds
   kd_lock (read).  Evicts the least recently used idle sealed file when
   max_open_files are open. */
static int
s_acquire (bc_engine_t *self, bc_dfile_t *df, const uint8_t **map_p)
{
    pthread_mutex_lock (&self->fd_mu);
    df->lru = ++self->lru_tick;
    if (!df->map) {
        s_evict_locked (self, self->opt.max_open_files - 1);
        char path [4096];
        bc_path (self, path, sizeof path, df->id, df->merged ? "mdata" : "data");
        bc_file_t *file;
        int rc = bc_file_open (path, O_RDONLY, 0, NULL, &file);
        /* a file cut short under us would fault the mapping: refuse it */
        int64_t have = rc == 0 ? bc_file_size (file) : 0;
        if (rc == 0 && have >= 0 && (uint64_t) have < df->size) {
            bc_file_close (&file);
            rc = TITAN_ECORRUPT;
        }
        if (rc == 0) {
            void *map = mmap (NULL, df->size ? df->size : 1, PROT_READ,
                              MAP_SHARED, bc_file_fd (file), 0);
            if (map == MAP_FAILED)
                rc = -errno;
            else {
                df->map = map;
                df->map_len = df->size ? df->size : 1;
            }
            bc_file_close (&file);     /* the mapping keeps the data */
        }
        if (rc) {
            pthread_mutex_unlock (&self->fd_mu);
            return rc;
        }
        self->open_files++;
    }
    df->refs++;
    *map_p = df->map;
    pthread_mutex_unlock (&self->fd_mu);
    return 0;
}

void
bc_dfile_prealloc (bc_engine_t *self, bc_dfile_t *df, uint64_t end)
{
    if (end <= df->allocated)
        return;
    uint64_t want = end + BC_PREALLOC_STEP;
    if (want > self->opt.max_file_bytes)
        want = self->opt.max_file_bytes > end ? self->opt.max_file_bytes : end;
    if (bc_file_allocate (df->file, want) == 0)
        df->allocated = want;
}

int
bc_dfile_map_active (bc_engine_t *self, bc_dfile_t *df)
{
    size_t len = df->size > self->opt.max_file_bytes
               ? df->size : self->opt.max_file_bytes;
    void *map = mmap (NULL, len, PROT_READ, MAP_SHARED,
                      bc_file_fd (df->file), 0);
    if (map == MAP_FAILED)
        return -errno;
    df->map = map;
    df->map_len = len;
    return 0;
}

static void
s_release (bc_engine_t *self, bc_dfile_t *df)
{
    pthread_mutex_lock (&self->fd_mu);
    df->refs--;
    pthread_mutex_unlock (&self->fd_mu);
}

/* ---------------------------------------------------------- open/close */

/* Adds a key's contribution to the digest being recomputed at open. */
static void
s_digest_add (const uint8_t *key, size_t len, const bc_loc_t *loc, void *arg)
{
    *(uint64_t *) arg += bc_digest_entry (key, len, loc->revision, loc->size);
}

int
bc_engine_open (const char *dir, const bc_options_t *options,
                bc_engine_t **engine_p, char *err, size_t errlen)
{
    *engine_p = NULL;
    bc_options_t opt;
    if (options)
        opt = *options;
    else
        bc_options_init (&opt);
    if (opt.max_file_bytes < 4096 || opt.max_file_bytes > 0xF0000000ull)
        return bc_err (err, errlen, -EINVAL,
                       "bitcask: max_file_bytes %llu out of range 4096..%llu",
                       (unsigned long long) opt.max_file_bytes,
                       (unsigned long long) 0xF0000000ull);
    if (opt.max_value_bytes > BC_VALUE_HARD_MAX)
        return bc_err (err, errlen, -EINVAL,
                       "bitcask: max_value_bytes %u above the limit %u",
                       opt.max_value_bytes, BC_VALUE_HARD_MAX);
    if (opt.max_open_files < 1)
        return bc_err (err, errlen, -EINVAL,
                       "bitcask: max_open_files must be at least 1");
    if (opt.apply_sync != BC_APPLY_SYNC_INTERVAL
    &&  opt.apply_sync != BC_APPLY_SYNC_ALWAYS)
        return bc_err (err, errlen, -EINVAL,
                       "bitcask: apply_sync %d is neither interval nor always",
                       (int) opt.apply_sync);
    /* A restore interrupted by a crash is finished or undone first. */
    int rrc = bc_snapshot_recover (dir, opt.fault, false, err, errlen);
    if (rrc)
        return rrc;
    if (mkdir (dir, 0755) != 0 && errno != EEXIST)
        return bc_err (err, errlen, -errno, "bitcask: cannot create %s: %s",
                       dir, strerror (errno));

    bc_engine_t *self = calloc (1, sizeof *self);
    if (!self)
        return bc_err (err, errlen, -ENOMEM, "bitcask: out of memory");
    self->opt = opt;
    self->dir = strdup (dir);
    self->keydir = bc_keydir_new ();
    pthread_mutex_init (&self->merge_mu, NULL);
    pthread_mutex_init (&self->mu, NULL);
    pthread_cond_init (&self->cond, NULL);
    pthread_mutex_init (&self->fd_mu, NULL);
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init (&attr);
    pthread_rwlockattr_setkind_np (&attr,
        PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init (&self->kd_lock, &attr);
    pthread_rwlockattr_destroy (&attr);
    if (!self->dir || !self->keydir) {
        bc_engine_destroy (&self);
        return bc_err (err, errlen, -ENOMEM, "bitcask: out of memory");
    }
    int rc = bc_load (self, err, errlen);
    /* What a killed predecessor wrote may sit unsynced in the page cache:
       sync it once, so that the durable applied index starts true. */
    if (rc == 0 && opt.sync && self->active->size
    &&  (rc = bc_file_sync (self->active->file)))
        bc_err (err, errlen, rc, "bitcask: fdatasync of %s failed: %s",
                bc_file_path (self->active->file), strerror (-rc));
    if (rc) {
        self->failed = rc;     /* no hint writing on the way out */
        bc_engine_destroy (&self);
        return rc;
    }
    self->durable_applied = self->applied_index;
    uint64_t sum = 0;
    bc_keydir_foreach (self->keydir, s_digest_add, &sum);
    bc_digest_reset (&self->digest, opt.digest_every, sum, self->applied_index);
    *engine_p = self;
    return 0;
}

void
bc_engine_destroy (bc_engine_t **self_p)
{
    if (!*self_p)
        return;
    bc_engine_t *self = *self_p;
    pthread_mutex_lock (&self->merge_mu);
    pthread_mutex_lock (&self->mu);
    self->closing = true;
    while (self->leader || self->queue_head)
        pthread_cond_wait (&self->cond, &self->mu);
    int failed = self->failed;
    pthread_mutex_unlock (&self->mu);
    /* A clean close leaves the active file at its exact length. */
    if (!failed && self->active && self->active->file
    &&  bc_file_truncate (self->active->file, self->active->size) == 0
    &&  self->opt.sync)
        (void) bc_file_sync (self->active->file);
    /* Hints make the next open fast; failures only cost a scan then. */
    if (!failed)
        for (size_t i = 0; i < self->nfiles; i++) {
            bc_dfile_t *df = self->files [i];
            if (df != self->active && !df->hinted)
                (void) bc_write_hint (self, df, NULL, 0);
        }
    for (size_t i = 0; i < self->nfiles; i++)
        bc_dfile_free (&self->files [i]);
    free (self->files);
    bc_keydir_destroy (&self->keydir);
    free (self->wbuf);
    pthread_mutex_unlock (&self->merge_mu);
    pthread_rwlock_destroy (&self->kd_lock);
    pthread_mutex_destroy (&self->fd_mu);
    pthread_cond_destroy (&self->cond);
    pthread_mutex_destroy (&self->mu);
    pthread_mutex_destroy (&self->merge_mu);
    free (self->dir);
    free (self);
    *self_p = NULL;
}

const char *
bc_engine_dir (bc_engine_t *self)
{
    return self->dir;
}

/* ---------------------------------------------------------- commit */

/* Fails the engine (never un-failed); caller holds mu. */
static void
s_fail_locked (bc_engine_t *self, int rc, const char *msg)
{
    if (!self->failed) {
        self->failed = rc;
        snprintf (self->failed_msg, sizeof self->failed_msg, "%s", msg);
    }
}

static void
s_fail (bc_engine_t *self, int rc, const char *msg)
{
    pthread_mutex_lock (&self->mu);
    s_fail_locked (self, rc, msg);
    pthread_mutex_unlock (&self->mu);
}

/* Everything written so far is durable (after an fdatasync of the active
   file, or a seal); leader only. */
static void
s_note_durable (bc_engine_t *self)
{
    __atomic_store_n (&self->unsynced, false, __ATOMIC_RELAXED);
    __atomic_store_n (&self->durable_applied, self->applied_index,
                      __ATOMIC_RELAXED);
}

static int
s_reserve (bc_engine_t *self, size_t need)
{
    if (need <= self->wcap)
        return 0;
    size_t cap = self->wcap ? self->wcap : 64 * 1024;
    while (cap < need)
        cap *= 2;
    uint8_t *buf = realloc (self->wbuf, cap);
    if (!buf)
        return -ENOMEM;
    self->wbuf = buf;
    self->wcap = cap;
    return 0;
}

/* Upper bound of the bytes a batch may write. */
static uint64_t
s_batch_bound (const bc_batch_t *b)
{
    uint64_t n = b->applied_index ? BC_REC_HEADER + BC_META_VALUE : 0;
    for (size_t i = 0; i < b->n_ops; i++)
        n += BC_REC_HEADER + b->ops [i].key_len + b->ops [i].value_len;
    return n;
}

/* A staging window: the batches written by one pwrite + fdatasync. */
typedef struct {
    bc_batch_t **batches;
    size_t n, cap;
    size_t pos;                   /* bytes staged in wbuf */
    uint64_t saved_revision;      /* to undo on a failed write */
    uint64_t saved_applied;
} s_window_t;

/* The key's current state as the leader sees it: the batches staged in
   this window (latest first), then the keydir. */
static bool
s_current (bc_engine_t *self, s_window_t *w, bc_batch_t *cur, size_t upto,
           const bc_op_t *op, uint64_t *rev_p)
{
    for (size_t i = upto; i-- > 0; ) {
        const bc_op_t *o = &cur->ops [i];
        if (o->type_ && o->hash_ == op->hash_ && o->key_len == op->key_len
        &&  memcmp (o->key, op->key, op->key_len) == 0) {
            *rev_p = o->revision;
            return o->type_ == BC_REC_PUT;
        }
    }
    for (size_t b = w->n; b-- > 0; ) {
        bc_batch_t *batch = w->batches [b];
        for (size_t i = batch->n_ops; i-- > 0; ) {
            const bc_op_t *o = &batch->ops [i];
            if (o->type_ && o->hash_ == op->hash_ && o->key_len == op->key_len
            &&  memcmp (o->key, op->key, op->key_len) == 0) {
                *rev_p = o->revision;
                return o->type_ == BC_REC_PUT;
            }
        }
    }
    bc_loc_t loc;
    pthread_rwlock_rdlock (&self->kd_lock);
    bool found = bc_keydir_get (self->keydir, op->hash_, op->key,
                                op->key_len, &loc);
    pthread_rwlock_unlock (&self->kd_lock);
    *rev_p = found ? loc.revision : 0;
    return found;
}

/* Stages batch b at the end of the window: decides every op's outcome,
   assigns revisions and encodes its records into wbuf. */
static int
s_stage (bc_engine_t *self, s_window_t *w, bc_batch_t *b)
{
    if (b->applied_index && b->applied_index <= self->applied_index) {
        b->status = -EALREADY;
        for (size_t i = 0; i < b->n_ops; i++) {
            b->ops [i].status = -EALREADY;
            b->ops [i].revision = b->first_revision ? b->first_revision + i : 0;
        }
        return 0;
    }
    int rc = s_reserve (self, w->pos + s_batch_bound (b));
    if (rc)
        return rc;
    uint64_t base = self->active->size;
    size_t pos = w->pos;
    uint8_t *last_header = NULL;
    uint8_t last_type = 0;
    uint32_t last_crc = 0;
    uint16_t last_klen = 0;
    uint32_t last_vlen = 0;
    uint64_t last_rev = 0;
    for (size_t i = 0; i < b->n_ops; i++) {
        bc_op_t *op = &b->ops [i];
        op->type_ = 0;
        uint64_t rev;
        uint8_t type;
        if (op->kind == BC_OP_REPAIR || op->kind == BC_OP_REPAIR_DELETE) {
            /* rewrites the key's record at its own revision, only while the
               keydir still holds that revision; revisions do not advance */
            uint64_t cur_rev = 0;
            bool exists = s_current (self, w, b, i, op, &cur_rev);
            rev = op->revision = op->expected_revision;
            if (!exists || cur_rev != op->expected_revision) {
                op->status = TITAN_EMISMATCH;
                op->current_revision = exists ? cur_rev : 0;
                continue;
            }
            type = op->kind == BC_OP_REPAIR ? BC_REC_PUT : BC_REC_DELETE;
        }
        else {
            rev = b->first_revision ? b->first_revision + i
                                             : self->last_revision + 1;
            op->revision = rev;
            if (rev <= self->last_revision) {
                op->status = -EALREADY;
                continue;
            }
            __atomic_store_n (&self->last_revision, rev, __ATOMIC_RELAXED);
            uint64_t cur_rev = 0;
            bool exists = op->kind != BC_OP_PUT
                       && s_current (self, w, b, i, op, &cur_rev);
            if (op->kind == BC_OP_DELETE) {
                op->existed = exists;
                if (!exists)
                    continue;
                type = BC_REC_DELETE;
            }
            else {
                if (op->kind == BC_OP_CAS
                && (op->expect_absent
                    ? exists : (!exists || cur_rev != op->expected_revision))) {
                    op->status = TITAN_EMISMATCH;
                    op->current_revision = exists ? cur_rev : 0;
                    continue;
                }
                type = BC_REC_PUT;
            }
        }
        if (last_header)   /* the previous record is not the group's last */
            bc_record_header (last_header, last_type, BC_RECF_MORE, last_klen,
                              last_vlen, last_rev, last_crc);
        uint32_t vlen = type == BC_REC_PUT ? (uint32_t) op->value_len : 0;
        uint32_t crc = type == BC_REC_PUT ? op->crc_
                     : bc_record_payload_crc (op->key, op->key_len, NULL, 0);
        uint8_t *h = self->wbuf + pos;
        bc_record_header (h, type, 0, (uint16_t) op->key_len, vlen, rev, crc);
        memcpy (h + BC_REC_HEADER, op->key, op->key_len);
        if (vlen)
            memcpy (h + BC_REC_HEADER + op->key_len, op->value, vlen);
        op->type_ = type;
        op->offset_ = (uint32_t) (base + pos);
        op->size_ = (uint32_t) (BC_REC_HEADER + op->key_len + vlen);
        pos += op->size_;
        last_header = h;
        last_type = type;
        last_crc = crc;
        last_klen = (uint16_t) op->key_len;
        last_vlen = vlen;
        last_rev = rev;
    }
    if (b->applied_index) {
        if (last_header)
            bc_record_header (last_header, last_type, BC_RECF_MORE, last_klen,
                              last_vlen, last_rev, last_crc);
        uint8_t v [BC_META_VALUE];
        bc_put64 (v, b->applied_index);
        bc_put64 (v + 8, self->last_revision);
        uint8_t *h = self->wbuf + pos;
        memcpy (h + BC_REC_HEADER, v, sizeof v);
        bc_record_header (h, BC_REC_META, 0, 0, BC_META_VALUE,
                          self->last_revision,
                          bc_record_payload_crc (v, 0, v, sizeof v));
        pos += BC_REC_HEADER + BC_META_VALUE;
        __atomic_store_n (&self->applied_index, b->applied_index,
                          __ATOMIC_RELAXED);
    }
    w->pos = pos;
    b->file_id_ = self->active->id;
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        bc_batch_t **bs = realloc (w->batches, cap * sizeof *bs);
        if (!bs)
            return -ENOMEM;
        w->batches = bs;
        w->cap = cap;
    }
    w->batches [w->n++] = b;
    return 0;
}

/* Publishes the window's records to the keydir (after their fsync). */
static int
s_publish (bc_engine_t *self, s_window_t *w)
{
    int rc = 0;
    bc_dfile_t *df = self->active;
    /* the running CRC of the file, so a snapshot need not read it again */
    uint32_t crc = df->crc_known ? titan_crc32c (df->crc, self->wbuf, w->pos)
                                 : 0;
    pthread_rwlock_wrlock (&self->kd_lock);
    df->crc = crc;
    df->size += w->pos;
    bc_digest_t *dg = &self->digest;
    for (size_t b = 0; b < w->n; b++) {
        bc_batch_t *batch = w->batches [b];
        for (size_t i = 0; i < batch->n_ops; i++) {
            bc_op_t *op = &batch->ops [i];
            bc_loc_t old;
            int r = 0;
            bool had = false;
            if (op->type_ && batch->applied_index && op->revision)
                bc_digest_advance (dg, op->revision - 1);
            if (op->type_ == BC_REC_PUT) {
                bc_loc_t loc = { df->id, op->offset_, op->size_,
                                 op->revision, false };
                r = bc_keydir_put (self->keydir, op->hash_, op->key,
                                   op->key_len, &loc, &old);
                if (r >= 0) {
                    df->live += op->size_;
                    dg->sum += bc_digest_entry (op->key, op->key_len,
                                                op->revision, op->size_);
                }
                had = r == 1;
            }
            else
            if (op->type_ == BC_REC_DELETE)
                had = bc_keydir_delete (self->keydir, op->hash_, op->key,
                                        op->key_len, &old);
            if (had) {
                bc_dfile_t *odf = bc_dfile_find (self, old.file_id);
                if (odf)
                    odf->live -= old.size;
                dg->sum -= bc_digest_entry (op->key, op->key_len,
                                            old.revision, old.size);
            }
            if (r < 0 && !rc)
                rc = r;
        }
        if (batch->applied_index && batch->status != -EALREADY)
            bc_digest_advance (dg, batch->applied_index);
    }
    pthread_rwlock_unlock (&self->kd_lock);
    return rc;
}

static void
s_window_fail (s_window_t *w, int rc, const char *msg)
{
    for (size_t b = 0; b < w->n; b++) {
        w->batches [b]->status = rc;
        snprintf (w->batches [b]->message, sizeof w->batches [b]->message,
                  "%s", msg);
    }
}

/* fdatasyncs `file`, the active file (or the one being sealed), which
   makes every batch written so far durable; leader only.  A failure fails
   the engine (never retried) and returns the error with its message in
   msg. */
static int
s_sync_active (bc_engine_t *self, bc_file_t *file, char *msg, size_t msglen)
{
    uint64_t sync_start = titan_mono_us ();
    int rc = bc_file_sync (file);
    titan_hist_observe (&self->fsync_hist, titan_mono_us () - sync_start);
    if (rc) {
        snprintf (msg, msglen, "bitcask: fdatasync of %s failed: %s; the "
                  "engine is failed until reopened", bc_file_path (file),
                  strerror (-rc));
        s_fail (self, rc, msg);
        return rc;
    }
    __atomic_add_fetch (&self->syncs, 1, __ATOMIC_RELAXED);
    s_note_durable (self);
    return 0;
}

/* Whether the window must be durable before its callers return: any
   batch but a Raft apply under apply_sync INTERVAL needs its fsync. */
static bool
s_window_needs_sync (bc_engine_t *self, const s_window_t *w)
{
    if (self->opt.apply_sync == BC_APPLY_SYNC_ALWAYS)
        return true;
    for (size_t b = 0; b < w->n; b++)
        if (!w->batches [b]->applied_index)
            return true;
    return false;
}

/* Writes, syncs (when the window needs it) and publishes the window.  On
   failure the window's batches fail; a failed fsync also fails the
   engine. */
static int
s_flush (bc_engine_t *self, s_window_t *w)
{
    char msg [200];
    int rc = 0;
    if (w->pos) {
        bc_dfile_t *df = self->active;
        bc_dfile_prealloc (self, df, df->size + w->pos);
        rc = bc_file_pwrite (df->file, self->wbuf, w->pos, df->size);
        if (rc) {
            snprintf (msg, sizeof msg, "bitcask: write of %zu bytes to %s "
                      "at offset %llu failed: %s", w->pos,
                      bc_file_path (df->file), (unsigned long long) df->size,
                      strerror (-rc));
            int trc = bc_file_truncate (df->file, df->size);
            df->allocated = df->size;
            if (trc) {
                char fmsg [200];
                snprintf (fmsg, sizeof fmsg, "bitcask: cannot undo a failed "
                          "write to %s: %s; reopen the engine",
                          bc_file_path (df->file), strerror (-trc));
                s_fail (self, rc, fmsg);
            }
            __atomic_store_n (&self->last_revision, w->saved_revision,
                              __ATOMIC_RELAXED);
            __atomic_store_n (&self->applied_index, w->saved_applied,
                              __ATOMIC_RELAXED);
            s_window_fail (w, rc, msg);
            goto done;
        }
        __atomic_store_n (&self->unsynced, true, __ATOMIC_RELAXED);
        if (!self->opt.sync)
            s_note_durable (self);       /* sync = 0 claims no durability */
        else
        if (s_window_needs_sync (self, w)
        &&  (rc = s_sync_active (self, df->file, msg, sizeof msg))) {
            s_window_fail (w, rc, msg);
            goto done;
        }
        __atomic_add_fetch (&self->commits, 1, __ATOMIC_RELAXED);
    }
    rc = s_publish (self, w);
    if (rc) {
        snprintf (msg, sizeof msg, "bitcask: keydir out of memory in %s; "
                  "the engine is failed until reopened", self->dir);
        s_fail (self, rc, msg);
        s_window_fail (w, rc, msg);
    }
    __atomic_add_fetch (&self->batches, w->n, __ATOMIC_RELAXED);
done:
    w->n = 0;
    w->pos = 0;
    w->saved_revision = self->last_revision;
    w->saved_applied = self->applied_index;
    return rc;
}

/* Seals the active file and opens the next one; leader only. */
static int
s_rotate (bc_engine_t *self, char *msg, size_t msglen)
{
    /* Seal: cut the preallocated tail so the sealed file is exact. */
    bc_dfile_t *old = self->active;
    int trc = bc_file_truncate (old->file, old->size);
    old->allocated = old->size;
    if (trc)
        return bc_err (msg, msglen, trc, "bitcask: cannot seal %s: %s",
                       bc_file_path (old->file), strerror (-trc));
    if (self->opt.sync && (trc = s_sync_active (self, old->file, msg, msglen)))
        return trc;
    s_note_durable (self);
    pthread_rwlock_wrlock (&self->kd_lock);
    uint32_t id = self->next_id++;
    pthread_rwlock_unlock (&self->kd_lock);
    char path [4096];
    bc_path (self, path, sizeof path, id, "data");
    bc_dfile_t *df = calloc (1, sizeof *df);
    if (!df)
        return bc_err (msg, msglen, -ENOMEM, "bitcask: out of memory");
    df->id = id;
    df->crc_known = true;        /* empty: CRC 0, kept as it grows */
    int rc = bc_file_open (path, O_RDWR | O_CREAT | O_EXCL, 0644,
                           self->opt.fault, &df->file);
    if (rc == 0)
        bc_dfile_prealloc (self, df, 1);
    if (rc == 0 && (rc = bc_dfile_map_active (self, df))) {
        bc_file_close (&df->file);
        (void) unlink (path);
    }
    if (rc) {
        free (df);
        return bc_err (msg, msglen, rc, "bitcask: cannot create %s: %s",
                       path, strerror (-rc));
    }
    rc = bc_file_sync_dir (self->opt.fault, self->dir);
    if (rc) {
        bc_dfile_free (&df);
        (void) unlink (path);
        return bc_err (msg, msglen, rc, "bitcask: fsync of directory %s "
                       "failed: %s", self->dir, strerror (-rc));
    }
    pthread_rwlock_wrlock (&self->kd_lock);
    rc = bc_dfile_add (self, df);
    if (rc == 0) {
        pthread_mutex_lock (&self->fd_mu);
        self->open_files++;     /* the old active joins the sealed files */
        self->active = df;
        s_evict_locked (self, self->opt.max_open_files);
        pthread_mutex_unlock (&self->fd_mu);
        self->active = df;
        self->active_id = id;
    }
    pthread_rwlock_unlock (&self->kd_lock);
    if (rc) {
        bc_dfile_free (&df);
        return bc_err (msg, msglen, rc, "bitcask: out of memory");
    }
    return 0;
}

/* The leader's work on one group of batches. */
static void
s_commit (bc_engine_t *self, bc_batch_t *group)
{
    s_window_t w = { NULL, 0, 0, 0, self->last_revision, self->applied_index };
    char msg [200];
    for (bc_batch_t *b = group; b; b = b->next_) {
        pthread_mutex_lock (&self->mu);
        int failed = self->failed;
        if (failed)
            snprintf (b->message, sizeof b->message, "%s", self->failed_msg);
        pthread_mutex_unlock (&self->mu);
        if (failed) {
            b->status = failed;
            continue;
        }
        if (b->sync_) {
            /* everything staged before it, then the whole file */
            int rc = s_flush (self, &w);
            if (rc == 0 && self->unsynced && self->opt.sync)
                rc = s_sync_active (self, self->active->file, b->message,
                                    sizeof b->message);
            else
            if (rc)
                snprintf (b->message, sizeof b->message, "bitcask: sync "
                          "skipped after a failed commit");
            b->status = rc;
            continue;
        }
        uint64_t bound = s_batch_bound (b);
        if (b->rotate_
        || (self->active->size + w.pos + bound > self->opt.max_file_bytes
            && self->active->size + w.pos > 0)) {
            if (s_flush (self, &w) && b->rotate_) {
                b->status = -EIO;
                snprintf (b->message, sizeof b->message,
                          "bitcask: rotation skipped after a failed commit");
                continue;
            }
            int rc = (self->active->size || b->rotate_)
                   ? s_rotate (self, msg, sizeof msg) : 0;
            if (rc) {
                /* The old file stays active; later batches may still fit. */
                b->status = rc;
                snprintf (b->message, sizeof b->message, "%s", msg);
                continue;
            }
            if (b->rotate_) {
                /* Everything staged so far was flushed into the sealed
                   files: this is the state a snapshot covers. */
                b->sealed_applied_ = self->applied_index;
                b->sealed_revision_ = self->last_revision;
                b->sealed_active_ = self->active_id;
                continue;
            }
        }
        int rc = s_stage (self, &w, b);
        if (rc) {
            b->status = rc;
            snprintf (b->message, sizeof b->message,
                      "bitcask: out of memory staging a batch");
        }
    }
    (void) s_flush (self, &w);
    free (w.batches);
}

static int
s_validate (bc_engine_t *self, bc_batch_t *b)
{
    b->status = 0;
    b->message [0] = 0;
    if (b->n_ops > MAX_BATCH_OPS)
        return b->status = bc_err (b->message, sizeof b->message, TITAN_ETOOBIG,
                                   "bitcask: batch of %zu ops exceeds %u",
                                   b->n_ops, MAX_BATCH_OPS);
    uint64_t bytes = 0;
    for (size_t i = 0; i < b->n_ops; i++) {
        bc_op_t *op = &b->ops [i];
        op->status = 0;
        op->revision = op->current_revision = 0;
        op->existed = false;
        op->type_ = 0;
        if (op->kind != BC_OP_PUT && op->kind != BC_OP_DELETE
        &&  op->kind != BC_OP_CAS && op->kind != BC_OP_REPAIR
        &&  op->kind != BC_OP_REPAIR_DELETE)
            return b->status = bc_err (b->message, sizeof b->message, -EINVAL,
                                       "bitcask: op %zu has unknown kind %d",
                                       i, (int) op->kind);
        if (op->key_len == 0 || op->key_len > BC_KEY_MAX || !op->key)
            return b->status = bc_err (b->message, sizeof b->message, -EINVAL,
                                       "bitcask: op %zu: key length %zu not in "
                                       "1..%u", i, op->key_len, BC_KEY_MAX);
        if ((op->kind == BC_OP_REPAIR || op->kind == BC_OP_REPAIR_DELETE)
        &&  (op->expected_revision == 0 || b->first_revision
             || b->applied_index))
            return b->status = bc_err (b->message, sizeof b->message, -EINVAL,
                                       "bitcask: op %zu: a repair names the "
                                       "revision it rewrites, in a batch "
                                       "without revisions", i);
        if (op->kind != BC_OP_DELETE && op->kind != BC_OP_REPAIR_DELETE) {
            if (op->value_len > self->opt.max_value_bytes)
                return b->status = bc_err (b->message, sizeof b->message,
                    TITAN_ETOOBIG, "bitcask: op %zu: value of %zu bytes "
                    "exceeds max_value_bytes %u", i, op->value_len,
                    self->opt.max_value_bytes);
            if (op->value_len && !op->value)
                return b->status = bc_err (b->message, sizeof b->message,
                    -EINVAL, "bitcask: op %zu: NULL value", i);
            op->crc_ = bc_record_payload_crc (op->key, op->key_len,
                                              op->value, op->value_len);
        }
        op->hash_ = bc_keydir_hash (op->key, op->key_len);
        bytes += BC_REC_HEADER + op->key_len + op->value_len;
    }
    if (bytes + BC_REC_HEADER + BC_META_VALUE > self->opt.max_file_bytes)
        return b->status = bc_err (b->message, sizeof b->message, TITAN_ETOOBIG,
                                   "bitcask: batch of %llu bytes exceeds "
                                   "max_file_bytes %llu",
                                   (unsigned long long) bytes,
                                   (unsigned long long) self->opt.max_file_bytes);
    if (b->first_revision && b->n_ops
    &&  b->first_revision + b->n_ops < b->first_revision)
        return b->status = bc_err (b->message, sizeof b->message, -EINVAL,
                                   "bitcask: revision overflow");
    return 0;
}

int
bc_engine_submit (bc_engine_t *self, bc_batch_t **batches, size_t n)
{
    size_t queued = 0;
    for (size_t i = 0; i < n; i++) {
        bc_batch_t *b = batches [i];
        b->done_ = false;
        b->next_ = NULL;
        if (!b->rotate_ && !b->sync_ && s_validate (self, b))
            b->done_ = true;
        else
            queued++;
    }
    /* Each caller sleeps on its own condition: a finished group wakes its
       own callers and the next leader only, not every waiting writer. */
    pthread_cond_t cv;
    pthread_cond_init (&cv, NULL);
    pthread_mutex_lock (&self->mu);
    for (size_t i = 0; i < n; i++) {
        bc_batch_t *b = batches [i];
        b->waiter_ = &cv;
        if (b->done_)
            continue;
        if (self->failed || self->closing) {
            b->status = self->failed ? self->failed : TITAN_ECLOSED;
            snprintf (b->message, sizeof b->message, "%s",
                      self->failed ? self->failed_msg
                                   : "bitcask: engine is closing");
            b->done_ = true;
            queued--;
            continue;
        }
        if (self->queue_tail)
            self->queue_tail->next_ = b;
        else
            self->queue_head = b;
        self->queue_tail = b;
    }
    for (;;) {
        bool all = true;
        for (size_t i = 0; i < n && all; i++)
            all = batches [i]->done_;
        if (all)
            break;
        if (!self->leader) {
            bc_batch_t *group = self->queue_head;
            self->queue_head = self->queue_tail = NULL;
            self->leader = true;
            pthread_mutex_unlock (&self->mu);
            s_commit (self, group);
            pthread_mutex_lock (&self->mu);
            for (bc_batch_t *b = group; b; ) {
                bc_batch_t *next = b->next_;
                b->next_ = NULL;
                b->done_ = true;
                if (b->waiter_ != &cv)
                    pthread_cond_signal (b->waiter_);
                b = next;
            }
            self->leader = false;
            if (self->queue_head)          /* hand over the lead */
                pthread_cond_signal (self->queue_head->waiter_);
            pthread_cond_broadcast (&self->cond);   /* bc_engine_destroy */
        }
        else
            pthread_cond_wait (&cv, &self->mu);
    }
    pthread_mutex_unlock (&self->mu);
    pthread_cond_destroy (&cv);
    for (size_t i = 0; i < n; i++)
        if (batches [i]->status < 0 && batches [i]->status != -EALREADY)
            return batches [i]->status;
    return 0;
}

static int
s_single (bc_engine_t *self, bc_op_t *op, uint64_t revision,
          uint64_t *rev_out, char *err, size_t errlen)
{
    bc_batch_t b;
    memset (&b, 0, sizeof b);
    b.ops = op;
    b.n_ops = 1;
    b.first_revision = revision;
    bc_batch_t *bp = &b;
    int rc = bc_engine_submit (self, &bp, 1);
    if (rc)
        return bc_err (err, errlen, rc, "%s", b.message);
    if (rev_out)
        *rev_out = op->status == TITAN_EMISMATCH ? op->current_revision
                                                 : op->revision;
    if (op->status == TITAN_EMISMATCH)
        return bc_err (err, errlen, TITAN_EMISMATCH,
                       "bitcask: compare-and-swap failed: current revision "
                       "%llu", (unsigned long long) op->current_revision);
    if (op->status == -EALREADY)
        return bc_err (err, errlen, -EALREADY, "bitcask: revision %llu "
                       "already applied", (unsigned long long) op->revision);
    if (op->kind == BC_OP_DELETE && !op->existed)
        return bc_err (err, errlen, TITAN_ENOTFOUND, "bitcask: key not found");
    return 0;
}

int
bc_engine_put (bc_engine_t *self, const void *key, size_t key_len,
               const void *value, size_t value_len, uint64_t revision,
               uint64_t *rev_out, char *err, size_t errlen)
{
    bc_op_t op;
    memset (&op, 0, sizeof op);
    op.kind = BC_OP_PUT;
    op.key = key;
    op.key_len = key_len;
    op.value = value;
    op.value_len = value_len;
    return s_single (self, &op, revision, rev_out, err, errlen);
}

int
bc_engine_delete (bc_engine_t *self, const void *key, size_t key_len,
                  uint64_t revision, uint64_t *rev_out,
                  char *err, size_t errlen)
{
    bc_op_t op;
    memset (&op, 0, sizeof op);
    op.kind = BC_OP_DELETE;
    op.key = key;
    op.key_len = key_len;
    return s_single (self, &op, revision, rev_out, err, errlen);
}

int
bc_engine_cas (bc_engine_t *self, const void *key, size_t key_len,
               const void *value, size_t value_len,
               uint64_t expected_revision, bool expect_absent,
               uint64_t revision, uint64_t *rev_out, char *err, size_t errlen)
{
    bc_op_t op;
    memset (&op, 0, sizeof op);
    op.kind = BC_OP_CAS;
    op.key = key;
    op.key_len = key_len;
    op.value = value;
    op.value_len = value_len;
    op.expected_revision = expected_revision;
    op.expect_absent = expect_absent;
    return s_single (self, &op, revision, rev_out, err, errlen);
}

int
bc_engine_repair (bc_engine_t *self, const void *key, size_t key_len,
                  const void *value, size_t value_len, uint64_t revision,
                  bool deleted, char *err, size_t errlen)
{
    bc_op_t op;
    memset (&op, 0, sizeof op);
    op.kind = deleted ? BC_OP_REPAIR_DELETE : BC_OP_REPAIR;
    op.key = key;
    op.key_len = key_len;
    op.value = deleted ? NULL : value;
    op.value_len = deleted ? 0 : value_len;
    op.expected_revision = revision;
    int rc = s_single (self, &op, 0, NULL, err, errlen);
    if (rc == TITAN_EMISMATCH) {
        __atomic_add_fetch (&self->repairs_refused, 1, __ATOMIC_RELAXED);
        if (!op.current_revision)
            return bc_err (err, errlen, TITAN_EMISMATCH, "bitcask: repair "
                           "of revision %llu refused: the key is absent",
                           (unsigned long long) revision);
        return bc_err (err, errlen, TITAN_EMISMATCH, "bitcask: repair of "
                       "revision %llu refused: the key is at revision %llu",
                       (unsigned long long) revision,
                       (unsigned long long) op.current_revision);
    }
    if (rc == 0)
        __atomic_add_fetch (&self->repairs, 1, __ATOMIC_RELAXED);
    return rc;
}

int
bc_engine_apply_batch (bc_engine_t *self, bc_op_t *ops, size_t n_ops,
                       uint64_t first_revision, uint64_t applied_index,
                       char *err, size_t errlen)
{
    bc_batch_t b;
    memset (&b, 0, sizeof b);
    b.ops = ops;
    b.n_ops = n_ops;
    b.first_revision = first_revision;
    b.applied_index = applied_index;
    bc_batch_t *bp = &b;
    int rc = bc_engine_submit (self, &bp, 1);
    if (rc)
        return bc_err (err, errlen, rc, "%s", b.message);
    return b.status == -EALREADY
         ? bc_err (err, errlen, -EALREADY, "bitcask: applied index %llu "
                   "already stored", (unsigned long long) applied_index)
         : 0;
}

/* Submits a control batch without ops (a rotation or a sync) filled in by
   the caller; its status, with the message in err. */
static int
s_submit_control (bc_engine_t *self, bc_batch_t *b, char *err, size_t errlen)
{
    bc_batch_t *bp = b;
    int rc = bc_engine_submit (self, &bp, 1);
    return rc ? bc_err (err, errlen, rc, "%s", b->message) : 0;
}

int
bc_engine_rotate (bc_engine_t *self, char *err, size_t errlen)
{
    bc_batch_t b;
    memset (&b, 0, sizeof b);
    b.rotate_ = true;
    return s_submit_control (self, &b, err, errlen);
}

int
bc_engine_sync (bc_engine_t *self, char *err, size_t errlen)
{
    bc_batch_t b;
    memset (&b, 0, sizeof b);
    b.sync_ = true;
    return s_submit_control (self, &b, err, errlen);
}

bool
bc_engine_unsynced (bc_engine_t *self)
{
    return __atomic_load_n (&self->unsynced, __ATOMIC_RELAXED);
}

int
bc_engine_seal (bc_engine_t *self, uint64_t *applied_index,
                uint64_t *last_revision, uint32_t *active_id,
                char *err, size_t errlen)
{
    bc_batch_t b;
    memset (&b, 0, sizeof b);
    b.rotate_ = true;
    int rc = s_submit_control (self, &b, err, errlen);
    if (rc)
        return rc;
    *applied_index = b.sealed_applied_;
    *last_revision = b.sealed_revision_;
    *active_id = b.sealed_active_;
    return 0;
}

/* ---------------------------------------------------------- reads */

int
bc_engine_revision (bc_engine_t *self, const void *key, size_t key_len,
                    uint64_t *rev_p)
{
    *rev_p = 0;
    if (key_len == 0 || key_len > BC_KEY_MAX)
        return -EINVAL;
    uint32_t hash = bc_keydir_hash (key, key_len);
    bc_loc_t loc;
    pthread_rwlock_rdlock (&self->kd_lock);
    bool found = bc_keydir_get (self->keydir, hash, key, key_len, &loc);
    pthread_rwlock_unlock (&self->kd_lock);
    if (!found)
        return TITAN_ENOTFOUND;
    *rev_p = loc.revision;
    return 0;
}

/* Why a record read back from a file does not match its keydir entry:
   NULL when it does. */
static const char *
s_record_mismatch (const uint8_t *buf, const bc_loc_t *loc, const void *key,
                   size_t key_len, bc_record_t *rec)
{
    int64_t got = bc_record_decode (buf, loc->size, BC_VALUE_HARD_MAX, rec);
    if (got == 0)
        return "record truncated (its header announces more bytes than "
               "the keydir entry)";
    if (got < 0) {
        /* tell a damaged header from a damaged payload */
        bc_record_t hdr;
        uint8_t copy [BC_REC_HEADER];
        memcpy (copy, buf, BC_REC_HEADER);
        bc_put32 (copy, 0);
        int64_t h = bc_record_decode (copy, BC_REC_HEADER, BC_VALUE_HARD_MAX,
                                      &hdr);
        return h == 0 ? "checksum mismatch" : "invalid record header";
    }
    if ((uint32_t) got != loc->size)
        return "record size differs from the keydir entry";
    if (rec->type != BC_REC_PUT)
        return "not a put record";
    if (rec->key_len != key_len || memcmp (rec->key, key, key_len) != 0)
        return "record holds another key";
    if (rec->revision != loc->revision)
        return "record revision differs from the keydir entry";
    return NULL;
}

int
bc_read_record (bc_engine_t *self, const void *key, size_t key_len,
                uint32_t hash, uint8_t **rec_p, bc_record_t *rec,
                bc_loc_t *loc, char *err, size_t errlen)
{
    *rec_p = NULL;
    pthread_rwlock_rdlock (&self->kd_lock);
    if (!bc_keydir_get (self->keydir, hash, key, key_len, loc)) {
        pthread_rwlock_unlock (&self->kd_lock);
        return bc_err (err, errlen, TITAN_ENOTFOUND, "bitcask: key not found");
    }
    bc_dfile_t *df = bc_dfile_find (self, loc->file_id);
    assert (df);
    char path [4096];
    bc_path (self, path, sizeof path, loc->file_id,
             df->merged ? "mdata" : "data");
    const uint8_t *map;
    int rc = s_acquire (self, df, &map);
    if (rc) {
        pthread_rwlock_unlock (&self->kd_lock);
        if (rc == -ENOENT || rc == TITAN_ECORRUPT)
            return bc_err (err, errlen, TITAN_ECORRUPT, "bitcask: %s at "
                           "offset %u: %s", path, loc->offset,
                           rc == -ENOENT ? "data file missing"
                                         : "data file shorter than recorded");
        return bc_err (err, errlen, rc, "bitcask: cannot map %s: %s", path,
                       strerror (-rc));
    }
    uint8_t *buf = malloc (loc->size);
    if (buf)
        memcpy (buf, map + loc->offset, loc->size);
    s_release (self, df);
    pthread_rwlock_unlock (&self->kd_lock);
    if (!buf)
        return bc_err (err, errlen, -ENOMEM, "bitcask: out of memory");
    const char *why = s_record_mismatch (buf, loc, key, key_len, rec);
    if (why) {
        free (buf);
        return bc_err (err, errlen, TITAN_ECORRUPT, "bitcask: %s at offset "
                       "%u: %s", path, loc->offset, why);
    }
    *rec_p = buf;
    return 0;
}

int
bc_engine_get (bc_engine_t *self, const void *key, size_t key_len,
               uint8_t **value_p, size_t *value_len, uint64_t *rev_p,
               char *err, size_t errlen)
{
    *value_p = NULL;
    *value_len = 0;
    if (rev_p)
        *rev_p = 0;
    if (key_len == 0 || key_len > BC_KEY_MAX || !key)
        return bc_err (err, errlen, -EINVAL, "bitcask: key length %zu not in "
                       "1..%u", key_len, BC_KEY_MAX);
    pthread_mutex_lock (&self->mu);
    int failed = self->failed;
    if (failed)
        bc_err (err, errlen, failed, "%s", self->failed_msg);
    pthread_mutex_unlock (&self->mu);
    if (failed)
        return failed;
    uint8_t *buf;
    bc_record_t rec;
    bc_loc_t loc;
    int rc = bc_read_record (self, key, key_len, bc_keydir_hash (key, key_len),
                             &buf, &rec, &loc, err, errlen);
    if (rc) {
        if (rc == TITAN_ECORRUPT) {
            __atomic_add_fetch (&self->read_errors, 1, __ATOMIC_RELAXED);
            if (rev_p)
                *rev_p = loc.revision;  /* the damaged entry's, for repair */
        }
        return rc;
    }
    size_t vlen = rec.value_len;
    memmove (buf, rec.value, vlen);
    *value_p = buf;
    *value_len = vlen;
    if (rev_p)
        *rev_p = rec.revision;
    return 0;
}

size_t
bc_engine_digest (bc_engine_t *self, uint64_t *digest, bc_digest_point_t *out,
                  size_t cap)
{
    pthread_rwlock_rdlock (&self->kd_lock);
    *digest = self->digest.sum;
    size_t n = bc_digest_points (&self->digest, out, cap);
    pthread_rwlock_unlock (&self->kd_lock);
    return n;
}

void
bc_engine_stats (bc_engine_t *self, bc_stats_t *st)
{
    memset (st, 0, sizeof *st);
    pthread_mutex_lock (&self->mu);
    st->failed = self->failed;
    st->applied_index = __atomic_load_n (&self->applied_index, __ATOMIC_RELAXED);
    st->durable_applied_index = __atomic_load_n (&self->durable_applied,
                                                 __ATOMIC_RELAXED);
    st->last_revision = __atomic_load_n (&self->last_revision, __ATOMIC_RELAXED);
    st->commits = __atomic_load_n (&self->commits, __ATOMIC_RELAXED);
    st->syncs = __atomic_load_n (&self->syncs, __ATOMIC_RELAXED);
    st->batches = __atomic_load_n (&self->batches, __ATOMIC_RELAXED);
    titan_hist_read (&self->fsync_hist, &st->fsync);
    pthread_mutex_unlock (&self->mu);
    pthread_rwlock_rdlock (&self->kd_lock);
    st->keys = bc_keydir_count (self->keydir);
    st->keydir_bytes = bc_keydir_memory (self->keydir);
    for (size_t i = 0; i < self->nfiles; i++) {
        st->live_bytes += self->files [i]->live;
        st->total_bytes += self->files [i]->size;
    }
    st->dead_bytes = st->total_bytes - st->live_bytes;
    st->data_files = self->nfiles;
    st->merges = self->merges;
    st->bytes_reclaimed = self->bytes_reclaimed;
    st->tail_truncated = self->tail_truncated;
    st->read_errors = __atomic_load_n (&self->read_errors, __ATOMIC_RELAXED);
    st->hint_fallbacks = self->hint_fallbacks;
    st->resync_regions = self->resync_regions;
    st->resync_bytes = self->resync_bytes;
    st->repairs = __atomic_load_n (&self->repairs, __ATOMIC_RELAXED);
    st->repairs_refused = __atomic_load_n (&self->repairs_refused,
                                           __ATOMIC_RELAXED);
    pthread_rwlock_unlock (&self->kd_lock);
    pthread_mutex_lock (&self->fd_mu);
    st->open_files = self->open_files;
    pthread_mutex_unlock (&self->fd_mu);
}
