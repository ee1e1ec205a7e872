/*
 * duplex/http.h - incremental, zero-copy, bounded HTTP/1.1 head parsing (RFC 9112)
 * and response writing, for the WebSocket opening handshake.
 *
 * Parsing happens in two steps so that bytes arriving one at a time cost O(n) in
 * total, never O(n^2):
 *   1. dx_http_scan_feed() looks only at the new bytes, rejects what can never be
 *      a valid head (NUL, bare CR, over the size limit) and finds the blank line;
 *   2. dx_http_parse_request() / dx_http_parse_response() parse the complete head
 *      once, into spans that point into the caller's buffer.
 *
 * Strictness follows the MUSTs: no NUL, no bare CR, no bare LF, no obs-fold, header
 * names are tokens, header values hold no control characters other than HTAB,
 * the version is HTTP/1.x, and the status line is "HTTP/1.x NNN reason".
 * No function here allocates; all are safe from any thread on distinct data.
 */
#ifndef DUPLEX_HTTP_H
#define DUPLEX_HTTP_H

#include "duplex/base.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DX_DEFAULT_MAX_HEAD 8192  /* bytes in a request or response head */
#define DX_DEFAULT_MAX_HEADERS 64 /* header fields in one head */

/* One header field. Both spans point into the parsed buffer. The value has its
 * leading and trailing whitespace removed. */
typedef struct dx_http_header {
    dx_span name;
    dx_span value;
} dx_http_header;

/* State of step 1. `dx_http_scan s = {0};` starts a scan with the default limit. */
typedef struct dx_http_scan {
    size_t max_head; /* limit in bytes; 0 means DX_DEFAULT_MAX_HEAD */
    size_t scanned;  /* internal: bytes already looked at */
    uint32_t state;  /* internal: position in the CR LF CR LF automaton */
} dx_http_scan;

/*
 * Look at the bytes of @buf[s->scanned .. len) (the whole head received so far;
 * @buf must start at the head's first byte and hold all earlier bytes unchanged).
 *
 * Returns 0 with *@head_len set to the length of the complete head including its
 * final CRLF CRLF (bytes after it are not part of the head: they may already be
 * WebSocket frames), or:
 *   DX_EINCOMPLETE          no blank line yet; call again when more bytes arrive
 *   DX_EHTTP_HEAD_TOO_LARGE the head is longer than s->max_head (431)
 *   DX_EHTTP_NUL            a NUL byte
 *   DX_EHTTP_BARE_CR        a CR not followed by LF
 *   DX_EHTTP_BARE_LF        an LF not preceded by CR
 */
DX_API int dx_http_scan_feed(dx_http_scan *s, const uint8_t *buf, size_t len, size_t *head_len);

/* A parsed request head. Spans point into the parsed buffer. */
typedef struct dx_http_request {
    dx_span method;          /* e.g. "GET" (a token) */
    dx_span target;          /* request-target as sent, e.g. "/chat?room=1" */
    int minor_version;       /* 1 for HTTP/1.1, 0 for HTTP/1.0 */
    dx_http_header *headers; /* the caller's array, filled in order */
    size_t num_headers;      /* fields filled */
} dx_http_request;

/* A parsed response head. */
typedef struct dx_http_response {
    int minor_version;       /* 1 for HTTP/1.1 */
    int status;              /* 100..999 */
    dx_span reason;          /* reason phrase (may be empty) */
    dx_http_header *headers; /* the caller's array, filled in order */
    size_t num_headers;      /* fields filled */
} dx_http_response;

/*
 * Parse a complete request head (@len is the head_len from dx_http_scan_feed, or
 * any buffer that ends with CRLF CRLF). @headers is an array of @max_headers
 * entries owned by the caller; @req->headers is set to it.
 *
 * Returns 0, or one of:
 *   DX_EINCOMPLETE, DX_EHTTP_NUL, DX_EHTTP_BARE_CR, DX_EHTTP_BARE_LF,
 *   DX_EHTTP_BAD_METHOD, DX_EHTTP_BAD_TARGET, DX_EHTTP_BAD_VERSION,
 *   DX_EHTTP_BAD_REQUEST_LINE, DX_EHTTP_BAD_HEADER_NAME, DX_EHTTP_BAD_HEADER_VALUE,
 *   DX_EHTTP_NO_COLON, DX_EHTTP_SPACE_BEFORE_COLON, DX_EHTTP_OBS_FOLD,
 *   DX_EHTTP_TOO_MANY_HEADERS
 */
DX_API int dx_http_parse_request(const uint8_t *buf, size_t len, dx_http_request *req,
                                 dx_http_header *headers, size_t max_headers);

/* Parse a complete response head, like dx_http_parse_request(). Returns 0 or the
 * same codes, with DX_EHTTP_BAD_STATUS_LINE for a malformed status line. */
DX_API int dx_http_parse_response(const uint8_t *buf, size_t len, dx_http_response *resp,
                                  dx_http_header *headers, size_t max_headers);

/* The value of the first header named @name (ASCII case-insensitive), or NULL. */
DX_API const dx_http_header *dx_http_header_find(const dx_http_header *headers, size_t n,
                                                 const char *name);

/* How many headers are named @name. */
DX_API size_t dx_http_header_count(const dx_http_header *headers, size_t n, const char *name);

/*
 * True when some header named @name holds @token as one element of its
 * comma-separated list (ASCII case-insensitive, optional whitespace around
 * elements), e.g. dx_http_header_has_token(h, n, "Connection", "upgrade").
 */
DX_API bool dx_http_header_has_token(const dx_http_header *headers, size_t n, const char *name,
                                     const char *token);

/* Iterate the comma-separated elements of a list header value: each call stores
 * the next non-empty element, trimmed, in *@elem and returns true, or returns
 * false at the end. *@pos starts at 0. */
DX_API bool dx_http_list_next(dx_span value, size_t *pos, dx_span *elem);

/* The standard reason phrase for @status ("Switching Protocols"), "" if unknown. */
DX_API const char *dx_http_reason(int status);

/*
 * Write a complete HTTP/1.1 response into @out: status line, @headers (each
 * written as "name: value"), Content-Length for @body unless @headers holds one,
 * "Connection: close" for any status other than 101, the blank line and the body.
 *
 * Returns 0 with *@len set, or:
 *   DX_ENOSPACE  @cap is too small; *@len is set to the size needed
 *   DX_EINVAL   status out of 100..999, or a header name/value holding CR or LF
 */
DX_API int dx_http_write_response(uint8_t *out, size_t cap, size_t *len, int status,
                                  const dx_http_header *headers, size_t num_headers,
                                  dx_span body);

#ifdef __cplusplus
}
#endif
#endif /* DUPLEX_HTTP_H */
