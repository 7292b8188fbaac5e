/*  raft_group placement: what the raft module's ring placement
    (raft_placement.h) asks of one group: run the planner
    (raft_reconcile.h) on the leader's view and apply its step, propose a
    write that the module itself makes (membership commands of the meta
    group), and tell whether a write or this node's removal is committed.
*/
#include "titan/log.h"
#include "raft_group_impl.h"
#include "raft_reconcile.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
raft_group_reconcile (raft_group_t *self, const raft_wire_node_t *desired,
                      size_t n_desired, raft_reconcile_action_t *taken)
{
    taken->kind = RAFT_RECONCILE_NONE;
    taken->node = 0;
    if (self->failed || raft_role (self->core) != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    if (n_desired > RAFT_MAX_MEMBERS)
        return -EINVAL;
    const raft_config_t *cfg = raft_config (self->core);
    raft_reconcile_member_t members [2 * RAFT_MAX_MEMBERS];
    size_t n = 0;
    for (uint32_t i = 0; i < cfg->n_voters + cfg->n_learners; i++) {
        bool voter = i < cfg->n_voters;
        uint64_t id = voter ? cfg->voters [i] : cfg->learners [i - cfg->n_voters];
        uint64_t match = 0;
        if (id == self->id)
            match = raft_last_index (self->core);
        else
            (void) raft_progress (self->core, id, &match);
        members [n++] = (raft_reconcile_member_t) { id, voter, match };
    }
    uint64_t ids [RAFT_MAX_MEMBERS];
    for (size_t i = 0; i < n_desired; i++)
        ids [i] = raft_members_id (desired [i].node_id);
    raft_reconcile_input_t in = {
        .self = self->id,
        .leader = true,
        .commit = raft_commit_index (self->core),
        .change_pending = !raft_config_same (cfg, raft_applied_config (self->core))
                       || self->n_adds > 0,
        .members = members,
        .n_members = n,
        .desired = ids,
        .n_desired = n_desired,
        .promote_gap = self->cfg.promote_gap,
    };
    raft_reconcile_action_t a = raft_reconcile_plan (&in);
    int rc = 0;
    switch (a.kind) {
        case RAFT_RECONCILE_NONE:
            return 0;
        case RAFT_RECONCILE_ADD_LEARNER: {
            const raft_wire_node_t *node = NULL;
            for (size_t i = 0; i < n_desired && !node; i++)
                if (ids [i] == a.node)
                    node = &desired [i];
            char why [256] = "";
            rc = raft_group_add_node (self, node, why, sizeof why);
            if (rc)
                titan_log_warning ("raft %s: group %u: cannot add '%s': %s",
                                   self->cfg.self.node_id, self->cfg.shard,
                                   node->node_id, why);
            break;
        }
        case RAFT_RECONCILE_PROMOTE:
            rc = raft_propose_conf (self->core, RAFT_CONF_PROMOTE, a.node,
                                    NULL, NULL);
            break;
        case RAFT_RECONCILE_REMOVE:
            rc = raft_propose_conf (self->core, RAFT_CONF_REMOVE, a.node,
                                    NULL, NULL);
            break;
        case RAFT_RECONCILE_TRANSFER:
            rc = raft_transfer_leadership (self->core, a.node);
            break;
    }
    if (rc == 0)
        *taken = a;
    return rc;
}

int
raft_group_add_node (raft_group_t *self, const raft_wire_node_t *node,
                     char *why, size_t why_size)
{
    if (self->failed || raft_role (self->core) != RAFT_LEADER) {
        snprintf (why, why_size, "raft: not the leader");
        return RAFT_ENOTLEADER;
    }
    return rg_start_add (self, node, NULL, why, why_size);
}

int
raft_group_remove_node (raft_group_t *self, uint64_t id)
{
    if (self->failed || raft_role (self->core) != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    return raft_propose_conf (self->core, RAFT_CONF_REMOVE, id, NULL, NULL);
}

int
raft_group_propose_local (raft_group_t *self, const uint8_t *kvwrite,
                          size_t size, uint64_t *index, uint64_t *term)
{
    if (self->failed || raft_role (self->core) != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = raft_wire_encode_write (kvwrite, size, &data, &len);
    if (rc == 0)
        rc = raft_propose (self->core, data, (uint32_t) len, index, term);
    free (data);
    return rc;
}

bool
raft_group_applied_entry (raft_group_t *self, uint64_t index, uint64_t term)
{
    uint64_t at = 0;
    return index && self->applied >= index
        && raft_term_at (self->core, index, &at) == 0 && at == term;
}

bool
raft_group_in_committed_config (raft_group_t *self, uint64_t id)
{
    const raft_config_t *cfg = raft_applied_config (self->core);
    return raft_config_is_voter (cfg, id) || raft_config_is_learner (cfg, id);
}

bool
raft_group_committed_voter (raft_group_t *self, uint64_t id)
{
    return raft_config_is_voter (raft_applied_config (self->core), id);
}
