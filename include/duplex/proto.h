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

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dx_proto dx_proto;

typedef enum dx_side {
    DX_SIDE_SERVER = 0, /* receives masked frames, sends unmasked ones */
    DX_SIDE_CLIENT = 1, /* receives unmasked frames, masks what it sends */
} dx_side;

/* Connection state (RFC 6455 §4-§7; the browser API's readyState minus CONNECTING). */
typedef enum dx_proto_state {
    DX_STATE_OPEN = 1,    /* data may flow both ways */
    DX_STATE_CLOSING = 2, /* we sent a close frame and wait for the peer's */
    DX_STATE_CLOSED = 3,  /* close frames were exchanged, or the connection failed;
                             flush the output, then close the transport */
} dx_proto_state;

/* Size limits. Zero in any field means its default. */
typedef struct dx_proto_limits {
    size_t max_frame;      /* largest frame payload accepted; default 1 MiB */
    size_t max_message;    /* largest message (all fragments); default 1 MiB */
    size_t max_send_queue; /* largest output buffer; default 4 MiB. Automatic
                              replies may exceed it by one control frame. */
} dx_proto_limits;

#define DX_DEFAULT_MAX_FRAME ((size_t)1 << 20)
#define DX_DEFAULT_MAX_MESSAGE ((size_t)1 << 20)
#define DX_DEFAULT_MAX_SEND_QUEUE ((size_t)4 << 20)

typedef struct dx_proto_config {
    dx_side side;                 /* which end this is */
    dx_proto_limits limits;       /* zero fields: defaults */
    uint8_t rsv_allowed;          /* RSV bits an extension negotiated (DX_RSV1...);
                                     frames using any other RSV bit fail with 1002 */
    const dx_allocator *allocator; /* NULL: malloc/free. Must outlive the proto. */
    const dx_random *random;      /* NULL: dx_random_default(). Client masking keys.
                                     Must outlive the proto. */
} dx_proto_config;

typedef enum dx_event_type {
    DX_EV_NONE = 0, /* nothing yet: all given bytes were consumed */
    DX_EV_DATA,     /* a piece of a text or binary message */
    DX_EV_PING,     /* a ping arrived; the pong is already queued */
    DX_EV_PONG,     /* a pong arrived */
    DX_EV_CLOSE,    /* the connection is closing or closed; see ev.close */
} dx_event_type;

/*
 * One event. Every span in it points either into the buffer given to
 * dx_proto_recv() or into the proto itself, and stays valid until the next call
 * on the proto that takes bytes (dx_proto_recv, dx_proto_recv_eof) or until the
 * caller reuses that buffer, whichever comes first.
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
            uint16_t code; /* the peer's code; 1005 when it sent none; 1006 when
                              the transport ended first; our code (1002, 1007,
                              1009...) when the peer violated the protocol */
            dx_span reason; /* UTF-8 reason, <= 123 bytes */
            bool remote;    /* true: the peer sent a close frame (clean close);
                               false: we failed the connection or it dropped */
        } close;
    } u;
} dx_event;

/*
 * Create an endpoint in state OPEN.
 *
 * @out  receives the new proto; left untouched on failure
 * @cfg  copied; NULL means a server with default limits
 *
 * Returns 0, or:
 *   DX_EINVAL  @out is NULL or cfg->side is unknown
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
 * Frames may be split anywhere across calls. A data payload is delivered as it
 * arrives, in as many DX_EV_DATA events as the input is split into. Control frame
 * payloads are reassembled internally (at most 125 bytes) and delivered whole.
 * Text is validated incrementally: invalid UTF-8 fails the connection (1007) at
 * the first impossible byte. After the close event, further input is ignored.
 *
 * Returns 0 (including for peer protocol violations, reported as DX_EV_CLOSE),
 * or:
 *   DX_EINVAL  a NULL argument (with len > 0)
 *   DX_ENOMEM  allocation failed (only control-frame reassembly allocates: never)
 */
DX_API int dx_proto_recv(dx_proto *p, uint8_t *buf, size_t len, size_t *used, dx_event *ev);

/*
 * Tell @p the transport ended (EOF, reset). If no close frame was received, @ev
 * becomes DX_EV_CLOSE with code 1006 and remote=false, and the state CLOSED;
 * otherwise @ev is DX_EV_NONE. Returns 0 or DX_EINVAL.
 */
DX_API int dx_proto_recv_eof(dx_proto *p, dx_event *ev);

/*
 * Queue one data frame. @op is DX_OP_TEXT or DX_OP_BINARY to start a message,
 * DX_OP_CONT to continue one started with fin=false. The payload is copied (and
 * masked on the client side), so the caller may reuse it at once. Text must be
 * valid UTF-8; that is the caller's duty and is not checked here.
 *
 * Returns 0, or:
 *   DX_ESTATE  a close frame was already queued (state is not OPEN), or the
 *              fragment sequence is wrong (CONT with no message started, or a
 *              new message while one is unfinished)
 *   DX_EINVAL  @op is not a data opcode, or @payload.ptr is NULL with len > 0
 *   DX_ELIMIT  the output buffer would exceed limits.max_send_queue
 *   DX_ENOMEM  allocation failed
 */
DX_API int dx_proto_send(dx_proto *p, dx_opcode op, dx_span payload, bool fin);

/* Whole messages: dx_proto_send(p, DX_OP_TEXT or DX_OP_BINARY, data, true). */
DX_API int dx_proto_send_text(dx_proto *p, dx_span text);
DX_API int dx_proto_send_binary(dx_proto *p, dx_span data);

/*
 * Queue a ping (or an unsolicited pong) with @payload of at most 125 bytes. It may
 * go between the fragments of a message being sent (§5.4).
 *
 * Returns 0, or DX_ESTATE (not OPEN), DX_EINVAL (payload > 125), DX_ELIMIT, DX_ENOMEM.
 */
DX_API int dx_proto_ping(dx_proto *p, dx_span payload);
DX_API int dx_proto_pong(dx_proto *p, dx_span payload);

/*
 * Start the closing handshake (§7.1.2): queue a close frame and enter CLOSING.
 * @code 0 sends a close frame with no payload; otherwise it must be valid on the
 * wire (dx_close_code_is_valid). @reason must be valid UTF-8 of at most 123 bytes
 * and is only allowed with a code.
 *
 * Returns 0, or:
 *   DX_ESTATE  a close frame was already sent or the connection is closed
 *   DX_EINVAL  bad code, reason too long or not UTF-8, or a reason without a code
 *   DX_ENOMEM  allocation failed
 */
DX_API int dx_proto_close(dx_proto *p, uint16_t code, dx_span reason);

/*
 * Zero-copy sending for the runtime (server side mostly): validate and account for
 * a data frame of @len bytes like dx_proto_send(), but only write its header into
 * @hdr (returning its size in *@hdr_len) instead of queueing anything. The caller
 * must first write out everything dx_proto_output() holds, then the header, then
 * the payload; on the client side it must mask the payload with the key stored
 * in @mask_key (dx_mask_copy), on the server side @mask_key is left untouched.
 *
 * Returns 0 or the codes of dx_proto_send() (except DX_ELIMIT and DX_ENOMEM).
 */
DX_API int dx_proto_send_header(dx_proto *p, dx_opcode op, size_t len, bool fin,
                                uint8_t hdr[DX_MAX_HEADER_LEN], size_t *hdr_len,
                                uint8_t mask_key[4]);

/*
 * The bytes waiting to be written to the transport. The span points into @p and is
 * valid until the next call that queues or consumes output. Empty when nothing
 * waits.
 */
DX_API dx_span dx_proto_output(const dx_proto *p);

/* Mark the first @n bytes of dx_proto_output() as written. @n larger than the
 * pending amount is clamped. */
DX_API void dx_proto_output_consume(dx_proto *p, size_t n);

/* True when dx_proto_output() is non-empty. */
DX_API bool dx_proto_wants_write(const dx_proto *p);

/* Current state. */
DX_API dx_proto_state dx_proto_get_state(const dx_proto *p);

/* True when the transport may be closed now: the state is CLOSED and the output is
 * empty. (§7.1.1: the server closes TCP first; a client should wait a little for
 * the server to do so; that timing belongs to the runtime.) */
DX_API bool dx_proto_is_done(const dx_proto *p);

/* Which side @p is. */
DX_API dx_side dx_proto_side(const dx_proto *p);

#ifdef __cplusplus
}
#endif
#endif /* DUPLEX_PROTO_H */
