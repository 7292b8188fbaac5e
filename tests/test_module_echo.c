/*  Test module "echo": answers requests on the bus, for the kernel tests
    and the bus benchmark.

    Requests (the reply carries the request's type):
      echo         -> the payload, unchanged
      echo.info    -> "<node id>/<module name>/<incarnation>"
      echo.drive   -> payload "TARGET COUNT WINDOW [SIZE]": sends COUNT
                      "echo" requests of SIZE payload bytes (default 1,
                      at most 65536) to module TARGET with up to WINDOW in
                      flight, then replies "<elapsed microseconds>"; this
                      is the module-to-module traffic of bench/bus_bench.c
    Built with TEST_MODULE_CRASHABLE (tests/test_module_crash.c) it also
    understands:
      crash        -> payload "N": the actor returns (a crash, as the
                      kernel sees it) when its incarnation is N, else
                      replies "survived <incarnation>"
      hang         -> payload "N MS": when its incarnation is N, stops
                      serving its pipe and bus for MS milliseconds (a hung
                      module); then replies "awake <incarnation>"
    With `on_term_call = TARGET` it calls TARGET once more when told to
    stop and writes the answer to data_dir/<name>.drained.
    The setting `fail_start = 1` makes the actor signal failure at start,
    with a reason in ctx->error; `fail_from = N` does so from incarnation N
    on (a restart that cannot come up).  All state lives on the actor's stack.  */
#include "titan/bus.h"
#include "titan/module.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef TEST_MODULE_NAME
#   define TEST_MODULE_NAME "echo"
#endif

typedef struct {
    titan_bus_t *bus;
    titan_module_ctx_t *ctx;
    /* echo.drive in progress */
    titan_envelope_t *drive_request;
    char target [TITAN_BUS_NAME_MAX + 1];
    long to_send, to_receive, window, in_flight;
    int64_t drive_start;
    uint8_t *drive_payload;             /* SIZE bytes sent with each echo */
    size_t drive_size;
} echo_t;

/*  Sends as many drive requests as the window allows.  */
static void
s_drive_pump (echo_t *self)
{
    while (self->to_send > 0 && self->in_flight < self->window) {
        if (titan_bus_request (self->bus, self->target, "echo",
                               self->drive_payload, self->drive_size,
                               NULL) != 0)
            break;
        self->to_send--;
        self->in_flight++;
    }
}

static void
s_drive_finish (echo_t *self)
{
    char text [32];
    snprintf (text, sizeof text, "%" PRId64, zclock_usecs () - self->drive_start);
    titan_bus_reply (self->bus, self->drive_request, text, strlen (text));
    titan_envelope_destroy (&self->drive_request);
}

/*  Handles one bus envelope; returns false when the actor must return. */
static bool
s_on_bus (echo_t *self, titan_envelope_t *env)
{
    if (env->kind == TITAN_MSG_REPLY) {
        if (self->drive_request && strcmp (env->type, "echo") == 0) {
            self->in_flight--;
            self->to_receive--;
            if (self->to_receive == 0)
                s_drive_finish (self);
            else
                s_drive_pump (self);
        }
        return true;
    }
    if (env->kind != TITAN_MSG_REQUEST)
        return true;
    char arg [128] = "";
    size_t size = titan_envelope_size (env);
    if (size < sizeof arg) {
        memcpy (arg, titan_envelope_data (env), size);
        arg [size] = '\0';
    }
    if (strcmp (env->type, "echo") == 0)
        titan_bus_reply (self->bus, env, titan_envelope_data (env), size);
    else
    if (strcmp (env->type, "echo.info") == 0) {
        char text [200];
        snprintf (text, sizeof text, "%s/%s/%u", self->ctx->node_id,
                  self->ctx->module_name, self->ctx->incarnation);
        titan_bus_reply (self->bus, env, text, strlen (text));
    }
    else
    if (strcmp (env->type, "echo.drive") == 0 && !self->drive_request) {
        long count = 0, window = 0, bytes = 1;
        int fields = sscanf (arg, "%63s %ld %ld %ld", self->target, &count,
                             &window, &bytes);
        uint8_t *payload = NULL;
        if (fields < 3 || count <= 0 || window <= 0 || bytes < 1
        ||  bytes > 65536 || !(payload = malloc ((size_t) bytes))) {
            titan_bus_reply (self->bus, env, "bad drive", 9);
            return true;
        }
        memset (payload, 'x', (size_t) bytes);
        free (self->drive_payload);
        self->drive_payload = payload;
        self->drive_size = (size_t) bytes;
        self->to_send = self->to_receive = count;
        self->window = window;
        self->in_flight = 0;
        self->drive_start = zclock_usecs ();
        self->drive_request = titan_envelope_new (env->to, env->type,
            env->kind, env->corr, NULL, 0);
        memcpy (self->drive_request->from, env->from, sizeof env->from);
        s_drive_pump (self);
    }
#ifdef TEST_MODULE_CRASHABLE
    else
    if (strcmp (env->type, "crash") == 0) {
        if ((unsigned) atoi (arg) == self->ctx->incarnation)
            return false;
        char text [64];
        snprintf (text, sizeof text, "survived %u", self->ctx->incarnation);
        titan_bus_reply (self->bus, env, text, strlen (text));
    }
    else
    if (strcmp (env->type, "hang") == 0) {
        unsigned incarnation = 0;
        int ms = 0;
        if (sscanf (arg, "%u %d", &incarnation, &ms) == 2
        &&  incarnation == self->ctx->incarnation)
            zclock_sleep (ms);
        char text [64];
        snprintf (text, sizeof text, "awake %u", self->ctx->incarnation);
        titan_bus_reply (self->bus, env, text, strlen (text));
    }
#endif
    else
        titan_bus_reply (self->bus, env, "unknown", 7);
    return true;
}

static void
s_echo_actor (zsock_t *pipe, void *args)
{
    titan_module_ctx_t *ctx = (titan_module_ctx_t *) args;
    echo_t self = { NULL, ctx, NULL, "", 0, 0, 0, 0, 0, NULL, 0 };
    int64_t fail_from = titan_setting_int (ctx->settings, "fail_from", -1,
                                           NULL);
    if (titan_setting_int (ctx->settings, "fail_start", 0, NULL) == 1
    ||  (fail_from >= 0 && ctx->incarnation >= (uint64_t) fail_from)) {
        snprintf (ctx->error, sizeof ctx->error, "fail_start is set");
        zsock_signal (pipe, 1);
        return;
    }
    self.bus = titan_bus_connect (ctx->bus_endpoint, ctx->module_name);
    if (!self.bus) {
        snprintf (ctx->error, sizeof ctx->error, "cannot connect to %s",
                  ctx->bus_endpoint);
        zsock_signal (pipe, 1);
        return;
    }
    zpoller_t *poller = zpoller_new (pipe, titan_bus_sock (self.bus), NULL);
    zsock_signal (pipe, 0);
    bool running = true;
    while (running) {
        void *which = zpoller_wait (poller, -1);
        if (which == pipe) {
            char *command = zstr_recv (pipe);
            if (!command || strcmp (command, "$TERM") == 0)
                running = false;
            else
            if (strcmp (command, "PING") == 0)
                zstr_send (pipe, "PONG");
            zstr_free (&command);
        }
        else
        if (which == titan_bus_sock (self.bus)) {
            titan_envelope_t *env = titan_bus_recv (self.bus, 0);
            if (env)
                running = s_on_bus (&self, env);
            titan_envelope_destroy (&env);
        }
        else
        if (zpoller_terminated (poller))
            running = false;
    }
    /* Drain: with `on_term_call = TARGET`, ask TARGET for one more echo
       and record the answer in data_dir/<name>.drained, as a module that
       flushes to another module and closes its files would. */
    const char *target = titan_setting_str (ctx->settings, "on_term_call",
                                            NULL);
    if (target) {
        titan_envelope_t *reply = titan_bus_call (self.bus, target, "echo",
            "bye", 3, 5000, NULL, NULL);
        char *path = zsys_sprintf ("%s/%s.drained", ctx->data_dir,
                                   ctx->module_name);
        FILE *file = path ? fopen (path, "w") : NULL;
        if (file) {
            if (reply)
                fwrite (titan_envelope_data (reply), 1,
                        titan_envelope_size (reply), file);
            fclose (file);
        }
        zstr_free (&path);
        titan_envelope_destroy (&reply);
    }
    titan_envelope_destroy (&self.drive_request);
    free (self.drive_payload);
    zpoller_destroy (&poller);
    titan_bus_destroy (&self.bus);
}

TITAN_MODULE_DEFINE (TEST_MODULE_NAME, "1.0.0", s_echo_actor);
