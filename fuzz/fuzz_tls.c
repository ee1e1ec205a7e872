/*
 * Fuzz target for the TLS engine (src/tls/tls.c, the private dx__tls_* API).
 *
 * First call: a P-256 key and a self-signed certificate (CN and SAN localhost,
 * SAN IP 127.0.0.1 and ::1, fixed dates 2020..2099) are made with the OpenSSL API
 * and written as PEM into a mkdtemp() directory (then, where /proc is mounted,
 * opened, unlinked at once and named /proc/self/fd/N, so that even a crash leaves
 * nothing in /tmp; else removed at exit); three server contexts are built
 * from them (no client auth, optional, required; each with a second entry for the
 * SNI name "alt.example" so the SNI callback switches contexts). Client contexts
 * are made fresh for every input (insecure, the certificate as CA file, the system
 * store, or the CA file plus the certificate as client certificate), so sessions
 * cached by one input never change the next (the system-store one is shared: it
 * never completes a handshake, so it never caches anything). Everything is freed
 * at exit, so LeakSanitizer sees no OpenSSL object left.
 *
 * Randomness is deterministic: a RAND_METHOD (OpenSSL's legacy hook, still obeyed
 * by RAND_bytes_ex / RAND_priv_bytes_ex in 3.x) gives every endpoint its own
 * stream, reset at the start of each input. An endpoint's bytes therefore depend
 * only on what it was fed, so a captured stream from a real handshake, replayed
 * into a fresh engine, completes that handshake: the seeds reach the
 * encrypted handshake and application data, not only the ClientHello parser.
 *
 * Input: byte 0 bits 0-1 the mode, bits 2-3 the client kind, bits 4-6 the host
 * (localhost, 127.0.0.1, [::1], example.com, 10.0.0.1, [::2], alt.example,
 * LocalHost), bit 7 (pair mode) a second, resumed connection; byte 1 bits 0-1 the
 * server kind; byte 2 the chunking (0 whole, 1 one byte at a time, else pieces of
 * 1..64); byte 3 seeds the choice of calls (0: feed, handshake, read everything);
 * the rest is data.
 *
 *   mode 0  a server engine fed the data as the client's bytes;
 *   mode 1  a client engine (after its ClientHello) fed the data as the server's;
 *           between chunks dx__tls_handshake / read / write / shutdown / consume /
 *           pending are called in the order a PRNG seeded with byte 3 picks;
 *   mode 2/3  a real client and server engine joined in memory; the data is a tape
 *           that decides, record by record, whether each record in flight passes,
 *           or is flipped, truncated, dropped, duplicated, reordered, split, or has
 *           bytes injected before it (raw bytes, an alert, a ChangeCipherSpec, a
 *           plaintext handshake record); after the handshake the tape picks calls
 *           (writes small and large, reads with any capacity, shutdowns, pumps).
 *           When the tape ends, both sides are pumped and read dry.
 *
 * Invariants (abort when broken):
 *   - every return code is one the header documents for that call, and the
 *     certificate checks' codes come only from an endpoint that verifies;
 *   - errors are sticky: after a DX_ETLS_* every call returns the same code, and
 *     dx__tls_pending is false;
 *   - dx__tls_read never writes past @cap, sets *n = 0 on every non-zero return,
 *     *n > 0 on 0; after DX_EINCOMPLETE dx__tls_pending is false; after DX_ECLOSED
 *     dx__tls_peer_closed is true and stays so;
 *   - dx__tls_write takes all or nothing, and DX_ESTATE exactly before the
 *     handshake or after our shutdown;
 *   - dx__tls_consume past the end empties the output;
 *   - pair mode: the output is always whole TLS records; whatever a side reads is
 *     a prefix of what the other wrote, mutated or not (record authentication);
 *     with no mutation at all the handshake ends as the configuration says (both
 *     succeed; or the exact verification error on the client and an alert on the
 *     server; or DX_ETLS_CERT_REQUIRED and the client reads alert 116), ALPN is
 *     http/1.1 on both sides, the SNI is the host name, every byte written arrives
 *     byte for byte, close_notify gives DX_ECLOSED, and the second connection
 *     resumes the session.
 *
 * Seeds (fuzz/corpus/tls, named by SHA-1) were written by this file: run the
 * target with DX_FUZZ_TLS_SEEDS=<dir> (see write_seeds). They hold the streams
 * of clean handshakes (TLS 1.3 from our engines, TLS 1.2 from a raw OpenSSL peer
 * capped at 1.2) for modes 0 and 1, ClientHellos offering only TLS 1.0 or only a
 * suite we lack, plain HTTP both ways, a truncated record, an SSLv2-style hello,
 * and tapes for the pair mode. They stay valid while the deterministic RNG, the
 * certificate and OpenSSL's handshake do not change (the session tickets inside
 * the server's streams hold the time they were written; clients never look).
 * DX_FUZZ_TLS_VERBOSE=1 prints how each input ended (handshake codes, bytes
 * written and read, alterations), to check what a seed reaches.
 */
#define OPENSSL_SUPPRESS_DEPRECATED /* RAND_METHOD: the only way to fix the RNG */

#include "tls/tls.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond) require((cond), __LINE__, #cond)

static void require(bool ok, int line, const char *what) {
    if (!ok) {
        fprintf(stderr, "fuzz_tls.c:%d: invariant broken: %s\n", line, what);
        abort();
    }
}

/* ---- deterministic randomness ------------------------------------------- */

enum { RNG_SETUP, RNG_CLIENT, RNG_SERVER, RNG_CLIENT2, RNG_SERVER2, RNG_STREAMS };

static uint64_t rng_state[RNG_STREAMS]; /* splitmix64 state per endpoint */
static int rng_cur;                     /* the stream OpenSSL draws from now */

static void rng_reset(void) {
    uint64_t seed = 0x243F6A8885A308D3u;
    for (int i = 0; i < RNG_STREAMS; i++, seed += 0x243F6A8885A308D3u)
        rng_state[i] = seed;
    rng_cur = RNG_SETUP;
}

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static int rng_bytes(unsigned char *buf, int num) {
    for (int i = 0; i < num; i++)
        buf[i] = (unsigned char)(splitmix(&rng_state[rng_cur]) >> 56);
    return 1;
}

static int rng_status(void) {
    return 1;
}

static const RAND_METHOD rng_method = {
    .bytes = rng_bytes,
    .pseudorand = rng_bytes,
    .status = rng_status,
};

/* ---- certificate and contexts, made once --------------------------------- */

static bool verbose; /* DX_FUZZ_TLS_VERBOSE set: say how each input ended */
static char tmpdir[64];
static char cert_path[128], key_path[128];
static int pem_fd[2] = {-1, -1}; /* the unlinked files, open as /proc/self/fd/N */

enum { CLIENT_INSECURE, CLIENT_CA, CLIENT_SYSTEM, CLIENT_MTLS };
enum { SERVER_PLAIN, SERVER_OPTIONAL, SERVER_REQUIRED, SERVER_KINDS };
static dx_tls_ctx *server_ctx[SERVER_KINDS];
/* The system-store client context loads the whole store (170 ms under ASan), so
 * it is made once. Sharing it is safe: its handshakes always fail verification
 * (the certificate is self-signed), so it never caches a session. */
static dx_tls_ctx *system_ctx;

static const char *const hosts[8] = {"localhost", "127.0.0.1", "[::1]",       "example.com",
                                     "10.0.0.1",  "[::2]",     "alt.example", "LocalHost"};

static void cleanup(void) {
    for (int i = 0; i < SERVER_KINDS; i++)
        dx_tls_ctx_release(server_ctx[i]);
    dx_tls_ctx_release(system_ctx);
    if (tmpdir[0]) {
        unlink(cert_path);
        unlink(key_path);
        rmdir(tmpdir);
    }
    for (int i = 0; i < 2; i++)
        if (pem_fd[i] >= 0)
            close(pem_fd[i]);
}

static void add_ext(X509 *x, int nid, const char *value) {
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    REQUIRE(e != NULL && X509_add_ext(x, e, -1) == 1);
    X509_EXTENSION_free(e);
}

static void write_pem_files(void) {
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    REQUIRE(key != NULL && x != NULL);
    REQUIRE(X509_set_version(x, 2) == 1);
    REQUIRE(ASN1_INTEGER_set(X509_get_serialNumber(x), 1) == 1);
    /* fixed dates: the certificate, and the seeds that carry it, never change */
    REQUIRE(ASN1_TIME_set_string_X509(X509_getm_notBefore(x), "20200101000000Z") == 1);
    REQUIRE(ASN1_TIME_set_string_X509(X509_getm_notAfter(x), "20991231235959Z") == 1);
    REQUIRE(X509_set_pubkey(x, key) == 1);
    X509_NAME *name = X509_get_subject_name(x);
    REQUIRE(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost",
                                       -1, -1, 0) == 1);
    REQUIRE(X509_set_issuer_name(x, name) == 1);
    add_ext(x, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(x, NID_key_usage, "critical,digitalSignature,keyCertSign");
    add_ext(x, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1");
    REQUIRE(X509_sign(x, key, EVP_sha256()) > 0);

    snprintf(tmpdir, sizeof tmpdir, "/tmp/dx-fuzz-tls-XXXXXX");
    REQUIRE(mkdtemp(tmpdir) != NULL);
    snprintf(cert_path, sizeof cert_path, "%s/cert.pem", tmpdir);
    snprintf(key_path, sizeof key_path, "%s/key.pem", tmpdir);
    FILE *f = fopen(cert_path, "w");
    REQUIRE(f != NULL && PEM_write_X509(f, x) == 1);
    fclose(f);
    f = fopen(key_path, "w");
    REQUIRE(f != NULL && PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(key);

    /* Where /proc is mounted, keep the files open and remove them now, so that
     * not even a crash or a timeout (which skip atexit) leaves them behind. */
    int cfd = open(cert_path, O_RDONLY | O_CLOEXEC), kfd = open(key_path, O_RDONLY | O_CLOEXEC);
    char cpath[64], kpath[64];
    snprintf(cpath, sizeof cpath, "/proc/self/fd/%d", cfd);
    snprintf(kpath, sizeof kpath, "/proc/self/fd/%d", kfd);
    if (cfd >= 0 && kfd >= 0 && access(cpath, R_OK) == 0 && access(kpath, R_OK) == 0) {
        unlink(cert_path);
        unlink(key_path);
        rmdir(tmpdir);
        tmpdir[0] = 0;
        memcpy(cert_path, cpath, sizeof cpath);
        memcpy(key_path, kpath, sizeof kpath);
        pem_fd[0] = cfd;
        pem_fd[1] = kfd;
    } else {
        if (cfd >= 0)
            close(cfd);
        if (kfd >= 0)
            close(kfd);
    }
}

static void write_seeds(const char *dir);

static void setup_once(void) {
    static bool done;
    if (done)
        return;
    done = true;
    REQUIRE(RAND_set_rand_method(&rng_method) == 1);
    rng_reset();
    atexit(cleanup);
    write_pem_files();
    dx_tls_cert certs[2] = {
        {.cert_file = cert_path, .key_file = key_path},
        {.cert_file = cert_path, .key_file = key_path, .server_name = "alt.example"},
    };
    for (int k = 0; k < SERVER_KINDS; k++) {
        dx_tls_server_config cfg = {.certs = certs, .cert_count = 2};
        if (k != SERVER_PLAIN) {
            cfg.client_auth =
                k == SERVER_OPTIONAL ? DX_TLS_CLIENT_AUTH_OPTIONAL : DX_TLS_CLIENT_AUTH_REQUIRED;
            cfg.client_ca_file = cert_path;
        }
        REQUIRE(dx_tls_ctx_create_server(&server_ctx[k], &cfg) == 0);
    }
    verbose = getenv("DX_FUZZ_TLS_VERBOSE") != NULL;
    const char *seeds = getenv("DX_FUZZ_TLS_SEEDS");
    if (seeds)
        write_seeds(seeds);
}

/* A client context of @kind: a fresh one, or the shared system-store one. */
static dx_tls_ctx *client_ctx(int kind) {
    dx_tls_client_config cfg = {0};
    if (kind == CLIENT_SYSTEM && system_ctx)
        return system_ctx;
    switch (kind) {
    case CLIENT_INSECURE:
        cfg.insecure = true;
        break;
    case CLIENT_CA:
        cfg.ca_file = cert_path;
        break;
    case CLIENT_SYSTEM:
        break;
    default:
        cfg.ca_file = cert_path;
        cfg.cert_file = cert_path;
        cfg.key_file = key_path;
        break;
    }
    int saved = rng_cur;
    rng_cur = RNG_SETUP;
    dx_tls_ctx *c = NULL;
    REQUIRE(dx_tls_ctx_create_client(&c, &cfg) == 0);
    rng_cur = saved;
    if (kind == CLIENT_SYSTEM)
        system_ctx = c;
    return c;
}

static void client_ctx_done(dx_tls_ctx *c) {
    if (c != system_ctx)
        dx_tls_ctx_release(c);
}

/* ---- one endpoint and the checks around every call ------------------------ */

typedef struct side {
    dx_tls_conn *t;
    int stream;       /* RNG stream */
    bool server;      /* server engine */
    bool verifies;    /* checks the peer's certificate (codes UNKNOWN_CA..CERT_INVALID) */
    bool requires;    /* server that requires a client certificate */
    int sticky;       /* first DX_ETLS_* returned, 0 while healthy */
    bool fed;         /* a byte was fed (DX_ETLS_PLAIN_HTTP only on the first) */
    bool closed;      /* dx__tls_read said DX_ECLOSED */
    bool shut;        /* dx__tls_shutdown was called */
    bool established; /* dx__tls_handshake or read succeeded */
} side;

static bool is_tls_error(int rc) {
    return rc <= DX_ETLS_UNKNOWN_CA && rc >= DX_ETLS_PROTOCOL;
}

static bool is_cert_error(int rc) {
    return rc <= DX_ETLS_UNKNOWN_CA && rc >= DX_ETLS_CERT_INVALID;
}

/* The codes dx__tls_handshake documents, as they apply to @s. */
static bool handshake_code_ok(const side *s, int rc) {
    if (rc == 0 || rc == DX_EINCOMPLETE || rc == DX_ENOMEM)
        return true;
    if (is_cert_error(rc))
        return s->verifies;
    if (rc == DX_ETLS_CERT_REQUIRED)
    return s->requires;
    return rc == DX_ETLS_VERSION || rc == DX_ETLS_CIPHER || rc == DX_ETLS_ALERT ||
           rc == DX_ETLS_HANDSHAKE;
}

/* Record @rc from a call on @s: the same sticky code after a failure, else one
 * the call may return (@ok). */
static void note(side *s, int rc, bool ok) {
    if (s->sticky) {
        REQUIRE(rc == s->sticky);
        REQUIRE(!dx__tls_pending(s->t));
        return;
    }
    REQUIRE(ok);
    if (is_tls_error(rc)) {
        s->sticky = rc;
        REQUIRE(!dx__tls_pending(s->t));
    }
}

static void use(const side *s) {
    rng_cur = s->stream;
}

static int do_feed(side *s, const uint8_t *p, size_t n) {
    use(s);
    size_t used = 99;
    int rc = dx__tls_feed(s->t, (dx_span){p, n}, &used);
    bool first = !s->fed && n > 0;
    if (n > 0)
        s->fed = true;
    note(s, rc, rc == 0 || rc == DX_ENOMEM || (rc == DX_ETLS_PLAIN_HTTP && first));
    REQUIRE(rc == 0 ? used == n : rc == DX_ENOMEM || used == 0);
    return rc;
}

static int do_handshake(side *s) {
    use(s);
    int rc = dx__tls_handshake(s->t);
    note(s, rc, handshake_code_ok(s, rc));
    if (rc == 0 || rc == DX_EINCOMPLETE)
        REQUIRE(dx__tls_is_established(s->t) == (rc == 0));
    if (rc == 0)
        s->established = true;
    return rc;
}

/* Read at most @cap bytes into a buffer with a guard behind it; append what came
 * to @got (may be NULL) and return the code. */
static int do_read(side *s, size_t cap, uint8_t **got, size_t *got_len) {
    use(s);
    uint8_t *buf = malloc(cap + 16);
    REQUIRE(buf != NULL);
    memset(buf, 0xA5, cap + 16);
    size_t n = 12345;
    int rc = dx__tls_read(s->t, buf, cap, &n);
    for (size_t i = cap; i < cap + 16; i++)
        REQUIRE(buf[i] == 0xA5);
    bool ok;
    if (rc == 0) {
        ok = n > 0 && n <= cap;
    } else {
        REQUIRE(n == 0);
        ok = rc == DX_EINCOMPLETE || rc == DX_ECLOSED || rc == DX_ETLS_PROTOCOL ||
             (rc == DX_EINVAL && cap == 0) || handshake_code_ok(s, rc);
    }
    note(s, rc, ok);
    if (s->closed && !s->sticky)
        REQUIRE(rc == DX_ECLOSED);
    if (rc == DX_ECLOSED) {
        s->closed = true;
        REQUIRE(dx__tls_peer_closed(s->t));
    }
    if (rc == DX_EINCOMPLETE)
        REQUIRE(!dx__tls_pending(s->t));
    if (rc == 0 || rc == DX_ECLOSED || rc == DX_ETLS_PROTOCOL)
        s->established = true;
    if (rc == 0 && got) {
        uint8_t *g = realloc(*got, *got_len + n);
        REQUIRE(g != NULL);
        memcpy(g + *got_len, buf, n);
        *got = g;
        *got_len += n;
    }
    free(buf);
    return rc;
}

static int do_write(side *s, const uint8_t *p, size_t n) {
    use(s);
    size_t used = 99;
    int rc = dx__tls_write(s->t, (dx_span){p, n}, &used);
    bool est = dx__tls_is_established(s->t);
    if (!s->sticky && rc != DX_ENOMEM) {
        REQUIRE((rc == DX_ESTATE) == (!est || s->shut));
        REQUIRE(rc == 0 || rc == DX_ESTATE || rc == DX_ETLS_PROTOCOL);
    }
    note(s, rc, true);
    REQUIRE(rc == 0 ? used == n : used == 0);
    return rc;
}

static void do_shutdown(side *s) {
    use(s);
    int rc = dx__tls_shutdown(s->t);
    note(s, rc, rc == 0);
    s->shut = true;
}

static bool side_open(side *s, dx_tls_ctx *ctx, const char *host, int stream) {
    memset(s, 0, sizeof(*s));
    s->stream = stream;
    s->server = host == NULL;
    rng_cur = stream;
    return dx__tls_conn_create(&s->t, ctx, host, 443) == 0;
}

/* ---- modes 0 and 1: one engine fed the input ------------------------------ */

typedef struct prng {
    uint64_t s;
} prng;

static uint32_t prng_next(prng *r) {
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return (uint32_t)(r->s >> 32);
}

static void one_op(side *s, prng *r) {
    switch (prng_next(r) % 8) {
    case 0:
    case 1:
    case 2:
        do_handshake(s);
        break;
    case 3:
    case 4: {
        size_t cap = prng_next(r) % 4 == 0 ? 0 : 1 + prng_next(r) % 300;
        do_read(s, cap, NULL, NULL);
        break;
    }
    case 5:
        do_write(s, (const uint8_t *)"x", 1);
        break;
    case 6: {
        size_t len = dx__tls_output(s->t).len, k = prng_next(r) % (len + 8);
        dx__tls_consume(s->t, k);
        REQUIRE(dx__tls_output(s->t).len == (k >= len ? 0 : len - k));
        break;
    }
    default:
        if (prng_next(r) % 4 == 0)
            do_shutdown(s);
        else if (s->sticky)
            REQUIRE(!dx__tls_pending(s->t));
        break;
    }
}

static void drain_output(side *s) {
    dx_span o = dx__tls_output(s->t);
    dx__tls_consume(s->t, o.len + 1);
    REQUIRE(dx__tls_output(s->t).len == 0);
}

static void run_single(const uint8_t *hdr, const uint8_t *data, size_t size) {
    bool server = (hdr[0] & 3) == 0;
    int ckind = (hdr[0] >> 2) & 3, skind = (hdr[1] & 3) % SERVER_KINDS;
    dx_tls_ctx *cctx = NULL;
    side s;
    if (server) {
        REQUIRE(side_open(&s, server_ctx[skind], NULL, RNG_SERVER));
        s.verifies = skind != SERVER_PLAIN;
        s.requires = skind == SERVER_REQUIRED;
    } else {
        cctx = client_ctx(ckind);
        REQUIRE(side_open(&s, cctx, hosts[(hdr[0] >> 4) & 7], RNG_CLIENT));
        s.verifies = ckind != CLIENT_INSECURE;
        REQUIRE(do_handshake(&s) == DX_EINCOMPLETE); /* the ClientHello */
        REQUIRE(dx__tls_output(s.t).len > 0);
        drain_output(&s);
    }
    prng chunks = {0x9E3779B97F4A7C15ULL ^ ((uint64_t)hdr[2] << 32) ^ size};
    prng ops = {0xD1B54A32D192ED03ULL ^ ((uint64_t)hdr[3] << 40) ^ size};
    size_t off = 0;
    while (off < size) {
        size_t n = size - off;
        if (hdr[2] == 1) {
            n = 1;
        } else if (hdr[2] != 0) {
            size_t k = 1 + prng_next(&chunks) % 64;
            n = k < n ? k : n;
        }
        do_feed(&s, data + off, n);
        off += n;
        if (hdr[3] == 0) {
            do_handshake(&s);
        } else {
            for (uint32_t k = 1 + prng_next(&ops) % 3; k > 0; k--)
                one_op(&s, &ops);
        }
        drain_output(&s);
    }
    /* read what can be read */
    uint8_t *got = NULL;
    size_t got_len = 0;
    int rc = 0;
    for (int i = 0; i < 64 && rc == 0; i++)
        rc = do_read(&s, 4096, &got, &got_len);
    if (verbose)
        fprintf(stderr, "%s: established %d, read %zu bytes, then %s\n",
                server ? "server" : "client", dx__tls_is_established(s.t), got_len,
                dx_err_name(rc));
    free(got);
    drain_output(&s);
    if (hdr[3] != 0) {
        do_shutdown(&s);
        drain_output(&s);
    }
    dx__tls_conn_destroy(s.t);
    client_ctx_done(cctx);
}

/* ---- modes 2 and 3: a real pair, records mutated in flight ---------------- */

typedef struct tape {
    const uint8_t *p, *end;
} tape;

static bool tape_empty(const tape *t) {
    return t->p >= t->end;
}

static uint8_t take(tape *t) {
    return t->p < t->end ? *t->p++ : 0;
}

static size_t take16(tape *t) {
    size_t hi = take(t);
    return hi << 8 | take(t);
}

#define MAX_STREAM (256u * 1024) /* bytes written per direction, at most */

/* One direction of the pair: what was written and what was read. */
typedef struct flow {
    uint8_t *sent;
    size_t sent_len;
    uint8_t *recv;
    size_t recv_len;
    bool dirty; /* a record in this direction was altered */
} flow;

typedef struct pair {
    side c, s;
    flow up, down; /* client to server, server to client */
    tape *tape;
    bool hs_dirty;   /* altered while a handshake was in progress */
    size_t records;  /* records pumped so far */
    bool tape_off;   /* the final pumps: every record passes, the tape is kept */
    FILE *record[2]; /* seed writer: the clean streams, up and down */
} pair;

/* The output of @s: always whole TLS records. */
static dx_span checked_output(const side *s) {
    dx_span o = dx__tls_output(s->t);
    size_t off = 0;
    while (off < o.len) {
        REQUIRE(o.len - off >= 5);
        const uint8_t *h = o.ptr + off;
        size_t rl = (size_t)h[3] << 8 | h[4];
        REQUIRE(h[0] >= 20 && h[0] <= 23);
        REQUIRE(h[1] == 3 && (h[2] == 1 || h[2] == 3));
        REQUIRE(rl >= 1 && rl <= 16384 + 2048 && o.len - off - 5 >= rl);
        off += 5 + rl;
    }
    return o;
}

static void deliver(pair *p, side *to, const uint8_t *b, size_t n) {
    if (n == 0)
        return;
    do_feed(to, b, n);
    if (p->record[to == &p->s ? 0 : 1])
        fwrite(b, 1, n, p->record[to == &p->s ? 0 : 1]);
}

/* Bytes injected before a record: raw, or a well-formed plaintext record. */
static void inject(pair *p, side *to) {
    tape *t = p->tape;
    uint8_t kind = take(t), buf[5 + 40];
    size_t len = take(t) % 33, n = 0;
    switch (kind % 4) {
    case 0: /* raw */
        for (n = 0; n < len; n++)
            buf[n] = take(t);
        break;
    case 1: /* alert */
        memcpy(buf, "\x15\x03\x03\x00\x02", 5);
        buf[5] = take(t);
        buf[6] = take(t);
        n = 7;
        break;
    case 2: /* ChangeCipherSpec (TLS 1.3 middlebox compatibility allows one) */
        memcpy(buf, "\x14\x03\x03\x00\x01\x01", 6);
        n = 6;
        break;
    default: /* a plaintext handshake record */
        memcpy(buf, "\x16\x03\x03", 3);
        buf[3] = 0;
        buf[4] = (uint8_t)len;
        for (n = 5; n < 5 + len; n++)
            buf[n] = take(t);
        break;
    }
    deliver(p, to, buf, n);
}

/* Move everything @from has queued into @to, each record first put through the
 * change the tape picks. Returns the bytes taken from @from. */
static size_t pump(pair *p, side *from, side *to, flow *f) {
    dx_span o = checked_output(from);
    size_t len = o.len;
    if (len == 0)
        return 0;
    uint8_t *copy = malloc(len);
    REQUIRE(copy != NULL);
    memcpy(copy, o.ptr, len);
    dx__tls_consume(from->t, len);
    REQUIRE(dx__tls_output(from->t).len == 0);
    bool handshaking = !p->c.established || !p->s.established;
    const uint8_t *held = NULL; /* a record delayed behind the next one */
    size_t held_len = 0;
    tape *t = p->tape;
    for (size_t off = 0; off < len;) {
        const uint8_t *r = copy + off;
        size_t rl = 5 + ((size_t)r[3] << 8 | r[4]);
        off += rl;
        p->records++;
        uint8_t op = p->tape_off ? 0 : take(t);
        bool altered = true;
        if (op < 0x80) {
            deliver(p, to, r, rl);
            altered = false;
        } else {
            switch (op & 7) {
            case 0: { /* flip one bit pattern anywhere */
                size_t pos = take16(t) % rl;
                uint8_t x = take(t) | 1;
                copy[off - rl + pos] ^= x;
                deliver(p, to, r, rl);
                break;
            }
            case 1: /* truncate */
                deliver(p, to, r, take16(t) % rl);
                break;
            case 2: /* drop */
                break;
            case 3: /* duplicate */
                deliver(p, to, r, rl);
                deliver(p, to, r, rl);
                break;
            case 4: /* inject, then the record */
                inject(p, to);
                deliver(p, to, r, rl);
                break;
            case 5: { /* the same bytes in two pieces: no change at all */
                size_t cut = take16(t) % rl;
                deliver(p, to, r, cut);
                deliver(p, to, r + cut, rl - cut);
                altered = false;
                break;
            }
            case 6: /* reorder: behind the next record */
                if (!held && off < len) {
                    held = r;
                    held_len = rl;
                    continue;
                }
                deliver(p, to, r, rl);
                altered = held != NULL;
                break;
            default: { /* flip in the header: type, version, length */
                uint8_t pos = (uint8_t)(take(t) % 5);
                copy[off - rl + pos] ^= take(t) | 1;
                deliver(p, to, r, rl);
                break;
            }
            }
        }
        if (held && r != held) {
            deliver(p, to, held, held_len);
            held = NULL;
            altered = true;
        }
        if (altered) {
            f->dirty = true;
            if (handshaking)
                p->hs_dirty = true;
        }
    }
    free(copy);
    return len;
}

static size_t pump_both(pair *p) {
    size_t m = pump(p, &p->c, &p->s, &p->up);
    return m + pump(p, &p->s, &p->c, &p->down);
}

/* Read from @s with capacity @cap, checking the bytes against what was sent. */
static int read_checked(side *s, flow *f, size_t cap) {
    int rc = do_read(s, cap, &f->recv, &f->recv_len);
    /* authenticated records: whatever arrives is what the peer wrote */
    REQUIRE(f->recv_len <= f->sent_len);
    REQUIRE(f->recv_len == 0 || memcmp(f->recv, f->sent, f->recv_len) == 0);
    return rc;
}

static int read_all(side *s, flow *f) {
    int rc;
    for (int i = 0; i < 1000; i++)
        if ((rc = read_checked(s, f, 16384)) != 0)
            return rc;
    return rc;
}

static void write_checked(side *s, flow *f, const uint8_t *b, size_t n) {
    if (f->sent_len + n > MAX_STREAM)
        return;
    if (do_write(s, b, n) == 0 && n > 0) {
        uint8_t *g = realloc(f->sent, f->sent_len + n);
        REQUIRE(g != NULL);
        memcpy(g + f->sent_len, b, n);
        f->sent = g;
        f->sent_len += n;
    }
}

static void write_from_tape(pair *p, side *s, flow *f, bool big) {
    size_t n = big ? (size_t)(take(p->tape) + 1) * 257 : take(p->tape) % 64;
    uint8_t *b = malloc(n ? n : 1);
    REQUIRE(b != NULL);
    for (size_t i = 0; i < n; i++)
        b[i] = big ? (uint8_t)(i * 31 + f->sent_len) : take(p->tape);
    write_checked(s, f, b, n);
    free(b);
}

/* What a clean handshake must end in, for this configuration. */
typedef struct expect {
    int client;       /* dx__tls_handshake on the client */
    int server;       /* ... on the server */
    bool client_read; /* the client reads alert 116 (certificate required) */
} expect;

static expect expected(int ckind, int skind, int host) {
    expect e = {0, 0, false};
    if (ckind == CLIENT_SYSTEM)
        e.client = DX_ETLS_SELF_SIGNED;
    else if (ckind != CLIENT_INSECURE && (host == 3 || host == 6))
        e.client = DX_ETLS_HOSTNAME;
    else if (ckind != CLIENT_INSECURE && (host == 4 || host == 5))
        e.client = DX_ETLS_IP;
    if (e.client) {
        e.server = DX_ETLS_ALERT;
    } else if (skind == SERVER_REQUIRED && ckind != CLIENT_MTLS) {
        e.server = DX_ETLS_CERT_REQUIRED;
        e.client_read = true;
    }
    return e;
}

static void flow_free(flow *f) {
    free(f->sent);
    free(f->recv);
}

static size_t hs_records; /* records the last handshake phase pumped (for seeds) */

/* One connection of the pair mode. With @may_stop, the call op 11 ends its part
 * of the tape (the rest drives a second connection). Returns true when it ended
 * clean and healthy, so its session can be resumed. */
static bool run_pair_once(tape *t, dx_tls_ctx *cctx, int ckind, int skind, int host, bool second,
                          bool may_stop, FILE *rec_up, FILE *rec_down) {
    pair p;
    memset(&p, 0, sizeof p);
    p.tape = t;
    p.record[0] = rec_up;
    p.record[1] = rec_down;
    REQUIRE(side_open(&p.c, cctx, hosts[host], second ? RNG_CLIENT2 : RNG_CLIENT));
    REQUIRE(side_open(&p.s, server_ctx[skind], NULL, second ? RNG_SERVER2 : RNG_SERVER));
    p.c.verifies = ckind != CLIENT_INSECURE;
    p.s.verifies = skind != SERVER_PLAIN;
    p.s.requires = skind == SERVER_REQUIRED;

    /* the handshake, records altered as the tape says */
    int crc = DX_EINCOMPLETE, src = DX_EINCOMPLETE;
    for (int i = 0; i < 32; i++) {
        crc = do_handshake(&p.c);
        size_t m = pump(&p, &p.c, &p.s, &p.up);
        src = do_handshake(&p.s);
        m += pump(&p, &p.s, &p.c, &p.down);
        if (m == 0)
            break;
    }
    crc = do_handshake(&p.c);
    src = do_handshake(&p.s);
    pump_both(&p);
    hs_records = p.records;

    expect e = expected(ckind, skind, host);
    if (!p.hs_dirty) {
        REQUIRE(crc == e.client);
        REQUIRE(src == e.server);
        if (crc == 0) {
            REQUIRE(dx__tls_alpn(p.c.t).len == 8 &&
                    memcmp(dx__tls_alpn(p.c.t).ptr, "http/1.1", 8) == 0);
            REQUIRE(strcmp(dx__tls_version(p.c.t), "TLSv1.3") == 0);
        }
        if (src == 0) {
            REQUIRE(dx__tls_alpn(p.s.t).len == 8);
            const char *sni = dx__tls_server_name(p.s.t);
            bool name = host == 0 || host == 3 || host == 6 || host == 7;
            REQUIRE(name ? sni && strcmp(sni, hosts[host]) == 0 : sni == NULL);
            REQUIRE(dx__tls_session_reused(p.s.t) == second);
            REQUIRE(dx__tls_session_reused(p.c.t) == second);
        }
    }

    /* after the handshake: calls the tape picks */
    bool stop = false;
    while (!tape_empty(t) && !stop) {
        uint8_t op = take(t);
        switch (op % 12) {
        case 0:
            write_from_tape(&p, &p.c, &p.up, false);
            break;
        case 1:
            write_from_tape(&p, &p.s, &p.down, false);
            break;
        case 2:
            write_from_tape(&p, &p.c, &p.up, true);
            break;
        case 3:
            write_from_tape(&p, &p.s, &p.down, true);
            break;
        case 4:
            pump(&p, &p.c, &p.s, &p.up);
            break;
        case 5:
            pump(&p, &p.s, &p.c, &p.down);
            break;
        case 6:
            read_checked(&p.c, &p.down, take(t));
            break;
        case 7:
            read_checked(&p.s, &p.up, take(t));
            break;
        case 8:
            do_shutdown(&p.c);
            break;
        case 9:
            do_shutdown(&p.s);
            break;
        case 10:
            do_handshake(op & 0x10 ? &p.s : &p.c);
            break;
        default:
            (void)dx__tls_pending(p.c.t);
            (void)dx__tls_pending(p.s.t);
            stop = may_stop;
            break;
        }
    }

    /* the tape is over: pump and read until nothing moves */
    p.tape_off = true;
    int cr = 0, sr = 0;
    for (int i = 0; i < 16; i++) {
        size_t m = pump_both(&p);
        cr = read_all(&p.c, &p.down);
        sr = read_all(&p.s, &p.up);
        if (m == 0 && dx__tls_output(p.c.t).len == 0 && dx__tls_output(p.s.t).len == 0)
            break;
    }
    if (!p.hs_dirty && e.client_read && !p.down.dirty) {
        int code = 0;
        REQUIRE(cr == DX_ETLS_ALERT);
        REQUIRE(dx__tls_alert(p.c.t, &code) != NULL && code == 116);
    }
    bool healthy = !p.c.sticky && !p.s.sticky && p.c.established && p.s.established;
    if (verbose)
        fprintf(stderr,
                "pair%s: handshake %s/%s%s, up %zu/%zu%s, down %zu/%zu%s, end %s/%s, "
                "resumed %d\n",
                second ? " (second)" : "", dx_err_name(crc), dx_err_name(src),
                p.hs_dirty ? " (altered)" : "", p.up.recv_len, p.up.sent_len,
                p.up.dirty ? " (altered)" : "", p.down.recv_len, p.down.sent_len,
                p.down.dirty ? " (altered)" : "", dx_err_name(cr), dx_err_name(sr),
                dx__tls_session_reused(p.c.t));
    /* every byte written arrives, byte for byte, where nothing was altered */
    if (healthy && !p.up.dirty)
        REQUIRE(p.up.recv_len == p.up.sent_len);
    if (healthy && !p.down.dirty)
        REQUIRE(p.down.recv_len == p.down.sent_len);
    if (!p.hs_dirty && !e.client && !e.server)
        REQUIRE(healthy || p.up.dirty || p.down.dirty);

    /* close_notify both ways */
    bool clean = healthy && !p.up.dirty && !p.down.dirty;
    do_shutdown(&p.c);
    do_shutdown(&p.s);
    pump_both(&p);
    cr = read_all(&p.c, &p.down);
    sr = read_all(&p.s, &p.up);
    if (clean) {
        REQUIRE(cr == DX_ECLOSED && sr == DX_ECLOSED);
        REQUIRE(dx__tls_peer_closed(p.c.t) && dx__tls_peer_closed(p.s.t));
    }
    dx__tls_conn_destroy(p.c.t);
    dx__tls_conn_destroy(p.s.t);
    flow_free(&p.up);
    flow_free(&p.down);
    return clean;
}

static void run_pair(const uint8_t *hdr, const uint8_t *data, size_t size) {
    int ckind = (hdr[0] >> 2) & 3, host = (hdr[0] >> 4) & 7, skind = (hdr[1] & 3) % SERVER_KINDS;
    tape t = {data, data + size};
    dx_tls_ctx *cctx = client_ctx(ckind);
    expect e = expected(ckind, skind, host);
    bool again = hdr[0] & 0x80;
    bool clean = run_pair_once(&t, cctx, ckind, skind, host, false, again, NULL, NULL);
    /* a clean first connection left a ticket: the second must resume it (the
     * check is in run_pair_once, which expects reuse when @second is set) */
    if (again && clean && !e.client && !e.server)
        run_pair_once(&t, cctx, ckind, skind, host, true, false, NULL, NULL);
    client_ctx_done(cctx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    setup_once();
    if (size < 4)
        return 0;
    rng_reset();
    if ((data[0] & 3) < 2)
        run_single(data, data + 4, size - 4);
    else
        run_pair(data, data + 4, size - 4);
    ERR_clear_error();
    return 0;
}

/* ---- seeds ------------------------------------------------------------------ */

static FILE *seed_open(const char *dir, const char *name, const uint8_t hdr[4]) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    REQUIRE(f != NULL);
    fwrite(hdr, 1, 4, f);
    return f;
}

static void seed_bytes(const char *dir, const char *name, const uint8_t hdr[4], const void *b,
                       size_t n) {
    FILE *f = seed_open(dir, name, hdr);
    fwrite(b, 1, n, f);
    fclose(f);
}

/* Record both streams of a clean pair run (with a tape that writes a request and
 * an answer) as seeds for modes 0 and 1. */
static void seed_streams(const char *dir, int ckind, int skind, int host, const char *tag) {
    char name[128];
    uint8_t up_hdr[4] = {0, (uint8_t)skind, 0, 0};
    uint8_t down_hdr[4] = {(uint8_t)(1 | ckind << 2 | host << 4), (uint8_t)skind, 0, 0};
    snprintf(name, sizeof name, "to-server-%s", tag);
    FILE *up = seed_open(dir, name, up_hdr);
    snprintf(name, sizeof name, "to-client-%s", tag);
    FILE *down = seed_open(dir, name, down_hdr);
    /* a dry run counts the handshake's records; then the client writes 18 bytes,
     * the server 19, each pumped with one pass */
    tape none = {NULL, NULL};
    rng_reset();
    dx_tls_ctx *cctx = client_ctx(ckind);
    run_pair_once(&none, cctx, ckind, skind, host, false, false, NULL, NULL);
    client_ctx_done(cctx);
    static const char prog[] = "\x00\x12GET / HTTP/1.1\r\n\r\n\x04\x00"
                               "\x01\x13HTTP/1.1 101 ok\r\n\r\n\x05\x00";
    uint8_t *tp = calloc(1, hs_records + sizeof prog);
    REQUIRE(tp != NULL);
    memcpy(tp + hs_records, prog, sizeof prog - 1);
    tape t = {tp, tp + hs_records + sizeof prog - 1};
    rng_reset();
    cctx = client_ctx(ckind);
    run_pair_once(&t, cctx, ckind, skind, host, false, false, up, down);
    free(tp);
    client_ctx_done(cctx);
    fclose(up);
    fclose(down);
}

/* A raw OpenSSL endpoint capped at TLS 1.2 against one of our engines; the
 * stream it receives from ours is written as a seed. */
static void seed_tls12(const char *dir, bool raw_is_server) {
    rng_reset();
    SSL_CTX *rc = SSL_CTX_new(raw_is_server ? TLS_server_method() : TLS_client_method());
    REQUIRE(rc != NULL);
    SSL_CTX_set_max_proto_version(rc, TLS1_2_VERSION);
    if (raw_is_server) {
        REQUIRE(SSL_CTX_use_certificate_chain_file(rc, cert_path) == 1);
        REQUIRE(SSL_CTX_use_PrivateKey_file(rc, key_path, SSL_FILETYPE_PEM) == 1);
    }
    SSL *raw = SSL_new(rc);
    BIO *in = BIO_new(BIO_s_mem()), *out = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(in, -1);
    SSL_set_bio(raw, in, out);
    if (raw_is_server)
        SSL_set_accept_state(raw);
    else
        SSL_set_connect_state(raw);
    dx_tls_ctx *cctx = raw_is_server ? client_ctx(CLIENT_CA) : NULL;
    side ours;
    REQUIRE(side_open(&ours, raw_is_server ? cctx : server_ctx[SERVER_PLAIN],
                      raw_is_server ? "localhost" : NULL, raw_is_server ? RNG_CLIENT : RNG_SERVER));
    uint8_t hdr[4] = {raw_is_server ? (uint8_t)(1 | CLIENT_CA << 2) : 0, 0, 0, 0};
    FILE *f = seed_open(dir, raw_is_server ? "to-client-tls12" : "to-server-tls12", hdr);
    int raw_stream = raw_is_server ? RNG_SERVER : RNG_CLIENT;
    for (int i = 0; i < 16; i++) {
        use(&ours);
        if (dx__tls_handshake(ours.t) == 0 && !ours.established) {
            size_t used;
            ours.established = true;
            REQUIRE(dx__tls_write(ours.t, dx_span_cstr("hello"), &used) == 0);
        }
        dx_span o = dx__tls_output(ours.t);
        if (o.len)
            BIO_write(in, o.ptr, (int)o.len);
        dx__tls_consume(ours.t, o.len);
        rng_cur = raw_stream;
        (void)SSL_do_handshake(raw);
        if (SSL_is_init_finished(raw)) {
            char junk[64];
            (void)SSL_read(raw, junk, sizeof junk);
            (void)SSL_write(raw, "hi", 2);
        }
        char *p = NULL;
        long n = BIO_get_mem_data(out, &p);
        if (n > 0) {
            fwrite(p, 1, (size_t)n, f);
            do_feed(&ours, (const uint8_t *)p, (size_t)n);
            (void)BIO_reset(out);
        }
    }
    REQUIRE(ours.established && !ours.sticky);
    fclose(f);
    dx__tls_conn_destroy(ours.t);
    client_ctx_done(cctx);
    SSL_free(raw);
    SSL_CTX_free(rc);
    ERR_clear_error();
}

/* A pair-mode seed: @hdr, a pass for every record of a clean handshake in this
 * configuration, then @prog. */
static void seed_tape(const char *dir, const char *name, const uint8_t hdr[4], const char *prog,
                      size_t len) {
    tape none = {NULL, NULL};
    int ckind = (hdr[0] >> 2) & 3, host = (hdr[0] >> 4) & 7, skind = (hdr[1] & 3) % SERVER_KINDS;
    rng_reset();
    dx_tls_ctx *cctx = client_ctx(ckind);
    run_pair_once(&none, cctx, ckind, skind, host, false, false, NULL, NULL);
    client_ctx_done(cctx);
    FILE *f = seed_open(dir, name, hdr);
    for (size_t i = 0; i < hs_records; i++)
        fputc(0, f);
    fwrite(prog, 1, len, f);
    fclose(f);
}

/* The ClientHello of a raw OpenSSL client limited to @max_version and @ciphers
 * (security level 0, so that TLS 1.0 and weak suites may be offered): the
 * server must refuse it with DX_ETLS_VERSION or DX_ETLS_CIPHER. */
static void seed_client_hello(const char *dir, const char *name, int max_version,
                              const char *ciphers) {
    rng_reset();
    SSL_CTX *rc = SSL_CTX_new(TLS_client_method());
    REQUIRE(rc != NULL);
    SSL_CTX_set_security_level(rc, 0);
    REQUIRE(SSL_CTX_set_min_proto_version(rc, TLS1_VERSION) == 1);
    REQUIRE(SSL_CTX_set_max_proto_version(rc, max_version) == 1);
    if (ciphers)
        REQUIRE(SSL_CTX_set_cipher_list(rc, ciphers) == 1);
    SSL *raw = SSL_new(rc);
    BIO *in = BIO_new(BIO_s_mem()), *out = BIO_new(BIO_s_mem());
    REQUIRE(raw && in && out);
    BIO_set_mem_eof_return(in, -1);
    SSL_set_bio(raw, in, out);
    SSL_set_connect_state(raw);
    rng_cur = RNG_CLIENT;
    (void)SSL_do_handshake(raw);
    char *p = NULL;
    long n = BIO_get_mem_data(out, &p);
    REQUIRE(n > 0);
    static const uint8_t hdr[4] = {0, 0, 0, 0};
    seed_bytes(dir, name, hdr, p, (size_t)n);
    SSL_free(raw);
    SSL_CTX_free(rc);
    ERR_clear_error();
}

#define SEED(dir, name, hdr, lit) seed_bytes(dir, name, hdr, lit, sizeof(lit) - 1)
#define SEED_TAPE(dir, name, hdr, lit) seed_tape(dir, name, hdr, lit, sizeof(lit) - 1)

static void write_seeds(const char *dir) {
    seed_streams(dir, CLIENT_INSECURE, SERVER_PLAIN, 0, "tls13-insecure");
    seed_streams(dir, CLIENT_CA, SERVER_PLAIN, 1, "tls13-ca-ip");
    seed_streams(dir, CLIENT_MTLS, SERVER_REQUIRED, 0, "tls13-mtls");
    seed_tls12(dir, true);
    seed_tls12(dir, false);
    seed_client_hello(dir, "client-hello-tls10", TLS1_VERSION, NULL);
    seed_client_hello(dir, "client-hello-no-shared-cipher", TLS1_2_VERSION,
                      "AES128-SHA:@SECLEVEL=0");
    static const uint8_t srv[4] = {0, 0, 0, 0}, cli[4] = {1, 0, 0, 0},
                         bytewise[4] = {1, 0, 1, 0x5a};
    SEED(dir, "plain-http-request", srv, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    SEED(dir, "plain-http-answer", cli, "HTTP/1.1 400 Bad Request\r\n\r\n");
    SEED(dir, "truncated-record", srv, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03");
    SEED(dir, "sslv2-hello", srv, "\x80\x2e\x01\x03\x01\x00\x15\x00\x00\x00\x10");
    SEED(dir, "alert-bytewise", bytewise, "\x15\x03\x03\x00\x02\x02\x28");
    static const uint8_t clean[4] = {2, 0, 0, 0}, resume[4] = {2 | 0x80 | 1 << 2, 0, 0, 0},
                         req[4] = {2, 2, 0, 0}, mtls[4] = {2 | 3 << 2, 1, 0, 0},
                         name[4] = {2 | 1 << 2 | 3 << 4, 0, 0, 0};
    SEED(dir, "pair-clean", clean, "");
    SEED(dir, "pair-cert-required", req, "");
    SEED(dir, "pair-mtls-optional", mtls, "");
    SEED(dir, "pair-hostname-mismatch", name, "");
    SEED(dir, "pair-flip-serverhello", clean, "\x00\x80\x00\x30\x01");
    SEED(dir, "pair-inject-ccs-before-serverhello", clean, "\x00\x84\x02\x00");
    /* writes, a 16 KiB write, pumps with a pass per record, reads, shutdowns */
    SEED_TAPE(dir, "pair-data", clean,
              "\x00\x05hello\x02\x40\x04\x00\x00\x00\x07\x10\x01\x03"
              "abc\x05\x00\x06\x02\x08\x09");
    SEED_TAPE(dir, "pair-flip-appdata", clean, "\x00\x05hello\x04\x80\x00\x08\x01\x07\x20");
    SEED_TAPE(dir, "pair-resume", resume, "\x0b");
    SEED_TAPE(dir, "pair-resume-flip-clienthello", resume, "\x0b\x80\x00\x40\x01");
}
