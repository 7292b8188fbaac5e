/*  grpc_gateway call figures (gw_metrics.h): one histogram per (method,
    status code), in a fixed table indexed by gw_method_t (plus one row
    for unknown paths) and code 0..16.  The table is about 40 KiB; a
    snapshot walks it and packs only the cells that counted something.  */
#include "gw_metrics.h"
#include "gw_api.h"
#include "titan/histogram_pb.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define GW_CODES 17               /* gRPC codes OK (0) .. UNAUTHENTICATED (16) */
#define GW_ROWS  (GW_M_COUNT + 1) /* the methods, then "unknown" */

struct gw_metrics {
    titan_hist_t cell [GW_ROWS][GW_CODES];
};

gw_metrics_t *
gw_metrics_new (void)
{
    return calloc (1, sizeof (gw_metrics_t));
}

void
gw_metrics_destroy (gw_metrics_t **self_p)
{
    if (*self_p) {
        free (*self_p);
        *self_p = NULL;
    }
}

void
gw_metrics_observe (gw_metrics_t *self, const char *method_path, int code,
                    uint64_t us)
{
    if (!self)
        return;
    int row = gw_api_method (method_path, strlen (method_path));
    if (row < 0)
        row = GW_M_COUNT;
    if (code < 0 || code >= GW_CODES)
        code = 2;                 /* UNKNOWN */
    titan_hist_observe (&self->cell [row][code], us);
}

int
gw_metrics_pack (gw_metrics_t *self, uint8_t **buf_p, size_t *size_p)
{
    *buf_p = NULL;
    *size_p = 0;
    size_t cells = (size_t) GW_ROWS * GW_CODES;
    titan_hist_t *snap = calloc (cells, sizeof *snap);
    Titan__Bus__GwCallStats *calls = calloc (cells, sizeof *calls);
    Titan__Bus__GwCallStats **ptrs = calloc (cells, sizeof *ptrs);
    Titan__Bus__Histogram *hists = calloc (cells, sizeof *hists);
    int rc = -ENOMEM;
    if (!snap || !calls || !ptrs || !hists)
        goto done;

    size_t n = 0;
    for (int row = 0; row < GW_ROWS; row++)
        for (int code = 0; code < GW_CODES; code++) {
            titan_hist_read (&self->cell [row][code], &snap [n]);
            if (titan_hist_count (&snap [n]) == 0)
                continue;
            titan__bus__gw_call_stats__init (&calls [n]);
            calls [n].method = row < GW_M_COUNT
                             ? (char *) gw_api_method_path ((gw_method_t) row)
                             : "unknown";
            calls [n].code = (Titan__Bus__Code) code;
            titan_hist_to_pb (&snap [n], &hists [n]);
            calls [n].latency = &hists [n];
            ptrs [n] = &calls [n];
            n++;
        }
    Titan__Bus__GwStatsReply reply = TITAN__BUS__GW_STATS_REPLY__INIT;
    reply.message = "";
    reply.n_calls = n;
    reply.calls = ptrs;
    size_t size = titan__bus__gw_stats_reply__get_packed_size (&reply);
    uint8_t *buf = malloc (size ? size : 1);
    if (!buf)
        goto done;
    titan__bus__gw_stats_reply__pack (&reply, buf);
    *buf_p = buf;
    *size_p = size;
    rc = 0;
done:
    free (snap);
    free (calls);
    free (ptrs);
    free (hists);
    return rc;
}
