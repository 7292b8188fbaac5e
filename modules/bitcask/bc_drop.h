/*  Bitcask shard drop: deletes a shard's directory durably, for a replica
    that moved away (kv.drop_shard, issue 6).

    A drop first settles an interrupted snapshot restore of the directory
    (bc_snapshot_recover, discarding `<dir>.restore` and `<dir>.old`, so
    that nothing can bring the old state back), then renames `<dir>` to
    `<dir>.trash`, fsyncs the parent, removes the trash and fsyncs the
    parent again.  A crash at any point leaves either the whole shard or
    nothing under its name: the rename is atomic, and a leftover
    `*.trash` directory is removed by bc_drop_clean, which the module
    calls at start.  The engine of the directory must be closed.
*/
#ifndef BC_DROP_H_INCLUDED
#define BC_DROP_H_INCLUDED

#include "bc_file.h"
#include <stdbool.h>
#include <stddef.h>

/*  The suffix of a directory being dropped.  */
#define BC_DROP_SUFFIX ".trash"

/*  Drops the shard directory `dir` (closed).  A missing directory is
    fine (nothing to drop); *dropped (may be NULL) says whether there was
    one.  `fault` may be NULL.  Returns 0 or a negative errno with a
    message naming the step that failed.  */
int bc_drop_dir (const char *dir, bc_fault_t *fault, bool *dropped,
                 char *err, size_t errlen);

/*  Removes every leftover `*.trash` directory directly in `data_dir` (a
    drop interrupted by a crash); a missing data_dir is fine.  Stores the
    number removed in *removed (may be NULL).  Returns 0 or a negative
    errno with a message.  */
int bc_drop_clean (const char *data_dir, bc_fault_t *fault, int *removed,
                   char *err, size_t errlen);

/*  Tests: makes the next bc_drop_dir stop (as if the machine crashed)
    after step `step` (1: renamed to trash and parent synced; 0: off).  */
void bc_drop_test_stop (int step);

#endif
