/*
 * HTTP/1.1 head parsing and response writing (RFC 9112, RFC 9110).
 *
 * Two passes, so that a head arriving one byte at a time costs O(n) in total:
 * the scanner is a four-state automaton over the new bytes only (it stores how
 * far it got), and the parser runs once over the complete head.
 *
 * We are strict where RFC 9112 lets a recipient choose: a bare LF is rejected
 * (§2.2 allows accepting it as a line terminator, but a peer that sends one is
 * either broken or probing for a parser that disagrees with ours), obs-fold is
 * rejected (§5.2), whitespace before the colon is rejected (§5.1 MUST), and the
 * request line needs exactly one SP between its parts (§3). Leading empty lines
 * before the request line (§2.2 SHOULD ignore) are not skipped: a WebSocket
 * client opens the connection with the request line.
 */
#include "proto/http_internal.h"

/* ---- step 1: find the blank line ------------------------------------------ */

enum {
    SCAN_LINE,    /* inside a line (or at the very start of the head) */
    SCAN_LINE_CR, /* inside a line, just after CR */
    SCAN_BOL,     /* at the beginning of a line, after CRLF */
    SCAN_BOL_CR,  /* at the beginning of a line, just after CR */
    SCAN_DONE,    /* the head is complete; scanned is its length */
};
/* A failed scan keeps its error, negated, in state (all DX_E* are < -999), so a
 * repeated call repeats the error instead of scanning on. */
#define SCAN_ERR_MIN 1000u

static int scan_fail(dx_http_scan *s, size_t at, int err) {
    s->scanned = at;
    s->state = (uint32_t)-err;
    return err;
}

int dx_http_scan_feed(dx_http_scan *s, const uint8_t *buf, size_t len, size_t *head_len) {
    if (s->state == SCAN_DONE) {
        *head_len = s->scanned;
        return 0;
    }
    if (s->state >= SCAN_ERR_MIN)
        return -(int)s->state;
    if (s->state > SCAN_BOL_CR || len < s->scanned || (!buf && len > 0))
        return DX_EINVAL;

    size_t max = s->max_head ? s->max_head : DX_DEFAULT_MAX_HEAD;
    size_t end = len < max ? len : max; /* never look past the limit */
    uint32_t st = s->state;
    size_t i = s->scanned;
    for (; i < end; i++) {
        uint8_t c = buf[i];
        if (DX_LIKELY(c > '\r')) {
            /* the common case: an ordinary byte of a line */
            if (DX_UNLIKELY(st == SCAN_LINE_CR || st == SCAN_BOL_CR))
                return scan_fail(s, i, DX_EHTTP_BARE_CR);
            st = SCAN_LINE;
            continue;
        }
        switch (st) {
        case SCAN_LINE:
        case SCAN_BOL:
            if (c == '\r')
                st = (st == SCAN_LINE) ? SCAN_LINE_CR : SCAN_BOL_CR;
            else if (c == '\n')
                return scan_fail(s, i, DX_EHTTP_BARE_LF);
            else if (c == 0)
                return scan_fail(s, i, DX_EHTTP_NUL);
            else
                st = SCAN_LINE;
            break;
        case SCAN_LINE_CR:
            if (c != '\n')
                return scan_fail(s, i, DX_EHTTP_BARE_CR);
            st = SCAN_BOL;
            break;
        default: /* SCAN_BOL_CR */
            if (c != '\n')
                return scan_fail(s, i, DX_EHTTP_BARE_CR);
            s->scanned = i + 1;
            s->state = SCAN_DONE;
            *head_len = i + 1;
            return 0;
        }
    }
    s->scanned = i;
    s->state = st;
    if (i >= max) /* max bytes and no blank line: the head cannot fit */
        return scan_fail(s, i, DX_EHTTP_HEAD_TOO_LARGE);
    return DX_EINCOMPLETE;
}

/* ---- step 2: parse the complete head --------------------------------------- */

/*
 * The next line starting at *pos, without its CRLF. Returns 0, DX_EINCOMPLETE
 * when the buffer ends before a CRLF, or the error for the first NUL, bare CR or
 * bare LF in the line.
 */
static int next_line(const uint8_t *buf, size_t len, size_t *pos, dx_span *line) {
    size_t i = *pos;
    for (; i < len; i++) {
        uint8_t c = buf[i];
        if (DX_LIKELY(c > '\r'))
            continue;
        if (c == '\r') {
            if (i + 1 == len)
                return DX_EINCOMPLETE;
            if (buf[i + 1] != '\n')
                return DX_EHTTP_BARE_CR;
            line->ptr = buf + *pos;
            line->len = i - *pos;
            *pos = i + 2;
            return 0;
        }
        if (c == '\n')
            return DX_EHTTP_BARE_LF;
        if (c == 0)
            return DX_EHTTP_NUL;
    }
    return DX_EINCOMPLETE;
}

static bool is_digit(uint8_t c) {
    return c >= '0' && c <= '9';
}

/* "HTTP/" DIGIT "." DIGIT at @p (8 bytes available): the minor version, or -1. */
static int http_version(const uint8_t *p) {
    if (memcmp(p, "HTTP/", 5) != 0 || !is_digit(p[5]) || p[6] != '.' || !is_digit(p[7]))
        return -1;
    if (p[5] != '1')
        return -1; /* HTTP/0.9, HTTP/2.0...: not an HTTP/1 message */
    return p[7] - '0';
}

/* method SP request-target SP HTTP-version (RFC 9112 §3) */
static int parse_request_line(dx_span line, dx_http_request *req) {
    const uint8_t *p = line.ptr;
    size_t n = line.len, i = 0;

    while (i < n && dx__is_tchar(p[i]))
        i++;
    if (i == 0)
        return (n == 0 || dx__is_ows(p[0])) ? DX_EHTTP_BAD_REQUEST_LINE : DX_EHTTP_BAD_METHOD;
    if (i == n || p[i] == '\t')
        return DX_EHTTP_BAD_REQUEST_LINE; /* no target, or the wrong separator */
    if (p[i] != ' ')
        return DX_EHTTP_BAD_METHOD;
    req->method.ptr = p;
    req->method.len = i;

    size_t t = ++i; /* the target: printable ASCII other than SP */
    while (i < n && p[i] != ' ') {
        if (p[i] < 0x21 || p[i] > 0x7E)
            return DX_EHTTP_BAD_TARGET;
        i++;
    }
    if (i == t || i == n)
        return DX_EHTTP_BAD_REQUEST_LINE; /* two spaces, or no version */
    req->target.ptr = p + t;
    req->target.len = i - t;

    const uint8_t *v = p + i + 1;
    size_t vn = n - i - 1;
    if (vn == 0 || dx__is_ows(v[0]))
        return DX_EHTTP_BAD_REQUEST_LINE;
    if (vn < 8 || http_version(v) < 0)
        return DX_EHTTP_BAD_VERSION;
    if (vn > 8)
        return dx__is_ows(v[8]) ? DX_EHTTP_BAD_REQUEST_LINE : DX_EHTTP_BAD_VERSION;
    req->minor_version = http_version(v);
    return 0;
}

/* HTTP-version SP 3DIGIT SP [ reason-phrase ] (RFC 9112 §4); a missing
 * "SP reason" after the code is tolerated (§4 lets recipients accept it). */
static int parse_status_line(dx_span line, dx_http_response *resp) {
    const uint8_t *p = line.ptr;
    size_t n = line.len;

    if (n < 5 || memcmp(p, "HTTP/", 5) != 0)
        return DX_EHTTP_BAD_STATUS_LINE;
    if (n < 8 || http_version(p) < 0 || (n > 8 && is_digit(p[8])))
        return DX_EHTTP_BAD_VERSION;
    if (n < 12 || p[8] != ' ' || !is_digit(p[9]) || !is_digit(p[10]) || !is_digit(p[11]) ||
        p[9] == '0')
        return DX_EHTTP_BAD_STATUS_LINE;
    resp->minor_version = http_version(p);
    resp->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    resp->reason.ptr = p + n;
    resp->reason.len = 0;
    if (n == 12)
        return 0;
    if (p[12] != ' ')
        return DX_EHTTP_BAD_STATUS_LINE;
    for (size_t i = 13; i < n; i++)
        if (!dx__is_field_char(p[i])) /* HTAB / SP / VCHAR / obs-text */
            return DX_EHTTP_BAD_STATUS_LINE;
    resp->reason.ptr = p + 13;
    resp->reason.len = n - 13;
    return 0;
}

/* field-name ":" OWS field-value OWS (RFC 9112 §5) */
static int parse_field_line(dx_span line, dx_http_header *h) {
    const uint8_t *p = line.ptr;
    size_t n = line.len;

    if (dx__is_ows(p[0]))
        return DX_EHTTP_OBS_FOLD; /* §5.2; also whitespace before the first field */
    const uint8_t *colon = memchr(p, ':', n);
    if (!colon)
        return DX_EHTTP_NO_COLON;
    size_t name_len = (size_t)(colon - p), i = 0;
    while (i < name_len && dx__is_tchar(p[i]))
        i++;
    if (i == 0)
        return DX_EHTTP_BAD_HEADER_NAME;
    if (i < name_len) {
        size_t j = i;
        while (j < name_len && dx__is_ows(p[j]))
            j++;
        /* §5.1: "No whitespace is allowed between the field name and colon." */
        return (j == name_len && j > i) ? DX_EHTTP_SPACE_BEFORE_COLON : DX_EHTTP_BAD_HEADER_NAME;
    }
    size_t v = name_len + 1, end = n;
    for (size_t k = v; k < n; k++)
        if (!dx__is_field_char(p[k]))
            return DX_EHTTP_BAD_HEADER_VALUE;
    while (v < end && dx__is_ows(p[v]))
        v++;
    while (end > v && dx__is_ows(p[end - 1]))
        end--;
    h->name.ptr = p;
    h->name.len = name_len;
    h->value.ptr = p + v;
    h->value.len = end - v;
    return 0;
}

/* The field lines from *pos up to and including the blank line. */
static int parse_fields(const uint8_t *buf, size_t len, size_t pos, dx_http_header *headers,
                        size_t max_headers, size_t *num_headers) {
    if (!headers)
        max_headers = 0;
    for (;;) {
        dx_span line;
        int rc = next_line(buf, len, &pos, &line);
        if (rc < 0)
            return rc;
        if (line.len == 0)
            return 0;
        dx_http_header h;
        rc = parse_field_line(line, &h);
        if (rc < 0)
            return rc;
        if (*num_headers == max_headers)
            return DX_EHTTP_TOO_MANY_HEADERS;
        headers[(*num_headers)++] = h;
    }
}

int dx_http_parse_request(const uint8_t *buf, size_t len, dx_http_request *req,
                          dx_http_header *headers, size_t max_headers) {
    memset(req, 0, sizeof(*req));
    req->headers = headers;
    if (!buf && len > 0)
        return DX_EINVAL;
    size_t pos = 0;
    dx_span line;
    int rc = next_line(buf, len, &pos, &line);
    if (rc < 0)
        return rc;
    rc = parse_request_line(line, req);
    if (rc < 0)
        return rc;
    return parse_fields(buf, len, pos, headers, max_headers, &req->num_headers);
}

int dx_http_parse_response(const uint8_t *buf, size_t len, dx_http_response *resp,
                           dx_http_header *headers, size_t max_headers) {
    memset(resp, 0, sizeof(*resp));
    resp->headers = headers;
    if (!buf && len > 0)
        return DX_EINVAL;
    size_t pos = 0;
    dx_span line;
    int rc = next_line(buf, len, &pos, &line);
    if (rc < 0)
        return rc;
    rc = parse_status_line(line, resp);
    if (rc < 0)
        return rc;
    return parse_fields(buf, len, pos, headers, max_headers, &resp->num_headers);
}

/* ---- header lookups ------------------------------------------------------- */

const dx_http_header *dx_http_header_find(const dx_http_header *headers, size_t n,
                                          const char *name) {
    dx_span want = dx_span_cstr(name);
    for (size_t i = 0; i < n; i++)
        if (dx_span_eq_nocase(headers[i].name, want))
            return &headers[i];
    return NULL;
}

size_t dx_http_header_count(const dx_http_header *headers, size_t n, const char *name) {
    dx_span want = dx_span_cstr(name);
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        if (dx_span_eq_nocase(headers[i].name, want))
            count++;
    return count;
}

bool dx_http_list_next(dx_span value, size_t *pos, dx_span *elem) {
    const uint8_t *p = value.ptr;
    size_t n = value.len, i = *pos;
    while (i < n && (dx__is_ows(p[i]) || p[i] == ','))
        i++; /* empty elements are skipped (RFC 9110 §5.6.1.2) */
    if (i >= n) {
        *pos = n;
        return false;
    }
    size_t start = i;
    while (i < n && p[i] != ',')
        i++;
    size_t end = i;
    while (end > start && dx__is_ows(p[end - 1]))
        end--;
    elem->ptr = p + start;
    elem->len = end - start;
    *pos = i;
    return true;
}

bool dx_http_header_has_token(const dx_http_header *headers, size_t n, const char *name,
                              const char *token) {
    dx_span want = dx_span_cstr(name), tok = dx_span_cstr(token);
    for (size_t i = 0; i < n; i++) {
        if (!dx_span_eq_nocase(headers[i].name, want))
            continue;
        size_t pos = 0;
        dx_span elem;
        while (dx_http_list_next(headers[i].value, &pos, &elem))
            if (dx_span_eq_nocase(elem, tok))
                return true;
    }
    return false;
}

/* ---- writing -------------------------------------------------------------- */

/* RFC 9110 §15 (and RFC 6585 for 428, 429 and 431) */
static const struct {
    int status;
    const char *reason;
} reasons[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {200, "OK"},
    {201, "Created"},
    {204, "No Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {426, "Upgrade Required"},
    {428, "Precondition Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
};

const char *dx_http_reason(int status) {
    for (size_t i = 0; i < DX_ARRAY_SIZE(reasons); i++)
        if (reasons[i].status == status)
            return reasons[i].reason;
    return "";
}

int dx_http_write_response(uint8_t *out, size_t cap, size_t *len, int status,
                           const dx_http_header *headers, size_t num_headers, dx_span body) {
    if (status < 100 || status > 999 || (num_headers > 0 && !headers))
        return DX_EINVAL;
    /* RFC 9110 §6.4.1: 1xx and 204 responses have no content, and §8.6 forbids
     * Content-Length in them. */
    bool no_content = status < 200 || status == 204;
    if (no_content && body.len > 0)
        return DX_EINVAL;
    for (size_t i = 0; i < num_headers; i++)
        if (!dx__header_is_writable(&headers[i]))
            return DX_EINVAL;

    dx__writer w = {out, cap, 0};
    dx__w_str(&w, "HTTP/1.1 ");
    dx__w_uint(&w, (uint64_t)status);
    dx__w_bytes(&w, " ", 1);
    dx__w_str(&w, dx_http_reason(status));
    dx__w_bytes(&w, "\r\n", 2);
    for (size_t i = 0; i < num_headers; i++)
        dx__w_header(&w, headers[i].name, headers[i].value);
    if (status >= 200 && !dx__headers_have(headers, num_headers, "Connection"))
        dx__w_str(&w, "Connection: close\r\n");
    if (!no_content && !dx__headers_have(headers, num_headers, "Content-Length")) {
        dx__w_str(&w, "Content-Length: ");
        dx__w_uint(&w, body.len);
        dx__w_bytes(&w, "\r\n", 2);
    }
    dx__w_bytes(&w, "\r\n", 2);
    dx__w_span(&w, body);
    return dx__w_finish(&w, len);
}
