/* permessage-deflate on real connections (RFC 7692 through server.h, client.h and
 * conn.c): negotiation both ways, compressed echoes of every size and both types,
 * opting a message out, streaming delivery of compressed messages, the inflated
 * message limit (1009), and what happens when one side does not offer it. Server and
 * client share one loop over 127.0.0.1. */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct side {
    int opens, closes, messages, errors;
    uint16_t close_code;
    dx_opcode last_op;
    uint8_t *last; /* a copy of the last message */
    size_t last_len;
    size_t frag_bytes; /* streaming: bytes of fragments so far */
    int frag_first, frag_fin;
    dx_conn *conn;
    bool echo; /* send back every message */
} side;

static void s_open(dx_conn *c, void *user) {
    side *s = user;
    s->opens++;
    s->conn = c;
}

static void s_message(dx_conn *c, dx_opcode op, dx_span data, void *user) {
    side *s = user;
    s->messages++;
    s->last_op = op;
    free(s->last);
    s->last = malloc(data.len ? data.len : 1);
    if (data.len)
        memcpy(s->last, data.ptr, data.len);
    s->last_len = data.len;
    if (s->echo)
        CHECK_RC(dx_conn_send(c, op, data), 0);
}

static void s_fragment(dx_conn *c, const dx_fragment *f, void *user) {
    (void)c;
    side *s = user;
    s->frag_bytes += f->data.len;
    s->frag_first += f->first;
    s->frag_fin += f->fin;
}

static void s_error(dx_conn *c, int err, void *user) {
    (void)c;
    (void)err;
    ((side *)user)->errors++;
}

static void s_close(dx_conn *c, const dx_close_info *info, void *user) {
    (void)c;
    side *s = user;
    s->closes++;
    s->close_code = info->code;
    s->conn = NULL;
}

static const dx_conn_callbacks callbacks = {.on_open = s_open,
                                            .on_message = s_message,
                                            .on_fragment = s_fragment,
                                            .on_error = s_error,
                                            .on_close = s_close};

static void srv_accept(dx_conn *c, const dx_ws_request *req, void *user) {
    (void)req;
    dx_conn_accept(c, NULL, user); /* the server's deflate answer is added by itself */
}

typedef struct world {
    dx_loop *loop;
    dx_server *server;
    side srv, cli;
} world;

#define RUN(w, expr, ms)                                                                           \
    do {                                                                                           \
        for (int i_ = 0; i_ < (ms) && !(expr); i_++)                                               \
            dx_loop_run_once((w)->loop, 1);                                                        \
    } while (0)

static void start(world *w, const dx_deflate_config *srv_cfg, const dx_deflate_config *cli_cfg,
                  const dx_conn_options *srv_conn, bool streaming_client) {
    static const dx_deflate_config defaults = {0};
    REQUIRE(dx_loop_create(&w->loop, NULL) == 0);
    w->srv.echo = true;
    dx_server_options so = {.host = "127.0.0.1"};
    if (srv_conn)
        so.conn = *srv_conn;
    so.conn.compression.deflate = srv_cfg;
    so.conn.limits.max_message =
        so.conn.limits.max_message ? so.conn.limits.max_message : (size_t)4 << 20;
    dx_conn_callbacks cb = callbacks;
    cb.on_upgrade = srv_accept;
    REQUIRE(dx_server_create(&w->server, w->loop, &so, &cb, &w->srv) == 0);
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/", dx_server_port(w->server));
    dx_client_options co = {
        .conn = {.limits.max_message = (size_t)4 << 20,
                 .compression.deflate = cli_cfg == (void *)1 ? &defaults : cli_cfg,
                 .streaming = streaming_client}};
    dx_conn *c;
    REQUIRE(dx_client_connect(&c, w->loop, url, &co, &callbacks, &w->cli) == 0);
    RUN(w, w->cli.opens == 1 || w->cli.closes == 1, 5000);
}

static void finish(world *w) {
    if (w->cli.conn)
        dx_conn_close(w->cli.conn, DX_CLOSE_NORMAL, (dx_span){0});
    RUN(w, w->cli.closes == 1, 5000);
    dx_server_destroy(w->server);
    for (int i = 0; i < 5; i++)
        dx_loop_run_once(w->loop, 0);
    dx_loop_destroy(w->loop);
    free(w->srv.last);
    free(w->cli.last);
}

static uint8_t *pattern(size_t n, bool compressible) {
    uint8_t *p = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++)
        p[i] = compressible ? (uint8_t)('a' + (i / 7) % 26) : (uint8_t)(dx_test_rand() & 0x7F);
    return p;
}

static const dx_deflate_config defaults;

TEST(rfc7692_negotiated_and_every_size_echoes_both_types) {
    world w = {0};
    start(&w, &defaults, (void *)1, NULL, false);
    REQUIRE(w.cli.opens == 1 && w.srv.opens == 1);
    dx_span ext = dx_conn_extensions(w.cli.conn);
    CHECK(ext.len >= 18 && memcmp(ext.ptr, "permessage-deflate", 18) == 0);
    static const size_t sizes[] = {0, 1, 63, 64, 65, 1000, 65536, 300000, 1 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        for (int k = 0; k < 2; k++) {
            size_t n = sizes[i];
            uint8_t *p = pattern(n, k == 0);
            dx_opcode op = k == 0 ? DX_OP_TEXT : DX_OP_BINARY; /* both patterns are ASCII */
            int before = w.cli.messages;
            CHECK_RC(dx_conn_send(w.cli.conn, op, (dx_span){p, n}), 0);
            RUN(&w, w.cli.messages == before + 1, 5000);
            CHECK_EQ_INT(w.cli.messages, before + 1);
            CHECK(w.cli.last_op == op && w.cli.last_len == n &&
                  (n == 0 || memcmp(w.cli.last, p, n) == 0));
            free(p);
        }
    /* opting out: still echoed (the server compresses its answer, we do not) */
    int before = w.cli.messages;
    CHECK_RC(dx_conn_send_ex(w.cli.conn, DX_OP_TEXT, dx_span_cstr("plain, please, plain, please"),
                             DX_SEND_NO_COMPRESS),
             0);
    RUN(&w, w.cli.messages == before + 1, 5000);
    CHECK(w.cli.last_len == 28);
    CHECK_EQ_INT(w.cli.errors + w.srv.errors, 0);
    finish(&w);
    CHECK_EQ_INT(w.cli.close_code, 1000);
}

TEST(rfc7692_not_offered_or_not_accepted_means_plain_frames) {
    world w = {0};
    start(&w, NULL, (void *)1, NULL, false); /* the server refuses it */
    REQUIRE(w.cli.opens == 1);
    CHECK_EQ_INT(dx_conn_extensions(w.cli.conn).len, 0);
    CHECK_RC(dx_conn_send_text(w.cli.conn, dx_span_cstr("hello hello hello hello hello hello "
                                                        "hello hello hello hello hello hello")),
             0);
    RUN(&w, w.cli.messages == 1, 5000);
    CHECK_EQ_INT(w.cli.messages, 1);
    finish(&w);

    world v = {0};
    start(&v, &defaults, NULL, NULL, false); /* the client does not offer it */
    REQUIRE(v.cli.opens == 1);
    CHECK_EQ_INT(dx_conn_extensions(v.cli.conn).len, 0);
    finish(&v);
}

TEST(rfc7692_streaming_mode_gets_the_inflated_message_in_pieces) {
    world w = {0};
    start(&w, &defaults, (void *)1, NULL, true);
    REQUIRE(w.cli.opens == 1);
    size_t n = 500000;
    uint8_t *p = pattern(n, true);
    CHECK_RC(dx_conn_send_binary(w.cli.conn, (dx_span){p, n}), 0);
    RUN(&w, w.cli.frag_fin == 1, 5000);
    CHECK_EQ_INT(w.cli.frag_first, 1);
    CHECK_EQ_INT(w.cli.frag_fin, 1);
    CHECK_EQ_INT(w.cli.frag_bytes, n);
    free(p);
    finish(&w);
}

TEST(rfc7692_inflated_size_is_held_to_the_message_limit_1009) {
    world w = {0};
    dx_conn_options small = {.limits.max_message = 64 << 10};
    start(&w, &defaults, (void *)1, &small, false);
    REQUIRE(w.cli.opens == 1);
    /* 1 MiB of one letter compresses to about 1 KiB: a small frame, a big message */
    size_t n = 1 << 20;
    uint8_t *p = malloc(n);
    memset(p, 'z', n);
    CHECK_RC(dx_conn_send_binary(w.cli.conn, (dx_span){p, n}), 0);
    RUN(&w, w.cli.closes == 1, 5000);
    CHECK_EQ_INT(w.cli.closes, 1);
    CHECK_EQ_INT(w.cli.close_code, 1009);
    CHECK_EQ_INT(w.srv.messages, 0); /* never delivered, never inflated past the limit */
    free(p);
    finish(&w);
}
