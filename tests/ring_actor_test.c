/*  Tests of the ring module (modules/ring/titan_ring.c) on the bus of real
    kernel nodes inside the test process: each node loads titan_ring.so
    from the build tree with its own temporary data directory, and the
    test talks to it as the bus client "tester", which is also the
    module's only subscriber (setting subscribers = tester), so it receives
    the RingTable events.  The test plays the raft module: it sends
    kv.apply_batch with ring commands at Raft indexes, kv.stats and the
    kv.snapshot_* stream, for the meta shard.

    Scenarios: batches of create/add/state/remove commands publish tables
    whose epoch increases and whose placement is ring_table_build's on the
    same membership; ring.table before and after creation; bad ops
    rejected the same way on two nodes (byte-identical state files), the
    batch going on; a re-sent batch answered the same, and one re-delivered
    after a restart answered ABORTED without being applied again; the
    state and applied index surviving a module restart and a node restart;
    a snapshot read from one node and installed on another giving the same
    table, and damaged or mismatched installs refused; snapshot limits
    (snapshot_max_open, idle release, offsets); a corrupt state file
    stopping the module with a clear error; Q/R differing from the node's
    settings refused; requests for another shard refused.  */
#include <check.h>
#include "check_run.h"
#include "kernel_test_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "titan/bus_types.h"
#include "titan/status.h"
#include "bus.pb-c.h"

#include "ring_fsm.h"
#include "ring_member.h"
#include "ring_place.h"
#include "ring_state_file.h"
#include "ring_table.h"

#define CALL_MS   10000
#define EVENT_MS  10000

typedef struct {
    char id [32];
    char *dir;
    const char *settings;        /* more ZPL lines for the ring module */
    titan_node_t *node;
    titan_bus_t *bus;
    zlist_t *events;             /* RingTable events received meanwhile */
} tnode_t;

static char *
s_config_text (tnode_t *n)
{
    bool idle = n->settings && strstr (n->settings, "snapshot_idle_ms");
    return zsys_sprintf (
        "    ring\n"
        "        path = titan_ring.so\n"
        "        subscribers = tester\n"
        "%s"
        "%s", idle ? "" : "        snapshot_idle_ms = 5000\n",
        n->settings ? n->settings : "");
}

static zconfig_t *
s_make_config (void *arg)
{
    tnode_t *n = (tnode_t *) arg;
    char *modules = s_config_text (n);
    zconfig_t *config = test_config (n->id, n->dir, modules, NULL);
    zstr_free (&modules);
    return config;
}

/*  Creates and starts node `n`; returns 0, or the start status with the
    reason in `err` (the node is then destroyed).  */
static int
s_try_start (tnode_t *n, char *err, size_t err_size)
{
    return test_node_try_start (s_make_config, n, &n->node, err, err_size);
}

static void
s_start (tnode_t *n)
{
    char err [1024] = "";
    int rc = s_try_start (n, err, sizeof err);
    ck_assert_msg (rc == 0, "start %s: %d %s", n->id, rc, err);
    n->bus = titan_bus_connect (titan_node_endpoint (n->node), "tester");
    ck_assert_ptr_nonnull (n->bus);
}

static void
s_stop (tnode_t *n)
{
    titan_bus_destroy (&n->bus);
    titan_node_destroy (&n->node);
}

static void
s_init (tnode_t *n, const char *id, const char *settings)
{
    memset (n, 0, sizeof *n);
    snprintf (n->id, sizeof n->id, "%s", id);
    n->dir = test_tempdir ();
    n->settings = settings;
    n->events = zlist_new ();
    s_start (n);
}

static void
s_cleanup (tnode_t *n)
{
    s_stop (n);
    while (zlist_size (n->events)) {
        Titan__Bus__RingTable *t = zlist_pop (n->events);
        titan__bus__ring_table__free_unpacked (t, NULL);
    }
    zlist_destroy (&n->events);
    test_rmdir (&n->dir);
}

/* ------------------------------------------------------------ bus */

/*  Keeps RingTable events that arrive while waiting for a reply.  */
static void
s_other (titan_envelope_t **env_p, void *arg)
{
    tnode_t *n = arg;
    titan_envelope_t *env = *env_p;
    if (env->kind == TITAN_MSG_EVENT && streq (env->type, TITAN_T_RING_TABLE)) {
        Titan__Bus__RingTable *t = titan__bus__ring_table__unpack (NULL,
            titan_envelope_size (env), titan_envelope_data (env));
        ck_assert_ptr_nonnull (t);
        zlist_append (n->events, t);
    }
    titan_envelope_destroy (env_p);
}

/*  Sends a request to the ring module and returns the reply envelope.  */
static titan_envelope_t *
s_call (tnode_t *n, const char *type, const ProtobufCMessage *msg)
{
    size_t len = msg ? protobuf_c_message_get_packed_size (msg) : 0;
    uint8_t *buf = malloc (len + 1);
    if (msg)
        protobuf_c_message_pack (msg, buf);
    titan_envelope_t *r = titan_bus_call (n->bus, "ring", type, buf, len, CALL_MS,
                                          s_other, n);
    free (buf);
    ck_assert_msg (r != NULL, "%s: no reply to %s", n->id, type);
    return r;
}

/*  Waits for the next RingTable event (the caller frees it).  */
static Titan__Bus__RingTable *
s_next_event (tnode_t *n)
{
    int64_t deadline = zclock_mono () + EVENT_MS;
    while (!zlist_size (n->events) && zclock_mono () < deadline) {
        titan_envelope_t *env = titan_bus_recv (n->bus, 100);
        if (env)
            s_other (&env, n);
    }
    ck_assert_msg (zlist_size (n->events), "%s: no ring.table event", n->id);
    return zlist_pop (n->events);
}

/*  Asserts that no RingTable event arrives within `ms`.  */
static void
s_no_event (tnode_t *n, int ms)
{
    int64_t deadline = zclock_mono () + ms;
    while (zclock_mono () < deadline) {
        titan_envelope_t *env = titan_bus_recv (n->bus, 20);
        if (env)
            s_other (&env, n);
    }
    ck_assert_uint_eq (zlist_size (n->events), 0);
}

/*  The commands a test applies.  */
static uint8_t *
s_cmd_bytes (const ring_cmd_t *cmd, size_t *size)
{
    uint8_t *data;
    ck_assert_int_eq (ring_cmd_encode (cmd, &data, size), 0);
    return data;
}

static ring_cmd_t
s_create_cmd (uint32_t q, uint32_t r)
{
    ring_cmd_t cmd;
    ck_assert_int_eq (ring_cmd_create (&cmd, q, r, NULL, 0), 0);
    return cmd;
}

static ring_cmd_t
s_add_cmd (const char *id)
{
    ring_cmd_t cmd;
    char client [64], peer [64];
    snprintf (client, sizeof client, "127.0.0.1:%d", 7000 + (int) strlen (id));
    snprintf (peer, sizeof peer, "%s.peer:7401", id);
    ck_assert_int_eq (ring_cmd_add (&cmd, id, client, peer, NULL, 0), 0);
    return cmd;
}

static ring_cmd_t
s_state_cmd (const char *id, ring_state_t state)
{
    ring_cmd_t cmd;
    if (state == RING_REMOVED)
        ck_assert_int_eq (ring_cmd_remove (&cmd, id, NULL, 0), 0);
    else
        ck_assert_int_eq (ring_cmd_set_state (&cmd, id, state, NULL, 0), 0);
    return cmd;
}

/*  Builds the packed KvApplyBatch of `n` ops starting at `first`, ending
    at `applied`.  Op values: the commands' encodings, or `raw` ops given
    as is (kind, key, value) when cmds [i] is NULL.  */
typedef struct {
    const ring_cmd_t *cmd;
    Titan__Bus__KvOp__Kind kind;
    const char *key;
    const char *value;
} s_op_t;

static uint8_t *
s_batch (uint32_t shard, const s_op_t *ops, size_t n, uint64_t first,
         uint64_t applied, size_t *len)
{
    Titan__Bus__KvOp *kv = calloc (n + 1, sizeof *kv);
    Titan__Bus__KvOp **ptrs = calloc (n + 1, sizeof *ptrs);
    uint8_t **owned = calloc (n + 1, sizeof *owned);
    for (size_t i = 0; i < n; i++) {
        titan__bus__kv_op__init (&kv [i]);
        kv [i].kind = ops [i].cmd ? TITAN__BUS__KV_OP__KIND__PUT : ops [i].kind;
        const char *key = ops [i].cmd ? TITAN_RING_CMD_KEY : ops [i].key;
        kv [i].key.data = (uint8_t *) key;
        kv [i].key.len = strlen (key);
        if (ops [i].cmd) {
            owned [i] = s_cmd_bytes (ops [i].cmd, &kv [i].value.len);
            kv [i].value.data = owned [i];
        }
        else {
            kv [i].value.data = (uint8_t *) ops [i].value;
            kv [i].value.len = strlen (ops [i].value);
        }
        ptrs [i] = &kv [i];
    }
    Titan__Bus__KvApplyBatch ab = TITAN__BUS__KV_APPLY_BATCH__INIT;
    ab.shard = shard;
    ab.n_ops = n;
    ab.ops = ptrs;
    ab.first_revision = first;
    ab.applied_index = applied;
    *len = titan__bus__kv_apply_batch__get_packed_size (&ab);
    uint8_t *buf = malloc (*len + 1);
    titan__bus__kv_apply_batch__pack (&ab, buf);
    for (size_t i = 0; i < n; i++)
        free (owned [i]);
    free (owned);
    free (ptrs);
    free (kv);
    return buf;
}

static Titan__Bus__KvApplyBatchReply *
s_apply_raw (tnode_t *n, const uint8_t *buf, size_t len)
{
    titan_envelope_t *r = titan_bus_call (n->bus, "ring", TITAN_T_KV_APPLY_BATCH, buf,
                                          len, CALL_MS, s_other, n);
    ck_assert_msg (r != NULL, "%s: no reply to kv.apply_batch", n->id);
    Titan__Bus__KvApplyBatchReply *reply = titan__bus__kv_apply_batch_reply__unpack (
        NULL, titan_envelope_size (r), titan_envelope_data (r));
    ck_assert_ptr_nonnull (reply);
    titan_envelope_destroy (&r);
    return reply;
}

static Titan__Bus__KvApplyBatchReply *
s_apply (tnode_t *n, const s_op_t *ops, size_t count, uint64_t first, uint64_t applied)
{
    size_t len;
    uint8_t *buf = s_batch (TITAN_META_SHARD, ops, count, first, applied, &len);
    Titan__Bus__KvApplyBatchReply *reply = s_apply_raw (n, buf, len);
    free (buf);
    return reply;
}

/*  Applies commands that must all succeed.  */
static void
s_apply_ok (tnode_t *n, const ring_cmd_t *cmds, size_t count, uint64_t first,
            uint64_t applied)
{
    s_op_t ops [16];
    ck_assert_uint_le (count, 16);
    for (size_t i = 0; i < count; i++)
        ops [i] = (s_op_t) { &cmds [i], 0, NULL, NULL };
    Titan__Bus__KvApplyBatchReply *r = s_apply (n, ops, count, first, applied);
    ck_assert_msg (r->code == TITAN__BUS__CODE__OK, "apply: %d %s", r->code,
                   r->message);
    ck_assert_uint_eq (r->n_results, count);
    for (size_t i = 0; i < count; i++) {
        ck_assert_msg (r->results [i]->code == TITAN__BUS__CODE__OK,
                       "op %zu: %d %s", i, r->results [i]->code,
                       r->results [i]->message);
        ck_assert_uint_eq (r->results [i]->revision, first + i);
    }
    ck_assert_uint_eq (r->applied_index, applied);
    titan__bus__kv_apply_batch_reply__free_unpacked (r, NULL);
}

static uint64_t
s_stats_applied (tnode_t *n)
{
    Titan__Bus__KvStatsRequest q = TITAN__BUS__KV_STATS_REQUEST__INIT;
    q.shard = TITAN_META_SHARD;
    titan_envelope_t *r = s_call (n, TITAN_T_KV_STATS, &q.base);
    Titan__Bus__KvStatsReply *st = titan__bus__kv_stats_reply__unpack (NULL,
        titan_envelope_size (r), titan_envelope_data (r));
    ck_assert_ptr_nonnull (st);
    ck_assert_int_eq (st->code, TITAN__BUS__CODE__OK);
    uint64_t applied = st->applied_index;
    titan__bus__kv_stats_reply__free_unpacked (st, NULL);
    titan_envelope_destroy (&r);
    return applied;
}

static Titan__Bus__RingTable *
s_table_request (tnode_t *n)
{
    Titan__Bus__RingTableRequest q = TITAN__BUS__RING_TABLE_REQUEST__INIT;
    titan_envelope_t *r = s_call (n, TITAN_T_RING_TABLE, &q.base);
    Titan__Bus__RingTable *t = titan__bus__ring_table__unpack (NULL,
        titan_envelope_size (r), titan_envelope_data (r));
    ck_assert_ptr_nonnull (t);
    titan_envelope_destroy (&r);
    return t;
}

/*  Checks a published table against ring_table_build on the membership
    obtained by applying `cmds` to a fresh state here.  */
static void
s_check_table (const Titan__Bus__RingTable *t, const ring_cmd_t *cmds, size_t count)
{
    ck_assert_int_eq (t->code, TITAN__BUS__CODE__OK);
    ring_fsm_t *fsm = ring_fsm_new ();
    for (size_t i = 0; i < count; i++) {
        size_t size;
        uint8_t *data = s_cmd_bytes (&cmds [i], &size);
        ring_fsm_apply (fsm, i + 1, data, size, NULL, 0);
        free (data);
    }
    const ring_members_t *m = ring_fsm_members (fsm);
    ck_assert_ptr_nonnull (m);
    ring_table_t *want = NULL;
    ck_assert_int_eq (ring_table_build (m, &want), 0);
    uint8_t *bytes;
    size_t size;
    ck_assert_int_eq (ring_table_encode (want, &bytes, &size), 0);
    ck_assert_uint_eq (t->table.len, size);
    ck_assert_int_eq (memcmp (t->table.data, bytes, size), 0);
    ck_assert_uint_eq (t->epoch, ring_members_epoch (m));
    ck_assert_uint_eq (t->shards, ring_members_shards (m));
    ck_assert_uint_eq (t->replicas, ring_members_replicas (m));
    ck_assert_uint_eq (t->n_nodes, ring_members_size (m));
    for (uint32_t i = 0; i < ring_members_size (m); i++) {
        const ring_member_t *mm = ring_members_at (m, i);
        ck_assert_str_eq (t->nodes [i]->node_id, mm->id);
        ck_assert_str_eq (t->nodes [i]->client_addr, mm->client_addr);
        ck_assert_str_eq (t->nodes [i]->peer_addr, mm->peer_addr);
        ck_assert_str_eq (t->nodes [i]->state, ring_state_name (mm->state));
    }
    //  The table bytes decode, and every shard has min (R, nodes) replicas.
    ring_table_t *got = NULL;
    ck_assert_int_eq (ring_table_decode (t->table.data, t->table.len, &got, NULL, 0), 0);
    for (uint32_t s = 0; s < ring_table_shards (got); s++)
        ck_assert_uint_eq (ring_table_shard_size (got, s),
                           ring_table_nodes (got) < t->replicas
                           ? ring_table_nodes (got) : t->replicas);
    ring_table_destroy (&got);
    free (bytes);
    ring_table_destroy (&want);
    ring_fsm_destroy (&fsm);
}

/*  Reads <dir>/ring/state as bytes (the caller frees).  */
static uint8_t *
s_state_bytes (tnode_t *n, size_t *size)
{
    char *path = zsys_sprintf ("%s/ring/state", n->dir);
    FILE *f = fopen (path, "rb");
    ck_assert_msg (f != NULL, "cannot open %s", path);
    uint8_t *buf = malloc (RING_FSM_MAX_BYTES);
    *size = fread (buf, 1, RING_FSM_MAX_BYTES, f);
    fclose (f);
    zstr_free (&path);
    return buf;
}

static ring_fsm_t *
s_state (tnode_t *n)
{
    char *dir = zsys_sprintf ("%s/ring", n->dir);
    ring_fsm_t *fsm = NULL;
    char err [512];
    ck_assert_msg (ring_state_file_load (dir, &fsm, err, sizeof err) == 0, "%s", err);
    zstr_free (&dir);
    return fsm;
}

/*  The life cycle of three nodes, applied at indexes 1.. .  */
static ring_cmd_t s_log [8];
static size_t s_log_len;

static void
s_log_init (void)
{
    s_log [0] = s_create_cmd (16, 3);
    s_log [1] = s_add_cmd ("n1");
    s_log [2] = s_add_cmd ("n2");
    s_log [3] = s_add_cmd ("n3");
    s_log [4] = s_state_cmd ("n1", RING_ACTIVE);
    s_log [5] = s_state_cmd ("n2", RING_ACTIVE);
    s_log [6] = s_state_cmd ("n3", RING_LEAVING);
    s_log [7] = s_state_cmd ("n3", RING_REMOVED);
    s_log_len = 8;
}

/* ------------------------------------------------------------ tests */

START_TEST (test_apply_and_publish)
{
    s_log_init ();
    tnode_t n;
    s_init (&n, "ra1", NULL);
    //  Nothing known yet.
    Titan__Bus__RingTable *t = s_table_request (&n);
    ck_assert_int_eq (t->code, TITAN__BUS__CODE__UNAVAILABLE);
    ck_assert_ptr_nonnull (strstr (t->message, "create"));
    titan__bus__ring_table__free_unpacked (t, NULL);
    ck_assert_uint_eq (s_stats_applied (&n), 0);

    //  CREATE, then three joins (with a trailing no-op at index 5).
    s_apply_ok (&n, s_log, 1, 1, 1);
    t = s_next_event (&n);
    ck_assert_uint_eq (t->epoch, 0);
    ck_assert_uint_eq (t->n_nodes, 0);
    ck_assert_uint_eq (t->applied_index, 1);
    s_check_table (t, s_log, 1);
    titan__bus__ring_table__free_unpacked (t, NULL);
    s_apply_ok (&n, s_log + 1, 3, 2, 5);
    t = s_next_event (&n);
    ck_assert_uint_eq (t->epoch, 3);
    ck_assert_uint_eq (t->applied_index, 5);
    s_check_table (t, s_log, 4);
    titan__bus__ring_table__free_unpacked (t, NULL);
    //  States change one batch at a time: each publishes a newer epoch.
    uint64_t epoch = 3;
    for (size_t i = 4; i < s_log_len; i++) {
        s_apply_ok (&n, s_log + i, 1, i + 2, i + 2);
        t = s_next_event (&n);
        ck_assert_uint_gt (t->epoch, epoch);
        epoch = t->epoch;
        s_check_table (t, s_log, i + 1);
        titan__bus__ring_table__free_unpacked (t, NULL);
    }
    ck_assert_uint_eq (s_stats_applied (&n), s_log_len + 1);
    //  A batch that changes nothing publishes nothing, but moves the index.
    s_apply_ok (&n, s_log + 1, 1, 20, 21);
    s_no_event (&n, 300);
    ck_assert_uint_eq (s_stats_applied (&n), 21);
    //  ring.table answers the current table.
    t = s_table_request (&n);
    s_check_table (t, s_log, s_log_len);
    ck_assert_uint_eq (t->applied_index, 21);
    ck_assert_str_eq (t->nodes [2]->state, "removed");
    titan__bus__ring_table__free_unpacked (t, NULL);
    s_cleanup (&n);
}
END_TEST

START_TEST (test_bad_ops_deterministic)
{
    tnode_t a, b;
    s_init (&a, "rb1", NULL);
    s_init (&b, "rb2", NULL);
    ring_cmd_t add1 = s_add_cmd ("n1"), create = s_create_cmd (16, 3);
    ring_cmd_t clash, unknown = s_state_cmd ("ghost", RING_ACTIVE);
    ring_cmd_t active = s_state_cmd ("n1", RING_ACTIVE);
    ring_cmd_t back = s_state_cmd ("n1", RING_JOINING);   /* forbidden */
    ring_cmd_t other_q = s_create_cmd (16, 5);
    ck_assert_int_eq (ring_cmd_add (&clash, "n1", "other:1", "other:2", NULL, 0), 0);
    s_op_t first [] = {
        { &add1, 0, NULL, NULL },                               /* no cluster */
        { &create, 0, NULL, NULL },
    };
    s_op_t second [] = {
        { NULL, TITAN__BUS__KV_OP__KIND__PUT, TITAN_RING_CMD_KEY, "garbage" },
        { NULL, TITAN__BUS__KV_OP__KIND__PUT, "other.key", "x" },
        { NULL, TITAN__BUS__KV_OP__KIND__DELETE, TITAN_RING_CMD_KEY, "" },
        { &add1, 0, NULL, NULL },
        { &clash, 0, NULL, NULL },
        { &unknown, 0, NULL, NULL },
        { &active, 0, NULL, NULL },
        { &back, 0, NULL, NULL },
        { &other_q, 0, NULL, NULL },
    };
    Titan__Bus__Code want [] = {
        TITAN__BUS__CODE__INVALID_ARGUMENT, TITAN__BUS__CODE__INVALID_ARGUMENT,
        TITAN__BUS__CODE__INVALID_ARGUMENT, TITAN__BUS__CODE__OK,
        TITAN__BUS__CODE__ALREADY_EXISTS, TITAN__BUS__CODE__NOT_FOUND,
        TITAN__BUS__CODE__OK, TITAN__BUS__CODE__FAILED_PRECONDITION,
        TITAN__BUS__CODE__ALREADY_EXISTS,
    };
    tnode_t *nodes [] = { &a, &b };
    for (int k = 0; k < 2; k++) {
        tnode_t *n = nodes [k];
        Titan__Bus__KvApplyBatchReply *r = s_apply (n, first, 2, 1, 2);
        ck_assert_int_eq (r->code, TITAN__BUS__CODE__OK);
        ck_assert_int_eq (r->results [0]->code, TITAN__BUS__CODE__FAILED_PRECONDITION);
        ck_assert_ptr_nonnull (strstr (r->results [0]->message, "not created"));
        ck_assert_int_eq (r->results [1]->code, TITAN__BUS__CODE__OK);
        titan__bus__kv_apply_batch_reply__free_unpacked (r, NULL);
        r = s_apply (n, second, 9, 3, 11);
        ck_assert_int_eq (r->code, TITAN__BUS__CODE__OK);
        ck_assert_uint_eq (r->n_results, 9);
        for (int i = 0; i < 9; i++)
            ck_assert_msg (r->results [i]->code == want [i], "op %d: code %d (%s)",
                           i, r->results [i]->code, r->results [i]->message);
        ck_assert_ptr_nonnull (strstr (r->results [1]->message, TITAN_RING_CMD_KEY));
        ck_assert_ptr_nonnull (strstr (r->results [4]->message, "n1"));
        ck_assert_ptr_nonnull (strstr (r->results [5]->message, "ghost"));
        ck_assert_uint_eq (r->applied_index, 11);
        titan__bus__kv_apply_batch_reply__free_unpacked (r, NULL);
        ring_fsm_t *fsm = s_state (n);
        ck_assert_uint_eq (ring_fsm_rejected (fsm), 8);
        ck_assert_uint_eq (ring_fsm_applied (fsm), 11);
        ck_assert_uint_eq (ring_members_size (ring_fsm_members (fsm)), 1);
        ring_fsm_destroy (&fsm);
    }
    size_t sa, sb;
    uint8_t *ba = s_state_bytes (&a, &sa), *bb = s_state_bytes (&b, &sb);
    ck_assert_uint_eq (sa, sb);
    ck_assert_int_eq (memcmp (ba, bb, sa), 0);
    free (ba);
    free (bb);
    //  Malformed batches: a payload that is not a KvApplyBatch, indexes
    //  that do not fit.  Nothing applied.
    titan_envelope_t *r = titan_bus_call (a.bus, "ring", TITAN_T_KV_APPLY_BATCH,
                                          "\xff\xff\xff", 3, CALL_MS, s_other, &a);
    ck_assert_ptr_nonnull (r);
    Titan__Bus__KvApplyBatchReply *ar = titan__bus__kv_apply_batch_reply__unpack (
        NULL, titan_envelope_size (r), titan_envelope_data (r));
    ck_assert_int_eq (ar->code, TITAN__BUS__CODE__INVALID_ARGUMENT);
    titan__bus__kv_apply_batch_reply__free_unpacked (ar, NULL);
    titan_envelope_destroy (&r);
    ar = s_apply (&a, first, 2, 12, 12);
    ck_assert_int_eq (ar->code, TITAN__BUS__CODE__INVALID_ARGUMENT);
    ck_assert_ptr_nonnull (strstr (ar->message, "applied index"));
    titan__bus__kv_apply_batch_reply__free_unpacked (ar, NULL);
    ck_assert_uint_eq (s_stats_applied (&a), 11);
    s_cleanup (&a);
    s_cleanup (&b);
}
END_TEST

START_TEST (test_wrong_shard)
{
    tnode_t n;
    s_init (&n, "rw1", NULL);
    ring_cmd_t create = s_create_cmd (16, 3);
    s_op_t op = { &create, 0, NULL, NULL };
    size_t len;
    uint8_t *buf = s_batch (0, &op, 1, 1, 1, &len);
    Titan__Bus__KvApplyBatchReply *ar = s_apply_raw (&n, buf, len);
    free (buf);
    ck_assert_int_eq (ar->code, TITAN__BUS__CODE__INVALID_ARGUMENT);
    ck_assert_ptr_nonnull (strstr (ar->message, "meta group"));
    titan__bus__kv_apply_batch_reply__free_unpacked (ar, NULL);

    Titan__Bus__KvStatsRequest st = TITAN__BUS__KV_STATS_REQUEST__INIT;
    st.shard = 3;
    Titan__Bus__KvSnapshotBegin sb = TITAN__BUS__KV_SNAPSHOT_BEGIN__INIT;
    sb.shard = 0;
    Titan__Bus__KvSnapshotRead sr = TITAN__BUS__KV_SNAPSHOT_READ__INIT;
    sr.shard = 1;
    Titan__Bus__KvSnapshotEnd se = TITAN__BUS__KV_SNAPSHOT_END__INIT;
    se.shard = 2;
    Titan__Bus__KvSnapshotInstall si = TITAN__BUS__KV_SNAPSHOT_INSTALL__INIT;
    si.shard = 7;
    struct { const char *type; const ProtobufCMessage *msg; } reqs [] = {
        { TITAN_T_KV_STATS, &st.base },
        { TITAN_T_KV_SNAPSHOT_BEGIN, &sb.base },
        { TITAN_T_KV_SNAPSHOT_READ, &sr.base },
        { TITAN_T_KV_SNAPSHOT_END, &se.base },
        { TITAN_T_KV_SNAPSHOT_INSTALL, &si.base },
    };
    for (size_t i = 0; i < sizeof reqs / sizeof reqs [0]; i++) {
        titan_envelope_t *r = s_call (&n, reqs [i].type, reqs [i].msg);
        Titan__Bus__AdminReply *a = titan__bus__admin_reply__unpack (NULL,
            titan_envelope_size (r), titan_envelope_data (r));
        ck_assert_ptr_nonnull (a);
        ck_assert_msg (a->code == TITAN__BUS__CODE__INVALID_ARGUMENT, "%s: %d",
                       reqs [i].type, a->code);
        ck_assert_ptr_nonnull (strstr (a->message, "meta group"));
        ck_assert_ptr_nonnull (strstr (a->message, reqs [i].type));
        titan__bus__admin_reply__free_unpacked (a, NULL);
        titan_envelope_destroy (&r);
    }
    //  An unknown request type.
    titan_envelope_t *r = titan_bus_call (n.bus, "ring", "kv.get", NULL, 0, CALL_MS,
                                          s_other, &n);
    Titan__Bus__KvReply *kr = titan__bus__kv_reply__unpack (NULL,
        titan_envelope_size (r), titan_envelope_data (r));
    ck_assert_int_eq (kr->code, TITAN__BUS__CODE__UNIMPLEMENTED);
    titan__bus__kv_reply__free_unpacked (kr, NULL);
    titan_envelope_destroy (&r);
    ck_assert_uint_eq (s_stats_applied (&n), 0);
    s_cleanup (&n);
}
END_TEST

START_TEST (test_restart_and_duplicates)
{
    s_log_init ();
    tnode_t n;
    s_init (&n, "rr1", NULL);
    s_apply_ok (&n, s_log, 4, 1, 4);
    Titan__Bus__RingTable *t = s_next_event (&n);       /* one batch: one event */
    ck_assert_uint_eq (t->epoch, 3);
    titan__bus__ring_table__free_unpacked (t, NULL);
    s_no_event (&n, 200);

    //  The same batch sent again (the raft module re-sends one it got no
    //  answer to) gets the very same reply, and nothing is applied twice.
    s_op_t ops [] = { { &s_log [4], 0, NULL, NULL }, { &s_log [5], 0, NULL, NULL } };
    size_t len;
    uint8_t *buf = s_batch (TITAN_META_SHARD, ops, 2, 5, 6, &len);
    titan_envelope_t *r1 = titan_bus_call (n.bus, "ring", TITAN_T_KV_APPLY_BATCH, buf,
                                           len, CALL_MS, s_other, &n);
    titan_envelope_t *r2 = titan_bus_call (n.bus, "ring", TITAN_T_KV_APPLY_BATCH, buf,
                                           len, CALL_MS, s_other, &n);
    ck_assert_ptr_nonnull (r1);
    ck_assert_ptr_nonnull (r2);
    ck_assert_uint_eq (titan_envelope_size (r1), titan_envelope_size (r2));
    ck_assert_int_eq (memcmp (titan_envelope_data (r1), titan_envelope_data (r2),
                              titan_envelope_size (r1)), 0);
    titan_envelope_destroy (&r1);
    titan_envelope_destroy (&r2);
    t = s_next_event (&n);
    ck_assert_uint_eq (t->epoch, 5);
    titan__bus__ring_table__free_unpacked (t, NULL);
    s_no_event (&n, 200);                 /* one change: one event */

    //  Restart the module: the new incarnation loads the state and
    //  publishes the table once.
    Titan__Bus__ModuleCommand mc = TITAN__BUS__MODULE_COMMAND__INIT;
    mc.name = "ring";
    uint8_t mbuf [64];
    size_t mlen = titan__bus__module_command__pack (&mc, mbuf);
    titan_envelope_t *ar = titan_bus_call (n.bus, TITAN_KERNEL_NAME,
                                           TITAN_T_MODULE_RESTART, mbuf, mlen,
                                           CALL_MS, s_other, &n);
    ck_assert_ptr_nonnull (ar);
    titan_envelope_destroy (&ar);
    t = s_next_event (&n);
    ck_assert_uint_eq (t->epoch, 5);
    ck_assert_uint_eq (t->applied_index, 6);
    s_check_table (t, s_log, 6);
    titan__bus__ring_table__free_unpacked (t, NULL);
    ck_assert_uint_eq (s_stats_applied (&n), 6);

    //  Re-delivered after the restart: ABORTED (result not kept), not
    //  applied again (no event, same epoch and index).
    Titan__Bus__KvApplyBatchReply *rep = s_apply_raw (&n, buf, len);
    ck_assert_int_eq (rep->code, TITAN__BUS__CODE__OK);
    ck_assert_uint_eq (rep->n_results, 2);
    ck_assert_int_eq (rep->results [0]->code, TITAN__BUS__CODE__ABORTED);
    ck_assert_ptr_nonnull (strstr (rep->results [0]->message, "applied before"));
    ck_assert_uint_eq (rep->applied_index, 6);
    titan__bus__kv_apply_batch_reply__free_unpacked (rep, NULL);
    free (buf);
    s_no_event (&n, 200);

    //  Restart the node: state and applied index survive.
    s_stop (&n);
    s_start (&n);
    ck_assert_uint_eq (s_stats_applied (&n), 6);
    t = s_table_request (&n);
    s_check_table (t, s_log, 6);
    ck_assert_uint_eq (t->applied_index, 6);
    titan__bus__ring_table__free_unpacked (t, NULL);
    //  And it goes on from there.
    s_apply_ok (&n, s_log + 6, 2, 7, 8);
    t = s_table_request (&n);
    s_check_table (t, s_log, 8);
    titan__bus__ring_table__free_unpacked (t, NULL);
    s_cleanup (&n);
}
END_TEST

/*  Reads node `n`'s snapshot in chunks of `chunk` bytes.  */
static uint8_t *
s_snapshot_read (tnode_t *n, uint32_t chunk, size_t *size, uint64_t *applied)
{
    Titan__Bus__KvSnapshotBegin b = TITAN__BUS__KV_SNAPSHOT_BEGIN__INIT;
    b.shard = TITAN_META_SHARD;
    titan_envelope_t *r = s_call (n, TITAN_T_KV_SNAPSHOT_BEGIN, &b.base);
    Titan__Bus__KvSnapshotInfo *info = titan__bus__kv_snapshot_info__unpack (NULL,
        titan_envelope_size (r), titan_envelope_data (r));
    titan_envelope_destroy (&r);
    ck_assert_int_eq (info->code, TITAN__BUS__CODE__OK);
    ck_assert_uint_gt (info->total_bytes, 0);
    *applied = info->applied_index;
    uint8_t *data = malloc (info->total_bytes);
    size_t got = 0;
    bool done = false;
    while (!done) {
        Titan__Bus__KvSnapshotRead q = TITAN__BUS__KV_SNAPSHOT_READ__INIT;
        q.shard = TITAN_META_SHARD;
        q.snapshot_id = info->snapshot_id;
        q.offset = got;
        q.max_bytes = chunk;
        r = s_call (n, TITAN_T_KV_SNAPSHOT_READ, &q.base);
        Titan__Bus__KvSnapshotChunk *c = titan__bus__kv_snapshot_chunk__unpack (NULL,
            titan_envelope_size (r), titan_envelope_data (r));
        titan_envelope_destroy (&r);
        ck_assert_int_eq (c->code, TITAN__BUS__CODE__OK);
        ck_assert_uint_eq (c->offset, got);
        ck_assert_uint_le (c->data.len, chunk);
        ck_assert_uint_le (got + c->data.len, info->total_bytes);
        memcpy (data + got, c->data.data, c->data.len);
        got += c->data.len;
        done = c->done;
        titan__bus__kv_snapshot_chunk__free_unpacked (c, NULL);
    }
    ck_assert_uint_eq (got, info->total_bytes);
    Titan__Bus__KvSnapshotEnd e = TITAN__BUS__KV_SNAPSHOT_END__INIT;
    e.shard = TITAN_META_SHARD;
    e.snapshot_id = info->snapshot_id;
    r = s_call (n, TITAN_T_KV_SNAPSHOT_END, &e.base);
    titan_envelope_destroy (&r);
    //  Released: reading it again is NOT_FOUND.
    Titan__Bus__KvSnapshotRead q = TITAN__BUS__KV_SNAPSHOT_READ__INIT;
    q.shard = TITAN_META_SHARD;
    q.snapshot_id = info->snapshot_id;
    r = s_call (n, TITAN_T_KV_SNAPSHOT_READ, &q.base);
    Titan__Bus__KvSnapshotChunk *c = titan__bus__kv_snapshot_chunk__unpack (NULL,
        titan_envelope_size (r), titan_envelope_data (r));
    ck_assert_int_eq (c->code, TITAN__BUS__CODE__NOT_FOUND);
    titan__bus__kv_snapshot_chunk__free_unpacked (c, NULL);
    titan_envelope_destroy (&r);
    titan__bus__kv_snapshot_info__free_unpacked (info, NULL);
    *size = got;
    return data;
}

/*  Sends `data` to `n` as an install stream in chunks; returns the reply
    to the last chunk sent (the caller frees it).  */
static Titan__Bus__KvSnapshotInstallReply *
s_install (tnode_t *n, const uint8_t *data, size_t size, size_t chunk,
           uint64_t announced)
{
    size_t off = 0;
    Titan__Bus__KvSnapshotInstallReply *rep = NULL;
    do {
        size_t len = size - off < chunk ? size - off : chunk;
        Titan__Bus__KvSnapshotInstall q = TITAN__BUS__KV_SNAPSHOT_INSTALL__INIT;
        q.shard = TITAN_META_SHARD;
        q.applied_index = announced;
        q.offset = off;
        q.data.data = (uint8_t *) data + off;
        q.data.len = len;
        q.done = off + len == size;
        titan_envelope_t *r = s_call (n, TITAN_T_KV_SNAPSHOT_INSTALL, &q.base);
        if (rep)
            titan__bus__kv_snapshot_install_reply__free_unpacked (rep, NULL);
        rep = titan__bus__kv_snapshot_install_reply__unpack (NULL,
            titan_envelope_size (r), titan_envelope_data (r));
        titan_envelope_destroy (&r);
        ck_assert_ptr_nonnull (rep);
        if (rep->code != TITAN__BUS__CODE__OK)
            break;
        ck_assert_uint_eq (rep->received, off + len);
        off += len;
    } while (off < size);
    return rep;
}

START_TEST (test_snapshot_install)
{
    s_log_init ();
    tnode_t a, b;
    s_init (&a, "rs1", NULL);
    s_init (&b, "rs2", NULL);
    s_apply_ok (&a, s_log, 7, 1, 9);
    size_t size;
    uint64_t applied;
    uint8_t *snap = s_snapshot_read (&a, 40, &size, &applied);
    ck_assert_uint_eq (applied, 9);

    //  Damaged stream: refused with DATA_LOSS, b unchanged.
    snap [size / 2] ^= 0x10;
    Titan__Bus__KvSnapshotInstallReply *rep = s_install (&b, snap, size, 50, 0);
    ck_assert_int_eq (rep->code, TITAN__BUS__CODE__DATA_LOSS);
    ck_assert_ptr_nonnull (strstr (rep->message, "checksum"));
    titan__bus__kv_snapshot_install_reply__free_unpacked (rep, NULL);
    snap [size / 2] ^= 0x10;
    //  Announced applied index that the stream does not hold: refused.
    rep = s_install (&b, snap, size, 50, 8);
    ck_assert_int_eq (rep->code, TITAN__BUS__CODE__FAILED_PRECONDITION);
    titan__bus__kv_snapshot_install_reply__free_unpacked (rep, NULL);
    //  A chunk out of order: refused.
    Titan__Bus__KvSnapshotInstall q = TITAN__BUS__KV_SNAPSHOT_INSTALL__INIT;
    q.shard = TITAN_META_SHARD;
    q.offset = 10;
    q.data.data = snap;
    q.data.len = 5;
    titan_envelope_t *r = s_call (&b, TITAN_T_KV_SNAPSHOT_INSTALL, &q.base);
    rep = titan__bus__kv_snapshot_install_reply__unpack (NULL,
        titan_envelope_size (r), titan_envelope_data (r));
    ck_assert_int_ne (rep->code, TITAN__BUS__CODE__OK);
    titan__bus__kv_snapshot_install_reply__free_unpacked (rep, NULL);
    titan_envelope_destroy (&r);
    ck_assert_uint_eq (s_stats_applied (&b), 0);
    s_no_event (&b, 100);

    //  The good stream, with its first chunk re-sent: b gets a's table.
    q.offset = 0;
    q.data.len = 30;
    q.applied_index = 9;
    r = s_call (&b, TITAN_T_KV_SNAPSHOT_INSTALL, &q.base);
    titan_envelope_destroy (&r);
    rep = s_install (&b, snap, size, 30, 9);
    ck_assert_int_eq (rep->code, TITAN__BUS__CODE__OK);
    ck_assert_uint_eq (rep->applied_index, 9);
    titan__bus__kv_snapshot_install_reply__free_unpacked (rep, NULL);
    Titan__Bus__RingTable *ev = s_next_event (&b);
    Titan__Bus__RingTable *ta = s_table_request (&a), *tb = s_table_request (&b);
    s_check_table (tb, s_log, 7);
    ck_assert_uint_eq (ta->epoch, tb->epoch);
    ck_assert_uint_eq (ev->epoch, tb->epoch);
    ck_assert_uint_eq (ta->table.len, tb->table.len);
    ck_assert_int_eq (memcmp (ta->table.data, tb->table.data, ta->table.len), 0);
    ck_assert_uint_eq (tb->applied_index, 9);
    titan__bus__ring_table__free_unpacked (ev, NULL);
    titan__bus__ring_table__free_unpacked (ta, NULL);
    titan__bus__ring_table__free_unpacked (tb, NULL);
    ck_assert_uint_eq (s_stats_applied (&b), 9);
    //  b goes on applying after the snapshot, and keeps it over a restart.
    s_apply_ok (&b, s_log + 7, 1, 10, 10);
    s_stop (&b);
    s_start (&b);
    ck_assert_uint_eq (s_stats_applied (&b), 10);
    tb = s_table_request (&b);
    s_check_table (tb, s_log, 8);
    titan__bus__ring_table__free_unpacked (tb, NULL);
    free (snap);
    s_cleanup (&a);
    s_cleanup (&b);
}
END_TEST

START_TEST (test_corrupt_state_file)
{
    s_log_init ();
    tnode_t n;
    s_init (&n, "rc1", NULL);
    s_apply_ok (&n, s_log, 3, 1, 3);
    s_stop (&n);
    char *path = zsys_sprintf ("%s/ring/state", n.dir);
    int fd = open (path, O_RDWR);
    ck_assert_int_ge (fd, 0);
    uint8_t byte;
    ck_assert_int_eq (pread (fd, &byte, 1, 40), 1);
    byte ^= 0x01;
    ck_assert_int_eq (pwrite (fd, &byte, 1, 40), 1);
    close (fd);
    //  The module refuses to start; the node's error names the file.
    char err [1024] = "";
    int rc = s_try_start (&n, err, sizeof err);
    ck_assert_int_ne (rc, 0);
    ck_assert_msg (strstr (err, path) && strstr (err, "checksum"), "error: %s", err);
    zstr_free (&path);
    s_cleanup (&n);
}
END_TEST

START_TEST (test_qr_mismatch)
{
    tnode_t n;
    s_init (&n, "rq1", "        shards = 32\n        replicas = 5\n");
    //  A cluster created with other Q/R than this node's: nothing applied.
    ring_cmd_t create = s_create_cmd (16, 3);
    s_op_t op = { &create, 0, NULL, NULL };
    Titan__Bus__KvApplyBatchReply *r = s_apply (&n, &op, 1, 1, 1);
    ck_assert_int_eq (r->code, TITAN__BUS__CODE__FAILED_PRECONDITION);
    ck_assert_msg (strstr (r->message, "16 shards and 3 replicas")
                   && strstr (r->message, "shards = 32"), "%s", r->message);
    titan__bus__kv_apply_batch_reply__free_unpacked (r, NULL);
    ck_assert_uint_eq (s_stats_applied (&n), 0);
    //  The matching creation applies.
    ring_cmd_t good = s_create_cmd (32, 5);
    s_apply_ok (&n, &good, 1, 1, 1);
    Titan__Bus__RingTable *t = s_next_event (&n);
    ck_assert_uint_eq (t->shards, 32);
    ck_assert_uint_eq (t->replicas, 5);
    titan__bus__ring_table__free_unpacked (t, NULL);
    //  Restarted with other settings: the module refuses to start.
    s_stop (&n);
    n.settings = NULL;
    char err [1024] = "";
    ck_assert_int_ne (s_try_start (&n, err, sizeof err), 0);
    ck_assert_msg (strstr (err, "32 shards and 5 replicas"), "error: %s", err);
    //  Bad settings are refused too.
    n.settings = "        shards = 0\n";
    ck_assert_int_ne (s_try_start (&n, err, sizeof err), 0);
    ck_assert_msg (strstr (err, "shards"), "error: %s", err);
    n.settings = "        shards = 32\n        replicas = 5\n";
    s_start (&n);
    ck_assert_uint_eq (s_stats_applied (&n), 1);
    s_cleanup (&n);
}
END_TEST

/*  Snapshot limits: at most snapshot_max_open pinned; an idle one is
    released after snapshot_idle_ms; offsets past the end are refused.  */
START_TEST (test_snapshot_limits)
{
    tnode_t n;
    s_init (&n, "rl1", "        snapshot_idle_ms = 200\n        snapshot_max_open = 2\n");
    Titan__Bus__KvSnapshotBegin b = TITAN__BUS__KV_SNAPSHOT_BEGIN__INIT;
    b.shard = TITAN_META_SHARD;
    uint64_t ids [3];
    Titan__Bus__Code codes [3];
    for (int i = 0; i < 3; i++) {
        titan_envelope_t *r = s_call (&n, TITAN_T_KV_SNAPSHOT_BEGIN, &b.base);
        Titan__Bus__KvSnapshotInfo *info = titan__bus__kv_snapshot_info__unpack (NULL,
            titan_envelope_size (r), titan_envelope_data (r));
        codes [i] = info->code;
        ids [i] = info->snapshot_id;
        titan__bus__kv_snapshot_info__free_unpacked (info, NULL);
        titan_envelope_destroy (&r);
    }
    ck_assert_int_eq (codes [0], TITAN__BUS__CODE__OK);
    ck_assert_int_eq (codes [1], TITAN__BUS__CODE__OK);
    ck_assert_int_eq (codes [2], TITAN__BUS__CODE__RESOURCE_EXHAUSTED);
    ck_assert_uint_ne (ids [0], ids [1]);
    //  Past the end: refused.
    Titan__Bus__KvSnapshotRead q = TITAN__BUS__KV_SNAPSHOT_READ__INIT;
    q.shard = TITAN_META_SHARD;
    q.snapshot_id = ids [0];
    q.offset = 1000;
    titan_envelope_t *r = s_call (&n, TITAN_T_KV_SNAPSHOT_READ, &q.base);
    Titan__Bus__KvSnapshotChunk *c = titan__bus__kv_snapshot_chunk__unpack (NULL,
        titan_envelope_size (r), titan_envelope_data (r));
    ck_assert_int_eq (c->code, TITAN__BUS__CODE__INVALID_ARGUMENT);
    titan__bus__kv_snapshot_chunk__free_unpacked (c, NULL);
    titan_envelope_destroy (&r);
    //  An idle snapshot is released (polled, with begin, which does not
    //  touch the pinned ones: the machine may be slow).
    int64_t deadline = zclock_mono () + 10000;
    Titan__Bus__Code code = TITAN__BUS__CODE__RESOURCE_EXHAUSTED;
    while (code == TITAN__BUS__CODE__RESOURCE_EXHAUSTED && zclock_mono () < deadline) {
        zclock_sleep (50);
        r = s_call (&n, TITAN_T_KV_SNAPSHOT_BEGIN, &b.base);
        Titan__Bus__KvSnapshotInfo *info = titan__bus__kv_snapshot_info__unpack (NULL,
            titan_envelope_size (r), titan_envelope_data (r));
        code = info->code;
        titan__bus__kv_snapshot_info__free_unpacked (info, NULL);
        titan_envelope_destroy (&r);
    }
    ck_assert_int_eq (code, TITAN__BUS__CODE__OK);
    //  The oldest went first.
    q.offset = 0;
    r = s_call (&n, TITAN_T_KV_SNAPSHOT_READ, &q.base);
    c = titan__bus__kv_snapshot_chunk__unpack (NULL, titan_envelope_size (r),
                                               titan_envelope_data (r));
    ck_assert_int_eq (c->code, TITAN__BUS__CODE__NOT_FOUND);
    titan__bus__kv_snapshot_chunk__free_unpacked (c, NULL);
    titan_envelope_destroy (&r);
    s_cleanup (&n);
}
END_TEST

int
main (void)
{
    Suite *suite = suite_create ("ring_actor");
    TCase *tc = tcase_create ("actor");
    tcase_set_timeout (tc, 120);
    tcase_add_test (tc, test_apply_and_publish);
    tcase_add_test (tc, test_bad_ops_deterministic);
    tcase_add_test (tc, test_wrong_shard);
    tcase_add_test (tc, test_restart_and_duplicates);
    tcase_add_test (tc, test_snapshot_install);
    tcase_add_test (tc, test_snapshot_limits);
    tcase_add_test (tc, test_corrupt_state_file);
    tcase_add_test (tc, test_qr_mismatch);
    suite_add_tcase (suite, tc);
    return titan_check_run (suite, false);
}
