/*  raft_curve: CURVE keys and the process's authenticator for the Raft
    peer transport (see raft_curve.h for the design).

    The authenticator is CZMQ's zauth actor, which binds ZeroMQ's one ZAP
    endpoint of the process (and asserts if it is bound twice).  So it is
    held here, process-wide, under a mutex with a user count: the first
    node that turns CURVE on starts it with its keys directory, the others
    share it if they name the same directory, the last one stops it.  This
    is the one piece of mutable state of the module shared between nodes,
    forced by ZeroMQ (ZAP is per context).
*/
#include "raft_curve.h"
#include "titan/log.h"
#include "titan/status.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define S_META_NODE_ID "node-id"
#define S_RELOAD_MS    1000

struct raft_curve {
    zcert_t *server;             /* cluster server key pair */
    zcert_t *node;               /* this node's client key pair */
    char *keys_dir;
    zhashx_t *key_nodes;         /* public key (Z85) -> node id */
    int64_t loaded_at;
    bool auth_held;              /* a user of the process's zauth */
};

static pthread_mutex_t s_auth_lock = PTHREAD_MUTEX_INITIALIZER;
static zactor_t *s_auth;
static int s_auth_users;
static char s_auth_dir [1024];

/*  Starts or joins the process's zauth on `dir`.  */
static int
s_auth_acquire (const char *dir, char *err, size_t err_size)
{
    int rc = 0;
    pthread_mutex_lock (&s_auth_lock);
    if (s_auth_users > 0 && strcmp (s_auth_dir, dir) != 0) {
        snprintf (err, err_size, "raft: CURVE: another node of this process "
                  "authenticates peers with keys directory %.200s; ZeroMQ has "
                  "one authenticator per process, so nodes in one process "
                  "must share curve_keys_dir", s_auth_dir);
        rc = -EBUSY;
    }
    else if (s_auth_users == 0) {
        if (strlen (dir) >= sizeof s_auth_dir) {
            snprintf (err, err_size, "raft: curve_keys_dir is too long");
            rc = -ENAMETOOLONG;
        }
        else {
            s_auth = zactor_new (zauth, NULL);
            if (!s_auth
            ||  zstr_sendx (s_auth, "CURVE", dir, NULL) != 0
            ||  zsock_wait (s_auth) != 0) {
                zactor_destroy (&s_auth);
                snprintf (err, err_size, "raft: CURVE: cannot start the "
                          "authenticator on %.200s", dir);
                rc = -EIO;
            }
            else {
                snprintf (s_auth_dir, sizeof s_auth_dir, "%s", dir);
                s_auth_users = 1;
            }
        }
    }
    else
        s_auth_users++;
    pthread_mutex_unlock (&s_auth_lock);
    return rc;
}

static void
s_auth_release (void)
{
    pthread_mutex_lock (&s_auth_lock);
    if (s_auth_users > 0 && --s_auth_users == 0)
        zactor_destroy (&s_auth);
    pthread_mutex_unlock (&s_auth_lock);
}

/*  Reads the allowed certificates' key -> node id bindings.  */
static void
s_load_keys (raft_curve_t *self)
{
    self->loaded_at = zclock_mono ();
    zhashx_purge (self->key_nodes);
    zdir_t *dir = zdir_new (self->keys_dir, NULL);
    if (!dir)
        return;
    zlist_t *files = zdir_list (dir);
    for (zfile_t *file = files ? zlist_first (files) : NULL; file;
         file = zlist_next (files)) {
        const char *name = zfile_filename (file, NULL);
        size_t len = strlen (name);
        if (len >= 7 && streq (name + len - 7, "_secret"))
            continue;
        zcert_t *cert = zcert_load (name);
        if (!cert)
            continue;
        const char *node = zcert_meta (cert, S_META_NODE_ID);
        if (node && *node)
            zhashx_update (self->key_nodes, zcert_public_txt (cert),
                           (void *) node);
        zcert_destroy (&cert);
    }
    zlist_destroy (&files);
    zdir_destroy (&dir);
}

static void
s_free_str (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

static void *
s_dup_str (const void *item)
{
    return strdup ((const char *) item);
}

/*  Loads a key pair (the secret file path + "_secret").  */
static zcert_t *
s_load_pair (const char *setting, const char *path, char *err, size_t err_size)
{
    char *secret = zsys_sprintf ("%s_secret", path);
    bool exists = secret && zsys_file_exists (secret);
    zstr_free (&secret);
    zcert_t *cert = exists ? zcert_load (path) : NULL;
    if (!cert) {
        snprintf (err, err_size, "raft: %s: cannot load the key pair %.200s "
                  "(and its %.200s_secret)", setting, path, path);
        return NULL;
    }
    return cert;
}

/*  The node's key pair: `curve_cert`, or <data_dir>/curve/node.cert,
    created on first start.  */
static zcert_t *
s_node_pair (zconfig_t *settings, const char *data_dir, const char *node_id,
             char *err, size_t err_size)
{
    const char *path = zconfig_get (settings, "curve_cert", "");
    if (*path)
        return s_load_pair ("curve_cert", path, err, err_size);
    char dir [1024], file [1100];
    snprintf (dir, sizeof dir, "%s/curve", data_dir);
    snprintf (file, sizeof file, "%s/node.cert", dir);
    char *secret = zsys_sprintf ("%s_secret", file);
    bool exists = secret && zsys_file_exists (secret);
    zstr_free (&secret);
    if (exists)
        return s_load_pair ("curve_cert", file, err, err_size);
    if (mkdir (dir, 0700) && errno != EEXIST) {
        snprintf (err, err_size, "raft: cannot create %.200s: %s", dir,
                  strerror (errno));
        return NULL;
    }
    zcert_t *cert = zcert_new ();
    if (!cert) {
        snprintf (err, err_size, "raft: CURVE: cannot make a key pair");
        return NULL;
    }
    zcert_set_meta (cert, S_META_NODE_ID, "%s", node_id);
    if (zcert_save (cert, file) != 0) {
        snprintf (err, err_size, "raft: cannot write the key pair %.200s",
                  file);
        zcert_destroy (&cert);
        return NULL;
    }
    titan_log_info ("raft %s: made the CURVE key pair %s; put a copy of it (the "
               "public file) in every node's curve_keys_dir", node_id, file);
    return cert;
}

int
raft_curve_new (zconfig_t *settings, const char *data_dir, const char *node_id,
                raft_curve_t **self_p, char *err, size_t err_size)
{
    *self_p = NULL;
    const char *on = settings ? zconfig_get (settings, "curve", "false")
                              : "false";
    if (streq (on, "false") || streq (on, "0") || streq (on, "no")
    ||  streq (on, "off") || !*on)
        return 0;
    if (!(streq (on, "true") || streq (on, "1") || streq (on, "yes")
    ||    streq (on, "on"))) {
        snprintf (err, err_size, "raft: curve is true or false, not '%.40s'",
                  on);
        return TITAN_ECONFIG;
    }
    if (!zsys_has_curve ()) {
        snprintf (err, err_size, "raft: curve = true, but this libzmq is "
                  "built without CURVE (libsodium)");
        return -ENOTSUP;
    }
    const char *server = zconfig_get (settings, "curve_server_cert", "");
    const char *keys = zconfig_get (settings, "curve_keys_dir", "");
    if (!*server || !*keys) {
        snprintf (err, err_size, "raft: curve = true needs curve_server_cert "
                  "and curve_keys_dir (see docs/security.md)");
        return TITAN_ECONFIG;
    }
    struct stat st;
    if (stat (keys, &st) || !S_ISDIR (st.st_mode)) {
        snprintf (err, err_size, "raft: curve_keys_dir %.200s is not a "
                  "directory", keys);
        return TITAN_ECONFIG;
    }
    raft_curve_t *self = calloc (1, sizeof *self);
    if (!self)
        return -ENOMEM;
    self->keys_dir = strdup (keys);
    self->key_nodes = zhashx_new ();
    if (!self->keys_dir || !self->key_nodes) {
        raft_curve_destroy (&self);
        return -ENOMEM;
    }
    zhashx_set_destructor (self->key_nodes, s_free_str);
    zhashx_set_duplicator (self->key_nodes, s_dup_str);
    self->server = s_load_pair ("curve_server_cert", server, err, err_size);
    if (self->server)
        self->node = s_node_pair (settings, data_dir, node_id, err, err_size);
    if (!self->node) {
        raft_curve_destroy (&self);
        return TITAN_ECONFIG;
    }
    int rc = s_auth_acquire (self->keys_dir, err, err_size);
    if (rc) {
        raft_curve_destroy (&self);
        return rc;
    }
    self->auth_held = true;
    s_load_keys (self);
    const char *bound = zhashx_lookup (self->key_nodes,
                                       zcert_public_txt (self->node));
    if (!bound)
        titan_log_warning ("raft %s: CURVE: this node's public key %s is not in "
                      "%s: the other nodes will refuse it", node_id,
                      zcert_public_txt (self->node), self->keys_dir);
    else if (!streq (bound, node_id))
        titan_log_warning ("raft %s: CURVE: this node's key is bound to node id "
                      "'%s' in %s: the other nodes will drop its messages",
                      node_id, bound, self->keys_dir);
    *self_p = self;
    return 0;
}

void
raft_curve_destroy (raft_curve_t **self_p)
{
    raft_curve_t *self = *self_p;
    if (!self)
        return;
    if (self->auth_held)
        s_auth_release ();
    zcert_destroy (&self->server);
    zcert_destroy (&self->node);
    zhashx_destroy (&self->key_nodes);
    free (self->keys_dir);
    free (self);
    *self_p = NULL;
}

void
raft_curve_apply_server (raft_curve_t *self, zsock_t *router)
{
    zcert_apply (self->server, router);
    zsock_set_curve_server (router, 1);
    zsock_set_zap_domain (router, "titan-raft");
}

void
raft_curve_apply_client (raft_curve_t *self, zsock_t *dealer)
{
    zcert_apply (self->node, dealer);
    zsock_set_curve_serverkey (dealer, zcert_public_txt (self->server));
}

const char *
raft_curve_node_of (raft_curve_t *self, const char *client_key)
{
    const char *node = zhashx_lookup (self->key_nodes, client_key);
    if (!node && zclock_mono () - self->loaded_at >= S_RELOAD_MS) {
        s_load_keys (self);
        node = zhashx_lookup (self->key_nodes, client_key);
    }
    return node;
}
