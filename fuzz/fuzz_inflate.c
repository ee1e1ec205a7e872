/*
 * Fuzz target for the permessage-deflate inflater (RFC 7692 §7.2.2) under a
 * message limit.
 *
 * Input: byte 0 picks the parameters (bits 0-2: the peer's window, 8 + value;
 * bit 3: the peer's no_context_takeover; bits 4-7: the limit, 16 << value
 * bytes, 16 B .. 512 KiB); byte 1 picks the chunking of the second run (as in
 * hs_fuzz.h); the rest is a sequence of messages, each a 2-byte big-endian length
 * and that many bytes of compressed payload (a short last one takes what is
 * left).
 *
 * Every message is inflated twice, by two codecs: whole, into one buffer of the
 * limit's size; and in chunks, into exact-size heap buffers of 1..64 bytes. With
 * a 15-bit window both must give the same code and the same bytes (a codec must
 * not depend on how its input and output are cut), except that a message both
 * over the limit and corrupt may report either; with a smaller one they may
 * differ only where one says DX_EDEFLATE_DATA (see below), and agree on the bytes
 * both produced. The output never exceeds the limit, the codes are the
 * documented ones, and after an error every call says DX_EINVAL.
 */
#include "hs_fuzz.h"

#include "duplex/deflate.h"

typedef struct run {
    dx_deflate *d;
    uint8_t *out; /* everything produced for the current message */
    size_t len;
    bool dead; /* an error was returned */
} run;

static int whole(run *r, const uint8_t *m, size_t n, size_t limit) {
    size_t used = 0;
    int rc =
        dx_deflate_inflate(r->d, (dx_span){n ? m : NULL, n}, true, r->out, limit, &used, &r->len);
    fz_require(rc != DX_ENOSPACE || r->len == limit);
    if (rc == DX_ENOSPACE) {
        /* a full buffer of exactly the limit: the next byte would pass it */
        uint8_t one;
        size_t w = 0, u2 = 0;
        rc = dx_deflate_inflate(r->d, (dx_span){n ? m + used : NULL, n - used}, true, &one, 1, &u2,
                                &w);
        fz_require(rc != 0 || w == 0);
    }
    return rc;
}

static int chunked(run *r, fz_chunker *c, const uint8_t *m, size_t n, size_t limit) {
    size_t off = 0;
    r->len = 0;
    for (int guard = 0;; guard++) {
        fz_require(guard < 10000000);
        size_t piece = n - off ? fz_next_chunk(c, n - off) : 0;
        bool fin = off + piece == n;
        size_t cap = 1 + (size_t)((c->rng = c->rng * 6364136223846793005ULL + 1) >> 58);
        uint8_t *o = malloc(cap);
        fz_require(o != NULL);
        size_t used = 0, wrote = 0;
        int rc = dx_deflate_inflate(r->d, (dx_span){piece ? m + off : NULL, piece}, fin, o, cap,
                                    &used, &wrote);
        fz_require(used <= piece && wrote <= cap);
        fz_require(r->len + wrote <= limit);
        memcpy(r->out + r->len, o, wrote);
        r->len += wrote;
        free(o);
        off += used;
        if (rc == DX_ENOSPACE)
            continue;
        if (rc != 0)
            return rc;
        fz_require(used == piece);
        if (fin)
            return 0;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2)
        return 0;
    uint8_t p0 = data[0];
    int bits = 8 + (p0 & 7);
    bool nct = p0 & 8;
    size_t limit = (size_t)16 << (p0 >> 4);
    dx_deflate_params p = {nct, nct, (uint8_t)bits, (uint8_t)bits};
    run a = {0}, b = {0};
    fz_require(dx_deflate_create(&a.d, &p, true, NULL, limit, NULL) == 0);
    fz_require(dx_deflate_create(&b.d, &p, true, NULL, limit, NULL) == 0);
    a.out = malloc(limit);
    b.out = malloc(limit);
    fz_require(a.out && b.out);
    fz_chunker ch = fz_chunker_init(data[1], size);
    size_t off = 2;
    while (off < size && !a.dead) {
        size_t n = size - off;
        if (n >= 2) {
            size_t want = (size_t)data[off] << 8 | data[off + 1];
            off += 2;
            n = size - off < want ? size - off : want;
        } else {
            off = size;
            n = 0;
        }
        uint8_t *m = fz_copy(data + off, n);
        off += n;
        int ra = whole(&a, m, n, limit);
        int rb = chunked(&b, &ch, m, n, limit);
        fz_require(ra == 0 || ra == DX_EDEFLATE_DATA || ra == DX_EDEFLATE_TOO_BIG);
        fz_require(rb == 0 || rb == DX_EDEFLATE_DATA || rb == DX_EDEFLATE_TOO_BIG);
        fz_require(a.len <= limit && b.len <= limit);
        if (bits == 15) {
            /* zlib's 32 KiB window holds every distance DEFLATE can name. A message
             * both too big and corrupt may say either first, depending on where its
             * input and output are cut: both end the connection. */
            fz_require(ra == rb || (ra != 0 && rb != 0));
            if (ra == 0)
                fz_require(a.len == b.len && memcmp(a.out, b.out, a.len) == 0);
        } else {
            /* With a smaller window, zlib also accepts a distance beyond it when
             * the bytes are still in the output buffer of the same call, so a
             * peer's out-of-window reference may inflate with a big buffer and
             * fail with small ones. Outputs agree up to where one stopped. */
            fz_require(ra == rb || ra == DX_EDEFLATE_DATA || rb == DX_EDEFLATE_DATA);
            size_t common = a.len < b.len ? a.len : b.len;
            fz_require(memcmp(a.out, b.out, common) == 0);
            if (ra == 0 && rb == 0)
                fz_require(a.len == b.len);
        }
        if (ra != 0 || rb != 0) {
            a.dead = b.dead = true; /* the connection would be closed */
            size_t u, w;
            uint8_t t[4];
            if (ra != 0)
                fz_require(dx_deflate_inflate(a.d, (dx_span){m, n}, true, t, 4, &u, &w) ==
                           DX_EINVAL);
            if (rb != 0)
                fz_require(dx_deflate_inflate(b.d, (dx_span){m, n}, true, t, 4, &u, &w) ==
                           DX_EINVAL);
        }
        free(m);
    }
    fz_require(dx_deflate_memory(a.d) < 64 * 1024);
    dx_deflate_destroy(a.d);
    dx_deflate_destroy(b.d);
    free(a.out);
    free(b.out);
    return 0;
}
