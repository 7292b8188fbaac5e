/*  Titan-KV ring: cluster membership, the state machine of the `meta` group.

    The table lists every node the cluster knows: its id, the address
    clients use, the address peers use, and its state.  A node is admitted
    as JOINING (it receives replicas while it catches up), becomes ACTIVE,
    is drained as LEAVING (placement moves its replicas away) and ends
    REMOVED.  Removed members stay in the table as tombstones so that a
    stale join from a node that was thrown out is refused rather than
    silently re-admitting it; operators give a rebuilt node a new id.

    The table changes only by applying commands, which arrive as bytes from
    the replicated log; every change increments the table's epoch, and a
    command that changes nothing (adding a member that is already there
    with the same addresses, setting the state it already has) succeeds
    without touching the epoch, so that a command applied twice is
    harmless.  Members are kept sorted by id, so the table's encoding is a
    pure function of its contents whatever order the members arrived in.

    Encodings are versioned, little-endian and end in a CRC-32C of all the
    bytes before it.  Decoders check the checksum first, then every length
    against the bytes that remain, every string's characters, the sort
    order and that nothing is left over: input is never trusted.

    Snapshot (format 1):
        "TRMS" | u16 version=1 | u16 flags=0 | u64 epoch | u32 shards
        | u32 replicas | u32 count | count x member | u32 crc32c
        member: u8 state | u8 id_len | u8 client_len | u8 peer_len
                | id | client address | peer address
    Command (format 1):
        "TRMC" | u16 version=1 | u8 type | u8 state | u8 id_len
        | u8 client_len | u8 peer_len | u8 reserved=0
        | id | client address | peer address
        | [CREATE only: u32 shards | u32 replicas] | u32 crc32c

    The CREATE command fixes the cluster's Q and R: it is the first
    command of the meta group's log (proposed by the node that bootstraps
    the cluster), so that Q and R are replicated like everything else and
    every node builds the same table whatever its own settings say.  A
    membership table exists only once CREATE was applied (the ring module
    creates it with ring_members_new from the command); applied again to
    the table, CREATE succeeds without a change if Q and R are the same
    and fails with -EEXIST otherwise.
*/
#ifndef RING_MEMBER_H_INCLUDED
#define RING_MEMBER_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RING_ID_MAX          64     /* bytes in a node id: [A-Za-z0-9._-] */
#define RING_ADDR_MAX        200    /* bytes in an address: printable, no space */
#define RING_MAX_MEMBERS     1024   /* members, tombstones included */
#define RING_MAX_REPLICAS    7      /* replicas per shard */
#define RING_FORMAT_VERSION  1

typedef enum {
    RING_JOINING = 1,       /* admitted, holds replicas, catching up */
    RING_ACTIVE  = 2,       /* serving */
    RING_LEAVING = 3,       /* being drained: holds no replicas in placement */
    RING_REMOVED = 4        /* gone; tombstone */
} ring_state_t;

typedef enum {
    RING_CMD_ADD       = 1, /* id, client, peer: admit as JOINING */
    RING_CMD_SET_STATE = 2, /* id, state: move along the life cycle */
    RING_CMD_REMOVE    = 3, /* id: mark REMOVED (also from JOINING/ACTIVE) */
    RING_CMD_CREATE    = 4  /* shards, replicas: fix Q and R (first command) */
} ring_cmd_type_t;

/*  One member, as the table shows it (read-only for callers).  */
typedef struct {
    char id [RING_ID_MAX + 1];
    char client_addr [RING_ADDR_MAX + 1];
    char peer_addr [RING_ADDR_MAX + 1];
    ring_state_t state;
} ring_member_t;

/*  A decoded command: plain data, no allocation.  Fields a type does not
    use are empty strings / 0.  */
typedef struct {
    ring_cmd_type_t type;
    ring_state_t state;
    char id [RING_ID_MAX + 1];
    char client_addr [RING_ADDR_MAX + 1];
    char peer_addr [RING_ADDR_MAX + 1];
    uint32_t shards;        /* CREATE: Q (1..RING_MAX_SHARDS) */
    uint32_t replicas;      /* CREATE: R (1..RING_MAX_REPLICAS) */
} ring_cmd_t;

typedef struct _ring_members_t ring_members_t;

/*  Returns the printable name of a state ("joining", ...), "?" if bad.  */
const char *ring_state_name (ring_state_t state);

/*  Fills `cmd` with an ADD command.  Returns 0, or -EINVAL (message in
    `err` when not NULL) if the id or an address is empty, too long or has
    a forbidden character.  */
int ring_cmd_add (ring_cmd_t *cmd, const char *id, const char *client_addr,
                  const char *peer_addr, char *err, size_t err_size);

/*  Fills `cmd` with a SET_STATE command.  Returns 0 or -EINVAL.  */
int ring_cmd_set_state (ring_cmd_t *cmd, const char *id, ring_state_t state,
                        char *err, size_t err_size);

/*  Fills `cmd` with a REMOVE command.  Returns 0 or -EINVAL.  */
int ring_cmd_remove (ring_cmd_t *cmd, const char *id, char *err, size_t err_size);

/*  Fills `cmd` with a CREATE command for a cluster of `shards` shards
    replicated `replicas` times.  Returns 0, or -EINVAL (message in `err`)
    if either is out of range.  */
int ring_cmd_create (ring_cmd_t *cmd, uint32_t shards, uint32_t replicas,
                     char *err, size_t err_size);

/*  Encodes `cmd` into a new buffer stored in `*data_p` (the caller's, to
    free()) of `*size_p` bytes.  Returns 0, -EINVAL if `cmd` is not valid,
    -ENOMEM.  */
int ring_cmd_encode (const ring_cmd_t *cmd, uint8_t **data_p, size_t *size_p);

/*  Decodes `size` bytes at `data` into `cmd`.  Returns 0, or
    TITAN_ECORRUPT (bad checksum, magic, length or field) or -ENOTSUP
    (unknown format version), with a message in `err` when not NULL.  */
int ring_cmd_decode (const uint8_t *data, size_t size, ring_cmd_t *cmd,
                     char *err, size_t err_size);

/*  Creates an empty membership table for a cluster of `shards` shards
    (1..RING_MAX_SHARDS) replicated `replicas` times (1..RING_MAX_REPLICAS),
    at epoch 0.  Returns NULL if out of memory or the sizes are out of
    range.  */
ring_members_t *ring_members_new (uint32_t shards, uint32_t replicas);

/*  Destroys the table and nulls `*self_p`; does nothing if it is NULL.  */
void ring_members_destroy (ring_members_t **self_p);

/*  Returns a deep copy of the table, or NULL if out of memory.  */
ring_members_t *ring_members_dup (const ring_members_t *self);

/*  Returns the cluster's shard count Q.  */
uint32_t ring_members_shards (const ring_members_t *self);

/*  Returns the cluster's replication factor R.  */
uint32_t ring_members_replicas (const ring_members_t *self);

/*  Returns the epoch: the number of commands that changed the table.  */
uint64_t ring_members_epoch (const ring_members_t *self);

/*  Returns the number of members, tombstones included.  */
uint32_t ring_members_size (const ring_members_t *self);

/*  Returns member `index` (0 <= index < size, asserted) in id order; the
    pointer is valid until the table next changes.  */
const ring_member_t *ring_members_at (const ring_members_t *self, uint32_t index);

/*  Returns the member with `id`, or NULL; valid until the table changes. */
const ring_member_t *ring_members_find (const ring_members_t *self, const char *id);

/*  Applies a decoded command.  Returns 0 whether or not it changed the
    table (compare epochs to tell); on failure the table is unchanged and
    the result is -EEXIST (ADD of an id present with other addresses, or
    a tombstone; CREATE with another Q or R than the table's),
    TITAN_ENOTFOUND (unknown id), -EINVAL (a transition the life cycle
    forbids, or a malformed command), -ENOSPC (RING_MAX_MEMBERS
    reached), -ENOMEM; with a message naming the node in `err`.
    Allowed transitions: JOINING->ACTIVE, JOINING->LEAVING,
    ACTIVE->LEAVING, LEAVING->ACTIVE (drain cancelled), any->REMOVED.  */
int ring_members_apply_cmd (ring_members_t *self, const ring_cmd_t *cmd,
                            char *err, size_t err_size);

/*  Decodes the command in `size` bytes at `data` and applies it; fails as
    ring_cmd_decode or ring_members_apply_cmd do.  */
int ring_members_apply (ring_members_t *self, const uint8_t *data, size_t size,
                        char *err, size_t err_size);

/*  Encodes the whole table (a snapshot) into a new buffer stored in
    `*data_p` (the caller's, to free()) of `*size_p` bytes.  The same
    contents always give the same bytes.  Returns 0 or -ENOMEM.  */
int ring_members_encode (const ring_members_t *self, uint8_t **data_p, size_t *size_p);

/*  Decodes a snapshot into a new table stored in `*self_p` (the caller's,
    to destroy).  Returns 0, TITAN_ECORRUPT, -ENOTSUP (unknown version) or
    -ENOMEM, with a message in `err`; `*self_p` is NULL on failure.  */
int ring_members_decode (const uint8_t *data, size_t size, ring_members_t **self_p,
                         char *err, size_t err_size);

#ifdef __cplusplus
}
#endif
#endif
