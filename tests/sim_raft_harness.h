/*  The seeded, deterministic Raft simulation: 3-7 nodes in one thread.

    sim_run drives a whole cluster of raft_core instances over a simulated
    network in virtual time, from one seed: message loss, duplication,
    delay (hence reordering), partitions, crashes and restarts (a crash
    keeps exactly what the node had persisted in its raft_memstore),
    membership changes, leadership transfers, snapshots and log compaction,
    proposals and ReadIndex reads.  After every step it checks election
    safety, log matching, leader completeness, state-machine safety and the
    linearizability of read indexes; at the end it heals every fault and
    checks that the live members converge and that every acknowledged
    proposal is applied everywhere.  The same seed replays the same run.
*/
#ifndef TITAN_SIM_RAFT_HARNESS_H_INCLUDED
#define TITAN_SIM_RAFT_HARNESS_H_INCLUDED

#include <stdint.h>

typedef struct {
    uint64_t seed;
    uint32_t bugs;            /* RAFT_BUG_* injected into every node */
    int verbose;              /* 1: print the run's events */
    int harsh;                /* 1: force the harsh fault profile (else the
                                 seed picks it one run in four) */
} sim_opts_t;

typedef struct {
    uint64_t steps;           /* ticks + message deliveries */
    uint64_t ticks;
    uint64_t acked;           /* proposals acknowledged as committed */
    uint64_t reads;           /* read indexes checked */
    uint64_t reads_failed;    /* reads failed by a leader change */
    uint64_t lease_reads;     /* reads a leader answered from its lease */
    uint64_t elections;       /* distinct leaders seen */
    uint64_t snapshots_sent;  /* snapshots installed from a leader */
    uint64_t conf_changes;
    int nodes;
    char failure[512];        /* why the run failed */
} sim_result_t;

/*  Runs one seed.  Returns 0 when every check passed, -1 with a message
    in res->failure otherwise.  */
int sim_run (const sim_opts_t *opts, sim_result_t *res);

#endif
