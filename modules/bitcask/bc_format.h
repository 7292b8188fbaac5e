/*  Bitcask on-disk formats: data records and hint entries.

    A data file is a sequence of records, each a 24-byte little-endian
    header followed by the key and the value:

        0  u32 crc        CRC-32C over key, value, then header bytes 4..23
        4  u8  type       BC_REC_PUT, BC_REC_DELETE (tombstone), BC_REC_META
        5  u8  flags      BC_RECF_MORE: the atomic group goes on
        6  u16 key_len    1..65535 (0 for META)
        8  u32 value_len  (0 for DELETE, 16 for META)
       12  u64 revision
       20  u32 reserved   must be 0

    The CRC covers the key and value first so that a writer can checksum
    its payload in its own thread and the commit leader only extends the
    CRC over the 20 header bytes once it has assigned the revision.
    Records written together by one request form an atomic group: all
    records but the last carry BC_RECF_MORE; recovery applies a group only
    when its last record is present.  A META record carries the shard's
    last applied index and the engine's last revision (value: two u64).

    A hint file describes the records of one sealed data file without
    their values: entries of a 24-byte header and the key

        0  u32 crc        CRC-32C over header bytes 4..23, then the key
        4  u8  type       as in the data file, or BC_HINT_END
        5  u8  reserved   0
        6  u16 key_len
        8  u32 offset     of the record in the data file
       12  u32 size       of the record (header + key + value)
       16  u64 revision

    META entries carry their 16 value bytes as the "key".  The last entry
    is BC_HINT_END, whose offset is the entry count and whose revision is
    the data file's size; a hint file without it is ignored (the data file
    is scanned instead).  These decoders never trust a size before
    checking it against the bytes available, and are fuzzed.
*/
#ifndef BC_FORMAT_H_INCLUDED
#define BC_FORMAT_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#define BC_REC_HEADER     24u
#define BC_HINT_HEADER    24u
#define BC_REC_PUT        1u
#define BC_REC_DELETE     2u
#define BC_REC_META       3u
#define BC_HINT_END       0xFFu
#define BC_RECF_MORE      0x01u
#define BC_META_VALUE     16u
#define BC_KEY_MAX        65535u
/* Hard ceiling on any value, whatever max_value_bytes says (1 GiB). */
#define BC_VALUE_HARD_MAX (1u << 30)

/*  A decoded record; key and value point into the decoded buffer.  */
typedef struct {
    uint8_t type;
    uint8_t flags;
    uint16_t key_len;
    uint32_t value_len;
    uint64_t revision;
    const uint8_t *key;
    const uint8_t *value;
    uint32_t size;            /* header + key + value */
} bc_record_t;

/*  A decoded hint entry; key points into the decoded buffer.  */
typedef struct {
    uint8_t type;
    uint16_t key_len;
    uint32_t offset;
    uint32_t size;
    uint64_t revision;
    const uint8_t *key;
    uint32_t entry_size;      /* header + key */
} bc_hint_t;

/*  Little-endian helpers.  */
static inline void
bc_put32 (uint8_t *p, uint32_t v)
{
    p [0] = (uint8_t) v; p [1] = (uint8_t) (v >> 8);
    p [2] = (uint8_t) (v >> 16); p [3] = (uint8_t) (v >> 24);
}
static inline void
bc_put64 (uint8_t *p, uint64_t v)
{
    bc_put32 (p, (uint32_t) v); bc_put32 (p + 4, (uint32_t) (v >> 32));
}
static inline uint32_t
bc_get32 (const uint8_t *p)
{
    return (uint32_t) p [0] | (uint32_t) p [1] << 8
         | (uint32_t) p [2] << 16 | (uint32_t) p [3] << 24;
}
static inline uint64_t
bc_get64 (const uint8_t *p)
{
    return (uint64_t) bc_get32 (p) | (uint64_t) bc_get32 (p + 4) << 32;
}

/*  CRC-32C of a record's key and value: the part a writer computes before
    the revision is known.  */
uint32_t bc_record_payload_crc (const void *key, size_t key_len,
                                const void *value, size_t value_len);

/*  Writes the 24-byte header of a record into `out`, finishing the CRC
    from `payload_crc` (bc_record_payload_crc of the same key and value).  */
void bc_record_header (uint8_t *out, uint8_t type, uint8_t flags,
                       uint16_t key_len, uint32_t value_len,
                       uint64_t revision, uint32_t payload_crc);

/*  Decodes the record at the start of `buf` (`len` bytes available).
    Returns the record size (> 0) and fills *rec; 0 when `len` is too short
    for the record the header announces (a torn tail, or read more); or
    TITAN_ECORRUPT when the header is invalid or the CRC does not match.
    `max_value` bounds value_len (sizes are checked before any use).  */
int64_t bc_record_decode (const uint8_t *buf, size_t len, uint32_t max_value,
                          bc_record_t *rec);

/*  Resynchronisation after a damaged record: the first offset at or after
    `from` where a whole valid record (header and CRC) starts in `buf`, or
    `len` when there is none.  A false match needs a plausible header and
    a matching CRC-32C at once.  */
size_t bc_record_resync (const uint8_t *buf, size_t len, size_t from,
                         uint32_t max_value);

/*  The header of a damaged record at the start of `buf`, when it still
    makes sense: returns its size and fills *rec (key, value and revision
    as the header says) when it is a PUT or DELETE header with valid
    fields and the record fits in `len`; else 0.  The CRC is not checked:
    the caller knows it failed.  Used to keep, in the keydir, the key of a
    record whose payload rotted, so that reads report it (DATA_LOSS) and
    repair it instead of serving an older version.  */
int64_t bc_record_salvage (const uint8_t *buf, size_t len, uint32_t max_value,
                           bc_record_t *rec);

/*  bc_record_decode without the CRC check (the header is still checked):
    for a file whose bytes this engine wrote itself and whose whole-file
    CRC it kept (bc_dfile_t.crc_known), when only the record boundaries,
    keys and revisions are needed (a hint).  *rec is filled only on
    success.  */
int64_t bc_record_parse (const uint8_t *buf, size_t len, uint32_t max_value,
                         bc_record_t *rec);

/*  Encodes one hint entry into `out` (BC_HINT_HEADER + key_len bytes).  */
void bc_hint_encode (uint8_t *out, uint8_t type, const void *key,
                     uint16_t key_len, uint32_t offset, uint32_t size,
                     uint64_t revision);

/*  Decodes the hint entry at the start of `buf`.  Returns the entry size
    (> 0), 0 if `len` is too short, or TITAN_ECORRUPT.  */
int64_t bc_hint_decode (const uint8_t *buf, size_t len, bc_hint_t *hint);

#endif
