/*  raft_log_bench: durable append throughput of the Raft log.

    Appends entries of 300 bytes in batches of 1 and of 64 (each batch one
    raft_log_append call, so one fdatasync), for a fixed wall-clock time per
    run, and prints entries/s, batches/s, fsyncs/s (counted by the file
    layer, so segment rotations show) and the median and 99th percentile
    latency of one append call.  Also times a full read-back and a reopen
    (recovery scan) of what was written.

    Usage: raft_log_bench [DIR] [SECONDS]   (default $TMPDIR or /tmp, 2 s)
    The directory must be on the disk to be measured (not tmpfs).  */
#include "raft_log.h"
#include "raft_fio.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ENTRY_SIZE 300

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int
s_rm_cb (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st; (void) flag; (void) ftw;
    return remove (path);
}

static int
s_cmp_double (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

static int
s_run (const char *base, size_t batch, double seconds)
{
    char templ [1024];
    snprintf (templ, sizeof templ, "%s/raft-log-bench-XXXXXX", base);
    char *dir = mkdtemp (templ);
    if (!dir) {
        perror (templ);
        return -1;
    }
    raft_fio_t *fio = raft_fio_new ();
    raft_log_options_t options = { 0, 0, fio };
    raft_log_t *log;
    char err [512];
    int rc = raft_log_open (dir, &options, &log, err, sizeof err);
    if (rc) {
        fprintf (stderr, "raft_log_bench: %s\n", err);
        raft_fio_destroy (&fio);
        return rc;
    }
    static uint8_t data [ENTRY_SIZE];
    for (int i = 0; i < ENTRY_SIZE; i++)
        data [i] = (uint8_t) (i * 7);
    raft_log_entry_t *entries = calloc (batch, sizeof *entries);
    size_t lat_cap = 1 << 16, nlat = 0;
    double *lat = malloc (lat_cap * sizeof (double));
    if (!entries || !lat) {
        fprintf (stderr, "raft_log_bench: out of memory\n");
        exit (1);
    }
    unsigned syncs0 = raft_fio_count (fio, RAFT_FIO_SYNC);
    uint64_t index = 1;
    double start = s_now (), end = start + seconds, now = start;
    while (now < end) {
        for (size_t k = 0; k < batch; k++)
            entries [k] = (raft_log_entry_t) { index + k, 1, 0, data, ENTRY_SIZE };
        double t0 = s_now ();
        rc = raft_log_append (log, entries, batch);
        now = s_now ();
        if (rc) {
            fprintf (stderr, "raft_log_bench: append: %s\n", raft_log_errmsg (log));
            break;
        }
        if (nlat < lat_cap)
            lat [nlat++] = now - t0;
        index += batch;
    }
    double elapsed = now - start;
    unsigned syncs = raft_fio_count (fio, RAFT_FIO_SYNC) - syncs0;
    uint64_t total = index - 1;
    qsort (lat, nlat, sizeof (double), s_cmp_double);
    printf ("batch %3zu: %9.0f entries/s  %7.0f batches/s  %7.0f fsyncs/s"
            "  append p50 %.3f ms p99 %.3f ms  (%llu entries, %.1f s)\n",
            batch, (double) total / elapsed, (double) nlat / elapsed,
            (double) syncs / elapsed, lat [nlat / 2] * 1e3,
            lat [nlat * 99 / 100] * 1e3, (unsigned long long) total, elapsed);

    //  Read everything back, then reopen (recovery scan).
    double t0 = s_now ();
    uint64_t read = 0;
    for (uint64_t i = 1; rc == 0 && i <= total;) {
        raft_log_entry_t *got;
        size_t count;
        rc = raft_log_entries (log, i, total + 1, 1 << 20, &got, &count);
        if (rc == 0) {
            i += count;
            read += count;
            free (got);
        }
    }
    double t1 = s_now ();
    raft_log_destroy (&log);
    rc = raft_log_open (dir, NULL, &log, err, sizeof err);
    double t2 = s_now ();
    if (rc == 0)
        printf ("           read back %llu entries in %.1f ms; reopen (scan) %.1f ms\n",
                (unsigned long long) read, (t1 - t0) * 1e3, (t2 - t1) * 1e3);
    else
        fprintf (stderr, "raft_log_bench: reopen: %s\n", err);
    raft_log_destroy (&log);
    raft_fio_destroy (&fio);
    free (entries);
    free (lat);
    nftw (dir, s_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}

int
main (int argc, char *argv [])
{
    const char *base = argc > 1 ? argv [1] : getenv ("TMPDIR");
    if (!base)
        base = "/tmp";
    double seconds = argc > 2 ? atof (argv [2]) : 2.0;
    if (seconds <= 0)
        seconds = 2.0;
    printf ("raft_log_bench: %d-byte entries, one fdatasync per batch, in %s\n",
            ENTRY_SIZE, base);
    if (s_run (base, 1, seconds) || s_run (base, 64, seconds))
        return 1;
    return 0;
}
