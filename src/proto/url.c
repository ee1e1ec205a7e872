/*
 * WebSocket URL parser (RFC 6455 §3 over the RFC 3986 generic syntax).
 *
 * One pass per component over the caller's bytes; no allocation, nothing
 * decoded. The whole text is screened first for '#' and for bytes outside
 * 0x21..0x7E, so the component scanners only have to tell allowed printable
 * ASCII from the rest.
 */
#include "duplex/url.h"

#include "base/internal.h"

#include <string.h>

/* Character classes of RFC 3986 §2.2-2.3. */
enum {
    C_UNRES = 1, /* ALPHA DIGIT - . _ ~ */
    C_SUB = 2,   /* ! $ & ' ( ) * + , ; = */
};

static unsigned char_class(uint8_t c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return C_UNRES;
    switch (c) {
    case '-':
    case '.':
    case '_':
    case '~':
        return C_UNRES;
    case '!':
    case '$':
    case '&':
    case '\'':
    case '(':
    case ')':
    case '*':
    case '+':
    case ',':
    case ';':
    case '=':
        return C_SUB;
    default:
        return 0;
    }
}

static bool is_hex(uint8_t c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_digit(uint8_t c) {
    return c >= '0' && c <= '9';
}

/*
 * True when p[0..n) holds only unreserved, sub-delims, pct-encoded and the
 * characters of @extra (a NUL-terminated list, "" for none).
 */
static bool component_valid(const uint8_t *p, size_t n, const char *extra) {
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (char_class(c))
            continue;
        if (c == '%') {
            /* the two hex digits must lie inside this component */
            if (n - i < 3 || !is_hex(p[i + 1]) || !is_hex(p[i + 2]))
                return false;
            i += 2;
            continue;
        }
        if (c == 0 || !strchr(extra, c))
            return false;
    }
    return true;
}

/* dec-octet "." dec-octet "." dec-octet "." dec-octet (RFC 3986 §3.2.2): each
 * 0..255, no leading zero. */
static bool ipv4_valid(const uint8_t *p, size_t n) {
    size_t i = 0;
    for (int octet = 0; octet < 4; octet++) {
        if (octet > 0) {
            if (i == n || p[i] != '.')
                return false;
            i++;
        }
        size_t start = i;
        unsigned v = 0;
        while (i < n && is_digit(p[i]) && i - start < 3)
            v = v * 10 + (unsigned)(p[i++] - '0');
        size_t len = i - start;
        if (len == 0 || v > 255 || (len > 1 && p[start] == '0'))
            return false;
    }
    return i == n;
}

/*
 * The text form of an IPv6 address (RFC 4291 §2.2, RFC 3986 §3.2.2): eight
 * groups of 1-4 hex digits separated by ':', at most one "::" standing for one
 * or more zero groups, and optionally an IPv4 address as the last 32 bits.
 */
static bool ipv6_valid(const uint8_t *p, size_t n) {
    size_t i = 0;
    unsigned groups = 0;
    bool elided = false;
    if (n >= 2 && p[0] == ':' && p[1] == ':') {
        elided = true;
        i = 2;
    } else if (n > 0 && p[0] == ':') {
        return false;
    }
    while (i < n) {
        size_t start = i;
        while (i < n && is_hex(p[i]) && i - start < 5)
            i++;
        if (i < n && p[i] == '.') {
            /* IPv4 tail: the rest, from this group's start, is a dotted quad */
            if (groups > 6 || !ipv4_valid(p + start, n - start))
                return false;
            groups += 2;
            break;
        }
        size_t len = i - start;
        if (len == 0 || len > 4)
            return false;
        groups++;
        if (i == n)
            break;
        if (p[i] != ':')
            return false;
        i++;
        if (i < n && p[i] == ':') {
            if (elided)
                return false;
            elided = true;
            i++;
        } else if (i == n) {
            return false; /* a single trailing ':' */
        }
    }
    return elided ? groups <= 7 : groups == 8;
}

/* reg-name / IPv4address (RFC 3986 §3.2.2), with numeric-looking names held
 * to the dotted-quad form. */
static bool reg_name_valid(const uint8_t *p, size_t n) {
    if (n == 0 || !component_valid(p, n, ""))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_digit(p[i]) && p[i] != '.')
            return true;
    return ipv4_valid(p, n);
}

static dx_span span_of(const uint8_t *p, size_t n) {
    dx_span s = {p, n};
    return s;
}

static const uint8_t slash[1] = {'/'};

int dx_url_parse(dx_span text, dx_url *out) {
    const uint8_t *p = text.ptr;
    size_t n = text.len;
    if (!out || (!p && n))
        return DX_EINVAL;
    if (n == 0)
        return DX_EURL_SCHEME;
    if (memchr(p, '#', n)) /* RFC 6455 §3: fragments MUST NOT be used */
        return DX_EURL_FRAGMENT;
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x21 || p[i] > 0x7E)
            return DX_EHS_BAD_URL;

    dx_url u;
    memset(&u, 0, sizeof u);

    /* scheme ":" */
    const uint8_t *colon = memchr(p, ':', n);
    if (!colon)
        return DX_EURL_SCHEME;
    dx_span scheme = span_of(p, (size_t)(colon - p));
    if (dx_span_eq_nocase(scheme, dx_span_cstr("wss")))
        u.secure = true;
    else if (!dx_span_eq_nocase(scheme, dx_span_cstr("ws")))
        return DX_EURL_SCHEME;
    size_t i = scheme.len + 1;

    /* "//" authority, ending at the first '/' or '?' */
    if (n - i < 2 || p[i] != '/' || p[i + 1] != '/')
        return DX_EURL_HOST;
    i += 2;
    size_t auth = i;
    while (i < n && p[i] != '/' && p[i] != '?')
        i++;
    size_t auth_end = i;

    /* userinfo "@": '@' cannot appear unencoded in userinfo, so the first one
     * ends it; any later '@' then fails the host check. */
    size_t h = auth;
    const uint8_t *at = memchr(p + auth, '@', auth_end - auth);
    if (at) {
        size_t ulen = (size_t)(at - (p + auth));
        if (!component_valid(p + auth, ulen, ":"))
            return DX_EHS_BAD_URL;
        u.userinfo = span_of(p + auth, ulen);
        h = auth + ulen + 1;
    }

    /* host */
    size_t port_at; /* index of the ':' before the port, or auth_end */
    if (h < auth_end && p[h] == '[') {
        const uint8_t *close = memchr(p + h, ']', auth_end - h);
        if (!close)
            return DX_EURL_HOST;
        size_t lit = h + 1, lit_len = (size_t)(close - (p + lit));
        if (!ipv6_valid(p + lit, lit_len)) /* also refuses "%25" zone IDs */
            return DX_EURL_HOST;
        u.host = span_of(p + lit, lit_len);
        u.host_is_ipv6 = true;
        port_at = lit + lit_len + 1;
        if (port_at < auth_end && p[port_at] != ':')
            return DX_EURL_HOST;
    } else {
        const uint8_t *c = memchr(p + h, ':', auth_end - h);
        port_at = c ? (size_t)(c - p) : auth_end;
        if (!reg_name_valid(p + h, port_at - h))
            return DX_EURL_HOST;
        u.host = span_of(p + h, port_at - h);
    }

    /* ":" port; an empty port means the default (RFC 3986 §3.2.3) */
    u.port = u.secure ? 443 : 80;
    if (port_at < auth_end && auth_end - port_at > 1) {
        uint32_t v = 0;
        for (size_t k = port_at + 1; k < auth_end; k++) {
            if (!is_digit(p[k]))
                return DX_EURL_PORT;
            v = v * 10 + (uint32_t)(p[k] - '0');
            if (v > 65535)
                return DX_EURL_PORT;
        }
        if (v == 0)
            return DX_EURL_PORT;
        u.port = (uint16_t)v;
        u.port_explicit = true;
    }

    /* path-abempty [ "?" query ] */
    size_t path = auth_end;
    while (i < n && p[i] != '?')
        i++;
    if (!component_valid(p + path, i - path, ":@/"))
        return DX_EHS_BAD_URL;
    if (i < n) {
        if (!component_valid(p + i + 1, n - i - 1, ":@/?"))
            return DX_EHS_BAD_URL;
        u.has_query = true;
        u.query = span_of(p + i + 1, n - i - 1);
    }
    if (i > path) {
        u.path = span_of(p + path, i - path);
        u.resource = span_of(p + path, n - path);
    } else {
        u.path = span_of(slash, 1);
        if (!u.has_query)
            u.resource = u.path;
        /* else "/?query" is not in the text: resource stays empty */
    }
    *out = u;
    return 0;
}

int dx_url_write_resource(const dx_url *url, char *out, size_t cap, size_t *len) {
    if (!url || !out || !len)
        return DX_EINVAL;
    size_t need = url->path.len + (url->has_query ? 1 + url->query.len : 0);
    *len = need;
    if (cap <= need)
        return DX_ENOSPACE;
    if (url->path.len)
        memcpy(out, url->path.ptr, url->path.len);
    size_t o = url->path.len;
    if (url->has_query) {
        out[o++] = '?';
        if (url->query.len)
            memcpy(out + o, url->query.ptr, url->query.len);
        o += url->query.len;
    }
    out[o] = '\0';
    return 0;
}
