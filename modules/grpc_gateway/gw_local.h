/*  grpc_gateway: LOCAL reads straight to the storage module.

    A LOCAL (serializable) Get reads this node's replica of the key's
    shard, possibly stale, and must be refused when this node does not
    host that shard.  The raft module knows which shards are hosted; the
    storage module does not (it keeps a shard's files until told to drop
    them).  Sending every LOCAL read through the raft module, which only
    relays it to the storage module, costs two more bus messages and a
    wake-up of the raft actor per read, about half the work of a local
    read.  So a LOCAL read goes through raft only to confirm the shard:
    when raft serves one (OK or NOT_FOUND), the shard is confirmed as
    hosted for GW_LOCAL_CONFIRM_MS, and the LOCAL reads of that shard in
    that window go straight to the storage module (gw_route.h:
    GW_ROUTE_LOCAL_READS).  Any other answer of raft (the shard is not
    hosted, the group failed) withdraws the confirmation, and so does any
    answer of the storage module other than OK or NOT_FOUND, after which
    the read is sent again through raft, so that the client gets the
    answer raft would have given.  A replica moved away is therefore read
    at most GW_LOCAL_CONFIRM_MS after its removal, a staleness of the
    kind LOCAL allows; the storage module never creates a shard for a read,
    so a shard already dropped is refused, not recreated empty.  */
#ifndef GW_LOCAL_H_INCLUDED
#define GW_LOCAL_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*  How long a shard served by raft stays confirmed as hosted here.  */
#define GW_LOCAL_CONFIRM_MS 1000

typedef struct gw_local gw_local_t;

/*  Creates the confirmations of `shards` shards (none confirmed).
    Returns NULL when out of memory.  */
gw_local_t *gw_local_new (uint32_t shards);

/*  Destroys it and nulls the pointer.  */
void gw_local_destroy (gw_local_t **self_p);

/*  True when a LOCAL read of `shard` may go straight to the storage
    module at time `now_ms` (zclock_mono).  */
bool gw_local_direct (const gw_local_t *self, uint32_t shard, int64_t now_ms);

/*  Notes the KvReply (`reply`, `size` bytes) to a LOCAL read of `shard`,
    answered by the storage module when `direct`, else by raft.  Returns
    true when the read must be sent again through raft (a direct read
    refused).  */
bool gw_local_note (gw_local_t *self, uint32_t shard, bool direct,
                    const uint8_t *reply, size_t size, int64_t now_ms);

#endif
