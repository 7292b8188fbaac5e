/*  Requests and responses of the two benchmarked systems (see
    cluster_bench_proto.h), with the protobuf-c code generated from
    proto/titan.proto and bench/etcd_rpc.proto.  */
#include "cluster_bench_proto.h"
#include "etcd_rpc.pb-c.h"
#include "titan.pb-c.h"

#include <errno.h>
#include <string.h>

int
cb_system_parse (const char *name, cb_system_t *system_p)
{
    if (strcmp (name, "titan") == 0)
        *system_p = CB_TITAN;
    else
    if (strcmp (name, "etcd") == 0)
        *system_p = CB_ETCD;
    else
        return -EINVAL;
    return 0;
}

const char *
cb_system_name (cb_system_t system)
{
    return system == CB_TITAN ? "titan" : "etcd";
}

size_t
cb_request_capacity (size_t key_size, size_t value_size)
{
    /* tags and varint lengths: a few bytes per field, 64 is plenty */
    return key_size + value_size + 64;
}

size_t
cb_pack_put (cb_system_t system, const uint8_t *key, size_t key_size,
             const uint8_t *value, size_t value_size, uint8_t *buf,
             const char **method_p)
{
    if (system == CB_TITAN) {
        Titan__V1__PutRequest req = TITAN__V1__PUT_REQUEST__INIT;
        req.key.data = (uint8_t *) key;
        req.key.len = key_size;
        req.value.data = (uint8_t *) value;
        req.value.len = value_size;
        *method_p = "/titan.v1.KV/Put";
        return titan__v1__put_request__pack (&req, buf);
    }
    Etcdserverpb__PutRequest req = ETCDSERVERPB__PUT_REQUEST__INIT;
    req.key.data = (uint8_t *) key;
    req.key.len = key_size;
    req.value.data = (uint8_t *) value;
    req.value.len = value_size;
    *method_p = "/etcdserverpb.KV/Put";
    return etcdserverpb__put_request__pack (&req, buf);
}

size_t
cb_pack_get (cb_system_t system, const uint8_t *key, size_t key_size,
             bool local, uint8_t *buf, const char **method_p)
{
    if (system == CB_TITAN) {
        Titan__V1__GetRequest req = TITAN__V1__GET_REQUEST__INIT;
        req.key.data = (uint8_t *) key;
        req.key.len = key_size;
        req.consistency = local ? TITAN__V1__CONSISTENCY__LOCAL
                                : TITAN__V1__CONSISTENCY__LINEARIZABLE;
        *method_p = "/titan.v1.KV/Get";
        return titan__v1__get_request__pack (&req, buf);
    }
    Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
    req.key.data = (uint8_t *) key;
    req.key.len = key_size;
    req.serializable = local;
    *method_p = "/etcdserverpb.KV/Range";
    return etcdserverpb__range_request__pack (&req, buf);
}

grpc_status_code
cb_check_put (cb_system_t system, const uint8_t *response, size_t size)
{
    if (system == CB_TITAN) {
        Titan__V1__PutResponse *res = titan__v1__put_response__unpack (NULL, size, response);
        if (!res)
            return GRPC_STATUS_INTERNAL;
        grpc_status_code code = res->revision > 0 ? GRPC_STATUS_OK : GRPC_STATUS_INTERNAL;
        titan__v1__put_response__free_unpacked (res, NULL);
        return code;
    }
    Etcdserverpb__PutResponse *res = etcdserverpb__put_response__unpack (NULL, size, response);
    if (!res)
        return GRPC_STATUS_INTERNAL;
    etcdserverpb__put_response__free_unpacked (res, NULL);
    return GRPC_STATUS_OK;
}

grpc_status_code
cb_check_get (cb_system_t system, const uint8_t *response, size_t size,
              size_t value_size)
{
    grpc_status_code code = GRPC_STATUS_INTERNAL;
    if (system == CB_TITAN) {
        Titan__V1__GetResponse *res = titan__v1__get_response__unpack (NULL, size, response);
        if (!res)
            return GRPC_STATUS_INTERNAL;
        if (res->value.len == value_size)
            code = GRPC_STATUS_OK;
        titan__v1__get_response__free_unpacked (res, NULL);
        return code;
    }
    Etcdserverpb__RangeResponse *res = etcdserverpb__range_response__unpack (NULL, size, response);
    if (!res)
        return GRPC_STATUS_INTERNAL;
    if (res->n_kvs == 0)
        code = GRPC_STATUS_NOT_FOUND;
    else
    if (res->n_kvs == 1 && res->kvs [0]->value.len == value_size)
        code = GRPC_STATUS_OK;
    etcdserverpb__range_response__free_unpacked (res, NULL);
    return code;
}
