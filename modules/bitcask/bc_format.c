/*  Bitcask record and hint encoding (formats described in bc_format.h).
    Pure functions over byte buffers: no I/O, no allocation, so that the
    decoders can be fuzzed and used on mapped or partially read data.  */
#include "bc_format.h"

#include "titan/crc32c.h"
#include "titan/status.h"

#include <string.h>

uint32_t
bc_record_payload_crc (const void *key, size_t key_len,
                       const void *value, size_t value_len)
{
    uint32_t crc = titan_crc32c (0, key, key_len);
    if (value_len)
        crc = titan_crc32c (crc, value, value_len);
    return crc;
}

void
bc_record_header (uint8_t *out, uint8_t type, uint8_t flags,
                  uint16_t key_len, uint32_t value_len, uint64_t revision,
                  uint32_t payload_crc)
{
    out [4] = type;
    out [5] = flags;
    out [6] = (uint8_t) key_len;
    out [7] = (uint8_t) (key_len >> 8);
    bc_put32 (out + 8, value_len);
    bc_put64 (out + 12, revision);
    bc_put32 (out + 20, 0);
    bc_put32 (out, titan_crc32c (payload_crc, out + 4, BC_REC_HEADER - 4));
}

/* Checks the fields of a record header (not its CRC). */
static int
s_header_check (const uint8_t *buf, uint32_t max_value)
{
    uint8_t type = buf [4];
    uint8_t flags = buf [5];
    uint16_t key_len = (uint16_t) (buf [6] | buf [7] << 8);
    uint32_t value_len = bc_get32 (buf + 8);
    if (bc_get32 (buf + 20) != 0 || (flags & ~BC_RECF_MORE) != 0)
        return TITAN_ECORRUPT;
    switch (type) {
        case BC_REC_PUT:
            if (key_len == 0 || value_len > max_value
            ||  value_len > BC_VALUE_HARD_MAX)
                return TITAN_ECORRUPT;
            return 0;
        case BC_REC_DELETE:
            return key_len == 0 || value_len != 0 ? TITAN_ECORRUPT : 0;
        case BC_REC_META:
            return key_len != 0 || value_len != BC_META_VALUE
                 ? TITAN_ECORRUPT : 0;
        default:
            return TITAN_ECORRUPT;
    }
}

/* Fills *rec from a record whose header passed s_header_check. */
static int64_t
s_fill (const uint8_t *buf, bc_record_t *rec)
{
    rec->type = buf [4];
    rec->flags = buf [5];
    rec->key_len = (uint16_t) (buf [6] | buf [7] << 8);
    rec->value_len = bc_get32 (buf + 8);
    rec->revision = bc_get64 (buf + 12);
    rec->key = buf + BC_REC_HEADER;
    rec->value = buf + BC_REC_HEADER + rec->key_len;
    rec->size = BC_REC_HEADER + rec->key_len + rec->value_len;
    return (int64_t) rec->size;
}

int64_t
bc_record_parse (const uint8_t *buf, size_t len, uint32_t max_value,
                 bc_record_t *rec)
{
    if (len < BC_REC_HEADER)
        return 0;
    if (s_header_check (buf, max_value))
        return TITAN_ECORRUPT;
    uint16_t key_len = (uint16_t) (buf [6] | buf [7] << 8);
    uint32_t value_len = bc_get32 (buf + 8);
    uint64_t size = (uint64_t) BC_REC_HEADER + key_len + value_len;
    if (len < size)
        return 0;
    return s_fill (buf, rec);
}

int64_t
bc_record_decode (const uint8_t *buf, size_t len, uint32_t max_value,
                  bc_record_t *rec)
{
    bc_record_t parsed;
    int64_t size = bc_record_parse (buf, len, max_value, &parsed);
    if (size <= 0)
        return size;
    uint32_t crc = titan_crc32c (0, buf + BC_REC_HEADER,
                                 (size_t) parsed.key_len + parsed.value_len);
    crc = titan_crc32c (crc, buf + 4, BC_REC_HEADER - 4);
    if (crc != bc_get32 (buf))
        return TITAN_ECORRUPT;
    *rec = parsed;
    return size;
}

void
bc_hint_encode (uint8_t *out, uint8_t type, const void *key,
                uint16_t key_len, uint32_t offset, uint32_t size,
                uint64_t revision)
{
    const uint8_t *k = key;
    out [4] = type;
    out [5] = 0;
    out [6] = (uint8_t) key_len;
    out [7] = (uint8_t) (key_len >> 8);
    bc_put32 (out + 8, offset);
    bc_put32 (out + 12, size);
    bc_put64 (out + 16, revision);
    for (uint16_t i = 0; i < key_len; i++)
        out [BC_HINT_HEADER + i] = k [i];
    uint32_t crc = titan_crc32c (0, out + 4, BC_HINT_HEADER - 4);
    crc = titan_crc32c (crc, out + BC_HINT_HEADER, key_len);
    bc_put32 (out, crc);
}

int64_t
bc_hint_decode (const uint8_t *buf, size_t len, bc_hint_t *hint)
{
    if (len < BC_HINT_HEADER)
        return 0;
    uint8_t type = buf [4];
    uint16_t key_len = (uint16_t) (buf [6] | buf [7] << 8);
    uint32_t size = bc_get32 (buf + 12);
    if (buf [5] != 0)
        return TITAN_ECORRUPT;
    switch (type) {
        case BC_REC_PUT:
        case BC_REC_DELETE:
            if (key_len == 0 || size < BC_REC_HEADER + (uint32_t) key_len)
                return TITAN_ECORRUPT;
            break;
        case BC_REC_META:
            if (key_len != BC_META_VALUE
            ||  size != BC_REC_HEADER + BC_META_VALUE)
                return TITAN_ECORRUPT;
            break;
        case BC_HINT_END:
            if (key_len != 0 || size != 0)
                return TITAN_ECORRUPT;
            break;
        default:
            return TITAN_ECORRUPT;
    }
    size_t entry = (size_t) BC_HINT_HEADER + key_len;
    if (len < entry)
        return 0;
    uint32_t crc = titan_crc32c (0, buf + 4, BC_HINT_HEADER - 4);
    crc = titan_crc32c (crc, buf + BC_HINT_HEADER, key_len);
    if (crc != bc_get32 (buf))
        return TITAN_ECORRUPT;
    hint->type = type;
    hint->key_len = key_len;
    hint->offset = bc_get32 (buf + 8);
    hint->size = size;
    hint->revision = bc_get64 (buf + 16);
    hint->key = buf + BC_HINT_HEADER;
    hint->entry_size = (uint32_t) entry;
    return (int64_t) entry;
}

size_t
bc_record_resync (const uint8_t *buf, size_t len, size_t from,
                  uint32_t max_value)
{
    for (size_t pos = from; pos + BC_REC_HEADER <= len; pos++) {
        bc_record_t rec;
        if (bc_record_decode (buf + pos, len - pos, max_value, &rec) > 0)
            return pos;
    }
    return len;
}

int64_t
bc_record_salvage (const uint8_t *buf, size_t len, uint32_t max_value,
                   bc_record_t *rec)
{
    if (len < BC_REC_HEADER || s_header_check (buf, max_value)
    ||  buf [4] == BC_REC_META)
        return 0;
    uint64_t size = (uint64_t) BC_REC_HEADER
                  + (uint16_t) (buf [6] | buf [7] << 8) + bc_get32 (buf + 8);
    if (size > len)
        return 0;
    return s_fill (buf, rec);
}
