/*
 * The TLS engine: OpenSSL 3 through two memory BIOs per connection (see tls.h).
 *
 * A server context holds one SSL_CTX per certificate, all configured alike; the
 * SNI callback moves a connection to the SSL_CTX whose certificate matches. The
 * first one stays the "session context", so tickets and the TLS 1.2 session cache
 * work whichever certificate was chosen. A client context holds one SSL_CTX and a
 * small cache of the last session per host, filled by OpenSSL's new-session
 * callback (TLS 1.3 tickets arrive after the handshake, while reading).
 */
#include "tls/tls.h"

#include <arpa/inet.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ALPN: duplex only speaks HTTP/1.1 before the upgrade. */
static const unsigned char alpn_http11[] = "\x08http/1.1";
#define ALPN_LEN (sizeof alpn_http11 - 1)

/* The session id context ties TLS 1.2 sessions to this application. */
static const unsigned char sid_ctx[] = "duplex";

#define SESSION_SLOTS 16 /* servers (host and port) whose last session a client context keeps */

typedef struct session_slot {
    char *key;         /* owned copy of "host:port"; NULL: free slot */
    SSL_SESSION *sess; /* one reference owned by the slot */
    uint64_t stamp;    /* last store, for replacing the oldest */
} session_slot;

struct dx_tls_ctx {
    atomic_int refs;      /* the creator's plus one per connection */
    bool server;          /* server or client context */
    bool verify;          /* client: !insecure; server: client certificates asked */
    size_t count;         /* SSL_CTXs in ctxs (1 on a client) */
    SSL_CTX **ctxs;       /* server: one per certificate, [0] the default */
    char **names;         /* server: explicit SNI names per cert (NULL: from the cert) */
    pthread_mutex_t lock; /* guards sessions and clock (client) */
    session_slot sessions[SESSION_SLOTS];
    uint64_t clock; /* stamps for sessions */
};

struct dx_tls_conn {
    dx_tls_ctx *ctx;   /* one reference */
    SSL *ssl;          /* owns rbio and wbio */
    BIO *rbio;         /* ciphertext from the peer, fed by dx__tls_feed */
    BIO *wbio;         /* ciphertext for the peer, drained by dx__tls_consume */
    char *host;        /* client: the host as given (brackets stripped) */
    char *session_key; /* client: "host:port", in host's allocation */
    int err;           /* sticky error, 0 while healthy */
    int alert;         /* last fatal alert read from the peer, -1 if none */
    bool saw_input;    /* the first byte was checked for plain HTTP */
    bool established;
    bool shutdown_sent;
    bool peer_closed;
};

/* ---- context ------------------------------------------------------------ */

static char *str_dup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* Record fatal alerts the peer sends; OpenSSL reports them as "alert N" errors,
 * but the info callback also sees alerts that arrive while we are not failing. */
static void info_cb(const SSL *ssl, int where, int ret) {
    /* SSL_CB_READ_ALERT shares its SSL_CB_ALERT bit with SSL_CB_WRITE_ALERT */
    if ((where & SSL_CB_READ_ALERT) != SSL_CB_READ_ALERT)
        return;
    dx_tls_conn *t = SSL_get_app_data(ssl);
    if (t && (ret >> 8) == SSL3_AL_FATAL)
        t->alert = ret & 0xff;
}

static int alpn_select_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                          const unsigned char *in, unsigned int inlen, void *arg) {
    (void)ssl;
    (void)arg;
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, alpn_http11, (unsigned)ALPN_LEN, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK; /* no ALPN: carry on without one */
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static bool cert_matches(const dx_tls_ctx *c, size_t i, const char *name) {
    if (c->names[i])
        return strcasecmp(c->names[i], name) == 0;
    X509 *x = SSL_CTX_get0_certificate(c->ctxs[i]);
    return x &&
           X509_check_host(x, name, strlen(name), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) == 1;
}

static int sni_cb(SSL *ssl, int *al, void *arg) {
    (void)al;
    dx_tls_ctx *c = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!name)
        return SSL_TLSEXT_ERR_NOACK; /* no SNI: the default certificate */
    for (size_t i = 0; i < c->count; i++) {
        if (cert_matches(c, i, name)) {
            if (i != 0 && SSL_set_SSL_CTX(ssl, c->ctxs[i]) == NULL)
                return SSL_TLSEXT_ERR_ALERT_FATAL;
            return SSL_TLSEXT_ERR_OK;
        }
    }
    return SSL_TLSEXT_ERR_NOACK; /* unknown name: the default certificate */
}

/* Settings every SSL_CTX of ours shares. */
static int ctx_common(SSL_CTX *s) {
    if (SSL_CTX_set_min_proto_version(s, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(s, TLS1_3_VERSION) != 1)
        return DX_ETLS_CONFIG;
    SSL_CTX_set_options(s, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    /* Idle connections give their 34 KiB of record buffers back. */
    SSL_CTX_set_mode(s, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_info_callback(s, info_cb);
    return 0;
}

static int server_ctx_one(dx_tls_ctx *c, SSL_CTX *s, const dx_tls_cert *cert,
                          const dx_tls_server_config *cfg) {
    int rc = ctx_common(s);
    if (rc)
        return rc;
    SSL_CTX_set_options(s, SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(s, cert->cert_file) != 1 ||
        SSL_CTX_use_PrivateKey_file(s, cert->key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(s) != 1)
        return DX_ETLS_CONFIG;
    if (SSL_CTX_set_session_id_context(s, sid_ctx, sizeof sid_ctx - 1) != 1)
        return DX_ETLS_CONFIG;
    SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_alpn_select_cb(s, alpn_select_cb, NULL);
    SSL_CTX_set_tlsext_servername_callback(s, sni_cb);
    SSL_CTX_set_tlsext_servername_arg(s, c);
    if (cfg->client_auth != DX_TLS_CLIENT_AUTH_NONE) {
        if (SSL_CTX_load_verify_locations(s, cfg->client_ca_file, NULL) != 1)
            return DX_ETLS_CONFIG;
        STACK_OF(X509_NAME) *cas = SSL_load_client_CA_file(cfg->client_ca_file);
        if (!cas)
            return DX_ETLS_CONFIG;
        SSL_CTX_set_client_CA_list(s, cas); /* takes ownership */
        int mode = SSL_VERIFY_PEER;
        if (cfg->client_auth == DX_TLS_CLIENT_AUTH_REQUIRED)
            mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        SSL_CTX_set_verify(s, mode, NULL);
    }
    return 0;
}

static dx_tls_ctx *ctx_alloc(size_t count) {
    dx_tls_ctx *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->ctxs = calloc(count, sizeof(*c->ctxs));
    c->names = calloc(count, sizeof(*c->names));
    if (!c->ctxs || !c->names || pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c->ctxs);
        free(c->names);
        free(c);
        return NULL;
    }
    atomic_init(&c->refs, 1);
    c->count = count;
    return c;
}

static void ctx_free(dx_tls_ctx *c) {
    for (size_t i = 0; i < c->count; i++) {
        SSL_CTX_free(c->ctxs[i]);
        free(c->names[i]);
    }
    for (size_t i = 0; i < SESSION_SLOTS; i++) {
        free(c->sessions[i].key);
        SSL_SESSION_free(c->sessions[i].sess);
    }
    pthread_mutex_destroy(&c->lock);
    free(c->ctxs);
    free(c->names);
    free(c);
}

static void ctx_unref(dx_tls_ctx *c) {
    if (c && atomic_fetch_sub(&c->refs, 1) == 1)
        ctx_free(c);
}

int dx_tls_ctx_create_server(dx_tls_ctx **out, const dx_tls_server_config *cfg) {
    if (!cfg || !cfg->certs || cfg->cert_count == 0)
        return DX_EINVAL;
    for (size_t i = 0; i < cfg->cert_count; i++)
        if (!cfg->certs[i].cert_file || !cfg->certs[i].key_file)
            return DX_EINVAL;
    if (cfg->client_auth != DX_TLS_CLIENT_AUTH_NONE && !cfg->client_ca_file)
        return DX_EINVAL;
    if ((unsigned)cfg->client_auth > DX_TLS_CLIENT_AUTH_REQUIRED)
        return DX_EINVAL;

    dx_tls_ctx *c = ctx_alloc(cfg->cert_count);
    if (!c)
        return DX_ENOMEM;
    c->server = true;
    c->verify = cfg->client_auth != DX_TLS_CLIENT_AUTH_NONE;
    int rc = 0;
    for (size_t i = 0; i < cfg->cert_count; i++) {
        c->ctxs[i] = SSL_CTX_new(TLS_server_method());
        if (!c->ctxs[i]) {
            rc = DX_ENOMEM;
            goto err_free_ctx;
        }
        if (cfg->certs[i].server_name && !(c->names[i] = str_dup(cfg->certs[i].server_name))) {
            rc = DX_ENOMEM;
            goto err_free_ctx;
        }
        rc = server_ctx_one(c, c->ctxs[i], &cfg->certs[i], cfg);
        if (rc)
            goto err_free_ctx;
    }
    *out = c;
    return 0;
err_free_ctx:
    ctx_free(c);
    return rc;
}

/* OpenSSL hands us each new session (we own one reference when we return 1). */
static int new_session_cb(SSL *ssl, SSL_SESSION *sess) {
    dx_tls_conn *t = SSL_get_app_data(ssl);
    if (!t || !t->session_key || !SSL_SESSION_is_resumable(sess))
        return 0;
    dx_tls_ctx *c = t->ctx;
    pthread_mutex_lock(&c->lock);
    session_slot *slot = NULL;
    for (size_t i = 0; i < SESSION_SLOTS && !slot; i++)
        if (c->sessions[i].key && strcmp(c->sessions[i].key, t->session_key) == 0)
            slot = &c->sessions[i];
    if (!slot) {
        slot = &c->sessions[0];
        for (size_t i = 0; i < SESSION_SLOTS; i++) {
            if (!c->sessions[i].key) {
                slot = &c->sessions[i];
                break;
            }
            if (c->sessions[i].stamp < slot->stamp)
                slot = &c->sessions[i];
        }
        char *k = str_dup(t->session_key);
        if (!k) {
            pthread_mutex_unlock(&c->lock);
            return 0;
        }
        free(slot->key);
        slot->key = k;
    }
    SSL_SESSION_free(slot->sess);
    slot->sess = sess;
    slot->stamp = ++c->clock;
    pthread_mutex_unlock(&c->lock);
    return 1;
}

int dx_tls_ctx_create_client(dx_tls_ctx **out, const dx_tls_client_config *cfg) {
    static const dx_tls_client_config defaults = {0};
    if (!cfg)
        cfg = &defaults;
    if (!cfg->cert_file != !cfg->key_file)
        return DX_EINVAL;
    dx_tls_ctx *c = ctx_alloc(1);
    if (!c)
        return DX_ENOMEM;
    c->verify = !cfg->insecure;
    int rc;
    SSL_CTX *s = c->ctxs[0] = SSL_CTX_new(TLS_client_method());
    if (!s) {
        rc = DX_ENOMEM;
        goto err_free_ctx;
    }
    rc = ctx_common(s);
    if (rc)
        goto err_free_ctx;
    rc = DX_ETLS_CONFIG;
    if (c->verify) {
        if (cfg->ca_file ? SSL_CTX_load_verify_locations(s, cfg->ca_file, NULL) != 1
                         : SSL_CTX_set_default_verify_paths(s) != 1)
            goto err_free_ctx;
        SSL_CTX_set_verify(s, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(s, SSL_VERIFY_NONE, NULL);
    }
    if (cfg->cert_file && (SSL_CTX_use_certificate_chain_file(s, cfg->cert_file) != 1 ||
                           SSL_CTX_use_PrivateKey_file(s, cfg->key_file, SSL_FILETYPE_PEM) != 1 ||
                           SSL_CTX_check_private_key(s) != 1))
        goto err_free_ctx;
    if (SSL_CTX_set_alpn_protos(s, alpn_http11, (unsigned)ALPN_LEN) != 0) /* 0 is success */
        goto err_free_ctx;
    SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(s, new_session_cb);
    *out = c;
    return 0;
err_free_ctx:
    ctx_free(c);
    return rc;
}

void dx_tls_ctx_release(dx_tls_ctx *ctx) {
    ctx_unref(ctx);
}

dx_tls_ctx *dx_tls_ctx_ref(dx_tls_ctx *ctx) {
    atomic_fetch_add(&ctx->refs, 1);
    return ctx;
}

/* ---- connection --------------------------------------------------------- */

/* Client side: the check (name or IP), SNI for names, and the session to resume. */
static int conn_client_setup(dx_tls_conn *t, const char *host, uint16_t port) {
    size_t len = strlen(host);
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
        host++;
        len -= 2;
    }
    if (len == 0)
        return DX_EINVAL;
    /* the host, then "host:port": a session is offered only to the server that
     * issued it, not to another service on the same host */
    t->host = malloc(2 * len + 8);
    if (!t->host)
        return DX_ENOMEM;
    memcpy(t->host, host, len);
    t->host[len] = 0;
    t->session_key = t->host + len + 1;
    snprintf(t->session_key, len + 7, "%.*s:%u", (int)len, host, (unsigned)port);

    unsigned char addr[16];
    bool ip = inet_pton(AF_INET, t->host, addr) == 1 || inet_pton(AF_INET6, t->host, addr) == 1;
    if (ip) {
        if (t->ctx->verify && X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), t->host) != 1)
            return DX_ENOMEM;
    } else {
        if (t->ctx->verify) {
            SSL_set_hostflags(t->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            if (SSL_set1_host(t->ssl, t->host) != 1)
                return DX_ENOMEM;
        }
        if (SSL_set_tlsext_host_name(t->ssl, t->host) != 1)
            return DX_EINVAL; /* longer than 255 bytes */
    }

    dx_tls_ctx *c = t->ctx;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < SESSION_SLOTS; i++) {
        if (c->sessions[i].key && strcmp(c->sessions[i].key, t->session_key) == 0) {
            SSL_set_session(t->ssl, c->sessions[i].sess); /* takes its own reference */
            break;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return 0;
}

int dx__tls_conn_create(dx_tls_conn **out, dx_tls_ctx *ctx, const char *host, uint16_t port) {
    if (!ctx || ctx->server != !host)
        return DX_EINVAL;
    dx_tls_conn *t = calloc(1, sizeof(*t));
    if (!t)
        return DX_ENOMEM;
    t->alert = -1;
    t->ctx = ctx;
    atomic_fetch_add(&ctx->refs, 1);
    int rc = DX_ENOMEM;
    t->ssl = SSL_new(ctx->ctxs[0]);
    if (!t->ssl)
        goto err_free_conn;
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (!t->rbio || !t->wbio) {
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        goto err_free_conn;
    }
    BIO_set_mem_eof_return(t->rbio, -1); /* empty means "retry", never EOF */
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    SSL_set_app_data(t->ssl, t);
    if (ctx->server) {
        SSL_set_accept_state(t->ssl);
    } else {
        SSL_set_connect_state(t->ssl);
        rc = conn_client_setup(t, host, port);
        if (rc)
            goto err_free_conn;
    }
    *out = t;
    return 0;
err_free_conn:
    SSL_free(t->ssl);
    free(t->host);
    ctx_unref(ctx);
    free(t);
    ERR_clear_error();
    return rc;
}

void dx__tls_conn_destroy(dx_tls_conn *t) {
    if (!t)
        return;
    /* OpenSSL marks the session of a connection freed without a close_notify
     * "bad" (not resumable). A WebSocket ends with its own closing handshake and
     * rarely with a close_notify, so keep healthy sessions resumable; a failed
     * connection's session was already dropped by OpenSSL's fatal alert. */
    if (!t->err && t->established)
        SSL_set_shutdown(t->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(t->ssl); /* frees both BIOs */
    free(t->host);
    ctx_unref(t->ctx);
    free(t);
}

/* ---- errors ------------------------------------------------------------- */

/* SSL_get_error needs an empty error queue before the call it judges. Ours is
 * always left empty, so clearing is needed only when something else on this
 * thread left an error; peeking is cheaper than clearing its sixteen slots. */
static void clear_errors(void) {
    if (ERR_peek_error() != 0)
        ERR_clear_error();
}

static int map_verify(long v) {
    switch (v) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_UNTRUSTED:
        return DX_ETLS_UNKNOWN_CA;
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        return DX_ETLS_SELF_SIGNED;
    case X509_V_ERR_CERT_HAS_EXPIRED:
        return DX_ETLS_CERT_EXPIRED;
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return DX_ETLS_CERT_NOT_YET_VALID;
    case X509_V_ERR_HOSTNAME_MISMATCH:
        return DX_ETLS_HOSTNAME;
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        return DX_ETLS_IP;
    default:
        return DX_ETLS_CERT_INVALID;
    }
}

/* Which check failed, from the verify result and OpenSSL's first error. */
static int map_error(dx_tls_conn *t, int sslerr) {
    unsigned long e = ERR_peek_error();
    int lib = ERR_GET_LIB(e), reason = ERR_GET_REASON(e);
    ERR_clear_error(); /* leave nothing for the next connection on this thread */
    if (sslerr == SSL_ERROR_SSL && t->ctx->verify) {
        long v = SSL_get_verify_result(t->ssl);
        if (v != X509_V_OK)
            return map_verify(v);
    }
    if (sslerr == SSL_ERROR_SSL && lib == ERR_LIB_SSL) {
        if (reason >= SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256) {
            if (t->alert < 0)
                t->alert = reason - SSL_AD_REASON_OFFSET;
            return DX_ETLS_ALERT;
        }
        switch (reason) {
        case SSL_R_UNSUPPORTED_PROTOCOL:
        case SSL_R_NO_PROTOCOLS_AVAILABLE:
        case SSL_R_VERSION_TOO_LOW:
        case SSL_R_VERSION_TOO_HIGH:
        case SSL_R_WRONG_SSL_VERSION:
            return DX_ETLS_VERSION;
        case SSL_R_NO_SHARED_CIPHER:
        case SSL_R_NO_CIPHERS_AVAILABLE:
            return DX_ETLS_CIPHER;
        case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
            return DX_ETLS_CERT_REQUIRED;
        case SSL_R_CERTIFICATE_VERIFY_FAILED:
            return DX_ETLS_CERT_INVALID;
        default:
            break;
        }
    }
    if (lib == ERR_LIB_SSL && reason == ERR_R_MALLOC_FAILURE)
        return DX_ENOMEM;
    if (t->alert >= 0)
        return DX_ETLS_ALERT;
    return t->established ? DX_ETLS_PROTOCOL : DX_ETLS_HANDSHAKE;
}

static int set_err(dx_tls_conn *t, int err) {
    t->err = err;
    return err;
}

/* After an OpenSSL call returned @r <= 0: wait for input, the peer's close, or fail. */
static int settle(dx_tls_conn *t, int r) {
    int e = SSL_get_error(t->ssl, r);
    switch (e) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        clear_errors();
        return DX_EINCOMPLETE;
    case SSL_ERROR_ZERO_RETURN:
        clear_errors();
        t->peer_closed = true;
        return DX_ECLOSED;
    default:
        return set_err(t, map_error(t, e));
    }
}

/* ---- bytes in, bytes out ------------------------------------------------ */

int dx__tls_feed(dx_tls_conn *t, dx_span cipher, size_t *used) {
    *used = 0;
    if (t->err)
        return t->err;
    if (cipher.len == 0)
        return 0;
    if (!t->saw_input) {
        /* A TLS stream starts with a record type (0x14..0x18); HTTP starts with
         * a method ("GET ", "POST") or, from a server, "HTTP/1.1". */
        t->saw_input = true;
        if (cipher.ptr[0] >= 'A' && cipher.ptr[0] <= 'Z')
            return set_err(t, DX_ETLS_PLAIN_HTTP);
    }
    size_t done = 0;
    while (done < cipher.len) {
        size_t n = cipher.len - done;
        if (n > INT_MAX)
            n = INT_MAX;
        int w = BIO_write(t->rbio, cipher.ptr + done, (int)n);
        if (w <= 0) {
            ERR_clear_error();
            *used = done;
            return DX_ENOMEM;
        }
        done += (size_t)w;
    }
    *used = done;
    return 0;
}

int dx__tls_handshake(dx_tls_conn *t) {
    if (t->err)
        return t->err;
    if (t->established)
        return 0;
    clear_errors();
    int r = SSL_do_handshake(t->ssl);
    if (r == 1) {
        t->established = true;
        return 0;
    }
    int rc = settle(t, r);
    if (rc == DX_ECLOSED) /* close_notify before the handshake ended */
        rc = set_err(t, DX_ETLS_HANDSHAKE);
    return rc;
}

int dx__tls_read(dx_tls_conn *t, uint8_t *plain, size_t cap, size_t *n) {
    *n = 0;
    if (t->err)
        return t->err;
    if (t->peer_closed)
        return DX_ECLOSED;
    if (!t->established) {
        int rc = dx__tls_handshake(t);
        if (rc)
            return rc;
    }
    if (cap == 0)
        return DX_EINVAL;
    /* Nothing decrypted and no ciphertext waiting: SSL_read could only say "want
     * read", at the price of a trip through its state machine and error queue.
     * (A partial record already taken from the BIO cannot complete without input
     * either.) The runtime asks this before every recv, so it pays. */
    if (SSL_pending(t->ssl) == 0 && BIO_ctrl_pending(t->rbio) == 0)
        return DX_EINCOMPLETE;
    clear_errors();
    size_t got = 0;
    int r = SSL_read_ex(t->ssl, plain, cap, &got);
    if (r == 1) {
        *n = got;
        return 0;
    }
    return settle(t, r);
}

bool dx__tls_pending(const dx_tls_conn *t) {
    if (t->err || t->peer_closed)
        return false;
    return SSL_pending(t->ssl) > 0 || BIO_ctrl_pending(t->rbio) > 0;
}

int dx__tls_write(dx_tls_conn *t, dx_span plain, size_t *used) {
    *used = 0;
    if (t->err)
        return t->err;
    if (!t->established || t->shutdown_sent)
        return DX_ESTATE;
    if (plain.len == 0)
        return 0;
    clear_errors();
    size_t w = 0;
    int r = SSL_write_ex(t->ssl, plain.ptr, plain.len, &w);
    if (r != 1) {
        int rc = settle(t, r);
        /* A memory BIO never refuses a write; WANT_* would mean we lost bytes. */
        return rc == DX_EINCOMPLETE ? set_err(t, DX_ETLS_PROTOCOL) : rc;
    }
    *used = w;
    return 0;
}

dx_span dx__tls_output(const dx_tls_conn *t) {
    char *p = NULL;
    long len = BIO_get_mem_data(t->wbio, &p);
    if (len <= 0)
        return (dx_span){NULL, 0};
    return (dx_span){(const uint8_t *)p, (size_t)len};
}

void dx__tls_consume(dx_tls_conn *t, size_t n) {
    /* A memory BIO has no "skip": read into a scratch buffer. The copy is the
     * price of letting OpenSSL own the output buffer. */
    uint8_t scratch[4096];
    while (n > 0) {
        int want = n > sizeof scratch ? (int)sizeof scratch : (int)n;
        int r = BIO_read(t->wbio, scratch, want);
        if (r <= 0)
            break;
        n -= (size_t)r;
    }
}

int dx__tls_shutdown(dx_tls_conn *t) {
    if (t->err)
        return t->err;
    if (t->shutdown_sent)
        return 0;
    t->shutdown_sent = true;
    if (!t->established)
        return 0; /* nothing to close cleanly: the caller just drops the socket */
    ERR_clear_error();
    (void)SSL_shutdown(t->ssl); /* 0: our close_notify is queued in wbio */
    ERR_clear_error();
    return 0;
}

bool dx__tls_peer_closed(const dx_tls_conn *t) {
    return t->peer_closed;
}

bool dx__tls_is_established(const dx_tls_conn *t) {
    return t->established;
}

dx_span dx__tls_alpn(const dx_tls_conn *t) {
    const unsigned char *p = NULL;
    unsigned int len = 0;
    SSL_get0_alpn_selected(t->ssl, &p, &len);
    return (dx_span){p, len};
}

bool dx__tls_session_reused(const dx_tls_conn *t) {
    return SSL_session_reused(t->ssl) == 1;
}

const char *dx__tls_server_name(const dx_tls_conn *t) {
    return SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name);
}

/* Alert descriptions (RFC 8446 §6 and RFC 5246 §7.2); OpenSSL 3.0's own table
 * says "unknown" for the TLS 1.3 ones. */
static const char *alert_text(int code) {
    switch (code) {
    case 0:
        return "close notify";
    case 10:
        return "unexpected message";
    case 20:
        return "bad record MAC";
    case 21:
        return "decryption failed";
    case 22:
        return "record overflow";
    case 40:
        return "handshake failure";
    case 42:
        return "bad certificate";
    case 43:
        return "unsupported certificate";
    case 44:
        return "certificate revoked";
    case 45:
        return "certificate expired";
    case 46:
        return "certificate unknown";
    case 47:
        return "illegal parameter";
    case 48:
        return "unknown CA";
    case 49:
        return "access denied";
    case 50:
        return "decode error";
    case 51:
        return "decrypt error";
    case 70:
        return "protocol version";
    case 71:
        return "insufficient security";
    case 80:
        return "internal error";
    case 86:
        return "inappropriate fallback";
    case 90:
        return "user canceled";
    case 100:
        return "no renegotiation";
    case 109:
        return "missing extension";
    case 110:
        return "unsupported extension";
    case 112:
        return "unrecognized name";
    case 113:
        return "bad certificate status response";
    case 115:
        return "unknown PSK identity";
    case 116:
        return "certificate required";
    case 120:
        return "no application protocol";
    default:
        return "unknown alert";
    }
}

const char *dx__tls_alert(const dx_tls_conn *t, int *code) {
    if (code)
        *code = t->alert;
    if (t->alert < 0)
        return NULL;
    return alert_text(t->alert);
}

const char *dx__tls_version(const dx_tls_conn *t) {
    return t->established ? SSL_get_version(t->ssl) : "unknown";
}
