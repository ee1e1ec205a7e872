/*
 * dx_proto receive path: framing, masking, opcodes, RSV bits, control frames and
 * limits (RFC 6455 §5.1-§5.7). Every stream goes through check_stream(), which
 * feeds it whole, bytewise and at random splits, each piece ending at a guard
 * page, and compares the event transcript and the output.
 * Fragmentation, UTF-8, closing and sending have their own files.
 */
#include "proto_util.h"

#define S DX_SIDE_SERVER
#define C DX_SIDE_CLIENT

/* ---- §5.7 examples through the whole endpoint ------------------------------ */

TEST(rfc6455_5_7_server_receives_masked_hello) {
    static const uint8_t in[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    wire w = {0};
    wire_raw(&w, in, sizeof in);
    check_side(S, &w, "text 'Hello'", "");
    wire_free(&w);
}

TEST(rfc6455_5_7_client_receives_unmasked_hello) {
    static const uint8_t in[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    wire w = {0};
    wire_raw(&w, in, sizeof in);
    check_side(C, &w, "text 'Hello'", "");
    wire_free(&w);
}

TEST(rfc6455_5_7_client_receives_fragmented_hello) {
    static const uint8_t in[] = {0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f};
    wire w = {0};
    wire_raw(&w, in, sizeof in);
    check_side(C, &w, "text 'Hello'", "");
    wire_free(&w);
}

TEST(rfc6455_5_7_fragmented_hello_events_carry_first_and_fin) {
    uint8_t in[] = {0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f};
    dx_proto *p = new_proto(C);
    size_t used;
    dx_event ev;
    CHECK_RC(dx_proto_recv(p, in, sizeof in, &used, &ev), 0);
    CHECK_EQ_INT(used, 5);
    CHECK_EQ_INT(ev.type, DX_EV_DATA);
    CHECK_EQ_INT(ev.u.data.opcode, DX_OP_TEXT);
    CHECK(ev.u.data.first && !ev.u.data.fin);
    CHECK_SPAN_STR(ev.u.data.data, "Hel");
    CHECK(ev.u.data.data.ptr == in + 2); /* zero copy: a span into our buffer */
    CHECK_RC(dx_proto_recv(p, in + 5, 4, &used, &ev), 0);
    CHECK_EQ_INT(used, 4);
    CHECK_EQ_INT(ev.type, DX_EV_DATA);
    CHECK_EQ_INT(ev.u.data.opcode, DX_OP_TEXT);
    CHECK(!ev.u.data.first && ev.u.data.fin);
    CHECK_SPAN_STR(ev.u.data.data, "lo");
    CHECK(ev.u.data.data.ptr == in + 7);
    dx_proto_destroy(p);
}

TEST(rfc6455_5_7_client_answers_unmasked_ping_with_masked_pong) {
    static const uint8_t in[] = {0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    wire w = {0};
    wire_raw(&w, in, sizeof in);
    check_side(C, &w, "ping 'Hello'", "pong 'Hello'");
    wire_free(&w);
}

TEST(rfc6455_5_7_server_receives_masked_pong_hello) {
    static const uint8_t in[] = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    wire w = {0};
    wire_raw(&w, in, sizeof in);
    check_side(S, &w, "pong 'Hello'", ""); /* §5.5.3: no reply to a pong */
    wire_free(&w);
}

TEST(rfc6455_5_7_binary_256_bytes_with_16bit_length) {
    uint8_t payload[256];
    for (int i = 0; i < 256; i++)
        payload[i] = (uint8_t)i;
    wire w = {0};
    static const uint8_t hdr[] = {0x82, 0x7E, 0x01, 0x00};
    wire_raw(&w, hdr, sizeof hdr);
    wire_raw(&w, payload, sizeof payload);
    strbuf want = {0};
    sb_add(&want, "binary ");
    sb_bytes(&want, payload, sizeof payload);
    check_side(C, &w, want.s, "");
    wire_free(&w);
    wire_c(&w, true, DX_OP_BINARY, payload, sizeof payload); /* the masked form */
    CHECK_EQ_INT(w.b[1], 0xFE);
    check_side(S, &w, want.s, "");
    wire_free(&w);
}

TEST(rfc6455_5_7_binary_64kib_with_64bit_length) {
    size_t n = 65536;
    uint8_t *payload = malloc(n);
    for (size_t i = 0; i < n; i++)
        payload[i] = (uint8_t)(i * 7 + 3);
    wire w = {0};
    static const uint8_t hdr[] = {0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0};
    wire_raw(&w, hdr, sizeof hdr);
    wire_raw(&w, payload, n);
    strbuf want = {0};
    sb_add(&want, "binary ");
    sb_bytes(&want, payload, n);
    check_side(C, &w, want.s, "");
    wire_free(&w);
    wire_c(&w, true, DX_OP_BINARY, payload, n);
    check_side(S, &w, want.s, "");
    wire_free(&w);
    free(payload);
}

TEST(rfc6455_5_3_payload_is_unmasked_in_place) {
    uint8_t in[] = {0x82, 0x84, 1, 2, 3, 4, 0x11 ^ 1, 0x22 ^ 2, 0x33 ^ 3, 0x44 ^ 4};
    dx_proto *p = new_proto(S);
    size_t used;
    dx_event ev;
    CHECK_RC(dx_proto_recv(p, in, sizeof in, &used, &ev), 0);
    CHECK_EQ_INT(ev.type, DX_EV_DATA);
    CHECK(ev.u.data.data.ptr == in + 6 && ev.u.data.data.len == 4);
    static const uint8_t plain[] = {0x11, 0x22, 0x33, 0x44};
    CHECK_MEM(in + 6, plain, 4);
    dx_proto_destroy(p);
}

TEST(rfc6455_5_3_mask_key_position_carries_across_reads) {
    /* 7 payload bytes cut 3 + 4: the second piece starts at key position 3. */
    const char *msg = "abcdefg";
    wire w = {0};
    wire_c(&w, true, DX_OP_TEXT, msg, 7);
    dx_proto *p = new_proto(S);
    size_t used;
    dx_event ev;
    CHECK_RC(dx_proto_recv(p, w.b, 9, &used, &ev), 0); /* header 6 + 3 bytes */
    CHECK_EQ_INT(used, 9);
    CHECK_SPAN_STR(ev.u.data.data, "abc");
    CHECK_RC(dx_proto_recv(p, w.b + 9, w.len - 9, &used, &ev), 0);
    CHECK_SPAN_STR(ev.u.data.data, "defg");
    CHECK(ev.u.data.fin);
    dx_proto_destroy(p);
    wire_free(&w);
}

TEST(rfc6455_5_6_empty_text_and_binary_messages_are_delivered) {
    wire w = {0};
    wire_c(&w, true, DX_OP_TEXT, "", 0);
    wire_c(&w, true, DX_OP_BINARY, "", 0);
    check_side(S, &w, "text ''; binary ''", "");
    wire_free(&w);
}

TEST(rfc6455_5_2_several_frames_in_one_read_give_one_event_per_call) {
    wire w = {0};
    wire_c(&w, true, DX_OP_TEXT, "one", 3);
    wire_c(&w, true, DX_OP_TEXT, "two", 3);
    wire_c(&w, true, DX_OP_PING, "p", 1);
    dx_proto *p = new_proto(S);
    size_t used, off = 0;
    dx_event ev;
    CHECK_RC(dx_proto_recv(p, w.b, w.len, &used, &ev), 0);
    CHECK_EQ_INT(used, 9);
    CHECK_SPAN_STR(ev.u.data.data, "one");
    off += used;
    CHECK_RC(dx_proto_recv(p, w.b + off, w.len - off, &used, &ev), 0);
    CHECK_EQ_INT(used, 9);
    CHECK_SPAN_STR(ev.u.data.data, "two");
    off += used;
    CHECK_RC(dx_proto_recv(p, w.b + off, w.len - off, &used, &ev), 0);
    CHECK_EQ_INT(ev.type, DX_EV_PING);
    CHECK_SPAN_STR(ev.u.ping, "p");
    CHECK_EQ_INT(off + used, w.len);
    dx_proto_destroy(p);
    wire_free(&w);
}

/* ---- §5.1 masking rules ---------------------------------------------------- */

TEST(rfc6455_5_1_server_fails_unmasked_frame) {
    wire w = {0};
    wire_s(&w, true, DX_OP_TEXT, "Hello", 5);
    wire_c(&w, true, DX_OP_TEXT, "ignored", 7);
    check_side(S, &w, "close 1002 local 'unmasked frame from client'",
               "close 1002 'unmasked frame from client'");
    wire_free(&w);
}

TEST(rfc6455_5_1_server_fail_close_exact_bytes) {
    uint8_t in[] = {0x81, 0x05, 'H', 'e', 'l', 'l', 'o'};
    dx_proto *p = new_proto(S);
    size_t used;
    dx_event ev;
    CHECK_RC(dx_proto_recv(p, in, sizeof in, &used, &ev), 0);
    CHECK_EQ_INT(ev.type, DX_EV_CLOSE);
    CHECK_EQ_INT(ev.u.close.code, 1002);
    CHECK(!ev.u.close.remote);
    CHECK_EQ_INT(dx_proto_get_state(p), DX_CLOSED);
    dx_span out = dx_proto_output(p);
    static const char reason[] = "unmasked frame from client";
    REQUIRE(out.len == 4 + sizeof reason - 1);
    CHECK_EQ_INT(out.ptr[0], 0x88);                  /* FIN + close, unmasked */
    CHECK_EQ_INT(out.ptr[1], 2 + sizeof reason - 1); /* 7-bit length */
    CHECK_EQ_INT(out.ptr[2], 0x03);
    CHECK_EQ_INT(out.ptr[3], 0xEA);
    CHECK_MEM(out.ptr + 4, reason, sizeof reason - 1);
    CHECK(!dx_proto_is_done(p));
    dx_proto_output_consume(p, out.len);
    CHECK(dx_proto_is_done(p));
    dx_proto_destroy(p);
}

TEST(rfc6455_5_1_client_fails_masked_frame) {
    wire w = {0};
    wire_c(&w, true, DX_OP_TEXT, "Hello", 5);
    check_side(C, &w, "close 1002 local 'masked frame from server'",
               "close 1002 'masked frame from server'");
    wire_free(&w);
}

TEST(rfc6455_5_1_unmasked_control_frame_fails_on_server) {
    wire w = {0};
    wire_s(&w, true, DX_OP_PING, "x", 1);
    check_side(S, &w, "close 1002 local 'unmasked frame from client'",
               "close 1002 'unmasked frame from client'");
    wire_free(&w);
}

TEST(rfc6455_5_1_violation_detected_from_first_two_bytes) {
    /* The header is not complete yet (a 64-bit length follows) but the MASK bit is
     * already wrong: fail at once. */
    uint8_t in[] = {0x82, 0x7F};
    dx_proto *p = new_proto(S);
    size_t used;
    dx_event ev;
    CHECK_RC(dx_proto_recv(p, in, 1, &used, &ev), 0);
    CHECK_EQ_INT(ev.type, DX_EV_NONE);
    CHECK_EQ_INT(used, 1);
    CHECK_RC(dx_proto_recv(p, in + 1, 1, &used, &ev), 0);
    CHECK_EQ_INT(ev.type, DX_EV_CLOSE);
    CHECK_EQ_INT(ev.u.close.code, 1002);
    dx_proto_destroy(p);
}

/* ---- §5.2 header fields ---------------------------------------------------- */

TEST(rfc6455_5_2_rsv_bits_fail_without_extension) {
    for (unsigned rsv = 1; rsv < 8; rsv++) {
        for (int side = 0; side < 2; side++) {
            wire w = {0};
            wire_frame_b0(&w, (uint8_t)(0x80 | rsv << 4 | DX_OP_TEXT), side == S, test_key, "x", 1);
            check_side((dx_side)side, &w, "close 1002 local 'reserved bit set'",
                       "close 1002 'reserved bit set'");
            wire_free(&w);
        }
    }
}

TEST(rfc6455_5_2_rsv_bits_on_control_frame_fail) {
    wire w = {0};
    wire_frame_b0(&w, 0x80 | 0x40 | DX_OP_PING, true, test_key, "x", 1);
    check_side(S, &w, "close 1002 local 'reserved bit set'", "close 1002 'reserved bit set'");
    wire_free(&w);
}

TEST(rfc6455_5_2_rsv_bit_negotiated_by_extension_is_accepted) {
    wire w = {0};
    /* RSV1 text: the payload is the extension's (not UTF-8 checked here). */
    static const uint8_t deflated[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
    wire_frame_b0(&w, 0x80 | 0x40 | DX_OP_TEXT, true, test_key, deflated, sizeof deflated);
    wire_frame_b0(&w, 0x80 | 0x20 | DX_OP_TEXT, true, test_key, "x", 1); /* RSV2: not allowed */
    dx_proto_config cfg = {.side = S, .rsv_allowed = DX_RSV1};
    check_stream(
        &cfg, &w,
        "text rsv=4 '\\xf2H\\xcd\\xc9\\xc9\\x07\\x00'; close 1002 local 'reserved bit set'",
        "close 1002 'reserved bit set'", false);
    wire_free(&w);
}

TEST(rfc7692_6_negotiated_rsv_bit_fails_on_control_and_continuation_frames) {
    static const char why[] = "RSV bit on a control or continuation frame";
    char events[128], output[128];
    snprintf(events, sizeof events, "close 1002 local '%s'", why);
    snprintf(output, sizeof output, "close 1002 '%s'", why);
    dx_proto_config cfg = {.side = S, .rsv_allowed = DX_RSV1};
    static const unsigned ctrl[] = {DX_OP_PING, DX_OP_PONG, DX_OP_CLOSE};
    for (size_t i = 0; i < sizeof ctrl / sizeof ctrl[0]; i++) {
        wire w = {0};
        wire_frame_b0(&w, (uint8_t)(0x80 | 0x40 | ctrl[i]), true, test_key, "", 0);
        check_stream(&cfg, &w, events, output, false);
        wire_free(&w);
    }
    /* RSV1 on the first fragment is the extension's; on a continuation it fails,
     * after the first fragment was delivered. */
    wire w = {0};
    wire_frame_b0(&w, 0x40 | DX_OP_BINARY, true, test_key, "ab", 2);
    wire_frame_b0(&w, 0x80 | 0x40 | DX_OP_CONT, true, test_key, "cd", 2);
    char ev2[192];
    snprintf(ev2, sizeof ev2, "partial binary 'ab'; %s", events);
    check_stream(&cfg, &w, ev2, output, false);
    wire_free(&w);
}

TEST(rfc6455_5_2_reserved_opcodes_fail) {
    static const unsigned ops[] = {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        wire w = {0};
        wire_frame_b0(&w, (uint8_t)(0x80 | ops[i]), true, test_key, "", 0);
        check_side(S, &w, "close 1002 local 'reserved opcode'", "close 1002 'reserved opcode'");
        wire_free(&w);
        wire_frame_b0(&w, (uint8_t)(0x80 | ops[i]), false, NULL, "abc", 3);
        check_side(C, &w, "close 1002 local 'reserved opcode'", "close 1002 'reserved opcode'");
        wire_free(&w);
    }
}

TEST(rfc6455_5_2_64bit_length_with_top_bit_fails) {
    static const uint8_t in[] = {0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4};
    wire w = {0};
    wire_raw(&w, in, sizeof in);
    check_side(S, &w, "close 1002 local '64-bit length with the top bit set'",
               "close 1002 '64-bit length with the top bit set'");
    wire_free(&w);
}

TEST(rfc6455_5_2_64bit_length_top_bit_fails_before_header_completes) {
    uint8_t in[] = {0x82, 0x7F, 0xFF};
    dx_proto *p = new_proto(C);
    size_t used;
    dx_event ev;
    CHECK_RC(dx_proto_recv(p, in, sizeof in, &used, &ev), 0);
    CHECK_EQ_INT(ev.type, DX_EV_CLOSE);
    CHECK_EQ_INT(ev.u.close.code, 1002);
    dx_proto_destroy(p);
}

TEST(rfc6455_5_2_non_minimal_length_is_accepted) {
    /* "Hi" announced with a 16-bit and a 64-bit length. */
    static const uint8_t in[] = {0x81, 0x7E, 0x00, 0x02, 'H', 'i', 0x81, 0x7F, 0,
                                 0,    0,    0,    0,    0,   0,   2,    'y',  'o'};
    wire w = {0};
    wire_raw(&w, in, sizeof in);
    check_side(C, &w, "text 'Hi'; text 'yo'", "");
    wire_free(&w);
}

/* ---- §5.5 control frames --------------------------------------------------- */

TEST(rfc6455_5_5_control_frame_over_125_bytes_fails) {
    uint8_t big[126];
    memset(big, 'a', sizeof big);
    wire w = {0};
    wire_c(&w, true, DX_OP_PING, big, 126); /* 16-bit length form */
    check_side(S, &w, "close 1002 local 'control frame over 125 bytes'",
               "close 1002 'control frame over 125 bytes'");
    wire_free(&w);
    wire_s(&w, true, DX_OP_CLOSE, big, 126);
    check_side(C, &w, "close 1002 local 'control frame over 125 bytes'",
               "close 1002 'control frame over 125 bytes'");
    wire_free(&w);
}

TEST(rfc6455_5_5_control_frame_with_125_bytes_is_accepted) {
    uint8_t big[125];
    for (int i = 0; i < 125; i++)
        big[i] = (uint8_t)('A' + i % 26);
    wire w = {0};
    wire_c(&w, true, DX_OP_PING, big, 125);
    strbuf ev = {0}, out = {0};
    sb_add(&ev, "ping ");
    sb_bytes(&ev, big, 125);
    sb_add(&out, "pong ");
    sb_bytes(&out, big, 125);
    check_side(S, &w, ev.s, out.s);
    wire_free(&w);
}

TEST(rfc6455_5_5_fragmented_control_frame_fails) {
    static const unsigned ops[] = {DX_OP_PING, DX_OP_PONG, DX_OP_CLOSE};
    for (size_t i = 0; i < 3; i++) {
        wire w = {0};
        wire_c(&w, false, ops[i], "x", 1);
        check_side(S, &w, "close 1002 local 'fragmented control frame'",
                   "close 1002 'fragmented control frame'");
        wire_free(&w);
    }
}

TEST(rfc6455_5_5_2_ping_is_answered_with_identical_pong) {
    wire w = {0};
    wire_c(&w, true, DX_OP_PING, "Hello", 5);
    wire_c(&w, true, DX_OP_PING, "", 0);
    wire_c(&w, true, DX_OP_PING, "\x00\xff", 2);
    check_side(S, &w, "ping 'Hello'; ping ''; ping '\\x00\\xff'",
               "pong 'Hello'; pong ''; pong '\\x00\\xff'");
    wire_free(&w);
}

TEST(rfc6455_5_5_2_pong_exact_bytes) {
    uint8_t in[] = {0x89, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    dx_proto *p = new_proto(S);
    size_t used;
    dx_event ev;
    CHECK_RC(dx_proto_recv(p, in, sizeof in, &used, &ev), 0);
    CHECK_EQ_INT(ev.type, DX_EV_PING);
    CHECK_SPAN_STR(ev.u.ping, "Hello");
    static const uint8_t pong[] = {0x8a, 0x05, 'H', 'e', 'l', 'l', 'o'};
    dx_span out = dx_proto_output(p);
    CHECK(out.len == sizeof pong && memcmp(out.ptr, pong, sizeof pong) == 0);
    CHECK(dx_proto_wants_write(p));
    dx_proto_destroy(p);
}

TEST(rfc6455_5_5_3_unsolicited_pong_is_delivered_and_not_answered) {
    wire w = {0};
    wire_s(&w, true, DX_OP_PONG, "beat", 4);
    check_side(C, &w, "pong 'beat'", "");
    wire_free(&w);
}

TEST(rfc6455_5_5_control_payload_split_across_reads_is_reassembled) {
    wire w = {0};
    wire_c(&w, true, DX_OP_PING, "0123456789", 10);
    dx_proto *p = new_proto(S);
    size_t used;
    dx_event ev;
    CHECK_RC(dx_proto_recv(p, w.b, 9, &used, &ev), 0); /* header + 3 bytes */
    CHECK_EQ_INT(ev.type, DX_EV_NONE);
    CHECK_EQ_INT(used, 9);
    CHECK(!dx_proto_wants_write(p));
    CHECK_RC(dx_proto_recv(p, w.b + 9, w.len - 9, &used, &ev), 0);
    CHECK_EQ_INT(ev.type, DX_EV_PING);
    CHECK_SPAN_STR(ev.u.ping, "0123456789");
    dx_proto_destroy(p);
    wire_free(&w);
}

/* ---- limits ---------------------------------------------------------------- */

TEST(limit_max_frame_fails_1009_at_the_header) {
    dx_proto_config cfg = {.side = S, .limits.max_frame = 100};
    dx_proto *p = NULL;
    REQUIRE(dx_proto_create(&p, &cfg) == 0);
    /* Only the header of a 2^62-byte frame: refused before any payload. */
    uint8_t in[] = {0x82, 0xFF, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4};
    size_t used;
    dx_event ev;
    CHECK_RC(dx_proto_recv(p, in, sizeof in, &used, &ev), 0);
    CHECK_EQ_INT(ev.type, DX_EV_CLOSE);
    CHECK_EQ_INT(ev.u.close.code, 1009);
    CHECK_SPAN_STR(ev.u.close.reason, "frame too big");
    CHECK(!ev.u.close.remote);
    dx_proto_destroy(p);

    wire w = {0};
    uint8_t data[101];
    memset(data, 'z', sizeof data);
    wire_c(&w, true, DX_OP_BINARY, data, 100); /* exactly the limit: fine */
    wire_c(&w, true, DX_OP_BINARY, data, 101);
    strbuf want = {0};
    sb_add(&want, "binary ");
    sb_bytes(&want, data, 100);
    sb_add(&want, "; close 1009 local 'frame too big'");
    check_stream(&cfg, &w, want.s, "close 1009 'frame too big'", false);
    wire_free(&w);
}

TEST(limit_max_frame_does_not_apply_to_control_frames) {
    dx_proto_config cfg = {.side = S, .limits.max_frame = 4};
    wire w = {0};
    wire_c(&w, true, DX_OP_PING, "0123456789", 10);
    check_stream(&cfg, &w, "ping '0123456789'", "pong '0123456789'", false);
    wire_free(&w);
}

TEST(limit_max_message_counts_all_fragments_and_fails_before_data) {
    dx_proto_config cfg = {.side = C, .limits.max_message = 10};
    wire w = {0};
    wire_s(&w, false, DX_OP_TEXT, "12345", 5);
    wire_s(&w, false, DX_OP_CONT, "6789", 4);
    wire_s(&w, true, DX_OP_CONT, "ab", 2); /* 11 > 10 */
    check_stream(&cfg, &w, "partial text '123456789'; close 1009 local 'message too big'",
                 "close 1009 'message too big'", false);
    wire_free(&w);
    /* The limit is per message: two messages of 10 are fine. */
    wire_s(&w, false, DX_OP_TEXT, "12345", 5);
    wire_s(&w, true, DX_OP_CONT, "67890", 5);
    wire_s(&w, true, DX_OP_BINARY, "0123456789", 10);
    check_stream(&cfg, &w, "text '1234567890'; binary '0123456789'", "", false);
    wire_free(&w);
}

TEST(limit_max_message_fails_when_only_the_header_arrived) {
    dx_proto_config cfg = {.side = C, .limits.max_message = 10};
    dx_proto *p = NULL;
    REQUIRE(dx_proto_create(&p, &cfg) == 0);
    uint8_t in[] = {0x81, 0x0B}; /* 11 bytes announced, none sent */
    size_t used;
    dx_event ev;
    CHECK_RC(dx_proto_recv(p, in, 2, &used, &ev), 0);
    CHECK_EQ_INT(ev.type, DX_EV_CLOSE);
    CHECK_EQ_INT(ev.u.close.code, 1009);
    CHECK_SPAN_STR(ev.u.close.reason, "message too big");
    dx_proto_destroy(p);
}

TEST(limit_defaults_are_one_mib) {
    dx_proto *p = new_proto(S);
    wire w = {0};
    uint8_t *big = calloc(1, DX_DEFAULT_MAX_FRAME + 1);
    wire_c(&w, true, DX_OP_BINARY, big, DX_DEFAULT_MAX_FRAME); /* at the limit */
    transcript t = {0};
    tr_feed(&t, p, w.b, w.len, DX_SPLIT_WHOLE);
    CHECK_EQ_INT(t.close_events, 0);
    CHECK_EQ_INT(t.msg.len, DX_DEFAULT_MAX_FRAME);
    wire_free(&w);
    wire_c(&w, true, DX_OP_BINARY, big, DX_DEFAULT_MAX_FRAME + 1);
    tr_feed(&t, p, w.b, 20, DX_SPLIT_WHOLE); /* the header is enough */
    CHECK_EQ_INT(t.close_events, 1);
    CHECK(strstr(t.log.s, "close 1009 local 'frame too big'") != NULL);
    tr_free(&t);
    wire_free(&w);
    free(big);
    dx_proto_destroy(p);
}

/*
 * Send-queue policy for automatic pongs: a pong is queued while the output is
 * within max_send_queue, even when that takes it past the cap by one control
 * frame; a ping that finds the output still past the cap (the peer pings and
 * does not read) fails the connection with 1008, whose close frame is the last
 * thing queued. So the output never exceeds cap + one pong + one close.
 */
TEST(limit_ping_flood_without_reading_fails_1008) {
    dx_proto_config cfg = {.side = S, .limits.max_send_queue = 1000};
    dx_proto *p = NULL;
    REQUIRE(dx_proto_create(&p, &cfg) == 0);
    uint8_t payload[125];
    memset(payload, 'p', sizeof payload);
    wire w = {0};
    for (int i = 0; i < 100; i++)
        wire_c(&w, true, DX_OP_PING, payload, sizeof payload);
    transcript t = {.no_drain = true};
    tr_feed(&t, p, w.b, w.len, DX_SPLIT_RANDOM);
    /* 127 bytes per pong: 8 pongs reach 1016 > 1000, the 9th ping fails. */
    CHECK_EQ_INT(t.close_events, 1);
    CHECK(strstr(t.log.s, "close 1008 local 'ping flood: output not read'") != NULL);
    dx_span out = dx_proto_output(p);
    CHECK_EQ_INT(out.len, 8 * 127 + 4 + strlen("ping flood: output not read"));
    CHECK(out.len <= 1000 + 127 + 2 + 125);
    strbuf d = {0};
    describe_frames(&d, out.ptr, out.len, false);
    CHECK(strstr(d.s, "pong") == d.s);
    CHECK(strstr(d.s, "close 1008 'ping flood: output not read'") != NULL);
    tr_free(&t);
    wire_free(&w);
    dx_proto_destroy(p);
}

TEST(limit_pings_are_answered_while_the_peer_reads) {
    dx_proto_config cfg = {.side = S, .limits.max_send_queue = 300};
    dx_proto *p = NULL;
    REQUIRE(dx_proto_create(&p, &cfg) == 0);
    uint8_t payload[125];
    memset(payload, 'p', sizeof payload);
    wire w = {0};
    for (int i = 0; i < 1000; i++)
        wire_c(&w, true, DX_OP_PING, payload, sizeof payload);
    transcript t = {0}; /* drains after each piece */
    tr_feed(&t, p, w.b, w.len, DX_SPLIT_RANDOM);
    CHECK_EQ_INT(t.close_events, 0);
    CHECK_EQ_INT(t.out.len, 1000 * 127);
    tr_free(&t);
    wire_free(&w);
    dx_proto_destroy(p);
}

TEST(limit_one_pong_may_exceed_a_full_send_queue) {
    dx_proto_config cfg = {.side = S, .limits.max_send_queue = 1000};
    dx_proto *p = NULL;
    REQUIRE(dx_proto_create(&p, &cfg) == 0);
    uint8_t data[996];
    memset(data, 'd', sizeof data);
    CHECK_RC(dx_proto_send_binary(p, (dx_span){data, sizeof data}), 0); /* 1000 bytes */
    CHECK_RC(dx_proto_send_binary(p, (dx_span){data, 0}), DX_ELIMIT);
    wire w = {0};
    wire_c(&w, true, DX_OP_PING, "a", 1);
    wire_c(&w, true, DX_OP_PING, "b", 1);
    transcript t = {.no_drain = true};
    tr_feed(&t, p, w.b, w.len, DX_SPLIT_WHOLE);
    CHECK_STR(t.log.s, "ping 'a'; close 1008 local 'ping flood: output not read'");
    CHECK_EQ_INT(dx_proto_output(p).len, 1000 + 3 + 4 + strlen("ping flood: output not read"));
    tr_free(&t);
    wire_free(&w);
    dx_proto_destroy(p);
}

/* ---- API contract ---------------------------------------------------------- */

TEST(recv_argument_checks) {
    dx_proto *p = new_proto(S);
    uint8_t b[4] = {0};
    size_t used = 99;
    dx_event ev;
    CHECK_RC(dx_proto_recv(NULL, b, 4, &used, &ev), DX_EINVAL);
    CHECK_RC(dx_proto_recv(p, NULL, 4, &used, &ev), DX_EINVAL);
    CHECK_RC(dx_proto_recv(p, b, 4, NULL, &ev), DX_EINVAL);
    CHECK_RC(dx_proto_recv(p, b, 4, &used, NULL), DX_EINVAL);
    CHECK_RC(dx_proto_recv(p, NULL, 0, &used, &ev), 0);
    CHECK_EQ_INT(used, 0);
    CHECK_EQ_INT(ev.type, DX_EV_NONE);
    CHECK_RC(dx_proto_recv_eof(NULL, &ev), DX_EINVAL);
    CHECK_RC(dx_proto_recv_eof(p, NULL), DX_EINVAL);
    dx_proto_destroy(p);
}

TEST(create_argument_checks_and_defaults) {
    dx_proto *p = (dx_proto *)&p;
    dx_proto *keep = p;
    dx_proto_config bad = {.side = (dx_side)7};
    CHECK_RC(dx_proto_create(NULL, NULL), DX_EINVAL);
    CHECK_RC(dx_proto_create(&p, &bad), DX_EINVAL);
    CHECK(p == keep);
    dx_proto_config badrsv = {.side = S, .rsv_allowed = 0x8};
    CHECK_RC(dx_proto_create(&p, &badrsv), DX_EINVAL);
    CHECK(p == keep);
    CHECK_RC(dx_proto_create(&p, NULL), 0); /* NULL: a server with defaults */
    CHECK_EQ_INT(dx_proto_side(p), DX_SIDE_SERVER);
    CHECK_EQ_INT(dx_proto_get_state(p), DX_OPEN);
    CHECK(!dx_proto_wants_write(p));
    CHECK(!dx_proto_is_done(p));
    CHECK_EQ_INT(dx_proto_output(p).len, 0);
    dx_proto_destroy(p);
    dx_proto_destroy(NULL);
    p = new_proto(C);
    CHECK_EQ_INT(dx_proto_side(p), DX_SIDE_CLIENT);
    dx_proto_destroy(p);
}

TEST(recv_header_split_over_many_reads_keeps_14_bytes) {
    /* A masked frame with a 64-bit length: 14 header bytes, fed 1 at a time,
     * each in its own guard-page buffer (so nothing may be kept by reference). */
    uint8_t *payload = malloc(70000);
    for (size_t i = 0; i < 70000; i++)
        payload[i] = (uint8_t)(i % 251);
    wire w = {0};
    wire_c(&w, true, DX_OP_BINARY, payload, 70000);
    CHECK_EQ_INT(w.b[1], 0xFF);
    dx_proto *p = new_proto(S);
    transcript t = {0};
    for (size_t i = 0; i < 14; i++)
        tr_feed_piece(&t, p, w.b + i, 1);
    CHECK_EQ_INT(t.data_events, 0);
    tr_feed(&t, p, w.b + 14, w.len - 14, DX_SPLIT_RANDOM);
    strbuf want = {0};
    sb_add(&want, "binary ");
    sb_bytes(&want, payload, 70000);
    CHECK_STR(t.log.s, want.s);
    CHECK_EQ_INT(t.violations, 0);
    tr_free(&t);
    wire_free(&w);
    free(payload);
    dx_proto_destroy(p);
}
