/*  Power-loss tests of the Bitcask engine's apply_sync modes (bc_engine.h,
    docs/raft.md "Durability").

    The fault layer (bc_fault_t) models a power loss: bc_fault_crash cuts
    every file back to the length its last successful fdatasync covered.
    Raft apply batches (with an applied index) under apply_sync INTERVAL
    are not fsynced per batch: after a crash the engine reopens at the
    durable applied index it reported, every batch at or below it intact
    with its revisions, none above it; applying the lost batches again (as
    the Raft log replay does) restores them.  bc_engine_sync, a rotation, a
    snapshot's seal and a write that does not come from Raft each make all
    earlier batches durable; apply_sync ALWAYS keeps every batch; a failed
    fdatasync of bc_engine_sync fails the engine.  */
#include <check.h>
#include "check_run.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bc_engine.h"
#include "bc_snapshot.h"
#include "titan/status.h"
#include "test_dir.h"

enum { OPS = 3 };        /* ops per batch; batch b covers indexes b*OPS+1.. */

static char s_dir [256];

static void
s_setup (void)
{
    test_dir_make (s_dir, sizeof s_dir, "bitcask-applysync");
}

static void
s_teardown (void)
{
    test_dir_remove (s_dir);
}

static bc_engine_t *
s_open (bc_fault_t *fault, bc_apply_sync_t mode)
{
    bc_options_t opt;
    bc_options_init (&opt);
    opt.fault = fault;
    opt.apply_sync = mode;
    opt.max_file_bytes = 64 * 1024;
    bc_engine_t *e;
    char err [256];
    ck_assert_msg (bc_engine_open (s_dir, &opt, &e, err, sizeof err) == 0,
                   "open: %s", err);
    return e;
}

/*  Applies batch `b` as Raft does: OPS puts at revisions b*OPS+1.., its
    applied index the last of them; key "k<b>-<i>" holds "v<b>-<i>".  */
static void
s_apply (bc_engine_t *e, int b)
{
    char keys [OPS][32], vals [OPS][32];
    bc_op_t ops [OPS];
    memset (ops, 0, sizeof ops);
    for (int i = 0; i < OPS; i++) {
        snprintf (keys [i], sizeof keys [i], "k%d-%d", b, i);
        snprintf (vals [i], sizeof vals [i], "v%d-%d", b, i);
        ops [i].kind = BC_OP_PUT;
        ops [i].key = keys [i];
        ops [i].key_len = strlen (keys [i]);
        ops [i].value = vals [i];
        ops [i].value_len = strlen (vals [i]);
    }
    uint64_t first = (uint64_t) b * OPS + 1;
    char err [256];
    int rc = bc_engine_apply_batch (e, ops, OPS, first, first + OPS - 1,
                                    err, sizeof err);
    ck_assert_msg (rc == 0, "apply batch %d: %d %s", b, rc, err);
}

/*  Applies batches [from, to).  */
static void
s_apply_range (bc_engine_t *e, int from, int to)
{
    for (int b = from; b < to; b++)
        s_apply (e, b);
}

/*  Batch b's keys are all present with their revisions, or all absent.  */
static void
s_expect_batch (bc_engine_t *e, int b, bool present)
{
    for (int i = 0; i < OPS; i++) {
        char key [32], val [32], err [256];
        snprintf (key, sizeof key, "k%d-%d", b, i);
        snprintf (val, sizeof val, "v%d-%d", b, i);
        uint8_t *v = NULL;
        size_t vl = 0;
        uint64_t rev = 0;
        int rc = bc_engine_get (e, key, strlen (key), &v, &vl, &rev, err,
                                sizeof err);
        if (!present) {
            ck_assert_msg (rc == TITAN_ENOTFOUND, "%s: expected absent, got "
                           "%d", key, rc);
            continue;
        }
        ck_assert_msg (rc == 0, "%s: %d %s", key, rc, err);
        ck_assert_uint_eq (vl, strlen (val));
        ck_assert_mem_eq (v, val, vl);
        ck_assert_uint_eq (rev, (uint64_t) b * OPS + 1 + (uint64_t) i);
        free (v);
    }
}

static bc_stats_t
s_stats (bc_engine_t *e)
{
    bc_stats_t st;
    bc_engine_stats (e, &st);
    return st;
}

/*  Crash (drop every unsynced byte), then reopen.  */
static bc_engine_t *
s_power_loss (bc_engine_t **e_p, bc_fault_t *fault, bc_apply_sync_t mode)
{
    bc_fault_crash (fault);
    bc_engine_destroy (e_p);
    bc_fault_revive (fault);
    return s_open (fault, mode);
}

/*  The core property: applies are published at once but not fsynced; a
    power loss takes the engine back to its durable applied index exactly,
    and the replay of the lost batches restores them with their
    revisions.  */
START_TEST (test_interval_power_loss)
{
    bc_fault_t *fault = bc_fault_new ();
    bc_engine_t *e = s_open (fault, BC_APPLY_SYNC_INTERVAL);
    uint64_t syncs0 = bc_fault_syncs (fault);
    s_apply_range (e, 0, 10);
    /* no fsync per batch; reads see the applied data already */
    ck_assert_uint_eq (bc_fault_syncs (fault), syncs0);
    ck_assert (bc_engine_unsynced (e));
    bc_stats_t st = s_stats (e);
    ck_assert_uint_eq (st.applied_index, 10 * OPS);
    ck_assert_uint_eq (st.durable_applied_index, 0);
    s_expect_batch (e, 9, true);

    /* bc_engine_sync makes them durable, with one fdatasync */
    char err [256];
    ck_assert_int_eq (bc_engine_sync (e, err, sizeof err), 0);
    ck_assert_uint_eq (bc_fault_syncs (fault), syncs0 + 1);
    ck_assert (!bc_engine_unsynced (e));
    st = s_stats (e);
    ck_assert_uint_eq (st.durable_applied_index, 10 * OPS);
    ck_assert_int_eq (bc_engine_sync (e, err, sizeof err), 0);   /* no-op */
    ck_assert_uint_eq (bc_fault_syncs (fault), syncs0 + 1);

    s_apply_range (e, 10, 20);
    st = s_stats (e);
    ck_assert_uint_eq (st.applied_index, 20 * OPS);
    ck_assert_uint_eq (st.durable_applied_index, 10 * OPS);

    e = s_power_loss (&e, fault, BC_APPLY_SYNC_INTERVAL);
    st = s_stats (e);
    ck_assert_uint_eq (st.applied_index, 10 * OPS);
    ck_assert_uint_eq (st.durable_applied_index, 10 * OPS);
    ck_assert_uint_eq (st.last_revision, 10 * OPS);
    for (int b = 0; b < 20; b++)
        s_expect_batch (e, b, b < 10);

    /* the Raft replay: the lost batches again, then a repeated one is
       skipped (-EALREADY) */
    s_apply_range (e, 10, 20);
    for (int b = 0; b < 20; b++)
        s_expect_batch (e, b, true);
    bc_op_t op = { .kind = BC_OP_PUT, .key = "k3-0", .key_len = 4,
                   .value = "other", .value_len = 5 };
    ck_assert_int_eq (bc_engine_apply_batch (e, &op, 1, 3 * OPS + 1,
                                             3 * OPS + 1, err, sizeof err),
                      -EALREADY);
    s_expect_batch (e, 3, true);

    /* a clean close makes everything durable */
    bc_engine_destroy (&e);
    e = s_power_loss (&e, fault, BC_APPLY_SYNC_INTERVAL);
    for (int b = 0; b < 20; b++)
        s_expect_batch (e, b, true);
    bc_engine_destroy (&e);
    bc_fault_destroy (&fault);
}
END_TEST

/*  Every other point that must make earlier applies durable: a write that
    does not come from Raft (fsynced per call, and covering the applies
    before it), a rotation, and a snapshot (whose seal fsyncs, so that it
    covers durable data only).  */
START_TEST (test_interval_sync_points)
{
    bc_fault_t *fault = bc_fault_new ();
    bc_engine_t *e = s_open (fault, BC_APPLY_SYNC_INTERVAL);
    char err [256];
    s_apply_range (e, 0, 2);
    uint64_t rev = 0;
    ck_assert_int_eq (bc_engine_put (e, "direct", 6, "d", 1, 0, &rev, err,
                                     sizeof err), 0);
    ck_assert_uint_eq (rev, 2 * OPS + 1);
    ck_assert_uint_eq (s_stats (e).durable_applied_index, 2 * OPS);
    ck_assert (!bc_engine_unsynced (e));

    s_apply (e, 3);
    ck_assert_uint_eq (s_stats (e).durable_applied_index, 2 * OPS);
    ck_assert_int_eq (bc_engine_rotate (e, err, sizeof err), 0);
    ck_assert_uint_eq (s_stats (e).durable_applied_index, 4 * OPS);

    s_apply (e, 4);
    bc_snapshot_t *snap = NULL;
    ck_assert_int_eq (bc_snapshot_begin (e, &snap, err, sizeof err), 0);
    bc_snapshot_info_t info;
    bc_snapshot_info (snap, &info);
    ck_assert_uint_eq (info.applied_index, 5 * OPS);
    ck_assert_uint_ge (s_stats (e).durable_applied_index, info.applied_index);
    bc_snapshot_end (&snap);

    s_apply (e, 5);                       /* the only one to be lost */
    e = s_power_loss (&e, fault, BC_APPLY_SYNC_INTERVAL);
    for (int b = 0; b < 6; b++)
        s_expect_batch (e, b, b != 2 && b != 5);
    uint8_t *v;
    size_t vl;
    ck_assert_int_eq (bc_engine_get (e, "direct", 6, &v, &vl, &rev, err,
                                     sizeof err), 0);
    free (v);
    ck_assert_uint_eq (s_stats (e).applied_index, 5 * OPS);
    bc_engine_destroy (&e);
    bc_fault_destroy (&fault);
}
END_TEST

/*  apply_sync ALWAYS: each apply batch is fsynced before it returns, so
    a power loss keeps all of them (the old behaviour).  */
START_TEST (test_always_power_loss)
{
    bc_fault_t *fault = bc_fault_new ();
    bc_engine_t *e = s_open (fault, BC_APPLY_SYNC_ALWAYS);
    uint64_t syncs0 = bc_fault_syncs (fault);
    s_apply_range (e, 0, 8);
    ck_assert_uint_eq (bc_fault_syncs (fault), syncs0 + 8);
    ck_assert (!bc_engine_unsynced (e));
    ck_assert_uint_eq (s_stats (e).durable_applied_index, 8 * OPS);
    e = s_power_loss (&e, fault, BC_APPLY_SYNC_ALWAYS);
    for (int b = 0; b < 8; b++)
        s_expect_batch (e, b, true);
    bc_engine_destroy (&e);
    bc_fault_destroy (&fault);
}
END_TEST

/*  A failed fdatasync of bc_engine_sync fails the engine for good (the
    fsync is never retried); reopening recovers the durable state.  */
START_TEST (test_interval_sync_failure)
{
    bc_fault_t *fault = bc_fault_new ();
    bc_engine_t *e = s_open (fault, BC_APPLY_SYNC_INTERVAL);
    char err [256];
    s_apply (e, 0);
    ck_assert_int_eq (bc_engine_sync (e, err, sizeof err), 0);
    s_apply (e, 1);
    bc_fault_fail_sync (fault, 1, EIO);
    ck_assert_int_eq (bc_engine_sync (e, err, sizeof err), -EIO);
    ck_assert_msg (strstr (err, "fdatasync") != NULL, "message: %s", err);
    bc_stats_t st = s_stats (e);
    ck_assert_int_eq (st.failed, -EIO);
    ck_assert_uint_eq (st.durable_applied_index, OPS);
    bc_op_t op = { .kind = BC_OP_PUT, .key = "x", .key_len = 1,
                   .value = "y", .value_len = 1 };
    ck_assert_int_eq (bc_engine_apply_batch (e, &op, 1, 10 * OPS,
                                             10 * OPS, err, sizeof err), -EIO);
    ck_assert_int_eq (bc_engine_sync (e, err, sizeof err), -EIO);
    e = s_power_loss (&e, fault, BC_APPLY_SYNC_INTERVAL);
    s_expect_batch (e, 0, true);
    s_expect_batch (e, 1, false);
    ck_assert_uint_eq (s_stats (e).applied_index, OPS);
    bc_engine_destroy (&e);
    bc_fault_destroy (&fault);
}
END_TEST

/*  Bad options are refused with a message.  */
START_TEST (test_bad_mode)
{
    bc_options_t opt;
    bc_options_init (&opt);
    ck_assert_int_eq (opt.apply_sync, BC_APPLY_SYNC_INTERVAL);
    opt.apply_sync = (bc_apply_sync_t) 7;
    bc_engine_t *e = NULL;
    char err [256] = "";
    ck_assert_int_eq (bc_engine_open (s_dir, &opt, &e, err, sizeof err),
                      -EINVAL);
    ck_assert_ptr_null (e);
    ck_assert_msg (strstr (err, "apply_sync") != NULL, "message: %s", err);
}
END_TEST

int
main (void)
{
    Suite *s = suite_create ("bitcask_applysync");
    TCase *tc = tcase_create ("applysync");
    tcase_add_checked_fixture (tc, s_setup, s_teardown);
    tcase_set_timeout (tc, 60);
    tcase_add_test (tc, test_interval_power_loss);
    tcase_add_test (tc, test_interval_sync_points);
    tcase_add_test (tc, test_always_power_loss);
    tcase_add_test (tc, test_interval_sync_failure);
    tcase_add_test (tc, test_bad_mode);
    suite_add_tcase (s, tc);
    return titan_check_run (s, false);
}
