/*
 * dx_proto and UTF-8 (RFC 6455 §5.6, §8.1): text validated incrementally across
 * frames and reads, failing fast with 1007. Policy under test: the chunk (the
 * part of a frame given in one dx_proto_recv call) that holds an invalid byte
 * is never delivered; everything before it was.
 */
#include "proto_util.h"

#define S DX_SIDE_SERVER
#define C DX_SIDE_CLIENT

TEST(rfc6455_8_1_multibyte_text_split_inside_characters_across_frames) {
    /* "κόσμε" (2-byte chars), "€" (3 bytes), "𝄞" (4 bytes), each cut mid-character
     * by the frame boundaries. */
    const char *msg = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5 \xe2\x82\xac \xf0\x9d\x84\x9e";
    size_t n = strlen(msg);
    wire w = {0};
    wire_c(&w, false, DX_OP_TEXT, msg, 1);
    wire_c(&w, false, DX_OP_CONT, msg + 1, 3);
    wire_c(&w, false, DX_OP_CONT, msg + 4, 9);
    wire_c(&w, false, DX_OP_CONT, msg + 13, 3);
    wire_c(&w, false, DX_OP_CONT, msg + 16, n - 16 - 2);
    wire_c(&w, true, DX_OP_CONT, msg + n - 2, 2);
    strbuf want = {0};
    sb_add(&want, "text ");
    sb_bytes(&want, (const uint8_t *)msg, n);
    check_side(S, &w, want.s, "");
    wire_free(&w);
}

TEST(rfc6455_8_1_invalid_byte_fails_1007) {
    static const char *const bad[] = {
        "\xff",             /* never valid */
        "\xc0\xaf",         /* overlong '/' */
        "\xe0\x80\xaf",     /* overlong */
        "\xed\xa0\x80",     /* surrogate U+D800 */
        "\xf4\x90\x80\x80", /* above U+10FFFF */
        "\x80",             /* lone continuation */
        "a\xce\x41",        /* lead byte followed by ASCII */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        for (int side = 0; side < 2; side++) {
            wire w = {0};
            wire_peer_str(&w, (dx_side)side, true, DX_OP_TEXT, bad[i]);
            dx_proto_config cfg = {.side = (dx_side)side};
            /* what was delivered before the bad byte depends on the split, so
             * check only the ending here */
            for (int k = 0; k < 3; k++) {
                dx_proto *p = NULL;
                REQUIRE(dx_proto_create(&p, &cfg) == 0);
                transcript t = {0};
                tr_feed(&t, p, w.b, w.len, dx_all_splits[k]);
                CHECK(strstr(t.log.s, "close 1007 local 'invalid UTF-8 in text message'") != NULL);
                CHECK_EQ_INT(t.close_events, 1);
                CHECK_EQ_INT(t.violations, 0);
                strbuf o = {0};
                describe_frames(&o, t.out.b, t.out.len, side == C);
                CHECK_STR(o.s, "close 1007 'invalid UTF-8 in text message'");
                tr_free(&t);
                dx_proto_destroy(p);
            }
            wire_free(&w);
        }
    }
}

TEST(rfc6455_8_1_fail_fast_in_the_call_that_sees_the_bad_byte) {
    /* "Hello\xff" + 100 more bytes: the close is queued as soon as \xff arrives,
     * without waiting for the rest of the frame. */
    char msg[107];
    memcpy(msg, "Hello\xff", 6);
    memset(msg + 6, 'z', sizeof msg - 6);
    wire w = {0};
    wire_c(&w, true, DX_OP_TEXT, msg, sizeof msg);
    size_t hdr = 6;
    dx_proto *p = new_proto(S);
    size_t used;
    dx_event ev;
    CHECK_RC(dx_proto_recv(p, w.b, hdr + 5, &used, &ev), 0); /* "Hello" */
    CHECK_EQ_INT(ev.type, DX_EV_DATA);
    CHECK_SPAN_STR(ev.u.data.data, "Hello");
    CHECK_RC(dx_proto_recv(p, w.b + hdr + 5, 1, &used, &ev), 0); /* the \xff */
    CHECK_EQ_INT(ev.type, DX_EV_CLOSE);
    CHECK_EQ_INT(ev.u.close.code, 1007);
    CHECK(!ev.u.close.remote);
    CHECK(dx_proto_wants_write(p));
    CHECK_EQ_INT(dx_proto_get_state(p), DX_CLOSED);
    /* the rest of the frame is ignored */
    CHECK_RC(dx_proto_recv(p, w.b + hdr + 6, w.len - hdr - 6, &used, &ev), 0);
    CHECK_EQ_INT(ev.type, DX_EV_NONE);
    CHECK_EQ_INT(used, w.len - hdr - 6);
    dx_proto_destroy(p);
    wire_free(&w);
}

TEST(rfc6455_8_1_the_chunk_with_the_bad_byte_is_not_delivered) {
    /* Whole: the only chunk holds the bad byte, so no data event at all. */
    wire w = {0};
    wire_c(&w, true, DX_OP_TEXT, "Hello\xff world", 12);
    dx_proto_config cfg = {.side = S};
    transcript t = {0};
    dx_proto *p = run_once(&cfg, &w, &t);
    CHECK_EQ_INT(t.data_events, 0);
    CHECK_STR(t.log.s, "close 1007 local 'invalid UTF-8 in text message'");
    tr_free(&t);
    dx_proto_destroy(p);
    /* Bytewise: exactly the valid prefix was delivered. */
    p = new_proto(S);
    memset(&t, 0, sizeof t);
    tr_feed(&t, p, w.b, w.len, DX_SPLIT_BYTES);
    CHECK_STR(t.log.s, "partial text 'Hello'; close 1007 local 'invalid UTF-8 in text message'");
    tr_free(&t);
    dx_proto_destroy(p);
    wire_free(&w);
}

TEST(rfc6455_8_1_invalid_byte_in_a_later_fragment) {
    wire w = {0};
    wire_c(&w, false, DX_OP_TEXT, "good ", 5);
    wire_c(&w, false, DX_OP_CONT, "\xce", 1);     /* valid prefix, completed... */
    wire_c(&w, true, DX_OP_CONT, "\xbaX\xfe", 3); /* ...here, then a bad byte */
    dx_proto_config cfg = {.side = S};
    for (int k = 0; k < 3; k++) {
        dx_proto *p = NULL;
        REQUIRE(dx_proto_create(&p, &cfg) == 0);
        transcript t = {0};
        tr_feed(&t, p, w.b, w.len, dx_all_splits[k]);
        const char *want = k == 1 ? "partial text 'good \\xce\\xbaX'; close 1007 local 'invalid "
                                    "UTF-8 in text message'"
                                  : "partial text 'good \\xce'; close 1007 local 'invalid UTF-8 "
                                    "in text message'";
        if (k != 2) /* random splits deliver some prefix of the valid bytes */
            CHECK_STR(t.log.s, want);
        CHECK(strstr(t.log.s, "close 1007") != NULL);
        tr_free(&t);
        dx_proto_destroy(p);
    }
    wire_free(&w);
}

TEST(rfc6455_8_1_text_ending_inside_a_character_fails_1007) {
    wire w = {0};
    wire_c(&w, false, DX_OP_TEXT, "ok", 2);
    wire_c(&w, true, DX_OP_CONT, "\xe2\x82", 2); /* € without its last byte */
    dx_proto_config cfg = {.side = S};
    for (int k = 0; k < 3; k++) {
        dx_proto *p = NULL;
        REQUIRE(dx_proto_create(&p, &cfg) == 0);
        transcript t = {0};
        tr_feed(&t, p, w.b, w.len, dx_all_splits[k]);
        CHECK(strstr(t.log.s, "close 1007 local 'text message ends inside a character'") != NULL);
        CHECK(strstr(t.log.s, "\\xe2") == NULL || k != 0); /* whole: the bad chunk withheld */
        tr_free(&t);
        dx_proto_destroy(p);
    }
    wire_free(&w);
    /* ...also when the final fragment is empty */
    wire_s(&w, false, DX_OP_TEXT, "\xf0\x9d", 2);
    wire_s(&w, true, DX_OP_CONT, "", 0);
    check_side(C, &w,
               "partial text '\\xf0\\x9d'; close 1007 local 'text message ends inside a character'",
               "close 1007 'text message ends inside a character'");
    wire_free(&w);
}

TEST(rfc6455_8_1_character_split_across_non_final_fragments_is_fine) {
    wire w = {0};
    wire_s(&w, false, DX_OP_TEXT, "\xf0", 1);
    wire_s(&w, false, DX_OP_CONT, "\x9d", 1);
    wire_s(&w, false, DX_OP_CONT, "\x84", 1);
    wire_s(&w, true, DX_OP_CONT, "\x9e", 1);
    check_side(C, &w, "text '\\xf0\\x9d\\x84\\x9e'", "");
    wire_free(&w);
}

TEST(rfc6455_8_1_validation_restarts_with_each_message) {
    wire w = {0};
    wire_c(&w, true, DX_OP_BINARY, "\xe2\x82", 2); /* binary: not validated */
    wire_c(&w, true, DX_OP_TEXT, "\xe2\x82\xac", 3);
    wire_c(&w, true, DX_OP_BINARY, "\xff\xfe", 2);
    wire_c(&w, true, DX_OP_TEXT, "a", 1);
    check_side(S, &w, "binary '\\xe2\\x82'; text '\\xe2\\x82\\xac'; binary '\\xff\\xfe'; text 'a'",
               "");
    wire_free(&w);
}

TEST(rfc6455_8_1_control_frames_between_text_fragments_do_not_disturb_validation) {
    wire w = {0};
    wire_c(&w, false, DX_OP_TEXT, "\xe2", 1);
    wire_c(&w, true, DX_OP_PING, "\xff", 1); /* ping payloads are not text */
    wire_c(&w, true, DX_OP_CONT, "\x82\xac", 2);
    check_side(S, &w, "ping '\\xff'; text '\\xe2\\x82\\xac'", "pong '\\xff'");
    wire_free(&w);
}

TEST(rfc6455_5_5_1_close_reason_invalid_utf8_fails_1007) {
    wire w = {0};
    wire_peer_close(&w, S, 1000, "bad \xc3\x28");
    check_side(S, &w, "close 1007 local 'invalid UTF-8 in close reason'",
               "close 1007 'invalid UTF-8 in close reason'");
    wire_free(&w);
    wire_peer_close(&w, C, 1000, "cut \xe2\x82");
    check_side(C, &w, "close 1007 local 'invalid UTF-8 in close reason'",
               "close 1007 'invalid UTF-8 in close reason'");
    wire_free(&w);
}

TEST(rfc6455_8_1_text_with_extension_rsv_bit_is_left_to_the_extension) {
    wire w = {0};
    wire_frame_b0(&w, 0x80 | 0x40 | DX_OP_TEXT, true, test_key, "\xff", 1);
    wire_frame_b0(&w, 0x80 | DX_OP_TEXT, true, test_key, "\xff", 1); /* no RSV: checked */
    dx_proto_config cfg = {.side = S, .rsv_allowed = DX_RSV1};
    check_stream(&cfg, &w, "text rsv=4 '\\xff'; close 1007 local 'invalid UTF-8 in text message'",
                 "close 1007 'invalid UTF-8 in text message'", false);
    wire_free(&w);
}
