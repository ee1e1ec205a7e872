/* The event loop: fd watchers on real fds, run/stop, before-poll hooks, deferred
 * frees, EINTR, and create's cleanup paths. */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static dx_loop *new_loop(void) {
    dx_loop *l = NULL;
    if (dx_loop_create(&l, NULL) != 0)
        abort();
    return l;
}

static void make_pair(int sv[2]) {
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
        abort();
}

/* A watcher that records what it saw. */
typedef struct rec {
    dx_io io;
    int calls;
    unsigned last;
    char got[64];
    ssize_t nread;
} rec;

static void rec_cb(dx_io *w, unsigned events, void *user) {
    rec *r = user;
    CHECK(w == &r->io);
    r->calls++;
    r->last = events;
    if (events & DX_IO_READ)
        r->nread = read(w->fd, r->got, sizeof(r->got));
}

TEST(io_socketpair_write_then_read_readiness) {
    dx_loop *l = new_loop();
    int sv[2];
    make_pair(sv);
    rec r = {0};
    dx_io_init(&r.io, sv[0], rec_cb, &r);
    CHECK_RC(dx_io_start(l, &r.io, DX_IO_WRITE), 0);
    CHECK(dx_io_is_active(&r.io));
    CHECK_RC(dx_loop_run_once(l, 1000), 0);
    CHECK_EQ_INT(r.calls, 1);
    CHECK_EQ_INT(r.last, DX_IO_WRITE); /* writable, nothing to read */

    CHECK_RC(dx_io_modify(l, &r.io, DX_IO_READ), 0);
    CHECK_RC(dx_loop_run_once(l, 0), 0);
    CHECK_EQ_INT(r.calls, 1); /* nothing to read yet */

    CHECK_EQ_INT(write(sv[1], "hello", 5), 5);
    CHECK_RC(dx_loop_run_once(l, -1), 0);
    CHECK_EQ_INT(r.calls, 2);
    CHECK_EQ_INT(r.last, DX_IO_READ);
    CHECK_EQ_INT(r.nread, 5);
    CHECK_MEM(r.got, "hello", 5);

    CHECK_RC(dx_io_modify(l, &r.io, DX_IO_READ | DX_IO_WRITE), 0);
    CHECK_EQ_INT(write(sv[1], "x", 1), 1);
    CHECK_RC(dx_loop_run_once(l, -1), 0);
    CHECK_EQ_INT(r.calls, 3);
    CHECK_EQ_INT(r.last, DX_IO_READ | DX_IO_WRITE);

    dx_io_stop(l, &r.io);
    CHECK(!dx_io_is_active(&r.io));
    CHECK_EQ_INT(write(sv[1], "y", 1), 1);
    CHECK_RC(dx_loop_run_once(l, 0), 0);
    CHECK_EQ_INT(r.calls, 3); /* stopped: no more callbacks */
    close(sv[0]);
    close(sv[1]);
    dx_loop_destroy(l);
}

TEST(io_peer_shutdown_is_delivered_as_read_eof) {
    dx_loop *l = new_loop();
    int sv[2];
    make_pair(sv);
    rec r = {0};
    dx_io_init(&r.io, sv[0], rec_cb, &r);
    CHECK_RC(dx_io_start(l, &r.io, DX_IO_READ), 0);
    CHECK_EQ_INT(shutdown(sv[1], SHUT_WR), 0);
    CHECK_RC(dx_loop_run_once(l, -1), 0);
    CHECK_EQ_INT(r.calls, 1);
    CHECK_EQ_INT(r.last, DX_IO_READ);
    CHECK_EQ_INT(r.nread, 0); /* EOF */
    dx_io_stop(l, &r.io);
    close(sv[0]);
    close(sv[1]);
    dx_loop_destroy(l);
}

TEST(io_peer_close_is_delivered_as_read_eof) {
    dx_loop *l = new_loop();
    int sv[2];
    make_pair(sv);
    rec r = {0};
    dx_io_init(&r.io, sv[0], rec_cb, &r);
    CHECK_RC(dx_io_start(l, &r.io, DX_IO_READ), 0);
    CHECK_EQ_INT(write(sv[1], "ab", 2), 2);
    close(sv[1]);
    CHECK_RC(dx_loop_run_once(l, -1), 0);
    CHECK_EQ_INT(r.last, DX_IO_READ);
    CHECK_EQ_INT(r.nread, 2); /* data first */
    CHECK_RC(dx_loop_run_once(l, -1), 0);
    CHECK_EQ_INT(r.calls, 2);
    CHECK_EQ_INT(r.last, DX_IO_READ);
    CHECK_EQ_INT(r.nread, 0); /* then EOF */
    dx_io_stop(l, &r.io);
    close(sv[0]);
    dx_loop_destroy(l);
}

TEST(io_write_only_watcher_sees_broken_pipe_as_write) {
    dx_loop *l = new_loop();
    int p[2];
    REQUIRE(pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0);
    rec r = {0};
    dx_io_init(&r.io, p[1], rec_cb, &r);
    CHECK_RC(dx_io_start(l, &r.io, DX_IO_WRITE), 0);
    close(p[0]); /* EPOLLERR on the write end */
    CHECK_RC(dx_loop_run_once(l, -1), 0);
    CHECK_EQ_INT(r.calls, 1);
    CHECK_EQ_INT(r.last, DX_IO_WRITE); /* the writer meets EPIPE in write() */
    dx_io_stop(l, &r.io);
    close(p[1]);
    dx_loop_destroy(l);
}

TEST(io_start_modify_errors) {
    dx_loop *l = new_loop();
    int sv[2];
    make_pair(sv);
    rec r = {0}, r2 = {0};
    dx_io_init(&r.io, sv[0], rec_cb, &r);
    CHECK_RC(dx_io_start(l, &r.io, 0), DX_EINVAL);
    CHECK_RC(dx_io_start(l, &r.io, 4), DX_EINVAL);
    CHECK(!dx_io_is_active(&r.io));
    CHECK_RC(dx_io_modify(l, &r.io, DX_IO_READ), DX_ESTATE); /* not started */
    CHECK_RC(dx_io_start(l, &r.io, DX_IO_READ), 0);
    CHECK_RC(dx_io_start(l, &r.io, DX_IO_READ), DX_ESTATE);
    CHECK_RC(dx_io_modify(l, &r.io, 0), DX_EINVAL);
    dx_io_init(&r2.io, sv[0], rec_cb, &r2); /* same fd, second watcher */
    CHECK_RC(dx_io_start(l, &r2.io, DX_IO_READ), -EEXIST);
    CHECK(!dx_io_is_active(&r2.io));
    dx_io_stop(l, &r2.io); /* stopped: a no-op */
    dx_io_stop(l, &r.io);
    dx_io_stop(l, &r.io); /* twice: a no-op */

    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    dx_io_init(&r.io, fd, rec_cb, &r);
    CHECK_RC(dx_io_start(l, &r.io, DX_IO_READ), -EPERM); /* epoll refuses files */
    CHECK(!dx_io_is_active(&r.io));
    close(fd);
    dx_io_init(&r.io, 12345, rec_cb, &r);
    CHECK_RC(dx_io_start(l, &r.io, DX_IO_READ), -EBADF);
    CHECK_EQ_INT(dx_loop_run(l), 0); /* nothing left: returns at once */
    close(sv[0]);
    close(sv[1]);
    dx_loop_destroy(l);
}

/* Two ready watchers: whichever is called first stops and frees the other. */
typedef struct peer {
    dx_io io;
    struct peer **other; /* slot holding the other watcher, NULL once freed */
    struct peer **self;
    int *calls;
} peer;

static void peer_cb(dx_io *w, unsigned events, void *user) {
    peer *p = user;
    (void)w;
    CHECK_EQ_INT(events, DX_IO_READ);
    (*p->calls)++;
    if (*p->other) {
        dx_io_stop((*p->other)->io.loop, &(*p->other)->io);
        free(*p->other); /* freed at once: the loop must not touch it again */
        *p->other = NULL;
    }
}

TEST(io_watcher_stopped_by_earlier_callback_in_same_batch_is_not_called) {
    dx_loop *l = new_loop();
    int a[2], b[2];
    make_pair(a);
    make_pair(b);
    peer *pa = calloc(1, sizeof(*pa)), *pb = calloc(1, sizeof(*pb));
    REQUIRE(pa && pb);
    int calls = 0;
    pa->other = &pb;
    pa->self = &pa;
    pa->calls = &calls;
    pb->other = &pa;
    pb->self = &pb;
    pb->calls = &calls;
    dx_io_init(&pa->io, a[0], peer_cb, pa);
    dx_io_init(&pb->io, b[0], peer_cb, pb);
    CHECK_RC(dx_io_start(l, &pa->io, DX_IO_READ), 0);
    CHECK_RC(dx_io_start(l, &pb->io, DX_IO_READ), 0);
    /* both readable before the wait, so one epoll batch holds both */
    CHECK_EQ_INT(write(a[1], "1", 1), 1);
    CHECK_EQ_INT(write(b[1], "2", 1), 1);
    CHECK_RC(dx_loop_run_once(l, -1), 0);
    CHECK_EQ_INT(calls, 1);
    CHECK((pa == NULL) != (pb == NULL)); /* exactly one survived */
    peer *left = pa ? pa : pb;
    CHECK_RC(dx_loop_run_once(l, 0), 0); /* still readable: called again */
    CHECK_EQ_INT(calls, 2);
    dx_io_stop(l, &left->io);
    free(left);
    CHECK_EQ_INT(dx_loop_run(l), 0);
    close(a[0]);
    close(a[1]);
    close(b[0]);
    close(b[1]);
    dx_loop_destroy(l);
}

/* A callback that stops its own watcher and starts it again on another fd. */
typedef struct hopper {
    dx_io io;
    int fds[2];
    int calls;
} hopper;

static void hopper_cb(dx_io *w, unsigned events, void *user) {
    hopper *h = user;
    dx_loop *l = w->loop;
    (void)events;
    h->calls++;
    dx_io_stop(l, w);
    dx_io_init(w, h->fds[h->calls % 2], hopper_cb, h);
    CHECK_RC(dx_io_start(l, w, DX_IO_READ), 0);
}

TEST(io_restart_inside_callback_gets_no_stale_event) {
    dx_loop *l = new_loop();
    int a[2], b[2];
    make_pair(a);
    make_pair(b);
    hopper h = {.fds = {a[0], b[0]}};
    dx_io_init(&h.io, a[0], hopper_cb, &h);
    CHECK_RC(dx_io_start(l, &h.io, DX_IO_READ), 0);
    CHECK_EQ_INT(write(a[1], "1", 1), 1);
    CHECK_RC(dx_loop_run_once(l, -1), 0);
    CHECK_EQ_INT(h.calls, 1);
    CHECK_EQ_INT(h.io.fd, b[0]);
    CHECK_RC(dx_loop_run_once(l, 0), 0);
    CHECK_EQ_INT(h.calls, 1); /* b is not readable, a is no longer watched */
    CHECK_EQ_INT(write(b[1], "2", 1), 1);
    CHECK_RC(dx_loop_run_once(l, -1), 0);
    CHECK_EQ_INT(h.calls, 2);
    CHECK_EQ_INT(h.io.fd, a[0]); /* back on a, which still holds its byte */
    dx_io_stop(l, &h.io);
    close(a[0]);
    close(a[1]);
    close(b[0]);
    close(b[1]);
    dx_loop_destroy(l);
}

static void stop_loop_cb(dx_io *w, unsigned events, void *user) {
    int *calls = user;
    (void)events;
    (*calls)++;
    dx_loop_stop(w->loop);
}

TEST(loop_stop_inside_callback_ends_run_after_the_iteration) {
    dx_loop *l = new_loop();
    int sv[2];
    make_pair(sv);
    int calls = 0;
    dx_io w;
    dx_io_init(&w, sv[0], stop_loop_cb, &calls);
    CHECK_RC(dx_io_start(l, &w, DX_IO_WRITE), 0); /* always ready */
    CHECK_RC(dx_loop_run(l), 0);
    CHECK_EQ_INT(calls, 1);
    CHECK_RC(dx_loop_run(l), 0); /* the request was cleared: runs again */
    CHECK_EQ_INT(calls, 2);
    dx_loop_stop(l); /* before run: returns at once */
    CHECK_RC(dx_loop_run(l), 0);
    CHECK_EQ_INT(calls, 2);
    dx_io_stop(l, &w);
    close(sv[0]);
    close(sv[1]);
    dx_loop_destroy(l);
}

/* ---- before-poll hooks -------------------------------------------------------- */

typedef struct hook_log {
    char s[64];
    size_t n;
    dx_hook *to_stop;  /* stopped by hook 'a' */
    dx_hook *to_start; /* started by hook 'a' */
} hook_log;

static void hook_a(dx_loop *l, dx_hook *h, void *user) {
    hook_log *g = user;
    (void)h;
    g->s[g->n++] = 'a';
    if (g->to_stop) {
        dx_hook_stop(l, g->to_stop);
        g->to_stop = NULL;
    }
    if (g->to_start) {
        dx_hook_start(l, g->to_start);
        g->to_start = NULL;
    }
}

static void hook_b(dx_loop *l, dx_hook *h, void *user) {
    hook_log *g = user;
    (void)l;
    (void)h;
    g->s[g->n++] = 'b';
}

static void hook_c(dx_loop *l, dx_hook *h, void *user) {
    hook_log *g = user;
    (void)l;
    (void)h;
    g->s[g->n++] = 'c';
}

TEST(hooks_run_before_each_poll_in_start_order) {
    dx_loop *l = new_loop();
    hook_log g = {{0}, 0, NULL, NULL};
    dx_hook a, b, c;
    dx_hook_init(&a, hook_a, &g);
    dx_hook_init(&b, hook_b, &g);
    dx_hook_init(&c, hook_c, &g);
    dx_hook_start(l, &a);
    dx_hook_start(l, &b);
    dx_hook_start(l, &b); /* no-op */
    CHECK_RC(dx_loop_run_once(l, 0), 0);
    CHECK_RC(dx_loop_run_once(l, 0), 0);
    CHECK_EQ_INT(g.n, 4);
    CHECK_MEM(g.s, "abab", 4);

    /* a stops b, which would run next: b does not run */
    g.n = 0;
    g.to_stop = &b;
    CHECK_RC(dx_loop_run_once(l, 0), 0);
    CHECK_EQ_INT(g.n, 1);
    CHECK_MEM(g.s, "a", 1);

    /* a starts c: c waits for the next iteration */
    g.n = 0;
    g.to_start = &c;
    CHECK_RC(dx_loop_run_once(l, 0), 0);
    CHECK_EQ_INT(g.n, 1);
    CHECK_RC(dx_loop_run_once(l, 0), 0);
    CHECK_EQ_INT(g.n, 3);
    CHECK_MEM(g.s, "aac", 3);
    dx_hook_stop(l, &a);
    dx_hook_stop(l, &c);
    dx_hook_stop(l, &c);
    g.n = 0;
    CHECK_RC(dx_loop_run_once(l, 0), 0);
    CHECK_EQ_INT(g.n, 0);
    dx_loop_destroy(l);
}

/* The cork pattern: a send only buffers; the hook flushes once before the poll. */
typedef struct corked {
    dx_hook hook;
    int fd;
    char buf[32];
    size_t len;
    int flushes;
} corked;

static void cork_flush(dx_loop *l, dx_hook *h, void *user) {
    corked *c = user;
    (void)h;
    if (c->len) {
        CHECK_EQ_INT(write(c->fd, c->buf, c->len), (ssize_t)c->len);
        c->len = 0;
        c->flushes++;
    }
    dx_hook_stop(l, &c->hook);
}

static void cork_send(dx_loop *l, corked *c, const char *s) {
    memcpy(c->buf + c->len, s, strlen(s));
    c->len += strlen(s);
    dx_hook_start(l, &c->hook);
}

static void cork_reader(dx_io *w, unsigned events, void *user) {
    corked *c = user;
    (void)events;
    char tmp[8];
    CHECK_EQ_INT(read(w->fd, tmp, sizeof(tmp)), 1);
    cork_send(w->loop, c, "one ");
    cork_send(w->loop, c, "two");
}

TEST(hooks_cork_sends_from_callbacks_flush_once_before_poll) {
    dx_loop *l = new_loop();
    int sv[2];
    make_pair(sv);
    corked c = {.fd = sv[0]};
    dx_hook_init(&c.hook, cork_flush, &c);
    dx_io r;
    dx_io_init(&r, sv[0], cork_reader, &c);
    CHECK_RC(dx_io_start(l, &r, DX_IO_READ), 0);
    CHECK_EQ_INT(write(sv[1], "?", 1), 1);
    CHECK_RC(dx_loop_run_once(l, -1), 0); /* reader sends twice, nothing written yet */
    char out[32];
    CHECK_EQ_INT(read(sv[1], out, sizeof(out)), -1);
    CHECK_RC(dx_loop_run_once(l, 0), 0); /* the hook flushes both in one write */
    CHECK_EQ_INT(c.flushes, 1);
    CHECK_EQ_INT(read(sv[1], out, sizeof(out)), 7);
    CHECK_MEM(out, "one two", 7);
    dx_io_stop(l, &r);
    close(sv[0]);
    close(sv[1]);
    dx_loop_destroy(l);
}

/* ---- deferred work -------------------------------------------------------------- */

typedef struct conn {
    dx_io io;
    dx_timer timer;
    dx_defer free_me;
    char *log; /* shared order log */
    bool closed;
} conn;

static void logc(char *log, char c) {
    size_t n = strlen(log);
    log[n] = c;
    log[n + 1] = '\0';
}

static void conn_free(dx_defer *d, void *user) {
    conn *c = user;
    CHECK(d == &c->free_me);
    CHECK(!dx_defer_is_queued(d));
    logc(c->log, 'F');
    free(c);
}

static void conn_close(dx_loop *l, conn *c) {
    if (c->closed)
        return;
    c->closed = true;
    dx_io_stop(l, &c->io);
    dx_timer_stop(l, &c->timer);
    CHECK_RC(dx_loop_defer(l, &c->free_me, conn_free, c), 0);
    CHECK(dx_defer_is_queued(&c->free_me));
    CHECK_RC(dx_loop_defer(l, &c->free_me, conn_free, c), DX_ESTATE);
}

static void conn_io(dx_io *w, unsigned events, void *user) {
    conn *c = user;
    (void)events;
    logc(c->log, 'I');
    conn_close(w->loop, c);
    /* still usable until the end of the iteration */
    CHECK(c->closed);
}

static void conn_timer(dx_timer *t, void *user) {
    conn *c = user;
    (void)t;
    logc(c->log, 'T');
}

static void plain_timer(dx_timer *t, void *user) {
    (void)t;
    logc(user, 't');
}

TEST(defer_frees_object_closed_in_callback_after_the_iteration) {
    dx_loop *l = new_loop();
    int sv[2];
    make_pair(sv);
    char log[32] = "";
    conn *c = calloc(1, sizeof(*c));
    REQUIRE(c);
    c->log = log;
    dx_io_init(&c->io, sv[0], conn_io, c);
    dx_timer_init(&c->timer, conn_timer, c);
    dx_timer other;
    dx_timer_init(&other, plain_timer, log);
    CHECK_RC(dx_io_start(l, &c->io, DX_IO_WRITE), 0);
    dx_timer_start(l, &c->timer, 0);
    dx_timer_start(l, &other, 0);
    CHECK_RC(dx_loop_run_once(l, -1), 0);
    /* io closes c (its timer must not fire), the other timer fires, then the free */
    CHECK(strcmp(log, "ItF") == 0);
    CHECK_RC(dx_loop_run(l), 0); /* nothing left */
    close(sv[0]);
    close(sv[1]);
    dx_loop_destroy(l);
}

static dx_loop *g_loop;

static void defer_requeue(dx_defer *d, void *user) {
    int *n = user;
    (*n)++;
    if (*n < 3)
        CHECK_RC(dx_loop_defer(g_loop, d, defer_requeue, user), 0); /* runs next iteration */
}

TEST(defer_queued_from_deferred_runs_next_iteration_without_blocking) {
    dx_loop *l = new_loop();
    g_loop = l;
    int n = 0;
    dx_defer d = {0};
    CHECK(!dx_defer_is_queued(&d));
    CHECK_RC(dx_loop_defer(l, &d, defer_requeue, &n), 0);
    CHECK_RC(dx_loop_run_once(l, -1), 0); /* does not block: deferred work pending */
    CHECK_EQ_INT(n, 1);
    CHECK_RC(dx_loop_run_once(l, -1), 0);
    CHECK_EQ_INT(n, 2);
    CHECK_RC(dx_loop_run(l), 0); /* deferred work keeps run going */
    CHECK_EQ_INT(n, 3);
    CHECK(!dx_defer_is_queued(&d));
    dx_loop_destroy(l);
}

static void count_defer(dx_defer *d, void *user) {
    (void)d;
    (*(int *)user)++;
}

TEST(destroy_runs_pending_deferred_calls) {
    dx_loop *l = new_loop();
    int n = 0;
    dx_defer d1 = {0}, d2 = {0};
    CHECK_RC(dx_loop_defer(l, &d1, count_defer, &n), 0);
    CHECK_RC(dx_loop_defer(l, &d2, count_defer, &n), 0);
    CHECK_RC(dx_loop_defer(l, &d1, NULL, &n), DX_EINVAL);
    dx_loop_destroy(l);
    CHECK_EQ_INT(n, 2);
    dx_loop_destroy(NULL); /* no-op */
}

/* ---- EINTR ---------------------------------------------------------------------- */

static void on_sigusr1(int sig) {
    (void)sig;
}

typedef struct kicker {
    pthread_t target;
    volatile int done;
} kicker;

static void *kick_thread(void *arg) {
    kicker *k = arg;
    struct timespec ts = {0, 2 * 1000 * 1000};
    while (!__atomic_load_n(&k->done, __ATOMIC_ACQUIRE)) {
        pthread_kill(k->target, SIGUSR1);
        nanosleep(&ts, NULL);
    }
    return NULL;
}

TEST(loop_wait_interrupted_by_signal_is_an_empty_iteration) {
    struct sigaction sa, old;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigusr1; /* no SA_RESTART: epoll_wait fails with EINTR */
    sigemptyset(&sa.sa_mask);
    REQUIRE(sigaction(SIGUSR1, &sa, &old) == 0);
    dx_loop *l = new_loop();
    kicker k = {pthread_self(), 0};
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, kick_thread, &k) == 0);
    /* no fd, no timer: only a signal can end this wait */
    CHECK_RC(dx_loop_run_once(l, -1), 0);
    __atomic_store_n(&k.done, 1, __ATOMIC_RELEASE);
    pthread_join(th, NULL);
    dx_loop_destroy(l);
    sigaction(SIGUSR1, &old, NULL);
}

/* ---- create's cleanup paths ------------------------------------------------------ */

TEST(create_with_failing_allocator_walks_every_cleanup_path) {
    long needed = -1;
    for (long n = 0; n < 16; n++) {
        dx_fail_alloc fa;
        dx_fail_alloc_init(&fa, n);
        dx_loop *l = (dx_loop *)&fa; /* sentinel: must stay untouched on failure */
        int rc = dx_loop_create(&l, &fa.a);
        if (rc == 0) {
            needed = n;
            CHECK(l != (dx_loop *)&fa);
            CHECK_RC(dx_loop_run_once(l, 0), 0);
            dx_loop_destroy(l);
            CHECK_EQ_INT(fa.live, 0);
            CHECK(!fa.size_mismatch);
            break;
        }
        CHECK_RC(rc, DX_ENOMEM);
        CHECK(l == (dx_loop *)&fa);
        CHECK_EQ_INT(fa.live, 0);
        CHECK_EQ_INT(fa.live_bytes, 0);
    }
    CHECK_EQ_INT(needed, 3); /* the loop and the inbox's two arrays */
}

/* The lowest free fd number: the next fd the kernel will hand out. */
static int lowest_free_fd(void) {
    int fd = dup(0);
    if (fd < 0)
        abort();
    close(fd);
    return fd;
}

TEST(create_out_of_fds_closes_what_it_opened) {
    struct rlimit old;
    REQUIRE(getrlimit(RLIMIT_NOFILE, &old) == 0);
    int k = lowest_free_fd();
    /* limit k: epoll_create1 fails; limit k + 1: epoll gets fd k, eventfd fails */
    for (int extra = 0; extra <= 1; extra++) {
        struct rlimit lim = {(rlim_t)(k + extra), old.rlim_max};
        REQUIRE(setrlimit(RLIMIT_NOFILE, &lim) == 0);
        dx_fail_alloc fa;
        dx_fail_alloc_init(&fa, -1);
        dx_loop *l = (dx_loop *)&fa;
        int rc = dx_loop_create(&l, &fa.a);
        setrlimit(RLIMIT_NOFILE, &old);
        CHECK_RC(rc, -EMFILE);
        CHECK(l == (dx_loop *)&fa);
        CHECK_EQ_INT(fa.live, 0);
        CHECK_EQ_INT(lowest_free_fd(), k); /* nothing left open */
    }
}
