/*  Unit tests of the bus library (kernel/libtitan_bus.la): envelope
    encode/decode round trips, rejection of malformed wire messages, the
    module-side bus client against a bare ROUTER standing in for the
    kernel, status names and typed module settings.  */
#include "titan/bus.h"
#include "bus.pb-c.h"
#include "titan/bus_types.h"
#include "titan/module.h"
#include "titan/status.h"

#include <check.h>
#include "check_run.h"
#include <string.h>

/*  Builds a raw wire message from frames given as (data, size) pairs.  */
static zmsg_t *
s_raw (int frames, const char *const *data, const size_t *sizes)
{
    zmsg_t *msg = zmsg_new ();
    for (int i = 0; i < frames; i++)
        zmsg_addmem (msg, data [i], sizes [i]);
    return msg;
}

START_TEST (test_envelope_round_trip)
{
    const uint64_t corrs [] = { 0, 1, 0x0102030405060708ull, UINT64_MAX };
    const titan_msg_kind_t kinds [] = {
        TITAN_MSG_EVENT, TITAN_MSG_REQUEST, TITAN_MSG_REPLY };
    for (size_t c = 0; c < sizeof corrs / sizeof corrs [0]; c++)
    for (size_t k = 0; k < 3; k++) {
        const char payload [] = "pay\0load";
        titan_envelope_t *env = titan_envelope_new ("bitcask", "kv.put",
            kinds [k], corrs [c], payload, sizeof payload);
        ck_assert_ptr_nonnull (env);
        strcpy (env->from, "gateway");
        zmsg_t *msg = titan_envelope_encode (&env);
        ck_assert_ptr_null (env);
        ck_assert_ptr_nonnull (msg);
        ck_assert_int_eq (zmsg_size (msg), 5);

        /* Wire form of the kind+correlation frame: kind, big-endian id. */
        zframe_t *kc = zmsg_first (msg);
        for (int i = 0; i < 3; i++)
            kc = zmsg_next (msg);
        ck_assert_int_eq (zframe_size (kc), 9);
        ck_assert_int_eq (zframe_data (kc) [0], kinds [k]);
        for (int i = 0; i < 8; i++)
            ck_assert_int_eq (zframe_data (kc) [1 + i],
                              (corrs [c] >> (56 - 8 * i)) & 0xff);

        titan_envelope_t *back = titan_envelope_decode (&msg);
        ck_assert_ptr_null (msg);
        ck_assert_ptr_nonnull (back);
        ck_assert_str_eq (back->to, "bitcask");
        ck_assert_str_eq (back->from, "gateway");
        ck_assert_str_eq (back->type, "kv.put");
        ck_assert_int_eq (back->kind, kinds [k]);
        ck_assert_uint_eq (back->corr, corrs [c]);
        ck_assert_uint_eq (titan_envelope_size (back), sizeof payload);
        ck_assert_mem_eq (titan_envelope_data (back), payload, sizeof payload);
        titan_envelope_destroy (&back);
        ck_assert_ptr_null (back);
    }
}
END_TEST

START_TEST (test_envelope_empty_payload)
{
    titan_envelope_t *env = titan_envelope_new ("kernel", TITAN_T_HELLO,
                                                TITAN_MSG_EVENT, 0, NULL, 0);
    ck_assert_ptr_nonnull (env);
    ck_assert_uint_eq (titan_envelope_size (env), 0);
    zmsg_t *msg = titan_envelope_encode (&env);
    titan_envelope_t *back = titan_envelope_decode (&msg);
    ck_assert_ptr_nonnull (back);
    ck_assert_str_eq (back->from, "");
    ck_assert_uint_eq (titan_envelope_size (back), 0);
    titan_envelope_destroy (&back);
    titan_envelope_destroy (&back);     /* destroying NULL is harmless */
}
END_TEST

START_TEST (test_envelope_new_rejects_bad_names)
{
    char longname [TITAN_BUS_NAME_MAX + 2];
    memset (longname, 'x', sizeof longname - 1);
    longname [sizeof longname - 1] = '\0';
    ck_assert_ptr_null (titan_envelope_new ("", "t", TITAN_MSG_EVENT, 0, NULL, 0));
    ck_assert_ptr_null (titan_envelope_new ("a", "", TITAN_MSG_EVENT, 0, NULL, 0));
    ck_assert_ptr_null (titan_envelope_new (NULL, "t", TITAN_MSG_EVENT, 0, NULL, 0));
    ck_assert_ptr_null (titan_envelope_new (longname, "t", TITAN_MSG_EVENT, 0, NULL, 0));
    ck_assert_ptr_null (titan_envelope_new ("a", longname, TITAN_MSG_EVENT, 0, NULL, 0));
    ck_assert_ptr_null (titan_envelope_new ("a", "t", (titan_msg_kind_t) 3, 0, NULL, 0));
    /* The longest legal name is accepted. */
    longname [TITAN_BUS_NAME_MAX] = '\0';
    titan_envelope_t *env = titan_envelope_new (longname, longname,
                                                TITAN_MSG_EVENT, 0, NULL, 0);
    ck_assert_ptr_nonnull (env);
    zmsg_t *msg = titan_envelope_encode (&env);
    env = titan_envelope_decode (&msg);
    ck_assert_ptr_nonnull (env);
    ck_assert_str_eq (env->to, longname);
    titan_envelope_destroy (&env);
}
END_TEST

START_TEST (test_envelope_decode_rejects_malformed)
{
    const char kc_ok [9] = { 1, 0, 0, 0, 0, 0, 0, 0, 7 };
    const char kc_bad_kind [9] = { 3, 0, 0, 0, 0, 0, 0, 0, 7 };
    char longname [TITAN_BUS_NAME_MAX + 1];
    memset (longname, 'y', sizeof longname);

    /* A valid message first, so the cases below differ by one defect. */
    {
        const char *d [] = { "to", "from", "type", kc_ok, "p" };
        size_t s [] = { 2, 4, 4, 9, 1 };
        zmsg_t *msg = s_raw (5, d, s);
        titan_envelope_t *env = titan_envelope_decode (&msg);
        ck_assert_ptr_nonnull (env);
        ck_assert_uint_eq (env->corr, 7);
        titan_envelope_destroy (&env);
    }
    struct { int frames; const char *d [6]; size_t s [6]; const char *why; }
    cases [] = {
        { 4, { "to", "from", "type", kc_ok }, { 2, 4, 4, 9 }, "4 frames" },
        { 6, { "to", "from", "type", kc_ok, "p", "x" }, { 2, 4, 4, 9, 1, 1 }, "6 frames" },
        { 5, { "", "from", "type", kc_ok, "p" }, { 0, 4, 4, 9, 1 }, "empty to" },
        { 5, { "to", "from", "", kc_ok, "p" }, { 2, 4, 0, 9, 1 }, "empty type" },
        { 5, { longname, "from", "type", kc_ok, "p" }, { sizeof longname, 4, 4, 9, 1 }, "long to" },
        { 5, { "to", longname, "type", kc_ok, "p" }, { 2, sizeof longname, 4, 9, 1 }, "long from" },
        { 5, { "to", "from", longname, kc_ok, "p" }, { 2, 4, sizeof longname, 9, 1 }, "long type" },
        { 5, { "t\0o", "from", "type", kc_ok, "p" }, { 3, 4, 4, 9, 1 }, "NUL in to" },
        { 5, { "to", "from", "type", kc_ok, "p" }, { 2, 4, 4, 8, 1 }, "short kind" },
        { 5, { "to", "from", "type", kc_ok, "p" }, { 2, 4, 4, 0, 1 }, "empty kind" },
        { 5, { "to", "from", "type", kc_bad_kind, "p" }, { 2, 4, 4, 9, 1 }, "bad kind" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        zmsg_t *msg = s_raw (cases [i].frames, cases [i].d, cases [i].s);
        titan_envelope_t *env = titan_envelope_decode (&msg);
        ck_assert_msg (env == NULL, "accepted a malformed message: %s",
                       cases [i].why);
        ck_assert_ptr_null (msg);
    }
    zmsg_t *none = NULL;
    ck_assert_ptr_null (titan_envelope_decode (&none));
}
END_TEST

/*  Waits (with a deadline) until `sock` is readable.  */
static void
s_wait_readable (zsock_t *sock)
{
    zmq_pollitem_t item = { zsock_resolve (sock), 0, ZMQ_POLLIN, 0 };
    ck_assert_int_eq (zmq_poll (&item, 1, 5000), 1);
}

START_TEST (test_envelope_send_and_recv_nowait)
{
    zsock_t *a = zsock_new_pair ("@inproc://kernel-bus-nowait");
    zsock_t *b = zsock_new_pair (">inproc://kernel-bus-nowait");
    ck_assert_ptr_nonnull (a);
    ck_assert_ptr_nonnull (b);
    titan_envelope_t *env = NULL;
    ck_assert_int_eq (titan_envelope_recv_nowait (zsock_resolve (b), &env),
                      -EAGAIN);
    ck_assert_ptr_null (env);

    /* A round trip with the raw send. */
    env = titan_envelope_new ("store", "kv.get", TITAN_MSG_REQUEST,
                              0x0102030405060708ull, "key", 3);
    strcpy (env->from, "gw");
    ck_assert_int_eq (titan_envelope_send (&env, zsock_resolve (a)), 0);
    ck_assert_ptr_null (env);
    s_wait_readable (b);
    ck_assert_int_eq (titan_envelope_recv_nowait (zsock_resolve (b), &env), 0);
    ck_assert_str_eq (env->to, "store");
    ck_assert_str_eq (env->from, "gw");
    ck_assert_str_eq (env->type, "kv.get");
    ck_assert_int_eq (env->kind, TITAN_MSG_REQUEST);
    ck_assert_uint_eq (env->corr, 0x0102030405060708ull);
    ck_assert_uint_eq (titan_envelope_size (env), 3);
    ck_assert_mem_eq (titan_envelope_data (env), "key", 3);
    titan_envelope_destroy (&env);
    ck_assert_int_eq (titan_envelope_send (&env, zsock_resolve (a)), -EINVAL);

    /* Malformed messages are consumed and refused, whatever their
       number of parts, and the next message is intact. */
    const char kc_ok [9] = { 2, 0, 0, 0, 0, 0, 0, 0, 9 };
    struct { int frames; const char *d [7]; size_t s [7]; } bad [] = {
        { 1, { "garbage" }, { 7 } },
        { 4, { "to", "from", "type", kc_ok }, { 2, 4, 4, 9 } },
        { 7, { "to", "from", "type", kc_ok, "p", "x", "y" }, { 2, 4, 4, 9, 1, 1, 1 } },
        { 5, { "to", "from", "type", kc_ok, "p" }, { 2, 4, 4, 8, 1 } },
        { 5, { "", "from", "type", kc_ok, "p" }, { 0, 4, 4, 9, 1 } },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        zmsg_t *msg = s_raw (bad [i].frames, bad [i].d, bad [i].s);
        ck_assert_int_eq (zmsg_send (&msg, a), 0);
        s_wait_readable (b);
        ck_assert_int_eq (titan_envelope_recv_nowait (zsock_resolve (b), &env),
                          -EPROTO);
        ck_assert_ptr_null (env);
    }
    const char *d [] = { "to", "", "type", kc_ok, "" };
    size_t sz [] = { 2, 0, 4, 9, 0 };
    zmsg_t *msg = s_raw (5, d, sz);
    ck_assert_int_eq (zmsg_send (&msg, a), 0);
    s_wait_readable (b);
    ck_assert_int_eq (titan_envelope_recv_nowait (zsock_resolve (b), &env), 0);
    ck_assert_str_eq (env->from, "");
    ck_assert_int_eq (env->kind, TITAN_MSG_REPLY);
    ck_assert_uint_eq (env->corr, 9);
    ck_assert_uint_eq (titan_envelope_size (env), 0);
    titan_envelope_destroy (&env);
    ck_assert_int_eq (titan_envelope_recv_nowait (zsock_resolve (b), &env),
                      -EAGAIN);
    zsock_destroy (&b);
    zsock_destroy (&a);
}
END_TEST

/*  titan_envelope_new_take: the buffer is handed over (the pointer is
    nulled), a large one travels by reference, i.e. the receiver reads the
    very bytes the sender packed, and a small one is copied inline; both
    arrive intact; a bad name frees the buffer and fails.  */
START_TEST (test_envelope_new_take)
{
    zsock_t *a = zsock_new_pair ("@inproc://kernel-bus-take");
    zsock_t *b = zsock_new_pair (">inproc://kernel-bus-take");
    ck_assert_ptr_nonnull (a);
    ck_assert_ptr_nonnull (b);
    size_t sizes [] = { 4096, 63, 64, 0 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes [0]; i++) {
        size_t size = sizes [i];
        uint8_t *buf = size ? malloc (size) : NULL;
        ck_assert (size == 0 || buf);
        for (size_t j = 0; j < size; j++)
            buf [j] = (uint8_t) (j * 7 + i);
        const uint8_t *packed = buf;
        titan_envelope_t *env = titan_envelope_new_take ("store", "kv.put",
            TITAN_MSG_REQUEST, 42 + i, &buf, size);
        ck_assert_ptr_nonnull (env);
        ck_assert_ptr_null (buf);
        ck_assert_uint_eq (titan_envelope_size (env), size);
        if (size >= 64)
            ck_assert_ptr_eq (titan_envelope_data (env), packed);
        strcpy (env->from, "gw");
        ck_assert_int_eq (titan_envelope_send (&env, zsock_resolve (a)), 0);
        s_wait_readable (b);
        ck_assert_int_eq (titan_envelope_recv_nowait (zsock_resolve (b), &env),
                          0);
        ck_assert_uint_eq (env->corr, 42 + i);
        ck_assert_uint_eq (titan_envelope_size (env), size);
        if (size >= 64)             /* zero copy end to end */
            ck_assert_ptr_eq (titan_envelope_data (env), packed);
        for (size_t j = 0; j < size; j++)
            ck_assert_uint_eq (titan_envelope_data (env) [j],
                               (uint8_t) (j * 7 + i));
        titan_envelope_destroy (&env);
    }
    uint8_t *buf = malloc (100);
    ck_assert_ptr_nonnull (buf);
    ck_assert_ptr_null (titan_envelope_new_take ("", "kv.put",
        TITAN_MSG_REQUEST, 1, &buf, 100));
    ck_assert_ptr_null (buf);           /* freed, not leaked (ASan suite) */
    zsock_destroy (&b);
    zsock_destroy (&a);
}
END_TEST

/*  A bare ROUTER standing in for the kernel: receives one message and
    returns it decoded, with the sender's routing id in *sender.  */
static titan_envelope_t *
s_router_recv (zsock_t *router, char *sender, size_t sender_size)
{
    zsock_set_rcvtimeo (router, 5000);
    zmsg_t *msg = zmsg_recv (router);
    ck_assert_ptr_nonnull (msg);
    char *id = zmsg_popstr (msg);
    ck_assert_ptr_nonnull (id);
    snprintf (sender, sender_size, "%s", id);
    free (id);
    return titan_envelope_decode (&msg);
}

START_TEST (test_bus_client_against_router)
{
    zsock_t *router = zsock_new_router ("inproc://kernel-bus-test");
    ck_assert_ptr_nonnull (router);
    titan_bus_t *bus = titan_bus_connect ("inproc://kernel-bus-test", "echo");
    ck_assert_ptr_nonnull (bus);
    ck_assert_str_eq (titan_bus_name (bus), "echo");
    ck_assert_ptr_nonnull (titan_bus_sock (bus));

    /* The first message is the hello event to the kernel. */
    char sender [64];
    titan_envelope_t *env = s_router_recv (router, sender, sizeof sender);
    ck_assert_ptr_nonnull (env);
    ck_assert_str_eq (sender, "echo");
    ck_assert_str_eq (env->to, TITAN_KERNEL_NAME);
    ck_assert_str_eq (env->from, "echo");
    ck_assert_str_eq (env->type, TITAN_T_HELLO);
    ck_assert_int_eq (env->kind, TITAN_MSG_EVENT);
    titan_envelope_destroy (&env);

    /* Correlation ids are unique and increasing. */
    uint64_t a = titan_bus_next_corr (bus);
    uint64_t b = titan_bus_next_corr (bus);
    ck_assert_uint_gt (b, a);

    /* A request, answered by hand with titan_bus_reply semantics. */
    uint64_t corr = 0;
    ck_assert_int_eq (titan_bus_request (bus, "store", "kv.get", "k", 1,
                                         &corr), 0);
    env = s_router_recv (router, sender, sizeof sender);
    ck_assert_ptr_nonnull (env);
    ck_assert_int_eq (env->kind, TITAN_MSG_REQUEST);
    ck_assert_uint_eq (env->corr, corr);
    ck_assert_str_eq (env->to, "store");

    /* The same with the buffer handed over: request, then the reply to
       the request just received, which goes back to its sender. */
    uint8_t *buf = malloc (200);
    ck_assert_ptr_nonnull (buf);
    memset (buf, 'v', 200);
    uint64_t corr2 = 0;
    ck_assert_int_eq (titan_bus_request_take (bus, "store", "kv.put", &buf,
                                              200, &corr2), 0);
    ck_assert_ptr_null (buf);
    ck_assert_uint_gt (corr2, corr);
    titan_envelope_t *put = s_router_recv (router, sender, sizeof sender);
    ck_assert_ptr_nonnull (put);
    ck_assert_uint_eq (put->corr, corr2);
    ck_assert_str_eq (put->type, "kv.put");
    ck_assert_uint_eq (titan_envelope_size (put), 200);
    ck_assert_uint_eq (titan_envelope_data (put) [199], 'v');
    titan_envelope_destroy (&put);
    buf = malloc (3);
    ck_assert_ptr_nonnull (buf);
    memcpy (buf, "ack", 3);
    ck_assert_int_eq (titan_bus_reply_take (bus, env, &buf, 3), 0);
    ck_assert_ptr_null (buf);
    titan_envelope_destroy (&env);
    env = s_router_recv (router, sender, sizeof sender);
    ck_assert_ptr_nonnull (env);
    ck_assert_int_eq (env->kind, TITAN_MSG_REPLY);
    ck_assert_uint_eq (env->corr, corr);
    ck_assert_str_eq (env->type, "kv.get");
    ck_assert_uint_eq (titan_envelope_size (env), 3);
    ck_assert_mem_eq (titan_envelope_data (env), "ack", 3);
    titan_envelope_destroy (&env);
    buf = malloc (100);
    ck_assert_ptr_nonnull (buf);
    ck_assert_int_eq (titan_bus_request_take (bus, "", "kv.put", &buf, 100,
                                              NULL), -EINVAL);
    ck_assert_ptr_null (buf);

    /* A protobuf message packed and handed over: request, and the reply
       to it, each decoding to what was packed. */
    Titan__Bus__AdminReply ar = TITAN__BUS__ADMIN_REPLY__INIT;
    ar.code = TITAN__BUS__CODE__UNAVAILABLE;
    char text [300];
    memset (text, 'm', sizeof text - 1);
    text [sizeof text - 1] = '\0';
    ar.message = text;
    uint64_t corr3 = 0;
    ck_assert_int_eq (titan_bus_request_pb (bus, "store", "kv.x", &ar, &corr3),
                      0);
    env = s_router_recv (router, sender, sizeof sender);
    ck_assert_ptr_nonnull (env);
    ck_assert_uint_eq (env->corr, corr3);
    Titan__Bus__AdminReply *back = titan__bus__admin_reply__unpack (NULL,
        titan_envelope_size (env), titan_envelope_data (env));
    ck_assert_ptr_nonnull (back);
    ck_assert_int_eq (back->code, TITAN__BUS__CODE__UNAVAILABLE);
    ck_assert_str_eq (back->message, text);
    titan__bus__admin_reply__free_unpacked (back, NULL);
    ar.message = (char *) "short";
    ck_assert_int_eq (titan_bus_reply_pb (bus, env, &ar), 0);
    titan_envelope_destroy (&env);
    env = s_router_recv (router, sender, sizeof sender);
    ck_assert_ptr_nonnull (env);
    ck_assert_int_eq (env->kind, TITAN_MSG_REPLY);
    ck_assert_uint_eq (env->corr, corr3);
    back = titan__bus__admin_reply__unpack (NULL, titan_envelope_size (env),
                                            titan_envelope_data (env));
    ck_assert_ptr_nonnull (back);
    ck_assert_str_eq (back->message, "short");
    titan__bus__admin_reply__free_unpacked (back, NULL);
    titan_envelope_destroy (&env);

    /* Unroutable arguments are refused before anything is sent. */
    ck_assert_int_eq (titan_bus_request (bus, "", "kv.get", NULL, 0, NULL),
                      -EINVAL);
    titan_envelope_t *null_env = NULL;
    ck_assert_int_eq (titan_bus_send (bus, &null_env), -EINVAL);

    /* recv times out when nothing comes. */
    ck_assert_ptr_null (titan_bus_recv (bus, 10));

    /* A malformed message is dropped by recv, not returned. */
    zstr_sendm (router, "echo");
    zstr_send (router, "garbage");
    ck_assert_ptr_null (titan_bus_recv (bus, 1000));

    /* try_recv: NULL when nothing waits; skips a malformed message and
       returns the well-formed one behind it, in order. */
    ck_assert_ptr_null (titan_bus_try_recv (bus));
    zstr_sendm (router, "echo");
    zstr_send (router, "garbage");
    for (int i = 1; i <= 2; i++) {
        titan_envelope_t *ev = titan_envelope_new ("echo", "noise",
            TITAN_MSG_EVENT, (uint64_t) i, NULL, 0);
        strcpy (ev->from, "kernel");
        zmsg_t *msg = titan_envelope_encode (&ev);
        zmsg_pushstr (msg, "echo");
        ck_assert_int_eq (zmsg_send (&msg, router), 0);
    }
    for (int i = 1; i <= 2; i++) {
        zmq_pollitem_t item = { zsock_resolve (titan_bus_sock (bus)), 0,
                                ZMQ_POLLIN, 0 };
        ck_assert_int_eq (zmq_poll (&item, 1, 5000), 1);
        env = titan_bus_try_recv (bus);
        ck_assert_ptr_nonnull (env);
        ck_assert_uint_eq (env->corr, (uint64_t) i);
        titan_envelope_destroy (&env);
    }
    ck_assert_ptr_null (titan_bus_try_recv (bus));

    titan_bus_destroy (&bus);
    ck_assert_ptr_null (bus);
    titan_bus_destroy (&bus);
    zsock_destroy (&router);
}
END_TEST

/*  The "server" side of the call test: a thread that answers one request
    through the ROUTER after sending an unrelated event first.  */
static void
s_answer_actor (zsock_t *pipe, void *args)
{
    zsock_t *router = (zsock_t *) args;
    zsock_signal (pipe, 0);
    char sender [64];
    titan_envelope_t *hello = s_router_recv (router, sender, sizeof sender);
    titan_envelope_destroy (&hello);
    titan_envelope_t *req = s_router_recv (router, sender, sizeof sender);
    if (req) {
        /* An unrelated event first: call must hand it to `other`. */
        titan_envelope_t *ev = titan_envelope_new (sender, "noise",
            TITAN_MSG_EVENT, 0, "n", 1);
        strcpy (ev->from, "store");
        zmsg_t *msg = titan_envelope_encode (&ev);
        zmsg_pushstr (msg, sender);
        zmsg_send (&msg, router);
        /* Then a reply with a wrong id, which must be skipped. */
        titan_envelope_t *wrong = titan_envelope_new (sender, req->type,
            TITAN_MSG_REPLY, req->corr + 1000, "w", 1);
        msg = titan_envelope_encode (&wrong);
        zmsg_pushstr (msg, sender);
        zmsg_send (&msg, router);
        titan_envelope_t *rep = titan_envelope_new (sender, req->type,
            TITAN_MSG_REPLY, req->corr, "answer", 6);
        strcpy (rep->from, "store");
        msg = titan_envelope_encode (&rep);
        zmsg_pushstr (msg, sender);
        zmsg_send (&msg, router);
        titan_envelope_destroy (&req);
    }
    char *term = zstr_recv (pipe);      /* "$TERM" from zactor_destroy */
    zstr_free (&term);
}

static void
s_count_other (titan_envelope_t **env_p, void *arg)
{
    int *count = (int *) arg;
    if (strcmp ((*env_p)->type, "noise") == 0)
        (*count)++;
    titan_envelope_destroy (env_p);
}

START_TEST (test_bus_call)
{
    zsock_t *router = zsock_new_router ("inproc://kernel-bus-call");
    ck_assert_ptr_nonnull (router);
    zactor_t *server = zactor_new (s_answer_actor, router);
    titan_bus_t *bus = titan_bus_connect ("inproc://kernel-bus-call", "client");
    ck_assert_ptr_nonnull (bus);
    int others = 0;
    titan_envelope_t *reply = titan_bus_call (bus, "store", "kv.get", "k", 1,
                                              5000, s_count_other, &others);
    ck_assert_ptr_nonnull (reply);
    ck_assert_int_eq (reply->kind, TITAN_MSG_REPLY);
    ck_assert_uint_eq (titan_envelope_size (reply), 6);
    ck_assert_mem_eq (titan_envelope_data (reply), "answer", 6);
    ck_assert_int_eq (others, 1);
    titan_envelope_destroy (&reply);

    /* Nobody answers this one: the call times out with NULL. */
    int64_t start = zclock_mono ();
    reply = titan_bus_call (bus, "store", "kv.get", NULL, 0, 50, NULL, NULL);
    ck_assert_ptr_null (reply);
    ck_assert_int_ge (zclock_mono () - start, 50);

    titan_bus_destroy (&bus);
    zactor_destroy (&server);
    zsock_destroy (&router);
}
END_TEST

START_TEST (test_bus_connect_rejects_bad_name)
{
    ck_assert_ptr_null (titan_bus_connect ("inproc://nowhere", ""));
    char longname [TITAN_BUS_NAME_MAX + 2];
    memset (longname, 'z', sizeof longname - 1);
    longname [sizeof longname - 1] = '\0';
    ck_assert_ptr_null (titan_bus_connect ("inproc://nowhere", longname));
}
END_TEST

START_TEST (test_strerror)
{
    ck_assert_str_eq (titan_strerror (0), "success");
    ck_assert_str_eq (titan_strerror (TITAN_EABI),
                      "module ABI version not supported");
    ck_assert_str_eq (titan_strerror (-ENOENT), "No such file or directory");
    ck_assert_str_eq (titan_strerror (-99999), "unknown status");
    ck_assert_str_eq (titan_strerror (5), "unknown status");
    for (int code = -10010; code <= 0; code++)
        ck_assert_ptr_nonnull (titan_strerror (code));
}
END_TEST

START_TEST (test_settings)
{
    zconfig_t *root = zconfig_str_load (
        "bitcask\n"
        "    max_value_bytes = 8388608\n"
        "    negative = -42\n"
        "    padded = \" 17 \"\n"
        "    notnum = 12abc\n"
        "    empty = \"\"\n"
        "    huge = 99999999999999999999\n"
        "    name = \"hello world\"\n"
        "    nested\n"
        "        depth = 3\n");
    ck_assert_ptr_nonnull (root);
    zconfig_t *s = zconfig_locate (root, "bitcask");
    ck_assert_ptr_nonnull (s);
    int status = 99;
    ck_assert_int_eq (titan_setting_int (s, "max_value_bytes", 1, &status),
                      8388608);
    ck_assert_int_eq (status, 0);
    ck_assert_int_eq (titan_setting_int (s, "negative", 1, &status), -42);
    ck_assert_int_eq (status, 0);
    ck_assert_int_eq (titan_setting_int (s, "padded", 1, &status), 17);
    ck_assert_int_eq (status, 0);
    ck_assert_int_eq (titan_setting_int (s, "nested/depth", 1, &status), 3);
    ck_assert_int_eq (status, 0);
    ck_assert_int_eq (titan_setting_int (s, "absent", 77, &status), 77);
    ck_assert_int_eq (status, 0);
    ck_assert_int_eq (titan_setting_int (s, "notnum", 5, &status), 5);
    ck_assert_int_eq (status, -EINVAL);
    ck_assert_int_eq (titan_setting_int (s, "empty", 6, &status), 6);
    ck_assert_int_eq (status, -EINVAL);
    ck_assert_int_eq (titan_setting_int (s, "huge", 7, &status), 7);
    ck_assert_int_eq (status, -EINVAL);
    ck_assert_int_eq (titan_setting_int (s, "name", 8, NULL), 8);
    ck_assert_int_eq (titan_setting_int (NULL, "x", 9, &status), 9);
    ck_assert_int_eq (status, 0);

    ck_assert_str_eq (titan_setting_str (s, "name", "d"), "hello world");
    ck_assert_str_eq (titan_setting_str (s, "absent", "d"), "d");
    ck_assert_ptr_null (titan_setting_str (s, "absent", NULL));
    ck_assert_str_eq (titan_setting_str (NULL, "name", "d"), "d");
    zconfig_destroy (&root);
}
END_TEST

int
main (void)
{
    Suite *suite = suite_create ("kernel_bus");
    TCase *tc = tcase_create ("core");
    tcase_add_test (tc, test_envelope_round_trip);
    tcase_add_test (tc, test_envelope_empty_payload);
    tcase_add_test (tc, test_envelope_new_rejects_bad_names);
    tcase_add_test (tc, test_envelope_decode_rejects_malformed);
    tcase_add_test (tc, test_envelope_send_and_recv_nowait);
    tcase_add_test (tc, test_envelope_new_take);
    tcase_add_test (tc, test_bus_client_against_router);
    tcase_add_test (tc, test_bus_call);
    tcase_add_test (tc, test_bus_connect_rejects_bad_name);
    tcase_add_test (tc, test_strerror);
    tcase_add_test (tc, test_settings);
    suite_add_tcase (suite, tc);
    return titan_check_run (suite, false);
}
