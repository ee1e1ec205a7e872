/*
 * The body of fuzz_frames_server and fuzz_frames_client: drive one dx_proto with
 * bytes from the peer and with our own sends, and check its invariants.
 *
 * Input: a config byte, then a sequence of chunks. The first byte of each chunk
 * picks what it is (uWebSockets' makeChunked):
 *   0x00-0xEF  that many bytes (0-239) follow: input from the peer
 *   0xF0-0xF7  an action with one argument byte (some take more bytes):
 *              F0 send data, F1 ping, F2 pong, F3 close, F4 consume some output,
 *              F5 consume all output and trim, F6 transport EOF, F7 zero-copy send_header
 *   0xF8-0xFF  (b - 0xF7) * 256 bytes of peer input follow
 * Config byte: bits 0-2 rsv_allowed, bit 3 small limits (frame 200, message 500,
 * send queue 600).
 *
 * Two protos run side by side: A gets the peer input in the chunks given, B gets
 * each run of peer input between two actions in one piece. They must agree on
 * every event (data compared as a stream per message) and on every output byte
 * (the client's masking keys come from identical deterministic sources).
 *
 * Invariants checked (abort on violation): recv returns 0; used <= len and
 * DX_EV_NONE only with all input used; data events only while OPEN, spans inside
 * the input given, first/fin/opcode consistent, text (without RSV bits) valid
 * UTF-8 per the scalar validator, complete at fin; at most one DX_EV_CLOSE and
 * nothing after it; the state is CLOSED after it; send calls return only
 * documented codes and never succeed unless OPEN; the output is at most the send
 * queue cap plus one pong and one close; and all output parses as valid frames of
 * our side (masked iff client, known opcodes, no RSV, control frames final and
 * <= 125 bytes, valid close payloads, correct fragment sequence, nothing after a
 * close).
 */
#ifndef DX_FUZZ_FRAMES_H
#define DX_FUZZ_FRAMES_H

#include "duplex/proto.h"
#include "duplex/utf8.h"
#include "proto/simd.h"

#include <stdlib.h>
#include <string.h>

#define FZ_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

typedef struct fz_buf {
    uint8_t *b;
    size_t len, cap;
} fz_buf;

static void fz_append(fz_buf *w, const uint8_t *p, size_t n) {
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 1024;
        while (cap < w->len + n)
            cap *= 2;
        uint8_t *nb = realloc(w->b, cap);
        FZ_CHECK(nb != NULL);
        w->b = nb;
        w->cap = cap;
    }
    if (n)
        memcpy(w->b + w->len, p, n);
    w->len += n;
}

static uint64_t fz_hash(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

typedef struct fz_rand {
    dx_random r;
    uint64_t s;
} fz_rand;

static int fz_fill(uint8_t *buf, size_t len, void *ctx) {
    fz_rand *fr = ctx;
    for (size_t i = 0; i < len; i++) {
        fr->s = fr->s * 6364136223846793005ull + 1442695040888963407ull;
        buf[i] = (uint8_t)(fr->s >> 56);
    }
    return 0;
}

typedef struct fz_end {
    dx_proto *p;
    fz_rand rnd;
    size_t cap;         /* max_send_queue in force */
    uint64_t hash;      /* of all events, data as a stream */
    bool in_msg;        /* a message was started by a DATA event */
    bool check_utf8;    /* that message is text without RSV bits */
    unsigned msg_op;    /* its opcode */
    unsigned msg_rsv;   /* its RSV bits */
    dx_utf8_state utf8; /* oracle state (scalar variant) */
    int closes;         /* DX_EV_CLOSE events */
    fz_buf msg;         /* data of the message being delivered */
    fz_buf partial;     /* what was delivered of a message the close cut short */
    fz_buf out;         /* everything the proto output */
} fz_end;

static void fz_event(fz_end *e, const dx_event *ev, const uint8_t *lo, const uint8_t *hi) {
    if (ev->type == DX_EV_NONE)
        return;
    FZ_CHECK(e->closes == 0); /* nothing after the close event */
    uint8_t tag = (uint8_t)ev->type;
    if (ev->type != DX_EV_DATA) /* data is hashed as a stream, whatever the pieces */
        e->hash = fz_hash(e->hash, &tag, 1);
    switch (ev->type) {
    case DX_EV_DATA: {
        dx_span d = ev->u.data.data;
        FZ_CHECK(dx_proto_get_state(e->p) == DX_OPEN);
        FZ_CHECK(ev->u.data.opcode == DX_OP_TEXT || ev->u.data.opcode == DX_OP_BINARY);
        FZ_CHECK(d.len == 0 || (d.ptr >= lo && d.ptr + d.len <= hi));
        FZ_CHECK(ev->u.data.first != e->in_msg);
        FZ_CHECK(d.len > 0 || ev->u.data.first || ev->u.data.fin);
        if (ev->u.data.first) {
            e->in_msg = true;
            e->msg_op = ev->u.data.opcode;
            e->msg_rsv = ev->u.data.rsv;
            e->check_utf8 = e->msg_op == DX_OP_TEXT && e->msg_rsv == 0;
            memset(&e->utf8, 0, sizeof(e->utf8));
            e->msg.len = 0;
        } else {
            FZ_CHECK(ev->u.data.opcode == e->msg_op && ev->u.data.rsv == e->msg_rsv);
        }
        /* A message counts when it is complete: how much of a message that fails
         * (1007) was delivered first depends on the pieces, by design. */
        fz_append(&e->msg, d.ptr, d.len);
        if (e->check_utf8) {
            FZ_CHECK(dx__utf8_feed_scalar(&e->utf8, d.ptr, d.len));
            if (ev->u.data.fin)
                FZ_CHECK(dx_utf8_is_complete(&e->utf8));
        }
        if (ev->u.data.fin) {
            e->in_msg = false;
            uint8_t h[3] = {tag, (uint8_t)e->msg_op, (uint8_t)e->msg_rsv};
            e->hash = fz_hash(e->hash, h, 3);
            e->hash = fz_hash(e->hash, e->msg.b, e->msg.len);
            e->hash = fz_hash(e->hash, "FIN", 3);
        }
        break;
    }
    case DX_EV_PING:
    case DX_EV_PONG: {
        dx_span s = ev->type == DX_EV_PING ? ev->u.ping : ev->u.pong;
        FZ_CHECK(s.len <= 125);
        FZ_CHECK(dx_proto_get_state(e->p) == DX_OPEN);
        e->hash = fz_hash(e->hash, s.ptr, s.len);
        break;
    }
    case DX_EV_CLOSE:
        e->closes++;
        FZ_CHECK(dx_proto_get_state(e->p) == DX_CLOSED);
        FZ_CHECK(ev->u.close.reason.len <= 123);
        FZ_CHECK(dx_utf8_valid(ev->u.close.reason.ptr, ev->u.close.reason.len));
        e->hash = fz_hash(e->hash, &ev->u.close.code, sizeof ev->u.close.code);
        e->hash = fz_hash(e->hash, &ev->u.close.remote, sizeof ev->u.close.remote);
        e->hash = fz_hash(e->hash, ev->u.close.reason.ptr, ev->u.close.reason.len);
        if (e->in_msg)
            fz_append(&e->partial, e->msg.b, e->msg.len);
        e->in_msg = false;
        break;
    default:
        abort();
    }
}

static void fz_check_bound(const fz_end *e) {
    /* the cap, plus one pong and one close frame (14 + 125 bytes each at most) */
    FZ_CHECK(dx_proto_output(e->p).len <= e->cap + 2 * (14 + 125));
}

/* Feed @n bytes (copied, since the proto unmasks in place) until used up. */
static void fz_recv(fz_end *e, const uint8_t *in, size_t n) {
    uint8_t *buf = malloc(n ? n : 1);
    FZ_CHECK(buf != NULL);
    if (n)
        memcpy(buf, in, n);
    size_t off = 0;
    int spins = 0;
    while (off < n) {
        size_t used = (size_t)-1;
        dx_event ev;
        FZ_CHECK(dx_proto_recv(e->p, buf + off, n - off, &used, &ev) == 0);
        FZ_CHECK(used <= n - off);
        FZ_CHECK(ev.type != DX_EV_NONE || used == n - off);
        fz_event(e, &ev, buf + off, buf + n);
        off += used;
        FZ_CHECK(++spins < 1000000);
        fz_check_bound(e);
    }
    free(buf);
}

static void fz_consume(fz_end *e, size_t n) {
    dx_span o = dx_proto_output(e->p);
    if (n > o.len)
        n = o.len;
    fz_append(&e->out, o.ptr, n);
    dx_proto_output_consume(e->p, n);
}

/* A send-call result: only documented codes, and success only while OPEN. */
static void fz_send_rc(int rc, dx_ready_state before) {
    FZ_CHECK(rc == 0 || rc == DX_EINVAL || rc == DX_ESTATE || rc == DX_ELIMIT);
    if (rc == 0)
        FZ_CHECK(before == DX_OPEN);
    if (before != DX_OPEN)
        FZ_CHECK(rc != 0);
}

/* One action; @arg and @extra (n bytes) come from the input. */
static void fz_action(fz_end *e, unsigned act, uint8_t arg, const uint8_t *extra, size_t n) {
    dx_ready_state st = dx_proto_get_state(e->p);
    dx_span x = {extra, n};
    int rc;
    switch (act) {
    case 0: { /* send data: op from bits 6-7, fin bit 5 */
        static const dx_opcode ops[4] = {DX_OP_CONT, DX_OP_TEXT, DX_OP_BINARY, DX_OP_PING};
        rc = dx_proto_send(e->p, ops[arg >> 6], x, (arg & 0x20) != 0);
        fz_send_rc(rc, st);
        if ((arg >> 6) == 3)
            FZ_CHECK(rc == DX_EINVAL);
        break;
    }
    case 1:
    case 2:
        rc = act == 1 ? dx_proto_ping(e->p, x) : dx_proto_pong(e->p, x);
        fz_send_rc(rc, st);
        if (n > 125)
            FZ_CHECK(rc == DX_EINVAL);
        break;
    case 3: { /* close: code from arg (a few interesting ones), reason = extra */
        static const uint16_t codes[8] = {0, 1000, 1001, 1005, 1011, 3000, 4999, 999};
        uint16_t code = codes[arg & 7];
        rc = dx_proto_close(e->p, code, x);
        fz_send_rc(rc, st);
        if (rc == 0)
            FZ_CHECK(dx_proto_get_state(e->p) == DX_CLOSING);
        break;
    }
    case 4:
        fz_consume(e, (size_t)arg * 7);
        break;
    case 5:
        fz_consume(e, SIZE_MAX);
        dx_proto_trim(e->p); /* idle: the next reply must allocate again */
        break;
    case 6: {
        dx_event ev;
        bool had_close = e->closes > 0;
        FZ_CHECK(dx_proto_recv_eof(e->p, &ev) == 0);
        FZ_CHECK(had_close ? ev.type == DX_EV_NONE : ev.type == DX_EV_CLOSE);
        if (ev.type == DX_EV_CLOSE)
            FZ_CHECK(ev.u.close.code == DX_CLOSE_ABNORMAL && !ev.u.close.remote);
        fz_event(e, &ev, NULL, NULL);
        break;
    }
    default: { /* zero-copy: write out the output, then header and payload */
        static const dx_opcode ops[4] = {DX_OP_CONT, DX_OP_TEXT, DX_OP_BINARY, DX_OP_PONG};
        uint8_t hdr[DX_MAX_HEADER_LEN], key[4];
        size_t hl = 0;
        rc = dx_proto_send_header(e->p, ops[arg >> 6], n, (arg & 0x20) != 0, hdr, &hl, key);
        fz_send_rc(rc, st);
        if (rc == 0) {
            fz_consume(e, SIZE_MAX);
            fz_append(&e->out, hdr, hl);
            uint8_t *pl = malloc(n ? n : 1);
            FZ_CHECK(pl != NULL);
            if (dx_proto_side(e->p) == DX_SIDE_CLIENT)
                dx_mask_copy(pl, extra, n, key, 0);
            else if (n)
                memcpy(pl, extra, n);
            fz_append(&e->out, pl, n);
            free(pl);
        }
        break;
    }
    }
    fz_check_bound(e);
}

/* Every output frame is a valid frame of @side, in a valid sequence. */
static void fz_check_output(const fz_buf *o, dx_side side) {
    size_t off = 0;
    bool msg_open = false, closed = false;
    while (off < o->len) {
        dx_frame_header h;
        size_t hl;
        FZ_CHECK(dx_frame_header_decode(o->b + off, o->len - off, &h, &hl) == 0);
        FZ_CHECK(h.payload_len <= o->len - off - hl);
        FZ_CHECK(!closed); /* nothing after our close */
        FZ_CHECK(h.masked == (side == DX_SIDE_CLIENT));
        FZ_CHECK(h.rsv == 0);
        FZ_CHECK(dx_opcode_is_known(h.opcode));
        size_t len = (size_t)h.payload_len;
        if (dx_opcode_is_control(h.opcode)) {
            FZ_CHECK(h.fin && len <= 125);
            if (h.opcode == DX_OP_CLOSE) {
                uint8_t pl[125];
                memcpy(pl, o->b + off + hl, len);
                if (h.masked)
                    dx__mask_scalar(pl, pl, len, h.mask, 0);
                uint16_t code;
                dx_span reason;
                FZ_CHECK(dx_close_payload_parse((dx_span){pl, len}, &code, &reason) == 0);
                closed = true;
            }
        } else {
            FZ_CHECK(h.opcode == DX_OP_CONT ? msg_open : !msg_open);
            msg_open = !h.fin;
        }
        off += hl + len;
    }
}

static void fz_end_init(fz_end *e, const dx_proto_config *cfg) {
    memset(e, 0, sizeof(*e));
    e->rnd.r.fill = fz_fill;
    e->rnd.r.ctx = &e->rnd;
    e->rnd.s = 0x1234;
    dx_proto_config c = *cfg;
    c.random = &e->rnd.r;
    FZ_CHECK(dx_proto_create(&e->p, &c) == 0);
    e->cap = c.limits.max_send_queue ? c.limits.max_send_queue : DX_DEFAULT_MAX_SEND_QUEUE;
    e->hash = 0xcbf29ce484222325ull;
}

static int fz_run(const uint8_t *data, size_t size, dx_side side) {
    if (size < 1)
        return 0;
    dx_proto_config cfg = {.side = side, .rsv_allowed = (uint8_t)(data[0] & 7)};
    if (data[0] & 8) {
        cfg.limits.max_frame = 200;
        cfg.limits.max_message = 500;
        cfg.limits.max_send_queue = 600;
    }
    fz_end a, b;
    fz_end_init(&a, &cfg);
    fz_end_init(&b, &cfg);
    fz_buf run = {0}; /* B's pending piece: peer input since the last action */
    size_t off = 1;
    while (off < size) {
        uint8_t c = data[off++];
        if (c < 0xF0 || c >= 0xF8) {
            size_t n = c < 0xF0 ? c : (size_t)(c - 0xF7) * 256;
            if (n > size - off)
                n = size - off;
            fz_recv(&a, data + off, n);
            fz_append(&run, data + off, n);
            off += n;
            continue;
        }
        /* an action: B first catches up with the input A has seen */
        fz_recv(&b, run.b, run.len);
        run.len = 0;
        uint8_t arg = off < size ? data[off++] : 0;
        size_t n = (c == 0xF0 || c == 0xF7)   ? (arg & 0x1F) * 3u
                   : (c == 0xF1 || c == 0xF2) ? arg % 131u
                   : c == 0xF3                ? (arg >> 3) % 20u
                                              : 0;
        if (n > size - off)
            n = size - off;
        fz_action(&a, c - 0xF0u, arg, data + off, n);
        fz_action(&b, c - 0xF0u, arg, data + off, n);
        off += n;
    }
    fz_recv(&b, run.b, run.len);
    fz_consume(&a, SIZE_MAX);
    fz_consume(&b, SIZE_MAX);
    FZ_CHECK(a.hash == b.hash);
    /* a message cut short: one side's delivered part is a prefix of the other's */
    size_t common = a.partial.len < b.partial.len ? a.partial.len : b.partial.len;
    FZ_CHECK(common == 0 || memcmp(a.partial.b, b.partial.b, common) == 0);
    FZ_CHECK(a.closes == b.closes && a.closes <= 1);
    FZ_CHECK(dx_proto_get_state(a.p) == dx_proto_get_state(b.p));
    FZ_CHECK(a.out.len == b.out.len &&
             (a.out.len == 0 || memcmp(a.out.b, b.out.b, a.out.len) == 0));
    fz_check_output(&a.out, side);
    if (a.closes)
        FZ_CHECK(dx_proto_get_state(a.p) == DX_CLOSED);
    FZ_CHECK(dx_proto_is_done(a.p) == (dx_proto_get_state(a.p) == DX_CLOSED));
    dx_proto_destroy(a.p);
    dx_proto_destroy(b.p);
    free(a.out.b);
    free(b.out.b);
    free(a.msg.b);
    free(b.msg.b);
    free(a.partial.b);
    free(b.partial.b);
    free(run.b);
    return 0;
}

#endif /* DX_FUZZ_FRAMES_H */
