/*  raft_members: node id <-> raft id and the members' addresses; see
    raft_members.h.  A group has at most a few dozen known nodes, so the
    book is a plain array searched linearly.  */
#include "raft_members.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct raft_members {
    raft_member_t *items;
    size_t count;
    size_t cap;
};

uint64_t
raft_members_id (const char *node_id)
{
    uint64_t hash = 0xcbf29ce484222325ull;          /* FNV-1a 64 offset */
    for (const unsigned char *p = (const unsigned char *) node_id; *p; p++) {
        hash ^= *p;
        hash *= 0x100000001b3ull;                    /* FNV-1a 64 prime */
    }
    return hash ? hash : 1;
}

bool
raft_members_valid_node_id (const char *node_id)
{
    size_t len = node_id ? strlen (node_id) : 0;
    if (len == 0 || len > RAFT_NODE_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isgraph ((unsigned char) node_id [i]))
            return false;
    return true;
}

bool
raft_members_valid_addr (const char *addr, bool allow_empty)
{
    if (!addr)
        return allow_empty;
    size_t len = strlen (addr);
    if (len == 0)
        return allow_empty;
    if (len > RAFT_ADDR_MAX)
        return false;
    const char *colon = strrchr (addr, ':');
    if (!colon || colon == addr || colon [1] == '\0')
        return false;
    for (const char *p = addr; *p; p++)
        if (!isgraph ((unsigned char) *p))
            return false;
    char *end = NULL;
    long port = strtol (colon + 1, &end, 10);
    return *end == '\0' && port > 0 && port <= 65535;
}

raft_members_t *
raft_members_new (void)
{
    return calloc (1, sizeof (raft_members_t));
}

void
raft_members_destroy (raft_members_t **self_p)
{
    if (*self_p) {
        raft_members_t *self = *self_p;
        free (self->items);
        free (self);
        *self_p = NULL;
    }
}

int
raft_members_set (raft_members_t *self, const char *node_id,
                  const char *peer_addr, const char *client_addr,
                  bool replicated)
{
    if (!raft_members_valid_node_id (node_id)
    ||  !raft_members_valid_addr (peer_addr, false)
    ||  !raft_members_valid_addr (client_addr, true))
        return -EINVAL;
    uint64_t id = raft_members_id (node_id);
    raft_member_t *m = (raft_member_t *) raft_members_get (self, id);
    if (m && strcmp (m->node_id, node_id) != 0)
        return -EEXIST;
    int changed = 0;
    if (!m) {
        if (self->count == self->cap) {
            size_t cap = self->cap ? self->cap * 2 : 8;
            raft_member_t *grown = realloc (self->items, cap * sizeof *grown);
            if (!grown)
                return -ENOMEM;
            self->items = grown;
            self->cap = cap;
        }
        m = &self->items [self->count++];
        memset (m, 0, sizeof *m);
        m->id = id;
        snprintf (m->node_id, sizeof m->node_id, "%s", node_id);
        changed = 1;
    }
    if (strcmp (m->peer_addr, peer_addr) != 0) {
        snprintf (m->peer_addr, sizeof m->peer_addr, "%s", peer_addr);
        changed = 1;
    }
    if (client_addr && *client_addr)
        snprintf (m->client_addr, sizeof m->client_addr, "%s", client_addr);
    if (replicated) {
        m->replicated = true;
        snprintf (m->rep_peer_addr, sizeof m->rep_peer_addr, "%s", peer_addr);
        snprintf (m->rep_client_addr, sizeof m->rep_client_addr, "%s",
                  client_addr ? client_addr : "");
    }
    return changed;
}

const raft_member_t *
raft_members_get (raft_members_t *self, uint64_t id)
{
    for (size_t i = 0; i < self->count; i++)
        if (self->items [i].id == id)
            return &self->items [i];
    return NULL;
}

const raft_member_t *
raft_members_find (raft_members_t *self, const char *node_id)
{
    for (size_t i = 0; i < self->count; i++)
        if (strcmp (self->items [i].node_id, node_id) == 0)
            return &self->items [i];
    return NULL;
}

size_t
raft_members_count (raft_members_t *self)
{
    return self->count;
}

const raft_member_t *
raft_members_at (raft_members_t *self, size_t index)
{
    return index < self->count ? &self->items [index] : NULL;
}
