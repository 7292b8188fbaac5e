/*  Test module with a wrong ABI version: the kernel must refuse it before
    calling anything in it (its actor aborts the process if called).  */
#include "titan/module.h"

#include <stdlib.h>

static void
s_never_called (zsock_t *pipe, void *args)
{
    (void) pipe;
    (void) args;
    abort ();
}

__attribute__ ((visibility ("default")))
const titan_module_descriptor_t titan_module_descriptor = {
    TITAN_MODULE_MAGIC, TITAN_MODULE_ABI_VERSION + 41, "badabi", "0.0.1",
    s_never_called, { NULL }
};
