/*  chaos_client: the workload of the Titan-KV fault-injection harness.

    C client threads (default 8), each with its own connection to every
    node, issue put / get / compare-and-swap / delete on a small key set
    (default 5 keys, so that operations collide), with unique values
    ("c<client>-<n>"), one attempt per operation, each bounded by a
    deadline.  A thread sends most of its operations to its home node
    (client i -> node i mod N) and the others, and every operation after a
    failure, to a random node, so that the load is spread and a dead or
    partitioned node is not hammered.  A write whose outcome is unknown is
    retried with the same (client id, sequence) on the next nodes for up to
    --retry-ms (the Raft client dedup applies it at most once and returns
    its original result); after a failed call a thread probes with reads,
    with exponential backoff, until a call succeeds.  Every operation is recorded with
    its invoke and completion times (CLOCK_MONOTONIC) into one history in
    the tests/lin format; outcomes follow chaos_ops.h.  Acknowledged writes
    also go to a per-client log (acks-<client>.log: key value revision).

    The workload runs until SIGUSR1, SIGINT or SIGTERM (the orchestrator
    sends SIGUSR1 once every fault has healed), or --max-seconds.  Then:
    final linearizable reads of every key, the durability and convergence
    checks, and the per-key linearizability check (chaos_verify.h).  It
    saves the history and prints one line:

      client: ops N unknown U anomalies A (lin L durability D convergence C undecided X) linearizable: true|false

    Exit status: 0 all checks passed, 1 an anomaly was found, 2 bad usage
    or set-up failure, 3 the checker's budget ran out (no verdict).

    --unsafe-local-reads sends the gets with LOCAL consistency but records
    them as linearizable reads: a deliberately wrong client that the
    checker must catch under a partition (it proves the harness can fail).
*/
#include "chaos_ops.h"
#include "chaos_verify.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_NODES   16
#define MAX_CLIENTS 64
#define MAX_KEYS    64

typedef struct {
    char *endpoints [MAX_NODES];
    size_t nodes;
    int clients;
    int keys;
    int64_t op_timeout_ms;
    uint64_t seed;
    const char *history_path;
    const char *acks_dir;
    bool unsafe_local_reads;
    double max_seconds;
    int64_t final_seconds;
    int64_t check_ms;
    int64_t retry_ms;
} s_config_t;

typedef struct {
    const s_config_t *config;
    pthread_mutex_t *lock;          /* guards history                      */
    lin_history_t *history;
    const chaos_key_t *keys;
    chaos_who_t who;
    uint64_t rng;
    uint64_t last_rev [MAX_KEYS];   /* last revision this client saw      */
    FILE *acks;
    long ops, ok, failed, unknown;
    int error;                      /* set when recording failed          */
} s_client_t;

static volatile sig_atomic_t s_stop = 0;

static void
s_on_signal (int sig)
{
    (void) sig;
    s_stop = 1;
}

/*  xorshift64*: the client's own deterministic choices.  */
static uint64_t
s_rand (uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 2685821657736338717ULL;
}

static void
s_sleep_ms (int ms)
{
    struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000 };
    nanosleep (&ts, NULL);
}

/*  Records `op` in the shared history, and an acknowledged write in the
    client's ack log.  Returns 0 or -ENOMEM/-EINVAL.  */
static int
s_record (s_client_t *self, const lin_op_t *op)
{
    char err [256];
    pthread_mutex_lock (self->lock);
    int rc = lin_history_add (self->history, op, err, sizeof err);
    pthread_mutex_unlock (self->lock);
    if (rc < 0) {
        fprintf (stderr, "chaos_client: cannot record an op: %s\n", err);
        return rc;
    }
    self->ops++;
    if (op->outcome == LIN_OUT_OK)
        self->ok++;
    else
    if (op->outcome == LIN_OUT_FAILED)
        self->failed++;
    else
        self->unknown++;
    if (self->acks && op->outcome == LIN_OUT_OK && op->kind != LIN_OP_GET)
        fprintf (self->acks, "%s %.*s %.*s %" PRIu64 "\n", lin_op_kind_name (op->kind),
                 (int) op->key_len, (const char *) op->key,
                 (int) op->value_len, op->value ? (const char *) op->value : "",
                 op->rev);
    return 0;
}

/*  Issues one operation of kind `dice` on node `node`.  */
static grpc_status_code
s_issue (s_client_t *self, tc_conn_t *conn, unsigned dice, size_t k,
         const uint8_t *value, size_t vlen, lin_op_t *op)
{
    const s_config_t *config = self->config;
    const chaos_key_t *key = &self->keys [k];
    if (dice < 40)
        return chaos_op_get (conn, &self->who, key->data, key->len,
                             config->unsafe_local_reads, config->op_timeout_ms, op);
    if (dice < 65)
        return chaos_op_put (conn, &self->who, key->data, key->len, value, vlen,
                             config->op_timeout_ms, op);
    if (dice < 85)
        return chaos_op_cas (conn, &self->who, key->data, key->len,
                             self->last_rev [k], value, vlen,
                             config->op_timeout_ms, op);
    return chaos_op_delete (conn, &self->who, key->data, key->len,
                            config->op_timeout_ms, op);
}

/*  Backoff after `errors` consecutive failures: 25 ms doubling to 800 ms,
    plus jitter, so that an outage does not turn into a flood of calls.  */
static void
s_backoff (s_client_t *self, int errors)
{
    int ms = 25 << (errors < 6 ? errors - 1 : 5);
    s_sleep_ms (ms + (int) (s_rand (&self->rng) % 25));
}

static void *
s_client_run (void *arg)
{
    s_client_t *self = arg;
    const s_config_t *config = self->config;
    tc_conn_t *conns [MAX_NODES] = { NULL };
    for (size_t i = 0; i < config->nodes; i++) {
        conns [i] = tc_conn_new (config->endpoints [i]);
        if (!conns [i]) {
            self->error = -ENOMEM;
            goto done;
        }
    }
    size_t home = self->who.client % config->nodes;
    int errors = 0;                 /* consecutive failed calls           */
    uint64_t counter = 0;
    int64_t end_ns = chaos_now_ns () + (int64_t) (config->max_seconds * 1e9);
    while (!s_stop && chaos_now_ns () < end_ns) {
        size_t k = (size_t) (s_rand (&self->rng) % (uint64_t) config->keys);
        size_t node = home;
        if (errors || s_rand (&self->rng) % 4 == 0)
            node = (size_t) (s_rand (&self->rng) % config->nodes);
        char value [48];
        int vlen = snprintf (value, sizeof value, "c%u-%" PRIu64,
                             self->who.client, ++counter);
        //  After a failure, probe with a read until a call succeeds: a
        //  read that fails leaves nothing behind, a write would leave an
        //  unknown outcome that the checker must carry to the end.
        unsigned dice = errors ? 0 : (unsigned) (s_rand (&self->rng) % 100);
        if (dice >= 40)
            self->who.sequence++;
        lin_op_t op;
        grpc_status_code code = s_issue (self, conns [node], dice, k,
                                         (uint8_t *) value, (size_t) vlen, &op);
        //  A write with an unknown outcome is retried with the same
        //  (client id, sequence) on other nodes, within retry_ms: the
        //  dedup applies it at most once and answers with the original
        //  result, so the op's outcome becomes known.  The op spans from
        //  the first attempt's invoke to the last attempt's completion.
        int64_t first_invoke = op.invoke;
        while (op.kind != LIN_OP_GET && op.outcome == LIN_OUT_UNKNOWN && !s_stop
           &&  chaos_now_ns () - first_invoke < config->retry_ms * 1000000) {
            s_backoff (self, ++errors);
            node = (node + 1) % config->nodes;
            chaos_op_release (&op);
            code = s_issue (self, conns [node], dice, k, (uint8_t *) value,
                            (size_t) vlen, &op);
        }
        op.invoke = first_invoke;
        if (op.outcome == LIN_OUT_OK) {
            if (op.kind == LIN_OP_DELETE || (op.kind == LIN_OP_GET && !op.found))
                self->last_rev [k] = 0;
            else
                self->last_rev [k] = op.rev;
        }
        else
        if (op.kind == LIN_OP_DELETE && op.outcome == LIN_OUT_FAILED)
            self->last_rev [k] = 0;
        int rc = s_record (self, &op);
        chaos_op_release (&op);
        if (rc) {
            self->error = rc;
            break;
        }
        if (code != GRPC_STATUS_OK && code != GRPC_STATUS_NOT_FOUND
        &&  code != GRPC_STATUS_FAILED_PRECONDITION)
            s_backoff (self, ++errors);
        else
            errors = 0;
    }
done:
    for (size_t i = 0; i < config->nodes; i++)
        tc_conn_destroy (&conns [i]);
    return NULL;
}

static int
s_usage (void)
{
    fprintf (stderr,
        "usage: chaos_client --endpoints=H:P[,H:P...] --history=FILE [--acks-dir=DIR]\n"
        "         [--clients=8] [--keys=5] [--op-timeout-ms=2000] [--seed=1]\n"
        "         [--max-seconds=600] [--final-seconds=60] [--check-ms=120000]\n"
        "         [--retry-ms=5000] [--unsafe-local-reads]\n");
    return 2;
}

static int
s_parse (int argc, char **argv, s_config_t *config)
{
    static const struct option options [] = {
        { "endpoints", required_argument, NULL, 'e' },
        { "history", required_argument, NULL, 'h' },
        { "acks-dir", required_argument, NULL, 'a' },
        { "clients", required_argument, NULL, 'c' },
        { "keys", required_argument, NULL, 'k' },
        { "op-timeout-ms", required_argument, NULL, 't' },
        { "seed", required_argument, NULL, 's' },
        { "max-seconds", required_argument, NULL, 'm' },
        { "final-seconds", required_argument, NULL, 'f' },
        { "check-ms", required_argument, NULL, 'b' },
        { "retry-ms", required_argument, NULL, 'r' },
        { "unsafe-local-reads", no_argument, NULL, 'u' },
        { NULL, 0, NULL, 0 }
    };
    int c;
    char *list = NULL;
    while ((c = getopt_long (argc, argv, "", options, NULL)) != -1) {
        switch (c) {
            case 'e': list = optarg; break;
            case 'h': config->history_path = optarg; break;
            case 'a': config->acks_dir = optarg; break;
            case 'c': config->clients = atoi (optarg); break;
            case 'k': config->keys = atoi (optarg); break;
            case 't': config->op_timeout_ms = atoll (optarg); break;
            case 's': config->seed = strtoull (optarg, NULL, 10); break;
            case 'm': config->max_seconds = atof (optarg); break;
            case 'f': config->final_seconds = atoll (optarg); break;
            case 'b': config->check_ms = atoll (optarg); break;
            case 'r': config->retry_ms = atoll (optarg); break;
            case 'u': config->unsafe_local_reads = true; break;
            default: return s_usage ();
        }
    }
    if (!list || !config->history_path || optind != argc)
        return s_usage ();
    for (char *save = NULL, *tok = strtok_r (list, ",", &save); tok;
         tok = strtok_r (NULL, ",", &save)) {
        if (config->nodes == MAX_NODES) {
            fprintf (stderr, "chaos_client: at most %d endpoints\n", MAX_NODES);
            return 2;
        }
        config->endpoints [config->nodes++] = tok;
    }
    if (config->nodes == 0 || config->clients < 1 || config->clients > MAX_CLIENTS
    ||  config->keys < 1 || config->keys > MAX_KEYS || config->op_timeout_ms < 1
    ||  config->max_seconds <= 0 || config->final_seconds < 1 || config->check_ms < 1
    ||  config->retry_ms < 0) {
        fprintf (stderr, "chaos_client: need 1..%d endpoints, --clients 1..%d, "
                 "--keys 1..%d, positive timeouts\n", MAX_NODES, MAX_CLIENTS, MAX_KEYS);
        return 2;
    }
    return 0;
}

/*  Runs the client threads until told to stop; returns 0 or -1.  */
static int
s_workload (const s_config_t *config, const chaos_key_t *keys,
            lin_history_t *history, s_client_t *clients)
{
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_t threads [MAX_CLIENTS];
    int started = 0, rc = 0;
    for (int i = 0; i < config->clients; i++) {
        s_client_t *cl = &clients [i];
        cl->config = config;
        cl->lock = &lock;
        cl->history = history;
        cl->keys = keys;
        cl->who.client = (uint32_t) i + 1;
        cl->rng = config->seed * 0x9E3779B97F4A7C15ULL + (uint64_t) i * 7919 + 1;
        cl->who.dedup_id = s_rand (&cl->rng) | 1;
        if (config->acks_dir) {
            char path [4096];
            snprintf (path, sizeof path, "%s/acks-%d.log", config->acks_dir, i + 1);
            cl->acks = fopen (path, "w");
            if (!cl->acks) {
                fprintf (stderr, "chaos_client: cannot write %s: %s\n", path, strerror (errno));
                rc = -1;
                break;
            }
        }
        if (pthread_create (&threads [i], NULL, s_client_run, cl)) {
            fprintf (stderr, "chaos_client: cannot start client thread %d\n", i + 1);
            rc = -1;
            break;
        }
        started++;
    }
    if (rc)
        s_stop = 1;
    for (int i = 0; i < started; i++) {
        pthread_join (threads [i], NULL);
        if (clients [i].error)
            rc = -1;
    }
    for (int i = 0; i < config->clients; i++)
        if (clients [i].acks)
            fclose (clients [i].acks);
    return rc;
}

int
main (int argc, char **argv)
{
    s_config_t config = { .clients = 8, .keys = 5, .op_timeout_ms = 2000,
                          .seed = 1, .max_seconds = 600, .final_seconds = 60,
                          .check_ms = 120000, .retry_ms = 5000 };
    int rc = s_parse (argc, argv, &config);
    if (rc)
        return rc;
    struct sigaction sa;
    memset (&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction (SIGUSR1, &sa, NULL);
    sigaction (SIGINT, &sa, NULL);
    sigaction (SIGTERM, &sa, NULL);

    char names [MAX_KEYS][16];
    chaos_key_t keys [MAX_KEYS];
    for (int i = 0; i < config.keys; i++) {
        int len = snprintf (names [i], sizeof names [i], "k%d", i);
        keys [i].data = (const uint8_t *) names [i];
        keys [i].len = (size_t) len;
    }
    lin_history_t *history = lin_history_new ();
    s_client_t *clients = calloc ((size_t) config.clients, sizeof *clients);
    if (!history || !clients) {
        fprintf (stderr, "chaos_client: out of memory\n");
        free (clients);
        lin_history_destroy (&history);
        return 2;
    }
    if (s_workload (&config, keys, history, clients)) {
        free (clients);
        lin_history_destroy (&history);
        return 2;
    }
    long ops = 0, ok = 0, failed = 0;
    for (int i = 0; i < config.clients; i++) {
        ops += clients [i].ops;
        ok += clients [i].ok;
        failed += clients [i].failed;
    }
    free (clients);
    fprintf (stderr, "chaos_client: workload stopped after %ld ops (%ld ok, %ld failed "
             "with a known cause); final reads\n", ops, ok, failed);

    /*  Final phase: one more client with connections to every node.  */
    tc_conn_t *conns [MAX_NODES] = { NULL };
    for (size_t i = 0; i < config.nodes; i++)
        conns [i] = tc_conn_new (config.endpoints [i]);
    chaos_who_t final_who = { (uint32_t) config.clients + 1, 0, 0 };
    chaos_final_t finals [MAX_KEYS];
    size_t nkeys = (size_t) config.keys;
    int64_t deadline = chaos_now_ns () + config.final_seconds * 1000000000LL;
    size_t durability = chaos_final_reads (conns, config.nodes, &final_who, keys,
                                           nkeys, config.op_timeout_ms, deadline,
                                           history, finals, stderr);
    durability += chaos_check_durability (history, keys, nkeys, finals, stderr);
    deadline = chaos_now_ns () + config.final_seconds * 1000000000LL;
    size_t convergence = chaos_check_convergence (conns, (const char **) config.endpoints,
                                                  config.nodes, &final_who, keys, nkeys,
                                                  finals, config.op_timeout_ms,
                                                  deadline, stderr);
    chaos_finals_clear (finals, nkeys);
    for (size_t i = 0; i < config.nodes; i++)
        tc_conn_destroy (&conns [i]);

    char err [512];
    if (lin_history_save (history, config.history_path, err, sizeof err)) {
        fprintf (stderr, "chaos_client: %s\n", err);
        lin_history_destroy (&history);
        return 2;
    }
    lin_budget_t budget = { 0, config.check_ms };
    size_t undecided = 0;
    size_t lin_bad = chaos_check_keys (history, keys, nkeys, &budget, &undecided, stderr);
    if (lin_bad == SIZE_MAX) {
        fprintf (stderr, "chaos_client: out of memory in the checker\n");
        lin_history_destroy (&history);
        return 2;
    }
    size_t unknown = 0;
    for (size_t i = 0; i < lin_history_size (history); i++)
        if (lin_history_get (history, i)->outcome == LIN_OUT_UNKNOWN)
            unknown++;
    size_t anomalies = lin_bad + durability + convergence;
    bool linearizable = lin_bad == 0 && undecided == 0;
    printf ("client: ops %zu unknown %zu anomalies %zu (lin %zu durability %zu "
            "convergence %zu undecided %zu) linearizable: %s\n",
            lin_history_size (history), unknown, anomalies, lin_bad, durability,
            convergence, undecided, linearizable ? "true" : "false");
    lin_history_destroy (&history);
    if (anomalies)
        return 1;
    return undecided ? 3 : 0;
}
