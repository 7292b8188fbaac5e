/*  The ring module's kv.apply_batch and kv.stats (see ring_actor.h).

    A batch is applied to a copy of the state, op i at index
    first_revision + i, then the copy's applied index moves to the batch's
    applied_index (entries after the last op, such as no-ops), the copy is
    saved (ring_state_file_save) and only then replaces the state and is
    answered, so the reply never runs ahead of the disk.

    Each op must be a PUT of key TITAN_RING_CMD_KEY whose value is one
    encoded ring command.  An op that is not, or whose command the
    membership refuses, is rejected deterministically (ring_fsm_apply): its
    result carries the reason and a code (INVALID_ARGUMENT, ALREADY_EXISTS,
    NOT_FOUND, FAILED_PRECONDITION, RESOURCE_EXHAUSTED), it is counted in
    the replicated state and logged, and the batch goes on.  The batch as a
    whole fails, with nothing applied, only for reasons a retry can cure:
    out of memory (RESOURCE_EXHAUSTED), the state file cannot be saved
    (UNAVAILABLE), or the cluster's Q/R differ from this node's settings
    (FAILED_PRECONDITION, until the operator fixes them).  A malformed batch
    (bad payload, wrong shard, indexes that do not fit) is INVALID_ARGUMENT.

    Ops at or below the applied index are not applied again.  A re-sent
    copy of the last batch answered (the raft module re-sends a batch it
    got no answer to) gets that same reply; other ops already applied
    (re-delivered after this module restarted) are answered ABORTED, since
    their original result is not kept.
*/
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "titan/bus_types.h"
#include "titan/status.h"

#include "ring_actor.h"
#include "ring_state_file.h"

#define RESULT_MSG_MAX  256

/*  The result of one op: code, revision, message (in `msg`).  */
static void
s_apply_op (ring_fsm_t *fsm, uint64_t index, const Titan__Bus__KvOp *op,
            Titan__Bus__KvReply *res, char *msg, int *rc_p)
{
    titan__bus__kv_reply__init (res);
    *msg = '\0';
    res->message = msg;
    bool well_formed = op->kind == TITAN__BUS__KV_OP__KIND__PUT
        && op->key.len == strlen (TITAN_RING_CMD_KEY)
        && memcmp (op->key.data, TITAN_RING_CMD_KEY, op->key.len) == 0;
    int rc = well_formed
           ? ring_fsm_apply (fsm, index, op->value.data, op->value.len, msg,
                             RESULT_MSG_MAX)
           : ring_fsm_apply (fsm, index, NULL, 0, NULL, 0);
    if (!well_formed && rc != -EALREADY && rc != -ENOMEM)
        snprintf (msg, RESULT_MSG_MAX, "ring: a meta-group op must be a PUT of "
                  "key '%s' (got kind %d, key of %zu bytes)", TITAN_RING_CMD_KEY,
                  (int) op->kind, op->key.len);
    *rc_p = rc;
    if (rc == -EALREADY) {
        res->code = TITAN__BUS__CODE__ABORTED;
        snprintf (msg, RESULT_MSG_MAX, "ring: entry %" PRIu64 " was applied "
                  "before (this module restarted since); its result was not "
                  "kept", index);
        res->revision = index;
        return;
    }
    res->code = ring_actor_code (rc);
    if (rc == 0)
        res->revision = index;
    else
    if (rc != -ENOMEM)
        zsys_warning ("ring: entry %" PRIu64 " rejected (%" PRIu64 " so far): %s",
                      index, ring_fsm_rejected (fsm), msg);
}

/*  Applies `ab` to a copy of the state and saves it; returns the new
    state in `*fsm_p`, or a batch-level status with the reason in `err`.
    `results` (n_ops of them, messages in `msgs`) are filled either way.  */
static int
s_apply (ring_actor_t *self, const Titan__Bus__KvApplyBatch *ab,
         Titan__Bus__KvReply *results, char (*msgs) [RESULT_MSG_MAX],
         ring_fsm_t **fsm_p, char *err, size_t errlen)
{
    ring_fsm_t *fsm = ring_fsm_dup (self->fsm);
    if (!fsm) {
        snprintf (err, errlen, "ring: out of memory applying a batch");
        return -ENOMEM;
    }
    int rc = 0;
    for (size_t i = 0; i < ab->n_ops && rc != -ENOMEM; i++)
        s_apply_op (fsm, ab->first_revision + i, ab->ops [i], &results [i],
                    msgs [i], &rc);
    if (rc == -ENOMEM) {
        snprintf (err, errlen, "ring: out of memory applying a batch");
        ring_fsm_destroy (&fsm);
        return -ENOMEM;
    }
    ring_fsm_skip_to (fsm, ab->applied_index);
    rc = ring_actor_check_qr (self, fsm, err, errlen);
    if (rc == 0 && ring_fsm_applied (fsm) != ring_fsm_applied (self->fsm))
        rc = ring_state_file_save (self->dir, fsm, err, errlen);
    if (rc) {
        zsys_error ("%s", err);
        ring_fsm_destroy (&fsm);
        return rc;
    }
    *fsm_p = fsm;
    return 0;
}

void
ring_actor_handle_apply (ring_actor_t *self, titan_envelope_t **env_p)
{
    titan_envelope_t *env = *env_p;
    const uint8_t *data = titan_envelope_data (env);
    size_t size = titan_envelope_size (env);
    if (self->last_batch && size == self->last_batch_size
    &&  memcmp (data, self->last_batch, size) == 0) {
        titan_bus_reply (self->bus, env, self->last_reply, self->last_reply_size);
        titan_envelope_destroy (env_p);
        return;
    }
    Titan__Bus__KvApplyBatch *ab = titan__bus__kv_apply_batch__unpack (NULL, size,
                                                                       data);
    if (!ab) {
        ring_actor_refuse (self, env_p, TITAN__BUS__CODE__INVALID_ARGUMENT,
                           "ring: malformed KvApplyBatch");
        return;
    }
    if (!ring_actor_check_shard (self, env_p, ab->shard)) {
        titan__bus__kv_apply_batch__free_unpacked (ab, NULL);
        return;
    }
    char err [512] = "";
    if (ab->n_ops && (ab->first_revision == 0
                      || ab->applied_index < ab->first_revision + ab->n_ops - 1)) {
        snprintf (err, sizeof err, "ring: batch of %zu ops at first revision %"
                  PRIu64 " cannot end at applied index %" PRIu64, ab->n_ops,
                  ab->first_revision, ab->applied_index);
        titan__bus__kv_apply_batch__free_unpacked (ab, NULL);
        ring_actor_refuse (self, env_p, TITAN__BUS__CODE__INVALID_ARGUMENT, err);
        return;
    }
    size_t n = ab->n_ops;
    Titan__Bus__KvReply *results = calloc (n ? n : 1, sizeof *results);
    Titan__Bus__KvReply **ptrs = calloc (n ? n : 1, sizeof *ptrs);
    char (*msgs) [RESULT_MSG_MAX] = calloc (n ? n : 1, sizeof *msgs);
    ring_fsm_t *fsm = NULL;
    int rc = results && ptrs && msgs
           ? s_apply (self, ab, results, msgs, &fsm, err, sizeof err) : -ENOMEM;
    titan__bus__kv_apply_batch__free_unpacked (ab, NULL);
    if (rc) {
        if (rc == -ENOMEM && !*err)
            snprintf (err, sizeof err, "ring: out of memory");
        ring_actor_refuse (self, env_p, ring_actor_code (rc), err);
    }
    else {
        ring_actor_set_state (self, &fsm);
        Titan__Bus__KvApplyBatchReply r = TITAN__BUS__KV_APPLY_BATCH_REPLY__INIT;
        for (size_t i = 0; i < n; i++)
            ptrs [i] = &results [i];
        r.n_results = n;
        r.results = ptrs;
        r.applied_index = ring_fsm_applied (self->fsm);
        free (self->last_reply);
        self->last_reply = NULL;
        free (self->last_batch);
        self->last_batch = malloc (size ? size : 1);
        if (self->last_batch)
            memcpy (self->last_batch, data, size);
        self->last_batch_size = size;
        /* `data` belongs to the envelope, which the reply destroys */
        ring_actor_reply (self, env_p, &r.base, &self->last_reply,
                          &self->last_reply_size);
        if (!self->last_reply) {
            free (self->last_batch);
            self->last_batch = NULL;
        }
    }
    free (results);
    free (ptrs);
    free (msgs);
}

void
ring_actor_handle_stats (ring_actor_t *self, titan_envelope_t **env_p)
{
    titan_envelope_t *env = *env_p;
    Titan__Bus__KvStatsRequest *q = titan__bus__kv_stats_request__unpack (
        NULL, titan_envelope_size (env), titan_envelope_data (env));
    if (!q) {
        ring_actor_refuse (self, env_p, TITAN__BUS__CODE__INVALID_ARGUMENT,
                           "ring: malformed KvStatsRequest");
        return;
    }
    uint32_t shard = q->shard;
    titan__bus__kv_stats_request__free_unpacked (q, NULL);
    if (!ring_actor_check_shard (self, env_p, shard))
        return;
    const ring_members_t *m = ring_fsm_members (self->fsm);
    Titan__Bus__KvStatsReply r = TITAN__BUS__KV_STATS_REPLY__INIT;
    r.applied_index = ring_fsm_applied (self->fsm);
    r.keys = m ? ring_members_size (m) : 0;
    ring_actor_reply (self, env_p, &r.base, NULL, NULL);
}
