/*  raft_group snapshots: log compaction driven by the storage module's
    snapshots, and the install of a snapshot received from the leader.

    A raft snapshot's data is this file's header and the group's own
    replicated state at index A, followed by the storage module's stream:
      header 40 bytes (little-endian): magic "TKVRGS01", u32 version (1),
             u32 state size, u64 A, u64 the storage module's applied index
             As <= A (entries As+1..A have no effect on the storage module:
             no-ops, configuration, member info, duplicates), u32 CRC-32C
             of the state, u32 CRC-32C of the header's first 36 bytes
      state  u32 conf size + the configuration at A (raft_storage_conf_*);
             u32 members + per member (replicated addresses only):
               str node_id, str peer_addr, str client_addr;
             u32 clients + per client: str client_id, u64 last_index,
               u32 count, count x (u64 seq, u64 index, u8 known, u32 code,
               u64 current_revision, u64 deleted)
             (str = u16 length + bytes)
      stream the storage module's kv.snapshot_read bytes, to the end
    Taking one (every snapshot_entries applied entries): with no apply
    batch in flight the group state is captured at its applied index A and
    kv.snapshot_begin is sent; applying pauses only for that round trip,
    so the storage module's snapshot covers exactly A (its applied index
    As is A or the last entry that reached it before A; a higher one is
    dropped and retried).  The stream is then read chunk by chunk, one request in
    flight, into the raft snapshot store; once durable, the core serves it
    (raft_storage_adapter), older snapshots are removed and the log is
    compacted up to A - snapshot_slack, but never past the storage
    module's durable applied index reported with the snapshot (the
    bitcask fsyncs applies lazily, docs/raft.md "Durability": a crash may
    take it back to that index, and the restart replays the log above
    it, so those entries must stay).
    Installing one (a ready's snapshot, or at open when the storage
    module's applied index is below the latest snapshot's As): the core
    hands the chunks over as they arrive (streaming mode) and they are
    written straight to a new snapshot in the store, only the header and
    state kept in memory, so a snapshot of any size costs no more memory
    than a chunk; at the last one the header and state are checked, the
    snapshot committed and the log reset after it within the ready; then, once no batch
    is in flight, the stream goes to kv.snapshot_install in order; when the
    last chunk's reply names As the group's applied index becomes A and the
    address book, dedup table and applied configuration are replaced by the
    snapshot's.  Applying waits for that.  A crash in between resumes the
    install from the local store at the next open.
*/
#include "titan/log.h"
#include "raft_group_impl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "titan/bus_types.h"
#include "titan/crc32c.h"
#include "titan/status.h"

#define HDR_BYTES          40
#define HDR_MAGIC          "TKVRGS01"
#define STATE_MAX_BYTES    (64u << 20)
#define SNAP_TIMEOUT_MS    10000
#define BEGIN_TIMEOUT_MS   2000     /* applying waits for this one */
/* A snapshot of a store this large waits, beyond snapshot_entries, until
   the entries applied since the last one add up to its size, or until
   SCALE_MAX_FACTOR * snapshot_entries entries: copying a large store every
   snapshot_entries entries costs more than the log it frees. */
#define SCALE_MIN_BYTES    (1u << 20)
#define SCALE_MAX_FACTOR   10
#define MEMBERS_MAX        65536
#define CLIENT_ID_MAX      65535
#define SNAP_RETRY_MS      1000
#define INST_RETRY_MS      200
#define INST_MAX_FAILURES  5

/* ------------------------------------------------------------ encoding */

typedef struct {
    uint8_t *buf;
    size_t size, cap;
    bool oom;
} s_out_t;

static void
s_out (s_out_t *o, const void *data, size_t size)
{
    if (o->oom)
        return;
    if (o->size + size > o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 4096;
        while (cap < o->size + size)
            cap *= 2;
        uint8_t *grown = realloc (o->buf, cap);
        if (!grown) {
            o->oom = true;
            return;
        }
        o->buf = grown;
        o->cap = cap;
    }
    memcpy (o->buf + o->size, data, size);
    o->size += size;
}

static void
s_out_u (s_out_t *o, uint64_t v, int bytes)
{
    uint8_t b [8];
    for (int i = 0; i < bytes; i++)
        b [i] = (uint8_t) (v >> (8 * i));
    s_out (o, b, (size_t) bytes);
}

static void
s_out_str (s_out_t *o, const char *s)
{
    size_t n = strlen (s);
    if (n > UINT16_MAX)
        n = UINT16_MAX;
    s_out_u (o, n, 2);
    s_out (o, s, n);
}

typedef struct {
    const uint8_t *p;
    size_t left;
    bool bad;
} s_in_t;

static uint64_t
s_in_u (s_in_t *in, int bytes)
{
    if (in->bad || in->left < (size_t) bytes) {
        in->bad = true;
        return 0;
    }
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = (v << 8) | in->p [i];
    in->p += bytes;
    in->left -= (size_t) bytes;
    return v;
}

/*  Copies a str into buf (cap bytes with the NUL); too long is bad.  */
static void
s_in_str (s_in_t *in, char *buf, size_t cap)
{
    size_t n = (size_t) s_in_u (in, 2);
    if (in->bad || n >= cap || in->left < n) {
        in->bad = true;
        *buf = '\0';
        return;
    }
    memcpy (buf, in->p, n);
    buf [n] = '\0';
    in->p += n;
    in->left -= n;
}

/*  Encodes header + state of the group as of its applied index.  */
static int
s_capture (raft_group_t *self, uint8_t **out_p, size_t *size_p)
{
    s_out_t o = { NULL, 0, 0, false };
    uint8_t zero [HDR_BYTES] = { 0 };
    s_out (&o, zero, HDR_BYTES);
    uint8_t conf [RAFT_CONF_BYTES (RAFT_MAX_MEMBERS, RAFT_MAX_MEMBERS)];
    size_t conf_size = raft_storage_conf_encode (&self->applied_cfg, conf);
    s_out_u (&o, conf_size, 4);
    s_out (&o, conf, conf_size);
    size_t n_members = raft_members_count (self->members), n_rep = 0;
    for (size_t i = 0; i < n_members; i++)
        if (raft_members_at (self->members, i)->replicated)
            n_rep++;
    s_out_u (&o, n_rep, 4);
    for (size_t i = 0; i < n_members; i++) {
        const raft_member_t *m = raft_members_at (self->members, i);
        if (!m->replicated)
            continue;
        s_out_str (&o, m->node_id);
        s_out_str (&o, m->rep_peer_addr);
        s_out_str (&o, m->rep_client_addr);
    }
    s_out_u (&o, zhashx_size (self->dedup), 4);
    for (rg_dedup_t *d = zhashx_first (self->dedup); d;
         d = zhashx_next (self->dedup)) {
        s_out_str (&o, (const char *) zhashx_cursor (self->dedup));
        s_out_u (&o, d->last_index, 8);
        s_out_u (&o, d->count, 4);
        for (uint32_t i = 0; i < d->count; i++) {
            const rg_dedup_rec_t *r = &d->recs [i];
            s_out_u (&o, r->seq, 8);
            s_out_u (&o, r->index, 8);
            s_out_u (&o, r->known ? 1 : 0, 1);
            s_out_u (&o, (uint32_t) r->code, 4);
            s_out_u (&o, r->current_revision, 8);
            s_out_u (&o, r->deleted, 8);
        }
    }
    if (o.oom || o.size - HDR_BYTES > STATE_MAX_BYTES) {
        free (o.buf);
        return o.oom ? -ENOMEM : TITAN_ETOOBIG;
    }
    *out_p = o.buf;
    *size_p = o.size;
    return 0;
}

/*  Fills the header of a captured state (buf: header + state) for
    snapshot index `index` whose storage stream covers `storage_applied`. */
static void
s_header_seal (uint8_t *buf, size_t size, uint64_t index,
               uint64_t storage_applied)
{
    uint32_t state_size = (uint32_t) (size - HDR_BYTES);
    s_out_t h = { buf, 0, HDR_BYTES, false };
    s_out (&h, HDR_MAGIC, 8);
    s_out_u (&h, 1, 4);
    s_out_u (&h, state_size, 4);
    s_out_u (&h, index, 8);
    s_out_u (&h, storage_applied, 8);
    s_out_u (&h, titan_crc32c (0, buf + HDR_BYTES, state_size), 4);
    s_out_u (&h, titan_crc32c (0, buf, 36), 4);
}

/*  Checks a header: returns 0 with the state size and the storage
    module's applied index, or TITAN_ECORRUPT.  */
static int
s_header_check (const uint8_t *hdr, uint64_t index, uint32_t *state_size,
                uint64_t *storage_applied)
{
    s_in_t in = { hdr, HDR_BYTES, false };
    if (memcmp (hdr, HDR_MAGIC, 8) != 0)
        return TITAN_ECORRUPT;
    in.p += 8;
    in.left -= 8;
    uint32_t version = (uint32_t) s_in_u (&in, 4);
    *state_size = (uint32_t) s_in_u (&in, 4);
    uint64_t at = s_in_u (&in, 8);
    *storage_applied = s_in_u (&in, 8);
    s_in_u (&in, 4);
    uint32_t crc = (uint32_t) s_in_u (&in, 4);
    if (version != 1 || at != index || *state_size > STATE_MAX_BYTES
    ||  *storage_applied > index || crc != titan_crc32c (0, hdr, 36))
        return TITAN_ECORRUPT;
    return 0;
}

static uint32_t
s_state_crc (const uint8_t *hdr)
{
    return (uint32_t) hdr [32] | (uint32_t) hdr [33] << 8
         | (uint32_t) hdr [34] << 16 | (uint32_t) hdr [35] << 24;
}

/*  Parses the state; with `apply` replaces the group's address book
    entries, dedup table and applied configuration by it.  Returns 0 or
    TITAN_ECORRUPT / -ENOMEM.  */
static int
s_state_load (raft_group_t *self, const uint8_t *state, size_t size,
              bool apply)
{
    s_in_t in = { state, size, false };
    uint32_t conf_size = (uint32_t) s_in_u (&in, 4);
    raft_config_t cfg;
    if (in.bad || conf_size > in.left
    ||  raft_storage_conf_decode (in.p, conf_size, &cfg))
        return TITAN_ECORRUPT;
    in.p += conf_size;
    in.left -= conf_size;
    uint32_t n_members = (uint32_t) s_in_u (&in, 4);
    if (n_members > MEMBERS_MAX)
        return TITAN_ECORRUPT;
    for (uint32_t i = 0; i < n_members && !in.bad; i++) {
        raft_wire_node_t node;
        memset (&node, 0, sizeof node);
        s_in_str (&in, node.node_id, sizeof node.node_id);
        s_in_str (&in, node.peer_addr, sizeof node.peer_addr);
        s_in_str (&in, node.client_addr, sizeof node.client_addr);
        if (apply && !in.bad)
            rg_note_member (self, &node, true);
    }
    uint32_t n_clients = (uint32_t) s_in_u (&in, 4);
    if (in.bad || n_clients > DEDUP_MAX_CLIENTS)
        return TITAN_ECORRUPT;
    char *client = malloc (CLIENT_ID_MAX + 1);
    if (!client)
        return -ENOMEM;
    if (apply)
        zhashx_purge (self->dedup);
    for (uint32_t i = 0; i < n_clients && !in.bad; i++) {
        s_in_str (&in, client, CLIENT_ID_MAX + 1);
        uint64_t last_index = s_in_u (&in, 8);
        uint32_t count = (uint32_t) s_in_u (&in, 4);
        if (count > DEDUP_WINDOW) {
            in.bad = true;
            break;
        }
        rg_dedup_t d;
        memset (&d, 0, sizeof d);
        d.count = count;
        d.last_index = last_index;
        for (uint32_t k = 0; k < count; k++) {
            d.recs [k].seq = s_in_u (&in, 8);
            d.recs [k].index = s_in_u (&in, 8);
            d.recs [k].known = s_in_u (&in, 1) != 0;
            d.recs [k].code = (int) (uint32_t) s_in_u (&in, 4);
            d.recs [k].current_revision = s_in_u (&in, 8);
            d.recs [k].deleted = s_in_u (&in, 8);
        }
        if (apply && !in.bad) {
            rg_dedup_t *copy = malloc (sizeof *copy);
            if (!copy) {
                free (client);
                return -ENOMEM;
            }
            *copy = d;
            zhashx_update (self->dedup, client, copy);
        }
    }
    free (client);
    if (in.bad || in.left != 0)
        return TITAN_ECORRUPT;
    if (apply)
        self->applied_cfg = cfg;
    return 0;
}

/*  Reads and checks the header and state of the open snapshot `reader`;
    with `apply` loads the state into the group.  Sets *base to the data
    offset where the storage stream starts and *storage_applied to the
    applied index the stream covers.  */
static int
s_reader_state (raft_group_t *self, raft_snapshot_reader_t *reader,
                bool apply, uint64_t *base, uint64_t *storage_applied)
{
    uint8_t hdr [HDR_BYTES];
    size_t n = 0;
    uint32_t state_size = 0;
    uint64_t index = raft_snapshot_reader_index (reader);
    int rc = raft_snapshot_reader_pread (reader, 0, hdr, HDR_BYTES, &n);
    if (rc)
        return rc;
    if (n != HDR_BYTES
    ||  s_header_check (hdr, index, &state_size, storage_applied))
        return TITAN_ECORRUPT;
    if (HDR_BYTES + (uint64_t) state_size > raft_snapshot_reader_data_size (reader))
        return TITAN_ECORRUPT;
    uint8_t *state = malloc (state_size ? state_size : 1);
    if (!state)
        return -ENOMEM;
    rc = raft_snapshot_reader_pread (reader, HDR_BYTES, state, state_size, &n);
    if (rc == 0 && (n != state_size
                    || titan_crc32c (0, state, state_size) != s_state_crc (hdr)))
        rc = TITAN_ECORRUPT;
    if (rc == 0)
        rc = s_state_load (self, state, state_size, apply);
    free (state);
    *base = HDR_BYTES + (uint64_t) state_size;
    return rc;
}

/* ------------------------------------------------------------ open */

void
rg_snapshot_note_conf (raft_group_t *self, uint32_t type, const uint8_t *data,
                       uint32_t size)
{
    raft_conf_op_t op;
    uint64_t node;
    if (type == RAFT_ENTRY_CONF && raft_conf_decode (data, size, &op, &node) == 0)
        raft_config_apply (&self->applied_cfg, op, node);
}

int
rg_snapshot_open (raft_group_t *self, char *err, size_t err_size)
{
    raft_snapshot_meta_t meta;
    raft_storage_adapter_iface (self->adapter)->snapshot_meta (self->adapter,
                                                               &meta);
    if (meta.index == 0)
        return 0;
    raft_snapshot_reader_t *reader = NULL;
    int rc = raft_snapshot_store_open_index (self->snaps, meta.index, &reader);
    uint64_t base = 0, storage_applied = 0;
    if (rc == 0)
        rc = s_reader_state (self, reader, true, &base, &storage_applied);
    if (rc == 0)                /* the next one scales with its size */
        self->snap_last_bytes = raft_snapshot_reader_data_size (reader);
    raft_snapshot_reader_destroy (&reader);
    if (rc) {
        snprintf (err, err_size, "%s/snapshots: snapshot %" PRIu64 ": %s",
                  self->dir, meta.index, rc == TITAN_ECORRUPT
                  ? "bad group state header" : titan_strerror (rc));
        return rc;
    }
    self->applied_cfg = meta.config;
    if (self->cfg.applied < storage_applied) {
        /* a crash during an install: resume it from the store */
        self->installing = true;
        self->inst_index = meta.index;
    }
    return 0;
}

static void s_rx_reset (raft_group_t *self);

void
rg_snapshot_close (raft_group_t *self)
{
    if (self->snap_writer)
        raft_snapshot_writer_abort (&self->snap_writer);
    s_rx_reset (self);
    raft_snapshot_reader_destroy (&self->inst_reader);
    free (self->snap_header);
    self->snap_header = NULL;
    free (self->inst_buf);
    self->inst_buf = NULL;
}

/* ------------------------------------------------------------ taking */

static void
s_send_end (raft_group_t *self, uint64_t snapshot_id)
{
    Titan__Bus__KvSnapshotEnd e = TITAN__BUS__KV_SNAPSHOT_END__INIT;
    e.shard = self->cfg.shard;
    e.snapshot_id = snapshot_id;
    uint8_t buf [32];
    size_t size = titan__bus__kv_snapshot_end__pack (&e, buf);
    uint64_t corr = 0;
    /* fire and forget: the reply is dropped as a late one; an id not
       ended expires after the module's snapshot_idle_ms */
    titan_bus_request (self->cfg.bus, self->storage_module,
                       TITAN_T_KV_SNAPSHOT_END, buf, size, &corr);
}

/*  Abandons the snapshot being taken (releasing the storage module's) and
    retries after `delay_ms`.  */
static void
s_take_abort (raft_group_t *self, int64_t delay_ms)
{
    if (self->snap_state == SNAP_BEGIN && self->snap_corr)
        self->snap_late_corr = self->snap_corr;     /* still unanswered */
    if (self->snap_state == SNAP_READ)
        s_send_end (self, self->snap_id);
    if (self->snap_writer)
        raft_snapshot_writer_abort (&self->snap_writer);
    free (self->snap_header);
    self->snap_header = NULL;
    self->snap_state = SNAP_IDLE;
    self->snap_corr = 0;
    self->snap_retry_at = zclock_mono () + delay_ms;
}

static void
s_send_read (raft_group_t *self)
{
    Titan__Bus__KvSnapshotRead r = TITAN__BUS__KV_SNAPSHOT_READ__INIT;
    r.shard = self->cfg.shard;
    r.snapshot_id = self->snap_id;
    r.offset = self->snap_offset;
    r.max_bytes = self->cfg.snapshot_chunk_bytes;
    uint8_t buf [64];
    size_t size = titan__bus__kv_snapshot_read__pack (&r, buf);
    self->snap_sent_at = zclock_mono ();
    if (titan_bus_request (self->cfg.bus, self->storage_module,
                           TITAN_T_KV_SNAPSHOT_READ, buf, size,
                           &self->snap_corr))
        s_take_abort (self, SNAP_RETRY_MS);
}

static void
s_take_start (raft_group_t *self)
{
    uint64_t term = 0;
    if (raft_log_term (self->log, self->applied, &term))
        return;                    /* not in the log (yet): next time */
    int rc = s_capture (self, &self->snap_header, &self->snap_header_size);
    if (rc) {
        titan_log_warning ("raft group %u: capturing the group state for a "
                      "snapshot: %s", self->cfg.shard, titan_strerror (rc));
        self->snap_retry_at = zclock_mono () + SNAP_RETRY_MS;
        return;
    }
    if (self->q_count == 0 && raft_applied_index (self->core) == self->applied
    &&  !raft_config_same (&self->applied_cfg, raft_applied_config (self->core))) {
        /* the core's view at the same index is authoritative */
        titan_log_error ("raft group %u: applied configuration at %" PRIu64
                    " differs from the core's; using the core's",
                    self->cfg.shard, self->applied);
        self->applied_cfg = *raft_applied_config (self->core);
        free (self->snap_header);
        self->snap_header = NULL;
        rc = s_capture (self, &self->snap_header, &self->snap_header_size);
        if (rc) {
            self->snap_retry_at = zclock_mono () + SNAP_RETRY_MS;
            return;
        }
    }
    self->snap_index = self->applied;
    self->snap_term = term;
    self->snap_cfg = self->applied_cfg;
    Titan__Bus__KvSnapshotBegin b = TITAN__BUS__KV_SNAPSHOT_BEGIN__INIT;
    b.shard = self->cfg.shard;
    uint8_t buf [16];
    size_t size = titan__bus__kv_snapshot_begin__pack (&b, buf);
    self->snap_state = SNAP_BEGIN;
    self->snap_sent_at = zclock_mono ();
    if (titan_bus_request (self->cfg.bus, self->storage_module,
                           TITAN_T_KV_SNAPSHOT_BEGIN, buf, size,
                           &self->snap_corr))
        s_take_abort (self, SNAP_RETRY_MS);
}

/*  The index the log may be compacted up to after the snapshot being
    taken: A - snapshot_slack, bounded by the storage module's durable
    applied index.  */
static uint64_t
s_compact_upto (const raft_group_t *self)
{
    uint64_t upto = self->snap_index > self->cfg.snapshot_slack
                  ? self->snap_index - self->cfg.snapshot_slack : 0;
    return upto < self->snap_durable ? upto : self->snap_durable;
}

/*  The stream is complete: make the snapshot durable, then compact.  */
static void
s_take_finish (raft_group_t *self)
{
    s_send_end (self, self->snap_id);
    self->snap_state = SNAP_IDLE;
    self->snap_corr = 0;
    free (self->snap_header);
    self->snap_header = NULL;
    int rc = raft_snapshot_writer_commit (&self->snap_writer);
    if (rc) {
        titan_log_error ("raft group %u: writing snapshot %" PRIu64 ": %s",
                    self->cfg.shard, self->snap_index,
                    raft_snapshot_store_errmsg (self->snaps));
        self->snap_retry_at = zclock_mono () + SNAP_RETRY_MS;
        return;
    }
    raft_snapshot_meta_t meta = { self->snap_index, self->snap_term,
                                  self->snap_cfg };
    raft_storage_adapter_set_snapshot (self->adapter, &meta);
    self->snaps_taken++;
    self->snap_last_bytes = self->snap_total;
    self->snap_log_bytes = 0;
    rc = raft_snapshot_store_remove_older (self->snaps, self->snap_index);
    if (rc)
        titan_log_warning ("raft group %u: removing old snapshots: %s",
                      self->cfg.shard, titan_strerror (rc));
    uint64_t upto = s_compact_upto (self);
    if (upto >= raft_log_first_index (self->log)) {
        rc = raft_log_compact_prefix (self->log, upto);
        if (rc)
            rg_fail (self, rc, "compacting the log");
    }
    titan_log_info ("raft %s group %u: snapshot at %" PRIu64 " (%" PRIu64
               " bytes); log now starts at %" PRIu64, self->cfg.self.node_id,
               self->cfg.shard, self->snap_index, self->snap_total,
               raft_log_first_index (self->log));
}

static void
s_on_begin (raft_group_t *self, const Titan__Bus__KvSnapshotInfo *r)
{
    if (!r || r->code != TITAN__BUS__CODE__OK) {
        /* UNAVAILABLE (merge), RESOURCE_EXHAUSTED (too many open): later */
        if (r && r->code != TITAN__BUS__CODE__UNAVAILABLE
        &&  r->code != TITAN__BUS__CODE__RESOURCE_EXHAUSTED)
            titan_log_warning ("raft group %u: %s refused a snapshot: %s",
                          self->cfg.shard, self->storage_module,
                          r->message ? r->message : "");
        s_take_abort (self, SNAP_RETRY_MS);
        return;
    }
    self->snap_id = r->snapshot_id;
    self->snap_total = r->total_bytes;
    self->snap_offset = 0;
    self->snap_state = SNAP_READ;
    if (r->applied_index > self->snap_index) {
        titan_log_warning ("raft group %u: %s snapshot covers %" PRIu64 ", "
                      "beyond the applied index %" PRIu64 "; retrying",
                      self->cfg.shard, self->storage_module, r->applied_index,
                      self->snap_index);
        s_take_abort (self, SNAP_RETRY_MS);
        return;
    }
    /* a storage that syncs every apply may not report it */
    self->snap_durable = r->durable_index ? r->durable_index
                                          : r->applied_index;
    s_header_seal (self->snap_header, self->snap_header_size,
                   self->snap_index, r->applied_index);
    uint8_t conf [RAFT_CONF_BYTES (RAFT_MAX_MEMBERS, RAFT_MAX_MEMBERS)];
    size_t conf_size = raft_storage_conf_encode (&self->snap_cfg, conf);
    int rc = raft_snapshot_store_begin (self->snaps, self->snap_index,
                                        self->snap_term, conf,
                                        (uint32_t) conf_size,
                                        &self->snap_writer);
    if (rc == 0)
        rc = raft_snapshot_writer_write (self->snap_writer, self->snap_header,
                                         self->snap_header_size);
    if (rc) {
        titan_log_error ("raft group %u: starting snapshot %" PRIu64 ": %s",
                    self->cfg.shard, self->snap_index, titan_strerror (rc));
        s_take_abort (self, SNAP_RETRY_MS);
        return;
    }
    s_send_read (self);
}

static void
s_on_chunk (raft_group_t *self, const Titan__Bus__KvSnapshotChunk *r)
{
    if (!r || r->code != TITAN__BUS__CODE__OK || r->offset != self->snap_offset
    ||  self->snap_offset + r->data.len > self->snap_total) {
        titan_log_warning ("raft group %u: reading snapshot %" PRIu64 " at %"
                      PRIu64 ": %s", self->cfg.shard, self->snap_index,
                      self->snap_offset, r && r->message && *r->message
                      ? r->message : "bad chunk");
        s_take_abort (self, SNAP_RETRY_MS);
        return;
    }
    int rc = r->data.len ? raft_snapshot_writer_write (self->snap_writer,
                                                       r->data.data,
                                                       r->data.len) : 0;
    if (rc) {
        titan_log_error ("raft group %u: writing snapshot %" PRIu64 ": %s",
                    self->cfg.shard, self->snap_index, titan_strerror (rc));
        s_take_abort (self, SNAP_RETRY_MS);
        return;
    }
    self->snap_offset += r->data.len;
    if (r->done || self->snap_offset == self->snap_total) {
        if (self->snap_offset != self->snap_total) {
            s_take_abort (self, SNAP_RETRY_MS);
            return;
        }
        s_take_finish (self);
    }
    else
    if (r->data.len == 0)
        s_take_abort (self, SNAP_RETRY_MS);     /* no progress */
    else
        s_send_read (self);
}

/* ------------------------------------------------------------ installing */

/*  Bytes of the head (header + group state) to keep: the header, then
    the state size it announces (capped; the check at the end refuses
    more).  */
static size_t
s_rx_head_need (const raft_group_t *self)
{
    if (self->rx_head_size < HDR_BYTES)
        return HDR_BYTES;
    const uint8_t *h = self->rx_head;
    uint32_t state_size = (uint32_t) h [12] | (uint32_t) h [13] << 8
                        | (uint32_t) h [14] << 16 | (uint32_t) h [15] << 24;
    return HDR_BYTES + (state_size < STATE_MAX_BYTES ? state_size
                                                     : STATE_MAX_BYTES);
}

static void
s_rx_reset (raft_group_t *self)
{
    raft_snapshot_writer_abort (&self->rx_writer);
    free (self->rx_head);
    self->rx_head = NULL;
    self->rx_head_size = 0;
    self->rx_written = 0;
}

int
rg_snapshot_stage (raft_group_t *self, const raft_snapshot_chunk_t *chunk)
{
    if (chunk->offset == 0) {
        if (self->snap_state != SNAP_IDLE)
            s_take_abort (self, SNAP_RETRY_MS);   /* it is behind anyway */
        s_rx_reset (self);
        uint8_t conf [RAFT_CONF_BYTES (RAFT_MAX_MEMBERS, RAFT_MAX_MEMBERS)];
        size_t conf_size = raft_storage_conf_encode (&chunk->meta.config, conf);
        int rc = raft_snapshot_store_begin (self->snaps, chunk->meta.index,
                                            chunk->meta.term, conf,
                                            (uint32_t) conf_size,
                                            &self->rx_writer);
        if (rc)
            return rg_fail (self, rc, "starting a received snapshot");
        self->rx_index = chunk->meta.index;
        self->rx_term = chunk->meta.term;
    }
    if (!self->rx_writer || chunk->meta.index != self->rx_index
    ||  chunk->meta.term != self->rx_term || chunk->offset != self->rx_written)
        return rg_fail (self, TITAN_ECORRUPT, "snapshot chunks out of order");
    uint64_t end = chunk->offset + chunk->size;
    for (;;) {
        size_t need = s_rx_head_need (self);
        if (self->rx_head_size >= need || self->rx_head_size >= end)
            break;
        size_t take = (size_t) ((end < need ? end : need) - self->rx_head_size);
        uint8_t *grown = realloc (self->rx_head, self->rx_head_size + take);
        if (!grown)
            return rg_fail (self, -ENOMEM, "receiving a snapshot");
        self->rx_head = grown;
        memcpy (self->rx_head + self->rx_head_size,
                chunk->data + (self->rx_head_size - chunk->offset), take);
        self->rx_head_size += take;
    }
    int rc = chunk->size ? raft_snapshot_writer_write (self->rx_writer,
                                                       chunk->data,
                                                       chunk->size) : 0;
    if (rc)
        return rg_fail (self, rc, "writing a received snapshot");
    self->rx_written = end;
    return 0;
}

int
rg_snapshot_received (raft_group_t *self, const raft_snapshot_t *snap)
{
    if (self->snap_state != SNAP_IDLE)
        s_take_abort (self, SNAP_RETRY_MS);
    uint32_t state_size = 0;
    uint64_t storage_applied = 0;
    if (!self->rx_writer || self->rx_index != snap->meta.index
    ||  self->rx_term != snap->meta.term || self->rx_written != snap->size) {
        s_rx_reset (self);
        return rg_fail (self, TITAN_ECORRUPT, "received snapshot does not "
                        "match the chunks staged");
    }
    if (self->rx_head_size < HDR_BYTES
    ||  s_header_check (self->rx_head, snap->meta.index, &state_size,
                        &storage_applied)
    ||  HDR_BYTES + (uint64_t) state_size > self->rx_head_size
    ||  titan_crc32c (0, self->rx_head + HDR_BYTES, state_size)
        != s_state_crc (self->rx_head)
    ||  s_state_load (self, self->rx_head + HDR_BYTES, state_size, false)) {
        s_rx_reset (self);
        return rg_fail (self, TITAN_ECORRUPT, "received snapshot has a bad "
                        "group state header");
    }
    free (self->rx_head);
    self->rx_head = NULL;
    self->rx_head_size = 0;
    int rc = raft_snapshot_writer_commit (&self->rx_writer);
    if (rc)
        return rg_fail (self, rc, "storing a received snapshot");
    rc = raft_log_reset (self->log, snap->meta.index, snap->meta.term);
    if (rc)
        return rg_fail (self, rc, "resetting the log after a snapshot");
    raft_storage_adapter_set_snapshot (self->adapter, &snap->meta);
    raft_snapshot_store_remove_older (self->snaps, snap->meta.index);
    rg_snapshot_install_stored (self, snap->meta.index);
    titan_log_info ("raft %s group %u: received snapshot at %" PRIu64 " (%" PRIu64
               " bytes); installing it into %s", self->cfg.self.node_id,
               self->cfg.shard, snap->meta.index, snap->size,
               self->storage_module);
    return 0;
}

void
rg_snapshot_install_stored (raft_group_t *self, uint64_t index)
{
    raft_snapshot_reader_destroy (&self->inst_reader);
    free (self->inst_buf);
    self->inst_buf = NULL;
    self->inst_corr = 0;
    self->installing = true;
    self->inst_index = index;
    self->inst_failures = 0;
}

static void
s_inst_restart (raft_group_t *self, int64_t delay_ms)
{
    free (self->inst_buf);
    self->inst_buf = NULL;
    self->inst_corr = 0;
    self->inst_offset = 0;
    self->inst_retry_at = zclock_mono () + delay_ms;
}

static void
s_inst_send (raft_group_t *self)
{
    uint64_t stream = raft_snapshot_reader_data_size (self->inst_reader)
                    - self->inst_base;
    if (!self->inst_buf) {
        uint64_t left = stream - self->inst_offset;
        size_t want = left < self->cfg.snapshot_chunk_bytes
                    ? (size_t) left : self->cfg.snapshot_chunk_bytes;
        self->inst_buf = malloc (want ? want : 1);
        if (!self->inst_buf) {
            rg_fail (self, -ENOMEM, "installing a snapshot");
            return;
        }
        size_t n = 0;
        int rc = raft_snapshot_reader_pread (self->inst_reader,
                                             self->inst_base + self->inst_offset,
                                             self->inst_buf, want, &n);
        if (rc || n != want) {
            rg_fail (self, rc ? rc : TITAN_ECORRUPT, "reading the snapshot "
                     "to install");
            return;
        }
        self->inst_len = want;
        self->inst_last = self->inst_offset + want >= stream;
    }
    Titan__Bus__KvSnapshotInstall m = TITAN__BUS__KV_SNAPSHOT_INSTALL__INIT;
    m.shard = self->cfg.shard;
    m.applied_index = self->inst_storage;
    m.offset = self->inst_offset;
    m.data.data = self->inst_buf;
    m.data.len = self->inst_len;
    m.done = self->inst_last;
    size_t size = titan__bus__kv_snapshot_install__get_packed_size (&m);
    uint8_t *buf = malloc (size ? size : 1);
    if (!buf) {
        rg_fail (self, -ENOMEM, "installing a snapshot");
        return;
    }
    titan__bus__kv_snapshot_install__pack (&m, buf);
    self->inst_sent_at = zclock_mono ();
    if (titan_bus_request (self->cfg.bus, self->storage_module,
                           TITAN_T_KV_SNAPSHOT_INSTALL, buf, size,
                           &self->inst_corr)) {
        self->inst_corr = 0;
        self->inst_retry_at = zclock_mono () + INST_RETRY_MS;
    }
    free (buf);
}

/*  Drops the apply queue's entries the snapshot covers.  */
static void
s_drop_covered (raft_group_t *self)
{
    while (self->q_count
    &&     self->queue [self->q_head].index <= self->inst_index) {
        rg_entry_free (&self->queue [self->q_head]);
        self->q_head = (self->q_head + 1) % self->q_cap;
        self->q_count--;
    }
}

static void
s_inst_step (raft_group_t *self)
{
    if (self->busy)
        return;                 /* the batch in flight lands first */
    if (!self->inst_reader) {
        int rc = raft_snapshot_store_open_index (self->snaps, self->inst_index,
                                                 &self->inst_reader);
        if (rc == 0)
            rc = s_reader_state (self, self->inst_reader, false,
                                 &self->inst_base, &self->inst_storage);
        if (rc) {
            rg_fail (self, rc, "opening the snapshot to install");
            return;
        }
        s_drop_covered (self);
        self->inst_offset = 0;
    }
    if (self->inst_corr) {
        if (zclock_mono () - self->inst_sent_at >= SNAP_TIMEOUT_MS)
            s_inst_send (self);             /* no answer: send it again */
        return;
    }
    if (zclock_mono () >= self->inst_retry_at)
        s_inst_send (self);
}

/*  The storage module holds the snapshot: the group state follows.  */
static void
s_inst_finish (raft_group_t *self)
{
    uint64_t base = 0, storage_applied = 0;
    int rc = s_reader_state (self, self->inst_reader, true, &base,
                             &storage_applied);
    if (rc) {
        rg_fail (self, rc, "loading the installed snapshot's group state");
        return;
    }
    uint64_t data_bytes = raft_snapshot_reader_data_size (self->inst_reader);
    raft_snapshot_reader_destroy (&self->inst_reader);
    free (self->inst_buf);
    self->inst_buf = NULL;
    self->inst_corr = 0;
    self->installing = false;
    s_drop_covered (self);
    self->applied = self->inst_index;
    rg_waiters_covered (self, self->applied);
    self->snaps_installed++;
    self->snap_last_bytes = data_bytes;
    self->snap_log_bytes = 0;
    titan_log_info ("raft %s group %u: snapshot at %" PRIu64 " installed",
               self->cfg.self.node_id, self->cfg.shard, self->inst_index);
}

static void
s_on_install (raft_group_t *self, const Titan__Bus__KvSnapshotInstallReply *r)
{
    self->inst_corr = 0;
    int code = r ? (int) r->code : TITAN__BUS__CODE__INTERNAL;
    if (code == TITAN__BUS__CODE__OK) {
        if (!self->inst_last) {
            self->inst_offset += self->inst_len;
            free (self->inst_buf);
            self->inst_buf = NULL;
            s_inst_send (self);
            return;
        }
        if (r->applied_index == self->inst_storage) {
            s_inst_finish (self);
            return;
        }
        titan_log_error ("raft group %u: %s installed snapshot %" PRIu64 " (its "
                    "stream at %" PRIu64 ") but reports applied index %"
                    PRIu64, self->cfg.shard, self->storage_module,
                    self->inst_index, self->inst_storage, r->applied_index);
    }
    else
    if (code == TITAN__BUS__CODE__UNAVAILABLE) {
        self->inst_retry_at = zclock_mono () + INST_RETRY_MS;  /* same chunk */
        return;
    }
    else
    if (code == TITAN__BUS__CODE__NOT_FOUND) {
        s_inst_restart (self, 0);           /* the install was dropped */
        return;
    }
    else
        titan_log_error ("raft group %u: %s refused snapshot %" PRIu64 " at %"
                    PRIu64 ": %s", self->cfg.shard, self->storage_module,
                    self->inst_index, self->inst_offset,
                    r && r->message ? r->message : "malformed reply");
    if (++self->inst_failures >= INST_MAX_FAILURES) {
        rg_fail (self, TITAN_ECORRUPT, "the storage module keeps refusing "
                 "the snapshot");
        return;
    }
    s_inst_restart (self, SNAP_RETRY_MS);
}

/* ------------------------------------------------------------ driving */

bool
rg_snapshot_blocks_apply (raft_group_t *self)
{
    return self->installing || self->snap_state == SNAP_BEGIN;
}

/*  Whether enough has been applied since the snapshot at `index` for the
    next one: snapshot_entries entries, and when the last snapshot was
    large (SCALE_MIN_BYTES or more) also as many entry bytes as it held,
    or SCALE_MAX_FACTOR times snapshot_entries entries.  So a small store
    is snapshotted every snapshot_entries entries, and a large one copies
    at most about one byte of store per byte of log it frees.  */
static bool
s_snapshot_due (const raft_group_t *self, uint64_t index)
{
    uint64_t every = self->cfg.snapshot_entries;
    if (!every || self->applied < index + every)
        return false;
    if (self->snap_last_bytes < SCALE_MIN_BYTES)
        return true;
    return self->snap_log_bytes >= self->snap_last_bytes
        || self->applied - index >= SCALE_MAX_FACTOR * every;
}

void
rg_snapshot_work (raft_group_t *self)
{
    if (self->failed)
        return;
    if (self->installing) {
        s_inst_step (self);
        return;
    }
    int64_t now = zclock_mono ();
    if (self->snap_state != SNAP_IDLE) {
        int64_t limit = self->snap_state == SNAP_BEGIN ? BEGIN_TIMEOUT_MS
                                                       : SNAP_TIMEOUT_MS;
        if (now - self->snap_sent_at >= limit) {
            titan_log_warning ("raft group %u: no answer from %s about a snapshot "
                          "in %d ms; retrying", self->cfg.shard,
                          self->storage_module, (int) limit);
            s_take_abort (self, SNAP_RETRY_MS);
        }
        return;
    }
    if (self->snap_hold)
        return;                 /* a rebuild needs the log as it is */
    raft_snapshot_meta_t meta;
    raft_storage_adapter_iface (self->adapter)->snapshot_meta (self->adapter,
                                                               &meta);
    if (self->snap_wanted && self->applied <= meta.index)
        self->snap_wanted = false;          /* the latest is as fresh */
    if (!self->busy && now >= self->snap_retry_at
    &&  (s_snapshot_due (self, meta.index) || self->snap_wanted)) {
        self->snap_wanted = false;
        s_take_start (self);
    }
}

bool
rg_snapshot_on_reply (raft_group_t *self, titan_envelope_t **env_p)
{
    titan_envelope_t *env = *env_p;
    const uint8_t *data = titan_envelope_data (env);
    size_t size = titan_envelope_size (env);
    if (self->snap_state == SNAP_BEGIN && self->snap_corr
    &&  env->corr == self->snap_corr
    &&  streq (env->type, TITAN_T_KV_SNAPSHOT_BEGIN)) {
        self->snap_corr = 0;
        Titan__Bus__KvSnapshotInfo *r =
            titan__bus__kv_snapshot_info__unpack (NULL, size, data);
        s_on_begin (self, r);
        if (r)
            titan__bus__kv_snapshot_info__free_unpacked (r, NULL);
    }
    else
    if (self->snap_state == SNAP_READ && self->snap_corr
    &&  env->corr == self->snap_corr
    &&  streq (env->type, TITAN_T_KV_SNAPSHOT_READ)) {
        self->snap_corr = 0;
        Titan__Bus__KvSnapshotChunk *r =
            titan__bus__kv_snapshot_chunk__unpack (NULL, size, data);
        s_on_chunk (self, r);
        if (r)
            titan__bus__kv_snapshot_chunk__free_unpacked (r, NULL);
    }
    else
    if (self->installing && self->inst_corr && env->corr == self->inst_corr
    &&  streq (env->type, TITAN_T_KV_SNAPSHOT_INSTALL)) {
        Titan__Bus__KvSnapshotInstallReply *r =
            titan__bus__kv_snapshot_install_reply__unpack (NULL, size, data);
        s_on_install (self, r);
        if (r)
            titan__bus__kv_snapshot_install_reply__free_unpacked (r, NULL);
    }
    else
    if (self->snap_late_corr && env->corr == self->snap_late_corr
    &&  streq (env->type, TITAN_T_KV_SNAPSHOT_BEGIN)) {
        /* the answer to a begin this group gave up on: release that
           snapshot.  By corr, not type alone: the node offers each reply
           to its groups in turn, and matching the type made the first
           group take every other group's answer, so that theirs never
           came and their applying stayed paused for BEGIN_TIMEOUT_MS at
           every attempt (a 2 s stall of every shard but one) */
        self->snap_late_corr = 0;
        Titan__Bus__KvSnapshotInfo *r =
            titan__bus__kv_snapshot_info__unpack (NULL, size, data);
        if (r && r->code == TITAN__BUS__CODE__OK)
            s_send_end (self, r->snapshot_id);
        if (r)
            titan__bus__kv_snapshot_info__free_unpacked (r, NULL);
    }
    else
        return false;
    titan_envelope_destroy (env_p);
    return true;
}

uint64_t
raft_group_snapshots_taken (raft_group_t *self)
{
    return self->snaps_taken;
}

uint64_t
raft_group_snapshots_installed (raft_group_t *self)
{
    return self->snaps_installed;
}
