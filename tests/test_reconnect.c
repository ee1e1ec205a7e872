/* Opt-in client reconnection (client.h): a new connection after every close the
 * application did not ask for, with jittered exponential delays, reset by a success,
 * bounded by reconnect.max_attempts, never after the application's own close or a
 * 4xx refusal. Server and clients share one loop over 127.0.0.1. */
#include "test.h"

#include <stdio.h>

typedef struct world {
    dx_loop *loop;
    dx_server *server;
    char url[64];
    int server_opens;  /* connections the server opened */
    int drop_first;    /* the server closes this many connections with 1001 at once */
    int refuse_status; /* the server refuses with this status (0: accepts) */
    int opens;         /* client on_open */
    int closes;        /* client on_close */
    int reconnects;    /* on_reconnect */
    unsigned attempts[16];
    uint32_t delays[16];
    dx_conn *current;     /* the client connection alive now */
    int stop_after_opens; /* the client closes itself after this many opens */
    bool done;
} world;

/* ---- the server side ---- */

static void srv_open(dx_conn *c, void *user) {
    world *w = user;
    w->server_opens++;
    if (w->server_opens <= w->drop_first)
        dx_conn_close(c, DX_CLOSE_GOING_AWAY, dx_span_cstr("go away"));
}

static void srv_upgrade(dx_conn *c, const dx_ws_request *req, void *user) {
    (void)req;
    world *w = user;
    if (w->refuse_status)
        dx_conn_respond(c, w->refuse_status, NULL, 0, (dx_span){0});
    else
        dx_conn_accept(c, NULL, w);
}

/* ---- the client side ---- */

static void cli_open(dx_conn *c, void *user) {
    world *w = user;
    w->opens++;
    CHECK(c == w->current);
    if (w->opens == w->stop_after_opens)
        dx_conn_close(c, DX_CLOSE_NORMAL, (dx_span){0});
}

static void cli_close(dx_conn *c, const dx_close_info *info, void *user) {
    (void)info;
    world *w = user;
    CHECK(c == w->current);
    w->closes++;
    w->current = NULL; /* until on_reconnect gives the next one */
    w->done = true;    /* unless a reconnection follows at once */
}

static void cli_reconnect(dx_conn *c, unsigned attempt, uint32_t delay_ms, void *user) {
    world *w = user;
    CHECK(w->current == NULL); /* right after the previous on_close */
    CHECK_EQ_INT(dx_conn_state(c), DX_CONNECTING);
    if (w->reconnects < 16) {
        w->attempts[w->reconnects] = attempt;
        w->delays[w->reconnects] = delay_ms;
    }
    w->reconnects++;
    w->current = c;
    w->done = false;
}

static void setup(world *w) {
    REQUIRE(dx_loop_create(&w->loop, NULL) == 0);
    dx_server_options so = {.host = "127.0.0.1"};
    dx_conn_callbacks cb = {.on_open = srv_open, .on_upgrade = srv_upgrade};
    REQUIRE(dx_server_create(&w->server, w->loop, &so, &cb, w) == 0);
    snprintf(w->url, sizeof w->url, "ws://127.0.0.1:%u/", dx_server_port(w->server));
}

static void connect_client(world *w, const char *url, unsigned max_attempts) {
    dx_client_options o = {
        .reconnect = {.enabled = true, .min_ms = 10, .max_ms = 40, .max_attempts = max_attempts}};
    dx_conn_callbacks cb = {
        .on_open = cli_open, .on_close = cli_close, .on_reconnect = cli_reconnect};
    REQUIRE(dx_client_connect(&w->current, w->loop, url, &o, &cb, w) == 0);
}

static void run_until_done(world *w) {
    for (int i = 0; i < 20000 && !w->done; i++)
        dx_loop_run_once(w->loop, 50);
    CHECK(w->done);
}

static void teardown(world *w) {
    dx_server_destroy(w->server);
    for (int i = 0; i < 5; i++)
        dx_loop_run_once(w->loop, 0);
    dx_loop_destroy(w->loop);
}

TEST(reconnects_after_server_closes_until_the_app_closes) {
    world w = {.drop_first = 2, .stop_after_opens = 3};
    setup(&w);
    connect_client(&w, w.url, 0);
    run_until_done(&w);
    CHECK_EQ_INT(w.opens, 3);       /* two dropped by the server, the third kept */
    CHECK_EQ_INT(w.closes, 3);      /* one on_close per connection */
    CHECK_EQ_INT(w.reconnects, 2);  /* none after the application's own close */
    CHECK_EQ_INT(w.attempts[0], 1); /* each success resets the count */
    CHECK_EQ_INT(w.attempts[1], 1);
    CHECK(w.delays[0] >= 5 && w.delays[0] <= 10); /* min * [0.5, 1] */
    CHECK_EQ_INT(w.server_opens, 3);
    teardown(&w);
}

TEST(gives_up_after_max_attempts_with_growing_delays) {
    world w = {0};
    setup(&w);
    char url[64];
    snprintf(url, sizeof url, "%s", w.url);
    dx_server_destroy(w.server); /* nothing listens there any more */
    w.server = NULL;
    dx_loop_run_once(w.loop, 0);
    connect_client(&w, url, 4);
    run_until_done(&w);
    CHECK_EQ_INT(w.opens, 0);
    CHECK_EQ_INT(w.closes, 5); /* the first try and four reconnections */
    CHECK_EQ_INT(w.reconnects, 4);
    for (int i = 0; i < 4; i++)
        CHECK_EQ_INT(w.attempts[i], (unsigned)i + 1);
    /* 10, 20, 40, 40 ms (capped), each times [0.5, 1] */
    const uint32_t cap[4] = {10, 20, 40, 40};
    for (int i = 0; i < 4; i++)
        CHECK(w.delays[i] >= cap[i] / 2 && w.delays[i] <= cap[i]);
    teardown(&w);
}

TEST(no_reconnection_after_a_4xx_refusal) {
    world w = {.refuse_status = 403};
    setup(&w);
    connect_client(&w, w.url, 0);
    run_until_done(&w);
    CHECK_EQ_INT(w.closes, 1);
    CHECK_EQ_INT(w.reconnects, 0);
    teardown(&w);
}

TEST(a_503_refusal_is_retried) {
    world w = {.refuse_status = 503};
    setup(&w);
    connect_client(&w, w.url, 2);
    run_until_done(&w);
    CHECK_EQ_INT(w.closes, 3);
    CHECK_EQ_INT(w.reconnects, 2);
    teardown(&w);
}

TEST(closing_a_waiting_reconnection_stops_it) {
    world w = {.drop_first = 1};
    setup(&w);
    dx_client_options o = {
        .reconnect = {.enabled = true, .min_ms = 60000 /* would wait a minute */}};
    dx_conn_callbacks cb = {
        .on_open = cli_open, .on_close = cli_close, .on_reconnect = cli_reconnect};
    REQUIRE(dx_client_connect(&w.current, w.loop, w.url, &o, &cb, &w) == 0);
    for (int i = 0; i < 2000 && w.reconnects == 0; i++)
        dx_loop_run_once(w.loop, 50);
    REQUIRE(w.reconnects == 1);
    CHECK(dx_conn_send_text(w.current, dx_span_cstr("x")) == DX_ECONNECTING);
    dx_conn_close(w.current, 0, (dx_span){0}); /* abandon it while it waits */
    CHECK_EQ_INT(w.closes, 2);
    CHECK_EQ_INT(w.reconnects, 1);
    teardown(&w);
}
