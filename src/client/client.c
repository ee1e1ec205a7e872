/*
 * The client: the CONNECTING phase of a client connection. The stream layer resolves
 * the name off the loop thread, connects to each address in turn, through an HTTP
 * CONNECT tunnel if one applies, and speaks TLS for wss://; this file sends the
 * upgrade request once the stream is open and checks the answer (RFC 6455 §4.1).
 * From the 101 on, the connection layer (src/conn/) takes over. Reconnection with
 * backoff is here too: a new attempt is a new connection.
 */
#include "duplex/client.h"

#include "conn/conn_internal.h"
#include "duplex/handshake.h"
#include "duplex/url.h"
#include "runtime/proxy.h"

#define RESOURCE_MAX 8192

typedef enum stage {
    STAGE_WAITING = 0, /* a reconnection waiting for its delay */
    STAGE_CONNECTING,  /* the stream connects (resolve, connect, proxy, TLS) */
    STAGE_UPGRADE,     /* GET sent; waiting for the 101 */
} stage;

/* What every connection of one dx_client_connect shares, reconnections included. */
typedef struct client_config {
    unsigned refs; /* one per connection still allocated */
    dx_loop *loop;
    char *url;                 /* copied */
    dx_client_options opts;    /* copied; its pointers point to the copies below */
    char **protocols;          /* copies of the offered subprotocols */
    size_t protocols_cap;      /* entries allocated in protocols */
    char *origin;              /* copy, or NULL */
    dx_http_header *headers;   /* copies; each name and value is its own allocation */
    size_t headers_cap;        /* entries allocated in headers */
    char *proxy;               /* copy, or NULL */
    dx_conn_options conn;      /* with defaults */
    dx_conn_callbacks cb;      /* the application's, copied */
    dx__conn_class cls;        /* role, cb and conn, for every attempt */
    dx_tls_ctx *tls;           /* wss://: the verification setup, loaded once */
    dx_deflate_config deflate; /* permessage-deflate, when deflate_on */
    bool deflate_on;
    char deflate_offer[160];   /* its offer */
    void *user;                /* given to every connection */
    const dx_allocator *alloc; /* this, and the connections' memory */
} client_config;

/* One connection attempt. */
typedef struct client {
    client_config *cfg;
    unsigned attempt;                 /* consecutive reconnections before this one succeeded */
    bool opened;                      /* this attempt reached OPEN */
    dx_client_handshake hs;           /* key and expected accept */
    dx_request_options req;           /* what was offered, for the answer's checks */
    char host[DX_PROXY_HOST_MAX + 1]; /* the server's host, NUL-terminated */
    uint16_t port;
    uint8_t *request; /* the upgrade request */
    size_t request_len, request_cap;
    stage stage;
    dx_http_scan scan;
} client;

static client *client_of(const dx_conn *c) {
    return c->owner;
}

/* ---- connecting ---------------------------------------------------------------------- */

/* Connect the stream. Returns 0 or a negative code (a malformed proxy URL, from the
 * option or the environment), with no callback called. */
static int connect_stream(dx_conn *c) {
    client *cl = client_of(c);
    client_config *cfg = cl->cfg;
    dx_connect_options o = {.host = cl->host,
                            .port = cl->port,
                            .proxy = cfg->opts.proxy,
                            .no_env_proxy = cfg->opts.no_env_proxy,
                            .tls = cfg->tls,
                            .timeout_ms = DX_NEVER, /* the handshake timeout covers it */
                            .allocator = cfg->alloc};
    cl->stage = STAGE_CONNECTING;
    return dx__conn_connect(c, &o);
}

/* The stream is up (through the proxy, TLS done): send the upgrade request. */
static void client_on_open(dx_conn *c) {
    client *cl = client_of(c);
    cl->stage = STAGE_UPGRADE;
    cl->scan = (dx_http_scan){.max_head = dx__conn_opts(c)->limits.max_head};
    int rc = dx__conn_send_raw(c, cl->request, cl->request_len);
    if (rc < 0)
        dx__conn_fail(c, rc);
}

/* ---- the answer ------------------------------------------------------------------------- */

/* Check the answer's head (@head_len bytes at @head) and open. Returns 0 or the
 * failure (the connection is then failed). */
static int on_upgrade_answer(dx_conn *c, const uint8_t *head, size_t head_len) {
    client *cl = client_of(c);
    dx_http_header headers[DX_DEFAULT_MAX_HEADERS];
    dx_http_response resp;
    dx_ws_response ws;
    int rc = dx_http_parse_response(head, head_len, &resp, headers, DX_DEFAULT_MAX_HEADERS);
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
        return rc;
    }
    cl->opened = true;
    return dx__conn_open(c, pmd ? &params : NULL, &cl->cfg->deflate);
}

/* The answer's head, read as it comes (the stream keeps what is not consumed); the
 * frames right behind it go to the connection once it is open. */
static size_t client_on_data(dx_conn *c, uint8_t *data, size_t len) {
    client *cl = client_of(c);
    if (cl->stage != STAGE_UPGRADE)
        return len; /* nothing was asked yet: a server that talks first is ignored */
    size_t head_len;
    int rc = dx_http_scan_feed(&cl->scan, data, len, &head_len);
    if (rc == DX_EINCOMPLETE)
        return 0;
    if (rc < 0) {
        dx__conn_fail(c, rc);
        return len;
    }
    if (on_upgrade_answer(c, data, head_len) < 0 || c->phase != PHASE_OPEN)
        return len;
    return head_len + dx__conn_deliver(c, data + head_len, len - head_len);
}

static void client_on_timeout(dx_conn *c) {
    client *cl = client_of(c);
    if (cl->stage == STAGE_WAITING) { /* a reconnection's delay is over */
        int rc = connect_stream(c);
        if (rc < 0)
            dx__conn_fail(c, rc);
        return;
    }
    bool connecting = c->stream.state == ST_CONNECTING; /* TLS counts as the handshake */
    dx__conn_fail(c, connecting ? DX_ECONNECT_TIMEOUT : DX_EHANDSHAKE_TIMEOUT);
}

static void client_on_eof(dx_conn *c) {
    dx__conn_fail(c, DX_EHANDSHAKE_EOF);
}

/* ---- the shared configuration ------------------------------------------------------------ */

static char *str_dup(const dx_allocator *a, dx_span s) {
    char *p = dx__alloc(a, s.len + 1);
    if (p) {
        if (s.len)
            memcpy(p, s.ptr, s.len);
        p[s.len] = '\0';
    }
    return p;
}

static void str_free(const dx_allocator *a, const char *p, size_t len) {
    if (p)
        dx__free(a, (void *)p, len + 1);
}

static void config_unref(client_config *cfg) {
    if (!cfg || --cfg->refs > 0)
        return;
    const dx_allocator *a = cfg->alloc;
    str_free(a, cfg->url, strlen(cfg->url));
    for (size_t i = 0; i < cfg->opts.num_protocols; i++)
        str_free(a, cfg->protocols[i], strlen(cfg->protocols[i]));
    dx__free(a, cfg->protocols, cfg->protocols_cap * sizeof(char *));
    for (size_t i = 0; i < cfg->opts.num_headers; i++) {
        str_free(a, (const char *)cfg->headers[i].name.ptr, cfg->headers[i].name.len);
        str_free(a, (const char *)cfg->headers[i].value.ptr, cfg->headers[i].value.len);
    }
    dx__free(a, cfg->headers, cfg->headers_cap * sizeof(dx_http_header));
    if (cfg->origin)
        str_free(a, cfg->origin, strlen(cfg->origin));
    if (cfg->proxy)
        str_free(a, cfg->proxy, strlen(cfg->proxy));
    dx_tls_ctx_release(cfg->tls);
    dx__free(a, cfg, sizeof(*cfg));
}

/* Copy everything @o points to, so that reconnections can use it later. */
static int config_new(client_config **out, dx_loop *loop, const char *url,
                      const dx_client_options *o, const dx_conn_callbacks *cb, void *user) {
    const dx_allocator *a = o->allocator ? o->allocator : dx_loop_allocator(loop);
    client_config *cfg = dx__calloc(a, sizeof(*cfg));
    if (!cfg)
        return DX_ENOMEM;
    cfg->refs = 1;
    cfg->loop = loop;
    cfg->alloc = a;
    cfg->opts = *o;
    cfg->opts.num_protocols = cfg->opts.num_headers = 0;
    cfg->opts.origin = cfg->opts.proxy = NULL;
    cfg->opts.conn.compression.deflate = NULL;
    cfg->opts.tls = NULL;
    cfg->user = user;
    if (cb)
        cfg->cb = *cb;
    dx__conn_options_resolve(&o->conn, &cfg->conn);
    dx_reconnect *r = &cfg->opts.reconnect;
    if (!r->min_ms)
        r->min_ms = DX_DEFAULT_RECONNECT_MIN_MS;
    if (!r->max_ms)
        r->max_ms = DX_DEFAULT_RECONNECT_MAX_MS;
    int rc = DX_ENOMEM;
    if (!(cfg->url = str_dup(a, dx_span_cstr(url))) ||
        (o->origin && !(cfg->origin = str_dup(a, dx_span_cstr(o->origin)))) ||
        (o->proxy && !(cfg->proxy = str_dup(a, dx_span_cstr(o->proxy)))))
        goto fail;
    cfg->opts.origin = cfg->origin;
    cfg->opts.proxy = cfg->proxy;
    if (o->num_protocols) {
        if (!(cfg->protocols = dx__calloc(a, o->num_protocols * sizeof(char *))))
            goto fail;
        cfg->protocols_cap = o->num_protocols;
    }
    for (; cfg->opts.num_protocols < o->num_protocols; cfg->opts.num_protocols++) {
        const char *p = o->protocols[cfg->opts.num_protocols];
        if (!p) {
            rc = DX_EINVAL;
            goto fail;
        }
        if (!(cfg->protocols[cfg->opts.num_protocols] = str_dup(a, dx_span_cstr(p))))
            goto fail;
    }
    cfg->opts.protocols = (const char *const *)cfg->protocols;
    if (o->num_headers) {
        if (!(cfg->headers = dx__calloc(a, o->num_headers * sizeof(dx_http_header))))
            goto fail;
        cfg->headers_cap = o->num_headers;
    }
    for (; cfg->opts.num_headers < o->num_headers; cfg->opts.num_headers++) {
        const dx_http_header *h = &o->headers[cfg->opts.num_headers];
        dx_http_header *d = &cfg->headers[cfg->opts.num_headers];
        if ((h->name.len && !h->name.ptr) || (h->value.len && !h->value.ptr)) {
            rc = DX_EINVAL;
            goto fail;
        }
        char *name = str_dup(a, h->name), *value = str_dup(a, h->value);
        d->name = (dx_span){(const uint8_t *)name, h->name.len};
        d->value = (dx_span){(const uint8_t *)value, h->value.len};
        if (!name || !value) {
            cfg->opts.num_headers++; /* so that both are freed */
            goto fail;
        }
    }
    cfg->opts.headers = cfg->headers;
    if (o->conn.compression.deflate) {
        size_t len;
        cfg->deflate = *o->conn.compression.deflate;
        cfg->deflate_on = true;
        rc = dx_deflate_write_offer(&cfg->deflate, cfg->deflate_offer, sizeof cfg->deflate_offer,
                                    &len);
        if (rc < 0)
            goto fail;
    }
    cfg->conn.compression.deflate = cfg->deflate_on ? &cfg->deflate : NULL; /* our copy */
    dx_url u;
    if (dx_url_parse(dx_span_cstr(url), &u) == 0 && u.secure &&
        (rc = dx_tls_ctx_create_client(&cfg->tls, o->tls)) < 0)
        goto fail;
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
    const dx_allocator *a = cl->cfg->alloc;
    dx__free(a, cl->request, cl->request_cap);
    config_unref(cl->cfg);
    dx__free(a, cl, sizeof(*cl));
}

static void client_release(dx_conn *c) {
    free_client(client_of(c));
    c->owner = NULL;
}

/* Write the request for this attempt (a fresh key each time; this also checks every
 * option). */
static int prepare(client *cl, const dx_url *url) {
    const dx_client_options *o = &cl->cfg->opts;
    size_t hlen;
    int rc = dx_url_write_host(url, cl->host, sizeof cl->host, &hlen);
    if (rc < 0)
        return rc == DX_ENOSPACE ? DX_EURL_HOST : rc;
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
        cl->request = dx__alloc(cl->cfg->alloc, need);
        cl->request_cap = cl->request ? need : 0;
        rc = cl->request ? dx_handshake_write_request(&cl->hs, &cl->req, cl->request, need,
                                                      &cl->request_len)
                         : DX_ENOMEM;
    }
    cl->req.resource = NULL; /* only protocols and extensions are read again */
    return rc;
}

static void client_after_close(dx_conn *c);

static const dx__conn_role client_role = {
    .on_data = client_on_data,
    .on_open = client_on_open,
    .on_timeout = client_on_timeout,
    .on_eof = client_on_eof,
    .after_close = client_after_close,
    .release = client_release,
};

/* Create attempt number @attempt (0: the first), connecting after @delay_ms (0: at
 * once; the stream's connect reports back in a later iteration, never here). */
static int start_attempt(client_config *cfg, unsigned attempt, uint32_t delay_ms, dx_conn **out) {
    dx_url u;
    int rc = dx_url_parse(dx_span_cstr(cfg->url), &u);
    if (rc < 0)
        return rc;
    const dx_allocator *a = cfg->alloc;
    client *cl = dx__calloc(a, sizeof(*cl));
    dx_conn *c = dx__calloc(a, sizeof(*c));
    if (!cl || !c) {
        dx__free(a, cl, sizeof(*cl));
        dx__free(a, c, sizeof(*c));
        return DX_ENOMEM;
    }
    cl->cfg = cfg;
    cfg->refs++;
    dx__conn_class_init(&cfg->cls, cfg->loop, &client_role, &cfg->cb, &cfg->conn);
    cl->attempt = attempt;
    rc = prepare(cl, &u);
    bool set_up = false;
    if (rc == 0 && (rc = dx__conn_init_client(c, cfg->loop, &cfg->cls, cl, cfg->user, a)) == 0)
        set_up = true;
    if (rc == 0)
        rc = dx__conn_set_info(c, (dx_span){0}, (dx_span){0}, cfg->url);
    if (rc == 0 && delay_ms) {
        cl->stage = STAGE_WAITING;
        dx_stream_set_timeout(&c->stream, delay_ms);
    } else if (rc == 0) {
        rc = connect_stream(c);
    }
    if (rc < 0) { /* nothing was reported: undo quietly */
        if (set_up)
            dx__conn_discard(c);
        else
            dx__free(a, c, sizeof(*c));
        free_client(cl);
        return rc;
    }
    c->seen = true; /* the application holds it from now on: on_close is owed */
    *out = c;
    return 0;
}

/* min * 2^(n-1), capped, times a random factor in [0.5, 1]. */
static uint32_t backoff_ms(const dx_reconnect *o, unsigned n) {
    uint64_t d = o->min_ms;
    for (unsigned i = 1; i < n && d < o->max_ms; i++)
        d *= 2;
    if (d > o->max_ms)
        d = o->max_ms;
    uint32_t r = 0;
    dx_random_bytes((uint8_t *)&r, sizeof r);
    d = d / 2 + (d - d / 2) * r / UINT32_MAX;
    return d ? (uint32_t)d : 1;
}

static void client_after_close(dx_conn *c) {
    client *cl = client_of(c);
    client_config *cfg = cl->cfg;
    if (!cfg->opts.reconnect.enabled || c->app_closed)
        return;
    int st = c->http_status;
    if (c->stream.error == DX_EHS_STATUS && st >= 400 && st < 500 && st != 408 && st != 429)
        return; /* a refusal that would come again */
    unsigned n = cl->opened ? 1 : cl->attempt + 1;
    if (cfg->opts.reconnect.max_attempts && n > cfg->opts.reconnect.max_attempts)
        return;
    uint32_t delay = backoff_ms(&cfg->opts.reconnect, n);
    dx_conn *next;
    if (start_attempt(cfg, n, delay, &next) < 0)
        return; /* out of memory: nothing left to report to */
    if (cfg->cb.on_reconnect)
        cfg->cb.on_reconnect(next, n, delay, cfg->user);
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
