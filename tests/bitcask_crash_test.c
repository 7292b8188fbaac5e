/*  Crash test of the Bitcask engine with real processes: a child process
    writes with several threads (group commit) and merges now and then; it
    reports each acknowledged write on a pipe; the parent kills it with
    SIGKILL at a random moment, reopens the store and checks that every
    acknowledged write survived and that no value appears that was never
    written.  Repeated BITCASK_CRASH_ITERATIONS times (200 by default;
    `make soak-bitcask` runs thousands).  The seed is printed so that a
    failure can be replayed with BITCASK_CRASH_SEED.  */
#include <check.h>
#include "check_run.h"
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bc_engine.h"
#include "titan/status.h"
#include "test_dir.h"

enum { THREADS = 4, KEYS_PER_THREAD = 50 };

static char s_dir [256];
static int s_ack_fd;
static bc_engine_t *s_child_engine;

static void
s_options (bc_options_t *opt)
{
    bc_options_init (opt);
    opt->max_file_bytes = 16 * 1024;
}

typedef struct {
    int thread;
    uint32_t seq;
} s_ack_t;

static void *
s_child_writer (void *arg)
{
    int t = (int) (intptr_t) arg;
    char key [32], val [64], err [256];
    for (uint32_t seq = 1; ; seq++) {
        snprintf (key, sizeof key, "t%d-k%u", t, seq % KEYS_PER_THREAD);
        snprintf (val, sizeof val, "t%d-seq%u-payload", t, seq);
        if (bc_engine_put (s_child_engine, key, strlen (key), val,
                           strlen (val), 0, NULL, err, sizeof err) != 0)
            _exit (3);
        s_ack_t ack = { t, seq };
        if (write (s_ack_fd, &ack, sizeof ack) != sizeof ack)
            _exit (4);
        if (t == 0 && seq % 40 == 0) {
            if (bc_engine_rotate (s_child_engine, err, sizeof err)
            ||  bc_engine_merge (s_child_engine, NULL, NULL, err, sizeof err))
                _exit (5);
        }
    }
    return NULL;
}

static void
s_child (int fd, uint32_t base)
{
    (void) base;
    s_ack_fd = fd;
    bc_options_t opt;
    s_options (&opt);
    char err [256];
    if (bc_engine_open (s_dir, &opt, &s_child_engine, err, sizeof err)) {
        fprintf (stderr, "child open: %s\n", err);
        _exit (2);
    }
    pthread_t th [THREADS];
    for (int t = 0; t < THREADS; t++)
        pthread_create (&th [t], NULL, s_child_writer, (void *) (intptr_t) t);
    pthread_join (th [0], NULL);
    _exit (0);
}

START_TEST (test_kill9_loop)
{
    snprintf (s_dir, sizeof s_dir, "/tmp/bitcask-crash-XXXXXX");
    ck_assert_ptr_nonnull (mkdtemp (s_dir));
    int iterations = getenv ("BITCASK_CRASH_ITERATIONS")
                   ? atoi (getenv ("BITCASK_CRASH_ITERATIONS")) : 200;
    unsigned seed = getenv ("BITCASK_CRASH_SEED")
                  ? (unsigned) atoi (getenv ("BITCASK_CRASH_SEED"))
                  : (unsigned) time (NULL);
    printf ("bitcask_crash_test: %d iterations, seed %u\n", iterations, seed);
    fflush (stdout);
    srand (seed);
    /* expected[t][k]: the value of each key must carry at least this seq;
       in-flight writes may land too, never beyond the highest issued. */
    static uint32_t acked [THREADS][KEYS_PER_THREAD];
    static uint32_t issued_max [THREADS];
    memset (acked, 0, sizeof acked);
    uint64_t total_acks = 0;
    for (int it = 0; it < iterations; it++) {
        int fds [2];
        ck_assert_int_eq (pipe (fds), 0);
        pid_t pid = fork ();
        ck_assert_int_ge (pid, 0);
        if (pid == 0) {
            close (fds [0]);
            s_child (fds [1], 0);
        }
        close (fds [1]);
        /* Let the child run for a random time, then SIGKILL it. */
        usleep ((useconds_t) (rand () % 40000));
        kill (pid, SIGKILL);
        int status;
        ck_assert_int_eq (waitpid (pid, &status, 0), pid);
        ck_assert_msg (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL,
                       "child exited by itself (status %d), iteration %d",
                       status, it);
        /* Every ack in the pipe was written after its put returned. */
        s_ack_t ack;
        uint32_t last [THREADS] = { 0 };
        while (read (fds [0], &ack, sizeof ack) == sizeof ack) {
            ck_assert (ack.thread >= 0 && ack.thread < THREADS);
            acked [ack.thread][ack.seq % KEYS_PER_THREAD] = ack.seq;
            last [ack.thread] = ack.seq;
            total_acks++;
        }
        close (fds [0]);
        bc_options_t opt;
        s_options (&opt);
        bc_engine_t *e;
        char err [256];
        int rc = bc_engine_open (s_dir, &opt, &e, err, sizeof err);
        ck_assert_msg (rc == 0, "iteration %d (seed %u): open failed: %s",
                       it, seed, err);
        for (int t = 0; t < THREADS; t++) {
            /* sequence numbers restart with each child: a thread's in-flight
               write is at most one beyond its last ack */
            issued_max [t] = last [t] + 1;
            for (int k = 0; k < KEYS_PER_THREAD; k++) {
                char key [32];
                snprintf (key, sizeof key, "t%d-k%d", t, k);
                uint8_t *v;
                size_t vl;
                rc = bc_engine_get (e, key, strlen (key), &v, &vl, NULL, err,
                                    sizeof err);
                if (acked [t][k] == 0) {
                    ck_assert_msg (rc == 0 || rc == TITAN_ENOTFOUND,
                                   "iteration %d: %s", it, err);
                    if (rc == 0)
                        free (v);
                    continue;
                }
                ck_assert_msg (rc == 0, "iteration %d (seed %u): acknowledged "
                               "key %s lost: %s", it, seed, key, err);
                char expect [64];
                unsigned got_t, got_seq;
                char text [80];
                snprintf (text, sizeof text, "%.*s", (int) vl, (char *) v);
                free (v);
                ck_assert_msg (sscanf (text, "t%u-seq%u-payload", &got_t,
                                       &got_seq) == 2 && got_t == (unsigned) t
                               && got_seq % KEYS_PER_THREAD == (unsigned) k,
                               "iteration %d: key %s has invented value %s",
                               it, key, text);
                snprintf (expect, sizeof expect, "t%d-seq%u-payload", t,
                          acked [t][k]);
                /* Either the acknowledged value or, for the key of the one
                   write in flight, that newer value. */
                bool ok = got_seq == acked [t][k]
                       || (got_seq == issued_max [t]
                           && got_seq % KEYS_PER_THREAD == (unsigned) k);
                ck_assert_msg (ok, "iteration %d (seed %u): key %s has %s, "
                               "acknowledged %s", it, seed, key, text, expect);
                acked [t][k] = got_seq;     /* what the next round builds on */
            }
        }
        bc_engine_destroy (&e);
    }
    printf ("bitcask_crash_test: %d kills, %llu acknowledged writes checked\n",
            iterations, (unsigned long long) total_acks);
    test_dir_remove (s_dir);
}
END_TEST

int
main (void)
{
    Suite *s = suite_create ("bitcask_crash");
    TCase *tc = tcase_create ("kill9");
    tcase_set_timeout (tc, 600);
    tcase_add_test (tc, test_kill9_loop);
    suite_add_tcase (s, tc);
    return titan_check_run (s, true);
}
