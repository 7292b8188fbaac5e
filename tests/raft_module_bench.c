/*  Benchmark of the raft module's write and read paths, in one process:
    N nodes (1 or 3; bitcask + raft modules on real files) and a client
    on the leader's bus that keeps `inflight` raft.propose (then
    raft.read LINEARIZABLE) requests outstanding and reports throughput
    and latency percentiles.  Not a test: `make bench-raftmod` runs it;
    it asserts nothing about speed.

    usage: raft_module_bench [nodes=1] [requests=20000] [inflight=64]
                             [value_bytes=100]
    RAFTMOD_BENCH_APPLY_SYNC=always|interval sets the bitcask's apply_sync
    (default: the module's default).  Besides latency it prints the CPU
    time (user + system) of the whole process (all nodes) per request.
*/
#include <czmq.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "titan/bus.h"
#include "titan/bus_types.h"
#include "titan/node.h"
#include "bus.pb-c.h"

typedef struct {
    char id [16];
    char dir [64];
    char *peer, *client;
    titan_node_t *node;
} bnode_t;

static char *
s_free_addr (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET };
    sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    if (bind (fd, (struct sockaddr *) &sa, sizeof sa))
        return NULL;
    socklen_t len = sizeof sa;
    getsockname (fd, (struct sockaddr *) &sa, &len);
    close (fd);
    return zsys_sprintf ("127.0.0.1:%d", ntohs (sa.sin_port));
}

static int
s_start (bnode_t *n, const char *join)
{
    const char *path = getenv ("TITAN_MODULE_PATH");
    char joinline [128] = "";
    if (join)
        snprintf (joinline, sizeof joinline, "    join = %s\n", join);
    char *text = zsys_sprintf (
        "node\n    id = %s\n    data_dir = \"%s\"\n    client_addr = %s\n"
        "    peer_addr = %s\n    module_path = \"%s\"\n%s"
        "modules\n    bitcask\n        path = titan_bitcask.so\n"
        "        apply_sync = %s\n"
        "    raft\n        path = titan_raft.so\n        join_retry_ms = 50\n"
        "        placement = static\n        shards = 1\n",
        n->id, n->dir, n->client, n->peer,
        path && *path ? path : "modules/bitcask/.libs:modules/raft/.libs",
        joinline, getenv ("RAFTMOD_BENCH_APPLY_SYNC")
                  ? getenv ("RAFTMOD_BENCH_APPLY_SYNC") : "interval");
    zconfig_t *config = zconfig_str_load (text);
    zstr_free (&text);
    char err [512] = "";
    n->node = titan_node_new (&config, err, sizeof err);
    if (!n->node || titan_node_start (n->node, err, sizeof err)) {
        fprintf (stderr, "node %s: %s\n", n->id, err);
        return -1;
    }
    return 0;
}

static int
s_cmp (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

static bool
s_leader (titan_bus_t *bus, char *leader, size_t size)
{
    titan_envelope_t *r = titan_bus_call (bus, "raft", TITAN_T_RAFT_STATUS,
                                          NULL, 0, 2000, NULL, NULL);
    if (!r)
        return false;
    Titan__Bus__RaftStatusReply *st = titan__bus__raft_status_reply__unpack (
        NULL, titan_envelope_size (r), titan_envelope_data (r));
    bool ok = st && st->n_groups == 1 && *st->groups [0]->leader_id;
    bool voters_ok = ok;
    if (ok)
        snprintf (leader, size, "%s", st->groups [0]->leader_id);
    if (st)
        titan__bus__raft_status_reply__free_unpacked (st, NULL);
    titan_envelope_destroy (&r);
    return voters_ok;
}

/*  CPU time (user + system) this process has used, in microseconds.  */
static int64_t
s_cpu_us (void)
{
    struct rusage ru;
    getrusage (RUSAGE_SELF, &ru);
    return (int64_t) (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000
         + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

/*  Runs `total` requests of `type`, `inflight` at a time; prints the
    figures.  */
static void
s_run (titan_bus_t *bus, const char *type, int total, int inflight,
       int value_bytes, int nodes)
{
    int64_t *lat = calloc ((size_t) total, sizeof *lat);
    int64_t *sent_at = calloc ((size_t) total, sizeof *sent_at);
    zhashx_t *corr2i = zhashx_new ();
    char *value = malloc ((size_t) value_bytes + 1);
    memset (value, 'v', (size_t) value_bytes);
    int sent = 0, done = 0, errors = 0;
    int64_t start = zclock_usecs ();
    int64_t cpu_start = s_cpu_us ();
    while (done < total) {
        while (sent < total && sent - done < inflight) {
            char key [32];
            snprintf (key, sizeof key, "key-%06d", sent % 10000);
            uint8_t buf [4096];
            size_t len;
            if (streq (type, TITAN_T_RAFT_PROPOSE)) {
                Titan__Bus__KvOp op = TITAN__BUS__KV_OP__INIT;
                op.key.data = (uint8_t *) key;
                op.key.len = strlen (key);
                op.value.data = (uint8_t *) value;
                op.value.len = (size_t) value_bytes;
                Titan__Bus__KvWrite w = TITAN__BUS__KV_WRITE__INIT;
                w.op = &op;
                len = titan__bus__kv_write__pack (&w, buf);
            }
            else {
                Titan__Bus__KvGet g = TITAN__BUS__KV_GET__INIT;
                g.key.data = (uint8_t *) key;
                g.key.len = strlen (key);
                len = titan__bus__kv_get__pack (&g, buf);
            }
            uint64_t corr = 0;
            if (titan_bus_request (bus, "raft", type, buf, len, &corr))
                break;
            char ck [24];
            snprintf (ck, sizeof ck, "%llu", (unsigned long long) corr);
            zhashx_insert (corr2i, ck, (void *) (intptr_t) (sent + 1));
            sent_at [sent++] = zclock_usecs ();
        }
        titan_envelope_t *r = titan_bus_recv (bus, 5000);
        if (!r) {
            fprintf (stderr, "timeout with %d outstanding\n", sent - done);
            break;
        }
        char ck [24];
        snprintf (ck, sizeof ck, "%llu", (unsigned long long) r->corr);
        intptr_t i = (intptr_t) zhashx_lookup (corr2i, ck);
        if (i > 0) {
            zhashx_delete (corr2i, ck);
            lat [done++] = zclock_usecs () - sent_at [i - 1];
            Titan__Bus__KvReply *kr = titan__bus__kv_reply__unpack (NULL,
                titan_envelope_size (r), titan_envelope_data (r));
            if (!kr || kr->code != TITAN__BUS__CODE__OK)
                errors++;
            if (kr)
                titan__bus__kv_reply__free_unpacked (kr, NULL);
        }
        titan_envelope_destroy (&r);
    }
    double secs = (double) (zclock_usecs () - start) / 1e6;
    qsort (lat, (size_t) done, sizeof *lat, s_cmp);
    double cpu_per_call = done ? (double) (s_cpu_us () - cpu_start) / done : 0;
    printf ("%-13s nodes=%d requests=%d inflight=%d value=%dB: %.0f ops/s, "
            "p50 %.2f ms, p99 %.2f ms, cpu %.0f us/call, errors %d\n", type,
            nodes, done, inflight, value_bytes, done / secs,
            done ? lat [done / 2] / 1000.0 : 0,
            done ? lat [(size_t) (done * 0.99)] / 1000.0 : 0, cpu_per_call,
            errors);
    free (lat);
    free (sent_at);
    free (value);
    zhashx_destroy (&corr2i);
}

int
main (int argc, char **argv)
{
    int nodes = argc > 1 ? atoi (argv [1]) : 1;
    int total = argc > 2 ? atoi (argv [2]) : 20000;
    int inflight = argc > 3 ? atoi (argv [3]) : 64;
    int value_bytes = argc > 4 ? atoi (argv [4]) : 100;
    if (nodes < 1 || nodes > 5 || total < 1 || inflight < 1
    ||  value_bytes < 0 || value_bytes > 1 << 20) {
        fprintf (stderr, "usage: %s [nodes 1..5] [requests] [inflight] "
                 "[value_bytes]\n", argv [0]);
        return 2;
    }
    zsys_set_logstream (NULL);
    bnode_t n [5];
    memset (n, 0, sizeof n);
    for (int i = 0; i < nodes; i++) {
        snprintf (n [i].id, sizeof n [i].id, "bench%d", i + 1);
        snprintf (n [i].dir, sizeof n [i].dir, "/tmp/titan-raftbench-XXXXXX");
        if (!mkdtemp (n [i].dir))
            return 1;
        n [i].peer = s_free_addr ();
        n [i].client = s_free_addr ();
        if (s_start (&n [i], i ? n [0].peer : NULL))
            return 1;
    }
    titan_bus_t *bus = titan_bus_connect (titan_node_endpoint (n [0].node),
                                          "bench");
    char leader [64] = "";
    int64_t deadline = zclock_mono () + 20000;
    while (zclock_mono () < deadline) {
        if (s_leader (bus, leader, sizeof leader) && streq (leader, "bench1")) {
            /* wait until every member is a voter: a write then needs a
               majority of all of them */
            titan_envelope_t *r = titan_bus_call (bus, "raft",
                TITAN_T_RAFT_STATUS, NULL, 0, 2000, NULL, NULL);
            Titan__Bus__RaftStatusReply *st = r
                ? titan__bus__raft_status_reply__unpack (NULL,
                      titan_envelope_size (r), titan_envelope_data (r)) : NULL;
            size_t voters = 0;
            for (size_t i = 0; st && i < st->groups [0]->n_members; i++)
                voters += st->groups [0]->members [i]->voter;
            if (st)
                titan__bus__raft_status_reply__free_unpacked (st, NULL);
            titan_envelope_destroy (&r);
            if (voters == (size_t) nodes)
                break;
        }
        zclock_sleep (50);
    }
    s_run (bus, TITAN_T_RAFT_PROPOSE, total, inflight, value_bytes, nodes);
    s_run (bus, TITAN_T_RAFT_READ, total, inflight, value_bytes, nodes);
    FILE *status = fopen ("/proc/self/status", "r");
    char line [256];
    while (status && fgets (line, sizeof line, status))
        if (strncmp (line, "VmRSS:", 6) == 0)
            printf ("resident set of the whole process (%d node%s + client): "
                    "%s", nodes, nodes > 1 ? "s" : "", line + 6);
    if (status)
        fclose (status);
    titan_bus_destroy (&bus);
    for (int i = nodes - 1; i >= 0; i--) {
        titan_node_destroy (&n [i].node);
        char *cmd = zsys_sprintf ("rm -rf '%s'", n [i].dir);
        if (system (cmd)) { }
        zstr_free (&cmd);
        zstr_free (&n [i].peer);
        zstr_free (&n [i].client);
    }
    return 0;
}
