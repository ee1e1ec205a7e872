/*
 * HTTP CONNECT proxy helpers of the stream layer (src/runtime/proxy.h, internal): the proxy
 * URL, no_proxy matching, the choice from the environment (the way curl reads it)
 * and the CONNECT request bytes (RFC 9110 §9.3.6).
 */
#include "test.h"

#include "runtime/proxy.h"

/* ---- dx__proxy_parse ---------------------------------------------------------------------- */

TEST(proxy_parse_host_port_and_credentials) {
    dx__proxy p;
    CHECK_RC(dx__proxy_parse("http://user:p%40ss@proxy.example:3128", &p), 0);
    CHECK(strcmp(p.host, "proxy.example") == 0);
    CHECK_EQ_INT(p.port, 3128);
    CHECK(!p.ipv6);
    CHECK(strcmp(p.auth, "dXNlcjpwQHNz") == 0); /* base64("user:p@ss") */

    CHECK_RC(dx__proxy_parse("proxy.example", &p), 0); /* no scheme, no port: 1080 */
    CHECK(strcmp(p.host, "proxy.example") == 0);
    CHECK_EQ_INT(p.port, 1080);
    CHECK_EQ_INT(p.auth[0], '\0');

    CHECK_RC(dx__proxy_parse("HTTP://proxy:8080/", &p), 0); /* scheme any case; a bare '/' */
    CHECK(strcmp(p.host, "proxy") == 0);
    CHECK_EQ_INT(p.port, 8080);

    CHECK_RC(dx__proxy_parse("http://user@proxy", &p), 0); /* no password */
    CHECK(strcmp(p.auth, "dXNlcjo=") == 0);                /* base64("user:") */

    CHECK_RC(dx__proxy_parse("http://a%3Ab:c%25d@proxy", &p), 0); /* ':' and '%' escaped */
    CHECK(strcmp(p.auth, "YTpiOmMlZA==") == 0);                   /* base64("a:b:c%d") */

    CHECK_RC(dx__proxy_parse("http://u:p@q@proxy:1", &p), 0); /* the last '@' ends userinfo */
    CHECK(strcmp(p.host, "proxy") == 0);
    CHECK(strcmp(p.auth, "dTpwQHE=") == 0); /* base64("u:p@q") */

    CHECK_RC(dx__proxy_parse("http://65535.example:65535", &p), 0);
    CHECK_EQ_INT(p.port, 65535);
}

TEST(proxy_parse_ipv6_literals) {
    dx__proxy p;
    CHECK_RC(dx__proxy_parse("http://[::1]:8080", &p), 0);
    CHECK(strcmp(p.host, "::1") == 0);
    CHECK(p.ipv6);
    CHECK_EQ_INT(p.port, 8080);
    CHECK_RC(dx__proxy_parse("http://u:p@[2001:db8::7]", &p), 0);
    CHECK(strcmp(p.host, "2001:db8::7") == 0);
    CHECK(p.ipv6);
    CHECK_EQ_INT(p.port, 1080);
    CHECK(p.auth[0] != '\0');
    CHECK_RC(dx__proxy_parse("http://[::1", &p), DX_EPROXY_URL);
    CHECK_RC(dx__proxy_parse("http://[]:80", &p), DX_EPROXY_URL);
    CHECK_RC(dx__proxy_parse("http://[::1]x", &p), DX_EPROXY_URL);
    CHECK_RC(dx__proxy_parse("http://::1:80", &p), DX_EPROXY_URL); /* unbracketed */
    CHECK_RC(dx__proxy_parse("http://[fe80::1%25eth0]:80", &p), DX_EPROXY_URL);
}

TEST(proxy_parse_refuses_bad_urls) {
    static const char *const bad[] = {
        "",
        "http://",
        "http://:8080",
        "http://proxy:",
        "http://proxy:0",
        "http://proxy:65536",
        "http://proxy:99999999999",
        "http://proxy:80a",
        "http://proxy:-1",
        "https://proxy:443",   /* TLS to the proxy: not supported */
        "socks5://proxy:1080", /* not an HTTP proxy */
        "http://proxy/path",   /* a path: not a proxy address */
        "http://proxy:80/x",
        "http://proxy?x=1",
        "http://proxy#frag",
        "http://pro xy:80",
        "http://pro%78y:80",   /* no escapes in the host */
        "http://u%zz:p@proxy", /* a bad escape */
        "http://u:p%4@proxy",  /* a cut escape */
        "http://u:p%@proxy",
        "http://proxy\x7f:80",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dx__proxy p;
        int rc = dx__proxy_parse(bad[i], &p);
        if (rc != DX_EPROXY_URL)
            printf("    \"%s\": got %s\n", bad[i], dx_err_name(rc));
        CHECK_RC(rc, DX_EPROXY_URL);
    }
    dx__proxy p;
    CHECK_RC(dx__proxy_parse(NULL, &p), DX_EPROXY_URL);
    char host[300];
    memset(host, 'h', sizeof host);
    memcpy(host, "http://", 7);
    host[7 + 256] = '\0'; /* a 256-byte host */
    CHECK_RC(dx__proxy_parse(host, &p), DX_EPROXY_URL);
    host[7 + 255] = '\0'; /* 255: the most */
    CHECK_RC(dx__proxy_parse(host, &p), 0);
    char cred[700];
    memset(cred, 'u', sizeof cred);
    memcpy(cred, "http://", 7);
    memcpy(cred + 600, "@proxy", 7); /* 593 bytes of userinfo */
    CHECK_RC(dx__proxy_parse(cred, &p), DX_EPROXY_URL);
}

/* ---- no_proxy ------------------------------------------------------------------------------ */

TEST(proxy_no_proxy_matching) {
    CHECK(dx__no_proxy_match("*", "anything.example"));
    CHECK(dx__no_proxy_match(" * ", "1.2.3.4"));
    CHECK(dx__no_proxy_match("example.com", "example.com"));
    CHECK(dx__no_proxy_match("example.com", "sub.example.com"));
    CHECK(dx__no_proxy_match("example.com", "a.b.example.com"));
    CHECK(!dx__no_proxy_match("example.com", "badexample.com"));
    CHECK(!dx__no_proxy_match("example.com", "example.com.evil"));
    CHECK(dx__no_proxy_match(".example.com", "sub.example.com"));
    CHECK(dx__no_proxy_match(".example.com", "example.com"));
    CHECK(!dx__no_proxy_match(".example.com", "badexample.com"));
    CHECK(dx__no_proxy_match("EXAMPLE.Com", "Sub.example.COM")); /* case-insensitive */
    CHECK(dx__no_proxy_match("127.0.0.1", "127.0.0.1"));
    CHECK(!dx__no_proxy_match("127.0.0.1", "127.0.0.10"));
    CHECK(!dx__no_proxy_match("127.0.0.1", "27.0.0.1"));
    CHECK(dx__no_proxy_match("127.0.0.1:8080", "127.0.0.1")); /* the port is ignored */
    CHECK(dx__no_proxy_match("example.com:443", "www.example.com"));
    CHECK(dx__no_proxy_match("::1", "::1"));
    CHECK(dx__no_proxy_match("[::1]:80", "::1"));
    CHECK(dx__no_proxy_match("[::1]", "::1"));
    CHECK(!dx__no_proxy_match("::1", "::2"));
    CHECK(dx__no_proxy_match("foo.com, bar.com", "bar.com"));
    CHECK(dx__no_proxy_match(" foo.com ,\tbar.com\t", "www.bar.com"));
    CHECK(dx__no_proxy_match("foo.com,,bar.com", "bar.com"));
    CHECK(!dx__no_proxy_match("foo.com, bar.com", "baz.com"));
    CHECK(!dx__no_proxy_match("", "example.com"));
    CHECK(!dx__no_proxy_match(",", "example.com"));
    CHECK(!dx__no_proxy_match(" , . ,", "example.com"));
    CHECK(!dx__no_proxy_match(NULL, "example.com"));
    CHECK(!dx__no_proxy_match("example.com", NULL));
    CHECK(!dx__no_proxy_match("sub.example.com", "example.com")); /* not the other way */
}

/* ---- the environment ------------------------------------------------------------------------- */

/* A fake environment: NULL-terminated name/value pairs. */
static const char *const *fake_env;

static const char *fake_get(const char *name) {
    for (const char *const *e = fake_env; e && e[0]; e += 2)
        if (strcmp(e[0], name) == 0)
            return e[1];
    return NULL;
}

/* dx__proxy_from_env for ws:// (@secure false) or wss:// to @host under @env. Returns
 * the rc; *@host_out is the proxy host chosen ("" for direct). */
static int from_env(const char *const *env, bool secure, const char *host, char *out, size_t cap) {
    fake_env = env;
    dx__proxy p;
    memset(&p, 0x55, sizeof p);
    int rc = dx__proxy_from_env(secure, host, fake_get, &p);
    snprintf(out, cap, "%s", rc == 1 ? p.host : "");
    return rc;
}

TEST(proxy_from_env_picks_the_variable_like_curl) {
    char h[300];
    static const char *const none[] = {NULL};
    CHECK_EQ_INT(from_env(none, false, "example.com", h, sizeof h), 0);

    static const char *const http[] = {"http_proxy", "hp", "https_proxy", "hsp", NULL};
    CHECK_EQ_INT(from_env(http, false, "example.com", h, sizeof h), 1);
    CHECK(strcmp(h, "hp") == 0); /* ws:// */
    CHECK_EQ_INT(from_env(http, true, "example.com", h, sizeof h), 1);
    CHECK(strcmp(h, "hsp") == 0); /* wss:// */

    /* HTTP_PROXY is never read (a CGI request can set it: "httpoxy") */
    static const char *const upper[] = {"HTTP_PROXY", "evil", NULL};
    CHECK_EQ_INT(from_env(upper, false, "example.com", h, sizeof h), 0);
    static const char *const upper_all[] = {"HTTP_PROXY", "evil", "ALL_PROXY", "ap", NULL};
    CHECK_EQ_INT(from_env(upper_all, false, "example.com", h, sizeof h), 1);
    CHECK(strcmp(h, "ap") == 0);

    /* HTTPS_PROXY is fine; lower case first */
    static const char *const hs[] = {"HTTPS_PROXY", "HSP", NULL};
    CHECK_EQ_INT(from_env(hs, true, "example.com", h, sizeof h), 1);
    CHECK(strcmp(h, "HSP") == 0);
    static const char *const hs2[] = {"HTTPS_PROXY", "HSP", "https_proxy", "hsp", NULL};
    CHECK_EQ_INT(from_env(hs2, true, "example.com", h, sizeof h), 1);
    CHECK(strcmp(h, "hsp") == 0);

    /* all_proxy: the fallback, lower case first; an empty value does not count */
    static const char *const all[] = {"http_proxy", "", "all_proxy", "ap", "ALL_PROXY", "AP", NULL};
    CHECK_EQ_INT(from_env(all, false, "example.com", h, sizeof h), 1);
    CHECK(strcmp(h, "ap") == 0);
    CHECK_EQ_INT(from_env(all, true, "example.com", h, sizeof h), 1);
    CHECK(strcmp(h, "ap") == 0);

    /* no_proxy wins, either case */
    static const char *const no[] = {"http_proxy", "hp", "no_proxy", "example.com", NULL};
    CHECK_EQ_INT(from_env(no, false, "www.example.com", h, sizeof h), 0);
    CHECK_EQ_INT(from_env(no, false, "other.org", h, sizeof h), 1);
    static const char *const no2[] = {"all_proxy", "ap", "NO_PROXY", "*", NULL};
    CHECK_EQ_INT(from_env(no2, true, "x", h, sizeof h), 0);
    static const char *const no3[] = {"http_proxy", "hp", "no_proxy", "", "NO_PROXY", "x", NULL};
    CHECK_EQ_INT(from_env(no3, false, "x", h, sizeof h), 0); /* empty lower: upper counts */

    /* a malformed value is an error, not a silent direct connection */
    static const char *const bad[] = {"http_proxy", "https://p:443", NULL};
    CHECK_RC(from_env(bad, false, "example.com", h, sizeof h), DX_EPROXY_URL);
    static const char *const bad_but_bypassed[] = {"http_proxy", "https://p", "no_proxy", "*",
                                                   NULL};
    CHECK_EQ_INT(from_env(bad_but_bypassed, false, "example.com", h, sizeof h), 0);
}

/* ---- the CONNECT request ------------------------------------------------------------------------
 */

TEST(proxy_write_connect_bytes) {
    dx__proxy p;
    char out[1024];
    size_t len = 0;
    CHECK_RC(dx__proxy_parse("http://proxy:3128", &p), 0);
    CHECK_RC(dx__proxy_write_connect(&p, "example.com", false, 80, out, sizeof out, &len), 0);
    const char *want = "CONNECT example.com:80 HTTP/1.1\r\nHost: example.com:80\r\n\r\n";
    CHECK_EQ_INT(len, strlen(want));
    CHECK(strcmp(out, want) == 0);

    CHECK_RC(dx__proxy_write_connect(&p, "::1", true, 8080, out, sizeof out, &len), 0);
    want = "CONNECT [::1]:8080 HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n";
    CHECK(len == strlen(want) && strcmp(out, want) == 0);

    CHECK_RC(dx__proxy_parse("http://Aladdin:open%20sesame@proxy", &p), 0);
    CHECK_RC(dx__proxy_write_connect(&p, "ws.example", false, 443, out, sizeof out, &len), 0);
    want = "CONNECT ws.example:443 HTTP/1.1\r\nHost: ws.example:443\r\n"
           "Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n"; /* RFC 7617 */
    CHECK(len == strlen(want) && strcmp(out, want) == 0);

    /* a host that would split the request line, or none at all */
    CHECK_RC(dx__proxy_write_connect(&p, "a\r\nX-Evil: 1", false, 80, out, sizeof out, &len),
             DX_EINVAL);
    CHECK_RC(dx__proxy_write_connect(&p, "a b", false, 80, out, sizeof out, &len), DX_EINVAL);
    CHECK_RC(dx__proxy_write_connect(&p, "h\xc3\xa9", false, 80, out, sizeof out, &len), DX_EINVAL);
    CHECK_RC(dx__proxy_write_connect(&p, "", false, 80, out, sizeof out, &len), DX_EINVAL);

    /* too small: DX_ENOSPACE with the size needed */
    size_t need = len;
    CHECK_RC(dx__proxy_write_connect(&p, "ws.example", false, 443, out, 10, &len), DX_ENOSPACE);
    CHECK_EQ_INT(len, need);
    CHECK_RC(dx__proxy_write_connect(&p, "ws.example", false, 443, out, need, &len), DX_ENOSPACE);
    CHECK_RC(dx__proxy_write_connect(&p, "ws.example", false, 443, out, need + 1, &len), 0);
}
