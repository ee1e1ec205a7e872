/*
 * The epoll loop: fd watchers, run/stop, before-poll hooks and deferred work.
 * Timers are in timer.c, the thread-safe inbox in wakeup.c.
 */
#include "runtime/loop_internal.h"

#include <errno.h>
#include <limits.h>
#include <time.h>
#include <unistd.h>

static uint64_t clock_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* cannot fail for CLOCK_MONOTONIC */
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int dx_loop_create(dx_loop **out, const dx_allocator *a) {
    int rc;
    a = dx__allocator_or_default(a);
    dx_loop *l = dx__calloc(a, sizeof(*l));
    if (!l)
        return DX_ENOMEM;
    l->alloc = a;
    l->wakefd = -1;
    l->now = clock_ms();
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) {
        rc = -errno;
        goto err_free_loop;
    }
    rc = dx__wakeup_init(l);
    if (rc < 0)
        goto err_close_epoll;
    *out = l;
    return 0;

err_close_epoll:
    close(l->epfd);
err_free_loop:
    dx__free(a, l, sizeof(*l));
    return rc;
}

/* Run the deferred calls queued so far; ones they queue wait for the next round. */
static void run_deferred(dx_loop *l) {
    dx_defer *d = l->defer_head;
    l->defer_head = NULL;
    l->defer_tail = NULL;
    while (d) {
        dx_defer *next = d->next; /* read first: the callback usually frees d */
        d->next = NULL;
        d->queued = false;
        d->cb(d, d->user);
        d = next;
    }
}

void dx_loop_destroy(dx_loop *l) {
    if (!l)
        return;
    while (l->defer_head)
        run_deferred(l);
    /* the layers' data, last stored first (a layer may use one stored before it) */
    while (l->n_data > 0) {
        size_t i = --l->n_data;
        if (l->data[i].key->destroy)
            l->data[i].key->destroy(l, l->data[i].data);
    }
    dx__wakeup_deinit(l);
    close(l->epfd);
    dx__free(l->alloc, l, sizeof(*l));
}

static void run_hooks(dx_loop *l) {
    /* hook_next lets a callback stop the hook that would run next */
    dx_hook *h = l->hooks_head;
    while (h) {
        l->hook_next = h->next;
        if (h->iter != l->iter) /* one started by a hook of this pass waits a turn */
            h->cb(l, h, h->user);
        h = l->hook_next;
    }
    l->hook_next = NULL;
}

static int poll_timeout(const dx_loop *l, int timeout_ms) {
    if (l->defer_head || l->stop)
        return 0;
    const dx_timer *t = dx__timer_heap_min(&l->timers);
    if (!t)
        return timeout_ms;
    uint64_t wait = t->deadline > l->now ? t->deadline - l->now : 0;
    if (wait > INT_MAX)
        wait = INT_MAX;
    if (timeout_ms >= 0 && (uint64_t)timeout_ms < wait)
        return timeout_ms;
    return (int)wait;
}

static unsigned epoll_to_dx(uint32_t ev, unsigned want) {
    unsigned got = 0;
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLPRI))
        got |= DX_IO_READ;
    if (ev & EPOLLOUT)
        got |= DX_IO_WRITE;
    if (ev & (EPOLLERR | EPOLLHUP))
        got |= (want & DX_IO_READ) ? DX_IO_READ : DX_IO_WRITE;
    return got & want;
}

static void dispatch_io(dx_loop *l, int n) {
    /* Record each watcher's slot first, so dx_io_stop can clear it in O(1). */
    for (int i = 0; i < n; i++) {
        dx_io *w = l->ready[i].data.ptr;
        w->pending = (unsigned)i + 1;
    }
    l->n_ready = n;
    for (int i = 0; i < n; i++) {
        dx_io *w = l->ready[i].data.ptr;
        if (!w)
            continue; /* stopped by an earlier callback of this batch */
        w->pending = 0;
        unsigned got = epoll_to_dx(l->ready[i].events, w->events);
        if (got)
            w->cb(w, got, w->user); /* may stop or free any watcher, w included */
    }
    l->n_ready = 0;
}

int dx_loop_run_once(dx_loop *l, int timeout_ms) {
    l->iter++;
    l->now = clock_ms();
    run_hooks(l);
    int timeout = poll_timeout(l, timeout_ms);
    int n = epoll_wait(l->epfd, l->ready, DX_LOOP_MAX_EVENTS, timeout);
    int rc = 0;
    if (n < 0) {
        if (errno != EINTR)
            rc = -errno;
        n = 0;
    }
    l->now = clock_ms();
    uint64_t seq_mark = l->timers.next_seq + 1; /* timers started from here on wait */
    dispatch_io(l, n);
    dx__timer_heap_run(&l->timers, l->now, seq_mark);
    dx__wakeup_run_posts(l);
    run_deferred(l);
    return rc;
}

static bool loop_alive(const dx_loop *l) {
    return l->active_ios > 0 || l->timers.count > 0 || l->defer_head != NULL || l->refs > 0;
}

int dx_loop_run(dx_loop *l) {
    int rc = 0;
    while (!l->stop && loop_alive(l)) {
        rc = dx_loop_run_once(l, -1);
        if (rc < 0)
            break;
    }
    l->stop = false;
    return rc;
}

void dx_loop_stop(dx_loop *l) {
    l->stop = true;
}

uint64_t dx_loop_now(const dx_loop *l) {
    return l->now;
}

const dx_allocator *dx_loop_allocator(const dx_loop *l) {
    return l->alloc;
}

/* ---- fd watchers ---------------------------------------------------------- */

static uint32_t dx_to_epoll(unsigned events) {
    uint32_t ev = 0;
    if (events & DX_IO_READ)
        ev |= EPOLLIN | EPOLLRDHUP;
    if (events & DX_IO_WRITE)
        ev |= EPOLLOUT;
    return ev;
}

static bool events_valid(unsigned events) {
    return events != 0 && (events & ~(DX_IO_READ | DX_IO_WRITE)) == 0;
}

void dx_io_init(dx_io *w, int fd, dx_io_cb cb, void *user) {
    memset(w, 0, sizeof(*w));
    w->fd = fd;
    w->cb = cb;
    w->user = user;
}

int dx_io_start(dx_loop *l, dx_io *w, unsigned events) {
    if (!events_valid(events))
        return DX_EINVAL;
    if (w->loop)
        return DX_ESTATE;
    struct epoll_event ev = {.events = dx_to_epoll(events), .data.ptr = w};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, w->fd, &ev) < 0)
        return -errno;
    w->events = events;
    w->loop = l;
    w->pending = 0;
    if (!w->internal)
        l->active_ios++;
    return 0;
}

int dx_io_modify(dx_loop *l, dx_io *w, unsigned events) {
    if (!events_valid(events))
        return DX_EINVAL;
    if (w->loop != l)
        return DX_ESTATE;
    if (events == w->events)
        return 0;
    struct epoll_event ev = {.events = dx_to_epoll(events), .data.ptr = w};
    if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, w->fd, &ev) < 0)
        return -errno;
    w->events = events;
    return 0;
}

/* Drop @w from the loop's bookkeeping (its epoll registration is the caller's). */
static void forget_io(dx_loop *l, dx_io *w) {
    if (w->pending && (int)w->pending <= l->n_ready && l->ready[w->pending - 1].data.ptr == w)
        l->ready[w->pending - 1].data.ptr = NULL; /* collected, not yet delivered */
    w->pending = 0;
    w->events = 0;
    w->loop = NULL;
    if (!w->internal)
        l->active_ios--;
}

void dx_io_stop(dx_loop *l, dx_io *w) {
    if (w->loop != l)
        return;
    /* Errors are ignored: if the caller closed the fd already, the kernel has
     * dropped the registration (unless a dup keeps the file open). */
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, NULL);
    forget_io(l, w);
}

void dx_io_close(dx_loop *l, dx_io *w) {
    if (w->loop == l)
        forget_io(l, w); /* closing the only reference unregisters it: no EPOLL_CTL_DEL */
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
}

bool dx_io_is_active(const dx_io *w) {
    return w->loop != NULL;
}

int dx_io_fd(const dx_io *w) {
    return w->fd;
}

/* ---- before-poll hooks ------------------------------------------------------ */

void dx_hook_init(dx_hook *h, dx_hook_cb cb, void *user) {
    memset(h, 0, sizeof(*h));
    h->cb = cb;
    h->user = user;
}

void dx_hook_start(dx_loop *l, dx_hook *h) {
    if (h->active)
        return;
    h->prev = l->hooks_tail;
    h->next = NULL;
    if (l->hooks_tail)
        l->hooks_tail->next = h;
    else
        l->hooks_head = h;
    l->hooks_tail = h;
    h->iter = l->iter;
    h->active = true;
}

void dx_hook_stop(dx_loop *l, dx_hook *h) {
    if (!h->active)
        return;
    if (l->hook_next == h)
        l->hook_next = h->next;
    if (h->prev)
        h->prev->next = h->next;
    else
        l->hooks_head = h->next;
    if (h->next)
        h->next->prev = h->prev;
    else
        l->hooks_tail = h->prev;
    h->prev = NULL;
    h->next = NULL;
    h->active = false;
}

/* ---- deferred work ----------------------------------------------------------- */

int dx_loop_defer(dx_loop *l, dx_defer *d, dx_defer_cb cb, void *user) {
    if (!cb)
        return DX_EINVAL;
    if (d->queued)
        return DX_ESTATE;
    d->cb = cb;
    d->user = user;
    d->next = NULL;
    d->queued = true;
    if (l->defer_tail)
        l->defer_tail->next = d;
    else
        l->defer_head = d;
    l->defer_tail = d;
    return 0;
}

bool dx_defer_is_queued(const dx_defer *d) {
    return d->queued;
}

/* ---- per-loop data ------------------------------------------------------------- */

void *dx_loop_data(const dx_loop *l, const dx_loop_key *key) {
    for (size_t i = 0; i < l->n_data; i++)
        if (l->data[i].key == key)
            return l->data[i].data;
    return NULL;
}

int dx_loop_set_data(dx_loop *l, const dx_loop_key *key, void *data) {
    size_t i = 0;
    while (i < l->n_data && l->data[i].key != key)
        i++;
    if (i < l->n_data && data) {
        l->data[i].data = data;
    } else if (i < l->n_data) { /* removed: the rest keep their order */
        memmove(&l->data[i], &l->data[i + 1], (l->n_data - i - 1) * sizeof(l->data[0]));
        l->n_data--;
    } else if (data) {
        if (l->n_data == DX_LOOP_KEYS)
            return DX_ELIMIT;
        l->data[l->n_data].key = key;
        l->data[l->n_data].data = data;
        l->n_data++;
    }
    return 0;
}

void dx_loop_ref(dx_loop *l) {
    l->refs++;
}

void dx_loop_unref(dx_loop *l) {
    if (l->refs)
        l->refs--;
}
