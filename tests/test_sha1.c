/* SHA-1 (FIPS 180-4) against the FIPS/NIST example vectors, padding edges and
 * incremental feeding. */
#include "test.h"

#include "base/internal.h"
#include "proto/hash.h"

static void hex(const uint8_t d[DX_SHA1_LEN], char out[2 * DX_SHA1_LEN + 1]) {
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < DX_SHA1_LEN; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[2 * DX_SHA1_LEN] = '\0';
}

static void check_digest(const void *data, size_t len, const char *want) {
    uint8_t d[DX_SHA1_LEN];
    char got[2 * DX_SHA1_LEN + 1];
    dx__sha1(data, len, d);
    hex(d, got);
    if (strcmp(got, want) != 0) {
        char m[160];
        snprintf(m, sizeof m, "sha1 of %zu bytes: got %s want %s", len, got, want);
        dx_test_fail(__FILE__, __LINE__, m);
    }
}

TEST(fips180_empty) {
    check_digest("", 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    check_digest(NULL, 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
}

TEST(fips180_abc) {
    check_digest("abc", 3, "a9993e364706816aba3e25717850c26c9cd0d89d");
}

TEST(fips180_448_bit_message) {
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    CHECK_EQ_INT(strlen(m) * 8, 448);
    check_digest(m, strlen(m), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
}

TEST(fips180_896_bit_message) {
    const char *m =
        "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopq"
        "klmnopqrlmnopqrsmnopqrstnopqrstu";
    CHECK_EQ_INT(strlen(m) * 8, 896);
    check_digest(m, strlen(m), "a49b2446a02c645bf419f995b67091253a04a259");
}

TEST(fips180_million_a) {
    static uint8_t a[1000000];
    memset(a, 'a', sizeof a);
    check_digest(a, sizeof a, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
    /* and fed in odd-sized pieces, crossing block boundaries everywhere */
    dx__sha1_ctx c;
    dx__sha1_init(&c);
    size_t off = 0, step = 1;
    while (off < sizeof a) {
        size_t n = step < sizeof a - off ? step : sizeof a - off;
        dx__sha1_update(&c, a + off, n);
        off += n;
        step = step * 7 % 1013 + 1;
    }
    uint8_t d[DX_SHA1_LEN];
    char got[41];
    dx__sha1_final(&c, d);
    hex(d, got);
    CHECK(strcmp(got, "34aa973cd4c4daa4f61eeb2bdbad27316534016f") == 0);
}

/* The length field goes in the same block when 8 bytes fit after the 0x80
 * (len % 64 <= 55) and needs an extra block otherwise. */
TEST(fips180_5_1_1_padding_edges) {
    static const struct {
        size_t n;
        const char *hex;
    } v[] = {
        {55, "c1c8bbdc22796e28c0e15163d20899b65621d65a"},
        {56, "c2db330f6083854c99d4b5bfb6e8f29f201be699"},
        {63, "03f09f5b158a7a8cdad920bddc29b81c18a551f5"},
        {64, "0098ba824b5c16427bd7a1122a5a442a25ec644d"},
        {65, "11655326c708d70319be2610e8a57d9a5b959d3b"},
        {119, "ee971065aaa017e0632a8ca6c77bb3bf8b1dfc56"},
        {120, "f34c1488385346a55709ba056ddd08280dd4c6d6"},
    };
    uint8_t a[128];
    memset(a, 'a', sizeof a);
    for (size_t i = 0; i < DX_ARRAY_SIZE(v); i++)
        check_digest(a, v[i].n, v[i].hex);
}

TEST(sha1_incremental_equals_one_shot_at_every_split) {
    uint8_t data[300];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)dx_test_rand();
    for (size_t len = 0; len <= sizeof data; len += 13) {
        uint8_t want[DX_SHA1_LEN];
        dx__sha1(data, len, want);
        for (int si = 0; si < 3; si++) {
            dx__sha1_ctx c;
            dx__sha1_init(&c);
            size_t off = 0;
            while (off < len) {
                size_t n = dx_split_next(dx_all_splits[si], len - off);
                dx__sha1_update(&c, data + off, n);
                off += n;
            }
            uint8_t got[DX_SHA1_LEN];
            dx__sha1_final(&c, got);
            CHECK_MEM(got, want, DX_SHA1_LEN);
        }
    }
}

TEST(sha1_input_at_guard_page) {
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    uint8_t *g = dx_guard_alloc(m, strlen(m));
    check_digest(g, strlen(m), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    dx_guard_free(g, strlen(m));
}
