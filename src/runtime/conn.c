/*
 * The connection layer: a dx_proto on a non-blocking socket, from the end of the
 * opening handshake to the TCP close. Both sides share it; the CONNECTING phase
 * belongs to the server or client role (conn_internal.h).
 *
 * Receive: one recv into the loop's shared buffer, then every frame of it through
 * dx_proto_recv, each event straight to its callback. A connection keeps bytes of
 * its own only when it must: a message spread over several reads (msg[]), or input
 * that arrived while the application paused it (in[]).
 *
 * Send: frames go into the proto's output; the connection joins the loop's flush
 * list, and the before-poll hook writes each listed connection once. EPOLLOUT is
 * asked for only while bytes remain.
 *
 * End: every path leads to finish(), which closes the socket, calls on_error and
 * on_close once, and queues the free for the end of the iteration. After a closing
 * handshake the side that is done shuts its write half and lingers until the peer's
 * FIN (bounded by close_timeout_ms), so the last frames are never lost to a reset.
 */
#include "runtime/conn_internal.h"
#include "duplex/utf8.h"
#include "runtime/loop_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FLUSH_BUDGET 4096  /* connections written per hook pass before yielding */
#define SETTLE_TICK_MS 500 /* first keep-alive tick after open: drop spare buffers */

static uint64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static const dx_allocator *alloc_of(const dx_conn *c) {
    return c->loop->alloc;
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
}

/* ---- byte buffers ------------------------------------------------------------------ */

/* Make room for @need bytes in a buffer of *@cap (doubling, from 256). */
static int reserve(const dx_allocator *a, uint8_t **buf, size_t *cap, size_t used, size_t need) {
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 256;
    while (n < need)
        n = n > SIZE_MAX / 2 ? need : n * 2;
    uint8_t *p = dx__alloc(a, n);
    if (!p)
        return DX_ENOMEM;
    if (used)
        memcpy(p, *buf, used);
    dx__free(a, *buf, *cap);
    *buf = p;
    *cap = n;
    return 0;
}

static void release(const dx_allocator *a, uint8_t **buf, size_t *cap) {
    dx__free(a, *buf, *cap);
    *buf = NULL;
    *cap = 0;
}

int dx__conn_keep_input(dx_conn *c, const uint8_t *p, size_t n) {
    if (reserve(alloc_of(c), &c->in, &c->in_cap, c->in_len, c->in_len + n) != 0)
        return DX_ENOMEM;
    memcpy(c->in + c->in_len, p, n);
    c->in_len += n;
    return 0;
}

int dx__conn_queue_raw(dx_conn *c, const uint8_t *p, size_t n) {
    if (reserve(alloc_of(c), &c->raw, &c->raw_cap, c->raw_len, c->raw_len + n) != 0)
        return DX_ENOMEM;
    memcpy(c->raw + c->raw_len, p, n);
    c->raw_len += n;
    dx__conn_want_flush(c);
    return 0;
}

int dx__conn_set_info(dx_conn *c, dx_span resource, dx_span protocol, dx_span extensions,
                      const char *url) {
    size_t url_len = url ? strlen(url) : 0;
    size_t size = resource.len + protocol.len + extensions.len + url_len + 1;
    char *block = dx__alloc(alloc_of(c), size), *p = block;
    if (!block)
        return DX_ENOMEM;
    /* the arguments may point into the old block: copy first, free after */
    const dx_span parts[3] = {resource, protocol, extensions};
    dx_span *dst[3] = {&c->resource, &c->protocol, &c->extensions};
    for (int i = 0; i < 3; i++) {
        if (parts[i].len)
            memcpy(p, parts[i].ptr, parts[i].len);
        *dst[i] = (dx_span){(const uint8_t *)p, parts[i].len};
        p += parts[i].len;
    }
    if (url_len)
        memcpy(p, url, url_len);
    p[url_len] = '\0';
    c->url = p;
    dx__free(alloc_of(c), c->info, c->info_size);
    c->info = block;
    c->info_size = size;
    return 0;
}

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

static size_t buffered(const dx_conn *c) {
    return c->raw_len + (c->proto ? dx_proto_output(c->proto).len : 0);
}

void dx__conn_update_io(dx_conn *c) {
    if (c->phase == PHASE_DEAD)
        return;
    if (c->fd < 0)
        return; /* the client has no socket while it resolves */
    unsigned want = 0;
    if (!c->paused || c->phase == PHASE_LINGER)
        want |= DX_IO_READ;
    if (buffered(c) > 0 || c->want_write)
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

static void free_conn(dx_defer *d, void *user) {
    (void)d;
    dx_conn *c = user;
    const dx_allocator *a = alloc_of(c);
    if (c->role && c->role->release)
        c->role->release(c);
    dx_proto_destroy(c->proto);
    release(a, &c->in, &c->in_cap);
    release(a, &c->raw, &c->raw_cap);
    release(a, &c->msg, &c->msg_cap);
    dx__free(a, c->info, c->info_size);
    dx__free(a, c, sizeof(*c));
}

/* The single exit: close the socket, tell the application once, free later. */
static void finish(dx_conn *c) {
    if (c->phase == PHASE_DEAD)
        return;
    c->phase = PHASE_DEAD;
    dx_io_stop(c->loop, &c->io);
    c->io_events = 0;
    dx_timer_stop(c->loop, &c->timer);
    unlist_flush(c);
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    if (c->role && c->role->on_finish)
        c->role->on_finish(c);
    if (c->seen) {
        if (c->error && c->cb->on_error)
            c->cb->on_error(c, c->error, c->user);
        dx_close_info info = {.code = c->close_code ? c->close_code : DX_CLOSE_ABNORMAL,
                              .reason = c->close_reason,
                              .clean = c->clean,
                              .remote = c->remote,
                              .error = c->error};
        if (c->cb->on_close)
            c->cb->on_close(c, &info, c->user);
    }
    dx_loop_defer(c->loop, &c->defer, free_conn, c);
    if (c->role && c->role->after_close)
        c->role->after_close(c);
}

/* Abnormal end: no closing handshake (or not a finished one). */
static void end_abnormally(dx_conn *c, int err, bool remote) {
    if (c->phase == PHASE_DEAD)
        return;
    if (!c->close_code) { /* no close event yet: the transport just ended */
        c->close_code = DX_CLOSE_ABNORMAL;
        c->close_reason = (dx_span){0};
        c->remote = remote;
    }
    if (!c->error)
        c->error = err;
    finish(c);
}

void dx__conn_fail(dx_conn *c, int err) {
    end_abnormally(c, err, false);
}

/* Our side is done: shut the write half and wait (bounded) for the peer's FIN. */
static void enter_linger(dx_conn *c) {
    c->phase = PHASE_LINGER;
    c->paused = false;
    /* §7.1.1: after a clean close the server closes TCP first; a client waits */
    if (c->side == DX_SIDE_SERVER || !c->clean)
        shutdown(c->fd, SHUT_WR);
    dx_timer_start(c->loop, &c->timer, c->opts->close_timeout_ms);
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

static void flush(dx_conn *c) {
    if (c->phase == PHASE_DEAD || c->fd < 0)
        return;
    if (c->raw_len) {
        ssize_t w = write_some(c->fd, c->raw, c->raw_len);
        if (w < 0) {
            end_abnormally(c, (int)w, true);
            return;
        }
        memmove(c->raw, c->raw + w, c->raw_len - (size_t)w);
        c->raw_len -= (size_t)w;
        if (!c->raw_len)
            release(alloc_of(c), &c->raw, &c->raw_cap);
    }
    if (!c->raw_len && c->proto) {
        dx_span out = dx_proto_output(c->proto);
        if (out.len) {
            ssize_t w = write_some(c->fd, out.ptr, out.len);
            if (w < 0) {
                end_abnormally(c, (int)w, true);
                return;
            }
            dx_proto_output_consume(c->proto, (size_t)w);
        }
    }
    dx__conn_update_io(c);
    if (c->drain_wanted && buffered(c) <= c->opts->low_water && c->phase == PHASE_OPEN &&
        dx_proto_get_state(c->proto) == DX_STATE_OPEN) {
        c->drain_wanted = false;
        if (c->cb->on_drain)
            c->cb->on_drain(c, c->user);
    }
    if (c->phase == PHASE_OPEN && dx_proto_is_done(c->proto))
        enter_linger(c);
    else if (c->linger_after_raw && !c->raw_len && c->phase == PHASE_HANDSHAKE)
        enter_linger(c);
}

static void deliver_kept(dx_conn *c);

static void kick(dx_defer *d, void *user) {
    (void)d;
    (void)user; /* only keeps the next wait from blocking */
}

static void flush_hook(dx_loop *l, dx_hook *h, void *user) {
    (void)user;
    for (int budget = FLUSH_BUDGET; l->flush_head && budget > 0; budget--) {
        dx_conn *c = l->flush_head;
        unlist_flush(c);
        if (c->in_pending && !c->paused && c->phase == PHASE_OPEN)
            deliver_kept(c);
        flush(c);
    }
    if (l->flush_head)
        dx_loop_defer(l, &l->flush_kick, kick, NULL);
    else
        dx_hook_stop(l, h);
}

/* ---- reading -------------------------------------------------------------------------- */

ssize_t dx__conn_read(dx_conn *c, uint8_t **buf) {
    dx_loop *l = c->loop;
    if (!l->read_buf) {
        l->read_buf = dx__alloc(l->alloc, DX_READ_BUFFER);
        if (!l->read_buf)
            return DX_ENOMEM;
    }
    for (;;) {
        ssize_t n = recv(c->fd, l->read_buf, DX_READ_BUFFER, 0);
        if (n >= 0) {
            *buf = l->read_buf;
            c->last_recv = dx_loop_now(l);
            return n;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return DX_EINCOMPLETE;
        return -errno;
    }
}

static void track_ping(dx_conn *c, dx_span payload) {
    size_t n = payload.len < sizeof c->ping_data ? payload.len : sizeof c->ping_data;
    if (n)
        memcpy(c->ping_data, payload.ptr, n);
    c->ping_len = (uint8_t)(payload.len ? payload.len : 0xFF); /* 0xFF: empty payload */
    c->ping_sent_us = now_us();
}

static bool matches_ping(const dx_conn *c, dx_span payload) {
    size_t want = c->ping_len == 0xFF ? 0 : c->ping_len;
    if (!c->ping_len || payload.len != want)
        return false;
    size_t n = want < sizeof c->ping_data ? want : sizeof c->ping_data;
    return n == 0 || memcmp(c->ping_data, payload.ptr, n) == 0;
}

static void on_data(dx_conn *c, const dx_event *ev) {
    c->last_active = dx_loop_now(c->loop);
    if (c->opts->streaming) {
        dx_fragment f = {.opcode = ev->u.data.opcode,
                         .data = ev->u.data.data,
                         .first = ev->u.data.first,
                         .fin = ev->u.data.fin};
        if (c->cb->on_fragment)
            c->cb->on_fragment(c, &f, c->user);
        return;
    }
    dx_span d = ev->u.data.data;
    if (ev->u.data.first && ev->u.data.fin) { /* whole in this read: zero copy */
        if (c->cb->on_message)
            c->cb->on_message(c, ev->u.data.opcode, d, c->user);
        return;
    }
    if (ev->u.data.first) {
        c->msg_len = 0;
        c->msg_opcode = (uint8_t)ev->u.data.opcode;
    }
    /* the proto bounds the message by max_message before any byte arrives */
    if (reserve(alloc_of(c), &c->msg, &c->msg_cap, c->msg_len, c->msg_len + d.len) != 0) {
        end_abnormally(c, DX_ENOMEM, false);
        return;
    }
    if (d.len)
        memcpy(c->msg + c->msg_len, d.ptr, d.len);
    c->msg_len += d.len;
    if (ev->u.data.fin) {
        size_t len = c->msg_len;
        c->msg_len = 0;
        if (c->cb->on_message)
            c->cb->on_message(c, (dx_opcode)c->msg_opcode, (dx_span){c->msg, len}, c->user);
    }
}

static void on_close_event(dx_conn *c, const dx_event *ev) {
    c->close_code = ev->u.close.code;
    c->close_reason = ev->u.close.reason;
    if (ev->u.close.remote) {
        c->clean = true;
        c->remote = !c->close_started_here;
    } else {
        c->remote = false;
        if (!c->error)
            c->error = DX_EPROTOCOL;
    }
    /* the answering close frame (or ours) is in the output: wait for it to drain */
    dx_timer_start(c->loop, &c->timer, c->opts->close_timeout_ms);
}

static void handle_event(dx_conn *c, const dx_event *ev) {
    switch (ev->type) {
    case DX_EV_DATA:
        on_data(c, ev);
        break;
    case DX_EV_PING:
        if (c->cb->on_ping)
            c->cb->on_ping(c, ev->u.ping, c->user);
        break;
    case DX_EV_PONG: {
        int64_t rtt = -1;
        if (matches_ping(c, ev->u.pong)) {
            rtt = (int64_t)(now_us() - c->ping_sent_us);
            c->ping_len = 0;
            c->pong_deadline = 0;
        }
        if (c->cb->on_pong)
            c->cb->on_pong(c, ev->u.pong, rtt, c->user);
        break;
    }
    case DX_EV_CLOSE:
        on_close_event(c, ev);
        break;
    case DX_EV_NONE:
        break;
    }
}

/*
 * Run @len bytes through the proto, one event at a time. Stops when the application
 * pauses (the rest is kept in in[]) or closes the connection. @buf is the loop's read
 * buffer or in[] itself.
 */
static void deliver(dx_conn *c, uint8_t *buf, size_t len) {
    size_t off = 0;
    while (off < len && c->phase == PHASE_OPEN) {
        if (c->paused) {
            size_t rest = len - off;
            if (buf == c->in) {
                memmove(c->in, c->in + off, rest);
                c->in_len = rest;
            } else if (dx__conn_keep_input(c, buf + off, rest) != 0) {
                end_abnormally(c, DX_ENOMEM, false);
                return;
            }
            c->in_pending = true;
            return;
        }
        dx_event ev;
        size_t used = 0;
        int rc = dx_proto_recv(c->proto, buf + off, len - off, &used, &ev);
        if (rc < 0) {
            end_abnormally(c, rc, false);
            return;
        }
        off += used;
        handle_event(c, &ev);
        if (ev.type == DX_EV_NONE && used == 0)
            break;
    }
    if (buf == c->in)
        c->in_len = 0;
    if (c->phase == PHASE_OPEN && dx_proto_wants_write(c->proto))
        dx__conn_want_flush(c);
}

/* Deliver what in[] kept (after a resume), then give the buffer back. */
static void deliver_kept(dx_conn *c) {
    c->in_pending = false;
    deliver(c, c->in, c->in_len);
    if (c->phase != PHASE_DEAD && !c->in_pending)
        release(alloc_of(c), &c->in, &c->in_cap);
}

/* The transport ended (EOF, or a read error). */
static void transport_ended(dx_conn *c, int err) {
    if (c->phase == PHASE_OPEN && !c->clean) {
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
        return;                       /* after our close: the peer's bytes no longer matter */
    if (c->in_pending || c->paused) { /* keep order behind what waits already */
        if (dx__conn_keep_input(c, buf, (size_t)n) != 0) {
            end_abnormally(c, DX_ENOMEM, false);
            return;
        }
        c->in_pending = true;
        if (!c->paused)
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
            c->role->on_io(c, events);
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

static uint64_t min_u64(uint64_t a, uint64_t b) {
    return a < b ? a : b;
}

/* Free the spare buffers of a quiet connection. */
static void trim(dx_conn *c) {
    if (!c->msg_len)
        release(alloc_of(c), &c->msg, &c->msg_cap);
    if (!c->in_pending && !c->in_len)
        release(alloc_of(c), &c->in, &c->in_cap);
    dx_proto_trim(c->proto);
}

static int send_ping(dx_conn *c, dx_span payload) {
    int rc = dx_proto_ping(c->proto, payload);
    if (rc == 0) {
        track_ping(c, payload);
        dx__conn_want_flush(c);
    }
    return rc;
}

static void keepalive_tick(dx_conn *c) {
    const dx_conn_options *o = c->opts;
    uint64_t now = dx_loop_now(c->loop);
    if (c->pong_deadline && now >= c->pong_deadline) {
        /* a dead peer will not answer a close either: say why, and go */
        dx__conn_close(c, DX_CLOSE_INTERNAL_ERROR, "keep-alive ping timeout");
        flush(c);
        end_abnormally(c, DX_EPING_TIMEOUT, false);
        return;
    }
    if (o->idle_timeout_ms != DX_NEVER && now - c->last_active >= o->idle_timeout_ms) {
        c->error = DX_EIDLE_TIMEOUT;
        dx__conn_close(c, DX_CLOSE_GOING_AWAY, "idle timeout");
        return;
    }
    if (o->ping_interval_ms != DX_NEVER && !c->pong_deadline &&
        now - c->last_recv >= o->ping_interval_ms) {
        uint8_t payload[4];
        dx__store_be16(payload, (uint16_t)(c->ping_seq >> 16));
        dx__store_be16(payload + 2, (uint16_t)c->ping_seq);
        c->ping_seq++;
        if (send_ping(c, (dx_span){payload, sizeof payload}) == 0)
            c->pong_deadline = now + o->pong_timeout_ms;
    }
    if (!dx_proto_wants_write(c->proto))
        trim(c);
    uint64_t next = UINT64_MAX;
    if (c->pong_deadline)
        next = c->pong_deadline;
    else if (o->ping_interval_ms != DX_NEVER)
        next = c->last_recv + o->ping_interval_ms;
    if (o->idle_timeout_ms != DX_NEVER)
        next = min_u64(next, c->last_active + o->idle_timeout_ms);
    if (next == UINT64_MAX)
        next = now + 60000; /* still trim now and then */
    dx_timer_start(c->loop, &c->timer, next > now ? next - now : 1);
}

static void on_timer(dx_timer *t, void *user) {
    (void)t;
    dx_conn *c = user;
    switch ((dx__phase)c->phase) {
    case PHASE_HANDSHAKE:
        if (c->linger_after_raw)
            finish(c);
        else
            c->role->on_timeout(c);
        break;
    case PHASE_OPEN:
        if (dx_proto_get_state(c->proto) != DX_STATE_OPEN) {
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

int dx__conn_init(dx_conn *c, dx_loop *loop, int fd, dx_side side, const dx__conn_role *role,
                  void *owner, const dx_conn_options *opts, const dx_conn_callbacks *cb,
                  void *user) {
    c->loop = loop;
    c->fd = fd;
    c->side = (uint8_t)side;
    c->role = role;
    c->owner = owner;
    c->opts = opts;
    c->cb = cb;
    c->user = user;
    c->url = "";
    c->phase = PHASE_HANDSHAKE;
    c->last_recv = c->last_active = dx_loop_now(loop);
    dx_io_init(&c->io, fd, on_io, c);
    dx_timer_init(&c->timer, on_timer, c);
    dx_timer_start(loop, &c->timer, opts->handshake_timeout_ms);
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

void dx__conn_detach_fd(dx_conn *c) {
    dx_io_stop(c->loop, &c->io);
    c->io_events = 0;
    c->want_write = false;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

int dx__conn_open(dx_conn *c, size_t head_len) {
    dx_proto_config cfg = {.side = (dx_side)c->side,
                           .limits = {.max_frame = c->opts->max_frame,
                                      .max_message = c->opts->max_message,
                                      .max_send_queue = c->opts->max_send_queue},
                           .allocator = alloc_of(c)};
    int rc = dx_proto_create(&c->proto, &cfg);
    if (rc < 0) {
        dx__conn_fail(c, rc);
        return rc;
    }
    c->phase = PHASE_OPEN;
    c->seen = true;
    c->paused = false;
    c->last_recv = c->last_active = dx_loop_now(c->loop);
    dx_timer_start(c->loop, &c->timer, SETTLE_TICK_MS);
    if (head_len > c->in_len)
        head_len = c->in_len;
    c->in_len -= head_len;
    if (c->in_len)
        memmove(c->in, c->in + head_len, c->in_len);
    dx__conn_update_io(c);
    if (c->cb->on_open)
        c->cb->on_open(c, c->user);
    if (c->phase != PHASE_OPEN)
        return 0;
    if (c->in_len) /* frames that came with the handshake */
        deliver_kept(c);
    else
        release(alloc_of(c), &c->in, &c->in_cap);
    return 0;
}

/* ---- the public API --------------------------------------------------------------------- */

static int check_sendable(const dx_conn *c) {
    if (!c)
        return DX_EINVAL;
    if (c->phase == PHASE_HANDSHAKE)
        return DX_ECONNECTING;
    if (c->phase != PHASE_OPEN || dx_proto_get_state(c->proto) != DX_STATE_OPEN)
        return DX_ECLOSED;
    return 0;
}

static int sent(dx_conn *c, int rc) {
    if (rc == DX_ELIMIT) {
        c->drain_wanted = true;
        if (c->opts->backpressure == DX_BP_CLOSE) {
            c->error = DX_ESEND_QUEUE;
            dx__conn_close(c, DX_CLOSE_POLICY_VIOLATION, "send queue full");
        }
        return DX_ESEND_QUEUE;
    }
    if (rc < 0)
        return rc;
    c->last_active = dx_loop_now(c->loop);
    dx__conn_want_flush(c);
    if (buffered(c) > c->opts->low_water)
        c->drain_wanted = true;
    return 0;
}

int dx_conn_send_fragment(dx_conn *c, dx_opcode opcode, dx_span data, bool fin) {
    int rc = check_sendable(c);
    if (rc < 0)
        return rc;
    return sent(c, dx_proto_send(c->proto, opcode, data, fin));
}

int dx_conn_send(dx_conn *c, dx_opcode opcode, dx_span data) {
    if (opcode != DX_OP_TEXT && opcode != DX_OP_BINARY)
        return DX_EINVAL;
    return dx_conn_send_fragment(c, opcode, data, true);
}

int dx_conn_send_text(dx_conn *c, dx_span text) {
    return dx_conn_send(c, DX_OP_TEXT, text);
}

int dx_conn_send_binary(dx_conn *c, dx_span data) {
    return dx_conn_send(c, DX_OP_BINARY, data);
}

int dx_conn_ping(dx_conn *c, dx_span payload) {
    int rc = check_sendable(c);
    if (rc < 0)
        return rc;
    rc = dx_proto_ping(c->proto, payload);
    if (rc == 0)
        track_ping(c, payload);
    return sent(c, rc);
}

/* Start the closing handshake (arguments already checked). */
static int close_with(dx_conn *c, uint16_t code, dx_span reason) {
    if (c->phase != PHASE_OPEN || dx_proto_get_state(c->proto) != DX_STATE_OPEN)
        return 0;
    int rc = dx_proto_close(c->proto, code, reason);
    if (rc < 0)
        return rc;
    c->close_started_here = true;
    dx_timer_start(c->loop, &c->timer, c->opts->close_timeout_ms);
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

/* The browser's checks on close(code, reason), side by side. */
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
    if (!c || c->paused || c->phase == PHASE_DEAD)
        return;
    c->paused = true;
    dx__conn_update_io(c);
}

void dx_conn_resume(dx_conn *c) {
    if (!c || !c->paused || c->phase == PHASE_DEAD)
        return;
    c->paused = false;
    dx__conn_update_io(c);
    if (c->in_pending)
        dx__conn_want_flush(c); /* the flush hook delivers in[] first */
}

dx_ready_state dx_conn_state(const dx_conn *c) {
    switch ((dx__phase)c->phase) {
    case PHASE_HANDSHAKE:
        return c->linger_after_raw ? DX_CLOSED : DX_CONNECTING;
    case PHASE_OPEN:
        return dx_proto_get_state(c->proto) == DX_STATE_OPEN ? DX_OPEN : DX_CLOSING;
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
    return c->protocol;
}

dx_span dx_conn_extensions(const dx_conn *c) {
    return c->extensions;
}

const char *dx_conn_url(const dx_conn *c) {
    return c->url;
}

dx_span dx_conn_resource(const dx_conn *c) {
    return c->resource;
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
