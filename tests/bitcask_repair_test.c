/*  Tests of the Bitcask engine's data-error handling (issue 7): a read of
    a record whose bytes rotted, or whose file is gone, answers
    TITAN_ECORRUPT (DATA_LOSS on the bus) and never bad bytes; a damaged
    hint is ignored and counted; a damaged record in the middle of a
    sealed file does not lose the records after it (resync); repairs
    rewrite a record only while the key is at the damaged revision; a
    scrub pass reports exactly the damaged records.  Files are damaged by
    flipping bytes with the engine closed, as rot on a disk would.  */
#include <check.h>
#include "check_run.h"
#include "test_dir.h"
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bc_engine.h"
#include "bc_format.h"
#include "bc_scrub.h"
#include "titan/escape.h"
#include "titan/status.h"

static char s_dir [256];

static void
s_setup (void)
{
    test_dir_make (s_dir, sizeof s_dir, "bitcask-repair");
}

static void
s_teardown (void)
{
    test_dir_remove (s_dir);
}

static bc_options_t
s_small_files (void)
{
    bc_options_t opt;
    bc_options_init (&opt);
    opt.max_file_bytes = 4096;     /* many sealed files */
    return opt;
}

static bc_engine_t *
s_open (const bc_options_t *opt)
{
    bc_engine_t *e = NULL;
    char err [256] = "";
    int rc = bc_engine_open (s_dir, opt, &e, err, sizeof err);
    ck_assert_msg (rc == 0, "open failed: %d %s", rc, err);
    return e;
}

static void
s_key (char *key, size_t size, int i)
{
    snprintf (key, size, "key-%04d", i);
}

static void
s_value (char *value, size_t size, int i)
{
    snprintf (value, size, "value of key %04d, long enough to hold", i);
}

/* Writes keys 0..n-1 with their values. */
static void
s_fill (bc_engine_t *e, int n)
{
    char key [32], value [64], err [256];
    for (int i = 0; i < n; i++) {
        s_key (key, sizeof key, i);
        s_value (value, sizeof value, i);
        int rc = bc_engine_put (e, key, strlen (key), value, strlen (value), 0,
                                NULL, err, sizeof err);
        ck_assert_msg (rc == 0, "put %s: %s", key, err);
    }
}

/* Creates the store with keys 0..n-1 and closes it (hints written). */
static void
s_store (const bc_options_t *opt, int n)
{
    bc_engine_t *e = s_open (opt);
    s_fill (e, n);
    bc_engine_destroy (&e);
}

/* Finds the record of `key` in the data files: its file path and offset
   (the last one when the key was written several times). */
static void
s_locate (const char *key, char *path, size_t size, off_t *offset)
{
    DIR *d = opendir (s_dir);
    struct dirent *de;
    *offset = -1;
    uint32_t best = 0;
    while ((de = readdir (d))) {
        const char *dot = strchr (de->d_name, '.');
        if (!dot || strcmp (dot, ".data"))
            continue;
        uint32_t id = (uint32_t) strtoul (de->d_name, NULL, 10);
        char p [512];
        snprintf (p, sizeof p, "%s/%s", s_dir, de->d_name);
        FILE *f = fopen (p, "rb");
        static uint8_t buf [1 << 16];
        size_t len = fread (buf, 1, sizeof buf, f);
        fclose (f);
        size_t pos = 0;
        bc_record_t rec;
        int64_t r;
        while ((r = bc_record_decode (buf + pos, len - pos, 1 << 20, &rec)) > 0) {
            if (rec.type == BC_REC_PUT && rec.key_len == strlen (key)
            &&  memcmp (rec.key, key, rec.key_len) == 0 && id >= best) {
                best = id;
                snprintf (path, size, "%s", p);
                *offset = (off_t) pos;
            }
            pos += (size_t) r;
        }
    }
    closedir (d);
    ck_assert_msg (*offset >= 0, "no record of %s", key);
}

/* XORs the byte at `offset` of `path` with `mask`. */
static void
s_flip (const char *path, off_t offset, uint8_t mask)
{
    int fd = open (path, O_RDWR);
    ck_assert_int_ge (fd, 0);
    uint8_t byte;
    ck_assert_int_eq (pread (fd, &byte, 1, offset), 1);
    byte ^= mask;
    ck_assert_int_eq (pwrite (fd, &byte, 1, offset), 1);
    close (fd);
}

/* The hint file beside data file `path`. */
static void
s_hint_of (const char *path, char *hint, size_t size)
{
    snprintf (hint, size, "%.*s.hint", (int) (strlen (path) - 5), path);
}

/* Asserts that key i reads its value. */
static void
s_expect_good (bc_engine_t *e, int i)
{
    char key [32], value [64], err [256];
    s_key (key, sizeof key, i);
    s_value (value, sizeof value, i);
    uint8_t *v = NULL;
    size_t len;
    uint64_t rev;
    int rc = bc_engine_get (e, key, strlen (key), &v, &len, &rev, err,
                            sizeof err);
    ck_assert_msg (rc == 0, "get %s: %d %s", key, rc, err);
    ck_assert_uint_eq (len, strlen (value));
    ck_assert (memcmp (v, value, len) == 0);
    free (v);
}

/* Asserts that key i is reported damaged, with `reason` in the message;
   returns the damaged entry's revision. */
static uint64_t
s_expect_loss (bc_engine_t *e, int i, const char *path, const char *reason)
{
    char key [32], err [256] = "";
    s_key (key, sizeof key, i);
    uint8_t *v = (uint8_t *) 1;
    size_t len = 7;
    uint64_t rev = 0;
    int rc = bc_engine_get (e, key, strlen (key), &v, &len, &rev, err,
                            sizeof err);
    ck_assert_int_eq (rc, TITAN_ECORRUPT);
    ck_assert_ptr_null (v);
    ck_assert_uint_eq (len, 0);
    ck_assert_uint_gt (rev, 0);
    ck_assert_msg (strstr (err, path) && strstr (err, "offset")
                   && strstr (err, reason), "message: %s", err);
    return rev;
}

/* A value byte flipped in a sealed file (its hint intact): that key is
   DATA_LOSS naming file, offset and reason; every other key reads. */
START_TEST (test_flipped_value)
{
    bc_options_t opt = s_small_files ();
    s_store (&opt, 200);
    bc_engine_t *e;
    char path [512];
    off_t off;
    s_locate ("key-0042", path, sizeof path, &off);
    s_flip (path, off + BC_REC_HEADER + 8 + 3, 0x01);
    e = s_open (&opt);
    s_expect_loss (e, 42, path, "checksum mismatch");
    for (int i = 0; i < 200; i++)
        if (i != 42)
            s_expect_good (e, i);
    bc_stats_t st;
    bc_engine_stats (e, &st);
    ck_assert_uint_eq (st.read_errors, 1);
    ck_assert_uint_eq (st.resync_regions, 0);
    ck_assert_uint_eq (st.hint_fallbacks, 0);
    bc_engine_destroy (&e);
}
END_TEST

/* A header byte flipped, the hint intact: DATA_LOSS "invalid record
   header".  The same with the hint gone: the load resyncs past the
   damage and keeps every record after it (the key whose header is gone
   is lost here: the consistency check or the scrub of another replica
   has to find it). */
START_TEST (test_flipped_header_resync)
{
    bc_options_t opt = s_small_files ();
    s_store (&opt, 200);
    bc_engine_t *e;
    char path [512], hint [512];
    off_t off;
    s_locate ("key-0050", path, sizeof path, &off);
    s_flip (path, off + 4, 0x7F);              /* the type byte */
    e = s_open (&opt);
    s_expect_loss (e, 50, path, "invalid record header");
    bc_engine_destroy (&e);
    s_hint_of (path, hint, sizeof hint);
    ck_assert_int_eq (unlink (hint), 0);
    e = s_open (&opt);
    bc_stats_t st;
    bc_engine_stats (e, &st);
    ck_assert_uint_eq (st.resync_regions, 1);
    ck_assert_uint_gt (st.resync_bytes, BC_REC_HEADER);
    for (int i = 0; i < 200; i++)
        if (i != 50)
            s_expect_good (e, i);
    uint64_t rev;
    ck_assert_int_eq (bc_engine_revision (e, "key-0050", 8, &rev),
                      TITAN_ENOTFOUND);
    bc_engine_destroy (&e);
    /* no hint is written for a damaged file: the next open counts again */
    ck_assert_int_ne (access (hint, F_OK), 0);
    e = s_open (&opt);
    bc_engine_stats (e, &st);
    ck_assert_uint_eq (st.resync_regions, 1);
    bc_engine_destroy (&e);
}
END_TEST

/* A value flipped and the hint gone: the scan keeps the key (its header
   is sound) pointing at the damage, so that an older version of the key
   in an earlier file is never served instead. */
START_TEST (test_salvaged_key_not_stale)
{
    bc_options_t opt = s_small_files ();
    bc_engine_t *e = s_open (&opt);
    char err [256];
    ck_assert_int_eq (bc_engine_put (e, "key-0007", 8, "stale", 5, 0, NULL,
                                     err, sizeof err), 0);
    s_fill (e, 200);
    bc_engine_destroy (&e);
    char path [512], hint [512];
    off_t off;
    s_locate ("key-0007", path, sizeof path, &off);
    s_flip (path, off + BC_REC_HEADER + 12, 0x20);
    s_hint_of (path, hint, sizeof hint);
    ck_assert_int_eq (unlink (hint), 0);
    e = s_open (&opt);
    s_expect_loss (e, 7, path, "checksum mismatch");
    for (int i = 0; i < 200; i++)
        if (i != 7)
            s_expect_good (e, i);
    bc_stats_t st;
    bc_engine_stats (e, &st);
    ck_assert_uint_eq (st.resync_regions, 1);
    bc_engine_destroy (&e);
}
END_TEST

/* A hint byte flipped: the hint is ignored (counted), the data file
   scanned, every key reads; the hint is written anew, so the next open
   finds nothing wrong. */
START_TEST (test_flipped_hint)
{
    bc_options_t opt = s_small_files ();
    s_store (&opt, 200);
    bc_engine_t *e;
    char path [512], hint [512];
    off_t off;
    s_locate ("key-0100", path, sizeof path, &off);
    s_hint_of (path, hint, sizeof hint);
    s_flip (hint, 30, 0x5A);
    e = s_open (&opt);
    bc_stats_t st;
    bc_engine_stats (e, &st);
    ck_assert_uint_eq (st.hint_fallbacks, 1);
    ck_assert_uint_eq (st.resync_regions, 0);
    for (int i = 0; i < 200; i++)
        s_expect_good (e, i);
    bc_engine_destroy (&e);
    e = s_open (&opt);
    bc_engine_stats (e, &st);
    ck_assert_uint_eq (st.hint_fallbacks, 0);
    bc_engine_destroy (&e);
}
END_TEST

/* A data file deleted under a running engine: its keys are DATA_LOSS
   "data file missing"; a file cut short: "shorter than recorded". */
START_TEST (test_missing_and_short_file)
{
    bc_options_t opt = s_small_files ();
    s_store (&opt, 200);
    bc_engine_t *e;
    char missing [512], shorter [512];
    off_t off1, off2;
    s_locate ("key-0010", missing, sizeof missing, &off1);
    s_locate ("key-0150", shorter, sizeof shorter, &off2);
    ck_assert_str_ne (missing, shorter);
    e = s_open (&opt);
    ck_assert_int_eq (unlink (missing), 0);
    ck_assert_int_eq (truncate (shorter, off2), 0);
    s_expect_loss (e, 10, missing, "data file missing");
    s_expect_loss (e, 150, shorter, "shorter than recorded");
    s_expect_good (e, 199);
    bc_engine_destroy (&e);
}
END_TEST

/* bc_engine_repair: rewrites at the damaged revision; refused when a
   newer write moved the key on, or when the key is absent; a "deleted"
   repair leaves the key absent; none of it moves the last revision; the
   repairs survive a reopen. */
START_TEST (test_repair_rules)
{
    bc_options_t opt = s_small_files ();
    s_store (&opt, 200);
    bc_engine_t *e;
    char path [512], path2 [512], path3 [512], err [256];
    off_t off, off2, off3;
    s_locate ("key-0020", path, sizeof path, &off);
    s_locate ("key-0030", path2, sizeof path2, &off2);
    s_locate ("key-0040", path3, sizeof path3, &off3);
    s_flip (path, off + BC_REC_HEADER + 10, 0x04);
    s_flip (path2, off2 + BC_REC_HEADER + 10, 0x04);
    s_flip (path3, off3 + BC_REC_HEADER + 10, 0x04);
    e = s_open (&opt);
    bc_stats_t before;
    bc_engine_stats (e, &before);
    uint64_t rev20 = s_expect_loss (e, 20, path, "checksum");
    uint64_t rev30 = s_expect_loss (e, 30, path2, "checksum");
    uint64_t rev40 = s_expect_loss (e, 40, path3, "checksum");
    char value [64];
    s_value (value, sizeof value, 20);
    /* a wrong revision is refused */
    ck_assert_int_eq (bc_engine_repair (e, "key-0020", 8, value, strlen (value),
                                        rev20 + 1, false, err, sizeof err),
                      TITAN_EMISMATCH);
    ck_assert_int_eq (bc_engine_repair (e, "key-0020", 8, value, strlen (value),
                                        rev20, false, err, sizeof err), 0);
    s_expect_good (e, 20);
    /* a newer write wins over a late repair */
    uint64_t newrev;
    ck_assert_int_eq (bc_engine_put (e, "key-0030", 8, "newer", 5, 0, &newrev,
                                     err, sizeof err), 0);
    s_value (value, sizeof value, 30);
    ck_assert_int_eq (bc_engine_repair (e, "key-0030", 8, value, strlen (value),
                                        rev30, false, err, sizeof err),
                      TITAN_EMISMATCH);
    ck_assert_msg (strstr (err, "at revision"), "%s", err);
    uint8_t *v;
    size_t len;
    uint64_t rev;
    ck_assert_int_eq (bc_engine_get (e, "key-0030", 8, &v, &len, &rev, err,
                                     sizeof err), 0);
    ck_assert (len == 5 && memcmp (v, "newer", 5) == 0 && rev == newrev);
    free (v);
    /* the key is absent on the healthy replica */
    ck_assert_int_eq (bc_engine_repair (e, "key-0040", 8, NULL, 0, rev40, true,
                                        err, sizeof err), 0);
    ck_assert_int_eq (bc_engine_revision (e, "key-0040", 8, &rev),
                      TITAN_ENOTFOUND);
    ck_assert_int_eq (bc_engine_repair (e, "nokey", 5, "x", 1, 3, false, err,
                                        sizeof err), TITAN_EMISMATCH);
    bc_stats_t st;
    bc_engine_stats (e, &st);
    ck_assert_uint_eq (st.repairs, 2);
    ck_assert_uint_eq (st.repairs_refused, 3);
    ck_assert_uint_eq (st.last_revision, before.last_revision + 1);
    ck_assert_uint_eq (st.applied_index, before.applied_index);
    bc_engine_destroy (&e);
    e = s_open (&opt);
    s_expect_good (e, 20);
    ck_assert_int_eq (bc_engine_revision (e, "key-0020", 8, &rev), 0);
    ck_assert_uint_eq (rev, rev20);
    ck_assert_int_eq (bc_engine_revision (e, "key-0040", 8, &rev),
                      TITAN_ENOTFOUND);
    bc_engine_stats (e, &st);
    ck_assert_uint_eq (st.last_revision, before.last_revision + 1);
    bc_engine_destroy (&e);
}
END_TEST

typedef struct {
    char keys [16][32];
    uint64_t revs [16];
    int n;
} s_found_t;

static void
s_on_bad (const uint8_t *key, size_t len, uint64_t revision, const char *why,
          void *arg)
{
    s_found_t *f = arg;
    ck_assert_msg (strstr (why, "offset"), "%s", why);
    ck_assert_int_lt (f->n, 16);
    snprintf (f->keys [f->n], 32, "%.*s", (int) len, (const char *) key);
    f->revs [f->n++] = revision;
}

static int
s_cmp (const void *a, const void *b)
{
    return strcmp (a, b);
}

/* Runs a whole unthrottled pass; returns the scrubber's stats. */
static bc_scrub_stats_t
s_scrub_pass (bc_engine_t *e, s_found_t *found)
{
    bc_scrubber_t *sc = bc_scrubber_new (0);
    ck_assert (bc_scrubber_start (sc, 0));
    int rc, steps = 0;
    while ((rc = bc_scrubber_step (sc, e, ++steps, s_on_bad, found)) == 0)
        ck_assert_int_lt (steps, 100000);
    ck_assert_int_eq (rc, 1);
    bc_scrub_stats_t st;
    bc_scrubber_stats (sc, &st);
    bc_scrubber_destroy (&sc);
    return st;
}

/* A scrub pass finds exactly the flipped records; once they are repaired
   the next pass finds none. */
START_TEST (test_scrub_finds_flipped)
{
    bc_options_t opt = s_small_files ();
    s_store (&opt, 500);
    bc_engine_t *e;
    const int bad [3] = { 3, 250, 411 };
    for (int i = 0; i < 3; i++) {
        char key [32], path [512];
        off_t off;
        s_key (key, sizeof key, bad [i]);
        s_locate (key, path, sizeof path, &off);
        s_flip (path, off + BC_REC_HEADER + 9, 0x80);
    }
    e = s_open (&opt);
    s_found_t found = { .n = 0 };
    bc_scrub_stats_t st = s_scrub_pass (e, &found);
    ck_assert_int_eq (found.n, 3);
    ck_assert_uint_eq (st.errors, 3);
    ck_assert_uint_eq (st.last_pass_errors, 3);
    ck_assert_uint_eq (st.records, 497);
    ck_assert_uint_eq (st.passes, 1);
    ck_assert (!st.running);
    qsort (found.keys, 3, 32, s_cmp);
    ck_assert_str_eq (found.keys [0], "key-0003");
    ck_assert_str_eq (found.keys [1], "key-0250");
    ck_assert_str_eq (found.keys [2], "key-0411");
    for (int i = 0; i < 3; i++) {
        char key [32], value [64], err [256];
        s_key (key, sizeof key, bad [i]);
        s_value (value, sizeof value, bad [i]);
        uint64_t rev;
        ck_assert_int_eq (bc_engine_revision (e, key, strlen (key), &rev), 0);
        ck_assert_int_eq (bc_engine_repair (e, key, strlen (key), value,
                                            strlen (value), rev, false, err,
                                            sizeof err), 0);
    }
    s_found_t again = { .n = 0 };
    st = s_scrub_pass (e, &again);
    ck_assert_int_eq (again.n, 0);
    ck_assert_uint_eq (st.records, 500);
    bc_engine_destroy (&e);
}
END_TEST

/* The rate limit, in virtual time: no bytes at the start, at most a
   quarter second's worth (plus one slice of keys) per step, and the pass
   goes on at the rate. */
START_TEST (test_scrub_rate)
{
    bc_options_t opt;
    bc_options_init (&opt);
    bc_engine_t *e = s_open (&opt);
    s_fill (e, 2000);            /* ~140 KB of records */
    const uint64_t rate = 20000;
    bc_scrubber_t *sc = bc_scrubber_new (rate);
    ck_assert (bc_scrubber_start (sc, 1000000));
    ck_assert (!bc_scrubber_start (sc, 1000000));
    ck_assert_int_eq (bc_scrubber_step (sc, e, 1000000, NULL, NULL), 0);
    bc_scrub_stats_t st;
    bc_scrubber_stats (sc, &st);
    ck_assert_uint_eq (st.bytes, 0);
    /* 10 s later: the bucket holds a quarter second, not ten */
    ck_assert_int_eq (bc_scrubber_step (sc, e, 11000000, NULL, NULL), 0);
    bc_scrubber_stats (sc, &st);
    /* a step reads whole slices of 64 keys (~70-byte records here) */
    ck_assert_uint_le (st.bytes, rate / 4 + 64 * 80);
    ck_assert_uint_ge (st.bytes, rate / 4);
    int64_t now = 11000000;
    int rc;
    while ((rc = bc_scrubber_step (sc, e, now += 100000, NULL, NULL)) == 0)
        ck_assert_int_lt (now, 100000000);
    ck_assert_int_eq (rc, 1);
    bc_scrubber_stats (sc, &st);
    ck_assert_uint_eq (st.records, 2000);
    /* the pass took about bytes / rate seconds of virtual time */
    double secs = (double) st.last_pass_us / 1e6;
    double want = (double) st.bytes / (double) rate;
    ck_assert_msg (secs >= want * 0.8 && secs <= want * 1.2 + 10.5,
                   "pass %.2f s for %llu bytes", secs,
                   (unsigned long long) st.bytes);
    bc_scrubber_destroy (&sc);
    bc_engine_destroy (&e);
}
END_TEST

START_TEST (test_key_escape)
{
    char out [64];
    titan_escape ("ab\\c\x01\xff", 6, out, sizeof out);
    ck_assert_str_eq (out, "ab\\x5cc\\x01\\xff");
    titan_escape ("0123456789abcdef", 16, out, 12);
    ck_assert_str_eq (out, "01234567...");
}
END_TEST

static Suite *
s_suite (void)
{
    Suite *s = suite_create ("bitcask_repair");
    TCase *tc = tcase_create ("repair");
    tcase_add_checked_fixture (tc, s_setup, s_teardown);
    tcase_set_timeout (tc, 60);
    tcase_add_test (tc, test_flipped_value);
    tcase_add_test (tc, test_flipped_header_resync);
    tcase_add_test (tc, test_salvaged_key_not_stale);
    tcase_add_test (tc, test_flipped_hint);
    tcase_add_test (tc, test_missing_and_short_file);
    tcase_add_test (tc, test_repair_rules);
    tcase_add_test (tc, test_scrub_finds_flipped);
    tcase_add_test (tc, test_scrub_rate);
    tcase_add_test (tc, test_key_escape);
    suite_add_tcase (s, tc);
    return s;
}

int
main (void)
{
    return titan_check_run (s_suite (), false);
}
