/*  grpc_gateway hint log: the durable store of deferred puts (hinted
    handoff, docs/handoff.md) that this node accepted and has not yet
    delivered to their shard.

    A deferred put is appended to the log of its shard and made durable
    (fdatasync) before it is acknowledged; the gateway's delivery worker
    then takes the oldest pending hint of each shard (gw_hints_head),
    submits it as an ordinary put with this log's dedup pair (the shard's
    client id, the hint's sequence), and records its delivery
    (gw_hints_delivered) once the shard answered.  Delivery is strictly in
    sequence order per shard, one hint at a time, so the Raft dedup table
    (which keeps each client's latest writes) answers every re-sent hint
    from its record instead of applying it again.

    Files: <dir>/id holds the random 64-bit base of the client ids (one
    per shard derived from it); <dir>/s<SHARD>-<N>.log are the shard's
    append-only files, in order of N.  Every record is
    [u32 length][u32 CRC-32C of the payload][payload] (little-endian);
    the payload is a header (first record of a file: shard, first
    sequence, delivered-up-to), a hint (sequence, acceptance time, the
    packed PutRequest to deliver) or a delivery mark (every hint up to a
    sequence is delivered).  At open a torn tail (a last record cut
    short by a crash: it was never acknowledged) is cut off the shard's
    last file; a damaged record (bad CRC, bad length, bad content) stops
    the shard's delivery there, with an error in the log and in the
    status, and the shard refuses new deferred puts until an operator
    moves the file away.  A file is rotated at GW_HINT_FILE_MAX bytes, and
    deleted once every hint in it is delivered; a shard whose hints are
    all delivered keeps one file holding just a header, so that sequences
    keep increasing.

    The pending hints are also held in memory (bounded by the max_bytes
    given to gw_hints_open: the hint_log_max_bytes setting).  Single
    threaded: the gateway actor owns it.
*/
#ifndef GW_HINTS_H_INCLUDED
#define GW_HINTS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*  A file is rotated once it holds this many bytes.  */
#define GW_HINT_FILE_MAX  (4u << 20)

typedef struct gw_hints gw_hints_t;

/*  One pending hint, owned by the log (valid until the next call that
    changes the log).  */
typedef struct {
    uint32_t shard;
    uint64_t sequence;           /* per shard, increasing by one */
    int64_t accepted_ms;         /* wall clock (ms since the epoch) */
    const uint8_t *request;      /* the packed PutRequest to deliver */
    size_t request_size;
} gw_hint_t;

/*  What a shard's log holds (or, for gw_hints_totals, every shard's).  */
typedef struct {
    uint64_t pending;            /* hints accepted, not yet delivered */
    uint64_t pending_bytes;      /* their record bytes */
    int64_t oldest_ms;           /* acceptance time of the oldest, 0: none */
    uint64_t delivered;          /* hints delivered since the log opened */
    const char *blocked;         /* why delivery stopped, or "" */
} gw_hint_stats_t;

/*  Opens the hint log in `dir` for `shards` shards (a missing directory
    is an empty log: the first gw_hints_append creates it), loads every
    pending hint,
    cuts torn tails and notes damaged files.  `max_bytes` bounds the
    pending record bytes; `max_request` the size of one hint's request.
    Returns the log (the caller's: gw_hints_destroy) or NULL with the
    reason in `error` (an I/O error naming the file).  */
gw_hints_t *gw_hints_open (const char *dir, uint32_t shards,
                           uint64_t max_bytes, size_t max_request,
                           char *error, size_t error_size);

/*  Closes the files and frees the log; nulls the pointer.  */
void gw_hints_destroy (gw_hints_t **self_p);

/*  Appends a hint for `shard` (the packed PutRequest `request`, copied)
    and makes it durable.  Returns 0 with its sequence in *sequence_p, or
    -ENOSPC (the log holds max_bytes already), -EPERM (the shard's
    delivery is stopped by a damaged file or an earlier write error),
    -EINVAL (bad shard, request too large) or -EIO (the write or
    fdatasync failed: the shard then refuses appends), with the reason in
    `error`.  */
int gw_hints_append (gw_hints_t *self, uint32_t shard, const uint8_t *request,
                     size_t size, int64_t now_ms, uint64_t *sequence_p,
                     char *error, size_t error_size);

/*  The oldest pending hint of `shard`, or NULL when it has none (or its
    delivery is stopped and what came before the damage is delivered).  */
const gw_hint_t *gw_hints_head (gw_hints_t *self, uint32_t shard);

/*  True when no shard has a pending hint (cheap: for a caller's fast
    path).  */
bool gw_hints_empty (const gw_hints_t *self);

/*  The dedup client id of `shard`'s hints (non-zero, fixed for the log's
    life on disk).  */
uint64_t gw_hints_client_id (gw_hints_t *self, uint32_t shard);

/*  Records that the head hint of `shard`, of sequence `sequence`, is
    delivered (durably: a mark appended and fdatasynced), drops it, and
    deletes the files whose hints are all delivered.  Returns 0, -EINVAL
    when `sequence` is not the head's, or -EIO (the shard then refuses
    appends; the hint may be delivered again after a restart, which the
    dedup table absorbs).  */
int gw_hints_delivered (gw_hints_t *self, uint32_t shard, uint64_t sequence);

/*  Fills *stats with `shard`'s figures (zeros for a bad shard).  */
void gw_hints_stats (gw_hints_t *self, uint32_t shard, gw_hint_stats_t *stats);

/*  Fills *stats with the sum over every shard (blocked: the first reason).  */
void gw_hints_totals (gw_hints_t *self, gw_hint_stats_t *stats);

#endif
