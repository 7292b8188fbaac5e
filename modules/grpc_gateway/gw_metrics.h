/*  grpc_gateway call figures: how many calls of each titan.v1 method
    finished with each gRPC status, and how long they took (from the
    moment the server received the call to the moment its reply was
    started), as fixed-bucket histograms (include/titan/histogram.h).

    The server records every call it finishes (gw_server_finish, from the
    actor or the completion-queue thread: recording is atomic), and the
    gateway answers the bus request gw.stats with a snapshot, which the
    metrics module turns into titan_grpc_requests_total and
    titan_grpc_request_duration_seconds.  A call forwarded to the leader
    is counted by both gateways, each for the call it served.  Figures
    start from zero when the gateway starts (as any Prometheus counter of
    a restarted process).  */
#ifndef GW_METRICS_H_INCLUDED
#define GW_METRICS_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

typedef struct gw_metrics gw_metrics_t;

/*  Creates an empty table.  Returns NULL when out of memory.  */
gw_metrics_t *gw_metrics_new (void);

/*  Destroys the table and nulls the pointer.  */
void gw_metrics_destroy (gw_metrics_t **self_p);

/*  Records one finished call of `method_path` (an unknown path is
    recorded as "unknown") with gRPC status `code` (out-of-range codes
    count as UNKNOWN) after `us` microseconds.  Thread-safe.  */
void gw_metrics_observe (gw_metrics_t *self, const char *method_path,
                         int code, uint64_t us);

/*  Packs a GwStatsReply (proto/bus.proto) with every (method, code) pair
    seen so far into a new buffer: *buf_p is the caller's (free).
    Returns 0, or -ENOMEM.  */
int gw_metrics_pack (gw_metrics_t *self, uint8_t **buf_p, size_t *size_p);

#endif
