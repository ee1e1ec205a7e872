/*
 * dx_proto sending: framing of what we send (§5.2, §5.7 vectors encoded), client
 * masking with a fresh key per frame (§5.3), the send queue limit, the output
 * buffer's reuse, zero-copy headers, allocation failure on every path, and
 * round trips client <-> server.
 */
#include "proto_util.h"

#define S DX_SIDE_SERVER
#define C DX_SIDE_CLIENT

static bool output_is(dx_proto *p, const uint8_t *want, size_t n) {
    dx_span out = dx_proto_output(p);
    if (out.len == n && memcmp(out.ptr, want, n) == 0)
        return true;
    dx_test_hexdump("output", out.ptr, out.len);
    dx_test_hexdump("want", want, n);
    return false;
}

/* ---- §5.7 vectors, encoded by a server ------------------------------------- */

TEST(rfc6455_5_7_server_sends_unmasked_hello) {
    dx_proto *p = new_proto(S);
    CHECK_RC(dx_proto_send_text(p, dx_span_cstr("Hello")), 0);
    static const uint8_t want[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    CHECK(output_is(p, want, sizeof want));
    dx_proto_destroy(p);
}

TEST(rfc6455_5_7_server_sends_fragmented_hello) {
    dx_proto *p = new_proto(S);
    CHECK_RC(dx_proto_send(p, DX_OP_TEXT, dx_span_cstr("Hel"), false), 0);
    CHECK_RC(dx_proto_send(p, DX_OP_CONT, dx_span_cstr("lo"), true), 0);
    static const uint8_t want[] = {0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f};
    CHECK(output_is(p, want, sizeof want));
    dx_proto_destroy(p);
}

TEST(rfc6455_5_7_server_sends_unmasked_ping) {
    dx_proto *p = new_proto(S);
    CHECK_RC(dx_proto_ping(p, dx_span_cstr("Hello")), 0);
    static const uint8_t want[] = {0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    CHECK(output_is(p, want, sizeof want));
    dx_proto_destroy(p);
}

/* A random source that returns the §5.7 example key. */
static int example_key(uint8_t *buf, size_t len, void *ctx) {
    (void)ctx;
    for (size_t i = 0; i < len; i++)
        buf[i] = test_key[i % 4];
    return 0;
}

TEST(rfc6455_5_7_client_sends_masked_hello_and_pong) {
    dx_random r = {example_key, NULL};
    dx_proto_config cfg = {.side = C, .random = &r};
    dx_proto *p = NULL;
    REQUIRE(dx_proto_create(&p, &cfg) == 0);
    CHECK_RC(dx_proto_send_text(p, dx_span_cstr("Hello")), 0);
    static const uint8_t hello[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                    0x7f, 0x9f, 0x4d, 0x51, 0x58};
    CHECK(output_is(p, hello, sizeof hello));
    dx_proto_output_consume(p, sizeof hello);
    CHECK_RC(dx_proto_pong(p, dx_span_cstr("Hello")), 0);
    static const uint8_t pong[] = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                   0x7f, 0x9f, 0x4d, 0x51, 0x58};
    CHECK(output_is(p, pong, sizeof pong));
    dx_proto_destroy(p);
}

TEST(rfc6455_5_7_server_sends_256_and_64k_binary_headers) {
    dx_proto *p = new_proto(S);
    uint8_t *data = calloc(1, 65536);
    CHECK_RC(dx_proto_send_binary(p, (dx_span){data, 256}), 0);
    dx_span out = dx_proto_output(p);
    static const uint8_t h256[] = {0x82, 0x7E, 0x01, 0x00};
    CHECK_EQ_INT(out.len, 4 + 256);
    CHECK_MEM(out.ptr, h256, 4);
    dx_proto_output_consume(p, out.len);
    CHECK_RC(dx_proto_send_binary(p, (dx_span){data, 65536}), 0);
    out = dx_proto_output(p);
    static const uint8_t h64k[] = {0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0};
    CHECK_EQ_INT(out.len, 10 + 65536);
    CHECK_MEM(out.ptr, h64k, 10);
    free(data);
    dx_proto_destroy(p);
}

TEST(rfc6455_5_2_sender_uses_minimal_length_encoding) {
    static const size_t lens[] = {0, 125, 126, 65535, 65536};
    static const size_t hdr[] = {2, 2, 4, 4, 10};
    uint8_t *data = calloc(1, 65536);
    for (size_t i = 0; i < 5; i++) {
        dx_proto *p = new_proto(S);
        CHECK_RC(dx_proto_send_binary(p, (dx_span){data, lens[i]}), 0);
        CHECK_EQ_INT(dx_proto_output(p).len, hdr[i] + lens[i]);
        dx_proto_destroy(p);
        p = new_proto(C);
        CHECK_RC(dx_proto_send_binary(p, (dx_span){data, lens[i]}), 0);
        CHECK_EQ_INT(dx_proto_output(p).len, hdr[i] + 4 + lens[i]);
        dx_proto_destroy(p);
    }
    free(data);
}

/* ---- §5.3 client masking ---------------------------------------------------- */

TEST(rfc6455_5_3_client_masks_every_frame_with_a_fresh_key) {
    counting_random cr;
    counting_random_init(&cr, 1234);
    dx_proto_config cfg = {.side = C, .random = &cr.r};
    dx_proto *p = NULL;
    REQUIRE(dx_proto_create(&p, &cfg) == 0);
    enum { N = 200 };
    for (int i = 0; i < N; i++) {
        int rc = i % 3 == 0   ? dx_proto_send_text(p, dx_span_cstr("same payload"))
                 : i % 3 == 1 ? dx_proto_ping(p, dx_span_cstr("same payload"))
                              : dx_proto_pong(p, dx_span_cstr("same payload"));
        CHECK_RC(rc, 0);
    }
    CHECK_EQ_INT(cr.calls, N); /* one key drawn per frame */
    dx_span out = dx_proto_output(p);
    uint8_t keys[N][4];
    size_t off = 0;
    for (int i = 0; i < N; i++) {
        dx_frame_header h;
        size_t hl;
        REQUIRE(dx_frame_header_decode(out.ptr + off, out.len - off, &h, &hl) == 0);
        CHECK(h.masked);
        memcpy(keys[i], h.mask, 4);
        off += hl + (size_t)h.payload_len;
    }
    CHECK_EQ_INT(off, out.len);
    int same = 0;
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++)
            same += memcmp(keys[i], keys[j], 4) == 0;
    CHECK_EQ_INT(same, 0);
    dx_proto_destroy(p);
}

TEST(rfc6455_5_3_default_random_source_gives_fresh_keys) {
    dx_proto *p = new_proto(C); /* the default source: getrandom() pool */
    enum { N = 64 };
    uint8_t keys[N][4];
    for (int i = 0; i < N; i++) {
        CHECK_RC(dx_proto_send_binary(p, (dx_span){(const uint8_t *)"abcd", 4}), 0);
        dx_span out = dx_proto_output(p);
        REQUIRE(out.len == 10);
        memcpy(keys[i], out.ptr + 2, 4);
        /* payload XOR key gives back "abcd" */
        for (int k = 0; k < 4; k++)
            CHECK_EQ_INT(out.ptr[6 + k] ^ keys[i][k], "abcd"[k]);
        dx_proto_output_consume(p, out.len);
    }
    int same = 0;
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++)
            same += memcmp(keys[i], keys[j], 4) == 0;
    CHECK(same <= 1); /* 2016 pairs of 32-bit keys: a repeat is ~5e-7 likely */
    dx_proto_destroy(p);
}

TEST(rfc6455_5_3_random_source_failure_fails_the_send) {
    counting_random cr;
    counting_random_init(&cr, 5);
    dx_proto_config cfg = {.side = C, .random = &cr.r};
    dx_proto *p = NULL;
    REQUIRE(dx_proto_create(&p, &cfg) == 0);
    cr.fail = -5; /* -EIO */
    CHECK_RC(dx_proto_send_text(p, dx_span_cstr("x")), -5);
    CHECK_RC(dx_proto_ping(p, dx_span_cstr("x")), -5);
    CHECK_RC(dx_proto_close(p, 1000, dx_span_cstr("x")), -5);
    uint8_t hdr[DX_MAX_HEADER_LEN], key[4];
    size_t hl;
    CHECK_RC(dx_proto_send_header(p, DX_OP_TEXT, 1, false, hdr, &hl, key), -5);
    CHECK(!dx_proto_wants_write(p));
    CHECK_EQ_INT(dx_proto_get_state(p), DX_OPEN);
    cr.fail = 0;
    /* nothing half-done: a new message may start */
    CHECK_RC(dx_proto_send_text(p, dx_span_cstr("x")), 0);
    CHECK_RC(dx_proto_close(p, 1000, dx_span_cstr("x")), 0);
    dx_proto_destroy(p);
}

/* ---- argument and state checks --------------------------------------------- */

TEST(send_argument_checks) {
    dx_proto *p = new_proto(S);
    dx_span x = dx_span_cstr("x");
    CHECK_RC(dx_proto_send(NULL, DX_OP_TEXT, x, true), DX_EINVAL);
    CHECK_RC(dx_proto_send(p, DX_OP_PING, x, true), DX_EINVAL);
    CHECK_RC(dx_proto_send(p, DX_OP_CLOSE, x, true), DX_EINVAL);
    CHECK_RC(dx_proto_send(p, (dx_opcode)3, x, true), DX_EINVAL);
    CHECK_RC(dx_proto_send(p, DX_OP_TEXT, (dx_span){NULL, 1}, true), DX_EINVAL);
    CHECK_RC(dx_proto_send(p, DX_OP_TEXT, (dx_span){NULL, 0}, true), 0);
    uint8_t big[126] = {0};
    CHECK_RC(dx_proto_ping(p, (dx_span){big, 126}), DX_EINVAL);
    CHECK_RC(dx_proto_pong(p, (dx_span){big, 126}), DX_EINVAL);
    CHECK_RC(dx_proto_ping(p, (dx_span){NULL, 1}), DX_EINVAL);
    CHECK_RC(dx_proto_ping(NULL, x), DX_EINVAL);
    CHECK_RC(dx_proto_ping(p, (dx_span){big, 125}), 0);
    CHECK_RC(dx_proto_pong(p, (dx_span){NULL, 0}), 0);
    uint8_t hdr[DX_MAX_HEADER_LEN];
    size_t hl;
    CHECK_RC(dx_proto_send_header(p, DX_OP_PING, 1, true, hdr, &hl, NULL), DX_EINVAL);
    CHECK_RC(dx_proto_send_header(p, DX_OP_TEXT, 1, true, NULL, &hl, NULL), DX_EINVAL);
    CHECK_RC(dx_proto_send_header(p, DX_OP_TEXT, 1, true, hdr, NULL, NULL), DX_EINVAL);
    dx_proto_destroy(p);
    p = new_proto(C);
    CHECK_RC(dx_proto_send_header(p, DX_OP_TEXT, 1, true, hdr, &hl, NULL), DX_EINVAL);
    dx_proto_destroy(p);
}

TEST(send_after_peer_close_is_a_state_error) {
    dx_proto *p = new_proto(C);
    uint8_t in[] = {0x88, 0x00};
    size_t used;
    dx_event ev;
    CHECK_RC(dx_proto_recv(p, in, 2, &used, &ev), 0);
    CHECK_EQ_INT(ev.type, DX_EV_CLOSE);
    CHECK_RC(dx_proto_send_text(p, dx_span_cstr("x")), DX_ESTATE);
    CHECK_RC(dx_proto_ping(p, dx_span_cstr("x")), DX_ESTATE);
    CHECK_RC(dx_proto_close(p, 1000, dx_span_cstr("x")), DX_ESTATE);
    dx_proto_destroy(p);
}

/* ---- the send queue --------------------------------------------------------- */

TEST(limit_send_queue_refuses_frames_past_the_cap) {
    dx_proto_config cfg = {.side = S, .limits.max_send_queue = 100};
    dx_proto *p = NULL;
    REQUIRE(dx_proto_create(&p, &cfg) == 0);
    uint8_t data[200] = {0};
    CHECK_RC(dx_proto_send_binary(p, (dx_span){data, 99}), DX_ELIMIT); /* 2 + 99 */
    CHECK_RC(dx_proto_send_binary(p, (dx_span){data, 98}), 0);         /* exactly 100 */
    CHECK_RC(dx_proto_send_binary(p, (dx_span){data, 0}), DX_ELIMIT);
    CHECK_RC(dx_proto_ping(p, (dx_span){data, 0}), DX_ELIMIT);
    CHECK_RC(dx_proto_pong(p, (dx_span){data, 0}), DX_ELIMIT);
    CHECK_EQ_INT(dx_proto_output(p).len, 100);
    /* a close is still possible: it is the last frame */
    dx_proto_output_consume(p, 50);
    CHECK_RC(dx_proto_send_binary(p, (dx_span){data, 48}), 0);
    CHECK_RC(dx_proto_send_binary(p, (dx_span){data, 0}), DX_ELIMIT);
    CHECK_RC(dx_proto_close(p, 1000, dx_span_cstr("over the cap is fine")), 0);
    CHECK_EQ_INT(dx_proto_output(p).len, 100 + 4 + 20);
    dx_proto_destroy(p);
    /* a huge length does not overflow the check */
    REQUIRE(dx_proto_create(&p, &cfg) == 0);
    CHECK_RC(dx_proto_send_binary(p, (dx_span){data, SIZE_MAX}), DX_ELIMIT);
    CHECK_RC(dx_proto_send_binary(p, (dx_span){data, SIZE_MAX - 5}), DX_ELIMIT);
    dx_proto_destroy(p);
}

TEST(output_consume_partial_and_order) {
    dx_proto *p = new_proto(S);
    CHECK(!dx_proto_wants_write(p));
    CHECK_RC(dx_proto_send_text(p, dx_span_cstr("abc")), 0);
    CHECK_RC(dx_proto_send_text(p, dx_span_cstr("def")), 0);
    CHECK(dx_proto_wants_write(p));
    dx_proto_output_consume(p, 3);
    dx_span out = dx_proto_output(p);
    static const uint8_t rest[] = {'b', 'c', 0x81, 3, 'd', 'e', 'f'};
    CHECK(out.len == sizeof rest && memcmp(out.ptr, rest, sizeof rest) == 0);
    dx_proto_output_consume(p, 0);
    CHECK_EQ_INT(dx_proto_output(p).len, sizeof rest);
    dx_proto_output_consume(p, 1000);
    CHECK_EQ_INT(dx_proto_output(p).len, 0);
    CHECK(!dx_proto_wants_write(p));
    CHECK(!dx_proto_is_done(p)); /* empty, but still OPEN */
    dx_proto_destroy(p);
}

/* An allocator that counts calls. */
typedef struct counting_alloc {
    dx_allocator a;
    long allocs, frees;
} counting_alloc;
static void *ca_alloc(size_t n, void *ctx) {
    ((counting_alloc *)ctx)->allocs++;
    return malloc(n);
}
static void ca_free(void *ptr, size_t n, void *ctx) {
    (void)n;
    if (ptr)
        ((counting_alloc *)ctx)->frees++;
    free(ptr);
}

TEST(output_buffer_is_reused_without_allocation_in_steady_state) {
    counting_alloc ca = {{ca_alloc, ca_free, NULL}, 0, 0};
    ca.a.ctx = &ca;
    for (int side = 0; side < 2; side++) {
        dx_proto_config cfg = {.side = (dx_side)side, .allocator = &ca.a};
        dx_proto *p = NULL;
        REQUIRE(dx_proto_create(&p, &cfg) == 0);
        uint8_t data[3000];
        memset(data, 'x', sizeof data);
        /* warm up: the buffer grows to the working size */
        for (int i = 0; i < 4; i++)
            CHECK_RC(dx_proto_send_binary(p, (dx_span){data, sizeof data}), 0);
        dx_proto_output_consume(p, SIZE_MAX);
        long before = ca.allocs;
        for (int i = 0; i < 10000; i++) {
            size_t n = 1 + (size_t)(dx_test_rand() % sizeof data);
            CHECK_RC(dx_proto_send_binary(p, (dx_span){data, n}), 0);
            /* consume a part, as a socket that takes some of it would */
            dx_span out = dx_proto_output(p);
            dx_proto_output_consume(p, out.len > 4000 ? out.len - 2000 : out.len / 2);
        }
        CHECK_EQ_INT(ca.allocs - before, 0);
        dx_proto_destroy(p);
    }
    CHECK_EQ_INT(ca.allocs, ca.frees);
}

TEST(output_stays_intact_when_written_out_in_random_pieces) {
    /* A socket that takes random amounts: the buffer is compacted and grown under
     * pending bytes; what comes out must still be exactly the frames queued. */
    for (int side = 0; side < 2; side++) {
        dx_proto *p = new_proto((dx_side)side);
        wire sent = {0}, msg = {0};
        strbuf want = {0};
        for (int i = 0; i < 400; i++) {
            size_t n = (size_t)(dx_test_rand() % (i % 50 == 0 ? 5000 : 300));
            msg.len = 0;
            for (size_t k = 0; k < n; k++) {
                uint8_t c = (uint8_t)dx_test_rand();
                wire_raw(&msg, &c, 1);
            }
            CHECK_RC(dx_proto_send_binary(p, (dx_span){msg.b, n}), 0);
            sb_add(&want, "%sbinary ", want.len ? "; " : "");
            sb_bytes(&want, msg.b, n);
            dx_span out = dx_proto_output(p);
            size_t take = (size_t)(dx_test_rand() % (out.len + 1));
            wire_raw(&sent, out.ptr, take);
            dx_proto_output_consume(p, take);
        }
        dx_span out = dx_proto_output(p);
        wire_raw(&sent, out.ptr, out.len);
        dx_proto_output_consume(p, out.len);
        dx_proto_config cfg = {.side = side == S ? C : S};
        transcript t = {0};
        dx_proto *peer = run_once(&cfg, &sent, &t);
        CHECK_STR(t.log.s, want.s);
        CHECK_EQ_INT(t.violations, 0);
        tr_free(&t);
        dx_proto_destroy(peer);
        wire_free(&sent);
        wire_free(&msg);
        dx_proto_destroy(p);
    }
}

TEST(trim_releases_the_idle_output_buffer_and_replies_still_go_out) {
    counting_alloc ca = {{ca_alloc, ca_free, NULL}, 0, 0};
    ca.a.ctx = &ca;
    dx_proto_config cfg = {.side = S, .allocator = &ca.a};
    dx_proto *p = NULL;
    REQUIRE(dx_proto_create(&p, &cfg) == 0);
    CHECK_RC(dx_proto_send_text(p, dx_span_cstr("hello")), 0);
    CHECK(dx_proto_output_capacity(p) >= 7);
    long frees = ca.frees;
    dx_proto_trim(p); /* output pending: kept */
    CHECK_EQ_INT(ca.frees, frees);
    CHECK_EQ_INT(dx_proto_output(p).len, 7);
    dx_proto_output_consume(p, 7);
    dx_proto_trim(p); /* idle: released (the queue's buffer and its body) */
    CHECK_EQ_INT(ca.frees, frees + 2);
    CHECK_EQ_INT(dx_proto_output_capacity(p), 0);
    CHECK_EQ_INT(dx_proto_output_capacity(NULL), 0);
    CHECK_EQ_INT(dx_proto_output(p).len, 0);
    CHECK(!dx_proto_wants_write(p));
    dx_proto_trim(p); /* twice is harmless */
    CHECK_EQ_INT(ca.frees, frees + 2);
    /* a ping after trimming is still answered, byte for byte */
    wire w = {0};
    wire_c(&w, true, DX_OP_PING, "abc", 3);
    size_t used;
    dx_event ev;
    CHECK_RC(dx_proto_recv(p, w.b, w.len, &used, &ev), 0);
    CHECK_EQ_INT(ev.type, DX_EV_PING);
    const uint8_t pong[] = {0x8A, 0x03, 'a', 'b', 'c'};
    dx_span out = dx_proto_output(p);
    CHECK_EQ_INT(out.len, sizeof pong);
    CHECK(out.len == sizeof pong && memcmp(out.ptr, pong, sizeof pong) == 0);
    dx_proto_trim(NULL);
    wire_free(&w);
    dx_proto_destroy(p);
    CHECK_EQ_INT(ca.allocs, ca.frees);
}

TEST(receiving_allocates_nothing) {
    counting_alloc ca = {{ca_alloc, ca_free, NULL}, 0, 0};
    ca.a.ctx = &ca;
    dx_proto_config cfg = {.side = S, .allocator = &ca.a};
    dx_proto *p = NULL;
    REQUIRE(dx_proto_create(&p, &cfg) == 0);
    long before = ca.allocs;
    wire w = {0};
    uint8_t data[5000];
    memset(data, 'y', sizeof data);
    for (int i = 0; i < 50; i++) { /* one text message in 50 fragments, pings between */
        wire_c(&w, i == 49, i == 0 ? DX_OP_TEXT : DX_OP_CONT, data, (size_t)i * 100);
        wire_c(&w, true, DX_OP_PING, data, 100);
    }
    transcript t = {0};
    tr_feed(&t, p, w.b, w.len, DX_SPLIT_RANDOM);
    CHECK_EQ_INT(t.close_events, 0);
    CHECK_EQ_INT(t.data_events >= 50, 1);
    CHECK_EQ_INT(ca.allocs - before, 0); /* pongs fit the preallocated output */
    tr_free(&t);
    wire_free(&w);
    dx_proto_destroy(p);
    CHECK_EQ_INT(ca.allocs, ca.frees);
}

/* ---- zero-copy headers ------------------------------------------------------- */

TEST(send_header_server_writes_header_only) {
    dx_proto *p = new_proto(S);
    uint8_t hdr[DX_MAX_HEADER_LEN];
    uint8_t key[4] = {9, 9, 9, 9};
    size_t hl = 0;
    CHECK_RC(dx_proto_send_header(p, DX_OP_BINARY, 65536, true, hdr, &hl, key), 0);
    static const uint8_t want[] = {0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0};
    CHECK(hl == sizeof want && memcmp(hdr, want, hl) == 0);
    static const uint8_t untouched[4] = {9, 9, 9, 9};
    CHECK_MEM(key, untouched, 4);
    CHECK(!dx_proto_wants_write(p));
    CHECK_RC(dx_proto_send_header(p, DX_OP_TEXT, 3, false, hdr, &hl, NULL), 0);
    CHECK_RC(dx_proto_send_header(p, DX_OP_TEXT, 3, false, hdr, &hl, NULL), DX_ESTATE);
    CHECK_RC(dx_proto_send_header(p, DX_OP_CONT, 3, true, hdr, &hl, NULL), 0);
    CHECK_EQ_INT(hl, 2);
    CHECK_EQ_INT(hdr[0], 0x80);
    CHECK_RC(dx_proto_send_header(p, DX_OP_CONT, 3, true, hdr, &hl, NULL), DX_ESTATE);
    dx_proto_destroy(p);
}

TEST(send_header_client_gives_a_fresh_mask_key_and_a_server_parses_it) {
    counting_random cr;
    counting_random_init(&cr, 77);
    dx_proto_config cfg = {.side = C, .random = &cr.r};
    dx_proto *p = NULL;
    REQUIRE(dx_proto_create(&p, &cfg) == 0);
    CHECK_RC(dx_proto_send_text(p, dx_span_cstr("queued first")), 0);
    wire w = {0};
    dx_span out = dx_proto_output(p); /* the caller writes the output first */
    wire_raw(&w, out.ptr, out.len);
    dx_proto_output_consume(p, out.len);
    const char *payload = "zero-copy";
    uint8_t prev_key[4] = {0};
    for (int i = 0; i < 3; i++) {
        uint8_t hdr[DX_MAX_HEADER_LEN], key[4], masked[64];
        size_t hl;
        CHECK_RC(dx_proto_send_header(p, i == 0 ? DX_OP_BINARY : DX_OP_CONT, strlen(payload),
                                      i == 2, hdr, &hl, key),
                 0);
        CHECK_EQ_INT(hl, 6);
        CHECK_MEM(hdr + 2, key, 4);
        CHECK(memcmp(key, prev_key, 4) != 0);
        memcpy(prev_key, key, 4);
        dx_mask_copy(masked, (const uint8_t *)payload, strlen(payload), key, 0);
        wire_raw(&w, hdr, hl);
        wire_raw(&w, masked, strlen(payload));
    }
    CHECK_EQ_INT(cr.calls, 4);
    check_side(S, &w, "text 'queued first'; binary 'zero-copyzero-copyzero-copy'", "");
    wire_free(&w);
    dx_proto_destroy(p);
}

/* ---- allocation failure ------------------------------------------------------ */

TEST(failing_allocator_walks_create) {
    for (int side = 0; side < 2; side++) {
        long k = 0;
        for (;; k++) {
            dx_fail_alloc fa;
            dx_fail_alloc_init(&fa, k);
            dx_proto_config cfg = {.side = (dx_side)side, .allocator = &fa.a};
            dx_proto *p = (dx_proto *)&fa; /* must stay untouched on failure */
            int rc = dx_proto_create(&p, &cfg);
            if (rc == 0) {
                dx_proto_destroy(p);
                CHECK_EQ_INT(fa.live, 0);
                CHECK(!fa.size_mismatch);
                break;
            }
            CHECK_RC(rc, DX_ENOMEM);
            CHECK(p == (dx_proto *)&fa);
            CHECK_EQ_INT(fa.live, 0);
            CHECK_EQ_INT(fa.live_bytes, 0);
        }
        CHECK_EQ_INT(k, 3); /* the proto, its output queue and the queue's buffer */
    }
}

/* Header bytes of frame @i in failing_allocator_walks_sends. */
static size_t header_size_for(int side, int i) {
    return (i % 4 == 3 ? 2u : 4u) + (side == C ? 4u : 0u);
}

TEST(failing_allocator_walks_sends) {
    for (int side = 0; side < 2; side++) {
        long k;
        for (k = 0; k < 100; k++) {
            dx_fail_alloc fa;
            dx_fail_alloc_init(&fa, -1);
            dx_proto_config cfg = {.side = (dx_side)side, .allocator = &fa.a};
            dx_proto *p = NULL;
            REQUIRE(dx_proto_create(&p, &cfg) == 0);
            fa.fail_after = fa.allocs + k; /* the k-th allocation from now fails */
            uint8_t data[1000];
            memset(data, 'a', sizeof data);
            size_t expect = 0;
            int failures = 0;
            /* grow the output through several doublings; each failure must leave
             * the output as it was */
            for (int i = 0; i < 40; i++) {
                size_t before = dx_proto_output(p).len;
                int rc = i % 4 == 3 ? dx_proto_ping(p, (dx_span){data, 100})
                                    : dx_proto_send_binary(p, (dx_span){data, sizeof data});
                if (rc == DX_ENOMEM) {
                    failures++;
                    CHECK_EQ_INT(dx_proto_output(p).len, before);
                } else {
                    CHECK_RC(rc, 0);
                    expect += (i % 4 == 3 ? 100 : sizeof data) + header_size_for(side, i);
                }
            }
            CHECK_EQ_INT(dx_proto_output(p).len, expect);
            /* a failed close leaves the state alone */
            size_t before = dx_proto_output(p).len;
            fa.fail_after = fa.allocs; /* everything fails from now */
            int rc = dx_proto_close(p, 1000, dx_span_cstr("bye"));
            if (rc == DX_ENOMEM) {
                CHECK_EQ_INT(dx_proto_get_state(p), DX_OPEN);
                CHECK_EQ_INT(dx_proto_output(p).len, before);
            } else {
                CHECK_RC(rc, 0); /* it fitted without growing */
            }
            dx_proto_destroy(p);
            CHECK_EQ_INT(fa.live, 0);
            CHECK_EQ_INT(fa.live_bytes, 0);
            CHECK(!fa.size_mismatch);
            if (failures == 0)
                break; /* allocation k is past the last one the workload makes */
        }
        CHECK(k >= 5); /* 256 bytes doubled to hold ~31 KB */
    }
}

TEST(failing_allocator_for_an_automatic_pong_fails_the_connection) {
    dx_fail_alloc fa;
    dx_fail_alloc_init(&fa, -1);
    dx_proto_config cfg = {.side = S, .allocator = &fa.a};
    dx_proto *p = NULL;
    REQUIRE(dx_proto_create(&p, &cfg) == 0);
    /* fill the preallocated output so that the pong needs a bigger buffer */
    uint8_t data[250];
    memset(data, 'b', sizeof data);
    CHECK_RC(dx_proto_send_binary(p, (dx_span){data, sizeof data}), 0);
    fa.fail_after = fa.allocs;
    size_t before = dx_proto_output(p).len;
    wire w = {0};
    wire_c(&w, true, DX_OP_PING, data, 100);
    wire_c(&w, true, DX_OP_TEXT, "after", 5);
    size_t used;
    dx_event ev;
    CHECK_RC(dx_proto_recv(p, w.b, w.len, &used, &ev), DX_ENOMEM);
    CHECK_EQ_INT(dx_proto_get_state(p), DX_CLOSED);
    CHECK_EQ_INT(dx_proto_output(p).len, before); /* nothing half-written */
    CHECK_RC(dx_proto_recv(p, w.b + used, w.len - used, &used, &ev), 0);
    CHECK_EQ_INT(ev.type, DX_EV_NONE); /* ignored from now on */
    CHECK_RC(dx_proto_recv_eof(p, &ev), 0);
    CHECK_EQ_INT(ev.type, DX_EV_CLOSE); /* the application still hears of it */
    CHECK_EQ_INT(ev.u.close.code, 1006);
    dx_proto_destroy(p);
    CHECK_EQ_INT(fa.live, 0);
    CHECK(!fa.size_mismatch);
    wire_free(&w);
}

TEST(failing_allocator_for_a_fail_close_returns_enomem) {
    dx_fail_alloc fa;
    dx_fail_alloc_init(&fa, -1);
    dx_proto_config cfg = {.side = S, .allocator = &fa.a};
    dx_proto *p = NULL;
    REQUIRE(dx_proto_create(&p, &cfg) == 0);
    uint8_t data[250] = {0};
    CHECK_RC(dx_proto_send_binary(p, (dx_span){data, sizeof data}), 0);
    fa.fail_after = fa.allocs;
    uint8_t bad[] = {0x81, 0x01, 'x'}; /* unmasked: 1002 */
    size_t used;
    dx_event ev;
    CHECK_RC(dx_proto_recv(p, bad, sizeof bad, &used, &ev), DX_ENOMEM);
    CHECK_EQ_INT(dx_proto_get_state(p), DX_CLOSED);
    CHECK_RC(dx_proto_recv_eof(p, &ev), 0);
    CHECK_EQ_INT(ev.type, DX_EV_CLOSE);
    CHECK_EQ_INT(ev.u.close.code, 1006);
    dx_proto_destroy(p);
    CHECK_EQ_INT(fa.live, 0);
}

/* ---- round trips -------------------------------------------------------------- */

/* Send a random workload from @from; feed its output to @to at random splits,
 * and the replies back; compare what @to saw with what was sent. */
static void round_trip(dx_side from_side, int round) {
    dx_proto_config cf = {.side = from_side}, ct = {.side = from_side == S ? C : S};
    dx_proto *from = NULL, *to = NULL;
    REQUIRE(dx_proto_create(&from, &cf) == 0);
    REQUIRE(dx_proto_create(&to, &ct) == 0);
    strbuf want = {0}, want_back = {0};
    transcript tt = {0}, tf = {0};
    wire msg = {0};
    for (int m = 0; m < 30; m++) {
        unsigned kind = (unsigned)(dx_test_rand() % 4);
        if (kind == 3) { /* a ping: the other side answers with a pong */
            uint8_t pl[125];
            size_t n = (size_t)(dx_test_rand() % 126);
            for (size_t i = 0; i < n; i++)
                pl[i] = (uint8_t)dx_test_rand();
            CHECK_RC(dx_proto_ping(from, (dx_span){pl, n}), 0);
            sb_add(&want, "%sping ", want.len ? "; " : "");
            sb_bytes(&want, pl, n);
            sb_add(&want_back, "%spong ", want_back.len ? "; " : "");
            sb_bytes(&want_back, pl, n);
        } else {
            bool text = kind == 0;
            size_t total = (size_t)(dx_test_rand() % (round % 2 ? 70000 : 300));
            msg.len = 0;
            for (size_t i = 0; i < total; i++) {
                uint8_t c = text ? (uint8_t)(' ' + dx_test_rand() % 95) : (uint8_t)dx_test_rand();
                wire_raw(&msg, &c, 1);
            }
            size_t off = 0;
            bool first = true;
            for (;;) {
                size_t n = total - off;
                if (dx_test_rand() % 2)
                    n = (size_t)(dx_test_rand() % (n + 1));
                bool fin = off + n == total;
                dx_opcode op = first ? (text ? DX_OP_TEXT : DX_OP_BINARY) : DX_OP_CONT;
                CHECK_RC(dx_proto_send(from, op, (dx_span){msg.b + off, n}, fin), 0);
                off += n;
                first = false;
                if (fin)
                    break;
                if (dx_test_rand() % 4 == 0) { /* a pong between our fragments */
                    CHECK_RC(dx_proto_pong(from, dx_span_cstr("unsolicited")), 0);
                    sb_add(&want, "%spong 'unsolicited'", want.len ? "; " : "");
                }
            }
            sb_add(&want, "%s%s ", want.len ? "; " : "", text ? "text" : "binary");
            sb_bytes(&want, msg.b, total);
        }
        /* ship what is queued now, at random splits */
        dx_span out = dx_proto_output(from);
        tr_feed(&tt, to, out.ptr, out.len, DX_SPLIT_RANDOM);
        dx_proto_output_consume(from, out.len);
        tr_feed(&tf, from, tt.out.b, tt.out.len, DX_SPLIT_RANDOM);
        tt.out.len = 0;
    }
    /* the peer's pings were queued as whole frames between our fragments, and
     * the message text shows up when its last fragment is in */
    CHECK_STR(tt.log.s, want.s);
    CHECK_STR(tf.log.s, want_back.s);
    CHECK_EQ_INT(tt.violations + tf.violations, 0);
    /* and the close handshake completes */
    CHECK_RC(dx_proto_close(from, 1000, dx_span_cstr("done")), 0);
    dx_span out = dx_proto_output(from);
    tr_feed(&tt, to, out.ptr, out.len, DX_SPLIT_BYTES);
    dx_proto_output_consume(from, out.len);
    tr_feed(&tf, from, tt.out.b, tt.out.len, DX_SPLIT_BYTES);
    CHECK(dx_proto_is_done(from) && dx_proto_is_done(to));
    CHECK_EQ_INT(tt.close_events, 1);
    CHECK_EQ_INT(tf.close_events, 1);
    wire_free(&msg);
    tr_free(&tt);
    tr_free(&tf);
    dx_proto_destroy(from);
    dx_proto_destroy(to);
}

TEST(round_trip_client_to_server_random_messages_fragments_pings) {
    for (int round = 0; round < 6; round++)
        round_trip(C, round);
}

TEST(round_trip_server_to_client_random_messages_fragments_pings) {
    for (int round = 0; round < 6; round++)
        round_trip(S, round);
}

/* ---- §5.1: who masks -------------------------------------------------------- */

/* Everything a proto of @side writes: its own frames and its automatic replies. */
static void all_kinds_of_output(dx_side side, strbuf *d) {
    dx_proto *p = new_proto(side);
    CHECK_RC(dx_proto_send(p, DX_OP_TEXT, dx_span_cstr("a"), false), 0);
    CHECK_RC(dx_proto_send(p, DX_OP_CONT, dx_span_cstr("b"), true), 0);
    CHECK_RC(dx_proto_send_binary(p, dx_span_cstr("c")), 0);
    CHECK_RC(dx_proto_ping(p, dx_span_cstr("d")), 0);
    CHECK_RC(dx_proto_pong(p, dx_span_cstr("e")), 0);
    wire w = {0};
    wire_peer_str(&w, side, true, DX_OP_PING, "f");    /* automatic pong */
    wire_peer_str(&w, side, true, DX_OP_TEXT, "\xff"); /* automatic close 1007 */
    transcript t = {.no_drain = true};
    tr_feed(&t, p, w.b, w.len, DX_SPLIT_WHOLE);
    dx_span out = dx_proto_output(p);
    describe_frames(d, out.ptr, out.len, side == C);
    tr_free(&t);
    wire_free(&w);
    dx_proto_destroy(p);
}

TEST(rfc6455_5_1_server_masks_no_frame_it_sends) {
    strbuf d = {0};
    all_kinds_of_output(S, &d);
    CHECK_STR(d.s, "text nofin 'a'; cont 'b'; binary 'c'; ping 'd'; pong 'e'; pong 'f'; "
                   "close 1007 'invalid UTF-8 in text message'");
}

TEST(rfc6455_5_1_client_masks_every_frame_it_sends) {
    strbuf d = {0};
    all_kinds_of_output(C, &d); /* describe_frames flags any unmasked one */
    CHECK_STR(d.s, "text nofin 'a'; cont 'b'; binary 'c'; ping 'd'; pong 'e'; pong 'f'; "
                   "close 1007 'invalid UTF-8 in text message'");
}

/* ---- frames built once, sent by reference ------------------------------------------------ */

/* A shared buffer holding @n bytes of @bytes. */
static dx_shared *shared_of(const void *bytes, size_t n) {
    dx_shared *s = NULL;
    if (dx_shared_create(&s, n, NULL) != 0)
        abort();
    memcpy(dx_shared_bytes(s), bytes, n);
    return s;
}

TEST(rfc6455_5_2_shared_frame_goes_by_reference_between_own_frames) {
    dx_proto *p = NULL;
    dx_proto_config cfg = {.side = S, .rsv_allowed = DX_RSV1};
    REQUIRE(dx_proto_create(&p, &cfg) == 0);
    static const uint8_t frame[] = {0x81, 0x05, 'h', 'e', 'l', 'l', 'o'};
    static const uint8_t padded[] = {'x', 0xC2, 0x02,
                                     'z', 'z',  'y'}; /* RSV1 binary in the middle */
    dx_shared *f = shared_of(frame, sizeof frame);
    dx_shared *g = shared_of(padded, sizeof padded);
    CHECK_RC(dx_proto_send_text(p, dx_span_cstr("a")), 0);
    CHECK_RC(dx_proto_send_shared(p, f, 0, sizeof frame), 0);
    CHECK_RC(dx_proto_send_shared(p, g, 1, 4), 0);
    CHECK_RC(dx_proto_ping(p, dx_span_cstr("p")), 0);
    dx_span v[8];
    REQUIRE(dx_proto_output_spans(p, v, 8) == 4);
    CHECK(v[0].len == 3 && memcmp(v[0].ptr,
                                  "\x81\x01"
                                  "a",
                                  3) == 0);
    CHECK(v[1].ptr == dx_shared_data(f).ptr && v[1].len == sizeof frame); /* not copied */
    CHECK(v[2].ptr == dx_shared_data(g).ptr + 1 && v[2].len == 4);
    CHECK(v[3].len == 3 && memcmp(v[3].ptr, "\x89\x01p", 3) == 0);
    dx_shared_release(f); /* the queue keeps its own references */
    dx_shared_release(g);
    /* a client reads them as three messages and a ping */
    uint8_t bytes[64];
    size_t n = 0;
    for (int i = 0; i < 4; i++) {
        memcpy(bytes + n, v[i].ptr, v[i].len);
        n += v[i].len;
    }
    dx_proto_output_consume(p, n);
    CHECK(!dx_proto_wants_write(p));
    dx_proto *c = NULL;
    dx_proto_config ccfg = {.side = C, .rsv_allowed = DX_RSV1};
    REQUIRE(dx_proto_create(&c, &ccfg) == 0);
    size_t off = 0, used;
    dx_event ev;
    const char *want[] = {"a", "hello", "zz"};
    for (int i = 0; i < 3; i++) {
        CHECK_RC(dx_proto_recv(c, bytes + off, n - off, &used, &ev), 0);
        off += used;
        CHECK_EQ_INT(ev.type, DX_EV_DATA);
        CHECK_SPAN_STR(ev.u.data.data, want[i]);
    }
    CHECK_EQ_INT(ev.u.data.rsv, DX_RSV1);
    CHECK_RC(dx_proto_recv(c, bytes + off, n - off, &used, &ev), 0);
    CHECK_EQ_INT(ev.type, DX_EV_PING);
    dx_proto_destroy(c);
    dx_proto_destroy(p);
}

TEST(rfc6455_5_shared_frame_must_be_one_whole_unmasked_data_frame) {
    dx_proto *p = NULL, *c = NULL;
    dx_proto_config cfg = {.side = S, .limits.max_send_queue = 100};
    REQUIRE(dx_proto_create(&p, &cfg) == 0);
    dx_proto_config ccfg = {.side = C};
    REQUIRE(dx_proto_create(&c, &ccfg) == 0);
    static const uint8_t ok[] = {0x82, 0x02, 1, 2};
    static const uint8_t masked[] = {0x82, 0x82, 0, 0, 0, 0, 1, 2};
    static const uint8_t nofin[] = {0x02, 0x02, 1, 2};
    static const uint8_t cont[] = {0x80, 0x02, 1, 2};
    static const uint8_t ping[] = {0x89, 0x02, 1, 2};
    static const uint8_t rsv1[] = {0xC2, 0x02, 1, 2};
    dx_shared *s_ok = shared_of(ok, sizeof ok), *s_masked = shared_of(masked, sizeof masked),
              *s_nofin = shared_of(nofin, sizeof nofin), *s_cont = shared_of(cont, sizeof cont),
              *s_ping = shared_of(ping, sizeof ping), *s_rsv1 = shared_of(rsv1, sizeof rsv1);
    CHECK_RC(dx_proto_send_shared(c, s_ok, 0, sizeof ok), DX_EINVAL); /* a client masks */
    CHECK_RC(dx_proto_send_shared(p, s_ok, 0, 3), DX_EINVAL);         /* cut short */
    CHECK_RC(dx_proto_send_shared(p, s_ok, 1, 4), DX_EINVAL);         /* outside */
    CHECK_RC(dx_proto_send_shared(p, s_masked, 0, sizeof masked), DX_EINVAL);
    CHECK_RC(dx_proto_send_shared(p, s_nofin, 0, sizeof nofin), DX_EINVAL);
    CHECK_RC(dx_proto_send_shared(p, s_cont, 0, sizeof cont), DX_EINVAL);
    CHECK_RC(dx_proto_send_shared(p, s_ping, 0, sizeof ping), DX_EINVAL);
    CHECK_RC(dx_proto_send_shared(p, s_rsv1, 0, sizeof rsv1), DX_EINVAL); /* no extension */
    CHECK_RC(dx_proto_send_shared(p, NULL, 0, 0), DX_EINVAL);
    CHECK(!dx_proto_wants_write(p));
    /* §5.4: not inside a fragmented message of our own */
    CHECK_RC(dx_proto_send(p, DX_OP_TEXT, dx_span_cstr("frag"), false), 0);
    CHECK_RC(dx_proto_send_shared(p, s_ok, 0, sizeof ok), DX_ESTATE);
    CHECK_RC(dx_proto_send(p, DX_OP_CONT, dx_span_cstr("end"), true), 0);
    /* the send-queue cap counts what is referenced */
    size_t queued = dx_proto_output(p).len;
    dx_proto_output_consume(p, queued);
    for (int i = 0; i < 25; i++)
        CHECK_RC(dx_proto_send_shared(p, s_ok, 0, sizeof ok), 0); /* 100 bytes */
    CHECK_RC(dx_proto_send_shared(p, s_ok, 0, sizeof ok), DX_ELIMIT);
    dx_proto_output_consume(p, 100);
    CHECK_RC(dx_proto_close(p, 1000, (dx_span){0}), 0);
    CHECK_RC(dx_proto_send_shared(p, s_ok, 0, sizeof ok), DX_ESTATE);
    dx_shared_release(s_ok);
    dx_shared_release(s_masked);
    dx_shared_release(s_nofin);
    dx_shared_release(s_cont);
    dx_shared_release(s_ping);
    dx_shared_release(s_rsv1);
    dx_proto_destroy(c);
    dx_proto_destroy(p);
}

/* A queue the caller owns: frames land after the caller's own bytes, in order, and
 * destroying the proto leaves the queue (and what is in it) to the caller. */
TEST(proto_appends_to_the_callers_queue) {
    dx_outq q;
    dx_outq_init(&q, NULL);
    CHECK_RC(dx_outq_append(&q, dx_span_cstr("HTTP/1.1 101\r\n\r\n")), 0);
    dx_proto *p = NULL;
    dx_proto_config cfg = {.side = S, .output = &q};
    REQUIRE(dx_proto_create(&p, &cfg) == 0);
    CHECK_RC(dx_proto_send_text(p, dx_span_cstr("hi")), 0);
    CHECK_EQ_INT(dx_outq_len(&q), 16 + 4);
    CHECK(memcmp(dx_outq_front(&q).ptr + 16, "\x81\x02hi", 4) == 0);
    dx_proto_destroy(p);
    CHECK_EQ_INT(dx_outq_len(&q), 20);
    dx_outq_deinit(&q);
}
