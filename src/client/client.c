/*
 * The client: the CONNECTING phase of a client connection -- name resolution off the
 * loop thread, a non-blocking connect trying each address in turn, an optional HTTP
 * CONNECT tunnel, the upgrade request and the checks on its answer (RFC 6455 §4.1).
 * From the 101 on, the connection layer (runtime/conn.c) takes over.
 */
#include "duplex/client.h"
#include "client/proxy.h"
#include "duplex/handshake.h"
#include "duplex/url.h"
#include "runtime/conn_internal.h"
#include "runtime/resolve.h"
#include "tls/tls.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define RESOURCE_MAX 8192

typedef enum stage {
    STAGE_WAITING = 0, /* a reconnection waiting for its delay */
    STAGE_RESOLVING,   /* waiting for the addresses */
    STAGE_CONNECTING,  /* connect() in progress */
    STAGE_PROXY,       /* CONNECT sent; waiting for the proxy's answer */
    STAGE_UPGRADE,     /* GET sent; waiting for the 101 */
} stage;

/* What every connection of one dx_client_connect shares, reconnections included. */
typedef struct client_config {
    unsigned refs; /* one per connection still allocated */
    dx_loop *loop;
    char *url;                 /* copied */
    dx_client_options opts;    /* copied; its pointers point to the copies below */
    char **protocols;          /* copies of the offered subprotocols */
    char *origin;              /* copy, or NULL */
    dx_http_header *headers;   /* copies; each name and value is its own allocation */
    char *proxy;               /* copy, or NULL */
    dx_conn_options conn;      /* with defaults */
    dx_conn_callbacks cb;      /* the application's, copied */
    dx__conn_class cls;        /* role, cb and conn, for every attempt */
    dx_tls_ctx *tls;           /* wss://: the verification setup, loaded once */
    dx_deflate_config deflate; /* permessage-deflate, when deflate_on */
    bool deflate_on;
    char deflate_offer[160]; /* its offer */
    void *user;              /* given to every connection */
} client_config;

/* One connection attempt. */
typedef struct client {
    client_config *cfg;
    unsigned attempt;                 /* consecutive reconnections before this one succeeded */
    bool opened;                      /* this attempt reached OPEN */
    dx_client_handshake hs;           /* key and expected accept */
    dx_request_options req;           /* what was offered, for the answer's checks */
    char host[DX_PROXY_HOST_MAX + 1]; /* the server's host, NUL-terminated */
    bool host_ipv6;
    uint16_t port;
    uint8_t *request; /* the upgrade request */
    size_t request_len;
    dx__proxy proxy;
    bool use_proxy;
    stage stage;
    dx__resolve *resolving;
    struct addrinfo *addrs; /* every address; next_addr is the next to try */
    struct addrinfo *next_addr;
    int last_err; /* why the last address failed */
    dx_http_scan scan;
    dx_defer start; /* begins after dx_client_connect returns */
} client;

static const dx_allocator *A(void) {
    return dx_allocator_default();
}

static client *client_of(const dx_conn *c) {
    return c->owner;
}

/* ---- connecting ---------------------------------------------------------------------- */

static void try_next_address(dx_conn *c);

static void queue_or_fail(dx_conn *c, const uint8_t *bytes, size_t len) {
    int rc = dx__conn_queue_raw(c, bytes, len);
    if (rc < 0)
        dx__conn_fail(c, rc);
}

/* The byte stream to the server is up (TCP, or the proxy's tunnel): TLS first for
 * wss://, then the upgrade request (it waits in raw until TLS is established). */
static void start_upgrade(dx_conn *c) {
    client *cl = client_of(c);
    cl->stage = STAGE_UPGRADE;
    if (cl->cfg->tls) {
        dx_tls_conn *t = NULL;
        int rc = dx__tls_conn_create(&t, cl->cfg->tls, cl->host, cl->port);
        if (rc == 0)
            rc = dx__conn_start_tls(c, t);
        else
            dx__tls_conn_destroy(t);
        if (rc < 0) {
            dx__conn_fail(c, rc);
            return;
        }
    }
    queue_or_fail(c, cl->request, cl->request_len);
}

static void connected(dx_conn *c) {
    client *cl = client_of(c);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->want_write = false;
    cl->scan = (dx_http_scan){.max_head = c->cls->opts->max_head};
    if (cl->use_proxy) {
        char buf[DX_PROXY_HOST_MAX * 2 + DX_PROXY_AUTH_MAX + 128];
        size_t len;
        if (dx__proxy_write_connect(&cl->proxy, cl->host, cl->host_ipv6, cl->port, buf, sizeof buf,
                                    &len) != 0) {
            dx__conn_fail(c, DX_EPROXY_URL);
            return;
        }
        cl->stage = STAGE_PROXY;
        queue_or_fail(c, (const uint8_t *)buf, len);
    } else {
        start_upgrade(c);
    }
}

static void try_next_address(dx_conn *c) {
    client *cl = client_of(c);
    while (cl->next_addr) {
        struct addrinfo *ai = cl->next_addr;
        cl->next_addr = ai->ai_next;
        int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            cl->last_err = -errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
            cl->last_err = -errno;
            close(fd);
            continue;
        }
        cl->stage = STAGE_CONNECTING;
        int rc = dx__conn_attach_fd(c, fd, true);
        if (rc < 0) {
            close(fd);
            c->fd = -1;
            cl->last_err = rc;
            continue;
        }
        return; /* writable = connected (or failed: SO_ERROR says) */
    }
    dx__conn_fail(c, cl->last_err ? cl->last_err : DX_ERESOLVE);
}

static void on_resolved(struct addrinfo *res, int err, void *user) {
    dx_conn *c = user;
    client *cl = client_of(c);
    cl->resolving = NULL;
    if (err) {
        dx__conn_fail(c, err);
        return;
    }
    cl->addrs = cl->next_addr = res;
    try_next_address(c);
}

static void begin(dx_defer *d, void *user) {
    (void)d;
    dx_conn *c = user;
    client *cl = client_of(c);
    if (c->phase != PHASE_HANDSHAKE || cl->stage != STAGE_RESOLVING)
        return; /* closed before it started */
    const char *host = cl->use_proxy ? cl->proxy.host : cl->host;
    uint16_t port = cl->use_proxy ? cl->proxy.port : cl->port;
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV},
                    *res;
    if (getaddrinfo(host, service, &hints, &res) == 0) { /* a literal: no lookup */
        on_resolved(res, 0, c);
        return;
    }
    int rc = dx__resolve_start(c->loop, host, port, on_resolved, c, &cl->resolving);
    if (rc < 0)
        dx__conn_fail(c, rc);
}

/* ---- the answers ------------------------------------------------------------------------ */

/* Read what arrived; returns the head length once a whole head is in in[], 0 while
 * incomplete, or a negative code (the connection is then failed). */
static ssize_t read_head(dx_conn *c) {
    client *cl = client_of(c);
    uint8_t *buf;
    ssize_t n = dx__conn_read(c, &buf);
    if (n == DX_EINCOMPLETE)
        return 0;
    if (n <= 0) {
        dx__conn_fail(c, n == 0 ? DX_EHANDSHAKE_EOF : (int)n);
        return -1;
    }
    size_t head_len;
    int rc = dx__conn_keep_input(c, buf, (size_t)n);
    if (rc == 0)
        rc = dx_http_scan_feed(&cl->scan, dx__conn_in(c), dx__conn_in_len(c), &head_len);
    if (rc == DX_EINCOMPLETE)
        return 0;
    if (rc < 0) {
        dx__conn_fail(c, rc);
        return -1;
    }
    return (ssize_t)head_len;
}

static void on_proxy_answer(dx_conn *c, size_t head_len) {
    client *cl = client_of(c);
    dx_http_header headers[DX_DEFAULT_MAX_HEADERS];
    dx_http_response resp;
    int rc =
        dx_http_parse_response(dx__conn_in(c), head_len, &resp, headers, DX_DEFAULT_MAX_HEADERS);
    if (rc < 0) {
        dx__conn_fail(c, rc);
        return;
    }
    if (resp.status < 200 || resp.status > 299) {
        c->http_status = (uint16_t)resp.status; /* 407: credentials; 403, 502... */
        dx__conn_fail(c, DX_EPROXY);
        return;
    }
    /* the tunnel is up: anything past the head already belongs to the server */
    dx__conn_drop_input(c, head_len);
    cl->scan = (dx_http_scan){.max_head = c->cls->opts->max_head};
    start_upgrade(c);
}

static void on_upgrade_answer(dx_conn *c, size_t head_len) {
    client *cl = client_of(c);
    dx_http_header headers[DX_DEFAULT_MAX_HEADERS];
    dx_http_response resp;
    dx_ws_response ws;
    int rc =
        dx_http_parse_response(dx__conn_in(c), head_len, &resp, headers, DX_DEFAULT_MAX_HEADERS);
    if (rc == 0) {
        c->http_status = (uint16_t)resp.status;
        rc = dx_handshake_check_response(&cl->hs, &cl->req, &resp, &ws);
    }
    dx_deflate_params params;
    bool pmd = false;
    if (rc == 0 && cl->cfg->deflate_on && ws.extensions.len) {
        dx_ext exts[DX_MAX_EXTENSIONS];
        dx_ext_param ext_params[DX_MAX_EXT_PARAMS];
        size_t n = 0, np = 0;
        rc = dx_ext_parse_value(ws.extensions, exts, DX_MAX_EXTENSIONS, &n, ext_params,
                                DX_MAX_EXT_PARAMS, &np);
        if (rc == 0)
            rc = dx_deflate_check_answer(&cl->cfg->deflate, exts, n, &params);
        pmd = rc == 0;
        if (rc == DX_EDEFLATE_NONE)
            rc = 0;
        else if (rc == DX_EHS_BAD_EXTENSIONS || rc == DX_EHS_TOO_MANY)
            rc = DX_EDEFLATE_BAD_ANSWER;
    }
    if (rc == 0)
        rc = dx__conn_set_info(c, ws.protocol, ws.extensions, cl->cfg->url);
    if (rc < 0) {
        dx__conn_fail(c, rc);
        return;
    }
    cl->opened = true;
    dx__conn_open(c, head_len, pmd ? &params : NULL, &cl->cfg->deflate);
}

static void client_on_io(dx_conn *c, unsigned events) {
    client *cl = client_of(c);
    if (cl->stage == STAGE_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        if (err) {
            cl->last_err = -err;
            dx__conn_detach_fd(c);
            try_next_address(c);
        } else if (events & (DX_IO_WRITE | DX_IO_READ)) {
            connected(c);
        }
        return;
    }
    if (!(events & DX_IO_READ) || cl->stage == STAGE_RESOLVING)
        return;
    ssize_t head_len = read_head(c);
    if (head_len <= 0)
        return;
    if (cl->stage == STAGE_PROXY)
        on_proxy_answer(c, (size_t)head_len);
    else
        on_upgrade_answer(c, (size_t)head_len);
}

static void client_on_timeout(dx_conn *c) {
    client *cl = client_of(c);
    if (cl->stage == STAGE_WAITING) { /* a reconnection's delay is over */
        cl->stage = STAGE_RESOLVING;
        dx_timer_start(c->loop, &c->timer, c->cls->opts->handshake_timeout_ms);
        begin(NULL, c);
        return;
    }
    bool connecting = cl->stage == STAGE_RESOLVING || cl->stage == STAGE_CONNECTING;
    dx__conn_fail(c, connecting ? DX_ECONNECT_TIMEOUT : DX_EHANDSHAKE_TIMEOUT);
}

static void client_on_finish(dx_conn *c) {
    client *cl = client_of(c);
    dx__resolve_cancel(cl->resolving);
    cl->resolving = NULL;
}

/* ---- the shared configuration ------------------------------------------------------------ */

static void config_unref(client_config *cfg) {
    if (!cfg || --cfg->refs > 0)
        return;
    free(cfg->url);
    for (size_t i = 0; i < cfg->opts.num_protocols; i++)
        free(cfg->protocols[i]);
    free(cfg->protocols);
    for (size_t i = 0; i < cfg->opts.num_headers; i++) {
        free((void *)cfg->headers[i].name.ptr);
        free((void *)cfg->headers[i].value.ptr);
    }
    free(cfg->headers);
    free(cfg->origin);
    free(cfg->proxy);
    dx__tls_ctx_destroy(cfg->tls);
    free(cfg);
}

static char *dup_span(dx_span s) {
    char *p = malloc(s.len + 1);
    if (p) {
        if (s.len)
            memcpy(p, s.ptr, s.len);
        p[s.len] = '\0';
    }
    return p;
}

/* Copy everything @o points to, so that reconnections can use it later. */
static int config_new(client_config **out, dx_loop *loop, const char *url,
                      const dx_client_options *o, const dx_conn_callbacks *cb, void *user) {
    client_config *cfg = calloc(1, sizeof(*cfg));
    if (!cfg)
        return DX_ENOMEM;
    cfg->refs = 1;
    cfg->loop = loop;
    cfg->opts = *o;
    cfg->opts.num_protocols = cfg->opts.num_headers = 0;
    cfg->user = user;
    if (cb)
        cfg->cb = *cb;
    dx__conn_options_resolve(&o->conn, &cfg->conn);
    if (!cfg->opts.reconnect_min_ms)
        cfg->opts.reconnect_min_ms = DX_DEFAULT_RECONNECT_MIN_MS;
    if (!cfg->opts.reconnect_max_ms)
        cfg->opts.reconnect_max_ms = DX_DEFAULT_RECONNECT_MAX_MS;
    int rc = DX_ENOMEM;
    if (!(cfg->url = strdup(url)) || (o->origin && !(cfg->origin = strdup(o->origin))) ||
        (o->proxy && !(cfg->proxy = strdup(o->proxy))))
        goto fail;
    cfg->opts.origin = cfg->origin;
    cfg->opts.proxy = cfg->proxy;
    if (o->num_protocols && !(cfg->protocols = calloc(o->num_protocols, sizeof(char *))))
        goto fail;
    for (; cfg->opts.num_protocols < o->num_protocols; cfg->opts.num_protocols++) {
        const char *p = o->protocols[cfg->opts.num_protocols];
        if (!p) {
            rc = DX_EINVAL;
            goto fail;
        }
        if (!(cfg->protocols[cfg->opts.num_protocols] = strdup(p)))
            goto fail;
    }
    cfg->opts.protocols = (const char *const *)cfg->protocols;
    if (o->num_headers && !(cfg->headers = calloc(o->num_headers, sizeof(dx_http_header))))
        goto fail;
    for (; cfg->opts.num_headers < o->num_headers; cfg->opts.num_headers++) {
        const dx_http_header *h = &o->headers[cfg->opts.num_headers];
        dx_http_header *d = &cfg->headers[cfg->opts.num_headers];
        if ((h->name.len && !h->name.ptr) || (h->value.len && !h->value.ptr)) {
            rc = DX_EINVAL;
            goto fail;
        }
        char *name = dup_span(h->name), *value = dup_span(h->value);
        d->name = (dx_span){(const uint8_t *)name, h->name.len};
        d->value = (dx_span){(const uint8_t *)value, h->value.len};
        if (!name || !value) {
            cfg->opts.num_headers++; /* so that both are freed */
            goto fail;
        }
    }
    cfg->opts.headers = cfg->headers;
    if (o->deflate) {
        size_t len;
        cfg->deflate = *o->deflate;
        cfg->deflate_on = true;
        rc = dx_deflate_write_offer(&cfg->deflate, cfg->deflate_offer, sizeof cfg->deflate_offer,
                                    &len);
        if (rc < 0)
            goto fail;
    }
    cfg->opts.deflate = NULL; /* the copy above is what counts */
    dx_url u;
    if (dx_url_parse(dx_span_cstr(url), &u) == 0 && u.secure &&
        (rc = dx__tls_ctx_create_client(&cfg->tls, o->tls)) < 0)
        goto fail;
    cfg->opts.tls = NULL;
    *out = cfg;
    return 0;
fail:
    config_unref(cfg);
    return rc;
}

/* ---- one attempt ------------------------------------------------------------------------- */

static void free_client(client *cl) {
    if (!cl)
        return;
    if (cl->addrs)
        freeaddrinfo(cl->addrs);
    free(cl->request);
    config_unref(cl->cfg);
    dx__free(A(), cl, sizeof(*cl));
}

static void client_release(dx_conn *c) {
    free_client(client_of(c));
    c->owner = NULL;
}

static const char *env_get(const char *name) {
    return getenv(name);
}

/* Write the request for this attempt (a fresh key each time; this also checks every
 * option) and choose the proxy. */
static int prepare(client *cl, const dx_url *url) {
    const dx_client_options *o = &cl->cfg->opts;
    size_t hlen;
    int rc = dx_url_write_host(url, cl->host, sizeof cl->host, &hlen);
    if (rc < 0)
        return rc == DX_ENOSPACE ? DX_EURL_HOST : rc;
    cl->host_ipv6 = url->host_kind == DX_URL_HOST_IPV6;
    cl->port = url->port;
    char resource[RESOURCE_MAX];
    size_t rlen;
    rc = dx_url_write_resource(url, resource, sizeof resource, &rlen);
    if (rc < 0)
        return rc == DX_ENOSPACE ? DX_EHS_BAD_URL : rc;
    cl->req =
        (dx_request_options){.host = cl->host,
                             .port = url->port,
                             .secure = url->secure,
                             .resource = resource,
                             .origin = o->origin,
                             .protocols = o->protocols,
                             .num_protocols = o->num_protocols,
                             .headers = o->headers,
                             .num_headers = o->num_headers,
                             .protocol_optional = o->protocol_optional,
                             .extensions = cl->cfg->deflate_on ? cl->cfg->deflate_offer : NULL};
    rc = dx_client_handshake_init(&cl->hs, NULL);
    size_t need = 0;
    if (rc == 0)
        rc = dx_handshake_write_request(&cl->hs, &cl->req, NULL, 0, &need);
    if (rc == DX_ENOSPACE) {
        cl->request = malloc(need);
        rc = cl->request ? dx_handshake_write_request(&cl->hs, &cl->req, cl->request, need,
                                                      &cl->request_len)
                         : DX_ENOMEM;
    }
    cl->req.resource = NULL; /* only protocols and extensions are read again */
    if (rc < 0)
        return rc;
    if (o->proxy && *o->proxy) {
        rc = dx__proxy_parse(o->proxy, &cl->proxy);
        cl->use_proxy = rc == 0;
    } else if (!o->proxy && !o->no_env_proxy) {
        rc = dx__proxy_from_env(url->secure, cl->host, env_get, &cl->proxy);
        cl->use_proxy = rc == 1;
    }
    return rc < 0 ? rc : 0;
}

static void client_after_close(dx_conn *c);

static const dx__conn_role client_role = {
    .on_io = client_on_io,
    .on_timeout = client_on_timeout,
    .on_finish = client_on_finish,
    .after_close = client_after_close,
    .release = client_release,
};

/* Create attempt number @attempt (0: the first), starting after @delay_ms (0: at the end of
 * this loop iteration). */
static int start_attempt(client_config *cfg, unsigned attempt, uint32_t delay_ms, dx_conn **out) {
    dx_url u;
    int rc = dx_url_parse(dx_span_cstr(cfg->url), &u);
    if (rc < 0)
        return rc;
    client *cl = dx__calloc(A(), sizeof(*cl));
    dx_conn *c = dx__calloc(A(), sizeof(*c));
    if (!cl || !c) {
        dx__free(A(), cl, sizeof(*cl));
        dx__free(A(), c, sizeof(*c));
        return DX_ENOMEM;
    }
    cl->cfg = cfg;
    cfg->refs++;
    cfg->cls = (dx__conn_class){&client_role, &cfg->cb, &cfg->conn};
    cl->attempt = attempt;
    rc = prepare(cl, &u);
    if (rc == 0)
        rc = dx__conn_init(c, cfg->loop, -1, DX_SIDE_CLIENT, &cfg->cls, cl, cfg->user);
    if (rc == 0)
        rc = dx__conn_set_info(c, (dx_span){0}, (dx_span){0}, cfg->url);
    if (rc < 0) {
        dx_timer_stop(cfg->loop, &c->timer);
        dx__free(A(), c, sizeof(*c));
        free_client(cl);
        return rc;
    }
    c->seen = true; /* the application holds it from now on: on_close is owed */
    if (delay_ms) {
        cl->stage = STAGE_WAITING;
        dx_timer_start(cfg->loop, &c->timer, delay_ms);
    } else {
        cl->stage = STAGE_RESOLVING;
        dx_loop_defer(cfg->loop, &cl->start, begin, c);
    }
    *out = c;
    return 0;
}

/* min * 2^(n-1), capped, times a random factor in [0.5, 1]. */
static uint32_t backoff_ms(const dx_client_options *o, unsigned n) {
    uint64_t d = o->reconnect_min_ms;
    for (unsigned i = 1; i < n && d < o->reconnect_max_ms; i++)
        d *= 2;
    if (d > o->reconnect_max_ms)
        d = o->reconnect_max_ms;
    uint32_t r = 0;
    dx_random_bytes((uint8_t *)&r, sizeof r);
    d = d / 2 + (d - d / 2) * r / UINT32_MAX;
    return d ? (uint32_t)d : 1;
}

static void client_after_close(dx_conn *c) {
    client *cl = client_of(c);
    client_config *cfg = cl->cfg;
    if (!cfg->opts.reconnect || c->app_closed)
        return;
    int st = c->http_status;
    if (c->error == DX_EHS_STATUS && st >= 400 && st < 500 && st != 408 && st != 429)
        return; /* a refusal that would come again */
    unsigned n = cl->opened ? 1 : cl->attempt + 1;
    if (cfg->opts.reconnect_max_attempts && n > cfg->opts.reconnect_max_attempts)
        return;
    uint32_t delay = backoff_ms(&cfg->opts, n);
    dx_conn *next;
    if (start_attempt(cfg, n, delay, &next) < 0)
        return; /* out of memory: nothing left to report to */
    if (cfg->opts.on_reconnect)
        cfg->opts.on_reconnect(next, n, delay, cfg->user);
}

/* ---- dx_client_connect --------------------------------------------------------------------- */

int dx_client_connect(dx_conn **out, dx_loop *loop, const char *url, const dx_client_options *opts,
                      const dx_conn_callbacks *cb, void *user) {
    static const dx_client_options no_opts;
    if (!out || !loop || !url)
        return DX_EINVAL;
    client_config *cfg;
    int rc = config_new(&cfg, loop, url, opts ? opts : &no_opts, cb, user);
    if (rc < 0)
        return rc;
    rc = start_attempt(cfg, 0, 0, out);
    config_unref(cfg); /* the attempt holds its own reference */
    return rc;
}
