/*
 * The socket system calls, all of them in one place (sock.c): the stream layer and
 * its listener are their only callers, and tests/check_layering.sh keeps it so.
 * Every function returns 0 or a count, or -errno; none blocks. Not installed.
 */
#ifndef DX_RUNTIME_SOCK_H
#define DX_RUNTIME_SOCK_H

#include "duplex/base.h"

#include <netdb.h>
#include <sys/types.h>

/* A listening TCP socket bound to @host (a literal or a name: resolved here, which
 * blocks; NULL: "::" dual-stack, else 0.0.0.0) and @port. *@bound is the port.
 * Returns the fd, or DX_EINVAL (bad literal), DX_ERESOLVE, -errno. */
int dx__sock_listen_tcp(const char *host, uint16_t port, bool reuse_port, int backlog,
                        uint16_t *bound);

/* A listening Unix socket at @path (a stale socket file there is replaced). Returns
 * the fd, DX_EINVAL (an empty path or one too long) or -errno. */
int dx__sock_listen_unix(const char *path, int backlog);

/* Remove the socket file of a Unix listener. */
void dx__sock_unlink_unix(const char *path);

/* Accept one connection (non-blocking, close-on-exec). Returns the fd, or -errno:
 * -EAGAIN when none waits, -EMFILE/-ENFILE/-ENOBUFS/-ENOMEM when out of resources. */
int dx__sock_accept(int lfd);

/* Start a non-blocking connect to @ai (or, when @unix_path is set, to that Unix
 * socket). Returns the fd (the connect is in progress or done: wait for
 * writability, then dx__sock_error), or -errno. */
int dx__sock_connect(const struct addrinfo *ai, const char *unix_path);

/* The pending error of a socket (SO_ERROR) as -errno, or 0. */
int dx__sock_error(int fd);

/* SO_SNDBUF (0: leave the system's). */
void dx__sock_sndbuf(int fd, size_t bytes);

/* TCP_NODELAY (a no-op on a Unix socket). */
void dx__sock_nodelay(int fd);

/* recv into @buf. Returns the bytes read (> 0), 0 at EOF, DX_EINCOMPLETE when
 * nothing is there, or -errno. */
ssize_t dx__sock_recv(int fd, uint8_t *buf, size_t cap);

/* Is the next byte there (MSG_PEEK)? 1 yes, 0 EOF, DX_EINCOMPLETE, or -errno. */
int dx__sock_peek(int fd);

/* Write what the socket takes of @n spans, with one writev (sendmsg: no SIGPIPE).
 * Returns the bytes written (0 when the socket is full), or -errno. */
ssize_t dx__sock_writev(int fd, const dx_span *v, size_t n);

/* Close a socket that no watcher holds. */
void dx__sock_close(int fd);

/* shutdown(SHUT_WR). */
void dx__sock_shutdown_write(int fd);

/* The peer's or our address, formatted "IP:PORT", "[IPv6]:PORT" or "unix". Returns
 * 0, DX_ENOSPACE or -errno. */
int dx__sock_addr(int fd, bool peer, char *out, size_t cap);

/* Resolve @host:@port for a TCP connect (getaddrinfo; blocks unless
 * @literal_only). Returns 0 with *@res set (freeaddrinfo it), DX_ERESOLVE (no such
 * name, or not a literal when @literal_only) or DX_ENOMEM. */
int dx__sock_resolve(const char *host, uint16_t port, bool literal_only, struct addrinfo **res);

#endif /* DX_RUNTIME_SOCK_H */
