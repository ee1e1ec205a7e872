/*
 * How a stream comes to be: the public API's own streams (dx__stream_new), accepted
 * sockets (started at once for the WebSocket server, or by dx_stream_start for a
 * public listener), connecting streams, and the end of connecting (TLS, or open).
 * The engine that reads, writes and closes them is stream.c.
 */
#include "runtime/stream_internal.h"

#include "runtime/sock.h"
#include "tls/tls.h"

/* A stream of the public API and the class it owns. */
typedef struct pub_stream {
    dx_stream s; /* first: the stream is the allocation */
    dx__stream_class cls;
    const dx_allocator *alloc;
} pub_stream;

void dx__stream_delete(dx_stream *s) {
    pub_stream *p = (pub_stream *)s;
    dx__free(p->alloc, p, sizeof(*p));
}

dx_stream *dx__stream_new(dx_loop *loop, const dx_allocator *a, const dx_stream_callbacks *cb,
                          const dx_stream_options *opts) {
    a = dx__allocator_or_default(a);
    pub_stream *p = dx__calloc(a, sizeof(*p));
    if (!p)
        return NULL;
    p->alloc = a;
    dx__stream_class_init(&p->cls, loop, cb, opts, dx__stream_delete);
    p->s.cls = &p->cls;
    return &p->s;
}

/* ---- options ----------------------------------------------------------------- */

void dx__stream_class_init(dx__stream_class *cls, dx_loop *loop, const dx_stream_callbacks *cb,
                           const dx_stream_options *opts, void (*release)(dx_stream *s)) {
    static const dx_stream_options zero;
    memset(cls, 0, sizeof(*cls));
    cls->loop = loop;
    if (cb)
        cls->cb = *cb;
    cls->opts = opts ? *opts : zero;
    if (!cls->opts.max_buffered)
        cls->opts.max_buffered = DX_DEFAULT_MAX_BUFFERED;
    if (!cls->opts.low_water)
        cls->opts.low_water = DX_DEFAULT_LOW_WATER;
    if (cls->opts.low_water > cls->opts.max_buffered)
        cls->opts.low_water = cls->opts.max_buffered;
    if (!cls->opts.linger_ms)
        cls->opts.linger_ms = DX_DEFAULT_LINGER_MS;
    cls->release = release;
}

/* ---- opening ---------------------------------------------------------------------- */

void dx__stream_connected(dx_stream *s) {
    dx__sock_nodelay(s->io.fd);
    dx__sock_sndbuf(s->io.fd, s->cls->opts.sndbuf);
    dx_tls_ctx *ctx = dx__connect_tls(s);
    int rc = 0;
    if (ctx) { /* the engine takes what it needs from the connect state: name, port */
        rc = dx__tls_conn_create(&s->tls, ctx, dx__connect_server_name(s), dx__connect_port(s));
        if (rc == 0 && (rc = dx__tls_handshake(s->tls)) == DX_EINCOMPLETE) /* the ClientHello */
            rc = 0;
    }
    if (rc == 0)
        rc = dx__connect_done(s); /* the union now holds the kept input */
    if (rc < 0) {
        dx__stream_fail(s, rc);
        return;
    }
    if (!ctx || dx__tls_is_established(s->tls)) { /* TLS cannot be done before an answer */
        dx__stream_become_open(s);
        return;
    }
    s->state = ST_HANDSHAKE;
    dx__stream_want_flush(s);
    dx__stream_update_io(s);
}

static int init_accepted(dx_stream *s, dx_loop *loop, int fd, dx_tls_ctx *tls,
                         const dx__stream_class *cls, void *user, const dx_allocator *a) {
    int rc = dx__stream_init_common(s, loop, fd, cls, user, a);
    if (rc == 0 && tls)
        rc = dx__tls_conn_create(&s->tls, tls, NULL, 0);
    if (rc < 0) {
        dx__sock_close(fd);
        s->io.fd = -1;
        return rc;
    }
    s->state = tls ? ST_HANDSHAKE : ST_NEW;
    return 0;
}

/* Start reading: plain streams open at once, TLS ones once the handshake is done.
 * Returns 0 or -errno (epoll) with nothing started. */
static int start_reading(dx_stream *s) {
    int rc = dx_io_start(dx__stream_loop(s), &s->io, DX_IO_READ);
    if (rc < 0)
        return rc;
    s->started = true;
    s->io_events = DX_IO_READ;
    if (!s->tls)
        dx__stream_become_open(s);
    return 0;
}

int dx__stream_init_idle(dx_stream *s, dx_loop *loop, int fd, dx_tls_ctx *tls,
                         const dx__stream_class *cls, void *user, const dx_allocator *a) {
    return init_accepted(s, loop, fd, tls, cls, user, a);
}

int dx__stream_init_accepted(dx_stream *s, dx_loop *loop, int fd, dx_tls_ctx *tls,
                             const dx__stream_class *cls, void *user, const dx_allocator *a) {
    int rc = init_accepted(s, loop, fd, tls, cls, user, a);
    if (rc == 0 && (rc = start_reading(s)) < 0) {
        dx__tls_conn_destroy(s->tls);
        s->tls = NULL;
        dx_io_close(loop, &s->io);
    }
    return rc;
}

int dx_stream_start(dx_stream *s, const dx_stream_callbacks *cb, void *user) {
    if (!s || !cb)
        return DX_EINVAL;
    if (s->started || s->state == ST_DEAD)
        return DX_ESTATE;
    /* a public accepted stream owns its class (listener.c): its callbacks go there */
    dx__stream_class *cls = (dx__stream_class *)s->cls;
    cls->cb = *cb;
    s->user = user;
    int rc = start_reading(s);
    if (rc < 0)
        dx__stream_fail(s, rc);
    return rc;
}

int dx__stream_init_unconnected(dx_stream *s, dx_loop *loop, const dx__stream_class *cls,
                                void *user, const dx_allocator *a) {
    int rc = dx__stream_init_common(s, loop, -1, cls, user, a);
    if (rc == 0)
        s->started = true; /* owned: nothing to start later */
    return rc;
}

int dx__stream_connect(dx_stream *s, const dx_connect_options *o) {
    if (s->state != ST_NEW || s->io.fd >= 0)
        return DX_ESTATE;
    s->state = ST_CONNECTING;
    int rc = dx__connect_start(s, o);
    if (rc < 0) {
        dx__connect_free(s);
        s->state = ST_NEW;
        return rc;
    }
    uint32_t t = o->timeout_ms ? o->timeout_ms : DX_DEFAULT_CONNECT_TIMEOUT_MS;
    s->owner_timer = false;
    if (t != DX_NEVER)
        dx_timer_start(dx__stream_loop(s), &s->timer, t);
    else
        dx_timer_stop(dx__stream_loop(s), &s->timer);
    return 0;
}

int dx__stream_init_connect(dx_stream *s, dx_loop *loop, const dx_connect_options *o,
                            const dx__stream_class *cls, void *user) {
    int rc = dx__stream_init_unconnected(s, loop, cls, user, o->allocator);
    if (rc == 0 && (rc = dx__stream_connect(s, o)) < 0)
        dx_outq_deinit(&s->out);
    return rc;
}
