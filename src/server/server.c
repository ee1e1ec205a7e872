/*
 * The server: a listener (runtime/listener.c), the server side of the opening
 * handshake (the request head, checked; the application's upgrade decision; the 101
 * or a refusal), the list of connections (broadcast, shutdown), and graceful
 * shutdown. Everything after the 101 is the connection layer's (src/conn/).
 */
#include "duplex/server.h"

#include "conn/conn_internal.h"
#include "runtime/listener.h"
#include "runtime/sock.h"

#define RESPONSE_STACK 1024 /* most handshake answers fit on the stack */

/* Where a connection's request head stands while it is CONNECTING. */
typedef enum pending {
    PENDING_NONE = 0, /* still reading the head */
    PENDING_UPGRADE,  /* on_upgrade called; waiting for accept or reject */
    PENDING_HTTP,     /* on_http called; waiting for respond */
} pending;

/* A parsed request head with a copy of its bytes (the spans point there), so it
 * outlives the read it came in: it exists from the head's last byte to the decision
 * (usually within one callback). */
typedef struct server_request {
    dx_http_request req;
    dx_ws_request ws;
    dx_http_header headers[DX_DEFAULT_MAX_HEADERS];
    bool pmd; /* permessage-deflate can be agreed: */
    dx_deflate_params pmd_params;
    char pmd_answer[160]; /* its Sec-WebSocket-Extensions answer */
    size_t head_len;
    uint8_t head[]; /* head_len bytes */
} server_request;

/* The handshake state of one connection, freed once it opens or is refused. Small:
 * a server holds one per connection still sending its head. */
typedef struct server_hs {
    dx_http_scan scan;
    pending pending;
    server_request *r; /* once the head is complete */
} server_hs;

struct dx_server {
    dx_loop *loop;
    dx_listener *listener;     /* NULL once closed */
    uint16_t port;             /* the bound port (0 for Unix) */
    const dx_allocator *alloc; /* the server's and its connections' */
    dx_server_options opts;    /* copied */
    dx_conn_callbacks cb;      /* copied: every connection's, on_upgrade and on_http */
    void *user;                /* given to on_upgrade, on_http, and every connection */
    dx_conn_options conn_opts; /* opts.conn with defaults */
    dx__conn_class cls;        /* what every connection shares */
    dx_tls_ctx *tls;           /* wss, or NULL */
    dx_deflate_config deflate; /* permessage-deflate, when deflate_on */
    bool deflate_on;
    char **protocols;      /* opts.protocols copied: the pointers, then the strings */
    size_t protocols_size; /* bytes of that block */
    dx_conn *conns;        /* every connection, opening or open */
    size_t num_conns;
    bool accept_paused; /* at max_connections */
    bool shutting_down;
    bool destroyed;
    dx_timer shutdown_timer; /* the bound on a graceful shutdown */
    void (*done)(dx_server *s, void *user);
    void *done_user;
    dx_defer free_defer;
};

/* ---- the handshake role ------------------------------------------------------------ */

static server_hs *hs_of(const dx_conn *c) {
    return c->role_data;
}

static void drop_hs(dx_conn *c) {
    server_hs *hs = c->role_data;
    if (!hs)
        return;
    const dx_allocator *a = dx__conn_alloc(c);
    if (hs->r)
        dx__free(a, hs->r, sizeof(server_request) + hs->r->head_len);
    dx__free(a, hs, sizeof(server_hs));
    c->role_data = NULL;
}

/* Send an HTTP answer, then end the connection once it is written. */
static int queue_answer(dx_conn *c, const uint8_t *bytes, size_t len) {
    int rc = dx__conn_send_raw(c, bytes, len);
    if (rc < 0) {
        dx__conn_fail(c, rc);
        return rc;
    }
    drop_hs(c);
    dx__conn_end_after_raw(c);
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
    c->seen = true; /* from here the application holds it: on_close is owed */
    if (!dx_http_header_has_token(hs->r->req.headers, hs->r->req.num_headers, "Upgrade",
                                  "websocket")) {
        hs->pending = PENDING_HTTP;
        if (s->cb.on_http)
            s->cb.on_http(c, &hs->r->req, s->user);
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
    if (s->cb.on_upgrade) {
        s->cb.on_upgrade(c, &hs->r->ws, s->user);
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
    dx_conn_accept(c, &accept, s->user);
}

/* The request head, read as it comes (the stream keeps what is not consumed), then
 * the decision; the frames that came right behind the head go to the connection once
 * it is open. */
static size_t server_on_data(dx_conn *c, uint8_t *data, size_t len) {
    server_hs *hs = hs_of(c);
    if (!hs || hs->pending != PENDING_NONE)
        return 0; /* a decision is pending: the bytes wait */
    size_t head_len;
    /* the scan refuses a head past max_head, so what waits stays under max_head plus
     * one read */
    int rc = dx_http_scan_feed(&hs->scan, data, len, &head_len);
    if (rc == DX_EINCOMPLETE)
        return 0;
    if (rc == 0) {
        hs->r = dx__alloc(dx__conn_alloc(c), sizeof(server_request) + head_len);
        if (!hs->r) {
            dx__conn_fail(c, DX_ENOMEM);
            return len;
        }
        hs->r->head_len = head_len;
        memcpy(hs->r->head, data, head_len);
        rc = dx_http_parse_request(hs->r->head, head_len, &hs->r->req, hs->r->headers,
                                   DX_DEFAULT_MAX_HEADERS);
    }
    if (rc != 0) {
        refuse(c, rc);
        return len;
    }
    decide(c, c->owner);
    if (c->phase == PHASE_OPEN) /* accepted at once: on to the frames */
        return head_len + dx__conn_deliver(c, data + head_len, len - head_len);
    if (c->phase == PHASE_HANDSHAKE) /* decided later: hold the rest, watch for EOF */
        dx__conn_hold_input(c, true);
    return c->phase == PHASE_HANDSHAKE ? head_len : len;
}

static void server_on_timeout(dx_conn *c) {
    dx__conn_fail(c, DX_EHANDSHAKE_TIMEOUT);
}

static void server_on_eof(dx_conn *c) {
    dx__conn_fail(c, DX_EHANDSHAKE_EOF);
}

static void resume_accepting(dx_server *s) {
    if (s->accept_paused && s->listener &&
        (!s->opts.max_connections || s->num_conns < s->opts.max_connections)) {
        s->accept_paused = false;
        dx_listener_resume(s->listener);
    }
}

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
    .on_data = server_on_data,
    .on_timeout = server_on_timeout,
    .on_eof = server_on_eof,
    .on_finish = server_on_finish,
    .release = server_release,
};

static bool is_server_conn(const dx_conn *c) {
    return c && dx__conn_class_of(c)->role == &server_role;
}

/* ---- the upgrade decision ------------------------------------------------------------ */

int dx_conn_accept(dx_conn *c, const dx_accept_options *opts, void *user) {
    if (!is_server_conn(c) || !hs_of(c) || hs_of(c)->pending != PENDING_UPGRADE ||
        c->phase != PHASE_HANDSHAKE)
        return DX_ESTATE;
    server_hs *hs = hs_of(c);
    const dx_allocator *a = dx__conn_alloc(c);
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
        buf = dx__alloc(a, need);
        rc = buf ? dx_handshake_write_accept(&hs->r->ws, opts, buf, need, &len) : DX_ENOMEM;
    }
    if (rc == 0)
        rc = dx__conn_set_info(c, opts->protocol, opts->extensions, NULL);
    if (rc == 0)
        rc = dx__conn_send_raw(c, buf, len);
    if (buf != stack)
        dx__free(a, buf, need);
    if (rc == DX_EINVAL)
        return rc; /* the application's options: it may decide again */
    if (rc < 0) {
        dx__conn_fail(c, rc);
        return rc;
    }
    dx_deflate_params params = hs->r->pmd_params;
    drop_hs(c);
    c->stream.user = user;
    dx_server *s = c->owner;
    rc = dx__conn_open(c, pmd ? &params : NULL, &s->deflate);
    if (rc == 0 && c->hs_paused) /* decided later: the frames that waited come next */
        dx__conn_hold_input(c, false);
    return rc;
}

int dx_conn_respond(dx_conn *c, int status, const dx_http_header *headers, size_t num_headers,
                    dx_span body) {
    if (!is_server_conn(c) || !hs_of(c) || hs_of(c)->pending == PENDING_NONE ||
        c->phase != PHASE_HANDSHAKE)
        return DX_ESTATE;
    if (status < 200 || status > 599)
        return DX_EINVAL;
    uint8_t stack[RESPONSE_STACK];
    size_t len;
    int rc = dx_http_write_response(stack, sizeof stack, &len, status, headers, num_headers, body);
    if (rc == 0)
        return queue_answer(c, stack, len);
    if (rc != DX_ENOSPACE)
        return rc;
    size_t need = len;
    const dx_allocator *a = dx__conn_alloc(c);
    uint8_t *buf = dx__alloc(a, need);
    if (!buf) {
        dx__conn_fail(c, DX_ENOMEM);
        return DX_ENOMEM;
    }
    rc = dx_http_write_response(buf, need, &len, status, headers, num_headers, body);
    if (rc == 0)
        rc = queue_answer(c, buf, len);
    dx__free(a, buf, need);
    return rc;
}

dx_server *dx_conn_server(const dx_conn *c) {
    return is_server_conn(c) ? c->owner : NULL;
}

/* ---- accepting ----------------------------------------------------------------------- */

static void on_accepted(dx_listener *l, int fd, void *user) {
    dx_server *s = user;
    dx_conn *c = dx__calloc(s->alloc, sizeof(*c));
    server_hs *hs = dx__calloc(s->alloc, sizeof(*hs));
    if (!c || !hs) {
        dx__free(s->alloc, c, sizeof(*c));
        dx__free(s->alloc, hs, sizeof(*hs));
        dx__sock_close(fd);
        return;
    }
    hs->scan.max_head = s->conn_opts.limits.max_head;
    c->role_data = hs;
    if (dx__conn_init_accepted(c, s->loop, fd, s->tls, &s->cls, s, s->user, s->alloc) != 0) {
        dx__free(s->alloc, hs, sizeof(*hs));
        dx__free(s->alloc, c, sizeof(*c));
        return;
    }
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->num_conns++;
    if (s->opts.max_connections && s->num_conns >= s->opts.max_connections) {
        s->accept_paused = true; /* the rest wait in the backlog */
        dx_listener_pause(l);
    }
}

/* ---- the server --------------------------------------------------------------------- */

/* Copy @n strings into one block: the pointers, then the strings. */
static char **copy_list(const dx_allocator *a, const char *const *in, size_t n, size_t *size) {
    size_t total = n * sizeof(char *);
    for (size_t i = 0; i < n; i++)
        total += strlen(in[i]) + 1;
    char **out = dx__alloc(a, total);
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
    dx_tls_ctx_release(s->tls); /* connections still alive hold their own reference */
    dx__free(s->alloc, s->protocols, s->protocols_size);
    dx__free(s->alloc, s, sizeof(*s));
}

int dx_server_create(dx_server **out, dx_loop *loop, const dx_server_options *opts,
                     const dx_conn_callbacks *cb, void *user) {
    if (!out || !loop || !opts)
        return DX_EINVAL;
    const dx_allocator *a = opts->allocator ? opts->allocator : dx_loop_allocator(loop);
    dx_server *s = dx__calloc(a, sizeof(*s));
    if (!s)
        return DX_ENOMEM;
    s->loop = loop;
    s->alloc = a;
    s->opts = *opts;
    s->opts.host = s->opts.unix_path = NULL; /* the listener keeps what it needs */
    s->opts.tls = NULL;
    s->opts.protocols = NULL;
    if (cb)
        s->cb = *cb;
    s->user = user;
    dx__conn_options_resolve(&opts->conn, &s->conn_opts);
    const dx_deflate_config *deflate = opts->conn.compression.deflate;
    if (deflate) {
        s->deflate = *deflate;
        s->deflate_on = true;
    }
    s->conn_opts.compression.deflate = s->deflate_on ? &s->deflate : NULL; /* our copy */
    s->opts.conn.compression.deflate = NULL;
    dx__conn_class_init(&s->cls, loop, &server_role, &s->cb, &s->conn_opts);
    char offer[160];
    size_t offer_len;
    int rc = DX_EINVAL; /* window bits or levels out of range */
    if (s->deflate_on && dx_deflate_write_offer(&s->deflate, offer, sizeof offer, &offer_len) != 0)
        goto fail;
    if (opts->num_protocols && !opts->protocols)
        goto fail;
    for (size_t i = 0; i < opts->num_protocols; i++)
        if (!opts->protocols[i])
            goto fail;
    if (opts->tls && (rc = dx_tls_ctx_create_server(&s->tls, opts->tls)) < 0)
        goto fail;
    rc = DX_ENOMEM;
    if (opts->num_protocols &&
        !(s->protocols = copy_list(a, opts->protocols, opts->num_protocols, &s->protocols_size)))
        goto fail;
    s->opts.protocols = (const char *const *)s->protocols;
    dx_listen_options lo = {.host = opts->host,
                            .port = opts->port,
                            .unix_path = opts->unix_path,
                            .reuse_port = opts->reuse_port,
                            .backlog = opts->backlog,
                            .allocator = a};
    rc = dx__listener_create(&s->listener, loop, &lo, NULL, on_accepted, s);
    if (rc < 0)
        goto fail;
    s->port = dx_listener_port(s->listener);
    *out = s;
    return 0;
fail:
    free_server(NULL, s);
    return rc;
}

uint16_t dx_server_port(const dx_server *s) {
    return s->port;
}

size_t dx_server_connections(const dx_server *s) {
    return s->num_conns;
}

int dx_server_broadcast(dx_server *s, dx_prepared *m, size_t *sent) {
    if (sent)
        *sent = 0;
    if (!s || !m)
        return DX_EINVAL;
    size_t count = 0;
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
    if (sent)
        *sent = count;
    return failure;
}

static void stop_listening(dx_server *s) {
    dx_listener_destroy(s->listener);
    s->listener = NULL;
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
