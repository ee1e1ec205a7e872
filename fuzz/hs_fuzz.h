/*
 * Helpers shared by the HTTP and handshake fuzz targets.
 *
 * Input layout: the first byte picks how the rest is cut into chunks (0: whole,
 * 1: one byte at a time, anything else: pieces of 1..64 bytes drawn from a tiny
 * PRNG seeded with that byte and the input size); the rest is the head, as it
 * would arrive on a socket. Unlike the "length byte before every chunk" layout,
 * this keeps the corpus seeds plain HTTP text that a person can read and edit,
 * and a mutation of the head never reshuffles the chunking of what follows.
 *
 * Every chunk boundary is a fresh heap copy holding exactly the bytes received so
 * far, so a scanner that reads one byte too far trips AddressSanitizer; the bytes
 * of earlier chunks are NUL in it, so a scanner that looks at them again reports
 * DX_EHTTP_NUL and disagrees with the whole-buffer scan.
 */
#ifndef DX_FUZZ_HS_FUZZ_H
#define DX_FUZZ_HS_FUZZ_H

#include "duplex/duplex.h"

#include "proto/http_internal.h" /* the parser's own character classes */

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Abort (a crash libFuzzer records) when an invariant does not hold. */
static inline void fz_require(bool ok) {
    if (!ok)
        abort();
}

typedef struct fz_chunker {
    uint8_t mode; /* the control byte */
    uint64_t rng; /* xorshift state */
} fz_chunker;

static inline fz_chunker fz_chunker_init(uint8_t mode, size_t size) {
    fz_chunker c = {mode, 0x9E3779B97F4A7C15ULL ^ ((uint64_t)mode << 32) ^ size};
    return c;
}

static inline size_t fz_next_chunk(fz_chunker *c, size_t left) {
    if (c->mode == 0)
        return left;
    if (c->mode == 1)
        return 1;
    c->rng ^= c->rng << 13;
    c->rng ^= c->rng >> 7;
    c->rng ^= c->rng << 17;
    size_t n = 1 + (size_t)(c->rng % 64);
    return n < left ? n : left;
}

/* An exact-size heap copy of @n bytes (never NULL; a zero-size input gets one
 * byte of storage that is not part of the data). */
static inline uint8_t *fz_copy(const uint8_t *p, size_t n) {
    uint8_t *b = malloc(n ? n : 1);
    fz_require(b != NULL);
    if (n)
        memcpy(b, p, n);
    return b;
}

/*
 * Feed @data to a scanner with limit @max_head in the chunks @c chooses, each
 * call seeing an exact-size copy of everything received so far with the bytes of
 * earlier calls cleared. Checks that every incomplete call looked at exactly the
 * new bytes. Returns the final code.
 */
static inline int fz_scan_chunked(fz_chunker *c, const uint8_t *data, size_t size, size_t max_head,
                                  size_t *head_len) {
    dx_http_scan s = {.max_head = max_head};
    size_t fed = 0;
    int rc = DX_EINCOMPLETE;
    while (fed < size) {
        size_t before = fed;
        fed += fz_next_chunk(c, size - fed);
        /* earlier bytes are NUL: a scanner that looked at them again would say so */
        uint8_t *b = fz_copy(data, fed);
        memset(b, 0, before);
        rc = dx_http_scan_feed(&s, b, fed, head_len);
        free(b);
        if (rc != DX_EINCOMPLETE)
            break;
        fz_require(s.scanned == fed);
    }
    return rc;
}

/* True for the errors only the scanner's byte checks produce. */
static inline bool fz_is_byte_error(int rc) {
    return rc == DX_EHTTP_NUL || rc == DX_EHTTP_BARE_CR || rc == DX_EHTTP_BARE_LF;
}

/*
 * Scan @all (a private copy of @data, @size bytes) whole with a limit it cannot
 * reach, and @data again in chunks chosen by @chunk_mode with the default limit;
 * require that both agree (the chunked scan may only stop earlier at the size
 * limit). Returns the whole scan's result, with the head length in *@whole_len.
 */
static inline int fz_scan_whole_and_chunked(uint8_t *all, const uint8_t *data, size_t size,
                                            uint8_t chunk_mode, size_t *whole_len) {
    dx_http_scan whole = {.max_head = size + 1};
    *whole_len = 0;
    int rc_whole = dx_http_scan_feed(&whole, all, size, whole_len);
    fz_require(rc_whole == 0 || rc_whole == DX_EINCOMPLETE || fz_is_byte_error(rc_whole));
    fz_chunker ch = fz_chunker_init(chunk_mode, size);
    size_t chunk_len = 0;
    int rc_chunk = fz_scan_chunked(&ch, data, size, 0, &chunk_len);
    if (size < DX_DEFAULT_MAX_HEAD || (rc_whole == 0 && *whole_len <= DX_DEFAULT_MAX_HEAD)) {
        fz_require(rc_chunk == rc_whole);
        if (rc_whole == 0)
            fz_require(chunk_len == *whole_len);
    } else {
        fz_require(rc_chunk == rc_whole || rc_chunk == DX_EHTTP_HEAD_TOO_LARGE);
    }
    return rc_whole;
}

/* A parsed header: the name a token, the value free of controls other than HTAB
 * and trimmed, both inside [base, base + len). */
static inline void fz_check_header(const dx_http_header *h, const uint8_t *base, size_t len) {
    fz_require(dx__span_is_token(h->name));
    fz_require(h->name.ptr >= base && h->name.ptr + h->name.len <= base + len);
    fz_require(h->value.ptr >= base && h->value.ptr + h->value.len <= base + len);
    for (size_t i = 0; i < h->value.len; i++) {
        uint8_t c = h->value.ptr[i];
        fz_require(c == '\t' || (c >= 0x20 && c != 0x7F));
    }
    if (h->value.len > 0) {
        fz_require(!dx__is_ows(h->value.ptr[0]));
        fz_require(!dx__is_ows(h->value.ptr[h->value.len - 1]));
    }
}

/* Every DX_EHTTP_* a parser may return. */
static inline bool fz_is_http_error(int rc) {
    return rc <= DX_EHTTP_HEAD_TOO_LARGE && rc >= DX_EHTTP_SPACE_BEFORE_COLON;
}

#endif /* DX_FUZZ_HS_FUZZ_H */
