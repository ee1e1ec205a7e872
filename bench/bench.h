/*
 * Pieces every bench program shares: a monotonic clock, the compiler and
 * optimisation names that end each result line, a dx_allocator that counts
 * its allocations, and the exit taken on a wrong answer.
 *
 * Each bench is a single translation unit that uses only some of these, so
 * the functions are static inline (no -Wunused-function for the rest).
 */
#ifndef DX_BENCH_BENCH_H
#define DX_BENCH_BENCH_H

#include "duplex/duplex.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define BENCH_STR2(x) #x
#define BENCH_STR(x) BENCH_STR2(x)

/* Seconds on the monotonic clock; only differences mean anything. */
static inline double bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The compiler and its major version, e.g. "gcc-12", for the result line. */
static inline const char *bench_compiler(void) {
#if defined(__clang__)
    return "clang-" BENCH_STR(__clang_major__);
#elif defined(__GNUC__)
    return "gcc-" BENCH_STR(__GNUC__);
#else
    return "cc";
#endif
}

/* The optimisation level, for the result line. */
static inline const char *bench_opt(void) {
#if defined(__OPTIMIZE_SIZE__)
    return "-Os";
#elif defined(__OPTIMIZE__)
    return "-O2"; /* the Makefile's default OPT; -O1/-O3 cannot be told apart here */
#else
    return "-O0";
#endif
}

/* Allocations made through bench_counting so far. */
static long bench_counted_allocs;

static inline void *bench_count_alloc(size_t size, void *ctx) {
    (void)ctx;
    bench_counted_allocs++;
    return malloc(size);
}

static inline void bench_count_free(void *p, size_t size, void *ctx) {
    (void)size;
    (void)ctx;
    free(p);
}

/* A malloc-backed dx_allocator that counts into bench_counted_allocs. */
static inline const dx_allocator *bench_counting(void) {
    static const dx_allocator counting = {bench_count_alloc, bench_count_free, NULL};
    return &counting;
}

/* Report that @prog got a wrong answer in @what, and exit 1. */
static inline void bench_fail(const char *prog, const char *what) {
    fprintf(stderr, "%s: wrong answer: %s\n", prog, what);
    exit(1);
}

#endif /* DX_BENCH_BENCH_H */
