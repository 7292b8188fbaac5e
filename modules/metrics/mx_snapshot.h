/*  metrics module: the cached snapshot of what the other modules last
    reported, and its rendering.

    The actor (metrics.c) fills a snapshot from bus replies (it owns the
    unpacked protobuf messages) and renders it into the Prometheus text
    exposition format 0.0.4 (mx_render) and into a readiness verdict
    (mx_ready).  Rendering reads only the snapshot, so a source that did
    not answer in time keeps its last figures (its titan_metrics_source_up
    is 0 and titan_scrape_errors_total counts the miss).  */
#ifndef MX_SNAPSHOT_H_INCLUDED
#define MX_SNAPSHOT_H_INCLUDED

#include "bus.pb-c.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*  Where the figures come from.  */
typedef enum {
    MX_SRC_KERNEL = 0,            /* admin.list: modules, restarts, held */
    MX_SRC_RAFT,                  /* raft.status: groups */
    MX_SRC_STORAGE,               /* kv.stats per shard (bitcask) */
    MX_SRC_GATEWAY,               /* gw.stats: calls */
    MX_SOURCES
} mx_source_t;

/*  Leader changes seen for one Raft group.  */
typedef struct {
    uint32_t shard;
    char leader [64];             /* last leader seen ("" = none yet) */
    uint64_t term;                /* its term */
    uint64_t changes;
} mx_leader_t;

typedef struct {
    uint32_t shard;
    Titan__Bus__KvStatsReply *stats;   /* owned */
} mx_kv_t;

typedef struct {
    char node_id [64];
    Titan__Bus__ModuleListReply *modules;   /* owned, or NULL */
    Titan__Bus__RaftStatusReply *raft;      /* owned, or NULL */
    Titan__Bus__GwStatsReply *gw;           /* owned, or NULL */
    mx_kv_t *kv;                            /* owned array */
    size_t nkv;
    mx_leader_t *leaders;                   /* owned array */
    size_t nleaders;
    bool present [MX_SOURCES];    /* the module exists on this node */
    bool fresh [MX_SOURCES];      /* it answered in the last gather */
    uint64_t errors [MX_SOURCES]; /* gathers it missed (timeout, error) */
    char raft_error [160];        /* why the last raft.status failed */
} mx_snapshot_t;

/*  Static name of a source ("kernel", "raft", "storage", "gateway").  */
const char *mx_source_name (mx_source_t source);

/*  Frees what the snapshot owns (not the snapshot itself) and zeroes it.  */
void mx_snapshot_clear (mx_snapshot_t *self);

/*  Replaces the kv.stats reply kept for `shard` (takes ownership of
    *stats_p).  Returns 0 or -ENOMEM (then *stats_p is freed).  */
int mx_snapshot_set_kv (mx_snapshot_t *self, uint32_t shard,
                        Titan__Bus__KvStatsReply **stats_p);

/*  Records the leaders of the groups in the current raft reply: a group
    whose leader (id, term) differs from the last one seen, with a
    non-empty leader, counts one leader change (the first leader seen
    counts too, as etcd's leader_changes_seen).  Returns 0 or -ENOMEM.  */
int mx_snapshot_note_leaders (mx_snapshot_t *self);

/*  Renders the snapshot as Prometheus text into a new NUL-terminated
    string (the caller's; free).  Returns NULL when out of memory.  */
char *mx_render (const mx_snapshot_t *self);

/*  Decides readiness: true when this node is a member of every group
    raft reports, there is at least one, and every one has a leader;
    otherwise false with the reason in `reason`.  Uses only fresh raft
    figures (stale ones make the node not ready).  */
bool mx_ready (const mx_snapshot_t *self, char *reason, size_t reason_size);

#endif
