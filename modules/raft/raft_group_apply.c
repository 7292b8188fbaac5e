/*  raft_group apply pipeline and client dedup.

    At most one kv.apply_batch is in flight to the storage module, so
    batches land in order and a failed one is simply sent again (the
    storage module skips what it already holds, by applied index).  A
    batch takes entries from the head of the apply queue: non-write entries
    (no-ops, configuration changes, member info, duplicate writes) are
    applied locally, and the writes form one run of consecutive indexes,
    recorded at revision = their index; the batch's applied_index is the
    last entry it covers.  When the reply comes back the group's applied
    index moves, every waiting proposer gets its result and reads waiting
    for that index are served.  A batch the storage module refuses as
    invalid (a deterministic refusal) is applied op by op, so one bad op
    never wedges the group.

    Client dedup.  Per client id the results of its DEDUP_WINDOW applied
    writes of highest sequence are kept: a write whose (client, sequence)
    is among them is not applied again and its proposer gets the original
    result; one older than all of them is not applied and gets ABORTED.
    So a client may have DEDUP_WINDOW writes in flight, in any order, and
    retry any of them.  The table is part of every snapshot
    (raft_group_snapshot.c); at open it is the latest snapshot's, then the
    log's writes up to the storage module's applied index are scanned and
    the rest are applied through the pipeline; a CAS result replayed from
    the log is not known and is answered ABORTED with the revision it was
    applied at.
*/
#include "titan/log.h"
#include "raft_group_impl.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "titan/bus_types.h"
#include "titan/status.h"

void
rg_dedup_destructor (void **item)
{
    free (*item);
    *item = NULL;
}

rg_dedup_rec_t *
rg_dedup_find (raft_group_t *self, const char *client_id, uint64_t seq,
               bool *stale)
{
    *stale = false;
    rg_dedup_t *d = (rg_dedup_t *) zhashx_lookup (self->dedup, client_id);
    if (!d)
        return NULL;
    uint64_t min_seq = UINT64_MAX;
    for (uint32_t i = 0; i < d->count; i++) {
        if (d->recs [i].seq == seq)
            return &d->recs [i];
        if (d->recs [i].seq < min_seq)
            min_seq = d->recs [i].seq;
    }
    *stale = d->count == DEDUP_WINDOW && seq < min_seq;
    return NULL;
}

rg_dedup_rec_t *
rg_dedup_note (raft_group_t *self, const char *client_id, uint64_t seq,
               uint64_t index, bool known)
{
    rg_dedup_t *d = (rg_dedup_t *) zhashx_lookup (self->dedup, client_id);
    if (!d) {
        if (zhashx_size (self->dedup) >= DEDUP_MAX_CLIENTS) {
            char oldest [256] = "";
            uint64_t oldest_index = UINT64_MAX;
            for (rg_dedup_t *it = zhashx_first (self->dedup); it;
                 it = zhashx_next (self->dedup))
                if (it->last_index < oldest_index) {
                    oldest_index = it->last_index;
                    snprintf (oldest, sizeof oldest, "%s",
                              (const char *) zhashx_cursor (self->dedup));
                }
            if (*oldest)
                zhashx_delete (self->dedup, oldest);
        }
        d = calloc (1, sizeof *d);
        if (!d)
            return NULL;
        zhashx_insert (self->dedup, client_id, d);
    }
    /* the slot to use: the lowest sequence's when the window is full, so
       that the window always keeps the highest sequences */
    uint32_t slot = d->count < DEDUP_WINDOW ? d->count++ : 0;
    if (slot == 0 && d->count == DEDUP_WINDOW)
        for (uint32_t i = 1; i < DEDUP_WINDOW; i++)
            if (d->recs [i].seq < d->recs [slot].seq)
                slot = i;
    rg_dedup_rec_t *rec = &d->recs [slot];
    memset (rec, 0, sizeof *rec);
    rec->seq = seq;
    rec->index = index;
    rec->known = known;
    rec->code = TITAN__BUS__CODE__OK;
    d->last_index = index;
    return rec;
}

int
rg_queue_push (raft_group_t *self, const raft_entry_t *e)
{
    if (self->q_count == self->q_cap) {
        size_t cap = self->q_cap ? self->q_cap * 2 : 256;
        rg_entry_t *grown = calloc (cap, sizeof *grown);
        if (!grown)
            return -ENOMEM;
        for (size_t i = 0; i < self->q_count; i++)
            grown [i] = self->queue [(self->q_head + i) % self->q_cap];
        free (self->queue);
        self->queue = grown;
        self->q_cap = cap;
        self->q_head = 0;
    }
    rg_entry_t *q = &self->queue [(self->q_head + self->q_count) % self->q_cap];
    memset (q, 0, sizeof *q);
    q->index = e->index;
    q->term = e->term;
    q->type = e->type;
    q->size = e->size;
    q->slot = -1;
    if (e->size) {
        q->data = malloc (e->size);
        if (!q->data)
            return -ENOMEM;
        memcpy (q->data, e->data, e->size);
    }
    self->q_count++;
    return 0;
}

int
rg_queue_prepend_log (raft_group_t *self, uint64_t lo, uint64_t hi)
{
    assert (!self->busy);
    if (lo >= hi)
        return 0;
    rg_entry_t *old = self->queue;
    size_t old_head = self->q_head, old_count = self->q_count;
    size_t old_cap = self->q_cap;
    self->queue = NULL;
    self->q_head = self->q_count = self->q_cap = 0;
    int rc = 0;
    for (uint64_t at = lo; at < hi && rc == 0; ) {
        raft_log_entry_t *ents = NULL;
        size_t n = 0;
        rc = raft_log_entries (self->log, at, hi, 4u << 20, &ents, &n);
        for (size_t i = 0; i < n && rc == 0; i++) {
            raft_entry_t e = { ents [i].term, ents [i].index, ents [i].type,
                               ents [i].size, (uint8_t *) ents [i].data };
            rc = rg_queue_push (self, &e);
        }
        if (rc == 0 && n == 0)
            rc = TITAN_ECORRUPT;
        at += n;
        free (ents);
    }
    for (size_t i = 0; i < old_count && rc == 0; i++) {
        rg_entry_t *e = &old [(old_head + i) % old_cap];
        raft_entry_t view = { e->term, e->index, e->type, 0, NULL };
        rc = rg_queue_push (self, &view);         /* a slot, then the data */
        if (rc == 0) {
            rg_entry_t *q = &self->queue [(self->q_head + self->q_count - 1)
                                          % self->q_cap];
            *q = *e;
        }
    }
    if (rc) {
        /* undo: the replayed copies go (the moved entries, all at or
           above hi, still belong to the old queue), which comes back */
        for (size_t i = 0; i < self->q_count; i++) {
            rg_entry_t *q = &self->queue [(self->q_head + i) % self->q_cap];
            if (q->index >= hi)
                break;
            rg_entry_free (q);
        }
        free (self->queue);
        self->queue = old;
        self->q_head = old_head;
        self->q_count = old_count;
        self->q_cap = old_cap;
        return rc;
    }
    free (old);
    return 0;
}

static rg_entry_t *
s_queue_at (raft_group_t *self, size_t i)
{
    return &self->queue [(self->q_head + i) % self->q_cap];
}

/*  Applies a non-write entry's local effect (address book).  */
static void
s_apply_local (raft_group_t *self, rg_entry_t *e)
{
    rg_snapshot_note_conf (self, e->type, e->data, e->size);
    if (e->type == RAFT_ENTRY_NORMAL && e->size && e->data [0] == RAFT_CMD_MEMBER) {
        raft_wire_node_t node;
        if (raft_wire_decode_member (e->data, e->size, &node) == 0)
            rg_note_member (self, &node, true);
    }
}

/*  Answers the waiters of entry `e` (whose result is `result`, NULL for
    a non-write entry), and any waiter left behind at lower indexes.  */
static void
s_answer (raft_group_t *self, const rg_entry_t *e,
          const Titan__Bus__KvReply *result)
{
    while (self->n_waiters && self->waiters [0].index <= e->index) {
        rg_waiter_t w = self->waiters [0];
        memmove (&self->waiters [0], &self->waiters [1],
                 (self->n_waiters - 1) * sizeof *self->waiters);
        self->n_waiters--;
        if (w.index < e->index || w.term != e->term) {
            if (w.kind == W_PROPOSE)
                rg_refuse_kv (self, &w.env, TITAN__BUS__CODE__UNAVAILABLE,
                              "raft: entry replaced by a new leader; not "
                              "applied, safe to retry");
            else
                rg_refuse_member (self, &w.env, TITAN__BUS__CODE__UNAVAILABLE,
                                  "raft: change replaced by a new leader");
            continue;
        }
        if (w.kind == W_MEMBER) {
            Titan__Bus__RaftMemberReply r = TITAN__BUS__RAFT_MEMBER_REPLY__INIT;
            r.index = e->index;
            rg_reply_member (self, &w.env, &r);
        }
        else
        if (result)
            rg_reply_kv (self, &w.env, result);
        else
            rg_refuse_kv (self, &w.env, TITAN__BUS__CODE__INTERNAL,
                          "raft: entry is not a write");
    }
}

/*  The answer of a duplicate write, from the client's dedup record.  */
static void
s_dup_result (raft_group_t *self, const rg_entry_t *e, Titan__Bus__KvReply *r,
              char *msg, size_t msg_size)
{
    titan__bus__kv_reply__init (r);
    bool stale = false;
    rg_dedup_rec_t *d = e->client_id
                      ? rg_dedup_find (self, e->client_id, e->seq, &stale) : NULL;
    if (!d) {
        r->code = TITAN__BUS__CODE__ABORTED;
        snprintf (msg, msg_size, "raft: write (sequence %" PRIu64 ") is older "
                  "than the last %d writes of its client: it may or may not "
                  "have been applied, and was not applied now", e->seq,
                  DEDUP_WINDOW);
    }
    else
    if (!d->known) {
        r->code = TITAN__BUS__CODE__ABORTED;
        snprintf (msg, msg_size, "raft: duplicate of a write applied at "
                  "revision %" PRIu64 " whose result was not kept across a "
                  "restart", d->index);
        r->revision = d->index;
    }
    else {
        r->code = (Titan__Bus__Code) d->code;
        r->revision = d->code == TITAN__BUS__CODE__OK ? d->index : 0;
        r->current_revision = d->current_revision;
        r->deleted = d->deleted;
        *msg = '\0';
    }
    r->message = msg;
}

/*  Finishes the in-flight batch (or a local-only one) with the storage
    module's results (NULL when it had no ops).  */
static void
s_batch_done (raft_group_t *self, const Titan__Bus__KvApplyBatchReply *reply)
{
    for (size_t i = 0; i < self->batch_len; i++) {
        rg_entry_t *e = s_queue_at (self, i);
        if (e->slot >= 0) {
            Titan__Bus__KvReply ok = TITAN__BUS__KV_REPLY__INIT;
            const Titan__Bus__KvReply *res = &ok;
            if (reply && (size_t) e->slot < reply->n_results)
                res = reply->results [e->slot];
            else
                ok.revision = e->index;
            if (e->client_id) {
                bool stale;
                rg_dedup_rec_t *d = rg_dedup_find (self, e->client_id, e->seq,
                                                   &stale);
                if (d && d->index == e->index) {
                    d->known = true;
                    d->code = res->code;
                    d->current_revision = res->current_revision;
                    d->deleted = res->deleted;
                }
            }
            s_answer (self, e, res);
        }
        else
        if (e->dup) {
            char msg [256];
            Titan__Bus__KvReply r;
            s_dup_result (self, e, &r, msg, sizeof msg);
            s_answer (self, e, &r);
        }
        else
            s_answer (self, e, NULL);
        self->applied = e->index;
        self->snap_log_bytes += e->size;
        rg_entry_free (e);
    }
    self->q_head = (self->q_head + self->batch_len) % (self->q_cap ? self->q_cap : 1);
    self->q_count -= self->batch_len;
    self->batch_len = 0;
    self->batch_ops = 0;
    self->busy = false;
    free (self->batch_buf);
    self->batch_buf = NULL;
    self->batch_size = 0;
    free (self->split);
    self->split = NULL;
}

int
rg_send_batch (raft_group_t *self)
{
    int rc = titan_bus_request (self->cfg.bus, self->storage_module,
                                TITAN_T_KV_APPLY_BATCH, self->batch_buf,
                                self->batch_size, &self->batch_corr);
    if (rc) {
        self->retry_at = zclock_mono () + APPLY_RETRY_MS;
        self->batch_corr = 0;
    }
    self->batch_sent_at = zclock_mono ();
    return rc;
}

/*  Builds the next batch from the head of the apply queue and sends it;
    a batch without writes completes at once.  */
void
rg_pump_apply (raft_group_t *self)
{
    while (!self->busy && self->q_count) {
        Titan__Bus__KvWrite *writes [BATCH_MAX_OPS];
        Titan__Bus__KvOp *ops [BATCH_MAX_OPS];
        size_t n_ops = 0, bytes = 0, len = 0;
        uint64_t first_rev = 0, last_op_index = 0;
        for (; len < self->q_count; len++) {
            rg_entry_t *e = s_queue_at (self, len);
            const uint8_t *payload = NULL;
            size_t psize = 0;
            bool is_write = e->type == RAFT_ENTRY_NORMAL
                && raft_wire_command_kind (e->data, e->size, &payload, &psize)
                   == RAFT_CMD_WRITE;
            if (!is_write) {
                s_apply_local (self, e);
                continue;
            }
            if (n_ops && (e->index != last_op_index + 1
                          || n_ops == BATCH_MAX_OPS
                          || bytes + psize > BATCH_MAX_BYTES))
                break;
            Titan__Bus__KvWrite *w = titan__bus__kv_write__unpack (NULL, psize,
                                                                   payload);
            if (!w || !w->op) {
                if (w)
                    titan__bus__kv_write__free_unpacked (w, NULL);
                titan_log_error ("raft group %u: entry %" PRIu64 " is not a valid "
                            "write; skipped", self->cfg.shard, e->index);
                continue;
            }
            if (w->client_id && *w->client_id) {
                bool stale = false;
                rg_dedup_rec_t *d = rg_dedup_find (self, w->client_id,
                                                   w->sequence, &stale);
                e->client_id = strdup (w->client_id);
                e->seq = w->sequence;
                if (d || stale) {
                    e->dup = true;
                    titan__bus__kv_write__free_unpacked (w, NULL);
                    continue;
                }
                rg_dedup_note (self, w->client_id, w->sequence, e->index, false);
            }
            if (!n_ops)
                first_rev = e->index;
            e->slot = (int) n_ops;
            writes [n_ops] = w;
            ops [n_ops] = w->op;
            n_ops++;
            bytes += psize;
            last_op_index = e->index;
        }
        /* a batch ends before a write that cannot join its run; the local
           entries between its last op and that write stay in it */
        self->batch_len = len;
        self->batch_ops = n_ops;
        if (n_ops == 0) {
            s_batch_done (self, NULL);
            continue;
        }
        Titan__Bus__KvApplyBatch ab = TITAN__BUS__KV_APPLY_BATCH__INIT;
        ab.shard = self->cfg.shard;
        ab.n_ops = n_ops;
        ab.ops = ops;
        ab.first_revision = first_rev;
        ab.applied_index = s_queue_at (self, len - 1)->index;
        self->batch_size = titan__bus__kv_apply_batch__get_packed_size (&ab);
        self->batch_buf = malloc (self->batch_size + 1);
        if (self->batch_buf)
            titan__bus__kv_apply_batch__pack (&ab, self->batch_buf);
        for (size_t i = 0; i < n_ops; i++)
            titan__bus__kv_write__free_unpacked (writes [i], NULL);
        if (!self->batch_buf) {
            rg_fail (self, -ENOMEM, "building an apply batch");
            return;
        }
        self->busy = true;
        rg_send_batch (self);
    }
}

/*  Split mode: sends op `split_slot` of the batch alone.  The last one
    carries the batch's applied index.  */
static void
s_send_split (raft_group_t *self)
{
    rg_entry_t *e = NULL;
    for (size_t i = 0; i < self->batch_len; i++)
        if (s_queue_at (self, i)->slot == (int) self->split_slot)
            e = s_queue_at (self, i);
    assert (e);
    const uint8_t *payload = NULL;
    size_t psize = 0;
    raft_wire_command_kind (e->data, e->size, &payload, &psize);
    Titan__Bus__KvWrite *w = titan__bus__kv_write__unpack (NULL, psize, payload);
    if (!w) {
        rg_fail (self, -ENOMEM, "decoding a write again");
        return;
    }
    Titan__Bus__KvApplyBatch ab = TITAN__BUS__KV_APPLY_BATCH__INIT;
    ab.shard = self->cfg.shard;
    ab.n_ops = 1;
    ab.ops = &w->op;
    ab.first_revision = e->index;
    ab.applied_index = self->split_slot + 1 == self->batch_ops
                     ? s_queue_at (self, self->batch_len - 1)->index : e->index;
    free (self->batch_buf);
    self->batch_size = titan__bus__kv_apply_batch__get_packed_size (&ab);
    self->batch_buf = malloc (self->batch_size + 1);
    if (self->batch_buf)
        titan__bus__kv_apply_batch__pack (&ab, self->batch_buf);
    titan__bus__kv_write__free_unpacked (w, NULL);
    if (!self->batch_buf) {
        rg_fail (self, -ENOMEM, "building an apply batch");
        return;
    }
    rg_send_batch (self);
}

/*  Split mode: records the result of the op in flight and sends the next,
    or finishes the batch with every result.  */
static void
s_split_next (raft_group_t *self, const Titan__Bus__KvApplyBatchReply *r)
{
    rg_result_t *res = &self->split [self->split_slot];
    if (r->code != TITAN__BUS__CODE__OK) {
        res->code = r->code;
        snprintf (res->message, sizeof res->message, "%s",
                  r->message ? r->message : "");
    }
    else
    if (r->n_results == 1) {
        res->code = r->results [0]->code;
        res->revision = r->results [0]->revision;
        res->current_revision = r->results [0]->current_revision;
        res->deleted = r->results [0]->deleted;
        snprintf (res->message, sizeof res->message, "%s",
                  r->results [0]->message ? r->results [0]->message : "");
    }
    if (++self->split_slot < self->batch_ops) {
        s_send_split (self);
        return;
    }
    size_t n = self->batch_ops;
    Titan__Bus__KvReply *results = calloc (n, sizeof *results);
    Titan__Bus__KvReply **ptrs = calloc (n, sizeof *ptrs);
    if (!results || !ptrs) {
        free (results);
        free (ptrs);
        rg_fail (self, -ENOMEM, "collecting split results");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        titan__bus__kv_reply__init (&results [i]);
        results [i].code = (Titan__Bus__Code) self->split [i].code;
        results [i].revision = self->split [i].revision;
        results [i].current_revision = self->split [i].current_revision;
        results [i].deleted = self->split [i].deleted;
        results [i].message = self->split [i].message;
        ptrs [i] = &results [i];
    }
    Titan__Bus__KvApplyBatchReply all = TITAN__BUS__KV_APPLY_BATCH_REPLY__INIT;
    all.n_results = n;
    all.results = ptrs;
    s_batch_done (self, &all);
    free (results);
    free (ptrs);
}

bool
raft_group_on_reply (raft_group_t *self, titan_envelope_t **env_p)
{
    if (rg_snapshot_on_reply (self, env_p) || rg_check_on_reply (self, env_p))
        return true;
    titan_envelope_t *env = *env_p;
    if (self->busy && self->batch_corr && env->corr == self->batch_corr
    &&  streq (env->type, TITAN_T_KV_APPLY_BATCH)) {
        Titan__Bus__KvApplyBatchReply *r =
            titan__bus__kv_apply_batch_reply__unpack (NULL,
                titan_envelope_size (env), titan_envelope_data (env));
        if (r && r->code == TITAN__BUS__CODE__INVALID_ARGUMENT) {
            /* deterministic refusal of some op (e.g. this replica's bitcask
               has a lower max_value_bytes than the leader's): apply the
               batch op by op, each refused op answered with its error,
               so that the group never wedges and every replica does the
               same */
            self->batch_corr = 0;
            if (!self->split) {
                titan_log_warning ("raft group %u: %s refused a batch of %zu ops "
                              "(%s); applying it op by op", self->cfg.shard,
                              self->storage_module, self->batch_ops,
                              r->message ? r->message : "");
                self->split = calloc (self->batch_ops, sizeof *self->split);
                self->split_slot = 0;
                if (!self->split)
                    rg_fail (self, -ENOMEM, "entering split mode");
                else
                    s_send_split (self);
            }
            else
                s_split_next (self, r);
        }
        else
        if (r && r->code == TITAN__BUS__CODE__OK && self->split)
            s_split_next (self, r);
        else
        if (!r || r->code != TITAN__BUS__CODE__OK) {
            titan_log_warning ("raft group %u: %s refused apply batch of %zu ops "
                          "(%s); retrying in %d ms", self->cfg.shard,
                          self->storage_module, self->batch_ops,
                          r && r->message ? r->message : "malformed reply",
                          APPLY_RETRY_MS);
            self->batch_corr = 0;
            self->retry_at = zclock_mono () + APPLY_RETRY_MS;
        }
        else
            s_batch_done (self, r);
        if (r)
            titan__bus__kv_apply_batch_reply__free_unpacked (r, NULL);
        titan_envelope_destroy (env_p);
        return true;
    }
    for (rg_get_t *g = zlistx_first (self->gets); g;
         g = zlistx_next (self->gets))
        if (g->corr == env->corr && streq (env->type, TITAN_T_KV_GET)) {
            titan_bus_reply (self->cfg.bus, g->env, titan_envelope_data (env),
                             titan_envelope_size (env));
            titan_envelope_destroy (&g->env);
            zlistx_delete (self->gets, zlistx_cursor (self->gets));
            free (g);
            titan_envelope_destroy (env_p);
            return true;
        }
    return false;
}
