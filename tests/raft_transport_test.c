/*  Tests of the Raft peer transport (modules/raft/raft_transport.c): two
    and three transports on free loopback ports exchange batches; a peer
    that restarts is reached again; malformed inbound batches are refused;
    messages to an unknown or unreachable peer are dropped and counted.  */
#include <check.h>
#include "check_run.h"
#include <czmq.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../modules/raft/raft_transport.h"
#include "test_free_addr.h"

static raft_transport_t *
s_new (const char *id, const char *addr)
{
    raft_transport_t *t = NULL;
    char err [256] = "";
    int rc = raft_transport_new (id, addr, 1 << 20, &t, err, sizeof err);
    ck_assert_msg (rc == 0, "raft_transport_new %s: %s", addr, err);
    return t;
}

/*  Like s_new, but retries while the port is still held by a transport
    just destroyed (ZeroMQ closes sockets asynchronously).  */
static raft_transport_t *
s_new_when_free (const char *id, const char *addr)
{
    raft_transport_t *t = NULL;
    char err [256] = "";
    int64_t deadline = zclock_mono () + 5000;
    int rc;
    while ((rc = raft_transport_new (id, addr, 1 << 20, &t, err, sizeof err)) == -EADDRINUSE
       &&  zclock_mono () < deadline)
        zclock_sleep (20);
    ck_assert_msg (rc == 0, "raft_transport_new %s: %s", addr, err);
    return t;
}

/*  Flushes `from` until `to` receives a batch, within `ms`; returns it,
    or NULL.  */
static zmsg_t *
s_deliver_ms (raft_transport_t *from, raft_transport_t *to, char **sender_p,
              const char *peer, const void *data, size_t size, int ms)
{
    int64_t deadline = zclock_mono () + ms;
    while (zclock_mono () < deadline) {
        if (data)
            raft_transport_queue (from, peer, data, size);
        raft_transport_flush (from);
        zmsg_t *batch = NULL;
        zsock_t *sock = raft_transport_sock (to);
        zpoller_t *poller = zpoller_new (sock, NULL);
        zpoller_wait (poller, 50);
        zpoller_destroy (&poller);
        if (raft_transport_recv (to, sender_p, &batch) > 0)
            return batch;
    }
    return NULL;
}

/*  The same within 5 s.  */
static zmsg_t *
s_deliver (raft_transport_t *from, raft_transport_t *to, char **sender_p,
           const char *peer, const void *data, size_t size)
{
    return s_deliver_ms (from, to, sender_p, peer, data, size, 5000);
}

/*  Delivers `data` from `from` to `to` (5 s) and checks it came from
    `sender_id`.  */
static void
s_expect_from (raft_transport_t *from, raft_transport_t *to, const char *peer,
               const char *data, const char *sender_id)
{
    char *sender = NULL;
    zmsg_t *batch = s_deliver (from, to, &sender, peer, data, strlen (data));
    ck_assert_ptr_nonnull (batch);
    ck_assert_str_eq (sender, sender_id);
    zstr_free (&sender);
    zmsg_destroy (&batch);
}

START_TEST (test_batches_both_ways)
{
    char *addr_a = tu_free_addr (), *addr_b = tu_free_addr ();
    raft_transport_t *a = s_new ("a", addr_a), *b = s_new ("b", addr_b);
    ck_assert_int_eq (raft_transport_set_peer (a, "b", addr_b), 0);
    ck_assert_int_eq (raft_transport_set_peer (b, "a", addr_a), 0);

    char *sender = NULL;
    zmsg_t *batch = s_deliver (a, b, &sender, "b", "hello", 5);
    ck_assert_ptr_nonnull (batch);
    ck_assert_str_eq (sender, "a");
    zstr_free (&sender);
    zmsg_destroy (&batch);

    /* Once connected, several queued messages travel as one batch, in order. */
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq (raft_transport_queue (a, "b", &i, sizeof i), 0);
    ck_assert_int_eq (raft_transport_flush (a), 1);
    batch = s_deliver (a, b, &sender, "b", NULL, 0);
    ck_assert_ptr_nonnull (batch);
    ck_assert_int_eq ((int) zmsg_size (batch), 10);
    int i = 0;
    for (zframe_t *f = zmsg_first (batch); f; f = zmsg_next (batch), i++) {
        int value;
        ck_assert_int_eq ((int) zframe_size (f), (int) sizeof value);
        memcpy (&value, zframe_data (f), sizeof value);
        ck_assert_int_eq (value, i);
    }
    zstr_free (&sender);
    zmsg_destroy (&batch);

    batch = s_deliver (b, a, &sender, "a", "back", 4);
    ck_assert_ptr_nonnull (batch);
    ck_assert_str_eq (sender, "b");
    zstr_free (&sender);
    zmsg_destroy (&batch);

    raft_transport_stats_t stats = raft_transport_stats (a);
    ck_assert_uint_ge (stats.messages_sent, 11);
    raft_transport_destroy (&a);
    raft_transport_destroy (&b);
    ck_assert_ptr_null (a);
    zstr_free (&addr_a);
    zstr_free (&addr_b);
}
END_TEST

START_TEST (test_reconnect_after_peer_restart)
{
    char *addr_a = tu_free_addr (), *addr_b = tu_free_addr ();
    raft_transport_t *a = s_new ("a", addr_a), *b = s_new ("b", addr_b);
    raft_transport_set_peer (a, "b", addr_b);
    char *sender = NULL;
    zmsg_t *batch = s_deliver (a, b, &sender, "b", "one", 3);
    ck_assert_ptr_nonnull (batch);
    zstr_free (&sender);
    zmsg_destroy (&batch);

    raft_transport_destroy (&b);          /* the peer goes away ... */
    raft_transport_queue (a, "b", "lost", 4);
    raft_transport_flush (a);
    b = s_new_when_free ("b", addr_b);    /* ... and comes back on the same port */
    batch = s_deliver (a, b, &sender, "b", "two", 3);
    ck_assert_ptr_nonnull (batch);
    ck_assert_str_eq (sender, "a");
    zstr_free (&sender);
    zmsg_destroy (&batch);
    raft_transport_destroy (&a);
    raft_transport_destroy (&b);
    zstr_free (&addr_a);
    zstr_free (&addr_b);
}
END_TEST

START_TEST (test_unknown_and_unreachable_peers)
{
    char *addr_a = tu_free_addr (), *addr_dead = tu_free_addr ();
    raft_transport_t *a = s_new ("a", addr_a);
    ck_assert_int_eq (raft_transport_queue (a, "nobody", "x", 1), -ENOENT);
    ck_assert_int_eq (raft_transport_set_peer (a, "dead", addr_dead), 0);
    ck_assert_int_eq (raft_transport_queue (a, "dead", "x", 1), 0);
    ck_assert_int_eq (raft_transport_flush (a), 0);   /* not connected: dropped */
    raft_transport_stats_t stats = raft_transport_stats (a);
    ck_assert_uint_eq (stats.batches_dropped, 2);
    ck_assert_int_eq (raft_transport_set_peer (a, "bad", "no-port"), -EINVAL);
    ck_assert_int_eq (raft_transport_set_peer (a, "bad", "host:99999"), -EINVAL);
    ck_assert_int_eq (raft_transport_set_peer (a, "", addr_dead), -EINVAL);
    raft_transport_remove_peer (a, "dead");
    ck_assert_int_eq (raft_transport_queue (a, "dead", "x", 1), -ENOENT);
    raft_transport_destroy (&a);
    zstr_free (&addr_a);
    zstr_free (&addr_dead);
}
END_TEST

/*  Sends a well-formed batch of one message from "r".  */
static void
s_send_good (zsock_t *rogue)
{
    zmsg_t *good = zmsg_new ();
    zmsg_addstr (good, "r");
    zmsg_addstr (good, "payload");
    ck_assert_int_eq (zmsg_send (&good, rogue), 0);
}

/*  Receives on `t` until a well-formed batch from "r" arrives, within
    `ms`; returns its message count (0 if none came).  Batches refused
    with -EMSGSIZE before it are counted in *oversized.  */
static int
s_recv_good (raft_transport_t *t, int ms, int *oversized)
{
    int64_t deadline = zclock_mono () + ms;
    int received = 0;
    while (zclock_mono () < deadline && received == 0) {
        zpoller_t *poller = zpoller_new (raft_transport_sock (t), NULL);
        zpoller_wait (poller, 50);
        zpoller_destroy (&poller);
        char *sender = NULL;
        zmsg_t *batch = NULL;
        int rc;
        while (received == 0 && (rc = raft_transport_recv (t, &sender, &batch)) != 0) {
            if (rc > 0) {
                ck_assert_str_eq (sender, "r");
                received = rc;
            }
            else {
                ck_assert_ptr_null (batch);
                if (rc == -EMSGSIZE)
                    (*oversized)++;
            }
            zstr_free (&sender);
            zmsg_destroy (&batch);
        }
    }
    return received;
}

START_TEST (test_malformed_and_oversized_refused)
{
    char *addr_a = tu_free_addr ();
    raft_transport_t *a = s_new ("a", addr_a);
    zsock_t *rogue = zsock_new (ZMQ_DEALER);
    ck_assert_int_eq (zsock_connect (rogue, "tcp://%s", addr_a), 0);

    zstr_send (rogue, "only-a-sender");          /* no messages */
    zmsg_t *huge = zmsg_new ();                  /* a frame over the limit */
    zmsg_addstr (huge, "r");
    void *big = zmalloc (2 << 20);
    zmsg_addmem (huge, big, 2 << 20);
    free (big);
    zmsg_send (&huge, rogue);
    s_send_good (rogue);

    int oversized = 0;
    s_recv_good (a, 5000, &oversized);
    /* The oversized frame kills its connection (ZeroMQ refuses it before
       allocating); the malformed batch is counted. */
    raft_transport_stats_t stats = raft_transport_stats (a);
    ck_assert_uint_ge (stats.batches_malformed, 1);
    zsock_destroy (&rogue);
    raft_transport_destroy (&a);
    zstr_free (&addr_a);
}
END_TEST

/*  A batch of more messages than a sender may queue (4096) is refused
    with -EMSGSIZE without being kept (each frame is small, so
    ZMQ_MAXMSGSIZE alone would let it through), and the connection goes
    on serving the next, well-formed batch.  */
START_TEST (test_batch_count_bounded)
{
    char *addr_a = tu_free_addr ();
    raft_transport_t *a = s_new ("a", addr_a);
    zsock_t *rogue = zsock_new (ZMQ_DEALER);
    ck_assert_int_eq (zsock_connect (rogue, "tcp://%s", addr_a), 0);

    zmsg_t *many = zmsg_new ();
    zmsg_addstr (many, "r");
    for (int i = 0; i < 5000; i++)
        zmsg_addstr (many, "m");
    zmsg_send (&many, rogue);
    s_send_good (rogue);

    int oversized = 0;
    ck_assert_int_eq (s_recv_good (a, 10000, &oversized), 1);
    ck_assert_int_eq (oversized, 1);       /* refused, before the good one */
    raft_transport_stats_t stats = raft_transport_stats (a);
    ck_assert_uint_eq (stats.batches_malformed, 1);
    ck_assert_uint_eq (stats.messages_received, 1);
    zsock_destroy (&rogue);
    raft_transport_destroy (&a);
    zstr_free (&addr_a);
}
END_TEST

START_TEST (test_bind_errors)
{
    raft_transport_t *t = NULL;
    char err [256] = "";
    ck_assert_int_eq (raft_transport_new ("a", "nonsense", 1024, &t, err, sizeof err), -EINVAL);
    ck_assert_ptr_null (t);
    ck_assert_ptr_nonnull (strstr (err, "nonsense"));
    char *addr = tu_free_addr ();
    raft_transport_t *first = s_new ("a", addr);
    int rc = raft_transport_new ("b", addr, 1024, &t, err, sizeof err);
    ck_assert_int_lt (rc, 0);
    ck_assert_ptr_nonnull (strstr (err, addr));
    raft_transport_destroy (&first);
    /* A host name (a container's service name) listens on every interface. */
    char *port = strrchr (addr, ':') + 1;
    char *named = zsys_sprintf ("localhost:%s", port);
    raft_transport_t *by_name = s_new_when_free ("n", named);
    char *client_addr = tu_free_addr ();
    raft_transport_t *client = s_new ("c", client_addr);
    ck_assert_int_eq (raft_transport_set_peer (client, "n", addr), 0);
    char *sender = NULL;
    zmsg_t *batch = s_deliver (client, by_name, &sender, "n", "hi", 2);
    ck_assert_ptr_nonnull (batch);
    ck_assert_str_eq (sender, "c");
    zstr_free (&sender);
    zmsg_destroy (&batch);
    raft_transport_destroy (&client);
    raft_transport_destroy (&by_name);
    zstr_free (&client_addr);
    zstr_free (&named);
    zstr_free (&addr);
}
END_TEST

/*  CZMQ is initialised and shut down inside each forked test (a ZeroMQ
    context must not cross a fork), so that LeakSanitizer sees it freed.  */
static void
s_setup (void)
{
    zsys_init ();
    zsys_set_logstream (NULL);
}

static void
s_teardown (void)
{
    zsys_shutdown ();
}

/*  Writes a CURVE key pair at dir/name (node id `node`, or none).  */
static char *
s_keypair (const char *dir, const char *name, const char *node)
{
    char *path = zsys_sprintf ("%s/%s", dir, name);
    zcert_t *cert = zcert_new ();
    if (node)
        zcert_set_meta (cert, "node-id", "%s", node);
    ck_assert_int_eq (zcert_save (cert, path), 0);
    zcert_destroy (&cert);
    return path;
}

/*  CURVE settings: the cluster server pair, keys_dir, a node pair (or
    none: generated in data_dir).  */
static raft_curve_t *
s_curve (const char *server, const char *keys, const char *node_cert,
         const char *data_dir, const char *node_id, int expect_rc)
{
    zconfig_t *settings = zconfig_new ("raft", NULL);
    zconfig_put (settings, "curve", "true");
    zconfig_put (settings, "curve_server_cert", server);
    zconfig_put (settings, "curve_keys_dir", keys);
    if (node_cert)
        zconfig_put (settings, "curve_cert", node_cert);
    raft_curve_t *curve = NULL;
    char err [256] = "";
    int rc = raft_curve_new (settings, data_dir, node_id, &curve, err,
                             sizeof err);
    zconfig_destroy (&settings);
    ck_assert_msg (rc == expect_rc, "raft_curve_new: %d (%s)", rc, err);
    return curve;
}

static raft_transport_t *
s_new_curve (const char *id, const char *addr, raft_curve_t *curve)
{
    raft_transport_t *t = NULL;
    char err [256] = "";
    int rc = raft_transport_new_curve (id, addr, 1 << 20, curve, &t, err,
                                       sizeof err);
    ck_assert_msg (rc == 0, "raft_transport_new_curve %s: %s", addr, err);
    return t;
}

/*  CURVE: allowed keys talk; a key outside the allowed set, a plain-text
    peer and a peer that names another node than its key's are refused.  */
START_TEST (test_curve_peers)
{
    char tmpl [] = "/tmp/titan-curve-XXXXXX";
    char *tmp = mkdtemp (tmpl);
    ck_assert_ptr_nonnull (tmp);
    char *keys = zsys_sprintf ("%s/keys", tmp);
    char *other_keys = zsys_sprintf ("%s/other", tmp);
    ck_assert_int_eq (zsys_dir_create ("%s", keys), 0);
    ck_assert_int_eq (zsys_dir_create ("%s", other_keys), 0);
    char *server = s_keypair (tmp, "server.cert", NULL);
    char *cert_a = s_keypair (keys, "a.cert", "a");
    char *cert_b = s_keypair (keys, "b.cert", "b");
    char *cert_c = s_keypair (tmp, "c.cert", "c");        /* not allowed */

    raft_curve_t *ca = s_curve (server, keys, cert_a, tmp, "a", 0);
    raft_curve_t *cb = s_curve (server, keys, cert_b, tmp, "b", 0);
    raft_curve_t *cc = s_curve (server, keys, cert_c, tmp, "c", 0);
    raft_curve_t *cx = s_curve (server, keys, cert_a, tmp, "x", 0);
    /* one authenticator per process: another keys directory is refused */
    ck_assert_ptr_null (s_curve (server, other_keys, cert_a, tmp, "a", -EBUSY));
    /* no curve_cert: a key pair is made in the data directory */
    raft_curve_t *cd = s_curve (server, keys, NULL, tmp, "d", 0);
    char *made = zsys_sprintf ("%s/curve/node.cert_secret", tmp);
    ck_assert (zsys_file_exists (made));

    char *addr_a = tu_free_addr (), *addr_b = tu_free_addr ();
    char *addr_c = tu_free_addr (), *addr_x = tu_free_addr ();
    char *addr_p = tu_free_addr ();
    raft_transport_t *a = s_new_curve ("a", addr_a, ca);
    raft_transport_t *b = s_new_curve ("b", addr_b, cb);
    raft_transport_t *c = s_new_curve ("c", addr_c, cc);
    raft_transport_t *x = s_new_curve ("x", addr_x, cx);
    raft_transport_t *p = s_new ("p", addr_p);             /* plain text */
    ck_assert_int_eq (raft_transport_set_peer (a, "b", addr_b), 0);
    ck_assert_int_eq (raft_transport_set_peer (b, "a", addr_a), 0);
    ck_assert_int_eq (raft_transport_set_peer (c, "b", addr_b), 0);
    ck_assert_int_eq (raft_transport_set_peer (x, "b", addr_b), 0);
    ck_assert_int_eq (raft_transport_set_peer (p, "b", addr_b), 0);

    s_expect_from (a, b, "b", "hello", "a");
    s_expect_from (b, a, "a", "back", "b");

    /* refused: key not allowed, plain text, key of "a" naming "x" */
    char *sender = NULL;
    ck_assert_ptr_null (s_deliver_ms (c, b, &sender, "b", "c", 1, 1500));
    ck_assert_ptr_null (s_deliver_ms (p, b, &sender, "b", "p", 1, 1500));
    ck_assert_ptr_null (s_deliver_ms (x, b, &sender, "b", "x", 1, 1500));
    ck_assert_uint_ge (raft_transport_stats (b).batches_forged, 1);
    /* and the allowed peer still gets through */
    s_expect_from (a, b, "b", "again", "a");

    raft_transport_destroy (&p);
    raft_transport_destroy (&x);
    raft_transport_destroy (&c);
    raft_transport_destroy (&b);
    raft_transport_destroy (&a);
    raft_curve_destroy (&cd);
    raft_curve_destroy (&cx);
    raft_curve_destroy (&cc);
    raft_curve_destroy (&cb);
    raft_curve_destroy (&ca);
    free (addr_a); free (addr_b); free (addr_c); free (addr_x); free (addr_p);
    zstr_free (&made);
    zstr_free (&server); zstr_free (&cert_a); zstr_free (&cert_b);
    zstr_free (&cert_c);
    char *cmd = zsys_sprintf ("rm -rf '%s'", tmp);
    ck_assert_int_eq (system (cmd), 0);
    zstr_free (&cmd);
    zstr_free (&keys);
    zstr_free (&other_keys);
}
END_TEST

int
main (void)
{
    Suite *suite = suite_create ("raft_transport");
    TCase *tc = tcase_create ("transport");
    tcase_add_checked_fixture (tc, s_setup, s_teardown);
    tcase_set_timeout (tc, 30);
    tcase_add_test (tc, test_batches_both_ways);
    tcase_add_test (tc, test_reconnect_after_peer_restart);
    tcase_add_test (tc, test_unknown_and_unreachable_peers);
    tcase_add_test (tc, test_malformed_and_oversized_refused);
    tcase_add_test (tc, test_batch_count_bounded);
    tcase_add_test (tc, test_bind_errors);
    tcase_add_test (tc, test_curve_peers);
    suite_add_tcase (suite, tc);
    return titan_check_run (suite, false);
}
