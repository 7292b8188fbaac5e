/*  Tests of titand's configuration (kernel/config.c): defaults, files,
    precedence (command line > environment > file > defaults), and errors
    that name the file and line, variable or option, and the key.  Each
    check test runs in its own process, so setenv does not leak.  */
#include "check_run.h"
#include "node_config.h"
#include "kernel_test_util.h"
#include "titan/status.h"

static const char *const s_env_vars [] = {
    "TITAN_CONFIG", "TITAN_NODE_ID", "TITAN_DATA_DIR", "TITAN_CLIENT_ADDR",
    "TITAN_PEER_ADDR", "TITAN_BOOTSTRAP", "TITAN_JOIN", "TITAN_MODULE_PATH",
    NULL
};

/*  Keeps TITAN_MODULE_PATH aside (make check sets it) and clears the
    rest, so each test starts from a known environment.  */
static char *s_module_path;

static void
s_clean_env (void)
{
    const char *path = getenv ("TITAN_MODULE_PATH");
    s_module_path = strdup (path ? path : "tests/.libs");
    for (size_t i = 0; s_env_vars [i]; i++)
        unsetenv (s_env_vars [i]);
}

static void
s_restore_env (void)
{
    free (s_module_path);
    s_module_path = NULL;
}

/*  Writes `text` to a new file in `dir` and returns its path.  */
static char *
s_write (const char *dir, const char *name, const char *text)
{
    char *path = zsys_sprintf ("%s/%s", dir, name);
    FILE *file = fopen (path, "w");
    ck_assert_ptr_nonnull (file);
    fputs (text, file);
    fclose (file);
    return path;
}

/*  Builds from argv (NULL-terminated list) and returns the status; the
    config (if any) in *config_p, the error in err.  */
static int
s_build (char **argv, zconfig_t **config_p, char *err, size_t err_size)
{
    int argc = 0;
    while (argv [argc])
        argc++;
    titan_args_t args;
    int rc = titan_config_parse_args (argc, argv, &args, err, err_size);
    if (rc)
        return rc;
    return titan_config_build (&args, config_p, err, err_size);
}

START_TEST (test_defaults)
{
    zconfig_t *config = NULL;
    char err [512] = "";
    char *argv [] = { "titand", NULL };
    ck_assert_int_eq (s_build (argv, &config, err, sizeof err), 0);
    ck_assert_str_eq (zconfig_get (config, "node/id", ""), "node1");
    ck_assert_str_eq (zconfig_get (config, "node/data_dir", ""), "./data");
    ck_assert_str_eq (zconfig_get (config, "node/client_addr", ""),
                      "127.0.0.1:7400");
    ck_assert_str_eq (zconfig_get (config, "node/peer_addr", ""),
                      "127.0.0.1:7401");
    zconfig_t *module = zconfig_child (zconfig_locate (config, "modules"));
    ck_assert_str_eq (zconfig_name (module), "bitcask");
    ck_assert_str_eq (zconfig_get (module, "path", ""), "titan_bitcask.so");
    module = zconfig_next (module);
    ck_assert_str_eq (zconfig_name (module), "ring");
    ck_assert_str_eq (zconfig_get (module, "path", ""), "titan_ring.so");
    module = zconfig_next (module);
    ck_assert_str_eq (zconfig_name (module), "raft");
    ck_assert_str_eq (zconfig_get (module, "path", ""), "titan_raft.so");
    module = zconfig_next (module);
    ck_assert_str_eq (zconfig_name (module), "grpc_gateway");
    ck_assert_str_eq (zconfig_get (module, "path", ""),
                      "titan_grpc_gateway.so");
    ck_assert_ptr_null (zconfig_next (module));
    zconfig_destroy (&config);
}
END_TEST

START_TEST (test_shipped_config_file)
{
    /* etc/titan.cfg documents the defaults and must load as is. */
    const char *srcdir = getenv ("TITAN_SRCDIR");
    char *path = zsys_sprintf ("%s/etc/titan.cfg", srcdir ? srcdir : "..");
    zconfig_t *config = NULL;
    char err [512] = "";
    char *argv [] = { "titand", "--config", path, NULL };
    ck_assert_msg (s_build (argv, &config, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq (zconfig_get (config, "node/id", ""), "node1");
    ck_assert_str_eq (zconfig_get (config, "node/client_addr", ""),
                      "127.0.0.1:7400");
    ck_assert_str_eq (zconfig_get (config, "modules/bitcask/path", ""),
                      "titan_bitcask.so");
    zconfig_destroy (&config);
    zstr_free (&path);
}
END_TEST

START_TEST (test_file_and_precedence)
{
    char *dir = test_tempdir ();
    char *file = s_write (dir, "t.cfg",
        "# a comment\n"
        "node\n"
        "    id = fromfile\n"
        "    client_addr = 10.0.0.1:1000\n"
        "    peer_addr = 10.0.0.1:1001\n"
        "kernel\n"
        "    queue_limit = 77\n"
        "modules\n"
        "    echo\n"
        "        path = titan_test_echo.so\n"
        "        anything = goes here\n"
        "        nested\n"
        "            deeper = 1\n");
    zconfig_t *config = NULL;
    char err [512] = "";

    /* file over defaults; defaults fill the gaps */
    char *a1 [] = { "titand", "--config", file, NULL };
    ck_assert_msg (s_build (a1, &config, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq (zconfig_get (config, "node/id", ""), "fromfile");
    ck_assert_str_eq (zconfig_get (config, "node/data_dir", ""), "./data");
    ck_assert_str_eq (zconfig_get (config, "modules/echo/anything", ""),
                      "goes here");
    ck_assert_int_eq (titan_config_kernel_int (config, "queue_limit", 1), 77);
    ck_assert_int_eq (titan_config_kernel_int (config, "restart_max", 5), 5);
    ck_assert_ptr_null (zconfig_locate (config, "modules/bitcask"));
    zconfig_destroy (&config);

    /* environment over file; TITAN_CONFIG names the file */
    setenv ("TITAN_CONFIG", file, 1);
    setenv ("TITAN_NODE_ID", "fromenv", 1);
    setenv ("TITAN_CLIENT_ADDR", "[::1]:2000", 1);
    setenv ("TITAN_BOOTSTRAP", "yes", 1);
    char *a2 [] = { "titand", NULL };
    ck_assert_msg (s_build (a2, &config, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq (zconfig_get (config, "node/id", ""), "fromenv");
    ck_assert_str_eq (zconfig_get (config, "node/client_addr", ""), "[::1]:2000");
    ck_assert_str_eq (zconfig_get (config, "node/peer_addr", ""), "10.0.0.1:1001");
    ck_assert_str_eq (zconfig_get (config, "node/bootstrap", ""), "true");
    zconfig_destroy (&config);

    /* command line over environment */
    char *a3 [] = { "titand", "--node-id", "fromcli", "--data-dir", "/tmp/x",
                    "--peer-addr", "host-1.example:3001", "--join",
                    "seed:7401", "--module-path", "/a:/b", "--bootstrap", NULL };
    ck_assert_msg (s_build (a3, &config, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq (zconfig_get (config, "node/id", ""), "fromcli");
    ck_assert_str_eq (zconfig_get (config, "node/data_dir", ""), "/tmp/x");
    ck_assert_str_eq (zconfig_get (config, "node/client_addr", ""), "[::1]:2000");
    ck_assert_str_eq (zconfig_get (config, "node/peer_addr", ""),
                      "host-1.example:3001");
    ck_assert_str_eq (zconfig_get (config, "node/join", ""), "seed:7401");
    ck_assert_str_eq (zconfig_get (config, "node/module_path", ""), "/a:/b");
    ck_assert_str_eq (zconfig_get (config, "node/bootstrap", ""), "true");
    zconfig_destroy (&config);

    zstr_free (&file);
    test_rmdir (&dir);
}
END_TEST

/*  Builds with a file holding `text` (and extra argv) and expects failure
    with `expect` in the message; "@" in `expect` stands for the file.  */
static void
s_expect_error (const char *text, char *extra, const char *expect)
{
    char *dir = test_tempdir ();
    char *file = s_write (dir, "bad.cfg", text);
    char *argv [] = { "titand", "--config", file, extra, NULL };
    zconfig_t *config = NULL;
    char err [1024] = "";
    int rc = s_build (argv, &config, err, sizeof err);
    ck_assert_msg (rc == TITAN_ECONFIG || rc < 0, "accepted:\n%s", text);
    ck_assert_ptr_null (config);
    char expected [1024];
    const char *at = strchr (expect, '@');
    if (at)
        snprintf (expected, sizeof expected, "%.*s%s%s", (int) (at - expect),
                  expect, file, at + 1);
    else
        snprintf (expected, sizeof expected, "%s", expect);
    ck_assert_msg (strstr (err, expected) != NULL, "error '%s' lacks '%s'",
                   err, expected);
    zstr_free (&file);
    test_rmdir (&dir);
}

START_TEST (test_errors_name_file_line_key)
{
    s_expect_error ("node\n    id = a\n    colour = blue\n", NULL,
                    "@ line 3: unknown key 'node/colour' (expected one of id,");
    s_expect_error ("node\n    id = a\nextras\n    x = 1\n", NULL,
                    "@ line 3: unknown section 'extras'");
    s_expect_error ("node\n    client_addr = localhost\n", NULL,
                    "@ line 2: node/client_addr 'localhost': expected HOST:PORT");
    s_expect_error ("node\n    peer_addr = 1.2.3.4:70000\n", NULL,
                    "@ line 2: node/peer_addr '1.2.3.4:70000': expected HOST:PORT");
    s_expect_error ("node\n    join = a b:1\n", NULL,
                    "@ line 2: node/join 'a b:1'");
    s_expect_error ("node\n    id = \"bad id\"\n", NULL,
                    "@ line 2: node/id 'bad id': expected 1 to 63");
    s_expect_error ("node\n    bootstrap = maybe\n", NULL,
                    "@ line 2: node/bootstrap 'maybe': expected true or false");
    s_expect_error ("node\n    id = a\n    id = b\n", NULL,
                    "'node/id' is set twice");
    s_expect_error ("kernel\n    queue_limit = 0\n", NULL,
                    "@ line 2: kernel/queue_limit '0': expected a whole number "
                    "from 1 to 10000000");
    s_expect_error ("kernel\n    ping_every = 3\n", NULL,
                    "@ line 2: unknown key 'kernel/ping_every'");
    s_expect_error ("modules\n    kernel\n        path = x.so\n", NULL,
                    "@ line 2: module name 'kernel'");
    s_expect_error ("modules\n    a = b\n", NULL,
                    "@ line 2: modules/a = b: expected a subtree");
    s_expect_error ("modules\n    a\n    a\n", NULL,
                    "module 'a' is listed twice");
    s_expect_error ("modules\n", NULL, "modules: expected at least one module");
    s_expect_error ("node\n   id = a\n", NULL,
                    "@ line 2: indentation of 3 spaces (expected a multiple of 4)");
    s_expect_error ("node\n\tid = a\n", NULL, "@ line 2: tab in indentation");
    s_expect_error ("node\n        id = a\n", NULL,
                    "@ line 2: indented more than one level");
    s_expect_error ("node\n    id = a\n", "--client-addr=:80",
                    "option --client-addr: node/client_addr ':80'");
    setenv ("TITAN_PEER_ADDR", "nowhere", 1);
    s_expect_error ("node\n    id = a\n", NULL,
                    "environment TITAN_PEER_ADDR: node/peer_addr 'nowhere'");
    unsetenv ("TITAN_PEER_ADDR");

    /* a file that is not there */
    zconfig_t *config = NULL;
    char err [512] = "";
    char *argv [] = { "titand", "--config", "/nonexistent/titan.cfg", NULL };
    ck_assert_int_lt (s_build (argv, &config, err, sizeof err), 0);
    ck_assert_ptr_nonnull (strstr (err, "cannot read config file "
                                        "/nonexistent/titan.cfg"));
}
END_TEST

START_TEST (test_args)
{
    titan_args_t args;
    char err [256] = "";
    char *a1 [] = { "titand", "--nope", NULL };
    ck_assert_int_eq (titan_config_parse_args (2, a1, &args, err, sizeof err),
                      TITAN_ECONFIG);
    ck_assert_ptr_nonnull (strstr (err, "unknown option --nope"));
    char *a2 [] = { "titand", "--node-id", NULL };
    ck_assert_int_eq (titan_config_parse_args (2, a2, &args, err, sizeof err),
                      TITAN_ECONFIG);
    ck_assert_ptr_nonnull (strstr (err, "--node-id needs a value"));
    char *a3 [] = { "titand", "stray", NULL };
    ck_assert_int_eq (titan_config_parse_args (2, a3, &args, err, sizeof err),
                      TITAN_ECONFIG);
    ck_assert_ptr_nonnull (strstr (err, "unexpected argument 'stray'"));
    char *a4 [] = { "titand", "--help", "--version", NULL };
    ck_assert_int_eq (titan_config_parse_args (3, a4, &args, err, sizeof err), 0);
    ck_assert (args.help && args.version);
    ck_assert_ptr_nonnull (strstr (titan_config_usage (), "--join"));
}
END_TEST

START_TEST (test_addresses)
{
    const char *good [] = { "127.0.0.1:7400", "localhost:1", "a-b.c_d:65535",
                            "[::1]:80", "[fe80::1]:9", "0.0.0.0:7401", NULL };
    const char *bad [] = { "", ":80", "host", "host:", "host:0", "host:65536",
                           "host:12a", "ho st:1", "[::1:80", "[]:80",
                           "host:123456", NULL };
    for (size_t i = 0; good [i]; i++)
        ck_assert_msg (titan_config_valid_address (good [i]), "%s", good [i]);
    for (size_t i = 0; bad [i]; i++)
        ck_assert_msg (!titan_config_valid_address (bad [i]), "%s", bad [i]);
    ck_assert (!titan_config_valid_address (NULL));
}
END_TEST

START_TEST (test_module_lookup)
{
    /* The module path is searched in order; TITAN_MODULE_PATH from the
       environment is used by titand like --module-path. */
    char *dir = test_tempdir ();
    char *path = zsys_sprintf ("/nonexistent:%s", s_module_path);
    setenv ("TITAN_MODULE_PATH", path, 1);
    setenv ("TITAN_DATA_DIR", dir, 1);
    char *file = s_write (dir, "m.cfg",
        "modules\n    echo\n        path = titan_test_echo.so\n"
        "    other\n        path = titan_test_missing.so\n");
    zconfig_t *config = NULL;
    char err [1024] = "";
    char *argv [] = { "titand", "--config", file, NULL };
    ck_assert_msg (s_build (argv, &config, err, sizeof err) == 0, "%s", err);
    titan_node_t *node = titan_node_new (&config, err, sizeof err);
    ck_assert_ptr_null (node);
    char *expect = zsys_sprintf ("modules/other/path: module file "
                                 "titan_test_missing.so not found in %s:",
                                 path);
    ck_assert_msg (strstr (err, expect) != NULL, "%s", err);
    zstr_free (&expect);
    zstr_free (&file);

    /* Without the missing one, the node is created and starts. */
    file = s_write (dir, "ok.cfg",
        "modules\n    echo\n        path = titan_test_echo.so\n");
    char *argv2 [] = { "titand", "--config", file, "--node-id", "lookup", NULL };
    ck_assert_msg (s_build (argv2, &config, err, sizeof err) == 0, "%s", err);
    node = titan_node_new (&config, err, sizeof err);
    ck_assert_msg (node != NULL, "%s", err);
    ck_assert_int_eq (titan_node_start (node, err, sizeof err), 0);
    titan_node_destroy (&node);
    zstr_free (&file);
    zstr_free (&path);
    test_rmdir (&dir);
}
END_TEST

int
main (void)
{
    Suite *suite = suite_create ("kernel_config");
    TCase *tc = tcase_create ("core");
    tcase_add_checked_fixture (tc, s_clean_env, s_restore_env);
    tcase_add_test (tc, test_defaults);
    tcase_add_test (tc, test_shipped_config_file);
    tcase_add_test (tc, test_file_and_precedence);
    tcase_add_test (tc, test_errors_name_file_line_key);
    tcase_add_test (tc, test_args);
    tcase_add_test (tc, test_addresses);
    tcase_add_test (tc, test_module_lookup);
    suite_add_tcase (suite, tc);
    return titan_check_run (suite, false);
}
