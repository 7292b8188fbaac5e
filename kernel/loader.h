/*  Module loader (internal to the kernel): finds a module's shared object
    along the module path, loads it and checks its descriptor.  */
#ifndef TITAN_KERNEL_LOADER_H_INCLUDED
#define TITAN_KERNEL_LOADER_H_INCLUDED

#include "titan/module.h"
#include <limits.h>

/*  A loaded module shared object.  */
typedef struct {
    void *handle;                               /* dlopen handle, or NULL */
    const titan_module_descriptor_t *desc;      /* checked descriptor */
    char path [PATH_MAX];                       /* file it was loaded from */
} titan_dso_t;

/*  Resolves a module file name.  A name holding a '/' is used as is;
    otherwise it is searched in each directory of `module_path` (colon
    separated; may be NULL) and then in the compiled-in TITAN_PKGLIBDIR.
    Returns 0 with the path in `path`, or -ENOENT with an error naming the
    file and every directory searched.  */
int titan_loader_find (const char *spec, const char *module_path,
                       char *path, size_t path_size,
                       char *err, size_t err_size);

/*  Loads `path` with dlopen (RTLD_NOW | RTLD_LOCAL), looks up
    TITAN_MODULE_SYMBOL and checks magic, ABI version and the actor before
    anything of the module runs.  Returns 0 and fills *dso, or a negative
    status (-ENOENT missing symbol or file, TITAN_EABI wrong version,
    -EINVAL not a module) with the reason in `err`; the object is closed
    again on failure.  */
int titan_loader_open (const char *path, titan_dso_t *dso,
                       char *err, size_t err_size);

/*  Closes a loaded object (no-op when not loaded) and clears *dso.  */
void titan_loader_close (titan_dso_t *dso);

#endif
