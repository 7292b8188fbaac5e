/*  The ring module's snapshot stream (see ring_actor.h), the storage side
    of the meta group's Raft snapshots, with the bitcask module's contract
    (proto/bus.proto, kv.snapshot_*):

    - kv.snapshot_begin pins the state's encoding (ring_fsm_encode: small,
      at most RING_FSM_MAX_BYTES) under a fresh id; kv.snapshot_read
      returns bytes of it, at most snapshot_chunk_bytes per chunk;
      kv.snapshot_end releases it, as does snapshot_idle_ms without a
      request; at most snapshot_max_open are pinned at once.
    - kv.snapshot_install takes the stream in order (offset = bytes sent
      before; a re-sent chunk that matches what was received is accepted;
      offset 0 with other bytes starts again).  The last chunk (done) is
      decoded and checked (checksum, structure, the announced applied
      index, the cluster's Q/R against this node's settings), saved as the
      state file and becomes the state; the table is published if the
      membership changed.  An install idle for snapshot_idle_ms is dropped.
*/
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "titan/status.h"

#include "ring_actor.h"
#include "ring_state_file.h"

static ring_export_t *
s_export_find (ring_actor_t *self, uint64_t id)
{
    for (size_t i = 0; i < self->nexports; i++)
        if (self->exports [i].id == id)
            return &self->exports [i];
    return NULL;
}

static void
s_export_remove (ring_actor_t *self, ring_export_t *x)
{
    free (x->data);
    *x = self->exports [--self->nexports];
}

static void
s_install_reset (ring_actor_t *self)
{
    free (self->install.data);
    memset (&self->install, 0, sizeof self->install);
}

void
ring_actor_snapshot_expire (ring_actor_t *self)
{
    int64_t now = zclock_mono ();
    for (size_t i = self->nexports; i-- > 0; )
        if (now - self->exports [i].used_ms >= self->snap_idle_ms) {
            zsys_info ("ring: snapshot %" PRIu64 " released after %" PRId64
                       " ms idle", self->exports [i].id, self->snap_idle_ms);
            s_export_remove (self, &self->exports [i]);
        }
    if (self->install.active && now - self->install.used_ms >= self->snap_idle_ms) {
        zsys_info ("ring: snapshot install dropped after %" PRId64 " ms idle",
                   self->snap_idle_ms);
        s_install_reset (self);
    }
}

void
ring_actor_snapshot_free (ring_actor_t *self)
{
    while (self->nexports)
        s_export_remove (self, &self->exports [0]);
    free (self->exports);
    self->exports = NULL;
    s_install_reset (self);
}

void
ring_actor_handle_snapshot_begin (ring_actor_t *self, titan_envelope_t **env_p)
{
    titan_envelope_t *env = *env_p;
    Titan__Bus__KvSnapshotBegin *q = titan__bus__kv_snapshot_begin__unpack (
        NULL, titan_envelope_size (env), titan_envelope_data (env));
    if (!q) {
        ring_actor_refuse (self, env_p, TITAN__BUS__CODE__INVALID_ARGUMENT,
                           "ring: malformed KvSnapshotBegin");
        return;
    }
    uint32_t shard = q->shard;
    titan__bus__kv_snapshot_begin__free_unpacked (q, NULL);
    if (!ring_actor_check_shard (self, env_p, shard))
        return;
    if ((int64_t) self->nexports >= self->snap_max_open) {
        char msg [160];
        snprintf (msg, sizeof msg, "ring: %zu snapshots open (limit "
                  "snapshot_max_open); end one or retry later", self->nexports);
        ring_actor_refuse (self, env_p, TITAN__BUS__CODE__RESOURCE_EXHAUSTED, msg);
        return;
    }
    ring_export_t *xs = realloc (self->exports, (self->nexports + 1) * sizeof *xs);
    if (xs)
        self->exports = xs;
    ring_export_t x = { self->next_snap_id, NULL, 0, zclock_mono () };
    if (!xs || ring_fsm_encode (self->fsm, &x.data, &x.size)) {
        ring_actor_refuse (self, env_p, TITAN__BUS__CODE__RESOURCE_EXHAUSTED,
                           "ring: out of memory");
        return;
    }
    self->next_snap_id++;
    self->exports [self->nexports++] = x;
    Titan__Bus__KvSnapshotInfo r = TITAN__BUS__KV_SNAPSHOT_INFO__INIT;
    r.snapshot_id = x.id;
    r.applied_index = ring_fsm_applied (self->fsm);
    r.total_bytes = x.size;
    ring_actor_reply (self, env_p, &r.base, NULL, NULL);
}

void
ring_actor_handle_snapshot_read (ring_actor_t *self, titan_envelope_t **env_p)
{
    titan_envelope_t *env = *env_p;
    Titan__Bus__KvSnapshotRead *q = titan__bus__kv_snapshot_read__unpack (
        NULL, titan_envelope_size (env), titan_envelope_data (env));
    if (!q) {
        ring_actor_refuse (self, env_p, TITAN__BUS__CODE__INVALID_ARGUMENT,
                           "ring: malformed KvSnapshotRead");
        return;
    }
    uint32_t shard = q->shard;
    uint64_t id = q->snapshot_id, offset = q->offset;
    size_t cap = (size_t) self->snap_chunk;
    if (q->max_bytes && q->max_bytes < cap)
        cap = q->max_bytes;
    titan__bus__kv_snapshot_read__free_unpacked (q, NULL);
    if (!ring_actor_check_shard (self, env_p, shard))
        return;
    char msg [160];
    ring_export_t *x = s_export_find (self, id);
    if (!x || offset > x->size) {
        if (x)
            snprintf (msg, sizeof msg, "ring: offset %" PRIu64 " past the "
                      "snapshot's %zu bytes", offset, x->size);
        else
            snprintf (msg, sizeof msg, "ring: no snapshot %" PRIu64 " (ended, "
                      "expired, or the module restarted)", id);
        ring_actor_refuse (self, env_p, x ? TITAN__BUS__CODE__INVALID_ARGUMENT
                                          : TITAN__BUS__CODE__NOT_FOUND, msg);
        return;
    }
    if (cap > x->size - offset)
        cap = x->size - (size_t) offset;
    x->used_ms = zclock_mono ();
    Titan__Bus__KvSnapshotChunk r = TITAN__BUS__KV_SNAPSHOT_CHUNK__INIT;
    r.data.data = x->data + offset;
    r.data.len = cap;
    r.offset = offset;
    r.done = offset + cap == x->size;
    ring_actor_reply (self, env_p, &r.base, NULL, NULL);
}

void
ring_actor_handle_snapshot_end (ring_actor_t *self, titan_envelope_t **env_p)
{
    titan_envelope_t *env = *env_p;
    Titan__Bus__KvSnapshotEnd *q = titan__bus__kv_snapshot_end__unpack (
        NULL, titan_envelope_size (env), titan_envelope_data (env));
    if (!q) {
        ring_actor_refuse (self, env_p, TITAN__BUS__CODE__INVALID_ARGUMENT,
                           "ring: malformed KvSnapshotEnd");
        return;
    }
    uint32_t shard = q->shard;
    ring_export_t *x = s_export_find (self, q->snapshot_id);
    titan__bus__kv_snapshot_end__free_unpacked (q, NULL);
    if (!ring_actor_check_shard (self, env_p, shard))
        return;
    /* Releasing twice (or after expiry) is fine: the caller's goal holds. */
    if (x)
        s_export_remove (self, x);
    Titan__Bus__KvReply r = TITAN__BUS__KV_REPLY__INIT;
    ring_actor_reply (self, env_p, &r.base, NULL, NULL);
}

/*  Takes one chunk into the install in progress.  Returns 0 or a status
    with the reason in `err`.  */
static int
s_install_chunk (ring_actor_t *self, const Titan__Bus__KvSnapshotInstall *q,
                 char *err, size_t errlen)
{
    ring_install_t *in = &self->install;
    const uint8_t *data = q->data.data;
    size_t len = q->data.len;
    bool resent = in->active && q->offset + len <= in->size
               && (q->offset || q->applied_index == in->applied_index)
               && (len == 0 || memcmp (in->data + q->offset, data, len) == 0);
    if (q->offset == 0 && !resent) {
        s_install_reset (self);
        in->active = true;
        in->applied_index = q->applied_index;
    }
    else
    if (!in->active) {
        snprintf (err, errlen, "ring: no snapshot install in progress; start "
                  "again at offset 0");
        return -ENOENT;
    }
    else
    if (!resent && q->offset != in->size) {
        snprintf (err, errlen, "ring: install chunk at offset %" PRIu64 " but %zu "
                  "bytes were received", q->offset, in->size);
        return TITAN_EMISMATCH;
    }
    in->used_ms = zclock_mono ();
    if (resent)
        return 0;
    if (len > (size_t) self->snap_chunk || in->size + len > RING_FSM_MAX_BYTES) {
        snprintf (err, errlen, "ring: install chunk of %zu bytes (at most %" PRId64
                  ") or stream of %zu bytes (at most %u) too large", len,
                  self->snap_chunk, in->size + len, RING_FSM_MAX_BYTES);
        return TITAN_ETOOBIG;
    }
    uint8_t *grown = realloc (in->data, in->size + len + 1);
    if (!grown) {
        snprintf (err, errlen, "ring: out of memory");
        return -ENOMEM;
    }
    in->data = grown;
    if (len)
        memcpy (in->data + in->size, data, len);
    in->size += len;
    return 0;
}

/*  The stream is complete: checks it, saves it and makes it the state.  */
static int
s_install_finish (ring_actor_t *self, char *err, size_t errlen)
{
    ring_fsm_t *fsm = NULL;
    char why [256] = "";
    int rc = ring_fsm_decode (self->install.data, self->install.size, &fsm, why,
                              sizeof why);
    if (rc) {
        snprintf (err, errlen, "ring: snapshot install: %s", why);
        return rc;
    }
    if (self->install.applied_index
    &&  self->install.applied_index != ring_fsm_applied (fsm)) {
        snprintf (err, errlen, "ring: the stream holds applied index %" PRIu64
                  ", the install announced %" PRIu64, ring_fsm_applied (fsm),
                  self->install.applied_index);
        rc = TITAN_EMISMATCH;
    }
    if (rc == 0)
        rc = ring_actor_check_qr (self, fsm, err, errlen);
    if (rc == 0)
        rc = ring_state_file_save (self->dir, fsm, err, errlen);
    if (rc == 0) {
        zsys_info ("ring: installed a snapshot at applied index %" PRIu64,
                   ring_fsm_applied (fsm));
        free (self->last_batch);    /* the re-send cache is about the old state */
        self->last_batch = NULL;
        ring_actor_set_state (self, &fsm);
    }
    ring_fsm_destroy (&fsm);
    return rc;
}

void
ring_actor_handle_snapshot_install (ring_actor_t *self, titan_envelope_t **env_p)
{
    titan_envelope_t *env = *env_p;
    Titan__Bus__KvSnapshotInstall *q = titan__bus__kv_snapshot_install__unpack (
        NULL, titan_envelope_size (env), titan_envelope_data (env));
    if (!q) {
        ring_actor_refuse (self, env_p, TITAN__BUS__CODE__INVALID_ARGUMENT,
                           "ring: malformed KvSnapshotInstall");
        return;
    }
    if (!ring_actor_check_shard (self, env_p, q->shard)) {
        titan__bus__kv_snapshot_install__free_unpacked (q, NULL);
        return;
    }
    char err [512] = "";
    bool done = q->done;
    int rc = s_install_chunk (self, q, err, sizeof err);
    titan__bus__kv_snapshot_install__free_unpacked (q, NULL);
    uint64_t received = self->install.size;
    if (rc == 0 && done) {
        rc = s_install_finish (self, err, sizeof err);
        s_install_reset (self);
    }
    else
    if (rc && rc != -ENOENT)
        s_install_reset (self);             /* a stream error ends it */
    if (rc) {
        zsys_warning ("%s", err);
        ring_actor_refuse (self, env_p, rc == TITAN_ECORRUPT
                           ? TITAN__BUS__CODE__DATA_LOSS : ring_actor_code (rc), err);
        return;
    }
    Titan__Bus__KvSnapshotInstallReply r = TITAN__BUS__KV_SNAPSHOT_INSTALL_REPLY__INIT;
    r.received = received;
    if (done)
        r.applied_index = ring_fsm_applied (self->fsm);
    ring_actor_reply (self, env_p, &r.base, NULL, NULL);
}
