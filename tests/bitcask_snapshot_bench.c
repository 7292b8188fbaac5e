/*  Benchmark of Bitcask snapshot export and restore (not part of make
    check; `make bench-bitcask-snapshot`, BITCASK_SNAP_BENCH_KEYS to change
    the size).  Loads N keys (default 1,000,000) with 100-byte values into
    a shard in apply batches of 1000 ops, then times: bc_snapshot_begin
    (seal, hints, CRCs of the manifest), streaming the snapshot in 1 MiB
    chunks into a restore of another directory (with its per-file fsyncs),
    the commit (CRC check, directory swap), and opening the restored engine
    (keydir rebuilt from hints); then checks every 1000th key and the
    applied index.  Prints one line per phase with seconds and MB/s.  */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <dirent.h>
#include <unistd.h>

#include "bc_engine.h"
#include "bc_snapshot.h"
#include "test_dir.h"

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int
s_fail (const char *what, int rc, const char *err)
{
    fprintf (stderr, "bitcask_snapshot_bench: %s failed: %d %s\n", what, rc,
             err);
    return 1;
}

int
main (void)
{
    const char *env = getenv ("BITCASK_SNAP_BENCH_KEYS");
    long n = env ? atol (env) : 1000000;
    if (n < 1000)
        n = 1000;
    if (n > 99999000)             /* keys are "key-%08ld" */
        n = 99999000;
    n -= n % 1000;
    char root [] = "/tmp/bitcask-snapbench-XXXXXX";
    if (!mkdtemp (root))
        return s_fail ("mkdtemp", -1, "");
    char src [64], dst [64];
    snprintf (src, sizeof src, "%s/src", root);
    snprintf (dst, sizeof dst, "%s/dst", root);
    char err [256] = "";
    bc_engine_t *e;
    int rc = bc_engine_open (src, NULL, &e, err, sizeof err);
    if (rc)
        return s_fail ("open", rc, err);
    enum { BATCH = 1000 };
    static bc_op_t ops [BATCH];
    static char keys [BATCH][24];
    char value [100];
    memset (value, 'v', sizeof value);
    double t0 = s_now ();
    uint64_t applied = 0;
    for (long i = 0; i < n; i += BATCH) {
        for (int j = 0; j < BATCH; j++) {
            memset (&ops [j], 0, sizeof ops [j]);
            snprintf (keys [j], sizeof keys [j], "key-%08ld", i + j);
            ops [j].kind = BC_OP_PUT;
            ops [j].key = keys [j];
            ops [j].key_len = 12;
            ops [j].value = value;
            ops [j].value_len = sizeof value;
        }
        rc = bc_engine_apply_batch (e, ops, BATCH, (uint64_t) i + 1, ++applied,
                                    err, sizeof err);
        if (rc)
            return s_fail ("load", rc, err);
    }
    double t1 = s_now ();
    printf ("load      %ld keys in %.2f s\n", n, t1 - t0);

    bc_snapshot_t *snap;
    t0 = s_now ();
    rc = bc_snapshot_begin (e, &snap, err, sizeof err);
    if (rc)
        return s_fail ("snapshot_begin", rc, err);
    t1 = s_now ();
    bc_snapshot_info_t info;
    bc_snapshot_info (snap, &info);
    double mb = (double) info.total_bytes / 1e6;
    printf ("begin     %.3f s (seal, hints, CRCs of %u files, %.1f MB)\n",
            t1 - t0, info.files, mb);
    bc_restore_t *r;
    rc = bc_restore_begin (dst, NULL, &r, err, sizeof err);
    if (rc)
        return s_fail ("restore_begin", rc, err);
    size_t cap = 1 << 20;
    uint8_t *buf = malloc (cap);
    double t2 = s_now ();
    for (uint64_t off = 0; off < info.total_bytes; ) {
        size_t got;
        bc_snapshot_read (snap, off, buf, cap, &got);
        rc = bc_restore_write (r, off, buf, got, err, sizeof err);
        if (rc)
            return s_fail ("restore_write", rc, err);
        off += got;
    }
    double t3 = s_now ();
    printf ("transfer  %.3f s (%.0f MB/s, 1 MiB chunks, fsync per file)\n",
            t3 - t2, mb / (t3 - t2));
    rc = bc_restore_commit (r, NULL, err, sizeof err);
    if (rc)
        return s_fail ("commit", rc, err);
    bc_restore_abort (&r);
    double t4 = s_now ();
    printf ("commit    %.3f s (CRC check, swap)\n", t4 - t3);
    bc_snapshot_end (&snap);
    bc_engine_t *d;
    rc = bc_engine_open (dst, NULL, &d, err, sizeof err);
    if (rc)
        return s_fail ("open restored", rc, err);
    double t5 = s_now ();
    printf ("reopen    %.3f s (keydir from hints)\n", t5 - t4);
    printf ("total     %.3f s export+restore+reopen, %.0f MB/s, %.0f keys/s\n",
            t5 - t0, mb / (t5 - t0), (double) n / (t5 - t0));
    bc_stats_t st;
    bc_engine_stats (d, &st);
    int bad = st.applied_index != applied || st.keys != (uint64_t) n;
    for (long i = 0; i < n && !bad; i += 1000) {
        char key [24];
        snprintf (key, sizeof key, "key-%08ld", i);
        uint8_t *v;
        size_t vlen;
        uint64_t rev;
        bad = bc_engine_get (d, key, 12, &v, &vlen, &rev, err, sizeof err)
              || vlen != sizeof value || rev != (uint64_t) i + 1;
        if (!bad)
            free (v);
    }
    printf ("check     %s (keys %llu, applied index %llu)\n",
            bad ? "FAILED" : "ok", (unsigned long long) st.keys,
            (unsigned long long) st.applied_index);
    free (buf);
    bc_engine_destroy (&d);
    bc_engine_destroy (&e);
    test_dir_remove (src);
    test_dir_remove (dst);
    rmdir (root);
    return bad;
}
