/*  titanctl: the command-line client of Titan-KV, in the manner of etcdctl
    and redis-cli.

    Every command is one unary gRPC call of titan.v1 (proto/titan.proto) to
    the first endpoint that answers: an endpoint that is down (UNAVAILABLE)
    is skipped for the next one in --endpoints (default $TITAN_ENDPOINTS,
    else 127.0.0.1:7400).  Writes carry a random client id and a sequence
    number so that a write retried on another endpoint is applied once
    (enforced by the raft module).  Values are binary-safe: `put KEY -`
    reads the value from stdin, `get` writes the exact bytes to stdout.
    Errors go to stderr naming the endpoint and the gRPC status; the exit
    code says what kind of failure it was (see s_usage).  --cacert turns
    TLS on (with --cert/--key for servers that require client
    certificates); --token sends a bearer token with each call; each has a
    TITANCTL_* environment variable as default.
*/
#include "tc_client.h"
#include "tc_status.h"
#include "titan.pb-c.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define EXIT_OK          0
#define EXIT_NOT_FOUND   1
#define EXIT_USAGE       2
#define EXIT_MISMATCH    3
#define EXIT_UNAVAILABLE 4
#define EXIT_ERROR       5

#define DEFAULT_ENDPOINT "127.0.0.1:7400"
#define MAX_STDIN_BYTES  (1024u * 1024u * 1024u)

static const char s_usage [] =
"usage: titanctl [OPTIONS] COMMAND [ARGS]\n"
"\n"
"Commands:\n"
"  put KEY VALUE               store VALUE (\"-\": read it from stdin); prints the revision\n"
"  put --deferred KEY VALUE    hand VALUE to the node's hint log, delivered once the\n"
"                              key's shard is reachable (accepted, not yet committed)\n"
"  get KEY [--consistency=C]   print the value bytes exactly (C: linearizable, local)\n"
"  del KEY                     delete KEY; prints how many keys were deleted (0 or 1)\n"
"  cas KEY EXPECTED_REV VALUE  store VALUE only if KEY is at revision EXPECTED_REV\n"
"                              (0: only if KEY does not exist); prints the revision\n"
"  status                      nodes and shards (leader, replicas, applied index);\n"
"                              in ring mode every node's view, merged: ring\n"
"                              epoch, Q, R, desired vs actual replicas, moves\n"
"  member list                 cluster members\n"
"  member add ID CLIENT_ADDR PEER_ADDR\n"
"  member remove ID [--no-wait] [--drain-timeout=D]\n"
"                              in ring mode drains ID first: waits (printing\n"
"                              progress) until no shard lists it and it is\n"
"                              removed (default at most 1h)\n"
"  leader transfer ID          hand shard 0's leadership to member ID (answers at\n"
"                              once; watch status)\n"
"  module list                 modules loaded in the node's kernel\n"
"  module restart NAME         restart a module's actor\n"
"  module reload NAME          reload a module's shared object from disk\n"
"  merge [--shard=N]           compact a shard's storage on the node\n"
"  scrub [status] [--shard=N]  start a scrub pass of a shard's storage on the\n"
"                              node (re-read and verify every record; damaged\n"
"                              ones are repaired), or only report\n"
"  log-level [LEVEL]           set the node's log level (error, warning, info,\n"
"                              debug) at run time; without LEVEL, print it\n"
"\n"
"Options:\n"
"  --endpoints=H:P[,H:P...]    servers to try in order (default $TITAN_ENDPOINTS,\n"
"                              else " DEFAULT_ENDPOINT ")\n"
"  --timeout=D                 per-request timeout: 500ms, 5s, 1m (default 5s)\n"
"  -w, --write-out=FORMAT      simple (default), json or table\n"
"  --cacert=FILE               use TLS, trusting the CA in FILE (PEM)\n"
"                              (default $TITANCTL_CACERT)\n"
"  --cert=FILE --key=FILE      client certificate and key (PEM) for servers\n"
"                              that require one ($TITANCTL_CERT, $TITANCTL_KEY)\n"
"  --token=TOKEN               send 'authorization: Bearer TOKEN' with each\n"
"                              request (default $TITANCTL_TOKEN)\n"
"  --token-file=FILE           the same, read from FILE ($TITANCTL_TOKEN_FILE)\n"
"  -h, --help                  this text\n"
"\n"
"Exit codes:\n"
"  0  success\n"
"  1  key not found (get), or the named module/member does not exist\n"
"  2  usage error (bad command line)\n"
"  3  compare-and-swap mismatch, or an operation the cluster cannot do now\n"
"     (FAILED_PRECONDITION)\n"
"  4  unavailable: no endpoint reachable, no quorum, or timeout (retry)\n"
"  5  any other error (invalid argument, internal error)\n";

typedef enum { FMT_SIMPLE, FMT_JSON, FMT_TABLE } s_format_t;

typedef struct {
    char **endpoints;
    size_t n_endpoints;
    int64_t timeout_ms;
    s_format_t format;
    const char *consistency;
    long shard;
    uint64_t client_id;
    bool deferred;               /* put --deferred */
    const char *cacert;          /* TLS on when set */
    const char *cert;
    const char *key;
    const char *token;
    const char *token_file;
    char *token_read;            /* the token read from token_file */
    tc_tls_t *tls;
    int no_wait;                 /* member remove: do not wait the drain */
    int64_t drain_timeout_ms;    /* member remove: longest wait */
} s_opts_t;

/*  ------------------------------------------------------------ helpers  */

static int
s_usage_error (const char *format, ...)
{
    va_list args;
    va_start (args, format);
    fprintf (stderr, "titanctl: ");
    vfprintf (stderr, format, args);
    fprintf (stderr, "\n(see titanctl --help)\n");
    va_end (args);
    return EXIT_USAGE;
}

/*  Parses "500ms", "5s", "1m", "2" (seconds).  Returns ms, or -1.  */
static int64_t
s_parse_duration (const char *text)
{
    char *end;
    errno = 0;
    double value = strtod (text, &end);
    if (errno || end == text || value <= 0)
        return -1;
    double ms;
    if (*end == 0 || strcmp (end, "s") == 0)
        ms = value * 1000;
    else if (strcmp (end, "ms") == 0)
        ms = value;
    else if (strcmp (end, "m") == 0)
        ms = value * 60000;
    else if (strcmp (end, "h") == 0)
        ms = value * 3600000;
    else
        return -1;
    if (ms < 1 || ms > 86400000.0 * 30)
        return -1;
    return (int64_t) ms;
}

static int
s_parse_u64 (const char *text, uint64_t *value_p)
{
    if (!*text || !isdigit ((unsigned char) *text))
        return -1;
    char *end;
    errno = 0;
    unsigned long long value = strtoull (text, &end, 10);
    if (errno || *end)
        return -1;
    *value_p = value;
    return 0;
}

/*  Splits "a,b,c" into endpoints.  Returns 0, or -1 when one is empty.  */
static int
s_parse_endpoints (const char *text, s_opts_t *opts)
{
    for (size_t i = 0; i < opts->n_endpoints; i++)
        free (opts->endpoints [i]);
    free (opts->endpoints);
    opts->endpoints = NULL;
    opts->n_endpoints = 0;
    char *copy = strdup (text);
    if (!copy)
        return -1;
    char *save = NULL;
    int rc = 0;
    for (char *item = strtok_r (copy, ",", &save); item;
         item = strtok_r (NULL, ",", &save)) {
        while (isspace ((unsigned char) *item))
            item++;
        if (!*item)
            continue;
        char **grown = realloc (opts->endpoints,
                                (opts->n_endpoints + 1) * sizeof *grown);
        if (!grown) {
            rc = -1;
            break;
        }
        opts->endpoints = grown;
        opts->endpoints [opts->n_endpoints++] = strdup (item);
    }
    free (copy);
    return rc || opts->n_endpoints == 0 ? -1 : 0;
}

/*  Reads all of stdin.  Returns 0, or -1 with a message printed.  */
static int
s_read_stdin (uint8_t **data_p, size_t *size_p)
{
    size_t size = 0, cap = 65536;
    uint8_t *data = malloc (cap);
    while (data) {
        if (size == cap) {
            if (cap >= MAX_STDIN_BYTES) {
                fprintf (stderr, "titanctl: stdin holds more than %u bytes\n",
                         MAX_STDIN_BYTES);
                free (data);
                return -1;
            }
            uint8_t *grown = realloc (data, cap * 2);
            if (!grown)
                break;
            data = grown;
            cap *= 2;
        }
        size_t got = fread (data + size, 1, cap - size, stdin);
        size += got;
        if (got == 0) {
            if (ferror (stdin)) {
                fprintf (stderr, "titanctl: cannot read stdin: %s\n",
                         strerror (errno));
                free (data);
                return -1;
            }
            *data_p = data;
            *size_p = size;
            return 0;
        }
    }
    free (data);
    fprintf (stderr, "titanctl: out of memory reading stdin\n");
    return -1;
}

static void
s_base64 (FILE *out, const uint8_t *data, size_t size)
{
    static const char digits [] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    fputc ('"', out);
    for (size_t i = 0; i < size; i += 3) {
        uint32_t v = (uint32_t) data [i] << 16;
        if (i + 1 < size) v |= (uint32_t) data [i + 1] << 8;
        if (i + 2 < size) v |= data [i + 2];
        fputc (digits [(v >> 18) & 63], out);
        fputc (digits [(v >> 12) & 63], out);
        fputc (i + 1 < size ? digits [(v >> 6) & 63] : '=', out);
        fputc (i + 2 < size ? digits [v & 63] : '=', out);
    }
    fputc ('"', out);
}

/*  Prints bytes for a table cell: printable ASCII as is, the rest as \xNN. */
static void
s_escaped (FILE *out, const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < size; i++) {
        if (data [i] >= 0x20 && data [i] < 0x7f && data [i] != '\\')
            fputc (data [i], out);
        else
            fprintf (out, "\\x%02x", data [i]);
    }
}

/*  ------------------------------------------------------------ calling  */

static int
s_exit_code (grpc_status_code code)
{
    switch (code) {
        case GRPC_STATUS_OK:                  return EXIT_OK;
        case GRPC_STATUS_NOT_FOUND:           return EXIT_NOT_FOUND;
        case GRPC_STATUS_FAILED_PRECONDITION: return EXIT_MISMATCH;
        case GRPC_STATUS_UNAVAILABLE:
        case GRPC_STATUS_DEADLINE_EXCEEDED:   return EXIT_UNAVAILABLE;
        default:                              return EXIT_ERROR;
    }
}

/*  A hint for a failure that is most likely a TLS mismatch: the
    connection was made but the TLS handshake (or the plain-text
    exchange with a TLS server) failed.  */
static const char *
s_hint (const s_opts_t *opts, grpc_status_code code, const char *details)
{
    /* only the client's own connection failures, never a server's answer */
    if (code != GRPC_STATUS_UNAVAILABLE || strstr (details, "refused")
    ||  !strstr (details, "failed to connect"))
        return "";
    if (strstr (details, "andshake") || strstr (details, "SSL")
    ||  strstr (details, "ssl") || strstr (details, "certificate"))
        return opts->tls ? " (TLS handshake failed: check --cacert, --cert "
                           "and --key against the server's certificates)"
                         : " (TLS handshake failed)";
    if (!opts->tls)
        return " (the plain-text handshake failed: if the server uses TLS, "
               "pass --cacert, and --cert/--key if it requires client "
               "certificates)";
    if (strstr (details, "closed") || strstr (details, "reset"))
        return " (TLS: the server closed the connection after the handshake; "
               "it may require a client certificate signed by its CA: check "
               "--cert and --key)";
    return "";
}

/*  Calls `method` on the first endpoint that is not down; UNAVAILABLE
    moves to the next endpoint.  On success returns 0 with the response
    unpacked by `desc` in *reply_p; otherwise prints the error(s) and
    returns the exit code.  */
static int
s_call (const s_opts_t *opts, const char *method,
        const ProtobufCMessage *request,
        const ProtobufCMessageDescriptor *desc, ProtobufCMessage **reply_p)
{
    size_t size = protobuf_c_message_get_packed_size (request);
    uint8_t *buf = malloc (size ? size : 1);
    if (!buf) {
        fprintf (stderr, "titanctl: out of memory\n");
        return EXIT_ERROR;
    }
    protobuf_c_message_pack (request, buf);
    grpc_status_code code = GRPC_STATUS_UNAVAILABLE;
    for (size_t i = 0; i < opts->n_endpoints; i++) {
        const char *endpoint = opts->endpoints [i];
        tc_conn_t *conn = tc_conn_new_secure (endpoint, opts->tls);
        if (conn && tc_conn_set_token (conn, opts->token))
            tc_conn_destroy (&conn);
        if (!conn) {
            fprintf (stderr, "titanctl: cannot open a %s channel to %s (out "
                     "of memory, or TLS files gRPC cannot use)\n",
                     opts->tls ? "TLS" : "plain-text", endpoint);
            free (buf);
            return EXIT_ERROR;
        }
        uint8_t *data = NULL;
        size_t data_size = 0;
        char details [1024];
        code = tc_call (conn, method, buf, size, opts->timeout_ms,
                        &data, &data_size, details, sizeof details);
        tc_conn_destroy (&conn);
        if (code == GRPC_STATUS_OK) {
            free (buf);
            *reply_p = protobuf_c_message_unpack (desc, NULL, data_size, data);
            free (data);
            if (!*reply_p) {
                fprintf (stderr, "titanctl: %s: the response to %s does not "
                         "decode as %s\n", endpoint, method, desc->name);
                return EXIT_ERROR;
            }
            return EXIT_OK;
        }
        fprintf (stderr, "titanctl: %s: %s: %s%s\n", endpoint,
                 tc_status_name (code), details, s_hint (opts, code, details));
        if (code != GRPC_STATUS_UNAVAILABLE)
            break;
    }
    free (buf);
    return s_exit_code (code);
}

/*  The next sequence number of this process's client id.  */
static uint64_t
s_sequence (void)
{
    static uint64_t sequence = 0;
    return ++sequence;
}

/*  ------------------------------------------------------------ commands  */

static void
s_print_revision (const s_opts_t *opts, const char *what, uint64_t revision)
{
    if (opts->format == FMT_JSON)
        printf ("{\"%s\":%" PRIu64 "}\n", what, revision);
    else if (opts->format == FMT_TABLE)
        printf ("%-10s\n%-10" PRIu64 "\n", "REVISION", revision);
    else
        printf ("%" PRIu64 "\n", revision);
}

/*  Takes VALUE from argv, or from stdin when it is "-".  */
static int
s_value_arg (const char *arg, ProtobufCBinaryData *value, uint8_t **owned)
{
    *owned = NULL;
    if (strcmp (arg, "-") == 0) {
        size_t size;
        if (s_read_stdin (owned, &size))
            return EXIT_ERROR;
        value->data = *owned;
        value->len = size;
    }
    else {
        value->data = (uint8_t *) arg;
        value->len = strlen (arg);
    }
    return 0;
}

static ProtobufCBinaryData
s_key_arg (const char *arg)
{
    ProtobufCBinaryData key = { strlen (arg), (uint8_t *) arg };
    return key;
}

static int
s_cmd_put (const s_opts_t *opts, int argc, char **argv)
{
    if (argc != 3)
        return s_usage_error ("put takes KEY VALUE");
    Titan__V1__PutRequest req = TITAN__V1__PUT_REQUEST__INIT;
    req.key = s_key_arg (argv [1]);
    uint8_t *owned;
    if (s_value_arg (argv [2], &req.value, &owned))
        return EXIT_ERROR;
    req.client_id = opts->client_id;
    req.sequence = s_sequence ();
    req.deferred = opts->deferred;
    ProtobufCMessage *reply = NULL;
    int rc = s_call (opts, "/titan.v1.KV/Put", &req.base,
                     &titan__v1__put_response__descriptor, &reply);
    free (owned);
    if (rc)
        return rc;
    Titan__V1__PutResponse *put = (Titan__V1__PutResponse *) reply;
    if (!put->deferred)
        s_print_revision (opts, "revision", put->revision);
    else if (opts->format == FMT_JSON)
        printf ("{\"deferred\":true,\"revision\":0}\n");
    else if (opts->format == FMT_TABLE)
        printf ("%-10s %s\n%-10s %s\n", "REVISION", "STATE", "-",
                "deferred (accepted, not yet committed)");
    else
        printf ("accepted (deferred, not yet committed)\n");
    protobuf_c_message_free_unpacked (reply, NULL);
    return EXIT_OK;
}

static int
s_cmd_get (const s_opts_t *opts, int argc, char **argv)
{
    if (argc != 2)
        return s_usage_error ("get takes KEY");
    Titan__V1__GetRequest req = TITAN__V1__GET_REQUEST__INIT;
    req.key = s_key_arg (argv [1]);
    if (!opts->consistency || strcmp (opts->consistency, "linearizable") == 0)
        req.consistency = TITAN__V1__CONSISTENCY__LINEARIZABLE;
    else if (strcmp (opts->consistency, "local") == 0)
        req.consistency = TITAN__V1__CONSISTENCY__LOCAL;
    else
        return s_usage_error ("--consistency is linearizable or local, not '%s'",
                              opts->consistency);
    ProtobufCMessage *reply = NULL;
    int rc = s_call (opts, "/titan.v1.KV/Get", &req.base,
                     &titan__v1__get_response__descriptor, &reply);
    if (rc)
        return rc;
    Titan__V1__GetResponse *got = (Titan__V1__GetResponse *) reply;
    if (opts->format == FMT_JSON) {
        printf ("{\"key\":");
        s_base64 (stdout, req.key.data, req.key.len);
        printf (",\"value\":");
        s_base64 (stdout, got->value.data, got->value.len);
        printf (",\"revision\":%" PRIu64 "}\n", got->revision);
    }
    else if (opts->format == FMT_TABLE) {
        printf ("%-20s %-30s %s\n", "KEY", "VALUE", "REVISION");
        s_escaped (stdout, req.key.data, req.key.len);
        printf ("\t");
        s_escaped (stdout, got->value.data, got->value.len);
        printf ("\t%" PRIu64 "\n", got->revision);
    }
    else if (got->value.len
         &&  fwrite (got->value.data, 1, got->value.len, stdout) != got->value.len) {
        fprintf (stderr, "titanctl: cannot write the value: %s\n", strerror (errno));
        rc = EXIT_ERROR;
    }
    protobuf_c_message_free_unpacked (reply, NULL);
    if (fflush (stdout) != 0) {
        fprintf (stderr, "titanctl: cannot write the value: %s\n", strerror (errno));
        rc = EXIT_ERROR;
    }
    return rc;
}

static int
s_cmd_del (const s_opts_t *opts, int argc, char **argv)
{
    if (argc != 2)
        return s_usage_error ("del takes KEY");
    Titan__V1__DeleteRequest req = TITAN__V1__DELETE_REQUEST__INIT;
    req.key = s_key_arg (argv [1]);
    req.client_id = opts->client_id;
    req.sequence = s_sequence ();
    ProtobufCMessage *reply = NULL;
    int rc = s_call (opts, "/titan.v1.KV/Delete", &req.base,
                     &titan__v1__delete_response__descriptor, &reply);
    if (rc)
        return rc;
    Titan__V1__DeleteResponse *del = (Titan__V1__DeleteResponse *) reply;
    if (opts->format == FMT_JSON)
        printf ("{\"deleted\":%" PRIu64 ",\"revision\":%" PRIu64 "}\n",
                del->deleted, del->revision);
    else if (opts->format == FMT_TABLE)
        printf ("%-8s %s\n%-8" PRIu64 " %" PRIu64 "\n", "DELETED", "REVISION",
                del->deleted, del->revision);
    else
        printf ("%" PRIu64 "\n", del->deleted);
    protobuf_c_message_free_unpacked (reply, NULL);
    return EXIT_OK;
}

static int
s_cmd_cas (const s_opts_t *opts, int argc, char **argv)
{
    if (argc != 4)
        return s_usage_error ("cas takes KEY EXPECTED_REV VALUE");
    Titan__V1__CompareAndSwapRequest req = TITAN__V1__COMPARE_AND_SWAP_REQUEST__INIT;
    req.key = s_key_arg (argv [1]);
    if (s_parse_u64 (argv [2], &req.expected_revision))
        return s_usage_error ("EXPECTED_REV must be a revision number "
                              "(0: the key must not exist), not '%s'", argv [2]);
    uint8_t *owned;
    if (s_value_arg (argv [3], &req.value, &owned))
        return EXIT_ERROR;
    req.client_id = opts->client_id;
    req.sequence = s_sequence ();
    ProtobufCMessage *reply = NULL;
    int rc = s_call (opts, "/titan.v1.KV/CompareAndSwap", &req.base,
                     &titan__v1__compare_and_swap_response__descriptor, &reply);
    free (owned);
    if (rc)
        return rc;
    s_print_revision (opts, "revision",
                      ((Titan__V1__CompareAndSwapResponse *) reply)->revision);
    protobuf_c_message_free_unpacked (reply, NULL);
    return EXIT_OK;
}

/*  The Cluster.Status of one endpoint only (errors printed); returns 0
    with *st_p, or the exit code.  */
static int
s_status_of (const s_opts_t *opts, const char *endpoint,
             Titan__V1__StatusResponse **st_p)
{
    s_opts_t one = *opts;
    char *endpoints [1] = { (char *) endpoint };
    if (endpoint) {
        one.endpoints = endpoints;
        one.n_endpoints = 1;
    }
    Titan__V1__StatusRequest req = TITAN__V1__STATUS_REQUEST__INIT;
    ProtobufCMessage *reply = NULL;
    int rc = s_call (&one, "/titan.v1.Cluster/Status", &req.base,
                     &titan__v1__status_response__descriptor, &reply);
    *st_p = (Titan__V1__StatusResponse *) reply;
    return rc;
}

/*  The status views of a cluster: the first endpoint that answers, then,
    in ring mode, every other node that is not removed (a node that does
    not answer is reported on stderr and left out).  Returns 0 with the
    views in *views_p (n in *n_p; free with s_views_free), or the exit
    code.  */
static int
s_gather (const s_opts_t *opts, Titan__V1__StatusResponse ***views_p,
          size_t *n_p)
{
    Titan__V1__StatusResponse *first;
    int rc = s_status_of (opts, NULL, &first);
    if (rc)
        return rc;
    size_t n = 1;
    Titan__V1__StatusResponse **views = calloc (first->n_nodes + 1, sizeof *views);
    if (!views) {
        titan__v1__status_response__free_unpacked (first, NULL);
        fprintf (stderr, "titanctl: out of memory\n");
        return EXIT_ERROR;
    }
    views [0] = first;
    if (strcmp (first->placement, "ring") == 0)
        for (size_t i = 0; i < first->n_nodes; i++) {
            const Titan__V1__NodeStatus *node = first->nodes [i];
            if (strcmp (node->id, first->node_id) == 0
            ||  strcmp (node->ring_state, "removed") == 0 || !*node->client_addr)
                continue;
            Titan__V1__StatusResponse *view;
            if (s_status_of (opts, node->client_addr, &view) == 0)
                views [n++] = view;
            else
                fprintf (stderr, "titanctl: node %s did not answer: the status "
                         "shows its shards as the other nodes see them\n",
                         node->id);
        }
    *views_p = views;
    *n_p = n;
    return EXIT_OK;
}

static void
s_views_free (Titan__V1__StatusResponse **views, size_t n)
{
    for (size_t i = 0; i < n; i++)
        titan__v1__status_response__free_unpacked (views [i], NULL);
    free (views);
}

static int
s_cmd_status (const s_opts_t *opts, int argc, char **argv)
{
    (void) argv;
    if (argc != 1)
        return s_usage_error ("status takes no arguments");
    Titan__V1__StatusResponse **views;
    size_t n;
    int rc = s_gather (opts, &views, &n);
    if (rc)
        return rc;
    tc_status_t merged;
    if (tc_status_merge (views, n, &merged)) {
        s_views_free (views, n);
        fprintf (stderr, "titanctl: out of memory\n");
        return EXIT_ERROR;
    }
    tc_status_print (stdout, &merged, opts->format == FMT_JSON);
    tc_status_clear (&merged);
    s_views_free (views, n);
    return EXIT_OK;
}

/*  member remove in ring mode: checks the node, asks Leave (the drain),
    then unless --no-wait polls the merged status every second, printing
    progress, until no shard lists the node and then until the node is
    removed, or --drain-timeout passes.  */
static int
s_drain (const s_opts_t *opts, const Titan__V1__StatusResponse *st,
         const char *id)
{
    const Titan__V1__NodeStatus *node = tc_status_node (st, id);
    if (!node) {
        fprintf (stderr, "titanctl: no node %s in the cluster (ring epoch %"
                 PRIu64 "); see titanctl member list\n", id, st->ring_epoch);
        return EXIT_NOT_FOUND;
    }
    if (strcmp (node->ring_state, "removed") == 0) {
        fprintf (stderr, "titanctl: node %s was removed already\n", id);
        return EXIT_NOT_FOUND;
    }
    if (strcmp (node->ring_state, "leaving") == 0) {
        fprintf (stderr, "titanctl: node %s is already leaving (its drain is "
                 "in progress; watch it with titanctl status)\n", id);
        return EXIT_MISMATCH;
    }
    Titan__V1__LeaveRequest req = TITAN__V1__LEAVE_REQUEST__INIT;
    req.node_id = (char *) id;
    ProtobufCMessage *reply = NULL;
    int rc = s_call (opts, "/titan.v1.Cluster/Leave", &req.base,
                     &titan__v1__leave_response__descriptor, &reply);
    if (rc)
        return rc;
    protobuf_c_message_free_unpacked (reply, NULL);
    printf ("node %s is leaving: its shards move to the other nodes\n", id);
    if (opts->no_wait)
        return EXIT_OK;
    fflush (stdout);
    int64_t deadline = (int64_t) time (NULL) * 1000 + opts->drain_timeout_ms;
    long last = -1;
    int drained = 0;
    while ((int64_t) time (NULL) * 1000 < deadline) {
        Titan__V1__StatusResponse **views;
        size_t n;
        tc_status_t merged;
        if (s_gather (opts, &views, &n) == 0) {
            if (tc_status_merge (views, n, &merged) == 0) {
                const Titan__V1__NodeStatus *now = tc_status_node (&merged.status, id);
                size_t left = tc_status_shards_on (&merged.status, id);
                int gone = !now || strcmp (now->ring_state, "removed") == 0;
                if (gone) {
                    printf ("node %s removed (ring epoch %" PRIu64 ")\n", id,
                            merged.status.ring_epoch);
                    tc_status_clear (&merged);
                    s_views_free (views, n);
                    return EXIT_OK;
                }
                if ((long) left != last) {
                    if (left)
                        printf ("draining %s: %zu shard(s) still list it "
                                "(ring epoch %" PRIu64 ")\n", id, left,
                                merged.status.ring_epoch);
                    else if (!drained)
                        printf ("%s holds no replica any more; waiting for its "
                                "removal\n", id);
                    drained = left == 0;
                    last = (long) left;
                    fflush (stdout);
                }
                tc_status_clear (&merged);
            }
            s_views_free (views, n);
        }
        struct timespec second = { 1, 0 };
        nanosleep (&second, NULL);
    }
    fprintf (stderr, "titanctl: node %s still not removed after %" PRId64
             " ms (--drain-timeout); the drain goes on: watch titanctl status\n",
             id, opts->drain_timeout_ms);
    return EXIT_UNAVAILABLE;
}

static void
s_print_members (const s_opts_t *opts, Titan__V1__Member **members, size_t n)
{
    if (opts->format == FMT_JSON) {
        printf ("{\"members\":[");
        for (size_t i = 0; i < n; i++) {
            printf ("%s{\"id\":", i ? "," : "");
            tc_json_string (stdout, members [i]->id);
            printf (",\"client_addr\":");
            tc_json_string (stdout, members [i]->client_addr);
            printf (",\"peer_addr\":");
            tc_json_string (stdout, members [i]->peer_addr);
            printf (",\"state\":");
            tc_json_string (stdout, members [i]->state);
            printf (",\"ring_state\":");
            tc_json_string (stdout, members [i]->ring_state);
            printf ("}");
        }
        printf ("]}\n");
        return;
    }
    if (opts->format == FMT_TABLE)
        printf ("%-12s %-22s %-22s %s\n", "ID", "CLIENT_ADDR", "PEER_ADDR", "STATE");
    for (size_t i = 0; i < n; i++)
        printf (opts->format == FMT_TABLE ? "%-12s %-22s %-22s %s\n"
                                          : "%s, %s, %s, %s\n",
                members [i]->id, members [i]->client_addr,
                members [i]->peer_addr, members [i]->state);
}

static int
s_cmd_member (const s_opts_t *opts, int argc, char **argv)
{
    if (argc < 2)
        return s_usage_error ("member takes list, add or remove");
    ProtobufCMessage *reply = NULL;
    int rc;
    if (strcmp (argv [1], "list") == 0 && argc == 2) {
        Titan__V1__MemberListRequest req = TITAN__V1__MEMBER_LIST_REQUEST__INIT;
        rc = s_call (opts, "/titan.v1.Cluster/MemberList", &req.base,
                     &titan__v1__member_list_response__descriptor, &reply);
        if (rc == EXIT_OK) {
            Titan__V1__MemberListResponse *list = (Titan__V1__MemberListResponse *) reply;
            s_print_members (opts, list->members, list->n_members);
        }
    }
    else if (strcmp (argv [1], "add") == 0 && argc == 5) {
        Titan__V1__JoinRequest req = TITAN__V1__JOIN_REQUEST__INIT;
        req.node_id = argv [2];
        req.client_addr = argv [3];
        req.peer_addr = argv [4];
        rc = s_call (opts, "/titan.v1.Cluster/Join", &req.base,
                     &titan__v1__join_response__descriptor, &reply);
        if (rc == EXIT_OK) {
            Titan__V1__JoinResponse *join = (Titan__V1__JoinResponse *) reply;
            s_print_members (opts, join->members, join->n_members);
        }
    }
    else if (strcmp (argv [1], "remove") == 0 && argc == 3) {
        Titan__V1__StatusResponse *st = NULL;
        rc = s_status_of (opts, NULL, &st);
        if (rc)
            return rc;
        if (strcmp (st->placement, "ring") == 0) {
            rc = s_drain (opts, st, argv [2]);
            titan__v1__status_response__free_unpacked (st, NULL);
            return rc;
        }
        titan__v1__status_response__free_unpacked (st, NULL);
        Titan__V1__LeaveRequest req = TITAN__V1__LEAVE_REQUEST__INIT;
        req.node_id = argv [2];
        rc = s_call (opts, "/titan.v1.Cluster/Leave", &req.base,
                     &titan__v1__leave_response__descriptor, &reply);
        if (rc == EXIT_OK) {
            Titan__V1__LeaveResponse *leave = (Titan__V1__LeaveResponse *) reply;
            s_print_members (opts, leave->members, leave->n_members);
        }
    }
    else
        return s_usage_error ("member takes: list | add ID CLIENT_ADDR PEER_ADDR "
                              "| remove ID");
    if (reply)
        protobuf_c_message_free_unpacked (reply, NULL);
    return rc;
}

static int
s_cmd_leader (const s_opts_t *opts, int argc, char **argv)
{
    if (argc != 3 || strcmp (argv [1], "transfer") != 0)
        return s_usage_error ("leader takes: transfer ID");
    Titan__V1__TransferLeaderRequest req = TITAN__V1__TRANSFER_LEADER_REQUEST__INIT;
    req.shard = 0;
    req.target_node_id = argv [2];
    ProtobufCMessage *reply = NULL;
    int rc = s_call (opts, "/titan.v1.Cluster/TransferLeader", &req.base,
                     &titan__v1__transfer_leader_response__descriptor, &reply);
    if (rc == EXIT_OK)
        printf ("transfer to %s started\n", argv [2]);
    if (reply)
        protobuf_c_message_free_unpacked (reply, NULL);
    return rc;
}

static int
s_cmd_module (const s_opts_t *opts, int argc, char **argv)
{
    ProtobufCMessage *reply = NULL;
    int rc;
    if (argc == 2 && strcmp (argv [1], "list") == 0) {
        Titan__V1__ListModulesRequest req = TITAN__V1__LIST_MODULES_REQUEST__INIT;
        rc = s_call (opts, "/titan.v1.Admin/ListModules", &req.base,
                     &titan__v1__list_modules_response__descriptor, &reply);
        if (rc)
            return rc;
        Titan__V1__ListModulesResponse *list = (Titan__V1__ListModulesResponse *) reply;
        if (opts->format == FMT_JSON) {
            printf ("{\"modules\":[");
            for (size_t i = 0; i < list->n_modules; i++) {
                Titan__V1__ModuleInfo *m = list->modules [i];
                printf ("%s{\"name\":", i ? "," : "");
                tc_json_string (stdout, m->name);
                printf (",\"version\":");
                tc_json_string (stdout, m->version);
                printf (",\"state\":");
                tc_json_string (stdout, m->state);
                printf (",\"restarts\":%" PRIu32 ",\"path\":", m->restarts);
                tc_json_string (stdout, m->path);
                printf (",\"abi_version\":%" PRIu32 ",\"held_messages\":%" PRIu64 "}",
                        m->abi_version, m->held_messages);
            }
            printf ("]}\n");
        }
        else {
            printf ("%-14s %-8s %-11s %-8s %s\n", "NAME", "VERSION", "STATE",
                    "RESTARTS", "PATH");
            for (size_t i = 0; i < list->n_modules; i++) {
                Titan__V1__ModuleInfo *m = list->modules [i];
                printf ("%-14s %-8s %-11s %-8" PRIu32 " %s\n", m->name,
                        m->version, m->state, m->restarts, m->path);
            }
        }
    }
    else if (argc == 3 && (strcmp (argv [1], "restart") == 0
                       ||  strcmp (argv [1], "reload") == 0)) {
        Titan__V1__ModuleRequest req = TITAN__V1__MODULE_REQUEST__INIT;
        req.name = argv [2];
        rc = s_call (opts, strcmp (argv [1], "restart") == 0
                           ? "/titan.v1.Admin/RestartModule"
                           : "/titan.v1.Admin/ReloadModule",
                     &req.base, &titan__v1__module_response__descriptor, &reply);
        if (rc)
            return rc;
        const char *message = ((Titan__V1__ModuleResponse *) reply)->message;
        if (opts->format == FMT_JSON) {
            printf ("{\"message\":");
            tc_json_string (stdout, message);
            printf ("}\n");
        }
        else
            printf ("%s\n", message);
    }
    else
        return s_usage_error ("module takes: list | restart NAME | reload NAME");
    protobuf_c_message_free_unpacked (reply, NULL);
    return EXIT_OK;
}

static int
s_cmd_merge (const s_opts_t *opts, int argc, char **argv)
{
    (void) argv;
    if (argc != 1)
        return s_usage_error ("merge takes no arguments (use --shard=N)");
    Titan__V1__MergeRequest req = TITAN__V1__MERGE_REQUEST__INIT;
    req.shard = (uint32_t) opts->shard;
    ProtobufCMessage *reply = NULL;
    int rc = s_call (opts, "/titan.v1.Admin/Merge", &req.base,
                     &titan__v1__merge_response__descriptor, &reply);
    if (rc)
        return rc;
    Titan__V1__MergeResponse *m = (Titan__V1__MergeResponse *) reply;
    if (opts->format == FMT_JSON)
        printf ("{\"files_merged\":%" PRIu64 ",\"bytes_reclaimed\":%" PRIu64 "}\n",
                m->files_merged, m->bytes_reclaimed);
    else
        printf ("merged %" PRIu64 " files, reclaimed %" PRIu64 " bytes\n",
                m->files_merged, m->bytes_reclaimed);
    protobuf_c_message_free_unpacked (reply, NULL);
    return EXIT_OK;
}

static int
s_cmd_scrub (const s_opts_t *opts, int argc, char **argv)
{
    bool status_only = argc == 2 && strcmp (argv [1], "status") == 0;
    if (argc > 2 || (argc == 2 && !status_only))
        return s_usage_error ("scrub takes: [status] (use --shard=N)");
    Titan__V1__ScrubRequest req = TITAN__V1__SCRUB_REQUEST__INIT;
    req.shard = (uint32_t) opts->shard;
    req.status_only = status_only;
    ProtobufCMessage *reply = NULL;
    int rc = s_call (opts, "/titan.v1.Admin/Scrub", &req.base,
                     &titan__v1__scrub_response__descriptor, &reply);
    if (rc)
        return rc;
    Titan__V1__ScrubResponse *r = (Titan__V1__ScrubResponse *) reply;
    if (opts->format == FMT_JSON)
        printf ("{\"started\":%s,\"running\":%s,\"passes\":%" PRIu64
                ",\"records\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"errors\":%"
                PRIu64 ",\"last_pass_ms\":%" PRIu64 ",\"last_pass_errors\":%"
                PRIu64 ",\"bytes_per_sec\":%" PRIu64 "}\n",
                r->started ? "true" : "false", r->running ? "true" : "false",
                r->passes, r->records, r->bytes, r->errors, r->last_pass_ms,
                r->last_pass_errors, r->bytes_per_sec);
    else
        printf ("scrub of shard %ld %s; %" PRIu64 " passes done, %" PRIu64
                " records (%" PRIu64 " bytes) verified, %" PRIu64 " damaged "
                "found; last pass %" PRIu64 " ms, %" PRIu64 " damaged\n",
                opts->shard, r->started ? "started" : r->running
                ? "running" : "idle", r->passes, r->records, r->bytes,
                r->errors, r->last_pass_ms, r->last_pass_errors);
    protobuf_c_message_free_unpacked (reply, NULL);
    return EXIT_OK;
}

static int
s_cmd_log_level (const s_opts_t *opts, int argc, char **argv)
{
    if (argc > 2)
        return s_usage_error ("log-level takes at most one LEVEL "
                              "(error, warning, info, debug)");
    Titan__V1__SetLogLevelRequest req = TITAN__V1__SET_LOG_LEVEL_REQUEST__INIT;
    req.level = argc == 2 ? argv [1] : "";
    ProtobufCMessage *reply = NULL;
    int rc = s_call (opts, "/titan.v1.Admin/SetLogLevel", &req.base,
                     &titan__v1__set_log_level_response__descriptor, &reply);
    if (rc)
        return rc;
    Titan__V1__SetLogLevelResponse *r = (Titan__V1__SetLogLevelResponse *) reply;
    if (opts->format == FMT_JSON)
        printf ("{\"level\":\"%s\",\"previous\":\"%s\"}\n", r->level,
                r->previous);
    else if (argc == 2)
        printf ("log level %s (was %s)\n", r->level, r->previous);
    else
        printf ("%s\n", r->level);
    protobuf_c_message_free_unpacked (reply, NULL);
    return EXIT_OK;
}

/*  ------------------------------------------------------------ main  */

static void
s_opts_free (s_opts_t *opts)
{
    for (size_t i = 0; i < opts->n_endpoints; i++)
        free (opts->endpoints [i]);
    free (opts->endpoints);
    tc_tls_destroy (&opts->tls);
    free (opts->token_read);
}

/*  Reads a token file (at most 4 KiB; blanks around it ignored) into
    opts->token.  Returns 0, or -1 with the reason printed.  */
static int
s_read_token_file (s_opts_t *opts)
{
    FILE *file = fopen (opts->token_file, "r");
    if (!file) {
        fprintf (stderr, "titanctl: token file %s: %s\n", opts->token_file,
                 strerror (errno));
        return -1;
    }
    char buf [4098];
    size_t size = fread (buf, 1, sizeof buf - 1, file);
    fclose (file);
    buf [size] = '\0';
    char *start = buf;
    while (isspace ((unsigned char) *start))
        start++;
    size_t len = strlen (start);
    while (len && isspace ((unsigned char) start [len - 1]))
        start [--len] = '\0';
    if (size == sizeof buf - 1 || len == 0) {
        fprintf (stderr, "titanctl: token file %s is %s\n", opts->token_file,
                 len ? "over 4 KiB" : "empty");
        return -1;
    }
    opts->token_read = strdup (start);
    opts->token = opts->token_read;
    return opts->token ? 0 : -1;
}

/*  The environment variable's value, or NULL when unset or empty.  */
static const char *
s_env (const char *name)
{
    const char *value = getenv (name);
    return value && *value ? value : NULL;
}

static int
s_run (int argc, char **argv, s_opts_t *opts)
{
    static const struct option options [] = {
        { "endpoints",   required_argument, NULL, 'e' },
        { "timeout",     required_argument, NULL, 't' },
        { "write-out",   required_argument, NULL, 'w' },
        { "consistency", required_argument, NULL, 'c' },
        { "shard",       required_argument, NULL, 's' },
        { "deferred",    no_argument,       NULL, 'D' },
        { "cacert",      required_argument, NULL, 'A' },
        { "cert",        required_argument, NULL, 'C' },
        { "key",         required_argument, NULL, 'K' },
        { "token",       required_argument, NULL, 'T' },
        { "token-file",  required_argument, NULL, 'F' },
        { "no-wait",     no_argument,       NULL, 'W' },
        { "drain-timeout", required_argument, NULL, 'R' },
        { "help",        no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *env = getenv ("TITAN_ENDPOINTS");
    if (s_parse_endpoints (env && *env ? env : DEFAULT_ENDPOINT, opts))
        return s_usage_error ("TITAN_ENDPOINTS names no endpoint: '%s'", env);
    opts->timeout_ms = 5000;
    opts->drain_timeout_ms = 3600 * 1000;
    opts->cacert = s_env ("TITANCTL_CACERT");
    opts->cert = s_env ("TITANCTL_CERT");
    opts->key = s_env ("TITANCTL_KEY");
    opts->token = s_env ("TITANCTL_TOKEN");
    opts->token_file = opts->token ? NULL : s_env ("TITANCTL_TOKEN_FILE");
    int c;
    opterr = 0;
    while ((c = getopt_long (argc, argv, "w:h", options, NULL)) != -1) {
        switch (c) {
            case 'e':
                if (s_parse_endpoints (optarg, opts))
                    return s_usage_error ("--endpoints names no endpoint: '%s'",
                                          optarg);
                break;
            case 't':
                opts->timeout_ms = s_parse_duration (optarg);
                if (opts->timeout_ms < 0)
                    return s_usage_error ("--timeout takes a duration like 500ms, "
                                          "5s or 1m, not '%s'", optarg);
                break;
            case 'w':
                if (strcmp (optarg, "simple") == 0) opts->format = FMT_SIMPLE;
                else if (strcmp (optarg, "json") == 0) opts->format = FMT_JSON;
                else if (strcmp (optarg, "table") == 0) opts->format = FMT_TABLE;
                else
                    return s_usage_error ("-w takes simple, json or table, not '%s'",
                                          optarg);
                break;
            case 'c':
                opts->consistency = optarg;
                break;
            case 's': {
                uint64_t shard;
                if (s_parse_u64 (optarg, &shard) || shard > UINT32_MAX)
                    return s_usage_error ("--shard takes a shard number, not '%s'",
                                          optarg);
                opts->shard = (long) shard;
                break;
            }
            case 'D': opts->deferred = true; break;
            case 'W': opts->no_wait = 1; break;
            case 'R':
                opts->drain_timeout_ms = s_parse_duration (optarg);
                if (opts->drain_timeout_ms < 0)
                    return s_usage_error ("--drain-timeout takes a duration "
                                          "like 10m, not '%s'", optarg);
                break;
            case 'A': opts->cacert = optarg; break;
            case 'C': opts->cert = optarg; break;
            case 'K': opts->key = optarg; break;
            case 'T': opts->token = optarg; opts->token_file = NULL; break;
            case 'F': opts->token_file = optarg; opts->token = NULL; break;
            case 'h':
                fputs (s_usage, stdout);
                return EXIT_OK;
            default:
                return s_usage_error ("unknown or incomplete option '%s'",
                                      argv [optind - 1]);
        }
    }
    if (optind >= argc)
        return s_usage_error ("no command given");
    if ((opts->cert || opts->key) && !opts->cacert)
        return s_usage_error ("--cert and --key need --cacert (TLS)");
    if (opts->token_file && s_read_token_file (opts))
        return EXIT_USAGE;
    if (opts->token && (!*opts->token || strpbrk (opts->token, " \t\r\n")))
        return s_usage_error ("--token must be non-empty, without blanks");
    if (opts->cacert) {
        char error [512];
        opts->tls = tc_tls_new (opts->cacert, opts->cert, opts->key, error,
                                sizeof error);
        if (!opts->tls)
            return s_usage_error ("%s", error);
    }
    char **args = argv + optind;
    int nargs = argc - optind;
    const char *command = args [0];
    if (opts->consistency && strcmp (command, "get") != 0)
        return s_usage_error ("--consistency applies to get only");
    if (opts->deferred && strcmp (command, "put") != 0)
        return s_usage_error ("--deferred applies to put only");
    if (getrandom (&opts->client_id, sizeof opts->client_id, 0)
        != (ssize_t) sizeof opts->client_id)
        opts->client_id = ((uint64_t) getpid () << 32) ^ (uint64_t) time (NULL);
    if (opts->client_id == 0)
        opts->client_id = 1;

    if (strcmp (command, "put") == 0)    return s_cmd_put (opts, nargs, args);
    if (strcmp (command, "get") == 0)    return s_cmd_get (opts, nargs, args);
    if (strcmp (command, "del") == 0)    return s_cmd_del (opts, nargs, args);
    if (strcmp (command, "cas") == 0)    return s_cmd_cas (opts, nargs, args);
    if (strcmp (command, "status") == 0) return s_cmd_status (opts, nargs, args);
    if (strcmp (command, "member") == 0) return s_cmd_member (opts, nargs, args);
    if (strcmp (command, "leader") == 0) return s_cmd_leader (opts, nargs, args);
    if (strcmp (command, "module") == 0) return s_cmd_module (opts, nargs, args);
    if (strcmp (command, "merge") == 0)  return s_cmd_merge (opts, nargs, args);
    if (strcmp (command, "scrub") == 0)  return s_cmd_scrub (opts, nargs, args);
    if (strcmp (command, "log-level") == 0) return s_cmd_log_level (opts, nargs, args);
    return s_usage_error ("unknown command '%s'", command);
}

int
main (int argc, char **argv)
{
    s_opts_t opts;
    memset (&opts, 0, sizeof opts);
    int rc = s_run (argc, argv, &opts);
    s_opts_free (&opts);
    return rc;
}
