/*  titan-keygen: makes a CURVE key pair for the Raft peer transport, in
    CZMQ's zcert format: FILE holds the public key (and metadata), the
    file FILE_secret the secret key as well (mode 0600).  With a node id,
    the certificate's `node-id` metadata binds the key to that node (see
    modules/raft/raft_curve.h and docs/security.md).  Prints the public
    key (Z85).  Refuses to overwrite an existing key pair.
*/
#include <czmq.h>
#include <stdio.h>
#include <string.h>

int
main (int argc, char **argv)
{
    if (argc < 2 || argc > 3 || argv [1][0] == '-') {
        fprintf (stderr, "usage: titan-keygen FILE [NODE_ID]\n"
                 "  writes a CURVE key pair: FILE (public) and FILE_secret\n");
        return 2;
    }
    const char *file = argv [1];
    char secret [4096];
    if (snprintf (secret, sizeof secret, "%s_secret", file)
        >= (int) sizeof secret) {
        fprintf (stderr, "titan-keygen: %s: path too long\n", file);
        return 2;
    }
    if (zsys_file_exists (file) || zsys_file_exists (secret)) {
        fprintf (stderr, "titan-keygen: %s or %s exists; not overwritten\n",
                 file, secret);
        return 1;
    }
    zcert_t *cert = zcert_new ();
    if (!cert) {
        fprintf (stderr, "titan-keygen: cannot make a key pair\n");
        return 1;
    }
    if (argc == 3)
        zcert_set_meta (cert, "node-id", "%s", argv [2]);
    int rc = zcert_save (cert, file);
    if (rc == 0)
        printf ("%s\n", zcert_public_txt (cert));
    else
        fprintf (stderr, "titan-keygen: cannot write %s\n", file);
    zcert_destroy (&cert);
    return rc == 0 ? 0 : 1;
}
