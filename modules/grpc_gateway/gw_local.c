/*  grpc_gateway: which shards' LOCAL reads may skip the raft module
    (gw_local.h says why and how): one expiry time per shard.  */
#include "gw_local.h"
#include "bus.pb-c.h"

#include <assert.h>
#include <stdlib.h>

struct gw_local {
    uint32_t shards;
    int64_t *until;              /* per shard: confirmed until (ms), or 0 */
};

gw_local_t *
gw_local_new (uint32_t shards)
{
    gw_local_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->shards = shards;
    self->until = calloc (shards ? shards : 1, sizeof *self->until);
    if (!self->until) {
        free (self);
        return NULL;
    }
    return self;
}

void
gw_local_destroy (gw_local_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        free ((*self_p)->until);
        free (*self_p);
        *self_p = NULL;
    }
}

bool
gw_local_direct (const gw_local_t *self, uint32_t shard, int64_t now_ms)
{
    assert (self);
    return shard < self->shards && now_ms < self->until [shard];
}

bool
gw_local_note (gw_local_t *self, uint32_t shard, bool direct,
               const uint8_t *reply, size_t size, int64_t now_ms)
{
    assert (self);
    if (shard >= self->shards)
        return false;
    Titan__Bus__KvReply *r = titan__bus__kv_reply__unpack (NULL, size, reply);
    bool served = r && (r->code == TITAN__BUS__CODE__OK
                    ||  r->code == TITAN__BUS__CODE__NOT_FOUND);
    if (r)
        titan__bus__kv_reply__free_unpacked (r, NULL);
    if (served && !direct)
        self->until [shard] = now_ms + GW_LOCAL_CONFIRM_MS;
    else
    if (!served)
        self->until [shard] = 0;
    return direct && !served;
}
