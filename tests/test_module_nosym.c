/*  Test module without the descriptor symbol: a shared object that is not
    a Titan-KV module.  The kernel must refuse it with a clear error.  */
#include "titan/module.h"

__attribute__ ((visibility ("default")))
int titan_not_a_module (void);

int
titan_not_a_module (void)
{
    return 42;
}
