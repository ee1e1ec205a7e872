/*
 * The loop's timer heap: a binary min-heap linked through the dx_timer structs
 * themselves (parent/left/right), so no timer ever allocates. Ordered by
 * (deadline, seq). Not installed.
 */
#ifndef DX_RUNTIME_TIMER_H
#define DX_RUNTIME_TIMER_H

#include "duplex/loop.h"

typedef struct dx__timer_heap {
    dx_timer *root;    /* earliest timer, or NULL */
    size_t count;      /* timers in the heap */
    uint64_t next_seq; /* seq given to the next started timer */
} dx__timer_heap;

/* The earliest timer, or NULL. */
static inline dx_timer *dx__timer_heap_min(const dx__timer_heap *h) {
    return h->root;
}

/* Add @t (not in the heap) with its deadline and seq already set. O(log n). */
void dx__timer_heap_insert(dx__timer_heap *h, dx_timer *t);

/* Remove @t, which must be in @h. O(log n). */
void dx__timer_heap_remove(dx__timer_heap *h, dx_timer *t);

/*
 * Call every timer due at @now (deadline <= now) whose seq is below @seq_mark (it
 * was started before this iteration's dispatch began), earliest first. Each is
 * removed before its callback runs.
 */
void dx__timer_heap_run(dx__timer_heap *h, uint64_t now, uint64_t seq_mark);

#endif /* DX_RUNTIME_TIMER_H */
