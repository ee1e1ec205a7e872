/*
 * The server: a listening socket, batch accept, the server side of the opening
 * handshake (reading and checking the request head, the application's upgrade
 * decision, 101 or a refusal), and graceful shutdown. Everything after the 101 is
 * the connection layer's (runtime/conn.c).
 */
#include "duplex/server.h"
#include "runtime/conn_internal.h"
#include "tls/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define ACCEPT_BATCH 64     /* sockets accepted per wake-up, for fairness */
#define ACCEPT_RETRY_MS 100 /* pause after EMFILE and the like */
#define DEFAULT_BACKLOG 511 /* as nginx */
#define RESPONSE_STACK 1024 /* most handshake answers fit on the stack */

/* Where a connection's request head stands while it is CONNECTING. */
typedef enum pending {
    PENDING_NONE = 0, /* still reading the head */
    PENDING_UPGRADE,  /* on_upgrade called; waiting for accept or reject */
    PENDING_HTTP,     /* on_http called; waiting for respond */
} pending;

/* A parsed request head: 4 KiB, so it exists only from the head's last byte to the
 * decision (usually within one callback, so one allocation serves every handshake). */
typedef struct server_request {
    dx_http_request req;
    dx_ws_request ws;
    dx_http_header headers[DX_DEFAULT_MAX_HEADERS];
    bool pmd; /* permessage-deflate can be agreed: */
    dx_deflate_params pmd_params;
    char pmd_answer[160]; /* its Sec-WebSocket-Extensions answer */
} server_request;

/* The handshake state of one connection, freed once it opens or is refused. Small:
 * a server holds one per connection still sending its head. */
typedef struct server_hs {
    dx_http_scan scan;
    size_t head_len;
    pending pending;
    server_request *r; /* once the head is complete */
} server_hs;

struct dx_server {
    dx_loop *loop;
    int fd;                    /* the listening socket; -1 once closed */
    uint16_t port;             /* the bound port (0 for Unix) */
    dx_io io;                  /* watches fd */
    dx_timer accept_retry;     /* after EMFILE, or at max_connections */
    dx_server_options opts;    /* copied */
    dx_conn_options conn_opts; /* opts.conn with defaults */
    dx__conn_class cls;        /* what every connection shares */
    dx_tls_ctx *tls;           /* wss, or NULL */
    dx_deflate_config deflate; /* permessage-deflate, when deflate_on */
    bool deflate_on;
    char *unix_path;       /* copied; NULL for TCP */
    char **protocols;      /* opts.protocols copied: the pointers, then the strings */
    size_t protocols_size; /* bytes of that block */
    dx_conn *conns;        /* every connection, opening or open */
    size_t num_conns;
    bool shutting_down;
    bool destroyed;
    dx_timer shutdown_timer; /* the bound on a graceful shutdown */
    void (*done)(dx_server *s, void *user);
    void *done_user;
    dx_defer free_defer;
};

static const dx_allocator *alloc_of(const dx_server *s) {
    (void)s; /* one place to change when servers take an allocator */
    return dx_allocator_default();
}

/* ---- the handshake role ------------------------------------------------------------ */

static server_hs *hs_of(const dx_conn *c) {
    return c->role_data;
}

static void drop_hs(dx_conn *c) {
    server_hs *hs = c->role_data;
    if (!hs)
        return;
    dx__free(alloc_of(c->owner), hs->r, sizeof(server_request));
    dx__free(alloc_of(c->owner), hs, sizeof(server_hs));
    c->role_data = NULL;
}

/* Queue an HTTP answer written by @write (into a stack buffer, or a heap one when it
 * does not fit), then end the connection once it is written. */
static int queue_answer(dx_conn *c, const uint8_t *bytes, size_t len) {
    int rc = dx__conn_queue_raw(c, bytes, len);
    if (rc < 0) {
        dx__conn_fail(c, rc);
        return rc;
    }
    c->seen = false; /* refused: the application is done with it */
    c->paused = false;
    drop_hs(c);
    dx__conn_end_after_raw(c);
    dx__conn_update_io(c);
    return 0;
}

/* The standard refusal for a malformed or invalid request. */
static void refuse(dx_conn *c, int err) {
    uint8_t buf[RESPONSE_STACK];
    size_t len;
    if (dx_handshake_write_refusal(err, buf, sizeof buf, &len) != 0) {
        dx__conn_fail(c, err);
        return;
    }
    queue_answer(c, buf, len);
}

static void decide(dx_conn *c, dx_server *s) {
    server_hs *hs = hs_of(c);
    /* nothing more is consumed until the decision, but the socket stays watched so
     * that a client that leaves meanwhile is noticed (server_on_io) */
    c->seen = true; /* from here the application holds it: on_close is owed */
    if (!dx_http_header_has_token(hs->r->req.headers, hs->r->req.num_headers, "Upgrade",
                                  "websocket")) {
        hs->pending = PENDING_HTTP;
        if (s->opts.on_http)
            s->opts.on_http(c, &hs->r->req, s->opts.user);
        else
            refuse(c, DX_EHS_NO_UPGRADE);
        return;
    }
    int rc = dx_handshake_check_request(&hs->r->req, &hs->r->ws);
    if (rc != 0) {
        c->seen = false;
        refuse(c, rc);
        return;
    }
    size_t n;
    hs->r->pmd = false;
    if (s->deflate_on && dx_deflate_accept(&s->deflate, hs->r->ws.extensions,
                                           hs->r->ws.num_extensions, &hs->r->pmd_params, NULL,
                                           hs->r->pmd_answer, sizeof hs->r->pmd_answer, &n) == 0)
        hs->r->pmd = true;
    hs->pending = PENDING_UPGRADE;
    if (s->opts.on_upgrade) {
        s->opts.on_upgrade(c, &hs->r->ws, s->opts.user);
        return;
    }
    dx_accept_options accept = {0};
    rc = dx_handshake_select_protocol(&hs->r->ws, s->opts.protocols, s->opts.num_protocols,
                                      &accept.protocol);
    if (rc == DX_EHS_NO_PROTOCOL && s->opts.protocol_policy == DX_PROTOCOL_FIRST_OFFERED) {
        accept.protocol = hs->r->ws.protocols[0];
    } else if (rc < 0) {
        c->seen = false;
        refuse(c, rc);
        return;
    }
    dx_conn_accept(c, &accept, s->opts.user);
}

static void server_on_io(dx_conn *c, unsigned events) {
    if (!(events & DX_IO_READ))
        return;
    server_hs *hs = hs_of(c);
    if (!hs)
        return;
    if (hs->pending != PENDING_NONE) {
        /* a decision is pending: fail at once if the client left; bytes it sends
         * meanwhile wait in the kernel (stop watching, or the loop would spin) */
        uint8_t b;
        ssize_t n = recv(c->fd, &b, 1, MSG_PEEK);
        int err = n < 0 ? errno : 0;
        if (n == 0 || (err && err != EAGAIN && err != EWOULDBLOCK && err != EINTR)) {
            dx__conn_fail(c, n == 0 ? DX_EHANDSHAKE_EOF : -err);
        } else if (n > 0) {
            c->paused = true;
            dx__conn_update_io(c);
        }
        return;
    }
    uint8_t *buf;
    ssize_t n = dx__conn_read(c, &buf);
    if (n == DX_EINCOMPLETE)
        return;
    if (n <= 0) {
        dx__conn_fail(c, n == 0 ? DX_EHANDSHAKE_EOF : (int)n);
        return;
    }
    /* the scan refuses a head past max_head, so in[] stays under max_head + one read;
     * bytes after the head (early frames) are kept for the proto */
    int rc = dx__conn_keep_input(c, buf, (size_t)n);
    if (rc == 0)
        rc = dx_http_scan_feed(&hs->scan, dx__conn_in(c), dx__conn_in_len(c), &hs->head_len);
    if (rc == DX_EINCOMPLETE)
        return;
    if (rc == 0 && !(hs->r = dx__alloc(alloc_of(c->owner), sizeof(server_request))))
        rc = DX_ENOMEM;
    if (rc == 0)
        rc = dx_http_parse_request(dx__conn_in(c), hs->head_len, &hs->r->req, hs->r->headers,
                                   DX_DEFAULT_MAX_HEADERS);
    if (rc == DX_ENOMEM) {
        dx__conn_fail(c, rc);
        return;
    }
    if (rc != 0) {
        refuse(c, rc);
        return;
    }
    decide(c, c->owner);
}

static void server_on_timeout(dx_conn *c) {
    dx__conn_fail(c, DX_EHANDSHAKE_TIMEOUT);
}

static void resume_accepting(dx_server *s);

static void server_on_finish(dx_conn *c) {
    dx_server *s = c->owner;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    s->num_conns--;
    if (s->shutting_down) {
        if (s->num_conns == 0 && s->done) {
            void (*done)(dx_server *, void *) = s->done;
            s->done = NULL;
            dx_timer_stop(s->loop, &s->shutdown_timer);
            done(s, s->done_user);
        }
    } else if (!s->destroyed) {
        resume_accepting(s);
    }
}

static void server_release(dx_conn *c) {
    drop_hs(c);
}

static const dx__conn_role server_role = {
    .on_io = server_on_io,
    .on_timeout = server_on_timeout,
    .on_finish = server_on_finish,
    .release = server_release,
};

/* ---- the upgrade decision ------------------------------------------------------------ */

int dx_conn_accept(dx_conn *c, const dx_accept_options *opts, void *user) {
    if (!c || c->cls->role != &server_role || !hs_of(c) || hs_of(c)->pending != PENDING_UPGRADE ||
        c->phase != PHASE_HANDSHAKE)
        return DX_ESTATE;
    server_hs *hs = hs_of(c);
    /* the server's permessage-deflate answer, unless the application wrote its own */
    dx_accept_options with_pmd = opts ? *opts : (dx_accept_options){0};
    bool pmd = hs->r->pmd && !with_pmd.extensions.len;
    if (pmd)
        with_pmd.extensions = dx_span_cstr(hs->r->pmd_answer);
    opts = &with_pmd;
    uint8_t stack[RESPONSE_STACK];
    uint8_t *buf = stack;
    size_t len, need = 0;
    int rc = dx_handshake_write_accept(&hs->r->ws, opts, stack, sizeof stack, &len);
    if (rc == DX_ENOSPACE) {
        need = len;
        buf = dx__alloc(alloc_of(c->owner), need);
        rc = buf ? dx_handshake_write_accept(&hs->r->ws, opts, buf, need, &len) : DX_ENOMEM;
    }
    if (rc == 0)
        rc = dx__conn_set_info(c, opts ? opts->protocol : (dx_span){0},
                               opts ? opts->extensions : (dx_span){0}, NULL);
    if (rc == 0)
        rc = dx__conn_send_raw(c, buf, len);
    if (buf != stack)
        dx__free(alloc_of(c->owner), buf, need);
    if (rc == DX_EINVAL)
        return rc; /* the application's options: it may decide again */
    if (rc < 0) {
        dx__conn_fail(c, rc);
        return rc;
    }
    size_t head_len = hs->head_len;
    dx_deflate_params params = hs->r->pmd_params;
    drop_hs(c);
    c->user = user;
    dx_server *s = c->owner;
    return dx__conn_open(c, head_len, pmd ? &params : NULL, &s->deflate);
}

int dx_conn_reject(dx_conn *c, int status, const dx_http_header *headers, size_t num_headers,
                   dx_span body) {
    if (!c || c->cls->role != &server_role || !hs_of(c) || hs_of(c)->pending == PENDING_NONE ||
        c->phase != PHASE_HANDSHAKE)
        return DX_ESTATE;
    if (status < 100 || status > 599 || (status >= 100 && status < 200))
        return DX_EINVAL;
    uint8_t stack[RESPONSE_STACK];
    size_t len;
    int rc = dx_http_write_response(stack, sizeof stack, &len, status, headers, num_headers, body);
    if (rc == 0)
        return queue_answer(c, stack, len);
    if (rc != DX_ENOSPACE)
        return rc;
    size_t need = len;
    uint8_t *buf = dx__alloc(alloc_of(c->owner), need);
    if (!buf) {
        dx__conn_fail(c, DX_ENOMEM);
        return DX_ENOMEM;
    }
    rc = dx_http_write_response(buf, need, &len, status, headers, num_headers, body);
    if (rc == 0)
        rc = queue_answer(c, buf, len);
    dx__free(alloc_of(c->owner), buf, need);
    return rc;
}

int dx_conn_respond(dx_conn *c, int status, const dx_http_header *headers, size_t num_headers,
                    dx_span body) {
    return dx_conn_reject(c, status, headers, num_headers, body);
}

dx_server *dx_conn_server(const dx_conn *c) {
    return c && c->cls->role == &server_role ? c->owner : NULL;
}

/* ---- accepting ----------------------------------------------------------------------- */

static bool at_capacity(const dx_server *s) {
    return s->opts.max_connections && s->num_conns >= s->opts.max_connections;
}

static void resume_accepting(dx_server *s) {
    if (s->fd < 0 || dx_io_is_active(&s->io) || dx_timer_is_active(&s->accept_retry) ||
        at_capacity(s))
        return;
    dx_io_start(s->loop, &s->io, DX_IO_READ);
}

static void on_accept_retry(dx_timer *t, void *user) {
    (void)t;
    resume_accepting(user);
}

static void add_conn(dx_server *s, int fd) {
    dx_conn *c = dx__calloc(alloc_of(s), sizeof(*c));
    server_hs *hs = dx__calloc(alloc_of(s), sizeof(*hs));
    if (!c || !hs) {
        dx__free(alloc_of(s), c, sizeof(*c));
        dx__free(alloc_of(s), hs, sizeof(*hs));
        close(fd);
        return;
    }
    hs->scan.max_head = s->conn_opts.max_head;
    c->role_data = hs;
    if (dx__conn_init(c, s->loop, fd, DX_SIDE_SERVER, &s->cls, s, s->opts.user) != 0) {
        dx__free(alloc_of(s), hs, sizeof(*hs));
        dx__free(alloc_of(s), c, sizeof(*c));
        close(fd);
        return;
    }
    if (s->tls) {
        dx_tls_conn *t = NULL;
        if (dx__tls_conn_create(&t, s->tls, NULL, 0) != 0 || dx__conn_start_tls(c, t) != 0) {
            dx__tls_conn_destroy(t);
            c->tls = NULL;
            dx_io_close(s->loop, &c->io);
            dx_timer_stop(s->loop, &c->timer);
            dx__free(alloc_of(s), hs, sizeof(*hs));
            dx__free(alloc_of(s), c, sizeof(*c));
            return;
        }
    }
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->num_conns++;
}

static void on_listen_io(dx_io *w, unsigned events, void *user) {
    (void)w;
    (void)events;
    dx_server *s = user;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        if (at_capacity(s)) {
            dx_io_stop(s->loop, &s->io); /* the rest wait in the backlog */
            return;
        }
        int fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* out of descriptors: retry soon instead of spinning on the ready socket */
                dx_io_stop(s->loop, &s->io);
                dx_timer_start(s->loop, &s->accept_retry, ACCEPT_RETRY_MS);
            }
            return;
        }
        add_conn(s, fd); /* TCP_NODELAY is inherited from the listening socket */
    }
}

/* ---- listening ------------------------------------------------------------------------ */

static int listen_unix(dx_server *s) {
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    size_t n = strlen(s->unix_path);
    if (n == 0 || n >= sizeof sun.sun_path)
        return DX_EINVAL;
    memcpy(sun.sun_path, s->unix_path, n + 1);
    struct stat st;
    if (lstat(s->unix_path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(s->unix_path); /* a stale socket from an earlier run */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    s->fd = fd;
    return 0;
}

static int bind_tcp(dx_server *s, const struct sockaddr *sa, socklen_t len) {
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (s->opts.reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
        goto fail;
    if (sa->sa_family == AF_INET6) /* "::" serves IPv4 too */
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    /* frames are corked by the loop already; accepted sockets inherit this on Linux */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (bind(fd, sa, len) != 0)
        goto fail;
    struct sockaddr_storage got;
    socklen_t got_len = sizeof got;
    if (getsockname(fd, (struct sockaddr *)&got, &got_len) != 0)
        goto fail;
    s->port = ntohs(got.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&got)->sin6_port
                                              : ((struct sockaddr_in *)&got)->sin_port);
    s->fd = fd;
    return 0;
fail:;
    int rc = -errno;
    close(fd);
    return rc;
}

static int listen_tcp(dx_server *s) {
    const char *host = s->opts.host;
    uint16_t port = s->opts.port;
    struct sockaddr_in in4 = {.sin_family = AF_INET, .sin_port = htons(port)};
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
    if (!host) {
        in6.sin6_addr = in6addr_any;
        int rc = bind_tcp(s, (struct sockaddr *)&in6, sizeof in6);
        if (rc != -EAFNOSUPPORT)
            return rc;
        in4.sin_addr.s_addr = htonl(INADDR_ANY); /* a host without IPv6 */
        return bind_tcp(s, (struct sockaddr *)&in4, sizeof in4);
    }
    if (inet_pton(AF_INET, host, &in4.sin_addr) == 1)
        return bind_tcp(s, (struct sockaddr *)&in4, sizeof in4);
    if (inet_pton(AF_INET6, host, &in6.sin6_addr) == 1)
        return bind_tcp(s, (struct sockaddr *)&in6, sizeof in6);
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
        rc = bind_tcp(s, ai->ai_addr, ai->ai_addrlen);
        if (rc == 0)
            break;
    }
    freeaddrinfo(res);
    return rc;
}

static char *copy_str(const char *str) {
    if (!str)
        return NULL;
    size_t n = strlen(str) + 1;
    char *p = dx__alloc(dx_allocator_default(), n);
    if (p)
        memcpy(p, str, n);
    return p;
}

static void free_str(char *p) {
    if (p)
        dx__free(dx_allocator_default(), p, strlen(p) + 1);
}

/* Copy @n strings into one block: the pointers, then the strings. */
static char **copy_list(const char *const *in, size_t n, size_t *size) {
    size_t total = n * sizeof(char *);
    for (size_t i = 0; i < n; i++)
        total += strlen(in[i]) + 1;
    char **out = dx__alloc(dx_allocator_default(), total);
    if (!out)
        return NULL;
    char *p = (char *)(out + n);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(in[i]) + 1;
        memcpy(p, in[i], len);
        out[i] = p;
        p += len;
    }
    *size = total;
    return out;
}

static void free_server(dx_defer *d, void *user) {
    (void)d;
    dx_server *s = user;
    dx__tls_ctx_destroy(s->tls); /* connections still alive hold their own reference */
    free_str((char *)s->opts.host);
    free_str(s->unix_path);
    dx__free(dx_allocator_default(), s->protocols, s->protocols_size);
    dx__free(alloc_of(s), s, sizeof(*s));
}

int dx_server_create(dx_server **out, dx_loop *loop, const dx_server_options *opts) {
    if (!out || !loop || !opts)
        return DX_EINVAL;
    dx_server *s = dx__calloc(dx_allocator_default(), sizeof(*s));
    if (!s)
        return DX_ENOMEM;
    s->loop = loop;
    s->fd = -1;
    s->opts = *opts;
    s->opts.host = NULL;
    dx__conn_options_resolve(&opts->conn, &s->conn_opts);
    s->cls = (dx__conn_class){&server_role, &s->opts.callbacks, &s->conn_opts};
    if (opts->deflate) {
        s->deflate = *opts->deflate;
        s->deflate_on = true;
    }
    s->opts.deflate = NULL; /* the copy above is what counts */
    char offer[160];
    size_t offer_len;
    int rc = DX_EINVAL; /* window bits or levels out of range */
    if (s->deflate_on && dx_deflate_write_offer(&s->deflate, offer, sizeof offer, &offer_len) != 0)
        goto fail;
    s->opts.tls = NULL;
    if (opts->tls && (rc = dx__tls_ctx_create_server(&s->tls, opts->tls)) < 0)
        goto fail;
    s->opts.protocols = NULL;
    rc = DX_EINVAL;
    if (opts->num_protocols && !opts->protocols)
        goto fail;
    for (size_t i = 0; i < opts->num_protocols; i++)
        if (!opts->protocols[i])
            goto fail;
    rc = DX_ENOMEM;
    if ((opts->host && !(s->opts.host = copy_str(opts->host))) ||
        (opts->unix_path && !(s->unix_path = copy_str(opts->unix_path))))
        goto fail;
    if (opts->num_protocols &&
        !(s->protocols = copy_list(opts->protocols, opts->num_protocols, &s->protocols_size)))
        goto fail;
    s->opts.protocols = (const char *const *)s->protocols;
    rc = s->unix_path ? listen_unix(s) : listen_tcp(s);
    if (rc < 0)
        goto fail;
    if (listen(s->fd, opts->backlog > 0 ? opts->backlog : DEFAULT_BACKLOG) != 0) {
        rc = -errno;
        goto fail;
    }
    dx_io_init(&s->io, s->fd, on_listen_io, s);
    dx_timer_init(&s->accept_retry, on_accept_retry, s);
    rc = dx_io_start(loop, &s->io, DX_IO_READ);
    if (rc < 0)
        goto fail;
    *out = s;
    return 0;
fail:
    if (s->fd >= 0)
        close(s->fd);
    free_server(NULL, s);
    return rc;
}

uint16_t dx_server_port(const dx_server *s) {
    return s->port;
}

size_t dx_server_connections(const dx_server *s) {
    return s->num_conns;
}

long dx_server_broadcast(dx_server *s, dx_prepared *m) {
    if (!s || !m)
        return DX_EINVAL;
    long count = 0;
    int failure = 0;
    dx_conn *next;
    for (dx_conn *c = s->conns; c; c = next) {
        next = c->next; /* a send that closes c (DX_BP_CLOSE) may unlink it */
        if (c->phase != PHASE_OPEN)
            continue;
        int rc = dx_conn_send_prepared(c, m);
        if (rc == 0)
            count++;
        else if (rc == DX_ENOMEM)
            failure = rc;
    }
    return failure ? failure : count;
}

static void stop_listening(dx_server *s) {
    dx_io_stop(s->loop, &s->io);
    dx_timer_stop(s->loop, &s->accept_retry);
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    if (s->unix_path)
        unlink(s->unix_path);
}

static void on_shutdown_timeout(dx_timer *t, void *user) {
    (void)t;
    dx_server *s = user;
    if (s->num_conns == 0) { /* nothing was open: finish on the next iteration */
        void (*done)(dx_server *, void *) = s->done;
        s->done = NULL;
        if (done)
            done(s, s->done_user);
        return;
    }
    while (s->conns) /* each abort unlinks it; the last one calls done */
        dx_conn_abort(s->conns);
}

int dx_server_shutdown(dx_server *s, uint32_t timeout_ms, void (*done)(dx_server *s, void *user),
                       void *user) {
    if (!s)
        return DX_EINVAL;
    if (s->shutting_down || s->destroyed)
        return DX_ESTATE;
    s->shutting_down = true;
    s->done = done;
    s->done_user = user;
    stop_listening(s);
    dx_timer_init(&s->shutdown_timer, on_shutdown_timeout, s);
    dx_conn *next;
    for (dx_conn *c = s->conns; c; c = next) {
        next = c->next;
        if (c->phase == PHASE_HANDSHAKE)
            dx__conn_fail(c, DX_ESHUTDOWN);
        else
            dx__conn_close(c, DX_CLOSE_GOING_AWAY, "server shutting down");
    }
    /* done runs when the last connection finishes, or at the deadline; never inside
     * this call, even with no connection */
    dx_timer_start(s->loop, &s->shutdown_timer, s->num_conns ? timeout_ms : 0);
    return 0;
}

void dx_server_destroy(dx_server *s) {
    if (!s || s->destroyed)
        return;
    s->destroyed = true;
    s->done = NULL;
    stop_listening(s);
    if (s->shutting_down)
        dx_timer_stop(s->loop, &s->shutdown_timer);
    while (s->conns)
        dx_conn_abort(s->conns);
    dx_loop_defer(s->loop, &s->free_defer, free_server, s);
}
