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
 * Strictness follows the MUSTs: no NUL, no bare CR, no obs-fold, header names are
 * tokens with no whitespace before the colon, header values hold no control
 * characters other than HTAB (obs-text 0x80-0xFF is allowed), the version is
 * HTTP/1.x, the request line is "method SP target SP version" with single spaces,
 * and the status line is "HTTP/1.x NNN reason". Where RFC 9112 lets a recipient
 * choose, we choose to reject: a bare LF (§2.2 would allow it as a line end) is
 * DX_EHTTP_BARE_LF, and empty lines before the request line are not skipped.
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
 * @buf must start at the head's first byte and hold all earlier bytes unchanged;
 * it may move between calls, e.g. after a realloc). Each byte is looked at once,
 * so feeding n bytes in any number of calls costs O(n). Bytes beyond s->max_head
 * are never looked at.
 *
 * Returns 0 with *@head_len set to the length of the complete head including its
 * final CRLF CRLF (bytes after it are not part of the head: they may already be
 * WebSocket frames), or:
 *   DX_EINCOMPLETE          no blank line yet; call again when more bytes arrive
 *   DX_EHTTP_HEAD_TOO_LARGE s->max_head bytes arrived without completing the head,
 *                           so it cannot fit (431); reported as soon as byte number
 *                           max_head arrives, not when more do
 *   DX_EHTTP_NUL            a NUL byte
 *   DX_EHTTP_BARE_CR        a CR not followed by LF
 *   DX_EHTTP_BARE_LF        an LF not preceded by CR
 *   DX_EINVAL               @len is smaller than in an earlier call, or @s is corrupt
 * A result other than DX_EINCOMPLETE is final: later calls return it again (with
 * the same *@head_len on success).
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
 * any buffer holding CRLF CRLF: parsing stops at the first blank line and ignores
 * what follows). @headers is an array of @max_headers entries owned by the caller
 * (NULL when @max_headers is 0); @req->headers is set to it. The spans in @req and
 * @headers point into @buf and live as long as it does. Nothing is copied.
 *
 * Returns 0, or the first error found, line by line (so a malformed line may be
 * reported before DX_EINCOMPLETE for a head that is also unfinished); after an
 * error the fields of @req are unspecified:
 *   DX_EINCOMPLETE, DX_EHTTP_NUL, DX_EHTTP_BARE_CR, DX_EHTTP_BARE_LF,
 *   DX_EHTTP_BAD_METHOD, DX_EHTTP_BAD_TARGET, DX_EHTTP_BAD_VERSION,
 *   DX_EHTTP_BAD_REQUEST_LINE, DX_EHTTP_BAD_HEADER_NAME, DX_EHTTP_BAD_HEADER_VALUE,
 *   DX_EHTTP_NO_COLON, DX_EHTTP_SPACE_BEFORE_COLON, DX_EHTTP_OBS_FOLD,
 *   DX_EHTTP_TOO_MANY_HEADERS
 */
DX_API int dx_http_parse_request(const uint8_t *buf, size_t len, dx_http_request *req,
                                 dx_http_header *headers, size_t max_headers);

/* Parse a complete response head, like dx_http_parse_request(). Returns 0 or the
 * same codes, with DX_EHTTP_BAD_STATUS_LINE for a malformed status line (not
 * starting with "HTTP/", a status code that is not three digits from 100, a
 * control character in the reason) and DX_EHTTP_BAD_VERSION for a version other
 * than HTTP/1.x. The reason may be empty, and a missing " reason" after the code
 * is tolerated (RFC 9112 §4). */
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
 * Write a complete HTTP/1.1 response into @out: status line (with the reason of
 * dx_http_reason()), @headers (each written as "name: value", in order),
 * "Connection: close" for a final status (200..999) unless @headers holds a
 * Connection field, Content-Length for @body unless @headers holds one or the
 * status is 1xx or 204 (RFC 9110 §8.6 forbids it there), the blank line and the
 * body. Nothing is written past @cap.
 *
 * Returns 0 with *@len set, or:
 *   DX_ENOSPACE  @cap is too small; *@len is set to the size needed (snprintf-like:
 *                calling again with that capacity succeeds)
 *   DX_EINVAL    status out of 100..999, a body with a 1xx or 204 status, a header
 *                name that is not a token, or a value holding a control character
 *                other than HTAB (so no CR/LF injection)
 */
DX_API int dx_http_write_response(uint8_t *out, size_t cap, size_t *len, int status,
                                  const dx_http_header *headers, size_t num_headers, dx_span body);

#ifdef __cplusplus
}
#endif
#endif /* DUPLEX_HTTP_H */
