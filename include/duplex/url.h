/*
 * duplex/url.h - WebSocket URLs (RFC 6455 §3, RFC 3986), parsed without copying.
 *
 *   ws-URI  = "ws:"  "//" host [ ":" port ] path [ "?" query ]
 *   wss-URI = "wss:" "//" host [ ":" port ] path [ "?" query ]
 *
 * The parser is sans-I/O and allocates nothing: every span in a dx_url points
 * into the caller's text (except the static "/" noted below), so the text must
 * outlive the dx_url. Nothing is decoded: percent-encoding is checked (two hex
 * digits) and left as written. What is accepted:
 *
 *   - the scheme "ws" or "wss" in any case; "http"/"https" are refused (mapping
 *     them is a browser's job, not ours);
 *   - "//" and an authority: optional userinfo ending at the first '@'
 *     (unreserved, sub-delims, ':' and pct-encoded), then a host, then an
 *     optional ":" port;
 *   - a host that is a reg-name (unreserved, sub-delims, pct-encoded), a dotted
 *     IPv4 address, or an IPv6 literal in brackets (RFC 4291 text form, an IPv4
 *     tail allowed). A reg-name made only of digits and dots must be a dotted
 *     quad of 0..255 without leading zeros, so that inet_aton()-style forms
 *     ("127.1", "010.0.0.1") cannot reach a resolver. IPvFuture and zone IDs
 *     ("%25eth0") are refused;
 *   - a port of decimal digits with value 1..65535 (leading zeros allowed). An
 *     empty port ("ws://h:/") is allowed, as RFC 3986 §3.2.3 allows it, and means
 *     the scheme's default, exactly as if the ':' were absent;
 *   - a path and query of pchar (unreserved, pct-encoded, sub-delims, ':', '@'),
 *     '/' and, in the query, '?'.
 *
 * Refused anywhere: a '#' (RFC 6455 §3: fragment identifiers MUST NOT be used),
 * and any byte outside 0x21..0x7E (whitespace, controls, non-ASCII: an IRI must
 * be percent-encoded and its host converted to punycode by the caller).
 *
 * Thread safety: the functions here keep no state and may be called from any
 * thread.
 */
#ifndef DUPLEX_URL_H
#define DUPLEX_URL_H

#include "duplex/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A parsed WebSocket URL. Spans point into the text given to dx_url_parse(). */
typedef struct dx_url {
    bool secure;        /* wss */
    dx_span host;       /* never empty; without the brackets of an IPv6 literal */
    bool host_is_ipv6;  /* the host was a [..] literal */
    uint16_t port;      /* the explicit port, or 80 (ws) / 443 (wss); never 0 */
    bool port_explicit; /* a non-empty port was written */
    dx_span path;       /* path, starting with '/'; a static "/" when the URL has none */
    bool has_query;     /* a '?' was written (the query may still be empty) */
    dx_span query;      /* after the '?', without it; empty if none */
    dx_span userinfo;   /* "user:pass" before '@', without it; empty if none */
    dx_span resource;   /* the request target "/path?query" (RFC 6455 §3
                           resource-name): a span into the text when the URL has
                           a path, a static "/" when it has neither path nor
                           query, and EMPTY when it has a query but no path
                           ("ws://h?q" means "/?q", which is not in the text):
                           use dx_url_write_resource(), which covers every case */
} dx_url;

/*
 * Parse @text as a ws:// or wss:// URL into *@out. The spans of *@out point into
 * @text, which must stay alive and unchanged while they are used. No allocation.
 *
 * Returns 0, or:
 *   DX_EINVAL         @out NULL, or @text.ptr NULL with a non-zero length
 *   DX_EURL_FRAGMENT  a '#' anywhere (checked first)
 *   DX_EHS_BAD_URL    a byte outside 0x21..0x7E; bad userinfo, path or query
 *                     characters; '%' not followed by two hex digits there
 *   DX_EURL_SCHEME    the scheme is not ws or wss (any case), or no scheme
 *   DX_EURL_HOST      no "//", an empty host, characters not allowed in a host,
 *                     a malformed or zone-qualified IPv6 literal, text after ']'
 *                     other than ":port", a numeric host that is not a dotted quad
 *   DX_EURL_PORT      a port with a non-digit, or out of 1..65535
 * On failure *@out is left untouched.
 */
DX_API int dx_url_parse(dx_span text, dx_url *out);

/*
 * Write the request target of @url ("/" or the path, then '?' and the query if
 * a '?' was written) into @out, NUL-terminated, ready for
 * dx_request_options.resource.
 *
 * Returns 0 with *@len set to the length without the NUL, or:
 *   DX_EINVAL    @url, @out or @len NULL
 *   DX_ENOSPACE  @cap is not above the length (*@len holds the length needed,
 *                without the NUL)
 */
DX_API int dx_url_write_resource(const dx_url *url, char *out, size_t cap, size_t *len);

#ifdef __cplusplus
}
#endif
#endif /* DUPLEX_URL_H */
