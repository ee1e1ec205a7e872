/*
 * dx_proto and the closing handshake (RFC 6455 §5.5.1, §7): echoing the peer's
 * close, our own close, what is ignored after each, close payload validation,
 * the transport ending early, and dx_proto_close's argument rules.
 */
#include "proto_util.h"

#define S DX_SIDE_SERVER
#define C DX_SIDE_CLIENT

TEST(rfc6455_5_5_1_peer_close_is_echoed_with_the_same_code) {
    uint8_t in[] = {0x88, 0x85, 1, 2, 3, 4, 0x03 ^ 1, 0xE8 ^ 2, 'b' ^ 3, 'y' ^ 4, 'e' ^ 1};
    dx_proto *p = new_proto(S);
    size_t used;
    dx_event ev;
    CHECK_RC(dx_proto_recv(p, in, sizeof in, &used, &ev), 0);
    CHECK_EQ_INT(used, sizeof in);
    CHECK_EQ_INT(ev.type, DX_EV_CLOSE);
    CHECK_EQ_INT(ev.u.close.code, 1000);
    CHECK_SPAN_STR(ev.u.close.reason, "bye");
    CHECK(ev.u.close.remote);
    CHECK_EQ_INT(dx_proto_get_state(p), DX_CLOSED);
    static const uint8_t echo[] = {0x88, 0x02, 0x03, 0xE8};
    dx_span out = dx_proto_output(p);
    CHECK(out.len == sizeof echo && memcmp(out.ptr, echo, sizeof echo) == 0);
    CHECK(!dx_proto_is_done(p));
    dx_proto_output_consume(p, 1);
    CHECK(!dx_proto_is_done(p));
    dx_proto_output_consume(p, 100); /* clamped */
    CHECK(dx_proto_is_done(p));
    CHECK(!dx_proto_wants_write(p));
    /* the transport ending now is no news: at most one close event */
    CHECK_RC(dx_proto_recv_eof(p, &ev), 0);
    CHECK_EQ_INT(ev.type, DX_EV_NONE);
    dx_proto_destroy(p);
}

TEST(rfc6455_5_5_1_empty_close_is_answered_with_empty_close_and_reports_1005) {
    wire w = {0};
    wire_peer_close(&w, S, 0, "");
    check_side(S, &w, "close 1005 remote ''", "close");
    wire_free(&w);
    wire_peer_close(&w, C, 0, "");
    check_side(C, &w, "close 1005 remote ''", "close");
    wire_free(&w);
}

TEST(rfc6455_5_5_1_valid_codes_are_accepted_and_echoed) {
    static const unsigned codes[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010,
                                     1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        wire w = {0};
        wire_peer_close(&w, C, codes[i], "r");
        char ev[64], out[64];
        snprintf(ev, sizeof ev, "close %u remote 'r'", codes[i]);
        snprintf(out, sizeof out, "close %u ''", codes[i]);
        check_side(C, &w, ev, out);
        wire_free(&w);
    }
}

TEST(rfc6455_7_4_invalid_close_codes_fail_1002) {
    static const unsigned codes[] = {0,    1,    999,  1004, 1005, 1006, 1015,
                                     1016, 1100, 2000, 2999, 5000, 65535};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        wire w = {0};
        uint8_t body[2] = {(uint8_t)(codes[i] >> 8), (uint8_t)codes[i]};
        wire_c(&w, true, DX_OP_CLOSE, body, 2);
        check_side(S, &w, "close 1002 local 'invalid close code'",
                   "close 1002 'invalid close code'");
        wire_free(&w);
    }
}

TEST(rfc6455_5_5_1_one_byte_close_payload_fails_1002) {
    wire w = {0};
    wire_c(&w, true, DX_OP_CLOSE, "\x03", 1);
    check_side(S, &w, "close 1002 local 'close payload of 1 byte'",
               "close 1002 'close payload of 1 byte'");
    wire_free(&w);
}

TEST(rfc6455_5_5_1_close_with_123_byte_reason_is_accepted) {
    char reason[124];
    memset(reason, 'r', 123);
    reason[123] = 0;
    wire w = {0};
    wire_peer_close(&w, S, 4000, reason);
    strbuf want = {0};
    sb_add(&want, "close 4000 remote ");
    sb_bytes(&want, (const uint8_t *)reason, 123);
    check_side(S, &w, want.s, "close 4000 ''");
    wire_free(&w);
}

TEST(rfc6455_5_5_1_after_peer_close_everything_is_ignored) {
    wire w = {0};
    wire_peer_close(&w, S, 1001, "");
    wire_c(&w, true, DX_OP_TEXT, "late", 4);
    wire_c(&w, true, DX_OP_PING, "late", 4);
    wire_s(&w, true, DX_OP_TEXT, "even invalid", 12);
    wire_raw(&w, "\xff\xff\xff", 3);
    check_side(S, &w, "close 1001 remote ''", "close 1001 ''");
    wire_free(&w);
}

TEST(rfc6455_7_1_2_our_close_then_the_peers_completes_the_handshake) {
    dx_proto *p = new_proto(S);
    CHECK_RC(dx_proto_close(p, 1000, dx_span_cstr("bye")), 0);
    CHECK_EQ_INT(dx_proto_get_state(p), DX_CLOSING);
    static const uint8_t want[] = {0x88, 0x05, 0x03, 0xE8, 'b', 'y', 'e'};
    dx_span out = dx_proto_output(p);
    CHECK(out.len == sizeof want && memcmp(out.ptr, want, sizeof want) == 0);
    dx_proto_output_consume(p, out.len);
    CHECK(!dx_proto_is_done(p)); /* waiting for the peer's close */

    wire w = {0};
    wire_peer_close(&w, S, 1000, "ok");
    transcript t = {0};
    tr_feed(&t, p, w.b, w.len, DX_SPLIT_BYTES);
    CHECK_STR(t.log.s, "close 1000 remote 'ok'");
    CHECK_EQ_INT(t.out.len, 0); /* no second close */
    CHECK_EQ_INT(dx_proto_get_state(p), DX_CLOSED);
    CHECK(dx_proto_is_done(p));
    tr_free(&t);
    wire_free(&w);
    dx_proto_destroy(p);
}

TEST(rfc6455_5_5_1_after_our_close_data_and_pings_are_ignored) {
    for (int side = 0; side < 2; side++) {
        dx_proto *p = new_proto((dx_side)side);
        CHECK_RC(dx_proto_close(p, 0, (dx_span){NULL, 0}), 0);
        dx_span out = dx_proto_output(p);
        strbuf d = {0};
        describe_frames(&d, out.ptr, out.len, side == C);
        CHECK_STR(d.s, "close");
        dx_proto_output_consume(p, out.len);

        wire w = {0};
        wire_peer_str(&w, (dx_side)side, true, DX_OP_TEXT, "ignored");
        wire_peer_str(&w, (dx_side)side, false, DX_OP_BINARY, "frag");
        wire_peer_str(&w, (dx_side)side, true, DX_OP_PING, "no pong");
        wire_peer_str(&w, (dx_side)side, true, DX_OP_PONG, "no event");
        wire_peer_str(&w, (dx_side)side, true, DX_OP_CONT, "ment");
        wire_peer_str(&w, (dx_side)side, true, DX_OP_TEXT, "\xff not validated");
        wire_peer_close(&w, (dx_side)side, 1000, "");
        transcript t = {0};
        tr_feed(&t, p, w.b, w.len, DX_SPLIT_RANDOM);
        CHECK_STR(t.log.s, "close 1000 remote ''");
        CHECK_EQ_INT(t.out.len, 0);
        CHECK(dx_proto_is_done(p));
        tr_free(&t);
        wire_free(&w);
        dx_proto_destroy(p);
    }
}

TEST(rfc6455_7_1_7_violation_after_our_close_fails_without_a_second_close) {
    dx_proto *p = new_proto(S);
    CHECK_RC(dx_proto_close(p, 1001, (dx_span){NULL, 0}), 0);
    dx_proto_output_consume(p, 100);
    wire w = {0};
    wire_s(&w, true, DX_OP_TEXT, "unmasked", 8);
    transcript t = {0};
    tr_feed(&t, p, w.b, w.len, DX_SPLIT_WHOLE);
    CHECK_STR(t.log.s, "close 1002 local 'unmasked frame from client'");
    CHECK_EQ_INT(t.out.len, 0);
    CHECK_EQ_INT(dx_proto_get_state(p), DX_CLOSED);
    tr_free(&t);
    wire_free(&w);
    dx_proto_destroy(p);
}

TEST(rfc6455_5_5_1_no_data_frames_after_sending_close) {
    dx_proto *p = new_proto(C);
    CHECK_RC(dx_proto_close(p, 1000, (dx_span){NULL, 0}), 0);
    size_t before = dx_proto_output(p).len;
    dx_span x = dx_span_cstr("x");
    CHECK_RC(dx_proto_send_text(p, x), DX_ESTATE);
    CHECK_RC(dx_proto_send(p, DX_OP_CONT, x, true), DX_ESTATE);
    CHECK_RC(dx_proto_ping(p, x), DX_ESTATE);
    CHECK_RC(dx_proto_pong(p, x), DX_ESTATE);
    CHECK_RC(dx_proto_close(p, 1000, x), DX_ESTATE);
    uint8_t hdr[DX_MAX_HEADER_LEN], key[4];
    size_t hl;
    CHECK_RC(dx_proto_send_header(p, DX_OP_BINARY, 1, true, hdr, &hl, key), DX_ESTATE);
    CHECK_EQ_INT(dx_proto_output(p).len, before);
    dx_proto_destroy(p);
}

TEST(rfc6455_7_1_5_eof_without_close_reports_1006) {
    wire w = {0};
    wire_c(&w, false, DX_OP_TEXT, "Hel", 3);
    dx_proto_config cfg = {.side = S};
    check_stream(&cfg, &w, "partial text 'Hel'; close 1006 local ''", "", true);
    wire_free(&w);
    /* in CLOSING too */
    dx_proto *p = new_proto(S);
    CHECK_RC(dx_proto_close(p, 1000, (dx_span){NULL, 0}), 0);
    dx_event ev;
    CHECK_RC(dx_proto_recv_eof(p, &ev), 0);
    CHECK_EQ_INT(ev.type, DX_EV_CLOSE);
    CHECK_EQ_INT(ev.u.close.code, 1006);
    CHECK(!ev.u.close.remote);
    CHECK_EQ_INT(dx_proto_get_state(p), DX_CLOSED);
    CHECK_RC(dx_proto_recv_eof(p, &ev), 0); /* once */
    CHECK_EQ_INT(ev.type, DX_EV_NONE);
    dx_proto_destroy(p);
}

TEST(rfc6455_7_1_7_after_failing_nothing_more_is_reported) {
    wire w = {0};
    wire_c(&w, true, 0x3, "", 0); /* reserved opcode */
    wire_c(&w, true, DX_OP_TEXT, "after", 5);
    wire_peer_close(&w, S, 1000, "");
    dx_proto_config cfg = {.side = S};
    check_stream(&cfg, &w, "close 1002 local 'reserved opcode'", "close 1002 'reserved opcode'",
                 true /* and the EOF adds no second close */);
    wire_free(&w);
}

TEST(rfc6455_7_4_dx_proto_close_argument_rules) {
    dx_proto *p = new_proto(S);
    char long_reason[125];
    memset(long_reason, 'a', 124);
    long_reason[124] = 0;
    CHECK_RC(dx_proto_close(NULL, 1000, (dx_span){NULL, 0}), DX_EINVAL);
    CHECK_RC(dx_proto_close(p, 0, dx_span_cstr("reason without code")), DX_EINVAL);
    CHECK_RC(dx_proto_close(p, 1005, (dx_span){NULL, 0}), DX_EINVAL);
    CHECK_RC(dx_proto_close(p, 1006, (dx_span){NULL, 0}), DX_EINVAL);
    CHECK_RC(dx_proto_close(p, 999, (dx_span){NULL, 0}), DX_EINVAL);
    CHECK_RC(dx_proto_close(p, 5000, (dx_span){NULL, 0}), DX_EINVAL);
    CHECK_RC(dx_proto_close(p, 1000, dx_span_cstr(long_reason)), DX_EINVAL);
    CHECK_RC(dx_proto_close(p, 1000, dx_span_cstr("\xc3")), DX_EINVAL);
    CHECK_RC(dx_proto_close(p, 1000, (dx_span){NULL, 3}), DX_EINVAL);
    CHECK_EQ_INT(dx_proto_get_state(p), DX_OPEN);
    CHECK(!dx_proto_wants_write(p));
    long_reason[123] = 0; /* 123 bytes: the most that fits */
    CHECK_RC(dx_proto_close(p, 4321, dx_span_cstr(long_reason)), 0);
    dx_span out = dx_proto_output(p);
    CHECK_EQ_INT(out.len, 2 + 2 + 123);
    CHECK_EQ_INT(out.ptr[1], 125);
    CHECK_EQ_INT(out.ptr[2] << 8 | out.ptr[3], 4321);
    dx_proto_destroy(p);
}

TEST(rfc6455_5_5_1_client_close_is_masked) {
    counting_random cr;
    counting_random_init(&cr, 99);
    dx_proto_config cfg = {.side = C, .random = &cr.r};
    dx_proto *p = NULL;
    REQUIRE(dx_proto_create(&p, &cfg) == 0);
    CHECK_RC(dx_proto_close(p, 1000, dx_span_cstr("done")), 0);
    CHECK_EQ_INT(cr.calls, 1);
    dx_span out = dx_proto_output(p);
    strbuf d = {0};
    describe_frames(&d, out.ptr, out.len, true);
    CHECK_STR(d.s, "close 1000 'done'");
    dx_proto_destroy(p);
}

TEST(rfc6455_5_5_1_close_while_our_message_is_unfinished) {
    /* §5.5.1 allows a close after a fragment; no data may follow it. */
    dx_proto *p = new_proto(S);
    CHECK_RC(dx_proto_send(p, DX_OP_TEXT, dx_span_cstr("part"), false), 0);
    CHECK_RC(dx_proto_close(p, 1001, (dx_span){NULL, 0}), 0);
    CHECK_RC(dx_proto_send(p, DX_OP_CONT, dx_span_cstr("rest"), true), DX_ESTATE);
    dx_span out = dx_proto_output(p);
    strbuf d = {0};
    describe_frames(&d, out.ptr, out.len, false);
    CHECK_STR(d.s, "text nofin 'part'; close 1001 ''");
    dx_proto_destroy(p);
}

TEST(rfc6455_7_1_3_client_and_server_close_each_other) {
    /* A client closes; the server answers; the client sees the answer. */
    dx_proto *c = new_proto(C), *s = new_proto(S);
    CHECK_RC(dx_proto_close(c, 1000, dx_span_cstr("done")), 0);
    dx_span out = dx_proto_output(c);
    transcript ts = {0};
    tr_feed(&ts, s, out.ptr, out.len, DX_SPLIT_RANDOM);
    dx_proto_output_consume(c, out.len);
    CHECK_STR(ts.log.s, "close 1000 remote 'done'");
    transcript tc = {0};
    tr_feed(&tc, c, ts.out.b, ts.out.len, DX_SPLIT_BYTES);
    CHECK_STR(tc.log.s, "close 1000 remote ''");
    CHECK(dx_proto_is_done(c) && dx_proto_is_done(s));
    tr_free(&ts);
    tr_free(&tc);
    dx_proto_destroy(c);
    dx_proto_destroy(s);
}
