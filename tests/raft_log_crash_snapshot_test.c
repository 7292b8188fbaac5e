/*  Tests of raft_snapshot_store: chunked write and read back, latest
    selection, listing and removal, corruption reports, and crashes in the
    middle of writing a snapshot (at every file operation, torn writes
    included): an incomplete snapshot is never seen after recovery, the
    previous complete one stays readable, and a committed one is intact.  */
#include "check_run.h"
#include <dirent.h>
#include <errno.h>

#include "titan/status.h"
#include "raft_snapshot_store.h"
#include "raft_log_testutil.h"

static char *s_dir;

static void
s_setup (void)
{
    s_dir = tu_tmpdir ("raftsnap");
}

static void
s_teardown (void)
{
    tu_rmrf (s_dir);
    free (s_dir);
}

//  Data byte `i` of the snapshot taken at `index`.
static uint8_t
s_byte (uint64_t index, uint64_t i)
{
    uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ull ^ index;
    x ^= x >> 31;
    return (uint8_t) (x * 0xBF58476D1CE4E5B9ull >> 56);
}

static raft_snapshot_store_t *
s_open (const char *dir, raft_fio_t *fio)
{
    raft_snapshot_store_t *store = NULL;
    char err [512] = "";
    int rc = raft_snapshot_store_open (dir, fio, &store, err, sizeof err);
    ck_assert_msg (rc == 0, "open: %d %s", rc, err);
    return store;
}

//  Writes snapshot (index, term) of `size` data bytes in `chunk` pieces.
static int
s_write (raft_snapshot_store_t *store, uint64_t index, uint64_t term,
         size_t size, size_t chunk)
{
    char conf [64];
    int conf_len = snprintf (conf, sizeof conf, "voters=1,2,3;index=%llu",
                             (unsigned long long) index);
    raft_snapshot_writer_t *writer;
    int rc = raft_snapshot_store_begin (store, index, term, conf,
                                        (uint32_t) conf_len, &writer);
    if (rc)
        return rc;
    uint8_t *buf = malloc (chunk);
    for (size_t off = 0; off < size && rc == 0; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        for (size_t k = 0; k < n; k++)
            buf [k] = s_byte (index, off + k);
        rc = raft_snapshot_writer_write (writer, buf, n);
    }
    free (buf);
    if (rc) {
        raft_snapshot_writer_abort (&writer);
        return rc;
    }
    return raft_snapshot_writer_commit (&writer);
}

//  Opens the latest snapshot and checks it is (index, term) with `size`
//  bytes of the expected data.
static void
s_check_latest (raft_snapshot_store_t *store, uint64_t index, uint64_t term,
                size_t size)
{
    raft_snapshot_reader_t *reader;
    int rc = raft_snapshot_store_open_latest (store, &reader);
    ck_assert_msg (rc == 0, "open latest: %d %s", rc,
                   raft_snapshot_store_errmsg (store));
    ck_assert_uint_eq (raft_snapshot_reader_index (reader), index);
    ck_assert_uint_eq (raft_snapshot_reader_term (reader), term);
    ck_assert_uint_eq (raft_snapshot_reader_data_size (reader), size);
    uint32_t conf_size;
    const char *conf = raft_snapshot_reader_conf (reader, &conf_size);
    char expect [64];
    int expect_len = snprintf (expect, sizeof expect, "voters=1,2,3;index=%llu",
                               (unsigned long long) index);
    ck_assert_uint_eq (conf_size, (uint32_t) expect_len);
    ck_assert (memcmp (conf, expect, conf_size) == 0);
    uint8_t buf [5000];
    size_t total = 0, n;
    do {
        ck_assert_int_eq (raft_snapshot_reader_read (reader, buf, sizeof buf, &n), 0);
        for (size_t k = 0; k < n; k++)
            ck_assert_uint_eq (buf [k], s_byte (index, total + k));
        total += n;
    } while (n > 0);
    ck_assert_uint_eq (total, size);
    raft_snapshot_reader_destroy (&reader);
    ck_assert_ptr_null (reader);
}

START_TEST (test_round_trip)
{
    raft_snapshot_store_t *store = s_open (s_dir, NULL);
    raft_snapshot_reader_t *reader;
    ck_assert_int_eq (raft_snapshot_store_open_latest (store, &reader),
                      TITAN_ENOTFOUND);
    ck_assert_int_eq (s_write (store, 100, 2, 300000, 7001), 0);
    s_check_latest (store, 100, 2, 300000);
    ck_assert_int_eq (s_write (store, 250, 3, 0, 10), 0);
    s_check_latest (store, 250, 3, 0);
    ck_assert_int_eq (s_write (store, 180, 3, 1234, 100), 0);
    //  Latest is by index, not by write order.
    s_check_latest (store, 250, 3, 0);
    raft_snapshot_store_destroy (&store);
    ck_assert_ptr_null (store);

    store = s_open (s_dir, NULL);
    raft_snapshot_id_t *ids;
    size_t count;
    ck_assert_int_eq (raft_snapshot_store_list (store, &ids, &count), 0);
    ck_assert_uint_eq (count, 3);
    ck_assert_uint_eq (ids [0].index, 100);
    ck_assert_uint_eq (ids [1].index, 180);
    ck_assert_uint_eq (ids [2].index, 250);
    free (ids);
    ck_assert_int_eq (raft_snapshot_store_remove_older (store, 250), 0);
    ck_assert_int_eq (raft_snapshot_store_list (store, &ids, &count), 0);
    ck_assert_uint_eq (count, 1);
    ck_assert_uint_eq (ids [0].index, 250);
    free (ids);
    s_check_latest (store, 250, 3, 0);
    raft_snapshot_store_destroy (&store);
}
END_TEST

START_TEST (test_open_index_and_pread)
{
    raft_snapshot_store_t *store = s_open (s_dir, NULL);
    ck_assert_int_eq (s_write (store, 40, 2, 10000, 999), 0);
    ck_assert_int_eq (s_write (store, 90, 3, 5000, 999), 0);
    raft_snapshot_reader_t *reader;
    ck_assert_int_eq (raft_snapshot_store_open_index (store, 41, &reader),
                      TITAN_ENOTFOUND);
    ck_assert_int_eq (raft_snapshot_store_open_index (store, 40, &reader), 0);
    ck_assert_uint_eq (raft_snapshot_reader_term (reader), 2);
    //  Chunks in any order, the last one short, past the end empty.
    uint8_t buf [4096];
    size_t n;
    uint64_t offsets [] = { 8192, 0, 4096 };
    size_t expect [] = { 10000 - 8192, 4096, 4096 };
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq (raft_snapshot_reader_pread (reader, offsets [i], buf,
                                                      sizeof buf, &n), 0);
        ck_assert_uint_eq (n, expect [i]);
        for (size_t k = 0; k < n; k++)
            ck_assert_uint_eq (buf [k], s_byte (40, offsets [i] + k));
    }
    ck_assert_int_eq (raft_snapshot_reader_pread (reader, 10000, buf,
                                                  sizeof buf, &n), 0);
    ck_assert_uint_eq (n, 0);
    raft_snapshot_reader_destroy (&reader);
    raft_snapshot_store_destroy (&store);
}
END_TEST

START_TEST (test_bad_arguments_and_abort)
{
    raft_snapshot_store_t *store = s_open (s_dir, NULL);
    raft_snapshot_writer_t *writer;
    ck_assert_int_eq (raft_snapshot_store_begin (store, 0, 1, NULL, 0, &writer),
                      -EINVAL);
    static uint8_t big [RAFT_SNAPSHOT_MAX_CONF + 1];
    ck_assert_int_eq (raft_snapshot_store_begin (store, 5, 1, big, sizeof big,
                                                 &writer), TITAN_ETOOBIG);
    ck_assert_int_eq (raft_snapshot_store_begin (store, 5, 1, "c", 1, &writer), 0);
    ck_assert_int_eq (raft_snapshot_writer_write (writer, "abc", 3), 0);
    raft_snapshot_writer_abort (&writer);
    ck_assert_ptr_null (writer);
    raft_snapshot_id_t *ids;
    size_t count;
    ck_assert_int_eq (raft_snapshot_store_list (store, &ids, &count), 0);
    ck_assert_uint_eq (count, 0);
    free (ids);
    //  Nothing left behind in the directory.
    struct dirent **list;
    int n = scandir (s_dir, &list, NULL, alphasort);
    for (int i = 0; i < n; i++)
        free (list [i]);
    free (list);
    ck_assert_int_eq (n, 2);
    raft_snapshot_store_destroy (&store);
}
END_TEST

static void
s_expect_corrupt (raft_snapshot_store_t *store, const char *name)
{
    raft_snapshot_reader_t *reader = NULL;
    ck_assert_int_eq (raft_snapshot_store_open_latest (store, &reader),
                      TITAN_ECORRUPT);
    ck_assert_ptr_null (reader);
    ck_assert_msg (strstr (raft_snapshot_store_errmsg (store), name),
                   "message '%s' does not name %s",
                   raft_snapshot_store_errmsg (store), name);
}

START_TEST (test_corruption)
{
    raft_snapshot_store_t *store = s_open (s_dir, NULL);
    ck_assert_int_eq (s_write (store, 77, 4, 20000, 4096), 0);
    const char *name = "snap-00000000000000000077-00000000000000000004.snap";
    char path [600];
    tu_path (path, sizeof path, s_dir, name);
    long size = tu_file_size (path);
    size_t len;
    uint8_t *image = tu_slurp (path, &len);
    //  The store that wrote it trusts its data (header and trailer still
    //  checked): a flipped data byte is not seen by it...
    tu_flip (path, 40 + 30 + 5000);
    raft_snapshot_reader_t *reader = NULL;
    ck_assert_int_eq (raft_snapshot_store_open_latest (store, &reader), 0);
    raft_snapshot_reader_destroy (&reader);
    //  ...but by a store opened afresh (as after a restart).
    raft_snapshot_store_destroy (&store);
    store = s_open (s_dir, NULL);
    //  Data byte, header byte, trailer byte, truncation, extension.
    long offsets [] = { 40 + 30 + 5000, 17, size - 10 };
    for (size_t i = 0; i < sizeof offsets / sizeof offsets [0]; i++) {
        tu_spit (path, image, len);
        tu_flip (path, offsets [i]);
        s_expect_corrupt (store, name);
    }
    tu_spit (path, image, len - 1);
    s_expect_corrupt (store, name);
    uint8_t *longer = calloc (1, len + 1);
    memcpy (longer, image, len);
    tu_spit (path, longer, len + 1);
    s_expect_corrupt (store, name);
    free (longer);
    //  Restored, it reads again.
    tu_spit (path, image, len);
    s_check_latest (store, 77, 4, 20000);
    free (image);
    raft_snapshot_store_destroy (&store);
}
END_TEST

START_TEST (test_crash_mid_write)
{
    unsigned crashed = 0;
    //  Syncs are modelled, not flushed: the test makes its own power loss.
    raft_fio_t *quiet = raft_fio_new ();
    raft_fio_set_nosync (quiet, true);
    for (unsigned point = 1;; point++) {
        char dir [600];
        snprintf (dir, sizeof dir, "%s/p%u", s_dir, point);
        raft_snapshot_store_t *store = s_open (dir, quiet);
        ck_assert_int_eq (s_write (store, 10, 1, 9000, 3000), 0);
        raft_snapshot_store_destroy (&store);

        raft_fio_t *fio = raft_fio_new ();
        raft_fio_set_nosync (fio, true);
        raft_fio_fail (fio, RAFT_FIO_ALL, point, point % 2 ? EIO : ENOSPC,
                       point % 3 == 0, true);
        store = s_open (dir, fio);
        int rc = s_write (store, 20, 2, 50000, 4000);
        raft_snapshot_store_destroy (&store);
        bool fired = raft_fio_fired (fio);
        ck_assert_int_eq (raft_fio_drop_unsynced (fio), 0);
        raft_fio_destroy (&fio);

        store = s_open (dir, quiet);
        if (rc == 0)
            s_check_latest (store, 20, 2, 50000);
        else {
            //  Failed: the new snapshot is absent or, if the crash came
            //  after its rename, complete; never partial.
            raft_snapshot_reader_t *reader;
            ck_assert_int_eq (raft_snapshot_store_open_latest (store, &reader), 0);
            uint64_t index = raft_snapshot_reader_index (reader);
            raft_snapshot_reader_destroy (&reader);
            if (index == 20)
                s_check_latest (store, 20, 2, 50000);
            else
                s_check_latest (store, 10, 1, 9000);
        }
        //  No temp file survives the reopen.
        struct dirent **list;
        int n = scandir (dir, &list, NULL, alphasort);
        for (int i = 0; i < n; i++) {
            ck_assert_msg (!strstr (list [i]->d_name, ".tmp"),
                           "point %u: %s left behind", point, list [i]->d_name);
            free (list [i]);
        }
        free (list);
        raft_snapshot_store_destroy (&store);
        tu_rmrf (dir);
        if (!fired) {
            ck_assert_int_eq (rc, 0);
            break;
        }
        ck_assert_int_ne (rc, 0);
        crashed++;
    }
    raft_fio_destroy (&quiet);
    ck_assert_uint_ge (crashed, 10);
}
END_TEST

static Suite *
s_suite (void)
{
    Suite *suite = suite_create ("raft_snapshot_store");
    TCase *tc = tcase_create ("snapshot");
    tcase_add_checked_fixture (tc, s_setup, s_teardown);
    tcase_set_timeout (tc, 60);
    tcase_add_test (tc, test_round_trip);
    tcase_add_test (tc, test_open_index_and_pread);
    tcase_add_test (tc, test_bad_arguments_and_abort);
    tcase_add_test (tc, test_corruption);
    tcase_add_test (tc, test_crash_mid_write);
    suite_add_tcase (suite, tc);
    return suite;
}

int
main (void)
{
    return titan_check_run (s_suite (), false);
}
