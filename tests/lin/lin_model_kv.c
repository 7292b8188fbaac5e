/*  Titan-KV linearizability checker: the sequential model of one key.

    What the model checks, operation by operation (s is the state at the
    operation's linearization point):
      get ok        found == (s present); if found, the value equals s's
                    value; a reported revision equals s's revision (or, if
                    s's revision is unknown, is >= floor and becomes it).
      put ok        a reported revision is >= floor; s becomes the value.
      delete ok     a reported revision is >= floor; s becomes absent.
      delete failed (precondition: NOT_FOUND) s is absent.
      cas ok        the condition holds in s; as put.
      cas failed    (precondition) the condition does not hold in s (or
                    cannot be decided: s's revision is unknown).
      unknown       stepped as if it took effect (a CAS only when its
                    condition can hold); "no effect" is never linearizing.
    A reported revision r makes floor r + 1, so revisions are strictly
    increasing in linearization order.
*/
#include "lin_model_kv.h"

#include <assert.h>

lin_kv_state_t
lin_kv_initial (void)
{
    lin_kv_state_t state = { 0, 0, 0, 1 };
    return state;
}

bool
lin_kv_relevant (const lin_kv_op_t *op)
{
    if (op->outcome == LIN_OUT_FAILED && op->fail == LIN_FAIL_NOEFFECT)
        return false;
    if (op->outcome == LIN_OUT_UNKNOWN && op->kind == LIN_OP_GET)
        return false;
    return true;
}

//  A write of `value` (0: delete) with reported revision `rev` (0: none).
static bool
s_write (const lin_kv_state_t *s, uint32_t value, uint64_t rev, lin_kv_state_t *next)
{
    if (rev && rev < s->floor)
        return false;           //  revision not increasing
    next->value = value;
    next->pad = 0;
    next->rev = value ? rev : 0;
    next->floor = rev ? rev + 1 : s->floor;
    return true;
}

typedef enum { S_FALSE, S_TRUE, S_MAYBE } s_cond_t;

static s_cond_t
s_condition (const lin_kv_state_t *s, const lin_kv_op_t *op)
{
    if (op->expect_absent)
        return s->value == 0 ? S_TRUE : S_FALSE;
    if (s->value == 0)
        return S_FALSE;
    if (s->rev)
        return s->rev == op->expect_rev ? S_TRUE : S_FALSE;
    //  The value's revision was not reported; it is at least floor.
    return op->expect_rev >= s->floor ? S_MAYBE : S_FALSE;
}

//  Fixes an unknown revision of the present value to `rev`.
static lin_kv_state_t
s_learn (const lin_kv_state_t *s, uint64_t rev)
{
    lin_kv_state_t learned = *s;
    learned.rev = rev;
    learned.floor = rev + 1;
    return learned;
}

bool
lin_kv_step (const lin_kv_state_t *state, const lin_kv_op_t *op,
             lin_kv_state_t *next)
{
    assert (state && op && next);
    const lin_kv_state_t *s = state;
    switch (op->kind) {
        case LIN_OP_GET:
            if (op->outcome != LIN_OUT_OK)
                return false;
            if (op->out == 0) {
                if (s->value != 0)
                    return false;
                *next = *s;
                return true;
            }
            if (s->value != op->out)
                return false;
            if (op->rev && s->rev && op->rev != s->rev)
                return false;
            if (op->rev && !s->rev) {
                if (op->rev < s->floor)
                    return false;
                *next = s_learn (s, op->rev);
                return true;
            }
            *next = *s;
            return true;

        case LIN_OP_PUT:
            if (op->outcome == LIN_OUT_FAILED)
                return false;
            return s_write (s, op->value, op->rev, next);

        case LIN_OP_DELETE:
            if (op->outcome == LIN_OUT_FAILED) {
                if (s->value != 0)
                    return false;
                *next = *s;
                return true;
            }
            return s_write (s, 0, op->rev, next);

        case LIN_OP_CAS: {
            s_cond_t cond = s_condition (s, op);
            if (op->outcome == LIN_OUT_FAILED) {
                if (cond == S_TRUE)
                    return false;
                *next = *s;
                return true;
            }
            if (cond == S_FALSE)
                return false;
            lin_kv_state_t base = cond == S_MAYBE ? s_learn (s, op->expect_rev) : *s;
            return s_write (&base, op->value, op->rev, next);
        }
    }
    return false;
}
