/*  Tests of the microkernel with real module threads: routing and
    per-sender ordering, load errors, supervisor restarts without message
    loss, hang detection, bounded queues, two nodes in one process, admin
    requests on the bus, and titand as a process.  */
#include "check_run.h"
#include "kernel_test_util.h"
#include "titan/bus_types.h"
#include "titan/status.h"
#include "bus.pb-c.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define ECHO(name) "    " name "\n        path = titan_test_echo.so\n"
#define CRASH(name) "    " name "\n        path = titan_test_crash.so\n"

/* ------------------------------------------------------------ routing */

/*  Sends `count` echo requests to `to` with up to `window` in flight and
    checks that the replies come back in order, each exactly once.  */
static void
s_pipeline (titan_bus_t *bus, const char *to, int count, int window)
{
    int sent = 0, received = 0;
    while (received < count) {
        while (sent < count && sent - received < window) {
            char payload [32];
            snprintf (payload, sizeof payload, "%s-%d", to, sent);
            ck_assert_int_eq (titan_bus_request (bus, to, "echo", payload,
                              strlen (payload), NULL), 0);
            sent++;
        }
        titan_envelope_t *reply = titan_bus_recv (bus, 5000);
        ck_assert_msg (reply != NULL, "no reply %d from %s", received, to);
        char expected [32];
        snprintf (expected, sizeof expected, "%s-%d", to, received);
        ck_assert_int_eq (reply->kind, TITAN_MSG_REPLY);
        ck_assert_str_eq (reply->from, to);
        ck_assert_uint_eq (titan_envelope_size (reply), strlen (expected));
        ck_assert_msg (memcmp (titan_envelope_data (reply), expected,
                               strlen (expected)) == 0,
                       "reply %d out of order", received);
        titan_envelope_destroy (&reply);
        received++;
    }
}

/*  Two senders pipelining to the same module at the same time: each
    sender's replies come back in its own order.  */
static void
s_two_senders (titan_bus_t *a, titan_bus_t *b, const char *to, int count)
{
    titan_bus_t *buses [2] = { a, b };
    int sent [2] = { 0, 0 }, received [2] = { 0, 0 };
    while (received [0] < count || received [1] < count) {
        for (int s = 0; s < 2; s++)
            while (sent [s] < count && sent [s] - received [s] < 32) {
                char payload [32];
                snprintf (payload, sizeof payload, "%d:%d", s, sent [s]);
                ck_assert_int_eq (titan_bus_request (buses [s], to, "echo",
                                  payload, strlen (payload), NULL), 0);
                sent [s]++;
            }
        for (int s = 0; s < 2; s++)
            while (received [s] < sent [s]) {
                titan_envelope_t *reply = titan_bus_recv (buses [s],
                    received [s] < count ? 5000 : 0);
                if (!reply)
                    break;
                char expected [32];
                snprintf (expected, sizeof expected, "%d:%d", s, received [s]);
                ck_assert_uint_eq (titan_envelope_size (reply), strlen (expected));
                ck_assert_msg (!memcmp (titan_envelope_data (reply), expected,
                               strlen (expected)), "sender %d: reply %d out of "
                               "order", s, received [s]);
                titan_envelope_destroy (&reply);
                received [s]++;
                if (received [s] % 8 == 0)
                    break;              /* let the other sender go on */
            }
    }
}

START_TEST (test_routing_many_messages)
{
    char *dir = test_tempdir ();
    titan_node_t *node = test_node_start (test_config ("rt", dir,
        ECHO ("echo1") ECHO ("echo2") ECHO ("echo3"), NULL));
    ck_assert_str_eq (titan_node_id (node), "rt");
    ck_assert_str_eq (titan_node_endpoint (node), "inproc://titan-rt-bus");
    ck_assert_uint_eq (titan_node_module_count (node), 3);
    ck_assert_str_eq (titan_node_module_name (node, 2), "echo3");
    ck_assert_ptr_null (titan_node_module_name (node, 3));

    titan_bus_t *c1 = titan_bus_connect (titan_node_endpoint (node), "c1");
    titan_bus_t *c2 = titan_bus_connect (titan_node_endpoint (node), "c2");
    ck_assert_ptr_nonnull (c1);
    ck_assert_ptr_nonnull (c2);
    s_pipeline (c1, "echo1", 3000, 200);
    s_pipeline (c2, "echo2", 3000, 50);
    s_pipeline (c1, "echo3", 500, 1);
    s_two_senders (c1, c2, "echo3", 2000);

    /* Module to module: echo1 drives 2000 round trips to echo2. */
    char *elapsed = test_call (c1, "echo1", "echo.drive", "echo2 2000 16", 10000);
    ck_assert_ptr_nonnull (elapsed);
    ck_assert_int_gt (atol (elapsed), 0);
    free (elapsed);

    /* The kernel rewrites `from`: a forged sender is replaced. */
    titan_envelope_t *env = titan_envelope_new ("echo1", "echo",
        TITAN_MSG_REQUEST, 77, "f", 1);
    titan_bus_send (c2, &env);
    titan_envelope_t *reply = titan_bus_recv (c2, 5000);
    ck_assert_ptr_nonnull (reply);
    ck_assert_uint_eq (reply->corr, 77);
    titan_envelope_destroy (&reply);

    /* A request to a name nobody has gets an UNIMPLEMENTED reply. */
    reply = titan_bus_call (c1, "nobody", "x", NULL, 0, 5000, NULL, NULL);
    ck_assert_ptr_nonnull (reply);
    Titan__Bus__AdminReply *ar = titan__bus__admin_reply__unpack (NULL,
        titan_envelope_size (reply), titan_envelope_data (reply));
    ck_assert_ptr_nonnull (ar);
    ck_assert_int_eq (ar->code, TITAN__BUS__CODE__UNIMPLEMENTED);
    ck_assert_ptr_nonnull (strstr (ar->message, "nobody"));
    titan__bus__admin_reply__free_unpacked (ar, NULL);
    titan_envelope_destroy (&reply);

    titan_bus_destroy (&c1);
    titan_bus_destroy (&c2);
    titan_node_destroy (&node);
    ck_assert_ptr_null (node);
    test_rmdir (&dir);
}
END_TEST

/* ------------------------------------------------------------ load errors */

/*  Starting a node whose modules are `modules` must fail with `expect` in
    the error text, at titan_node_new when `at_new`, else at start.  */
static void
s_expect_failure (const char *modules, bool at_new, const char *expect)
{
    char *dir = test_tempdir ();
    zconfig_t *config = test_config ("le", dir, modules, NULL);
    char err [1024] = "";
    titan_node_t *node = titan_node_new (&config, err, sizeof err);
    ck_assert_ptr_null (config);
    if (at_new) {
        ck_assert_msg (node == NULL, "node_new accepted %s", modules);
    }
    else {
        ck_assert_msg (node != NULL, "node_new: %s", err);
        int rc = titan_node_start (node, err, sizeof err);
        ck_assert_int_lt (rc, 0);
        titan_node_destroy (&node);
    }
    ck_assert_msg (strstr (err, expect) != NULL, "error '%s' lacks '%s'",
                   err, expect);
    test_rmdir (&dir);
}

START_TEST (test_load_errors)
{
    s_expect_failure (ECHO ("ok") "    gone\n        path = titan_missing.so\n",
                      true, "modules/gone/path: module file titan_missing.so "
                      "not found in");
    s_expect_failure ("    gone\n        path = /nonexistent/titan_x.so\n",
                      true, "/nonexistent/titan_x.so: No such file");
    s_expect_failure (ECHO ("ok") "    nosym\n        path = titan_test_nosym.so\n",
                      false, "does not export the symbol "
                      "titan_module_descriptor");
    s_expect_failure (ECHO ("ok") "    bad\n        path = titan_test_badabi.so\n",
                      false, "was built for module ABI version 42; this "
                      "titand speaks version 1");
    s_expect_failure (ECHO ("ok") "    fails\n        path = titan_test_echo.so\n"
                      "        fail_start = 1\n",
                      false, "module fails failed to start: fail_start is set");
}
END_TEST

/*  A node that is not started answers no state queries.  */
START_TEST (test_state_before_start)
{
    char err [512];
    zconfig_t *config = test_config ("ls", "/tmp", ECHO ("e"), NULL);
    titan_node_t *node = titan_node_new (&config, err, sizeof err);
    ck_assert_ptr_nonnull (node);
    ck_assert_int_eq (titan_node_module_state (node, "e", NULL, NULL),
                      TITAN_ECLOSED);
    titan_node_destroy (&node);
}
END_TEST

/* ------------------------------------------------------------ admin calls */

static Titan__Bus__AdminReply *
s_admin (titan_bus_t *bus, const char *type, const char *name)
{
    Titan__Bus__ModuleCommand cmd = TITAN__BUS__MODULE_COMMAND__INIT;
    cmd.name = (char *) name;
    uint8_t buffer [128];
    size_t size = titan__bus__module_command__pack (&cmd, buffer);
    titan_envelope_t *reply = titan_bus_call (bus, TITAN_KERNEL_NAME, type,
        buffer, size, 10000, NULL, NULL);
    ck_assert_ptr_nonnull (reply);
    ck_assert_str_eq (reply->from, TITAN_KERNEL_NAME);
    Titan__Bus__AdminReply *ar = titan__bus__admin_reply__unpack (NULL,
        titan_envelope_size (reply), titan_envelope_data (reply));
    titan_envelope_destroy (&reply);
    ck_assert_ptr_nonnull (ar);
    return ar;
}

static Titan__Bus__ModuleListReply *
s_list (titan_bus_t *bus)
{
    titan_envelope_t *reply = titan_bus_call (bus, TITAN_KERNEL_NAME,
        TITAN_T_MODULE_LIST, NULL, 0, 5000, NULL, NULL);
    ck_assert_ptr_nonnull (reply);
    Titan__Bus__ModuleListReply *list = titan__bus__module_list_reply__unpack (
        NULL, titan_envelope_size (reply), titan_envelope_data (reply));
    titan_envelope_destroy (&reply);
    ck_assert_ptr_nonnull (list);
    return list;
}

/* ------------------------------------------------------------ supervisor */

START_TEST (test_restart_without_loss)
{
    char *dir = test_tempdir ();
    titan_node_t *node = test_node_start (test_config ("sv", dir,
        CRASH ("crashy"), "    restart_backoff_ms = 100\n"));
    titan_bus_t *bus = titan_bus_connect (titan_node_endpoint (node), "tester");
    char *info = test_call (bus, "crashy", "echo.info", NULL, 5000);
    ck_assert_str_eq (info, "sv/crashy/0");
    free (info);

    /* Crash incarnation 0, then send 300 requests at once: some reach the
       dying incarnation's socket, the others are held while it is down.
       The crash request itself is in flight when it crashes. */
    uint64_t crash_corr = 0;
    ck_assert_int_eq (titan_bus_request (bus, "crashy", "crash", "0", 1,
                                         &crash_corr), 0);
    for (int i = 0; i < 300; i++) {
        char payload [16];
        snprintf (payload, sizeof payload, "m%d", i);
        ck_assert_int_eq (titan_bus_request (bus, "crashy", "echo", payload,
                                             strlen (payload), NULL), 0);
    }
    /* The crash request is re-delivered to incarnation 1 and survives it;
       then every echo, in order, exactly once. */
    titan_envelope_t *reply = titan_bus_recv (bus, 10000);
    ck_assert_ptr_nonnull (reply);
    ck_assert_uint_eq (reply->corr, crash_corr);
    ck_assert_mem_eq (titan_envelope_data (reply), "survived 1", 10);
    titan_envelope_destroy (&reply);
    for (int i = 0; i < 300; i++) {
        reply = titan_bus_recv (bus, 5000);
        ck_assert_msg (reply != NULL, "echo %d lost", i);
        char expected [16];
        snprintf (expected, sizeof expected, "m%d", i);
        ck_assert_uint_eq (titan_envelope_size (reply), strlen (expected));
        ck_assert_msg (!memcmp (titan_envelope_data (reply), expected,
                                strlen (expected)), "echo %d out of order", i);
        titan_envelope_destroy (&reply);
    }
    ck_assert_ptr_null (titan_bus_recv (bus, 100));     /* no duplicates */

    titan_module_state_t state;
    uint32_t restarts = 0;
    ck_assert_int_eq (titan_node_module_state (node, "crashy", &state,
                                               &restarts), 0);
    ck_assert_int_eq (state, TITAN_MODULE_RUNNING);
    ck_assert_uint_eq (restarts, 1);
    info = test_call (bus, "crashy", "echo.info", NULL, 5000);
    ck_assert_str_eq (info, "sv/crashy/1");
    free (info);
    titan_bus_destroy (&bus);
    titan_node_destroy (&node);
    test_rmdir (&dir);
}
END_TEST

START_TEST (test_hung_module_restarted)
{
    char *dir = test_tempdir ();
    titan_node_t *node = test_node_start (test_config ("hg", dir,
        CRASH ("sleepy"), "    ping_timeout_ms = 200\n"));
    titan_bus_t *bus = titan_bus_connect (titan_node_endpoint (node), "tester");
    /* Incarnation 0 sleeps 1.5 s without answering PING: the supervisor
       gives up on it and starts incarnation 1, which gets the request. */
    char *text = test_call (bus, "sleepy", "hang", "0 1500", 10000);
    ck_assert_ptr_nonnull (text);
    ck_assert_str_eq (text, "awake 1");
    free (text);
    ck_assert (test_wait_state (node, "sleepy", TITAN_MODULE_RUNNING, 1, 5000));
    titan_bus_destroy (&bus);
    zclock_sleep (1600);                /* let the abandoned thread end */
    titan_node_destroy (&node);
    test_rmdir (&dir);
}
END_TEST

START_TEST (test_gives_up_and_answers_unavailable)
{
    char *dir = test_tempdir ();
    titan_node_t *node = test_node_start (test_config ("gu", dir,
        CRASH ("fragile") ECHO ("steady"), "    restart_max = 2\n"));
    titan_bus_t *bus = titan_bus_connect (titan_node_endpoint (node), "tester");
    /* Crash each incarnation as soon as it is up: 0, 1, 2. */
    for (int i = 0; i < 3; i++) {
        char payload [8];
        snprintf (payload, sizeof payload, "%d", i);
        titan_bus_request (bus, "fragile", "crash", payload, strlen (payload),
                           NULL);
    }
    ck_assert (test_wait_state (node, "fragile", TITAN_MODULE_FAILED, 2, 5000));
    /* A request for a failed module is answered UNAVAILABLE, not lost. */
    titan_envelope_t *reply;
    while ((reply = titan_bus_recv (bus, 200)))
        titan_envelope_destroy (&reply);    /* replies to the held crashes */
    reply = titan_bus_call (bus, "fragile", "echo", "x", 1, 5000, NULL, NULL);
    ck_assert_ptr_nonnull (reply);
    Titan__Bus__AdminReply *ar = titan__bus__admin_reply__unpack (NULL,
        titan_envelope_size (reply), titan_envelope_data (reply));
    ck_assert_ptr_nonnull (ar);
    ck_assert_int_eq (ar->code, TITAN__BUS__CODE__UNAVAILABLE);
    titan__bus__admin_reply__free_unpacked (ar, NULL);
    titan_envelope_destroy (&reply);
    /* The other module is unaffected. */
    char *text = test_call (bus, "steady", "echo", "still here", 5000);
    ck_assert_str_eq (text, "still here");
    free (text);
    titan_bus_destroy (&bus);
    titan_node_destroy (&node);
    test_rmdir (&dir);
}
END_TEST

/*  A module that stops reading for a while (not long enough to be
    declared hung) while a client sends more than the pipes hold: the
    router's sends fail with EAGAIN, the rest is held and drained in
    order once the module reads again; nothing is lost.  */
START_TEST (test_full_pipe_held_in_order)
{
    char *dir = test_tempdir ();
    titan_node_t *node = test_node_start (test_config ("fp", dir,
        CRASH ("busy"), "    ping_timeout_ms = 5000\n"
        "    queue_limit = 100000\n"));
    titan_bus_t *bus = titan_bus_connect (titan_node_endpoint (node), "tester");
    ck_assert_int_eq (titan_bus_request (bus, "busy", "hang", "0 1500", 6,
                                         NULL), 0);
    const int count = 30000;
    int sent = 0, received = 0;
    bool hang_answered = false;
    int64_t deadline = zclock_mono () + 30000;
    while ((received < count || !hang_answered) && zclock_mono () < deadline) {
        while (sent < count) {
            char payload [16];
            snprintf (payload, sizeof payload, "%d", sent);
            int rc = titan_bus_request (bus, "busy", "echo", payload,
                                        strlen (payload), NULL);
            if (rc == -EAGAIN)
                break;                  /* our own pipe is full: read */
            ck_assert_int_eq (rc, 0);
            if (++sent % 1000 == 0)
                break;
        }
        titan_envelope_t *reply;
        while ((reply = titan_bus_recv (bus, sent < count ? 0 : 1000))) {
            if (strcmp (reply->type, "hang") == 0)
                hang_answered = true;
            else {
                char expected [16];
                snprintf (expected, sizeof expected, "%d", received);
                ck_assert_uint_eq (titan_envelope_size (reply),
                                   strlen (expected));
                ck_assert_msg (!memcmp (titan_envelope_data (reply), expected,
                                        strlen (expected)),
                               "reply %d out of order", received);
                received++;
            }
            titan_envelope_destroy (&reply);
        }
    }
    ck_assert_int_eq (received, count);
    ck_assert (hang_answered);
    uint32_t restarts = 99;
    ck_assert_int_eq (titan_node_module_state (node, "busy", NULL, &restarts), 0);
    ck_assert_uint_eq (restarts, 0);
    titan_bus_destroy (&bus);
    titan_node_destroy (&node);
    test_rmdir (&dir);
}
END_TEST

START_TEST (test_failing_restarts_give_up)
{
    char *dir = test_tempdir ();
    titan_node_t *node = test_node_start (test_config ("fr", dir,
        "    doomed\n        path = titan_test_crash.so\n"
        "        fail_from = 1\n", "    restart_max = 3\n"));
    titan_bus_t *bus = titan_bus_connect (titan_node_endpoint (node), "tester");
    titan_bus_request (bus, "doomed", "crash", "0", 1, NULL);
    /* incarnations 1, 2, 3 signal failure at start: then it is failed */
    ck_assert (test_wait_state (node, "doomed", TITAN_MODULE_FAILED, 3, 5000));
    /* the crash request held for it was answered UNAVAILABLE */
    titan_envelope_t *reply = titan_bus_recv (bus, 2000);
    ck_assert_ptr_nonnull (reply);
    Titan__Bus__AdminReply *ar = titan__bus__admin_reply__unpack (NULL,
        titan_envelope_size (reply), titan_envelope_data (reply));
    ck_assert_ptr_nonnull (ar);
    ck_assert_int_eq (ar->code, TITAN__BUS__CODE__UNAVAILABLE);
    titan__bus__admin_reply__free_unpacked (ar, NULL);
    titan_envelope_destroy (&reply);
    titan_bus_destroy (&bus);
    titan_node_destroy (&node);
    test_rmdir (&dir);
}
END_TEST

START_TEST (test_queue_overflow_answered)
{
    char *dir = test_tempdir ();
    titan_node_t *node = test_node_start (test_config ("qo", dir,
        CRASH ("slow"), "    queue_limit = 5\n    restart_backoff_ms = 3000\n"
        "    restart_backoff_max_ms = 3000\n"));
    titan_bus_t *bus = titan_bus_connect (titan_node_endpoint (node), "tester");
    char *text = test_call (bus, "slow", "crash", "0", 200);
    ck_assert_ptr_null (text);          /* it crashed; restart in 3 s */
    ck_assert (test_wait_state (node, "slow", TITAN_MODULE_RESTARTING, 0, 2000));
    /* The queue holds the crash request (re-sent) and 4 more; the next 6
       are answered UNAVAILABLE at once. */
    titan_bus_t *admin = titan_bus_connect (titan_node_endpoint (node), "admin");
    for (int i = 0; i < 10; i++) {
        char payload [8];
        snprintf (payload, sizeof payload, "%d", i);
        titan_bus_request (bus, "slow", "echo", payload, strlen (payload), NULL);
    }
    /* admin.list shows what is held (polled: the admin socket's request may
       be served before all of the tester's) */
    uint64_t held = 0;
    int64_t deadline = zclock_mono () + 2000;
    while (held != 5 && zclock_mono () < deadline) {
        Titan__Bus__ModuleListReply *list = s_list (admin);
        ck_assert_str_eq (list->modules [0]->state, "restarting");
        held = list->modules [0]->held_messages;
        titan__bus__module_list_reply__free_unpacked (list, NULL);
    }
    ck_assert_uint_eq (held, 5);
    titan_bus_destroy (&admin);
    int unavailable = 0, echoed = 0, survived = 0;
    titan_envelope_t *reply;
    while ((reply = titan_bus_recv (bus, 6000))) {
        Titan__Bus__AdminReply *ar = titan__bus__admin_reply__unpack (NULL,
            titan_envelope_size (reply), titan_envelope_data (reply));
        if (titan_envelope_size (reply) > 2 && ar
        &&  ar->code == TITAN__BUS__CODE__UNAVAILABLE) {
            ck_assert_ptr_nonnull (strstr (ar->message, "queue full"));
            unavailable++;
        }
        else
        if (titan_envelope_size (reply) >= 8
        &&  memcmp (titan_envelope_data (reply), "survived", 8) == 0)
            survived++;
        else
            echoed++;
        if (ar)
            titan__bus__admin_reply__free_unpacked (ar, NULL);
        titan_envelope_destroy (&reply);
        if (unavailable + echoed + survived == 11)
            break;
    }
    ck_assert_int_eq (unavailable, 6);
    ck_assert_int_eq (echoed, 4);
    ck_assert_int_eq (survived, 1);
    titan_bus_destroy (&bus);
    titan_node_destroy (&node);
    test_rmdir (&dir);
}
END_TEST

/*  Shutdown stops modules in reverse order and keeps routing while each
    drains: the last module can still call the first one on $TERM.  */
START_TEST (test_shutdown_drains_in_reverse_order)
{
    char *dir = test_tempdir ();
    titan_node_t *node = test_node_start (test_config ("sd", dir,
        ECHO ("sink") "    drainer\n        path = titan_test_echo.so\n"
        "        on_term_call = sink\n", NULL));
    titan_node_destroy (&node);
    char *path = zsys_sprintf ("%s/drainer.drained", dir);
    FILE *file = fopen (path, "r");
    ck_assert_msg (file != NULL, "drainer did not drain");
    char text [16] = "";
    size_t got = fread (text, 1, sizeof text - 1, file);
    fclose (file);
    text [got] = '\0';
    ck_assert_str_eq (text, "bye");
    zstr_free (&path);
    test_rmdir (&dir);
}
END_TEST

/* ------------------------------------------------------------ two nodes */

START_TEST (test_two_nodes_no_crosstalk)
{
    char *dir_a = test_tempdir ();
    char *dir_b = test_tempdir ();
    titan_node_t *a = test_node_start (test_config ("alpha", dir_a,
        ECHO ("echo") CRASH ("crashy"), NULL));
    titan_node_t *b = test_node_start (test_config ("beta", dir_b,
        ECHO ("echo") CRASH ("crashy"), NULL));
    titan_bus_t *ca = titan_bus_connect (titan_node_endpoint (a), "tester");
    titan_bus_t *cb = titan_bus_connect (titan_node_endpoint (b), "tester");
    char *text = test_call (ca, "echo", "echo.info", NULL, 5000);
    ck_assert_str_eq (text, "alpha/echo/0");
    free (text);
    text = test_call (cb, "echo", "echo.info", NULL, 5000);
    ck_assert_str_eq (text, "beta/echo/0");
    free (text);
    /* A crash on alpha restarts alpha's module only. */
    text = test_call (ca, "crashy", "crash", "0", 5000);
    ck_assert_str_eq (text, "survived 1");
    free (text);
    text = test_call (cb, "crashy", "echo.info", NULL, 5000);
    ck_assert_str_eq (text, "beta/crashy/0");
    free (text);
    uint32_t restarts = 99;
    ck_assert_int_eq (titan_node_module_state (b, "crashy", NULL, &restarts), 0);
    ck_assert_uint_eq (restarts, 0);
    ck_assert_int_eq (titan_node_module_state (a, "crashy", NULL, &restarts), 0);
    ck_assert_uint_eq (restarts, 1);
    ck_assert_int_eq (titan_node_module_state (a, "nope", NULL, NULL),
                      TITAN_ENOTFOUND);
    /* Both pipelines at once, interleaved, each in its own order. */
    s_pipeline (ca, "echo", 500, 20);
    s_pipeline (cb, "echo", 500, 20);
    ck_assert_ptr_null (titan_bus_recv (ca, 50));
    ck_assert_ptr_null (titan_bus_recv (cb, 50));

    /* A second node with the same id cannot bind the same bus. */
    zconfig_t *config = test_config ("alpha", dir_a, ECHO ("echo"), NULL);
    char err [512] = "";
    titan_node_t *dup = titan_node_new (&config, err, sizeof err);
    ck_assert_ptr_nonnull (dup);
    ck_assert_int_lt (titan_node_start (dup, err, sizeof err), 0);
    ck_assert_ptr_nonnull (strstr (err, "inproc://titan-alpha-bus"));
    titan_node_destroy (&dup);

    titan_bus_destroy (&ca);
    titan_bus_destroy (&cb);
    titan_node_destroy (&a);
    titan_node_destroy (&b);
    test_rmdir (&dir_a);
    test_rmdir (&dir_b);
}
END_TEST

/* ------------------------------------------------------------ admin */

START_TEST (test_admin_list_restart_reload)
{
    char *dir = test_tempdir ();
    titan_node_t *node = test_node_start (test_config ("ad", dir,
        ECHO ("first") CRASH ("second"), NULL));
    titan_bus_t *bus = titan_bus_connect (titan_node_endpoint (node), "admin");

    Titan__Bus__ModuleListReply *list = s_list (bus);
    ck_assert_int_eq (list->code, TITAN__BUS__CODE__OK);
    ck_assert_uint_eq (list->n_modules, 2);
    ck_assert_str_eq (list->modules [0]->name, "first");
    ck_assert_str_eq (list->modules [0]->version, "1.0.0");
    ck_assert_str_eq (list->modules [0]->state, "running");
    ck_assert_uint_eq (list->modules [0]->restarts, 0);
    ck_assert_uint_eq (list->modules [0]->abi_version, 1);
    ck_assert_ptr_nonnull (strstr (list->modules [0]->path, "titan_test_echo.so"));
    ck_assert_str_eq (list->modules [1]->name, "second");
    titan__bus__module_list_reply__free_unpacked (list, NULL);

    Titan__Bus__AdminReply *ar = s_admin (bus, TITAN_T_MODULE_RESTART, "first");
    ck_assert_int_eq (ar->code, TITAN__BUS__CODE__OK);
    titan__bus__admin_reply__free_unpacked (ar, NULL);
    char *text = test_call (bus, "first", "echo.info", NULL, 5000);
    ck_assert_str_eq (text, "ad/first/1");
    free (text);

    ar = s_admin (bus, TITAN_T_MODULE_RELOAD, "second");
    ck_assert_int_eq (ar->code, TITAN__BUS__CODE__OK);
    titan__bus__admin_reply__free_unpacked (ar, NULL);
    text = test_call (bus, "second", "echo.info", NULL, 5000);
    ck_assert_str_eq (text, "ad/second/1");
    free (text);

    ar = s_admin (bus, TITAN_T_MODULE_RESTART, "nosuch");
    ck_assert_int_eq (ar->code, TITAN__BUS__CODE__NOT_FOUND);
    ck_assert_ptr_nonnull (strstr (ar->message, "nosuch"));
    titan__bus__admin_reply__free_unpacked (ar, NULL);
    ar = s_admin (bus, "admin.bogus", "first");
    ck_assert_int_eq (ar->code, TITAN__BUS__CODE__UNIMPLEMENTED);
    titan__bus__admin_reply__free_unpacked (ar, NULL);

    list = s_list (bus);
    ck_assert_uint_eq (list->modules [0]->restarts, 1);
    ck_assert_uint_eq (list->modules [1]->restarts, 1);
    ck_assert_str_eq (list->modules [1]->state, "running");
    titan__bus__module_list_reply__free_unpacked (list, NULL);

    titan_bus_destroy (&bus);
    titan_node_destroy (&node);
    test_rmdir (&dir);
}
END_TEST

/*  Copies a file (for the hot swap test); rename makes the swap atomic.  */
static void
s_copy (const char *from, const char *to)
{
    char *tmp = zsys_sprintf ("%s.tmp", to);
    FILE *in = fopen (from, "rb");
    FILE *out = fopen (tmp, "wb");
    ck_assert (in && out);
    char buffer [65536];
    size_t got;
    while ((got = fread (buffer, 1, sizeof buffer, in)) > 0)
        ck_assert_uint_eq (fwrite (buffer, 1, got, out), got);
    fclose (in);
    fclose (out);
    ck_assert_int_eq (rename (tmp, to), 0);
    zstr_free (&tmp);
}

/*  Finds a test module file along the module path.  */
static char *
s_module_file (const char *name)
{
    char *dirs = strdup (test_module_path ());
    char *save = NULL, *found = NULL;
    for (char *dir = strtok_r (dirs, ":", &save); dir && !found;
         dir = strtok_r (NULL, ":", &save)) {
        char *path = zsys_sprintf ("%s/%s", dir, name);
        if (access (path, R_OK) == 0)
            found = path;
        else
            zstr_free (&path);
    }
    free (dirs);
    ck_assert_msg (found != NULL, "%s not on the module path", name);
    return found;
}

START_TEST (test_reload_swaps_code)
{
    char *dir = test_tempdir ();
    char *echo = s_module_file ("titan_test_echo.so");
    char *crash = s_module_file ("titan_test_crash.so");
    char *swap = zsys_sprintf ("%s/titan_swap.so", dir);
    s_copy (echo, swap);
    char *modules = zsys_sprintf ("    swap\n        path = \"%s\"\n", swap);
    titan_node_t *node = test_node_start (test_config ("hs", dir, modules,
                                                       NULL));
    titan_bus_t *bus = titan_bus_connect (titan_node_endpoint (node), "admin");
    /* the echo build does not know "crash" */
    char *text = test_call (bus, "swap", "crash", "9", 5000);
    ck_assert_str_eq (text, "unknown");
    free (text);
    /* new code on disk, then reload: the crash build answers */
    s_copy (crash, swap);
    Titan__Bus__AdminReply *ar = s_admin (bus, TITAN_T_MODULE_RELOAD, "swap");
    ck_assert_msg (ar->code == TITAN__BUS__CODE__OK, "%s", ar->message);
    titan__bus__admin_reply__free_unpacked (ar, NULL);
    text = test_call (bus, "swap", "crash", "9", 5000);
    ck_assert_str_eq (text, "survived 1");
    free (text);
    /* a reload of a file with a wrong ABI fails and says why */
    char *badabi = s_module_file ("titan_test_badabi.so");
    s_copy (badabi, swap);
    ar = s_admin (bus, TITAN_T_MODULE_RELOAD, "swap");
    ck_assert_int_eq (ar->code, TITAN__BUS__CODE__FAILED_PRECONDITION);
    ck_assert_ptr_nonnull (strstr (ar->message, "ABI version 42"));
    titan__bus__admin_reply__free_unpacked (ar, NULL);
    titan_module_state_t state;
    ck_assert_int_eq (titan_node_module_state (node, "swap", &state, NULL), 0);
    ck_assert_int_eq (state, TITAN_MODULE_FAILED);
    /* a good file again, and reload brings the failed module back */
    s_copy (echo, swap);
    ar = s_admin (bus, TITAN_T_MODULE_RELOAD, "swap");
    ck_assert_msg (ar->code == TITAN__BUS__CODE__OK, "%s", ar->message);
    titan__bus__admin_reply__free_unpacked (ar, NULL);
    text = test_call (bus, "swap", "echo", "back", 5000);
    ck_assert_str_eq (text, "back");
    free (text);

    titan_bus_destroy (&bus);
    titan_node_destroy (&node);
    zstr_free (&badabi);
    zstr_free (&modules);
    zstr_free (&swap);
    zstr_free (&echo);
    zstr_free (&crash);
    test_rmdir (&dir);
}
END_TEST

/* ------------------------------------------------------------ titand */

/*  Runs titand in `dir` with `argv` and TITAN_CONFIG=`config_file` (if not
    NULL); sends SIGTERM after `run_ms` (if >= 0); returns the exit status
    and the first bytes of stderr in `out`.  */
static int
s_run_titand (const char *dir, char *const argv [], const char *config_file,
              int run_ms, char *out, size_t out_size)
{
    const char *builddir = getenv ("TITAN_BUILDDIR");
    char *binary = zsys_sprintf ("%s/titand", builddir ? builddir : ".");
    char absolute [PATH_MAX];
    ck_assert_ptr_nonnull (realpath (binary, absolute));
    zstr_free (&binary);
    int fds [2];
    ck_assert_int_eq (pipe (fds), 0);
    pid_t pid = fork ();
    ck_assert_int_ge (pid, 0);
    if (pid == 0) {
        dup2 (fds [1], 2);
        close (fds [0]);
        if (chdir (dir) != 0)
            _exit (99);
        if (config_file)
            setenv ("TITAN_CONFIG", config_file, 1);
        execv (absolute, argv);
        _exit (98);
    }
    close (fds [1]);
    if (run_ms >= 0) {
        /* wait until the node made its data directory, then a bit more */
        char *data = zsys_sprintf ("%s/data", dir);
        int64_t deadline = zclock_mono () + 10000;
        struct stat st;
        while (stat (data, &st) != 0 && zclock_mono () < deadline)
            zclock_sleep (10);
        zstr_free (&data);
        zclock_sleep (run_ms);
        kill (pid, SIGTERM);
    }
    int status = 0;
    int64_t deadline = zclock_mono () + 20000;
    while (waitpid (pid, &status, WNOHANG) == 0) {
        ck_assert_msg (zclock_mono () < deadline, "titand did not exit");
        zclock_sleep (10);
    }
    ssize_t got = read (fds [0], out, out_size - 1);
    out [got > 0 ? got : 0] = '\0';
    close (fds [0]);
    ck_assert (WIFEXITED (status));
    return WEXITSTATUS (status);
}

START_TEST (test_titand_process)
{
    char *dir = test_tempdir ();
    char *cfg = zsys_sprintf ("%s/titan.cfg", dir);
    FILE *file = fopen (cfg, "w");
    fprintf (file, "# test node\nnode\n    module_path = \"%s\"\nmodules\n"
             "    echo\n        path = titan_test_echo.so\n",
             test_module_path ());
    fclose (file);
    char out [4096];
    char *plain [] = { "titand", NULL };
    ck_assert_int_eq (s_run_titand (dir, plain, cfg, 200, out, sizeof out), 0);
    struct stat st;
    char *data = zsys_sprintf ("%s/data", dir);
    ck_assert_int_eq (stat (data, &st), 0);     /* ./data was created */
    zstr_free (&data);

    /* A bad config exits non-zero naming file, line and key. */
    file = fopen (cfg, "w");
    fprintf (file, "node\n    id = n1\n    colour = blue\n");
    fclose (file);
    char *bad [] = { "titand", "--config", cfg, NULL };
    ck_assert_int_eq (s_run_titand (dir, bad, NULL, -1, out, sizeof out), 1);
    char *expect = zsys_sprintf ("%s line 3: unknown key 'node/colour'", cfg);
    ck_assert_msg (strstr (out, expect) != NULL, "stderr: %s", out);
    zstr_free (&expect);
    char *badopt [] = { "titand", "--client-addr", "nohost", NULL };
    ck_assert_int_ne (s_run_titand (dir, badopt, NULL, -1, out, sizeof out), 0);
    ck_assert_msg (strstr (out, "option --client-addr") != NULL, "stderr: %s", out);
    zstr_free (&cfg);
    test_rmdir (&dir);
}
END_TEST

/*  Malformed bus messages (wrong frame counts, empty or NUL-holding
    names, a short kind frame, an unknown kind) are dropped by the router
    without harm, and the sender's next well-formed request is served.  */
START_TEST (test_malformed_messages_dropped)
{
    char *dir = test_tempdir ();
    titan_node_t *node = test_node_start (test_config ("mal", dir,
        ECHO ("echo"), NULL));
    zsock_t *raw = zsock_new (ZMQ_DEALER);
    zsock_set_identity (raw, "raw");
    ck_assert_int_eq (zsock_connect (raw, "%s", titan_node_endpoint (node)), 0);
    const byte kc_ok [9] = { TITAN_MSG_REQUEST, 0, 0, 0, 0, 0, 0, 0, 7 };
    const byte kc_bad [9] = { 3, 0, 0, 0, 0, 0, 0, 0, 8 };
    struct { const char *frames [6]; size_t sizes [6]; int count; } bad [] = {
        { { "echo" }, { 4 }, 1 },
        { { "echo", "", "echo", (const char *) kc_ok }, { 4, 0, 4, 9 }, 4 },
        { { "echo", "", "echo", (const char *) kc_ok, "", "" }, { 4, 0, 4, 9, 0, 0 }, 6 },
        { { "", "", "echo", (const char *) kc_ok, "" }, { 0, 0, 4, 9, 0 }, 5 },
        { { "echo", "", "ec\0ho", (const char *) kc_ok, "" }, { 4, 0, 5, 9, 0 }, 5 },
        { { "echo", "", "", (const char *) kc_ok, "" }, { 4, 0, 0, 9, 0 }, 5 },
        { { "echo", "", "echo", (const char *) kc_ok, "" }, { 4, 0, 4, 8, 0 }, 5 },
        { { "echo", "", "echo", (const char *) kc_bad, "" }, { 4, 0, 4, 9, 0 }, 5 },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        zmsg_t *msg = zmsg_new ();
        for (int f = 0; f < bad [i].count; f++)
            zmsg_addmem (msg, bad [i].frames [f], bad [i].sizes [f]);
        ck_assert_int_eq (zmsg_send (&msg, raw), 0);
    }
    titan_envelope_t *req = titan_envelope_new ("echo", "echo",
                                                TITAN_MSG_REQUEST, 9, "hi", 2);
    zmsg_t *msg = titan_envelope_encode (&req);
    ck_assert_int_eq (zmsg_send (&msg, raw), 0);
    zsock_set_rcvtimeo (raw, 10000);
    zmsg_t *reply_msg = zmsg_recv (raw);
    ck_assert_ptr_nonnull (reply_msg);
    titan_envelope_t *reply = titan_envelope_decode (&reply_msg);
    ck_assert_ptr_nonnull (reply);
    ck_assert_int_eq (reply->kind, TITAN_MSG_REPLY);
    ck_assert_uint_eq (reply->corr, 9);      /* none of the bad ones got through */
    ck_assert_uint_eq (titan_envelope_size (reply), 2);
    titan_envelope_destroy (&reply);
    zsock_destroy (&raw);
    titan_node_destroy (&node);
    test_rmdir (&dir);
}
END_TEST

int
main (void)
{
    Suite *suite = suite_create ("kernel_node");
    TCase *tc = tcase_create ("core");
    tcase_set_timeout (tc, 60);
    tcase_add_test (tc, test_routing_many_messages);
    tcase_add_test (tc, test_load_errors);
    tcase_add_test (tc, test_state_before_start);
    tcase_add_test (tc, test_restart_without_loss);
    tcase_add_test (tc, test_hung_module_restarted);
    tcase_add_test (tc, test_gives_up_and_answers_unavailable);
    tcase_add_test (tc, test_full_pipe_held_in_order);
    tcase_add_test (tc, test_failing_restarts_give_up);
    tcase_add_test (tc, test_queue_overflow_answered);
    tcase_add_test (tc, test_shutdown_drains_in_reverse_order);
    tcase_add_test (tc, test_two_nodes_no_crosstalk);
    tcase_add_test (tc, test_malformed_messages_dropped);
    tcase_add_test (tc, test_admin_list_restart_reload);
    tcase_add_test (tc, test_reload_swaps_code);
    tcase_add_test (tc, test_titand_process);
    suite_add_tcase (suite, tc);
    return titan_check_run (suite, false);
}
