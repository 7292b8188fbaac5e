/*  Titan-KV ring module: the actor's state and the helpers its files
    share (internal header of titan_ring.so; see titan_ring.c).

    The actor is split by purpose: titan_ring.c (descriptor, settings,
    start-up, loop, dispatch), ring_actor_apply.c (kv.apply_batch and
    kv.stats: the meta group's state machine on the bus),
    ring_actor_snapshot.c (kv.snapshot_*) and ring_actor_table.c (the
    routing table: ring.table requests and events).
*/
#ifndef RING_ACTOR_H_INCLUDED
#define RING_ACTOR_H_INCLUDED

#include <czmq.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "titan/bus.h"
#include "titan/module.h"
#include "bus.pb-c.h"

#include "ring_fsm.h"
#include "ring_table.h"

#define RING_SUBSCRIBERS_MAX  16

/*  A snapshot being read: the state's encoding, pinned when it began.  */
typedef struct {
    uint64_t id;
    uint8_t *data;
    size_t size;
    int64_t used_ms;
} ring_export_t;

/*  A snapshot being installed: the bytes received so far.  */
typedef struct {
    bool active;
    uint64_t applied_index;      /* announced at offset 0; 0: not checked */
    uint8_t *data;
    size_t size;
    int64_t used_ms;
} ring_install_t;

typedef struct {
    titan_module_ctx_t *ctx;
    titan_bus_t *bus;
    char dir [PATH_MAX];         /* <data_dir>/ring */
    /* settings */
    uint32_t shards, replicas;   /* what this node expects Q and R to be */
    char *subscribers [RING_SUBSCRIBERS_MAX];
    size_t nsubscribers;
    int64_t snap_chunk;          /* most bytes per snapshot chunk */
    int64_t snap_idle_ms;        /* idle exports and installs end after it */
    int64_t snap_max_open;       /* exports pinned at once */
    /* the replicated state and what is derived from it */
    ring_fsm_t *fsm;
    ring_table_t *table;         /* NULL until the cluster is created */
    uint64_t published_epoch;    /* of the last table sent; UINT64_MAX: none */
    /* the last apply batch answered: a re-sent copy gets the same reply */
    uint8_t *last_batch, *last_reply;
    size_t last_batch_size, last_reply_size;
    /* snapshots */
    ring_export_t *exports;
    size_t nexports;
    uint64_t next_snap_id;
    ring_install_t install;
    bool terminated;
} ring_actor_t;

/*  Packs `msg` and sends it as the reply to `*env_p`, which is destroyed.
    When `copy_p` is not NULL the packed bytes are handed to the caller
    there (to free()), with their size in `*copy_size`.  */
void ring_actor_reply (ring_actor_t *self, titan_envelope_t **env_p,
                       const ProtobufCMessage *msg, uint8_t **copy_p,
                       size_t *copy_size);

/*  Answers `*env_p` (destroyed) with `code` and `message`.  Every reply
    message of proto/bus.proto starts with the same two fields, so one
    encoding serves them all (as the kernel's own refusals do).  */
void ring_actor_refuse (ring_actor_t *self, titan_envelope_t **env_p,
                        Titan__Bus__Code code, const char *message);

/*  Returns the bus code of a ring status (ring_fsm_apply and friends).  */
Titan__Bus__Code ring_actor_code (int rc);

/*  Checks that a request's shard is the meta group's; if not, answers it
    with INVALID_ARGUMENT (destroying `*env_p`) and returns false.  */
bool ring_actor_check_shard (ring_actor_t *self, titan_envelope_t **env_p,
                             uint32_t shard);

/*  Checks the cluster's Q and R in `fsm` (if created) against this node's
    settings.  Returns 0, or TITAN_ECONFIG with a message naming both.  */
int ring_actor_check_qr (const ring_actor_t *self, const ring_fsm_t *fsm,
                         char *err, size_t err_size);

/*  Replaces the state with `*fsm_p` (taken; nulled), which the caller has
    saved, rebuilds the routing table and, if the membership changed
    (created, or a new epoch), publishes it.  */
void ring_actor_set_state (ring_actor_t *self, ring_fsm_t **fsm_p);

/*  Rebuilds the routing table from the current state and sends it to every
    subscriber if it was not published yet at this epoch (or `force`).  */
void ring_actor_publish (ring_actor_t *self, bool force);

/*  ring.table: answers with the current table, or UNAVAILABLE.  */
void ring_actor_handle_table (ring_actor_t *self, titan_envelope_t **env_p);

/*  kv.apply_batch and kv.stats.  */
void ring_actor_handle_apply (ring_actor_t *self, titan_envelope_t **env_p);
void ring_actor_handle_stats (ring_actor_t *self, titan_envelope_t **env_p);

/*  kv.snapshot_begin / read / end / install, and the idle expiry.  */
void ring_actor_handle_snapshot_begin (ring_actor_t *self, titan_envelope_t **env_p);
void ring_actor_handle_snapshot_read (ring_actor_t *self, titan_envelope_t **env_p);
void ring_actor_handle_snapshot_end (ring_actor_t *self, titan_envelope_t **env_p);
void ring_actor_handle_snapshot_install (ring_actor_t *self, titan_envelope_t **env_p);
void ring_actor_snapshot_expire (ring_actor_t *self);
void ring_actor_snapshot_free (ring_actor_t *self);

#endif
