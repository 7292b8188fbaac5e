/*  Temporary directories of the unit tests: removal of a flat directory
    (the files in it, then the directory).  */
#ifndef TITAN_TESTS_TEST_DIR_H_INCLUDED
#define TITAN_TESTS_TEST_DIR_H_INCLUDED

#include <dirent.h>
#include <stdio.h>
#include <unistd.h>

/*  Removes the files of `dir` (not recursively) and `dir` itself; a
    missing directory is fine.  */
static inline void
test_dir_remove (const char *dir)
{
    DIR *d = opendir (dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir (d))) {
        if (de->d_name [0] == '.')
            continue;
        char path [4096];
        snprintf (path, sizeof path, "%s/%s", dir, de->d_name);
        unlink (path);
    }
    closedir (d);
    rmdir (dir);
}

#endif
