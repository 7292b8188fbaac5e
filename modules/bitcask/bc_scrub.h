/*  Bitcask scrub: a background re-read of every record the keydir points
    to, checking each one's CRC, key and revision as a read would.

    A scrubber belongs to one shard's engine and to one thread (the module
    actor, or a benchmark).  A pass walks the keydir in slices
    (bc_keydir_walk, the lock let go between slices), reads each record
    through the engine's read path and reports a damaged one to a callback
    (the module publishes it as kv.corrupt, and the gateway repairs it).
    Rate limit: a token bucket of `bytes_per_sec` bytes (record sizes),
    refilled by the clock passed to each step, holding at most a quarter
    second's worth (a step may overshoot by one slice of 64 records; the
    debt is paid by the next steps); 0 means unthrottled (each step still stops after
    BC_SCRUB_STEP_MAX bytes, so the caller stays responsive).

    Reads go through the file mappings, so they see the page cache: a
    scrub verifies what the kernel returns for the file, which after a
    restart or an eviction is what the disk returns.  Keys added during a
    pass, or moved by a keydir resize, may be missed until the next pass.
*/
#ifndef BC_SCRUB_H_INCLUDED
#define BC_SCRUB_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bc_engine.h"

/* The most bytes one step reads, whatever the rate. */
#define BC_SCRUB_STEP_MAX (4u << 20)

typedef struct bc_scrubber bc_scrubber_t;

/*  Counters of a scrubber since it was created.  */
typedef struct {
    uint64_t passes;             /* complete passes */
    uint64_t records;            /* records verified */
    uint64_t bytes;              /* bytes of those records */
    uint64_t errors;             /* damaged records found */
    uint64_t last_pass_us;       /* duration of the last complete pass */
    uint64_t last_pass_errors;   /* damaged records found by it */
    bool running;                /* a pass is in progress */
} bc_scrub_stats_t;

/*  Called for each damaged record: its key, the revision its keydir entry
    holds, and why (engine message naming file, offset and reason).  The
    key and message are valid during the call only.  */
typedef void (bc_scrub_bad_fn) (const uint8_t *key, size_t key_len,
                                uint64_t revision, const char *why,
                                void *arg);

/*  Creates a scrubber limited to `bytes_per_sec` (0: unthrottled).
    Returns NULL when out of memory.  */
bc_scrubber_t *bc_scrubber_new (uint64_t bytes_per_sec);

/*  Destroys a scrubber and nulls the pointer.  */
void bc_scrubber_destroy (bc_scrubber_t **self_p);

/*  Starts a pass at time `now_us` (monotonic), unless one is running.
    Returns true when it started one.  */
bool bc_scrubber_start (bc_scrubber_t *self, int64_t now_us);

/*  Does the part of the running pass that the rate allows at `now_us`,
    calling `bad` (may be NULL) for each damaged record.  Returns 1 when
    this step completed the pass, 0 when the pass goes on (or none runs),
    or a negative status when the engine failed (the pass is abandoned).  */
int bc_scrubber_step (bc_scrubber_t *self, bc_engine_t *engine,
                      int64_t now_us, bc_scrub_bad_fn *bad, void *arg);

/*  Fills *stats.  */
void bc_scrubber_stats (bc_scrubber_t *self, bc_scrub_stats_t *stats);

#endif
