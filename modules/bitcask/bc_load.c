/*  Bitcask open and recovery: directory listing, hint files, data file
    scans, torn-tail truncation.

    Files are loaded in id order and each record is applied to the keydir
    by revision: a record replaces the key's entry only if its revision is
    at least the entry's.  Deletes are kept as tombstone entries while
    loading so that an older put found later (a merge output has a higher
    file id than the newer records it survived) cannot resurrect the key;
    they are purged at the end.  Sealed files are loaded from their hint
    file when it is complete and consistent with the data file, otherwise
    (a damaged hint is counted) scanned: a damaged region is skipped up to
    the next valid record and counted (docs/repair.md), and a file without
    damage is hinted for the next open.  The active file (highest .data id) is
    scanned leniently: it is cut back to the end of its last complete
    atomic group, which is what a crash in the middle of an append leaves.  */
#include "bc_internal.h"

#include "titan/status.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int
bc_map_file (bc_file_t *file, const uint8_t **map_p, size_t *size_p)
{
    *map_p = NULL;
    *size_p = 0;
    int64_t size = bc_file_size (file);
    if (size < 0)
        return (int) size;
    if (size == 0)
        return 0;
    void *map = mmap (NULL, (size_t) size, PROT_READ, MAP_PRIVATE,
                      bc_file_fd (file), 0);
    if (map == MAP_FAILED)
        return -errno;
    (void) madvise (map, (size_t) size, MADV_SEQUENTIAL);
    *map_p = map;
    *size_p = (size_t) size;
    return 0;
}

void
bc_unmap_file (const uint8_t *map, size_t size)
{
    if (map)
        munmap ((void *) map, size);
}

/* Applies one loaded record or hint entry to the keydir. */
static int
s_apply_hashed (bc_engine_t *self, uint8_t type, const uint8_t *key,
                uint16_t klen, uint32_t hash, uint32_t file_id,
                uint32_t offset, uint32_t size, uint64_t rev, bool trusted)
{
    /* a salvaged (untrusted) header's revision must not move the engine's
       last revision: later Raft applies would be skipped as replays */
    if (trusted && rev > self->last_revision)
        self->last_revision = rev;
    if (type == BC_REC_META) {
        uint64_t applied = bc_get64 (key);
        uint64_t last = bc_get64 (key + 8);
        if (applied > self->applied_index)
            self->applied_index = applied;
        if (last > self->last_revision)
            self->last_revision = last;
        return 0;
    }
    bc_loc_t loc = { file_id, offset, size, rev, type == BC_REC_DELETE };
    bc_loc_t old;
    int rc = bc_keydir_put_newer (self->keydir, hash, key, klen, &loc, &old);
    if (rc < 0)
        return -ENOMEM;
    /* Live bytes per file follow the keydir as it is built. */
    if (rc == 2 && !old.tombstone) {
        bc_dfile_t *odf = bc_dfile_find (self, old.file_id);
        if (odf)
            odf->live -= old.size;
    }
    if (rc > 0 && !loc.tombstone) {
        bc_dfile_t *df = bc_dfile_find (self, file_id);
        if (df)
            df->live += size;
    }
    return 0;
}

static int
s_apply (bc_engine_t *self, uint8_t type, const uint8_t *key, uint16_t klen,
         uint32_t file_id, uint32_t offset, uint32_t size, uint64_t rev,
         bool trusted)
{
    uint32_t hash = type == BC_REC_META ? 0 : bc_keydir_hash (key, klen);
    return s_apply_hashed (self, type, key, klen, hash, file_id, offset, size,
                           rev, trusted);
}

typedef struct {
    uint8_t type;
    const uint8_t *key;
    uint16_t klen;
    uint32_t offset, size;
    uint64_t rev;
    bool trusted;                 /* false: salvaged from a damaged record */
} s_pending_t;

/* Applies the records of one atomic group.  */
static int
s_apply_group (bc_engine_t *self, bc_dfile_t *df, const s_pending_t *pend,
               size_t npend)
{
    int rc = 0;
    for (size_t i = 0; i < npend && !rc; i++)
        rc = s_apply (self, pend [i].type, pend [i].key, pend [i].klen,
                      df->id, pend [i].offset, pend [i].size, pend [i].rev,
                      pend [i].trusted);
    return rc;
}

/* Scans a mapped data file.  Strict (a sealed file): a damaged region is
   skipped up to the next valid record (bc_record_resync) and counted; a
   damaged record whose header still makes sense keeps its key in the
   keydir (pointing at the damage, so that reads report and repair it
   rather than serve an older version).  Lenient (the active file): the
   scan stops at the first bad record; *valid_end is the end of the last
   complete group (the torn-tail rule). */
static int
s_scan (bc_engine_t *self, bc_dfile_t *df, const char *path,
        const uint8_t *map, size_t size, bool strict, uint64_t *valid_end,
        char *err, size_t errlen)
{
    s_pending_t *pend = NULL;
    size_t npend = 0, cap = 0;
    size_t pos = 0, group_start = 0;
    int rc = 0;
    while (pos < size) {
        bc_record_t rec;
        bool trusted = true;
        int64_t r = bc_record_decode (map + pos, size - pos,
                                      BC_VALUE_HARD_MAX, &rec);
        if (r <= 0) {
            if (!strict)
                break;
            size_t next = bc_record_resync (map, size, pos + 1,
                                            BC_VALUE_HARD_MAX);
            self->resync_regions++;
            self->resync_bytes += next - pos;
            int64_t sv = bc_record_salvage (map + pos, next - pos,
                                            BC_VALUE_HARD_MAX, &rec);
            if (sv <= 0 || (size_t) sv != next - pos) {
                /* the records of a sealed file's groups were all durable:
                   those before the damage stand */
                rc = s_apply_group (self, df, pend, npend);
                npend = 0;
                pos = group_start = next;
                if (rc) {
                    bc_err (err, errlen, rc, "bitcask: out of memory loading "
                            "%s", path);
                    break;
                }
                continue;
            }
            r = sv;
            rec.flags = 0;
            trusted = false;
        }
        if (npend == cap) {
            cap = cap ? cap * 2 : 64;
            s_pending_t *p = realloc (pend, cap * sizeof *p);
            if (!p) {
                rc = bc_err (err, errlen, -ENOMEM, "bitcask: out of memory");
                break;
            }
            pend = p;
        }
        s_pending_t *p = &pend [npend++];
        p->type = rec.type;
        p->key = rec.type == BC_REC_META ? rec.value : rec.key;
        p->klen = rec.key_len;
        p->offset = (uint32_t) pos;
        p->size = rec.size;
        p->rev = rec.revision;
        p->trusted = trusted;
        pos += (size_t) r;
        if (!(rec.flags & BC_RECF_MORE)) {
            rc = s_apply_group (self, df, pend, npend);
            if (rc) {
                bc_err (err, errlen, rc, "bitcask: out of memory loading %s",
                        path);
                break;
            }
            npend = 0;
            group_start = pos;
        }
    }
    if (!rc && strict && npend) {
        /* a sealed file ending inside a group: its last record was lost
           to damage (sealed groups were complete); keep the others */
        self->resync_regions++;
        rc = s_apply_group (self, df, pend, npend);
        group_start = pos;
    }
    free (pend);
    *valid_end = group_start;
    return rc;
}

/* Loads a hint file; any inconsistency returns an error (caller scans). */
static int
s_load_hint (bc_engine_t *self, bc_dfile_t *df, const char *hint_path)
{
    bc_file_t *file;
    int rc = bc_file_open (hint_path, O_RDONLY, 0, NULL, &file);
    if (rc)
        return rc;
    const uint8_t *map;
    size_t size;
    rc = bc_map_file (file, &map, &size);
    bc_file_close (&file);
    if (rc)
        return rc;
    size_t pos = 0;
    uint32_t count = 0;
    bool ended = false;
    /* Entries are decoded a window ahead and their home slots prefetched,
       so that the keydir's cache misses overlap instead of queueing. */
    enum { AHEAD = 16 };
    bc_hint_t win [AHEAD];
    uint32_t hashes [AHEAD];
    while (!rc && !ended) {
        size_t n = 0;
        while (n < AHEAD && pos < size) {
            bc_hint_t *h = &win [n];
            int64_t r = bc_hint_decode (map + pos, size - pos, h);
            if (r <= 0) {
                rc = TITAN_ECORRUPT;
                break;
            }
            pos += (size_t) r;
            if (h->type == BC_HINT_END) {
                ended = h->offset == count + n && h->revision == df->size
                     && pos == size;
                if (!ended)
                    rc = TITAN_ECORRUPT;
                break;
            }
            if ((uint64_t) h->offset + h->size > df->size) {
                rc = TITAN_ECORRUPT;
                break;
            }
            hashes [n] = h->type == BC_REC_META ? 0
                       : bc_keydir_hash (h->key, h->key_len);
            bc_keydir_prefetch (self->keydir, hashes [n]);
            n++;
        }
        for (size_t i = 0; i < n && !rc; i++)
            rc = s_apply_hashed (self, win [i].type, win [i].key,
                                 win [i].type == BC_REC_META ? 0
                                                             : win [i].key_len,
                                 hashes [i], df->id, win [i].offset,
                                 win [i].size, win [i].revision, true);
        count += (uint32_t) n;
        if (n == 0 && !ended)
            break;
    }
    if (!rc && !ended)
        rc = TITAN_ECORRUPT;
    bc_unmap_file (map, size);
    return rc;
}

int
bc_write_hint (bc_engine_t *self, bc_dfile_t *df, char *err, size_t errlen)
{
    char path [4096], tmp [4096], hint [4096];
    bc_path (self, path, sizeof path, df->id, df->merged ? "mdata" : "data");
    bc_path (self, tmp, sizeof tmp, df->id, "hint.tmp");
    bc_path (self, hint, sizeof hint, df->id, "hint");
    bc_file_t *file;
    int rc = bc_file_open (path, O_RDONLY, 0, NULL, &file);
    if (rc)
        return bc_err (err, errlen, rc, "bitcask: cannot open %s: %s", path,
                       strerror (-rc));
    const uint8_t *map;
    size_t size;
    rc = bc_map_file (file, &map, &size);
    bc_file_close (&file);
    if (rc)
        return bc_err (err, errlen, rc, "bitcask: cannot map %s: %s", path,
                       strerror (-rc));
    size_t cap = 64 * 1024, len = 0, pos = 0;
    uint32_t count = 0;
    uint8_t *buf = malloc (cap);
    while (buf && pos < size) {
        bc_record_t rec;
        /* a file this engine wrote needs no second CRC pass: reading
           1 GB again took longer than the module's PING deadline */
        int64_t r = df->crc_known
                  ? bc_record_parse (map + pos, size - pos, BC_VALUE_HARD_MAX,
                                     &rec)
                  : bc_record_decode (map + pos, size - pos,
                                      BC_VALUE_HARD_MAX, &rec);
        if (r <= 0) {
            /* no hint for a damaged file: each open scans it again, so the
               damage stays counted and its salvaged keys stay reported */
            rc = bc_err (err, errlen, TITAN_ECORRUPT, "bitcask: corrupt record "
                         "in %s at offset %zu", path, pos);
            break;
        }
        const uint8_t *key = rec.type == BC_REC_META ? rec.value : rec.key;
        uint16_t klen = rec.type == BC_REC_META ? BC_META_VALUE : rec.key_len;
        if (len + BC_HINT_HEADER * 2 + klen > cap) {
            cap *= 2;
            uint8_t *b = realloc (buf, cap);
            if (!b) {
                free (buf);
                buf = NULL;
                break;
            }
            buf = b;
        }
        bc_hint_encode (buf + len, rec.type, key, klen, (uint32_t) pos,
                        rec.size, rec.revision);
        len += BC_HINT_HEADER + klen;
        count++;
        pos += (size_t) r;
    }
    bc_unmap_file (map, size);
    if (!buf)
        return bc_err (err, errlen, -ENOMEM, "bitcask: out of memory");
    if (rc) {
        free (buf);
        return rc;
    }
    bc_hint_encode (buf + len, BC_HINT_END, NULL, 0, count, 0, size);
    len += BC_HINT_HEADER;
    rc = bc_file_open (tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644,
                       self->opt.fault, &file);
    if (rc == 0) {
        rc = bc_file_pwrite (file, buf, len, 0);
        if (rc == 0)
            rc = bc_file_sync (file);
        bc_file_close (&file);
        if (rc == 0)
            rc = bc_file_rename (self->opt.fault, tmp, hint);
        if (rc == 0)
            rc = bc_file_sync_dir (self->opt.fault, self->dir);
        if (rc)
            (void) bc_file_unlink (self->opt.fault, tmp);
    }
    free (buf);
    if (rc)
        return bc_err (err, errlen, rc, "bitcask: cannot write hint %s: %s",
                       hint, strerror (-rc));
    df->hinted = true;
    return 0;
}

/* Parses "%08u.<suffix>"; returns the suffix or NULL. */
static const char *
s_parse_name (const char *name, uint32_t *id)
{
    char *end;
    if (strlen (name) < 10 || name [8] != '.')
        return NULL;
    for (int i = 0; i < 8; i++)
        if (name [i] < '0' || name [i] > '9')
            return NULL;
    unsigned long v = strtoul (name, &end, 10);
    if (end != name + 8)
        return NULL;
    *id = (uint32_t) v;
    return name + 9;
}


static int
s_load_file (bc_engine_t *self, bc_dfile_t *df, bool active, char *err,
             size_t errlen)
{
    char path [4096], hint [4096];
    bc_path (self, path, sizeof path, df->id, df->merged ? "mdata" : "data");
    bc_path (self, hint, sizeof hint, df->id, "hint");
    bc_file_t *file;
    int rc = bc_file_open (path, active ? O_RDWR : O_RDONLY, 0,
                           active ? self->opt.fault : NULL, &file);
    if (rc)
        return bc_err (err, errlen, rc, "bitcask: cannot open %s: %s", path,
                       strerror (-rc));
    int64_t size = bc_file_size (file);
    if (size < 0 || (uint64_t) size > 0xFFFFFFFFull) {
        bc_file_close (&file);
        return bc_err (err, errlen, size < 0 ? (int) size : TITAN_ECORRUPT,
                       "bitcask: bad size of %s", path);
    }
    df->size = (uint64_t) size;
    if (!active && access (hint, F_OK) == 0) {
        if (s_load_hint (self, df, hint) == 0) {
            df->hinted = true;
            bc_file_close (&file);
            return 0;
        }
        /* A damaged hint may have applied some entries already: they are
           valid locations of this file's records (CRC-checked entries),
           and the scan below applies the same records again. */
        self->hint_fallbacks++;
    }
    const uint8_t *map;
    size_t msize;
    rc = bc_map_file (file, &map, &msize);
    if (rc) {
        bc_file_close (&file);
        return bc_err (err, errlen, rc, "bitcask: cannot map %s: %s", path,
                       strerror (-rc));
    }
    uint64_t valid_end = 0;
    uint64_t regions = self->resync_regions;
    rc = s_scan (self, df, path, map, msize, !active, &valid_end, err, errlen);
    bool damaged = self->resync_regions != regions;
    if (rc == 0 && active && valid_end < df->size) {
        /* Torn tail (a crash interrupted the last append) or the zeros of
           the preallocated room: only the former counts as truncated. */
        uint64_t nonzero = 0;
        for (uint64_t i = valid_end; i < df->size; i++)
            if (map [i]) {
                nonzero = df->size - valid_end;
                break;
            }
        self->tail_truncated += nonzero;
        rc = bc_file_truncate (file, valid_end);
        if (rc == 0 && self->opt.sync)
            rc = bc_file_sync (file);
        if (rc)
            bc_err (err, errlen, rc, "bitcask: cannot truncate the torn tail "
                    "of %s: %s", path, strerror (-rc));
        df->size = valid_end;
    }
    bc_unmap_file (map, msize);
    if (active && rc == 0) {
        df->file = file;
        df->allocated = df->size;
        bc_dfile_prealloc (self, df, df->size + 1);
        rc = bc_dfile_map_active (self, df);
        if (rc)
            bc_err (err, errlen, rc, "bitcask: cannot map %s: %s", path,
                    strerror (-rc));
    }
    else
        bc_file_close (&file);
    if (rc == 0 && !active && !damaged)
        rc = bc_write_hint (self, df, err, errlen);
    return rc;
}

int
bc_load (bc_engine_t *self, char *err, size_t errlen)
{
    int rc = bc_merge_recover (self, err, errlen);
    if (rc)
        return rc;
    DIR *dir = opendir (self->dir);
    if (!dir)
        return bc_err (err, errlen, -errno, "bitcask: cannot list %s: %s",
                       self->dir, strerror (errno));
    struct dirent *de;
    uint32_t max_id = 0;
    bool any = false;
    while ((de = readdir (dir)) && !rc) {
        uint32_t id;
        const char *suffix = s_parse_name (de->d_name, &id);
        if (!suffix)
            continue;
        char path [4096];
        snprintf (path, sizeof path, "%s/%s", self->dir, de->d_name);
        size_t sl = strlen (suffix);
        if (sl > 4 && strcmp (suffix + sl - 4, ".tmp") == 0) {
            (void) bc_file_unlink (self->opt.fault, path);  /* unfinished */
            continue;
        }
        if (strcmp (suffix, "data") && strcmp (suffix, "mdata"))
            continue;
        if (bc_dfile_find (self, id)) {
            rc = bc_err (err, errlen, TITAN_ECORRUPT, "bitcask: data file id "
                         "%u appears twice in %s", id, self->dir);
            break;
        }
        bc_dfile_t *df = calloc (1, sizeof *df);
        if (df) {
            df->id = id;
            df->merged = strcmp (suffix, "mdata") == 0;
        }
        if (!df || bc_dfile_add (self, df)) {
            free (df);
            rc = bc_err (err, errlen, -ENOMEM, "bitcask: out of memory");
            break;
        }
        if (!df->merged && (!any || id > max_id)) {
            max_id = id;
            any = true;
        }
    }
    closedir (dir);
    if (rc)
        return rc;
    if (self->nfiles)
        self->next_id = self->files [self->nfiles - 1]->id + 1;
    /* Size the keydir once from the hint sizes (an estimate: a hint entry
       of a 16-byte key is 40 bytes; data files count a 140-byte record). */
    uint64_t estimate = 0;
    for (size_t i = 0; i < self->nfiles; i++) {
        char path [4096];
        struct stat st;
        bc_path (self, path, sizeof path, self->files [i]->id, "hint");
        if (stat (path, &st) == 0)
            estimate += (uint64_t) st.st_size / 40;
        else {
            bc_path (self, path, sizeof path, self->files [i]->id,
                     self->files [i]->merged ? "mdata" : "data");
            if (stat (path, &st) == 0)
                estimate += (uint64_t) st.st_size / 140;
        }
    }
    (void) bc_keydir_reserve (self->keydir, (size_t) estimate);
    for (size_t i = 0; i < self->nfiles && !rc; i++) {
        bc_dfile_t *df = self->files [i];
        /* The newest .data file is the active one, even below a merge
           output's id: order between files comes from revisions. */
        bool active = any && !df->merged && df->id == max_id;
        rc = s_load_file (self, df, active, err, errlen);
        if (active)
            self->active = df;
    }
    if (rc)
        return rc;
    if (!self->active) {
        uint32_t id = self->next_id++;
        char path [4096];
        bc_path (self, path, sizeof path, id, "data");
        bc_dfile_t *df = calloc (1, sizeof *df);
        if (!df)
            return bc_err (err, errlen, -ENOMEM, "bitcask: out of memory");
        df->id = id;
        df->crc_known = true;    /* empty: CRC 0, kept as it grows */
        rc = bc_file_open (path, O_RDWR | O_CREAT, 0644, self->opt.fault,
                           &df->file);
        if (rc == 0)
            bc_dfile_prealloc (self, df, 1);
        if (rc == 0)
            rc = bc_file_sync_dir (self->opt.fault, self->dir);
        if (rc == 0)
            rc = bc_dfile_map_active (self, df);
        if (rc == 0)
            rc = bc_dfile_add (self, df);
        if (rc) {
            bc_dfile_free (&df);
            return bc_err (err, errlen, rc, "bitcask: cannot create %s: %s",
                           path, strerror (-rc));
        }
        self->active = df;
    }
    self->active_id = self->active->id;
    rc = bc_keydir_purge_tombstones (self->keydir);
    if (rc)
        return bc_err (err, errlen, rc, "bitcask: out of memory");
    return 0;
}
