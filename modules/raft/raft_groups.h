/*  raft_groups: the set of Raft groups one raft module hosts (multi-Raft),
    keyed by group id: the shard number for data shards, TITAN_META_SHARD
    for the meta group.

    The registry owns its groups (raft_groups_remove and raft_groups_destroy
    destroy them).  It is a small array kept sorted by id: a node hosts a
    few dozen groups at most, lookups are a binary search and iteration is
    in id order, so every node reports and ticks its groups in the same
    order.  Not thread-safe: the raft actor owns it.

    It also knows where a bus request is going: every request the raft
    module serves (KvWrite, KvGet, RaftMemberChange) carries its shard in
    protobuf field 1, which raft_groups_peek_shard reads without decoding
    the rest of the message (a write may carry megabytes of value).
*/
#ifndef RAFT_GROUPS_H_INCLUDED
#define RAFT_GROUPS_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "raft_group.h"
#include "titan/job_pool.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct raft_groups raft_groups_t;

/*  Creates an empty registry, or returns NULL when out of memory.  */
raft_groups_t *raft_groups_new (void);

/*  Destroys every group (raft_group_destroy) and the registry; nulls the
    pointer.  */
void raft_groups_destroy (raft_groups_t **self_p);

/*  Adds `*group_p` under `id`; the registry takes it (*group_p nulled).
    Returns 0, -EEXIST when a group with that id is there (the group is
    left with the caller), or -ENOMEM.  */
int raft_groups_add (raft_groups_t *self, uint32_t id, raft_group_t **group_p);

/*  Returns the group with `id` (the registry's), or NULL.  */
raft_group_t *raft_groups_find (raft_groups_t *self, uint32_t id);

/*  Destroys the group with `id` and removes it.  Returns 0 or -ENOENT.  */
int raft_groups_remove (raft_groups_t *self, uint32_t id);

/*  Number of groups.  */
size_t raft_groups_size (raft_groups_t *self);

/*  Rounds of raft_groups_persist per call (a leader's advance may commit
    and so make a new ready at once); what is left waits for
    raft_group_process.  */
#define RAFT_GROUPS_PERSIST_ROUNDS  3

/*  Makes the pending readies of every group durable together: each group
    writes its ready (raft_group_ready_write; a leader queues its appends
    at once), `transport` (borrowed; NULL: none) is flushed when there is
    something to sync so that those appends travel while the disk works,
    then the files of all that wrote something are fdatasynced
    concurrently on `pool`, then each group finishes its ready (messages
    that needed durability, committed entries, advance).  Repeats while
    readies appear, at most RAFT_GROUPS_PERSIST_ROUNDS times.  Returns 0,
    or the first fatal error with the id of its group in *failed_id (every
    other group still finished its ready).  */
int raft_groups_persist (raft_groups_t *self, titan_job_pool_t *pool,
                         raft_transport_t *transport, uint32_t *failed_id);

/*  Group number `index` (< size, asserted) in id order, and its id in
    *id_p when not NULL.  Valid until the registry changes.  */
raft_group_t *raft_groups_at (raft_groups_t *self, size_t index, uint32_t *id_p);

/*  Reads the shard (protobuf field 1, a varint) of a KvWrite, KvGet or
    RaftMemberChange without decoding the message.  Returns 0 and *shard
    (0 when the field is absent: proto3 default), or -EPROTO when the bytes
    are not a well-formed message up to that field or the value does not
    fit 32 bits.  */
int raft_groups_peek_shard (const uint8_t *data, size_t size, uint32_t *shard);

/*  The directory of group `id` under `raft_dir` ("<raft_dir>/shard-<n>",
    or "<raft_dir>/meta" for TITAN_META_SHARD) into `out`.  Returns 0 or
    -ENAMETOOLONG.  */
int raft_groups_dir (const char *raft_dir, uint32_t id, char *out, size_t size);

/*  Deletes the directory `dir` and everything under it (a destroyed
    replica's log, hard state and snapshots).  Returns 0 (also when it
    does not exist) or a negative errno.  */
int raft_groups_remove_dir (const char *dir);

/*  The data group ids that have a directory under `raft_dir`
    ("shard-<n>"), in a new array (*ids_p, the caller's to free) of *n_p.
    Returns 0 (none when `raft_dir` does not exist) or a negative errno. */
int raft_groups_scan_dirs (const char *raft_dir, uint32_t **ids_p, size_t *n_p);

#ifdef __cplusplus
}
#endif
#endif
