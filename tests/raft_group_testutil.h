/*  Helpers shared by the tests that drive one real raft group against a
    fake leader (a bare transport the test plays): raft_group_sync_test,
    raft_group_forward_test.  Header-only (static functions).  */
#ifndef RAFT_GROUP_TESTUTIL_H_INCLUDED
#define RAFT_GROUP_TESTUTIL_H_INCLUDED

#include <check.h>
#include <czmq.h>
#include <string.h>

#include "raft_group.h"
#include "raft_transport.h"

/*  Makes the fake leader "L" (listening at `leader_addr` on `leader`) a
    known peer of `group`, whose transport is `transport`; then, since a
    transport sends only on a completed connection (it never blocks),
    probes until a batch gets through and takes it at the leader.  */
static inline void
tg_meet_leader (raft_group_t *group, raft_transport_t *transport,
                raft_transport_t *leader, const char *leader_addr)
{
    raft_wire_node_t node;
    memset (&node, 0, sizeof node);
    snprintf (node.node_id, sizeof node.node_id, "L");
    snprintf (node.peer_addr, sizeof node.peer_addr, "%s", leader_addr);
    raft_group_learn_peer (group, &node);
    int64_t deadline = zclock_mono () + 5000;
    while (raft_transport_stats (transport).batches_sent == 0) {
        ck_assert (zclock_mono () < deadline);
        ck_assert_int_eq (raft_transport_queue (transport, "L", "probe", 5), 0);
        raft_transport_flush (transport);
        zclock_sleep (10);
    }
    zpoller_t *poller = zpoller_new (raft_transport_sock (leader), NULL);
    ck_assert_ptr_nonnull (zpoller_wait (poller, 5000));
    zpoller_destroy (&poller);
    char *from = NULL;
    zmsg_t *probe = NULL;
    ck_assert_int_eq (raft_transport_recv (leader, &from, &probe), 1);
    zmsg_destroy (&probe);
    zstr_free (&from);
}

#endif
