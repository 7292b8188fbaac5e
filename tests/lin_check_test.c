/*  Tests of the linearizability checker (tests/lin): the history format,
    the KV + CAS model and the search.  Hand-written histories that are
    linearizable must pass and ones that are not must be rejected with an
    explanation naming the ops involved; randomized histories generated
    from a simulated linearizable store must pass, and each must fail once
    one read is mutated to a value that real-time order makes stale.  */
#include "check_run.h"
#include "lin_check.h"
#include "lin_model_kv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

//  --------------------------------------------------------------------------
//  History builders

static const int64_t INF = LIN_TIME_INF;

static void
s_add (lin_history_t *h, lin_op_t *op)
{
    char err [256] = "";
    int rc = lin_history_add (h, op, err, sizeof err);
    ck_assert_msg (rc >= 0, "lin_history_add: %d %s", rc, err);
}

static lin_op_t
s_op (uint32_t client, lin_op_kind_t kind, const char *key, int64_t invoke, int64_t complete)
{
    lin_op_t op;
    memset (&op, 0, sizeof op);
    op.client = client;
    op.kind = kind;
    op.key = (uint8_t *) key;
    op.key_len = strlen (key);
    op.invoke = invoke;
    op.complete = complete;
    op.outcome = complete == INF ? LIN_OUT_UNKNOWN : LIN_OUT_OK;
    return op;
}

//  put key=value; rev 0 = not reported; complete INF = unknown outcome.
static void
s_put (lin_history_t *h, uint32_t c, const char *key, const char *value,
       int64_t inv, int64_t comp, uint64_t rev)
{
    lin_op_t op = s_op (c, LIN_OP_PUT, key, inv, comp);
    op.value = (uint8_t *) value;
    op.value_len = strlen (value);
    op.rev = comp == INF ? 0 : rev;
    s_add (h, &op);
}

//  get key -> value (NULL: not found), rev 0 = not reported.
static void
s_get (lin_history_t *h, uint32_t c, const char *key, const char *value,
       int64_t inv, int64_t comp, uint64_t rev)
{
    lin_op_t op = s_op (c, LIN_OP_GET, key, inv, comp);
    if (value) {
        op.found = true;
        op.out_value = (uint8_t *) value;
        op.out_len = strlen (value);
        op.rev = rev;
    }
    s_add (h, &op);
}

//  cas key if rev==expect (0: if absent) -> value; outcome given.
static void
s_cas (lin_history_t *h, uint32_t c, const char *key, uint64_t expect, const char *value,
       int64_t inv, int64_t comp, lin_outcome_t outcome, uint64_t rev)
{
    lin_op_t op = s_op (c, LIN_OP_CAS, key, inv, comp);
    op.expect_absent = expect == 0;
    op.expect_rev = expect;
    op.value = (uint8_t *) value;
    op.value_len = strlen (value);
    op.outcome = outcome;
    op.fail = LIN_FAIL_PRECONDITION;
    op.rev = outcome == LIN_OUT_OK ? rev : 0;
    s_add (h, &op);
}

static void
s_del (lin_history_t *h, uint32_t c, const char *key, int64_t inv, int64_t comp,
       lin_outcome_t outcome, uint64_t rev)
{
    lin_op_t op = s_op (c, LIN_OP_DELETE, key, inv, comp);
    op.outcome = outcome;
    op.fail = LIN_FAIL_PRECONDITION;
    op.rev = outcome == LIN_OUT_OK ? rev : 0;
    s_add (h, &op);
}

//  Checks h (unlimited budget), returns the verdict, prints violations.
static lin_result_t
s_verdict (const lin_history_t *h, lin_report_t *keep)
{
    lin_report_t report;
    ck_assert_int_eq (lin_check (h, NULL, &report), 0);
    lin_result_t result = report.result;
    if (result == LIN_RESULT_VIOLATION)
        ck_assert_ptr_nonnull (report.explanation);
    if (keep)
        *keep = report;
    else
        lin_report_clear (&report);
    return result;
}

#define ASSERT_LIN(h)     ck_assert_str_eq (lin_result_name (s_verdict (h, NULL)), "linearizable")
#define ASSERT_NOT_LIN(h) ck_assert_str_eq (lin_result_name (s_verdict (h, NULL)), "not linearizable")

//  --------------------------------------------------------------------------
//  Linearizable histories

START_TEST (test_empty)
{
    lin_history_t *h = lin_history_new ();
    ASSERT_LIN (h);
    lin_history_destroy (&h);
    ck_assert_ptr_null (h);
}
END_TEST

START_TEST (test_sequential)
{
    lin_history_t *h = lin_history_new ();
    s_get (h, 1, "k", NULL, 0, 1, 0);
    s_put (h, 1, "k", "a", 2, 3, 1);
    s_get (h, 1, "k", "a", 4, 5, 1);
    s_put (h, 1, "k", "b", 6, 7, 2);
    s_get (h, 1, "k", "b", 8, 9, 2);
    s_del (h, 1, "k", 10, 11, LIN_OUT_OK, 3);
    s_get (h, 1, "k", NULL, 12, 13, 0);
    s_del (h, 1, "k", 14, 15, LIN_OUT_FAILED, 0);
    s_cas (h, 1, "k", 0, "c", 16, 17, LIN_OUT_OK, 4);
    s_get (h, 1, "k", "c", 18, 19, 4);
    ASSERT_LIN (h);
    lin_history_destroy (&h);
}
END_TEST

START_TEST (test_concurrent_writes_reads)
{
    lin_history_t *h = lin_history_new ();
    //  Two overlapping writes; revisions order them a (5) then b (6).
    s_put (h, 1, "x", "a", 0, 10, 5);
    s_put (h, 2, "x", "b", 0, 10, 6);
    //  Reads overlapping the writes may see either, in a consistent order.
    s_get (h, 3, "x", "a", 1, 12, 5);
    s_get (h, 4, "x", NULL, 0, 3, 0);
    s_get (h, 3, "x", "b", 13, 14, 6);
    s_get (h, 4, "x", "b", 4, 20, 6);
    //  Touching intervals (complete == invoke) count as concurrent.
    s_put (h, 1, "x", "c", 30, 40, 9);
    s_get (h, 2, "x", "b", 40, 41, 6);
    ASSERT_LIN (h);
    lin_history_destroy (&h);
}
END_TEST

START_TEST (test_unknown_took_effect)
{
    lin_history_t *h = lin_history_new ();
    s_put (h, 1, "k", "a", 0, 1, 1);
    s_put (h, 2, "k", "b", 2, INF, 0);
    s_get (h, 3, "k", "a", 10, 11, 1);        //  not yet
    s_get (h, 3, "k", "b", 20, 21, 0);        //  now visible
    s_get (h, 1, "k", "b", 22, 23, 7);        //  its revision learned: 7
    s_cas (h, 1, "k", 7, "c", 24, 25, LIN_OUT_OK, 8);
    s_get (h, 1, "k", "c", 26, 27, 8);
    ASSERT_LIN (h);
    lin_history_destroy (&h);
}
END_TEST

START_TEST (test_unknown_no_effect)
{
    lin_history_t *h = lin_history_new ();
    s_put (h, 1, "k", "a", 0, 1, 1);
    s_put (h, 2, "k", "b", 2, INF, 0);
    s_del (h, 2, "k", 3, INF, LIN_OUT_UNKNOWN, 0);
    s_cas (h, 2, "k", 1, "c", 3, INF, LIN_OUT_UNKNOWN, 0);
    s_get (h, 3, "k", "a", 10, 11, 1);
    s_get (h, 3, "k", "a", 20, 21, 1);
    //  A failed op without effect carries no information.
    lin_op_t op = s_op (4, LIN_OP_PUT, "k", 22, 23);
    op.outcome = LIN_OUT_FAILED;
    op.fail = LIN_FAIL_NOEFFECT;
    s_add (h, &op);
    //  So does an unknown get.
    s_get (h, 4, "k", NULL, 24, INF, 0);
    s_put (h, 1, "k", "d", 30, 31, 5);
    s_get (h, 1, "k", "d", 32, 33, 5);
    lin_report_t report;
    ck_assert_int_eq (lin_check (h, NULL, &report), 0);
    ck_assert_int_eq (report.result, LIN_RESULT_OK);
    ck_assert_uint_eq (report.ops, 10);
    ck_assert_uint_eq (report.keys, 1);
    ck_assert_uint_eq (report.unknown, 4);
    ck_assert_uint_eq (report.ignored, 2);
    lin_report_clear (&report);
    lin_history_destroy (&h);
}
END_TEST

START_TEST (test_cas_chain)
{
    lin_history_t *h = lin_history_new ();
    s_cas (h, 1, "k", 0, "v1", 0, 1, LIN_OUT_OK, 1);
    s_cas (h, 1, "k", 0, "zz", 2, 3, LIN_OUT_FAILED, 0);
    //  Two concurrent CAS on the same revision: one wins, one fails.
    s_cas (h, 1, "k", 1, "v2", 4, 10, LIN_OUT_OK, 2);
    s_cas (h, 2, "k", 1, "v2'", 4, 10, LIN_OUT_FAILED, 0);
    s_cas (h, 1, "k", 2, "v3", 11, 12, LIN_OUT_OK, 3);
    s_cas (h, 2, "k", 2, "zz", 13, 14, LIN_OUT_FAILED, 0);
    s_get (h, 3, "k", "v3", 15, 16, 3);
    s_del (h, 3, "k", 17, 18, LIN_OUT_OK, 4);
    s_cas (h, 3, "k", 3, "zz", 19, 20, LIN_OUT_FAILED, 0);
    s_cas (h, 3, "k", 0, "v4", 21, 22, LIN_OUT_OK, 5);
    ASSERT_LIN (h);
    lin_history_destroy (&h);
}
END_TEST

START_TEST (test_keys_independent)
{
    //  Per key this is fine; a single register model would reject it
    //  (the read of "a" on key y sees a value written to x).
    lin_history_t *h = lin_history_new ();
    s_put (h, 1, "x", "a", 0, 1, 1);
    s_put (h, 1, "y", "b", 2, 3, 2);
    s_get (h, 2, "x", "a", 4, 5, 1);
    s_get (h, 2, "y", "b", 4, 5, 2);
    s_put (h, 1, "x", "c", 6, 7, 3);
    s_get (h, 2, "y", "b", 8, 9, 2);
    lin_report_t report;
    ck_assert_int_eq (lin_check (h, NULL, &report), 0);
    ck_assert_int_eq (report.result, LIN_RESULT_OK);
    ck_assert_uint_eq (report.keys, 2);
    lin_report_clear (&report);
    lin_history_destroy (&h);
}
END_TEST

//  --------------------------------------------------------------------------
//  Non-linearizable histories

START_TEST (test_stale_read)
{
    lin_history_t *h = lin_history_new ();
    s_put (h, 1, "k", "old", 0, 1, 1);
    s_put (h, 1, "k", "new", 2, 3, 2);
    s_get (h, 2, "k", "old", 4, 5, 0);
    s_put (h, 1, "other", "x", 0, 1, 3);     //  keys sort after "k"
    lin_report_t report;
    ck_assert_int_eq (s_verdict (h, &report), LIN_RESULT_VIOLATION);
    ck_assert_uint_eq (report.keys, 2);
    ck_assert_uint_eq (report.ops, 4);
    //  The explanation names the stale read (#2) and the write it missed.
    ck_assert_ptr_nonnull (strstr (report.explanation, "key \"k\""));
    ck_assert_ptr_nonnull (strstr (report.explanation, "#2 "));
    ck_assert_ptr_nonnull (strstr (report.explanation, "\"new\""));
    bool named = false;
    for (size_t i = 0; i < report.bad_op_count; i++)
        named |= report.bad_ops [i] == 2;
    ck_assert (named);
    lin_report_clear (&report);
    lin_history_destroy (&h);
}
END_TEST

START_TEST (test_lost_write)
{
    lin_history_t *h = lin_history_new ();
    s_put (h, 1, "k", "a", 0, 1, 1);
    s_put (h, 2, "k", "b", 2, 10, 2);         //  acknowledged
    s_get (h, 3, "k", "a", 3, 4, 1);          //  fine: concurrent with b
    s_get (h, 3, "k", "a", 11, 12, 1);        //  b lost
    s_get (h, 1, "k", "a", 13, 14, 1);
    ASSERT_NOT_LIN (h);
    lin_history_destroy (&h);

    //  A lost delete: the key reappears after the delete completed.
    h = lin_history_new ();
    s_put (h, 1, "k", "a", 0, 1, 1);
    s_del (h, 1, "k", 2, 3, LIN_OUT_OK, 2);
    s_get (h, 2, "k", "a", 4, 5, 0);
    ASSERT_NOT_LIN (h);
    lin_history_destroy (&h);

    //  A read of nothing after an acknowledged write.
    h = lin_history_new ();
    s_put (h, 1, "k", "a", 0, 1, 1);
    s_get (h, 2, "k", NULL, 4, 5, 0);
    ASSERT_NOT_LIN (h);
    lin_history_destroy (&h);
}
END_TEST

START_TEST (test_value_never_written)
{
    lin_history_t *h = lin_history_new ();
    s_put (h, 1, "k", "a", 0, 10, 1);
    s_put (h, 2, "k", "b", 0, INF, 0);        //  even with an unknown write
    s_get (h, 3, "k", "c", 5, 6, 0);
    ASSERT_NOT_LIN (h);
    lin_history_destroy (&h);

    //  A value written to another key does not count.
    h = lin_history_new ();
    s_put (h, 1, "x", "a", 0, 1, 1);
    s_get (h, 2, "y", "a", 2, 3, 0);
    ASSERT_NOT_LIN (h);
    lin_history_destroy (&h);
}
END_TEST

START_TEST (test_cas_wrong_revision)
{
    lin_history_t *h = lin_history_new ();
    s_put (h, 1, "k", "a", 0, 1, 1);
    s_cas (h, 1, "k", 7, "b", 2, 3, LIN_OUT_OK, 8);
    ASSERT_NOT_LIN (h);
    lin_history_destroy (&h);

    //  CAS "if absent" succeeding on a present key.
    h = lin_history_new ();
    s_put (h, 1, "k", "a", 0, 1, 1);
    s_cas (h, 1, "k", 0, "b", 2, 3, LIN_OUT_OK, 2);
    ASSERT_NOT_LIN (h);
    lin_history_destroy (&h);

    //  A CAS that failed although its condition held.
    h = lin_history_new ();
    s_put (h, 1, "k", "a", 0, 1, 1);
    s_cas (h, 1, "k", 1, "b", 2, 3, LIN_OUT_FAILED, 0);
    ASSERT_NOT_LIN (h);
    lin_history_destroy (&h);

    //  A delete that reported NOT_FOUND on a present key.
    h = lin_history_new ();
    s_put (h, 1, "k", "a", 0, 1, 1);
    s_del (h, 1, "k", 2, 3, LIN_OUT_FAILED, 0);
    ASSERT_NOT_LIN (h);
    lin_history_destroy (&h);
}
END_TEST

START_TEST (test_double_cas)
{
    lin_history_t *h = lin_history_new ();
    s_put (h, 1, "k", "a", 0, 1, 1);
    s_cas (h, 1, "k", 1, "b", 2, 10, LIN_OUT_OK, 2);
    s_cas (h, 2, "k", 1, "c", 2, 10, LIN_OUT_OK, 3);
    ASSERT_NOT_LIN (h);
    lin_history_destroy (&h);

    //  Same with the first value's revision never reported (unknown put).
    h = lin_history_new ();
    s_put (h, 1, "k", "a", 0, INF, 0);
    s_cas (h, 1, "k", 4, "b", 2, 10, LIN_OUT_OK, 5);
    s_cas (h, 2, "k", 4, "c", 2, 10, LIN_OUT_OK, 6);
    ASSERT_NOT_LIN (h);
    lin_history_destroy (&h);
}
END_TEST

START_TEST (test_revisions_not_monotonic)
{
    lin_history_t *h = lin_history_new ();
    s_put (h, 1, "k", "a", 0, 1, 5);
    s_put (h, 1, "k", "b", 2, 3, 3);
    ASSERT_NOT_LIN (h);
    lin_history_destroy (&h);

    //  Equal revisions for two writes.
    h = lin_history_new ();
    s_put (h, 1, "k", "a", 0, 5, 4);
    s_put (h, 2, "k", "b", 0, 5, 4);
    ASSERT_NOT_LIN (h);
    lin_history_destroy (&h);

    //  A read reporting a revision other than the one written.
    h = lin_history_new ();
    s_put (h, 1, "k", "a", 0, 1, 4);
    s_get (h, 1, "k", "a", 2, 3, 3);
    ASSERT_NOT_LIN (h);
    lin_history_destroy (&h);

    //  A write whose revision was never reported still comes after rev 5:
    //  a CAS naming an older revision cannot have matched it.
    h = lin_history_new ();
    s_put (h, 1, "k", "a", 0, 1, 5);
    s_put (h, 1, "k", "b", 2, INF, 0);
    s_get (h, 2, "k", "b", 3, 4, 0);
    s_cas (h, 2, "k", 3, "c", 5, 6, LIN_OUT_OK, 9);
    ASSERT_NOT_LIN (h);
    lin_history_destroy (&h);

    //  Overlapping writes are fine in either order, but then the reads
    //  must agree with the order the revisions impose.
    h = lin_history_new ();
    s_put (h, 1, "k", "a", 0, 10, 7);
    s_put (h, 2, "k", "b", 0, 10, 6);
    s_get (h, 3, "k", "b", 11, 12, 6);
    ASSERT_NOT_LIN (h);
    lin_history_destroy (&h);
}
END_TEST

//  --------------------------------------------------------------------------
//  Model unit checks

START_TEST (test_model_learn)
{
    lin_kv_state_t s = lin_kv_initial (), n;
    lin_kv_op_t put = { .kind = LIN_OP_PUT, .outcome = LIN_OUT_UNKNOWN, .value = 1 };
    ck_assert (lin_kv_step (&s, &put, &n));
    ck_assert_uint_eq (n.rev, 0);
    lin_kv_op_t get = { .kind = LIN_OP_GET, .outcome = LIN_OUT_OK, .out = 1, .rev = 9 };
    lin_kv_state_t m;
    ck_assert (lin_kv_step (&n, &get, &m));
    ck_assert_uint_eq (m.rev, 9);
    ck_assert_uint_eq (m.floor, 10);
    get.rev = 8;
    ck_assert (!lin_kv_step (&m, &get, &n));
    lin_kv_op_t old = { .kind = LIN_OP_PUT, .outcome = LIN_OUT_OK, .value = 2, .rev = 9 };
    ck_assert (!lin_kv_step (&m, &old, &n));
    old.rev = 10;
    ck_assert (lin_kv_step (&m, &old, &n));
}
END_TEST

//  --------------------------------------------------------------------------
//  Format

static bool
s_same_bytes (const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp (a, b, alen) == 0);
}

START_TEST (test_format_roundtrip)
{
    lin_history_t *h = lin_history_new ();
    s_put (h, 1, "k", "a", -5, 1, 1);
    s_put (h, 2, "k", "", 2, INF, 0);
    s_cas (h, 3, "k", 0, "zz", 2, 8, LIN_OUT_FAILED, 0);
    s_cas (h, 3, "k", 1, "yy", 9, 10, LIN_OUT_OK, 4);
    s_del (h, 4, "k", 11, 12, LIN_OUT_OK, 5);
    s_get (h, 4, "k", NULL, 13, 14, 0);
    lin_op_t bin = s_op (UINT32_MAX, LIN_OP_GET, "", 15, 16);
    uint8_t key [] = { 0, 0xff, '\n', ' ' }, val [] = { '=', 0, 0x80 };
    bin.key = key;
    bin.key_len = sizeof key;
    bin.found = true;
    bin.out_value = val;
    bin.out_len = sizeof val;
    bin.rev = UINT64_MAX;
    s_add (h, &bin);

    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    ck_assert_ptr_nonnull (out);
    ck_assert_int_eq (lin_history_write (h, out), 0);
    fclose (out);
    FILE *in = fmemopen (text, size, "r");
    lin_history_t *back = NULL;
    char err [256] = "";
    ck_assert_msg (lin_history_read (in, &back, err, sizeof err) == 0, "%s", err);
    fclose (in);
    ck_assert_uint_eq (lin_history_size (back), lin_history_size (h));
    for (size_t i = 0; i < lin_history_size (h); i++) {
        const lin_op_t *a = lin_history_get (h, i), *b = lin_history_get (back, i);
        ck_assert_uint_eq (a->client, b->client);
        ck_assert_int_eq (a->kind, b->kind);
        ck_assert_int_eq (a->outcome, b->outcome);
        ck_assert_int_eq (a->invoke, b->invoke);
        ck_assert_int_eq (a->complete, b->complete);
        ck_assert_int_eq (a->expect_absent, b->expect_absent);
        ck_assert_uint_eq (a->expect_rev, b->expect_rev);
        ck_assert_int_eq (a->found, b->found);
        ck_assert_uint_eq (a->rev, b->rev);
        if (a->outcome == LIN_OUT_FAILED)
            ck_assert_int_eq (a->fail, b->fail);
        ck_assert (s_same_bytes (a->key, a->key_len, b->key, b->key_len));
        ck_assert (s_same_bytes (a->value, a->value_len, b->value, b->value_len));
        ck_assert (s_same_bytes (a->out_value, a->out_len, b->out_value, b->out_len));
    }
    free (text);

    //  Through a file too, and the verdict survives.
    char path [] = "/tmp/lin_check_test_XXXXXX";
    int fd = mkstemp (path);
    ck_assert_int_ge (fd, 0);
    close (fd);
    ck_assert_int_eq (lin_history_save (h, path, err, sizeof err), 0);
    lin_history_t *loaded = NULL;
    ck_assert_int_eq (lin_history_load (path, &loaded, err, sizeof err), 0);
    ck_assert_int_eq (s_verdict (loaded, NULL), s_verdict (h, NULL));
    ck_assert_uint_eq (lin_history_size (loaded), lin_history_size (h));
    lin_history_destroy (&loaded);
    unlink (path);
    ck_assert_int_eq (lin_history_load (path, &loaded, err, sizeof err) , -ENOENT);
    ck_assert_ptr_null (loaded);
    ck_assert_ptr_nonnull (strstr (err, path));
    lin_history_destroy (&back);
    lin_history_destroy (&h);
}
END_TEST

static int
s_parse (const char *text, char *err, size_t errlen)
{
    FILE *in = fmemopen ((void *) text, strlen (text), "r");
    ck_assert_ptr_nonnull (in);
    lin_history_t *h = (lin_history_t *) 1;
    int rc = lin_history_read (in, &h, err, errlen);
    fclose (in);
    if (rc == 0)
        lin_history_destroy (&h);
    else
        ck_assert_ptr_null (h);
    return rc;
}

START_TEST (test_format_errors)
{
    char err [256];
    const char *good = "titan-lin-history 1\n# comment\n\n"
        "op=put client=1 key=6b invoke=0 complete=1 outcome=ok value=61 rev=1\n";
    ck_assert_int_eq (s_parse (good, err, sizeof err), 0);
    struct { const char *text; const char *needle; } bad [] = {
        { "", "empty" },
        { "titan-lin-history 2\n", "line 1" },
        { "titan-lin-history 1\nop=put client=1 key=6 invoke=0 complete=1 outcome=ok\n", "line 2" },
        { "titan-lin-history 1\nop=put client=1 key=zz invoke=0 complete=1 outcome=ok\n", "key" },
        { "titan-lin-history 1\nop=put key=6b invoke=0 complete=1 outcome=ok color=red\n", "color" },
        { "titan-lin-history 1\nop=put key=6b invoke=0 outcome=ok\n", "missing" },
        { "titan-lin-history 1\nop=put key=6b invoke=0 complete=inf outcome=ok\n", "complete" },
        { "titan-lin-history 1\nop=put key=6b invoke=0 complete=5 outcome=unknown\n", "inf" },
        { "titan-lin-history 1\nop=put key=6b invoke=9 complete=5 outcome=ok\n", "invoke" },
        { "titan-lin-history 1\nop=get key=6b invoke=0 complete=5 outcome=ok rev=-1\n", "rev" },
        { "titan-lin-history 1\nop=get key=6b invoke=0 complete=5 outcome=ok rev=99999999999999999999\n", "rev" },
        { "titan-lin-history 1\nop=cas key=6b invoke=0 complete=5 outcome=ok value=\n", "cas" },
        { "titan-lin-history 1\nop=put key=6b invoke=0 complete=5 outcome=failed fail=precondition\n", "precondition" },
        { "titan-lin-history 1\nop=get key=6b invoke=0 complete=5 outcome=ok found=0 rev=3\n", "found nothing" },
        { "titan-lin-history 1\nop=put key=6b invoke=0 complete=1 outcome=ok\nop=jump\n", "line 3" },
        { "titan-lin-history 1\nop=put key=6b invoke=x complete=1 outcome=ok\n", "invoke" },
        { "titan-lin-history 1\nop=put client=4294967296 key=6b invoke=0 complete=1 outcome=ok\n", "client" },
        { "titan-lin-history 1\nop=put novalue invoke=0 complete=1 outcome=ok\n", "name=value" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        err [0] = 0;
        ck_assert_msg (s_parse (bad [i].text, err, sizeof err) == -EINVAL, "case %zu accepted", i);
        ck_assert_msg (strstr (err, bad [i].needle), "case %zu: message '%s' lacks '%s'",
                       i, err, bad [i].needle);
    }
}
END_TEST

//  --------------------------------------------------------------------------
//  Randomized histories from a simulated linearizable store

static uint64_t s_rng;

static uint32_t
s_rand (uint32_t bound)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return (uint32_t) (s_rng % bound);
}

#define SIM_MAX_KEYS 8

//  Generates `nops` operations by `clients` clients over `nkeys` keys.
//  Operations are produced in linearization order: each takes effect at
//  an increasing instant L inside [invoke, complete] on the simulated
//  store, so the history is linearizable by construction.  Values are
//  unique per write.  Some operations end with an unknown outcome (and
//  then took effect or not at random).
static lin_history_t *
s_simulate (uint64_t seed, uint32_t clients, uint32_t nkeys, size_t nops, uint32_t unknown_pct)
{
    s_rng = seed * 2654435761u + 88172645463325252ull;
    lin_history_t *h = lin_history_new ();
    ck_assert_ptr_nonnull (h);
    int64_t busy [64] = { 0 };
    ck_assert (clients <= 64 && nkeys <= SIM_MAX_KEYS);
    char values [SIM_MAX_KEYS][32];
    uint64_t revs [SIM_MAX_KEYS] = { 0 };
    bool present [SIM_MAX_KEYS] = { false };
    uint64_t next_rev = 1;
    int64_t now = 0;
    for (size_t n = 0; n < nops; n++) {
        now += 1 + s_rand (3);
        uint32_t c = s_rand (clients);
        for (uint32_t tries = 0; busy [c] >= now && tries < clients; tries++)
            c = (c + 1) % clients;
        if (busy [c] >= now)
            now = busy [c] + 1;
        int64_t invoke = now - (int64_t) s_rand ((uint32_t) (now - busy [c]));
        if (invoke <= busy [c])
            invoke = busy [c] + 1;
        int64_t complete = now + s_rand (20);
        bool unknown = s_rand (100) < unknown_pct;
        bool applied = !unknown || s_rand (2);
        busy [c] = unknown ? now + 5 : complete;

        uint32_t k = s_rand (nkeys);
        char key [16], value [32];
        snprintf (key, sizeof key, "key%u", k);
        snprintf (value, sizeof value, "v%zu", n);
        lin_op_t op;
        memset (&op, 0, sizeof op);
        op.client = c;
        op.key = (uint8_t *) key;
        op.key_len = strlen (key);
        op.invoke = invoke;
        op.complete = unknown ? INF : complete;
        op.outcome = unknown ? LIN_OUT_UNKNOWN : LIN_OUT_OK;
        uint32_t dice = s_rand (100);
        if (dice < 40) {
            op.kind = LIN_OP_GET;
            if (present [k]) {
                op.found = true;
                op.out_value = (uint8_t *) values [k];
                op.out_len = strlen (values [k]);
                op.rev = s_rand (2) ? revs [k] : 0;
            }
        }
        else
        if (dice < 70 || dice >= 90) {
            bool del = dice >= 90;
            op.kind = del ? LIN_OP_DELETE : LIN_OP_PUT;
            op.value = (uint8_t *) value;
            op.value_len = del ? 0 : strlen (value);
            if (del && !present [k] && !unknown) {
                op.outcome = LIN_OUT_FAILED;
                op.fail = LIN_FAIL_PRECONDITION;
            }
            else
            if (applied) {
                if (!unknown)
                    op.rev = next_rev;
                present [k] = !del;
                revs [k] = del ? 0 : next_rev;
                snprintf (values [k], sizeof values [k], "%s", value);
                next_rev++;
            }
        }
        else {
            op.kind = LIN_OP_CAS;
            op.value = (uint8_t *) value;
            op.value_len = strlen (value);
            uint32_t pick = s_rand (10);
            if (pick < 6 && present [k])
                op.expect_rev = revs [k];
            else
            if (pick < 8)
                op.expect_absent = true;
            else
                op.expect_rev = 1 + s_rand ((uint32_t) next_rev);
            bool holds = op.expect_absent ? !present [k]
                                          : present [k] && revs [k] == op.expect_rev;
            if (!holds && !unknown) {
                op.outcome = LIN_OUT_FAILED;
                op.fail = LIN_FAIL_PRECONDITION;
            }
            else
            if (holds && applied) {
                if (!unknown)
                    op.rev = next_rev;
                present [k] = true;
                revs [k] = next_rev;
                snprintf (values [k], sizeof values [k], "%s", value);
                next_rev++;
            }
        }
        if (op.kind == LIN_OP_GET && unknown)
            op.rev = 0, op.found = false, op.out_value = NULL, op.out_len = 0;
        s_add (h, &op);
    }
    return h;
}

//  Finds a get G and an acknowledged write W1 on the same key such that
//  another acknowledged write W2 of that key starts after W1 completed and
//  completes before G starts: G reading W1's (unique) value is stale.
//  Mutates G to return W1's value and revision.  Returns G's index or -1.
static long
s_mutate_stale (lin_history_t *h)
{
    size_t n = lin_history_size (h);
    for (size_t g = n; g-- > 0; ) {
        lin_op_t *get = lin_history_at (h, g);
        if (get->kind != LIN_OP_GET || get->outcome != LIN_OUT_OK)
            continue;
        for (size_t w2 = 0; w2 < n; w2++) {
            const lin_op_t *b = lin_history_get (h, w2);
            bool write = (b->kind == LIN_OP_PUT || b->kind == LIN_OP_CAS || b->kind == LIN_OP_DELETE);
            if (!write || b->outcome != LIN_OUT_OK || b->complete >= get->invoke
            ||  !s_same_bytes (b->key, b->key_len, get->key, get->key_len))
                continue;
            for (size_t w1 = 0; w1 < n; w1++) {
                const lin_op_t *a = lin_history_get (h, w1);
                if ((a->kind != LIN_OP_PUT && a->kind != LIN_OP_CAS) || a->outcome != LIN_OUT_OK
                ||  a->complete >= b->invoke
                ||  !s_same_bytes (a->key, a->key_len, get->key, get->key_len))
                    continue;
                uint8_t *copy = malloc (a->value_len ? a->value_len : 1);
                ck_assert_ptr_nonnull (copy);
                memcpy (copy, a->value, a->value_len);
                free (get->out_value);
                get->out_value = copy;
                get->out_len = a->value_len;
                get->found = true;
                get->rev = a->rev;
                return (long) g;
            }
        }
    }
    return -1;
}

START_TEST (test_random_histories)
{
    size_t mutated = 0;
    for (uint64_t seed = 1; seed <= 60; seed++) {
        uint32_t clients = 2 + (uint32_t) (seed % 5);
        uint32_t keys = 1 + (uint32_t) (seed % 3);
        lin_history_t *h = s_simulate (seed, clients, keys, 150, seed % 2 ? 10 : 0);
        lin_report_t report;
        ck_assert_int_eq (lin_check (h, NULL, &report), 0);
        ck_assert_msg (report.result == LIN_RESULT_OK, "seed %" PRIu64 ": %s\n%s", seed,
                       lin_result_name (report.result),
                       report.explanation ? report.explanation : "");
        lin_report_clear (&report);
        long g = s_mutate_stale (h);
        if (g >= 0) {
            mutated++;
            ck_assert_int_eq (lin_check (h, NULL, &report), 0);
            ck_assert_msg (report.result == LIN_RESULT_VIOLATION,
                           "seed %" PRIu64 ": stale read #%ld accepted", seed, g);
            lin_report_clear (&report);
        }
        lin_history_destroy (&h);
    }
    ck_assert_uint_ge (mutated, 50);
}
END_TEST

//  Differential test: small random histories, linearizable or not, are
//  judged by lin_check and by a brute-force enumeration of every order
//  that respects real time (and every subset of unknown operations), both
//  over the same model; the verdicts must agree.

#define BF_MAX 7

typedef struct {
    lin_kv_op_t m;
    int64_t invoke, complete;
    bool relevant;
} s_bf_op_t;

static bool
s_bf_search (const s_bf_op_t *ops, size_t n, unsigned used, const lin_kv_state_t *state)
{
    bool done = true;
    for (size_t j = 0; j < n; j++)
        if (ops [j].relevant && ops [j].m.outcome != LIN_OUT_UNKNOWN && !(used & (1u << j)))
            done = false;
    if (done)
        return true;
    for (size_t i = 0; i < n; i++) {
        if (!ops [i].relevant || (used & (1u << i)))
            continue;
        //  i may go next only if no pending known op completed before it
        //  was invoked.
        bool blocked = false;
        for (size_t j = 0; j < n; j++)
            if (j != i && ops [j].relevant && !(used & (1u << j))
            &&  ops [j].m.outcome != LIN_OUT_UNKNOWN && ops [j].complete < ops [i].invoke)
                blocked = true;
        lin_kv_state_t next;
        if (!blocked && lin_kv_step (state, &ops [i].m, &next)
        &&  s_bf_search (ops, n, used | (1u << i), &next))
            return true;
    }
    return false;
}

START_TEST (test_against_brute_force)
{
    static const char *vals [] = { "a", "b", "c" };
    size_t verdicts [2] = { 0, 0 };
    s_rng = 0x9e3779b97f4a7c15ull;
    for (int round = 0; round < 4000; round++) {
        size_t n = 1 + s_rand (BF_MAX);
        s_bf_op_t ops [BF_MAX];
        lin_history_t *h = lin_history_new ();
        for (size_t i = 0; i < n; i++) {
            lin_op_t op;
            memset (&op, 0, sizeof op);
            op.client = (uint32_t) i;
            op.key = (uint8_t *) "k";
            op.key_len = 1;
            op.invoke = s_rand (16);
            bool unknown = s_rand (100) < 15;
            op.complete = unknown ? INF : op.invoke + s_rand (6);
            op.outcome = unknown ? LIN_OUT_UNKNOWN : LIN_OUT_OK;
            uint32_t v = s_rand (3);
            op.kind = (lin_op_kind_t) s_rand (4);
            if (op.kind == LIN_OP_PUT || op.kind == LIN_OP_CAS) {
                op.value = (uint8_t *) vals [v];
                op.value_len = 1;
            }
            if (op.kind == LIN_OP_GET && !unknown && s_rand (4)) {
                op.found = true;
                op.out_value = (uint8_t *) vals [v];
                op.out_len = 1;
            }
            if (op.kind == LIN_OP_CAS) {
                op.expect_absent = s_rand (4) == 0;
                op.expect_rev = op.expect_absent ? 0 : 1 + s_rand (4);
            }
            if ((op.kind == LIN_OP_CAS || op.kind == LIN_OP_DELETE) && !unknown && s_rand (3) == 0) {
                op.outcome = LIN_OUT_FAILED;
                op.fail = LIN_FAIL_PRECONDITION;
            }
            if (!unknown && op.outcome == LIN_OUT_OK && (op.kind != LIN_OP_GET || op.found))
                op.rev = s_rand (6);
            s_add (h, &op);
            ops [i].m = (lin_kv_op_t) {
                .kind = op.kind, .outcome = op.outcome, .fail = op.fail,
                .value = op.value ? v + 1 : 0, .out = op.found ? v + 1 : 0,
                .expect_absent = op.expect_absent, .expect_rev = op.expect_rev, .rev = op.rev
            };
            ops [i].invoke = op.invoke;
            ops [i].complete = op.complete;
            ops [i].relevant = lin_kv_relevant (&ops [i].m);
        }
        lin_kv_state_t init = lin_kv_initial ();
        bool expected = s_bf_search (ops, n, 0, &init);
        lin_report_t report;
        ck_assert_int_eq (lin_check (h, NULL, &report), 0);
        if (expected != (report.result == LIN_RESULT_OK)) {
            lin_history_write (h, stdout);
            ck_abort_msg ("round %d: brute force says %s, lin_check says %s", round,
                          expected ? "linearizable" : "not", lin_result_name (report.result));
        }
        verdicts [expected]++;
        lin_report_clear (&report);
        lin_history_destroy (&h);
    }
    //  Both verdicts are well represented.
    ck_assert_uint_ge (verdicts [0], 400);
    ck_assert_uint_ge (verdicts [1], 400);
}
END_TEST

START_TEST (test_budget)
{
    lin_history_t *h = s_simulate (7, 6, 1, 400, 10);
    lin_budget_t budget = { .max_steps = 20 };
    lin_report_t report;
    ck_assert_int_eq (lin_check (h, &budget, &report), 0);
    ck_assert_int_eq (report.result, LIN_RESULT_UNKNOWN);
    ck_assert_ptr_nonnull (strstr (report.explanation, "budget"));
    ck_assert_uint_le (report.steps, 20);
    lin_report_clear (&report);
    lin_history_destroy (&h);
}
END_TEST

START_TEST (test_performance)
{
    //  8 clients x 1,000 ops over 5 keys: measured and printed, never a
    //  timed assertion (the machine is shared).
    lin_history_t *h = s_simulate (42, 8, 5, 8000, 2);
    struct timespec t0, t1;
    clock_gettime (CLOCK_MONOTONIC, &t0);
    lin_report_t report;
    lin_budget_t budget = { .max_ms = 60000 };
    ck_assert_int_eq (lin_check (h, &budget, &report), 0);
    clock_gettime (CLOCK_MONOTONIC, &t1);
    ck_assert_int_eq (report.result, LIN_RESULT_OK);
    double ms = (double) (t1.tv_sec - t0.tv_sec) * 1e3 + (double) (t1.tv_nsec - t0.tv_nsec) / 1e6;
    printf ("lin_check: %zu ops, %zu keys, %zu unknown: %" PRIu64 " steps in %.1f ms\n",
            report.ops, report.keys, report.unknown, report.steps, ms);
    lin_report_clear (&report);
    lin_history_destroy (&h);
}
END_TEST

static Suite *
s_suite (void)
{
    Suite *suite = suite_create ("lin_check");
    TCase *tc = tcase_create ("linearizable");
    tcase_add_test (tc, test_empty);
    tcase_add_test (tc, test_sequential);
    tcase_add_test (tc, test_concurrent_writes_reads);
    tcase_add_test (tc, test_unknown_took_effect);
    tcase_add_test (tc, test_unknown_no_effect);
    tcase_add_test (tc, test_cas_chain);
    tcase_add_test (tc, test_keys_independent);
    suite_add_tcase (suite, tc);
    tc = tcase_create ("violations");
    tcase_add_test (tc, test_stale_read);
    tcase_add_test (tc, test_lost_write);
    tcase_add_test (tc, test_value_never_written);
    tcase_add_test (tc, test_cas_wrong_revision);
    tcase_add_test (tc, test_double_cas);
    tcase_add_test (tc, test_revisions_not_monotonic);
    suite_add_tcase (suite, tc);
    tc = tcase_create ("model_format");
    tcase_add_test (tc, test_model_learn);
    tcase_add_test (tc, test_format_roundtrip);
    tcase_add_test (tc, test_format_errors);
    suite_add_tcase (suite, tc);
    tc = tcase_create ("random");
    tcase_set_timeout (tc, 120);
    tcase_add_test (tc, test_random_histories);
    tcase_add_test (tc, test_against_brute_force);
    tcase_add_test (tc, test_budget);
    tcase_add_test (tc, test_performance);
    suite_add_tcase (suite, tc);
    return suite;
}

int
main (void)
{
    return titan_check_run (s_suite (), false);
}
