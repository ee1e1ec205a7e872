/*
 * The WebSocket connection's private state, shared by the files of src/conn/ (conn.c:
 * the life of a connection and its input; conn_send.c: the send API; conn_deflate.c:
 * permessage-deflate; keepalive.c: the timer) and by src/server/ and src/client/,
 * which each own the CONNECTING phase of their side through a dx__conn_role.
 * Not installed.
 *
 * A connection is a dx_stream (stream.h) with a dx_proto on top: the stream is
 * embedded first in the dx_conn, so the stream layer's memory is the connection's,
 * and the conn class begins with the stream class.
 */
#ifndef DX_CONN_CONN_INTERNAL_H
#define DX_CONN_CONN_INTERNAL_H

#include "base/internal.h"
#include "duplex/conn.h"
#include "duplex/deflate.h"
#include "duplex/utf8.h"
#include "runtime/stream_internal.h"

/* Where a connection is in its life. */
typedef enum dx__phase {
    PHASE_HANDSHAKE = 0, /* the role's: resolve, connect, proxy, HTTP upgrade */
    PHASE_OPEN,          /* dx_proto in charge; may be CLOSING (close frame sent) */
    PHASE_ENDING,        /* the stream is closing (dx_stream_close): waiting for it */
    PHASE_DEAD,          /* finished; on_close ran (or was not owed); freed soon */
} dx__phase;

/* The CONNECTING phase of one side, and its clean-up. */
typedef struct dx__conn_role {
    /* Bytes arrived during PHASE_HANDSHAKE: consume what the role can (it may open
       the connection and hand the rest to dx__conn_deliver). Returns the bytes used. */
    size_t (*on_data)(dx_conn *c, uint8_t *data, size_t len);
    /* The stream opened (the client: connected, TLS done). NULL: nothing to do. */
    void (*on_open)(dx_conn *c);
    /* The handshake timer fired. */
    void (*on_timeout)(dx_conn *c);
    /* The peer finished sending during the handshake. */
    void (*on_eof)(dx_conn *c);
    /* The connection finished (on_close is about to run): unlink from the owner. */
    void (*on_finish)(dx_conn *c);
    /* on_close has returned (or was not owed). */
    void (*after_close)(dx_conn *c);
    /* Free what the role attached (role_data, owner), at the final free. */
    void (*release)(dx_conn *c);
} dx__conn_role;

/* A growable byte buffer, allocated only while it holds something. */
typedef struct dx__buf {
    size_t len;
    size_t cap;
    uint8_t data[];
} dx__buf;

/* permessage-deflate on an open connection (RFC 7692): made at open when it was
 * negotiated. zlib's own memory comes only when a direction first needs it. */
typedef struct dx__pmd {
    dx_deflate *codec;
    dx__buf *scratch;    /* a compressed outgoing message, or inflated pieces */
    dx_utf8_state utf8;  /* a compressed text message, validated once inflated */
    bool in_compressed;  /* the message being received has RSV1 */
    bool stream_started; /* streaming mode: its first piece was delivered */
    size_t plain_len;    /* bytes so far of an uncompressed incoming message (the
                            proto's wire limit is looser with deflate on) */
} dx__pmd;

/* What an owner (the server, a client's configuration) shares with its connections.
 * The stream class comes first: a connection's stream points to it. */
typedef struct dx__conn_class {
    dx__stream_class stream; /* the stream's callbacks (conn.c's) and options */
    const dx__conn_role *role;
    const dx_conn_callbacks *cb;
    const dx_conn_options *opts; /* defaults filled in */
} dx__conn_class;

/*
 * One connection. Kept small because a server holds one per idle client: the proto
 * and every buffer are allocated only while data is in flight (an OPEN connection
 * with proto == NULL is idle, and a fresh proto is made when bytes come or go), times
 * are 32-bit loop milliseconds (differences taken mod 2^32), flags are bits. The
 * application's user pointer is the stream's (dx_stream_user), and so is the error
 * that ends the connection (stream.error: dx_close_info.error); the peer's close
 * reason stays in the proto (dx_proto_close_reason).
 */
struct dx_conn {
    dx_stream stream; /* first: the byte stream under the connection */
    dx_proto *proto;  /* NULL before OPEN, and while OPEN and idle */
    void *owner;      /* the dx_server, or the client attempt */
    union {
        void *role_data; /* the role's handshake state, while CONNECTING */
        dx__pmd *pmd;    /* once OPEN: permessage-deflate, when pmd_on */
    };
    dx_conn *prev, *next;        /* the owner's list of connections */
    dx__buf *msg;                /* the message being reassembled */
    char *info;                  /* protocol, extensions, then the client's URL and a
                                    NUL, in one block; NULL when all are empty */
    uint32_t last_recv;          /* loop ms of the last read */
    uint32_t last_active;        /* loop ms of the last message either way */
    uint32_t ping_sent_us;       /* µs clock when the tracked ping left (RTT, and the
                                    keep-alive's pong deadline) */
    uint32_t ping_data;          /* first bytes of the tracked ping's payload */
    uint16_t close_code;         /* for dx_close_info */
    uint16_t http_status;        /* client: the answer's status (or the proxy's) */
    uint16_t protocol_len;       /* in info */
    uint16_t extensions_len;     /* in info, after the protocol */
    uint8_t ping_len;            /* 0: no tracked ping; else 1 + its payload length */
    uint8_t phase;               /* dx__phase */
    uint8_t side;                /* dx_side */
    uint8_t msg_opcode;          /* the reassembled message's type */
    bool seen : 1;               /* the application knows it: on_close is owed */
    bool close_started_here : 1; /* we sent the first close frame */
    bool clean : 1;              /* close frames were exchanged */
    bool remote : 1;             /* the peer started the closing */
    bool drain_wanted : 1;       /* went above low_water or a send was refused */
    bool app_closed : 1;         /* the application called dx_conn_close or abort */
    bool ka_pending : 1;         /* a keep-alive ping waits for its pong */
    bool pmd_on : 1;             /* pmd holds permessage-deflate's state */
    bool app_paused : 1;         /* dx_conn_pause (takes effect at open when CONNECTING) */
    bool out_full : 1;           /* reading waits: automatic replies (pongs, close
                                    answers) took the output past max_send_queue */
    bool hs_paused : 1;          /* the role holds input back (a pending decision) */
};

static inline dx_conn *dx__conn_of(dx_stream *s) {
    return (dx_conn *)s; /* the stream is the first member */
}

static inline const dx__conn_class *dx__conn_class_of(const dx_conn *c) {
    return (const dx__conn_class *)c->stream.cls;
}

static inline const dx_conn_options *dx__conn_opts(const dx_conn *c) {
    return dx__conn_class_of(c)->opts;
}

static inline const dx_conn_callbacks *dx__conn_cb(const dx_conn *c) {
    return dx__conn_class_of(c)->cb;
}

static inline const dx_allocator *dx__conn_alloc(const dx_conn *c) {
    return c->stream.out.alloc;
}

static inline uint32_t dx__conn_now_ms(const dx_conn *c) {
    return (uint32_t)dx_loop_now(dx__stream_loop(&c->stream));
}

/* A µs clock (CLOCK_MONOTONIC) for ping round trips, mod 2^32. */
uint32_t dx__conn_now_us(void);

/* Fill zero fields of @in with defaults into @out. */
void dx__conn_options_resolve(const dx_conn_options *in, dx_conn_options *out);

/* Fill @cls for connections of @role on @loop with @cb and @opts (both must outlive
 * it). */
void dx__conn_class_init(dx__conn_class *cls, dx_loop *loop, const dx__conn_role *role,
                         const dx_conn_callbacks *cb, const dx_conn_options *opts);

/* Set up @c (zeroed by the caller, allocated with @a, which frees it) for an
 * accepted socket: the stream reads at once (TLS: @tls, a server context). Returns 0
 * or a negative code (@fd closed). */
int dx__conn_init_accepted(dx_conn *c, dx_loop *loop, int fd, dx_tls_ctx *tls,
                           const dx__conn_class *cls, void *owner, void *user,
                           const dx_allocator *a);

/* Set up @c (zeroed) as a client connection whose stream is not connected yet (its
 * role connects it with dx__conn_connect, now or after a delay on the stream's
 * timer). Memory from @a (NULL: the loop's). Returns 0 or DX_ENOMEM. */
int dx__conn_init_client(dx_conn *c, dx_loop *loop, const dx__conn_class *cls, void *owner,
                         void *user, const dx_allocator *a);

/* Free a client connection set up by dx__conn_init_client whose start failed before
 * anything was reported (no callback runs). */
void dx__conn_discard(dx_conn *c);

/* Connect the client's stream as @o says (and arm the handshake timeout). Returns 0
 * or a negative code (the caller fails the connection). */
int dx__conn_connect(dx_conn *c, const dx_connect_options *o);

/* Keep copies of the strings a connection reports for its life (empty spans, NULL
 * url: none). Returns 0, DX_EINVAL (a string over 65535 bytes) or DX_ENOMEM. */
int dx__conn_set_info(dx_conn *c, dx_span protocol, dx_span extensions, const char *url);

/* Queue HTTP bytes (the 101, a refusal, the request) ahead of any frame; written at
 * once when nothing waits before them. Returns 0 or DX_ENOMEM. */
int dx__conn_send_raw(dx_conn *c, const uint8_t *p, size_t n);

/* Send what is queued (a refusal), then close the stream lingering for the peer's
 * FIN. No on_close unless seen. */
void dx__conn_end_after_raw(dx_conn *c);

/*
 * Leave the handshake: switch to OPEN (role_data must be released by then), run
 * on_open. @pmd: the permessage-deflate parameters agreed, or NULL; @pmd_cfg the
 * side's configuration (memory and compression levels). The role then hands the
 * bytes after the head to dx__conn_deliver. Returns 0, or a negative code after
 * which @c is finished.
 */
int dx__conn_open(dx_conn *c, const dx_deflate_params *pmd, const dx_deflate_config *pmd_cfg);

/* Run @len bytes through the proto (OPEN), one event at a time; returns the bytes
 * consumed (fewer when the application paused, or reading waits for the output). */
size_t dx__conn_deliver(dx_conn *c, uint8_t *buf, size_t len);

/* Fail @c (any phase) with @err: no closing handshake; on_error if seen, then on_close
 * (1006). Freed at the end of the iteration. */
void dx__conn_fail(dx_conn *c, int err);

/* End abnormally: the transport ended (@remote) or we gave up. */
void dx__conn_end_abnormally(dx_conn *c, int err, bool remote);

/* Start the closing handshake with any code valid on the wire (the library's own
 * closes: shutdown, idle, backpressure). Returns 0 or a negative code. */
int dx__conn_close(dx_conn *c, uint16_t code, const char *reason);

/* Fail the connection for an extension's reason: close with @code, report @err. */
void dx__conn_fail_with(dx_conn *c, uint16_t code, int err, const char *why);

/* The proto of an OPEN connection, made afresh if it was dropped while idle. NULL
 * when out of memory (the connection is then failed). */
dx_proto *dx__conn_proto(dx_conn *c);

/* The proto (if any) has output or finished: let the stream write, and end it once
 * the closing handshake is over. */
void dx__conn_output_changed(dx_conn *c);

/* Hold input back (the role waits for a decision) / let it flow again. */
void dx__conn_hold_input(dx_conn *c, bool hold);

/* ---- conn_deflate.c ---- */

/* A piece of a compressed message: inflate it, check, deliver. */
void dx__conn_on_compressed(dx_conn *c, const dx_event *ev);
/* Compress a whole message and queue it with RSV1. */
int dx__conn_send_compressed(dx_conn *c, dx_proto *p, dx_opcode opcode, dx_span data);
/* Free the compression state. */
void dx__conn_free_pmd(dx_conn *c);

/* ---- keepalive.c ---- */

/* Start the timer for an OPEN connection (its first tick comes soon, to give back
 * what the handshake left). */
void dx__conn_timer_open(dx_conn *c);
/* The stream's timer fired (any phase). */
void dx__conn_on_timer(dx_conn *c);
/* The closing handshake started: its deadline. */
void dx__conn_timer_closing(dx_conn *c);
/* A buffer grew for a large message: make sure it is given back soon. */
void dx__conn_settle_soon(dx_conn *c);
/* Remember a ping we sent, to match its pong; is @payload the answer to it? */
void dx__conn_track_ping(dx_conn *c, dx_span payload);
bool dx__conn_pong_matches(const dx_conn *c, dx_span payload);
/* A tracked pong arrived: count the next keep-alive ping from now. */
void dx__conn_pong_seen(dx_conn *c);

/* ---- buffers (conn.c) ---- */

int dx__buf_reserve(const dx_allocator *a, dx__buf **bp, size_t need);
int dx__buf_append(const dx_allocator *a, dx__buf **bp, const uint8_t *p, size_t n);
void dx__buf_free(const dx_allocator *a, dx__buf **bp);
static inline size_t dx__buf_len(const dx__buf *b) {
    return b ? b->len : 0;
}

/* Buffers that grew past this for one large message are given back about
 * LARGE_SETTLE_MS after it (keepalive.c). */
#define DX__BUF_KEEP_MAX ((size_t)64 << 10)

#endif /* DX_CONN_CONN_INTERNAL_H */
