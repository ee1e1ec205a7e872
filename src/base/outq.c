/*
 * Shared buffers and the segment output queue (include/duplex/outq.h).
 *
 * The queue keeps its own bytes in one buffer [head, tail), appended in order and
 * consumed in order. While no shared segment is queued that buffer IS the queue (the
 * common case: one span, no segment array). Once a shared segment is appended, an
 * array of segments describes the whole queue in order, own ones by their offset in
 * the buffer; when the shared ones are gone and one own segment is left, the queue
 * falls back to the plain buffer.
 */
#include "duplex/outq.h"

#include "base/internal.h"

#include <stdalign.h>
#include <stdatomic.h>

/* ---- shared buffers ------------------------------------------------------------ */

struct dx_shared {
    atomic_size_t refs;
    size_t size;
    const dx_allocator *alloc;
    alignas(max_align_t) uint8_t bytes[]; /* size bytes */
};

int dx_shared_create(dx_shared **out, size_t size, const dx_allocator *a) {
    a = dx__allocator_or_default(a);
    if (size > SIZE_MAX - sizeof(dx_shared))
        return DX_ENOMEM;
    dx_shared *s = dx__alloc(a, sizeof(dx_shared) + size);
    if (!s)
        return DX_ENOMEM;
    atomic_init(&s->refs, 1);
    s->size = size;
    s->alloc = a;
    *out = s;
    return 0;
}

uint8_t *dx_shared_bytes(dx_shared *s) {
    return s->bytes;
}

dx_span dx_shared_data(const dx_shared *s) {
    return (dx_span){s->bytes, s->size};
}

dx_shared *dx_shared_ref(dx_shared *s) {
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}

void dx_shared_release(dx_shared *s) {
    if (!s)
        return;
    /* acq_rel: the freeing thread sees every write made before other releases */
    if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
        dx__free(s->alloc, s, sizeof(dx_shared) + s->size);
}

/* ---- the queue ---------------------------------------------------------------- */

#define BUF_INITIAL 256 /* room for a close frame and a pong without growing */
#define SEGS_INITIAL 4

typedef struct seg {
    dx_shared *ref; /* NULL: own bytes, at off in the buffer */
    size_t off;     /* where the segment's next byte is: in the buffer, or in ref */
    size_t len;     /* bytes left in it */
} seg;

struct dx__outq_body {
    uint8_t *buf; /* own bytes: [head, tail) of cap */
    size_t cap, head, tail;
    seg *segs;        /* the queue in order, while any shared segment is queued */
    size_t seg_cap;   /* entries allocated */
    size_t seg_first; /* index of the first live entry */
    size_t seg_count; /* live entries; 0: the queue is just [head, tail) */
    size_t len;       /* bytes queued, own and shared */
};

void dx_outq_init(dx_outq *q, const dx_allocator *a) {
    q->body = NULL;
    q->alloc = dx__allocator_or_default(a);
}

static dx__outq_body *body_of(dx_outq *q) {
    if (!q->body)
        q->body = dx__calloc(q->alloc, sizeof(dx__outq_body));
    return q->body;
}

static void release_segs(dx__outq_body *b) {
    for (size_t i = 0; i < b->seg_count; i++)
        dx_shared_release(b->segs[b->seg_first + i].ref);
}

void dx_outq_deinit(dx_outq *q) {
    dx__outq_body *b = q->body;
    if (!b)
        return;
    release_segs(b);
    dx__free(q->alloc, b->segs, b->seg_cap * sizeof(seg));
    dx__free(q->alloc, b->buf, b->cap);
    dx__free(q->alloc, b, sizeof(*b));
    q->body = NULL;
}

/* Move the own bytes to the front of the buffer; own segments follow them. */
static void compact(dx__outq_body *b) {
    size_t shift = b->head;
    if (!shift)
        return;
    memmove(b->buf, b->buf + shift, b->tail - shift);
    b->head = 0;
    b->tail -= shift;
    for (size_t i = 0; i < b->seg_count; i++) {
        seg *s = &b->segs[b->seg_first + i];
        if (!s->ref)
            s->off -= shift;
    }
}

/*
 * Room for @n more own bytes at tail, or NULL. Compacting is preferred when that
 * frees enough room and the pending bytes are at most half the buffer (the copy is
 * then paid for by at least as many appended bytes); otherwise the buffer doubles.
 */
static uint8_t *reserve(const dx_allocator *a, dx__outq_body *b, size_t n) {
    if (b->cap - b->tail >= n)
        return b->buf + b->tail;
    size_t pending = b->tail - b->head;
    if (n > SIZE_MAX / 4 - pending)
        return NULL;
    bool can_compact = b->head > 0 && b->cap - pending >= n;
    if (can_compact && pending <= b->cap / 2) {
        compact(b);
        return b->buf + b->tail;
    }
    size_t cap = b->cap ? b->cap : BUF_INITIAL;
    while (cap - pending < n)
        cap *= 2;
    uint8_t *nb = dx__alloc(a, cap);
    if (!nb) {
        if (!can_compact)
            return NULL;
        compact(b);
        return b->buf + b->tail;
    }
    if (pending)
        memcpy(nb, b->buf + b->head, pending);
    size_t shift = b->head;
    for (size_t i = 0; i < b->seg_count; i++) {
        seg *s = &b->segs[b->seg_first + i];
        if (!s->ref)
            s->off -= shift;
    }
    dx__free(a, b->buf, b->cap);
    b->buf = nb;
    b->cap = cap;
    b->head = 0;
    b->tail = pending;
    return b->buf + b->tail;
}

uint8_t *dx_outq_reserve(dx_outq *q, size_t n) {
    dx__outq_body *b = body_of(q);
    return b ? reserve(q->alloc, b, n) : NULL;
}

/* Room for @extra more entries after the live ones. Returns 0 or DX_ENOMEM. */
static int seg_room(const dx_allocator *a, dx__outq_body *b, size_t extra) {
    if (b->seg_first + b->seg_count + extra <= b->seg_cap)
        return 0;
    if (b->seg_count + extra <= b->seg_cap) {
        memmove(b->segs, b->segs + b->seg_first, b->seg_count * sizeof(seg));
        b->seg_first = 0;
        return 0;
    }
    size_t cap = b->seg_cap ? b->seg_cap : SEGS_INITIAL;
    while (cap < b->seg_count + extra)
        cap *= 2;
    seg *ns = dx__alloc(a, cap * sizeof(seg));
    if (!ns)
        return DX_ENOMEM;
    if (b->seg_count)
        memcpy(ns, b->segs + b->seg_first, b->seg_count * sizeof(seg));
    dx__free(a, b->segs, b->seg_cap * sizeof(seg));
    b->segs = ns;
    b->seg_cap = cap;
    b->seg_first = 0;
    return 0;
}

void dx_outq_commit(dx_outq *q, size_t n) {
    dx__outq_body *b = q->body;
    if (!b || !n)
        return;
    if (b->seg_count) {
        seg *last = &b->segs[b->seg_first + b->seg_count - 1];
        if (!last->ref && last->off + last->len == b->tail) {
            last->len += n;
        } else {
            /* the spare entry dx_outq_append_shared keeps after a shared one */
            seg *s = &b->segs[b->seg_first + b->seg_count++];
            *s = (seg){NULL, b->tail, n};
        }
    }
    b->tail += n;
    b->len += n;
}

int dx_outq_append(dx_outq *q, dx_span data) {
    if (!data.len)
        return 0;
    uint8_t *p = dx_outq_reserve(q, data.len);
    if (!p)
        return DX_ENOMEM;
    memcpy(p, data.ptr, data.len);
    dx_outq_commit(q, data.len);
    return 0;
}

int dx_outq_append_shared(dx_outq *q, dx_shared *s, size_t off, size_t len) {
    if (!s || off > s->size || len > s->size - off)
        return DX_EINVAL;
    if (!len)
        return 0;
    dx__outq_body *b = body_of(q);
    if (!b)
        return DX_ENOMEM;
    /* the own bytes so far (when this is the first shared segment), this one, and a
     * spare for the own segment a later dx_outq_commit may start: commit cannot fail */
    bool own = b->seg_count == 0 && b->tail > b->head;
    if (seg_room(q->alloc, b, (size_t)own + 2) != 0)
        return DX_ENOMEM;
    if (own)
        b->segs[b->seg_first + b->seg_count++] = (seg){NULL, b->head, b->tail - b->head};
    b->segs[b->seg_first + b->seg_count++] = (seg){dx_shared_ref(s), off, len};
    b->len += len;
    return 0;
}

size_t dx_outq_len(const dx_outq *q) {
    return q->body ? q->body->len : 0;
}

size_t dx_outq_shared_count(const dx_outq *q) {
    const dx__outq_body *b = q->body;
    size_t n = 0;
    for (size_t i = 0; b && i < b->seg_count; i++)
        n += b->segs[b->seg_first + i].ref != NULL;
    return n;
}

static dx_span seg_span(const dx__outq_body *b, const seg *s) {
    return (dx_span){s->ref ? s->ref->bytes + s->off : b->buf + s->off, s->len};
}

size_t dx_outq_spans(const dx_outq *q, dx_span *v, size_t max) {
    const dx__outq_body *b = q->body;
    if (!b || !b->len || !max)
        return 0;
    if (!b->seg_count) {
        v[0] = (dx_span){b->buf + b->head, b->tail - b->head};
        return 1;
    }
    size_t n = b->seg_count < max ? b->seg_count : max;
    for (size_t i = 0; i < n; i++)
        v[i] = seg_span(b, &b->segs[b->seg_first + i]);
    return n;
}

dx_span dx_outq_front(const dx_outq *q) {
    dx_span v = {0};
    dx_outq_spans(q, &v, 1);
    return v;
}

void dx_outq_consume(dx_outq *q, size_t n) {
    dx__outq_body *b = q->body;
    if (!b)
        return;
    if (n > b->len)
        n = b->len;
    b->len -= n;
    while (n && b->seg_count) {
        seg *s = &b->segs[b->seg_first];
        size_t k = n < s->len ? n : s->len;
        if (!s->ref)
            b->head += k; /* own bytes go out in the order they came in */
        s->off += k;
        s->len -= k;
        n -= k;
        if (s->len)
            break;
        dx_shared_release(s->ref);
        b->seg_first++;
        b->seg_count--;
    }
    if (b->seg_count == 0)
        b->seg_first = 0;
    else if (b->seg_count == 1 && !b->segs[b->seg_first].ref)
        b->seg_count = b->seg_first = 0; /* just own bytes again: [head, tail) */
    b->head += n;                        /* what is left of n is own bytes, with no segment array */
    if (b->head == b->tail)
        b->head = b->tail = 0;
}

void dx_outq_trim(dx_outq *q) {
    if (q->body && !q->body->len)
        dx_outq_deinit(q);
}

size_t dx_outq_memory(const dx_outq *q) {
    const dx__outq_body *b = q->body;
    return b ? sizeof(*b) + b->cap + b->seg_cap * sizeof(seg) : 0;
}
