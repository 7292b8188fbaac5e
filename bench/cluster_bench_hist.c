/*  Log-linear latency histogram (see cluster_bench_hist.h).  A value v
    >= 64 with its highest set bit at position e falls in the bucket
    64 + (e - 6) * 32 + the 5 bits of v that follow its highest bit; the
    bucket's upper bound is what a quantile reports.  */
#include "cluster_bench_hist.h"

#include <assert.h>
#include <string.h>

#define SUB (1u << CB_HIST_SUB_BITS)

void
cb_hist_reset (cb_hist_t *self)
{
    memset (self, 0, sizeof *self);
}

static unsigned
s_index (uint64_t v)
{
    if (v < CB_HIST_EXACT)
        return (unsigned) v;
    unsigned e = 63u - (unsigned) __builtin_clzll (v);
    unsigned sub = (unsigned) (v >> (e - CB_HIST_SUB_BITS)) & (SUB - 1);
    return CB_HIST_EXACT + (e - 6) * SUB + sub;
}

/*  The largest value that falls in bucket `index`.  */
static uint64_t
s_upper (unsigned index)
{
    if (index < CB_HIST_EXACT)
        return index;
    unsigned e = (index - CB_HIST_EXACT) / SUB + 6;
    uint64_t sub = (index - CB_HIST_EXACT) % SUB;
    uint64_t low = (1ull << e) | (sub << (e - CB_HIST_SUB_BITS));
    return low + (1ull << (e - CB_HIST_SUB_BITS)) - 1;
}

void
cb_hist_record (cb_hist_t *self, uint64_t value_us)
{
    uint64_t cap = (1ull << (CB_HIST_MAX_EXP + 1)) - 1;
    if (value_us > cap)
        value_us = cap;
    self->counts [s_index (value_us)]++;
    self->count++;
    self->sum_us += (double) value_us;
    if (value_us > self->max_us)
        self->max_us = value_us;
}

void
cb_hist_add (cb_hist_t *self, const cb_hist_t *other)
{
    for (unsigned i = 0; i < CB_HIST_BUCKETS; i++)
        self->counts [i] += other->counts [i];
    self->count += other->count;
    self->sum_us += other->sum_us;
    if (other->max_us > self->max_us)
        self->max_us = other->max_us;
}

uint64_t
cb_hist_quantile (const cb_hist_t *self, double q)
{
    assert (q > 0 && q <= 1);
    if (self->count == 0)
        return 0;
    uint64_t rank = (uint64_t) (q * (double) self->count);
    if ((double) rank < q * (double) self->count)
        rank++;                        /* ceil */
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < CB_HIST_BUCKETS; i++) {
        seen += self->counts [i];
        if (seen >= rank) {
            uint64_t upper = s_upper (i);
            return upper < self->max_us ? upper : self->max_us;
        }
    }
    return self->max_us;
}
