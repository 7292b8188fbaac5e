/*  Printable forms of binary bytes (include/titan/escape.h).  */
#include "titan/escape.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

void
titan_escape (const void *bytes, size_t len, char *out, size_t size)
{
    const uint8_t *b = bytes;
    size_t o = 0;
    if (size == 0)
        return;
    for (size_t i = 0; i < len; i++) {
        char tmp [5];
        int n = b [i] >= 0x20 && b [i] < 0x7f && b [i] != '\\'
              ? snprintf (tmp, sizeof tmp, "%c", b [i])
              : snprintf (tmp, sizeof tmp, "\\x%02x", b [i]);
        if (o + (size_t) n + 4 > size) {      /* keep room for "..." */
            if (o + 4 <= size) {
                memcpy (out + o, "...", 3);
                o += 3;
            }
            break;
        }
        memcpy (out + o, tmp, (size_t) n);
        o += (size_t) n;
    }
    out [o < size ? o : size - 1] = 0;
}
