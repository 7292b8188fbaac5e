/*  In-memory raft_storage_t: entries in an array after a snapshot.

    entries[k] holds log index snap.index + 1 + k.  Compaction and
    snapshot installation move the snapshot and drop the covered prefix.
*/
#include <stdlib.h>
#include <string.h>
#include "raft_memstore.h"

struct raft_memstore {
    raft_storage_t iface;
    raft_hard_state_t hs;
    raft_snapshot_meta_t snap;
    uint8_t *snap_data;
    uint32_t snap_size;
    raft_entry_t *ents;
    size_t n;
    size_t cap;
};

static uint64_t
s_first_index (void *ud)
{
    raft_memstore_t *self = ud;
    return self->snap.index + 1;
}

static uint64_t
s_last_index (void *ud)
{
    raft_memstore_t *self = ud;
    return self->snap.index + self->n;
}

static int
s_term (void *ud, uint64_t index, uint64_t *term)
{
    raft_memstore_t *self = ud;
    if (index < self->snap.index)
        return RAFT_ECOMPACTED;
    if (index == self->snap.index) {
        *term = self->snap.term;
        return 0;
    }
    if (index > self->snap.index + self->n)
        return RAFT_EUNAVAILABLE;
    *term = self->ents[index - self->snap.index - 1].term;
    return 0;
}

static int
s_entries (void *ud, uint64_t lo, uint64_t hi, size_t max_bytes,
           raft_entry_t **out, size_t *n)
{
    raft_memstore_t *self = ud;
    *out = NULL;
    *n = 0;
    if (lo <= self->snap.index)
        return RAFT_ECOMPACTED;
    if (hi > self->snap.index + self->n + 1 || lo >= hi)
        return RAFT_EUNAVAILABLE;
    raft_entry_t *res = calloc (hi - lo, sizeof *res);
    if (!res)
        return -ENOMEM;
    size_t count = 0, bytes = 0;
    for (uint64_t i = lo; i < hi; i++) {
        const raft_entry_t *e = &self->ents[i - self->snap.index - 1];
        if (count > 0 && bytes + e->size > max_bytes)
            break;
        res[count] = *e;
        res[count].data = NULL;
        if (e->size) {
            res[count].data = malloc (e->size);
            if (!res[count].data) {
                raft_entries_free (&res, count);
                return -ENOMEM;
            }
            memcpy (res[count].data, e->data, e->size);
        }
        count++;
        bytes += e->size;
    }
    *out = res;
    *n = count;
    return 0;
}

static int
s_snapshot_meta (void *ud, raft_snapshot_meta_t *meta)
{
    raft_memstore_t *self = ud;
    *meta = self->snap;
    return 0;
}

static int
s_snapshot_read (void *ud, uint64_t index, uint64_t offset, uint8_t *buf,
                 size_t cap, size_t *n, uint64_t *total)
{
    raft_memstore_t *self = ud;
    if (index != self->snap.index || index == 0)
        return RAFT_ECOMPACTED;
    if (offset > self->snap_size)
        return -EINVAL;
    size_t left = self->snap_size - offset;
    *n = left < cap ? left : cap;
    if (*n)
        memcpy (buf, self->snap_data + offset, *n);
    *total = self->snap_size;
    return 0;
}

raft_memstore_t *
raft_memstore_new (void)
{
    raft_memstore_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->iface.ud = self;
    self->iface.first_index = s_first_index;
    self->iface.last_index = s_last_index;
    self->iface.term = s_term;
    self->iface.entries = s_entries;
    self->iface.snapshot_meta = s_snapshot_meta;
    self->iface.snapshot_read = s_snapshot_read;
    return self;
}

static void
s_drop_from (raft_memstore_t *self, size_t k)
{
    for (size_t i = k; i < self->n; i++)
        free (self->ents[i].data);
    if (k < self->n)
        self->n = k;
}

void
raft_memstore_destroy (raft_memstore_t **self_p)
{
    if (*self_p) {
        raft_memstore_t *self = *self_p;
        s_drop_from (self, 0);
        free (self->ents);
        free (self->snap_data);
        free (self);
        *self_p = NULL;
    }
}

const raft_storage_t *
raft_memstore_storage (raft_memstore_t *self)
{
    return &self->iface;
}

int
raft_memstore_append (raft_memstore_t *self, const raft_entry_t *ents, size_t n)
{
    if (n == 0)
        return 0;
    uint64_t first = ents[0].index;
    if (first <= self->snap.index || first > self->snap.index + self->n + 1)
        return -EINVAL;
    s_drop_from (self, first - self->snap.index - 1);
    if (self->n + n > self->cap) {
        size_t cap = self->cap ? self->cap : 64;
        while (cap < self->n + n)
            cap *= 2;
        raft_entry_t *grown = realloc (self->ents, cap * sizeof *grown);
        if (!grown)
            return -ENOMEM;
        self->ents = grown;
        self->cap = cap;
    }
    for (size_t i = 0; i < n; i++) {
        raft_entry_t *dst = &self->ents[self->n];
        *dst = ents[i];
        dst->data = NULL;
        if (ents[i].size) {
            dst->data = malloc (ents[i].size);
            if (!dst->data)
                return -ENOMEM;
            memcpy (dst->data, ents[i].data, ents[i].size);
        }
        self->n++;
    }
    return 0;
}

void
raft_memstore_set_hard_state (raft_memstore_t *self, const raft_hard_state_t *hs)
{
    self->hs = *hs;
}

raft_hard_state_t
raft_memstore_hard_state (const raft_memstore_t *self)
{
    return self->hs;
}

static int
s_set_snapshot (raft_memstore_t *self, const raft_snapshot_meta_t *meta,
                const void *data, uint32_t size)
{
    uint8_t *copy = NULL;
    if (size) {
        copy = malloc (size);
        if (!copy)
            return -ENOMEM;
        memcpy (copy, data, size);
    }
    free (self->snap_data);
    self->snap_data = copy;
    self->snap_size = size;
    self->snap = *meta;
    return 0;
}

int
raft_memstore_install_snapshot (raft_memstore_t *self, const raft_snapshot_t *snap)
{
    if (snap->size > UINT32_MAX || (snap->size && !snap->data))
        return -EINVAL;
    int rc = s_set_snapshot (self, &snap->meta, snap->data,
                             (uint32_t) snap->size);
    if (rc)
        return rc;
    s_drop_from (self, 0);
    return 0;
}

int
raft_memstore_compact (raft_memstore_t *self, uint64_t index,
                       const raft_config_t *cfg, const void *data, uint32_t size)
{
    if (index <= self->snap.index || index > self->snap.index + self->n)
        return -EINVAL;
    size_t k = index - self->snap.index;     /* entries to drop */
    raft_snapshot_meta_t meta = { .index = index,
                                  .term = self->ents[k - 1].term,
                                  .config = *cfg };
    int rc = s_set_snapshot (self, &meta, data, size);
    if (rc)
        return rc;
    for (size_t i = 0; i < k; i++)
        free (self->ents[i].data);
    memmove (self->ents, self->ents + k, (self->n - k) * sizeof *self->ents);
    self->n -= k;
    return 0;
}

int
raft_memstore_persist (raft_memstore_t *self, const raft_ready_t *rd)
{
    int rc = 0;
    if (rd->snapshot)
        rc = raft_memstore_install_snapshot (self, rd->snapshot);
    if (rc == 0 && rd->n_entries)
        rc = raft_memstore_append (self, rd->entries, rd->n_entries);
    if (rc == 0 && rd->has_hard_state)
        raft_memstore_set_hard_state (self, &rd->hard_state);
    return rc;
}

const uint8_t *
raft_memstore_snapshot_data (const raft_memstore_t *self, uint32_t *size)
{
    *size = self->snap_size;
    return self->snap_data;
}
