/*
 * Helpers shared by bench_mask.c and bench_utf8.c, on top of bench.h: best-of-N
 * timing, buffers, an allocation counter (by malloc interposition) and the
 * one-line result format
 *   <bench>  <case>  <size>  <variant>  <GB/s>  <ratio>x memcpy  <n> allocs/op  <cc> <opt>
 * Each bench is a single translation unit, so the static definitions here are
 * fine.
 */
#ifndef DX_BENCH_SIMD_BENCH_H
#define DX_BENCH_SIMD_BENCH_H

#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BENCH_RUNS 7                    /* best of this many timed runs */
#define BENCH_BYTES_PER_RUN (64u << 20) /* each run processes about this much */

/* Allocation counting by interposing malloc (glibc, no sanitizer): the hot paths
 * under test must not allocate, and this measures it rather than asserting it. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define BENCH_NO_INTERPOSE 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define BENCH_NO_INTERPOSE 1
#endif
#if defined(__GLIBC__) && !defined(BENCH_NO_INTERPOSE)
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t m);
extern void *__libc_realloc(void *p, size_t n);
static long bench_alloc_count;
void *malloc(size_t n) {
    bench_alloc_count++;
    return __libc_malloc(n);
}
void *calloc(size_t n, size_t m) {
    bench_alloc_count++;
    return __libc_calloc(n, m);
}
void *realloc(void *p, size_t n) {
    bench_alloc_count++;
    return __libc_realloc(p, n);
}
#define BENCH_COUNTS_ALLOCS 1
static long bench_allocs(void) {
    return bench_alloc_count;
}
#else
#define BENCH_COUNTS_ALLOCS 0
static long bench_allocs(void) {
    return 0;
}
#endif

static double bench_gbs(size_t bytes, double secs) {
    return secs > 0 ? (double)bytes / secs / 1e9 : 0;
}

static size_t bench_iters(size_t size) {
    size_t n = BENCH_BYTES_PER_RUN / size;
    return n ? n : 1;
}

/* 64-byte aligned, so results do not depend on where malloc put the buffer. */
static uint8_t *bench_alloc(size_t size) {
    size_t rounded = (size + 63) / 64 * 64;
    uint8_t *p = aligned_alloc(64, rounded);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    memset(p, 0, rounded);
    return p;
}

static void bench_free(uint8_t *p, size_t size) {
    (void)size;
    free(p);
}

static void bench_size_name(char *out, size_t cap, size_t size) {
    if (size >= (1u << 20) && size % (1u << 20) == 0)
        snprintf(out, cap, "%zuMiB", size >> 20);
    else if (size >= 1024 && size % 1024 == 0)
        snprintf(out, cap, "%zuKiB", size >> 10);
    else
        snprintf(out, cap, "%zuB", size);
}

/* One result line. @what names the case and variant, e.g. "ascii avx2". */
static void bench_line(const char *bench, size_t size, const char *what, double gbs,
                       double memcpy_gbs, double allocs_per_op) {
    char sz[32], allocs[32];
    bench_size_name(sz, sizeof sz, size);
    if (BENCH_COUNTS_ALLOCS)
        snprintf(allocs, sizeof allocs, "%g", allocs_per_op);
    else
        snprintf(allocs, sizeof allocs, "?");
    printf("%s  %s  %s  %.1f GB/s  %.2fx memcpy  %s allocs/op  %s %s\n", bench, sz, what, gbs,
           memcpy_gbs > 0 ? gbs / memcpy_gbs : 0, allocs, bench_compiler(), bench_opt());
    fflush(stdout);
}

#endif /* DX_BENCH_SIMD_BENCH_H */
