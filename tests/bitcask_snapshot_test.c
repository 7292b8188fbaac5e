/*  Tests of Bitcask snapshots (modules/bitcask/bc_snapshot.c): export
    while a writer and a merge run, restore into a fresh directory with
    every key, value, revision and the applied index compared; a flipped
    byte in the data or the manifest, a truncated or gapped stream, each
    rejected with the old state intact; a crash (fault layer) at each step
    of the commit and an fsync failure while writing, each leaving the
    whole old or the whole new state; an empty shard and two snapshots
    open at once.  Each test uses its own directory.  */
#include <check.h>
#include "check_run.h"
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bc_drop.h"
#include "bc_engine.h"
#include "bc_snapshot.h"
#include "titan/status.h"

static char s_root [256];
static char s_src [300];
static char s_dst [300];

static void
s_rmdir (const char *dir)
{
    DIR *d = opendir (dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir (d))) {
        if (strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
            continue;
        char path [600];
        snprintf (path, sizeof path, "%s/%s", dir, de->d_name);
        if (unlink (path) != 0)
            s_rmdir (path);
    }
    closedir (d);
    rmdir (dir);
}

static void
s_setup (void)
{
    snprintf (s_root, sizeof s_root, "/tmp/bitcask-snap-XXXXXX");
    ck_assert_ptr_nonnull (mkdtemp (s_root));
    snprintf (s_src, sizeof s_src, "%s/src", s_root);
    snprintf (s_dst, sizeof s_dst, "%s/dst", s_root);
}

static void
s_teardown (void)
{
    s_rmdir (s_root);
}

static bc_engine_t *
s_open (const char *dir, const bc_options_t *opt)
{
    bc_engine_t *e = NULL;
    char err [256] = "";
    int rc = bc_engine_open (dir, opt, &e, err, sizeof err);
    ck_assert_msg (rc == 0, "open %s failed: %d %s", dir, rc, err);
    return e;
}

static void
s_put (bc_engine_t *e, const char *key, const char *value)
{
    char err [256];
    int rc = bc_engine_put (e, key, strlen (key), value, strlen (value), 0,
                            NULL, err, sizeof err);
    ck_assert_msg (rc == 0, "put %s: %d %s", key, rc, err);
}

/* Asserts key has value (NULL: absent) and, if rev, that revision. */
static void
s_expect (bc_engine_t *e, const char *key, const char *value, uint64_t rev)
{
    uint8_t *v;
    size_t vlen;
    uint64_t got;
    char err [256];
    int rc = bc_engine_get (e, key, strlen (key), &v, &vlen, &got, err,
                            sizeof err);
    if (!value) {
        ck_assert_msg (rc == TITAN_ENOTFOUND, "%s: expected absent, rc %d",
                       key, rc);
        return;
    }
    ck_assert_msg (rc == 0, "get %s: %d %s", key, rc, err);
    ck_assert_msg (vlen == strlen (value) && memcmp (v, value, vlen) == 0,
                   "%s: value %.*s, expected %s", key, (int) vlen, v, value);
    if (rev)
        ck_assert_msg (got == rev, "%s: revision %llu, expected %llu", key,
                       (unsigned long long) got, (unsigned long long) rev);
    free (v);
}

/* Streams the whole snapshot into the restore in chunks of `chunk`,
   flipping one bit of the stream at `flip` (UINT64_MAX: none).  Returns
   the first write error. */
static int
s_transfer (bc_snapshot_t *snap, bc_restore_t *r, size_t chunk,
            uint64_t flip)
{
    bc_snapshot_info_t info;
    bc_snapshot_info (snap, &info);
    uint8_t *buf = malloc (chunk);
    ck_assert_ptr_nonnull (buf);
    uint64_t off = 0;
    int rc = 0;
    char err [256];
    while (off < info.total_bytes && rc == 0) {
        size_t n;
        ck_assert_int_eq (bc_snapshot_read (snap, off, buf, chunk, &n), 0);
        ck_assert_uint_gt (n, 0);
        if (flip >= off && flip < off + n)
            buf [flip - off] ^= 0x10;
        rc = bc_restore_write (r, off, buf, n, err, sizeof err);
        /* a re-sent chunk is harmless */
        if (rc == 0)
            ck_assert_int_eq (bc_restore_write (r, off, buf, n, err,
                                                sizeof err), 0);
        off += n;
    }
    free (buf);
    return rc;
}

/* ---------------------------------------------------------- writer */

#define BG_KEYS 40
#define BG_MAX 200000

typedef struct {
    bc_engine_t *engine;
    volatile int stop;
    int n;
    uint64_t revs [BG_MAX];
    int errors;
} s_writer_t;

static void *
s_writer (void *arg)
{
    s_writer_t *w = arg;
    char key [32], val [32], err [256];
    while (!w->stop && w->n < BG_MAX) {
        int i = w->n;
        snprintf (key, sizeof key, "bg-%02d", i % BG_KEYS);
        snprintf (val, sizeof val, "v%d", i);
        uint64_t rev = 0;
        int rc = i % 7 == 6
               ? bc_engine_delete (w->engine, key, strlen (key), 0, &rev, err,
                                   sizeof err)
               : bc_engine_put (w->engine, key, strlen (key), val,
                                strlen (val), 0, &rev, err, sizeof err);
        if (rc && rc != TITAN_ENOTFOUND)
            w->errors++;
        w->revs [i] = rc == TITAN_ENOTFOUND ? 0 : rev;
        w->n = i + 1;
    }
    return NULL;
}

/* Rotates and merges in a loop (the snapshot must serialise with it). */
typedef struct {
    bc_engine_t *engine;
    volatile int stop;
    int merges;
    int errors;
} s_merger_t;

static void *
s_merger (void *arg)
{
    s_merger_t *m = arg;
    char err [256];
    while (!m->stop) {
        if (bc_engine_rotate (m->engine, err, sizeof err)
        ||  bc_engine_merge (m->engine, NULL, NULL, err, sizeof err))
            m->errors++;
        else
            m->merges++;
        usleep (2000);
    }
    return NULL;
}

/* The state of "fg-*" keys written before the snapshot. */
#define FG_KEYS 600

typedef struct {
    char value [32];
    uint64_t rev;
} s_fg_t;

static void
s_fill (bc_engine_t *e, s_fg_t *fg, uint64_t *applied)
{
    char err [256];
    uint64_t rev = 1;
    for (int round = 0; round < 3; round++)
        for (int b = 0; b < FG_KEYS; b += 50) {
            bc_op_t ops [50];
            char keys [50][16];
            memset (ops, 0, sizeof ops);
            for (int j = 0; j < 50; j++) {
                int k = b + j;
                snprintf (keys [j], sizeof keys [j], "fg-%03d", k);
                ops [j].key = keys [j];
                ops [j].key_len = strlen (keys [j]);
                if (round == 2 && k % 5 == 0) {
                    ops [j].kind = BC_OP_DELETE;
                    fg [k].value [0] = 0;
                }
                else {
                    ops [j].kind = BC_OP_PUT;
                    snprintf (fg [k].value, sizeof fg [k].value, "r%d-%d",
                              round, k);
                    ops [j].value = fg [k].value;
                    ops [j].value_len = strlen (fg [k].value);
                }
                fg [k].rev = rev + (uint64_t) j;
            }
            *applied += 1;
            int rc = bc_engine_apply_batch (e, ops, 50, rev, *applied, err,
                                            sizeof err);
            ck_assert_msg (rc == 0, "apply: %d %s", rc, err);
            rev += 50;
        }
}

/* Snapshot while a writer and a merging thread run, merge again (which
   unlinks the snapshot's files) while it is open, restore elsewhere and
   compare everything. */
START_TEST (test_export_restore_while_writing_merging)
{
    bc_options_t opt;
    bc_options_init (&opt);
    opt.max_file_bytes = 16384;
    opt.sync = false;
    bc_engine_t *e = s_open (s_src, &opt);
    static s_fg_t fg [FG_KEYS];
    uint64_t applied = 0;
    s_fill (e, fg, &applied);
    static s_writer_t w;
    memset (&w, 0, sizeof w);
    w.engine = e;
    pthread_t th;
    pthread_create (&th, NULL, s_writer, &w);
    s_merger_t mg = { e, 0, 0, 0 };
    pthread_t mth;
    pthread_create (&mth, NULL, s_merger, &mg);
    while (w.n < 300 || mg.merges < 2)
        usleep (1000);
    bc_snapshot_t *snap;
    char err [256];
    int rc = bc_snapshot_begin (e, &snap, err, sizeof err);
    ck_assert_msg (rc == 0, "begin: %d %s", rc, err);
    mg.stop = 1;
    pthread_join (mth, NULL);
    ck_assert_int_eq (mg.errors, 0);
    bc_snapshot_info_t info;
    bc_snapshot_info (snap, &info);
    ck_assert_uint_eq (info.applied_index, applied);
    ck_assert_uint_ge (info.last_revision, (uint64_t) 3 * FG_KEYS);
    int at_begin = w.n;
    /* Change everything while the snapshot is open, merge twice. */
    for (int k = 0; k < FG_KEYS; k += 3) {
        char key [16];
        snprintf (key, sizeof key, "fg-%03d", k);
        s_put (e, key, "after");
    }
    for (int m = 0; m < 2; m++) {
        ck_assert_int_eq (bc_engine_rotate (e, err, sizeof err), 0);
        rc = bc_engine_merge (e, NULL, NULL, err, sizeof err);
        ck_assert_msg (rc == 0, "merge: %d %s", rc, err);
    }
    while (w.n < at_begin + 300)
        usleep (1000);
    bc_restore_t *r;
    rc = bc_restore_begin (s_dst, NULL, &r, err, sizeof err);
    ck_assert_msg (rc == 0, "restore begin: %d %s", rc, err);
    ck_assert_int_eq (s_transfer (snap, r, 7777, UINT64_MAX), 0);
    bc_snapshot_info_t rinfo;
    rc = bc_restore_commit (r, &rinfo, err, sizeof err);
    ck_assert_msg (rc == 0, "commit: %d %s", rc, err);
    bc_restore_abort (&r);
    ck_assert_uint_eq (rinfo.applied_index, info.applied_index);
    ck_assert_uint_eq (rinfo.last_revision, info.last_revision);
    bc_snapshot_end (&snap);
    w.stop = 1;
    pthread_join (th, NULL);
    ck_assert_int_eq (w.errors, 0);

    bc_engine_t *d = s_open (s_dst, &opt);
    bc_stats_t st;
    bc_engine_stats (d, &st);
    ck_assert_uint_eq (st.applied_index, info.applied_index);
    ck_assert_uint_eq (st.last_revision, info.last_revision);
    uint64_t keys = 0;
    for (int k = 0; k < FG_KEYS; k++) {
        char key [16];
        snprintf (key, sizeof key, "fg-%03d", k);
        s_expect (d, key, fg [k].value [0] ? fg [k].value : NULL, fg [k].rev);
        keys += fg [k].value [0] != 0;
    }
    /* Each bg key holds its last write at or below the snapshot's
       revision: the cut is exactly at last_revision. */
    for (int b = 0; b < BG_KEYS; b++) {
        int last = -1;
        for (int i = b; i < w.n; i += BG_KEYS)
            if (w.revs [i] && w.revs [i] <= info.last_revision)
                last = i;
        char key [16], val [32];
        snprintf (key, sizeof key, "bg-%02d", b);
        snprintf (val, sizeof val, "v%d", last);
        bool present = last >= 0 && last % 7 != 6;
        s_expect (d, key, present ? val : NULL, present ? w.revs [last] : 0);
        keys += present;
    }
    ck_assert_uint_eq (st.keys, keys);
    /* The restored shard takes writes, and they survive a reopen. */
    s_put (d, "new-key", "new-value");
    bc_engine_destroy (&d);
    d = s_open (s_dst, &opt);
    s_expect (d, "new-key", "new-value", info.last_revision + 1);
    bc_engine_destroy (&d);
    bc_engine_destroy (&e);
    /* No leftovers beside the shard directory. */
    char path [400];
    snprintf (path, sizeof path, "%s.restore", s_dst);
    ck_assert_int_ne (access (path, F_OK), 0);
    snprintf (path, sizeof path, "%s.old", s_dst);
    ck_assert_int_ne (access (path, F_OK), 0);
}
END_TEST

/* Builds the source (a few keys, applied index 7) and an old destination
   state; returns an open snapshot of the source. */
static bc_snapshot_t *
s_prepare (const bc_options_t *opt)
{
    bc_engine_t *e = s_open (s_src, opt);
    char err [256], key [16];
    bc_op_t op;
    memset (&op, 0, sizeof op);
    op.kind = BC_OP_PUT;
    op.key = "applied";
    op.key_len = 7;
    op.value = "yes";
    op.value_len = 3;
    ck_assert_int_eq (bc_engine_apply_batch (e, &op, 1, 100, 7, err,
                                             sizeof err), 0);
    for (int i = 0; i < 200; i++) {
        snprintf (key, sizeof key, "new-%03d", i);
        s_put (e, key, key);
    }
    bc_snapshot_t *snap;
    int rc = bc_snapshot_begin (e, &snap, err, sizeof err);
    ck_assert_msg (rc == 0, "begin: %d %s", rc, err);
    bc_engine_destroy (&e);        /* the snapshot outlives its engine */
    bc_engine_t *d = s_open (s_dst, opt);
    for (int i = 0; i < 100; i++) {
        snprintf (key, sizeof key, "old-%03d", i);
        s_put (d, key, key);
    }
    bc_engine_destroy (&d);
    return snap;
}

static void
s_check_state (const bc_options_t *opt, bool new_state)
{
    bc_engine_t *d = s_open (s_dst, opt);
    char key [16];
    for (int i = 0; i < 200; i++) {
        snprintf (key, sizeof key, "new-%03d", i);
        s_expect (d, key, new_state ? key : NULL, 0);
        snprintf (key, sizeof key, "old-%03d", i);
        s_expect (d, key, !new_state && i < 100 ? key : NULL, 0);
    }
    s_expect (d, "applied", new_state ? "yes" : NULL, new_state ? 100 : 0);
    bc_stats_t st;
    bc_engine_stats (d, &st);
    ck_assert_uint_eq (st.applied_index, new_state ? 7 : 0);
    ck_assert_uint_eq (st.keys, new_state ? 201 : 100);
    bc_engine_destroy (&d);
    char path [400], err [256];
    snprintf (path, sizeof path, "%s.old", s_dst);
    ck_assert_int_ne (access (path, F_OK), 0);
    /* An unfinished `.restore` is left to the next restore to discard. */
    ck_assert_int_eq (bc_snapshot_recover (s_dst, NULL, true, err,
                                           sizeof err), 0);
    snprintf (path, sizeof path, "%s.restore", s_dst);
    ck_assert_int_ne (access (path, F_OK), 0);
}

/* A flipped bit anywhere is rejected; the old state stays. */
START_TEST (test_corruption_rejected)
{
    bc_options_t opt;
    bc_options_init (&opt);
    opt.sync = false;
    bc_snapshot_t *snap = s_prepare (&opt);
    bc_snapshot_info_t info;
    bc_snapshot_info (snap, &info);
    char err [256];
    uint64_t header = BC_SNAP_FIXED + BC_SNAP_ENTRY * info.files + 4;
    uint64_t flips [] = { 3, 14, header - 2, header + 5,
                          info.total_bytes / 2, info.total_bytes - 1 };
    for (size_t i = 0; i < sizeof flips / sizeof flips [0]; i++) {
        bc_restore_t *r;
        ck_assert_int_eq (bc_restore_begin (s_dst, NULL, &r, err, sizeof err),
                          0);
        int rc = s_transfer (snap, r, 4096, flips [i]);
        if (rc == 0)
            rc = bc_restore_commit (r, NULL, err, sizeof err);
        ck_assert_msg (rc == TITAN_ECORRUPT, "flip at %llu: rc %d %s",
                       (unsigned long long) flips [i], rc, err);
        bc_restore_abort (&r);
        s_check_state (&opt, false);
    }
    /* An incomplete stream, a gap, bytes past the end. */
    bc_restore_t *r;
    ck_assert_int_eq (bc_restore_begin (s_dst, NULL, &r, err, sizeof err), 0);
    uint8_t buf [64];
    size_t n;
    ck_assert_int_eq (bc_snapshot_read (snap, 0, buf, sizeof buf, &n), 0);
    ck_assert_int_eq (bc_restore_write (r, 0, buf, n, err, sizeof err), 0);
    ck_assert_int_eq (bc_restore_commit (r, NULL, err, sizeof err), -EINVAL);
    ck_assert_int_eq (bc_restore_write (r, n + 10, buf, n, err, sizeof err),
                      -EINVAL);
    bc_restore_abort (&r);
    ck_assert_int_eq (bc_snapshot_read (snap, info.total_bytes + 1, buf,
                                        sizeof buf, &n), -EINVAL);
    ck_assert_int_eq (bc_restore_begin (s_dst, NULL, &r, err, sizeof err), 0);
    ck_assert_int_eq (s_transfer (snap, r, 1000, UINT64_MAX), 0);
    ck_assert_int_eq (bc_restore_write (r, info.total_bytes, buf, 1, err,
                                        sizeof err), -EINVAL);
    bc_restore_abort (&r);
    s_check_state (&opt, false);
    /* And a clean stream then goes through. */
    ck_assert_int_eq (bc_restore_begin (s_dst, NULL, &r, err, sizeof err), 0);
    ck_assert_int_eq (s_transfer (snap, r, 1 << 20, UINT64_MAX), 0);
    ck_assert_int_eq (bc_restore_commit (r, NULL, err, sizeof err), 0);
    bc_restore_abort (&r);
    s_check_state (&opt, true);
    bc_snapshot_end (&snap);
}
END_TEST

/* A crash after each step of the commit, or an fsync failure while the
   files are written, leaves the whole old or the whole new state. */
START_TEST (test_restore_crash_points)
{
    for (int step = 1; step <= 8; step++) {
        bc_options_t opt;
        bc_options_init (&opt);
        bc_snapshot_t *snap = s_prepare (&opt);
        bc_fault_t *fault = bc_fault_new ();
        char err [256];
        bc_restore_t *r;
        ck_assert_int_eq (bc_restore_begin (s_dst, fault, &r, err, sizeof err),
                          0);
        if (step == 5)
            bc_fault_fail_sync (fault, 2, EIO);
        if (step <= 4)
            bc_restore_test_stop (r, step);
        int rc = s_transfer (snap, r, 3000, UINT64_MAX);
        ck_assert_int_eq (rc, step == 5 ? -EIO : 0);
        if (rc == 0) {
            if (step == 6)        /* the marker's write fails */
                bc_fault_fail_write (fault, 1, ENOSPC);
            if (step == 7)        /* the marker's fsync fails */
                bc_fault_fail_sync (fault, 2, EIO);
            if (step == 8)        /* the new active file's fsync fails */
                bc_fault_fail_sync (fault, 1, EIO);
            rc = bc_restore_commit (r, NULL, err, sizeof err);
            int want = step == 6 ? -ENOSPC : step >= 7 ? -EIO : 0;
            ck_assert_msg (rc == want, "step %d: %d %s", step, rc, err);
        }
        /* The machine stops here; the restore object is dropped only
           after the next open settled the directories, as a restarted
           process would find them. */
        bc_fault_crash (fault);
        bc_fault_revive (fault);
        bool new_state = step >= 2 && step <= 4;
        s_check_state (&opt, new_state);
        bc_restore_abort (&r);
        s_check_state (&opt, new_state);
        bc_fault_destroy (&fault);
        bc_snapshot_end (&snap);
        s_teardown ();
        s_setup ();
    }
}
END_TEST

/* An empty shard exports and restores to an empty shard; two snapshots
   open at once each keep their own point in time; 5-byte chunks. */
START_TEST (test_empty_and_two_snapshots)
{
    bc_engine_t *e = s_open (s_src, NULL);
    char err [256];
    bc_snapshot_t *a, *b;
    ck_assert_int_eq (bc_snapshot_begin (e, &a, err, sizeof err), 0);
    s_put (e, "k", "v");
    ck_assert_int_eq (bc_snapshot_begin (e, &b, err, sizeof err), 0);
    bc_snapshot_info_t ia, ib;
    bc_snapshot_info (a, &ia);
    bc_snapshot_info (b, &ib);
    ck_assert_uint_eq (ia.last_revision, 0);
    ck_assert_uint_eq (ib.last_revision, 1);
    ck_assert_uint_gt (ib.total_bytes, ia.total_bytes);
    for (int i = 0; i < 2; i++) {
        bc_restore_t *r;
        ck_assert_int_eq (bc_restore_begin (s_dst, NULL, &r, err, sizeof err),
                          0);
        ck_assert_int_eq (s_transfer (i ? b : a, r, 5, UINT64_MAX), 0);
        ck_assert_int_eq (bc_restore_commit (r, NULL, err, sizeof err), 0);
        bc_restore_abort (&r);
        bc_engine_t *d = s_open (s_dst, NULL);
        s_expect (d, "k", i ? "v" : NULL, i ? 1 : 0);
        bc_stats_t st;
        bc_engine_stats (d, &st);
        ck_assert_uint_eq (st.keys, (uint64_t) i);
        ck_assert_uint_eq (st.last_revision, (uint64_t) i);
        bc_engine_destroy (&d);
    }
    bc_snapshot_end (&a);
    bc_snapshot_end (&b);
    bc_engine_destroy (&e);
}
END_TEST

static bool
s_exists_suffix (const char *dir, const char *suffix)
{
    char path [400];
    snprintf (path, sizeof path, "%s%s", dir, suffix);
    return access (path, F_OK) == 0;
}

/* bc_drop_dir: a shard whose restore stopped between its renames (the
   old state aside in `.old`, the new one complete in `.restore`) is
   dropped with nothing left that could bring either state back; a drop
   stopped after its rename leaves only `.trash`, which bc_drop_clean
   removes; dropping a missing directory is a no-op. */
START_TEST (test_drop_dir)
{
    bc_options_t opt;
    bc_options_init (&opt);
    bc_snapshot_t *snap = s_prepare (&opt);
    char err [256];
    bc_restore_t *r;
    ck_assert_int_eq (bc_restore_begin (s_dst, NULL, &r, err, sizeof err), 0);
    bc_restore_test_stop (r, 2);         /* old renamed aside, then stop */
    ck_assert_int_eq (s_transfer (snap, r, 3000, UINT64_MAX), 0);
    ck_assert_int_eq (bc_restore_commit (r, NULL, err, sizeof err), 0);
    bc_restore_abort (&r);
    bc_snapshot_end (&snap);
    ck_assert (!s_exists_suffix (s_dst, ""));
    ck_assert (s_exists_suffix (s_dst, ".old"));

    bool dropped = false;
    int rc = bc_drop_dir (s_dst, NULL, &dropped, err, sizeof err);
    ck_assert_msg (rc == 0, "drop: %d %s", rc, err);
    ck_assert (dropped);
    const char *gone [] = { "", ".old", ".restore", BC_DROP_SUFFIX };
    for (size_t i = 0; i < 4; i++)
        ck_assert_msg (!s_exists_suffix (s_dst, gone [i]), "%s%s left",
                       s_dst, gone [i]);
    bc_engine_t *d = s_open (s_dst, &opt);
    bc_stats_t st;
    bc_engine_stats (d, &st);
    ck_assert_uint_eq (st.keys, 0);
    ck_assert_uint_eq (st.applied_index, 0);
    s_put (d, "again", "v");
    bc_engine_destroy (&d);

    /* "crash" after the rename: only the trash is left */
    bc_drop_test_stop (1);
    ck_assert_int_eq (bc_drop_dir (s_dst, NULL, NULL, err, sizeof err), 0);
    ck_assert (!s_exists_suffix (s_dst, ""));
    ck_assert (s_exists_suffix (s_dst, BC_DROP_SUFFIX));
    int removed = -1;
    ck_assert_int_eq (bc_drop_clean (s_root, NULL, &removed, err, sizeof err), 0);
    ck_assert_int_eq (removed, 1);
    ck_assert (!s_exists_suffix (s_dst, BC_DROP_SUFFIX));
    d = s_open (s_dst, &opt);
    s_expect (d, "again", NULL, 0);
    bc_engine_destroy (&d);

    /* idempotent; a missing data directory is clean */
    ck_assert_int_eq (bc_drop_dir (s_dst, NULL, NULL, err, sizeof err), 0);
    ck_assert_int_eq (bc_drop_dir (s_dst, NULL, &dropped, err, sizeof err), 0);
    ck_assert (!dropped);
    char missing [400];
    snprintf (missing, sizeof missing, "%s/none", s_root);
    ck_assert_int_eq (bc_drop_clean (missing, NULL, &removed, err, sizeof err), 0);
    ck_assert_int_eq (removed, 0);
}
END_TEST

static Suite *
s_suite (void)
{
    Suite *s = suite_create ("bitcask_snapshot");
    TCase *tc = tcase_create ("snapshot");
    tcase_add_checked_fixture (tc, s_setup, s_teardown);
    tcase_set_timeout (tc, 60);
    tcase_add_test (tc, test_export_restore_while_writing_merging);
    tcase_add_test (tc, test_corruption_rejected);
    tcase_add_test (tc, test_restore_crash_points);
    tcase_add_test (tc, test_empty_and_two_snapshots);
    tcase_add_test (tc, test_drop_dir);
    suite_add_tcase (s, tc);
    return s;
}

int
main (void)
{
    return titan_check_run (s_suite (), false);
}
