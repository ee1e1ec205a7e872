/*
 * Helpers shared by the permessage-deflate tests (test_deflate.c for the codec,
 * test_deflate_negotiation.c for the negotiation and the codecs it sets up):
 * a growing byte buffer, one driver that runs a message through
 * dx_deflate_compress or dx_deflate_inflate in pieces, codec constructors and
 * test data.
 *
 * Everything is static inline so each test file takes what it uses.
 */
#ifndef DX_TEST_DEFLATE_UTIL_H
#define DX_TEST_DEFLATE_UTIL_H

#include "duplex/deflate.h"
#include "test.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

typedef struct buf {
    uint8_t *p;
    size_t len, cap;
} buf;

static inline void buf_put(buf *b, const uint8_t *p, size_t n) {
    if (b->len + n > b->cap) {
        size_t c = b->cap ? b->cap : 256;
        while (c < b->len + n)
            c *= 2;
        b->p = realloc(b->p, c);
        if (!b->p)
            abort();
        b->cap = c;
    }
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
}

/* Output capacity for the next call: fixed, or random 16..4111 when @cap is 0. */
static inline size_t next_cap(size_t cap) {
    return cap ? cap : 16 + (size_t)(dx_test_rand() % 4096);
}

/* dx_deflate_compress and dx_deflate_inflate take the same arguments. */
typedef int (*codec_fn)(dx_deflate *d, dx_span in, bool fin, uint8_t *out, size_t cap,
                        size_t *consumed, size_t *written);

/* Run one message through @fn, its input cut by @split, output buffers of @cap
 * bytes (0: random sizes). Appends what comes out to @out. */
static inline int run_msg(codec_fn fn, dx_deflate *d, const uint8_t *msg, size_t len,
                          dx_split split, size_t cap, buf *out) {
    size_t off = 0;
    uint8_t *tmp = malloc(8192);
    int rc;
    for (;;) {
        size_t piece = len - off ? dx_split_next(split, len - off) : 0;
        bool fin = off + piece == len;
        size_t used = 0, wrote = 0;
        size_t c = next_cap(cap);
        if (c > 8192)
            c = 8192;
        rc = fn(d, (dx_span){len ? msg + off : NULL, piece}, fin, tmp, c, &used, &wrote);
        buf_put(out, tmp, wrote);
        off += used;
        if (rc == DX_ENOSPACE)
            continue;
        if (rc != 0 || fin)
            break;
    }
    free(tmp);
    return rc;
}

/* Compress one message (the payload of its frames). */
static inline int compress_msg(dx_deflate *d, const uint8_t *msg, size_t len, dx_split split,
                               size_t cap, buf *out) {
    return run_msg(dx_deflate_compress, d, msg, len, split, cap, out);
}

/* Inflate one message payload. */
static inline int inflate_msg(dx_deflate *d, const uint8_t *p, size_t len, dx_split split,
                              size_t cap, buf *out) {
    return run_msg(dx_deflate_inflate, d, p, len, split, cap, out);
}

static inline dx_deflate_params params_of(int sbits, int cbits, bool snct, bool cnct) {
    dx_deflate_params p = {snct, cnct, (uint8_t)sbits, (uint8_t)cbits};
    return p;
}

static inline dx_deflate *make(const dx_deflate_params *p, bool server, size_t limit) {
    dx_deflate *d = NULL;
    CHECK_RC(dx_deflate_create(&d, p, server, NULL, limit, NULL), 0);
    return d;
}

/* Random bytes, or "compressible": a random 3000-byte block repeated with a few
 * changes, so matches reach far back and a too-wide window would show. */
static inline void fill(uint8_t *p, size_t n, bool compressible) {
    if (!compressible) {
        for (size_t i = 0; i < n; i++)
            p[i] = (uint8_t)dx_test_rand();
        return;
    }
    uint8_t block[3000];
    for (size_t i = 0; i < sizeof block; i++)
        block[i] = (uint8_t)('a' + dx_test_rand() % 16);
    for (size_t i = 0; i < n; i++)
        p[i] = block[i % sizeof block];
    for (size_t i = 0; i < n / 500; i++)
        p[dx_test_rand() % n] = (uint8_t)dx_test_rand();
}

#endif /* DX_TEST_DEFLATE_UTIL_H */
