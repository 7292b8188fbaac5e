/*  cluster_bench: one load generator for Titan-KV and for etcd, so that
    the two can be compared with the same client code (bench/
    cluster_bench.sh runs it against a 3-node cluster of each).

    C client threads, each with its own gRPC channel (cli/tc_client: the
    gRPC C core, one blocking unary call at a time: a closed loop), are
    spread round-robin over the endpoints given.  Each thread makes calls
    of one workload -- puts, gets (linearizable, or local/serializable),
    or a get/put mix -- on keys drawn uniformly from K fixed-width decimal
    keys, for a warm-up and then a measured period.  Only calls that end
    inside the measured period count; their latencies go into one
    log-linear histogram per thread (cluster_bench_hist.h), merged at the
    end.  A progress line goes to stderr every second; the result is one
    line of name=value fields on stdout (`calls` counts every call made,
    warm-up included, for a caller that divides the servers' CPU time by
    it).  The request encodings of each
    system are in cluster_bench_proto.c: the loop does not know which one
    it drives.

    Two more operations: `preload` puts every key once (keys split among
    the clients), and `failover` measures write unavailability: it sends
    SIGKILL to a given process (a cluster's leader), then puts through the
    surviving endpoints, round-robin, each call with a short deadline,
    until one succeeds, and prints the time from the kill to that success.

    usage: cluster_bench --system=titan|etcd --endpoints=H:P[,H:P...]
             [--op=put|get|mix|preload|failover] [--local] [--clients=C]
             [--seconds=S] [--warmup=S] [--keys=K] [--key-size=B]
             [--value-size=B] [--get-percent=P] [--timeout-ms=T]
             [--kill-pid=PID]
*/
#include "cluster_bench_hist.h"
#include "cluster_bench_proto.h"
#include "tc_client.h"

#include <czmq.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 1024
#define MAX_ENDPOINTS 16
#define CODES 17                       /* gRPC status codes 0..16 */

typedef enum { OP_PUT, OP_GET, OP_MIX, OP_PRELOAD, OP_FAILOVER } s_op_t;

typedef struct {
    cb_system_t system;
    char *endpoints [MAX_ENDPOINTS];   /* owned: split from --endpoints */
    int n_endpoints;
    s_op_t op;
    bool local;
    int clients;
    double seconds;
    double warmup;
    long keys;
    int key_size;
    size_t value_size;
    int get_percent;
    int64_t timeout_ms;
    pid_t kill_pid;
} s_config_t;

typedef struct {
    const s_config_t *config;
    int id;
    double measure_start;              /* monotonic seconds */
    double measure_end;
    cb_hist_t hist;                    /* measured successful calls */
    long errors [CODES];               /* measured failed calls, by code */
    atomic_long done;                  /* every call so far (progress) */
    atomic_long failed;
} s_client_t;

/*  Monotonic seconds (CZMQ's clock).  */
static double
s_now (void)
{
    return (double) zclock_usecs () / 1e6;
}

/*  xorshift64*: a small per-thread generator, seeded per client.  */
static uint64_t
s_random (uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 2685821657736338717ull;
}

/*  Formats key number k as key_size decimal digits (no terminator kept).  */
static void
s_key (const s_config_t *config, long k, char *key)
{
    char text [32];
    snprintf (text, sizeof text, "%0*ld", config->key_size, k);
    memcpy (key, text, (size_t) config->key_size);
}

/*  One call: a put of `key` (is_put) or a get.  Returns its status;
    a response is checked for the expected shape and freed.  */
static grpc_status_code
s_call (const s_config_t *config, tc_conn_t *conn, const char *key,
        bool is_put, const uint8_t *value, uint8_t *buf, int64_t timeout_ms)
{
    const char *method;
    size_t size = is_put
        ? cb_pack_put (config->system, (const uint8_t *) key,
                       (size_t) config->key_size, value, config->value_size,
                       buf, &method)
        : cb_pack_get (config->system, (const uint8_t *) key,
                       (size_t) config->key_size, config->local, buf, &method);
    uint8_t *response;
    size_t response_size;
    grpc_status_code code = tc_call (conn, method, buf, size, timeout_ms,
                                     &response, &response_size, NULL, 0);
    if (code == GRPC_STATUS_OK) {
        code = is_put ? cb_check_put (config->system, response, response_size)
                      : cb_check_get (config->system, response, response_size,
                                      config->value_size);
        free (response);
    }
    return code;
}

static void *
s_client_thread (void *arg)
{
    s_client_t *self = arg;
    const s_config_t *config = self->config;
    tc_conn_t *conn = tc_conn_new (config->endpoints [self->id % config->n_endpoints]);
    uint8_t *value = malloc (config->value_size + 1);
    uint8_t *buf = malloc (cb_request_capacity ((size_t) config->key_size,
                                                config->value_size));
    if (!conn || !value || !buf) {
        fprintf (stderr, "cluster_bench: client %d: out of memory\n", self->id);
        atomic_fetch_add (&self->failed, 1);
        self->errors [GRPC_STATUS_RESOURCE_EXHAUSTED]++;
        goto done;
    }
    memset (value, 'v', config->value_size);
    uint64_t seed = 0x9E3779B97F4A7C15ull * (uint64_t) (self->id + 1);
    char key [32];
    if (config->op == OP_PRELOAD) {
        /* every key once, each retried a few times before it is an error */
        for (long k = self->id; k < config->keys; k += config->clients) {
            s_key (config, k, key);
            grpc_status_code code = GRPC_STATUS_UNKNOWN;
            for (int attempt = 0; attempt < 5 && code != GRPC_STATUS_OK; attempt++) {
                double t0 = s_now ();
                code = s_call (config, conn, key, true, value, buf, config->timeout_ms);
                if (code == GRPC_STATUS_OK)
                    cb_hist_record (&self->hist, (uint64_t) ((s_now () - t0) * 1e6));
            }
            if (code != GRPC_STATUS_OK) {
                self->errors [(unsigned) code < CODES ? code : GRPC_STATUS_UNKNOWN]++;
                atomic_fetch_add (&self->failed, 1);
            }
            atomic_fetch_add (&self->done, 1);
        }
        goto done;
    }
    while (true) {
        double t0 = s_now ();
        if (t0 >= self->measure_end)
            break;
        s_key (config, (long) (s_random (&seed) % (uint64_t) config->keys), key);
        bool is_put = config->op == OP_PUT
            || (config->op == OP_MIX
                && (int) (s_random (&seed) % 100) >= config->get_percent);
        grpc_status_code code = s_call (config, conn, key, is_put, value, buf,
                                        config->timeout_ms);
        double t1 = s_now ();
        atomic_fetch_add (&self->done, 1);
        if (code != GRPC_STATUS_OK)
            atomic_fetch_add (&self->failed, 1);
        if (t1 < self->measure_start || t1 > self->measure_end)
            continue;                  /* warm-up, or past the end */
        if (code == GRPC_STATUS_OK)
            cb_hist_record (&self->hist, (uint64_t) ((t1 - t0) * 1e6));
        else
            self->errors [(unsigned) code < CODES ? code : GRPC_STATUS_UNKNOWN]++;
    }
done:
    free (buf);
    free (value);
    tc_conn_destroy (&conn);
    return NULL;
}

static const char *
s_op_name (const s_config_t *config)
{
    static const char *names [] = { "put", "get", "mix", "preload", "failover" };
    return names [config->op];
}

/*  Prints, once a second until *stop, the calls completed in that second.  */
typedef struct {
    s_client_t *clients;
    int n;
    const s_config_t *config;
    atomic_bool stop;
} s_progress_t;

static void *
s_progress_thread (void *arg)
{
    s_progress_t *self = arg;
    double start = s_now (), last = start;
    long last_done = 0;
    bool tty = isatty (STDERR_FILENO);
    while (!atomic_load (&self->stop)) {
        struct timespec tick = { 0, 50 * 1000 * 1000 };
        nanosleep (&tick, NULL);
        double now = s_now ();
        if (now - last < 1.0)
            continue;
        long done = 0, failed = 0;
        for (int i = 0; i < self->n; i++) {
            done += atomic_load (&self->clients [i].done);
            failed += atomic_load (&self->clients [i].failed);
        }
        fprintf (stderr, "%s  %s %s%s c=%d  %3.0fs  %7.0f ops/s  errors %ld%s",
                 tty ? "\r" : "", cb_system_name (self->config->system),
                 s_op_name (self->config), self->config->local ? " local" : "",
                 self->config->clients, now - start,
                 (double) (done - last_done) / (now - last), failed,
                 tty ? "   " : "\n");
        last = now;
        last_done = done;
    }
    if (tty)
        fputc ('\n', stderr);
    return NULL;
}

/*  The failover measurement (see the file comment).  Returns 0 and prints
    the result line, or 1 with a message.  */
static int
s_failover (const s_config_t *config)
{
    tc_conn_t *conns [MAX_ENDPOINTS] = { NULL };
    uint8_t *value = malloc (config->value_size + 1);
    uint8_t *buf = malloc (cb_request_capacity ((size_t) config->key_size,
                                                config->value_size));
    int rc = 1;
    if (!value || !buf) {
        fprintf (stderr, "cluster_bench: out of memory\n");
        goto done;
    }
    memset (value, 'f', config->value_size);
    char key [32];
    s_key (config, 0, key);
    /* connect every channel first: the kill must not pay for a TCP setup */
    for (int i = 0; i < config->n_endpoints; i++) {
        conns [i] = tc_conn_new (config->endpoints [i]);
        grpc_status_code code = conns [i]
            ? s_call (config, conns [i], key, true, value, buf, 10000)
            : GRPC_STATUS_RESOURCE_EXHAUSTED;
        if (code != GRPC_STATUS_OK) {
            fprintf (stderr, "cluster_bench: failover: the put before the kill "
                     "through %s failed: %s\n", config->endpoints [i],
                     tc_status_name (code));
            goto done;
        }
    }
    double killed = s_now ();
    if (kill (config->kill_pid, SIGKILL) != 0) {
        fprintf (stderr, "cluster_bench: failover: kill -9 %ld: %s\n",
                 (long) config->kill_pid, strerror (errno));
        goto done;
    }
    long attempts = 0;
    long failed [CODES] = { 0 };
    for (int i = 0; s_now () - killed < config->seconds; i = (i + 1) % config->n_endpoints) {
        double t0 = s_now ();
        grpc_status_code code = s_call (config, conns [i], key, true, value, buf,
                                        config->timeout_ms);
        attempts++;
        if (code == GRPC_STATUS_OK) {
            double now = s_now ();
            printf ("system=%s op=failover failover_s=%.3f attempts=%ld "
                    "timeout_ms=%" PRId64 " via=%s\n",
                    cb_system_name (config->system), now - killed, attempts,
                    config->timeout_ms, config->endpoints [i]);
            rc = 0;
            goto done;
        }
        failed [(unsigned) code < CODES ? code : GRPC_STATUS_UNKNOWN]++;
        if (s_now () - t0 < 0.005) {   /* refused at once: do not spin */
            struct timespec pause = { 0, 5 * 1000 * 1000 };
            nanosleep (&pause, NULL);
        }
    }
    fprintf (stderr, "cluster_bench: failover: no put succeeded within %.0f s "
             "of the kill (%ld attempts:", config->seconds, attempts);
    for (int j = 0; j < CODES; j++)
        if (failed [j])
            fprintf (stderr, " %ld %s", failed [j], tc_status_name ((grpc_status_code) j));
    fprintf (stderr, ")\n");
done:
    for (int i = 0; i < config->n_endpoints; i++)
        tc_conn_destroy (&conns [i]);
    free (buf);
    free (value);
    return rc;
}

/*  Runs the clients and prints the result line.  Returns 0, or 1 when no
    call succeeded.  */
static int
s_load (const s_config_t *config)
{
    s_client_t *clients = calloc ((size_t) config->clients, sizeof *clients);
    pthread_t *threads = calloc ((size_t) config->clients, sizeof *threads);
    if (!clients || !threads) {
        fprintf (stderr, "cluster_bench: out of memory\n");
        free (clients);
        free (threads);
        return 1;
    }
    double start = s_now ();
    double measure_start = config->op == OP_PRELOAD ? start : start + config->warmup;
    int started = 0;
    for (int i = 0; i < config->clients; i++) {
        clients [i].config = config;
        clients [i].id = i;
        clients [i].measure_start = measure_start;
        clients [i].measure_end = measure_start + config->seconds;
        cb_hist_reset (&clients [i].hist);
        atomic_init (&clients [i].done, 0);
        atomic_init (&clients [i].failed, 0);
        if (pthread_create (&threads [i], NULL, s_client_thread, &clients [i]) != 0) {
            fprintf (stderr, "cluster_bench: cannot start client thread %d\n", i);
            break;
        }
        started++;
    }
    s_progress_t progress = { clients, started, config, false };
    pthread_t progress_thread;
    bool have_progress = pthread_create (&progress_thread, NULL,
                                         s_progress_thread, &progress) == 0;
    cb_hist_t *all = calloc (1, sizeof *all);
    long errors [CODES] = { 0 }, total_errors = 0, calls = 0;
    for (int i = 0; i < started; i++) {
        pthread_join (threads [i], NULL);
        calls += atomic_load (&clients [i].done);
        if (all)
            cb_hist_add (all, &clients [i].hist);
        for (int j = 0; j < CODES; j++) {
            errors [j] += clients [i].errors [j];
            total_errors += clients [i].errors [j];
        }
    }
    double elapsed = config->op == OP_PRELOAD ? s_now () - start : config->seconds;
    atomic_store (&progress.stop, true);
    if (have_progress)
        pthread_join (progress_thread, NULL);
    int rc = 1;
    if (all) {
        printf ("system=%s op=%s local=%d clients=%d seconds=%.2f ops=%" PRIu64
                " qps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f "
                "errors=%ld calls=%ld\n", cb_system_name (config->system),
                s_op_name (config), config->local, config->clients, elapsed,
                all->count, (double) all->count / elapsed,
                (double) cb_hist_quantile (all, 0.50) / 1000,
                (double) cb_hist_quantile (all, 0.90) / 1000,
                (double) cb_hist_quantile (all, 0.99) / 1000,
                (double) all->max_us / 1000, total_errors, calls);
        for (int j = 0; j < CODES; j++)
            if (errors [j])
                fprintf (stderr, "cluster_bench: %ld x %s\n", errors [j],
                         tc_status_name ((grpc_status_code) j));
        rc = all->count > 0 && started == config->clients ? 0 : 1;
    }
    else
        fprintf (stderr, "cluster_bench: out of memory\n");
    free (all);
    free (clients);
    free (threads);
    return rc;
}

static void
s_usage (void)
{
    fprintf (stderr,
        "usage: cluster_bench --system=titan|etcd --endpoints=H:P[,H:P...]\n"
        "         [--op=put|get|mix|preload|failover] [--local] [--clients=C]\n"
        "         [--seconds=S] [--warmup=S] [--keys=K] [--key-size=B]\n"
        "         [--value-size=B] [--get-percent=P] [--timeout-ms=T]\n"
        "         [--kill-pid=PID]\n");
}

/*  Splits the comma-separated list into config->endpoints.  Returns 0 or
    -EINVAL (empty, too many) or -ENOMEM.  */
static int
s_parse_endpoints (s_config_t *config, const char *list)
{
    char *copy = strdup (list);
    if (!copy)
        return -ENOMEM;
    int rc = 0;
    char *saveptr = NULL;
    for (char *tok = strtok_r (copy, ",", &saveptr); tok;
         tok = strtok_r (NULL, ",", &saveptr)) {
        if (config->n_endpoints == MAX_ENDPOINTS) {
            rc = -EINVAL;
            break;
        }
        config->endpoints [config->n_endpoints] = strdup (tok);
        if (!config->endpoints [config->n_endpoints]) {
            rc = -ENOMEM;
            break;
        }
        config->n_endpoints++;
    }
    free (copy);
    return rc ? rc : config->n_endpoints ? 0 : -EINVAL;
}

int
main (int argc, char **argv)
{
    s_config_t config = {
        .system = CB_TITAN, .op = OP_PUT, .clients = 1, .seconds = 10,
        .warmup = 2, .keys = 100000, .key_size = 8, .value_size = 256,
        .get_percent = 90, .timeout_ms = 5000, .kill_pid = 0
    };
    static const struct option options [] = {
        { "system", required_argument, NULL, 'S' },
        { "endpoints", required_argument, NULL, 'e' },
        { "op", required_argument, NULL, 'o' },
        { "local", no_argument, NULL, 'l' },
        { "clients", required_argument, NULL, 'c' },
        { "seconds", required_argument, NULL, 's' },
        { "warmup", required_argument, NULL, 'w' },
        { "keys", required_argument, NULL, 'k' },
        { "key-size", required_argument, NULL, 'K' },
        { "value-size", required_argument, NULL, 'v' },
        { "get-percent", required_argument, NULL, 'g' },
        { "timeout-ms", required_argument, NULL, 't' },
        { "kill-pid", required_argument, NULL, 'p' },
        { NULL, 0, NULL, 0 }
    };
    static const char *ops [] = { "put", "get", "mix", "preload", "failover" };
    const char *endpoints = NULL, *system = NULL;
    bool bad = false;
    int c;
    while ((c = getopt_long (argc, argv, "", options, NULL)) != -1) {
        switch (c) {
            case 'S': system = optarg; break;
            case 'e': endpoints = optarg; break;
            case 'o':
                bad = true;
                for (int i = 0; i < 5; i++)
                    if (strcmp (optarg, ops [i]) == 0) {
                        config.op = (s_op_t) i;
                        bad = false;
                    }
                break;
            case 'l': config.local = true; break;
            case 'c': config.clients = atoi (optarg); break;
            case 's': config.seconds = atof (optarg); break;
            case 'w': config.warmup = atof (optarg); break;
            case 'k': config.keys = atol (optarg); break;
            case 'K': config.key_size = atoi (optarg); break;
            case 'v': config.value_size = (size_t) atol (optarg); break;
            case 'g': config.get_percent = atoi (optarg); break;
            case 't': config.timeout_ms = atol (optarg); break;
            case 'p': config.kill_pid = (pid_t) atol (optarg); break;
            default: bad = true;
        }
    }
    double key_space = 1;
    for (int i = 0; i < config.key_size && i < 18; i++)
        key_space *= 10;
    if (bad || optind != argc || !system || !endpoints
    ||  cb_system_parse (system, &config.system) != 0) {
        s_usage ();
        return 2;
    }
    if (config.clients < 1 || config.clients > MAX_CLIENTS || config.seconds <= 0
    ||  config.warmup < 0 || config.keys < 1 || config.key_size < 1
    ||  config.key_size > 18 || (double) config.keys > key_space
    ||  config.value_size > 64 * 1024 * 1024 || config.get_percent < 0
    ||  config.get_percent > 100 || config.timeout_ms < 1
    ||  (config.op == OP_FAILOVER && config.kill_pid <= 0)) {
        fprintf (stderr, "cluster_bench: --clients is 1..%d; --seconds, --keys and "
                 "--timeout-ms are positive; --key-size is 1..18 and must hold "
                 "--keys decimal numbers; --value-size is at most 64 MiB; "
                 "--get-percent is 0..100; --op=failover needs --kill-pid\n",
                 MAX_CLIENTS);
        return 2;
    }
    int rc = s_parse_endpoints (&config, endpoints);
    if (rc) {
        fprintf (stderr, "cluster_bench: --endpoints: %s\n", rc == -ENOMEM
                 ? "out of memory" : "give 1 to 16 comma-separated host:port");
        rc = 2;
    }
    else
        rc = config.op == OP_FAILOVER ? s_failover (&config) : s_load (&config);
    for (int i = 0; i < config.n_endpoints; i++)
        free (config.endpoints [i]);
    return rc;
}
