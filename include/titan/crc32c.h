/*  CRC-32C (Castagnoli), the checksum of every record Titan-KV writes to
    disk (Bitcask records and hints, Raft log records, snapshots).  */
#ifndef TITAN_CRC32C_H_INCLUDED
#define TITAN_CRC32C_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*  Extends `crc` (0 to start) over `size` bytes at `data` and returns the
    new value: titan_crc32c (0, "123456789", 9) == 0xE3069283.  Pure and
    thread-safe.  */
uint32_t titan_crc32c (uint32_t crc, const void *data, size_t size);

#ifdef __cplusplus
}
#endif
#endif
