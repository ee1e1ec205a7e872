/* Base64 (RFC 4648): the §10 test vectors, strict decoding, exact sizes. */
#include "test.h"

#include "base/internal.h"
#include "proto/hash.h"

static const struct {
    const char *raw, *enc;
} rfc4648_10[] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

TEST(rfc4648_10_encode_vectors) {
    for (size_t i = 0; i < DX_ARRAY_SIZE(rfc4648_10); i++) {
        char out[16];
        size_t n = strlen(rfc4648_10[i].raw);
        CHECK_EQ_INT(dx__base64_encoded_len(n), strlen(rfc4648_10[i].enc));
        size_t w = dx__base64_encode((const uint8_t *)rfc4648_10[i].raw, n, out);
        CHECK_SPAN_STR(((dx_span){(const uint8_t *)out, w}), rfc4648_10[i].enc);
    }
}

TEST(rfc4648_10_decode_vectors) {
    for (size_t i = 0; i < DX_ARRAY_SIZE(rfc4648_10); i++) {
        uint8_t out[16];
        size_t n = 99;
        const char *e = rfc4648_10[i].enc;
        CHECK_RC(dx__base64_decode((const uint8_t *)e, strlen(e), out, sizeof out, &n), 0);
        CHECK_SPAN_STR(((dx_span){out, n}), rfc4648_10[i].raw);
    }
}

TEST(rfc6455_4_1_sample_nonce_decodes_to_16_bytes) {
    const char *k = "dGhlIHNhbXBsZSBub25jZQ==";
    uint8_t out[16];
    size_t n;
    CHECK_RC(dx__base64_decode((const uint8_t *)k, 24, out, sizeof out, &n), 0);
    CHECK_SPAN_STR(((dx_span){out, n}), "the sample nonce");
}

static int dec(const char *s) {
    uint8_t out[64];
    size_t n;
    return dx__base64_decode((const uint8_t *)s, strlen(s), out, sizeof out, &n);
}

TEST(rfc4648_3_3_rejects_non_alphabet_and_misplaced_padding) {
    CHECK_RC(dec("Zg="), DX_EINVAL);  /* length not a multiple of 4 */
    CHECK_RC(dec("Zg"), DX_EINVAL);   /* padding omitted */
    CHECK_RC(dec("Z==="), DX_EINVAL); /* three pad chars */
    CHECK_RC(dec("===="), DX_EINVAL);
    CHECK_RC(dec("=Zg="), DX_EINVAL);     /* pad at the start */
    CHECK_RC(dec("Zg==Zg=="), DX_EINVAL); /* pad in the middle */
    CHECK_RC(dec("Zm 9"), DX_EINVAL);     /* whitespace */
    CHECK_RC(dec("Zm9v\r\n"), DX_EINVAL);
    CHECK_RC(dec("Zm-_"), DX_EINVAL); /* URL-safe alphabet */
    CHECK_RC(dec("Zm9\x80"), DX_EINVAL);
    CHECK_RC(dec("Zm\0v"), DX_EINVAL); /* strlen stops: "Zm" is too short */
    uint8_t nul[4] = {'Z', 'm', 0, 'v'};
    uint8_t out[4];
    size_t n;
    CHECK_RC(dx__base64_decode(nul, 4, out, sizeof out, &n), DX_EINVAL);
}

TEST(rfc4648_3_5_rejects_nonzero_pad_bits) {
    CHECK_RC(dec("Zg=="), 0);
    CHECK_RC(dec("Zh=="), DX_EINVAL); /* 'h' leaves a 1 bit the padding drops */
    CHECK_RC(dec("Zm8="), 0);
    CHECK_RC(dec("Zm9="), DX_EINVAL);
    /* A 16-byte key ends in one of A, Q, g, w before "==": 0b??0000. */
    CHECK_RC(dec("dGhlIHNhbXBsZSBub25jZQ=="), 0);
    CHECK_RC(dec("dGhlIHNhbXBsZSBub25jZR=="), DX_EINVAL);
}

TEST(base64_decode_reports_needed_size) {
    uint8_t out[6];
    size_t n = 0;
    CHECK_RC(dx__base64_decode((const uint8_t *)"Zm9vYmFy", 8, out, 5, &n), DX_ENOSPACE);
    CHECK_EQ_INT(n, 6);
    CHECK_RC(dx__base64_decode((const uint8_t *)"Zm9vYmFy", 8, out, 6, &n), 0);
    CHECK_EQ_INT(n, 6);
    CHECK_MEM(out, "foobar", 6);
    CHECK_RC(dx__base64_decode((const uint8_t *)"Zm9vYmE=", 8, out, 4, &n), DX_ENOSPACE);
    CHECK_EQ_INT(n, 5);
}

TEST(base64_round_trip_every_length) {
    uint8_t raw[100], back[100];
    char enc[140];
    for (size_t len = 0; len <= sizeof raw; len++) {
        for (size_t i = 0; i < len; i++)
            raw[i] = (uint8_t)dx_test_rand();
        size_t e = dx__base64_encode(raw, len, enc);
        CHECK_EQ_INT(e, dx__base64_encoded_len(len));
        size_t n = 0;
        CHECK_RC(dx__base64_decode((const uint8_t *)enc, e, back, sizeof back, &n), 0);
        CHECK_EQ_INT(n, len);
        CHECK(len == 0 || memcmp(raw, back, len) == 0);
    }
}

TEST(base64_every_byte_value) {
    uint8_t raw[256], back[256];
    char enc[344];
    for (int i = 0; i < 256; i++)
        raw[i] = (uint8_t)i;
    size_t e = dx__base64_encode(raw, sizeof raw, enc);
    size_t n;
    CHECK_RC(dx__base64_decode((const uint8_t *)enc, e, back, sizeof back, &n), 0);
    CHECK_EQ_INT(n, 256);
    CHECK_MEM(raw, back, 256);
}

TEST(base64_decode_at_guard_page) {
    const char *k = "dGhlIHNhbXBsZSBub25jZQ==";
    uint8_t *g = dx_guard_alloc(k, 24);
    uint8_t out[16];
    size_t n;
    CHECK_RC(dx__base64_decode(g, 24, out, sizeof out, &n), 0);
    CHECK_EQ_INT(n, 16);
    dx_guard_free(g, 24);
    g = dx_guard_alloc("Zm9=", 4);
    CHECK_RC(dx__base64_decode(g, 4, out, sizeof out, &n), DX_EINVAL);
    dx_guard_free(g, 4);
}
