/*
 * HTTP CONNECT proxy selection and requests (RFC 9110 §9.3.6), the way curl and
 * most tools read the environment.
 */
#include "runtime/proxy.h"
#include "base/internal.h"
#include "proto/hash.h"

#include <stdio.h>
#include <strings.h>

static int hex(int ch) {
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Percent-decode [p, p+n) into out (cap bytes). Returns the length or -1. */
static int pct_decode(const char *p, size_t n, char *out, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int ch = (unsigned char)p[i];
        if (ch == '%') {
            if (i + 2 >= n)
                return -1;
            int hi = hex(p[i + 1]), lo = hex(p[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            ch = hi * 16 + lo;
            i += 2;
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = (char)ch;
    }
    out[o] = '\0';
    return (int)o;
}

int dx__proxy_parse(const char *text, dx__proxy *out) {
    memset(out, 0, sizeof(*out));
    if (!text)
        return DX_EPROXY_URL;
    const char *p = text;
    const char *scheme_end = strstr(p, "://");
    if (scheme_end) {
        if ((size_t)(scheme_end - p) != 4 || strncasecmp(p, "http", 4) != 0)
            return DX_EPROXY_URL; /* https:// or socks proxies are not supported */
        p = scheme_end + 3;
    }
    size_t len = strcspn(p, "/?#");
    const char *end = p + len;
    if (*end == '/' && end[1] != '\0')
        return DX_EPROXY_URL; /* a path means this is not a proxy address */
    if (*end == '?' || *end == '#')
        return DX_EPROXY_URL;
    const char *at = NULL;
    for (const char *q = p; q < end; q++)
        if (*q == '@')
            at = q;
    if (at) {
        char cred[DX_PROXY_AUTH_MAX / 2];
        if ((size_t)(at - p) >= sizeof cred)
            return DX_EPROXY_URL;
        const char *colon = memchr(p, ':', (size_t)(at - p));
        char user[sizeof cred], pass[sizeof cred] = "";
        size_t ulen = colon ? (size_t)(colon - p) : (size_t)(at - p);
        if (pct_decode(p, ulen, user, sizeof user) < 0 ||
            (colon && pct_decode(colon + 1, (size_t)(at - colon - 1), pass, sizeof pass) < 0))
            return DX_EPROXY_URL;
        int n = snprintf(cred, sizeof cred, "%s:%s", user, pass);
        if (n < 0 || (size_t)n >= sizeof cred)
            return DX_EPROXY_URL;
        dx__base64_encode((const uint8_t *)cred, (size_t)n, out->auth);
        out->auth[dx__base64_encoded_len((size_t)n)] = '\0';
        p = at + 1;
    }
    const char *host = p, *host_end;
    if (*p == '[') {
        host = p + 1;
        host_end = memchr(host, ']', (size_t)(end - host));
        if (!host_end)
            return DX_EPROXY_URL;
        p = host_end + 1;
        out->ipv6 = true;
    } else {
        host_end = memchr(p, ':', (size_t)(end - p));
        if (!host_end)
            host_end = end;
        p = host_end;
    }
    size_t hlen = (size_t)(host_end - host);
    if (hlen == 0 || hlen > DX_PROXY_HOST_MAX)
        return DX_EPROXY_URL;
    for (size_t i = 0; i < hlen; i++) {
        unsigned char ch = (unsigned char)host[i];
        if (ch <= ' ' || ch >= 0x7F || ch == '@' || ch == '%' || ch == '[' || ch == ']' ||
            (ch == ':' && !out->ipv6))
            return DX_EPROXY_URL;
    }
    memcpy(out->host, host, hlen);
    out->port = DX_PROXY_DEFAULT_PORT;
    if (p < end && *p == ':') {
        p++;
        unsigned long port = 0;
        if (p == end)
            return DX_EPROXY_URL;
        for (; p < end; p++) {
            if (*p < '0' || *p > '9')
                return DX_EPROXY_URL;
            port = port * 10 + (unsigned long)(*p - '0');
            if (port > 65535)
                return DX_EPROXY_URL;
        }
        if (port == 0)
            return DX_EPROXY_URL;
        out->port = (uint16_t)port;
    } else if (p != end) {
        return DX_EPROXY_URL;
    }
    return 0;
}

/* Does one no_proxy entry [e, e+n) cover host? */
static bool entry_matches(const char *e, size_t n, const char *host) {
    while (n && (*e == ' ' || *e == '\t'))
        e++, n--;
    while (n && (e[n - 1] == ' ' || e[n - 1] == '\t'))
        n--;
    if (n == 1 && *e == '*')
        return true;
    if (n && *e == '[') { /* [v6]:port */
        const char *close = memchr(e, ']', n);
        if (!close)
            return false;
        e++;
        n = (size_t)(close - e);
    } else {
        const char *colon = memchr(e, ':', n);
        if (colon && !memchr(colon + 1, ':', n - (size_t)(colon - e) - 1))
            n = (size_t)(colon - e); /* host:port; an IPv6 literal has several colons */
    }
    if (n && *e == '.')
        e++, n--;
    if (!n)
        return false;
    size_t hl = strlen(host);
    if (hl == n)
        return strncasecmp(host, e, n) == 0;
    return hl > n && host[hl - n - 1] == '.' && strncasecmp(host + hl - n, e, n) == 0;
}

bool dx__no_proxy_match(const char *no_proxy, const char *host) {
    if (!no_proxy || !host)
        return false;
    const char *p = no_proxy;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (entry_matches(p, n, host))
            return true;
        p += n;
        if (*p == ',')
            p++;
    }
    return false;
}

static const char *env_pair(const char *(*get)(const char *), const char *lower,
                            const char *upper) {
    const char *v = get(lower);
    if (!v || !*v)
        v = get(upper);
    return v && *v ? v : NULL;
}

int dx__proxy_from_env(bool secure, const char *host, const char *(*get)(const char *name),
                       dx__proxy *out) {
    const char *no = env_pair(get, "no_proxy", "NO_PROXY");
    if (no && dx__no_proxy_match(no, host))
        return 0;
    const char *v = secure ? env_pair(get, "https_proxy", "HTTPS_PROXY")
                           : get("http_proxy"); /* not HTTP_PROXY: httpoxy (CGI) */
    if (!v || !*v)
        v = env_pair(get, "all_proxy", "ALL_PROXY");
    if (!v)
        return 0;
    int rc = dx__proxy_parse(v, out);
    return rc < 0 ? rc : 1;
}

int dx__proxy_write_connect(const dx__proxy *p, const char *host, bool host_ipv6, uint16_t port,
                            char *out, size_t cap, size_t *len) {
    for (const char *h = host; *h; h++) /* never let a host break the request line */
        if ((unsigned char)*h <= ' ' || (unsigned char)*h >= 0x7F)
            return DX_EINVAL;
    if (!*host)
        return DX_EINVAL;
    const char *lb = host_ipv6 ? "[" : "", *rb = host_ipv6 ? "]" : "";
    int n;
    if (p->auth[0])
        n = snprintf(out, cap,
                     "CONNECT %s%s%s:%u HTTP/1.1\r\nHost: %s%s%s:%u\r\n"
                     "Proxy-Authorization: Basic %s\r\n\r\n",
                     lb, host, rb, (unsigned)port, lb, host, rb, (unsigned)port, p->auth);
    else
        n = snprintf(out, cap, "CONNECT %s%s%s:%u HTTP/1.1\r\nHost: %s%s%s:%u\r\n\r\n", lb, host,
                     rb, (unsigned)port, lb, host, rb, (unsigned)port);
    if (n < 0)
        return DX_EINVAL;
    *len = (size_t)n;
    return (size_t)n >= cap ? DX_ENOSPACE : 0;
}
