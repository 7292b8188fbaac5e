/*  Titan-KV linearizability checker: histories and their text format.

    A history is a growable array of lin_op_t, each owning copies of its
    key and values.  lin_history_add validates an operation before taking
    it, so that the checker never sees a malformed one (an unknown op with
    a finite completion time, a result on a failed op, ...).

    The text format is line based: a header line "titan-lin-history 1",
    then one operation per line as space-separated name=value fields, e.g.

        op=cas client=2 key=6b31 invoke=10 complete=25 outcome=ok
            expect=7 value=7632 rev=9            (on one line)

    Keys and values are lower-case hex (binary safe; an empty value is
    "value="), times are decimal int64 and "inf" for an unknown outcome.
    Blank lines and lines starting with '#' are ignored.  Every number,
    hex string and size is validated before anything is allocated.
*/
#include "lin_history.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

struct _lin_history_t {
    lin_op_t *ops;
    size_t size;
    size_t capacity;
};

#define LIN_HEADER "titan-lin-history 1"

static void
s_err (char *errbuf, size_t errlen, const char *fmt, ...)
{
    if (!errbuf || errlen == 0)
        return;
    va_list args;
    va_start (args, fmt);
    vsnprintf (errbuf, errlen, fmt, args);
    va_end (args);
}

lin_history_t *
lin_history_new (void)
{
    return calloc (1, sizeof (lin_history_t));
}

static void
s_op_free (lin_op_t *op)
{
    free (op->key);
    free (op->value);
    free (op->out_value);
    op->key = op->value = op->out_value = NULL;
}

void
lin_history_destroy (lin_history_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        lin_history_t *self = *self_p;
        for (size_t i = 0; i < self->size; i++)
            s_op_free (&self->ops [i]);
        free (self->ops);
        free (self);
        *self_p = NULL;
    }
}

size_t
lin_history_size (const lin_history_t *self)
{
    assert (self);
    return self->size;
}

const lin_op_t *
lin_history_get (const lin_history_t *self, size_t index)
{
    assert (self && index < self->size);
    return &self->ops [index];
}

lin_op_t *
lin_history_at (lin_history_t *self, size_t index)
{
    assert (self && index < self->size);
    return &self->ops [index];
}

const char *
lin_op_kind_name (lin_op_kind_t kind)
{
    switch (kind) {
        case LIN_OP_PUT:    return "put";
        case LIN_OP_GET:    return "get";
        case LIN_OP_CAS:    return "cas";
        case LIN_OP_DELETE: return "delete";
    }
    return "?";
}

static const char *
s_outcome_name (lin_outcome_t outcome)
{
    switch (outcome) {
        case LIN_OUT_OK:      return "ok";
        case LIN_OUT_FAILED:  return "failed";
        case LIN_OUT_UNKNOWN: return "unknown";
    }
    return "?";
}

//  Checks the invariants the checker relies on.
static int
s_validate (const lin_op_t *op, char *errbuf, size_t errlen)
{
    if ((unsigned) op->kind > LIN_OP_DELETE) {
        s_err (errbuf, errlen, "bad op kind %d", (int) op->kind);
        return -EINVAL;
    }
    if ((unsigned) op->outcome > LIN_OUT_UNKNOWN) {
        s_err (errbuf, errlen, "bad outcome %d", (int) op->outcome);
        return -EINVAL;
    }
    if (op->key_len > LIN_MAX_BYTES || op->value_len > LIN_MAX_BYTES
    ||  op->out_len > LIN_MAX_BYTES) {
        s_err (errbuf, errlen, "key or value larger than %u bytes", LIN_MAX_BYTES);
        return -EINVAL;
    }
    if ((op->key_len && !op->key) || (op->value_len && !op->value)
    ||  (op->out_len && !op->out_value)) {
        s_err (errbuf, errlen, "NULL buffer with a non-zero length");
        return -EINVAL;
    }
    if (op->invoke == LIN_TIME_INF) {
        s_err (errbuf, errlen, "invoke time cannot be infinite");
        return -EINVAL;
    }
    if (op->outcome == LIN_OUT_UNKNOWN) {
        if (op->complete != LIN_TIME_INF) {
            s_err (errbuf, errlen, "an unknown outcome must have complete=inf");
            return -EINVAL;
        }
    }
    else
    if (op->complete == LIN_TIME_INF || op->complete < op->invoke) {
        s_err (errbuf, errlen, "complete time %" PRId64 " not in [invoke %" PRId64 ", inf)",
               op->complete, op->invoke);
        return -EINVAL;
    }
    if (op->outcome == LIN_OUT_FAILED && op->fail == LIN_FAIL_PRECONDITION
    &&  op->kind != LIN_OP_CAS && op->kind != LIN_OP_DELETE) {
        s_err (errbuf, errlen, "only cas and delete can fail on a precondition");
        return -EINVAL;
    }
    if (op->kind == LIN_OP_CAS && op->expect_absent && op->expect_rev) {
        s_err (errbuf, errlen, "cas cannot expect both absence and a revision");
        return -EINVAL;
    }
    if (op->kind == LIN_OP_CAS && !op->expect_absent && !op->expect_rev) {
        s_err (errbuf, errlen, "cas needs expect=absent or a non-zero revision");
        return -EINVAL;
    }
    if (op->kind == LIN_OP_GET && op->outcome == LIN_OUT_OK && !op->found
    &&  (op->out_len || op->rev)) {
        s_err (errbuf, errlen, "a get that found nothing cannot return a value or revision");
        return -EINVAL;
    }
    return 0;
}

static int
s_dup (uint8_t **dst, const uint8_t *src, size_t len)
{
    *dst = NULL;
    if (len == 0)
        return 0;
    *dst = malloc (len);
    if (!*dst)
        return -ENOMEM;
    memcpy (*dst, src, len);
    return 0;
}

int
lin_history_add (lin_history_t *self, const lin_op_t *op,
                 char *errbuf, size_t errlen)
{
    assert (self && op);
    int rc = s_validate (op, errbuf, errlen);
    if (rc)
        return rc;
    if (self->size > (size_t) INT32_MAX) {
        s_err (errbuf, errlen, "history too large");
        return -E2BIG;
    }
    if (self->size == self->capacity) {
        size_t capacity = self->capacity ? self->capacity * 2 : 64;
        lin_op_t *ops = realloc (self->ops, capacity * sizeof (lin_op_t));
        if (!ops) {
            s_err (errbuf, errlen, "out of memory");
            return -ENOMEM;
        }
        self->ops = ops;
        self->capacity = capacity;
    }
    lin_op_t copy = *op;
    int r1 = s_dup (&copy.key, op->key, op->key_len);
    int r2 = s_dup (&copy.value, op->value, op->value_len);
    int r3 = s_dup (&copy.out_value, op->out_value, op->out_len);
    if (r1 || r2 || r3) {
        s_op_free (&copy);
        s_err (errbuf, errlen, "out of memory");
        return -ENOMEM;
    }
    self->ops [self->size] = copy;
    return (int) self->size++;
}

//  --------------------------------------------------------------------------
//  Writing

static int
s_put_hex (FILE *file, const char *name, const uint8_t *data, size_t len)
{
    if (fprintf (file, " %s=", name) < 0)
        return -EIO;
    for (size_t i = 0; i < len; i++)
        if (fprintf (file, "%02x", data [i]) < 0)
            return -EIO;
    return 0;
}

static int
s_write_op (const lin_op_t *op, FILE *file)
{
    int rc = fprintf (file, "op=%s client=%" PRIu32, lin_op_kind_name (op->kind), op->client) < 0;
    rc |= s_put_hex (file, "key", op->key, op->key_len) != 0;
    rc |= fprintf (file, " invoke=%" PRId64, op->invoke) < 0;
    if (op->complete == LIN_TIME_INF)
        rc |= fprintf (file, " complete=inf") < 0;
    else
        rc |= fprintf (file, " complete=%" PRId64, op->complete) < 0;
    rc |= fprintf (file, " outcome=%s", s_outcome_name (op->outcome)) < 0;
    if (op->outcome == LIN_OUT_FAILED)
        rc |= fprintf (file, " fail=%s",
                       op->fail == LIN_FAIL_PRECONDITION ? "precondition" : "noeffect") < 0;
    if (op->kind == LIN_OP_CAS) {
        if (op->expect_absent)
            rc |= fprintf (file, " expect=absent") < 0;
        else
            rc |= fprintf (file, " expect=%" PRIu64, op->expect_rev) < 0;
    }
    if (op->kind == LIN_OP_PUT || op->kind == LIN_OP_CAS)
        rc |= s_put_hex (file, "value", op->value, op->value_len) != 0;
    if (op->kind == LIN_OP_GET && op->outcome == LIN_OUT_OK) {
        rc |= fprintf (file, " found=%d", op->found ? 1 : 0) < 0;
        if (op->found)
            rc |= s_put_hex (file, "out", op->out_value, op->out_len) != 0;
    }
    if (op->rev)
        rc |= fprintf (file, " rev=%" PRIu64, op->rev) < 0;
    rc |= fputc ('\n', file) == EOF;
    return rc ? -EIO : 0;
}

int
lin_history_write (const lin_history_t *self, FILE *file)
{
    assert (self && file);
    if (fprintf (file, "%s\n", LIN_HEADER) < 0)
        return -EIO;
    for (size_t i = 0; i < self->size; i++)
        if (s_write_op (&self->ops [i], file))
            return -EIO;
    return fflush (file) == 0 ? 0 : -EIO;
}

int
lin_history_save (const lin_history_t *self, const char *path,
                  char *errbuf, size_t errlen)
{
    FILE *file = fopen (path, "w");
    if (!file) {
        int err = errno;
        s_err (errbuf, errlen, "%s: %s", path, strerror (err));
        return -err;
    }
    int rc = lin_history_write (self, file);
    if (fclose (file) != 0 && rc == 0)
        rc = -EIO;
    if (rc)
        s_err (errbuf, errlen, "%s: write failed", path);
    return rc;
}

//  --------------------------------------------------------------------------
//  Reading

static int
s_hexval (int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

//  Decodes hex text into a new buffer; validates length before allocating.
static int
s_parse_hex (const char *text, uint8_t **out, size_t *len)
{
    size_t n = strlen (text);
    if (n % 2 || n / 2 > LIN_MAX_BYTES)
        return -EINVAL;
    *out = NULL;
    *len = n / 2;
    if (n == 0)
        return 0;
    uint8_t *buf = malloc (n / 2);
    if (!buf)
        return -ENOMEM;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = s_hexval (text [2 * i]), lo = s_hexval (text [2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free (buf);
            return -EINVAL;
        }
        buf [i] = (uint8_t) (hi << 4 | lo);
    }
    *out = buf;
    return 0;
}

static int
s_parse_u64 (const char *text, uint64_t *out)
{
    if (!*text || *text == '-' || *text == '+')
        return -EINVAL;
    char *end;
    errno = 0;
    unsigned long long v = strtoull (text, &end, 10);
    if (errno || *end)
        return -EINVAL;
    *out = (uint64_t) v;
    return 0;
}

static int
s_parse_i64 (const char *text, int64_t *out)
{
    if (!*text)
        return -EINVAL;
    char *end;
    errno = 0;
    long long v = strtoll (text, &end, 10);
    if (errno || *end)
        return -EINVAL;
    *out = (int64_t) v;
    return 0;
}

//  Parses one operation line (modified in place) into op; buffers in op
//  are the caller's to free.
static int
s_parse_line (char *line, lin_op_t *op, char *errbuf, size_t errlen)
{
    bool have_op = false, have_invoke = false, have_complete = false, have_outcome = false;
    char *save = NULL;
    for (char *tok = strtok_r (line, " \t", &save); tok; tok = strtok_r (NULL, " \t", &save)) {
        char *eq = strchr (tok, '=');
        if (!eq) {
            s_err (errbuf, errlen, "field '%s' is not name=value", tok);
            return -EINVAL;
        }
        *eq = 0;
        const char *name = tok, *val = eq + 1;
        int rc = 0;
        uint64_t u;
        if (!strcmp (name, "op")) {
            have_op = true;
            if      (!strcmp (val, "put"))    op->kind = LIN_OP_PUT;
            else if (!strcmp (val, "get"))    op->kind = LIN_OP_GET;
            else if (!strcmp (val, "cas"))    op->kind = LIN_OP_CAS;
            else if (!strcmp (val, "delete")) op->kind = LIN_OP_DELETE;
            else rc = -EINVAL;
        }
        else
        if (!strcmp (name, "client")) {
            rc = s_parse_u64 (val, &u);
            if (!rc && u > UINT32_MAX)
                rc = -EINVAL;
            op->client = (uint32_t) u;
        }
        else
        if (!strcmp (name, "key")) {
            free (op->key);
            rc = s_parse_hex (val, &op->key, &op->key_len);
        }
        else
        if (!strcmp (name, "value")) {
            free (op->value);
            rc = s_parse_hex (val, &op->value, &op->value_len);
        }
        else
        if (!strcmp (name, "out")) {
            free (op->out_value);
            rc = s_parse_hex (val, &op->out_value, &op->out_len);
        }
        else
        if (!strcmp (name, "invoke")) {
            have_invoke = true;
            rc = s_parse_i64 (val, &op->invoke);
        }
        else
        if (!strcmp (name, "complete")) {
            have_complete = true;
            if (!strcmp (val, "inf"))
                op->complete = LIN_TIME_INF;
            else
                rc = s_parse_i64 (val, &op->complete);
        }
        else
        if (!strcmp (name, "outcome")) {
            have_outcome = true;
            if      (!strcmp (val, "ok"))      op->outcome = LIN_OUT_OK;
            else if (!strcmp (val, "failed"))  op->outcome = LIN_OUT_FAILED;
            else if (!strcmp (val, "unknown")) op->outcome = LIN_OUT_UNKNOWN;
            else rc = -EINVAL;
        }
        else
        if (!strcmp (name, "fail")) {
            if      (!strcmp (val, "noeffect"))     op->fail = LIN_FAIL_NOEFFECT;
            else if (!strcmp (val, "precondition")) op->fail = LIN_FAIL_PRECONDITION;
            else rc = -EINVAL;
        }
        else
        if (!strcmp (name, "expect")) {
            if (!strcmp (val, "absent"))
                op->expect_absent = true;
            else
                rc = s_parse_u64 (val, &op->expect_rev);
        }
        else
        if (!strcmp (name, "found")) {
            if      (!strcmp (val, "1")) op->found = true;
            else if (!strcmp (val, "0")) op->found = false;
            else rc = -EINVAL;
        }
        else
        if (!strcmp (name, "rev"))
            rc = s_parse_u64 (val, &op->rev);
        else {
            s_err (errbuf, errlen, "unknown field '%s'", name);
            return -EINVAL;
        }
        if (rc == -ENOMEM) {
            s_err (errbuf, errlen, "out of memory");
            return rc;
        }
        if (rc) {
            s_err (errbuf, errlen, "bad value '%s' for field '%s'", val, name);
            return rc;
        }
    }
    if (!have_op || !have_invoke || !have_complete || !have_outcome) {
        s_err (errbuf, errlen, "missing one of the fields op, invoke, complete, outcome");
        return -EINVAL;
    }
    return 0;
}

int
lin_history_read (FILE *file, lin_history_t **history_p,
                  char *errbuf, size_t errlen)
{
    assert (file && history_p);
    *history_p = NULL;
    lin_history_t *self = lin_history_new ();
    if (!self) {
        s_err (errbuf, errlen, "out of memory");
        return -ENOMEM;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    size_t lineno = 0;
    int rc = 0;
    bool header = false;
    char msg [256];
    while ((n = getline (&line, &cap, file)) >= 0) {
        lineno++;
        while (n > 0 && (line [n - 1] == '\n' || line [n - 1] == '\r'))
            line [--n] = 0;
        if (!header) {
            if (strcmp (line, LIN_HEADER)) {
                s_err (errbuf, errlen, "line 1: expected header '%s'", LIN_HEADER);
                rc = -EINVAL;
                break;
            }
            header = true;
            continue;
        }
        const char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == 0 || *p == '#')
            continue;
        lin_op_t op;
        memset (&op, 0, sizeof op);
        rc = s_parse_line (line, &op, msg, sizeof msg);
        if (rc == 0) {
            rc = lin_history_add (self, &op, msg, sizeof msg);
            rc = rc < 0 ? rc : 0;
        }
        s_op_free (&op);
        if (rc) {
            s_err (errbuf, errlen, "line %zu: %s", lineno, msg);
            break;
        }
    }
    if (rc == 0 && ferror (file)) {
        s_err (errbuf, errlen, "read error after line %zu", lineno);
        rc = -EIO;
    }
    if (rc == 0 && !header) {
        s_err (errbuf, errlen, "empty file: expected header '%s'", LIN_HEADER);
        rc = -EINVAL;
    }
    free (line);
    if (rc) {
        lin_history_destroy (&self);
        return rc;
    }
    *history_p = self;
    return 0;
}

int
lin_history_load (const char *path, lin_history_t **history_p,
                  char *errbuf, size_t errlen)
{
    FILE *file = fopen (path, "r");
    if (!file) {
        int err = errno;
        s_err (errbuf, errlen, "%s: %s", path, strerror (err));
        *history_p = NULL;
        return -err;
    }
    char msg [256] = "";
    int rc = lin_history_read (file, history_p, msg, sizeof msg);
    fclose (file);
    if (rc)
        s_err (errbuf, errlen, "%s: %s", path, msg);
    return rc;
}

//  --------------------------------------------------------------------------
//  Describing

char *
lin_format_bytes (char *buf, size_t len, const uint8_t *data, size_t n)
{
    assert (buf && len > 0);
    //  Printable values appear as "text", others as hex; long ones are cut.
    bool printable = true;
    for (size_t i = 0; i < n; i++)
        if (data [i] < 0x20 || data [i] > 0x7e || data [i] == '"')
            printable = false;
    size_t shown = n > 24 ? 24 : n;
    size_t used = 0;
    if (printable) {
        int w = snprintf (buf, len, "\"%.*s%s\"", (int) shown, data ? (const char *) data : "",
                          shown < n ? "..." : "");
        used = w > 0 ? (size_t) w : 0;
    }
    else {
        int w = snprintf (buf, len, "0x");
        used = w > 0 ? (size_t) w : 0;
        for (size_t i = 0; i < shown && used < len; i++) {
            w = snprintf (buf + used, len - used, "%02x", data [i]);
            used += w > 0 ? (size_t) w : 0;
        }
        if (shown < n && used < len) {
            w = snprintf (buf + used, len - used, "...");
            used += w > 0 ? (size_t) w : 0;
        }
    }
    (void) used;
    return buf;
}

char *
lin_op_describe (const lin_op_t *op, char *buf, size_t len)
{
    assert (op && buf && len > 0);
    char key [80], val [80], out [80], cond [40] = "", res [160] = "", times [64];
    lin_format_bytes (key, sizeof key, op->key, op->key_len);
    lin_format_bytes (val, sizeof val, op->value, op->value_len);
    lin_format_bytes (out, sizeof out, op->out_value, op->out_len);
    if (op->kind == LIN_OP_CAS) {
        if (op->expect_absent)
            snprintf (cond, sizeof cond, " if absent");
        else
            snprintf (cond, sizeof cond, " if rev=%" PRIu64, op->expect_rev);
    }
    if (op->outcome == LIN_OUT_UNKNOWN)
        snprintf (res, sizeof res, "unknown");
    else
    if (op->outcome == LIN_OUT_FAILED)
        snprintf (res, sizeof res, "failed (%s)",
                  op->fail == LIN_FAIL_PRECONDITION ? "precondition" : "no effect");
    else
    if (op->kind == LIN_OP_GET && !op->found)
        snprintf (res, sizeof res, "ok not-found");
    else {
        char rev [32] = "";
        if (op->rev)
            snprintf (rev, sizeof rev, " rev=%" PRIu64, op->rev);
        snprintf (res, sizeof res, "ok%s%s%s", op->kind == LIN_OP_GET ? " " : "",
                  op->kind == LIN_OP_GET ? out : "", rev);
    }
    if (op->complete == LIN_TIME_INF)
        snprintf (times, sizeof times, "[%" PRId64 ", inf)", op->invoke);
    else
        snprintf (times, sizeof times, "[%" PRId64 ", %" PRId64 "]", op->invoke, op->complete);
    const char *shown_val = (op->kind == LIN_OP_PUT || op->kind == LIN_OP_CAS) ? val : "";
    snprintf (buf, len, "client %" PRIu32 " %s %s%s%s%s -> %s %s", op->client,
              lin_op_kind_name (op->kind), key, *shown_val ? " " : "", shown_val,
              cond, res, times);
    return buf;
}
