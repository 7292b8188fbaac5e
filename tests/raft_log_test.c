/*  Unit tests of raft_log: append / read / truncate / compact / reset round
    trips across segment rotation and reopen, batch validation, and
    corruption reports (sealed segment, middle of the last segment, missing
    segment, read-back).  Segments are made tiny (4 KiB) so that a few
    hundred entries cross many segment boundaries.  */
#include "check_run.h"
#include <dirent.h>
#include <errno.h>

#include "titan/status.h"
#include "raft_log_testutil.h"

#define SEG 4096

static char *s_dir;
static uint64_t s_terms [4096];

static void
s_setup (void)
{
    s_dir = tu_tmpdir ("raftlog");
    memset (s_terms, 0, sizeof s_terms);
}

static void
s_teardown (void)
{
    tu_rmrf (s_dir);
    free (s_dir);
}

static void
s_append_model (raft_log_t *log, uint64_t from, uint64_t to, uint64_t term,
                size_t batch)
{
    tu_append (log, from, to, term, batch);
    for (uint64_t i = from; i <= to; i++)
        s_terms [i] = term;
}

START_TEST (test_empty)
{
    raft_log_t *log = tu_open (s_dir, SEG, NULL);
    ck_assert_uint_eq (raft_log_first_index (log), 1);
    ck_assert_uint_eq (raft_log_last_index (log), 0);
    ck_assert_uint_eq (raft_log_last_term (log), 0);
    uint64_t term = 99;
    ck_assert_int_eq (raft_log_term (log, 0, &term), 0);
    ck_assert_uint_eq (term, 0);
    ck_assert_int_eq (raft_log_term (log, 1, &term), TITAN_ENOTFOUND);
    raft_log_entry_t *entries;
    size_t count;
    ck_assert_int_eq (raft_log_entries (log, 1, 2, 100, &entries, &count),
                      TITAN_ENOTFOUND);
    raft_log_destroy (&log);
    ck_assert_ptr_null (log);
    log = tu_open (s_dir, SEG, NULL);
    ck_assert_uint_eq (raft_log_last_index (log), 0);
    raft_log_destroy (&log);
}
END_TEST

START_TEST (test_append_rotate_reopen)
{
    raft_log_t *log = tu_open (s_dir, SEG, NULL);
    s_append_model (log, 1, 100, 1, 1);
    s_append_model (log, 101, 300, 2, 64);
    s_append_model (log, 301, 500, 5, 7);
    ck_assert_uint_eq (raft_log_last_index (log), 500);
    ck_assert_uint_eq (raft_log_last_term (log), 5);
    tu_verify (log, 1, 500, s_terms);
    raft_log_destroy (&log);

    char names [256][32];
    int nseg = tu_segments (s_dir, names, 256);
    ck_assert_int_gt (nseg, 10);

    log = tu_open (s_dir, SEG, NULL);
    raft_log_recovery_t info;
    raft_log_recovery_info (log, &info);
    ck_assert_uint_eq (info.segments, (uint32_t) nseg);
    ck_assert_uint_eq (info.torn_bytes, 0);
    ck_assert_uint_eq (raft_log_first_index (log), 1);
    ck_assert_uint_eq (raft_log_last_index (log), 500);
    tu_verify (log, 1, 500, s_terms);
    //  Appending after a reopen continues in the last segment.
    s_append_model (log, 501, 520, 6, 3);
    raft_log_destroy (&log);
    log = tu_open (s_dir, SEG, NULL);
    tu_verify (log, 1, 520, s_terms);
    raft_log_destroy (&log);
}
END_TEST

START_TEST (test_entries_limits)
{
    raft_log_t *log = tu_open (s_dir, SEG, NULL);
    s_append_model (log, 1, 200, 3, 16);
    raft_log_entry_t *entries;
    size_t count;
    //  max_bytes 0 still returns one entry.
    ck_assert_int_eq (raft_log_entries (log, 10, 200, 0, &entries, &count), 0);
    ck_assert_uint_eq (count, 1);
    tu_check_entry (&entries [0], 10, 3);
    free (entries);
    //  A limit stops before the total would pass it.
    ck_assert_int_eq (raft_log_entries (log, 1, 201, 1000, &entries, &count), 0);
    size_t total = 0;
    for (size_t k = 0; k < count; k++)
        total += entries [k].size;
    ck_assert_uint_le (total, 1000);
    ck_assert_uint_lt (count, 200);
    uint8_t buf [300];
    ck_assert_uint_gt (total + tu_payload (1 + count, 3, buf), 1000);
    free (entries);
    ck_assert_int_eq (raft_log_entries (log, 5, 5, 1000, &entries, &count), -EINVAL);
    ck_assert_int_eq (raft_log_entries (log, 0, 5, 1000, &entries, &count), -ERANGE);
    ck_assert_int_eq (raft_log_entries (log, 5, 202, 1000, &entries, &count),
                      TITAN_ENOTFOUND);
    raft_log_destroy (&log);
}
END_TEST

START_TEST (test_truncate_suffix)
{
    raft_log_t *log = tu_open (s_dir, SEG, NULL);
    s_append_model (log, 1, 300, 1, 10);
    char before [256][32];
    int nbefore = tu_segments (s_dir, before, 256);

    ck_assert_int_eq (raft_log_truncate_suffix (log, 150), 0);
    ck_assert_uint_eq (raft_log_last_index (log), 149);
    ck_assert_int_lt (tu_segments (s_dir, before, 256), nbefore);
    uint64_t term;
    ck_assert_int_eq (raft_log_term (log, 150, &term), TITAN_ENOTFOUND);
    s_append_model (log, 150, 180, 4, 5);
    tu_verify (log, 1, 180, s_terms);
    raft_log_destroy (&log);

    log = tu_open (s_dir, SEG, NULL);
    ck_assert_uint_eq (raft_log_last_index (log), 180);
    tu_verify (log, 1, 180, s_terms);

    //  Truncating exactly at a segment's first index.
    char names [256][32];
    int n = tu_segments (s_dir, names, 256);
    ck_assert_int_ge (n, 3);
    uint64_t seg_first = strtoull (names [n - 2], NULL, 10);
    ck_assert_int_eq (raft_log_truncate_suffix (log, seg_first), 0);
    ck_assert_uint_eq (raft_log_last_index (log), seg_first - 1);
    raft_log_destroy (&log);
    log = tu_open (s_dir, SEG, NULL);
    ck_assert_uint_eq (raft_log_last_index (log), seg_first - 1);
    tu_verify (log, 1, seg_first - 1, s_terms);
    s_append_model (log, seg_first, seg_first + 40, 9, 4);
    tu_verify (log, 1, seg_first + 40, s_terms);

    //  No-op and invalid ranges.
    ck_assert_int_eq (raft_log_truncate_suffix (log, seg_first + 41), 0);
    ck_assert_int_eq (raft_log_truncate_suffix (log, seg_first + 42), -EINVAL);
    ck_assert_int_eq (raft_log_truncate_suffix (log, 0), -EINVAL);
    //  Everything.
    ck_assert_int_eq (raft_log_truncate_suffix (log, 1), 0);
    ck_assert_uint_eq (raft_log_last_index (log), 0);
    raft_log_destroy (&log);
    log = tu_open (s_dir, SEG, NULL);
    ck_assert_uint_eq (raft_log_last_index (log), 0);
    s_append_model (log, 1, 10, 11, 10);
    tu_verify (log, 1, 10, s_terms);
    raft_log_destroy (&log);
}
END_TEST

START_TEST (test_append_conflict)
{
    raft_log_t *log = tu_open (s_dir, SEG, NULL);
    s_append_model (log, 1, 120, 2, 12);
    //  An overlapping batch replaces the suffix from its first index.
    s_append_model (log, 90, 95, 3, 6);
    ck_assert_uint_eq (raft_log_last_index (log), 95);
    tu_verify (log, 1, 95, s_terms);
    raft_log_destroy (&log);
    log = tu_open (s_dir, SEG, NULL);
    ck_assert_uint_eq (raft_log_last_index (log), 95);
    tu_verify (log, 1, 95, s_terms);
    raft_log_destroy (&log);
}
END_TEST

START_TEST (test_append_existing_same_term)
{
    raft_log_t *log = tu_open (s_dir, SEG, NULL);
    s_append_model (log, 1, 50, 2, 10);
    //  Re-appending entries the log holds (same index and term) changes
    //  nothing: no truncation of what may be committed.
    tu_append (log, 10, 20, 2, 11);
    ck_assert_uint_eq (raft_log_last_index (log), 50);
    tu_verify (log, 1, 50, s_terms);
    //  A batch that matches at first and conflicts later is cut at the
    //  conflict only.
    uint8_t bufs [2][300];
    raft_log_entry_t batch [2] = {
        { 30, 2, 30 % 3, bufs [0], tu_payload (30, 2, bufs [0]) },
        { 31, 3, 31 % 3, bufs [1], tu_payload (31, 3, bufs [1]) },
    };
    ck_assert_int_eq (raft_log_append (log, batch, 2), 0);
    s_terms [31] = 3;
    ck_assert_uint_eq (raft_log_last_index (log), 31);
    tu_verify (log, 1, 31, s_terms);
    raft_log_destroy (&log);
    log = tu_open (s_dir, SEG, NULL);
    ck_assert_uint_eq (raft_log_last_index (log), 31);
    tu_verify (log, 1, 31, s_terms);
    raft_log_destroy (&log);
}
END_TEST

START_TEST (test_bad_batches)
{
    raft_log_t *log = tu_open (s_dir, SEG, NULL);
    s_append_model (log, 1, 10, 5, 10);
    uint8_t data [16] = { 0 };
    raft_log_entry_t gap [2] = { { 11, 5, 0, data, 4 }, { 13, 5, 0, data, 4 } };
    ck_assert_int_eq (raft_log_append (log, gap, 2), -EINVAL);
    raft_log_entry_t skip [1] = { { 12, 5, 0, data, 4 } };
    ck_assert_int_eq (raft_log_append (log, skip, 1), -EINVAL);
    raft_log_entry_t down [2] = { { 11, 5, 0, data, 4 }, { 12, 4, 0, data, 4 } };
    ck_assert_int_eq (raft_log_append (log, down, 2), -EINVAL);
    raft_log_entry_t below [1] = { { 11, 4, 0, data, 4 } };
    ck_assert_int_eq (raft_log_append (log, below, 1), -EINVAL);
    raft_log_destroy (&log);

    //  Entry size limit.
    raft_log_options_t options = { SEG, 100, NULL };
    char err [256];
    ck_assert_int_eq (raft_log_open (s_dir, &options, &log, err, sizeof err), 0);
    uint8_t big [101] = { 0 };
    raft_log_entry_t huge [1] = { { 11, 5, 0, big, 101 } };
    ck_assert_int_eq (raft_log_append (log, huge, 1), TITAN_ETOOBIG);
    ck_assert_ptr_nonnull (strstr (raft_log_errmsg (log), "101"));
    raft_log_destroy (&log);
    log = tu_open (s_dir, SEG, NULL);
    //  The log is still usable after rejected batches.
    s_append_model (log, 11, 12, 6, 2);
    tu_verify (log, 1, 12, s_terms);
    ck_assert_int_eq (raft_log_compact_prefix (log, 5), 0);
    raft_log_entry_t compacted [1] = { { 5, 6, 0, data, 4 } };
    ck_assert_int_eq (raft_log_append (log, compacted, 1), -EINVAL);
    raft_log_destroy (&log);
}
END_TEST

START_TEST (test_compact_prefix)
{
    raft_log_t *log = tu_open (s_dir, SEG, NULL);
    s_append_model (log, 1, 200, 1, 20);
    s_append_model (log, 201, 400, 2, 20);
    char names [256][32];
    int nbefore = tu_segments (s_dir, names, 256);

    ck_assert_int_eq (raft_log_compact_prefix (log, 250), 0);
    ck_assert_uint_eq (raft_log_first_index (log), 251);
    ck_assert_uint_eq (raft_log_last_index (log), 400);
    uint64_t term;
    ck_assert_int_eq (raft_log_term (log, 250, &term), 0);
    ck_assert_uint_eq (term, 2);
    ck_assert_int_eq (raft_log_term (log, 249, &term), -ERANGE);
    raft_log_entry_t *entries;
    size_t count;
    ck_assert_int_eq (raft_log_entries (log, 250, 260, 1 << 20, &entries, &count),
                      -ERANGE);
    int nafter = tu_segments (s_dir, names, 256);
    ck_assert_int_lt (nafter, nbefore);
    //  The first remaining segment holds index 251 (or starts before it).
    ck_assert_uint_le (strtoull (names [0], NULL, 10), 251);
    tu_verify (log, 251, 400, s_terms);
    //  Compacting below first_index is a no-op; beyond the end is invalid.
    ck_assert_int_eq (raft_log_compact_prefix (log, 100), 0);
    ck_assert_int_eq (raft_log_compact_prefix (log, 401), -EINVAL);
    raft_log_destroy (&log);

    log = tu_open (s_dir, SEG, NULL);
    ck_assert_uint_eq (raft_log_first_index (log), 251);
    ck_assert_uint_eq (raft_log_last_index (log), 400);
    ck_assert_int_eq (raft_log_term (log, 250, &term), 0);
    ck_assert_uint_eq (term, 2);
    tu_verify (log, 251, 400, s_terms);

    //  Compacting everything leaves an empty log that still knows the term.
    ck_assert_int_eq (raft_log_compact_prefix (log, 400), 0);
    ck_assert_uint_eq (raft_log_first_index (log), 401);
    ck_assert_uint_eq (raft_log_last_index (log), 400);
    ck_assert_uint_eq (raft_log_last_term (log), 2);
    ck_assert_int_eq (tu_segments (s_dir, names, 256), 0);
    raft_log_destroy (&log);
    log = tu_open (s_dir, SEG, NULL);
    ck_assert_uint_eq (raft_log_first_index (log), 401);
    ck_assert_uint_eq (raft_log_last_index (log), 400);
    ck_assert_uint_eq (raft_log_last_term (log), 2);
    s_append_model (log, 401, 450, 3, 8);
    raft_log_destroy (&log);
    log = tu_open (s_dir, SEG, NULL);
    tu_verify (log, 401, 450, s_terms);
    raft_log_destroy (&log);
}
END_TEST

START_TEST (test_compact_then_truncate_same_segment)
{
    //  Compaction point and truncation point inside one segment: the
    //  segment keeps dead records below first_index on disk.
    raft_log_t *log = tu_open (s_dir, 1 << 20, NULL);
    s_append_model (log, 1, 40, 1, 10);
    ck_assert_int_eq (raft_log_compact_prefix (log, 25), 0);
    ck_assert_int_eq (raft_log_truncate_suffix (log, 30), 0);
    s_append_model (log, 30, 35, 2, 3);
    raft_log_destroy (&log);
    log = tu_open (s_dir, 1 << 20, NULL);
    ck_assert_uint_eq (raft_log_first_index (log), 26);
    ck_assert_uint_eq (raft_log_last_index (log), 35);
    tu_verify (log, 26, 35, s_terms);
    //  Truncating down to the first index empties the log.
    ck_assert_int_eq (raft_log_truncate_suffix (log, 26), 0);
    ck_assert_uint_eq (raft_log_last_index (log), 25);
    raft_log_destroy (&log);
    log = tu_open (s_dir, 1 << 20, NULL);
    ck_assert_uint_eq (raft_log_first_index (log), 26);
    ck_assert_uint_eq (raft_log_last_index (log), 25);
    ck_assert_uint_eq (raft_log_last_term (log), 1);
    s_append_model (log, 26, 28, 3, 3);
    tu_verify (log, 26, 28, s_terms);
    raft_log_destroy (&log);
}
END_TEST

START_TEST (test_reopen_other_segment_size)
{
    raft_log_t *log = tu_open (s_dir, SEG, NULL);
    s_append_model (log, 1, 100, 1, 10);
    raft_log_destroy (&log);
    //  Segment size is a write-time setting: any value reads the log.
    log = tu_open (s_dir, 1 << 20, NULL);
    tu_verify (log, 1, 100, s_terms);
    s_append_model (log, 101, 150, 2, 10);
    raft_log_destroy (&log);
    log = tu_open (s_dir, 1024, NULL);
    tu_verify (log, 1, 150, s_terms);
    s_append_model (log, 151, 170, 2, 1);
    raft_log_destroy (&log);
    log = tu_open (s_dir, SEG, NULL);
    tu_verify (log, 1, 170, s_terms);
    raft_log_destroy (&log);
    //  A path that is not a directory fails with a message naming it.
    char path [600], err [512] = "";
    tu_spit (tu_path (path, sizeof path, s_dir, "plain"), (const uint8_t *) "x", 1);
    ck_assert_int_lt (raft_log_open (path, NULL, &log, err, sizeof err), 0);
    ck_assert_ptr_null (log);
    ck_assert_ptr_nonnull (strstr (err, path));
}
END_TEST

START_TEST (test_reset)
{
    raft_log_t *log = tu_open (s_dir, SEG, NULL);
    s_append_model (log, 1, 100, 1, 10);
    //  Snapshot matching entry 60: the suffix stays.
    ck_assert_int_eq (raft_log_reset (log, 60, 1), 0);
    ck_assert_uint_eq (raft_log_first_index (log), 61);
    ck_assert_uint_eq (raft_log_last_index (log), 100);
    tu_verify (log, 61, 100, s_terms);
    //  Snapshot with another term: everything goes.
    ck_assert_int_eq (raft_log_reset (log, 58, 1), -EINVAL);
    ck_assert_int_eq (raft_log_reset (log, 80, 7), 0);
    ck_assert_uint_eq (raft_log_first_index (log), 81);
    ck_assert_uint_eq (raft_log_last_index (log), 80);
    ck_assert_uint_eq (raft_log_last_term (log), 7);
    //  Snapshot far beyond the end.
    ck_assert_int_eq (raft_log_reset (log, 1000, 8), 0);
    ck_assert_uint_eq (raft_log_first_index (log), 1001);
    ck_assert_uint_eq (raft_log_last_index (log), 1000);
    s_append_model (log, 1001, 1100, 8, 16);
    raft_log_destroy (&log);
    log = tu_open (s_dir, SEG, NULL);
    ck_assert_uint_eq (raft_log_first_index (log), 1001);
    ck_assert_uint_eq (raft_log_last_index (log), 1100);
    uint64_t term;
    ck_assert_int_eq (raft_log_term (log, 1000, &term), 0);
    ck_assert_uint_eq (term, 8);
    tu_verify (log, 1001, 1100, s_terms);
    raft_log_destroy (&log);
}
END_TEST

//  Opens expecting corruption; checks the message names `file`.
static void
s_expect_corrupt (const char *file)
{
    raft_log_t *log = NULL;
    raft_log_options_t options = { SEG, 0, NULL };
    char err [512] = "";
    int rc = raft_log_open (s_dir, &options, &log, err, sizeof err);
    ck_assert_msg (rc == TITAN_ECORRUPT, "expected ECORRUPT, got %d (%s)", rc, err);
    ck_assert_ptr_null (log);
    ck_assert_msg (strstr (err, file), "message '%s' does not name %s", err, file);
}

START_TEST (test_corrupt_sealed_segment)
{
    raft_log_t *log = tu_open (s_dir, SEG, NULL);
    s_append_model (log, 1, 200, 1, 10);
    raft_log_destroy (&log);
    char names [256][32], path [600];
    int n = tu_segments (s_dir, names, 256);
    ck_assert_int_ge (n, 3);
    tu_path (path, sizeof path, s_dir, names [1]);
    long size = tu_file_size (path);
    tu_flip (path, size / 2);
    s_expect_corrupt (names [1]);
    //  The tail of a sealed segment is not a torn tail either.
    tu_flip (path, size / 2);
    ck_assert_int_eq (truncate (path, size - 3), 0);
    s_expect_corrupt (names [1]);
    ck_assert_int_eq (truncate (path, 20), 0);
    s_expect_corrupt (names [1]);
}
END_TEST

START_TEST (test_corrupt_last_segment_middle)
{
    raft_log_t *log = tu_open (s_dir, 1 << 20, NULL);
    s_append_model (log, 1, 50, 1, 10);
    raft_log_destroy (&log);
    char names [4][32], path [600];
    ck_assert_int_eq (tu_segments (s_dir, names, 4), 1);
    tu_path (path, sizeof path, s_dir, names [0]);
    //  Damage a byte early in the file: valid records follow it, so this
    //  is corruption of acknowledged data, not a torn tail.
    tu_flip (path, 32 + 30);
    s_expect_corrupt (names [0]);
}
END_TEST

START_TEST (test_zero_hole_in_last_segment)
{
    //  A hole of zeros inside the last segment, with good records after it,
    //  is what an unsynced write whose pages landed out of order looks
    //  like: cut there (as a torn tail), not reported as corruption.
    raft_log_t *log = tu_open (s_dir, 1 << 20, NULL);
    s_append_model (log, 1, 60, 1, 60);
    raft_log_destroy (&log);
    char names [4][32], path [600];
    ck_assert_int_eq (tu_segments (s_dir, names, 4), 1);
    tu_path (path, sizeof path, s_dir, names [0]);
    size_t size;
    uint8_t *image = tu_slurp (path, &size);
    memset (image + 4096, 0, 512);
    tu_spit (path, image, size);
    free (image);
    log = tu_open (s_dir, 1 << 20, NULL);
    uint64_t last = raft_log_last_index (log);
    ck_assert_uint_lt (last, 60);
    ck_assert_uint_gt (last, 5);
    tu_verify (log, 1, last, s_terms);
    raft_log_recovery_t info;
    raft_log_recovery_info (log, &info);
    ck_assert_uint_gt (info.torn_bytes, 0);
    raft_log_destroy (&log);
}
END_TEST

START_TEST (test_missing_segment)
{
    raft_log_t *log = tu_open (s_dir, SEG, NULL);
    s_append_model (log, 1, 200, 1, 10);
    raft_log_destroy (&log);
    char names [256][32], path [600];
    int n = tu_segments (s_dir, names, 256);
    ck_assert_int_ge (n, 3);
    ck_assert_int_eq (unlink (tu_path (path, sizeof path, s_dir, names [1])), 0);
    s_expect_corrupt (names [2]);
    //  Losing the first segment is a gap before the first index too.
    log = NULL;
    ck_assert_int_eq (unlink (tu_path (path, sizeof path, s_dir, names [0])), 0);
    s_expect_corrupt ("starts at index");
}
END_TEST

START_TEST (test_meta_corrupt)
{
    raft_log_t *log = tu_open (s_dir, SEG, NULL);
    s_append_model (log, 1, 100, 1, 10);
    ck_assert_int_eq (raft_log_compact_prefix (log, 50), 0);
    raft_log_destroy (&log);
    char path [600];
    tu_flip (tu_path (path, sizeof path, s_dir, "meta"), 9);
    s_expect_corrupt ("meta");
}
END_TEST

START_TEST (test_read_back_corruption)
{
    raft_log_t *log = tu_open (s_dir, 1 << 20, NULL);
    s_append_model (log, 1, 50, 1, 10);
    char names [4][32], path [600];
    ck_assert_int_eq (tu_segments (s_dir, names, 4), 1);
    tu_path (path, sizeof path, s_dir, names [0]);
    tu_flip (path, tu_file_size (path) - 1);
    raft_log_entry_t *entries;
    size_t count;
    ck_assert_int_eq (raft_log_entries (log, 45, 51, 1 << 20, &entries, &count),
                      TITAN_ECORRUPT);
    ck_assert_ptr_nonnull (strstr (raft_log_errmsg (log), names [0]));
    //  Earlier entries still read fine.
    tu_verify (log, 1, 49, s_terms);
    raft_log_destroy (&log);
}
END_TEST

/*  raft_log_write puts entries in the file without a sync: readable at
    once, lost by a power loss; raft_log_sync makes them durable with one
    fdatasync (none when nothing is unsynced).  A segment rotation inside
    a write syncs the sealed segment inline.  */
START_TEST (test_write_then_sync)
{
    raft_fio_t *fio = raft_fio_new ();
    raft_fio_set_nosync (fio, true);
    raft_log_t *log = tu_open (s_dir, 1 << 20, fio);
    s_append_model (log, 1, 10, 1, 5);
    ck_assert (!raft_log_unsynced (log));
    unsigned syncs = raft_fio_count (fio, RAFT_FIO_SYNC);
    tu_put (log, 11, 20, 1, 4, raft_log_write);
    for (uint64_t i = 11; i <= 20; i++)
        s_terms [i] = 1;
    ck_assert_uint_eq (raft_fio_count (fio, RAFT_FIO_SYNC), syncs);
    ck_assert (raft_log_unsynced (log));
    ck_assert_uint_eq (raft_log_last_index (log), 20);
    tu_verify (log, 1, 20, s_terms);
    //  Power loss before the sync: the written entries are gone.
    raft_log_destroy (&log);
    ck_assert_int_eq (raft_fio_drop_unsynced (fio), 0);
    log = tu_open (s_dir, 1 << 20, fio);
    ck_assert_uint_eq (raft_log_last_index (log), 10);
    tu_verify (log, 1, 10, s_terms);
    //  Written then synced: one fdatasync for three writes, durable.
    syncs = raft_fio_count (fio, RAFT_FIO_SYNC);
    tu_put (log, 11, 20, 1, 4, raft_log_write);
    ck_assert_int_eq (raft_log_sync (log), 0);
    ck_assert (!raft_log_unsynced (log));
    ck_assert_uint_eq (raft_fio_count (fio, RAFT_FIO_SYNC), syncs + 1);
    ck_assert_int_eq (raft_log_sync (log), 0);
    ck_assert_uint_eq (raft_fio_count (fio, RAFT_FIO_SYNC), syncs + 1);
    raft_log_destroy (&log);
    ck_assert_int_eq (raft_fio_drop_unsynced (fio), 0);
    log = tu_open (s_dir, SEG, fio);
    ck_assert_uint_eq (raft_log_last_index (log), 20);
    tu_verify (log, 1, 20, s_terms);
    //  Across rotations (4 KiB segments): what was sealed on the way is
    //  durable, the tail written since the last rotation is not.
    tu_put (log, 21, 200, 2, 7, raft_log_write);
    raft_log_destroy (&log);
    ck_assert_int_eq (raft_fio_drop_unsynced (fio), 0);
    log = tu_open (s_dir, SEG, fio);
    uint64_t last = raft_log_last_index (log);
    ck_assert_uint_gt (last, 20);
    ck_assert_uint_lt (last, 200);
    for (uint64_t i = 21; i <= last; i++)
        s_terms [i] = 2;
    tu_verify (log, 1, last, s_terms);
    raft_log_destroy (&log);
    raft_fio_destroy (&fio);
}
END_TEST

/*  A failed sync fails the log for good and is never retried; a write
    after it refuses too; recovery keeps only what was synced.  */
START_TEST (test_failed_sync_is_sticky)
{
    raft_fio_t *fio = raft_fio_new ();
    raft_fio_set_nosync (fio, true);
    raft_log_t *log = tu_open (s_dir, 1 << 20, fio);
    s_append_model (log, 1, 10, 1, 10);
    tu_put (log, 11, 15, 1, 5, raft_log_write);
    raft_fio_fail (fio, RAFT_FIO_SYNC, 1, EIO, false, false);
    ck_assert_int_eq (raft_log_sync (log), -EIO);
    ck_assert_ptr_nonnull (strstr (raft_log_errmsg (log), "cannot sync"));
    unsigned ops = raft_fio_count (fio, RAFT_FIO_ALL);
    ck_assert_int_eq (raft_log_sync (log), -EIO);
    uint8_t data [4] = { 1, 2, 3, 4 };
    raft_log_entry_t e = { 16, 1, 0, data, sizeof data };
    ck_assert_int_eq (raft_log_write (log, &e, 1), -EIO);
    ck_assert_uint_eq (raft_fio_count (fio, RAFT_FIO_ALL), ops);
    raft_log_destroy (&log);
    ck_assert_int_eq (raft_fio_drop_unsynced (fio), 0);
    raft_fio_destroy (&fio);
    log = tu_open (s_dir, 1 << 20, NULL);
    ck_assert_uint_eq (raft_log_last_index (log), 10);
    tu_verify (log, 1, 10, s_terms);
    raft_log_destroy (&log);
}
END_TEST

static Suite *
s_suite (void)
{
    Suite *suite = suite_create ("raft_log");
    TCase *tc = tcase_create ("core");
    tcase_add_checked_fixture (tc, s_setup, s_teardown);
    tcase_set_timeout (tc, 60);
    tcase_add_test (tc, test_empty);
    tcase_add_test (tc, test_append_rotate_reopen);
    tcase_add_test (tc, test_entries_limits);
    tcase_add_test (tc, test_truncate_suffix);
    tcase_add_test (tc, test_append_conflict);
    tcase_add_test (tc, test_append_existing_same_term);
    tcase_add_test (tc, test_bad_batches);
    tcase_add_test (tc, test_compact_prefix);
    tcase_add_test (tc, test_compact_then_truncate_same_segment);
    tcase_add_test (tc, test_reopen_other_segment_size);
    tcase_add_test (tc, test_reset);
    tcase_add_test (tc, test_corrupt_sealed_segment);
    tcase_add_test (tc, test_corrupt_last_segment_middle);
    tcase_add_test (tc, test_zero_hole_in_last_segment);
    tcase_add_test (tc, test_missing_segment);
    tcase_add_test (tc, test_meta_corrupt);
    tcase_add_test (tc, test_read_back_corruption);
    tcase_add_test (tc, test_write_then_sync);
    tcase_add_test (tc, test_failed_sync_is_sticky);
    suite_add_tcase (suite, tc);
    return suite;
}

int
main (void)
{
    return titan_check_run (s_suite (), false);
}
