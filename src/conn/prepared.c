/*
 * Prepared messages: one message framed once (and compressed once per compressor
 * window in use), shared by every connection that sends it (conn.h). Each form is a
 * whole server frame, header included, in a dx_shared (outq.h): a server connection
 * queues a reference to it, not a copy, so a broadcast to N connections holds its
 * payload once in user space whatever their read speed. A client connection masks,
 * so it copies the payload into its own frame.
 *
 * Sharing across threads: the reference counts are atomic; the compressed forms are
 * built at most once each, under the message's lock, and published with a release
 * store so that a sender that sees the pointer sees the bytes.
 */
#include "conn/prepared.h"

#include "base/internal.h"
#include "duplex/deflate.h"
#include "duplex/utf8.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define MIN_BITS 8
#define NUM_WINDOWS 8 /* window bits 8..15 */

/* The message compressed for one window: its frame (RSV1), or NULL when compressing
 * does not make the message smaller. */
typedef struct form {
    dx_shared *frame;
} form;

struct dx_prepared {
    atomic_size_t refs;
    const dx_allocator *alloc;
    pthread_mutex_t lock; /* building a form */
    _Atomic(form *) forms[NUM_WINDOWS];
    dx_deflate_config zcfg; /* level and memLevel of the compressed forms */
    uint8_t opcode;
    bool no_compress;
    size_t len;       /* the payload's */
    size_t hdr_len;   /* the plain frame's header */
    dx_shared *plain; /* the uncompressed frame: header, then the payload */
};

/* A whole unmasked frame of @payload (header included) in a new shared buffer. */
static dx_shared *frame_of(const dx_allocator *a, dx_opcode opcode, uint8_t rsv, dx_span payload,
                           size_t *hdr_len) {
    dx_frame_header h = {
        .fin = true, .rsv = rsv, .opcode = (uint8_t)opcode, .payload_len = payload.len};
    uint8_t hdr[DX_MAX_HEADER_LEN];
    size_t hl = dx_frame_header_encode(hdr, &h);
    dx_shared *f;
    if (dx_shared_create(&f, hl + payload.len, a) != 0)
        return NULL;
    memcpy(dx_shared_bytes(f), hdr, hl);
    if (payload.len)
        memcpy(dx_shared_bytes(f) + hl, payload.ptr, payload.len);
    if (hdr_len)
        *hdr_len = hl;
    return f;
}

#define ONE_SHOT_MEM_LEVEL 8 /* the compressor lives for one message: spend memory on the ratio */

int dx_prepared_create(dx_prepared **out, dx_opcode opcode, dx_span data,
                       const dx_prepared_options *opts) {
    static const dx_prepared_options defaults;
    if (!opts)
        opts = &defaults;
    if (!out || (opcode != DX_OP_TEXT && opcode != DX_OP_BINARY) || (!data.ptr && data.len) ||
        opts->level > 9 || opts->mem_level > 9 || data.len > SIZE_MAX - sizeof(dx_prepared))
        return DX_EINVAL;
    if (opcode == DX_OP_TEXT && !dx_utf8_valid(data.ptr, data.len))
        return DX_ENOT_UTF8;
    const dx_allocator *a = dx__allocator_or_default(opts->allocator);
    dx_prepared *m = dx__calloc(a, sizeof(*m));
    if (!m)
        return DX_ENOMEM;
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        dx__free(a, m, sizeof(*m));
        return DX_ENOMEM;
    }
    m->plain = frame_of(a, opcode, 0, data, &m->hdr_len);
    if (!m->plain) {
        pthread_mutex_destroy(&m->lock);
        dx__free(a, m, sizeof(*m));
        return DX_ENOMEM;
    }
    atomic_init(&m->refs, 1);
    for (size_t i = 0; i < NUM_WINDOWS; i++)
        atomic_init(&m->forms[i], NULL);
    m->alloc = a;
    m->zcfg = (dx_deflate_config){
        .level = opts->level, .mem_level = opts->mem_level ? opts->mem_level : ONE_SHOT_MEM_LEVEL};
    m->opcode = (uint8_t)opcode;
    m->no_compress = (opts->flags & DX_SEND_NO_COMPRESS) != 0;
    m->len = data.len;
    *out = m;
    return 0;
}

dx_prepared *dx_prepared_ref(dx_prepared *m) {
    if (m)
        atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
    return m;
}

void dx_prepared_release(dx_prepared *m) {
    if (!m || atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < NUM_WINDOWS; i++) {
        form *f = atomic_load_explicit(&m->forms[i], memory_order_relaxed);
        if (f) {
            dx_shared_release(f->frame); /* queues may hold it longer */
            dx__free(m->alloc, f, sizeof(*f));
        }
    }
    dx_shared_release(m->plain);
    pthread_mutex_destroy(&m->lock);
    dx__free(m->alloc, m, sizeof(*m));
}

size_t dx_prepared_size(const dx_prepared *m) {
    return m ? m->len : 0;
}

dx_opcode dx__prepared_opcode(const dx_prepared *m) {
    return (dx_opcode)m->opcode;
}

dx_span dx__prepared_payload(const dx_prepared *m) {
    dx_span f = dx_shared_data(m->plain);
    return (dx_span){m->len ? f.ptr + m->hdr_len : NULL, m->len};
}

dx_shared *dx__prepared_frame(const dx_prepared *m) {
    return m->plain;
}

bool dx__prepared_no_compress(const dx_prepared *m) {
    return m->no_compress;
}

/*
 * Compress the message as a server with no context takeover and window @bits would:
 * a fresh compressor, used once. The output buffer is the message's size: when the
 * compressed form does not fit in it, it does not pay, and the form says so (no
 * frame). Returns the form or NULL (out of memory).
 */
static form *build_form(const dx_prepared *m, int bits) {
    dx_deflate_params params = {.server_no_context_takeover = true,
                                .server_max_window_bits = (uint8_t)bits,
                                .client_max_window_bits = 15};
    dx_deflate *z;
    if (dx_deflate_create(&z, &params, true, &m->zcfg, 0, m->alloc) != 0)
        return NULL;
    size_t cap = m->len < 16 ? 16 : m->len; /* the codec needs 16 bytes of room */
    uint8_t *buf = dx__alloc(m->alloc, cap);
    size_t used = 0, wrote = 0;
    int rc = buf ? dx_deflate_compress(z, dx__prepared_payload(m), true, buf, cap, &used, &wrote)
                 : DX_ENOMEM;
    dx_deflate_destroy(z);
    form *f = NULL;
    if (rc == 0 || rc == DX_ENOSPACE) {
        f = dx__alloc(m->alloc, sizeof(*f));
        if (f) {
            f->frame = NULL;
            bool smaller = rc == 0 && wrote < m->len;
            if (smaller && !(f->frame = frame_of(m->alloc, (dx_opcode)m->opcode, DX_RSV1,
                                                 (dx_span){buf, wrote}, NULL))) {
                dx__free(m->alloc, f, sizeof(*f));
                f = NULL;
            }
        }
    }
    dx__free(m->alloc, buf, cap);
    return f;
}

int dx__prepared_compressed(dx_prepared *m, int window_bits, dx_shared **frame, size_t *hdr_len) {
    if (window_bits < MIN_BITS || window_bits >= MIN_BITS + NUM_WINDOWS)
        return DX_EINVAL;
    _Atomic(form *) *slot = &m->forms[window_bits - MIN_BITS];
    form *f = atomic_load_explicit(slot, memory_order_acquire);
    if (!f) {
        pthread_mutex_lock(&m->lock);
        f = atomic_load_explicit(slot, memory_order_relaxed);
        if (!f) {
            f = build_form(m, window_bits);
            if (f)
                atomic_store_explicit(slot, f, memory_order_release);
        }
        pthread_mutex_unlock(&m->lock);
        if (!f)
            return DX_ENOMEM;
    }
    *frame = f->frame;
    if (f->frame && hdr_len) {
        dx_frame_header h;
        size_t hl = 0;
        dx_span b = dx_shared_data(f->frame);
        dx_frame_header_decode(b.ptr, b.len, &h, &hl);
        *hdr_len = hl;
    }
    return 0;
}
