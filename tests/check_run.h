/*  The one way every check-based test program runs its suite: normal
    verbosity, check's fork mode unless the test asks for no fork (tests
    whose fixtures hold threads or sockets across cases), and an exit
    status automake's test driver understands (0 pass, 1 fail).  */
#ifndef TITAN_TESTS_CHECK_RUN_H_INCLUDED
#define TITAN_TESTS_CHECK_RUN_H_INCLUDED

#include <check.h>
#include <stdbool.h>

/*  Runs `suite` (taking ownership) and returns the program's exit status. */
static inline int
titan_check_run (Suite *suite, bool no_fork)
{
    SRunner *runner = srunner_create (suite);
    if (no_fork)
        srunner_set_fork_status (runner, CK_NOFORK);
    srunner_run_all (runner, CK_NORMAL);
    int failed = srunner_ntests_failed (runner);
    srunner_free (runner);
    return failed ? 1 : 0;
}

#endif
