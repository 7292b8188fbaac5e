/*  grpc_gateway read repair (gw_repair.h): each repair is a job that goes
    through raft.status, one forwarded Get per candidate replica until one
    answers, then kv.repair; the job is keyed by the correlation id of the
    request it waits for (bus requests and forwarded calls draw their ids
    from the same counter, titan_bus_next_corr, so they never collide).
    Keys are binary: they appear in logs hex-escaped only.  */
#include "gw_repair.h"
#include "gw_api.h"
#include "gw_route.h"
#include "titan/bus_types.h"
#include "titan/escape.h"
#include "titan/log.h"
#include "titan/module.h"
#include "bus.pb-c.h"
#include "titan.pb-c.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { S_STATUS, S_FETCH, S_REPAIR } s_state_t;

typedef struct {
    uint64_t corr;               /* the request the job waits for */
    s_state_t state;
    gw_call_t *call;             /* the client's Get, or NULL (scrub) */
    uint32_t shard;
    uint8_t *key;
    size_t key_len;
    uint64_t local_revision;     /* the damaged entry's */
    int64_t deadline_ms;
    char damage [256];           /* what the local bitcask said */
    char **targets;              /* client addresses, leader first */
    char **target_ids;
    size_t ntargets, next;
    char last_error [256];
} s_job_t;

struct gw_repair {
    titan_bus_t *bus;
    gw_forward_t *forward;
    char *node_id;
    zlistx_t *jobs;              /* s_job_t *, few at a time */
    gw_repair_stats_t st;
};

static void
s_job_free (s_job_t **job_p)
{
    s_job_t *job = *job_p;
    if (!job)
        return;
    for (size_t i = 0; i < job->ntargets; i++) {
        free (job->targets [i]);
        free (job->target_ids [i]);
    }
    free (job->targets);
    free (job->target_ids);
    free (job->key);
    free (job);
    *job_p = NULL;
}

gw_repair_t *
gw_repair_new (titan_bus_t *bus, gw_forward_t *forward, const char *node_id)
{
    gw_repair_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->bus = bus;
    self->forward = forward;
    self->node_id = strdup (node_id ? node_id : "");
    self->jobs = zlistx_new ();
    if (!self->node_id || !self->jobs) {
        free (self->node_id);
        zlistx_destroy (&self->jobs);
        free (self);
        return NULL;
    }
    return self;
}

void
gw_repair_destroy (gw_repair_t **self_p)
{
    gw_repair_t *self = *self_p;
    if (!self)
        return;
    for (s_job_t *job = zlistx_first (self->jobs); job;
         job = zlistx_next (self->jobs)) {
        if (job->call)
            gw_server_finish (&job->call, GRPC_STATUS_UNAVAILABLE,
                              "the node's gateway is shutting down; retry",
                              NULL, 0);
        s_job_free (&job);
    }
    zlistx_destroy (&self->jobs);
    free (self->node_id);
    free (self);
    *self_p = NULL;
}

bool
gw_repair_is_source (const grpc_metadata_array *metadata)
{
    size_t klen = strlen (GW_REPAIR_SOURCE_KEY);
    for (size_t i = 0; i < metadata->count; i++) {
        const grpc_metadata *md = &metadata->metadata [i];
        if (GRPC_SLICE_LENGTH (md->key) == klen
        &&  memcmp (GRPC_SLICE_START_PTR (md->key), GW_REPAIR_SOURCE_KEY,
                    klen) == 0)
            return true;
    }
    return false;
}

/*  Ends a job (taken out of the list by the caller or never in it): the
    client, if any and not answered yet, gets DATA_LOSS saying why.  */
static void
s_fail (gw_repair_t *self, s_job_t **job_p, const char *why)
{
    s_job_t *job = *job_p;
    char k [160];
    titan_escape (job->key, job->key_len, k, sizeof k);
    titan_log_warning ("grpc_gateway: repair of shard %u key \"%s\" failed: %s",
                       job->shard, k, why);
    self->st.failed++;
    if (job->call) {
        char message [640];
        snprintf (message, sizeof message, "the record of this key on node %s "
                  "is damaged (%.200s) and no healthy replica could be read: "
                  "%.300s", self->node_id, job->damage, why);
        gw_server_finish (&job->call, GRPC_STATUS_DATA_LOSS, message, NULL, 0);
    }
    s_job_free (job_p);
}

/*  Puts the job (not in the list) back in the list, waiting for `corr`. */
static void
s_wait (gw_repair_t *self, s_job_t *job, uint64_t corr)
{
    job->corr = corr;
    zlistx_add_end (self->jobs, job);
}

/*  Sends the job's request to its next candidate, or fails it.  */
static void
s_fetch_next (gw_repair_t *self, s_job_t *job)
{
    while (job->next < job->ntargets) {
        const char *target = job->targets [job->next++];
        Titan__V1__GetRequest get = TITAN__V1__GET_REQUEST__INIT;
        get.key.data = job->key;
        get.key.len = job->key_len;
        get.consistency = TITAN__V1__CONSISTENCY__LINEARIZABLE;
        size_t size = titan__v1__get_request__get_packed_size (&get);
        uint8_t *buf = malloc (size + 1);
        if (!buf)
            break;
        titan__v1__get_request__pack (&get, buf);
        uint64_t corr = titan_bus_next_corr (self->bus);
        int rc = gw_forward_start_md (self->forward, target,
                                      "/titan.v1.KV/Get", buf, size,
                                      job->deadline_ms, 1, corr,
                                      GW_REPAIR_SOURCE_KEY, "1");
        free (buf);
        if (rc == 0) {
            job->state = S_FETCH;
            s_wait (self, job, corr);
            return;
        }
        snprintf (job->last_error, sizeof job->last_error, "%.60s: cannot "
                  "forward: %s", target, strerror (-rc));
    }
    char why [400];
    snprintf (why, sizeof why, "%s", job->ntargets
              ? job->last_error : "no other replica of the shard is known "
                                  "(single node?)");
    s_fail (self, &job, why);
}

/*  Starts a job (not in the list): asks raft for the shard's members.  */
static bool
s_start (gw_repair_t *self, s_job_t *job)
{
    if (zlistx_size (self->jobs) >= GW_REPAIR_MAX_JOBS) {
        s_job_free (&job);
        return false;
    }
    self->st.started++;
    Titan__Bus__RaftStatusRequest q = TITAN__BUS__RAFT_STATUS_REQUEST__INIT;
    uint8_t buf [16];
    size_t size = titan__bus__raft_status_request__pack (&q, buf);
    uint64_t corr = 0;
    int rc = titan_bus_request (self->bus, GW_ROUTE_REPLICATION,
                                TITAN_T_RAFT_STATUS, buf, size, &corr);
    if (rc) {
        char why [160];
        snprintf (why, sizeof why, "cannot ask the raft module for the "
                  "shard's replicas: %s", strerror (-rc));
        s_fail (self, &job, why);
        return true;
    }
    job->state = S_STATUS;
    s_wait (self, job, corr);
    return true;
}

static s_job_t *
s_job_new (uint32_t shard, const uint8_t *key, size_t key_len,
           uint64_t local_revision, const char *damage, int64_t deadline_ms)
{
    s_job_t *job = calloc (1, sizeof *job);
    if (!job)
        return NULL;
    job->key = malloc (key_len ? key_len : 1);
    if (!job->key) {
        free (job);
        return NULL;
    }
    memcpy (job->key, key, key_len);
    job->key_len = key_len;
    job->shard = shard;
    job->local_revision = local_revision;
    job->deadline_ms = deadline_ms;
    snprintf (job->damage, sizeof job->damage, "%s", damage ? damage : "");
    return job;
}

bool
gw_repair_read (gw_repair_t *self, gw_call_t **call_p, const uint8_t *kv_get,
                size_t kv_get_size, const uint8_t *reply, size_t reply_size,
                int64_t deadline_ms)
{
    Titan__Bus__KvReply *kv = titan__bus__kv_reply__unpack (NULL, reply_size,
                                                            reply);
    if (!kv)
        return false;
    bool loss = kv->code == TITAN__BUS__CODE__DATA_LOSS;
    Titan__Bus__KvGet *get = loss ? titan__bus__kv_get__unpack (NULL,
                                        kv_get_size, kv_get) : NULL;
    s_job_t *job = get ? s_job_new (get->shard, get->key.data, get->key.len,
                                    kv->revision, kv->message, deadline_ms)
                       : NULL;
    if (get)
        titan__bus__kv_get__free_unpacked (get, NULL);
    titan__bus__kv_reply__free_unpacked (kv, NULL);
    if (!job)
        return false;
    job->call = *call_p;
    if (!s_start (self, job))
        return false;            /* too many repairs: the job was freed */
    *call_p = NULL;
    return true;
}

void
gw_repair_corrupt (gw_repair_t *self, const uint8_t *payload, size_t size)
{
    Titan__Bus__KvCorrupt *ev = titan__bus__kv_corrupt__unpack (NULL, size,
                                                                payload);
    if (!ev)
        return;
    s_job_t *job = s_job_new (ev->shard, ev->key.data, ev->key.len,
                              ev->revision, ev->reason,
                              zclock_mono () + GW_REPAIR_SCRUB_DEADLINE_MS);
    titan__bus__kv_corrupt__free_unpacked (ev, NULL);
    if (job && !s_start (self, job))
        titan_log_warning ("grpc_gateway: %d repairs in progress: a damaged "
                           "record reported by the scrub waits for its next "
                           "pass", GW_REPAIR_MAX_JOBS);
}

/*  Takes the job waiting for `corr` out of the list.  */
static s_job_t *
s_take (gw_repair_t *self, uint64_t corr)
{
    for (s_job_t *job = zlistx_first (self->jobs); job;
         job = zlistx_next (self->jobs))
        if (job->corr == corr) {
            zlistx_delete (self->jobs, zlistx_cursor (self->jobs));
            return job;
        }
    return NULL;
}

/*  raft.status answered: the candidates are the shard's other members.  */
static void
s_on_status (gw_repair_t *self, s_job_t *job, const uint8_t *data, size_t size)
{
    Titan__Bus__RaftStatusReply *st = titan__bus__raft_status_reply__unpack (
        NULL, size, data);
    const Titan__Bus__RaftGroupStatus *group = NULL;
    for (size_t i = 0; st && i < st->n_groups; i++)
        if (st->groups [i]->shard == job->shard)
            group = st->groups [i];
    size_t n = group ? group->n_members : 0;
    job->targets = calloc (n ? n : 1, sizeof *job->targets);
    job->target_ids = calloc (n ? n : 1, sizeof *job->target_ids);
    for (int pass = 0; pass < 2 && job->targets && job->target_ids; pass++)
        for (size_t i = 0; i < n; i++) {
            const Titan__Bus__RaftMember *m = group->members [i];
            bool leader = streq (m->node_id, group->leader_id);
            if (streq (m->node_id, self->node_id) || !*m->client_addr
            ||  (pass == 0) != leader)
                continue;
            job->targets [job->ntargets] = strdup (m->client_addr);
            job->target_ids [job->ntargets] = strdup (m->node_id);
            if (job->targets [job->ntargets] && job->target_ids [job->ntargets])
                job->ntargets++;
        }
    if (st)
        titan__bus__raft_status_reply__free_unpacked (st, NULL);
    s_fetch_next (self, job);
}

bool
gw_repair_bus_reply (gw_repair_t *self, const titan_envelope_t *env)
{
    s_job_t *job = s_take (self, env->corr);
    if (!job)
        return false;
    const uint8_t *data = titan_envelope_data (env);
    size_t size = titan_envelope_size (env);
    if (job->state == S_STATUS) {
        s_on_status (self, job, data, size);
        return true;
    }
    /* kv.repair answered */
    Titan__Bus__KvReply *kv = titan__bus__kv_reply__unpack (NULL, size, data);
    char k [160];
    titan_escape (job->key, job->key_len, k, sizeof k);
    if (kv && kv->code == TITAN__BUS__CODE__OK) {
        self->st.repaired++;
        titan_log_info ("grpc_gateway: repaired shard %u key \"%s\" (revision %"
                        PRIu64 ") from node %s", job->shard, k,
                        job->local_revision, job->target_ids [job->next - 1]);
    }
    else {
        self->st.failed++;
        titan_log_warning ("grpc_gateway: shard %u key \"%s\": the storage "
                           "module did not rewrite it: %s", job->shard, k,
                           kv && kv->message ? kv->message : "bad reply");
    }
    if (kv)
        titan__bus__kv_reply__free_unpacked (kv, NULL);
    s_job_free (&job);
    return true;
}

bool
gw_repair_forwarded (gw_repair_t *self, const gw_fwd_result_t *res)
{
    s_job_t *job = s_take (self, res->corr);
    if (!job)
        return false;
    Titan__V1__GetResponse *got = NULL;
    bool deleted = res->code == GRPC_STATUS_NOT_FOUND;
    if (res->code == GRPC_STATUS_OK) {
        got = titan__v1__get_response__unpack (NULL, res->size, res->response);
        if (!got)
            snprintf (job->last_error, sizeof job->last_error, "%.60s: "
                      "malformed GetResponse", res->target);
    }
    else
    if (!deleted)
        snprintf (job->last_error, sizeof job->last_error, "%.60s: %s: %.150s",
                  res->target, gw_status_name (res->code), res->details);
    if (!got && !deleted) {
        s_fetch_next (self, job);
        return true;
    }
    self->st.fetched++;
    /* the client first: it has waited long enough */
    if (job->call) {
        if (deleted)
            gw_server_finish (&job->call, GRPC_STATUS_NOT_FOUND,
                              "key not found", NULL, 0);
        else
            gw_server_finish (&job->call, GRPC_STATUS_OK, "", res->response,
                              res->size);
    }
    Titan__Bus__KvRepair rep = TITAN__BUS__KV_REPAIR__INIT;
    rep.shard = job->shard;
    rep.key.data = job->key;
    rep.key.len = job->key_len;
    if (got) {
        rep.value = got->value;
        rep.revision = got->revision;
    }
    rep.local_revision = job->local_revision;
    rep.deleted = deleted;
    size_t size = titan__bus__kv_repair__get_packed_size (&rep);
    uint8_t *buf = malloc (size + 1);
    if (buf)
        titan__bus__kv_repair__pack (&rep, buf);
    if (got)
        titan__v1__get_response__free_unpacked (got, NULL);
    uint64_t corr = 0;
    int rc = buf ? titan_bus_request (self->bus, GW_ROUTE_STORAGE,
                                      TITAN_T_KV_REPAIR, buf, size, &corr)
                 : -ENOMEM;
    free (buf);
    if (rc) {
        char why [160];
        snprintf (why, sizeof why, "cannot send kv.repair: %s", strerror (-rc));
        s_fail (self, &job, why);
        return true;
    }
    job->state = S_REPAIR;
    s_wait (self, job, corr);
    return true;
}

int
gw_repair_expire (gw_repair_t *self, int cap)
{
    int64_t now = zclock_mono ();
    int64_t next = now + cap;
    s_job_t *job = zlistx_first (self->jobs);
    while (job) {
        if (job->deadline_ms <= now) {
            zlistx_delete (self->jobs, zlistx_cursor (self->jobs));
            char why [400];
            snprintf (why, sizeof why, "deadline passed %s (last error: %s)",
                      job->state == S_STATUS ? "asking raft for the replicas"
                      : job->state == S_FETCH ? "reading a healthy replica"
                                              : "rewriting the record",
                      *job->last_error ? job->last_error : "none");
            s_fail (self, &job, why);
            job = zlistx_first (self->jobs);   /* the cursor moved: restart */
            continue;
        }
        if (job->deadline_ms < next)
            next = job->deadline_ms;
        job = zlistx_next (self->jobs);
    }
    return (int) (next - now);
}

void
gw_repair_stats (gw_repair_t *self, gw_repair_stats_t *stats)
{
    *stats = self->st;
}
