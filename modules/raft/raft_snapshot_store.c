/*  raft_snapshot_store: snapshot files written to a temp name, fsynced,
    renamed and the directory fsynced (see raft_snapshot_store.h).  The
    file name carries index and term so that listing needs no reads; the
    contents are verified end to end (header CRC, trailer CRC, CRC of conf
    + data, and the sizes adding up to the file size) before a reader is
    handed out.  */
#include "raft_snapshot_store.h"

#include "titan/crc32c.h"
#include "titan/status.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SNAP_MAGIC      "TKVRSNP1"
#define SNAP_END        "TKVRSEND"
#define SNAP_VERSION    1u
#define SNAP_HDR_SIZE   40u     /* magic, version, conf size, index, term, pad, crc */
#define SNAP_TRL_SIZE   24u
#define SNAP_NAME_LEN   51u     /* "snap-" 20 "-" 20 ".snap" */

#define TRUSTED_MAX  4           /* snapshots known good in this process */

struct _raft_snapshot_store_t {
    char *dir;
    raft_fio_t *fio;
    char errmsg [PATH_MAX + 128];
    /*  Snapshots this store committed or verified since it was opened:
        opening one again checks its header and trailer but does not read
        its data for the checksum (a 1 GB snapshot took longer to read
        than the kernel waits for the module's PING, on the leader before
        the first chunk and on a follower before the install).  */
    raft_snapshot_id_t trusted [TRUSTED_MAX];
    size_t n_trusted;
};

struct _raft_snapshot_writer_t {
    raft_snapshot_store_t *store;
    char tmp [PATH_MAX];
    char path [PATH_MAX];
    int fd;
    uint64_t offset;            /* bytes written so far */
    uint64_t data_size;
    uint32_t crc;               /* over conf + data */
    raft_snapshot_id_t id;
    int failed;
};

struct _raft_snapshot_reader_t {
    int fd;
    uint64_t index;
    uint64_t term;
    uint8_t *conf;
    uint32_t conf_size;
    uint64_t data_size;
    uint64_t data_offset;       /* file offset of the data */
    uint64_t pos;               /* bytes of data read */
};

static void
s_put32 (uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p [i] = (uint8_t) (v >> (8 * i));
}

static void
s_put64 (uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p [i] = (uint8_t) (v >> (8 * i));
}

static uint32_t
s_get32 (const uint8_t *p)
{
    return (uint32_t) p [0] | (uint32_t) p [1] << 8
         | (uint32_t) p [2] << 16 | (uint32_t) p [3] << 24;
}

static uint64_t
s_get64 (const uint8_t *p)
{
    return (uint64_t) s_get32 (p) | (uint64_t) s_get32 (p + 4) << 32;
}

//  Parses "snap-<20 digits>-<20 digits>.snap"; returns true on a match.
static bool
s_parse_name (const char *name, raft_snapshot_id_t *id)
{
    if (strlen (name) != SNAP_NAME_LEN || strncmp (name, "snap-", 5) != 0
    ||  name [25] != '-' || strcmp (name + 46, ".snap") != 0
    ||  strspn (name + 5, "0123456789") != 20
    ||  strspn (name + 26, "0123456789") != 20)
        return false;
    id->index = strtoull (name + 5, NULL, 10);
    id->term = strtoull (name + 26, NULL, 10);
    return true;
}

static void
s_name (raft_snapshot_store_t *self, char *buf, size_t len,
        uint64_t index, uint64_t term, const char *suffix)
{
    snprintf (buf, len, "%s/snap-%020" PRIu64 "-%020" PRIu64 ".snap%s",
              self->dir, index, term, suffix);
}

int
raft_snapshot_store_open (const char *dir, raft_fio_t *fio,
                          raft_snapshot_store_t **self_p,
                          char *errbuf, size_t errlen)
{
    assert (dir && self_p);
    *self_p = NULL;
    raft_snapshot_store_t *self = calloc (1, sizeof *self);
    if (!self || !(self->dir = strdup (dir))) {
        free (self);
        if (errbuf)
            snprintf (errbuf, errlen, "raft snapshots: out of memory");
        return -ENOMEM;
    }
    self->fio = fio;
    int rc = raft_fio_mkdir (fio, dir);
    DIR *d = rc ? NULL : opendir (dir);
    if (!rc && !d)
        rc = -errno;
    if (d) {
        //  Incomplete snapshots (crash before the rename) are deleted.
        struct dirent *ent;
        bool removed = false;
        while (rc == 0 && (ent = readdir (d))) {
            size_t len = strlen (ent->d_name);
            if (len > 4 && strncmp (ent->d_name, "snap-", 5) == 0
            &&  strcmp (ent->d_name + len - 4, ".tmp") == 0) {
                char path [PATH_MAX];
                snprintf (path, sizeof path, "%s/%s", dir, ent->d_name);
                rc = raft_fio_unlink (fio, path);
                removed = true;
            }
        }
        closedir (d);
        if (rc == 0 && removed)
            rc = raft_fio_sync_dir (fio, dir);
    }
    if (rc) {
        if (errbuf)
            snprintf (errbuf, errlen, "raft snapshots: cannot open %s: %s",
                      dir, strerror (-rc));
        raft_snapshot_store_destroy (&self);
        return rc;
    }
    *self_p = self;
    return 0;
}

void
raft_snapshot_store_destroy (raft_snapshot_store_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        raft_snapshot_store_t *self = *self_p;
        free (self->dir);
        free (self);
        *self_p = NULL;
    }
}

const char *
raft_snapshot_store_errmsg (raft_snapshot_store_t *self)
{
    assert (self);
    return self->errmsg;
}

static int
s_cmp_id (const void *a, const void *b)
{
    const raft_snapshot_id_t *x = a, *y = b;
    if (x->index != y->index)
        return x->index < y->index ? -1 : 1;
    return x->term < y->term ? -1 : x->term > y->term;
}

int
raft_snapshot_store_list (raft_snapshot_store_t *self,
                          raft_snapshot_id_t **ids_p, size_t *count_p)
{
    assert (self && ids_p && count_p);
    *ids_p = NULL;
    *count_p = 0;
    DIR *d = opendir (self->dir);
    if (!d) {
        int rc = -errno;
        snprintf (self->errmsg, sizeof self->errmsg,
                  "raft snapshots: cannot list %s: %s", self->dir, strerror (-rc));
        return rc;
    }
    raft_snapshot_id_t *ids = NULL;
    size_t count = 0, cap = 0;
    int rc = 0;
    struct dirent *ent;
    while ((ent = readdir (d))) {
        raft_snapshot_id_t id;
        if (!s_parse_name (ent->d_name, &id))
            continue;
        if (count == cap) {
            cap = cap ? cap * 2 : 8;
            raft_snapshot_id_t *grown = realloc (ids, cap * sizeof *ids);
            if (!grown) {
                rc = -ENOMEM;
                break;
            }
            ids = grown;
        }
        ids [count++] = id;
    }
    closedir (d);
    if (rc) {
        free (ids);
        return rc;
    }
    if (count > 1)
        qsort (ids, count, sizeof *ids, s_cmp_id);
    *ids_p = ids;
    *count_p = count;
    return 0;
}

int
raft_snapshot_store_remove_older (raft_snapshot_store_t *self, uint64_t index)
{
    assert (self);
    raft_snapshot_id_t *ids;
    size_t count;
    int rc = raft_snapshot_store_list (self, &ids, &count);
    if (rc)
        return rc;
    bool removed = false;
    for (size_t i = 0; i < count && rc == 0; i++) {
        if (ids [i].index >= index)
            continue;
        char path [PATH_MAX];
        s_name (self, path, sizeof path, ids [i].index, ids [i].term, "");
        rc = raft_fio_unlink (self->fio, path);
        if (rc)
            snprintf (self->errmsg, sizeof self->errmsg,
                      "raft snapshots: cannot delete %s: %s", path, strerror (-rc));
        removed = true;
    }
    free (ids);
    if (rc == 0 && removed && (rc = raft_fio_sync_dir (self->fio, self->dir)))
        snprintf (self->errmsg, sizeof self->errmsg,
                  "raft snapshots: cannot sync %s: %s", self->dir, strerror (-rc));
    return rc;
}

//  --------------------------------------------------------------------------
//  Writer

static int
s_writer_put (raft_snapshot_writer_t *self, const void *data, size_t size)
{
    int rc = raft_fio_pwrite (self->store->fio, self->fd, data, size,
                              (off_t) self->offset);
    if (rc) {
        snprintf (self->store->errmsg, sizeof self->store->errmsg,
                  "raft snapshots: cannot write %s at offset %" PRIu64 ": %s",
                  self->tmp, self->offset, strerror (-rc));
        self->failed = rc;
        return rc;
    }
    self->offset += size;
    return 0;
}

int
raft_snapshot_store_begin (raft_snapshot_store_t *self, uint64_t index,
                           uint64_t term, const void *conf,
                           uint32_t conf_size,
                           raft_snapshot_writer_t **writer_p)
{
    assert (self && writer_p);
    assert (conf || conf_size == 0);
    *writer_p = NULL;
    if (index == 0)
        return -EINVAL;
    if (conf_size > RAFT_SNAPSHOT_MAX_CONF) {
        snprintf (self->errmsg, sizeof self->errmsg,
                  "raft snapshots: configuration of %" PRIu32 " bytes is above "
                  "the limit of %u", conf_size, RAFT_SNAPSHOT_MAX_CONF);
        return TITAN_ETOOBIG;
    }
    raft_snapshot_writer_t *writer = calloc (1, sizeof *writer);
    if (!writer)
        return -ENOMEM;
    writer->store = self;
    writer->id.index = index;
    writer->id.term = term;
    s_name (self, writer->tmp, sizeof writer->tmp, index, term, ".tmp");
    s_name (self, writer->path, sizeof writer->path, index, term, "");
    writer->fd = raft_fio_open (self->fio, writer->tmp,
                                O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (writer->fd < 0) {
        int rc = writer->fd;
        snprintf (self->errmsg, sizeof self->errmsg,
                  "raft snapshots: cannot create %s: %s", writer->tmp,
                  strerror (-rc));
        free (writer);
        return rc;
    }
    uint8_t hdr [SNAP_HDR_SIZE];
    memset (hdr, 0, sizeof hdr);
    memcpy (hdr, SNAP_MAGIC, 8);
    s_put32 (hdr + 8, SNAP_VERSION);
    s_put32 (hdr + 12, conf_size);
    s_put64 (hdr + 16, index);
    s_put64 (hdr + 24, term);
    s_put32 (hdr + 36, titan_crc32c (0, hdr, 36));
    int rc = 0;
    if (rc == 0)
        rc = s_writer_put (writer, hdr, sizeof hdr);
    if (rc == 0 && conf_size) {
        writer->crc = titan_crc32c (0, conf, conf_size);
        rc = s_writer_put (writer, conf, conf_size);
    }
    if (rc) {
        raft_snapshot_writer_abort (&writer);
        return rc;
    }
    *writer_p = writer;
    return 0;
}

int
raft_snapshot_writer_write (raft_snapshot_writer_t *self, const void *data,
                            size_t size)
{
    assert (self);
    assert (data || size == 0);
    if (self->failed)
        return self->failed;
    if (size == 0)
        return 0;
    int rc = s_writer_put (self, data, size);
    if (rc == 0) {
        self->crc = titan_crc32c (self->crc, data, size);
        self->data_size += size;
    }
    return rc;
}

static bool
s_trusted (const raft_snapshot_store_t *self, const raft_snapshot_id_t *id)
{
    for (size_t i = 0; i < self->n_trusted && i < TRUSTED_MAX; i++)
        if (self->trusted [i].index == id->index
        &&  self->trusted [i].term == id->term)
            return true;
    return false;
}

//  Notes a snapshot as known good (the oldest of TRUSTED_MAX forgotten).
static void
s_trust (raft_snapshot_store_t *self, const raft_snapshot_id_t *id)
{
    if (!s_trusted (self, id))
        self->trusted [self->n_trusted++ % TRUSTED_MAX] = *id;
}

int
raft_snapshot_writer_commit (raft_snapshot_writer_t **self_p)
{
    assert (self_p && *self_p);
    raft_snapshot_writer_t *self = *self_p;
    raft_snapshot_store_t *store = self->store;
    int rc = self->failed;
    if (rc == 0) {
        uint8_t trl [SNAP_TRL_SIZE];
        memcpy (trl, SNAP_END, 8);
        s_put64 (trl + 8, self->data_size);
        s_put32 (trl + 16, self->crc);
        s_put32 (trl + 20, titan_crc32c (0, trl, 20));
        rc = s_writer_put (self, trl, sizeof trl);
    }
    const char *what = NULL;
    if (rc == 0 && (rc = raft_fio_sync (store->fio, self->fd)))
        what = "sync";
    if (rc == 0) {
        raft_fio_close (store->fio, self->fd);
        self->fd = -1;
        if ((rc = raft_fio_rename (store->fio, self->tmp, self->path)))
            what = "rename";
    }
    if (rc == 0 && (rc = raft_fio_sync_dir (store->fio, store->dir)))
        what = "sync the directory of";
    if (rc && what)
        snprintf (store->errmsg, sizeof store->errmsg,
                  "raft snapshots: cannot %s %s: %s", what, self->tmp,
                  strerror (-rc));
    if (rc) {
        //  A failed directory sync leaves the rename in doubt: the final
        //  file stays (it is complete and verified on open); otherwise the
        //  temp file goes.
        raft_snapshot_writer_abort (self_p);
        return rc;
    }
    s_trust (store, &self->id);
    free (self);
    *self_p = NULL;
    return 0;
}

void
raft_snapshot_writer_abort (raft_snapshot_writer_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        raft_snapshot_writer_t *self = *self_p;
        raft_fio_close (self->store->fio, self->fd);
        unlink (self->tmp);
        free (self);
        *self_p = NULL;
    }
}

//  --------------------------------------------------------------------------
//  Reader

static int
s_corrupt (raft_snapshot_store_t *self, const char *path, uint64_t offset,
           const char *why)
{
    snprintf (self->errmsg, sizeof self->errmsg,
              "raft snapshots: corrupt snapshot %s at offset %" PRIu64 ": %s",
              path, offset, why);
    return TITAN_ECORRUPT;
}

//  Opens and verifies one snapshot file.
static int
s_open_reader (raft_snapshot_store_t *self, const char *path,
               const raft_snapshot_id_t *id, raft_snapshot_reader_t **reader_p)
{
    int fd = raft_fio_open (NULL, path, O_RDONLY, 0);
    if (fd < 0) {
        snprintf (self->errmsg, sizeof self->errmsg,
                  "raft snapshots: cannot open %s: %s", path, strerror (-fd));
        return fd;
    }
    raft_snapshot_reader_t *reader = calloc (1, sizeof *reader);
    uint8_t *buf = malloc (64 * 1024);
    int rc = 0;
    struct stat st;
    uint8_t hdr [SNAP_HDR_SIZE], trl [SNAP_TRL_SIZE];
    if (!reader || !buf)
        rc = -ENOMEM;
    else
    if (fstat (fd, &st) != 0)
        rc = -errno;
    else
    if ((uint64_t) st.st_size < SNAP_HDR_SIZE + SNAP_TRL_SIZE)
        rc = s_corrupt (self, path, 0, "file too short");
    else
    if ((rc = raft_fio_pread (fd, hdr, sizeof hdr, 0)) == 0) {
        if (memcmp (hdr, SNAP_MAGIC, 8) != 0 || s_get32 (hdr + 8) != SNAP_VERSION
        ||  s_get32 (hdr + 36) != titan_crc32c (0, hdr, 36))
            rc = s_corrupt (self, path, 0, "bad header");
        else
        if (s_get64 (hdr + 16) != id->index || s_get64 (hdr + 24) != id->term)
            rc = s_corrupt (self, path, 16, "index or term differ from the name");
        else
        if (s_get32 (hdr + 12) > RAFT_SNAPSHOT_MAX_CONF)
            rc = s_corrupt (self, path, 12, "configuration size above the limit");
    }
    uint64_t trl_off = (uint64_t) st.st_size - SNAP_TRL_SIZE;
    if (rc == 0 && (rc = raft_fio_pread (fd, trl, sizeof trl, (off_t) trl_off)) == 0) {
        if (memcmp (trl, SNAP_END, 8) != 0
        ||  s_get32 (trl + 20) != titan_crc32c (0, trl, 20))
            rc = s_corrupt (self, path, trl_off, "bad trailer");
        else
        if (SNAP_HDR_SIZE + (uint64_t) s_get32 (hdr + 12) + s_get64 (trl + 8)
            != trl_off)
            rc = s_corrupt (self, path, trl_off, "sizes do not match the file");
    }
    if (rc == 0) {
        reader->fd = fd;
        reader->index = id->index;
        reader->term = id->term;
        reader->conf_size = s_get32 (hdr + 12);
        reader->data_size = s_get64 (trl + 8);
        reader->data_offset = SNAP_HDR_SIZE + reader->conf_size;
        reader->conf = malloc (reader->conf_size + 1);
        if (!reader->conf)
            rc = -ENOMEM;
    }
    if (rc == 0)
        rc = raft_fio_pread (fd, reader->conf, reader->conf_size, SNAP_HDR_SIZE);
    if (rc == 0 && !s_trusted (self, id)) {
        //  Verify conf + data end to end before anything is handed out.
        uint32_t crc = titan_crc32c (0, reader->conf, reader->conf_size);
        uint64_t off = reader->data_offset;
        while (rc == 0 && off < trl_off) {
            size_t n = trl_off - off > 64 * 1024 ? 64 * 1024 : (size_t) (trl_off - off);
            rc = raft_fio_pread (fd, buf, n, (off_t) off);
            crc = titan_crc32c (crc, buf, n);
            off += n;
        }
        if (rc == 0 && crc != s_get32 (trl + 16))
            rc = s_corrupt (self, path, SNAP_HDR_SIZE, "data checksum mismatch");
        if (rc == 0)
            s_trust (self, id);
    }
    free (buf);
    if (rc) {
        if (rc != TITAN_ECORRUPT)
            snprintf (self->errmsg, sizeof self->errmsg,
                      "raft snapshots: cannot read %s: %s", path,
                      rc == -ENOMEM ? "out of memory" : strerror (-rc));
        close (fd);
        if (reader)
            free (reader->conf);
        free (reader);
        return rc;
    }
    *reader_p = reader;
    return 0;
}

int
raft_snapshot_store_open_latest (raft_snapshot_store_t *self,
                                 raft_snapshot_reader_t **reader_p)
{
    assert (self && reader_p);
    *reader_p = NULL;
    raft_snapshot_id_t *ids;
    size_t count;
    int rc = raft_snapshot_store_list (self, &ids, &count);
    if (rc)
        return rc;
    if (count == 0) {
        free (ids);
        snprintf (self->errmsg, sizeof self->errmsg,
                  "raft snapshots: no snapshot in %s", self->dir);
        return TITAN_ENOTFOUND;
    }
    char path [PATH_MAX];
    s_name (self, path, sizeof path, ids [count - 1].index,
            ids [count - 1].term, "");
    rc = s_open_reader (self, path, &ids [count - 1], reader_p);
    free (ids);
    return rc;
}

int
raft_snapshot_store_open_index (raft_snapshot_store_t *self, uint64_t index,
                                raft_snapshot_reader_t **reader_p)
{
    assert (self && reader_p);
    *reader_p = NULL;
    raft_snapshot_id_t *ids;
    size_t count;
    int rc = raft_snapshot_store_list (self, &ids, &count);
    if (rc)
        return rc;
    size_t pick = count;
    for (size_t i = 0; i < count; i++)
        if (ids [i].index == index)
            pick = i;           //  sorted: the last match has the newest term
    if (pick == count) {
        free (ids);
        snprintf (self->errmsg, sizeof self->errmsg,
                  "raft snapshots: no snapshot at index %" PRIu64 " in %s",
                  index, self->dir);
        return TITAN_ENOTFOUND;
    }
    char path [PATH_MAX];
    s_name (self, path, sizeof path, ids [pick].index, ids [pick].term, "");
    rc = s_open_reader (self, path, &ids [pick], reader_p);
    free (ids);
    return rc;
}

uint64_t
raft_snapshot_reader_index (raft_snapshot_reader_t *self)
{
    assert (self);
    return self->index;
}

uint64_t
raft_snapshot_reader_term (raft_snapshot_reader_t *self)
{
    assert (self);
    return self->term;
}

const void *
raft_snapshot_reader_conf (raft_snapshot_reader_t *self, uint32_t *size)
{
    assert (self && size);
    *size = self->conf_size;
    return self->conf;
}

uint64_t
raft_snapshot_reader_data_size (raft_snapshot_reader_t *self)
{
    assert (self);
    return self->data_size;
}

int
raft_snapshot_reader_read (raft_snapshot_reader_t *self, void *buf,
                           size_t size, size_t *nread)
{
    assert (self && nread);
    assert (buf || size == 0);
    uint64_t left = self->data_size - self->pos;
    size_t n = left < size ? (size_t) left : size;
    *nread = 0;
    if (n == 0)
        return 0;
    int rc = raft_fio_pread (self->fd, buf, n,
                             (off_t) (self->data_offset + self->pos));
    if (rc)
        return rc;
    self->pos += n;
    *nread = n;
    return 0;
}

int
raft_snapshot_reader_pread (raft_snapshot_reader_t *self, uint64_t offset,
                            void *buf, size_t size, size_t *nread)
{
    assert (self && nread);
    assert (buf || size == 0);
    *nread = 0;
    if (offset >= self->data_size)
        return 0;
    uint64_t left = self->data_size - offset;
    size_t n = left < size ? (size_t) left : size;
    int rc = raft_fio_pread (self->fd, buf, n,
                             (off_t) (self->data_offset + offset));
    if (rc == 0)
        *nread = n;
    return rc;
}

void
raft_snapshot_reader_destroy (raft_snapshot_reader_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        raft_snapshot_reader_t *self = *self_p;
        close (self->fd);
        free (self->conf);
        free (self);
        *self_p = NULL;
    }
}
