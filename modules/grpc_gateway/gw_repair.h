/*  grpc_gateway read repair: a local replica's damaged record is replaced
    by the committed value read from a healthy replica of the same shard,
    and the client gets that value, never the damage (docs/repair.md).

    A repair starts when a Get's bus reply is DATA_LOSS (the local bitcask
    found the record damaged: CRC, truncation, missing file), or when the
    local bitcask's scrub publishes the event kv.corrupt.  Steps, all
    asynchronous on the gateway actor's thread:
      1. raft.status: the shard's other members and their client addresses
         (the leader first);
      2. a Get forwarded to one of them (gw_forward_start_md) with the
         metadata GW_REPAIR_SOURCE_KEY: that gateway serves it from its own
         replica after a ReadIndex barrier (LINEARIZABLE), never forwards
         it and never repairs on its behalf, so a repair cannot loop; a
         member that fails is followed by the next one;
      3. the client's call is answered with the value (or NOT_FOUND when
         the key is absent there), and kv.repair goes to the local bitcask,
         which rewrites the record only while its keydir still holds the
         damaged revision (a newer applied write wins).
    With no other member (a single node), or none answering before the
    deadline, the client gets DATA_LOSS saying so.  At most
    GW_REPAIR_MAX_JOBS repairs run at once; kv.corrupt events beyond that
    are dropped (the next scrub pass finds the record again).
*/
#ifndef GW_REPAIR_H_INCLUDED
#define GW_REPAIR_H_INCLUDED

#include "gw_forward.h"
#include "gw_server.h"
#include "titan/bus.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*  The metadata key that marks a Get sent by a repair.  */
#define GW_REPAIR_SOURCE_KEY "titan-repair-source"
#define GW_REPAIR_MAX_JOBS   1024
/*  How long a repair started by a scrub may take.  */
#define GW_REPAIR_SCRUB_DEADLINE_MS 10000

typedef struct gw_repair gw_repair_t;

typedef struct {
    uint64_t started;            /* repairs started (reads + scrub events) */
    uint64_t fetched;            /* healthy values fetched */
    uint64_t repaired;           /* kv.repair answered OK */
    uint64_t failed;             /* no healthy value, or kv.repair refused */
} gw_repair_stats_t;

/*  Creates the repairer of a gateway: requests go out on `bus` and
    `forward` (neither is taken; both outlive the repairer), `node_id` is
    this node's (copied).  Returns NULL when out of memory.  */
gw_repair_t *gw_repair_new (titan_bus_t *bus, gw_forward_t *forward,
                            const char *node_id);

/*  Fails the client calls of the repairs in progress with UNAVAILABLE,
    frees everything, nulls the pointer.  */
void gw_repair_destroy (gw_repair_t **self_p);

/*  Says whether a received call carries the repair marker.  */
bool gw_repair_is_source (const grpc_metadata_array *metadata);

/*  The bus reply of a Get: when it is DATA_LOSS, starts a repair that
    answers *call_p (taken: nulled) and returns true.  `kv_get` is the
    KvGet payload the gateway sent (for the shard and key), `deadline_ms`
    the call's.  Returns false (call untouched) for any other reply, or
    when the repair could not start (then the caller passes the reply on).  */
bool gw_repair_read (gw_repair_t *self, gw_call_t **call_p,
                     const uint8_t *kv_get, size_t kv_get_size,
                     const uint8_t *reply, size_t reply_size,
                     int64_t deadline_ms);

/*  A kv.corrupt event (payload KvCorrupt) from the local bitcask: starts
    a repair with no client call.  */
void gw_repair_corrupt (gw_repair_t *self, const uint8_t *payload,
                        size_t size);

/*  A bus reply: returns true when it belongs to a repair (and handles
    it), false when it is not one of ours.  */
bool gw_repair_bus_reply (gw_repair_t *self, const titan_envelope_t *env);

/*  A forwarded call's result: returns true when it belongs to a repair
    (and handles it; the caller still destroys `res`).  */
bool gw_repair_forwarded (gw_repair_t *self, const gw_fwd_result_t *res);

/*  Fails the repairs whose deadline passed; returns the ms until the next
    deadline, at most `cap`.  */
int gw_repair_expire (gw_repair_t *self, int cap);

/*  Fills *stats.  */
void gw_repair_stats (gw_repair_t *self, gw_repair_stats_t *stats);

#endif
