/*
 * SHA-1 (FIPS 180-4) and base64 (RFC 4648), just enough for the opening handshake:
 * Sec-WebSocket-Accept is base64(SHA-1(key + GUID)) and the key is base64 of 16
 * random bytes (RFC 6455 §4.1, §4.2.2). Our own small implementations so that the
 * sans-I/O core does not link OpenSSL. SHA-1 is used here as RFC 6455 uses it, as
 * a fixed transform of public data, not for any security property. Not installed.
 */
#ifndef DX_PROTO_HASH_H
#define DX_PROTO_HASH_H

#include "duplex/base.h"

#define DX_SHA1_LEN 20   /* digest bytes */
#define DX_SHA1_BLOCK 64 /* bytes per compression block */

/* Streaming SHA-1 state. Initialise with dx__sha1_init(). */
typedef struct dx__sha1_ctx {
    uint32_t h[5];                /* chaining value */
    uint64_t bytes;               /* message bytes absorbed so far */
    uint8_t block[DX_SHA1_BLOCK]; /* partial block waiting for more input */
    size_t used;                  /* bytes held in block[] (0..63) */
} dx__sha1_ctx;

void dx__sha1_init(dx__sha1_ctx *c);
/* Absorb @len bytes (@data may be NULL when @len is 0). */
void dx__sha1_update(dx__sha1_ctx *c, const void *data, size_t len);
/* Pad, write the 20-byte digest into @out and wipe @c. */
void dx__sha1_final(dx__sha1_ctx *c, uint8_t out[DX_SHA1_LEN]);
/* One-shot digest of @len bytes at @data. */
void dx__sha1(const void *data, size_t len, uint8_t out[DX_SHA1_LEN]);

/* Characters base64 needs for @n bytes (with padding): 4 * ceil(n / 3). */
static inline size_t dx__base64_encoded_len(size_t n) {
    return (n + 2) / 3 * 4;
}

/* Encode @len bytes of @in into @out (dx__base64_encoded_len(len) chars, no NUL,
 * standard alphabet with '=' padding). Returns the number of chars written. */
size_t dx__base64_encode(const uint8_t *in, size_t len, char *out);

/*
 * Strict decoding (RFC 4648 §3.3, §3.5): the length is a multiple of 4, every
 * character is from the standard alphabet, '=' appears only as one or two final
 * padding characters, and the bits that padding discards are zero, so each byte
 * string has exactly one accepted encoding. No whitespace, no URL-safe alphabet.
 *
 * Returns 0 with *@out_len set, or:
 *   DX_EINVAL    @in is not canonical base64
 *   DX_ENOSPACE  @cap is smaller than the decoded size (*@out_len holds it)
 */
int dx__base64_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *out_len);

#endif /* DX_PROTO_HASH_H */
