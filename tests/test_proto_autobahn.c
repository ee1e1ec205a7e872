/*
 * An in-memory conformance suite for dx_proto organised like the Autobahn|Testsuite
 * case groups (1 framing, 2 ping/pong, 3 reserved bits, 4 reserved opcodes,
 * 5 fragmentation, 6 UTF-8, 7 close, 9 large messages, 10 limits), run for both
 * sides: as a server (masked frames in, unmasked out) and as a client (unmasked
 * in, masked out).
 *
 * It is independent of the rest of the test suite and of the library's frame
 * codec: frames are written by a small encoder here, the output is decoded by a
 * small decoder here, and the expected UTF-8 verdicts come from a reference
 * validator written from the RFC 3629 table. Every stream is fed whole, one byte
 * at a time and at random splits (and, for the big ones, in fixed chops), each
 * feed from memory that ends at a guard page, and every feed must give the same
 * events, the same final state and the same output bytes.
 *
 * Where the RFC leaves a choice, proto.h's choices are expected: the chunk that
 * holds an invalid UTF-8 byte is not delivered; after our close, peer data and
 * pings are dropped; the answering close echoes the peer's code without its
 * reason; 1012-1014 (registered with IANA since) are valid on the wire.
 */
#include "test.h"

#include <stdarg.h>

#define S DX_SIDE_SERVER
#define C DX_SIDE_CLIENT

static const dx_side both_sides[2] = {DX_SIDE_SERVER, DX_SIDE_CLIENT};

/* ---- growable bytes and text --------------------------------------------- */

typedef struct bytes {
    uint8_t *b;      /* the bytes (NULL while empty) */
    size_t len, cap; /* used and allocated */
} bytes;

static void by_add(bytes *w, const void *p, size_t n) {
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap < w->len + n)
            cap *= 2;
        uint8_t *nb = realloc(w->b, cap);
        if (!nb)
            abort();
        w->b = nb;
        w->cap = cap;
    }
    if (n)
        memcpy(w->b + w->len, p, n);
    w->len += n;
}

static void by_free(bytes *w) {
    free(w->b);
    memset(w, 0, sizeof(*w));
}

typedef struct text {
    char *s;         /* NUL-terminated once anything was added */
    size_t len, cap; /* used (without the NUL) and allocated */
} text;

static void tx_add(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tx_add(text *t, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    if (t->len + (size_t)n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->len + (size_t)n + 1)
            cap *= 2;
        char *ns = realloc(t->s, cap);
        if (!ns)
            abort();
        t->s = ns;
        t->cap = cap;
    }
    vsnprintf(t->s + t->len, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    t->len += (size_t)n;
}

static const char *tx_str(const text *t) {
    return t->s ? t->s : "";
}

static void tx_free(text *t) {
    free(t->s);
    memset(t, 0, sizeof(*t));
}

static uint32_t fnv(const uint8_t *p, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

/* 'printable' with \xNN escapes; more than 64 bytes as <N bytes HASH>. */
static void tx_bytes(text *t, const uint8_t *p, size_t n) {
    if (n > 64) {
        tx_add(t, "<%zu bytes %08x>", n, fnv(p, n));
        return;
    }
    tx_add(t, "'");
    for (size_t i = 0; i < n; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\'' && p[i] != '\\')
            tx_add(t, "%c", p[i]);
        else
            tx_add(t, "\\x%02x", p[i]);
    }
    tx_add(t, "'");
}

/* A message as the event log renders it: "text 'abc'". */
static void tx_msg(text *t, const char *kind, const uint8_t *p, size_t n) {
    tx_add(t, "%s ", kind);
    tx_bytes(t, p, n);
}

/* ---- the frame encoder (peer input; independent of src/proto/frame.c) ----- */

#define OP_CONT 0x0u
#define OP_TEXT 0x1u
#define OP_BINARY 0x2u
#define OP_CLOSE 0x8u
#define OP_PING 0x9u
#define OP_PONG 0xAu
#define B_FIN 0x80u
#define B_RSV1 0x40u
#define B_RSV2 0x20u
#define B_RSV3 0x10u

/*
 * Append one frame from the peer of @us (masked when @us is the server, §5.3)
 * with first byte @b0 (FIN|RSV|opcode) and the shortest length encoding (§5.2).
 * The masking key changes from frame to frame.
 */
static void frame_b0(bytes *w, dx_side us, unsigned b0, const void *payload, size_t len) {
    bool masked = us == DX_SIDE_SERVER;
    uint8_t h[14], key[4];
    size_t n = 0;
    h[n++] = (uint8_t)b0;
    unsigned m = masked ? 0x80u : 0u;
    if (len < 126) {
        h[n++] = (uint8_t)(m | len);
    } else if (len < 65536) {
        h[n++] = (uint8_t)(m | 126u);
        h[n++] = (uint8_t)(len >> 8);
        h[n++] = (uint8_t)len;
    } else {
        h[n++] = (uint8_t)(m | 127u);
        for (int i = 7; i >= 0; i--)
            h[n++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    if (masked) {
        for (size_t i = 0; i < 4; i++)
            key[i] = (uint8_t)(0xA5u ^ (w->len * 13u + i * 0x3Du));
        memcpy(h + n, key, 4);
        n += 4;
    }
    by_add(w, h, n);
    size_t at = w->len;
    by_add(w, payload, len);
    if (masked)
        for (size_t i = 0; i < len; i++)
            w->b[at + i] ^= key[i & 3];
}

static void frame(bytes *w, dx_side us, bool fin, unsigned op, const void *p, size_t n) {
    frame_b0(w, us, (fin ? B_FIN : 0u) | op, p, n);
}

static void frame_str(bytes *w, dx_side us, bool fin, unsigned op, const char *s) {
    frame(w, us, fin, op, s, strlen(s));
}

/* A close frame: @code 0 sends an empty payload, else the code and @reason. */
static void frame_close(bytes *w, dx_side us, unsigned code, const void *reason, size_t rlen) {
    uint8_t body[200];
    size_t n = 0;
    if (code) {
        body[0] = (uint8_t)(code >> 8);
        body[1] = (uint8_t)code;
        memcpy(body + 2, reason, rlen);
        n = 2 + rlen;
    }
    frame(w, us, true, OP_CLOSE, body, n);
}

/* ---- the output decoder ----------------------------------------------------- */

static const char *op_name(unsigned op) {
    switch (op) {
    case OP_CONT:
        return "cont";
    case OP_TEXT:
        return "text";
    case OP_BINARY:
        return "binary";
    case OP_CLOSE:
        return "close";
    case OP_PING:
        return "ping";
    case OP_PONG:
        return "pong";
    default:
        return "reserved-op";
    }
}

/*
 * Render the frames we sent: "pong 'x'; close 1002 'reserved opcode'" ("close"
 * alone for an empty close, no reason part when there is none). A frame that
 * breaks a sending rule is marked: BADMASK (masked on the wrong side, §5.1),
 * NONMINIMAL (§5.2), nofin, rsv=N, TRUNCATED.
 */
static void render_output(text *t, const uint8_t *p, size_t n, dx_side us) {
    size_t off = 0;
    while (off < n) {
        const char *sep = t->len ? "; " : "";
        size_t avail = n - off, hl = 2;
        if (avail < 2) {
            tx_add(t, "%sTRUNCATED", sep);
            return;
        }
        const uint8_t *h = p + off;
        bool fin = (h[0] & 0x80u) != 0, masked = (h[1] & 0x80u) != 0, minimal = true;
        unsigned rsv = (h[0] >> 4) & 7u, op = h[0] & 0xFu;
        uint64_t len = h[1] & 0x7Fu;
        if (len == 126) {
            if (avail < 4) {
                tx_add(t, "%sTRUNCATED", sep);
                return;
            }
            len = (uint64_t)h[2] << 8 | h[3];
            minimal = len >= 126;
            hl = 4;
        } else if (len == 127) {
            if (avail < 10) {
                tx_add(t, "%sTRUNCATED", sep);
                return;
            }
            len = 0;
            for (int i = 2; i < 10; i++)
                len = len << 8 | h[i];
            minimal = len >= 65536 && len < ((uint64_t)1 << 63);
            hl = 10;
        }
        uint8_t key[4] = {0, 0, 0, 0};
        if (masked) {
            if (avail < hl + 4) {
                tx_add(t, "%sTRUNCATED", sep);
                return;
            }
            memcpy(key, h + hl, 4);
            hl += 4;
        }
        if (len > avail - hl) {
            tx_add(t, "%sTRUNCATED", sep);
            return;
        }
        size_t plen = (size_t)len;
        uint8_t *pl = malloc(plen + 1);
        if (!pl)
            abort();
        for (size_t i = 0; i < plen; i++)
            pl[i] = (uint8_t)(h[hl + i] ^ key[i & 3]);
        tx_add(t, "%s%s", sep, op_name(op));
        if (masked != (us == DX_SIDE_CLIENT))
            tx_add(t, " BADMASK");
        if (!minimal)
            tx_add(t, " NONMINIMAL");
        if (!fin)
            tx_add(t, " nofin");
        if (rsv)
            tx_add(t, " rsv=%u", rsv);
        if (op == OP_CLOSE) {
            if (plen == 1)
                tx_add(t, " ONEBYTE");
            if (plen >= 2)
                tx_add(t, " %u", (unsigned)pl[0] << 8 | pl[1]);
            if (plen > 2) {
                tx_add(t, " ");
                tx_bytes(t, pl + 2, plen - 2);
            }
        } else {
            tx_add(t, " ");
            tx_bytes(t, pl, plen);
        }
        free(pl);
        off += hl + plen;
    }
}

/* ---- a deterministic random source for the client's masking keys ----------- */

typedef struct seq_random {
    dx_random r; /* pass &sr.r */
    uint32_t x;  /* xorshift state */
} seq_random;

static int seq_fill(uint8_t *buf, size_t len, void *ctx) {
    seq_random *s = ctx;
    for (size_t i = 0; i < len; i++) {
        s->x ^= s->x << 13;
        s->x ^= s->x >> 17;
        s->x ^= s->x << 5;
        buf[i] = (uint8_t)(s->x >> 11);
    }
    return 0;
}

/* ---- the runner ------------------------------------------------------------- */

/* One expectation: a stream, and what every way of feeding it must give. */
typedef struct ab_case {
    dx_side us;             /* the side under test */
    const bytes *in;        /* the peer's bytes */
    const char *events;     /* the event log: "text 'a'; ping ''; close 1002 local 'why'" */
    const char *output;     /* our output, decoded (render_output) */
    dx_proto_limits limits; /* zero: defaults */
    uint8_t rsv_allowed;    /* RSV bits an extension negotiated */
    uint16_t close_first;   /* nonzero: dx_proto_close(close_first, "bye") before the input */
    /* The unfinished message at the close (or at the end of input): which of its
     * bytes may have been delivered. Fed whole, exactly the first @partial_min;
     * byte by byte, exactly the first @partial_max; otherwise anything between. */
    const uint8_t *partial;
    size_t partial_min, partial_max;
    size_t chop;     /* nonzero: also feed in pieces of exactly this size */
    bool no_bytes;   /* skip the byte-by-byte feed (only for the biggest streams) */
    bool eof;        /* report the end of the transport after the input */
    const char *why; /* printed on failure: which sub-case this is */
} ab_case;

typedef struct run {
    text log;          /* the events, messages reassembled */
    bytes msg;         /* the message being reassembled */
    bool in_msg;       /* its first piece came, its last not yet */
    unsigned msg_op;   /* its opcode */
    unsigned msg_rsv;  /* its RSV bits */
    bool closed;       /* DX_EV_CLOSE came */
    bool had_partial;  /* a message was unfinished at the close */
    bytes partial;     /* ...and these bytes of it were delivered */
    bytes out;         /* everything the proto output */
    text bad;          /* broken invariants */
    size_t data_evs;   /* DX_EV_DATA events */
    size_t recv_calls; /* dx_proto_recv calls */
} run;

static void run_free(run *r) {
    tx_free(&r->log);
    by_free(&r->msg);
    by_free(&r->partial);
    by_free(&r->out);
    tx_free(&r->bad);
}

static void run_bad(run *r, const char *what) {
    if (r->bad.len < 400)
        tx_add(&r->bad, "%s%s", r->bad.len ? ", " : "", what);
}

/* How the output is taken while the input is fed: all of it after every call,
 * only at the end (it piles up in the proto), or a few bytes at a time (the
 * proto compacts or grows its buffer around the unwritten rest). */
typedef enum { DRAIN_ALL, DRAIN_AT_END, DRAIN_SOME } drain_kind;

static void run_drain_n(run *r, dx_proto *p, size_t max) {
    dx_span o = dx_proto_output(p);
    if (o.len != 0 && !dx_proto_wants_write(p))
        run_bad(r, "output without wants_write");
    size_t n = o.len < max ? o.len : max;
    by_add(&r->out, o.ptr, n);
    dx_proto_output_consume(p, n);
    if (dx_proto_output(p).len != o.len - n || dx_proto_wants_write(p) != (o.len > n))
        run_bad(r, "output after consuming part of it");
}

static void run_drain(run *r, dx_proto *p) {
    run_drain_n(r, p, (size_t)-1);
}

static void run_drain_as(run *r, dx_proto *p, drain_kind d) {
    if (d == DRAIN_ALL)
        run_drain(r, p);
    else if (d == DRAIN_SOME)
        run_drain_n(r, p, 1 + (size_t)(dx_test_rand() % 40));
}

/* Record one event; data spans must lie in the consumed bytes [lo, hi). */
static void run_event(run *r, dx_proto *p, const dx_event *ev, const uint8_t *lo,
                      const uint8_t *hi) {
    const char *sep = r->log.len ? "; " : "";
    if (ev->type != DX_EV_NONE && r->closed)
        run_bad(r, "event after DX_EV_CLOSE");
    switch (ev->type) {
    case DX_EV_NONE:
        return;
    case DX_EV_DATA: {
        dx_span d = ev->u.data.data;
        r->data_evs++;
        if (dx_proto_get_state(p) != DX_OPEN)
            run_bad(r, "data while not OPEN");
        if (d.len && (d.ptr < lo || d.ptr + d.len > hi))
            run_bad(r, "data span outside the consumed input");
        if (ev->u.data.first == r->in_msg)
            run_bad(r, "wrong first flag");
        if (ev->u.data.opcode != DX_OP_TEXT && ev->u.data.opcode != DX_OP_BINARY)
            run_bad(r, "data opcode");
        if (ev->u.data.first) {
            r->in_msg = true;
            r->msg_op = ev->u.data.opcode;
            r->msg_rsv = ev->u.data.rsv;
            r->msg.len = 0;
        } else if (ev->u.data.opcode != r->msg_op || ev->u.data.rsv != r->msg_rsv) {
            run_bad(r, "opcode or rsv changed inside a message");
        }
        by_add(&r->msg, d.ptr, d.len);
        if (ev->u.data.fin) {
            tx_add(&r->log, "%s", sep);
            tx_msg(&r->log, op_name(r->msg_op), r->msg.b, r->msg.len);
            if (r->msg_rsv)
                tx_add(&r->log, " rsv=%u", r->msg_rsv);
            r->in_msg = false;
        }
        return;
    }
    case DX_EV_PING:
    case DX_EV_PONG: {
        dx_span s = ev->type == DX_EV_PING ? ev->u.ping : ev->u.pong;
        if (s.len > 125)
            run_bad(r, "control payload over 125 bytes");
        tx_add(&r->log, "%s", sep);
        tx_msg(&r->log, ev->type == DX_EV_PING ? "ping" : "pong", s.ptr, s.len);
        return;
    }
    case DX_EV_CLOSE:
        r->closed = true;
        if (dx_proto_get_state(p) != DX_CLOSED)
            run_bad(r, "close event but not CLOSED");
        if (r->in_msg) {
            r->had_partial = true;
            by_add(&r->partial, r->msg.b, r->msg.len);
            r->in_msg = false;
        }
        tx_add(&r->log, "%sclose %u %s ", sep, ev->u.close.code,
               ev->u.close.remote ? "remote" : "local");
        tx_bytes(&r->log, ev->u.close.reason.ptr, ev->u.close.reason.len);
        return;
    }
    run_bad(r, "unknown event type");
}

typedef enum { FEED_WHOLE, FEED_BYTES, FEED_RANDOM, FEED_CHOP } feed_kind;

static const char *feed_name(feed_kind k) {
    static const char *const names[] = {"whole", "bytes", "random", "chop"};
    return names[k];
}

static void run_feed(run *r, dx_proto *p, const bytes *in, feed_kind kind, size_t chop,
                     drain_kind drain) {
    uint8_t *g = dx_guard_alloc(in->b, in->len); /* the last piece ends at the guard page */
    size_t off = 0;
    while (off < in->len) {
        size_t left = in->len - off, n;
        switch (kind) {
        case FEED_WHOLE:
            n = dx_split_next(DX_SPLIT_WHOLE, left);
            break;
        case FEED_BYTES:
            n = dx_split_next(DX_SPLIT_BYTES, left);
            break;
        case FEED_RANDOM:
            n = dx_split_next(DX_SPLIT_RANDOM, left);
            break;
        case FEED_CHOP:
        default:
            n = chop < left ? chop : left;
            break;
        }
        uint8_t *piece = g + off;
        size_t pos = 0;
        while (pos < n) {
            size_t used = (size_t)-1;
            dx_event ev;
            memset(&ev, 0xCC, sizeof ev);
            r->recv_calls++;
            int rc = dx_proto_recv(p, piece + pos, n - pos, &used, &ev);
            if (rc != 0) {
                run_bad(r, "dx_proto_recv failed");
                break;
            }
            if (used > n - pos) {
                run_bad(r, "used beyond the input");
                break;
            }
            if (ev.type == DX_EV_NONE && used != n - pos)
                run_bad(r, "DX_EV_NONE with input left");
            if (ev.type != DX_EV_NONE && ev.type != DX_EV_DATA && ev.type != DX_EV_PING &&
                ev.type != DX_EV_PONG && ev.type != DX_EV_CLOSE) {
                run_bad(r, "event type not set");
                break;
            }
            run_event(r, p, &ev, piece + pos, piece + pos + used);
            pos += used;
            run_drain_as(r, p, drain);
        }
        off += n;
    }
    dx_guard_free(g, in->len);
}

/* Feed @c's stream every way and compare each result with the expectation. */
static void ab_check_at(const ab_case *c, const char *file, int line) {
    bytes first_out = {0};
    feed_kind kinds[7] = {FEED_WHOLE, FEED_BYTES, FEED_RANDOM, FEED_RANDOM, FEED_RANDOM};
    int nk = 5;
    if (c->chop)
        kinds[nk++] = FEED_CHOP;
    for (int k = 0; k < nk; k++) {
        if (kinds[k] == FEED_BYTES && c->no_bytes)
            continue;
        seq_random sr = {{seq_fill, NULL}, 0x2545F491u};
        sr.r.ctx = &sr;
        dx_proto_config cfg = {
            .side = c->us, .limits = c->limits, .rsv_allowed = c->rsv_allowed, .random = &sr.r};
        dx_proto *p = NULL;
        if (dx_proto_create(&p, &cfg) != 0) {
            dx_test_fail(file, line, "dx_proto_create");
            return;
        }
        run r = {0};
        if (c->close_first) {
            const char *bye = "bye";
            dx_span reason = {(const uint8_t *)bye, 3};
            if (dx_proto_close(p, c->close_first, reason) != 0)
                run_bad(&r, "dx_proto_close failed");
            if (dx_proto_get_state(p) != DX_CLOSING)
                run_bad(&r, "not CLOSING after dx_proto_close");
            run_drain(&r, p);
        }
        /* whole and chopped: drain after every call; bytewise: only at the end;
         * random: a few bytes at a time */
        drain_kind drain = kinds[k] == FEED_BYTES    ? DRAIN_AT_END
                           : kinds[k] == FEED_RANDOM ? DRAIN_SOME
                                                     : DRAIN_ALL;
        run_feed(&r, p, c->in, kinds[k], c->chop, drain);
        if (c->eof) {
            dx_event ev;
            if (dx_proto_recv_eof(p, &ev) != 0)
                run_bad(&r, "dx_proto_recv_eof failed");
            run_event(&r, p, &ev, NULL, NULL);
            run_drain(&r, p);
        }
        run_drain(&r, p);
        if (r.in_msg) { /* the input ended inside a message */
            r.had_partial = true;
            by_add(&r.partial, r.msg.b, r.msg.len);
        }
        dx_ready_state want_state = r.closed ? DX_CLOSED : c->close_first ? DX_CLOSING : DX_OPEN;
        if (dx_proto_get_state(p) != want_state)
            run_bad(&r, "final state");
        if (dx_proto_is_done(p) != (want_state == DX_CLOSED))
            run_bad(&r, "dx_proto_is_done");
        text o = {0};
        render_output(&o, r.out.b, r.out.len, c->us);
        bool ok = strcmp(tx_str(&r.log), c->events) == 0 && strcmp(tx_str(&o), c->output) == 0 &&
                  r.bad.len == 0;
        /* what was delivered of an unfinished message */
        size_t plen = r.partial.len;
        size_t lo = kinds[k] == FEED_BYTES ? c->partial_max : c->partial_min;
        size_t hi = kinds[k] == FEED_WHOLE ? c->partial_min : c->partial_max;
        bool partial_ok =
            plen >= lo && plen <= hi && (plen == 0 || memcmp(r.partial.b, c->partial, plen) == 0);
        if (!partial_ok)
            ok = false;
        /* the output bytes (masking keys included) are the same every way */
        if (k == 0) {
            by_add(&first_out, r.out.b, r.out.len);
        } else if (first_out.len != r.out.len ||
                   (r.out.len && memcmp(first_out.b, r.out.b, r.out.len) != 0)) {
            ok = false;
            printf("    output bytes differ from the whole feed\n");
        }
        if (!ok) {
            printf("    %s, %s, fed %s:\n      events: %s\n      want:   %s\n"
                   "      output: %s\n      want:   %s\n",
                   c->us == S ? "server" : "client", c->why ? c->why : "-", feed_name(kinds[k]),
                   tx_str(&r.log), c->events, tx_str(&o), c->output);
            if (r.bad.len)
                printf("      invariants: %s\n", tx_str(&r.bad));
            if (!partial_ok)
                printf("      partial: %zu bytes delivered, want %zu..%zu\n", plen, lo, hi);
            dx_test_fail(file, line, "stream result differs");
        }
        tx_free(&o);
        run_free(&r);
        dx_proto_destroy(p);
        if (dx_test_failed > 20)
            break;
    }
    by_free(&first_out);
}

#define AB_CHECK(...) ab_check_at(&(ab_case){__VA_ARGS__}, __FILE__, __LINE__)

/* Test data: @n bytes of a repeating pattern (binary) or of mixed UTF-8 text. */
static void fill_binary(uint8_t *p, size_t n, uint32_t seed) {
    uint32_t x = seed | 1u;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
}

/* Valid UTF-8 of exactly @n bytes mixing 1- to 4-byte characters. */
static void fill_text(uint8_t *p, size_t n) {
    static const char *const pieces[] = {
        "Hello-",           "\xc2\xb5", "@", "\xc3\x9f\xc3\xb6", "\xe2\x82\xac", " ",
        "\xf0\x9d\x84\x9e", "\xce\xba", "*", "\xef\xbf\xbd",     "0123456789"};
    size_t i = 0, k = 0;
    while (i < n) {
        const char *s = pieces[k++ % (sizeof pieces / sizeof pieces[0])];
        size_t l = strlen(s);
        if (l > n - i) {
            memset(p + i, 'x', n - i);
            break;
        }
        memcpy(p + i, s, l);
        i += l;
    }
}

/* The expected log line of one whole message. */
static char *msg_line(const char *kind, const uint8_t *p, size_t n) {
    text t = {0};
    tx_msg(&t, kind, p, n);
    return t.s;
}

/* ======================================================================= */
/* 1. Framing (RFC 6455 §5.2: payload length encodings)                     */
/* ======================================================================= */

static const size_t framing_lengths[] = {0, 125, 126, 127, 128, 65535, 65536};

static void check_one_message(unsigned op, const char *kind) {
    for (size_t i = 0; i < sizeof framing_lengths / sizeof framing_lengths[0]; i++) {
        size_t n = framing_lengths[i];
        uint8_t *pl = malloc(n + 1);
        if (!pl)
            abort();
        if (op == OP_TEXT)
            memset(pl, '*', n);
        else
            fill_binary(pl, n, (uint32_t)n);
        char *want = msg_line(kind, pl, n);
        for (int s = 0; s < 2; s++) {
            bytes w = {0};
            frame(&w, both_sides[s], true, op, pl, n);
            AB_CHECK(.us = both_sides[s], .in = &w, .events = want, .output = "",
                     .chop = n > 1000 ? 997 : 0);
            by_free(&w);
        }
        free(want);
        free(pl);
    }
}

TEST(autobahn_1_1_text_payload_lengths_rfc6455_5_2) {
    check_one_message(OP_TEXT, "text");
}

TEST(autobahn_1_2_binary_payload_lengths_rfc6455_5_2) {
    check_one_message(OP_BINARY, "binary");
}

/* 1.1.8 / 1.2.8: 65535 bytes chopped into 997-byte pieces, several messages in a
 * row, so the chops straddle frame boundaries. */
TEST(autobahn_1_1_8_messages_in_a_row_chopped_rfc6455_5_2) {
    size_t n = 65535;
    uint8_t *pl = malloc(n);
    if (!pl)
        abort();
    fill_binary(pl, n, 7);
    text want = {0};
    for (int i = 0; i < 3; i++) {
        if (i)
            tx_add(&want, "; ");
        tx_msg(&want, "binary", pl, n - (size_t)i * 100);
    }
    tx_add(&want, "; text '*'");
    for (int s = 0; s < 2; s++) {
        bytes w = {0};
        for (int i = 0; i < 3; i++)
            frame(&w, both_sides[s], true, OP_BINARY, pl, n - (size_t)i * 100);
        frame_str(&w, both_sides[s], true, OP_TEXT, "*");
        AB_CHECK(.us = both_sides[s], .in = &w, .events = tx_str(&want), .output = "", .chop = 997);
        by_free(&w);
    }
    tx_free(&want);
    free(pl);
}

/* Not Autobahn: §5.2 says a length's most significant bit MUST be 0. */
TEST(autobahn_1_x_64bit_length_with_top_bit_fails_1002_rfc6455_5_2) {
    for (int s = 0; s < 2; s++) {
        dx_side us = both_sides[s];
        bytes w = {0};
        frame_str(&w, us, true, OP_TEXT, "ok");
        uint8_t h[14] = {B_FIN | OP_BINARY, 127, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4};
        if (us == S)
            h[1] |= 0x80;
        by_add(&w, h, us == S ? 14 : 10);
        AB_CHECK(.us = us, .in = &w,
                 .events = "text 'ok'; close 1002 local '64-bit length with the top bit set'",
                 .output = "close 1002 '64-bit length with the top bit set'");
        by_free(&w);
    }
}

/* Not Autobahn: a frame of the wrong masking for the side fails (§5.1). */
TEST(autobahn_1_x_wrong_masking_fails_1002_rfc6455_5_1) {
    bytes w = {0};
    frame_str(&w, C, true, OP_TEXT, "unmasked"); /* as a server sends it */
    AB_CHECK(.us = S, .in = &w, .events = "close 1002 local 'unmasked frame from client'",
             .output = "close 1002 'unmasked frame from client'");
    by_free(&w);
    frame_str(&w, S, true, OP_PING, "masked"); /* as a client sends it */
    AB_CHECK(.us = C, .in = &w, .events = "close 1002 local 'masked frame from server'",
             .output = "close 1002 'masked frame from server'");
    by_free(&w);
}

/* ======================================================================= */
/* 2. Pings and pongs (RFC 6455 §5.5.2, §5.5.3)                              */
/* ======================================================================= */

TEST(autobahn_2_1_ping_empty_answered_rfc6455_5_5_2) {
    for (int s = 0; s < 2; s++) {
        bytes w = {0};
        frame(&w, both_sides[s], true, OP_PING, "", 0);
        AB_CHECK(.us = both_sides[s], .in = &w, .events = "ping ''", .output = "pong ''");
        by_free(&w);
    }
}

TEST(autobahn_2_2_ping_text_payload_answered_rfc6455_5_5_2) {
    for (int s = 0; s < 2; s++) {
        bytes w = {0};
        frame_str(&w, both_sides[s], true, OP_PING, "Hello, world!");
        AB_CHECK(.us = both_sides[s], .in = &w, .events = "ping 'Hello, world!'",
                 .output = "pong 'Hello, world!'");
        by_free(&w);
    }
}

TEST(autobahn_2_3_ping_binary_payload_answered_rfc6455_5_5_2) {
    static const uint8_t pl[] = {0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff};
    for (int s = 0; s < 2; s++) {
        bytes w = {0};
        frame(&w, both_sides[s], true, OP_PING, pl, sizeof pl);
        AB_CHECK(.us = both_sides[s], .in = &w,
                 .events = "ping '\\x00\\xff\\xfe\\xfd\\xfc\\xfb\\x00\\xff'",
                 .output = "pong '\\x00\\xff\\xfe\\xfd\\xfc\\xfb\\x00\\xff'");
        by_free(&w);
    }
}

/* 2.4 and 2.6: 125 bytes (the most a control frame may carry), whole and chopped. */
TEST(autobahn_2_4_ping_125_bytes_answered_rfc6455_5_5) {
    uint8_t pl[125];
    fill_binary(pl, sizeof pl, 125);
    text want_ev = {0}, want_out = {0};
    tx_msg(&want_ev, "ping", pl, sizeof pl);
    tx_msg(&want_out, "pong", pl, sizeof pl);
    for (int s = 0; s < 2; s++) {
        bytes w = {0};
        frame(&w, both_sides[s], true, OP_PING, pl, sizeof pl);
        AB_CHECK(.us = both_sides[s], .in = &w, .events = want_ev.s, .output = want_out.s,
                 .chop = 25);
        by_free(&w);
    }
    tx_free(&want_ev);
    tx_free(&want_out);
}

TEST(autobahn_2_5_ping_126_bytes_fails_1002_rfc6455_5_5) {
    uint8_t pl[126];
    memset(pl, 'p', sizeof pl);
    for (int s = 0; s < 2; s++) {
        bytes w = {0};
        frame(&w, both_sides[s], true, OP_PING, pl, sizeof pl);
        AB_CHECK(.us = both_sides[s], .in = &w,
                 .events = "close 1002 local 'control frame over 125 bytes'",
                 .output = "close 1002 'control frame over 125 bytes'");
        by_free(&w);
        /* the same for a pong and a close over 125 bytes */
        frame(&w, both_sides[s], true, OP_PONG, pl, sizeof pl);
        frame_close(&w, both_sides[s], 1000, pl, 124); /* 7.3.6: a 124-byte reason */
        AB_CHECK(.us = both_sides[s], .in = &w,
                 .events = "close 1002 local 'control frame over 125 bytes'",
                 .output = "close 1002 'control frame over 125 bytes'");
        by_free(&w);
        frame_close(&w, both_sides[s], 1000, pl, 124);
        AB_CHECK(.us = both_sides[s], .in = &w,
                 .events = "close 1002 local 'control frame over 125 bytes'",
                 .output = "close 1002 'control frame over 125 bytes'");
        by_free(&w);
    }
}

TEST(autobahn_2_7_unsolicited_pong_empty_ignored_rfc6455_5_5_3) {
    for (int s = 0; s < 2; s++) {
        bytes w = {0};
        frame(&w, both_sides[s], true, OP_PONG, "", 0);
        AB_CHECK(.us = both_sides[s], .in = &w, .events = "pong ''", .output = "");
        by_free(&w);
    }
}

TEST(autobahn_2_8_unsolicited_pong_payload_ignored_rfc6455_5_5_3) {
    for (int s = 0; s < 2; s++) {
        bytes w = {0};
        frame_str(&w, both_sides[s], true, OP_PONG, "unsolicited pong payload");
        AB_CHECK(.us = both_sides[s], .in = &w, .events = "pong 'unsolicited pong payload'",
                 .output = "");
        by_free(&w);
    }
}

TEST(autobahn_2_9_unsolicited_pong_then_ping_rfc6455_5_5_3) {
    for (int s = 0; s < 2; s++) {
        bytes w = {0};
        frame_str(&w, both_sides[s], true, OP_PONG, "unsolicited pong payload");
        frame_str(&w, both_sides[s], true, OP_PING, "ping payload");
        AB_CHECK(.us = both_sides[s], .in = &w,
                 .events = "pong 'unsolicited pong payload'; ping 'ping payload'",
                 .output = "pong 'ping payload'");
        by_free(&w);
    }
}

/* 2.10 and 2.11: ten pings in a row, each answered, in order. */
TEST(autobahn_2_10_ten_pings_answered_in_order_rfc6455_5_5_2) {
    text want_ev = {0}, want_out = {0};
    for (int i = 0; i < 10; i++) {
        tx_add(&want_ev, "%sping 'payload-%d'", i ? "; " : "", i);
        tx_add(&want_out, "%spong 'payload-%d'", i ? "; " : "", i);
    }
    for (int s = 0; s < 2; s++) {
        bytes w = {0};
        for (int i = 0; i < 10; i++) {
            char pl[32];
            snprintf(pl, sizeof pl, "payload-%d", i);
            frame_str(&w, both_sides[s], true, OP_PING, pl);
        }
        AB_CHECK(.us = both_sides[s], .in = &w, .events = want_ev.s, .output = want_out.s,
                 .chop = 1);
        by_free(&w);
    }
    tx_free(&want_ev);
    tx_free(&want_out);
}

/* ======================================================================= */
/* 3. Reserved bits (RFC 6455 §5.2: MUST be 0 unless an extension says)       */
/* ======================================================================= */

/* Autobahn 3.1-3.7: a valid message, then a frame with RSV bits, then a ping
 * that must not be answered. */
TEST(autobahn_3_reserved_bits_fail_1002_rfc6455_5_2) {
    static const unsigned rsvs[] = {B_RSV1,
                                    B_RSV2,
                                    B_RSV3,
                                    B_RSV1 | B_RSV2,
                                    B_RSV1 | B_RSV3,
                                    B_RSV2 | B_RSV3,
                                    B_RSV1 | B_RSV2 | B_RSV3};
    static const unsigned ops[] = {OP_TEXT, OP_BINARY, OP_PING, OP_PONG, OP_CLOSE};
    for (size_t r = 0; r < sizeof rsvs / sizeof rsvs[0]; r++) {
        for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++) {
            for (int s = 0; s < 2; s++) {
                bytes w = {0};
                frame_str(&w, both_sides[s], true, OP_TEXT, "Hello, world!");
                frame_b0(&w, both_sides[s], B_FIN | rsvs[r] | ops[o], "\x03\xe8", 2);
                frame_str(&w, both_sides[s], true, OP_PING, "never answered");
                char why[64];
                snprintf(why, sizeof why, "rsv 0x%02x op %u", rsvs[r], ops[o]);
                AB_CHECK(.us = both_sides[s], .in = &w,
                         .events = "text 'Hello, world!'; close 1002 local 'reserved bit set'",
                         .output = "close 1002 'reserved bit set'", .why = why);
                by_free(&w);
            }
        }
    }
}

/* The same on a continuation frame: data of the message before it was delivered. */
TEST(autobahn_3_x_reserved_bit_on_continuation_fails_1002_rfc6455_5_2) {
    for (int s = 0; s < 2; s++) {
        bytes w = {0};
        frame_str(&w, both_sides[s], false, OP_TEXT, "Hello, ");
        frame_b0(&w, both_sides[s], B_FIN | B_RSV2 | OP_CONT, "world", 5);
        static const uint8_t del[] = "Hello, ";
        AB_CHECK(.us = both_sides[s], .in = &w, .events = "close 1002 local 'reserved bit set'",
                 .output = "close 1002 'reserved bit set'", .partial = del, .partial_min = 7,
                 .partial_max = 7);
        by_free(&w);
    }
}

/* Negotiated RSV bits pass, and text with them is the extension's to check. */
TEST(autobahn_3_x_negotiated_reserved_bit_passes_rfc6455_5_2) {
    for (int s = 0; s < 2; s++) {
        bytes w = {0};
        frame_b0(&w, both_sides[s], B_FIN | B_RSV1 | OP_TEXT, "\xff\x00", 2);
        frame_b0(&w, both_sides[s], B_FIN | B_RSV2 | OP_TEXT, "x", 1);
        AB_CHECK(.us = both_sides[s], .in = &w, .rsv_allowed = DX_RSV1,
                 .events = "text '\\xff\\x00' rsv=4; close 1002 local 'reserved bit set'",
                 .output = "close 1002 'reserved bit set'");
        by_free(&w);
    }
}

/* ======================================================================= */
/* 4. Reserved opcodes (RFC 6455 §5.2: 3-7 and 0xB-0xF fail)                  */
/* ======================================================================= */

static void check_reserved_opcodes(unsigned from, unsigned to) {
    for (unsigned op = from; op <= to; op++) {
        for (int s = 0; s < 2; s++) {
            dx_side us = both_sides[s];
            char why[32];
            snprintf(why, sizeof why, "opcode 0x%X", op);
            /* 4.x.1: alone, empty */
            bytes w = {0};
            frame(&w, us, true, op, "", 0);
            AB_CHECK(.us = us, .in = &w, .events = "close 1002 local 'reserved opcode'",
                     .output = "close 1002 'reserved opcode'", .why = why);
            by_free(&w);
            /* 4.x.2: alone, with a payload, and not final */
            frame_str(&w, us, false, op, "reserved opcode payload");
            AB_CHECK(.us = us, .in = &w, .events = "close 1002 local 'reserved opcode'",
                     .output = "close 1002 'reserved opcode'", .why = why);
            by_free(&w);
            /* 4.x.3-5: after a valid message, followed by a ping not answered */
            frame_str(&w, us, true, OP_TEXT, "Hello, world!");
            frame_str(&w, us, true, op, "payload");
            frame_str(&w, us, true, OP_PING, "ping");
            AB_CHECK(.us = us, .in = &w,
                     .events = "text 'Hello, world!'; close 1002 local 'reserved opcode'",
                     .output = "close 1002 'reserved opcode'", .chop = 1, .why = why);
            by_free(&w);
            /* ...and between the fragments of a message */
            frame_str(&w, us, false, OP_BINARY, "ab");
            frame_str(&w, us, true, op, "");
            frame_str(&w, us, true, OP_CONT, "cd");
            static const uint8_t ab[] = "ab";
            AB_CHECK(.us = us, .in = &w, .events = "close 1002 local 'reserved opcode'",
                     .output = "close 1002 'reserved opcode'", .partial = ab, .partial_min = 2,
                     .partial_max = 2, .why = why);
            by_free(&w);
        }
    }
}

TEST(autobahn_4_1_reserved_data_opcodes_3_to_7_fail_1002_rfc6455_5_2) {
    check_reserved_opcodes(3, 7);
}

TEST(autobahn_4_2_reserved_control_opcodes_b_to_f_fail_1002_rfc6455_5_2) {
    check_reserved_opcodes(0xB, 0xF);
}

/* ======================================================================= */
/* 5. Fragmentation (RFC 6455 §5.4)                                          */
/* ======================================================================= */

TEST(autobahn_5_1_fragmented_ping_fails_1002_rfc6455_5_4) {
    for (int s = 0; s < 2; s++) {
        bytes w = {0};
        frame_str(&w, both_sides[s], false, OP_PING, "fragment1");
        frame_str(&w, both_sides[s], true, OP_CONT, "fragment2");
        AB_CHECK(.us = both_sides[s], .in = &w,
                 .events = "close 1002 local 'fragmented control frame'",
                 .output = "close 1002 'fragmented control frame'");
        by_free(&w);
    }
}

TEST(autobahn_5_x_fragmented_close_fails_1002_rfc6455_5_4) {
    for (int s = 0; s < 2; s++) {
        bytes w = {0};
        frame(&w, both_sides[s], false, OP_CLOSE, "\x03\xe8", 2);
        frame_str(&w, both_sides[s], true, OP_CONT, "bye");
        AB_CHECK(.us = both_sides[s], .in = &w,
                 .events = "close 1002 local 'fragmented control frame'",
                 .output = "close 1002 'fragmented control frame'");
        by_free(&w);
    }
}

TEST(autobahn_5_2_fragmented_pong_fails_1002_rfc6455_5_4) {
    for (int s = 0; s < 2; s++) {
        bytes w = {0};
        frame_str(&w, both_sides[s], false, OP_PONG, "fragment1");
        frame_str(&w, both_sides[s], true, OP_CONT, "fragment2");
        AB_CHECK(.us = both_sides[s], .in = &w,
                 .events = "close 1002 local 'fragmented control frame'",
                 .output = "close 1002 'fragmented control frame'");
        by_free(&w);
    }
}

/* 5.3-5.5: a text message in two fragments, whole, chopped, byte by byte. */
TEST(autobahn_5_3_text_in_two_fragments_rfc6455_5_4) {
    for (int s = 0; s < 2; s++) {
        bytes w = {0};
        frame_str(&w, both_sides[s], false, OP_TEXT, "fragment1");
        frame_str(&w, both_sides[s], true, OP_CONT, "fragment2");
        AB_CHECK(.us = both_sides[s], .in = &w, .events = "text 'fragment1fragment2'", .output = "",
                 .chop = 3);
        by_free(&w);
        frame_str(&w, both_sides[s], false, OP_BINARY, "fragment1");
        frame_str(&w, both_sides[s], true, OP_CONT, "fragment2");
        AB_CHECK(.us = both_sides[s], .in = &w, .events = "binary 'fragment1fragment2'",
                 .output = "");
        by_free(&w);
    }
}

/* 5.6-5.8: a ping between the fragments is answered at once. */
TEST(autobahn_5_6_ping_between_fragments_rfc6455_5_4) {
    for (int s = 0; s < 2; s++) {
        bytes w = {0};
        frame_str(&w, both_sides[s], false, OP_TEXT, "fragment1");
        frame_str(&w, both_sides[s], true, OP_PING, "ping payload");
        frame_str(&w, both_sides[s], true, OP_CONT, "fragment2");
        AB_CHECK(.us = both_sides[s], .in = &w,
                 .events = "ping 'ping payload'; text 'fragment1fragment2'",
                 .output = "pong 'ping payload'", .chop = 2);
        by_free(&w);
    }
}

TEST(autobahn_5_6_pong_between_fragments_rfc6455_5_4) {
    for (int s = 0; s < 2; s++) {
        bytes w = {0};
        frame_str(&w, both_sides[s], false, OP_BINARY, "fragment1");
        frame_str(&w, both_sides[s], true, OP_PONG, "pong payload");
        frame_str(&w, both_sides[s], true, OP_CONT, "fragment2");
        AB_CHECK(.us = both_sides[s], .in = &w,
                 .events = "pong 'pong payload'; binary 'fragment1fragment2'", .output = "");
        by_free(&w);
    }
}

/* The ping is answered before the message ends: stop the input after the ping. */
TEST(autobahn_5_6_ping_between_fragments_answered_before_the_end_rfc6455_5_4) {
    for (int s = 0; s < 2; s++) {
        bytes w = {0};
        frame_str(&w, both_sides[s], false, OP_TEXT, "fragment1");
        frame_str(&w, both_sides[s], true, OP_PING, "now");
        static const uint8_t f1[] = "fragment1";
        AB_CHECK(.us = both_sides[s], .in = &w, .events = "ping 'now'", .output = "pong 'now'",
                 .partial = f1, .partial_min = 9, .partial_max = 9);
        by_free(&w);
    }
}

/* 5.9-5.11: a continuation (FIN) with no message started. */
TEST(autobahn_5_9_continuation_without_start_fails_1002_rfc6455_5_4) {
    for (int s = 0; s < 2; s++) {
        for (int fin = 0; fin < 2; fin++) { /* 5.9 (FIN) and 5.12 (not FIN) */
            bytes w = {0};
            frame_str(&w, both_sides[s], fin != 0, OP_CONT, "non-continuation payload");
            frame_str(&w, both_sides[s], true, OP_TEXT, "Hello, world!");
            AB_CHECK(.us = both_sides[s], .in = &w,
                     .events = "close 1002 local 'continuation without a message'",
                     .output = "close 1002 'continuation without a message'", .chop = 1);
            by_free(&w);
        }
    }
}

/* 5.15: a whole fragmented message, then a stray continuation. */
TEST(autobahn_5_15_continuation_after_finished_message_fails_1002_rfc6455_5_4) {
    for (int s = 0; s < 2; s++) {
        bytes w = {0};
        frame_str(&w, both_sides[s], false, OP_TEXT, "fragment1");
        frame_str(&w, both_sides[s], true, OP_CONT, "fragment2");
        frame_str(&w, both_sides[s], false, OP_CONT, "fragment3");
        frame_str(&w, both_sides[s], true, OP_TEXT, "fragment4");
        AB_CHECK(.us = both_sides[s], .in = &w,
                 .events = "text 'fragment1fragment2'; close 1002 local 'continuation without a "
                           "message'",
                 .output = "close 1002 'continuation without a message'");
        by_free(&w);
    }
}

/* 5.16-5.17: continuations first, then a message; the first frame fails. */
TEST(autobahn_5_16_continuations_before_a_message_fail_1002_rfc6455_5_4) {
    for (int s = 0; s < 2; s++) {
        for (int fin = 0; fin < 2; fin++) {
            bytes w = {0};
            for (int i = 0; i < 2; i++) {
                frame_str(&w, both_sides[s], fin != 0, OP_CONT, "fragment1");
                frame_str(&w, both_sides[s], false, OP_TEXT, "fragment2");
                frame_str(&w, both_sides[s], true, OP_CONT, "fragment3");
            }
            AB_CHECK(.us = both_sides[s], .in = &w,
                     .events = "close 1002 local 'continuation without a message'",
                     .output = "close 1002 'continuation without a message'");
            by_free(&w);
        }
    }
}

/* 5.18: text (not FIN), then a new text instead of a continuation. */
TEST(autobahn_5_18_new_text_without_finishing_fails_1002_rfc6455_5_4) {
    static const unsigned second[] = {OP_TEXT, OP_BINARY};
    for (int s = 0; s < 2; s++) {
        for (int i = 0; i < 2; i++) {
            bytes w = {0};
            frame_str(&w, both_sides[s], false, OP_TEXT, "fragment1");
            frame_str(&w, both_sides[s], true, second[i], "fragment2");
            static const uint8_t f1[] = "fragment1";
            AB_CHECK(.us = both_sides[s], .in = &w,
                     .events = "close 1002 local 'new message inside a fragmented one'",
                     .output = "close 1002 'new message inside a fragmented one'", .partial = f1,
                     .partial_min = 9, .partial_max = 9);
            by_free(&w);
        }
    }
}

/* 5.19-5.20: five fragments with two pings between them. */
TEST(autobahn_5_19_pings_between_many_fragments_rfc6455_5_4) {
    for (int s = 0; s < 2; s++) {
        bytes w = {0};
        frame_str(&w, both_sides[s], false, OP_TEXT, "fragment1");
        frame_str(&w, both_sides[s], false, OP_CONT, "fragment2");
        frame_str(&w, both_sides[s], true, OP_PING, "pongme 1!");
        frame_str(&w, both_sides[s], false, OP_CONT, "fragment3");
        frame_str(&w, both_sides[s], true, OP_PING, "pongme 2!");
        frame_str(&w, both_sides[s], false, OP_CONT, "fragment4");
        frame_str(&w, both_sides[s], true, OP_CONT, "fragment5");
        AB_CHECK(.us = both_sides[s], .in = &w,
                 .events = "ping 'pongme 1!'; ping 'pongme 2!'; text "
                           "'fragment1fragment2fragment3fragment4fragment5'",
                 .output = "pong 'pongme 1!'; pong 'pongme 2!'", .chop = 5);
        by_free(&w);
    }
}

TEST(autobahn_5_x_fragments_of_one_byte_rfc6455_5_4) {
    const char *msg = "one byte per frame";
    size_t n = strlen(msg);
    for (int s = 0; s < 2; s++) {
        bytes w = {0};
        for (size_t i = 0; i < n; i++)
            frame(&w, both_sides[s], i == n - 1, i == 0 ? OP_TEXT : OP_CONT, msg + i, 1);
        AB_CHECK(.us = both_sides[s], .in = &w, .events = "text 'one byte per frame'",
                 .output = "");
        by_free(&w);
    }
}

TEST(autobahn_5_x_empty_fragments_rfc6455_5_4) {
    for (int s = 0; s < 2; s++) {
        dx_side us = both_sides[s];
        bytes w = {0};
        /* 6.1.2-like: a message of empty fragments only */
        frame(&w, us, false, OP_TEXT, "", 0);
        frame(&w, us, false, OP_CONT, "", 0);
        frame(&w, us, true, OP_CONT, "", 0);
        /* 6.1.3-like: empty, something, empty */
        frame(&w, us, false, OP_BINARY, "", 0);
        frame(&w, us, false, OP_CONT, "mid", 3);
        frame(&w, us, true, OP_CONT, "", 0);
        /* an empty one-frame message */
        frame(&w, us, true, OP_TEXT, "", 0);
        AB_CHECK(.us = us, .in = &w, .events = "text ''; binary 'mid'; text ''", .output = "");
        by_free(&w);
    }
}

/* Not Autobahn: a close between fragments ends the connection at once. */
TEST(autobahn_5_x_close_between_fragments_rfc6455_5_4) {
    for (int s = 0; s < 2; s++) {
        bytes w = {0};
        frame_str(&w, both_sides[s], false, OP_TEXT, "fragment1");
        frame_close(&w, both_sides[s], 1000, "", 0);
        frame_str(&w, both_sides[s], true, OP_CONT, "fragment2");
        static const uint8_t f1[] = "fragment1";
        AB_CHECK(.us = both_sides[s], .in = &w, .events = "close 1000 remote ''",
                 .output = "close 1000", .partial = f1, .partial_min = 9, .partial_max = 9);
        by_free(&w);
    }
}

/* ======================================================================= */
/* 6. UTF-8 (RFC 6455 §5.6, §8.1; RFC 3629)                                  */
/* ======================================================================= */

/*
 * The reference: RFC 3629 §4's table, byte by byte. Returns the offset of the
 * first byte that no valid text could have there, or @n when there is none;
 * *@complete tells whether the bytes end at a character boundary.
 */
static size_t ref_utf8(const uint8_t *s, size_t n, bool *complete) {
    size_t i = 0;
    while (i < n) {
        unsigned b = s[i], need, lo = 0x80, hi = 0xBF;
        if (b < 0x80) {
            i++;
            continue;
        }
        if (b >= 0xC2 && b <= 0xDF) {
            need = 1;
        } else if (b >= 0xE0 && b <= 0xEF) {
            need = 2;
            if (b == 0xE0)
                lo = 0xA0;
            if (b == 0xED)
                hi = 0x9F;
        } else if (b >= 0xF0 && b <= 0xF4) {
            need = 3;
            if (b == 0xF0)
                lo = 0x90;
            if (b == 0xF4)
                hi = 0x8F;
        } else {
            *complete = false;
            return i;
        }
        for (unsigned k = 1; k <= need; k++) {
            if (i + k >= n) {
                *complete = false;
                return n;
            }
            unsigned c = s[i + k];
            if (c < (k == 1 ? lo : 0x80) || c > (k == 1 ? hi : 0xBF)) {
                *complete = false;
                return i + k;
            }
        }
        i += need + 1;
    }
    *complete = true;
    return n;
}

/*
 * Send @msg as a text message cut into frames at @cuts (offsets, increasing,
 * each in 1..n-1; none: one frame), and expect what the reference says: the
 * whole message, or 1007 with the right reason and the right part delivered.
 */
static void check_text_frames_at(dx_side us, const uint8_t *msg, size_t n, const size_t *cuts,
                                 size_t ncuts, const char *why, const char *file, int line) {
    bool complete;
    size_t bad = ref_utf8(msg, n, &complete);
    bytes w = {0};
    size_t start = 0, bad_frame_start = 0, last_start = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : n;
        frame(&w, us, i == ncuts, i == 0 ? OP_TEXT : OP_CONT, msg + start, end - start);
        if (bad < n && bad >= start && bad < end)
            bad_frame_start = start;
        last_start = start;
        start = end;
    }
    ab_case c = {.us = us, .in = &w, .output = "", .partial = msg, .why = why};
    char *ok_line = NULL;
    if (bad < n) { /* an impossible byte: fail in the chunk that holds it */
        c.events = "close 1007 local 'invalid UTF-8 in text message'";
        c.output = "close 1007 'invalid UTF-8 in text message'";
        c.partial_min = bad_frame_start;
        c.partial_max = bad;
    } else if (!complete) { /* the final fragment ends inside a character */
        c.events = "close 1007 local 'text message ends inside a character'";
        c.output = "close 1007 'text message ends inside a character'";
        c.partial_min = last_start < n ? last_start : n;
        c.partial_max = last_start < n ? n - 1 : n;
    } else {
        ok_line = msg_line("text", msg, n);
        c.events = ok_line;
    }
    ab_check_at(&c, file, line);
    free(ok_line);
    by_free(&w);
}

/* One frame; one byte per frame; every two-frame cut; padded with ASCII so the
 * vector paths see it; all for both sides. */
static void check_text_all_ways(const uint8_t *msg, size_t n, const char *why, const char *file,
                                int line) {
    size_t *cuts = malloc((n + 1) * sizeof(size_t));
    if (!cuts)
        abort();
    for (size_t i = 0; i + 1 < n; i++)
        cuts[i] = i + 1;
    uint8_t *padded = malloc(n + 140);
    if (!padded)
        abort();
    memset(padded, 'a', 70);
    memcpy(padded + 70, msg, n);
    memset(padded + 70 + n, 'z', 70);
    for (int s = 0; s < 2; s++) {
        dx_side us = both_sides[s];
        check_text_frames_at(us, msg, n, NULL, 0, why, file, line);
        if (n > 1)
            check_text_frames_at(us, msg, n, cuts, n - 1, why, file, line);
        for (size_t k = 1; k < n && n <= 24; k++)
            check_text_frames_at(us, msg, n, &k, 1, why, file, line);
        check_text_frames_at(us, padded, n + 70, NULL, 0, why, file, line); /* ends in it */
        check_text_frames_at(us, padded, n + 140, NULL, 0, why, file, line);
        size_t pcuts[2] = {35, 70 + n / 2};
        if (n / 2 > 0)
            check_text_frames_at(us, padded, n + 140, pcuts, 2, why, file, line);
    }
    free(padded);
    free(cuts);
}

/* One Kuhn-style case: the bytes, and whether they are a valid message. */
typedef struct utf8_case {
    const char *id; /* the Autobahn case */
    const char *s;  /* the payload (NUL-terminated unless @n) */
    size_t n;       /* nonzero: the payload's length (it holds NULs) */
    bool valid;     /* a complete, valid message */
} utf8_case;

static void check_utf8_cases(const utf8_case *cs, size_t count, const char *file, int line) {
    for (size_t i = 0; i < count; i++) {
        const uint8_t *p = (const uint8_t *)cs[i].s;
        size_t n = cs[i].n ? cs[i].n : strlen(cs[i].s);
        bool complete;
        size_t bad = ref_utf8(p, n, &complete);
        if ((bad == n && complete) != cs[i].valid) {
            printf("    %s: the reference validator disagrees with the table\n", cs[i].id);
            dx_test_fail(file, line, "reference validator");
        }
        check_text_all_ways(p, n, cs[i].id, file, line);
        if (dx_test_failed > 20)
            return;
    }
}

#define CHECK_UTF8_CASES(arr) check_utf8_cases(arr, sizeof arr / sizeof arr[0], __FILE__, __LINE__)

static const char kosme[] = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5";

TEST(autobahn_6_1_empty_text_rfc6455_8_1) {
    static const utf8_case cs[] = {{"6.1.1", "", 0, true}};
    CHECK_UTF8_CASES(cs);
}

TEST(autobahn_6_2_valid_text_split_everywhere_rfc6455_8_1) {
    static const utf8_case cs[] = {
        {"6.2.1", "Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!", 0,
         true},
        {"6.5.1", kosme, 0, true},
        {"6.2.x", "\xf0\x9d\x84\x9e\xe2\x82\xac\xc2\xa2$\xf4\x8f\xbf\xbf", 0, true},
    };
    CHECK_UTF8_CASES(cs);
}

TEST(autobahn_6_3_invalid_text_fails_1007_rfc6455_8_1) {
    static const utf8_case cs[] = {
        {"6.3.1",
         "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64", 0,
         false},
    };
    CHECK_UTF8_CASES(cs);
}

/* 6.4.1-6.4.4: fail fast. The 1007 comes in the call that holds the bad byte,
 * before the rest of the message exists: the input stops there. */
TEST(autobahn_6_4_fail_fast_before_the_message_ends_rfc6455_8_1) {
    static const uint8_t f1[] = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"; /* 11 bytes */
    for (int s = 0; s < 2; s++) {
        dx_side us = both_sides[s];
        /* 6.4.1: frag1 valid, frag2 "\xf4\x90\x80\x80" (not FIN), frag3 never sent */
        bytes w = {0};
        frame(&w, us, false, OP_TEXT, f1, 11);
        frame(&w, us, false, OP_CONT, "\xf4\x90\x80\x80", 4);
        static const uint8_t d641[] = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4";
        AB_CHECK(.us = us, .in = &w, .events = "close 1007 local 'invalid UTF-8 in text message'",
                 .output = "close 1007 'invalid UTF-8 in text message'", .partial = d641,
                 .partial_min = 11, .partial_max = 12, .why = "6.4.1");
        by_free(&w);
        /* 6.4.2: frag1 ends with the lead byte \xf4, frag2 starts with \x90 */
        frame(&w, us, false, OP_TEXT, d641, 12);
        frame(&w, us, false, OP_CONT, "\x90\x80\x80", 3);
        AB_CHECK(.us = us, .in = &w, .events = "close 1007 local 'invalid UTF-8 in text message'",
                 .output = "close 1007 'invalid UTF-8 in text message'", .partial = d641,
                 .partial_min = 12, .partial_max = 12, .why = "6.4.2");
        by_free(&w);
        /* 6.4.3/6.4.4: one frame announced whole, the input stops after the bad
         * bytes (the frame's last 6 bytes never come) */
        static const uint8_t m[] =
            "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80\x65\x64\x69\x74\x65\x64";
        frame(&w, us, true, OP_TEXT, m, 21);
        w.len -= 6;
        AB_CHECK(.us = us, .in = &w, .events = "close 1007 local 'invalid UTF-8 in text message'",
                 .output = "close 1007 'invalid UTF-8 in text message'", .partial = m,
                 .partial_min = 0, .partial_max = 12, .why = "6.4.3");
        by_free(&w);
        /* and with a long valid prefix so the vector paths get the chunk */
        uint8_t big[300];
        fill_text(big, 200);
        memcpy(big + 200, "\xf4\x90", 2); /* impossible after two bytes */
        memset(big + 202, 'x', 98);
        frame(&w, us, true, OP_TEXT, big, 300);
        w.len -= 98;
        AB_CHECK(.us = us, .in = &w, .events = "close 1007 local 'invalid UTF-8 in text message'",
                 .output = "close 1007 'invalid UTF-8 in text message'", .partial = big,
                 .partial_min = 0, .partial_max = 201, .why = "long prefix, then f4 90");
        by_free(&w);
    }
}

/* Fail fast on an impossible prefix at the very end of a long chunk, for every
 * kind of impossible second byte (these need no third byte to be judged). */
TEST(autobahn_6_4_x_impossible_prefix_at_chunk_end_fails_fast_rfc6455_8_1) {
    static const char *const tails[] = {"\xe0\x80", "\xe0\x9f", "\xed\xa0", "\xed\xbf",
                                        "\xf0\x80", "\xf0\x8f", "\xf4\x90", "\xf4\xbf",
                                        "\xc0",     "\xc1",     "\xf5",     "\xff",
                                        "\x80",     "\xc2\xc2", "\xe1\x41", "\xf1\x80\x41"};
    static const size_t prefixes[] = {0, 1, 15, 31, 32, 33, 63, 64, 65, 100, 255, 256, 1000};
    for (size_t t = 0; t < sizeof tails / sizeof tails[0]; t++) {
        for (size_t k = 0; k < sizeof prefixes / sizeof prefixes[0]; k++) {
            size_t pre = prefixes[k], tl = strlen(tails[t]), n = pre + tl + 50;
            uint8_t *m = malloc(n);
            if (!m)
                abort();
            fill_text(m, pre);
            memcpy(m + pre, tails[t], tl);
            memset(m + pre + tl, 'q', 50);
            bool complete;
            size_t bad = ref_utf8(m, n, &complete);
            char why[64];
            snprintf(why, sizeof why, "tail %zu after %zu bytes", t, pre);
            if (bad != pre + tl - 1) {
                dx_test_fail(__FILE__, __LINE__, "test data: bad byte not where expected");
                free(m);
                continue;
            }
            for (int s = 0; s < 2; s++) {
                bytes w = {0};
                frame(&w, both_sides[s], true, OP_TEXT, m, n);
                w.len -= 50; /* the frame is unfinished: the failure must not wait */
                AB_CHECK(.us = both_sides[s], .in = &w,
                         .events = "close 1007 local 'invalid UTF-8 in text message'",
                         .output = "close 1007 'invalid UTF-8 in text message'", .partial = m,
                         .partial_min = 0, .partial_max = bad, .why = why);
                by_free(&w);
            }
            free(m);
        }
    }
}

TEST(autobahn_6_5_to_6_7_valid_boundaries_rfc3629) {
    static const utf8_case cs[] = {
        {"6.5.1", kosme, 0, true},          {"6.6.x", "\xce\xba\xe1\xbd\xb9", 0, true},
        {"6.7.1", "\x00", 1, true},         {"6.7.2", "\xc2\x80", 0, true},
        {"6.7.3", "\xe0\xa0\x80", 0, true}, {"6.7.4", "\xf0\x90\x80\x80", 0, true},
    };
    CHECK_UTF8_CASES(cs);
}

TEST(autobahn_6_8_five_and_six_byte_sequences_fail_1007_rfc3629) {
    static const utf8_case cs[] = {
        {"6.8.1", "\xf8\x88\x80\x80\x80", 0, false},
        {"6.8.2", "\xfc\x84\x80\x80\x80\x80", 0, false},
        {"6.10.1", "\xf7\xbf\xbf\xbf", 0, false},
        {"6.10.2", "\xfb\xbf\xbf\xbf\xbf", 0, false},
        {"6.10.3", "\xfd\xbf\xbf\xbf\xbf\xbf", 0, false},
    };
    CHECK_UTF8_CASES(cs);
}

TEST(autobahn_6_9_to_6_11_boundaries_rfc3629) {
    static const utf8_case cs[] = {
        {"6.9.1", "\x7f", 0, true},
        {"6.9.2", "\xdf\xbf", 0, true},
        {"6.9.3", "\xef\xbf\xbf", 0, true},
        {"6.9.4", "\xf4\x8f\xbf\xbf", 0, true},
        {"6.11.1", "\xed\x9f\xbf", 0, true},
        {"6.11.2", "\xee\x80\x80", 0, true},
        {"6.11.3", "\xef\xbf\xbd", 0, true},
        {"6.11.4", "\xf4\x8f\xbf\xbf", 0, true},
        {"6.11.5", "\xf4\x90\x80\x80", 0, false},
    };
    CHECK_UTF8_CASES(cs);
}

TEST(autobahn_6_12_unexpected_continuation_bytes_fail_1007_rfc3629) {
    static const utf8_case cs[] = {
        {"6.12.1", "\x80", 0, false},
        {"6.12.2", "\xbf", 0, false},
        {"6.12.3", "\x80\xbf", 0, false},
        {"6.12.4", "\x80\xbf\x80", 0, false},
        {"6.12.5", "\x80\xbf\x80\xbf", 0, false},
        {"6.12.6", "\x80\xbf\x80\xbf\x80", 0, false},
        {"6.12.7", "\x80\xbf\x80\xbf\x80\xbf", 0, false},
        {"6.12.x", "ok\xc2\xa2\x80", 0, false}, /* one continuation too many */
    };
    CHECK_UTF8_CASES(cs);
    /* 6.12.8: all 64 continuation bytes in a row */
    uint8_t all[64];
    for (size_t i = 0; i < 64; i++)
        all[i] = (uint8_t)(0x80 + i);
    check_text_all_ways(all, sizeof all, "6.12.8", __FILE__, __LINE__);
}

/* 6.13: lonely lead bytes, each followed by a space. */
TEST(autobahn_6_13_lonely_start_bytes_fail_1007_rfc3629) {
    static const unsigned ranges[][2] = {
        {0xC0, 0xDF}, {0xE0, 0xEF}, {0xF0, 0xF7}, {0xF8, 0xFB}, {0xFC, 0xFD}};
    for (size_t r = 0; r < 5; r++) {
        uint8_t m[64];
        size_t n = 0;
        for (unsigned b = ranges[r][0]; b <= ranges[r][1]; b++) {
            m[n++] = (uint8_t)b;
            m[n++] = ' ';
        }
        char why[16];
        snprintf(why, sizeof why, "6.13.%zu", r + 1);
        check_text_all_ways(m, n, why, __FILE__, __LINE__);
        /* each lead byte alone, followed by a space, too */
        for (unsigned b = ranges[r][0]; b <= ranges[r][1]; b++) {
            uint8_t one[2] = {(uint8_t)b, ' '};
            bytes w = {0};
            for (int s = 0; s < 2; s++) {
                frame(&w, both_sides[s], true, OP_TEXT, one, 2);
                size_t bad = b >= 0xC2 && b <= 0xF4 ? 1 : 0;
                AB_CHECK(.us = both_sides[s], .in = &w,
                         .events = "close 1007 local 'invalid UTF-8 in text message'",
                         .output = "close 1007 'invalid UTF-8 in text message'", .partial = one,
                         .partial_min = 0, .partial_max = bad, .why = why);
                by_free(&w);
            }
        }
    }
}

TEST(autobahn_6_14_last_continuation_missing_fails_1007_rfc3629) {
    static const utf8_case cs[] = {
        {"6.14.1", "\xc0", 0, false},
        {"6.14.2", "\xe0\x80", 0, false},
        {"6.14.3", "\xf0\x80\x80", 0, false},
        {"6.14.4", "\xf8\x80\x80\x80", 0, false},
        {"6.14.5", "\xfc\x80\x80\x80\x80", 0, false},
        {"6.14.6", "\xdf", 0, false},         /* truncated at the end */
        {"6.14.7", "\xef\xbf", 0, false},     /* truncated at the end */
        {"6.14.8", "\xf7\xbf\xbf", 0, false}, /* F7 is never valid */
        {"6.14.9", "\xfb\xbf\xbf\xbf", 0, false},
        {"6.14.10", "\xfd\xbf\xbf\xbf\xbf", 0, false},
        {"6.14.x", "\xf4\x8f\xbf", 0, false}, /* truncated 4-byte character */
        {"6.14.x", "abc\xe2\x82", 0, false},
        {"6.14.x", "\xf0\x9d", 0, false},
    };
    CHECK_UTF8_CASES(cs);
}

TEST(autobahn_6_15_concatenated_incomplete_sequences_fail_1007_rfc3629) {
    static const utf8_case cs[] = {
        {"6.15.1",
         "\xc0\xe0\x80\xf0\x80\x80\xf8\x80\x80\x80\xfc\x80\x80\x80\x80\xdf\xef\xbf\xf7\xbf\xbf\xfb"
         "\xbf\xbf\xbf\xfd\xbf\xbf\xbf\xbf",
         0, false},
        {"6.15.x", "\xdf\xef\xbf", 0, false},
    };
    CHECK_UTF8_CASES(cs);
}

TEST(autobahn_6_16_impossible_bytes_fail_1007_rfc3629) {
    static const utf8_case cs[] = {
        {"6.16.1", "\xfe", 0, false},
        {"6.16.2", "\xff", 0, false},
        {"6.16.3", "\xfe\xfe\xff\xff", 0, false},
    };
    CHECK_UTF8_CASES(cs);
}

TEST(autobahn_6_17_to_6_19_overlong_sequences_fail_1007_rfc3629) {
    static const utf8_case cs[] = {
        {"6.17.1", "\xc0\xaf", 0, false},
        {"6.17.2", "\xe0\x80\xaf", 0, false},
        {"6.17.3", "\xf0\x80\x80\xaf", 0, false},
        {"6.17.4", "\xf8\x80\x80\x80\xaf", 0, false},
        {"6.17.5", "\xfc\x80\x80\x80\x80\xaf", 0, false},
        {"6.18.1", "\xc1\xbf", 0, false},
        {"6.18.2", "\xe0\x9f\xbf", 0, false},
        {"6.18.3", "\xf0\x8f\xbf\xbf", 0, false},
        {"6.18.4", "\xf8\x87\xbf\xbf\xbf", 0, false},
        {"6.18.5", "\xfc\x83\xbf\xbf\xbf\xbf", 0, false},
        {"6.19.1", "\xc0\x80", 0, false},
        {"6.19.2", "\xe0\x80\x80", 0, false},
        {"6.19.3", "\xf0\x80\x80\x80", 0, false},
        {"6.19.4", "\xf8\x80\x80\x80\x80", 0, false},
        {"6.19.5", "\xfc\x80\x80\x80\x80\x80", 0, false},
    };
    CHECK_UTF8_CASES(cs);
}

TEST(autobahn_6_20_single_surrogates_fail_1007_rfc3629) {
    static const utf8_case cs[] = {
        {"6.20.1", "\xed\xa0\x80", 0, false}, {"6.20.2", "\xed\xad\xbf", 0, false},
        {"6.20.3", "\xed\xae\x80", 0, false}, {"6.20.4", "\xed\xaf\xbf", 0, false},
        {"6.20.5", "\xed\xb0\x80", 0, false}, {"6.20.6", "\xed\xbe\x80", 0, false},
        {"6.20.7", "\xed\xbf\xbf", 0, false},
    };
    CHECK_UTF8_CASES(cs);
}

TEST(autobahn_6_21_paired_surrogates_fail_1007_rfc3629) {
    static const utf8_case cs[] = {
        {"6.21.1", "\xed\xa0\x80\xed\xb0\x80", 0, false},
        {"6.21.2", "\xed\xa0\x80\xed\xbf\xbf", 0, false},
        {"6.21.3", "\xed\xad\xbf\xed\xb0\x80", 0, false},
        {"6.21.4", "\xed\xad\xbf\xed\xbf\xbf", 0, false},
        {"6.21.5", "\xed\xae\x80\xed\xb0\x80", 0, false},
        {"6.21.6", "\xed\xae\x80\xed\xbf\xbf", 0, false},
        {"6.21.7", "\xed\xaf\xbf\xed\xb0\x80", 0, false},
        {"6.21.8", "\xed\xaf\xbf\xed\xbf\xbf", 0, false},
    };
    CHECK_UTF8_CASES(cs);
}

/* 6.22: noncharacters are valid UTF-8 (Autobahn expects them accepted). */
TEST(autobahn_6_22_noncharacters_are_valid_rfc3629) {
    static const utf8_case cs[] = {
        {"6.22.1", "\xef\xbf\xbe", 0, true},      {"6.22.2", "\xef\xbf\xbf", 0, true},
        {"6.22.3", "\xf0\x9f\xbf\xbe", 0, true},  {"6.22.4", "\xf0\x9f\xbf\xbf", 0, true},
        {"6.22.5", "\xf0\xaf\xbf\xbe", 0, true},  {"6.22.6", "\xf0\xaf\xbf\xbf", 0, true},
        {"6.22.31", "\xf3\xbf\xbf\xbe", 0, true}, {"6.22.32", "\xf3\xbf\xbf\xbf", 0, true},
        {"6.22.33", "\xf4\x8f\xbf\xbe", 0, true}, {"6.22.34", "\xf4\x8f\xbf\xbf", 0, true},
        {"6.22.x", "\xef\xb7\x90", 0, true},      {"6.22.x", "\xef\xb7\xaf", 0, true},
    };
    CHECK_UTF8_CASES(cs);
}

TEST(autobahn_6_23_replacement_character_and_friends_rfc3629) {
    static const utf8_case cs[] = {
        {"6.23.1", "\xef\xbf\xbd", 0, true},
        {"6.23.x", "\xef\xbf\xb9\xef\xbf\xba\xef\xbf\xbb", 0, true},
        {"6.23.x",
         "a\x00"
         "b",
         3, true},
        {"6.23.x", "\xe2\x80\xa8\xe2\x80\xa9\xef\xbb\xbf", 0, true},
    };
    CHECK_UTF8_CASES(cs);
}

/* Valid text across many fragment splits, split inside characters, mixed with
 * control frames, for a long text too. */
TEST(autobahn_6_x_valid_text_many_fragment_splits_rfc6455_8_1) {
    uint8_t m[777];
    fill_text(m, sizeof m);
    bool complete;
    REQUIRE(ref_utf8(m, sizeof m, &complete) == sizeof m && complete);
    static const size_t steps[] = {1, 2, 3, 5, 7, 64, 100, 333};
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        size_t cuts[800], nc = 0;
        for (size_t at = steps[k]; at < sizeof m; at += steps[k])
            cuts[nc++] = at;
        for (int s = 0; s < 2; s++)
            check_text_frames_at(both_sides[s], m, sizeof m, cuts, nc, "steps", __FILE__, __LINE__);
    }
}

/* A text that is invalid in a late fragment: early fragments are delivered. */
TEST(autobahn_6_x_invalid_in_a_late_fragment_rfc6455_8_1) {
    uint8_t m[200];
    fill_text(m, 150);
    memcpy(m + 150, "\xed\xa0\x80", 3);
    fill_text(m + 153, 47);
    size_t cuts[] = {50, 100, 151, 180};
    for (int s = 0; s < 2; s++)
        check_text_frames_at(both_sides[s], m, sizeof m, cuts, 4, "surrogate in frame 4", __FILE__,
                             __LINE__);
}

/* Text is checked message by message; binary is not checked at all. */
TEST(autobahn_6_x_binary_is_not_checked_rfc6455_5_6) {
    for (int s = 0; s < 2; s++) {
        bytes w = {0};
        frame(&w, both_sides[s], true, OP_BINARY, "\xff\xfe\xed\xa0\x80", 5);
        frame(&w, both_sides[s], false, OP_BINARY, "\xe2\x82", 2);
        frame(&w, both_sides[s], true, OP_CONT, "", 0);
        frame(&w, both_sides[s], true, OP_TEXT, "\xe2\x82\xac", 3);
        AB_CHECK(.us = both_sides[s], .in = &w,
                 .events = "binary '\\xff\\xfe\\xed\\xa0\\x80'; binary '\\xe2\\x82'; text "
                           "'\\xe2\\x82\\xac'",
                 .output = "");
        by_free(&w);
    }
}

/* ======================================================================= */
/* 7. Close (RFC 6455 §5.5.1, §7)                                            */
/* ======================================================================= */

/* 7.1.1: a message, then a close; the close is echoed. */
TEST(autobahn_7_1_1_text_then_close_rfc6455_5_5_1) {
    for (int s = 0; s < 2; s++) {
        bytes w = {0};
        frame_str(&w, both_sides[s], true, OP_TEXT, "Hello World!");
        frame_close(&w, both_sides[s], 1000, "", 0);
        AB_CHECK(.us = both_sides[s], .in = &w,
                 .events = "text 'Hello World!'; close 1000 remote ''", .output = "close 1000");
        by_free(&w);
    }
}

/* 7.1.2-7.1.5: after the peer's close, everything is ignored. */
TEST(autobahn_7_1_2_data_after_peer_close_ignored_rfc6455_5_5_1) {
    for (int s = 0; s < 2; s++) {
        dx_side us = both_sides[s];
        bytes w = {0};
        frame_close(&w, us, 1000, "", 0);
        frame_close(&w, us, 1001, "", 0);                /* 7.1.2 */
        frame_str(&w, us, true, OP_PING, "ignored");     /* 7.1.3 */
        frame_str(&w, us, true, OP_TEXT, "ignored");     /* 7.1.4 */
        frame_str(&w, us, true, 0x3, "even violations"); /* nothing is parsed any more */
        by_add(&w, "\xff\xff\xff", 3);
        AB_CHECK(.us = us, .in = &w, .events = "close 1000 remote ''", .output = "close 1000",
                 .eof = true);
        by_free(&w);
        /* 7.1.5: a fragment, the close, the rest of the message */
        frame_str(&w, us, false, OP_TEXT, "fragment1");
        frame_close(&w, us, 1000, "", 0);
        frame_str(&w, us, true, OP_CONT, "fragment2");
        static const uint8_t f1[] = "fragment1";
        AB_CHECK(.us = us, .in = &w, .events = "close 1000 remote ''", .output = "close 1000",
                 .partial = f1, .partial_min = 9, .partial_max = 9);
        by_free(&w);
    }
}

/* 7.1.6: a big message, a ping and a close arrive together: all handled in order. */
TEST(autobahn_7_1_6_big_message_ping_close_rfc6455_5_5_1) {
    size_t n = 256 * 1024;
    uint8_t *m = malloc(n);
    if (!m)
        abort();
    fill_text(m, n);
    text want = {0};
    tx_msg(&want, "text", m, n);
    tx_add(&want, "; ping 'ping'; close 1000 remote 'ok'");
    for (int s = 0; s < 2; s++) {
        bytes w = {0};
        frame(&w, both_sides[s], true, OP_TEXT, m, n);
        frame_str(&w, both_sides[s], true, OP_PING, "ping");
        frame_close(&w, both_sides[s], 1000, "ok", 2);
        AB_CHECK(.us = both_sides[s], .in = &w, .events = want.s,
                 .output = "pong 'ping'; close 1000", .chop = 4093);
        by_free(&w);
    }
    tx_free(&want);
    free(m);
}

TEST(autobahn_7_3_1_close_empty_echoed_code_1005_rfc6455_7_1_5) {
    for (int s = 0; s < 2; s++) {
        bytes w = {0};
        frame_close(&w, both_sides[s], 0, "", 0);
        AB_CHECK(.us = both_sides[s], .in = &w, .events = "close 1005 remote ''",
                 .output = "close");
        by_free(&w);
    }
}

TEST(autobahn_7_3_2_close_one_byte_fails_1002_rfc6455_5_5_1) {
    for (int s = 0; s < 2; s++) {
        bytes w = {0};
        frame(&w, both_sides[s], true, OP_CLOSE, "\x03", 1);
        AB_CHECK(.us = both_sides[s], .in = &w,
                 .events = "close 1002 local 'close payload of 1 byte'",
                 .output = "close 1002 'close payload of 1 byte'");
        by_free(&w);
    }
}

/* 7.3.3-7.3.5: a code, a code and a reason, a reason of 123 bytes (the most). */
TEST(autobahn_7_3_3_close_with_reason_echoes_code_only_rfc6455_5_5_1) {
    char reason[124];
    memset(reason, 'r', 123);
    reason[123] = 0;
    memcpy(reason, "\xe2\x82\xac", 3); /* with a multi-byte character */
    text want = {0};
    tx_add(&want, "close 1000 remote ");
    tx_bytes(&want, (const uint8_t *)reason, 123);
    for (int s = 0; s < 2; s++) {
        bytes w = {0};
        frame_close(&w, both_sides[s], 1000, "", 0);
        AB_CHECK(.us = both_sides[s], .in = &w, .events = "close 1000 remote ''",
                 .output = "close 1000");
        by_free(&w);
        frame_close(&w, both_sides[s], 1001, "Going away", 10);
        AB_CHECK(.us = both_sides[s], .in = &w, .events = "close 1001 remote 'Going away'",
                 .output = "close 1001");
        by_free(&w);
        frame_close(&w, both_sides[s], 1000, reason, 123);
        AB_CHECK(.us = both_sides[s], .in = &w, .events = want.s, .output = "close 1000",
                 .chop = 7);
        by_free(&w);
    }
    tx_free(&want);
}

TEST(autobahn_7_5_1_close_reason_invalid_utf8_fails_1007_rfc6455_8_1) {
    static const char *const bad[] = {
        "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64", "\xff",
        "truncated \xe2\x82", "\xc0\x80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        for (int s = 0; s < 2; s++) {
            bytes w = {0};
            frame_close(&w, both_sides[s], 1000, bad[i], strlen(bad[i]));
            AB_CHECK(.us = both_sides[s], .in = &w,
                     .events = "close 1007 local 'invalid UTF-8 in close reason'",
                     .output = "close 1007 'invalid UTF-8 in close reason'");
            by_free(&w);
        }
    }
}

TEST(autobahn_7_7_valid_close_codes_echoed_rfc6455_7_4) {
    static const unsigned codes[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010,
                                     1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        char ev[64], out[64], why[16];
        snprintf(ev, sizeof ev, "close %u remote 'r'", codes[i]);
        snprintf(out, sizeof out, "close %u", codes[i]);
        snprintf(why, sizeof why, "code %u", codes[i]);
        for (int s = 0; s < 2; s++) {
            bytes w = {0};
            frame_close(&w, both_sides[s], codes[i], "r", 1);
            AB_CHECK(.us = both_sides[s], .in = &w, .events = ev, .output = out, .why = why);
            by_free(&w);
        }
    }
}

TEST(autobahn_7_9_invalid_close_codes_fail_1002_rfc6455_7_4) {
    static const unsigned codes[] = {0,    999,  1004, 1005, 1006, 1015,
                                     1016, 1100, 2000, 2999, 5000, 65535};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        char why[16];
        snprintf(why, sizeof why, "code %u", codes[i]);
        for (int s = 0; s < 2; s++) {
            bytes w = {0};
            uint8_t body[2] = {(uint8_t)(codes[i] >> 8), (uint8_t)codes[i]};
            frame(&w, both_sides[s], true, OP_CLOSE, body, 2);
            AB_CHECK(.us = both_sides[s], .in = &w,
                     .events = "close 1002 local 'invalid close code'",
                     .output = "close 1002 'invalid close code'", .why = why);
            by_free(&w);
        }
    }
}

/* After we sent a close (CLOSING), the peer's data, pings and pongs are dropped
 * (no pong); its close completes the handshake without a second close from us. */
TEST(autobahn_7_x_after_our_close_data_ignored_peer_close_completes_rfc6455_7_1_2) {
    for (int s = 0; s < 2; s++) {
        dx_side us = both_sides[s];
        bytes w = {0};
        frame_str(&w, us, true, OP_TEXT, "late text");
        frame_str(&w, us, false, OP_BINARY, "late");
        frame_str(&w, us, true, OP_PING, "late ping");
        frame_str(&w, us, true, OP_CONT, " fragments");
        frame_str(&w, us, true, OP_PONG, "late pong");
        frame(&w, us, true, OP_TEXT, "\xff", 1); /* not even checked */
        frame_close(&w, us, 1001, "ack", 3);
        frame_str(&w, us, true, OP_PING, "after everything");
        AB_CHECK(.us = us, .in = &w, .close_first = 1000, .events = "close 1001 remote 'ack'",
                 .output = "close 1000 'bye'");
        by_free(&w);
        /* no close from the peer yet: still CLOSING, nothing reported */
        frame_str(&w, us, true, OP_PING, "late ping");
        AB_CHECK(.us = us, .in = &w, .close_first = 4000, .events = "",
                 .output = "close 4000 'bye'");
        by_free(&w);
        /* the transport ends instead: 1006 */
        AB_CHECK(.us = us, .in = &w, .close_first = 1000, .eof = true,
                 .events = "close 1006 local ''", .output = "close 1000 'bye'");
        /* a protocol violation while CLOSING: reported, no second close frame */
        frame_str(&w, us, true, 0x5, "bad");
        AB_CHECK(.us = us, .in = &w, .close_first = 1000,
                 .events = "close 1002 local 'reserved opcode'", .output = "close 1000 'bye'");
        by_free(&w);
        /* an empty close from the peer completes it too */
        frame_close(&w, us, 0, "", 0);
        AB_CHECK(.us = us, .in = &w, .close_first = 1000, .events = "close 1005 remote ''",
                 .output = "close 1000 'bye'");
        by_free(&w);
    }
}

/* The transport ends without a close frame: 1006, nothing sent. */
TEST(autobahn_7_x_eof_without_close_is_1006_rfc6455_7_1_5) {
    for (int s = 0; s < 2; s++) {
        bytes w = {0};
        frame_str(&w, both_sides[s], true, OP_TEXT, "hi");
        frame_str(&w, both_sides[s], false, OP_TEXT, "unfini");
        static const uint8_t u[] = "unfini";
        AB_CHECK(.us = both_sides[s], .in = &w, .eof = true,
                 .events = "text 'hi'; close 1006 local ''", .output = "", .partial = u,
                 .partial_min = 6, .partial_max = 6);
        by_free(&w);
    }
}

/* ======================================================================= */
/* 9. Large messages (RFC 6455 §5.2, §5.4)                                   */
/* ======================================================================= */

static void check_big(unsigned op, size_t n, size_t frag, size_t chop, bool no_bytes) {
    uint8_t *m = malloc(n);
    if (!m)
        abort();
    if (op == OP_TEXT)
        fill_text(m, n);
    else
        fill_binary(m, n, (uint32_t)(n ^ frag));
    char *want = msg_line(op == OP_TEXT ? "text" : "binary", m, n);
    char why[64];
    snprintf(why, sizeof why, "%zu bytes in frames of %zu", n, frag);
    for (int s = 0; s < 2; s++) {
        bytes w = {0};
        for (size_t at = 0; at < n || at == 0; at += frag) {
            size_t len = n - at < frag ? n - at : frag;
            frame(&w, both_sides[s], at + len == n, at == 0 ? op : OP_CONT, m + at, len);
            if (n == 0)
                break;
        }
        AB_CHECK(.us = both_sides[s], .in = &w, .events = want, .output = "", .chop = chop,
                 .no_bytes = no_bytes, .why = why);
        by_free(&w);
    }
    free(want);
    free(m);
}

/* 9.1 / 9.2: one frame of 64 KiB, 256 KiB, 1 MiB (the default limit, accepted). */
TEST(autobahn_9_1_large_text_one_frame_rfc6455_5_2) {
    check_big(OP_TEXT, 64 * 1024, 64 * 1024, 0, false);
    check_big(OP_TEXT, 256 * 1024, 256 * 1024, 65536, false);
    check_big(OP_TEXT, 1024 * 1024, 1024 * 1024, 0, false);
}

TEST(autobahn_9_2_large_binary_one_frame_rfc6455_5_2) {
    check_big(OP_BINARY, 64 * 1024, 64 * 1024, 0, false);
    check_big(OP_BINARY, 256 * 1024, 256 * 1024, 131072, false);
    check_big(OP_BINARY, 1024 * 1024, 1024 * 1024, 0, false);
}

/* 9.3 / 9.4: 1 MiB in fragments of 64 B .. 1 MiB. */
TEST(autobahn_9_3_large_text_fragmented_rfc6455_5_4) {
    static const size_t frags[] = {64, 256, 1024, 4096, 16384, 65536, 262144, 1048576};
    for (size_t i = 0; i < sizeof frags / sizeof frags[0]; i++)
        check_big(OP_TEXT, 1024 * 1024, frags[i], 0, i != 0);
}

TEST(autobahn_9_4_large_binary_fragmented_rfc6455_5_4) {
    static const size_t frags[] = {64, 256, 1024, 4096, 16384, 65536, 262144, 1048576};
    for (size_t i = 0; i < sizeof frags / sizeof frags[0]; i++)
        check_big(OP_BINARY, 1024 * 1024, frags[i], 0, i != 0);
}

/* 9.5 / 9.6: one 1 MiB frame delivered in chops of 64 B .. 128 KiB. */
TEST(autobahn_9_5_large_text_chopped_delivery_rfc6455_5_2) {
    static const size_t chops[] = {64, 128, 256, 512, 1024, 2048, 131072};
    for (size_t i = 0; i < sizeof chops / sizeof chops[0]; i++)
        check_big(OP_TEXT, 1024 * 1024, 1024 * 1024, chops[i], true);
}

TEST(autobahn_9_6_large_binary_chopped_delivery_rfc6455_5_2) {
    static const size_t chops[] = {64, 128, 256, 512, 1024, 2048, 131072};
    for (size_t i = 0; i < sizeof chops / sizeof chops[0]; i++)
        check_big(OP_BINARY, 1024 * 1024, 1024 * 1024, chops[i], true);
}

/* Delivered chunks follow the input: fed in N pieces, a frame gives about N
 * events, each a span into the piece, and together exactly the message. */
TEST(autobahn_9_x_delivered_chunks_follow_the_input_rfc6455_5_4) {
    size_t n = 65536;
    uint8_t *m = malloc(n);
    if (!m)
        abort();
    fill_binary(m, n, 99);
    for (int s = 0; s < 2; s++) {
        bytes w = {0};
        frame(&w, both_sides[s], true, OP_BINARY, m, n);
        static const size_t pieces[] = {1, 1000, 4096, 65536 + 14};
        for (size_t k = 0; k < 4; k++) {
            dx_proto_config cfg = {.side = both_sides[s]};
            dx_proto *p = NULL;
            REQUIRE(dx_proto_create(&p, &cfg) == 0);
            bytes got = {0}, wcopy = {0};
            by_add(&wcopy, w.b, w.len);
            size_t off = 0, events = 0, first = 0, fin = 0;
            while (off < wcopy.len) {
                size_t piece = pieces[k] < wcopy.len - off ? pieces[k] : wcopy.len - off;
                size_t pos = 0;
                while (pos < piece) {
                    size_t used;
                    dx_event ev;
                    CHECK_RC(dx_proto_recv(p, wcopy.b + off + pos, piece - pos, &used, &ev), 0);
                    if (ev.type == DX_EV_DATA) {
                        events++;
                        first += ev.u.data.first;
                        fin += ev.u.data.fin;
                        CHECK(ev.u.data.data.len > 0);
                        by_add(&got, ev.u.data.data.ptr, ev.u.data.data.len);
                    } else {
                        CHECK_EQ_INT(ev.type, DX_EV_NONE);
                    }
                    pos += used;
                    if (used == 0)
                        break;
                }
                off += piece;
            }
            size_t hdr = both_sides[s] == S ? 14 : 10;
            size_t want_events = (n + hdr + pieces[k] - 1) / pieces[k] - hdr / pieces[k];
            if (pieces[k] == 1)
                want_events = n;
            CHECK_EQ_INT(events, want_events);
            CHECK_EQ_INT(first, 1);
            CHECK_EQ_INT(fin, 1);
            CHECK_EQ_INT(got.len, n);
            CHECK(got.len == n && memcmp(got.b, m, n) == 0);
            by_free(&got);
            by_free(&wcopy);
            dx_proto_destroy(p);
        }
        by_free(&w);
    }
    free(m);
}

/* ======================================================================= */
/* 10. Limits (RFC 6455 §7.4.1 1009; proto.h: checked on the header)         */
/* ======================================================================= */

TEST(autobahn_10_1_frame_over_max_frame_fails_1009_before_data_rfc6455_7_4_1) {
    uint8_t m[1001];
    memset(m, 'm', sizeof m);
    dx_proto_limits lim = {.max_frame = 1000};
    for (int s = 0; s < 2; s++) {
        dx_side us = both_sides[s];
        bytes w = {0};
        frame(&w, us, true, OP_TEXT, m, 1000); /* exactly the limit: fine */
        frame(&w, us, true, OP_BINARY, m, 1001);
        text want = {0};
        tx_msg(&want, "text", m, 1000);
        tx_add(&want, "; close 1009 local 'frame too big'");
        AB_CHECK(.us = us, .in = &w, .limits = lim, .events = want.s,
                 .output = "close 1009 'frame too big'");
        by_free(&w);
        tx_free(&want);
        /* the header alone is enough: no payload byte has to arrive */
        frame(&w, us, true, OP_TEXT, m, 1001);
        w.len -= 1001;
        AB_CHECK(.us = us, .in = &w, .limits = lim, .events = "close 1009 local 'frame too big'",
                 .output = "close 1009 'frame too big'");
        by_free(&w);
        /* a continuation over max_frame: the fragments before were delivered,
         * no byte of the big one */
        frame(&w, us, false, OP_TEXT, m, 10);
        frame(&w, us, true, OP_CONT, m, 1001);
        AB_CHECK(.us = us, .in = &w, .limits = lim, .events = "close 1009 local 'frame too big'",
                 .output = "close 1009 'frame too big'", .partial = m, .partial_min = 10,
                 .partial_max = 10);
        by_free(&w);
        /* a huge announced length (2^62) with no payload */
        uint8_t h[14] = {B_FIN | OP_BINARY, 127, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4};
        if (us == S)
            h[1] |= 0x80;
        by_add(&w, h, us == S ? 14 : 10);
        AB_CHECK(.us = us, .in = &w, .events = "close 1009 local 'frame too big'",
                 .output = "close 1009 'frame too big'");
        by_free(&w);
        /* control frames are not held to max_frame */
        uint8_t pl[125];
        memset(pl, 'c', sizeof pl);
        dx_proto_limits tiny = {.max_frame = 10, .max_message = 10};
        frame(&w, us, true, OP_PING, pl, 125);
        text ev = {0}, out = {0};
        tx_msg(&ev, "ping", pl, 125);
        tx_msg(&out, "pong", pl, 125);
        AB_CHECK(.us = us, .in = &w, .limits = tiny, .events = ev.s, .output = out.s);
        by_free(&w);
        tx_free(&ev);
        tx_free(&out);
    }
}

TEST(autobahn_10_1_message_over_max_message_fails_1009_before_data_rfc6455_7_4_1) {
    uint8_t m[1000];
    fill_binary(m, sizeof m, 5);
    dx_proto_limits lim = {.max_message = 1000};
    for (int s = 0; s < 2; s++) {
        dx_side us = both_sides[s];
        bytes w = {0};
        /* 600 + 400 = the limit: fine; then 600 + 401: 1009 at the second header */
        frame(&w, us, false, OP_BINARY, m, 600);
        frame_str(&w, us, true, OP_PING, "between");
        frame(&w, us, true, OP_CONT, m + 600, 400);
        frame(&w, us, false, OP_BINARY, m, 600);
        frame(&w, us, false, OP_CONT, m + 600, 0);
        frame(&w, us, true, OP_CONT, m + 600, 400);
        text want = {0};
        tx_add(&want, "ping 'between'; ");
        tx_msg(&want, "binary", m, 1000);
        tx_add(&want, "; ");
        tx_msg(&want, "binary", m, 1000);
        AB_CHECK(.us = us, .in = &w, .limits = lim, .events = want.s, .output = "pong 'between'");
        tx_free(&want);
        by_free(&w);

        /* 0 + 10 + 590 delivered, then a 401-byte fragment: 1001 in all */
        frame(&w, us, false, OP_BINARY, m, 0);
        frame(&w, us, false, OP_CONT, "0123456789", 10);
        frame(&w, us, false, OP_CONT, m, 590);
        frame(&w, us, true, OP_CONT, m, 401);
        uint8_t del[600];
        memcpy(del, "0123456789", 10);
        memcpy(del + 10, m, 590);
        AB_CHECK(.us = us, .in = &w, .limits = lim, .events = "close 1009 local 'message too big'",
                 .output = "close 1009 'message too big'", .partial = del, .partial_min = 600,
                 .partial_max = 600);
        by_free(&w);
        /* one frame over max_message (max_frame is larger) */
        uint8_t big[1001];
        memset(big, 'b', sizeof big);
        frame(&w, us, true, OP_TEXT, big, 1001);
        AB_CHECK(.us = us, .in = &w, .limits = lim, .events = "close 1009 local 'message too big'",
                 .output = "close 1009 'message too big'");
        by_free(&w);
    }
}

/* The limits reset with each message. */
TEST(autobahn_10_x_limits_are_per_message_rfc6455_5_4) {
    uint8_t m[100];
    memset(m, 'k', sizeof m);
    dx_proto_limits lim = {.max_frame = 60, .max_message = 100};
    text want = {0};
    for (int i = 0; i < 5; i++) {
        if (i)
            tx_add(&want, "; ");
        tx_msg(&want, "text", m, 100);
    }
    for (int s = 0; s < 2; s++) {
        bytes w = {0};
        for (int i = 0; i < 5; i++) {
            frame(&w, both_sides[s], false, OP_TEXT, m, 50);
            frame(&w, both_sides[s], true, OP_CONT, m, 50);
        }
        AB_CHECK(.us = both_sides[s], .in = &w, .limits = lim, .events = want.s, .output = "");
        by_free(&w);
    }
    tx_free(&want);
}
