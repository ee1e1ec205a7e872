/*
 * RFC 6455 §5.2 frame headers: decoding from the start of a buffer and encoding
 * in the shortest form. Stateless; dx_proto keeps the partial header between
 * reads and applies the connection's rules (opcodes, RSV, masking, limits).
 */
#include "base/internal.h"
#include "duplex/frame.h"

#include <assert.h>

_Static_assert(DX_MAX_HEADER_LEN == 14, "2 + 8 length bytes + 4 mask bytes");
_Static_assert(DX_MAX_CLOSE_REASON == DX_MAX_CONTROL_PAYLOAD - 2, "reason = payload - code");

int dx_frame_header_decode(const uint8_t *buf, size_t len, dx_frame_header *h, size_t *hdr_len) {
    if (len < 2)
        return DX_EINCOMPLETE;
    unsigned len7 = buf[1] & 0x7Fu;
    bool masked = (buf[1] & 0x80u) != 0;
    size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
    /* §5.2: "the most significant bit MUST be 0". Reported as soon as the first
     * length byte is in, so a hostile stream fails before the rest arrives. */
    if (ext == 8 && len >= 3 && (buf[2] & 0x80u))
        return DX_ELIMIT;
    size_t need = 2 + ext + (masked ? 4 : 0);
    if (len < need)
        return DX_EINCOMPLETE;

    h->fin = (buf[0] & 0x80u) != 0;
    h->rsv = (uint8_t)((buf[0] >> 4) & 0x7u);
    h->opcode = (uint8_t)(buf[0] & 0x0Fu);
    h->masked = masked;
    if (ext == 0)
        h->payload_len = len7;
    else if (ext == 2)
        h->payload_len = dx__load_be16(buf + 2);
    else
        h->payload_len = dx__load_be64(buf + 2);
    if (masked)
        memcpy(h->mask, buf + 2 + ext, 4);
    else
        memset(h->mask, 0, 4);
    *hdr_len = need;
    return 0;
}

size_t dx_frame_header_encode(uint8_t out[DX_MAX_HEADER_LEN], const dx_frame_header *h) {
    assert(h->opcode < 16 && h->rsv < 8);
    assert(h->payload_len < ((uint64_t)1 << 63));
    size_t n = 2;
    out[0] =
        (uint8_t)((h->fin ? 0x80u : 0u) | (unsigned)(h->rsv & 0x7u) << 4 | (h->opcode & 0x0Fu));
    uint8_t mask_bit = h->masked ? 0x80u : 0u;
    if (h->payload_len <= 125) {
        out[1] = (uint8_t)(mask_bit | h->payload_len);
    } else if (h->payload_len <= 0xFFFF) {
        out[1] = (uint8_t)(mask_bit | 126u);
        dx__store_be16(out + 2, (uint16_t)h->payload_len);
        n = 4;
    } else {
        out[1] = (uint8_t)(mask_bit | 127u);
        dx__store_be64(out + 2, h->payload_len);
        n = 10;
    }
    if (h->masked) {
        memcpy(out + n, h->mask, 4);
        n += 4;
    }
    return n;
}
