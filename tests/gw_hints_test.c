/*  Unit tests of the gateway's hint log (modules/grpc_gateway/gw_hints.h),
    the durable store of deferred puts: order and sequences across
    reopening, delivery marks, deletion of delivered files with the
    sequence carried on, the size limit, a torn tail cut at open, and a
    damaged record stopping its shard.  Each case works in its own
    temporary directory.  */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE              /* memmem */
#endif
#include "check_run.h"
#include "gw_hints.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_MAX_REQUEST 4096

static char s_dir [256];

static void
s_setup (void)
{
    char base [] = "/tmp/gw-hints-test.XXXXXX";
    ck_assert_ptr_nonnull (mkdtemp (base));
    snprintf (s_dir, sizeof s_dir, "%s/hints", base);
}

static void
s_teardown (void)
{
    char cmd [300];
    snprintf (cmd, sizeof cmd, "rm -rf '%.*s'", (int) (strrchr (s_dir, '/') - s_dir),
              s_dir);
    ck_assert_int_eq (system (cmd), 0);
}

static gw_hints_t *
s_open (uint32_t shards, uint64_t max_bytes)
{
    char error [300] = "";
    gw_hints_t *log = gw_hints_open (s_dir, shards, max_bytes, S_MAX_REQUEST,
                                     error, sizeof error);
    ck_assert_msg (log != NULL, "open: %s", error);
    return log;
}

static uint64_t
s_append (gw_hints_t *log, uint32_t shard, const char *text)
{
    char error [300] = "";
    uint64_t seq = 0;
    int rc = gw_hints_append (log, shard, (const uint8_t *) text, strlen (text),
                              1000, &seq, error, sizeof error);
    ck_assert_msg (rc == 0, "append: %d %s", rc, error);
    return seq;
}

/*  The head of `shard` is `text` at sequence `seq`.  */
static void
s_expect_head (gw_hints_t *log, uint32_t shard, uint64_t seq, const char *text)
{
    const gw_hint_t *h = gw_hints_head (log, shard);
    ck_assert_ptr_nonnull (h);
    ck_assert_uint_eq (h->sequence, seq);
    ck_assert_uint_eq (h->request_size, strlen (text));
    ck_assert (memcmp (h->request, text, strlen (text)) == 0);
}

/*  How many .log files the directory holds.  */
static int
s_count_files (void)
{
    DIR *d = opendir (s_dir);
    ck_assert_ptr_nonnull (d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir (d)))
        if (strstr (e->d_name, ".log"))
            n++;
    closedir (d);
    return n;
}

/*  The path of the only .log file of shard 0.  */
static void
s_only_file (char *path, size_t size)
{
    DIR *d = opendir (s_dir);
    ck_assert_ptr_nonnull (d);
    struct dirent *e;
    *path = '\0';
    while ((e = readdir (d)))
        if (strncmp (e->d_name, "s0-", 3) == 0)
            snprintf (path, size, "%s/%s", s_dir, e->d_name);
    closedir (d);
    ck_assert (*path);
}

START_TEST (test_order_and_reopen)
{
    gw_hints_t *log = s_open (2, 1 << 20);
    ck_assert_ptr_null (gw_hints_head (log, 0));
    ck_assert_uint_eq (s_append (log, 0, "a1"), 1);
    ck_assert_uint_eq (s_append (log, 1, "b1"), 1);
    ck_assert_uint_eq (s_append (log, 0, "a2"), 2);
    ck_assert_uint_eq (s_append (log, 0, "a3"), 3);
    uint64_t id0 = gw_hints_client_id (log, 0);
    ck_assert_uint_ne (id0, 0);
    ck_assert_uint_ne (id0, gw_hints_client_id (log, 1));
    s_expect_head (log, 0, 1, "a1");
    ck_assert_int_eq (gw_hints_delivered (log, 0, 2), -EINVAL);   /* not the head */
    ck_assert_int_eq (gw_hints_delivered (log, 0, 1), 0);
    s_expect_head (log, 0, 2, "a2");
    gw_hint_stats_t st;
    gw_hints_stats (log, 0, &st);
    ck_assert_uint_eq (st.pending, 2);
    ck_assert_uint_eq (st.delivered, 1);
    ck_assert_int_eq (st.oldest_ms, 1000);
    gw_hints_totals (log, &st);
    ck_assert_uint_eq (st.pending, 3);
    gw_hints_destroy (&log);
    ck_assert_ptr_null (log);

    /* reopened: the same pending hints, ids and next sequences */
    log = s_open (2, 1 << 20);
    ck_assert_uint_eq (gw_hints_client_id (log, 0), id0);
    s_expect_head (log, 0, 2, "a2");
    s_expect_head (log, 1, 1, "b1");
    ck_assert_uint_eq (s_append (log, 0, "a4"), 4);
    ck_assert_int_eq (gw_hints_delivered (log, 0, 2), 0);
    ck_assert_int_eq (gw_hints_delivered (log, 0, 3), 0);
    s_expect_head (log, 0, 4, "a4");
    gw_hints_destroy (&log);
}
END_TEST

START_TEST (test_delivered_files_deleted)
{
    gw_hints_t *log = s_open (1, 1 << 20);
    for (int i = 1; i <= 5; i++)
        s_append (log, 0, "x");
    for (uint64_t seq = 1; seq <= 5; seq++)
        ck_assert_int_eq (gw_hints_delivered (log, 0, seq), 0);
    ck_assert_ptr_null (gw_hints_head (log, 0));
    /* all delivered: one file left, holding only its header */
    ck_assert_int_eq (s_count_files (), 1);
    char path [512];
    s_only_file (path, sizeof path);
    struct stat st;
    ck_assert_int_eq (stat (path, &st), 0);
    ck_assert_int_lt (st.st_size, 64);
    gw_hints_destroy (&log);
    /* sequences go on from there, after a reopen too */
    log = s_open (1, 1 << 20);
    ck_assert_ptr_null (gw_hints_head (log, 0));
    ck_assert_uint_eq (s_append (log, 0, "y"), 6);
    gw_hints_destroy (&log);
}
END_TEST

START_TEST (test_size_limit)
{
    gw_hints_t *log = s_open (1, 150);    /* one 105-byte record fits */
    char error [300] = "";
    uint64_t seq;
    const uint8_t big [80] = { 0 };
    ck_assert_int_eq (gw_hints_append (log, 0, big, sizeof big, 1, &seq, error,
                                       sizeof error), 0);
    ck_assert_int_eq (gw_hints_append (log, 0, big, sizeof big, 1, &seq, error,
                                       sizeof error), -ENOSPC);
    ck_assert_ptr_nonnull (strstr (error, "hint_log_max_bytes"));
    ck_assert_int_eq (gw_hints_delivered (log, 0, 1), 0);
    ck_assert_int_eq (gw_hints_append (log, 0, big, sizeof big, 1, &seq, error,
                                       sizeof error), 0);
    ck_assert_uint_eq (seq, 2);
    uint8_t *huge = calloc (1, S_MAX_REQUEST + 1);
    ck_assert_int_eq (gw_hints_append (log, 0, huge, S_MAX_REQUEST + 1, 1, &seq,
                                       error, sizeof error), -EINVAL);
    free (huge);
    gw_hints_destroy (&log);
}
END_TEST

START_TEST (test_torn_tail_cut)
{
    gw_hints_t *log = s_open (1, 1 << 20);
    s_append (log, 0, "kept");
    s_append (log, 0, "torn");
    gw_hints_destroy (&log);
    char path [512];
    s_only_file (path, sizeof path);
    struct stat st;
    ck_assert_int_eq (stat (path, &st), 0);
    /* the last record loses its last 3 bytes: an append cut by a crash */
    ck_assert_int_eq (truncate (path, st.st_size - 3), 0);
    log = s_open (1, 1 << 20);
    s_expect_head (log, 0, 1, "kept");
    gw_hint_stats_t hs;
    gw_hints_stats (log, 0, &hs);
    ck_assert_uint_eq (hs.pending, 1);
    ck_assert_str_eq (hs.blocked, "");
    /* the torn record's sequence is given again: it was never acknowledged */
    ck_assert_uint_eq (s_append (log, 0, "next"), 2);
    gw_hints_destroy (&log);
    log = s_open (1, 1 << 20);
    gw_hints_stats (log, 0, &hs);
    ck_assert_uint_eq (hs.pending, 2);
    gw_hints_destroy (&log);
}
END_TEST

START_TEST (test_damage_stops_shard)
{
    gw_hints_t *log = s_open (2, 1 << 20);
    s_append (log, 0, "first");
    s_append (log, 0, "second-value");
    s_append (log, 0, "third");
    s_append (log, 1, "other shard");
    gw_hints_destroy (&log);
    char path [512];
    s_only_file (path, sizeof path);
    /* flip a byte inside the second hint's request */
    int fd = open (path, O_RDWR);
    ck_assert_int_ge (fd, 0);
    uint8_t buf [4096];
    ssize_t n = read (fd, buf, sizeof buf);
    ck_assert_int_gt (n, 0);
    uint8_t *at = memmem (buf, (size_t) n, "second-value", 12);
    ck_assert_ptr_nonnull (at);
    at [3] ^= 0x20;
    ck_assert_int_eq (pwrite (fd, buf, (size_t) n, 0), n);
    close (fd);

    log = s_open (2, 1 << 20);
    gw_hint_stats_t hs;
    gw_hints_stats (log, 0, &hs);
    ck_assert_ptr_nonnull (strstr (hs.blocked, "CRC-32C mismatch"));
    ck_assert_uint_eq (hs.pending, 1);            /* what came before */
    s_expect_head (log, 0, 1, "first");
    char error [300] = "";
    uint64_t seq;
    ck_assert_int_eq (gw_hints_append (log, 0, (const uint8_t *) "x", 1, 1, &seq,
                                       error, sizeof error), -EPERM);
    ck_assert_ptr_nonnull (strstr (error, "damaged"));
    /* the hint before the damage is still delivered; the file stays */
    ck_assert_int_eq (gw_hints_delivered (log, 0, 1), 0);
    ck_assert_ptr_null (gw_hints_head (log, 0));
    ck_assert_int_eq (access (path, F_OK), 0);
    /* the other shard is not affected */
    s_expect_head (log, 1, 1, "other shard");
    ck_assert_uint_eq (s_append (log, 1, "more"), 2);
    gw_hints_destroy (&log);
}
END_TEST

static Suite *
s_suite (void)
{
    Suite *s = suite_create ("gw_hints");
    TCase *tc = tcase_create ("hint log");
    tcase_add_checked_fixture (tc, s_setup, s_teardown);
    tcase_add_test (tc, test_order_and_reopen);
    tcase_add_test (tc, test_delivered_files_deleted);
    tcase_add_test (tc, test_size_limit);
    tcase_add_test (tc, test_torn_tail_cut);
    tcase_add_test (tc, test_damage_stops_shard);
    suite_add_tcase (s, tc);
    return s;
}

int
main (void)
{
    return titan_check_run (s_suite (), false);
}
