/*
 * The test harness: TEST(name) registers a test, CHECK*() record failures and
 * carry on, REQUIRE*() record and leave the test. Each test binary runs all its
 * tests (or those whose name contains argv[1]) and prints one line per test and
 * a summary "<binary>: N passed, M failed" that tests/run.sh adds up.
 *
 * Helpers for feeding parsers whole, byte by byte and at random splits, inputs
 * that end at a guard page, and a failing allocator are in testlib.c.
 */
#ifndef DX_TEST_H
#define DX_TEST_H

#include "duplex/duplex.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*dx_test_fn)(void);
void dx_test_register(const char *name, dx_test_fn fn);
void dx_test_fail(const char *file, int line, const char *expr);
extern int dx_test_failed; /* failures in the running test */

#define TEST(name)                                                                                 \
    static void test_##name(void);                                                                 \
    __attribute__((constructor)) static void register_##name(void) {                               \
        dx_test_register(#name, test_##name);                                                      \
    }                                                                                              \
    static void test_##name(void)

#define CHECK(expr)                                                                                \
    do {                                                                                           \
        if (!(expr))                                                                               \
            dx_test_fail(__FILE__, __LINE__, #expr);                                               \
    } while (0)

/* Leaves the current test function on failure (it returns; cleanup is skipped,
 * which a leak check will then report: use it only before allocating). */
#define REQUIRE(expr)                                                                              \
    do {                                                                                           \
        if (!(expr)) {                                                                             \
            dx_test_fail(__FILE__, __LINE__, #expr);                                               \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
    do {                                                                                           \
        long long va_ = (long long)(a), vb_ = (long long)(b);                                      \
        if (va_ != vb_) {                                                                          \
            char m_[256];                                                                          \
            snprintf(m_, sizeof m_, "%s == %s (%lld vs %lld)", #a, #b, va_, vb_);                  \
            dx_test_fail(__FILE__, __LINE__, m_);                                                  \
        }                                                                                          \
    } while (0)

/* Compare a return code with an expected DX_E* code, naming both on failure. */
#define CHECK_RC(got, want)                                                                        \
    do {                                                                                           \
        int g_ = (got), w_ = (want);                                                               \
        if (g_ != w_) {                                                                            \
            char m_[256];                                                                          \
            snprintf(m_, sizeof m_, "%s: got %s, want %s", #got, dx_err_name(g_),                  \
                     dx_err_name(w_));                                                             \
            dx_test_fail(__FILE__, __LINE__, m_);                                                  \
        }                                                                                          \
    } while (0)

#define CHECK_SPAN_STR(span, str)                                                                  \
    do {                                                                                           \
        dx_span s_ = (span);                                                                       \
        const char *e_ = (str);                                                                    \
        if (s_.len != strlen(e_) || (s_.len && memcmp(s_.ptr, e_, s_.len) != 0)) {                 \
            char m_[512];                                                                          \
            snprintf(m_, sizeof m_, "%s == \"%s\" (got \"%.*s\")", #span, e_,                      \
                     (int)(s_.len > 200 ? 200 : s_.len), s_.ptr ? (const char *)s_.ptr : "");      \
            dx_test_fail(__FILE__, __LINE__, m_);                                                  \
        }                                                                                          \
    } while (0)

#define CHECK_MEM(a, b, n) CHECK(memcmp((a), (b), (n)) == 0)

/* ---- testlib.c ------------------------------------------------------------ */

/* Deterministic PRNG for splits and random data (xorshift64*); seed from
 * DX_TEST_SEED or a fixed default, printed on failure. */
uint64_t dx_test_rand(void);
uint64_t dx_test_seed(void);

/* How to cut an input into pieces: the whole, one byte at a time, or random
 * pieces of 1..max_piece bytes. */
typedef enum { DX_SPLIT_WHOLE, DX_SPLIT_BYTES, DX_SPLIT_RANDOM } dx_split;
extern const dx_split dx_all_splits[3];
const char *dx_split_name(dx_split s);
/* Next piece length for @split with @left bytes remaining (>= 1 when left >= 1). */
size_t dx_split_next(dx_split split, size_t left);

/* A copy of @len bytes placed so that its last byte is the last before a page
 * that faults on access (PROT_NONE). Free with dx_guard_free. */
uint8_t *dx_guard_alloc(const void *data, size_t len);
void dx_guard_free(uint8_t *p, size_t len);

/* A failing allocator: after @fail_after successful allocations, every later one
 * fails. It counts live allocations and bytes so tests can assert no leak. */
typedef struct dx_fail_alloc {
    dx_allocator a;     /* pass &fa.a to the API */
    long fail_after;    /* -1: never fail */
    long allocs;        /* allocations made (successful) */
    long live;          /* allocations not yet freed */
    size_t live_bytes;  /* bytes not yet freed */
    bool size_mismatch; /* a free() gave a size other than the alloc()'s */
} dx_fail_alloc;
void dx_fail_alloc_init(dx_fail_alloc *fa, long fail_after);

/* Hex dump helper for failure messages. */
void dx_test_hexdump(const char *label, const void *p, size_t n);

#endif /* DX_TEST_H */
