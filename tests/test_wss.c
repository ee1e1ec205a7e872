/*
 * wss:// at the runtime level: dx_server with dx_server_options.tls and dx_client with
 * dx_client_options.tls on one loop over 127.0.0.1, and raw TCP peers that play a bad
 * TLS peer (silent, a partial record, garbage instead of a ServerHello) or a client
 * that watches the TLS records the server writes (OpenSSL on memory BIOs, so the raw
 * bytes stay visible).
 *
 * Certificates are made at test time by tests/certs/make-certs.sh (openssl CLI) into
 * a temporary directory, removed at exit (as in test_tls.c).
 */
#include "net_util.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "test_certs.h"

/* The server's TLS configuration: server.pem for localhost and 127.0.0.1. */
typedef struct tls_server {
    dx_tls_cert cert;
    dx_tls_server_config cfg;
} tls_server;

static void tls_server_init(tls_server *t) {
    t->cert = (dx_tls_cert){.cert_file = cp("server.pem"), .key_file = cp("server.key")};
    t->cfg = (dx_tls_server_config){.certs = &t->cert, .cert_count = 1};
}

static dx_tls_client_config client_tls(void) {
    return (dx_tls_client_config){.ca_file = cp("ca.pem")};
}

static bool is_tls_error(int err) {
    return err <= DX_ETLS_UNKNOWN_CA && err >= DX_ETLS_PROTOCOL;
}

/* ---- one side of an echo: every message kept whole ------------------------------------ */

typedef struct peer {
    int opens, closes, messages, errors;
    int last_err;
    uint16_t close_code;
    bool clean, remote;
    dx_opcode last_op;
    char alert[64]; /* dx_conn_tls_alert in on_error */
    uint8_t *last;  /* a copy of the last message */
    size_t last_len;
    dx_conn *conn;
} peer;

static void p_open(dx_conn *c, void *user) {
    peer *p = user;
    p->opens++;
    p->conn = c;
}

static void p_message(dx_conn *c, dx_opcode op, dx_span data, void *user) {
    (void)c;
    peer *p = user;
    p->messages++;
    p->last_op = op;
    free(p->last);
    p->last = malloc(data.len ? data.len : 1);
    if (p->last && data.len)
        memcpy(p->last, data.ptr, data.len);
    p->last_len = data.len;
}

static void p_error(dx_conn *c, int err, void *user) {
    peer *p = user;
    p->errors++;
    p->last_err = err;
    const char *alert = dx_conn_tls_alert(c);
    snprintf(p->alert, sizeof p->alert, "%s", alert ? alert : "");
}

static void p_close(dx_conn *c, const dx_close_info *info, void *user) {
    (void)c;
    peer *p = user;
    p->closes++;
    p->close_code = info->code;
    p->clean = info->clean;
    p->remote = info->remote;
    p->conn = NULL;
}

static const dx_conn_callbacks peer_callbacks = {
    .on_open = p_open, .on_message = p_message, .on_error = p_error, .on_close = p_close};

static uint8_t *pattern(size_t n, bool text) {
    uint8_t *p = malloc(n ? n : 1);
    if (!p)
        abort();
    for (size_t i = 0; i < n; i++)
        p[i] = text ? (uint8_t)('a' + (i / 5) % 26) : (uint8_t)dx_test_rand();
    return p;
}

/* ---- the peer's alert --------------------------------------------------------------------- */

/* mTLS: a server that requires a client certificate refuses a client without one with
 * a fatal alert; the client's application can read which (RFC 8446 §6.2). */
TEST(wss_client_without_a_required_certificate_sees_the_servers_alert) {
    REQUIRE(certs_ready());
    dx_loop *l = nu_loop();
    tls_server t;
    tls_server_init(&t);
    t.cfg.client_auth = DX_TLS_CLIENT_AUTH_REQUIRED;
    t.cfg.client_ca_file = cp("ca.pem");
    peer srv = {0}, cli = {0};
    dx_server_options so = {.callbacks = peer_callbacks, .user = &srv, .tls = &t.cfg};
    dx_server *s = NULL;
    REQUIRE(nu_server(&s, l, &so) == 0);
    char url[64];
    snprintf(url, sizeof url, "wss://localhost:%u/", dx_server_port(s));
    dx_tls_client_config ct = client_tls();
    dx_client_options co = {.tls = &ct};
    dx_conn *c;
    REQUIRE(dx_client_connect(&c, l, url, &co, &peer_callbacks, &cli) == 0);
    CHECK_RUN_UNTIL(l, cli.closes == 1, 5000);
    CHECK_EQ_INT(cli.opens, 0);
    CHECK_RC(cli.last_err, DX_ETLS_ALERT);
    CHECK(strstr(cli.alert, "certificate required") != NULL);
    CHECK(dx_conn_tls_alert(NULL) == NULL);
    dx_server_destroy(s);
    nu_loop_finish(l);
}

/* ---- echo over wss with permessage-deflate -------------------------------------------- */

TEST(wss_deflate_echo_0_100_64k_4m_both_types_then_clean_close) {
    REQUIRE(certs_ready());
    dx_loop *l = nu_loop();
    static const dx_deflate_config pmd = {0};
    tls_server ts;
    tls_server_init(&ts);
    nu_rec srv = {.echo = true};
    dx_server_options so = {
        .callbacks = nu_callbacks,
        .user = &srv,
        .deflate = &pmd,
        .tls = &ts.cfg,
        .conn = {.max_message = (size_t)8 << 20, .max_send_queue = (size_t)16 << 20}};
    dx_server *s = NULL;
    CHECK_RC(nu_server(&s, l, &so), 0);
    REQUIRE(s != NULL);

    char url[64];
    snprintf(url, sizeof url, "wss://localhost:%u/", (unsigned)dx_server_port(s));
    dx_tls_client_config ct = client_tls();
    dx_client_options co = {
        .deflate = &pmd,
        .tls = &ct,
        .conn = {.max_message = (size_t)8 << 20, .max_send_queue = (size_t)16 << 20}};
    peer cli = {0};
    dx_conn *c = NULL;
    CHECK_RC(dx_client_connect(&c, l, url, &co, &peer_callbacks, &cli), 0);
    CHECK_RUN_UNTIL(l, cli.opens == 1 || cli.closes == 1, 5000);
    if (cli.opens == 1) {
        dx_span ext = dx_conn_extensions(cli.conn);
        CHECK(ext.len >= 18 && memcmp(ext.ptr, "permessage-deflate", 18) == 0);
        static const size_t sizes[] = {0, 100, 64 << 10, 4 << 20};
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
            for (int k = 0; k < 2; k++) {
                size_t n = sizes[i];
                dx_opcode op = k == 0 ? DX_OP_TEXT : DX_OP_BINARY;
                uint8_t *msg = pattern(n, k == 0);
                int before = cli.messages, failed_before = dx_test_failed;
                CHECK_RC(dx_conn_send(cli.conn, op, (dx_span){msg, n}), 0);
                CHECK_RUN_UNTIL(l, cli.messages == before + 1 || cli.closes, 10000);
                CHECK(cli.last_op == op && cli.last_len == n &&
                      (n == 0 || memcmp(cli.last, msg, n) == 0));
                if (dx_test_failed != failed_before)
                    printf("    echo of %zu bytes (%s) differs\n", n, k ? "binary" : "text");
                free(msg);
            }
        CHECK_EQ_INT(srv.total_bytes, 2 * (0 + 100 + (64 << 10) + (4 << 20)));
        CHECK_RC(dx_conn_close(cli.conn, DX_CLOSE_NORMAL, dx_span_cstr("bye")), 0);
    }
    CHECK_RUN_UNTIL(l, cli.closes == 1 && srv.closes == 1, 5000);
    CHECK_EQ_INT(cli.close_code, 1000);
    CHECK(cli.clean && !cli.remote);
    CHECK_EQ_INT(srv.close_code, 1000);
    CHECK(srv.clean && srv.remote);
    CHECK_EQ_INT(cli.errors + srv.errors, 0);
    dx_server_destroy(s);
    nu_loop_finish(l);
    free(cli.last);
}

/* ---- handshake timeouts ------------------------------------------------------------------ */

TEST(wss_server_handshake_timeout_drops_silent_and_partial_record_clients) {
    REQUIRE(certs_ready());
    dx_loop *l = nu_loop();
    tls_server ts;
    tls_server_init(&ts);
    nu_rec srv = {.echo = true};
    dx_server_options so = {.callbacks = nu_callbacks,
                            .user = &srv,
                            .tls = &ts.cfg,
                            .conn = {.handshake_timeout_ms = 150}};
    dx_server *s = NULL;
    CHECK_RC(nu_server(&s, l, &so), 0);
    REQUIRE(s != NULL);
    uint16_t port = dx_server_port(s);

    uint64_t t0 = nu_now_ms();
    int silent = nu_raw_connect(port);
    int partial = nu_raw_connect(port);
    CHECK(silent >= 0 && partial >= 0);
    /* the first 5 bytes of a TLS record: a handshake record of 512 bytes, none of them sent */
    static const uint8_t head[5] = {0x16, 0x03, 0x01, 0x02, 0x00};
    CHECK(nu_send(partial, head, sizeof head));
    /* the server has accepted both and read the 5 bytes; neither is closed yet */
    nu_in a = {0}, b = {0};
    nu_run_for(l, 50);
    nu_pump(silent, &a);
    nu_pump(partial, &b);
    uint64_t early = nu_now_ms() - t0;
    if (early < 120)
        CHECK(!a.eof && !a.err && !b.eof && !b.err);
    CHECK_EQ_INT(dx_server_connections(s), 2);

    /* a real client meanwhile (its own handshake is well within 150 ms) */
    char url[64];
    snprintf(url, sizeof url, "wss://127.0.0.1:%u/", (unsigned)port);
    dx_tls_client_config ct = client_tls();
    dx_client_options co = {.tls = &ct};
    peer cli = {0};
    dx_conn *c = NULL;
    CHECK_RC(dx_client_connect(&c, l, url, &co, &peer_callbacks, &cli), 0);
    CHECK_RUN_UNTIL(l, cli.opens == 1 || cli.closes == 1, 3000);
    if (cli.opens == 1) {
        CHECK_RC(dx_conn_send_text(cli.conn, dx_span_cstr("served meanwhile")), 0);
        CHECK_RUN_UNTIL(l, cli.messages == 1, 3000);
        CHECK(cli.last_len == 16 && memcmp(cli.last, "served meanwhile", 16) == 0);
    }

    /* both are closed by the server once the timeout passes */
    uint64_t end = nu_now_ms() + 3000, t_a = 0, t_b = 0;
    while ((!t_a || !t_b) && nu_now_ms() < end) {
        dx_loop_run_once(l, 5);
        nu_pump(silent, &a);
        nu_pump(partial, &b);
        if (!t_a && (a.eof || a.err))
            t_a = nu_now_ms() - t0;
        if (!t_b && (b.eof || b.err))
            t_b = nu_now_ms() - t0;
    }
    printf("    silent closed after %" PRId64 " ms, partial record after %" PRId64
           " ms (timeout 150 ms; -1: not within 3 s)\n",
           t_a ? (int64_t)t_a : -1, t_b ? (int64_t)t_b : -1);
    CHECK(t_a >= 140 && t_a < 2000);
    CHECK(t_b >= 140 && t_b < 2000);
    CHECK_EQ_INT(a.total + b.total, 0); /* nothing was ever answered */
    close(silent);
    close(partial);

    /* the real client is still open and served after the drops */
    if (cli.conn) {
        CHECK_RC(dx_conn_send_binary(cli.conn, dx_span_cstr("and after")), 0);
        CHECK_RUN_UNTIL(l, cli.messages == 2, 3000);
        CHECK_RC(dx_conn_close(cli.conn, DX_CLOSE_NORMAL, (dx_span){0}), 0);
        CHECK_RUN_UNTIL(l, cli.closes == 1, 3000);
        CHECK(cli.clean && cli.close_code == 1000);
    }
    CHECK_EQ_INT(cli.errors, 0);
    dx_server_destroy(s);
    nu_loop_finish(l);
    free(cli.last);
}

TEST(wss_client_handshake_timeout_against_a_server_that_never_answers) {
    REQUIRE(certs_ready());
    dx_loop *l = nu_loop();
    uint16_t port = 0;
    int lfd = nu_listen(&port, 8);
    REQUIRE(lfd >= 0);
    char url[64];
    snprintf(url, sizeof url, "wss://127.0.0.1:%u/", (unsigned)port);
    dx_tls_client_config ct = client_tls();
    dx_client_options co = {.tls = &ct, .conn = {.handshake_timeout_ms = 150}};
    nu_rec r = {0};
    dx_conn *c = NULL;
    uint64_t t0 = nu_now_ms();
    CHECK_RC(dx_client_connect(&c, l, url, &co, &nu_callbacks, &r), 0);
    int fd = nu_accept(l, lfd, 2000);
    CHECK(fd >= 0);
    nu_in in = {0};
    uint64_t end = nu_now_ms() + 3000;
    while (!r.closes && nu_now_ms() < end) {
        dx_loop_run_once(l, 5);
        if (fd >= 0)
            nu_pump(fd, &in); /* read the ClientHello, answer nothing */
    }
    uint64_t took = nu_now_ms() - t0;
    printf("    closed after %" PRIu64 " ms (timeout 150 ms)\n", took);
    CHECK_EQ_INT(r.closes, 1);
    CHECK_EQ_INT(r.opens, 0);
    CHECK_EQ_INT(r.errors, 1);
    CHECK_RC(r.last_err, DX_EHANDSHAKE_TIMEOUT);
    CHECK_EQ_INT(r.close_code, 1006);
    CHECK(!r.clean);
    CHECK_EQ_INT(r.bad_order, 0);
    CHECK(took >= 140 && took < 2000);
    /* it did get as far as TLS: the first thing it sent was a handshake record */
    CHECK(in.len >= 6 && in.b[0] == 0x16 && in.b[5] == 0x01);
    if (fd >= 0)
        close(fd);
    close(lfd);
    nu_loop_finish(l);
}

/* A raw server that reads the ClientHello and answers with @reply; the client must fail
 * with a DX_ETLS_* code (@want, or any DX_ETLS_* when 0), not hang and not open. */
static void garbage_server_case(const char *name, const void *reply, size_t len, int want) {
    dx_loop *l = nu_loop();
    uint16_t port = 0;
    int lfd = nu_listen(&port, 8);
    if (lfd < 0) {
        CHECK(lfd >= 0);
        dx_loop_destroy(l);
        return;
    }
    char url[64];
    snprintf(url, sizeof url, "wss://localhost:%u/", (unsigned)port);
    dx_tls_client_config ct = client_tls();
    dx_client_options co = {.tls = &ct, .conn = {.handshake_timeout_ms = 5000}};
    nu_rec r = {0};
    dx_conn *c = NULL;
    CHECK_RC(dx_client_connect(&c, l, url, &co, &nu_callbacks, &r), 0);
    int fd = nu_accept(l, lfd, 3000);
    CHECK(fd >= 0);
    nu_in in = {0};
    if (fd >= 0) {
        PUMP_UNTIL(l, fd, &in, in.len >= 5 && in.len >= 5u + ((size_t)in.b[3] << 8 | in.b[4]),
                   3000);
        CHECK(in.len >= 5 && in.b[0] == 0x16); /* a whole ClientHello record */
        CHECK(nu_send(fd, reply, len));
    }
    uint64_t t0 = nu_now_ms();
    RUN_UNTIL(l, r.closes == 1, 3000);
    uint64_t took = nu_now_ms() - t0;
    printf("    %s: %s (%s) after %" PRIu64 " ms\n", name, dx_err_name(r.last_err),
           dx_strerror(r.last_err), took);
    CHECK_EQ_INT(r.closes, 1);
    CHECK_EQ_INT(r.opens, 0);
    CHECK(is_tls_error(r.last_err));
    if (want)
        CHECK_RC(r.last_err, want);
    CHECK_EQ_INT(r.close_code, 1006);
    CHECK(took < 1000); /* failed on the bytes, not by the 5 s handshake timeout */
    if (fd >= 0)
        close(fd);
    close(lfd);
    nu_loop_finish(l);
}

TEST(wss_client_fails_with_a_tls_error_when_the_server_answers_garbage) {
    REQUIRE(certs_ready());
    /* a handshake record whose body is no ServerHello */
    uint8_t rec[5 + 40] = {0x16, 0x03, 0x03, 0x00, 40};
    for (size_t i = 5; i < sizeof rec; i++)
        rec[i] = (uint8_t)(0xA5 ^ i);
    garbage_server_case("handshake record of garbage", rec, sizeof rec, 0);
    /* no TLS record at all */
    uint8_t junk[64];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)(0xF0 | (i & 0x0F));
    garbage_server_case("non-TLS bytes", junk, sizeof junk, 0);
    /* a plain HTTP server */
    static const char http[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    garbage_server_case("plain HTTP answer", http, sizeof http - 1, DX_ETLS_PLAIN_HTTP);
}

/* ---- close_notify: a raw TLS client that sees the server's records -------------------- */

/* OpenSSL on memory BIOs over a TCP socket: every byte the server sends is kept in
 * @raw before it is decrypted. */
typedef struct tap {
    SSL_CTX *ctx;
    SSL *ssl;
    BIO *rbio, *wbio; /* owned by ssl */
    int fd;
    uint8_t *raw; /* every byte read from the socket */
    size_t raw_len, raw_cap;
    bool eof; /* the server closed TCP (FIN) */
    int err;  /* or reset it (errno) */
} tap;

static bool tap_open(tap *t, uint16_t port, int max_version) {
    memset(t, 0, sizeof(*t));
    t->fd = -1;
    t->ctx = SSL_CTX_new(TLS_client_method());
    if (!t->ctx)
        return false;
    SSL_CTX_set_max_proto_version(t->ctx, max_version);
    SSL_CTX_set_verify(t->ctx, SSL_VERIFY_NONE, NULL); /* the test is about records, not trust */
    t->ssl = SSL_new(t->ctx);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->rbio || !t->wbio) {
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        return false;
    }
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    SSL_set_tlsext_host_name(t->ssl, "localhost");
    SSL_set_connect_state(t->ssl);
    t->fd = nu_raw_connect(port);
    return t->fd >= 0;
}

static void tap_close(tap *t) {
    SSL_free(t->ssl);
    SSL_CTX_free(t->ctx);
    if (t->fd >= 0)
        close(t->fd);
    free(t->raw);
}

/* Send what OpenSSL wrote, read what the socket has (kept raw, fed to OpenSSL), run the
 * loop once. */
static void tap_pump(dx_loop *l, tap *t) {
    uint8_t buf[16384];
    int n;
    while ((n = BIO_read(t->wbio, buf, sizeof buf)) > 0)
        nu_send(t->fd, buf, (size_t)n);
    for (;;) {
        ssize_t m = recv(t->fd, buf, sizeof buf, MSG_DONTWAIT);
        if (m > 0) {
            if (t->raw_len + (size_t)m > t->raw_cap) {
                size_t cap = (t->raw_cap ? t->raw_cap * 2 : 65536) + (size_t)m;
                uint8_t *p = realloc(t->raw, cap);
                if (!p)
                    abort();
                t->raw = p;
                t->raw_cap = cap;
            }
            memcpy(t->raw + t->raw_len, buf, (size_t)m);
            t->raw_len += (size_t)m;
            BIO_write(t->rbio, buf, (int)m);
            continue;
        }
        if (m == 0)
            t->eof = true;
        else if (errno != EAGAIN && errno != EINTR)
            t->err = errno;
        break;
    }
    dx_loop_run_once(l, 2);
}

static bool tap_handshake(dx_loop *l, tap *t) {
    uint64_t end = nu_now_ms() + 3000;
    while (nu_now_ms() < end) {
        int rc = SSL_do_handshake(t->ssl);
        if (rc == 1) {
            tap_pump(l, t); /* the Finished, on TLS 1.2 */
            return true;
        }
        if (SSL_get_error(t->ssl, rc) != SSL_ERROR_WANT_READ)
            return false;
        tap_pump(l, t);
    }
    return false;
}

static bool tap_write(dx_loop *l, tap *t, const void *p, size_t n) {
    if (SSL_write(t->ssl, p, (int)n) != (int)n)
        return false;
    tap_pump(l, t);
    return true;
}

/* Decrypt what arrived into @in; returns SSL_get_error of the last SSL_read. */
static int tap_read(tap *t, nu_in *in) {
    for (;;) {
        size_t room = sizeof in->b - in->len;
        int rc = SSL_read(t->ssl, in->b + in->len, room > 16384 ? 16384 : (int)room);
        if (rc > 0) {
            in->len += (size_t)rc;
            in->total += (size_t)rc;
            continue;
        }
        return SSL_get_error(t->ssl, rc);
    }
}

/* The content types of the records in @raw, in order (up to @cap); false when @raw
 * does not end on a record boundary. */
static bool record_types(const uint8_t *raw, size_t len, uint8_t *types, size_t cap,
                         size_t *count) {
    size_t off = 0;
    *count = 0;
    while (off + 5 <= len) {
        size_t rl = (size_t)raw[off + 3] << 8 | raw[off + 4];
        if (*count < cap)
            types[*count] = raw[off];
        (*count)++;
        off += 5 + rl;
    }
    return off == len;
}

static void srv_abort_on_message(dx_conn *c, dx_opcode op, dx_span data, void *user) {
    (void)op;
    (void)data;
    (void)user;
    dx_conn_abort(c);
}

/*
 * A raw OpenSSL client (TLS 1.2 when @tls12, so record types are in the clear; TLS 1.3
 * hides them inside application_data records) opens a WebSocket, then either closes
 * with 1000 or (@abort_it) sends a text the server answers with dx_conn_abort.
 * Reports the record types the server sent, whether its stream ended with FIN, and
 * what OpenSSL made of its end (SSL_ERROR_ZERO_RETURN: a close_notify was read).
 */
typedef struct notify_result {
    bool opened, got_close_frame, eof;
    int ssl_end; /* SSL_get_error at the end */
    uint8_t types[256];
    size_t count;
    bool whole_records;
    nu_rec srv;
} notify_result;

static void close_notify_run(bool tls12, bool abort_it, notify_result *res) {
    memset(res, 0, sizeof(*res));
    dx_loop *l = nu_loop();
    tls_server ts;
    tls_server_init(&ts);
    dx_conn_callbacks cb = nu_callbacks;
    if (abort_it)
        cb.on_message = srv_abort_on_message;
    dx_server_options so = {.callbacks = cb, .user = &res->srv, .tls = &ts.cfg};
    dx_server *s = NULL;
    CHECK_RC(nu_server(&s, l, &so), 0);
    if (!s) {
        dx_loop_destroy(l);
        return;
    }
    tap t;
    CHECK(tap_open(&t, dx_server_port(s), tls12 ? TLS1_2_VERSION : TLS1_3_VERSION));
    nu_in in = {0};
    if (t.fd >= 0 && tap_handshake(l, &t)) {
        CHECK(strcmp(SSL_get_version(t.ssl), tls12 ? "TLSv1.2" : "TLSv1.3") == 0);
        char req[1024];
        nu_request(req, sizeof req, "/", NULL);
        CHECK(tap_write(l, &t, req, strlen(req)));
        uint64_t end = nu_now_ms() + 3000;
        while (!nu_head_len(&in) && !t.eof && nu_now_ms() < end) {
            tap_pump(l, &t);
            tap_read(&t, &in);
        }
        res->opened = nu_head_len(&in) > 0 && nu_in_has(&in, " 101 ");
        if (res->opened)
            nu_in_consume(&in, nu_head_len(&in));
        uint8_t frame[64];
        size_t n = 0;
        if (abort_it) {
            n = nu_frame(frame, true, DX_OP_TEXT, true, "abort", 5);
        } else {
            static const uint8_t code[2] = {0x03, 0xE8}; /* 1000 */
            n = nu_frame(frame, true, DX_OP_CLOSE, true, code, 2);
        }
        CHECK(tap_write(l, &t, frame, n));
        end = nu_now_ms() + 3000;
        while (!t.eof && !t.err && nu_now_ms() < end)
            tap_pump(l, &t);
        res->ssl_end = tap_read(&t, &in);
        nu_frame_view f;
        res->got_close_frame = nu_next_frame(&in, &f) && f.opcode == DX_OP_CLOSE && f.len == 2 &&
                               f.payload[0] == 0x03 && f.payload[1] == 0xE8;
    } else {
        dx_test_fail(__FILE__, __LINE__, "the raw TLS client's handshake did not complete");
    }
    res->eof = t.eof;
    res->whole_records = record_types(t.raw, t.raw_len, res->types, sizeof res->types, &res->count);
    RUN_UNTIL(l, res->srv.closes == 1, 3000);
    tap_close(&t);
    dx_server_destroy(s);
    nu_loop_finish(l);
    ERR_clear_error();
}

TEST(wss_server_sends_close_notify_after_a_clean_close_tls12_records) {
    REQUIRE(certs_ready());
    notify_result r;
    close_notify_run(true, false, &r);
    CHECK(r.opened);
    CHECK(r.got_close_frame);
    CHECK(r.eof);
    CHECK(r.whole_records);
    REQUIRE(r.count >= 2 && r.count <= sizeof r.types);
    printf("    %zu records, the last two of types %u, %u; SSL_read end: %d\n", r.count,
           r.types[r.count - 2], r.types[r.count - 1], r.ssl_end);
    CHECK_EQ_INT(r.types[r.count - 1], 21); /* alert: close_notify, then FIN */
    CHECK_EQ_INT(r.types[r.count - 2], 23); /* the close frame */
    CHECK_EQ_INT(r.ssl_end, SSL_ERROR_ZERO_RETURN);
    CHECK_EQ_INT(r.srv.closes, 1);
    CHECK(r.srv.clean && r.srv.close_code == 1000);
}

TEST(wss_server_sends_close_notify_after_a_clean_close_tls13_decrypted) {
    REQUIRE(certs_ready());
    notify_result r;
    close_notify_run(false, false, &r);
    CHECK(r.opened);
    CHECK(r.got_close_frame);
    CHECK(r.eof);
    /* TLS 1.3 encrypts the alert's type: OpenSSL tells us it was a close_notify */
    CHECK_EQ_INT(r.ssl_end, SSL_ERROR_ZERO_RETURN);
    CHECK_EQ_INT(r.srv.closes, 1);
    CHECK(r.srv.clean && r.srv.close_code == 1000);
}

/* The control: the same observation tells an abort (no close_notify) apart. */
TEST(wss_server_abort_sends_no_close_notify) {
    REQUIRE(certs_ready());
    notify_result r;
    close_notify_run(true, true, &r);
    CHECK(r.opened);
    CHECK(!r.got_close_frame);
    CHECK(r.eof || r.ssl_end != SSL_ERROR_ZERO_RETURN);
    CHECK(r.count >= 1 && r.count <= sizeof r.types);
    if (r.count >= 1 && r.count <= sizeof r.types)
        CHECK(r.types[r.count - 1] != 21);
    CHECK(r.ssl_end != SSL_ERROR_ZERO_RETURN);
    CHECK_EQ_INT(r.srv.closes, 1);
    CHECK(!r.srv.clean);
}

/* ---- many clients ------------------------------------------------------------------------ */

#define MANY 50
#define ROUNDS 10

typedef struct many_client {
    int index, opens, echoes, closes, errors, mismatches;
    bool clean;
    uint16_t close_code;
    dx_conn *conn;
} many_client;

static size_t many_len(int index, int round) {
    return (size_t)((index * 977 + round * 3001) % 20000);
}

static void many_fill(uint8_t *buf, int index, int round, size_t n) {
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)('A' + (size_t)(index + round * 7 + (int)(i % 23)) % 58);
}

static void many_send(many_client *m) {
    static uint8_t buf[20000];
    size_t n = many_len(m->index, m->echoes);
    many_fill(buf, m->index, m->echoes, n);
    CHECK_RC(dx_conn_send_binary(m->conn, (dx_span){buf, n}), 0);
}

static void m_open(dx_conn *c, void *user) {
    many_client *m = user;
    m->opens++;
    m->conn = c;
    many_send(m);
}

static void m_message(dx_conn *c, dx_opcode op, dx_span data, void *user) {
    many_client *m = user;
    static uint8_t want[20000];
    size_t n = many_len(m->index, m->echoes);
    many_fill(want, m->index, m->echoes, n);
    if (op != DX_OP_BINARY || data.len != n || (n && memcmp(data.ptr, want, n) != 0))
        m->mismatches++;
    m->echoes++;
    if (m->echoes < ROUNDS)
        many_send(m);
    else
        dx_conn_close(c, DX_CLOSE_NORMAL, (dx_span){0});
}

static void m_error(dx_conn *c, int err, void *user) {
    (void)c;
    (void)err;
    ((many_client *)user)->errors++;
}

static void m_close(dx_conn *c, const dx_close_info *info, void *user) {
    (void)c;
    many_client *m = user;
    m->closes++;
    m->clean = info->clean;
    m->close_code = info->code;
    m->conn = NULL;
}

TEST(wss_50_concurrent_clients_each_echo_10_messages) {
    REQUIRE(certs_ready());
    dx_loop *l = nu_loop();
    static const dx_deflate_config pmd = {0};
    tls_server ts;
    tls_server_init(&ts);
    nu_rec srv = {.echo = true};
    dx_server_options so = {
        .callbacks = nu_callbacks, .user = &srv, .tls = &ts.cfg, .deflate = &pmd};
    dx_server *s = NULL;
    CHECK_RC(nu_server(&s, l, &so), 0);
    REQUIRE(s != NULL);
    char url[64];
    snprintf(url, sizeof url, "wss://127.0.0.1:%u/", (unsigned)dx_server_port(s));
    dx_tls_client_config ct = client_tls();
    static const dx_conn_callbacks mcb = {
        .on_open = m_open, .on_message = m_message, .on_error = m_error, .on_close = m_close};
    static many_client ms[MANY];
    memset(ms, 0, sizeof ms);
    for (int i = 0; i < MANY; i++) {
        ms[i].index = i;
        /* half of them compress */
        dx_client_options co = {.tls = &ct, .deflate = i % 2 ? &pmd : NULL};
        dx_conn *c = NULL;
        CHECK_RC(dx_client_connect(&c, l, url, &co, &mcb, &ms[i]), 0);
    }
    size_t peak = 0;
    uint64_t t0 = nu_now_ms(), end = t0 + 30000;
    for (;;) {
        int done = 0;
        for (int i = 0; i < MANY; i++)
            done += ms[i].closes;
        if (done == MANY || nu_now_ms() >= end)
            break;
        size_t n = dx_server_connections(s);
        peak = n > peak ? n : peak;
        dx_loop_run_once(l, 5);
    }
    int opens = 0, echoes = 0, clean = 0, errors = 0, mismatches = 0;
    for (int i = 0; i < MANY; i++) {
        opens += ms[i].opens;
        echoes += ms[i].echoes;
        clean += ms[i].clean && ms[i].closes == 1 && ms[i].close_code == 1000;
        errors += ms[i].errors;
        mismatches += ms[i].mismatches;
    }
    printf("    %d opened, %d echoes, %d clean closes, peak %zu connections, %" PRIu64 " ms\n",
           opens, echoes, clean, peak, nu_now_ms() - t0);
    CHECK_EQ_INT(opens, MANY);
    CHECK_EQ_INT(echoes, MANY * ROUNDS);
    CHECK_EQ_INT(mismatches, 0);
    CHECK_EQ_INT(clean, MANY);
    CHECK_EQ_INT(errors, 0);
    CHECK(peak > 1); /* they overlapped */
    CHECK_RUN_UNTIL(l, srv.closes == MANY, 3000);
    CHECK_EQ_INT(srv.messages, MANY * ROUNDS);
    CHECK_EQ_INT(srv.errors, 0);
    dx_server_destroy(s);
    nu_loop_finish(l);
}

/* ---- graceful shutdown over wss ---------------------------------------------------------- */

static void on_shutdown_done(dx_server *s, void *user) {
    (void)s;
    (*(int *)user)++;
}

TEST(wss_server_shutdown_closes_every_client_with_1001_cleanly) {
    REQUIRE(certs_ready());
    dx_loop *l = nu_loop();
    tls_server ts;
    tls_server_init(&ts);
    nu_rec srv = {.echo = true};
    dx_server_options so = {.callbacks = nu_callbacks, .user = &srv, .tls = &ts.cfg};
    dx_server *s = NULL;
    CHECK_RC(nu_server(&s, l, &so), 0);
    REQUIRE(s != NULL);
    char url[64];
    snprintf(url, sizeof url, "wss://localhost:%u/", (unsigned)dx_server_port(s));
    dx_tls_client_config ct = client_tls();
    dx_client_options co = {.tls = &ct};
    peer cli[3] = {{0}};
    for (int i = 0; i < 3; i++) {
        dx_conn *c = NULL;
        CHECK_RC(dx_client_connect(&c, l, url, &co, &peer_callbacks, &cli[i]), 0);
    }
    CHECK_RUN_UNTIL(l, cli[0].opens + cli[1].opens + cli[2].opens == 3, 5000);
    int done = 0;
    CHECK_RC(dx_server_shutdown(s, 3000, on_shutdown_done, &done), 0);
    CHECK_RUN_UNTIL(l, done == 1 && cli[0].closes + cli[1].closes + cli[2].closes == 3, 5000);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(cli[i].close_code, 1001);
        CHECK(cli[i].clean && cli[i].remote);
        CHECK_EQ_INT(cli[i].errors, 0);
        free(cli[i].last);
    }
    CHECK_EQ_INT(srv.closes, 3);
    dx_server_destroy(s);
    nu_loop_finish(l);
}
