/*
 * The one cross-thread path into a loop: an eventfd that wakes epoll_wait, and an
 * inbox of posted callbacks behind a mutex. Posters append to inbox_in under the
 * lock; the loop thread swaps inbox_in with inbox_run under the lock and runs
 * inbox_run unlocked, so a callback may post again without deadlock and a slow
 * callback never blocks a poster. The eventfd is written only when a post finds
 * the inbox empty: the loop drains the eventfd before it swaps, so a non-empty
 * inbox always has a wakeup on its way.
 */
#include "runtime/loop_internal.h"

#include <errno.h>
#include <sys/eventfd.h>
#include <unistd.h>

static void wake_cb(dx_io *w, unsigned events, void *user) {
    dx_loop *l = user;
    uint64_t v;
    (void)w;
    (void)events;
    /* One read resets the counter; EAGAIN means another read got it first. */
    while (read(l->wakefd, &v, sizeof(v)) < 0 && errno == EINTR) {
    }
    l->woken = true;
}

static int array_init(dx_loop *l, dx__post_array *a) {
    a->items = dx__alloc(l->alloc, DX_LOOP_INBOX_INITIAL * sizeof(dx__post));
    if (!a->items)
        return DX_ENOMEM;
    a->count = 0;
    a->cap = DX_LOOP_INBOX_INITIAL;
    return 0;
}

static void array_free(dx_loop *l, dx__post_array *a) {
    dx__free(l->alloc, a->items, a->cap * sizeof(dx__post));
    a->items = NULL;
    a->count = 0;
    a->cap = 0;
}

int dx__wakeup_init(dx_loop *l) {
    int rc;
    l->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (l->wakefd < 0)
        return -errno;
    rc = pthread_mutex_init(&l->inbox_lock, NULL);
    if (rc != 0) {
        rc = -rc;
        goto err_close_wakefd;
    }
    rc = array_init(l, &l->inbox_in);
    if (rc < 0)
        goto err_destroy_lock;
    rc = array_init(l, &l->inbox_run);
    if (rc < 0)
        goto err_free_in;
    dx_io_init(&l->wake_io, l->wakefd, wake_cb, l);
    l->wake_io.internal = true; /* posts alone do not keep dx_loop_run going */
    rc = dx_io_start(l, &l->wake_io, DX_IO_READ);
    if (rc < 0)
        goto err_free_run;
    return 0;

err_free_run:
    array_free(l, &l->inbox_run);
err_free_in:
    array_free(l, &l->inbox_in);
err_destroy_lock:
    pthread_mutex_destroy(&l->inbox_lock);
err_close_wakefd:
    close(l->wakefd);
    l->wakefd = -1;
    return rc;
}

void dx__wakeup_deinit(dx_loop *l) {
    dx_io_stop(l, &l->wake_io);
    /* Posts not yet run are dropped, not called: the loop is going away. */
    array_free(l, &l->inbox_run);
    array_free(l, &l->inbox_in);
    pthread_mutex_destroy(&l->inbox_lock);
    close(l->wakefd);
    l->wakefd = -1;
}

void dx__wakeup_run_posts(dx_loop *l) {
    if (!l->woken)
        return;
    l->woken = false;
    pthread_mutex_lock(&l->inbox_lock);
    dx__post_array taken = l->inbox_in;
    l->inbox_in = l->inbox_run; /* empty: count was reset after the last run */
    l->inbox_run = taken;
    pthread_mutex_unlock(&l->inbox_lock);
    for (size_t i = 0; i < l->inbox_run.count; i++)
        l->inbox_run.items[i].fn(l->inbox_run.items[i].arg);
    l->inbox_run.count = 0;
}

void dx_loop_wakeup(dx_loop *l) {
    uint64_t one = 1;
    /* EAGAIN: the counter is saturated, so a wakeup is pending anyway. */
    while (write(l->wakefd, &one, sizeof(one)) < 0 && errno == EINTR) {
    }
}

int dx_loop_post(dx_loop *l, void (*fn)(void *arg), void *arg) {
    if (!fn)
        return DX_EINVAL;
    pthread_mutex_lock(&l->inbox_lock);
    dx__post_array *in = &l->inbox_in;
    if (in->count == in->cap) {
        size_t cap = in->cap ? in->cap * 2 : DX_LOOP_INBOX_INITIAL;
        dx__post *items =
            cap > SIZE_MAX / sizeof(dx__post) ? NULL : dx__alloc(l->alloc, cap * sizeof(dx__post));
        if (!items) {
            pthread_mutex_unlock(&l->inbox_lock);
            return DX_ENOMEM;
        }
        if (in->count)
            memcpy(items, in->items, in->count * sizeof(dx__post));
        dx__free(l->alloc, in->items, in->cap * sizeof(dx__post));
        in->items = items;
        in->cap = cap;
    }
    bool was_empty = in->count == 0;
    in->items[in->count].fn = fn;
    in->items[in->count].arg = arg;
    in->count++;
    pthread_mutex_unlock(&l->inbox_lock);
    if (was_empty)
        dx_loop_wakeup(l);
    return 0;
}
