/*  Titan-KV linearizability checker: the search.

    The history is split by key; each key's relevant operations become a
    doubly linked list of call and return entries sorted by time (a call
    sorts before a return at the same instant, so touching intervals count
    as concurrent).  The search is the one of Wing & Gong as improved by
    Lowe and used by porcupine: take the first call in the list, step the
    model; if legal and the pair (set of linearized ops, model state) was
    not seen before, remember it, push a frame and lift the call and its
    return out of the list, then restart from the head.  Reaching a return
    entry means the operation it closes can no longer be linearized in
    time: pop the last frame, put its entries back, and try the next call.
    An empty stack at a return is a violation.

    Unknown outcomes have their return at +infinity, so they sort after
    every known return: the key is linearizable as soon as every known
    operation is linearized, whatever unknown ones remain (never taking
    effect).  The memo set keys on the model state and a 128-bit
    fingerprint of the linearized set, maintained incrementally (two random
    64-bit words per operation, xor'ed in and out).
*/
#include "lin_check.h"
#include "lin_model_kv.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct _s_entry_t {
    struct _s_entry_t *prev, *next, *match;
    int64_t time;
    uint32_t op;                //  key-local op index
    bool is_call;
} s_entry_t;

typedef struct {
    s_entry_t *entry;           //  call entry that was lifted
    lin_kv_state_t state;       //  state before it
} s_frame_t;

//  Memo set of (linearized set, state).  The set is kept as a 128-bit
//  fingerprint (two independent xor-sums of random words per op), not as
//  a bitset: a bitset costs n/8 bytes per entry, and a key with thousands
//  of ops and a deep search would need gigabytes.  Two different sets
//  share a fingerprint with probability ~2^-128 per pair; see the docs.
#define S_SLOT_WORDS 5          //  state (3 words) + fingerprint (2)
typedef struct {
    uint64_t *arena;
    size_t count, arena_cap;
    uint32_t *table;            //  slot index + 1, 0 = empty
    uint64_t *hashes;
    size_t table_cap;           //  power of two
} s_memo_t;

//  Deepest failure seen, for the explanation.
typedef struct {
    long depth;                 //  -1: none yet; else ops in the prefix
    long known;                 //  known-outcome ops in the prefix
    uint32_t tail [4];          //  last linearized ops
    size_t tail_count;
    uint32_t blocker;           //  op whose return was reached
    uint32_t cands [8];         //  calls that could not go next
    size_t cand_count;
    lin_kv_state_t state;
} s_deepest_t;

typedef struct {
    const lin_history_t *history;
    uint64_t max_steps;
    struct timespec deadline;
    bool has_deadline;
    uint64_t steps;
    bool out_of_budget;
} s_ctx_t;

//  One key's sub-history.
typedef struct {
    size_t n;
    size_t *hist;               //  key-local op -> history index
    lin_kv_op_t *ops;
    const uint8_t **vals;       //  interned id - 1 -> bytes
    size_t *val_lens;
    size_t nvals;
    size_t known;               //  ops with a known outcome
} s_key_t;

static uint64_t
s_mix (uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t
s_state_hash (const lin_kv_state_t *s)
{
    return s_mix (s->value ^ s_mix (s->rev ^ s_mix (s->floor)));
}

//  --------------------------------------------------------------------------
//  Memo set

static void
s_memo_free (s_memo_t *memo)
{
    free (memo->arena);
    free (memo->table);
    free (memo->hashes);
    memset (memo, 0, sizeof *memo);
}

static int
s_memo_grow (s_memo_t *memo)
{
    size_t cap = memo->table_cap ? memo->table_cap * 2 : 1024;
    uint32_t *table = calloc (cap, sizeof (uint32_t));
    uint64_t *hashes = calloc (cap, sizeof (uint64_t));
    if (!table || !hashes) {
        free (table);
        free (hashes);
        return -ENOMEM;
    }
    for (size_t i = 0; i < memo->table_cap; i++) {
        if (!memo->table [i])
            continue;
        size_t j = memo->hashes [i] & (cap - 1);
        while (table [j])
            j = (j + 1) & (cap - 1);
        table [j] = memo->table [i];
        hashes [j] = memo->hashes [i];
    }
    free (memo->table);
    free (memo->hashes);
    memo->table = table;
    memo->hashes = hashes;
    memo->table_cap = cap;
    return 0;
}

//  Inserts (set fingerprint fp, state) unless present.  Returns 1 if
//  inserted, 0 if it was already there, -ENOMEM.
static int
s_memo_insert (s_memo_t *memo, const uint64_t fp [2], const lin_kv_state_t *state)
{
    if ((memo->count + 1) * 2 > memo->table_cap && s_memo_grow (memo))
        return -ENOMEM;
    uint64_t hash = s_mix (fp [0] ^ s_state_hash (state));
    size_t j = hash & (memo->table_cap - 1);
    while (memo->table [j]) {
        if (memo->hashes [j] == hash) {
            const uint64_t *slot = memo->arena + (size_t) (memo->table [j] - 1) * S_SLOT_WORDS;
            if (memcmp (slot, state, sizeof *state) == 0
            &&  slot [3] == fp [0] && slot [4] == fp [1])
                return 0;
        }
        j = (j + 1) & (memo->table_cap - 1);
    }
    if (memo->count >= UINT32_MAX - 1)
        return -ENOMEM;
    if (memo->count == memo->arena_cap) {
        size_t cap = memo->arena_cap ? memo->arena_cap * 2 : 1024;
        uint64_t *arena = realloc (memo->arena, cap * S_SLOT_WORDS * sizeof (uint64_t));
        if (!arena)
            return -ENOMEM;
        memo->arena = arena;
        memo->arena_cap = cap;
    }
    uint64_t *slot = memo->arena + memo->count * S_SLOT_WORDS;
    memcpy (slot, state, sizeof *state);
    slot [3] = fp [0];
    slot [4] = fp [1];
    memo->table [j] = (uint32_t) ++memo->count;
    memo->hashes [j] = hash;
    return 1;
}

//  --------------------------------------------------------------------------
//  Entry list

static int
s_entry_cmp (const void *a, const void *b)
{
    const s_entry_t *x = *(const s_entry_t * const *) a, *y = *(const s_entry_t * const *) b;
    if (x->time != y->time)
        return x->time < y->time ? -1 : 1;
    if (x->is_call != y->is_call)
        return x->is_call ? -1 : 1;
    return x->op < y->op ? -1 : x->op > y->op;
}

static void
s_lift (s_entry_t *call)
{
    call->prev->next = call->next;
    call->next->prev = call->prev;
    s_entry_t *ret = call->match;
    ret->prev->next = ret->next;
    if (ret->next)
        ret->next->prev = ret->prev;
}

static void
s_unlift (s_entry_t *call)
{
    s_entry_t *ret = call->match;
    ret->prev->next = ret;
    if (ret->next)
        ret->next->prev = ret;
    call->prev->next = call;
    call->next->prev = call;
}

static bool
s_budget_spent (s_ctx_t *ctx)
{
    if (ctx->max_steps && ctx->steps >= ctx->max_steps)
        return true;
    if (ctx->has_deadline && (ctx->steps & 1023) == 0) {
        struct timespec now;
        clock_gettime (CLOCK_MONOTONIC, &now);
        if (now.tv_sec > ctx->deadline.tv_sec
        || (now.tv_sec == ctx->deadline.tv_sec && now.tv_nsec >= ctx->deadline.tv_nsec))
            return true;
    }
    return false;
}

//  Checks one key.  Returns LIN_RESULT_* or -ENOMEM; fills *deepest.
static int
s_check_key (s_ctx_t *ctx, s_key_t *key, s_deepest_t *deepest)
{
    size_t n = key->n;
    deepest->depth = -1;
    if (n == 0)
        return LIN_RESULT_OK;
    int rc = -ENOMEM;
    s_entry_t *entries = calloc (2 * n + 1, sizeof (s_entry_t));
    s_entry_t **order = calloc (2 * n, sizeof (s_entry_t *));
    s_frame_t *stack = calloc (n, sizeof (s_frame_t));
    uint64_t *zob = calloc (2 * n, sizeof (uint64_t));
    s_memo_t memo = { 0 };
    if (!entries || !order || !stack || !zob)
        goto done;

    size_t known_left = 0;
    key->known = 0;
    for (size_t i = 0; i < n; i++) {
        const lin_op_t *op = lin_history_get (ctx->history, key->hist [i]);
        s_entry_t *call = &entries [1 + 2 * i], *ret = &entries [2 + 2 * i];
        call->op = ret->op = (uint32_t) i;
        call->is_call = true;
        call->time = op->invoke;
        ret->time = op->complete;
        call->match = ret;
        ret->match = call;
        order [2 * i] = call;
        order [2 * i + 1] = ret;
        zob [2 * i] = s_mix (2 * i * 0x632be59bd9b4e019ull + 1);
        zob [2 * i + 1] = s_mix ((2 * i + 1) * 0x632be59bd9b4e019ull + 1);
        if (key->ops [i].outcome != LIN_OUT_UNKNOWN)
            known_left++;
    }
    key->known = known_left;
    qsort (order, 2 * n, sizeof (s_entry_t *), s_entry_cmp);
    s_entry_t *head = &entries [0];
    s_entry_t *prev = head;
    for (size_t i = 0; i < 2 * n; i++) {
        prev->next = order [i];
        order [i]->prev = prev;
        prev = order [i];
    }
    prev->next = NULL;

    lin_kv_state_t state = lin_kv_initial ();
    uint64_t fp [2] = { 0, 0 };           //  fingerprint of the linearized set
    size_t depth = 0;
    s_entry_t *entry = head->next;
    while (true) {
        if (known_left == 0) {
            rc = LIN_RESULT_OK;
            break;
        }
        assert (entry);
        if (entry->is_call) {
            if (s_budget_spent (ctx)) {
                ctx->out_of_budget = true;
                rc = LIN_RESULT_UNKNOWN;
                break;
            }
            ctx->steps++;
            uint32_t i = entry->op;
            lin_kv_state_t next;
            if (lin_kv_step (&state, &key->ops [i], &next)) {
                uint64_t with [2] = { fp [0] ^ zob [2 * i], fp [1] ^ zob [2 * i + 1] };
                int ins = s_memo_insert (&memo, with, &next);
                if (ins < 0)
                    goto done;
                if (ins == 1) {
                    fp [0] = with [0];
                    fp [1] = with [1];
                    stack [depth].entry = entry;
                    stack [depth].state = state;
                    depth++;
                    state = next;
                    s_lift (entry);
                    if (key->ops [i].outcome != LIN_OUT_UNKNOWN)
                        known_left--;
                    entry = head->next;
                    continue;
                }
            }
            entry = entry->next;
        }
        else {
            //  The most informative failure linearized the most known
            //  ops, taking as few unknown ones as possible.
            long known = (long) (key->known - known_left);
            if (deepest->depth < 0 || known > deepest->known
            || (known == deepest->known && (long) depth < deepest->depth)) {
                deepest->depth = (long) depth;
                deepest->known = known;
                deepest->tail_count = 0;
                for (size_t k = depth > 4 ? depth - 4 : 0; k < depth; k++)
                    deepest->tail [deepest->tail_count++] = stack [k].entry->op;
                deepest->blocker = entry->op;
                deepest->cand_count = 0;
                for (s_entry_t *e = head->next; e && e != entry; e = e->next)
                    if (e->is_call && deepest->cand_count < 8)
                        deepest->cands [deepest->cand_count++] = e->op;
                deepest->state = state;
            }
            if (depth == 0) {
                rc = LIN_RESULT_VIOLATION;
                break;
            }
            depth--;
            entry = stack [depth].entry;
            state = stack [depth].state;
            uint32_t i = entry->op;
            fp [0] ^= zob [2 * i];
            fp [1] ^= zob [2 * i + 1];
            s_unlift (entry);
            if (key->ops [i].outcome != LIN_OUT_UNKNOWN)
                known_left++;
            entry = entry->next;
        }
    }
done:
    s_memo_free (&memo);
    free (entries);
    free (order);
    free (stack);
    free (zob);
    return rc;
}

//  --------------------------------------------------------------------------
//  Partitioning and interning

typedef struct {
    const uint8_t *data;
    size_t len;
    size_t index;
} s_ref_t;

static int
s_bytes_cmp (const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t min = alen < blen ? alen : blen;
    int c = min ? memcmp (a, b, min) : 0;
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen;
}

static int
s_ref_cmp (const void *a, const void *b)
{
    const s_ref_t *x = a, *y = b;
    int c = s_bytes_cmp (x->data, x->len, y->data, y->len);
    if (c)
        return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

static uint32_t
s_intern_find (const s_key_t *key, const uint8_t *data, size_t len)
{
    size_t lo = 0, hi = key->nvals;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = s_bytes_cmp (key->vals [mid], key->val_lens [mid], data, len);
        if (c == 0)
            return (uint32_t) mid + 1;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    assert (false);
    return 0;
}

static void
s_key_free (s_key_t *key)
{
    free (key->hist);
    free (key->ops);
    free (key->vals);
    free (key->val_lens);
    memset (key, 0, sizeof *key);
}

//  Builds the model view of one key's `count` ops (refs sorted by key,
//  then history order), dropping the ones the model ignores.
static int
s_key_build (const lin_history_t *history, const s_ref_t *refs, size_t count,
             s_key_t *key)
{
    memset (key, 0, sizeof *key);
    key->hist = calloc (count, sizeof (size_t));
    key->ops = calloc (count, sizeof (lin_kv_op_t));
    s_ref_t *vals = calloc (2 * count + 1, sizeof (s_ref_t));
    if (!key->hist || !key->ops || !vals)
        goto nomem;
    size_t nv = 0;
    for (size_t r = 0; r < count; r++) {
        const lin_op_t *op = lin_history_get (history, refs [r].index);
        lin_kv_op_t m = {
            .kind = op->kind, .outcome = op->outcome, .fail = op->fail,
            .expect_absent = op->expect_absent, .expect_rev = op->expect_rev,
            .rev = op->outcome == LIN_OUT_OK ? op->rev : 0
        };
        if (!lin_kv_relevant (&m))
            continue;
        key->hist [key->n] = refs [r].index;
        key->ops [key->n++] = m;
        if (op->kind == LIN_OP_PUT || op->kind == LIN_OP_CAS) {
            vals [nv] = (s_ref_t) { op->value, op->value_len, nv };
            nv++;
        }
        if (op->kind == LIN_OP_GET && op->found) {
            vals [nv] = (s_ref_t) { op->out_value, op->out_len, nv };
            nv++;
        }
    }
    qsort (vals, nv, sizeof (s_ref_t), s_ref_cmp);
    key->vals = calloc (nv + 1, sizeof (uint8_t *));
    key->val_lens = calloc (nv + 1, sizeof (size_t));
    if (!key->vals || !key->val_lens)
        goto nomem;
    for (size_t v = 0; v < nv; v++)
        if (v == 0 || s_bytes_cmp (vals [v].data, vals [v].len,
                                   vals [v - 1].data, vals [v - 1].len)) {
            key->vals [key->nvals] = vals [v].data;
            key->val_lens [key->nvals++] = vals [v].len;
        }
    for (size_t i = 0; i < key->n; i++) {
        const lin_op_t *op = lin_history_get (history, key->hist [i]);
        if (op->kind == LIN_OP_PUT || op->kind == LIN_OP_CAS)
            key->ops [i].value = s_intern_find (key, op->value, op->value_len);
        if (op->kind == LIN_OP_GET && op->found)
            key->ops [i].out = s_intern_find (key, op->out_value, op->out_len);
    }
    free (vals);
    return 0;
nomem:
    free (vals);
    s_key_free (key);
    return -ENOMEM;
}

//  --------------------------------------------------------------------------
//  Explanation

typedef struct {
    char *buf;
    size_t len, cap;
    bool failed;
} s_text_t;

static void
s_text_add (s_text_t *text, const char *str)
{
    size_t n = strlen (str);
    if (text->failed)
        return;
    if (text->len + n + 1 > text->cap) {
        size_t cap = (text->len + n + 1) * 2;
        char *buf = realloc (text->buf, cap);
        if (!buf) {
            text->failed = true;
            return;
        }
        text->buf = buf;
        text->cap = cap;
    }
    memcpy (text->buf + text->len, str, n + 1);
    text->len += n;
}

static void
s_text_op (s_text_t *text, s_ctx_t *ctx, const s_key_t *key, uint32_t i,
           lin_report_t *report)
{
    char line [512], tag [48];
    size_t h = key->hist [i];
    snprintf (tag, sizeof tag, "    #%zu ", h);
    s_text_add (text, tag);
    s_text_add (text, lin_op_describe (lin_history_get (ctx->history, h), line, sizeof line));
    s_text_add (text, "\n");
    size_t cap = sizeof report->bad_ops / sizeof report->bad_ops [0];
    for (size_t k = 0; k < report->bad_op_count; k++)
        if (report->bad_ops [k] == h)
            return;
    if (report->bad_op_count < cap)
        report->bad_ops [report->bad_op_count++] = h;
}

static int
s_explain (s_ctx_t *ctx, const s_key_t *key, const s_deepest_t *d, lin_report_t *report)
{
    s_text_t text = { 0 };
    char line [512];
    char keytext [128], valtext [128];
    const lin_op_t *first = lin_history_get (ctx->history, key->hist [0]);
    lin_format_bytes (keytext, sizeof keytext, first->key, first->key_len);
    snprintf (line, sizeof line,
              "key %s: not linearizable (%zu ops on this key).\n"
              "  The longest linearizable prefix has %ld ops (%ld of them with an unknown outcome"
              " taken as effective), ending with:\n",
              keytext, key->n, d->depth, d->depth - d->known);
    s_text_add (&text, line);
    if (d->tail_count == 0)
        s_text_add (&text, "    (none: no op can be linearized first)\n");
    for (size_t t = 0; t < d->tail_count; t++)
        s_text_op (&text, ctx, key, d->tail [t], report);
    if (d->state.value == 0)
        snprintf (line, sizeof line,
                  "  after which the key is absent (next revision >= %" PRIu64 ").\n",
                  d->state.floor);
    else {
        lin_format_bytes (valtext, sizeof valtext, key->vals [d->state.value - 1],
                          key->val_lens [d->state.value - 1]);
        if (d->state.rev)
            snprintf (line, sizeof line, "  after which the key holds %s at revision %" PRIu64 ".\n",
                      valtext, d->state.rev);
        else
            snprintf (line, sizeof line,
                      "  after which the key holds %s at an unreported revision >= %" PRIu64 ".\n",
                      valtext, d->state.floor);
    }
    s_text_add (&text, line);
    s_text_add (&text, "  This op must be linearized before it completes:\n");
    s_text_op (&text, ctx, key, d->blocker, report);
    s_text_add (&text, "  but none of the ops that may come next is legal then:\n");
    for (size_t c = 0; c < d->cand_count; c++)
        s_text_op (&text, ctx, key, d->cands [c], report);
    if (text.failed) {
        free (text.buf);
        return -ENOMEM;
    }
    report->explanation = text.buf;
    return 0;
}

//  --------------------------------------------------------------------------

const char *
lin_result_name (lin_result_t result)
{
    switch (result) {
        case LIN_RESULT_OK:        return "linearizable";
        case LIN_RESULT_VIOLATION: return "not linearizable";
        case LIN_RESULT_UNKNOWN:   return "unknown (budget exhausted)";
    }
    return "?";
}

void
lin_report_clear (lin_report_t *report)
{
    assert (report);
    free (report->explanation);
    memset (report, 0, sizeof *report);
}

int
lin_check (const lin_history_t *history, const lin_budget_t *budget,
           lin_report_t *report)
{
    assert (history && report);
    memset (report, 0, sizeof *report);
    s_ctx_t ctx = { .history = history };
    if (budget) {
        ctx.max_steps = budget->max_steps;
        if (budget->max_ms > 0) {
            clock_gettime (CLOCK_MONOTONIC, &ctx.deadline);
            ctx.deadline.tv_sec += budget->max_ms / 1000;
            ctx.deadline.tv_nsec += (budget->max_ms % 1000) * 1000000L;
            if (ctx.deadline.tv_nsec >= 1000000000L) {
                ctx.deadline.tv_sec++;
                ctx.deadline.tv_nsec -= 1000000000L;
            }
            ctx.has_deadline = true;
        }
    }
    size_t n = lin_history_size (history);
    report->ops = n;
    s_ref_t *refs = calloc (n + 1, sizeof (s_ref_t));
    if (!refs)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const lin_op_t *op = lin_history_get (history, i);
        refs [i] = (s_ref_t) { op->key, op->key_len, i };
        if (op->outcome == LIN_OUT_UNKNOWN)
            report->unknown++;
    }
    qsort (refs, n, sizeof (s_ref_t), s_ref_cmp);
    //  Totals first, so that they are complete even when the check stops
    //  at the first key that violates linearizability.
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || s_bytes_cmp (refs [i].data, refs [i].len,
                                   refs [i - 1].data, refs [i - 1].len))
            report->keys++;
        const lin_op_t *op = lin_history_get (history, refs [i].index);
        lin_kv_op_t m = { .kind = op->kind, .outcome = op->outcome, .fail = op->fail };
        if (!lin_kv_relevant (&m))
            report->ignored++;
    }
    int rc = 0;
    lin_result_t result = LIN_RESULT_OK;
    size_t unknown_keys = 0;
    for (size_t from = 0; from < n; ) {
        size_t to = from + 1;
        while (to < n && s_bytes_cmp (refs [to].data, refs [to].len,
                                      refs [from].data, refs [from].len) == 0)
            to++;
        s_key_t key;
        rc = s_key_build (history, refs + from, to - from, &key);
        if (rc)
            break;
        s_deepest_t deepest;
        //  A key whose budget ran out is skipped: another key may still
        //  show a violation, which is a definite verdict.
        bool was_out = ctx.out_of_budget;
        ctx.out_of_budget = false;
        rc = s_check_key (&ctx, &key, &deepest);
        if (rc == LIN_RESULT_VIOLATION) {
            result = LIN_RESULT_VIOLATION;
            rc = s_explain (&ctx, &key, &deepest, report);
            s_key_free (&key);
            break;
        }
        if (rc == LIN_RESULT_UNKNOWN) {
            unknown_keys++;
            result = LIN_RESULT_UNKNOWN;
        }
        ctx.out_of_budget |= was_out;
        s_key_free (&key);
        if (rc < 0)
            break;
        rc = 0;
        from = to;
    }
    free (refs);
    report->steps = ctx.steps;
    if (rc < 0) {
        lin_report_clear (report);
        return rc;
    }
    report->result = result;
    if (result == LIN_RESULT_UNKNOWN) {
        char msg [160];
        snprintf (msg, sizeof msg,
                  "budget exhausted after %" PRIu64 " steps: %zu of %zu keys undecided, no violation found\n",
                  ctx.steps, unknown_keys, report->keys);
        report->explanation = strdup (msg);
        if (!report->explanation) {
            lin_report_clear (report);
            return -ENOMEM;
        }
    }
    return 0;
}
