/*  raft_group forwarded proposals: a follower hands a client write to its
    leader over the peer transport instead of refusing it, as etcd's
    MsgProp does, so that the client's gateway makes no second gRPC call
    (docs/raft.md, "Forwarded proposals").

    Follower: raft.propose with a known leader -> PROPOSE {id, KvWrite}
    to the leader; the bus request waits in a small table keyed by id.
    Leader: validates the write as a local proposal, appends it (batched
    with its own proposals by the next ready) and answers RESULT {id,
    index, term}, or the refusal code.  The RESULT is queued before the
    APPEND that carries the entry, on the same connection, so the follower
    knows (index, term) before it can apply that index.  Follower again:
    the request becomes an ordinary waiter at (index, term), answered with
    this node's own apply result (apply is deterministic); another term at
    that index means the entry was overwritten and never commits (Log
    Matching): UNAVAILABLE, safe to retry.

    A refusal (not the leader, busy) is UNAVAILABLE with the leader hint,
    so the gateway falls back to its gRPC forward.  No RESULT in time
    (read_timeout_ms; two election timeouts once another leader is known:
    a live old leader answers at once, appended or refused) leaves the
    outcome unknown (the leader may have appended the entry):
    DEADLINE_EXCEEDED, like a waiter that times out, never UNAVAILABLE,
    which promises the write was not applied -- unless the write carries a
    client_id: then the dedup table applies it at most once whatever
    happened to the first forward, and it is proposed again (to the new
    leader, or here if this node leads now; FWD_RETRIES times at most), so
    that a leader's crash costs the client latency, not an error.  */
#include "titan/log.h"
#include "raft_group_impl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "titan/status.h"

#define FWD_LOG_MS  5000        /* at most one dropped-frame line per period */
#define FWD_RETRIES 3           /* re-proposals of a write with a client_id */

bool
rg_forward_propose (raft_group_t *self, titan_envelope_t **env_p)
{
    uint64_t leader = raft_leader (self->core);
    const raft_member_t *m = leader && leader != self->id
                           ? raft_members_get (self->members, leader) : NULL;
    if (!self->cfg.forward_proposals || !self->cfg.transport || !m
    ||  self->n_fwds >= RG_MAX_FORWARDS)
        return false;
    if (self->n_fwds == self->cap_fwds) {
        size_t cap = self->cap_fwds ? self->cap_fwds * 2 : 64;
        rg_forward_t *grown = realloc (self->fwds, cap * sizeof *grown);
        if (!grown)
            return false;
        self->fwds = grown;
        self->cap_fwds = cap;
    }
    raft_wire_forward_t f = {
        .group = self->cfg.shard,
        .kind = RAFT_FORWARD_PROPOSE,
        .id = ++self->next_fwd_id,
        .size = titan_envelope_size (*env_p),
        .data = titan_envelope_data (*env_p),
    };
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = raft_wire_encode_forward (&self->cfg.self, &f, &buf, &len);
    if (rc == 0)
        rc = raft_transport_queue (self->cfg.transport, m->node_id, buf, len);
    free (buf);
    if (rc)
        return false;
    rg_forward_t *fw = &self->fwds [self->n_fwds++];
    fw->id = f.id;
    fw->leader = leader;
    fw->env = *env_p;
    *env_p = NULL;
    /* the leader answers within a round trip; a RESULT that is this late
       was lost (or the leader is gone) */
    fw->deadline = zclock_mono () + self->cfg.read_timeout_ms;
    fw->moved = false;
    fw->tries = 0;
    self->fwd_stats.sent++;
    return true;
}

/*  Removes forwards [i] from the table and returns its request.  */
static titan_envelope_t *
s_take (raft_group_t *self, size_t i)
{
    titan_envelope_t *env = self->fwds [i].env;
    self->fwds [i] = self->fwds [--self->n_fwds];
    return env;
}

/*  Counts a dropped frame and logs it at most every FWD_LOG_MS.  */
static void
s_dropped (raft_group_t *self, const char *from, const char *why)
{
    self->fwd_stats.dropped++;
    int64_t now = zclock_mono ();
    if (self->fwd_logged_at && now - self->fwd_logged_at < FWD_LOG_MS)
        return;
    self->fwd_logged_at = now;
    titan_log_warning ("raft %s group %u: forwarded proposal frame from '%s' "
                       "dropped: %s (%" PRIu64 " dropped so far)",
                       self->cfg.self.node_id, self->cfg.shard, from, why,
                       self->fwd_stats.dropped);
}

/*  Leader side: appends a forwarded write and answers where it went.  */
static void
s_on_propose (raft_group_t *self, const char *from,
              const raft_wire_forward_t *f)
{
    uint64_t from_id = raft_members_id (from);
    const raft_config_t *cfg = raft_config (self->core);
    if (from_id == self->id || (!raft_config_is_voter (cfg, from_id)
                                && !raft_config_is_learner (cfg, from_id))) {
        s_dropped (self, from, "not a voter or learner of the group");
        return;
    }
    raft_wire_forward_t r = {
        .group = self->cfg.shard,
        .kind = RAFT_FORWARD_RESULT,
        .id = f->id,
    };
    char why [160];
    if (self->failed)
        r.code = TITAN__BUS__CODE__UNAVAILABLE;
    else
    if (!rg_write_valid (self, f->data, f->size, why, sizeof why))
        r.code = TITAN__BUS__CODE__INVALID_ARGUMENT;
    else {
        int rc = raft_group_propose_local (self, f->data, f->size, &r.index,
                                           &r.term);
        r.code = rc ? (uint32_t) rg_propose_refusal (rc) : TITAN__BUS__CODE__OK;
    }
    if (r.code == TITAN__BUS__CODE__OK)
        self->fwd_stats.served++;
    uint8_t *buf = NULL;
    size_t len = 0;
    if (raft_wire_encode_forward (&self->cfg.self, &r, &buf, &len) == 0)
        raft_transport_queue (self->cfg.transport, from, buf, len);
    free (buf);
}

/*  Follower side: the leader's RESULT for one of our forwards.  */
static void
s_on_result (raft_group_t *self, const char *from,
             const raft_wire_forward_t *f)
{
    uint64_t from_id = raft_members_id (from);
    size_t i = 0;
    while (i < self->n_fwds
       &&  (self->fwds [i].id != f->id || self->fwds [i].leader != from_id))
        i++;
    if (i == self->n_fwds) {
        s_dropped (self, from, "a result for no request sent to that node");
        return;
    }
    titan_envelope_t *env = s_take (self, i);
    if (f->code != TITAN__BUS__CODE__OK) {
        self->fwd_stats.refused++;
        int code = f->code == TITAN__BUS__CODE__INVALID_ARGUMENT
                 ? TITAN__BUS__CODE__INVALID_ARGUMENT
                 : f->code == TITAN__BUS__CODE__INTERNAL
                 ? TITAN__BUS__CODE__INTERNAL : TITAN__BUS__CODE__UNAVAILABLE;
        char msg [160];
        snprintf (msg, sizeof msg, "raft: the leader %s refused the forwarded "
                  "write (code %u); not applied", from, f->code);
        rg_refuse_kv (self, &env, code, msg);
        return;
    }
    self->fwd_stats.appended++;
    uint64_t at = 0;
    if (f->index > self->applied)
        rg_waiter_add (self, f->index, f->term, W_PROPOSE, &env,
                       self->cfg.propose_timeout_ms);
    else
    if (raft_term_at (self->core, f->index, &at) == 0 && at != f->term)
        rg_refuse_kv (self, &env, TITAN__BUS__CODE__UNAVAILABLE,
                      "raft: entry replaced by a new leader; not applied, "
                      "safe to retry");
    else                        /* the RESULT came after the apply (never
                                   when the transport keeps its order) */
        rg_refuse_kv (self, &env, TITAN__BUS__CODE__DEADLINE_EXCEEDED,
                      "raft: forwarded write applied before the leader's "
                      "answer came; outcome unknown (retry with the same "
                      "client_id and sequence)");
}

void
raft_group_on_forward (raft_group_t *self, const char *from,
                       const raft_wire_forward_t *forward)
{
    if (forward->group != self->cfg.shard)
        return;
    if (forward->kind == RAFT_FORWARD_PROPOSE)
        s_on_propose (self, from, forward);
    else
        s_on_result (self, from, forward);
}

/*  Whether the raft.propose `env` carries a client_id, so that the dedup
    table applies it at most once however often it is proposed.  */
static bool
s_dedup_protected (const titan_envelope_t *env)
{
    Titan__Bus__KvWrite *w = titan__bus__kv_write__unpack (NULL,
        titan_envelope_size (env), titan_envelope_data (env));
    bool protected_ = w && w->client_id && *w->client_id;
    if (w)
        titan__bus__kv_write__free_unpacked (w, NULL);
    return protected_;
}

/*  Proposes a write whose forward went unanswered again: through
    raft_group_propose (here if this node leads, else to the leader it
    knows, else refused UNAVAILABLE, which the dedup pair makes safe to
    retry); a new forward remembers the attempts.  */
static void
s_repropose (raft_group_t *self, titan_envelope_t **env_p, uint32_t tries)
{
    size_t before = self->n_fwds;
    raft_group_propose (self, env_p);
    if (self->n_fwds > before)
        self->fwds [self->n_fwds - 1].tries = tries;
}

void
rg_expire_forwards (raft_group_t *self)
{
    if (!self->n_fwds)
        return;
    int64_t now = zclock_mono ();
    uint64_t leader = raft_leader (self->core);
    /* another leader: the old one answers at once if it is alive (it
       appended the write, or refuses it); give it two election timeouts */
    int64_t grace = now + (int64_t) (self->cfg.election_us / 500);
    for (size_t i = 0; i < self->n_fwds; ) {
        rg_forward_t *fw = &self->fwds [i];
        if (leader && leader != fw->leader && !fw->moved) {
            fw->moved = true;
            if (grace < fw->deadline)
                fw->deadline = grace;
        }
        if (now <= fw->deadline) {
            i++;
            continue;
        }
        self->fwd_stats.expired++;
        bool moved = fw->moved;
        uint32_t tries = fw->tries;
        titan_envelope_t *env = s_take (self, i);
        if (tries < FWD_RETRIES && s_dedup_protected (env)) {
            s_repropose (self, &env, tries + 1);
            continue;
        }
        rg_refuse_kv (self, &env, TITAN__BUS__CODE__DEADLINE_EXCEEDED, moved
                      ? "raft: leader changed and the old one did not answer "
                        "the forwarded write; outcome unknown (retry with the "
                        "same client_id and sequence)"
                      : "raft: no answer from the leader to the forwarded "
                        "write in time; outcome unknown (retry with the "
                        "same client_id and sequence)");
    }
}

void
rg_forwards_close (raft_group_t *self)
{
    while (self->n_fwds) {
        titan_envelope_t *env = s_take (self, self->n_fwds - 1);
        rg_refuse_kv (self, &env, TITAN__BUS__CODE__UNAVAILABLE,
                      "raft: shutting down; outcome unknown");
    }
    free (self->fwds);
    self->fwds = NULL;
    self->cap_fwds = 0;
}

raft_group_forward_stats_t
raft_group_forward_stats (raft_group_t *self)
{
    return self->fwd_stats;
}
