/*  Titan-KV chaos harness: final reads, durability, convergence and the
    per-key linearizability check (see chaos_verify.h).  */
#include "chaos_verify.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static bool
s_same_key (const lin_op_t *op, const chaos_key_t *key)
{
    return op->key_len == key->len && memcmp (op->key, key->data, key->len) == 0;
}

static void
s_sleep_ms (int ms)
{
    struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000 };
    nanosleep (&ts, NULL);
}

size_t
chaos_final_reads (tc_conn_t **conns, size_t nconns, chaos_who_t *who,
                   const chaos_key_t *keys, size_t nkeys, int64_t timeout_ms,
                   int64_t deadline_ns, lin_history_t *history,
                   chaos_final_t *finals, FILE *log)
{
    size_t missing = 0;
    size_t next = 0;
    for (size_t k = 0; k < nkeys; k++) {
        memset (&finals [k], 0, sizeof finals [k]);
        while (!finals [k].read && chaos_now_ns () < deadline_ns) {
            lin_op_t op;
            tc_conn_t *conn = conns [next % nconns];
            grpc_status_code code = chaos_op_get (conn, who, keys [k].data,
                                                  keys [k].len, false,
                                                  timeout_ms, &op);
            (void) code;
            lin_history_add (history, &op, NULL, 0);
            if (op.outcome == LIN_OUT_OK) {
                finals [k].read = true;
                finals [k].found = op.found;
                finals [k].rev = op.rev;
                finals [k].value = op.out_value;      /* takes it */
                finals [k].value_len = op.out_len;
                op.out_value = NULL;
            }
            else {
                next++;
                s_sleep_ms (50);
            }
            chaos_op_release (&op);
        }
        if (!finals [k].read) {
            fprintf (log, "durability: key %.*s: no final linearizable read "
                     "succeeded before the deadline\n",
                     (int) keys [k].len, (const char *) keys [k].data);
            missing++;
        }
    }
    return missing;
}

size_t
chaos_check_durability (const lin_history_t *history, const chaos_key_t *keys,
                        size_t nkeys, const chaos_final_t *finals, FILE *log)
{
    size_t violations = 0;
    size_t n = lin_history_size (history);
    for (size_t k = 0; k < nkeys; k++) {
        const chaos_final_t *f = &finals [k];
        if (!f->read)
            continue;
        uint64_t max_acked = 0;
        bool max_is_delete = false;
        bool written = false;           /* final value written by a client */
        bool unknown_delete = false;
        const lin_op_t *lost = NULL;
        for (size_t i = 0; i < n; i++) {
            const lin_op_t *op = lin_history_get (history, i);
            if (op->kind == LIN_OP_GET || !s_same_key (op, &keys [k]))
                continue;
            if (op->kind == LIN_OP_DELETE && op->outcome == LIN_OUT_UNKNOWN)
                unknown_delete = true;
            if (f->found && op->kind != LIN_OP_DELETE
            &&  op->outcome != LIN_OUT_FAILED
            &&  op->value_len == f->value_len
            &&  memcmp (op->value, f->value, f->value_len) == 0)
                written = true;
            if (op->outcome == LIN_OUT_OK && op->rev > max_acked) {
                max_acked = op->rev;
                max_is_delete = op->kind == LIN_OP_DELETE;
                lost = op;
            }
        }
        char desc [512];
        if (f->found && !written) {
            fprintf (log, "durability: key %.*s holds a value no client wrote: %s\n",
                     (int) keys [k].len, (const char *) keys [k].data,
                     lin_format_bytes (desc, sizeof desc, f->value, f->value_len));
            violations++;
        }
        if (f->found && f->rev < max_acked) {
            fprintf (log, "durability: key %.*s is at revision %" PRIu64
                     " but this acknowledged write is later: %s\n",
                     (int) keys [k].len, (const char *) keys [k].data, f->rev,
                     lin_op_describe (lost, desc, sizeof desc));
            violations++;
        }
        if (!f->found && max_acked && !max_is_delete && !unknown_delete) {
            fprintf (log, "durability: key %.*s is absent, but no delete explains "
                     "it after this acknowledged write: %s\n",
                     (int) keys [k].len, (const char *) keys [k].data,
                     lin_op_describe (lost, desc, sizeof desc));
            violations++;
        }
    }
    return violations;
}

size_t
chaos_check_convergence (tc_conn_t **conns, const char **names, size_t nconns,
                         chaos_who_t *who, const chaos_key_t *keys,
                         size_t nkeys, const chaos_final_t *finals,
                         int64_t timeout_ms, int64_t deadline_ns, FILE *log)
{
    size_t stale = 0;
    for (size_t c = 0; c < nconns; c++) {
        for (size_t k = 0; k < nkeys; k++) {
            const chaos_final_t *f = &finals [k];
            if (!f->read)
                continue;
            bool same = false;
            char seen [256] = "no answer";
            while (!same) {
                lin_op_t op;
                grpc_status_code code = chaos_op_get (conns [c], who, keys [k].data,
                                                      keys [k].len, true,
                                                      timeout_ms, &op);
                if (op.outcome == LIN_OUT_OK) {
                    same = op.found == f->found
                        && (!f->found
                            || (op.rev == f->rev && op.out_len == f->value_len
                                && memcmp (op.out_value, f->value, f->value_len) == 0));
                    if (op.found)
                        snprintf (seen, sizeof seen, "revision %" PRIu64, op.rev);
                    else
                        snprintf (seen, sizeof seen, "absent");
                }
                else
                    snprintf (seen, sizeof seen, "%s", tc_status_name (code));
                chaos_op_release (&op);
                if (same || chaos_now_ns () >= deadline_ns)
                    break;
                s_sleep_ms (100);
            }
            if (!same) {
                fprintf (log, "convergence: node %s: key %.*s: LOCAL read gives %s, "
                         "the final state is %s revision %" PRIu64 "\n", names [c],
                         (int) keys [k].len, (const char *) keys [k].data, seen,
                         f->found ? "present at" : "absent, last", f->rev);
                stale++;
            }
        }
    }
    return stale;
}

size_t
chaos_check_keys (const lin_history_t *history, const chaos_key_t *keys,
                  size_t nkeys, const lin_budget_t *budget, size_t *undecided,
                  FILE *log)
{
    size_t bad = 0;
    *undecided = 0;
    size_t n = lin_history_size (history);
    for (size_t k = 0; k < nkeys; k++) {
        lin_history_t *sub = lin_history_new ();
        if (!sub)
            return SIZE_MAX;
        for (size_t i = 0; i < n; i++) {
            const lin_op_t *op = lin_history_get (history, i);
            if (s_same_key (op, &keys [k]) && lin_history_add (sub, op, NULL, 0) < 0) {
                lin_history_destroy (&sub);
                return SIZE_MAX;
            }
        }
        lin_report_t report;
        if (lin_check (sub, budget, &report)) {
            lin_history_destroy (&sub);
            return SIZE_MAX;
        }
        fprintf (log, "key %.*s: %zu ops, %zu unknown, %" PRIu64 " steps: %s\n",
                 (int) keys [k].len, (const char *) keys [k].data, report.ops,
                 report.unknown, report.steps, lin_result_name (report.result));
        if (report.result == LIN_RESULT_VIOLATION) {
            bad++;
            fprintf (log, "%s\n", report.explanation ? report.explanation : "");
        }
        else
        if (report.result == LIN_RESULT_UNKNOWN)
            (*undecided)++;
        lin_report_clear (&report);
        lin_history_destroy (&sub);
    }
    return bad;
}

void
chaos_finals_clear (chaos_final_t *finals, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free (finals [i].value);
        finals [i].value = NULL;
    }
}
