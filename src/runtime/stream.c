/*
 * The stream: reading into the loop's shared buffer, writing a segment queue with
 * one writev per loop iteration, backpressure, pause, half-close, close and linger,
 * the timer, and the end (include/duplex/stream.h). Setting up is stream_open.c,
 * connecting stream_connect.c, TLS stream_tls.c, listening listener.c.
 *
 * What the stream layer keeps per loop (dx_loop_data under stream_key): the 64 KiB
 * read buffer every stream of the loop shares (and one for TLS ciphertext), the list
 * of streams with output to write before the loop waits (the cork), and the list of
 * streams that finished in this iteration, freed at its end.
 */
#include "runtime/stream_internal.h"

#include "runtime/sock.h"
#include "tls/tls.h"

#include <errno.h>

#define READ_BUFFER ((size_t)64 << 10)
#define FLUSH_BUDGET 4096 /* streams written per hook pass before the loop polls */

typedef struct stream_loop {
    const dx_allocator *alloc; /* the loop's */
    uint8_t *read_buf;         /* READ_BUFFER bytes, shared; made on first read */
    uint8_t *cipher_buf;       /* TLS ciphertext reads, same size */
    dx_stream *flush_head;     /* streams with output to write before the wait */
    dx_hook flush_hook;        /* writes them */
    dx_stream *dead_head;      /* streams that finished in this iteration */
    dx_defer reap;             /* frees them at its end; also keeps the next wait
                                  from blocking when a flush pass left work behind */
} stream_loop;

static void destroy_loop_state(dx_loop *l, void *data) {
    (void)l;
    stream_loop *sl = data;
    dx__free(sl->alloc, sl->read_buf, READ_BUFFER);
    dx__free(sl->alloc, sl->cipher_buf, READ_BUFFER);
    dx__free(sl->alloc, sl, sizeof(*sl));
}

static const dx_loop_key stream_key = {destroy_loop_state};

static stream_loop *loop_state(dx_loop *l) {
    return dx_loop_data(l, &stream_key);
}

/* The loop's state, made with its first stream. NULL when out of memory. */
static stream_loop *loop_state_make(dx_loop *l) {
    stream_loop *sl = loop_state(l);
    if (sl)
        return sl;
    const dx_allocator *a = dx_loop_allocator(l);
    sl = dx__calloc(a, sizeof(*sl));
    if (!sl)
        return NULL;
    sl->alloc = a;
    if (dx_loop_set_data(l, &stream_key, sl) != 0) {
        dx__free(a, sl, sizeof(*sl));
        return NULL;
    }
    return sl;
}

static const dx_allocator *alloc_of(const dx_stream *s) {
    return s->out.alloc;
}

static const dx_stream_options *opts_of(const dx_stream *s) {
    return &s->cls->opts;
}

/* ---- the flush list and the watcher ----------------------------------------------- */

static void flush_hook(dx_loop *l, dx_hook *h, void *user);

void dx__stream_want_flush(dx_stream *s) {
    if (s->on_flush_list || s->state == ST_DEAD)
        return;
    stream_loop *sl = loop_state(dx__stream_loop(s));
    s->on_flush_list = true;
    s->prev = NULL;
    s->next = sl->flush_head;
    if (sl->flush_head)
        sl->flush_head->prev = s;
    sl->flush_head = s;
    if (!sl->flush_hook.active) {
        dx_hook_init(&sl->flush_hook, flush_hook, sl);
        dx_hook_start(dx__stream_loop(s), &sl->flush_hook);
    }
}

static void unlist_flush(dx_stream *s) {
    if (!s->on_flush_list)
        return;
    if (s->prev)
        s->prev->next = s->next;
    else
        loop_state(dx__stream_loop(s))->flush_head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->next = s->prev = NULL;
    s->on_flush_list = false;
}

size_t dx_stream_buffered(const dx_stream *s) {
    return dx_outq_len(&s->out) + dx__stream_tls_pending_out(s);
}

/* Something can be written now: ciphertext, or plaintext once the stream is up. */
static bool can_write(const dx_stream *s) {
    if (dx__stream_tls_pending_out(s))
        return true;
    if (s->state != ST_OPEN && s->state != ST_CLOSING)
        return false;
    return dx_outq_len(&s->out) > 0;
}

static bool reading(const dx_stream *s) {
    switch ((dx__stream_state)s->state) {
    case ST_HANDSHAKE:
        return true;
    case ST_OPEN:
        return !s->eof && (!s->paused || (s->eof_watch && !s->peeked));
    case ST_CLOSING:
        return !s->eof; /* drain what the peer still sends, and see its FIN */
    default:
        return false;
    }
}

void dx__stream_update_io(dx_stream *s) {
    if (s->state == ST_DEAD || s->io.fd < 0 || (s->state == ST_NEW && !s->started))
        return;
    unsigned want = 0;
    if (s->state == ST_CONNECTING)
        want = s->want_write ? DX_IO_WRITE : DX_IO_READ; /* the proxy's answer */
    else if (reading(s))
        want |= DX_IO_READ;
    if (can_write(s))
        want |= DX_IO_WRITE;
    if (want == s->io_events)
        return;
    int rc = 0;
    if (!want)
        dx_io_stop(dx__stream_loop(s), &s->io);
    else if (!s->io_events)
        rc = dx_io_start(dx__stream_loop(s), &s->io, want);
    else
        rc = dx_io_modify(dx__stream_loop(s), &s->io, want);
    if (rc == 0)
        s->io_events = (uint8_t)want;
}

/* ---- the end ------------------------------------------------------------------------ */

static void free_internals(dx_stream *s) {
    const dx_allocator *a = alloc_of(s);
    dx__connect_free(s);
    dx__tls_conn_destroy(s->tls);
    s->tls = NULL;
    dx_outq_deinit(&s->out);
    if (dx__stream_kept(s))
        dx__free(a, s->in, sizeof(dx__kept) + s->in->cap);
    s->in = NULL;
}

/* End of the iteration: free the streams that finished in it. */
static void reap(dx_defer *d, void *user) {
    (void)d;
    stream_loop *sl = user;
    while (sl->dead_head) {
        dx_stream *s = sl->dead_head;
        sl->dead_head = s->next;
        free_internals(s);
        s->cls->release(s);
    }
}

static void queue_reap(stream_loop *sl, dx_loop *l) {
    if (!dx_defer_is_queued(&sl->reap))
        dx_loop_defer(l, &sl->reap, reap, sl);
}

/* The single exit: close the socket, tell the owner once, free later. */
static void finish(dx_stream *s, int err) {
    if (s->state == ST_DEAD)
        return;
    if (s->tls && s->io.fd >= 0) {
        /* a graceful close says so (close_notify); an abort or a failure does not */
        if (!err && s->state == ST_CLOSING && !s->shut_done && dx__tls_is_established(s->tls))
            dx__tls_shutdown(s->tls);
        /* that, or the alert saying why it failed: best effort, the socket closes */
        dx__stream_tls_send(s);
    }
    if (!s->error)
        s->error = err;
    s->state = ST_DEAD;
    dx_io_close(dx__stream_loop(s), &s->io); /* closes the socket too */
    s->io_events = 0;
    dx_timer_stop(dx__stream_loop(s), &s->timer);
    unlist_flush(s);
    dx__connect_cancel(s); /* freed with the rest: the owner may ask the proxy's status */
    stream_loop *sl = loop_state(dx__stream_loop(s));
    s->next = sl->dead_head;
    sl->dead_head = s;
    queue_reap(sl, dx__stream_loop(s));
    if (s->cls->cb.on_close)
        s->cls->cb.on_close(s, s->error, s->user);
}

void dx__stream_fail(dx_stream *s, int err) {
    finish(s, err ? err : DX_ECLOSED);
}

void dx_stream_abort(dx_stream *s, int err) {
    if (s)
        finish(s, err);
}

/* Our side is done sending: close_notify (TLS), then FIN. */
static void send_fin(dx_stream *s) {
    if (s->tls) {
        dx__tls_shutdown(s->tls);
        dx__stream_tls_send(s);
    }
    dx__sock_shutdown_write(s->io.fd);
    s->shut_done = true;
}

/* Closing: the output is out; end as the close mode says. */
static void end_closing(dx_stream *s) {
    if (s->close_mode == DX_STREAM_CLOSE_NOW || s->eof) {
        finish(s, 0);
        return;
    }
    s->lingering = true;
    if (s->close_mode == DX_STREAM_CLOSE_LINGER && !s->shut_done)
        send_fin(s);
    dx__stream_update_io(s); /* now reading for the FIN only */
}

void dx_stream_close(dx_stream *s, dx_stream_close_mode how) {
    if (!s || s->state == ST_DEAD || s->state == ST_CLOSING)
        return;
    if (s->state != ST_OPEN || s->io.fd < 0) { /* nothing to say goodbye to */
        finish(s, 0);
        return;
    }
    s->state = ST_CLOSING;
    s->close_mode = (uint8_t)how;
    s->paused = false;
    s->owner_timer = false;
    /* writing the rest and waiting for the peer are bounded together */
    dx_timer_start(dx__stream_loop(s), &s->timer, opts_of(s)->linger_ms);
    dx__stream_want_flush(s);
}

/* ---- writing -------------------------------------------------------------------------- */

#define MAX_SPANS 64

/* Write what the socket takes of the queue. Returns 0 or -errno. */
static int write_plain(dx_stream *s) {
    dx_span v[MAX_SPANS];
    while (dx_outq_len(&s->out)) {
        size_t n = dx_outq_spans(&s->out, v, MAX_SPANS);
        ssize_t w = dx__sock_writev(s->io.fd, v, n);
        if (w < 0)
            return (int)w;
        if (w == 0)
            break; /* the socket is full: EPOLLOUT says when to go on */
        dx_outq_consume(&s->out, (size_t)w);
    }
    return 0;
}

static void flush(dx_stream *s) {
    if (s->state == ST_DEAD || s->io.fd < 0)
        return;
    int rc = 0;
    if (s->tls)
        rc = dx__stream_tls_flush(s); /* handshake messages too, before OPEN */
    else if (s->state == ST_OPEN || s->state == ST_CLOSING)
        rc = write_plain(s);
    if (rc < 0) {
        finish(s, rc);
        return;
    }
    if (!dx_stream_buffered(s)) {
        if (s->state == ST_CLOSING && !s->lingering) {
            end_closing(s);
            return;
        }
        if (s->shut_wanted && !s->shut_done && s->state == ST_OPEN)
            send_fin(s);
    }
    dx__stream_update_io(s);
    if (s->drain_wanted && s->state == ST_OPEN && dx_stream_buffered(s) <= opts_of(s)->low_water) {
        s->drain_wanted = false;
        if (s->cls->cb.on_drain)
            s->cls->cb.on_drain(s, s->user);
    }
}

void dx__stream_flush_now(dx_stream *s) {
    flush(s);
}

static void deliver_kept(dx_stream *s);
static void on_readable(dx_stream *s);

static void flush_hook(dx_loop *l, dx_hook *h, void *user) {
    stream_loop *sl = user;
    for (int budget = FLUSH_BUDGET; sl->flush_head && budget > 0; budget--) {
        dx_stream *s = sl->flush_head;
        unlist_flush(s);
        if (s->redeliver && !s->paused && s->state == ST_OPEN)
            deliver_kept(s);
        if (s->tls_more && reading(s) && s->state != ST_DEAD)
            on_readable(s); /* what TLS holds, as if epoll said so */
        flush(s);
    }
    if (sl->flush_head)
        queue_reap(sl, l); /* work is left: the next wait must not block */
    else
        dx_hook_stop(l, h);
}

/* Room under the cap for @n more bytes, or the policy's answer. */
static int admit(dx_stream *s, size_t n) {
    if (s->state == ST_DEAD || s->state == ST_CLOSING || s->shut_wanted)
        return DX_ECLOSED;
    size_t queued = dx_stream_buffered(s), cap = opts_of(s)->max_buffered;
    if (queued <= cap && n <= cap - queued)
        return 0;
    s->drain_wanted = true;
    if (opts_of(s)->backpressure == DX_BP_CLOSE)
        finish(s, DX_ESEND_QUEUE);
    return DX_ESEND_QUEUE;
}

static int written(dx_stream *s) {
    if (dx_stream_buffered(s) > opts_of(s)->low_water)
        s->drain_wanted = true;
    dx__stream_want_flush(s);
    return 0;
}

int dx_stream_write(dx_stream *s, dx_span data) {
    if (!s || (!data.ptr && data.len))
        return DX_EINVAL;
    int rc = admit(s, data.len);
    if (rc < 0)
        return rc;
    rc = dx_outq_append(&s->out, data);
    return rc < 0 ? rc : written(s);
}

int dx_stream_write_shared(dx_stream *s, dx_shared *buf, size_t off, size_t len) {
    if (!s || !buf)
        return DX_EINVAL;
    dx_span d = dx_shared_data(buf);
    if (off > d.len || len > d.len - off)
        return DX_EINVAL;
    int rc = admit(s, len);
    if (rc < 0)
        return rc;
    rc = dx_outq_append_shared(&s->out, buf, off, len);
    return rc < 0 ? rc : written(s);
}

void dx_stream_shutdown(dx_stream *s) {
    if (!s || s->shut_wanted || s->state == ST_DEAD || s->state == ST_CLOSING)
        return;
    s->shut_wanted = true;
    dx__stream_want_flush(s);
}

/* ---- reading -------------------------------------------------------------------------- */

static int keep(dx_stream *s, const uint8_t *p, size_t n) {
    size_t have = s->in ? s->in->len : 0;
    if (!s->in || have + n > s->in->cap) {
        size_t cap = s->in ? s->in->cap : 256;
        while (cap < have + n)
            cap = cap > SIZE_MAX / 4 ? have + n : cap * 2;
        dx__kept *k = dx__alloc(alloc_of(s), sizeof(dx__kept) + cap);
        if (!k)
            return DX_ENOMEM;
        k->cap = cap;
        k->len = have;
        if (have)
            memcpy(k->data, s->in->data, have);
        if (s->in)
            dx__free(alloc_of(s), s->in, sizeof(dx__kept) + s->in->cap);
        s->in = k;
    }
    if (n)
        memcpy(s->in->data + have, p, n);
    s->in->len = have + n;
    return 0;
}

int dx__stream_keep(dx_stream *s, const uint8_t *p, size_t n) {
    int rc = keep(s, p, n);
    if (rc == 0 && n)
        s->redeliver = true;
    return rc;
}

static void drop_kept(dx_stream *s, size_t n) {
    dx__kept *k = s->in;
    if (n >= k->len) {
        dx__free(alloc_of(s), k, sizeof(dx__kept) + k->cap);
        s->in = NULL;
        return;
    }
    memmove(k->data, k->data + n, k->len - n);
    k->len -= n;
}

/* Offer @len bytes at @p (the read buffer, or the kept input itself) to on_data, again
 * and again while it consumes some (it may take them a piece at a time); keep what it
 * leaves when it stops: it needs more input, or it paused. */
static void offer(dx_stream *s, uint8_t *p, size_t len) {
    bool from_kept = dx__stream_kept(s) && p == s->in->data;
    size_t off = 0;
    while (off < len && !s->paused) {
        size_t used =
            s->cls->cb.on_data ? s->cls->cb.on_data(s, p + off, len - off, s->user) : len - off;
        if (s->state != ST_OPEN && s->state != ST_CLOSING)
            return; /* closed or failed meanwhile: the rest no longer matters */
        if (!used)
            break;
        off += used < len - off ? used : len - off;
    }
    if (from_kept) {
        drop_kept(s, off);
        return;
    }
    if (off < len && keep(s, p + off, len - off) != 0)
        finish(s, DX_ENOMEM);
}

/* The peer's end, once the bytes before it were consumed. */
static void report_eof(dx_stream *s) {
    s->eof_reported = true;
    if (s->cls->cb.on_eof)
        s->cls->cb.on_eof(s, s->user);
    else
        dx_stream_close(s, DX_STREAM_CLOSE_NOW);
}

static bool has_kept(const dx_stream *s) {
    return dx__stream_kept(s) && s->in->len;
}

static void deliver_kept(dx_stream *s) {
    s->redeliver = false;
    if (dx__stream_kept(s))
        offer(s, s->in->data, s->in->len);
    /* then the end, even when the owner left bytes it can do nothing with now */
    if (s->eof && !s->eof_reported && s->state == ST_OPEN && !s->paused)
        report_eof(s);
}

static ssize_t read_some(dx_stream *s, uint8_t **buf) {
    stream_loop *sl = loop_state(dx__stream_loop(s));
    if (!sl->read_buf && !(sl->read_buf = dx__alloc(sl->alloc, READ_BUFFER)))
        return DX_ENOMEM;
    *buf = sl->read_buf;
    if (!s->tls)
        return dx__sock_recv(s->io.fd, sl->read_buf, READ_BUFFER);
    if (!sl->cipher_buf && !(sl->cipher_buf = dx__alloc(sl->alloc, READ_BUFFER)))
        return DX_ENOMEM;
    s->tls_more = false;
    return dx__stream_tls_read(s, sl->read_buf, READ_BUFFER, sl->cipher_buf);
}

static void peer_finished(dx_stream *s) {
    s->eof = true;
    if (s->state == ST_CLOSING) {
        if (s->lingering || !dx_stream_buffered(s))
            finish(s, 0);
        else
            dx__stream_update_io(s); /* still writing (a half-closed peer may read) */
        return;
    }
    if (s->state != ST_OPEN) {
        finish(s, s->state == ST_HANDSHAKE ? DX_ETLS_HANDSHAKE : -ECONNRESET);
        return;
    }
    dx__stream_update_io(s);
    if (s->paused)
        return; /* the resume offers what waits, then reports the end */
    if (has_kept(s))
        deliver_kept(s); /* what waits goes first; then the end */
    else
        report_eof(s);
}

/* Paused with eof_watch: is the peer gone? Bytes that wait are left in the kernel. */
static void watch_eof(dx_stream *s) {
    int rc = dx__sock_peek(s->io.fd);
    if (rc == DX_EINCOMPLETE)
        return;
    if (rc < 0) {
        finish(s, rc);
    } else if (rc == 0) {
        s->eof = true;
        dx__stream_update_io(s);
        if (s->cls->cb.on_eof)
            s->cls->cb.on_eof(s, s->user);
    } else {
        s->peeked = true; /* stop watching, or the loop would spin */
        dx__stream_update_io(s);
    }
}

static void on_readable(dx_stream *s) {
    if (s->paused && s->state == ST_OPEN) {
        watch_eof(s);
        return;
    }
    uint8_t *buf;
    ssize_t n = read_some(s, &buf);
    if (s->state == ST_HANDSHAKE && s->tls && dx__tls_is_established(s->tls))
        dx__stream_become_open(s);
    if (n == DX_EINCOMPLETE || s->state == ST_DEAD)
        return;
    if (n < 0) {
        finish(s, (int)n);
        return;
    }
    if (n == 0) {
        peer_finished(s);
        return;
    }
    if (s->state == ST_CLOSING)
        return;        /* after our close: the peer's bytes no longer matter */
    if (has_kept(s)) { /* keep order behind what waits already */
        if (keep(s, buf, (size_t)n) != 0) {
            finish(s, DX_ENOMEM);
            return;
        }
        if (!s->paused)
            deliver_kept(s);
        return;
    }
    offer(s, buf, (size_t)n);
}

static void on_io(dx_io *w, unsigned events, void *user) {
    (void)w;
    dx_stream *s = user;
    if (s->state == ST_CONNECTING) {
        dx__connect_on_io(s, events);
        return;
    }
    if (events & DX_IO_WRITE)
        flush(s);
    if ((events & DX_IO_READ) && s->state != ST_DEAD)
        on_readable(s);
}

/* ---- opening and the timer ------------------------------------------------------- */

void dx__stream_become_open(dx_stream *s) {
    s->state = ST_OPEN;
    if (!s->owner_timer)
        dx_timer_stop(dx__stream_loop(s), &s->timer); /* the connect bound is over */
    dx__stream_update_io(s);
    if (dx_outq_len(&s->out))
        dx__stream_want_flush(s); /* written before it opened */
    if (has_kept(s)) {
        s->redeliver = true;
        dx__stream_want_flush(s);
    }
    if (s->cls->cb.on_open)
        s->cls->cb.on_open(s, s->user);
}

static void on_timer(dx_timer *t, void *user) {
    (void)t;
    dx_stream *s = user;
    if (s->state == ST_CLOSING) { /* the peer took too long: what was written is out */
        finish(s, dx_stream_buffered(s) ? DX_ECLOSE_TIMEOUT : 0);
        return;
    }
    if (!s->owner_timer) { /* the connect bound (connecting or TLS) */
        finish(s, DX_ECONNECT_TIMEOUT);
        return;
    }
    s->owner_timer = false;
    if (s->cls->cb.on_timeout)
        s->cls->cb.on_timeout(s, s->user);
    else
        finish(s, DX_ETIMEOUT);
}

/* What every set-up shares. */
int dx__stream_init_common(dx_stream *s, dx_loop *loop, int fd, const dx__stream_class *cls,
                           void *user, const dx_allocator *a) {
    if (!loop_state_make(loop))
        return DX_ENOMEM;
    s->cls = cls; /* the loop is the class's (cls->loop == @loop) */
    (void)loop;
    s->user = user;
    dx_outq_init(&s->out, a ? a : dx_loop_allocator(loop));
    dx_io_init(&s->io, fd, on_io, s);
    if (fd >= 0)
        dx__sock_sndbuf(fd, cls->opts.sndbuf);
    dx_timer_init(&s->timer, on_timer, s);
    return 0;
}

int dx__stream_send_now(dx_stream *s, const dx_span *v, size_t n) {
    size_t skip = 0; /* bytes the socket took, from the front */
    if (!s->tls && s->state == ST_OPEN && !dx_outq_len(&s->out) && s->io.fd >= 0) {
        ssize_t w = dx__sock_writev(s->io.fd, v, n);
        skip = w > 0 ? (size_t)w : 0; /* an error shows again in the next flush */
    }
    for (size_t i = 0; i < n; i++) {
        if (skip >= v[i].len) {
            skip -= v[i].len;
            continue;
        }
        int rc = dx_outq_append(&s->out, (dx_span){v[i].ptr + skip, v[i].len - skip});
        if (rc < 0)
            return rc;
        skip = 0;
    }
    if (dx_outq_len(&s->out))
        dx__stream_want_flush(s);
    return 0;
}

/* ---- the rest of the API ----------------------------------------------------------- */

void dx_stream_pause(dx_stream *s) {
    if (!s || s->paused || s->state == ST_DEAD)
        return;
    s->paused = true;
    dx__stream_update_io(s);
}

void dx_stream_resume(dx_stream *s) {
    if (!s || !s->paused || s->state == ST_DEAD)
        return;
    s->paused = false;
    s->peeked = false;
    dx__stream_update_io(s);
    if (has_kept(s) || (s->eof && !s->eof_reported)) {
        s->redeliver = true; /* in the flush hook, not inside this call */
        dx__stream_want_flush(s);
    }
    if (s->tls_more)
        dx__stream_want_flush(s);
}

void dx_stream_set_timeout(dx_stream *s, uint32_t ms) {
    if (!s || s->state == ST_DEAD || s->state == ST_CLOSING)
        return;
    if (ms == DX_NEVER) {
        s->owner_timer = false;
        dx_timer_stop(dx__stream_loop(s), &s->timer);
        return;
    }
    s->owner_timer = true;
    dx_timer_start(dx__stream_loop(s), &s->timer, ms);
}

bool dx_stream_is_open(const dx_stream *s) {
    return s && s->state == ST_OPEN;
}

int dx_stream_peer_addr(const dx_stream *s, char *out, size_t cap) {
    if (!s || !out || !cap)
        return DX_EINVAL;
    return s->io.fd < 0 ? DX_ECLOSED : dx__sock_addr(s->io.fd, true, out, cap);
}

int dx_stream_local_addr(const dx_stream *s, char *out, size_t cap) {
    if (!s || !out || !cap)
        return DX_EINVAL;
    return s->io.fd < 0 ? DX_ECLOSED : dx__sock_addr(s->io.fd, false, out, cap);
}

int dx_stream_proxy_status(const dx_stream *s) {
    return s ? dx__connect_proxy_status(s) : 0;
}

const char *dx_stream_tls_alert(const dx_stream *s) {
    return s && s->tls ? dx__tls_alert(s->tls, NULL) : NULL;
}

void *dx_stream_user(const dx_stream *s) {
    return s->user;
}

void dx_stream_set_user(dx_stream *s, void *user) {
    s->user = user;
}

dx_loop *dx_stream_loop(const dx_stream *s) {
    return dx__stream_loop(s);
}

void dx_stream_trim(dx_stream *s) {
    if (!s || s->state == ST_DEAD)
        return;
    dx_outq_trim(&s->out);
    if (dx__stream_kept(s) && !s->in->len) {
        dx__free(alloc_of(s), s->in, sizeof(dx__kept) + s->in->cap);
        s->in = NULL;
    }
}
