/*  The routing table: accessors, comparison of two tables (what a
    change of placement must copy), and the table's CRC-checked encoding
    (format in ring_table.h).
*/
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "titan/crc32c.h"
#include "titan/status.h"
#include "ring_codec.h"
#include "ring_hash.h"
#include "ring_table_priv.h"

#define TABLE_MAGIC   "TRRT"
#define TABLE_HEADER  32            /* magic .. nodes */

ring_table_t *
ring_table_new_priv (uint64_t epoch, uint32_t shards, uint32_t replicas,
                     uint32_t max_nodes)
{
    ring_table_t *self = (ring_table_t *) calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->epoch = epoch;
    self->shards = shards;
    self->replicas = replicas;
    self->ids = calloc (max_nodes ? max_nodes : 1, sizeof *self->ids);
    self->replica = (int32_t *) malloc ((size_t) shards * replicas * sizeof *self->replica);
    if (!self->ids || !self->replica) {
        ring_table_destroy (&self);
        return NULL;
    }
    for (size_t i = 0; i < (size_t) shards * replicas; i++)
        self->replica [i] = -1;
    return self;
}

void
ring_table_destroy (ring_table_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        ring_table_t *self = *self_p;
        free (self->ids);
        free (self->replica);
        free (self);
        *self_p = NULL;
    }
}

uint64_t
ring_table_epoch (const ring_table_t *self)
{
    assert (self);
    return self->epoch;
}

uint32_t
ring_table_shards (const ring_table_t *self)
{
    assert (self);
    return self->shards;
}

uint32_t
ring_table_replicas (const ring_table_t *self)
{
    assert (self);
    return self->replicas;
}

uint32_t
ring_table_nodes (const ring_table_t *self)
{
    assert (self);
    return self->nodes;
}

const char *
ring_table_node (const ring_table_t *self, uint32_t index)
{
    assert (self && index < self->nodes);
    return self->ids [index];
}

uint32_t
ring_table_shard_size (const ring_table_t *self, uint32_t shard)
{
    assert (self && shard < self->shards);
    return self->width;
}

int
ring_table_replica_index (const ring_table_t *self, uint32_t shard, uint32_t rank)
{
    assert (self && shard < self->shards);
    if (rank >= self->width)
        return -1;
    return self->replica [(size_t) shard * self->replicas + rank];
}

const char *
ring_table_replica (const ring_table_t *self, uint32_t shard, uint32_t rank)
{
    int index = ring_table_replica_index (self, shard, rank);
    return index < 0 ? NULL : self->ids [index];
}

uint32_t
ring_table_moves (const ring_table_t *before, const ring_table_t *after)
{
    assert (before && after && before->shards == after->shards);
    uint32_t moves = 0;
    for (uint32_t s = 0; s < after->shards; s++)
        for (uint32_t a = 0; a < after->width; a++) {
            const char *id = ring_table_replica (after, s, a);
            bool held = false;
            for (uint32_t b = 0; b < before->width && !held; b++)
                held = strcmp (id, ring_table_replica (before, s, b)) == 0;
            if (!held)
                moves++;
        }
    return moves;
}

uint32_t
ring_table_leader_changes (const ring_table_t *before, const ring_table_t *after)
{
    assert (before && after && before->shards == after->shards);
    uint32_t changes = 0;
    for (uint32_t s = 0; s < after->shards; s++) {
        const char *a = ring_table_replica (before, s, 0);
        const char *b = ring_table_replica (after, s, 0);
        if (!a || !b ? a != b : strcmp (a, b) != 0)
            changes++;
    }
    return changes;
}

int
ring_table_encode (const ring_table_t *self, uint8_t **data_p, size_t *size_p)
{
    assert (self && data_p && size_p);
    *data_p = NULL;
    *size_p = 0;
    size_t size = TABLE_HEADER + 4 + (size_t) self->shards * self->width * 2;
    for (uint32_t i = 0; i < self->nodes; i++)
        size += 1 + strlen (self->ids [i]);
    ring_writer_t w = { (uint8_t *) malloc (size), size, 0 };
    if (!w.data)
        return -ENOMEM;
    ring_put_bytes (&w, TABLE_MAGIC, 4);
    ring_put_u16 (&w, RING_FORMAT_VERSION);
    ring_put_u16 (&w, 0);
    ring_put_u64 (&w, self->epoch);
    ring_put_u32 (&w, self->shards);
    ring_put_u32 (&w, self->replicas);
    ring_put_u32 (&w, self->width);
    ring_put_u32 (&w, self->nodes);
    for (uint32_t i = 0; i < self->nodes; i++) {
        size_t len = strlen (self->ids [i]);
        ring_put_u8 (&w, (uint8_t) len);
        ring_put_bytes (&w, self->ids [i], len);
    }
    for (uint32_t s = 0; s < self->shards; s++)
        for (uint32_t k = 0; k < self->width; k++)
            ring_put_u16 (&w, (uint16_t) self->replica [(size_t) s * self->replicas + k]);
    ring_put_u32 (&w, titan_crc32c (0, w.data, w.pos));
    assert (w.pos == w.size);
    *data_p = w.data;
    *size_p = w.size;
    return 0;
}

static bool
s_id_ok (const char *id, size_t len)
{
    if (len == 0 || len > RING_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = id [i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
        ||    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

int
ring_table_decode (const uint8_t *data, size_t size, ring_table_t **self_p,
                   char *err, size_t err_size)
{
    assert (self_p);
    *self_p = NULL;
    ring_reader_t r;
    int rc = ring_codec_open (data, size, TABLE_MAGIC, TABLE_HEADER, "routing table",
                              &r, err, err_size);
    if (rc)
        return rc;
    uint16_t flags = ring_get_u16 (&r);
    uint64_t epoch = ring_get_u64 (&r);
    uint32_t shards = ring_get_u32 (&r);
    uint32_t replicas = ring_get_u32 (&r);
    uint32_t width = ring_get_u32 (&r);
    uint32_t nodes = ring_get_u32 (&r);
    //  Sizes are checked against the bytes present before allocating.
    if (flags != 0 || shards < 1 || shards > RING_MAX_SHARDS
    ||  replicas < 1 || replicas > RING_MAX_REPLICAS
    ||  nodes > RING_MAX_MEMBERS || width != (nodes < replicas ? nodes : replicas)
    ||  (size_t) nodes * 2 + (size_t) shards * width * 2 > r.size - r.pos) {
        ring_err (err, err_size, "ring: routing table header is malformed (shards %u, "
                  "replicas %u, width %u, nodes %u)", shards, replicas, width, nodes);
        return TITAN_ECORRUPT;
    }
    ring_table_t *self = ring_table_new_priv (epoch, shards, replicas, nodes);
    if (!self) {
        ring_err (err, err_size, "ring: out of memory decoding a routing table");
        return -ENOMEM;
    }
    self->width = width;
    bool ok = true;
    for (uint32_t i = 0; i < nodes && ok; i++) {
        size_t len = ring_get_u8 (&r);
        const uint8_t *p = ring_get_bytes (&r, len);
        ok = p && s_id_ok ((const char *) p, len);
        if (ok) {
            memcpy (self->ids [i], p, len);
            self->ids [i][len] = 0;
            ok = i == 0 || strcmp (self->ids [i - 1], self->ids [i]) < 0;
            self->nodes = i + 1;
        }
    }
    for (uint32_t s = 0; s < shards && ok; s++)
        for (uint32_t k = 0; k < width && ok; k++) {
            uint16_t index = ring_get_u16 (&r);
            ok = !r.failed && index < nodes;
            for (uint32_t j = 0; j < k && ok; j++)
                ok = self->replica [(size_t) s * replicas + j] != index;
            self->replica [(size_t) s * replicas + k] = index;
        }
    if (!ok || r.failed || r.pos != r.size) {
        ring_err (err, err_size, "ring: routing table body is malformed (bad id, order, "
                  "replica index or length)");
        ring_table_destroy (&self);
        return TITAN_ECORRUPT;
    }
    *self_p = self;
    return 0;
}
