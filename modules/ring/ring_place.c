/*  Placement: consistent-hashing ring with virtual nodes and bounded
    loads (method, bounds and rationale in ring_place.h).  Building a
    table walks the ring once per shard to get its preference list and the
    distance to every node, then runs deferred acceptance for the replica
    sets, a fill pass for the lower bound, and deferred acceptance plus an
    augmenting-path repair for the leaders.  The cost is
    O (N V log (N V) + Q N V) to walk the ring and about O (Q N R + Q^2 R)
    for the matching: a few milliseconds for Q = 256, N = 50.  Working
    memory is O (Q N); sizes are the caller's to keep sensible (a Q of
    65536 with 1024 nodes needs about 1 GB and fails with -ENOMEM).
*/
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ring_codec.h"
#include "ring_hash.h"
#include "ring_place.h"
#include "ring_table_priv.h"

typedef struct {
    uint64_t point;
    uint32_t node;
} s_point_t;

static int
s_point_cmp (const void *a, const void *b)
{
    const s_point_t *x = (const s_point_t *) a;
    const s_point_t *y = (const s_point_t *) b;
    if (x->point != y->point)
        return x->point < y->point ? -1 : 1;
    return x->node < y->node ? -1 : x->node > y->node;
}

static uint64_t
s_shard_point (uint32_t shard)
{
    uint8_t buf [4];
    ring_writer_t w = { buf, sizeof buf, 0 };
    ring_put_u32 (&w, shard);
    return ring_xxh64 (buf, sizeof buf, RING_SHARD_SEED);
}

static uint64_t
s_vnode_point (const char *id, uint32_t vnode)
{
    uint8_t buf [RING_ID_MAX + 4];
    size_t len = strlen (id);
    ring_writer_t w = { buf, len + 4, 0 };
    ring_put_bytes (&w, id, len);
    ring_put_u32 (&w, vnode);
    return ring_xxh64 (buf, len + 4, RING_VNODE_SEED);
}

//  First point at or after `point`, wrapping to 0.
static uint32_t
s_lower_bound (const s_point_t *points, uint32_t count, uint64_t point)
{
    uint32_t lo = 0, hi = count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (points [mid].point < point)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == count ? 0 : lo;
}

//  64-bit finalizer (splitmix64): spreads a combination of two hashes.
static uint64_t
s_mix (uint64_t x)
{
    x ^= x >> 30;
    x *= UINT64_C (0xBF58476D1CE4E5B9);
    x ^= x >> 27;
    x *= UINT64_C (0x94D049BB133111EB);
    x ^= x >> 31;
    return x;
}

//  The working state of one placement.
typedef struct {
    uint32_t n;                 //  nodes
    uint32_t q;                 //  shards
    uint64_t *node_hash;        //  [n] xxh64 of the id, for quotas and ties
    uint64_t *shard_point;      //  [q]
    uint16_t *pref;             //  [q * n] each shard's nodes in walk order
    uint64_t *dist;             //  [q * n] clockwise distance from the shard
                                //  to the node's nearest point
    uint32_t *quota;            //  [n]
    uint32_t *load;             //  [n]
    uint32_t *held;             //  [n * q] shards each node holds
    uint32_t *next;             //  [q] next preference each shard proposes to
    uint32_t *queue;            //  [q] shards still needing seats (FIFO ring)
    uint32_t *taken;            //  [q] seats each shard holds
    uint8_t *queued;            //  [q] shard is in the queue
} s_work_t;

//  Does `node` prefer shard a over shard b?  Nodes prefer the shards that
//  rank them earlier in their walk (the shards "nearest" to them on the
//  ring), ties broken by a hash of (shard, node) and then the shard number.
static bool
s_prefers (const s_work_t *w, uint32_t node, uint32_t a, uint32_t b)
{
    uint64_t pa = w->dist [(size_t) a * w->n + node];
    uint64_t pb = w->dist [(size_t) b * w->n + node];
    if (pa != pb)
        return pa < pb;
    uint64_t ka = s_mix (w->shard_point [a] ^ w->node_hash [node]);
    uint64_t kb = s_mix (w->shard_point [b] ^ w->node_hash [node]);
    if (ka != kb)
        return ka < kb;
    return a < b;
}

//  Sets every node's quota: an even share of `total` seats rounded up,
//  plus `slack`; RING_SLACK_NONE lifts the limit (plain ring).
static void
s_quotas (s_work_t *w, uint32_t total, uint32_t slack)
{
    uint64_t cap = ((uint64_t) total + w->n - 1) / w->n + slack;
    if (slack == RING_SLACK_NONE || cap > UINT32_MAX)
        cap = UINT32_MAX;
    for (uint32_t i = 0; i < w->n; i++)
        w->quota [i] = (uint32_t) cap;
}

//  Deferred acceptance (Gale-Shapley, shards proposing): each shard needs
//  `seats` distinct nodes among the first `plen` of its preference list
//  `lists` [shard * stride ..]; a full node keeps the shards it prefers
//  and rejects the least preferred one.  The result is the shard-optimal
//  stable assignment, whatever order proposals are processed in.  Seats
//  still empty when a shard has exhausted its list (a corner case of the
//  distinctness constraint) are given to the least loaded node not holding
//  the shard, quota or not.  `out` [shard * out_stride + k] receives the
//  holders, in the order of the shard's list.
static void
s_assign (s_work_t *w, const uint16_t *lists, uint32_t stride, uint32_t plen,
          uint32_t seats, int32_t *out, uint32_t out_stride)
{
    const uint32_t n = w->n, q = w->q;
    memset (w->load, 0, n * sizeof *w->load);
    memset (w->next, 0, q * sizeof *w->next);
    memset (w->taken, 0, q * sizeof *w->taken);
    uint32_t *taken = w->taken;
    uint32_t head = 0, count = 0;
    for (uint32_t s = 0; s < q; s++) {
        for (uint32_t k = 0; k < out_stride; k++)
            out [(size_t) s * out_stride + k] = -1;
        w->queue [count++] = s;
        w->queued [s] = 1;
    }
    while (count > 0) {
        uint32_t s = w->queue [head];
        head = (head + 1) % q;
        count--;
        w->queued [s] = 0;
        while (taken [s] < seats && w->next [s] < plen) {
            uint32_t node = lists [(size_t) s * stride + w->next [s]++];
            uint32_t *mine = &w->held [(size_t) node * q];
            if (w->load [node] < w->quota [node]) {
                mine [w->load [node]++] = s;
                taken [s]++;
                continue;
            }
            //  Full: find the least preferred shard it holds.
            uint32_t worst = UINT32_MAX;
            for (uint32_t i = 0; i < w->load [node]; i++)
                if (worst == UINT32_MAX
                ||  s_prefers (w, node, mine [worst], mine [i]))
                    worst = i;
            if (worst == UINT32_MAX || !s_prefers (w, node, s, mine [worst]))
                continue;               //  rejected
            uint32_t loser = mine [worst];
            mine [worst] = s;
            taken [s]++;
            taken [loser]--;
            if (!w->queued [loser]) {
                w->queue [(head + count) % q] = loser;
                w->queued [loser] = 1;
                count++;
            }
        }
    }
    //  Collect holders per shard in list order, then fill what is short.
    for (uint32_t s = 0; s < q; s++) {
        uint32_t k = 0;
        for (uint32_t i = 0; i < plen && k < seats; i++) {
            uint32_t node = lists [(size_t) s * stride + i];
            const uint32_t *mine = &w->held [(size_t) node * q];
            for (uint32_t j = 0; j < w->load [node]; j++)
                if (mine [j] == s) {
                    out [(size_t) s * out_stride + k++] = (int32_t) node;
                    break;
                }
        }
        while (k < seats) {
            int32_t best = -1;
            for (uint32_t i = 0; i < plen; i++) {
                uint32_t node = lists [(size_t) s * stride + i];
                bool holds = false;
                for (uint32_t j = 0; j < k && !holds; j++)
                    holds = out [(size_t) s * out_stride + j] == (int32_t) node;
                if (!holds && (best < 0 || w->load [node] < w->load [best]))
                    best = (int32_t) node;
            }
            assert (best >= 0);
            w->held [(size_t) best * q + w->load [best]++] = s;
            out [(size_t) s * out_stride + k++] = best;
        }
    }
}

//  Raises every node to at least `floor` replicas (a cap bounds loads
//  from above only, and a node whose points few shards reach would stay
//  nearly empty).  An underloaded node takes, one at a time, the shard
//  that ranks it highest among those it does not hold and that have a
//  replica on a node above `floor`; that replica (the most loaded such
//  node, the one the shard ranks lowest on a tie) gives its seat.  Every
//  step is chosen by a fixed order, so the result stays a pure function of
//  the membership.  `table` is [q * stride], `width` replicas per shard.
static void
s_fill (s_work_t *w, int32_t *table, uint32_t stride, uint32_t width, uint32_t floor)
{
    const uint32_t n = w->n, q = w->q;
    memset (w->load, 0, n * sizeof *w->load);
    for (uint32_t s = 0; s < q; s++)
        for (uint32_t k = 0; k < width; k++)
            w->load [table [(size_t) s * stride + k]]++;
    for (uint32_t u = 0; u < n; u++) {
        while (w->load [u] < floor) {
            int64_t best_s = -1;
            uint32_t best_k = 0;
            for (uint32_t s = 0; s < q; s++) {
                const int32_t *row = &table [(size_t) s * stride];
                uint32_t donor_k = UINT32_MAX;
                bool holds = false;
                for (uint32_t k = 0; k < width && !holds; k++) {
                    uint32_t v = (uint32_t) row [k];
                    holds = v == u;
                    if (w->load [v] <= floor)
                        continue;
                    if (donor_k == UINT32_MAX)
                        donor_k = k;
                    else {
                        uint32_t d = (uint32_t) row [donor_k];
                        if (w->load [v] > w->load [d]
                        || (w->load [v] == w->load [d]
                            && w->dist [(size_t) s * n + v] > w->dist [(size_t) s * n + d]))
                            donor_k = k;
                    }
                }
                if (holds || donor_k == UINT32_MAX)
                    continue;
                if (best_s < 0 || w->dist [(size_t) s * n + u]
                                < w->dist [(size_t) best_s * n + u]) {
                    best_s = s;
                    best_k = donor_k;
                }
            }
            if (best_s < 0)
                break;                  //  nothing left to take
            int32_t *slot = &table [(size_t) best_s * stride + best_k];
            w->load [*slot]--;
            *slot = (int32_t) u;
            w->load [u]++;
        }
    }
}

//  Is `node` one of the `width` replicas of shard `s`?
static bool
s_in_set (const uint16_t *sets, uint32_t stride, uint32_t width, uint32_t s,
          uint32_t node)
{
    for (uint32_t k = 0; k < width; k++)
        if (sets [(size_t) s * stride + k] == node)
            return true;
    return false;
}

//  Brings every node's count of preferred leaderships into [floor, ceil]
//  where the replica sets allow it, by moving leadership only among a
//  shard's replicas (no data moves).  It is a b-matching repair: from an
//  overloaded node, a breadth-first search over "x leads shard s, of
//  which y is a replica" finds a path to a node with room and shifts one
//  leadership along it; from an underloaded node the same search runs the
//  other way.  Nodes and shards are visited in index order, so the result
//  is deterministic.  Uses w->load (leaders per node), w->queue and
//  w->next as scratch: `parent` [n] and `via` [n] below.
static void
s_balance_leaders (s_work_t *w, const uint16_t *sets, uint32_t stride, uint32_t width,
                   int32_t *leader, uint32_t floor, uint32_t ceil,
                   int32_t *parent, uint32_t *via, uint32_t *bfs)
{
    const uint32_t n = w->n, q = w->q;
    memset (w->load, 0, n * sizeof *w->load);
    for (uint32_t s = 0; s < q; s++)
        w->load [leader [s]]++;
    for (int pass = 0; pass < 2; pass++) {
        //  Pass 0 drains nodes above ceil, pass 1 feeds nodes below floor.
        for (uint32_t u = 0; u < n; u++) {
            while (pass == 0 ? w->load [u] > ceil : w->load [u] < floor) {
                for (uint32_t i = 0; i < n; i++)
                    parent [i] = -1;
                parent [u] = (int32_t) u;
                uint32_t head = 0, tail = 0;
                int32_t found = -1;
                bfs [tail++] = u;
                while (head < tail && found < 0) {
                    uint32_t x = bfs [head++];
                    for (uint32_t s = 0; s < q && found < 0; s++) {
                        if (pass == 0) {
                            //  x gives shard s (which it leads) to a replica y.
                            if (leader [s] != (int32_t) x)
                                continue;
                            for (uint32_t k = 0; k < width && found < 0; k++) {
                                uint32_t y = sets [(size_t) s * stride + k];
                                if (parent [y] >= 0)
                                    continue;
                                parent [y] = (int32_t) x;
                                via [y] = s;
                                if (w->load [y] < ceil)
                                    found = (int32_t) y;
                                else
                                    bfs [tail++] = y;
                            }
                        }
                        else {
                            //  x takes shard s from its leader y.
                            uint32_t y = (uint32_t) leader [s];
                            if (parent [y] >= 0 || !s_in_set (sets, stride, width, s, x))
                                continue;
                            parent [y] = (int32_t) x;
                            via [y] = s;
                            if (w->load [y] > floor)
                                found = (int32_t) y;
                            else
                                bfs [tail++] = y;
                        }
                    }
                }
                if (found < 0)
                    break;              //  the replica sets allow no better
                //  Shift along the path: each step moves one leadership.
                for (uint32_t y = (uint32_t) found; y != u; y = (uint32_t) parent [y])
                    leader [via [y]] = pass == 0 ? (int32_t) y : parent [y];
                if (pass == 0) {
                    w->load [u]--;
                    w->load [found]++;
                }
                else {
                    w->load [u]++;
                    w->load [found]--;
                }
            }
        }
    }
}

int
ring_table_build (const ring_members_t *members, ring_table_t **table_p)
{
    return ring_table_build_opts (members, NULL, table_p);
}

int
ring_table_build_opts (const ring_members_t *members, const ring_place_opts_t *opts,
                       ring_table_t **table_p)
{
    assert (members && table_p);
    *table_p = NULL;
    ring_place_opts_t o = { RING_DEFAULT_VNODES, RING_DEFAULT_SLACK,
                            RING_DEFAULT_LEADER_SLACK };
    if (opts)
        o = *opts;
    if (o.vnodes < 1 || o.vnodes > RING_MAX_VNODES)
        return -EINVAL;

    uint32_t size = ring_members_size (members);
    ring_table_t *self = ring_table_new_priv (ring_members_epoch (members),
                                              ring_members_shards (members),
                                              ring_members_replicas (members), size);
    if (!self)
        return -ENOMEM;
    //  Members come sorted by id, so node indices are in id order.
    for (uint32_t i = 0; i < size; i++) {
        const ring_member_t *m = ring_members_at (members, i);
        if (m->state == RING_JOINING || m->state == RING_ACTIVE)
            strcpy (self->ids [self->nodes++], m->id);
    }
    const uint32_t n = self->nodes;
    const uint32_t q = self->shards;
    const uint32_t r = self->replicas;
    self->width = n < r ? n : r;
    if (n == 0) {
        *table_p = self;
        return 0;
    }

    const uint32_t npoints = n * o.vnodes;
    s_work_t w = { .n = n, .q = q };
    s_point_t *points = (s_point_t *) malloc ((size_t) npoints * sizeof *points);
    uint32_t *seen = (uint32_t *) malloc (n * sizeof *seen);
    int32_t *leader = (int32_t *) malloc (q * sizeof *leader);
    int32_t *parent = (int32_t *) malloc (n * sizeof *parent);
    uint32_t *via = (uint32_t *) malloc (n * sizeof *via);
    uint32_t *bfs = (uint32_t *) malloc (n * sizeof *bfs);
    uint16_t *sets = (uint16_t *) malloc ((size_t) q * r * sizeof *sets);
    w.node_hash = (uint64_t *) malloc (n * sizeof *w.node_hash);
    w.shard_point = (uint64_t *) malloc (q * sizeof *w.shard_point);
    w.pref = (uint16_t *) malloc ((size_t) q * n * sizeof *w.pref);
    w.dist = (uint64_t *) malloc ((size_t) q * n * sizeof *w.dist);
    w.quota = (uint32_t *) malloc (n * sizeof *w.quota);
    w.load = (uint32_t *) malloc (n * sizeof *w.load);
    w.held = (uint32_t *) malloc ((size_t) n * q * sizeof *w.held);
    w.next = (uint32_t *) malloc (q * sizeof *w.next);
    w.queue = (uint32_t *) malloc (q * sizeof *w.queue);
    w.taken = (uint32_t *) malloc (q * sizeof *w.taken);
    w.queued = (uint8_t *) malloc (q);
    int rc = 0;
    if (!points || !seen || !leader || !parent || !via || !bfs || !sets || !w.node_hash || !w.shard_point
    ||  !w.pref || !w.dist || !w.quota || !w.load || !w.held || !w.next || !w.queue
    ||  !w.taken || !w.queued) {
        rc = -ENOMEM;
        goto done;
    }
    //  The ring, and each shard's preference: distinct nodes met walking
    //  clockwise from its point.
    for (uint32_t i = 0; i < n; i++) {
        w.node_hash [i] = ring_xxh64 (self->ids [i], strlen (self->ids [i]),
                                      RING_VNODE_SEED);
        for (uint32_t v = 0; v < o.vnodes; v++)
            points [i * o.vnodes + v] = (s_point_t) { s_vnode_point (self->ids [i], v), i };
    }
    qsort (points, npoints, sizeof *points, s_point_cmp);
    for (uint32_t s = 0; s < q; s++) {
        w.shard_point [s] = s_shard_point (s);
        uint32_t p = s_lower_bound (points, npoints, w.shard_point [s]);
        uint16_t *list = &w.pref [(size_t) s * n];
        uint32_t found = 0;
        memset (seen, 0, n * sizeof *seen);
        for (uint32_t step = 0; step < npoints && found < n; step++) {
            uint32_t node = points [p].node;
            uint64_t point = points [p].point;
            if (++p == npoints)
                p = 0;
            if (!seen [node]) {
                seen [node] = 1;
                //  Unsigned arithmetic wraps: the distance around the ring.
                w.dist [(size_t) s * n + node] = point - w.shard_point [s];
                list [found++] = (uint16_t) node;
            }
        }
        assert (found == n);
    }
    //  Replica sets: deferred acceptance under the upper bound, then the
    //  fill pass for the lower bound.
    s_quotas (&w, q * self->width, o.slack);
    s_assign (&w, w.pref, n, n, self->width, self->replica, r);
    if (o.slack != RING_SLACK_NONE) {
        uint32_t floor = (q * self->width) / n;
        s_fill (&w, self->replica, r, self->width, floor > o.slack ? floor - o.slack : 0);
    }
    //  Keep each shard's replicas in its walk order.
    for (uint32_t s = 0; s < q; s++) {
        int32_t *row = &self->replica [(size_t) s * r];
        for (uint32_t i = 1; i < self->width; i++)
            for (uint32_t j = i; j > 0
                 && w.dist [(size_t) s * n + row [j - 1]] > w.dist [(size_t) s * n + row [j]]; j--) {
                int32_t t = row [j];
                row [j] = row [j - 1];
                row [j - 1] = t;
            }
    }
    //  Preferred leaders: one per shard among its replicas, each node
    //  leading between floor (Q / N) and ceil (Q / N) when the sets allow.
    for (uint32_t s = 0; s < q; s++)
        for (uint32_t k = 0; k < self->width; k++)
            sets [(size_t) s * r + k] = (uint16_t) self->replica [(size_t) s * r + k];
    s_quotas (&w, q, o.leader_slack);
    s_assign (&w, sets, r, self->width, 1, leader, 1);
    if (o.leader_slack != RING_SLACK_NONE) {
        uint32_t floor = q / n, ceil = (q + n - 1) / n;
        s_balance_leaders (&w, sets, r, self->width, leader,
                           floor > o.leader_slack ? floor - o.leader_slack : 0,
                           ceil + o.leader_slack, parent, via, bfs);
    }
    for (uint32_t s = 0; s < q; s++) {
        //  Rank 0 is the leader; the others keep their walk order.
        int32_t *row = &self->replica [(size_t) s * r];
        uint32_t k = 0;
        while (row [k] != leader [s])
            k++;
        memmove (row + 1, row, k * sizeof *row);
        row [0] = leader [s];
    }
done:
    free (points);
    free (seen);
    free (leader);
    free (parent);
    free (via);
    free (bfs);
    free (sets);
    free (w.node_hash);
    free (w.shard_point);
    free (w.pref);
    free (w.dist);
    free (w.quota);
    free (w.load);
    free (w.held);
    free (w.next);
    free (w.queue);
    free (w.taken);
    free (w.queued);
    if (rc)
        ring_table_destroy (&self);
    *table_p = self;
    return rc;
}
