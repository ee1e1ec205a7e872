/*
 * WebSocket URLs the way a browser reads them: the WHATWG URL Standard's basic URL parser
 * for a special scheme, without a base URL (include/duplex/url.h has the rules).
 *
 * The standard first removes ASCII tab and newline from the whole input. Here the input is
 * never copied: every reader skips those three bytes itself (skip_tnl), which is the same
 * thing because none of them is a delimiter. dx_url_parse() finds the components, checks
 * them and measures each normalised form; the writers run the same code again with an
 * output buffer, after measuring again (so a dx_url changed by the caller cannot make
 * them write past @cap).
 */
#include "duplex/url.h"

#include "base/internal.h"

#include <string.h>

static bool is_tnl(uint8_t c) {
    return c == '\t' || c == '\n' || c == '\r';
}

/* The first index at or after @i, below @end, that is not tab, LF or CR; @end if none. */
static size_t skip_tnl(const uint8_t *p, size_t i, size_t end) {
    while (i < end && is_tnl(p[i]))
        i++;
    return i;
}

/* Bytes of p[i, end) other than tab, LF and CR. */
static size_t count_kept(const uint8_t *p, size_t i, size_t end) {
    size_t n = 0;
    for (; i < end; i++)
        n += !is_tnl(p[i]);
    return n;
}

static bool is_digit(int c) {
    return c >= '0' && c <= '9';
}

static bool is_hex(int c) {
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static unsigned hex_val(int c) {
    if (is_digit(c))
        return (unsigned)(c - '0');
    return (unsigned)((c | 0x20) - 'a' + 10);
}

static int lower(int c) {
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* ---- output ---------------------------------------------------------------------------- */

/* Bytes go to buf[len] while len < cap; len counts them all, so a NULL buffer measures. */
typedef struct sink {
    char *buf;
    size_t cap;
    size_t len;
} sink;

static void put(sink *o, int c) {
    if (o->buf && o->len < o->cap)
        o->buf[o->len] = (char)c;
    o->len++;
}

static const char hex_digits[] = "0123456789ABCDEF";

/* ---- percent-encode sets ("percent-encoded bytes") ------------------------------------- */

enum enc_set {
    ENC_QUERY,    /* special-query percent-encode set */
    ENC_PATH,     /* path percent-encode set, and '|' as Chromium */
    ENC_USERINFO, /* userinfo percent-encode set */
};

static bool must_encode(uint8_t c, enum enc_set set) {
    if (c < 0x21 || c > 0x7E) /* C0 controls, space, DEL and every non-ASCII byte */
        return true;
    switch (c) {
    case '"':
    case '#':
    case '<':
    case '>':
        return true; /* query set */
    case '\'':
        return set == ENC_QUERY; /* special-query only */
    case '?':
    case '^':
    case '`':
    case '{':
    case '}':
    case '|':
        return set != ENC_QUERY; /* path set ('|': Chromium's, and the userinfo set's) */
    case '/':
    case ':':
    case ';':
    case '=':
    case '@':
    case '[':
    case '\\':
    case ']':
        return set == ENC_USERINFO;
    default:
        return false;
    }
}

static void put_encoded(sink *o, uint8_t c, enum enc_set set) {
    if (must_encode(c, set)) {
        put(o, '%');
        put(o, hex_digits[c >> 4]);
        put(o, hex_digits[c & 15]);
    } else {
        put(o, c);
    }
}

/* p[i, end) without tab/LF/CR, percent-encoded with @set. */
static void put_component(sink *o, const uint8_t *p, size_t i, size_t end, enum enc_set set) {
    for (; i < end; i++)
        if (!is_tnl(p[i]))
            put_encoded(o, p[i], set);
}

/* ---- the path ("path state" for a special URL) ----------------------------------------- */

static bool is_slash(uint8_t c) {
    return c == '/' || c == '\\';
}

/* 0: an ordinary segment; 1: "single-dot URL path segment"; 2: "double-dot". */
static int dot_segment(const uint8_t *p, size_t a, size_t b) {
    char s[7];
    size_t n = 0;
    for (size_t i = a; i < b; i++) {
        if (is_tnl(p[i]))
            continue;
        if (n == 6)
            return 0; /* "%2e%2e" is the longest */
        s[n++] = (char)lower(p[i]);
    }
    s[n] = '\0';
    if (strcmp(s, ".") == 0 || strcmp(s, "%2e") == 0)
        return 1;
    if (strcmp(s, "..") == 0 || strcmp(s, ".%2e") == 0 || strcmp(s, "%2e.") == 0 ||
        strcmp(s, "%2e%2e") == 0)
        return 2;
    return 0;
}

/*
 * The serialised path of p[s, e), a region that is empty or starts with '/' or '\'. The
 * standard keeps a list of segments: ".." removes the last one, "." nothing, and either of
 * them as the LAST segment leaves an empty one (a trailing '/'). Walking the segments from
 * the right instead needs no list: a ".." cancels the nearest ordinary segment to its left
 * that no other ".." cancelled (the same pairing as brackets), so a counter of pending ".."
 * is enough. The kept segments are found right to left, so they are written right to left:
 * from position @len of @buf (which the measuring call, @buf NULL, returned) down to 0.
 */
static size_t path_serialize(const uint8_t *p, size_t s, size_t e, char *buf, size_t len) {
    size_t first = s < e ? s + 1 : s; /* the first segment starts after the leading slash */
    size_t total = 0, pos = len, pending = 0;
    bool last = true;
    size_t seg_end = e;
    for (;;) {
        size_t a = seg_end;
        while (a > first && !is_slash(p[a - 1]))
            a--;
        int dot = dot_segment(p, a, seg_end);
        bool keep, empty = false;
        if (last) {
            keep = true;
            empty = dot != 0;
            pending = dot == 2;
        } else if (dot == 2) {
            keep = false;
            pending++;
        } else if (dot == 1) {
            keep = false;
        } else if (pending) {
            keep = false;
            pending--;
        } else {
            keep = true;
        }
        if (keep) {
            sink m = {NULL, 0, 0};
            if (!empty)
                put_component(&m, p, a, seg_end, ENC_PATH);
            total += 1 + m.len;
            if (buf) {
                /* "/" then the segment, ending at pos */
                if (m.len + 1 > pos)
                    return total; /* cannot happen when @len came from the measuring call */
                sink w = {buf + pos - m.len, m.len, 0};
                if (!empty)
                    put_component(&w, p, a, seg_end, ENC_PATH);
                pos -= m.len + 1;
                buf[pos] = '/';
            }
        }
        last = false;
        if (a == first)
            break;
        seg_end = a - 1; /* before the separator */
    }
    return total;
}

/* ---- the host ("host parsing") --------------------------------------------------------- */

/* Reads a host's bytes percent-decoded ("percent-decode") and ASCII-lowercased, without
 * tab/LF/CR; a '%' not followed by two hex digits stays '%'. */
typedef struct host_rd {
    const uint8_t *p;
    size_t i;   /* next raw byte */
    size_t end; /* end of the host's raw bytes */
} host_rd;

/* The next byte, or -1 at the end. */
static int host_next(host_rd *r) {
    size_t i = skip_tnl(r->p, r->i, r->end);
    if (i == r->end) {
        r->i = i;
        return -1;
    }
    int c = r->p[i++];
    if (c == '%') {
        size_t j = skip_tnl(r->p, i, r->end);
        size_t k = j < r->end ? skip_tnl(r->p, j + 1, r->end) : r->end;
        if (k < r->end && is_hex(r->p[j]) && is_hex(r->p[k])) {
            c = (int)(hex_val(r->p[j]) << 4 | hex_val(r->p[k]));
            i = k + 1;
        }
    }
    r->i = i;
    return lower(c);
}

/* "forbidden domain code point" (ASCII ones; non-ASCII is handled apart) */
static bool forbidden_in_domain(int c) {
    if (c < 0x21 || c == 0x7F)
        return true;
    switch (c) {
    case '#':
    case '%':
    case '/':
    case ':':
    case '<':
    case '>':
    case '?':
    case '@':
    case '[':
    case '\\':
    case ']':
    case '^':
    case '|':
        return true;
    default:
        return false;
    }
}

/* A '.'-separated part of a host: where it starts (raw index) and its decoded length. */
typedef struct part {
    size_t at;
    size_t len;
} part;

#define IPV4_BIG 0x100000000ull /* every value from here on is too big anywhere */

/*
 * "IPv4 number parser" on a part: "0x"/"0X" then hex, "0" then octal, else decimal; "0x"
 * alone is 0. Values are kept exactly up to 2^32 - 1 and saturate at IPV4_BIG above.
 */
static bool ipv4_number(const uint8_t *p, size_t end, part pt, uint64_t *v) {
    if (pt.len == 0)
        return false;
    host_rd r = {p, pt.at, end};
    size_t left = pt.len;
    unsigned radix = 10;
    int c = host_next(&r);
    left--;
    if (pt.len >= 2 && c == '0') {
        c = host_next(&r);
        left--;
        if (c == 'x') {
            radix = 16;
            c = -1; /* no digit yet */
        } else {
            radix = 8;
        }
    }
    uint64_t n = 0;
    for (;;) {
        if (c >= 0) {
            unsigned d;
            if (is_digit(c))
                d = (unsigned)(c - '0');
            else if (c >= 'a' && c <= 'f')
                d = (unsigned)(c - 'a' + 10);
            else
                return false;
            if (d >= radix)
                return false;
            n = n * radix + d;
            if (n > IPV4_BIG)
                n = IPV4_BIG;
        }
        if (left == 0)
            break;
        c = host_next(&r);
        left--;
    }
    *v = n;
    return true;
}

/* True when every byte of the part is an ASCII digit (and there is at least one). */
static bool all_digits(const uint8_t *p, size_t end, part pt) {
    host_rd r = {p, pt.at, end};
    for (size_t k = 0; k < pt.len; k++)
        if (!is_digit(host_next(&r)))
            return false;
    return pt.len > 0;
}

/*
 * Check a domain (decoded) for forbidden and non-ASCII bytes, and split it at '.': the
 * first five parts go to @parts, the last two to *@last and *@prev. Returns the number of
 * parts, or 0 with *@rc set.
 */
static size_t domain_scan(const uint8_t *p, size_t i, size_t end, part parts[5], part *last,
                          part *prev, int *rc) {
    host_rd r = {p, i, end};
    size_t count = 0;
    bool bad = false, non_ascii = false;
    part cur = {i, 0};
    *prev = cur;
    for (;;) {
        int c = host_next(&r);
        if (c < 0 || c == '.') {
            if (count < 5)
                parts[count] = cur;
            count++;
            if (c < 0)
                break;
            *prev = cur;
            cur.at = r.i;
            cur.len = 0;
            continue;
        }
        if (c > 0x7F)
            non_ascii = true;
        else if (forbidden_in_domain(c))
            bad = true;
        cur.len++;
    }
    *last = cur;
    if (bad || non_ascii) {
        *rc = bad ? DX_EURL_HOST : DX_EURL_IDNA;
        return 0;
    }
    return count;
}

/* "ends in a number checker" */
static bool ends_in_number(const uint8_t *p, size_t end, size_t count, part last, part prev) {
    if (last.len == 0) {
        if (count == 1)
            return false;
        last = prev; /* a trailing '.' is ignored */
    }
    uint64_t v;
    return all_digits(p, end, last) || ipv4_number(p, end, last, &v);
}

/* "IPv4 parser" */
static bool ipv4_parse(const uint8_t *p, size_t end, const part parts[5], size_t count, part last,
                       uint8_t addr[4]) {
    if (last.len == 0 && count > 1)
        count--; /* the empty part after a trailing '.' */
    if (count > 4)
        return false;
    uint64_t n[4];
    for (size_t k = 0; k < count; k++)
        if (!ipv4_number(p, end, parts[k], &n[k]))
            return false;
    for (size_t k = 0; k + 1 < count; k++)
        if (n[k] > 255)
            return false;
    if (n[count - 1] >= 1ull << (8 * (5 - count)))
        return false;
    uint64_t v = n[count - 1];
    for (size_t k = 0; k + 1 < count; k++)
        v += n[k] << (8 * (3 - k));
    for (int k = 0; k < 4; k++)
        addr[k] = (uint8_t)(v >> (24 - 8 * k));
    return true;
}

/* "IPv6 parser" on s[0, n) (tab/LF/CR already removed). */
static bool ipv6_parse(const uint8_t *s, size_t n, uint16_t a[8]) {
    memset(a, 0, 8 * sizeof a[0]);
    size_t i = 0;
    int piece = 0, compress = -1;
    if (i < n && s[i] == ':') {
        if (n < 2 || s[1] != ':')
            return false;
        i += 2;
        compress = ++piece;
    }
    while (i < n) {
        if (piece == 8)
            return false;
        if (s[i] == ':') {
            if (compress >= 0)
                return false;
            i++;
            compress = ++piece;
            continue;
        }
        unsigned v = 0, len = 0;
        while (len < 4 && i < n && is_hex(s[i])) {
            v = v * 16 + hex_val(s[i]);
            i++;
            len++;
        }
        if (i < n && s[i] == '.') {
            /* an IPv4 address in the last 32 bits */
            if (len == 0 || piece > 6)
                return false;
            i -= len;
            int seen = 0;
            while (i < n) {
                if (seen > 0) {
                    if (s[i] != '.' || seen == 4)
                        return false;
                    i++;
                }
                if (i == n || !is_digit(s[i]))
                    return false;
                int v4 = -1;
                while (i < n && is_digit(s[i])) {
                    int d = s[i] - '0';
                    if (v4 < 0)
                        v4 = d;
                    else if (v4 == 0)
                        return false; /* a leading zero */
                    else
                        v4 = v4 * 10 + d;
                    if (v4 > 255)
                        return false;
                    i++;
                }
                a[piece] = (uint16_t)(a[piece] * 0x100 + v4);
                seen++;
                if (seen == 2 || seen == 4)
                    piece++;
            }
            if (seen != 4)
                return false;
            break;
        }
        if (i < n) {
            if (s[i] != ':')
                return false;
            i++;
            if (i == n)
                return false;
        }
        a[piece++] = (uint16_t)v;
    }
    if (compress >= 0) {
        int swaps = piece - compress;
        piece = 7;
        while (piece != 0 && swaps > 0) {
            uint16_t t = a[piece];
            a[piece] = a[compress + swaps - 1];
            a[compress + swaps - 1] = t;
            piece--;
            swaps--;
        }
    } else if (piece != 8) {
        return false;
    }
    return true;
}

/* "IPv6 serializer", without the brackets. */
static void ipv6_write(sink *o, const uint8_t addr[16]) {
    uint16_t a[8];
    for (int k = 0; k < 8; k++)
        a[k] = (uint16_t)(addr[2 * k] << 8 | addr[2 * k + 1]);
    int best = -1, best_len = 1; /* the first longest run of 2 or more zero pieces */
    for (int k = 0; k < 8;) {
        if (a[k] != 0) {
            k++;
            continue;
        }
        int r = k;
        while (r < 8 && a[r] == 0)
            r++;
        if (r - k > best_len) {
            best = k;
            best_len = r - k;
        }
        k = r;
    }
    for (int k = 0; k < 8; k++) {
        if (k == best) {
            put(o, ':');
            if (k == 0)
                put(o, ':');
            k += best_len - 1;
            continue;
        }
        bool started = false;
        for (int sh = 12; sh >= 0; sh -= 4) {
            unsigned d = (unsigned)(a[k] >> sh) & 15;
            if (d || started || sh == 0) {
                put(o, hex_digits[d] | 0x20); /* lowercase: digits are unchanged by | 0x20 */
                started = true;
            }
        }
        if (k != 7)
            put(o, ':');
    }
}

static void put_uint(sink *o, unsigned v) {
    char d[10];
    int n = 0;
    do {
        d[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        put(o, d[--n]);
}

static void host_serialize(sink *o, const dx_url *u) {
    if (u->host_kind == DX_URL_HOST_IPV4) {
        for (int k = 0; k < 4; k++) {
            if (k)
                put(o, '.');
            put_uint(o, u->addr[k]);
        }
    } else if (u->host_kind == DX_URL_HOST_IPV6) {
        ipv6_write(o, u->addr);
    } else {
        const uint8_t *p = u->host_text.ptr;
        host_rd r = {p, 0, u->host_text.len};
        for (int c; (c = host_next(&r)) >= 0;)
            put(o, c);
    }
}

/* "host parser" for a special URL on p[i, end), known not to be empty. */
static int host_parse(const uint8_t *p, size_t i, size_t end, dx_url *u) {
    i = skip_tnl(p, i, end);
    if (p[i] == '[') {
        /* an IPv6 address: at most 45 bytes when valid ("1111:...:255.255.255.255") */
        uint8_t s[48];
        size_t n = 0;
        for (size_t k = i + 1; k < end; k++) {
            if (is_tnl(p[k]))
                continue;
            if (n == sizeof s)
                return DX_EURL_HOST;
            s[n++] = p[k];
        }
        if (n == 0 || s[n - 1] != ']') /* "[::1]x", "[::1" */
            return DX_EURL_HOST;
        uint16_t a[8];
        if (!ipv6_parse(s, n - 1, a))
            return DX_EURL_HOST;
        for (int k = 0; k < 8; k++) {
            u->addr[2 * k] = (uint8_t)(a[k] >> 8);
            u->addr[2 * k + 1] = (uint8_t)a[k];
        }
        u->host_kind = DX_URL_HOST_IPV6;
        return 0;
    }
    part parts[5], last, prev;
    int rc = 0;
    size_t count = domain_scan(p, i, end, parts, &last, &prev, &rc);
    if (count == 0)
        return rc;
    if (ends_in_number(p, end, count, last, prev)) {
        if (!ipv4_parse(p, end, parts, count, last, u->addr))
            return DX_EURL_HOST;
        u->host_kind = DX_URL_HOST_IPV4;
        return 0;
    }
    u->host_kind = DX_URL_HOST_DOMAIN;
    return 0;
}

/* ---- userinfo -------------------------------------------------------------------------- */

/* username [":" password] ("URL serializer"); the first ':' splits them. */
static void userinfo_serialize(sink *o, dx_span t) {
    const uint8_t *p = t.ptr;
    size_t colon = t.len;
    for (size_t k = 0; k < t.len; k++)
        if (p[k] == ':') {
            colon = k;
            break;
        }
    put_component(o, p, 0, colon, ENC_USERINFO);
    if (colon < t.len && count_kept(p, colon + 1, t.len) > 0) {
        put(o, ':');
        put_component(o, p, colon + 1, t.len, ENC_USERINFO);
    }
}

/* ---- parse ------------------------------------------------------------------------------- */

static size_t resource_serialize(const dx_url *u, char *buf, size_t cap) {
    const uint8_t *base = u->path_text.ptr;
    size_t plen = path_serialize(base, 0, u->path_text.len, NULL, 0);
    if (buf && plen <= cap)
        path_serialize(base, 0, u->path_text.len, buf, plen);
    sink o = {buf ? buf + (plen < cap ? plen : cap) : NULL, plen < cap ? cap - plen : 0, 0};
    if (u->has_query) {
        put(&o, '?');
        put_component(&o, u->query_text.ptr, 0, u->query_text.len, ENC_QUERY);
    }
    return plen + o.len;
}

static dx_span span_of(const uint8_t *p, size_t a, size_t b) {
    dx_span s = {p + a, b - a};
    return s;
}

int dx_url_parse(dx_span text, dx_url *out) {
    const uint8_t *p = text.ptr;
    size_t n = text.len;
    if (!out || (!p && n) || n > SIZE_MAX / 4)
        return DX_EINVAL;

    /* strip leading and trailing C0 control or space */
    size_t start = 0, end = n;
    while (start < end && p[start] <= 0x20)
        start++;
    while (end > start && p[end - 1] <= 0x20)
        end--;

    /* "scheme start state", "scheme state": ASCII alpha, then alphanumerics, + - . */
    char scheme[6];
    size_t slen = 0, i = start;
    for (;; i++) {
        i = skip_tnl(p, i, end);
        if (i == end)
            return DX_EURL_SCHEME;
        int c = p[i];
        if (c == ':')
            break;
        bool alpha = (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
        if (!alpha && (slen == 0 || !(is_digit(c) || c == '+' || c == '-' || c == '.')))
            return DX_EURL_SCHEME; /* no scheme: a relative URL, which needs a base */
        if (slen < sizeof scheme)
            scheme[slen] = (char)lower(c);
        slen++;
    }
    i++;
    dx_url u;
    memset(&u, 0, sizeof u);
    if (slen == 2 && memcmp(scheme, "ws", 2) == 0)
        u.secure = false;
    else if (slen == 3 && memcmp(scheme, "wss", 3) == 0)
        u.secure = true;
    else if (slen == 4 && memcmp(scheme, "http", 4) == 0)
        u.secure = false; /* the WebSocket constructor: http is ws */
    else if (slen == 5 && memcmp(scheme, "https", 5) == 0)
        u.secure = true; /* and https is wss */
    else
        return DX_EURL_SCHEME;

    /* everything from the first '#' on is the fragment, refused once the rest parsed */
    const uint8_t *hash = i < end ? memchr(p + i, '#', end - i) : NULL;
    bool fragment = hash != NULL;
    if (hash)
        end = (size_t)(hash - p);

    /* "special authority slashes state", "special authority ignore slashes state" */
    while (i < end && (is_slash(p[i]) || is_tnl(p[i])))
        i++;

    /* "authority state": up to '/', '\', '?' (or the end); the last '@' ends the userinfo */
    size_t auth = i;
    while (i < end && !is_slash(p[i]) && p[i] != '?')
        i++;
    size_t auth_end = i, host = auth;
    for (size_t k = auth_end; k > auth; k--)
        if (p[k - 1] == '@') {
            u.userinfo_text = span_of(p, auth, k - 1);
            host = k;
            break;
        }
    if (count_kept(p, host, auth_end) == 0) /* "ws://", "ws://u@/", "ws:///" */
        return DX_EURL_HOST;

    /* "host state": a ':' outside brackets starts the port */
    size_t colon = auth_end;
    bool in_brackets = false;
    for (size_t k = host; k < auth_end; k++) {
        if (p[k] == '[')
            in_brackets = true;
        else if (p[k] == ']')
            in_brackets = false;
        else if (p[k] == ':' && !in_brackets) {
            colon = k;
            break;
        }
    }
    if (count_kept(p, host, colon) == 0) /* "ws://:80" */
        return DX_EURL_HOST;
    u.host_text = span_of(p, host, colon);
    int rc = host_parse(p, host, colon, &u);
    if (rc < 0)
        return rc;

    /* "port state" */
    uint16_t def = u.secure ? 443 : 80;
    u.port = def;
    if (colon < auth_end) {
        uint32_t v = 0;
        bool any = false;
        for (size_t k = colon + 1; k < auth_end; k++) {
            if (is_tnl(p[k]))
                continue;
            if (!is_digit(p[k]))
                return DX_EURL_PORT;
            v = v * 10 + (uint32_t)(p[k] - '0');
            if (v > 65535)
                return DX_EURL_PORT;
            any = true;
        }
        if (any) {
            if (v == 0) /* parsed by a browser, but nothing can be reached there */
                return DX_EURL_PORT;
            u.port = (uint16_t)v;
        }
    }
    u.port_explicit = u.port != def;

    /* "path state", "query state" */
    size_t q = auth_end;
    while (q < end && p[q] != '?')
        q++;
    u.path_text = span_of(p, auth_end, q);
    if (q < end) {
        u.has_query = true;
        u.query_text = span_of(p, q + 1, end);
    }
    if (fragment)
        return DX_EURL_FRAGMENT;

    sink m = {NULL, 0, 0};
    host_serialize(&m, &u);
    u.host_len = m.len;
    m.len = 0;
    userinfo_serialize(&m, u.userinfo_text);
    u.userinfo_len = m.len;
    u.resource_len = resource_serialize(&u, NULL, 0);
    *out = u;
    return 0;
}

/* ---- writers ----------------------------------------------------------------------------- */

int dx_url_write_host(const dx_url *url, char *out, size_t cap, size_t *len) {
    if (!url || !out || !len)
        return DX_EINVAL;
    sink o = {NULL, 0, 0};
    host_serialize(&o, url);
    *len = o.len;
    if (cap <= o.len)
        return DX_ENOSPACE;
    o = (sink){out, o.len, 0};
    host_serialize(&o, url);
    out[o.len] = '\0';
    return 0;
}

int dx_url_write_resource(const dx_url *url, char *out, size_t cap, size_t *len) {
    if (!url || !out || !len)
        return DX_EINVAL;
    size_t need = resource_serialize(url, NULL, 0);
    *len = need;
    if (cap <= need)
        return DX_ENOSPACE;
    resource_serialize(url, out, need);
    out[need] = '\0';
    return 0;
}

int dx_url_write_userinfo(const dx_url *url, char *out, size_t cap, size_t *len) {
    if (!url || !out || !len)
        return DX_EINVAL;
    sink o = {NULL, 0, 0};
    userinfo_serialize(&o, url->userinfo_text);
    *len = o.len;
    if (cap <= o.len)
        return DX_ENOSPACE;
    o = (sink){out, o.len, 0};
    userinfo_serialize(&o, url->userinfo_text);
    out[o.len] = '\0';
    return 0;
}
