/*
 * Helpers shared by the runtime tests (test_server.c, test_conn.c, test_client.c,
 * test_robust.c): a loop driven until a condition holds or a deadline passes, an
 * event recorder for dx_conn callbacks, raw TCP peers on 127.0.0.1 (a raw client
 * that speaks just enough WebSocket, a raw server that answers the client's
 * handshake as a test wants) and a frame writer/reader for them.
 *
 * Every wait is bounded: RUN_UNTIL runs loop iterations until its condition holds
 * or the deadline passes, and the test then CHECKs the condition. Nothing sleeps
 * and hopes.
 *
 * Everything is static inline so each test file takes what it uses.
 */
#ifndef DX_TEST_NET_UTIL_H
#define DX_TEST_NET_UTIL_H

#include "test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Clients here connect to 127.0.0.1 with proxy NULL ("from the environment"): a
 * proxy set in the developer's environment must not reroute them. */
__attribute__((constructor)) static void nu_clear_proxy_env(void) {
    static const char *const names[] = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
                                        "all_proxy",  "ALL_PROXY",  "no_proxy",    "NO_PROXY"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        unsetenv(names[i]);
}

/* ---- time and the loop ------------------------------------------------------------- */

static inline uint64_t nu_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static inline dx_loop *nu_loop(void) {
    dx_loop *l = NULL;
    if (dx_loop_create(&l, NULL) != 0)
        abort();
    return l;
}

/* Run iterations of @l until @cond holds or @ms milliseconds have passed. */
#define RUN_UNTIL(l, cond, ms)                                                                     \
    do {                                                                                           \
        uint64_t end_ = nu_now_ms() + (uint64_t)(ms);                                              \
        while (!(cond) && nu_now_ms() < end_)                                                      \
            dx_loop_run_once((l), 5);                                                              \
    } while (0)

/* RUN_UNTIL, then record a failure naming the condition if it still does not hold. */
#define CHECK_RUN_UNTIL(l, cond, ms)                                                               \
    do {                                                                                           \
        RUN_UNTIL(l, cond, ms);                                                                    \
        if (!(cond))                                                                               \
            dx_test_fail(__FILE__, __LINE__, "within " #ms " ms: " #cond);                         \
    } while (0)

/* Run @l for @ms milliseconds whatever happens (to show that something does NOT
 * happen, or to let timers pass). */
static inline void nu_run_for(dx_loop *l, unsigned ms) {
    uint64_t end = nu_now_ms() + ms;
    while (nu_now_ms() < end)
        dx_loop_run_once(l, 5);
}

/* Run a few iterations so that deferred frees happen, then destroy @l. */
static inline void nu_loop_finish(dx_loop *l) {
    for (int i = 0; i < 4; i++)
        dx_loop_run_once(l, 0);
    dx_loop_destroy(l);
}

/* ---- recording a connection's callbacks ----------------------------------------------- */

#define NU_MSG_CAP 65536

typedef struct nu_rec {
    int opens, messages, closes, errors, pings, pongs, drains, fragments;
    int bad_order;        /* on_error twice in a row, or with another code than on_close's */
    int last_err;         /* from on_error */
    int http_status;      /* dx_conn_http_status in on_error */
    bool error_just_seen; /* on_error ran; on_close should come next */
    uint16_t close_code;
    bool clean, remote;
    int close_error;
    char close_reason[128];
    dx_ready_state state_in_close;
    dx_ready_state state_in_open;
    dx_opcode last_op;
    uint8_t msg[NU_MSG_CAP]; /* the last message (truncated to NU_MSG_CAP) */
    size_t msg_len;
    size_t total_bytes; /* bytes of every message */
    char seq[1024];     /* the text of every message, each followed by '|' */
    size_t seq_len;
    int64_t last_rtt;      /* from on_pong */
    size_t last_pong_len;  /* from on_pong */
    dx_conn *conn;         /* from on_open; NULL again once on_close ran */
    bool echo;             /* send every message back */
    bool pause_on_message; /* on_message pauses its connection */
    int close_in_open;     /* on_open closes with this code (0: no) */
} nu_rec;

static inline void nu_on_open(dx_conn *c, void *user) {
    nu_rec *r = user;
    r->opens++;
    r->conn = c;
    r->state_in_open = dx_conn_state(c);
    if (r->close_in_open)
        dx_conn_close(c, (uint16_t)r->close_in_open, dx_span_cstr("from on_open"));
}

static inline void nu_on_message(dx_conn *c, dx_opcode op, dx_span data, void *user) {
    nu_rec *r = user;
    r->messages++;
    r->last_op = op;
    r->total_bytes += data.len;
    r->msg_len = data.len < NU_MSG_CAP ? data.len : NU_MSG_CAP;
    if (r->msg_len)
        memcpy(r->msg, data.ptr, r->msg_len);
    if (r->seq_len + data.len + 1 < sizeof r->seq) {
        if (data.len)
            memcpy(r->seq + r->seq_len, data.ptr, data.len);
        r->seq_len += data.len;
        r->seq[r->seq_len++] = '|';
        r->seq[r->seq_len] = '\0';
    }
    if (r->echo)
        dx_conn_send(c, op, data);
    if (r->pause_on_message)
        dx_conn_pause(c);
}

static inline void nu_on_ping(dx_conn *c, dx_span payload, void *user) {
    (void)c;
    (void)payload;
    nu_rec *r = user;
    r->pings++;
}

static inline void nu_on_pong(dx_conn *c, dx_span payload, int64_t rtt_us, void *user) {
    (void)c;
    nu_rec *r = user;
    r->pongs++;
    r->last_rtt = rtt_us;
    r->last_pong_len = payload.len;
}

static inline void nu_on_drain(dx_conn *c, void *user) {
    (void)c;
    nu_rec *r = user;
    r->drains++;
}

static inline void nu_on_error(dx_conn *c, int err, void *user) {
    nu_rec *r = user;
    if (r->error_just_seen)
        r->bad_order++;
    r->errors++;
    r->last_err = err;
    r->http_status = dx_conn_http_status(c);
    r->error_just_seen = true;
}

static inline void nu_on_close(dx_conn *c, const dx_close_info *info, void *user) {
    nu_rec *r = user;
    r->closes++;
    r->close_code = info->code;
    r->clean = info->clean;
    r->remote = info->remote;
    r->close_error = info->error;
    if (r->error_just_seen && info->error != r->last_err)
        r->bad_order++; /* on_error's code and info->error must agree */
    r->error_just_seen = false;
    size_t n = info->reason.len < sizeof r->close_reason - 1 ? info->reason.len
                                                             : sizeof r->close_reason - 1;
    if (n)
        memcpy(r->close_reason, info->reason.ptr, n);
    r->close_reason[n] = '\0';
    r->state_in_close = dx_conn_state(c);
    if (r->conn == c)
        r->conn = NULL;
}

static const dx_conn_callbacks nu_callbacks = {
    .on_open = nu_on_open,
    .on_message = nu_on_message,
    .on_ping = nu_on_ping,
    .on_pong = nu_on_pong,
    .on_drain = nu_on_drain,
    .on_error = nu_on_error,
    .on_close = nu_on_close,
};

/* ---- a server on 127.0.0.1 ------------------------------------------------------------- */

/* Listen on 127.0.0.1 (unless @o names a host or a Unix path), a free port unless @o
 * names one, with @o, the callbacks @cb (may be NULL) and the user pointer @user. */
static inline int nu_server(dx_server **out, dx_loop *l, dx_server_options *o,
                            const dx_conn_callbacks *cb, void *user) {
    if (!o->unix_path && !o->host)
        o->host = "127.0.0.1";
    return dx_server_create(out, l, o, cb, user);
}

/* A server whose connections record into @r (and echo when r->echo). */
static inline int nu_echo_server(dx_server **out, dx_loop *l, nu_rec *r) {
    dx_server_options o = {0};
    return nu_server(out, l, &o, &nu_callbacks, r);
}

static inline void nu_url(char *out, size_t cap, uint16_t port, const char *path) {
    snprintf(out, cap, "ws://127.0.0.1:%u%s", (unsigned)port, path);
}

/* ---- raw sockets ------------------------------------------------------------------------ */

static inline void nu_nonblock(int fd) {
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* A TCP connection to 127.0.0.1:@port, non-blocking once connected (connecting to a
 * listening socket completes in the kernel, without the server's loop). -1 on
 * failure. */
static inline int nu_raw_connect(uint16_t port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    nu_nonblock(fd);
    return fd;
}

/* A listening socket on 127.0.0.1, a free port (*@port), non-blocking. */
static inline int nu_listen(uint16_t *port, int backlog) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, backlog) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

/* A free TCP port on 127.0.0.1 that nothing listens on (bound, then closed). */
static inline uint16_t nu_closed_port(void) {
    uint16_t port = 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* Write all of @p (small amounts: they fit the socket buffer; waits at most 2 s). */
static inline bool nu_send(int fd, const void *p, size_t n) {
    const uint8_t *b = p;
    uint64_t end = nu_now_ms() + 2000;
    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w > 0) {
            b += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && (errno == EAGAIN || errno == EINTR) && nu_now_ms() < end) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            poll(&pfd, 1, 10);
            continue;
        }
        return false;
    }
    return true;
}

static inline bool nu_send_str(int fd, const char *s) {
    return nu_send(fd, s, strlen(s));
}

/* Close so that the peer sees a reset (SO_LINGER 0). */
static inline void nu_close_reset(int fd) {
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

/* What a raw peer has read. */
typedef struct nu_in {
    uint8_t b[NU_MSG_CAP];
    size_t len;   /* bytes kept in b */
    size_t total; /* bytes read, kept or not */
    bool eof;     /* read returned 0 */
    int err;      /* read failed with this errno (ECONNRESET...) */
} nu_in;

/* Read what is available on non-blocking @fd into @in (bytes past the buffer are
 * counted and dropped). */
static inline void nu_pump(int fd, nu_in *in) {
    for (;;) {
        uint8_t tmp[16384];
        ssize_t n = recv(fd, tmp, sizeof tmp, MSG_DONTWAIT);
        if (n > 0) {
            size_t room = sizeof in->b - in->len, k = (size_t)n < room ? (size_t)n : room;
            memcpy(in->b + in->len, tmp, k);
            in->len += k;
            in->total += (size_t)n;
            continue;
        }
        if (n == 0)
            in->eof = true;
        else if (errno != EAGAIN && errno != EINTR)
            in->err = errno;
        return;
    }
}

/* Drop the first @n bytes of @in. */
static inline void nu_in_consume(nu_in *in, size_t n) {
    memmove(in->b, in->b + n, in->len - n);
    in->len -= n;
}

/* Length of the HTTP head at the start of @in (through CRLF CRLF), or 0. */
static inline size_t nu_head_len(const nu_in *in) {
    for (size_t i = 0; i + 4 <= in->len; i++)
        if (memcmp(in->b + i, "\r\n\r\n", 4) == 0)
            return i + 4;
    return 0;
}

static inline bool nu_in_has(const nu_in *in, const char *s) {
    size_t n = strlen(s);
    for (size_t i = 0; i + n <= in->len; i++)
        if (memcmp(in->b + i, s, n) == 0)
            return true;
    return false;
}

/* Pump @fd into @in while running @l, until @cond, EOF/error, or @ms. */
#define PUMP_UNTIL(l, fd, in, cond, ms)                                                            \
    do {                                                                                           \
        uint64_t end_ = nu_now_ms() + (uint64_t)(ms);                                              \
        for (;;) {                                                                                 \
            nu_pump((fd), (in));                                                                   \
            if ((cond) || (in)->eof || (in)->err || nu_now_ms() >= end_)                           \
                break;                                                                             \
            dx_loop_run_once((l), 5);                                                              \
        }                                                                                          \
    } while (0)

/* ---- the WebSocket handshake on raw sockets ---------------------------------------------- */

#define NU_KEY "dGhlIHNhbXBsZSBub25jZQ=="        /* RFC 6455 §1.3 */
#define NU_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" /* its accept value */

/* An upgrade request for @target with @extra header lines ("Name: v\r\n"...). */
static inline void nu_request(char *out, size_t cap, const char *target, const char *extra) {
    snprintf(out, cap,
             "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nSec-WebSocket-Key: " NU_KEY "\r\n"
             "Sec-WebSocket-Version: 13\r\n%s\r\n",
             target, extra ? extra : "");
}

/* Connect to @port, send an upgrade request, and read the whole response head into
 * @in (what follows it stays in @in after the head is consumed when @consume).
 * Returns the fd (or -1); *@status is the answer's status (0 if none). */
static inline int nu_raw_ws_connect(dx_loop *l, uint16_t port, const char *target,
                                    const char *extra, nu_in *in, int *status, bool consume) {
    char req[2048];
    *status = 0;
    int fd = nu_raw_connect(port);
    if (fd < 0)
        return -1;
    nu_request(req, sizeof req, target, extra);
    nu_send_str(fd, req);
    PUMP_UNTIL(l, fd, in, nu_head_len(in) > 0, 3000);
    size_t hl = nu_head_len(in);
    if (hl && in->len >= 12 && memcmp(in->b, "HTTP/1.1 ", 9) == 0)
        *status = (in->b[9] - '0') * 100 + (in->b[10] - '0') * 10 + (in->b[11] - '0');
    if (hl && consume)
        nu_in_consume(in, hl);
    return fd;
}

/* Append one frame to @out (at most 14 + @len bytes): masked with a fixed key when
 * @masked (a client's frame). Returns its size. */
static inline size_t nu_frame(uint8_t *out, bool fin, unsigned opcode, bool masked,
                              const void *payload, size_t len) {
    dx_frame_header h = {
        .fin = fin, .opcode = (uint8_t)opcode, .masked = masked, .payload_len = len};
    static const uint8_t key[4] = {0x12, 0x34, 0x56, 0x78};
    if (masked)
        memcpy(h.mask, key, 4);
    size_t hl = dx_frame_header_encode(out, &h);
    if (len) {
        if (masked)
            dx_mask_copy(out + hl, payload, len, key, 0);
        else
            memcpy(out + hl, payload, len);
    }
    return hl + len;
}

/* A parsed frame at the start of @in. */
typedef struct nu_frame_view {
    unsigned opcode;
    bool fin, masked;
    const uint8_t *payload; /* unmasked copy in @in itself */
    size_t len;
    size_t size; /* header + payload */
} nu_frame_view;

/* Parse (and unmask in place) the first frame in @in. False when incomplete. */
static inline bool nu_next_frame(nu_in *in, nu_frame_view *f) {
    dx_frame_header h;
    size_t hl;
    if (dx_frame_header_decode(in->b, in->len, &h, &hl) != 0)
        return false;
    if (in->len - hl < h.payload_len)
        return false;
    f->opcode = h.opcode;
    f->fin = h.fin;
    f->masked = h.masked;
    f->payload = in->b + hl;
    f->len = (size_t)h.payload_len;
    f->size = hl + f->len;
    if (h.masked)
        dx_mask(in->b + hl, f->len, h.mask, 0);
    return true;
}

/* Send one client (masked) frame on @fd. */
static inline bool nu_send_frame(int fd, bool fin, unsigned opcode, const void *payload,
                                 size_t len) {
    uint8_t *buf = malloc(len + 14);
    if (!buf)
        return false;
    size_t n = nu_frame(buf, fin, opcode, true, payload, len);
    bool ok = nu_send(fd, buf, n);
    free(buf);
    return ok;
}

/* A close frame payload: code + reason. */
static inline bool nu_send_close(int fd, bool masked, uint16_t code, const char *reason) {
    uint8_t p[125], buf[140];
    size_t rl = reason ? strlen(reason) : 0;
    p[0] = (uint8_t)(code >> 8);
    p[1] = (uint8_t)code;
    if (rl)
        memcpy(p + 2, reason, rl);
    size_t n = nu_frame(buf, true, DX_OP_CLOSE, masked, p, code ? 2 + rl : 0);
    return nu_send(fd, buf, n);
}

/* Accept one connection on listening @lfd, running @l meanwhile; -1 after @ms. */
static inline int nu_accept(dx_loop *l, int lfd, unsigned ms) {
    uint64_t end = nu_now_ms() + ms;
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0)
            return fd;
        if (nu_now_ms() >= end)
            return -1;
        dx_loop_run_once(l, 5);
    }
}

/* The Sec-WebSocket-Key of a request head in @in, copied into @key (25 bytes). */
static inline bool nu_find_key(const nu_in *in, char key[25]) {
    static const char name[] = "Sec-WebSocket-Key: ";
    size_t n = sizeof name - 1;
    for (size_t i = 0; i + n + 24 <= in->len; i++)
        if (strncasecmp((const char *)in->b + i, name, n) == 0) {
            memcpy(key, in->b + i + n, 24);
            key[24] = '\0';
            return true;
        }
    return false;
}

/* The 101 answer a raw server gives to the request in @in (with @extra header lines). */
static inline size_t nu_accept_response(const nu_in *in, const char *extra, char *out, size_t cap) {
    char key[25] = "", acc[DX_ACCEPT_LEN + 1];
    nu_find_key(in, key);
    dx_handshake_accept_key(dx_span_cstr(key), acc);
    acc[DX_ACCEPT_LEN] = '\0';
    int n = snprintf(out, cap,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n",
                     acc, extra ? extra : "");
    return n < 0 ? 0 : (size_t)n;
}

/* Accept a client on @lfd (running @l), read its request head into @in, answer 101
 * (with @extra header lines). Returns the fd, or -1. The head is consumed from @in. */
static inline int nu_raw_server_open(dx_loop *l, int lfd, nu_in *in, const char *extra) {
    int fd = nu_accept(l, lfd, 3000);
    if (fd < 0)
        return -1;
    PUMP_UNTIL(l, fd, in, nu_head_len(in) > 0, 3000);
    size_t hl = nu_head_len(in);
    if (!hl) {
        close(fd);
        return -1;
    }
    char resp[1024];
    size_t n = nu_accept_response(in, extra, resp, sizeof resp);
    nu_in_consume(in, hl);
    nu_send(fd, resp, n);
    return fd;
}

/* Is there an IPv6 loopback? (bind to ::1) */
static inline bool nu_have_ipv6(void) {
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    bool ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

#endif /* DX_TEST_NET_UTIL_H */
