/*
 * The connection layer: a dx_proto on a non-blocking socket, from the end of the
 * opening handshake to the TCP close. Both sides share it; the CONNECTING phase
 * belongs to the server or client role (conn_internal.h).
 *
 * Receive: one recv into the loop's shared buffer, then every frame of it through
 * dx_proto_recv, each event straight to its callback. A connection keeps bytes of
 * its own only when it must: a message spread over several reads (msg), or input
 * that arrived while the application paused it (in).
 *
 * Send: frames go into the proto's output; the connection joins the loop's flush
 * list, and the before-poll hook writes each listed connection once. EPOLLOUT is
 * asked for only while bytes remain.
 *
 * Idle: a connection with nothing in flight gives back its buffers and even its
 * proto (a fresh one is made when bytes come or go), so what a server holds per idle
 * client is the dx_conn itself.
 *
 * End: every path leads to finish(), which closes the socket, calls on_error and
 * on_close once, and puts the connection on the loop's dead list, freed at the end of
 * the iteration. After a closing handshake the side that is done shuts its write half
 * and lingers until the peer's FIN (bounded by close_timeout_ms), so the last frames
 * are never lost to a reset.
 */
#include "runtime/conn_internal.h"
#include "runtime/prepared.h"
#include "duplex/utf8.h"
#include "runtime/loop_internal.h"
#include "tls/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define FLUSH_BUDGET 4096  /* connections written per hook pass before yielding */
#define SETTLE_TICK_MS 500 /* first keep-alive tick after open: give back spare memory */
#define TICK_MAX_MS 60000  /* a quiet connection is looked at least this often */

static uint32_t now_us32(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u);
}

static uint32_t now_ms32(const dx_conn *c) {
    return (uint32_t)dx_loop_now(c->loop);
}

static const dx_allocator *alloc_of(const dx_conn *c) {
    return c->loop->alloc;
}

static const dx_conn_options *opts_of(const dx_conn *c) {
    return c->cls->opts;
}

static const dx_conn_callbacks *cb_of(const dx_conn *c) {
    return c->cls->cb;
}

/* ---- options ------------------------------------------------------------------- */

static uint32_t ms_or(uint32_t v, uint32_t def) {
    return v ? v : def;
}

void dx__conn_options_resolve(const dx_conn_options *in, dx_conn_options *out) {
    static const dx_conn_options zero;
    *out = in ? *in : zero;
    if (!out->max_message)
        out->max_message = DX_DEFAULT_MAX_MESSAGE;
    if (!out->max_frame)
        out->max_frame = out->max_message;
    if (!out->max_send_queue)
        out->max_send_queue = DX_DEFAULT_MAX_SEND_QUEUE;
    if (!out->low_water)
        out->low_water = DX_DEFAULT_LOW_WATER;
    if (out->low_water > out->max_send_queue)
        out->low_water = out->max_send_queue;
    if (!out->max_head)
        out->max_head = DX_DEFAULT_MAX_HEAD;
    out->handshake_timeout_ms = ms_or(out->handshake_timeout_ms, DX_DEFAULT_HANDSHAKE_TIMEOUT_MS);
    out->close_timeout_ms = ms_or(out->close_timeout_ms, DX_DEFAULT_CLOSE_TIMEOUT_MS);
    out->ping_interval_ms = ms_or(out->ping_interval_ms, DX_DEFAULT_PING_INTERVAL_MS);
    out->pong_timeout_ms = ms_or(out->pong_timeout_ms, DX_DEFAULT_PONG_TIMEOUT_MS);
    out->idle_timeout_ms = ms_or(out->idle_timeout_ms, DX_DEFAULT_IDLE_TIMEOUT_MS);
    if (!out->compress_min)
        out->compress_min = DX_DEFAULT_COMPRESS_MIN;
}

/* ---- byte buffers ------------------------------------------------------------------ */

static size_t buf_len(const dx__buf *b) {
    return b ? b->len : 0;
}

/* Make room for @need bytes in *@bp (doubling, from 256 bytes of data). */
static int buf_reserve(const dx_allocator *a, dx__buf **bp, size_t need) {
    dx__buf *b = *bp;
    if (b && need <= b->cap)
        return 0; /* (a NULL buffer is made even for 0 bytes: callers use it next) */
    size_t n = b ? b->cap : 256;
    while (n < need)
        n = n > SIZE_MAX / 4 ? need : n * 2;
    dx__buf *nb = dx__alloc(a, sizeof(dx__buf) + n);
    if (!nb)
        return DX_ENOMEM;
    nb->cap = n;
    nb->len = b ? b->len : 0;
    if (nb->len)
        memcpy(nb->data, b->data, nb->len);
    if (b)
        dx__free(a, b, sizeof(dx__buf) + b->cap);
    *bp = nb;
    return 0;
}

static int buf_append(const dx_allocator *a, dx__buf **bp, const uint8_t *p, size_t n) {
    if (buf_reserve(a, bp, buf_len(*bp) + n) != 0)
        return DX_ENOMEM;
    if (n)
        memcpy((*bp)->data + (*bp)->len, p, n);
    (*bp)->len += n;
    return 0;
}

static void buf_free(const dx_allocator *a, dx__buf **bp) {
    if (*bp)
        dx__free(a, *bp, sizeof(dx__buf) + (*bp)->cap);
    *bp = NULL;
}

/* Drop the first @n bytes; free the buffer once it is empty. */
static void buf_consume(const dx_allocator *a, dx__buf **bp, size_t n) {
    dx__buf *b = *bp;
    if (!b)
        return;
    if (n >= b->len) {
        buf_free(a, bp);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

/* Buffers that grew past this for a large message are given back at a tick
 * LARGE_SETTLE_MS after it, not at the next keep-alive tick (up to ping_interval
 * later): many connections each keeping the memory of their largest message add
 * up. Not at once: a connection that keeps sending large messages would then pay
 * for fresh pages (mmap, zeroing, faults) every time, 1.6x the CPU for 1 MiB
 * echoes. */
#define BUF_KEEP_MAX ((size_t)64 << 10)
#define LARGE_SETTLE_MS 1000

static bool buf_large(const dx__buf *b) {
    return b && b->cap > BUF_KEEP_MAX;
}

int dx__conn_keep_input(dx_conn *c, const uint8_t *p, size_t n) {
    return buf_append(alloc_of(c), &c->in, p, n);
}

void dx__conn_drop_input(dx_conn *c, size_t n) {
    buf_consume(alloc_of(c), &c->in, n);
}

int dx__conn_queue_raw(dx_conn *c, const uint8_t *p, size_t n) {
    int rc = buf_append(alloc_of(c), &c->raw, p, n);
    if (rc == 0)
        dx__conn_want_flush(c);
    return rc;
}

static ssize_t write_some(int fd, const uint8_t *p, size_t n);
static int tls_send(dx_conn *c);

int dx__conn_send_raw(dx_conn *c, const uint8_t *p, size_t n) {
    size_t done = 0;
    if (!c->tls && !buf_len(c->raw) && c->fd >= 0 &&
        !(c->proto && dx_proto_wants_write(c->proto))) {
        ssize_t w = write_some(c->fd, p, n);
        done = w > 0 ? (size_t)w : 0;
    }
    return done == n ? 0 : dx__conn_queue_raw(c, p + done, n - done);
}

static size_t info_size(const dx_conn *c) {
    if (!c->info)
        return 0;
    size_t n = (size_t)c->protocol_len + c->extensions_len;
    return n + strlen(c->info + n) + 1;
}

int dx__conn_set_info(dx_conn *c, dx_span protocol, dx_span extensions, const char *url) {
    size_t url_len = url ? strlen(url) : 0;
    if (protocol.len > UINT16_MAX || extensions.len > UINT16_MAX)
        return DX_EINVAL;
    char *block = NULL;
    size_t size = protocol.len + extensions.len + url_len + 1;
    if (size > 1) {
        /* the arguments may point into the old block: copy first, free after */
        block = dx__alloc(alloc_of(c), size);
        if (!block)
            return DX_ENOMEM;
        if (protocol.len)
            memcpy(block, protocol.ptr, protocol.len);
        if (extensions.len)
            memcpy(block + protocol.len, extensions.ptr, extensions.len);
        if (url_len)
            memcpy(block + protocol.len + extensions.len, url, url_len);
        block[size - 1] = '\0';
    }
    dx__free(alloc_of(c), c->info, info_size(c));
    c->info = block;
    c->protocol_len = (uint16_t)protocol.len;
    c->extensions_len = (uint16_t)extensions.len;
    return 0;
}

/* ---- the proto, made on demand ------------------------------------------------------ */

/* The proto of an OPEN connection, made afresh if it was dropped while idle. NULL
 * when out of memory (the connection is then failed). */
static dx_proto *proto_of(dx_conn *c);

/* ---- the flush list and the watcher --------------------------------------------------- */

static void flush_hook(dx_loop *l, dx_hook *h, void *user);

void dx__conn_want_flush(dx_conn *c) {
    if (c->on_flush_list || c->phase == PHASE_DEAD)
        return;
    dx_loop *l = c->loop;
    c->on_flush_list = true;
    c->flush_prev = NULL;
    c->flush_next = l->flush_head;
    if (l->flush_head)
        l->flush_head->flush_prev = c;
    l->flush_head = c;
    if (!l->flush_hook.active) {
        dx_hook_init(&l->flush_hook, flush_hook, NULL);
        dx_hook_start(l, &l->flush_hook);
    }
}

static void unlist_flush(dx_conn *c) {
    if (!c->on_flush_list)
        return;
    if (c->flush_prev)
        c->flush_prev->flush_next = c->flush_next;
    else
        c->loop->flush_head = c->flush_next;
    if (c->flush_next)
        c->flush_next->flush_prev = c->flush_prev;
    c->flush_next = c->flush_prev = NULL;
    c->on_flush_list = false;
}

static size_t tls_out_len(const dx_conn *c) {
    return c->tls ? dx__tls_output(c->tls).len : 0;
}

static size_t buffered(const dx_conn *c) {
    return buf_len(c->raw) + (c->proto ? dx_proto_output(c->proto).len : 0) + tls_out_len(c);
}

/* Something can be written now: ciphertext, or plaintext once TLS (if any) is up. */
static bool can_write(const dx_conn *c) {
    if (tls_out_len(c))
        return true;
    if (c->tls && !dx__tls_is_established(c->tls))
        return false;
    return buf_len(c->raw) || (c->proto && dx_proto_wants_write(c->proto));
}

/* Input waits: the application paused it, or the output is over its cap. */
static bool input_held(const dx_conn *c) {
    return c->paused || c->out_full;
}

void dx__conn_update_io(dx_conn *c) {
    if (c->phase == PHASE_DEAD || c->fd < 0)
        return; /* the client has no socket while it resolves */
    unsigned want = 0;
    if (!input_held(c) || c->phase == PHASE_LINGER)
        want |= DX_IO_READ;
    if (can_write(c) || c->want_write)
        want |= DX_IO_WRITE;
    if (want == c->io_events)
        return;
    int rc = 0;
    if (!want)
        dx_io_stop(c->loop, &c->io);
    else if (!c->io_events)
        rc = dx_io_start(c->loop, &c->io, want);
    else
        rc = dx_io_modify(c->loop, &c->io, want);
    if (rc == 0)
        c->io_events = (uint8_t)want;
}

/* ---- the end -------------------------------------------------------------------------- */

static void free_pmd(dx_conn *c) {
    if (!c->pmd_on)
        return;
    dx_deflate_destroy(c->pmd->codec);
    buf_free(alloc_of(c), &c->pmd->scratch);
    dx__free(alloc_of(c), c->pmd, sizeof(dx__pmd));
    c->pmd = NULL;
    c->pmd_on = false;
}

static void free_conn(dx_conn *c) {
    const dx_allocator *a = alloc_of(c);
    free_pmd(c); /* shares its slot with the role's data */
    dx__tls_conn_destroy(c->tls);
    if (c->cls->role->release)
        c->cls->role->release(c);
    dx_proto_destroy(c->proto);
    buf_free(a, &c->in);
    buf_free(a, &c->raw);
    buf_free(a, &c->msg);
    dx__free(a, c->info, info_size(c));
    dx__free(a, c, sizeof(*c));
}

/* End of the iteration: free the connections that finished in it. */
static void reap(dx_defer *d, void *user) {
    (void)d;
    dx_loop *l = user;
    while (l->dead_head) {
        dx_conn *c = l->dead_head;
        l->dead_head = c->flush_next;
        free_conn(c);
    }
}

static void queue_reap(dx_loop *l) {
    if (!dx_defer_is_queued(&l->reap))
        dx_loop_defer(l, &l->reap, reap, l);
}

/* The single exit: close the socket, tell the application once, free later. */
static void finish(dx_conn *c) {
    if (c->phase == PHASE_DEAD)
        return;
    if (c->tls && c->fd >= 0) {
        if (dx__tls_is_established(c->tls) && c->clean)
            dx__tls_shutdown(c->tls); /* close_notify */
        /* that, or the alert saying why it failed: best effort, the socket closes next */
        tls_send(c);
    }
    c->phase = PHASE_DEAD;
    dx_io_close(c->loop, &c->io); /* closes c->fd too */
    c->io_events = 0;
    c->fd = -1;
    dx_timer_stop(c->loop, &c->timer);
    unlist_flush(c);
    /* queue the free before on_finish: the server's may run the shutdown's done,
     * whose dx_server_destroy queues the server's free, and c->cls lives there */
    c->flush_next = c->loop->dead_head;
    c->loop->dead_head = c;
    queue_reap(c->loop);
    const dx__conn_role *role = c->cls->role;
    if (role->on_finish)
        role->on_finish(c);
    if (c->seen) {
        const dx_conn_callbacks *cb = cb_of(c);
        /* a clean close the library started (idle, send queue) is not a failure:
         * its reason is only in the close info */
        if (c->error && !c->clean && cb->on_error)
            cb->on_error(c, c->error, c->user);
        dx_close_info info = {.code = c->close_code ? c->close_code : DX_CLOSE_ABNORMAL,
                              .reason = {c->close_reason, c->close_reason_len},
                              .clean = c->clean,
                              .remote = c->remote,
                              .error = c->error};
        if (cb->on_close)
            cb->on_close(c, &info, c->user);
    }
    if (role->after_close)
        role->after_close(c);
}

/* Abnormal end: no closing handshake (or not a finished one). */
static void end_abnormally(dx_conn *c, int err, bool remote) {
    if (c->phase == PHASE_DEAD)
        return;
    if (!c->close_code) { /* no close event yet: the transport just ended */
        c->close_code = DX_CLOSE_ABNORMAL;
        c->close_reason_len = 0;
        /* a peer that drops TCP after our close frame did not start the closing */
        c->remote = remote && !c->close_started_here;
    }
    if (!c->error)
        c->error = err;
    finish(c);
}

void dx__conn_fail(dx_conn *c, int err) {
    end_abnormally(c, err, false);
}

/* Our side is done. After a clean closing handshake the server closes TCP at once
 * (§7.1.1: the server closes first; the peer sent nothing after its close frame, so
 * no unread byte can turn the close into a reset) and the client waits for that.
 * Otherwise shut the write half and wait (bounded) for the peer's FIN, reading and
 * dropping what it still sends, so that our last frames are not lost to a reset. */
static void enter_linger(dx_conn *c) {
    if (c->side == DX_SIDE_SERVER && c->clean && c->phase == PHASE_OPEN) {
        finish(c);
        return;
    }
    c->phase = PHASE_LINGER;
    c->paused = false;
    c->out_full = false;
    if (!c->clean) /* a clean client waits for the server's FIN instead */
        shutdown(c->fd, SHUT_WR);
    dx_timer_start(c->loop, &c->timer, opts_of(c)->close_timeout_ms);
    dx__conn_update_io(c);
}

void dx__conn_end_after_raw(dx_conn *c) {
    c->linger_after_raw = true;
    dx__conn_want_flush(c);
}

/* ---- writing -------------------------------------------------------------------------- */

/* Write as much of [p, p+n) as the socket takes. Returns bytes written or -errno. */
static ssize_t write_some(int fd, const uint8_t *p, size_t n) {
    size_t done = 0;
    while (done < n) {
        ssize_t w = send(fd, p + done, n - done, MSG_NOSIGNAL);
        if (w > 0) {
            done += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        return w < 0 ? -errno : -EPIPE;
    }
    return (ssize_t)done;
}

/* Send what the TLS engine has encrypted. Returns 0, or -errno. */
static int tls_send(dx_conn *c) {
    dx_span out = dx__tls_output(c->tls);
    if (!out.len)
        return 0;
    ssize_t w = write_some(c->fd, out.ptr, out.len);
    if (w < 0)
        return (int)w;
    dx__tls_consume(c->tls, (size_t)w);
    return 0;
}

#define TLS_CHUNK ((size_t)16 << 10) /* one TLS record's worth per write */

/* Write plaintext: to the socket, or through TLS, where a chunk is taken only when
 * the ciphertext before it is gone (so the engine never holds more than a record or
 * two, and backpressure stays in the proto's capped output). Returns the bytes
 * taken, or a negative code. */
static ssize_t out_write(dx_conn *c, const uint8_t *p, size_t n) {
    if (!c->tls)
        return write_some(c->fd, p, n);
    if (!dx__tls_is_established(c->tls))
        return 0;
    size_t taken = 0;
    for (;;) {
        int rc = tls_send(c);
        if (rc < 0)
            return rc;
        if (tls_out_len(c) || taken == n)
            return (ssize_t)taken;
        size_t chunk = n - taken < TLS_CHUNK ? n - taken : TLS_CHUNK, used = 0;
        rc = dx__tls_write(c->tls, (dx_span){p + taken, chunk}, &used);
        if (rc < 0)
            return rc;
        taken += used;
    }
}

static void flush(dx_conn *c) {
    if (c->phase == PHASE_DEAD || c->fd < 0)
        return;
    if (c->tls) {
        int rc = tls_send(c); /* handshake messages, alerts, earlier records */
        if (rc < 0) {
            end_abnormally(c, rc, true);
            return;
        }
    }
    if (buf_len(c->raw)) {
        ssize_t w = out_write(c, c->raw->data, c->raw->len);
        if (w < 0) {
            end_abnormally(c, (int)w, true);
            return;
        }
        if ((size_t)w == c->raw->len && c->phase == PHASE_OPEN) {
            c->raw->len = 0; /* kept for the next large frame; trim frees it */
        } else {
            buf_consume(alloc_of(c), &c->raw, (size_t)w);
        }
    }
    if (!buf_len(c->raw) && c->proto) {
        dx_span out = dx_proto_output(c->proto);
        if (out.len) {
            ssize_t w = out_write(c, out.ptr, out.len);
            if (w < 0) {
                end_abnormally(c, (int)w, true);
                return;
            }
            dx_proto_output_consume(c->proto, (size_t)w);
        }
    }
    if (c->out_full && buffered(c) <= opts_of(c)->low_water) {
        c->out_full = false; /* the peer read its replies: read again */
        if (buf_len(c->in) && !c->paused)
            dx__conn_want_flush(c);
    }
    dx__conn_update_io(c);
    if (c->drain_wanted && buffered(c) <= opts_of(c)->low_water && c->phase == PHASE_OPEN &&
        (!c->proto || dx_proto_get_state(c->proto) == DX_STATE_OPEN)) {
        c->drain_wanted = false;
        if (cb_of(c)->on_drain)
            cb_of(c)->on_drain(c, c->user);
    }
    if (c->phase == PHASE_OPEN && c->proto && dx_proto_is_done(c->proto))
        enter_linger(c);
    else if (c->linger_after_raw && !buf_len(c->raw) && c->phase == PHASE_HANDSHAKE)
        enter_linger(c);
}

static void deliver_kept(dx_conn *c);

static void flush_hook(dx_loop *l, dx_hook *h, void *user) {
    (void)user;
    for (int budget = FLUSH_BUDGET; l->flush_head && budget > 0; budget--) {
        dx_conn *c = l->flush_head;
        unlist_flush(c);
        if (buf_len(c->in) && !input_held(c) && c->phase == PHASE_OPEN)
            deliver_kept(c);
        if (c->tls_more && (!input_held(c) || c->phase != PHASE_OPEN) && c->phase != PHASE_DEAD)
            c->io.cb(&c->io, DX_IO_READ, c); /* what TLS buffered, as if epoll said so */
        flush(c);
    }
    if (l->flush_head)
        queue_reap(l); /* work is left: the next wait must not block */
    else
        dx_hook_stop(l, h);
}

/* ---- reading -------------------------------------------------------------------------- */

/* dx__conn_read through TLS: plaintext the engine already holds, else ciphertext
 * from the socket fed to it (driving the handshake first), until plaintext comes,
 * the socket is empty, or something fails (the DX_ETLS_* code says which check). */
static ssize_t tls_read(dx_conn *c, uint8_t *plain) {
    dx_loop *l = c->loop;
    if (!l->tls_buf && !(l->tls_buf = dx__alloc(l->alloc, DX_READ_BUFFER)))
        return DX_ENOMEM;
    for (;;) {
        int rc;
        if (!dx__tls_is_established(c->tls)) {
            rc = dx__tls_handshake(c->tls);
            if (tls_out_len(c) || rc == 0)
                dx__conn_want_flush(c); /* its messages, or what waited for it */
            if (rc < 0 && rc != DX_EINCOMPLETE)
                return rc;
        }
        if (dx__tls_is_established(c->tls)) {
            size_t n = 0;
            rc = dx__tls_read(c->tls, plain, DX_READ_BUFFER, &n);
            if (tls_out_len(c))
                dx__conn_want_flush(c); /* tickets, key updates */
            if (rc == 0) {
                if (dx__tls_pending(c->tls)) { /* epoll will not say so: come back */
                    c->tls_more = true;
                    dx__conn_want_flush(c);
                }
                return (ssize_t)n;
            }
            if (rc == DX_ECLOSED)
                return 0; /* close_notify: the end of the stream */
            if (rc != DX_EINCOMPLETE)
                return rc;
        }
        ssize_t m;
        do
            m = recv(c->fd, l->tls_buf, DX_READ_BUFFER, 0);
        while (m < 0 && errno == EINTR);
        if (m == 0)
            return 0;
        if (m < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? DX_EINCOMPLETE : -errno;
        size_t used;
        rc = dx__tls_feed(c->tls, (dx_span){l->tls_buf, (size_t)m}, &used);
        if (rc < 0) {
            dx__conn_want_flush(c); /* an alert may say why */
            return rc;
        }
    }
}

ssize_t dx__conn_read(dx_conn *c, uint8_t **buf) {
    dx_loop *l = c->loop;
    if (!l->read_buf) {
        l->read_buf = dx__alloc(l->alloc, DX_READ_BUFFER);
        if (!l->read_buf)
            return DX_ENOMEM;
    }
    if (c->tls) {
        c->tls_more = false;
        ssize_t n = tls_read(c, l->read_buf);
        *buf = l->read_buf;
        if (n >= 0)
            c->last_recv = now_ms32(c);
        return n;
    }
    for (;;) {
        ssize_t n = recv(c->fd, l->read_buf, DX_READ_BUFFER, 0);
        if (n >= 0) {
            *buf = l->read_buf;
            c->last_recv = now_ms32(c);
            return n;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return DX_EINCOMPLETE;
        return -errno;
    }
}

/* Remember a ping we sent, to match its pong: its length and first 4 bytes. */
static void track_ping(dx_conn *c, dx_span payload) {
    uint32_t head = 0;
    memcpy(&head, payload.ptr ? payload.ptr : (const uint8_t *)"",
           payload.len < 4 ? payload.len : 4);
    c->ping_data = head;
    c->ping_len = (uint8_t)(payload.len + 1);
    c->ping_sent_us = now_us32();
}

static bool matches_ping(const dx_conn *c, dx_span payload) {
    if (!c->ping_len || payload.len != (size_t)c->ping_len - 1u)
        return false;
    uint32_t head = 0;
    memcpy(&head, payload.ptr ? payload.ptr : (const uint8_t *)"",
           payload.len < 4 ? payload.len : 4);
    return head == c->ping_data;
}

/* Fail the connection for an extension's reason: close with @code, report @err. */
static void fail_with(dx_conn *c, uint16_t code, int err, const char *why) {
    if (!c->error)
        c->error = err;
    dx__conn_close(c, code, why);
}

/* Some buffer of @c grew past BUF_KEEP_MAX for a large message. */
static bool holds_large(const dx_conn *c) {
    return buf_large(c->msg) || buf_large(c->raw) || (c->pmd_on && buf_large(c->pmd->scratch)) ||
           dx_proto_output_capacity(c->proto) > BUF_KEEP_MAX;
}

/* After a large message: make sure a tick comes within LARGE_SETTLE_MS to give its
 * buffers back (an earlier deadline, a pong's or the settle after open, stays). */
static void settle_soon(dx_conn *c) {
    if (c->phase != PHASE_OPEN || (c->proto && dx_proto_get_state(c->proto) != DX_STATE_OPEN))
        return; /* the timer counts down the closing handshake */
    if (!holds_large(c))
        return;
    if (dx_timer_is_active(&c->timer) &&
        c->timer.deadline <= dx_loop_now(c->loop) + LARGE_SETTLE_MS)
        return;
    dx_timer_start(c->loop, &c->timer, LARGE_SETTLE_MS);
}

/* A piece of a compressed message (RSV1 on its first frame, RFC 7692 §6.2):
 * inflate it under the message limit, check text once it is inflated, deliver. */
static void on_compressed_data(dx_conn *c, const dx_event *ev) {
    const dx_conn_callbacks *cb = cb_of(c);
    const dx_allocator *a = alloc_of(c);
    dx__pmd *m = c->pmd;
    bool streaming = opts_of(c)->streaming, fin = ev->u.data.fin;
    bool text = ev->u.data.opcode == DX_OP_TEXT;
    dx__buf **out = streaming ? &m->scratch : &c->msg;
    if (ev->u.data.first) {
        m->utf8 = (dx_utf8_state){0};
        m->stream_started = false;
        c->msg_opcode = (uint8_t)ev->u.data.opcode;
        if (c->msg)
            c->msg->len = 0;
    }
    if (streaming && m->scratch)
        m->scratch->len = 0; /* shared with sends, which leave their last message there */
    dx_span in = ev->u.data.data;
    size_t most = opts_of(c)->max_message + 256; /* the codec stops at the limit */
    for (;;) {
        size_t len = buf_len(*out), cap = *out ? (*out)->cap : 0;
        size_t want = cap < 4096 ? 4096 : cap * 2 < most ? cap * 2 : most;
        if (len + 256 > cap && buf_reserve(a, out, want > len + 256 ? want : len + 256) != 0) {
            end_abnormally(c, DX_ENOMEM, false);
            return;
        }
        size_t used = 0, wrote = 0;
        int rc = dx_deflate_inflate(m->codec, in, fin, (*out)->data + len, (*out)->cap - len, &used,
                                    &wrote);
        in.ptr += used;
        in.len -= used;
        (*out)->len += wrote;
        if (rc == DX_EDEFLATE_TOO_BIG) {
            fail_with(c, DX_CLOSE_MESSAGE_TOO_BIG, rc, "message too big");
            return;
        }
        if (rc < 0 && rc != DX_ENOSPACE) {
            fail_with(c, DX_CLOSE_INVALID_PAYLOAD, rc, "invalid compressed data");
            return;
        }
        bool done = rc == 0;
        if (streaming && (wrote || (done && fin))) {
            dx__buf *b = m->scratch;
            if (text && (!dx_utf8_feed(&m->utf8, b->data, b->len) ||
                         (done && fin && !dx_utf8_is_complete(&m->utf8)))) {
                fail_with(c, DX_CLOSE_INVALID_PAYLOAD, DX_EPROTOCOL, "invalid UTF-8");
                return;
            }
            dx_fragment f = {.opcode = (dx_opcode)c->msg_opcode,
                             .data = {b->data, b->len},
                             .first = !m->stream_started,
                             .fin = done && fin};
            m->stream_started = true;
            if (cb->on_fragment)
                cb->on_fragment(c, &f, c->user);
            if (c->phase != PHASE_OPEN)
                return;
            m->scratch->len = 0;
        }
        if (done)
            break;
    }
    if (streaming || !fin)
        return;
    size_t len = c->msg->len;
    c->msg->len = 0;
    if (text && !dx_utf8_valid(c->msg->data, len)) {
        fail_with(c, DX_CLOSE_INVALID_PAYLOAD, DX_EPROTOCOL, "invalid UTF-8");
        return;
    }
    if (cb->on_message)
        cb->on_message(c, (dx_opcode)c->msg_opcode, (dx_span){c->msg->data, len}, c->user);
    if (len > BUF_KEEP_MAX)
        settle_soon(c);
}

static void on_data(dx_conn *c, const dx_event *ev) {
    const dx_conn_callbacks *cb = cb_of(c);
    c->last_active = now_ms32(c);
    if (c->pmd_on) {
        dx__pmd *m = c->pmd;
        if (ev->u.data.first) {
            m->in_compressed = ev->u.data.rsv & DX_RSV1;
            m->plain_len = 0;
        }
        if (m->in_compressed) {
            on_compressed_data(c, ev);
            return;
        }
        m->plain_len += ev->u.data.data.len;
        if (m->plain_len > opts_of(c)->max_message) {
            fail_with(c, DX_CLOSE_MESSAGE_TOO_BIG, DX_ELIMIT, "message too big");
            return;
        }
    }
    if (opts_of(c)->streaming) {
        dx_fragment f = {.opcode = ev->u.data.opcode,
                         .data = ev->u.data.data,
                         .first = ev->u.data.first,
                         .fin = ev->u.data.fin};
        if (cb->on_fragment)
            cb->on_fragment(c, &f, c->user);
        return;
    }
    dx_span d = ev->u.data.data;
    if (ev->u.data.first && ev->u.data.fin) { /* whole in this read: zero copy */
        if (cb->on_message)
            cb->on_message(c, ev->u.data.opcode, d, c->user);
        return;
    }
    if (ev->u.data.first) {
        if (c->msg)
            c->msg->len = 0;
        c->msg_opcode = (uint8_t)ev->u.data.opcode;
    }
    /* the proto bounds the message by max_message before any byte arrives */
    if (buf_append(alloc_of(c), &c->msg, d.ptr, d.len) != 0) {
        end_abnormally(c, DX_ENOMEM, false);
        return;
    }
    if (ev->u.data.fin) {
        size_t len = c->msg->len;
        c->msg->len = 0; /* the buffer is kept for the next message */
        if (cb->on_message)
            cb->on_message(c, (dx_opcode)c->msg_opcode, (dx_span){c->msg->data, len}, c->user);
        if (len > BUF_KEEP_MAX)
            settle_soon(c);
    }
}

static void on_close_event(dx_conn *c, const dx_event *ev) {
    c->close_code = ev->u.close.code;
    c->close_reason = ev->u.close.reason.ptr;
    c->close_reason_len = (uint8_t)ev->u.close.reason.len;
    if (ev->u.close.remote) {
        c->clean = true;
        c->remote = !c->close_started_here;
    } else {
        c->remote = false;
        if (!c->error)
            c->error = DX_EPROTOCOL;
    }
    /* the answering close frame (or ours) is in the output, or nothing is left to
     * write: the flush decides when TCP closes, bounded by the close timeout */
    dx_timer_start(c->loop, &c->timer, opts_of(c)->close_timeout_ms);
    dx__conn_want_flush(c);
}

static void handle_event(dx_conn *c, const dx_event *ev) {
    const dx_conn_callbacks *cb = cb_of(c);
    switch (ev->type) {
    case DX_EV_DATA:
        on_data(c, ev);
        break;
    case DX_EV_PING:
        if (cb->on_ping)
            cb->on_ping(c, ev->u.ping, c->user);
        break;
    case DX_EV_PONG: {
        int64_t rtt = -1;
        if (matches_ping(c, ev->u.pong)) {
            rtt = (int64_t)(uint32_t)(now_us32() - c->ping_sent_us);
            c->ping_len = 0;
            /* the timer waits for the pong deadline: count the next keep-alive ping
             * from now instead (the tick reschedules itself) */
            if (c->ka_pending && dx_proto_get_state(c->proto) == DX_STATE_OPEN)
                dx_timer_start(c->loop, &c->timer, 0);
            c->ka_pending = false;
        }
        if (cb->on_pong)
            cb->on_pong(c, ev->u.pong, rtt, c->user);
        break;
    }
    case DX_EV_CLOSE:
        on_close_event(c, ev);
        break;
    case DX_EV_NONE:
        break;
    }
}

/* Automatic replies (a pong per ping, a close answer) count toward max_send_queue
 * like any output: a peer that pings and never reads would otherwise be served
 * for ever. Past the cap, stop reading until the output drains to low_water (the
 * peer's TCP flow control then slows it), or, under DX_BP_CLOSE, close with 1008. */
static void output_over_cap(dx_conn *c) {
    if (opts_of(c)->backpressure == DX_BP_CLOSE) {
        if (dx_proto_get_state(c->proto) == DX_STATE_OPEN) {
            c->error = DX_ESEND_QUEUE;
            dx__conn_close(c, DX_CLOSE_POLICY_VIOLATION, "send queue full");
        }
        return;
    }
    c->out_full = true;
    dx__conn_update_io(c);
}

/*
 * Run @len bytes through the proto, one event at a time. Stops when the application
 * pauses (the rest is kept in in) or closes the connection. @buf is the loop's read
 * buffer or in's own data.
 */
static void deliver(dx_conn *c, uint8_t *buf, size_t len) {
    bool from_in = c->in && buf == c->in->data;
    size_t off = 0;
    while (off < len && c->phase == PHASE_OPEN) {
        if (input_held(c)) {
            if (from_in) {
                buf_consume(alloc_of(c), &c->in, off);
            } else if (dx__conn_keep_input(c, buf + off, len - off) != 0) {
                end_abnormally(c, DX_ENOMEM, false);
                return;
            }
            return; /* the rest waits in in for the resume */
        }
        dx_proto *p = proto_of(c);
        if (!p)
            return;
        dx_event ev;
        size_t used = 0;
        int rc = dx_proto_recv(p, buf + off, len - off, &used, &ev);
        if (rc < 0) {
            end_abnormally(c, rc, false);
            return;
        }
        off += used;
        handle_event(c, &ev);
        if (c->phase == PHASE_OPEN && c->proto && buffered(c) > opts_of(c)->max_send_queue)
            output_over_cap(c);
        if (ev.type == DX_EV_NONE && used == 0)
            break;
    }
    if (from_in && c->phase != PHASE_DEAD)
        buf_free(alloc_of(c), &c->in);
    /* a close answer that completes the closing handshake leaves nothing to write,
     * but the flush is where the connection moves on to closing TCP */
    if (c->phase == PHASE_OPEN && c->proto &&
        (dx_proto_wants_write(c->proto) || dx_proto_is_done(c->proto)))
        dx__conn_want_flush(c);
}

/* Deliver what in kept (after a resume). */
static void deliver_kept(dx_conn *c) {
    if (c->in)
        deliver(c, c->in->data, c->in->len);
}

/* The transport ended (EOF, or a read error). */
static void transport_ended(dx_conn *c, int err) {
    if (c->phase == PHASE_OPEN && !c->clean && c->proto) {
        dx_event ev;
        dx_proto_recv_eof(c->proto, &ev);
    }
    end_abnormally(c, err, true);
}

static void on_readable(dx_conn *c) {
    uint8_t *buf;
    ssize_t n = dx__conn_read(c, &buf);
    if (n == DX_EINCOMPLETE)
        return;
    if (n <= 0) {
        transport_ended(c, (int)n);
        return;
    }
    if (c->phase == PHASE_LINGER)
        return;                            /* after our close: the peer's bytes no longer matter */
    if (buf_len(c->in) || input_held(c)) { /* keep order behind what waits already */
        if (dx__conn_keep_input(c, buf, (size_t)n) != 0) {
            end_abnormally(c, DX_ENOMEM, false);
            return;
        }
        if (!input_held(c))
            deliver_kept(c);
        return;
    }
    deliver(c, buf, (size_t)n);
}

static void on_io(dx_io *w, unsigned events, void *user) {
    (void)w;
    dx_conn *c = user;
    if (events & DX_IO_WRITE && buffered(c))
        flush(c);
    if (c->phase == PHASE_HANDSHAKE) {
        if (!c->linger_after_raw)
            c->cls->role->on_io(c, events);
        else if (events & DX_IO_READ) { /* refused: drop what the client still sends */
            uint8_t *buf;
            ssize_t n = dx__conn_read(c, &buf);
            if (n == 0 || (n < 0 && n != DX_EINCOMPLETE))
                finish(c);
        }
        return;
    }
    if (events & DX_IO_READ && c->phase != PHASE_DEAD)
        on_readable(c);
}

/* ---- timers --------------------------------------------------------------------------- */

/* Milliseconds from now until @since + @after (0 when due). */
static uint32_t until(uint32_t now, uint32_t since, uint32_t after) {
    uint32_t elapsed = now - since;
    return elapsed >= after ? 0 : after - elapsed;
}

/* Give back what a quiet connection does not need: its buffers and, when it sits
 * between messages with nothing to write, its proto. */
static void trim(dx_conn *c) {
    const dx_allocator *a = alloc_of(c);
    if (c->msg && c->msg->len == 0)
        buf_free(a, &c->msg);
    if (!buf_len(c->in))
        buf_free(a, &c->in);
    if (!buf_len(c->raw))
        buf_free(a, &c->raw);
    if (c->pmd_on)
        buf_free(a, &c->pmd->scratch);
    if (c->proto && !c->msg && dx_proto_is_idle(c->proto)) {
        dx_proto_destroy(c->proto);
        c->proto = NULL;
    } else {
        dx_proto_trim(c->proto);
    }
}

static void keepalive_tick(dx_conn *c) {
    const dx_conn_options *o = opts_of(c);
    uint32_t now = now_ms32(c);
    /* the keep-alive ping is the tracked one (a later dx_conn_ping replaces it and
     * moves the deadline: it waits for a pong too) */
    uint32_t ping_age = (now_us32() - c->ping_sent_us) / 1000u;
    if (c->ka_pending && ping_age >= o->pong_timeout_ms) {
        /* a dead peer will not answer a close either: say why, and go */
        dx__conn_close(c, DX_CLOSE_INTERNAL_ERROR, "keep-alive ping timeout");
        flush(c);
        end_abnormally(c, DX_EPING_TIMEOUT, false);
        return;
    }
    if (o->idle_timeout_ms != DX_NEVER && until(now, c->last_active, o->idle_timeout_ms) == 0) {
        c->error = DX_EIDLE_TIMEOUT;
        dx__conn_close(c, DX_CLOSE_GOING_AWAY, "idle timeout");
        return;
    }
    if (o->ping_interval_ms != DX_NEVER && !c->ka_pending &&
        until(now, c->last_recv, o->ping_interval_ms) == 0) {
        uint8_t payload[4];
        uint32_t us = now_us32();
        memcpy(payload, &us, sizeof payload); /* unique enough to match its pong */
        if (dx_conn_ping(c, (dx_span){payload, sizeof payload}) == 0) {
            c->ka_pending = true;
        }
        if (c->phase != PHASE_OPEN)
            return; /* the ping could not be made (out of memory) */
    }
    if (!c->proto || !dx_proto_wants_write(c->proto))
        trim(c);
    uint32_t next = TICK_MAX_MS;
    if (c->ka_pending)
        next = until((now_us32() - c->ping_sent_us) / 1000u, 0, o->pong_timeout_ms);
    else if (o->ping_interval_ms != DX_NEVER)
        next = until(now, c->last_recv, o->ping_interval_ms);
    if (o->idle_timeout_ms != DX_NEVER) {
        uint32_t idle = until(now, c->last_active, o->idle_timeout_ms);
        next = idle < next ? idle : next;
    }
    if (next > LARGE_SETTLE_MS && holds_large(c))
        next = LARGE_SETTLE_MS; /* still writing it out: look again soon */
    dx_timer_start(c->loop, &c->timer, next ? next : 1);
}

static void on_timer(dx_timer *t, void *user) {
    (void)t;
    dx_conn *c = user;
    switch ((dx__phase)c->phase) {
    case PHASE_HANDSHAKE:
        if (c->linger_after_raw)
            finish(c);
        else
            c->cls->role->on_timeout(c);
        break;
    case PHASE_OPEN:
        if (c->proto && dx_proto_get_state(c->proto) != DX_STATE_OPEN) {
            if (!c->clean)
                end_abnormally(c, DX_ECLOSE_TIMEOUT, false);
            else
                finish(c); /* the peer never read our answering close */
        } else {
            keepalive_tick(c);
        }
        break;
    case PHASE_LINGER:
        finish(c);
        break;
    case PHASE_DEAD:
        break;
    }
}

/* ---- set-up and opening ----------------------------------------------------------------- */

int dx__conn_init(dx_conn *c, dx_loop *loop, int fd, dx_side side, const dx__conn_class *cls,
                  void *owner, void *user) {
    c->loop = loop;
    c->fd = fd;
    c->side = (uint8_t)side;
    c->cls = cls;
    c->owner = owner;
    c->user = user;
    c->phase = PHASE_HANDSHAKE;
    c->last_recv = c->last_active = now_ms32(c);
    dx_io_init(&c->io, fd, on_io, c);
    dx_timer_init(&c->timer, on_timer, c);
    dx_timer_start(loop, &c->timer, cls->opts->handshake_timeout_ms);
    if (fd < 0)
        return 0; /* the role opens the socket later (client: after resolving) */
    int rc = dx_io_start(loop, &c->io, DX_IO_READ);
    if (rc == 0)
        c->io_events = DX_IO_READ;
    else
        dx_timer_stop(loop, &c->timer);
    return rc;
}

int dx__conn_attach_fd(dx_conn *c, int fd, bool want_write) {
    c->fd = fd;
    c->io_events = 0;
    c->want_write = want_write;
    dx_io_init(&c->io, fd, on_io, c);
    unsigned events = DX_IO_READ | (want_write ? DX_IO_WRITE : 0u);
    int rc = dx_io_start(c->loop, &c->io, events);
    if (rc == 0)
        c->io_events = (uint8_t)events;
    return rc;
}

int dx__conn_start_tls(dx_conn *c, struct dx_tls_conn *t) {
    c->tls = t;
    if (c->side == DX_SIDE_CLIENT) { /* the ClientHello */
        int rc = dx__tls_handshake(t);
        if (rc < 0 && rc != DX_EINCOMPLETE)
            return rc;
        dx__conn_want_flush(c);
    }
    return 0;
}

void dx__conn_detach_fd(dx_conn *c) {
    dx_io_close(c->loop, &c->io);
    c->io_events = 0;
    c->want_write = false;
    c->fd = -1;
}

static dx_proto *proto_of(dx_conn *c) {
    if (c->proto)
        return c->proto;
    const dx_conn_options *o = opts_of(c);
    /* With permessage-deflate the codec holds a compressed message to max_message
     * once inflated, and on_data an uncompressed one; the wire may carry a little
     * more than that for a message that does not compress (deflate's worst case). */
    size_t slack = c->pmd_on ? o->max_message / 256 + 1024 : 0;
    dx_proto_config cfg = {.side = (dx_side)c->side,
                           .rsv_allowed = c->pmd_on ? DX_RSV1 : 0,
                           .limits = {.max_frame = o->max_frame + slack,
                                      .max_message = o->max_message + slack,
                                      .max_send_queue = o->max_send_queue},
                           .allocator = alloc_of(c)};
    int rc = dx_proto_create(&c->proto, &cfg);
    if (rc < 0) {
        c->proto = NULL;
        end_abnormally(c, rc, false);
        return NULL;
    }
    return c->proto;
}

int dx__conn_open(dx_conn *c, size_t head_len, const dx_deflate_params *pmd,
                  const dx_deflate_config *pmd_cfg) {
    if (pmd) {
        dx__pmd *m = dx__calloc(alloc_of(c), sizeof(*m));
        int rc = m ? dx_deflate_create(&m->codec, pmd, c->side == DX_SIDE_SERVER, pmd_cfg,
                                       opts_of(c)->max_message, alloc_of(c))
                   : DX_ENOMEM;
        if (rc < 0) {
            dx__free(alloc_of(c), m, sizeof(*m));
            dx__conn_fail(c, rc);
            return rc;
        }
        c->pmd = m;
        c->pmd_on = true;
    }
    /* no proto yet: one is made when the first byte comes or goes, so a connection
     * that stays quiet never holds one */
    c->phase = PHASE_OPEN;
    c->seen = true;
    c->paused = c->pause_on_open; /* the application's pause, not the handshake's */
    c->last_recv = c->last_active = now_ms32(c);
    const dx_conn_options *o = opts_of(c);
    uint32_t first = SETTLE_TICK_MS; /* or sooner, for very short intervals */
    if (o->ping_interval_ms < first)
        first = o->ping_interval_ms;
    if (o->idle_timeout_ms < first)
        first = o->idle_timeout_ms;
    dx_timer_start(c->loop, &c->timer, first);
    dx__conn_drop_input(c, head_len);
    dx__conn_update_io(c);
    if (cb_of(c)->on_open)
        cb_of(c)->on_open(c, c->user);
    if (c->phase == PHASE_OPEN && c->in) /* frames that came with the handshake */
        deliver_kept(c);
    return 0;
}

/* ---- the public API --------------------------------------------------------------------- */

/* The proto to send on, or the reason a send is refused. */
static int sendable(dx_conn *c, dx_proto **p) {
    if (!c)
        return DX_EINVAL;
    if (c->phase == PHASE_HANDSHAKE)
        return DX_ECONNECTING;
    if (c->phase != PHASE_OPEN || (c->proto && dx_proto_get_state(c->proto) != DX_STATE_OPEN))
        return DX_ECLOSED;
    *p = proto_of(c);
    return *p ? 0 : DX_ENOMEM;
}

static int sent(dx_conn *c, int rc) {
    if (rc == DX_ELIMIT) {
        c->drain_wanted = true;
        if (opts_of(c)->backpressure == DX_BP_CLOSE) {
            c->error = DX_ESEND_QUEUE;
            dx__conn_close(c, DX_CLOSE_POLICY_VIOLATION, "send queue full");
        }
        return DX_ESEND_QUEUE;
    }
    if (rc < 0)
        return rc;
    c->last_active = now_ms32(c);
    dx__conn_want_flush(c);
    size_t queued = buffered(c);
    if (queued > opts_of(c)->low_water)
        c->drain_wanted = true;
    if (queued > BUF_KEEP_MAX)
        settle_soon(c); /* the output grew for it */
    return 0;
}

/*
 * A large frame on an idle socket skips the copy into the output: its header and the
 * caller's bytes go out at once with one sendmsg, and only what the socket did not
 * take is copied (into raw, which is written before any later frame). The server side
 * only: a client must mask, which is a copy anyway.
 */
static int send_direct(dx_conn *c, dx_proto *p, dx_opcode opcode, dx_span data, bool fin) {
    if (buffered(c) + data.len > opts_of(c)->max_send_queue)
        return DX_ELIMIT;
    uint8_t hdr[DX_MAX_HEADER_LEN];
    size_t hlen;
    int rc = dx_proto_send_header(p, opcode, data.len, fin, hdr, &hlen, NULL);
    if (rc < 0)
        return rc;
    struct iovec iov[2] = {{hdr, hlen}, {(void *)data.ptr, data.len}};
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
    ssize_t w;
    do
        w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    size_t done = w > 0 ? (size_t)w : 0; /* an error shows again in the next flush */
    if (done < hlen && buf_append(alloc_of(c), &c->raw, hdr + done, hlen - done) != 0)
        return DX_ENOMEM; /* the frame is half-sent: the connection cannot go on */
    size_t from = done > hlen ? done - hlen : 0;
    if (from < data.len && buf_append(alloc_of(c), &c->raw, data.ptr + from, data.len - from) != 0)
        return DX_ENOMEM;
    return 0;
}

#define DIRECT_MIN ((size_t)16 << 10) /* below this the copy costs less than a syscall */

int dx_conn_send_fragment(dx_conn *c, dx_opcode opcode, dx_span data, bool fin) {
    dx_proto *p;
    int rc = sendable(c, &p);
    if (rc < 0)
        return rc;
    if (data.len >= DIRECT_MIN && c->side == DX_SIDE_SERVER && !c->tls && !buffered(c) &&
        data.ptr) {
        rc = send_direct(c, p, opcode, data, fin);
        if (rc == DX_ENOMEM) {
            end_abnormally(c, rc, false);
            return rc;
        }
        return sent(c, rc);
    }
    return sent(c, dx_proto_send(p, opcode, data, fin));
}

/* Compress a whole message into the scratch buffer and queue it with RSV1. */
static int send_compressed(dx_conn *c, dx_proto *p, dx_opcode opcode, dx_span data) {
    const dx_allocator *a = alloc_of(c);
    dx__pmd *m = c->pmd;
    if (m->scratch)
        m->scratch->len = 0;
    dx_span in = data;
    for (;;) {
        size_t len = buf_len(m->scratch), cap = m->scratch ? m->scratch->cap : 0;
        if (len + 64 > cap && buf_reserve(a, &m->scratch, cap ? cap * 2 : data.len / 2 + 1024) != 0)
            return DX_ENOMEM;
        size_t used = 0, wrote = 0;
        int rc = dx_deflate_compress(m->codec, in, true, m->scratch->data + len,
                                     m->scratch->cap - len, &used, &wrote);
        in.ptr += used;
        in.len -= used;
        m->scratch->len += wrote;
        if (rc == 0)
            break;
        if (rc != DX_ENOSPACE)
            return rc;
    }
    return dx_proto_send_rsv(p, opcode, (dx_span){m->scratch->data, m->scratch->len}, true,
                             DX_RSV1);
}

int dx_conn_send_ex(dx_conn *c, dx_opcode opcode, dx_span data, unsigned flags) {
    if (opcode != DX_OP_TEXT && opcode != DX_OP_BINARY)
        return DX_EINVAL;
    if (!c || !c->pmd_on || (flags & DX_SEND_NO_COMPRESS) || data.len < opts_of(c)->compress_min ||
        (!data.ptr && data.len))
        return dx_conn_send_fragment(c, opcode, data, true);
    dx_proto *p;
    int rc = sendable(c, &p);
    if (rc < 0)
        return rc;
    /* refuse before the compressor's context takes the message in: deflate's worst
     * case grows data by well under 1/512 plus a few bytes */
    if (buffered(c) + data.len + data.len / 512 + 64 > opts_of(c)->max_send_queue)
        return sent(c, DX_ELIMIT);
    rc = send_compressed(c, p, opcode, data);
    if (rc < 0) {
        /* the compressor's context may hold this message now: the stream is broken */
        fail_with(c, DX_CLOSE_INTERNAL_ERROR, rc, "compression failed");
        return rc;
    }
    return sent(c, rc);
}

int dx_conn_send_prepared(dx_conn *c, dx_prepared *m) {
    if (!m)
        return DX_EINVAL;
    dx_opcode opcode = dx__prepared_opcode(m);
    dx_span plain = dx__prepared_payload(m);
    if (!c || !c->pmd_on || dx__prepared_no_compress(m) || plain.len < opts_of(c)->compress_min)
        return dx_conn_send_fragment(c, opcode, plain, true);
    dx_proto *p;
    int rc = sendable(c, &p);
    if (rc < 0)
        return rc;
    dx_span z;
    rc = dx__prepared_compressed(m, dx_deflate_window_bits(c->pmd->codec), &z);
    if (rc < 0)
        return rc;
    if (!z.ptr) /* compressing does not pay for this message */
        return dx_conn_send_fragment(c, opcode, plain, true);
    rc = dx_proto_send_rsv(p, opcode, z, true, DX_RSV1);
    if (rc == 0 && (rc = dx_deflate_reset_compressor(c->pmd->codec)) < 0) {
        fail_with(c, DX_CLOSE_INTERNAL_ERROR, rc, "compression failed");
        return rc;
    }
    return sent(c, rc);
}

int dx_conn_send(dx_conn *c, dx_opcode opcode, dx_span data) {
    return dx_conn_send_ex(c, opcode, data, 0);
}

int dx_conn_send_text(dx_conn *c, dx_span text) {
    return dx_conn_send(c, DX_OP_TEXT, text);
}

int dx_conn_send_binary(dx_conn *c, dx_span data) {
    return dx_conn_send(c, DX_OP_BINARY, data);
}

int dx_conn_ping(dx_conn *c, dx_span payload) {
    dx_proto *p;
    int rc = sendable(c, &p);
    if (rc < 0)
        return rc;
    rc = dx_proto_ping(p, payload);
    if (rc == 0)
        track_ping(c, payload);
    return sent(c, rc);
}

/* Start the closing handshake (arguments already checked). */
static int close_with(dx_conn *c, uint16_t code, dx_span reason) {
    if (c->phase != PHASE_OPEN || (c->proto && dx_proto_get_state(c->proto) != DX_STATE_OPEN))
        return 0;
    dx_proto *p = proto_of(c);
    if (!p)
        return DX_ENOMEM;
    int rc = dx_proto_close(p, code, reason);
    if (rc < 0)
        return rc;
    c->close_started_here = true;
    dx_timer_start(c->loop, &c->timer, opts_of(c)->close_timeout_ms);
    dx__conn_want_flush(c);
    return 0;
}

int dx__conn_close(dx_conn *c, uint16_t code, const char *reason) {
    if (c->phase == PHASE_HANDSHAKE) {
        end_abnormally(c, 0, false);
        return 0;
    }
    return close_with(c, code, dx_span_cstr(reason));
}

/* The browser's checks on close(code, reason), on the client; the wire's on the server. */
static int check_close(const dx_conn *c, uint16_t *code_io, dx_span reason) {
    uint16_t code = *code_io;
    if (reason.len && !code)
        code = DX_CLOSE_NORMAL; /* the browser's rule */
    if (code && (c->side == DX_SIDE_CLIENT ? code != DX_CLOSE_NORMAL && (code < 3000 || code > 4999)
                                           : !dx_close_code_is_valid(code)))
        return DX_EBAD_CLOSE_CODE;
    if (reason.len > DX_MAX_CLOSE_REASON || (reason.len && !reason.ptr) ||
        !dx_utf8_valid(reason.ptr, reason.len))
        return DX_ECLOSE_REASON;
    *code_io = code;
    return 0;
}

int dx_conn_close(dx_conn *c, uint16_t code, dx_span reason) {
    if (!c)
        return DX_EINVAL;
    int rc = check_close(c, &code, reason);
    if (rc < 0)
        return rc;
    c->app_closed = true;
    if (c->phase == PHASE_HANDSHAKE) {
        end_abnormally(c, 0, false);
        return 0;
    }
    return close_with(c, code, reason);
}

void dx_conn_abort(dx_conn *c) {
    if (!c)
        return;
    c->app_closed = true;
    end_abnormally(c, 0, false);
}

void dx_conn_pause(dx_conn *c) {
    if (c && c->phase == PHASE_HANDSHAKE) {
        c->pause_on_open = true; /* the handshake itself must go on reading */
        return;
    }
    if (!c || c->paused || c->phase == PHASE_DEAD)
        return;
    c->paused = true;
    dx__conn_update_io(c);
}

void dx_conn_resume(dx_conn *c) {
    if (c && c->phase == PHASE_HANDSHAKE) {
        c->pause_on_open = false;
        return;
    }
    if (!c || !c->paused || c->phase == PHASE_DEAD)
        return;
    c->paused = false;
    dx__conn_update_io(c);
    if (buf_len(c->in))
        dx__conn_want_flush(c); /* the flush hook delivers in first */
}

dx_ready_state dx_conn_state(const dx_conn *c) {
    switch ((dx__phase)c->phase) {
    case PHASE_HANDSHAKE:
        return c->linger_after_raw ? DX_CLOSED : DX_CONNECTING;
    case PHASE_OPEN:
        return !c->proto || dx_proto_get_state(c->proto) == DX_STATE_OPEN ? DX_OPEN : DX_CLOSING;
    case PHASE_LINGER:
        return DX_CLOSING;
    case PHASE_DEAD:
        break;
    }
    return DX_CLOSED;
}

size_t dx_conn_buffered_amount(const dx_conn *c) {
    return buffered(c);
}

dx_span dx_conn_protocol(const dx_conn *c) {
    return (dx_span){(const uint8_t *)c->info, c->info ? c->protocol_len : 0};
}

dx_span dx_conn_extensions(const dx_conn *c) {
    if (!c->info)
        return (dx_span){0};
    return (dx_span){(const uint8_t *)c->info + c->protocol_len, c->extensions_len};
}

const char *dx_conn_url(const dx_conn *c) {
    return c->info ? c->info + c->protocol_len + c->extensions_len : "";
}

int dx_conn_http_status(const dx_conn *c) {
    return c->http_status;
}

void *dx_conn_user(const dx_conn *c) {
    return c->user;
}

void dx_conn_set_user(dx_conn *c, void *user) {
    c->user = user;
}

dx_loop *dx_conn_loop(const dx_conn *c) {
    return c->loop;
}

dx_side dx_conn_side(const dx_conn *c) {
    return (dx_side)c->side;
}

int dx_conn_peer_addr(const dx_conn *c, char *out, size_t cap) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (!out || cap == 0)
        return DX_EINVAL;
    if (c->fd < 0)
        return DX_ECLOSED;
    if (getpeername(c->fd, (struct sockaddr *)&ss, &len) != 0)
        return -errno;
    char host[INET6_ADDRSTRLEN] = "";
    unsigned port = 0;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        port = ntohs(a->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        port = ntohs(a->sin6_port);
    } else {
        int n = snprintf(out, cap, "unix");
        return n < 0 || (size_t)n >= cap ? DX_ENOSPACE : 0;
    }
    int n = snprintf(out, cap, ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, port);
    return n < 0 || (size_t)n >= cap ? DX_ENOSPACE : 0;
}

const char *dx_conn_tls_alert(const dx_conn *c) {
    return c && c->tls ? dx__tls_alert(c->tls, NULL) : NULL;
}
