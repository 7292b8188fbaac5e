/*  Module loader: the only place that calls dlopen.

    As Redis does for its modules, an object is opened with RTLD_NOW (every
    symbol resolved up front, so a missing dependency fails here rather than
    in the middle of a request) and RTLD_LOCAL (two modules may link
    different copies of the same helper), and only one symbol is looked up.
    Like nginx, the descriptor's magic number and ABI version are checked
    before any of the module's code is called; on any failure the object is
    closed again.  */
#include "loader.h"
#include "titan/status.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef TITAN_PKGLIBDIR
#   define TITAN_PKGLIBDIR "/usr/local/lib/titan-kv"
#endif

static void
s_err (char *err, size_t err_size, const char *format, ...)
{
    if (!err || err_size == 0)
        return;
    va_list args;
    va_start (args, format);
    vsnprintf (err, err_size, format, args);
    va_end (args);
}

int
titan_loader_find (const char *spec, const char *module_path, char *path,
                   size_t path_size, char *err, size_t err_size)
{
    if (!spec || !*spec) {
        s_err (err, err_size, "empty module file name");
        return -EINVAL;
    }
    if (strchr (spec, '/')) {
        if (access (spec, R_OK) != 0) {
            int error = errno;
            s_err (err, err_size, "module file %s: %s", spec, strerror (error));
            return -error;
        }
        if ((size_t) snprintf (path, path_size, "%s", spec) >= path_size) {
            s_err (err, err_size, "module file name too long: %s", spec);
            return -ENAMETOOLONG;
        }
        return 0;
    }
    /* The search list: module_path directories, then the install dir. */
    char *dirs = zsys_sprintf ("%s%s%s", module_path ? module_path : "",
                               module_path && *module_path ? ":" : "",
                               TITAN_PKGLIBDIR);
    if (!dirs)
        return -ENOMEM;
    int rc = -ENOENT;
    char *save = NULL;
    for (char *dir = strtok_r (dirs, ":", &save); dir;
         dir = strtok_r (NULL, ":", &save)) {
        if ((size_t) snprintf (path, path_size, "%s/%s", dir, spec)
            >= path_size)
            continue;
        if (access (path, R_OK) == 0) {
            rc = 0;
            break;
        }
    }
    if (rc) {
        s_err (err, err_size, "module file %s not found in %s%s%s", spec,
               module_path && *module_path ? module_path : "",
               module_path && *module_path ? ":" : "", TITAN_PKGLIBDIR);
        if (path_size)
            path [0] = '\0';
    }
    zstr_free (&dirs);
    return rc;
}

int
titan_loader_open (const char *path, titan_dso_t *dso, char *err,
                   size_t err_size)
{
    memset (dso, 0, sizeof *dso);
    if ((size_t) snprintf (dso->path, sizeof dso->path, "%s", path)
        >= sizeof dso->path) {
        s_err (err, err_size, "module file name too long: %s", path);
        return -ENAMETOOLONG;
    }
    dlerror ();
    /* TITAN_KEEP_MODULES_LOADED=1 (diagnostics): a closed module's code
       stays mapped, so a leak report made after it was unloaded (e.g. by
       LeakSanitizer at exit) can still name its functions.  */
    const char *keep = getenv ("TITAN_KEEP_MODULES_LOADED");
    int mode = RTLD_NOW | RTLD_LOCAL;
    if (keep && strcmp (keep, "1") == 0)
        mode |= RTLD_NODELETE;
    void *handle = dlopen (path, mode);
    if (!handle) {
        const char *reason = dlerror ();
        s_err (err, err_size, "cannot load module %s: %s", path,
               reason ? reason : "unknown dlopen error");
        return access (path, R_OK) == 0 ? -EINVAL : -ENOENT;
    }
    dlerror ();
    const titan_module_descriptor_t *desc =
        (const titan_module_descriptor_t *) dlsym (handle, TITAN_MODULE_SYMBOL);
    int rc = 0;
    if (!desc) {
        s_err (err, err_size, "module %s does not export the symbol %s "
               "(is it a Titan-KV module?)", path, TITAN_MODULE_SYMBOL);
        rc = -ENOENT;
    }
    else
    if (desc->magic != TITAN_MODULE_MAGIC) {
        s_err (err, err_size, "module %s: %s has magic 0x%08x, expected "
               "0x%08x (not a Titan-KV module descriptor)", path,
               TITAN_MODULE_SYMBOL, desc->magic, TITAN_MODULE_MAGIC);
        rc = -EINVAL;
    }
    else
    if (desc->abi_version != TITAN_MODULE_ABI_VERSION) {
        s_err (err, err_size, "module %s was built for module ABI version "
               "%u; this titand speaks version %u (rebuild the module)",
               path, desc->abi_version, TITAN_MODULE_ABI_VERSION);
        rc = TITAN_EABI;
    }
    else
    if (!desc->actor || !desc->name || !*desc->name) {
        s_err (err, err_size, "module %s: descriptor without %s", path,
               desc->actor ? "a name" : "an actor function");
        rc = -EINVAL;
    }
    if (rc) {
        dlclose (handle);
        return rc;
    }
    dso->handle = handle;
    dso->desc = desc;
    return 0;
}

void
titan_loader_close (titan_dso_t *dso)
{
    if (dso->handle)
        dlclose (dso->handle);
    memset (dso, 0, sizeof *dso);
}
