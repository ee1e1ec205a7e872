/*
 * tcp-echo: the raw TCP echo server that WebSocket echo servers are compared
 * against (the user-space limit: one read and one write per batch of bytes).
 *
 *   tcp-echo [--port N]     (0, the default: the kernel picks a port)
 *
 * One thread, one level-triggered epoll loop, non-blocking sockets. Every read
 * lands in one shared 64 KiB buffer and is written straight back; only when a
 * write is short does a connection keep the rest in its own pending buffer, and
 * it then stops reading until that buffer is written (backpressure).
 * Prints "listening on 127.0.0.1:PORT" once listening. Stop it with a signal.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_BUF_SIZE (64u << 10)
#define MAX_EVENTS 256

/* One accepted connection. */
typedef struct conn {
    int fd;           /* the socket */
    uint8_t *pending; /* bytes read but not yet written back; NULL when none */
    size_t len;       /* bytes in pending */
    size_t cap;       /* size of pending */
} conn;

static int epfd;
static uint8_t buf[READ_BUF_SIZE];

static void die(const char *what) {
    fprintf(stderr, "tcp-echo: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void conn_free(conn *c) {
    close(c->fd); /* also leaves the epoll set */
    free(c->pending);
    free(c);
}

/* Watch @c for reading (nothing pending) or for writing (something pending). */
static void conn_watch(conn *c, int op) {
    struct epoll_event ev = {.events = c->len ? EPOLLOUT : EPOLLIN, .data.ptr = c};
    if (epoll_ctl(epfd, op, c->fd, &ev) != 0)
        die("epoll_ctl");
}

/* Write @p[0..n) to @c; keep what the socket does not take. Returns -1 when the
 * connection is gone. */
static int conn_write(conn *c, const uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN)
            break;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    if (n == 0)
        return 0;
    if (c->cap < n) {
        uint8_t *q = realloc(c->pending, n);
        if (!q)
            return -1;
        c->pending = q;
        c->cap = n;
    }
    memmove(c->pending, p, n); /* p may point into pending itself */
    c->len = n;
    return 0;
}

static void on_readable(conn *c) {
    ssize_t n = read(c->fd, buf, sizeof buf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0 || conn_write(c, buf, (size_t)n) != 0) {
        conn_free(c);
        return;
    }
    if (c->len)
        conn_watch(c, EPOLL_CTL_MOD); /* short write: wait for room, stop reading */
}

static void on_writable(conn *c) {
    size_t n = c->len;
    c->len = 0;
    if (conn_write(c, c->pending, n) != 0) {
        conn_free(c);
        return;
    }
    if (c->len == 0) {
        free(c->pending); /* idle connections hold no buffer */
        c->pending = NULL;
        c->cap = 0;
        conn_watch(c, EPOLL_CTL_MOD);
    }
}

static void on_accept(int ls) {
    for (;;) {
        int fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
                return;
            die("accept4"); /* EMFILE and the like: say so rather than spin */
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        conn_watch(c, EPOLL_CTL_ADD);
    }
}

int main(int argc, char **argv) {
    long port = 0;
    if (argc == 3 && strcmp(argv[1], "--port") == 0) {
        char *end;
        port = strtol(argv[2], &end, 10);
        if (*end != '\0' || end == argv[2] || port < 0 || port > 65535)
            argc = 0;
    }
    if (argc != 1 && argc != 3) {
        fprintf(stderr, "usage: tcp-echo [--port N]   (0: any free port)\n");
        return 2;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) { /* one descriptor per connection */
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);

    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    int one = 1;
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (ls < 0)
        die("socket");
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(ls, (struct sockaddr *)&a, sizeof a) != 0 || listen(ls, SOMAXCONN) != 0 ||
        getsockname(ls, (struct sockaddr *)&a, &alen) != 0)
        die("listen");
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        die("epoll_create1");
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL}; /* NULL: the listener */
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, ls, &lev) != 0)
        die("epoll_ctl");
    printf("listening on 127.0.0.1:%d\n", ntohs(a.sin_port));
    fflush(stdout);

    struct epoll_event evs[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(epfd, evs, MAX_EVENTS, -1);
        if (n < 0 && errno != EINTR)
            die("epoll_wait");
        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            if (!c)
                on_accept(ls);
            else if (c->len)
                on_writable(c); /* EPOLLOUT, or EPOLLERR/HUP: the write will tell */
            else
                on_readable(c); /* EPOLLIN, or EPOLLERR/HUP: the read will tell */
        }
    }
}
