/* The thread-safe entry points: posts from other threads, wakeups, and destroy
 * with posts pending. */
#include "test.h"

#include <pthread.h>
#include <time.h>

static double real_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

enum { THREADS = 4, PER_THREAD = 10000 };

/* One posted item: which thread, which of its posts. */
typedef struct item {
    int thread;
    int seq;
} item;

typedef struct sink {
    int next[THREADS]; /* next seq expected from each thread */
    int total;
    int out_of_order;
    int duplicates;
} sink;

static sink g_sink;

static void consume(void *arg) {
    const item *it = arg;
    if (it->seq < g_sink.next[it->thread])
        g_sink.duplicates++;
    else if (it->seq != g_sink.next[it->thread])
        g_sink.out_of_order++;
    g_sink.next[it->thread] = it->seq + 1;
    g_sink.total++;
}

typedef struct poster {
    dx_loop *l;
    int id;
    item *items;
    int failed;
} poster;

static void *post_thread(void *arg) {
    poster *p = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        p->items[i].thread = p->id;
        p->items[i].seq = i;
        if (dx_loop_post(p->l, consume, &p->items[i]) != 0)
            p->failed++;
    }
    return NULL;
}

TEST(post_from_4_threads_10000_each_delivered_once_in_per_thread_order) {
    dx_loop *l = NULL;
    REQUIRE(dx_loop_create(&l, NULL) == 0);
    memset(&g_sink, 0, sizeof(g_sink));
    static item items[THREADS][PER_THREAD];
    poster p[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        p[i] = (poster){.l = l, .id = i, .items = items[i]};
        REQUIRE(pthread_create(&th[i], NULL, post_thread, &p[i]) == 0);
    }
    /* Bounded: each wait ends within 100 ms; give up after 20 s. */
    double t0 = real_ms();
    while (g_sink.total < THREADS * PER_THREAD && real_ms() - t0 < 20000)
        CHECK_RC(dx_loop_run_once(l, 100), 0);
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ_INT(p[i].failed, 0);
    }
    CHECK_RC(dx_loop_run_once(l, 0), 0); /* nothing more arrives */
    CHECK_EQ_INT(g_sink.total, THREADS * PER_THREAD);
    CHECK_EQ_INT(g_sink.out_of_order, 0);
    CHECK_EQ_INT(g_sink.duplicates, 0);
    for (int i = 0; i < THREADS; i++)
        CHECK_EQ_INT(g_sink.next[i], PER_THREAD);
    dx_loop_destroy(l);
}

typedef struct waker {
    dx_loop *l;
    int delay_ms;
} waker;

static void *wake_thread(void *arg) {
    waker *w = arg;
    struct timespec ts = {0, (long)w->delay_ms * 1000 * 1000};
    nanosleep(&ts, NULL);
    dx_loop_wakeup(w->l);
    return NULL;
}

static void safety_net(dx_timer *t, void *user) {
    (void)t;
    (*(int *)user)++;
}

TEST(wakeup_from_another_thread_ends_a_blocking_run_once) {
    dx_loop *l = NULL;
    REQUIRE(dx_loop_create(&l, NULL) == 0);
    int net = 0;
    dx_timer t;
    dx_timer_init(&t, safety_net, &net);
    dx_timer_start(l, &t, 30000); /* keeps a broken wakeup from hanging the test */
    waker w = {l, 20};
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, wake_thread, &w) == 0);
    CHECK_RC(dx_loop_run_once(l, -1), 0);
    CHECK_EQ_INT(net, 0); /* the wakeup, not the timer, ended the wait */
    pthread_join(th, NULL);
    /* wakeups coalesce, and a drained one does not wake the next wait */
    dx_loop_wakeup(l);
    dx_loop_wakeup(l);
    CHECK_RC(dx_loop_run_once(l, -1), 0);
    double t0 = real_ms();
    CHECK_RC(dx_loop_run_once(l, 50), 0);
    CHECK(real_ms() - t0 >= 49.0); /* waited its full timeout: nothing pending */
    dx_timer_stop(l, &t);
    dx_loop_destroy(l);
}

static void count_post(void *arg) {
    (*(int *)arg)++;
}

TEST(destroy_with_pending_posts_frees_them_without_running) {
    dx_fail_alloc fa;
    dx_fail_alloc_init(&fa, -1);
    dx_loop *l = NULL;
    REQUIRE(dx_loop_create(&l, &fa.a) == 0);
    int ran = 0;
    for (int i = 0; i < 1000; i++) /* past the initial capacity: the inbox grows */
        CHECK_RC(dx_loop_post(l, count_post, &ran), 0);
    CHECK(fa.allocs > 3);
    dx_loop_destroy(l);
    CHECK_EQ_INT(ran, 0);
    CHECK_EQ_INT(fa.live, 0);
    CHECK_EQ_INT(fa.live_bytes, 0);
    CHECK(!fa.size_mismatch);
}

typedef struct chain {
    dx_loop *l;
    char log[16];
    size_t n;
} chain;

static void chain_b(void *arg) {
    chain *c = arg;
    c->log[c->n++] = 'b';
}

static void chain_a(void *arg) {
    chain *c = arg;
    c->log[c->n++] = 'a';
    CHECK_RC(dx_loop_post(c->l, chain_b, c), 0); /* from the loop thread, in a post */
}

static void chain_c(void *arg) {
    chain *c = arg;
    c->log[c->n++] = 'c';
}

TEST(post_from_loop_thread_runs_in_order_never_inside_the_call) {
    chain c = {0};
    REQUIRE(dx_loop_create(&c.l, NULL) == 0);
    CHECK_RC(dx_loop_post(c.l, chain_a, &c), 0);
    CHECK_RC(dx_loop_post(c.l, chain_c, &c), 0);
    CHECK_EQ_INT(c.n, 0); /* nothing runs inside dx_loop_post */
    CHECK_RC(dx_loop_run_once(c.l, 5000), 0);
    CHECK_EQ_INT(c.n, 2);
    CHECK_MEM(c.log, "ac", 2);
    CHECK_RC(dx_loop_run_once(c.l, 5000), 0); /* b was posted during the run: next pass */
    CHECK_EQ_INT(c.n, 3);
    CHECK_MEM(c.log, "acb", 3);
    CHECK_RC(dx_loop_run(c.l), 0); /* posts alone do not keep run going */
    dx_loop_destroy(c.l);
}

TEST(post_errors_einval_and_enomem_when_the_inbox_cannot_grow) {
    dx_fail_alloc fa;
    dx_fail_alloc_init(&fa, -1);
    dx_loop *l = NULL;
    REQUIRE(dx_loop_create(&l, &fa.a) == 0);
    CHECK_RC(dx_loop_post(l, NULL, NULL), DX_EINVAL);
    fa.fail_after = fa.allocs; /* no more memory */
    int ran = 0, ok = 0, rc = 0;
    while ((rc = dx_loop_post(l, count_post, &ran)) == 0)
        ok++;
    CHECK_RC(rc, DX_ENOMEM);
    CHECK_EQ_INT(ok, 64); /* the preallocated capacity */
    CHECK_RC(dx_loop_run_once(l, -1), 0);
    CHECK_EQ_INT(ran, 64);                          /* the accepted ones all run */
    CHECK_RC(dx_loop_post(l, count_post, &ran), 0); /* room again, no allocation */
    CHECK_RC(dx_loop_run_once(l, -1), 0);
    CHECK_EQ_INT(ran, 65);
    dx_loop_destroy(l);
    CHECK_EQ_INT(fa.live, 0);
}
