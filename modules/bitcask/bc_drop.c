/*  Bitcask shard drop (see bc_drop.h).  */
#include "bc_drop.h"
#include "bc_internal.h"
#include "bc_snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static atomic_int s_test_stop;

void
bc_drop_test_stop (int step)
{
    atomic_store (&s_test_stop, step);
}

int
bc_drop_dir (const char *dir, bc_fault_t *fault, bool *dropped,
             char *err, size_t errlen)
{
    if (dropped)
        *dropped = false;
    char trash [4096], parent [4096];
    if ((size_t) snprintf (trash, sizeof trash, "%s" BC_DROP_SUFFIX, dir)
        >= sizeof trash)
        return bc_err (err, errlen, -ENAMETOOLONG, "bitcask: shard directory "
                       "name too long: %.100s...", dir);
    bc_file_parent_dir (dir, parent, sizeof parent);
    /* `dir` ends up whole or absent, and no .restore/.old beside it */
    int rc = bc_snapshot_recover (dir, fault, true, err, errlen);
    if (rc)
        return rc;
    /* a trash left by an earlier interrupted drop would block the rename */
    rc = bc_file_remove_dir (fault, trash);
    if (rc)
        return bc_err (err, errlen, rc, "bitcask: cannot remove %s: %s",
                       trash, strerror (-rc));
    struct stat st;
    if (stat (dir, &st) != 0) {
        if (errno != ENOENT)
            return bc_err (err, errlen, -errno, "bitcask: cannot stat %s: %s",
                           dir, strerror (errno));
        return 0;                        /* not held: nothing to drop */
    }
    const char *step = "rename it to trash";
    rc = bc_file_rename (fault, dir, trash);
    if (rc == 0) {
        step = "fsync the parent after the rename";
        rc = bc_file_sync_dir (fault, parent);
    }
    if (rc == 0 && atomic_exchange (&s_test_stop, 0) == 1)
        return 0;                        /* tests: "crashed" here */
    if (rc == 0) {
        step = "remove the trash";
        rc = bc_file_remove_dir (fault, trash);
    }
    if (rc == 0) {
        step = "fsync the parent after the removal";
        rc = bc_file_sync_dir (fault, parent);
    }
    if (rc)
        return bc_err (err, errlen, rc, "bitcask: cannot drop %s (%s): %s",
                       dir, step, strerror (-rc));
    if (dropped)
        *dropped = true;
    return 0;
}

int
bc_drop_clean (const char *data_dir, bc_fault_t *fault, int *removed,
               char *err, size_t errlen)
{
    if (removed)
        *removed = 0;
    DIR *d = opendir (data_dir);
    if (!d) {
        if (errno == ENOENT)
            return 0;
        return bc_err (err, errlen, -errno, "bitcask: cannot list %s: %s",
                       data_dir, strerror (errno));
    }
    size_t suffix = strlen (BC_DROP_SUFFIX);
    int rc = 0, count = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir (d))) {
        size_t len = strlen (de->d_name);
        if (len <= suffix
        ||  strcmp (de->d_name + len - suffix, BC_DROP_SUFFIX) != 0)
            continue;
        char path [4096];
        snprintf (path, sizeof path, "%s/%s", data_dir, de->d_name);
        rc = bc_file_remove_dir (fault, path);
        if (rc)
            bc_err (err, errlen, rc, "bitcask: cannot remove the leftover "
                    "%s: %s", path, strerror (-rc));
        else
            count++;
    }
    closedir (d);
    if (rc == 0 && count > 0) {
        rc = bc_file_sync_dir (fault, data_dir);
        if (rc)
            bc_err (err, errlen, rc, "bitcask: cannot fsync %s: %s",
                    data_dir, strerror (-rc));
    }
    if (removed)
        *removed = count;
    return rc;
}
