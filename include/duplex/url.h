/*
 * duplex/url.h - WebSocket URLs read the way a browser reads them.
 *
 * `new WebSocket(url)` runs the WHATWG URL Standard's basic URL parser; this is that parser
 * for the special schemes ws and wss (no base URL, no state override), checked case by case
 * against Chromium (tests/test_url.c holds the table, tests/interop/url_chromium.js compares
 * it with Chromium's `new URL()`, `new WebSocket()` and the request line it sends).
 *
 * dx_url_parse() validates and splits; the normalised pieces, which are no longer spans of
 * the input, are written into caller buffers by dx_url_write_host(),
 * dx_url_write_resource() and dx_url_write_userinfo(). Nothing allocates, nothing does I/O.
 * Section names of the URL Standard are quoted.
 *
 *   - The input: leading and trailing C0 controls and spaces (bytes 0x00-0x20) are
 *     stripped, and ASCII tab, LF and CR are removed wherever they are.
 *   - "scheme state": ws or wss in any case. http and https are accepted and mean ws and
 *     wss, as the WebSocket constructor maps them (WebSockets Standard); dx_url.secure is
 *     true for wss and https. Any other scheme, or none, is DX_EURL_SCHEME. A relative URL
 *     ("/chat"), which a browser resolves against the page's URL, has no meaning here and is
 *     DX_EURL_SCHEME too. The scheme is checked before anything else.
 *   - "special authority ignore slashes state": after "ws:" any number of '/' or '\',
 *     none included, lead to the authority ("ws:h", "ws:\\h" and "ws:///h" are ws://h/).
 *     '\' is '/' everywhere before the query.
 *   - "authority state": the authority ends at '/', '\', '?', '#' or the end; its LAST '@'
 *     ends the userinfo (earlier ones belong to it and are written %40). The userinfo is
 *     split at its first ':' into username and password, each percent-encoded with the
 *     userinfo percent-encode set. A browser never sends it (not in the request line, not
 *     as Authorization); neither does duplex's client: dx_url_write_userinfo() gives it to
 *     the application, which may turn it into an Authorization header itself.
 *   - "host parsing": "[...]" is an IPv6 address ("IPv6 parser": hex pieces, one "::", an
 *     IPv4 tail; no zone ID), written back in the compressed form of the "IPv6 serializer"
 *     ("[0:0:0:0:0:0:0:1]" is ::1, "[::ffff:192.0.2.1]" is ::ffff:c000:201). Anything else
 *     is percent-decoded and ASCII-lowercased; a forbidden domain code point (C0 controls,
 *     space, # % / : < > ? @ [ \ ] ^ | and DEL) is DX_EURL_HOST. A host whose last label
 *     is a number ("ends in a number checker") goes through the "IPv4 parser": decimal,
 *     octal ("0" prefix) and hex ("0x") parts, 1 to 4 of them, the last filling the
 *     remaining bytes, so "127.1", "0x7f.1" and "017700000001" are all 127.0.0.1, written
 *     back as a dotted quad (inet_aton()'s forms therefore never reach a resolver: they are
 *     either normalised or refused with DX_EURL_HOST, as "1.2.3.256" and "foo.09" are).
 *     A host that is not ASCII after percent-decoding needs IDNA (UTS #46) to become
 *     "xn--" labels; duplex does not carry the Unicode tables for that and refuses it with
 *     DX_EURL_IDNA (convert it first, e.g. with libidn2's idn2_to_ascii_8z). ASCII hosts
 *     holding "xn--" labels are taken as written, as Chromium takes them.
 *   - "port state": decimal digits; a non-digit, or a value over 65535, is DX_EURL_PORT.
 *     An empty port ("ws://h:/") and the scheme's default (80 for ws, 443 for wss) both
 *     mean the default, which the URL then does not keep: port_explicit is false and the
 *     Host header has no port, as a browser sends it. Port 0, which a browser parses but
 *     can never connect to, is DX_EURL_PORT. Ports that browsers refuse to connect to
 *     (the Fetch Standard's "bad port" list, e.g. 6000) are not refused: that list guards
 *     web pages against cross-protocol attacks and is not URL syntax.
 *   - "path state": "." and ".." segments, also written "%2e" in any case, are resolved;
 *     every byte in the path percent-encode set (C0 controls, space, " # < > ? ^ ` { }, DEL
 *     and bytes over 0x7E) is percent-encoded, and so is '|', which Chromium encodes too.
 *   - "query state": the special-query percent-encode set (C0 controls, space, " # < > ',
 *     DEL, bytes over 0x7E); '\' and '?' stay as they are.
 *   - Existing percent-escapes are left exactly as written, valid or not ("%zz" stays), as
 *     browsers leave them. Bytes over 0x7E are encoded one by one: UTF-8 text comes out as
 *     a browser encodes it, other bytes (which a JavaScript string cannot hold) as they are.
 *   - A fragment ('#', even empty) is DX_EURL_FRAGMENT: the WebSocket constructor throws a
 *     SyntaxError for it. Like the constructor, this is checked after the URL parsed.
 *
 * Where Chromium departs from the URL Standard, duplex follows the standard: a space in a
 * host (Chromium keeps "a%20b", which no resolver knows), '*' in a host (Chromium writes
 * %2A), "'" in the userinfo (Chromium writes %27), percent-escapes inside "[...]" and
 * leading zeros in an IPv6 address's IPv4 part (Chromium accepts both). With port 0 and
 * non-ASCII hosts these are the only differences tests/interop/url_chromium.js allows.
 *
 * Thread safety: the functions here keep no state and may be called from any thread.
 */
#ifndef DUPLEX_URL_H
#define DUPLEX_URL_H

#include "duplex/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What the host of a URL is. */
typedef enum dx_url_host_kind {
    DX_URL_HOST_DOMAIN = 0, /* a name for the resolver, lowercase ASCII */
    DX_URL_HOST_IPV4 = 1,   /* an IPv4 address: addr[0..3] */
    DX_URL_HOST_IPV6 = 2,   /* an IPv6 address: addr[0..15] */
} dx_url_host_kind;

/*
 * A parsed WebSocket URL. The *_text spans point into the text given to dx_url_parse(),
 * which must stay alive and unchanged while the writers are used; they are the pieces as
 * written, before normalisation (tabs and newlines still in them), for the writers.
 */
typedef struct dx_url {
    bool secure;                /* wss: (or https:) */
    dx_url_host_kind host_kind; /* domain, IPv4 or IPv6 */
    uint8_t addr[16];           /* the address of an IPv4 (first 4 bytes) or IPv6 host,
                                   network byte order; zero for a domain */
    uint16_t port;              /* 1..65535: the port written, or 80 (ws) / 443 (wss) */
    bool port_explicit;         /* port is not the scheme's default: a browser keeps it in
                                   the URL and sends it in the Host header */
    bool has_query;             /* a '?' was written: the target has one (maybe "/?") */
    size_t host_len;            /* length of what dx_url_write_host() writes */
    size_t resource_len;        /* length of what dx_url_write_resource() writes */
    size_t userinfo_len;        /* length of what dx_url_write_userinfo() writes; 0: none */
    dx_span host_text;          /* the host as written (with brackets for IPv6) */
    dx_span userinfo_text;      /* before the last '@' of the authority; empty if none */
    dx_span path_text;          /* from the end of the authority to '?', '#' or the end */
    dx_span query_text;         /* after the '?' to '#' or the end; empty if none */
} dx_url;

/*
 * Parse @text as a WebSocket URL into *@out (see the top of this file for every rule).
 * Nothing is copied: *@out refers to @text, which must outlive it for the writers.
 *
 * Returns 0, or, checked in this order:
 *   DX_EINVAL         @out NULL, @text.ptr NULL with a non-zero length, or @text longer
 *                     than SIZE_MAX / 4 bytes
 *   DX_EURL_SCHEME    no scheme, or one other than ws, wss, http, https (any case)
 *   DX_EURL_HOST      no host, a forbidden code point in it (after percent-decoding), a
 *                     number-like host the IPv4 parser refuses, a malformed IPv6 address
 *                     or text after its ']'
 *   DX_EURL_IDNA      a host that is not ASCII after percent-decoding
 *   DX_EURL_PORT      a port holding a non-digit, over 65535, or 0
 *   DX_EURL_FRAGMENT  a '#' (a fragment, even an empty one)
 * On failure *@out is left untouched.
 */
DX_API int dx_url_parse(dx_span text, dx_url *out);

/*
 * Write the host of @url, NUL-terminated, into @out: a domain in lowercase, a dotted quad,
 * or an IPv6 address in compressed form WITHOUT brackets (what getaddrinfo(), TLS name
 * checks and dx_request_options.host take; the URL and the Host header put it in [...],
 * which dx_handshake_write_request() does).
 *
 * Returns 0 with *@len set to the length without the NUL, or:
 *   DX_EINVAL    @url, @out or @len NULL
 *   DX_ENOSPACE  @cap is not above the length (*@len holds the length needed, without the
 *                NUL)
 */
DX_API int dx_url_write_host(const dx_url *url, char *out, size_t cap, size_t *len);

/*
 * Write the request target of @url (the path, then '?' and the query if a '?' was
 * written), NUL-terminated, into @out: what a browser puts in "GET <target> HTTP/1.1",
 * ready for dx_request_options.resource. It starts with '/' and holds only bytes
 * 0x21..0x7E and no '#'.
 *
 * Returns 0 with *@len set to the length without the NUL, or:
 *   DX_EINVAL    @url, @out or @len NULL
 *   DX_ENOSPACE  @cap is not above the length (*@len holds the length needed, without the
 *                NUL)
 */
DX_API int dx_url_write_resource(const dx_url *url, char *out, size_t cap, size_t *len);

/*
 * Write the userinfo of @url, NUL-terminated, into @out, as a browser serialises it: the
 * username, then ':' and the password if the password is not empty, both percent-encoded
 * (so the first ':' is the only one); empty when the URL has none. Without the '@'.
 *
 * Returns 0 with *@len set to the length without the NUL, or:
 *   DX_EINVAL    @url, @out or @len NULL
 *   DX_ENOSPACE  @cap is not above the length (*@len holds the length needed, without the
 *                NUL)
 */
DX_API int dx_url_write_userinfo(const dx_url *url, char *out, size_t cap, size_t *len);

#ifdef __cplusplus
}
#endif
#endif /* DUPLEX_URL_H */
