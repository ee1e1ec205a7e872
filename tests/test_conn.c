/*
 * The connection layer (src/runtime/conn.c) on a real loop over 127.0.0.1: callback
 * order and counts, reassembly across reads, streaming, ping/pong and their round
 * trip, readyState, the browser's close checks, backpressure (refuse and close),
 * pause/resume, callbacks that close connections, keep-alive, idle and close
 * timeouts, and who closes TCP after a clean closing handshake (RFC 6455 §7.1.1).
 *
 * Peers are dx clients on the same loop or raw sockets the test drives; every wait
 * is bounded.
 */
#include "net_util.h"

/* A server and a dx client on one loop, both recording. */
typedef struct pair {
    dx_loop *l;
    dx_server *s;
    nu_rec srv, cli;
    dx_conn *c; /* the client connection */
} pair;

static pair *pair_new(const dx_conn_options *srv_opts, const dx_conn_options *cli_opts) {
    pair *p = calloc(1, sizeof(*p));
    p->l = nu_loop();
    dx_server_options o = {.callbacks = nu_callbacks, .user = &p->srv};
    if (srv_opts)
        o.conn = *srv_opts;
    if (nu_server(&p->s, p->l, &o) != 0)
        abort();
    char url[64];
    nu_url(url, sizeof url, dx_server_port(p->s), "/");
    dx_client_options co = {0};
    if (cli_opts)
        co.conn = *cli_opts;
    CHECK_RC(dx_client_connect(&p->c, p->l, url, &co, &nu_callbacks, &p->cli), 0);
    CHECK_RUN_UNTIL(p->l, p->cli.opens == 1 && p->srv.opens == 1, 3000);
    return p;
}

/* Close what is still open, let both sides finish, free everything. */
static void pair_free(pair *p) {
    if (p->cli.opens && !p->cli.closes)
        dx_conn_close(p->c, 1000, (dx_span){0});
    RUN_UNTIL(p->l, p->cli.closes && (p->srv.closes || !p->srv.opens), 3000);
    dx_server_destroy(p->s);
    nu_loop_finish(p->l);
    free(p);
}

/* A server for raw clients: records into @r. */
static dx_server *raw_server(dx_loop *l, nu_rec *r, const dx_conn_options *opts) {
    dx_server_options o = {.callbacks = nu_callbacks, .user = r};
    if (opts)
        o.conn = *opts;
    dx_server *s = NULL;
    if (nu_server(&s, l, &o) != 0)
        abort();
    return s;
}

/* A raw client through the handshake; the 101 head is consumed from @in. */
static int raw_open(dx_loop *l, dx_server *s, nu_in *in) {
    int st = 0;
    int fd = nu_raw_ws_connect(l, dx_server_port(s), "/", NULL, in, &st, true);
    CHECK_EQ_INT(st, 101);
    return fd;
}

/* raw_open with a small receive buffer, so that a peer that does not read fills up
 * after little data. */
static int raw_open_small(dx_loop *l, dx_server *s, nu_in *in) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(dx_server_port(s))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    nu_nonblock(fd);
    char req[512];
    nu_request(req, sizeof req, "/", NULL);
    nu_send_str(fd, req);
    PUMP_UNTIL(l, fd, in, nu_head_len(in) > 0, 3000);
    CHECK(in->len > 12 && memcmp(in->b, "HTTP/1.1 101", 12) == 0);
    nu_in_consume(in, nu_head_len(in));
    return fd;
}

/* ---- callbacks --------------------------------------------------------------------------- */

TEST(conn_open_message_close_each_run_exactly_once) {
    pair *p = pair_new(NULL, NULL);
    p->srv.echo = true;
    for (int i = 0; i < 5; i++) {
        char m[8];
        snprintf(m, sizeof m, "m%d", i);
        CHECK_RC(dx_conn_send_text(p->c, dx_span_cstr(m)), 0);
    }
    CHECK_RUN_UNTIL(p->l, p->cli.messages == 5, 3000);
    CHECK(strcmp(p->cli.seq, "m0|m1|m2|m3|m4|") == 0);
    CHECK_EQ_INT(p->srv.messages, 5);
    /* the server closes this time */
    CHECK_RC(dx_conn_close(p->srv.conn, 4001, dx_span_cstr("srv")), 0);
    CHECK_RUN_UNTIL(p->l, p->cli.closes == 1 && p->srv.closes == 1, 3000);
    nu_run_for(p->l, 50);
    CHECK_EQ_INT(p->cli.opens, 1);
    CHECK_EQ_INT(p->srv.opens, 1);
    CHECK_EQ_INT(p->cli.closes, 1);
    CHECK_EQ_INT(p->srv.closes, 1);
    CHECK_EQ_INT(p->cli.errors + p->srv.errors, 0);
    CHECK_EQ_INT(p->cli.bad_order + p->srv.bad_order, 0);
    CHECK(p->cli.clean && p->cli.remote);
    CHECK_EQ_INT(p->cli.close_code, 4001);
    CHECK(strcmp(p->cli.close_reason, "srv") == 0);
    CHECK(p->srv.clean && !p->srv.remote);
    CHECK_EQ_INT(p->srv.close_code, 4001); /* the client's answer echoes the code */
    pair_free(p);
}

TEST(conn_reassembles_messages_sent_one_byte_per_write) {
    dx_loop *l = nu_loop();
    nu_rec r = {0};
    dx_server *s = raw_server(l, &r, NULL);
    nu_in in = {0};
    int fd = raw_open(l, s, &in);
    REQUIRE(fd >= 0);
    /* 300 bytes of text with 2-, 3- and 4-byte characters, then a fragmented binary
     * message in three frames with a ping between them */
    char text[301];
    size_t tl = 0;
    while (tl + 10 <= 300) {
        memcpy(text + tl, "a\xc3\xa9\xe4\xb8\x96\xf0\x9f\x98\x80", 10);
        tl += 10;
    }
    uint8_t wire[1024];
    size_t n = nu_frame(wire, true, DX_OP_TEXT, true, text, tl);
    n += nu_frame(wire + n, false, DX_OP_BINARY, true, "\x00\x01", 2);
    n += nu_frame(wire + n, true, DX_OP_PING, true, "p", 1);
    n += nu_frame(wire + n, false, DX_OP_CONT, true, "\x02\x03\x04", 3);
    n += nu_frame(wire + n, true, DX_OP_CONT, true, "\x05", 1);
    for (size_t i = 0; i < n; i++) {
        nu_send(fd, wire + i, 1);
        dx_loop_run_once(l, 1);
    }
    CHECK_RUN_UNTIL(l, r.messages == 2, 3000);
    CHECK_EQ_INT(r.pings, 1);
    CHECK_EQ_INT(r.last_op, DX_OP_BINARY);
    CHECK(r.msg_len == 6 && memcmp(r.msg, "\x00\x01\x02\x03\x04\x05", 6) == 0);
    CHECK(r.seq_len > tl && memcmp(r.seq, text, tl) == 0);
    CHECK_EQ_INT(r.total_bytes, tl + 6);
    close(fd);
    CHECK_RUN_UNTIL(l, r.closes == 1, 3000);
    dx_server_destroy(s);
    nu_loop_finish(l);
}

typedef struct frag_rec {
    nu_rec rec; /* first: the user pointer */
    int calls, firsts, fins, bad;
    char data[256];
    size_t len;
} frag_rec;

static void on_fragment(dx_conn *c, const dx_fragment *f, void *user) {
    (void)c;
    frag_rec *r = user;
    if (f->first != (r->calls == 0 || r->fins == r->firsts))
        r->bad++; /* first only on a message's first piece */
    if (f->opcode != DX_OP_TEXT)
        r->bad++;
    r->calls++;
    r->firsts += f->first;
    r->fins += f->fin;
    if (r->len + f->data.len < sizeof r->data) {
        if (f->data.len)
            memcpy(r->data + r->len, f->data.ptr, f->data.len);
        r->len += f->data.len;
    }
}

TEST(conn_streaming_mode_delivers_pieces_with_first_and_fin) {
    dx_loop *l = nu_loop();
    frag_rec r = {0};
    dx_server_options o = {.callbacks = nu_callbacks, .user = &r, .conn.streaming = true};
    o.callbacks.on_fragment = on_fragment;
    dx_server *s = NULL;
    REQUIRE(nu_server(&s, l, &o) == 0);
    nu_in in = {0};
    int fd = raw_open(l, s, &in);
    REQUIRE(fd >= 0);
    nu_send_frame(fd, false, DX_OP_TEXT, "ab", 2);
    CHECK_RUN_UNTIL(l, r.calls >= 1, 3000);
    nu_send_frame(fd, false, DX_OP_CONT, "cd", 2);
    CHECK_RUN_UNTIL(l, r.len >= 4, 3000);
    CHECK_EQ_INT(r.fins, 0);
    nu_send_frame(fd, true, DX_OP_CONT, "ef", 2);
    CHECK_RUN_UNTIL(l, r.fins == 1, 3000);
    CHECK_EQ_INT(r.firsts, 1);
    CHECK(r.calls >= 3);
    CHECK(r.len == 6 && memcmp(r.data, "abcdef", 6) == 0);
    /* a second message, whole in one frame: one piece, first and fin */
    int before = r.calls;
    nu_send_frame(fd, true, DX_OP_TEXT, "gh", 2);
    CHECK_RUN_UNTIL(l, r.fins == 2, 3000);
    CHECK_EQ_INT(r.calls, before + 1);
    CHECK_EQ_INT(r.firsts, 2);
    CHECK_EQ_INT(r.bad, 0);
    CHECK_EQ_INT(r.rec.messages, 0); /* on_message is not used in streaming mode */
    close(fd);
    CHECK_RUN_UNTIL(l, r.rec.closes == 1, 3000);
    dx_server_destroy(s);
    nu_loop_finish(l);
}

TEST(conn_send_fragment_sequences) {
    dx_loop *l = nu_loop();
    nu_rec r = {0};
    dx_server *s = raw_server(l, &r, NULL);
    nu_in in = {0};
    int fd = raw_open(l, s, &in);
    REQUIRE(fd >= 0);
    CHECK_RUN_UNTIL(l, r.opens == 1, 3000);
    REQUIRE(r.conn != NULL);
    dx_conn *c = r.conn;
    CHECK_RC(dx_conn_send_fragment(c, DX_OP_CONT, dx_span_cstr("x"), true), DX_ESTATE);
    CHECK_RC(dx_conn_send_fragment(c, DX_OP_TEXT, dx_span_cstr("ab"), false), 0);
    CHECK_RC(dx_conn_send_fragment(c, DX_OP_TEXT, dx_span_cstr("no"), true), DX_ESTATE);
    CHECK_RC(dx_conn_send_text(c, dx_span_cstr("no")), DX_ESTATE);
    CHECK_RC(dx_conn_ping(c, dx_span_cstr("between")), 0); /* control frames may */
    CHECK_RC(dx_conn_send_fragment(c, DX_OP_CONT, dx_span_cstr("cd"), false), 0);
    CHECK_RC(dx_conn_send_fragment(c, DX_OP_CONT, dx_span_cstr("ef"), true), 0);
    CHECK_RC(dx_conn_send_binary(c, dx_span_cstr("after")), 0);
    static const struct {
        unsigned op;
        bool fin;
        const char *data;
    } want[] = {{DX_OP_TEXT, false, "ab"},
                {DX_OP_PING, true, "between"},
                {DX_OP_CONT, false, "cd"},
                {DX_OP_CONT, true, "ef"},
                {DX_OP_BINARY, true, "after"}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        nu_frame_view f = {0};
        PUMP_UNTIL(l, fd, &in, nu_next_frame(&in, &f), 3000);
        CHECK(f.opcode == want[i].op && f.fin == want[i].fin && !f.masked &&
              f.len == strlen(want[i].data) && memcmp(f.payload, want[i].data, f.len) == 0);
        if (f.size)
            nu_in_consume(&in, f.size);
    }
    close(fd);
    CHECK_RUN_UNTIL(l, r.closes == 1, 3000);
    dx_server_destroy(s);
    nu_loop_finish(l);
}

/* ---- ping and pong ----------------------------------------------------------------------- */

TEST(conn_ping_pong_round_trip_and_unsolicited_pong) {
    pair *p = pair_new(NULL, NULL);
    CHECK_RC(dx_conn_ping(p->c, dx_span_cstr("abc")), 0);
    CHECK_RUN_UNTIL(p->l, p->cli.pongs == 1, 3000);
    CHECK_EQ_INT(p->srv.pings, 1);
    CHECK(p->cli.last_rtt >= 0);
    CHECK_EQ_INT(p->cli.last_pong_len, 3);
    /* the server's ping, empty payload */
    CHECK_RC(dx_conn_ping(p->srv.conn, (dx_span){0}), 0);
    CHECK_RUN_UNTIL(p->l, p->srv.pongs == 1, 3000);
    CHECK_EQ_INT(p->cli.pings, 1);
    CHECK(p->srv.last_rtt >= 0);
    CHECK_EQ_INT(p->srv.last_pong_len, 0);
    uint8_t big[126] = {0};
    CHECK_RC(dx_conn_ping(p->c, (dx_span){big, sizeof big}), DX_EINVAL);
    pair_free(p);

    /* a pong nobody asked for, and one whose payload matches no ping */
    dx_loop *l = nu_loop();
    nu_rec r = {0};
    dx_server *s = raw_server(l, &r, NULL);
    nu_in in = {0};
    int fd = raw_open(l, s, &in);
    REQUIRE(fd >= 0);
    nu_send_frame(fd, true, DX_OP_PONG, "zz", 2);
    CHECK_RUN_UNTIL(l, r.pongs == 1, 3000);
    CHECK_EQ_INT(r.last_rtt, -1);
    CHECK_RC(dx_conn_ping(r.conn, dx_span_cstr("q1")), 0);
    nu_frame_view f = {0};
    PUMP_UNTIL(l, fd, &in, nu_next_frame(&in, &f), 3000);
    CHECK(f.opcode == DX_OP_PING && f.len == 2 && memcmp(f.payload, "q1", 2) == 0);
    nu_send_frame(fd, true, DX_OP_PONG, "q2", 2); /* wrong payload */
    CHECK_RUN_UNTIL(l, r.pongs == 2, 3000);
    CHECK_EQ_INT(r.last_rtt, -1);
    nu_send_frame(fd, true, DX_OP_PONG, "q1", 2); /* the answer */
    CHECK_RUN_UNTIL(l, r.pongs == 3, 3000);
    CHECK(r.last_rtt >= 0);
    close(fd);
    CHECK_RUN_UNTIL(l, r.closes == 1, 3000);
    dx_server_destroy(s);
    nu_loop_finish(l);
}

/* ---- readyState and the browser's checks ---------------------------------------------------- */

TEST(conn_ready_state_connecting_open_closing_closed) {
    dx_loop *l = nu_loop();
    nu_rec srv = {0}, cli = {0};
    dx_server *s = NULL;
    REQUIRE(nu_echo_server(&s, l, &srv) == 0);
    char url[64];
    nu_url(url, sizeof url, dx_server_port(s), "/");
    dx_conn *c = NULL;
    REQUIRE(dx_client_connect(&c, l, url, NULL, &nu_callbacks, &cli) == 0);
    CHECK_EQ_INT(dx_conn_state(c), DX_CONNECTING);
    CHECK_RC(dx_conn_send_text(c, dx_span_cstr("x")), DX_ECONNECTING);
    CHECK_RC(dx_conn_ping(c, (dx_span){0}), DX_ECONNECTING);
    CHECK_EQ_INT(dx_conn_http_status(c), 0);
    CHECK_EQ_INT(dx_conn_buffered_amount(c), 0);
    CHECK_RUN_UNTIL(l, cli.opens == 1 && srv.opens == 1, 3000);
    CHECK_EQ_INT(cli.state_in_open, DX_OPEN);
    CHECK_EQ_INT(dx_conn_state(c), DX_OPEN);
    CHECK_RC(dx_conn_send(c, DX_OP_PING, dx_span_cstr("x")), DX_EINVAL);
    CHECK_RC(dx_conn_send(c, DX_OP_TEXT, (dx_span){NULL, 3}), DX_EINVAL);
    CHECK_RC(dx_conn_close(c, 1000, dx_span_cstr("done")), 0);
    CHECK_EQ_INT(dx_conn_state(c), DX_CLOSING);
    CHECK_RC(dx_conn_send_text(c, dx_span_cstr("x")), DX_ECLOSED);
    CHECK_RC(dx_conn_ping(c, (dx_span){0}), DX_ECLOSED);
    CHECK_RC(dx_conn_close(c, 3000, (dx_span){0}), 0); /* already closing: nothing */
    CHECK_RUN_UNTIL(l, cli.closes == 1 && srv.closes == 1, 3000);
    CHECK_EQ_INT(cli.state_in_close, DX_CLOSED);
    CHECK_EQ_INT(srv.state_in_close, DX_CLOSED);
    CHECK_EQ_INT(cli.close_code, 1000); /* the server echoed our code, not 3000 */
    CHECK(strcmp(srv.close_reason, "done") == 0);
    dx_server_destroy(s);
    nu_loop_finish(l);
}

/* Open a pair, close from the client with @code/@reason, return what the server saw. */
static void client_close_seen(uint16_t code, const char *reason, size_t reason_len,
                              uint16_t want_code) {
    pair *p = pair_new(NULL, NULL);
    CHECK_RC(dx_conn_close(p->c, code, (dx_span){(const uint8_t *)reason, reason_len}), 0);
    CHECK_RUN_UNTIL(p->l, p->srv.closes == 1 && p->cli.closes == 1, 3000);
    CHECK_EQ_INT(p->srv.close_code, want_code);
    CHECK(strlen(p->srv.close_reason) == reason_len &&
          memcmp(p->srv.close_reason, reason ? reason : "", reason_len) == 0);
    CHECK(p->cli.clean && p->srv.clean);
    pair_free(p);
}

TEST(conn_client_close_codes_and_reasons_follow_the_browser) {
    pair *p = pair_new(NULL, NULL);
    static const unsigned bad[] = {1001, 1002, 1004, 1005, 1006, 1011, 1015, 2999, 5000, 65535};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_RC(dx_conn_close(p->c, (uint16_t)bad[i], (dx_span){0}), DX_EBAD_CLOSE_CODE);
    char r124[125];
    memset(r124, 'r', 124);
    r124[124] = '\0';
    CHECK_RC(dx_conn_close(p->c, 1000, (dx_span){(const uint8_t *)r124, 124}), DX_ECLOSE_REASON);
    CHECK_RC(dx_conn_close(p->c, 1000, dx_span_cstr("\xff")), DX_ECLOSE_REASON);
    CHECK_RC(dx_conn_close(p->c, 1000, dx_span_cstr("\xc3")), DX_ECLOSE_REASON);
    CHECK_RC(dx_conn_close(p->c, 1000, (dx_span){NULL, 3}), DX_ECLOSE_REASON);
    CHECK_EQ_INT(dx_conn_state(p->c), DX_OPEN); /* nothing happened */
    CHECK_RC(dx_conn_send_text(p->c, dx_span_cstr("still open")), 0);
    CHECK_RUN_UNTIL(p->l, p->srv.messages == 1, 3000);
    pair_free(p);

    client_close_seen(1000, NULL, 0, 1000);
    client_close_seen(3000, "x", 1, 3000);
    client_close_seen(4999, r124, 123, 4999);           /* 123 bytes: the most */
    client_close_seen(0, "\xc3\xa9t\xc3\xa9", 5, 1000); /* reason without code: 1000 */
    client_close_seen(0, NULL, 0, DX_CLOSE_NO_STATUS);  /* no code at all: 1005 */
}

TEST(conn_server_close_codes) {
    pair *p = pair_new(NULL, NULL);
    CHECK_RC(dx_conn_close(p->srv.conn, 1005, (dx_span){0}), DX_EBAD_CLOSE_CODE);
    CHECK_RC(dx_conn_close(p->srv.conn, 1006, (dx_span){0}), DX_EBAD_CLOSE_CODE);
    CHECK_RC(dx_conn_close(p->srv.conn, 5000, (dx_span){0}), DX_EBAD_CLOSE_CODE);
    CHECK_RC(dx_conn_close(p->srv.conn, 1001, dx_span_cstr("going")), 0);
    CHECK_RUN_UNTIL(p->l, p->cli.closes == 1 && p->srv.closes == 1, 3000);
    CHECK_EQ_INT(p->cli.close_code, 1001);
    CHECK(strcmp(p->cli.close_reason, "going") == 0);
    CHECK(p->cli.clean && p->cli.remote);
    pair_free(p);
}

TEST(conn_close_while_connecting_gives_one_1006) {
    dx_loop *l = nu_loop();
    nu_rec srv = {0}, cli = {0};
    dx_server *s = NULL;
    REQUIRE(nu_echo_server(&s, l, &srv) == 0);
    char url[64];
    nu_url(url, sizeof url, dx_server_port(s), "/");
    dx_conn *c = NULL;
    /* before it even started */
    REQUIRE(dx_client_connect(&c, l, url, NULL, &nu_callbacks, &cli) == 0);
    CHECK_RC(dx_conn_close(c, 1000, (dx_span){0}), 0);
    nu_run_for(l, 50);
    CHECK_EQ_INT(cli.closes, 1);
    CHECK_EQ_INT(cli.close_code, 1006);
    CHECK_EQ_INT(cli.opens + cli.errors, 0);
    CHECK_EQ_INT(srv.opens, 0);
    dx_server_destroy(s);

    /* after the request went out to a server that never answers */
    uint16_t port = 0;
    int lfd = nu_listen(&port, 8);
    REQUIRE(lfd >= 0);
    nu_rec cli2 = {0};
    nu_url(url, sizeof url, port, "/");
    REQUIRE(dx_client_connect(&c, l, url, NULL, &nu_callbacks, &cli2) == 0);
    int fd = nu_accept(l, lfd, 3000);
    CHECK(fd >= 0);
    nu_in in = {0};
    PUMP_UNTIL(l, fd, &in, nu_head_len(&in) > 0, 3000);
    CHECK(nu_head_len(&in) > 0);
    CHECK_EQ_INT(dx_conn_state(c), DX_CONNECTING);
    CHECK_RC(dx_conn_close(c, 3000, (dx_span){0}), 0);
    CHECK_EQ_INT(cli2.closes, 1);
    PUMP_UNTIL(l, fd, &in, false, 3000);
    CHECK(in.eof || in.err);
    nu_run_for(l, 30);
    CHECK_EQ_INT(cli2.closes, 1);
    CHECK_EQ_INT(cli2.close_code, 1006);
    CHECK_EQ_INT(cli2.opens, 0);
    close(fd);
    close(lfd);
    nu_loop_finish(l);
}

/* ---- backpressure ----------------------------------------------------------------------- */

#define BP_CAP ((size_t)64 << 10)
#define BP_MSG ((size_t)8 << 10)

/* Send BP_MSG messages from @c until the peer's kernel buffers are full and the send
 * queue refuses. Returns the bytes accepted (payload); *@frames_bytes the wire bytes.
 * Checks the cap after every send. */
static size_t fill_until_refused(dx_loop *l, dx_conn *c, size_t *wire_bytes, int *refusals,
                                 bool *over_cap) {
    static uint8_t msg[BP_MSG];
    size_t sent = 0;
    uint64_t end = nu_now_ms() + 8000;
    *wire_bytes = 0;
    *refusals = 0;
    while (nu_now_ms() < end) {
        int rc = dx_conn_send_binary(c, (dx_span){msg, sizeof msg});
        if (dx_conn_buffered_amount(c) > BP_CAP)
            *over_cap = true;
        if (rc == 0) {
            sent += sizeof msg;
            *wire_bytes += sizeof msg + 4; /* 8 KiB: 2 + 2 length bytes, unmasked */
            continue;
        }
        if (rc != DX_ESEND_QUEUE)
            break;
        (*refusals)++;
        size_t before = dx_conn_buffered_amount(c);
        nu_run_for(l, 30);
        if (dx_conn_state(c) != DX_OPEN || dx_conn_buffered_amount(c) == before)
            break; /* closing (DX_BP_CLOSE), or the kernel takes no more */
    }
    return sent;
}

TEST(conn_backpressure_refuses_past_the_cap_and_drains_once) {
    dx_loop *l = nu_loop();
    nu_rec r = {0};
    dx_conn_options o = {.max_send_queue = BP_CAP, .low_water = 4096};
    dx_server *s = raw_server(l, &r, &o);
    nu_in *in = calloc(1, sizeof(nu_in));
    int fd = raw_open_small(l, s, in);
    REQUIRE(fd >= 0);
    CHECK_RUN_UNTIL(l, r.opens == 1, 3000);
    REQUIRE(r.conn != NULL);
    dx_conn *c = r.conn;
    size_t wire = 0;
    int refusals = 0;
    bool over = false;
    size_t sent = fill_until_refused(l, c, &wire, &refusals, &over);
    CHECK(!over);
    CHECK(refusals > 0);
    size_t buffered = dx_conn_buffered_amount(c);
    CHECK(buffered > BP_CAP - BP_MSG - 8 && buffered <= BP_CAP);
    printf("    %zu KiB accepted before the kernel filled; %zu bytes buffered at the cap\n",
           sent >> 10, buffered);
    /* a refused send queues nothing */
    static uint8_t one[BP_MSG];
    CHECK_RC(dx_conn_send_binary(c, (dx_span){one, sizeof one}), DX_ESEND_QUEUE);
    CHECK_EQ_INT(dx_conn_buffered_amount(c), buffered);
    int drains = r.drains;
    nu_run_for(l, 100);
    CHECK_EQ_INT(r.drains, drains); /* the peer reads nothing: no drain */
    CHECK_EQ_INT(dx_conn_state(c), DX_OPEN);
    /* the peer reads everything: one drain */
    in->len = 0;
    in->total = 0; /* count from here: the 101 was read already */
    PUMP_UNTIL(l, fd, in, in->total >= wire, 10000);
    CHECK_EQ_INT(in->total, wire);
    CHECK_RUN_UNTIL(l, r.drains == drains + 1, 3000);
    CHECK_EQ_INT(dx_conn_buffered_amount(c), 0);
    nu_run_for(l, 50);
    CHECK_EQ_INT(r.drains, drains + 1);
    CHECK_RC(dx_conn_send_text(c, dx_span_cstr("again")), 0);
    close(fd);
    CHECK_RUN_UNTIL(l, r.closes == 1, 3000);
    free(in);
    dx_server_destroy(s);
    nu_loop_finish(l);
}

TEST(conn_backpressure_close_sends_1008) {
    dx_loop *l = nu_loop();
    nu_rec r = {0};
    dx_conn_options o = {.max_send_queue = BP_CAP, .backpressure = DX_BP_CLOSE};
    dx_server *s = raw_server(l, &r, &o);
    nu_in *in = calloc(1, sizeof(nu_in));
    int fd = raw_open_small(l, s, in);
    REQUIRE(fd >= 0);
    CHECK_RUN_UNTIL(l, r.opens == 1, 3000);
    REQUIRE(r.conn != NULL);
    dx_conn *c = r.conn;
    size_t wire = 0;
    int refusals = 0;
    bool over = false;
    fill_until_refused(l, c, &wire, &refusals, &over);
    CHECK(!over);
    CHECK_EQ_INT(refusals, 1);
    CHECK_EQ_INT(dx_conn_state(c), DX_CLOSING);
    CHECK_RC(dx_conn_send_text(c, dx_span_cstr("x")), DX_ECLOSED);
    /* the peer reads everything: the data, then a close frame with 1008 */
    bool found = false;
    uint16_t code = 0;
    uint64_t end = nu_now_ms() + 10000;
    while (!found && nu_now_ms() < end && !in->eof && !in->err) {
        nu_pump(fd, in);
        nu_frame_view f = {0};
        while (nu_next_frame(in, &f)) {
            if (f.opcode == DX_OP_CLOSE) {
                found = true;
                code = f.len >= 2 ? (uint16_t)(f.payload[0] << 8 | f.payload[1]) : 0;
            }
            nu_in_consume(in, f.size);
        }
        dx_loop_run_once(l, 5);
    }
    CHECK(found);
    CHECK_EQ_INT(code, 1008);
    nu_send_close(fd, true, 1008, NULL);
    PUMP_UNTIL(l, fd, in, false, 3000);
    CHECK(in->eof); /* the server closes TCP first */
    close(fd);      /* and on_close follows our FIN */
    CHECK_RUN_UNTIL(l, r.closes == 1, 3000);
    CHECK_EQ_INT(r.close_error, DX_ESEND_QUEUE);
    CHECK_EQ_INT(r.close_code, 1008);
    CHECK(r.clean);
    free(in);
    dx_server_destroy(s);
    nu_loop_finish(l);
}

/* ---- a peer that pings and never reads -------------------------------------------------- */

#define FLOOD_PING 125                  /* payload bytes of each ping */
#define FLOOD_FRAME (FLOOD_PING + 6)    /* masked: 2 header + 4 key bytes */
#define FLOOD_FRAMES ((size_t)64 << 10) /* 8.2 MiB of pings, far more than fits */

typedef struct flood {
    nu_rec rec;
    size_t max_buffered; /* the server connection's buffered amount, seen in on_ping */
} flood;

static void flood_on_ping(dx_conn *c, dx_span payload, void *user) {
    flood *f = user;
    nu_on_ping(c, payload, &f->rec);
    size_t b = dx_conn_buffered_amount(c);
    if (b > f->max_buffered)
        f->max_buffered = b;
}

/* Write what the socket takes of @buf from *@off, running @l, for @ms. */
static void flood_write(dx_loop *l, int fd, const uint8_t *buf, size_t len, size_t *off,
                        unsigned ms) {
    uint64_t end = nu_now_ms() + ms;
    while (nu_now_ms() < end) {
        ssize_t w = *off < len ? send(fd, buf + *off, len - *off, MSG_DONTWAIT | MSG_NOSIGNAL) : 0;
        if (w > 0)
            *off += (size_t)w;
        dx_loop_run_once(l, w > 0 ? 0 : 2);
    }
}

/* Read into @in only what fits (nu_pump drops what does not). */
static void pump_some(int fd, nu_in *in) {
    ssize_t n = recv(fd, in->b + in->len, sizeof in->b - in->len, MSG_DONTWAIT);
    if (n > 0)
        in->len += (size_t)n;
    else if (n == 0)
        in->eof = true;
    else if (errno != EAGAIN && errno != EINTR)
        in->err = errno;
}

/* RFC 6455 §5.5.2 has us answer every ping; a peer that pings and never reads makes
 * those pongs pile up. They count toward max_send_queue like any output: past it the
 * server stops reading (TCP flow control then stops the peer) until they drain, and
 * every ping is still answered once the peer reads. */
TEST(rfc6455_5_5_2_pongs_to_a_peer_that_does_not_read_stop_reading_at_the_cap) {
    dx_loop *l = nu_loop();
    flood f = {0};
    dx_server_options so = {.callbacks = nu_callbacks, .user = &f};
    so.callbacks.on_ping = flood_on_ping;
    so.conn = (dx_conn_options){.max_send_queue = BP_CAP, .low_water = 4096};
    dx_server *s = NULL;
    REQUIRE(nu_server(&s, l, &so) == 0);
    nu_in *in = calloc(1, sizeof(nu_in));
    size_t len = FLOOD_FRAMES * FLOOD_FRAME;
    uint8_t *buf = malloc(len);
    REQUIRE(in && buf);
    uint8_t payload[FLOOD_PING];
    memset(payload, 'p', sizeof payload);
    for (size_t i = 0; i < FLOOD_FRAMES; i++)
        nu_frame(buf + i * FLOOD_FRAME, true, DX_OP_PING, true, payload, FLOOD_PING);
    int fd = raw_open_small(l, s, in);
    REQUIRE(fd >= 0);
    CHECK_RUN_UNTIL(l, f.rec.opens == 1, 3000);
    size_t off = 0;
    flood_write(l, fd, buf, len, &off, 1000);
    int pings_at_1s = f.rec.pings;
    flood_write(l, fd, buf, len, &off, 500);
    /* the server stopped reading: nothing more was parsed, the peer's writes stall */
    CHECK_EQ_INT(f.rec.pings, pings_at_1s);
    CHECK(off < len);
    CHECK(f.rec.pings > 0);
    CHECK(f.max_buffered <= BP_CAP + FLOOD_PING + 2); /* the cap and one pong, never more */
    CHECK_EQ_INT(f.rec.closes, 0);
    CHECK(f.rec.conn && dx_conn_state(f.rec.conn) == DX_OPEN);
    /* the peer reads now: every ping it wrote whole is answered, in order */
    size_t frames = 0;
    uint64_t end = nu_now_ms() + 20000;
    while (nu_now_ms() < end && !in->eof && !in->err) {
        if (off % FLOOD_FRAME) { /* finish the ping the socket took part of */
            ssize_t w =
                send(fd, buf + off, FLOOD_FRAME - off % FLOOD_FRAME, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (w > 0)
                off += (size_t)w;
        }
        pump_some(fd, in);
        nu_frame_view fv = {0};
        while (nu_next_frame(in, &fv)) {
            if (fv.opcode != DX_OP_PONG || fv.len != FLOOD_PING)
                break;
            frames++;
            nu_in_consume(in, fv.size);
        }
        if (off % FLOOD_FRAME == 0 && frames == off / FLOOD_FRAME)
            break;
        dx_loop_run_once(l, 1);
    }
    CHECK_EQ_INT(frames, off / FLOOD_FRAME);
    CHECK_EQ_INT((size_t)f.rec.pings, off / FLOOD_FRAME);
    CHECK_EQ_INT(f.rec.closes, 0);
    CHECK(f.max_buffered <= BP_CAP + FLOOD_PING + 2);
    close(fd);
    CHECK_RUN_UNTIL(l, f.rec.closes == 1, 3000);
    free(buf);
    free(in);
    dx_server_destroy(s);
    nu_loop_finish(l);
}

/* The same flood under DX_BP_CLOSE: past the cap the connection is closed with 1008. */
TEST(rfc6455_5_5_2_pongs_past_the_cap_close_with_1008_under_the_close_policy) {
    dx_loop *l = nu_loop();
    flood f = {0};
    dx_server_options so = {.callbacks = nu_callbacks, .user = &f};
    so.callbacks.on_ping = flood_on_ping;
    so.conn = (dx_conn_options){.max_send_queue = BP_CAP, .backpressure = DX_BP_CLOSE};
    dx_server *s = NULL;
    REQUIRE(nu_server(&s, l, &so) == 0);
    nu_in *in = calloc(1, sizeof(nu_in));
    size_t len = FLOOD_FRAMES * FLOOD_FRAME;
    uint8_t *buf = malloc(len);
    REQUIRE(in && buf);
    uint8_t payload[FLOOD_PING];
    memset(payload, 'p', sizeof payload);
    for (size_t i = 0; i < FLOOD_FRAMES; i++)
        nu_frame(buf + i * FLOOD_FRAME, true, DX_OP_PING, true, payload, FLOOD_PING);
    int fd = raw_open_small(l, s, in);
    REQUIRE(fd >= 0);
    CHECK_RUN_UNTIL(l, f.rec.opens == 1, 3000);
    size_t off = 0;
    flood_write(l, fd, buf, len, &off, 1000);
    CHECK(f.max_buffered <= BP_CAP + FLOOD_PING + 2);
    /* the peer reads: pongs, then the close frame with 1008 */
    uint16_t code = 0;
    for (uint64_t end = nu_now_ms() + 10000; nu_now_ms() < end && !in->eof && !in->err;) {
        pump_some(fd, in);
        nu_frame_view fv = {0};
        while (nu_next_frame(in, &fv)) {
            if (fv.opcode == DX_OP_CLOSE) {
                code = fv.len >= 2 ? (uint16_t)(fv.payload[0] << 8 | fv.payload[1]) : 0;
                goto found;
            }
            nu_in_consume(in, fv.size);
        }
        dx_loop_run_once(l, 1);
    }
found:
    CHECK_EQ_INT(code, 1008);
    close(fd);
    CHECK_RUN_UNTIL(l, f.rec.closes == 1, 6000);
    CHECK_EQ_INT(f.rec.close_error, DX_ESEND_QUEUE);
    free(buf);
    free(in);
    dx_server_destroy(s);
    nu_loop_finish(l);
}

/* ---- pause and resume ------------------------------------------------------------------- */

TEST(conn_pause_keeps_bytes_and_resume_delivers_them_in_order) {
    dx_loop *l = nu_loop();
    nu_rec r = {0};
    dx_server *s = raw_server(l, &r, NULL);
    nu_in in = {0};
    int fd = raw_open(l, s, &in);
    REQUIRE(fd >= 0);
    CHECK_RUN_UNTIL(l, r.opens == 1, 3000);
    REQUIRE(r.conn != NULL);
    dx_conn_pause(r.conn);
    dx_conn_pause(r.conn); /* idempotent */
    uint8_t wire[64];
    size_t n = nu_frame(wire, true, DX_OP_TEXT, true, "1", 1);
    n += nu_frame(wire + n, true, DX_OP_TEXT, true, "2", 1);
    n += nu_frame(wire + n, true, DX_OP_TEXT, true, "3", 1);
    nu_send(fd, wire, n);
    nu_run_for(l, 100);
    CHECK_EQ_INT(r.messages, 0);
    dx_conn_resume(r.conn);
    CHECK_EQ_INT(r.messages, 0); /* delivered in the next iteration, not in the call */
    CHECK_RUN_UNTIL(l, r.messages == 3, 3000);
    CHECK(strcmp(r.seq, "1|2|3|") == 0);

    /* paused from inside on_message: the rest of the same read waits */
    r.pause_on_message = true;
    n = nu_frame(wire, true, DX_OP_TEXT, true, "a", 1);
    n += nu_frame(wire + n, true, DX_OP_TEXT, true, "b", 1);
    n += nu_frame(wire + n, true, DX_OP_TEXT, true, "c", 1);
    nu_send(fd, wire, n);
    CHECK_RUN_UNTIL(l, r.messages == 4, 3000);
    nu_run_for(l, 50);
    CHECK_EQ_INT(r.messages, 4);
    nu_send_frame(fd, true, DX_OP_TEXT, "d", 1); /* arrives while paused */
    nu_run_for(l, 50);
    CHECK_EQ_INT(r.messages, 4);
    for (int i = 5; i <= 7; i++) {
        dx_conn_resume(r.conn);
        CHECK_RUN_UNTIL(l, r.messages == i, 3000);
        nu_run_for(l, 20);
        CHECK_EQ_INT(r.messages, i);
    }
    CHECK(strcmp(r.seq, "1|2|3|a|b|c|d|") == 0);
    r.pause_on_message = false;
    dx_conn_resume(r.conn);
    nu_send_frame(fd, true, DX_OP_TEXT, "e", 1);
    CHECK_RUN_UNTIL(l, r.messages == 8, 3000);
    close(fd);
    CHECK_RUN_UNTIL(l, r.closes == 1, 3000);
    dx_server_destroy(s);
    nu_loop_finish(l);
}

TEST(conn_pause_while_connecting_takes_effect_once_open) {
    dx_loop *l = nu_loop();
    uint16_t port = 0;
    int lfd = nu_listen(&port, 8);
    REQUIRE(lfd >= 0);
    char url[64];
    nu_url(url, sizeof url, port, "/");
    nu_rec r = {0};
    dx_conn *c = NULL;
    REQUIRE(dx_client_connect(&c, l, url, NULL, &nu_callbacks, &r) == 0);
    dx_conn_pause(c); /* before the handshake: it must still complete */
    nu_in in = {0};
    int fd = nu_raw_server_open(l, lfd, &in, NULL);
    REQUIRE(fd >= 0);
    uint8_t b[64];
    size_t n = nu_frame(b, true, DX_OP_TEXT, false, "held", 4);
    nu_send(fd, b, n);
    CHECK_RUN_UNTIL(l, r.opens == 1, 3000);
    nu_run_for(l, 50);
    CHECK_EQ_INT(r.messages, 0); /* paused once open */
    dx_conn_resume(c);
    CHECK_RUN_UNTIL(l, r.messages == 1, 3000);
    CHECK(strcmp(r.seq, "held|") == 0);
    close(fd); /* and the end is seen */
    CHECK_RUN_UNTIL(l, r.closes == 1, 3000);

    /* pause then resume while connecting: not paused once open */
    nu_rec r2 = {0};
    REQUIRE(dx_client_connect(&c, l, url, NULL, &nu_callbacks, &r2) == 0);
    dx_conn_pause(c);
    dx_conn_resume(c);
    memset(&in, 0, sizeof in);
    fd = nu_raw_server_open(l, lfd, &in, NULL);
    REQUIRE(fd >= 0);
    nu_send(fd, b, n);
    CHECK_RUN_UNTIL(l, r2.messages == 1, 3000);
    close(fd);
    CHECK_RUN_UNTIL(l, r2.closes == 1, 3000);
    close(lfd);
    nu_loop_finish(l);
}

/* ---- callbacks that close connections ----------------------------------------------------- */

typedef struct closer {
    nu_rec rec;         /* first: the user pointer */
    dx_conn *conns[8];  /* open server connections */
    int chain;          /* on_close aborts every other connection */
    int after_abort_rc; /* dx_conn_send after aborting itself */
    int after_close_rc; /* dx_conn_send after closing itself */
    dx_ready_state state_after_abort;
} closer;

static void closer_open(dx_conn *c, void *user) {
    closer *k = user;
    for (int i = 0; i < 8; i++)
        if (!k->conns[i]) {
            k->conns[i] = c;
            break;
        }
    nu_on_open(c, user);
}

static void closer_message(dx_conn *c, dx_opcode op, dx_span data, void *user) {
    closer *k = user;
    nu_on_message(c, op, data, user);
    if (dx_span_eq(data, dx_span_cstr("abort-self"))) {
        dx_conn_abort(c);
        k->state_after_abort = dx_conn_state(c);
        k->after_abort_rc = dx_conn_send_text(c, data);
        CHECK_RC(dx_conn_close(c, 1000, (dx_span){0}), 0);
        dx_conn_pause(c);
        dx_conn_resume(c);
        dx_conn_abort(c);
    } else if (dx_span_eq(data, dx_span_cstr("close-self"))) {
        CHECK_RC(dx_conn_close(c, 1000, (dx_span){0}), 0);
        k->after_close_rc = dx_conn_send_text(c, data);
    } else if (dx_span_eq(data, dx_span_cstr("abort-others"))) {
        for (int i = 0; i < 8; i++)
            if (k->conns[i] && k->conns[i] != c)
                dx_conn_abort(k->conns[i]);
        dx_conn_send_text(c, dx_span_cstr("done"));
    } else {
        dx_conn_send(c, op, data);
    }
}

static void closer_close(dx_conn *c, const dx_close_info *info, void *user) {
    closer *k = user;
    for (int i = 0; i < 8; i++)
        if (k->conns[i] == c)
            k->conns[i] = NULL;
    nu_on_close(c, info, user);
    if (k->chain)
        for (int i = 0; i < 8; i++)
            if (k->conns[i])
                dx_conn_abort(k->conns[i]);
}

TEST(conn_callbacks_may_close_their_own_and_other_connections) {
    dx_loop *l = nu_loop();
    closer k = {0};
    dx_server_options o = {.callbacks = nu_callbacks, .user = &k};
    o.callbacks.on_open = closer_open;
    o.callbacks.on_message = closer_message;
    o.callbacks.on_close = closer_close;
    dx_server *s = NULL;
    REQUIRE(nu_server(&s, l, &o) == 0);
    char url[64];
    nu_url(url, sizeof url, dx_server_port(s), "/");
    enum { N = 4 };
    nu_rec cli[N];
    memset(cli, 0, sizeof cli);
    dx_conn *c[N];
    for (int i = 0; i < N; i++)
        CHECK_RC(dx_client_connect(&c[i], l, url, NULL, &nu_callbacks, &cli[i]), 0);
    int opened = 0;
    RUN_UNTIL(l,
              (opened = cli[0].opens + cli[1].opens + cli[2].opens + cli[3].opens) == N &&
                  k.rec.opens == N,
              3000);
    CHECK_EQ_INT(opened, N);
    /* 0 aborts the others while 1 sends in the same iteration */
    dx_conn_send_text(c[0], dx_span_cstr("abort-others"));
    dx_conn_send_text(c[1], dx_span_cstr("hello"));
    CHECK_RUN_UNTIL(l, cli[1].closes && cli[2].closes && cli[3].closes && cli[0].messages, 3000);
    CHECK_EQ_INT(cli[1].close_code, 1006);
    CHECK_EQ_INT(cli[0].closes, 0);
    CHECK(strcmp(cli[0].seq, "done|") == 0);
    CHECK_EQ_INT(k.rec.closes, 3);

    /* a connection aborts itself, another closes itself */
    nu_rec cli2[2];
    memset(cli2, 0, sizeof cli2);
    dx_conn *d[2];
    for (int i = 0; i < 2; i++)
        CHECK_RC(dx_client_connect(&d[i], l, url, NULL, &nu_callbacks, &cli2[i]), 0);
    CHECK_RUN_UNTIL(l, cli2[0].opens && cli2[1].opens && k.rec.opens == N + 2, 3000);
    dx_conn_send_text(d[0], dx_span_cstr("abort-self"));
    dx_conn_send_text(d[1], dx_span_cstr("close-self"));
    CHECK_RUN_UNTIL(l, cli2[0].closes && cli2[1].closes, 3000);
    CHECK_EQ_INT(cli2[0].close_code, 1006);
    CHECK_EQ_INT(cli2[1].close_code, 1000);
    CHECK(cli2[1].clean);
    CHECK_RC(k.after_abort_rc, DX_ECLOSED);
    CHECK_RC(k.after_close_rc, DX_ECLOSED);
    CHECK_EQ_INT(k.state_after_abort, DX_CLOSED);
    CHECK_RUN_UNTIL(l, k.rec.closes == 5, 3000);

    /* on_close of one aborts all the others (a chain inside on_close) */
    nu_rec cli3[3];
    memset(cli3, 0, sizeof cli3);
    dx_conn *e[3];
    for (int i = 0; i < 3; i++)
        CHECK_RC(dx_client_connect(&e[i], l, url, NULL, &nu_callbacks, &cli3[i]), 0);
    CHECK_RUN_UNTIL(l, cli3[0].opens && cli3[1].opens && cli3[2].opens && k.rec.opens == N + 5,
                    3000);
    k.chain = 1;
    dx_conn_abort(e[0]); /* the client goes; its server connection's on_close starts the chain */
    CHECK_EQ_INT(cli3[0].closes, 1);
    /* every server connection goes: e[0..2] and c[0] */
    CHECK_RUN_UNTIL(l, cli3[1].closes && cli3[2].closes && cli[0].closes && k.rec.closes == 9,
                    3000);
    nu_run_for(l, 30);
    CHECK_EQ_INT(k.rec.closes, 9);
    for (int i = 0; i < 8; i++)
        CHECK(k.conns[i] == NULL);
    CHECK_EQ_INT(dx_server_connections(s), 0);
    CHECK_EQ_INT(cli[0].close_code, 1006);
    dx_server_destroy(s);
    nu_loop_finish(l);
}

TEST(conn_client_closes_itself_in_on_open) {
    pair *p = calloc(1, sizeof(*p));
    p->l = nu_loop();
    REQUIRE(nu_echo_server(&p->s, p->l, &p->srv) == 0);
    p->cli.close_in_open = 4000;
    char url[64];
    nu_url(url, sizeof url, dx_server_port(p->s), "/");
    CHECK_RC(dx_client_connect(&p->c, p->l, url, NULL, &nu_callbacks, &p->cli), 0);
    CHECK_RUN_UNTIL(p->l, p->cli.closes == 1 && p->srv.closes == 1, 3000);
    CHECK_EQ_INT(p->cli.opens, 1);
    CHECK_EQ_INT(p->srv.close_code, 4000);
    CHECK(p->cli.clean);
    pair_free(p);
}

/* ---- keep-alive and timeouts ---------------------------------------------------------------- */

TEST(conn_keepalive_pings_a_quiet_peer) {
    dx_loop *l = nu_loop();
    nu_rec r = {0};
    dx_conn_options o = {.ping_interval_ms = 50, .pong_timeout_ms = 1000};
    dx_server *s = raw_server(l, &r, &o);
    nu_in in = {0};
    int fd = raw_open(l, s, &in);
    REQUIRE(fd >= 0);
    int pings = 0;
    uint64_t t0 = nu_now_ms();
    while (pings < 3 && nu_now_ms() - t0 < 5000 && !in.eof) {
        nu_frame_view f = {0};
        PUMP_UNTIL(l, fd, &in, nu_next_frame(&in, &f), 3000);
        if (f.size == 0)
            break;
        CHECK_EQ_INT(f.opcode, DX_OP_PING);
        pings++;
        nu_send_frame(fd, true, DX_OP_PONG, f.payload, f.len); /* answer it */
        nu_in_consume(&in, f.size);
    }
    uint64_t dt = nu_now_ms() - t0;
    printf("    3 keep-alive pings in %llu ms\n", (unsigned long long)dt);
    CHECK_EQ_INT(pings, 3);
    /* the first tick comes 500 ms after open; then one ping every 50 ms after each
     * pong (about 600 ms in all), not at each 1 s pong deadline (2.5 s) */
    CHECK(dt < 1500);
    CHECK_RUN_UNTIL(l, r.pongs == 3, 3000);
    CHECK(r.last_rtt >= 0);
    CHECK_EQ_INT(r.closes + r.errors, 0);
    close(fd);
    CHECK_RUN_UNTIL(l, r.closes == 1, 3000);
    dx_server_destroy(s);
    nu_loop_finish(l);
}

TEST(conn_keepalive_unanswered_ping_fails_the_connection) {
    dx_loop *l = nu_loop();
    nu_rec r = {0};
    dx_conn_options o = {.ping_interval_ms = 50, .pong_timeout_ms = 50};
    dx_server *s = raw_server(l, &r, &o);
    nu_in in = {0};
    int fd = raw_open(l, s, &in);
    REQUIRE(fd >= 0);
    CHECK_RUN_UNTIL(l, r.closes == 1, 5000);
    CHECK_EQ_INT(r.errors, 1);
    CHECK_RC(r.last_err, DX_EPING_TIMEOUT);
    CHECK_EQ_INT(r.close_code, 1006);
    CHECK_RC(r.close_error, DX_EPING_TIMEOUT);
    CHECK(!r.clean);
    CHECK_EQ_INT(r.bad_order, 0);
    /* the peer saw the ping, then a close frame (1011), then the end */
    PUMP_UNTIL(l, fd, &in, false, 2000);
    nu_frame_view f = {0};
    CHECK(nu_next_frame(&in, &f) && f.opcode == DX_OP_PING);
    nu_in_consume(&in, f.size);
    CHECK(nu_next_frame(&in, &f) && f.opcode == DX_OP_CLOSE && f.len >= 2 &&
          (f.payload[0] << 8 | f.payload[1]) == 1011);
    CHECK(in.eof || in.err);
    close(fd);
    dx_server_destroy(s);
    nu_loop_finish(l);
}

TEST(conn_idle_timeout_closes_with_1001) {
    dx_conn_options so = {.idle_timeout_ms = 200, .ping_interval_ms = DX_NEVER};
    pair *p = pair_new(&so, NULL);
    /* traffic keeps it alive */
    p->srv.echo = true;
    uint64_t t_last = 0;
    for (int i = 0; i < 8; i++) {
        t_last = nu_now_ms();
        dx_conn_send_text(p->c, dx_span_cstr("tick"));
        nu_run_for(p->l, 50);
    }
    CHECK_EQ_INT(p->cli.messages, 8);
    CHECK_EQ_INT(p->srv.closes, 0);
    CHECK_RUN_UNTIL(p->l, p->srv.closes == 1 && p->cli.closes == 1, 5000);
    uint64_t dt = nu_now_ms() - t_last;
    CHECK(dt >= 190); /* 200 ms after the last message, not before */
    CHECK_EQ_INT(p->cli.close_code, 1001);
    CHECK(p->cli.clean && p->cli.remote);
    CHECK_EQ_INT(p->srv.close_code, 1001);
    CHECK_RC(p->srv.close_error, DX_EIDLE_TIMEOUT);
    CHECK_EQ_INT(p->srv.errors, 0); /* a clean close is no failure (conn.h) */
    pair_free(p);
}

TEST(conn_close_timeout_when_the_peer_never_answers) {
    dx_loop *l = nu_loop();
    nu_rec r = {0};
    dx_conn_options o = {.close_timeout_ms = 100};
    dx_server *s = raw_server(l, &r, &o);
    nu_in in = {0};
    int fd = raw_open(l, s, &in);
    REQUIRE(fd >= 0);
    CHECK_RUN_UNTIL(l, r.opens == 1, 3000);
    REQUIRE(r.conn != NULL);
    uint64_t t0 = nu_now_ms();
    CHECK_RC(dx_conn_close(r.conn, 1000, (dx_span){0}), 0);
    CHECK_RUN_UNTIL(l, r.closes == 1, 3000);
    uint64_t dt = nu_now_ms() - t0;
    CHECK(dt >= 90 && dt < 2000);
    CHECK_EQ_INT(r.close_code, 1006);
    CHECK_RC(r.close_error, DX_ECLOSE_TIMEOUT);
    CHECK_RC(r.last_err, DX_ECLOSE_TIMEOUT);
    CHECK(!r.clean);
    PUMP_UNTIL(l, fd, &in, false, 2000);
    nu_frame_view f = {0};
    CHECK(nu_next_frame(&in, &f) && f.opcode == DX_OP_CLOSE);
    CHECK(in.eof || in.err);
    close(fd);

    /* the same on the client side, against a raw server that never answers */
    uint16_t port = 0;
    int lfd = nu_listen(&port, 8);
    char url[64];
    nu_url(url, sizeof url, port, "/");
    nu_rec cli = {0};
    dx_client_options co = {.conn.close_timeout_ms = 100};
    dx_conn *c = NULL;
    REQUIRE(dx_client_connect(&c, l, url, &co, &nu_callbacks, &cli) == 0);
    nu_in sin = {0};
    int sfd = nu_raw_server_open(l, lfd, &sin, NULL);
    CHECK(sfd >= 0);
    CHECK_RUN_UNTIL(l, cli.opens == 1, 3000);
    t0 = nu_now_ms();
    dx_conn_close(c, 1000, (dx_span){0});
    CHECK_RUN_UNTIL(l, cli.closes == 1, 3000);
    dt = nu_now_ms() - t0;
    CHECK(dt >= 90 && dt < 2000);
    CHECK_EQ_INT(cli.close_code, 1006);
    CHECK_RC(cli.close_error, DX_ECLOSE_TIMEOUT);
    close(sfd);
    close(lfd);
    dx_server_destroy(s);
    nu_loop_finish(l);
}

/* ---- who closes TCP ---------------------------------------------------------------------------
 */

TEST(conn_server_closes_tcp_after_a_clean_close) {
    dx_loop *l = nu_loop();
    nu_rec r = {0};
    dx_server *s = raw_server(l, &r, NULL); /* close_timeout: the default 5 s */
    nu_in in = {0};
    /* the client starts the closing handshake */
    int fd = raw_open(l, s, &in);
    REQUIRE(fd >= 0);
    uint64_t t0 = nu_now_ms();
    nu_send_close(fd, true, 4002, "bye");
    PUMP_UNTIL(l, fd, &in, false, 3000);
    CHECK(in.eof && !in.err);
    CHECK(nu_now_ms() - t0 < 1000);
    nu_frame_view f = {0};
    CHECK(nu_next_frame(&in, &f) && f.opcode == DX_OP_CLOSE && f.len >= 2 &&
          (f.payload[0] << 8 | f.payload[1]) == 4002);
    CHECK_RUN_UNTIL(l, r.closes == 1, 1000); /* closed at once: no FIN awaited */
    close(fd);
    CHECK(r.clean && r.remote);
    CHECK_EQ_INT(r.close_code, 4002);

    /* the server starts it: after the client's answer the server closes TCP at once */
    memset(&in, 0, sizeof in);
    fd = raw_open(l, s, &in);
    REQUIRE(fd >= 0);
    CHECK_RUN_UNTIL(l, r.opens == 2, 3000);
    CHECK_RC(dx_conn_close(r.conn, 4003, (dx_span){0}), 0);
    memset(&f, 0, sizeof f);
    PUMP_UNTIL(l, fd, &in, nu_next_frame(&in, &f), 3000);
    CHECK(f.opcode == DX_OP_CLOSE);
    CHECK(!in.eof);
    nu_in_consume(&in, f.size);
    t0 = nu_now_ms();
    nu_send_close(fd, true, 4003, NULL);
    PUMP_UNTIL(l, fd, &in, false, 3000);
    CHECK(in.eof && !in.err);
    CHECK(nu_now_ms() - t0 < 1000); /* not after the 5 s close timeout */
    close(fd);
    CHECK_RUN_UNTIL(l, r.closes == 2, 3000);
    CHECK(r.clean && !r.remote);
    CHECK_EQ_INT(r.close_code, 4003);
    dx_server_destroy(s);
    nu_loop_finish(l);
}

TEST(conn_client_waits_for_the_servers_fin) {
    dx_loop *l = nu_loop();
    uint16_t port = 0;
    int lfd = nu_listen(&port, 8);
    REQUIRE(lfd >= 0);
    char url[64];
    nu_url(url, sizeof url, port, "/");
    nu_rec cli = {0};
    dx_client_options co = {.conn.close_timeout_ms = 3000};
    dx_conn *c = NULL;
    REQUIRE(dx_client_connect(&c, l, url, &co, &nu_callbacks, &cli) == 0);
    nu_in in = {0};
    int fd = nu_raw_server_open(l, lfd, &in, NULL);
    REQUIRE(fd >= 0);
    CHECK_RUN_UNTIL(l, cli.opens == 1, 3000);
    CHECK_RC(dx_conn_close(c, 1000, dx_span_cstr("bye")), 0);
    nu_frame_view f = {0};
    PUMP_UNTIL(l, fd, &in, nu_next_frame(&in, &f), 3000);
    CHECK(f.opcode == DX_OP_CLOSE && f.masked);
    nu_in_consume(&in, f.size);
    nu_send_close(fd, false, 1000, "ok"); /* the answer; TCP stays open */
    PUMP_UNTIL(l, fd, &in, false, 200);
    CHECK(!in.eof && !in.err); /* the client did not close TCP first */
    CHECK_EQ_INT(cli.closes, 0);
    CHECK_EQ_INT(dx_conn_state(c), DX_CLOSING);
    close(fd); /* the server's FIN */
    CHECK_RUN_UNTIL(l, cli.closes == 1, 3000);
    CHECK(cli.clean && !cli.remote);
    CHECK_EQ_INT(cli.close_code, 1000);
    CHECK(strcmp(cli.close_reason, "ok") == 0);
    CHECK_EQ_INT(cli.errors, 0);

    /* a server that never closes TCP: the client gives up after close_timeout_ms */
    nu_rec cli2 = {0};
    co.conn.close_timeout_ms = 100;
    REQUIRE(dx_client_connect(&c, l, url, &co, &nu_callbacks, &cli2) == 0);
    memset(&in, 0, sizeof in);
    fd = nu_raw_server_open(l, lfd, &in, NULL);
    CHECK_RUN_UNTIL(l, cli2.opens == 1, 3000);
    dx_conn_close(c, 1000, (dx_span){0});
    memset(&f, 0, sizeof f);
    PUMP_UNTIL(l, fd, &in, nu_next_frame(&in, &f), 3000);
    nu_send_close(fd, false, 1000, NULL);
    uint64_t t0 = nu_now_ms();
    CHECK_RUN_UNTIL(l, cli2.closes == 1, 3000);
    CHECK(nu_now_ms() - t0 >= 80);
    CHECK(cli2.clean); /* the handshake completed; only the FIN is missing */
    close(fd);
    close(lfd);
    nu_loop_finish(l);
}

/* ---- memory ------------------------------------------------------------------------------ */

typedef struct live_count {
    size_t live, peak;
} live_count;

static void *lc_alloc(size_t size, void *ctx) {
    live_count *k = ctx;
    k->live += size;
    if (k->live > k->peak)
        k->peak = k->live;
    return malloc(size);
}

static void lc_free(void *ptr, size_t size, void *ctx) {
    if (ptr)
        ((live_count *)ctx)->live -= size;
    free(ptr);
}

/* A message of 1 MiB is gathered over many reads on both sides (the server's
 * reassembly, then the client's for the echo) and queued whole on the client; the
 * buffers it grew are given back about a second later, not at the next keep-alive
 * tick (25 s by default), and not at once (a stream of large messages would pay
 * for fresh pages each time). */
TEST(conn_large_message_buffers_are_given_back_a_second_later) {
    live_count k = {0};
    dx_allocator counting = {lc_alloc, lc_free, &k};
    dx_loop *l = NULL;
    REQUIRE(dx_loop_create(&l, &counting) == 0);
    nu_rec srv = {.echo = true}, cli = {0};
    dx_server_options o = {.callbacks = nu_callbacks, .user = &srv};
    dx_server *s = NULL;
    REQUIRE(nu_server(&s, l, &o) == 0);
    char url[64];
    nu_url(url, sizeof url, dx_server_port(s), "/");
    dx_conn *c = NULL;
    CHECK_RC(dx_client_connect(&c, l, url, NULL, &nu_callbacks, &cli), 0);
    CHECK_RUN_UNTIL(l, cli.opens == 1 && srv.opens == 1, 3000);
    for (int i = 0; i < 5; i++)
        dx_loop_run_once(l, 0);
    size_t before = k.live;
    size_t n = (size_t)1 << 20;
    uint8_t *big = malloc(n);
    memset(big, 'x', n);
    CHECK_RC(dx_conn_send_binary(c, (dx_span){big, n}), 0);
    CHECK_RUN_UNTIL(l, cli.messages == 1, 5000);
    uint64_t echoed = nu_now_ms();
    for (int i = 0; i < 5; i++)
        dx_loop_run_once(l, 0);
    CHECK(k.peak > before + n); /* the message was really gathered */
    CHECK(k.live > before + n); /* and its buffers are still there for the next one */
    RUN_UNTIL(l, k.live < before + ((size_t)128 << 10), 3000);
    CHECK(k.live < before + ((size_t)128 << 10));
    CHECK(nu_now_ms() - echoed < 2500);
    dx_conn_close(c, 1000, (dx_span){0});
    RUN_UNTIL(l, cli.closes && srv.closes, 3000);
    dx_server_destroy(s);
    nu_loop_finish(l);
    free(big);
}
