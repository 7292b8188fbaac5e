/*  raft_storage_adapter: the Raft core's log storage interface
    (raft_storage_t, see raft_core.h) over one group's durable log
    (raft_log.h) and snapshot store (raft_snapshot_store.h).

    The adapter only reads: the group writes entries with raft_log_append
    as readies tell it to.  Status mapping: the log's -ERANGE (compacted)
    becomes RAFT_ECOMPACTED, TITAN_ENOTFOUND (beyond the end) becomes
    RAFT_EUNAVAILABLE; any other error is a storage failure.  The snapshot
    meta is read once at creation (the latest complete snapshot, whose conf
    bytes hold the configuration in the layout of raft_storage_conf_encode)
    and updated by the group with raft_storage_adapter_set_snapshot.
    Snapshot chunks for InstallSnapshot are read through one reader kept
    open on the current snapshot (opening verifies the whole file).
*/
#ifndef RAFT_STORAGE_ADAPTER_H_INCLUDED
#define RAFT_STORAGE_ADAPTER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft_core.h"
#include "raft_log.h"
#include "raft_snapshot_store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct raft_storage_adapter raft_storage_adapter_t;

/*  Bytes of an encoded configuration: u32 voters, u32 learners, then the
    ids, little-endian.  */
#define RAFT_CONF_BYTES(n_voters, n_learners) (8 + 8 * ((n_voters) + (n_learners)))

/*  Encodes cfg into out (RAFT_CONF_BYTES of its member counts bytes);
    returns the size.  */
size_t raft_storage_conf_encode (const raft_config_t *cfg, uint8_t *out);

/*  Decodes a configuration; returns 0 or TITAN_ECORRUPT.  */
int raft_storage_conf_decode (const uint8_t *data, size_t size,
                              raft_config_t *cfg);

/*  Creates the adapter over `log` and `snaps` (both borrowed; they must
    outlive it).  Reads the latest snapshot's meta.  Returns 0 and
    *self_p, or a negative status with a message naming the file.  */
int raft_storage_adapter_new (raft_log_t *log, raft_snapshot_store_t *snaps,
                              raft_storage_adapter_t **self_p, char *err,
                              size_t err_size);

/*  Frees the adapter and nulls the pointer.  */
void raft_storage_adapter_destroy (raft_storage_adapter_t **self_p);

/*  The interface to give the core (valid while the adapter lives).  */
const raft_storage_t *raft_storage_adapter_iface (raft_storage_adapter_t *self);

/*  Records that the snapshot described by `meta` is now the latest.  */
void raft_storage_adapter_set_snapshot (raft_storage_adapter_t *self,
                                        const raft_snapshot_meta_t *meta);

/*  With `on`, the log entries kept at or below the snapshot's index (the
    compaction slack) are served too: first_index is then the log's, so a
    follower only slightly behind gets entries instead of the snapshot.
    Must be off while the core is created (raft_new scans the log from
    first_index for configuration entries, which must start after the
    snapshot's).  */
void raft_storage_adapter_expose_slack (raft_storage_adapter_t *self, bool on);

#ifdef __cplusplus
}
#endif
#endif
