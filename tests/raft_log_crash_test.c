/*  Crash and fault-injection tests of raft_log.

    - Torn tail: the last segment cut at every byte offset of its last three
      records (and, separately, with the cut-off bytes zero-filled): reopen
      keeps exactly the complete records, nothing acknowledged is lost and
      nothing is invented, and the log accepts appends afterwards.
    - Write and fsync faults (EIO, ENOSPC, torn writes): the call fails, the
      log is failed for good (the fsync is never retried), and a reopen
      after dropping unsynced bytes finds every acknowledged entry.
    - Crash points: a scripted run of appends (with segment rotation; those
      of an odd batch size as raft_log_write batches and one raft_log_sync),
      truncations, compactions and resets is killed at its 1st, 2nd, ...
      file operation; after dropping unsynced bytes the reopened log must
      lie between the state after the last acknowledged operation and the
      state the interrupted one was heading for.  */
#include "check_run.h"
#include <dirent.h>
#include <errno.h>

#include "titan/status.h"
#include "raft_log_testutil.h"

#define MAXI 512

static char *s_dir;

//  A file layer that models syncs without flushing: these tests make
//  their own power losses, so real flushes would only slow them down.
static raft_fio_t *
s_nosync_fio (void)
{
    raft_fio_t *fio = raft_fio_new ();
    ck_assert_ptr_nonnull (fio);
    raft_fio_set_nosync (fio, true);
    return fio;
}

static void
s_setup (void)
{
    s_dir = tu_tmpdir ("raftcrash");
}

static void
s_teardown (void)
{
    tu_rmrf (s_dir);
    free (s_dir);
}

//  Byte offset where record `index` starts in a single-segment log that
//  holds entries 1.. with `term`.
static long
s_record_offset (uint64_t index, uint64_t term)
{
    long off = 32;
    uint8_t buf [300];
    for (uint64_t i = 1; i < index; i++)
        off += 28 + tu_payload (i, term, buf);
    return off;
}

static void
s_check_torn (const uint8_t *image, size_t size, long cut, bool zero_fill,
              const char *name, uint64_t nrec, bool append_after)
{
    char dir [600], path [700];
    snprintf (dir, sizeof dir, "%s/cut", s_dir);
    tu_rmrf (dir);
    ck_assert_int_eq (mkdir (dir, 0755), 0);
    tu_path (path, sizeof path, dir, name);
    uint8_t *copy = malloc (size);
    memcpy (copy, image, size);
    if (zero_fill)
        memset (copy + cut, 0, size - (size_t) cut);
    tu_spit (path, copy, zero_fill ? size : (size_t) cut);
    free (copy);

    //  Complete records inside the cut.
    uint64_t complete = 0;
    while (complete < nrec && s_record_offset (complete + 2, 1) <= cut)
        complete++;
    raft_fio_t *fio = s_nosync_fio ();
    raft_log_t *log = tu_open (dir, 1 << 20, fio);
    ck_assert_msg (raft_log_last_index (log) == complete,
                   "cut at %ld (zero %d): last %llu, expected %llu", cut,
                   zero_fill, (unsigned long long) raft_log_last_index (log),
                   (unsigned long long) complete);
    raft_log_recovery_t info;
    raft_log_recovery_info (log, &info);
    long end = s_record_offset (complete + 1, 1);
    ck_assert_uint_eq (info.torn_bytes, (zero_fill ? (long) size : cut) - end);
    ck_assert_int_eq (tu_file_size (path), end);
    uint64_t terms [64];
    for (int i = 0; i < 64; i++)
        terms [i] = 1;
    if (complete)
        tu_verify (log, complete > 3 ? complete - 3 : 1, complete, terms);
    if (append_after) {
        tu_append (log, complete + 1, complete + 2, 2, 2);
        terms [complete + 1] = terms [complete + 2] = 2;
        raft_log_destroy (&log);
        log = tu_open (dir, 1 << 20, fio);
        ck_assert_uint_eq (raft_log_last_index (log), complete + 2);
        tu_verify (log, 1, complete + 2, terms);
    }
    raft_log_destroy (&log);
    raft_fio_destroy (&fio);
}

START_TEST (test_torn_tail_every_offset)
{
    const uint64_t nrec = 30;
    raft_log_t *log = tu_open (s_dir, 1 << 20, NULL);
    tu_append (log, 1, nrec, 1, 5);
    raft_log_destroy (&log);
    char names [4][32], path [600];
    ck_assert_int_eq (tu_segments (s_dir, names, 4), 1);
    size_t size;
    uint8_t *image = tu_slurp (tu_path (path, sizeof path, s_dir, names [0]), &size);
    ck_assert_int_eq ((long) size, s_record_offset (nrec + 1, 1));

    long from = s_record_offset (nrec - 2, 1);
    int cases = 0;
    for (long cut = from; cut < (long) size; cut++) {
        s_check_torn (image, size, cut, false, names [0], nrec, cut % 37 == 0);
        s_check_torn (image, size, cut, true, names [0], nrec, cut % 41 == 0);
        cases += 2;
    }
    ck_assert_int_gt (cases, 100);
    free (image);
}
END_TEST

START_TEST (test_torn_new_segment_header)
{
    //  A crash while a segment was being created leaves a short file with
    //  no valid header: it is removed, the log is intact.
    raft_log_t *log = tu_open (s_dir, 2048, NULL);
    tu_append (log, 1, 40, 1, 4);
    raft_log_destroy (&log);
    char path [600];
    snprintf (path, sizeof path, "%s/%020llu.seg", s_dir, 41ull);
    tu_spit (path, (const uint8_t *) "TKVRLOG1\1\0", 10);
    log = tu_open (s_dir, 2048, NULL);
    ck_assert_uint_eq (raft_log_last_index (log), 40);
    ck_assert_int_eq (tu_file_size (path), -1);
    tu_append (log, 41, 60, 2, 4);
    raft_log_destroy (&log);
}
END_TEST

//  A fault on the `kind` operation during an append of 51..60 on top of
//  50 acknowledged entries.
static void
s_fault_during_append (unsigned kind, int err, bool torn)
{
    raft_fio_t *fio = s_nosync_fio ();
    raft_log_t *log = tu_open (s_dir, 4096, fio);
    tu_append (log, 1, 50, 1, 7);
    raft_fio_fail (fio, kind, 1, err, torn, false);

    uint8_t data [300];
    raft_log_entry_t batch [10];
    for (int i = 0; i < 10; i++) {
        uint32_t size = tu_payload (51 + i, 2, data);
        batch [i] = (raft_log_entry_t) { 51 + i, 2, 0, data, size };
    }
    ck_assert_int_eq (raft_log_append (log, batch, 10), -err);
    ck_assert (raft_fio_fired (fio));
    ck_assert_ptr_nonnull (strstr (raft_log_errmsg (log), s_dir));

    //  Failed for good: every call returns the same status and does no
    //  further I/O (in particular no second fsync).
    unsigned ops = raft_fio_count (fio, RAFT_FIO_ALL);
    ck_assert_int_eq (raft_log_append (log, batch, 10), -err);
    ck_assert_int_eq (raft_log_truncate_suffix (log, 40), -err);
    ck_assert_int_eq (raft_log_compact_prefix (log, 10), -err);
    uint64_t term;
    ck_assert_int_eq (raft_log_term (log, 10, &term), -err);
    raft_log_entry_t *entries;
    size_t count;
    ck_assert_int_eq (raft_log_entries (log, 1, 2, 100, &entries, &count), -err);
    ck_assert_uint_eq (raft_fio_count (fio, RAFT_FIO_ALL), ops);
    raft_log_destroy (&log);

    //  Power loss, then recovery: the 50 acknowledged entries are there.
    ck_assert_int_eq (raft_fio_drop_unsynced (fio), 0);
    raft_fio_destroy (&fio);
    log = tu_open (s_dir, 4096, NULL);
    ck_assert_uint_eq (raft_log_last_index (log), 50);
    uint64_t terms [64];
    for (int i = 0; i < 64; i++)
        terms [i] = i <= 50 ? 1 : 2;
    tu_verify (log, 1, 50, terms);
    tu_append (log, 51, 60, 2, 10);
    tu_verify (log, 1, 60, terms);
    raft_log_destroy (&log);
}

START_TEST (test_write_eio)
{
    s_fault_during_append (RAFT_FIO_WRITE, EIO, false);
}
END_TEST

START_TEST (test_write_enospc_torn)
{
    s_fault_during_append (RAFT_FIO_WRITE, ENOSPC, true);
}
END_TEST

START_TEST (test_fsync_eio)
{
    s_fault_during_append (RAFT_FIO_SYNC, EIO, false);
}
END_TEST

START_TEST (test_fsync_fail_no_drop)
{
    //  The fsync failed but the bytes reached the disk anyway: the entries
    //  may come back (they were written by us, never acknowledged), and
    //  they are intact.
    raft_fio_t *fio = raft_fio_new ();
    raft_log_t *log = tu_open (s_dir, 4096, fio);
    tu_append (log, 1, 20, 1, 4);
    raft_fio_fail (fio, RAFT_FIO_SYNC, 1, EIO, false, false);
    uint8_t data [300];
    uint32_t size = tu_payload (21, 1, data);
    raft_log_entry_t e = { 21, 1, 21 % 3, data, size };
    ck_assert_int_eq (raft_log_append (log, &e, 1), -EIO);
    raft_log_destroy (&log);
    raft_fio_destroy (&fio);
    log = tu_open (s_dir, 4096, NULL);
    uint64_t last = raft_log_last_index (log);
    ck_assert (last == 20 || last == 21);
    uint64_t terms [32];
    for (int i = 0; i < 32; i++)
        terms [i] = 1;
    tu_verify (log, 1, last, terms);
    raft_log_destroy (&log);
}
END_TEST

//  --------------------------------------------------------------------------
//  Crash points over a scripted workload

typedef struct {
    uint64_t first, last, prev_term;
    uint64_t terms [MAXI];
} s_model_t;

typedef enum { OP_APPEND, OP_TRUNCATE, OP_COMPACT, OP_RESET } s_op_kind_t;

typedef struct {
    s_op_kind_t kind;
    uint64_t a, b, term;
    size_t batch;
} s_op_t;

static const s_op_t s_script [] = {
    { OP_APPEND,   1,  40, 1, 8 },
    { OP_APPEND,  41,  60, 2, 1 },
    { OP_TRUNCATE, 35,  0, 0, 0 },
    { OP_APPEND,  35,  70, 3, 16 },
    { OP_COMPACT, 30,   0, 0, 0 },
    { OP_APPEND,  71,  90, 3, 64 },
    { OP_APPEND,  80,  95, 4, 4 },     /* overlap: conflict truncation */
    { OP_RESET,  100,   0, 4, 0 },     /* no match: discard everything */
    { OP_APPEND, 101, 130, 4, 5 },
    { OP_RESET,  110,   0, 4, 0 },     /* match: keeps 111..130 */
    { OP_COMPACT, 130,  0, 0, 0 },     /* everything */
    { OP_APPEND, 131, 140, 5, 3 },
};
#define SCRIPT_LEN (sizeof s_script / sizeof s_script [0])

static void
s_model_apply (s_model_t *m, const s_op_t *op)
{
    switch (op->kind) {
        case OP_APPEND: {
            //  Entries already held with the same term are kept as they
            //  are; the log is cut at the first conflict.
            uint64_t i = op->a;
            while (i <= op->b && i <= m->last && m->terms [i] == op->term)
                i++;
            if (i > op->b)
                break;
            for (; i <= op->b; i++)
                m->terms [i] = op->term;
            m->last = op->b;
            break;
        }
        case OP_TRUNCATE:
            m->last = op->a - 1;
            break;
        case OP_COMPACT:
            m->prev_term = m->terms [op->a];
            m->first = op->a + 1;
            break;
        case OP_RESET:
            if (op->a >= m->first - 1 && op->a <= m->last
            &&  (op->a == m->first - 1 ? m->prev_term : m->terms [op->a]) == op->term) {
                m->prev_term = op->term;
                m->first = op->a + 1;
            }
            else {
                m->first = op->a + 1;
                m->last = op->a;
                m->prev_term = op->term;
            }
            break;
    }
}

static int
s_log_apply (raft_log_t *log, const s_op_t *op)
{
    switch (op->kind) {
        case OP_APPEND: {
            //  An odd batch size writes every batch without a sync and
            //  syncs once at the end (the raft module's group commit); the
            //  op is acknowledged only when that sync returned.
            int (*put) (raft_log_t *, const raft_log_entry_t *, size_t) =
                op->batch % 2 ? raft_log_write : raft_log_append;
            static uint8_t bufs [64][300];
            raft_log_entry_t entries [64];
            uint64_t i = op->a;
            while (i <= op->b) {
                size_t n = 0;
                for (; n < op->batch && i <= op->b; n++, i++) {
                    uint32_t size = tu_payload (i, op->term, bufs [n]);
                    entries [n] = (raft_log_entry_t) {
                        i, op->term, (uint8_t) (i % 3), bufs [n], size
                    };
                }
                int rc = put (log, entries, n);
                if (rc)
                    return rc;
            }
            return raft_log_sync (log);
        }
        case OP_TRUNCATE:
            return raft_log_truncate_suffix (log, op->a);
        case OP_COMPACT:
            return raft_log_compact_prefix (log, op->a);
        case OP_RESET:
            return raft_log_reset (log, op->a, op->term);
    }
    return -EINVAL;
}

static uint64_t
s_model_term (const s_model_t *m, uint64_t i, bool *known)
{
    *known = true;
    if (i == m->first - 1)
        return m->prev_term;
    if (i >= m->first && i <= m->last)
        return m->terms [i];
    *known = false;
    return 0;
}

//  Checks the recovered log against the acknowledged model `a` and the
//  model `b` of the interrupted operation.
static void
s_check_between (raft_log_t *log, const s_model_t *a, const s_model_t *b,
                 unsigned point, const char *label)
{
    uint64_t first = raft_log_first_index (log), last = raft_log_last_index (log);
    ck_assert_msg (first == a->first || first == b->first,
                   "%s point %u: first %llu not in {%llu, %llu}", label, point,
                   (unsigned long long) first, (unsigned long long) a->first,
                   (unsigned long long) b->first);
    //  Every entry held (and the term before the first) is one that either
    //  state has at that index: nothing invented.
    for (uint64_t i = first - 1; i <= last; i++) {
        if (i == 0)
            continue;
        uint64_t term;
        ck_assert_int_eq (raft_log_term (log, i, &term), 0);
        bool ka, kb;
        uint64_t ta = s_model_term (a, i, &ka), tb = s_model_term (b, i, &kb);
        ck_assert_msg ((ka && ta == term) || (kb && tb == term),
                       "%s point %u: index %llu term %llu is in neither state",
                       label, point, (unsigned long long) i,
                       (unsigned long long) term);
        if (i >= first) {
            raft_log_entry_t *e;
            size_t n;
            ck_assert_int_eq (raft_log_entries (log, i, i + 1, 0, &e, &n), 0);
            tu_check_entry (e, i, term);
            free (e);
        }
    }
    //  Every entry both states agree on is still there: nothing lost.
    uint64_t lo = a->first > b->first ? a->first : b->first;
    uint64_t hi = a->last < b->last ? a->last : b->last;
    for (uint64_t i = lo; i <= hi; i++) {
        if (a->terms [i] != b->terms [i])
            break;
        ck_assert_msg (i >= first && i <= last,
                       "%s point %u: acknowledged entry %llu lost (log [%llu, %llu])",
                       label, point, (unsigned long long) i,
                       (unsigned long long) first,
                       (unsigned long long) last);
    }
}

//  Runs `script` on a fresh log in `dir` with a crash (sticky fault, then
//  unsynced bytes and directory changes dropped) at file operation
//  `point`, then checks the recovered log.  Returns true if the crash
//  happened (false: the script finished first, and was checked whole).
static bool
s_crash_run (const char *dir, const s_op_t *script, size_t len,
             unsigned point, uint64_t seg_size, const char *label)
{
    raft_fio_t *fio = s_nosync_fio ();
    raft_fio_fail (fio, RAFT_FIO_ALL, point, point % 3 ? EIO : ENOSPC,
                   point % 2, true);
    raft_log_options_t options = { seg_size, 0, fio };
    raft_log_t *log = NULL;
    char err [512];
    int rc = raft_log_open (dir, &options, &log, err, sizeof err);
    static s_model_t a, b;
    memset (&a, 0, sizeof a);
    a.first = 1;
    b = a;
    size_t step = 0;
    bool verbose = getenv ("RAFTLOG_VERBOSE") != NULL;
    if (rc == 0) {
        for (; step < len; step++) {
            if (verbose)
                printf ("%s: op %zu kind %d a %llu b %llu term %llu batch %zu"
                        " (fio ops so far %u)\n", label, step, script [step].kind,
                        (unsigned long long) script [step].a,
                        (unsigned long long) script [step].b,
                        (unsigned long long) script [step].term,
                        script [step].batch, raft_fio_count (fio, RAFT_FIO_ALL));
            b = a;
            s_model_apply (&b, &script [step]);
            rc = s_log_apply (log, &script [step]);
            if (rc)
                break;
            a = b;
        }
    }
    raft_log_destroy (&log);
    bool fired = raft_fio_fired (fio);
    ck_assert_int_eq (raft_fio_drop_unsynced (fio), 0);
    raft_fio_destroy (&fio);
    if (!fired) {
        ck_assert_msg (rc == 0, "%s: step %zu failed without a fault: %d",
                       label, step, rc);
        ck_assert_uint_eq (step, len);
        b = a;
    }
    else
        ck_assert_int_ne (rc, 0);
    fio = s_nosync_fio ();
    log = tu_open (dir, seg_size, fio);
    s_check_between (log, &a, &b, point, label);
    //  The recovered log keeps working.
    uint64_t next = raft_log_last_index (log) + 1;
    uint64_t term = raft_log_last_term (log) + 1;
    uint8_t data [300];
    uint32_t size = tu_payload (next, term, data);
    raft_log_entry_t e = { next, term, (uint8_t) (next % 3), data, size };
    ck_assert_int_eq (raft_log_append (log, &e, 1), 0);
    raft_log_destroy (&log);
    raft_fio_destroy (&fio);
    tu_rmrf (dir);
    return fired;
}

START_TEST (test_crash_points)
{
    unsigned point, crashed = 0;
    for (point = 1;; point++) {
        char dir [600];
        snprintf (dir, sizeof dir, "%s/p%u", s_dir, point);
        if (!s_crash_run (dir, s_script, SCRIPT_LEN, point, 2048, "script"))
            break;
        crashed++;
    }
    //  The script performs well over a hundred file operations.
    ck_assert_uint_gt (crashed, 100);
}
END_TEST

//  splitmix64: the seeded generator of the random scripts.
static uint64_t
s_rand (uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

//  Generates a valid random script of up to `max` operations (indexes stay
//  below MAXI).  Returns its length.
static size_t
s_gen_script (uint64_t seed, s_op_t *ops, size_t max)
{
    uint64_t st = seed;
    static s_model_t m;
    memset (&m, 0, sizeof m);
    m.first = 1;
    uint64_t term = 1;
    size_t n = 0;
    while (n < max) {
        s_op_t op = { OP_APPEND, 0, 0, 0, 0 };
        unsigned r = (unsigned) (s_rand (&st) % 10);
        if (s_rand (&st) % 4 == 0)
            term++;
        if (r < 5 || m.last < m.first) {
            op.kind = OP_APPEND;
            op.a = m.last + 1;
            if (m.last >= m.first && s_rand (&st) % 3 == 0)
                op.a = m.first + s_rand (&st) % (m.last - m.first + 1);
            op.b = op.a + s_rand (&st) % 40;
            op.term = term;
            op.batch = 1 + (size_t) (s_rand (&st) % 64);
            if (op.b >= MAXI - 1)
                break;
        }
        else
        if (r == 5) {
            op.kind = OP_TRUNCATE;
            op.a = m.first + s_rand (&st) % (m.last - m.first + 2);
        }
        else
        if (r < 8) {
            op.kind = OP_COMPACT;
            op.a = m.first + s_rand (&st) % (m.last - m.first + 1);
        }
        else {
            op.kind = OP_RESET;
            if (s_rand (&st) % 2) {
                //  Matching snapshot: an index the log holds.
                op.a = m.first - 1 + s_rand (&st) % (m.last - m.first + 2);
                op.term = op.a == m.first - 1 ? m.prev_term : m.terms [op.a];
            }
            else {
                //  A snapshot from a newer term: inside the log or past it.
                op.a = s_rand (&st) % 2
                     ? m.first - 1 + s_rand (&st) % (m.last - m.first + 2)
                     : m.last + s_rand (&st) % 30;
                op.term = ++term;
            }
            if (op.a >= MAXI - 50)
                break;
        }
        s_model_apply (&m, &op);
        ops [n++] = op;
    }
    return n;
}

START_TEST (test_random_crashes)
{
    //  RAFTLOG_SEEDS / RAFTLOG_SEED: more seeds for `make soak-raftlog`, or
    //  replay one.
    const char *env_seeds = getenv ("RAFTLOG_SEEDS");
    const char *env_seed = getenv ("RAFTLOG_SEED");
    uint64_t first = env_seed ? strtoull (env_seed, NULL, 10) : 1;
    uint64_t count = env_seed ? 1 : env_seeds ? strtoull (env_seeds, NULL, 10) : 40;
    static const uint64_t seg_sizes [] = { 700, 2048, 8192 };
    unsigned crashed = 0;
    for (uint64_t seed = first; seed < first + count; seed++) {
        s_op_t ops [24];
        size_t len = s_gen_script (seed, ops, 24);
        uint64_t st = seed ^ 0xC0FFEEull;
        unsigned point = 1 + (unsigned) (s_rand (&st) % 200);
        char dir [600], label [64];
        snprintf (dir, sizeof dir, "%s/s%llu", s_dir, (unsigned long long) seed);
        snprintf (label, sizeof label, "RAFTLOG_SEED=%llu", (unsigned long long) seed);
        if (s_crash_run (dir, ops, len, point, seg_sizes [seed % 3], label))
            crashed++;
    }
    if (count >= 20)
        ck_assert_uint_gt (crashed, count / 4);
}
END_TEST

static Suite *
s_suite (void)
{
    Suite *suite = suite_create ("raft_log_crash");
    TCase *tc = tcase_create ("crash");
    tcase_add_checked_fixture (tc, s_setup, s_teardown);
    tcase_set_timeout (tc, 120);
    tcase_add_test (tc, test_torn_tail_every_offset);
    tcase_add_test (tc, test_torn_new_segment_header);
    tcase_add_test (tc, test_write_eio);
    tcase_add_test (tc, test_write_enospc_torn);
    tcase_add_test (tc, test_fsync_eio);
    tcase_add_test (tc, test_fsync_fail_no_drop);
    tcase_add_test (tc, test_crash_points);
    tcase_add_test (tc, test_random_crashes);
    suite_add_tcase (suite, tc);
    return suite;
}

int
main (void)
{
    return titan_check_run (s_suite (), false);
}
