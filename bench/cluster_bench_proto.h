/*  The two systems the cluster benchmark drives, behind one interface:
    Titan-KV's titan.v1.KV (Put, Get) and etcd's v3 etcdserverpb.KV (Put,
    Range).  Each function packs a request or checks a response of the
    system named, so the load loop is the same code for both.  */
#ifndef CLUSTER_BENCH_PROTO_H_INCLUDED
#define CLUSTER_BENCH_PROTO_H_INCLUDED

#include <grpc/status.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { CB_TITAN, CB_ETCD } cb_system_t;

/*  Parses "titan" or "etcd".  Returns 0, or -EINVAL for anything else.  */
int cb_system_parse (const char *name, cb_system_t *system_p);

/*  The system's name, "titan" or "etcd".  */
const char *cb_system_name (cb_system_t system);

/*  Bytes a packed put or get of this key and value may take: the size of
    the buffer to pass to the pack functions.  */
size_t cb_request_capacity (size_t key_size, size_t value_size);

/*  Packs a put of key -> value into `buf` (cb_request_capacity bytes) and
    sets *method_p to the gRPC method to call (a static string).  Returns
    the packed size.  */
size_t cb_pack_put (cb_system_t system, const uint8_t *key, size_t key_size,
                    const uint8_t *value, size_t value_size, uint8_t *buf,
                    const char **method_p);

/*  Packs a read of one key: linearizable, or `local` (Titan's LOCAL
    consistency, etcd's serializable Range: served by the member asked,
    possibly stale).  Same contract as cb_pack_put.  */
size_t cb_pack_get (cb_system_t system, const uint8_t *key, size_t key_size,
                    bool local, uint8_t *buf, const char **method_p);

/*  Checks the response of a successful put call.  Returns GRPC_STATUS_OK,
    or GRPC_STATUS_INTERNAL when it does not decode.  */
grpc_status_code cb_check_put (cb_system_t system, const uint8_t *response,
                               size_t size);

/*  Checks the response of a successful get call: it must decode and hold
    one value of `value_size` bytes.  Returns GRPC_STATUS_OK,
    GRPC_STATUS_NOT_FOUND when etcd's Range found no key (Titan answers
    NOT_FOUND itself), or GRPC_STATUS_INTERNAL for a response that does
    not decode or a value of another size.  */
grpc_status_code cb_check_get (cb_system_t system, const uint8_t *response,
                               size_t size, size_t value_size);

#endif
