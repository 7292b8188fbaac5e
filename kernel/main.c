/*  titand: one Titan-KV node as a process.

    Builds the config (defaults < --config/TITAN_CONFIG file < TITAN_*
    environment < command line; kernel/config.c), starts a node
    (kernel/node.c) and waits for SIGINT or SIGTERM.  Then it stops the
    node, each module draining and closing its files in reverse start
    order, and exits 0.

    The two signals are blocked in every thread (the mask is set before
    any thread exists and is inherited) and taken with sigwait in main.
    So CZMQ's own handler never runs and zsys_interrupted stays false:
    a module that exits when zsys_interrupted is set would otherwise quit
    on its own, out of order, before the kernel asks it to with $TERM.  A bad config or a
    module that cannot start exits 1 with the reason on stderr.  */
#include <config.h>                     /* autoconf: PACKAGE_VERSION */
#include "node_config.h"
#include "titan/module.h"
#include "titan/node.h"
#include "titan/status.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

int
main (int argc, char **argv)
{
    char err [1024] = "";
    titan_args_t args;
    if (titan_config_parse_args (argc, argv, &args, err, sizeof err) != 0) {
        fprintf (stderr, "titand: %s\n", err);
        return 2;
    }
    if (args.help) {
        fputs (titan_config_usage (), stdout);
        return 0;
    }
    if (args.version) {
        printf ("titand %s (module ABI %u)\n", PACKAGE_VERSION,
                TITAN_MODULE_ABI_VERSION);
        return 0;
    }
    sigset_t signals;
    sigemptyset (&signals);
    sigaddset (&signals, SIGINT);
    sigaddset (&signals, SIGTERM);
    pthread_sigmask (SIG_BLOCK, &signals, NULL);
    zsys_handler_set (NULL);            /* no CZMQ handler: sigwait below */
    zconfig_t *config = NULL;
    int rc = titan_config_build (&args, &config, err, sizeof err);
    if (rc) {
        fprintf (stderr, "titand: bad configuration: %s\n", err);
        return 1;
    }
    titan_node_t *node = titan_node_new (&config, err, sizeof err);
    if (!node) {
        fprintf (stderr, "titand: bad configuration: %s\n", err);
        return 1;
    }
    rc = titan_node_start (node, err, sizeof err);
    if (rc) {
        fprintf (stderr, "titand: node %s failed to start: %s\n",
                 titan_node_id (node), err);
        titan_node_destroy (&node);
        return 1;
    }
    int caught = 0;
    sigwait (&signals, &caught);
    titan_log_emit (titan_node_logger (node), "titand", TITAN_LOG_INFO, NULL,
                    "%s, stopping node %s", strsignal (caught),
                    titan_node_id (node));
    titan_node_destroy (&node);
    return 0;
}
