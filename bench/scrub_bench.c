/*  scrub_bench: how long a Bitcask scrub pass (bc_scrub.h) takes over a
    shard of about 1 GB, unthrottled (page cache cold and warm) and at a
    rate limit (default 8 MiB/s, the module's default scrub_bytes_per_sec),
    stepping every 50 ms as the bitcask module's actor does.

        scrub_bench [--bytes N] [--value N] [--rate N] [--no-throttled]
                    [--dir DIR]

    Writes N bytes of records (values of --value bytes, keys "key-%09d")
    into a fresh engine in DIR (default a temporary directory, removed at
    the end), closes and reopens it, makes its files cold (fsync, then
    posix_fadvise DONTNEED), and times the passes.  Prints one line per
    figure.  `make bench-scrub` runs it with the defaults.  */
#include "bc_engine.h"
#include "bc_scrub.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int64_t
s_now_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* fsync and drop from the page cache every file of dir (or remove them). */
static void
s_each_file (const char *dir, bool remove)
{
    DIR *d = opendir (dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir (d))) {
        if (de->d_name [0] == '.')
            continue;
        char path [4096];
        snprintf (path, sizeof path, "%s/%s", dir, de->d_name);
        if (remove) {
            unlink (path);
            continue;
        }
        int fd = open (path, O_RDONLY);
        if (fd < 0)
            continue;
        (void) fsync (fd);
        (void) posix_fadvise (fd, 0, 0, POSIX_FADV_DONTNEED);
        close (fd);
    }
    closedir (d);
}

/* One pass; returns its duration in seconds. */
static double
s_pass (bc_engine_t *e, uint64_t rate, bc_scrub_stats_t *st)
{
    bc_scrubber_t *sc = bc_scrubber_new (rate);
    if (!sc)
        exit (1);
    int64_t start = s_now_us ();
    bc_scrubber_start (sc, start);
    int rc;
    while ((rc = bc_scrubber_step (sc, e, s_now_us (), NULL, NULL)) == 0)
        if (rate)
            usleep (50 * 1000);          /* the actor's SCRUB_TICK_MS */
    if (rc < 0) {
        fprintf (stderr, "scrub_bench: pass failed: %d\n", rc);
        exit (1);
    }
    bc_scrubber_stats (sc, st);
    bc_scrubber_destroy (&sc);
    return (double) (s_now_us () - start) / 1e6;
}

int
main (int argc, char **argv)
{
    uint64_t bytes = 1ull << 30, rate = 8u << 20;
    size_t vlen = 1024;
    bool throttled = true;
    const char *dir_arg = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp (argv [i], "--bytes") && i + 1 < argc)
            bytes = strtoull (argv [++i], NULL, 10);
        else if (!strcmp (argv [i], "--value") && i + 1 < argc)
            vlen = strtoul (argv [++i], NULL, 10);
        else if (!strcmp (argv [i], "--rate") && i + 1 < argc)
            rate = strtoull (argv [++i], NULL, 10);
        else if (!strcmp (argv [i], "--no-throttled"))
            throttled = false;
        else if (!strcmp (argv [i], "--dir") && i + 1 < argc)
            dir_arg = argv [++i];
        else {
            fprintf (stderr, "usage: scrub_bench [--bytes N] [--value N] "
                     "[--rate N] [--no-throttled] [--dir DIR]\n");
            return 2;
        }
    }
    if (vlen < 1 || vlen > (1u << 20) || rate == 0) {
        fprintf (stderr, "scrub_bench: --value 1..1048576, --rate > 0\n");
        return 2;
    }
    char dir [4096];
    if (dir_arg)
        snprintf (dir, sizeof dir, "%s", dir_arg);
    else {
        snprintf (dir, sizeof dir, "%s/scrub-bench-XXXXXX",
                  getenv ("TMPDIR") ? getenv ("TMPDIR") : "/tmp");
        if (!mkdtemp (dir)) {
            perror ("mkdtemp");
            return 1;
        }
    }
    bc_options_t opt;
    bc_options_init (&opt);
    opt.sync = false;                    /* loading speed; fsynced below */
    bc_engine_t *e;
    char err [256];
    if (bc_engine_open (dir, &opt, &e, err, sizeof err)) {
        fprintf (stderr, "scrub_bench: %s\n", err);
        return 1;
    }
    uint8_t *value = malloc (vlen);
    enum { BATCH = 1000 };
    bc_op_t *ops = calloc (BATCH, sizeof *ops);
    char (*keys) [24] = calloc (BATCH, 24);
    if (!value || !ops || !keys)
        return 1;
    for (size_t i = 0; i < vlen; i++)
        value [i] = (uint8_t) (i * 31 + 7);
    uint64_t records = bytes / (24 + 13 + vlen), written = 0;
    int64_t t0 = s_now_us ();
    while (written < records) {
        size_t n = records - written < BATCH ? records - written : BATCH;
        for (size_t i = 0; i < n; i++) {
            snprintf (keys [i], 24, "key-%09llu",
                      (unsigned long long) (written + i));
            memset (&ops [i], 0, sizeof ops [i]);
            ops [i].kind = BC_OP_PUT;
            ops [i].key = keys [i];
            ops [i].key_len = 13;
            ops [i].value = value;
            ops [i].value_len = vlen;
        }
        if (bc_engine_apply_batch (e, ops, n, 0, 0, err, sizeof err)) {
            fprintf (stderr, "scrub_bench: %s\n", err);
            return 1;
        }
        written += n;
    }
    bc_engine_destroy (&e);
    printf ("loaded %llu records of %zu-byte values (%.1f MB) in %.1f s\n",
            (unsigned long long) records, vlen,
            (double) records * (24 + 13 + vlen) / 1e6,
            (double) (s_now_us () - t0) / 1e6);
    if (bc_engine_open (dir, &opt, &e, err, sizeof err)) {
        fprintf (stderr, "scrub_bench: %s\n", err);
        return 1;
    }
    bc_scrub_stats_t st;
    s_each_file (dir, false);
    double secs = s_pass (e, 0, &st);
    printf ("unthrottled pass, cold cache: %llu records, %.1f MB in %.2f s "
            "(%.0f MB/s), %llu errors\n", (unsigned long long) st.records,
            (double) st.bytes / 1e6, secs, (double) st.bytes / 1e6 / secs,
            (unsigned long long) st.errors);
    secs = s_pass (e, 0, &st);
    printf ("unthrottled pass, warm cache: %.1f MB in %.2f s (%.0f MB/s)\n",
            (double) st.bytes / 1e6, secs, (double) st.bytes / 1e6 / secs);
    if (throttled) {
        s_each_file (dir, false);
        secs = s_pass (e, rate, &st);
        printf ("pass at %.1f MiB/s: %.1f MB in %.1f s (%.2f MiB/s achieved; "
                "expected %.1f s)\n", (double) rate / (1 << 20),
                (double) st.bytes / 1e6, secs,
                (double) st.bytes / (1 << 20) / secs,
                (double) st.bytes / (double) rate);
    }
    bc_engine_destroy (&e);
    free (value);
    free (ops);
    free (keys);
    if (!dir_arg) {
        s_each_file (dir, true);
        rmdir (dir);
    }
    return 0;
}
