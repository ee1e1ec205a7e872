/*
 * duplex/loop.h - the event loop: fd watchers, timers, before-poll hooks, deferred
 * work, and the one thread-safe entry point (posting a callback from another thread).
 *
 * One loop per thread. A dx_loop is driven by dx_loop_run() or dx_loop_run_once()
 * on one thread, its loop thread. Every function here must be called on that
 * thread, except dx_loop_post() and dx_loop_wakeup(), which any thread may call.
 *
 * One iteration (dx_loop_run_once) does, in this order:
 *   1. run the before-poll hooks (dx_hook), where streams write their output;
 *   2. wait in epoll_wait until an fd is ready, the earliest timer is due, a
 *      wakeup arrives or the timeout passes (it does not wait when deferred work
 *      is pending);
 *   3. update the cached clock (dx_loop_now) once;
 *   4. call the fd watchers that are ready;
 *   5. call the timers that are due, earliest deadline first; a timer started
 *      during this iteration waits for the next one, even for 0 ms;
 *   6. call the callbacks posted with dx_loop_post, in the order they were posted;
 *   7. call the deferred callbacks (dx_loop_defer) queued before this step; this is
 *      where objects closed during the iteration are freed.
 *
 * Watchers, timers, hooks and deferred entries are embedded in the caller's own
 * objects (intrusive): starting or stopping them never allocates (only
 * dx_io_start can fail, in epoll_ctl). A stopped or never-started one costs the
 * loop nothing.
 *
 * Any callback may stop or start any watcher, timer or hook, including its own and
 * ones that are ready in the same iteration: a watcher stopped by an earlier
 * callback is not called for events the loop had already collected, and its memory
 * is not touched again after dx_io_stop() returns, so it may be freed at once. To
 * free an object whose callback is still on the stack (closing yourself), queue a
 * dx_defer and free it from there.
 */
#ifndef DUPLEX_LOOP_H
#define DUPLEX_LOOP_H

#include "duplex/base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dx_loop dx_loop;

/* ---- the loop -------------------------------------------------------------- */

/*
 * Create a loop: an epoll instance, an eventfd for wakeups, and the inbox for
 * posted callbacks. @a is the allocator for the loop and its inbox (NULL: malloc);
 * it must outlive the loop, and because dx_loop_post() may grow the inbox from a
 * posting thread (under the loop's inbox lock), it must be thread-safe if other
 * threads post. malloc is.
 *
 * On success stores the loop in *@out and returns 0. Otherwise *@out is untouched:
 *   DX_ENOMEM  out of memory
 *   -errno     epoll_create1, eventfd or the inbox lock failed (-EMFILE, ...)
 *
 * The calling thread becomes the loop thread.
 */
DX_API int dx_loop_create(dx_loop **out, const dx_allocator *a);

/*
 * Destroy @l (NULL is a no-op). Runs the deferred callbacks still queued (they
 * usually free memory), then frees callbacks posted but not yet run WITHOUT calling
 * them (the args they carry are the poster's to reclaim), closes the fds and frees
 * the loop. Stop every watcher, timer and hook first: destroy does not touch them,
 * and they must not be used with @l again.
 *
 * Loop thread only, and not from inside a callback of @l. No other thread may post
 * to @l once this has started.
 */
DX_API void dx_loop_destroy(dx_loop *l);

/*
 * Run iterations until dx_loop_stop() is called or nothing is left to wait for: no
 * active fd watcher, no active timer, no deferred work and no dx_loop_ref. (Posts
 * alone do not keep the loop running: a server keeps its listening socket's watcher.) A stop
 * request made before the call makes it return at once; the request is cleared on return.
 *
 * Returns 0, or -errno when epoll_wait fails (never -EINTR: an interrupted wait is
 * an iteration with no ready fds).
 *
 * Loop thread only; not reentrant (do not call from a callback of @l).
 */
DX_API int dx_loop_run(dx_loop *l);

/*
 * Run one iteration (see the top of this file), waiting at most @timeout_ms
 * milliseconds for something to happen (-1: until an fd is ready, the earliest
 * timer is due or a wakeup arrives; 0: do not wait). The wait is shortened to the
 * earliest timer's deadline.
 *
 * Returns 0, or -errno when epoll_wait fails (never -EINTR).
 *
 * Loop thread only; not reentrant. For tests and for embedding in another loop.
 */
DX_API int dx_loop_run_once(dx_loop *l, int timeout_ms);

/*
 * Ask dx_loop_run() to return after the current iteration. Callable from any
 * callback of @l. Loop thread only (from another thread, post a callback that
 * calls this).
 */
DX_API void dx_loop_stop(dx_loop *l);

/*
 * The loop's clock: CLOCK_MONOTONIC in milliseconds, read once per iteration just
 * after the wait (and at creation), so every callback of one iteration sees the
 * same value and timers started there are relative to it. Loop thread only.
 */
DX_API uint64_t dx_loop_now(const dx_loop *l);

/* The allocator @l was created with (what layers on it allocate with by default). */
DX_API const dx_allocator *dx_loop_allocator(const dx_loop *l);

/* ---- fd watchers ------------------------------------------------------------- */

/* Event bits for dx_io_start(), dx_io_modify() and the watcher callback. */
#define DX_IO_READ 1u  /* readable, or EOF, hang-up or error: read() will not block */
#define DX_IO_WRITE 2u /* writable (or error, for a watcher that does not read) */

typedef struct dx_io dx_io;

/*
 * Called when @w's fd is ready. @events holds the ready bits among those @w asks
 * for (never 0). A peer's shutdown, a hang-up or a socket error is reported as
 * DX_IO_READ so that the reader meets EOF or the error in read(); a watcher that
 * asks only for DX_IO_WRITE gets DX_IO_WRITE for them instead.
 */
typedef void (*dx_io_cb)(dx_io *w, unsigned events, void *user);

/* An fd watcher, embedded in the caller's object. Fields are private: set them with
 * dx_io_init() and read them with the functions below. */
struct dx_io {
    dx_io_cb cb;      /* the callback */
    void *user;       /* passed to cb */
    dx_loop *loop;    /* the loop it is started on, or NULL when stopped */
    int fd;           /* the watched fd; the caller owns it */
    unsigned events;  /* DX_IO_* bits asked for; 0 when stopped */
    unsigned pending; /* 1 + index in the loop's ready batch, or 0 */
    bool internal;    /* the loop's own watcher: does not keep dx_loop_run going */
};

/*
 * Prepare @w to watch @fd (which the caller owns and keeps open while @w is
 * started). @cb is called with @user. @w starts stopped. Any thread, but @w must
 * not be started.
 */
DX_API void dx_io_init(dx_io *w, int fd, dx_io_cb cb, void *user);

/*
 * Start watching for @events (DX_IO_READ, DX_IO_WRITE or both) on @l. The fd is
 * registered level-triggered: the callback repeats while the fd stays
 * ready. One watcher per fd per loop.
 *
 * Returns 0, or:
 *   DX_EINVAL  @events is 0 or has unknown bits
 *   DX_ESTATE  @w is already started (use dx_io_modify)
 *   -errno     from epoll_ctl: -EEXIST (another watcher has this fd), -EPERM (a
 *              regular file), -EBADF, -ENOMEM, -ENOSPC
 * A call that fails leaves @w stopped.
 *
 * Loop thread only; callable from any callback.
 */
DX_API int dx_io_start(dx_loop *l, dx_io *w, unsigned events);

/*
 * Change the events @w (started on @l) waits for. Returns 0, or:
 *   DX_EINVAL  @events is 0 or has unknown bits
 *   DX_ESTATE  @w is not started on @l
 *   -errno     from epoll_ctl (@w stays started with its previous events)
 * An event already collected in this iteration is delivered only if still asked for.
 * Loop thread only; callable from any callback.
 */
DX_API int dx_io_modify(dx_loop *l, dx_io *w, unsigned events);

/*
 * Stop @w. Its callback will not be called again, not even for events collected in
 * the current iteration, and the loop keeps no reference to it: @w may be freed as
 * soon as this returns. A stopped watcher is a no-op. Call it before closing the fd.
 * Loop thread only; callable from any callback.
 */
DX_API void dx_io_stop(dx_loop *l, dx_io *w);

/*
 * Stop @w (if started on @l) and close its fd, in one step that saves the
 * EPOLL_CTL_DEL: closing the last reference to a file removes it from epoll. Only
 * for an fd that no other descriptor shares (no dup, no fork in between). @w's fd
 * becomes -1. Loop thread only; callable from any callback.
 */
DX_API void dx_io_close(dx_loop *l, dx_io *w);

/* True when @w is started. Loop thread only. */
DX_API bool dx_io_is_active(const dx_io *w);

/* The fd @w watches (-1 after dx_io_close). */
DX_API int dx_io_fd(const dx_io *w);

/* ---- timers -------------------------------------------------------------------- */

typedef struct dx_timer dx_timer;

/* Called once when @t is due; @t is already stopped, so the callback may restart it
 * (a periodic timer) or free it. */
typedef void (*dx_timer_cb)(dx_timer *t, void *user);

/*
 * A one-shot timer, embedded in the caller's object; the loop keeps its timers in
 * a binary min-heap linked through these fields (no allocation, O(log n) start and
 * stop). A zeroed dx_timer is a valid stopped timer with no callback. Fields are
 * private.
 */
struct dx_timer {
    dx_timer *parent;  /* heap links; NULL when stopped */
    dx_timer *left;    /* smaller-or-equal subtree */
    dx_timer *right;   /* smaller-or-equal subtree */
    uint64_t deadline; /* due when dx_loop_now() >= deadline */
    uint64_t seq;      /* start order: breaks deadline ties, and marks timers
                          started during the current iteration; 0: stopped */
    dx_timer_cb cb;    /* the callback */
    void *user;        /* passed to cb */
};

/* Set @t's callback and @user; @t must not be started. Any thread. */
DX_API void dx_timer_init(dx_timer *t, dx_timer_cb cb, void *user);

/*
 * Start @t on @l so that it is due @after_ms milliseconds after dx_loop_now(). A
 * started timer is restarted with the new deadline. Timers due in the same
 * iteration fire in deadline order, and in start order for equal deadlines. A
 * timer started during an iteration never fires in that same iteration (0 ms means
 * "next iteration"), so a callback that restarts itself cannot starve the loop.
 * The callback never fires before its deadline on the loop's clock.
 * Loop thread only; callable from any callback.
 */
DX_API void dx_timer_start(dx_loop *l, dx_timer *t, uint64_t after_ms);

/* Stop @t (a no-op if stopped). It will not fire; the loop keeps no reference, so
 * it may be freed once this returns. Loop thread only; callable from any callback. */
DX_API void dx_timer_stop(dx_loop *l, dx_timer *t);

/* True while @t is started and has not fired. Loop thread only. */
DX_API bool dx_timer_is_active(const dx_timer *t);

/* ---- before-poll hooks (cork) -------------------------------------------------- */

typedef struct dx_hook dx_hook;

/* Called at the start of every iteration, just before the loop waits. */
typedef void (*dx_hook_cb)(dx_loop *l, dx_hook *h, void *user);

/*
 * A before-poll hook, embedded in the caller's object: the place where the
 * stream layer writes every corked stream with one writev. Fields are private.
 */
struct dx_hook {
    dx_hook *prev; /* the loop's hook list */
    dx_hook *next; /* the loop's hook list */
    dx_hook_cb cb; /* the callback */
    void *user;    /* passed to cb */
    uint64_t iter; /* the loop iteration it was started in */
    bool active;   /* in the list */
};

/* Set @h's callback and @user; @h must not be started. Any thread. */
DX_API void dx_hook_init(dx_hook *h, dx_hook_cb cb, void *user);

/*
 * Start @h on @l: it runs before every wait, after the hooks started before it. A
 * hook started from a hook callback first runs in the next iteration. Starting a
 * started hook is a no-op. Loop thread only.
 */
DX_API void dx_hook_start(dx_loop *l, dx_hook *h);

/* Stop @h (a no-op if stopped); it may be freed once this returns, even from inside
 * a hook callback. Loop thread only. */
DX_API void dx_hook_stop(dx_loop *l, dx_hook *h);

/* ---- deferred work: freeing what was closed during an iteration ---------------- */

typedef struct dx_defer dx_defer;

/* Called at the end of the iteration in which it was queued. */
typedef void (*dx_defer_cb)(dx_defer *d, void *user);

/* A deferred call, embedded in the object it will usually free. Zeroed: not queued.
 * Fields are private. */
struct dx_defer {
    dx_defer *next; /* the loop's deferred list */
    dx_defer_cb cb; /* the callback */
    void *user;     /* passed to cb */
    bool queued;    /* on the list */
};

/*
 * Queue @cb(@d, @user) to run at the end of the current iteration, after every fd,
 * timer and posted callback of it (or, outside dx_loop_run*, at the end of the next
 * iteration; the next wait does not block). This is how an object closed from any
 * callback is freed safely: stop its watchers and timers, mark it closed, queue its
 * dx_defer, and free it in @cb. Callbacks run in queue order; one queued from a
 * deferred callback runs in the next iteration. dx_loop_destroy runs those left.
 *
 * Returns 0, or:
 *   DX_EINVAL  @cb is NULL
 *   DX_ESTATE  @d is already queued (it will run once)
 *
 * Loop thread only; callable from any callback.
 */
DX_API int dx_loop_defer(dx_loop *l, dx_defer *d, dx_defer_cb cb, void *user);

/* True while @d is queued and has not run. Loop thread only. */
DX_API bool dx_defer_is_queued(const dx_defer *d);

/* ---- per-loop data: what a layer keeps for each loop --------------------------- */

/* A key under which a layer (or an application) keeps data of its own on a loop: the
 * stream layer's read buffer and flush list, the resolver's running lookups. Define
 * one static key per kind of data; its address is the key. */
typedef struct dx_loop_key {
    /* Called by dx_loop_destroy for the data still stored under the key, after the
       deferred callbacks have run and before the loop is freed; NULL: nothing to do. */
    void (*destroy)(dx_loop *l, void *data);
} dx_loop_key;

/* Keys a loop holds data for at once. */
#define DX_LOOP_KEYS 8

/* The data stored under @key on @l, or NULL. Loop thread only. */
DX_API void *dx_loop_data(const dx_loop *l, const dx_loop_key *key);

/*
 * Store @data under @key on @l, replacing what was there (without destroying it);
 * NULL removes the key. Returns 0, or DX_ELIMIT when DX_LOOP_KEYS other keys hold
 * data already. Loop thread only.
 */
DX_API int dx_loop_set_data(dx_loop *l, const dx_loop_key *key, void *data);

/*
 * Keep dx_loop_run() going while something the loop cannot see is pending (a name
 * lookup on another thread that will post its answer). Every dx_loop_ref needs one
 * dx_loop_unref. Loop thread only.
 */
DX_API void dx_loop_ref(dx_loop *l);
DX_API void dx_loop_unref(dx_loop *l);

/* ---- the thread-safe entry points ------------------------------------------------ */

/*
 * Queue @fn(@arg) to run on @l's loop thread, and wake the loop. THREAD-SAFE: any
 * thread may call it, including the loop thread (the callback then runs in the
 * current or next iteration, never inside this call). Callbacks posted by one
 * thread run in the order that thread posted them; each runs exactly once, unless
 * the loop is destroyed first, in which case it never runs (and @arg is the
 * poster's to reclaim).
 *
 * Returns 0, or:
 *   DX_EINVAL  @fn is NULL
 *   DX_ENOMEM  the inbox could not grow (allocated with the loop's allocator,
 *              amortized: a loop that keeps up does not allocate)
 *
 * @l must stay alive until this returns; do not post to a loop being destroyed.
 */
DX_API int dx_loop_post(dx_loop *l, void (*fn)(void *arg), void *arg);

/*
 * Wake @l: a blocking wait in dx_loop_run_once() returns and the iteration runs.
 * THREAD-SAFE: any thread may call it. Wakeups coalesce. Never fails.
 */
DX_API void dx_loop_wakeup(dx_loop *l);

#ifdef __cplusplus
}
#endif
#endif /* DUPLEX_LOOP_H */
