/*  Tests of raft_wire (modules/raft/raft_wire.c): every frame kind and
    both entry commands survive an encode/decode round trip field for
    field (the consistency check's PeerCheck too); truncated, corrupted and semantically bad input is refused with
    -EPROTO and never crashes (every truncation and many single-byte
    corruptions of a real frame are tried; run under ASan in CI).  Also
    checks raft_members (ids, validation, collisions) and the
    configuration codec of raft_storage_adapter.  */
#include <check.h>
#include "check_run.h"
#include <czmq.h>
#include <string.h>

#include "raft_members.h"
#include "raft_storage_adapter.h"
#include "raft_wire.h"
#include "raft_peer.pb-c.h"

static raft_wire_node_t
s_node (const char *id, const char *peer, const char *client)
{
    raft_wire_node_t n;
    memset (&n, 0, sizeof n);
    snprintf (n.node_id, sizeof n.node_id, "%s", id);
    snprintf (n.peer_addr, sizeof n.peer_addr, "%s", peer);
    snprintf (n.client_addr, sizeof n.client_addr, "%s", client);
    return n;
}

/*  An APPEND with three entries and every scalar field set.  */
static raft_msg_t
s_append (raft_entry_t *ents, uint8_t *blob)
{
    raft_msg_t m;
    memset (&m, 0, sizeof m);
    m.group = 7;
    m.from = 11;
    m.to = 12;
    m.type = RAFT_MSG_APPEND;
    m.term = 5;
    m.log_index = 41;
    m.log_term = 4;
    m.commit = 40;
    m.index = 3;
    m.hint_index = 2;
    m.hint_term = 1;
    m.ctx = 99;
    m.reject = true;
    m.force = true;
    m.done = true;
    for (int i = 0; i < 3; i++) {
        ents [i].index = 42 + (uint64_t) i;
        ents [i].term = 5;
        ents [i].type = i == 1 ? RAFT_ENTRY_CONF : RAFT_ENTRY_NORMAL;
        ents [i].size = i == 2 ? 0 : 100;
        ents [i].data = i == 2 ? NULL : blob + i;
    }
    m.n_entries = 3;
    m.entries = ents;
    return m;
}

START_TEST (test_msg_roundtrip)
{
    uint8_t blob [200];
    for (int i = 0; i < 200; i++)
        blob [i] = (uint8_t) (i * 7);
    raft_entry_t ents [3];
    raft_msg_t m = s_append (ents, blob);
    raft_wire_node_t me = s_node ("node-a", "127.0.0.1:7401", "127.0.0.1:7400");
    uint8_t *buf = NULL;
    size_t size = 0;
    ck_assert_int_eq (raft_wire_encode_msg (&me, &m, &buf, &size), 0);
    raft_wire_frame_t f;
    char err [256] = "";
    ck_assert_int_eq (raft_wire_decode (buf, size, &f, err, sizeof err), 0);
    ck_assert_int_eq (f.kind, RAFT_WIRE_RAFT);
    ck_assert_str_eq (f.sender.node_id, "node-a");
    ck_assert_str_eq (f.sender.peer_addr, "127.0.0.1:7401");
    ck_assert_str_eq (f.sender.client_addr, "127.0.0.1:7400");
    const raft_msg_t *d = &f.msg;
    ck_assert_uint_eq (d->group, 7);
    ck_assert_uint_eq (d->from, 11);
    ck_assert_uint_eq (d->to, 12);
    ck_assert_uint_eq (d->type, RAFT_MSG_APPEND);
    ck_assert_uint_eq (d->term, 5);
    ck_assert_uint_eq (d->log_index, 41);
    ck_assert_uint_eq (d->log_term, 4);
    ck_assert_uint_eq (d->commit, 40);
    ck_assert_uint_eq (d->index, 3);
    ck_assert_uint_eq (d->hint_index, 2);
    ck_assert_uint_eq (d->hint_term, 1);
    ck_assert_uint_eq (d->ctx, 99);
    ck_assert (d->reject && d->force && d->done);
    ck_assert_uint_eq (d->n_entries, 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_uint_eq (d->entries [i].index, ents [i].index);
        ck_assert_uint_eq (d->entries [i].term, ents [i].term);
        ck_assert_uint_eq (d->entries [i].type, ents [i].type);
        ck_assert_uint_eq (d->entries [i].size, ents [i].size);
        if (ents [i].size)
            ck_assert_mem_eq (d->entries [i].data, ents [i].data, ents [i].size);
    }
    raft_wire_frame_clear (&f);
    free (buf);
}
END_TEST

/*  Every message type round-trips (no entries), including a snapshot
    chunk with its configuration.  */
START_TEST (test_every_type)
{
    raft_wire_node_t me = s_node ("n1", "h:1", "");
    for (uint32_t type = RAFT_MSG_PREVOTE; type <= RAFT_MSG_READ_INDEX_RESP; type++) {
        raft_msg_t m;
        memset (&m, 0, sizeof m);
        m.group = 1;
        m.from = 2;
        m.to = 3;
        m.type = type;
        m.term = type * 10;
        m.ctx = type;
        uint8_t chunk [5] = { 1, 2, 3, 4, 5 };
        if (type == RAFT_MSG_SNAPSHOT) {
            m.snapshot.index = 100;
            m.snapshot.term = 9;
            m.snapshot.config.n_voters = 2;
            m.snapshot.config.voters [0] = 2;
            m.snapshot.config.voters [1] = 3;
            m.snapshot.config.n_learners = 1;
            m.snapshot.config.learners [0] = 4;
            m.offset = 4096;
            m.data = chunk;
            m.size = sizeof chunk;
        }
        uint8_t *buf = NULL;
        size_t size = 0;
        ck_assert_int_eq (raft_wire_encode_msg (&me, &m, &buf, &size), 0);
        raft_wire_frame_t f;
        char err [256] = "";
        ck_assert_msg (raft_wire_decode (buf, size, &f, err, sizeof err) == 0,
                       "type %u: %s", type, err);
        ck_assert_uint_eq (f.msg.type, type);
        ck_assert_uint_eq (f.msg.term, type * 10);
        ck_assert_uint_eq (f.msg.ctx, type);
        ck_assert_str_eq (f.sender.client_addr, "");
        if (type == RAFT_MSG_SNAPSHOT) {
            ck_assert_uint_eq (f.msg.snapshot.index, 100);
            ck_assert_uint_eq (f.msg.snapshot.term, 9);
            ck_assert_uint_eq (f.msg.snapshot.config.n_voters, 2);
            ck_assert_uint_eq (f.msg.snapshot.config.voters [1], 3);
            ck_assert_uint_eq (f.msg.snapshot.config.n_learners, 1);
            ck_assert_uint_eq (f.msg.snapshot.config.learners [0], 4);
            ck_assert_uint_eq (f.msg.offset, 4096);
            ck_assert_uint_eq (f.msg.size, 5);
            ck_assert_mem_eq (f.msg.data, chunk, 5);
        }
        raft_wire_frame_clear (&f);
        free (buf);
    }
}
END_TEST

START_TEST (test_join_roundtrip)
{
    raft_wire_node_t j = s_node ("joiner", "10.0.0.2:7401", "10.0.0.2:7400");
    uint8_t *buf = NULL;
    size_t size = 0;
    ck_assert_int_eq (raft_wire_encode_join (&j, 0, &buf, &size), 0);
    raft_wire_frame_t f;
    char err [256];
    ck_assert_int_eq (raft_wire_decode (buf, size, &f, err, sizeof err), 0);
    ck_assert_int_eq (f.kind, RAFT_WIRE_JOIN);
    ck_assert_str_eq (f.join.node_id, "joiner");
    ck_assert_str_eq (f.join.peer_addr, "10.0.0.2:7401");
    ck_assert_str_eq (f.join.client_addr, "10.0.0.2:7400");
    raft_wire_frame_clear (&f);
    free (buf);

    raft_wire_join_reply_t r;
    memset (&r, 0, sizeof r);
    r.group = 0;
    r.status = RAFT_JOIN_REDIRECT;
    snprintf (r.leader_id, sizeof r.leader_id, "leader");
    snprintf (r.leader_peer_addr, sizeof r.leader_peer_addr, "10.0.0.1:7401");
    snprintf (r.message, sizeof r.message, "ask the leader");
    raft_wire_node_t me = s_node ("follower", "10.0.0.3:7401", "");
    ck_assert_int_eq (raft_wire_encode_join_reply (&me, &r, &buf, &size), 0);
    ck_assert_int_eq (raft_wire_decode (buf, size, &f, err, sizeof err), 0);
    ck_assert_int_eq (f.kind, RAFT_WIRE_JOIN_REPLY);
    ck_assert_int_eq (f.reply.status, RAFT_JOIN_REDIRECT);
    ck_assert_str_eq (f.reply.leader_id, "leader");
    ck_assert_str_eq (f.reply.leader_peer_addr, "10.0.0.1:7401");
    ck_assert_str_eq (f.reply.message, "ask the leader");
    raft_wire_frame_clear (&f);
    free (buf);

    /* bad inputs to the encoders */
    raft_wire_node_t bad = s_node ("has space", "h:1", "");
    ck_assert_int_eq (raft_wire_encode_join (&bad, 0, &buf, &size), -EINVAL);
    bad = s_node ("ok", "no-port", "");
    ck_assert_int_eq (raft_wire_encode_join (&bad, 0, &buf, &size), -EINVAL);
    r.status = (raft_join_status_t) 9;
    ck_assert_int_eq (raft_wire_encode_join_reply (&me, &r, &buf, &size), -EINVAL);
}
END_TEST

/*  Packs a PeerFrame from sender n1 whose body the caller set (possibly
    breaking the rules) and returns what raft_wire_decode says.  */
static int
s_decode_raw (Titan__Raft__PeerFrame *fr)
{
    fr->node_id = (char *) "n1";
    fr->peer_addr = (char *) "127.0.0.1:1";
    fr->client_addr = (char *) "";
    uint8_t buf [4096];
    size_t size = titan__raft__peer_frame__pack (fr, buf);
    raft_wire_frame_t f;
    char err [256];
    int rc = raft_wire_decode (buf, size, &f, err, sizeof err);
    raft_wire_frame_clear (&f);
    return rc;
}

static int
s_decode_raw_check (Titan__Raft__PeerCheck *c)
{
    Titan__Raft__PeerFrame fr = TITAN__RAFT__PEER_FRAME__INIT;
    fr.body_case = TITAN__RAFT__PEER_FRAME__BODY_CHECK;
    fr.check = c;
    return s_decode_raw (&fr);
}

START_TEST (test_check_roundtrip)
{
    raft_wire_node_t me = s_node ("n1", "127.0.0.1:7401", "127.0.0.1:7400");
    raft_wire_check_t c;
    memset (&c, 0, sizeof c);
    c.group = 3;
    c.kind = RAFT_CHECK_DIGEST;
    c.n_points = 3;
    for (int i = 0; i < 3; i++) {
        c.indexes [i] = 1000 * (uint64_t) (i + 1);
        c.digests [i] = 0xfedcba9876543210ull + (uint64_t) i;
    }
    uint8_t *buf = NULL;
    size_t size = 0;
    ck_assert_int_eq (raft_wire_encode_check (&me, &c, &buf, &size), 0);
    raft_wire_frame_t f;
    char err [256];
    ck_assert_int_eq (raft_wire_decode (buf, size, &f, err, sizeof err), 0);
    ck_assert_int_eq (f.kind, RAFT_WIRE_CHECK);
    ck_assert_uint_eq (f.check.group, 3);
    ck_assert_int_eq (f.check.kind, RAFT_CHECK_DIGEST);
    ck_assert_uint_eq (f.check.n_points, 3);
    ck_assert_uint_eq (f.check.indexes [2], 3000);
    ck_assert_uint_eq (f.check.digests [2], 0xfedcba9876543212ull);
    raft_wire_frame_clear (&f);
    free (buf);

    /* a snapshot piece: conf and data */
    uint8_t data [300];
    for (size_t i = 0; i < sizeof data; i++)
        data [i] = (uint8_t) i;
    memset (&c, 0, sizeof c);
    c.kind = RAFT_CHECK_PIECE;
    c.index = 77;
    c.term = 4;
    c.offset = 100;
    c.total = 400;
    raft_config_t cfg = { .n_voters = 2, .voters = { 5, 6 } };
    c.conf_size = raft_storage_conf_encode (&cfg, c.conf);
    c.size = sizeof data;
    c.data = data;
    ck_assert_int_eq (raft_wire_encode_check (&me, &c, &buf, &size), 0);
    ck_assert_int_eq (raft_wire_decode (buf, size, &f, err, sizeof err), 0);
    ck_assert_int_eq (f.check.kind, RAFT_CHECK_PIECE);
    ck_assert_uint_eq (f.check.index, 77);
    ck_assert_uint_eq (f.check.term, 4);
    ck_assert_uint_eq (f.check.offset, 100);
    ck_assert_uint_eq (f.check.total, 400);
    ck_assert_uint_eq (f.check.size, sizeof data);
    ck_assert (memcmp (f.check.data, data, sizeof data) == 0);
    raft_config_t back;
    ck_assert_int_eq (raft_storage_conf_decode (f.check.conf,
                                                f.check.conf_size, &back), 0);
    ck_assert_uint_eq (back.n_voters, 2);
    ck_assert_uint_eq (back.voters [1], 6);
    raft_wire_frame_clear (&f);
    free (buf);

    /* the encoder refuses what the decoder would */
    c.kind = 0;
    ck_assert_int_eq (raft_wire_encode_check (&me, &c, &buf, &size), -EINVAL);
    c.kind = RAFT_CHECK_DIGEST;
    c.n_points = RAFT_CHECK_MAX_POINTS + 1;
    ck_assert_int_eq (raft_wire_encode_check (&me, &c, &buf, &size), -EINVAL);

    /* hand-made bodies that break the rules */
    uint64_t idx [RAFT_CHECK_MAX_POINTS + 1] = { 0 }, dig [2] = { 0 };
    uint8_t big [RAFT_CHECK_MAX_CONF + 1] = { 0 };
    Titan__Raft__PeerCheck raw = TITAN__RAFT__PEER_CHECK__INIT;
    raw.kind = 9;
    ck_assert_int_eq (s_decode_raw_check (&raw), -EPROTO);
    raw.kind = RAFT_CHECK_DIGEST;
    raw.n_indexes = 2;
    raw.indexes = idx;
    raw.n_digests = 1;
    raw.digests = dig;
    ck_assert_int_eq (s_decode_raw_check (&raw), -EPROTO);  /* counts differ */
    raw.n_indexes = raw.n_digests = 0;
    ck_assert_int_eq (s_decode_raw_check (&raw), 0);
    raw.n_indexes = RAFT_CHECK_MAX_POINTS + 1;
    ck_assert_int_eq (s_decode_raw_check (&raw), -EPROTO);  /* too many */
    raw.n_indexes = 0;
    raw.conf.len = sizeof big;
    raw.conf.data = big;
    ck_assert_int_eq (s_decode_raw_check (&raw), -EPROTO);  /* conf too big */
    raw.conf.len = 0;
    raw.kind = RAFT_CHECK_PIECE;
    raw.index = 5;
    raw.offset = 10;
    raw.total = 12;
    raw.data.len = 3;
    raw.data.data = big;
    ck_assert_int_eq (s_decode_raw_check (&raw), -EPROTO);  /* past total */
    raw.data.len = 2;
    ck_assert_int_eq (s_decode_raw_check (&raw), 0);
    raw.index = 0;
    ck_assert_int_eq (s_decode_raw_check (&raw), -EPROTO);  /* no snapshot */
}
END_TEST

static int
s_decode_raw_forward (Titan__Raft__PeerForward *fw)
{
    Titan__Raft__PeerFrame fr = TITAN__RAFT__PEER_FRAME__INIT;
    fr.body_case = TITAN__RAFT__PEER_FRAME__BODY_FORWARD;
    fr.forward = fw;
    return s_decode_raw (&fr);
}

START_TEST (test_forward_roundtrip)
{
    raft_wire_node_t me = s_node ("n1", "127.0.0.1:7401", "127.0.0.1:7400");
    const uint8_t kv [] = { 0x08, 0x01, 0x12, 0x02, 0x0a, 0x00 };
    raft_wire_forward_t p = { .group = 9, .kind = RAFT_FORWARD_PROPOSE,
                              .id = 42, .size = sizeof kv, .data = kv };
    uint8_t *buf = NULL;
    size_t size = 0;
    ck_assert_int_eq (raft_wire_encode_forward (&me, &p, &buf, &size), 0);
    raft_wire_frame_t f;
    char err [256];
    ck_assert_int_eq (raft_wire_decode (buf, size, &f, err, sizeof err), 0);
    ck_assert_int_eq (f.kind, RAFT_WIRE_FORWARD);
    ck_assert_str_eq (f.sender.node_id, "n1");
    ck_assert_uint_eq (f.forward.group, 9);
    ck_assert_int_eq (f.forward.kind, RAFT_FORWARD_PROPOSE);
    ck_assert_uint_eq (f.forward.id, 42);
    ck_assert_uint_eq (f.forward.size, sizeof kv);
    ck_assert (memcmp (f.forward.data, kv, sizeof kv) == 0);
    raft_wire_frame_clear (&f);
    free (buf);

    raft_wire_forward_t r = { .group = 9, .kind = RAFT_FORWARD_RESULT,
                              .id = 42, .index = 1234, .term = 7 };
    ck_assert_int_eq (raft_wire_encode_forward (&me, &r, &buf, &size), 0);
    ck_assert_int_eq (raft_wire_decode (buf, size, &f, err, sizeof err), 0);
    ck_assert_int_eq (f.forward.kind, RAFT_FORWARD_RESULT);
    ck_assert_uint_eq (f.forward.index, 1234);
    ck_assert_uint_eq (f.forward.term, 7);
    ck_assert_uint_eq (f.forward.code, 0);
    ck_assert_uint_eq (f.forward.size, 0);
    raft_wire_frame_clear (&f);
    free (buf);
    r.code = 14;                    /* a refusal needs no index */
    r.index = r.term = 0;
    ck_assert_int_eq (raft_wire_encode_forward (&me, &r, &buf, &size), 0);
    free (buf);

    /* the encoder refuses what the decoder would */
    r.code = 0;
    ck_assert_int_eq (raft_wire_encode_forward (&me, &r, &buf, &size), -EINVAL);
    p.id = 0;
    ck_assert_int_eq (raft_wire_encode_forward (&me, &p, &buf, &size), -EINVAL);
    p.id = 1;
    p.size = 0;
    ck_assert_int_eq (raft_wire_encode_forward (&me, &p, &buf, &size), -EINVAL);
    p.kind = 3;
    ck_assert_int_eq (raft_wire_encode_forward (&me, &p, &buf, &size), -EINVAL);

    /* hand-made bodies that break the rules */
    uint8_t data [4] = { 1, 2, 3, 4 };
    Titan__Raft__PeerForward raw = TITAN__RAFT__PEER_FORWARD__INIT;
    raw.kind = RAFT_FORWARD_PROPOSE;
    raw.id = 5;
    raw.data.len = sizeof data;
    raw.data.data = data;
    ck_assert_int_eq (s_decode_raw_forward (&raw), 0);
    raw.id = 0;
    ck_assert_int_eq (s_decode_raw_forward (&raw), -EPROTO);  /* no id */
    raw.id = 5;
    raw.kind = 0;
    ck_assert_int_eq (s_decode_raw_forward (&raw), -EPROTO);  /* no kind */
    raw.kind = RAFT_FORWARD_PROPOSE;
    raw.data.len = 0;
    ck_assert_int_eq (s_decode_raw_forward (&raw), -EPROTO);  /* no write */
    raw.kind = RAFT_FORWARD_RESULT;
    raw.index = 3;
    raw.term = 1;
    ck_assert_int_eq (s_decode_raw_forward (&raw), 0);
    raw.term = 0;
    ck_assert_int_eq (s_decode_raw_forward (&raw), -EPROTO);  /* no term */
    raw.code = 14;
    ck_assert_int_eq (s_decode_raw_forward (&raw), 0);        /* refused */
    raw.data.len = sizeof data;
    ck_assert_int_eq (s_decode_raw_forward (&raw), -EPROTO);  /* data */
}
END_TEST

START_TEST (test_commands)
{
    const uint8_t kv [] = { 0x08, 0x01, 0x12, 0x00 };
    uint8_t *buf = NULL;
    size_t size = 0;
    ck_assert_int_eq (raft_wire_encode_write (kv, sizeof kv, &buf, &size), 0);
    const uint8_t *payload;
    size_t psize;
    ck_assert_int_eq (raft_wire_command_kind (buf, size, &payload, &psize),
                      RAFT_CMD_WRITE);
    ck_assert_uint_eq (psize, sizeof kv);
    ck_assert_mem_eq (payload, kv, sizeof kv);
    free (buf);

    raft_wire_node_t m = s_node ("n2", "127.0.0.1:9", "127.0.0.1:8");
    ck_assert_int_eq (raft_wire_encode_member (&m, &buf, &size), 0);
    ck_assert_int_eq (raft_wire_command_kind (buf, size, &payload, &psize),
                      RAFT_CMD_MEMBER);
    raft_wire_node_t back;
    ck_assert_int_eq (raft_wire_decode_member (buf, size, &back), 0);
    ck_assert_str_eq (back.node_id, "n2");
    ck_assert_str_eq (back.peer_addr, "127.0.0.1:9");
    ck_assert_str_eq (back.client_addr, "127.0.0.1:8");
    /* a truncation of a member entry is refused unless it only lost the
       optional client address (protobuf fields end on field boundaries) */
    for (size_t cut = 0; cut < size; cut++) {
        int rc = raft_wire_decode_member (buf, cut, &back);
        ck_assert (rc == 0 || rc == -EPROTO);
        if (rc == 0) {
            ck_assert_str_eq (back.node_id, "n2");
            ck_assert_str_eq (back.peer_addr, "127.0.0.1:9");
            ck_assert_str_eq (back.client_addr, "");
        }
    }
    ck_assert_int_eq (raft_wire_decode_member (buf, 1, &back), -EPROTO);
    buf [0] = 'X';
    ck_assert_int_eq (raft_wire_command_kind (buf, size, &payload, &psize), -EPROTO);
    ck_assert_int_eq (raft_wire_decode_member (buf, size, &back), -EPROTO);
    ck_assert_int_eq (raft_wire_command_kind (buf, 0, &payload, &psize), -EPROTO);
    free (buf);
}
END_TEST

/*  Every prefix of a valid frame and many corruptions of it either fail
    with -EPROTO or decode into a frame that passed validation.  */
START_TEST (test_truncated_corrupted)
{
    uint8_t blob [200];
    memset (blob, 0xab, sizeof blob);
    raft_entry_t ents [3];
    raft_msg_t m = s_append (ents, blob);
    raft_wire_node_t me = s_node ("node-a", "127.0.0.1:7401", "127.0.0.1:7400");
    uint8_t *buf = NULL;
    size_t size = 0;
    ck_assert_int_eq (raft_wire_encode_msg (&me, &m, &buf, &size), 0);
    raft_wire_frame_t f;
    char err [256];
    int refused = 0;
    for (size_t cut = 0; cut < size; cut++) {
        int rc = raft_wire_decode (buf, cut, &f, err, sizeof err);
        ck_assert (rc == 0 || rc == -EPROTO);
        refused += rc != 0;
        raft_wire_frame_clear (&f);
    }
    ck_assert_int_ge (refused, (int) size / 2);
    uint8_t *copy = malloc (size);
    for (size_t pos = 0; pos < size; pos++)
        for (int bit = 0; bit < 8; bit += 3) {
            memcpy (copy, buf, size);
            copy [pos] ^= (uint8_t) (1u << bit);
            int rc = raft_wire_decode (copy, size, &f, err, sizeof err);
            ck_assert (rc == 0 || rc == -EPROTO);
            if (rc == 0 && f.kind == RAFT_WIRE_RAFT) {
                /* what passed must satisfy the checks */
                ck_assert (f.msg.type >= RAFT_MSG_PREVOTE
                           && f.msg.type <= RAFT_MSG_READ_INDEX_RESP);
                for (size_t i = 0; i < f.msg.n_entries; i++)
                    ck_assert_uint_eq (f.msg.entries [i].index,
                                       f.msg.log_index + 1 + i);
            }
            raft_wire_frame_clear (&f);
        }
    free (copy);
    /* garbage */
    uint8_t junk [64];
    for (size_t i = 0; i < sizeof junk; i++)
        junk [i] = (uint8_t) (i * 37 + 11);
    ck_assert_int_eq (raft_wire_decode (junk, sizeof junk, &f, err, sizeof err),
                      -EPROTO);
    raft_wire_frame_clear (&f);
    ck_assert_int_eq (raft_wire_decode (NULL, 0, &f, err, sizeof err), -EPROTO);
    raft_wire_frame_clear (&f);
    free (buf);
}
END_TEST

/*  Frames that parse as protobuf but break the rules are refused.  */
START_TEST (test_semantic_rejects)
{
    raft_wire_node_t me = s_node ("n1", "h:1", "");
    raft_msg_t m;
    raft_wire_frame_t f;
    char err [256];
    uint8_t *buf;
    size_t size;
    struct { uint32_t type; uint64_t from; } bad [] = {
        { 0, 1 }, { RAFT_MSG_READ_INDEX_RESP + 1, 1 }, { RAFT_MSG_VOTE, 0 }
    };
    for (size_t i = 0; i < 3; i++) {
        memset (&m, 0, sizeof m);
        m.type = bad [i].type;
        m.from = bad [i].from;
        m.to = 2;
        ck_assert_int_eq (raft_wire_encode_msg (&me, &m, &buf, &size), 0);
        ck_assert_int_eq (raft_wire_decode (buf, size, &f, err, sizeof err), -EPROTO);
        raft_wire_frame_clear (&f);
        free (buf);
    }
    /* entries out of order, of a bad type, or on a non-APPEND */
    uint8_t blob [200] = { 0 };
    raft_entry_t ents [3];
    m = s_append (ents, blob);
    ents [2].index = 50;
    ck_assert_int_eq (raft_wire_encode_msg (&me, &m, &buf, &size), 0);
    ck_assert_int_eq (raft_wire_decode (buf, size, &f, err, sizeof err), -EPROTO);
    ck_assert (strstr (err, "index") != NULL);
    raft_wire_frame_clear (&f);
    free (buf);
    m = s_append (ents, blob);
    ents [0].type = 7;
    ck_assert_int_eq (raft_wire_encode_msg (&me, &m, &buf, &size), 0);
    ck_assert_int_eq (raft_wire_decode (buf, size, &f, err, sizeof err), -EPROTO);
    raft_wire_frame_clear (&f);
    free (buf);
    m = s_append (ents, blob);
    m.type = RAFT_MSG_HEARTBEAT;
    ck_assert_int_eq (raft_wire_encode_msg (&me, &m, &buf, &size), 0);
    ck_assert_int_eq (raft_wire_decode (buf, size, &f, err, sizeof err), -EPROTO);
    raft_wire_frame_clear (&f);
    free (buf);
    /* a hand-made frame: oversized configuration, bad sender, no body */
    Titan__Raft__PeerRaftMsg pm = TITAN__RAFT__PEER_RAFT_MSG__INIT;
    pm.type = RAFT_MSG_SNAPSHOT;
    pm.from = 1;
    pm.to = 2;
    Titan__Raft__PeerConfig pc = TITAN__RAFT__PEER_CONFIG__INIT;
    uint64_t ids [RAFT_MAX_MEMBERS + 1];
    for (int i = 0; i <= RAFT_MAX_MEMBERS; i++)
        ids [i] = (uint64_t) i + 1;
    pc.n_voters = RAFT_MAX_MEMBERS + 1;
    pc.voters = ids;
    pm.snap_config = &pc;
    Titan__Raft__PeerFrame pf = TITAN__RAFT__PEER_FRAME__INIT;
    pf.node_id = (char *) "n1";
    pf.peer_addr = (char *) "h:1";
    pf.body_case = TITAN__RAFT__PEER_FRAME__BODY_RAFT;
    pf.raft = &pm;
    uint8_t out [1024];
    size = titan__raft__peer_frame__pack (&pf, out);
    ck_assert_int_eq (raft_wire_decode (out, size, &f, err, sizeof err), -EPROTO);
    raft_wire_frame_clear (&f);
    pc.n_voters = 2;
    size = titan__raft__peer_frame__pack (&pf, out);
    ck_assert_int_eq (raft_wire_decode (out, size, &f, err, sizeof err), 0);
    raft_wire_frame_clear (&f);
    pf.peer_addr = (char *) "nowhere";
    size = titan__raft__peer_frame__pack (&pf, out);
    ck_assert_int_eq (raft_wire_decode (out, size, &f, err, sizeof err), -EPROTO);
    raft_wire_frame_clear (&f);
    pf.peer_addr = (char *) "h:1";
    pf.body_case = TITAN__RAFT__PEER_FRAME__BODY__NOT_SET;
    size = titan__raft__peer_frame__pack (&pf, out);
    ck_assert_int_eq (raft_wire_decode (out, size, &f, err, sizeof err), -EPROTO);
    raft_wire_frame_clear (&f);
}
END_TEST

START_TEST (test_members)
{
    ck_assert_uint_ne (raft_members_id ("node1"), raft_members_id ("node2"));
    ck_assert_uint_eq (raft_members_id ("node1"), raft_members_id ("node1"));
    /* FNV-1a 64 of "a" */
    ck_assert_uint_eq (raft_members_id ("a"), 0xaf63dc4c8601ec8cull);
    ck_assert (raft_members_valid_addr ("[::1]:7401", false));
    ck_assert (!raft_members_valid_addr ("host:0", false));
    ck_assert (!raft_members_valid_addr ("host:99999", false));
    ck_assert (!raft_members_valid_addr ("", false));
    ck_assert (raft_members_valid_addr ("", true));
    raft_members_t *m = raft_members_new ();
    ck_assert_int_eq (raft_members_set (m, "n1", "h:1", "h:2", false), 1);
    ck_assert_int_eq (raft_members_set (m, "n1", "h:1", "h:2", true), 0);
    const raft_member_t *e = raft_members_find (m, "n1");
    ck_assert (e && e->replicated);
    ck_assert_str_eq (e->rep_peer_addr, "h:1");
    ck_assert_int_eq (raft_members_set (m, "n1", "h:3", "", false), 1);
    e = raft_members_get (m, raft_members_id ("n1"));
    ck_assert_str_eq (e->peer_addr, "h:3");
    ck_assert_str_eq (e->client_addr, "h:2");
    ck_assert_str_eq (e->rep_peer_addr, "h:1");
    ck_assert_int_eq (raft_members_set (m, "bad id", "h:1", "", false), -EINVAL);
    ck_assert_uint_eq (raft_members_count (m), 1);
    raft_members_destroy (&m);
    ck_assert_ptr_null (m);
}
END_TEST

START_TEST (test_conf_codec)
{
    raft_config_t c, d;
    memset (&c, 0, sizeof c);
    c.n_voters = 3;
    c.voters [0] = 1;
    c.voters [1] = 2;
    c.voters [2] = UINT64_MAX;
    c.n_learners = 1;
    c.learners [0] = 77;
    uint8_t buf [RAFT_CONF_BYTES (RAFT_MAX_MEMBERS, 0)];
    size_t n = raft_storage_conf_encode (&c, buf);
    ck_assert_uint_eq (n, RAFT_CONF_BYTES (3, 1));
    ck_assert_int_eq (raft_storage_conf_decode (buf, n, &d), 0);
    ck_assert_mem_eq (&c, &d, sizeof c);
    ck_assert_int_eq (raft_storage_conf_decode (buf, n - 1, &d), TITAN_ECORRUPT);
    buf [0] = 200;
    ck_assert_int_eq (raft_storage_conf_decode (buf, n, &d), TITAN_ECORRUPT);
}
END_TEST

int
main (void)
{
    Suite *s = suite_create ("raft_wire");
    TCase *tc = tcase_create ("core");
    tcase_add_test (tc, test_msg_roundtrip);
    tcase_add_test (tc, test_every_type);
    tcase_add_test (tc, test_join_roundtrip);
    tcase_add_test (tc, test_check_roundtrip);
    tcase_add_test (tc, test_forward_roundtrip);
    tcase_add_test (tc, test_commands);
    tcase_add_test (tc, test_truncated_corrupted);
    tcase_add_test (tc, test_semantic_rejects);
    tcase_add_test (tc, test_members);
    tcase_add_test (tc, test_conf_codec);
    suite_add_tcase (s, tc);
    return titan_check_run (s, false);
}
