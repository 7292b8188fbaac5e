/*  titand configuration (internal to the kernel): the effective node config
    built from compiled-in defaults, a ZPL file, TITAN_* environment
    variables and command-line options, in rising precedence, then
    validated.  Used by titand's main and by the kernel tests.  */
#ifndef TITAN_KERNEL_NODE_CONFIG_H_INCLUDED
#define TITAN_KERNEL_NODE_CONFIG_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>

/*  Command-line options of titand, parsed but not yet applied.  Strings
    point into argv.  */
typedef struct {
    const char *config_file;    /* --config FILE */
    const char *node_id;        /* --node-id ID */
    const char *data_dir;       /* --data-dir DIR */
    const char *client_addr;    /* --client-addr HOST:PORT */
    const char *peer_addr;      /* --peer-addr HOST:PORT */
    const char *join;           /* --join HOST:PORT */
    const char *module_path;    /* --module-path DIR[:DIR...] */
    const char *log_level;      /* --log-level LEVEL */
    bool bootstrap;             /* --bootstrap */
    bool help;                  /* --help */
    bool version;               /* --version */
} titan_args_t;

/*  Defaults of the kernel section (supervisor and router tuning).  */
#define TITAN_DEFAULT_PING_INTERVAL_MS     1000
#define TITAN_DEFAULT_PING_TIMEOUT_MS      5000
#define TITAN_DEFAULT_START_TIMEOUT_MS     60000
#define TITAN_DEFAULT_STOP_TIMEOUT_MS      30000
#define TITAN_DEFAULT_RESTART_MAX          5
#define TITAN_DEFAULT_RESTART_BACKOFF_MS   100
#define TITAN_DEFAULT_RESTART_BACKOFF_MAX_MS 5000
#define TITAN_DEFAULT_QUEUE_LIMIT          10000

/*  Parses titand's command line into *args (getopt_long; resets optind).
    Returns 0, or TITAN_ECONFIG with the reason in `err`.  */
int titan_config_parse_args (int argc, char **argv, titan_args_t *args,
                             char *err, size_t err_size);

/*  The usage text of titand.  */
const char *titan_config_usage (void);

/*  Returns a new config tree holding the built-in defaults.  */
zconfig_t *titan_config_defaults (void);

/*  Adds the default node keys the config lacks, and the default module
    list when it has no modules section at all.  Returns 0 or -ENOMEM.  */
int titan_config_fill_defaults (zconfig_t *config);

/*  Loads a ZPL config file, checking its layout (indentation) first so
    that a syntax error names the file and line; keys and values are
    checked by titan_config_build.  Returns 0 and the tree in
    *config_p, or a negative status.  */
int titan_config_load_file (const char *path, zconfig_t **config_p,
                            char *err, size_t err_size);

/*  Builds the effective config: defaults, then the file named by
    args->config_file or $TITAN_CONFIG (if any), then TITAN_* environment
    variables, then the options in `args` (may be NULL), and validates the
    result.  Returns 0 and the tree in *config_p, or a negative status with
    the reason (naming the file and line, variable or option) in `err`.  */
int titan_config_build (const titan_args_t *args, zconfig_t **config_p,
                        char *err, size_t err_size);

/*  Validates a complete config tree (as titan_node_new does).  `sources`,
    if not NULL, maps key paths ("node/client_addr") to where their value
    came from, for the error message.  Returns 0 or TITAN_ECONFIG.  */
int titan_config_validate (zconfig_t *config, zhash_t *sources,
                           char *err, size_t err_size);

/*  Checks "host:port" (host name, IPv4, or [IPv6]; port 1..65535).  */
bool titan_config_valid_address (const char *address);

/*  Reads an integer from the kernel section, or its default.  The config
    must have been validated.  */
int64_t titan_config_kernel_int (zconfig_t *config, const char *key,
                                 int64_t fallback);

#endif
