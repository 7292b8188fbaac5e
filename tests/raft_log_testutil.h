/*  Helpers shared by the Raft storage tests: temporary directories,
    deterministic entry payloads derived from (index, term), and byte-level
    file surgery (flip, cut, copy) to fake torn writes and corruption.
    Header-only (static functions) so each test binary stays one file.  */
#ifndef RAFT_LOG_TESTUTIL_H_INCLUDED
#define RAFT_LOG_TESTUTIL_H_INCLUDED

#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "raft_log.h"

static int
tu_rm_cb (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st; (void) flag; (void) ftw;
    return remove (path);
}

/*  Removes a directory tree.  */
static inline void
tu_rmrf (const char *path)
{
    nftw (path, tu_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/*  Creates a fresh temporary directory; returns a malloc'd path.  */
static inline char *
tu_tmpdir (const char *tag)
{
    const char *base = getenv ("TMPDIR");
    char templ [512];
    snprintf (templ, sizeof templ, "%s/%s-XXXXXX", base ? base : "/tmp", tag);
    char *dir = mkdtemp (templ);
    ck_assert_msg (dir, "mkdtemp %s failed", templ);
    return strdup (dir);
}

/*  Joins dir and name into buf.  */
static inline const char *
tu_path (char *buf, size_t len, const char *dir, const char *name)
{
    snprintf (buf, len, "%s/%s", dir, name);
    return buf;
}

/*  Payload of entry (index, term): size 0..299 and bytes from both, so any
    mix-up of entries shows.  Returns the size; buf must hold 300 bytes.  */
static inline uint32_t
tu_payload (uint64_t index, uint64_t term, uint8_t *buf)
{
    uint32_t size = (uint32_t) ((index * 37 + term * 11) % 300);
    uint64_t x = index * 0x9E3779B97F4A7C15ull + term;
    for (uint32_t i = 0; i < size; i++) {
        x ^= x >> 29; x *= 0xBF58476D1CE4E5B9ull; x ^= x >> 32;
        buf [i] = (uint8_t) x;
    }
    return size;
}

/*  Puts entries [from, to] with the given term into the log, `batch` per
    call of `put` (raft_log_append or raft_log_write); asserts success.  */
static inline void
tu_put (raft_log_t *log, uint64_t from, uint64_t to, uint64_t term,
        size_t batch, int (*put) (raft_log_t *, const raft_log_entry_t *,
                                  size_t))
{
    static uint8_t bufs [64][300];
    raft_log_entry_t entries [64];
    ck_assert (batch >= 1 && batch <= 64);
    uint64_t i = from;
    while (i <= to) {
        size_t n = 0;
        for (; n < batch && i <= to; n++, i++) {
            uint32_t size = tu_payload (i, term, bufs [n]);
            entries [n] = (raft_log_entry_t) { i, term, (uint8_t) (i % 3), bufs [n], size };
        }
        int rc = put (log, entries, n);
        ck_assert_msg (rc == 0, "append at %llu: %d %s",
                       (unsigned long long) entries [0].index, rc,
                       raft_log_errmsg (log));
    }
}

/*  Appends entries [from, to] with the given term, `batch` per call;
    asserts success.  */
static inline void
tu_append (raft_log_t *log, uint64_t from, uint64_t to, uint64_t term,
           size_t batch)
{
    tu_put (log, from, to, term, batch, raft_log_append);
}

/*  Checks that entry `e` is the one tu_payload makes for (index, term).  */
static inline void
tu_check_entry (const raft_log_entry_t *e, uint64_t index, uint64_t term)
{
    uint8_t buf [300];
    uint32_t size = tu_payload (index, term, buf);
    ck_assert_uint_eq (e->index, index);
    ck_assert_uint_eq (e->term, term);
    ck_assert_uint_eq (e->type, index % 3);
    ck_assert_uint_eq (e->size, size);
    ck_assert (size == 0 || memcmp (e->data, buf, size) == 0);
}

/*  Reads [lo, hi] back in chunks and checks each entry against
    terms[index] (terms indexed by log index).  */
static inline void
tu_verify (raft_log_t *log, uint64_t lo, uint64_t hi, const uint64_t *terms)
{
    uint64_t i = lo;
    while (i <= hi) {
        raft_log_entry_t *entries;
        size_t count;
        int rc = raft_log_entries (log, i, hi + 1, 4096, &entries, &count);
        ck_assert_msg (rc == 0, "entries [%llu, %llu]: %d %s",
                       (unsigned long long) i, (unsigned long long) hi, rc,
                       raft_log_errmsg (log));
        ck_assert_uint_ge (count, 1);
        for (size_t k = 0; k < count; k++) {
            tu_check_entry (&entries [k], i + k, terms [i + k]);
            uint64_t term;
            ck_assert_int_eq (raft_log_term (log, i + k, &term), 0);
            ck_assert_uint_eq (term, terms [i + k]);
        }
        i += count;
        free (entries);
    }
}

/*  Opens `dir` as a log, asserting success.  */
static inline raft_log_t *
tu_open (const char *dir, uint64_t segment_size, raft_fio_t *fio)
{
    raft_log_options_t options = { segment_size, 0, fio };
    raft_log_t *log = NULL;
    char err [512] = "";
    int rc = raft_log_open (dir, &options, &log, err, sizeof err);
    ck_assert_msg (rc == 0, "open %s: %d %s", dir, rc, err);
    return log;
}

/*  Size of a file, or -1.  */
static inline long
tu_file_size (const char *path)
{
    struct stat st;
    return stat (path, &st) == 0 ? (long) st.st_size : -1;
}

/*  XORs byte `offset` of a file with 0x40.  */
static inline void
tu_flip (const char *path, long offset)
{
    int fd = open (path, O_RDWR);
    ck_assert_int_ge (fd, 0);
    uint8_t b;
    ck_assert_int_eq (pread (fd, &b, 1, offset), 1);
    b ^= 0x40;
    ck_assert_int_eq (pwrite (fd, &b, 1, offset), 1);
    close (fd);
}

/*  Reads a whole file into a malloc'd buffer; stores its size.  */
static inline uint8_t *
tu_slurp (const char *path, size_t *size)
{
    long len = tu_file_size (path);
    ck_assert_int_ge (len, 0);
    uint8_t *buf = malloc ((size_t) len + 1);
    int fd = open (path, O_RDONLY);
    ck_assert_int_ge (fd, 0);
    ck_assert_int_eq (read (fd, buf, (size_t) len), len);
    close (fd);
    *size = (size_t) len;
    return buf;
}

/*  Writes `size` bytes as the whole content of a file.  */
static inline void
tu_spit (const char *path, const uint8_t *data, size_t size)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge (fd, 0);
    ck_assert_int_eq (write (fd, data, size), (ssize_t) size);
    close (fd);
}

/*  Lists the segment files of a log directory (sorted, so by first index)
    into names; returns how many (at most max).  */
static inline int
tu_segments (const char *dir, char names [][32], int max)
{
    struct dirent **list;
    int n = scandir (dir, &list, NULL, alphasort);
    int count = 0;
    for (int i = 0; i < n; i++) {
        size_t len = strlen (list [i]->d_name);
        if (len == 24 && strcmp (list [i]->d_name + 20, ".seg") == 0 && count < max)
            snprintf (names [count++], 32, "%s", list [i]->d_name);
        free (list [i]);
    }
    free (list);
    return count;
}

#endif
