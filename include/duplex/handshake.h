/*
 * duplex/handshake.h - the WebSocket opening handshake (RFC 6455 §4), both sides,
 * and the Sec-WebSocket-Extensions grammar (§9.1).
 *
 * Server side:
 *   dx_http_scan_feed + dx_http_parse_request  -> dx_http_request
 *   dx_handshake_check_request                 -> dx_ws_request (or a DX_EHS_* reason)
 *   application decides (path, Origin, protocols, extensions, authentication)
 *   dx_handshake_write_accept  -> the 101 response      or
 *   dx_handshake_write_refusal -> 400 / 405 / 426 / 431 for a DX_EHS_* / DX_EHTTP_*
 *   dx_http_write_response     -> any other refusal (401, 403, ...)
 *
 * Client side:
 *   dx_client_handshake_init + dx_handshake_write_request -> the GET request
 *   dx_http_scan_feed + dx_http_parse_response            -> dx_http_response
 *   dx_handshake_check_response                           -> 0 or a DX_EHS_* reason
 *
 * Nothing here allocates; results point into the caller's buffers. All functions
 * are safe from any thread on distinct data.
 */
#ifndef DUPLEX_HANDSHAKE_H
#define DUPLEX_HANDSHAKE_H

#include "duplex/base.h"
#include "duplex/http.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DX_MAX_PROTOCOLS 16  /* subprotocols kept from one offer */
#define DX_MAX_EXTENSIONS 16 /* extension offers kept from one request */
#define DX_MAX_EXT_PARAMS 32 /* parameters kept across all those offers */
#define DX_ACCEPT_LEN 28     /* base64 of a SHA-1 digest */
#define DX_KEY_LEN 24        /* base64 of 16 bytes */

/* ---- Sec-WebSocket-Extensions (§9.1) ---------------------------------------- */

/* One extension parameter: `name` or `name=value` or `name="value"`. */
typedef struct dx_ext_param {
    dx_span name;   /* a token */
    dx_span value;  /* the value as written, without the quotes; empty if none */
    bool has_value; /* a value was given */
    bool quoted;    /* the value was a quoted-string: it may hold backslash escapes;
                       use dx_ext_param_value() to read it unescaped */
} dx_ext_param;

/* One extension in an offer or an answer. */
typedef struct dx_ext {
    dx_span name;         /* extension token, e.g. "permessage-deflate" */
    dx_ext_param *params; /* points into the caller's params array */
    size_t num_params;
} dx_ext;

/*
 * Parse every Sec-WebSocket-Extensions header in @headers (they form one list,
 * in order). @exts (@max_exts entries) and @params (@max_params entries, shared by
 * all extensions) are the caller's arrays. Whitespace is allowed around ",", ";"
 * and "="; empty list elements are skipped (", ,a" is one extension, RFC 9110
 * §5.6.1.2), but header lines holding no extension at all are malformed (1#).
 * No header at all gives 0 extensions. Spans point into the header values.
 *
 * Returns 0 with *@num_exts set, or:
 *   DX_EHS_BAD_EXTENSIONS  the grammar was violated (including a quoted value that
 *                          is not a token once unescaped, as §9.1 requires)
 *   DX_EHS_TOO_MANY        more extensions or parameters than the arrays hold
 */
DX_API int dx_ext_parse(const dx_http_header *headers, size_t num_headers, dx_ext *exts,
                        size_t max_exts, dx_ext_param *params, size_t max_params, size_t *num_exts);

/* Parse one header value, like dx_ext_parse() (appending after *@num_exts entries
 * already used in @exts and *@num_params in @params). The value must hold at least
 * one extension. The counters are updated only on success. Returns 0,
 * DX_EHS_BAD_EXTENSIONS, DX_EHS_TOO_MANY, or DX_EINVAL when a counter already
 * exceeds its array. */
DX_API int dx_ext_parse_value(dx_span value, dx_ext *exts, size_t max_exts, size_t *num_exts,
                              dx_ext_param *params, size_t max_params, size_t *num_params);

/* Copy @p's value, unescaped, into @out (@cap bytes, NUL-terminated). Returns 0,
 * DX_ENOSPACE (*@len then holds the size needed, without the NUL) or DX_EINVAL
 * (no value). */
DX_API int dx_ext_param_value(const dx_ext_param *p, char *out, size_t cap, size_t *len);

/* ---- server side (§4.2) ---------------------------------------------------- */

/* What a checked upgrade request offers. Spans point into the request buffer. */
typedef struct dx_ws_request {
    const dx_http_request *http;         /* the parsed request (every header) */
    dx_span path;                        /* target up to '?' (e.g. "/chat") */
    dx_span query;                       /* after '?', without it; empty if none */
    dx_span host;                        /* Host header value */
    dx_span origin;                      /* Origin header value; empty if absent */
    bool has_origin;                     /* an Origin header was sent */
    dx_span key;                         /* Sec-WebSocket-Key value (24 chars) */
    dx_span protocols[DX_MAX_PROTOCOLS]; /* offered subprotocols, in order */
    size_t num_protocols;
    dx_ext extensions[DX_MAX_EXTENSIONS]; /* offered extensions, in order */
    size_t num_extensions;
    dx_ext_param ext_params[DX_MAX_EXT_PARAMS]; /* storage for extensions[].params */
} dx_ws_request;

/*
 * Validate @req as a WebSocket upgrade (§4.2.1) and fill @out. The spans in @out
 * point into the buffer @req was parsed from; @out->http points to @req.
 *
 * The checks run in this order, and the first failure is returned:
 *   DX_EHS_METHOD          not GET (case-sensitive)      -> 405
 *   DX_EHS_HTTP_VERSION    HTTP/1.0                      -> 400
 *   DX_EHTTP_BAD_TARGET    target not in origin-form ("/path?query"), or holding
 *                          a fragment '#' (§3)           -> 400
 *   DX_EHS_NO_HOST         no Host, more than one, or empty -> 400
 *   DX_EHS_NO_UPGRADE      no "websocket" in the Upgrade list  -> 426
 *   DX_EHS_NO_CONNECTION   no "upgrade" in the Connection list -> 426
 *   DX_EHS_NO_VERSION      no Sec-WebSocket-Version      -> 426
 *   DX_EHS_BAD_VERSION     not exactly one version, 13   -> 426 with Sec-WebSocket-Version: 13
 *   DX_EHS_NO_KEY / DX_EHS_DUPLICATE_KEY / DX_EHS_BAD_KEY (not 24 characters of
 *                          canonical base64 of 16 bytes) -> 400
 *   DX_EHS_BAD_PROTOCOL    a subprotocol is not a token, is repeated, or the
 *                          header lines name none        -> 400
 *   DX_EHS_BAD_EXTENSIONS  extensions grammar violated   -> 400
 *   DX_EHS_TOO_MANY        more than DX_MAX_PROTOCOLS, DX_MAX_EXTENSIONS or
 *                          DX_MAX_EXT_PARAMS             -> 400
 * The version is checked before the key so that a client of an older draft
 * (which sends no Sec-WebSocket-Key) learns which version we speak (§4.4). Origin
 * is optional; the first one is reported.
 */
DX_API int dx_handshake_check_request(const dx_http_request *req, dx_ws_request *out);

/* The HTTP status a server answers a failed check with (table above), 431 for
 * DX_EHTTP_HEAD_TOO_LARGE and DX_EHTTP_TOO_MANY_HEADERS, 400 for other DX_EHTTP_*
 * and for DX_EHS_NO_PROTOCOL (dx_handshake_select_protocol); DX_EINVAL for any
 * other code (0, client-side DX_EHS_* codes, -errno...). */
DX_API int dx_handshake_refusal_status(int err);

/* Compute Sec-WebSocket-Accept for @key (§4.2.2: base64(SHA-1(key + GUID))).
 * Writes exactly DX_ACCEPT_LEN bytes, no NUL. */
DX_API void dx_handshake_accept_key(dx_span key, char out[DX_ACCEPT_LEN]);

/*
 * Choose the subprotocol to answer @req with: the first of the client's offers (its
 * preference order) that is in @supported (exact, case-sensitive match). *@out is
 * that offer (a span into the request), or empty.
 *
 * A browser that offered subprotocols fails a 101 naming none (1006 in the page), so
 * when this returns DX_EHS_NO_PROTOCOL a server that serves browsers should refuse
 * the upgrade (dx_handshake_write_refusal gives a 400 saying why) or pick one of the
 * offers it can honour, rather than answer without one.
 *
 * Returns 0 (a match, or the client offered nothing: *@out empty), or:
 *   DX_EHS_NO_PROTOCOL  the client offered subprotocols and none is supported
 *   DX_EINVAL           @req or @out NULL, or @supported NULL with a count
 */
DX_API int dx_handshake_select_protocol(const dx_ws_request *req, const char *const *supported,
                                        size_t num_supported, dx_span *out);

/* What the server answers with. Zero-initialise and set what applies. */
typedef struct dx_accept_options {
    dx_span protocol;              /* chosen subprotocol; empty: none. Must be one
                                      the client offered. */
    dx_span extensions;            /* Sec-WebSocket-Extensions value; empty: none */
    const dx_http_header *headers; /* extra headers (e.g. Set-Cookie) */
    size_t num_headers;
} dx_accept_options;

/*
 * Write the 101 Switching Protocols response for @req (as filled by a successful
 * dx_handshake_check_request) into @out: Upgrade, Connection, Sec-WebSocket-Accept,
 * then the chosen protocol, the extensions and the extra headers. @opts may be
 * NULL (no protocol, no extensions).
 *
 * Returns 0 with *@len set, or:
 *   DX_ENOSPACE  @cap too small (*@len holds the size needed)
 *   DX_EINVAL    the protocol was not offered (exact, case-sensitive match), the
 *                extensions value breaks the §9.1 grammar, an extra header is not
 *                a token name with a control-free value (no CR/LF injection) or
 *                repeats one written here (Upgrade, Connection,
 *                Sec-WebSocket-Accept/-Protocol/-Extensions), or @req has no
 *                valid key
 */
DX_API int dx_handshake_write_accept(const dx_ws_request *req, const dx_accept_options *opts,
                                     uint8_t *out, size_t cap, size_t *len);

/*
 * Write the standard refusal for a failed check or parse (@err is a DX_EHS_* or
 * DX_EHTTP_* code): the status of dx_handshake_refusal_status(), a text/plain body
 * holding dx_strerror(@err) and a newline, "Connection: close"; "Allow: GET" with
 * a 405; "Upgrade: websocket", "Connection: Upgrade, close" and
 * "Sec-WebSocket-Version: 13" with a 426 (§4.4, RFC 9110 §15.5.22).
 * Returns 0, DX_ENOSPACE (with *@len) or DX_EINVAL (@err is not such a code).
 */
DX_API int dx_handshake_write_refusal(int err, uint8_t *out, size_t cap, size_t *len);

/* ---- client side (§4.1) ---------------------------------------------------- */

/* The client's handshake state between request and response. */
typedef struct dx_client_handshake {
    char key[DX_KEY_LEN + 1];       /* Sec-WebSocket-Key sent (NUL-terminated) */
    char accept[DX_ACCEPT_LEN + 1]; /* the Sec-WebSocket-Accept to expect */
} dx_client_handshake;

/* Draw a fresh key (16 bytes) from @random (NULL: the kernel CSPRNG,
 * dx_random_default()) and compute the expected answer. Returns 0, or the random
 * source's negative error (DX_EINVAL if it returned a positive value); on failure
 * @hs is left untouched. */
DX_API int dx_client_handshake_init(dx_client_handshake *hs, const dx_random *random);

/* What the client asks for. Zero-initialise and set what applies. */
typedef struct dx_request_options {
    const char *host;             /* host name or IP literal (IPv6 without brackets) */
    uint16_t port;                /* 0: the default for the scheme */
    bool secure;                  /* wss: default port 443 instead of 80 */
    const char *resource;         /* path and query, e.g. "/chat?x=1"; NULL: "/" */
    const char *origin;           /* Origin header; NULL: none */
    const char *const *protocols; /* subprotocols to offer, in preference order */
    size_t num_protocols;
    const char *extensions;        /* Sec-WebSocket-Extensions offer; NULL: none */
    const dx_http_header *headers; /* extra headers (Authorization, Cookie...) */
    size_t num_headers;
    bool protocol_optional; /* accept a 101 that names no subprotocol although we
                               offered some (RFC 6455 allows it); false: refuse it
                               with DX_EHS_NO_PROTOCOL, as browsers do */
} dx_request_options;

/*
 * Write the GET upgrade request into @out: the request line, Host, Upgrade,
 * Connection, Sec-WebSocket-Key, Sec-WebSocket-Version: 13, then Origin,
 * Sec-WebSocket-Protocol (the offers joined by ", "), Sec-WebSocket-Extensions and
 * the extra headers. The Host header carries the port when it is not the scheme's
 * default (80 for ws, 443 for wss), and brackets around an IPv6 literal (a host
 * holding ':'). An empty origin or extensions string means none.
 *
 * Returns 0 with *@len set, or:
 *   DX_ENOSPACE  @cap too small (*@len holds the size needed)
 *   DX_EINVAL    @opts NULL, no host, a host holding whitespace, controls or one of
 *                / ? # @ [ ] \, an IPv6 literal with anything but hex digits, ':'
 *                and '.' (zone IDs are not supported), a resource not starting
 *                with '/' or holding bytes outside 0x21-0x7E or a '#' fragment, a
 *                protocol that is not a token or is repeated, extensions breaking
 *                the §9.1 grammar, an extra header that is not a token name with a
 *                control-free value or is named Host, Sec-WebSocket-Key or
 *                Sec-WebSocket-Version, a control character (CR/LF) in any field,
 *                or @hs not initialised
 */
DX_API int dx_handshake_write_request(const dx_client_handshake *hs, const dx_request_options *opts,
                                      uint8_t *out, size_t cap, size_t *len);

/* What the server agreed to. Spans point into the response buffer. */
typedef struct dx_ws_response {
    dx_span protocol;   /* chosen subprotocol; empty: none */
    dx_span extensions; /* raw Sec-WebSocket-Extensions value of the answer (at most
                           one header is allowed); empty: none. The extension
                           layer parses it with dx_ext_parse_value */
} dx_ws_response;

/*
 * Validate the server's answer (§4.1, the client's checks 1-6, in that order).
 * @opts are the options the request was written with (NULL: nothing offered).
 *
 * Returns 0 with @out filled, or:
 *   DX_EHS_STATUS              status is not 101 (resp->status, and headers such as
 *                              Location or WWW-Authenticate, tell the caller why)
 *   DX_EHS_RESP_NO_UPGRADE     no Upgrade, or an Upgrade list element other than
 *                              "websocket" (case-insensitive)
 *   DX_EHS_RESP_NO_CONNECTION  Connection lacks "upgrade"
 *   DX_EHS_NO_ACCEPT           no Sec-WebSocket-Accept (or more than one, §11.3.3)
 *   DX_EHS_BAD_ACCEPT          the accept value does not match our key
 *   DX_EHS_EXTENSION_NOT_OFFERED  an extension whose name (case-insensitive) is not
 *                              in opts->extensions, a malformed or empty extensions
 *                              header, or more than one (§11.3.2)
 *   DX_EHS_PROTOCOL_NOT_OFFERED   a subprotocol we did not offer (exact match), an
 *                              empty one, a list, or more than one header (§11.3.4)
 *   DX_EHS_NO_PROTOCOL         no subprotocol although we offered some, unless
 *                              opts->protocol_optional (browsers fail such an answer:
 *                              the Fetch standard's WebSocket algorithm, Chromium)
 *   DX_EINVAL                  opts->extensions is itself malformed (an offer that
 *                              dx_handshake_write_request refuses)
 */
DX_API int dx_handshake_check_response(const dx_client_handshake *hs,
                                       const dx_request_options *opts, const dx_http_response *resp,
                                       dx_ws_response *out);

#ifdef __cplusplus
}
#endif
#endif /* DUPLEX_HANDSHAKE_H */
