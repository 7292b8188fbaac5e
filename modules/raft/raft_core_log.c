/*  The Raft core's view of its log: persisted storage plus unstable tail.

    The log seen by the algorithm is the storage's snapshot and entries
    overlaid by what the core holds in memory: a snapshot received from the
    leader and not yet persisted (pending_snap) and the unstable entries
    u_off .. u_off + n_unstable - 1, which take precedence over any stored
    entry at the same or a later index (a truncation by a new leader shows
    up as unstable entries starting below the stored last index; the caller
    overwrites the stored suffix when it persists them).

    The configuration history lives here too: a stack of (index, config)
    whose bottom is the configuration as of the applied index and whose top
    is the latest one appended, so that a truncation can roll back an
    uncommitted change and a snapshot can record the applied one.
*/
#include <stdlib.h>
#include <string.h>
#include "raft_core_impl.h"

void
raft_entries_free (raft_entry_t **entries_p, size_t n)
{
    if (*entries_p) {
        for (size_t i = 0; i < n; i++)
            free ((*entries_p)[i].data);
        free (*entries_p);
        *entries_p = NULL;
    }
}

int
rc_copy_entry (raft_entry_t *dst, const raft_entry_t *src)
{
    *dst = *src;
    dst->data = NULL;
    if (src->size) {
        dst->data = malloc (src->size);
        if (!dst->data)
            return -ENOMEM;
        memcpy (dst->data, src->data, src->size);
    }
    return 0;
}

uint64_t
rc_first_index (const raft_t *r)
{
    if (r->pending_snap)
        return r->pending_snap->meta.index + 1;
    return r->st->first_index (r->st->ud);
}

uint64_t
rc_last_index (const raft_t *r)
{
    if (r->n_unstable)
        return r->u_off + r->n_unstable - 1;
    if (r->pending_snap)
        return r->pending_snap->meta.index;
    return r->st->last_index (r->st->ud);
}

/*  Highest index that is persisted and still part of the log.  */
uint64_t
rc_stable_last (const raft_t *r)
{
    if (r->pending_snap)
        return r->pending_snap->meta.index;
    uint64_t last = r->st->last_index (r->st->ud);
    if (r->n_unstable && r->u_off - 1 < last)
        last = r->u_off - 1;
    return last;
}

int
rc_term (const raft_t *r, uint64_t index, uint64_t *term)
{
    if (r->n_unstable && index >= r->u_off) {
        if (index >= r->u_off + r->n_unstable)
            return RAFT_EUNAVAILABLE;
        *term = r->unstable[index - r->u_off].term;
        return 0;
    }
    if (r->pending_snap) {
        if (index == r->pending_snap->meta.index) {
            *term = r->pending_snap->meta.term;
            return 0;
        }
        return index < r->pending_snap->meta.index ? RAFT_ECOMPACTED
                                                   : RAFT_EUNAVAILABLE;
    }
    return r->st->term (r->st->ud, index, term);
}

/*  The term of the last entry.  A storage failure makes the core fail
    (sticky) and returns UINT64_MAX, which no candidate's log can beat.  */
uint64_t
rc_last_term (raft_t *r)
{
    uint64_t t = 0;
    int rc = rc_term (r, rc_last_index (r), &t);
    if (rc) {
        rc_fail (r, rc);
        if (!r->failed)
            r->failed = TITAN_ECORRUPT;
        return UINT64_MAX;
    }
    return t;
}

bool
rc_up_to_date (raft_t *r, uint64_t last_index, uint64_t last_term)
{
    uint64_t my_term = rc_last_term (r);
    if (r->failed)
        return false;
    return last_term > my_term
        || (last_term == my_term && last_index >= rc_last_index (r));
}

static int
s_unstable_reserve (raft_t *r, size_t extra)
{
    if (r->n_unstable + extra <= r->cap_unstable)
        return 0;
    size_t cap = r->cap_unstable ? r->cap_unstable * 2 : 16;
    while (cap < r->n_unstable + extra)
        cap *= 2;
    raft_entry_t *grown = realloc (r->unstable, cap * sizeof *grown);
    if (!grown)
        return -ENOMEM;
    r->unstable = grown;
    r->cap_unstable = cap;
    return 0;
}

void
rc_clear_unstable (raft_t *r)
{
    for (size_t i = 0; i < r->n_unstable; i++)
        free (r->unstable[i].data);
    r->n_unstable = 0;
}

/*  Appends copies of ents (consecutive, ents[0].index <= last + 1) after
    dropping every entry at or above ents[0].index.  */
static int
s_truncate_append (raft_t *r, const raft_entry_t *ents, size_t n)
{
    if (n == 0)
        return 0;
    uint64_t after = ents[0].index;
    if (r->n_unstable == 0)
        r->u_off = after;
    else if (after <= r->u_off) {
        rc_clear_unstable (r);
        r->u_off = after;
    }
    else if (after < r->u_off + r->n_unstable) {
        for (size_t i = after - r->u_off; i < r->n_unstable; i++)
            free (r->unstable[i].data);
        r->n_unstable = after - r->u_off;
    }
    rc_hist_truncate (r, after);
    int rc = s_unstable_reserve (r, n);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        rc = rc_copy_entry (&r->unstable[r->n_unstable], &ents[i]);
        if (rc)
            return rc;
        r->n_unstable++;
        rc = rc_hist_note_entry (r, &ents[i]);
        if (rc)
            return rc;
    }
    return 0;
}

int
rc_append_local (raft_t *r, uint64_t term, raft_entry_type_t type,
                 const void *data, uint32_t size)
{
    raft_entry_t e = { .term = term, .index = rc_last_index (r) + 1,
                       .type = type, .size = size, .data = (uint8_t *) data };
    return s_truncate_append (r, &e, 1);
}

/*  Follower side of an APPEND whose previous entry matched: skips the
    entries already present, truncates at the first conflict and appends
    the rest.  */
int
rc_log_accept (raft_t *r, const raft_entry_t *ents, size_t n)
{
    uint64_t last = rc_last_index (r);
    size_t k = 0;
    for (; k < n; k++) {
        if (ents[k].index > last)
            break;
        uint64_t t;
        int rc = rc_term (r, ents[k].index, &t);
        if (rc == RAFT_ECOMPACTED)
            continue;              /* below our snapshot: committed, equal */
        if (rc)
            return rc;
        if (t != ents[k].term)
            break;
    }
    return s_truncate_append (r, ents + k, n - k);
}

/*  Copies of the entries [lo, hi), at most max_bytes of data (at least one
    entry), from storage then the unstable tail.  */
int
rc_log_slice (const raft_t *r, uint64_t lo, uint64_t hi, size_t max_bytes,
              raft_entry_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (lo >= hi)
        return 0;
    if (lo < rc_first_index (r))
        return RAFT_ECOMPACTED;
    if (hi > rc_last_index (r) + 1)
        return RAFT_EUNAVAILABLE;
    raft_entry_t *ents = NULL;
    size_t count = 0;
    size_t bytes = 0;
    uint64_t ustart = r->n_unstable ? r->u_off : rc_last_index (r) + 1;
    if (lo < ustart) {
        uint64_t shi = hi < ustart ? hi : ustart;
        int rc = r->st->entries (r->st->ud, lo, shi, max_bytes, &ents, &count);
        if (rc)
            return rc;
        for (size_t i = 0; i < count; i++)
            bytes += ents[i].size;
        if (count < shi - lo || bytes >= max_bytes || shi == hi) {
            *out = ents;
            *n = count;
            return 0;
        }
        lo = shi;
    }
    size_t want = hi - lo;
    raft_entry_t *grown = realloc (ents, (count + want) * sizeof *grown);
    if (!grown) {
        raft_entries_free (&ents, count);
        return -ENOMEM;
    }
    ents = grown;
    for (uint64_t i = lo; i < hi; i++) {
        const raft_entry_t *src = &r->unstable[i - r->u_off];
        if (count > 0 && bytes + src->size > max_bytes)
            break;
        int rc = rc_copy_entry (&ents[count], src);
        if (rc) {
            raft_entries_free (&ents, count);
            return rc;
        }
        count++;
        bytes += src->size;
    }
    *out = ents;
    *n = count;
    return 0;
}

/* ---------------------------------------------------------------------- */
/* configuration history                                                   */

const raft_config_t *
rc_cfg (const raft_t *r)
{
    return &r->hist[r->n_hist - 1].cfg;
}

uint64_t
rc_cfg_index (const raft_t *r)
{
    return r->hist[r->n_hist - 1].index;
}

int
rc_hist_push (raft_t *r, uint64_t index, const raft_config_t *cfg)
{
    if (r->n_hist == r->cap_hist) {
        size_t cap = r->cap_hist ? r->cap_hist * 2 : 4;
        cfg_hist_t *grown = realloc (r->hist, cap * sizeof *grown);
        if (!grown)
            return -ENOMEM;
        r->hist = grown;
        r->cap_hist = cap;
    }
    r->hist[r->n_hist].index = index;
    r->hist[r->n_hist].cfg = *cfg;
    r->n_hist++;
    return 0;
}

/*  Forgets configurations appended at or after from_index (the entries
    carrying them are being overwritten).  The base is never removed: it
    is committed.  */
void
rc_hist_truncate (raft_t *r, uint64_t from_index)
{
    while (r->n_hist > 1 && r->hist[r->n_hist - 1].index >= from_index)
        r->n_hist--;
}

/*  Drops history the applied index has moved past.  */
void
rc_hist_prune (raft_t *r)
{
    size_t drop = 0;
    while (drop + 1 < r->n_hist && r->hist[drop + 1].index <= r->applied)
        drop++;
    if (drop) {
        memmove (r->hist, r->hist + drop, (r->n_hist - drop) * sizeof *r->hist);
        r->n_hist -= drop;
    }
}

void
rc_hist_reset (raft_t *r, uint64_t index, const raft_config_t *cfg)
{
    r->hist[0].index = index;
    r->hist[0].cfg = *cfg;
    r->n_hist = 1;
}

/*  Records the configuration carried by e, if it is a conf entry.  A
    malformed conf entry is ignored by every member alike.  */
int
rc_hist_note_entry (raft_t *r, const raft_entry_t *e)
{
    if (e->type != RAFT_ENTRY_CONF)
        return 0;
    raft_conf_op_t op;
    uint64_t node;
    if (raft_conf_decode (e->data, e->size, &op, &node) != 0)
        return 0;
    raft_config_t cfg = *rc_cfg (r);
    if (raft_config_apply (&cfg, op, node) != 0)
        return 0;
    return rc_hist_push (r, e->index, &cfg);
}

const raft_config_t *
raft_applied_config (const raft_t *self)
{
    const cfg_hist_t *best = &self->hist[0];
    for (size_t i = 1; i < self->n_hist; i++)
        if (self->hist[i].index <= self->applied)
            best = &self->hist[i];
    return &best->cfg;
}

int
raft_term_at (const raft_t *self, uint64_t index, uint64_t *term)
{
    return rc_term (self, index, term);
}
