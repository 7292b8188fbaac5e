/*  Proof that the simulation's checker can fail: each deliberate bug of
    raft_core (RAFT_BUG_*: commit by counting old-term entries, votes
    without the log check, a second vote in one term, APPEND without the
    previous-entry check, ReadIndex without a heartbeat round) is switched
    on and the simulation must catch it
    (some seed must report a safety violation) within a bounded number of
    seeds.  The program fails if a bug goes unnoticed.  It also prints the
    first catching seed: `SEED=N SIM_BUGS=mask tests/sim_raft` replays it.
*/
#include <inttypes.h>
#include <stdio.h>
#include "raft_core.h"
#include "sim_raft_harness.h"

static int
s_hunt (const char *name, uint32_t bug, int harsh, uint64_t max_seeds)
{
    for (uint64_t seed = 1; seed <= max_seeds; seed++) {
        sim_opts_t o = { .seed = seed, .bugs = bug, .harsh = harsh };
        sim_result_t res;
        if (sim_run (&o, &res) != 0) {
            printf ("bug %s caught by seed %" PRIu64 ": %s\n  replay: SEED=%"
                    PRIu64 " SIM_BUGS=%u SIM_HARSH=%d tests/sim_raft\n", name, seed,
                    res.failure, seed, bug, harsh);
            return 0;
        }
    }
    printf ("bug %s NOT caught in %" PRIu64 " seeds\n", name, max_seeds);
    return 1;
}

int
main (void)
{
    int failed = 0;
    failed += s_hunt ("vote-without-log-check", RAFT_BUG_VOTE_ANY_LOG, 1, 400);
    failed += s_hunt ("commit-old-term-by-counting", RAFT_BUG_COMMIT_OLD_TERM, 1, 10000);
    failed += s_hunt ("read-index-without-quorum", RAFT_BUG_READ_NO_QUORUM, 0, 3000);
    failed += s_hunt ("vote-twice-in-a-term", RAFT_BUG_VOTE_TWICE, 0, 3000);
    failed += s_hunt ("append-without-prev-check", RAFT_BUG_NO_PREV_CHECK, 1, 3000);
    return failed ? 1 : 0;
}
