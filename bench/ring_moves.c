/*  bench/ring_moves: how well the ring places shards and how much a
    membership change moves.  For Q = 16, 64, 256 shards, R = 3 and
    N = 3..50 nodes it builds the routing table, then the table after one
    node joins and after each node in turn leaves, and prints as
    `name: value` lines:
      - replicas moved per join against the ideal Q*R/(N+1) (the newcomer's
        fair share: no placement can balance while moving fewer);
      - replicas moved per leave against the departed node's own replicas
        (the minimum), and the extra replicas moved beyond that;
      - max/min replicas and preferred leaders per node against the ideal
        ceil/floor of Q*R/N and Q/N.
    Options: -v VNODES, -s SLACK|none, -l LEADER_SLACK|none (placement
    options, see ring_place.h), -f (each newcomer's id sorts first rather
    than last), -d (one line per N).
    It asserts nothing: tests/ring_place_test.c holds the bounds.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ring_member.h"
#include "ring_place.h"

static int s_first = 0;
static ring_place_opts_t s_opts = { RING_DEFAULT_VNODES, RING_DEFAULT_SLACK,
                                     RING_DEFAULT_LEADER_SLACK };

static void
s_die (const char *what, int rc)
{
    fprintf (stderr, "ring_moves: %s failed (%d)\n", what, rc);
    exit (1);
}

//  Membership of nodes node-000 .. node-(n-1), all ACTIVE, except `skip`.
static ring_members_t *
s_members (uint32_t q, uint32_t n, int skip)
{
    ring_members_t *members = ring_members_new (q, 3);
    if (!members)
        s_die ("ring_members_new", -1);
    for (uint32_t i = 0; i < n; i++) {
        if ((int) i == skip)
            continue;
        char id [16], client [32], peer [32];
        //  With -f ids count down, so that each newcomer sorts first.
        snprintf (id, sizeof id, "node-%03u", s_first ? 999 - i : i);
        snprintf (client, sizeof client, "10.0.%u.%u:7000", i / 200, i % 200);
        snprintf (peer, sizeof peer, "10.0.%u.%u:7001", i / 200, i % 200);
        ring_cmd_t cmd;
        int rc = ring_cmd_add (&cmd, id, client, peer, NULL, 0);
        if (!rc)
            rc = ring_members_apply_cmd (members, &cmd, NULL, 0);
        if (!rc)
            rc = ring_cmd_set_state (&cmd, id, RING_ACTIVE, NULL, 0);
        if (!rc)
            rc = ring_members_apply_cmd (members, &cmd, NULL, 0);
        if (rc)
            s_die ("apply", rc);
    }
    return members;
}

static ring_table_t *
s_table (uint32_t q, uint32_t n, int skip)
{
    ring_members_t *members = s_members (q, n, skip);
    ring_table_t *table;
    int rc = ring_table_build_opts (members, &s_opts, &table);
    if (rc)
        s_die ("ring_table_build", rc);
    ring_members_destroy (&members);
    return table;
}

//  Replicas and leaders held by node `index`.
static void
s_loads (const ring_table_t *t, uint32_t *load, uint32_t *leaders)
{
    uint32_t n = ring_table_nodes (t);
    memset (load, 0, n * sizeof *load);
    memset (leaders, 0, n * sizeof *leaders);
    for (uint32_t s = 0; s < ring_table_shards (t); s++)
        for (uint32_t r = 0; r < ring_table_shard_size (t, s); r++) {
            int node = ring_table_replica_index (t, s, r);
            load [node]++;
            if (r == 0)
                leaders [node]++;
        }
}

int
main (int argc, char *argv [])
{
    int opt, detail = 0;
    while ((opt = getopt (argc, argv, "v:s:l:fd")) != -1) {
        if (opt == 'v')
            s_opts.vnodes = (uint32_t) atoi (optarg);
        else if (opt == 's')
            s_opts.slack = strcmp (optarg, "none") ? (uint32_t) atoi (optarg)
                                                   : RING_SLACK_NONE;
        else if (opt == 'l')
            s_opts.leader_slack = strcmp (optarg, "none") ? (uint32_t) atoi (optarg)
                                                          : RING_SLACK_NONE;
        else if (opt == 'f')
            s_first = 1;
        else if (opt == 'd')
            detail = 1;
        else {
            fprintf (stderr, "usage: ring_moves [-v vnodes] [-s slack|none] [-l leader-slack|none] [-f] [-d]\n");
            return 2;
        }
    }
    printf ("ring_vnodes: %u\nring_slack: %d\nring_leader_slack: %d\n"
            "ring_replicas: 3\nring_nodes: 3..50\n", s_opts.vnodes,
            s_opts.slack == RING_SLACK_NONE ? -1 : (int) s_opts.slack,
            s_opts.leader_slack == RING_SLACK_NONE ? -1 : (int) s_opts.leader_slack);
    static const uint32_t qs [] = { 16, 64, 256 };
    for (size_t qi = 0; qi < sizeof qs / sizeof qs [0]; qi++) {
        uint32_t q = qs [qi];
        double join_ratio_sum = 0, join_ratio_max = 0;
        double leave_ratio_sum = 0, leave_ratio_max = 0;
        uint32_t leave_extra_max = 0, leave_count = 0, joins = 0;
        uint64_t leave_extra_sum = 0;
        uint32_t worst_over = 0, worst_under = 0, worst_lover = 0, worst_lunder = 0;
        double ratio_max = 0;
        for (uint32_t n = 3; n <= 50; n++) {
            ring_table_t *t = s_table (q, n, -1);
            uint32_t load [64], leaders [64];
            s_loads (t, load, leaders);
            uint32_t lo = UINT32_MAX, hi = 0, llo = UINT32_MAX, lhi = 0;
            for (uint32_t i = 0; i < n; i++) {
                lo = load [i] < lo ? load [i] : lo;
                hi = load [i] > hi ? load [i] : hi;
                llo = leaders [i] < llo ? leaders [i] : llo;
                lhi = leaders [i] > lhi ? leaders [i] : lhi;
            }
            uint32_t total = q * 3;
            uint32_t ceil_load = (total + n - 1) / n, floor_load = total / n;
            uint32_t ceil_lead = (q + n - 1) / n, floor_lead = q / n;
            if (hi - ceil_load > worst_over && hi > ceil_load) worst_over = hi - ceil_load;
            if (lo < floor_load && floor_load - lo > worst_under) worst_under = floor_load - lo;
            if (lhi > ceil_lead && lhi - ceil_lead > worst_lover) worst_lover = lhi - ceil_lead;
            if (llo < floor_lead && floor_lead - llo > worst_lunder) worst_lunder = floor_lead - llo;
            if (lo > 0 && (double) hi / lo > ratio_max)
                ratio_max = (double) hi / lo;

            //  Join of node n.
            ring_table_t *joined = s_table (q, n + 1, -1);
            uint32_t moved = ring_table_moves (t, joined);
            double ideal = (double) total / (n + 1);
            double ratio = moved / ideal;
            join_ratio_sum += ratio;
            join_ratio_max = ratio > join_ratio_max ? ratio : join_ratio_max;
            joins++;
            ring_table_destroy (&joined);

            //  Leave of each node in turn (the table keeps R replicas: n > 3).
            double lratio_n = 0;
            uint32_t lextra_n = 0;
            if (n > 3) {
                for (uint32_t i = 0; i < n; i++) {
                    ring_table_t *left = s_table (q, n, (int) i);
                    uint32_t lmoved = ring_table_moves (t, left);
                    uint32_t extra = lmoved > load [i] ? lmoved - load [i] : 0;
                    double lratio = load [i] ? (double) lmoved / load [i] : 1.0;
                    leave_ratio_sum += lratio;
                    leave_extra_sum += extra;
                    leave_count++;
                    if (lratio > leave_ratio_max) leave_ratio_max = lratio;
                    if (extra > leave_extra_max) leave_extra_max = extra;
                    if (lratio > lratio_n) lratio_n = lratio;
                    if (extra > lextra_n) lextra_n = extra;
                    ring_table_destroy (&left);
                }
            }
            if (detail)
                printf ("q%u_n%u: load %u..%u (ideal %u..%u) leaders %u..%u (ideal %u..%u) "
                        "join_moved %u (ideal %.1f, x%.2f) leave_worst x%.2f extra %u\n",
                        q, n, lo, hi, floor_load, ceil_load, llo, lhi, floor_lead,
                        ceil_lead, moved, ideal, ratio, lratio_n, lextra_n);
            ring_table_destroy (&t);
        }
        printf ("q%u_join_moved_vs_ideal_mean: %.2f\n", q, join_ratio_sum / joins);
        printf ("q%u_join_moved_vs_ideal_max: %.2f\n", q, join_ratio_max);
        printf ("q%u_leave_moved_vs_departed_mean: %.2f\n", q, leave_ratio_sum / leave_count);
        printf ("q%u_leave_moved_vs_departed_max: %.2f\n", q, leave_ratio_max);
        printf ("q%u_leave_extra_moves_mean: %.2f\n", q, (double) leave_extra_sum / leave_count);
        printf ("q%u_leave_extra_moves_max: %u\n", q, leave_extra_max);
        printf ("q%u_load_max_over_ceil: %u\n", q, worst_over);
        printf ("q%u_load_min_under_floor: %u\n", q, worst_under);
        printf ("q%u_leaders_max_over_ceil: %u\n", q, worst_lover);
        printf ("q%u_leaders_min_under_floor: %u\n", q, worst_lunder);
        printf ("q%u_load_max_min_ratio_worst: %.2f\n", q, ratio_max);
    }
    return 0;
}
