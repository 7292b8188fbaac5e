/*  e2e_kv_client: the writer and the checker of tests/e2e_crash_all.sh,
    one process instead of a titanctl per call (which costs a process
    start and a gRPC channel each, too slow on a loaded machine).

    put PREFIX CLIENTS STOPFILE ACKFILE ENDPOINT...
        CLIENTS threads put distinct keys PREFIX-T-K = v-PREFIX-T-K
        (thread T, K = 0, 1, ...) until STOPFILE exists; thread T enters
        through endpoint T first and moves to the next endpoint after any
        failed put (whose outcome is unknown: it is not retried).  Every
        acknowledged key is appended to ACKFILE, one per line, flushed at
        once.  Prints the counts.

    verify ACKFILE ENDPOINT...
    verify-local ACKFILE ENDPOINT...
        reads every key of ACKFILE linearizably (verify-local: with LOCAL
        consistency, from the replica of the node asked) (key number i through
        endpoint i first, the next ones after UNAVAILABLE or
        DEADLINE_EXCEEDED, for up to 20 s a key) and checks that it holds
        v-KEY.  Prints the count.

    verify-local ACKFILE ENDPOINT...
        the same with LOCAL reads (each node's own replica).

    Exit status: 0 success, 1 a check failed or a call gave up, 2 usage.
*/
#include "tc_client.h"
#include "titan.pb-c.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PUT_TIMEOUT_MS  5000
#define GET_TIMEOUT_MS  5000
#define KEY_DEADLINE_S  20
#define MAX_KEY         256

typedef struct {
    const char *prefix;
    const char *stop_file;
    FILE *acked;
    pthread_mutex_t *lock;
    char **endpoints;
    int n_endpoints;
    int id;
    long ok;
    long failed;
} s_writer_t;

/*  One put; returns its status.  */
static grpc_status_code
s_put (tc_conn_t *conn, const char *key, const char *value)
{
    Titan__V1__PutRequest req = TITAN__V1__PUT_REQUEST__INIT;
    req.key.data = (uint8_t *) key;
    req.key.len = strlen (key);
    req.value.data = (uint8_t *) value;
    req.value.len = strlen (value);
    uint8_t buf [2 * MAX_KEY + 32];
    size_t size = titan__v1__put_request__pack (&req, buf);
    uint8_t *data = NULL;
    size_t data_size = 0;
    grpc_status_code code = tc_call (conn, "/titan.v1.KV/Put", buf, size,
                                     PUT_TIMEOUT_MS, &data, &data_size,
                                     NULL, 0);
    free (data);
    return code;
}

static void *
s_writer (void *arg)
{
    s_writer_t *self = arg;
    int at = self->id % self->n_endpoints;
    tc_conn_t *conn = tc_conn_new (self->endpoints [at]);
    char key [MAX_KEY], value [MAX_KEY + 2];
    for (long k = 0; conn && access (self->stop_file, F_OK) != 0; k++) {
        snprintf (key, sizeof key, "%s-%d-%ld", self->prefix, self->id, k);
        snprintf (value, sizeof value, "v-%s", key);
        if (s_put (conn, key, value) == GRPC_STATUS_OK) {
            self->ok++;
            pthread_mutex_lock (self->lock);
            fprintf (self->acked, "%s\n", key);
            fflush (self->acked);
            pthread_mutex_unlock (self->lock);
        }
        else {
            self->failed++;
            tc_conn_destroy (&conn);
            at = (at + 1) % self->n_endpoints;
            conn = tc_conn_new (self->endpoints [at]);
            usleep (20 * 1000);         /* all down: do not spin */
        }
    }
    tc_conn_destroy (&conn);
    return NULL;
}

static int
s_cmd_put (int argc, char **argv)
{
    if (argc < 6)
        return 2;
    int clients = atoi (argv [2]);
    if (clients < 1 || clients > 64 || strlen (argv [1]) > MAX_KEY / 2) {
        fprintf (stderr, "e2e_kv_client: CLIENTS is 1..64, PREFIX at most "
                 "%d bytes\n", MAX_KEY / 2);
        return 2;
    }
    FILE *acked = fopen (argv [4], "a");
    if (!acked) {
        perror (argv [4]);
        return 1;
    }
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    s_writer_t *writers = calloc ((size_t) clients, sizeof *writers);
    pthread_t *threads = calloc ((size_t) clients, sizeof *threads);
    if (!writers || !threads) {
        fprintf (stderr, "e2e_kv_client: out of memory\n");
        return 1;
    }
    int started = 0;
    for (int t = 0; t < clients; t++) {
        writers [t] = (s_writer_t) { argv [1], argv [3], acked, &lock,
                                     argv + 5, argc - 5, t, 0, 0 };
        if (pthread_create (&threads [t], NULL, s_writer, &writers [t]) != 0)
            break;
        started++;
    }
    long ok = 0, failed = 0;
    for (int t = 0; t < started; t++) {
        pthread_join (threads [t], NULL);
        ok += writers [t].ok;
        failed += writers [t].failed;
    }
    fclose (acked);
    free (writers);
    free (threads);
    printf ("%ld puts acknowledged, %ld failed (outcome unknown)\n", ok, failed);
    return started == clients ? 0 : 1;
}

/*  Reads `key` with `consistency` and checks it holds v-KEY; returns 0
    or 1 with a message on stderr.  */
static int
s_verify_key (tc_conn_t **conns, int n, int first, const char *key,
              Titan__V1__Consistency consistency)
{
    Titan__V1__GetRequest req = TITAN__V1__GET_REQUEST__INIT;
    req.key.data = (uint8_t *) key;
    req.key.len = strlen (key);
    req.consistency = consistency;
    uint8_t buf [MAX_KEY + 16];
    size_t size = titan__v1__get_request__pack (&req, buf);
    time_t deadline = time (NULL) + KEY_DEADLINE_S;
    char details [256] = "";
    grpc_status_code code;
    for (int at = first;; at = (at + 1) % n) {
        uint8_t *data = NULL;
        size_t data_size = 0;
        code = tc_call (conns [at], "/titan.v1.KV/Get", buf, size,
                        GET_TIMEOUT_MS, &data, &data_size, details,
                        sizeof details);
        if (code == GRPC_STATUS_OK) {
            Titan__V1__GetResponse *resp =
                titan__v1__get_response__unpack (NULL, data_size, data);
            free (data);
            char want [MAX_KEY + 2];
            snprintf (want, sizeof want, "v-%s", key);
            bool same = resp && resp->value.len == strlen (want)
                     && memcmp (resp->value.data, want, resp->value.len) == 0;
            if (!same)
                fprintf (stderr, "e2e_kv_client: acknowledged %s reads %.*s "
                         "through %s\n", key,
                         resp ? (int) resp->value.len : 0,
                         resp ? (const char *) resp->value.data : "",
                         tc_conn_target (conns [at]));
            if (resp)
                titan__v1__get_response__free_unpacked (resp, NULL);
            return same ? 0 : 1;
        }
        if ((code != GRPC_STATUS_UNAVAILABLE
        &&   code != GRPC_STATUS_DEADLINE_EXCEEDED) || time (NULL) > deadline)
            break;
        usleep (50 * 1000);
    }
    fprintf (stderr, "e2e_kv_client: acknowledged %s: %s %s\n", key,
             tc_status_name (code), details);
    return 1;
}

static int
s_cmd_verify (int argc, char **argv, Titan__V1__Consistency consistency)
{
    if (argc < 3)
        return 2;
    FILE *acked = fopen (argv [1], "r");
    if (!acked) {
        perror (argv [1]);
        return 1;
    }
    int n = argc - 2;
    tc_conn_t **conns = calloc ((size_t) n, sizeof *conns);
    int rc = conns ? 0 : 1;
    for (int i = 0; i < n && rc == 0; i++)
        if (!(conns [i] = tc_conn_new (argv [2 + i])))
            rc = 1;
    char line [MAX_KEY + 2];
    long count = 0;
    while (rc == 0 && fgets (line, sizeof line, acked)) {
        line [strcspn (line, "\n")] = 0;
        if (*line)
            rc = s_verify_key (conns, n, (int) (count++ % n), line,
                               consistency);
    }
    for (int i = 0; conns && i < n; i++)
        tc_conn_destroy (&conns [i]);
    free (conns);
    fclose (acked);
    if (rc == 0)
        printf ("all %ld acknowledged keys read back\n", count);
    return rc;
}

int
main (int argc, char **argv)
{
    int rc = 2;
    if (argc > 1 && strcmp (argv [1], "put") == 0)
        rc = s_cmd_put (argc - 1, argv + 1);
    else
    if (argc > 1 && strcmp (argv [1], "verify") == 0)
        rc = s_cmd_verify (argc - 1, argv + 1,
                           TITAN__V1__CONSISTENCY__LINEARIZABLE);
    else
    if (argc > 1 && strcmp (argv [1], "verify-local") == 0)
        rc = s_cmd_verify (argc - 1, argv + 1, TITAN__V1__CONSISTENCY__LOCAL);
    if (rc == 2)
        fprintf (stderr, "usage: e2e_kv_client put PREFIX CLIENTS STOPFILE "
                 "ACKFILE ENDPOINT...\n"
                 "       e2e_kv_client verify ACKFILE ENDPOINT...\n"
                 "       e2e_kv_client verify-local ACKFILE ENDPOINT...\n");
    return rc;
}
