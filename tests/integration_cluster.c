/*  TestCluster (see integration_cluster.h): starts, stops and restarts
    in-process Titan-KV nodes and talks to them over gRPC.

    A node is a titan_node_t built from a ZPL config text with the modules
    bitcask, raft and grpc_gateway.  Ports come from binding port 0 on
    loopback and closing the socket; another process may take such a port
    before the node binds it, so a fresh node that fails to start picks
    new ports and tries again, and a restarted node (whose ports are part
    of the group's replicated state) retries the same ports for a while
    (the kernel's own bind may also find an inproc name not yet released).
*/
#include "integration_cluster.h"
#include "tc_client.h"
#include "test_free_addr.h"
#include "titan/node.h"
#include "titan.pb-c.h"

#include <check.h>
#include <czmq.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    char id [16];
    char dir [64];
    char peer [32];
    char client [32];
    char join [32];              /* "" for node 0 (bootstrap) */
    uint32_t shards;             /* the raft module's `shards` (Q) */
    uint32_t ring_replicas;      /* placement = ring with R replicas; 0: static */
    titan_node_t *node;
    tc_conn_t *conn;             /* gRPC channel to its client address */
    const char *raft_extra;      /* the cluster's settings (not owned) */
    const char *bitcask_extra;
} s_node_t;

struct tc_cluster {
    int n;
    uint32_t shards;             /* Q of every node (1: tc_new) */
    uint32_t ring_replicas;      /* R with ring placement; 0: static */
    s_node_t nodes [TC_MAX_NODES];
    char *raft_extra;            /* settings lines of every node, or NULL */
    char *bitcask_extra;
};

static void
s_free_addr (char *buf, size_t size)
{
    snprintf (buf, size, "127.0.0.1:%d", tu_free_port ());
}

static const char *
s_module_path (void)
{
    const char *path = getenv ("TITAN_MODULE_PATH");
    return path && *path ? path
         : "modules/bitcask/.libs:modules/raft/.libs:modules/grpc_gateway/.libs";
}

/*  One attempt to create and start node `n`; returns 0 or the status.  */
static int
s_try_start (s_node_t *n, char *err, size_t err_size)
{
    char join [64] = "";
    if (*n->join)
        snprintf (join, sizeof join, "    join = %s\n", n->join);
    /* static placement unless the test asks for the ring (the default is
       ring placement, which needs the ring module) */
    char ring [160] = "", placement [64] = "        placement = static\n";
    if (n->ring_replicas) {
        snprintf (ring, sizeof ring, "    ring\n"
                  "        path = titan_ring.so\n"
                  "        shards = %u\n"
                  "        replicas = %u\n", n->shards, n->ring_replicas);
        snprintf (placement, sizeof placement, "        placement = ring\n");
    }
    char *text = zsys_sprintf (
        "node\n"
        "    id = %s\n"
        "    data_dir = \"%s\"\n"
        "    client_addr = %s\n"
        "    peer_addr = %s\n"
        "    module_path = \"%s\"\n"
        "%s"
        "kernel\n"
        "    ping_interval_ms = 200\n"
        "    ping_timeout_ms = 5000\n"
        "modules\n"
        "    bitcask\n"
        "        path = titan_bitcask.so\n"
        "%s"
        "%s"
        "    raft\n"
        "        path = titan_raft.so\n"
        "        join_retry_ms = 50\n"
        "        promote_gap = 8\n"
        "        shards = %u\n"
        "%s"
        "%s"
        "    grpc_gateway\n"
        "        path = titan_grpc_gateway.so\n",
        n->id, n->dir, n->client, n->peer, s_module_path (), join,
        n->bitcask_extra ? n->bitcask_extra : "", ring,
        n->shards ? n->shards : 1, placement,
        n->raft_extra ? n->raft_extra : "");
    zconfig_t *config = zconfig_str_load (text);
    ck_assert_msg (config != NULL, "bad config:\n%s", text);
    zstr_free (&text);
    n->node = titan_node_new (&config, err, err_size);
    ck_assert_msg (n->node != NULL, "titan_node_new %s: %s", n->id, err);
    int rc = titan_node_start (n->node, err, err_size);
    if (rc)
        titan_node_destroy (&n->node);
    return rc;
}

/*  Starts node `n`; `fresh`: it has no state yet, so new ports may be
    picked when its ports are taken.  */
static void
s_start (s_node_t *n, bool fresh)
{
    char err [1024] = "";
    int64_t deadline = zclock_mono () + 5000;
    int rc;
    while (true) {
        rc = s_try_start (n, err, sizeof err);
        if (rc == 0 || zclock_mono () > deadline)
            break;
        /* ports taken: a fresh node takes others; a known one waits */
        if (fresh) {
            s_free_addr (n->peer, sizeof n->peer);
            s_free_addr (n->client, sizeof n->client);
        }
        zclock_sleep (50);
    }
    ck_assert_msg (rc == 0, "titan_node_start %s: %d %s", n->id, rc, err);
    n->conn = tc_conn_new (n->client);
    ck_assert_ptr_nonnull (n->conn);
}

static void
s_stop (s_node_t *n)
{
    tc_conn_destroy (&n->conn);
    titan_node_destroy (&n->node);
}

/*  Calls `method` over `conn` with a packed request.  Asserts nothing, so
    that a writer thread may use it.  */
static grpc_status_code
s_conn_call (tc_conn_t *conn, const char *method, const ProtobufCMessage *req,
             int64_t timeout_ms, uint8_t **resp_p, size_t *resp_size,
             char *details, size_t details_size)
{
    size_t size = protobuf_c_message_get_packed_size (req);
    uint8_t *buf = malloc (size + 1);
    if (!buf) {
        if (details && details_size)
            snprintf (details, details_size, "out of memory packing a request");
        return GRPC_STATUS_RESOURCE_EXHAUSTED;
    }
    protobuf_c_message_pack (req, buf);
    grpc_status_code code = tc_call (conn, method, buf, size, timeout_ms,
                                     resp_p, resp_size, details, details_size);
    free (buf);
    return code;
}

/*  Calls `method` on node i with a packed request.  */
static grpc_status_code
s_call (tc_cluster_t *self, int i, const char *method,
        const ProtobufCMessage *req, int64_t timeout_ms,
        uint8_t **resp_p, size_t *resp_size, char *details, size_t details_size)
{
    ck_assert (i >= 0 && i < self->n);
    s_node_t *n = &self->nodes [i];
    ck_assert_msg (n->node, "node %d is not running", i);
    return s_conn_call (n->conn, method, req, timeout_ms, resp_p, resp_size,
                        details, details_size);
}

/*  Cluster.Status of node i, or NULL when it did not answer OK.  */
static Titan__V1__StatusResponse *
s_status (tc_cluster_t *self, int i)
{
    Titan__V1__StatusRequest req = TITAN__V1__STATUS_REQUEST__INIT;
    uint8_t *data = NULL;
    size_t size = 0;
    if (s_call (self, i, "/titan.v1.Cluster/Status", &req.base, 2000,
                &data, &size, NULL, 0) != GRPC_STATUS_OK)
        return NULL;
    Titan__V1__StatusResponse *st =
        titan__v1__status_response__unpack (NULL, size, data);
    free (data);
    return st;
}

static int
s_index_of (tc_cluster_t *self, const char *id)
{
    for (int i = 0; i < self->n; i++)
        if (streq (self->nodes [i].id, id))
            return i;
    return -1;
}

void
tc_wait_voters (tc_cluster_t *self, int count)
{
    int64_t deadline = zclock_mono () + 20000;
    while (true) {
        int leader = tc_get_leader (self, 2000);
        if (leader >= 0) {
            Titan__V1__StatusResponse *st = s_status (self, leader);
            int up = 0;
            for (size_t k = 0; st && k < st->n_nodes; k++)
                if (streq (st->nodes [k]->state, "up"))
                    up++;
            if (st)
                titan__v1__status_response__free_unpacked (st, NULL);
            if (up == count)
                return;
        }
        ck_assert_msg (zclock_mono () < deadline,
                       "the group did not reach %d voters", count);
        zclock_sleep (50);
    }
}

/*  Copies the extra settings of every node (NULL: none).  */
static void
s_take_settings (tc_cluster_t *self, const tc_settings_t *settings)
{
    if (settings && settings->raft)
        ck_assert_ptr_nonnull (self->raft_extra = strdup (settings->raft));
    if (settings && settings->bitcask)
        ck_assert_ptr_nonnull (self->bitcask_extra = strdup (settings->bitcask));
}

static void
s_init_node (tc_cluster_t *self, s_node_t *n, int i, const char *join)
{
    memset (n, 0, sizeof *n);
    n->raft_extra = self->raft_extra;
    n->bitcask_extra = self->bitcask_extra;
    n->shards = self->shards;
    n->ring_replicas = self->ring_replicas;
    snprintf (n->id, sizeof n->id, "n%d", i);
    snprintf (n->dir, sizeof n->dir, "/tmp/titan-integ-XXXXXX");
    ck_assert_ptr_nonnull (mkdtemp (n->dir));
    s_free_addr (n->peer, sizeof n->peer);
    s_free_addr (n->client, sizeof n->client);
    snprintf (n->join, sizeof n->join, "%s", join ? join : "");
}

/*  Starts node `i` of the cluster, joining node 0 unless it is node 0.  */
static void
s_launch (tc_cluster_t *self, int i, const char *join)
{
    s_init_node (self, &self->nodes [i], i, join);
    self->n = i + 1;
    s_start (&self->nodes [i], true);
}

tc_cluster_t *
tc_new_sharded (int n, uint32_t shards, int timeout_ms)
{
    ck_assert (n >= 1 && n <= TC_MAX_NODES && shards >= 1);
    tc_cluster_t *self = calloc (1, sizeof *self);
    ck_assert_ptr_nonnull (self);
    self->shards = shards;
    s_launch (self, 0, NULL);
    for (int i = 1; i < n; i++)
        s_launch (self, i, self->nodes [0].peer);
    tc_wait_shards (self, n, timeout_ms);
    return self;
}

tc_cluster_t *
tc_new_ring (int n, uint32_t shards, uint32_t replicas,
             const tc_settings_t *settings)
{
    ck_assert (n >= 1 && n <= TC_MAX_NODES && shards >= 1 && replicas >= 1);
    tc_cluster_t *self = calloc (1, sizeof *self);
    ck_assert_ptr_nonnull (self);
    s_take_settings (self, settings);
    self->shards = shards;
    self->ring_replicas = replicas;
    s_launch (self, 0, NULL);
    for (int i = 1; i < n; i++)
        s_launch (self, i, self->nodes [0].peer);
    return self;
}

int
tc_add_node_ring (tc_cluster_t *self, int join_through)
{
    ck_assert_int_lt (self->n, TC_MAX_NODES);
    ck_assert (tc_running (self, join_through));
    int i = self->n;
    s_launch (self, i, self->nodes [join_through].peer);
    return i;
}

int
tc_add_node_sharded (tc_cluster_t *self, int replicas, int timeout_ms)
{
    ck_assert_int_lt (self->n, TC_MAX_NODES);
    int i = self->n;
    s_launch (self, i, self->nodes [0].peer);
    tc_wait_shards (self, replicas, timeout_ms);
    return i;
}

/*  Whether node i's status shows every one of the cluster's shards with
    `replicas` voters, no learner and a leader.  */
static bool
s_shards_settled (tc_cluster_t *self, int i, int replicas)
{
    Titan__V1__StatusResponse *st = s_status (self, i);
    if (!st)
        return false;
    bool ok = st->n_shards == self->shards;   /* replicas include learners */
    for (size_t k = 0; ok && k < st->n_shards; k++) {
        const Titan__V1__ShardStatus *sh = st->shards [k];
        ok = sh->n_replicas == (size_t) replicas && sh->n_learners == 0
          && sh->leader && *sh->leader;
    }
    titan__v1__status_response__free_unpacked (st, NULL);
    return ok;
}

void
tc_wait_shards (tc_cluster_t *self, int replicas, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    while (true) {
        bool all = true;
        for (int i = 0; i < self->n && all; i++)
            if (self->nodes [i].node)
                all = s_shards_settled (self, i, replicas);
        if (all)
            return;
        ck_assert_msg (zclock_mono () < deadline, "the %u shards did not all "
                       "reach %d replicas with a leader in %d ms",
                       self->shards, replicas, timeout_ms);
        zclock_sleep (50);
    }
}

Titan__V1__StatusResponse *
tc_status (tc_cluster_t *self, int i)
{
    return s_status (self, i);
}

tc_cluster_t *
tc_new (int n)
{
    return tc_new_with (n, NULL);
}

tc_cluster_t *
tc_new_with (int n, const tc_settings_t *settings)
{
    ck_assert (n >= 1 && n <= TC_MAX_NODES);
    tc_cluster_t *self = calloc (1, sizeof *self);
    ck_assert_ptr_nonnull (self);
    s_take_settings (self, settings);
    s_launch (self, 0, NULL);
    for (int i = 1; i < n; i++)
        s_launch (self, i, self->nodes [0].peer);
    tc_wait_voters (self, n);
    return self;
}

int
tc_add_node (tc_cluster_t *self)
{
    ck_assert_int_lt (self->n, TC_MAX_NODES);
    int i = self->n;
    s_launch (self, i, self->nodes [0].peer);
    tc_wait_voters (self, self->n);
    return i;
}

int
tc_add_waiting_node (tc_cluster_t *self)
{
    ck_assert_int_lt (self->n, TC_MAX_NODES);
    int i = self->n;
    char nowhere [32];
    s_free_addr (nowhere, sizeof nowhere);
    s_launch (self, i, nowhere);
    return i;
}

void
tc_destroy (tc_cluster_t **self_p)
{
    tc_cluster_t *self = *self_p;
    if (!self)
        return;
    for (int i = self->n - 1; i >= 0; i--) {
        s_node_t *n = &self->nodes [i];
        s_stop (n);
        char *cmd = zsys_sprintf ("rm -rf '%s'", n->dir);
        int rc = system (cmd);
        (void) rc;
        zstr_free (&cmd);
    }
    free (self->raft_extra);
    free (self->bitcask_extra);
    free (self);
    *self_p = NULL;
}

int
tc_size (tc_cluster_t *self)
{
    return self->n;
}

void
tc_stop_node (tc_cluster_t *self, int i)
{
    ck_assert (i >= 0 && i < self->n);
    s_stop (&self->nodes [i]);
}

void
tc_start_node (tc_cluster_t *self, int i)
{
    ck_assert (i >= 0 && i < self->n);
    ck_assert_msg (!self->nodes [i].node, "node %d already runs", i);
    s_start (&self->nodes [i], false);
}

void
tc_put_ok (tc_cluster_t *self, int i, const char *key, const char *value,
           int64_t timeout_ms)
{
    char details [512] = "";
    grpc_status_code code = tc_put (self, i, key, value, timeout_ms, NULL,
                                    details, sizeof details);
    ck_assert_msg (code == GRPC_STATUS_OK, "put %s through %s: %s %s", key,
                   tc_node_id (self, i), tc_status_name (code), details);
}

void
tc_expect (tc_cluster_t *self, int i, const char *key, const char *value,
           int64_t timeout_ms)
{
    char *got = NULL;
    char details [512] = "";
    grpc_status_code code = tc_get (self, i, key, false, timeout_ms, &got,
                                    NULL, details, sizeof details);
    ck_assert_msg (code == GRPC_STATUS_OK, "get %s through %s: %s %s", key,
                   tc_node_id (self, i), tc_status_name (code), details);
    ck_assert_msg (streq (got, value), "get %s through %s: '%s', not '%s'",
                   key, tc_node_id (self, i), got, value);
    free (got);
}

bool
tc_running (tc_cluster_t *self, int i)
{
    return i >= 0 && i < self->n && self->nodes [i].node != NULL;
}

const char *
tc_node_id (tc_cluster_t *self, int i)
{
    return self->nodes [i].id;
}

const char *
tc_bus_endpoint (tc_cluster_t *self, int i)
{
    ck_assert (tc_running (self, i));
    return titan_node_endpoint (self->nodes [i].node);
}

const char *
tc_client_addr (tc_cluster_t *self, int i)
{
    return self->nodes [i].client;
}

const char *
tc_peer_addr (tc_cluster_t *self, int i)
{
    return self->nodes [i].peer;
}

int
tc_get_leader (tc_cluster_t *self, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    do {
        int running = 0;
        int votes [TC_MAX_NODES] = { 0 };
        bool claims [TC_MAX_NODES] = { false };
        for (int i = 0; i < self->n; i++) {
            if (!self->nodes [i].node)
                continue;
            running++;
            Titan__V1__StatusResponse *st = s_status (self, i);
            if (!st)
                continue;
            if (st->n_shards >= 1 && st->shards [0]->id == 0
            &&  st->shards [0]->leader) {
                int l = s_index_of (self, st->shards [0]->leader);
                if (l >= 0 && self->nodes [l].node) {
                    votes [l]++;
                    if (l == i)
                        claims [i] = true;
                }
            }
            titan__v1__status_response__free_unpacked (st, NULL);
        }
        /* a node that says it leads, and that another node (if any runs)
           agrees with */
        for (int i = 0; i < self->n; i++)
            if (claims [i] && (running == 1 || votes [i] >= 2))
                return i;
        zclock_sleep (20);
    } while (zclock_mono () < deadline);
    return -1;
}

int
tc_other (tc_cluster_t *self, int not_this)
{
    for (int i = 0; i < self->n; i++)
        if (i != not_this && self->nodes [i].node)
            return i;
    return -1;
}

bool
tc_shard_status (tc_cluster_t *self, int i, tc_shard_t *out)
{
    memset (out, 0, sizeof *out);
    Titan__V1__StatusResponse *st = s_status (self, i);
    if (!st)
        return false;
    bool ok = st->n_shards == 1;
    if (ok) {
        const Titan__V1__ShardStatus *s = st->shards [0];
        snprintf (out->leader, sizeof out->leader, "%s", s->leader);
        out->term = s->term;
        out->commit_index = s->commit_index;
        out->applied_index = s->applied_index;
        out->keys = s->keys;
        out->snapshot_index = s->snapshot_index;
        out->snapshots_taken = s->snapshots_taken;
        out->snapshots_installed = s->snapshots_installed;
    }
    titan__v1__status_response__free_unpacked (st, NULL);
    return ok;
}

grpc_status_code
tc_conn_put (tc_conn_t *conn, const char *key, const char *value,
             int64_t timeout_ms, uint64_t *revision, char *details,
             size_t details_size)
{
    Titan__V1__PutRequest req = TITAN__V1__PUT_REQUEST__INIT;
    req.key.data = (uint8_t *) key;
    req.key.len = strlen (key);
    req.value.data = (uint8_t *) value;
    req.value.len = strlen (value);
    uint8_t *data = NULL;
    size_t size = 0;
    grpc_status_code code = s_conn_call (conn, "/titan.v1.KV/Put", &req.base,
                                         timeout_ms, &data, &size,
                                         details, details_size);
    if (code == GRPC_STATUS_OK) {
        Titan__V1__PutResponse *resp =
            titan__v1__put_response__unpack (NULL, size, data);
        if (!resp) {
            if (details && details_size)
                snprintf (details, details_size, "undecodable PutResponse");
            code = GRPC_STATUS_INTERNAL;
        }
        else {
            if (revision)
                *revision = resp->revision;
            titan__v1__put_response__free_unpacked (resp, NULL);
        }
    }
    free (data);
    return code;
}

grpc_status_code
tc_put (tc_cluster_t *self, int i, const char *key, const char *value,
        int64_t timeout_ms, uint64_t *revision, char *details,
        size_t details_size)
{
    ck_assert (i >= 0 && i < self->n);
    ck_assert_msg (self->nodes [i].node, "node %d is not running", i);
    return tc_conn_put (self->nodes [i].conn, key, value, timeout_ms,
                        revision, details, details_size);
}

grpc_status_code
tc_get (tc_cluster_t *self, int i, const char *key, bool local,
        int64_t timeout_ms, char **value_p, uint64_t *revision,
        char *details, size_t details_size)
{
    Titan__V1__GetRequest req = TITAN__V1__GET_REQUEST__INIT;
    req.key.data = (uint8_t *) key;
    req.key.len = strlen (key);
    req.consistency = local ? TITAN__V1__CONSISTENCY__LOCAL
                            : TITAN__V1__CONSISTENCY__LINEARIZABLE;
    uint8_t *data = NULL;
    size_t size = 0;
    if (value_p)
        *value_p = NULL;
    grpc_status_code code = s_call (self, i, "/titan.v1.KV/Get", &req.base,
                                    timeout_ms, &data, &size,
                                    details, details_size);
    if (code == GRPC_STATUS_OK) {
        Titan__V1__GetResponse *resp =
            titan__v1__get_response__unpack (NULL, size, data);
        ck_assert_ptr_nonnull (resp);
        if (value_p) {
            *value_p = malloc (resp->value.len + 1);
            ck_assert_ptr_nonnull (*value_p);
            if (resp->value.len)
                memcpy (*value_p, resp->value.data, resp->value.len);
            (*value_p) [resp->value.len] = 0;
        }
        if (revision)
            *revision = resp->revision;
        titan__v1__get_response__free_unpacked (resp, NULL);
    }
    free (data);
    return code;
}

bool
tc_wait_value (tc_cluster_t *self, int i, const char *key, const char *value,
               int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    do {
        char *got = NULL;
        grpc_status_code code = tc_get (self, i, key, true, 1000, &got, NULL,
                                        NULL, 0);
        bool same = code == GRPC_STATUS_OK && streq (got, value);
        free (got);
        if (same)
            return true;
        zclock_sleep (20);
    } while (zclock_mono () < deadline);
    return false;
}
