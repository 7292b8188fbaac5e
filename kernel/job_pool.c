/*  titan_job_pool: see include/titan/job_pool.h.  One mutex guards the current
    batch (function, items, next item to take, items finished); helpers
    sleep on `work` until a batch has items left or the pool stops, the
    caller sleeps on `done` until every item of its batch has finished.
    Items are taken one at a time under the mutex: batches are a few dozen
    jobs of milliseconds each, so the lock is nowhere near contended.  */
#include "titan/job_pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

struct titan_job_pool {
    pthread_mutex_t lock;
    pthread_cond_t work;        /* a batch has items left, or stopping */
    pthread_cond_t done;        /* the batch's last item finished */
    titan_job_fn *fn;       /* current batch */
    void **items;
    size_t n;
    size_t next;                /* next item to take */
    size_t finished;            /* items whose job returned */
    bool stopping;
    pthread_t *threads;
    unsigned n_threads;         /* started */
};

//  Runs items of the current batch until none is left to take.  Called
//  and returns with the lock held.
static void
s_take_jobs (titan_job_pool_t *self)
{
    while (self->next < self->n) {
        titan_job_fn *fn = self->fn;
        void *item = self->items [self->next++];
        pthread_mutex_unlock (&self->lock);
        fn (item);
        pthread_mutex_lock (&self->lock);
        if (++self->finished == self->n)
            pthread_cond_signal (&self->done);
    }
}

static void *
s_helper (void *arg)
{
    titan_job_pool_t *self = arg;
    pthread_mutex_lock (&self->lock);
    while (!self->stopping) {
        if (self->next < self->n)
            s_take_jobs (self);
        else
            pthread_cond_wait (&self->work, &self->lock);
    }
    pthread_mutex_unlock (&self->lock);
    return NULL;
}

int
titan_job_pool_new (unsigned threads, titan_job_pool_t **self_p)
{
    *self_p = NULL;
    titan_job_pool_t *self = calloc (1, sizeof *self);
    if (!self)
        return -ENOMEM;
    if (threads && !(self->threads = calloc (threads, sizeof (pthread_t)))) {
        free (self);
        return -ENOMEM;
    }
    pthread_mutex_init (&self->lock, NULL);
    pthread_cond_init (&self->work, NULL);
    pthread_cond_init (&self->done, NULL);
    for (unsigned i = 0; i < threads; i++) {
        int rc = pthread_create (&self->threads [i], NULL, s_helper, self);
        if (rc) {
            titan_job_pool_destroy (&self);
            return -rc;
        }
        self->n_threads++;
    }
    *self_p = self;
    return 0;
}

void
titan_job_pool_destroy (titan_job_pool_t **self_p)
{
    titan_job_pool_t *self = *self_p;
    if (!self)
        return;
    pthread_mutex_lock (&self->lock);
    self->stopping = true;
    pthread_cond_broadcast (&self->work);
    pthread_mutex_unlock (&self->lock);
    for (unsigned i = 0; i < self->n_threads; i++)
        pthread_join (self->threads [i], NULL);
    pthread_cond_destroy (&self->done);
    pthread_cond_destroy (&self->work);
    pthread_mutex_destroy (&self->lock);
    free (self->threads);
    free (self);
    *self_p = NULL;
}

void
titan_job_pool_run (titan_job_pool_t *self, titan_job_fn *fn,
                    void **items, size_t n)
{
    if (n <= 1 || self->n_threads == 0) {
        for (size_t i = 0; i < n; i++)
            fn (items [i]);
        return;
    }
    pthread_mutex_lock (&self->lock);
    self->fn = fn;
    self->items = items;
    self->n = n;
    self->next = 0;
    self->finished = 0;
    //  Wake only the helpers there is work for (the caller takes one job).
    for (size_t i = 1; i < n && i <= self->n_threads; i++)
        pthread_cond_signal (&self->work);
    s_take_jobs (self);
    while (self->finished < self->n)
        pthread_cond_wait (&self->done, &self->lock);
    //  Nothing of this batch may be touched once the caller has it back.
    self->items = NULL;
    self->n = self->next = self->finished = 0;
    pthread_mutex_unlock (&self->lock);
}
