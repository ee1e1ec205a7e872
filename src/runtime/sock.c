/*
 * Every socket system call of duplex (sock.h). Thin: each wrapper turns errno into a
 * negative return and sets the flags the library always wants (non-blocking,
 * close-on-exec, no SIGPIPE).
 */
#include "runtime/sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_IOV 64 /* spans per writev; more wait for the next one */

static int bind_listen(const struct sockaddr *sa, socklen_t len, bool reuse_port, int backlog,
                       uint16_t *bound) {
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
        goto fail;
    if (sa->sa_family == AF_INET6) /* "::" serves IPv4 too */
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    /* writes are corked by the loop already; accepted sockets inherit this on Linux */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (bind(fd, sa, len) != 0 || listen(fd, backlog) != 0)
        goto fail;
    struct sockaddr_storage got;
    socklen_t got_len = sizeof got;
    if (getsockname(fd, (struct sockaddr *)&got, &got_len) != 0)
        goto fail;
    *bound = ntohs(got.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&got)->sin6_port
                                             : ((struct sockaddr_in *)&got)->sin_port);
    return fd;
fail:;
    int rc = -errno;
    close(fd);
    return rc;
}

int dx__sock_listen_tcp(const char *host, uint16_t port, bool reuse_port, int backlog,
                        uint16_t *bound) {
    struct sockaddr_in in4 = {.sin_family = AF_INET, .sin_port = htons(port)};
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
    if (!host) {
        in6.sin6_addr = in6addr_any;
        int rc = bind_listen((struct sockaddr *)&in6, sizeof in6, reuse_port, backlog, bound);
        if (rc != -EAFNOSUPPORT)
            return rc;
        in4.sin_addr.s_addr = htonl(INADDR_ANY); /* a host without IPv6 */
        return bind_listen((struct sockaddr *)&in4, sizeof in4, reuse_port, backlog, bound);
    }
    if (inet_pton(AF_INET, host, &in4.sin_addr) == 1)
        return bind_listen((struct sockaddr *)&in4, sizeof in4, reuse_port, backlog, bound);
    if (inet_pton(AF_INET6, host, &in6.sin6_addr) == 1)
        return bind_listen((struct sockaddr *)&in6, sizeof in6, reuse_port, backlog, bound);
    if (!*host || strchr(host, ':'))
        return DX_EINVAL; /* an empty host, or a malformed IPv6 literal */
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE},
                    *res;
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)port);
    if (getaddrinfo(host, service, &hints, &res) != 0)
        return DX_ERESOLVE;
    int rc = DX_ERESOLVE;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        rc = bind_listen(ai->ai_addr, ai->ai_addrlen, reuse_port, backlog, bound);
        if (rc >= 0)
            break;
    }
    freeaddrinfo(res);
    return rc;
}

static int unix_address(const char *path, struct sockaddr_un *sun) {
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof sun->sun_path)
        return DX_EINVAL;
    memset(sun, 0, sizeof *sun);
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, path, n + 1);
    return 0;
}

int dx__sock_listen_unix(const char *path, int backlog) {
    struct sockaddr_un sun;
    if (unix_address(path, &sun) != 0)
        return DX_EINVAL;
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(path); /* a stale socket from an earlier run */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&sun, sizeof sun) != 0 || listen(fd, backlog) != 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

void dx__sock_unlink_unix(const char *path) {
    unlink(path);
}

int dx__sock_accept(int lfd) {
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0)
            return fd;
        if (errno != EINTR && errno != ECONNABORTED)
            return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}

int dx__sock_connect(const struct addrinfo *ai, const char *unix_path) {
    struct sockaddr_un sun;
    const struct sockaddr *sa = ai ? ai->ai_addr : (const struct sockaddr *)&sun;
    socklen_t len = ai ? ai->ai_addrlen : (socklen_t)sizeof sun;
    if (!ai && unix_address(unix_path, &sun) != 0)
        return DX_EINVAL;
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, sa, len) != 0 && errno != EINPROGRESS && errno != EAGAIN) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

int dx__sock_error(int fd) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        return -errno;
    return -err;
}

void dx__sock_sndbuf(int fd, size_t bytes) {
    if (!bytes)
        return;
    int n = bytes > INT_MAX / 2 ? INT_MAX / 2 : (int)bytes;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &n, sizeof n);
}

void dx__sock_nodelay(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

ssize_t dx__sock_recv(int fd, uint8_t *buf, size_t cap) {
    for (;;) {
        ssize_t n = recv(fd, buf, cap, 0);
        if (n >= 0)
            return n;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return DX_EINCOMPLETE;
        if (errno != EINTR)
            return -errno;
    }
}

int dx__sock_peek(int fd) {
    uint8_t b;
    for (;;) {
        ssize_t n = recv(fd, &b, 1, MSG_PEEK);
        if (n >= 0)
            return (int)n;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return DX_EINCOMPLETE;
        if (errno != EINTR)
            return -errno;
    }
}

ssize_t dx__sock_writev(int fd, const dx_span *v, size_t n) {
    struct iovec iov[MAX_IOV];
    if (n > MAX_IOV)
        n = MAX_IOV;
    for (size_t i = 0; i < n; i++)
        iov[i] = (struct iovec){(void *)v[i].ptr, v[i].len}; /* writev only reads */
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = n};
    for (;;) {
        /* one span (the usual queue: no shared segment) takes send(), which skips
         * the kernel's copy and check of the iovec array: 5% of a pipelined echo */
        ssize_t w =
            n == 1 ? send(fd, v[0].ptr, v[0].len, MSG_NOSIGNAL) : sendmsg(fd, &mh, MSG_NOSIGNAL);
        if (w >= 0)
            return w;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        if (errno != EINTR)
            return -errno;
    }
}

void dx__sock_close(int fd) {
    if (fd >= 0)
        close(fd);
}

void dx__sock_shutdown_write(int fd) {
    shutdown(fd, SHUT_WR);
}

int dx__sock_addr(int fd, bool peer, char *out, size_t cap) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if ((peer ? getpeername(fd, (struct sockaddr *)&ss, &len)
              : getsockname(fd, (struct sockaddr *)&ss, &len)) != 0)
        return -errno;
    char host[INET6_ADDRSTRLEN] = "";
    unsigned port = 0;
    int n;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        port = ntohs(a->sin_port);
        n = snprintf(out, cap, "%s:%u", host, port);
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        port = ntohs(a->sin6_port);
        n = snprintf(out, cap, "[%s]:%u", host, port);
    } else {
        n = snprintf(out, cap, "unix");
    }
    return n < 0 || (size_t)n >= cap ? DX_ENOSPACE : 0;
}

int dx__sock_resolve(const char *host, uint16_t port, bool literal_only, struct addrinfo **res) {
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags =
                                 AI_NUMERICSERV | (literal_only ? AI_NUMERICHOST : AI_ADDRCONFIG)};
    int rc = getaddrinfo(host, service, &hints, res);
    if (rc == 0)
        return 0;
    *res = NULL;
    return rc == EAI_MEMORY ? DX_ENOMEM : DX_ERESOLVE;
}
