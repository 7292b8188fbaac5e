/*  raft_members: the address book of one Raft group.

    The Raft core names members by uint64 ids; the rest of Titan-KV names
    nodes by strings ("node1").  A node's raft id is the 64-bit FNV-1a hash
    of its node id string (0 is mapped to 1, since 0 means "nobody" to the
    core); two node ids that hash alike are refused when the second one is
    added (raft_members_set returns -EEXIST), so an id is never ambiguous.

    For every known node the book holds its peer address (Raft transport)
    and client address (gRPC), from two sources:
      - replicated: "member info" log entries, applied in log order, so that
        every member knows every peer after a restart (rep_* fields);
      - learned: the header of every peer frame carries the sender's
        addresses, so a node can answer a peer it has not yet read about
        in the log (e.g. a joining node, or the leader of a new member).
    The current addresses (peer_addr, client_addr) are the latest of
    either; the replicated ones tell a leader whether a member's info
    still has to be proposed.
*/
#ifndef RAFT_MEMBERS_H_INCLUDED
#define RAFT_MEMBERS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RAFT_NODE_ID_MAX   63
#define RAFT_ADDR_MAX      255

typedef struct {
    uint64_t id;                               /* raft id */
    char node_id [RAFT_NODE_ID_MAX + 1];
    char peer_addr [RAFT_ADDR_MAX + 1];        /* current */
    char client_addr [RAFT_ADDR_MAX + 1];
    bool replicated;                           /* a member info entry exists */
    char rep_peer_addr [RAFT_ADDR_MAX + 1];    /* as last replicated */
    char rep_client_addr [RAFT_ADDR_MAX + 1];
} raft_member_t;

typedef struct raft_members raft_members_t;

/*  The raft id of a node id string: FNV-1a 64 of its bytes, 1 if that is
    0.  */
uint64_t raft_members_id (const char *node_id);

/*  True when `node_id` is 1..RAFT_NODE_ID_MAX printable non-space bytes. */
bool raft_members_valid_node_id (const char *node_id);

/*  True when `addr` is "host:port" (port 1..65535) of at most
    RAFT_ADDR_MAX bytes, or empty when `allow_empty`.  */
bool raft_members_valid_addr (const char *addr, bool allow_empty);

/*  Creates an empty book.  Returns NULL when out of memory.  */
raft_members_t *raft_members_new (void);

/*  Frees the book and nulls the pointer.  */
void raft_members_destroy (raft_members_t **self_p);

/*  Records the addresses of `node_id` (an empty client_addr keeps the
    known one), as replicated (from a member info entry) or learned.
    Returns 1 when the current peer address changed or the node is new, 0
    when nothing that routing uses changed, -EINVAL for a bad node id or
    address, -EEXIST when another node id has the same raft id, -ENOMEM. */
int raft_members_set (raft_members_t *self, const char *node_id,
                      const char *peer_addr, const char *client_addr,
                      bool replicated);

/*  The member with raft id `id`, or NULL.  Valid until the next set.  */
const raft_member_t *raft_members_get (raft_members_t *self, uint64_t id);

/*  The member named `node_id`, or NULL.  Valid until the next set.  */
const raft_member_t *raft_members_find (raft_members_t *self,
                                        const char *node_id);

/*  Number of members, and member `index` (NULL if out of range).  */
size_t raft_members_count (raft_members_t *self);
const raft_member_t *raft_members_at (raft_members_t *self, size_t index);

#ifdef __cplusplus
}
#endif
#endif
