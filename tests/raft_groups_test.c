/*  Unit tests of raft_groups (modules/raft/raft_groups.h): the shard of a
    request read from its protobuf bytes (against messages packed by
    protobuf-c, and malformed input), the group directories, and the
    registry's order, lookups and ownership with real groups opened in a
    temporary directory.
*/
#include "raft_groups.h"
#include "check_run.h"
#include "titan/bus_types.h"
#include "bus.pb-c.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

START_TEST (test_peek_shard)
{
    uint8_t buf [256];
    uint32_t shard = 99;
    /* KvWrite with a value before and after: the shard is field 1 */
    Titan__Bus__KvOp op = TITAN__BUS__KV_OP__INIT;
    op.key.data = (uint8_t *) "k";
    op.key.len = 1;
    Titan__Bus__KvWrite w = TITAN__BUS__KV_WRITE__INIT;
    w.shard = 300;
    w.op = &op;
    w.revision = 1ull << 40;
    w.client_id = "client";
    size_t n = titan__bus__kv_write__pack (&w, buf);
    ck_assert_int_eq (raft_groups_peek_shard (buf, n, &shard), 0);
    ck_assert_uint_eq (shard, 300);
    /* KvGet and RaftMemberChange, with the meta shard's id */
    Titan__Bus__KvGet g = TITAN__BUS__KV_GET__INIT;
    g.shard = TITAN_META_SHARD;
    g.key = op.key;
    n = titan__bus__kv_get__pack (&g, buf);
    ck_assert_int_eq (raft_groups_peek_shard (buf, n, &shard), 0);
    ck_assert_uint_eq (shard, TITAN_META_SHARD);
    Titan__Bus__RaftMemberChange c = TITAN__BUS__RAFT_MEMBER_CHANGE__INIT;
    c.shard = 7;
    c.node_id = "n1";
    n = titan__bus__raft_member_change__pack (&c, buf);
    ck_assert_int_eq (raft_groups_peek_shard (buf, n, &shard), 0);
    ck_assert_uint_eq (shard, 7);
    /* shard 0 is not on the wire (proto3 default); empty message too */
    c.shard = 0;
    n = titan__bus__raft_member_change__pack (&c, buf);
    shard = 5;
    ck_assert_int_eq (raft_groups_peek_shard (buf, n, &shard), 0);
    ck_assert_uint_eq (shard, 0);
    ck_assert_int_eq (raft_groups_peek_shard (NULL, 0, &shard), 0);
    ck_assert_uint_eq (shard, 0);
    /* truncated, bad wire type, field 0, value over 32 bits */
    n = titan__bus__kv_write__pack (&w, buf);
    for (size_t cut = 1; cut < n; cut++) {
        int rc = raft_groups_peek_shard (buf, cut, &shard);
        ck_assert_msg (rc == 0 || rc == -EPROTO, "cut %zu: %d", cut, rc);
    }
    ck_assert_int_eq (raft_groups_peek_shard (buf, 1, &shard), -EPROTO);
    const uint8_t bad_type [] = { 0x0b, 0x01 };          /* field 1, type 3 */
    ck_assert_int_eq (raft_groups_peek_shard (bad_type, 2, &shard), -EPROTO);
    const uint8_t field0 [] = { 0x00, 0x01 };
    ck_assert_int_eq (raft_groups_peek_shard (field0, 2, &shard), -EPROTO);
    const uint8_t big [] = { 0x08, 0x80, 0x80, 0x80, 0x80, 0x10 };  /* 2^32 */
    ck_assert_int_eq (raft_groups_peek_shard (big, sizeof big, &shard), -EPROTO);
    const uint8_t long_len [] = { 0x12, 0x05, 'a' };     /* length beyond */
    ck_assert_int_eq (raft_groups_peek_shard (long_len, 3, &shard), -EPROTO);
}
END_TEST

START_TEST (test_dirs)
{
    char out [64];
    ck_assert_int_eq (raft_groups_dir ("/d/raft", 3, out, sizeof out), 0);
    ck_assert_str_eq (out, "/d/raft/shard-3");
    ck_assert_int_eq (raft_groups_dir ("/d/raft", TITAN_META_SHARD, out,
                                       sizeof out), 0);
    ck_assert_str_eq (out, "/d/raft/meta");
    ck_assert_int_eq (raft_groups_dir ("/d/raft", 12, out, 10), -ENAMETOOLONG);
}
END_TEST

/*  Opens a fresh group `id` under `root` (no bus, no transport: the
    registry never drives it).  */
static raft_group_t *
s_group (const char *root, uint32_t id)
{
    char dir [256];
    ck_assert_int_eq (raft_groups_dir (root, id, dir, sizeof dir), 0);
    raft_group_config_t gc = {
        .shard = id, .dir = dir, .bootstrap = true,
        .election_ticks = 10, .heartbeat_ticks = 2,
        .max_value_bytes = 1024, .storage_module = "bitcask",
        .propose_timeout_ms = 1000, .read_timeout_ms = 1000,
    };
    snprintf (gc.self.node_id, sizeof gc.self.node_id, "n1");
    snprintf (gc.self.peer_addr, sizeof gc.self.peer_addr, "127.0.0.1:1");
    raft_group_t *g = NULL;
    char err [256] = "";
    ck_assert_msg (raft_group_new (&gc, &g, err, sizeof err) == 0, "%s", err);
    return g;
}

START_TEST (test_registry)
{
    char root [] = "/tmp/titan-groups-test-XXXXXX";
    ck_assert_ptr_nonnull (mkdtemp (root));
    raft_groups_t *reg = raft_groups_new ();
    ck_assert_ptr_nonnull (reg);
    const uint32_t ids [] = { 5, TITAN_META_SHARD, 0, 12, 3 };
    for (size_t i = 0; i < sizeof ids / sizeof ids [0]; i++) {
        raft_group_t *g = s_group (root, ids [i]);
        ck_assert_int_eq (raft_groups_add (reg, ids [i], &g), 0);
        ck_assert_ptr_null (g);
    }
    /* a duplicate id is refused and stays with the caller */
    raft_group_t *dup = s_group (root, 12);
    ck_assert_int_eq (raft_groups_add (reg, 12, &dup), -EEXIST);
    ck_assert_ptr_nonnull (dup);
    raft_group_destroy (&dup);
    /* id order, whatever the order of adding */
    ck_assert_uint_eq (raft_groups_size (reg), 5);
    const uint32_t sorted [] = { 0, 3, 5, 12, TITAN_META_SHARD };
    for (size_t i = 0; i < 5; i++) {
        uint32_t id = 1;
        raft_group_t *g = raft_groups_at (reg, i, &id);
        ck_assert_uint_eq (id, sorted [i]);
        ck_assert_ptr_eq (raft_groups_find (reg, id), g);
    }
    ck_assert_ptr_null (raft_groups_find (reg, 4));
    ck_assert_int_eq (raft_groups_remove (reg, 5), 0);
    ck_assert_int_eq (raft_groups_remove (reg, 5), -ENOENT);
    ck_assert_ptr_null (raft_groups_find (reg, 5));
    ck_assert_uint_eq (raft_groups_size (reg), 4);
    uint32_t last = 0;
    raft_groups_at (reg, 3, &last);
    ck_assert_uint_eq (last, TITAN_META_SHARD);
    raft_groups_destroy (&reg);
    ck_assert_ptr_null (reg);
    char cmd [128];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", root);
    ck_assert_int_eq (system (cmd), 0);
}
END_TEST

int
main (void)
{
    Suite *suite = suite_create ("raft_groups");
    TCase *tc = tcase_create ("registry");
    tcase_add_test (tc, test_peek_shard);
    tcase_add_test (tc, test_dirs);
    tcase_add_test (tc, test_registry);
    suite_add_tcase (suite, tc);
    return titan_check_run (suite, false);
}
