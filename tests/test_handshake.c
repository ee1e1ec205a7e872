/*
 * The opening handshake (RFC 6455 §4): server checks and answers, client request
 * and response checks, and the round trip between them.
 */
#include "test.h"

#include <errno.h>

static const char sample_key[] = "dGhlIHNhbXBsZSBub25jZQ==";
static const char sample_accept[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

#define L_GET "GET /chat HTTP/1.1\r\n"
#define L_HOST "Host: server.example.com\r\n"
#define L_UPG "Upgrade: websocket\r\n"
#define L_CONN "Connection: Upgrade\r\n"
#define L_KEY "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
#define L_VER "Sec-WebSocket-Version: 13\r\n"
#define OK_FIELDS L_HOST L_UPG L_CONN L_KEY L_VER

/* RFC 6455 §1.3, the handshake from the client */
static const char rfc_request[] = "GET /chat HTTP/1.1\r\n"
                                  "Host: server.example.com\r\n"
                                  "Upgrade: websocket\r\n"
                                  "Connection: Upgrade\r\n"
                                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                  "Origin: http://example.com\r\n"
                                  "Sec-WebSocket-Protocol: chat, superchat\r\n"
                                  "Sec-WebSocket-Version: 13\r\n"
                                  "\r\n";

/* RFC 6455 §1.3, the handshake from the server */
static const char rfc_response[] = "HTTP/1.1 101 Switching Protocols\r\n"
                                   "Upgrade: websocket\r\n"
                                   "Connection: Upgrade\r\n"
                                   "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                                   "Sec-WebSocket-Protocol: chat\r\n"
                                   "\r\n";

/* Scan (in pieces chosen by @split) and parse a head held at @g. */
static size_t scan_head(const uint8_t *g, size_t n, dx_split split) {
    dx_http_scan s = {0};
    size_t fed = 0, head_len = 0;
    int rc = DX_EINCOMPLETE;
    while (rc == DX_EINCOMPLETE && fed < n) {
        fed += dx_split_next(split, n - fed);
        rc = dx_http_scan_feed(&s, g, fed, &head_len);
    }
    CHECK_RC(rc, 0);
    return rc == 0 ? head_len : 0;
}

/* The server's whole path for @raw: scan at every split, parse, check, from a
 * copy at a guard page. Returns the check's code (the same for every split). */
static int check_req(const char *raw) {
    size_t n = strlen(raw);
    int first = 1;
    for (int si = 0; si < 3; si++) {
        uint8_t *g = dx_guard_alloc(raw, n);
        size_t head_len = scan_head(g, n, dx_all_splits[si]);
        dx_http_header h[64];
        dx_http_request req;
        int rc = dx_http_parse_request(g, head_len, &req, h, 64);
        CHECK_RC(rc, 0);
        dx_ws_request ws;
        rc = dx_handshake_check_request(&req, &ws);
        if (rc == 0)
            CHECK_EQ_INT(ws.key.len, DX_KEY_LEN);
        dx_guard_free(g, n);
        if (si > 0)
            CHECK_RC(rc, first);
        first = rc;
    }
    return first;
}

static int random_sample_nonce(uint8_t *buf, size_t len, void *ctx) {
    (void)ctx;
    if (len != 16)
        return -EINVAL;
    memcpy(buf, "the sample nonce", 16);
    return 0;
}
static const dx_random sample_random = {random_sample_nonce, NULL};

static dx_client_handshake sample_client(void) {
    dx_client_handshake hs;
    memset(&hs, 0, sizeof hs);
    int rc = dx_client_handshake_init(&hs, &sample_random);
    CHECK_RC(rc, 0);
    return hs;
}

/* The client's whole path for a response head: scan at every split, parse,
 * check against the §1.3 key. */
static int check_resp(const char *raw, const dx_request_options *opts, dx_ws_response *out) {
    dx_client_handshake hs = sample_client();
    size_t n = strlen(raw);
    int first = 1;
    for (int si = 0; si < 3; si++) {
        uint8_t *g = dx_guard_alloc(raw, n);
        size_t head_len = scan_head(g, n, dx_all_splits[si]);
        dx_http_header h[64];
        dx_http_response resp;
        CHECK_RC(dx_http_parse_response(g, head_len, &resp, h, 64), 0);
        dx_ws_response r;
        memset(&r, 0, sizeof r);
        int rc = dx_handshake_check_response(&hs, opts, &resp, &r);
        if (si == 0 && out && rc == 0) {
            /* copy out the protocol name for the caller before the page goes */
            static char proto[64], ext[256];
            snprintf(proto, sizeof proto, "%.*s", (int)r.protocol.len,
                     (const char *)r.protocol.ptr);
            snprintf(ext, sizeof ext, "%.*s", (int)r.extensions.len,
                     (const char *)r.extensions.ptr);
            out->protocol = dx_span_cstr(proto);
            out->extensions = dx_span_cstr(ext);
        }
        dx_guard_free(g, n);
        if (si > 0)
            CHECK_RC(rc, first);
        first = rc;
    }
    return first;
}

/* ---- Sec-WebSocket-Accept ------------------------------------------------- */

TEST(rfc6455_1_3_accept_of_the_sample_key) {
    char out[DX_ACCEPT_LEN + 1] = {0};
    dx_handshake_accept_key(dx_span_cstr(sample_key), out);
    CHECK(strcmp(out, sample_accept) == 0);
}

/* ---- server: checking the request ----------------------------------------- */

TEST(rfc6455_1_3_example_request_is_accepted) {
    size_t n = sizeof rfc_request - 1;
    uint8_t *g = dx_guard_alloc(rfc_request, n);
    dx_http_header h[16];
    dx_http_request req;
    REQUIRE(dx_http_parse_request(g, n, &req, h, 16) == 0);
    dx_ws_request ws;
    CHECK_RC(dx_handshake_check_request(&req, &ws), 0);
    CHECK(ws.http == &req);
    CHECK_SPAN_STR(ws.path, "/chat");
    CHECK_SPAN_STR(ws.query, "");
    CHECK_SPAN_STR(ws.host, "server.example.com");
    CHECK(ws.has_origin);
    CHECK_SPAN_STR(ws.origin, "http://example.com");
    CHECK_SPAN_STR(ws.key, sample_key);
    REQUIRE(ws.num_protocols == 2);
    CHECK_SPAN_STR(ws.protocols[0], "chat");
    CHECK_SPAN_STR(ws.protocols[1], "superchat");
    CHECK_EQ_INT(ws.num_extensions, 0);

    /* and the §1.3 answer, byte for byte */
    dx_accept_options opts = {.protocol = dx_span_cstr("chat")};
    uint8_t out[512];
    size_t len = 0;
    CHECK_RC(dx_handshake_write_accept(&ws, &opts, out, sizeof out, &len), 0);
    CHECK_SPAN_STR(((dx_span){out, len}), rfc_response);
    dx_guard_free(g, n);
}

TEST(rfc6455_4_2_1_path_and_query_split_at_the_first_question_mark) {
    static const struct {
        const char *target, *path, *query;
    } v[] = {
        {"/chat?room=1&x", "/chat", "room=1&x"},
        {"/?", "/", ""},
        {"/a?b?c", "/a", "b?c"},
        {"/", "/", ""},
        {"/a/b/", "/a/b/", ""},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char raw[512];
        snprintf(raw, sizeof raw, "GET %s HTTP/1.1\r\n" OK_FIELDS "\r\n", v[i].target);
        dx_http_header h[16];
        dx_http_request req;
        REQUIRE(dx_http_parse_request((const uint8_t *)raw, strlen(raw), &req, h, 16) == 0);
        dx_ws_request ws;
        CHECK_RC(dx_handshake_check_request(&req, &ws), 0);
        CHECK_SPAN_STR(ws.path, v[i].path);
        CHECK_SPAN_STR(ws.query, v[i].query);
        CHECK(ws.path.ptr == req.target.ptr);
        CHECK(!ws.has_origin);
        CHECK_EQ_INT(ws.origin.len, 0);
    }
}

TEST(rfc6455_4_2_1_item1_method_must_be_get) {
    CHECK_RC(check_req("POST /chat HTTP/1.1\r\n" OK_FIELDS "\r\n"), DX_EHS_METHOD);
    CHECK_RC(check_req("get /chat HTTP/1.1\r\n" OK_FIELDS "\r\n"), DX_EHS_METHOD);
    CHECK_RC(check_req("HEAD /chat HTTP/1.1\r\n" OK_FIELDS "\r\n"), DX_EHS_METHOD);
}

TEST(rfc6455_4_2_1_item1_http_1_1_or_later) {
    CHECK_RC(check_req("GET /chat HTTP/1.0\r\n" OK_FIELDS "\r\n"), DX_EHS_HTTP_VERSION);
    CHECK_RC(check_req("GET /chat HTTP/1.2\r\n" OK_FIELDS "\r\n"), 0);
}

TEST(rfc6455_4_2_1_item1_resource_name_is_origin_form) {
    CHECK_RC(check_req("GET * HTTP/1.1\r\n" OK_FIELDS "\r\n"), DX_EHTTP_BAD_TARGET);
    CHECK_RC(check_req("GET ws://h/chat HTTP/1.1\r\n" OK_FIELDS "\r\n"), DX_EHTTP_BAD_TARGET);
    CHECK_RC(check_req("GET h:80 HTTP/1.1\r\n" OK_FIELDS "\r\n"), DX_EHTTP_BAD_TARGET);
    /* §3: fragment identifiers MUST NOT be used */
    CHECK_RC(check_req("GET /chat#x HTTP/1.1\r\n" OK_FIELDS "\r\n"), DX_EHTTP_BAD_TARGET);
}

TEST(rfc6455_4_2_1_item2_exactly_one_host) {
    CHECK_RC(check_req(L_GET L_UPG L_CONN L_KEY L_VER "\r\n"), DX_EHS_NO_HOST);
    CHECK_RC(check_req(L_GET L_HOST "host: other\r\n" L_UPG L_CONN L_KEY L_VER "\r\n"),
             DX_EHS_NO_HOST);
    CHECK_RC(check_req(L_GET "Host: \r\n" L_UPG L_CONN L_KEY L_VER "\r\n"), DX_EHS_NO_HOST);
    CHECK_RC(check_req(L_GET "HOST: [::1]:8080\r\n" L_UPG L_CONN L_KEY L_VER "\r\n"), 0);
}

TEST(rfc6455_4_2_1_item3_upgrade_websocket) {
    CHECK_RC(check_req(L_GET L_HOST L_CONN L_KEY L_VER "\r\n"), DX_EHS_NO_UPGRADE);
    CHECK_RC(check_req(L_GET L_HOST "Upgrade: h2c\r\n" L_CONN L_KEY L_VER "\r\n"),
             DX_EHS_NO_UPGRADE);
    CHECK_RC(check_req(L_GET L_HOST "Upgrade: websocketx\r\n" L_CONN L_KEY L_VER "\r\n"),
             DX_EHS_NO_UPGRADE);
    CHECK_RC(check_req(L_GET L_HOST "Upgrade: websocket/13\r\n" L_CONN L_KEY L_VER "\r\n"),
             DX_EHS_NO_UPGRADE);
    CHECK_RC(check_req(L_GET L_HOST "Upgrade: h2c, WebSocket\r\n" L_CONN L_KEY L_VER "\r\n"), 0);
    CHECK_RC(check_req(L_GET L_HOST "upgrade: WEBSOCKET\r\n" L_CONN L_KEY L_VER "\r\n"), 0);
}

TEST(rfc6455_4_2_1_item4_connection_upgrade) {
    CHECK_RC(check_req(L_GET L_HOST L_UPG L_KEY L_VER "\r\n"), DX_EHS_NO_CONNECTION);
    CHECK_RC(check_req(L_GET L_HOST L_UPG "Connection: keep-alive\r\n" L_KEY L_VER "\r\n"),
             DX_EHS_NO_CONNECTION);
    CHECK_RC(check_req(L_GET L_HOST L_UPG "Connection: upgraded\r\n" L_KEY L_VER "\r\n"),
             DX_EHS_NO_CONNECTION);
    CHECK_RC(check_req(L_GET L_HOST L_UPG "Connection: keep-alive, Upgrade\r\n" L_KEY L_VER "\r\n"),
             0);
    CHECK_RC(check_req(L_GET L_HOST L_UPG
                       "Connection: keep-alive\r\nConnection: UPGRADE\r\n" L_KEY L_VER "\r\n"),
             0);
}

TEST(rfc6455_4_2_1_item6_version_13) {
    CHECK_RC(check_req(L_GET L_HOST L_UPG L_CONN L_KEY "\r\n"), DX_EHS_NO_VERSION);
    CHECK_RC(check_req(L_GET L_HOST L_UPG L_CONN L_KEY "Sec-WebSocket-Version: 8\r\n\r\n"),
             DX_EHS_BAD_VERSION);
    CHECK_RC(check_req(L_GET L_HOST L_UPG L_CONN L_KEY "Sec-WebSocket-Version: 013\r\n\r\n"),
             DX_EHS_BAD_VERSION);
    CHECK_RC(check_req(L_GET L_HOST L_UPG L_CONN L_KEY "Sec-WebSocket-Version: 13, 8\r\n\r\n"),
             DX_EHS_BAD_VERSION);
    CHECK_RC(check_req(L_GET L_HOST L_UPG L_CONN L_KEY L_VER L_VER "\r\n"), DX_EHS_BAD_VERSION);
    CHECK_RC(check_req(L_GET L_HOST L_UPG L_CONN L_KEY "Sec-WebSocket-Version: \t13 \r\n\r\n"), 0);
}

TEST(rfc6455_4_4_version_is_checked_before_the_key) {
    /* a hybi-00 style client (Key1/Key2, no version) learns which version we speak */
    CHECK_RC(check_req(L_GET L_HOST L_UPG L_CONN "Sec-WebSocket-Key1: 4 @1  46546xW%0l 1 5\r\n"
                                                 "\r\n"),
             DX_EHS_NO_VERSION);
    CHECK_RC(check_req(L_GET L_HOST L_UPG L_CONN "Sec-WebSocket-Version: 8\r\n\r\n"),
             DX_EHS_BAD_VERSION);
}

TEST(rfc6455_4_2_1_item5_key_is_16_bytes_in_base64) {
    CHECK_RC(check_req(L_GET L_HOST L_UPG L_CONN L_VER "\r\n"), DX_EHS_NO_KEY);
    CHECK_RC(check_req(L_GET L_HOST L_UPG L_CONN L_KEY L_KEY L_VER "\r\n"), DX_EHS_DUPLICATE_KEY);
    static const char *bad[] = {
        "dGhlIHNhbXBsZSBub25jZQ",     /* padding omitted */
        "dGhlIHNhbXBsZSBub25jZQ=",    /* half the padding */
        "dGhlIHNhbXBsZSBub25jZQAA",   /* 18 bytes */
        "dGhlIHNhbXBsZSBub25jZR==",   /* stray bits under the padding */
        "dGhlIHNhbXBsZSBub25jZ!==",   /* not in the alphabet */
        "dGhlIHNhbXBsZSBub25j",       /* 15 bytes */
        "dGhlIHNhbXBsZSBub25jZSE=",   /* 17 bytes */
        "dGhlIHNhbXBsZSBub25jZQ==AA", /* trailing data */
        "dGhl IHNhbXBsZSBub25jZQ==",  "dGhlIHNhbXBsZSBub25jZQ-_", "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char raw[512];
        snprintf(raw, sizeof raw,
                 L_GET L_HOST L_UPG L_CONN "Sec-WebSocket-Key: %s\r\n" L_VER "\r\n", bad[i]);
        int rc = check_req(raw);
        if (rc != DX_EHS_BAD_KEY)
            printf("    key \"%s\"\n", bad[i]);
        CHECK_RC(rc, DX_EHS_BAD_KEY);
    }
    CHECK_RC(check_req(L_GET L_HOST L_UPG L_CONN
                       "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n" L_VER "\r\n"),
             0);
}

TEST(rfc6455_4_1_item10_subprotocols_are_unique_tokens) {
    CHECK_RC(check_req(L_GET OK_FIELDS "Sec-WebSocket-Protocol: chat, super chat\r\n\r\n"),
             DX_EHS_BAD_PROTOCOL);
    CHECK_RC(check_req(L_GET OK_FIELDS "Sec-WebSocket-Protocol: chat, (x)\r\n\r\n"),
             DX_EHS_BAD_PROTOCOL);
    CHECK_RC(check_req(L_GET OK_FIELDS "Sec-WebSocket-Protocol: chat, chat\r\n\r\n"),
             DX_EHS_BAD_PROTOCOL);
    CHECK_RC(check_req(L_GET OK_FIELDS "Sec-WebSocket-Protocol: chat\r\n"
                                       "Sec-WebSocket-Protocol: chat\r\n\r\n"),
             DX_EHS_BAD_PROTOCOL);
    CHECK_RC(check_req(L_GET OK_FIELDS "Sec-WebSocket-Protocol: \r\n\r\n"), DX_EHS_BAD_PROTOCOL);
    CHECK_RC(check_req(L_GET OK_FIELDS "Sec-WebSocket-Protocol: , ,\r\n\r\n"), DX_EHS_BAD_PROTOCOL);
    /* empty elements next to real ones are tolerated; lines form one list */
    static const char ok[] = L_GET OK_FIELDS "Sec-WebSocket-Protocol: , a\r\n"
                                             "Sec-WebSocket-Protocol: b,c ,\r\n\r\n";
    CHECK_RC(check_req(ok), 0);
    dx_http_header h[16];
    dx_http_request req;
    REQUIRE(dx_http_parse_request((const uint8_t *)ok, sizeof ok - 1, &req, h, 16) == 0);
    dx_ws_request ws;
    CHECK_RC(dx_handshake_check_request(&req, &ws), 0);
    REQUIRE(ws.num_protocols == 3);
    CHECK_SPAN_STR(ws.protocols[0], "a");
    CHECK_SPAN_STR(ws.protocols[1], "b");
    CHECK_SPAN_STR(ws.protocols[2], "c");
}

TEST(rfc6455_4_2_1_protocol_and_extension_limits) {
    char raw[2048];
    int n = snprintf(raw, sizeof raw, L_GET OK_FIELDS "Sec-WebSocket-Protocol: p0");
    for (int i = 1; i < DX_MAX_PROTOCOLS; i++)
        n += snprintf(raw + n, sizeof raw - (size_t)n, ",p%d", i);
    snprintf(raw + n, sizeof raw - (size_t)n, "\r\n\r\n");
    CHECK_RC(check_req(raw), 0);
    snprintf(raw + n, sizeof raw - (size_t)n, ",p%d\r\n\r\n", DX_MAX_PROTOCOLS);
    CHECK_RC(check_req(raw), DX_EHS_TOO_MANY);

    n = snprintf(raw, sizeof raw, L_GET OK_FIELDS "Sec-WebSocket-Extensions: e0");
    for (int i = 1; i < DX_MAX_EXTENSIONS; i++)
        n += snprintf(raw + n, sizeof raw - (size_t)n, ",e%d", i);
    snprintf(raw + n, sizeof raw - (size_t)n, "\r\n\r\n");
    CHECK_RC(check_req(raw), 0);
    snprintf(raw + n, sizeof raw - (size_t)n, ",e%d\r\n\r\n", DX_MAX_EXTENSIONS);
    CHECK_RC(check_req(raw), DX_EHS_TOO_MANY);

    n = snprintf(raw, sizeof raw, L_GET OK_FIELDS "Sec-WebSocket-Extensions: e");
    for (int i = 0; i < DX_MAX_EXT_PARAMS + 1; i++)
        n += snprintf(raw + n, sizeof raw - (size_t)n, ";q%d", i);
    snprintf(raw + n, sizeof raw - (size_t)n, "\r\n\r\n");
    CHECK_RC(check_req(raw), DX_EHS_TOO_MANY);
}

TEST(rfc6455_9_1_offered_extensions_are_parsed) {
    CHECK_RC(check_req(L_GET OK_FIELDS "Sec-WebSocket-Extensions: permessage-deflate;\r\n\r\n"),
             DX_EHS_BAD_EXTENSIONS);
    CHECK_RC(check_req(L_GET OK_FIELDS "Sec-WebSocket-Extensions: \r\n\r\n"),
             DX_EHS_BAD_EXTENSIONS);
    static const char ok[] = L_GET OK_FIELDS
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x\r\n"
        "Sec-WebSocket-Extensions: y; a=\"1\"\r\n\r\n";
    dx_http_header h[16];
    dx_http_request req;
    REQUIRE(dx_http_parse_request((const uint8_t *)ok, sizeof ok - 1, &req, h, 16) == 0);
    dx_ws_request ws;
    CHECK_RC(dx_handshake_check_request(&req, &ws), 0);
    REQUIRE(ws.num_extensions == 3);
    CHECK_SPAN_STR(ws.extensions[0].name, "permessage-deflate");
    CHECK(ws.extensions[0].params == &ws.ext_params[0]);
    CHECK_SPAN_STR(ws.extensions[0].params[0].name, "client_max_window_bits");
    CHECK_SPAN_STR(ws.extensions[1].name, "x");
    CHECK_SPAN_STR(ws.extensions[2].name, "y");
    CHECK(ws.extensions[2].params[0].quoted);
}

/* The documented order: each failure shows only once every earlier check passes. */
TEST(rfc6455_4_2_1_check_order) {
    static const struct {
        const char *raw;
        int want;
    } steps[] = {
        {"POST * HTTP/1.0\r\nSec-WebSocket-Protocol: a b\r\n\r\n", DX_EHS_METHOD},
        {"GET * HTTP/1.0\r\nSec-WebSocket-Protocol: a b\r\n\r\n", DX_EHS_HTTP_VERSION},
        {"GET * HTTP/1.1\r\nSec-WebSocket-Protocol: a b\r\n\r\n", DX_EHTTP_BAD_TARGET},
        {"GET / HTTP/1.1\r\nSec-WebSocket-Protocol: a b\r\n\r\n", DX_EHS_NO_HOST},
        {"GET / HTTP/1.1\r\n" L_HOST "Sec-WebSocket-Protocol: a b\r\n\r\n", DX_EHS_NO_UPGRADE},
        {"GET / HTTP/1.1\r\n" L_HOST L_UPG "Sec-WebSocket-Protocol: a b\r\n\r\n",
         DX_EHS_NO_CONNECTION},
        {"GET / HTTP/1.1\r\n" L_HOST L_UPG L_CONN "Sec-WebSocket-Protocol: a b\r\n\r\n",
         DX_EHS_NO_VERSION},
        {"GET / HTTP/1.1\r\n" L_HOST L_UPG L_CONN L_VER "Sec-WebSocket-Protocol: a b\r\n\r\n",
         DX_EHS_NO_KEY},
        {"GET / HTTP/1.1\r\n" L_HOST L_UPG L_CONN L_VER L_KEY
         "Sec-WebSocket-Extensions: ;\r\nSec-WebSocket-Protocol: a b\r\n\r\n",
         DX_EHS_BAD_PROTOCOL},
        {"GET / HTTP/1.1\r\n" L_HOST L_UPG L_CONN L_VER L_KEY "Sec-WebSocket-Extensions: ;\r\n\r\n",
         DX_EHS_BAD_EXTENSIONS},
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        CHECK_RC(check_req(steps[i].raw), steps[i].want);
}

/* ---- server: answering ---------------------------------------------------- */

TEST(rfc6455_4_2_2_refusal_status_for_each_failure) {
    static const struct {
        int err, status;
    } v[] = {
        {DX_EHS_METHOD, 405},
        {DX_EHS_HTTP_VERSION, 400},
        {DX_EHS_NO_HOST, 400},
        {DX_EHS_NO_UPGRADE, 426},
        {DX_EHS_NO_CONNECTION, 426},
        {DX_EHS_NO_KEY, 400},
        {DX_EHS_DUPLICATE_KEY, 400},
        {DX_EHS_BAD_KEY, 400},
        {DX_EHS_NO_VERSION, 426},
        {DX_EHS_BAD_VERSION, 426},
        {DX_EHS_BAD_PROTOCOL, 400},
        {DX_EHS_BAD_EXTENSIONS, 400},
        {DX_EHS_TOO_MANY, 400},
        {DX_EHTTP_HEAD_TOO_LARGE, 431},
        {DX_EHTTP_TOO_MANY_HEADERS, 431},
        {DX_EHTTP_NUL, 400},
        {DX_EHTTP_BARE_CR, 400},
        {DX_EHTTP_BARE_LF, 400},
        {DX_EHTTP_OBS_FOLD, 400},
        {DX_EHTTP_BAD_METHOD, 400},
        {DX_EHTTP_BAD_TARGET, 400},
        {DX_EHTTP_BAD_VERSION, 400},
        {DX_EHTTP_BAD_REQUEST_LINE, 400},
        {DX_EHTTP_BAD_STATUS_LINE, 400},
        {DX_EHTTP_BAD_HEADER_NAME, 400},
        {DX_EHTTP_BAD_HEADER_VALUE, 400},
        {DX_EHTTP_NO_COLON, 400},
        {DX_EHTTP_SPACE_BEFORE_COLON, 400},
        /* not server refusals */
        {0, DX_EINVAL},
        {DX_EINCOMPLETE, DX_EINVAL},
        {DX_ENOMEM, DX_EINVAL},
        {DX_EHS_STATUS, DX_EINVAL},
        {DX_EHS_BAD_ACCEPT, DX_EINVAL},
        {-EIO, DX_EINVAL},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        int got = dx_handshake_refusal_status(v[i].err);
        if (got != v[i].status)
            printf("    %s\n", dx_err_name(v[i].err));
        CHECK_EQ_INT(got, v[i].status);
    }
}

/* Every capacity below the exact size reports it; the exact size succeeds. */
static void expect_refusal(int err, const char *want) {
    size_t need = strlen(want);
    uint8_t buf[1024];
    for (size_t cap = 0; cap <= need; cap++) {
        memset(buf, 0x5A, sizeof buf);
        size_t len = 0;
        int rc = dx_handshake_write_refusal(err, buf, cap, &len);
        CHECK_EQ_INT(len, need);
        CHECK_RC(rc, cap < need ? DX_ENOSPACE : 0);
        CHECK(buf[cap] == 0x5A);
        if (cap == need)
            CHECK_SPAN_STR(((dx_span){buf, len}), want);
    }
}

TEST(rfc6455_4_4_refusal_426_names_version_13) {
    expect_refusal(DX_EHS_BAD_VERSION, "HTTP/1.1 426 Upgrade Required\r\n"
                                       "Upgrade: websocket\r\n"
                                       "Connection: Upgrade, close\r\n"
                                       "Sec-WebSocket-Version: 13\r\n"
                                       "Content-Type: text/plain; charset=utf-8\r\n"
                                       "Content-Length: 32\r\n"
                                       "\r\n"
                                       "Sec-WebSocket-Version is not 13\n");
}

TEST(rfc9110_15_5_6_refusal_405_allows_get) {
    expect_refusal(DX_EHS_METHOD, "HTTP/1.1 405 Method Not Allowed\r\n"
                                  "Allow: GET\r\n"
                                  "Content-Type: text/plain; charset=utf-8\r\n"
                                  "Connection: close\r\n"
                                  "Content-Length: 28\r\n"
                                  "\r\n"
                                  "handshake method is not GET\n");
}

TEST(rfc6455_4_2_1_refusal_400_and_431_carry_the_reason) {
    expect_refusal(DX_EHS_BAD_KEY, "HTTP/1.1 400 Bad Request\r\n"
                                   "Content-Type: text/plain; charset=utf-8\r\n"
                                   "Connection: close\r\n"
                                   "Content-Length: 44\r\n"
                                   "\r\n"
                                   "Sec-WebSocket-Key is not 16 bytes in base64\n");
    expect_refusal(DX_EHTTP_HEAD_TOO_LARGE, "HTTP/1.1 431 Request Header Fields Too Large\r\n"
                                            "Content-Type: text/plain; charset=utf-8\r\n"
                                            "Connection: close\r\n"
                                            "Content-Length: 33\r\n"
                                            "\r\n"
                                            "HTTP head exceeds the size limit\n");
    uint8_t buf[64];
    size_t len;
    CHECK_RC(dx_handshake_write_refusal(DX_EHS_STATUS, buf, sizeof buf, &len), DX_EINVAL);
    CHECK_RC(dx_handshake_write_refusal(0, buf, sizeof buf, &len), DX_EINVAL);
}

TEST(refusals_reparse_with_their_status) {
    for (int err = -1300; err < -1000; err++) {
        int status = dx_handshake_refusal_status(err);
        if (status < 0)
            continue;
        uint8_t buf[512];
        size_t len;
        REQUIRE(dx_handshake_write_refusal(err, buf, sizeof buf, &len) == 0);
        dx_http_scan s = {0};
        size_t head_len;
        CHECK_RC(dx_http_scan_feed(&s, buf, len, &head_len), 0);
        dx_http_header h[16];
        dx_http_response resp;
        CHECK_RC(dx_http_parse_response(buf, head_len, &resp, h, 16), 0);
        CHECK_EQ_INT(resp.status, status);
        const dx_http_header *cl = dx_http_header_find(h, resp.num_headers, "Content-Length");
        REQUIRE(cl != NULL);
        CHECK_EQ_INT(strtoul((const char *)cl->value.ptr, NULL, 10), len - head_len);
        CHECK_EQ_INT(len - head_len, strlen(dx_strerror(err)) + 1);
    }
}

/* A checked §1.3 request, for the accept tests. The parsed head lives in static
 * storage so the spans stay valid. */
static dx_ws_request sample_ws;
static dx_http_request sample_http;
static dx_http_header sample_headers[16];
static void load_sample(void) {
    REQUIRE(dx_http_parse_request((const uint8_t *)rfc_request, sizeof rfc_request - 1,
                                  &sample_http, sample_headers, 16) == 0);
    REQUIRE(dx_handshake_check_request(&sample_http, &sample_ws) == 0);
}

TEST(rfc6455_4_2_2_accept_with_extensions_and_extra_headers) {
    load_sample();
    dx_http_header extra[] = {{dx_span_cstr("Set-Cookie"), dx_span_cstr("sid=1; HttpOnly")}};
    dx_accept_options opts = {
        .protocol = dx_span_cstr("superchat"),
        .extensions = dx_span_cstr("permessage-deflate; server_no_context_takeover"),
        .headers = extra,
        .num_headers = 1,
    };
    static const char want[] = "HTTP/1.1 101 Switching Protocols\r\n"
                               "Upgrade: websocket\r\n"
                               "Connection: Upgrade\r\n"
                               "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                               "Sec-WebSocket-Protocol: superchat\r\n"
                               "Sec-WebSocket-Extensions: permessage-deflate; "
                               "server_no_context_takeover\r\n"
                               "Set-Cookie: sid=1; HttpOnly\r\n"
                               "\r\n";
    size_t need = sizeof want - 1;
    uint8_t buf[512];
    for (size_t cap = 0; cap <= need; cap++) {
        memset(buf, 0x33, sizeof buf);
        size_t len = 0;
        CHECK_RC(dx_handshake_write_accept(&sample_ws, &opts, buf, cap, &len),
                 cap < need ? DX_ENOSPACE : 0);
        CHECK_EQ_INT(len, need);
        CHECK(buf[cap] == 0x33);
    }
    size_t len;
    CHECK_RC(dx_handshake_write_accept(&sample_ws, &opts, buf, sizeof buf, &len), 0);
    CHECK_SPAN_STR(((dx_span){buf, len}), want);

    /* no options: the bare 101 */
    CHECK_RC(dx_handshake_write_accept(&sample_ws, NULL, buf, sizeof buf, &len), 0);
    CHECK_SPAN_STR(((dx_span){buf, len}), "HTTP/1.1 101 Switching Protocols\r\n"
                                          "Upgrade: websocket\r\n"
                                          "Connection: Upgrade\r\n"
                                          "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
                                          "\r\n\r\n");
}

TEST(rfc6455_4_2_2_accept_refuses_what_it_cannot_send) {
    load_sample();
    uint8_t buf[512];
    size_t len;
    dx_accept_options o = {.protocol = dx_span_cstr("mqtt")}; /* not offered */
    CHECK_RC(dx_handshake_write_accept(&sample_ws, &o, buf, sizeof buf, &len), DX_EINVAL);
    o.protocol = dx_span_cstr("Chat"); /* subprotocol names are case-sensitive */
    CHECK_RC(dx_handshake_write_accept(&sample_ws, &o, buf, sizeof buf, &len), DX_EINVAL);
    o.protocol = dx_span_cstr("chat");
    o.extensions = dx_span_cstr("x\r\nSet-Cookie: a=b");
    CHECK_RC(dx_handshake_write_accept(&sample_ws, &o, buf, sizeof buf, &len), DX_EINVAL);
    o.extensions = dx_span_cstr("permessage-deflate;");
    CHECK_RC(dx_handshake_write_accept(&sample_ws, &o, buf, sizeof buf, &len), DX_EINVAL);
    o.extensions = dx_span_cstr("");
    dx_http_header inj[] = {{dx_span_cstr("X"), dx_span_cstr("1\r\nY: 2")}};
    o.headers = inj;
    o.num_headers = 1;
    CHECK_RC(dx_handshake_write_accept(&sample_ws, &o, buf, sizeof buf, &len), DX_EINVAL);
    static const char *const reserved[] = {"Sec-WebSocket-Accept", "sec-websocket-protocol",
                                           "Sec-WebSocket-Extensions", "Upgrade", "Connection"};
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++) {
        dx_http_header dup[] = {{dx_span_cstr(reserved[i]), dx_span_cstr("x")}};
        o.headers = dup;
        CHECK_RC(dx_handshake_write_accept(&sample_ws, &o, buf, sizeof buf, &len), DX_EINVAL);
    }
    o.headers = NULL;
    CHECK_RC(dx_handshake_write_accept(&sample_ws, &o, buf, sizeof buf, &len), DX_EINVAL);
    dx_ws_request unchecked;
    memset(&unchecked, 0, sizeof unchecked);
    CHECK_RC(dx_handshake_write_accept(&unchecked, NULL, buf, sizeof buf, &len), DX_EINVAL);
}

/* ---- client: the request -------------------------------------------------- */

TEST(rfc6455_4_1_key_from_the_random_source) {
    dx_client_handshake hs = sample_client();
    CHECK(strcmp(hs.key, sample_key) == 0);
    CHECK(strcmp(hs.accept, sample_accept) == 0);
}

static int failing_random(uint8_t *buf, size_t len, void *ctx) {
    (void)buf;
    (void)len;
    return *(int *)ctx;
}

TEST(rfc6455_4_1_failing_random_source_fails_init) {
    int err = -EIO;
    dx_random r = {failing_random, &err};
    dx_client_handshake hs;
    memset(&hs, 'Q', sizeof hs);
    CHECK_RC(dx_client_handshake_init(&hs, &r), -EIO);
    CHECK(hs.key[0] == 'Q' && hs.accept[DX_ACCEPT_LEN] == 'Q'); /* untouched */
    err = 1;                                                    /* a source breaking its contract */
    CHECK_RC(dx_client_handshake_init(&hs, &r), DX_EINVAL);
}

TEST(rfc6455_4_1_default_random_keys_are_fresh) {
    dx_client_handshake a, b;
    CHECK_RC(dx_client_handshake_init(&a, NULL), 0);
    CHECK_RC(dx_client_handshake_init(&b, NULL), 0);
    CHECK_EQ_INT(strlen(a.key), DX_KEY_LEN);
    CHECK_EQ_INT(strlen(a.accept), DX_ACCEPT_LEN);
    CHECK(strcmp(a.key, b.key) != 0);
    CHECK(a.key[22] == '=' && a.key[23] == '=');
    char acc[DX_ACCEPT_LEN];
    dx_handshake_accept_key(dx_span_cstr(a.key), acc);
    CHECK_MEM(acc, a.accept, DX_ACCEPT_LEN);
}

static int write_req(const dx_request_options *o, char *out, size_t cap) {
    dx_client_handshake hs = sample_client();
    size_t len = 0;
    int rc = dx_handshake_write_request(&hs, o, (uint8_t *)out, cap - 1, &len);
    out[rc == 0 ? len : 0] = '\0';
    return rc;
}

TEST(rfc6455_4_1_request_exact_bytes) {
    static const char *const protos[] = {"chat", "superchat"};
    dx_http_header extra[] = {{dx_span_cstr("Authorization"), dx_span_cstr("Bearer t")}};
    dx_request_options o = {
        .host = "server.example.com",
        .resource = "/chat",
        .origin = "http://example.com",
        .protocols = protos,
        .num_protocols = 2,
        .extensions = "permessage-deflate; client_max_window_bits",
        .headers = extra,
        .num_headers = 1,
    };
    static const char want[] = "GET /chat HTTP/1.1\r\n"
                               "Host: server.example.com\r\n"
                               "Upgrade: websocket\r\n"
                               "Connection: Upgrade\r\n"
                               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                               "Sec-WebSocket-Version: 13\r\n"
                               "Origin: http://example.com\r\n"
                               "Sec-WebSocket-Protocol: chat, superchat\r\n"
                               "Sec-WebSocket-Extensions: permessage-deflate; "
                               "client_max_window_bits\r\n"
                               "Authorization: Bearer t\r\n"
                               "\r\n";
    dx_client_handshake hs = sample_client();
    size_t need = sizeof want - 1;
    uint8_t buf[512];
    for (size_t cap = 0; cap <= need; cap++) {
        memset(buf, 0x77, sizeof buf);
        size_t len = 0;
        CHECK_RC(dx_handshake_write_request(&hs, &o, buf, cap, &len), cap < need ? DX_ENOSPACE : 0);
        CHECK_EQ_INT(len, need);
        CHECK(buf[cap] == 0x77);
    }
    size_t len;
    CHECK_RC(dx_handshake_write_request(&hs, &o, buf, sizeof buf, &len), 0);
    CHECK_SPAN_STR(((dx_span){buf, len}), want);
    /* the minimal request */
    dx_request_options m = {.host = "h"};
    char out[512];
    CHECK_RC(write_req(&m, out, sizeof out), 0);
    CHECK(strcmp(out, "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n") == 0);
}

/* The Host line of the request written for these options. */
static void expect_host(const char *host, uint16_t port, bool secure, const char *want) {
    dx_request_options o = {.host = host, .port = port, .secure = secure};
    char out[512];
    REQUIRE(write_req(&o, out, sizeof out) == 0);
    const char *h = strstr(out, "\r\nHost: ");
    REQUIRE(h != NULL);
    h += 8;
    const char *e = strstr(h, "\r\n");
    CHECK_SPAN_STR(((dx_span){(const uint8_t *)h, (size_t)(e - h)}), want);
}

TEST(rfc6455_4_1_host_port_only_when_not_the_default) {
    expect_host("example.com", 0, false, "example.com");
    expect_host("example.com", 80, false, "example.com");
    expect_host("example.com", 443, false, "example.com:443");
    expect_host("example.com", 0, true, "example.com");
    expect_host("example.com", 443, true, "example.com");
    expect_host("example.com", 80, true, "example.com:80");
    expect_host("example.com", 8080, false, "example.com:8080");
    expect_host("127.0.0.1", 65535, true, "127.0.0.1:65535");
}

TEST(rfc3986_3_2_2_ipv6_host_in_brackets) {
    expect_host("::1", 0, false, "[::1]");
    expect_host("::1", 9000, false, "[::1]:9000");
    expect_host("2001:db8::7", 443, true, "[2001:db8::7]");
    expect_host("::ffff:192.0.2.1", 0, false, "[::ffff:192.0.2.1]");
}

TEST(rfc6455_4_1_request_refuses_bad_fields_and_injection) {
    static const char *const one[] = {"chat"};
    static const char *const spaced[] = {"a b"};
    static const char *const dup[] = {"a", "a"};
    static const char *const empty[] = {""};
    static const char *const null_entry[] = {NULL};
    static const char *const crlf[] = {"a\r\nX: y"};
    dx_http_header bad_hdr[] = {{dx_span_cstr("X"), dx_span_cstr("a\nb")}};
    dx_http_header host_hdr[] = {{dx_span_cstr("host"), dx_span_cstr("evil")}};
    dx_http_header key_hdr[] = {{dx_span_cstr("Sec-WebSocket-Key"), dx_span_cstr("x")}};
    dx_http_header ver_hdr[] = {{dx_span_cstr("Sec-WebSocket-Version"), dx_span_cstr("8")}};
    dx_http_header name_hdr[] = {{dx_span_cstr("X Y"), dx_span_cstr("1")}};
    const dx_request_options bad[] = {
        {.host = NULL},
        {.host = ""},
        {.host = "a b"},
        {.host = "a\r\nX: y"},
        {.host = "a/b"},
        {.host = "user@h"},
        {.host = "h?x"},
        {.host = "[::1]"},
        {.host = "fe80::1%eth0"},
        {.host = "h", .resource = "chat"},
        {.host = "h", .resource = ""},
        {.host = "h", .resource = "/a b"},
        {.host = "h", .resource = "/a\r\nX: y"},
        {.host = "h", .resource = "/a#frag"},
        {.host = "h", .resource = "/caf\xc3\xa9"},
        {.host = "h", .origin = "http://a\r\nX: y"},
        {.host = "h", .protocols = spaced, .num_protocols = 1},
        {.host = "h", .protocols = dup, .num_protocols = 2},
        {.host = "h", .protocols = empty, .num_protocols = 1},
        {.host = "h", .protocols = null_entry, .num_protocols = 1},
        {.host = "h", .protocols = crlf, .num_protocols = 1},
        {.host = "h", .protocols = NULL, .num_protocols = 1},
        {.host = "h", .extensions = "permessage-deflate;"},
        {.host = "h", .extensions = "x\r\nY: z"},
        {.host = "h", .headers = bad_hdr, .num_headers = 1},
        {.host = "h", .headers = host_hdr, .num_headers = 1},
        {.host = "h", .headers = key_hdr, .num_headers = 1},
        {.host = "h", .headers = ver_hdr, .num_headers = 1},
        {.host = "h", .headers = name_hdr, .num_headers = 1},
        {.host = "h", .headers = NULL, .num_headers = 1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char out[512];
        int rc = write_req(&bad[i], out, sizeof out);
        if (rc != DX_EINVAL)
            printf("    case %zu\n", i);
        CHECK_RC(rc, DX_EINVAL);
    }
    char out[512];
    dx_request_options ok = {.host = "h", .protocols = one, .num_protocols = 1, .origin = ""};
    CHECK_RC(write_req(&ok, out, sizeof out), 0);
    CHECK(strstr(out, "Origin") == NULL);
    CHECK_RC(write_req(NULL, out, sizeof out), DX_EINVAL);
    dx_client_handshake blank;
    memset(&blank, 0, sizeof blank);
    size_t len;
    CHECK_RC(dx_handshake_write_request(&blank, &ok, (uint8_t *)out, sizeof out, &len), DX_EINVAL);
}

/* ---- client: checking the response ---------------------------------------- */

#define R_101 "HTTP/1.1 101 Switching Protocols\r\n"
#define R_UPG "Upgrade: websocket\r\n"
#define R_CONN "Connection: Upgrade\r\n"
#define R_ACC "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"

static const char *const chat_protos[] = {"chat", "superchat"};
static const dx_request_options chat_opts = {
    .host = "server.example.com",
    .protocols = chat_protos,
    .num_protocols = 2,
    .extensions = "permessage-deflate; client_max_window_bits, x-webkit-deflate-frame",
};

/* The same offer, taking an answer without a subprotocol (the RFC's rule), for the
 * checks that are not about the subprotocol. */
static const dx_request_options chat_opts_optional = {
    .host = "server.example.com",
    .protocols = chat_protos,
    .num_protocols = 2,
    .extensions = "permessage-deflate; client_max_window_bits, x-webkit-deflate-frame",
    .protocol_optional = true,
};

TEST(rfc6455_1_3_example_response_is_accepted) {
    dx_ws_response r;
    CHECK_RC(check_resp(rfc_response, &chat_opts, &r), 0);
    CHECK_SPAN_STR(r.protocol, "chat");
    CHECK_SPAN_STR(r.extensions, "");
    CHECK_RC(check_resp(R_101 R_UPG R_CONN R_ACC "\r\n", NULL, &r), 0);
    CHECK_SPAN_STR(r.protocol, "");
}

TEST(rfc6455_4_1_check1_status_must_be_101) {
    CHECK_RC(check_resp("HTTP/1.1 200 OK\r\n" R_UPG R_CONN R_ACC "\r\n", &chat_opts, NULL),
             DX_EHS_STATUS);
    CHECK_RC(check_resp("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic\r\n\r\n", &chat_opts,
                        NULL),
             DX_EHS_STATUS);
    CHECK_RC(check_resp("HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\n\r\n",
                        &chat_opts, NULL),
             DX_EHS_STATUS);
}

TEST(rfc6455_4_1_check2_upgrade_websocket) {
    CHECK_RC(check_resp(R_101 R_CONN R_ACC "\r\n", &chat_opts_optional, NULL),
             DX_EHS_RESP_NO_UPGRADE);
    CHECK_RC(check_resp(R_101 "Upgrade: h2c\r\n" R_CONN R_ACC "\r\n", &chat_opts_optional, NULL),
             DX_EHS_RESP_NO_UPGRADE);
    CHECK_RC(check_resp(R_101 "Upgrade: websocket, h2c\r\n" R_CONN R_ACC "\r\n",
                        &chat_opts_optional, NULL),
             DX_EHS_RESP_NO_UPGRADE);
    CHECK_RC(check_resp(R_101 "Upgrade: \r\n" R_CONN R_ACC "\r\n", &chat_opts_optional, NULL),
             DX_EHS_RESP_NO_UPGRADE);
    CHECK_RC(
        check_resp(R_101 "Upgrade: WebSocket\r\n" R_CONN R_ACC "\r\n", &chat_opts_optional, NULL),
        0);
}

TEST(rfc6455_4_1_check3_connection_upgrade) {
    CHECK_RC(check_resp(R_101 R_UPG R_ACC "\r\n", &chat_opts_optional, NULL),
             DX_EHS_RESP_NO_CONNECTION);
    CHECK_RC(
        check_resp(R_101 R_UPG "Connection: close\r\n" R_ACC "\r\n", &chat_opts_optional, NULL),
        DX_EHS_RESP_NO_CONNECTION);
    CHECK_RC(check_resp(R_101 R_UPG "connection: keep-alive, UPGRADE\r\n" R_ACC "\r\n",
                        &chat_opts_optional, NULL),
             0);
}

TEST(rfc6455_4_1_check4_accept_must_match) {
    CHECK_RC(check_resp(R_101 R_UPG R_CONN "\r\n", &chat_opts, NULL), DX_EHS_NO_ACCEPT);
    CHECK_RC(check_resp(R_101 R_UPG R_CONN R_ACC R_ACC "\r\n", &chat_opts, NULL), DX_EHS_NO_ACCEPT);
    CHECK_RC(check_resp(R_101 R_UPG R_CONN
                        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo\r\n\r\n",
                        &chat_opts, NULL),
             DX_EHS_BAD_ACCEPT);
    CHECK_RC(check_resp(R_101 R_UPG R_CONN
                        "Sec-WebSocket-Accept: S3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
                        &chat_opts, NULL),
             DX_EHS_BAD_ACCEPT);
    CHECK_RC(check_resp(R_101 R_UPG R_CONN "Sec-WebSocket-Accept: \r\n\r\n", &chat_opts, NULL),
             DX_EHS_BAD_ACCEPT);
    /* the key itself, echoed back, is not the accept */
    CHECK_RC(check_resp(R_101 R_UPG R_CONN "Sec-WebSocket-Accept: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
                        &chat_opts, NULL),
             DX_EHS_BAD_ACCEPT);
}

TEST(rfc6455_4_1_check5_extensions_must_have_been_offered) {
    dx_ws_response r;
    CHECK_RC(check_resp(R_101 R_UPG R_CONN R_ACC "Sec-WebSocket-Extensions: permessage-deflate; "
                                                 "server_no_context_takeover\r\n\r\n",
                        &chat_opts_optional, &r),
             0);
    CHECK_SPAN_STR(r.extensions, "permessage-deflate; server_no_context_takeover");
    CHECK_RC(check_resp(R_101 R_UPG R_CONN R_ACC
                        "Sec-WebSocket-Extensions: X-WebKit-Deflate-Frame\r\n\r\n",
                        &chat_opts_optional, NULL),
             0);
    CHECK_RC(check_resp(R_101 R_UPG R_CONN R_ACC "Sec-WebSocket-Extensions: x-other\r\n\r\n",
                        &chat_opts_optional, NULL),
             DX_EHS_EXTENSION_NOT_OFFERED);
    CHECK_RC(check_resp(R_101 R_UPG R_CONN R_ACC
                        "Sec-WebSocket-Extensions: permessage-deflate, x-other\r\n\r\n",
                        &chat_opts_optional, NULL),
             DX_EHS_EXTENSION_NOT_OFFERED);
    CHECK_RC(check_resp(R_101 R_UPG R_CONN R_ACC
                        "Sec-WebSocket-Extensions: permessage-deflate;\r\n\r\n",
                        &chat_opts_optional, NULL),
             DX_EHS_EXTENSION_NOT_OFFERED);
    CHECK_RC(check_resp(R_101 R_UPG R_CONN R_ACC "Sec-WebSocket-Extensions: \r\n\r\n",
                        &chat_opts_optional, NULL),
             DX_EHS_EXTENSION_NOT_OFFERED);
    /* §11.3.2: at most once in a response */
    CHECK_RC(check_resp(R_101 R_UPG R_CONN R_ACC
                        "Sec-WebSocket-Extensions: permessage-deflate\r\n"
                        "Sec-WebSocket-Extensions: x-webkit-deflate-frame\r\n\r\n",
                        &chat_opts_optional, NULL),
             DX_EHS_EXTENSION_NOT_OFFERED);
    /* none offered */
    CHECK_RC(check_resp(R_101 R_UPG R_CONN R_ACC
                        "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
                        NULL, NULL),
             DX_EHS_EXTENSION_NOT_OFFERED);
}

TEST(rfc6455_4_1_check6_subprotocol_must_have_been_offered) {
    dx_ws_response r;
    CHECK_RC(check_resp(R_101 R_UPG R_CONN R_ACC "Sec-WebSocket-Protocol: superchat\r\n\r\n",
                        &chat_opts, &r),
             0);
    CHECK_SPAN_STR(r.protocol, "superchat");
    CHECK_RC(check_resp(R_101 R_UPG R_CONN R_ACC "Sec-WebSocket-Protocol: mqtt\r\n\r\n", &chat_opts,
                        NULL),
             DX_EHS_PROTOCOL_NOT_OFFERED);
    CHECK_RC(check_resp(R_101 R_UPG R_CONN R_ACC "Sec-WebSocket-Protocol: Chat\r\n\r\n", &chat_opts,
                        NULL),
             DX_EHS_PROTOCOL_NOT_OFFERED);
    CHECK_RC(check_resp(R_101 R_UPG R_CONN R_ACC "Sec-WebSocket-Protocol: chat, superchat\r\n\r\n",
                        &chat_opts, NULL),
             DX_EHS_PROTOCOL_NOT_OFFERED);
    CHECK_RC(
        check_resp(R_101 R_UPG R_CONN R_ACC "Sec-WebSocket-Protocol: \r\n\r\n", &chat_opts, NULL),
        DX_EHS_PROTOCOL_NOT_OFFERED);
    /* §11.3.4: at most once in a response */
    CHECK_RC(check_resp(R_101 R_UPG R_CONN R_ACC "Sec-WebSocket-Protocol: chat\r\n"
                                                 "Sec-WebSocket-Protocol: chat\r\n\r\n",
                        &chat_opts, NULL),
             DX_EHS_PROTOCOL_NOT_OFFERED);
    /* a protocol when we offered none */
    CHECK_RC(
        check_resp(R_101 R_UPG R_CONN R_ACC "Sec-WebSocket-Protocol: chat\r\n\r\n", NULL, NULL),
        DX_EHS_PROTOCOL_NOT_OFFERED);
    dx_request_options no_protos = {.host = "h"};
    CHECK_RC(check_resp(R_101 R_UPG R_CONN R_ACC "Sec-WebSocket-Protocol: chat\r\n\r\n", &no_protos,
                        NULL),
             DX_EHS_PROTOCOL_NOT_OFFERED);
}

/* The Fetch standard's "establish a WebSocket connection" (what browsers do): an
 * answer without Sec-WebSocket-Protocol fails when the request offered some. */
TEST(fetch_websocket_subprotocol_offered_answer_without_one_fails) {
    CHECK_RC(check_resp(R_101 R_UPG R_CONN R_ACC "\r\n", &chat_opts, NULL), DX_EHS_NO_PROTOCOL);
    /* the RFC 6455 §4.1 rule, on request */
    dx_ws_response r;
    CHECK_RC(check_resp(R_101 R_UPG R_CONN R_ACC "\r\n", &chat_opts_optional, &r), 0);
    CHECK_SPAN_STR(r.protocol, "");
    /* nothing offered: nothing expected */
    dx_request_options none = {.host = "h"};
    CHECK_RC(check_resp(R_101 R_UPG R_CONN R_ACC "\r\n", &none, NULL), 0);
    CHECK_RC(check_resp(R_101 R_UPG R_CONN R_ACC "\r\n", NULL, NULL), 0);
    /* a protocol that was offered still has to match, optional or not */
    CHECK_RC(check_resp(R_101 R_UPG R_CONN R_ACC "Sec-WebSocket-Protocol: mqtt\r\n\r\n",
                        &chat_opts_optional, NULL),
             DX_EHS_PROTOCOL_NOT_OFFERED);
    CHECK_EQ_INT(dx_handshake_refusal_status(DX_EHS_NO_PROTOCOL), 400);
}

/* The server's choice: the client's first offer that the server speaks. */
TEST(rfc6455_4_2_2_select_protocol_in_the_clients_order) {
    static const char req_head[] = "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
                                   "Connection: Upgrade\r\n"
                                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                   "Sec-WebSocket-Version: 13\r\n"
                                   "Sec-WebSocket-Protocol: v2.chat, chat\r\n"
                                   "Sec-WebSocket-Protocol: Chat\r\n\r\n";
    dx_http_header h[16];
    dx_http_request hreq;
    REQUIRE(dx_http_parse_request((const uint8_t *)req_head, sizeof req_head - 1, &hreq, h, 16) ==
            0);
    dx_ws_request req;
    REQUIRE(dx_handshake_check_request(&hreq, &req) == 0);
    static const char *const both[] = {"chat", "v2.chat"};
    static const char *const upper[] = {"Chat"};
    static const char *const other[] = {"mqtt", "CHAT"};
    dx_span out = dx_span_cstr("junk");
    CHECK_RC(dx_handshake_select_protocol(&req, both, 2, &out), 0);
    CHECK_SPAN_STR(out, "v2.chat"); /* the client listed it first */
    CHECK_RC(dx_handshake_select_protocol(&req, upper, 1, &out), 0);
    CHECK_SPAN_STR(out, "Chat"); /* exact, case-sensitive */
    CHECK_RC(dx_handshake_select_protocol(&req, other, 2, &out), DX_EHS_NO_PROTOCOL);
    CHECK_SPAN_STR(out, "");
    CHECK_RC(dx_handshake_select_protocol(&req, NULL, 0, &out), DX_EHS_NO_PROTOCOL);
    CHECK_RC(dx_handshake_select_protocol(&req, NULL, 1, &out), DX_EINVAL);
    CHECK_RC(dx_handshake_select_protocol(NULL, both, 2, &out), DX_EINVAL);
    CHECK_RC(dx_handshake_select_protocol(&req, both, 2, NULL), DX_EINVAL);
    req.num_protocols = 0; /* a client that offered none gets none, whatever we speak */
    CHECK_RC(dx_handshake_select_protocol(&req, both, 2, &out), 0);
    CHECK_SPAN_STR(out, "");
}

TEST(rfc6455_4_1_response_checks_in_order) {
    /* a response wrong in every way reports the first check, then the next... */
    CHECK_RC(check_resp("HTTP/1.1 200 OK\r\nSec-WebSocket-Protocol: x\r\n\r\n", &chat_opts, NULL),
             DX_EHS_STATUS);
    CHECK_RC(check_resp(R_101 "Sec-WebSocket-Protocol: x\r\n\r\n", &chat_opts, NULL),
             DX_EHS_RESP_NO_UPGRADE);
    CHECK_RC(check_resp(R_101 R_UPG "Sec-WebSocket-Protocol: x\r\n\r\n", &chat_opts, NULL),
             DX_EHS_RESP_NO_CONNECTION);
    CHECK_RC(check_resp(R_101 R_UPG R_CONN "Sec-WebSocket-Protocol: x\r\n\r\n", &chat_opts, NULL),
             DX_EHS_NO_ACCEPT);
    CHECK_RC(check_resp(R_101 R_UPG R_CONN R_ACC "Sec-WebSocket-Protocol: x\r\n"
                                                 "Sec-WebSocket-Extensions: y\r\n\r\n",
                        &chat_opts, NULL),
             DX_EHS_EXTENSION_NOT_OFFERED);
}

/* ---- round trip ----------------------------------------------------------- */

/* client request -> server check -> accept -> client check, every head fed
 * whole, bytewise and at random splits. */
TEST(rfc6455_4_round_trip_client_server_client) {
    static const char *const protos[] = {"v2.chat", "v1.chat"};
    dx_request_options o = {
        .host = "::1",
        .port = 9001,
        .resource = "/ws/room?id=42",
        .origin = "https://app.example",
        .protocols = protos,
        .num_protocols = 2,
        .extensions = "permessage-deflate; client_max_window_bits",
    };
    for (int si = 0; si < 3; si++) {
        dx_client_handshake hs;
        REQUIRE(dx_client_handshake_init(&hs, NULL) == 0);
        uint8_t req_buf[1024];
        size_t req_len;
        REQUIRE(dx_handshake_write_request(&hs, &o, req_buf, sizeof req_buf, &req_len) == 0);

        /* server */
        uint8_t *g = dx_guard_alloc(req_buf, req_len);
        size_t head_len = scan_head(g, req_len, dx_all_splits[si]);
        CHECK_EQ_INT(head_len, req_len);
        dx_http_header h[32];
        dx_http_request req;
        CHECK_RC(dx_http_parse_request(g, head_len, &req, h, 32), 0);
        dx_ws_request ws;
        CHECK_RC(dx_handshake_check_request(&req, &ws), 0);
        CHECK_SPAN_STR(ws.path, "/ws/room");
        CHECK_SPAN_STR(ws.query, "id=42");
        CHECK_SPAN_STR(ws.host, "[::1]:9001");
        CHECK_SPAN_STR(ws.origin, "https://app.example");
        CHECK_SPAN_STR(ws.key, hs.key);
        REQUIRE(ws.num_protocols == 2 && ws.num_extensions == 1);
        CHECK_SPAN_STR(ws.extensions[0].name, "permessage-deflate");
        dx_accept_options ao = {
            .protocol = ws.protocols[1],
            .extensions = dx_span_cstr("permessage-deflate; client_max_window_bits=12"),
        };
        uint8_t resp_buf[1024];
        size_t resp_len;
        CHECK_RC(dx_handshake_write_accept(&ws, &ao, resp_buf, sizeof resp_buf, &resp_len), 0);
        dx_guard_free(g, req_len);

        /* client; the first frame may follow the head in the same read */
        memcpy(resp_buf + resp_len, "\x81\x02hi", 4);
        g = dx_guard_alloc(resp_buf, resp_len + 4);
        head_len = scan_head(g, resp_len + 4, dx_all_splits[si]);
        CHECK_EQ_INT(head_len, resp_len);
        dx_http_response resp;
        CHECK_RC(dx_http_parse_response(g, head_len, &resp, h, 32), 0);
        dx_ws_response wr;
        CHECK_RC(dx_handshake_check_response(&hs, &o, &resp, &wr), 0);
        CHECK_SPAN_STR(wr.protocol, "v1.chat");
        CHECK_SPAN_STR(wr.extensions, "permessage-deflate; client_max_window_bits=12");

        /* a different client (another key) must refuse the same answer */
        dx_client_handshake other;
        REQUIRE(dx_client_handshake_init(&other, NULL) == 0);
        CHECK_RC(dx_handshake_check_response(&other, &o, &resp, &wr), DX_EHS_BAD_ACCEPT);
        dx_guard_free(g, resp_len + 4);
    }
}
