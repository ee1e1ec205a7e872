/*
 * duplex/conn.h - a WebSocket connection on a socket, driven by a dx_loop: what the
 * server (server.h) and the client (client.h) hand to the application.
 *
 * A dx_conn binds a dx_proto to a non-blocking socket on one loop:
 *
 *   socket -read-> the loop's shared 64 KiB buffer -> dx_proto_recv -> callbacks
 *   dx_conn_send -> dx_proto output -> one write per connection before the loop waits
 *
 * Reads land in one buffer shared by every connection of the loop; a connection
 * holds memory of its own only while it has data in flight (a partial message, or
 * output the peer has not read yet), and gives it back when it goes quiet.
 *
 * Sends are corked: dx_conn_send appends the frame to the connection's output and
 * puts the connection on the loop's flush list; just before the loop waits, each
 * listed connection is written with one write. Only when bytes remain (the peer
 * reads slowly) does the connection wait for EPOLLOUT.
 *
 * Lifetime: a dx_conn is created by the server (on accept) or by dx_client_connect
 * and freed by the library at the end of the loop iteration in which on_close ran.
 * on_close runs exactly once for every connection the application has seen (one that
 * opened, or whose upgrade decision was pending). After on_close returns the
 * pointer must not be used. Any callback may close any connection, including its
 * own.
 *
 * Threads: everything here is loop-thread only. To act on a connection from another
 * thread, dx_loop_post a callback to its loop.
 */
#ifndef DUPLEX_CONN_H
#define DUPLEX_CONN_H

#include "duplex/base.h"
#include "duplex/frame.h"
#include "duplex/http.h"
#include "duplex/loop.h"
#include "duplex/proto.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dx_conn dx_conn;

/* The browser API's readyState. */
typedef enum dx_ready_state {
    DX_CONNECTING = 0, /* resolving, connecting, or in the opening handshake */
    DX_OPEN = 1,       /* messages flow both ways */
    DX_CLOSING = 2,    /* a close frame was sent or received; waiting for the rest */
    DX_CLOSED = 3,     /* finished (only seen from inside on_close) */
} dx_ready_state;

/* What to do when a send would take the buffered amount past max_send_queue. */
typedef enum dx_backpressure {
    DX_BP_REFUSE = 0, /* the send fails with DX_ESEND_QUEUE; nothing is queued */
    DX_BP_CLOSE = 1,  /* the send fails and the connection is closed with 1008 */
} dx_backpressure;

/* A value for the *_ms timeouts: never time out. (0 means "the default".) */
#define DX_NEVER UINT32_MAX

/* Defaults for dx_conn_options (zero fields take these). */
#define DX_DEFAULT_HANDSHAKE_TIMEOUT_MS 10000u
#define DX_DEFAULT_CLOSE_TIMEOUT_MS 5000u
#define DX_DEFAULT_PING_INTERVAL_MS 25000u
#define DX_DEFAULT_PONG_TIMEOUT_MS 20000u
#define DX_DEFAULT_IDLE_TIMEOUT_MS DX_NEVER
#define DX_DEFAULT_LOW_WATER ((size_t)64 << 10)
#define DX_DEFAULT_COMPRESS_MIN 64

/*
 * Limits and timeouts of a connection. Zero-initialise; every zero field takes its
 * default. The defaults are safe against a hostile peer: nothing grows without a
 * bound and nothing waits forever.
 */
typedef struct dx_conn_options {
    size_t max_message;            /* largest incoming message; default 1 MiB (1009 past it) */
    size_t max_frame;              /* largest incoming frame; default max_message */
    size_t max_send_queue;         /* cap on the buffered amount (output not yet written);
                                      default 4 MiB; see backpressure. Automatic replies
                                      (pongs, a close answer) count too: past the cap the
                                      connection stops reading until the output drains to
                                      low_water (DX_BP_REFUSE) or closes with 1008
                                      (DX_BP_CLOSE) */
    size_t low_water;              /* on_drain fires when the buffered amount falls to this
                                      or below after it was above it; default 64 KiB */
    dx_backpressure backpressure;  /* what a send past the cap does; default refuse */
    size_t max_head;               /* largest HTTP head in the opening handshake;
                                      default 8 KiB (server: 431 past it) */
    uint32_t handshake_timeout_ms; /* the opening handshake (server: from accept; client:
                                      from the start of connect, name resolution
                                      included); default 10 s */
    uint32_t close_timeout_ms;     /* wait for the peer's close frame (and, on the
                                      client, for the server to close TCP); default 5 s */
    uint32_t ping_interval_ms;     /* send a keep-alive ping after this long without
                                      receiving anything; default 25 s; DX_NEVER: off */
    uint32_t pong_timeout_ms;      /* a keep-alive ping unanswered this long fails the
                                      connection (DX_EPING_TIMEOUT); default 20 s */
    uint32_t idle_timeout_ms;      /* close with 1001 after this long without a message
                                      either way; default DX_NEVER (the keep-alive
                                      pings already find dead peers) */
    bool streaming;                /* deliver messages piece by piece through
                                      on_fragment instead of whole through on_message */
    size_t compress_min;           /* with permessage-deflate: whole messages shorter
                                      than this are sent uncompressed; default 64 */
} dx_conn_options;

/* A piece of a message, in streaming mode. */
typedef struct dx_fragment {
    dx_opcode opcode; /* DX_OP_TEXT or DX_OP_BINARY: the message's type */
    dx_span data;     /* the bytes (text: valid UTF-8 so far; a piece may end inside
                         a character, the message as a whole is checked) */
    bool first;       /* first piece of the message */
    bool fin;         /* last piece of the message */
} dx_fragment;

/* How a connection ended, for on_close. */
typedef struct dx_close_info {
    uint16_t code;  /* the peer's close code (browser semantics: what the server said);
                       1005 when its close frame had none; 1006 when the connection
                       ended without a closing handshake */
    dx_span reason; /* the peer's reason (UTF-8, <= 123 bytes); valid during the call */
    bool clean;     /* close frames were exchanged (the browser's wasClean) */
    bool remote;    /* the peer started the closing (or dropped the connection);
                       false when we did (dx_conn_close, a timeout, a violation) */
    int error;      /* 0, or why the connection failed or the library closed it: a
                       DX_E* code or -errno (what on_error got, if it was called) */
} dx_close_info;

/*
 * The application's callbacks. Every one is optional. @user is the connection's
 * user pointer (dx_conn_set_user). All spans are valid only during the call.
 */
typedef struct dx_conn_callbacks {
    /* The connection is OPEN: the handshake completed. */
    void (*on_open)(dx_conn *c, void *user);
    /* A whole message (not in streaming mode). Text is valid UTF-8. The bytes live in
       the loop's shared read buffer or the connection's reassembly buffer: copy what
       must outlive the call. */
    void (*on_message)(dx_conn *c, dx_opcode opcode, dx_span data, void *user);
    /* A piece of a message (streaming mode). */
    void (*on_fragment)(dx_conn *c, const dx_fragment *f, void *user);
    /* A ping arrived (the pong is already queued). */
    void (*on_ping)(dx_conn *c, dx_span payload, void *user);
    /* A pong arrived. @rtt_us is the round trip of the ping it answers (matched by
       payload: a keep-alive ping or the last dx_conn_ping), or -1 when it answers
       none (an unsolicited pong). */
    void (*on_pong)(dx_conn *c, dx_span payload, int64_t rtt_us, void *user);
    /* The buffered amount fell to low_water or below after it was above it (or after
       a send was refused with DX_ESEND_QUEUE): the application may send again. */
    void (*on_drain)(dx_conn *c, void *user);
    /* The connection failed: @err says why (a DX_E* code or -errno; for a refused
       handshake DX_EHS_STATUS, see dx_conn_http_status). on_close follows. Not called
       for a clean close (close frames exchanged; when the library started it, for an
       idle timeout or a full send queue, dx_close_info.error says so) nor for a peer
       that merely drops the connection. */
    void (*on_error)(dx_conn *c, int err, void *user);
    /* The connection is finished; called exactly once; @c is freed after the
       iteration and must not be used once this returns. */
    void (*on_close)(dx_conn *c, const dx_close_info *info, void *user);
} dx_conn_callbacks;

/*
 * Send a whole message. Text must be valid UTF-8 (not checked here: the peer will
 * fail the connection with 1007 otherwise; dx_utf8_valid checks it). The bytes are
 * copied (and masked, on the client), so @data may be reused at once.
 *
 * Returns 0, or:
 *   DX_ECONNECTING  the connection is not open yet (the browser's InvalidStateError)
 *   DX_ECLOSED      a close frame was already sent or received
 *   DX_ESEND_QUEUE  the buffered amount would pass max_send_queue (with DX_BP_CLOSE
 *                   the connection is now closing with 1008)
 *   DX_EINVAL       @opcode is not DX_OP_TEXT or DX_OP_BINARY, or NULL data with a length
 *   DX_ENOMEM
 */
DX_API int dx_conn_send(dx_conn *c, dx_opcode opcode, dx_span data);
DX_API int dx_conn_send_text(dx_conn *c, dx_span text);
DX_API int dx_conn_send_binary(dx_conn *c, dx_span data);

/* Flags for dx_conn_send_ex. */
#define DX_SEND_NO_COMPRESS 1u /* send this message uncompressed even with permessage-deflate */

/*
 * dx_conn_send with @flags. With permessage-deflate agreed, a whole message of at
 * least the threshold (server/client options) is compressed (RFC 7692: RSV1 on its
 * frame) unless DX_SEND_NO_COMPRESS is given; fragments (dx_conn_send_fragment) are
 * never compressed. A compressed send refused by the cap (DX_ESEND_QUEUE) has not
 * touched the compressor; a compressor failure closes the connection with 1011.
 */
DX_API int dx_conn_send_ex(dx_conn *c, dx_opcode opcode, dx_span data, unsigned flags);

/*
 * Send one fragment of a message: @opcode DX_OP_TEXT/DX_OP_BINARY starts one,
 * DX_OP_CONT continues it, @fin ends it (RFC 6455 §5.4). Pings may go between the
 * fragments; other messages may not. Returns what dx_conn_send returns, and
 * DX_ESTATE for a wrong sequence.
 */
DX_API int dx_conn_send_fragment(dx_conn *c, dx_opcode opcode, dx_span data, bool fin);

/* ---- prepared messages: encode once, send to many ------------------------------------- */

/*
 * A prepared message is one text or binary message that many connections send (a
 * broadcast). It keeps a copy of the payload and, made when a connection first
 * needs it, the payload compressed for each permessage-deflate window in use
 * (8..15): a broadcast to N compressing connections costs one compression per
 * window, not N. On each connection it goes as dx_conn_send would send it:
 *   - uncompressed without permessage-deflate, below the connection's compress_min,
 *     with DX_SEND_NO_COMPRESS, or when compressing does not make it smaller;
 *   - otherwise compressed (RSV1), with the shared bytes. They refer to nothing
 *     before the message, so after sending them a connection whose own side keeps
 *     its compression context resets it (dx_deflate_reset_compressor): its next
 *     message cannot refer to what the peer never saw from it. Such a connection
 *     loses some ratio on that next message; none of this affects correctness.
 * A client connection masks its copy, as every client frame must be.
 *
 * Reference counted. The message is immutable; its compressed forms are built under
 * a lock, so one prepared message may be sent on loops running on several threads.
 */
typedef struct dx_prepared dx_prepared;

typedef struct dx_prepared_options {
    unsigned flags;                /* DX_SEND_NO_COMPRESS: always send it uncompressed */
    uint8_t level;                 /* zlib level of the compressed forms, 1..9 (0: 6) */
    uint8_t mem_level;             /* zlib memLevel while compressing, 1..9 (0: 8; the
                                      compressor lives for one message, not per connection) */
    const dx_allocator *allocator; /* NULL: malloc */
} dx_prepared_options;

/*
 * Prepare @data (copied) as a message of type @opcode. @opts may be NULL (defaults).
 * Returns 0 with *@out holding one reference, or DX_EINVAL (@opcode not DX_OP_TEXT
 * or DX_OP_BINARY, NULL data with a length, a level outside 0..9), DX_ENOT_UTF8
 * (text that is not valid UTF-8: checked once here, never per connection) or
 * DX_ENOMEM.
 */
DX_API int dx_prepared_create(dx_prepared **out, dx_opcode opcode, dx_span data,
                              const dx_prepared_options *opts);
/* Take another reference (to keep the message past the call that sends it). Returns @m. */
DX_API dx_prepared *dx_prepared_ref(dx_prepared *m);
/* Drop a reference; the last one frees it. Connections copy what they queue, so a
 * message may be released right after the sends. NULL is a no-op. */
DX_API void dx_prepared_release(dx_prepared *m);
/* The uncompressed payload's length. */
DX_API size_t dx_prepared_size(const dx_prepared *m);

/*
 * Send @m on @c. Returns what dx_conn_send returns (DX_EINVAL also for a NULL @m).
 * DX_ENOMEM from building the compressed form leaves @c as it was.
 */
DX_API int dx_conn_send_prepared(dx_conn *c, dx_prepared *m);

/* Send a ping (payload <= 125 bytes); its pong reaches on_pong with the round trip.
 * Returns 0, DX_ECONNECTING, DX_ECLOSED, DX_EINVAL, DX_ESEND_QUEUE or DX_ENOMEM. */
DX_API int dx_conn_ping(dx_conn *c, dx_span payload);

/*
 * Start the closing handshake with @code and @reason (@code 0: a close frame with no
 * code; the peer sees 1005). On a client connection @code must be 1000 or 3000-4999
 * (the browser's rule, DX_EBAD_CLOSE_CODE otherwise); on a server connection any
 * code valid on the wire. @reason: UTF-8 of at most 123 bytes (DX_ECLOSE_REASON).
 *
 * While CONNECTING, the connection is abandoned instead (on_close with 1006; a server
 * connection whose upgrade is pending is dropped). Closing a connection that is
 * already CLOSING or CLOSED does nothing and returns 0 (like the browser).
 *
 * on_close follows once the peer answers and the transport is closed, or after
 * close_timeout_ms.
 */
DX_API int dx_conn_close(dx_conn *c, uint16_t code, dx_span reason);

/* Tear the connection down at once, without a closing handshake: on_close (1006,
 * not clean) runs before this returns. */
DX_API void dx_conn_abort(dx_conn *c);

/* Stop reading from the peer (bytes already read are kept and delivered on resume;
 * the kernel's buffers fill and TCP flow control slows the peer). Keep-alive still
 * runs. Idempotent. */
DX_API void dx_conn_pause(dx_conn *c);
/* Resume reading; bytes kept while paused are delivered in the next iteration. */
DX_API void dx_conn_resume(dx_conn *c);

/* readyState. */
DX_API dx_ready_state dx_conn_state(const dx_conn *c);
/* Bytes queued but not yet written to the socket (the browser's bufferedAmount). */
DX_API size_t dx_conn_buffered_amount(const dx_conn *c);
/* The subprotocol agreed in the handshake; empty when none. Valid for @c's life. */
DX_API dx_span dx_conn_protocol(const dx_conn *c);
/* The Sec-WebSocket-Extensions the server agreed to; empty when none. */
DX_API dx_span dx_conn_extensions(const dx_conn *c);
/* The URL a client connection was opened with (NUL-terminated); "" on the server. */
DX_API const char *dx_conn_url(const dx_conn *c);
/* The HTTP status the server answered a client's handshake with (101 when it
 * opened; 0 before an answer). Useful in on_error with DX_EHS_STATUS. */
DX_API int dx_conn_http_status(const dx_conn *c);
/* The peer's address (IP and port, or a Unix socket). Returns 0 or -errno. */
DX_API int dx_conn_peer_addr(const dx_conn *c, char *out, size_t cap);
/* wss: the fatal TLS alert the peer sent, as OpenSSL's text ("unknown CA",
 * "certificate required", ...), when a connection failed with DX_ETLS_ALERT; NULL
 * when none arrived (or without TLS). Static storage; ask in on_error or on_close. */
DX_API const char *dx_conn_tls_alert(const dx_conn *c);

DX_API void *dx_conn_user(const dx_conn *c);
DX_API void dx_conn_set_user(dx_conn *c, void *user);
DX_API dx_loop *dx_conn_loop(const dx_conn *c);
DX_API dx_side dx_conn_side(const dx_conn *c);

#ifdef __cplusplus
}
#endif
#endif /* DUPLEX_CONN_H */
