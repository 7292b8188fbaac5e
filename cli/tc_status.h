/*  titanctl status views: merging the Cluster.Status answers of several
    nodes into one picture of the cluster, printing it (plain or JSON),
    and the drain progress of a node that `member remove` waits on.

    In ring mode (docs/sharding.md) each node reports every shard of the
    table with its desired replicas, but only its own view of the shards it
    hosts.  titanctl asks every node and merges: for each shard the view
    of the node that leads it wins, else that of a node hosting it, else
    the placement alone; the header (epoch, Q, R, nodes) comes from the
    view with the newest ring epoch.  Pure functions over decoded
    messages, unit-tested in tests/titanctl_status_test.c.
*/
#ifndef TC_STATUS_H_INCLUDED
#define TC_STATUS_H_INCLUDED

#include "titan.pb-c.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/*  A merged picture.  `status` points into the views it came from (keep
    them alive); only its `shards` array is the merge's own.  */
typedef struct {
    Titan__V1__StatusResponse status;
    size_t views;                /* node views merged */
} tc_status_t;

/*  Merges `n` views (n >= 1) into *merged.  Returns 0, or -1 when out of
    memory.  Free with tc_status_clear.  */
int tc_status_merge (Titan__V1__StatusResponse **views, size_t n,
                     tc_status_t *merged);

/*  Frees what tc_status_merge allocated.  */
void tc_status_clear (tc_status_t *merged);

/*  Counts the shards of a merged picture whose desired or actual
    replicas (replicas, learners) name `node_id`.  */
size_t tc_status_shards_on (const Titan__V1__StatusResponse *status,
                            const char *node_id);

/*  The node `node_id` of a picture, or NULL.  */
const Titan__V1__NodeStatus *tc_status_node (const Titan__V1__StatusResponse *status,
                                             const char *node_id);

/*  Prints a picture: JSON (one object) when `json`, else tables and a
    summary line.  */
void tc_status_print (FILE *out, const tc_status_t *merged, bool json);

/*  Writes `text` to `out` as a JSON string (quoted, escaped).  */
void tc_json_string (FILE *out, const char *text);

#endif
