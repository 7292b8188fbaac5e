/*  Titan-KV status names: turns the negative status codes of
    include/titan/status.h into short human-readable text.

    Titan's own codes have fixed names; negated errno values are described
    by glibc's strerrordesc_np, which returns a static string and so is
    safe to call from any thread (unlike strerror).  Anything else gets a
    generic name; the function never returns NULL.  */
#include "titan/status.h"

#include <string.h>

const char *
titan_strerror (int status)
{
    switch (status) {
        case TITAN_OK:        return "success";
        case TITAN_ECORRUPT:  return "data corrupt (checksum or structure check failed)";
        case TITAN_ENOTFOUND: return "not found";
        case TITAN_EMISMATCH: return "compare-and-swap condition failed";
        case TITAN_EABI:      return "module ABI version not supported";
        case TITAN_ECONFIG:   return "bad configuration";
        case TITAN_ENOLEADER: return "no leader or no quorum (retry later)";
        case TITAN_ETOOBIG:   return "size limit exceeded";
        case TITAN_ECLOSED:   return "closed or shutting down";
        default:              break;
    }
    if (status < 0 && status > -4096) {
        const char *text = strerrordesc_np (-status);
        if (text)
            return text;
    }
    return "unknown status";
}
