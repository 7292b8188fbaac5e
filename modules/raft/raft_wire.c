/*  raft_wire: peer frames and entry commands; see raft_wire.h.

    Encoding builds the protobuf-c structs on the stack and in small
    arrays pointing at the caller's data (nothing is copied twice); decoding
    keeps the unpacked PeerFrame in the frame and points the raft_msg_t's
    entries and data into it, which the core may borrow (raft_step copies
    what it keeps).  */
#include "raft_wire.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft_peer.pb-c.h"

static int
s_fail (char *err, size_t err_size, const char *format, ...)
{
    if (err && err_size) {
        va_list args;
        va_start (args, format);
        vsnprintf (err, err_size, format, args);
        va_end (args);
    }
    return -EPROTO;
}

static bool
s_node_ok (const raft_wire_node_t *node)
{
    return raft_members_valid_node_id (node->node_id)
        && raft_members_valid_addr (node->peer_addr, false)
        && raft_members_valid_addr (node->client_addr, true);
}

static int
s_pack_frame (Titan__Raft__PeerFrame *frame, uint8_t **buf_p, size_t *size_p)
{
    size_t size = titan__raft__peer_frame__get_packed_size (frame);
    uint8_t *buf = malloc (size ? size : 1);
    if (!buf)
        return -ENOMEM;
    titan__raft__peer_frame__pack (frame, buf);
    *buf_p = buf;
    *size_p = size;
    return 0;
}

static void
s_set_sender (Titan__Raft__PeerFrame *frame, const raft_wire_node_t *sender)
{
    frame->node_id = (char *) sender->node_id;
    frame->peer_addr = (char *) sender->peer_addr;
    frame->client_addr = (char *) sender->client_addr;
}

int
raft_wire_encode_msg (const raft_wire_node_t *sender, const raft_msg_t *msg,
                      uint8_t **buf_p, size_t *size_p)
{
    *buf_p = NULL;
    *size_p = 0;
    if (!s_node_ok (sender) || msg->n_entries > SIZE_MAX / 64
    ||  msg->snapshot.config.n_voters > RAFT_MAX_MEMBERS
    ||  msg->snapshot.config.n_learners > RAFT_MAX_MEMBERS)
        return -EINVAL;
    Titan__Raft__PeerRaftMsg m = TITAN__RAFT__PEER_RAFT_MSG__INIT;
    m.group = msg->group;
    m.from = msg->from;
    m.to = msg->to;
    m.type = msg->type;
    m.term = msg->term;
    m.log_index = msg->log_index;
    m.log_term = msg->log_term;
    m.commit = msg->commit;
    m.index = msg->index;
    m.hint_index = msg->hint_index;
    m.hint_term = msg->hint_term;
    m.ctx = msg->ctx;
    m.reject = msg->reject;
    m.force = msg->force;
    m.done = msg->done;
    m.snap_index = msg->snapshot.index;
    m.snap_term = msg->snapshot.term;
    m.offset = msg->offset;
    m.data.len = msg->size;
    m.data.data = msg->data;
    Titan__Raft__PeerConfig conf = TITAN__RAFT__PEER_CONFIG__INIT;
    uint64_t voters [RAFT_MAX_MEMBERS], learners [RAFT_MAX_MEMBERS];
    if (msg->snapshot.index || msg->type == RAFT_MSG_SNAPSHOT) {
        memcpy (voters, msg->snapshot.config.voters, sizeof voters);
        memcpy (learners, msg->snapshot.config.learners, sizeof learners);
        conf.n_voters = msg->snapshot.config.n_voters;
        conf.voters = voters;
        conf.n_learners = msg->snapshot.config.n_learners;
        conf.learners = learners;
        m.snap_config = &conf;
    }
    Titan__Raft__PeerEntry *ents = NULL;
    Titan__Raft__PeerEntry **ptrs = NULL;
    if (msg->n_entries) {
        ents = calloc (msg->n_entries, sizeof *ents);
        ptrs = calloc (msg->n_entries, sizeof *ptrs);
        if (!ents || !ptrs) {
            free (ents);
            free (ptrs);
            return -ENOMEM;
        }
        for (size_t i = 0; i < msg->n_entries; i++) {
            titan__raft__peer_entry__init (&ents [i]);
            ents [i].term = msg->entries [i].term;
            ents [i].index = msg->entries [i].index;
            ents [i].type = msg->entries [i].type;
            ents [i].data.len = msg->entries [i].size;
            ents [i].data.data = msg->entries [i].data;
            ptrs [i] = &ents [i];
        }
        m.n_entries = msg->n_entries;
        m.entries = ptrs;
    }
    Titan__Raft__PeerFrame frame = TITAN__RAFT__PEER_FRAME__INIT;
    s_set_sender (&frame, sender);
    frame.body_case = TITAN__RAFT__PEER_FRAME__BODY_RAFT;
    frame.raft = &m;
    int rc = s_pack_frame (&frame, buf_p, size_p);
    free (ents);
    free (ptrs);
    return rc;
}

int
raft_wire_encode_join (const raft_wire_node_t *joiner, uint64_t group,
                       uint8_t **buf_p, size_t *size_p)
{
    *buf_p = NULL;
    *size_p = 0;
    if (!s_node_ok (joiner))
        return -EINVAL;
    Titan__Raft__PeerJoin join = TITAN__RAFT__PEER_JOIN__INIT;
    join.group = group;
    join.node_id = (char *) joiner->node_id;
    join.peer_addr = (char *) joiner->peer_addr;
    join.client_addr = (char *) joiner->client_addr;
    Titan__Raft__PeerFrame frame = TITAN__RAFT__PEER_FRAME__INIT;
    s_set_sender (&frame, joiner);
    frame.body_case = TITAN__RAFT__PEER_FRAME__BODY_JOIN;
    frame.join = &join;
    return s_pack_frame (&frame, buf_p, size_p);
}

int
raft_wire_encode_join_reply (const raft_wire_node_t *sender,
                             const raft_wire_join_reply_t *reply,
                             uint8_t **buf_p, size_t *size_p)
{
    *buf_p = NULL;
    *size_p = 0;
    if (!s_node_ok (sender) || reply->status < RAFT_JOIN_ACCEPTED
    ||  reply->status > RAFT_JOIN_READY)
        return -EINVAL;
    Titan__Raft__PeerJoinReply r = TITAN__RAFT__PEER_JOIN_REPLY__INIT;
    r.group = reply->group;
    r.status = (Titan__Raft__PeerJoinReply__Status) reply->status;
    r.leader_id = (char *) reply->leader_id;
    r.leader_peer_addr = (char *) reply->leader_peer_addr;
    r.message = (char *) reply->message;
    Titan__Raft__PeerFrame frame = TITAN__RAFT__PEER_FRAME__INIT;
    s_set_sender (&frame, sender);
    frame.body_case = TITAN__RAFT__PEER_FRAME__BODY_JOIN_REPLY;
    frame.join_reply = &r;
    return s_pack_frame (&frame, buf_p, size_p);
}

int
raft_wire_encode_check (const raft_wire_node_t *sender,
                        const raft_wire_check_t *check, uint8_t **buf_p,
                        size_t *size_p)
{
    *buf_p = NULL;
    *size_p = 0;
    if (!s_node_ok (sender) || check->kind < RAFT_CHECK_DIGEST
    ||  check->kind > RAFT_CHECK_PIECE
    ||  check->n_points > RAFT_CHECK_MAX_POINTS
    ||  check->conf_size > RAFT_CHECK_MAX_CONF
    ||  check->size > RAFT_WIRE_MAX_DATA)
        return -EINVAL;
    Titan__Raft__PeerCheck c = TITAN__RAFT__PEER_CHECK__INIT;
    c.group = check->group;
    c.kind = check->kind;
    c.n_indexes = c.n_digests = check->n_points;
    c.indexes = (uint64_t *) check->indexes;
    c.digests = (uint64_t *) check->digests;
    c.index = check->index;
    c.min_index = check->min_index;
    c.offset = check->offset;
    c.total = check->total;
    c.term = check->term;
    c.status = check->status;
    c.conf.len = check->conf_size;
    c.conf.data = (uint8_t *) check->conf;
    c.data.len = check->size;
    c.data.data = (uint8_t *) check->data;
    Titan__Raft__PeerFrame frame = TITAN__RAFT__PEER_FRAME__INIT;
    s_set_sender (&frame, sender);
    frame.body_case = TITAN__RAFT__PEER_FRAME__BODY_CHECK;
    frame.check = &c;
    return s_pack_frame (&frame, buf_p, size_p);
}

/*  Why a forwarded proposal or result is not well formed, or NULL.  */
static const char *
s_forward_invalid (uint32_t kind, uint64_t id, size_t size, uint64_t index,
                   uint64_t term, uint32_t code)
{
    if (kind != RAFT_FORWARD_PROPOSE && kind != RAFT_FORWARD_RESULT)
        return "unknown kind";
    if (id == 0)
        return "request id 0";
    if (kind == RAFT_FORWARD_PROPOSE && (size == 0 || size > RAFT_WIRE_MAX_DATA))
        return "proposal data size not in 1..RAFT_WIRE_MAX_DATA";
    if (kind == RAFT_FORWARD_RESULT && size)
        return "result carries data";
    if (kind == RAFT_FORWARD_RESULT && code == 0 && (index == 0 || term == 0))
        return "accepted result without index and term";
    return NULL;
}

int
raft_wire_encode_forward (const raft_wire_node_t *sender,
                          const raft_wire_forward_t *forward, uint8_t **buf_p,
                          size_t *size_p)
{
    *buf_p = NULL;
    *size_p = 0;
    if (!s_node_ok (sender)
    ||  s_forward_invalid (forward->kind, forward->id, forward->size,
                           forward->index, forward->term, forward->code))
        return -EINVAL;
    Titan__Raft__PeerForward f = TITAN__RAFT__PEER_FORWARD__INIT;
    f.group = forward->group;
    f.kind = forward->kind;
    f.id = forward->id;
    f.data.len = forward->size;
    f.data.data = (uint8_t *) forward->data;
    f.index = forward->index;
    f.term = forward->term;
    f.code = forward->code;
    Titan__Raft__PeerFrame frame = TITAN__RAFT__PEER_FRAME__INIT;
    s_set_sender (&frame, sender);
    frame.body_case = TITAN__RAFT__PEER_FRAME__BODY_FORWARD;
    frame.forward = &f;
    return s_pack_frame (&frame, buf_p, size_p);
}

void
raft_wire_frame_clear (raft_wire_frame_t *frame)
{
    free (frame->msg.entries);
    if (frame->pb_)
        titan__raft__peer_frame__free_unpacked (frame->pb_, NULL);
    memset (frame, 0, sizeof *frame);
}

/*  Copies a string field into `out` if it fits; false otherwise.  */
static bool
s_copy (char *out, size_t cap, const char *in)
{
    size_t len = in ? strlen (in) : 0;
    if (len >= cap)
        return false;
    memcpy (out, in ? in : "", len);
    out [len] = '\0';
    return true;
}

static int
s_decode_raft (const Titan__Raft__PeerRaftMsg *m, raft_msg_t *msg,
               char *err, size_t err_size)
{
    if (m->type < RAFT_MSG_PREVOTE || m->type > RAFT_MSG_READ_INDEX_RESP)
        return s_fail (err, err_size, "raft message type %u unknown", m->type);
    if (m->from == 0 || m->to == 0)
        return s_fail (err, err_size, "raft message without from/to id");
    if (m->data.len > RAFT_WIRE_MAX_DATA)
        return s_fail (err, err_size, "raft message data of %zu bytes exceeds %u",
                       m->data.len, RAFT_WIRE_MAX_DATA);
    if (m->n_entries && m->type != RAFT_MSG_APPEND)
        return s_fail (err, err_size, "raft message type %u carries entries",
                       m->type);
    msg->group = m->group;
    msg->from = m->from;
    msg->to = m->to;
    msg->type = m->type;
    msg->term = m->term;
    msg->log_index = m->log_index;
    msg->log_term = m->log_term;
    msg->commit = m->commit;
    msg->index = m->index;
    msg->hint_index = m->hint_index;
    msg->hint_term = m->hint_term;
    msg->ctx = m->ctx;
    msg->reject = m->reject;
    msg->force = m->force;
    msg->done = m->done;
    msg->snapshot.index = m->snap_index;
    msg->snapshot.term = m->snap_term;
    if (m->snap_config) {
        const Titan__Raft__PeerConfig *c = m->snap_config;
        if (c->n_voters > RAFT_MAX_MEMBERS || c->n_learners > RAFT_MAX_MEMBERS
        ||  c->n_voters + c->n_learners > RAFT_MAX_MEMBERS)
            return s_fail (err, err_size, "snapshot configuration of %zu+%zu "
                           "members exceeds %d", c->n_voters, c->n_learners,
                           RAFT_MAX_MEMBERS);
        for (size_t i = 0; i < c->n_voters; i++)
            if ((msg->snapshot.config.voters [i] = c->voters [i]) == 0)
                return s_fail (err, err_size, "snapshot configuration has id 0");
        for (size_t i = 0; i < c->n_learners; i++)
            if ((msg->snapshot.config.learners [i] = c->learners [i]) == 0)
                return s_fail (err, err_size, "snapshot configuration has id 0");
        msg->snapshot.config.n_voters = (uint32_t) c->n_voters;
        msg->snapshot.config.n_learners = (uint32_t) c->n_learners;
    }
    msg->offset = m->offset;
    msg->size = (uint32_t) m->data.len;
    msg->data = m->data.len ? m->data.data : NULL;
    if (m->n_entries) {
        msg->entries = calloc (m->n_entries, sizeof *msg->entries);
        if (!msg->entries)
            return -ENOMEM;
        msg->n_entries = m->n_entries;
        for (size_t i = 0; i < m->n_entries; i++) {
            const Titan__Raft__PeerEntry *e = m->entries [i];
            if (e->type > RAFT_ENTRY_CONF)
                return s_fail (err, err_size, "entry %zu has unknown type %u",
                               i, e->type);
            if (e->data.len > RAFT_WIRE_MAX_DATA)
                return s_fail (err, err_size, "entry %zu of %zu bytes exceeds %u",
                               i, e->data.len, RAFT_WIRE_MAX_DATA);
            if (e->index != m->log_index + 1 + i || e->term == 0)
                return s_fail (err, err_size, "entry %zu has index %llu term "
                               "%llu after log index %llu", i,
                               (unsigned long long) e->index,
                               (unsigned long long) e->term,
                               (unsigned long long) m->log_index);
            if (i > 0 && e->term < m->entries [i - 1]->term)
                return s_fail (err, err_size, "entry %zu: terms decrease", i);
            msg->entries [i].term = e->term;
            msg->entries [i].index = e->index;
            msg->entries [i].type = e->type;
            msg->entries [i].size = (uint32_t) e->data.len;
            msg->entries [i].data = e->data.len ? e->data.data : NULL;
        }
    }
    return 0;
}

static bool
s_node_from (raft_wire_node_t *node, const char *id, const char *peer,
             const char *client)
{
    return s_copy (node->node_id, sizeof node->node_id, id)
        && s_copy (node->peer_addr, sizeof node->peer_addr, peer)
        && s_copy (node->client_addr, sizeof node->client_addr, client)
        && s_node_ok (node);
}

static int
s_decode_check (const Titan__Raft__PeerCheck *c, raft_wire_check_t *check,
                char *err, size_t err_size)
{
    if (c->kind < RAFT_CHECK_DIGEST || c->kind > RAFT_CHECK_PIECE)
        return s_fail (err, err_size, "check message kind %u unknown", c->kind);
    if (c->n_indexes != c->n_digests || c->n_indexes > RAFT_CHECK_MAX_POINTS)
        return s_fail (err, err_size, "check message with %zu indexes and %zu "
                       "digests (at most %d)", c->n_indexes, c->n_digests,
                       RAFT_CHECK_MAX_POINTS);
    if (c->conf.len > RAFT_CHECK_MAX_CONF || c->data.len > RAFT_WIRE_MAX_DATA)
        return s_fail (err, err_size, "check message with %zu conf bytes and "
                       "%zu data bytes", c->conf.len, c->data.len);
    if (c->kind == RAFT_CHECK_PIECE && c->status == 0
    &&  (c->index == 0 || c->offset > c->total
         || c->data.len > c->total - c->offset))
        return s_fail (err, err_size, "check piece of snapshot %llu: %zu bytes "
                       "at %llu of %llu", (unsigned long long) c->index,
                       c->data.len, (unsigned long long) c->offset,
                       (unsigned long long) c->total);
    check->group = c->group;
    check->kind = (raft_check_kind_t) c->kind;
    check->n_points = c->n_indexes;
    for (size_t i = 0; i < c->n_indexes; i++) {
        check->indexes [i] = c->indexes [i];
        check->digests [i] = c->digests [i];
    }
    check->index = c->index;
    check->min_index = c->min_index;
    check->offset = c->offset;
    check->total = c->total;
    check->term = c->term;
    check->status = c->status;
    check->conf_size = c->conf.len;
    if (c->conf.len)
        memcpy (check->conf, c->conf.data, c->conf.len);
    check->size = c->data.len;
    check->data = c->data.len ? c->data.data : NULL;
    return 0;
}

int
raft_wire_decode (const uint8_t *data, size_t size, raft_wire_frame_t *frame,
                  char *err, size_t err_size)
{
    memset (frame, 0, sizeof *frame);
    Titan__Raft__PeerFrame *pb = titan__raft__peer_frame__unpack (NULL, size,
                                                                 data);
    if (!pb)
        return s_fail (err, err_size, "peer frame of %zu bytes is not a valid "
                       "PeerFrame", size);
    frame->pb_ = pb;
    if (!s_node_from (&frame->sender, pb->node_id, pb->peer_addr,
                      pb->client_addr))
        return s_fail (err, err_size, "peer frame sender '%.64s' at '%.64s' "
                       "is not a valid node id and address",
                       pb->node_id ? pb->node_id : "",
                       pb->peer_addr ? pb->peer_addr : "");
    switch (pb->body_case) {
        case TITAN__RAFT__PEER_FRAME__BODY_RAFT:
            frame->kind = RAFT_WIRE_RAFT;
            return s_decode_raft (pb->raft, &frame->msg, err, err_size);
        case TITAN__RAFT__PEER_FRAME__BODY_JOIN:
            frame->kind = RAFT_WIRE_JOIN;
            frame->join_group = pb->join->group;
            if (!s_node_from (&frame->join, pb->join->node_id,
                              pb->join->peer_addr, pb->join->client_addr))
                return s_fail (err, err_size, "join request with a bad node id "
                               "or address");
            return 0;
        case TITAN__RAFT__PEER_FRAME__BODY_JOIN_REPLY: {
            const Titan__Raft__PeerJoinReply *r = pb->join_reply;
            frame->kind = RAFT_WIRE_JOIN_REPLY;
            frame->reply.group = r->group;
            if ((int) r->status < RAFT_JOIN_ACCEPTED
            ||  (int) r->status > RAFT_JOIN_READY)
                return s_fail (err, err_size, "join reply status %d unknown",
                               (int) r->status);
            frame->reply.status = (raft_join_status_t) r->status;
            if (!s_copy (frame->reply.leader_id, sizeof frame->reply.leader_id,
                         r->leader_id)
            ||  !s_copy (frame->reply.leader_peer_addr,
                         sizeof frame->reply.leader_peer_addr,
                         r->leader_peer_addr)
            ||  !raft_members_valid_addr (frame->reply.leader_peer_addr, true))
                return s_fail (err, err_size, "join reply with a bad leader");
            snprintf (frame->reply.message, sizeof frame->reply.message, "%s",
                      r->message ? r->message : "");
            return 0;
        }
        case TITAN__RAFT__PEER_FRAME__BODY_CHECK:
            frame->kind = RAFT_WIRE_CHECK;
            return s_decode_check (pb->check, &frame->check, err, err_size);
        case TITAN__RAFT__PEER_FRAME__BODY_FORWARD: {
            const Titan__Raft__PeerForward *f = pb->forward;
            frame->kind = RAFT_WIRE_FORWARD;
            const char *why = s_forward_invalid (f->kind, f->id, f->data.len,
                                                 f->index, f->term, f->code);
            if (why)
                return s_fail (err, err_size, "forwarded proposal %llu "
                               "(kind %u): %s", (unsigned long long) f->id,
                               f->kind, why);
            raft_wire_forward_t *out = &frame->forward;
            out->group = f->group;
            out->kind = (raft_forward_kind_t) f->kind;
            out->id = f->id;
            out->index = f->index;
            out->term = f->term;
            out->code = f->code;
            out->size = f->data.len;
            out->data = f->data.len ? f->data.data : NULL;
            return 0;
        }
        default:
            return s_fail (err, err_size, "peer frame without a body");
    }
}

/* ------------------------------------------------------------ commands */

int
raft_wire_encode_write (const uint8_t *kvwrite, size_t size, uint8_t **buf_p,
                        size_t *size_p)
{
    uint8_t *buf = malloc (size + 1);
    if (!buf)
        return -ENOMEM;
    buf [0] = RAFT_CMD_WRITE;
    if (size)
        memcpy (buf + 1, kvwrite, size);
    *buf_p = buf;
    *size_p = size + 1;
    return 0;
}

int
raft_wire_encode_member (const raft_wire_node_t *member, uint8_t **buf_p,
                         size_t *size_p)
{
    *buf_p = NULL;
    *size_p = 0;
    if (!s_node_ok (member))
        return -EINVAL;
    Titan__Raft__MemberInfo info = TITAN__RAFT__MEMBER_INFO__INIT;
    info.node_id = (char *) member->node_id;
    info.peer_addr = (char *) member->peer_addr;
    info.client_addr = (char *) member->client_addr;
    size_t size = titan__raft__member_info__get_packed_size (&info);
    uint8_t *buf = malloc (size + 1);
    if (!buf)
        return -ENOMEM;
    buf [0] = RAFT_CMD_MEMBER;
    titan__raft__member_info__pack (&info, buf + 1);
    *buf_p = buf;
    *size_p = size + 1;
    return 0;
}

int
raft_wire_command_kind (const uint8_t *data, size_t size,
                        const uint8_t **payload_p, size_t *payload_size_p)
{
    if (size < 1 || (data [0] != RAFT_CMD_WRITE && data [0] != RAFT_CMD_MEMBER))
        return -EPROTO;
    *payload_p = data + 1;
    *payload_size_p = size - 1;
    return data [0];
}

int
raft_wire_decode_member (const uint8_t *data, size_t size,
                         raft_wire_node_t *member)
{
    memset (member, 0, sizeof *member);
    if (size < 1 || data [0] != RAFT_CMD_MEMBER)
        return -EPROTO;
    Titan__Raft__MemberInfo *info =
        titan__raft__member_info__unpack (NULL, size - 1, data + 1);
    if (!info)
        return -EPROTO;
    bool ok = s_node_from (member, info->node_id, info->peer_addr,
                           info->client_addr);
    titan__raft__member_info__free_unpacked (info, NULL);
    return ok ? 0 : -EPROTO;
}
