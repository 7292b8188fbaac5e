/*  Unit tests of the cluster benchmark's parts that do not need a server:
    the latency histogram (exact small values, the 1/32 precision bound
    against sorted samples, merging, the empty case, the cap) and the two
    systems' request packers and response checks (each request decodes as
    the system's own message; an etcd Range that found nothing is
    NOT_FOUND).  */
#include "cluster_bench_hist.h"
#include "cluster_bench_proto.h"
#include "etcd_rpc.pb-c.h"
#include "titan.pb-c.h"
#include "../tests/check_run.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

START_TEST (test_hist_exact_small_values)
{
    cb_hist_t h;
    cb_hist_reset (&h);
    for (uint64_t v = 1; v <= 50; v++)
        cb_hist_record (&h, v);
    ck_assert_uint_eq (h.count, 50);
    ck_assert_uint_eq (cb_hist_quantile (&h, 0.5), 25);
    ck_assert_uint_eq (cb_hist_quantile (&h, 0.02), 1);
    ck_assert_uint_eq (cb_hist_quantile (&h, 1.0), 50);
    ck_assert_uint_eq (h.max_us, 50);
}
END_TEST

static int
s_cmp_u64 (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

START_TEST (test_hist_precision_against_sorted_samples)
{
    enum { N = 20000 };
    uint64_t *samples = malloc (N * sizeof *samples);
    ck_assert_ptr_nonnull (samples);
    cb_hist_t h;
    cb_hist_reset (&h);
    unsigned seed = 7;
    for (int i = 0; i < N; i++) {
        /* spread over five decades, 10 us .. 1 s */
        double exponent = 1 + 5.0 * rand_r (&seed) / RAND_MAX;
        uint64_t v = 1;
        for (int k = 0; k < (int) exponent; k++)
            v *= 10;
        v += (uint64_t) rand_r (&seed) % v;
        samples [i] = v;
        cb_hist_record (&h, v);
    }
    qsort (samples, N, sizeof *samples, s_cmp_u64);
    const double qs [] = { 0.5, 0.9, 0.99, 0.999 };
    for (size_t i = 0; i < sizeof qs / sizeof qs [0]; i++) {
        uint64_t exact = samples [(size_t) (qs [i] * N) - 1];
        uint64_t got = cb_hist_quantile (&h, qs [i]);
        ck_assert_uint_ge (got, exact);
        ck_assert_msg ((double) got <= (double) exact * (1 + 1.0 / 32) + 1,
                       "q %.3f: %lu vs exact %lu", qs [i],
                       (unsigned long) got, (unsigned long) exact);
    }
    ck_assert_uint_eq (cb_hist_quantile (&h, 1.0), samples [N - 1]);
    free (samples);
}
END_TEST

START_TEST (test_hist_add_empty_and_cap)
{
    cb_hist_t a, b;
    cb_hist_reset (&a);
    cb_hist_reset (&b);
    ck_assert_uint_eq (cb_hist_quantile (&a, 0.99), 0);
    for (int i = 0; i < 99; i++)
        cb_hist_record (&a, 1000);
    cb_hist_record (&b, 50000);
    cb_hist_add (&a, &b);
    ck_assert_uint_eq (a.count, 100);
    ck_assert_uint_eq (a.max_us, 50000);
    ck_assert_uint_le (cb_hist_quantile (&a, 0.99), 1000 + 1000 / 32);
    ck_assert_uint_eq (cb_hist_quantile (&a, 1.0), 50000);
    cb_hist_record (&b, UINT64_MAX);   /* capped, not out of the array */
    ck_assert_uint_eq (b.count, 2);
    ck_assert_uint_eq (b.max_us, (1ull << (CB_HIST_MAX_EXP + 1)) - 1);
}
END_TEST

START_TEST (test_pack_titan)
{
    uint8_t buf [512], value [256];
    memset (value, 'v', sizeof value);
    const char *method;
    size_t n = cb_pack_put (CB_TITAN, (const uint8_t *) "00000042", 8, value,
                            sizeof value, buf, &method);
    ck_assert_uint_le (n, cb_request_capacity (8, sizeof value));
    ck_assert_str_eq (method, "/titan.v1.KV/Put");
    Titan__V1__PutRequest *put = titan__v1__put_request__unpack (NULL, n, buf);
    ck_assert_ptr_nonnull (put);
    ck_assert_uint_eq (put->key.len, 8);
    ck_assert_int_eq (memcmp (put->key.data, "00000042", 8), 0);
    ck_assert_uint_eq (put->value.len, sizeof value);
    titan__v1__put_request__free_unpacked (put, NULL);

    n = cb_pack_get (CB_TITAN, (const uint8_t *) "00000042", 8, true, buf, &method);
    ck_assert_str_eq (method, "/titan.v1.KV/Get");
    Titan__V1__GetRequest *get = titan__v1__get_request__unpack (NULL, n, buf);
    ck_assert_ptr_nonnull (get);
    ck_assert_int_eq (get->consistency, TITAN__V1__CONSISTENCY__LOCAL);
    titan__v1__get_request__free_unpacked (get, NULL);

    Titan__V1__GetResponse res = TITAN__V1__GET_RESPONSE__INIT;
    res.value.data = value;
    res.value.len = sizeof value;
    res.revision = 9;
    n = titan__v1__get_response__pack (&res, buf);
    ck_assert_int_eq (cb_check_get (CB_TITAN, buf, n, sizeof value), GRPC_STATUS_OK);
    ck_assert_int_eq (cb_check_get (CB_TITAN, buf, n, 100), GRPC_STATUS_INTERNAL);
    Titan__V1__PutResponse put_res = TITAN__V1__PUT_RESPONSE__INIT;
    put_res.revision = 12;
    n = titan__v1__put_response__pack (&put_res, buf);
    ck_assert_int_eq (cb_check_put (CB_TITAN, buf, n), GRPC_STATUS_OK);
}
END_TEST

START_TEST (test_pack_etcd)
{
    uint8_t buf [512], value [256];
    memset (value, 'v', sizeof value);
    const char *method;
    size_t n = cb_pack_put (CB_ETCD, (const uint8_t *) "00000042", 8, value,
                            sizeof value, buf, &method);
    ck_assert_str_eq (method, "/etcdserverpb.KV/Put");
    /* field 1 (key, length-delimited) first: tag 0x0a, length 8 */
    ck_assert_uint_eq (buf [0], 0x0a);
    ck_assert_uint_eq (buf [1], 8);
    Etcdserverpb__PutRequest *put = etcdserverpb__put_request__unpack (NULL, n, buf);
    ck_assert_ptr_nonnull (put);
    ck_assert_uint_eq (put->value.len, sizeof value);
    etcdserverpb__put_request__free_unpacked (put, NULL);

    n = cb_pack_get (CB_ETCD, (const uint8_t *) "00000042", 8, true, buf, &method);
    ck_assert_str_eq (method, "/etcdserverpb.KV/Range");
    /* serializable is field 7, varint: tag 0x38, value 1, after the key */
    ck_assert_uint_eq (n, 2 + 8 + 2);
    ck_assert_uint_eq (buf [10], 0x38);
    ck_assert_uint_eq (buf [11], 1);
    n = cb_pack_get (CB_ETCD, (const uint8_t *) "00000042", 8, false, buf, &method);
    ck_assert_uint_eq (n, 2 + 8);      /* linearizable: the default, not sent */

    Etcdserverpb__RangeResponse empty = ETCDSERVERPB__RANGE_RESPONSE__INIT;
    n = etcdserverpb__range_response__pack (&empty, buf);
    ck_assert_int_eq (cb_check_get (CB_ETCD, buf, n, sizeof value), GRPC_STATUS_NOT_FOUND);
    Etcdserverpb__KeyValue kv = ETCDSERVERPB__KEY_VALUE__INIT;
    kv.key.data = (uint8_t *) "00000042";
    kv.key.len = 8;
    kv.value.data = value;
    kv.value.len = sizeof value;
    Etcdserverpb__KeyValue *kvs [1] = { &kv };
    Etcdserverpb__RangeResponse found = ETCDSERVERPB__RANGE_RESPONSE__INIT;
    found.n_kvs = 1;
    found.kvs = kvs;
    found.count = 1;
    n = etcdserverpb__range_response__pack (&found, buf);
    ck_assert_int_eq (cb_check_get (CB_ETCD, buf, n, sizeof value), GRPC_STATUS_OK);
    const uint8_t garbage [] = { 0x0a, 0x7f };  /* truncated field */
    ck_assert_int_eq (cb_check_get (CB_ETCD, garbage, sizeof garbage, 1),
                      GRPC_STATUS_INTERNAL);
}
END_TEST

START_TEST (test_system_names)
{
    cb_system_t s;
    ck_assert_int_eq (cb_system_parse ("etcd", &s), 0);
    ck_assert_int_eq (s, CB_ETCD);
    ck_assert_str_eq (cb_system_name (s), "etcd");
    ck_assert_int_eq (cb_system_parse ("titan", &s), 0);
    ck_assert_int_eq (s, CB_TITAN);
    ck_assert_int_lt (cb_system_parse ("redis", &s), 0);
}
END_TEST

int
main (void)
{
    Suite *suite = suite_create ("cluster_bench");
    TCase *tc = tcase_create ("core");
    tcase_add_test (tc, test_hist_exact_small_values);
    tcase_add_test (tc, test_hist_precision_against_sorted_samples);
    tcase_add_test (tc, test_hist_add_empty_and_cap);
    tcase_add_test (tc, test_pack_titan);
    tcase_add_test (tc, test_pack_etcd);
    tcase_add_test (tc, test_system_names);
    suite_add_tcase (suite, tc);
    return titan_check_run (suite, false);
}
