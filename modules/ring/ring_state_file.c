/*  The ring module's state file (see ring_state_file.h): the whole
    encoding rewritten through a temporary file, fsync, rename and a
    directory fsync; read back with its size bounded before allocating.
*/
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "titan/status.h"
#include "ring_codec.h"
#include "ring_state_file.h"

#define STATE_NAME  "state"

//  Writes all `size` bytes to `fd`.
static int
s_write_all (int fd, const uint8_t *data, size_t size)
{
    while (size) {
        ssize_t n = write (fd, data, size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        data += n;
        size -= (size_t) n;
    }
    return 0;
}

static int
s_sync_dir (const char *dir)
{
    int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync (fd) == 0 ? 0 : -errno;
    close (fd);
    return rc;
}

int
ring_state_file_save (const char *dir, const ring_fsm_t *fsm, char *err,
                      size_t err_size)
{
    char path [PATH_MAX], tmp [PATH_MAX];
    if (snprintf (path, sizeof path, "%s/" STATE_NAME, dir) >= (int) sizeof path
    ||  snprintf (tmp, sizeof tmp, "%s/" STATE_NAME ".tmp", dir) >= (int) sizeof tmp) {
        ring_codec_err (err, err_size, "ring: state directory path too long: %s", dir);
        return -ENAMETOOLONG;
    }
    if (mkdir (dir, 0755) != 0 && errno != EEXIST) {
        int rc = -errno;
        ring_codec_err (err, err_size, "ring: cannot create %s: %s", dir,
                        strerror (-rc));
        return rc;
    }
    uint8_t *data;
    size_t size;
    if (ring_fsm_encode (fsm, &data, &size)) {
        ring_codec_err (err, err_size, "ring: out of memory encoding the state");
        return -ENOMEM;
    }
    const char *step = "create";
    int rc = 0;
    int fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        rc = -errno;
    if (rc == 0) {
        step = "write";
        rc = s_write_all (fd, data, size);
    }
    if (rc == 0) {
        step = "fsync";
        rc = fsync (fd) == 0 ? 0 : -errno;
    }
    if (fd >= 0 && close (fd) != 0 && rc == 0) {
        step = "close";
        rc = -errno;
    }
    free (data);
    if (rc) {
        ring_codec_err (err, err_size, "ring: cannot %s %s: %s", step, tmp,
                        strerror (-rc));
        unlink (tmp);
        return rc;
    }
    if (rename (tmp, path) != 0) {
        rc = -errno;
        ring_codec_err (err, err_size, "ring: cannot rename %s to %s: %s", tmp,
                        path, strerror (-rc));
        unlink (tmp);
        return rc;
    }
    rc = s_sync_dir (dir);
    if (rc)
        ring_codec_err (err, err_size, "ring: cannot fsync directory %s: %s", dir,
                        strerror (-rc));
    return rc;
}

int
ring_state_file_load (const char *dir, ring_fsm_t **fsm_p, char *err,
                      size_t err_size)
{
    *fsm_p = NULL;
    char path [PATH_MAX];
    if (snprintf (path, sizeof path, "%s/" STATE_NAME, dir) >= (int) sizeof path) {
        ring_codec_err (err, err_size, "ring: state directory path too long: %s", dir);
        return -ENAMETOOLONG;
    }
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int rc = -errno;
        ring_codec_err (err, err_size, "ring: cannot open %s: %s", path,
                        strerror (-rc));
        return rc;
    }
    struct stat st;
    int rc = fstat (fd, &st) == 0 ? 0 : -errno;
    if (rc == 0 && (st.st_size <= 0 || st.st_size > RING_FSM_MAX_BYTES)) {
        ring_codec_err (err, err_size, "ring: %s has %lld bytes (at most %u): "
                        "not a state file", path, (long long) st.st_size,
                        RING_FSM_MAX_BYTES);
        close (fd);
        return TITAN_ECORRUPT;
    }
    size_t size = rc == 0 ? (size_t) st.st_size : 0;
    uint8_t *data = rc == 0 ? (uint8_t *) malloc (size) : NULL;
    if (rc == 0 && !data)
        rc = -ENOMEM;
    size_t got = 0;
    while (rc == 0 && got < size) {
        ssize_t n = read (fd, data + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            rc = n < 0 ? -errno : -EIO;     //  shrank under us
        else
            got += (size_t) n;
    }
    close (fd);
    if (rc) {
        ring_codec_err (err, err_size, "ring: cannot read %s: %s", path,
                        strerror (-rc));
        free (data);
        return rc;
    }
    char why [256] = "";
    rc = ring_fsm_decode (data, size, fsm_p, why, sizeof why);
    free (data);
    if (rc)
        ring_codec_err (err, err_size, "ring: cannot load %s: %s", path, why);
    return rc;
}
