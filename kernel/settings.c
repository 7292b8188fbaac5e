/*  Titan-KV module settings: typed reads from a module's zconfig subtree
    (the `modules/<name>` node of the node config, handed to the module as
    ctx->settings).

    An absent key (or a NULL subtree) yields the caller's fallback, so a
    module can be started with no settings at all.  Integers must be whole
    decimal numbers that fit in int64_t (optional sign, surrounding blanks
    allowed); anything else is reported through *status_p rather than
    guessed at.  */
#include "titan/module.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

/*  Finds the item at `path`, or NULL when the subtree or the key is
    absent.  A key written without a value ("key" alone) counts as absent
    only if it has no value at all.  */
static zconfig_t *
s_locate (zconfig_t *settings, const char *path)
{
    if (!settings || !path || !*path)
        return NULL;
    zconfig_t *item = zconfig_locate (settings, path);
    if (item && zconfig_value (item) == NULL)
        return NULL;
    return item;
}

int64_t
titan_setting_int (zconfig_t *settings, const char *path, int64_t fallback,
                   int *status_p)
{
    if (status_p)
        *status_p = 0;
    zconfig_t *item = s_locate (settings, path);
    if (!item)
        return fallback;

    const char *text = zconfig_value (item);
    while (isspace ((unsigned char) *text))
        text++;
    char *end = NULL;
    errno = 0;
    long long value = strtoll (text, &end, 10);
    bool valid = end != text && errno == 0;
    if (valid) {
        while (isspace ((unsigned char) *end))
            end++;
        valid = *end == '\0';
    }
    if (!valid) {
        if (status_p)
            *status_p = -EINVAL;
        return fallback;
    }
    return (int64_t) value;
}

const char *
titan_setting_str (zconfig_t *settings, const char *path,
                   const char *fallback)
{
    zconfig_t *item = s_locate (settings, path);
    return item ? zconfig_value (item) : fallback;
}
