/*  grpc_gateway routing table (see gw_ring.h).  */
#include "gw_ring.h"
#include "ring_table.h"
#include "bus.pb-c.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gw_ring {
    ring_table_t *table;                 /* NULL: static mode */
    Titan__Bus__RingTable *msg;          /* its message: the node list */
};

gw_ring_t *
gw_ring_new (void)
{
    return calloc (1, sizeof (gw_ring_t));
}

void
gw_ring_destroy (gw_ring_t **self_p)
{
    gw_ring_t *self = *self_p;
    if (!self)
        return;
    ring_table_destroy (&self->table);
    if (self->msg)
        titan__bus__ring_table__free_unpacked (self->msg, NULL);
    free (self);
    *self_p = NULL;
}

/*  The node list entry of `node_id`, or NULL.  */
static const Titan__Bus__RingNode *
s_node (const Titan__Bus__RingTable *msg, const char *node_id)
{
    for (size_t i = 0; msg && node_id && i < msg->n_nodes; i++)
        if (msg->nodes [i]->node_id && strcmp (msg->nodes [i]->node_id, node_id) == 0)
            return msg->nodes [i];
    return NULL;
}

/*  Checks a decoded message against its table; returns 0 or -EINVAL.  */
static int
s_check (const Titan__Bus__RingTable *msg, const ring_table_t *table,
         char *err, size_t err_size)
{
    if (ring_table_epoch (table) != msg->epoch
    ||  ring_table_shards (table) != msg->shards
    ||  ring_table_replicas (table) != msg->replicas) {
        snprintf (err, err_size, "ring table of epoch %" PRIu64 " with %u "
                  "shards and %u replicas carries a placement of epoch %"
                  PRIu64 " with %u shards and %u replicas", msg->epoch,
                  msg->shards, msg->replicas, ring_table_epoch (table),
                  ring_table_shards (table), ring_table_replicas (table));
        return -EINVAL;
    }
    for (uint32_t i = 0; i < ring_table_nodes (table); i++)
        if (!s_node (msg, ring_table_node (table, i))) {
            snprintf (err, err_size, "ring table of epoch %" PRIu64 " places "
                      "replicas on node %.64s, which its node list lacks",
                      msg->epoch, ring_table_node (table, i));
            return -EINVAL;
        }
    return 0;
}

int
gw_ring_offer (gw_ring_t *self, const uint8_t *data, size_t size,
               char *err, size_t err_size)
{
    Titan__Bus__RingTable *msg = titan__bus__ring_table__unpack (NULL, size, data);
    if (!msg) {
        snprintf (err, err_size, "ring table message does not decode (%zu "
                  "bytes)", size);
        return -EINVAL;
    }
    if (msg->code != TITAN__BUS__CODE__OK) {
        snprintf (err, err_size, "no ring table: %s", msg->message
                  && *msg->message ? msg->message : "refused, no reason given");
        int rc = msg->code == TITAN__BUS__CODE__UNAVAILABLE ? -EAGAIN
               : msg->code == TITAN__BUS__CODE__UNIMPLEMENTED ? -ENOENT
               : -EINVAL;
        titan__bus__ring_table__free_unpacked (msg, NULL);
        return rc;
    }
    if (self->table && msg->epoch <= ring_table_epoch (self->table)) {
        titan__bus__ring_table__free_unpacked (msg, NULL);
        return 0;
    }
    ring_table_t *table = NULL;
    char why [200] = "";
    int rc = ring_table_decode (msg->table.data, msg->table.len, &table, why,
                                sizeof why);
    if (rc) {
        snprintf (err, err_size, "ring table of epoch %" PRIu64 " refused: "
                  "%s", msg->epoch, *why ? why : "does not decode");
        titan__bus__ring_table__free_unpacked (msg, NULL);
        return rc == -ENOMEM ? -ENOMEM : -EINVAL;
    }
    rc = s_check (msg, table, err, err_size);
    if (rc) {
        ring_table_destroy (&table);
        titan__bus__ring_table__free_unpacked (msg, NULL);
        return rc;
    }
    ring_table_destroy (&self->table);
    if (self->msg)
        titan__bus__ring_table__free_unpacked (self->msg, NULL);
    self->table = table;
    self->msg = msg;
    return 1;
}

bool
gw_ring_active (const gw_ring_t *self)
{
    return self && self->table;
}

uint64_t
gw_ring_epoch (const gw_ring_t *self)
{
    return gw_ring_active (self) ? ring_table_epoch (self->table) : 0;
}

uint32_t
gw_ring_shards (const gw_ring_t *self)
{
    return gw_ring_active (self) ? ring_table_shards (self->table) : 0;
}

uint32_t
gw_ring_replicas (const gw_ring_t *self)
{
    return gw_ring_active (self) ? ring_table_replicas (self->table) : 0;
}

uint32_t
gw_ring_shard_size (const gw_ring_t *self, uint32_t shard)
{
    if (!gw_ring_active (self) || shard >= ring_table_shards (self->table))
        return 0;
    return ring_table_shard_size (self->table, shard);
}

const char *
gw_ring_replica (const gw_ring_t *self, uint32_t shard, uint32_t rank)
{
    if (rank >= gw_ring_shard_size (self, shard))
        return NULL;
    return ring_table_replica (self->table, shard, rank);
}

bool
gw_ring_places (const gw_ring_t *self, uint32_t shard, const char *node_id)
{
    const char *id;
    for (uint32_t rank = 0; node_id && (id = gw_ring_replica (self, shard, rank));
         rank++)
        if (strcmp (id, node_id) == 0)
            return true;
    return false;
}

size_t
gw_ring_members (const gw_ring_t *self)
{
    return gw_ring_active (self) ? self->msg->n_nodes : 0;
}

const char *
gw_ring_member_id (const gw_ring_t *self, size_t index)
{
    return index < gw_ring_members (self) ? self->msg->nodes [index]->node_id
                                          : NULL;
}

const char *
gw_ring_member_addr (const gw_ring_t *self, size_t index)
{
    return index < gw_ring_members (self) ? self->msg->nodes [index]->client_addr
                                          : NULL;
}

const char *
gw_ring_member_state (const gw_ring_t *self, size_t index)
{
    return index < gw_ring_members (self) ? self->msg->nodes [index]->state
                                          : NULL;
}

const char *
gw_ring_member_peer (const gw_ring_t *self, size_t index)
{
    return index < gw_ring_members (self) ? self->msg->nodes [index]->peer_addr
                                          : NULL;
}

const char *
gw_ring_client_addr (const gw_ring_t *self, const char *node_id)
{
    const Titan__Bus__RingNode *n = gw_ring_active (self)
                                  ? s_node (self->msg, node_id) : NULL;
    return n ? n->client_addr : NULL;
}

const char *
gw_ring_state (const gw_ring_t *self, const char *node_id)
{
    const Titan__Bus__RingNode *n = gw_ring_active (self)
                                  ? s_node (self->msg, node_id) : NULL;
    return n ? n->state : NULL;
}

bool
gw_ring_target (const gw_ring_t *self, uint32_t shard, const char *self_id,
                uint32_t *next, const char **id_p, const char **addr_p)
{
    const char *id;
    while ((id = gw_ring_replica (self, shard, *next))) {
        (*next)++;
        const char *addr = gw_ring_client_addr (self, id);
        if ((self_id && strcmp (id, self_id) == 0) || !addr || !*addr)
            continue;
        *id_p = id;
        *addr_p = addr;
        return true;
    }
    return false;
}

uint32_t
gw_ring_prune_hints (const gw_ring_t *self, gw_leader_hint_t *hints, uint32_t n)
{
    uint32_t forgotten = 0;
    for (uint32_t shard = 0; gw_ring_active (self) && shard < n; shard++) {
        gw_leader_hint_t *h = &hints [shard];
        if (*h->id && !gw_ring_places (self, shard, h->id)) {
            *h->id = *h->addr = '\0';
            forgotten++;
        }
    }
    return forgotten;
}
