/*  raft_wire: the bytes the raft module puts on the peer transport and in
    its NORMAL log entries (schemas in proto/raft_peer.proto).

    Peer frames.  Every message on the transport is one PeerFrame: the
    sender's node id and addresses, then one body, a Raft message
    (raft_msg_t, field for field), a join request or a join reply.  Decoding
    never trusts the bytes: protobuf-c checks every length against the
    buffer, then raft_wire_decode checks what the core would otherwise take
    on faith (message type, entry types and order, sizes, configuration
    size, node ids, addresses) and refuses the frame with -EPROTO and a
    message when anything is off.

    Commands.  A NORMAL entry's data is a one-byte tag and a protobuf:
    'W' + titan.bus.KvWrite (a client write) or 'M' + titan.raft.MemberInfo
    (the addresses of a member).  Replicas apply both in log order.
*/
#ifndef RAFT_WIRE_H_INCLUDED
#define RAFT_WIRE_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "raft_core.h"
#include "raft_members.h"

#ifdef __cplusplus
extern "C" {
#endif

/*  Largest entry data or snapshot chunk a frame may carry.  */
#define RAFT_WIRE_MAX_DATA     (256u * 1024 * 1024)

typedef enum {
    RAFT_WIRE_RAFT = 1,
    RAFT_WIRE_JOIN = 2,
    RAFT_WIRE_JOIN_REPLY = 3,
    RAFT_WIRE_CHECK = 4,
    RAFT_WIRE_FORWARD = 5
} raft_wire_kind_t;

/*  Forwarded proposals (PeerForward; docs/raft.md).  */
typedef enum {
    RAFT_FORWARD_PROPOSE = 1,       /* follower -> leader: a KvWrite */
    RAFT_FORWARD_RESULT = 2         /* leader -> follower: where it went */
} raft_forward_kind_t;

typedef struct {
    uint64_t group;
    raft_forward_kind_t kind;
    uint64_t id;                    /* the follower's request id, nonzero */
    uint64_t index;                 /* RESULT with code 0: appended at */
    uint64_t term;                  /* (index, term), both nonzero */
    uint32_t code;                  /* RESULT: 0, or a titan.bus.Code */
    size_t size;                    /* PROPOSE: the KvWrite, 1 .. */
    const uint8_t *data;            /* RAFT_WIRE_MAX_DATA bytes, borrowed
                                       from the encoder's caller / the
                                       frame */
} raft_wire_forward_t;

/*  Consistency check messages (PeerCheck; docs/consistency.md).  */
typedef enum {
    RAFT_CHECK_DIGEST = 1,          /* follower -> leader: its digests */
    RAFT_CHECK_REBUILD = 2,         /* leader -> follower: you diverged */
    RAFT_CHECK_FETCH = 3,           /* follower -> leader: a snapshot piece */
    RAFT_CHECK_PIECE = 4            /* leader -> follower: the piece */
} raft_check_kind_t;

#define RAFT_CHECK_MAX_POINTS  16
#define RAFT_CHECK_MAX_CONF    (8 + 8 * 2 * RAFT_MAX_MEMBERS)

typedef struct {
    uint64_t group;
    raft_check_kind_t kind;
    size_t n_points;                /* DIGEST */
    uint64_t indexes [RAFT_CHECK_MAX_POINTS];
    uint64_t digests [RAFT_CHECK_MAX_POINTS];
    uint64_t index;                 /* REBUILD, FETCH, PIECE */
    uint64_t min_index;             /* FETCH */
    uint64_t offset;                /* FETCH, PIECE */
    uint64_t total;                 /* PIECE */
    uint64_t term;                  /* PIECE */
    uint32_t status;                /* PIECE: 0 data, 1 ask again later */
    size_t conf_size;               /* PIECE */
    uint8_t conf [RAFT_CHECK_MAX_CONF];
    size_t size;                    /* PIECE: data, borrowed from the */
    const uint8_t *data;            /* encoder's caller / the frame */
} raft_wire_check_t;

/*  Join reply statuses (PeerJoinReply.Status).  */
typedef enum {
    RAFT_JOIN_ACCEPTED = 0,
    RAFT_JOIN_REDIRECT = 1,
    RAFT_JOIN_RETRY = 2,
    RAFT_JOIN_REFUSED = 3,
    /*  Ring placement notices, sent in a join reply frame (docs/sharding.md):
        NOT_MEMBER from a group's leader to a node that its committed
        configuration no longer includes; LEFT from a draining node to the
        meta group's leader once it hosts no data group; READY from a
        joining node to the meta group's leader once it is a voter of every
        data group the table places on it.  */
    RAFT_JOIN_NOT_MEMBER = 4,
    RAFT_JOIN_LEFT = 5,
    RAFT_JOIN_READY = 6
} raft_join_status_t;

/*  The placement notices among the join reply statuses.  */
#define RAFT_JOIN_IS_NOTICE(status) ((status) >= RAFT_JOIN_NOT_MEMBER)

/*  A node's identity and addresses (frame headers, joins, member info). */
typedef struct {
    char node_id [RAFT_NODE_ID_MAX + 1];
    char peer_addr [RAFT_ADDR_MAX + 1];
    char client_addr [RAFT_ADDR_MAX + 1];     /* may be empty */
} raft_wire_node_t;

typedef struct {
    uint64_t group;
    raft_join_status_t status;
    char leader_id [RAFT_NODE_ID_MAX + 1];
    char leader_peer_addr [RAFT_ADDR_MAX + 1];
    char message [256];
} raft_wire_join_reply_t;

/*  A decoded frame.  For RAFT_WIRE_RAFT, `msg` points into the frame's
    own buffers: valid until raft_wire_frame_clear.  */
typedef struct {
    raft_wire_kind_t kind;
    raft_wire_node_t sender;
    raft_msg_t msg;                 /* RAFT_WIRE_RAFT */
    uint64_t join_group;            /* RAFT_WIRE_JOIN */
    raft_wire_node_t join;          /* RAFT_WIRE_JOIN: who asks */
    raft_wire_join_reply_t reply;   /* RAFT_WIRE_JOIN_REPLY */
    raft_wire_check_t check;        /* RAFT_WIRE_CHECK (data points into
                                       the frame) */
    raft_wire_forward_t forward;    /* RAFT_WIRE_FORWARD (data points into
                                       the frame) */
    void *pb_;                      /* the unpacked protobuf */
} raft_wire_frame_t;

/*  Encodes a Raft message from `sender` into a new buffer (*buf_p, the
    caller's, free()).  Returns 0, -EINVAL (bad sender or message), or
    -ENOMEM.  */
int raft_wire_encode_msg (const raft_wire_node_t *sender,
                          const raft_msg_t *msg, uint8_t **buf_p,
                          size_t *size_p);

/*  Encodes a join request of `joiner` for `group` (the sender is the
    joiner).  Same returns.  */
int raft_wire_encode_join (const raft_wire_node_t *joiner, uint64_t group,
                           uint8_t **buf_p, size_t *size_p);

/*  Encodes a join reply from `sender`.  Same returns.  */
int raft_wire_encode_join_reply (const raft_wire_node_t *sender,
                                 const raft_wire_join_reply_t *reply,
                                 uint8_t **buf_p, size_t *size_p);

/*  Encodes a consistency check message from `sender`.  Same returns
    (-EINVAL also for a kind, point count or size out of range).  */
int raft_wire_encode_check (const raft_wire_node_t *sender,
                            const raft_wire_check_t *check, uint8_t **buf_p,
                            size_t *size_p);

/*  Encodes a forwarded proposal or its result from `sender`.  Same
    returns (-EINVAL also for a kind out of range, an id of 0, a PROPOSE
    without data or over RAFT_WIRE_MAX_DATA, a RESULT with data, or an
    accepted RESULT without index and term).  */
int raft_wire_encode_forward (const raft_wire_node_t *sender,
                              const raft_wire_forward_t *forward,
                              uint8_t **buf_p, size_t *size_p);

/*  Decodes and validates a frame into *frame (cleared first; call
    raft_wire_frame_clear after use, also after a failure).  Returns 0,
    -EPROTO with the reason in err, or -ENOMEM.  */
int raft_wire_decode (const uint8_t *data, size_t size,
                      raft_wire_frame_t *frame, char *err, size_t err_size);

/*  Frees what a decoded frame holds and zeroes it.  */
void raft_wire_frame_clear (raft_wire_frame_t *frame);

/* ------------------------------------------------------------ commands */

#define RAFT_CMD_WRITE   'W'
#define RAFT_CMD_MEMBER  'M'

/*  Builds the entry data of a write: 'W' + the KvWrite bytes given (the
    caller has validated them).  Returns 0 or -ENOMEM.  */
int raft_wire_encode_write (const uint8_t *kvwrite, size_t size,
                            uint8_t **buf_p, size_t *size_p);

/*  Builds the entry data of a member info.  Returns 0, -EINVAL (bad node
    id or address) or -ENOMEM.  */
int raft_wire_encode_member (const raft_wire_node_t *member,
                             uint8_t **buf_p, size_t *size_p);

/*  Reads the tag of a NORMAL entry: RAFT_CMD_WRITE, RAFT_CMD_MEMBER or
    -EPROTO.  For a write, *payload_p and *payload_size_p are the KvWrite bytes
    (inside `data`).  */
int raft_wire_command_kind (const uint8_t *data, size_t size,
                            const uint8_t **payload_p, size_t *payload_size_p);

/*  Decodes and validates a member info entry.  Returns 0 or -EPROTO.  */
int raft_wire_decode_member (const uint8_t *data, size_t size,
                             raft_wire_node_t *member);

#ifdef __cplusplus
}
#endif
#endif
