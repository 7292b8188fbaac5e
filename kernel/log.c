/*  Titan-KV logging (include/titan/log.h): formats one line per event and
    writes it to standard error with a single write(2).

    The message is always quoted and escaped (", \ and control
    characters), so a line stays one line and a parser can split it on
    the key=value pairs.  Lines are capped at 2 KiB; a longer message is
    cut and ends in "...".  */
#include "titan/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 2048

static const char *const s_level_names [] = { "error", "warning", "info", "debug" };

/* This thread's binding (one per thread, per copy of this library). */
static _Thread_local const titan_logger_t *s_bound_logger;
static _Thread_local char s_bound_module [64];

void
titan_logger_init (titan_logger_t *self, const char *node_id, int level)
{
    memset (self, 0, sizeof *self);
    snprintf (self->node_id, sizeof self->node_id, "%s", node_id ? node_id : "-");
    __atomic_store_n (&self->level, level, __ATOMIC_RELAXED);
}

int
titan_logger_set_level (titan_logger_t *self, int level)
{
    return __atomic_exchange_n (&self->level, level, __ATOMIC_RELAXED);
}

int
titan_logger_level (const titan_logger_t *self)
{
    return self ? __atomic_load_n (&self->level, __ATOMIC_RELAXED)
                : TITAN_LOG_DEFAULT_LEVEL;
}

int
titan_log_level_parse (const char *name, int *level_p)
{
    if (!name)
        return -EINVAL;
    for (int i = 0; i <= TITAN_LOG_DEBUG; i++)
        if (strcasecmp (name, s_level_names [i]) == 0) {
            *level_p = i;
            return 0;
        }
    if (strcasecmp (name, "warn") == 0) {
        *level_p = TITAN_LOG_WARNING;
        return 0;
    }
    return -EINVAL;
}

const char *
titan_log_level_name (int level)
{
    return level >= 0 && level <= TITAN_LOG_DEBUG ? s_level_names [level] : "?";
}

void
titan_log_bind (const titan_logger_t *logger, const char *module)
{
    s_bound_logger = logger;
    snprintf (s_bound_module, sizeof s_bound_module, "%s",
              module && *module ? module : "-");
}

void
titan_log_current (const titan_logger_t **logger_p, const char **module_p)
{
    *logger_p = s_bound_logger;
    *module_p = s_bound_module [0] ? s_bound_module : "-";
}

bool
titan_log_enabled (int level)
{
    return level <= titan_logger_level (s_bound_logger);
}

/*  Appends `text` quoted and escaped at line[len], staying below `cap`;
    a text that does not fit is cut and ends in "...".  Returns the new
    length.  */
static size_t
s_append_quoted (char *line, size_t len, size_t cap, const char *text)
{
    if (len + 8 >= cap)
        return len;
    line [len++] = '"';
    const char *p = text;
    for (; *p && len + 8 < cap; p++) {
        unsigned char c = (unsigned char) *p;
        if (c == '"' || c == '\\') {
            line [len++] = '\\';
            line [len++] = (char) c;
        }
        else if (c == '\n') {
            line [len++] = '\\';
            line [len++] = 'n';
        }
        else if (c < 0x20 || c == 0x7f)
            len += (size_t) snprintf (line + len, cap - len, "\\x%02x", c);
        else
            line [len++] = (char) c;
    }
    if (*p) {
        memcpy (line + len, "...", 3);
        len += 3;
    }
    line [len++] = '"';
    return len;
}

void
titan_log_vemit (const titan_logger_t *logger, const char *module, int level,
                 const char *fields, const char *format, va_list args)
{
    if (level > titan_logger_level (logger))
        return;
    char msg [LOG_LINE_MAX];
    vsnprintf (msg, sizeof msg, format, args);
    /* zsys-style messages often start with "module: "; drop that prefix,
       the module is a field of its own */
    const char *text = msg;
    size_t mlen = module ? strlen (module) : 0;
    if (mlen && strncmp (text, module, mlen) == 0 && text [mlen] == ':'
    &&  text [mlen + 1] == ' ')
        text += mlen + 2;

    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r (&ts.tv_sec, &tm);
    char line [LOG_LINE_MAX + 256];
    size_t cap = sizeof line - 2;          /* room for '\n' */
    int n = snprintf (line, cap,
                      "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s node=%s "
                      "module=%s msg=", tm.tm_year + 1900, tm.tm_mon + 1,
                      tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                      ts.tv_nsec / 1000000L, titan_log_level_name (level),
                      logger ? logger->node_id : "-",
                      module && *module ? module : "-");
    size_t len = n < 0 ? 0 : (size_t) n;
    len = s_append_quoted (line, len, cap, text);
    if (fields && *fields) {
        n = snprintf (line + len, cap - len, " %s", fields);
        len += n < 0 ? 0 : (size_t) n;
        if (len > cap)
            len = cap;
    }
    line [len++] = '\n';
    ssize_t w = write (STDERR_FILENO, line, len);
    (void) w;                              /* nowhere to report it */
}

void
titan_log_emit (const titan_logger_t *logger, const char *module, int level,
                const char *fields, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    titan_log_vemit (logger, module, level, fields, format, args);
    va_end (args);
}

void
titan_log (int level, const char *format, ...)
{
    if (!titan_log_enabled (level))
        return;
    va_list args;
    va_start (args, format);
    titan_log_vemit (s_bound_logger, s_bound_module [0] ? s_bound_module : "-",
                     level, NULL, format, args);
    va_end (args);
}

void
titan_log_kv (int level, const char *msg, const char *fields, ...)
{
    if (!titan_log_enabled (level))
        return;
    char text [LOG_LINE_MAX];
    va_list args;
    va_start (args, fields);
    vsnprintf (text, sizeof text, fields, args);
    va_end (args);
    titan_log_emit (s_bound_logger, s_bound_module [0] ? s_bound_module : "-",
                    level, text, "%s", msg);
}
