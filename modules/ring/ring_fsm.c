/*  The meta group's state machine (see ring_fsm.h): the membership table
    behind a "created" test, an applied index and a rejection counter, with
    a deterministic CRC-checked encoding that the state file and the
    snapshot stream share.
*/
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "titan/crc32c.h"
#include "titan/status.h"
#include "ring_codec.h"
#include "ring_fsm.h"

#define FSM_MAGIC   "TRFS"
#define FSM_HEADER  28          /* magic .. members_size */

struct _ring_fsm_t {
    ring_members_t *members;    /* NULL until CREATE */
    uint64_t applied;
    uint64_t rejected;
};

ring_fsm_t *
ring_fsm_new (void)
{
    return (ring_fsm_t *) calloc (1, sizeof (ring_fsm_t));
}

void
ring_fsm_destroy (ring_fsm_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        ring_fsm_t *self = *self_p;
        ring_members_destroy (&self->members);
        free (self);
        *self_p = NULL;
    }
}

ring_fsm_t *
ring_fsm_dup (const ring_fsm_t *self)
{
    assert (self);
    ring_fsm_t *copy = ring_fsm_new ();
    if (!copy)
        return NULL;
    *copy = *self;
    copy->members = NULL;
    if (self->members && !(copy->members = ring_members_dup (self->members)))
        ring_fsm_destroy (&copy);
    return copy;
}

const ring_members_t *
ring_fsm_members (const ring_fsm_t *self)
{
    assert (self);
    return self->members;
}

uint64_t
ring_fsm_applied (const ring_fsm_t *self)
{
    assert (self);
    return self->applied;
}

uint64_t
ring_fsm_rejected (const ring_fsm_t *self)
{
    assert (self);
    return self->rejected;
}

//  Applies a decoded command; -ENOMEM leaves everything unchanged.
static int
s_apply_cmd (ring_fsm_t *self, const ring_cmd_t *cmd, char *err, size_t err_size)
{
    if (cmd->type == RING_CMD_CREATE && !self->members) {
        self->members = ring_members_new (cmd->shards, cmd->replicas);
        if (!self->members) {
            ring_codec_err (err, err_size, "ring: out of memory creating the cluster");
            return -ENOMEM;
        }
        return 0;
    }
    if (!self->members) {
        ring_codec_err (err, err_size, "ring: node '%s': the cluster is not created yet "
               "(the meta group's first command must be create)", cmd->id);
        return -ENOENT;
    }
    return ring_members_apply_cmd (self->members, cmd, err, err_size);
}

int
ring_fsm_apply (ring_fsm_t *self, uint64_t index, const uint8_t *data,
                size_t size, char *err, size_t err_size)
{
    assert (self);
    if (index <= self->applied)
        return -EALREADY;
    ring_cmd_t cmd;
    int rc = ring_cmd_decode (data, size, &cmd, err, err_size);
    if (rc)
        rc = TITAN_ECORRUPT;        //  -ENOTSUP too: no replica can apply it
    else
        rc = s_apply_cmd (self, &cmd, err, err_size);
    if (rc == -ENOMEM)
        return rc;
    if (rc)
        self->rejected++;
    self->applied = index;
    return rc;
}

void
ring_fsm_skip_to (ring_fsm_t *self, uint64_t index)
{
    assert (self);
    if (index > self->applied)
        self->applied = index;
}

int
ring_fsm_encode (const ring_fsm_t *self, uint8_t **data_p, size_t *size_p)
{
    assert (self && data_p && size_p);
    *data_p = NULL;
    *size_p = 0;
    uint8_t *members = NULL;
    size_t members_size = 0;
    if (self->members && ring_members_encode (self->members, &members, &members_size))
        return -ENOMEM;
    ring_writer_t w = { NULL, FSM_HEADER + members_size + 4, 0 };
    w.data = (uint8_t *) malloc (w.size);
    if (!w.data) {
        free (members);
        return -ENOMEM;
    }
    ring_put_bytes (&w, FSM_MAGIC, 4);
    ring_put_u16 (&w, RING_FORMAT_VERSION);
    ring_put_u16 (&w, 0);
    ring_put_u64 (&w, self->applied);
    ring_put_u64 (&w, self->rejected);
    ring_put_u32 (&w, (uint32_t) members_size);
    ring_put_bytes (&w, members, members_size);
    ring_put_u32 (&w, titan_crc32c (0, w.data, w.pos));
    assert (w.pos == w.size);
    free (members);
    *data_p = w.data;
    *size_p = w.size;
    return 0;
}

int
ring_fsm_decode (const uint8_t *data, size_t size, ring_fsm_t **self_p,
                 char *err, size_t err_size)
{
    assert (self_p);
    *self_p = NULL;
    if (size > RING_FSM_MAX_BYTES) {
        ring_codec_err (err, err_size, "ring: state of %zu bytes exceeds the limit of %u",
               size, RING_FSM_MAX_BYTES);
        return TITAN_ECORRUPT;
    }
    ring_reader_t r;
    int rc = ring_codec_open (data, size, FSM_MAGIC, FSM_HEADER, "state", &r,
                              err, err_size);
    if (rc)
        return rc;
    uint16_t flags = ring_get_u16 (&r);
    uint64_t applied = ring_get_u64 (&r);
    uint64_t rejected = ring_get_u64 (&r);
    uint32_t members_size = ring_get_u32 (&r);
    if (flags != 0 || members_size != r.size - r.pos || rejected > applied) {
        ring_codec_err (err, err_size, "ring: state header is malformed (flags %u, applied "
               "%" PRIu64 ", rejected %" PRIu64 ", membership of %u bytes where %zu "
               "remain)", flags, applied, rejected, members_size, r.size - r.pos);
        return TITAN_ECORRUPT;
    }
    ring_fsm_t *self = ring_fsm_new ();
    if (!self) {
        ring_codec_err (err, err_size, "ring: out of memory decoding the state");
        return -ENOMEM;
    }
    self->applied = applied;
    self->rejected = rejected;
    if (members_size) {
        rc = ring_members_decode (ring_get_bytes (&r, members_size), members_size,
                                  &self->members, err, err_size);
        if (rc) {
            ring_fsm_destroy (&self);
            return rc;
        }
    }
    *self_p = self;
    return 0;
}
