/*
 * bench_tls: the TLS engine's cost per record, in memory (no sockets): what
 * OpenSSL adds to every message a wss:// server echoes. A client and a server
 * engine (src/tls) handshake over memory buffers, then for each size the client
 * writes a record, the server reads it and writes it back, and the client reads
 * the echo; every echo is checked. The server's half (one record decrypted, one
 * encrypted) is timed alone, which is what a wss echo server pays on top of a
 * plaintext one.
 *
 * Certificates are made at run time with tests/certs/make-certs.sh (openssl CLI)
 * into a temporary directory, removed at exit.
 *
 * One line per size (the best of BATCHES batches):
 *   bench_tls  echo  512 B  3.9 us/echo (server side)  TLSv1.3  gcc-12 -O2
 */
#include "bench.h"
#include "tls/tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ECHOES 5000 /* per batch */
#define BATCHES 7   /* the best batch is reported: the machine is shared */

static char dir[64];

static void cleanup(void) {
    char cmd[128];
    if (dir[0]) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "bench_tls: could not remove %s\n", dir);
    }
}

static const char *path(const char *name) {
    static char bufs[4][128];
    static int i;
    char *b = bufs[i++ & 3];
    snprintf(b, 128, "%s/%s", dir, name);
    return b;
}

/* Move every ciphertext byte from @from to @to. */
static void pump(dx_tls_conn *from, dx_tls_conn *to) {
    dx_span out = dx__tls_output(from);
    if (!out.len)
        return;
    size_t used;
    if (dx__tls_feed(to, out, &used) != 0 || used != out.len)
        bench_fail("bench_tls", "feed");
    dx__tls_consume(from, out.len);
}

/* Read exactly @n bytes of plaintext from @t into @buf. */
static void read_all(dx_tls_conn *t, uint8_t *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        size_t k = 0;
        int rc = dx__tls_read(t, buf + got, n - got, &k);
        if (rc != 0)
            bench_fail("bench_tls", "read");
        got += k;
    }
}

static void write_all(dx_tls_conn *t, const uint8_t *buf, size_t n) {
    size_t used = 0;
    if (dx__tls_write(t, (dx_span){buf, n}, &used) != 0 || used != n)
        bench_fail("bench_tls", "write");
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/dx-bench-tls-XXXXXX");
    if (!mkdtemp(dir))
        bench_fail("bench_tls", "mkdtemp");
    atexit(cleanup);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "timeout 60 sh tests/certs/make-certs.sh %s >/dev/null 2>&1", dir);
    if (system(cmd) != 0)
        bench_fail("bench_tls", "make-certs.sh (run from the repository's top)");
    dx_tls_cert cert = {.cert_file = path("server.pem"), .key_file = path("server.key")};
    dx_tls_server_config scfg = {.certs = &cert, .cert_count = 1};
    dx_tls_client_config ccfg = {.ca_file = path("ca.pem")};
    dx_tls_ctx *sctx, *cctx;
    if (dx_tls_ctx_create_server(&sctx, &scfg) != 0 || dx_tls_ctx_create_client(&cctx, &ccfg))
        bench_fail("bench_tls", "contexts");

    static const size_t sizes[] = {20, 512, 16384};
    static uint8_t msg[16384], srv_buf[16384], cli_buf[16384];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t)(i * 7 + 1);
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        size_t n = sizes[si];
        dx_tls_conn *s, *c;
        if (dx__tls_conn_create(&s, sctx, NULL, 0) != 0 ||
            dx__tls_conn_create(&c, cctx, "localhost", 443) != 0)
            bench_fail("bench_tls", "conns");
        for (int round = 0; round < 20 && !(dx__tls_is_established(s) && dx__tls_is_established(c));
             round++) {
            int rc = dx__tls_handshake(c);
            if (rc != 0 && rc != DX_EINCOMPLETE)
                bench_fail("bench_tls", "client handshake");
            pump(c, s);
            rc = dx__tls_handshake(s);
            if (rc != 0 && rc != DX_EINCOMPLETE)
                bench_fail("bench_tls", "server handshake");
            pump(s, c);
        }
        double best = 1e9;
        for (int b = 0; b < BATCHES; b++) {
            double server_time = 0;
            for (int k = 0; k < ECHOES; k++) {
                write_all(c, msg, n);
                pump(c, s);
                double t0 = bench_now();
                read_all(s, srv_buf, n);
                write_all(s, srv_buf, n);
                dx_span out = dx__tls_output(s);
                server_time += bench_now() - t0;
                size_t used;
                if (dx__tls_feed(c, out, &used) != 0)
                    bench_fail("bench_tls", "feed");
                t0 = bench_now();
                dx__tls_consume(s, out.len);
                server_time += bench_now() - t0;
                read_all(c, cli_buf, n);
                if (memcmp(cli_buf, msg, n) != 0)
                    bench_fail("bench_tls", "echo differs");
            }
            if (server_time < best)
                best = server_time;
        }
        printf("bench_tls  echo  %zu B  %.2f us/echo (server side: decrypt + encrypt)  %s  %s %s\n",
               n, best / ECHOES * 1e6, dx__tls_version(s), bench_compiler(), bench_opt());
        fflush(stdout);
        dx__tls_conn_destroy(s);
        dx__tls_conn_destroy(c);
    }
    dx_tls_ctx_release(sctx);
    dx_tls_ctx_release(cctx);
    return 0;
}
