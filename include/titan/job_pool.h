/*  titan_job_pool: a small fixed pool of threads that runs a batch of
    blocking jobs concurrently and returns when all are done -- the
    fdatasyncs of many Raft groups (raft module, docs/raft.md "Ready
    loop"), of many Bitcask shards (bitcask module, apply_sync =
    interval).  Concurrent fdatasyncs of different files share the file
    system's journal commits (ext4, xfs), so N dirty files cost about one
    sync round, not N in a row.  The calling thread runs jobs too; a batch
    of one job runs on the caller alone, with no thread hand-off.

    A job must only touch what its item owns: jobs of one batch run at the
    same time.  The pool itself is driven by one thread
    (titan_job_pool_run is not reentrant).
*/
#ifndef TITAN_JOB_POOL_H_INCLUDED
#define TITAN_JOB_POOL_H_INCLUDED

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif


typedef struct titan_job_pool titan_job_pool_t;

/*  One job: works on `item`.  */
typedef void (titan_job_fn) (void *item);

/*  Starts a pool of `threads` helper threads (0: every batch runs on the
    caller).  Returns 0 and *self_p (the caller's), -ENOMEM, or the error
    of pthread_create (negative).  */
int titan_job_pool_new (unsigned threads, titan_job_pool_t **self_p);

/*  Stops and joins the threads, frees the pool and nulls *self_p.  */
void titan_job_pool_destroy (titan_job_pool_t **self_p);

/*  Runs fn (items [i]) for every i < n, on the helper threads and the
    caller at once, and returns when every one has returned.  */
void titan_job_pool_run (titan_job_pool_t *self, titan_job_fn *fn,
                         void **items, size_t n);

#ifdef __cplusplus
}
#endif
#endif
