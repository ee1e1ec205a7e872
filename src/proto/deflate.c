/*
 * permessage-deflate (RFC 7692): parameter negotiation and the per-connection
 * codec on top of zlib's raw DEFLATE streams. See include/duplex/deflate.h.
 */
#include "duplex/deflate.h"

#include "base/internal.h"

#include <limits.h>
#define ZLIB_CONST
#include <zlib.h>

#define PMD_NAME "permessage-deflate"
#define DEFAULT_MAX_MESSAGE ((size_t)1 << 20)

static const uint8_t sync_tail[4] = {0x00, 0x00, 0xff, 0xff};

/* ---- negotiation ------------------------------------------------------------ */

enum {
    P_SERVER_NCT, /* server_no_context_takeover */
    P_CLIENT_NCT, /* client_no_context_takeover */
    P_SERVER_MWB, /* server_max_window_bits */
    P_CLIENT_MWB, /* client_max_window_bits */
    P_COUNT
};

static const char *const param_names[P_COUNT] = {
    "server_no_context_takeover",
    "client_no_context_takeover",
    "server_max_window_bits",
    "client_max_window_bits",
};

static int param_index(dx_span name) {
    for (int i = 0; i < P_COUNT; i++)
        if (dx_span_eq_nocase(name, dx_span_cstr(param_names[i])))
            return i;
    return -1;
}

/* Window bits: a plain decimal 8..15 without leading zeros (§7.1.2.1). */
static int parse_bits(const dx_ext_param *p) {
    char v[8];
    size_t len = 0;
    if (dx_ext_param_value(p, v, sizeof v, &len) != 0)
        return -1;
    if (len == 1 && v[0] >= '8' && v[0] <= '9')
        return v[0] - '0';
    if (len == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5')
        return 10 + (v[1] - '0');
    return -1;
}

static bool is_pmd(const dx_ext *e) {
    return dx_span_eq_nocase(e->name, dx_span_cstr(PMD_NAME));
}

/* What one element (an offer or an answer) says; bits are 0 when absent. */
typedef struct pmd_elem {
    bool nct[2];           /* server, client no_context_takeover */
    int bits[2];           /* server, client max_window_bits; 0: absent */
    bool client_bits_bare; /* client_max_window_bits without a value */
} pmd_elem;

/* Parse @e's parameters. @is_offer allows client_max_window_bits without a
 * value (only an offer may send it bare). Returns 0 or -1 (malformed). */
static int parse_elem(const dx_ext *e, bool is_offer, pmd_elem *out) {
    bool seen[P_COUNT] = {false};
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < e->num_params; i++) {
        const dx_ext_param *p = &e->params[i];
        int k = param_index(p->name);
        if (k < 0 || seen[k])
            return -1;
        seen[k] = true;
        switch (k) {
        case P_SERVER_NCT:
        case P_CLIENT_NCT:
            if (p->has_value)
                return -1;
            out->nct[k == P_CLIENT_NCT] = true;
            break;
        default: {
            int side = k == P_CLIENT_MWB;
            if (!p->has_value) {
                if (!(is_offer && side == 1))
                    return -1;
                out->client_bits_bare = true;
                break;
            }
            int b = parse_bits(p);
            if (b < 0)
                return -1;
            out->bits[side] = b;
            break;
        }
        }
    }
    return 0;
}

static bool bits_ok(uint8_t b) {
    return b == 0 || (b >= 8 && b <= 15);
}

static int cfg_check(const dx_deflate_config *cfg) {
    if (!bits_ok(cfg->server_max_window_bits) || !bits_ok(cfg->client_max_window_bits) ||
        cfg->mem_level > 9 || cfg->level > 9)
        return DX_EINVAL;
    return 0;
}

static const dx_deflate_config default_cfg;

int dx_deflate_parse_offer(const dx_ext *offer, dx_deflate_params *out, bool *client_bits_offered) {
    if (!offer || !is_pmd(offer))
        return DX_EDEFLATE_NONE;
    pmd_elem el;
    if (parse_elem(offer, true, &el) != 0)
        return DX_EDEFLATE_BAD_OFFER;
    if (out) {
        out->server_no_context_takeover = el.nct[0];
        out->client_no_context_takeover = el.nct[1];
        out->server_max_window_bits = (uint8_t)(el.bits[0] ? el.bits[0] : 15);
        out->client_max_window_bits = (uint8_t)(el.bits[1] ? el.bits[1] : 15);
    }
    if (client_bits_offered)
        *client_bits_offered = el.bits[1] != 0 || el.client_bits_bare;
    return 0;
}

/* A small bounded string builder: counts what it would need past @cap. */
typedef struct sbuf {
    char *p;
    size_t cap, len;
} sbuf;

static void sb_put(sbuf *b, const char *s) {
    for (; *s; s++) {
        if (b->len + 1 < b->cap)
            b->p[b->len] = *s;
        b->len++;
    }
}

static void sb_bits(sbuf *b, const char *name, int bits) {
    char num[3] = {0};
    if (bits >= 10) {
        num[0] = '1';
        num[1] = (char)('0' + bits - 10);
    } else {
        num[0] = (char)('0' + bits);
    }
    sb_put(b, "; ");
    sb_put(b, name);
    sb_put(b, "=");
    sb_put(b, num);
}

static int sb_finish(sbuf *b, size_t *len) {
    *len = b->len;
    if (b->len + 1 > b->cap) {
        if (b->cap > 0)
            b->p[0] = '\0';
        return DX_ENOSPACE;
    }
    b->p[b->len] = '\0';
    return 0;
}

static int min_int(int a, int b) {
    return a < b ? a : b;
}

int dx_deflate_accept(const dx_deflate_config *cfg, const dx_ext *offers, size_t num_offers,
                      dx_deflate_params *out, size_t *chosen, char *answer, size_t cap,
                      size_t *len) {
    if (!cfg)
        cfg = &default_cfg;
    if (cfg_check(cfg) != 0 || (!answer && cap > 0) || !len)
        return DX_EINVAL;
    for (size_t i = 0; i < num_offers; i++) {
        if (!is_pmd(&offers[i]))
            continue;
        pmd_elem el;
        if (parse_elem(&offers[i], true, &el) != 0)
            continue; /* §7.1: a malformed offer is declined, not fatal */
        bool client_bits_offered = el.bits[1] != 0 || el.client_bits_bare;

        dx_deflate_params p;
        p.server_no_context_takeover = cfg->server_no_context_takeover || el.nct[0];
        p.client_no_context_takeover = cfg->client_no_context_takeover;
        int sbits = cfg->server_max_window_bits ? cfg->server_max_window_bits
                                                : DX_DEFLATE_DEFAULT_WINDOW_BITS;
        if (el.bits[0])
            sbits = min_int(sbits, el.bits[0]);
        int cbits = 15; /* what we tell the client */
        if (client_bits_offered && cfg->client_max_window_bits)
            cbits = cfg->client_max_window_bits;
        /* the client announced its own bound: it may use no more than that */
        int client_uses = el.bits[1] ? min_int(cbits, el.bits[1]) : cbits;
        p.server_max_window_bits = (uint8_t)sbits;
        p.client_max_window_bits = (uint8_t)client_uses;

        sbuf b = {answer, cap, 0};
        sb_put(&b, PMD_NAME);
        if (p.server_no_context_takeover)
            sb_put(&b, "; server_no_context_takeover");
        if (p.client_no_context_takeover)
            sb_put(&b, "; client_no_context_takeover");
        if (sbits < 15 || el.bits[0])
            sb_bits(&b, "server_max_window_bits", sbits);
        if (client_bits_offered && client_uses < 15)
            sb_bits(&b, "client_max_window_bits", client_uses);
        int rc = sb_finish(&b, len);
        if (rc != 0)
            return rc;
        if (out)
            *out = p;
        if (chosen)
            *chosen = i;
        return 0;
    }
    return DX_EDEFLATE_NONE;
}

/* The client's compressor window: the configured one, or the default. */
static int own_client_bits(const dx_deflate_config *cfg) {
    return cfg->client_max_window_bits ? cfg->client_max_window_bits
                                       : DX_DEFLATE_DEFAULT_WINDOW_BITS;
}

int dx_deflate_write_offer(const dx_deflate_config *cfg, char *out, size_t cap, size_t *len) {
    if (!cfg)
        cfg = &default_cfg;
    if (cfg_check(cfg) != 0 || (!out && cap > 0) || !len)
        return DX_EINVAL;
    sbuf b = {out, cap, 0};
    sb_put(&b, PMD_NAME);
    if (cfg->server_no_context_takeover)
        sb_put(&b, "; server_no_context_takeover");
    if (cfg->client_no_context_takeover)
        sb_put(&b, "; client_no_context_takeover");
    if (cfg->server_max_window_bits && cfg->server_max_window_bits < 15)
        sb_bits(&b, "server_max_window_bits", cfg->server_max_window_bits);
    /* Always offered, so that the server may bound our window (§7.1.2.2): with
     * a value only when one was configured, bare otherwise, as browsers and
     * Node's ws offer it. Either way any answer 8..15 is accepted, and our
     * compressor uses the smaller of it and our own (dx_deflate_check_answer). */
    if (cfg->client_max_window_bits)
        sb_bits(&b, "client_max_window_bits", cfg->client_max_window_bits);
    else
        sb_put(&b, "; client_max_window_bits");
    return sb_finish(&b, len);
}

int dx_deflate_check_answer(const dx_deflate_config *cfg, const dx_ext *answer, size_t num_answer,
                            dx_deflate_params *out) {
    if (!cfg)
        cfg = &default_cfg;
    if (cfg_check(cfg) != 0)
        return DX_EINVAL;
    const dx_ext *found = NULL;
    for (size_t i = 0; i < num_answer; i++) {
        if (!is_pmd(&answer[i]))
            continue;
        if (found)
            return DX_EDEFLATE_BAD_ANSWER; /* one offer, so at most one answer */
        found = &answer[i];
    }
    if (!found)
        return DX_EDEFLATE_NONE;
    pmd_elem el;
    if (parse_elem(found, false, &el) != 0)
        return DX_EDEFLATE_BAD_ANSWER;
    int offered_s = cfg->server_max_window_bits && cfg->server_max_window_bits < 15
                        ? cfg->server_max_window_bits
                        : 0;
    if (offered_s && (el.bits[0] == 0 || el.bits[0] > offered_s))
        return DX_EDEFLATE_BAD_ANSWER; /* §7.1.2.1: must accept with <= value */
    if (cfg->server_no_context_takeover && !el.nct[0])
        return DX_EDEFLATE_BAD_ANSWER; /* §7.1.1.1: must accept it */
    /* §7.1.2.2: the answer's client_max_window_bits (absent: 15) bounds our
     * window. Any value 8..15 is acceptable, even above the one we offered:
     * compressing within a smaller window than the server inflates with is
     * always safe, so our compressor takes the smaller of the two. */
    int wire_c = el.bits[1] ? el.bits[1] : 15;
    if (out) {
        out->server_no_context_takeover = el.nct[0];
        out->client_no_context_takeover = el.nct[1] || cfg->client_no_context_takeover;
        out->server_max_window_bits = (uint8_t)(el.bits[0] ? el.bits[0] : 15);
        out->client_max_window_bits = (uint8_t)min_int(own_client_bits(cfg), wire_c);
    }
    return 0;
}

/* ---- the codec ---------------------------------------------------------------- */

struct dx_deflate {
    const dx_allocator *alloc; /* for zlib and this struct */
    size_t memory;             /* bytes zlib holds through zalloc */
    size_t max_message;        /* hard limit on one inflated message */
    int level, mem_level;      /* zlib compression level and memLevel */
    uint8_t own_bits;          /* our compressor's window (8..15), never above
                                  the window the peer inflates with */
    int peer_bits;             /* our inflater's window (8..15) */
    bool own_reset;            /* reset the compressor after each message */
    bool peer_reset;           /* reset the inflater after each message */
    bool z_init;               /* zd is initialised */
    bool i_init;               /* zi is initialised */
    bool failed;               /* a fatal error happened; refuse further calls */
    bool msg_started;          /* zlib has seen part of the current message */
    /* compressor */
    z_stream zd;     /* deflate state */
    uint8_t hold[4]; /* the last bytes produced, held back: they may be
                        the sync-flush tail that §7.2.1 removes */
    size_t hold_len; /* bytes in hold */
    /* inflater */
    z_stream zi;     /* inflate state */
    size_t msg_out;  /* bytes inflated so far in this message */
    bool msg_fed;    /* this message has brought compressed bytes */
    size_t tail_fed; /* bytes of sync_tail consumed at fin */
    bool stream_end; /* the peer ended the stream (BFINAL) in this message */
};

/* zlib's allocations carry their size in front, because dx_allocator's free
 * needs it; the header keeps max_align_t alignment. */
typedef union zhdr {
    size_t size;
    max_align_t align;
} zhdr;

static voidpf z_alloc(voidpf opaque, uInt items, uInt size) {
    dx_deflate *d = opaque;
    size_t n = (size_t)items * size;
    if (size != 0 && n / size != items)
        return Z_NULL;
    if (n > SIZE_MAX - sizeof(zhdr))
        return Z_NULL;
    zhdr *h = dx__alloc(d->alloc, n + sizeof(zhdr));
    if (!h)
        return Z_NULL;
    h->size = n + sizeof(zhdr);
    d->memory += h->size;
    return h + 1;
}

static void z_free(voidpf opaque, voidpf ptr) {
    dx_deflate *d = opaque;
    if (!ptr)
        return;
    zhdr *h = (zhdr *)ptr - 1;
    d->memory -= h->size;
    dx__free(d->alloc, h, h->size);
}

int dx_deflate_create(dx_deflate **out, const dx_deflate_params *params, bool is_server,
                      const dx_deflate_config *cfg, size_t max_message, const dx_allocator *alloc) {
    if (!out || !params)
        return DX_EINVAL;
    if (!cfg)
        cfg = &default_cfg;
    if (cfg_check(cfg) != 0)
        return DX_EINVAL;
    int sb = params->server_max_window_bits, cb = params->client_max_window_bits;
    if (sb < 8 || sb > 15 || cb < 8 || cb > 15)
        return DX_EINVAL;
    alloc = dx__allocator_or_default(alloc);
    dx_deflate *d = dx__calloc(alloc, sizeof *d);
    if (!d)
        return DX_ENOMEM;
    d->alloc = alloc;
    d->max_message = max_message ? max_message : DEFAULT_MAX_MESSAGE;
    d->level = cfg->level ? cfg->level : DX_DEFLATE_DEFAULT_LEVEL;
    d->mem_level = cfg->mem_level ? cfg->mem_level : DX_DEFLATE_DEFAULT_MEM_LEVEL;
    int own = is_server ? sb : cb;
    d->own_bits = (uint8_t)own;
    d->peer_bits = is_server ? cb : sb;
    d->own_reset =
        is_server ? params->server_no_context_takeover : params->client_no_context_takeover;
    d->peer_reset =
        is_server ? params->client_no_context_takeover : params->server_no_context_takeover;
    *out = d;
    return 0;
}

void dx_deflate_destroy(dx_deflate *d) {
    if (!d)
        return;
    if (d->z_init)
        deflateEnd(&d->zd);
    if (d->i_init)
        inflateEnd(&d->zi);
    dx__free(d->alloc, d, sizeof *d);
}

static int fail(dx_deflate *d, int rc) {
    d->failed = true;
    return rc;
}

size_t dx_deflate_memory(const dx_deflate *d) {
    return d ? d->memory : 0;
}

int dx_deflate_window_bits(const dx_deflate *d) {
    return d ? d->own_bits : 0;
}

int dx_deflate_reset_compressor(dx_deflate *d) {
    if (!d || d->failed)
        return DX_EINVAL;
    if (d->msg_started)
        return DX_ESTATE;
    if (d->z_init && !d->own_reset && deflateReset(&d->zd) != Z_OK)
        return fail(d, DX_EINVAL);
    return 0;
}

static int zinit_deflate(dx_deflate *d) {
    d->zd.zalloc = z_alloc;
    d->zd.zfree = z_free;
    d->zd.opaque = d;
    int zbits = d->own_bits < 9 ? 9 : d->own_bits; /* zlib: no raw deflate with 8 (see header) */
    int rc = deflateInit2(&d->zd, d->level, Z_DEFLATED, -zbits, d->mem_level, Z_DEFAULT_STRATEGY);
    if (rc != Z_OK)
        return rc == Z_MEM_ERROR ? DX_ENOMEM : DX_EINVAL;
    d->z_init = true;
    return 0;
}

static int zinit_inflate(dx_deflate *d) {
    d->zi.zalloc = z_alloc;
    d->zi.zfree = z_free;
    d->zi.opaque = d;
    d->zi.next_in = Z_NULL;
    d->zi.avail_in = 0;
    int rc = inflateInit2(&d->zi, -d->peer_bits);
    if (rc != Z_OK)
        return rc == Z_MEM_ERROR ? DX_ENOMEM : DX_EINVAL;
    d->i_init = true;
    return 0;
}

static uInt clamp_uint(size_t n) {
    return n > UINT_MAX ? UINT_MAX : (uInt)n;
}

int dx_deflate_compress(dx_deflate *d, dx_span in, bool fin, uint8_t *out, size_t cap,
                        size_t *consumed, size_t *written) {
    if (!d || !out || !consumed || !written || (!in.ptr && in.len))
        return DX_EINVAL;
    *consumed = 0;
    *written = 0;
    if (d->failed || cap < 16)
        return DX_EINVAL;
    if (fin && in.len == 0 && !d->msg_started) {
        /* An empty message: zlib would emit nothing right after a previous
         * flush, so write the empty stored block's first byte ourselves (§7.2.3.6
         * of the receiver's view: 00 + 00 00 FF FF is an empty stored block). */
        out[0] = 0x00;
        *written = 1;
        return 0;
    }
    if (!d->z_init) {
        int rc = zinit_deflate(d);
        if (rc != 0)
            return fail(d, rc);
    }
    d->msg_started = true;
    /* The held-back bytes go first; zlib writes after them. */
    memcpy(out, d->hold, d->hold_len);
    size_t pos = d->hold_len;
    d->hold_len = 0;
    z_stream *z = &d->zd;
    bool done = false;
    for (;;) {
        size_t left_in = in.len - *consumed;
        z->next_in = left_in ? in.ptr + *consumed : Z_NULL;
        z->avail_in = clamp_uint(left_in);
        z->next_out = out + pos;
        z->avail_out = clamp_uint(cap - pos);
        uInt before_in = z->avail_in, before_out = z->avail_out;
        bool sync = fin && before_in == left_in;
        int rc = deflate(z, sync ? Z_SYNC_FLUSH : Z_NO_FLUSH);
        *consumed += before_in - z->avail_in;
        pos += before_out - z->avail_out;
        if (rc == Z_STREAM_ERROR)
            return fail(d, DX_EINVAL);
        /* Z_BUF_ERROR only means that no progress was possible. */
        if (*consumed == in.len && (!fin || (sync && z->avail_out > 0))) {
            /* with a sync flush, zlib is done once it leaves room unused */
            done = true;
            break;
        }
        if (pos == cap)
            break; /* out is full */
    }
    if (done && fin) {
        /* The output of this message ends with the sync-flush tail: drop it. */
        if (pos < 4 || memcmp(out + pos - 4, sync_tail, 4) != 0)
            return fail(d, DX_EINVAL); /* cannot happen with zlib's sync flush */
        pos -= 4;
        if (d->own_reset && deflateReset(z) != Z_OK)
            return fail(d, DX_EINVAL);
        d->msg_started = false;
        *written = pos;
        return 0;
    }
    /* Hold back the last four bytes: they may be (part of) the tail. */
    size_t keep = pos < 4 ? pos : 4;
    memcpy(d->hold, out + pos - keep, keep);
    d->hold_len = keep;
    *written = pos - keep;
    return done ? 0 : DX_ENOSPACE;
}

/* One inflate step over the current input into out[*pos..lim). */
static int inflate_step(dx_deflate *d, uint8_t *out, size_t lim, size_t *pos) {
    z_stream *z = &d->zi;
    z->next_out = out + *pos;
    z->avail_out = clamp_uint(lim - *pos);
    uInt before = z->avail_out;
    int rc = inflate(z, Z_SYNC_FLUSH);
    size_t got = before - z->avail_out;
    *pos += got;
    d->msg_out += got;
    switch (rc) {
    case Z_OK:
    case Z_BUF_ERROR: /* no progress possible: judged by the caller */
        return 0;
    case Z_STREAM_END:
        d->stream_end = true;
        return 0;
    case Z_MEM_ERROR:
        return fail(d, DX_ENOMEM);
    case Z_NEED_DICT:
    case Z_DATA_ERROR:
        return fail(d, DX_EDEFLATE_DATA);
    default:
        return fail(d, DX_EINVAL);
    }
}

/* At the limit: would the inflater produce one more byte? It gets a one-byte
 * scratch buffer, so nothing past the limit reaches the caller. */
static int probe_past_limit(dx_deflate *d) {
    uint8_t one;
    size_t pos = 0;
    size_t before = d->msg_out;
    int rc = inflate_step(d, &one, 1, &pos);
    d->msg_out = before;
    if (rc != 0)
        return rc;
    return pos > 0 ? fail(d, DX_EDEFLATE_TOO_BIG) : 0;
}

/* Run the inflater over its current input into out[*pos..cap), never past the
 * limit. Returns 0 once all input is taken and all output given (or the stream
 * ended), DX_ENOSPACE when @out is full, or an error. */
static int inflate_input(dx_deflate *d, uint8_t *out, size_t cap, size_t *pos) {
    z_stream *z = &d->zi;
    for (;;) {
        if (d->stream_end) {
            z->avail_in = 0; /* bytes after the final block are ignored */
            return 0;
        }
        size_t left = d->max_message - d->msg_out;
        if (left == 0) {
            uInt in_before = z->avail_in;
            int rc = probe_past_limit(d);
            if (rc != 0)
                return rc;
            if (d->stream_end)
                continue;
            if (z->avail_in == 0 || z->avail_in == in_before)
                return 0; /* exactly at the limit, nothing more to give */
            continue;
        }
        size_t room = cap - *pos;
        if (room == 0)
            return DX_ENOSPACE;
        size_t lim = *pos + (room < left ? room : left);
        int rc = inflate_step(d, out, lim, pos);
        if (rc != 0)
            return rc;
        if (d->stream_end)
            continue;
        if (*pos < lim)
            return 0; /* zlib stopped with room to spare: it wants input */
    }
}

int dx_deflate_inflate(dx_deflate *d, dx_span in, bool fin, uint8_t *out, size_t cap,
                       size_t *consumed, size_t *written) {
    if (!d || !consumed || !written || (!in.ptr && in.len) || (!out && cap))
        return DX_EINVAL;
    *consumed = 0;
    *written = 0;
    if (d->failed)
        return DX_EINVAL;
    if (!d->i_init) {
        int rc = zinit_inflate(d);
        if (rc != 0)
            return fail(d, rc);
    }
    uint8_t dummy;
    if (!out) {
        out = &dummy;
        cap = 0;
    }
    z_stream *z = &d->zi;
    size_t pos = 0;
    if (in.len)
        d->msg_fed = true;
    if (fin && !d->msg_fed) {
        /* A compressed message with no payload at all. Taken literally, §7.2.2
         * would inflate the tail alone, a stored block cut short; every browser
         * and zlib-based peer reads it as an empty message, and so do we. The
         * inflater is not touched: its window gains nothing. */
        return 0;
    }
    /* the message's own bytes (an empty call still drains pending output) */
    if (d->tail_fed == 0) {
        do {
            size_t left_in = in.len - *consumed;
            z->next_in = left_in ? in.ptr + *consumed : Z_NULL;
            z->avail_in = clamp_uint(left_in);
            uInt before = z->avail_in;
            int rc = inflate_input(d, out, cap, &pos);
            *consumed += before - z->avail_in;
            *written = pos;
            if (rc != 0)
                return rc;
            if (z->avail_in != 0 && before == z->avail_in)
                return fail(d, DX_EINVAL); /* no progress: cannot happen */
        } while (*consumed < in.len);
    } else if (in.len) {
        return DX_EINVAL; /* the message already ended: only its tail is left */
    }
    if (!fin)
        return 0;
    /* §7.2.2: append 00 00 FF FF ... */
    if (d->tail_fed < sizeof sync_tail || !d->stream_end) {
        size_t left_in = sizeof sync_tail - d->tail_fed;
        z->next_in = left_in ? sync_tail + d->tail_fed : Z_NULL;
        z->avail_in = (uInt)left_in;
        uInt before = z->avail_in;
        int rc = inflate_input(d, out, cap, &pos);
        d->tail_fed += before - z->avail_in;
        *written = pos;
        if (rc != 0)
            return rc;
    }
    /* ... and check that the message ended on a block boundary with every bit
     * used: a truncated message does not */
    if (!d->stream_end && (!(z->data_type & 128) || (z->data_type & 63) != 0))
        return fail(d, DX_EDEFLATE_DATA);
    /* the message is complete */
    d->msg_out = 0;
    d->tail_fed = 0;
    d->msg_fed = false;
    if (d->stream_end || d->peer_reset) {
        if (inflateReset(z) != Z_OK)
            return fail(d, DX_EINVAL);
        d->stream_end = false;
    }
    return 0;
}
