/*
 * SHA-1 as specified in FIPS 180-4 §6.1, written for clarity over speed: the
 * handshake hashes 60 bytes once per connection.
 */
#include "base/internal.h"
#include "proto/hash.h"

static inline uint32_t rol32(uint32_t x, unsigned n) {
    return (x << n) | (x >> (32u - n));
}

static inline uint32_t load_be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void compress(uint32_t h[5], const uint8_t *block) {
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = load_be32(block + 4 * i);
    for (int i = 16; i < 80; i++)
        w[i] = rol32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);

    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & c) | (~b & d); /* Ch */
            k = 0x5A827999u;
        } else if (i < 40) {
            f = b ^ c ^ d; /* Parity */
            k = 0x6ED9EBA1u;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d); /* Maj */
            k = 0x8F1BBCDCu;
        } else {
            f = b ^ c ^ d;
            k = 0xCA62C1D6u;
        }
        uint32_t t = rol32(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rol32(b, 30);
        b = a;
        a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

void dx__sha1_init(dx__sha1_ctx *c) {
    /* FIPS 180-4 §5.3.1 */
    c->h[0] = 0x67452301u;
    c->h[1] = 0xEFCDAB89u;
    c->h[2] = 0x98BADCFEu;
    c->h[3] = 0x10325476u;
    c->h[4] = 0xC3D2E1F0u;
    c->bytes = 0;
    c->used = 0;
}

void dx__sha1_update(dx__sha1_ctx *c, const void *data, size_t len) {
    const uint8_t *p = data;
    c->bytes += len;
    if (c->used > 0) {
        size_t take = DX_SHA1_BLOCK - c->used;
        if (take > len)
            take = len;
        memcpy(c->block + c->used, p, take);
        c->used += take;
        p += take;
        len -= take;
        if (c->used < DX_SHA1_BLOCK)
            return;
        compress(c->h, c->block);
        c->used = 0;
    }
    while (len >= DX_SHA1_BLOCK) {
        compress(c->h, p);
        p += DX_SHA1_BLOCK;
        len -= DX_SHA1_BLOCK;
    }
    if (len > 0) {
        memcpy(c->block, p, len);
        c->used = len;
    }
}

void dx__sha1_final(dx__sha1_ctx *c, uint8_t out[DX_SHA1_LEN]) {
    /* §5.1.1: a 1 bit, zeros up to 56 mod 64, then the length in bits, big-endian. */
    uint64_t bits = c->bytes * 8u;
    c->block[c->used++] = 0x80;
    if (c->used > DX_SHA1_BLOCK - 8) {
        memset(c->block + c->used, 0, DX_SHA1_BLOCK - c->used);
        compress(c->h, c->block);
        c->used = 0;
    }
    memset(c->block + c->used, 0, DX_SHA1_BLOCK - 8 - c->used);
    dx__store_be64(c->block + DX_SHA1_BLOCK - 8, bits);
    compress(c->h, c->block);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (uint8_t)(c->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)c->h[i];
    }
    memset(c, 0, sizeof(*c));
}

void dx__sha1(const void *data, size_t len, uint8_t out[DX_SHA1_LEN]) {
    dx__sha1_ctx c;
    dx__sha1_init(&c);
    dx__sha1_update(&c, data, len);
    dx__sha1_final(&c, out);
}
