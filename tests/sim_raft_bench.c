/*  Cost of the Raft core itself, without I/O: a 3-node group in memory.

    The leader proposes `batch` commands of `size` bytes, then every node
    drains its ready (persisting into a raft_memstore, delivering messages
    directly) until all three have applied them; repeated until `total`
    commands are applied everywhere.  It prints commands per second and
    the CPU time per command: the ceiling the core puts on a group, to set
    against fsync and network costs.  Not a test: `make bench-raft-core`.
    BENCH_TOTAL, BENCH_BATCH and BENCH_SIZE override the defaults.
*/
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "raft_core.h"
#include "raft_memstore.h"

#define N 3

typedef struct {
    raft_t *r[N + 1];
    raft_memstore_t *st[N + 1];
    uint64_t applied[N + 1];
    uint32_t rnd[N + 1];
    raft_msg_t *q;
    size_t nq, cap;
} bench_t;

static uint32_t
s_rand (void *ud, uint32_t bound)
{
    return *(uint32_t *) ud % bound;
}

static void
s_die (const char *what, int rc)
{
    fprintf (stderr, "sim_raft_bench: %s: %d\n", what, rc);
    exit (1);
}

static void
s_copy_msg (raft_msg_t *dst, const raft_msg_t *src)
{
    *dst = *src;
    dst->entries = NULL;
    dst->data = NULL;
    if (src->n_entries) {
        dst->entries = calloc (src->n_entries, sizeof *dst->entries);
        if (!dst->entries)
            s_die ("calloc", -ENOMEM);
        for (size_t i = 0; i < src->n_entries; i++) {
            dst->entries[i] = src->entries[i];
            dst->entries[i].data = NULL;
            if (src->entries[i].size) {
                dst->entries[i].data = malloc (src->entries[i].size);
                if (!dst->entries[i].data)
                    s_die ("malloc", -ENOMEM);
                memcpy (dst->entries[i].data, src->entries[i].data,
                        src->entries[i].size);
            }
        }
    }
}

static void
s_drain (bench_t *b)
{
    bool busy = true;
    while (busy) {
        busy = false;
        for (int i = 1; i <= N; i++) {
            while (raft_has_ready (b->r[i])) {
                busy = true;
                raft_ready_t rd;
                int rc = raft_ready (b->r[i], &rd);
                if (rc == 0)
                    rc = raft_memstore_persist (b->st[i], &rd);
                if (rc)
                    s_die ("ready", rc);
                for (size_t k = 0; k < rd.n_msgs; k++) {
                    if (b->nq == b->cap) {
                        b->cap = b->cap ? b->cap * 2 : 64;
                        b->q = realloc (b->q, b->cap * sizeof *b->q);
                        if (!b->q)
                            s_die ("realloc", -ENOMEM);
                    }
                    s_copy_msg (&b->q[b->nq++], &rd.msgs[k]);
                }
                if (rd.n_committed)
                    b->applied[i] = rd.committed[rd.n_committed - 1].index;
                rc = raft_advance (b->r[i], &rd);
                if (rc)
                    s_die ("advance", rc);
            }
        }
        for (size_t k = 0; k < b->nq; k++) {
            raft_msg_t *m = &b->q[k];
            int rc = raft_step (b->r[m->to], m);
            if (rc)
                s_die ("step", rc);
            raft_entries_free (&m->entries, m->n_entries);
            busy = true;
        }
        b->nq = 0;
    }
}

static uint64_t
s_env (const char *name, uint64_t dflt)
{
    const char *v = getenv (name);
    return v && *v ? strtoull (v, NULL, 0) : dflt;
}

int
main (void)
{
    uint64_t total = s_env ("BENCH_TOTAL", 300000);
    uint64_t batch = s_env ("BENCH_BATCH", 64);
    uint32_t size = (uint32_t) s_env ("BENCH_SIZE", 128);
    bench_t b;
    memset (&b, 0, sizeof b);
    raft_config_t boot = { .n_voters = N, .voters = { 1, 2, 3 } };
    for (int i = 1; i <= N; i++) {
        b.st[i] = raft_memstore_new ();
        b.rnd[i] = (uint32_t) i;
        raft_options_t o;
        raft_options_init (&o);
        o.id = (uint64_t) i;
        o.group = 1;
        o.storage = raft_memstore_storage (b.st[i]);
        o.bootstrap = &boot;
        o.rand_fn = s_rand;
        o.rand_ud = &b.rnd[i];
        char err[128];
        int rc = raft_new (&o, &b.r[i], err, sizeof err);
        if (rc)
            s_die (err, rc);
    }
    while (raft_role (b.r[1]) != RAFT_LEADER) {
        for (int i = 1; i <= N; i++)
            raft_tick (b.r[i]);
        s_drain (&b);
    }
    uint8_t *cmd = calloc (1, size + 1);
    if (!cmd)
        s_die ("calloc", -ENOMEM);
    struct timespec t0, t1, c0, c1;
    clock_gettime (CLOCK_MONOTONIC, &t0);
    clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &c0);
    uint64_t done = 0, last = 0;
    while (done < total) {
        for (uint64_t k = 0; k < batch; k++) {
            int rc = raft_propose (b.r[1], cmd, size, &last, NULL);
            if (rc)
                s_die ("propose", rc);
        }
        s_drain (&b);
        for (int i = 1; i <= N; i++)
            if (b.applied[i] != last) {
                fprintf (stderr, "node %d applied %" PRIu64 " of %" PRIu64
                         " (commit %" PRIu64 ")\n", i, b.applied[i], last,
                         raft_commit_index (b.r[i]));
                s_die ("not applied everywhere", -EIO);
            }
        done += batch;
        /* keep memory flat: compact what everybody applied */
        for (int i = 1; i <= N; i++)
            raft_memstore_compact (b.st[i], last, raft_applied_config (b.r[i]),
                                   "s", 1);
    }
    clock_gettime (CLOCK_MONOTONIC, &t1);
    clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &c1);
    double secs = (double) (t1.tv_sec - t0.tv_sec)
        + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9;
    double cpu = (double) (c1.tv_sec - c0.tv_sec)
        + (double) (c1.tv_nsec - c0.tv_nsec) / 1e9;
    printf ("raft core, 3 nodes in one thread, in memory: %" PRIu64 " commands "
            "of %u bytes in batches of %" PRIu64 ": %.0f commands/s, %.2f us CPU "
            "per command (all 3 replicas)\n", done, size, batch,
            (double) done / secs, cpu * 1e6 / (double) done);
    free (cmd);
    free (b.q);
    for (int i = 1; i <= N; i++) {
        raft_destroy (&b.r[i]);
        raft_memstore_destroy (&b.st[i]);
    }
    return 0;
}
