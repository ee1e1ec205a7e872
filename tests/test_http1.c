/*
 * HTTP/1.1 head scanning, parsing and response writing (RFC 9112, RFC 9110).
 * Every head is fed whole, one byte at a time and at random splits through
 * dx_http_scan_feed, and parsed from a copy that ends at a guard page.
 */
#include "test.h"

#define S(lit) ((const uint8_t *)(lit)), (sizeof(lit) - 1)

static const char rfc6455_request[] = "GET /chat HTTP/1.1\r\n"
                                      "Host: server.example.com\r\n"
                                      "Upgrade: websocket\r\n"
                                      "Connection: Upgrade\r\n"
                                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                      "Origin: http://example.com\r\n"
                                      "Sec-WebSocket-Protocol: chat, superchat\r\n"
                                      "Sec-WebSocket-Version: 13\r\n"
                                      "\r\n";

static const char rfc6455_response[] = "HTTP/1.1 101 Switching Protocols\r\n"
                                       "Upgrade: websocket\r\n"
                                       "Connection: Upgrade\r\n"
                                       "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                                       "Sec-WebSocket-Protocol: chat\r\n"
                                       "\r\n";

/*
 * Feed @len bytes of @data to a fresh scanner in pieces chosen by @split, the
 * way a server reading a socket would. Each call gets a buffer whose last byte
 * sits just before a guard page (the buffer moves between calls, as after a
 * realloc) and in which every byte of earlier calls has been overwritten with NUL:
 * a scanner that looked at an old byte again would report DX_EHTTP_NUL, and one
 * that read past @len would fault. So this checks that each call looks at the new
 * bytes and only those (and that `scanned` says so). Returns the final code.
 */
static int scan_split(const uint8_t *data, size_t len, dx_split split, size_t max_head,
                      size_t *head_len) {
    dx_http_scan s = {.max_head = max_head};
    uint8_t *zeros = calloc(len ? len : 1, 1);
    uint8_t *g = dx_guard_alloc(zeros, len);
    size_t fed = 0;
    int rc = DX_EINCOMPLETE;
    while (fed < len) {
        size_t before = fed;
        fed += dx_split_next(split, len - fed);
        uint8_t *b = g + len - fed; /* b[fed - 1] is the last byte before the guard */
        memcpy(b + before, data + before, fed - before);
        rc = dx_http_scan_feed(&s, b, fed, head_len);
        memset(b + before, 0, fed - before);
        if (rc == DX_EINCOMPLETE) {
            CHECK_EQ_INT(s.scanned, fed);
            continue;
        }
        break;
    }
    dx_guard_free(g, len);
    free(zeros);
    return rc;
}

/* Scan @data with every split and expect @want (and @want_len on success). */
static void expect_scan(const uint8_t *data, size_t len, size_t max_head, int want,
                        size_t want_len) {
    for (int i = 0; i < 3; i++) {
        size_t head_len = 0;
        int rc = scan_split(data, len, dx_all_splits[i], max_head, &head_len);
        if (rc != want)
            printf("    split %s\n", dx_split_name(dx_all_splits[i]));
        CHECK_RC(rc, want);
        if (want == 0)
            CHECK_EQ_INT(head_len, want_len);
    }
}

/* Parse @len bytes at a guard page as a request; return the code. */
static int parse_req_guarded(const void *raw, size_t len, size_t max_headers) {
    dx_http_header h[16];
    dx_http_request req;
    uint8_t *g = dx_guard_alloc(raw, len);
    int rc = dx_http_parse_request(g, len, &req, h, max_headers);
    dx_guard_free(g, len);
    return rc;
}

static int parse_resp_guarded(const void *raw, size_t len) {
    dx_http_header h[16];
    dx_http_response resp;
    uint8_t *g = dx_guard_alloc(raw, len);
    int rc = dx_http_parse_response(g, len, &resp, h, 16);
    dx_guard_free(g, len);
    return rc;
}

/* A request whose head is "<line>\r\nHost: x\r\n\r\n" is rejected with @want by
 * the parser; the scanner accepts it (the error is not one it looks for). */
static void expect_request_line(const char *line, int want) {
    char buf[256];
    int n = snprintf(buf, sizeof buf, "%s\r\nHost: x\r\n\r\n", line);
    expect_scan((const uint8_t *)buf, (size_t)n, 0, 0, (size_t)n);
    int rc = parse_req_guarded(buf, (size_t)n, 16);
    if (rc != want)
        printf("    request line \"%s\"\n", line);
    CHECK_RC(rc, want);
}

static void expect_field_line(const char *field, int want) {
    char buf[256];
    int n = snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\n%s\r\n\r\n", field);
    int rc = parse_req_guarded(buf, (size_t)n, 16);
    if (rc != want)
        printf("    field line \"%s\"\n", field);
    CHECK_RC(rc, want);
    /* the same line in a response head */
    n = snprintf(buf, sizeof buf, "HTTP/1.1 200 OK\r\n%s\r\n\r\n", field);
    CHECK_RC(parse_resp_guarded(buf, (size_t)n), want);
}

static void expect_status_line(const char *line, int want) {
    char buf[256];
    int n = snprintf(buf, sizeof buf, "%s\r\nA: b\r\n\r\n", line);
    int rc = parse_resp_guarded(buf, (size_t)n);
    if (rc != want)
        printf("    status line \"%s\"\n", line);
    CHECK_RC(rc, want);
}

/* ---- scanning ------------------------------------------------------------- */

TEST(rfc9112_2_1_scan_finds_the_blank_line_at_any_split) {
    expect_scan(S(rfc6455_request), 0, 0, sizeof(rfc6455_request) - 1);
    expect_scan(S(rfc6455_response), 0, 0, sizeof(rfc6455_response) - 1);
    /* bytes after the head (a first WebSocket frame) are not part of it */
    static const char with_frame[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n\x81\x85\r\n\n\0x";
    expect_scan(S(with_frame), 0, 0, 27);
}

TEST(rfc9112_2_1_scan_incomplete_until_the_blank_line) {
    size_t n = sizeof(rfc6455_request) - 1, head_len;
    for (int i = 0; i < 3; i++)
        CHECK_RC(
            scan_split((const uint8_t *)rfc6455_request, n - 1, dx_all_splits[i], 0, &head_len),
            DX_EINCOMPLETE);
    dx_http_scan s = {0};
    CHECK_RC(dx_http_scan_feed(&s, NULL, 0, &head_len), DX_EINCOMPLETE);
    CHECK_RC(dx_http_scan_feed(&s, S("\r\n\r"), &head_len), DX_EINCOMPLETE);
}

TEST(rfc9112_2_2_scan_rejects_bare_lf) {
    expect_scan(S("GET / HTTP/1.1\nHost: a\r\n\r\n"), 0, DX_EHTTP_BARE_LF, 0);
    expect_scan(S("GET / HTTP/1.1\r\nHost: a\r\n\n"), 0, DX_EHTTP_BARE_LF, 0);
    expect_scan(S("\nGET / HTTP/1.1\r\n\r\n"), 0, DX_EHTTP_BARE_LF, 0);
    expect_scan(S("GET / HTTP/1.1\n\n"), 0, DX_EHTTP_BARE_LF, 0);
}

TEST(rfc9112_2_2_scan_rejects_bare_cr) {
    expect_scan(S("GET / HTTP/1.1\rHost: a\r\n\r\n"), 0, DX_EHTTP_BARE_CR, 0);
    expect_scan(S("GET / HTTP/1.1\r\nHost: a\r\n\rX"), 0, DX_EHTTP_BARE_CR, 0);
    expect_scan(S("GET / HTTP/1.1\r\r\n\r\n"), 0, DX_EHTTP_BARE_CR, 0);
    expect_scan(S("GET / HTTP/1.1\r\n\r\r\n"), 0, DX_EHTTP_BARE_CR, 0);
}

TEST(rfc9110_5_5_scan_rejects_nul) {
    expect_scan(S("GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n"), 0, DX_EHTTP_NUL, 0);
    expect_scan(S("\0"), 0, DX_EHTTP_NUL, 0);
    expect_scan(S("GET / HTTP/1.1\r\n\0\r\n"), 0, DX_EHTTP_NUL, 0);
}

TEST(scan_head_too_large_as_soon_as_the_limit_is_reached) {
    char head[200];
    /* "GET / HTTP/1.1\r\nX: aaaa...\r\n\r\n" of exactly 64 bytes */
    int n = snprintf(head, sizeof head, "GET / HTTP/1.1\r\nX: %s\r\n\r\n",
                     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    REQUIRE(n == 64);
    expect_scan((const uint8_t *)head, 64, 64, 0, 64);
    expect_scan((const uint8_t *)head, 64, 63, DX_EHTTP_HEAD_TOO_LARGE, 0);

    /* A stream that never ends its head fails when byte number max_head arrives,
     * not later: a server with a max_head buffer needs the answer then. */
    char endless[100];
    memset(endless, 'a', sizeof endless);
    dx_http_scan s = {.max_head = 64};
    size_t head_len;
    for (size_t i = 1; i < 64; i++)
        CHECK_RC(dx_http_scan_feed(&s, (const uint8_t *)endless, i, &head_len), DX_EINCOMPLETE);
    CHECK_RC(dx_http_scan_feed(&s, (const uint8_t *)endless, 64, &head_len),
             DX_EHTTP_HEAD_TOO_LARGE);
    /* and bytes beyond the limit are never looked at */
    dx_http_scan s2 = {.max_head = 64};
    CHECK_RC(dx_http_scan_feed(&s2, (const uint8_t *)endless, 100, &head_len),
             DX_EHTTP_HEAD_TOO_LARGE);
    CHECK_EQ_INT(s2.scanned, 64);
}

TEST(scan_default_limit_is_8192) {
    static uint8_t big[DX_DEFAULT_MAX_HEAD + 1];
    memset(big, 'a', sizeof big);
    dx_http_scan s = {0};
    size_t head_len;
    CHECK_RC(dx_http_scan_feed(&s, big, DX_DEFAULT_MAX_HEAD - 1, &head_len), DX_EINCOMPLETE);
    CHECK_RC(dx_http_scan_feed(&s, big, DX_DEFAULT_MAX_HEAD, &head_len), DX_EHTTP_HEAD_TOO_LARGE);
    /* a head of exactly 8192 bytes fits */
    memcpy(big + DX_DEFAULT_MAX_HEAD - 4, "\r\n\r\n", 4);
    dx_http_scan s2 = {0};
    CHECK_RC(dx_http_scan_feed(&s2, big, sizeof big, &head_len), 0);
    CHECK_EQ_INT(head_len, DX_DEFAULT_MAX_HEAD);
}

/* The scanner's total work on an 8 KiB head fed one byte per call is linear:
 * each call advances `scanned` by exactly the one new byte, so the bytes looked
 * at add up to the head's length (a rescanning parser would look at n^2/2). */
TEST(scan_8k_head_bytewise_is_linear) {
    static uint8_t head[8192];
    size_t pos = (size_t)snprintf((char *)head, sizeof head, "GET /big HTTP/1.1\r\nHost: h\r\n");
    size_t fields = 1;
    while (sizeof head - pos > 47) {
        memcpy(head + pos, "X-Filler: 0123456789012345678901234\r\n", 37);
        pos += 37;
        fields++;
    }
    /* one last field padded so that the head is exactly 8192 bytes */
    memcpy(head + pos, "Y: ", 3);
    memset(head + pos + 3, 'z', sizeof head - pos - 7);
    memcpy(head + sizeof head - 4, "\r\n\r\n", 4);
    fields++;
    /* Each call sees the head so far with every earlier byte replaced by NUL and
     * the newest byte last before a guard page: the scanner can only succeed if it
     * reads that one byte and nothing else. */
    static const uint8_t zeros[sizeof head];
    uint8_t *g = dx_guard_alloc(zeros, sizeof head);
    dx_http_scan s = {.max_head = sizeof head};
    size_t work = 0, head_len = 0, calls = 0;
    int rc = DX_EINCOMPLETE;
    for (size_t fed = 1; fed <= sizeof head && rc == DX_EINCOMPLETE; fed++) {
        size_t before = s.scanned;
        g[sizeof head - 1] = head[fed - 1];
        rc = dx_http_scan_feed(&s, g + sizeof head - fed, fed, &head_len);
        g[sizeof head - 1] = 0;
        calls++;
        CHECK_EQ_INT(s.scanned - before, 1); /* only the new byte */
        work += s.scanned - before;
    }
    dx_guard_free(g, sizeof head);
    CHECK_RC(rc, 0);
    CHECK_EQ_INT(head_len, sizeof head);
    CHECK_EQ_INT(calls, sizeof head);
    CHECK_EQ_INT(work, sizeof head);
    dx_http_header h[256];
    dx_http_request req;
    CHECK_RC(dx_http_parse_request(head, head_len, &req, h, 256), 0);
    CHECK_EQ_INT(req.num_headers, fields);
}

TEST(scan_result_is_sticky) {
    dx_http_scan s = {0};
    size_t head_len = 0;
    CHECK_RC(dx_http_scan_feed(&s, S("GET / HTTP/1.1\r\n\r\nmore"), &head_len), 0);
    CHECK_EQ_INT(head_len, 18);
    head_len = 0;
    CHECK_RC(dx_http_scan_feed(&s, S("GET / HTTP/1.1\r\n\r\nmore and more"), &head_len), 0);
    CHECK_EQ_INT(head_len, 18);

    dx_http_scan e = {0};
    CHECK_RC(dx_http_scan_feed(&e, S("GET\n"), &head_len), DX_EHTTP_BARE_LF);
    CHECK_RC(dx_http_scan_feed(&e, S("GET\n / HTTP/1.1\r\n\r\n"), &head_len), DX_EHTTP_BARE_LF);
}

TEST(scan_misuse_is_einval) {
    dx_http_scan s = {0};
    size_t head_len;
    CHECK_RC(dx_http_scan_feed(&s, S("GET / HT"), &head_len), DX_EINCOMPLETE);
    CHECK_RC(dx_http_scan_feed(&s, S("GET"), &head_len), DX_EINVAL); /* buffer shrank */
    dx_http_scan bad = {.state = 7};
    CHECK_RC(dx_http_scan_feed(&bad, S("GET"), &head_len), DX_EINVAL);
}

TEST(scan_and_parse_at_guard_page) {
    size_t n = sizeof(rfc6455_request) - 1;
    uint8_t *g = dx_guard_alloc(rfc6455_request, n);
    dx_http_scan s = {0};
    size_t head_len;
    CHECK_RC(dx_http_scan_feed(&s, g, n, &head_len), 0);
    CHECK_EQ_INT(head_len, n);
    dx_http_header h[16];
    dx_http_request req;
    CHECK_RC(dx_http_parse_request(g, n, &req, h, 16), 0);
    CHECK_EQ_INT(req.num_headers, 7);
    dx_guard_free(g, n);
    /* Every proper prefix ends at the guard page: incomplete, never a read past. */
    for (size_t len = 0; len < n; len++) {
        g = dx_guard_alloc(rfc6455_request, len);
        dx_http_scan s2 = {0};
        CHECK_RC(dx_http_scan_feed(&s2, g, len, &head_len), DX_EINCOMPLETE);
        CHECK_RC(dx_http_parse_request(g, len, &req, h, 16), DX_EINCOMPLETE);
        dx_guard_free(g, len);
    }
    n = sizeof(rfc6455_response) - 1;
    for (size_t len = 0; len < n; len++)
        CHECK_RC(parse_resp_guarded(rfc6455_response, len), DX_EINCOMPLETE);
}

/* ---- request heads -------------------------------------------------------- */

TEST(rfc6455_1_3_example_request_parses) {
    for (int si = 0; si < 3; si++) {
        size_t n = sizeof(rfc6455_request) - 1, head_len = 0;
        uint8_t *g = dx_guard_alloc(rfc6455_request, n);
        REQUIRE(scan_split(g, n, dx_all_splits[si], 0, &head_len) == 0);
        dx_http_header h[8];
        dx_http_request req;
        CHECK_RC(dx_http_parse_request(g, head_len, &req, h, 8), 0);
        CHECK_SPAN_STR(req.method, "GET");
        CHECK_SPAN_STR(req.target, "/chat");
        CHECK_EQ_INT(req.minor_version, 1);
        CHECK(req.headers == h);
        REQUIRE(req.num_headers == 7);
        CHECK_SPAN_STR(h[0].name, "Host");
        CHECK_SPAN_STR(h[0].value, "server.example.com");
        CHECK_SPAN_STR(h[1].name, "Upgrade");
        CHECK_SPAN_STR(h[1].value, "websocket");
        CHECK_SPAN_STR(h[2].name, "Connection");
        CHECK_SPAN_STR(h[2].value, "Upgrade");
        CHECK_SPAN_STR(h[3].name, "Sec-WebSocket-Key");
        CHECK_SPAN_STR(h[3].value, "dGhlIHNhbXBsZSBub25jZQ==");
        CHECK_SPAN_STR(h[4].name, "Origin");
        CHECK_SPAN_STR(h[4].value, "http://example.com");
        CHECK_SPAN_STR(h[5].name, "Sec-WebSocket-Protocol");
        CHECK_SPAN_STR(h[5].value, "chat, superchat");
        CHECK_SPAN_STR(h[6].name, "Sec-WebSocket-Version");
        CHECK_SPAN_STR(h[6].value, "13");
        /* zero copy: the spans point into the buffer */
        CHECK(req.method.ptr == g);
        CHECK(req.target.ptr == g + 4);
        CHECK(h[6].value.ptr == g + n - 6);
        dx_guard_free(g, n);
    }
}

TEST(rfc9112_2_1_parse_ignores_bytes_after_the_head) {
    static const char in[] = "GET /x HTTP/1.1\r\nA: 1\r\n\r\n\x81\x00\r\r\n\0";
    dx_http_header h[4];
    dx_http_request req;
    CHECK_RC(dx_http_parse_request(S(in), &req, h, 4), 0);
    CHECK_EQ_INT(req.num_headers, 1);
    CHECK_SPAN_STR(h[0].value, "1");
}

TEST(rfc9112_3_request_line_versions) {
    dx_http_header h[2];
    dx_http_request req;
    CHECK_RC(dx_http_parse_request(S("GET / HTTP/1.0\r\n\r\n"), &req, h, 2), 0);
    CHECK_EQ_INT(req.minor_version, 0);
    CHECK_RC(dx_http_parse_request(S("GET / HTTP/1.9\r\n\r\n"), &req, h, 2), 0);
    CHECK_EQ_INT(req.minor_version, 9);
    CHECK_RC(dx_http_parse_request(S("M-SEARCH * HTTP/1.1\r\n\r\n"), &req, h, 2), 0);
    CHECK_SPAN_STR(req.method, "M-SEARCH");
    CHECK_SPAN_STR(req.target, "*");
    CHECK_EQ_INT(req.num_headers, 0);
}

TEST(rfc9112_3_request_line_needs_single_spaces) {
    expect_request_line("GET  / HTTP/1.1", DX_EHTTP_BAD_REQUEST_LINE);
    expect_request_line("GET /  HTTP/1.1", DX_EHTTP_BAD_REQUEST_LINE);
    expect_request_line(" GET / HTTP/1.1", DX_EHTTP_BAD_REQUEST_LINE);
    expect_request_line("GET / HTTP/1.1 ", DX_EHTTP_BAD_REQUEST_LINE);
    expect_request_line("GET\t/ HTTP/1.1", DX_EHTTP_BAD_REQUEST_LINE);
    expect_request_line("GET /\tHTTP/1.1", DX_EHTTP_BAD_TARGET);
    expect_request_line("GET /", DX_EHTTP_BAD_REQUEST_LINE); /* HTTP/0.9 */
    expect_request_line("GET / ", DX_EHTTP_BAD_REQUEST_LINE);
    expect_request_line("GET", DX_EHTTP_BAD_REQUEST_LINE);
    expect_request_line("", DX_EHTTP_BAD_REQUEST_LINE);
}

TEST(rfc9112_3_1_method_is_a_token) {
    expect_request_line("(GET / HTTP/1.1", DX_EHTTP_BAD_METHOD);
    expect_request_line("GE{T / HTTP/1.1", DX_EHTTP_BAD_METHOD);
    expect_request_line("GET: / HTTP/1.1", DX_EHTTP_BAD_METHOD);
    expect_request_line("G\xc3\x89T / HTTP/1.1", DX_EHTTP_BAD_METHOD);
    expect_request_line("GET\x7f / HTTP/1.1", DX_EHTTP_BAD_METHOD);
}

TEST(rfc9112_3_2_target_is_printable_ascii) {
    expect_request_line("GET /a\x7f HTTP/1.1", DX_EHTTP_BAD_TARGET);
    expect_request_line("GET /caf\xc3\xa9 HTTP/1.1", DX_EHTTP_BAD_TARGET);
    expect_request_line("GET /a\x01 HTTP/1.1", DX_EHTTP_BAD_TARGET);
    expect_request_line("GET /a\tb HTTP/1.1", DX_EHTTP_BAD_TARGET);
}

TEST(rfc9112_2_3_version_is_http_1_x) {
    expect_request_line("GET / HTTP/2.0", DX_EHTTP_BAD_VERSION);
    expect_request_line("GET / HTTP/0.9", DX_EHTTP_BAD_VERSION);
    expect_request_line("GET / HTTP/3.0", DX_EHTTP_BAD_VERSION);
    expect_request_line("GET / http/1.1", DX_EHTTP_BAD_VERSION); /* case-sensitive */
    expect_request_line("GET / HTTP/1.10", DX_EHTTP_BAD_VERSION);
    expect_request_line("GET / HTTP/1", DX_EHTTP_BAD_VERSION);
    expect_request_line("GET / HTTP/1.x", DX_EHTTP_BAD_VERSION);
    expect_request_line("GET / HTTP/11.1", DX_EHTTP_BAD_VERSION);
    expect_request_line("GET / HTTP/1.1x", DX_EHTTP_BAD_VERSION);
    expect_request_line("GET / FTP/1.1", DX_EHTTP_BAD_VERSION);
}

TEST(rfc9112_5_1_no_whitespace_before_colon) {
    expect_field_line("Host : a", DX_EHTTP_SPACE_BEFORE_COLON);
    expect_field_line("Host\t: a", DX_EHTTP_SPACE_BEFORE_COLON);
    expect_field_line("Host \t :a", DX_EHTTP_SPACE_BEFORE_COLON);
}

TEST(rfc9110_5_1_field_name_is_a_token) {
    expect_field_line("Ho st: a", DX_EHTTP_BAD_HEADER_NAME);
    expect_field_line(": a", DX_EHTTP_BAD_HEADER_NAME);
    expect_field_line("H(st: a", DX_EHTTP_BAD_HEADER_NAME);
    expect_field_line("H\x80st: a", DX_EHTTP_BAD_HEADER_NAME);
    expect_field_line("Host \tx: a", DX_EHTTP_BAD_HEADER_NAME);
    expect_field_line("Host\x7f: a", DX_EHTTP_BAD_HEADER_NAME);
}

TEST(rfc9112_5_field_line_needs_a_colon) {
    expect_field_line("Host a", DX_EHTTP_NO_COLON);
    expect_field_line("Host", DX_EHTTP_NO_COLON);
}

TEST(rfc9112_5_2_obs_fold_is_rejected) {
    expect_field_line("X: a\r\n b", DX_EHTTP_OBS_FOLD);
    expect_field_line("X: a\r\n\tb", DX_EHTTP_OBS_FOLD);
    /* whitespace between the start line and the first field (§2.2) */
    expect_field_line(" X: a", DX_EHTTP_OBS_FOLD);
}

TEST(rfc9110_5_5_field_value_has_no_controls) {
    expect_field_line("X: a\x01"
                      "b",
                      DX_EHTTP_BAD_HEADER_VALUE);
    expect_field_line("X: a\x7f", DX_EHTTP_BAD_HEADER_VALUE);
    expect_field_line("X: \x1b[31m", DX_EHTTP_BAD_HEADER_VALUE);
    expect_field_line("X: \x0b", DX_EHTTP_BAD_HEADER_VALUE);
}

TEST(rfc9110_5_5_field_value_obs_text_and_ows) {
    static const char in[] = "GET / HTTP/1.1\r\n"
                             "A: \x80\xff caf\xc3\xa9\r\n"
                             "B:\t a \t b \t\r\n"
                             "C:\r\n"
                             "D:    \r\n"
                             "E: a:b::\r\n"
                             "F-!#$%&'*+.^_`|~9:x\r\n"
                             "\r\n";
    dx_http_header h[8];
    dx_http_request req;
    CHECK_RC(dx_http_parse_request(S(in), &req, h, 8), 0);
    REQUIRE(req.num_headers == 6);
    CHECK_SPAN_STR(h[0].value, "\x80\xff caf\xc3\xa9");
    CHECK_SPAN_STR(h[1].value, "a \t b");
    CHECK_SPAN_STR(h[2].value, "");
    CHECK(h[2].value.ptr != NULL);
    CHECK_SPAN_STR(h[3].value, "");
    CHECK_SPAN_STR(h[4].value, "a:b::");
    CHECK_SPAN_STR(h[5].name, "F-!#$%&'*+.^_`|~9");
    CHECK_SPAN_STR(h[5].value, "x");
}

TEST(rfc9112_2_2_parse_rejects_nul_bare_cr_bare_lf) {
    /* the parser checks these itself, for callers that skip the scanner */
    CHECK_RC(parse_req_guarded(S("GET / HTTP/1.1\r\nA: \0\r\n\r\n"), 16), DX_EHTTP_NUL);
    CHECK_RC(parse_req_guarded(S("GET / HTTP/1.1\r\nA: b\rc\r\n\r\n"), 16), DX_EHTTP_BARE_CR);
    CHECK_RC(parse_req_guarded(S("GET / HTTP/1.1\r\nA: b\nc\r\n\r\n"), 16), DX_EHTTP_BARE_LF);
    CHECK_RC(parse_req_guarded(S("GET / HTTP/1.1\n\r\n"), 16), DX_EHTTP_BARE_LF);
    CHECK_RC(parse_req_guarded(S("GET / HTTP/1.1\r\n\n"), 16), DX_EHTTP_BARE_LF);
    CHECK_RC(parse_req_guarded(S("GET / HTTP/1.1\r\n\r\r\n"), 16), DX_EHTTP_BARE_CR);
    CHECK_RC(parse_resp_guarded(S("HTTP/1.1 101 \0\r\n\r\n")), DX_EHTTP_NUL);
    CHECK_RC(parse_resp_guarded(S("HTTP/1.1 101\r\nA: b\r\r\n")), DX_EHTTP_BARE_CR);
    CHECK_RC(parse_req_guarded(S("GET / HTTP/1.1\r\nA: b\r"), 16), DX_EINCOMPLETE);
}

TEST(header_count_limit_is_enforced) {
    static const char in[] = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    CHECK_RC(parse_req_guarded(S(in), 3), 0);
    CHECK_RC(parse_req_guarded(S(in), 2), DX_EHTTP_TOO_MANY_HEADERS);
    CHECK_RC(parse_req_guarded(S(in), 0), DX_EHTTP_TOO_MANY_HEADERS);
    CHECK_RC(parse_req_guarded(S("GET / HTTP/1.1\r\n\r\n"), 0), 0);
    dx_http_request req;
    CHECK_RC(dx_http_parse_request(S(in), &req, NULL, 0), DX_EHTTP_TOO_MANY_HEADERS);
    CHECK_RC(dx_http_parse_request(S("GET / HTTP/1.1\r\n\r\n"), &req, NULL, 0), 0);
    /* the default allows 64 */
    char big[2048];
    size_t n = (size_t)snprintf(big, sizeof big, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < DX_DEFAULT_MAX_HEADERS + 1; i++)
        n += (size_t)snprintf(big + n, sizeof big - n, "X%d: %d\r\n", i, i);
    n += (size_t)snprintf(big + n, sizeof big - n, "\r\n");
    dx_http_header h[DX_DEFAULT_MAX_HEADERS];
    CHECK_RC(dx_http_parse_request((const uint8_t *)big, n, &req, h, DX_DEFAULT_MAX_HEADERS),
             DX_EHTTP_TOO_MANY_HEADERS);
}

/* ---- response heads ------------------------------------------------------- */

TEST(rfc6455_1_3_example_response_parses) {
    for (int si = 0; si < 3; si++) {
        size_t n = sizeof(rfc6455_response) - 1, head_len = 0;
        uint8_t *g = dx_guard_alloc(rfc6455_response, n);
        REQUIRE(scan_split(g, n, dx_all_splits[si], 0, &head_len) == 0);
        dx_http_header h[8];
        dx_http_response resp;
        CHECK_RC(dx_http_parse_response(g, head_len, &resp, h, 8), 0);
        CHECK_EQ_INT(resp.minor_version, 1);
        CHECK_EQ_INT(resp.status, 101);
        CHECK_SPAN_STR(resp.reason, "Switching Protocols");
        REQUIRE(resp.num_headers == 4);
        CHECK_SPAN_STR(h[2].name, "Sec-WebSocket-Accept");
        CHECK_SPAN_STR(h[2].value, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        CHECK_SPAN_STR(h[3].value, "chat");
        dx_guard_free(g, n);
    }
}

TEST(rfc9112_4_status_line_reason_may_be_empty_or_missing) {
    dx_http_header h[2];
    dx_http_response resp;
    CHECK_RC(dx_http_parse_response(S("HTTP/1.1 101\r\n\r\n"), &resp, h, 2), 0);
    CHECK_EQ_INT(resp.status, 101);
    CHECK_SPAN_STR(resp.reason, "");
    CHECK_RC(dx_http_parse_response(S("HTTP/1.1 404 \r\n\r\n"), &resp, h, 2), 0);
    CHECK_EQ_INT(resp.status, 404);
    CHECK_SPAN_STR(resp.reason, "");
    CHECK_RC(dx_http_parse_response(S("HTTP/1.0 999 Odd\t \x80reason \r\n\r\n"), &resp, h, 2), 0);
    CHECK_EQ_INT(resp.minor_version, 0);
    CHECK_EQ_INT(resp.status, 999);
    CHECK_SPAN_STR(resp.reason, "Odd\t \x80reason ");
}

TEST(rfc9112_4_status_line_rejections) {
    expect_status_line("HTTP/1.1 10 x", DX_EHTTP_BAD_STATUS_LINE);
    expect_status_line("HTTP/1.1 1011 x", DX_EHTTP_BAD_STATUS_LINE);
    expect_status_line("HTTP/1.1 101x", DX_EHTTP_BAD_STATUS_LINE);
    expect_status_line("HTTP/1.1  101 x", DX_EHTTP_BAD_STATUS_LINE);
    expect_status_line("HTTP/1.1\t101 x", DX_EHTTP_BAD_STATUS_LINE);
    expect_status_line("HTTP/1.1 099 x", DX_EHTTP_BAD_STATUS_LINE);
    expect_status_line("HTTP/1.1 abc x", DX_EHTTP_BAD_STATUS_LINE);
    expect_status_line("HTTP/1.1 101 a\x01", DX_EHTTP_BAD_STATUS_LINE);
    expect_status_line("HTTP/1.1 101 a\x7f", DX_EHTTP_BAD_STATUS_LINE);
    expect_status_line("HTTP/1.1", DX_EHTTP_BAD_STATUS_LINE);
    expect_status_line("HTTP/1.1 ", DX_EHTTP_BAD_STATUS_LINE);
    expect_status_line("ICY 200 OK", DX_EHTTP_BAD_STATUS_LINE);
    expect_status_line("http/1.1 101 x", DX_EHTTP_BAD_STATUS_LINE);
    expect_status_line("", DX_EHTTP_BAD_STATUS_LINE);
    expect_status_line("HTTP/2 101 x", DX_EHTTP_BAD_VERSION);
    expect_status_line("HTTP/2.0 101 x", DX_EHTTP_BAD_VERSION);
    expect_status_line("HTTP/1.10 101 x", DX_EHTTP_BAD_VERSION);
    expect_status_line("HTTP/1", DX_EHTTP_BAD_VERSION);
}

/* ---- lookups -------------------------------------------------------------- */

static dx_http_header hdr(const char *n, const char *v) {
    dx_http_header h = {dx_span_cstr(n), dx_span_cstr(v)};
    return h;
}

TEST(rfc9110_5_6_1_list_elements) {
    dx_span v = dx_span_cstr(" a , ,b,, c d ,\t");
    size_t pos = 0;
    dx_span e;
    REQUIRE(dx_http_list_next(v, &pos, &e));
    CHECK_SPAN_STR(e, "a");
    REQUIRE(dx_http_list_next(v, &pos, &e));
    CHECK_SPAN_STR(e, "b");
    REQUIRE(dx_http_list_next(v, &pos, &e));
    CHECK_SPAN_STR(e, "c d");
    CHECK(!dx_http_list_next(v, &pos, &e));
    CHECK(!dx_http_list_next(v, &pos, &e));
    pos = 0;
    CHECK(!dx_http_list_next(dx_span_cstr(" , ,"), &pos, &e));
    pos = 0;
    CHECK(!dx_http_list_next(dx_span_cstr(""), &pos, &e));
}

TEST(rfc6455_4_2_1_connection_token_search) {
    dx_http_header h[] = {hdr("connection", "keep-alive, Upgrade"), hdr("Upgrade", "WebSocket"),
                          hdr("X", "upgrade")};
    CHECK(dx_http_header_has_token(h, 3, "Connection", "upgrade"));
    CHECK(dx_http_header_has_token(h, 3, "CONNECTION", "keep-alive"));
    CHECK(dx_http_header_has_token(h, 3, "upgrade", "websocket"));
    CHECK(!dx_http_header_has_token(h, 3, "Connection", "close"));
    CHECK(!dx_http_header_has_token(h, 3, "Upgrade", "web"));
    dx_http_header h2[] = {hdr("Connection", "Upgraded"), hdr("Connection", "up grade"),
                           hdr("Connection", "close"), hdr("Connection", ",upgrade ,")};
    CHECK(!dx_http_header_has_token(h2, 3, "Connection", "upgrade"));
    CHECK(dx_http_header_has_token(h2, 4, "Connection", "upgrade")); /* a later line */
}

TEST(header_find_and_count_ignore_case) {
    dx_http_header h[] = {hdr("Host", "a"), hdr("hOST", "b"), hdr("Hosts", "c")};
    const dx_http_header *f = dx_http_header_find(h, 3, "HOST");
    CHECK(f == &h[0]);
    CHECK_EQ_INT(dx_http_header_count(h, 3, "host"), 2);
    CHECK_EQ_INT(dx_http_header_count(h, 3, "hosts"), 1);
    CHECK(dx_http_header_find(h, 3, "Hos") == NULL);
    CHECK(dx_http_header_find(NULL, 0, "Host") == NULL);
}

TEST(http_reason_phrases) {
    CHECK(strcmp(dx_http_reason(101), "Switching Protocols") == 0);
    CHECK(strcmp(dx_http_reason(426), "Upgrade Required") == 0);
    CHECK(strcmp(dx_http_reason(431), "Request Header Fields Too Large") == 0);
    CHECK(strcmp(dx_http_reason(299), "") == 0);
    CHECK(strcmp(dx_http_reason(-1), "") == 0);
}

/* ---- writing -------------------------------------------------------------- */

/* Write with every capacity from 0 to the exact size: smaller ones report the
 * exact size and leave the bytes past @cap alone; the exact size succeeds. */
static void expect_write(int status, const dx_http_header *h, size_t n, dx_span body,
                         const char *want) {
    size_t need = strlen(want);
    uint8_t buf[512];
    for (size_t cap = 0; cap <= need; cap++) {
        memset(buf, 0xA5, sizeof buf);
        size_t len = 0;
        int rc = dx_http_write_response(buf, cap, &len, status, h, n, body);
        CHECK_EQ_INT(len, need);
        if (cap < need) {
            CHECK_RC(rc, DX_ENOSPACE);
        } else {
            CHECK_RC(rc, 0);
            CHECK_SPAN_STR(((dx_span){buf, len}), want);
        }
        CHECK(buf[cap] == 0xA5);
    }
    size_t len = 0;
    CHECK_RC(dx_http_write_response(NULL, 0, &len, status, h, n, body), DX_ENOSPACE);
    CHECK_EQ_INT(len, need);
}

TEST(rfc9110_write_response_exact_bytes) {
    expect_write(403, NULL, 0, dx_span_cstr("no"),
                 "HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 2\r\n\r\nno");
    dx_http_header auth[] = {hdr("WWW-Authenticate", "Basic realm=\"ws\"")};
    expect_write(401, auth, 1, dx_span_cstr(""),
                 "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"ws\"\r\n"
                 "Connection: close\r\nContent-Length: 0\r\n\r\n");
    expect_write(599, NULL, 0, dx_span_cstr(""),
                 "HTTP/1.1 599 \r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    /* the caller's Connection and Content-Length win */
    dx_http_header own[] = {hdr("Connection", "keep-alive"), hdr("content-length", "10")};
    expect_write(200, own, 2, dx_span_cstr("x"),
                 "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\ncontent-length: 10\r\n\r\nx");
}

TEST(rfc9110_8_6_no_content_length_in_1xx_or_204) {
    dx_http_header up[] = {hdr("Upgrade", "websocket"), hdr("Connection", "Upgrade")};
    expect_write(101, up, 2, dx_span_cstr(""),
                 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\n\r\n");
    expect_write(204, NULL, 0, dx_span_cstr(""),
                 "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
    size_t len;
    uint8_t buf[128];
    CHECK_RC(dx_http_write_response(buf, sizeof buf, &len, 101, NULL, 0, dx_span_cstr("x")),
             DX_EINVAL);
    CHECK_RC(dx_http_write_response(buf, sizeof buf, &len, 204, NULL, 0, dx_span_cstr("x")),
             DX_EINVAL);
}

TEST(write_response_refuses_injection_and_bad_status) {
    uint8_t buf[256];
    size_t len;
    dx_span none = {NULL, 0};
    CHECK_RC(dx_http_write_response(buf, sizeof buf, &len, 99, NULL, 0, none), DX_EINVAL);
    CHECK_RC(dx_http_write_response(buf, sizeof buf, &len, 1000, NULL, 0, none), DX_EINVAL);
    dx_http_header bad[][1] = {
        {hdr("X-A", "a\r\nSet-Cookie: evil")},
        {hdr("X-A", "a\nb")},
        {hdr("X-A", "a\rb")},
        {hdr("X-A\r\nB", "v")},
        {hdr("X A", "v")},
        {hdr("", "v")},
        {hdr("X:", "v")},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_RC(dx_http_write_response(buf, sizeof buf, &len, 400, bad[i], 1, none), DX_EINVAL);
    dx_http_header nul = {dx_span_cstr("X"), {(const uint8_t *)"a\0b", 3}};
    CHECK_RC(dx_http_write_response(buf, sizeof buf, &len, 400, &nul, 1, none), DX_EINVAL);
    CHECK_RC(dx_http_write_response(buf, sizeof buf, &len, 400, NULL, 1, none), DX_EINVAL);
}

TEST(written_response_reparses) {
    dx_http_header in[] = {hdr("Location", "/elsewhere"), hdr("X-Obs", "caf\xc3\xa9\tok")};
    uint8_t buf[256];
    size_t len;
    CHECK_RC(dx_http_write_response(buf, sizeof buf, &len, 302, in, 2, dx_span_cstr("moved\n")), 0);
    dx_http_scan s = {0};
    size_t head_len;
    CHECK_RC(dx_http_scan_feed(&s, buf, len, &head_len), 0);
    CHECK_EQ_INT(len - head_len, 6);
    dx_http_header h[8];
    dx_http_response resp;
    CHECK_RC(dx_http_parse_response(buf, head_len, &resp, h, 8), 0);
    CHECK_EQ_INT(resp.status, 302);
    CHECK_SPAN_STR(resp.reason, "Found");
    REQUIRE(resp.num_headers == 4);
    CHECK_SPAN_STR(h[1].value, "caf\xc3\xa9\tok");
    CHECK_SPAN_STR(dx_http_header_find(h, 4, "content-length")->value, "6");
}
