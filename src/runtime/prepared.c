/*
 * Prepared messages: one payload, and its compressed forms, shared by every
 * connection that sends it (conn.h). A broadcast to N connections with
 * permessage-deflate compresses once per compressor window in use, not N times.
 *
 * Sharing across threads: the reference count is atomic; the compressed forms
 * are built at most once each, under the message's lock, and published with a
 * release store so that a sender that sees the pointer sees the bytes.
 */
#include "runtime/prepared.h"

#include "base/internal.h"
#include "duplex/deflate.h"
#include "duplex/utf8.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define MIN_BITS 8
#define NUM_WINDOWS 8 /* window bits 8..15 */

/* The message compressed for one window. */
typedef struct form {
    size_t len;     /* 0 with smaller == false: compression does not pay */
    bool smaller;   /* data holds a compressed payload shorter than the message */
    uint8_t data[]; /* the frame payload (RFC 7692 §7.2.1: tail removed) */
} form;

struct dx_prepared {
    atomic_size_t refs;
    const dx_allocator *alloc;
    pthread_mutex_t lock; /* building a form */
    _Atomic(form *) forms[NUM_WINDOWS];
    dx_deflate_config zcfg; /* level and memLevel of the compressed forms */
    uint8_t opcode;
    bool no_compress;
    size_t len;
    uint8_t data[];
};

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
    dx_prepared *m = dx__alloc(a, sizeof(*m) + data.len);
    if (!m)
        return DX_ENOMEM;
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        dx__free(a, m, sizeof(*m) + data.len);
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
    if (data.len)
        memcpy(m->data, data.ptr, data.len);
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
        if (f)
            dx__free(m->alloc, f, sizeof(*f) + f->len);
    }
    pthread_mutex_destroy(&m->lock);
    dx__free(m->alloc, m, sizeof(*m) + m->len);
}

size_t dx_prepared_size(const dx_prepared *m) {
    return m ? m->len : 0;
}

dx_opcode dx__prepared_opcode(const dx_prepared *m) {
    return (dx_opcode)m->opcode;
}

dx_span dx__prepared_payload(const dx_prepared *m) {
    return (dx_span){m->len ? m->data : NULL, m->len};
}

bool dx__prepared_no_compress(const dx_prepared *m) {
    return m->no_compress;
}

/*
 * Compress the message as a server with no context takeover and window @bits
 * would: a fresh compressor, used once. The output buffer is the message's size:
 * when the compressed form does not fit in it, it does not pay, and the form says
 * so. Returns the form or NULL (out of memory).
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
    if (rc == 0 && wrote < m->len) {
        f = dx__alloc(m->alloc, sizeof(*f) + wrote);
        if (f) {
            f->len = wrote;
            f->smaller = true;
            memcpy(f->data, buf, wrote);
        }
    } else if (rc == 0 || rc == DX_ENOSPACE) {
        f = dx__alloc(m->alloc, sizeof(*f));
        if (f)
            *f = (form){.len = 0, .smaller = false};
    }
    dx__free(m->alloc, buf, cap);
    return f;
}

int dx__prepared_compressed(dx_prepared *m, int window_bits, dx_span *out) {
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
    *out = f->smaller ? (dx_span){f->data, f->len} : (dx_span){NULL, 0};
    return 0;
}
