/*  Temporary directories of the unit tests: removal of a flat directory
    (the files in it, then the directory), and creation of a fresh one.  */
#ifndef TITAN_TESTS_TEST_DIR_H_INCLUDED
#define TITAN_TESTS_TEST_DIR_H_INCLUDED

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
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

/*  Makes a fresh directory "/tmp/<prefix>-XXXXXX" into `dir` (of `size`
    bytes); a check assertion fails when it cannot.  */
static inline void
test_dir_make (char *dir, size_t size, const char *prefix)
{
    snprintf (dir, size, "/tmp/%s-XXXXXX", prefix);
    ck_assert_ptr_nonnull (mkdtemp (dir));
}

#endif
