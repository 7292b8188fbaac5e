/*  Titan-KV linearizability checker: the sequential model of one key.

    The store is a map of independent keys, so the checker partitions a
    history by key and checks each key against this single-key model.  A
    key is absent or holds a value with a revision.  Values are interned by
    the checker: 0 means absent, ids 1.. name distinct byte strings.

    Revisions are opaque numbers returned by writes and strictly increasing
    in linearization order.  The model does not invent them: it accepts the
    revision a write reported (which must be >= `floor`, the lowest legal
    revision for the next write) and checks later reads and CAS conditions
    against it.  A write whose revision was not reported (an unknown
    outcome, a delete that returns none) leaves the revision unknown; a
    later get or successful CAS that names the revision then fixes it.

    lin_kv_step is deterministic: an operation either has exactly one
    successor state or is illegal in the given state.  Unknown-outcome
    operations are stepped as "took effect"; the checker models "did not
    take effect" by never linearizing them.  See docs/linearizability.md.
*/
#ifndef TITAN_LIN_MODEL_KV_H_INCLUDED
#define TITAN_LIN_MODEL_KV_H_INCLUDED

#include "lin_history.h"

#ifdef __cplusplus
extern "C" {
#endif

/*  State of one key.  */
typedef struct {
    uint32_t value;         /* 0: absent; otherwise interned value id      */
    uint32_t pad;           /* always 0 (states are hashed bytewise)       */
    uint64_t rev;           /* revision of the value; 0: not known         */
    uint64_t floor;         /* lowest legal revision of the next write     */
} lin_kv_state_t;

/*  One operation on the key, as the model sees it.  */
typedef struct {
    lin_op_kind_t kind;
    lin_outcome_t outcome;
    lin_fail_t fail;
    uint32_t value;         /* put/cas: interned value written (>= 1)      */
    uint32_t out;           /* get ok: interned value read; 0: not found   */
    bool expect_absent;     /* cas condition                               */
    uint64_t expect_rev;
    uint64_t rev;           /* revision reported (0: none)                 */
} lin_kv_op_t;

/*  The initial state: absent, no revision seen.  */
lin_kv_state_t lin_kv_initial (void);

/*  Whether the checker must consider `op` at all: failed operations with
    no effect and unknown-outcome gets carry no information.  */
bool lin_kv_relevant (const lin_kv_op_t *op);

/*  Applies `op` to `state`.  Returns true and stores the successor in
    *next when `op` is legal at this point (its result matches the state),
    false otherwise.  */
bool lin_kv_step (const lin_kv_state_t *state, const lin_kv_op_t *op,
                  lin_kv_state_t *next);

#ifdef __cplusplus
}
#endif
#endif
