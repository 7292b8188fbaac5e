/*  libFuzzer target: the Bitcask hint entry decoder.  Decodes the input as
    a hint file and checks that each accepted entry lies inside the input,
    re-encodes to the same bytes, and that an END entry is well formed.
    Built and run by `make fuzz-bitcask`.  */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bc_format.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    size_t pos = 0;
    uint8_t *copy = NULL;
    while (pos < size) {
        bc_hint_t h;
        int64_t r = bc_hint_decode (data + pos, size - pos, &h);
        if (r <= 0)
            break;
        if ((size_t) r > size - pos || h.entry_size != (uint32_t) r
        ||  h.key + h.key_len > data + size)
            abort ();
        if (h.type == BC_HINT_END && (h.key_len != 0 || h.size != 0))
            abort ();
        if ((h.type == BC_REC_PUT || h.type == BC_REC_DELETE)
        &&  h.size < BC_REC_HEADER + (uint32_t) h.key_len)
            abort ();
        copy = realloc (copy, (size_t) r);
        if (!copy)
            abort ();
        bc_hint_encode (copy, h.type, h.key, h.key_len, h.offset, h.size,
                        h.revision);
        if (memcmp (copy, data + pos, (size_t) r) != 0)
            abort ();
        pos += (size_t) r;
    }
    free (copy);
    return 0;
}
