/*
 * The client (src/client/client.c) on a real loop over 127.0.0.1: failures reported
 * through on_error + on_close and never during dx_client_connect, name resolution
 * off the loop thread, the connect and handshake timeouts, every way a server's
 * answer can be wrong (RFC 6455 §4.1), URL errors returned at once, IPv6 literals,
 * frames that arrive with the 101, HTTP CONNECT proxies (option and environment),
 * and destroying the loop while a resolution is still running.
 *
 * Servers are dx servers on the same loop or raw listening sockets the test drives;
 * every wait is bounded.
 */
#include "net_util.h"
#include "runtime/loop_internal.h" /* the inbox lock, to hold a lookup's answer back */

#include <pthread.h>

/* ---- connecting --------------------------------------------------------------------------- */

TEST(client_refused_port_reports_on_error_then_1006) {
    dx_loop *l = nu_loop();
    uint16_t port = nu_closed_port();
    char url[64];
    nu_url(url, sizeof url, port, "/");
    nu_rec r = {0};
    dx_conn *c = NULL;
    CHECK_RC(dx_client_connect(&c, l, url, NULL, &nu_callbacks, &r), 0);
    CHECK(c != NULL);
    CHECK_EQ_INT(r.errors + r.closes + r.opens, 0); /* nothing during the call */
    CHECK_RUN_UNTIL(l, r.closes == 1, 3000);
    CHECK_EQ_INT(r.errors, 1);
    CHECK_RC(r.last_err, -ECONNREFUSED);
    CHECK_EQ_INT(r.close_code, 1006);
    CHECK_RC(r.close_error, -ECONNREFUSED);
    CHECK(!r.clean);
    CHECK_EQ_INT(r.opens, 0);
    CHECK_EQ_INT(r.bad_order, 0);
    CHECK_EQ_INT(r.state_in_close, DX_CLOSED);
    nu_run_for(l, 20);
    CHECK_EQ_INT(r.closes, 1);
    nu_loop_finish(l);
}

TEST(client_resolves_localhost) {
    dx_loop *l = nu_loop();
    nu_rec srv = {.echo = true}, cli = {0};
    dx_server *s = NULL;
    REQUIRE(nu_echo_server(&s, l, &srv) == 0);
    char url[64];
    snprintf(url, sizeof url, "ws://localhost:%u/name", (unsigned)dx_server_port(s));
    dx_conn *c = NULL;
    CHECK_RC(dx_client_connect(&c, l, url, NULL, &nu_callbacks, &cli), 0);
    CHECK_RUN_UNTIL(l, cli.opens == 1, 3000);
    CHECK(strcmp(dx_conn_url(c), url) == 0);
    CHECK_EQ_INT(dx_conn_protocol(c).len, 0);
    CHECK_EQ_INT(dx_conn_side(c), DX_SIDE_CLIENT);
    CHECK(dx_conn_loop(c) == l);
    char addr[64];
    CHECK_RC(dx_conn_peer_addr(c, addr, sizeof addr), 0);
    CHECK(strstr(addr, ":") != NULL);
    dx_conn_close(c, 1000, (dx_span){0});
    CHECK_RUN_UNTIL(l, cli.closes == 1, 3000);
    dx_server_destroy(s);
    nu_loop_finish(l);
}

typedef struct ticker {
    dx_timer t;
    dx_loop *l;
    int ticks;
} ticker;

static void tick(dx_timer *t, void *user) {
    ticker *k = user;
    k->ticks++;
    dx_timer_start(k->l, t, 1);
}

TEST(client_unresolvable_name_fails_with_eresolve_and_the_loop_runs_meanwhile) {
    dx_loop *l = nu_loop();
    ticker k = {.l = l};
    dx_timer_init(&k.t, tick, &k);
    dx_timer_start(l, &k.t, 1);
    nu_rec r = {0};
    dx_conn *c = NULL;
    /* Offline, a failed lookup takes a millisecond or two: too short to show anything.
     * Hold the loop's inbox lock, so the lookup thread, once done, blocks in
     * dx_loop_post: the lookup is then outstanding for as long as we like, and the
     * loop must keep running meanwhile. */
    pthread_mutex_lock(&l->inbox_lock);
    uint64_t t0 = nu_now_ms();
    CHECK_RC(dx_client_connect(&c, l, "ws://nonexistent.invalid/", NULL, &nu_callbacks, &r), 0);
    CHECK(nu_now_ms() - t0 < 50); /* resolution does not happen in the call */
    dx_loop_run_once(l, 0);       /* the attempt starts at the end of this iteration */
    CHECK(l->refs > 0);           /* on its own thread */
    int ticks0 = k.ticks;
    nu_run_for(l, 100);
    CHECK(k.ticks - ticks0 >= 20); /* the 1 ms timer kept firing */
    CHECK_EQ_INT(r.closes, 0);
    pthread_mutex_unlock(&l->inbox_lock);
    CHECK_RUN_UNTIL(l, r.closes == 1, 15000);
    CHECK_RC(r.last_err, DX_ERESOLVE);
    CHECK_EQ_INT(r.errors, 1);
    CHECK_EQ_INT(r.close_code, 1006);
    CHECK(l->refs == 0);
    dx_timer_stop(l, &k.t);
    nu_loop_finish(l);
}

/* A listener whose accept queue is full: further SYNs are dropped (Linux drops them
 * while the queue is full, syncookies or not), so a connect hangs. */
static int full_listener(uint16_t *port, int fillers[8], int *nfill) {
    int lfd = nu_listen(port, 0);
    *nfill = 0;
    if (lfd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(*port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    while (*nfill < 8) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        fillers[(*nfill)++] = fd;
        if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
            continue;
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        if (poll(&p, 1, 200) == 0)
            return lfd; /* this one hangs: the queue is full */
    }
    return lfd;
}

TEST(client_connect_timeout_against_a_full_backlog) {
    dx_loop *l = nu_loop();
    uint16_t port = 0;
    int fillers[8], nfill;
    int lfd = full_listener(&port, fillers, &nfill);
    REQUIRE(lfd >= 0);
    char url[64];
    nu_url(url, sizeof url, port, "/");
    nu_rec r = {0};
    dx_client_options co = {.conn.timeouts.handshake_ms = 100};
    dx_conn *c = NULL;
    /* timers count from the loop's cached clock (dx_loop_now), read at each iteration:
     * refresh it after the slow set-up above, or the timeout would be that much shorter */
    dx_loop_run_once(l, 0);
    uint64_t t0 = nu_now_ms();
    CHECK_RC(dx_client_connect(&c, l, url, &co, &nu_callbacks, &r), 0);
    CHECK_RUN_UNTIL(l, r.closes == 1, 3000);
    uint64_t dt = nu_now_ms() - t0;
    CHECK_RC(r.last_err, DX_ECONNECT_TIMEOUT);
    CHECK_EQ_INT(r.close_code, 1006);
    CHECK(dt >= 90 && dt < 1000);
    for (int i = 0; i < nfill; i++)
        close(fillers[i]);
    close(lfd);
    nu_loop_finish(l);
}

/* ---- the server's answer ------------------------------------------------------------------ */

enum answer_kind {
    ANSWER_AS_IS,       /* @answer verbatim */
    ANSWER_WITH_ACCEPT, /* @answer is a format with one %s: the right accept value */
    ANSWER_THEN_EOF,    /* @answer verbatim, then close */
    ANSWER_NOTHING,     /* never answer */
};

/* A raw server answers the client's request; returns what the client reported. */
static void answer_and_expect(const char *answer, enum answer_kind kind, int want_err,
                              int want_status) {
    dx_loop *l = nu_loop();
    uint16_t port = 0;
    int lfd = nu_listen(&port, 8);
    REQUIRE(lfd >= 0);
    char url[64];
    nu_url(url, sizeof url, port, "/x");
    static const char *const protos[] = {"chat"};
    dx_client_options co = {.protocols = protos,
                            .num_protocols = 1,
                            .conn.timeouts.handshake_ms = kind == ANSWER_NOTHING ? 100 : 3000};
    nu_rec r = {0};
    dx_conn *c = NULL;
    CHECK_RC(dx_client_connect(&c, l, url, &co, &nu_callbacks, &r), 0);
    int fd = nu_accept(l, lfd, 3000);
    CHECK(fd >= 0);
    nu_in in = {0};
    PUMP_UNTIL(l, fd, &in, nu_head_len(&in) > 0, 3000);
    CHECK(nu_head_len(&in) > 0);
    CHECK(nu_in_has(&in, "\r\nSec-WebSocket-Protocol: chat\r\n"));
    if (kind == ANSWER_WITH_ACCEPT) {
        char key[25] = "", acc[DX_ACCEPT_LEN + 1], buf[1024];
        nu_find_key(&in, key);
        dx_handshake_accept_key(dx_span_cstr(key), acc);
        acc[DX_ACCEPT_LEN] = '\0';
        const char *mark = strstr(answer, "%s"); /* put the accept value there */
        snprintf(buf, sizeof buf, "%.*s%s%s", (int)(mark - answer), answer, acc, mark + 2);
        nu_send_str(fd, buf);
    } else if (kind != ANSWER_NOTHING) {
        nu_send_str(fd, answer);
    }
    if (kind == ANSWER_THEN_EOF)
        close(fd);
    CHECK_RUN_UNTIL(l, r.closes == 1, 3000);
    if (r.last_err != want_err)
        printf("    answer %.40s...: got %s\n", answer ? answer : "(none)",
               dx_err_name(r.last_err));
    CHECK_RC(r.last_err, want_err);
    CHECK_EQ_INT(r.errors, 1);
    CHECK_EQ_INT(r.http_status, want_status);
    CHECK_EQ_INT(r.close_code, 1006);
    CHECK_EQ_INT(r.opens, 0);
    CHECK_EQ_INT(r.bad_order, 0);
    if (kind != ANSWER_THEN_EOF && fd >= 0) {
        PUMP_UNTIL(l, fd, &in, false, 2000); /* the client hangs up */
        CHECK(in.eof || in.err);
        close(fd);
    }
    close(lfd);
    nu_loop_finish(l);
}

TEST(client_handshake_errors_from_a_raw_server) {
    answer_and_expect("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", ANSWER_AS_IS,
                      DX_EHS_STATUS, 403);
    answer_and_expect("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", ANSWER_AS_IS, DX_EHS_STATUS,
                      200);
    answer_and_expect("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Accept: " NU_ACCEPT "\r\n\r\n",
                      ANSWER_AS_IS, DX_EHS_BAD_ACCEPT, 101);
    answer_and_expect("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\n\r\n",
                      ANSWER_AS_IS, DX_EHS_NO_ACCEPT, 101);
    answer_and_expect("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
                      "Sec-WebSocket-Protocol: superchat\r\n\r\n",
                      ANSWER_WITH_ACCEPT, DX_EHS_PROTOCOL_NOT_OFFERED, 101);
    answer_and_expect("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
                      "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
                      ANSWER_WITH_ACCEPT, DX_EHS_EXTENSION_NOT_OFFERED, 101);
    answer_and_expect("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Accept: %s\r\n\r\n",
                      ANSWER_WITH_ACCEPT, DX_EHS_RESP_NO_UPGRADE, 101);
    answer_and_expect("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      "Conn",
                      ANSWER_THEN_EOF, DX_EHANDSHAKE_EOF, 0);
    answer_and_expect(NULL, ANSWER_NOTHING, DX_EHANDSHAKE_TIMEOUT, 0);
    answer_and_expect("HTTP/1.1 101\nUpgrade: websocket\n\n", ANSWER_AS_IS, DX_EHTTP_BARE_LF, 0);
}

/* ---- URLs --------------------------------------------------------------------------------- */

TEST(client_url_errors_are_returned_at_once) {
    dx_loop *l = nu_loop();
    static const struct {
        const char *url;
        int rc;
    } cases[] = {
        {"ws://127.0.0.1/#frag", DX_EURL_FRAGMENT}, {"wss://127.0.0.1:0/", DX_EURL_PORT},
        {"ftp://127.0.0.1/", DX_EURL_SCHEME},       {"ws:///", DX_EURL_HOST},
        {"ws://\xc3\xa9/", DX_EURL_IDNA},           {"ws://a b/", DX_EURL_HOST},
        {"ws://127.0.0.1:0/", DX_EURL_PORT},        {"ws://127.0.0.1:65536/", DX_EURL_PORT},
        {"ws://127.0.0.1:x/", DX_EURL_PORT},        {"ws://[::1/", DX_EURL_HOST},
    };
    nu_rec r = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dx_conn *c = (dx_conn *)&r; /* must stay untouched */
        int rc = dx_client_connect(&c, l, cases[i].url, NULL, &nu_callbacks, &r);
        if (rc != cases[i].rc)
            printf("    %s: got %s\n", cases[i].url, dx_err_name(rc));
        CHECK_RC(rc, cases[i].rc);
        CHECK(c == (dx_conn *)&r);
    }
    dx_conn *c = NULL;
    char long_host[300] = "ws://"; /* a host over DX_PROXY_HOST_MAX (255) bytes */
    memset(long_host + 5, 'a', 256);
    CHECK_RC(dx_client_connect(&c, l, long_host, NULL, &nu_callbacks, &r), DX_EURL_HOST);
    CHECK_RC(dx_client_connect(&c, l, NULL, NULL, &nu_callbacks, &r), DX_EINVAL);
    CHECK_RC(dx_client_connect(NULL, l, "ws://127.0.0.1/", NULL, &nu_callbacks, &r), DX_EINVAL);
    CHECK_RC(dx_client_connect(&c, NULL, "ws://127.0.0.1/", NULL, &nu_callbacks, &r), DX_EINVAL);
    dx_client_options bad_proxy = {.proxy = "https://proxy:3128"};
    CHECK_RC(dx_client_connect(&c, l, "ws://127.0.0.1/", &bad_proxy, &nu_callbacks, &r),
             DX_EPROXY_URL);
    static const char *const bad_proto[] = {"has space"};
    dx_client_options bp = {.protocols = bad_proto, .num_protocols = 1};
    CHECK_RC(dx_client_connect(&c, l, "ws://127.0.0.1/", &bp, &nu_callbacks, &r), DX_EINVAL);
    static const dx_http_header bad_hdr[] = {
        {{(const uint8_t *)"X", 1}, {(const uint8_t *)"a\r\nb", 4}}};
    dx_client_options bh = {.headers = bad_hdr, .num_headers = 1};
    CHECK_RC(dx_client_connect(&c, l, "ws://127.0.0.1/", &bh, &nu_callbacks, &r), DX_EINVAL);
    nu_run_for(l, 20);
    CHECK_EQ_INT(r.opens + r.errors + r.closes, 0); /* no callback for any of them */
    nu_loop_finish(l);
}

TEST(client_ipv6_literal_url) {
    if (!nu_have_ipv6()) {
        printf("    skipped: no IPv6 loopback on this machine\n");
        return;
    }
    dx_loop *l = nu_loop();
    nu_rec srv = {.echo = true}, cli = {0};
    dx_server_options o = {.host = "::1"};
    dx_server *s = NULL;
    REQUIRE(nu_server(&s, l, &o, &nu_callbacks, &srv) == 0);
    char url[64];
    snprintf(url, sizeof url, "ws://[::1]:%u/six?x", (unsigned)dx_server_port(s));
    dx_conn *c = NULL;
    CHECK_RC(dx_client_connect(&c, l, url, NULL, &nu_callbacks, &cli), 0);
    CHECK_RUN_UNTIL(l, cli.opens == 1, 3000);
    CHECK(strcmp(dx_conn_url(c), url) == 0);
    dx_conn_send_text(c, dx_span_cstr("v6"));
    CHECK_RUN_UNTIL(l, cli.messages == 1, 3000);
    dx_conn_close(c, 1000, (dx_span){0});
    CHECK_RUN_UNTIL(l, cli.closes == 1 && srv.closes == 1, 3000);
    dx_server_destroy(s);
    nu_loop_finish(l);
}

/* ---- what comes with the 101 -------------------------------------------------------------- */

TEST(client_frames_in_the_same_write_as_the_101_are_delivered) {
    dx_loop *l = nu_loop();
    uint16_t port = 0;
    int lfd = nu_listen(&port, 8);
    REQUIRE(lfd >= 0);
    char url[64];
    nu_url(url, sizeof url, port, "/early");
    static const char *const protos[] = {"superchat", "chat"};
    dx_client_options co = {.protocols = protos, .num_protocols = 2};
    nu_rec r = {0};
    dx_conn *c = NULL;
    CHECK_RC(dx_client_connect(&c, l, url, &co, &nu_callbacks, &r), 0);
    int fd = nu_accept(l, lfd, 3000);
    REQUIRE(fd >= 0);
    nu_in in = {0};
    PUMP_UNTIL(l, fd, &in, nu_head_len(&in) > 0, 3000);
    CHECK(nu_in_has(&in, "GET /early HTTP/1.1\r\n"));
    uint8_t out[1024];
    size_t n = nu_accept_response(&in, "Sec-WebSocket-Protocol: chat\r\n", (char *)out, 512);
    nu_in_consume(&in, nu_head_len(&in));
    n += nu_frame(out + n, true, DX_OP_TEXT, false, "early", 5);
    n += nu_frame(out + n, true, DX_OP_PING, false, "pp", 2);
    n += nu_frame(out + n, true, DX_OP_BINARY, false, "\x01\x02", 2);
    nu_send(fd, out, n); /* one write */
    CHECK_RUN_UNTIL(l, r.messages == 2, 3000);
    CHECK_EQ_INT(r.opens, 1);
    CHECK_EQ_INT(r.pings, 1);
    CHECK(memcmp(r.seq, "early|", 6) == 0);
    CHECK(r.last_op == DX_OP_BINARY && r.msg_len == 2);
    CHECK_SPAN_STR(dx_conn_protocol(c), "chat");
    CHECK(strcmp(dx_conn_url(c), url) == 0);
    CHECK_EQ_INT(dx_conn_http_status(c), 101);
    /* the automatic pong and our message come masked */
    dx_conn_send_text(c, dx_span_cstr("reply"));
    nu_frame_view f = {0};
    PUMP_UNTIL(l, fd, &in, nu_next_frame(&in, &f), 3000);
    CHECK(f.opcode == DX_OP_PONG && f.masked && f.len == 2 && memcmp(f.payload, "pp", 2) == 0);
    nu_in_consume(&in, f.size);
    memset(&f, 0, sizeof f);
    PUMP_UNTIL(l, fd, &in, nu_next_frame(&in, &f), 3000);
    CHECK(f.opcode == DX_OP_TEXT && f.masked && f.len == 5 && memcmp(f.payload, "reply", 5) == 0);
    close(fd);
    CHECK_RUN_UNTIL(l, r.closes == 1, 3000);
    CHECK_EQ_INT(r.close_code, 1006);
    CHECK_EQ_INT(r.errors, 0); /* a server that just drops: no on_error */
    close(lfd);
    nu_loop_finish(l);
}

/* ---- proxies ------------------------------------------------------------------------------- */

/* A raw "proxy": accept, read the CONNECT head into @head, answer @answer; when it is a
 * 2xx, become the WebSocket server (101). Returns the fd. */
static int raw_proxy(dx_loop *l, int lfd, char *head, size_t cap, const char *answer) {
    int fd = nu_accept(l, lfd, 3000);
    if (fd < 0)
        return -1;
    nu_in in = {0};
    PUMP_UNTIL(l, fd, &in, nu_head_len(&in) > 0, 3000);
    size_t hl = nu_head_len(&in);
    snprintf(head, cap, "%.*s", (int)hl, (const char *)in.b);
    nu_in_consume(&in, hl);
    nu_send_str(fd, answer);
    if (strncmp(answer, "HTTP/1.1 2", 10) != 0)
        return fd;
    PUMP_UNTIL(l, fd, &in, nu_head_len(&in) > 0, 3000);
    char resp[512];
    size_t n = nu_accept_response(&in, NULL, resp, sizeof resp);
    nu_in_consume(&in, nu_head_len(&in));
    nu_send(fd, resp, n);
    return fd;
}

TEST(client_through_a_connect_proxy) {
    dx_loop *l = nu_loop();
    uint16_t pport = 0;
    int lfd = nu_listen(&pport, 8);
    REQUIRE(lfd >= 0);
    char proxy[96], head[1024], want[256];
    snprintf(proxy, sizeof proxy, "http://u%%40x:p%%3Aw@127.0.0.1:%u", (unsigned)pport);
    dx_client_options co = {.proxy = proxy};
    nu_rec r = {0};
    dx_conn *c = NULL;
    /* the target port does not matter: the proxy is the server */
    CHECK_RC(dx_client_connect(&c, l, "ws://127.0.0.1:4321/p", &co, &nu_callbacks, &r), 0);
    int fd = raw_proxy(l, lfd, head, sizeof head, "HTTP/1.1 200 Connection established\r\n\r\n");
    CHECK(fd >= 0);
    /* base64("u@x:p:w") */
    snprintf(want, sizeof want,
             "CONNECT 127.0.0.1:4321 HTTP/1.1\r\nHost: 127.0.0.1:4321\r\n"
             "Proxy-Authorization: Basic dUB4OnA6dw==\r\n\r\n");
    if (strcmp(head, want) != 0)
        printf("    CONNECT head: %s\n", head);
    CHECK(strcmp(head, want) == 0);
    CHECK_RUN_UNTIL(l, r.opens == 1, 3000);
    dx_conn_close(c, 1000, (dx_span){0});
    nu_in in = {0};
    PUMP_UNTIL(l, fd, &in, in.len > 0, 1000); /* the close frame */
    close(fd);
    CHECK_RUN_UNTIL(l, r.closes == 1, 3000);

    /* 407: DX_EPROXY with the status */
    nu_rec r2 = {0};
    CHECK_RC(dx_client_connect(&c, l, "ws://127.0.0.1:4321/p", &co, &nu_callbacks, &r2), 0);
    fd = raw_proxy(l, lfd, head, sizeof head,
                   "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n");
    CHECK_RUN_UNTIL(l, r2.closes == 1, 3000);
    CHECK_RC(r2.last_err, DX_EPROXY);
    CHECK_EQ_INT(r2.http_status, 407);
    CHECK_EQ_INT(r2.opens, 0);
    close(fd);
    close(lfd);
    nu_loop_finish(l);
}

TEST(client_proxy_from_the_environment) {
    dx_loop *l = nu_loop();
    uint16_t pport = 0;
    int lfd = nu_listen(&pport, 8);
    REQUIRE(lfd >= 0);
    nu_rec srv = {0};
    dx_server *s = NULL;
    REQUIRE(nu_echo_server(&s, l, &srv) == 0);
    char proxy[64], url[64], head[1024];
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%u", (unsigned)pport);
    nu_url(url, sizeof url, dx_server_port(s), "/");
    unsetenv("no_proxy");
    unsetenv("NO_PROXY");
    unsetenv("all_proxy");
    unsetenv("ALL_PROXY");

    /* http_proxy is used for ws:// */
    setenv("http_proxy", proxy, 1);
    nu_rec r = {0};
    dx_conn *c = NULL;
    CHECK_RC(dx_client_connect(&c, l, url, NULL, &nu_callbacks, &r), 0);
    int fd = raw_proxy(l, lfd, head, sizeof head, "HTTP/1.1 403 Forbidden\r\n\r\n");
    CHECK(strncmp(head, "CONNECT 127.0.0.1:", 18) == 0);
    CHECK_RUN_UNTIL(l, r.closes == 1, 3000);
    CHECK_RC(r.last_err, DX_EPROXY);
    CHECK_EQ_INT(r.http_status, 403);
    if (fd >= 0)
        close(fd);

    /* no_proxy wins; so do proxy "" and no_env_proxy */
    setenv("no_proxy", "localhost, 127.0.0.1", 1);
    nu_rec r2 = {0};
    CHECK_RC(dx_client_connect(&c, l, url, NULL, &nu_callbacks, &r2), 0);
    CHECK_RUN_UNTIL(l, r2.opens == 1, 3000);
    dx_conn_close(c, 1000, (dx_span){0});
    unsetenv("no_proxy");
    nu_rec r3 = {0}, r4 = {0};
    dx_client_options direct = {.proxy = ""}, noenv = {.no_env_proxy = true};
    CHECK_RC(dx_client_connect(&c, l, url, &direct, &nu_callbacks, &r3), 0);
    CHECK_RC(dx_client_connect(&c, l, url, &noenv, &nu_callbacks, &r4), 0);
    CHECK_RUN_UNTIL(l, r3.opens == 1 && r4.opens == 1, 3000);
    unsetenv("http_proxy");

    /* HTTP_PROXY (upper case) is never used: a CGI request can set it */
    setenv("HTTP_PROXY", proxy, 1);
    nu_rec r5 = {0};
    CHECK_RC(dx_client_connect(&c, l, url, NULL, &nu_callbacks, &r5), 0);
    CHECK_RUN_UNTIL(l, r5.opens == 1, 3000);
    unsetenv("HTTP_PROXY");

    /* all_proxy as the fallback */
    setenv("ALL_PROXY", proxy, 1);
    nu_rec r6 = {0};
    CHECK_RC(dx_client_connect(&c, l, url, NULL, &nu_callbacks, &r6), 0);
    fd = raw_proxy(l, lfd, head, sizeof head, "HTTP/1.1 502 Bad Gateway\r\n\r\n");
    CHECK_RUN_UNTIL(l, r6.closes == 1, 3000);
    CHECK_EQ_INT(r6.http_status, 502);
    if (fd >= 0)
        close(fd);
    setenv("ALL_PROXY", "ftp://nope", 1); /* a bad proxy URL from the environment */
    CHECK_RC(dx_client_connect(&c, l, url, NULL, &nu_callbacks, &r6), DX_EPROXY_URL);
    unsetenv("ALL_PROXY");

    dx_server_destroy(s);
    RUN_UNTIL(l, r2.closes && r3.closes && r4.closes && r5.closes, 3000);
    close(lfd);
    nu_loop_finish(l);
}

/* ---- the loop goes while a lookup runs ------------------------------------------------------ */

TEST(client_loop_destroy_while_a_resolution_runs) {
    for (int i = 0; i < 20; i++) {
        dx_loop *l = nu_loop();
        nu_rec r = {0};
        dx_conn *c = NULL;
        const char *url = i % 2 ? "ws://localhost:9/" : "ws://nonexistent.invalid/";
        bool hold = i % 4 < 2; /* keep the lookup thread from answering until destroy */
        if (hold)
            pthread_mutex_lock(&l->inbox_lock);
        CHECK_RC(dx_client_connect(&c, l, url, NULL, &nu_callbacks, &r), 0);
        dx_loop_run_once(l, 0); /* the lookup thread starts */
        CHECK(l->refs > 0);
        if (!hold)
            nu_run_for(l, 1); /* sometimes it has answered by now */
        if (!r.closes)
            dx_conn_close(c, 1000, (dx_span){0});
        CHECK_EQ_INT(r.closes, 1);
        if (hold)
            pthread_mutex_unlock(&l->inbox_lock);
        dx_loop_destroy(l); /* joins the lookup; nothing leaks (LeakSanitizer) */
    }
}
