/*  Titan-KV chaos harness: the checks made after the faults have healed.

    1. Final reads: one linearizable Get of every key, retried across the
       nodes until one answers (each attempt is recorded in the history,
       so the final state is part of what the checker verifies).
    2. Durability, per key, against that final state: the value read was
       written by some client (no invented value); its revision is at
       least the revision of every acknowledged write of that key (every
       acknowledged write is in the log prefix the final state derives
       from: none was lost); a key read as absent has a delete that may
       explain it (an acknowledged delete whose revision is the highest
       acknowledged one, or a delete with an unknown outcome).
    3. Convergence: every node's LOCAL read of every key reaches the final
       value and revision within a deadline (every replica holds every
       acknowledged write).
    4. Linearizability, per key: each key's sub-history is checked with
       lin_check separately, so that every key with a violation is counted
       and explained (lin_check itself stops at the first one).
*/
#ifndef CHAOS_VERIFY_H_INCLUDED
#define CHAOS_VERIFY_H_INCLUDED

#include "chaos_ops.h"
#include "lin_check.h"

#include <stdio.h>

/*  One key of the workload.  */
typedef struct {
    const uint8_t *data;
    size_t len;
} chaos_key_t;

/*  The final state of one key, as the final linearizable read saw it.  */
typedef struct {
    bool read;                  /* a final read succeeded                 */
    bool found;
    uint8_t *value;             /* malloc'd; NULL when absent             */
    size_t value_len;
    uint64_t rev;
} chaos_final_t;

/*  Reads every key linearizably, trying conns[] in turn, each attempt
    bounded by timeout_ms, until one answers or deadline_ns (monotonic)
    passes; records every attempt in `history` (caller's) and stores the
    results in finals[nkeys] (release with chaos_finals_clear).  Returns
    the number of keys that could not be read (each one is a durability
    failure: reported on `log`).  */
size_t chaos_final_reads (tc_conn_t **conns, size_t nconns, chaos_who_t *who,
                          const chaos_key_t *keys, size_t nkeys,
                          int64_t timeout_ms, int64_t deadline_ns,
                          lin_history_t *history, chaos_final_t *finals,
                          FILE *log);

/*  Checks the durability rules (2. above) of every key read in finals
    against the acknowledged writes in `history`.  Returns the number of
    violations, each reported on `log`.  */
size_t chaos_check_durability (const lin_history_t *history,
                               const chaos_key_t *keys, size_t nkeys,
                               const chaos_final_t *finals, FILE *log);

/*  Polls LOCAL reads of every key on every node (names[] for messages)
    until each equals the final state, or deadline_ns passes.  Returns the
    number of (node, key) pairs that never converged, reported on `log`.  */
size_t chaos_check_convergence (tc_conn_t **conns, const char **names,
                                size_t nconns, chaos_who_t *who,
                                const chaos_key_t *keys, size_t nkeys,
                                const chaos_final_t *finals,
                                int64_t timeout_ms, int64_t deadline_ns,
                                FILE *log);

/*  Checks each key's sub-history of `history` with lin_check within
    `budget` per key.  Returns the number of keys found not linearizable
    (explanations on `log`); *undecided counts keys whose budget ran out.
    Returns SIZE_MAX when out of memory.  */
size_t chaos_check_keys (const lin_history_t *history,
                         const chaos_key_t *keys, size_t nkeys,
                         const lin_budget_t *budget, size_t *undecided,
                         FILE *log);

/*  Frees the values held by finals[n].  */
void chaos_finals_clear (chaos_final_t *finals, size_t n);

#endif
