/*
 * Base64 (RFC 4648 §4), standard alphabet. Decoding is strict: a handshake key
 * that is not the one canonical encoding of 16 bytes is a malformed request, and
 * accepting variants (missing padding, stray bits, whitespace) would only widen
 * what a peer can send us.
 */
#include "base/internal.h"
#include "proto/hash.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t dx__base64_encode(const uint8_t *in, size_t len, char *out) {
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = alphabet[v >> 18];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = alphabet[(v >> 6) & 63];
        out[o++] = alphabet[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = alphabet[v >> 18];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = alphabet[v >> 18];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = alphabet[(v >> 6) & 63];
        out[o++] = '=';
    }
    return o;
}

/* The 6-bit value of an alphabet character, or -1. */
static int sextet(uint8_t c) {
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int dx__base64_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *out_len) {
    if (len % 4 != 0)
        return DX_EINVAL;
    size_t pad = 0;
    if (len > 0 && in[len - 1] == '=')
        pad = (in[len - 2] == '=') ? 2 : 1;
    size_t need = len / 4 * 3 - pad;
    /* Validate everything before writing anything. */
    for (size_t i = 0; i < len - pad; i++)
        if (sextet(in[i]) < 0)
            return DX_EINVAL;
    if (pad == 2 && (sextet(in[len - 3]) & 0x0F) != 0)
        return DX_EINVAL; /* §3.5: the 4 bits the padding drops must be zero */
    if (pad == 1 && (sextet(in[len - 2]) & 0x03) != 0)
        return DX_EINVAL;
    *out_len = need;
    if (need > cap)
        return DX_ENOSPACE;

    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        uint32_t v = (uint32_t)sextet(in[i]) << 18 | (uint32_t)sextet(in[i + 1]) << 12;
        out[o++] = (uint8_t)(v >> 16);
        if (in[i + 2] == '=')
            break; /* only in the last quantum: checked above */
        v |= (uint32_t)sextet(in[i + 2]) << 6;
        out[o++] = (uint8_t)(v >> 8);
        if (in[i + 3] == '=')
            break;
        v |= (uint32_t)sextet(in[i + 3]);
        out[o++] = (uint8_t)v;
    }
    return 0;
}
