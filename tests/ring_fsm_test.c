/*  Tests of the meta group's state machine (modules/ring/ring_fsm.c) and
    of the ring module's state file (ring_state_file.c): CREATE first,
    deterministic rejections that still move the applied index, indexes
    applied once, the encoding's round trip and its refusal of every
    damage, and the file's atomic save, load, and detection of a corrupt,
    truncated or oversized file.  */
#include <check.h>
#include "check_run.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "titan/status.h"
#include "ring_fsm.h"
#include "ring_member.h"
#include "ring_state_file.h"

static char s_err [512];

//  Encodes `cmd` and applies it at `index`; returns the status.
static int
s_apply (ring_fsm_t *fsm, uint64_t index, const ring_cmd_t *cmd)
{
    uint8_t *data;
    size_t size;
    ck_assert_int_eq (ring_cmd_encode (cmd, &data, &size), 0);
    int rc = ring_fsm_apply (fsm, index, data, size, s_err, sizeof s_err);
    free (data);
    return rc;
}

static ring_cmd_t
s_add (const char *id)
{
    ring_cmd_t cmd;
    char client [64], peer [64];
    snprintf (client, sizeof client, "%s:7400", id);
    snprintf (peer, sizeof peer, "%s:7401", id);
    ck_assert_int_eq (ring_cmd_add (&cmd, id, client, peer, NULL, 0), 0);
    return cmd;
}

static ring_cmd_t
s_create (uint32_t q, uint32_t r)
{
    ring_cmd_t cmd;
    ck_assert_int_eq (ring_cmd_create (&cmd, q, r, NULL, 0), 0);
    return cmd;
}

START_TEST (test_apply_order_and_rejections)
{
    ring_fsm_t *fsm = ring_fsm_new ();
    ck_assert_ptr_null (ring_fsm_members (fsm));
    //  A member before CREATE: rejected, counted, index moves.
    ring_cmd_t add1 = s_add ("n1");
    ck_assert_int_eq (s_apply (fsm, 1, &add1), -ENOENT);
    ck_assert_ptr_nonnull (strstr (s_err, "not created"));
    ck_assert_uint_eq (ring_fsm_applied (fsm), 1);
    ck_assert_uint_eq (ring_fsm_rejected (fsm), 1);
    ck_assert_ptr_null (ring_fsm_members (fsm));
    ring_cmd_t create = s_create (32, 3);
    ck_assert_int_eq (s_apply (fsm, 2, &create), 0);
    ck_assert_uint_eq (ring_members_shards (ring_fsm_members (fsm)), 32);
    ck_assert_uint_eq (ring_members_epoch (ring_fsm_members (fsm)), 0);
    //  An index at or below the applied one is not applied again.
    ck_assert_int_eq (s_apply (fsm, 2, &add1), -EALREADY);
    ck_assert_uint_eq (ring_members_size (ring_fsm_members (fsm)), 0);
    ck_assert_int_eq (s_apply (fsm, 3, &add1), 0);
    ck_assert_uint_eq (ring_members_epoch (ring_fsm_members (fsm)), 1);
    //  A second CREATE with other Q: rejected; with the same: harmless.
    ring_cmd_t other = s_create (16, 3);
    ck_assert_int_eq (s_apply (fsm, 4, &other), -EEXIST);
    ck_assert_int_eq (s_apply (fsm, 5, &create), 0);
    //  Garbage, unknown id, forbidden transition: rejected, counted.
    uint8_t junk [] = "not a command";
    ck_assert_int_eq (ring_fsm_apply (fsm, 6, junk, sizeof junk, s_err, sizeof s_err),
                      TITAN_ECORRUPT);
    ring_cmd_t cmd;
    ck_assert_int_eq (ring_cmd_set_state (&cmd, "nobody", RING_ACTIVE, NULL, 0), 0);
    ck_assert_int_eq (s_apply (fsm, 7, &cmd), TITAN_ENOTFOUND);
    ck_assert_int_eq (ring_cmd_remove (&cmd, "n1", NULL, 0), 0);
    ck_assert_int_eq (s_apply (fsm, 8, &cmd), 0);
    ck_assert_int_eq (ring_cmd_set_state (&cmd, "n1", RING_ACTIVE, NULL, 0), 0);
    ck_assert_int_eq (s_apply (fsm, 9, &cmd), -EINVAL);
    ck_assert_uint_eq (ring_fsm_rejected (fsm), 5);
    ck_assert_uint_eq (ring_fsm_applied (fsm), 9);
    ck_assert_uint_eq (ring_members_epoch (ring_fsm_members (fsm)), 2);
    //  skip_to only moves forward.
    ring_fsm_skip_to (fsm, 5);
    ck_assert_uint_eq (ring_fsm_applied (fsm), 9);
    ring_fsm_skip_to (fsm, 12);
    ck_assert_uint_eq (ring_fsm_applied (fsm), 12);
    //  A copy is deep: changing it leaves the original alone.
    ring_fsm_t *copy = ring_fsm_dup (fsm);
    ring_cmd_t add2 = s_add ("n2");
    ck_assert_int_eq (s_apply (copy, 13, &add2), 0);
    ck_assert_uint_eq (ring_members_size (ring_fsm_members (copy)), 2);
    ck_assert_uint_eq (ring_members_size (ring_fsm_members (fsm)), 1);
    ring_fsm_destroy (&copy);
    ring_fsm_destroy (&fsm);
    ck_assert_ptr_null (fsm);
}
END_TEST

//  Two replicas applying the same log reach byte-identical states.
START_TEST (test_deterministic)
{
    ring_fsm_t *a = ring_fsm_new (), *b = ring_fsm_new ();
    ring_cmd_t cmds [6];
    cmds [0] = s_create (16, 3);
    cmds [1] = s_add ("n1");
    cmds [2] = s_add ("n2");
    ck_assert_int_eq (ring_cmd_add (&cmds [3], "n1", "elsewhere:1", "elsewhere:2",
                                    NULL, 0), 0);
    ck_assert_int_eq (ring_cmd_set_state (&cmds [4], "n2", RING_ACTIVE, NULL, 0), 0);
    ck_assert_int_eq (ring_cmd_set_state (&cmds [5], "n9", RING_LEAVING, NULL, 0), 0);
    for (int i = 0; i < 6; i++) {
        int ra = s_apply (a, (uint64_t) i + 1, &cmds [i]);
        int rb = s_apply (b, (uint64_t) i + 1, &cmds [i]);
        ck_assert_int_eq (ra, rb);
    }
    uint8_t *ea, *eb;
    size_t sa, sb;
    ck_assert_int_eq (ring_fsm_encode (a, &ea, &sa), 0);
    ck_assert_int_eq (ring_fsm_encode (b, &eb, &sb), 0);
    ck_assert_uint_eq (sa, sb);
    ck_assert_int_eq (memcmp (ea, eb, sa), 0);
    ck_assert_uint_eq (ring_fsm_rejected (a), 2);
    free (ea);
    free (eb);
    ring_fsm_destroy (&a);
    ring_fsm_destroy (&b);
}
END_TEST

START_TEST (test_encoding)
{
    //  Not created yet: round trip with no membership.
    ring_fsm_t *fsm = ring_fsm_new (), *back = NULL;
    ring_fsm_skip_to (fsm, 7);
    uint8_t *data;
    size_t size;
    ck_assert_int_eq (ring_fsm_encode (fsm, &data, &size), 0);
    ck_assert_int_eq (ring_fsm_decode (data, size, &back, s_err, sizeof s_err), 0);
    ck_assert_ptr_null (ring_fsm_members (back));
    ck_assert_uint_eq (ring_fsm_applied (back), 7);
    ring_fsm_destroy (&back);
    free (data);
    //  With members.
    ring_cmd_t create = s_create (64, 5), add1 = s_add ("n1"), add2 = s_add ("n2");
    ck_assert_int_eq (s_apply (fsm, 8, &create), 0);
    ck_assert_int_eq (s_apply (fsm, 9, &add1), 0);
    ck_assert_int_eq (s_apply (fsm, 10, &add2), 0);
    ck_assert_int_eq (s_apply (fsm, 11, &add2), 0);
    ck_assert_int_eq (ring_fsm_encode (fsm, &data, &size), 0);
    ck_assert_int_eq (ring_fsm_decode (data, size, &back, s_err, sizeof s_err), 0);
    ck_assert_uint_eq (ring_fsm_applied (back), 11);
    ck_assert_uint_eq (ring_members_size (ring_fsm_members (back)), 2);
    ck_assert_uint_eq (ring_members_replicas (ring_fsm_members (back)), 5);
    ck_assert_uint_eq (ring_members_epoch (ring_fsm_members (back)), 2);
    ring_fsm_destroy (&back);
    //  Every truncation and every flipped bit is refused.
    for (size_t len = 0; len < size; len++) {
        ck_assert_int_lt (ring_fsm_decode (data, len, &back, NULL, 0), 0);
        ck_assert_ptr_null (back);
    }
    for (size_t i = 0; i < size * 8; i++) {
        data [i / 8] ^= (uint8_t) (1u << (i % 8));
        ck_assert_int_lt (ring_fsm_decode (data, size, &back, NULL, 0), 0);
        ck_assert_ptr_null (back);
        data [i / 8] ^= (uint8_t) (1u << (i % 8));
    }
    free (data);
    ring_fsm_destroy (&fsm);
}
END_TEST

START_TEST (test_state_file)
{
    char dir [] = "/tmp/ring-fsm-test-XXXXXX";
    ck_assert_ptr_nonnull (mkdtemp (dir));
    char sub [600], path [700];
    snprintf (sub, sizeof sub, "%s/ring", dir);
    snprintf (path, sizeof path, "%s/state", sub);
    ring_fsm_t *fsm = ring_fsm_new (), *back = NULL;
    //  No file yet: -ENOENT, which a fresh node treats as empty.
    ck_assert_int_eq (ring_state_file_load (sub, &back, s_err, sizeof s_err), -ENOENT);
    ring_cmd_t create = s_create (16, 3), add1 = s_add ("n1");
    ck_assert_int_eq (s_apply (fsm, 1, &create), 0);
    ck_assert_int_eq (s_apply (fsm, 2, &add1), 0);
    ck_assert_int_eq (ring_state_file_save (sub, fsm, s_err, sizeof s_err), 0);
    ck_assert_int_eq (access (path, F_OK), 0);
    char tmp [720];
    snprintf (tmp, sizeof tmp, "%s.tmp", path);
    ck_assert_int_ne (access (tmp, F_OK), 0);        //  renamed away
    ck_assert_int_eq (ring_state_file_load (sub, &back, s_err, sizeof s_err), 0);
    ck_assert_uint_eq (ring_fsm_applied (back), 2);
    ck_assert_ptr_nonnull (ring_members_find (ring_fsm_members (back), "n1"));
    ring_fsm_destroy (&back);
    //  A second save replaces the first.
    ring_fsm_skip_to (fsm, 9);
    ck_assert_int_eq (ring_state_file_save (sub, fsm, s_err, sizeof s_err), 0);
    ck_assert_int_eq (ring_state_file_load (sub, &back, s_err, sizeof s_err), 0);
    ck_assert_uint_eq (ring_fsm_applied (back), 9);
    ring_fsm_destroy (&back);
    //  One flipped byte: refused, with the file's name and the reason.
    struct stat st;
    ck_assert_int_eq (stat (path, &st), 0);
    int fd = open (path, O_RDWR);
    ck_assert_int_ge (fd, 0);
    uint8_t byte;
    ck_assert_int_eq (pread (fd, &byte, 1, 20), 1);
    byte ^= 0x40;
    ck_assert_int_eq (pwrite (fd, &byte, 1, 20), 1);
    ck_assert_int_eq (ring_state_file_load (sub, &back, s_err, sizeof s_err),
                      TITAN_ECORRUPT);
    ck_assert_ptr_null (back);
    ck_assert_ptr_nonnull (strstr (s_err, path));
    ck_assert_ptr_nonnull (strstr (s_err, "checksum"));
    //  Truncated, empty, oversized: refused.
    ck_assert_int_eq (ftruncate (fd, st.st_size - 3), 0);
    ck_assert_int_eq (ring_state_file_load (sub, &back, s_err, sizeof s_err),
                      TITAN_ECORRUPT);
    ck_assert_int_eq (ftruncate (fd, 0), 0);
    ck_assert_int_eq (ring_state_file_load (sub, &back, s_err, sizeof s_err),
                      TITAN_ECORRUPT);
    ck_assert_int_eq (ftruncate (fd, RING_FSM_MAX_BYTES + 1), 0);
    ck_assert_int_eq (ring_state_file_load (sub, &back, s_err, sizeof s_err),
                      TITAN_ECORRUPT);
    ck_assert_ptr_nonnull (strstr (s_err, "not a state file"));
    close (fd);
    //  Saving again heals it.
    ck_assert_int_eq (ring_state_file_save (sub, fsm, s_err, sizeof s_err), 0);
    ck_assert_int_eq (ring_state_file_load (sub, &back, s_err, sizeof s_err), 0);
    ring_fsm_destroy (&back);
    ring_fsm_destroy (&fsm);
    char *cmd = NULL;
    ck_assert_int_gt (asprintf (&cmd, "rm -rf '%s'", dir), 0);
    ck_assert_int_eq (system (cmd), 0);
    free (cmd);
}
END_TEST

int
main (void)
{
    Suite *suite = suite_create ("ring_fsm");
    TCase *tc = tcase_create ("fsm");
    tcase_add_test (tc, test_apply_order_and_rejections);
    tcase_add_test (tc, test_deterministic);
    tcase_add_test (tc, test_encoding);
    tcase_add_test (tc, test_state_file);
    suite_add_tcase (suite, tc);
    return titan_check_run (suite, false);
}
