/*  kv_load: a small load generator for Titan-KV's client API (titan.v1
    over gRPC), used for the single-node figures in the docs.

    It runs C client threads, each with its own connection, each making
    sequential calls (closed loop) of one kind, put or get, over K keys,
    for N requests per client.  It prints the throughput and the latency
    percentiles of the successful calls, and counts the failures by status.
    Every loop is bounded by the request count and by a wall-clock cap.

    usage: kv_load --endpoint=H:P [--clients=C] [--requests=N] [--op=put|get]
                   [--keys=K] [--value-size=B] [--max-seconds=S]
                   [--sequential] [--pause-ms=M] [--prefix=P]

    --sequential: client c takes keys c, c + C, c + 2C, ... below K, each
    once (a loader: K distinct keys written, then the clients stop), instead
    of random keys.  --pause-ms: each client sleeps M ms between its calls
    (a light, steady writer).  --prefix: keys are P%08ld (default "load-").
    SIGTERM or SIGINT stops the clients after their current call; the
    summary is printed as usual.
*/
#include "tc_client.h"
#include "titan.pb-c.h"

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    const char *endpoint;
    int clients;
    long requests;
    int put;
    long keys;
    size_t value_size;
    double max_seconds;
    int sequential;
    long pause_ms;
    const char *prefix;
} s_config_t;

typedef struct {
    const s_config_t *config;
    int id;
    double *latencies_us;        /* one per successful request */
    long ok;
    long failed [17];
    double started;
} s_client_t;

static volatile sig_atomic_t s_stop;

static void
s_on_signal (int sig)
{
    (void) sig;
    s_stop = 1;
}

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *
s_client (void *arg)
{
    s_client_t *self = arg;
    const s_config_t *config = self->config;
    tc_conn_t *conn = tc_conn_new (config->endpoint);
    if (!conn)
        return NULL;
    uint8_t *value = malloc (config->value_size + 1);
    memset (value, 'v', config->value_size);
    size_t cap = config->value_size + 256;
    uint8_t *buf = malloc (cap);
    unsigned seed = (unsigned) self->id * 2654435761u + 1;
    for (long i = 0; i < config->requests; i++) {
        if (s_stop || s_now () - self->started > config->max_seconds)
            break;
        long k = config->sequential
               ? self->id + i * (long) config->clients
               : (long) (rand_r (&seed) % (unsigned) config->keys);
        if (k >= config->keys)
            break;
        if (i > 0 && config->pause_ms > 0) {
            struct timespec pause = { config->pause_ms / 1000,
                                      (config->pause_ms % 1000) * 1000000L };
            nanosleep (&pause, NULL);
        }
        char key [96];
        snprintf (key, sizeof key, "%s%08ld", config->prefix, k);
        size_t size;
        const char *method;
        if (config->put) {
            Titan__V1__PutRequest req = TITAN__V1__PUT_REQUEST__INIT;
            req.key.data = (uint8_t *) key;
            req.key.len = strlen (key);
            req.value.data = value;
            req.value.len = config->value_size;
            size = titan__v1__put_request__pack (&req, buf);
            method = "/titan.v1.KV/Put";
        }
        else {
            Titan__V1__GetRequest req = TITAN__V1__GET_REQUEST__INIT;
            req.key.data = (uint8_t *) key;
            req.key.len = strlen (key);
            size = titan__v1__get_request__pack (&req, buf);
            method = "/titan.v1.KV/Get";
        }
        uint8_t *data;
        size_t data_size;
        double t0 = s_now ();
        grpc_status_code code = tc_call (conn, method, buf, size, 10000,
                                         &data, &data_size, NULL, 0);
        double t1 = s_now ();
        if (code == GRPC_STATUS_OK) {
            self->latencies_us [self->ok++] = (t1 - t0) * 1e6;
            free (data);
        }
        else
            self->failed [(unsigned) code < 17 ? code : 2]++;
    }
    free (buf);
    free (value);
    tc_conn_destroy (&conn);
    return NULL;
}

static int
s_cmp (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

int
main (int argc, char **argv)
{
    s_config_t config = { NULL, 1, 1000, 1, 1000, 100, 60, 0, 0, "load-" };
    static const struct option options [] = {
        { "endpoint", required_argument, NULL, 'e' },
        { "clients", required_argument, NULL, 'c' },
        { "requests", required_argument, NULL, 'n' },
        { "op", required_argument, NULL, 'o' },
        { "keys", required_argument, NULL, 'k' },
        { "value-size", required_argument, NULL, 'v' },
        { "max-seconds", required_argument, NULL, 's' },
        { "sequential", no_argument, NULL, 'q' },
        { "pause-ms", required_argument, NULL, 'p' },
        { "prefix", required_argument, NULL, 'x' },
        { NULL, 0, NULL, 0 }
    };
    int c;
    while ((c = getopt_long (argc, argv, "", options, NULL)) != -1) {
        switch (c) {
            case 'e': config.endpoint = optarg; break;
            case 'c': config.clients = atoi (optarg); break;
            case 'n': config.requests = atol (optarg); break;
            case 'o': config.put = strcmp (optarg, "put") == 0; break;
            case 'k': config.keys = atol (optarg); break;
            case 'v': config.value_size = (size_t) atol (optarg); break;
            case 's': config.max_seconds = atof (optarg); break;
            case 'q': config.sequential = 1; break;
            case 'p': config.pause_ms = atol (optarg); break;
            case 'x': config.prefix = optarg; break;
            default:
                fprintf (stderr, "usage: kv_load --endpoint=H:P [--clients=C] "
                         "[--requests=N] [--op=put|get] [--keys=K] "
                         "[--value-size=B] [--max-seconds=S] [--sequential] "
                         "[--pause-ms=M] [--prefix=P]\n");
                return 2;
        }
    }
    if (!config.endpoint || config.clients < 1 || config.clients > 1024
    ||  config.requests < 1 || config.keys < 1 || config.max_seconds <= 0
    ||  config.pause_ms < 0 || strlen (config.prefix) > 64) {
        fprintf (stderr, "kv_load: --endpoint is required; --clients 1..1024, "
                 "--requests, --keys and --max-seconds positive, --pause-ms "
                 "not negative, --prefix at most 64 bytes\n");
        return 2;
    }
    struct sigaction sa;
    memset (&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction (SIGTERM, &sa, NULL);
    sigaction (SIGINT, &sa, NULL);
    s_client_t *clients = calloc ((size_t) config.clients, sizeof *clients);
    pthread_t *threads = calloc ((size_t) config.clients, sizeof *threads);
    double start = s_now ();
    for (int i = 0; i < config.clients; i++) {
        clients [i].config = &config;
        clients [i].id = i;
        clients [i].started = start;
        clients [i].latencies_us = malloc ((size_t) config.requests * sizeof (double));
        pthread_create (&threads [i], NULL, s_client, &clients [i]);
    }
    long ok = 0, failed = 0;
    for (int i = 0; i < config.clients; i++) {
        pthread_join (threads [i], NULL);
        ok += clients [i].ok;
        for (int j = 0; j < 17; j++)
            failed += clients [i].failed [j];
    }
    double elapsed = s_now () - start;
    double *all = malloc ((size_t) (ok ? ok : 1) * sizeof *all);
    long n = 0;
    for (int i = 0; i < config.clients; i++) {
        memcpy (all + n, clients [i].latencies_us, (size_t) clients [i].ok * sizeof *all);
        n += clients [i].ok;
    }
    qsort (all, (size_t) n, sizeof *all, s_cmp);
    double p50 = n ? all [n / 2] : 0;
    double p99 = n ? all [(size_t) ((double) n * 0.99) < (size_t) n
                          ? (size_t) ((double) n * 0.99) : (size_t) n - 1] : 0;
    double max = n ? all [n - 1] : 0;
    printf ("%s clients=%d value=%zuB: %ld ok, %ld failed in %.2f s = %.0f ops/s, "
            "p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", config.put ? "put" : "get",
            config.clients, config.value_size, ok, failed, elapsed,
            ok / elapsed, p50 / 1000, p99 / 1000, max / 1000);
    for (int j = 0; j < 17 && failed; j++) {
        long count = 0;
        for (int i = 0; i < config.clients; i++)
            count += clients [i].failed [j];
        if (count)
            printf ("  %ld x %s\n", count, tc_status_name ((grpc_status_code) j));
    }
    for (int i = 0; i < config.clients; i++)
        free (clients [i].latencies_us);
    free (all);
    free (clients);
    free (threads);
    return failed ? 1 : 0;
}
