/*
 * The stream layer's private state (stream.h), shared by stream.c (reading, writing,
 * closing), stream_open.c (setting up), stream_tls.c (the TLS glue), stream_connect.c
 * (resolve, connect, proxy), listener.c (listen, accept), and the layers that embed a
 * stream in an object of their own (the WebSocket connection). Not installed.
 */
#ifndef DX_RUNTIME_STREAM_INTERNAL_H
#define DX_RUNTIME_STREAM_INTERNAL_H

#include "base/internal.h"
#include "duplex/stream.h"

#include <sys/types.h>

struct dx_tls_conn;
struct dx__connect;

/* What a family of streams shares: the owner's callbacks and options, and how the
 * memory that holds a stream is given back. A layer that embeds streams keeps one
 * per owner (a server, a client configuration) and may put it first in a class of
 * its own. */
typedef struct dx__stream_class {
    dx_loop *loop;                 /* every stream of the family lives on it */
    dx_stream_callbacks cb;        /* the owner's */
    dx_stream_options opts;        /* defaults filled in */
    void (*release)(dx_stream *s); /* free what holds @s: called at the end of the
                                      iteration in which on_close ran */
} dx__stream_class;

/* Where a stream is in its life. */
typedef enum dx__stream_state {
    ST_NEW = 0,    /* accepted, not started */
    ST_CONNECTING, /* resolving, connecting, proxy tunnel (stream_connect.c) */
    ST_HANDSHAKE,  /* TLS handshake */
    ST_OPEN,       /* bytes flow both ways (until EOF / shutdown each way) */
    ST_CLOSING,    /* dx_stream_close: the output is being written, then close_mode */
    ST_DEAD,       /* finished; on_close ran; freed at the end of the iteration */
} dx__stream_state;

/* Input kept from an on_data that did not consume everything. */
typedef struct dx__kept {
    size_t len, cap;
    uint8_t data[];
} dx__kept;

struct dx_stream {
    dx_io io;                    /* the socket's watcher; its fd is the socket */
    dx_timer timer;              /* the owner's timeout, the connect bound, linger */
    dx_outq out;                 /* what is left to write, in order */
    const dx__stream_class *cls; /* the loop, callbacks, options, release */
    void *user;                  /* the owner's */
    dx_stream *next;             /* the loop's flush list; once dead, its reaping list */
    dx_stream *prev;             /* the loop's flush list */
    union {
        dx__kept *in;                /* input kept for the next on_data (once connected) */
        struct dx__connect *connect; /* while ST_CONNECTING (stream_connect.c) */
    };
    struct dx_tls_conn *tls; /* every byte goes through it when set */
    int error;               /* why it failed: on_close's @err */
    uint8_t state;           /* dx__stream_state */
    uint8_t io_events;       /* DX_IO_* the watcher asks for */
    uint8_t close_mode;      /* dx_stream_close_mode, once ST_CLOSING */
    bool started : 1;        /* accepted and given its callbacks */
    bool paused : 1;         /* dx_stream_pause */
    bool on_flush_list : 1;  /* in the loop's flush list */
    bool drain_wanted : 1;   /* went above low_water, or a write was refused */
    bool eof : 1;            /* the peer finished sending */
    bool eof_reported : 1;   /* on_eof ran (after the bytes before the end) */
    bool shut_wanted : 1;    /* dx_stream_shutdown: FIN once the output is out */
    bool shut_done : 1;      /* our FIN went out */
    bool owner_timer : 1;    /* the timer is the owner's (dx_stream_set_timeout) */
    bool tls_more : 1;       /* TLS holds decrypted bytes epoll cannot see */
    bool redeliver : 1;      /* kept input waits to be offered again (resume) */
    bool want_write : 1;     /* connecting: waiting for writability */
    bool lingering : 1;      /* closing: the output is out, now waiting for the peer */
    bool eof_watch : 1;      /* paused, but a peer that leaves is reported at once */
    bool peeked : 1;         /* eof_watch: bytes are there; stop watching till resume */
    bool has_connect : 1;    /* the union holds connect, not in (from connect to open) */
};

/* A stream of the public API: it owns its memory and its class (an accepted stream
 * gets its callbacks later, from dx_stream_start). Not set up yet: pass it, with its
 * own s->cls, to a dx__stream_init_*; dx__stream_delete frees one that failed to set
 * up. NULL when out of memory. */
dx_stream *dx__stream_new(dx_loop *loop, const dx_allocator *a, const dx_stream_callbacks *cb,
                          const dx_stream_options *opts);
void dx__stream_delete(dx_stream *s);

/* Fill @cls for streams on @loop from the owner's @cb (NULL: none) and @opts (NULL:
 * defaults). */
void dx__stream_class_init(dx__stream_class *cls, dx_loop *loop, const dx_stream_callbacks *cb,
                           const dx_stream_options *opts, void (*release)(dx_stream *s));

/* The kept input (NULL while the union holds the connect state). */
static inline dx__kept *dx__stream_kept(const dx_stream *s) {
    return s->has_connect ? NULL : s->in;
}

/* The loop @s lives on. */
static inline dx_loop *dx__stream_loop(const dx_stream *s) {
    return s->cls->loop;
}

/*
 * Set up @s (zeroed by the caller, who owns its memory: cls->release gives it back)
 * on @loop for the accepted socket @fd; with @tls (a server context) it speaks TLS.
 * Its buffers come from @a (NULL: the loop's allocator).
 * It reads from now on: on_open follows (at once for plain TCP, before this returns;
 * after the handshake for TLS). Returns 0 or a negative code (epoll, memory), after
 * which @fd is closed and @s is not set up.
 */
int dx__stream_init_accepted(dx_stream *s, dx_loop *loop, int fd, dx_tls_ctx *tls,
                             const dx__stream_class *cls, void *user, const dx_allocator *a);

/* Set up @s as an accepted stream that is not started yet (dx_stream_start starts
 * it): the public listener's streams. Same returns. */
int dx__stream_init_idle(dx_stream *s, dx_loop *loop, int fd, dx_tls_ctx *tls,
                         const dx__stream_class *cls, void *user, const dx_allocator *a);

/*
 * Set up @s (zeroed, the caller's memory) and start connecting as @o says (copied).
 * on_open or on_close follows, never during this call. Returns 0 or a negative code
 * (dx_stream_connect's), with nothing to undo.
 */
int dx__stream_init_connect(dx_stream *s, dx_loop *loop, const dx_connect_options *o,
                            const dx__stream_class *cls, void *user);

/* Set up @s (zeroed, the caller's memory) with no socket yet: a client that will
 * connect later (dx__stream_connect); its timer works meanwhile (a reconnection's
 * delay), and abort ends it like any stream. Memory from @a (NULL: the loop's).
 * Returns 0 or DX_ENOMEM (nothing to undo). */
int dx__stream_init_unconnected(dx_stream *s, dx_loop *loop, const dx__stream_class *cls,
                                void *user, const dx_allocator *a);

/* Start connecting a stream set up by dx__stream_init_unconnected. Returns 0 or a
 * negative code (dx_stream_connect's; the stream is left unconnected). */
int dx__stream_connect(dx_stream *s, const dx_connect_options *o);

/* Write @n spans at once when nothing waits before them (plain TCP, open): the HTTP
 * head of a handshake, or a large frame's header and payload without copying them
 * into the queue. What the socket does not take is copied into the queue. Returns 0
 * or DX_ENOMEM (a write error shows in the next flush). */
int dx__stream_send_now(dx_stream *s, const dx_span *v, size_t n);

/* Call on_drain once the buffered amount falls to low_water (bytes appended to the
 * queue directly do not arm it). */
static inline void dx__stream_expect_drain(dx_stream *s) {
    s->drain_wanted = true;
}

/* While paused, report the peer's end at once (on_eof), without waiting for the
 * resume and the bytes before it (a server waiting for its application's decision
 * notices a client that left). */
static inline void dx__stream_watch_eof(dx_stream *s, bool on) {
    s->eof_watch = on;
}

/* Write what the socket takes now, not before the loop waits (a last frame before
 * an abort). */
void dx__stream_flush_now(dx_stream *s);

/* What every set-up shares (stream.c): the loop's stream state, the watcher and the
 * timer on @fd (-1: none yet), the queue's allocator @a (NULL: the loop's). Returns
 * 0 or DX_ENOMEM. */
int dx__stream_init_common(dx_stream *s, dx_loop *loop, int fd, const dx__stream_class *cls,
                           void *user, const dx_allocator *a);

/* The stream is up: OPEN, and on_open (stream.c). */
void dx__stream_become_open(dx_stream *s);

/* Put @s on the loop's flush list: after appending to its queue (dx__stream_out)
 * directly, as the WebSocket layer does. */
void dx__stream_want_flush(dx_stream *s);

/* The queue a layer above may append to directly (then dx__stream_want_flush). */
static inline dx_outq *dx__stream_out(dx_stream *s) {
    return &s->out;
}

/* Recompute the watcher's events (read unless paused; write while output waits). */
void dx__stream_update_io(dx_stream *s);

/* The stream is connected (stream_connect.c, at the end of connecting): start TLS, or
 * open. The connect state is released here (the bytes a proxy sent after its answer
 * become kept input). */
void dx__stream_connected(dx_stream *s);

/* End @s now with @err: no more callbacks but on_close. (dx_stream_abort for the
 * layer's own failures.) */
void dx__stream_fail(dx_stream *s, int err);

/* Keep @n bytes of @p in front of the next on_data (input read before its time:
 * what a proxy sent after its answer). Returns 0 or DX_ENOMEM. */
int dx__stream_keep(dx_stream *s, const uint8_t *p, size_t n);

/* ---- stream_connect.c ---- */

/* Start: resolve, then connect (called from dx__stream_init_connect). */
int dx__connect_start(dx_stream *s, const dx_connect_options *o);
/* The socket is ready while ST_CONNECTING. */
void dx__connect_on_io(dx_stream *s, unsigned events);
/* Stop a lookup in progress (the stream ended). */
void dx__connect_cancel(dx_stream *s);
/* Free the connect state (when the stream is freed, or connecting failed to start). */
void dx__connect_free(dx_stream *s);
/* Connected: free the connect state, moving the bytes a proxy sent after its answer
 * into kept input. Returns 0 or DX_ENOMEM. */
int dx__connect_done(dx_stream *s);
/* What TLS needs from the connect: the name to verify and the port. */
const char *dx__connect_server_name(const dx_stream *s);
uint16_t dx__connect_port(const dx_stream *s);
dx_tls_ctx *dx__connect_tls(const dx_stream *s);
/* The proxy's status when it refused (dx_stream_proxy_status). */
int dx__connect_proxy_status(const dx_stream *s);

/* ---- stream_tls.c ---- */

/* Read plaintext into @buf (@cap bytes): what the engine holds, else ciphertext from
 * the socket fed to it (driving the handshake first). Returns the bytes (> 0), 0 at
 * the peer's close_notify or EOF, DX_EINCOMPLETE, or a negative code. */
ssize_t dx__stream_tls_read(dx_stream *s, uint8_t *buf, size_t cap, uint8_t *cipher_buf);
/* Encrypt and write what the queue holds, a record's worth at a time, as far as the
 * socket takes. Returns 0 or a negative code. */
int dx__stream_tls_flush(dx_stream *s);
/* Write the ciphertext the engine holds. Returns 0 or -errno. */
int dx__stream_tls_send(dx_stream *s);
/* Ciphertext waiting in the engine. */
size_t dx__stream_tls_pending_out(const dx_stream *s);

#endif /* DX_RUNTIME_STREAM_INTERNAL_H */
