/*
 * Connecting a stream: the name resolved off the loop thread (resolve.c; a literal
 * needs no lookup), each address tried in turn with a non-blocking connect, an
 * optional HTTP CONNECT tunnel (RFC 9110 §9.3.6) through a proxy named by the options
 * or the environment (proxy.c), then TLS and on_open (stream.c).
 */
#include "runtime/stream_internal.h"

#include "duplex/http.h"
#include "runtime/proxy.h"
#include "runtime/resolve.h"
#include "runtime/sock.h"

#include <stdlib.h>

#define PROXY_HEAD_MAX 8192 /* the proxy's answer head */

typedef enum stage {
    STAGE_RESOLVING = 0, /* waiting for the addresses */
    STAGE_CONNECTING,    /* connect() in progress */
    STAGE_PROXY,         /* CONNECT sent (or being sent); waiting for the answer */
} stage;

struct dx__connect {
    stage stage;
    char *host;        /* the target (copied); NULL for a Unix socket */
    char *unix_path;   /* copied, or NULL */
    char *server_name; /* what TLS verifies; NULL: host */
    uint16_t port;
    dx_tls_ctx *tls; /* a reference of our own, or NULL */
    dx__proxy proxy;
    bool use_proxy;
    dx__resolve *resolving;
    struct addrinfo *addrs; /* every address; next_addr is the next to try */
    struct addrinfo *next_addr;
    int last_err;   /* why the last address failed */
    dx_defer begin; /* starts after dx_stream_connect returns */
    uint8_t request[DX_PROXY_HOST_MAX * 2 + DX_PROXY_AUTH_MAX + 128]; /* CONNECT */
    size_t request_len, request_sent;
    dx_http_scan scan; /* the proxy's answer */
    uint8_t *answer;   /* its bytes so far (PROXY_HEAD_MAX + a read) */
    size_t answer_len;
    size_t tunnel_from; /* where the server's bytes start in answer, once tunnelled */
    int proxy_status;   /* what the proxy answered, when it refused */
};

static const dx_allocator *alloc_of(const dx_stream *s) {
    return s->out.alloc;
}

static char *copy_str(const dx_allocator *a, const char *str) {
    if (!str)
        return NULL;
    size_t n = strlen(str) + 1;
    char *p = dx__alloc(a, n);
    if (p)
        memcpy(p, str, n);
    return p;
}

static void free_str(const dx_allocator *a, char *str) {
    if (str)
        dx__free(a, str, strlen(str) + 1);
}

static const char *env_get(const char *name) {
    return getenv(name);
}

/* ---- the steps ------------------------------------------------------------------ */

static void try_next_address(dx_stream *s);

/* TCP is up: the tunnel first, if any, else TLS or open. */
static void tcp_connected(dx_stream *s) {
    struct dx__connect *c = s->connect;
    s->want_write = false;
    if (!c->use_proxy) {
        dx__stream_connected(s);
        return;
    }
    size_t len;
    bool ipv6 = c->host && strchr(c->host, ':');
    if (dx__proxy_write_connect(&c->proxy, c->host, ipv6, c->port, (char *)c->request,
                                sizeof c->request, &len) != 0) {
        dx__stream_fail(s, DX_EPROXY_URL);
        return;
    }
    c->request_len = len;
    c->request_sent = 0;
    c->scan = (dx_http_scan){.max_head = PROXY_HEAD_MAX};
    c->stage = STAGE_PROXY;
    s->want_write = true;
    dx__stream_update_io(s);
}

static void try_next_address(dx_stream *s) {
    struct dx__connect *c = s->connect;
    while (c->next_addr || (c->unix_path && c->stage == STAGE_RESOLVING)) {
        struct addrinfo *ai = c->next_addr;
        if (ai)
            c->next_addr = ai->ai_next;
        int fd = dx__sock_connect(ai, c->unix_path);
        c->stage = STAGE_CONNECTING;
        if (fd < 0) {
            c->last_err = fd;
            if (c->unix_path)
                break;
            continue;
        }
        dx_io_init(&s->io, fd, s->io.cb, s);
        s->io_events = 0;
        s->want_write = true;
        dx__stream_update_io(s);
        if (!s->io_events) { /* epoll refused it */
            dx__sock_close(fd);
            s->io.fd = -1;
            c->last_err = DX_ENOMEM;
            continue;
        }
        return; /* writable = connected (or failed: SO_ERROR says) */
    }
    dx__stream_fail(s, c->last_err ? c->last_err : DX_ERESOLVE);
}

static void on_resolved(struct addrinfo *res, int err, void *user) {
    dx_stream *s = user;
    struct dx__connect *c = s->connect;
    c->resolving = NULL;
    if (err) {
        dx__stream_fail(s, err);
        return;
    }
    c->addrs = c->next_addr = res;
    try_next_address(s);
}

static void begin(dx_defer *d, void *user) {
    (void)d;
    dx_stream *s = user;
    struct dx__connect *c = s->connect;
    if (s->state != ST_CONNECTING)
        return; /* closed before it started */
    if (c->unix_path && !c->use_proxy) {
        try_next_address(s);
        return;
    }
    const char *host = c->use_proxy ? c->proxy.host : c->host;
    uint16_t port = c->use_proxy ? c->proxy.port : c->port;
    struct addrinfo *res;
    if (dx__sock_resolve(host, port, true, &res) == 0) { /* a literal: no lookup */
        on_resolved(res, 0, s);
        return;
    }
    int rc = dx__resolve_start(dx__stream_loop(s), alloc_of(s), host, port, on_resolved, s,
                               &c->resolving);
    if (rc < 0)
        dx__stream_fail(s, rc);
}

/* ---- the proxy's answer --------------------------------------------------------------- */

static void on_proxy_readable(dx_stream *s) {
    struct dx__connect *c = s->connect;
    if (!c->answer && !(c->answer = dx__alloc(alloc_of(s), PROXY_HEAD_MAX * 2))) {
        dx__stream_fail(s, DX_ENOMEM);
        return;
    }
    ssize_t n =
        dx__sock_recv(s->io.fd, c->answer + c->answer_len, PROXY_HEAD_MAX * 2 - c->answer_len);
    if (n == DX_EINCOMPLETE)
        return;
    if (n <= 0) {
        dx__stream_fail(s, n == 0 ? DX_EPROXY : (int)n);
        return;
    }
    c->answer_len += (size_t)n;
    size_t head_len;
    int rc = dx_http_scan_feed(&c->scan, c->answer, c->answer_len, &head_len);
    if (rc == DX_EINCOMPLETE)
        return;
    dx_http_header headers[DX_DEFAULT_MAX_HEADERS];
    dx_http_response resp;
    if (rc == 0)
        rc = dx_http_parse_response(c->answer, head_len, &resp, headers, DX_DEFAULT_MAX_HEADERS);
    if (rc < 0) {
        dx__stream_fail(s, rc);
        return;
    }
    if (resp.status < 200 || resp.status > 299) {
        c->proxy_status = resp.status; /* 407: credentials; 403, 502... */
        dx__stream_fail(s, DX_EPROXY);
        return;
    }
    /* the tunnel is up: what came after the head is already the server's (kept once
     * the connect state is gone, dx__connect_done) */
    c->tunnel_from = head_len;
    dx__stream_connected(s);
}

void dx__connect_on_io(dx_stream *s, unsigned events) {
    struct dx__connect *c = s->connect;
    if (c->stage == STAGE_CONNECTING) {
        int err = dx__sock_error(s->io.fd);
        if (err) {
            c->last_err = err;
            dx_io_close(dx__stream_loop(s), &s->io);
            s->io_events = 0;
            s->want_write = false;
            try_next_address(s);
        } else if (events & (DX_IO_WRITE | DX_IO_READ)) {
            tcp_connected(s);
        }
        return;
    }
    if (c->stage != STAGE_PROXY)
        return;
    if (c->request_sent < c->request_len) {
        dx_span rest = {c->request + c->request_sent, c->request_len - c->request_sent};
        ssize_t w = dx__sock_writev(s->io.fd, &rest, 1);
        if (w < 0) {
            dx__stream_fail(s, (int)w);
            return;
        }
        c->request_sent += (size_t)w;
        if (c->request_sent == c->request_len) {
            s->want_write = false;
            dx__stream_update_io(s);
        }
        return;
    }
    if (events & DX_IO_READ)
        on_proxy_readable(s);
}

/* ---- set-up and queries -------------------------------------------------------------- */

int dx__connect_start(dx_stream *s, const dx_connect_options *o) {
    if (!o->unix_path && (!o->host || !*o->host || !o->port))
        return DX_EINVAL;
    const dx_allocator *a = alloc_of(s);
    struct dx__connect *c = dx__calloc(a, sizeof(*c));
    if (!c)
        return DX_ENOMEM;
    s->connect = c;
    s->has_connect = true;
    c->port = o->port;
    if ((o->host && !(c->host = copy_str(a, o->host))) ||
        (o->unix_path && !(c->unix_path = copy_str(a, o->unix_path))) ||
        (o->server_name && !(c->server_name = copy_str(a, o->server_name))))
        return DX_ENOMEM;
    int rc = 0;
    if (!o->unix_path) {
        if (o->proxy && *o->proxy) {
            rc = dx__proxy_parse(o->proxy, &c->proxy);
            c->use_proxy = rc == 0;
        } else if (!o->proxy && !o->no_env_proxy) {
            rc = dx__proxy_from_env(o->tls != NULL, c->host, env_get, &c->proxy);
            c->use_proxy = rc == 1;
        }
        if (rc < 0)
            return rc;
    }
    if (o->tls)
        c->tls = dx_tls_ctx_ref(o->tls);
    return dx_loop_defer(dx__stream_loop(s), &c->begin, begin, s);
}

void dx__connect_cancel(dx_stream *s) {
    struct dx__connect *c = s->has_connect ? s->connect : NULL;
    if (!c)
        return;
    dx__resolve_cancel(c->resolving);
    c->resolving = NULL;
}

void dx__connect_free(dx_stream *s) {
    struct dx__connect *c = s->has_connect ? s->connect : NULL;
    if (!c)
        return;
    const dx_allocator *a = alloc_of(s);
    dx__connect_cancel(s);
    if (c->addrs)
        freeaddrinfo(c->addrs);
    if (c->answer)
        dx__free(a, c->answer, PROXY_HEAD_MAX * 2);
    free_str(a, c->host);
    free_str(a, c->unix_path);
    free_str(a, c->server_name);
    dx_tls_ctx_release(c->tls);
    dx__free(a, c, sizeof(*c));
    s->connect = NULL;
    s->has_connect = false;
}

int dx__connect_done(dx_stream *s) {
    struct dx__connect *c = s->has_connect ? s->connect : NULL;
    if (!c)
        return 0;
    uint8_t *answer = c->answer;
    size_t from = c->tunnel_from, len = c->answer_len;
    c->answer = NULL; /* kept alive through the free */
    dx__connect_free(s);
    int rc = 0;
    if (answer && len > from)
        rc = dx__stream_keep(s, answer + from, len - from);
    if (answer)
        dx__free(alloc_of(s), answer, PROXY_HEAD_MAX * 2);
    return rc;
}

const char *dx__connect_server_name(const dx_stream *s) {
    const struct dx__connect *c = s->connect;
    return c->server_name ? c->server_name : c->host;
}

uint16_t dx__connect_port(const dx_stream *s) {
    return s->connect->port;
}

dx_tls_ctx *dx__connect_tls(const dx_stream *s) {
    return s->has_connect ? s->connect->tls : NULL;
}

int dx__connect_proxy_status(const dx_stream *s) {
    return s->has_connect ? s->connect->proxy_status : 0;
}

int dx_stream_connect(dx_stream **out, dx_loop *loop, const dx_connect_options *opts,
                      const dx_stream_callbacks *cb, void *user) {
    if (!out || !loop || !opts || !cb)
        return DX_EINVAL;
    dx_stream *s = dx__stream_new(loop, opts->allocator, cb, &opts->stream);
    if (!s)
        return DX_ENOMEM;
    int rc = dx__stream_init_connect(s, loop, opts, s->cls, user);
    if (rc < 0) {
        dx__stream_delete(s);
        return rc;
    }
    *out = s;
    return 0;
}
