/*  Titan-KV linearizability checker: the recorded history of a test run.

    A history is a flat list of operations (put, get, cas, delete) as the
    clients saw them: who issued it, on which key, with which arguments,
    when it was invoked and when it completed, and how it ended.  An
    operation ends in one of three ways: ok (the result is known), failed
    (it definitely did not take effect, with a reason) or unknown (timeout,
    connection lost: it may or may not have taken effect; its completion
    time is +infinity).  Times are opaque, monotonic int64 values (a test
    usually records nanoseconds from CLOCK_MONOTONIC).

    Histories are saved and loaded in a line-based text format (see
    docs/linearizability.md) so that a failing run can be replayed with
    lin_check_tool.  Keys and values are binary-safe (hex-encoded on disk).
    A history is not thread-safe: a harness with one thread per client
    records under its own lock (or one history per client, merged).
*/
#ifndef TITAN_LIN_HISTORY_H_INCLUDED
#define TITAN_LIN_HISTORY_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/*  Completion time of an operation whose outcome is unknown.  */
#define LIN_TIME_INF INT64_MAX

/*  Largest key or value the history accepts (loading validates it).  */
#define LIN_MAX_BYTES (16u * 1024u * 1024u)

typedef enum {
    LIN_OP_PUT = 0,
    LIN_OP_GET,
    LIN_OP_CAS,
    LIN_OP_DELETE
} lin_op_kind_t;

typedef enum {
    LIN_OUT_OK = 0,         /* completed; result fields are valid         */
    LIN_OUT_FAILED,         /* definitely did not take effect             */
    LIN_OUT_UNKNOWN         /* may or may not have taken effect           */
} lin_outcome_t;

typedef enum {
    /*  The operation was refused without looking at the key
        (INVALID_ARGUMENT, UNAVAILABLE before any attempt, ...): it
        carries no information about the key and the checker ignores it. */
    LIN_FAIL_NOEFFECT = 0,
    /*  The operation's condition was false at its linearization point:
        a CAS whose expected revision/absence did not hold
        (FAILED_PRECONDITION), or a delete of an absent key (NOT_FOUND).
        The checker verifies the condition really was false.  */
    LIN_FAIL_PRECONDITION
} lin_fail_t;

/*  One operation.  Revisions are opaque, strictly increasing numbers
    returned by writes; 0 means "not reported".  */
typedef struct {
    uint32_t client;
    lin_op_kind_t kind;
    lin_outcome_t outcome;
    lin_fail_t fail;            /* when outcome == LIN_OUT_FAILED          */
    uint8_t *key;
    size_t key_len;
    uint8_t *value;             /* put/cas: value written                  */
    size_t value_len;
    bool expect_absent;         /* cas: condition is "key absent"          */
    uint64_t expect_rev;        /* cas: condition is "revision == this"    */
    int64_t invoke;
    int64_t complete;           /* LIN_TIME_INF when outcome is unknown    */
    /*  Results (outcome ok).  */
    bool found;                 /* get: key was present                    */
    uint8_t *out_value;         /* get: value read (when found)            */
    size_t out_len;
    uint64_t rev;               /* get: revision of the value read;
                                   put/cas/delete: revision written        */
} lin_op_t;

typedef struct _lin_history_t lin_history_t;

/*  Creates an empty history.  Returns NULL when out of memory.  */
lin_history_t *lin_history_new (void);

/*  Destroys a history and every operation in it; nulls *self_p.  */
void lin_history_destroy (lin_history_t **self_p);

/*  Number of operations.  */
size_t lin_history_size (const lin_history_t *self);

/*  Operation `index` (< size).  The history keeps ownership.  */
const lin_op_t *lin_history_get (const lin_history_t *self, size_t index);

/*  Appends a copy of `op` (keys and values are copied; the caller keeps
    its buffers).  Returns the new operation's index, -EINVAL when the
    operation is malformed (message in errbuf when not NULL: e.g. complete
    before invoke, an unknown op with a finite completion time, a failed
    put), -ENOMEM when out of memory.  */
int lin_history_add (lin_history_t *self, const lin_op_t *op,
                     char *errbuf, size_t errlen);

/*  Mutable access to operation `index` for tests that mutate a recorded
    history (e.g. turn one read into a stale read).  Replacing a buffer
    must keep it malloc'ed: the history frees it.  */
lin_op_t *lin_history_at (lin_history_t *self, size_t index);

/*  Writes the history in the text format to `file`.  Returns 0, or -EIO
    when writing fails.  */
int lin_history_write (const lin_history_t *self, FILE *file);

/*  Saves the history to `path`.  Returns 0 or a negative errno (message
    naming the path in errbuf).  */
int lin_history_save (const lin_history_t *self, const char *path,
                      char *errbuf, size_t errlen);

/*  Reads a history in the text format from `file`.  On success stores a
    new history (the caller's) in *history_p and returns 0; on a syntax or
    validation error returns -EINVAL (message with the line number in
    errbuf), -ENOMEM or -EIO.  */
int lin_history_read (FILE *file, lin_history_t **history_p,
                      char *errbuf, size_t errlen);

/*  Loads a history from `path` (as lin_history_read).  A missing or
    unreadable file is the negative errno of fopen.  */
int lin_history_load (const char *path, lin_history_t **history_p,
                      char *errbuf, size_t errlen);

/*  Static name of an operation kind ("put", "get", "cas", "delete").  */
const char *lin_op_kind_name (lin_op_kind_t kind);

/*  Formats bytes for a human: printable ones as "text", others as 0x hex,
    cut after 24 bytes.  Writes at most len bytes (NUL-terminated) into
    buf and returns buf.  */
char *lin_format_bytes (char *buf, size_t len, const uint8_t *data, size_t n);

/*  Formats `op` as one human-readable line (for violation reports) into
    buf; returns buf.  */
char *lin_op_describe (const lin_op_t *op, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
