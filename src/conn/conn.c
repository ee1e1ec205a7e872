/*
 * The WebSocket connection: a dx_proto on a dx_stream, from the end of the opening
 * handshake to the end of the stream. Both sides share it; the CONNECTING phase
 * belongs to the server or client role (conn_internal.h). This file holds the life of
 * a connection (set-up, open, the end) and its input; the send API is conn_send.c,
 * permessage-deflate conn_deflate.c, the timer keepalive.c.
 *
 * Receive: the stream hands each read to dx__conn_deliver, which runs it through
 * dx_proto_recv, each event straight to its callback. A whole message that arrived in
 * one read is delivered from the stream's buffer (zero copy); one spread over several
 * reads is reassembled in msg. Input the application paused is left to the stream,
 * which offers it again on resume.
 *
 * Send: frames go into the stream's queue (the proto appends to it), and the stream
 * writes every listed stream with one writev before the loop waits.
 *
 * Idle: a connection with nothing in flight gives back its buffers and even its proto
 * (a fresh one is made when bytes come or go), so what a server holds per idle client
 * is the dx_conn itself.
 *
 * End: a connection ends through its stream: dx_stream_close once the closing
 * handshake is over (the server closes TCP at once after a clean close, a client
 * waits for the server's FIN, anything unclean half-closes and lingers for the peer's
 * FIN so that the last frames are not lost to a reset), or dx_stream_abort. The
 * stream's on_close is where on_error and on_close reach the application, once; the
 * stream layer frees the connection at the end of that iteration.
 */
#include "conn/conn_internal.h"

#include <errno.h>

/* ---- options ------------------------------------------------------------------- */

static uint32_t ms_or(uint32_t v, uint32_t def) {
    return v ? v : def;
}

void dx__conn_options_resolve(const dx_conn_options *in, dx_conn_options *out) {
    static const dx_conn_options zero;
    *out = in ? *in : zero;
    if (!out->limits.max_message)
        out->limits.max_message = DX_DEFAULT_MAX_MESSAGE;
    if (!out->limits.max_frame)
        out->limits.max_frame = out->limits.max_message;
    if (!out->send.max_queue)
        out->send.max_queue = DX_DEFAULT_MAX_SEND_QUEUE;
    if (!out->send.low_water)
        out->send.low_water = DX_DEFAULT_LOW_WATER;
    if (out->send.low_water > out->send.max_queue)
        out->send.low_water = out->send.max_queue;
    if (!out->limits.max_head)
        out->limits.max_head = DX_DEFAULT_MAX_HEAD;
    out->timeouts.handshake_ms = ms_or(out->timeouts.handshake_ms, DX_DEFAULT_HANDSHAKE_TIMEOUT_MS);
    out->timeouts.close_ms = ms_or(out->timeouts.close_ms, DX_DEFAULT_CLOSE_TIMEOUT_MS);
    out->timeouts.ping_interval_ms =
        ms_or(out->timeouts.ping_interval_ms, DX_DEFAULT_PING_INTERVAL_MS);
    out->timeouts.pong_ms = ms_or(out->timeouts.pong_ms, DX_DEFAULT_PONG_TIMEOUT_MS);
    out->timeouts.idle_ms = ms_or(out->timeouts.idle_ms, DX_DEFAULT_IDLE_TIMEOUT_MS);
    if (!out->compression.min_size)
        out->compression.min_size = DX_DEFAULT_COMPRESS_MIN;
}

/* ---- byte buffers ------------------------------------------------------------------ */

/* Make room for @need bytes in *@bp (doubling, from 256 bytes of data). */
int dx__buf_reserve(const dx_allocator *a, dx__buf **bp, size_t need) {
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

int dx__buf_append(const dx_allocator *a, dx__buf **bp, const uint8_t *p, size_t n) {
    if (dx__buf_reserve(a, bp, dx__buf_len(*bp) + n) != 0)
        return DX_ENOMEM;
    if (n)
        memcpy((*bp)->data + (*bp)->len, p, n);
    (*bp)->len += n;
    return 0;
}

void dx__buf_free(const dx_allocator *a, dx__buf **bp) {
    if (*bp)
        dx__free(a, *bp, sizeof(dx__buf) + (*bp)->cap);
    *bp = NULL;
}

/* ---- strings the connection reports --------------------------------------------------- */

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
        block = dx__alloc(dx__conn_alloc(c), size);
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
    dx__free(dx__conn_alloc(c), c->info, info_size(c));
    c->info = block;
    c->protocol_len = (uint16_t)protocol.len;
    c->extensions_len = (uint16_t)extensions.len;
    return 0;
}

/* ---- the proto, made on demand ------------------------------------------------------ */

dx_proto *dx__conn_proto(dx_conn *c) {
    if (c->proto)
        return c->proto;
    const dx_conn_options *o = dx__conn_opts(c);
    /* With permessage-deflate the codec holds a compressed message to max_message
     * once inflated, and on_data an uncompressed one; the wire may carry a little
     * more than that for a message that does not compress (deflate's worst case). */
    size_t slack = c->pmd_on ? o->limits.max_message / 256 + 1024 : 0;
    dx_proto_config cfg = {.side = (dx_side)c->side,
                           .rsv_allowed = c->pmd_on ? DX_RSV1 : 0,
                           .limits = {.max_frame = o->limits.max_frame + slack,
                                      .max_message = o->limits.max_message + slack,
                                      .max_send_queue = o->send.max_queue},
                           .allocator = dx__conn_alloc(c),
                           .output = dx__stream_out(&c->stream)};
    int rc = dx_proto_create(&c->proto, &cfg);
    if (rc < 0) {
        c->proto = NULL;
        dx__conn_end_abnormally(c, rc, false);
        return NULL;
    }
    return c->proto;
}

/* ---- the end -------------------------------------------------------------------------- */

/* The stream is gone: tell the application once (conn_stream_class's on_close). */
static void on_stream_close(dx_stream *s, int err, void *user) {
    (void)user;
    dx_conn *c = dx__conn_of(s);
    if (c->phase == PHASE_DEAD)
        return;
    if (err == DX_EPROXY)
        c->http_status = (uint16_t)dx_stream_proxy_status(s); /* 407: credentials... */
    if (c->phase != PHASE_ENDING) {                           /* the transport ended under us */
        if (!c->close_code) {
            c->close_code = DX_CLOSE_ABNORMAL;
            c->remote = !c->close_started_here;
        }
        if (!c->stream.error)
            c->stream.error = err;
    }
    c->phase = PHASE_DEAD;
    const dx__conn_role *role = dx__conn_class_of(c)->role;
    if (role->on_finish)
        role->on_finish(c);
    if (c->seen) {
        const dx_conn_callbacks *cb = dx__conn_cb(c);
        /* a clean close the library started (idle, send queue) is not a failure:
         * its reason is only in the close info */
        if (c->stream.error && !c->clean && cb->on_error)
            cb->on_error(c, c->stream.error, s->user);
        dx_close_info info = {.code = c->close_code ? c->close_code : DX_CLOSE_ABNORMAL,
                              .reason = c->close_code == DX_CLOSE_ABNORMAL
                                            ? (dx_span){0}
                                            : dx_proto_close_reason(c->proto),
                              .clean = c->clean,
                              .remote = c->remote,
                              .error = c->stream.error};
        if (cb->on_close)
            cb->on_close(c, &info, s->user);
    }
    if (role->after_close)
        role->after_close(c);
}

/* The stream layer is done with it: free everything (the end of the iteration). */
static void release_conn(dx_stream *s) {
    dx_conn *c = dx__conn_of(s);
    const dx_allocator *a = dx__conn_alloc(c);
    dx__conn_free_pmd(c); /* shares its slot with the role's data */
    const dx__conn_role *role = dx__conn_class_of(c)->role;
    if (role->release)
        role->release(c);
    dx_proto_destroy(c->proto);
    dx__buf_free(a, &c->msg);
    dx__free(a, c->info, info_size(c));
    dx__free(a, c, sizeof(*c));
}

void dx__conn_end_abnormally(dx_conn *c, int err, bool remote) {
    if (c->phase == PHASE_DEAD)
        return;
    if (!c->close_code) { /* no close event yet: the transport just ended */
        c->close_code = DX_CLOSE_ABNORMAL;
        /* a peer that drops TCP after our close frame did not start the closing */
        c->remote = remote && !c->close_started_here;
    }
    if (!c->stream.error)
        c->stream.error = err;
    c->phase = PHASE_ENDING;
    dx_stream_abort(&c->stream, err);
}

void dx__conn_fail(dx_conn *c, int err) {
    dx__conn_end_abnormally(c, err, false);
}

void dx__conn_fail_with(dx_conn *c, uint16_t code, int err, const char *why) {
    if (!c->stream.error)
        c->stream.error = err;
    dx__conn_close(c, code, why);
}

/* The closing handshake is over (or failed) and its last frame is queued: end the
 * stream. §7.1.1: the server closes TCP first; the peer sent nothing after its close
 * frame, so no unread byte can turn the close into a reset. A client waits for the
 * server's FIN (bounded). Anything unclean half-closes and lingers. */
static void end_stream(dx_conn *c) {
    c->phase = PHASE_ENDING;
    dx_stream_close_mode how = !c->clean                   ? DX_STREAM_CLOSE_LINGER
                               : c->side == DX_SIDE_SERVER ? DX_STREAM_CLOSE_NOW
                                                           : DX_STREAM_CLOSE_AWAIT;
    dx_stream_close(&c->stream, how);
}

void dx__conn_output_changed(dx_conn *c) {
    if (c->phase != PHASE_OPEN || !c->proto)
        return;
    if (dx_proto_wants_write(c->proto))
        dx__stream_want_flush(&c->stream);
    if (dx_proto_get_state(c->proto) == DX_CLOSED)
        end_stream(c);
}

void dx__conn_end_after_raw(dx_conn *c) {
    c->seen = false; /* refused: the application is done with it */
    c->phase = PHASE_ENDING;
    dx_stream_close(&c->stream, DX_STREAM_CLOSE_LINGER);
}

/* ---- input -------------------------------------------------------------------------- */

static void on_data_event(dx_conn *c, const dx_event *ev) {
    const dx_conn_callbacks *cb = dx__conn_cb(c);
    void *user = c->stream.user;
    c->last_active = dx__conn_now_ms(c);
    if (c->pmd_on) {
        dx__pmd *m = c->pmd;
        if (ev->u.data.first) {
            m->in_compressed = ev->u.data.rsv & DX_RSV1;
            m->plain_len = 0;
        }
        if (m->in_compressed) {
            dx__conn_on_compressed(c, ev);
            return;
        }
        m->plain_len += ev->u.data.data.len;
        if (m->plain_len > dx__conn_opts(c)->limits.max_message) {
            dx__conn_fail_with(c, DX_CLOSE_MESSAGE_TOO_BIG, DX_ELIMIT, "message too big");
            return;
        }
    }
    if (dx__conn_opts(c)->streaming) {
        dx_fragment f = {.opcode = ev->u.data.opcode,
                         .data = ev->u.data.data,
                         .first = ev->u.data.first,
                         .fin = ev->u.data.fin};
        if (cb->on_fragment)
            cb->on_fragment(c, &f, user);
        return;
    }
    dx_span d = ev->u.data.data;
    if (ev->u.data.first && ev->u.data.fin) { /* whole in this read: zero copy */
        if (cb->on_message)
            cb->on_message(c, ev->u.data.opcode, d, user);
        return;
    }
    if (ev->u.data.first) {
        if (c->msg)
            c->msg->len = 0;
        c->msg_opcode = (uint8_t)ev->u.data.opcode;
    }
    /* the proto bounds the message by max_message before any byte arrives */
    if (dx__buf_append(dx__conn_alloc(c), &c->msg, d.ptr, d.len) != 0) {
        dx__conn_end_abnormally(c, DX_ENOMEM, false);
        return;
    }
    if (ev->u.data.fin) {
        size_t len = c->msg->len;
        c->msg->len = 0; /* the buffer is kept for the next message */
        if (cb->on_message)
            cb->on_message(c, (dx_opcode)c->msg_opcode, (dx_span){c->msg->data, len}, user);
        if (len > DX__BUF_KEEP_MAX)
            dx__conn_settle_soon(c);
    }
}

static void on_close_event(dx_conn *c, const dx_event *ev) {
    c->close_code = ev->u.close.code;
    if (ev->u.close.remote) {
        c->clean = true;
        c->remote = !c->close_started_here;
    } else {
        c->remote = false;
        if (!c->stream.error)
            c->stream.error = DX_EPROTOCOL;
    }
}

static void handle_event(dx_conn *c, const dx_event *ev) {
    const dx_conn_callbacks *cb = dx__conn_cb(c);
    switch (ev->type) {
    case DX_EV_DATA:
        on_data_event(c, ev);
        break;
    case DX_EV_PING:
        if (cb->on_ping)
            cb->on_ping(c, ev->u.ping, c->stream.user);
        break;
    case DX_EV_PONG: {
        int64_t rtt = -1;
        if (dx__conn_pong_matches(c, ev->u.pong)) {
            rtt = (int64_t)(uint32_t)((uint32_t)dx__conn_now_us() - c->ping_sent_us);
            dx__conn_pong_seen(c);
        }
        if (cb->on_pong)
            cb->on_pong(c, ev->u.pong, rtt, c->stream.user);
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
 * like any output: a peer that pings and never reads would otherwise be served for
 * ever. Past the cap, stop reading until the output drains to low_water (the peer's
 * TCP flow control then slows it), or, under DX_BP_CLOSE, close with 1008. */
static void output_over_cap(dx_conn *c) {
    if (dx__conn_opts(c)->send.when_full == DX_BP_CLOSE) {
        if (dx_proto_get_state(c->proto) == DX_OPEN) {
            c->stream.error = DX_ESEND_QUEUE;
            dx__conn_close(c, DX_CLOSE_POLICY_VIOLATION, "send queue full");
        }
        return;
    }
    c->out_full = true;
    dx__stream_expect_drain(&c->stream);
    dx_stream_pause(&c->stream);
}

size_t dx__conn_deliver(dx_conn *c, uint8_t *buf, size_t len) {
    size_t off = 0;
    while (off < len && c->phase == PHASE_OPEN) {
        if (c->app_paused || c->out_full)
            return off; /* the stream keeps the rest for the resume */
        dx_proto *p = dx__conn_proto(c);
        if (!p)
            return len;
        dx_event ev;
        size_t used = 0;
        int rc = dx_proto_recv(p, buf + off, len - off, &used, &ev);
        if (rc < 0) {
            dx__conn_end_abnormally(c, rc, false);
            return len;
        }
        off += used;
        handle_event(c, &ev);
        if (c->phase == PHASE_OPEN && c->proto &&
            dx_outq_len(dx__stream_out(&c->stream)) > dx__conn_opts(c)->send.max_queue)
            output_over_cap(c);
        if (ev.type == DX_EV_NONE && used == 0)
            break;
    }
    /* a close answer that completes the closing handshake leaves nothing to write,
     * but ending the stream is decided here */
    dx__conn_output_changed(c);
    return len; /* after the end, the rest no longer matters */
}

/* ---- the stream's callbacks ----------------------------------------------------------- */

static size_t on_stream_data(dx_stream *s, uint8_t *data, size_t len, void *user) {
    (void)user;
    dx_conn *c = dx__conn_of(s);
    c->last_recv = dx__conn_now_ms(c);
    switch ((dx__phase)c->phase) {
    case PHASE_HANDSHAKE:
        return dx__conn_class_of(c)->role->on_data(c, data, len);
    case PHASE_OPEN:
        return dx__conn_deliver(c, data, len);
    default:
        return len; /* ending: the peer's bytes no longer matter */
    }
}

static void on_stream_open(dx_stream *s, void *user) {
    (void)user;
    dx_conn *c = dx__conn_of(s);
    const dx__conn_role *role = dx__conn_class_of(c)->role;
    if (c->phase == PHASE_HANDSHAKE && role->on_open)
        role->on_open(c);
}

static void on_stream_eof(dx_stream *s, void *user) {
    (void)user;
    dx_conn *c = dx__conn_of(s);
    if (c->phase == PHASE_HANDSHAKE) {
        dx__conn_class_of(c)->role->on_eof(c);
        return;
    }
    /* the transport ended without the closing handshake (or after it, early) */
    if (c->phase == PHASE_OPEN && !c->clean && c->proto) {
        dx_event ev;
        dx_proto_recv_eof(c->proto, &ev);
    }
    dx__conn_end_abnormally(c, 0, true);
}

static void on_stream_drain(dx_stream *s, void *user) {
    (void)user;
    dx_conn *c = dx__conn_of(s);
    if (c->out_full) {
        c->out_full = false; /* the peer read its replies: read again */
        if (!c->app_paused && !c->hs_paused)
            dx_stream_resume(s);
    }
    if (c->drain_wanted && c->phase == PHASE_OPEN &&
        (!c->proto || dx_proto_get_state(c->proto) == DX_OPEN)) {
        c->drain_wanted = false;
        if (dx__conn_cb(c)->on_drain)
            dx__conn_cb(c)->on_drain(c, s->user);
    }
}

static void on_stream_timeout(dx_stream *s, void *user) {
    (void)user;
    dx__conn_on_timer(dx__conn_of(s));
}

static const dx_stream_callbacks conn_stream_callbacks = {
    .on_open = on_stream_open,
    .on_data = on_stream_data,
    .on_eof = on_stream_eof,
    .on_drain = on_stream_drain,
    .on_timeout = on_stream_timeout,
    .on_close = on_stream_close,
};

/* ---- set-up and opening ----------------------------------------------------------------- */

void dx__conn_class_init(dx__conn_class *cls, dx_loop *loop, const dx__conn_role *role,
                         const dx_conn_callbacks *cb, const dx_conn_options *opts) {
    dx_stream_options so = {.max_buffered = opts->send.max_queue,
                            .low_water = opts->send.low_water,
                            .linger_ms = opts->timeouts.close_ms,
                            .sndbuf = opts->send.sndbuf};
    dx__stream_class_init(&cls->stream, loop, &conn_stream_callbacks, &so, release_conn);
    cls->role = role;
    cls->cb = cb;
    cls->opts = opts;
}

int dx__conn_init_accepted(dx_conn *c, dx_loop *loop, int fd, dx_tls_ctx *tls,
                           const dx__conn_class *cls, void *owner, void *user,
                           const dx_allocator *a) {
    c->side = DX_SIDE_SERVER;
    c->owner = owner;
    c->phase = PHASE_HANDSHAKE;
    c->last_recv = c->last_active = (uint32_t)dx_loop_now(loop);
    int rc = dx__stream_init_accepted(&c->stream, loop, fd, tls, &cls->stream, user, a);
    if (rc < 0)
        return rc;
    dx_stream_set_timeout(&c->stream, cls->opts->timeouts.handshake_ms);
    return 0;
}

int dx__conn_init_client(dx_conn *c, dx_loop *loop, const dx__conn_class *cls, void *owner,
                         void *user, const dx_allocator *a) {
    c->side = DX_SIDE_CLIENT;
    c->owner = owner;
    c->phase = PHASE_HANDSHAKE;
    c->last_recv = c->last_active = (uint32_t)dx_loop_now(loop);
    return dx__stream_init_unconnected(&c->stream, loop, &cls->stream, user, a);
}

void dx__conn_discard(dx_conn *c) {
    const dx_allocator *a = dx__conn_alloc(c);
    dx_outq_deinit(&c->stream.out);
    dx__free(a, c->info, info_size(c));
    dx__free(a, c, sizeof(*c));
}

int dx__conn_connect(dx_conn *c, const dx_connect_options *o) {
    int rc = dx__stream_connect(&c->stream, o);
    if (rc == 0)
        dx_stream_set_timeout(&c->stream, dx__conn_opts(c)->timeouts.handshake_ms);
    return rc;
}

int dx__conn_send_raw(dx_conn *c, const uint8_t *p, size_t n) {
    return dx__stream_send_now(&c->stream, &(dx_span){p, n}, 1);
}

int dx__conn_open(dx_conn *c, const dx_deflate_params *pmd, const dx_deflate_config *pmd_cfg) {
    if (pmd) {
        dx__pmd *m = dx__calloc(dx__conn_alloc(c), sizeof(*m));
        int rc = m ? dx_deflate_create(&m->codec, pmd, c->side == DX_SIDE_SERVER, pmd_cfg,
                                       dx__conn_opts(c)->limits.max_message, dx__conn_alloc(c))
                   : DX_ENOMEM;
        if (rc < 0) {
            dx__free(dx__conn_alloc(c), m, sizeof(*m));
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
    c->last_recv = c->last_active = dx__conn_now_ms(c);
    dx__conn_timer_open(c);
    if (c->app_paused) /* the application's pause, asked for while CONNECTING */
        dx_stream_pause(&c->stream);
    if (dx__conn_cb(c)->on_open)
        dx__conn_cb(c)->on_open(c, c->stream.user);
    return 0;
}

void dx__conn_hold_input(dx_conn *c, bool hold) {
    c->hs_paused = hold;
    dx__stream_watch_eof(&c->stream, hold); /* a client that leaves meanwhile is noticed */
    if (hold)
        dx_stream_pause(&c->stream);
    else if (!c->app_paused && !c->out_full)
        dx_stream_resume(&c->stream);
}

/* ---- the public API: state and queries -------------------------------------------------- */

void dx_conn_pause(dx_conn *c) {
    if (!c || c->app_paused || c->phase == PHASE_DEAD)
        return;
    c->app_paused = true;
    if (c->phase == PHASE_OPEN) /* while CONNECTING the handshake itself must go on */
        dx_stream_pause(&c->stream);
}

void dx_conn_resume(dx_conn *c) {
    if (!c || !c->app_paused || c->phase == PHASE_DEAD)
        return;
    c->app_paused = false;
    if (c->phase == PHASE_OPEN && !c->out_full)
        dx_stream_resume(&c->stream); /* what it kept is offered in the next iteration */
}

dx_ready_state dx_conn_state(const dx_conn *c) {
    switch ((dx__phase)c->phase) {
    case PHASE_HANDSHAKE:
        return DX_CONNECTING;
    case PHASE_OPEN:
        return !c->proto || dx_proto_get_state(c->proto) == DX_OPEN ? DX_OPEN : DX_CLOSING;
    case PHASE_ENDING:
        return c->seen ? DX_CLOSING : DX_CLOSED;
    case PHASE_DEAD:
        break;
    }
    return DX_CLOSED;
}

size_t dx_conn_buffered_amount(const dx_conn *c) {
    return dx_stream_buffered(&c->stream);
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
    return c->stream.user;
}

void dx_conn_set_user(dx_conn *c, void *user) {
    c->stream.user = user;
}

dx_loop *dx_conn_loop(const dx_conn *c) {
    return dx__stream_loop(&c->stream);
}

dx_side dx_conn_side(const dx_conn *c) {
    return (dx_side)c->side;
}

int dx_conn_peer_addr(const dx_conn *c, char *out, size_t cap) {
    if (!out || cap == 0)
        return DX_EINVAL;
    if (c->phase == PHASE_DEAD)
        return DX_ECLOSED;
    return dx_stream_peer_addr(&c->stream, out, cap);
}

const char *dx_conn_tls_alert(const dx_conn *c) {
    return c ? dx_stream_tls_alert(&c->stream) : NULL;
}
