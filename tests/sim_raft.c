/*  The Raft simulation runner: many seeds, or one replayed.

    Without arguments it runs the seeds SIM_DEFAULT_FIRST ..
    SIM_DEFAULT_FIRST + SIM_DEFAULT_COUNT - 1 (set at build time, so that
    `make check` can spread seeds over several programs) and exits 1 if any
    fails, printing each failing seed with the command that replays it.
    SEED=N replays one seed verbosely (every event printed); SIM_FIRST and
    SIM_COUNT choose another range (the soak target); SIM_BUGS=mask
    injects RAFT_BUG_* faults and SIM_HARSH=1 forces the harsh fault profile.
*/
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "sim_raft_harness.h"

#ifndef SIM_DEFAULT_FIRST
#define SIM_DEFAULT_FIRST 1
#endif
#ifndef SIM_DEFAULT_COUNT
#define SIM_DEFAULT_COUNT 1000
#endif

static uint64_t
s_env (const char *name, uint64_t dflt)
{
    const char *v = getenv (name);
    return v && *v ? strtoull (v, NULL, 0) : dflt;
}

int
main (void)
{
    uint32_t bugs = (uint32_t) s_env ("SIM_BUGS", 0);
    int harsh = (int) s_env ("SIM_HARSH", 0);
    if (getenv ("SEED")) {
        sim_opts_t o = { .seed = s_env ("SEED", 1), .bugs = bugs, .verbose = 1,
                         .harsh = harsh };
        sim_result_t res;
        int rc = sim_run (&o, &res);
        printf ("seed %" PRIu64 ": %s (%d nodes, %" PRIu64 " steps, %" PRIu64
                " ticks, %" PRIu64 " acked, %" PRIu64 " reads)%s%s\n", o.seed,
                rc ? "FAIL" : "ok", res.nodes, res.steps, res.ticks, res.acked,
                res.reads, rc ? ": " : "", rc ? res.failure : "");
        return rc ? 1 : 0;
    }
    uint64_t first = s_env ("SIM_FIRST", SIM_DEFAULT_FIRST);
    uint64_t count = s_env ("SIM_COUNT", SIM_DEFAULT_COUNT);
    struct timespec t0, t1;
    clock_gettime (CLOCK_MONOTONIC, &t0);
    uint64_t steps = 0, ticks = 0, acked = 0, reads = 0, reads_failed = 0, lease_reads = 0, snaps = 0, confs = 0,
             elections = 0, failures = 0;
    for (uint64_t seed = first; seed < first + count; seed++) {
        sim_opts_t o = { .seed = seed, .bugs = bugs, .harsh = harsh };
        sim_result_t res;
        if (sim_run (&o, &res) != 0) {
            failures++;
            printf ("FAIL seed %" PRIu64 ": %s\n  replay: SEED=%" PRIu64
                    " SIM_BUGS=%u SIM_HARSH=%d tests/sim_raft\n", seed,
                    res.failure, seed, bugs, harsh);
        }
        steps += res.steps;
        ticks += res.ticks;
        acked += res.acked;
        reads += res.reads;
        reads_failed += res.reads_failed;
        lease_reads += res.lease_reads;
        snaps += res.snapshots_sent;
        confs += res.conf_changes;
        elections += res.elections;
    }
    clock_gettime (CLOCK_MONOTONIC, &t1);
    double secs = (double) (t1.tv_sec - t0.tv_sec)
        + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf ("sim_raft: seeds %" PRIu64 "..%" PRIu64 ": %" PRIu64 " failed; %"
            PRIu64 " steps, %" PRIu64 " ticks, %" PRIu64 " leaders, %" PRIu64
            " acked writes, %" PRIu64 " reads (+%" PRIu64 " failed, %" PRIu64
            " from leases), %" PRIu64 " snapshots installed, %"
            PRIu64 " conf changes; %.2f s\n", first, first + count - 1, failures,
            steps, ticks, elections, acked, reads, reads_failed, lease_reads,
            snaps, confs, secs);
    return failures ? 1 : 0;
}
