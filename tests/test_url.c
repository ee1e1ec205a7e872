/*
 * Tests for the WebSocket URL parser (src/proto/url.c): the WHATWG URL Standard's basic URL
 * parser for ws/wss, as `new WebSocket(url)` runs it. Test names cite the URL Standard's
 * section or state names (and the WebSockets Standard's constructor steps).
 *
 * Most cases are rows of tables: input -> accepted or the error code, the serialised host
 * (IPv6 in brackets, like URL.hostname), the port, the request target and the userinfo.
 * Every row is parsed from a copy that ends at a guard page, and so is every prefix of it;
 * every writer writes into a buffer of exactly the size it asked for, also ending at a
 * guard page; every accepted URL, written back out, must parse to itself.
 *
 * The expectations were taken from Chromium 156 (new URL(), new WebSocket(), and the request
 * line it sends), except where a comment says duplex differs and why. With DX_URL_TABLE=1
 * in the environment every row is also printed as a "URLCASE ..." line with what duplex
 * produced, which tests/interop/url_chromium.js compares with Chromium itself.
 */
#include "test.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

typedef struct url_case {
    const char *in;       /* the input */
    size_t len;           /* its length (rows may hold NUL bytes) */
    int rc;               /* what dx_url_parse() returns */
    const char *host;     /* the serialised host: IPv6 in brackets */
    unsigned port;        /* dx_url.port: 80 or 443 for the default */
    const char *target;   /* the request target */
    const char *userinfo; /* what dx_url_write_userinfo() writes */
} url_case;

#define OK(in, host, port, target)                                                                 \
    { in, sizeof(in) - 1, 0, host, port, target, "" }
#define OKU(in, host, port, target, userinfo)                                                      \
    { in, sizeof(in) - 1, 0, host, port, target, userinfo }
#define BAD(in, rc)                                                                                \
    { in, sizeof(in) - 1, rc, NULL, 0, NULL, NULL }

static bool is_url_error(int rc) {
    return rc == DX_EURL_SCHEME || rc == DX_EURL_HOST || rc == DX_EURL_IDNA || rc == DX_EURL_PORT ||
           rc == DX_EURL_FRAGMENT;
}

static void print_hex(const char *label, const void *p, size_t n) {
    printf(" %s=", label);
    for (size_t i = 0; i < n; i++)
        printf("%02x", ((const uint8_t *)p)[i]);
}

typedef int (*url_writer)(const dx_url *, char *, size_t, size_t *);

/*
 * Write with @fn into a buffer of exactly the size it needs, ending at a guard page, after
 * checking that a smaller one is refused with the size needed. The result goes to @got
 * (NUL-terminated, cut at @cap). Returns the length written.
 */
static size_t write_exact(url_writer fn, const dx_url *u, size_t stored, char *got, size_t cap) {
    size_t len = 12345;
    char one[1];
    CHECK_RC(fn(u, one, 0, &len), DX_ENOSPACE);
    CHECK_EQ_INT(len, stored);
    size_t len2 = 0;
    uint8_t *zero = calloc(1, len + 1);
    if (!zero)
        abort();
    if (len > 0) {
        uint8_t *g = dx_guard_alloc(zero, len);
        CHECK_RC(fn(u, (char *)g, len, &len2), DX_ENOSPACE); /* no room for the NUL */
        dx_guard_free(g, len);
    }
    uint8_t *g = dx_guard_alloc(zero, len + 1);
    len2 = 0;
    CHECK_RC(fn(u, (char *)g, len + 1, &len2), 0);
    CHECK_EQ_INT(len2, len);
    CHECK(g[len] == '\0');
    CHECK_EQ_INT(strlen((const char *)g), len);
    snprintf(got, cap, "%s", (const char *)g);
    dx_guard_free(g, len + 1);
    free(zero);
    return len;
}

/* Parse p[0, n) from a guard-page copy; a failure must leave *out untouched. */
static int parse_guarded(const void *p, size_t n, dx_url *out) {
    uint8_t *g = dx_guard_alloc(p, n);
    dx_url tmp;
    memset(&tmp, 0xA5, sizeof tmp);
    int rc = dx_url_parse((dx_span){g, n}, &tmp);
    if (rc != 0) {
        uint8_t pat[sizeof tmp];
        memset(pat, 0xA5, sizeof pat);
        CHECK_MEM(&tmp, pat, sizeof pat);
    } else {
        /* the pieces as written lie inside the input */
        dx_span spans[] = {tmp.host_text, tmp.userinfo_text, tmp.path_text, tmp.query_text};
        for (size_t i = 0; i < N_OF(spans); i++)
            CHECK(spans[i].len == 0 || (spans[i].ptr >= g && spans[i].ptr + spans[i].len <= g + n));
        /* translate them to @p, which outlives the copy */
        dx_span *ps[] = {&tmp.host_text, &tmp.userinfo_text, &tmp.path_text, &tmp.query_text};
        for (size_t i = 0; i < N_OF(ps); i++)
            if (ps[i]->ptr)
                ps[i]->ptr = (const uint8_t *)p + (ps[i]->ptr - g);
        *out = tmp;
    }
    dx_guard_free(g, n);
    return rc;
}

/* The serialised host: the host writer's output, in brackets for IPv6. */
static void host_of(const dx_url *u, char *buf, size_t cap) {
    char h[1024];
    write_exact(dx_url_write_host, u, u->host_len, h, sizeof h);
    bool v6 = u->host_kind == DX_URL_HOST_IPV6;
    snprintf(buf, cap, "%s%s%s", v6 ? "[" : "", h, v6 ? "]" : "");
}

/* The whole URL as a browser serialises it (without a fragment). */
static void href_of(const dx_url *u, char *buf, size_t cap) {
    char host[1100], target[4096], ui[1024], port[8] = "";
    host_of(u, host, sizeof host);
    write_exact(dx_url_write_resource, u, u->resource_len, target, sizeof target);
    write_exact(dx_url_write_userinfo, u, u->userinfo_len, ui, sizeof ui);
    if (u->port_explicit)
        snprintf(port, sizeof port, ":%u", (unsigned)u->port);
    snprintf(buf, cap, "%s://%s%s%s%s%s", u->secure ? "wss" : "ws", ui, ui[0] ? "@" : "", host,
             port, target);
}

static void run_case(const url_case *c) {
    dx_url u;
    int rc = parse_guarded(c->in, c->len, &u);
    bool dump = getenv("DX_URL_TABLE") != NULL;
    char host[1100] = "", target[4096] = "", ui[1024] = "";
    if (rc == 0) {
        host_of(&u, host, sizeof host);
        write_exact(dx_url_write_resource, &u, u.resource_len, target, sizeof target);
        write_exact(dx_url_write_userinfo, &u, u.userinfo_len, ui, sizeof ui);
    }
    if (dump) {
        printf("URLCASE");
        print_hex("in", c->in, c->len);
        printf(" rc=%s", rc ? dx_err_name(rc) : "0");
        if (rc == 0) {
            print_hex("host", host, strlen(host));
            printf(" port=%s%u secure=%d", u.port_explicit ? "" : "default:", (unsigned)u.port,
                   u.secure);
            print_hex("target", target, strlen(target));
            print_hex("userinfo", ui, strlen(ui));
        }
        printf("\n");
    }
    bool ok = rc == c->rc;
    CHECK_RC(rc, c->rc);
    if (rc == 0 && c->rc == 0) {
        ok = ok && strcmp(host, c->host) == 0 && strcmp(target, c->target) == 0 &&
             strcmp(ui, c->userinfo) == 0 && u.port == c->port;
        CHECK(strcmp(host, c->host) == 0);
        CHECK(strcmp(target, c->target) == 0);
        CHECK(strcmp(ui, c->userinfo) == 0);
        CHECK_EQ_INT(u.port, c->port);
        CHECK(u.port_explicit == (u.port != (u.secure ? 443 : 80)));
        /* what a browser sends: '/', then printable ASCII without '#' */
        CHECK(target[0] == '/');
        for (const char *t = target; *t; t++)
            CHECK(*t > 0x20 && *t < 0x7F && *t != '#');
        /* the URL written back out is a fixed point */
        char href[8192], href2[8192];
        href_of(&u, href, sizeof href);
        dx_url v;
        CHECK_RC(parse_guarded(href, strlen(href), &v), 0);
        href_of(&v, href2, sizeof href2);
        CHECK(strcmp(href, href2) == 0);
        CHECK(v.secure == u.secure && v.port == u.port && v.host_kind == u.host_kind);
        CHECK_MEM(v.addr, u.addr, sizeof u.addr);
    }
    if (!ok) {
        printf("    %.*s: got %s", (int)c->len, c->in, rc ? dx_err_name(rc) : "0");
        if (rc == 0)
            printf(" host \"%s\" port %u target \"%s\" userinfo \"%s\"", host, (unsigned)u.port,
                   target, ui);
        printf("\n");
    }
    /* every prefix parses or fails with a URL error, never reading past its end */
    for (size_t k = 0; k < c->len; k++) {
        dx_url w;
        int r = parse_guarded(c->in, k, &w);
        CHECK(r == 0 || is_url_error(r));
    }
}

static void run_cases(const url_case *cases, size_t n) {
    for (size_t i = 0; i < n; i++)
        run_case(&cases[i]);
}

#define RUN(cases) run_cases(cases, N_OF(cases))

/* ---- basic URL parser: the input ------------------------------------------------------- */

TEST(whatwg_basic_url_parser_strips_c0_control_or_space_and_tab_newline) {
    static const url_case cases[] = {
        OK(" ws://h/ ", "h", 80, "/"),
        OK("\x01\x1f ws://h/a\x00\x7f \x00", "h", 80, "/a%00%7F"), /* inner ones are data */
        OK("ws://h/a\tb\nc\r", "h", 80, "/abc"),
        OK("w\ts://h", "h", 80, "/"),
        OK("ws:/\n/h\t:8\n0/", "h", 80, "/"),
        OK("ws://\th.\re\nx/", "h.ex", 80, "/"),
        OK("ws://[:\t:1]/", "[::1]", 80, "/"),
        OK("ws://%4\t1/", "a", 80, "/"),     /* "%41" once the tab is gone */
        OK("ws://h/%2\te/x", "h", 80, "/x"), /* "%2e": a dot segment */
        OK("ws://h/?a\tb", "h", 80, "/?ab"),
        OKU("ws://u\t:p\n@h", "h", 80, "/", "u:p"),
        BAD("ws://\t/", DX_EURL_HOST),
        BAD("\t", DX_EURL_SCHEME),
        BAD("", DX_EURL_SCHEME),
    };
    RUN(cases);
}

/* ---- scheme state, and the WebSocket constructor's scheme steps ------------------------- */

TEST(whatwg_scheme_state_ws_wss_any_case) {
    static const url_case cases[] = {
        OK("ws://h", "h", 80, "/"),
        OK("WS://h", "h", 80, "/"),
        OK("wss://h", "h", 443, "/"),
        OK("WsS://h:443/x", "h", 443, "/x"),
    };
    RUN(cases);
    dx_url u;
    REQUIRE(dx_url_parse(dx_span_cstr("WsS://h"), &u) == 0);
    CHECK(u.secure);
    REQUIRE(dx_url_parse(dx_span_cstr("wS://h"), &u) == 0);
    CHECK(!u.secure);
}

TEST(websockets_constructor_maps_http_to_ws_and_https_to_wss) {
    static const url_case cases[] = {
        OK("http://h/", "h", 80, "/"),      OK("HTTP://h:80/x", "h", 80, "/x"),
        OK("https://h/", "h", 443, "/"),    OK("HtTpS://h:443/x", "h", 443, "/x"),
        OK("http://h:443/", "h", 443, "/"),
    };
    RUN(cases);
    dx_url u;
    REQUIRE(dx_url_parse(dx_span_cstr("https://h"), &u) == 0);
    CHECK(u.secure);
    REQUIRE(dx_url_parse(dx_span_cstr("http://h"), &u) == 0);
    CHECK(!u.secure);
}

TEST(websockets_constructor_other_schemes_and_relative_urls_fail) {
    static const url_case cases[] = {
        BAD("ftp://h/", DX_EURL_SCHEME),   BAD("file:///x", DX_EURL_SCHEME),
        BAD("wsss://h", DX_EURL_SCHEME),   BAD("w://h", DX_EURL_SCHEME),
        BAD("://h", DX_EURL_SCHEME),       BAD("h/path", DX_EURL_SCHEME),
        BAD("/chat", DX_EURL_SCHEME),      BAD("//h/chat", DX_EURL_SCHEME),
        BAD("ws//h", DX_EURL_SCHEME),      BAD("wss", DX_EURL_SCHEME),
        BAD("ws+x://h", DX_EURL_SCHEME),   BAD("1ws://h", DX_EURL_SCHEME),
        BAD("ftp:x", DX_EURL_SCHEME),      BAD("javascript:alert(1)", DX_EURL_SCHEME),
        BAD("ws\x80://h", DX_EURL_SCHEME), BAD("#", DX_EURL_SCHEME),
        BAD("ftp://h#f", DX_EURL_SCHEME), /* the scheme is checked before the fragment */
    };
    RUN(cases);
}

/* ---- special authority (ignore) slashes state ------------------------------------------ */

TEST(whatwg_special_authority_ignore_slashes_state) {
    static const url_case cases[] = {
        OK("ws:h", "h", 80, "/"),        OK("ws:/h", "h", 80, "/"),
        OK("ws:///h", "h", 80, "/"),     OK("ws:\\\\h\\a\\b", "h", 80, "/a/b"),
        OK("ws:\\/h\\p", "h", 80, "/p"), OK("ws:////h//x", "h", 80, "//x"),
        OK("ws://h\\a", "h", 80, "/a"),  BAD("ws:", DX_EURL_HOST),
        BAD("ws:///", DX_EURL_HOST),     BAD("wss:/", DX_EURL_HOST),
        BAD("ws://", DX_EURL_HOST),      BAD("ws://?q", DX_EURL_HOST),
        BAD("ws://:80", DX_EURL_HOST),   BAD("ws://:80/", DX_EURL_HOST),
        BAD("ws://:80#f", DX_EURL_HOST), /* the URL fails before its fragment counts */
    };
    RUN(cases);
}

/* ---- authority state: userinfo ---------------------------------------------------------- */

TEST(whatwg_authority_state_userinfo_percent_encode_set) {
    static const url_case cases[] = {
        OKU("ws://u:p@h/", "h", 80, "/", "u:p"),
        OKU("ws://u@v@h/", "h", 80, "/", "u%40v"), /* the last '@' ends the userinfo */
        OKU("ws://u:p:q@h", "h", 80, "/", "u:p%3Aq"),
        OKU("ws://u:a@v:w@h", "h", 80, "/", "u:a%40v%3Aw"),
        OKU("ws://u s:p\"@h/", "h", 80, "/", "u%20s:p%22"),
        OKU("ws://a{b}[c]^|`;=<>@h", "h", 80, "/", "a%7Bb%7D%5Bc%5D%5E%7C%60%3B%3D%3C%3E"),
        OKU("ws://!$&()*+,-._~%zz@h", "h", 80, "/", "!$&()*+,-._~%zz"),
        /* the standard leaves "'" in the userinfo; Chromium alone encodes it (%27) */
        OKU("ws://u'x@h", "h", 80, "/", "u'x"),
        OKU("ws://\xc3\xa9:\x01@h", "h", 80, "/", "%C3%A9:%01"),
        OKU("ws://@h/", "h", 80, "/", ""),
        OKU("ws://:@h/", "h", 80, "/", ""),
        OKU("ws://u:@h/", "h", 80, "/", "u"),
        OKU("ws://:p@h/", "h", 80, "/", ":p"),
        OKU("wss://user:p%40ss@example.com:8443/x", "example.com", 8443, "/x", "user:p%40ss"),
        OKU("ws://u@[::1]:2", "[::1]", 2, "/", "u"),
        OK("ws://h/a@b", "h", 80, "/a@b"), /* '@' in the path is data */
        OK("ws://h?a@b", "h", 80, "/?a@b"),
        BAD("ws://user@/", DX_EURL_HOST),
        BAD("ws://user@", DX_EURL_HOST),
        BAD("ws://u@:80", DX_EURL_HOST),
        BAD("ws://[::1@h]", DX_EURL_HOST),
    };
    RUN(cases);
}

/* ---- host parsing: domains -------------------------------------------------------------- */

TEST(whatwg_host_parser_domain_lowercased_and_percent_decoded) {
    static const url_case cases[] = {
        OK("ws://H.Example.COM/", "h.example.com", 80, "/"),
        OK("ws://%41%42/", "ab", 80, "/"),
        OK("ws://a%2eb/", "a.b", 80, "/"),
        OK("ws://a_b!$&'()*+,;=.c/", "a_b!$&'()*+,;=.c", 80, "/"), /* Chromium: %2A for '*' */
        OK("ws://a\"b/", "a\"b", 80, "/"),
        OK("ws://a{b}/", "a{b}", 80, "/"),
        OK("ws://a`b~c-d/", "a`b~c-d", 80, "/"),
        OK("ws://a..b/", "a..b", 80, "/"),
        OK("ws://a.b./", "a.b.", 80, "/"),
        OK("ws://./", ".", 80, "/"),
        OK("ws://../", "..", 80, "/"),
        OK("ws://xn--a.com/", "xn--a.com", 80, "/"), /* ASCII: taken as written */
        OK("ws://XN--NXASMQ6B.com/", "xn--nxasmq6b.com", 80, "/"),
        OK("ws://localhost:9001/chat?x=1", "localhost", 9001, "/chat?x=1"),
        OK("ws://a-b_c~d.e!$&'()*+,;=%41:8080", "a-b_c~d.e!$&'()*+,;=a", 8080, "/"),
    };
    RUN(cases);
}

TEST(whatwg_forbidden_domain_code_point_fails) {
    static const url_case cases[] = {
        /* Chromium accepts a space (as "a%20b", which no resolver knows); the standard,
           Firefox and Safari refuse it, and so does duplex */
        BAD("ws://a b/", DX_EURL_HOST),
        BAD("ws://a%20b/", DX_EURL_HOST),
        BAD("ws://a%b/", DX_EURL_HOST),
        BAD("ws://%zz/", DX_EURL_HOST),
        BAD("ws://a%/", DX_EURL_HOST),
        BAD("ws://%4/", DX_EURL_HOST),
        BAD("ws://a%25b/", DX_EURL_HOST),
        BAD("ws://a<b/", DX_EURL_HOST),
        BAD("ws://a>b/", DX_EURL_HOST),
        BAD("ws://a^b/", DX_EURL_HOST),
        BAD("ws://a|b/", DX_EURL_HOST),
        BAD("ws://a[b/", DX_EURL_HOST),
        BAD("ws://a]b/", DX_EURL_HOST),
        BAD("ws://x[::1]/", DX_EURL_HOST),
        BAD("ws://a\x7f"
            "b/",
            DX_EURL_HOST),
        BAD("ws://a\x01"
            "b/",
            DX_EURL_HOST),
        BAD("ws://a\x00"
            "b/",
            DX_EURL_HOST),
        BAD("ws://a%2Fb/", DX_EURL_HOST),
        BAD("ws://a%3Ab/", DX_EURL_HOST),
        BAD("ws://a%40b/", DX_EURL_HOST),
        BAD("ws://a%5Cb/", DX_EURL_HOST),
        BAD("ws://a%00b/", DX_EURL_HOST),
        BAD("ws://a%09b/", DX_EURL_HOST),
        BAD("ws://%C3%A9|/", DX_EURL_HOST), /* forbidden wins over non-ASCII */
    };
    RUN(cases);
}

TEST(whatwg_domain_to_ascii_non_ascii_host_is_refused_as_idna) {
    /* a browser maps these through UTS #46 (ws://é.com is ws://xn--9ca.com); duplex does
       not carry its tables */
    static const url_case cases[] = {
        BAD("ws://\xc3\xa9.com/", DX_EURL_IDNA),
        BAD("ws://%C3%A9.com/", DX_EURL_IDNA),
        BAD("ws://\xef\xbd\x85.com/", DX_EURL_IDNA), /* fullwidth 'e': e.com in a browser */
        BAD("ws://a%ffb/", DX_EURL_IDNA),
        BAD("ws://\xff/", DX_EURL_IDNA),
        BAD("ws://\xc3\xa9:99999/", DX_EURL_IDNA), /* the host fails before the port */
    };
    RUN(cases);
}

/* ---- IPv4 parser ------------------------------------------------------------------------ */

TEST(whatwg_ipv4_parser_number_forms_are_normalised) {
    static const url_case cases[] = {
        OK("ws://127.0.0.1:9/a^b", "127.0.0.1", 9, "/a%5Eb"), /* issue 9's URL */
        OK("ws://127.1/", "127.0.0.1", 80, "/"), OK("ws://127.0.1/", "127.0.0.1", 80, "/"),
        OK("ws://0x7f.1/", "127.0.0.1", 80, "/"), OK("ws://0X7F.0.0.0x1/", "127.0.0.1", 80, "/"),
        OK("ws://017700000001/", "127.0.0.1", 80, "/"),
        OK("ws://2130706433/", "127.0.0.1", 80, "/"),
        OK("ws://0300.0250.0.1/", "192.168.0.1", 80, "/"), OK("ws://1234/", "0.0.4.210", 80, "/"),
        OK("ws://0x/", "0.0.0.0", 80, "/"), OK("ws://0/", "0.0.0.0", 80, "/"),
        OK("ws://00/", "0.0.0.0", 80, "/"), OK("ws://4294967295/", "255.255.255.255", 80, "/"),
        OK("ws://0xffffffff/", "255.255.255.255", 80, "/"),
        OK("ws://1.16777215/", "1.255.255.255", 80, "/"), OK("ws://1.2.3.4./", "1.2.3.4", 80, "/"),
        OK("ws://1.2.3.0x/", "1.2.3.0", 80, "/"), OK("ws://%31%32%37.1/", "127.0.0.1", 80, "/"),
        OK("ws://127.0.0.1:9001/", "127.0.0.1", 9001, "/"),
        OK("ws://255.255.255.255:1/", "255.255.255.255", 1, "/"),
        OK("ws://0000000000000000000000000000000000000000000001.2.3.4/", "1.2.3.4", 80, "/"),
        /* not a number at the end: a domain */
        OK("ws://1.2.3.4a/", "1.2.3.4a", 80, "/"), OK("ws://0x1g/", "0x1g", 80, "/"),
        OK("ws://1.0x1g/", "1.0x1g", 80, "/"), OK("ws://1e5/", "1e5", 80, "/"),
        OK("ws://1.2.3.4../", "1.2.3.4..", 80, "/"), /* only one trailing '.' is ignored */
    };
    RUN(cases);
    dx_url u;
    REQUIRE(dx_url_parse(dx_span_cstr("ws://0x7f.1/"), &u) == 0);
    CHECK(u.host_kind == DX_URL_HOST_IPV4);
    static const uint8_t lo[4] = {127, 0, 0, 1};
    CHECK_MEM(u.addr, lo, 4);
}

TEST(whatwg_ipv4_parser_failures) {
    static const url_case cases[] = {
        BAD("ws://1.2.3.4.5/", DX_EURL_HOST),   BAD("ws://1.2.3.256/", DX_EURL_HOST),
        BAD("ws://256.0.0.1/", DX_EURL_HOST),   BAD("ws://1.2.65536/", DX_EURL_HOST),
        BAD("ws://1.16777216/", DX_EURL_HOST),  BAD("ws://4294967296/", DX_EURL_HOST),
        BAD("ws://0x100000000/", DX_EURL_HOST), BAD("ws://99999999999999999999999/", DX_EURL_HOST),
        BAD("ws://foo.09/", DX_EURL_HOST),      BAD("ws://09/", DX_EURL_HOST),
        BAD("ws://08.1/", DX_EURL_HOST),        BAD("ws://1.2.3.09/", DX_EURL_HOST),
        BAD("ws://1..2.3/", DX_EURL_HOST),      BAD("ws://.1/", DX_EURL_HOST),
        BAD("ws://0x1g.1/", DX_EURL_HOST),
    };
    RUN(cases);
}

/* ---- IPv6 parser and serializer --------------------------------------------------------- */

TEST(whatwg_ipv6_parser_and_serializer_compressed_form) {
    static const url_case cases[] = {
        OK("ws://[::1]:9001/", "[::1]", 9001, "/"),
        OK("ws://[::1]:80/", "[::1]", 80, "/"),
        OK("ws://[0:0:0:0:0:0:0:1]/", "[::1]", 80, "/"),
        OK("ws://[::ffff:192.0.2.1]/x", "[::ffff:c000:201]", 80, "/x"),
        OK("ws://[FE80::aBcD]/", "[fe80::abcd]", 80, "/"),
        OK("ws://[1:0:0:2:0:0:0:3]/", "[1:0:0:2::3]", 80, "/"),
        OK("ws://[1:0:0:0:2:0:0:3]/", "[1::2:0:0:3]", 80, "/"),
        OK("ws://[0:0:1:0:0:1:0:0]/", "[::1:0:0:1:0:0]", 80, "/"),
        OK("ws://[1:2:3:4:5:6:7:8]/", "[1:2:3:4:5:6:7:8]", 80, "/"),
        OK("ws://[::1:2:3:4:5:6:7]/", "[0:1:2:3:4:5:6:7]", 80, "/"), /* one zero stays */
        OK("ws://[0001:0002::]/", "[1:2::]", 80, "/"),
        OK("ws://[1:2:3:4:5:6:1.2.3.4]/", "[1:2:3:4:5:6:102:304]", 80, "/"),
        OK("ws://[2001:db8::7]", "[2001:db8::7]", 80, "/"),
        OK("wss://[::]:443", "[::]", 443, "/"),
        OK("ws://[1::]", "[1::]", 80, "/"),
        OKU("wss://u:p@[2001:db8::1.2.3.4]:65535/a/b%20c?d=e&f=%2F", "[2001:db8::102:304]", 65535,
            "/a/b%20c?d=e&f=%2F", "u:p"),
    };
    RUN(cases);
    dx_url u;
    REQUIRE(dx_url_parse(dx_span_cstr("ws://[::ffff:192.0.2.1]"), &u) == 0);
    CHECK(u.host_kind == DX_URL_HOST_IPV6);
    static const uint8_t a[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1};
    CHECK_MEM(u.addr, a, 16);
}

TEST(whatwg_ipv6_parser_failures) {
    static const url_case cases[] = {
        BAD("ws://[]", DX_EURL_HOST),
        BAD("ws://[::1", DX_EURL_HOST),
        BAD("ws://[::1/", DX_EURL_HOST),
        BAD("ws://[::1]x", DX_EURL_HOST),
        BAD("ws://[::1]]", DX_EURL_HOST),
        BAD("ws://[fe80::1%25eth0]", DX_EURL_HOST), /* zone IDs are not URL syntax */
        BAD("ws://[fe80::1%eth0]", DX_EURL_HOST),
        BAD("ws://[v1.fe]", DX_EURL_HOST),
        BAD("ws://[1:2:3:4:5:6:7]", DX_EURL_HOST),
        BAD("ws://[1:2:3:4:5:6:7:8:9]", DX_EURL_HOST),
        BAD("ws://[1:2:3:4:5:6:7:8::]", DX_EURL_HOST),
        BAD("ws://[1::2::3]", DX_EURL_HOST),
        BAD("ws://[:1]", DX_EURL_HOST),
        BAD("ws://[1:]", DX_EURL_HOST),
        BAD("ws://[12345::1]", DX_EURL_HOST),
        BAD("ws://[1:::2]", DX_EURL_HOST),
        BAD("ws://[::1.2.3]", DX_EURL_HOST),
        BAD("ws://[::1.2.3.4.5]", DX_EURL_HOST),
        BAD("ws://[::01.2.3.4]", DX_EURL_HOST), /* Chromium alone takes the leading zero */
        BAD("ws://[::256.1.1.1]", DX_EURL_HOST),
        BAD("ws://[1:2:3:4:5:6:7:1.2.3.4]", DX_EURL_HOST),
        BAD("ws://[1.2.3.4]", DX_EURL_HOST),
        BAD("ws://[::g]", DX_EURL_HOST),
        BAD("ws://[%3A%3A1]", DX_EURL_HOST), /* not percent-decoded (Chromium alone does) */
        BAD("ws://[0000:0000:0000:0000:0000:0000:0000:0000:0000]", DX_EURL_HOST),
        BAD("ws://[0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000]", DX_EURL_HOST),
    };
    RUN(cases);
}

/* ---- port state ------------------------------------------------------------------------- */

TEST(whatwg_port_state_default_port_is_elided) {
    static const url_case cases[] = {
        OK("ws://h:80/", "h", 80, "/"),
        OK("ws://h:0080/", "h", 80, "/"),
        OK("wss://h:443/", "h", 443, "/"),
        OK("ws://h:/x", "h", 80, "/x"), /* empty: the default */
        OK("wss://[::1]:", "[::1]", 443, "/"),
        OK("ws://h:443/", "h", 443, "/"), /* not ws's default: kept */
        OK("wss://h:80/", "h", 80, "/"),
        OK("ws://h:65535", "h", 65535, "/"),
        OK("ws://h:1/", "h", 1, "/"),
        OK("ws://h:8\t0\n81/", "h", 8081, "/"),
        OK("ws://h:81?a=b&c=/d?e", "h", 81, "/?a=b&c=/d?e"),
    };
    RUN(cases);
    dx_url u;
    REQUIRE(dx_url_parse(dx_span_cstr("ws://h:0080/"), &u) == 0);
    CHECK(!u.port_explicit);
    REQUIRE(dx_url_parse(dx_span_cstr("ws://h:443/"), &u) == 0);
    CHECK(u.port_explicit);
}

TEST(whatwg_port_state_failures) {
    static const url_case cases[] = {
        BAD("ws://h:65536/", DX_EURL_PORT),
        BAD("ws://h:99999", DX_EURL_PORT),
        BAD("ws://h:9999999999999999999999", DX_EURL_PORT),
        BAD("ws://h:80a", DX_EURL_PORT),
        BAD("ws://h:-1", DX_EURL_PORT),
        BAD("ws://h:+80", DX_EURL_PORT),
        BAD("ws://h: 80/", DX_EURL_PORT),
        BAD("ws://h:1:2", DX_EURL_PORT),
        BAD("ws://[::1]:x", DX_EURL_PORT),
        BAD("ws://h:8%30", DX_EURL_PORT),
        BAD("ws://h:65536#f", DX_EURL_PORT),
        /* a browser parses port 0 but can never connect there; duplex refuses it at once */
        BAD("ws://h:0/", DX_EURL_PORT),
        BAD("wss://h:00", DX_EURL_PORT),
    };
    RUN(cases);
}

/* ---- path state --------------------------------------------------------------------------- */

TEST(whatwg_path_state_path_percent_encode_set) {
    static const url_case cases[] = {
        OK("ws://h/a^b", "h", 80, "/a%5Eb"),
        OK("ws://h/a b", "h", 80, "/a%20b"),
        OK("ws://h/{x}", "h", 80, "/%7Bx%7D"),
        OK("ws://h/a|b`c", "h", 80, "/a%7Cb%60c"), /* '|': Chromium's, not the standard's */
        OK("ws://h/a\"b<c>d", "h", 80, "/a%22b%3Cc%3Ed"),
        OK("ws://h/!$&'()*+,;=:@[]~_-.", "h", 80, "/!$&'()*+,;=:@[]~_-."),
        OK("ws://h/%zz/%41/%7e/%", "h", 80, "/%zz/%41/%7e/%"), /* escapes as written */
        OK("ws://h/a%2fb", "h", 80, "/a%2fb"),
        OK("ws://h/%23", "h", 80, "/%23"),
        OK("ws://h/\xc3\xa9", "h", 80, "/%C3%A9"),
        OK("ws://h/\x01\x7f", "h", 80, "/%01%7F"),
        OK("ws://h/\xff\x80", "h", 80, "/%FF%80"), /* not UTF-8: byte by byte */
        OK("ws://h/a\x00"
           "b",
           "h", 80, "/a%00b"),
        OK("ws://h", "h", 80, "/"),
        OK("ws://h?q", "h", 80, "/?q"),
        OK("ws://h:9/", "h", 9, "/"),
        OK("WS://Example.COM/A", "example.com", 80, "/A"), /* the path keeps its case */
    };
    RUN(cases);
}

TEST(whatwg_path_state_single_and_double_dot_segments) {
    static const url_case cases[] = {
        OK("ws://h/a/../b", "h", 80, "/b"),
        OK("ws://h/a/./b/.", "h", 80, "/a/b/"),
        OK("ws://h/..", "h", 80, "/"),
        OK("ws://h/.", "h", 80, "/"),
        OK("ws://h/a/..", "h", 80, "/"),
        OK("ws://h/a/../", "h", 80, "/"),
        OK("ws://h/a/..?x", "h", 80, "/?x"),
        OK("ws://h/../a", "h", 80, "/a"),
        OK("ws://h/%2e%2E", "h", 80, "/"),
        OK("ws://h/a/%2e%2E", "h", 80, "/"),
        OK("ws://h/a/.%2E/b", "h", 80, "/b"),
        OK("ws://h/a/%2e./b", "h", 80, "/b"),
        OK("ws://h/a/%2E/b", "h", 80, "/a/b"),
        OK("ws://h/%zz/%2e/%2E%2e/x", "h", 80, "/x"),
        OK("ws://h/.x/..x/x../...", "h", 80, "/.x/..x/x../..."),
        OK("ws://h/a//b", "h", 80, "/a//b"),
        OK("ws://h/a//../b", "h", 80, "/a/b"),
        OK("ws://h/a/b/../../../c", "h", 80, "/c"),
        OK("ws://h/a/b/c/../../d/./e/..", "h", 80, "/a/d/"),
        OK("ws://h/a\\..\\b", "h", 80, "/b"),
        OK("ws://h/aaaaaaaaaaaaaaaa/../b", "h", 80, "/b"),
        OK("ws://h/a%20b/../c%20d", "h", 80, "/c%20d"),
        OK("ws://h/ /../x", "h", 80, "/x"),
    };
    RUN(cases);
}

/* ---- query state -------------------------------------------------------------------------- */

TEST(whatwg_query_state_special_query_percent_encode_set) {
    static const url_case cases[] = {
        OK("ws://h/?q='x'", "h", 80, "/?q=%27x%27"),
        OK("ws://h/?a\"b<c>d`e{f}g|h^i", "h", 80, "/?a%22b%3Cc%3Ed`e{f}g|h^i"),
        OK("ws://h/?x\\y", "h", 80, "/?x\\y"),
        OK("ws://h/a?b?c", "h", 80, "/a?b?c"),
        OK("ws://h/p?", "h", 80, "/p?"),
        OK("ws://h?", "h", 80, "/?"),
        OK("ws://h/? a", "h", 80, "/?%20a"),
        OK("ws://h/?\xc3\xa9", "h", 80, "/?%C3%A9"),
        OK("ws://h/?%zz%", "h", 80, "/?%zz%"),
        OK("ws://h/?/../.", "h", 80, "/?/../."), /* no dot segments in a query */
        OK("ws://h/a b?c d", "h", 80, "/a%20b?c%20d"),
        OK("ws://h/?\x7f\x1f;", "h", 80, "/?%7F%1F;"),
    };
    RUN(cases);
}

/* ---- the WebSocket constructor's fragment step ------------------------------------------ */

TEST(websockets_constructor_fragment_fails) {
    static const url_case cases[] = {
        BAD("ws://h#f", DX_EURL_FRAGMENT),    BAD("ws://h#", DX_EURL_FRAGMENT),
        BAD("ws://h/#", DX_EURL_FRAGMENT),    BAD("ws://h/p#f", DX_EURL_FRAGMENT),
        BAD("ws://h/?a#b", DX_EURL_FRAGMENT), BAD("ws://h/%23#", DX_EURL_FRAGMENT),
        BAD("http://h/#x", DX_EURL_FRAGMENT), BAD("ws://u#@h", DX_EURL_FRAGMENT),
        BAD("ws://h#\xff", DX_EURL_FRAGMENT),
    };
    RUN(cases);
}

/* ---- API ---------------------------------------------------------------------------------- */

TEST(url_parse_rejects_bad_arguments) {
    dx_url u;
    CHECK_RC(dx_url_parse(dx_span_cstr("ws://h"), NULL), DX_EINVAL);
    CHECK_RC(dx_url_parse((dx_span){NULL, 3}, &u), DX_EINVAL);
    CHECK_RC(dx_url_parse((dx_span){NULL, 0}, &u), DX_EURL_SCHEME);
    static const uint8_t one = 'w';
    CHECK_RC(dx_url_parse((dx_span){&one, SIZE_MAX / 4 + 1}, &u), DX_EINVAL);
}

TEST(url_writers_space_and_arguments) {
    dx_url u;
    REQUIRE(dx_url_parse(dx_span_cstr("ws://u:p@h/ab?cd"), &u) == 0);
    char buf[8];
    size_t len = 99;
    CHECK_RC(dx_url_write_resource(&u, buf, 6, &len), DX_ENOSPACE); /* needs 6 + NUL */
    CHECK_EQ_INT(len, 6);
    CHECK_RC(dx_url_write_resource(&u, buf, 7, &len), 0);
    CHECK_EQ_INT(len, 6);
    CHECK(strcmp(buf, "/ab?cd") == 0);
    CHECK_RC(dx_url_write_resource(&u, buf, 0, &len), DX_ENOSPACE);
    url_writer writers[] = {dx_url_write_resource, dx_url_write_host, dx_url_write_userinfo};
    for (size_t i = 0; i < N_OF(writers); i++) {
        CHECK_RC(writers[i](NULL, buf, 8, &len), DX_EINVAL);
        CHECK_RC(writers[i](&u, NULL, 8, &len), DX_EINVAL);
        CHECK_RC(writers[i](&u, buf, 8, NULL), DX_EINVAL);
    }
    CHECK_RC(dx_url_write_host(&u, buf, 1, &len), DX_ENOSPACE);
    CHECK_EQ_INT(len, 1);
    CHECK_RC(dx_url_write_host(&u, buf, 2, &len), 0);
    CHECK(strcmp(buf, "h") == 0);
    CHECK_RC(dx_url_write_userinfo(&u, buf, 3, &len), DX_ENOSPACE);
    CHECK_RC(dx_url_write_userinfo(&u, buf, 4, &len), 0);
    CHECK(strcmp(buf, "u:p") == 0);
}

TEST(url_pieces_are_spans_of_the_text) {
    const char *s = "wss://u@Example.com:8443/chat?x=1";
    dx_url u;
    REQUIRE(dx_url_parse(dx_span_cstr(s), &u) == 0);
    CHECK(u.userinfo_text.ptr == (const uint8_t *)s + 6);
    CHECK_SPAN_STR(u.userinfo_text, "u");
    CHECK_SPAN_STR(u.host_text, "Example.com");
    CHECK_SPAN_STR(u.path_text, "/chat");
    CHECK_SPAN_STR(u.query_text, "x=1");
    CHECK(u.has_query && u.secure && u.port == 8443 && u.port_explicit);
    CHECK(u.host_kind == DX_URL_HOST_DOMAIN);
    CHECK_EQ_INT(u.host_len, 11);
    CHECK_EQ_INT(u.resource_len, 9);
    CHECK_EQ_INT(u.userinfo_len, 1);
    REQUIRE(dx_url_parse(dx_span_cstr("ws://h"), &u) == 0);
    CHECK(!u.has_query);
    CHECK_EQ_INT(u.path_text.len, 0);
    CHECK_EQ_INT(u.resource_len, 1);
}

/* Long inputs: the parser keeps no list, so any number of segments and any length work. */
TEST(whatwg_path_state_long_paths_and_hosts) {
    size_t n = 200000;
    char *s = malloc(n + 64);
    REQUIRE(s != NULL);
    /* "ws://h" then 20000 times "/a/b/../.." and a final "/end" */
    size_t k = (size_t)snprintf(s, n + 64, "ws://h");
    for (int i = 0; i < 20000; i++) {
        memcpy(s + k, "/a/b/../..", 10);
        k += 10;
    }
    memcpy(s + k, "/end", 5);
    k += 4;
    dx_url u;
    REQUIRE(parse_guarded(s, k, &u) == 0);
    char out[16];
    size_t len;
    CHECK_RC(dx_url_write_resource(&u, out, sizeof out, &len), 0);
    CHECK(strcmp(out, "/end") == 0);
    /* 60000 "../" first, then a name: there is nothing above the root */
    k = (size_t)snprintf(s, n + 64, "ws://h/");
    for (int i = 0; i < 60000; i++) {
        memcpy(s + k, "../", 3);
        k += 3;
    }
    memcpy(s + k, "x", 2);
    k += 1;
    REQUIRE(parse_guarded(s, k, &u) == 0);
    CHECK_RC(dx_url_write_resource(&u, out, sizeof out, &len), 0);
    CHECK(strcmp(out, "/x") == 0);
    /* an IPv4 number with 100000 leading zeros */
    k = (size_t)snprintf(s, n + 64, "ws://0");
    memset(s + k, '0', 100000);
    k += 100000;
    memcpy(s + k, "177.1/", 7);
    k += 6;
    REQUIRE(parse_guarded(s, k, &u) == 0);
    CHECK(u.host_kind == DX_URL_HOST_IPV4);
    CHECK_RC(dx_url_write_host(&u, out, sizeof out, &len), 0);
    CHECK(strcmp(out, "127.0.0.1") == 0);
    /* a 100000-byte domain: accepted (the resolver will say no), written in full */
    k = (size_t)snprintf(s, n + 64, "ws://");
    memset(s + k, 'A', 100000);
    k += 100000;
    REQUIRE(parse_guarded(s, k, &u) == 0);
    CHECK_EQ_INT(u.host_len, 100000);
    free(s);
}

TEST(url_error_codes_have_names_and_messages) {
    CHECK(strcmp(dx_err_name(DX_EURL_SCHEME), "DX_EURL_SCHEME") == 0);
    CHECK(strcmp(dx_err_name(DX_EURL_FRAGMENT), "DX_EURL_FRAGMENT") == 0);
    CHECK(strcmp(dx_err_name(DX_EURL_HOST), "DX_EURL_HOST") == 0);
    CHECK(strcmp(dx_err_name(DX_EURL_PORT), "DX_EURL_PORT") == 0);
    CHECK(strcmp(dx_err_name(DX_EURL_IDNA), "DX_EURL_IDNA") == 0);
    CHECK(strstr(dx_strerror(DX_EURL_IDNA), "IDNA") != NULL);
    CHECK_EQ_INT(DX_EURL_SCHEME, -1258);
    CHECK_EQ_INT(DX_EURL_PORT, -1261);
    CHECK_EQ_INT(DX_EURL_IDNA, -1262);
}
