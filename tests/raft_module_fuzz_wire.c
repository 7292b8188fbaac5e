/*  libFuzzer target for the raft module's decoders of untrusted bytes:
    peer frames (raft_wire_decode) and NORMAL entry commands
    (raft_wire_command_kind, raft_wire_decode_member).  Whatever the input,
    they must not crash, leak or read out of bounds (ASan, UBSan), and a
    frame they accept must satisfy the invariants the Raft core relies on;
    an accepted frame must also survive re-encoding.  Built and run by
    `make fuzz-raftwire` (clang).  */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "raft_wire.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    raft_wire_frame_t f;
    char err [256];
    if (raft_wire_decode (data, size, &f, err, sizeof err) == 0) {
        assert (raft_members_valid_node_id (f.sender.node_id));
        assert (raft_members_valid_addr (f.sender.peer_addr, false));
        if (f.kind == RAFT_WIRE_RAFT) {
            assert (f.msg.type >= RAFT_MSG_PREVOTE
                    && f.msg.type <= RAFT_MSG_READ_INDEX_RESP);
            assert (f.msg.from && f.msg.to);
            for (size_t i = 0; i < f.msg.n_entries; i++) {
                assert (f.msg.entries [i].index == f.msg.log_index + 1 + i);
                assert (f.msg.entries [i].type <= RAFT_ENTRY_CONF);
                if (f.msg.entries [i].size)       /* touch every byte */
                    assert (memchr (f.msg.entries [i].data, 0,
                                    f.msg.entries [i].size) != (void *) 1);
            }
            assert (f.msg.snapshot.config.n_voters
                    + f.msg.snapshot.config.n_learners <= RAFT_MAX_MEMBERS);
            uint8_t *buf = NULL;
            size_t len = 0;
            assert (raft_wire_encode_msg (&f.sender, &f.msg, &buf, &len) == 0);
            raft_wire_frame_t g;
            assert (raft_wire_decode (buf, len, &g, err, sizeof err) == 0);
            assert (g.msg.n_entries == f.msg.n_entries
                    && g.msg.term == f.msg.term && g.msg.size == f.msg.size);
            raft_wire_frame_clear (&g);
            free (buf);
        }
        else
        if (f.kind == RAFT_WIRE_JOIN)
            assert (raft_members_valid_node_id (f.join.node_id));
        else
        if (f.kind == RAFT_WIRE_CHECK) {
            assert (f.check.n_points <= RAFT_CHECK_MAX_POINTS);
            assert (f.check.conf_size <= RAFT_CHECK_MAX_CONF);
            assert (f.check.kind != RAFT_CHECK_PIECE || f.check.status
                    || f.check.offset + f.check.size <= f.check.total);
            uint8_t *buf = NULL;
            size_t len = 0;
            assert (raft_wire_encode_check (&f.sender, &f.check, &buf,
                                            &len) == 0);
            raft_wire_frame_t g;
            assert (raft_wire_decode (buf, len, &g, err, sizeof err) == 0);
            assert (g.check.kind == f.check.kind
                    && g.check.n_points == f.check.n_points
                    && g.check.size == f.check.size
                    && g.check.index == f.check.index);
            raft_wire_frame_clear (&g);
            free (buf);
        }
        else
        if (f.kind == RAFT_WIRE_FORWARD) {
            assert (f.forward.id);
            assert (f.forward.kind == RAFT_FORWARD_PROPOSE
                    ? f.forward.size > 0 && f.forward.size <= RAFT_WIRE_MAX_DATA
                    : f.forward.size == 0);
            if (f.forward.size)                 /* touch every byte */
                assert (memchr (f.forward.data, 0, f.forward.size)
                        != (void *) 1);
            uint8_t *buf = NULL;
            size_t len = 0;
            assert (raft_wire_encode_forward (&f.sender, &f.forward, &buf,
                                              &len) == 0);
            raft_wire_frame_t g;
            assert (raft_wire_decode (buf, len, &g, err, sizeof err) == 0);
            assert (g.forward.kind == f.forward.kind
                    && g.forward.id == f.forward.id
                    && g.forward.size == f.forward.size
                    && g.forward.index == f.forward.index
                    && g.forward.term == f.forward.term
                    && g.forward.code == f.forward.code);
            raft_wire_frame_clear (&g);
            free (buf);
        }
    }
    raft_wire_frame_clear (&f);
    const uint8_t *payload;
    size_t psize;
    if (raft_wire_command_kind (data, size, &payload, &psize) == RAFT_CMD_MEMBER) {
        raft_wire_node_t node;
        if (raft_wire_decode_member (data, size, &node) == 0)
            assert (raft_members_valid_addr (node.peer_addr, false));
    }
    return 0;
}
