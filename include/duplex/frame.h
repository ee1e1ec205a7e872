/*
 * duplex/frame.h - RFC 6455 §5 frame headers, masking and close payloads.
 *
 * These are the building blocks under dx_proto (proto.h). They keep no state and
 * never allocate; every function is safe to call from any thread.
 */
#ifndef DUPLEX_FRAME_H
#define DUPLEX_FRAME_H

#include "duplex/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Opcodes (RFC 6455 §5.2, §11.8). */
typedef enum dx_opcode {
    DX_OP_CONT = 0x0,
    DX_OP_TEXT = 0x1,
    DX_OP_BINARY = 0x2,
    DX_OP_CLOSE = 0x8,
    DX_OP_PING = 0x9,
    DX_OP_PONG = 0xA,
} dx_opcode;

/* Close status codes (RFC 6455 §7.4.1, §11.7). */
enum dx_close_code {
    DX_CLOSE_NORMAL = 1000,
    DX_CLOSE_GOING_AWAY = 1001,
    DX_CLOSE_PROTOCOL_ERROR = 1002,
    DX_CLOSE_UNSUPPORTED_DATA = 1003,
    DX_CLOSE_NO_STATUS = 1005,       /* never on the wire: the peer sent no code */
    DX_CLOSE_ABNORMAL = 1006,        /* never on the wire: no close frame at all */
    DX_CLOSE_INVALID_PAYLOAD = 1007, /* e.g. invalid UTF-8 in a text message */
    DX_CLOSE_POLICY_VIOLATION = 1008,
    DX_CLOSE_MESSAGE_TOO_BIG = 1009,
    DX_CLOSE_MANDATORY_EXTENSION = 1010,
    DX_CLOSE_INTERNAL_ERROR = 1011,
    DX_CLOSE_SERVICE_RESTART = 1012, /* registered with IANA after the RFC */
    DX_CLOSE_TRY_AGAIN_LATER = 1013, /* registered with IANA after the RFC */
    DX_CLOSE_BAD_GATEWAY = 1014,     /* registered with IANA after the RFC */
    DX_CLOSE_TLS_HANDSHAKE = 1015,   /* never on the wire */
};

#define DX_MAX_HEADER_LEN 14       /* 2 + 8 length bytes + 4 mask bytes */
#define DX_MAX_CONTROL_PAYLOAD 125 /* RFC 6455 §5.5 */
#define DX_MAX_CLOSE_REASON 123    /* 125 minus the 2-byte code */

/* RSV bits as they sit in the first header byte, shifted down: RSV1 = 4. */
#define DX_RSV1 0x4u
#define DX_RSV2 0x2u
#define DX_RSV3 0x1u

/* A decoded frame header. */
typedef struct dx_frame_header {
    bool fin;             /* final fragment of the message */
    uint8_t rsv;          /* RSV1..3 as DX_RSV1|DX_RSV2|DX_RSV3 */
    uint8_t opcode;       /* raw 4-bit opcode (may be reserved; the caller checks) */
    bool masked;          /* MASK bit */
    uint8_t mask[4];      /* masking key, valid when masked */
    uint64_t payload_len; /* payload length as sent, < 2^63 */
} dx_frame_header;

/* True for the opcodes RFC 6455 defines; false for the reserved ones. */
static inline bool dx_opcode_is_known(unsigned op) {
    return op <= DX_OP_BINARY || (op >= DX_OP_CLOSE && op <= DX_OP_PONG);
}

/* True for control opcodes (close, ping, pong and the reserved 0xB-0xF). */
static inline bool dx_opcode_is_control(unsigned op) {
    return (op & 0x8u) != 0;
}

/*
 * Decode one frame header from the start of @buf.
 *
 * Returns 0 with *@h filled and *@hdr_len set to the header's size (2..14), or:
 *   DX_EINCOMPLETE  @buf holds only part of the header; call again with more
 *   DX_ELIMIT       the 64-bit length has its most significant bit set (§5.2);
 *                   this is a protocol error, not a configured limit. Reported
 *                   as soon as that byte is in @buf, even if the rest of the
 *                   header is not.
 * Bytes after the header are not read. When the frame is not masked, h->mask is
 * zeroed.
 * A length not in its minimal encoding is accepted: §5.2 says "the minimal number
 * of bytes MUST be used" of the sender, but gives the receiver no duty to check.
 * Opcode, RSV and mask rules depend on the connection and are checked by dx_proto.
 */
DX_API int dx_frame_header_decode(const uint8_t *buf, size_t len, dx_frame_header *h,
                                  size_t *hdr_len);

/*
 * Encode @h into @out using the shortest length encoding; the mask key is written
 * when h->masked. Returns the number of bytes written (2..14). @h->payload_len
 * must be < 2^63 and @h->opcode < 16 (checked by assert only).
 */
DX_API size_t dx_frame_header_encode(uint8_t out[DX_MAX_HEADER_LEN], const dx_frame_header *h);

/*
 * XOR @len bytes at @buf in place with the masking key, starting at key position
 * @key_pos (the number of payload bytes of this frame already masked, so that a
 * payload arriving in pieces can be unmasked piece by piece; only pos % 4 matters).
 * The fastest implementation the CPU supports (AVX2, SSE2, word-at-a-time) is
 * picked on first use; all give identical results.
 */
DX_API void dx_mask(uint8_t *buf, size_t len, const uint8_t key[4], size_t key_pos);

/*
 * Copy @len bytes from @src to @dst masked with @key from key position @key_pos.
 * @dst and @src must not overlap unless they are equal.
 */
DX_API void dx_mask_copy(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t key[4],
                         size_t key_pos);

/*
 * True when @code may appear in a close frame on the wire (§7.4, and the IANA
 * registry of §11.7): 1000-1003, 1007-1014 and 3000-4999. 1004-1006, 1015, the
 * rest of 0-2999 and 5000+ are not.
 */
DX_API bool dx_close_code_is_valid(unsigned code);

/*
 * Parse a received close payload (§5.5.1). On success *@code is the status code
 * (DX_CLOSE_NO_STATUS when the payload is empty) and *@reason spans the reason
 * inside @payload (same lifetime as @payload). On failure *@reason is empty.
 * The code is checked before the reason.
 *
 * Returns 0, or:
 *   DX_EINVAL  1-byte payload, code not valid on the wire, payload over 125 bytes,
 *              or a reason that is not valid UTF-8 (*@code is then the close code
 *              to answer with: 1002 for the first three, 1007 for the last)
 */
DX_API int dx_close_payload_parse(dx_span payload, uint16_t *code, dx_span *reason);

#ifdef __cplusplus
}
#endif
#endif /* DUPLEX_FRAME_H */
