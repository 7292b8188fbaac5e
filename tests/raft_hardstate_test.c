/*  Tests of raft_hardstate: round trips across reopen, fallback to the
    other slot when one is damaged, corruption of both reported, and the
    atomicity of a save under a crash injected at every file operation
    (torn writes included): after the crash the file holds either the last
    acknowledged state or the one being saved, never anything else.  */
#include "check_run.h"
#include <errno.h>

#include "titan/status.h"
#include "raft_hardstate.h"
#include "raft_log_testutil.h"

static char *s_dir;

static void
s_setup (void)
{
    s_dir = tu_tmpdir ("raftstate");
}

static void
s_teardown (void)
{
    tu_rmrf (s_dir);
    free (s_dir);
}

static raft_hardstate_file_t *
s_open (const char *dir, raft_fio_t *fio, raft_hardstate_t *state)
{
    raft_hardstate_file_t *hs = NULL;
    char err [512] = "";
    int rc = raft_hardstate_open (dir, fio, &hs, state, err, sizeof err);
    ck_assert_msg (rc == 0, "open: %d %s", rc, err);
    return hs;
}

static bool
s_eq (raft_hardstate_t a, raft_hardstate_t b)
{
    return a.term == b.term && a.vote == b.vote && a.commit == b.commit;
}

START_TEST (test_round_trip)
{
    raft_hardstate_t state;
    raft_hardstate_file_t *hs = s_open (s_dir, NULL, &state);
    ck_assert (s_eq (state, (raft_hardstate_t) { 0, 0, 0 }));
    for (uint64_t i = 1; i <= 7; i++) {
        raft_hardstate_t next = { i, i % 3, i * 10 };
        ck_assert_int_eq (raft_hardstate_save (hs, &next), 0);
        ck_assert (s_eq (raft_hardstate_get (hs), next));
    }
    raft_hardstate_destroy (&hs);
    ck_assert_ptr_null (hs);
    hs = s_open (s_dir, NULL, &state);
    ck_assert (s_eq (state, (raft_hardstate_t) { 7, 1, 70 }));
    //  Saves continue correctly after a reopen (alternating slots).
    raft_hardstate_t next = { 8, UINT64_MAX, 80 };
    ck_assert_int_eq (raft_hardstate_save (hs, &next), 0);
    raft_hardstate_destroy (&hs);
    hs = s_open (s_dir, NULL, &state);
    ck_assert (s_eq (state, next));
    raft_hardstate_destroy (&hs);
}
END_TEST

START_TEST (test_damaged_slots)
{
    raft_hardstate_t state;
    raft_hardstate_file_t *hs = s_open (s_dir, NULL, &state);
    raft_hardstate_t s1 = { 3, 2, 5 }, s2 = { 4, 0, 9 };
    ck_assert_int_eq (raft_hardstate_save (hs, &s1), 0);   /* slot 1 */
    ck_assert_int_eq (raft_hardstate_save (hs, &s2), 0);   /* slot 0 */
    raft_hardstate_destroy (&hs);
    char path [600];
    tu_path (path, sizeof path, s_dir, "hardstate");
    //  Damage the newest slot: the previous state is used.
    tu_flip (path, 20);
    hs = s_open (s_dir, NULL, &state);
    ck_assert (s_eq (state, s1));
    raft_hardstate_destroy (&hs);
    //  Damage both: corruption, named.
    tu_flip (path, 4096 + 30);
    raft_hardstate_file_t *bad = NULL;
    char err [512] = "";
    ck_assert_int_eq (raft_hardstate_open (s_dir, NULL, &bad, &state, err,
                                           sizeof err), TITAN_ECORRUPT);
    ck_assert_ptr_null (bad);
    ck_assert_ptr_nonnull (strstr (err, path));
    //  A file of the wrong size is corruption too.
    ck_assert_int_eq (truncate (path, 100), 0);
    ck_assert_int_eq (raft_hardstate_open (s_dir, NULL, &bad, &state, err,
                                           sizeof err), TITAN_ECORRUPT);
}
END_TEST

START_TEST (test_failed_save_is_sticky)
{
    raft_fio_t *fio = raft_fio_new ();
    raft_hardstate_t state;
    raft_hardstate_file_t *hs = s_open (s_dir, fio, &state);
    raft_hardstate_t s1 = { 1, 1, 1 }, s2 = { 2, 2, 2 };
    ck_assert_int_eq (raft_hardstate_save (hs, &s1), 0);
    raft_fio_fail (fio, RAFT_FIO_SYNC, 1, EIO, false, false);
    ck_assert_int_eq (raft_hardstate_save (hs, &s2), -EIO);
    ck_assert_ptr_nonnull (strstr (raft_hardstate_errmsg (hs), "hardstate"));
    unsigned ops = raft_fio_count (fio, RAFT_FIO_ALL);
    //  No retry of the failed fsync: the object stays failed.
    ck_assert_int_eq (raft_hardstate_save (hs, &s2), -EIO);
    ck_assert_uint_eq (raft_fio_count (fio, RAFT_FIO_ALL), ops);
    ck_assert (s_eq (raft_hardstate_get (hs), s1));
    raft_hardstate_destroy (&hs);
    raft_fio_destroy (&fio);
    hs = s_open (s_dir, NULL, &state);
    ck_assert (s_eq (state, s1) || s_eq (state, s2));
    raft_hardstate_destroy (&hs);
}
END_TEST

/*  raft_hardstate_write then _sync: the durable state changes only at the
    sync; a second write before the sync goes to the pending slot and never
    over the durable one (a power loss between them keeps the old state);
    a failed sync is sticky.  */
START_TEST (test_write_then_sync)
{
    raft_fio_t *fio = raft_fio_new ();
    raft_fio_set_nosync (fio, true);
    raft_hardstate_t state;
    raft_hardstate_file_t *hs = s_open (s_dir, fio, &state);
    raft_hardstate_t s1 = { 1, 1, 1 }, s2 = { 2, 2, 2 }, s3 = { 3, 0, 3 };
    ck_assert_int_eq (raft_hardstate_save (hs, &s1), 0);
    unsigned syncs = raft_fio_count (fio, RAFT_FIO_SYNC);
    ck_assert_int_eq (raft_hardstate_write (hs, &s2), 0);
    ck_assert_int_eq (raft_hardstate_write (hs, &s3), 0);
    ck_assert (raft_hardstate_unsynced (hs));
    ck_assert (s_eq (raft_hardstate_get (hs), s1));
    ck_assert_uint_eq (raft_fio_count (fio, RAFT_FIO_SYNC), syncs);
    //  Power loss before the sync, tearing the pending slot (slot 0; s1 is
    //  in slot 1): the durable state s1 was overwritten by neither write.
    raft_hardstate_destroy (&hs);
    ck_assert_int_eq (raft_fio_drop_unsynced (fio), 0);
    char path [600];
    tu_flip (tu_path (path, sizeof path, s_dir, "hardstate"), 20);
    hs = s_open (s_dir, fio, &state);
    ck_assert (s_eq (state, s1));
    ck_assert_int_eq (raft_hardstate_write (hs, &s2), 0);
    ck_assert_int_eq (raft_hardstate_write (hs, &s3), 0);
    ck_assert_int_eq (raft_hardstate_sync (hs), 0);
    ck_assert (!raft_hardstate_unsynced (hs));
    ck_assert (s_eq (raft_hardstate_get (hs), s3));
    syncs = raft_fio_count (fio, RAFT_FIO_SYNC);
    ck_assert_int_eq (raft_hardstate_sync (hs), 0);     /* nothing pending */
    ck_assert_uint_eq (raft_fio_count (fio, RAFT_FIO_SYNC), syncs);
    raft_hardstate_destroy (&hs);
    ck_assert_int_eq (raft_fio_drop_unsynced (fio), 0);
    hs = s_open (s_dir, fio, &state);
    ck_assert (s_eq (state, s3));
    //  A failed sync: sticky, never retried, the old state survives.
    ck_assert_int_eq (raft_hardstate_write (hs, &s1), 0);
    raft_fio_fail (fio, RAFT_FIO_SYNC, 1, EIO, false, false);
    ck_assert_int_eq (raft_hardstate_sync (hs), -EIO);
    unsigned ops = raft_fio_count (fio, RAFT_FIO_ALL);
    ck_assert_int_eq (raft_hardstate_sync (hs), -EIO);
    ck_assert_int_eq (raft_hardstate_write (hs, &s2), -EIO);
    ck_assert_uint_eq (raft_fio_count (fio, RAFT_FIO_ALL), ops);
    ck_assert (s_eq (raft_hardstate_get (hs), s3));
    raft_hardstate_destroy (&hs);
    ck_assert_int_eq (raft_fio_drop_unsynced (fio), 0);
    raft_fio_destroy (&fio);
    tu_flip (path, 4096 + 20);          /* the unsynced write lost, torn */
    hs = s_open (s_dir, NULL, &state);
    ck_assert (s_eq (state, s3));
    raft_hardstate_destroy (&hs);
}
END_TEST

START_TEST (test_crash_points)
{
    //  Script: create, then saves of states 1..6.  Crash at operation n.
    unsigned point, crashed = 0;
    for (point = 1;; point++) {
        char dir [600];
        snprintf (dir, sizeof dir, "%s/p%u", s_dir, point);
        ck_assert_int_eq (mkdir (dir, 0755), 0);
        raft_fio_t *fio = raft_fio_new ();
        raft_fio_set_nosync (fio, true);
        raft_fio_fail (fio, RAFT_FIO_ALL, point, EIO, true, true);
        raft_hardstate_t acked = { 0, 0, 0 }, pending = acked, state;
        bool created = false;
        raft_hardstate_file_t *hs = NULL;
        char err [512];
        int rc = raft_hardstate_open (dir, fio, &hs, &state, err, sizeof err);
        if (rc == 0) {
            created = true;
            for (uint64_t i = 1; i <= 6; i++) {
                pending = (raft_hardstate_t) { i, i + 100, i * 3 };
                rc = raft_hardstate_save (hs, &pending);
                if (rc)
                    break;
                acked = pending;
            }
        }
        raft_hardstate_destroy (&hs);
        bool fired = raft_fio_fired (fio);
        ck_assert_int_eq (raft_fio_drop_unsynced (fio), 0);
        raft_fio_destroy (&fio);
        hs = s_open (dir, NULL, &state);
        ck_assert_msg (s_eq (state, acked) || s_eq (state, pending),
                       "point %u: got {%llu,%llu,%llu}", point,
                       (unsigned long long) state.term,
                       (unsigned long long) state.vote,
                       (unsigned long long) state.commit);
        if (!created)
            ck_assert (s_eq (state, (raft_hardstate_t) { 0, 0, 0 }));
        raft_hardstate_destroy (&hs);
        tu_rmrf (dir);
        if (!fired) {
            ck_assert (s_eq (state, acked));
            break;
        }
        crashed++;
    }
    ck_assert_uint_ge (crashed, 10);
}
END_TEST

START_TEST (test_torn_overwrite_keeps_old)
{
    //  A torn write of a slot (half the record reaches the disk, then the
    //  process dies) must leave the other slot's state readable.
    raft_fio_t *fio = raft_fio_new ();
    raft_hardstate_t state;
    raft_hardstate_file_t *hs = s_open (s_dir, fio, &state);
    raft_hardstate_t s1 = { 5, 1, 7 }, s2 = { 6, 2, 8 }, s3 = { 7, 3, 9 };
    ck_assert_int_eq (raft_hardstate_save (hs, &s1), 0);
    ck_assert_int_eq (raft_hardstate_save (hs, &s2), 0);
    raft_fio_fail (fio, RAFT_FIO_WRITE, 1, EIO, true, true);
    ck_assert_int_eq (raft_hardstate_save (hs, &s3), -EIO);
    raft_hardstate_destroy (&hs);
    raft_fio_destroy (&fio);
    hs = s_open (s_dir, NULL, &state);
    ck_assert (s_eq (state, s2));
    raft_hardstate_destroy (&hs);
}
END_TEST

static Suite *
s_suite (void)
{
    Suite *suite = suite_create ("raft_hardstate");
    TCase *tc = tcase_create ("hardstate");
    tcase_add_checked_fixture (tc, s_setup, s_teardown);
    tcase_set_timeout (tc, 60);
    tcase_add_test (tc, test_round_trip);
    tcase_add_test (tc, test_damaged_slots);
    tcase_add_test (tc, test_failed_save_is_sticky);
    tcase_add_test (tc, test_crash_points);
    tcase_add_test (tc, test_torn_overwrite_keeps_old);
    tcase_add_test (tc, test_write_then_sync);
    suite_add_tcase (suite, tc);
    return suite;
}

int
main (void)
{
    return titan_check_run (s_suite (), false);
}
