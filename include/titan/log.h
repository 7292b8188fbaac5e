/*  Titan-KV logging: one line per event, the same format from every
    module and the kernel:

        2026-11-26T02:10:11.123Z level=info node=node1 module=raft msg="became leader" term=5 shard=0

    (UTC timestamp with milliseconds, level, node id, module, the message
    quoted, then optional key=value fields), written to standard error
    with one write(2) so that lines from different threads never mix.

    Each node owns one titan_logger_t (node id and level) and hands a
    pointer to every module in ctx->logger.  The level is an atomic: the
    kernel changes it at run time (admin.log_level, `titanctl log-level`)
    and every module's next line sees it.  A thread binds itself to a
    logger and a module name once (titan_log_bind, done for module actors
    by TITAN_MODULE_LOG_BIND at the top of the actor); after that the
    short calls titan_log_info (...) etc. need no context, which keeps
    the call sites as small as the zsys_* calls they replaced.  A thread
    that never bound logs with node "-" and module "-" at level info.
    The binding is thread-local, so two nodes in one process never share
    it.  */
#ifndef TITAN_LOG_H_INCLUDED
#define TITAN_LOG_H_INCLUDED

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    TITAN_LOG_ERROR   = 0,
    TITAN_LOG_WARNING = 1,
    TITAN_LOG_INFO    = 2,
    TITAN_LOG_DEBUG   = 3
} titan_log_level_t;

#define TITAN_LOG_DEFAULT_LEVEL TITAN_LOG_INFO

/*  A node's logger.  Plain memory owned by the node (part of the module
    ABI: modules read it through ctx->logger).  */
typedef struct titan_logger {
    char node_id [64];
    int level;                   /* titan_log_level_t; atomic access only */
} titan_logger_t;

/*  Sets up a logger for `node_id` at `level`.  */
void titan_logger_init (titan_logger_t *self, const char *node_id, int level);

/*  Changes the level (thread-safe); returns the previous one.  */
int titan_logger_set_level (titan_logger_t *self, int level);

/*  The current level (thread-safe).  */
int titan_logger_level (const titan_logger_t *self);

/*  Parses "error", "warning" (or "warn"), "info", "debug" (any case) into
    *level_p.  Returns 0, or -EINVAL for anything else.  */
int titan_log_level_parse (const char *name, int *level_p);

/*  Static name of a level ("info"; "?" when out of range).  */
const char *titan_log_level_name (int level);

/*  Binds the calling thread to `logger` (may be NULL: unbind) as module
    `module` (copied, at most 63 bytes).  */
void titan_log_bind (const titan_logger_t *logger, const char *module);

/*  This thread's binding (NULL / "-" when unbound), so that a thread
    can hand it to a thread it starts (titan_log_bind there).  The module
    name is valid until this thread binds again.  */
void titan_log_current (const titan_logger_t **logger_p, const char **module_p);

/*  True when a line of `level` would be written by this thread.  */
bool titan_log_enabled (int level);

/*  Writes one line through this thread's binding: the message is
    formatted from `format`, no fields.  */
void titan_log (int level, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

/*  Writes one line through this thread's binding with the plain message
    `msg` and the key=value fields formatted from `fields` (e.g.
    "term=%" PRIu64 " shard=%u").  */
void titan_log_kv (int level, const char *msg, const char *fields, ...)
    __attribute__ ((format (printf, 3, 4)));

/*  Writes one line for an explicit logger and module (the kernel, which
    logs on behalf of several threads).  `fields` may be NULL.  */
void titan_log_emit (const titan_logger_t *logger, const char *module,
                     int level, const char *fields, const char *format, ...)
    __attribute__ ((format (printf, 5, 6)));

/*  va_list form of titan_log_emit.  */
void titan_log_vemit (const titan_logger_t *logger, const char *module,
                      int level, const char *fields, const char *format,
                      va_list args);

#define titan_log_error(...)   titan_log (TITAN_LOG_ERROR, __VA_ARGS__)
#define titan_log_warning(...) titan_log (TITAN_LOG_WARNING, __VA_ARGS__)
#define titan_log_info(...)    titan_log (TITAN_LOG_INFO, __VA_ARGS__)
#define titan_log_debug(...)   titan_log (TITAN_LOG_DEBUG, __VA_ARGS__)

#ifdef __cplusplus
}
#endif
#endif
