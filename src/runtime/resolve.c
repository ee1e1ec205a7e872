/*
 * getaddrinfo off the loop thread. One thread per lookup: lookups are rare (one per
 * client connection attempt) and a pool would only add a queue. The loop keeps the
 * running lookups in a list so that dx_loop_run waits for them and dx_loop_destroy
 * can join them (their post must never reach a freed loop).
 */
#include "runtime/resolve.h"
#include "runtime/loop_internal.h"

#include <stdio.h>
#include <time.h>

static void unlink_resolve(dx__resolve *r) {
    dx__resolve **pp = &r->loop->resolves;
    while (*pp && *pp != r)
        pp = &(*pp)->next;
    if (*pp)
        *pp = r->next;
}

static void free_resolve(dx__resolve *r) {
    const dx_allocator *a = r->loop->alloc;
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
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV};
    int rc = getaddrinfo(r->host, r->service, &hints, &r->res);
    r->err = rc == 0 ? 0 : rc == EAI_MEMORY ? DX_ENOMEM : DX_ERESOLVE;
    if (rc != 0)
        r->res = NULL;
    /* The loop cannot be gone: dx_loop_destroy joins us first. The post can only fail
     * for memory; the loop waits for this answer, so try again shortly. */
    while (dx_loop_post(r->loop, deliver, r) != 0)
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    return NULL;
}

int dx__resolve_start(dx_loop *l, const char *host, uint16_t port, dx__resolve_cb cb, void *user,
                      dx__resolve **out) {
    size_t n = strlen(host) + 1;
    dx__resolve *r = dx__calloc(l->alloc, sizeof(*r));
    char *h = dx__alloc(l->alloc, n);
    if (!r || !h) {
        dx__free(l->alloc, r, sizeof(*r));
        dx__free(l->alloc, h, n);
        return DX_ENOMEM;
    }
    memcpy(h, host, n);
    r->loop = l;
    r->host = h;
    snprintf(r->service, sizeof r->service, "%u", (unsigned)port);
    r->cb = cb;
    r->user = user;
    int rc = pthread_create(&r->thread, NULL, lookup, r);
    if (rc != 0) {
        dx__free(l->alloc, h, n);
        dx__free(l->alloc, r, sizeof(*r));
        return -rc;
    }
    r->next = l->resolves;
    l->resolves = r;
    *out = r;
    return 0;
}

void dx__resolve_cancel(dx__resolve *r) {
    if (r)
        r->cb = NULL;
}

void dx__resolve_join_all(dx_loop *l) {
    if (!l->resolves)
        return;
    for (dx__resolve *r = l->resolves; r; r = r->next)
        pthread_join(r->thread, NULL);
    l->resolves = NULL;
    /* Each thread posted deliver(r) as its last act; the loop drops posts without
     * running them, so free those answers here (posts are plain data now: no
     * thread is left to touch the inbox). */
    dx__post_array *arrays[2] = {&l->inbox_in, &l->inbox_run};
    for (int a = 0; a < 2; a++)
        for (size_t i = 0; i < arrays[a]->count; i++)
            if (arrays[a]->items[i].fn == deliver) {
                free_resolve(arrays[a]->items[i].arg);
                arrays[a]->items[i].fn = NULL;
            }
}
