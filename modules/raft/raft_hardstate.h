/*  raft_hardstate: the durable term, vote and commit index of one Raft
    group.

    The state lives in one small file, `<dir>/hardstate`, made of two slots
    of 4 KiB each (one disk sector apart, so a torn write of one slot can
    never damage the other).  A save writes the slot not holding the current
    state with a sequence number one higher, then fdatasyncs: one sync per
    save, and the old state stays intact until the new one is durable.
    A save may be split in two (raft_hardstate_write, raft_hardstate_sync)
    so that a caller syncs many files together; a second write before the
    sync goes to the same pending slot, so the durable state is never the
    one overwritten.  A
    load reads both slots, checks magic and CRC-32C, and takes the valid slot
    with the higher sequence.  The file itself is created atomically (temp
    file, fsync, rename, directory fsync) with the initial state in slot 0,
    so a crash during creation leaves either no file or a valid one.

    The vote is a node id number (uint64; 0 means "voted for nobody"),
    matching the numeric node ids of the Raft core.

    Each slot: magic "TKVRHS01" (8), u64 seq, u64 term, u64 vote,
    u64 commit, u32 crc of the preceding 40 bytes; little-endian; the rest
    of the slot is zero.
*/
#ifndef RAFT_HARDSTATE_H_INCLUDED
#define RAFT_HARDSTATE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft_fio.h"

#ifdef __cplusplus
extern "C" {
#endif

/*  The persisted Raft state.  */
typedef struct {
    uint64_t term;
    uint64_t vote;              /* node id voted for in `term`; 0 = none */
    uint64_t commit;
} raft_hardstate_t;

typedef struct _raft_hardstate_file_t raft_hardstate_file_t;

/*  Opens the hard state file in directory `dir` (which must exist),
    creating it holding {0, 0, 0} if absent, and loads it into *state.
    `fio` is the file layer (NULL for plain I/O).  On success *self_p is the
    caller's.  Returns 0, TITAN_ECORRUPT when neither slot is valid, or
    -errno; errbuf (if not NULL) then names the file.  */
int raft_hardstate_open (const char *dir, raft_fio_t *fio,
                         raft_hardstate_file_t **self_p,
                         raft_hardstate_t *state, char *errbuf, size_t errlen);

/*  Closes the file and nulls *self_p.  */
void raft_hardstate_destroy (raft_hardstate_file_t **self_p);

/*  Persists `state` durably (returns after the fdatasync).  On failure the
    object is failed (every later save returns the same status; reopen to
    recover) and on disk is either the previous or the new state.  Returns 0
    or -errno.  */
int raft_hardstate_save (raft_hardstate_file_t *self,
                         const raft_hardstate_t *state);

/*  raft_hardstate_save without the fdatasync: writes `state` into the
    slot not holding the durable state.  Durable (and returned by
    raft_hardstate_get) only after raft_hardstate_sync.  Returns 0 or
    -errno (the object is then failed).  */
int raft_hardstate_write (raft_hardstate_file_t *self,
                          const raft_hardstate_t *state);

/*  Makes the state written by raft_hardstate_write durable (one
    fdatasync; nothing when nothing is pending).  Returns 0 or -errno (the
    object is then failed: never synced again).  */
int raft_hardstate_sync (raft_hardstate_file_t *self);

/*  True when a written state waits for raft_hardstate_sync.  */
bool raft_hardstate_unsynced (raft_hardstate_file_t *self);

/*  Returns the last state loaded or made durable.  */
raft_hardstate_t raft_hardstate_get (raft_hardstate_file_t *self);

/*  Returns the message of the last failure ("" if none).  */
const char *raft_hardstate_errmsg (raft_hardstate_file_t *self);

#ifdef __cplusplus
}
#endif
#endif
