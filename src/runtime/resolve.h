/*
 * Name resolution that does not block the loop: getaddrinfo on a short-lived thread
 * of its own, the answer posted back to the loop thread. Not installed.
 */
#ifndef DX_RUNTIME_RESOLVE_H
#define DX_RUNTIME_RESOLVE_H

#include "duplex/loop.h"

#include <netdb.h>
#include <pthread.h>

typedef struct dx__resolve dx__resolve;

/* Called on the loop thread with the addresses (owned by the callee: freeaddrinfo),
 * or NULL and DX_ERESOLVE / DX_ENOMEM. */
typedef void (*dx__resolve_cb)(struct addrinfo *res, int err, void *user);

struct dx__resolve {
    dx_loop *loop;
    const dx_allocator *alloc;
    dx__resolve *next; /* the loop's list of running resolutions */
    pthread_t thread;
    char *host;
    uint16_t port;
    struct addrinfo *res; /* the answer */
    int err;
    dx__resolve_cb cb; /* NULL once cancelled */
    void *user;
};

/*
 * Resolve @host (a name or literal) for TCP to @port. @cb runs later on the loop
 * thread, never during this call; until then the loop keeps running (dx_loop_ref).
 * Memory from @a. Returns the handle (for dx__resolve_cancel) and 0, or DX_ENOMEM,
 * DX_ELIMIT (the loop's data slots are full) or -errno (thread creation) with
 * nothing started.
 */
int dx__resolve_start(dx_loop *l, const dx_allocator *a, const char *host, uint16_t port,
                      dx__resolve_cb cb, void *user, dx__resolve **out);

/* Do not call the callback; the thread finishes and its answer is dropped. */
void dx__resolve_cancel(dx__resolve *r);

#endif /* DX_RUNTIME_RESOLVE_H */
