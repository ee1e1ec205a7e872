/*
 * Frame headers (RFC 6455 §5.2): decoding and encoding, the §5.7 examples as
 * vectors both ways, every prefix of a header, length boundaries, the 64-bit
 * length's top bit, and random round trips. Inputs end at a guard page.
 */
#include "test.h"

typedef struct vector {
    const char *name;
    uint8_t bytes[16]; /* the header (and for small frames, the payload) */
    size_t hdr_len;    /* header bytes */
    size_t total;      /* bytes in .bytes */
    bool fin, masked;
    uint8_t opcode;
    uint64_t payload_len;
    uint8_t mask[4];
} vector;

/* RFC 6455 §5.7 */
static const vector vectors[] = {
    {"single-frame unmasked text Hello",
     {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f},
     2,
     7,
     true,
     false,
     DX_OP_TEXT,
     5,
     {0}},
    {"single-frame masked text Hello",
     {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58},
     6,
     11,
     true,
     true,
     DX_OP_TEXT,
     5,
     {0x37, 0xfa, 0x21, 0x3d}},
    {"fragmented first Hel",
     {0x01, 0x03, 0x48, 0x65, 0x6c},
     2,
     5,
     false,
     false,
     DX_OP_TEXT,
     3,
     {0}},
    {"fragmented last lo", {0x80, 0x02, 0x6c, 0x6f}, 2, 4, true, false, DX_OP_CONT, 2, {0}},
    {"unmasked ping Hello",
     {0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f},
     2,
     7,
     true,
     false,
     DX_OP_PING,
     5,
     {0}},
    {"masked pong Hello",
     {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58},
     6,
     11,
     true,
     true,
     DX_OP_PONG,
     5,
     {0x37, 0xfa, 0x21, 0x3d}},
    {"256 bytes binary", {0x82, 0x7E, 0x01, 0x00}, 4, 4, true, false, DX_OP_BINARY, 256, {0}},
    {"64KiB binary",
     {0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00},
     10,
     10,
     true,
     false,
     DX_OP_BINARY,
     65536,
     {0}},
};

static void check_vector_decode(const vector *v) {
    uint8_t *g = dx_guard_alloc(v->bytes, v->hdr_len); /* exactly the header */
    dx_frame_header h;
    size_t hl = 0;
    CHECK_RC(dx_frame_header_decode(g, v->hdr_len, &h, &hl), 0);
    CHECK_EQ_INT(hl, v->hdr_len);
    CHECK_EQ_INT(h.fin, v->fin);
    CHECK_EQ_INT(h.rsv, 0);
    CHECK_EQ_INT(h.opcode, v->opcode);
    CHECK_EQ_INT(h.masked, v->masked);
    CHECK(h.payload_len == v->payload_len);
    if (v->masked)
        CHECK_MEM(h.mask, v->mask, 4);
    /* every shorter prefix is incomplete, and reads nothing past its end */
    for (size_t n = 0; n < v->hdr_len; n++) {
        uint8_t *gp = dx_guard_alloc(v->bytes, n);
        CHECK_RC(dx_frame_header_decode(gp, n, &h, &hl), DX_EINCOMPLETE);
        dx_guard_free(gp, n);
    }
    dx_guard_free(g, v->hdr_len);
}

TEST(rfc6455_5_7_examples_decode) {
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        int before = dx_test_failed;
        check_vector_decode(&vectors[i]);
        if (dx_test_failed != before)
            printf("    in vector: %s\n", vectors[i].name);
    }
}

TEST(rfc6455_5_7_examples_encode) {
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        const vector *v = &vectors[i];
        dx_frame_header h = {
            .fin = v->fin, .opcode = v->opcode, .masked = v->masked, .payload_len = v->payload_len};
        memcpy(h.mask, v->mask, 4);
        uint8_t out[DX_MAX_HEADER_LEN];
        size_t n = dx_frame_header_encode(out, &h);
        CHECK_EQ_INT(n, v->hdr_len);
        CHECK_MEM(out, v->bytes, v->hdr_len);
    }
}

TEST(rfc6455_5_7_masked_hello_unmasks_to_hello) {
    const vector *v = &vectors[1];
    uint8_t payload[5];
    memcpy(payload, v->bytes + v->hdr_len, 5);
    dx_mask(payload, 5, v->mask, 0);
    CHECK_MEM(payload, "Hello", 5);
    /* and masking "Hello" with the key gives the example's bytes */
    uint8_t masked[5];
    dx_mask_copy(masked, (const uint8_t *)"Hello", 5, v->mask, 0);
    CHECK_MEM(masked, v->bytes + v->hdr_len, 5);
}

TEST(rfc6455_5_2_length_encoding_boundaries) {
    static const struct {
        uint64_t len;
        size_t hdr;
        uint8_t len7;
    } cases[] = {
        {0, 2, 0},
        {1, 2, 1},
        {125, 2, 125},
        {126, 4, 126},
        {127, 4, 126},
        {65535, 4, 126},
        {65536, 10, 127},
        {0xFFFFFFFFull, 10, 127},
        {0x100000000ull, 10, 127},
        {((uint64_t)1 << 63) - 1, 10, 127},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int masked = 0; masked < 2; masked++) {
            dx_frame_header h = {.fin = true,
                                 .opcode = DX_OP_BINARY,
                                 .masked = masked != 0,
                                 .payload_len = cases[i].len,
                                 .mask = {1, 2, 3, 4}};
            uint8_t out[DX_MAX_HEADER_LEN];
            size_t n = dx_frame_header_encode(out, &h);
            CHECK_EQ_INT(n, cases[i].hdr + (masked ? 4 : 0));
            CHECK_EQ_INT(out[1] & 0x7F, cases[i].len7);
            CHECK_EQ_INT(out[1] >> 7, masked);
            /* big-endian length bytes */
            if (cases[i].hdr == 4)
                CHECK_EQ_INT(out[2] << 8 | out[3], cases[i].len);
            if (cases[i].hdr == 10) {
                uint64_t v = 0;
                for (int k = 0; k < 8; k++)
                    v = v << 8 | out[2 + k];
                CHECK(v == cases[i].len);
            }
            if (masked) {
                static const uint8_t key[4] = {1, 2, 3, 4};
                CHECK_MEM(out + cases[i].hdr, key, 4);
            }
            uint8_t *g = dx_guard_alloc(out, n);
            dx_frame_header d;
            size_t hl;
            CHECK_RC(dx_frame_header_decode(g, n, &d, &hl), 0);
            CHECK_EQ_INT(hl, n);
            CHECK(d.payload_len == cases[i].len);
            dx_guard_free(g, n);
        }
    }
}

TEST(rfc6455_5_2_64bit_length_with_top_bit_set_is_refused) {
    uint8_t b[] = {0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4};
    dx_frame_header h;
    size_t hl;
    for (size_t n = 3; n <= sizeof b; n++) { /* as soon as the first length byte is in */
        uint8_t *g = dx_guard_alloc(b, n);
        CHECK_RC(dx_frame_header_decode(g, n, &h, &hl), DX_ELIMIT);
        dx_guard_free(g, n);
    }
    b[2] = 0xFF;
    CHECK_RC(dx_frame_header_decode(b, sizeof b, &h, &hl), DX_ELIMIT);
    b[2] = 0x7F; /* the largest legal length */
    memset(b + 3, 0xFF, 7);
    CHECK_RC(dx_frame_header_decode(b, sizeof b, &h, &hl), 0);
    CHECK(h.payload_len == ((uint64_t)1 << 63) - 1);
    CHECK_EQ_INT(hl, 14);
}

TEST(rfc6455_5_2_non_minimal_lengths_are_decoded) {
    /* §5.2 binds the sender to the minimal form; the receiver is not required to
     * refuse others, and we do not. */
    static const uint8_t b16[] = {0x81, 0x7E, 0x00, 0x05};
    static const uint8_t b64[] = {0x81, 0x7F, 0, 0, 0, 0, 0, 0, 0x00, 0x7D};
    dx_frame_header h;
    size_t hl;
    CHECK_RC(dx_frame_header_decode(b16, sizeof b16, &h, &hl), 0);
    CHECK(h.payload_len == 5 && hl == 4);
    CHECK_RC(dx_frame_header_decode(b64, sizeof b64, &h, &hl), 0);
    CHECK(h.payload_len == 125 && hl == 10);
}

TEST(rfc6455_5_2_first_byte_fields) {
    for (unsigned b0 = 0; b0 < 256; b0++) {
        uint8_t b[2] = {(uint8_t)b0, 0x00};
        dx_frame_header h;
        size_t hl;
        CHECK_RC(dx_frame_header_decode(b, 2, &h, &hl), 0);
        CHECK_EQ_INT(h.fin, b0 >> 7);
        CHECK_EQ_INT(h.rsv, (b0 >> 4) & 7);
        CHECK_EQ_INT(h.opcode, b0 & 15);
        CHECK(!h.masked);
        uint8_t out[DX_MAX_HEADER_LEN];
        CHECK_EQ_INT(dx_frame_header_encode(out, &h), 2);
        CHECK_EQ_INT(out[0], b0);
    }
    dx_frame_header h = {.rsv = DX_RSV1};
    uint8_t out[DX_MAX_HEADER_LEN];
    dx_frame_header_encode(out, &h);
    CHECK_EQ_INT(out[0], 0x40);
    h.rsv = DX_RSV3;
    dx_frame_header_encode(out, &h);
    CHECK_EQ_INT(out[0], 0x10);
}

TEST(rfc6455_5_2_opcode_classes) {
    for (unsigned op = 0; op < 16; op++) {
        bool known = op == 0 || op == 1 || op == 2 || op == 8 || op == 9 || op == 10;
        CHECK_EQ_INT(dx_opcode_is_known(op), known);
        CHECK_EQ_INT(dx_opcode_is_control(op), op >= 8);
    }
}

TEST(frame_header_random_round_trip) {
    for (int i = 0; i < 20000; i++) {
        uint64_t r = dx_test_rand();
        dx_frame_header h = {0};
        h.fin = r & 1;
        h.rsv = (uint8_t)((r >> 1) & 7);
        h.opcode = (uint8_t)((r >> 4) & 15);
        h.masked = (r >> 8) & 1;
        unsigned shape = (unsigned)(r >> 9) % 4;
        uint64_t len = dx_test_rand();
        h.payload_len = shape == 0 ? len % 126 : shape == 1 ? len % 65536 : len >> 1;
        if (h.masked)
            for (int k = 0; k < 4; k++)
                h.mask[k] = (uint8_t)(r >> (16 + 8 * k));
        uint8_t out[DX_MAX_HEADER_LEN];
        size_t n = dx_frame_header_encode(out, &h);
        dx_frame_header d;
        size_t hl;
        REQUIRE(dx_frame_header_decode(out, n, &d, &hl) == 0);
        CHECK_EQ_INT(hl, n);
        CHECK(d.fin == h.fin && d.rsv == h.rsv && d.opcode == h.opcode && d.masked == h.masked &&
              d.payload_len == h.payload_len);
        if (h.masked)
            CHECK_MEM(d.mask, h.mask, 4);
        else
            CHECK(d.mask[0] == 0 && d.mask[1] == 0 && d.mask[2] == 0 && d.mask[3] == 0);
        /* and the minimal form: no shorter encoding existed */
        size_t want = (h.payload_len <= 125      ? 2u
                       : h.payload_len <= 0xFFFF ? 4u
                                                 : 10u) +
                      (h.masked ? 4u : 0u);
        CHECK_EQ_INT(n, want);
    }
}

TEST(frame_header_decode_ignores_bytes_after_the_header) {
    uint8_t b[32];
    for (size_t i = 0; i < sizeof b; i++)
        b[i] = (uint8_t)(0xA0 + i);
    b[0] = 0x82;
    b[1] = 0x83; /* masked, 3 bytes */
    dx_frame_header h;
    size_t hl;
    CHECK_RC(dx_frame_header_decode(b, sizeof b, &h, &hl), 0);
    CHECK_EQ_INT(hl, 6);
    CHECK(h.payload_len == 3);
    static const uint8_t key[4] = {0xA2, 0xA3, 0xA4, 0xA5};
    CHECK_MEM(h.mask, key, 4);
}
