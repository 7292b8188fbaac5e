/*  Titan-KV status codes: the one error convention of the whole codebase.

    Functions that can fail return int: 0 on success, a negative value on
    failure.  System failures are negated errno values (-EIO, -ENOSPC, ...),
    as in libuv; the few conditions that errno does not name have their own
    negative codes below, chosen far from errno's range.  A function that
    fails also fills a caller-supplied message buffer when it takes one, so
    that the message can name the file, key or peer involved.
*/
#ifndef TITAN_STATUS_H_INCLUDED
#define TITAN_STATUS_H_INCLUDED

#include <errno.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TITAN_OK             0
#define TITAN_ECORRUPT   (-10001)   /* checksum or structure check failed */
#define TITAN_ENOTFOUND  (-10002)   /* key or object does not exist */
#define TITAN_EMISMATCH  (-10003)   /* compare-and-swap condition failed */
#define TITAN_EABI       (-10004)   /* module ABI version not supported */
#define TITAN_ECONFIG    (-10005)   /* bad configuration */
#define TITAN_ENOLEADER  (-10006)   /* no leader / no quorum: retry later */
#define TITAN_ETOOBIG    (-10007)   /* size limit exceeded */
#define TITAN_ECLOSED    (-10008)   /* object was closed or is shutting down */

/*  Returns a static, human-readable name for a status code (never NULL).  */
const char *titan_strerror (int status);

#ifdef __cplusplus
}
#endif
#endif
