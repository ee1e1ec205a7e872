/*
 * src/base: the error table (every code named, described, unique), spans, the
 * default allocator, and the random source (pool refills, fresh bytes per call,
 * per-thread pools).
 */
#include "test.h"

#include <errno.h>
#include <pthread.h>

static const struct {
    int code;
    const char *name;
    const char *text;
} table[] = {
#define X(name, code, text) {code, "DX_E" #name, text},
    DX_ERRORS(X)
#undef X
};
#define NERR (sizeof table / sizeof table[0])

TEST(errors_every_code_has_its_name_and_message) {
    CHECK(NERR >= 7);
    for (size_t i = 0; i < NERR; i++) {
        CHECK_SPAN_STR(dx_span_cstr(dx_err_name(table[i].code)), table[i].name);
        CHECK_SPAN_STR(dx_span_cstr(dx_strerror(table[i].code)), table[i].text);
        CHECK(table[i].code <= -1000); /* library range, apart from -errno */
        CHECK(strlen(table[i].text) > 0);
    }
}

/* docs/errors.md is the manual page for this table: it must name every code,
 * with its number. Tests run from the top of the tree (DX_SRCDIR overrides). */
TEST(errors_every_code_is_documented_in_docs_errors_md) {
    const char *dir = getenv("DX_SRCDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/docs/errors.md", dir ? dir : ".");
    FILE *f = fopen(path, "rb");
    REQUIRE(f != NULL);
    static char doc[1 << 16];
    size_t n = fread(doc, 1, sizeof doc - 1, f);
    fclose(f);
    doc[n] = 0;
    for (size_t i = 0; i < NERR; i++) {
        char row[96];
        snprintf(row, sizeof row, "| `%s` | %d |", table[i].name, table[i].code);
        if (!strstr(doc, row))
            dx_test_fail(__FILE__, __LINE__, row);
    }
}

TEST(errors_codes_names_and_messages_are_unique) {
    for (size_t i = 0; i < NERR; i++)
        for (size_t j = i + 1; j < NERR; j++) {
            if (table[i].code == table[j].code || strcmp(table[i].name, table[j].name) == 0 ||
                strcmp(table[i].text, table[j].text) == 0) {
                printf("    %s and %s clash\n", table[i].name, table[j].name);
                dx_test_fail(__FILE__, __LINE__, "duplicate in DX_ERRORS");
            }
        }
}

TEST(errors_enum_values_match_the_table) {
    CHECK_EQ_INT(DX_ENOMEM, -1000);
    CHECK_EQ_INT(DX_EINVAL, -1001);
    CHECK_EQ_INT(DX_ESTATE, -1002);
    CHECK_EQ_INT(DX_ELIMIT, -1003);
    CHECK_EQ_INT(DX_ENOTSUP, -1004);
    CHECK_EQ_INT(DX_EINCOMPLETE, -1005);
    CHECK_EQ_INT(DX_ENOSPACE, -1006);
}

TEST(errors_success_errno_and_unknown) {
    CHECK_SPAN_STR(dx_span_cstr(dx_strerror(0)), "success");
    CHECK_SPAN_STR(dx_span_cstr(dx_err_name(0)), "OK");
    CHECK_SPAN_STR(dx_span_cstr(dx_err_name(-ECONNREFUSED)), "ECONNREFUSED");
    CHECK_SPAN_STR(dx_span_cstr(dx_err_name(-ENOENT)), "ENOENT");
    CHECK_SPAN_STR(dx_span_cstr(dx_strerror(-ENOENT)), "No such file or directory");
    CHECK_SPAN_STR(dx_span_cstr(dx_strerror(-999999)), "unknown error");
    CHECK_SPAN_STR(dx_span_cstr(dx_err_name(-999999)), "UNKNOWN");
    CHECK_SPAN_STR(dx_span_cstr(dx_strerror(5)), "unknown error");
    CHECK_SPAN_STR(dx_span_cstr(dx_err_name(-1099)), "UNKNOWN"); /* a gap in the table */
    CHECK_SPAN_STR(dx_span_cstr(dx_strerror(-1099)), "unknown error");
}

TEST(span_helpers) {
    dx_span a = dx_span_cstr("Upgrade");
    CHECK_EQ_INT(a.len, 7);
    dx_span n = dx_span_cstr(NULL);
    CHECK(n.ptr == NULL && n.len == 0);
    CHECK(dx_span_eq(n, dx_span_cstr("")));
    CHECK(dx_span_eq(a, dx_span_cstr("Upgrade")));
    CHECK(!dx_span_eq(a, dx_span_cstr("upgrade")));
    CHECK(!dx_span_eq(a, dx_span_cstr("Upgrad")));
    CHECK(dx_span_eq_nocase(a, dx_span_cstr("uPGRADE")));
    CHECK(!dx_span_eq_nocase(a, dx_span_cstr("upgradE ")));
    CHECK(!dx_span_eq_nocase(dx_span_cstr("a@"), dx_span_cstr("A`"))); /* only letters fold */
    CHECK(!dx_span_eq_nocase(dx_span_cstr("["), dx_span_cstr("{")));
    CHECK(dx_span_eq_nocase(n, n));
}

TEST(default_allocator_round_trip) {
    const dx_allocator *a = dx_allocator_default();
    REQUIRE(a != NULL);
    uint8_t *p = a->alloc(100, a->ctx);
    REQUIRE(p != NULL);
    memset(p, 0xAB, 100);
    a->free(p, 100, a->ctx);
    a->free(NULL, 0, a->ctx);
}

TEST(random_bytes_are_fresh_across_pool_refills) {
    /* 3000 draws of 8 bytes cross the 4 KiB pool about six times. */
    enum { N = 3000 };
    static uint64_t draws[N];
    for (int i = 0; i < N; i++) {
        uint8_t b[8];
        CHECK_RC(dx_random_bytes(b, 8), 0);
        memcpy(&draws[i], b, 8);
        CHECK(draws[i] != 0); /* a wiped pool must never be handed out */
    }
    int same = 0;
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++)
            same += draws[i] == draws[j];
    CHECK_EQ_INT(same, 0);
}

TEST(random_draws_straddling_the_pool_end) {
    /* 7-byte draws do not divide 4096, so some draws take the end of one pool
     * and the start of the next. None may contain a long run of zeros (the
     * consumed part of the pool is wiped). */
    for (int i = 0; i < 3000; i++) {
        uint8_t b[7];
        CHECK_RC(dx_random_bytes(b, 7), 0);
        static const uint8_t zero[7];
        CHECK(memcmp(b, zero, 7) != 0);
    }
}

TEST(random_large_requests_and_distribution) {
    size_t n = 1 << 16;
    uint8_t *b = calloc(1, n);
    CHECK_RC(dx_random_bytes(b, n), 0); /* larger than the pool: read directly */
    unsigned counts[256] = {0};
    for (size_t i = 0; i < n; i++)
        counts[b[i]]++;
    for (int v = 0; v < 256; v++)
        CHECK(counts[v] > 256 - 100 && counts[v] < 256 + 100); /* mean 256, sd 16 */
    CHECK_RC(dx_random_bytes(b, 0), 0);
    free(b);
}

TEST(random_default_source_fills) {
    const dx_random *r = dx_random_default();
    REQUIRE(r != NULL && r->fill != NULL);
    uint8_t a[16] = {0}, b[16] = {0};
    CHECK_RC(r->fill(a, sizeof a, r->ctx), 0);
    CHECK_RC(r->fill(b, sizeof b, r->ctx), 0);
    CHECK(memcmp(a, b, sizeof a) != 0); /* different keys each call */
}

static void *thread_draw(void *arg) {
    dx_random_bytes(arg, 32);
    return NULL;
}

TEST(random_pools_are_per_thread_and_independent) {
    uint8_t a[32], b[32], c[32];
    pthread_t t1, t2;
    REQUIRE(pthread_create(&t1, NULL, thread_draw, a) == 0);
    REQUIRE(pthread_create(&t2, NULL, thread_draw, b) == 0);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    CHECK_RC(dx_random_bytes(c, 32), 0);
    CHECK(memcmp(a, b, 32) != 0);
    CHECK(memcmp(a, c, 32) != 0);
    CHECK(memcmp(b, c, 32) != 0);
}
