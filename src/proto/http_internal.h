/*
 * Helpers shared by http1.c, handshake.c and extparse.c: character classes of
 * RFC 9110 and a bounded writer for snprintf-like output. Not installed.
 */
#ifndef DX_PROTO_HTTP_INTERNAL_H
#define DX_PROTO_HTTP_INTERNAL_H

#include "base/internal.h"
#include "duplex/http.h"

#include <stdint.h>

/* Optional whitespace (RFC 9110 §5.6.3): SP or HTAB. */
static inline bool dx__is_ows(uint8_t c) {
    return c == ' ' || c == '\t';
}

/* A non-empty token (RFC 9110 §5.6.2). */
static inline bool dx__span_is_token(dx_span s) {
    if (s.len == 0)
        return false;
    for (size_t i = 0; i < s.len; i++)
        if (!dx__is_tchar(s.ptr[i]))
            return false;
    return true;
}

/* A byte allowed in a field value (RFC 9110 §5.5): HTAB, SP, VCHAR, obs-text;
 * that is, anything except the controls 0x00-0x1F (HTAB aside) and DEL. */
static inline bool dx__is_field_char(uint8_t c) {
    return c == '\t' || (c >= 0x20 && c != 0x7F);
}

/* True when every byte of @s may appear in a field value we write. */
static inline bool dx__span_is_field_value(dx_span s) {
    for (size_t i = 0; i < s.len; i++)
        if (!dx__is_field_char(s.ptr[i]))
            return false;
    return true;
}

/*
 * Output into a caller's buffer that never writes past @cap but keeps counting,
 * so a too-small buffer learns the exact size it needs (snprintf-like).
 */
typedef struct dx__writer {
    uint8_t *out; /* caller's buffer (may be NULL when cap is 0) */
    size_t cap;   /* its size */
    size_t pos;   /* bytes the output needs so far (may exceed cap) */
} dx__writer;

static inline void dx__w_bytes(dx__writer *w, const void *p, size_t n) {
    if (n == 0)
        return;
    if (w->pos <= w->cap && n <= w->cap - w->pos)
        memcpy(w->out + w->pos, p, n);
    w->pos = (n > SIZE_MAX - w->pos) ? SIZE_MAX : w->pos + n;
}

static inline void dx__w_span(dx__writer *w, dx_span s) {
    dx__w_bytes(w, s.ptr, s.len);
}

static inline void dx__w_str(dx__writer *w, const char *s) {
    dx__w_bytes(w, s, strlen(s));
}

/* Decimal, no sign, no padding. */
static inline void dx__w_uint(dx__writer *w, uint64_t v) {
    char tmp[20];
    size_t n = 0;
    do {
        tmp[sizeof(tmp) - 1 - n] = (char)('0' + v % 10);
        v /= 10;
        n++;
    } while (v > 0);
    dx__w_bytes(w, tmp + sizeof(tmp) - n, n);
}

/* "name: value\r\n" */
static inline void dx__w_header(dx__writer *w, dx_span name, dx_span value) {
    dx__w_span(w, name);
    dx__w_bytes(w, ": ", 2);
    dx__w_span(w, value);
    dx__w_bytes(w, "\r\n", 2);
}

/* 0 with *len set to the output size, or DX_ENOSPACE with *len set to the size
 * needed. */
static inline int dx__w_finish(const dx__writer *w, size_t *len) {
    *len = w->pos;
    return w->pos <= w->cap ? 0 : DX_ENOSPACE;
}

/* A header we may write: the name a token, the value field characters only. */
static inline bool dx__header_is_writable(const dx_http_header *h) {
    return dx__span_is_token(h->name) && dx__span_is_field_value(h->value);
}

/* True when some header of @h is named @name (ASCII case-insensitive). */
static inline bool dx__headers_have(const dx_http_header *h, size_t n, const char *name) {
    return dx_http_header_find(h, n, name) != NULL;
}

#endif /* DX_PROTO_HTTP_INTERNAL_H */
