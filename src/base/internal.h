/*
 * Internal helpers shared by every layer: allocation through the configured
 * allocator, byte-order loads and stores, small macros. Not installed.
 */
#ifndef DX_BASE_INTERNAL_H
#define DX_BASE_INTERNAL_H

#include "duplex/base.h"

#include <string.h>

#define DX_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#if defined(__GNUC__)
#define DX_LIKELY(x) __builtin_expect(!!(x), 1)
#define DX_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define DX_LIKELY(x) (x)
#define DX_UNLIKELY(x) (x)
#endif

/* The allocator to use when a config gives NULL. */
static inline const dx_allocator *dx__allocator_or_default(const dx_allocator *a) {
    return a ? a : dx_allocator_default();
}

static inline void *dx__alloc(const dx_allocator *a, size_t size) {
    return a->alloc(size ? size : 1, a->ctx);
}

static inline void *dx__calloc(const dx_allocator *a, size_t size) {
    void *p = dx__alloc(a, size);
    if (p)
        memset(p, 0, size ? size : 1);
    return p;
}

static inline void dx__free(const dx_allocator *a, void *p, size_t size) {
    if (p)
        a->free(p, size ? size : 1, a->ctx);
}

static inline uint16_t dx__load_be16(const uint8_t *p) {
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static inline uint64_t dx__load_be64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static inline void dx__store_be16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void dx__store_be64(uint8_t *p, uint64_t v) {
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static inline bool dx__is_tchar(uint8_t c) {
    /* RFC 9110 §5.6.2 token characters */
    static const char extra[] = "!#$%&'*+-.^_`|~";
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c != 0 && memchr(extra, c, sizeof(extra) - 1) != NULL;
}

static inline uint8_t dx__ascii_lower(uint8_t c) {
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
}

#endif /* DX_BASE_INTERNAL_H */
