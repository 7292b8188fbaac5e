/*  Tests of the ring's membership state machine: commands and their
    life-cycle rules, idempotence of re-applied commands, the epoch, and
    the snapshot and command encodings (round trip, determinism whatever
    the order members joined in, and rejection of every truncation, every
    single-byte corruption, and of structurally bad input that carries a
    valid checksum, including 20,000 seeded random mutations).
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
#include "ring_hash.h"
#include "ring_member.h"

static char s_err [256];

static int
s_add (ring_members_t *m, const char *id, const char *client, const char *peer)
{
    ring_cmd_t cmd;
    int rc = ring_cmd_add (&cmd, id, client, peer, s_err, sizeof s_err);
    return rc ? rc : ring_members_apply_cmd (m, &cmd, s_err, sizeof s_err);
}

static int
s_set (ring_members_t *m, const char *id, ring_state_t state)
{
    ring_cmd_t cmd;
    int rc = ring_cmd_set_state (&cmd, id, state, s_err, sizeof s_err);
    return rc ? rc : ring_members_apply_cmd (m, &cmd, s_err, sizeof s_err);
}

static int
s_remove (ring_members_t *m, const char *id)
{
    ring_cmd_t cmd;
    int rc = ring_cmd_remove (&cmd, id, s_err, sizeof s_err);
    return rc ? rc : ring_members_apply_cmd (m, &cmd, s_err, sizeof s_err);
}

//  Rewrites the trailing CRC so that a deliberately bad structure gets
//  past the checksum and must be caught by the structural checks.
static void
s_reseal (uint8_t *data, size_t size)
{
    uint32_t crc = titan_crc32c (0, data, size - 4);
    for (int i = 0; i < 4; i++)
        data [size - 4 + i] = (uint8_t) (crc >> (8 * i));
}

START_TEST (test_life_cycle)
{
    ring_members_t *m = ring_members_new (16, 3);
    ck_assert_ptr_nonnull (m);
    ck_assert_uint_eq (ring_members_epoch (m), 0);
    ck_assert_int_eq (s_add (m, "n2", "10.0.0.2:7000", "10.0.0.2:7001"), 0);
    ck_assert_int_eq (s_add (m, "n1", "10.0.0.1:7000", "10.0.0.1:7001"), 0);
    ck_assert_uint_eq (ring_members_size (m), 2);
    ck_assert_uint_eq (ring_members_epoch (m), 2);
    //  Sorted by id whatever the order of arrival.
    ck_assert_str_eq (ring_members_at (m, 0)->id, "n1");
    ck_assert_str_eq (ring_members_at (m, 1)->id, "n2");
    const ring_member_t *n1 = ring_members_find (m, "n1");
    ck_assert_ptr_nonnull (n1);
    ck_assert_int_eq (n1->state, RING_JOINING);
    ck_assert_str_eq (n1->client_addr, "10.0.0.1:7000");
    ck_assert_str_eq (n1->peer_addr, "10.0.0.1:7001");
    ck_assert_ptr_null (ring_members_find (m, "n3"));

    //  Re-applying the same add is harmless and does not bump the epoch.
    ck_assert_int_eq (s_add (m, "n1", "10.0.0.1:7000", "10.0.0.1:7001"), 0);
    ck_assert_uint_eq (ring_members_epoch (m), 2);
    //  The same id with other addresses is a conflict.
    ck_assert_int_eq (s_add (m, "n1", "10.0.0.9:7000", "10.0.0.1:7001"), -EEXIST);
    ck_assert_ptr_nonnull (strstr (s_err, "n1"));

    ck_assert_int_eq (s_set (m, "n1", RING_ACTIVE), 0);
    ck_assert_uint_eq (ring_members_epoch (m), 3);
    ck_assert_int_eq (s_set (m, "n1", RING_ACTIVE), 0);            //  idempotent
    ck_assert_uint_eq (ring_members_epoch (m), 3);
    ck_assert_int_eq (s_set (m, "n1", RING_JOINING), -EINVAL);     //  no way back
    ck_assert_int_eq (s_set (m, "n1", RING_LEAVING), 0);
    ck_assert_int_eq (s_set (m, "n1", RING_ACTIVE), 0);            //  drain cancelled
    ck_assert_int_eq (s_set (m, "n1", RING_LEAVING), 0);
    ck_assert_int_eq (s_remove (m, "n1"), 0);
    ck_assert_int_eq (ring_members_find (m, "n1")->state, RING_REMOVED);
    uint64_t epoch = ring_members_epoch (m);
    ck_assert_int_eq (s_remove (m, "n1"), 0);                      //  idempotent
    ck_assert_uint_eq (ring_members_epoch (m), epoch);
    ck_assert_int_eq (s_set (m, "n1", RING_ACTIVE), -EINVAL);      //  tombstone
    ck_assert_int_eq (s_add (m, "n1", "10.0.0.1:7000", "10.0.0.1:7001"), -EEXIST);
    ck_assert_uint_eq (ring_members_epoch (m), epoch);

    //  A joining node may be removed outright (a failed join).
    ck_assert_int_eq (s_remove (m, "n2"), 0);
    ck_assert_int_eq (s_remove (m, "ghost"), TITAN_ENOTFOUND);
    ck_assert_int_eq (s_set (m, "ghost", RING_ACTIVE), TITAN_ENOTFOUND);
    ck_assert_ptr_nonnull (strstr (s_err, "ghost"));
    ring_members_destroy (&m);
    ck_assert_ptr_null (m);
    ring_members_destroy (&m);                                      //  no-op
}
END_TEST

START_TEST (test_bad_commands)
{
    ring_cmd_t cmd;
    ck_assert_int_eq (ring_cmd_add (&cmd, "", "a:1", "a:2", NULL, 0), -EINVAL);
    ck_assert_int_eq (ring_cmd_add (&cmd, "has space", "a:1", "a:2", NULL, 0), -EINVAL);
    ck_assert_int_eq (ring_cmd_add (&cmd, "n/1", "a:1", "a:2", NULL, 0), -EINVAL);
    ck_assert_int_eq (ring_cmd_add (&cmd, "n1", "", "a:2", NULL, 0), -EINVAL);
    ck_assert_int_eq (ring_cmd_add (&cmd, "n1", "a 1", "a:2", NULL, 0), -EINVAL);
    ck_assert_int_eq (ring_cmd_add (&cmd, "n1", "a:1", NULL, NULL, 0), -EINVAL);
    char long_id [RING_ID_MAX + 2];
    memset (long_id, 'x', sizeof long_id - 1);
    long_id [sizeof long_id - 1] = 0;
    ck_assert_int_eq (ring_cmd_add (&cmd, long_id, "a:1", "a:2", NULL, 0), -EINVAL);
    long_id [RING_ID_MAX] = 0;                                      //  exactly the max
    ck_assert_int_eq (ring_cmd_add (&cmd, long_id, "a:1", "a:2", NULL, 0), 0);
    ck_assert_int_eq (ring_cmd_set_state (&cmd, "n1", (ring_state_t) 9, NULL, 0), -EINVAL);
    ck_assert_int_eq (ring_cmd_remove (&cmd, "", NULL, 0), -EINVAL);
    //  A hand-made command with a bad type is refused by apply.
    ring_members_t *m = ring_members_new (16, 3);
    memset (&cmd, 0, sizeof cmd);
    cmd.type = (ring_cmd_type_t) 77;
    strcpy (cmd.id, "n1");
    ck_assert_int_eq (ring_members_apply_cmd (m, &cmd, s_err, sizeof s_err), -EINVAL);
    uint8_t *data;
    size_t size;
    ck_assert_int_eq (ring_cmd_encode (&cmd, &data, &size), -EINVAL);
    ck_assert_ptr_null (data);
    ring_members_destroy (&m);
    //  Out-of-range cluster sizes.
    ck_assert_ptr_null (ring_members_new (0, 3));
    ck_assert_ptr_null (ring_members_new (16, 0));
    ck_assert_ptr_null (ring_members_new (16, RING_MAX_REPLICAS + 1));
}
END_TEST

START_TEST (test_capacity)
{
    ring_members_t *m = ring_members_new (16, 3);
    char id [16];
    for (int i = 0; i < RING_MAX_MEMBERS; i++) {
        snprintf (id, sizeof id, "n%04d", i);
        ck_assert_int_eq (s_add (m, id, "a:1", "a:2"), 0);
    }
    ck_assert_int_eq (s_add (m, "one-too-many", "a:1", "a:2"), -ENOSPC);
    ck_assert_uint_eq (ring_members_size (m), RING_MAX_MEMBERS);
    //  The full table still round-trips.
    uint8_t *data;
    size_t size;
    ck_assert_int_eq (ring_members_encode (m, &data, &size), 0);
    ring_members_t *copy;
    ck_assert_int_eq (ring_members_decode (data, size, &copy, s_err, sizeof s_err), 0);
    ck_assert_uint_eq (ring_members_size (copy), RING_MAX_MEMBERS);
    free (data);
    ring_members_destroy (&copy);
    ring_members_destroy (&m);
}
END_TEST

static ring_members_t *
s_sample (int reverse)
{
    static const char *ids [] = { "alpha", "bravo", "charlie", "delta", "echo" };
    ring_members_t *m = ring_members_new (64, 3);
    for (int k = 0; k < 5; k++) {
        int i = reverse ? 4 - k : k;
        char client [32], peer [32];
        snprintf (client, sizeof client, "10.1.0.%d:7000", i);
        snprintf (peer, sizeof peer, "10.1.0.%d:7001", i);
        ck_assert_int_eq (s_add (m, ids [i], client, peer), 0);
    }
    ck_assert_int_eq (s_set (m, "bravo", RING_ACTIVE), 0);
    ck_assert_int_eq (s_set (m, "delta", RING_LEAVING), 0);
    ck_assert_int_eq (s_remove (m, "echo"), 0);
    return m;
}

START_TEST (test_snapshot_round_trip)
{
    ring_members_t *a = s_sample (0);
    ring_members_t *b = s_sample (1);
    uint8_t *da, *db;
    size_t sa, sb;
    ck_assert_int_eq (ring_members_encode (a, &da, &sa), 0);
    ck_assert_int_eq (ring_members_encode (b, &db, &sb), 0);
    //  Same contents, same bytes, whatever the order of arrival.
    ck_assert_uint_eq (sa, sb);
    ck_assert_int_eq (memcmp (da, db, sa), 0);

    ring_members_t *c;
    ck_assert_int_eq (ring_members_decode (da, sa, &c, s_err, sizeof s_err), 0);
    ck_assert_uint_eq (ring_members_shards (c), 64);
    ck_assert_uint_eq (ring_members_replicas (c), 3);
    ck_assert_uint_eq (ring_members_epoch (c), ring_members_epoch (a));
    ck_assert_uint_eq (ring_members_size (c), 5);
    for (uint32_t i = 0; i < 5; i++) {
        const ring_member_t *x = ring_members_at (a, i), *y = ring_members_at (c, i);
        ck_assert_str_eq (x->id, y->id);
        ck_assert_str_eq (x->client_addr, y->client_addr);
        ck_assert_str_eq (x->peer_addr, y->peer_addr);
        ck_assert_int_eq (x->state, y->state);
    }
    //  A restored table keeps applying commands like the original.
    ck_assert_int_eq (s_set (c, "alpha", RING_ACTIVE), 0);
    ck_assert_int_eq (s_set (a, "alpha", RING_ACTIVE), 0);
    uint8_t *dc;
    size_t sc;
    free (da);
    ck_assert_int_eq (ring_members_encode (a, &da, &sa), 0);
    ck_assert_int_eq (ring_members_encode (c, &dc, &sc), 0);
    ck_assert_uint_eq (sa, sc);
    ck_assert_int_eq (memcmp (da, dc, sa), 0);
    //  A duplicate is an independent copy.
    ring_members_t *d = ring_members_dup (a);
    ck_assert_int_eq (s_set (d, "bravo", RING_LEAVING), 0);
    ck_assert_int_eq (ring_members_find (a, "bravo")->state, RING_ACTIVE);
    ck_assert_uint_eq (ring_members_epoch (d), ring_members_epoch (a) + 1);
    free (da);
    free (db);
    free (dc);
    ring_members_destroy (&a);
    ring_members_destroy (&b);
    ring_members_destroy (&c);
    ring_members_destroy (&d);
}
END_TEST

START_TEST (test_snapshot_rejects_damage)
{
    ring_members_t *a = s_sample (0);
    uint8_t *data;
    size_t size;
    ck_assert_int_eq (ring_members_encode (a, &data, &size), 0);
    ring_members_t *out = (ring_members_t *) &size;     //  must be nulled
    //  Every truncation.
    for (size_t len = 0; len < size; len++) {
        ck_assert_int_eq (ring_members_decode (data, len, &out, s_err, sizeof s_err),
                          TITAN_ECORRUPT);
        ck_assert_ptr_null (out);
    }
    ck_assert_int_eq (ring_members_decode (NULL, 0, &out, NULL, 0), TITAN_ECORRUPT);
    //  Every single-byte corruption (one bit flipped in each byte).
    uint8_t *copy = malloc (size + 8);
    for (size_t i = 0; i < size; i++) {
        memcpy (copy, data, size);
        copy [i] ^= 0x10;
        ck_assert_int_eq (ring_members_decode (copy, size, &out, s_err, sizeof s_err),
                          TITAN_ECORRUPT);
        ck_assert_ptr_null (out);
    }
    ck_assert_ptr_nonnull (strstr (s_err, "checksum"));
    //  Trailing garbage (resealed): refused.
    memcpy (copy, data, size - 4);
    memcpy (copy + size - 4, "junk", 4);
    s_reseal (copy, size + 4);
    ck_assert_int_eq (ring_members_decode (copy, size + 4, &out, s_err, sizeof s_err),
                      TITAN_ECORRUPT);
    //  Structural damage behind a valid checksum.
    //  Header: magic 0, version 4, flags 6, epoch 8, shards 16, replicas
    //  20, count 24, first member at 28: state, id_len, client_len, ...
    struct { size_t offset; uint8_t value; int want; } cases [] = {
        { 4, 2, -ENOTSUP },             //  format version 2
        { 6, 1, TITAN_ECORRUPT },       //  unknown flag
        { 16, 0, TITAN_ECORRUPT },      //  shards 64 -> 0 (low byte)
        { 20, 9, TITAN_ECORRUPT },      //  replicas 9
        { 24, 200, TITAN_ECORRUPT },    //  count larger than the bytes
        { 28, 7, TITAN_ECORRUPT },      //  bad state
        { 29, 0, TITAN_ECORRUPT },      //  empty id
        { 29, 250, TITAN_ECORRUPT },    //  id longer than the record
        { 32, 'A' - 1, TITAN_ECORRUPT },//  '@' in the id
        { 32, 'z', TITAN_ECORRUPT },    //  "zlpha" sorts after "bravo"
        { 0, 'X', TITAN_ECORRUPT },     //  magic
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        memcpy (copy, data, size);
        copy [cases [i].offset] = cases [i].value;
        s_reseal (copy, size);
        ck_assert_int_eq (ring_members_decode (copy, size, &out, s_err, sizeof s_err),
                          cases [i].want);
        ck_assert_ptr_null (out);
    }
    free (copy);
    free (data);
    ring_members_destroy (&a);
}
END_TEST

//  Deterministic pseudo-random numbers (xorshift64*), so a failure replays.
static uint64_t
s_rand (uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * UINT64_C (2685821657736338717);
}

START_TEST (test_random_mutations)
{
    //  20,000 mutated snapshots, half of them resealed so that they reach
    //  the structural checks: the decoder never crashes (ASan watches),
    //  and whatever it accepts is canonical: it re-encodes to the same
    //  bytes.
    ring_members_t *a = s_sample (0);
    uint8_t *data;
    size_t size;
    ck_assert_int_eq (ring_members_encode (a, &data, &size), 0);
    uint8_t *copy = malloc (size);
    uint64_t seed = 0x5EED;
    uint32_t accepted = 0;
    for (int iter = 0; iter < 20000; iter++) {
        memcpy (copy, data, size);
        int flips = 1 + (int) (s_rand (&seed) % 4);
        for (int f = 0; f < flips; f++)
            copy [s_rand (&seed) % size] = (uint8_t) s_rand (&seed);
        if (s_rand (&seed) & 1)
            s_reseal (copy, size);
        ring_members_t *out;
        int rc = ring_members_decode (copy, size, &out, s_err, sizeof s_err);
        if (rc == 0) {
            uint8_t *again;
            size_t again_size;
            ck_assert_int_eq (ring_members_encode (out, &again, &again_size), 0);
            ck_assert_uint_eq (again_size, size);
            ck_assert_int_eq (memcmp (again, copy, size), 0);
            free (again);
            ring_members_destroy (&out);
            accepted++;
        }
        else {
            ck_assert (rc == TITAN_ECORRUPT || rc == -ENOTSUP);
            ck_assert_ptr_null (out);
        }
    }
    //  Some mutations (an address character, the epoch) are legal.
    ck_assert_uint_gt (accepted, 0);
    free (copy);
    free (data);
    ring_members_destroy (&a);
}
END_TEST

START_TEST (test_command_codec)
{
    ring_members_t *m = ring_members_new (16, 3);
    ring_cmd_t cmd, back;
    uint8_t *data;
    size_t size;
    ck_assert_int_eq (ring_cmd_add (&cmd, "n-1.a_b", "[::1]:7000", "tcp://h:7001",
                                    NULL, 0), 0);
    ck_assert_int_eq (ring_cmd_encode (&cmd, &data, &size), 0);
    ck_assert_int_eq (ring_cmd_decode (data, size, &back, s_err, sizeof s_err), 0);
    ck_assert_int_eq (back.type, RING_CMD_ADD);
    ck_assert_str_eq (back.id, "n-1.a_b");
    ck_assert_str_eq (back.client_addr, "[::1]:7000");
    ck_assert_str_eq (back.peer_addr, "tcp://h:7001");
    //  Applying the encoded command, twice: one change.
    ck_assert_int_eq (ring_members_apply (m, data, size, s_err, sizeof s_err), 0);
    ck_assert_int_eq (ring_members_apply (m, data, size, s_err, sizeof s_err), 0);
    ck_assert_uint_eq (ring_members_epoch (m), 1);
    //  Every truncation and every corrupted byte is refused, and a
    //  refused command leaves the table alone.
    for (size_t len = 0; len < size; len++)
        ck_assert_int_eq (ring_members_apply (m, data, len, NULL, 0), TITAN_ECORRUPT);
    for (size_t i = 0; i < size; i++) {
        data [i] ^= 0x01;
        ck_assert_int_eq (ring_members_apply (m, data, size, NULL, 0), TITAN_ECORRUPT);
        data [i] ^= 0x01;
    }
    ck_assert_uint_eq (ring_members_epoch (m), 1);
    //  Valid checksum, bad structure: a NUL inside the id, a bad type, a
    //  state on an add, the reserved byte, a too-long length.
    //  Layout: magic 0, version 4, type 6, state 7, id_len 8, client_len 9,
    //  peer_len 10, reserved 11, id at 12.
    struct { size_t offset; uint8_t value; int want; } cases [] = {
        { 12 + 1, 0, TITAN_ECORRUPT },
        { 6, 9, TITAN_ECORRUPT },
        { 7, RING_ACTIVE, TITAN_ECORRUPT },
        { 11, 1, TITAN_ECORRUPT },
        { 8, 200, TITAN_ECORRUPT },
        { 4, 3, -ENOTSUP },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        uint8_t *copy = malloc (size);
        memcpy (copy, data, size);
        copy [cases [i].offset] = cases [i].value;
        s_reseal (copy, size);
        ck_assert_int_eq (ring_cmd_decode (copy, size, &back, s_err, sizeof s_err),
                          cases [i].want);
        free (copy);
    }
    free (data);

    ck_assert_int_eq (ring_cmd_set_state (&cmd, "n-1.a_b", RING_ACTIVE, NULL, 0), 0);
    ck_assert_int_eq (ring_cmd_encode (&cmd, &data, &size), 0);
    ck_assert_int_eq (ring_members_apply (m, data, size, NULL, 0), 0);
    ck_assert_int_eq (ring_members_find (m, "n-1.a_b")->state, RING_ACTIVE);
    free (data);
    ck_assert_int_eq (ring_cmd_remove (&cmd, "n-1.a_b", NULL, 0), 0);
    ck_assert_int_eq (ring_cmd_encode (&cmd, &data, &size), 0);
    ck_assert_int_eq (ring_cmd_decode (data, size, &back, NULL, 0), 0);
    ck_assert_int_eq (back.type, RING_CMD_REMOVE);
    ck_assert_int_eq (ring_members_apply (m, data, size, NULL, 0), 0);
    ck_assert_int_eq (ring_members_find (m, "n-1.a_b")->state, RING_REMOVED);
    free (data);
    ring_members_destroy (&m);
}
END_TEST

START_TEST (test_create_command)
{
    ring_cmd_t cmd, back;
    uint8_t *data;
    size_t size;
    //  Out of range Q or R is refused when the command is built.
    ck_assert_int_eq (ring_cmd_create (&cmd, 0, 3, s_err, sizeof s_err), -EINVAL);
    ck_assert_int_eq (ring_cmd_create (&cmd, RING_MAX_SHARDS + 1, 3, NULL, 0), -EINVAL);
    ck_assert_int_eq (ring_cmd_create (&cmd, 16, 0, NULL, 0), -EINVAL);
    ck_assert_int_eq (ring_cmd_create (&cmd, 16, RING_MAX_REPLICAS + 1, NULL, 0),
                      -EINVAL);
    ck_assert_int_eq (ring_cmd_create (&cmd, 64, 5, NULL, 0), 0);
    ck_assert_int_eq (ring_cmd_encode (&cmd, &data, &size), 0);
    ck_assert_uint_eq (size, 12 + 8 + 4);
    ck_assert_int_eq (ring_cmd_decode (data, size, &back, s_err, sizeof s_err), 0);
    ck_assert_int_eq (back.type, RING_CMD_CREATE);
    ck_assert_uint_eq (back.shards, 64);
    ck_assert_uint_eq (back.replicas, 5);
    ck_assert_str_eq (back.id, "");
    //  Truncated (the Q/R words missing) or with Q out of range: refused.
    for (size_t len = 0; len < size; len++)
        ck_assert_int_eq (ring_cmd_decode (data, len, &back, NULL, 0), TITAN_ECORRUPT);
    uint8_t *copy = malloc (size);
    memcpy (copy, data, size);
    memset (copy + 12, 0, 4);                  //  shards = 0
    s_reseal (copy, size);
    ck_assert_int_eq (ring_cmd_decode (copy, size, &back, NULL, 0), TITAN_ECORRUPT);
    free (copy);
    //  Applied to a table of the same Q/R: no change; of another: -EEXIST.
    ring_members_t *same = ring_members_new (64, 5);
    ring_members_t *other = ring_members_new (16, 3);
    ck_assert_int_eq (ring_members_apply (same, data, size, NULL, 0), 0);
    ck_assert_uint_eq (ring_members_epoch (same), 0);
    ck_assert_int_eq (ring_members_apply (other, data, size, s_err, sizeof s_err),
                      -EEXIST);
    ck_assert_ptr_nonnull (strstr (s_err, "16 shards and 3 replicas"));
    ck_assert_uint_eq (ring_members_epoch (other), 0);
    free (data);
    //  Other commands never carry Q/R.
    ck_assert_int_eq (ring_cmd_remove (&cmd, "n1", NULL, 0), 0);
    cmd.shards = 16;
    ck_assert_int_eq (ring_cmd_encode (&cmd, &data, &size), -EINVAL);
    ck_assert_int_eq (ring_members_apply_cmd (same, &cmd, NULL, 0), -EINVAL);
    ring_members_destroy (&same);
    ring_members_destroy (&other);
}
END_TEST

int
main (void)
{
    Suite *suite = suite_create ("ring_member");
    TCase *tc = tcase_create ("member");
    tcase_add_test (tc, test_life_cycle);
    tcase_add_test (tc, test_bad_commands);
    tcase_add_test (tc, test_capacity);
    tcase_add_test (tc, test_snapshot_round_trip);
    tcase_add_test (tc, test_snapshot_rejects_damage);
    tcase_add_test (tc, test_random_mutations);
    tcase_add_test (tc, test_command_codec);
    tcase_add_test (tc, test_create_command);
    suite_add_tcase (suite, tc);
    return titan_check_run (suite, false);
}
