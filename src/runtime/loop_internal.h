/*
 * The loop's private state, shared by loop.c, timer.c and wakeup.c. Not installed.
 */
#ifndef DX_RUNTIME_LOOP_INTERNAL_H
#define DX_RUNTIME_LOOP_INTERNAL_H

#include "base/internal.h"
#include "duplex/loop.h"
#include "runtime/timer.h"

#include <pthread.h>
#include <sys/epoll.h>

/* Ready events taken from the kernel per epoll_wait; more simply wait a turn. */
#define DX_LOOP_MAX_EVENTS 256

/* Entries the inbox holds before it first grows (each of its two arrays). */
#define DX_LOOP_INBOX_INITIAL 64

typedef struct dx__post {
    void (*fn)(void *arg); /* the posted callback */
    void *arg;             /* its argument */
} dx__post;

/* A growable array of posts; the inbox has two, swapped under the lock. */
typedef struct dx__post_array {
    dx__post *items; /* cap entries, allocated with the loop's allocator */
    size_t count;    /* entries in use */
    size_t cap;      /* entries allocated */
} dx__post_array;

struct dx_loop {
    const dx_allocator *alloc;  /* for the loop and the inbox arrays */
    int epfd;                   /* the epoll instance */
    int wakefd;                 /* eventfd written by dx_loop_wakeup/dx_loop_post */
    uint64_t now;               /* cached CLOCK_MONOTONIC ms (dx_loop_now) */
    uint64_t iter;              /* iterations started (dx_loop_run_once calls) */
    bool stop;                  /* dx_loop_stop() was called */
    bool woken;                 /* the wakeup eventfd fired in this iteration */
    size_t active_ios;          /* started watchers that keep dx_loop_run going */
    dx_io wake_io;              /* the loop's own watcher on wakefd */
    dx__timer_heap timers;      /* started timers */
    dx_hook *hooks_head;        /* before-poll hooks, in start order */
    dx_hook *hooks_tail;        /* last hook, where dx_hook_start appends */
    dx_hook *hook_next;         /* next hook to run while hooks run, else NULL */
    dx_defer *defer_head;       /* deferred calls, in queue order */
    dx_defer *defer_tail;       /* last deferred call */
    int n_ready;                /* events in ready[] being dispatched, or 0 */
    pthread_mutex_t inbox_lock; /* guards inbox_in (the only cross-thread state) */
    dx__post_array inbox_in;    /* posts not yet taken by the loop thread (locked) */
    dx__post_array inbox_run;   /* posts being run by the loop thread (unlocked) */
    struct epoll_event ready[DX_LOOP_MAX_EVENTS]; /* the batch being dispatched */
    size_t refs;                                  /* dx_loop_ref count */
    struct {
        const dx_loop_key *key;
        void *data;
    } data[DX_LOOP_KEYS]; /* what layers keep per loop (dx_loop_set_data), in the
                             order first set */
    size_t n_data;        /* entries of data[] in use */
};

/* Set up the eventfd, its watcher and the inbox on @l (alloc, epfd set). Returns 0,
 * DX_ENOMEM or -errno; on failure nothing is left to undo. */
int dx__wakeup_init(dx_loop *l);

/* Undo dx__wakeup_init, dropping posts not yet run. */
void dx__wakeup_deinit(dx_loop *l);

/* Run the callbacks posted so far, if the wakeup fired this iteration. */
void dx__wakeup_run_posts(dx_loop *l);

#endif /* DX_RUNTIME_LOOP_INTERNAL_H */
