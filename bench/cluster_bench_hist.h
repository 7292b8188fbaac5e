/*  Latency histogram for the cluster benchmark, in the manner of
    HdrHistogram: log-linear buckets (exact below 64 us, then 32 buckets
    per power of two, so a percentile is off by at most 1/32 = 3 %), a
    fixed array, no allocation while recording, and histograms that add
    up (one per client thread, merged at the end).  Values are in
    microseconds; the exact maximum and the sum are kept beside the
    buckets.  */
#ifndef CLUSTER_BENCH_HIST_H_INCLUDED
#define CLUSTER_BENCH_HIST_H_INCLUDED

#include <stdint.h>

#define CB_HIST_EXACT 64               /* values below are exact */
#define CB_HIST_SUB_BITS 5             /* 32 buckets per power of two */
#define CB_HIST_MAX_EXP 40             /* 2^40 us (12 days): the cap */
#define CB_HIST_BUCKETS (CB_HIST_EXACT \
    + (CB_HIST_MAX_EXP - 6 + 1) * (1 << CB_HIST_SUB_BITS))

typedef struct {
    uint64_t counts [CB_HIST_BUCKETS];
    uint64_t count;                    /* values recorded */
    uint64_t max_us;                   /* exact largest value */
    double sum_us;
} cb_hist_t;

/*  Empties the histogram.  */
void cb_hist_reset (cb_hist_t *self);

/*  Records one value (microseconds; values over 2^40 are capped).  */
void cb_hist_record (cb_hist_t *self, uint64_t value_us);

/*  Adds every value of `other` to `self`.  */
void cb_hist_add (cb_hist_t *self, const cb_hist_t *other);

/*  The value at quantile q (0 < q <= 1): the upper bound of the bucket
    holding the ceil(q * count)-th smallest value, never above the exact
    maximum.  0 when the histogram is empty.  */
uint64_t cb_hist_quantile (const cb_hist_t *self, double q);

#endif
