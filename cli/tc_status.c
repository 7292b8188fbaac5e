/*  titanctl status views (see tc_status.h).  */
#include "tc_status.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

void
tc_json_string (FILE *out, const char *text)
{
    fputc ('"', out);
    for (const unsigned char *p = (const unsigned char *) (text ? text : "");
         *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf (out, "\\%c", *p);
        else if (*p < 0x20)
            fprintf (out, "\\u%04x", *p);
        else
            fputc (*p, out);
    }
    fputc ('"', out);
}

/*  How much a view of a shard is worth: its leader's view wins, then a
    hosting node's (the higher term), then the placement alone.  */
static uint64_t
s_rank (const Titan__V1__ShardStatus *s)
{
    if (s->role && strcmp (s->role, "leader") == 0)
        return UINT64_MAX;
    if (s->hosted || s->n_replicas > 0)
        return 1 + (s->term < UINT64_MAX - 2 ? s->term : UINT64_MAX - 2);
    return 0;
}

int
tc_status_merge (Titan__V1__StatusResponse **views, size_t n,
                 tc_status_t *merged)
{
    memset (merged, 0, sizeof *merged);
    /* the header: the newest ring epoch (the first view on a tie) */
    const Titan__V1__StatusResponse *head = views [0];
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (views [i]->ring_epoch > head->ring_epoch)
            head = views [i];
        total += views [i]->n_shards;
    }
    merged->status = *head;
    merged->views = n;
    /* deferred puts: each node holds its own hint log */
    merged->status.hints_pending = 0;
    merged->status.hints_pending_bytes = 0;
    merged->status.hints_oldest_age_ms = 0;
    for (size_t i = 0; i < n; i++) {
        merged->status.hints_pending += views [i]->hints_pending;
        merged->status.hints_pending_bytes += views [i]->hints_pending_bytes;
        if (views [i]->hints_oldest_age_ms > merged->status.hints_oldest_age_ms)
            merged->status.hints_oldest_age_ms = views [i]->hints_oldest_age_ms;
    }
    Titan__V1__ShardStatus **shards = calloc (total + 1, sizeof *shards);
    if (!shards)
        return -1;
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < views [i]->n_shards; j++) {
            Titan__V1__ShardStatus *s = views [i]->shards [j];
            size_t k = 0;
            while (k < count && shards [k]->id != s->id)
                k++;
            if (k == count)
                shards [count++] = s;
            else if (s_rank (s) > s_rank (shards [k])) {
                /* keep the desired replicas of the newest table */
                shards [k] = s;
            }
        }
    /* in shard order */
    for (size_t i = 1; i < count; i++)
        for (size_t k = i; k > 0 && shards [k - 1]->id > shards [k]->id; k--) {
            Titan__V1__ShardStatus *t = shards [k];
            shards [k] = shards [k - 1];
            shards [k - 1] = t;
        }
    merged->status.shards = shards;
    merged->status.n_shards = count;
    return 0;
}

void
tc_status_clear (tc_status_t *merged)
{
    free (merged->status.shards);
    memset (merged, 0, sizeof *merged);
}

static bool
s_names (char **ids, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp (ids [i], id) == 0)
            return true;
    return false;
}

size_t
tc_status_shards_on (const Titan__V1__StatusResponse *status, const char *node_id)
{
    size_t count = 0;
    for (size_t i = 0; i < status->n_shards; i++) {
        const Titan__V1__ShardStatus *s = status->shards [i];
        if (s_names (s->desired, s->n_desired, node_id)
        ||  s_names (s->replicas, s->n_replicas, node_id)
        ||  s_names (s->learners, s->n_learners, node_id))
            count++;
    }
    return count;
}

const Titan__V1__NodeStatus *
tc_status_node (const Titan__V1__StatusResponse *status, const char *node_id)
{
    for (size_t i = 0; i < status->n_nodes; i++)
        if (strcmp (status->nodes [i]->id, node_id) == 0)
            return status->nodes [i];
    return NULL;
}

/*  Whether a shard's actual replicas are its desired ones (as sets);
    true in static mode (no desired list).  */
static bool
s_settled (const Titan__V1__ShardStatus *s)
{
    if (s->n_desired == 0)
        return true;
    if (s->n_replicas != s->n_desired || s->n_learners > 0)
        return false;
    for (size_t i = 0; i < s->n_desired; i++)
        if (!s_names (s->replicas, s->n_replicas, s->desired [i]))
            return false;
    return true;
}

static void
s_json_ids (FILE *out, const char *name, char **ids, size_t n)
{
    fprintf (out, ",\"%s\":[", name);
    for (size_t j = 0; j < n; j++) {
        fprintf (out, "%s", j ? "," : "");
        tc_json_string (out, ids [j]);
    }
    fprintf (out, "]");
}

static void
s_print_json (FILE *out, const tc_status_t *merged)
{
    const Titan__V1__StatusResponse *st = &merged->status;
    fprintf (out, "{\"node_id\":");
    tc_json_string (out, st->node_id);
    fprintf (out, ",\"placement\":");
    tc_json_string (out, *st->placement ? st->placement : "static");
    fprintf (out, ",\"ring_epoch\":%" PRIu64 ",\"shard_count\":%" PRIu32
             ",\"replica_count\":%" PRIu32 ",\"views\":%zu", st->ring_epoch,
             st->shard_count, st->replica_count, merged->views);
    fprintf (out, ",\"nodes\":[");
    for (size_t i = 0; i < st->n_nodes; i++) {
        fprintf (out, "%s{\"id\":", i ? "," : "");
        tc_json_string (out, st->nodes [i]->id);
        fprintf (out, ",\"client_addr\":");
        tc_json_string (out, st->nodes [i]->client_addr);
        fprintf (out, ",\"state\":");
        tc_json_string (out, st->nodes [i]->state);
        fprintf (out, ",\"ring_state\":");
        tc_json_string (out, st->nodes [i]->ring_state);
        fprintf (out, "}");
    }
    fprintf (out, "],\"shards\":[");
    for (size_t i = 0; i < st->n_shards; i++) {
        Titan__V1__ShardStatus *s = st->shards [i];
        fprintf (out, "%s{\"id\":%" PRIu32 ",\"leader\":", i ? "," : "", s->id);
        tc_json_string (out, s->leader);
        s_json_ids (out, "replicas", s->replicas, s->n_replicas);
        s_json_ids (out, "learners", s->learners, s->n_learners);
        s_json_ids (out, "desired", s->desired, s->n_desired);
        fprintf (out, ",\"settled\":%s", s_settled (s) ? "true" : "false");
        fprintf (out, ",\"applied_index\":%" PRIu64 ",\"keys\":%" PRIu64
                 ",\"last_revision\":%" PRIu64 ",\"term\":%" PRIu64
                 ",\"commit_index\":%" PRIu64 ",\"snapshot_index\":%" PRIu64
                 ",\"snapshots_taken\":%" PRIu64
                 ",\"snapshots_installed\":%" PRIu64
                 ",\"read_repairs\":%" PRIu64 ",\"scrub_errors\":%" PRIu64
                 ",\"scrub_passes\":%" PRIu64 ",\"last_scrub_ms\":%" PRIu64
                 ",\"data_errors\":%" PRIu64 ",\"consistency\":",
                 s->applied_index, s->keys, s->last_revision, s->term,
                 s->commit_index, s->snapshot_index, s->snapshots_taken,
                 s->snapshots_installed, s->read_repairs, s->scrub_errors,
                 s->scrub_passes, s->last_scrub_ms, s->data_errors);
        tc_json_string (out, s->consistency);
        fprintf (out, ",\"divergences_detected\":%" PRIu64 ",\"rebuilds\":%"
                 PRIu64 ",\"digest_index\":%" PRIu64 ",\"digest\":\"%016"
                 PRIx64 "\",\"hints_pending\":%" PRIu64
                 ",\"hints_pending_bytes\":%" PRIu64
                 ",\"hints_oldest_age_ms\":%" PRIu64
                 ",\"hints_delivered\":%" PRIu64 ",\"hints_blocked\":",
                 s->divergences_detected, s->rebuilds, s->digest_index,
                 s->digest, s->hints_pending, s->hints_pending_bytes,
                 s->hints_oldest_age_ms, s->hints_delivered);
        tc_json_string (out, s->hints_blocked);
        fprintf (out, "}");
    }
    fprintf (out, "],\"hints_pending\":%" PRIu64 ",\"hints_pending_bytes\":%"
             PRIu64 ",\"hints_oldest_age_ms\":%" PRIu64 "}\n",
             st->hints_pending, st->hints_pending_bytes,
             st->hints_oldest_age_ms);
}

/*  Writes the ids joined by commas (truncated to fit) into `out`, "-"
    when there are none.  */
static void
s_join_ids (char **ids, size_t n, char *out, size_t size)
{
    size_t used = 0;
    snprintf (out, size, "-");
    for (size_t j = 0; j < n && used + 1 < size; j++) {
        int w = snprintf (out + used, size - used, "%s%s", j ? "," : "", ids [j]);
        if (w < 0)
            break;
        used += (size_t) w;
    }
}

void
tc_status_print (FILE *out, const tc_status_t *merged, bool json)
{
    if (json) {
        s_print_json (out, merged);
        return;
    }
    const Titan__V1__StatusResponse *st = &merged->status;
    bool ring = st->placement && strcmp (st->placement, "ring") == 0;
    if (ring)
        fprintf (out, "ring epoch %" PRIu64 ", Q=%" PRIu32 " shards, R=%"
                 PRIu32 " replicas (views of %zu node(s) merged)\n\n",
                 st->ring_epoch, st->shard_count, st->replica_count,
                 merged->views);
    if (ring)
        fprintf (out, "%-12s %-22s %-8s %s\n", "NODE", "CLIENT_ADDR", "STATE",
                 "RING_STATE");
    else
        fprintf (out, "%-12s %-22s %s\n", "NODE", "CLIENT_ADDR", "STATE");
    for (size_t i = 0; i < st->n_nodes; i++)
        if (ring)
            fprintf (out, "%-12s %-22s %-8s %s\n", st->nodes [i]->id,
                     st->nodes [i]->client_addr, st->nodes [i]->state,
                     st->nodes [i]->ring_state);
        else
            fprintf (out, "%-12s %-22s %s\n", st->nodes [i]->id,
                     st->nodes [i]->client_addr, st->nodes [i]->state);
    if (ring)
        fprintf (out, "\n%-6s %-12s %-24s %-24s %-12s %-10s %s\n", "SHARD",
                 "LEADER", "DESIRED", "REPLICAS", "MOVING_IN", "KEYS",
                 "LAST_REVISION");
    else
        fprintf (out, "\n%-6s %-12s %-24s %-14s %-10s %-14s %s\n", "SHARD",
                 "LEADER", "REPLICAS", "APPLIED_INDEX", "KEYS",
                 "LAST_REVISION", "MOVING_IN");
    size_t moves = 0, leaderless = 0, unsettled = 0;
    for (size_t i = 0; i < st->n_shards; i++) {
        Titan__V1__ShardStatus *s = st->shards [i];
        char replicas [256], learners [256], desired [256];
        s_join_ids (s->replicas, s->n_replicas, replicas, sizeof replicas);
        s_join_ids (s->learners, s->n_learners, learners, sizeof learners);
        s_join_ids (s->desired, s->n_desired, desired, sizeof desired);
        moves += s->n_learners;
        leaderless += !*s->leader;
        unsettled += !s_settled (s);
        if (ring)
            fprintf (out, "%-6" PRIu32 " %-12s %-24s %-24s %-12s %-10" PRIu64
                     " %" PRIu64 "\n", s->id, *s->leader ? s->leader : "-",
                     desired, replicas, learners, s->keys, s->last_revision);
        else
            fprintf (out, "%-6" PRIu32 " %-12s %-24s %-14" PRIu64 " %-10"
                     PRIu64 " %-14" PRIu64 " %s\n", s->id,
                     *s->leader ? s->leader : "-", replicas, s->applied_index,
                     s->keys, s->last_revision, learners);
    }
    /* the Raft side of each shard, as the node whose view won sees it */
    fprintf (out, "\n%-6s %-8s %-14s %-15s %-16s %s\n", "SHARD", "TERM",
             "COMMIT_INDEX", "SNAPSHOT_INDEX", "SNAPSHOTS_TAKEN",
             "SNAPSHOTS_INSTALLED");
    for (size_t i = 0; i < st->n_shards; i++) {
        Titan__V1__ShardStatus *s = st->shards [i];
        fprintf (out, "%-6" PRIu32 " %-8" PRIu64 " %-14" PRIu64 " %-15" PRIu64
                 " %-16" PRIu64 " %" PRIu64 "\n", s->id, s->term,
                 s->commit_index, s->snapshot_index, s->snapshots_taken,
                 s->snapshots_installed);
    }
    /* data errors and repairs of the replicas (docs/repair.md) */
    fprintf (out, "\n%-6s %-12s %-12s %-13s %-14s %s\n", "SHARD", "DATA_ERRORS",
             "READ_REPAIRS", "SCRUB_ERRORS", "SCRUB_PASSES", "LAST_SCRUB_MS");
    for (size_t i = 0; i < st->n_shards; i++) {
        Titan__V1__ShardStatus *s = st->shards [i];
        fprintf (out, "%-6" PRIu32 " %-12" PRIu64 " %-12" PRIu64 " %-13" PRIu64
                 " %-14" PRIu64 " %" PRIu64 "\n", s->id, s->data_errors,
                 s->read_repairs, s->scrub_errors, s->scrub_passes,
                 s->last_scrub_ms);
    }
    /* the consistency check of each shard (docs/consistency.md) */
    fprintf (out, "\n%-6s %-28s %-12s %-9s %-13s %s\n", "SHARD", "CONSISTENCY",
             "DIVERGENCES", "REBUILDS", "DIGEST_INDEX", "DIGEST");
    for (size_t i = 0; i < st->n_shards; i++) {
        Titan__V1__ShardStatus *s = st->shards [i];
        fprintf (out, "%-6" PRIu32 " %-28s %-12" PRIu64 " %-9" PRIu64 " %-13"
                 PRIu64 " %016" PRIx64 "\n", s->id,
                 *s->consistency ? s->consistency : "-",
                 s->divergences_detected, s->rebuilds, s->digest_index,
                 s->digest);
    }
    /* hinted handoff: the deferred puts held (docs/handoff.md) */
    fprintf (out, "\n%-6s %-14s %-14s %-16s %-15s %s\n", "SHARD",
             "HINTS_PENDING", "HINTS_BYTES", "HINTS_OLDEST_MS",
             "HINTS_DELIVERED", "BLOCKED");
    for (size_t i = 0; i < st->n_shards; i++) {
        Titan__V1__ShardStatus *s = st->shards [i];
        fprintf (out, "%-6" PRIu32 " %-14" PRIu64 " %-14" PRIu64 " %-16" PRIu64
                 " %-15" PRIu64 " %s\n", s->id, s->hints_pending,
                 s->hints_pending_bytes, s->hints_oldest_age_ms,
                 s->hints_delivered, *s->hints_blocked ? s->hints_blocked : "-");
    }
    fprintf (out, "\n%zu shard(s), %zu move(s) in progress", st->n_shards, moves);
    if (ring)
        fprintf (out, ", %zu shard(s) without a leader, %zu shard(s) not at "
                 "their desired replicas", leaderless, unsettled);
    fprintf (out, ", %" PRIu64 " deferred put(s) pending (%" PRIu64 " bytes, "
             "oldest %" PRIu64 " ms)\n", st->hints_pending,
             st->hints_pending_bytes, st->hints_oldest_age_ms);
}
