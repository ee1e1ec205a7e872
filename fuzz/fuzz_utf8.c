/*
 * Fuzz target for the incremental UTF-8 validator (src/proto/utf8.c).
 *
 * Input: a sequence of chunks, each one length byte followed by that many bytes
 * (uWebSockets' makeChunked); the chunk contents, concatenated, are the text.
 * Every variant (scalar, SSE2, AVX2 as the CPU allows) and the public
 * dx_utf8_feed are fed the text in those chunks and whole, and every call's
 * answer is compared with a reference written from the RFC 3629 §4 grammar. Any
 * disagreement aborts.
 */
#include "proto/simd.h"

#include <stdlib.h>
#include <string.h>

/*
 * Reference from the ABNF of RFC 3629 §4:
 *   UTF8-2 = %xC2-DF UTF8-tail
 *   UTF8-3 = %xE0 %xA0-BF UTF8-tail / %xE1-EC 2( UTF8-tail ) /
 *            %xED %x80-9F UTF8-tail / %xEE-EF 2( UTF8-tail )
 *   UTF8-4 = %xF0 %x90-BF 2( UTF8-tail ) / %xF1-F3 3( UTF8-tail ) /
 *            %xF4 %x80-8F 2( UTF8-tail )
 * Returns the index of the first byte that no production can accept, or @n;
 * *complete is whether the text ends between characters.
 */
static size_t ref_first_error(const uint8_t *p, size_t n, int *complete) {
    size_t i = 0;
    *complete = 1;
    while (i < n) {
        uint8_t b = p[i];
        size_t len;
        uint8_t lo2 = 0x80, hi2 = 0xBF; /* range of the second byte */
        if (b <= 0x7F) {
            i++;
            continue;
        } else if (b >= 0xC2 && b <= 0xDF) {
            len = 2;
        } else if (b == 0xE0) {
            len = 3, lo2 = 0xA0;
        } else if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) {
            len = 3;
        } else if (b == 0xED) {
            len = 3, hi2 = 0x9F;
        } else if (b == 0xF0) {
            len = 4, lo2 = 0x90;
        } else if (b >= 0xF1 && b <= 0xF3) {
            len = 4;
        } else if (b == 0xF4) {
            len = 4, hi2 = 0x8F;
        } else {
            return i;
        }
        for (size_t k = 1; k < len; k++) {
            if (i + k == n) {
                *complete = 0;
                return n;
            }
            uint8_t c = p[i + k];
            uint8_t lo = k == 1 ? lo2 : 0x80, hi = k == 1 ? hi2 : 0xBF;
            if (c < lo || c > hi)
                return i + k;
        }
        i += len;
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* Unpack the chunks. */
    uint8_t *text = malloc(size ? size : 1);
    size_t *cuts = malloc((size + 1) * sizeof *cuts);
    if (!text || !cuts)
        abort();
    size_t n = 0, ncuts = 0, pos = 0;
    while (pos < size) {
        size_t m = data[pos++];
        if (m > size - pos)
            m = size - pos;
        memcpy(text + n, data + pos, m);
        pos += m;
        n += m;
        cuts[ncuts++] = n;
    }

    int complete;
    size_t bad = ref_first_error(text, n, &complete);
    int valid = bad == n && complete;

    dx__simd_variant v[3];
    size_t nv = dx__simd_variants(v);
    for (size_t k = 0; k <= nv; k++) {
        dx__utf8_fn feed = k < nv ? v[k].utf8_feed : dx_utf8_feed;
        /* in the input's chunks: a call fails iff its chunk reaches the bad byte */
        dx_utf8_state s = {0};
        size_t start = 0;
        for (size_t c = 0; c < ncuts; c++) {
            bool want = bad >= cuts[c];
            if (feed(&s, text + start, cuts[c] - start) != want)
                abort();
            start = cuts[c];
        }
        if (dx_utf8_is_complete(&s) != (valid != 0))
            abort();
        /* whole, ending exactly at the allocation so a read past it trips ASan */
        uint8_t *exact = malloc(n ? n : 1);
        if (!exact)
            abort();
        memcpy(exact, text, n);
        dx_utf8_state w = {0};
        if (feed(&w, exact, n) != (bad == n) || dx_utf8_is_complete(&w) != (valid != 0))
            abort();
        free(exact);
    }
    if (dx_utf8_valid(text, n) != (valid != 0))
        abort();
    free(text);
    free(cuts);
    return 0;
}
