/*
 * The connection layer's private state, shared by conn.c (the OPEN and closing
 * phases, common to both sides), src/server/ and src/client/ (each owns the
 * CONNECTING phase of its side through a dx__conn_role). Not installed.
 */
#ifndef DX_RUNTIME_CONN_INTERNAL_H
#define DX_RUNTIME_CONN_INTERNAL_H

#include "base/internal.h"
#include "duplex/conn.h"
#include "duplex/deflate.h"
#include "duplex/utf8.h"

#include <sys/types.h>

/* Where a connection is in its life. Only conn.c moves it past PHASE_HANDSHAKE. */
typedef enum dx__phase {
    PHASE_HANDSHAKE = 0, /* the role's: resolve, connect, proxy, HTTP upgrade */
    PHASE_OPEN,          /* dx_proto in charge; may be CLOSING (close frame sent) */
    PHASE_LINGER,        /* our side is done: wait for the peer's FIN, then close */
    PHASE_DEAD,          /* finished; on_close ran (or was not owed); freed soon */
} dx__phase;

/* The CONNECTING phase of one side, and its clean-up. */
typedef struct dx__conn_role {
    /* The socket is ready (DX_IO_READ / DX_IO_WRITE bits) during PHASE_HANDSHAKE. */
    void (*on_io)(dx_conn *c, unsigned events);
    /* The handshake timer fired. */
    void (*on_timeout)(dx_conn *c);
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

/* What an owner (the server, a client's configuration) shares with its connections. */
typedef struct dx__conn_class {
    const dx__conn_role *role;
    const dx_conn_callbacks *cb;
    const dx_conn_options *opts; /* defaults filled in */
} dx__conn_class;

/*
 * One connection. Kept small because a server holds one per idle client: the proto and
 * every buffer are allocated only while data is in flight (an OPEN connection with
 * proto == NULL is idle, and a fresh proto is made when bytes come or go), times are
 * 32-bit loop milliseconds (differences taken mod 2^32), flags are bits.
 */
struct dx_conn {
    dx_io io;       /* the socket's watcher */
    dx_timer timer; /* the next deadline: handshake, keep-alive, close */
    dx_loop *loop;
    dx_proto *proto;           /* NULL before OPEN, and while OPEN and idle */
    const dx__conn_class *cls; /* role, callbacks, options */
    void *owner;               /* the dx_server, or the client attempt */
    union {
        void *role_data; /* the role's handshake state, while CONNECTING */
        dx__pmd *pmd;    /* once OPEN: permessage-deflate, when pmd_on */
    };
    void *user;                  /* the application's */
    dx_conn *flush_next;         /* the loop's flush list; once dead, its reaping list */
    dx_conn *flush_prev;         /* the loop's flush list */
    dx_conn *prev, *next;        /* the owner's list of connections */
    dx__buf *in;                 /* bytes read but not yet consumed: the handshake
                                    head, or (once OPEN) what waits for a resume */
    dx__buf *raw;                /* HTTP bytes to write before any frame (101, refusal,
                                    request, CONNECT) */
    dx__buf *msg;                /* the message being reassembled */
    char *info;                  /* protocol, extensions, then the client's URL and a
                                    NUL, in one block; NULL when all are empty */
    const uint8_t *close_reason; /* the peer's reason, into the proto */
    struct dx_tls_conn *tls;     /* wss: the TLS engine every byte goes through */
    int error;                   /* why it failed (dx_close_info.error) */
    int fd;
    uint32_t last_recv;      /* loop ms of the last read */
    uint32_t last_active;    /* loop ms of the last message either way */
    uint32_t ping_sent_us;   /* µs clock when the tracked ping left (RTT, and the
                                keep-alive's pong deadline) */
    uint32_t ping_data;      /* first bytes of the tracked ping's payload */
    uint16_t close_code;     /* for dx_close_info */
    uint16_t http_status;    /* client: the answer's status */
    uint16_t protocol_len;   /* in info */
    uint16_t extensions_len; /* in info, after the protocol */
    uint8_t close_reason_len;
    uint8_t ping_len;            /* 0: no tracked ping; else 1 + its payload length */
    uint8_t phase;               /* dx__phase */
    uint8_t side;                /* dx_side */
    uint8_t io_events;           /* DX_IO_* bits the watcher asks for */
    uint8_t msg_opcode;          /* the reassembled message's type */
    bool paused : 1;             /* dx_conn_pause (or a pending upgrade decision) */
    bool out_full : 1;           /* reading waits: automatic replies (pongs, close
                                    answers) took the output past max_send_queue */
    bool want_write : 1;         /* the role waits for writability (connect) */
    bool seen : 1;               /* the application knows it: on_close is owed */
    bool on_flush_list : 1;      /* in the loop's flush list */
    bool close_started_here : 1; /* we sent the first close frame */
    bool clean : 1;              /* close frames were exchanged */
    bool remote : 1;             /* the peer started the closing */
    bool drain_wanted : 1;       /* went above low_water or a send was refused */
    bool linger_after_raw : 1;   /* end once raw is written (HTTP refusal) */
    bool app_closed : 1;         /* the application called dx_conn_close or abort */
    bool ka_pending : 1;         /* a keep-alive ping waits for its pong */
    bool pmd_on : 1;             /* pmd holds permessage-deflate's state */
    bool tls_more : 1;           /* the TLS engine holds bytes epoll cannot see */
    bool pause_on_open : 1;      /* dx_conn_pause while CONNECTING: takes effect at open */
};

/* Fill zero fields of @in with defaults into @out. */
void dx__conn_options_resolve(const dx_conn_options *in, dx_conn_options *out);

/* Set up @c (zeroed by the caller) on @loop for socket @fd (-1: none yet), of class
 * @cls. Starts reading and the handshake timer. Returns 0 or -errno (epoll). */
int dx__conn_init(dx_conn *c, dx_loop *loop, int fd, dx_side side, const dx__conn_class *cls,
                  void *owner, void *user);

/* Give @c its socket (the client, once connect() started) and watch it, for
 * writability too when @want_write. Returns 0 or -errno. */
int dx__conn_attach_fd(dx_conn *c, int fd, bool want_write);

/* Put the TLS engine @t (owned by @c from now on) between the socket and @c: every
 * byte read or written from here goes through it. A client starts its handshake
 * at once. Returns 0 or a negative code. */
int dx__conn_start_tls(dx_conn *c, struct dx_tls_conn *t);

/* Stop watching and close @c's socket (a connect attempt that failed). */
void dx__conn_detach_fd(dx_conn *c);

/* Read once from the socket into the loop's shared buffer. Returns the bytes read
 * (> 0), 0 at EOF, DX_EINCOMPLETE when nothing is there, or -errno. *@buf points
 * to them. */
ssize_t dx__conn_read(dx_conn *c, uint8_t **buf);

/* Append bytes to in / raw. Return 0 or DX_ENOMEM. */
int dx__conn_keep_input(dx_conn *c, const uint8_t *p, size_t n);
int dx__conn_queue_raw(dx_conn *c, const uint8_t *p, size_t n);

/* Write HTTP bytes now when nothing waits before them (the 101: no buffer to
 * allocate and free for it), keeping in raw what the socket does not take. Returns
 * 0 or DX_ENOMEM; a write error shows in the next flush. */
int dx__conn_send_raw(dx_conn *c, const uint8_t *p, size_t n);

/* The bytes kept in in (NULL and 0 when none). */
static inline uint8_t *dx__conn_in(const dx_conn *c) {
    return c->in ? c->in->data : NULL;
}
static inline size_t dx__conn_in_len(const dx_conn *c) {
    return c->in ? c->in->len : 0;
}

/* Drop the first @n bytes of in. */
void dx__conn_drop_input(dx_conn *c, size_t n);

/* Put @c on the loop's flush list (written before the next wait). */
void dx__conn_want_flush(dx_conn *c);

/* Recompute the watcher's events (read unless paused; write while output waits). */
void dx__conn_update_io(dx_conn *c);

/* Start the closing handshake with any code valid on the wire (the library's own
 * closes: shutdown, idle, backpressure). Returns 0 or a negative code. */
int dx__conn_close(dx_conn *c, uint16_t code, const char *reason);

/*
 * Leave the handshake: switch to OPEN (role_data must be released by then), run
 * on_open, then deliver the bytes already kept in in past @head_len (frames that
 * arrived with the handshake). @pmd: the permessage-deflate parameters agreed, or
 * NULL; @pmd_cfg the side's configuration (memory and compression levels).
 * Returns 0, or a negative code after which @c is finished.
 */
int dx__conn_open(dx_conn *c, size_t head_len, const dx_deflate_params *pmd,
                  const dx_deflate_config *pmd_cfg);

/* Fail @c during the handshake (or any time) with @err: no closing handshake;
 * on_error if seen, then on_close (1006). Frees @c at the end of the iteration. */
void dx__conn_fail(dx_conn *c, int err);

/* Keep copies of the strings a connection reports for its life (empty spans, NULL
 * url: none). Returns 0, DX_EINVAL (a string over 65535 bytes) or DX_ENOMEM. */
int dx__conn_set_info(dx_conn *c, dx_span protocol, dx_span extensions, const char *url);

/* Send what raw[] holds, then shut the write side and linger until the peer closes
 * (an HTTP refusal). No on_close unless seen. */
void dx__conn_end_after_raw(dx_conn *c);

#endif /* DX_RUNTIME_CONN_INTERNAL_H */
