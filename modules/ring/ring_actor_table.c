/*  The ring module's routing table (see ring_actor.h): rebuilt from the
    membership whenever the state is replaced, sent as a RingTable event
    to every subscriber when the membership changed, and the answer to a
    RingTableRequest.  The RingTable message lists every member (id,
    addresses, state, tombstones included) and carries the placement as
    ring_table_encode bytes, stamped with the membership epoch and the
    meta-group index it reflects.
*/
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "titan/bus_types.h"

#include "ring_actor.h"
#include "ring_place.h"

/*  Fills `msg` (already initialised) from the current state; the nodes and
    table bytes are allocated and freed by s_table_msg_free.  Returns 0 or
    -ENOMEM.  */
static int
s_table_msg (ring_actor_t *self, Titan__Bus__RingTable *msg)
{
    const ring_members_t *m = ring_fsm_members (self->fsm);
    uint32_t n = ring_members_size (m);
    msg->epoch = ring_table_epoch (self->table);
    msg->shards = ring_table_shards (self->table);
    msg->replicas = ring_table_replicas (self->table);
    msg->applied_index = ring_fsm_applied (self->fsm);
    msg->nodes = calloc (n ? n : 1, sizeof *msg->nodes);
    Titan__Bus__RingNode *nodes = calloc (n ? n : 1, sizeof *nodes);
    if (!msg->nodes || !nodes
    ||  ring_table_encode (self->table, &msg->table.data, &msg->table.len)) {
        free (nodes);
        return -ENOMEM;
    }
    msg->nodes [0] = &nodes [0];        /* owns the array, even when n = 0 */
    for (uint32_t i = 0; i < n; i++) {
        const ring_member_t *member = ring_members_at (m, i);
        titan__bus__ring_node__init (&nodes [i]);
        nodes [i].node_id = (char *) member->id;
        nodes [i].client_addr = (char *) member->client_addr;
        nodes [i].peer_addr = (char *) member->peer_addr;
        nodes [i].state = (char *) ring_state_name (member->state);
        msg->nodes [i] = &nodes [i];
    }
    msg->n_nodes = n;
    return 0;
}

static void
s_table_msg_free (Titan__Bus__RingTable *msg)
{
    if (msg->nodes)
        free (msg->nodes [0]);          /* the array of all nodes */
    free (msg->nodes);
    free (msg->table.data);
}

void
ring_actor_publish (ring_actor_t *self, bool force)
{
    if (!ring_fsm_members (self->fsm) || !self->table)
        return;
    uint64_t epoch = ring_table_epoch (self->table);
    if (!force && epoch == self->published_epoch)
        return;
    Titan__Bus__RingTable msg = TITAN__BUS__RING_TABLE__INIT;
    uint8_t *buf = NULL;
    size_t len = 0;
    if (s_table_msg (self, &msg) == 0) {
        len = titan__bus__ring_table__get_packed_size (&msg);
        if ((buf = malloc (len)))
            titan__bus__ring_table__pack (&msg, buf);
    }
    s_table_msg_free (&msg);
    if (!buf) {
        zsys_error ("ring: out of memory publishing the table of epoch %" PRIu64,
                    epoch);
        return;
    }
    for (size_t i = 0; i < self->nsubscribers; i++) {
        titan_envelope_t *env = titan_envelope_new (self->subscribers [i],
            TITAN_T_RING_TABLE, TITAN_MSG_EVENT, titan_bus_next_corr (self->bus),
            buf, len);
        int rc = env ? titan_bus_send (self->bus, &env) : -ENOMEM;
        if (rc)
            zsys_warning ("ring: cannot send the table of epoch %" PRIu64 " to %s: "
                          "%s", epoch, self->subscribers [i], strerror (-rc));
    }
    free (buf);
    self->published_epoch = epoch;
    zsys_info ("ring: published the table of epoch %" PRIu64 " (%u nodes hold "
               "replicas, applied index %" PRIu64 ")", epoch,
               ring_table_nodes (self->table), ring_fsm_applied (self->fsm));
}

void
ring_actor_set_state (ring_actor_t *self, ring_fsm_t **fsm_p)
{
    const ring_members_t *before = self->fsm ? ring_fsm_members (self->fsm) : NULL;
    bool had = before != NULL;
    uint64_t old_epoch = had ? ring_members_epoch (before) : 0;
    ring_fsm_destroy (&self->fsm);
    self->fsm = *fsm_p;
    *fsm_p = NULL;
    const ring_members_t *after = ring_fsm_members (self->fsm);
    if (!after) {
        ring_table_destroy (&self->table);
        return;
    }
    if (had && self->table && ring_members_epoch (after) == old_epoch)
        return;                 /* same membership: same table */
    ring_table_t *table = NULL;
    if (ring_table_build (after, &table)) {
        /* the old table stays; the next change or ring.table retries */
        zsys_error ("ring: out of memory building the routing table");
        ring_table_destroy (&self->table);
        return;
    }
    ring_table_destroy (&self->table);
    self->table = table;
    ring_actor_publish (self, true);
}

void
ring_actor_handle_table (ring_actor_t *self, titan_envelope_t **env_p)
{
    titan_envelope_t *env = *env_p;
    Titan__Bus__RingTableRequest *q = titan__bus__ring_table_request__unpack (
        NULL, titan_envelope_size (env), titan_envelope_data (env));
    if (!q) {
        ring_actor_refuse (self, env_p, TITAN__BUS__CODE__INVALID_ARGUMENT,
                           "ring: malformed RingTableRequest");
        return;
    }
    titan__bus__ring_table_request__free_unpacked (q, NULL);
    if (ring_fsm_members (self->fsm) && !self->table
    &&  ring_table_build (ring_fsm_members (self->fsm), &self->table))
        self->table = NULL;
    if (!ring_fsm_members (self->fsm) || !self->table) {
        ring_actor_refuse (self, env_p, TITAN__BUS__CODE__UNAVAILABLE,
                           ring_fsm_members (self->fsm)
                           ? "ring: out of memory building the routing table"
                           : "ring: no membership yet: the meta group has not "
                             "applied its create command");
        return;
    }
    Titan__Bus__RingTable msg = TITAN__BUS__RING_TABLE__INIT;
    if (s_table_msg (self, &msg))
        ring_actor_refuse (self, env_p, TITAN__BUS__CODE__RESOURCE_EXHAUSTED,
                           "ring: out of memory");
    else
        ring_actor_reply (self, env_p, &msg.base, NULL, NULL);
    s_table_msg_free (&msg);
}
