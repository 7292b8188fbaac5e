/*  raft_groups: the registry of a node's Raft groups; see raft_groups.h.
    A sorted array of (id, group): inserts and removals shift the tail,
    which for a few dozen groups costs nothing next to opening a group's
    files.
*/
#include "raft_groups.h"

#include <assert.h>
#include <dirent.h>
#include <ftw.h>
#include <sys/stat.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "titan/bus_types.h"

typedef struct {
    uint32_t id;
    raft_group_t *group;
} s_slot_t;

struct raft_groups {
    s_slot_t *slots;
    size_t size, cap;
    size_t *held;               /* raft_groups_persist: slots holding a ready */
    void **unsynced;            /* ... and the groups of those to sync */
};

raft_groups_t *
raft_groups_new (void)
{
    return calloc (1, sizeof (raft_groups_t));
}

void
raft_groups_destroy (raft_groups_t **self_p)
{
    if (!*self_p)
        return;
    raft_groups_t *self = *self_p;
    for (size_t i = 0; i < self->size; i++)
        raft_group_destroy (&self->slots [i].group);
    free (self->slots);
    free (self->held);
    free (self->unsynced);
    free (self);
    *self_p = NULL;
}

/*  Index of the first slot with id >= `id`.  */
static size_t
s_lower_bound (const raft_groups_t *self, uint32_t id)
{
    size_t lo = 0, hi = self->size;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (self->slots [mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int
raft_groups_add (raft_groups_t *self, uint32_t id, raft_group_t **group_p)
{
    assert (group_p && *group_p);
    size_t at = s_lower_bound (self, id);
    if (at < self->size && self->slots [at].id == id)
        return -EEXIST;
    if (self->size == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 8;
        s_slot_t *grown = realloc (self->slots, cap * sizeof *grown);
        if (!grown)
            return -ENOMEM;
        self->slots = grown;
        size_t *held = realloc (self->held, cap * sizeof *held);
        if (!held)
            return -ENOMEM;
        self->held = held;
        void **unsynced = realloc (self->unsynced, cap * sizeof *unsynced);
        if (!unsynced)
            return -ENOMEM;
        self->unsynced = unsynced;
        self->cap = cap;
    }
    memmove (&self->slots [at + 1], &self->slots [at],
             (self->size - at) * sizeof *self->slots);
    self->slots [at].id = id;
    self->slots [at].group = *group_p;
    self->size++;
    *group_p = NULL;
    return 0;
}

raft_group_t *
raft_groups_find (raft_groups_t *self, uint32_t id)
{
    size_t at = s_lower_bound (self, id);
    return at < self->size && self->slots [at].id == id
         ? self->slots [at].group : NULL;
}

int
raft_groups_remove (raft_groups_t *self, uint32_t id)
{
    size_t at = s_lower_bound (self, id);
    if (at >= self->size || self->slots [at].id != id)
        return -ENOENT;
    raft_group_destroy (&self->slots [at].group);
    memmove (&self->slots [at], &self->slots [at + 1],
             (self->size - at - 1) * sizeof *self->slots);
    self->size--;
    return 0;
}

size_t
raft_groups_size (raft_groups_t *self)
{
    return self->size;
}

static void
s_sync_job (void *group)
{
    raft_group_ready_sync (group);
}

int
raft_groups_persist (raft_groups_t *self, titan_job_pool_t *pool,
                     raft_transport_t *transport, uint32_t *failed_id)
{
    int first_rc = 0;
    for (int round = 0; round < RAFT_GROUPS_PERSIST_ROUNDS && first_rc == 0;
         round++) {
        size_t n_held = 0, n_unsynced = 0;
        for (size_t i = 0; i < self->size; i++) {
            raft_group_t *group = self->slots [i].group;
            if (!raft_group_ready_write (group))
                continue;
            self->held [n_held++] = i;
            if (raft_group_ready_unsynced (group))
                self->unsynced [n_unsynced++] = group;
        }
        if (n_held == 0)
            break;
        //  The leaders' appends go out while this node's disk works.
        if (n_unsynced && transport)
            raft_transport_flush (transport);
        titan_job_pool_run (pool, s_sync_job, self->unsynced, n_unsynced);
        for (size_t k = 0; k < n_held; k++) {
            const s_slot_t *slot = &self->slots [self->held [k]];
            int rc = raft_group_ready_finish (slot->group);
            if (rc && first_rc == 0) {
                first_rc = rc;
                *failed_id = slot->id;
            }
        }
    }
    return first_rc;
}

raft_group_t *
raft_groups_at (raft_groups_t *self, size_t index, uint32_t *id_p)
{
    assert (index < self->size);
    if (id_p)
        *id_p = self->slots [index].id;
    return self->slots [index].group;
}

/*  Reads a base-128 varint at *pos; returns 0 or -EPROTO.  */
static int
s_varint (const uint8_t *data, size_t size, size_t *pos, uint64_t *value)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (*pos >= size)
            return -EPROTO;
        uint8_t b = data [(*pos)++];
        v |= (uint64_t) (b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *value = v;
            return 0;
        }
    }
    return -EPROTO;
}

int
raft_groups_peek_shard (const uint8_t *data, size_t size, uint32_t *shard)
{
    *shard = 0;
    size_t pos = 0;
    while (pos < size) {
        uint64_t key, v;
        if (s_varint (data, size, &pos, &key))
            return -EPROTO;
        uint32_t field = (uint32_t) (key >> 3);
        switch (key & 7) {
            case 0:                         /* varint */
                if (s_varint (data, size, &pos, &v))
                    return -EPROTO;
                if (field == 1) {
                    if (v > UINT32_MAX)
                        return -EPROTO;
                    *shard = (uint32_t) v;  /* the last one wins, as in protobuf */
                }
                break;
            case 1:                         /* 64-bit */
                if (size - pos < 8)
                    return -EPROTO;
                pos += 8;
                break;
            case 2:                         /* length-delimited */
                if (s_varint (data, size, &pos, &v) || v > size - pos)
                    return -EPROTO;
                pos += (size_t) v;
                break;
            case 5:                         /* 32-bit */
                if (size - pos < 4)
                    return -EPROTO;
                pos += 4;
                break;
            default:
                return -EPROTO;
        }
        if (field == 0)
            return -EPROTO;
    }
    return 0;
}

int
raft_groups_dir (const char *raft_dir, uint32_t id, char *out, size_t size)
{
    int n = id == TITAN_META_SHARD
          ? snprintf (out, size, "%s/meta", raft_dir)
          : snprintf (out, size, "%s/shard-%u", raft_dir, id);
    return n < 0 || (size_t) n >= size ? -ENAMETOOLONG : 0;
}

static int
s_remove_entry (const char *path, const struct stat *st, int flag,
                struct FTW *ftw)
{
    (void) st;
    (void) flag;
    (void) ftw;
    return remove (path) ? -errno : 0;
}

int
raft_groups_remove_dir (const char *dir)
{
    int rc = nftw (dir, s_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (rc < 0 && errno == ENOENT)
        return 0;
    return rc > 0 ? 0 : rc < 0 ? -errno : rc;
}

int
raft_groups_scan_dirs (const char *raft_dir, uint32_t **ids_p, size_t *n_p)
{
    *ids_p = NULL;
    *n_p = 0;
    DIR *d = opendir (raft_dir);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir (d)) && rc == 0) {
        unsigned long v;
        char tail;
        if (sscanf (e->d_name, "shard-%lu%c", &v, &tail) != 1
        ||  v >= TITAN_META_SHARD)
            continue;
        char canon [32];
        snprintf (canon, sizeof canon, "shard-%lu", v);
        if (strcmp (canon, e->d_name) != 0)
            continue;
        uint32_t *grown = realloc (*ids_p, (*n_p + 1) * sizeof *grown);
        if (!grown) {
            rc = -ENOMEM;
            break;
        }
        *ids_p = grown;
        (*ids_p) [(*n_p)++] = (uint32_t) v;
    }
    closedir (d);
    if (rc) {
        free (*ids_p);
        *ids_p = NULL;
        *n_p = 0;
    }
    return rc;
}
