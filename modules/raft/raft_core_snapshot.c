/*  InstallSnapshot in chunks, both sides.

    Leader: when a follower needs entries the log no longer holds, its
    progress enters PR_SNAPSHOT and the storage's current snapshot is sent
    in chunks of snapshot_chunk_bytes read through raft_storage_t's
    snapshot_read, one outstanding chunk at a time; each SNAPSHOT_RESP says
    which offset the follower wants next, so a follower that restarted or
    lost a chunk resumes (or restarts at 0).  A chunk unanswered for
    rc_snap_resend_heartbeats heartbeat responses (two election timeouts'
    worth) is sent again; an answer naming the offset already in flight is
    a late answer to an earlier copy and is ignored.  (Re-sending the chunk
    on every heartbeat response, as this did before, sent a 1 MiB chunk
    every 20 ms while the previous copies were still in the pipe, and each
    copy's answer sent the next chunk again: a 8 MiB snapshot took 40 s
    and 20 copies of each chunk under load.)  A snapshot replaced by a
    newer one mid-transfer (snapshot_read says RAFT_ECOMPACTED) sends the
    follower back to probing, which starts the newer one.

    Follower: chunks are accepted strictly in order.  They are either
    assembled in memory (bounded by max_snapshot_bytes) or, in streaming
    mode, handed to the caller in rd.snap_chunks to stage.  The last chunk
    replaces the follower's whole log with the snapshot: unstable entries
    are dropped, the commit index and the configuration jump to the
    snapshot's, and rd.snapshot asks the caller to install it.  A follower
    that already holds the snapshot's last entry only moves its commit
    index.
*/
#include <stdlib.h>
#include <string.h>
#include "raft_core_impl.h"

int
rc_send_chunk (raft_t *r, raft_progress_t *pr)
{
    uint32_t cap = r->opts.snapshot_chunk_bytes;
    uint8_t *buf = malloc (cap);
    if (!buf)
        return rc_fail (r, -ENOMEM);
    size_t n = 0;
    uint64_t total = 0;
    int rc = r->st->snapshot_read (r->st->ud, pr->snap_index, pr->snap_offset,
                                   buf, cap, &n, &total);
    if (rc == RAFT_ECOMPACTED) {
        /* a newer snapshot replaced it: start over with that one */
        free (buf);
        rc_pr_become_probe (pr);
        return 0;
    }
    if (rc) {
        free (buf);
        return rc_fail (r, rc);
    }
    raft_msg_t *m = rc_msg (r, pr->id, RAFT_MSG_SNAPSHOT);
    if (!m) {
        free (buf);
        return rc_fail (r, -ENOMEM);
    }
    m->snapshot.index = pr->snap_index;
    m->snapshot.term = pr->snap_term;
    m->snapshot.config = pr->snap_config;
    m->offset = pr->snap_offset;
    m->size = (uint32_t) n;
    m->data = buf;
    if (n == 0) {
        free (buf);
        m->data = NULL;
    }
    m->done = pr->snap_offset + n >= total;
    m->commit = r->commit;
    pr->snap_wait = true;
    pr->snap_heartbeats = 0;
    return 0;
}

uint32_t
rc_snap_resend_heartbeats (const raft_t *r)
{
    uint32_t hb = r->opts.heartbeat_ticks ? r->opts.heartbeat_ticks : 1;
    uint32_t n = 2 * r->opts.election_ticks / hb;
    return n < 2 ? 2 : n;
}

int
rc_start_snapshot (raft_t *r, raft_progress_t *pr)
{
    if (r->pending_snap) {
        /* our own snapshot is not persisted yet: the storage cannot serve
           it; the next heartbeat response retries */
        pr->paused = true;
        return 0;
    }
    raft_snapshot_meta_t meta;
    int rc = r->st->snapshot_meta (r->st->ud, &meta);
    if (rc)
        return rc_fail (r, rc);
    if (meta.index == 0)
        return rc_fail (r, TITAN_ECORRUPT);   /* compacted without snapshot */
    pr->state = PR_SNAPSHOT;
    pr->snap_index = meta.index;
    pr->snap_term = meta.term;
    pr->snap_config = meta.config;
    pr->snap_offset = 0;
    pr->snap_wait = false;
    pr->n_inflight = 0;
    return rc_send_chunk (r, pr);
}

int
rc_handle_snapshot_resp (raft_t *r, const raft_msg_t *m)
{
    raft_progress_t *pr = rc_pr (r, m->from);
    if (!pr)
        return 0;
    pr->recent_active = true;
    if (pr->state != PR_SNAPSHOT || m->snapshot.index != pr->snap_index)
        return 0;
    if (m->reject) {
        rc_pr_become_probe (pr);
        pr->paused = true;     /* retried on the next heartbeat response */
        return 0;
    }
    if (m->done) {
        if (pr->match < pr->snap_index)
            pr->match = pr->snap_index;
        rc_pr_become_probe (pr);
        return rc_send_append (r, pr, true);
    }
    if (pr->snap_wait && m->offset == pr->snap_offset)
        return 0;      /* a late answer to an earlier copy: already sent */
    pr->snap_offset = m->offset;
    pr->snap_wait = false;
    return rc_send_chunk (r, pr);
}


/* ---------------------------------------------------------------------- */
/* follower side                                                           */

static int
s_snap_reply (raft_t *r, const raft_msg_t *m, uint64_t offset, bool done,
              bool reject)
{
    raft_msg_t *resp = rc_reply (r, m, RAFT_MSG_SNAPSHOT_RESP);
    if (!resp)
        return r->failed;
    resp->snapshot.index = m->snapshot.index;
    resp->snapshot.term = m->snapshot.term;
    resp->index = m->snapshot.index;
    resp->offset = offset;
    resp->done = done;
    resp->reject = reject;
    return 0;
}

/*  Streaming mode: queues a copy of the chunk for the caller to stage.  */
static int
s_stage_chunk (raft_t *r, const raft_msg_t *m)
{
    if (r->n_chunks == r->cap_chunks) {
        size_t cap = r->cap_chunks ? r->cap_chunks * 2 : 4;
        raft_snapshot_chunk_t *grown = realloc (r->chunks, cap * sizeof *grown);
        if (!grown)
            return rc_fail (r, -ENOMEM);
        r->chunks = grown;
        r->cap_chunks = cap;
    }
    raft_snapshot_chunk_t *c = &r->chunks[r->n_chunks];
    c->meta = m->snapshot;
    c->offset = m->offset;
    c->size = m->size;
    c->data = NULL;
    if (m->size) {
        c->data = malloc (m->size);
        if (!c->data)
            return rc_fail (r, -ENOMEM);
        memcpy (c->data, m->data, m->size);
    }
    r->n_chunks++;
    return 0;
}

static void
s_rx_reset (raft_t *r)
{
    r->rx_active = false;
    r->rx_size = 0;
}

int
rc_handle_snapshot (raft_t *r, const raft_msg_t *m)
{
    const raft_snapshot_meta_t *meta = &m->snapshot;
    if (m->size && !m->data)
        return -EINVAL;
    if (meta->index <= r->commit)
        return s_snap_reply (r, m, 0, true, false);
    uint64_t t = 0;
    if (rc_term (r, meta->index, &t) == 0 && t == meta->term) {
        /* we hold the snapshot's last entry, hence all before it */
        rc_commit_to (r, meta->index);
        s_rx_reset (r);
        return s_snap_reply (r, m, 0, true, false);
    }
    if (r->opts.snapshot_stream && r->pending_snap)
        return 0;     /* the caller has not taken the last one yet: its
                         chunks and these would mix; the leader re-sends */
    if (m->offset == 0) {
        r->rx_meta = *meta;
        r->rx_size = 0;
        r->rx_active = true;
    }
    else if (!r->rx_active || r->rx_meta.index != meta->index
             || r->rx_meta.term != meta->term || m->offset != r->rx_size) {
        bool same = r->rx_active && r->rx_meta.index == meta->index
            && r->rx_meta.term == meta->term;
        return s_snap_reply (r, m, same ? r->rx_size : 0, false, false);
    }
    if (r->opts.snapshot_stream) {
        int rc = s_stage_chunk (r, m);
        if (rc)
            return rc;
    }
    else if (r->rx_size + m->size > r->opts.max_snapshot_bytes) {
        s_rx_reset (r);
        return s_snap_reply (r, m, 0, false, true);
    }
    else if (r->rx_size + m->size > r->rx_cap) {
        uint64_t cap = r->rx_cap ? r->rx_cap : 4096;
        while (cap < r->rx_size + m->size)
            cap *= 2;
        uint8_t *grown = realloc (r->rx_buf, cap);
        if (!grown)
            return rc_fail (r, -ENOMEM);
        r->rx_buf = grown;
        r->rx_cap = cap;
    }
    if (m->size && !r->opts.snapshot_stream)
        memcpy (r->rx_buf + r->rx_size, m->data, m->size);
    r->rx_size += m->size;
    if (!m->done)
        return s_snap_reply (r, m, r->rx_size, false, false);

    /* complete: replace the whole log with the snapshot */
    raft_snapshot_t *snap = calloc (1, sizeof *snap);
    if (!snap)
        return rc_fail (r, -ENOMEM);
    snap->meta = r->rx_meta;
    snap->size = r->rx_size;
    if (!r->opts.snapshot_stream) {
        snap->data = r->rx_buf;
        r->rx_buf = NULL;
        r->rx_cap = 0;
    }
    s_rx_reset (r);
    if (r->pending_snap) {
        free (r->pending_snap->data);
        free (r->pending_snap);
    }
    r->pending_snap = snap;
    rc_clear_unstable (r);
    r->commit = snap->meta.index;
    rc_hist_reset (r, snap->meta.index, &snap->meta.config);
    return s_snap_reply (r, m, snap->size, true, false);
}
