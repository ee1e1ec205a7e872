/*
 * Robustness of the server on one loop: a thousand concurrent clients, slow
 * handshakes (slowloris), a peer that floods and never reads, resets in the middle
 * of a frame, and garbage instead of a handshake. After each abuse a normal client
 * must still be served.
 */
#include "net_util.h"

#include <sys/resource.h>

/* A normal client opens, gets its echo and closes cleanly: the server still serves. */
static void check_still_serving(dx_loop *l, uint16_t port) {
    char url[64];
    nu_url(url, sizeof url, port, "/ok");
    nu_rec *r = calloc(1, sizeof(nu_rec));
    dx_conn *c = NULL;
    CHECK_RC(dx_client_connect(&c, l, url, NULL, &nu_callbacks, r), 0);
    CHECK_RUN_UNTIL(l, r->opens == 1, 3000);
    if (r->opens)
        dx_conn_send_text(c, dx_span_cstr("are you there"));
    CHECK_RUN_UNTIL(l, r->messages == 1, 3000);
    CHECK(strcmp(r->seq, "are you there|") == 0);
    dx_conn_close(c, 1000, (dx_span){0});
    CHECK_RUN_UNTIL(l, r->closes == 1, 3000);
    CHECK(r->clean);
    free(r);
}

/* ---- a thousand clients ----------------------------------------------------------------- */

typedef struct many {
    int opens, echoes, closes, clean, bad;
    dx_conn **conns;
    int n;
} many;

typedef struct one {
    many *m;
    int id;
} one;

static void many_open(dx_conn *c, void *user) {
    one *o = user;
    o->m->opens++;
    char msg[32];
    snprintf(msg, sizeof msg, "client %d", o->id);
    if (dx_conn_send_text(c, dx_span_cstr(msg)) != 0)
        o->m->bad++;
}

static void many_message(dx_conn *c, dx_opcode op, dx_span data, void *user) {
    (void)c;
    one *o = user;
    char msg[32];
    snprintf(msg, sizeof msg, "client %d", o->id);
    if (op != DX_OP_TEXT || !dx_span_eq(data, dx_span_cstr(msg)))
        o->m->bad++;
    o->m->echoes++;
}

static void many_close(dx_conn *c, const dx_close_info *info, void *user) {
    (void)c;
    one *o = user;
    o->m->closes++;
    o->m->clean += info->clean && info->code == 1000;
    o->m->conns[o->id] = NULL;
}

static void srv_echo(dx_conn *c, dx_opcode op, dx_span data, void *user) {
    (void)user;
    dx_conn_send(c, op, data);
}

static void srv_close(dx_conn *c, const dx_close_info *info, void *user) {
    (void)c;
    int *clean = user;
    *clean += info->clean;
}

TEST(robust_a_thousand_concurrent_clients_on_one_loop) {
    enum { N = 1000 };
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 2100) {
        printf("    skipped: the fd hard limit is %llu (< 2100)\n",
               (unsigned long long)rl.rlim_max);
        return;
    }
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    dx_loop *l = nu_loop();
    int srv_clean = 0;
    dx_server_options o = {.backlog = 2048};
    dx_conn_callbacks srv_cb = {.on_message = srv_echo, .on_close = srv_close};
    dx_server *s = NULL;
    REQUIRE(nu_server(&s, l, &o, &srv_cb, &srv_clean) == 0);
    char url[64];
    nu_url(url, sizeof url, dx_server_port(s), "/many");
    many m = {.n = N};
    m.conns = calloc(N, sizeof(dx_conn *));
    one *ones = calloc(N, sizeof(one));
    static const dx_conn_callbacks cb = {
        .on_open = many_open, .on_message = many_message, .on_close = many_close};
    uint64_t t0 = nu_now_ms();
    for (int i = 0; i < N; i++) {
        ones[i] = (one){.m = &m, .id = i};
        CHECK_RC(dx_client_connect(&m.conns[i], l, url, NULL, &cb, &ones[i]), 0);
    }
    RUN_UNTIL(l, m.echoes == N || m.closes > 0, 15000);
    uint64_t t1 = nu_now_ms();
    CHECK_EQ_INT(m.opens, N);
    CHECK_EQ_INT(m.echoes, N);
    CHECK_EQ_INT(m.closes, 0);
    CHECK_EQ_INT(dx_server_connections(s), N); /* all open at once */
    for (int i = 0; i < N; i++)
        if (m.conns[i])
            dx_conn_close(m.conns[i], 1000, (dx_span){0});
    RUN_UNTIL(l, m.closes == N && srv_clean == N, 15000);
    printf("    %d clients opened and echoed in %llu ms, closed in %llu ms\n", N,
           (unsigned long long)(t1 - t0), (unsigned long long)(nu_now_ms() - t1));
    CHECK_EQ_INT(m.closes, N);
    CHECK_EQ_INT(m.clean, N);
    CHECK_EQ_INT(srv_clean, N);
    CHECK_EQ_INT(m.bad, 0);
    CHECK_EQ_INT(dx_server_connections(s), 0);
    dx_server_destroy(s);
    nu_loop_finish(l);
    free(ones);
    free(m.conns);
}

/* ---- slowloris ------------------------------------------------------------------------------ */

TEST(robust_slow_handshakes_are_dropped_while_others_are_served) {
    enum { N = 20 };
    dx_loop *l = nu_loop();
    nu_rec r = {.echo = true};
    dx_server_options o = {.conn.timeouts.handshake_ms = 200};
    dx_server *s = NULL;
    REQUIRE(nu_server(&s, l, &o, &nu_callbacks, &r) == 0);
    char req[512];
    nu_request(req, sizeof req, "/slow", NULL);
    int fds[N];
    uint64_t closed_at[N] = {0};
    nu_in *in = calloc(N, sizeof(nu_in));
    uint64_t t0 = nu_now_ms();
    for (int i = 0; i < N; i++)
        fds[i] = nu_raw_connect(dx_server_port(s));
    /* a normal client arrives meanwhile */
    char url[64];
    nu_url(url, sizeof url, dx_server_port(s), "/fast");
    nu_rec cli = {0};
    dx_conn *c = NULL;
    CHECK_RC(dx_client_connect(&c, l, url, NULL, &nu_callbacks, &cli), 0);
    int open_raw = N;
    uint64_t served_at = 0;
    for (size_t pos = 0; open_raw > 0 && nu_now_ms() - t0 < 3000; pos++) {
        for (int i = 0; i < N; i++) {
            if (closed_at[i] || fds[i] < 0)
                continue;
            if (pos < strlen(req))
                send(fds[i], req + pos, 1, MSG_NOSIGNAL); /* one byte every 20 ms */
            nu_pump(fds[i], &in[i]);
            if (in[i].eof || in[i].err) {
                closed_at[i] = nu_now_ms();
                open_raw--;
            }
        }
        if (cli.opens == 1 && cli.messages == 0 && !served_at) {
            dx_conn_send_text(c, dx_span_cstr("fast"));
            served_at = 1;
        }
        if (cli.messages == 1 && served_at == 1)
            served_at = nu_now_ms();
        nu_run_for(l, 20);
    }
    CHECK_EQ_INT(open_raw, 0);
    uint64_t first = UINT64_MAX, last = 0;
    for (int i = 0; i < N; i++) {
        if (!closed_at[i])
            continue;
        first = closed_at[i] - t0 < first ? closed_at[i] - t0 : first;
        last = closed_at[i] - t0 > last ? closed_at[i] - t0 : last;
        CHECK_EQ_INT(in[i].len, 0); /* dropped without an answer */
        close(fds[i]);
    }
    printf("    %d slow clients dropped between %llu and %llu ms; the normal one served at "
           "%llu ms\n",
           N, (unsigned long long)first, (unsigned long long)last,
           (unsigned long long)(served_at > 1 ? served_at - t0 : 0));
    CHECK(first >= 180 && last < 1500);
    CHECK(served_at > 1 && served_at - t0 < 1000);
    CHECK_EQ_INT(r.opens, 1);
    CHECK_EQ_INT(r.closes, 0); /* the dropped ones were never seen */
    dx_conn_close(c, 1000, (dx_span){0});
    CHECK_RUN_UNTIL(l, cli.closes == 1 && r.closes == 1, 3000);
    free(in);
    dx_server_destroy(s);
    nu_loop_finish(l);
}

/* ---- a peer that floods and never reads ------------------------------------------------------ */

#define FLOOD_CAP ((size_t)256 << 10)

typedef struct flood {
    size_t max_buffered;
    int refused, echoed;
} flood;

static void flood_echo(dx_conn *c, dx_opcode op, dx_span data, void *user) {
    flood *f = user;
    int rc = dx_conn_send(c, op, data);
    if (rc == DX_ESEND_QUEUE)
        f->refused++;
    else if (rc == 0)
        f->echoed++;
    size_t b = dx_conn_buffered_amount(c);
    if (b > f->max_buffered)
        f->max_buffered = b;
}

TEST(robust_a_peer_that_never_reads_holds_bounded_memory) {
    dx_loop *l = nu_loop();
    flood f = {0};
    dx_server_options o = {.conn.send.max_queue = FLOOD_CAP};
    dx_conn_callbacks cb = {.on_message = flood_echo};
    dx_server *s = NULL;
    REQUIRE(nu_server(&s, l, &o, &cb, &f) == 0);
    nu_in in = {0};
    int st;
    int fd = nu_raw_ws_connect(l, dx_server_port(s), "/", NULL, &in, &st, true);
    REQUIRE(fd >= 0);
    CHECK_EQ_INT(st, 101);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    /* 16 MiB of 4 KiB messages: far past the cap and the kernel's buffers */
    enum { MSG = 4096, COUNT = 4096 };
    static uint8_t payload[MSG];
    memset(payload, 'x', sizeof payload);
    uint8_t *frame = malloc(MSG + 14);
    size_t flen = nu_frame(frame, true, DX_OP_BINARY, true, payload, MSG);
    int sent = 0;
    size_t off = 0;
    uint64_t end = nu_now_ms() + 10000;
    while (sent < COUNT && nu_now_ms() < end) {
        ssize_t w = send(fd, frame + off, flen - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            off += (size_t)w;
            if (off == flen) {
                off = 0;
                sent++;
            }
            continue;
        }
        dx_loop_run_once(l, 1);
    }
    RUN_UNTIL(l, f.echoed + f.refused == COUNT, 5000);
    printf("    %d messages (%d MiB) in: %d echoed, %d refused; at most %zu bytes buffered "
           "(cap %zu)\n",
           sent, (int)((size_t)sent * MSG >> 20), f.echoed, f.refused, f.max_buffered, FLOOD_CAP);
    CHECK_EQ_INT(sent, COUNT);
    CHECK_EQ_INT(f.echoed + f.refused, COUNT);
    CHECK(f.refused > 0);
    CHECK(f.max_buffered <= FLOOD_CAP);
    CHECK(f.max_buffered > FLOOD_CAP / 2); /* it did fill up */
    free(frame);
    nu_close_reset(fd);
    CHECK_RUN_UNTIL(l, dx_server_connections(s) == 0, 3000);
    check_still_serving(l, dx_server_port(s));
    dx_server_destroy(s);
    nu_loop_finish(l);
}

/* ---- resets -----------------------------------------------------------------------------------
 */

TEST(robust_resets_in_the_middle_of_a_frame) {
    dx_loop *l = nu_loop();
    nu_rec r = {.echo = true};
    dx_server *s = NULL;
    REQUIRE(nu_echo_server(&s, l, &r) == 0);
    uint8_t payload[300];
    memset(payload, 'p', sizeof payload);
    uint8_t frame[400];
    size_t flen = nu_frame(frame, true, DX_OP_TEXT, true, payload, sizeof payload);
    /* cut inside the 2-byte header, the extended length, the mask, the payload */
    static const size_t cuts[] = {1, 3, 5, 7, 9, 50, 250};
    int n = (int)(sizeof cuts / sizeof cuts[0]);
    for (int i = 0; i < n; i++) {
        nu_in in = {0};
        int st;
        int fd = nu_raw_ws_connect(l, dx_server_port(s), "/", NULL, &in, &st, true);
        CHECK_EQ_INT(st, 101);
        nu_send_frame(fd, true, DX_OP_TEXT, "whole", 5);
        nu_send(fd, frame, cuts[i] < flen ? cuts[i] : flen);
        CHECK_RUN_UNTIL(l, r.messages == i + 1, 3000);
        nu_close_reset(fd);
        CHECK_RUN_UNTIL(l, r.closes == i + 1, 3000);
        CHECK_EQ_INT(r.close_code, 1006);
        CHECK(!r.clean && r.remote);
    }
    CHECK_EQ_INT(r.opens, n);
    CHECK_EQ_INT(dx_server_connections(s), 0);
    check_still_serving(l, dx_server_port(s));
    dx_server_destroy(s);
    nu_loop_finish(l);
}

/* ---- garbage ----------------------------------------------------------------------------------
 */

TEST(robust_garbage_instead_of_a_handshake_gets_400) {
    dx_loop *l = nu_loop();
    nu_rec r = {.echo = true};
    dx_server *s = NULL;
    REQUIRE(nu_echo_server(&s, l, &r) == 0);
    /* random bytes; a TLS ClientHello's start; an (unmasked) WebSocket frame; an SSH
     * banner; each ends in CRLF CRLF (a head that never ends waits for the handshake
     * timeout instead) */
    uint8_t garbage[4][300];
    size_t glen[4];
    for (size_t i = 0; i < 200; i++)
        garbage[0][i] = (uint8_t)dx_test_rand();
    memcpy(garbage[0] + 200, "\r\n\r\n", 4);
    glen[0] = 204;
    static const uint8_t hello[] = {0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1,
                                    0x03, 0x03, 0x5a, 0x5b, '\r', '\n', '\r', '\n'};
    memcpy(garbage[1], hello, sizeof hello);
    glen[1] = sizeof hello;
    glen[2] = nu_frame(garbage[2], true, DX_OP_TEXT, false, "hi\r\n\r\n", 6);
    memcpy(garbage[3], "SSH-2.0-OpenSSH_9.2\r\n\r\n", 23);
    glen[3] = 23;
    for (int i = 0; i < 4; i++) {
        int fd = nu_raw_connect(dx_server_port(s));
        REQUIRE(fd >= 0);
        nu_send(fd, garbage[i], glen[i]);
        nu_in in = {0};
        PUMP_UNTIL(l, fd, &in, false, 3000);
        bool ok = in.len >= 12 && memcmp(in.b, "HTTP/1.1 400", 12) == 0 && in.eof;
        if (!ok)
            printf("    garbage %d: got %.*s\n", i, (int)(in.len < 40 ? in.len : 40),
                   (const char *)in.b);
        CHECK(ok);
        close(fd);
    }
    CHECK_RUN_UNTIL(l, dx_server_connections(s) == 0, 3000);
    CHECK_EQ_INT(r.opens + r.closes, 0);
    check_still_serving(l, dx_server_port(s));
    dx_server_destroy(s);
    nu_loop_finish(l);
}
