/*  The Raft simulation engine (see sim_raft_harness.h).

    Virtual time advances in ticks.  In each tick every running node ticks,
    the messages due are delivered (a message sent at tick t arrives at
    t + delay, delay drawn per message, so messages overtake each other),
    each node's ready is processed with some probability (persistence lag:
    a crash loses what was not yet persisted), and random events happen.
    Every random choice comes from one xorshift generator seeded by the
    seed, so a run is a pure function of its seed.

    The checker keeps global records: the leader of every term (election
    safety); each node's persisted hard state (its term and commit never go
    back, it never votes twice in one term, even across a crash); for each
    (index, term) the entry's digest and previous term (two logs holding
    the same (index, term) then hold the same entries up to it: log
    matching, checked whenever a node persists entries); for each index the
    entry applied there and the state-machine hash after it (state-machine
    safety, checked at every apply and snapshot install); the committed
    entries a new leader must hold (leader completeness); and for each read
    the highest commit index any node knew when it was issued (a read index
    below it would be a stale read).

    Faults: loss, duplication and delay per message; partitions (random
    split, the leader alone, or links cut in one direction); crashes at any
    tick and in the middle of persisting a ready (entries written, hard
    state maybe not, nothing sent); restarts.  A quarter of the seeds run a
    harsh profile (frequent crashes, one entry per message, slow disks).
*/
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "raft_core.h"
#include "raft_memstore.h"
#include "sim_raft_harness.h"

#define MAX_IDS 12            /* ids 1..MAX_IDS ever used in one run */
#define MAX_LIVE 7            /* members at once */
#define LM_SLOTS (1u << 15)   /* log matching table */

typedef struct {
    uint64_t id;
    raft_memstore_t *store;   /* persisted state; NULL: never existed */
    raft_t *r;                /* NULL: crashed (or never started) */
    bool bootstrap;           /* an initial member */
    bool removed;             /* left the cluster for good */
    int part;                 /* partition side */
    uint64_t fsm_index;       /* state machine: last applied index */
    uint64_t fsm_hash;
    raft_role_t last_role;
    uint64_t last_term;
    uint8_t *staged;          /* streaming mode: snapshot being received */
    uint64_t n_staged;
} node_t;

typedef struct {
    uint64_t at;
    raft_msg_t m;
} wire_t;

typedef struct {
    bool set;
    uint64_t term;
    uint64_t digest;
    uint64_t hash;            /* state-machine hash after applying it */
} applied_t;

typedef struct {
    uint64_t index, term, digest, prev_term;
    bool used;
} lm_slot_t;

typedef struct {
    uint64_t index, term;
    bool acked;
} proposal_t;

typedef struct {
    uint64_t min_index;       /* highest commit known anywhere at issue */
    bool done;
} read_t;

typedef struct {
    sim_opts_t o;
    sim_result_t *res;
    uint64_t rng;
    uint64_t now;
    node_t nodes[MAX_IDS + 1];
    raft_config_t boot;
    /* network */
    wire_t *wire;
    size_t n_wire, cap_wire;
    uint32_t loss_pct, dup_pct, max_delay;
    bool healed;
    bool oneway[MAX_IDS + 1][MAX_IDS + 1];   /* cut links, one direction */
    /* knobs */
    uint32_t crash_pm, partition_pm, propose_pct, read_pct, conf_pm,
             transfer_pm, compact_pm, ready_pct;
    bool pre_vote, check_quorum;
    bool lease;               /* leader lease reads */
    uint32_t snap_filler;
    size_t max_msg_bytes;
    bool snapshot_stream;
    /* checker state */
    uint64_t *term_leader;
    size_t n_term_leader;
    applied_t *applied;
    size_t cap_applied;
    uint64_t max_applied;
    uint64_t max_commit;
    lm_slot_t *lm;
    proposal_t *props;
    size_t n_props, cap_props;
    read_t *reads;
    size_t n_reads, cap_reads;
    uint64_t next_id;
    bool failed;
} sim_t;

/* ---------------------------------------------------------------------- */

static uint64_t
s_rand (sim_t *s)
{
    uint64_t x = s->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s->rng = x;
    return x;
}

static uint32_t
s_below (sim_t *s, uint32_t bound)
{
    return bound ? (uint32_t) (s_rand (s) % bound) : 0;
}

static uint32_t
s_rand_fn (void *ud, uint32_t bound)
{
    return s_below ((sim_t *) ud, bound);
}

static uint64_t s_mix (uint64_t h, uint64_t v);

/*  The lease clock: virtual time, in ticks.  */
static uint64_t
s_clock_fn (void *ud)
{
    return ((sim_t *) ud)->now;
}

static uint64_t
s_mix (uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h *= 0xff51afd7ed558ccdull;
    return h ^ (h >> 33);
}

static uint64_t
s_digest (const raft_entry_t *e)
{
    uint64_t h = s_mix (e->type, e->size);
    for (uint32_t i = 0; i < e->size; i++)
        h = s_mix (h, e->data[i]);
    return h;
}

static void
s_log (sim_t *s, const char *fmt, ...)
{
    if (!s->o.verbose)
        return;
    va_list ap;
    va_start (ap, fmt);
    printf ("[t=%" PRIu64 "] ", s->now);
    vprintf (fmt, ap);
    printf ("\n");
    va_end (ap);
}

static void
s_fail (sim_t *s, const char *fmt, ...)
{
    if (s->failed)
        return;
    s->failed = true;
    va_list ap;
    va_start (ap, fmt);
    int n = snprintf (s->res->failure, sizeof s->res->failure,
                      "t=%" PRIu64 ": ", s->now);
    vsnprintf (s->res->failure + n, sizeof s->res->failure - (size_t) n, fmt, ap);
    va_end (ap);
    if (s->o.verbose)
        printf ("FAILURE %s\n", s->res->failure);
}

/* ---------------------------------------------------------------------- */
/* checks                                                                  */

static void
s_check_log_matching (sim_t *s, node_t *nd, const raft_entry_t *e)
{
    uint64_t prev_term = 0;
    if (e->index > 1 && raft_term_at (nd->r, e->index - 1, &prev_term) != 0)
        prev_term = UINT64_MAX;            /* compacted: unknown */
    uint64_t dg = s_digest (e);
    uint32_t h = (uint32_t) (s_mix (e->index, e->term) & (LM_SLOTS - 1));
    for (uint32_t probe = 0; probe < LM_SLOTS; probe++) {
        lm_slot_t *sl = &s->lm[(h + probe) & (LM_SLOTS - 1)];
        if (!sl->used) {
            sl->used = true;
            sl->index = e->index;
            sl->term = e->term;
            sl->digest = dg;
            sl->prev_term = prev_term;
            return;
        }
        if (sl->index == e->index && sl->term == e->term) {
            if (sl->digest != dg)
                s_fail (s, "log matching: node %" PRIu64 " entry %" PRIu64
                        "/%" PRIu64 " differs from another log's",
                        nd->id, e->index, e->term);
            else if (prev_term != UINT64_MAX && sl->prev_term != UINT64_MAX
                     && sl->prev_term != prev_term)
                s_fail (s, "log matching: node %" PRIu64 " has (%" PRIu64
                        ",%" PRIu64 ") after term %" PRIu64 ", another log after %"
                        PRIu64, nd->id, e->index, e->term, prev_term,
                        sl->prev_term);
            else if (sl->prev_term == UINT64_MAX)
                sl->prev_term = prev_term;
            return;
        }
    }
    s_fail (s, "log matching table full");
}

static applied_t *
s_applied_at (sim_t *s, uint64_t index)
{
    if (index >= s->cap_applied) {
        size_t cap = s->cap_applied ? s->cap_applied : 1024;
        while (cap <= index)
            cap *= 2;
        applied_t *grown = realloc (s->applied, cap * sizeof *grown);
        if (!grown) {
            s_fail (s, "out of memory");
            return NULL;
        }
        memset (grown + s->cap_applied, 0,
                (cap - s->cap_applied) * sizeof *grown);
        s->applied = grown;
        s->cap_applied = cap;
    }
    return &s->applied[index];
}

static void
s_apply (sim_t *s, node_t *nd, const raft_entry_t *e)
{
    if (e->index != nd->fsm_index + 1) {
        s_fail (s, "node %" PRIu64 " applies %" PRIu64 " after %" PRIu64,
                nd->id, e->index, nd->fsm_index);
        return;
    }
    uint64_t dg = s_digest (e);
    nd->fsm_hash = s_mix (s_mix (nd->fsm_hash, e->term), dg);
    nd->fsm_index = e->index;
    applied_t *a = s_applied_at (s, e->index);
    if (!a)
        return;
    if (!a->set) {
        a->set = true;
        a->term = e->term;
        a->digest = dg;
        a->hash = nd->fsm_hash;
        if (e->index > s->max_applied)
            s->max_applied = e->index;
    }
    else if (a->term != e->term || a->digest != dg || a->hash != nd->fsm_hash)
        s_fail (s, "state machine safety: node %" PRIu64 " applied %" PRIu64
                "/%" PRIu64 ", another node applied %" PRIu64 "/%" PRIu64,
                nd->id, e->index, e->term, e->index, a->term);
    for (size_t i = 0; i < s->n_props; i++) {
        proposal_t *p = &s->props[i];
        if (!p->acked && p->index == e->index && p->term == e->term) {
            p->acked = true;
            s->res->acked++;
        }
    }
}

/*  A new leader must hold every entry applied anywhere (all committed),
    down to its own snapshot.  */
static void
s_check_leader_completeness (sim_t *s, node_t *nd)
{
    for (uint64_t i = s->max_applied; i >= 1; i--) {
        uint64_t t;
        int rc = raft_term_at (nd->r, i, &t);
        if (rc == RAFT_ECOMPACTED)
            break;                         /* below its snapshot: committed */
        if (rc != 0 || t != s->applied[i].term) {
            s_fail (s, "leader completeness: leader %" PRIu64 " of term %"
                    PRIu64 " lacks committed entry %" PRIu64 "/%" PRIu64,
                    nd->id, raft_term (nd->r), i, s->applied[i].term);
            return;
        }
    }
}

static void
s_check_roles (sim_t *s)
{
    for (uint64_t id = 1; id <= MAX_IDS; id++) {
        node_t *nd = &s->nodes[id];
        if (!nd->r)
            continue;
        uint64_t c = raft_commit_index (nd->r);
        if (c > s->max_commit)
            s->max_commit = c;
        raft_role_t role = raft_role (nd->r);
        uint64_t term = raft_term (nd->r);
        if (role == RAFT_LEADER
            && (nd->last_role != RAFT_LEADER || nd->last_term != term)) {
            if (term >= s->n_term_leader) {
                size_t cap = s->n_term_leader ? s->n_term_leader : 64;
                while (cap <= term)
                    cap *= 2;
                uint64_t *grown = realloc (s->term_leader, cap * sizeof *grown);
                if (!grown) {
                    s_fail (s, "out of memory");
                    return;
                }
                memset (grown + s->n_term_leader, 0,
                        (cap - s->n_term_leader) * sizeof *grown);
                s->term_leader = grown;
                s->n_term_leader = cap;
            }
            if (s->term_leader[term] && s->term_leader[term] != id)
                s_fail (s, "election safety: nodes %" PRIu64 " and %" PRIu64
                        " both lead term %" PRIu64, s->term_leader[term], id, term);
            s->term_leader[term] = id;
            s->res->elections++;
            s_log (s, "node %" PRIu64 " leads term %" PRIu64, id, term);
            s_check_leader_completeness (s, nd);
        }
        nd->last_role = role;
        nd->last_term = term;
    }
}

/* ---------------------------------------------------------------------- */
/* network                                                                 */

static int
s_copy_msg (raft_msg_t *dst, const raft_msg_t *src)
{
    *dst = *src;
    dst->entries = NULL;
    dst->data = NULL;
    if (src->n_entries) {
        dst->entries = calloc (src->n_entries, sizeof *dst->entries);
        if (!dst->entries)
            return -ENOMEM;
        for (size_t i = 0; i < src->n_entries; i++) {
            dst->entries[i] = src->entries[i];
            dst->entries[i].data = NULL;
            if (src->entries[i].size) {
                dst->entries[i].data = malloc (src->entries[i].size);
                if (!dst->entries[i].data)
                    return -ENOMEM;
                memcpy (dst->entries[i].data, src->entries[i].data,
                        src->entries[i].size);
            }
        }
    }
    if (src->size) {
        dst->data = malloc (src->size);
        if (!dst->data)
            return -ENOMEM;
        memcpy (dst->data, src->data, src->size);
    }
    return 0;
}

static void
s_free_msg (raft_msg_t *m)
{
    raft_entries_free (&m->entries, m->n_entries);
    free (m->data);
    m->data = NULL;
}

static void
s_send (sim_t *s, const raft_msg_t *m)
{
    int copies = 1;
    if (!s->healed) {
        if (s_below (s, 100) < s->loss_pct)
            return;
        if (s_below (s, 100) < s->dup_pct)
            copies = 2;
    }
    for (int c = 0; c < copies; c++) {
        if (s->n_wire == s->cap_wire) {
            size_t cap = s->cap_wire ? s->cap_wire * 2 : 256;
            wire_t *grown = realloc (s->wire, cap * sizeof *grown);
            if (!grown) {
                s_fail (s, "out of memory");
                return;
            }
            s->wire = grown;
            s->cap_wire = cap;
        }
        wire_t *w = &s->wire[s->n_wire];
        w->at = s->now + 1 + s_below (s, s->healed ? 2 : s->max_delay);
        if (s_copy_msg (&w->m, m) != 0) {
            s_free_msg (&w->m);
            s_fail (s, "out of memory");
            return;
        }
        s->n_wire++;
    }
}

/* ---------------------------------------------------------------------- */
/* nodes                                                                   */

static void
s_snapshot_bytes (sim_t *s, node_t *nd, uint8_t **out, uint32_t *size)
{
    uint32_t n = 16 + s->snap_filler;
    uint8_t *buf = malloc (n);
    if (!buf) {
        *out = NULL;
        *size = 0;
        return;
    }
    memcpy (buf, &nd->fsm_index, 8);
    memcpy (buf + 8, &nd->fsm_hash, 8);
    for (uint32_t i = 16; i < n; i++)
        buf[i] = (uint8_t) (nd->fsm_index * 31 + i);
    *out = buf;
    *size = n;
}

static void
s_restore_fsm (sim_t *s, node_t *nd, const uint8_t *data, uint32_t size,
               uint64_t index)
{
    if (index == 0) {
        nd->fsm_index = 0;
        nd->fsm_hash = 0;
        return;
    }
    if (size != 16 + s->snap_filler) {
        s_fail (s, "node %" PRIu64 ": snapshot %" PRIu64 " has %u bytes",
                nd->id, index, size);
        return;
    }
    uint64_t idx, hash;
    memcpy (&idx, data, 8);
    memcpy (&hash, data + 8, 8);
    for (uint32_t i = 16; i < size; i++)
        if (data[i] != (uint8_t) (idx * 31 + i)) {
            s_fail (s, "node %" PRIu64 ": snapshot %" PRIu64 " corrupt at %u",
                    nd->id, index, i);
            return;
        }
    applied_t *a = s_applied_at (s, idx);
    if (idx != index || !a || !a->set || a->hash != hash) {
        s_fail (s, "state machine safety: node %" PRIu64 " got a snapshot at %"
                PRIu64 " whose state differs", nd->id, index);
        return;
    }
    nd->fsm_index = idx;
    nd->fsm_hash = hash;
}

static void
s_start (sim_t *s, node_t *nd)
{
    raft_options_t o;
    raft_options_init (&o);
    o.id = nd->id;
    o.group = 7;
    o.storage = raft_memstore_storage (nd->store);
    o.bootstrap = nd->bootstrap ? &s->boot : NULL;
    o.hard_state = raft_memstore_hard_state (nd->store);
    const raft_storage_t *st = o.storage;
    raft_snapshot_meta_t meta;
    st->snapshot_meta (st->ud, &meta);
    uint32_t size = 0;
    const uint8_t *data = raft_memstore_snapshot_data (nd->store, &size);
    s_restore_fsm (s, nd, data, size, meta.index);
    o.applied = meta.index;
    o.election_ticks = 10;
    o.heartbeat_ticks = 2;
    o.rand_fn = s_rand_fn;
    o.rand_ud = s;
    o.pre_vote = s->pre_vote;
    o.check_quorum = s->check_quorum;
    /* a voter refuses votes for 10 ticks of virtual time after it heard
       the round; the lease keeps 10 % of that for clock-rate drift */
    o.election_time = o.election_ticks;
    o.lease_duration = s->lease ? o.election_ticks - 1 : 0;
    o.clock_fn = s_clock_fn;
    o.clock_ud = s;
    o.max_msg_bytes = s->max_msg_bytes;
    o.snapshot_stream = s->snapshot_stream;
    o.max_inflight = 4;
    o.snapshot_chunk_bytes = 256;
    o.bugs = s->o.bugs;
    char err[256];
    int rc = raft_new (&o, &nd->r, err, sizeof err);
    if (rc)
        s_fail (s, "raft_new node %" PRIu64 ": %s", nd->id, err);
    nd->last_role = RAFT_FOLLOWER;
    nd->last_term = 0;
}

static void
s_crash (sim_t *s, node_t *nd)
{
    s_log (s, "crash node %" PRIu64, nd->id);
    s->res->lease_reads += raft_lease_reads (nd->r);
    raft_destroy (&nd->r);
    nd->n_staged = 0;                 /* a staging file would be discarded */
}

/*  Streaming mode: chunks arrive in order from offset 0.  */
static void
s_stage (sim_t *s, node_t *nd, const raft_snapshot_chunk_t *c)
{
    s_log (s, "node %" PRIu64 " stages snapshot %" PRIu64 " bytes %" PRIu64
           "+%u", nd->id, c->meta.index, c->offset, c->size);
    if (c->offset == 0)
        nd->n_staged = 0;
    if (c->offset != nd->n_staged) {
        s_fail (s, "node %" PRIu64 ": snapshot chunk at %" PRIu64 ", %" PRIu64
                " staged", nd->id, c->offset, nd->n_staged);
        return;
    }
    uint8_t *grown = realloc (nd->staged, nd->n_staged + c->size + 1);
    if (!grown) {
        s_fail (s, "out of memory");
        return;
    }
    nd->staged = grown;
    if (c->size)
        memcpy (nd->staged + nd->n_staged, c->data, c->size);
    nd->n_staged += c->size;
}

static void
s_process_ready (sim_t *s, node_t *nd)
{
    for (int round = 0; round < 8 && nd->r && raft_has_ready (nd->r); round++) {
        raft_ready_t rd;
        int rc = raft_ready (nd->r, &rd);
        if (rc) {
            s_fail (s, "raft_ready node %" PRIu64 ": %d", nd->id, rc);
            return;
        }
        for (size_t i = 0; i < rd.n_entries; i++)
            s_check_log_matching (s, nd, &rd.entries[i]);
        for (size_t i = 0; i < rd.n_snap_chunks; i++)
            s_stage (s, nd, &rd.snap_chunks[i]);
        raft_snapshot_t *core_snap = rd.snapshot;
        raft_snapshot_t streamed;
        if (rd.snapshot && s->snapshot_stream) {
            if (rd.snapshot->data || rd.snapshot->size != nd->n_staged) {
                s_fail (s, "node %" PRIu64 ": streamed snapshot of %" PRIu64
                        " bytes, %" PRIu64 " staged", nd->id,
                        rd.snapshot->size, nd->n_staged);
                return;
            }
            streamed = *rd.snapshot;
            streamed.data = nd->staged;
            rd.snapshot = &streamed;
        }
        if (rd.snapshot) {
            s_restore_fsm (s, nd, rd.snapshot->data, (uint32_t) rd.snapshot->size,
                           rd.snapshot->meta.index);
            s->res->snapshots_sent++;
            s_log (s, "node %" PRIu64 " installs snapshot %" PRIu64, nd->id,
                   rd.snapshot->meta.index);
        }
        if (rd.has_hard_state) {
            /* persisted term and commit never go back; one vote per term */
            raft_hard_state_t old = raft_memstore_hard_state (nd->store);
            const raft_hard_state_t *hs = &rd.hard_state;
            if (hs->term < old.term || hs->commit < old.commit
                || (hs->term == old.term && old.vote && hs->vote != old.vote))
                s_fail (s, "node %" PRIu64 " hard state (%" PRIu64 ",%" PRIu64
                        ",%" PRIu64 ") after (%" PRIu64 ",%" PRIu64 ",%" PRIu64 ")",
                        nd->id, hs->term, hs->vote, hs->commit, old.term,
                        old.vote, old.commit);
        }
        if (!s->healed && s_below (s, 1000) < s->crash_pm) {
            /* crash in the middle of this ready: the entries (and maybe
               the hard state written after them) reached the disk, nothing
               was sent, applied or acknowledged */
            if (rd.snapshot)
                rc = raft_memstore_install_snapshot (nd->store, rd.snapshot);
            if (rc == 0 && rd.n_entries)
                rc = raft_memstore_append (nd->store, rd.entries, rd.n_entries);
            if (rc == 0 && rd.has_hard_state && s_below (s, 2))
                raft_memstore_set_hard_state (nd->store, &rd.hard_state);
            if (rc)
                s_fail (s, "persist node %" PRIu64 ": %d", nd->id, rc);
            s_log (s, "node %" PRIu64 " crashes while persisting", nd->id);
            s_crash (s, nd);
            return;
        }
        rc = raft_memstore_persist (nd->store, &rd);
        if (rc) {
            s_fail (s, "persist node %" PRIu64 ": %d", nd->id, rc);
            return;
        }
        for (size_t i = 0; i < rd.n_msgs; i++)
            s_send (s, &rd.msgs[i]);
        for (size_t i = 0; i < rd.n_committed; i++)
            s_apply (s, nd, &rd.committed[i]);
        for (size_t i = 0; i < rd.n_reads; i++) {
            uint64_t ctx = rd.reads[i].ctx;
            if (ctx >= s->n_reads || s->reads[ctx].done)
                continue;               /* duplicate answer */
            if (rd.reads[i].failed) {
                s->reads[ctx].done = true;
                s->res->reads_failed++;
                continue;
            }
            s->reads[ctx].done = true;
            s->res->reads++;
            if (rd.reads[i].index < s->reads[ctx].min_index)
                s_fail (s, "stale read: read %" PRIu64 " on node %" PRIu64
                        " got index %" PRIu64 " but %" PRIu64 " was committed "
                        "before it was issued", ctx, nd->id, rd.reads[i].index,
                        s->reads[ctx].min_index);
        }
        rd.snapshot = core_snap;
        rc = raft_advance (nd->r, &rd);
        if (rc) {
            s_fail (s, "raft_advance node %" PRIu64 ": %d", nd->id, rc);
            return;
        }
        if (raft_applied_index (nd->r) != nd->fsm_index) {
            s_fail (s, "node %" PRIu64 ": core applied %" PRIu64 ", fsm %" PRIu64,
                    nd->id, raft_applied_index (nd->r), nd->fsm_index);
            return;
        }
    }
}

static node_t *
s_leader (sim_t *s)
{
    node_t *best = NULL;
    for (uint64_t id = 1; id <= MAX_IDS; id++) {
        node_t *nd = &s->nodes[id];
        if (nd->r && raft_role (nd->r) == RAFT_LEADER
            && (!best || raft_term (nd->r) > raft_term (best->r)))
            best = nd;
    }
    return best;
}

static size_t
s_live_count (sim_t *s)
{
    size_t n = 0;
    for (uint64_t id = 1; id <= MAX_IDS; id++)
        if (s->nodes[id].store && !s->nodes[id].removed)
            n++;
    return n;
}

/* ---------------------------------------------------------------------- */
/* random events                                                           */

static void
s_event_propose (sim_t *s)
{
    node_t *ld = s_leader (s);
    if (!ld)
        return;
    uint8_t buf[24];
    uint32_t size = 1 + s_below (s, sizeof buf);
    for (uint32_t i = 0; i < size; i++)
        buf[i] = (uint8_t) s_rand (s);
    uint64_t index, term;
    if (raft_propose (ld->r, buf, size, &index, &term) != 0)
        return;
    if (s->n_props == s->cap_props) {
        size_t cap = s->cap_props ? s->cap_props * 2 : 256;
        proposal_t *grown = realloc (s->props, cap * sizeof *grown);
        if (!grown) {
            s_fail (s, "out of memory");
            return;
        }
        s->props = grown;
        s->cap_props = cap;
    }
    s->props[s->n_props++] = (proposal_t) { .index = index, .term = term };
}

static void
s_event_read (sim_t *s)
{
    uint64_t running[MAX_IDS];
    uint32_t n_running = 0;
    for (uint64_t id = 1; id <= MAX_IDS; id++)
        if (s->nodes[id].r)
            running[n_running++] = id;
    if (n_running == 0)
        return;
    node_t *nd = &s->nodes[running[s_below (s, n_running)]];
    if (s->n_reads == s->cap_reads) {
        size_t cap = s->cap_reads ? s->cap_reads * 2 : 256;
        read_t *grown = realloc (s->reads, cap * sizeof *grown);
        if (!grown) {
            s_fail (s, "out of memory");
            return;
        }
        s->reads = grown;
        s->cap_reads = cap;
    }
    uint64_t ctx = s->n_reads;
    if (raft_read_index (nd->r, ctx) != 0)
        return;
    s->reads[s->n_reads++] = (read_t) { .min_index = s->max_commit };
}

static void
s_event_conf (sim_t *s)
{
    node_t *ld = s_leader (s);
    if (!ld)
        return;
    const raft_config_t *cfg = raft_config (ld->r);
    uint32_t what = s_below (s, 3);
    if (what == 0 && s_live_count (s) < MAX_LIVE && s->next_id <= MAX_IDS) {
        node_t *nd = &s->nodes[s->next_id];
        if (raft_propose_conf (ld->r, RAFT_CONF_ADD_LEARNER, nd->id, NULL, NULL))
            return;
        s->next_id++;
        nd->store = raft_memstore_new ();
        if (!nd->store) {
            s_fail (s, "out of memory");
            return;
        }
        s_start (s, nd);
        s->res->conf_changes++;
        s_log (s, "add learner %" PRIu64, nd->id);
    }
    else if (what == 1 && cfg->n_learners) {
        uint64_t id = cfg->learners[s_below (s, cfg->n_learners)];
        uint64_t match;
        if (raft_progress (ld->r, id, &match) != 0
            || match < raft_commit_index (ld->r))
            return;                         /* not caught up yet */
        if (raft_propose_conf (ld->r, RAFT_CONF_PROMOTE, id, NULL, NULL) == 0) {
            s->res->conf_changes++;
            s_log (s, "promote %" PRIu64, id);
        }
    }
    else if (what == 2 && cfg->n_voters > 3) {
        uint64_t id = cfg->voters[s_below (s, cfg->n_voters)];
        if (raft_propose_conf (ld->r, RAFT_CONF_REMOVE, id, NULL, NULL) == 0) {
            s->nodes[id].removed = true;
            s->res->conf_changes++;
            s_log (s, "remove %" PRIu64, id);
        }
    }
}

static void
s_event_transfer (sim_t *s)
{
    node_t *ld = s_leader (s);
    if (!ld)
        return;
    const raft_config_t *cfg = raft_config (ld->r);
    uint64_t id = cfg->voters[s_below (s, cfg->n_voters)];
    if (raft_transfer_leadership (ld->r, id) == 0)
        s_log (s, "transfer %" PRIu64 " -> %" PRIu64, ld->id, id);
}

static void
s_event_compact (sim_t *s, node_t *nd)
{
    if (!nd->r)
        return;
    const raft_storage_t *st = raft_memstore_storage (nd->store);
    uint64_t snap = st->first_index (st->ud) - 1;
    uint64_t applied = raft_applied_index (nd->r);
    if (applied <= snap + 3)
        return;
    uint8_t *data;
    uint32_t size;
    s_snapshot_bytes (s, nd, &data, &size);
    if (!data) {
        s_fail (s, "out of memory");
        return;
    }
    int rc = raft_memstore_compact (nd->store, applied,
                                    raft_applied_config (nd->r), data, size);
    free (data);
    if (rc)
        s_fail (s, "compact node %" PRIu64 " at %" PRIu64 ": %d", nd->id,
                applied, rc);
    else
        s_log (s, "node %" PRIu64 " compacts to %" PRIu64, nd->id, applied);
}

static void
s_random_events (sim_t *s)
{
    for (uint64_t id = 1; id <= MAX_IDS; id++) {
        node_t *nd = &s->nodes[id];
        if (!nd->store)
            continue;
        if (nd->r && s_below (s, 1000) < s->crash_pm)
            s_crash (s, nd);
        else if (!nd->r && s_below (s, 100) < 5) {
            s_log (s, "restart node %" PRIu64, id);
            s_start (s, nd);
        }
        if (s_below (s, 1000) < s->compact_pm)
            s_event_compact (s, nd);
    }
    if (s_below (s, 1000) < s->partition_pm) {
        uint32_t mode = s_below (s, 3);
        node_t *ld = s_leader (s);
        if (mode == 0) {                  /* random split in two */
            for (uint64_t id = 1; id <= MAX_IDS; id++)
                s->nodes[id].part = (int) s_below (s, 2);
            s_log (s, "partition: random split");
        }
        else if (mode == 1 && ld) {       /* the leader alone */
            for (uint64_t id = 1; id <= MAX_IDS; id++)
                s->nodes[id].part = id == ld->id;
            s_log (s, "partition: leader %" PRIu64 " isolated", ld->id);
        }
        else {                            /* some links fail one way */
            for (int k = 0; k < 3; k++) {
                uint64_t a = 1 + s_below (s, MAX_IDS), b = 1 + s_below (s, MAX_IDS);
                s->oneway[a][b] = true;
                s_log (s, "partition: link %" PRIu64 " -> %" PRIu64 " cut", a, b);
            }
        }
    }
    else if (s_below (s, 1000) < s->partition_pm * 2) {
        for (uint64_t id = 1; id <= MAX_IDS; id++)
            s->nodes[id].part = 0;
        memset (s->oneway, 0, sizeof s->oneway);
    }
    if (s_below (s, 100) < s->propose_pct)
        s_event_propose (s);
    if (s_below (s, 100) < s->read_pct)
        s_event_read (s);
    if (s_below (s, 1000) < s->conf_pm)
        s_event_conf (s);
    if (s_below (s, 1000) < s->transfer_pm)
        s_event_transfer (s);
}

/* ---------------------------------------------------------------------- */

static void
s_deliver (sim_t *s)
{
    size_t i = 0;
    while (i < s->n_wire && !s->failed) {
        wire_t *w = &s->wire[i];
        if (w->at > s->now) {
            i++;
            continue;
        }
        raft_msg_t m = w->m;
        s->wire[i] = s->wire[--s->n_wire];
        node_t *to = m.to <= MAX_IDS ? &s->nodes[m.to] : NULL;
        node_t *from = m.from <= MAX_IDS ? &s->nodes[m.from] : NULL;
        if (to && from && to->r && to->part == from->part
            && !s->oneway[from->id][to->id]) {
            int rc = raft_step (to->r, &m);
            s->res->steps++;
            if (rc)
                s_fail (s, "raft_step node %" PRIu64 " type %u: %d", to->id,
                        m.type, rc);
            s_check_roles (s);
        }
        s_free_msg (&m);
    }
}

static void
s_tick (sim_t *s)
{
    s->now++;
    s->res->ticks++;
    for (uint64_t id = 1; id <= MAX_IDS; id++) {
        node_t *nd = &s->nodes[id];
        if (!nd->r)
            continue;
        int rc = raft_tick (nd->r);
        s->res->steps++;
        if (rc)
            s_fail (s, "raft_tick node %" PRIu64 ": %d", id, rc);
    }
    s_check_roles (s);
    s_deliver (s);
    for (uint64_t id = 1; id <= MAX_IDS; id++) {
        node_t *nd = &s->nodes[id];
        if (nd->r && (s->healed || s_below (s, 100) < s->ready_pct))
            s_process_ready (s, nd);
    }
    s_check_roles (s);
}

/*  True once every member of the leader's configuration runs, has the
    leader's whole log applied, and an entry of the leader's term is
    committed.  */
static bool
s_converged (sim_t *s)
{
    node_t *ld = s_leader (s);
    if (!ld)
        return false;
    uint64_t last = raft_last_index (ld->r);
    uint64_t t;
    if (raft_commit_index (ld->r) != last || raft_applied_index (ld->r) != last
        || raft_term_at (ld->r, last, &t) != 0 || t != raft_term (ld->r))
        return false;
    const raft_config_t *cfg = raft_config (ld->r);
    for (int pass = 0; pass < 2; pass++) {
        uint32_t n = pass ? cfg->n_learners : cfg->n_voters;
        const uint64_t *ids = pass ? cfg->learners : cfg->voters;
        for (uint32_t i = 0; i < n; i++) {
            node_t *nd = &s->nodes[ids[i]];
            if (!nd->r || raft_applied_index (nd->r) != last
                || raft_leader (nd->r) != ld->id)
                return false;
        }
    }
    return true;
}

static void
s_final_checks (sim_t *s)
{
    node_t *ld = s_leader (s);
    uint64_t last = raft_last_index (ld->r);
    const raft_config_t *cfg = raft_config (ld->r);
    for (int pass = 0; pass < 2; pass++) {
        uint32_t n = pass ? cfg->n_learners : cfg->n_voters;
        const uint64_t *ids = pass ? cfg->learners : cfg->voters;
        for (uint32_t i = 0; i < n; i++) {
            node_t *nd = &s->nodes[ids[i]];
            if (nd->fsm_index != last || nd->fsm_hash != ld->fsm_hash)
                s_fail (s, "node %" PRIu64 " did not converge (applied %" PRIu64
                        " of %" PRIu64 ")", nd->id, nd->fsm_index, last);
        }
    }
    for (size_t i = 0; i < s->n_props; i++) {
        proposal_t *p = &s->props[i];
        if (p->acked && (p->index > last || !s->applied[p->index].set
                         || s->applied[p->index].term != p->term))
            s_fail (s, "acknowledged proposal %" PRIu64 "/%" PRIu64
                    " is not applied", p->index, p->term);
    }
}

int
sim_run (const sim_opts_t *opts, sim_result_t *res)
{
    memset (res, 0, sizeof *res);
    sim_t *s = calloc (1, sizeof *s);
    if (!s) {
        snprintf (res->failure, sizeof res->failure, "out of memory");
        return -1;
    }
    s->o = *opts;
    s->res = res;
    s->rng = s_mix (opts->seed, 0x5eed) | 1;
    s->lm = calloc (LM_SLOTS, sizeof *s->lm);
    if (!s->lm) {
        free (s);
        snprintf (res->failure, sizeof res->failure, "out of memory");
        return -1;
    }
    /* the seed chooses the scenario */
    uint32_t n = 3 + s_below (s, 3);
    if (s_below (s, 4) == 0)
        n = 7;
    res->nodes = (int) n;
    s->loss_pct = s_below (s, 15);
    s->dup_pct = s_below (s, 8);
    s->max_delay = 1 + s_below (s, 5);
    s->crash_pm = s_below (s, 8);
    s->partition_pm = s_below (s, 8);
    s->propose_pct = 10 + s_below (s, 50);
    s->read_pct = s_below (s, 20);
    s->conf_pm = s_below (s, 20);
    s->transfer_pm = s_below (s, 10);
    s->compact_pm = s_below (s, 30);
    s->ready_pct = 50 + s_below (s, 51);
    s->pre_vote = s_below (s, 8) != 0;
    s->check_quorum = s_below (s, 8) != 0;
    s->snap_filler = s_below (s, 1500);
    s->snapshot_stream = s_below (s, 2) == 0;
    /* from the seed, not the generator: the scenarios stay as they were */
    s->lease = (s_mix (opts->seed, 0x1ea5e) & 3) != 0;
    uint32_t chaos_ticks = 300 + s_below (s, 400);
    s->max_msg_bytes = 64;
    bool harsh = s_below (s, 4) == 0;
    if (harsh || opts->harsh) {
        /* frequent crashes right after appends, one entry per message,
           slow persistence: the ground of the Raft paper's figure 8 */
        s->crash_pm = 20 + s_below (s, 40);
        s->partition_pm = 5 + s_below (s, 20);
        s->max_msg_bytes = 1;
        s->ready_pct = 30 + s_below (s, 50);
        s->propose_pct = 30 + s_below (s, 60);
        s->read_pct = 20 + s_below (s, 60);
    }
    for (uint32_t i = 0; i < n; i++)
        s->boot.voters[s->boot.n_voters++] = i + 1;
    for (uint64_t id = 1; id <= MAX_IDS; id++)
        s->nodes[id].id = id;
    for (uint32_t i = 0; i < n; i++) {
        node_t *nd = &s->nodes[i + 1];
        nd->bootstrap = true;
        nd->store = raft_memstore_new ();
        if (!nd->store) {
            s_fail (s, "out of memory");
            break;
        }
        s_start (s, nd);
    }
    s->next_id = n + 1;
    s_log (s, "seed %" PRIu64 ": %u nodes, loss %u%% dup %u%% delay<=%u "
           "crash %u/1000 partition %u/1000 pre_vote %d check_quorum %d "
           "lease %d", opts->seed, n, s->loss_pct, s->dup_pct, s->max_delay,
           s->crash_pm, s->partition_pm, s->pre_vote, s->check_quorum,
           s->lease);

    for (uint32_t t = 0; t < chaos_ticks && !s->failed; t++) {
        s_tick (s);
        if (!s->failed)
            s_random_events (s);
    }
    /* heal: everything back, no more faults; a few more writes */
    s->healed = true;
    s_log (s, "heal");
    memset (s->oneway, 0, sizeof s->oneway);
    for (uint64_t id = 1; id <= MAX_IDS; id++) {
        node_t *nd = &s->nodes[id];
        nd->part = 0;
        if (nd->store && !nd->r && !s->failed)
            s_start (s, nd);
    }
    uint32_t t = 0;
    for (; t < 3000 && !s->failed; t++) {
        s_tick (s);
        if (t < 100 && s_below (s, 100) < 20)
            s_event_propose (s);
        if (t > 100 && t % 10 == 0 && s_converged (s))
            break;
    }
    if (!s->failed && t >= 3000)
        s_fail (s, "no convergence 3000 ticks after healing (leader %s)",
                s_leader (s) ? "present" : "absent");
    if (!s->failed)
        s_final_checks (s);

    int rc = s->failed ? -1 : 0;
    for (uint64_t id = 1; id <= MAX_IDS; id++) {
        if (s->nodes[id].r)
            res->lease_reads += raft_lease_reads (s->nodes[id].r);
        raft_destroy (&s->nodes[id].r);
        raft_memstore_destroy (&s->nodes[id].store);
        free (s->nodes[id].staged);
    }
    for (size_t i = 0; i < s->n_wire; i++)
        s_free_msg (&s->wire[i].m);
    free (s->wire);
    free (s->term_leader);
    free (s->applied);
    free (s->lm);
    free (s->props);
    free (s->reads);
    free (s);
    return rc;
}
