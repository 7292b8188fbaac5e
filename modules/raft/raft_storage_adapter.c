/*  raft_storage_adapter: raft_storage_t over raft_log + raft_snapshot_store;
    see raft_storage_adapter.h.  Entries read from the log come back as one
    block; the core wants an array whose entries own their data (freed by
    raft_entries_free), so each entry's data is copied once.  */
#include "raft_storage_adapter.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct raft_storage_adapter {
    raft_storage_t iface;
    raft_log_t *log;
    raft_snapshot_store_t *snaps;
    raft_snapshot_meta_t snap;
    bool expose_slack;         /* serve log entries at/below snap.index */
    raft_snapshot_reader_t *reader;   /* open on snap.index, for chunks */
};

static void
s_put32 (uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p [i] = (uint8_t) (v >> (8 * i));
}

static void
s_put64 (uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p [i] = (uint8_t) (v >> (8 * i));
}

static uint32_t
s_get32 (const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p [i];
    return v;
}

static uint64_t
s_get64 (const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p [i];
    return v;
}

size_t
raft_storage_conf_encode (const raft_config_t *cfg, uint8_t *out)
{
    s_put32 (out, cfg->n_voters);
    s_put32 (out + 4, cfg->n_learners);
    size_t pos = 8;
    for (uint32_t i = 0; i < cfg->n_voters; i++, pos += 8)
        s_put64 (out + pos, cfg->voters [i]);
    for (uint32_t i = 0; i < cfg->n_learners; i++, pos += 8)
        s_put64 (out + pos, cfg->learners [i]);
    return pos;
}

int
raft_storage_conf_decode (const uint8_t *data, size_t size, raft_config_t *cfg)
{
    memset (cfg, 0, sizeof *cfg);
    if (size < 8)
        return TITAN_ECORRUPT;
    uint32_t nv = s_get32 (data), nl = s_get32 (data + 4);
    if (nv > RAFT_MAX_MEMBERS || nl > RAFT_MAX_MEMBERS
    ||  nv + nl > RAFT_MAX_MEMBERS || size != RAFT_CONF_BYTES (nv, nl))
        return TITAN_ECORRUPT;
    size_t pos = 8;
    for (uint32_t i = 0; i < nv; i++, pos += 8)
        cfg->voters [i] = s_get64 (data + pos);
    for (uint32_t i = 0; i < nl; i++, pos += 8)
        cfg->learners [i] = s_get64 (data + pos);
    cfg->n_voters = nv;
    cfg->n_learners = nl;
    return 0;
}

static int
s_map (int rc)
{
    if (rc == -ERANGE)
        return RAFT_ECOMPACTED;
    if (rc == TITAN_ENOTFOUND)
        return RAFT_EUNAVAILABLE;
    return rc;
}

static uint64_t
s_first_index (void *ud)
{
    raft_storage_adapter_t *self = ud;
    uint64_t first = raft_log_first_index (self->log);
    if (self->expose_slack && first <= self->snap.index)
        return first;
    return first > self->snap.index + 1 ? first : self->snap.index + 1;
}

static uint64_t
s_last_index (void *ud)
{
    raft_storage_adapter_t *self = ud;
    uint64_t last = raft_log_last_index (self->log);
    return last > self->snap.index ? last : self->snap.index;
}

static int
s_term (void *ud, uint64_t index, uint64_t *term)
{
    raft_storage_adapter_t *self = ud;
    if (index == self->snap.index) {
        *term = self->snap.term;
        return 0;
    }
    if (index < self->snap.index && !self->expose_slack)
        return RAFT_ECOMPACTED;
    return s_map (raft_log_term (self->log, index, term));
}

static int
s_entries (void *ud, uint64_t lo, uint64_t hi, size_t max_bytes,
           raft_entry_t **out, size_t *n)
{
    raft_storage_adapter_t *self = ud;
    *out = NULL;
    *n = 0;
    if (lo <= self->snap.index && !self->expose_slack)
        return RAFT_ECOMPACTED;
    raft_log_entry_t *block = NULL;
    size_t count = 0;
    int rc = raft_log_entries (self->log, lo, hi, max_bytes, &block, &count);
    if (rc)
        return s_map (rc);
    raft_entry_t *ents = calloc (count ? count : 1, sizeof *ents);
    if (!ents) {
        free (block);
        return -ENOMEM;
    }
    for (size_t i = 0; i < count; i++) {
        ents [i].index = block [i].index;
        ents [i].term = block [i].term;
        ents [i].type = block [i].type;
        ents [i].size = block [i].size;
        if (block [i].size) {
            ents [i].data = malloc (block [i].size);
            if (!ents [i].data) {
                raft_entries_free (&ents, i);
                free (block);
                return -ENOMEM;
            }
            memcpy (ents [i].data, block [i].data, block [i].size);
        }
    }
    free (block);
    *out = ents;
    *n = count;
    return 0;
}

static int
s_snapshot_meta (void *ud, raft_snapshot_meta_t *meta)
{
    raft_storage_adapter_t *self = ud;
    *meta = self->snap;
    return 0;
}

static int
s_snapshot_read (void *ud, uint64_t index, uint64_t offset, uint8_t *buf,
                 size_t cap, size_t *n, uint64_t *total)
{
    raft_storage_adapter_t *self = ud;
    *n = 0;
    *total = 0;
    if (index == 0 || index != self->snap.index)
        return RAFT_ECOMPACTED;
    if (self->reader && raft_snapshot_reader_index (self->reader) != index)
        raft_snapshot_reader_destroy (&self->reader);
    if (!self->reader) {
        /* opened once per snapshot: opening verifies the whole file */
        int rc = raft_snapshot_store_open_index (self->snaps, index,
                                                 &self->reader);
        if (rc == TITAN_ENOTFOUND)
            return RAFT_ECOMPACTED;
        if (rc)
            return rc;
    }
    *total = raft_snapshot_reader_data_size (self->reader);
    if (offset > *total)
        return -EINVAL;
    return raft_snapshot_reader_pread (self->reader, offset, buf, cap, n);
}

int
raft_storage_adapter_new (raft_log_t *log, raft_snapshot_store_t *snaps,
                          raft_storage_adapter_t **self_p, char *err,
                          size_t err_size)
{
    *self_p = NULL;
    raft_storage_adapter_t *self = calloc (1, sizeof *self);
    if (!self)
        return -ENOMEM;
    self->log = log;
    self->snaps = snaps;
    raft_snapshot_reader_t *reader = NULL;
    int rc = raft_snapshot_store_open_latest (snaps, &reader);
    if (rc == 0) {
        self->snap.index = raft_snapshot_reader_index (reader);
        self->snap.term = raft_snapshot_reader_term (reader);
        uint32_t conf_size = 0;
        const void *conf = raft_snapshot_reader_conf (reader, &conf_size);
        rc = raft_storage_conf_decode (conf, conf_size, &self->snap.config);
        if (rc)
            snprintf (err, err_size, "snapshot %llu: bad configuration bytes",
                      (unsigned long long) self->snap.index);
        raft_snapshot_reader_destroy (&reader);
    }
    else
    if (rc == TITAN_ENOTFOUND)
        rc = 0;
    else
        snprintf (err, err_size, "reading the latest snapshot: %s",
                  raft_snapshot_store_errmsg (snaps));
    if (rc) {
        free (self);
        return rc;
    }
    self->iface.ud = self;
    self->iface.first_index = s_first_index;
    self->iface.last_index = s_last_index;
    self->iface.term = s_term;
    self->iface.entries = s_entries;
    self->iface.snapshot_meta = s_snapshot_meta;
    self->iface.snapshot_read = s_snapshot_read;
    *self_p = self;
    return 0;
}

void
raft_storage_adapter_destroy (raft_storage_adapter_t **self_p)
{
    if (*self_p) {
        raft_snapshot_reader_destroy (&(*self_p)->reader);
        free (*self_p);
        *self_p = NULL;
    }
}

const raft_storage_t *
raft_storage_adapter_iface (raft_storage_adapter_t *self)
{
    return &self->iface;
}

void
raft_storage_adapter_set_snapshot (raft_storage_adapter_t *self,
                                   const raft_snapshot_meta_t *meta)
{
    if (self->reader && raft_snapshot_reader_index (self->reader) != meta->index)
        raft_snapshot_reader_destroy (&self->reader);
    self->snap = *meta;
}

void
raft_storage_adapter_expose_slack (raft_storage_adapter_t *self, bool on)
{
    self->expose_slack = on;
}
