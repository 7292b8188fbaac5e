/*  Membership table of the ring: a sorted array of members, changed only
    by commands, with deterministic CRC-checked encodings (the format is
    described in ring_member.h).  The array is small (RING_MAX_MEMBERS) so
    a binary search and a memmove per insertion are all it needs.
*/
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "titan/crc32c.h"
#include "titan/status.h"
#include "ring_codec.h"
#include "ring_hash.h"
#include "ring_member.h"

#define SNAP_MAGIC   "TRMS"
#define CMD_MAGIC    "TRMC"
#define SNAP_HEADER  28         /* magic .. count */
#define CMD_HEADER   12         /* magic .. reserved */

struct _ring_members_t {
    uint32_t shards;
    uint32_t replicas;
    uint64_t epoch;
    uint32_t size;
    uint32_t capacity;
    ring_member_t *members;     /* sorted by id, no duplicates */
};

void
ring_codec_err (char *err, size_t err_size, const char *fmt, ...)
{
    if (!err || err_size == 0)
        return;
    va_list args;
    va_start (args, fmt);
    vsnprintf (err, err_size, fmt, args);
    va_end (args);
}

const char *
ring_state_name (ring_state_t state)
{
    switch (state) {
        case RING_JOINING: return "joining";
        case RING_ACTIVE:  return "active";
        case RING_LEAVING: return "leaving";
        case RING_REMOVED: return "removed";
    }
    return "?";
}

static bool
s_state_valid (int state)
{
    return state >= RING_JOINING && state <= RING_REMOVED;
}

//  An id is 1..RING_ID_MAX bytes of [A-Za-z0-9._-]: it names sockets and
//  directories, so nothing that needs quoting.
static bool
s_id_valid_n (const char *id, size_t len)
{
    if (len == 0 || len > RING_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = id [i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
        ||    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

//  An address is 1..RING_ADDR_MAX printable ASCII bytes without spaces.
static bool
s_addr_valid_n (const char *addr, size_t len)
{
    if (len == 0 || len > RING_ADDR_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char) addr [i] < 0x21 || (unsigned char) addr [i] > 0x7e)
            return false;
    return true;
}

static bool
s_id_valid (const char *id)
{
    return id && s_id_valid_n (id, strnlen (id, RING_ID_MAX + 1));
}

static bool
s_addr_valid (const char *addr)
{
    return addr && s_addr_valid_n (addr, strnlen (addr, RING_ADDR_MAX + 1));
}

//  Checks a command's fields against its type.
static int
s_cmd_check (const ring_cmd_t *cmd, char *err, size_t err_size)
{
    if (cmd->type == RING_CMD_CREATE) {
        if (cmd->id [0] || cmd->client_addr [0] || cmd->peer_addr [0]
        ||  cmd->state != 0) {
            ring_codec_err (err, err_size, "ring: create carries a node");
            return -EINVAL;
        }
        if (cmd->shards < 1 || cmd->shards > RING_MAX_SHARDS
        ||  cmd->replicas < 1 || cmd->replicas > RING_MAX_REPLICAS) {
            ring_codec_err (err, err_size, "ring: create: %u shards and %u replicas "
                   "(1..%d shards, 1..%d replicas)", cmd->shards, cmd->replicas,
                   RING_MAX_SHARDS, RING_MAX_REPLICAS);
            return -EINVAL;
        }
        return 0;
    }
    if (cmd->shards || cmd->replicas) {
        ring_codec_err (err, err_size, "ring: only create carries shards and replicas");
        return -EINVAL;
    }
    if (!s_id_valid (cmd->id)) {
        ring_codec_err (err, err_size, "ring: bad node id (1..%d bytes of [A-Za-z0-9._-])",
               RING_ID_MAX);
        return -EINVAL;
    }
    switch (cmd->type) {
        case RING_CMD_ADD:
            if (!s_addr_valid (cmd->client_addr) || !s_addr_valid (cmd->peer_addr)) {
                ring_codec_err (err, err_size, "ring: node '%s': bad address "
                       "(1..%d printable bytes, no spaces)", cmd->id, RING_ADDR_MAX);
                return -EINVAL;
            }
            if (cmd->state != 0) {
                ring_codec_err (err, err_size, "ring: node '%s': add carries a state", cmd->id);
                return -EINVAL;
            }
            return 0;
        case RING_CMD_SET_STATE:
            if (!s_state_valid (cmd->state)) {
                ring_codec_err (err, err_size, "ring: node '%s': bad state %d", cmd->id,
                       (int) cmd->state);
                return -EINVAL;
            }
            break;
        case RING_CMD_REMOVE:
            if (cmd->state != 0) {
                ring_codec_err (err, err_size, "ring: node '%s': remove carries a state", cmd->id);
                return -EINVAL;
            }
            break;
        default:
            ring_codec_err (err, err_size, "ring: unknown command type %d", (int) cmd->type);
            return -EINVAL;
    }
    if (cmd->client_addr [0] || cmd->peer_addr [0]) {
        ring_codec_err (err, err_size, "ring: node '%s': command carries addresses", cmd->id);
        return -EINVAL;
    }
    return 0;
}

int
ring_cmd_add (ring_cmd_t *cmd, const char *id, const char *client_addr,
              const char *peer_addr, char *err, size_t err_size)
{
    assert (cmd);
    memset (cmd, 0, sizeof *cmd);
    cmd->type = RING_CMD_ADD;
    if (!s_id_valid (id) || !s_addr_valid (client_addr) || !s_addr_valid (peer_addr)) {
        ring_codec_err (err, err_size, "ring: add '%.*s': bad id or address", RING_ID_MAX,
               id ? id : "(null)");
        return -EINVAL;
    }
    strcpy (cmd->id, id);
    strcpy (cmd->client_addr, client_addr);
    strcpy (cmd->peer_addr, peer_addr);
    return 0;
}

int
ring_cmd_set_state (ring_cmd_t *cmd, const char *id, ring_state_t state,
                    char *err, size_t err_size)
{
    assert (cmd);
    memset (cmd, 0, sizeof *cmd);
    cmd->type = RING_CMD_SET_STATE;
    if (!s_id_valid (id) || !s_state_valid (state)) {
        ring_codec_err (err, err_size, "ring: set state of '%.*s': bad id or state %d",
               RING_ID_MAX, id ? id : "(null)", (int) state);
        return -EINVAL;
    }
    strcpy (cmd->id, id);
    cmd->state = state;
    return 0;
}

int
ring_cmd_remove (ring_cmd_t *cmd, const char *id, char *err, size_t err_size)
{
    assert (cmd);
    memset (cmd, 0, sizeof *cmd);
    cmd->type = RING_CMD_REMOVE;
    if (!s_id_valid (id)) {
        ring_codec_err (err, err_size, "ring: remove '%.*s': bad id", RING_ID_MAX,
               id ? id : "(null)");
        return -EINVAL;
    }
    strcpy (cmd->id, id);
    return 0;
}

int
ring_cmd_create (ring_cmd_t *cmd, uint32_t shards, uint32_t replicas,
                 char *err, size_t err_size)
{
    assert (cmd);
    memset (cmd, 0, sizeof *cmd);
    cmd->type = RING_CMD_CREATE;
    cmd->shards = shards;
    cmd->replicas = replicas;
    return s_cmd_check (cmd, err, err_size);
}

int
ring_cmd_encode (const ring_cmd_t *cmd, uint8_t **data_p, size_t *size_p)
{
    assert (cmd && data_p && size_p);
    *data_p = NULL;
    *size_p = 0;
    if (s_cmd_check (cmd, NULL, 0))
        return -EINVAL;
    size_t id_len = strlen (cmd->id);
    size_t client_len = strlen (cmd->client_addr);
    size_t peer_len = strlen (cmd->peer_addr);
    size_t extra = cmd->type == RING_CMD_CREATE ? 8 : 0;
    ring_writer_t w = { NULL, CMD_HEADER + id_len + client_len + peer_len + extra + 4, 0 };
    w.data = (uint8_t *) malloc (w.size);
    if (!w.data)
        return -ENOMEM;
    ring_put_bytes (&w, CMD_MAGIC, 4);
    ring_put_u16 (&w, RING_FORMAT_VERSION);
    ring_put_u8 (&w, (uint8_t) cmd->type);
    ring_put_u8 (&w, (uint8_t) cmd->state);
    ring_put_u8 (&w, (uint8_t) id_len);
    ring_put_u8 (&w, (uint8_t) client_len);
    ring_put_u8 (&w, (uint8_t) peer_len);
    ring_put_u8 (&w, 0);
    ring_put_bytes (&w, cmd->id, id_len);
    ring_put_bytes (&w, cmd->client_addr, client_len);
    ring_put_bytes (&w, cmd->peer_addr, peer_len);
    if (extra) {
        ring_put_u32 (&w, cmd->shards);
        ring_put_u32 (&w, cmd->replicas);
    }
    ring_put_u32 (&w, titan_crc32c (0, w.data, w.pos));
    assert (w.pos == w.size);
    *data_p = w.data;
    *size_p = w.size;
    return 0;
}

int
ring_codec_open (const uint8_t *data, size_t size, const char *magic, size_t header,
        const char *what, ring_reader_t *r, char *err, size_t err_size)
{
    if (!data || size < header + 4) {
        ring_codec_err (err, err_size, "ring: %s of %zu bytes is truncated (at least %zu)",
               what, size, header + 4);
        return TITAN_ECORRUPT;
    }
    ring_reader_t crc_r = { data + size - 4, 4, 0, false };
    uint32_t stored = ring_get_u32 (&crc_r);
    uint32_t actual = titan_crc32c (0, data, size - 4);
    if (stored != actual) {
        ring_codec_err (err, err_size, "ring: %s checksum mismatch (stored %08x, computed %08x)",
               what, stored, actual);
        return TITAN_ECORRUPT;
    }
    if (memcmp (data, magic, 4) != 0) {
        ring_codec_err (err, err_size, "ring: %s has a bad magic number", what);
        return TITAN_ECORRUPT;
    }
    *r = (ring_reader_t) { data, size - 4, 4, false };
    uint16_t version = ring_get_u16 (r);
    if (version != RING_FORMAT_VERSION) {
        ring_codec_err (err, err_size, "ring: %s format version %u is not supported (this "
               "build reads %d)", what, version, RING_FORMAT_VERSION);
        return -ENOTSUP;
    }
    return 0;
}

//  Reads `len` bytes of string into `dst` (sized len + 1 or more).
static void
s_get_string (ring_reader_t *r, char *dst, size_t len)
{
    const uint8_t *p = ring_get_bytes (r, len);
    if (p)
        memcpy (dst, p, len);
    dst [p ? len : 0] = 0;
}

int
ring_cmd_decode (const uint8_t *data, size_t size, ring_cmd_t *cmd,
                 char *err, size_t err_size)
{
    assert (cmd);
    memset (cmd, 0, sizeof *cmd);
    ring_reader_t r;
    int rc = ring_codec_open (data, size, CMD_MAGIC, CMD_HEADER, "command", &r, err, err_size);
    if (rc)
        return rc;
    cmd->type = (ring_cmd_type_t) ring_get_u8 (&r);
    cmd->state = (ring_state_t) ring_get_u8 (&r);
    size_t id_len = ring_get_u8 (&r);
    size_t client_len = ring_get_u8 (&r);
    size_t peer_len = ring_get_u8 (&r);
    uint8_t reserved = ring_get_u8 (&r);
    if (reserved != 0 || id_len > RING_ID_MAX
    ||  client_len > RING_ADDR_MAX || peer_len > RING_ADDR_MAX) {
        ring_codec_err (err, err_size, "ring: command header is malformed");
        memset (cmd, 0, sizeof *cmd);
        return TITAN_ECORRUPT;
    }
    s_get_string (&r, cmd->id, id_len);
    s_get_string (&r, cmd->client_addr, client_len);
    s_get_string (&r, cmd->peer_addr, peer_len);
    if (cmd->type == RING_CMD_CREATE) {
        cmd->shards = ring_get_u32 (&r);
        cmd->replicas = ring_get_u32 (&r);
    }
    if (r.failed || r.pos != r.size) {
        ring_codec_err (err, err_size, "ring: command length does not match its fields");
        memset (cmd, 0, sizeof *cmd);
        return TITAN_ECORRUPT;
    }
    //  Strings must be exactly what they claim: no embedded NUL.
    if (strlen (cmd->id) != id_len || strlen (cmd->client_addr) != client_len
    ||  strlen (cmd->peer_addr) != peer_len) {
        ring_codec_err (err, err_size, "ring: command string holds a NUL byte");
        memset (cmd, 0, sizeof *cmd);
        return TITAN_ECORRUPT;
    }
    if (s_cmd_check (cmd, err, err_size)) {
        memset (cmd, 0, sizeof *cmd);
        return TITAN_ECORRUPT;
    }
    return 0;
}

ring_members_t *
ring_members_new (uint32_t shards, uint32_t replicas)
{
    if (shards < 1 || shards > RING_MAX_SHARDS
    ||  replicas < 1 || replicas > RING_MAX_REPLICAS)
        return NULL;
    ring_members_t *self = (ring_members_t *) calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->shards = shards;
    self->replicas = replicas;
    return self;
}

void
ring_members_destroy (ring_members_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        ring_members_t *self = *self_p;
        free (self->members);
        free (self);
        *self_p = NULL;
    }
}

//  Makes room for at least `need` members.
static int
s_reserve (ring_members_t *self, uint32_t need)
{
    if (need <= self->capacity)
        return 0;
    uint32_t capacity = self->capacity ? self->capacity * 2 : 8;
    if (capacity < need)
        capacity = need;
    if (capacity > RING_MAX_MEMBERS)
        capacity = RING_MAX_MEMBERS;
    ring_member_t *members = (ring_member_t *)
        realloc (self->members, (size_t) capacity * sizeof *members);
    if (!members)
        return -ENOMEM;
    self->members = members;
    self->capacity = capacity;
    return 0;
}

ring_members_t *
ring_members_dup (const ring_members_t *self)
{
    assert (self);
    ring_members_t *copy = ring_members_new (self->shards, self->replicas);
    if (!copy)
        return NULL;
    if (s_reserve (copy, self->size)) {
        ring_members_destroy (&copy);
        return NULL;
    }
    if (self->size)
        memcpy (copy->members, self->members, (size_t) self->size * sizeof *self->members);
    copy->size = self->size;
    copy->epoch = self->epoch;
    return copy;
}

uint32_t
ring_members_shards (const ring_members_t *self)
{
    assert (self);
    return self->shards;
}

uint32_t
ring_members_replicas (const ring_members_t *self)
{
    assert (self);
    return self->replicas;
}

uint64_t
ring_members_epoch (const ring_members_t *self)
{
    assert (self);
    return self->epoch;
}

uint32_t
ring_members_size (const ring_members_t *self)
{
    assert (self);
    return self->size;
}

const ring_member_t *
ring_members_at (const ring_members_t *self, uint32_t index)
{
    assert (self && index < self->size);
    return &self->members [index];
}

//  Binary search: returns the index of `id`, or the insertion point with
//  `*found` false.
static uint32_t
s_search (const ring_members_t *self, const char *id, bool *found)
{
    uint32_t lo = 0, hi = self->size;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp (self->members [mid].id, id);
        if (cmp == 0) {
            *found = true;
            return mid;
        }
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

const ring_member_t *
ring_members_find (const ring_members_t *self, const char *id)
{
    assert (self && id);
    bool found;
    uint32_t index = s_search (self, id, &found);
    return found ? &self->members [index] : NULL;
}

static bool
s_transition_allowed (ring_state_t from, ring_state_t to)
{
    if (to == RING_REMOVED)
        return true;                    //  from anything not yet removed
    switch (from) {
        case RING_JOINING: return to == RING_ACTIVE || to == RING_LEAVING;
        case RING_ACTIVE:  return to == RING_LEAVING;
        case RING_LEAVING: return to == RING_ACTIVE;
        default:           return false;
    }
}

int
ring_members_apply_cmd (ring_members_t *self, const ring_cmd_t *cmd,
                        char *err, size_t err_size)
{
    assert (self && cmd);
    int rc = s_cmd_check (cmd, err, err_size);
    if (rc)
        return rc;
    if (cmd->type == RING_CMD_CREATE) {
        if (cmd->shards == self->shards && cmd->replicas == self->replicas)
            return 0;                   //  the same creation, applied again
        ring_codec_err (err, err_size, "ring: the cluster was created with %u shards and "
               "%u replicas; create asks for %u and %u", self->shards,
               self->replicas, cmd->shards, cmd->replicas);
        return -EEXIST;
    }
    bool found;
    uint32_t index = s_search (self, cmd->id, &found);
    ring_member_t *member = found ? &self->members [index] : NULL;

    if (cmd->type == RING_CMD_ADD) {
        if (member) {
            if (member->state != RING_REMOVED
            &&  strcmp (member->client_addr, cmd->client_addr) == 0
            &&  strcmp (member->peer_addr, cmd->peer_addr) == 0)
                return 0;               //  the same join, applied again
            ring_codec_err (err, err_size, "ring: node '%s' already exists (%s, client %s, "
                   "peer %s)", member->id, ring_state_name (member->state),
                   member->client_addr, member->peer_addr);
            return -EEXIST;
        }
        if (self->size >= RING_MAX_MEMBERS) {
            ring_codec_err (err, err_size, "ring: cannot add node '%s': the table holds "
                   "%d members already", cmd->id, RING_MAX_MEMBERS);
            return -ENOSPC;
        }
        if (s_reserve (self, self->size + 1)) {
            ring_codec_err (err, err_size, "ring: cannot add node '%s': out of memory", cmd->id);
            return -ENOMEM;
        }
        memmove (&self->members [index + 1], &self->members [index],
                 (size_t) (self->size - index) * sizeof *self->members);
        member = &self->members [index];
        memset (member, 0, sizeof *member);
        strcpy (member->id, cmd->id);
        strcpy (member->client_addr, cmd->client_addr);
        strcpy (member->peer_addr, cmd->peer_addr);
        member->state = RING_JOINING;
        self->size++;
        self->epoch++;
        return 0;
    }
    if (!member) {
        ring_codec_err (err, err_size, "ring: node '%s' is not a member", cmd->id);
        return TITAN_ENOTFOUND;
    }
    ring_state_t to = cmd->type == RING_CMD_REMOVE? RING_REMOVED: cmd->state;
    if (member->state == to)
        return 0;                       //  already there
    if (member->state == RING_REMOVED || !s_transition_allowed (member->state, to)) {
        ring_codec_err (err, err_size, "ring: node '%s' cannot go from %s to %s", member->id,
               ring_state_name (member->state), ring_state_name (to));
        return -EINVAL;
    }
    member->state = to;
    self->epoch++;
    return 0;
}

int
ring_members_apply (ring_members_t *self, const uint8_t *data, size_t size,
                    char *err, size_t err_size)
{
    assert (self);
    ring_cmd_t cmd;
    int rc = ring_cmd_decode (data, size, &cmd, err, err_size);
    if (rc)
        return rc;
    return ring_members_apply_cmd (self, &cmd, err, err_size);
}

int
ring_members_encode (const ring_members_t *self, uint8_t **data_p, size_t *size_p)
{
    assert (self && data_p && size_p);
    *data_p = NULL;
    *size_p = 0;
    size_t size = SNAP_HEADER + 4;
    for (uint32_t i = 0; i < self->size; i++) {
        const ring_member_t *m = &self->members [i];
        size += 4 + strlen (m->id) + strlen (m->client_addr) + strlen (m->peer_addr);
    }
    ring_writer_t w = { (uint8_t *) malloc (size), size, 0 };
    if (!w.data)
        return -ENOMEM;
    ring_put_bytes (&w, SNAP_MAGIC, 4);
    ring_put_u16 (&w, RING_FORMAT_VERSION);
    ring_put_u16 (&w, 0);
    ring_put_u64 (&w, self->epoch);
    ring_put_u32 (&w, self->shards);
    ring_put_u32 (&w, self->replicas);
    ring_put_u32 (&w, self->size);
    for (uint32_t i = 0; i < self->size; i++) {
        const ring_member_t *m = &self->members [i];
        size_t id_len = strlen (m->id);
        size_t client_len = strlen (m->client_addr);
        size_t peer_len = strlen (m->peer_addr);
        ring_put_u8 (&w, (uint8_t) m->state);
        ring_put_u8 (&w, (uint8_t) id_len);
        ring_put_u8 (&w, (uint8_t) client_len);
        ring_put_u8 (&w, (uint8_t) peer_len);
        ring_put_bytes (&w, m->id, id_len);
        ring_put_bytes (&w, m->client_addr, client_len);
        ring_put_bytes (&w, m->peer_addr, peer_len);
    }
    ring_put_u32 (&w, titan_crc32c (0, w.data, w.pos));
    assert (w.pos == w.size);
    *data_p = w.data;
    *size_p = w.size;
    return 0;
}

int
ring_members_decode (const uint8_t *data, size_t size, ring_members_t **self_p,
                     char *err, size_t err_size)
{
    assert (self_p);
    *self_p = NULL;
    ring_reader_t r;
    int rc = ring_codec_open (data, size, SNAP_MAGIC, SNAP_HEADER, "membership snapshot",
                     &r, err, err_size);
    if (rc)
        return rc;
    uint16_t flags = ring_get_u16 (&r);
    uint64_t epoch = ring_get_u64 (&r);
    uint32_t shards = ring_get_u32 (&r);
    uint32_t replicas = ring_get_u32 (&r);
    uint32_t count = ring_get_u32 (&r);
    if (flags != 0 || shards < 1 || shards > RING_MAX_SHARDS
    ||  replicas < 1 || replicas > RING_MAX_REPLICAS || count > RING_MAX_MEMBERS
    ||  (size_t) count * 7 > r.size - r.pos) {
        ring_codec_err (err, err_size, "ring: membership snapshot header is malformed "
               "(flags %u, shards %u, replicas %u, members %u)",
               flags, shards, replicas, count);
        return TITAN_ECORRUPT;
    }
    ring_members_t *self = ring_members_new (shards, replicas);
    if (!self || s_reserve (self, count)) {
        ring_members_destroy (&self);
        ring_codec_err (err, err_size, "ring: out of memory decoding %u members", count);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < count; i++) {
        ring_member_t *m = &self->members [i];
        memset (m, 0, sizeof *m);
        uint8_t state = ring_get_u8 (&r);
        size_t id_len = ring_get_u8 (&r);
        size_t client_len = ring_get_u8 (&r);
        size_t peer_len = ring_get_u8 (&r);
        bool ok = !r.failed && s_state_valid (state) && id_len <= RING_ID_MAX
               && client_len <= RING_ADDR_MAX && peer_len <= RING_ADDR_MAX;
        if (ok) {
            s_get_string (&r, m->id, id_len);
            s_get_string (&r, m->client_addr, client_len);
            s_get_string (&r, m->peer_addr, peer_len);
            m->state = (ring_state_t) state;
            ok = !r.failed
              && strlen (m->id) == id_len && s_id_valid_n (m->id, id_len)
              && strlen (m->client_addr) == client_len
              && s_addr_valid_n (m->client_addr, client_len)
              && strlen (m->peer_addr) == peer_len
              && s_addr_valid_n (m->peer_addr, peer_len)
              && (i == 0 || strcmp (self->members [i - 1].id, m->id) < 0);
        }
        if (!ok) {
            ring_codec_err (err, err_size, "ring: membership snapshot member %u is malformed "
                   "or out of order", i);
            ring_members_destroy (&self);
            return TITAN_ECORRUPT;
        }
        self->size = i + 1;
    }
    if (r.pos != r.size) {
        ring_codec_err (err, err_size, "ring: membership snapshot has %zu bytes after its "
               "last member", r.size - r.pos);
        ring_members_destroy (&self);
        return TITAN_ECORRUPT;
    }
    self->epoch = epoch;
    *self_p = self;
    return 0;
}
