/*  Titan-KV ring: the payload that proposes a membership command to the
    meta group.

    Membership changes go through the ordinary write path: whoever changes
    the membership (the raft module when a node joins or is drained,
    titanctl) sends raft.propose with a KvWrite for shard TITAN_META_SHARD
    whose op is a PUT of key TITAN_RING_CMD_KEY and whose value is the
    encoded command; once committed, the raft module hands it to the ring
    module in a kv.apply_batch (include/titan/bus_types.h).  There is no
    ring.propose request.  This file builds that KvWrite, so that every
    proposer builds it the same way.

    It uses the protobuf-c code of proto/bus.proto: a program or module
    that calls it links the bus library (TITAN_BUS_LIBS) besides libring.
*/
#ifndef RING_PROPOSE_H_INCLUDED
#define RING_PROPOSE_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "ring_member.h"

#ifdef __cplusplus
extern "C" {
#endif

/*  Packs the KvWrite that proposes `cmd` (shard TITAN_META_SHARD, one PUT
    of key TITAN_RING_CMD_KEY whose value is ring_cmd_encode (cmd)) into a
    new buffer stored in `*data_p` (the caller's, to free()) of `*size_p`
    bytes, ready to send as the payload of raft.propose.  `client_id` and
    `sequence` are the write's dedup pair (raft.propose applies a retried
    write once); NULL or "" for none.  Returns 0, -EINVAL (`cmd` is not a
    valid command) or -ENOMEM.  */
int ring_propose_payload (const ring_cmd_t *cmd, const char *client_id,
                          uint64_t sequence, uint8_t **data_p, size_t *size_p);

#ifdef __cplusplus
}
#endif
#endif
