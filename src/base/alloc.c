/* The default allocator: the C library's malloc and free. */
#include "duplex/base.h"

#include <stdlib.h>

static void *libc_alloc(size_t size, void *ctx) {
    (void)ctx;
    return malloc(size);
}

static void libc_free(void *ptr, size_t size, void *ctx) {
    (void)size;
    (void)ctx;
    free(ptr);
}

static const dx_allocator libc_allocator = {libc_alloc, libc_free, NULL};

const dx_allocator *dx_allocator_default(void) {
    return &libc_allocator;
}
