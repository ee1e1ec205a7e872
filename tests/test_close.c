/*
 * Close payloads (RFC 6455 §5.5.1, §7.4): which codes may be on the wire and how
 * a received payload is parsed. Payloads end at a guard page.
 */
#include "test.h"

/* The §7.4 table and the IANA registry (§11.7), written out independently of
 * close.c. */
static bool reference_valid(unsigned c) {
    switch (c) {
    case 1000:
    case 1001:
    case 1002:
    case 1003:
    case 1007:
    case 1008:
    case 1009:
    case 1010:
    case 1011:
    case 1012: /* service restart (IANA) */
    case 1013: /* try again later (IANA) */
    case 1014: /* bad gateway (IANA) */
        return true;
    default:
        return c >= 3000 && c <= 4999;
    }
}

TEST(rfc6455_7_4_close_code_validity_for_every_code) {
    for (unsigned c = 0; c < 70000; c++)
        if (dx_close_code_is_valid(c) != reference_valid(c)) {
            printf("    code %u\n", c);
            dx_test_fail(__FILE__, __LINE__, "validity differs");
        }
    CHECK(!dx_close_code_is_valid(DX_CLOSE_NO_STATUS));
    CHECK(!dx_close_code_is_valid(DX_CLOSE_ABNORMAL));
    CHECK(!dx_close_code_is_valid(DX_CLOSE_TLS_HANDSHAKE));
    CHECK(!dx_close_code_is_valid(1004));
    CHECK(dx_close_code_is_valid(DX_CLOSE_MESSAGE_TOO_BIG));
}

/* Parse @n bytes placed at a guard page; returns the rc. */
static int parse(const void *bytes, size_t n, uint16_t *code, dx_span *reason, uint8_t **g) {
    *g = dx_guard_alloc(bytes, n);
    dx_span pl = {*g, n};
    return dx_close_payload_parse(pl, code, reason);
}

TEST(rfc6455_5_5_1_empty_payload_means_no_status_1005) {
    uint16_t code = 0;
    dx_span reason = {(const uint8_t *)"x", 1};
    CHECK_RC(dx_close_payload_parse((dx_span){NULL, 0}, &code, &reason), 0);
    CHECK_EQ_INT(code, DX_CLOSE_NO_STATUS);
    CHECK_EQ_INT(reason.len, 0);
}

TEST(rfc6455_5_5_1_one_byte_payload_fails_1002) {
    uint16_t code = 0;
    dx_span reason;
    uint8_t *g;
    CHECK_RC(parse("\x03", 1, &code, &reason, &g), DX_EINVAL);
    CHECK_EQ_INT(code, DX_CLOSE_PROTOCOL_ERROR);
    dx_guard_free(g, 1);
}

TEST(rfc6455_5_5_1_code_and_reason) {
    uint16_t code = 0;
    dx_span reason;
    uint8_t *g;
    CHECK_RC(parse("\x03\xe8", 2, &code, &reason, &g), 0);
    CHECK_EQ_INT(code, 1000);
    CHECK_EQ_INT(reason.len, 0);
    dx_guard_free(g, 2);
    CHECK_RC(parse("\x0f\xa0going", 7, &code, &reason, &g), 0);
    CHECK_EQ_INT(code, 4000);
    CHECK_SPAN_STR(reason, "going");
    CHECK(reason.ptr == g + 2); /* a span into the payload */
    dx_guard_free(g, 7);
    /* UTF-8 reason */
    const char *u = "\x03\xe9\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5";
    CHECK_RC(parse(u, strlen(u), &code, &reason, &g), 0);
    CHECK_EQ_INT(code, 1001);
    CHECK_EQ_INT(reason.len, strlen(u) - 2);
    dx_guard_free(g, strlen(u));
}

TEST(rfc6455_7_4_codes_not_for_the_wire_fail_1002) {
    static const unsigned bad[] = {0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 0xFFFF};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t b[4] = {(uint8_t)(bad[i] >> 8), (uint8_t)bad[i], 'o', 'k'};
        uint16_t code = 0;
        dx_span reason;
        uint8_t *g;
        CHECK_RC(parse(b, 4, &code, &reason, &g), DX_EINVAL);
        CHECK_EQ_INT(code, DX_CLOSE_PROTOCOL_ERROR);
        dx_guard_free(g, 4);
    }
}

TEST(rfc6455_5_5_1_reason_of_123_bytes_is_the_maximum) {
    uint8_t b[126];
    b[0] = 0x03;
    b[1] = 0xe8;
    memset(b + 2, 'r', sizeof b - 2);
    uint16_t code = 0;
    dx_span reason;
    uint8_t *g;
    CHECK_RC(parse(b, 125, &code, &reason, &g), 0);
    CHECK_EQ_INT(reason.len, DX_MAX_CLOSE_REASON);
    dx_guard_free(g, 125);
    CHECK_RC(parse(b, 126, &code, &reason, &g), DX_EINVAL); /* over 125: not a control frame */
    CHECK_EQ_INT(code, DX_CLOSE_PROTOCOL_ERROR);
    dx_guard_free(g, 126);
}

TEST(rfc6455_8_1_close_reason_must_be_utf8_else_1007) {
    static const char *const bad[] = {
        "\xff", "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "abc\xe2\x82" /* truncated */,
        "\x80",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t b[16] = {0x03, 0xe8};
        size_t n = strlen(bad[i]);
        memcpy(b + 2, bad[i], n);
        uint16_t code = 0;
        dx_span reason;
        uint8_t *g;
        CHECK_RC(parse(b, n + 2, &code, &reason, &g), DX_EINVAL);
        CHECK_EQ_INT(code, DX_CLOSE_INVALID_PAYLOAD);
        dx_guard_free(g, n + 2);
    }
}

TEST(rfc6455_7_4_bad_code_wins_over_bad_reason) {
    /* 1005 with invalid UTF-8: the code is checked first (1002). */
    uint8_t b[] = {0x03, 0xed, 0xff};
    uint16_t code = 0;
    dx_span reason;
    CHECK_RC(dx_close_payload_parse((dx_span){b, 3}, &code, &reason), DX_EINVAL);
    CHECK_EQ_INT(code, DX_CLOSE_PROTOCOL_ERROR);
}
