/*
 * duplex/outq.h - output as a queue of segments: bytes of one's own, and references
 * to shared, reference-counted buffers. Sans-I/O data structures; nothing here knows
 * sockets.
 *
 * A dx_shared is an immutable byte buffer that many queues may hold at once: a
 * message framed once and sent to 10,000 connections is one dx_shared, and each
 * connection's queue holds a reference to it (a few bytes), not a copy.
 *
 * A dx_outq is what one connection has left to write, in order:
 *
 *   [own bytes][shared frame A][own bytes][shared frame B]...
 *
 * Own bytes (frame headers, small payloads, HTTP heads, masked client frames) are
 * copied into one growable buffer; shared segments point into a dx_shared and hold a
 * reference until they are consumed. The writer asks for the first spans
 * (dx_outq_spans), hands them to writev or a TLS engine, and consumes what was
 * written. A queue holding only own bytes is one contiguous span, as a plain buffer
 * would be; a queue with nothing in it holds no memory after dx_outq_trim.
 *
 * Threads: a dx_outq is used from one thread at a time. dx_shared_ref and
 * dx_shared_release are thread-safe (an atomic count); the bytes must not change once
 * a second reference exists.
 */
#ifndef DUPLEX_OUTQ_H
#define DUPLEX_OUTQ_H

#include "duplex/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- shared buffers ------------------------------------------------------------ */

typedef struct dx_shared dx_shared;

/*
 * Create a shared buffer of @size bytes (uninitialised; fill them through
 * dx_shared_bytes before anyone else holds a reference) with one reference, its
 * memory from @a (NULL: malloc; it must outlive the buffer and be thread-safe when
 * references are released on other threads).
 *
 * Returns 0 with *@out set, or DX_ENOMEM (*@out untouched).
 */
DX_API int dx_shared_create(dx_shared **out, size_t size, const dx_allocator *a);

/* The bytes, to fill after dx_shared_create. */
DX_API uint8_t *dx_shared_bytes(dx_shared *s);

/* The bytes as a read-only span (@s's whole size). */
DX_API dx_span dx_shared_data(const dx_shared *s);

/* Take another reference. Returns @s. Any thread. */
DX_API dx_shared *dx_shared_ref(dx_shared *s);

/* Drop a reference; the last one frees @s. NULL is a no-op. Any thread. */
DX_API void dx_shared_release(dx_shared *s);

/* ---- the queue ---------------------------------------------------------------- */

typedef struct dx__outq_body dx__outq_body;

/* An output queue. Embed it and dx_outq_init it; the fields are private. It holds no
 * memory while empty and trimmed. */
typedef struct dx_outq {
    dx__outq_body *body;       /* NULL while nothing was ever queued, or after trim */
    const dx_allocator *alloc; /* for the body, its buffer and its segment array */
} dx_outq;

/* Prepare @q (empty), its memory from @a (NULL: malloc). */
DX_API void dx_outq_init(dx_outq *q, const dx_allocator *a);

/* Free everything @q holds, releasing the references of its shared segments. @q is
 * then empty and may be used again. */
DX_API void dx_outq_deinit(dx_outq *q);

/* Append a copy of @data. Returns 0 or DX_ENOMEM (nothing appended). */
DX_API int dx_outq_append(dx_outq *q, dx_span data);

/*
 * Room for @n own bytes at the end of @q, to be written in place (a frame header and
 * a masked payload, say) and then appended with dx_outq_commit(@q, @n) before any
 * other call on @q. Returns the room, or NULL when out of memory.
 */
DX_API uint8_t *dx_outq_reserve(dx_outq *q, size_t n);
DX_API void dx_outq_commit(dx_outq *q, size_t n);

/*
 * Append [@off, @off + @len) of @s, taking a reference of its own (released when
 * those bytes are consumed or the queue is deinitialised): the caller keeps its own.
 * Returns 0, DX_EINVAL (the range is outside @s) or DX_ENOMEM (nothing appended).
 */
DX_API int dx_outq_append_shared(dx_outq *q, dx_shared *s, size_t off, size_t len);

/* Bytes queued, own and shared. */
DX_API size_t dx_outq_len(const dx_outq *q);

/*
 * Fill @v with up to @max spans covering the first bytes of @q, in order (a writev's
 * iovecs). Returns how many were filled (0 when @q is empty). The spans stay valid
 * until the next call that appends to or consumes @q.
 */
DX_API size_t dx_outq_spans(const dx_outq *q, dx_span *v, size_t max);

/* The first contiguous span (what dx_outq_spans(q, v, 1) gives). */
DX_API dx_span dx_outq_front(const dx_outq *q);

/* Drop the first @n bytes (clamped to the length): they were written. Shared
 * segments consumed in full are released. */
DX_API void dx_outq_consume(dx_outq *q, size_t n);

/* Free what an empty @q still holds (its buffers, kept for reuse between writes).
 * Does nothing while bytes are queued. */
DX_API void dx_outq_trim(dx_outq *q);

/* Bytes of memory @q holds itself: its buffers, not the shared bytes it refers to. */
DX_API size_t dx_outq_memory(const dx_outq *q);

/* Shared segments queued (each holds a reference). */
DX_API size_t dx_outq_shared_count(const dx_outq *q);

#ifdef __cplusplus
}
#endif
#endif /* DUPLEX_OUTQ_H */
