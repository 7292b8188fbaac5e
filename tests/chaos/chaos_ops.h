/*  Titan-KV chaos harness: one client operation on the titan.v1 API,
    turned into a history record.

    Each function sends one request over a tc_client connection (one
    attempt, no retry, bounded by a deadline) and fills a lin_op_t with
    what the client learnt, following the outcome rules of
    docs/chaos.md:

      - OK is ok (a Get that answers NOT_FOUND is ok, found = 0; a Delete
        that deleted nothing is failed/precondition: the key was absent
        when the delete was applied through the Raft log);
      - a CompareAndSwap answered FAILED_PRECONDITION "compare-and-swap
        failed" is failed/precondition;
      - INVALID_ARGUMENT is failed/noeffect (refused before proposing);
      - anything else (DEADLINE_EXCEEDED, UNAVAILABLE, a lost connection,
        ...) is unknown: the request may have been proposed, so the write
        may or may not take effect.  A Get in that state is recorded as an
        unknown get, which the checker ignores.

    The lin_op_t's key and value point at the caller's buffers and its
    out_value (a Get's result) is malloc'd for the caller: release it with
    chaos_op_release.  Times are CLOCK_MONOTONIC nanoseconds.
*/
#ifndef CHAOS_OPS_H_INCLUDED
#define CHAOS_OPS_H_INCLUDED

#include "lin_history.h"
#include "tc_client.h"

#include <stdbool.h>
#include <stdint.h>

/*  Identity of the calling client, carried by writes for de-duplication:
    writes carry (dedup_id, sequence) as set by the caller, so that a retry
    of an unknown write with the same pair is applied at most once (the
    Raft module's client dedup) and learns the original result.  */
typedef struct {
    uint32_t client;            /* history client id                      */
    uint64_t dedup_id;          /* random client_id of titan.v1 writes    */
    uint64_t sequence;          /* sequence of the current write          */
} chaos_who_t;

/*  CLOCK_MONOTONIC now, in nanoseconds.  */
int64_t chaos_now_ns (void);

/*  Put key = value.  Fills *op (see above) and returns the gRPC status.  */
grpc_status_code chaos_op_put (tc_conn_t *conn, chaos_who_t *who,
                               const uint8_t *key, size_t key_len,
                               const uint8_t *value, size_t value_len,
                               int64_t timeout_ms, lin_op_t *op);

/*  Get key, LINEARIZABLE, or LOCAL when `local` is true (the op is still
    recorded as a plain get: that is what --unsafe-local-reads tests).  */
grpc_status_code chaos_op_get (tc_conn_t *conn, chaos_who_t *who,
                               const uint8_t *key, size_t key_len, bool local,
                               int64_t timeout_ms, lin_op_t *op);

/*  CompareAndSwap key from revision `expect` (0: absent) to value.  */
grpc_status_code chaos_op_cas (tc_conn_t *conn, chaos_who_t *who,
                               const uint8_t *key, size_t key_len,
                               uint64_t expect,
                               const uint8_t *value, size_t value_len,
                               int64_t timeout_ms, lin_op_t *op);

/*  Delete key.  */
grpc_status_code chaos_op_delete (tc_conn_t *conn, chaos_who_t *who,
                                  const uint8_t *key, size_t key_len,
                                  int64_t timeout_ms, lin_op_t *op);

/*  Frees what an op function allocated in *op (a get's out_value).  */
void chaos_op_release (lin_op_t *op);

#endif
