/*  Bitcask scrub (bc_scrub.h): slices of the keydir copied under the read
    lock, then each key read back through bc_read_record without any lock
    held between keys, so writers wait at most for one slice's copy.  */
#include "bc_internal.h"
#include "bc_scrub.h"

#include "titan/status.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Keys copied per slice. */
#define SLICE_KEYS 64

struct bc_scrubber {
    uint64_t rate;               /* bytes per second, 0: unthrottled */
    double tokens;               /* bytes the bucket allows now */
    int64_t refilled_us;
    size_t cursor;               /* keydir slot of the pass */
    int64_t pass_start_us;
    uint64_t pass_errors;
    bc_scrub_stats_t st;
};

/* One slice: keys packed in `keys`, their lengths in `lens`. */
typedef struct {
    uint8_t *keys;
    size_t used, cap;
    uint32_t lens [SLICE_KEYS];
    size_t n;
    bool oom;
} s_slice_t;

static void
s_collect (const uint8_t *key, size_t len, const bc_loc_t *loc, void *arg)
{
    (void) loc;
    s_slice_t *sl = arg;
    if (sl->oom || sl->n == SLICE_KEYS)
        return;
    if (sl->used + len > sl->cap) {
        size_t cap = sl->cap ? sl->cap : 4096;
        while (cap < sl->used + len)
            cap *= 2;
        uint8_t *k = realloc (sl->keys, cap);
        if (!k) {
            sl->oom = true;
            return;
        }
        sl->keys = k;
        sl->cap = cap;
    }
    memcpy (sl->keys + sl->used, key, len);
    sl->used += len;
    sl->lens [sl->n++] = (uint32_t) len;
}

bc_scrubber_t *
bc_scrubber_new (uint64_t bytes_per_sec)
{
    bc_scrubber_t *self = calloc (1, sizeof *self);
    if (self)
        self->rate = bytes_per_sec;
    return self;
}

void
bc_scrubber_destroy (bc_scrubber_t **self_p)
{
    if (*self_p) {
        free (*self_p);
        *self_p = NULL;
    }
}

bool
bc_scrubber_start (bc_scrubber_t *self, int64_t now_us)
{
    if (self->st.running)
        return false;
    self->st.running = true;
    self->cursor = 0;
    self->pass_start_us = now_us;
    self->pass_errors = 0;
    self->refilled_us = now_us;
    self->tokens = 0;
    return true;
}

/* The bytes this step may read. */
static uint64_t
s_budget (bc_scrubber_t *self, int64_t now_us)
{
    if (!self->rate)
        return BC_SCRUB_STEP_MAX;
    if (now_us > self->refilled_us) {
        self->tokens += (double) self->rate
                      * (double) (now_us - self->refilled_us) / 1e6;
        self->refilled_us = now_us;
    }
    double cap = (double) self->rate / 4;
    if (self->tokens > cap)
        self->tokens = cap;
    if (self->tokens <= 0)
        return 0;
    return self->tokens > BC_SCRUB_STEP_MAX ? BC_SCRUB_STEP_MAX
                                            : (uint64_t) self->tokens + 1;
}

int
bc_scrubber_step (bc_scrubber_t *self, bc_engine_t *engine, int64_t now_us,
                  bc_scrub_bad_fn *bad, void *arg)
{
    if (!self->st.running)
        return 0;
    uint64_t budget = s_budget (self, now_us);
    uint64_t done = 0;
    s_slice_t sl = { NULL, 0, 0, { 0 }, 0, false };
    int rc = 0;
    bool end = false;
    while (done < budget && !end && rc == 0) {
        sl.used = sl.n = 0;
        pthread_rwlock_rdlock (&engine->kd_lock);
        end = bc_keydir_walk (engine->keydir, &self->cursor, SLICE_KEYS,
                              s_collect, &sl);
        pthread_rwlock_unlock (&engine->kd_lock);
        if (sl.oom) {
            rc = -ENOMEM;
            break;
        }
        size_t off = 0;
        for (size_t i = 0; i < sl.n; i++) {
            const uint8_t *key = sl.keys + off;
            size_t len = sl.lens [i];
            off += len;
            uint8_t *buf;
            bc_record_t rec;
            bc_loc_t loc;
            char err [300];
            int r = bc_read_record (engine, key, len, bc_keydir_hash (key, len),
                                    &buf, &rec, &loc, err, sizeof err);
            if (r == 0) {
                free (buf);
                self->st.records++;
                self->st.bytes += loc.size;
                done += loc.size;
            }
            else
            if (r == TITAN_ECORRUPT) {
                self->st.errors++;
                self->pass_errors++;
                done += loc.size;
                if (bad)
                    bad (key, len, loc.revision, err, arg);
            }
            else
            if (r != TITAN_ENOTFOUND) {      /* deleted meanwhile: fine */
                rc = r;
                break;
            }
        }
    }
    free (sl.keys);
    if (self->rate)
        self->tokens -= (double) done;
    if (rc) {
        self->st.running = false;
        return rc;
    }
    if (end) {
        self->st.running = false;
        self->st.passes++;
        self->st.last_pass_us = (uint64_t) (now_us - self->pass_start_us);
        self->st.last_pass_errors = self->pass_errors;
        return 1;
    }
    return 0;
}

void
bc_scrubber_stats (bc_scrubber_t *self, bc_scrub_stats_t *stats)
{
    *stats = self->st;
}
