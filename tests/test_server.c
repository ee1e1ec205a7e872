/*
 * The server (src/server/server.c) on a real loop over 127.0.0.1: accept and echo
 * with dx_client_connect on the same loop, the upgrade hook and its decisions (now,
 * later, never), plain HTTP, refusals of malformed heads (RFC 6455 §4.2.1-§4.2.2,
 * RFC 9112), the handshake timeout, Unix and IPv6 listeners, SO_REUSEPORT,
 * max_connections, graceful shutdown and destroying the server from a callback.
 *
 * Peers are dx clients on the same loop or raw sockets the test drives; every wait
 * is bounded (RUN_UNTIL / PUMP_UNTIL).
 */
#include "net_util.h"

#include <sys/stat.h>
#include <sys/un.h>

static dx_conn *connect_to(dx_loop *l, uint16_t port, const char *path, nu_rec *r) {
    char url[128];
    nu_url(url, sizeof url, port, path);
    dx_conn *c = NULL;
    int rc = dx_client_connect(&c, l, url, NULL, &nu_callbacks, r);
    CHECK_RC(rc, 0);
    return rc == 0 ? c : NULL;
}

static void copy_span(char *out, size_t cap, dx_span s) {
    size_t n = s.len < cap - 1 ? s.len : cap - 1;
    if (n)
        memcpy(out, s.ptr, n);
    out[n] = '\0';
}

/* Read from a raw fd until EOF (or an error), running the loop. */
static void read_to_eof(dx_loop *l, int fd, nu_in *in) {
    PUMP_UNTIL(l, fd, in, false, 3000);
}

static bool in_equals(const nu_in *in, const char *want) {
    size_t n = strlen(want);
    if (in->len == n && memcmp(in->b, want, n) == 0)
        return true;
    printf("    got %zu bytes: %.*s\n    want %zu bytes: %s\n", in->len, (int)in->len,
           (const char *)in->b, n, want);
    return false;
}

/* ---- accept and echo ------------------------------------------------------------------ */

TEST(server_accepts_and_echoes_a_client_on_the_same_loop) {
    dx_loop *l = nu_loop();
    nu_rec srv = {.echo = true}, cli = {0};
    dx_server *s = NULL;
    REQUIRE(nu_echo_server(&s, l, &srv) == 0);
    CHECK(dx_server_port(s) != 0);
    dx_conn *c = connect_to(l, dx_server_port(s), "/echo?x=1", &cli);
    CHECK(c != NULL && dx_conn_state(c) == DX_CONNECTING);
    CHECK_RUN_UNTIL(l, cli.opens == 1 && srv.opens == 1, 3000);
    CHECK_EQ_INT(dx_server_connections(s), 1);
    CHECK_EQ_INT(cli.state_in_open, DX_OPEN);
    CHECK_EQ_INT(srv.state_in_open, DX_OPEN);
    if (srv.conn) {
        CHECK(dx_conn_server(srv.conn) == s);
        CHECK_EQ_INT(dx_conn_side(srv.conn), DX_SIDE_SERVER);
        char addr[64];
        CHECK_RC(dx_conn_peer_addr(srv.conn, addr, sizeof addr), 0);
        CHECK(strncmp(addr, "127.0.0.1:", 10) == 0);
        CHECK_EQ_INT(dx_conn_url(srv.conn)[0], '\0');
    }
    CHECK(dx_conn_server(c) == NULL);
    CHECK_RC(dx_conn_send_text(c, dx_span_cstr("hello")), 0);
    CHECK_RC(dx_conn_send_text(c, dx_span_cstr("world")), 0);
    CHECK_RC(dx_conn_send_binary(c, (dx_span){(const uint8_t *)"\0\1\2", 3}), 0);
    CHECK_RUN_UNTIL(l, cli.messages == 3, 3000);
    CHECK(memcmp(cli.seq, "hello|world|", 12) == 0);
    CHECK_EQ_INT(cli.last_op, DX_OP_BINARY);
    CHECK(cli.msg_len == 3 && memcmp(cli.msg, "\0\1\2", 3) == 0);
    CHECK_EQ_INT(srv.messages, 3);

    CHECK_RC(dx_conn_close(c, DX_CLOSE_NORMAL, dx_span_cstr("bye")), 0);
    CHECK_RUN_UNTIL(l, cli.closes == 1 && srv.closes == 1, 3000);
    CHECK(cli.clean && !cli.remote);
    CHECK_EQ_INT(cli.close_code, 1000);
    CHECK(srv.clean && srv.remote);
    CHECK_EQ_INT(srv.close_code, 1000);
    CHECK(strcmp(srv.close_reason, "bye") == 0);
    CHECK_EQ_INT(srv.errors + cli.errors, 0);
    CHECK_EQ_INT(dx_server_connections(s), 0);
    nu_run_for(l, 20);
    CHECK_EQ_INT(srv.closes + cli.closes, 2); /* exactly once each */
    dx_server_destroy(s);
    nu_loop_finish(l);
}

/* ---- the upgrade hook --------------------------------------------------------------------- */

typedef struct hook_seen {
    nu_rec rec; /* first: the connections' user pointer */
    int calls;
    char path[64], query[64], origin[64], host[64], custom[64], protocols[128];
    bool has_origin;
    int bad_accept_rc; /* dx_conn_accept with a protocol not offered */
    int accept_rc;
} hook_seen;

static void record_and_accept(dx_conn *c, const dx_ws_request *req, void *user) {
    hook_seen *h = user;
    h->calls++;
    copy_span(h->path, sizeof h->path, req->path);
    copy_span(h->query, sizeof h->query, req->query);
    copy_span(h->origin, sizeof h->origin, req->origin);
    copy_span(h->host, sizeof h->host, req->host);
    h->has_origin = req->has_origin;
    const dx_http_header *x =
        dx_http_header_find(req->http->headers, req->http->num_headers, "X-Custom");
    if (x)
        copy_span(h->custom, sizeof h->custom, x->value);
    h->protocols[0] = '\0';
    for (size_t i = 0; i < req->num_protocols; i++) {
        size_t n = strlen(h->protocols);
        snprintf(h->protocols + n, sizeof h->protocols - n, "%s%.*s", i ? "," : "",
                 (int)req->protocols[i].len, (const char *)req->protocols[i].ptr);
    }
    CHECK_EQ_INT(dx_conn_state(c), DX_CONNECTING);
    CHECK_RC(dx_conn_send_text(c, dx_span_cstr("early")), DX_ECONNECTING);
    /* a protocol the client did not offer: refused, the decision stays pending */
    dx_accept_options bad = {.protocol = dx_span_cstr("nope")};
    h->bad_accept_rc = dx_conn_accept(c, &bad, &h->rec);
    static const dx_http_header extra[] = {
        {{(const uint8_t *)"Set-Cookie", 10}, {(const uint8_t *)"a=b", 3}}};
    dx_accept_options ok = {.protocol = dx_span_cstr("chat"), .headers = extra, .num_headers = 1};
    h->accept_rc = dx_conn_accept(c, &ok, &h->rec);
}

TEST(server_upgrade_hook_sees_the_request_and_accepts_with_a_protocol) {
    dx_loop *l = nu_loop();
    hook_seen h = {.rec = {.echo = true}};
    dx_server_options o = {0};
    dx_conn_callbacks cb = nu_callbacks;
    cb.on_upgrade = record_and_accept;
    dx_server *s = NULL;
    REQUIRE(nu_server(&s, l, &o, &cb, &h) == 0);
    char url[128];
    nu_url(url, sizeof url, dx_server_port(s), "/room/1?x=y&z");
    static const char *const protos[] = {"superchat", "chat"};
    static const dx_http_header hdrs[] = {
        {{(const uint8_t *)"X-Custom", 8}, {(const uint8_t *)"42", 2}}};
    dx_client_options co = {.protocols = protos,
                            .num_protocols = 2,
                            .origin = "http://example.com",
                            .headers = hdrs,
                            .num_headers = 1};
    nu_rec cli = {0};
    dx_conn *c = NULL;
    CHECK_RC(dx_client_connect(&c, l, url, &co, &nu_callbacks, &cli), 0);
    CHECK_RUN_UNTIL(l, cli.opens == 1 && h.rec.opens == 1, 3000);
    CHECK_EQ_INT(h.calls, 1);
    CHECK(strcmp(h.path, "/room/1") == 0);
    CHECK(strcmp(h.query, "x=y&z") == 0);
    CHECK(h.has_origin && strcmp(h.origin, "http://example.com") == 0);
    CHECK(strncmp(h.host, "127.0.0.1:", 10) == 0);
    CHECK(strcmp(h.custom, "42") == 0);
    CHECK(strcmp(h.protocols, "superchat,chat") == 0);
    CHECK_RC(h.bad_accept_rc, DX_EINVAL);
    CHECK_RC(h.accept_rc, 0);
    if (c && cli.opens) {
        CHECK_SPAN_STR(dx_conn_protocol(c), "chat");
        CHECK_EQ_INT(dx_conn_http_status(c), 101);
    }
    if (h.rec.conn) {
        CHECK_SPAN_STR(dx_conn_protocol(h.rec.conn), "chat");
        CHECK_RC(dx_conn_accept(h.rec.conn, NULL, NULL), DX_ESTATE); /* decided already */
    }
    dx_conn_close(c, 1000, (dx_span){0});
    CHECK_RUN_UNTIL(l, cli.closes == 1 && h.rec.closes == 1, 3000);
    dx_server_destroy(s);
    nu_loop_finish(l);
}

TEST(server_101_bytes_carry_the_protocol_and_extra_headers) {
    dx_loop *l = nu_loop();
    hook_seen h = {0};
    dx_server_options o = {0};
    dx_conn_callbacks cb = nu_callbacks;
    cb.on_upgrade = record_and_accept;
    dx_server *s = NULL;
    REQUIRE(nu_server(&s, l, &o, &cb, &h) == 0);
    nu_in in = {0};
    int status;
    int fd = nu_raw_ws_connect(l, dx_server_port(s), "/raw",
                               "Sec-WebSocket-Protocol: superchat, chat\r\nOrigin: http://o\r\n",
                               &in, &status, false);
    REQUIRE(fd >= 0);
    CHECK_EQ_INT(status, 101);
    CHECK(in_equals(&in, "HTTP/1.1 101 Switching Protocols\r\n"
                         "Upgrade: websocket\r\n"
                         "Connection: Upgrade\r\n"
                         "Sec-WebSocket-Accept: " NU_ACCEPT "\r\n"
                         "Sec-WebSocket-Protocol: chat\r\n"
                         "Set-Cookie: a=b\r\n"
                         "\r\n"));
    CHECK_EQ_INT(h.rec.opens, 1);
    CHECK(strcmp(h.origin, "http://o") == 0);
    close(fd);
    CHECK_RUN_UNTIL(l, h.rec.closes == 1, 3000);
    CHECK_EQ_INT(h.rec.close_code, 1006);
    CHECK(!h.rec.clean && h.rec.remote);
    CHECK_EQ_INT(h.rec.errors, 0); /* a peer that merely drops: no on_error */
    dx_server_destroy(s);
    nu_loop_finish(l);
}

/* The automatic accept (no on_upgrade) with the server's subprotocols: the client's
 * first offer the server speaks; none in common: 400 (browsers fail a 101 naming none
 * after an offer) or, under DX_PROTOCOL_FIRST_OFFERED, the client's first offer. */
static int auto_accept_status(dx_protocol_policy policy, const char *offer, char *chosen,
                              size_t cap) {
    dx_loop *l = nu_loop();
    nu_rec r = {0};
    static const char *const speaks[] = {"chat", "superchat"};
    dx_server_options o = {.protocols = speaks, .num_protocols = 2, .protocol_policy = policy};
    dx_server *s = NULL;
    if (nu_server(&s, l, &o, &nu_callbacks, &r) != 0) {
        nu_loop_finish(l);
        return -1;
    }
    char extra[256] = "";
    if (offer)
        snprintf(extra, sizeof extra, "Sec-WebSocket-Protocol: %s\r\n", offer);
    nu_in in = {0};
    int status;
    int fd = nu_raw_ws_connect(l, dx_server_port(s), "/p", extra, &in, &status, false);
    chosen[0] = '\0';
    const char *h = strstr((const char *)in.b, "Sec-WebSocket-Protocol: ");
    if (h && h < (const char *)in.b + nu_head_len(&in)) {
        h += strlen("Sec-WebSocket-Protocol: ");
        size_t n = strcspn(h, "\r");
        snprintf(chosen, cap, "%.*s", (int)n, h);
    }
    if (status == 400)
        CHECK(nu_in_has(&in, "no subprotocol in common"));
    CHECK_EQ_INT(r.opens, status == 101);
    if (fd >= 0)
        close(fd);
    CHECK_RUN_UNTIL(l, dx_server_connections(s) == 0, 3000);
    dx_server_destroy(s);
    nu_loop_finish(l);
    return status;
}

TEST(rfc6455_4_2_2_automatic_accept_chooses_the_clients_first_supported_protocol) {
    char chosen[64];
    CHECK_EQ_INT(auto_accept_status(DX_PROTOCOL_REFUSE, "mqtt, superchat, chat", chosen, 64), 101);
    CHECK(strcmp(chosen, "superchat") == 0);
    CHECK_EQ_INT(auto_accept_status(DX_PROTOCOL_REFUSE, NULL, chosen, 64), 101);
    CHECK(strcmp(chosen, "") == 0);
    /* none in common */
    CHECK_EQ_INT(auto_accept_status(DX_PROTOCOL_REFUSE, "mqtt, Chat", chosen, 64), 400);
    CHECK_EQ_INT(auto_accept_status(DX_PROTOCOL_FIRST_OFFERED, "mqtt, Chat", chosen, 64), 101);
    CHECK(strcmp(chosen, "mqtt") == 0);
    CHECK_EQ_INT(auto_accept_status(DX_PROTOCOL_FIRST_OFFERED, "Chat, chat", chosen, 64), 101);
    CHECK(strcmp(chosen, "chat") == 0); /* a supported one still wins */
}

/* ---- refusals ----------------------------------------------------------------------------- */

typedef struct reject_ctx {
    nu_rec rec;
    int calls;
    int bad_status_rc, info_status_rc, accept_after_rc;
} reject_ctx;

static void reject_401(dx_conn *c, const dx_ws_request *req, void *user) {
    (void)req;
    reject_ctx *r = user;
    r->calls++;
    static const dx_http_header h[] = {
        {{(const uint8_t *)"WWW-Authenticate", 16}, {(const uint8_t *)"Bearer realm=\"x\"", 16}}};
    r->bad_status_rc = dx_conn_respond(c, 600, NULL, 0, (dx_span){0});
    r->info_status_rc = dx_conn_respond(c, 101, NULL, 0, (dx_span){0});
    CHECK_RC(dx_conn_respond(c, 401, h, 1, dx_span_cstr("no token")), 0);
    r->accept_after_rc = dx_conn_accept(c, NULL, NULL);
}

TEST(server_reject_401_sends_exactly_the_response_then_eof) {
    dx_loop *l = nu_loop();
    reject_ctx r = {0};
    dx_server_options o = {0};
    dx_conn_callbacks cb = nu_callbacks;
    cb.on_upgrade = reject_401;
    dx_server *s = NULL;
    REQUIRE(nu_server(&s, l, &o, &cb, &r) == 0);
    nu_in in = {0};
    int status;
    int fd = nu_raw_ws_connect(l, dx_server_port(s), "/", NULL, &in, &status, false);
    REQUIRE(fd >= 0);
    read_to_eof(l, fd, &in);
    CHECK(in.eof && in.err == 0);
    CHECK(in_equals(&in, "HTTP/1.1 401 Unauthorized\r\n"
                         "WWW-Authenticate: Bearer realm=\"x\"\r\n"
                         "Connection: close\r\n"
                         "Content-Length: 8\r\n"
                         "\r\n"
                         "no token"));
    CHECK_EQ_INT(r.calls, 1);
    CHECK_RC(r.bad_status_rc, DX_EINVAL);
    CHECK_RC(r.info_status_rc, DX_EINVAL);
    CHECK_RC(r.accept_after_rc, DX_ESTATE);
    close(fd);
    CHECK_RUN_UNTIL(l, dx_server_connections(s) == 0, 3000);
    CHECK_EQ_INT(r.rec.opens + r.rec.closes + r.rec.errors, 0); /* no on_close after reject */

    /* the same through dx_client_connect: on_error(DX_EHS_STATUS), status 401 */
    nu_rec cli = {0};
    dx_conn *c = connect_to(l, dx_server_port(s), "/", &cli);
    (void)c;
    CHECK_RUN_UNTIL(l, cli.closes == 1, 3000);
    CHECK_EQ_INT(cli.errors, 1);
    CHECK_RC(cli.last_err, DX_EHS_STATUS);
    CHECK_EQ_INT(cli.close_code, 1006);
    CHECK_EQ_INT(cli.opens, 0);
    CHECK_EQ_INT(cli.bad_order, 0);
    dx_server_destroy(s);
    nu_loop_finish(l);
}

/* ---- decisions made later ------------------------------------------------------------------ */

enum { ACT_ACCEPT, ACT_REJECT, ACT_NEVER };

typedef struct async_srv async_srv;
typedef struct slot {
    dx_timer timer;
    dx_conn *c; /* pending; NULL once decided or closed */
    int action;
    int decide_rc;
    int closes;     /* on_close while pending */
    uint16_t code;  /* its code */
    int error;      /* its error */
    async_srv *srv; /* back */
} slot;

struct async_srv {
    nu_rec rec; /* first: the user pointer of every server connection */
    dx_loop *loop;
    slot slots[3];
    int upgrades;
};

static void decide_later(dx_timer *t, void *user) {
    (void)t;
    slot *sl = user;
    if (!sl->c)
        return;
    if (sl->action == ACT_ACCEPT)
        sl->decide_rc = dx_conn_accept(sl->c, NULL, &sl->srv->rec);
    else
        sl->decide_rc = dx_conn_respond(sl->c, 403, NULL, 0, dx_span_cstr("go away"));
    sl->c = NULL;
}

static void async_upgrade(dx_conn *c, const dx_ws_request *req, void *user) {
    async_srv *a = user;
    a->upgrades++;
    int act = dx_span_eq(req->path, dx_span_cstr("/accept"))   ? ACT_ACCEPT
              : dx_span_eq(req->path, dx_span_cstr("/reject")) ? ACT_REJECT
                                                               : ACT_NEVER;
    slot *sl = &a->slots[act];
    sl->c = c;
    sl->action = act;
    sl->srv = a;
    if (act != ACT_NEVER)
        dx_timer_start(a->loop, &sl->timer, act == ACT_ACCEPT ? 20 : 40);
}

static void async_close(dx_conn *c, const dx_close_info *info, void *user) {
    async_srv *a = user;
    for (int i = 0; i < 3; i++)
        if (a->slots[i].c == c) {
            a->slots[i].c = NULL;
            a->slots[i].closes++;
            a->slots[i].code = info->code;
            a->slots[i].error = info->error;
            return;
        }
    nu_on_close(c, info, &a->rec);
}

TEST(server_async_decisions_accept_reject_and_a_client_that_leaves) {
    dx_loop *l = nu_loop();
    async_srv a = {.rec = {.echo = true}, .loop = l};
    for (int i = 0; i < 3; i++)
        dx_timer_init(&a.slots[i].timer, decide_later, &a.slots[i]);
    dx_server_options o = {0};
    dx_conn_callbacks cb = nu_callbacks;
    cb.on_upgrade = async_upgrade;
    cb.on_close = async_close;
    o.conn.timeouts.handshake_ms = 5000;
    dx_server *s = NULL;
    REQUIRE(nu_server(&s, l, &o, &cb, &a) == 0);
    uint16_t port = dx_server_port(s);
    nu_rec ca = {0}, cr = {0}, cv = {0};
    uint64_t t0 = nu_now_ms();
    dx_conn *c_acc = connect_to(l, port, "/accept", &ca);
    connect_to(l, port, "/reject", &cr);
    dx_conn *c_van = connect_to(l, port, "/vanish", &cv);
    CHECK_RUN_UNTIL(l, a.upgrades == 3, 3000);
    CHECK_EQ_INT(ca.opens + cr.closes + cv.closes, 0); /* nothing decided yet */

    CHECK_RUN_UNTIL(l, ca.opens == 1, 3000);
    CHECK(nu_now_ms() - t0 >= 20);
    CHECK_RC(a.slots[ACT_ACCEPT].decide_rc, 0);
    CHECK_RC(dx_conn_send_text(c_acc, dx_span_cstr("late")), 0);
    CHECK_RUN_UNTIL(l, ca.messages == 1, 3000);
    CHECK(strcmp(ca.seq, "late|") == 0);

    CHECK_RUN_UNTIL(l, cr.closes == 1, 3000);
    CHECK_RC(a.slots[ACT_REJECT].decide_rc, 0);
    CHECK_RC(cr.last_err, DX_EHS_STATUS);
    CHECK_EQ_INT(cr.close_code, 1006);
    CHECK_EQ_INT(a.slots[ACT_REJECT].closes, 0); /* a refusal owes no on_close */

    /* the third client gives up while the server's decision is pending */
    CHECK_EQ_INT(dx_conn_state(c_van), DX_CONNECTING);
    CHECK_RC(dx_conn_close(c_van, 1000, (dx_span){0}), 0);
    CHECK_EQ_INT(cv.closes, 1);
    CHECK_EQ_INT(cv.close_code, 1006);
    uint64_t t1 = nu_now_ms();
    CHECK_RUN_UNTIL(l, a.slots[ACT_NEVER].closes == 1, 3000);
    CHECK_EQ_INT(a.slots[ACT_NEVER].code, 1006);
    if (a.slots[ACT_NEVER].closes)
        CHECK(nu_now_ms() - t1 < 1000); /* noticed, not left to the 5 s handshake timeout */
    nu_run_for(l, 30);
    CHECK_EQ_INT(a.slots[ACT_NEVER].closes, 1);
    CHECK_EQ_INT(cv.closes, 1);

    dx_conn_close(c_acc, 1000, (dx_span){0});
    CHECK_RUN_UNTIL(l, ca.closes == 1 && a.rec.closes == 1, 3000);
    for (int i = 0; i < 3; i++)
        dx_timer_stop(l, &a.slots[i].timer);
    dx_server_destroy(s);
    nu_loop_finish(l);
}

static void never_decide(dx_conn *c, const dx_ws_request *req, void *user) {
    (void)c;
    (void)req;
    (*(int *)user)++;
}

static void count_close_1006(dx_conn *c, const dx_close_info *info, void *user) {
    (void)c;
    if (info->code == 1006 && info->error == DX_EHANDSHAKE_TIMEOUT)
        (*(int *)user) += 100;
}

TEST(server_pending_decision_still_times_out) {
    dx_loop *l = nu_loop();
    int count = 0;
    dx_server_options o = {.conn.timeouts.handshake_ms = 100};
    dx_conn_callbacks cb = {.on_close = count_close_1006, .on_upgrade = never_decide};
    dx_server *s = NULL;
    REQUIRE(nu_server(&s, l, &o, &cb, &count) == 0);
    int fd = nu_raw_connect(dx_server_port(s));
    REQUIRE(fd >= 0);
    char req[512];
    nu_request(req, sizeof req, "/", NULL);
    nu_send_str(fd, req);
    CHECK_RUN_UNTIL(l, count >= 1, 3000);
    CHECK_EQ_INT(count, 1); /* the hook ran; nothing answered */
    nu_in in = {0};
    CHECK_RUN_UNTIL(l, count == 101, 3000);
    PUMP_UNTIL(l, fd, &in, false, 2000);
    CHECK(in.eof || in.err);
    CHECK_EQ_INT(in.len, 0);
    close(fd);
    dx_server_destroy(s);
    nu_loop_finish(l);
}

/* ---- plain HTTP -------------------------------------------------------------------------- */

static void http_200(dx_conn *c, const dx_http_request *req, void *user) {
    int *calls = user;
    (*calls)++;
    CHECK_SPAN_STR(req->target, "/status?full=1");
    CHECK_SPAN_STR(req->method, "GET");
    CHECK_RC(dx_conn_accept(c, NULL, NULL), DX_ESTATE); /* not an upgrade */
    static const dx_http_header h[] = {
        {{(const uint8_t *)"Content-Type", 12}, {(const uint8_t *)"text/plain", 10}}};
    CHECK_RC(dx_conn_respond(c, 200, h, 1, dx_span_cstr("hi there")), 0);
}

TEST(server_on_http_answers_a_plain_get) {
    dx_loop *l = nu_loop();
    int calls = 0;
    dx_server_options o = {0};
    dx_conn_callbacks cb = {.on_http = http_200};
    dx_server *s = NULL;
    REQUIRE(nu_server(&s, l, &o, &cb, &calls) == 0);
    int fd = nu_raw_connect(dx_server_port(s));
    REQUIRE(fd >= 0);
    nu_send_str(fd, "GET /status?full=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    nu_in in = {0};
    read_to_eof(l, fd, &in);
    CHECK(in.eof);
    CHECK_EQ_INT(calls, 1);
    CHECK(in_equals(&in, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                         "Content-Length: 8\r\n\r\nhi there"));
    close(fd);
    CHECK_RUN_UNTIL(l, dx_server_connections(s) == 0, 3000);
    dx_server_destroy(s);
    nu_loop_finish(l);
}

TEST(server_without_on_http_answers_426) {
    dx_loop *l = nu_loop();
    nu_rec r = {0};
    dx_server *s = NULL;
    REQUIRE(nu_echo_server(&s, l, &r) == 0);
    int fd = nu_raw_connect(dx_server_port(s));
    REQUIRE(fd >= 0);
    nu_send_str(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    nu_in in = {0};
    read_to_eof(l, fd, &in);
    CHECK(in.eof);
    CHECK(in.len > 30 && memcmp(in.b, "HTTP/1.1 426 Upgrade Required\r\n", 31) == 0);
    CHECK(nu_in_has(&in, "\r\nSec-WebSocket-Version: 13\r\n"));
    CHECK(nu_in_has(&in, "\r\nUpgrade: websocket\r\n"));
    close(fd);
    CHECK_RUN_UNTIL(l, dx_server_connections(s) == 0, 3000);
    CHECK_EQ_INT(r.opens + r.closes, 0);
    dx_server_destroy(s);
    nu_loop_finish(l);
}

/* ---- malformed heads ---------------------------------------------------------------------- */

typedef struct bad_head {
    const char *name;
    char *bytes; /* heap, built below */
    size_t len;
    int status;
} bad_head;

static void set_bytes(bad_head *b, const char *s, size_t len) {
    b->bytes = malloc(len);
    memcpy(b->bytes, s, len);
    b->len = len;
}

TEST(server_refuses_malformed_heads_and_keeps_serving) {
    dx_loop *l = nu_loop();
    nu_rec r = {.echo = true};
    dx_server *s = NULL;
    REQUIRE(nu_echo_server(&s, l, &r) == 0);
    bad_head heads[8] = {
        {.name = "no colon", .status = 400},
        {.name = "nul", .status = 400},
        {.name = "bare lf", .status = 400},
        {.name = "head too large", .status = 431},
        {.name = "too many headers", .status = 431},
        {.name = "version 8", .status = 426},
        {.name = "post", .status = 405},
        {.name = "bad key", .status = 400},
    };
    set_bytes(&heads[0], "GET / HTTP/1.1\r\nHost x\r\n\r\n", 26);
    set_bytes(&heads[1], "GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n", 29);
    set_bytes(&heads[2], "GET / HTTP/1.1\nHost: x\n\n", 24);
    {
        size_t n = 9000;
        char *p = malloc(n + 64);
        int k = sprintf(p, "GET / HTTP/1.1\r\nX-Big: ");
        memset(p + k, 'a', n);
        memcpy(p + k + n, "\r\n\r\n", 4);
        set_bytes(&heads[3], p, (size_t)k + n + 4);
        free(p);
    }
    {
        char p[4096];
        size_t k = (size_t)sprintf(p, "GET / HTTP/1.1\r\nHost: x\r\n");
        for (int i = 0; i < 70; i++)
            k += (size_t)sprintf(p + k, "X-H%d: v\r\n", i);
        k += (size_t)sprintf(p + k, "\r\n");
        set_bytes(&heads[4], p, k);
    }
    {
        char p[512];
        nu_request(p, sizeof p, "/", NULL);
        char *v = strstr(p, "Version: 13");
        v[9] = '8';
        v[10] = ' ';
        set_bytes(&heads[5], p, strlen(p));
        nu_request(p, sizeof p, "/", NULL);
        memcpy(p, "PUT", 3);
        set_bytes(&heads[6], p, strlen(p));
        nu_request(p, sizeof p, "/", NULL);
        char *k = strstr(p, NU_KEY);
        k[0] = '*';
        set_bytes(&heads[7], p, strlen(p));
    }
    int fds[8];
    nu_in *ins = calloc(8, sizeof(nu_in));
    for (int i = 0; i < 8; i++) {
        fds[i] = nu_raw_connect(dx_server_port(s));
        CHECK(fds[i] >= 0);
        if (fds[i] >= 0)
            nu_send(fds[i], heads[i].bytes, heads[i].len);
    }
    for (int i = 0; i < 8; i++) {
        if (fds[i] < 0)
            continue;
        read_to_eof(l, fds[i], &ins[i]);
        char want[16];
        snprintf(want, sizeof want, "HTTP/1.1 %d ", heads[i].status);
        bool ok = ins[i].len > 13 && memcmp(ins[i].b, want, 13) == 0 && ins[i].eof;
        if (!ok)
            printf("    %s: got %.*s\n", heads[i].name, (int)(ins[i].len < 60 ? ins[i].len : 60),
                   (const char *)ins[i].b);
        CHECK(ok);
        close(fds[i]);
    }
    /* and a good client is still served */
    nu_rec cli = {0};
    dx_conn *c = connect_to(l, dx_server_port(s), "/", &cli);
    CHECK_RUN_UNTIL(l, cli.opens == 1, 3000);
    dx_conn_send_text(c, dx_span_cstr("still here"));
    CHECK_RUN_UNTIL(l, cli.messages == 1, 3000);
    CHECK(strcmp(cli.seq, "still here|") == 0);
    CHECK_EQ_INT(r.opens, 1);
    dx_conn_close(c, 1000, (dx_span){0});
    CHECK_RUN_UNTIL(l, cli.closes == 1 && dx_server_connections(s) == 0, 3000);
    CHECK_EQ_INT(r.closes, 1); /* refused connections owe no on_close */
    for (int i = 0; i < 8; i++)
        free(heads[i].bytes);
    free(ins);
    dx_server_destroy(s);
    nu_loop_finish(l);
}

TEST(server_handshake_timeout_closes_a_half_sent_head) {
    dx_loop *l = nu_loop();
    nu_rec r = {0};
    dx_server_options o = {.conn.timeouts.handshake_ms = 100};
    dx_server *s = NULL;
    REQUIRE(nu_server(&s, l, &o, &nu_callbacks, &r) == 0);
    int fd = nu_raw_connect(dx_server_port(s));
    REQUIRE(fd >= 0);
    uint64_t t0 = nu_now_ms();
    nu_send_str(fd, "GET / HTTP/1.1\r\nHost: 127.0");
    nu_in in = {0};
    PUMP_UNTIL(l, fd, &in, false, 3000);
    uint64_t dt = nu_now_ms() - t0;
    CHECK(in.eof || in.err == ECONNRESET);
    CHECK_EQ_INT(in.len, 0);
    CHECK(dt >= 90 && dt < 2000);
    CHECK_RUN_UNTIL(l, dx_server_connections(s) == 0, 1000);
    CHECK_EQ_INT(r.closes + r.errors, 0); /* the application never saw it */
    close(fd);
    dx_server_destroy(s);
    nu_loop_finish(l);
}

/* ---- other listeners --------------------------------------------------------------------- */

TEST(server_unix_socket_listener) {
    dx_loop *l = nu_loop();
    char path[108];
    snprintf(path, sizeof path, "/tmp/dx-test-api-%d.sock", (int)getpid());
    /* a stale socket file from an earlier run is replaced */
    int stale = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    memcpy(sun.sun_path, path, strlen(path) + 1);
    unlink(path);
    CHECK(bind(stale, (struct sockaddr *)&sun, sizeof sun) == 0);
    close(stale);
    nu_rec r = {.echo = true};
    dx_server_options o = {.unix_path = path};
    dx_server *s = NULL;
    REQUIRE(nu_server(&s, l, &o, &nu_callbacks, &r) == 0);
    CHECK_EQ_INT(dx_server_port(s), 0);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0);
    nu_nonblock(fd);
    char req[512];
    nu_request(req, sizeof req, "/unix", NULL);
    nu_send_str(fd, req);
    nu_in in = {0};
    PUMP_UNTIL(l, fd, &in, nu_head_len(&in) > 0, 3000);
    CHECK(in.len > 12 && memcmp(in.b, "HTTP/1.1 101", 12) == 0);
    nu_in_consume(&in, nu_head_len(&in));
    nu_send_frame(fd, true, DX_OP_TEXT, "over unix", 9);
    nu_frame_view f = {0};
    PUMP_UNTIL(l, fd, &in, nu_next_frame(&in, &f), 3000);
    CHECK(f.opcode == DX_OP_TEXT && !f.masked && f.len == 9 &&
          memcmp(f.payload, "over unix", 9) == 0);
    if (r.conn) {
        char addr[64];
        CHECK_RC(dx_conn_peer_addr(r.conn, addr, sizeof addr), 0);
        CHECK(strcmp(addr, "unix") == 0);
    }
    close(fd);
    CHECK_RUN_UNTIL(l, r.closes == 1, 3000);
    dx_server_destroy(s);
    struct stat st;
    CHECK(lstat(path, &st) != 0); /* removed with the listener */
    nu_loop_finish(l);
}

TEST(server_ipv6_loopback) {
    if (!nu_have_ipv6()) {
        printf("    skipped: no IPv6 loopback on this machine\n");
        return;
    }
    dx_loop *l = nu_loop();
    nu_rec r = {.echo = true}, cli = {0};
    dx_server_options o = {.host = "::1"};
    dx_server *s = NULL;
    REQUIRE(nu_server(&s, l, &o, &nu_callbacks, &r) == 0);
    char url[64];
    snprintf(url, sizeof url, "ws://[::1]:%u/v6", (unsigned)dx_server_port(s));
    dx_conn *c = NULL;
    CHECK_RC(dx_client_connect(&c, l, url, NULL, &nu_callbacks, &cli), 0);
    CHECK_RUN_UNTIL(l, cli.opens == 1, 3000);
    if (r.conn) {
        char addr[80];
        CHECK_RC(dx_conn_peer_addr(r.conn, addr, sizeof addr), 0);
        CHECK(strncmp(addr, "[::1]:", 6) == 0);
    }
    dx_conn_send_text(c, dx_span_cstr("six"));
    CHECK_RUN_UNTIL(l, cli.messages == 1, 3000);
    dx_conn_close(c, 1000, (dx_span){0});
    CHECK_RUN_UNTIL(l, cli.closes == 1 && r.closes == 1, 3000);
    CHECK(cli.clean);
    /* an IPv4 client cannot reach a server bound to ::1 only */
    CHECK(nu_raw_connect(dx_server_port(s)) < 0);
    dx_server_destroy(s);
    nu_loop_finish(l);
}

static int count_opens(const nu_rec *r, int n) {
    int k = 0;
    for (int i = 0; i < n; i++)
        k += r[i].opens;
    return k;
}

static int count_closes(const nu_rec *r, int n) {
    int k = 0;
    for (int i = 0; i < n; i++)
        k += r[i].closes;
    return k;
}

TEST(server_two_servers_share_a_port_with_reuse_port) {
    dx_loop *l = nu_loop();
    nu_rec r1 = {.echo = true}, r2 = {.echo = true};
    dx_server_options o1 = {.reuse_port = true};
    dx_server *s1 = NULL, *s2 = NULL, *s3 = NULL;
    REQUIRE(nu_server(&s1, l, &o1, &nu_callbacks, &r1) == 0);
    dx_server_options o2 = {.reuse_port = true, .port = dx_server_port(s1)};
    CHECK_RC(nu_server(&s2, l, &o2, &nu_callbacks, &r2), 0);
    /* without reuse_port, the port is taken */
    dx_server_options o3 = {.port = dx_server_port(s1)};
    CHECK_RC(nu_server(&s3, l, &o3, NULL, NULL), -EADDRINUSE);
    enum { N = 32 };
    nu_rec *cli = calloc(N, sizeof(nu_rec));
    for (int i = 0; i < N; i++)
        connect_to(l, dx_server_port(s1), "/", &cli[i]);
    int opened = 0, clients_open = 0;
    RUN_UNTIL(l, (opened = r1.opens + r2.opens) == N && (clients_open = count_opens(cli, N)) == N,
              5000);
    CHECK_EQ_INT(opened, N);
    CHECK_EQ_INT(clients_open, N);
    CHECK(r1.opens > 0 && r2.opens > 0); /* 2^-31 odds that the kernel gives one all */
    printf("    %d connections: %d on the first server, %d on the second\n", N, r1.opens, r2.opens);
    CHECK_EQ_INT(dx_server_connections(s1) + (s2 ? dx_server_connections(s2) : 0), N);
    dx_server_destroy(s1);
    dx_server_destroy(s2);
    int closed = 0, clients_closed = 0;
    RUN_UNTIL(l,
              (closed = r1.closes + r2.closes) == N && (clients_closed = count_closes(cli, N)) == N,
              3000);
    CHECK_EQ_INT(closed, N);
    CHECK_EQ_INT(clients_closed, N);
    free(cli);
    nu_loop_finish(l);
}

TEST(server_max_connections_leaves_the_rest_in_the_backlog) {
    dx_loop *l = nu_loop();
    nu_rec r = {0};
    dx_server_options o = {.max_connections = 2};
    dx_server *s = NULL;
    REQUIRE(nu_server(&s, l, &o, &nu_callbacks, &r) == 0);
    static nu_in in[3];
    memset(in, 0, sizeof in);
    int st[3], fd[3];
    fd[0] = nu_raw_ws_connect(l, dx_server_port(s), "/", NULL, &in[0], &st[0], true);
    fd[1] = nu_raw_ws_connect(l, dx_server_port(s), "/", NULL, &in[1], &st[1], true);
    CHECK(st[0] == 101 && st[1] == 101);
    CHECK_EQ_INT(dx_server_connections(s), 2);
    /* the third connects (the kernel's backlog) but gets no answer */
    fd[2] = nu_raw_connect(dx_server_port(s));
    REQUIRE(fd[2] >= 0);
    char req[512];
    nu_request(req, sizeof req, "/third", NULL);
    nu_send_str(fd[2], req);
    PUMP_UNTIL(l, fd[2], &in[2], in[2].len > 0, 200);
    CHECK_EQ_INT(in[2].len, 0);
    CHECK_EQ_INT(dx_server_connections(s), 2);
    CHECK_EQ_INT(r.opens, 2);
    /* one leaves: the third is accepted and answered */
    close(fd[0]);
    PUMP_UNTIL(l, fd[2], &in[2], nu_head_len(&in[2]) > 0, 3000);
    CHECK(in[2].len > 12 && memcmp(in[2].b, "HTTP/1.1 101", 12) == 0);
    CHECK_EQ_INT(r.opens, 3);
    CHECK_EQ_INT(dx_server_connections(s), 2);
    close(fd[1]);
    close(fd[2]);
    CHECK_RUN_UNTIL(l, r.closes == 3, 3000);
    dx_server_destroy(s);
    nu_loop_finish(l);
}

/* ---- shutdown and destroy ----------------------------------------------------------------- */

typedef struct done_ctx {
    int calls;
    size_t conns_at_done;
    bool destroy;
} done_ctx;

static void on_done(dx_server *s, void *user) {
    done_ctx *d = user;
    d->calls++;
    d->conns_at_done = dx_server_connections(s);
    if (d->destroy)
        dx_server_destroy(s);
}

TEST(server_graceful_shutdown_closes_open_conns_with_1001) {
    dx_loop *l = nu_loop();
    nu_rec r = {0};
    dx_server *s = NULL;
    REQUIRE(nu_echo_server(&s, l, &r) == 0);
    uint16_t port = dx_server_port(s);
    enum { N = 3 };
    nu_rec cli[N];
    memset(cli, 0, sizeof cli);
    for (int i = 0; i < N; i++)
        connect_to(l, port, "/", &cli[i]);
    CHECK_RUN_UNTIL(l, r.opens == N, 3000);
    /* and one still in its handshake */
    int half = nu_raw_connect(port);
    nu_send_str(half, "GET / HTTP/1.1\r\n");
    CHECK_RUN_UNTIL(l, dx_server_connections(s) == N + 1, 3000);
    done_ctx d = {.destroy = true};
    uint64_t t0 = nu_now_ms();
    CHECK_RC(dx_server_shutdown(s, 3000, on_done, &d), 0);
    CHECK_EQ_INT(d.calls, 0);
    CHECK_RC(dx_server_shutdown(s, 3000, on_done, &d), DX_ESTATE);
    CHECK(nu_raw_connect(port) < 0); /* no longer listening */
    nu_in in = {0};
    PUMP_UNTIL(l, half, &in, false, 3000);
    CHECK(in.eof || in.err);
    CHECK_EQ_INT(in.len, 0);
    close(half);
    CHECK_RUN_UNTIL(l, d.calls == 1, 3000);
    /* every client answered at once: done follows without waiting for a timeout */
    CHECK(nu_now_ms() - t0 < 1000);
    CHECK_EQ_INT(d.conns_at_done, 0);
    for (int i = 0; i < N; i++) {
        CHECK_EQ_INT(cli[i].closes, 1);
        CHECK_EQ_INT(cli[i].close_code, 1001);
        CHECK(cli[i].clean && cli[i].remote);
    }
    CHECK_EQ_INT(r.closes, N);
    CHECK_EQ_INT(r.close_code, 1001);
    nu_run_for(l, 30);
    CHECK_EQ_INT(d.calls, 1);
    nu_loop_finish(l);
}

TEST(server_graceful_shutdown_with_no_connections_calls_done_once) {
    dx_loop *l = nu_loop();
    nu_rec r = {0};
    dx_server *s = NULL;
    REQUIRE(nu_echo_server(&s, l, &r) == 0);
    done_ctx d = {0};
    CHECK_RC(dx_server_shutdown(s, 1000, on_done, &d), 0);
    CHECK_EQ_INT(d.calls, 0); /* never inside the call */
    CHECK_RUN_UNTIL(l, d.calls == 1, 1000);
    nu_run_for(l, 30);
    CHECK_EQ_INT(d.calls, 1);
    dx_server_destroy(s);
    nu_loop_finish(l);
}

TEST(server_graceful_shutdown_aborts_what_does_not_close_in_time) {
    dx_loop *l = nu_loop();
    nu_rec r = {0};
    dx_server *s = NULL;
    REQUIRE(nu_echo_server(&s, l, &r) == 0);
    nu_in in = {0};
    int st;
    int fd = nu_raw_ws_connect(l, dx_server_port(s), "/", NULL, &in, &st, true);
    CHECK_EQ_INT(st, 101);
    done_ctx d = {0};
    uint64_t t0 = nu_now_ms();
    CHECK_RC(dx_server_shutdown(s, 100, on_done, &d), 0);
    CHECK_RUN_UNTIL(l, d.calls == 1, 3000); /* the raw peer never answers the close */
    CHECK(nu_now_ms() - t0 >= 90);
    CHECK_EQ_INT(r.closes, 1);
    CHECK_EQ_INT(r.close_code, 1006);
    nu_frame_view f = {0};
    PUMP_UNTIL(l, fd, &in, nu_next_frame(&in, &f), 1000);
    CHECK(f.opcode == DX_OP_CLOSE && f.len >= 2 && f.payload[0] == 0x03 && f.payload[1] == 0xE9);
    close(fd);
    dx_server_destroy(s);
    nu_loop_finish(l);
}

TEST(server_destroy_during_a_shutdown_never_calls_done) {
    dx_loop *l = nu_loop();
    nu_rec r = {0}, cli = {0};
    dx_server *s = NULL;
    REQUIRE(nu_echo_server(&s, l, &r) == 0);
    dx_conn *c = connect_to(l, dx_server_port(s), "/", &cli);
    (void)c;
    CHECK_RUN_UNTIL(l, cli.opens == 1, 3000);
    done_ctx d = {0};
    CHECK_RC(dx_server_shutdown(s, 1000, on_done, &d), 0);
    dx_server_destroy(s);
    CHECK_EQ_INT(r.closes, 1);
    CHECK_EQ_INT(r.close_code, 1006);
    CHECK_RUN_UNTIL(l, cli.closes == 1, 3000);
    nu_run_for(l, 50);
    CHECK_EQ_INT(d.calls, 0);
    nu_loop_finish(l);
}

TEST(server_create_errors) {
    dx_loop *l = nu_loop();
    dx_server *s = (dx_server *)&s; /* untouched on failure */
    dx_server *keep = s;
    dx_server_options o = {.host = "nonexistent.invalid"};
    CHECK_RC(dx_server_create(&s, l, &o, NULL, NULL), DX_ERESOLVE);
    char path[200];
    memset(path, 'p', sizeof path);
    path[0] = '/';
    path[sizeof path - 1] = '\0';
    dx_server_options u = {.unix_path = path};
    CHECK_RC(dx_server_create(&s, l, &u, NULL, NULL), DX_EINVAL);
    CHECK_RC(dx_server_create(&s, l, NULL, NULL, NULL), DX_EINVAL);
    CHECK_RC(dx_server_create(NULL, l, &o, NULL, NULL), DX_EINVAL);
    dx_server_options p = {.host = "127.0.0.1", .num_protocols = 1};
    CHECK_RC(dx_server_create(&s, l, &p, NULL, NULL), DX_EINVAL); /* a count without a list */
    static const char *const holes[] = {"chat", NULL};
    p.protocols = holes;
    p.num_protocols = 2;
    CHECK_RC(dx_server_create(&s, l, &p, NULL, NULL), DX_EINVAL);
    CHECK(s == keep);
    nu_loop_finish(l);
}

/* A client that sends frames right behind its request, before any answer: they wait
 * for the (late) decision and are delivered after on_open, in order. */
static dx_conn *held_conn;

static void accept_later(dx_timer *t, void *user) {
    (void)t;
    dx_conn **pc = user;
    if (*pc)
        CHECK_RC(dx_conn_accept(*pc, NULL, dx_conn_user(*pc)), 0);
    *pc = NULL;
}

static void hold_upgrade(dx_conn *c, const dx_ws_request *req, void *user) {
    (void)req;
    (void)user;
    held_conn = c;
}

TEST(server_frames_behind_the_request_wait_for_a_late_accept) {
    dx_loop *l = nu_loop();
    nu_rec r = {0};
    dx_server_options o = {0};
    dx_conn_callbacks cb = nu_callbacks;
    cb.on_upgrade = hold_upgrade;
    dx_server *s = NULL;
    REQUIRE(nu_server(&s, l, &o, &cb, &r) == 0);
    held_conn = NULL;
    int fd = nu_raw_connect(dx_server_port(s));
    REQUIRE(fd >= 0);
    uint8_t buf[1024];
    nu_request((char *)buf, 512, "/", NULL);
    size_t n = strlen((char *)buf);
    n += nu_frame(buf + n, true, DX_OP_TEXT, true, "one", 3);
    n += nu_frame(buf + n, true, DX_OP_TEXT, true, "two", 3);
    nu_send(fd, buf, n); /* one write */
    CHECK_RUN_UNTIL(l, held_conn != NULL, 3000);
    nu_send_frame(fd, true, DX_OP_TEXT, "three", 5); /* while the decision is pending */
    nu_run_for(l, 50);
    CHECK_EQ_INT(r.messages, 0);
    dx_timer t;
    dx_timer_init(&t, accept_later, &held_conn);
    dx_timer_start(l, &t, 20);
    CHECK_RUN_UNTIL(l, r.messages == 3, 3000);
    CHECK_EQ_INT(r.opens, 1);
    CHECK(strcmp(r.seq, "one|two|three|") == 0);
    nu_in in = {0};
    PUMP_UNTIL(l, fd, &in, nu_head_len(&in) > 0, 3000);
    CHECK(in.len > 12 && memcmp(in.b, "HTTP/1.1 101", 12) == 0);
    close(fd);
    CHECK_RUN_UNTIL(l, r.closes == 1, 3000);
    dx_timer_stop(l, &t);
    dx_server_destroy(s);
    nu_loop_finish(l);
}

typedef struct destroy_ctx {
    nu_rec rec;
    dx_server *s;
    int upgrades;
} destroy_ctx;

static void destroy_in_message(dx_conn *c, dx_opcode op, dx_span data, void *user) {
    destroy_ctx *d = user;
    nu_on_message(c, op, data, &d->rec);
    dx_server_destroy(d->s);
    dx_server_destroy(d->s); /* twice: a no-op */
    CHECK_RC(dx_conn_send_text(c, dx_span_cstr("after")), DX_ECLOSED);
}

TEST(server_destroy_from_inside_a_message_callback) {
    dx_loop *l = nu_loop();
    destroy_ctx d = {0};
    dx_server_options o = {0};
    dx_conn_callbacks cb = nu_callbacks;
    cb.on_message = destroy_in_message;
    REQUIRE(nu_server(&d.s, l, &o, &cb, &d) == 0);
    uint16_t port = dx_server_port(d.s);
    nu_rec c1 = {0}, c2 = {0};
    dx_conn *a = connect_to(l, port, "/", &c1);
    connect_to(l, port, "/", &c2);
    CHECK_RUN_UNTIL(l, d.rec.opens == 2 && c1.opens == 1 && c2.opens == 1, 3000);
    dx_conn_send_text(a, dx_span_cstr("die"));
    CHECK_RUN_UNTIL(l, c1.closes == 1 && c2.closes == 1, 3000);
    CHECK_EQ_INT(d.rec.messages, 1);
    CHECK_EQ_INT(d.rec.closes, 2);
    CHECK_EQ_INT(d.rec.close_code, 1006);
    CHECK_EQ_INT(c1.close_code, 1006);
    CHECK_EQ_INT(c2.close_code, 1006);
    CHECK(nu_raw_connect(port) < 0);
    nu_loop_finish(l);
}

static void destroy_in_upgrade(dx_conn *c, const dx_ws_request *req, void *user) {
    (void)req;
    destroy_ctx *d = user;
    d->upgrades++;
    dx_server_destroy(d->s);
    CHECK_RC(dx_conn_accept(c, NULL, NULL), DX_ESTATE);
}

TEST(server_destroy_from_inside_the_upgrade_hook) {
    dx_loop *l = nu_loop();
    destroy_ctx d = {0};
    dx_server_options o = {0};
    dx_conn_callbacks cb = nu_callbacks;
    cb.on_upgrade = destroy_in_upgrade;
    REQUIRE(nu_server(&d.s, l, &o, &cb, &d) == 0);
    nu_rec cli = {0};
    connect_to(l, dx_server_port(d.s), "/", &cli);
    CHECK_RUN_UNTIL(l, cli.closes == 1, 3000);
    CHECK_EQ_INT(d.upgrades, 1);
    CHECK_EQ_INT(d.rec.closes, 1); /* the pending connection was seen: on_close 1006 */
    CHECK_EQ_INT(d.rec.close_code, 1006);
    CHECK_EQ_INT(cli.opens, 0);
    CHECK_RC(cli.last_err, DX_EHANDSHAKE_EOF);
    nu_loop_finish(l);
}
