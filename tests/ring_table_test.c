/*  Tests of the routing table's encoding (modules/ring/ring_table.c):
    round trip of real tables (a decoded table routes exactly like the
    original), tables with no node and with fewer nodes than replicas, and
    rejection of every truncation, every corrupted byte, and of bad
    structure behind a valid checksum.
*/
#include <check.h>
#include "check_run.h"
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "titan/crc32c.h"
#include "titan/status.h"
#include "ring_member.h"
#include "ring_place.h"

static char s_err [256];

static ring_table_t *
s_table (uint32_t q, uint32_t n)
{
    ring_members_t *m = ring_members_new (q, 3);
    for (uint32_t i = 0; i < n; i++) {
        char id [16];
        snprintf (id, sizeof id, "node-%u", i);
        ring_cmd_t cmd;
        ck_assert_int_eq (ring_cmd_add (&cmd, id, "c:1", "p:2", NULL, 0), 0);
        ck_assert_int_eq (ring_members_apply_cmd (m, &cmd, NULL, 0), 0);
    }
    ring_table_t *t;
    ck_assert_int_eq (ring_table_build (m, &t), 0);
    ring_members_destroy (&m);
    return t;
}

static void
s_reseal (uint8_t *data, size_t size)
{
    uint32_t crc = titan_crc32c (0, data, size - 4);
    for (int i = 0; i < 4; i++)
        data [size - 4 + i] = (uint8_t) (crc >> (8 * i));
}

static void
s_same (const ring_table_t *a, const ring_table_t *b)
{
    ck_assert_uint_eq (ring_table_epoch (a), ring_table_epoch (b));
    ck_assert_uint_eq (ring_table_shards (a), ring_table_shards (b));
    ck_assert_uint_eq (ring_table_replicas (a), ring_table_replicas (b));
    ck_assert_uint_eq (ring_table_nodes (a), ring_table_nodes (b));
    for (uint32_t i = 0; i < ring_table_nodes (a); i++)
        ck_assert_str_eq (ring_table_node (a, i), ring_table_node (b, i));
    for (uint32_t s = 0; s < ring_table_shards (a); s++) {
        ck_assert_uint_eq (ring_table_shard_size (a, s), ring_table_shard_size (b, s));
        for (uint32_t k = 0; k <= ring_table_shard_size (a, s); k++)
            ck_assert_int_eq (ring_table_replica_index (a, s, k),
                              ring_table_replica_index (b, s, k));
    }
}

START_TEST (test_round_trip)
{
    static const uint32_t cases [][2] = { { 16, 5 }, { 256, 50 }, { 16, 0 }, { 16, 2 },
                                          { 1, 1 } };
    for (size_t c = 0; c < sizeof cases / sizeof cases [0]; c++) {
        ring_table_t *t = s_table (cases [c][0], cases [c][1]);
        uint8_t *data;
        size_t size;
        ck_assert_int_eq (ring_table_encode (t, &data, &size), 0);
        ring_table_t *back;
        ck_assert_int_eq (ring_table_decode (data, size, &back, s_err, sizeof s_err), 0);
        s_same (t, back);
        if (cases [c][1]) {
            ck_assert_uint_eq (ring_table_moves (t, back), 0);
            ck_assert_uint_eq (ring_table_leader_changes (t, back), 0);
        }
        //  Re-encoding gives the same bytes.
        uint8_t *again;
        size_t again_size;
        ck_assert_int_eq (ring_table_encode (back, &again, &again_size), 0);
        ck_assert_uint_eq (again_size, size);
        ck_assert_int_eq (memcmp (again, data, size), 0);
        free (again);
        free (data);
        ring_table_destroy (&back);
        ring_table_destroy (&t);
    }
}
END_TEST

START_TEST (test_rejects_damage)
{
    ring_table_t *t = s_table (16, 5);
    uint8_t *data;
    size_t size;
    ck_assert_int_eq (ring_table_encode (t, &data, &size), 0);
    ring_table_t *out = t;                      //  must come back NULL
    for (size_t len = 0; len < size; len++) {
        ck_assert_int_eq (ring_table_decode (data, len, &out, s_err, sizeof s_err),
                          TITAN_ECORRUPT);
        ck_assert_ptr_null (out);
    }
    uint8_t *copy = malloc (size);
    for (size_t i = 0; i < size; i++) {
        memcpy (copy, data, size);
        copy [i] ^= 0x80;
        ck_assert_int_eq (ring_table_decode (copy, size, &out, s_err, sizeof s_err),
                          TITAN_ECORRUPT);
        ck_assert_ptr_null (out);
    }
    //  Layout: magic 0, version 4, flags 6, epoch 8, shards 16, replicas
    //  20, width 24, nodes 28, ids from 32 ("node-0".."node-4", 7 bytes
    //  each), replica indices from 67 (u16 each).
    struct { size_t offset; uint8_t value; int want; } cases [] = {
        { 4, 9, -ENOTSUP },
        { 6, 1, TITAN_ECORRUPT },           //  flags
        { 16, 0, TITAN_ECORRUPT },          //  shards 0
        { 20, 8, TITAN_ECORRUPT },          //  replicas above the maximum
        { 24, 2, TITAN_ECORRUPT },          //  width != min (R, nodes)
        { 28, 9, TITAN_ECORRUPT },          //  more nodes than bytes
        { 32, 0, TITAN_ECORRUPT },          //  empty id
        { 33, '!', TITAN_ECORRUPT },        //  bad character
        { 38, '9', TITAN_ECORRUPT },        //  "node-9" sorts after "node-1"
        { 67, 5, TITAN_ECORRUPT },          //  replica index out of range
        { 68, 1, TITAN_ECORRUPT },          //  index 256+x: out of range
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        memcpy (copy, data, size);
        copy [cases [i].offset] = cases [i].value;
        s_reseal (copy, size);
        ck_assert_int_eq (ring_table_decode (copy, size, &out, s_err, sizeof s_err),
                          cases [i].want);
        ck_assert_ptr_null (out);
    }
    //  A shard naming the same node twice.
    memcpy (copy, data, size);
    copy [69] = copy [67];
    copy [70] = copy [68];
    s_reseal (copy, size);
    ck_assert_int_eq (ring_table_decode (copy, size, &out, s_err, sizeof s_err),
                      TITAN_ECORRUPT);
    ck_assert_ptr_nonnull (strstr (s_err, "malformed"));
    free (copy);
    free (data);
    ring_table_destroy (&t);
}
END_TEST

int
main (void)
{
    Suite *suite = suite_create ("ring_table");
    TCase *tc = tcase_create ("table");
    tcase_add_test (tc, test_round_trip);
    tcase_add_test (tc, test_rejects_damage);
    suite_add_tcase (suite, tc);
    return titan_check_run (suite, false);
}
