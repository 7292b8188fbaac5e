/*  Bridges a titan_hist_t (include/titan/histogram.h) to the bus payload
    Histogram of proto/bus.proto, for the modules that report latencies.
    Header-only: it needs the generated bus.pb-c.h, which the histogram
    library itself does not.  */
#ifndef TITAN_HISTOGRAM_PB_H_INCLUDED
#define TITAN_HISTOGRAM_PB_H_INCLUDED

#include "titan/histogram.h"
#include "bus.pb-c.h"

/*  Points `out` at the bounds and at `snapshot`'s counts: `snapshot` must
    outlive `out` (both are usually on the stack until packed).  */
static inline void
titan_hist_to_pb (const titan_hist_t *snapshot, Titan__Bus__Histogram *out)
{
    titan__bus__histogram__init (out);
    out->n_upper_bounds_us = TITAN_HIST_BOUNDS;
    out->upper_bounds_us = (uint64_t *) titan_hist_bounds_us;
    out->n_counts = TITAN_HIST_COUNTS;
    out->counts = (uint64_t *) snapshot->counts;
    out->sum_us = snapshot->sum_us;
}

#endif
