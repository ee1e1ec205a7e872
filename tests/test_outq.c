/*
 * The segment output queue and shared buffers (include/duplex/outq.h), checked
 * against a model: a flat array of the bytes that must come out, in order, and the
 * reference count each shared buffer must have.
 */
#include "test.h"

#include "duplex/outq.h"

/* What the queue must hold: the bytes in order. */
typedef struct model {
    uint8_t *b;
    size_t len, cap;
} model;

static void model_add(model *m, const uint8_t *p, size_t n) {
    if (!n)
        return;
    if (m->len + n > m->cap) {
        m->cap = (m->len + n) * 2;
        m->b = realloc(m->b, m->cap);
    }
    memcpy(m->b + m->len, p, n);
    m->len += n;
}

static void model_consume(model *m, size_t n) {
    if (!n)
        return;
    memmove(m->b, m->b + n, m->len - n);
    m->len -= n;
}

/* The whole queue, read through dx_outq_spans with at most @max spans at a time,
 * equals the model (the spans are not consumed). */
static bool queue_equals(const dx_outq *q, const model *m, size_t max) {
    dx_span v[64];
    size_t n = dx_outq_spans(q, v, max < 64 ? max : 64);
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i].len == 0 || off + v[i].len > m->len || memcmp(v[i].ptr, m->b + off, v[i].len))
            return false;
        off += v[i].len;
    }
    /* fewer spans than max: they covered everything */
    return dx_outq_len(q) == m->len && (n == (max < 64 ? max : 64) || off == m->len);
}

TEST(outq_own_bytes_are_one_contiguous_span) {
    dx_fail_alloc fa;
    dx_fail_alloc_init(&fa, -1);
    dx_outq q;
    dx_outq_init(&q, &fa.a);
    CHECK_EQ_INT(dx_outq_len(&q), 0);
    CHECK_EQ_INT(dx_outq_memory(&q), 0);
    CHECK_EQ_INT(fa.live, 0); /* nothing until something is queued */
    CHECK_RC(dx_outq_append(&q, dx_span_cstr("hello ")), 0);
    uint8_t *p = dx_outq_reserve(&q, 5);
    REQUIRE(p);
    memcpy(p, "world", 5);
    dx_outq_commit(&q, 5);
    dx_span v[4];
    CHECK_EQ_INT(dx_outq_spans(&q, v, 4), 1);
    CHECK_SPAN_STR(v[0], "hello world");
    CHECK_SPAN_STR(dx_outq_front(&q), "hello world");
    dx_outq_consume(&q, 6);
    CHECK_SPAN_STR(dx_outq_front(&q), "world");
    dx_outq_consume(&q, 100); /* clamped */
    CHECK_EQ_INT(dx_outq_len(&q), 0);
    CHECK_EQ_INT(dx_outq_spans(&q, v, 4), 0);
    CHECK(dx_outq_memory(&q) > 0); /* kept for the next write */
    dx_outq_trim(&q);
    CHECK_EQ_INT(dx_outq_memory(&q), 0);
    CHECK_EQ_INT(fa.live, 0);
    dx_outq_deinit(&q);
}

TEST(outq_shared_segments_keep_order_and_references) {
    dx_fail_alloc fa;
    dx_fail_alloc_init(&fa, -1);
    dx_shared *s;
    REQUIRE(dx_shared_create(&s, 6, &fa.a) == 0);
    memcpy(dx_shared_bytes(s), "SHARED", 6);
    dx_outq q;
    dx_outq_init(&q, &fa.a);
    CHECK_RC(dx_outq_append(&q, dx_span_cstr("<a>")), 0);
    CHECK_RC(dx_outq_append_shared(&q, s, 0, 6), 0);
    CHECK_RC(dx_outq_append(&q, dx_span_cstr("<b>")), 0);
    CHECK_RC(dx_outq_append_shared(&q, s, 2, 3), 0);
    CHECK_RC(dx_outq_append_shared(&q, s, 6, 1), DX_EINVAL);
    CHECK_RC(dx_outq_append_shared(&q, s, 7, 0), DX_EINVAL);
    CHECK_RC(dx_outq_append_shared(&q, NULL, 0, 0), DX_EINVAL);
    CHECK_EQ_INT(dx_outq_shared_count(&q), 2);
    dx_span v[8];
    REQUIRE(dx_outq_spans(&q, v, 8) == 4);
    CHECK_SPAN_STR(v[0], "<a>");
    CHECK_SPAN_STR(v[1], "SHARED");
    CHECK(v[1].ptr == dx_shared_data(s).ptr); /* referenced, not copied */
    CHECK_SPAN_STR(v[2], "<b>");
    CHECK_SPAN_STR(v[3], "ARE");
    CHECK_EQ_INT(dx_outq_spans(&q, v, 2), 2);
    dx_shared_release(s); /* the queue's references keep it */
    CHECK_SPAN_STR(dx_outq_front(&q), "<a>");
    dx_outq_consume(&q, 5); /* into the shared segment */
    CHECK_SPAN_STR(dx_outq_front(&q), "ARED");
    dx_outq_consume(&q, 4 + 3 + 2);
    CHECK_EQ_INT(dx_outq_shared_count(&q), 1);
    CHECK_SPAN_STR(dx_outq_front(&q), "E");
    long before = fa.live;
    dx_outq_consume(&q, 1); /* the last reference goes with its bytes */
    CHECK_EQ_INT(fa.live, before - 1);
    CHECK_EQ_INT(dx_outq_len(&q), 0);
    dx_outq_deinit(&q);
    CHECK_EQ_INT(fa.live, 0);
    CHECK(!fa.size_mismatch);
}

TEST(outq_deinit_releases_what_was_never_written) {
    dx_fail_alloc fa;
    dx_fail_alloc_init(&fa, -1);
    dx_shared *s;
    REQUIRE(dx_shared_create(&s, 100, &fa.a) == 0);
    memset(dx_shared_bytes(s), 'x', 100);
    dx_outq q[3];
    for (int i = 0; i < 3; i++) {
        dx_outq_init(&q[i], &fa.a);
        CHECK_RC(dx_outq_append_shared(&q[i], s, 0, 100), 0);
    }
    dx_shared_release(s);
    for (int i = 0; i < 3; i++)
        dx_outq_deinit(&q[i]);
    CHECK_EQ_INT(fa.live, 0);
}

/* Random operations against the model: appends of each kind, partial consumes at
 * any point (inside own and shared segments), spans read in small batches. */
TEST(outq_random_operations_match_the_model) {
    dx_fail_alloc fa;
    dx_fail_alloc_init(&fa, -1);
    dx_shared *pool[4];
    for (int i = 0; i < 4; i++) {
        size_t n = 1 + (size_t)i * 700;
        REQUIRE(dx_shared_create(&pool[i], n, &fa.a) == 0);
        for (size_t k = 0; k < n; k++)
            dx_shared_bytes(pool[i])[k] = (uint8_t)('A' + (k + (size_t)i) % 26);
    }
    for (int round = 0; round < 200; round++) {
        dx_outq q;
        dx_outq_init(&q, &fa.a);
        model m = {0};
        for (int op = 0; op < 300; op++) {
            uint64_t r = dx_test_rand();
            switch (r % 6) {
            case 0:
            case 1: { /* own bytes */
                uint8_t tmp[600];
                size_t n = (size_t)(r >> 8) % sizeof tmp;
                for (size_t k = 0; k < n; k++)
                    tmp[k] = (uint8_t)('a' + (k + (size_t)op) % 26);
                if (r & 0x10000) {
                    CHECK_RC(dx_outq_append(&q, (dx_span){tmp, n}), 0);
                } else {
                    uint8_t *p = dx_outq_reserve(&q, n);
                    REQUIRE(p);
                    memcpy(p, tmp, n);
                    dx_outq_commit(&q, n);
                }
                model_add(&m, tmp, n);
                break;
            }
            case 2: { /* a shared range */
                dx_shared *s = pool[(r >> 8) % 4];
                dx_span d = dx_shared_data(s);
                size_t off = (size_t)(r >> 16) % d.len;
                size_t len = (size_t)(r >> 32) % (d.len - off + 1);
                CHECK_RC(dx_outq_append_shared(&q, s, off, len), 0);
                model_add(&m, d.ptr + off, len);
                break;
            }
            case 3:
            case 4: { /* write some */
                size_t n = m.len ? (size_t)(r >> 8) % (m.len + 1) : 0;
                if ((r & 0x100) && m.len) /* exactly the first span */
                    n = dx_outq_front(&q).len;
                dx_outq_consume(&q, n);
                model_consume(&m, n);
                break;
            }
            default:
                if (!m.len)
                    dx_outq_trim(&q);
                break;
            }
            if (!queue_equals(&q, &m, 1 + (size_t)(r >> 40) % 8)) {
                dx_test_fail(__FILE__, __LINE__, "queue and model differ");
                op = 300;
                round = 200;
            }
        }
        dx_outq_deinit(&q);
        free(m.b);
    }
    for (int i = 0; i < 4; i++)
        dx_shared_release(pool[i]);
    CHECK_EQ_INT(fa.live, 0);
    CHECK(!fa.size_mismatch);
}

/* Every allocation failing in turn: nothing is half-appended, nothing leaks. */
TEST(outq_failing_allocations_leave_the_queue_as_it_was) {
    for (long fail = 0; fail < 12; fail++) {
        dx_fail_alloc fa;
        dx_fail_alloc_init(&fa, -1);
        dx_shared *s;
        REQUIRE(dx_shared_create(&s, 10, &fa.a) == 0);
        memcpy(dx_shared_bytes(s), "0123456789", 10);
        fa.fail_after = fa.allocs + fail;
        dx_outq q;
        dx_outq_init(&q, &fa.a);
        model m = {0};
        for (int i = 0; i < 6; i++) {
            char own[300];
            memset(own, 'a' + i, sizeof own);
            if (dx_outq_append(&q, (dx_span){(const uint8_t *)own, sizeof own}) == 0)
                model_add(&m, (const uint8_t *)own, sizeof own);
            if (dx_outq_append_shared(&q, s, (size_t)i, 4) == 0)
                model_add(&m, dx_shared_data(s).ptr + i, 4);
            CHECK(queue_equals(&q, &m, 64));
        }
        dx_outq_deinit(&q);
        dx_shared_release(s);
        free(m.b);
        CHECK_EQ_INT(fa.live, 0);
    }
}
