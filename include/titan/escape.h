/*  Printable forms of binary bytes (keys) for log lines and messages.  */
#ifndef TITAN_ESCAPE_H_INCLUDED
#define TITAN_ESCAPE_H_INCLUDED

#include <stddef.h>

/*  Writes `len` bytes as text into `out` (always NUL-terminated when
    size > 0): printable ASCII as is, backslash and every other byte as
    \xHH; bytes that do not fit are replaced by a final "...".  */
void titan_escape (const void *bytes, size_t len, char *out, size_t size);

#endif
