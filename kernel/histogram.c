/*  Fixed-bucket latency histograms (include/titan/histogram.h).  The
    bucket search is a short linear scan: 17 bounds, called once per
    request or fsync.  */
#include "titan/histogram.h"

#include <time.h>

const uint64_t titan_hist_bounds_us [TITAN_HIST_BOUNDS] = {
    50, 100, 250, 500,
    1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
    1000000, 2500000, 5000000, 10000000
};

void
titan_hist_observe (titan_hist_t *self, uint64_t us)
{
    size_t i = 0;
    while (i < TITAN_HIST_BOUNDS && us > titan_hist_bounds_us [i])
        i++;
    __atomic_add_fetch (&self->counts [i], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch (&self->sum_us, us, __ATOMIC_RELAXED);
}

void
titan_hist_read (const titan_hist_t *self, titan_hist_t *out)
{
    for (size_t i = 0; i < TITAN_HIST_COUNTS; i++)
        out->counts [i] = __atomic_load_n (&self->counts [i], __ATOMIC_RELAXED);
    out->sum_us = __atomic_load_n (&self->sum_us, __ATOMIC_RELAXED);
}

uint64_t
titan_hist_count (const titan_hist_t *self)
{
    uint64_t n = 0;
    for (size_t i = 0; i < TITAN_HIST_COUNTS; i++)
        n += self->counts [i];
    return n;
}

uint64_t
titan_mono_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}
