/*  Tests of the ring's hash: xxHash64 against published test vectors
    (the empty string, "a", "abc" and the seeded cases of the xxHash
    reference; the others were cross-checked against libxxhash 0.8.1, the
    reference implementation packaged by Debian), independence from the
    alignment of the input, and the key-to-shard mapping pinned to fixed
    values so that a change that would move keys between shards of a
    running cluster fails here first.
*/
#include <check.h>
#include "check_run.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ring_hash.h"

typedef struct {
    const char *input;
    uint64_t seed;
    uint64_t hash;
} vector_t;

static const vector_t s_vectors [] = {
    { "", 0, UINT64_C (0xEF46DB3751D8E999) },
    { "a", 0, UINT64_C (0xD24EC4F1A98C6E5B) },
    { "abc", 0, UINT64_C (0x44BC2CF5AD770999) },
    { "Nobody inspects the spammish repetition", 0, UINT64_C (0xFBCEA83C8A378BF1) },
    { "", 1, UINT64_C (0xD5AFBA1336A3BE4B) },
    { "abc", UINT64_C (0x9E3779B185EBCA87), UINT64_C (0xA7CB2AAC405E36C7) },
    { "xxhash", 0, UINT64_C (0x32DD38952C4BC720) },
    { "message digest", 0, UINT64_C (0x066ED728FCEEB3BE) },
    { "abcdefghijklmnopqrstuvwxyz", 0, UINT64_C (0xCFE1F278FA89835C) },
    { "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
      0, UINT64_C (0xE04A477F19EE145D) },
};

START_TEST (test_vectors)
{
    for (size_t i = 0; i < sizeof s_vectors / sizeof s_vectors [0]; i++) {
        const vector_t *v = &s_vectors [i];
        uint64_t h = ring_xxh64 (v->input, strlen (v->input), v->seed);
        ck_assert_msg (h == v->hash, "xxh64 (\"%s\", %llu) = %016llx, want %016llx",
                       v->input, (unsigned long long) v->seed,
                       (unsigned long long) h, (unsigned long long) v->hash);
    }
    //  100 bytes 0..99: exercises the 32-byte stripes, 8-, 4- and 1-byte tails.
    uint8_t bytes [100];
    for (int i = 0; i < 100; i++)
        bytes [i] = (uint8_t) i;
    ck_assert_uint_eq (ring_xxh64 (bytes, 100, 0), UINT64_C (0x6AC1E58032166597));
    ck_assert_uint_eq (ring_xxh64 (NULL, 0, 0), UINT64_C (0xEF46DB3751D8E999));
}
END_TEST

START_TEST (test_alignment)
{
    //  The same bytes at every alignment and every length up to 80 hash
    //  the same (loads are byte-assembled, never type-punned).
    uint8_t src [80], *buf = malloc (80 + 8);
    ck_assert_ptr_nonnull (buf);
    for (int i = 0; i < 80; i++)
        src [i] = (uint8_t) (i * 37 + 11);
    for (size_t len = 0; len <= 80; len++) {
        uint64_t want = ring_xxh64 (src, len, 42);
        for (size_t off = 1; off < 8; off++) {
            memcpy (buf + off, src, len);
            ck_assert_uint_eq (ring_xxh64 (buf + off, len, 42), want);
        }
    }
    free (buf);
}
END_TEST

START_TEST (test_key_shard_pinned)
{
    //  xxh64 (key, 0) % Q, values from the reference implementation.
    ck_assert_uint_eq (ring_key_shard ("", 0, 16), 9);
    ck_assert_uint_eq (ring_key_shard ("user:1", 6, 16), 3);
    ck_assert_uint_eq (ring_key_shard ("user:2", 6, 16), 10);
    ck_assert_uint_eq (ring_key_shard ("hello", 5, 64), 35);
    ck_assert_uint_eq (ring_key_shard ("titan-kv", 8, 256), 242);
    ck_assert_uint_eq (ring_key_shard ("user:1", 6, 1), 0);
}
END_TEST

START_TEST (test_key_shard_spread)
{
    //  20,000 keys over 16 shards: each shard within 15 % of 1,250
    //  (about 4 standard deviations).
    enum { KEYS = 20000, Q = 16 };
    uint32_t count [Q] = { 0 };
    char key [32];
    for (int i = 0; i < KEYS; i++) {
        int len = snprintf (key, sizeof key, "key-%d", i);
        uint32_t shard = ring_key_shard (key, (size_t) len, Q);
        ck_assert_uint_lt (shard, Q);
        ck_assert_uint_eq (ring_key_shard (key, (size_t) len, Q), shard);
        count [shard]++;
    }
    for (int s = 0; s < Q; s++) {
        ck_assert_uint_ge (count [s], KEYS / Q * 85 / 100);
        ck_assert_uint_le (count [s], KEYS / Q * 115 / 100);
    }
}
END_TEST

int
main (void)
{
    Suite *suite = suite_create ("ring_hash");
    TCase *tc = tcase_create ("hash");
    tcase_add_test (tc, test_vectors);
    tcase_add_test (tc, test_alignment);
    tcase_add_test (tc, test_key_shard_pinned);
    tcase_add_test (tc, test_key_shard_spread);
    suite_add_tcase (suite, tc);
    return titan_check_run (suite, false);
}
