/*
 * Listening: a TCP or Unix socket, accepted in batches (for fairness with the rest of
 * the loop), each accepted socket handed over as a dx_stream (public listeners) or as
 * a bare fd (the WebSocket server, which embeds the stream in its connection). When
 * the process runs out of descriptors, accepting pauses for ACCEPT_RETRY_MS instead of
 * spinning on a listening socket that stays readable.
 */
#include "runtime/listener.h"

#include "runtime/sock.h"
#include "runtime/stream_internal.h"

#include <errno.h>

#define ACCEPT_BATCH 64     /* sockets accepted per wake-up */
#define ACCEPT_RETRY_MS 100 /* pause after EMFILE and the like */
#define DEFAULT_BACKLOG 511 /* as nginx */

struct dx_listener {
    dx_loop *loop;
    const dx_allocator *alloc;
    dx_io io;                 /* the listening socket */
    dx_timer retry;           /* after EMFILE */
    uint16_t port;            /* bound */
    char *unix_path;          /* copied; unlinked at destroy */
    dx_tls_ctx *tls;          /* a reference, or NULL */
    dx_stream_options stream; /* for public accepted streams */
    dx_accept_cb on_accept;   /* public: a stream */
    dx__accept_fd_cb on_fd;   /* internal: the fd */
    void *user;
    bool paused;    /* dx_listener_pause */
    bool destroyed; /* dx_listener_destroy: freed at the end of the iteration */
    dx_defer free_defer;
};

static void accept_stream(dx_listener *l, int fd) {
    dx_stream *s = dx__stream_new(l->loop, l->alloc, NULL, &l->stream);
    if (!s) {
        dx__sock_close(fd);
        return;
    }
    if (dx__stream_init_idle(s, l->loop, fd, l->tls, s->cls, NULL, l->alloc) != 0) {
        dx__stream_delete(s);
        return;
    }
    l->on_accept(l, s, l->user);
    if (!s->started && s->state != ST_DEAD)
        dx__stream_fail(s, DX_ESTATE); /* neither started nor closed: it would leak */
}

static void resume_io(dx_listener *l) {
    if (l->destroyed || l->paused || dx_io_is_active(&l->io) || dx_timer_is_active(&l->retry))
        return;
    dx_io_start(l->loop, &l->io, DX_IO_READ);
}

static void on_retry(dx_timer *t, void *user) {
    (void)t;
    resume_io(user);
}

static void on_listen_io(dx_io *w, unsigned events, void *user) {
    (void)w;
    (void)events;
    dx_listener *l = user;
    for (int i = 0; i < ACCEPT_BATCH && !l->destroyed && !l->paused; i++) {
        int fd = dx__sock_accept(dx_io_fd(&l->io));
        if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
            /* out of descriptors: retry soon instead of spinning on the ready socket */
            dx_io_stop(l->loop, &l->io);
            dx_timer_start(l->loop, &l->retry, ACCEPT_RETRY_MS);
            return;
        }
        if (fd < 0)
            return; /* -EAGAIN: the backlog is empty */
        if (l->on_fd)
            l->on_fd(l, fd, l->user);
        else
            accept_stream(l, fd);
    }
}

static void free_listener(dx_defer *d, void *user) {
    (void)d;
    dx_listener *l = user;
    if (l->unix_path)
        dx__free(l->alloc, l->unix_path, strlen(l->unix_path) + 1);
    dx_tls_ctx_release(l->tls);
    dx__free(l->alloc, l, sizeof(*l));
}

int dx__listener_create(dx_listener **out, dx_loop *loop, const dx_listen_options *o,
                        dx_accept_cb on_accept, dx__accept_fd_cb on_fd, void *user) {
    if (!out || !loop || !o || (!on_accept && !on_fd))
        return DX_EINVAL;
    const dx_allocator *a = dx__allocator_or_default(o->allocator);
    dx_listener *l = dx__calloc(a, sizeof(*l));
    if (!l)
        return DX_ENOMEM;
    l->loop = loop;
    l->alloc = a;
    l->stream = o->stream;
    l->on_accept = on_accept;
    l->on_fd = on_fd;
    l->user = user;
    dx_timer_init(&l->retry, on_retry, l);
    int backlog = o->backlog > 0 ? o->backlog : DEFAULT_BACKLOG;
    int fd;
    if (o->unix_path) {
        size_t n = strlen(o->unix_path) + 1;
        if (!(l->unix_path = dx__alloc(a, n))) {
            free_listener(NULL, l);
            return DX_ENOMEM;
        }
        memcpy(l->unix_path, o->unix_path, n);
        fd = dx__sock_listen_unix(o->unix_path, backlog);
    } else {
        fd = dx__sock_listen_tcp(o->host, o->port, o->reuse_port, backlog, &l->port);
    }
    if (fd < 0) {
        if (l->unix_path) { /* nothing was bound: do not unlink what another owns */
            dx__free(a, l->unix_path, strlen(l->unix_path) + 1);
            l->unix_path = NULL;
        }
        free_listener(NULL, l);
        return fd;
    }
    dx_io_init(&l->io, fd, on_listen_io, l);
    int rc = dx_io_start(loop, &l->io, DX_IO_READ);
    if (rc < 0) {
        dx_io_close(loop, &l->io);
        if (l->unix_path)
            dx__sock_unlink_unix(l->unix_path);
        free_listener(NULL, l);
        return rc;
    }
    if (o->tls)
        l->tls = dx_tls_ctx_ref(o->tls);
    *out = l;
    return 0;
}

int dx_listener_create(dx_listener **out, dx_loop *loop, const dx_listen_options *opts,
                       dx_accept_cb on_accept, void *user) {
    if (!on_accept)
        return DX_EINVAL;
    return dx__listener_create(out, loop, opts, on_accept, NULL, user);
}

uint16_t dx_listener_port(const dx_listener *l) {
    return l->port;
}

void dx_listener_pause(dx_listener *l) {
    if (!l || l->destroyed)
        return;
    l->paused = true;
    dx_io_stop(l->loop, &l->io);
}

void dx_listener_resume(dx_listener *l) {
    if (!l || !l->paused)
        return;
    l->paused = false;
    resume_io(l);
}

void dx_listener_destroy(dx_listener *l) {
    if (!l || l->destroyed)
        return;
    l->destroyed = true;
    dx_timer_stop(l->loop, &l->retry);
    dx_io_close(l->loop, &l->io);
    if (l->unix_path)
        dx__sock_unlink_unix(l->unix_path);
    dx_loop_defer(l->loop, &l->free_defer, free_listener, l);
}
