/*
 * duplex/stream.h - a non-blocking byte stream on a dx_loop: TCP (IPv4, IPv6) or a
 * Unix socket, optionally TLS. The WebSocket connection (conn.h) is built on it, and
 * so can anything else that moves bytes: a WebSocket-to-TCP gateway, a Redis client,
 * a plain TCP service (examples/tcp-echo.c is an echo server in about 40 lines).
 *
 *   dx_listener_create   listen; each accepted socket becomes a dx_stream
 *   dx_stream_connect    resolve (off the loop thread), try each address in turn,
 *                        through an HTTP CONNECT proxy if asked, then TLS
 *   on_open              the byte stream is up (TLS included)
 *   on_data              bytes arrived: consume what you can, the rest is kept
 *   dx_stream_write      queue bytes (copied) or a shared buffer (referenced);
 *                        every stream with output is written with one writev just
 *                        before the loop waits (cork), and waits for EPOLLOUT only
 *                        while bytes remain
 *   dx_stream_close      write what is queued, then close (optionally half-closing
 *                        and waiting for the peer's FIN first, so that the last
 *                        bytes are not lost to a reset)
 *   on_close             exactly once, when the socket is gone
 *
 * Reading: every stream of a loop reads into one 64 KiB buffer the stream layer keeps
 * for that loop; on_data gets a span of it (or of the stream's own buffer when it
 * kept bytes from before) and returns how many bytes it consumed; while it consumes
 * some and bytes are left, it is called again with the rest. When it consumes
 * nothing, the rest is copied into the stream's own buffer and offered again, in
 * front of the next bytes, on the next on_data: a parser that needs more input just
 * returns 0 (it must bound that itself: a HTTP head has a size limit). A stream
 * paused inside on_data (dx_stream_pause) keeps the rest the same way and reads
 * nothing more until dx_stream_resume.
 *
 * Backpressure: dx_stream_buffered is what was queued and not yet written (shared
 * bytes counted in full, as a browser's bufferedAmount would). A write that would
 * take it past max_buffered is refused (DX_ESEND_QUEUE) or, with DX_BP_CLOSE, also
 * aborts the stream. on_drain runs when it falls to low_water after it was above it
 * or after a refusal.
 *
 * Lifetime: a stream is freed by the library at the end of the loop iteration in
 * which on_close ran; do not use the pointer once on_close returned. Any callback
 * may close or abort any stream.
 *
 * Threads: everything here is loop-thread only (post to the loop from elsewhere).
 */
#ifndef DUPLEX_STREAM_H
#define DUPLEX_STREAM_H

#include "duplex/base.h"
#include "duplex/loop.h"
#include "duplex/outq.h"
#include "duplex/tls.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dx_stream dx_stream;
typedef struct dx_listener dx_listener;

/* What a write past the cap (max_buffered) does. */
typedef enum dx_backpressure {
    DX_BP_REFUSE = 0, /* the write fails with DX_ESEND_QUEUE; nothing is queued */
    DX_BP_CLOSE = 1,  /* the write fails and the stream is closed (a WebSocket
                         connection closes with 1008) */
} dx_backpressure;

/* Defaults for dx_stream_options (zero fields take these). */
#define DX_DEFAULT_MAX_BUFFERED ((size_t)4 << 20)
#define DX_DEFAULT_LOW_WATER ((size_t)64 << 10)
#define DX_DEFAULT_LINGER_MS 5000u
#define DX_DEFAULT_CONNECT_TIMEOUT_MS 10000u

/* A value for the *_ms timeouts: never. (0 means "the default".) */
#define DX_NEVER UINT32_MAX

/* How much a stream buffers, and how long it lingers. Zero fields: the defaults. */
typedef struct dx_stream_options {
    size_t max_buffered;          /* cap on queued, unwritten bytes; default 4 MiB */
    size_t low_water;             /* on_drain at or below this; default 64 KiB */
    dx_backpressure backpressure; /* a write past the cap: refuse (default) or close */
    uint32_t linger_ms;           /* how long a closing stream waits for the peer to
                                     finish (dx_stream_close); default 5 s */
    size_t sndbuf;                /* the kernel's send buffer (SO_SNDBUF); 0: the
                                     system's, autotuned. Bytes there are a copy per
                                     stream; bytes in the queue may be shared */
} dx_stream_options;

/*
 * The owner's callbacks. Every one is optional (a NULL entry's default is given).
 * @user is the stream's user pointer (dx_stream_set_user).
 */
typedef struct dx_stream_callbacks {
    /* The stream is up: connected (through the proxy, TLS handshake done), or, for an
       accepted stream, at once (TLS: once the handshake is done). */
    void (*on_open)(dx_stream *s, void *user);
    /* Bytes arrived. @data may be modified in place (a WebSocket unmasks there); it
       lives until the call returns. Return how many bytes were consumed (at most
       @len): after some, the rest is offered at once; after none, it waits for more
       bytes (or the resume). NULL: every byte is dropped. */
    size_t (*on_data)(dx_stream *s, uint8_t *data, size_t len, void *user);
    /* The peer finished sending (FIN, or TLS close_notify); writing may go on (a
       half-closed peer may still read). NULL: close the stream (DX_STREAM_CLOSE_NOW). */
    void (*on_eof)(dx_stream *s, void *user);
    /* The buffered amount fell to low_water or below after it was above it, or
       after a write was refused. */
    void (*on_drain)(dx_stream *s, void *user);
    /* The timer of dx_stream_set_timeout fired. NULL: abort with DX_ETIMEOUT. */
    void (*on_timeout)(dx_stream *s, void *user);
    /* The stream is finished (the socket is closed); exactly once. @err is 0 after a
       close the owner asked for and the peer's orderly end, or why it failed: -errno
       (-ECONNRESET, -EPIPE, -ECONNREFUSED...), DX_ERESOLVE, DX_ECONNECT_TIMEOUT,
       DX_EPROXY (dx_stream_proxy_status says what the proxy answered), DX_ETLS_*,
       DX_ESEND_QUEUE (a write past the cap under DX_BP_CLOSE), DX_ETIMEOUT, or the
       code given to dx_stream_abort. */
    void (*on_close)(dx_stream *s, int err, void *user);
} dx_stream_callbacks;

/* ---- connecting -------------------------------------------------------------- */

typedef struct dx_connect_options {
    const char *host;        /* a name, an IPv4 literal or an IPv6 literal (without
                                brackets); names are resolved on a thread of their own */
    uint16_t port;           /* required with host */
    const char *unix_path;   /* connect to this Unix socket instead of host:port */
    const char *proxy;       /* HTTP CONNECT proxy "http://[user:pass@]host[:port]"
                                (default port 1080; user:pass goes as Basic); NULL: the
                                environment's (https_proxy with tls, else http_proxy,
                                then all_proxy, lower case first; never HTTP_PROXY),
                                unless no_proxy covers host; "": none */
    bool no_env_proxy;       /* ignore the proxy environment variables */
    dx_tls_ctx *tls;         /* speak TLS through this client context (NULL: plain) */
    const char *server_name; /* the name TLS verifies and sends as SNI; NULL: host */
    uint32_t timeout_ms;     /* resolution, connect, proxy and TLS handshake together;
                                default 10 s; DX_NEVER: no limit */
    dx_stream_options stream;
    const dx_allocator *allocator; /* the stream's memory; NULL: malloc */
} dx_connect_options;

/*
 * Start connecting. @opts (and its strings) and @cb are copied; @user is the
 * stream's user pointer. On success *@out is the stream, connecting: on_open or
 * on_close follows, never during this call. Bytes may be written at once; they go
 * out once it is open.
 *
 * Returns 0, or (nothing created, no callback to come):
 *   DX_EINVAL      @out, @loop, @opts or @cb NULL; neither host nor unix_path; an
 *                  empty host or port 0; a Unix path too long
 *   DX_EPROXY_URL  a malformed proxy URL (the option or the environment's)
 *   DX_ENOMEM
 */
DX_API int dx_stream_connect(dx_stream **out, dx_loop *loop, const dx_connect_options *opts,
                             const dx_stream_callbacks *cb, void *user);

/* ---- listening --------------------------------------------------------------- */

typedef struct dx_listen_options {
    const char *host;              /* address to bind: a literal or a name (resolved here,
                                      once); NULL: every interface ("::" dual-stack, or
                                      0.0.0.0 where IPv6 is off) */
    uint16_t port;                 /* 0: any free port (dx_listener_port) */
    const char *unix_path;         /* a Unix socket instead (an existing socket file is
                                      replaced; removed when the listener is destroyed) */
    bool reuse_port;               /* SO_REUSEPORT: one listener per loop on one port */
    int backlog;                   /* 0: 511 */
    dx_tls_ctx *tls;               /* a server context: accepted streams speak TLS */
    dx_stream_options stream;      /* for every accepted stream */
    const dx_allocator *allocator; /* the listener's and its streams' memory */
} dx_listen_options;

/*
 * Called for each accepted stream. Set its callbacks with dx_stream_start (now, or
 * later in the same iteration), or close it. @user is the listener's.
 */
typedef void (*dx_accept_cb)(dx_listener *l, dx_stream *s, void *user);

/*
 * Listen on @loop. @opts is copied. Sockets are accepted in batches; when the process
 * runs out of descriptors, accepting pauses briefly instead of spinning.
 *
 * Returns 0 with *@out set, or:
 *   DX_EINVAL    @opts, @on_accept NULL, a bad host literal, a Unix path too long
 *   DX_ERESOLVE  host is a name that did not resolve
 *   DX_ENOMEM
 *   -errno       socket, bind (-EADDRINUSE...), listen, epoll
 */
DX_API int dx_listener_create(dx_listener **out, dx_loop *loop, const dx_listen_options *opts,
                              dx_accept_cb on_accept, void *user);

/* The bound port (0 for a Unix socket). */
DX_API uint16_t dx_listener_port(const dx_listener *l);

/* Stop accepting (new connections wait in the backlog) / accept again. */
DX_API void dx_listener_pause(dx_listener *l);
DX_API void dx_listener_resume(dx_listener *l);

/* Close the listening socket and free the listener (streams it accepted live on).
 * NULL is a no-op. Loop thread; may be called from any callback. */
DX_API void dx_listener_destroy(dx_listener *l);

/*
 * Give an accepted stream its callbacks and user pointer, and start it: it reads,
 * and on_open follows (for TLS, once the handshake is done). Returns 0, DX_ESTATE
 * (already started) or a negative code (epoll; the stream is then closed, and
 * on_close follows).
 */
DX_API int dx_stream_start(dx_stream *s, const dx_stream_callbacks *cb, void *user);

/* ---- using a stream ---------------------------------------------------------- */

/*
 * Queue a copy of @data. Returns 0, or:
 *   DX_ECLOSED      the stream is closing or closed
 *   DX_ESEND_QUEUE  the buffered amount would pass max_buffered (under DX_BP_CLOSE
 *                   the stream is now being aborted)
 *   DX_EINVAL       NULL data with a length
 *   DX_ENOMEM
 */
DX_API int dx_stream_write(dx_stream *s, dx_span data);

/* Queue [@off, @off + @len) of @buf by reference (outq.h): nothing is copied; the
 * stream holds a reference until the bytes are written. Returns what dx_stream_write
 * returns, and DX_EINVAL for a range outside @buf. */
DX_API int dx_stream_write_shared(dx_stream *s, dx_shared *buf, size_t off, size_t len);

/* Bytes queued and not yet written (TLS: the plaintext not yet encrypted, and the
 * encrypted bytes not yet written). */
DX_API size_t dx_stream_buffered(const dx_stream *s);

/* Stop reading (the kernel's buffers fill, and TCP slows the peer) / read again;
 * bytes kept are offered first, in the next iteration. Idempotent. */
DX_API void dx_stream_pause(dx_stream *s);
DX_API void dx_stream_resume(dx_stream *s);

/* Half-close: send FIN once the queued bytes are written. Reading goes on; writing
 * more fails with DX_ECLOSED. */
DX_API void dx_stream_shutdown(dx_stream *s);

/* How dx_stream_close ends the stream, once every queued byte is written. */
typedef enum dx_stream_close_mode {
    DX_STREAM_CLOSE_NOW = 0, /* close the socket at once (fine when the peer has
                                nothing more to send: unread input turns a close
                                into a reset, which may destroy bytes in flight) */
    DX_STREAM_CLOSE_LINGER,  /* half-close, then read and drop until the peer's FIN
                                (at most linger_ms), then close */
    DX_STREAM_CLOSE_AWAIT,   /* do not half-close: wait for the peer to close first
                                (at most linger_ms), then close (a WebSocket client
                                after a clean close, RFC 6455 §7.1.1) */
} dx_stream_close_mode;

/*
 * Close gracefully: no more on_data, on_eof, on_drain or on_timeout; the queued bytes
 * are written, then the stream ends as @how says, and on_close(s, 0) follows (or the
 * error that cut it short). Closing a closing stream does nothing.
 */
DX_API void dx_stream_close(dx_stream *s, dx_stream_close_mode how);

/* Close at once, dropping what is queued; on_close(s, @err) runs before this
 * returns (unless it already ran). */
DX_API void dx_stream_abort(dx_stream *s, int err);

/* Give back the memory kept for reuse between writes (the queue's buffer grows to
 * the largest burst and stays, so steady traffic allocates nothing): for a stream
 * that goes quiet after a burst. Nothing is given back while bytes are queued. */
DX_API void dx_stream_trim(dx_stream *s);

/* (Re)arm the stream's timer: on_timeout after @ms (0: at the next iteration;
 * DX_NEVER: stop it). While a stream connects, the same timer bounds the connect
 * (timeout_ms): setting it replaces that bound. */
DX_API void dx_stream_set_timeout(dx_stream *s, uint32_t ms);

/* ---- what a stream knows ------------------------------------------------------ */

/* True from on_open until the stream closes or fails. */
DX_API bool dx_stream_is_open(const dx_stream *s);

/* The peer's / our address: "IP:PORT", "[IPv6]:PORT" or "unix". Returns 0,
 * DX_ENOSPACE, DX_ECLOSED (no socket) or -errno. */
DX_API int dx_stream_peer_addr(const dx_stream *s, char *out, size_t cap);
DX_API int dx_stream_local_addr(const dx_stream *s, char *out, size_t cap);

/* After DX_EPROXY: the proxy's HTTP status (407: credentials; 403, 502...). */
DX_API int dx_stream_proxy_status(const dx_stream *s);

/* TLS: the fatal alert the peer sent ("unknown CA", "certificate required", ...), or
 * NULL. Static storage. */
DX_API const char *dx_stream_tls_alert(const dx_stream *s);

DX_API void *dx_stream_user(const dx_stream *s);
DX_API void dx_stream_set_user(dx_stream *s, void *user);
DX_API dx_loop *dx_stream_loop(const dx_stream *s);

#ifdef __cplusplus
}
#endif
#endif /* DUPLEX_STREAM_H */
