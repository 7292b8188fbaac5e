/*  The KvWrite that proposes a membership command (see ring_propose.h).  */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "titan/bus_types.h"
#include "bus.pb-c.h"
#include "ring_propose.h"

int
ring_propose_payload (const ring_cmd_t *cmd, const char *client_id,
                      uint64_t sequence, uint8_t **data_p, size_t *size_p)
{
    assert (cmd && data_p && size_p);
    *data_p = NULL;
    *size_p = 0;
    uint8_t *value;
    size_t value_size;
    int rc = ring_cmd_encode (cmd, &value, &value_size);
    if (rc)
        return rc;
    Titan__Bus__KvOp op = TITAN__BUS__KV_OP__INIT;
    op.kind = TITAN__BUS__KV_OP__KIND__PUT;
    op.key.data = (uint8_t *) TITAN_RING_CMD_KEY;
    op.key.len = strlen (TITAN_RING_CMD_KEY);
    op.value.data = value;
    op.value.len = value_size;
    Titan__Bus__KvWrite w = TITAN__BUS__KV_WRITE__INIT;
    w.shard = TITAN_META_SHARD;
    w.op = &op;
    w.client_id = (char *) (client_id ? client_id : "");
    w.sequence = client_id && *client_id ? sequence : 0;
    size_t size = titan__bus__kv_write__get_packed_size (&w);
    uint8_t *data = (uint8_t *) malloc (size ? size : 1);
    if (data)
        titan__bus__kv_write__pack (&w, data);
    free (value);
    if (!data)
        return -ENOMEM;
    *data_p = data;
    *size_p = size;
    return 0;
}
