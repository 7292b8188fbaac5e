/*  Titan-KV ring: the ring module's durable state, <dir>/state.

    The file holds one ring_fsm encoding (ring_fsm.h: membership, applied
    index, rejection count, CRC-32C).  It is replaced atomically on every
    save: the new contents go to <dir>/state.tmp, which is fsynced and
    renamed over <dir>/state, then the directory is fsynced; a crash at any
    point leaves either the old or the new state, never a mix.  The meta
    group changes rarely, so a whole-file rewrite per applied batch costs
    nothing that matters.
*/
#ifndef RING_STATE_FILE_H_INCLUDED
#define RING_STATE_FILE_H_INCLUDED

#include <stddef.h>

#include "ring_fsm.h"

#ifdef __cplusplus
extern "C" {
#endif

/*  Writes `fsm` to <dir>/state atomically, creating `dir` (one level) if
    it is missing.  Returns 0, or a negative errno with a message naming
    the file in `err`.  On failure the previous state file is intact.  */
int ring_state_file_save (const char *dir, const ring_fsm_t *fsm, char *err,
                          size_t err_size);

/*  Reads <dir>/state into a new state stored in `*fsm_p` (the caller's, to
    destroy).  Returns 0; -ENOENT if there is no state file (a fresh node);
    TITAN_ECORRUPT if it fails its checks (size, checksum, structure);
    another negative errno on a read error; with a message naming the file
    in `err`.  `*fsm_p` is NULL on failure.  A stale state.tmp left by a
    crash is ignored (the next save replaces it).  */
int ring_state_file_load (const char *dir, ring_fsm_t **fsm_p, char *err,
                          size_t err_size);

#ifdef __cplusplus
}
#endif
#endif
