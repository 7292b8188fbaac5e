/*  Titan-KV fixed-bucket latency histograms, shared by the modules that
    measure latencies (gateway calls, Bitcask fsyncs) and read by the
    metrics module through the bus (proto/bus.proto Histogram).

    Every histogram has the same bucket upper bounds, in microseconds
    (titan_hist_bounds_us, from 50 µs to 10 s, roughly 1-2.5-5 steps), so
    that figures from different modules and nodes add up.  Counts are kept
    per bucket (not cumulative) plus one overflow bucket (+Inf); the total
    count is their sum, so a snapshot is always consistent (sum of buckets
    = count).  Updates are relaxed atomic additions: any thread may
    observe, any thread may read.  A histogram is plain memory (no
    constructor): zero it and use it.  */
#ifndef TITAN_HISTOGRAM_H_INCLUDED
#define TITAN_HISTOGRAM_H_INCLUDED

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TITAN_HIST_BOUNDS  17                    /* finite upper bounds */
#define TITAN_HIST_COUNTS  (TITAN_HIST_BOUNDS + 1)  /* + the +Inf bucket */

/*  Upper bounds in microseconds, ascending (read-only).  */
extern const uint64_t titan_hist_bounds_us [TITAN_HIST_BOUNDS];

typedef struct {
    uint64_t counts [TITAN_HIST_COUNTS];   /* per bucket, not cumulative */
    uint64_t sum_us;                       /* sum of observed values */
} titan_hist_t;

/*  Records one observation of `us` microseconds (thread-safe).  */
void titan_hist_observe (titan_hist_t *self, uint64_t us);

/*  Copies a histogram with atomic loads into *out.  */
void titan_hist_read (const titan_hist_t *self, titan_hist_t *out);

/*  Number of observations (the sum of the bucket counts).  */
uint64_t titan_hist_count (const titan_hist_t *self);

/*  Microseconds on the monotonic clock, for measuring durations.  */
uint64_t titan_mono_us (void);

#ifdef __cplusplus
}
#endif
#endif
