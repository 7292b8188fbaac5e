/*  Titan-KV ring: the state machine of the meta group, without I/O.

    The replicated state of the meta group is the membership table (absent
    until the CREATE command fixed Q and R), the Raft index of the last
    entry applied to it, and the number of commands it rejected.  Commands
    are applied in index order; one that cannot be decoded or that the
    membership life cycle forbids is rejected: the table is left alone, but
    the applied index still moves past it and the rejection is counted, so
    that every replica, applying the same log, reaches the same state
    (ring_members_apply_cmd fails the same way everywhere).  Only running
    out of memory is not a rejection: it leaves the state untouched and the
    caller retries the command.

    The state has one encoding, used both as the ring module's state file
    (ring_state_file.h) and as the meta group's snapshot stream; like every
    ring encoding it is little-endian and ends in a CRC-32C:
        "TRFS" | u16 version=1 | u16 flags=0 | u64 applied_index
        | u64 rejected | u32 members_size | members_size bytes of
        ring_members_encode (0 bytes: not created yet) | u32 crc32c
*/
#ifndef RING_FSM_H_INCLUDED
#define RING_FSM_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "ring_member.h"

#ifdef __cplusplus
extern "C" {
#endif

/*  Largest encoded state: RING_MAX_MEMBERS members of the longest id and
    addresses fit well below it.  Decoders refuse anything larger.  */
#define RING_FSM_MAX_BYTES  (1u << 20)

typedef struct _ring_fsm_t ring_fsm_t;

/*  Creates an empty state: no membership, applied index 0.  Returns NULL
    if out of memory.  */
ring_fsm_t *ring_fsm_new (void);

/*  Destroys the state and nulls `*self_p`; does nothing if it is NULL.  */
void ring_fsm_destroy (ring_fsm_t **self_p);

/*  Returns a deep copy, or NULL if out of memory.  */
ring_fsm_t *ring_fsm_dup (const ring_fsm_t *self);

/*  Returns the membership table, or NULL before CREATE was applied; owned
    by the state and valid until it next changes.  */
const ring_members_t *ring_fsm_members (const ring_fsm_t *self);

/*  Returns the index of the last entry applied.  */
uint64_t ring_fsm_applied (const ring_fsm_t *self);

/*  Returns how many commands were rejected since the group began.  */
uint64_t ring_fsm_rejected (const ring_fsm_t *self);

/*  Applies the command of `size` bytes at `data` (ring_cmd_encode) that the
    log holds at `index`.  Returns:
      -EALREADY        index <= the applied index: nothing done;
      0                applied (whether or not the table changed);
      TITAN_ECORRUPT   not a valid command;
      -ENOENT          a membership command before CREATE;
      -EEXIST, TITAN_ENOTFOUND, -EINVAL, -ENOSPC: refused by the table
                       (ring_members_apply_cmd);
      -ENOMEM          out of memory: the state is unchanged (applied
                       index included), the caller may retry.
    Every result but -EALREADY and -ENOMEM moves the applied index to
    `index`; the refusals also count one rejection.  A message naming the
    command is put in `err` on failure.  */
int ring_fsm_apply (ring_fsm_t *self, uint64_t index, const uint8_t *data,
                    size_t size, char *err, size_t err_size);

/*  Moves the applied index to `index` (entries without a command, such as
    Raft no-ops, that end a batch).  Does nothing if `index` is not above
    the applied index.  */
void ring_fsm_skip_to (ring_fsm_t *self, uint64_t index);

/*  Encodes the state into a new buffer stored in `*data_p` (the caller's,
    to free()) of `*size_p` bytes; the same state always gives the same
    bytes.  Returns 0 or -ENOMEM.  */
int ring_fsm_encode (const ring_fsm_t *self, uint8_t **data_p, size_t *size_p);

/*  Decodes a state into a new one stored in `*self_p` (the caller's, to
    destroy).  Returns 0, TITAN_ECORRUPT (checksum, length or a field),
    -ENOTSUP (unknown version) or -ENOMEM, with a message in `err` when not
    NULL; `*self_p` is NULL on failure.  */
int ring_fsm_decode (const uint8_t *data, size_t size, ring_fsm_t **self_p,
                     char *err, size_t err_size);

#ifdef __cplusplus
}
#endif
#endif
