/*
 * tcp-echo: a plain TCP echo server on duplex's stream layer (stream.h), no WebSocket.
 *
 *   tcp-echo [PORT]      (default 7000; 0: any free port; prints "listening on PORT")
 *
 * Every byte comes back. A client that sends faster than it reads is paused at 1 MiB
 * of unread echoes and resumed once they drain; a client that half-closes gets the
 * rest of its echoes, then our FIN.
 */
#include <duplex/duplex.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

static size_t on_data(dx_stream *s, uint8_t *data, size_t len, void *user) {
    (void)user;
    if (dx_stream_write(s, (dx_span){data, len}) != 0) {
        dx_stream_pause(s); /* over the cap: keep it until on_drain */
        return 0;
    }
    if (dx_stream_buffered(s) > ((size_t)1 << 20))
        dx_stream_pause(s); /* the client reads slower than it sends */
    return len;
}

static void on_drain(dx_stream *s, void *user) {
    (void)user;
    dx_stream_resume(s);
}

static void on_eof(dx_stream *s, void *user) {
    (void)user;
    dx_stream_close(s, DX_STREAM_CLOSE_NOW); /* after the echoes already queued */
}

static const dx_stream_callbacks echo = {
    .on_data = on_data, .on_drain = on_drain, .on_eof = on_eof};

static void on_accept(dx_listener *l, dx_stream *s, void *user) {
    (void)l;
    dx_stream_start(s, &echo, user);
}

int main(int argc, char **argv) {
    dx_listen_options o = {.port = (uint16_t)(argc > 1 ? atoi(argv[1]) : 7000)};
    dx_loop *loop;
    dx_listener *l;
    signal(SIGPIPE, SIG_IGN);
    int rc = dx_loop_create(&loop, NULL);
    if (rc == 0)
        rc = dx_listener_create(&l, loop, &o, on_accept, NULL);
    if (rc != 0) {
        fprintf(stderr, "tcp-echo: %s\n", dx_strerror(rc));
        return 1;
    }
    printf("listening on %u\n", dx_listener_port(l));
    fflush(stdout);
    return dx_loop_run(loop) == 0 ? 0 : 1;
}
