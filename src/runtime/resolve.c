/*
 * getaddrinfo off the loop thread. One thread per lookup: lookups are rare (one per
 * client connection attempt) and a pool would only add a queue. The running lookups
 * of a loop are a list kept as the loop's data (dx_loop_set_data); each holds a
 * dx_loop_ref so that dx_loop_run waits for it, and dx_loop_destroy joins them (their
 * post must never reach a freed loop).
 */
#include "runtime/resolve.h"

#include "base/internal.h"
#include "runtime/sock.h"

#include <time.h>

static void join_all(dx_loop *l, void *data);

/* The loop's running lookups, as its data under this key. */
static const dx_loop_key resolves_key = {join_all};

static void unlink_resolve(dx__resolve *r) {
    dx__resolve *head = dx_loop_data(r->loop, &resolves_key);
    dx__resolve **pp = &head;
    while (*pp && *pp != r)
        pp = &(*pp)->next;
    if (*pp)
        *pp = r->next;
    dx_loop_set_data(r->loop, &resolves_key, head); /* removing never fails */
    dx_loop_unref(r->loop);
}

static void free_resolve(dx__resolve *r) {
    const dx_allocator *a = r->alloc;
    if (r->res)
        freeaddrinfo(r->res);
    dx__free(a, r->host, strlen(r->host) + 1);
    dx__free(a, r, sizeof(*r));
}

/* On the loop thread, once the lookup thread has posted. */
static void deliver(void *arg) {
    dx__resolve *r = arg;
    pthread_join(r->thread, NULL); /* it posted as its last act: this is brief */
    unlink_resolve(r);
    if (r->cb) {
        struct addrinfo *res = r->res;
        r->res = NULL;
        r->cb(res, r->err, r->user);
    }
    free_resolve(r);
}

static void *lookup(void *arg) {
    dx__resolve *r = arg;
    r->err = dx__sock_resolve(r->host, r->port, false, &r->res);
    /* The loop cannot be gone: dx_loop_destroy joins us first. The post can only fail
     * for memory; the loop waits for this answer, so try again shortly. */
    while (dx_loop_post(r->loop, deliver, r) != 0)
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    return NULL;
}

int dx__resolve_start(dx_loop *l, const dx_allocator *a, const char *host, uint16_t port,
                      dx__resolve_cb cb, void *user, dx__resolve **out) {
    size_t n = strlen(host) + 1;
    dx__resolve *head = dx_loop_data(l, &resolves_key);
    dx__resolve *r = dx__calloc(a, sizeof(*r));
    char *h = dx__alloc(a, n);
    int rc = DX_ENOMEM;
    if (!r || !h)
        goto fail;
    memcpy(h, host, n);
    r->loop = l;
    r->alloc = a;
    r->host = h;
    r->port = port;
    r->cb = cb;
    r->user = user;
    r->next = head;
    rc = dx_loop_set_data(l, &resolves_key, r); /* before the thread can post */
    if (rc < 0)
        goto fail;
    rc = pthread_create(&r->thread, NULL, lookup, r);
    if (rc != 0) {
        dx_loop_set_data(l, &resolves_key, head);
        rc = -rc;
        goto fail;
    }
    dx_loop_ref(l);
    *out = r;
    return 0;
fail:
    dx__free(a, h, n);
    dx__free(a, r, sizeof(*r));
    return rc;
}

void dx__resolve_cancel(dx__resolve *r) {
    if (r)
        r->cb = NULL;
}

/* dx_loop_destroy: wait for the threads still running and drop their answers. Each
 * posted deliver(r) as its last act; the loop drops posts without running them. */
static void join_all(dx_loop *l, void *data) {
    (void)l;
    dx__resolve *r = data;
    while (r) {
        dx__resolve *next = r->next;
        pthread_join(r->thread, NULL);
        free_resolve(r);
        r = next;
    }
}
