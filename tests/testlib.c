/* Test harness and helpers (see test.h). */
#include "test.h"

#include <sys/mman.h>
#include <unistd.h>

#define MAX_TESTS 1024

static struct {
    const char *name;
    dx_test_fn fn;
} tests[MAX_TESTS];
static int num_tests;
int dx_test_failed;
static const char *current;

void dx_test_register(const char *name, dx_test_fn fn) {
    if (num_tests == MAX_TESTS) {
        fprintf(stderr, "too many tests\n");
        abort();
    }
    tests[num_tests].name = name;
    tests[num_tests].fn = fn;
    num_tests++;
}

void dx_test_fail(const char *file, int line, const char *expr) {
    if (dx_test_failed < 10)
        printf("    %s:%d: %s failed: %s (seed %" PRIu64 ")\n", file, line, current, expr,
               dx_test_seed());
    dx_test_failed++;
}

static uint64_t seed_value;
static uint64_t rng_state;

uint64_t dx_test_seed(void) {
    return seed_value;
}

uint64_t dx_test_rand(void) {
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

const dx_split dx_all_splits[3] = {DX_SPLIT_WHOLE, DX_SPLIT_BYTES, DX_SPLIT_RANDOM};

const char *dx_split_name(dx_split s) {
    return s == DX_SPLIT_WHOLE ? "whole" : s == DX_SPLIT_BYTES ? "bytes" : "random";
}

size_t dx_split_next(dx_split split, size_t left) {
    if (left == 0)
        return 0;
    switch (split) {
    case DX_SPLIT_WHOLE:
        return left;
    case DX_SPLIT_BYTES:
        return 1;
    case DX_SPLIT_RANDOM:
    default: {
        size_t n = 1 + (size_t)(dx_test_rand() % 23);
        return n < left ? n : left;
    }
    }
}

uint8_t *dx_guard_alloc(const void *data, size_t len) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t pages = (len + page - 1) / page + 1;
    uint8_t *base =
        mmap(NULL, pages * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED)
        abort();
    uint8_t *guard = base + (pages - 1) * page;
    if (mprotect(guard, page, PROT_NONE) != 0)
        abort();
    uint8_t *p = guard - len;
    if (len)
        memcpy(p, data, len);
    return p;
}

void dx_guard_free(uint8_t *p, size_t len) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t pages = (len + page - 1) / page + 1;
    uint8_t *guard = p + len;
    uint8_t *base = guard - (pages - 1) * page;
    munmap(base, pages * page);
}

static void *fail_alloc(size_t size, void *ctx) {
    dx_fail_alloc *fa = ctx;
    if (fa->fail_after >= 0 && fa->allocs >= fa->fail_after)
        return NULL;
    size_t *p = malloc(size + sizeof(size_t) * 2);
    if (!p)
        return NULL;
    p[0] = size;
    fa->allocs++;
    fa->live++;
    fa->live_bytes += size;
    return p + 2;
}

static void fail_free(void *ptr, size_t size, void *ctx) {
    dx_fail_alloc *fa = ctx;
    if (!ptr)
        return;
    size_t *p = (size_t *)ptr - 2;
    if (p[0] != size)
        fa->size_mismatch = true;
    fa->live--;
    fa->live_bytes -= p[0];
    free(p);
}

void dx_fail_alloc_init(dx_fail_alloc *fa, long fail_after) {
    memset(fa, 0, sizeof(*fa));
    fa->a.alloc = fail_alloc;
    fa->a.free = fail_free;
    fa->a.ctx = fa;
    fa->fail_after = fail_after;
}

void dx_test_hexdump(const char *label, const void *p, size_t n) {
    const uint8_t *b = p;
    printf("    %s (%zu bytes):", label, n);
    for (size_t i = 0; i < n && i < 64; i++)
        printf(" %02x", b[i]);
    printf(n > 64 ? " ...\n" : "\n");
}

int main(int argc, char **argv) {
    const char *filter = argc > 1 ? argv[1] : NULL;
    const char *env = getenv("DX_TEST_SEED");
    seed_value = env ? strtoull(env, NULL, 0) : 0x9E3779B97F4A7C15ULL;
    if (seed_value == 0)
        seed_value = 1;
    int passed = 0, failed = 0;
    const char *prog = strrchr(argv[0], '/');
    prog = prog ? prog + 1 : argv[0];
    for (int i = 0; i < num_tests; i++) {
        if (filter && !strstr(tests[i].name, filter))
            continue;
        current = tests[i].name;
        dx_test_failed = 0;
        rng_state = seed_value; /* each test sees the same sequence alone or in a run */
        alarm(120);             /* a test that blocks forever dies, loudly, in bounded time */
        tests[i].fn();
        alarm(0);
        if (dx_test_failed) {
            printf("FAIL %s\n", tests[i].name);
            failed++;
        } else {
            printf("ok   %s\n", tests[i].name);
            passed++;
        }
        fflush(stdout);
    }
    printf("%s: %d passed, %d failed\n", prog, passed, failed);
    return failed ? 1 : 0;
}
