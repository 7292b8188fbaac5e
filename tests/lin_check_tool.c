/*  lin_check_tool: checks a saved history for linearizability.

    Usage: lin_check_tool [--max-steps N] [--max-ms MS] HISTORY_FILE

    Loads a history in the text format of tests/lin/lin_history.h (as a
    failing fault-injection run saves it), checks it with lin_check and
    prints one summary line:

        ops: N keys: K unknown: U linearizable: true|false|unknown

    followed, for a violation, by the explanation.  Exit status: 0
    linearizable, 1 not linearizable, 2 bad usage or unreadable/invalid
    file, 3 budget exhausted (no verdict).
*/
#include "lin_check.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
s_usage (void)
{
    fprintf (stderr, "usage: lin_check_tool [--max-steps N] [--max-ms MS] HISTORY_FILE\n");
}

static int
s_number (const char *text, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll (text, &end, 10);
    if (errno || *end || end == text || v < 0)
        return -EINVAL;
    *out = v;
    return 0;
}

int
main (int argc, char *argv [])
{
    lin_budget_t budget = { 0, 0 };
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        long long v;
        if ((!strcmp (argv [i], "--max-steps") || !strcmp (argv [i], "--max-ms")) && i + 1 < argc) {
            if (s_number (argv [i + 1], &v)) {
                fprintf (stderr, "lin_check_tool: bad number '%s' for %s\n", argv [i + 1], argv [i]);
                return 2;
            }
            if (!strcmp (argv [i], "--max-steps"))
                budget.max_steps = (uint64_t) v;
            else
                budget.max_ms = (int64_t) v;
            i++;
        }
        else
        if (argv [i][0] == '-' || path) {
            s_usage ();
            return 2;
        }
        else
            path = argv [i];
    }
    if (!path) {
        s_usage ();
        return 2;
    }
    char err [512] = "";
    lin_history_t *history = NULL;
    int rc = lin_history_load (path, &history, err, sizeof err);
    if (rc) {
        fprintf (stderr, "lin_check_tool: %s\n", err);
        return 2;
    }
    lin_report_t report;
    rc = lin_check (history, &budget, &report);
    lin_history_destroy (&history);
    if (rc) {
        fprintf (stderr, "lin_check_tool: check failed: %s\n", strerror (-rc));
        return 2;
    }
    const char *verdict = report.result == LIN_RESULT_OK ? "true"
                        : report.result == LIN_RESULT_VIOLATION ? "false" : "unknown";
    printf ("ops: %zu keys: %zu unknown: %zu linearizable: %s\n",
            report.ops, report.keys, report.unknown, verdict);
    if (report.explanation)
        printf ("%s", report.explanation);
    int status = report.result == LIN_RESULT_OK ? 0
               : report.result == LIN_RESULT_VIOLATION ? 1 : 3;
    lin_report_clear (&report);
    return status;
}
