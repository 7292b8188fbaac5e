/*  Temporary directories of the storage tests: remove one holding only
    files (what a bitcask shard directory holds).  Header-only.  */
#ifndef TEST_TMPDIR_H_INCLUDED
#define TEST_TMPDIR_H_INCLUDED

#include <dirent.h>
#include <stdio.h>
#include <unistd.h>

/*  Removes the files directly in `dir`, then `dir`; missing is fine.  */
static inline void
test_rmdir_flat (const char *dir)
{
    DIR *d = opendir (dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir (d))) {
        if (de->d_name [0] == '.')
            continue;
        char path [512];
        snprintf (path, sizeof path, "%s/%s", dir, de->d_name);
        unlink (path);
    }
    closedir (d);
    rmdir (dir);
}

#endif
