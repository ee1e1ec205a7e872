/*
 * Fuzz target for payload masking (src/proto/mask.c): every variant against a
 * byte-by-byte reference of RFC 6455 §5.3.
 *
 * Input: key[4], key position (1 byte), source alignment, destination
 * alignment, a piece-size byte (0: whole), then the payload. Each variant masks
 * the payload by copy and in place, in pieces whose key position continues from
 * the previous piece, from buffers with the given alignments, and must produce
 * the reference bytes without touching anything around the destination.
 */
#include "proto/simd.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { HDR = 7, ALIGN = 64 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < HDR)
        return 0;
    const uint8_t *key = data;
    size_t pos = data[4];
    if (pos & 0x80)
        pos = SIZE_MAX - (pos & 0x7F); /* exercise wrap-around too */
    size_t sal = data[5] % ALIGN, dal = data[6] % ALIGN;
    size_t piece = data[3] ^ data[5]; /* varies with the key byte; 0 = whole */
    const uint8_t *payload = data + HDR;
    size_t len = size - HDR;

    uint8_t *want = malloc(len ? len : 1);
    uint8_t *src = malloc(len + ALIGN);
    uint8_t *dst = malloc(len + 2 * ALIGN);
    if (!want || !src || !dst)
        abort();
    for (size_t i = 0; i < len; i++)
        want[i] = (uint8_t)(payload[i] ^ key[(pos + i) % 4]);

    dx__simd_variant v[3];
    size_t nv = dx__simd_variants(v);
    for (size_t k = 0; k <= nv; k++) {
        for (int inplace = 0; inplace < 2; inplace++) {
            memset(dst, 0xA5, len + 2 * ALIGN);
            memcpy(src + sal, payload, len);
            uint8_t *out = inplace ? src + sal : dst + dal;
            size_t off = 0;
            while (off < len) {
                size_t m = piece && piece < len - off ? piece : len - off;
                if (k < nv)
                    v[k].mask(out + off, src + sal + off, m, key, pos + off);
                else if (inplace)
                    dx_mask(out + off, m, key, pos + off);
                else
                    dx_mask_copy(out + off, src + sal + off, m, key, pos + off);
                off += m;
            }
            if (len && memcmp(out, want, len) != 0)
                abort();
            if (!inplace)
                for (size_t i = 0; i < len + 2 * ALIGN; i++)
                    if ((i < dal || i >= dal + len) && dst[i] != 0xA5)
                        abort();
        }
    }
    free(want);
    free(src);
    free(dst);
    return 0;
}
