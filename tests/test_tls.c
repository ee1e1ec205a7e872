/*
 * The TLS engine (src/tls/tls.c) in memory: a client engine and a server engine
 * (or a raw OpenSSL peer where ours cannot be configured that badly) joined by a
 * pump that moves each side's output into the other's input. No sockets.
 *
 * Certificates are made at test time by tests/certs/make-certs.sh (openssl CLI)
 * into a temporary directory, removed at exit.
 */
#include "test.h"
#include "tls/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <unistd.h>

#include "test_certs.h"

static dx_tls_ctx *server_ctx_for(const char *base, dx_tls_client_auth auth) {
    char cert[64], key[64];
    snprintf(cert, sizeof cert, "%s.pem", base);
    snprintf(key, sizeof key, "%s.key", base);
    char certp[512], keyp[512], cap[512];
    snprintf(certp, sizeof certp, "%s", cp(cert));
    snprintf(keyp, sizeof keyp, "%s", cp(key));
    snprintf(cap, sizeof cap, "%s", cp("ca.pem"));
    dx_tls_cert c = {.cert_file = certp, .key_file = keyp};
    dx_tls_server_config cfg = {.certs = &c, .cert_count = 1, .client_auth = auth};
    if (auth != DX_TLS_CLIENT_AUTH_NONE)
        cfg.client_ca_file = cap;
    dx_tls_ctx *ctx = NULL;
    CHECK_RC(dx_tls_ctx_create_server(&ctx, &cfg), 0);
    return ctx;
}

static dx_tls_ctx *client_ctx_with(const char *ca, const char *cert, const char *key,
                                   bool insecure) {
    char cap[512] = "", certp[512] = "", keyp[512] = "";
    if (ca)
        snprintf(cap, sizeof cap, "%s", cp(ca));
    if (cert)
        snprintf(certp, sizeof certp, "%s", cp(cert));
    if (key)
        snprintf(keyp, sizeof keyp, "%s", cp(key));
    dx_tls_client_config cfg = {
        .ca_file = ca ? cap : NULL,
        .cert_file = cert ? certp : NULL,
        .key_file = key ? keyp : NULL,
        .insecure = insecure,
    };
    dx_tls_ctx *ctx = NULL;
    CHECK_RC(dx_tls_ctx_create_client(&ctx, &cfg), 0);
    return ctx;
}

/* Move everything @from has to send into @to. Returns the bytes moved. */
static size_t xfer(dx_tls_conn *from, dx_tls_conn *to) {
    size_t moved = 0;
    dx_span o = dx__tls_output(from);
    while (o.len) {
        size_t used = 0;
        int rc = dx__tls_feed(to, o, &used);
        dx__tls_consume(from, rc == 0 ? used : o.len); /* a failed peer drops the rest */
        moved += o.len;
        o = dx__tls_output(from);
    }
    return moved;
}

/* Drive both handshakes until neither can progress. */
static void handshake(dx_tls_conn *c, dx_tls_conn *s, int *crc, int *src) {
    for (int i = 0; i < 64; i++) {
        *crc = dx__tls_handshake(c);
        size_t m = xfer(c, s);
        *src = dx__tls_handshake(s);
        m += xfer(s, c);
        if (m == 0 && (*crc != DX_EINCOMPLETE || *src != DX_EINCOMPLETE))
            break;
        if (m == 0)
            break;
    }
    /* one last look at what arrived */
    *crc = dx__tls_handshake(c);
    *src = dx__tls_handshake(s);
}

/* Read everything @to can decrypt now into @buf (up to @cap). Returns the last rc. */
static int drain(dx_tls_conn *to, uint8_t *buf, size_t cap, size_t *total) {
    int rc;
    size_t n;
    *total = 0;
    do {
        rc = dx__tls_read(to, buf + *total, cap - *total, &n);
        *total += n;
    } while (rc == 0 && *total < cap);
    return rc;
}

typedef struct pair {
    dx_tls_ctx *cctx, *sctx;
    dx_tls_conn *c, *s;
    int crc, src;
} pair;

/* Client of @cctx for @host against a server of @sctx; takes both contexts. */
static void pair_run(pair *p, dx_tls_ctx *cctx, dx_tls_ctx *sctx, const char *host) {
    memset(p, 0, sizeof(*p));
    p->cctx = cctx;
    p->sctx = sctx;
    CHECK_RC(dx__tls_conn_create(&p->c, cctx, host, 443), 0);
    CHECK_RC(dx__tls_conn_create(&p->s, sctx, NULL, 0), 0);
    if (p->c && p->s)
        handshake(p->c, p->s, &p->crc, &p->src);
}

static void pair_free(pair *p) {
    dx__tls_conn_destroy(p->c);
    dx__tls_conn_destroy(p->s);
    dx_tls_ctx_release(p->cctx);
    dx_tls_ctx_release(p->sctx);
}

/* A client verifying with @ca against @server_base fails with @want; the server
 * gets the alert @want_alert (RFC 8446 §6.2) that OpenSSL sends for it. */
static void expect_client_failure(const char *server_base, const char *ca, const char *host,
                                  int want, int want_alert) {
    pair p;
    pair_run(&p, client_ctx_with(ca, NULL, NULL, false),
             server_ctx_for(server_base, DX_TLS_CLIENT_AUTH_NONE), host);
    CHECK_RC(p.crc, want);
    /* The server learns why from the client's alert. */
    CHECK_RC(p.src, DX_ETLS_ALERT);
    int code = 0;
    const char *text = dx__tls_alert(p.s, &code);
    CHECK(text != NULL);
    CHECK_EQ_INT(code, want_alert);
    if (dx_test_failed)
        printf("    server saw alert %d (%s)\n", code, text ? text : "-");
    pair_free(&p);
}

/* ---- success ------------------------------------------------------------- */

TEST(tls_handshake_alpn_http11_and_data_both_ways_including_1mib) {
    REQUIRE(certs_ready());
    pair p;
    pair_run(&p, client_ctx_with("ca.pem", NULL, NULL, false),
             server_ctx_for("server", DX_TLS_CLIENT_AUTH_NONE), "localhost");
    CHECK_RC(p.crc, 0);
    CHECK_RC(p.src, 0);
    CHECK(dx__tls_is_established(p.c) && dx__tls_is_established(p.s));
    CHECK_SPAN_STR(dx__tls_alpn(p.c), "http/1.1");
    CHECK_SPAN_STR(dx__tls_alpn(p.s), "http/1.1");
    CHECK(strcmp(dx__tls_version(p.c), "TLSv1.3") == 0);
    const char *sni = dx__tls_server_name(p.s);
    CHECK(sni && strcmp(sni, "localhost") == 0);

    /* small, both ways */
    uint8_t buf[64];
    size_t used = 0, n = 0;
    CHECK_RC(dx__tls_write(p.c, dx_span_cstr("GET / HTTP/1.1\r\n\r\n"), &used), 0);
    CHECK_EQ_INT(used, 18);
    xfer(p.c, p.s);
    CHECK_RC(drain(p.s, buf, sizeof buf, &n), DX_EINCOMPLETE);
    CHECK_SPAN_STR(((dx_span){buf, n}), "GET / HTTP/1.1\r\n\r\n");
    CHECK_RC(dx__tls_write(p.s, dx_span_cstr("HTTP/1.1 101 ok\r\n\r\n"), &used), 0);
    xfer(p.s, p.c);
    CHECK_RC(drain(p.c, buf, sizeof buf, &n), DX_EINCOMPLETE);
    CHECK_SPAN_STR(((dx_span){buf, n}), "HTTP/1.1 101 ok\r\n\r\n");

    /* 1 MiB each way, checked byte for byte */
    size_t big = 1u << 20;
    uint8_t *out = malloc(big), *in = malloc(big + 1);
    REQUIRE(out && in);
    for (size_t i = 0; i < big; i++)
        out[i] = (uint8_t)(dx_test_rand() >> 24);
    dx_tls_conn *dirs[2][2] = {{p.c, p.s}, {p.s, p.c}};
    for (int d = 0; d < 2; d++) {
        CHECK_RC(dx__tls_write(dirs[d][0], (dx_span){out, big}, &used), 0);
        CHECK_EQ_INT(used, big);
        xfer(dirs[d][0], dirs[d][1]);
        memset(in, 0, big);
        CHECK_RC(drain(dirs[d][1], in, big + 1, &n), DX_EINCOMPLETE);
        CHECK_EQ_INT(n, big);
        CHECK(memcmp(in, out, big) == 0);
    }
    free(out);
    free(in);
    pair_free(&p);
}

/* Move @from's output into @to in pieces chosen by @split. */
static size_t xfer_split(dx_tls_conn *from, dx_tls_conn *to, dx_split split) {
    size_t moved = 0;
    dx_span o = dx__tls_output(from);
    while (o.len) {
        size_t piece = dx_split_next(split, o.len), used = 0;
        CHECK_RC(dx__tls_feed(to, (dx_span){o.ptr, piece}, &used), 0);
        dx__tls_consume(from, piece);
        moved += piece;
        /* the receiver works on what it has so far */
        if (!dx__tls_is_established(to)) {
            int rc = dx__tls_handshake(to);
            CHECK(rc == 0 || rc == DX_EINCOMPLETE);
        }
        o = dx__tls_output(from);
    }
    return moved;
}

TEST(tls_handshake_and_data_under_every_input_split) {
    REQUIRE(certs_ready());
    for (size_t k = 0; k < 3; k++) {
        dx_split split = dx_all_splits[k];
        pair p;
        pair_run(&p, client_ctx_with("ca.pem", NULL, NULL, false),
                 server_ctx_for("server", DX_TLS_CLIENT_AUTH_NONE), "localhost");
        dx__tls_conn_destroy(p.c); /* start over with split delivery */
        dx__tls_conn_destroy(p.s);
        p.c = p.s = NULL;
        REQUIRE(dx__tls_conn_create(&p.c, p.cctx, "localhost", 443) == 0);
        REQUIRE(dx__tls_conn_create(&p.s, p.sctx, NULL, 0) == 0);
        int crc = DX_EINCOMPLETE, src = DX_EINCOMPLETE;
        for (int i = 0; i < 64 && (crc || src); i++) {
            crc = dx__tls_handshake(p.c);
            xfer_split(p.c, p.s, split);
            src = dx__tls_handshake(p.s);
            xfer_split(p.s, p.c, split);
            crc = dx__tls_handshake(p.c);
        }
        CHECK_RC(crc, 0);
        CHECK_RC(src, 0);
        uint8_t msg[3000], got[3000];
        for (size_t i = 0; i < sizeof msg; i++)
            msg[i] = (uint8_t)i;
        size_t used, n, total = 0;
        CHECK_RC(dx__tls_write(p.c, (dx_span){msg, sizeof msg}, &used), 0);
        dx_span o = dx__tls_output(p.c);
        while (o.len) {
            size_t piece = dx_split_next(split, o.len);
            CHECK_RC(dx__tls_feed(p.s, (dx_span){o.ptr, piece}, &used), 0);
            dx__tls_consume(p.c, piece);
            int rc;
            do {
                rc = dx__tls_read(p.s, got + total, sizeof got - total, &n);
                total += n;
            } while (rc == 0 && total < sizeof got);
            CHECK(rc == 0 || rc == DX_EINCOMPLETE);
            o = dx__tls_output(p.c);
        }
        CHECK_EQ_INT(total, sizeof msg);
        CHECK(memcmp(got, msg, sizeof msg) == 0);
        if (dx_test_failed)
            printf("    split %s\n", dx_split_name(split));
        pair_free(&p);
    }
}

TEST(tls_client_verifies_ip_literal_without_sni) {
    REQUIRE(certs_ready());
    pair p;
    pair_run(&p, client_ctx_with("ca.pem", NULL, NULL, false),
             server_ctx_for("server", DX_TLS_CLIENT_AUTH_NONE), "127.0.0.1");
    CHECK_RC(p.crc, 0);
    CHECK_RC(p.src, 0);
    CHECK(dx__tls_server_name(p.s) == NULL); /* no SNI for an IP literal */
    pair_free(&p);
}

TEST(tls_insecure_client_accepts_self_signed) {
    REQUIRE(certs_ready());
    pair p;
    pair_run(&p, client_ctx_with(NULL, NULL, NULL, true),
             server_ctx_for("selfsigned", DX_TLS_CLIENT_AUTH_NONE), "localhost");
    CHECK_RC(p.crc, 0);
    CHECK_RC(p.src, 0);
    pair_free(&p);
}

/* ---- verification failures, each with its own code ------------------------ */

TEST(tls_expired_certificate) {
    REQUIRE(certs_ready());
    expect_client_failure("expired", "ca.pem", "localhost", DX_ETLS_CERT_EXPIRED, 45);
}

TEST(tls_not_yet_valid_certificate) {
    REQUIRE(certs_ready());
    expect_client_failure("future", "ca.pem", "localhost", DX_ETLS_CERT_NOT_YET_VALID, 42);
}

TEST(tls_self_signed_certificate) {
    REQUIRE(certs_ready());
    expect_client_failure("selfsigned", "ca.pem", "localhost", DX_ETLS_SELF_SIGNED, 48);
}

TEST(tls_wrong_host_name) {
    REQUIRE(certs_ready());
    expect_client_failure("wrongname", "ca.pem", "localhost", DX_ETLS_HOSTNAME, 42);
    expect_client_failure("server", "ca.pem", "example.com", DX_ETLS_HOSTNAME, 42);
}

TEST(tls_certificate_from_another_ca) {
    REQUIRE(certs_ready());
    expect_client_failure("otherca", "ca.pem", "localhost", DX_ETLS_UNKNOWN_CA, 48);
}

TEST(tls_ip_address_mismatch) {
    REQUIRE(certs_ready());
    expect_client_failure("server", "ca.pem", "127.0.0.2", DX_ETLS_IP, 42);
    expect_client_failure("server", "ca.pem", "[::1]", DX_ETLS_IP, 42);
}

TEST(tls_system_store_does_not_trust_the_test_ca) {
    REQUIRE(certs_ready());
    expect_client_failure("server", NULL, "localhost", DX_ETLS_UNKNOWN_CA, 48);
}

/* ---- mutual TLS ------------------------------------------------------------ */

TEST(tls_client_certificate_required_and_missing_is_refused) {
    REQUIRE(certs_ready());
    pair p;
    pair_run(&p, client_ctx_with("ca.pem", NULL, NULL, false),
             server_ctx_for("server", DX_TLS_CLIENT_AUTH_REQUIRED), "localhost");
    CHECK_RC(p.src, DX_ETLS_CERT_REQUIRED);
    /* TLS 1.3: the client's handshake ends before the server decides; it learns
     * of the refusal from the alert on its next read. */
    uint8_t buf[16];
    size_t n;
    int rc = p.crc == 0 ? dx__tls_read(p.c, buf, sizeof buf, &n) : p.crc;
    CHECK_RC(rc, DX_ETLS_ALERT);
    int code = 0;
    const char *text = dx__tls_alert(p.c, &code);
    CHECK(text && strcmp(text, "certificate required") == 0);
    CHECK_EQ_INT(code, 116);
    pair_free(&p);
}

TEST(tls_client_certificate_required_and_given_is_accepted) {
    REQUIRE(certs_ready());
    pair p;
    pair_run(&p, client_ctx_with("ca.pem", "client.pem", "client.key", false),
             server_ctx_for("server", DX_TLS_CLIENT_AUTH_REQUIRED), "localhost");
    CHECK_RC(p.crc, 0);
    CHECK_RC(p.src, 0);
    size_t used, n;
    uint8_t buf[8];
    CHECK_RC(dx__tls_write(p.c, dx_span_cstr("hi"), &used), 0);
    xfer(p.c, p.s);
    CHECK_RC(drain(p.s, buf, sizeof buf, &n), DX_EINCOMPLETE);
    CHECK_EQ_INT(n, 2);
    pair_free(&p);
}

TEST(tls_client_certificate_optional_and_missing_is_accepted) {
    REQUIRE(certs_ready());
    pair p;
    pair_run(&p, client_ctx_with("ca.pem", NULL, NULL, false),
             server_ctx_for("server", DX_TLS_CLIENT_AUTH_OPTIONAL), "localhost");
    CHECK_RC(p.crc, 0);
    CHECK_RC(p.src, 0);
    pair_free(&p);
}

TEST(tls_client_certificate_from_another_ca_is_refused) {
    REQUIRE(certs_ready());
    pair p;
    pair_run(&p, client_ctx_with("ca.pem", "otherca.pem", "otherca.key", false),
             server_ctx_for("server", DX_TLS_CLIENT_AUTH_OPTIONAL), "localhost");
    CHECK_RC(p.src, DX_ETLS_UNKNOWN_CA);
    pair_free(&p);
}

/* ---- SNI ------------------------------------------------------------------- */

static dx_tls_ctx *two_cert_server(void) {
    char c1[512], k1[512], c2[512], k2[512];
    snprintf(c1, sizeof c1, "%s", cp("server.pem"));
    snprintf(k1, sizeof k1, "%s", cp("server.key"));
    snprintf(c2, sizeof c2, "%s", cp("other.pem"));
    snprintf(k2, sizeof k2, "%s", cp("other.key"));
    dx_tls_cert certs[2] = {{.cert_file = c1, .key_file = k1}, {.cert_file = c2, .key_file = k2}};
    dx_tls_server_config cfg = {.certs = certs, .cert_count = 2};
    dx_tls_ctx *ctx = NULL;
    CHECK_RC(dx_tls_ctx_create_server(&ctx, &cfg), 0);
    return ctx;
}

TEST(tls_sni_picks_the_certificate_for_the_name) {
    REQUIRE(certs_ready());
    /* The client checks the name, so a wrong pick fails with DX_ETLS_HOSTNAME. */
    const char *hosts[] = {"other.test", "localhost", "OTHER.test"};
    for (size_t i = 0; i < 3; i++) {
        pair p;
        pair_run(&p, client_ctx_with("ca.pem", NULL, NULL, false), two_cert_server(), hosts[i]);
        CHECK_RC(p.crc, 0);
        CHECK_RC(p.src, 0);
        pair_free(&p);
    }
    /* An unknown name gets the default (first) certificate. */
    pair p;
    pair_run(&p, client_ctx_with("ca.pem", NULL, NULL, false), two_cert_server(), "nope.test");
    CHECK_RC(p.crc, DX_ETLS_HOSTNAME);
    pair_free(&p);
}

TEST(tls_sni_explicit_server_name) {
    REQUIRE(certs_ready());
    char c1[512], k1[512], c2[512], k2[512];
    snprintf(c1, sizeof c1, "%s", cp("server.pem"));
    snprintf(k1, sizeof k1, "%s", cp("server.key"));
    snprintf(c2, sizeof c2, "%s", cp("wrongname.pem"));
    snprintf(k2, sizeof k2, "%s", cp("wrongname.key"));
    /* The second cert answers "alias.test" although it names wrong.example: an
     * insecure client reaches it (the server reports the name it got). */
    dx_tls_cert certs[2] = {{.cert_file = c1, .key_file = k1},
                            {.cert_file = c2, .key_file = k2, .server_name = "alias.test"}};
    dx_tls_server_config cfg = {.certs = certs, .cert_count = 2};
    dx_tls_ctx *sctx = NULL;
    REQUIRE(dx_tls_ctx_create_server(&sctx, &cfg) == 0);
    pair p;
    pair_run(&p, client_ctx_with("ca.pem", NULL, NULL, false), sctx, "alias.test");
    /* verification of the name fails, proving the wrong.example cert was chosen */
    CHECK_RC(p.crc, DX_ETLS_HOSTNAME);
    pair_free(&p);
    /* and wrong.example is not matched from the cert when a name is explicit */
    REQUIRE(dx_tls_ctx_create_server(&sctx, &cfg) == 0);
    pair_run(&p, client_ctx_with("ca.pem", NULL, NULL, false), sctx, "wrong.example");
    CHECK_RC(p.crc, DX_ETLS_HOSTNAME); /* got the default localhost cert */
    pair_free(&p);
}

/* ---- resumption ------------------------------------------------------------ */

TEST(tls_session_resumption_on_second_connection) {
    REQUIRE(certs_ready());
    dx_tls_ctx *cctx = client_ctx_with("ca.pem", NULL, NULL, false);
    dx_tls_ctx *sctx = server_ctx_for("server", DX_TLS_CLIENT_AUTH_NONE);
    REQUIRE(cctx && sctx);
    /* rounds 0-2 on port 443, 3 on 8443 (another service on the same host: no
     * session of 443's is offered to it), 4 on 443 again (its session is still
     * there), 5 on 8443 again (which now has its own) */
    static const uint16_t ports[] = {443, 443, 443, 8443, 443, 8443};
    static const bool reused[] = {false, true, true, false, true, true};
    for (int round = 0; round < 6; round++) {
        dx_tls_conn *c = NULL, *s = NULL;
        int crc, src;
        CHECK_RC(dx__tls_conn_create(&c, cctx, "localhost", ports[round]), 0);
        CHECK_RC(dx__tls_conn_create(&s, sctx, NULL, 0), 0);
        handshake(c, s, &crc, &src);
        CHECK_RC(crc, 0);
        CHECK_RC(src, 0);
        /* TLS 1.3 tickets come after the handshake: the client reads them. */
        uint8_t buf[16];
        size_t n;
        CHECK_RC(drain(c, buf, sizeof buf, &n), DX_EINCOMPLETE);
        CHECK_EQ_INT(dx__tls_session_reused(c), reused[round]);
        CHECK_EQ_INT(dx__tls_session_reused(s), reused[round]);
        dx__tls_conn_destroy(c);
        dx__tls_conn_destroy(s);
    }
    /* another host does not get this host's session */
    dx_tls_conn *c = NULL, *s = NULL;
    int crc, src;
    CHECK_RC(dx__tls_conn_create(&c, cctx, "127.0.0.1", 443), 0);
    CHECK_RC(dx__tls_conn_create(&s, sctx, NULL, 0), 0);
    handshake(c, s, &crc, &src);
    CHECK_RC(crc, 0);
    CHECK(!dx__tls_session_reused(c));
    dx__tls_conn_destroy(c);
    dx__tls_conn_destroy(s);
    dx_tls_ctx_release(cctx);
    dx_tls_ctx_release(sctx);
}

/* ---- raw OpenSSL peers our engine cannot be configured to be ------------------ */

typedef struct raw {
    SSL_CTX *ctx;
    SSL *ssl;
    BIO *r, *w;
} raw;

static void raw_client(raw *r, int max_version, const char *ciphers) {
    r->ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_security_level(r->ctx, 0); /* allow TLS 1.1 at all */
    SSL_CTX_set_min_proto_version(r->ctx, 0);
    SSL_CTX_set_max_proto_version(r->ctx, max_version);
    if (ciphers)
        SSL_CTX_set_cipher_list(r->ctx, ciphers);
    r->ssl = SSL_new(r->ctx);
    r->r = BIO_new(BIO_s_mem());
    r->w = BIO_new(BIO_s_mem());
    SSL_set_bio(r->ssl, r->r, r->w);
    SSL_set_connect_state(r->ssl);
    SSL_set_tlsext_host_name(r->ssl, "localhost");
}

static void raw_free(raw *r) {
    /* as dx__tls_conn_destroy does: keep the session resumable */
    if (SSL_is_init_finished(r->ssl))
        SSL_set_shutdown(r->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(r->ssl);
    SSL_CTX_free(r->ctx);
    ERR_clear_error();
}

/* Run the raw client against a server engine; returns the server's result. */
static int raw_vs_server(raw *r, dx_tls_conn *s) {
    int src = DX_EINCOMPLETE;
    for (int i = 0; i < 32; i++) {
        SSL_do_handshake(r->ssl);
        char *p;
        long len = BIO_get_mem_data(r->w, &p);
        size_t moved = 0;
        if (len > 0) {
            size_t used;
            dx__tls_feed(s, (dx_span){(const uint8_t *)p, (size_t)len}, &used);
            moved += (size_t)len;
            (void)BIO_reset(r->w);
        }
        src = dx__tls_handshake(s);
        dx_span o = dx__tls_output(s);
        if (o.len) {
            BIO_write(r->r, o.ptr, (int)o.len);
            dx__tls_consume(s, o.len);
            moved += o.len;
        }
        if (!moved)
            break;
    }
    return src;
}

TEST(tls_tls11_only_peer_is_refused_with_version_error) {
    REQUIRE(certs_ready());
    dx_tls_ctx *sctx = server_ctx_for("server", DX_TLS_CLIENT_AUTH_NONE);
    dx_tls_conn *s = NULL;
    REQUIRE(dx__tls_conn_create(&s, sctx, NULL, 0) == 0);
    raw r;
    raw_client(&r, TLS1_1_VERSION, "DEFAULT:@SECLEVEL=0");
    CHECK_RC(raw_vs_server(&r, s), DX_ETLS_VERSION);
    raw_free(&r);
    dx__tls_conn_destroy(s);
    dx_tls_ctx_release(sctx);
}

TEST(tls_no_shared_cipher) {
    REQUIRE(certs_ready());
    dx_tls_ctx *sctx = server_ctx_for("server", DX_TLS_CLIENT_AUTH_NONE);
    dx_tls_conn *s = NULL;
    REQUIRE(dx__tls_conn_create(&s, sctx, NULL, 0) == 0);
    raw r;
    /* TLS 1.2 with RSA authentication only; the server's key is ECDSA. */
    raw_client(&r, TLS1_2_VERSION, "ECDHE-RSA-AES128-GCM-SHA256");
    CHECK_RC(raw_vs_server(&r, s), DX_ETLS_CIPHER);
    raw_free(&r);
    dx__tls_conn_destroy(s);
    dx_tls_ctx_release(sctx);
}

TEST(tls12_peer_handshakes_and_resumes_from_the_session_cache) {
    REQUIRE(certs_ready());
    dx_tls_ctx *sctx = server_ctx_for("server", DX_TLS_CLIENT_AUTH_NONE);
    SSL_SESSION *sess = NULL;
    for (int round = 0; round < 2; round++) {
        dx_tls_conn *s = NULL;
        REQUIRE(dx__tls_conn_create(&s, sctx, NULL, 0) == 0);
        raw r;
        raw_client(&r, TLS1_2_VERSION, NULL);
        SSL_set_options(r.ssl, SSL_OP_NO_TICKET); /* use the server's session cache */
        if (sess)
            SSL_set_session(r.ssl, sess);
        CHECK_RC(raw_vs_server(&r, s), 0);
        CHECK(SSL_is_init_finished(r.ssl));
        CHECK(strcmp(dx__tls_version(s), "TLSv1.2") == 0);
        CHECK_SPAN_STR(dx__tls_alpn(s), ""); /* the raw client offered no ALPN */
        CHECK_EQ_INT(dx__tls_session_reused(s), round == 1);
        if (!sess)
            sess = SSL_get1_session(r.ssl);
        raw_free(&r);
        dx__tls_conn_destroy(s);
    }
    SSL_SESSION_free(sess);
    dx_tls_ctx_release(sctx);
}

/* ---- plain HTTP, garbage -------------------------------------------------- */

TEST(tls_plain_http_to_a_tls_server_fails_at_once) {
    REQUIRE(certs_ready());
    dx_tls_ctx *sctx = server_ctx_for("server", DX_TLS_CLIENT_AUTH_NONE);
    const char *reqs[] = {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "G", "POST /x HTTP/1.1\r\n"};
    for (size_t i = 0; i < 3; i++) {
        dx_tls_conn *s = NULL;
        REQUIRE(dx__tls_conn_create(&s, sctx, NULL, 0) == 0);
        size_t used = 99;
        CHECK_RC(dx__tls_feed(s, dx_span_cstr(reqs[i]), &used), DX_ETLS_PLAIN_HTTP);
        CHECK_EQ_INT(used, 0);
        CHECK_RC(dx__tls_handshake(s), DX_ETLS_PLAIN_HTTP); /* sticky */
        dx__tls_conn_destroy(s);
    }
    dx_tls_ctx_release(sctx);
}

TEST(tls_plain_http_answer_to_a_tls_client) {
    REQUIRE(certs_ready());
    dx_tls_ctx *cctx = client_ctx_with("ca.pem", NULL, NULL, false);
    dx_tls_conn *c = NULL;
    REQUIRE(dx__tls_conn_create(&c, cctx, "localhost", 443) == 0);
    CHECK_RC(dx__tls_handshake(c), DX_EINCOMPLETE);
    CHECK(dx__tls_output(c).len > 0); /* the ClientHello */
    size_t used;
    CHECK_RC(dx__tls_feed(c, dx_span_cstr("HTTP/1.1 400 Bad Request\r\n\r\n"), &used),
             DX_ETLS_PLAIN_HTTP);
    dx__tls_conn_destroy(c);
    dx_tls_ctx_release(cctx);
}

TEST(tls_garbage_is_a_handshake_error) {
    REQUIRE(certs_ready());
    dx_tls_ctx *sctx = server_ctx_for("server", DX_TLS_CLIENT_AUTH_NONE);
    dx_tls_conn *s = NULL;
    REQUIRE(dx__tls_conn_create(&s, sctx, NULL, 0) == 0);
    static const uint8_t junk[] = {0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5};
    size_t used;
    CHECK_RC(dx__tls_feed(s, (dx_span){junk, sizeof junk}, &used), 0);
    CHECK_RC(dx__tls_handshake(s), DX_ETLS_HANDSHAKE);
    CHECK(dx__tls_output(s).len > 0); /* an alert for the peer */
    dx__tls_conn_destroy(s);
    dx_tls_ctx_release(sctx);
}

/* ---- close_notify, pending ------------------------------------------------- */

TEST(tls_close_notify_both_ways) {
    REQUIRE(certs_ready());
    for (int first = 0; first < 2; first++) {
        pair p;
        pair_run(&p, client_ctx_with("ca.pem", NULL, NULL, false),
                 server_ctx_for("server", DX_TLS_CLIENT_AUTH_NONE), "localhost");
        REQUIRE(p.crc == 0 && p.src == 0);
        dx_tls_conn *a = first ? p.s : p.c, *b = first ? p.c : p.s;
        size_t used, n;
        uint8_t buf[32];
        /* data sent before the close_notify still arrives */
        CHECK_RC(dx__tls_write(a, dx_span_cstr("last words"), &used), 0);
        CHECK_RC(dx__tls_shutdown(a), 0);
        CHECK_RC(dx__tls_shutdown(a), 0); /* once */
        CHECK_RC(dx__tls_write(a, dx_span_cstr("more"), &used), DX_ESTATE);
        xfer(a, b);
        CHECK_RC(dx__tls_read(b, buf, sizeof buf, &n), 0);
        CHECK_SPAN_STR(((dx_span){buf, n}), "last words");
        CHECK(!dx__tls_peer_closed(b));
        CHECK_RC(dx__tls_read(b, buf, sizeof buf, &n), DX_ECLOSED);
        CHECK(dx__tls_peer_closed(b));
        CHECK(!dx__tls_pending(b));
        /* b answers with its own close_notify */
        CHECK_RC(dx__tls_shutdown(b), 0);
        xfer(b, a);
        CHECK_RC(dx__tls_read(a, buf, sizeof buf, &n), DX_ECLOSED);
        CHECK(dx__tls_peer_closed(a));
        pair_free(&p);
    }
}

TEST(tls_pending_after_a_large_record) {
    REQUIRE(certs_ready());
    pair p;
    pair_run(&p, client_ctx_with("ca.pem", NULL, NULL, false),
             server_ctx_for("server", DX_TLS_CLIENT_AUTH_NONE), "localhost");
    REQUIRE(p.crc == 0 && p.src == 0);
    uint8_t rec[16000], buf[16000];
    memset(rec, 'x', sizeof rec);
    size_t used, n;
    CHECK(!dx__tls_pending(p.s));
    CHECK_RC(dx__tls_write(p.c, (dx_span){rec, sizeof rec}, &used), 0);
    xfer(p.c, p.s);
    CHECK(dx__tls_pending(p.s)); /* ciphertext waiting in the input */
    CHECK_RC(dx__tls_read(p.s, buf, 100, &n), 0);
    CHECK_EQ_INT(n, 100);
    CHECK(dx__tls_pending(p.s)); /* the rest of the record is decrypted, unread */
    size_t total = n;
    while (dx__tls_pending(p.s)) {
        int rc = dx__tls_read(p.s, buf + total, sizeof buf - total, &n);
        if (rc == DX_EINCOMPLETE)
            break;
        CHECK_RC(rc, 0);
        total += n;
        if (rc)
            break;
    }
    CHECK_EQ_INT(total, sizeof rec);
    CHECK(!dx__tls_pending(p.s));
    CHECK_RC(dx__tls_read(p.s, buf, sizeof buf, &n), DX_EINCOMPLETE);
    CHECK(!dx__tls_pending(p.s));
    pair_free(&p);
}

/* ---- configuration errors --------------------------------------------------- */

TEST(tls_config_errors) {
    REQUIRE(certs_ready());
    dx_tls_ctx *ctx = (dx_tls_ctx *)(uintptr_t)1; /* untouched on failure */
    dx_tls_server_config none = {0};
    CHECK_RC(dx_tls_ctx_create_server(&ctx, &none), DX_EINVAL);
    char c1[512], k1[512], k2[512], missing[512];
    snprintf(c1, sizeof c1, "%s", cp("server.pem"));
    snprintf(k1, sizeof k1, "%s", cp("server.key"));
    snprintf(k2, sizeof k2, "%s", cp("other.key"));
    snprintf(missing, sizeof missing, "%s", cp("missing.pem"));
    dx_tls_cert bad_key = {.cert_file = c1, .key_file = k2};
    dx_tls_server_config cfg = {.certs = &bad_key, .cert_count = 1};
    CHECK_RC(dx_tls_ctx_create_server(&ctx, &cfg), DX_ETLS_CONFIG);
    dx_tls_cert no_file = {.cert_file = missing, .key_file = k1};
    cfg.certs = &no_file;
    CHECK_RC(dx_tls_ctx_create_server(&ctx, &cfg), DX_ETLS_CONFIG);
    dx_tls_cert ok = {.cert_file = c1, .key_file = k1};
    cfg.certs = &ok;
    cfg.client_auth = DX_TLS_CLIENT_AUTH_REQUIRED; /* without a CA file */
    CHECK_RC(dx_tls_ctx_create_server(&ctx, &cfg), DX_EINVAL);
    dx_tls_client_config cc = {.ca_file = missing};
    CHECK_RC(dx_tls_ctx_create_client(&ctx, &cc), DX_ETLS_CONFIG);
    dx_tls_client_config half = {.cert_file = c1};
    CHECK_RC(dx_tls_ctx_create_client(&ctx, &half), DX_EINVAL);
    CHECK(ctx == (dx_tls_ctx *)(uintptr_t)1);
    ERR_clear_error();

    /* host rules */
    dx_tls_ctx *cctx = client_ctx_with(NULL, NULL, NULL, false);
    dx_tls_ctx *sctx = server_ctx_for("server", DX_TLS_CLIENT_AUTH_NONE);
    dx_tls_conn *t = NULL;
    CHECK_RC(dx__tls_conn_create(&t, cctx, NULL, 0), DX_EINVAL);
    CHECK_RC(dx__tls_conn_create(&t, cctx, "[]", 443), DX_EINVAL);
    CHECK_RC(dx__tls_conn_create(&t, sctx, "localhost", 443), DX_EINVAL);
    CHECK(t == NULL);
    dx_tls_ctx_release(cctx);
    dx_tls_ctx_release(sctx);
    dx_tls_ctx_release(NULL);
    dx__tls_conn_destroy(NULL);
}

TEST(tls_context_outlives_its_creator_reference) {
    REQUIRE(certs_ready());
    dx_tls_ctx *cctx = client_ctx_with("ca.pem", NULL, NULL, false);
    dx_tls_ctx *sctx = server_ctx_for("server", DX_TLS_CLIENT_AUTH_NONE);
    dx_tls_conn *c = NULL, *s = NULL;
    REQUIRE(dx__tls_conn_create(&c, cctx, "localhost", 443) == 0);
    REQUIRE(dx__tls_conn_create(&s, sctx, NULL, 0) == 0);
    dx_tls_ctx_release(cctx); /* connections keep them alive */
    dx_tls_ctx_release(sctx);
    int crc, src;
    handshake(c, s, &crc, &src);
    CHECK_RC(crc, 0);
    CHECK_RC(src, 0);
    uint8_t buf[8];
    size_t n;
    CHECK_RC(drain(c, buf, sizeof buf, &n), DX_EINCOMPLETE); /* tickets into the cache */
    dx__tls_conn_destroy(c);
    dx__tls_conn_destroy(s);
}
