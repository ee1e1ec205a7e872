/* Timers: the intrusive heap's invariants, firing order, restart/stop from
 * callbacks, no starvation, no allocation, and deadlines as lower bounds. */
#include "test.h"

#include "runtime/timer.h"

#include <time.h>
#include <unistd.h>

static dx_loop *new_loop(void) {
    dx_loop *l = NULL;
    if (dx_loop_create(&l, NULL) != 0)
        abort();
    return l;
}

static double real_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* Walk the tree: links agree, every child sorts after its parent, and the node at
 * heap position @pos (root 1, children 2k and 2k+1) lies within @count; returns the
 * size. */
static size_t verify_subtree(const dx_timer *t, const dx_timer *parent, size_t pos, size_t count,
                             int *bad) {
    if (!t)
        return 0;
    if (t->parent != parent || pos > count)
        (*bad)++;
    if (parent && (t->deadline < parent->deadline ||
                   (t->deadline == parent->deadline && t->seq < parent->seq)))
        (*bad)++;
    return 1 + verify_subtree(t->left, t, 2 * pos, count, bad) +
           verify_subtree(t->right, t, 2 * pos + 1, count, bad);
}

/* count nodes at distinct positions 1..count: the tree is complete. */
static void verify_heap(const dx__timer_heap *h) {
    int bad = 0;
    size_t n = verify_subtree(h->root, NULL, 1, h->count, &bad);
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(n, h->count);
}

TEST(heap_1000_random_deadlines_keeps_heap_property) {
    enum { N = 1000 };
    static dx_timer t[N];
    static bool in_heap[N];
    dx__timer_heap h = {0};
    memset(t, 0, sizeof(t));
    memset(in_heap, 0, sizeof(in_heap));
    for (int i = 0; i < N; i++) {
        t[i].deadline = dx_test_rand() % 500; /* many ties */
        t[i].seq = h.next_seq++;
        dx__timer_heap_insert(&h, &t[i]);
        in_heap[i] = true;
        if (i % 97 == 0)
            verify_heap(&h);
    }
    verify_heap(&h);
    /* remove a random third from the middle of the heap */
    for (int k = 0; k < N / 3; k++) {
        int i = (int)(dx_test_rand() % N);
        if (!in_heap[i])
            continue;
        dx__timer_heap_remove(&h, &t[i]);
        in_heap[i] = false;
        CHECK(t[i].parent == NULL && t[i].left == NULL && t[i].right == NULL);
    }
    verify_heap(&h);
    /* pop the rest: (deadline, seq) never decreases */
    uint64_t last_d = 0, last_s = 0;
    size_t popped = 0, expect = h.count;
    while (h.root) {
        dx_timer *m = dx__timer_heap_min(&h);
        CHECK(m->deadline > last_d || (m->deadline == last_d && m->seq >= last_s));
        last_d = m->deadline;
        last_s = m->seq;
        dx__timer_heap_remove(&h, m);
        in_heap[m - t] = false;
        popped++;
        if (popped % 50 == 0)
            verify_heap(&h);
    }
    CHECK_EQ_INT(popped, expect);
    CHECK_EQ_INT(h.count, 0);
    for (int i = 0; i < N; i++)
        CHECK(!in_heap[i]);
}

/* Firing log shared by the loop tests. */
typedef struct fired {
    dx_timer t;
    int id;
    int count;
    uint64_t deadline;  /* expected deadline on the loop clock */
    uint64_t fired_now; /* dx_loop_now() in the callback */
    struct firelog *log;
} fired;

typedef struct firelog {
    dx_loop *loop;
    int order[1000];
    int n;
} firelog;

static void fired_cb(dx_timer *t, void *user) {
    fired *f = user;
    CHECK(t == &f->t);
    CHECK(!dx_timer_is_active(t)); /* stopped before its callback */
    f->count++;
    f->fired_now = dx_loop_now(f->log->loop);
    if (f->log->n < 1000)
        f->log->order[f->log->n++] = f->id;
}

TEST(timers_1000_random_deadlines_fire_in_deadline_order_never_early) {
    enum { N = 1000 };
    static fired f[N];
    static firelog log;
    dx_loop *l = new_loop();
    memset(f, 0, sizeof(f));
    memset(&log, 0, sizeof(log));
    log.loop = l;
    uint64_t start = dx_loop_now(l);
    for (int i = 0; i < N; i++) {
        f[i].id = i;
        f[i].log = &log;
        uint64_t after = dx_test_rand() % 20;
        f[i].deadline = start + after;
        dx_timer_init(&f[i].t, fired_cb, &f[i]);
        dx_timer_start(l, &f[i].t, after);
    }
    CHECK_RC(dx_loop_run(l), 0); /* returns when the last timer has fired */
    CHECK_EQ_INT(log.n, N);
    for (int i = 0; i < N; i++) {
        CHECK_EQ_INT(f[i].count, 1);
        CHECK(f[i].fired_now >= f[i].deadline);
    }
    for (int k = 1; k < log.n; k++) {
        const fired *a = &f[log.order[k - 1]], *b = &f[log.order[k]];
        /* deadline order; equal deadlines in start order */
        CHECK(a->deadline < b->deadline || (a->deadline == b->deadline && a->id < b->id));
    }
    dx_loop_destroy(l);
}

TEST(timer_does_not_fire_before_its_deadline) {
    double t0 = real_ms();
    dx_loop *l = new_loop();
    firelog log = {.loop = l};
    fired f = {.id = 1, .log = &log};
    dx_timer_init(&f.t, fired_cb, &f);
    f.deadline = dx_loop_now(l) + 30;
    dx_timer_start(l, &f.t, 30);
    CHECK(dx_timer_is_active(&f.t));
    /* run_once(-1) with nothing but a timer: the wait ends at its deadline */
    while (f.count == 0)
        CHECK_RC(dx_loop_run_once(l, -1), 0);
    double elapsed = real_ms() - t0;
    CHECK_EQ_INT(f.count, 1);
    CHECK(f.fired_now >= f.deadline);
    CHECK(elapsed > 29.0); /* the loop clock truncates to ms: at most 1 ms early */
    CHECK(!dx_timer_is_active(&f.t));
    dx_loop_destroy(l);
}

TEST(timer_stopped_or_never_started_never_fires) {
    dx_loop *l = new_loop();
    firelog log = {.loop = l};
    fired a = {.id = 1, .log = &log}, b = {.id = 2, .log = &log};
    dx_timer zero = {0};
    CHECK(!dx_timer_is_active(&zero));
    dx_timer_stop(l, &zero); /* never started: a no-op */
    dx_timer_init(&a.t, fired_cb, &a);
    dx_timer_init(&b.t, fired_cb, &b);
    dx_timer_start(l, &a.t, 0);
    dx_timer_start(l, &b.t, 0);
    dx_timer_stop(l, &a.t);
    dx_timer_stop(l, &a.t); /* twice: a no-op */
    CHECK(!dx_timer_is_active(&a.t));
    CHECK_RC(dx_loop_run(l), 0);
    CHECK_EQ_INT(a.count, 0);
    CHECK_EQ_INT(b.count, 1);
    dx_loop_destroy(l);
}

TEST(timer_restart_moves_the_deadline) {
    dx_loop *l = new_loop();
    firelog log = {.loop = l};
    fired a = {.id = 1, .log = &log}, b = {.id = 2, .log = &log};
    dx_timer_init(&a.t, fired_cb, &a);
    dx_timer_init(&b.t, fired_cb, &b);
    dx_timer_start(l, &a.t, 0);
    dx_timer_start(l, &b.t, 5);
    dx_timer_start(l, &a.t, 10); /* restart: now after b */
    a.deadline = dx_loop_now(l) + 10;
    CHECK_RC(dx_loop_run(l), 0);
    CHECK_EQ_INT(a.count, 1);
    CHECK_EQ_INT(b.count, 1);
    CHECK_EQ_INT(log.n, 2);
    CHECK_EQ_INT(log.order[0], 2);
    CHECK_EQ_INT(log.order[1], 1);
    CHECK(a.fired_now >= a.deadline);
    dx_loop_destroy(l);
}

/* ---- callbacks that stop and restart timers -------------------------------------- */

typedef struct juggler {
    dx_loop *l;
    dx_timer a, b, c;
    int a_calls, b_calls, c_calls;
    uint64_t c_deadline, c_fired;
} juggler;

static void jug_a(dx_timer *t, void *user) {
    juggler *j = user;
    (void)t;
    j->a_calls++;
    dx_timer_stop(j->l, &j->b);      /* due in this same iteration: must not fire */
    dx_timer_start(j->l, &j->c, 15); /* was due now: pushed back */
    j->c_deadline = dx_loop_now(j->l) + 15;
}

static void jug_b(dx_timer *t, void *user) {
    juggler *j = user;
    (void)t;
    j->b_calls++;
}

static void jug_c(dx_timer *t, void *user) {
    juggler *j = user;
    (void)t;
    j->c_calls++;
    j->c_fired = dx_loop_now(j->l);
}

TEST(timer_callback_stops_and_restarts_timers_due_in_same_iteration) {
    juggler j = {0};
    j.l = new_loop();
    dx_timer_init(&j.a, jug_a, &j);
    dx_timer_init(&j.b, jug_b, &j);
    dx_timer_init(&j.c, jug_c, &j);
    dx_timer_start(j.l, &j.a, 0); /* all three due at once, a first */
    dx_timer_start(j.l, &j.b, 0);
    dx_timer_start(j.l, &j.c, 0);
    CHECK_RC(dx_loop_run_once(j.l, -1), 0);
    CHECK_EQ_INT(j.a_calls, 1);
    CHECK_EQ_INT(j.b_calls, 0);
    CHECK_EQ_INT(j.c_calls, 0);
    CHECK(dx_timer_is_active(&j.c));
    CHECK(!dx_timer_is_active(&j.b));
    CHECK_RC(dx_loop_run(j.l), 0);
    CHECK_EQ_INT(j.b_calls, 0);
    CHECK_EQ_INT(j.c_calls, 1);
    CHECK(j.c_fired >= j.c_deadline);
    dx_loop_destroy(j.l);
}

typedef struct self_restart {
    dx_loop *l;
    dx_timer t;
    int calls;
} self_restart;

static void restart_zero(dx_timer *t, void *user) {
    self_restart *s = user;
    s->calls++;
    if (s->calls < 100)             /* bounded, so a loop that starves fails instead of hanging */
        dx_timer_start(s->l, t, 0); /* 0 ms from its own callback */
}

TEST(timer_restarted_for_0ms_in_its_callback_fires_next_iteration_no_starvation) {
    self_restart s = {0};
    s.l = new_loop();
    dx_timer_init(&s.t, restart_zero, &s);
    dx_timer_start(s.l, &s.t, 0);
    for (int i = 1; i <= 5; i++) {
        CHECK_RC(dx_loop_run_once(s.l, 1000), 0); /* due: does not wait */
        CHECK_EQ_INT(s.calls, i);                 /* once per iteration, not forever */
    }
    dx_timer_stop(s.l, &s.t);
    CHECK_RC(dx_loop_run(s.l), 0);
    CHECK_EQ_INT(s.calls, 5);
    dx_loop_destroy(s.l);
}

typedef struct starter {
    dx_loop *l;
    dx_timer started; /* started from an io callback */
    dx_io io;
    int fired;
} starter;

static void started_cb(dx_timer *t, void *user) {
    (void)t;
    ((starter *)user)->fired++;
}

static void start_from_io(dx_io *w, unsigned events, void *user) {
    starter *s = user;
    (void)events;
    dx_io_stop(s->l, w);
    dx_timer_start(s->l, &s->started, 0);
}

TEST(timer_started_for_0ms_in_io_callback_waits_for_next_iteration) {
    starter s = {0};
    s.l = new_loop();
    int p[2];
    REQUIRE(pipe(p) == 0);
    dx_timer_init(&s.started, started_cb, &s);
    dx_io_init(&s.io, p[1], start_from_io, &s);
    CHECK_RC(dx_io_start(s.l, &s.io, DX_IO_WRITE), 0);
    CHECK_RC(dx_loop_run_once(s.l, -1), 0);
    CHECK_EQ_INT(s.fired, 0);
    CHECK(dx_timer_is_active(&s.started));
    double t0 = real_ms();
    CHECK_RC(dx_loop_run_once(s.l, 1000), 0); /* due: does not wait */
    CHECK(real_ms() - t0 < 900.0);
    CHECK_EQ_INT(s.fired, 1);
    close(p[0]);
    close(p[1]);
    dx_loop_destroy(s.l);
}

static void free_self(dx_timer *t, void *user) {
    (void)user;
    free(t); /* the loop must not touch t after the callback */
}

TEST(timer_may_free_itself_in_its_callback) {
    dx_loop *l = new_loop();
    for (int i = 0; i < 10; i++) {
        dx_timer *t = malloc(sizeof(*t));
        REQUIRE(t);
        dx_timer_init(t, free_self, NULL);
        dx_timer_start(l, t, (uint64_t)(i % 3));
    }
    CHECK_RC(dx_loop_run(l), 0);
    dx_loop_destroy(l);
}

static void never(dx_timer *t, void *user) {
    (void)t;
    (*(int *)user)++;
}

TEST(timers_start_stop_restart_never_allocate) {
    enum { N = 2000 };
    static dx_timer t[N];
    dx_fail_alloc fa;
    dx_fail_alloc_init(&fa, -1);
    dx_loop *l = NULL;
    REQUIRE(dx_loop_create(&l, &fa.a) == 0);
    long allocs = fa.allocs, live = fa.live;
    int calls = 0;
    for (int i = 0; i < N; i++) {
        dx_timer_init(&t[i], never, &calls);
        dx_timer_start(l, &t[i], 60000 + dx_test_rand() % 1000);
    }
    for (int round = 0; round < 20000; round++) {
        dx_timer *x = &t[dx_test_rand() % N];
        switch (dx_test_rand() % 3) {
        case 0:
            dx_timer_stop(l, x);
            break;
        case 1:
            dx_timer_start(l, x, 60000 + dx_test_rand() % 1000); /* restart or start */
            break;
        default:
            dx_timer_start(l, x, 60000); /* many equal deadlines */
            break;
        }
    }
    CHECK_RC(dx_loop_run_once(l, 0), 0); /* none due */
    CHECK_EQ_INT(fa.allocs, allocs);
    CHECK_EQ_INT(fa.live, live);
    CHECK_EQ_INT(calls, 0);
    for (int i = 0; i < N; i++)
        dx_timer_stop(l, &t[i]);
    CHECK_RC(dx_loop_run(l), 0); /* nothing left */
    dx_loop_destroy(l);
    CHECK_EQ_INT(fa.live, 0);
}
