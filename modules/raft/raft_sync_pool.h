/*  raft_sync_pool: a small fixed pool of threads that runs a batch of
    blocking jobs (the fdatasyncs of many Raft groups) concurrently and
    returns when all are done.

    The raft module persists the readies of all its groups in phases
    (docs/raft.md, "Persistence"): every group writes, then the files of
    all of them are synced through this pool, then every group sends and
    advances.  Concurrent fdatasyncs of different files share the file
    system's journal commits (ext4, xfs), so N dirty groups cost about one
    sync round, not N in a row.  The calling thread runs jobs too; a batch
    of one job runs on the caller alone, with no thread hand-off.

    A job must only touch what its item owns (one group's log and hard
    state): jobs of one batch run at the same time.  The pool itself is
    driven by one thread (raft_sync_pool_run is not reentrant).
*/
#ifndef RAFT_SYNC_POOL_H_INCLUDED
#define RAFT_SYNC_POOL_H_INCLUDED

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/*  The raft module's setting sync_threads by default: 4 helper threads
    (plus the actor) sync the readies of all groups together.  The Q = 16
    clusters that failed to settle with it were held up by a learner's
    election timer (fixed in the core); measured after the fix:
    +15 % puts on 3 nodes with Q = 16 (docs/benchmarks.md).  */
#define RAFT_SYNC_POOL_THREADS  4

typedef struct raft_sync_pool raft_sync_pool_t;

/*  One job: works on `item`.  */
typedef void (raft_sync_job_fn) (void *item);

/*  Starts a pool of `threads` helper threads (0: every batch runs on the
    caller).  Returns 0 and *self_p (the caller's), -ENOMEM, or the error
    of pthread_create (negative).  */
int raft_sync_pool_new (unsigned threads, raft_sync_pool_t **self_p);

/*  Stops and joins the threads, frees the pool and nulls *self_p.  */
void raft_sync_pool_destroy (raft_sync_pool_t **self_p);

/*  Runs fn (items [i]) for every i < n, on the helper threads and the
    caller at once, and returns when every one has returned.  */
void raft_sync_pool_run (raft_sync_pool_t *self, raft_sync_job_fn *fn,
                         void **items, size_t n);

#ifdef __cplusplus
}
#endif
#endif
