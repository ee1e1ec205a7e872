/*
 * permessage-deflate (RFC 7692 §7.2): the per-connection codec on top of zlib's
 * raw DEFLATE streams, the only file that includes <zlib.h>. The parameters it
 * is created with are negotiated in deflate_negotiation.c. See
 * include/duplex/deflate.h.
 */
#include "duplex/deflate.h"

#include "base/internal.h"
#include "proto/deflate_internal.h"

#include <limits.h>
#define ZLIB_CONST
#include <zlib.h>

#define DEFAULT_MAX_MESSAGE ((size_t)1 << 20)

static const uint8_t sync_tail[4] = {0x00, 0x00, 0xff, 0xff};

static const dx_deflate_config default_cfg;

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
    if (dx__deflate_config_check(cfg) != 0)
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
