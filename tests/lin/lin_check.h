/*  Titan-KV linearizability checker: is a recorded history linearizable?

    lin_check partitions the history by key (the KV model is a map of
    independent keys, and linearizability is compositional) and runs a
    Wing-Gong / Lowe search with memoization on each key's sub-history
    against the model of tests/lin/lin_model_kv.h.  Operations with an
    unknown outcome are optional: they may be linearized at any point after
    their invocation, or never.  The search is bounded by a step and time
    budget; when it runs out the verdict is "unknown", never a hang.
*/
#ifndef TITAN_LIN_CHECK_H_INCLUDED
#define TITAN_LIN_CHECK_H_INCLUDED

#include "lin_history.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    LIN_RESULT_OK = 0,          /* linearizable                          */
    LIN_RESULT_VIOLATION,       /* not linearizable (explanation set)    */
    LIN_RESULT_UNKNOWN          /* budget exhausted before a verdict     */
} lin_result_t;

/*  Search budget over the whole history; 0 means "no limit" for each.  */
typedef struct {
    uint64_t max_steps;         /* model steps tried                     */
    int64_t max_ms;             /* wall-clock milliseconds               */
} lin_budget_t;

/*  What lin_check found.  Release with lin_report_clear.  */
typedef struct {
    lin_result_t result;
    size_t ops;                 /* operations in the history             */
    size_t keys;                /* distinct keys                         */
    size_t unknown;             /* operations with an unknown outcome    */
    size_t ignored;             /* no-effect failures and unknown gets   */
    uint64_t steps;             /* model steps tried                     */
    size_t bad_op_count;        /* violation: ops named in explanation   */
    size_t bad_ops [16];        /* their indices in the history          */
    char *explanation;          /* violation or budget: text (owned)     */
} lin_report_t;

/*  Checks `history` within `budget` (NULL: unlimited).  Fills *report
    (which the caller releases with lin_report_clear) and returns 0, or
    -ENOMEM when out of memory (report cleared).  */
int lin_check (const lin_history_t *history, const lin_budget_t *budget,
               lin_report_t *report);

/*  Frees the report's explanation and zeroes it.  */
void lin_report_clear (lin_report_t *report);

/*  Static name of a result ("linearizable", "not linearizable",
    "unknown (budget exhausted)").  */
const char *lin_result_name (lin_result_t result);

#ifdef __cplusplus
}
#endif
#endif
