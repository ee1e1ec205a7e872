/*
 * dx_proto and fragmentation (RFC 6455 §5.4): fragments delivered in order as
 * pieces of one message, control frames between fragments, sequence errors, and
 * the sending side's fragment rules.
 */
#include "proto_util.h"

#define S DX_SIDE_SERVER
#define C DX_SIDE_CLIENT

TEST(rfc6455_5_4_fragments_form_one_message) {
    for (int side = 0; side < 2; side++) {
        wire w = {0};
        wire_peer_str(&w, (dx_side)side, false, DX_OP_TEXT, "frag");
        wire_peer_str(&w, (dx_side)side, false, DX_OP_CONT, "men");
        wire_peer_str(&w, (dx_side)side, true, DX_OP_CONT, "ted");
        wire_peer_str(&w, (dx_side)side, false, DX_OP_BINARY, "\x01");
        wire_peer_str(&w, (dx_side)side, true, DX_OP_CONT, "\x02");
        check_side((dx_side)side, &w, "text 'fragmented'; binary '\\x01\\x02'", "");
        wire_free(&w);
    }
}

TEST(rfc6455_5_4_each_fragment_is_delivered_as_it_arrives) {
    wire w = {0};
    wire_c(&w, false, DX_OP_BINARY, "ab", 2);
    wire_c(&w, false, DX_OP_CONT, "cd", 2);
    wire_c(&w, true, DX_OP_CONT, "ef", 2);
    dx_proto *p = new_proto(S);
    size_t off = 0, used;
    dx_event ev;
    static const char *const want[] = {"ab", "cd", "ef"};
    for (int i = 0; i < 3; i++) {
        CHECK_RC(dx_proto_recv(p, w.b + off, w.len - off, &used, &ev), 0);
        off += used;
        CHECK_EQ_INT(ev.type, DX_EV_DATA);
        CHECK_EQ_INT(ev.u.data.opcode, DX_OP_BINARY); /* the message's type, also for CONT */
        CHECK_EQ_INT(ev.u.data.first, i == 0);
        CHECK_EQ_INT(ev.u.data.fin, i == 2);
        CHECK_SPAN_STR(ev.u.data.data, want[i]);
    }
    CHECK_EQ_INT(off, w.len);
    dx_proto_destroy(p);
    wire_free(&w);
}

TEST(rfc6455_5_4_control_frames_between_fragments_are_handled) {
    wire w = {0};
    wire_c(&w, false, DX_OP_TEXT, "Hel", 3);
    wire_c(&w, true, DX_OP_PING, "p1", 2);
    wire_c(&w, true, DX_OP_PONG, "q", 1);
    wire_c(&w, false, DX_OP_CONT, "l", 1);
    wire_c(&w, true, DX_OP_PING, "p2", 2);
    wire_c(&w, true, DX_OP_CONT, "o", 1);
    check_side(S, &w, "ping 'p1'; pong 'q'; ping 'p2'; text 'Hello'", "pong 'p1'; pong 'p2'");
    wire_free(&w);
}

TEST(rfc6455_5_4_close_between_fragments_ends_the_connection) {
    wire w = {0};
    wire_s(&w, false, DX_OP_TEXT, "Hel", 3);
    wire_peer_close(&w, C, 1001, "away");
    wire_s(&w, true, DX_OP_CONT, "lo", 2);
    check_side(C, &w, "partial text 'Hel'; close 1001 remote 'away'", "close 1001 ''");
    wire_free(&w);
}

TEST(rfc6455_5_4_continuation_without_a_message_fails) {
    wire w = {0};
    wire_c(&w, true, DX_OP_CONT, "x", 1);
    check_side(S, &w, "close 1002 local 'continuation without a message'",
               "close 1002 'continuation without a message'");
    wire_free(&w);
    /* ... also right after a finished message */
    wire_s(&w, true, DX_OP_TEXT, "done", 4);
    wire_s(&w, false, DX_OP_CONT, "x", 1);
    check_side(C, &w, "text 'done'; close 1002 local 'continuation without a message'",
               "close 1002 'continuation without a message'");
    wire_free(&w);
}

TEST(rfc6455_5_4_new_message_inside_a_fragmented_one_fails) {
    static const unsigned second[] = {DX_OP_TEXT, DX_OP_BINARY};
    for (int i = 0; i < 2; i++) {
        wire w = {0};
        wire_c(&w, false, DX_OP_BINARY, "ab", 2);
        wire_c(&w, true, second[i], "cd", 2);
        check_side(S, &w,
                   "partial binary 'ab'; close 1002 local 'new message inside a fragmented one'",
                   "close 1002 'new message inside a fragmented one'");
        wire_free(&w);
    }
}

TEST(rfc6455_5_4_empty_fragments) {
    wire w = {0};
    wire_c(&w, false, DX_OP_TEXT, "", 0);
    wire_c(&w, false, DX_OP_CONT, "", 0);
    wire_c(&w, false, DX_OP_CONT, "x", 1);
    wire_c(&w, false, DX_OP_CONT, "", 0);
    wire_c(&w, true, DX_OP_CONT, "", 0);
    check_side(S, &w, "text 'x'", "");
    wire_free(&w);

    /* An empty first fragment is reported (first=true), an empty middle one is not,
     * an empty last one is (fin=true). */
    wire_c(&w, false, DX_OP_BINARY, "", 0);
    wire_c(&w, false, DX_OP_CONT, "", 0);
    wire_c(&w, true, DX_OP_CONT, "", 0);
    dx_proto *p = new_proto(S);
    size_t off = 0, used;
    dx_event ev;
    CHECK_RC(dx_proto_recv(p, w.b, w.len, &used, &ev), 0);
    off += used;
    CHECK(ev.type == DX_EV_DATA && ev.u.data.first && !ev.u.data.fin && ev.u.data.data.len == 0);
    CHECK_RC(dx_proto_recv(p, w.b + off, w.len - off, &used, &ev), 0);
    off += used;
    CHECK(ev.type == DX_EV_DATA && !ev.u.data.first && ev.u.data.fin && ev.u.data.data.len == 0);
    CHECK_EQ_INT(off, w.len);
    dx_proto_destroy(p);
    wire_free(&w);
}

TEST(rfc6455_5_4_many_random_fragments_reassemble) {
    for (int round = 0; round < 20; round++) {
        dx_side side = (dx_side)(round & 1);
        wire w = {0}, whole = {0};
        strbuf want = {0};
        for (int m = 0; m < 5; m++) {
            size_t total = dx_test_rand() % 3000;
            whole.len = 0;
            for (size_t i = 0; i < total; i++) {
                uint8_t c = (uint8_t)('a' + dx_test_rand() % 26);
                wire_raw(&whole, &c, 1);
            }
            size_t off = 0;
            bool first = true;
            do {
                size_t n = total - off ? dx_test_rand() % (total - off + 1) : 0;
                if (dx_test_rand() % 4 == 0)
                    n = total - off;
                bool fin = off + n == total;
                wire_peer(&w, side, fin, first ? DX_OP_TEXT : DX_OP_CONT, whole.b + off, n);
                if (dx_test_rand() % 3 == 0)
                    wire_peer(&w, side, true, DX_OP_PONG, "k", 1);
                off += n;
                first = false;
                if (fin)
                    break;
            } while (1);
            if (want.len)
                sb_add(&want, "; ");
            sb_add(&want, "text ");
            sb_bytes(&want, whole.b, total);
        }
        /* the pongs are reported in between, so rebuild the expectation by a run
         * in one piece and compare every split with it */
        dx_proto_config cfg = {.side = side};
        transcript t = {0};
        dx_proto *p = run_once(&cfg, &w, &t);
        strbuf msgs = {0};
        /* drop the pong entries to compare the messages with what was sent */
        const char *s = t.log.s;
        while (*s) {
            const char *e = strstr(s, "; ");
            size_t n = e ? (size_t)(e - s) : strlen(s);
            if (strncmp(s, "pong", 4) != 0)
                sb_add(&msgs, "%s%.*s", msgs.len ? "; " : "", (int)n, s);
            s += n + (e ? 2 : 0);
        }
        CHECK_STR(msgs.s, want.s);
        check_side(side, &w, t.log.s, "");
        tr_free(&t);
        dx_proto_destroy(p);
        wire_free(&w);
        wire_free(&whole);
    }
}

/* ---- the sending side ------------------------------------------------------ */

TEST(rfc6455_5_4_sender_fragment_sequence_is_enforced) {
    dx_proto *p = new_proto(S);
    dx_span x = dx_span_cstr("x");
    CHECK_RC(dx_proto_send(p, DX_OP_CONT, x, true), DX_ESTATE); /* nothing started */
    CHECK_RC(dx_proto_send(p, DX_OP_TEXT, x, false), 0);
    CHECK_RC(dx_proto_send(p, DX_OP_TEXT, x, true), DX_ESTATE); /* unfinished message */
    CHECK_RC(dx_proto_send(p, DX_OP_BINARY, x, true), DX_ESTATE);
    CHECK_RC(dx_proto_send_text(p, x), DX_ESTATE);
    CHECK_RC(dx_proto_send(p, DX_OP_CONT, x, false), 0);
    CHECK_RC(dx_proto_send(p, DX_OP_CONT, x, true), 0);
    CHECK_RC(dx_proto_send(p, DX_OP_CONT, x, true), DX_ESTATE); /* finished */
    CHECK_RC(dx_proto_send_binary(p, x), 0);
    dx_span out = dx_proto_output(p);
    static const uint8_t want[] = {0x01, 1, 'x', 0x00, 1, 'x', 0x80, 1, 'x', 0x82, 1, 'x'};
    CHECK(out.len == sizeof want && memcmp(out.ptr, want, sizeof want) == 0);
    dx_proto_destroy(p);
}

TEST(rfc6455_5_4_control_frames_go_between_our_fragments) {
    /* A client sends a fragment, receives a ping, pings itself, then finishes: the
     * automatic pong and our ping sit whole between the fragments. */
    counting_random cr;
    counting_random_init(&cr, 7);
    dx_proto_config cfg = {.side = C, .random = &cr.r};
    dx_proto *p = NULL;
    REQUIRE(dx_proto_create(&p, &cfg) == 0);
    CHECK_RC(dx_proto_send(p, DX_OP_TEXT, dx_span_cstr("Hel"), false), 0);
    uint8_t ping[] = {0x89, 0x02, 'h', 'i'};
    size_t used;
    dx_event ev;
    CHECK_RC(dx_proto_recv(p, ping, sizeof ping, &used, &ev), 0);
    CHECK_EQ_INT(ev.type, DX_EV_PING);
    CHECK_RC(dx_proto_ping(p, dx_span_cstr("mine")), 0);
    CHECK_RC(dx_proto_send(p, DX_OP_CONT, dx_span_cstr("lo"), true), 0);
    dx_span out = dx_proto_output(p);
    strbuf d = {0};
    describe_frames(&d, out.ptr, out.len, true);
    CHECK_STR(d.s, "text nofin 'Hel'; pong 'hi'; ping 'mine'; cont 'lo'");
    /* and a server reading it reassembles the message around them */
    wire w = {0};
    wire_raw(&w, out.ptr, out.len);
    check_side(S, &w, "pong 'hi'; ping 'mine'; text 'Hello'", "pong 'mine'");
    wire_free(&w);
    dx_proto_destroy(p);
}
