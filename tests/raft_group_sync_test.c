/*  Tests of the phased persistence of the raft module (kernel/job_pool.c,
    raft_group_ready_write / _sync / _finish in raft_group.c): the pool runs
    a batch concurrently and every job once; a follower's answer to an
    append leaves only after its log is synced, and never when the sync
    fails (the raft_fio fault layer makes it fail).  The follower is a real
    group on disk with a real transport; the "leader" is a bare transport
    that crafts the append and reads what comes back.  */
#include "check_run.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "raft_group.h"
#include "raft_members.h"
#include "titan/job_pool.h"
#include "raft_transport.h"
#include "raft_wire.h"
#include "raft_group_testutil.h"
#include "raft_log_testutil.h"
#include "test_free_addr.h"

/* ------------------------------------------------------------ the pool */

#define JOBS 40

typedef struct {
    atomic_int *running;        /* jobs running right now */
    atomic_int *peak;           /* most running at once */
    int runs;                   /* times this job ran */
} s_job_t;

static void
s_job (void *item)
{
    s_job_t *job = item;
    int now = atomic_fetch_add (job->running, 1) + 1;
    int peak = atomic_load (job->peak);
    while (now > peak && !atomic_compare_exchange_weak (job->peak, &peak, now))
        ;
    zclock_sleep (10);
    job->runs++;
    atomic_fetch_sub (job->running, 1);
}

/*  Runs `batches` batches of `n` jobs on a pool of `threads`; returns the
    most jobs that ran at once.  Every job must have run once per batch. */
static int
s_run_pool (unsigned threads, size_t n, int batches)
{
    titan_job_pool_t *pool = NULL;
    ck_assert_int_eq (titan_job_pool_new (threads, &pool), 0);
    atomic_int running = 0, peak = 0;
    s_job_t jobs [JOBS];
    void *items [JOBS];
    ck_assert (n <= JOBS);
    for (size_t i = 0; i < n; i++) {
        jobs [i] = (s_job_t) { &running, &peak, 0 };
        items [i] = &jobs [i];
    }
    for (int b = 0; b < batches; b++) {
        titan_job_pool_run (pool, s_job, items, n);
        ck_assert_int_eq (atomic_load (&running), 0);
    }
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq (jobs [i].runs, batches);
    titan_job_pool_destroy (&pool);
    ck_assert_ptr_null (pool);
    return atomic_load (&peak);
}

START_TEST (test_pool)
{
    //  Helpers and the caller run a batch at once (sleeping jobs: the
    //  machine's load does not matter).
    ck_assert_int_eq (s_run_pool (3, JOBS, 2), 4);
    //  Many small batches back to back: no job lost or run twice.
    s_run_pool (3, 3, 50);
    //  No helpers, or one job: the caller alone.
    ck_assert_int_eq (s_run_pool (0, 5, 2), 1);
    ck_assert_int_eq (s_run_pool (3, 1, 5), 1);
    ck_assert_int_eq (s_run_pool (3, 0, 1), 0);
}
END_TEST

/* ------------------------------------------------- follower durability */

typedef struct {
    char *root;
    char *leader_addr;
    char *follower_addr;
    raft_transport_t *leader;       /* the fake leader's transport */
    raft_transport_t *transport;    /* the follower's */
    raft_fio_t *fio;
    raft_group_t *group;            /* the follower */
} s_fixture_t;

static void s_step_append (s_fixture_t *fx, uint64_t first, uint64_t last);
static void s_expect_answer (s_fixture_t *fx, uint32_t type, uint64_t index);
static uint64_t s_flush (s_fixture_t *fx);

static void
s_open (s_fixture_t *fx)
{
    memset (fx, 0, sizeof *fx);
    fx->root = tu_tmpdir ("raft-group-sync");
    fx->leader_addr = tu_free_addr ();
    fx->follower_addr = tu_free_addr ();
    char err [256] = "";
    ck_assert_msg (raft_transport_new ("L", fx->leader_addr, 1 << 20,
                                       &fx->leader, err, sizeof err) == 0,
                   "%s", err);
    ck_assert_msg (raft_transport_new ("F", fx->follower_addr, 1 << 20,
                                       &fx->transport, err, sizeof err) == 0,
                   "%s", err);
    ck_assert_int_eq (raft_transport_set_peer (fx->leader, "F",
                                               fx->follower_addr), 0);
    fx->fio = raft_fio_new ();
    raft_fio_set_nosync (fx->fio, true);
    char dir [600];
    snprintf (dir, sizeof dir, "%s/shard-0", fx->root);
    raft_group_config_t gc = {
        .shard = 0, .dir = dir, .bootstrap = false,
        .election_ticks = 10, .heartbeat_ticks = 2,
        .max_value_bytes = 1024, .storage_module = "bitcask",
        .propose_timeout_ms = 1000, .read_timeout_ms = 1000,
        .transport = fx->transport, .fio = fx->fio,
    };
    snprintf (gc.self.node_id, sizeof gc.self.node_id, "F");
    snprintf (gc.self.peer_addr, sizeof gc.self.peer_addr, "%s",
              fx->follower_addr);
    ck_assert_msg (raft_group_new (&gc, &fx->group, err, sizeof err) == 0,
                   "%s", err);
    tg_meet_leader (fx->group, fx->transport, fx->leader, fx->leader_addr);
    //  Entry 1 first: it creates the log's segment (synced inline) and
    //  persists term 1, so that the tests' appends sync the log alone.
    s_step_append (fx, 1, 1);
    ck_assert (raft_group_ready_write (fx->group));
    raft_group_ready_sync (fx->group);
    ck_assert_int_eq (raft_group_ready_finish (fx->group), 0);
    s_expect_answer (fx, RAFT_MSG_APPEND_RESP, 1);
}

static void
s_close (s_fixture_t *fx)
{
    raft_group_destroy (&fx->group);
    raft_fio_destroy (&fx->fio);
    raft_transport_destroy (&fx->transport);
    raft_transport_destroy (&fx->leader);
    tu_rmrf (fx->root);
    free (fx->root);
    zstr_free (&fx->leader_addr);
    zstr_free (&fx->follower_addr);
}

/*  The leader's append of entries first..last (term 1, empty commands)
    after entry first - 1.  */
static void
s_step_append (s_fixture_t *fx, uint64_t first, uint64_t last)
{
    raft_entry_t ents [8];
    size_t n = (size_t) (last - first + 1);
    ck_assert (n <= 8);
    for (size_t i = 0; i < n; i++)
        ents [i] = (raft_entry_t) { 1, first + i, RAFT_ENTRY_NORMAL, 0, NULL };
    raft_msg_t m;
    memset (&m, 0, sizeof m);
    m.group = 0;
    m.from = raft_members_id ("L");
    m.to = raft_members_id ("F");
    m.type = RAFT_MSG_APPEND;
    m.term = 1;
    m.log_index = first - 1;
    m.log_term = first > 1 ? 1 : 0;
    m.n_entries = n;
    m.entries = ents;
    ck_assert_int_eq (raft_group_step (fx->group, &m), 0);
}

/*  Flushes the follower's transport; returns the messages it sent.  */
static uint64_t
s_flush (s_fixture_t *fx)
{
    raft_transport_flush (fx->transport);
    return raft_transport_stats (fx->transport).messages_sent;
}

/*  Flushes the follower's transport and waits up to 5 s for its batch at
    the leader; checks the first Raft message: an acceptance of `type` up
    to `index`.  */
static void
s_expect_answer (s_fixture_t *fx, uint32_t type, uint64_t index)
{
    s_flush (fx);
    zpoller_t *poller = zpoller_new (raft_transport_sock (fx->leader), NULL);
    ck_assert_ptr_nonnull (zpoller_wait (poller, 5000));
    zpoller_destroy (&poller);
    char *from = NULL;
    zmsg_t *batch = NULL;
    ck_assert_int_ge (raft_transport_recv (fx->leader, &from, &batch), 1);
    ck_assert_str_eq (from, "F");
    zframe_t *frame = zmsg_first (batch);
    raft_wire_frame_t wf;
    char err [256] = "";
    ck_assert_msg (raft_wire_decode (zframe_data (frame), zframe_size (frame),
                                     &wf, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq (wf.kind, RAFT_WIRE_RAFT);
    ck_assert_uint_eq (wf.msg.type, type);
    ck_assert_uint_eq (wf.msg.index, index);
    ck_assert (!wf.msg.reject);
    raft_wire_frame_clear (&wf);
    zmsg_destroy (&batch);
    zstr_free (&from);
}

START_TEST (test_follower_answers_after_sync)
{
    s_fixture_t fx;
    s_open (&fx);
    uint64_t sent = s_flush (&fx);
    s_step_append (&fx, 2, 3);
    unsigned syncs = raft_fio_count (fx.fio, RAFT_FIO_SYNC);
    ck_assert (raft_group_ready_write (fx.group));
    ck_assert (raft_group_ready_unsynced (fx.group));
    //  Written, not synced: no answer may have left.
    ck_assert_uint_eq (s_flush (&fx), sent);
    ck_assert_uint_eq (raft_fio_count (fx.fio, RAFT_FIO_SYNC), syncs);
    raft_group_ready_sync (fx.group);
    ck_assert_uint_eq (raft_fio_count (fx.fio, RAFT_FIO_SYNC), syncs + 1);
    ck_assert_uint_eq (s_flush (&fx), sent);
    ck_assert_int_eq (raft_group_ready_finish (fx.group), 0);
    //  Synced: the ack of entry 3 goes.
    ck_assert_uint_eq (s_flush (&fx), sent + 1);
    s_expect_answer (&fx, RAFT_MSG_APPEND_RESP, 3);
    s_close (&fx);
}
END_TEST

START_TEST (test_follower_silent_when_sync_fails)
{
    s_fixture_t fx;
    s_open (&fx);
    uint64_t sent = s_flush (&fx);
    s_step_append (&fx, 2, 3);
    raft_fio_fail (fx.fio, RAFT_FIO_SYNC, 1, EIO, false, false);
    ck_assert (raft_group_ready_write (fx.group));
    ck_assert (!raft_fio_fired (fx.fio));
    ck_assert_uint_eq (s_flush (&fx), sent);
    raft_group_ready_sync (fx.group);
    ck_assert (raft_fio_fired (fx.fio));
    ck_assert_int_eq (raft_group_ready_finish (fx.group), -EIO);
    //  The group is failed for good: no ack for the lost entries, ever.
    ck_assert_int_eq (raft_group_process (fx.group), -EIO);
    ck_assert (!raft_group_ready_write (fx.group));
    ck_assert_uint_eq (s_flush (&fx), sent);
    //  Power loss: only entry 1 was ever durable.
    raft_group_destroy (&fx.group);
    ck_assert_int_eq (raft_fio_drop_unsynced (fx.fio), 0);
    char path [700];
    snprintf (path, sizeof path, "%s/shard-0/log", fx.root);
    raft_log_t *log = tu_open (path, 0, NULL);
    ck_assert_uint_eq (raft_log_last_index (log), 1);
    raft_log_destroy (&log);
    s_close (&fx);
}
END_TEST

int
main (void)
{
    Suite *suite = suite_create ("raft_group_sync");
    TCase *tc = tcase_create ("sync");
    tcase_set_timeout (tc, 30);
    tcase_add_test (tc, test_pool);
    tcase_add_test (tc, test_follower_answers_after_sync);
    tcase_add_test (tc, test_follower_silent_when_sync_fails);
    suite_add_tcase (suite, tc);
    return titan_check_run (suite, false);
}
