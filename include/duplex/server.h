/*
 * duplex/server.h - a WebSocket server on a dx_loop.
 *
 *   dx_server_create  listen (TCP on IPv4/IPv6, or a Unix socket)
 *   accept            in batches; each socket gets a dx_conn in CONNECTING
 *   request head      read (up to max_head, within the handshake timeout), parsed
 *   not an upgrade    -> on_http (default: 426 Upgrade Required)
 *   bad upgrade       -> 400 / 405 / 426 / 431 (dx_handshake_write_refusal)
 *   upgrade           -> on_upgrade: dx_conn_accept or dx_conn_respond, now or later
 *   accepted          -> 101, OPEN, on_open, messages... (conn.h)
 *
 * One server per loop; for several cores, run one loop per thread, each with its own
 * server on the same port and reuse_port set (the kernel spreads connections).
 *
 * Threads: loop-thread only.
 */
#ifndef DUPLEX_SERVER_H
#define DUPLEX_SERVER_H

#include "duplex/conn.h"
#include "duplex/deflate.h"
#include "duplex/handshake.h"
#include "duplex/tls.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dx_server dx_server;

/* What the automatic accept (no on_upgrade) does when a client offers subprotocols
 * and none of them is in dx_server_options.protocols. A browser fails a 101 that
 * names no subprotocol after it offered some, so answering without one is not an
 * option here (an on_upgrade hook may still do it). */
typedef enum dx_protocol_policy {
    DX_PROTOCOL_REFUSE = 0,    /* 400 with a body saying no subprotocol is in common */
    DX_PROTOCOL_FIRST_OFFERED, /* answer with the client's first offer (as Node's ws
                                  does): for servers indifferent to it, an echo, a relay */
} dx_protocol_policy;

typedef struct dx_server_options {
    const char *host;       /* address to bind: an IPv4 or IPv6 literal, or a name;
                               NULL: every interface ("::" dual-stack, or 0.0.0.0
                               where IPv6 is off) */
    uint16_t port;          /* 0: any free port (see dx_server_port) */
    const char *unix_path;  /* listen on this Unix socket instead (an existing socket
                               file is replaced) */
    bool reuse_port;        /* SO_REUSEPORT: several servers (one per loop) on one port */
    int backlog;            /* listen backlog; 0: 511 */
    size_t max_connections; /* accepted sockets open at once; further ones wait in the
                               backlog; 0: no limit but the fd limit */
    /* Every connection's limits, timeouts, send policy and compression. With
       conn.compression.deflate set, the first acceptable permessage-deflate offer of
       a client is accepted with it, unless dx_conn_accept sets extensions of its own. */
    dx_conn_options conn;
    /* wss: TLS with these certificates (loaded once, at create); NULL: plain ws. */
    const dx_tls_server_config *tls;

    /* The subprotocols this server speaks (copied), for the automatic accept (no
       on_upgrade): the client's first offer found here is chosen
       (dx_handshake_select_protocol); a client that offers none gets none; an offer
       with no match is handled by protocol_policy. */
    const char *const *protocols;
    size_t num_protocols;
    dx_protocol_policy protocol_policy;

    const dx_allocator *allocator; /* the server's and its connections' memory (OpenSSL's
                                      aside); NULL: the loop's. Must outlive the server */
} dx_server_options;

/*
 * Create a server listening on @loop. @opts is copied (the strings too), and so is
 * @cb: every connection reports through it (on_upgrade and on_http included), each
 * starting with @user as its user pointer; @user also goes to on_upgrade and on_http.
 *
 * Returns 0 and stores the server in *@out, or:
 *   DX_EINVAL    @out, @loop or @opts NULL, a bad host literal, a Unix path too long,
 *                a NULL protocols list (or entry) with num_protocols, deflate window
 *                bits or levels out of range
 *   DX_ERESOLVE  @opts->host is a name that did not resolve (resolution blocks here,
 *                once, at start-up)
 *   DX_ETLS_CONFIG  a certificate or key could not be loaded (or they do not match)
 *   DX_ENOMEM
 *   -errno       socket, bind (-EADDRINUSE...), listen, epoll
 */
DX_API int dx_server_create(dx_server **out, dx_loop *loop, const dx_server_options *opts,
                            const dx_conn_callbacks *cb, void *user);

/* The port the server listens on (0 for a Unix socket). */
DX_API uint16_t dx_server_port(const dx_server *s);

/* Connections currently open or opening. */
DX_API size_t dx_server_connections(const dx_server *s);

/*
 * Send the prepared message @m (conn.h) to every OPEN connection of @s: one frame,
 * compressed once per window in use, queued by reference (conn.h). A connection that
 * refuses it (its send queue is full, it is closing) is skipped, its backpressure
 * policy applying as for dx_conn_send. Loop thread; not from a callback that runs
 * inside dx_server_destroy.
 *
 * Returns 0 with *@sent (may be NULL) the number of connections the message was
 * queued on, or:
 *   DX_EINVAL  @s or @m NULL
 *   DX_ENOMEM  a compressed form could not be built: the connections that needed it
 *              got nothing (*@sent counts the others)
 */
DX_API int dx_server_broadcast(dx_server *s, dx_prepared *m, size_t *sent);

/*
 * Graceful shutdown: stop accepting (the listening socket is closed at once), drop
 * connections still in their handshake, close every open connection with 1001
 * "going away", and when all have finished -- or after @timeout_ms, when the rest
 * are aborted -- call @done(@s, @user) once. @done may destroy the server. Calling it
 * again does nothing and returns DX_ESTATE.
 */
DX_API int dx_server_shutdown(dx_server *s, uint32_t timeout_ms,
                              void (*done)(dx_server *s, void *user), void *user);

/*
 * Destroy the server now: abort every connection (each gets on_close with 1006),
 * close the listening socket, free everything. Loop thread; may be called from any
 * callback (the memory is freed at the end of the iteration).
 */
DX_API void dx_server_destroy(dx_server *s);

/* ---- the upgrade decision ------------------------------------------------------ */

/*
 * Accept the pending upgrade on @c: write the 101 response (with @opts' subprotocol,
 * which must be one the client offered, extensions and extra headers; NULL: none;
 * without extensions of its own, the server's permessage-deflate answer if one was
 * agreed),
 * set @c's user pointer to @user, and open: on_open runs before this returns.
 * Returns 0, DX_ESTATE (no upgrade is pending on @c) or DX_EINVAL (@opts rejected by
 * dx_handshake_write_accept; the upgrade stays pending).
 */
DX_API int dx_conn_accept(dx_conn *c, const dx_accept_options *opts, void *user);

/*
 * Answer the pending upgrade (refusing it) or plain HTTP request with @status
 * (200-599), extra @headers and @body, then close the connection. "Content-Length"
 * and "Connection: close" are added. No on_close follows. Returns 0, DX_ESTATE
 * (nothing pending) or DX_EINVAL (a bad status or header).
 */
DX_API int dx_conn_respond(dx_conn *c, int status, const dx_http_header *headers,
                           size_t num_headers, dx_span body);

/* The server @c was accepted by; NULL for a client connection. */
DX_API dx_server *dx_conn_server(const dx_conn *c);

#ifdef __cplusplus
}
#endif
#endif /* DUPLEX_SERVER_H */
