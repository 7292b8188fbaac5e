/*  Bus benchmark: round trips between two modules through a node's
    ROUTER, the path every message between Titan-KV modules takes.

    A node runs two echo test modules, "a" and "b".  Module a drives
    COUNT "echo" requests to module b (request a -> router -> b, reply
    b -> router -> a: two routed messages, four socket hops per round
    trip), first with one request in flight (latency), then with 64 in
    flight (throughput); a times the run itself, so the benchmark thread
    is not on the path.  Each figure is the median of 5 runs; beside the
    rate, the CPU time the whole process (kernel thread, both modules, the
    ZeroMQ I/O thread) used per round trip, which is less noisy than the
    rate on a loaded machine.  Output is `name: value` lines.  Usage:
    bus_bench [COUNT [PAYLOAD_BYTES]] (defaults 20000 and 1; a put of a
    256-byte value is a KvWrite of about 280 bytes); needs
    TITAN_MODULE_PATH to reach titan_test_echo.so (make bench-bus sets
    it).  */
#include "titan/bus.h"
#include "titan/node.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RUNS 5

static int
s_compare (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

/*  CPU time used so far by the whole process, in microseconds.  */
static double
s_cpu_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/*  One run: microseconds for `count` round trips of `payload_size`-byte
    payloads with `window` in flight, or a negative value on failure; the
    process's CPU microseconds in *cpu_us.  */
static double
s_run (titan_bus_t *bus, long count, long window, long payload_size,
       double *cpu_us)
{
    char request [96];
    snprintf (request, sizeof request, "b %ld %ld %ld", count, window,
              payload_size);
    double cpu0 = s_cpu_us ();
    titan_envelope_t *reply = titan_bus_call (bus, "a", "echo.drive",
        request, strlen (request), 120000, NULL, NULL);
    if (!reply)
        return -1;
    char text [32] = "";
    size_t size = titan_envelope_size (reply);
    if (size < sizeof text)
        memcpy (text, titan_envelope_data (reply), size);
    titan_envelope_destroy (&reply);
    *cpu_us = s_cpu_us () - cpu0;
    double us = atof (text);
    return us > 0 ? us : -1;
}

int
main (int argc, char **argv)
{
    long count = argc > 1 ? atol (argv [1]) : 20000;
    long size = argc > 2 ? atol (argv [2]) : 1;
    if (count <= 0 || size < 1 || size > 65536) {
        fprintf (stderr, "usage: bus_bench [COUNT [PAYLOAD_BYTES (1..65536)]]\n");
        return 2;
    }
    const char *path = getenv ("TITAN_MODULE_PATH");
    char *text = zsys_sprintf (
        "node\n    id = bench\n    data_dir = /tmp/titan-bus-bench\n"
        "    module_path = \"%s\"\n"
        "modules\n"
        "    a\n        path = titan_test_echo.so\n"
        "    b\n        path = titan_test_echo.so\n",
        path ? path : "tests/.libs");
    zconfig_t *config = zconfig_str_load (text);
    zstr_free (&text);
    char err [1024] = "";
    titan_node_t *node = titan_node_new (&config, err, sizeof err);
    if (!node || titan_node_start (node, err, sizeof err) != 0) {
        fprintf (stderr, "bus_bench: %s\n", err);
        titan_node_destroy (&node);
        return 1;
    }
    titan_bus_t *bus = titan_bus_connect (titan_node_endpoint (node), "bench");
    int status = 0;
    const long windows [] = { 1, 64 };
    double cpu_us = 0;
    s_run (bus, count / 10 + 1, 64, size, &cpu_us);     /* warm up */
    for (size_t w = 0; w < 2 && bus; w++) {
        double us [RUNS], cpu [RUNS];
        for (int r = 0; r < RUNS; r++) {
            us [r] = s_run (bus, count, windows [w], size, &cpu [r]);
            if (us [r] < 0) {
                fprintf (stderr, "bus_bench: run timed out\n");
                status = 1;
                goto done;
            }
        }
        qsort (us, RUNS, sizeof us [0], s_compare);
        qsort (cpu, RUNS, sizeof cpu [0], s_compare);
        double median = us [RUNS / 2];
        double per_second = count / (median / 1e6);
        printf ("bus_w%ld_round_trips_per_s: %.0f\n", windows [w], per_second);
        printf ("bus_w%ld_messages_per_s: %.0f\n", windows [w], 2 * per_second);
        printf ("bus_w%ld_round_trip_us: %.1f\n", windows [w],
                median * windows [w] / count);
        printf ("bus_w%ld_cpu_us_per_round_trip: %.1f\n", windows [w],
                cpu [RUNS / 2] / count);
    }
    printf ("bus_round_trips_per_run: %ld\n", count);
    printf ("bus_payload_bytes: %ld\n", size);
    printf ("bus_runs: %d (median reported)\n", RUNS);
done:
    titan_bus_destroy (&bus);
    titan_node_destroy (&node);
    return status;
}
