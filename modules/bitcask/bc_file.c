/*  Bitcask file layer with fault injection (see bc_file.h).

    With a fault object each file is tracked by path with two lengths: the
    bytes written and the bytes made durable by the last successful
    fdatasync.  A crash truncates every tracked file to its durable length,
    which is what a power cut may leave of data not yet synced.  The
    tracking table is small (one entry per open data, hint or merge file)
    and guarded by the fault object's mutex.  */
#include "bc_file.h"
#include <dirent.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char *path;
    uint64_t written;
    uint64_t durable;
} s_tracked_t;

struct bc_fault {
    pthread_mutex_t mu;
    int write_nth, write_err;
    int sync_nth, sync_err;
    bool crashed;
    uint64_t writes, syncs;
    s_tracked_t *files;
    size_t nfiles, cap;
};

struct bc_file {
    int fd;
    char *path;
    bc_fault_t *fault;
};

bc_fault_t *
bc_fault_new (void)
{
    bc_fault_t *self = calloc (1, sizeof *self);
    if (self)
        pthread_mutex_init (&self->mu, NULL);
    return self;
}

void
bc_fault_destroy (bc_fault_t **self_p)
{
    if (*self_p) {
        bc_fault_t *self = *self_p;
        for (size_t i = 0; i < self->nfiles; i++)
            free (self->files [i].path);
        free (self->files);
        pthread_mutex_destroy (&self->mu);
        free (self);
        *self_p = NULL;
    }
}

void
bc_fault_fail_write (bc_fault_t *self, int nth, int err)
{
    pthread_mutex_lock (&self->mu);
    self->write_nth = nth;
    self->write_err = err;
    pthread_mutex_unlock (&self->mu);
}

void
bc_fault_fail_sync (bc_fault_t *self, int nth, int err)
{
    pthread_mutex_lock (&self->mu);
    self->sync_nth = nth;
    self->sync_err = err;
    pthread_mutex_unlock (&self->mu);
}

/* Caller holds mu. */
static s_tracked_t *
s_find (bc_fault_t *self, const char *path)
{
    for (size_t i = 0; i < self->nfiles; i++)
        if (strcmp (self->files [i].path, path) == 0)
            return &self->files [i];
    return NULL;
}

static s_tracked_t *
s_track (bc_fault_t *self, const char *path, uint64_t size)
{
    s_tracked_t *t = s_find (self, path);
    if (t)
        return t;
    if (self->nfiles == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 16;
        s_tracked_t *files = realloc (self->files, cap * sizeof *files);
        if (!files)
            return NULL;
        self->files = files;
        self->cap = cap;
    }
    char *copy = strdup (path);
    if (!copy)
        return NULL;
    t = &self->files [self->nfiles++];
    t->path = copy;
    t->written = size;
    t->durable = size;
    return t;
}

uint64_t
bc_fault_crash (bc_fault_t *self)
{
    uint64_t dropped = 0;
    pthread_mutex_lock (&self->mu);
    for (size_t i = 0; i < self->nfiles; i++) {
        s_tracked_t *t = &self->files [i];
        struct stat st;
        if (stat (t->path, &st) == 0 && (uint64_t) st.st_size > t->durable) {
            dropped += (uint64_t) st.st_size - t->durable;
            if (truncate (t->path, (off_t) t->durable) != 0)
                dropped -= (uint64_t) st.st_size - t->durable;
        }
        t->written = t->durable;
    }
    self->crashed = true;
    pthread_mutex_unlock (&self->mu);
    return dropped;
}

void
bc_fault_revive (bc_fault_t *self)
{
    pthread_mutex_lock (&self->mu);
    self->crashed = false;
    self->write_nth = self->sync_nth = 0;
    pthread_mutex_unlock (&self->mu);
}

uint64_t
bc_fault_writes (bc_fault_t *self)
{
    pthread_mutex_lock (&self->mu);
    uint64_t n = self->writes;
    pthread_mutex_unlock (&self->mu);
    return n;
}

uint64_t
bc_fault_syncs (bc_fault_t *self)
{
    pthread_mutex_lock (&self->mu);
    uint64_t n = self->syncs;
    pthread_mutex_unlock (&self->mu);
    return n;
}

int64_t
bc_fault_durable (bc_fault_t *self, const char *path)
{
    pthread_mutex_lock (&self->mu);
    s_tracked_t *t = s_find (self, path);
    int64_t n = t ? (int64_t) t->durable : -1;
    pthread_mutex_unlock (&self->mu);
    return n;
}

int
bc_file_open (const char *path, int flags, mode_t mode, bc_fault_t *fault,
              bc_file_t **file_p)
{
    *file_p = NULL;
    if (fault) {
        pthread_mutex_lock (&fault->mu);
        bool crashed = fault->crashed;
        pthread_mutex_unlock (&fault->mu);
        if (crashed && (flags & (O_WRONLY | O_RDWR | O_CREAT)))
            return -EIO;
    }
    bc_file_t *self = calloc (1, sizeof *self);
    if (!self)
        return -ENOMEM;
    self->path = strdup (path);
    if (!self->path) {
        free (self);
        return -ENOMEM;
    }
    self->fd = open (path, flags | O_CLOEXEC, mode);
    if (self->fd < 0) {
        int rc = -errno;
        free (self->path);
        free (self);
        return rc;
    }
    self->fault = fault;
    if (fault) {
        struct stat st;
        uint64_t size = fstat (self->fd, &st) == 0 ? (uint64_t) st.st_size : 0;
        pthread_mutex_lock (&fault->mu);
        s_tracked_t *t = s_track (fault, path, size);
        pthread_mutex_unlock (&fault->mu);
        if (!t) {
            bc_file_close (&self);
            return -ENOMEM;
        }
    }
    *file_p = self;
    return 0;
}

void
bc_file_close (bc_file_t **self_p)
{
    if (*self_p) {
        bc_file_t *self = *self_p;
        if (self->fd >= 0)
            close (self->fd);
        free (self->path);
        free (self);
        *self_p = NULL;
    }
}

static int
s_write_all (int fd, const uint8_t *p, size_t len, uint64_t offset)
{
    while (len > 0) {
        ssize_t n = pwrite (fd, p, len, (off_t) offset);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EIO;
        p += n;
        len -= (size_t) n;
        offset += (uint64_t) n;
    }
    return 0;
}

int
bc_file_pwrite (bc_file_t *self, const void *buf, size_t len, uint64_t offset)
{
    bc_fault_t *fault = self->fault;
    if (fault) {
        int err = 0;
        pthread_mutex_lock (&fault->mu);
        if (fault->crashed)
            err = EIO;
        else
        if (fault->write_nth > 0 && --fault->write_nth == 0)
            err = fault->write_err;
        pthread_mutex_unlock (&fault->mu);
        if (err) {
            /* A failing device may have taken part of the bytes. */
            if (err != EIO || len > 1)
                (void) s_write_all (self->fd, buf, len / 2, offset);
            pthread_mutex_lock (&fault->mu);
            s_tracked_t *t = s_find (fault, self->path);
            if (t && offset + len / 2 > t->written)
                t->written = offset + len / 2;
            pthread_mutex_unlock (&fault->mu);
            return -err;
        }
    }
    int rc = s_write_all (self->fd, buf, len, offset);
    if (fault && rc == 0) {
        pthread_mutex_lock (&fault->mu);
        fault->writes++;
        s_tracked_t *t = s_find (fault, self->path);
        if (t && offset + len > t->written)
            t->written = offset + len;
        pthread_mutex_unlock (&fault->mu);
    }
    return rc;
}

int64_t
bc_file_pread (bc_file_t *self, void *buf, size_t len, uint64_t offset)
{
    uint8_t *p = buf;
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread (self->fd, p + done, len - done,
                           (off_t) (offset + done));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            break;
        done += (size_t) n;
    }
    return (int64_t) done;
}

int
bc_file_sync (bc_file_t *self)
{
    bc_fault_t *fault = self->fault;
    uint64_t written = 0;
    if (fault) {
        int err = 0;
        pthread_mutex_lock (&fault->mu);
        if (fault->crashed)
            err = EIO;
        else
        if (fault->sync_nth > 0 && --fault->sync_nth == 0)
            err = fault->sync_err;
        s_tracked_t *t = s_find (fault, self->path);
        if (t)
            written = t->written;
        pthread_mutex_unlock (&fault->mu);
        if (err)
            return -err;
    }
    if (fdatasync (self->fd) != 0)
        return -errno;
    if (fault) {
        pthread_mutex_lock (&fault->mu);
        fault->syncs++;
        s_tracked_t *t = s_find (fault, self->path);
        /* Only what had been written when the sync started is durable. */
        if (t && written > t->durable)
            t->durable = written;
        pthread_mutex_unlock (&fault->mu);
    }
    return 0;
}

int
bc_file_truncate (bc_file_t *self, uint64_t len)
{
    bc_fault_t *fault = self->fault;
    if (fault) {
        pthread_mutex_lock (&fault->mu);
        bool crashed = fault->crashed;
        pthread_mutex_unlock (&fault->mu);
        if (crashed)
            return -EIO;
    }
    if (ftruncate (self->fd, (off_t) len) != 0)
        return -errno;
    if (fault) {
        pthread_mutex_lock (&fault->mu);
        s_tracked_t *t = s_find (fault, self->path);
        if (t) {
            t->written = len;
            if (t->durable > len)
                t->durable = len;
        }
        pthread_mutex_unlock (&fault->mu);
    }
    return 0;
}

int
bc_file_allocate (bc_file_t *self, uint64_t len)
{
    bc_fault_t *fault = self->fault;
    if (fault) {
        pthread_mutex_lock (&fault->mu);
        bool crashed = fault->crashed;
        pthread_mutex_unlock (&fault->mu);
        if (crashed)
            return -EIO;
    }
    int rc = posix_fallocate (self->fd, 0, (off_t) len);
    return rc ? -rc : 0;
}

int64_t
bc_file_size (bc_file_t *self)
{
    struct stat st;
    if (fstat (self->fd, &st) != 0)
        return -errno;
    return (int64_t) st.st_size;
}

int
bc_file_fd (bc_file_t *self)
{
    return self->fd;
}

const char *
bc_file_path (bc_file_t *self)
{
    return self->path;
}

static int
s_check_crashed (bc_fault_t *fault)
{
    if (!fault)
        return 0;
    pthread_mutex_lock (&fault->mu);
    bool crashed = fault->crashed;
    pthread_mutex_unlock (&fault->mu);
    return crashed ? -EIO : 0;
}

int
bc_file_rename (bc_fault_t *fault, const char *from, const char *to)
{
    int rc = s_check_crashed (fault);
    if (rc)
        return rc;
    if (rename (from, to) != 0)
        return -errno;
    if (fault) {
        pthread_mutex_lock (&fault->mu);
        s_tracked_t *t = s_find (fault, from);
        char *copy = t ? strdup (to) : NULL;
        if (t && copy) {
            /* The target's old entry, if any, is replaced. */
            s_tracked_t *old = s_find (fault, to);
            if (old) {
                free (old->path);
                *old = fault->files [--fault->nfiles];
                t = s_find (fault, from);
            }
            free (t->path);
            t->path = copy;
        }
        pthread_mutex_unlock (&fault->mu);
    }
    return 0;
}

int
bc_file_unlink (bc_fault_t *fault, const char *path)
{
    int rc = s_check_crashed (fault);
    if (rc)
        return rc;
    if (unlink (path) != 0)
        return -errno;
    if (fault) {
        pthread_mutex_lock (&fault->mu);
        s_tracked_t *t = s_find (fault, path);
        if (t) {
            free (t->path);
            *t = fault->files [--fault->nfiles];
        }
        pthread_mutex_unlock (&fault->mu);
    }
    return 0;
}

int
bc_file_sync_dir (bc_fault_t *fault, const char *dir)
{
    int rc = s_check_crashed (fault);
    if (rc)
        return rc;
    int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    rc = fsync (fd) == 0 ? 0 : -errno;
    close (fd);
    return rc;
}

int
bc_file_remove_dir (bc_fault_t *fault, const char *dir)
{
    DIR *d = opendir (dir);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir (d))) {
        if (strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
            continue;
        char path [4096];
        snprintf (path, sizeof path, "%s/%s", dir, de->d_name);
        int r = bc_file_unlink (fault, path);
        if (r && r != -ENOENT && !rc)
            rc = r;
    }
    closedir (d);
    if (rc == 0 && rmdir (dir) != 0 && errno != ENOENT)
        rc = -errno;
    return rc;
}

void
bc_file_parent_dir (const char *dir, char *out, size_t size)
{
    snprintf (out, size, "%s", dir);
    size_t len = strlen (out);
    while (len > 1 && out [len - 1] == '/')
        out [--len] = 0;
    char *slash = strrchr (out, '/');
    if (!slash)
        snprintf (out, size, ".");
    else
    if (slash == out)
        out [1] = 0;
    else
        *slash = 0;
}
