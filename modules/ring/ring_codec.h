/*  Titan-KV ring: little-endian byte codec shared by the ring encoders
    (internal header).  A writer appends to a buffer the caller sized
    exactly beforehand; a reader consumes a bounded input and latches a
    failure on the first read past its end, so that decoders check every
    length without an `if` after each field.
*/
#ifndef RING_CODEC_H_INCLUDED
#define RING_CODEC_H_INCLUDED

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    uint8_t *data;
    size_t size;
    size_t pos;
} ring_writer_t;

typedef struct {
    const uint8_t *data;
    size_t size;
    size_t pos;
    bool failed;            /* a read went past the end */
} ring_reader_t;

static inline void
ring_put_bytes (ring_writer_t *w, const void *src, size_t n)
{
    assert (w->pos + n <= w->size);
    if (n)
        memcpy (w->data + w->pos, src, n);
    w->pos += n;
}

static inline void
ring_put_u8 (ring_writer_t *w, uint8_t v)
{
    ring_put_bytes (w, &v, 1);
}

static inline void
ring_put_u16 (ring_writer_t *w, uint16_t v)
{
    uint8_t b [2] = { (uint8_t) v, (uint8_t) (v >> 8) };
    ring_put_bytes (w, b, 2);
}

static inline void
ring_put_u32 (ring_writer_t *w, uint32_t v)
{
    uint8_t b [4];
    for (int i = 0; i < 4; i++)
        b [i] = (uint8_t) (v >> (8 * i));
    ring_put_bytes (w, b, 4);
}

static inline void
ring_put_u64 (ring_writer_t *w, uint64_t v)
{
    uint8_t b [8];
    for (int i = 0; i < 8; i++)
        b [i] = (uint8_t) (v >> (8 * i));
    ring_put_bytes (w, b, 8);
}

/*  Returns a pointer to the next `n` input bytes and skips them, or NULL
    (and latches `failed`) if fewer remain.  */
static inline const uint8_t *
ring_get_bytes (ring_reader_t *r, size_t n)
{
    if (r->failed || n > r->size - r->pos) {
        r->failed = true;
        return NULL;
    }
    const uint8_t *p = r->data + r->pos;
    r->pos += n;
    return p;
}

static inline uint8_t
ring_get_u8 (ring_reader_t *r)
{
    const uint8_t *p = ring_get_bytes (r, 1);
    return p ? p [0] : 0;
}

static inline uint16_t
ring_get_u16 (ring_reader_t *r)
{
    const uint8_t *p = ring_get_bytes (r, 2);
    return p ? (uint16_t) (p [0] | p [1] << 8) : 0;
}

static inline uint32_t
ring_get_u32 (ring_reader_t *r)
{
    const uint8_t *p = ring_get_bytes (r, 4);
    uint32_t v = 0;
    if (p)
        for (int i = 3; i >= 0; i--)
            v = v << 8 | p [i];
    return v;
}

static inline uint64_t
ring_get_u64 (ring_reader_t *r)
{
    const uint8_t *p = ring_get_bytes (r, 8);
    uint64_t v = 0;
    if (p)
        for (int i = 7; i >= 0; i--)
            v = v << 8 | p [i];
    return v;
}

/*  Formats a message into `err` (of `err_size` bytes) unless it is NULL.
    Defined in ring_member.c.  */
void ring_codec_err (char *err, size_t err_size, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

/*  Opens a ring encoding of `size` bytes at `data`: checks its trailing
    CRC-32C, its 4-byte `magic` and its u16 format version (the layout
    every ring encoding starts with), and that it holds at least `header`
    bytes before the CRC.  On success `*r` reads the bytes before the CRC,
    positioned after the version.  Returns 0, TITAN_ECORRUPT or -ENOTSUP,
    with a message naming `what` in `err` (when not NULL).  Defined in
    ring_member.c.  */
int ring_codec_open (const uint8_t *data, size_t size, const char *magic,
                     size_t header, const char *what, ring_reader_t *r,
                     char *err, size_t err_size);

#endif
