/*
 * The stream layer on its own (include/duplex/stream.h): echo over TCP, TLS and a
 * Unix socket through a listener and dx_stream_connect, partial consumption and
 * pause, the cap with each policy, a peer that never reads, half-close both ways,
 * each close mode, connect errors each with its own code, a peer that resets, the
 * timer, and shared buffers written to many streams by reference.
 */
#include "net_util.h"

#include "test_certs.h"

#include <sys/un.h>

/* ---- an echo server and a recording client -------------------------------------------- */

typedef struct rec {
    dx_stream *s;
    int opens, closes, eofs, drains, timeouts;
    int close_err;
    int proxy_status; /* dx_stream_proxy_status in on_close */
    uint8_t *got;     /* everything received */
    size_t got_len, got_cap;
    size_t consume_max;   /* on_data consumes at most this per call (0: all) */
    bool pause_once;      /* on_data pauses the stream once, consuming nothing */
    bool echo;            /* write back what arrives */
    bool close_on_eof;    /* on_eof closes with DX_STREAM_CLOSE_NOW */
    dx_span reply_on_eof; /* written on EOF before closing */
} rec;

static void rec_add(rec *r, const uint8_t *p, size_t n) {
    if (r->got_len + n > r->got_cap) {
        r->got_cap = (r->got_len + n) * 2 + 1024;
        r->got = realloc(r->got, r->got_cap);
    }
    memcpy(r->got + r->got_len, p, n);
    r->got_len += n;
}

static void r_open(dx_stream *s, void *user) {
    rec *r = user;
    r->opens++;
    r->s = s;
}

static size_t r_data(dx_stream *s, uint8_t *data, size_t len, void *user) {
    rec *r = user;
    if (r->pause_once) {
        r->pause_once = false;
        dx_stream_pause(s);
        return 0;
    }
    size_t n = r->consume_max && len > r->consume_max ? r->consume_max : len;
    rec_add(r, data, n);
    if (r->echo)
        CHECK_RC(dx_stream_write(s, (dx_span){data, n}), 0);
    return n;
}

static void r_eof(dx_stream *s, void *user) {
    rec *r = user;
    r->eofs++;
    if (r->reply_on_eof.len)
        CHECK_RC(dx_stream_write(s, r->reply_on_eof), 0); /* a half-closed peer still reads */
    if (r->close_on_eof)
        dx_stream_close(s, DX_STREAM_CLOSE_NOW);
}

static void r_drain(dx_stream *s, void *user) {
    (void)s;
    rec *r = user;
    r->drains++;
}

static void r_timeout(dx_stream *s, void *user) {
    (void)s;
    rec *r = user;
    r->timeouts++;
}

static void r_close(dx_stream *s, int err, void *user) {
    rec *r = user;
    r->closes++;
    r->close_err = err;
    r->proxy_status = dx_stream_proxy_status(s);
    r->s = NULL;
}

static const dx_stream_callbacks rec_cb = {.on_open = r_open,
                                           .on_data = r_data,
                                           .on_eof = r_eof,
                                           .on_drain = r_drain,
                                           .on_timeout = r_timeout,
                                           .on_close = r_close};

/* The listener's side: every accepted stream records into the rec given as user. */
static void accept_into(dx_listener *l, dx_stream *s, void *user) {
    (void)l;
    CHECK_RC(dx_stream_start(s, &rec_cb, user), 0);
}

static dx_listener *listen_on(dx_loop *l, rec *srv, dx_tls_ctx *tls) {
    dx_listen_options lo = {.host = "127.0.0.1", .tls = tls};
    dx_listener *lst = NULL;
    if (dx_listener_create(&lst, l, &lo, accept_into, srv) != 0)
        abort();
    return lst;
}

static uint8_t *pattern(size_t n) {
    uint8_t *p = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 7 + i / 251);
    return p;
}

/* Echo @n bytes from a client through a server that echoes: every byte back, in
 * order; then the client closes and both ends see on_close(0). */
static void echo_round_trip(dx_tls_ctx *srv_tls, dx_tls_ctx *cli_tls, size_t n) {
    dx_loop *l = nu_loop();
    rec srv = {.echo = true, .close_on_eof = true}, cli = {0};
    dx_listener *lst = listen_on(l, &srv, srv_tls);
    dx_connect_options co = {.host = "127.0.0.1",
                             .port = dx_listener_port(lst),
                             .tls = cli_tls,
                             .server_name = cli_tls ? "localhost" : NULL};
    dx_stream *c = NULL;
    REQUIRE(dx_stream_connect(&c, l, &co, &rec_cb, &cli) == 0);
    uint8_t *data = pattern(n);
    /* written while connecting: it goes out once the stream is up */
    CHECK_RC(dx_stream_write(c, (dx_span){data, n / 2}), 0);
    CHECK_RUN_UNTIL(l, cli.opens == 1, 5000);
    CHECK_RC(dx_stream_write(c, (dx_span){data + n / 2, n - n / 2}), 0);
    CHECK_RUN_UNTIL(l, cli.got_len == n, 10000);
    CHECK(cli.got_len == n && memcmp(cli.got, data, n) == 0);
    CHECK(srv.got_len == n);
    char addr[64];
    CHECK_RC(dx_stream_peer_addr(c, addr, sizeof addr), 0);
    CHECK(strncmp(addr, "127.0.0.1:", 10) == 0);
    CHECK_RC(dx_stream_local_addr(c, addr, sizeof addr), 0);
    CHECK(strncmp(addr, "127.0.0.1:", 10) == 0);
    CHECK(dx_stream_is_open(c));
    dx_stream_close(c, DX_STREAM_CLOSE_LINGER); /* FIN; the server closes on EOF */
    CHECK_RUN_UNTIL(l, cli.closes == 1 && srv.closes == 1, 5000);
    CHECK_EQ_INT(cli.close_err, 0);
    CHECK_EQ_INT(srv.close_err, 0);
    CHECK_EQ_INT(srv.eofs, 1);
    dx_listener_destroy(lst);
    free(data);
    free(cli.got);
    free(srv.got);
    nu_loop_finish(l);
}

TEST(stream_tcp_echo_through_a_listener_and_connect) {
    echo_round_trip(NULL, NULL, 3 << 20);
}

TEST(stream_tls_echo) {
    REQUIRE(certs_ready());
    dx_tls_cert cert = {.cert_file = cp("server.pem"), .key_file = cp("server.key")};
    dx_tls_server_config sc = {.certs = &cert, .cert_count = 1};
    dx_tls_client_config cc = {.ca_file = cp("ca.pem")};
    dx_tls_ctx *st = NULL, *ct = NULL;
    REQUIRE(dx_tls_ctx_create_server(&st, &sc) == 0);
    REQUIRE(dx_tls_ctx_create_client(&ct, &cc) == 0);
    echo_round_trip(st, ct, 1 << 20);
    dx_tls_ctx_release(st);
    dx_tls_ctx_release(ct);
}

TEST(stream_unix_socket_echo) {
    dx_loop *l = nu_loop();
    char path[108];
    snprintf(path, sizeof path, "/tmp/dx-stream-test-%d.sock", (int)getpid());
    rec srv = {.echo = true, .close_on_eof = true}, cli = {0};
    dx_listen_options lo = {.unix_path = path};
    dx_listener *lst = NULL;
    REQUIRE(dx_listener_create(&lst, l, &lo, accept_into, &srv) == 0);
    CHECK_EQ_INT(dx_listener_port(lst), 0);
    dx_connect_options co = {.unix_path = path};
    dx_stream *c = NULL;
    REQUIRE(dx_stream_connect(&c, l, &co, &rec_cb, &cli) == 0);
    CHECK_RUN_UNTIL(l, cli.opens == 1, 3000);
    CHECK_RC(dx_stream_write(c, dx_span_cstr("over a unix socket")), 0);
    CHECK_RUN_UNTIL(l, cli.got_len == 18, 3000);
    char addr[32];
    CHECK_RC(dx_stream_peer_addr(c, addr, sizeof addr), 0);
    CHECK(strcmp(addr, "unix") == 0);
    dx_stream_close(c, DX_STREAM_CLOSE_LINGER);
    CHECK_RUN_UNTIL(l, cli.closes == 1 && srv.closes == 1, 3000);
    dx_listener_destroy(lst);
    nu_loop_finish(l);
    CHECK(access(path, F_OK) != 0); /* the socket file is gone */
    free(cli.got);
    free(srv.got);
}

/* ---- reading ------------------------------------------------------------------------- */

/* What on_data leaves is offered again, in front of what comes next; a pause inside
 * on_data keeps it, and the resume offers it again, in order. */
TEST(stream_on_data_consumes_part_and_pause_keeps_the_rest_in_order) {
    dx_loop *l = nu_loop();
    rec srv = {.consume_max = 3, .close_on_eof = true}, cli = {0};
    dx_listener *lst = listen_on(l, &srv, NULL);
    int fd = nu_raw_connect(dx_listener_port(lst));
    REQUIRE(fd >= 0);
    CHECK(nu_send_str(fd, "abcdefghij"));
    CHECK_RUN_UNTIL(l, srv.got_len == 10, 3000);
    CHECK(srv.got_len == 10 && memcmp(srv.got, "abcdefghij", 10) == 0);
    /* pause: nothing is consumed or read until the resume */
    srv.consume_max = 0;
    srv.pause_once = true;
    CHECK(nu_send_str(fd, "KLMNO"));
    nu_run_for(l, 100);
    CHECK_EQ_INT(srv.got_len, 10);
    CHECK(nu_send_str(fd, "pq"));
    nu_run_for(l, 100);
    CHECK_EQ_INT(srv.got_len, 10); /* paused: the kernel keeps it */
    dx_stream_resume(srv.s);
    CHECK_RUN_UNTIL(l, srv.got_len == 17, 3000);
    CHECK(srv.got_len == 17 && memcmp(srv.got, "abcdefghijKLMNOpq", 17) == 0);
    close(fd);
    CHECK_RUN_UNTIL(l, srv.closes == 1, 3000);
    CHECK_EQ_INT(srv.eofs, 1);
    dx_listener_destroy(lst);
    free(srv.got);
    free(cli.got);
    nu_loop_finish(l);
}

/* ---- the cap ------------------------------------------------------------------------- */

/* A raw peer that never reads (4 KiB receive buffer): writes fill the stream's queue
 * to the cap and are refused there; the queue never passes it. */
static void fill_to_cap(dx_loop *l, dx_backpressure policy) {
    enum { CAP = 64 << 10 };
    rec srv = {0};
    dx_listen_options lo = {
        .host = "127.0.0.1",
        .stream = {.max_buffered = CAP, .low_water = 4096, .backpressure = policy}};
    dx_listener *lst = NULL;
    REQUIRE(dx_listener_create(&lst, l, &lo, accept_into, &srv) == 0);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(dx_listener_port(lst))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
    nu_nonblock(fd);
    CHECK_RUN_UNTIL(l, srv.opens == 1, 3000);
    REQUIRE(srv.s);
    dx_stream *s = srv.s;
    uint8_t chunk[1000];
    memset(chunk, 'x', sizeof chunk);
    size_t accepted = 0;
    int rc = 0;
    uint64_t end = nu_now_ms() + 5000;
    while (nu_now_ms() < end) {
        rc = dx_stream_write(s, (dx_span){chunk, sizeof chunk});
        if (rc < 0)
            break;
        accepted += sizeof chunk;
        CHECK(dx_stream_buffered(s) <= CAP);
        dx_loop_run_once(l, 0); /* the kernel takes what it can */
    }
    CHECK_RC(rc, DX_ESEND_QUEUE);
    if (policy == DX_BP_CLOSE) {
        CHECK_EQ_INT(srv.closes, 1); /* on_close ran inside the write */
        CHECK_RC(srv.close_err, DX_ESEND_QUEUE);
    } else {
        CHECK_EQ_INT(srv.closes, 0);
        CHECK(dx_stream_buffered(s) > CAP - sizeof chunk);
        /* the peer reads everything: on_drain once it falls to low_water */
        size_t read_total = 0;
        uint64_t until = nu_now_ms() + 5000;
        while (srv.drains == 0 && nu_now_ms() < until) {
            uint8_t buf[65536];
            ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (n > 0)
                read_total += (size_t)n;
            dx_loop_run_once(l, 1);
        }
        CHECK_EQ_INT(srv.drains, 1);
        CHECK(dx_stream_buffered(s) <= 4096);
        CHECK(read_total > 0);
    }
    CHECK(accepted >= CAP - sizeof chunk);
    close(fd);
    CHECK_RUN_UNTIL(l, srv.closes == 1, 3000);
    dx_listener_destroy(lst);
    free(srv.got);
}

TEST(stream_cap_refuses_past_max_buffered_and_drains_once) {
    dx_loop *l = nu_loop();
    fill_to_cap(l, DX_BP_REFUSE);
    nu_loop_finish(l);
}

TEST(stream_cap_under_the_close_policy_closes_with_DX_ESEND_QUEUE) {
    dx_loop *l = nu_loop();
    fill_to_cap(l, DX_BP_CLOSE);
    nu_loop_finish(l);
}

/* ---- ending ------------------------------------------------------------------------ */

/* The client half-closes after its request; the server reads it, sees EOF, answers
 * (a half-closed peer still reads) and closes; the client gets the answer, then EOF. */
TEST(stream_half_close_both_ways) {
    dx_loop *l = nu_loop();
    rec srv = {.reply_on_eof = dx_span_cstr("answer after your FIN"), .close_on_eof = true};
    rec cli = {0};
    dx_listener *lst = listen_on(l, &srv, NULL);
    dx_connect_options co = {.host = "127.0.0.1", .port = dx_listener_port(lst)};
    dx_stream *c = NULL;
    REQUIRE(dx_stream_connect(&c, l, &co, &rec_cb, &cli) == 0);
    CHECK_RC(dx_stream_write(c, dx_span_cstr("request")), 0);
    dx_stream_shutdown(c);
    CHECK_RC(dx_stream_write(c, dx_span_cstr("too late")), DX_ECLOSED);
    CHECK_RUN_UNTIL(l, srv.eofs == 1, 3000);
    CHECK(srv.got_len == 7 && memcmp(srv.got, "request", 7) == 0);
    CHECK_RUN_UNTIL(l, cli.eofs == 1, 3000);
    CHECK(cli.got_len == 21 && memcmp(cli.got, "answer after your FIN", 21) == 0);
    CHECK_EQ_INT(cli.closes, 0); /* the client's on_eof keeps it open */
    dx_stream_close(c, DX_STREAM_CLOSE_NOW);
    CHECK_RUN_UNTIL(l, cli.closes == 1 && srv.closes == 1, 3000);
    CHECK_EQ_INT(cli.close_err, 0);
    CHECK_EQ_INT(srv.close_err, 0);
    dx_listener_destroy(lst);
    free(srv.got);
    free(cli.got);
    nu_loop_finish(l);
}

/* Each close mode against a raw peer: every byte arrives before the FIN; LINGER
 * half-closes and waits for the peer's FIN; AWAIT sends no FIN and waits for the
 * peer to close first; both are bounded by linger_ms. */
static void close_mode_case(dx_stream_close_mode how, bool peer_closes) {
    dx_loop *l = nu_loop();
    rec srv = {0};
    dx_listen_options lo = {.host = "127.0.0.1", .stream.linger_ms = 300};
    dx_listener *lst = NULL;
    REQUIRE(dx_listener_create(&lst, l, &lo, accept_into, &srv) == 0);
    int fd = nu_raw_connect(dx_listener_port(lst));
    REQUIRE(fd >= 0);
    CHECK_RUN_UNTIL(l, srv.opens == 1, 3000);
    REQUIRE(srv.s);
    uint8_t *data = pattern(200000);
    CHECK_RC(dx_stream_write(srv.s, (dx_span){data, 200000}), 0);
    uint64_t t0 = nu_now_ms();
    dx_stream_close(srv.s, how);
    nu_in *in = calloc(1, sizeof(nu_in));
    size_t total = 0;
    bool ok = true;
    while (!in->eof && !in->err && nu_now_ms() - t0 < 3000) {
        ssize_t n = recv(fd, in->b, sizeof in->b, MSG_DONTWAIT);
        if (n > 0) {
            ok = ok && total + (size_t)n <= 200000 && memcmp(in->b, data + total, (size_t)n) == 0;
            total += (size_t)n;
        } else if (n == 0) {
            in->eof = true;
        }
        if (how == DX_STREAM_CLOSE_AWAIT && total == 200000)
            break; /* no FIN comes: the stream waits for ours */
        dx_loop_run_once(l, 1);
    }
    CHECK(ok);
    CHECK_EQ_INT(total, 200000);
    CHECK(how == DX_STREAM_CLOSE_AWAIT ? !in->eof : in->eof);
    if (how != DX_STREAM_CLOSE_NOW) {
        nu_run_for(l, 50);
        CHECK_EQ_INT(srv.closes, 0); /* still waiting for the peer */
    }
    if (peer_closes)
        close(fd);
    CHECK_RUN_UNTIL(l, srv.closes == 1, 3000);
    CHECK_EQ_INT(srv.close_err, 0);
    uint64_t took = nu_now_ms() - t0;
    if (!peer_closes && how != DX_STREAM_CLOSE_NOW)
        CHECK(took >= 250); /* bounded by linger_ms, not sooner */
    if (!peer_closes)
        close(fd);
    dx_listener_destroy(lst);
    free(in);
    free(data);
    nu_loop_finish(l);
}

TEST(stream_close_now_writes_everything_then_fin) {
    close_mode_case(DX_STREAM_CLOSE_NOW, false);
}

TEST(stream_close_linger_half_closes_and_waits_for_the_peers_fin) {
    close_mode_case(DX_STREAM_CLOSE_LINGER, true);
}

TEST(stream_close_linger_gives_up_after_linger_ms) {
    close_mode_case(DX_STREAM_CLOSE_LINGER, false);
}

TEST(stream_close_await_sends_no_fin_and_waits_for_the_peer_to_close) {
    close_mode_case(DX_STREAM_CLOSE_AWAIT, true);
}

/* A peer that resets: the stream ends with -ECONNRESET, once. */
TEST(stream_peer_reset_is_reported_as_econnreset) {
    dx_loop *l = nu_loop();
    rec srv = {0};
    dx_listener *lst = listen_on(l, &srv, NULL);
    int fd = nu_raw_connect(dx_listener_port(lst));
    REQUIRE(fd >= 0);
    CHECK_RUN_UNTIL(l, srv.opens == 1, 3000);
    CHECK(nu_send_str(fd, "x"));
    CHECK_RUN_UNTIL(l, srv.got_len == 1, 3000);
    nu_close_reset(fd);
    CHECK_RUN_UNTIL(l, srv.closes == 1, 3000);
    CHECK_RC(srv.close_err, -ECONNRESET);
    CHECK_EQ_INT(srv.eofs, 0);
    dx_listener_destroy(lst);
    free(srv.got);
    nu_loop_finish(l);
}

/* Abort drops what is queued; on_close runs before it returns, with the given code. */
TEST(stream_abort_reports_its_code_at_once) {
    dx_loop *l = nu_loop();
    rec srv = {0};
    dx_listener *lst = listen_on(l, &srv, NULL);
    int fd = nu_raw_connect(dx_listener_port(lst));
    CHECK_RUN_UNTIL(l, srv.opens == 1, 3000);
    REQUIRE(srv.s);
    CHECK_RC(dx_stream_write(srv.s, dx_span_cstr("dropped")), 0);
    dx_stream_abort(srv.s, DX_ESHUTDOWN);
    CHECK_EQ_INT(srv.closes, 1);
    CHECK_RC(srv.close_err, DX_ESHUTDOWN);
    nu_in in = {0};
    PUMP_UNTIL(l, fd, &in, in.eof || in.err, 3000);
    CHECK(in.eof || in.err);
    CHECK_EQ_INT(in.total, 0);
    close(fd);
    dx_listener_destroy(lst);
    nu_loop_finish(l);
}

/* ---- connect errors, each with its own code ---------------------------------------- */

static int connect_error(dx_connect_options *co) {
    dx_loop *l = nu_loop();
    rec cli = {0};
    dx_stream *c = NULL;
    int rc = dx_stream_connect(&c, l, co, &rec_cb, &cli);
    if (rc == 0) {
        CHECK_EQ_INT(cli.closes, 0); /* never during the call */
        CHECK_RUN_UNTIL(l, cli.closes == 1, 10000);
        CHECK_EQ_INT(cli.opens, 0);
        rc = cli.close_err;
    }
    nu_loop_finish(l);
    return rc;
}

TEST(stream_connect_errors_each_with_its_own_code) {
    dx_connect_options co = {.host = "127.0.0.1", .port = nu_closed_port(), .no_env_proxy = true};
    CHECK_RC(connect_error(&co), -ECONNREFUSED);
    co = (dx_connect_options){.host = "nonexistent.invalid", .port = 80, .no_env_proxy = true};
    CHECK_RC(connect_error(&co), DX_ERESOLVE);
    co = (dx_connect_options){.unix_path = "/nonexistent/dir/sock"};
    CHECK_RC(connect_error(&co), -ENOENT);
    co = (dx_connect_options){.host = "127.0.0.1", .port = 1, .proxy = "ftp://p:1"};
    CHECK_RC(connect_error(&co), DX_EPROXY_URL); /* from the call itself */
    co = (dx_connect_options){.host = "", .port = 80};
    CHECK_RC(connect_error(&co), DX_EINVAL);
    co = (dx_connect_options){.host = "127.0.0.1", .port = 0};
    CHECK_RC(connect_error(&co), DX_EINVAL);
    co = (dx_connect_options){0};
    CHECK_RC(connect_error(&co), DX_EINVAL);
}

/* A listener whose backlog is full: SYNs are dropped, the connect hangs, and the
 * stream gives up at timeout_ms. */
TEST(stream_connect_timeout) {
    uint16_t port = 0;
    int lfd = nu_listen(&port, 0);
    REQUIRE(lfd >= 0);
    int fillers[8];
    int nfill = 0;
    for (; nfill < 8; nfill++) { /* fill the accept queue (backlog 0 holds one) */
        fillers[nfill] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        connect(fillers[nfill], (struct sockaddr *)&a, sizeof a);
    }
    usleep(50000);
    dx_connect_options co = {
        .host = "127.0.0.1", .port = port, .timeout_ms = 150, .no_env_proxy = true};
    uint64_t t0 = nu_now_ms();
    CHECK_RC(connect_error(&co), DX_ECONNECT_TIMEOUT);
    uint64_t dt = nu_now_ms() - t0;
    CHECK(dt >= 140 && dt < 2000);
    for (int i = 0; i < nfill; i++)
        close(fillers[i]);
    close(lfd);
}

/* A proxy that refuses: DX_EPROXY, and its status for the asking. */
TEST(stream_connect_through_a_proxy_that_refuses) {
    dx_loop *l = nu_loop();
    uint16_t pport = 0;
    int lfd = nu_listen(&pport, 4);
    REQUIRE(lfd >= 0);
    char proxy[64];
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%u", pport);
    dx_connect_options co = {.host = "example.com", .port = 443, .proxy = proxy};
    rec cli = {0};
    dx_stream *c = NULL;
    REQUIRE(dx_stream_connect(&c, l, &co, &rec_cb, &cli) == 0);
    int fd = nu_accept(l, lfd, 3000);
    REQUIRE(fd >= 0);
    nu_in in = {0};
    PUMP_UNTIL(l, fd, &in, nu_head_len(&in) > 0, 3000);
    CHECK(nu_in_has(&in, "CONNECT example.com:443 HTTP/1.1\r\n"));
    CHECK(nu_send_str(fd, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"));
    CHECK_RUN_UNTIL(l, cli.closes == 1, 3000);
    CHECK_RC(cli.close_err, DX_EPROXY);
    CHECK_EQ_INT(cli.proxy_status, 403);
    close(fd);
    close(lfd);
    nu_loop_finish(l);
}

/* A proxy that accepts: the bytes it sends after its answer are the server's. */
TEST(stream_connect_through_a_proxy_tunnel) {
    dx_loop *l = nu_loop();
    uint16_t pport = 0;
    int lfd = nu_listen(&pport, 4);
    REQUIRE(lfd >= 0);
    char proxy[64];
    snprintf(proxy, sizeof proxy, "http://user:pw@127.0.0.1:%u", pport);
    dx_connect_options co = {.host = "::1", .port = 8080, .proxy = proxy};
    rec cli = {0};
    dx_stream *c = NULL;
    REQUIRE(dx_stream_connect(&c, l, &co, &rec_cb, &cli) == 0);
    CHECK_RC(dx_stream_write(c, dx_span_cstr("after the tunnel")), 0);
    int fd = nu_accept(l, lfd, 3000);
    REQUIRE(fd >= 0);
    nu_in in = {0};
    PUMP_UNTIL(l, fd, &in, nu_head_len(&in) > 0, 3000);
    CHECK(nu_in_has(&in, "CONNECT [::1]:8080 HTTP/1.1\r\n"));
    CHECK(nu_in_has(&in, "Proxy-Authorization: Basic dXNlcjpwdw==\r\n"));
    CHECK_EQ_INT(in.len, nu_head_len(&in)); /* nothing of ours before the answer */
    nu_in_consume(&in, nu_head_len(&in));
    CHECK(nu_send_str(fd, "HTTP/1.1 200 Connection established\r\n\r\nhello from the server"));
    CHECK_RUN_UNTIL(l, cli.got_len == 21, 3000);
    CHECK(cli.got_len == 21 && memcmp(cli.got, "hello from the server", 21) == 0);
    CHECK_EQ_INT(cli.opens, 1);
    PUMP_UNTIL(l, fd, &in, in.len >= 16, 3000);
    CHECK(in.len == 16 && memcmp(in.b, "after the tunnel", 16) == 0);
    dx_stream_close(c, DX_STREAM_CLOSE_NOW);
    CHECK_RUN_UNTIL(l, cli.closes == 1, 3000);
    close(fd);
    close(lfd);
    free(cli.got);
    nu_loop_finish(l);
}

/* ---- the timer --------------------------------------------------------------------- */

TEST(stream_timer_calls_on_timeout_and_without_one_aborts) {
    dx_loop *l = nu_loop();
    rec srv = {.close_on_eof = true};
    dx_listener *lst = listen_on(l, &srv, NULL);
    int fd = nu_raw_connect(dx_listener_port(lst));
    CHECK_RUN_UNTIL(l, srv.opens == 1, 3000);
    REQUIRE(srv.s);
    dx_stream_set_timeout(srv.s, 50);
    CHECK_RUN_UNTIL(l, srv.timeouts == 1, 1000);
    dx_stream_set_timeout(srv.s, 50);
    dx_stream_set_timeout(srv.s, DX_NEVER); /* stopped */
    nu_run_for(l, 100);
    CHECK_EQ_INT(srv.timeouts, 1);
    close(fd);
    CHECK_RUN_UNTIL(l, srv.closes == 1, 3000);
    /* no on_timeout: the stream is aborted with DX_ETIMEOUT */
    dx_stream_callbacks cb = rec_cb;
    cb.on_timeout = NULL;
    rec cli = {0};
    dx_connect_options co = {.host = "127.0.0.1", .port = dx_listener_port(lst)};
    dx_stream *c = NULL;
    REQUIRE(dx_stream_connect(&c, l, &co, &cb, &cli) == 0);
    CHECK_RUN_UNTIL(l, cli.opens == 1, 3000);
    dx_stream_set_timeout(c, 20);
    CHECK_RUN_UNTIL(l, cli.closes == 1, 1000);
    CHECK_RC(cli.close_err, DX_ETIMEOUT);
    dx_listener_destroy(lst);
    nu_loop_finish(l);
}

/* ---- shared buffers ----------------------------------------------------------------- */

/* One shared buffer written to many streams: each peer gets every byte, and the
 * buffer is freed once the last stream has written it. */
TEST(stream_shared_buffer_to_many_streams_by_reference) {
    enum { N = 20, LEN = 100000 };
    dx_fail_alloc fa;
    dx_fail_alloc_init(&fa, -1);
    dx_loop *l = nu_loop();
    rec srv = {.close_on_eof = true};
    dx_listener *lst = listen_on(l, &srv, NULL);
    rec cli[N];
    memset(cli, 0, sizeof cli);
    dx_stream *c[N];
    dx_connect_options co = {.host = "127.0.0.1", .port = dx_listener_port(lst)};
    for (int i = 0; i < N; i++)
        REQUIRE(dx_stream_connect(&c[i], l, &co, &rec_cb, &cli[i]) == 0);
    dx_shared *buf = NULL;
    REQUIRE(dx_shared_create(&buf, LEN, &fa.a) == 0);
    uint8_t *data = pattern(LEN);
    memcpy(dx_shared_bytes(buf), data, LEN);
    for (int i = 0; i < N; i++) {
        CHECK_RUN_UNTIL(l, cli[i].opens == 1, 3000);
        CHECK_RC(dx_stream_write_shared(c[i], buf, 0, LEN), 0);
        CHECK_RC(dx_stream_write_shared(c[i], buf, LEN, 1), DX_EINVAL);
        CHECK(dx_stream_buffered(c[i]) >= LEN);
    }
    dx_shared_release(buf);
    CHECK_EQ_INT(fa.live, 1); /* the streams hold it */
    CHECK_RUN_UNTIL(l, srv.got_len == (size_t)N * LEN, 5000);
    CHECK_EQ_INT(fa.live, 0); /* written by all: gone */
    for (int i = 0; i < N; i++)
        dx_stream_close(c[i], DX_STREAM_CLOSE_NOW);
    CHECK_RUN_UNTIL(l, srv.closes == N, 3000);
    dx_listener_destroy(lst);
    free(data);
    free(srv.got);
    nu_loop_finish(l);
}

/* ---- the listener --------------------------------------------------------------------- */

static void accept_and_forget(dx_listener *l, dx_stream *s, void *user) {
    (void)l;
    (void)s;
    (*(int *)user)++;
}

/* An accepted stream neither started nor closed in on_accept is aborted, not leaked;
 * a paused listener leaves new connections in the backlog. */
TEST(stream_listener_pause_and_an_unstarted_stream) {
    dx_loop *l = nu_loop();
    int accepted = 0;
    dx_listen_options lo = {.host = "127.0.0.1"};
    dx_listener *lst = NULL;
    REQUIRE(dx_listener_create(&lst, l, &lo, accept_and_forget, &accepted) == 0);
    int fd = nu_raw_connect(dx_listener_port(lst));
    CHECK_RUN_UNTIL(l, accepted == 1, 3000);
    nu_in in = {0};
    PUMP_UNTIL(l, fd, &in, in.eof || in.err, 3000);
    CHECK(in.eof || in.err); /* closed at once */
    close(fd);
    dx_listener_pause(lst);
    fd = nu_raw_connect(dx_listener_port(lst)); /* the kernel completes it */
    nu_run_for(l, 100);
    CHECK_EQ_INT(accepted, 1);
    dx_listener_resume(lst);
    CHECK_RUN_UNTIL(l, accepted == 2, 3000);
    close(fd);
    dx_listener_destroy(lst);
    nu_loop_finish(l);
    dx_listen_options bad = {.host = "not an address"};
    dx_loop *l2 = nu_loop();
    CHECK(dx_listener_create(&lst, l2, &bad, accept_and_forget, &accepted) < 0);
    CHECK_RC(dx_listener_create(&lst, l2, &lo, NULL, NULL), DX_EINVAL);
    nu_loop_finish(l2);
}
