/*
 * Tests for the WebSocket URL parser (src/proto/url.c): RFC 6455 §3 over the
 * RFC 3986 generic syntax. Every parse runs on a copy that ends at a guard page,
 * so a read past the input faults, and the spans are checked to lie inside it.
 */
#include "test.h"

/* Parse @s from a guard-page copy. On success, check that every span points
 * into the copy (or is the static "/" for an empty path) and translate them to
 * point into @s, so the caller can compare them after the copy is freed. */
static int parse(const char *s, dx_url *u) {
    size_t n = strlen(s);
    uint8_t *g = dx_guard_alloc(s, n);
    dx_url tmp;
    memset(&tmp, 0xA5, sizeof tmp);
    int rc = dx_url_parse((dx_span){g, n}, &tmp);
    if (rc == 0) {
        dx_span *spans[] = {&tmp.host, &tmp.path, &tmp.query, &tmp.userinfo, &tmp.resource};
        for (size_t i = 0; i < sizeof spans / sizeof spans[0]; i++) {
            dx_span *sp = spans[i];
            if (sp->len == 0)
                continue;
            if (sp->ptr >= g && sp->ptr + sp->len <= g + n)
                sp->ptr = (const uint8_t *)s + (sp->ptr - g);
            else
                CHECK(sp->len == 1 && sp->ptr[0] == '/'); /* the static "/" */
        }
        *u = tmp;
    } else {
        /* a failed parse leaves *out untouched */
        uint8_t pat[sizeof tmp];
        memset(pat, 0xA5, sizeof pat);
        CHECK_MEM(&tmp, pat, sizeof pat);
    }
    dx_guard_free(g, n);
    return rc;
}

static void check_resource(const dx_url *u, const char *want) {
    char buf[256];
    size_t len = 0;
    CHECK_RC(dx_url_write_resource(u, buf, sizeof buf, &len), 0);
    CHECK_EQ_INT(len, strlen(want));
    CHECK(strcmp(buf, want) == 0);
}

TEST(rfc6455_3_plain_host_defaults) {
    dx_url u;
    REQUIRE(parse("ws://example.com", &u) == 0);
    CHECK(!u.secure);
    CHECK_SPAN_STR(u.host, "example.com");
    CHECK(!u.host_is_ipv6);
    CHECK_EQ_INT(u.port, 80);
    CHECK(!u.port_explicit);
    CHECK_SPAN_STR(u.path, "/");
    CHECK_SPAN_STR(u.resource, "/");
    CHECK(!u.has_query);
    CHECK_SPAN_STR(u.query, "");
    CHECK_SPAN_STR(u.userinfo, "");
    check_resource(&u, "/");
}

TEST(rfc6455_3_wss_port_path_query) {
    const char *s = "wss://example.com:443/chat?x=1";
    dx_url u;
    REQUIRE(parse(s, &u) == 0);
    CHECK(u.secure);
    CHECK_SPAN_STR(u.host, "example.com");
    CHECK_EQ_INT(u.port, 443);
    CHECK(u.port_explicit);
    CHECK_SPAN_STR(u.path, "/chat");
    CHECK(u.has_query);
    CHECK_SPAN_STR(u.query, "x=1");
    CHECK_SPAN_STR(u.resource, "/chat?x=1");
    /* zero copy: the spans point into the text */
    CHECK(u.host.ptr == (const uint8_t *)s + 6);
    CHECK(u.resource.ptr == (const uint8_t *)s + 21);
    check_resource(&u, "/chat?x=1");
}

TEST(rfc6455_3_wss_default_port_443) {
    dx_url u;
    REQUIRE(parse("wss://h", &u) == 0);
    CHECK(u.secure);
    CHECK_EQ_INT(u.port, 443);
    CHECK(!u.port_explicit);
}

TEST(rfc3986_3_2_2_ipv6_literal) {
    dx_url u;
    REQUIRE(parse("ws://[::1]:9001/", &u) == 0);
    CHECK_SPAN_STR(u.host, "::1");
    CHECK(u.host_is_ipv6);
    CHECK_EQ_INT(u.port, 9001);
    CHECK(u.port_explicit);
    CHECK_SPAN_STR(u.path, "/");
    CHECK_SPAN_STR(u.resource, "/");
    REQUIRE(parse("wss://[2001:db8::7]", &u) == 0);
    CHECK_SPAN_STR(u.host, "2001:db8::7");
    CHECK_EQ_INT(u.port, 443);
    REQUIRE(parse("ws://[::ffff:192.0.2.1]/x", &u) == 0);
    CHECK_SPAN_STR(u.host, "::ffff:192.0.2.1");
    CHECK_SPAN_STR(u.path, "/x");
    REQUIRE(parse("ws://[1:2:3:4:5:6:7:8]", &u) == 0);
    CHECK_SPAN_STR(u.host, "1:2:3:4:5:6:7:8");
    REQUIRE(parse("ws://[1:2:3:4:5:6:1.2.3.4]", &u) == 0);
    REQUIRE(parse("ws://[::]", &u) == 0);
    CHECK_SPAN_STR(u.host, "::");
    REQUIRE(parse("ws://[1::]", &u) == 0);
    REQUIRE(parse("ws://[FE80::aBcD]", &u) == 0);
    CHECK_SPAN_STR(u.host, "FE80::aBcD");
}

TEST(rfc3986_3_2_2_ipv6_literal_malformed_fails) {
    static const char *const bad[] = {
        "ws://[]",
        "ws://[::1",                    /* no ']' */
        "ws://[::1]x",                  /* text after ']' */
        "ws://[::1]]",                  /* text after ']' */
        "ws://[fe80::1%25eth0]",        /* zone ID */
        "ws://[fe80::1%eth0]",          /* zone ID, unencoded */
        "ws://[v1.fe]",                 /* IPvFuture */
        "ws://[1:2:3:4:5:6:7]",         /* 7 groups, no "::" */
        "ws://[1:2:3:4:5:6:7:8:9]",     /* 9 groups */
        "ws://[1:2:3:4:5:6:7:8::]",     /* 8 groups and "::" */
        "ws://[1::2::3]",               /* two "::" */
        "ws://[:1]",                    /* single leading ':' */
        "ws://[1:]",                    /* single trailing ':' */
        "ws://[12345::1]",              /* group of 5 digits */
        "ws://[1:::2]",                 /* ":::" */
        "ws://[::1.2.3]",               /* short IPv4 tail */
        "ws://[::256.1.1.1]",           /* IPv4 octet too big */
        "ws://[1:2:3:4:5:6:7:1.2.3.4]", /* 9 groups' worth */
        "ws://[1.2.3.4]",               /* IPv4 alone */
        "ws://[::g]",                   /* not hex */
        "ws://x[::1]",                  /* '[' in a reg-name */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dx_url u;
        int rc = parse(bad[i], &u);
        if (rc != DX_EURL_HOST)
            printf("    %s\n", bad[i]);
        CHECK_RC(rc, DX_EURL_HOST);
    }
}

TEST(rfc3986_3_2_2_ipv4_host) {
    dx_url u;
    REQUIRE(parse("ws://127.0.0.1", &u) == 0);
    CHECK_SPAN_STR(u.host, "127.0.0.1");
    CHECK(!u.host_is_ipv6);
    CHECK_EQ_INT(u.port, 80);
    CHECK_SPAN_STR(u.resource, "/");
    REQUIRE(parse("ws://255.255.255.255:1/", &u) == 0);
    CHECK_SPAN_STR(u.host, "255.255.255.255");
    CHECK_EQ_INT(u.port, 1);
    REQUIRE(parse("ws://0.0.0.0", &u) == 0);
}

TEST(rfc3986_3_2_2_numeric_host_must_be_dotted_quad) {
    /* inet_aton() would read these as addresses; refuse them */
    static const char *const bad[] = {
        "ws://127.1",     "ws://010.0.0.1", "ws://256.0.0.1", "ws://1.2.3.4.",
        "ws://1.2.3.4.5", "ws://1234",      "ws://1..2.3",    "ws://.",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dx_url u;
        CHECK_RC(parse(bad[i], &u), DX_EURL_HOST);
    }
    /* a name that is not all digits and dots is a reg-name */
    dx_url u;
    REQUIRE(parse("ws://1.2.3.4a", &u) == 0);
    CHECK_SPAN_STR(u.host, "1.2.3.4a");
}

TEST(rfc3986_3_2_2_reg_name_characters) {
    dx_url u;
    REQUIRE(parse("ws://a-b_c~d.e!$&'()*+,;=%41:8080", &u) == 0);
    CHECK_SPAN_STR(u.host, "a-b_c~d.e!$&'()*+,;=%41");
    CHECK_EQ_INT(u.port, 8080);
    static const char *const bad[] = {
        "ws://a\"b", "ws://a<b", "ws://a\\b", "ws://a^b", "ws://a`b", "ws://a{b",
        "ws://a|b",  "ws://a]b", "ws://%4",   "ws://%zz", "ws://a%",  "ws://u@v@h",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = parse(bad[i], &u);
        if (rc != DX_EURL_HOST)
            printf("    %s\n", bad[i]);
        CHECK_RC(rc, DX_EURL_HOST);
    }
}

TEST(rfc6455_3_scheme_is_case_insensitive) {
    dx_url u;
    REQUIRE(parse("WS://Example.COM/A", &u) == 0);
    CHECK(!u.secure);
    CHECK_SPAN_STR(u.host, "Example.COM"); /* as written */
    CHECK_SPAN_STR(u.path, "/A");
    REQUIRE(parse("WsS://h", &u) == 0);
    CHECK(u.secure);
    CHECK_EQ_INT(u.port, 443);
}

TEST(rfc6455_3_other_schemes_fail) {
    static const char *const bad[] = {
        "http://h/", "https://h/", "wsss://h", "w://h", "://h",    "h/path",
        "ws//h",     "",           "ftp:x",    "wss",   " ws://h",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dx_url u;
        int rc = parse(bad[i], &u);
        int want = bad[i][0] == ' ' ? DX_EHS_BAD_URL : DX_EURL_SCHEME;
        if (rc != want)
            printf("    %s\n", bad[i]);
        CHECK_RC(rc, want);
    }
}

TEST(rfc6455_3_empty_path_with_query) {
    dx_url u;
    REQUIRE(parse("ws://h?q", &u) == 0);
    CHECK_SPAN_STR(u.host, "h");
    CHECK_SPAN_STR(u.path, "/");
    CHECK(u.has_query);
    CHECK_SPAN_STR(u.query, "q");
    CHECK_EQ_INT(u.resource.len, 0); /* "/?q" is not in the text */
    check_resource(&u, "/?q");
    REQUIRE(parse("ws://h:81?a=b&c=/d?e", &u) == 0);
    CHECK_EQ_INT(u.port, 81);
    CHECK_SPAN_STR(u.query, "a=b&c=/d?e");
    check_resource(&u, "/?a=b&c=/d?e");
}

TEST(rfc3986_3_4_empty_query_is_kept) {
    dx_url u;
    REQUIRE(parse("ws://h/p?", &u) == 0);
    CHECK_SPAN_STR(u.path, "/p");
    CHECK(u.has_query);
    CHECK_SPAN_STR(u.query, "");
    CHECK_SPAN_STR(u.resource, "/p?");
    check_resource(&u, "/p?");
    REQUIRE(parse("ws://h?", &u) == 0);
    check_resource(&u, "/?");
}

TEST(rfc3986_3_2_1_userinfo) {
    dx_url u;
    REQUIRE(parse("wss://user:p%40ss@example.com:8443/x", &u) == 0);
    CHECK_SPAN_STR(u.userinfo, "user:p%40ss");
    CHECK_SPAN_STR(u.host, "example.com");
    CHECK_EQ_INT(u.port, 8443);
    CHECK_SPAN_STR(u.path, "/x");
    REQUIRE(parse("ws://@h", &u) == 0); /* empty userinfo is allowed */
    CHECK_SPAN_STR(u.userinfo, "");
    CHECK_SPAN_STR(u.host, "h");
    REQUIRE(parse("ws://u@[::1]:2", &u) == 0);
    CHECK_SPAN_STR(u.userinfo, "u");
    CHECK_SPAN_STR(u.host, "::1");
    CHECK_EQ_INT(u.port, 2);
    /* '@' in the path is not a userinfo delimiter */
    REQUIRE(parse("ws://h/a@b", &u) == 0);
    CHECK_SPAN_STR(u.userinfo, "");
    CHECK_SPAN_STR(u.host, "h");
    CHECK_SPAN_STR(u.path, "/a@b");
    CHECK_RC(parse("ws://u[x@h", &u), DX_EHS_BAD_URL);
    CHECK_RC(parse("ws://u%4@h", &u), DX_EHS_BAD_URL);
    CHECK_RC(parse("ws://user@", &u), DX_EURL_HOST);
}

TEST(rfc3986_3_2_3_port_range) {
    dx_url u;
    REQUIRE(parse("ws://h:65535", &u) == 0);
    CHECK_EQ_INT(u.port, 65535);
    REQUIRE(parse("ws://h:1/", &u) == 0);
    CHECK_EQ_INT(u.port, 1);
    REQUIRE(parse("ws://h:0080", &u) == 0); /* *DIGIT: leading zeros allowed */
    CHECK_EQ_INT(u.port, 80);
    CHECK(u.port_explicit);
    static const char *const bad[] = {
        "ws://h:0",     "ws://h:00",   "ws://h:65536",
        "ws://h:99999", "ws://h:80a",  "ws://h:-1",
        "ws://h:+80",   "ws://h:1:2",  "ws://h:9999999999999999999999",
        "ws://[::1]:x", "ws://h:8%30",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = parse(bad[i], &u);
        if (rc != DX_EURL_PORT)
            printf("    %s\n", bad[i]);
        CHECK_RC(rc, DX_EURL_PORT);
    }
}

TEST(rfc3986_3_2_3_empty_port_means_default) {
    dx_url u;
    REQUIRE(parse("ws://h:/x", &u) == 0);
    CHECK_EQ_INT(u.port, 80);
    CHECK(!u.port_explicit);
    CHECK_SPAN_STR(u.host, "h");
    CHECK_SPAN_STR(u.path, "/x");
    REQUIRE(parse("wss://[::1]:", &u) == 0);
    CHECK_EQ_INT(u.port, 443);
    CHECK(!u.port_explicit);
}

TEST(rfc6455_3_fragment_fails) {
    static const char *const bad[] = {
        "ws://h/#", "ws://h/p#f", "ws://h?q#f",  "ws://h#",
        "ws://#",   "#",          "ws://h/%23#", "http://h#" /* the fragment is checked first */,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dx_url u;
        CHECK_RC(parse(bad[i], &u), DX_EURL_FRAGMENT);
    }
    dx_url u;
    REQUIRE(parse("ws://h/%23", &u) == 0); /* an encoded '#' is data */
    CHECK_SPAN_STR(u.path, "/%23");
}

TEST(rfc3986_3_2_missing_host_fails) {
    static const char *const bad[] = {
        "ws://", "ws:///", "ws://?q", "ws://:80", "ws://:80/", "ws:", "ws:/h", "ws:h", "wss:/",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dx_url u;
        int rc = parse(bad[i], &u);
        if (rc != DX_EURL_HOST)
            printf("    %s\n", bad[i]);
        CHECK_RC(rc, DX_EURL_HOST);
    }
}

TEST(rfc3986_2_1_percent_encoding_validated_not_decoded) {
    dx_url u;
    REQUIRE(parse("ws://h/a%20b%2F?c=%e2%82%AC", &u) == 0);
    CHECK_SPAN_STR(u.path, "/a%20b%2F");
    CHECK_SPAN_STR(u.query, "c=%e2%82%AC");
    static const char *const bad[] = {
        "ws://h/%",  "ws://h/%2",    "ws://h/%2g",   "ws://h/%g2",    "ws://h/a%?b",
        "ws://h/?%", "ws://h/?a=%4", "ws://h/?%%41", "ws://h/%2?%41",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = parse(bad[i], &u);
        if (rc != DX_EHS_BAD_URL)
            printf("    %s\n", bad[i]);
        CHECK_RC(rc, DX_EHS_BAD_URL);
    }
}

TEST(rfc3986_3_3_path_and_query_characters) {
    dx_url u;
    const char *s = "ws://h/a-._~!$&'()*+,;=:@/b?q-._~!$&'()*+,;=:@/?";
    REQUIRE(parse(s, &u) == 0);
    CHECK_SPAN_STR(u.path, "/a-._~!$&'()*+,;=:@/b");
    CHECK_SPAN_STR(u.query, "q-._~!$&'()*+,;=:@/?");
    CHECK_SPAN_STR(u.resource, "/a-._~!$&'()*+,;=:@/b?q-._~!$&'()*+,;=:@/?");
    static const char *const bad[] = {
        "ws://h/a\"b", "ws://h/<", "ws://h/>", "ws://h/\\", "ws://h/^", "ws://h/`", "ws://h/{",
        "ws://h/|",    "ws://h/}", "ws://h/[", "ws://h/]",  "ws://h?[", "ws://h?|",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = parse(bad[i], &u);
        if (rc != DX_EHS_BAD_URL)
            printf("    %s\n", bad[i]);
        CHECK_RC(rc, DX_EHS_BAD_URL);
    }
}

TEST(rfc3986_whitespace_controls_and_non_ascii_fail) {
    static const char *const bad[] = {
        "ws://h /",    "ws://h/ ",    "ws://h/\t",      "ws://h\r\n",  "ws:// h",
        "ws://h/\x7f", "ws://h/\x80", "ws://h\xc3\xa9", "ws://h?\x01",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dx_url u;
        CHECK_RC(parse(bad[i], &u), DX_EHS_BAD_URL);
    }
    /* an embedded NUL is a control character too */
    static const uint8_t nul[] = {'w', 's', ':', '/', '/', 'h', 0, 'x'};
    dx_url u;
    CHECK_RC(dx_url_parse((dx_span){nul, sizeof nul}, &u), DX_EHS_BAD_URL);
}

TEST(url_parse_rejects_bad_arguments) {
    dx_url u;
    CHECK_RC(dx_url_parse(dx_span_cstr("ws://h"), NULL), DX_EINVAL);
    CHECK_RC(dx_url_parse((dx_span){NULL, 3}, &u), DX_EINVAL);
    CHECK_RC(dx_url_parse((dx_span){NULL, 0}, &u), DX_EURL_SCHEME);
}

TEST(url_write_resource_space_and_arguments) {
    dx_url u;
    REQUIRE(parse("ws://h/ab?cd", &u) == 0);
    char buf[8];
    size_t len = 99;
    CHECK_RC(dx_url_write_resource(&u, buf, 6, &len), DX_ENOSPACE); /* needs 6 + NUL */
    CHECK_EQ_INT(len, 6);
    CHECK_RC(dx_url_write_resource(&u, buf, 7, &len), 0);
    CHECK_EQ_INT(len, 6);
    CHECK(strcmp(buf, "/ab?cd") == 0);
    CHECK_RC(dx_url_write_resource(&u, buf, 0, &len), DX_ENOSPACE);
    CHECK_RC(dx_url_write_resource(NULL, buf, 8, &len), DX_EINVAL);
    CHECK_RC(dx_url_write_resource(&u, NULL, 8, &len), DX_EINVAL);
    CHECK_RC(dx_url_write_resource(&u, buf, 8, NULL), DX_EINVAL);
}

TEST(url_error_codes_have_names_and_messages) {
    CHECK(strcmp(dx_err_name(DX_EURL_SCHEME), "DX_EURL_SCHEME") == 0);
    CHECK(strcmp(dx_err_name(DX_EURL_FRAGMENT), "DX_EURL_FRAGMENT") == 0);
    CHECK(strcmp(dx_err_name(DX_EURL_HOST), "DX_EURL_HOST") == 0);
    CHECK(strcmp(dx_err_name(DX_EURL_PORT), "DX_EURL_PORT") == 0);
    CHECK_EQ_INT(DX_EURL_SCHEME, -1258);
    CHECK_EQ_INT(DX_EURL_PORT, -1261);
}

/* Every prefix of a valid URL either parses or fails cleanly, never reading past
 * its end (each runs at a guard page). */
TEST(url_every_prefix_at_guard_page) {
    const char *s = "wss://u:p@[2001:db8::1.2.3.4]:65535/a/b%20c?d=e&f=%2F";
    size_t n = strlen(s);
    for (size_t k = 0; k <= n; k++) {
        uint8_t *g = dx_guard_alloc(s, k);
        dx_url u;
        int rc = dx_url_parse((dx_span){g, k}, &u);
        CHECK(rc == 0 || (rc <= DX_EHS_BAD_URL && rc >= DX_EURL_PORT));
        if (rc == 0) {
            CHECK(u.host.len > 0 && u.host.ptr >= g && u.host.ptr + u.host.len <= g + k);
            CHECK(u.port != 0);
        }
        dx_guard_free(g, k);
    }
    dx_url u;
    REQUIRE(parse(s, &u) == 0);
    CHECK_SPAN_STR(u.host, "2001:db8::1.2.3.4");
    CHECK_SPAN_STR(u.userinfo, "u:p");
    CHECK_EQ_INT(u.port, 65535);
    CHECK_SPAN_STR(u.path, "/a/b%20c");
    CHECK_SPAN_STR(u.query, "d=e&f=%2F");
}
