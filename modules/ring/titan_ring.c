/*  The ring module: a CZMQ actor that is the state machine of the meta
    group and publishes the routing table (docs/ring.md).

    The raft module hosts the meta group (shard TITAN_META_SHARD) with
    "ring" as its storage module, so this actor answers, for that shard
    only, the storage requests the bitcask module answers for data shards:
    kv.stats (the applied index it holds durably), kv.apply_batch (each op
    a PUT of key TITAN_RING_CMD_KEY whose value is one ring_cmd_encode
    command) and the snapshot stream kv.snapshot_begin / read / end /
    install.  Requests for any other shard get INVALID_ARGUMENT.

    Durable state: <data_dir>/ring/state (ring_state_file.h), the encoded
    ring_fsm (membership, applied index, rejection count, CRC-32C),
    replaced atomically after each applied batch.  It is loaded at
    start-up; a damaged file stops the module with an error naming it.

    Q and R are fixed by the meta group's first command, CREATE (see
    ring_member.h), which the bootstrapping node proposes from its own
    `shards` and `replicas` settings; they are then part of the replicated
    state.  Every node checks them against its own settings: a mismatch
    refuses to start (state file), to apply (kv.apply_batch answered
    FAILED_PRECONDITION, nothing applied, so the raft module retries and
    logs) or to install (snapshot), with a message naming both values.

    After every applied batch or install that changed the membership, and
    once at start-up when a membership is known, the actor builds the
    routing table (ring_table_build) and sends a RingTable event (type
    ring.table) to each subscriber; a RingTableRequest is answered with the
    current table, or UNAVAILABLE before the cluster is created.

    Settings (module subtree): shards (16), replicas (3), subscribers
    ("raft,grpc_gateway": comma separated module names), snapshot_chunk_bytes
    (1 MiB), snapshot_idle_ms (60000), snapshot_max_open (16).  */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "titan/log.h"
#include "titan/bus_types.h"
#include "titan/status.h"

#include "ring_actor.h"
#include "ring_hash.h"
#include "ring_place.h"
#include "ring_state_file.h"

#define DRAIN_MAX  256

/* ---------------------------------------------------------- helpers */

void
ring_actor_reply (ring_actor_t *self, titan_envelope_t **env_p,
                  const ProtobufCMessage *msg, uint8_t **copy_p, size_t *copy_size)
{
    titan_envelope_t *env = *env_p;
    size_t len = protobuf_c_message_get_packed_size (msg);
    uint8_t *buf = malloc (len ? len : 1);
    if (buf) {
        protobuf_c_message_pack (msg, buf);
        int rc = titan_bus_reply (self->bus, env, buf, len);
        if (rc)
            titan_log_warning ("ring: reply %s to %s failed: %s", env->type, env->from,
                          strerror (-rc));
    }
    else
        titan_log_error ("ring: out of memory replying to %s", env->type);
    if (copy_p) {
        *copy_p = buf;
        *copy_size = buf ? len : 0;
    }
    else
        free (buf);
    titan_envelope_destroy (env_p);
}

void
ring_actor_refuse (ring_actor_t *self, titan_envelope_t **env_p,
                   Titan__Bus__Code code, const char *message)
{
    Titan__Bus__AdminReply r = TITAN__BUS__ADMIN_REPLY__INIT;
    r.code = code;
    r.message = (char *) message;
    ring_actor_reply (self, env_p, &r.base, NULL, NULL);
}

Titan__Bus__Code
ring_actor_code (int rc)
{
    switch (rc) {
        case 0:
        case -EALREADY:       return TITAN__BUS__CODE__OK;
        case TITAN_ECORRUPT:  return TITAN__BUS__CODE__INVALID_ARGUMENT;
        case -EINVAL:                   /* a transition the life cycle forbids */
        case -ENOENT:                   /* no cluster yet */
        case TITAN_ECONFIG:             /* Q/R differ from this node's */
        case TITAN_EMISMATCH:           return TITAN__BUS__CODE__FAILED_PRECONDITION;
        case -EEXIST:         return TITAN__BUS__CODE__ALREADY_EXISTS;
        case TITAN_ENOTFOUND: return TITAN__BUS__CODE__NOT_FOUND;
        case -ENOSPC:
        case -ENOMEM:
        case TITAN_ETOOBIG:   return TITAN__BUS__CODE__RESOURCE_EXHAUSTED;
        default:              return TITAN__BUS__CODE__UNAVAILABLE;
    }
}

void *
ring_actor_request (ring_actor_t *self, titan_envelope_t **env_p,
                    const ProtobufCMessageDescriptor *desc)
{
    titan_envelope_t *env = *env_p;
    char msg [256];
    ProtobufCMessage *q = protobuf_c_message_unpack (desc, NULL,
        titan_envelope_size (env), titan_envelope_data (env));
    if (!q) {
        snprintf (msg, sizeof msg, "ring: malformed %s", desc->short_name);
        ring_actor_refuse (self, env_p, TITAN__BUS__CODE__INVALID_ARGUMENT, msg);
        return NULL;
    }
    const ProtobufCFieldDescriptor *field =
        protobuf_c_message_descriptor_get_field_by_name (desc, "shard");
    if (!field)
        return q;
    assert (field->type == PROTOBUF_C_TYPE_UINT32);
    uint32_t shard = *(const uint32_t *) ((const char *) q + field->offset);
    if (shard == TITAN_META_SHARD)
        return q;
    protobuf_c_message_free_unpacked (q, NULL);
    snprintf (msg, sizeof msg, "ring: %s for shard %u refused: the ring module "
              "serves only the meta group (shard %u); data shards are the "
              "bitcask module's", env->type, shard, TITAN_META_SHARD);
    ring_actor_refuse (self, env_p, TITAN__BUS__CODE__INVALID_ARGUMENT, msg);
    return NULL;
}

int
ring_actor_check_qr (const ring_actor_t *self, const ring_fsm_t *fsm, char *err,
                     size_t err_size)
{
    const ring_members_t *m = ring_fsm_members (fsm);
    if (!m || (ring_members_shards (m) == self->shards
               && ring_members_replicas (m) == self->replicas))
        return 0;
    snprintf (err, err_size, "ring: the cluster was created with %u shards and %u "
              "replicas but this node's settings say shards = %u, replicas = %u; "
              "set modules/ring/shards and replicas to the cluster's values",
              ring_members_shards (m), ring_members_replicas (m), self->shards,
              self->replicas);
    return TITAN_ECONFIG;
}

/* ---------------------------------------------------------- actor */

static void
s_dispatch (ring_actor_t *self, titan_envelope_t **env_p)
{
    titan_envelope_t *env = *env_p;
    if (env->kind != TITAN_MSG_REQUEST) {
        titan_envelope_destroy (env_p);      /* events, stray replies */
        return;
    }
    if (streq (env->type, TITAN_T_KV_APPLY_BATCH))
        ring_actor_handle_apply (self, env_p);
    else
    if (streq (env->type, TITAN_T_KV_STATS))
        ring_actor_handle_stats (self, env_p);
    else
    if (streq (env->type, TITAN_T_RING_TABLE))
        ring_actor_handle_table (self, env_p);
    else
    if (streq (env->type, TITAN_T_KV_SNAPSHOT_BEGIN))
        ring_actor_handle_snapshot_begin (self, env_p);
    else
    if (streq (env->type, TITAN_T_KV_SNAPSHOT_READ))
        ring_actor_handle_snapshot_read (self, env_p);
    else
    if (streq (env->type, TITAN_T_KV_SNAPSHOT_END))
        ring_actor_handle_snapshot_end (self, env_p);
    else
    if (streq (env->type, TITAN_T_KV_SNAPSHOT_INSTALL))
        ring_actor_handle_snapshot_install (self, env_p);
    else {
        char msg [128];
        snprintf (msg, sizeof msg, "ring: unknown request type '%s'", env->type);
        ring_actor_refuse (self, env_p, TITAN__BUS__CODE__UNIMPLEMENTED, msg);
    }
}

/*  Splits the comma separated module names of `list` into subscribers.  */
static int
s_subscribers (ring_actor_t *self, const char *list, char *err, size_t errlen)
{
    const char *p = list;
    while (*p) {
        size_t len = strcspn (p, ", ");
        if (len) {
            if (len > TITAN_BUS_NAME_MAX
            ||  self->nsubscribers == RING_SUBSCRIBERS_MAX) {
                snprintf (err, errlen, "ring: setting subscribers: at most %d "
                          "module names of at most %d bytes", RING_SUBSCRIBERS_MAX,
                          TITAN_BUS_NAME_MAX);
                return TITAN_ECONFIG;
            }
            self->subscribers [self->nsubscribers] = strndup (p, len);
            if (!self->subscribers [self->nsubscribers++]) {
                snprintf (err, errlen, "ring: out of memory");
                return -ENOMEM;
            }
        }
        p += len + strspn (p + len, ", ");
    }
    return 0;
}

static int
s_settings (ring_actor_t *self, char *err, size_t errlen)
{
    zconfig_t *cfg = self->ctx->settings;
    int bad = 0, st = 0;
#define GET(var, name, def, lo, hi) do { \
        int64_t v_ = titan_setting_int (cfg, name, def, &st); \
        if (st || v_ < (lo) || v_ > (hi)) { \
            snprintf (err, errlen, "ring: setting %s must be a whole number " \
                      "in %lld..%lld", name, (long long) (lo), (long long) (hi)); \
            bad = 1; \
        } \
        else var = v_; \
    } while (0)
    int64_t v = 0;
    GET (v, "shards", RING_DEFAULT_SHARDS, 1, RING_MAX_SHARDS);
    self->shards = (uint32_t) v;
    GET (v, "replicas", RING_DEFAULT_REPLICAS, 1, RING_MAX_REPLICAS);
    self->replicas = (uint32_t) v;
    GET (self->snap_chunk, "snapshot_chunk_bytes", 1 << 20, 64, 16 << 20);
    GET (self->snap_idle_ms, "snapshot_idle_ms", 60000, 10, 86400000);
    GET (self->snap_max_open, "snapshot_max_open", 16, 1, 1024);
#undef GET
    if (bad)
        return TITAN_ECONFIG;
    return s_subscribers (self, titan_setting_str (cfg, "subscribers",
                                                   "raft,grpc_gateway"),
                          err, errlen);
}

/*  Loads <data_dir>/ring/state into `*fsm_p`, or an empty state on a
    fresh node.  */
static int
s_load (ring_actor_t *self, ring_fsm_t **fsm_p, char *err, size_t errlen)
{
    if (snprintf (self->dir, sizeof self->dir, "%s/ring", self->ctx->data_dir)
        >= (int) sizeof self->dir) {
        snprintf (err, errlen, "ring: data directory path too long");
        return -ENAMETOOLONG;
    }
    ring_fsm_t *fsm = NULL;
    int rc = ring_state_file_load (self->dir, &fsm, err, errlen);
    if (rc == -ENOENT) {
        fsm = ring_fsm_new ();
        if (!fsm) {
            snprintf (err, errlen, "ring: out of memory");
            return -ENOMEM;
        }
        rc = 0;
    }
    if (rc == 0)
        rc = ring_actor_check_qr (self, fsm, err, errlen);
    if (rc) {
        ring_fsm_destroy (&fsm);
        return rc;
    }
    *fsm_p = fsm;
    return 0;
}

static void
s_destroy (ring_actor_t **self_p)
{
    ring_actor_t *self = *self_p;
    ring_actor_snapshot_free (self);
    ring_fsm_destroy (&self->fsm);
    ring_table_destroy (&self->table);
    free (self->last_batch);
    free (self->last_reply);
    for (size_t i = 0; i < self->nsubscribers; i++)
        free (self->subscribers [i]);
    titan_bus_destroy (&self->bus);
    free (self);
    *self_p = NULL;
}

static void
s_actor (zsock_t *pipe, void *args)
{
    titan_module_ctx_t *ctx = args;
    titan_log_bind (ctx->logger, ctx->module_name);
    ring_actor_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (ctx->error, sizeof ctx->error, "ring: out of memory");
        zsock_signal (pipe, 1);
        return;
    }
    self->ctx = ctx;
    /* Snapshot ids differ across incarnations, so a stale id misses. */
    self->next_snap_id = ((uint64_t) zclock_time () << 16) | 1;
    ring_fsm_t *loaded = NULL;
    int rc = s_settings (self, ctx->error, sizeof ctx->error);
    if (rc == 0)
        rc = s_load (self, &loaded, ctx->error, sizeof ctx->error);
    if (rc == 0) {
        self->bus = titan_bus_connect (ctx->bus_endpoint, ctx->module_name
                                       ? ctx->module_name : "ring");
        if (!self->bus) {
            snprintf (ctx->error, sizeof ctx->error, "ring: cannot connect to "
                      "the bus at %s", ctx->bus_endpoint);
            rc = -EIO;
        }
    }
    zpoller_t *poller = rc == 0 ? zpoller_new (pipe, titan_bus_sock (self->bus),
                                               NULL) : NULL;
    if (rc == 0 && !poller) {
        snprintf (ctx->error, sizeof ctx->error, "ring: out of memory");
        rc = -ENOMEM;
    }
    if (rc) {
        titan_log_error ("%s", ctx->error);
        ring_fsm_destroy (&loaded);
        s_destroy (&self);
        zsock_signal (pipe, 1);
        return;
    }
    zsock_signal (pipe, 0);
    titan_log_info ("ring: started at applied index %" PRIu64 " (%s)",
               ring_fsm_applied (loaded), ring_fsm_members (loaded)
               ? "membership known" : "no cluster created yet");
    ring_actor_set_state (self, &loaded);      /* publishes a known table */

    while (!self->terminated) {
        int wait = -1;
        if (self->nexports || self->install.active)
            wait = (int) (self->snap_idle_ms / 4 + 1);
        void *which = zpoller_wait (poller, wait);
        if (which == pipe) {
            if (titan_module_pipe_recv (pipe, NULL))
                self->terminated = true;
        }
        else
        if (which == titan_bus_sock (self->bus)) {
            for (int n = 0; n < DRAIN_MAX; n++) {
                titan_envelope_t *env = titan_bus_recv (self->bus, 0);
                if (!env)
                    break;
                s_dispatch (self, &env);
            }
        }
        else
        if (zpoller_terminated (poller))
            self->terminated = true;
        ring_actor_snapshot_expire (self);
    }
    zpoller_destroy (&poller);
    s_destroy (&self);
}

TITAN_MODULE_DEFINE ("ring", "0.1.0", s_actor);
