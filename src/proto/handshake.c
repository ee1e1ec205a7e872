/*
 * The WebSocket opening handshake (RFC 6455 §4), both sides. Everything works on
 * parsed heads (http1.c) and writes into caller buffers; nothing allocates.
 */
#include "proto/hash.h"
#include "proto/http_internal.h"

#include "duplex/handshake.h"

/* §1.3, §4.2.2 */
static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

#define NONCE_LEN 16 /* §4.1: the key is 16 random bytes, base64-encoded */

void dx_handshake_accept_key(dx_span key, char out[DX_ACCEPT_LEN]) {
    uint8_t digest[DX_SHA1_LEN];
    dx__sha1_ctx c;
    dx__sha1_init(&c);
    dx__sha1_update(&c, key.ptr, key.len);
    dx__sha1_update(&c, ws_guid, sizeof(ws_guid) - 1);
    dx__sha1_final(&c, digest);
    dx__base64_encode(digest, sizeof(digest), out);
}

static bool span_eq_str(dx_span s, const char *str) {
    return dx_span_eq(s, dx_span_cstr(str));
}

/* True when @k is exactly the canonical base64 of 16 bytes (§4.2.1 item 5). */
static bool key_is_valid(dx_span k) {
    uint8_t raw[NONCE_LEN + 2];
    size_t n;
    return k.len == DX_KEY_LEN && dx__base64_decode(k.ptr, k.len, raw, sizeof(raw), &n) == 0 &&
           n == NONCE_LEN;
}

/* ---- server side ---------------------------------------------------------- */

/* Collect the offered subprotocols: comma lists across every
 * Sec-WebSocket-Protocol line, each element a token, all distinct (§4.1 item 10). */
static int collect_protocols(const dx_http_header *h, size_t n, dx_ws_request *out) {
    dx_span name = dx_span_cstr("Sec-WebSocket-Protocol");
    bool present = false;
    for (size_t i = 0; i < n; i++) {
        if (!dx_span_eq_nocase(h[i].name, name))
            continue;
        present = true;
        size_t pos = 0;
        dx_span elem;
        while (dx_http_list_next(h[i].value, &pos, &elem)) {
            if (!dx__span_is_token(elem))
                return DX_EHS_BAD_PROTOCOL;
            for (size_t j = 0; j < out->num_protocols; j++)
                if (dx_span_eq(out->protocols[j], elem))
                    return DX_EHS_BAD_PROTOCOL;
            if (out->num_protocols == DX_MAX_PROTOCOLS)
                return DX_EHS_TOO_MANY;
            out->protocols[out->num_protocols++] = elem;
        }
    }
    /* 1#token: a header line that names no protocol at all is malformed */
    return (present && out->num_protocols == 0) ? DX_EHS_BAD_PROTOCOL : 0;
}

int dx_handshake_check_request(const dx_http_request *req, dx_ws_request *out) {
    memset(out, 0, sizeof(*out));
    out->http = req;
    const dx_http_header *h = req->headers;
    size_t n = req->num_headers;
    const dx_http_header *f;

    /* §4.2.1 item 1: an HTTP/1.1 or higher GET request */
    if (!span_eq_str(req->method, "GET")) /* methods are case-sensitive (RFC 9110 §9.1) */
        return DX_EHS_METHOD;
    if (req->minor_version < 1)
        return DX_EHS_HTTP_VERSION;

    /* The resource name: origin-form only (absolute-path [ "?" query ]). */
    dx_span t = req->target;
    if (t.len == 0 || t.ptr[0] != '/' || memchr(t.ptr, '#', t.len))
        return DX_EHTTP_BAD_TARGET;
    const uint8_t *q = memchr(t.ptr, '?', t.len);
    out->path.ptr = t.ptr;
    out->path.len = q ? (size_t)(q - t.ptr) : t.len;
    out->query.ptr = q ? q + 1 : t.ptr + t.len;
    out->query.len = q ? t.len - out->path.len - 1 : 0;

    /* item 2: Host (RFC 9112 §3.2: exactly one) */
    if (dx_http_header_count(h, n, "Host") != 1)
        return DX_EHS_NO_HOST;
    f = dx_http_header_find(h, n, "Host");
    if (f->value.len == 0)
        return DX_EHS_NO_HOST;
    out->host = f->value;

    /* items 3, 4 */
    if (!dx_http_header_has_token(h, n, "Upgrade", "websocket"))
        return DX_EHS_NO_UPGRADE;
    if (!dx_http_header_has_token(h, n, "Connection", "upgrade"))
        return DX_EHS_NO_CONNECTION;

    /* item 6 before item 5: a client of an older draft (no key, or Key1/Key2) is
     * told which version we speak (426, §4.4) rather than just refused (400). */
    size_t count = dx_http_header_count(h, n, "Sec-WebSocket-Version");
    if (count == 0)
        return DX_EHS_NO_VERSION;
    f = dx_http_header_find(h, n, "Sec-WebSocket-Version");
    if (count > 1 || !span_eq_str(f->value, "13"))
        return DX_EHS_BAD_VERSION;

    /* item 5 */
    count = dx_http_header_count(h, n, "Sec-WebSocket-Key");
    if (count == 0)
        return DX_EHS_NO_KEY;
    if (count > 1)
        return DX_EHS_DUPLICATE_KEY;
    f = dx_http_header_find(h, n, "Sec-WebSocket-Key");
    if (!key_is_valid(f->value))
        return DX_EHS_BAD_KEY;
    out->key = f->value;

    /* items 8, 9 (optional) */
    int rc = collect_protocols(h, n, out);
    if (rc < 0)
        return rc;
    rc = dx_ext_parse(h, n, out->extensions, DX_MAX_EXTENSIONS, out->ext_params, DX_MAX_EXT_PARAMS,
                      &out->num_extensions);
    if (rc < 0)
        return rc;

    /* item 7 (optional): the first Origin, if any */
    f = dx_http_header_find(h, n, "Origin");
    if (f) {
        out->origin = f->value;
        out->has_origin = true;
    }
    return 0;
}

int dx_handshake_refusal_status(int err) {
    switch (err) {
    case DX_EHS_METHOD:
        return 405;
    case DX_EHS_NO_UPGRADE:
    case DX_EHS_NO_CONNECTION:
    case DX_EHS_NO_VERSION:
    case DX_EHS_BAD_VERSION:
        return 426;
    case DX_EHTTP_HEAD_TOO_LARGE:
    case DX_EHTTP_TOO_MANY_HEADERS:
        return 431;
    case DX_EHS_HTTP_VERSION:
    case DX_EHS_NO_HOST:
    case DX_EHS_NO_KEY:
    case DX_EHS_DUPLICATE_KEY:
    case DX_EHS_BAD_KEY:
    case DX_EHS_BAD_PROTOCOL:
    case DX_EHS_BAD_EXTENSIONS:
    case DX_EHS_TOO_MANY:
    case DX_EHS_NO_PROTOCOL:
    case DX_EHTTP_NUL:
    case DX_EHTTP_BARE_CR:
    case DX_EHTTP_BARE_LF:
    case DX_EHTTP_OBS_FOLD:
    case DX_EHTTP_BAD_METHOD:
    case DX_EHTTP_BAD_TARGET:
    case DX_EHTTP_BAD_VERSION:
    case DX_EHTTP_BAD_REQUEST_LINE:
    case DX_EHTTP_BAD_STATUS_LINE:
    case DX_EHTTP_BAD_HEADER_NAME:
    case DX_EHTTP_BAD_HEADER_VALUE:
    case DX_EHTTP_NO_COLON:
    case DX_EHTTP_SPACE_BEFORE_COLON:
        return 400;
    default:
        return DX_EINVAL;
    }
}

#define HDR(n, v)                                                                                  \
    {                                                                                              \
        {(const uint8_t *)(n), sizeof(n) - 1}, {                                                   \
            (const uint8_t *)(v), sizeof(v) - 1                                                    \
        }                                                                                          \
    }

int dx_handshake_write_refusal(int err, uint8_t *out, size_t cap, size_t *len) {
    static const dx_http_header h405[] = {
        HDR("Allow", "GET"),
        HDR("Content-Type", "text/plain; charset=utf-8"),
    };
    /* RFC 9110 §15.5.22: a 426 carries Upgrade, and §7.8: whoever sends Upgrade
     * also lists "upgrade" in Connection; RFC 6455 §4.4 adds the version. */
    static const dx_http_header h426[] = {
        HDR("Upgrade", "websocket"),
        HDR("Connection", "Upgrade, close"),
        HDR("Sec-WebSocket-Version", "13"),
        HDR("Content-Type", "text/plain; charset=utf-8"),
    };
    static const dx_http_header hplain[] = {
        HDR("Content-Type", "text/plain; charset=utf-8"),
    };
    int status = dx_handshake_refusal_status(err);
    if (status < 0)
        return status;
    const dx_http_header *h = hplain;
    size_t nh = DX_ARRAY_SIZE(hplain);
    if (status == 405) {
        h = h405;
        nh = DX_ARRAY_SIZE(h405);
    } else if (status == 426) {
        h = h426;
        nh = DX_ARRAY_SIZE(h426);
    }
    /* The body is the message plus a newline; build it in a small local buffer
     * (every dx_strerror text is short). */
    char body[96];
    const char *msg = dx_strerror(err);
    size_t m = strlen(msg);
    if (m > sizeof(body) - 1)
        m = sizeof(body) - 1;
    memcpy(body, msg, m);
    body[m++] = '\n';
    dx_span b = {(const uint8_t *)body, m};
    return dx_http_write_response(out, cap, len, status, h, nh, b);
}

/* An extra header that must not repeat one the handshake writes itself. */
static bool is_reserved(dx_span name, const char *const *reserved, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (dx_span_eq_nocase(name, dx_span_cstr(reserved[i])))
            return true;
    return false;
}

/* True when @v is a well-formed extensions value that fits our arrays. */
/* Extra headers must be writable and must not repeat one the handshake writes. */
static bool extra_headers_valid(const dx_http_header *h, size_t n, const char *const *reserved,
                                size_t num_reserved) {
    if (n > 0 && !h)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!dx__header_is_writable(&h[i]) || is_reserved(h[i].name, reserved, num_reserved))
            return false;
    return true;
}

static bool extensions_valid(dx_span v) {
    dx_ext exts[DX_MAX_EXTENSIONS];
    dx_ext_param params[DX_MAX_EXT_PARAMS];
    size_t ne = 0, np = 0;
    return dx__span_is_field_value(v) &&
           dx_ext_parse_value(v, exts, DX_MAX_EXTENSIONS, &ne, params, DX_MAX_EXT_PARAMS, &np) == 0;
}

int dx_handshake_select_protocol(const dx_ws_request *req, const char *const *supported,
                                 size_t num_supported, dx_span *out) {
    if (!req || !out || (num_supported && !supported))
        return DX_EINVAL;
    for (size_t i = 0; i < req->num_protocols; i++) /* the client's preference order */
        for (size_t j = 0; j < num_supported; j++)
            if (supported[j] && dx_span_eq(req->protocols[i], dx_span_cstr(supported[j]))) {
                *out = req->protocols[i];
                return 0;
            }
    *out = (dx_span){0};
    return req->num_protocols ? DX_EHS_NO_PROTOCOL : 0;
}

int dx_handshake_write_accept(const dx_ws_request *req, const dx_accept_options *opts, uint8_t *out,
                              size_t cap, size_t *len) {
    static const dx_accept_options none;
    static const char *const reserved[] = {"Sec-WebSocket-Accept", "Sec-WebSocket-Protocol",
                                           "Sec-WebSocket-Extensions", "Upgrade", "Connection"};
    if (!opts)
        opts = &none;
    if (!key_is_valid(req->key))
        return DX_EINVAL;
    if (opts->protocol.len > 0) {
        bool offered = false;
        for (size_t i = 0; i < req->num_protocols && !offered; i++)
            offered = dx_span_eq(req->protocols[i], opts->protocol);
        if (!offered) /* §4.2.2: the server selects one of the client's values */
            return DX_EINVAL;
    }
    if (opts->extensions.len > 0 && !extensions_valid(opts->extensions))
        return DX_EINVAL;
    if (!extra_headers_valid(opts->headers, opts->num_headers, reserved, DX_ARRAY_SIZE(reserved)))
        return DX_EINVAL;

    char accept[DX_ACCEPT_LEN];
    dx_handshake_accept_key(req->key, accept);
    dx__writer w = {out, cap, 0};
    dx__w_str(&w, "HTTP/1.1 101 Switching Protocols\r\n"
                  "Upgrade: websocket\r\n"
                  "Connection: Upgrade\r\n"
                  "Sec-WebSocket-Accept: ");
    dx__w_bytes(&w, accept, DX_ACCEPT_LEN);
    dx__w_bytes(&w, "\r\n", 2);
    if (opts->protocol.len > 0)
        dx__w_header(&w, dx_span_cstr("Sec-WebSocket-Protocol"), opts->protocol);
    if (opts->extensions.len > 0)
        dx__w_header(&w, dx_span_cstr("Sec-WebSocket-Extensions"), opts->extensions);
    for (size_t i = 0; i < opts->num_headers; i++)
        dx__w_header(&w, opts->headers[i].name, opts->headers[i].value);
    dx__w_bytes(&w, "\r\n", 2);
    return dx__w_finish(&w, len);
}

/* ---- client side ---------------------------------------------------------- */

int dx_client_handshake_init(dx_client_handshake *hs, const dx_random *random) {
    uint8_t nonce[NONCE_LEN];
    if (!random)
        random = dx_random_default();
    int rc = random->fill(nonce, sizeof(nonce), random->ctx);
    if (rc != 0)
        return rc < 0 ? rc : DX_EINVAL;
    dx__base64_encode(nonce, sizeof(nonce), hs->key);
    hs->key[DX_KEY_LEN] = '\0';
    dx_handshake_accept_key(dx_span_cstr(hs->key), hs->accept);
    hs->accept[DX_ACCEPT_LEN] = '\0';
    memset(nonce, 0, sizeof(nonce));
    return 0;
}

static bool is_hex_or(uint8_t c, const char *extra) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
           (c != 0 && strchr(extra, c) != NULL);
}

/* A host we can put in the Host header: a reg-name or IPv4 address without the
 * URI delimiters, or an IPv6 literal (hex digits, ':' and '.'; no zone ID). */
static int host_kind(const char *host) {
    size_t n = strlen(host);
    if (n == 0)
        return -1;
    bool v6 = memchr(host, ':', n) != NULL;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)host[i];
        if (v6 ? !is_hex_or(c, ":.") : (c < 0x21 || c > 0x7E || strchr("/?#@[]\\", c)))
            return -1;
    }
    return v6 ? 6 : 4;
}

/* A resource name (§3): '/' then printable ASCII without SP, and no fragment. */
static bool resource_valid(const char *r) {
    if (r[0] != '/')
        return false;
    for (const char *p = r; *p; p++)
        if ((uint8_t)*p < 0x21 || (uint8_t)*p > 0x7E || *p == '#')
            return false;
    return true;
}

int dx_handshake_write_request(const dx_client_handshake *hs, const dx_request_options *opts,
                               uint8_t *out, size_t cap, size_t *len) {
    static const char *const reserved[] = {"Host", "Sec-WebSocket-Key", "Sec-WebSocket-Version"};
    dx_span key = {(const uint8_t *)hs->key, strnlen(hs->key, sizeof(hs->key))};
    if (!opts || !opts->host || !key_is_valid(key))
        return DX_EINVAL;
    int kind = host_kind(opts->host);
    if (kind < 0)
        return DX_EINVAL;
    const char *resource = opts->resource ? opts->resource : "/";
    if (!resource_valid(resource))
        return DX_EINVAL;
    dx_span origin = dx_span_cstr(opts->origin);
    if (!dx__span_is_field_value(origin))
        return DX_EINVAL;
    if (opts->num_protocols > 0 && !opts->protocols)
        return DX_EINVAL;
    for (size_t i = 0; i < opts->num_protocols; i++) {
        dx_span p = dx_span_cstr(opts->protocols[i]);
        if (!dx__span_is_token(p))
            return DX_EINVAL;
        for (size_t j = 0; j < i; j++) /* §4.1 item 10: all unique */
            if (dx_span_eq(p, dx_span_cstr(opts->protocols[j])))
                return DX_EINVAL;
    }
    dx_span ext = dx_span_cstr(opts->extensions);
    if (ext.len > 0 && !extensions_valid(ext))
        return DX_EINVAL;
    if (!extra_headers_valid(opts->headers, opts->num_headers, reserved, DX_ARRAY_SIZE(reserved)))
        return DX_EINVAL;

    uint16_t def = opts->secure ? 443 : 80;
    dx__writer w = {out, cap, 0};
    dx__w_str(&w, "GET ");
    dx__w_str(&w, resource);
    dx__w_str(&w, " HTTP/1.1\r\nHost: ");
    if (kind == 6)
        dx__w_bytes(&w, "[", 1);
    dx__w_str(&w, opts->host);
    if (kind == 6)
        dx__w_bytes(&w, "]", 1);
    if (opts->port != 0 && opts->port != def) {
        dx__w_bytes(&w, ":", 1);
        dx__w_uint(&w, opts->port);
    }
    dx__w_str(&w, "\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\n"
                  "Sec-WebSocket-Key: ");
    dx__w_bytes(&w, hs->key, DX_KEY_LEN);
    dx__w_str(&w, "\r\nSec-WebSocket-Version: 13\r\n");
    if (origin.len > 0)
        dx__w_header(&w, dx_span_cstr("Origin"), origin);
    if (opts->num_protocols > 0) {
        dx__w_str(&w, "Sec-WebSocket-Protocol: ");
        for (size_t i = 0; i < opts->num_protocols; i++) {
            if (i > 0)
                dx__w_bytes(&w, ", ", 2);
            dx__w_str(&w, opts->protocols[i]);
        }
        dx__w_bytes(&w, "\r\n", 2);
    }
    if (ext.len > 0)
        dx__w_header(&w, dx_span_cstr("Sec-WebSocket-Extensions"), ext);
    for (size_t i = 0; i < opts->num_headers; i++)
        dx__w_header(&w, opts->headers[i].name, opts->headers[i].value);
    dx__w_bytes(&w, "\r\n", 2);
    return dx__w_finish(&w, len);
}

/* §4.1 client check 2: every Upgrade element is "websocket" and there is one. */
static bool upgrade_is_websocket(const dx_http_header *h, size_t n) {
    dx_span name = dx_span_cstr("Upgrade"), ws = dx_span_cstr("websocket");
    size_t found = 0;
    for (size_t i = 0; i < n; i++) {
        if (!dx_span_eq_nocase(h[i].name, name))
            continue;
        size_t pos = 0;
        dx_span elem;
        while (dx_http_list_next(h[i].value, &pos, &elem)) {
            if (!dx_span_eq_nocase(elem, ws))
                return false;
            found++;
        }
    }
    return found > 0;
}

/* §4.1 client check 5: every extension in the answer was named in our offer. */
static int check_extensions(const dx_request_options *opts, const dx_http_header *h, size_t n,
                            dx_span *answer) {
    size_t count = dx_http_header_count(h, n, "Sec-WebSocket-Extensions");
    if (count == 0)
        return 0;
    if (count > 1) /* §11.3.2: MUST NOT appear more than once in a response */
        return DX_EHS_EXTENSION_NOT_OFFERED;
    *answer = dx_http_header_find(h, n, "Sec-WebSocket-Extensions")->value;

    dx_ext got[DX_MAX_EXTENSIONS], offered[DX_MAX_EXTENSIONS];
    dx_ext_param gp[DX_MAX_EXT_PARAMS], op[DX_MAX_EXT_PARAMS];
    size_t ng = 0, npg = 0, no = 0, npo = 0;
    if (dx_ext_parse_value(*answer, got, DX_MAX_EXTENSIONS, &ng, gp, DX_MAX_EXT_PARAMS, &npg) < 0)
        return DX_EHS_EXTENSION_NOT_OFFERED;
    dx_span offer = dx_span_cstr(opts ? opts->extensions : NULL);
    if (offer.len == 0)
        return DX_EHS_EXTENSION_NOT_OFFERED; /* we offered none */
    if (dx_ext_parse_value(offer, offered, DX_MAX_EXTENSIONS, &no, op, DX_MAX_EXT_PARAMS, &npo) < 0)
        return DX_EINVAL; /* our own offer is malformed: write_request refuses it */
    for (size_t i = 0; i < ng; i++) {
        bool ok = false;
        for (size_t j = 0; j < no && !ok; j++)
            ok = dx_span_eq_nocase(got[i].name, offered[j].name);
        if (!ok)
            return DX_EHS_EXTENSION_NOT_OFFERED;
    }
    return 0;
}

/* §4.1 client check 6: at most one subprotocol, and one we offered. With none
 * chosen after we offered some, the browser's rule (the Fetch standard's "establish
 * a WebSocket connection") fails the connection; the RFC allows it. */
static int check_protocol(const dx_request_options *opts, const dx_http_header *h, size_t n,
                          dx_span *chosen) {
    size_t count = dx_http_header_count(h, n, "Sec-WebSocket-Protocol");
    if (count == 0) {
        bool offered_some = opts && opts->protocols && opts->num_protocols > 0;
        return offered_some && !opts->protocol_optional ? DX_EHS_NO_PROTOCOL : 0;
    }
    if (count > 1) /* §11.3.4: MUST NOT appear more than once in a response */
        return DX_EHS_PROTOCOL_NOT_OFFERED;
    dx_span v = dx_http_header_find(h, n, "Sec-WebSocket-Protocol")->value;
    size_t offered = opts && opts->protocols ? opts->num_protocols : 0;
    for (size_t i = 0; i < offered; i++) {
        if (v.len > 0 && dx_span_eq(v, dx_span_cstr(opts->protocols[i]))) {
            *chosen = v;
            return 0;
        }
    }
    return DX_EHS_PROTOCOL_NOT_OFFERED;
}

int dx_handshake_check_response(const dx_client_handshake *hs, const dx_request_options *opts,
                                const dx_http_response *resp, dx_ws_response *out) {
    const dx_http_header *h = resp->headers;
    size_t n = resp->num_headers;
    dx_ws_response r;
    memset(&r, 0, sizeof(r));

    if (resp->status != 101) /* check 1 */
        return DX_EHS_STATUS;
    if (!upgrade_is_websocket(h, n)) /* check 2 */
        return DX_EHS_RESP_NO_UPGRADE;
    if (!dx_http_header_has_token(h, n, "Connection", "upgrade")) /* check 3 */
        return DX_EHS_RESP_NO_CONNECTION;
    /* check 4; §11.3.3: the accept MUST NOT appear more than once */
    if (dx_http_header_count(h, n, "Sec-WebSocket-Accept") != 1)
        return DX_EHS_NO_ACCEPT;
    dx_span accept = dx_http_header_find(h, n, "Sec-WebSocket-Accept")->value;
    dx_span want = {(const uint8_t *)hs->accept, strnlen(hs->accept, DX_ACCEPT_LEN)};
    if (want.len != DX_ACCEPT_LEN || !dx_span_eq(accept, want))
        return DX_EHS_BAD_ACCEPT;
    int rc = check_extensions(opts, h, n, &r.extensions); /* check 5 */
    if (rc < 0)
        return rc;
    rc = check_protocol(opts, h, n, &r.protocol); /* check 6 */
    if (rc < 0)
        return rc;
    *out = r;
    return 0;
}
