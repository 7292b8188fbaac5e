/*  libFuzzer target: the Bitcask data record decoder.  Decodes the input
    as a data file (a sequence of records, as recovery does) and checks
    that every accepted record lies inside the input and re-encodes to the
    very same bytes.  Built and run by `make fuzz-bitcask`.  */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bc_format.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    size_t pos = 0;
    uint32_t max_value = size > 0 ? data [0] * 1024u : 0;
    while (pos < size) {
        bc_record_t rec;
        int64_t r = bc_record_decode (data + pos, size - pos,
                                      pos ? BC_VALUE_HARD_MAX : max_value,
                                      &rec);
        if (r <= 0)
            break;
        if ((size_t) r > size - pos || rec.size != (uint32_t) r
        ||  rec.key < data + pos || rec.value + rec.value_len > data + size)
            abort ();
        uint8_t header [BC_REC_HEADER];
        const uint8_t *payload = rec.type == BC_REC_META ? rec.value : rec.key;
        size_t plen = (size_t) rec.key_len + rec.value_len;
        bc_record_header (header, rec.type, rec.flags, rec.key_len,
                          rec.value_len, rec.revision,
                          bc_record_payload_crc (payload, 0, payload, plen));
        if (memcmp (header, data + pos, BC_REC_HEADER) != 0)
            abort ();
        pos += (size_t) r;
    }
    return 0;
}
