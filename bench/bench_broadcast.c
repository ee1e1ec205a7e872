/*
 * bench_broadcast: what a broadcast costs the server with permessage-deflate, sent
 * one connection at a time (dx_conn_send: each connection compresses with its own
 * context) against a prepared message (dx_prepared + dx_server_broadcast: one
 * compression per window, shared bytes).
 *
 * One loop holds the server and N duplex clients over 127.0.0.1. For each way, M
 * broadcasts of a 2 KiB JSON-like message; the clock covers only the server's send
 * calls (compression and queueing), not the delivery, which is then awaited and
 * checked (every client gets every message, byte for byte). The server runs with
 * context takeover (the default) and then without (server_no_context_takeover).
 *
 * One line per measurement:
 *   bench_broadcast  takeover  per-conn   500 conns  2048 B  41.2 us/conn  ratio 0.21 ...
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define CONNS 500
#define ROUNDS 20
#define MSG_LEN 2048

typedef struct bench {
    dx_loop *loop;
    dx_server *server;
    dx_conn *srv[CONNS]; /* the server's connections */
    int srv_open, cli_open, cli_closed;
    long received; /* messages the clients got, checked */
    long wrong;
    const uint8_t *expect; /* the message being broadcast */
} bench;

static bench B;

static void srv_open(dx_conn *c, void *user) {
    (void)user;
    if (B.srv_open < CONNS)
        B.srv[B.srv_open++] = c;
}

static void srv_upgrade(dx_conn *c, const dx_ws_request *req, void *user);
static const dx_conn_callbacks srv_cb = {.on_open = srv_open, .on_upgrade = srv_upgrade};

static void srv_upgrade(dx_conn *c, const dx_ws_request *req, void *user) {
    (void)req;
    dx_conn_accept(c, NULL, user);
}

static void cli_open(dx_conn *c, void *user) {
    (void)c;
    (void)user;
    B.cli_open++;
}

static void cli_message(dx_conn *c, dx_opcode op, dx_span data, void *user) {
    (void)c;
    (void)user;
    B.received++;
    if (op != DX_OP_TEXT || data.len != MSG_LEN || memcmp(data.ptr, B.expect, MSG_LEN) != 0)
        B.wrong++;
}

static void cli_close(dx_conn *c, const dx_close_info *info, void *user) {
    (void)c;
    (void)info;
    (void)user;
    B.cli_closed++;
}

static const dx_conn_callbacks cli_cb = {
    .on_open = cli_open, .on_message = cli_message, .on_close = cli_close};

/* A message like an application's: JSON with repeated keys and varying values. */
static void make_message(uint8_t *p, unsigned seed) {
    size_t n = 0;
    while (n < MSG_LEN) {
        char item[96];
        seed = seed * 1103515245u + 12345u;
        int k = snprintf(item, sizeof item, "{\"user\":\"u%u\",\"price\":%u.%02u,\"side\":\"%s\"},",
                         (seed >> 8) % 1000, (seed >> 4) % 500, seed % 100,
                         (seed >> 20) & 1 ? "buy" : "sell");
        for (int i = 0; i < k && n < MSG_LEN; i++)
            p[n++] = (uint8_t)item[i];
    }
}

static void run_until(bool (*done)(void), double secs) {
    double end = bench_now() + secs;
    while (!done() && bench_now() < end)
        dx_loop_run_once(B.loop, 1);
    if (!done())
        bench_fail("bench_broadcast", "timed out");
}

static long want_received;
static bool all_open(void) {
    return B.srv_open == CONNS && B.cli_open == CONNS;
}
static bool all_received(void) {
    return B.received >= want_received;
}
static bool all_closed(void) {
    return B.cli_closed == CONNS && dx_server_connections(B.server) == 0;
}

static void start(bool no_takeover) {
    memset(&B, 0, sizeof B);
    if (dx_loop_create(&B.loop, NULL) != 0)
        bench_fail("bench_broadcast", "loop");
    dx_deflate_config dc = {.server_no_context_takeover = no_takeover};
    dx_server_options so = {
        .host = "127.0.0.1",
        .conn = {.send.max_queue = (size_t)8 << 20, .compression.deflate = &dc}};
    if (dx_server_create(&B.server, B.loop, &so, &srv_cb, NULL) != 0)
        bench_fail("bench_broadcast", "server");
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/", dx_server_port(B.server));
    static const dx_deflate_config offer;
    dx_client_options co = {.conn.compression.deflate = &offer};
    for (int i = 0; i < CONNS; i++) {
        dx_conn *c;
        if (dx_client_connect(&c, B.loop, url, &co, &cli_cb, NULL) != 0)
            bench_fail("bench_broadcast", "connect");
        if ((i & 63) == 63)
            for (int k = 0; k < 20; k++)
                dx_loop_run_once(B.loop, 0); /* keep the accept queue short */
    }
    run_until(all_open, 30);
}

static void stop(void) {
    dx_server_shutdown(B.server, 2000, NULL, NULL);
    run_until(all_closed, 10);
    dx_server_destroy(B.server);
    for (int i = 0; i < 5; i++)
        dx_loop_run_once(B.loop, 0);
    dx_loop_destroy(B.loop);
}

static void measure(bool no_takeover, bool prepared) {
    start(no_takeover);
    static uint8_t msgs[ROUNDS][MSG_LEN];
    double spent = 0;
    size_t wire = 0;
    for (int r = 0; r < ROUNDS; r++) {
        make_message(msgs[r], (unsigned)r + 1);
        B.expect = msgs[r];
        want_received = B.received + CONNS;
        size_t queued_before = 0;
        for (int i = 0; i < CONNS; i++)
            queued_before += dx_conn_buffered_amount(B.srv[i]);
        double t0 = bench_now();
        if (prepared) {
            dx_prepared *m;
            if (dx_prepared_create(&m, DX_OP_TEXT, (dx_span){msgs[r], MSG_LEN}, NULL) != 0)
                bench_fail("bench_broadcast", "prepare");
            size_t sent = 0;
            if (dx_server_broadcast(B.server, m, &sent) != 0 || sent != CONNS)
                bench_fail("bench_broadcast", "broadcast");
            dx_prepared_release(m);
        } else {
            for (int i = 0; i < CONNS; i++)
                if (dx_conn_send_text(B.srv[i], (dx_span){msgs[r], MSG_LEN}) != 0)
                    bench_fail("bench_broadcast", "send");
        }
        spent += bench_now() - t0;
        for (int i = 0; i < CONNS; i++)
            wire += dx_conn_buffered_amount(B.srv[i]);
        wire -= queued_before;
        run_until(all_received, 30);
    }
    if (B.wrong)
        bench_fail("bench_broadcast", "a client got a wrong message");
    double sends = (double)ROUNDS * CONNS;
    printf("bench_broadcast  %-9s %-9s %d conns  %d B  %.2f us/conn  %.0f us/broadcast  "
           "ratio %.3f  %s %s\n",
           no_takeover ? "no-ctx" : "takeover", prepared ? "prepared" : "per-conn", CONNS, MSG_LEN,
           spent / sends * 1e6, spent / ROUNDS * 1e6, (double)wire / (sends * MSG_LEN),
           bench_compiler(), bench_opt());
    fflush(stdout);
    stop();
}

int main(void) {
    struct rlimit rl; /* two descriptors a connection: raise the soft limit if we may */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 4 * CONNS) {
        rl.rlim_cur = rl.rlim_max < 4 * CONNS ? rl.rlim_max : 4 * CONNS;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    for (int t = 0; t < 2; t++) {
        measure(t == 1, false);
        measure(t == 1, true);
    }
    return 0;
}
