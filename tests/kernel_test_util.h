/*  Helpers shared by the kernel tests: configs that load the test modules
    from the build tree, a bus client, and polling with deadlines.  */
#ifndef TITAN_KERNEL_TEST_UTIL_H_INCLUDED
#define TITAN_KERNEL_TEST_UTIL_H_INCLUDED

#include "titan/bus.h"
#include "titan/node.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*  Where the test modules are: $TITAN_MODULE_PATH (set by make check) or
    ./tests/.libs when run by hand from the build directory.  */
static inline const char *
test_module_path (void)
{
    const char *path = getenv ("TITAN_MODULE_PATH");
    return path && *path ? path : "tests/.libs";
}

/*  A fresh temporary directory (the caller frees the string).  */
static inline char *
test_tempdir (void)
{
    char *dir = strdup ("/tmp/titan-kernel-test-XXXXXX");
    ck_assert_ptr_nonnull (mkdtemp (dir));
    return dir;
}

/*  Builds a node config: `node_id`, data under `data_dir`, fast kernel
    timers, then `modules` (ZPL text of the modules section's children,
    indented by 4) and optional extra kernel settings.  */
static inline zconfig_t *
test_config (const char *node_id, const char *data_dir, const char *modules,
             const char *kernel_extra)
{
    static const char *const defaults [][2] = {
        { "ping_interval_ms", "50" },
        { "ping_timeout_ms", "2000" },
        { "restart_backoff_ms", "20" },
        { "restart_backoff_max_ms", "200" },
    };
    char kernel [1024];
    snprintf (kernel, sizeof kernel, "%s", kernel_extra ? kernel_extra : "");
    for (size_t i = 0; i < sizeof defaults / sizeof defaults [0]; i++)
        if (!kernel_extra || !strstr (kernel_extra, defaults [i][0])) {
            size_t len = strlen (kernel);
            snprintf (kernel + len, sizeof kernel - len, "    %s = %s\n",
                      defaults [i][0], defaults [i][1]);
        }
    char *text = zsys_sprintf (
        "node\n"
        "    id = %s\n"
        "    data_dir = \"%s\"\n"
        "    client_addr = 127.0.0.1:17400\n"
        "    peer_addr = 127.0.0.1:17401\n"
        "    module_path = \"%s\"\n"
        "kernel\n"
        "%s"
        "modules\n"
        "%s",
        node_id, data_dir, test_module_path (), kernel, modules);
    zconfig_t *config = zconfig_str_load (text);
    ck_assert_msg (config != NULL, "bad test config:\n%s", text);
    zstr_free (&text);
    return config;
}

/*  Creates and starts a node, failing the test on error.  */
static inline titan_node_t *
test_node_start (zconfig_t *config)
{
    char err [1024] = "";
    titan_node_t *node = titan_node_new (&config, err, sizeof err);
    ck_assert_msg (node != NULL, "titan_node_new: %s", err);
    int rc = titan_node_start (node, err, sizeof err);
    ck_assert_msg (rc == 0, "titan_node_start: %d %s", rc, err);
    return node;
}

/*  Creates and starts a node from the config make_config (arg) builds
    (called for every attempt: titan_node_new takes the config).  ZeroMQ
    releases an inproc endpoint asynchronously after its socket closed, so
    the bus of a node restarted at once may still be in use: -EADDRINUSE
    is retried for up to 3 s.  Returns 0 and *node_p, or the start status
    with the reason in err (no node is left in *node_p).  */
static inline int
test_node_try_start (zconfig_t *(*make_config) (void *arg), void *arg,
                     titan_node_t **node_p, char *err, size_t err_size)
{
    int64_t deadline = zclock_mono () + 3000;
    while (true) {
        zconfig_t *config = make_config (arg);
        *node_p = titan_node_new (&config, err, err_size);
        ck_assert_msg (*node_p != NULL, "titan_node_new: %s", err);
        int rc = titan_node_start (*node_p, err, err_size);
        if (rc)
            titan_node_destroy (node_p);
        if (rc != -EADDRINUSE || zclock_mono () >= deadline)
            return rc;
        zclock_sleep (50);
    }
}

/*  Sends a request and returns the reply payload as a string (caller
    frees), or NULL on timeout.  */
static inline char *
test_call (titan_bus_t *bus, const char *to, const char *type,
           const char *payload, int timeout_ms)
{
    titan_envelope_t *reply = titan_bus_call (bus, to, type, payload,
        payload ? strlen (payload) : 0, timeout_ms, NULL, NULL);
    if (!reply)
        return NULL;
    char *text = (char *) malloc (titan_envelope_size (reply) + 1);
    memcpy (text, titan_envelope_data (reply), titan_envelope_size (reply));
    text [titan_envelope_size (reply)] = '\0';
    titan_envelope_destroy (&reply);
    return text;
}

/*  Polls until module `name` is in `state` (and restarted at least
    `min_restarts` times), for up to `timeout_ms`.  */
static inline bool
test_wait_state (titan_node_t *node, const char *name,
                 titan_module_state_t state, uint32_t min_restarts,
                 int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    while (zclock_mono () < deadline) {
        titan_module_state_t now;
        uint32_t restarts = 0;
        if (titan_node_module_state (node, name, &now, &restarts) == 0
        &&  now == state && restarts >= min_restarts)
            return true;
        zclock_sleep (10);
    }
    return false;
}

/*  Removes a test directory tree.  */
static inline void
test_rmdir (char **dir_p)
{
    if (*dir_p) {
        char *command = zsys_sprintf ("rm -rf '%s'", *dir_p);
        int rc = system (command);
        (void) rc;
        zstr_free (&command);
        free (*dir_p);
        *dir_p = NULL;
    }
}

#endif
