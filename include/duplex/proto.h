/*
 * duplex/proto.h - the sans-I/O WebSocket endpoint (RFC 6455 §5-§8).
 *
 * A dx_proto is one side of one WebSocket connection after the opening handshake
 * (handshake.h does the handshake). It owns no socket, clock or thread:
 *
 *   bytes from the peer   --dx_proto_recv()-->   one dx_event at a time
 *   dx_proto_send_*()     --> framed bytes in the output buffer
 *   dx_proto_output()     --> the bytes to write; dx_proto_output_consume() when written
 *
 * A misbehaving peer is state, not an error return: a protocol violation queues
 * the close frame with the right code, emits DX_EV_CLOSE and returns 0. Negative
 * returns are kept for caller misuse and resource failure.
 *
 * Automatic replies are produced into the output buffer: the pong that answers a
 * ping, the close frame that answers a close, the close frame a violation causes.
 * After every dx_proto_recv() the caller should check dx_proto_output().
 *
 * Threads: a dx_proto is not thread-safe; use each one from one thread at a time.
 */
#ifndef DUPLEX_PROTO_H
#define DUPLEX_PROTO_H

#include "duplex/base.h"
#include "duplex/frame.h"
#include "duplex/outq.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dx_proto dx_proto;

typedef enum dx_side {
    DX_SIDE_SERVER = 0, /* receives masked frames, sends unmasked ones */
    DX_SIDE_CLIENT = 1, /* receives unmasked frames, masks what it sends */
} dx_side;

/* The browser API's readyState, for a connection (conn.h) and for a proto, which
 * starts OPEN (the opening handshake is handshake.h's) and is never CONNECTING. */
typedef enum dx_ready_state {
    DX_CONNECTING = 0, /* resolving, connecting, or in the opening handshake */
    DX_OPEN = 1,       /* messages flow both ways */
    DX_CLOSING = 2,    /* a close frame was sent (or received); waiting for the rest */
    DX_CLOSED = 3,     /* close frames were exchanged, or the connection failed: a proto
                          flushes its output, then the transport closes */
} dx_ready_state;

/*
 * Size limits. Zero in any field means its default. Frame and message limits are
 * checked on the header, before any payload byte is read, and fail with 1009.
 *
 * The send queue: dx_proto_send/ping/pong refuse (DX_ELIMIT) a frame that would
 * take the output past max_send_queue. Automatic replies are not refused: a pong
 * is queued while the output is at most max_send_queue, so it may exceed the cap
 * by one control frame. A ping that arrives while the output is still past the
 * cap (the peer pings but does not read) fails the connection with 1008, so the
 * output never holds more than the cap plus one pong plus the final close.
 */
typedef struct dx_proto_limits {
    size_t max_frame;      /* largest data frame payload accepted; default 1 MiB.
                              Control frames are bounded by 125 bytes instead. */
    size_t max_message;    /* largest message (sum of its fragments); default 1 MiB */
    size_t max_send_queue; /* largest output buffer; default 4 MiB (see above) */
} dx_proto_limits;

#define DX_DEFAULT_MAX_FRAME ((size_t)1 << 20)
#define DX_DEFAULT_MAX_MESSAGE ((size_t)1 << 20)
#define DX_DEFAULT_MAX_SEND_QUEUE ((size_t)4 << 20)

typedef struct dx_proto_config {
    dx_side side;                  /* which end this is */
    dx_proto_limits limits;        /* zero fields: defaults */
    uint8_t rsv_allowed;           /* RSV bits an extension negotiated (DX_RSV1...);
                                      frames using any other RSV bit fail with 1002,
                                      and so do control and continuation frames
                                      with any RSV bit (RFC 7692 §6: the bits mark
                                      a message, on its first frame only).
                                      A text message whose first frame has an RSV
                                      bit is not UTF-8 checked here: its payload is
                                      the extension's to undo (and check). */
    const dx_allocator *allocator; /* NULL: malloc/free. Must outlive the proto. */
    const dx_random *random;       /* NULL: dx_random_default(). Client masking keys.
                                      Must outlive the proto. */
    dx_outq *output;               /* the queue frames are appended to (a runtime gives
                                      its connection's, shared with its own bytes);
                                      NULL: the proto keeps one of its own. Must
                                      outlive the proto, which never frees it. */
} dx_proto_config;

/* What dx_proto_recv() reports. After we sent a close (CLOSING), data, pings and
 * pongs from the peer are parsed and dropped without events (and pings are not
 * answered); only the peer's close is reported. */
typedef enum dx_event_type {
    DX_EV_NONE = 0, /* nothing yet: all given bytes were consumed */
    DX_EV_DATA,     /* a piece of a text or binary message */
    DX_EV_PING,     /* a ping arrived; the pong is already queued */
    DX_EV_PONG,     /* a pong arrived */
    DX_EV_CLOSE,    /* the connection is closing or closed; see ev.close */
} dx_event_type;

/*
 * One event. Every span in it points into the buffer given to dx_proto_recv()
 * (data), into the proto itself (ping, pong, the peer's close reason) or into
 * static storage (the reason of a close we caused), and stays valid until the
 * next call on the proto that takes bytes (dx_proto_recv, dx_proto_recv_eof) or
 * until the caller reuses that buffer, whichever comes first.
 */
typedef struct dx_event {
    dx_event_type type;
    union {
        struct {
            dx_opcode opcode; /* DX_OP_TEXT or DX_OP_BINARY: the message's type */
            dx_span data;     /* unmasked payload bytes (may be empty) */
            bool first;       /* first piece of the message */
            bool fin;         /* last piece of the message */
            uint8_t rsv;      /* RSV bits of the message's first frame */
        } data;
        dx_span ping; /* DX_EV_PING: the ping's payload (<= 125 bytes) */
        dx_span pong; /* DX_EV_PONG: the pong's payload (<= 125 bytes) */
        struct {
            uint16_t code;  /* the peer's code; 1005 when it sent none; 1006 when
                               the transport ended first; our code (1002, 1007,
                               1009...) when the peer violated the protocol */
            dx_span reason; /* UTF-8 reason, <= 123 bytes */
            bool remote;    /* true: the peer sent a close frame (clean close);
                               false: we failed the connection or it dropped */
        } close;
    } u;
} dx_event;

/*
 * Create an endpoint in state OPEN. It allocates the proto and, unless cfg.output
 * names a queue, a small output buffer of its own (room for a close frame and a
 * pong), nothing else until output grows.
 *
 * @out  receives the new proto; left untouched on failure
 * @cfg  copied; NULL means a server with default limits
 *
 * Returns 0, or:
 *   DX_EINVAL  @out is NULL, cfg->side is unknown, or cfg->rsv_allowed has bits
 *              other than DX_RSV1|DX_RSV2|DX_RSV3
 *   DX_ENOMEM  allocation failed
 */
DX_API int dx_proto_create(dx_proto **out, const dx_proto_config *cfg);

/* Free @p and everything it holds. NULL is a no-op. */
DX_API void dx_proto_destroy(dx_proto *p);

/*
 * Consume bytes from the peer and produce at most one event.
 *
 * @buf  the bytes; NOT const: payloads are unmasked in place, and event spans
 *       point into it (zero copy). Borrowed for the duration of the call and, for
 *       the spans in @ev, until the caller reuses the buffer.
 * @used receives how many bytes of @buf were consumed. Call again with the rest
 *       (buf + used) until it is 0 bytes or the event is DX_EV_NONE.
 * @ev   receives the event (DX_EV_NONE when the bytes only advanced the parser)
 *
 * Frames may be split anywhere across calls (up to 14 header bytes are kept
 * inside). A data payload is delivered as it arrives, in as many DX_EV_DATA
 * events as the input is split into (an empty frame gives an empty event when it
 * starts or ends its message). Control frame payloads are reassembled internally
 * (at most 125 bytes, no allocation) and delivered whole.
 *
 * Text is validated incrementally: invalid UTF-8 fails the connection (1007) in
 * the call that sees the first impossible byte, and so does a message whose final
 * fragment ends inside a character. The piece of the payload given in that call
 * is not delivered at all (not even its valid prefix); earlier pieces were.
 *
 * A protocol violation queues a close frame (the code and a short reason such as
 * "reserved opcode"), sets the state CLOSED and returns DX_EV_CLOSE with
 * remote=false. After the close event, further input is ignored: *@used is then
 * all of @len and the event DX_EV_NONE. At most one DX_EV_CLOSE is ever returned.
 *
 * Returns 0 (including for peer protocol violations, reported as DX_EV_CLOSE),
 * or:
 *   DX_EINVAL  a NULL argument (with len > 0)
 *   DX_ENOMEM  the output buffer had to grow for an automatic reply (pong or
 *              close) and could not. The proto is then CLOSED without an event;
 *              dx_proto_recv_eof() will report 1006. With the proto's own
 *              queue, only possible when the output already holds more than
 *              the 256 bytes allocated at create (or after dx_proto_trim).
 *   <0         on the client side, the random source's error (same effect)
 */
DX_API int dx_proto_recv(dx_proto *p, uint8_t *buf, size_t len, size_t *used, dx_event *ev);

/*
 * Tell @p the transport ended (EOF, reset). If no DX_EV_CLOSE was returned yet
 * (no close frame received, no failure reported), @ev becomes DX_EV_CLOSE with
 * code 1006 and remote=false, and the state CLOSED; otherwise @ev is DX_EV_NONE.
 * Returns 0 or DX_EINVAL.
 */
DX_API int dx_proto_recv_eof(dx_proto *p, dx_event *ev);

/*
 * Queue one data frame. @op is DX_OP_TEXT or DX_OP_BINARY to start a message,
 * DX_OP_CONT to continue one started with fin=false. The payload is copied (and
 * masked on the client side with a fresh key from cfg.random), so the caller may
 * reuse it at once. Text must be valid UTF-8; that is the caller's duty and is
 * not checked here. Nothing is queued when it fails.
 *
 * Returns 0, or:
 *   DX_ESTATE  a close frame was already queued (state is not OPEN), or the
 *              fragment sequence is wrong (CONT with no message started, or a
 *              new message while one is unfinished)
 *   DX_EINVAL  @op is not a data opcode, or @payload.ptr is NULL with len > 0
 *   DX_ELIMIT  the output buffer would exceed limits.max_send_queue
 *   DX_ENOMEM  allocation failed
 *   <0         on the client side, the random source's error
 */
DX_API int dx_proto_send(dx_proto *p, dx_opcode op, dx_span payload, bool fin);

/*
 * dx_proto_send with RSV bits on the frame: an extension's mark on the first frame
 * of a message (permessage-deflate's RSV1, RFC 7692 §6). DX_EINVAL when @rsv has a
 * bit that cfg.rsv_allowed lacks, or any bit with DX_OP_CONT.
 */
DX_API int dx_proto_send_rsv(dx_proto *p, dx_opcode op, dx_span payload, bool fin, uint8_t rsv);

/* Whole messages: dx_proto_send(p, DX_OP_TEXT or DX_OP_BINARY, data, true). */
DX_API int dx_proto_send_text(dx_proto *p, dx_span text);
DX_API int dx_proto_send_binary(dx_proto *p, dx_span data);

/*
 * Queue a ping (or an unsolicited pong) with @payload of at most 125 bytes. It may
 * go between the fragments of a message being sent (§5.4).
 *
 * Returns 0, or DX_ESTATE (not OPEN), DX_EINVAL (payload > 125 or NULL with a
 * length), DX_ELIMIT, DX_ENOMEM, or on the client side the random source's error.
 */
DX_API int dx_proto_ping(dx_proto *p, dx_span payload);
DX_API int dx_proto_pong(dx_proto *p, dx_span payload);

/*
 * Start the closing handshake (§7.1.2): queue a close frame and enter CLOSING.
 * @code 0 sends a close frame with no payload; otherwise it must be valid on the
 * wire (dx_close_code_is_valid). @reason must be valid UTF-8 of at most 123 bytes
 * and is only allowed with a code. The close is not held to max_send_queue (it
 * is the last frame). From then on data, pings and pongs from the peer are
 * dropped; its close frame completes the handshake (state CLOSED, DX_EV_CLOSE
 * with remote=true).
 *
 * Returns 0, or:
 *   DX_EINVAL  bad code, reason too long or not UTF-8, or a reason without a code
 *   DX_ESTATE  a close frame was already sent or the connection is closed
 *   DX_ENOMEM  allocation failed
 *   <0         on the client side, the random source's error
 */
DX_API int dx_proto_close(dx_proto *p, uint16_t code, dx_span reason);

/*
 * Queue a whole data frame that was built once for many connections: the bytes
 * [@off, @off + @len) of @frame, a complete unmasked frame with FIN set (header
 * included), are referenced, not copied (outq.h). The same checks as dx_proto_send
 * apply (state, fragment order, RSV bits, max_send_queue, counting the whole frame
 * as payload). Server side only: a client masks every frame with a key of its own.
 *
 * Returns 0, or:
 *   DX_EINVAL  the client side; the range is outside @frame; it is not exactly one
 *              unmasked frame with FIN set of a text or binary message; an RSV bit
 *              that cfg.rsv_allowed lacks
 *   DX_ESTATE  not OPEN, or a fragmented message is unfinished
 *   DX_ELIMIT  the output would exceed limits.max_send_queue
 *   DX_ENOMEM
 */
DX_API int dx_proto_send_shared(dx_proto *p, dx_shared *frame, size_t off, size_t len);

/*
 * Zero-copy sending for the runtime (server side mostly): validate and account for
 * a data frame of @len bytes like dx_proto_send(), but only write its header into
 * @hdr (returning its size in *@hdr_len) instead of queueing anything. The caller
 * must first write out everything dx_proto_output() holds, then the header, then
 * the payload; on the client side it must mask the payload with the key stored
 * in @mask_key (dx_mask_copy), on the server side @mask_key is left untouched.
 *
 * The frame is not counted against max_send_queue (its payload never enters the
 * output buffer).
 *
 * Returns 0 or the codes of dx_proto_send() (except DX_ELIMIT and DX_ENOMEM);
 * DX_EINVAL also when @hdr or @hdr_len is NULL, @mask_key is NULL on the client
 * side, or @len >= 2^63.
 */
DX_API int dx_proto_send_header(dx_proto *p, dx_opcode op, size_t len, bool fin,
                                uint8_t hdr[DX_MAX_HEADER_LEN], size_t *hdr_len,
                                uint8_t mask_key[4]);

/*
 * The first contiguous bytes waiting to be written to the transport (all of them
 * unless a shared frame is queued: see dx_proto_output_spans). The span is valid
 * until the next call that queues or consumes output. Empty when nothing waits.
 */
DX_API dx_span dx_proto_output(const dx_proto *p);

/* The bytes waiting, as up to @max spans in order (dx_outq_spans): what one writev
 * sends. Returns how many spans were filled. */
DX_API size_t dx_proto_output_spans(const dx_proto *p, dx_span *v, size_t max);

/* Mark the first @n bytes of the output as written. @n larger than the pending
 * amount is clamped. The buffer is kept and reused (it does not shrink). */
DX_API void dx_proto_output_consume(dx_proto *p, size_t n);

/*
 * Release the output buffer if nothing waits in it, so that an idle connection
 * holds no buffer (a runtime calls this when a connection goes quiet). The next
 * frame queued, including an automatic pong or close, allocates it again, so a
 * failing allocator can then make dx_proto_recv return DX_ENOMEM. NULL is a no-op.
 */
DX_API void dx_proto_trim(dx_proto *p);

/* Bytes of memory the output queue holds (what dx_proto_trim would give back once
 * the output is empty; shared frames it refers to are not counted); 0 when none. */
DX_API size_t dx_proto_output_capacity(const dx_proto *p);

/* True when dx_proto_output() is non-empty. */
DX_API bool dx_proto_wants_write(const dx_proto *p);

/* Current state: DX_OPEN, DX_CLOSING or DX_CLOSED (never DX_CONNECTING). */
DX_API dx_ready_state dx_proto_get_state(const dx_proto *p);

/*
 * True when @p holds nothing but its configuration: OPEN, at a frame boundary, no
 * message in progress in either direction, nothing waiting to be written. A fresh
 * proto created with the same config behaves exactly the same, so a runtime may
 * destroy an idle proto and create a new one when bytes arrive or a send comes (how
 * duplex keeps idle connections small).
 */
DX_API bool dx_proto_is_idle(const dx_proto *p);

/* True when the transport may be closed now: the state is CLOSED and the output is
 * empty. (§7.1.1: the server closes TCP first; a client should wait a little for
 * the server to do so; that timing belongs to the runtime.) */
DX_API bool dx_proto_is_done(const dx_proto *p);

/* The reason DX_EV_CLOSE reported (the peer's, or the short text of a close we
 * caused), empty before it (or for a NULL @p). Valid for @p's life: nothing more is
 * parsed after the close. */
DX_API dx_span dx_proto_close_reason(const dx_proto *p);

/* Which side @p is. */
DX_API dx_side dx_proto_side(const dx_proto *p);

#ifdef __cplusplus
}
#endif
#endif /* DUPLEX_PROTO_H */
