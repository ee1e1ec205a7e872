/* The Sec-WebSocket-Extensions grammar (RFC 6455 §9.1). */
#include "test.h"

typedef struct parsed {
    dx_ext exts[8];
    dx_ext_param params[8];
    size_t num_exts, num_params;
} parsed;

/* Parse @value from a copy that ends at a guard page. The spans in @p point into
 * that copy, so callers check them through parse_ok() before it is freed. */
static int parse_at_guard(const char *value, size_t max_exts, size_t max_params) {
    size_t n = strlen(value);
    uint8_t *g = dx_guard_alloc(value, n);
    parsed p;
    memset(&p, 0, sizeof p);
    dx_span v = {g, n};
    int rc =
        dx_ext_parse_value(v, p.exts, max_exts, &p.num_exts, p.params, max_params, &p.num_params);
    dx_guard_free(g, n);
    return rc;
}

static int parse(const char *value, parsed *p) {
    memset(p, 0, sizeof *p);
    return dx_ext_parse_value(dx_span_cstr(value), p->exts, 8, &p->num_exts, p->params, 8,
                              &p->num_params);
}

static void expect_bad(const char *value) {
    int rc = parse_at_guard(value, 8, 8);
    if (rc != DX_EHS_BAD_EXTENSIONS)
        printf("    value \"%s\"\n", value);
    CHECK_RC(rc, DX_EHS_BAD_EXTENSIONS);
}

static void expect_value(const dx_ext_param *prm, const char *want) {
    char out[64];
    size_t len = 0;
    CHECK_RC(dx_ext_param_value(prm, out, sizeof out, &len), 0);
    CHECK_EQ_INT(len, strlen(want));
    CHECK(strcmp(out, want) == 0);
}

TEST(rfc6455_9_1_example_foo_bar_baz) {
    parsed p;
    CHECK_RC(parse("foo, bar; baz=2", &p), 0);
    REQUIRE(p.num_exts == 2);
    CHECK_SPAN_STR(p.exts[0].name, "foo");
    CHECK_EQ_INT(p.exts[0].num_params, 0);
    CHECK_SPAN_STR(p.exts[1].name, "bar");
    REQUIRE(p.exts[1].num_params == 1);
    CHECK(p.exts[1].params == &p.params[0]);
    CHECK_SPAN_STR(p.exts[1].params[0].name, "baz");
    CHECK(p.exts[1].params[0].has_value);
    CHECK(!p.exts[1].params[0].quoted);
    CHECK_SPAN_STR(p.exts[1].params[0].value, "2");
    CHECK_EQ_INT(parse_at_guard("foo, bar; baz=2", 8, 8), 0);
}

TEST(rfc7692_permessage_deflate_offer) {
    parsed p;
    CHECK_RC(parse("permessage-deflate; client_max_window_bits; server_max_window_bits=10, "
                   "permessage-deflate; client_max_window_bits",
                   &p),
             0);
    REQUIRE(p.num_exts == 2);
    CHECK_EQ_INT(p.num_params, 3);
    CHECK_SPAN_STR(p.exts[0].name, "permessage-deflate");
    REQUIRE(p.exts[0].num_params == 2);
    CHECK_SPAN_STR(p.exts[0].params[0].name, "client_max_window_bits");
    CHECK(!p.exts[0].params[0].has_value);
    CHECK_SPAN_STR(p.exts[0].params[0].value, "");
    CHECK_SPAN_STR(p.exts[0].params[1].name, "server_max_window_bits");
    CHECK_SPAN_STR(p.exts[0].params[1].value, "10");
    REQUIRE(p.exts[1].num_params == 1);
    CHECK(p.exts[1].params == &p.params[2]);
    CHECK_SPAN_STR(p.exts[1].params[0].name, "client_max_window_bits");
}

TEST(rfc6455_9_1_quoted_string_value_is_unescaped) {
    parsed p;
    CHECK_RC(parse("x; a=\"b\\c\"; d=\"10\"; e=\"\\t\\o\\k\\e\\n\"", &p), 0);
    REQUIRE(p.num_exts == 1 && p.exts[0].num_params == 3);
    const dx_ext_param *a = &p.exts[0].params[0];
    CHECK(a->quoted && a->has_value);
    CHECK_SPAN_STR(a->value, "b\\c");
    expect_value(a, "bc");
    expect_value(&p.exts[0].params[1], "10");
    CHECK_SPAN_STR(p.exts[0].params[2].value, "\\t\\o\\k\\e\\n");
    expect_value(&p.exts[0].params[2], "token");
}

TEST(rfc6455_9_1_ows_around_separators) {
    parsed p;
    CHECK_RC(parse(" \tfoo ;  a = 1 \t;b= \"2\" , bar\t ", &p), 0);
    REQUIRE(p.num_exts == 2);
    CHECK_SPAN_STR(p.exts[0].name, "foo");
    REQUIRE(p.exts[0].num_params == 2);
    CHECK_SPAN_STR(p.exts[0].params[0].name, "a");
    CHECK_SPAN_STR(p.exts[0].params[0].value, "1");
    CHECK_SPAN_STR(p.exts[0].params[1].name, "b");
    CHECK_SPAN_STR(p.exts[0].params[1].value, "2");
    CHECK_SPAN_STR(p.exts[1].name, "bar");
}

TEST(rfc9110_5_6_1_empty_list_elements_are_tolerated) {
    parsed p;
    CHECK_RC(parse(", ,a", &p), 0);
    CHECK_EQ_INT(p.num_exts, 1);
    CHECK_RC(parse("a,,b,", &p), 0);
    CHECK_EQ_INT(p.num_exts, 2);
    CHECK_RC(parse("a ; x , , b ; y=1 ,\t,", &p), 0);
    CHECK_EQ_INT(p.num_exts, 2);
}

TEST(rfc6455_9_1_a_list_with_no_element_is_malformed) {
    expect_bad("");
    expect_bad(" ");
    expect_bad(",");
    expect_bad(" , ,\t");
}

TEST(rfc6455_9_1_grammar_violations) {
    expect_bad("a;");
    expect_bad("a; ");
    expect_bad("a;;b");
    expect_bad(";a");
    expect_bad("a=b");
    expect_bad("a b");
    expect_bad("a; b=");
    expect_bad("a; b= ");
    expect_bad("a; b=c d");
    expect_bad("a; b=c=d");
    expect_bad("a; b=1;");
    expect_bad("a, ;b");
    expect_bad("(a)");
    expect_bad("a/b");
    expect_bad("a\x80");
    expect_bad("a; b\x01");
    expect_bad("a; b=\"c\"d");
    expect_bad("a; =1");
    expect_bad("a; b=,");
}

TEST(rfc6455_9_1_quoted_value_must_be_a_token_once_unescaped) {
    expect_bad("a; b=\"\"");         /* empty is not a token */
    expect_bad("a; b=\"c d\"");      /* SP */
    expect_bad("a; b=\"c,d\"");      /* separator */
    expect_bad("a; b=\"c\\ d\"");    /* escaped SP is still SP */
    expect_bad("a; b=\"c\\\"d\"");   /* escaped DQUOTE */
    expect_bad("a; b=\"c\\\\d\"");   /* escaped backslash */
    expect_bad("a; b=\"\xc3\xa9\""); /* obs-text */
    expect_bad("a; b=\"c");          /* unterminated, ends at the guard page */
    expect_bad("a; b=\"c\\");        /* lone backslash at the end */
    expect_bad("a; b=\"c\\\"");      /* the closing quote is escaped */
    expect_bad("a; b=\"");
    expect_bad("a; \"b\"=1"); /* names are never quoted */
    expect_bad("\"a\"");
}

TEST(ext_parse_too_many) {
    CHECK_RC(parse_at_guard("a, b, c", 2, 8), DX_EHS_TOO_MANY);
    CHECK_RC(parse_at_guard("a, b", 2, 8), 0);
    CHECK_RC(parse_at_guard("a; x; y", 8, 1), DX_EHS_TOO_MANY);
    CHECK_RC(parse_at_guard("a; x, b; y", 8, 1), DX_EHS_TOO_MANY);
    CHECK_RC(parse_at_guard("a; x, b", 8, 1), 0);
    CHECK_RC(parse_at_guard("a", 0, 0), DX_EHS_TOO_MANY);
    size_t ne = 0, np = 0;
    CHECK_RC(dx_ext_parse_value(dx_span_cstr("a"), NULL, 5, &ne, NULL, 5, &np), DX_EHS_TOO_MANY);
}

TEST(ext_parse_value_appends_and_commits_only_on_success) {
    dx_ext exts[4];
    dx_ext_param params[4];
    size_t ne = 0, np = 0;
    CHECK_RC(dx_ext_parse_value(dx_span_cstr("a; x=1"), exts, 4, &ne, params, 4, &np), 0);
    CHECK_RC(dx_ext_parse_value(dx_span_cstr("b; y; z"), exts, 4, &ne, params, 4, &np), 0);
    CHECK_EQ_INT(ne, 2);
    CHECK_EQ_INT(np, 3);
    CHECK(exts[1].params == &params[1]);
    CHECK_SPAN_STR(exts[1].params[1].name, "z");
    CHECK_RC(dx_ext_parse_value(dx_span_cstr("c; w, d;"), exts, 4, &ne, params, 4, &np),
             DX_EHS_BAD_EXTENSIONS);
    CHECK_EQ_INT(ne, 2);
    CHECK_EQ_INT(np, 3);
    CHECK_RC(dx_ext_parse_value(dx_span_cstr("c, d, e"), exts, 4, &ne, params, 4, &np),
             DX_EHS_TOO_MANY);
    CHECK_EQ_INT(ne, 2);
    ne = 5;
    CHECK_RC(dx_ext_parse_value(dx_span_cstr("c"), exts, 4, &ne, params, 4, &np), DX_EINVAL);
}

static dx_http_header hdr(const char *n, const char *v) {
    dx_http_header h = {dx_span_cstr(n), dx_span_cstr(v)};
    return h;
}

TEST(rfc6455_9_1_header_lines_form_one_list) {
    dx_http_header h[] = {hdr("Host", "x"), hdr("Sec-WebSocket-Extensions", "a; p=1"),
                          hdr("X", "nope, (bad"), hdr("sec-websocket-extensions", " , b")};
    dx_ext exts[4];
    dx_ext_param params[4];
    size_t ne = 99;
    CHECK_RC(dx_ext_parse(h, 4, exts, 4, params, 4, &ne), 0);
    REQUIRE(ne == 2);
    CHECK_SPAN_STR(exts[0].name, "a");
    CHECK_SPAN_STR(exts[0].params[0].value, "1");
    CHECK_SPAN_STR(exts[1].name, "b");
    CHECK_EQ_INT(exts[1].num_params, 0);
    /* no header: no extensions */
    CHECK_RC(dx_ext_parse(h, 1, exts, 4, params, 4, &ne), 0);
    CHECK_EQ_INT(ne, 0);
    /* an empty line next to a non-empty one is an empty element */
    dx_http_header e[] = {hdr("Sec-WebSocket-Extensions", ""),
                          hdr("Sec-WebSocket-Extensions", "c")};
    CHECK_RC(dx_ext_parse(e, 2, exts, 4, params, 4, &ne), 0);
    CHECK_EQ_INT(ne, 1);
    /* but lines with no element at all make an empty 1# list */
    CHECK_RC(dx_ext_parse(e, 1, exts, 4, params, 4, &ne), DX_EHS_BAD_EXTENSIONS);
    dx_http_header bad[] = {hdr("Sec-WebSocket-Extensions", "a"),
                            hdr("Sec-WebSocket-Extensions", "b;")};
    CHECK_RC(dx_ext_parse(bad, 2, exts, 4, params, 4, &ne), DX_EHS_BAD_EXTENSIONS);
    CHECK_RC(dx_ext_parse(h, 4, exts, 1, params, 4, &ne), DX_EHS_TOO_MANY);
}

/* The header arrives in a request head fed whole, bytewise and split at random. */
TEST(rfc6455_9_1_extensions_in_a_head_at_every_split) {
    static const char head[] = "GET / HTTP/1.1\r\n"
                               "Sec-WebSocket-Extensions: permessage-deflate; "
                               "client_max_window_bits=\"15\", x-y\r\n"
                               "Sec-WebSocket-Extensions: z\r\n"
                               "\r\n";
    size_t n = sizeof head - 1;
    for (int si = 0; si < 3; si++) {
        uint8_t *g = dx_guard_alloc(head, n);
        dx_http_scan s = {0};
        size_t fed = 0, head_len = 0;
        int rc = DX_EINCOMPLETE;
        while (rc == DX_EINCOMPLETE && fed < n) {
            fed += dx_split_next(dx_all_splits[si], n - fed);
            rc = dx_http_scan_feed(&s, g, fed, &head_len);
        }
        CHECK_RC(rc, 0);
        dx_http_header h[4];
        dx_http_request req;
        CHECK_RC(dx_http_parse_request(g, head_len, &req, h, 4), 0);
        dx_ext exts[4];
        dx_ext_param params[4];
        size_t ne = 0;
        CHECK_RC(dx_ext_parse(req.headers, req.num_headers, exts, 4, params, 4, &ne), 0);
        REQUIRE(ne == 3);
        CHECK_SPAN_STR(exts[0].name, "permessage-deflate");
        CHECK(exts[0].params[0].quoted);
        expect_value(&exts[0].params[0], "15");
        CHECK_SPAN_STR(exts[1].name, "x-y");
        CHECK_SPAN_STR(exts[2].name, "z");
        dx_guard_free(g, n);
    }
}

TEST(ext_param_value_sizes) {
    parsed p;
    CHECK_RC(parse("a; q=\"x\\yz\"; t=abc; n", &p), 0);
    REQUIRE(p.num_params == 3);
    char out[8];
    size_t len = 0;
    memset(out, 'Z', sizeof out);
    CHECK_RC(dx_ext_param_value(&p.params[0], out, 3, &len), DX_ENOSPACE); /* no room for NUL */
    CHECK_EQ_INT(len, 3);
    CHECK(out[0] == 'Z');
    CHECK_RC(dx_ext_param_value(&p.params[0], out, 4, &len), 0);
    CHECK_EQ_INT(len, 3);
    CHECK(strcmp(out, "xyz") == 0);
    CHECK_RC(dx_ext_param_value(&p.params[1], out, 4, &len), 0);
    CHECK(strcmp(out, "abc") == 0);
    CHECK_RC(dx_ext_param_value(&p.params[1], NULL, 0, &len), DX_ENOSPACE);
    CHECK_EQ_INT(len, 3);
    CHECK_RC(dx_ext_param_value(&p.params[2], out, sizeof out, &len), DX_EINVAL);
}
