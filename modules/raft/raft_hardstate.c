/*  raft_hardstate: a double-buffered, CRC-checked hard state file (see
    raft_hardstate.h).  A save overwrites the older of the two slots and
    syncs, so a crash at any point leaves the newer of the two states that
    were last durable, never a mix.  */
#include "raft_hardstate.h"

#include "titan/crc32c.h"
#include "titan/status.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HS_MAGIC      "TKVRHS01"
#define HS_SLOT_SIZE  4096u
#define HS_REC_SIZE   44u

struct _raft_hardstate_file_t {
    char path [PATH_MAX];
    raft_fio_t *fio;
    int fd;
    uint64_t seq;               /* sequence of the current slot */
    unsigned slot;              /* slot holding the current state */
    raft_hardstate_t state;
    bool pending;               /* a state written, not yet synced */
    raft_hardstate_t pending_state;
    int failed;
    char errmsg [PATH_MAX + 128];
};

static void
s_put64 (uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p [i] = (uint8_t) (v >> (8 * i));
}

static uint64_t
s_get64 (const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p [i];
    return v;
}

static void
s_encode (uint8_t *p, uint64_t seq, const raft_hardstate_t *state)
{
    memset (p, 0, HS_REC_SIZE);
    memcpy (p, HS_MAGIC, 8);
    s_put64 (p + 8, seq);
    s_put64 (p + 16, state->term);
    s_put64 (p + 24, state->vote);
    s_put64 (p + 32, state->commit);
    uint32_t crc = titan_crc32c (0, p, 40);
    for (int i = 0; i < 4; i++)
        p [40 + i] = (uint8_t) (crc >> (8 * i));
}

static bool
s_decode (const uint8_t *p, uint64_t *seq, raft_hardstate_t *state)
{
    uint32_t crc = (uint32_t) p [40] | (uint32_t) p [41] << 8
                 | (uint32_t) p [42] << 16 | (uint32_t) p [43] << 24;
    if (memcmp (p, HS_MAGIC, 8) != 0 || titan_crc32c (0, p, 40) != crc)
        return false;
    *seq = s_get64 (p + 8);
    state->term = s_get64 (p + 16);
    state->vote = s_get64 (p + 24);
    state->commit = s_get64 (p + 32);
    return true;
}

//  Creates the file with the zero state in slot 0, atomically.
static int
s_create (raft_hardstate_file_t *self, const char *dir)
{
    char tmp [PATH_MAX + 8];
    snprintf (tmp, sizeof tmp, "%s.tmp", self->path);
    int fd = raft_fio_open (self->fio, tmp, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        snprintf (self->errmsg, sizeof self->errmsg,
                  "raft hardstate: cannot create %s: %s", tmp, strerror (-fd));
        return fd;
    }
    uint8_t *buf = calloc (2, HS_SLOT_SIZE);
    if (!buf) {
        raft_fio_close (self->fio, fd);
        return -ENOMEM;
    }
    raft_hardstate_t zero = { 0, 0, 0 };
    s_encode (buf, 1, &zero);
    int rc = raft_fio_pwrite (self->fio, fd, buf, 2 * HS_SLOT_SIZE, 0);
    free (buf);
    if (rc == 0)
        rc = raft_fio_sync (self->fio, fd);
    raft_fio_close (self->fio, fd);
    if (rc == 0)
        rc = raft_fio_rename (self->fio, tmp, self->path);
    if (rc == 0)
        rc = raft_fio_sync_dir (self->fio, dir);
    if (rc)
        snprintf (self->errmsg, sizeof self->errmsg,
                  "raft hardstate: cannot create %s: %s", self->path,
                  strerror (-rc));
    return rc;
}

static int
s_load (raft_hardstate_file_t *self)
{
    struct stat st;
    if (fstat (self->fd, &st) != 0)
        return -errno;
    if (st.st_size != 2 * HS_SLOT_SIZE) {
        snprintf (self->errmsg, sizeof self->errmsg,
                  "raft hardstate: %s has size %lld, expected %u",
                  self->path, (long long) st.st_size, 2 * HS_SLOT_SIZE);
        return TITAN_ECORRUPT;
    }
    bool valid [2] = { false, false };
    uint64_t seq [2] = { 0, 0 };
    raft_hardstate_t state [2];
    for (unsigned i = 0; i < 2; i++) {
        uint8_t buf [HS_REC_SIZE];
        int rc = raft_fio_pread (self->fd, buf, sizeof buf,
                                 (off_t) i * HS_SLOT_SIZE);
        if (rc) {
            snprintf (self->errmsg, sizeof self->errmsg,
                      "raft hardstate: cannot read %s: %s", self->path,
                      strerror (-rc));
            return rc;
        }
        valid [i] = s_decode (buf, &seq [i], &state [i]);
    }
    if (!valid [0] && !valid [1]) {
        snprintf (self->errmsg, sizeof self->errmsg,
                  "raft hardstate: %s: both slots (offsets 0 and %u) fail "
                  "their checksum", self->path, HS_SLOT_SIZE);
        return TITAN_ECORRUPT;
    }
    unsigned pick = !valid [0] ? 1 : !valid [1] ? 0 : seq [1] > seq [0];
    self->slot = pick;
    self->seq = seq [pick];
    self->state = state [pick];
    return 0;
}

int
raft_hardstate_open (const char *dir, raft_fio_t *fio,
                     raft_hardstate_file_t **self_p,
                     raft_hardstate_t *state, char *errbuf, size_t errlen)
{
    assert (dir && self_p && state);
    *self_p = NULL;
    raft_hardstate_file_t *self = calloc (1, sizeof *self);
    if (!self) {
        if (errbuf)
            snprintf (errbuf, errlen, "raft hardstate: out of memory");
        return -ENOMEM;
    }
    self->fio = fio;
    self->fd = -1;
    int rc = 0;
    if ((size_t) snprintf (self->path, sizeof self->path, "%s/hardstate", dir)
        >= sizeof self->path) {
        snprintf (self->errmsg, sizeof self->errmsg,
                  "raft hardstate: path too long: %s", dir);
        rc = -ENAMETOOLONG;
    }
    if (rc == 0 && access (self->path, F_OK) != 0) {
        if (errno == ENOENT)
            rc = s_create (self, dir);
        else {
            rc = -errno;
            snprintf (self->errmsg, sizeof self->errmsg,
                      "raft hardstate: cannot access %s: %s", self->path,
                      strerror (errno));
        }
    }
    if (rc == 0) {
        self->fd = raft_fio_open (fio, self->path, O_RDWR, 0);
        if (self->fd < 0) {
            rc = self->fd;
            snprintf (self->errmsg, sizeof self->errmsg,
                      "raft hardstate: cannot open %s: %s", self->path,
                      strerror (-rc));
        }
    }
    if (rc == 0)
        rc = s_load (self);
    if (rc) {
        if (errbuf)
            snprintf (errbuf, errlen, "%s", self->errmsg);
        raft_hardstate_destroy (&self);
        return rc;
    }
    //  A stale temp file from a crash during creation is garbage.
    char tmp [PATH_MAX + 8];
    snprintf (tmp, sizeof tmp, "%s.tmp", self->path);
    unlink (tmp);
    *state = self->state;
    *self_p = self;
    return 0;
}

void
raft_hardstate_destroy (raft_hardstate_file_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        raft_hardstate_file_t *self = *self_p;
        raft_fio_close (self->fio, self->fd);
        free (self);
        *self_p = NULL;
    }
}

//  Records a failure of `what` (the object is failed from now on).
static int
s_fail (raft_hardstate_file_t *self, int rc, const char *what)
{
    snprintf (self->errmsg, sizeof self->errmsg,
              "raft hardstate: cannot %s %s: %s", what, self->path,
              strerror (-rc));
    self->failed = rc;
    return rc;
}

int
raft_hardstate_write (raft_hardstate_file_t *self,
                      const raft_hardstate_t *state)
{
    assert (self && state);
    if (self->failed)
        return self->failed;
    //  Always the slot not holding the durable state: a second write before
    //  the sync overwrites the pending one, never the durable one.
    uint8_t buf [HS_REC_SIZE];
    s_encode (buf, self->seq + 1, state);
    int rc = raft_fio_pwrite (self->fio, self->fd, buf, sizeof buf,
                              (off_t) (self->slot ^ 1u) * HS_SLOT_SIZE);
    if (rc)
        return s_fail (self, rc, "write");
    self->pending = true;
    self->pending_state = *state;
    return 0;
}

int
raft_hardstate_sync (raft_hardstate_file_t *self)
{
    assert (self);
    if (self->failed)
        return self->failed;
    if (!self->pending)
        return 0;
    int rc = raft_fio_sync (self->fio, self->fd);
    if (rc)
        return s_fail (self, rc, "sync");
    self->pending = false;
    self->slot ^= 1u;
    self->seq++;
    self->state = self->pending_state;
    return 0;
}

bool
raft_hardstate_unsynced (raft_hardstate_file_t *self)
{
    assert (self);
    return self->pending;
}

int
raft_hardstate_save (raft_hardstate_file_t *self,
                     const raft_hardstate_t *state)
{
    int rc = raft_hardstate_write (self, state);
    return rc ? rc : raft_hardstate_sync (self);
}

raft_hardstate_t
raft_hardstate_get (raft_hardstate_file_t *self)
{
    assert (self);
    return self->state;
}

const char *
raft_hardstate_errmsg (raft_hardstate_file_t *self)
{
    assert (self);
    return self->errmsg;
}
