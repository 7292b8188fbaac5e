/*  An in-memory Raft log store: the raft_storage_t of the simulation and
    the unit tests.

    It holds what a durable store would hold — the hard state, a snapshot
    (meta and opaque data) and the entries after it — and nothing else, so
    a simulated crash is modelled by destroying the core and keeping the
    memstore: exactly what was persisted survives.  Not thread-safe.
*/
#ifndef TITAN_RAFT_MEMSTORE_H_INCLUDED
#define TITAN_RAFT_MEMSTORE_H_INCLUDED

#include "raft_core.h"

typedef struct raft_memstore raft_memstore_t;

/*  Creates an empty store, or NULL when out of memory.  */
raft_memstore_t *raft_memstore_new (void);

/*  Frees the store and nulls *self_p.  */
void raft_memstore_destroy (raft_memstore_t **self_p);

/*  The storage interface reading this store (owned by the store).  */
const raft_storage_t *raft_memstore_storage (raft_memstore_t *self);

/*  Appends copies of n consecutive entries; an entry at index i replaces
    the stored one at i and all later ones.  -EINVAL if ents[0].index is
    not in snapshot index + 1 .. last + 1; -ENOMEM.  */
int raft_memstore_append (raft_memstore_t *self, const raft_entry_t *ents,
                          size_t n);

void raft_memstore_set_hard_state (raft_memstore_t *self,
                                   const raft_hard_state_t *hs);
raft_hard_state_t raft_memstore_hard_state (const raft_memstore_t *self);

/*  Replaces the whole log by a snapshot received from a leader (data is
    copied; it must be present: a streaming caller passes its assembled
    copy).  Returns 0, -EINVAL (no data, or over 4 GiB) or -ENOMEM.  */
int raft_memstore_install_snapshot (raft_memstore_t *self,
                                    const raft_snapshot_t *snap);

/*  Log compaction: records a snapshot at `index` (<= last, > current
    snapshot index) with the FSM's data and configuration, and drops the
    entries up to it.  Returns 0, -EINVAL or -ENOMEM.  */
int raft_memstore_compact (raft_memstore_t *self, uint64_t index,
                           const raft_config_t *cfg, const void *data,
                           uint32_t size);

/*  Persists steps 1 and 2 of a ready (snapshot, entries, hard state);
    not for streaming mode, whose snapshot has no data.  */
int raft_memstore_persist (raft_memstore_t *self, const raft_ready_t *rd);

/*  The current snapshot's data (owned by the store; size in *size).  */
const uint8_t *raft_memstore_snapshot_data (const raft_memstore_t *self,
                                            uint32_t *size);

#endif
