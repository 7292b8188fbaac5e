/*  grpc_gateway security: loads the TLS files and the token named in the
    module's settings once, at start, and hands out gRPC credentials built
    from them (see gw_security.h).  A file that cannot be read, a key
    without a certificate, or TLS without a CA is an error at start, never
    a silent fallback to plain text.
*/
#include "gw_security.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/*  PEM files and tokens are small; anything larger is a wrong path.  */
#define S_PEM_MAX (1u << 20)

struct gw_security {
    char *cert_pem;
    char *key_pem;
    char *ca_pem;
    grpc_ssl_client_certificate_request_type client_auth;
    char *token;
};

/*  The value of `name`, or NULL when absent or empty.  */
static const char *
s_get (zconfig_t *settings, const char *name)
{
    const char *value = settings ? zconfig_get (settings, name, NULL) : NULL;
    return value && *value ? value : NULL;
}

/*  Reads a whole text file of at most `max` bytes into a new string.
    NULL with the reason in `error`.  */
static char *
s_slurp (const char *setting, const char *path, size_t max,
         char *error, size_t error_size)
{
    if (access (path, R_OK) != 0) {
        snprintf (error, error_size, "grpc_gateway: %s: cannot read %s: %s",
                  setting, path, strerror (errno));
        return NULL;
    }
    zchunk_t *chunk = zchunk_slurp (path, max + 1);
    size_t size = chunk ? zchunk_size (chunk) : 0;
    char *text = chunk && size && size <= max ? malloc (size + 1) : NULL;
    if (text) {
        memcpy (text, zchunk_data (chunk), size);
        text [size] = '\0';
    }
    zchunk_destroy (&chunk);
    if (!text || strlen (text) != size) {
        snprintf (error, error_size, "grpc_gateway: %s: %s is %s", setting,
                  path, size == 0 ? "empty or unreadable"
                      : size > max ? "too large"
                      : text ? "not text (it holds a NUL byte)"
                      : "too big for memory");
        free (text);
        return NULL;
    }
    return text;
}

/*  Trims blanks at both ends of a token and checks it.  Returns 0 or -1
    with the reason in `error`.  */
static int
s_check_token (const char *setting, char *token, char *error,
               size_t error_size)
{
    size_t len = strlen (token);
    while (len && isspace ((unsigned char) token [len - 1]))
        token [--len] = '\0';
    size_t start = 0;
    while (start < len && isspace ((unsigned char) token [start]))
        start++;
    memmove (token, token + start, len - start + 1);
    len -= start;
    if (len == 0 || len > GW_TOKEN_MAX) {
        snprintf (error, error_size, "grpc_gateway: %s: a token is 1 to %d "
                  "bytes", setting, GW_TOKEN_MAX);
        return -1;
    }
    for (size_t i = 0; i < len; i++)
        if (token [i] < 0x21 || token [i] > 0x7e) {
            snprintf (error, error_size, "grpc_gateway: %s: a token is "
                      "printable ASCII without blanks", setting);
            return -1;
        }
    return 0;
}

void
gw_security_destroy (gw_security_t **self_p)
{
    gw_security_t *self = *self_p;
    if (!self)
        return;
    free (self->cert_pem);
    if (self->key_pem) {
        memset (self->key_pem, 0, strlen (self->key_pem));
        free (self->key_pem);
    }
    free (self->ca_pem);
    if (self->token) {
        memset (self->token, 0, strlen (self->token));
        free (self->token);
    }
    free (self);
    *self_p = NULL;
}

static int
s_load_tls (gw_security_t *self, zconfig_t *settings, char *error,
            size_t error_size)
{
    const char *cert = s_get (settings, "tls_cert");
    const char *key = s_get (settings, "tls_key");
    const char *ca = s_get (settings, "tls_ca");
    const char *auth = s_get (settings, "tls_client_auth");
    if (!cert && !key && !ca && !auth)
        return 0;                        /* TLS off */
    if (!cert || !key || !ca) {
        snprintf (error, error_size, "grpc_gateway: TLS needs tls_cert, "
                  "tls_key and tls_ca (missing: %s%s%s)", cert ? "" : "tls_cert ",
                  key ? "" : "tls_key ", ca ? "" : "tls_ca");
        return -1;
    }
    if (!auth || streq (auth, "none"))
        self->client_auth = GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE;
    else if (streq (auth, "request"))
        self->client_auth = GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY;
    else if (streq (auth, "require"))
        self->client_auth =
            GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
    else {
        snprintf (error, error_size, "grpc_gateway: tls_client_auth is none, "
                  "request or require, not '%s'", auth);
        return -1;
    }
    self->cert_pem = s_slurp ("tls_cert", cert, S_PEM_MAX, error, error_size);
    if (self->cert_pem)
        self->key_pem = s_slurp ("tls_key", key, S_PEM_MAX, error, error_size);
    if (self->key_pem)
        self->ca_pem = s_slurp ("tls_ca", ca, S_PEM_MAX, error, error_size);
    return self->ca_pem ? 0 : -1;
}

static int
s_load_token (gw_security_t *self, zconfig_t *settings, char *error,
              size_t error_size)
{
    const char *token = s_get (settings, "auth_token");
    const char *file = s_get (settings, "auth_token_file");
    if (token && file) {
        snprintf (error, error_size, "grpc_gateway: set auth_token or "
                  "auth_token_file, not both");
        return -1;
    }
    if (token)
        self->token = strdup (token);
    else if (file)
        self->token = s_slurp ("auth_token_file", file, GW_TOKEN_MAX + 64,
                               error, error_size);
    else
        return 0;                        /* tokens off */
    if (!self->token) {
        if (token)
            snprintf (error, error_size, "grpc_gateway: out of memory");
        return -1;
    }
    return s_check_token (token ? "auth_token" : "auth_token_file",
                          self->token, error, error_size);
}

gw_security_t *
gw_security_new (zconfig_t *settings, char *error, size_t error_size)
{
    gw_security_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (error, error_size, "grpc_gateway: out of memory");
        return NULL;
    }
    if (s_load_tls (self, settings, error, error_size)
    ||  s_load_token (self, settings, error, error_size))
        gw_security_destroy (&self);
    return self;
}

bool
gw_security_tls (const gw_security_t *self)
{
    return self->cert_pem != NULL;
}

grpc_server_credentials *
gw_security_server_creds (const gw_security_t *self)
{
    if (!self->cert_pem)
        return grpc_insecure_server_credentials_create ();
    grpc_ssl_pem_key_cert_pair pair = { self->key_pem, self->cert_pem };
    return grpc_ssl_server_credentials_create_ex (self->ca_pem, &pair, 1,
                                                  self->client_auth, NULL);
}

grpc_channel_credentials *
gw_security_channel_creds (const gw_security_t *self)
{
    if (!self->cert_pem)
        return NULL;
    grpc_ssl_pem_key_cert_pair pair = { self->key_pem, self->cert_pem };
    return grpc_ssl_credentials_create (self->ca_pem, &pair, NULL, NULL);
}

const char *
gw_security_token (const gw_security_t *self)
{
    return self->token;
}

/*  Compares in time that depends on the lengths only.  */
static bool
s_equal (const char *a, size_t a_len, const char *b, size_t b_len)
{
    unsigned char diff = a_len != b_len;
    size_t n = a_len < b_len ? a_len : b_len;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char) (a [i] ^ b [i]);
    return diff == 0;
}

bool
gw_security_authorize (const gw_security_t *self,
                       const grpc_metadata_array *metadata, char *message,
                       size_t message_size)
{
    if (!self->token)
        return true;
    static const char bearer [] = "Bearer ";
    const size_t bearer_len = sizeof bearer - 1;
    for (size_t i = 0; i < metadata->count; i++) {
        const grpc_metadata *md = &metadata->metadata [i];
        if (grpc_slice_str_cmp (md->key, GW_AUTH_KEY) != 0)
            continue;
        const char *value = (const char *) GRPC_SLICE_START_PTR (md->value);
        size_t len = GRPC_SLICE_LENGTH (md->value);
        if (len > bearer_len && strncasecmp (value, bearer, bearer_len) == 0
        &&  s_equal (value + bearer_len, len - bearer_len, self->token,
                     strlen (self->token)))
            return true;
        snprintf (message, message_size, "invalid token: this node refuses "
                  "the 'authorization' metadata it was sent");
        return false;
    }
    snprintf (message, message_size, "this node requires a token: send "
              "metadata 'authorization: Bearer <token>' (titanctl --token or "
              "TITANCTL_TOKEN)");
    return false;
}
