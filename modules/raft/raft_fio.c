/*  raft_fio: plain POSIX file operations for the Raft storage, plus the
    fault injection and "drop unsynced bytes" crash model used by its tests.

    With self == NULL every function is the system call (EINTR and short
    writes handled).  With a raft_fio_t, each mutating operation is counted
    by kind; an armed fault makes the chosen one fail.  Paths written
    through the layer are remembered with their last synced length, keyed by
    path so that the record survives close and follows renames.  */
#include "raft_fio.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char *path;
    int fd;                     /* -1 once closed */
    off_t synced;               /* length made durable by the last sync */
} s_file_t;

//  A directory-entry change not yet made durable by a directory fsync.
typedef enum { DOP_CREATE, DOP_UNLINK, DOP_RENAME } s_dop_kind_t;

typedef struct {
    s_dop_kind_t kind;
    char *dir;                  /* directory whose fsync makes it durable */
    char *path;                 /* created / unlinked path, rename target */
    char *from;                 /* rename source */
    char *hidden;               /* unlinked file, or rename's replaced target */
} s_dop_t;

struct _raft_fio_t {
    unsigned counts [6];        /* operations attempted, per kind bit */
    unsigned fail_kinds;        /* armed fault: kinds it counts */
    unsigned fail_left;         /* operations to go before it fires */
    int fail_err;
    bool fail_torn;
    bool fail_sticky;
    bool fired;
    bool dead;                  /* sticky fault fired: all of fail_kinds fail */
    bool nosync;                /* model syncs without the system call */
    s_file_t *files;
    size_t nfiles;
    size_t files_cap;
    s_dop_t *dops;              /* journal of undurable directory changes */
    size_t ndops;
    size_t dops_cap;
    unsigned hidden_seq;
};

static void
s_dop_free (s_dop_t *dop)
{
    free (dop->dir);
    free (dop->path);
    free (dop->from);
    free (dop->hidden);
}

raft_fio_t *
raft_fio_new (void)
{
    return calloc (1, sizeof (raft_fio_t));
}

void
raft_fio_destroy (raft_fio_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        raft_fio_t *self = *self_p;
        //  Changes still journaled are taken as having reached the disk.
        for (size_t i = 0; i < self->ndops; i++) {
            if (self->dops [i].hidden)
                unlink (self->dops [i].hidden);
            s_dop_free (&self->dops [i]);
        }
        free (self->dops);
        for (size_t i = 0; i < self->nfiles; i++)
            free (self->files [i].path);
        free (self->files);
        free (self);
        *self_p = NULL;
    }
}

void
raft_fio_fail (raft_fio_t *self, unsigned kinds, unsigned nth, int err,
               bool torn, bool sticky)
{
    assert (self);
    assert (nth == 0 || err > 0);
    self->fail_kinds = nth ? kinds : 0;
    self->fail_left = nth;
    self->fail_err = err;
    self->fail_torn = torn;
    self->fail_sticky = sticky;
    self->fired = false;
    self->dead = false;
}

void
raft_fio_set_nosync (raft_fio_t *self, bool nosync)
{
    assert (self);
    self->nosync = nosync;
}

unsigned
raft_fio_count (raft_fio_t *self, unsigned kinds)
{
    assert (self);
    unsigned total = 0;
    for (int bit = 0; bit < 6; bit++)
        if (kinds & (1u << bit))
            total += self->counts [bit];
    return total;
}

bool
raft_fio_fired (raft_fio_t *self)
{
    assert (self);
    return self->fired;
}

//  Counts one operation of `kind` and decides whether it fails: returns 0
//  to proceed or the negative errno to fail with.
static int
s_inject (raft_fio_t *self, unsigned kind)
{
    if (!self)
        return 0;
    for (int bit = 0; bit < 6; bit++)
        if (kind == (1u << bit))
            self->counts [bit]++;
    if (!(self->fail_kinds & kind))
        return 0;
    if (self->dead)
        return -self->fail_err;
    if (self->fail_left > 0 && --self->fail_left == 0) {
        self->fired = true;
        if (self->fail_sticky)
            self->dead = true;
        else
            self->fail_kinds = 0;
        return -self->fail_err;
    }
    return 0;
}

static s_file_t *
s_find_path (raft_fio_t *self, const char *path)
{
    for (size_t i = 0; i < self->nfiles; i++)
        if (strcmp (self->files [i].path, path) == 0)
            return &self->files [i];
    return NULL;
}

static s_file_t *
s_find_fd (raft_fio_t *self, int fd)
{
    for (size_t i = 0; i < self->nfiles; i++)
        if (self->files [i].fd == fd)
            return &self->files [i];
    return NULL;
}

static void
s_forget (raft_fio_t *self, s_file_t *file)
{
    free (file->path);
    *file = self->files [--self->nfiles];
}

//  Remembers `path` open as `fd` with `synced` durable bytes.  Returns 0 or
//  -ENOMEM.
static int
s_track (raft_fio_t *self, const char *path, int fd, off_t synced)
{
    s_file_t *file = s_find_path (self, path);
    if (file) {
        file->fd = fd;
        if (synced < file->synced)
            file->synced = synced;
        return 0;
    }
    if (self->nfiles == self->files_cap) {
        size_t cap = self->files_cap ? self->files_cap * 2 : 16;
        s_file_t *files = realloc (self->files, cap * sizeof (s_file_t));
        if (!files)
            return -ENOMEM;
        self->files = files;
        self->files_cap = cap;
    }
    char *copy = strdup (path);
    if (!copy)
        return -ENOMEM;
    self->files [self->nfiles++] = (s_file_t) { copy, fd, synced };
    return 0;
}

//  Makes the record of `from` (if any) the record of `to`.
static int
s_move_record (raft_fio_t *self, const char *from, const char *to)
{
    s_file_t *file = s_find_path (self, from);
    if (!file)
        return 0;
    char *copy = strdup (to);
    if (!copy)
        return -ENOMEM;
    free (file->path);
    file->path = copy;
    return 0;
}

//  Journals a directory change; takes ownership of the strings (even on
//  failure).  Returns 0 or -ENOMEM.
static int
s_journal (raft_fio_t *self, s_dop_kind_t kind, char *path, char *from,
           char *hidden)
{
    char *dir = path ? strdup (path) : NULL;
    if (dir) {
        char *slash = strrchr (dir, '/');
        if (slash && slash != dir)
            *slash = 0;
        else
            strcpy (dir, slash ? "/" : ".");
    }
    if (self->ndops == self->dops_cap) {
        size_t cap = self->dops_cap ? self->dops_cap * 2 : 16;
        s_dop_t *dops = realloc (self->dops, cap * sizeof (s_dop_t));
        if (dops) {
            self->dops = dops;
            self->dops_cap = cap;
        }
    }
    if (!dir || !path || self->ndops == self->dops_cap) {
        free (dir);
        free (path);
        free (from);
        free (hidden);
        return -ENOMEM;
    }
    self->dops [self->ndops++] = (s_dop_t) { kind, dir, path, from, hidden };
    return 0;
}

//  A fresh hidden name next to `path`.
static char *
s_hidden_name (raft_fio_t *self, const char *path, const char *what)
{
    size_t len = strlen (path) + 32;
    char *name = malloc (len);
    if (name)
        snprintf (name, len, "%s.fio-%s-%u", path, what, ++self->hidden_seq);
    return name;
}

//  Undoes the journaled directory changes, newest first.
static int
s_undo_journal (raft_fio_t *self)
{
    int rc = 0;
    while (self->ndops > 0) {
        s_dop_t *dop = &self->dops [--self->ndops];
        int step = 0;
        switch (dop->kind) {
            case DOP_CREATE:
                if (unlink (dop->path) != 0 && errno != ENOENT)
                    step = -errno;
                else {
                    s_file_t *file = s_find_path (self, dop->path);
                    if (file)
                        s_forget (self, file);
                }
                break;
            case DOP_UNLINK:
                if (rename (dop->hidden, dop->path) != 0)
                    step = -errno;
                else
                    step = s_move_record (self, dop->hidden, dop->path);
                break;
            case DOP_RENAME:
                if (rename (dop->path, dop->from) != 0)
                    step = -errno;
                else
                    step = s_move_record (self, dop->path, dop->from);
                if (step == 0 && dop->hidden) {
                    if (rename (dop->hidden, dop->path) != 0)
                        step = -errno;
                    else
                        step = s_move_record (self, dop->hidden, dop->path);
                }
                break;
        }
        if (step && rc == 0)
            rc = step;
        s_dop_free (dop);
    }
    return rc;
}

int
raft_fio_drop_unsynced (raft_fio_t *self)
{
    assert (self);
    self->fail_kinds = 0;
    self->dead = false;
    int rc = s_undo_journal (self);
    for (size_t i = 0; i < self->nfiles; i++) {
        struct stat st;
        if (stat (self->files [i].path, &st) != 0)
            continue;
        if (st.st_size > self->files [i].synced
        &&  truncate (self->files [i].path, self->files [i].synced) != 0
        &&  rc == 0)
            rc = -errno;
    }
    return rc;
}

int
raft_fio_open (raft_fio_t *self, const char *path, int flags, mode_t mode)
{
    bool existed = true;
    if (flags & O_CREAT) {
        int rc = s_inject (self, RAFT_FIO_CREATE);
        if (rc)
            return rc;
        existed = access (path, F_OK) == 0;
    }
    int fd;
    do
        fd = open (path, flags | O_CLOEXEC, mode);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return -errno;
    if (self && (flags & (O_WRONLY | O_RDWR))) {
        //  What was on disk before we opened it counts as durable; a file
        //  we just created (or truncated) has nothing durable yet.
        struct stat st;
        off_t synced = 0;
        if (existed && !(flags & O_TRUNC) && fstat (fd, &st) == 0)
            synced = st.st_size;
        int rc = s_track (self, path, fd, synced);
        if (rc == 0 && !existed)
            rc = s_journal (self, DOP_CREATE, strdup (path), NULL, NULL);
        if (rc) {
            close (fd);
            return rc;
        }
    }
    return fd;
}

void
raft_fio_close (raft_fio_t *self, int fd)
{
    if (fd < 0)
        return;
    if (self) {
        s_file_t *file = s_find_fd (self, fd);
        if (file)
            file->fd = -1;
    }
    close (fd);
}

int
raft_fio_pwrite (raft_fio_t *self, int fd, const void *data, size_t size,
                 off_t offset)
{
    int inject = s_inject (self, RAFT_FIO_WRITE);
    if (inject && self->fail_torn && size > 1)
        size /= 2;              //  tear: write half, then fail
    const char *p = data;
    while (size > 0) {
        ssize_t n = pwrite (fd, p, size, offset);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EIO;
        p += n;
        size -= (size_t) n;
        offset += n;
    }
    return inject;
}

int
raft_fio_sync (raft_fio_t *self, int fd)
{
    int rc = s_inject (self, RAFT_FIO_SYNC);
    if (rc)
        return rc;
    if ((!self || !self->nosync) && fdatasync (fd) != 0)
        return -errno;
    if (self) {
        s_file_t *file = s_find_fd (self, fd);
        struct stat st;
        if (file && fstat (fd, &st) == 0)
            file->synced = st.st_size;
    }
    return 0;
}

int
raft_fio_sync_dir (raft_fio_t *self, const char *dir)
{
    int rc = s_inject (self, RAFT_FIO_SYNC);
    if (rc)
        return rc;
    if (!self || !self->nosync) {
        int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
            return -errno;
        rc = fsync (fd) == 0 ? 0 : -errno;
        close (fd);
    }
    if (rc == 0 && self) {
        //  The journaled changes in this directory are durable now.
        size_t keep = 0;
        for (size_t i = 0; i < self->ndops; i++) {
            s_dop_t *dop = &self->dops [i];
            if (strcmp (dop->dir, dir) != 0) {
                self->dops [keep++] = *dop;
                continue;
            }
            if (dop->hidden) {
                unlink (dop->hidden);
                s_file_t *file = s_find_path (self, dop->hidden);
                if (file)
                    s_forget (self, file);
            }
            s_dop_free (dop);
        }
        self->ndops = keep;
    }
    return rc;
}

int
raft_fio_mkdir (raft_fio_t *self, const char *dir)
{
    if (mkdir (dir, 0755) != 0)
        return errno == EEXIST ? 0 : -errno;
    char *parent = strdup (dir);
    if (!parent)
        return -ENOMEM;
    size_t len = strlen (parent);
    while (len > 1 && parent [len - 1] == '/')
        parent [--len] = 0;
    char *slash = strrchr (parent, '/');
    if (!slash)
        strcpy (parent, ".");
    else
    if (slash == parent)
        parent [1] = 0;
    else
        *slash = 0;
    int rc = raft_fio_sync_dir (self, parent);
    free (parent);
    return rc;
}

int
raft_fio_truncate (raft_fio_t *self, int fd, off_t size)
{
    int rc = s_inject (self, RAFT_FIO_TRUNCATE);
    if (rc)
        return rc;
    if (ftruncate (fd, size) != 0)
        return -errno;
    if (self) {
        s_file_t *file = s_find_fd (self, fd);
        if (file && file->synced > size)
            file->synced = size;
    }
    return 0;
}

int
raft_fio_rename (raft_fio_t *self, const char *from, const char *to)
{
    int rc = s_inject (self, RAFT_FIO_RENAME);
    if (rc)
        return rc;
    if (!self)
        return rename (from, to) == 0 ? 0 : -errno;
    //  Keep a target that the rename replaces, to restore it on a crash.
    char *hidden = NULL;
    if (access (to, F_OK) == 0) {
        hidden = s_hidden_name (self, to, "replaced");
        if (!hidden)
            return -ENOMEM;
        if (link (to, hidden) != 0) {
            rc = -errno;
            free (hidden);
            return rc;
        }
        s_move_record (self, to, hidden);
    }
    if (rename (from, to) != 0) {
        rc = -errno;
        if (hidden) {
            s_move_record (self, hidden, to);
            unlink (hidden);
            free (hidden);
        }
        return rc;
    }
    rc = s_move_record (self, from, to);
    if (rc == 0)
        rc = s_journal (self, DOP_RENAME, strdup (to), strdup (from), hidden);
    else
        free (hidden);
    return rc;
}

int
raft_fio_unlink (raft_fio_t *self, const char *path)
{
    int rc = s_inject (self, RAFT_FIO_UNLINK);
    if (rc)
        return rc;
    if (!self)
        return unlink (path) == 0 || errno == ENOENT ? 0 : -errno;
    if (access (path, F_OK) != 0)
        return errno == ENOENT ? 0 : -errno;
    //  Keep the file under a hidden name until its directory is synced.
    char *hidden = s_hidden_name (self, path, "unlinked");
    if (!hidden)
        return -ENOMEM;
    if (rename (path, hidden) != 0) {
        rc = -errno;
        free (hidden);
        return rc;
    }
    rc = s_move_record (self, path, hidden);
    if (rc == 0)
        rc = s_journal (self, DOP_UNLINK, strdup (path), NULL, hidden);
    else
        free (hidden);
    return rc;
}

int
raft_fio_pread (int fd, void *data, size_t size, off_t offset)
{
    char *p = data;
    while (size > 0) {
        ssize_t n = pread (fd, p, size, offset);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EIO;
        p += n;
        size -= (size_t) n;
        offset += n;
    }
    return 0;
}
