/*
 * sansio-echo: a complete WebSocket echo server on plain blocking sockets, to show
 * that duplex's core needs no runtime of ours. One forked process per connection.
 * Walked through in docs/sansio.md.   Usage: sansio-echo [--port N]  (0: any port)
 */
#include <duplex/duplex.h>

#include <arpa/inet.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int write_all(int fd, const uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Read the request head; answer 101 or a refusal. Returns bytes read past the head. */
static int handshake(int fd, uint8_t *buf, size_t cap, size_t *extra) {
    dx_http_scan scan = {0};
    size_t have = 0, head_len, len;
    int rc = DX_EINCOMPLETE;
    while (rc == DX_EINCOMPLETE) {
        ssize_t n = read(fd, buf + have, cap - have);
        if (n <= 0)
            return -1;
        have += (size_t)n;
        rc = dx_http_scan_feed(&scan, buf, have, &head_len);
    }
    dx_http_header headers[DX_DEFAULT_MAX_HEADERS];
    dx_http_request req;
    dx_ws_request ws;
    uint8_t out[1024];
    if (rc == 0)
        rc = dx_http_parse_request(buf, head_len, &req, headers, DX_DEFAULT_MAX_HEADERS);
    if (rc == 0)
        rc = dx_handshake_check_request(&req, &ws);
    if (rc == 0)
        rc = dx_handshake_write_accept(&ws, &(dx_accept_options){0}, out, sizeof out, &len);
    else if (dx_handshake_write_refusal(rc, out, sizeof out, &len) == 0)
        rc = -1; /* refused: send the answer, then hang up */
    if (write_all(fd, out, len) != 0 || rc != 0)
        return -1;
    memmove(buf, buf + head_len, have - head_len); /* early frames stay */
    *extra = have - head_len;
    return 0;
}

static void serve(int fd) {
    static uint8_t buf[1 << 16];
    size_t len;
    dx_proto *p;
    dx_proto_config cfg = {.side = DX_SIDE_SERVER,
                           .limits = {.max_frame = 16u << 20, .max_message = 16u << 20}};
    if (handshake(fd, buf, sizeof buf, &len) != 0 || dx_proto_create(&p, &cfg) != 0)
        return;
    bool eof = false;
    for (;;) {
        dx_event ev = {0};
        size_t off = 0, used;
        while (off < len && ev.type != DX_EV_CLOSE) { /* every event of this read */
            if (dx_proto_recv(p, buf + off, len - off, &used, &ev) != 0)
                goto out;
            off += used;
            if (ev.type == DX_EV_DATA) /* echo each piece as it arrives */
                dx_proto_send(p, ev.u.data.first ? ev.u.data.opcode : DX_OP_CONT, ev.u.data.data,
                              ev.u.data.fin);
        }
        if (eof)
            dx_proto_recv_eof(p, &ev);
        dx_span out = dx_proto_output(p);
        if (write_all(fd, out.ptr, out.len) != 0)
            break;
        dx_proto_output_consume(p, out.len);
        if (dx_proto_is_done(p) || eof)
            break;
        ssize_t n = read(fd, buf, sizeof buf);
        len = n > 0 ? (size_t)n : 0;
        eof = n <= 0;
    }
out:
    dx_proto_destroy(p);
}

int main(int argc, char **argv) {
    int port = argc == 3 && strcmp(argv[1], "--port") == 0 ? atoi(argv[2]) : 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    int one = 1, ls = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(ls, (struct sockaddr *)&a, sizeof a) != 0 || listen(ls, 64) != 0 ||
        getsockname(ls, (struct sockaddr *)&a, &alen) != 0) {
        perror("sansio-echo: listen");
        return 1;
    }
    printf("sansio-echo: listening on ws://127.0.0.1:%d/\n", ntohs(a.sin_port));
    fflush(stdout);
    signal(SIGCHLD, SIG_IGN); /* children reap themselves */
    for (;;) {
        int fd = accept(ls, NULL, NULL);
        if (fd < 0)
            continue;
        if (fork() == 0) {
            close(ls);
            serve(fd);
            close(fd);
            _exit(0);
        }
        close(fd);
    }
}
