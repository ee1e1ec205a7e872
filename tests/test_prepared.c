/* Prepared messages (conn.h) and dx_server_broadcast: one message compressed once
 * per permessage-deflate window and sent to many connections, on real connections
 * over 127.0.0.1 with one loop. The clients are duplex's own, whose inflater follows
 * RFC 7692 to the letter: a compressed form that refers to anything the client never
 * received, or a server compressor that was not reset after one, shows up as a
 * wrong message or a 1007 close. */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>

#define MAX_CLIENTS 8

typedef struct peer {
    int opens, closes, messages, errors;
    uint16_t close_code;
    dx_opcode last_op;
    uint8_t *last; /* a copy of the last message */
    size_t last_len;
    dx_conn *conn;
} peer;

typedef struct world {
    dx_loop *loop;
    dx_server *server;
    peer srv; /* every server connection shares it: it echoes */
    peer cli[MAX_CLIENTS];
    int num_clients;
} world;

static void p_open(dx_conn *c, void *user) {
    peer *p = user;
    p->opens++;
    p->conn = c;
}

static void p_message(dx_conn *c, dx_opcode op, dx_span data, void *user) {
    peer *p = user;
    p->messages++;
    p->last_op = op;
    free(p->last);
    p->last = malloc(data.len ? data.len : 1);
    if (data.len)
        memcpy(p->last, data.ptr, data.len);
    p->last_len = data.len;
    if (dx_conn_side(c) == DX_SIDE_SERVER)
        CHECK_RC(dx_conn_send(c, op, data), 0);
}

static void p_error(dx_conn *c, int err, void *user) {
    (void)c;
    (void)err;
    ((peer *)user)->errors++;
}

static void p_close(dx_conn *c, const dx_close_info *info, void *user) {
    (void)c;
    peer *p = user;
    p->closes++;
    p->close_code = info->code;
    if (p->conn == c)
        p->conn = NULL;
}

static const dx_conn_callbacks callbacks = {
    .on_open = p_open, .on_message = p_message, .on_error = p_error, .on_close = p_close};

static void srv_accept(dx_conn *c, const dx_ws_request *req, void *user) {
    (void)req;
    dx_conn_accept(c, NULL, user);
}

#define RUN(w, expr, ms)                                                                           \
    do {                                                                                           \
        for (int i_ = 0; i_ < (ms) && !(expr); i_++)                                               \
            dx_loop_run_once((w)->loop, 1);                                                        \
    } while (0)

static const dx_deflate_config defaults;

/* A server (@srv_cfg: its deflate config, NULL: none) and one client per entry of
 * @cli_cfgs (NULL entries: the client does not offer permessage-deflate). */
static void start(world *w, const dx_deflate_config *srv_cfg, const dx_deflate_config **cli_cfgs,
                  int n) {
    REQUIRE(n <= MAX_CLIENTS);
    REQUIRE(dx_loop_create(&w->loop, NULL) == 0);
    dx_server_options so = {
        .host = "127.0.0.1",
        .conn = {.limits.max_message = (size_t)4 << 20, .compression.deflate = srv_cfg}};
    dx_conn_callbacks cb = callbacks;
    cb.on_upgrade = srv_accept;
    REQUIRE(dx_server_create(&w->server, w->loop, &so, &cb, &w->srv) == 0);
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/", dx_server_port(w->server));
    w->num_clients = n;
    for (int i = 0; i < n; i++) {
        dx_client_options co = {
            .conn = {.limits.max_message = (size_t)4 << 20, .compression.deflate = cli_cfgs[i]}};
        dx_conn *c;
        REQUIRE(dx_client_connect(&c, w->loop, url, &co, &callbacks, &w->cli[i]) == 0);
    }
    RUN(w, w->srv.opens == n && w->cli[n - 1].opens == 1, 5000);
    for (int i = 0; i < n; i++)
        REQUIRE(w->cli[i].opens == 1);
}

static void finish(world *w) {
    for (int i = 0; i < w->num_clients; i++)
        if (w->cli[i].conn)
            dx_conn_close(w->cli[i].conn, DX_CLOSE_NORMAL, (dx_span){0});
    RUN(w, dx_server_connections(w->server) == 0, 5000);
    dx_server_destroy(w->server);
    for (int i = 0; i < 5; i++)
        dx_loop_run_once(w->loop, 0);
    dx_loop_destroy(w->loop);
    free(w->srv.last);
    for (int i = 0; i < w->num_clients; i++)
        free(w->cli[i].last);
}

/* Text that compresses well, different for each @seed. */
static uint8_t *text(size_t n, unsigned seed) {
    static const char *words[] = {"alpha ", "bravo ", "charlie ", "delta ", "echo ", "foxtrot "};
    uint8_t *p = malloc(n ? n : 1);
    size_t i = 0;
    for (unsigned k = seed; i < n; k = k * 1103515245u + 12345u) {
        const char *wd = words[(k >> 16) % 6];
        for (size_t j = 0; wd[j] && i < n; j++)
            p[i++] = (uint8_t)wd[j];
    }
    return p;
}

/* Counts what the prepared message allocates. */
typedef struct counter {
    size_t calls, live;
} counter;

static void *count_alloc(size_t size, void *ctx) {
    counter *k = ctx;
    k->calls++;
    k->live += size;
    return malloc(size);
}

static void count_free(void *ptr, size_t size, void *ctx) {
    counter *k = ctx;
    if (ptr)
        k->live -= size;
    free(ptr);
}

static bool got(const peer *p, dx_opcode op, const uint8_t *data, size_t len) {
    return p->last_op == op && p->last_len == len && (len == 0 || memcmp(p->last, data, len) == 0);
}

/* Every client sends @msg and waits for its echo (compressed with the server's
 * context, when it keeps one). */
static void echo_all(world *w, const uint8_t *msg, size_t len) {
    int before[MAX_CLIENTS];
    for (int i = 0; i < w->num_clients; i++) {
        before[i] = w->cli[i].messages;
        CHECK_RC(dx_conn_send(w->cli[i].conn, DX_OP_TEXT, (dx_span){msg, len}), 0);
    }
    for (int i = 0; i < w->num_clients; i++) {
        RUN(w, w->cli[i].messages == before[i] + 1, 5000);
        CHECK_EQ_INT(w->cli[i].messages, before[i] + 1);
        CHECK(got(&w->cli[i], DX_OP_TEXT, msg, len));
    }
}

/* Broadcast @m and check that every client received it. */
static void broadcast_all(world *w, dx_prepared *m, dx_opcode op, const uint8_t *msg, size_t len) {
    int before[MAX_CLIENTS];
    for (int i = 0; i < w->num_clients; i++)
        before[i] = w->cli[i].messages;
    size_t sent = 0;
    CHECK_RC(dx_server_broadcast(w->server, m, &sent), 0);
    CHECK_EQ_INT(sent, w->num_clients);
    for (int i = 0; i < w->num_clients; i++) {
        RUN(w, w->cli[i].messages == before[i] + 1, 5000);
        CHECK_EQ_INT(w->cli[i].messages, before[i] + 1);
        CHECK(got(&w->cli[i], op, msg, len));
    }
}

TEST(prepared_create_checks_its_arguments) {
    dx_prepared *m = NULL;
    CHECK_RC(dx_prepared_create(&m, DX_OP_PING, dx_span_cstr("x"), NULL), DX_EINVAL);
    CHECK_RC(dx_prepared_create(&m, DX_OP_CONT, dx_span_cstr("x"), NULL), DX_EINVAL);
    CHECK_RC(dx_prepared_create(&m, DX_OP_BINARY, (dx_span){NULL, 3}, NULL), DX_EINVAL);
    CHECK_RC(dx_prepared_create(NULL, DX_OP_BINARY, dx_span_cstr("x"), NULL), DX_EINVAL);
    dx_prepared_options bad = {.level = 10};
    CHECK_RC(dx_prepared_create(&m, DX_OP_BINARY, dx_span_cstr("x"), &bad), DX_EINVAL);
    bad = (dx_prepared_options){.mem_level = 10};
    CHECK_RC(dx_prepared_create(&m, DX_OP_BINARY, dx_span_cstr("x"), &bad), DX_EINVAL);
    static const uint8_t not_utf8[] = {'o', 'k', 0xC0, 0xAF};
    CHECK_RC(dx_prepared_create(&m, DX_OP_TEXT, (dx_span){not_utf8, 4}, NULL), DX_ENOT_UTF8);
    CHECK(m == NULL);
    /* the same bytes are fine as binary, and an empty message is a message */
    CHECK_RC(dx_prepared_create(&m, DX_OP_BINARY, (dx_span){not_utf8, 4}, NULL), 0);
    CHECK_EQ_INT(dx_prepared_size(m), 4);
    dx_prepared_release(m);
    CHECK_RC(dx_prepared_create(&m, DX_OP_TEXT, (dx_span){NULL, 0}, NULL), 0);
    CHECK_EQ_INT(dx_prepared_size(m), 0);
    /* references: the last release frees (ASan's leak check sees the rest) */
    CHECK(dx_prepared_ref(m) == m);
    dx_prepared_release(m);
    dx_prepared_release(m);
    dx_prepared_release(NULL);
    CHECK(dx_prepared_ref(NULL) == NULL);
    CHECK_RC(dx_conn_send_prepared(NULL, NULL), DX_EINVAL);
    CHECK_RC(dx_server_broadcast(NULL, NULL, NULL), DX_EINVAL);
}

TEST(prepared_is_compressed_once_per_window_and_keeps_context_takeover_in_step) {
    /* four clients leave the server its default window (11); two ask for 9 */
    dx_deflate_config small_window = {.server_max_window_bits = 9};
    const dx_deflate_config *cfgs[] = {&defaults, &defaults,     &small_window,
                                       &defaults, &small_window, &defaults};
    world w = {0};
    start(&w, &defaults, cfgs, 6);
    size_t n = 6000;
    uint8_t *a = text(n, 1), *b = text(n, 2);
    /* the server's compressors (context takeover, the default) now remember a */
    echo_all(&w, a, n);

    counter k = {0};
    dx_allocator counting = {count_alloc, count_free, &k};
    dx_prepared_options po = {.allocator = &counting};
    /* what one compressed form costs: a message sent to one connection */
    dx_prepared *one;
    REQUIRE(dx_prepared_create(&one, DX_OP_TEXT, (dx_span){b, n}, &po) == 0);
    size_t created = k.calls;
    /* w.srv.conn: the server connection that opened last, whichever client it serves */
    CHECK_RC(dx_conn_send_prepared(w.srv.conn, one), 0);
    size_t per_form = k.calls - created;
    CHECK(per_form > 1); /* a compressor, its buffers, the form */
    dx_prepared_release(one);
    RUN(&w, false, 50);
    int receivers = 0;
    for (int i = 0; i < w.num_clients; i++)
        receivers += got(&w.cli[i], DX_OP_TEXT, b, n);
    CHECK_EQ_INT(receivers, 1);

    /* now to all six: two windows, two forms, however many connections */
    k = (counter){0};
    dx_prepared *m;
    REQUIRE(dx_prepared_create(&m, DX_OP_TEXT, (dx_span){b, n}, &po) == 0);
    created = k.calls;
    broadcast_all(&w, m, DX_OP_TEXT, b, n);
    CHECK_EQ_INT(k.calls - created, 2 * per_form);
    /* again: nothing new is built */
    size_t after_first = k.calls;
    broadcast_all(&w, m, DX_OP_TEXT, b, n);
    CHECK_EQ_INT(k.calls, after_first);
    /* the forms are much smaller than the message */
    CHECK(k.live < sizeof(size_t) * 64 + n + 2 * (n / 4));
    dx_prepared_release(m);
    CHECK_EQ_INT(k.live, 0);

    /* a again: each server compressor was reset after the prepared message, so its
     * echo cannot refer to the a it remembers from before (which the client's window
     * no longer holds at that distance): every client decodes it */
    echo_all(&w, a, n);
    echo_all(&w, a, n);
    for (int i = 0; i < w.num_clients; i++)
        CHECK_EQ_INT(w.cli[i].errors, 0);
    CHECK_EQ_INT(w.srv.errors, 0);
    finish(&w);
    for (int i = 0; i < w.num_clients; i++)
        CHECK_EQ_INT(w.cli[i].close_code, 1000);
    free(a);
    free(b);
}

TEST(prepared_goes_plain_when_compression_is_off_small_refused_or_useless) {
    /* client 0 offers no deflate; 1 and 2 do */
    const dx_deflate_config *cfgs[] = {NULL, &defaults, &defaults};
    world w = {0};
    start(&w, &defaults, cfgs, 3);
    counter k = {0};
    dx_allocator counting = {count_alloc, count_free, &k};
    dx_prepared_options po = {.allocator = &counting};

    /* below compression.min_size (64 B): never compressed, no form built */
    dx_prepared *m;
    REQUIRE(dx_prepared_create(&m, DX_OP_TEXT, dx_span_cstr("short and sweet"), &po) == 0);
    size_t created = k.calls;
    broadcast_all(&w, m, DX_OP_TEXT, (const uint8_t *)"short and sweet", 15);
    CHECK_EQ_INT(k.calls, created);
    dx_prepared_release(m);

    /* DX_SEND_NO_COMPRESS: no form either */
    uint8_t *t = text(4000, 3);
    po.flags = DX_SEND_NO_COMPRESS;
    REQUIRE(dx_prepared_create(&m, DX_OP_TEXT, (dx_span){t, 4000}, &po) == 0);
    created = k.calls;
    broadcast_all(&w, m, DX_OP_TEXT, t, 4000);
    CHECK_EQ_INT(k.calls, created);
    dx_prepared_release(m);
    po.flags = 0;

    /* random bytes do not compress: the form records that, and they go plain */
    size_t n = 3000;
    uint8_t *r = malloc(n);
    for (size_t i = 0; i < n; i++)
        r[i] = (uint8_t)dx_test_rand();
    REQUIRE(dx_prepared_create(&m, DX_OP_BINARY, (dx_span){r, n}, &po) == 0);
    created = k.calls;
    broadcast_all(&w, m, DX_OP_BINARY, r, n);
    CHECK(k.calls > created);
    CHECK(k.live < sizeof(size_t) * 64 + n + 256); /* no compressed copy is kept */
    broadcast_all(&w, m, DX_OP_BINARY, r, n);
    dx_prepared_release(m);
    CHECK_EQ_INT(k.live, 0);

    /* an empty message */
    REQUIRE(dx_prepared_create(&m, DX_OP_BINARY, (dx_span){NULL, 0}, &po) == 0);
    broadcast_all(&w, m, DX_OP_BINARY, NULL, 0);
    dx_prepared_release(m);

    /* a context-takeover echo after all of that still decodes */
    echo_all(&w, t, 4000);
    for (int i = 0; i < w.num_clients; i++)
        CHECK_EQ_INT(w.cli[i].errors, 0);
    finish(&w);
    free(t);
    free(r);
}

TEST(prepared_from_a_client_is_masked_and_compressed) {
    const dx_deflate_config *cfgs[] = {&defaults, NULL};
    world w = {0};
    start(&w, &defaults, cfgs, 2);
    size_t n = 20000;
    uint8_t *a = text(n, 6), *b = text(n, 4);
    echo_all(&w, a, n); /* the client's compressor remembers a */
    dx_prepared *m;
    REQUIRE(dx_prepared_create(&m, DX_OP_TEXT, (dx_span){b, n}, NULL) == 0);
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 2; i++) {
            int before = w.cli[i].messages;
            CHECK_RC(dx_conn_send_prepared(w.cli[i].conn, m), 0);
            RUN(&w, w.cli[i].messages == before + 1, 5000);
            CHECK(got(&w.cli[i], DX_OP_TEXT, b, n)); /* the server's echo */
        }
    dx_prepared_release(m);
    /* and the client's own compressor was reset: its next message still inflates */
    echo_all(&w, a, n);
    CHECK_EQ_INT(w.srv.errors + w.cli[0].errors + w.cli[1].errors, 0);
    finish(&w);
    free(a);
    free(b);
}

TEST(prepared_send_is_refused_like_any_send) {
    const dx_deflate_config *cfgs[] = {&defaults};
    world w = {0};
    start(&w, &defaults, cfgs, 1);
    uint8_t *b = text(1000, 5);
    dx_prepared *m;
    REQUIRE(dx_prepared_create(&m, DX_OP_TEXT, (dx_span){b, 1000}, NULL) == 0);
    dx_conn *c = w.cli[0].conn;
    CHECK_RC(dx_conn_close(c, DX_CLOSE_NORMAL, (dx_span){0}), 0);
    CHECK_RC(dx_conn_send_prepared(c, m), DX_ECLOSED);
    RUN(&w, w.cli[0].closes == 1, 5000);
    /* the server side has gone too: nobody to broadcast to */
    RUN(&w, dx_server_connections(w.server) == 0, 5000);
    size_t sent = 1;
    CHECK_RC(dx_server_broadcast(w.server, m, &sent), 0);
    CHECK_EQ_INT(sent, 0);
    dx_prepared_release(m);
    finish(&w);
    free(b);
}

/* ---- the payload is held once ------------------------------------------------------ */

#include "net_util.h"

/* Issue 10's promise: a broadcast to N connections that do not read holds its
 * payload once in user space. 32 raw peers with a 4 KiB receive buffer never read;
 * 8 broadcasts of 64 KiB each (plain, then compressed) stay queued on every
 * connection, and the memory the loop's allocator holds for them grows by far less
 * than one copy per connection. */
static dx_conn *held[64];
static int num_held;

static void hold_open(dx_conn *c, void *user) {
    nu_on_open(c, user);
    held[num_held++] = c;
}

TEST(prepared_broadcast_holds_the_payload_once_whatever_the_readers) {
    enum { N = 32, ROUNDS = 8, SIZE = 64 << 10 };
    dx_fail_alloc fa;
    dx_fail_alloc_init(&fa, -1);
    dx_loop *l = NULL;
    REQUIRE(dx_loop_create(&l, &fa.a) == 0);
    nu_rec r = {0};
    num_held = 0;
    dx_server_options o = {.conn.send = {.max_queue = (size_t)ROUNDS * SIZE * 2,
                                         .sndbuf = 4096}}; /* the kernel keeps little */
    dx_conn_callbacks cb = nu_callbacks;
    cb.on_open = hold_open;
    dx_server *s = NULL;
    REQUIRE(nu_server(&s, l, &o, &cb, &r) == 0);
    int fds[N];
    for (int i = 0; i < N; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int small = 4096;
        setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(dx_server_port(s))};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(connect(fds[i], (struct sockaddr *)&a, sizeof a) == 0);
        char req[512];
        nu_request(req, sizeof req, "/", NULL);
        CHECK(nu_send_str(fds[i], req));
    }
    CHECK_RUN_UNTIL(l, r.opens == N, 5000);
    nu_run_for(l, 50);
    size_t before = fa.live_bytes;
    uint8_t *msg = malloc(SIZE);
    for (size_t i = 0; i < SIZE; i++)
        msg[i] = (uint8_t)(i * 13);
    for (int k = 0; k < ROUNDS; k++) {
        dx_prepared *m;
        dx_prepared_options po = {.allocator = &fa.a}; /* its frames are counted too */
        REQUIRE(dx_prepared_create(&m, DX_OP_BINARY, (dx_span){msg, SIZE}, &po) == 0);
        size_t sent = 0;
        CHECK_RC(dx_server_broadcast(s, m, &sent), 0);
        CHECK_EQ_INT(sent, N);
        dx_prepared_release(m);
        dx_loop_run_once(l, 0); /* written as far as the sockets take */
    }
    nu_run_for(l, 50);
    size_t grown = fa.live_bytes - before, queued = 0;
    for (int i = 0; i < num_held; i++)
        queued += dx_conn_buffered_amount(held[i]);
    size_t once = (size_t)ROUNDS * SIZE; /* each message held once */
    printf("    %d conns x %d x %d B: %zu B queued in user space, memory grew %zu B "
           "(%.2f x one copy of each message)\n",
           N, ROUNDS, SIZE, queued, grown, (double)grown / (double)once);
    CHECK(queued > (size_t)N * SIZE);               /* most of it waits in user space */
    CHECK(grown < once + (size_t)N * ROUNDS * 512); /* held once, plus small change per send */
    for (int i = 0; i < N; i++)
        close(fds[i]);
    CHECK_RUN_UNTIL(l, r.closes == N, 5000);
    dx_server_destroy(s);
    nu_loop_finish(l);
    free(msg);
    CHECK_EQ_INT(fa.live, 0);
}
