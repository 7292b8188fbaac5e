/*  Unit tests of the Bitcask state digest (modules/bitcask/bc_digest.h)
    for the consistency check (docs/consistency.md): the same ops applied
    in different batchings give the same digest and the same recorded
    points; the digest recomputed at open equals the running one; a merge
    keeps it; a replica missing one op, or whose data files lost a key,
    has another digest.  */
#include <check.h>
#include "check_run.h"
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bc_engine.h"
#include "test_dir.h"

#define OPS        2600
#define EVERY      100

static char s_dirs [3][256];

static void
s_setup (void)
{
    for (int i = 0; i < 3; i++) {
        snprintf (s_dirs [i], sizeof s_dirs [i], "/tmp/bcdigest-test-XXXXXX");
        ck_assert_ptr_nonnull (mkdtemp (s_dirs [i]));
    }
}

static void
s_teardown (void)
{
    for (int i = 0; i < 3; i++)
        test_dir_remove (s_dirs [i]);
}

static bc_engine_t *
s_open (int which, uint64_t max_file_bytes)
{
    bc_options_t opt;
    bc_options_init (&opt);
    opt.digest_every = EVERY;
    opt.sync = false;
    if (max_file_bytes)
        opt.max_file_bytes = max_file_bytes;
    bc_engine_t *e = NULL;
    char err [256] = "";
    int rc = bc_engine_open (s_dirs [which], &opt, &e, err, sizeof err);
    ck_assert_msg (rc == 0, "open failed: %d %s", rc, err);
    return e;
}

/*  The log: the entry at index r (1..OPS) is a no-op when r % 13 == 0 (no
    storage op), else a put, a delete or a failing CAS of one of 150
    keys.  */
static bool
s_is_noop (uint64_t r)
{
    return r % 13 == 0;
}

static void
s_op_at (uint64_t r, bc_op_t *op, char *key, char *val)
{
    memset (op, 0, sizeof *op);
    snprintf (key, 16, "key-%03u", (unsigned) ((r * 7) % 150));
    snprintf (val, 64, "value of %llu %.*s", (unsigned long long) r,
              (int) (r % 40), "........................................");
    op->key = key;
    op->key_len = strlen (key);
    if (r % 11 == 0)
        op->kind = BC_OP_DELETE;
    else
    if (r % 17 == 0) {
        op->kind = BC_OP_CAS;
        op->expected_revision = 1;      /* never matches: no effect */
    }
    else
        op->kind = BC_OP_PUT;
    op->value = val;
    op->value_len = strlen (val);
}

/*  Applies entries 1..last in batches of at most `batch` ops; a batch ends
    at a no-op, whose index it covers.  Entry `skip` (0: none) is replaced
    by a put of another key.  With `replay` the batches may be refused as
    already applied.  */
static void
s_apply_log (bc_engine_t *e, uint64_t last, size_t batch, uint64_t skip,
             bool replay)
{
    bc_op_t *ops = calloc (batch, sizeof *ops);
    char (*keys) [16] = calloc (batch, 16);
    char (*vals) [64] = calloc (batch, 64);
    ck_assert (ops && keys && vals);
    uint64_t r = 1;
    char err [256];
    while (r <= last) {
        uint64_t first = r;
        size_t n = 0;
        while (r <= last && !s_is_noop (r) && n < batch) {
            s_op_at (r, &ops [n], keys [n], vals [n]);
            if (r == skip) {            /* another op: a key nobody else has */
                ops [n].kind = BC_OP_PUT;
                ops [n].key = "extra";
                ops [n].key_len = 5;
            }
            n++;
            r++;
        }
        while (r <= last && s_is_noop (r))
            r++;                                /* no-ops ride along */
        if (n == 0)
            continue;
        int rc = bc_engine_apply_batch (e, ops, n, first, r - 1, err,
                                        sizeof err);
        ck_assert_msg (rc == 0 || (replay && rc == -EALREADY), "apply at %llu: %d %s",
                       (unsigned long long) first, rc, err);
    }
    free (ops);
    free (keys);
    free (vals);
}

typedef struct {
    uint64_t digest;
    bc_digest_point_t points [BC_DIGEST_KEEP];
    size_t n;
} s_view_t;

static void
s_view (bc_engine_t *e, s_view_t *v)
{
    v->n = bc_engine_digest (e, &v->digest, v->points, BC_DIGEST_KEEP);
}

START_TEST (test_same_ops_other_batchings)
{
    bc_engine_t *a = s_open (0, 0), *b = s_open (1, 0);
    s_apply_log (a, OPS, 7, 0, false);
    s_apply_log (b, OPS, 300, 0, false);
    s_view_t va, vb;
    s_view (a, &va);
    s_view (b, &vb);
    ck_assert_uint_ne (va.digest, 0);
    ck_assert_uint_eq (va.digest, vb.digest);
    ck_assert_uint_eq (va.n, BC_DIGEST_KEEP);
    ck_assert_uint_eq (vb.n, BC_DIGEST_KEEP);
    for (size_t i = 0; i < va.n; i++) {
        ck_assert_uint_eq (va.points [i].index,
                           (OPS / EVERY - BC_DIGEST_KEEP + 1 + i) * EVERY);
        ck_assert_uint_eq (va.points [i].index, vb.points [i].index);
        ck_assert_uint_eq (va.points [i].digest, vb.points [i].digest);
    }
    /* the points differ from each other: the state moved */
    ck_assert_uint_ne (va.points [0].digest, va.points [1].digest);
    /* a replayed batch changes nothing */
    s_apply_log (b, OPS, 50, 0, true);
    s_view (b, &vb);
    ck_assert_uint_eq (va.digest, vb.digest);
    bc_engine_destroy (&a);
    bc_engine_destroy (&b);
}
END_TEST

START_TEST (test_point_inside_batch)
{
    /* the point at 100 is the state after entry 100, even in a batch that
       goes on to 299 */
    bc_engine_t *a = s_open (0, 0), *b = s_open (1, 0);
    s_apply_log (a, EVERY, 1, 0, false);
    s_view_t va, vb;
    s_view (a, &va);
    s_apply_log (b, 3 * EVERY - 1, 1000, 0, false);
    s_view (b, &vb);
    ck_assert_uint_ge (va.n, 1);
    ck_assert_uint_eq (va.points [va.n - 1].index, EVERY);
    ck_assert_uint_eq (vb.points [0].index, EVERY);
    ck_assert_uint_eq (vb.points [0].digest, va.points [va.n - 1].digest);
    ck_assert_uint_eq (vb.points [0].digest, va.digest);
    bc_engine_destroy (&a);
    bc_engine_destroy (&b);
}
END_TEST

START_TEST (test_recomputed_at_open)
{
    bc_engine_t *a = s_open (0, 4096);
    s_apply_log (a, OPS, 64, 0, false);
    s_view_t before, after;
    s_view (a, &before);
    char err [256];
    uint64_t files = 0, bytes = 0;
    ck_assert_int_eq (bc_engine_rotate (a, err, sizeof err), 0);
    ck_assert_int_eq (bc_engine_merge (a, &files, &bytes, err, sizeof err), 0);
    ck_assert_uint_gt (files, 0);
    s_view (a, &after);
    ck_assert_uint_eq (after.digest, before.digest);    /* merge keeps it */
    bc_engine_destroy (&a);
    a = s_open (0, 4096);
    s_view (a, &after);
    ck_assert_uint_eq (after.digest, before.digest);
    /* OPS is a multiple of EVERY: the open records the point at it */
    ck_assert_uint_eq (after.n, 1);
    ck_assert_uint_eq (after.points [0].index, OPS);
    ck_assert_uint_eq (after.points [0].digest, before.digest);
    bc_engine_destroy (&a);
}
END_TEST

START_TEST (test_divergence_changes_it)
{
    bc_engine_t *a = s_open (0, 0), *c = s_open (2, 0);
    s_apply_log (a, OPS, 100, 0, false);
    s_apply_log (c, OPS, 100, 1002, false);  /* one put of another key */
    s_view_t va, vc;
    s_view (a, &va);
    s_view (c, &vc);
    ck_assert_uint_ne (va.digest, vc.digest);
    ck_assert_uint_eq (va.points [0].index, vc.points [0].index);
    ck_assert_uint_ne (va.points [0].digest, vc.points [0].digest);
    bc_engine_destroy (&a);
    bc_engine_destroy (&c);
}
END_TEST

START_TEST (test_key_removed_from_files)
{
    bc_engine_t *a = s_open (0, 4096);
    s_apply_log (a, OPS, 64, 0, false);
    s_view_t before, after;
    s_view (a, &before);
    bc_engine_destroy (&a);
    /* delete the newest sealed data file (it holds the latest records of
       some keys) and its hint */
    DIR *d = opendir (s_dirs [0]);
    ck_assert_ptr_nonnull (d);
    char first [256] = "", last [256] = "";
    struct dirent *de;
    while ((de = readdir (d)))
        if (strstr (de->d_name, "data") && strcmp (de->d_name, last) > 0) {
            snprintf (first, sizeof first, "%s", last);
            snprintf (last, sizeof last, "%s", de->d_name);
        }
        else
        if (strstr (de->d_name, "data") && strcmp (de->d_name, first) > 0)
            snprintf (first, sizeof first, "%s", de->d_name);
    closedir (d);
    ck_assert (*first);
    char path [600];
    snprintf (path, sizeof path, "%s/%s", s_dirs [0], first);
    ck_assert_int_eq (unlink (path), 0);
    char *dot = strrchr (path, '.');
    strcpy (dot, ".hint");
    unlink (path);
    a = s_open (0, 4096);
    s_view (a, &after);
    ck_assert_uint_ne (after.digest, before.digest);
    bc_engine_destroy (&a);
}
END_TEST

static Suite *
s_suite (void)
{
    Suite *s = suite_create ("bitcask_digest");
    TCase *tc = tcase_create ("digest");
    tcase_add_checked_fixture (tc, s_setup, s_teardown);
    tcase_set_timeout (tc, 60);
    tcase_add_test (tc, test_same_ops_other_batchings);
    tcase_add_test (tc, test_point_inside_batch);
    tcase_add_test (tc, test_recomputed_at_open);
    tcase_add_test (tc, test_divergence_changes_it);
    tcase_add_test (tc, test_key_removed_from_files);
    suite_add_tcase (s, tc);
    return s;
}

int
main (void)
{
    return titan_check_run (s_suite (), false);
}
