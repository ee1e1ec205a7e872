/*
 * A connection's one timer (the stream's): the handshake deadline while CONNECTING,
 * then keep-alive pings with a pong deadline, the idle timeout, the closing
 * handshake's deadline, and the ticks that give back what a quiet connection holds.
 * Reads only record a timestamp; the tick re-arms itself, so a busy connection costs
 * no timer operation per message.
 */
#include "conn/conn_internal.h"

#include <time.h>

#define SETTLE_TICK_MS 500 /* first keep-alive tick after open: give back spare memory */
#define TICK_MAX_MS 60000  /* a quiet connection is looked at least this often */
/* Buffers that grew past DX__BUF_KEEP_MAX for a large message are given back at a
 * tick LARGE_SETTLE_MS after it, not at the next keep-alive tick (up to ping_interval
 * later): many connections each keeping the memory of their largest message add up.
 * Not at once: a connection that keeps sending large messages would then pay for
 * fresh pages (mmap, zeroing, faults) every time, 1.6x the CPU for 1 MiB echoes. */
#define LARGE_SETTLE_MS 1000

uint32_t dx__conn_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u);
}

static void arm(dx_conn *c, uint32_t ms) {
    dx_stream_set_timeout(&c->stream, ms);
}

/* Milliseconds from now until @since + @after (0 when due). */
static uint32_t until(uint32_t now, uint32_t since, uint32_t after) {
    uint32_t elapsed = now - since;
    return elapsed >= after ? 0 : after - elapsed;
}

/* ---- pings ------------------------------------------------------------------------- */

void dx__conn_track_ping(dx_conn *c, dx_span payload) {
    uint32_t head = 0;
    memcpy(&head, payload.ptr ? payload.ptr : (const uint8_t *)"",
           payload.len < 4 ? payload.len : 4);
    c->ping_data = head;
    c->ping_len = (uint8_t)(payload.len + 1);
    c->ping_sent_us = dx__conn_now_us();
}

bool dx__conn_pong_matches(const dx_conn *c, dx_span payload) {
    if (!c->ping_len || payload.len != (size_t)c->ping_len - 1u)
        return false;
    uint32_t head = 0;
    memcpy(&head, payload.ptr ? payload.ptr : (const uint8_t *)"",
           payload.len < 4 ? payload.len : 4);
    return head == c->ping_data;
}

void dx__conn_pong_seen(dx_conn *c) {
    c->ping_len = 0;
    /* the timer waits for the pong deadline: count the next keep-alive ping from now
     * instead (the tick reschedules itself) */
    if (c->ka_pending && dx_proto_get_state(c->proto) == DX_OPEN)
        arm(c, 0);
    c->ka_pending = false;
}

/* ---- memory ------------------------------------------------------------------------- */

static bool buf_large(const dx__buf *b) {
    return b && b->cap > DX__BUF_KEEP_MAX;
}

/* Some buffer of @c grew past DX__BUF_KEEP_MAX for a large message. */
static bool holds_large(const dx_conn *c) {
    return buf_large(c->msg) || (c->pmd_on && buf_large(c->pmd->scratch)) ||
           dx_outq_memory(&c->stream.out) > DX__BUF_KEEP_MAX ||
           (dx__stream_kept(&c->stream) && c->stream.in->cap > DX__BUF_KEEP_MAX);
}

void dx__conn_settle_soon(dx_conn *c) {
    if (c->phase != PHASE_OPEN || (c->proto && dx_proto_get_state(c->proto) != DX_OPEN))
        return; /* the timer counts down the closing handshake */
    if (!holds_large(c))
        return;
    const dx_timer *t = &c->stream.timer;
    if (dx_timer_is_active(t) &&
        t->deadline <= dx_loop_now(dx__stream_loop(&c->stream)) + LARGE_SETTLE_MS)
        return; /* an earlier deadline (a pong's, the settle after open) comes first */
    arm(c, LARGE_SETTLE_MS);
}

/* Give back what a quiet connection does not need: its buffers and, when it sits
 * between messages with nothing to write, its proto. */
static void trim(dx_conn *c) {
    const dx_allocator *a = dx__conn_alloc(c);
    if (c->msg && c->msg->len == 0)
        dx__buf_free(a, &c->msg);
    if (c->pmd_on)
        dx__buf_free(a, &c->pmd->scratch);
    dx_stream_trim(&c->stream);
    if (c->proto && !c->msg && dx_proto_is_idle(c->proto)) {
        dx_proto_destroy(c->proto);
        c->proto = NULL;
    }
}

/* ---- the timer -------------------------------------------------------------------------- */

void dx__conn_timer_open(dx_conn *c) {
    const dx_conn_options *o = dx__conn_opts(c);
    uint32_t first = SETTLE_TICK_MS; /* or sooner, for very short intervals */
    if (o->timeouts.ping_interval_ms < first)
        first = o->timeouts.ping_interval_ms;
    if (o->timeouts.idle_ms < first)
        first = o->timeouts.idle_ms;
    arm(c, first);
}

void dx__conn_timer_closing(dx_conn *c) {
    arm(c, dx__conn_opts(c)->timeouts.close_ms);
}

static void keepalive_tick(dx_conn *c) {
    const dx_conn_options *o = dx__conn_opts(c);
    uint32_t now = dx__conn_now_ms(c);
    /* the keep-alive ping is the tracked one (a later dx_conn_ping replaces it and
     * moves the deadline: it waits for a pong too) */
    uint32_t ping_age = (dx__conn_now_us() - c->ping_sent_us) / 1000u;
    if (c->ka_pending && ping_age >= o->timeouts.pong_ms) {
        /* a dead peer will not answer a close either: say why, and go */
        dx__conn_close(c, DX_CLOSE_INTERNAL_ERROR, "keep-alive ping timeout");
        dx__stream_flush_now(&c->stream);
        dx__conn_end_abnormally(c, DX_EPING_TIMEOUT, false);
        return;
    }
    if (o->timeouts.idle_ms != DX_NEVER && until(now, c->last_active, o->timeouts.idle_ms) == 0) {
        c->stream.error = DX_EIDLE_TIMEOUT;
        dx__conn_close(c, DX_CLOSE_GOING_AWAY, "idle timeout");
        return;
    }
    if (o->timeouts.ping_interval_ms != DX_NEVER && !c->ka_pending &&
        until(now, c->last_recv, o->timeouts.ping_interval_ms) == 0) {
        uint8_t payload[4];
        uint32_t us = dx__conn_now_us();
        memcpy(payload, &us, sizeof payload); /* unique enough to match its pong */
        if (dx_conn_ping(c, (dx_span){payload, sizeof payload}) == 0)
            c->ka_pending = true;
        if (c->phase != PHASE_OPEN)
            return; /* the ping could not be made (out of memory) */
    }
    if (!dx_stream_buffered(&c->stream))
        trim(c);
    uint32_t next = TICK_MAX_MS;
    if (c->ka_pending)
        next = until((dx__conn_now_us() - c->ping_sent_us) / 1000u, 0, o->timeouts.pong_ms);
    else if (o->timeouts.ping_interval_ms != DX_NEVER)
        next = until(now, c->last_recv, o->timeouts.ping_interval_ms);
    if (o->timeouts.idle_ms != DX_NEVER) {
        uint32_t idle = until(now, c->last_active, o->timeouts.idle_ms);
        next = idle < next ? idle : next;
    }
    if (next > LARGE_SETTLE_MS && holds_large(c))
        next = LARGE_SETTLE_MS; /* still writing it out: look again soon */
    arm(c, next ? next : 1);
}

void dx__conn_on_timer(dx_conn *c) {
    switch ((dx__phase)c->phase) {
    case PHASE_HANDSHAKE:
        dx__conn_class_of(c)->role->on_timeout(c);
        break;
    case PHASE_OPEN:
        if (c->proto && dx_proto_get_state(c->proto) != DX_OPEN)
            dx__conn_end_abnormally(c, DX_ECLOSE_TIMEOUT, false); /* no answer to our close */
        else
            keepalive_tick(c);
        break;
    case PHASE_ENDING:
    case PHASE_DEAD:
        break;
    }
}
