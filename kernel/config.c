/*  titand configuration: defaults < file < environment < command line.

    The config is a ZPL tree (CZMQ zconfig) with three sections: `node`
    (identity, addresses, data directory, module path, cluster bootstrap),
    `kernel` (supervisor and router tuning) and `modules` (one subtree per
    module, in start order; `path` names the shared object and every other
    key is the module's own business).  Unknown keys outside a module's
    subtree are errors: a typo must not silently fall back to a default.

    zconfig does not remember line numbers, so errors about a file's key
    find its line again with a small scan of the file (s_line_of) that
    follows ZPL's four-space indentation.  The same scan rejects bad
    indentation before zconfig parses the file, because zconfig's own
    syntax errors go to the log rather than to the caller.  */
#include "node_config.h"
#include "titan/log.h"
#include "titan/status.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char s_defaults [] =
    "node\n"
    "    id = node1\n"
    "    data_dir = ./data\n"
    "    client_addr = 127.0.0.1:7400\n"
    "    peer_addr = 127.0.0.1:7401\n"
    "modules\n"
    "    bitcask\n"
    "        path = titan_bitcask.so\n"
    "    ring\n"
    "        path = titan_ring.so\n"
    "    raft\n"
    "        path = titan_raft.so\n"
    "    grpc_gateway\n"
    "        path = titan_grpc_gateway.so\n";

static const char *const s_node_keys [] = {
    "id", "data_dir", "client_addr", "peer_addr", "bootstrap", "join",
    "module_path", "log_level", NULL
};

/*  Kernel tuning keys with their accepted ranges.  */
static const struct {
    const char *key;
    int64_t min, max;
} s_kernel_keys [] = {
    { "ping_interval_ms", 10, 3600000 },
    { "ping_timeout_ms", 10, 3600000 },
    { "start_timeout_ms", 10, 3600000 },
    { "stop_timeout_ms", 10, 3600000 },
    { "restart_max", 0, 1000 },
    { "restart_backoff_ms", 1, 3600000 },
    { "restart_backoff_max_ms", 1, 3600000 },
    { "queue_limit", 1, 10000000 },
};
#define KERNEL_KEYS (sizeof s_kernel_keys / sizeof s_kernel_keys [0])

static void
s_err (char *err, size_t err_size, const char *format, ...)
{
    if (!err || err_size == 0)
        return;
    va_list args;
    va_start (args, format);
    vsnprintf (err, err_size, format, args);
    va_end (args);
}

/* ------------------------------------------------------------ arguments */

const char *
titan_config_usage (void)
{
    return
    "usage: titand [OPTIONS]\n"
    "  --config FILE          ZPL config file (default: none, built-in defaults)\n"
    "  --node-id ID           node id (default node1)\n"
    "  --data-dir DIR         data directory (default ./data)\n"
    "  --client-addr H:P      client (gRPC) address (default 127.0.0.1:7400)\n"
    "  --peer-addr H:P        peer (Raft) address (default 127.0.0.1:7401)\n"
    "  --bootstrap            bootstrap a new cluster with this node\n"
    "  --join H:P             join the cluster that a member at H:P belongs to\n"
    "  --module-path DIRS     colon-separated directories searched for modules\n"
    "  --log-level LEVEL      error, warning, info (default) or debug\n"
    "  --help, --version\n"
    "Environment (below options, above the file): TITAN_CONFIG, TITAN_NODE_ID,\n"
    "TITAN_DATA_DIR, TITAN_CLIENT_ADDR, TITAN_PEER_ADDR, TITAN_BOOTSTRAP,\n"
    "TITAN_JOIN, TITAN_MODULE_PATH, TITAN_LOG_LEVEL.\n";
}

int
titan_config_parse_args (int argc, char **argv, titan_args_t *args,
                         char *err, size_t err_size)
{
    static const struct option options [] = {
        { "config",      required_argument, NULL, 'c' },
        { "node-id",     required_argument, NULL, 'n' },
        { "data-dir",    required_argument, NULL, 'd' },
        { "client-addr", required_argument, NULL, 'a' },
        { "peer-addr",   required_argument, NULL, 'p' },
        { "join",        required_argument, NULL, 'j' },
        { "module-path", required_argument, NULL, 'm' },
        { "log-level",   required_argument, NULL, 'l' },
        { "bootstrap",   no_argument,       NULL, 'b' },
        { "help",        no_argument,       NULL, 'h' },
        { "version",     no_argument,       NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };
    memset (args, 0, sizeof *args);
    optind = 0;                         /* full re-initialisation (glibc) */
    opterr = 0;
    int opt;
    while ((opt = getopt_long (argc, argv, ":", options, NULL)) != -1) {
        switch (opt) {
            case 'c': args->config_file = optarg; break;
            case 'n': args->node_id = optarg; break;
            case 'd': args->data_dir = optarg; break;
            case 'a': args->client_addr = optarg; break;
            case 'p': args->peer_addr = optarg; break;
            case 'j': args->join = optarg; break;
            case 'm': args->module_path = optarg; break;
            case 'l': args->log_level = optarg; break;
            case 'b': args->bootstrap = true; break;
            case 'h': args->help = true; break;
            case 'V': args->version = true; break;
            case ':':
                s_err (err, err_size, "option %s needs a value",
                       argv [optind - 1]);
                return TITAN_ECONFIG;
            default:
                s_err (err, err_size, "unknown option %s (see --help)",
                       argv [optind - 1]);
                return TITAN_ECONFIG;
        }
    }
    if (optind < argc) {
        s_err (err, err_size, "unexpected argument '%s' (see --help)",
               argv [optind]);
        return TITAN_ECONFIG;
    }
    return 0;
}

/* ------------------------------------------------------------ values */

bool
titan_config_valid_address (const char *address)
{
    if (!address)
        return false;
    const char *colon = strrchr (address, ':');
    if (!colon || colon == address)
        return false;
    size_t host_len = (size_t) (colon - address);
    if (address [0] == '[') {
        /* [IPv6]: hex digits, colons and dots between the brackets */
        if (host_len < 3 || address [host_len - 1] != ']')
            return false;
        for (size_t i = 1; i < host_len - 1; i++)
            if (!isxdigit ((unsigned char) address [i])
            &&  address [i] != ':' && address [i] != '.')
                return false;
    }
    else {
        if (host_len > 253)
            return false;
        for (size_t i = 0; i < host_len; i++) {
            unsigned char c = (unsigned char) address [i];
            if (!isalnum (c) && c != '.' && c != '-' && c != '_')
                return false;
        }
    }
    const char *port = colon + 1;
    if (!*port || strlen (port) > 5)
        return false;
    for (const char *p = port; *p; p++)
        if (!isdigit ((unsigned char) *p))
            return false;
    long value = strtol (port, NULL, 10);
    return value >= 1 && value <= 65535;
}

/*  Node ids and module names appear in endpoint names and on the bus.  */
static bool
s_valid_name (const char *name)
{
    size_t len = name ? strlen (name) : 0;
    if (len == 0 || len > 63)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) name [i];
        if (!isalnum (c) && c != '_' && c != '-' && c != '.')
            return false;
    }
    return true;
}

static bool
s_parse_bool (const char *text, bool *value)
{
    if (!text)
        return false;
    if (!strcasecmp (text, "true") || !strcasecmp (text, "yes")
    ||  !strcmp (text, "1") || !strcasecmp (text, "on")) {
        *value = true;
        return true;
    }
    if (!strcasecmp (text, "false") || !strcasecmp (text, "no")
    ||  !strcmp (text, "0") || !strcasecmp (text, "off")) {
        *value = false;
        return true;
    }
    return false;
}

static bool
s_parse_int (const char *text, int64_t *value)
{
    if (!text || !*text)
        return false;
    char *end = NULL;
    errno = 0;
    long long v = strtoll (text, &end, 10);
    if (errno || *end)
        return false;
    *value = v;
    return true;
}

/* ------------------------------------------------------------ file scan */

/*  Finds the line (1-based) of the item at `keypath` ("node/colour") in a
    ZPL file, or 0.  Lines are read as ZPL does: four spaces per level,
    '#' starts a comment line, the name ends at blank or '='.  */
static int
s_line_of (const char *file, const char *keypath)
{
    if (!file || !keypath)
        return 0;
    FILE *handle = fopen (file, "r");
    if (!handle)
        return 0;
    char names [8][64];
    int found = 0, lineno = 0;
    char line [1024];
    while (!found && fgets (line, sizeof line, handle)) {
        lineno++;
        size_t indent = strspn (line, " ");
        char *name = line + indent;
        if (*name == '#' || *name == '\n' || *name == '\r' || !*name)
            continue;
        size_t depth = indent / 4;
        if (depth >= 8)
            continue;
        size_t len = strcspn (name, " \t=\r\n");
        snprintf (names [depth], sizeof names [depth], "%.*s", (int) len, name);
        char path [600] = "";
        for (size_t i = 0; i <= depth; i++) {
            if (i)
                strcat (path, "/");
            strncat (path, names [i], 63);
        }
        if (strcmp (path, keypath) == 0)
            found = lineno;
    }
    fclose (handle);
    return found;
}

/*  Checks the layout of a ZPL file: indentation in steps of four spaces,
    no tabs, one level deeper at most.  zconfig would log these and fail
    without saying where.  */
static int
s_check_layout (const char *file, char *err, size_t err_size)
{
    FILE *handle = fopen (file, "r");
    if (!handle) {
        s_err (err, err_size, "cannot read config file %s: %s", file,
               strerror (errno));
        return -errno ? -errno : TITAN_ECONFIG;
    }
    char line [1024];
    int lineno = 0, status = 0;
    size_t prev_depth = 0;
    bool first = true;
    while (status == 0 && fgets (line, sizeof line, handle)) {
        lineno++;
        if (!strchr (line, '\n') && !feof (handle)) {
            s_err (err, err_size, "%s line %d: line longer than %zu bytes",
                   file, lineno, sizeof line - 2);
            status = TITAN_ECONFIG;
            break;
        }
        size_t indent = strspn (line, " ");
        char *text = line + indent;
        if (*text == '#' || *text == '\n' || *text == '\r' || !*text)
            continue;
        if (*text == '\t') {
            s_err (err, err_size, "%s line %d: tab in indentation "
                   "(ZPL indents with 4 spaces per level)", file, lineno);
            status = TITAN_ECONFIG;
        }
        else
        if (indent % 4) {
            s_err (err, err_size, "%s line %d: indentation of %zu spaces "
                   "(expected a multiple of 4)", file, lineno, indent);
            status = TITAN_ECONFIG;
        }
        else
        if (indent / 4 > (first ? 0 : prev_depth + 1)) {
            s_err (err, err_size, "%s line %d: indented more than one level "
                   "below the line above", file, lineno);
            status = TITAN_ECONFIG;
        }
        prev_depth = indent / 4;
        first = false;
    }
    fclose (handle);
    return status;
}

/* ------------------------------------------------------------ validation */

/*  Formats where the value at `key` came from: "FILE line N", "option
    --x", "TITAN_X", or nothing for defaults.  */
static const char *
s_where (zhash_t *sources, const char *key, char *buf, size_t size)
{
    const char *src = sources ? (const char *) zhash_lookup (sources, key)
                              : NULL;
    if (!src)
        return "";
    snprintf (buf, size, "%s: ", src);
    return buf;
}

/*  True if an earlier sibling of `item` has the same name.  */
static bool
s_duplicate (zconfig_t *parent, zconfig_t *item)
{
    for (zconfig_t *other = zconfig_child (parent); other && other != item;
         other = zconfig_next (other))
        if (strcmp (zconfig_name (other), zconfig_name (item)) == 0)
            return true;
    return false;
}

static bool
s_in_list (const char *const *list, const char *name)
{
    for (size_t i = 0; list [i]; i++)
        if (strcmp (list [i], name) == 0)
            return true;
    return false;
}

int
titan_config_validate (zconfig_t *config, zhash_t *sources, char *err,
                       size_t err_size)
{
    char where [600];
    char key [200];
    if (!config) {
        s_err (err, err_size, "no config");
        return TITAN_ECONFIG;
    }
    /* Top level: node, kernel, modules. */
    for (zconfig_t *item = zconfig_child (config); item;
         item = zconfig_next (item)) {
        const char *name = zconfig_name (item);
        if (strcmp (name, "node") && strcmp (name, "kernel")
        &&  strcmp (name, "modules")) {
            s_err (err, err_size, "%sunknown section '%s' "
                   "(expected node, kernel or modules)",
                   s_where (sources, name, where, sizeof where), name);
            return TITAN_ECONFIG;
        }
        if (s_duplicate (config, item)) {
            s_err (err, err_size, "%ssection '%s' appears twice",
                   s_where (sources, name, where, sizeof where), name);
            return TITAN_ECONFIG;
        }
    }
    zconfig_t *node = zconfig_locate (config, "node");
    if (node) {
        for (zconfig_t *item = zconfig_child (node); item;
             item = zconfig_next (item)) {
            const char *name = zconfig_name (item);
            snprintf (key, sizeof key, "node/%s", name);
            if (!s_in_list (s_node_keys, name)) {
                s_err (err, err_size, "%sunknown key '%s' (expected one of "
                       "id, data_dir, client_addr, peer_addr, bootstrap, "
                       "join, module_path, log_level)",
                       s_where (sources, key, where, sizeof where), key);
                return TITAN_ECONFIG;
            }
            if (s_duplicate (node, item)) {
                s_err (err, err_size, "%s'%s' is set twice",
                       s_where (sources, key, where, sizeof where), key);
                return TITAN_ECONFIG;
            }
            if (zconfig_child (item)) {
                s_err (err, err_size, "%s'%s' takes a value, not a subtree",
                       s_where (sources, key, where, sizeof where), key);
                return TITAN_ECONFIG;
            }
        }
    }
    const char *id = zconfig_get (config, "node/id", NULL);
    if (!s_valid_name (id)) {
        s_err (err, err_size, "%snode/id '%s': expected 1 to 63 letters, "
               "digits, '_', '-' or '.'",
               s_where (sources, "node/id", where, sizeof where),
               id ? id : "");
        return TITAN_ECONFIG;
    }
    const char *data_dir = zconfig_get (config, "node/data_dir", NULL);
    if (!data_dir || !*data_dir) {
        s_err (err, err_size, "%snode/data_dir: expected a directory path",
               s_where (sources, "node/data_dir", where, sizeof where));
        return TITAN_ECONFIG;
    }
    const char *addr_keys [] = { "node/client_addr", "node/peer_addr",
                                 "node/join" };
    for (size_t i = 0; i < 3; i++) {
        const char *value = zconfig_get (config, addr_keys [i], NULL);
        if (!value && i == 2)
            continue;               /* join is optional */
        if (!titan_config_valid_address (value)) {
            s_err (err, err_size, "%s%s '%s': expected HOST:PORT "
                   "(host name, IPv4 or [IPv6]; port 1-65535)",
                   s_where (sources, addr_keys [i], where, sizeof where),
                   addr_keys [i], value ? value : "");
            return TITAN_ECONFIG;
        }
    }
    const char *bootstrap = zconfig_get (config, "node/bootstrap", NULL);
    bool flag;
    if (bootstrap && !s_parse_bool (bootstrap, &flag)) {
        s_err (err, err_size, "%snode/bootstrap '%s': expected true or false",
               s_where (sources, "node/bootstrap", where, sizeof where),
               bootstrap);
        return TITAN_ECONFIG;
    }

    const char *log_level = zconfig_get (config, "node/log_level", NULL);
    int level;
    if (log_level && titan_log_level_parse (log_level, &level) != 0) {
        s_err (err, err_size, "%snode/log_level '%s': expected error, "
               "warning, info or debug",
               s_where (sources, "node/log_level", where, sizeof where),
               log_level);
        return TITAN_ECONFIG;
    }

    zconfig_t *kernel = zconfig_locate (config, "kernel");
    if (kernel) {
        for (zconfig_t *item = zconfig_child (kernel); item;
             item = zconfig_next (item)) {
            const char *name = zconfig_name (item);
            snprintf (key, sizeof key, "kernel/%s", name);
            size_t k;
            for (k = 0; k < KERNEL_KEYS; k++)
                if (strcmp (s_kernel_keys [k].key, name) == 0)
                    break;
            if (k == KERNEL_KEYS) {
                s_err (err, err_size, "%sunknown key '%s' (expected one of "
                       "ping_interval_ms, ping_timeout_ms, start_timeout_ms, "
                       "stop_timeout_ms, restart_max, restart_backoff_ms, "
                       "restart_backoff_max_ms, queue_limit)",
                       s_where (sources, key, where, sizeof where), key);
                return TITAN_ECONFIG;
            }
            if (s_duplicate (kernel, item)) {
                s_err (err, err_size, "%s'%s' is set twice",
                       s_where (sources, key, where, sizeof where), key);
                return TITAN_ECONFIG;
            }
            int64_t value;
            if (!s_parse_int (zconfig_value (item), &value)
            ||  value < s_kernel_keys [k].min
            ||  value > s_kernel_keys [k].max) {
                s_err (err, err_size, "%s%s '%s': expected a whole number "
                       "from %" PRId64 " to %" PRId64,
                       s_where (sources, key, where, sizeof where), key,
                       zconfig_value (item) ? zconfig_value (item) : "",
                       s_kernel_keys [k].min, s_kernel_keys [k].max);
                return TITAN_ECONFIG;
            }
        }
    }

    zconfig_t *modules = zconfig_locate (config, "modules");
    if (!modules || !zconfig_child (modules)) {
        s_err (err, err_size, "%smodules: expected at least one module",
               s_where (sources, "modules", where, sizeof where));
        return TITAN_ECONFIG;
    }
    for (zconfig_t *item = zconfig_child (modules); item;
         item = zconfig_next (item)) {
        const char *name = zconfig_name (item);
        snprintf (key, sizeof key, "modules/%s", name);
        if (!s_valid_name (name) || strcmp (name, "kernel") == 0) {
            s_err (err, err_size, "%smodule name '%s': expected 1 to 63 "
                   "letters, digits, '_', '-' or '.', and not 'kernel'",
                   s_where (sources, key, where, sizeof where), name);
            return TITAN_ECONFIG;
        }
        if (zconfig_value (item) && *zconfig_value (item)) {
            s_err (err, err_size, "%s%s = %s: expected a subtree (path = "
                   "FILE and the module's settings), not a value",
                   s_where (sources, key, where, sizeof where), key,
                   zconfig_value (item));
            return TITAN_ECONFIG;
        }
        if (s_duplicate (modules, item)) {
            s_err (err, err_size, "%smodule '%s' is listed twice",
                   s_where (sources, key, where, sizeof where), name);
            return TITAN_ECONFIG;
        }
        zconfig_t *path = zconfig_locate (item, "path");
        if (path && (!zconfig_value (path) || !*zconfig_value (path))) {
            snprintf (key, sizeof key, "modules/%s/path", name);
            s_err (err, err_size, "%s%s: expected a shared object file name",
                   s_where (sources, key, where, sizeof where), key);
            return TITAN_ECONFIG;
        }
    }
    return 0;
}

int64_t
titan_config_kernel_int (zconfig_t *config, const char *key, int64_t fallback)
{
    char path [128];
    snprintf (path, sizeof path, "kernel/%s", key);
    int64_t value;
    if (s_parse_int (zconfig_get (config, path, NULL), &value))
        return value;
    return fallback;
}

/* ------------------------------------------------------------ building */

zconfig_t *
titan_config_defaults (void)
{
    return zconfig_str_load (s_defaults);
}

/*  Records "FILE line N" as the source of every key of the file.  */
static void
s_note_file_sources (zconfig_t *item, const char *prefix, const char *file,
                     zhash_t *sources)
{
    for (zconfig_t *child = zconfig_child (item); child;
         child = zconfig_next (child)) {
        char path [600];
        if (*prefix)
            snprintf (path, sizeof path, "%s/%s", prefix, zconfig_name (child));
        else
            snprintf (path, sizeof path, "%s", zconfig_name (child));
        char where [700];
        int line = s_line_of (file, path);
        if (line)
            snprintf (where, sizeof where, "%s line %d", file, line);
        else
            snprintf (where, sizeof where, "%s", file);
        zhash_update (sources, path, strdup (where));
        zhash_freefn (sources, path, free);
        s_note_file_sources (child, path, file, sources);
    }
}

int
titan_config_load_file (const char *path, zconfig_t **config_p, char *err,
                        size_t err_size)
{
    assert (config_p);
    *config_p = NULL;
    int rc = s_check_layout (path, err, err_size);
    if (rc)
        return rc;
    zconfig_t *config = zconfig_load (path);
    if (!config) {
        s_err (err, err_size, "%s: not valid ZPL (see the logged line; "
               "expected 'name = value' lines indented by 4 spaces per level)",
               path);
        return TITAN_ECONFIG;
    }
    *config_p = config;
    return 0;
}

int
titan_config_fill_defaults (zconfig_t *config)
{
    zconfig_t *defaults = titan_config_defaults ();
    if (!defaults)
        return -ENOMEM;
    zconfig_t *dnode = zconfig_locate (defaults, "node");
    for (zconfig_t *item = zconfig_child (dnode); item;
         item = zconfig_next (item)) {
        char key [128];
        snprintf (key, sizeof key, "node/%s", zconfig_name (item));
        if (!zconfig_locate (config, key))
            zconfig_put (config, key, zconfig_value (item));
    }
    if (!zconfig_locate (config, "modules")) {
        zconfig_t *dmods = zconfig_locate (defaults, "modules");
        for (zconfig_t *item = zconfig_child (dmods); item;
             item = zconfig_next (item)) {
            char key [128];
            snprintf (key, sizeof key, "modules/%s/path", zconfig_name (item));
            zconfig_put (config, key, zconfig_get (item, "path", ""));
        }
    }
    zconfig_destroy (&defaults);
    return 0;
}

/*  Sets `key` to `value` and records where the value came from.  */
static void
s_override (zconfig_t *config, zhash_t *sources, const char *key,
            const char *value, const char *source)
{
    zconfig_put (config, key, value);
    zhash_update (sources, key, strdup (source));
    zhash_freefn (sources, key, free);
}

int
titan_config_build (const titan_args_t *args, zconfig_t **config_p,
                    char *err, size_t err_size)
{
    assert (config_p);
    *config_p = NULL;
    zhash_t *sources = zhash_new ();
    if (!sources)
        return -ENOMEM;
    zconfig_t *config = NULL;
    int rc = 0;

    /* 1. the file, if any: --config beats $TITAN_CONFIG */
    const char *file = args && args->config_file ? args->config_file
                                                 : getenv ("TITAN_CONFIG");
    if (file && *file) {
        rc = titan_config_load_file (file, &config, err, err_size);
        if (rc)
            goto done;
        s_note_file_sources (config, "", file, sources);
    }
    else
        config = zconfig_new ("root", NULL);
    if (!config) {
        rc = -ENOMEM;
        goto done;
    }

    /* 2. defaults under whatever the file left out */
    rc = titan_config_fill_defaults (config);
    if (rc)
        goto done;

    /* 3. environment, 4. command line */
    static const struct {
        const char *env, *key;
    } env_keys [] = {
        { "TITAN_NODE_ID", "node/id" },
        { "TITAN_DATA_DIR", "node/data_dir" },
        { "TITAN_CLIENT_ADDR", "node/client_addr" },
        { "TITAN_PEER_ADDR", "node/peer_addr" },
        { "TITAN_BOOTSTRAP", "node/bootstrap" },
        { "TITAN_JOIN", "node/join" },
        { "TITAN_MODULE_PATH", "node/module_path" },
        { "TITAN_LOG_LEVEL", "node/log_level" },
    };
    for (size_t i = 0; i < sizeof env_keys / sizeof env_keys [0]; i++) {
        const char *value = getenv (env_keys [i].env);
        if (value && *value) {
            char source [64];
            snprintf (source, sizeof source, "environment %s",
                      env_keys [i].env);
            s_override (config, sources, env_keys [i].key, value, source);
        }
    }
    if (args) {
        const struct {
            const char *value, *key, *option;
        } options [] = {
            { args->node_id, "node/id", "--node-id" },
            { args->data_dir, "node/data_dir", "--data-dir" },
            { args->client_addr, "node/client_addr", "--client-addr" },
            { args->peer_addr, "node/peer_addr", "--peer-addr" },
            { args->join, "node/join", "--join" },
            { args->module_path, "node/module_path", "--module-path" },
            { args->log_level, "node/log_level", "--log-level" },
            { args->bootstrap ? "true" : NULL, "node/bootstrap", "--bootstrap" },
        };
        for (size_t i = 0; i < sizeof options / sizeof options [0]; i++)
            if (options [i].value) {
                char source [64];
                snprintf (source, sizeof source, "option %s",
                          options [i].option);
                s_override (config, sources, options [i].key,
                            options [i].value, source);
            }
    }
    rc = titan_config_validate (config, sources, err, err_size);
    if (rc == 0) {
        /* modules read node/bootstrap as exactly "true" or "false" */
        bool bootstrap = false;
        const char *value = zconfig_get (config, "node/bootstrap", NULL);
        if (value && s_parse_bool (value, &bootstrap))
            zconfig_put (config, "node/bootstrap", bootstrap ? "true" : "false");
    }

done:
    zhash_destroy (&sources);
    if (rc)
        zconfig_destroy (&config);
    *config_p = config;
    return rc;
}
