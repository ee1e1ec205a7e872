/*
 * Helpers shared by the dx_proto tests (test_proto*.c): an independent frame
 * writer for building wire input, a transcript that renders the events of a
 * stream as text (messages reassembled, so any split gives the same text), a
 * describer for output frames, and feeders that cut the input whole, byte by
 * byte or at random, each piece in memory that ends at a guard page.
 *
 * Everything is static inline so each test file takes what it uses.
 */
#ifndef DX_TEST_PROTO_UTIL_H
#define DX_TEST_PROTO_UTIL_H

#include "test.h"

#include <stdarg.h>

/* Compare two C strings, printing both on failure. */
#define CHECK_STR(got, want)                                                                       \
    do {                                                                                           \
        const char *g_ = (got), *w_ = (want);                                                      \
        if (strcmp(g_, w_) != 0) {                                                                 \
            printf("      got:  %.600s\n      want: %.600s\n", g_, w_);                            \
            dx_test_fail(__FILE__, __LINE__, #got " == " #want);                                   \
        }                                                                                          \
    } while (0)

/* ---- building wire input (independent of src/proto/frame.c) --------------- */

typedef struct wire {
    uint8_t *b;
    size_t len, cap;
} wire;

static inline void wire_raw(wire *w, const void *p, size_t n) {
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap < w->len + n)
            cap *= 2;
        w->b = realloc(w->b, cap);
        if (!w->b)
            abort();
        w->cap = cap;
    }
    if (n)
        memcpy(w->b + w->len, p, n);
    w->len += n;
}

static inline void wire_free(wire *w) {
    free(w->b);
    memset(w, 0, sizeof(*w));
}

/* The RFC 6455 §5.7 example key. */
static const uint8_t test_key[4] = {0x37, 0xfa, 0x21, 0x3d};

/* Append one frame; @b0 is the whole first byte (FIN|RSV|opcode). */
static inline void wire_frame_b0(wire *w, uint8_t b0, bool masked, const uint8_t key[4],
                                 const void *payload, size_t len) {
    uint8_t h[14];
    size_t n = 0;
    h[n++] = b0;
    uint8_t m = masked ? 0x80 : 0;
    if (len <= 125) {
        h[n++] = (uint8_t)(m | len);
    } else if (len <= 0xFFFF) {
        h[n++] = (uint8_t)(m | 126);
        h[n++] = (uint8_t)(len >> 8);
        h[n++] = (uint8_t)len;
    } else {
        h[n++] = (uint8_t)(m | 127);
        for (int i = 7; i >= 0; i--)
            h[n++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    if (masked) {
        memcpy(h + n, key, 4);
        n += 4;
    }
    wire_raw(w, h, n);
    size_t at = w->len;
    wire_raw(w, payload, len);
    if (masked)
        for (size_t i = 0; i < len; i++)
            w->b[at + i] ^= key[i % 4];
}

static inline uint8_t b0_of(bool fin, unsigned op) {
    return (uint8_t)((fin ? 0x80u : 0u) | op);
}

/* A frame as a client sends it (masked with test_key). */
static inline void wire_c(wire *w, bool fin, unsigned op, const void *p, size_t n) {
    wire_frame_b0(w, b0_of(fin, op), true, test_key, p, n);
}
/* A frame as a server sends it (unmasked). */
static inline void wire_s(wire *w, bool fin, unsigned op, const void *p, size_t n) {
    wire_frame_b0(w, b0_of(fin, op), false, NULL, p, n);
}
/* From the peer of @side: masked when we are the server. */
static inline void wire_peer(wire *w, dx_side side, bool fin, unsigned op, const void *p,
                             size_t n) {
    if (side == DX_SIDE_SERVER)
        wire_c(w, fin, op, p, n);
    else
        wire_s(w, fin, op, p, n);
}
static inline void wire_peer_str(wire *w, dx_side side, bool fin, unsigned op, const char *s) {
    wire_peer(w, side, fin, op, s, strlen(s));
}
/* A close frame from the peer with @code (0: empty) and @reason. */
static inline void wire_peer_close(wire *w, dx_side side, unsigned code, const char *reason) {
    uint8_t body[256];
    size_t n = 0;
    if (code) {
        body[0] = (uint8_t)(code >> 8);
        body[1] = (uint8_t)code;
        n = 2 + strlen(reason);
        memcpy(body + 2, reason, strlen(reason));
    }
    wire_peer(w, side, true, DX_OP_CLOSE, body, n);
}

/* ---- rendering ----------------------------------------------------------- */

typedef struct strbuf {
    char s[16384];
    size_t len;
} strbuf;

static inline void sb_add(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void sb_add(strbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (b->len < sizeof(b->s)) {
        int n = vsnprintf(b->s + b->len, sizeof(b->s) - b->len, fmt, ap);
        if (n > 0)
            b->len += (size_t)n;
        if (b->len >= sizeof(b->s))
            b->len = sizeof(b->s) - 1;
    }
    va_end(ap);
}

static inline uint32_t fnv1a(const uint8_t *p, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

/* Bytes as 'text' with \xNN escapes; long ones as <N bytes fnv=...>. */
static inline void sb_bytes(strbuf *b, const uint8_t *p, size_t n) {
    if (n > 48) {
        sb_add(b, "<%zu bytes fnv=%08x>", n, fnv1a(p, n));
        return;
    }
    sb_add(b, "'");
    for (size_t i = 0; i < n; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\'' && p[i] != '\\')
            sb_add(b, "%c", p[i]);
        else
            sb_add(b, "\\x%02x", p[i]);
    }
    sb_add(b, "'");
}

static inline const char *opname(unsigned op) {
    switch (op) {
    case DX_OP_CONT:
        return "cont";
    case DX_OP_TEXT:
        return "text";
    case DX_OP_BINARY:
        return "binary";
    case DX_OP_CLOSE:
        return "close";
    case DX_OP_PING:
        return "ping";
    case DX_OP_PONG:
        return "pong";
    default:
        return "op?";
    }
}

/*
 * Describe the frames in @p (output of a proto) as "text 'Hello'; close 1000 'x'".
 * Frames are expected masked when @masked (a client's output), else unmasked;
 * a frame of the wrong kind is rendered with "BADMASK". Non-final frames get
 * " nofin", RSV bits " rsv=N". Trailing partial frames render as "TRUNCATED".
 */
static inline void describe_frames(strbuf *b, const uint8_t *p, size_t n, bool masked) {
    size_t off = 0;
    while (off < n) {
        dx_frame_header h;
        size_t hl;
        if (dx_frame_header_decode(p + off, n - off, &h, &hl) != 0 ||
            h.payload_len > n - off - hl) {
            sb_add(b, "%sTRUNCATED", b->len ? "; " : "");
            return;
        }
        size_t len = (size_t)h.payload_len;
        uint8_t *pl = malloc(len ? len : 1);
        memcpy(pl, p + off + hl, len);
        if (h.masked)
            for (size_t i = 0; i < len; i++)
                pl[i] ^= h.mask[i % 4];
        sb_add(b, "%s%s", b->len ? "; " : "", opname(h.opcode));
        if (h.masked != masked)
            sb_add(b, " BADMASK");
        if (!h.fin)
            sb_add(b, " nofin");
        if (h.rsv)
            sb_add(b, " rsv=%u", h.rsv);
        if (h.opcode == DX_OP_CLOSE && len >= 2) {
            sb_add(b, " %u ", (unsigned)(pl[0] << 8 | pl[1]));
            sb_bytes(b, pl + 2, len - 2);
        } else if (h.opcode == DX_OP_CLOSE && len == 0) {
            /* plain "close" */
        } else {
            sb_add(b, " ");
            sb_bytes(b, pl, len);
        }
        free(pl);
        off += hl + len;
    }
}

/* ---- the transcript of a received stream ---------------------------------- */

typedef struct transcript {
    strbuf log;         /* "text 'Hello'; ping ''; close 1000 remote 'bye'" */
    wire msg;           /* the message being reassembled */
    bool in_msg;        /* a message's first piece was seen, not its last */
    unsigned msg_op;    /* its opcode */
    unsigned msg_rsv;   /* its RSV bits */
    size_t data_events; /* DX_EV_DATA events seen */
    int close_events;   /* DX_EV_CLOSE events seen */
    int violations;     /* broken invariants (each also printed) */
    wire out;           /* all output of the proto, drained after each piece */
    bool no_drain;      /* leave the output in the proto */
    size_t drain_chunk; /* >0: consume the output this many bytes at a time */
} transcript;

static inline void tr_violation(transcript *t, const char *what) {
    printf("    transcript invariant broken: %s\n", what);
    t->violations++;
}

static inline void tr_free(transcript *t) {
    wire_free(&t->msg);
    wire_free(&t->out);
}

/* Record one event; @lo..@hi is the input piece the spans may point into. */
static inline void tr_event(transcript *t, dx_proto *p, const dx_event *ev, const uint8_t *lo,
                            const uint8_t *hi) {
    strbuf *b = &t->log;
    const char *sep = b->len ? "; " : "";
    if (ev->type != DX_EV_NONE && t->close_events)
        tr_violation(t, "event after DX_EV_CLOSE");
    switch (ev->type) {
    case DX_EV_NONE:
        break;
    case DX_EV_DATA: {
        dx_span d = ev->u.data.data;
        t->data_events++;
        if (dx_proto_get_state(p) != DX_OPEN)
            tr_violation(t, "data event while not OPEN");
        if (d.len && (d.ptr < lo || d.ptr + d.len > hi))
            tr_violation(t, "data span outside the input piece");
        if (ev->u.data.first == t->in_msg)
            tr_violation(t, "first flag wrong");
        if (ev->u.data.opcode != DX_OP_TEXT && ev->u.data.opcode != DX_OP_BINARY)
            tr_violation(t, "data opcode not text/binary");
        if (ev->u.data.first) {
            t->in_msg = true;
            t->msg_op = ev->u.data.opcode;
            t->msg_rsv = ev->u.data.rsv;
            t->msg.len = 0;
        } else if (ev->u.data.opcode != t->msg_op || ev->u.data.rsv != t->msg_rsv) {
            tr_violation(t, "opcode/rsv changed inside a message");
        }
        wire_raw(&t->msg, d.ptr, d.len);
        if (ev->u.data.fin) {
            sb_add(b, "%s%s", sep, opname(t->msg_op));
            if (t->msg_rsv)
                sb_add(b, " rsv=%u", t->msg_rsv);
            sb_add(b, " ");
            sb_bytes(b, t->msg.b, t->msg.len);
            t->in_msg = false;
        }
        break;
    }
    case DX_EV_PING:
    case DX_EV_PONG: {
        dx_span s = ev->type == DX_EV_PING ? ev->u.ping : ev->u.pong;
        if (s.len > 125)
            tr_violation(t, "control payload over 125");
        sb_add(b, "%s%s ", sep, ev->type == DX_EV_PING ? "ping" : "pong");
        sb_bytes(b, s.ptr, s.len);
        break;
    }
    case DX_EV_CLOSE:
        t->close_events++;
        if (dx_proto_get_state(p) != DX_CLOSED)
            tr_violation(t, "close event but state not CLOSED");
        if (t->in_msg) { /* what was delivered of the unfinished message */
            sb_add(b, "%spartial %s ", sep, opname(t->msg_op));
            sb_bytes(b, t->msg.b, t->msg.len);
            sep = "; ";
            t->in_msg = false;
        }
        sb_add(b, "%sclose %u %s ", sep, ev->u.close.code, ev->u.close.remote ? "remote" : "local");
        sb_bytes(b, ev->u.close.reason.ptr, ev->u.close.reason.len);
        break;
    default:
        tr_violation(t, "unknown event type");
    }
}

static inline void tr_drain(transcript *t, dx_proto *p) {
    if (t->no_drain)
        return;
    for (;;) {
        dx_span o = dx_proto_output(p);
        if (o.len == 0)
            break;
        size_t n = t->drain_chunk && t->drain_chunk < o.len ? t->drain_chunk : o.len;
        wire_raw(&t->out, o.ptr, n);
        dx_proto_output_consume(p, n);
    }
}

/* Feed one piece; every piece lives in memory ending at a guard page. */
static inline void tr_feed_piece(transcript *t, dx_proto *p, const uint8_t *in, size_t n) {
    uint8_t *buf = dx_guard_alloc(in, n);
    size_t off = 0;
    int guard = 0;
    while (off < n) {
        size_t used = 12345;
        dx_event ev;
        int rc = dx_proto_recv(p, buf + off, n - off, &used, &ev);
        if (rc != 0) {
            printf("    dx_proto_recv returned %s\n", dx_err_name(rc));
            t->violations++;
            break;
        }
        if (used > n - off) {
            tr_violation(t, "used beyond the input");
            break;
        }
        if (ev.type == DX_EV_NONE && used != n - off)
            tr_violation(t, "DX_EV_NONE but input left over");
        tr_event(t, p, &ev, buf + off, buf + n);
        off += used;
        tr_drain(t, p);
        if (++guard > 10000000) {
            tr_violation(t, "no progress");
            break;
        }
    }
    dx_guard_free(buf, n);
}

static inline void tr_feed(transcript *t, dx_proto *p, const uint8_t *in, size_t len,
                           dx_split split) {
    size_t off = 0;
    while (off < len) {
        size_t n = dx_split_next(split, len - off);
        tr_feed_piece(t, p, in + off, n);
        off += n;
    }
    tr_drain(t, p);
}

static inline void tr_eof(transcript *t, dx_proto *p) {
    dx_event ev;
    int rc = dx_proto_recv_eof(p, &ev);
    if (rc != 0)
        tr_violation(t, "dx_proto_recv_eof failed");
    tr_event(t, p, &ev, NULL, NULL);
    tr_drain(t, p);
}

/* ---- deterministic random source for client tests ------------------------- */

typedef struct counting_random {
    dx_random r;    /* pass &cr.r */
    uint64_t state; /* xorshift state */
    long calls;     /* fill() calls */
    int fail;       /* nonzero: fill() returns this */
} counting_random;

static inline int counting_fill(uint8_t *buf, size_t len, void *ctx) {
    counting_random *c = ctx;
    if (c->fail)
        return c->fail;
    c->calls++;
    for (size_t i = 0; i < len; i++) {
        c->state ^= c->state << 13;
        c->state ^= c->state >> 7;
        c->state ^= c->state << 17;
        buf[i] = (uint8_t)(c->state >> 24);
    }
    return 0;
}

static inline void counting_random_init(counting_random *c, uint64_t seed) {
    memset(c, 0, sizeof(*c));
    c->r.fill = counting_fill;
    c->r.ctx = c;
    c->state = seed ? seed : 1;
}

/* ---- one-call runners ----------------------------------------------------- */

static inline dx_proto *new_proto(dx_side side) {
    dx_proto_config cfg = {.side = side};
    dx_proto *p = NULL;
    if (dx_proto_create(&p, &cfg) != 0)
        abort();
    return p;
}

/*
 * Feed @in to a fresh proto made from @cfg, whole, bytewise and at several
 * random splits; check each transcript equals @want_events and each rendering
 * of the output equals @want_output (exact bytes must also agree across splits
 * when the side is the server, or the client with a seeded random source).
 */
static inline void check_stream(const dx_proto_config *cfg, const wire *in, const char *want_events,
                                const char *want_output, bool eof) {
    uint8_t *first_out = NULL;
    size_t first_len = 0;
    for (int round = 0; round < 8; round++) {
        dx_split split = round < 3 ? dx_all_splits[round] : DX_SPLIT_RANDOM;
        dx_proto_config c = *cfg;
        counting_random cr;
        if (c.side == DX_SIDE_CLIENT && !c.random) {
            counting_random_init(&cr, 42);
            c.random = &cr.r;
        }
        dx_proto *p = NULL;
        if (dx_proto_create(&p, &c) != 0) {
            dx_test_fail(__FILE__, __LINE__, "dx_proto_create");
            return;
        }
        transcript t = {0};
        tr_feed(&t, p, in->b, in->len, split);
        if (eof)
            tr_eof(&t, p);
        strbuf o = {0};
        describe_frames(&o, t.out.b, t.out.len, c.side == DX_SIDE_CLIENT);
        if (strcmp(t.log.s, want_events) != 0 || strcmp(o.s, want_output) != 0 || t.violations) {
            printf(
                "    split %s (round %d):\n      events: %s\n      want:   %s\n      output: %s\n"
                "      want:   %s\n",
                dx_split_name(split), round, t.log.s, want_events, o.s, want_output);
            dx_test_fail(__FILE__, __LINE__, "stream transcript differs");
        }
        if (!cfg->random) {
            if (round == 0) {
                first_out = malloc(t.out.len + 1);
                if (t.out.len)
                    memcpy(first_out, t.out.b, t.out.len);
                first_len = t.out.len;
            } else if (first_len != t.out.len ||
                       (first_len && memcmp(first_out, t.out.b, first_len) != 0)) {
                dx_test_fail(__FILE__, __LINE__, "output bytes differ between splits");
            }
        }
        tr_free(&t);
        dx_proto_destroy(p);
    }
    free(first_out);
}

/* Shorthand: a server or client with default config. */
static inline void check_side(dx_side side, const wire *in, const char *want_events,
                              const char *want_output) {
    dx_proto_config cfg = {.side = side};
    check_stream(&cfg, in, want_events, want_output, false);
}

/* Run a whole stream in one piece and return the transcript (caller frees). */
static inline dx_proto *run_once(const dx_proto_config *cfg, const wire *in, transcript *t) {
    dx_proto *p = NULL;
    if (dx_proto_create(&p, cfg) != 0)
        abort();
    tr_feed(t, p, in->b, in->len, DX_SPLIT_WHOLE);
    return p;
}

#endif /* DX_TEST_PROTO_UTIL_H */
