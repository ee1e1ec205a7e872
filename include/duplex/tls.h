/*
 * duplex/tls.h - TLS configuration for servers (wss:// endpoints) and clients.
 *
 * The configs are plain value types: zero means default, every string is a path or
 * a name that duplex reads while it builds a dx_tls_ctx (the caller may free it
 * afterwards); a context is what servers, clients and streams use. The engine
 * itself (OpenSSL 3 through memory BIOs, no sockets) is private; docs/tls.md describes what it does
 * and which errors it reports (DX_ETLS_* in docs/errors.md).
 *
 * What duplex always does, with no option to change it:
 *   - TLS 1.2 and TLS 1.3 only;
 *   - ALPN "http/1.1" (offered by the client, chosen by the server when offered);
 *   - session resumption: tickets (TLS 1.2 and 1.3) and, for TLS 1.2, a server
 *     session cache; the client keeps the last session per server (host and port);
 *   - a client verifies the server unless `insecure` is set: the chain against the
 *     CA file or the system store, then the host name (SAN / CN) or, when the host
 *     is an IP literal, the IP address (SAN iPAddress). SNI is sent for names only.
 *
 * Thread safety: the structs are read only while a context is created.
 */
#ifndef DUPLEX_TLS_H
#define DUPLEX_TLS_H

#include "duplex/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One server certificate: a PEM chain (leaf first) and its PEM private key. */
typedef struct dx_tls_cert {
    const char *cert_file;   /* PEM: the leaf, then intermediates; required */
    const char *key_file;    /* PEM: the leaf's private key (unencrypted); required */
    const char *server_name; /* SNI name it answers; NULL: the names in the cert
                                (subjectAltName DNS entries, else the CN, with
                                "*.example.com" wildcards) */
} dx_tls_cert;

/* Whether a server asks clients for a certificate (mutual TLS). */
typedef enum dx_tls_client_auth {
    DX_TLS_CLIENT_AUTH_NONE = 0, /* do not ask (default) */
    DX_TLS_CLIENT_AUTH_OPTIONAL, /* ask; a client without one is accepted, one that
                                    sends a certificate that fails verification is not */
    DX_TLS_CLIENT_AUTH_REQUIRED, /* ask and refuse a client without a valid one
                                    (DX_ETLS_CERT_REQUIRED) */
} dx_tls_client_auth;

/* Server side. */
typedef struct dx_tls_server_config {
    const dx_tls_cert *certs;       /* at least one; certs[0] is the default, used when
                                       the client sends no SNI or a name no cert has */
    size_t cert_count;              /* entries in certs */
    dx_tls_client_auth client_auth; /* default: NONE */
    const char *client_ca_file;     /* PEM CAs that sign client certificates; required
                                       unless client_auth is NONE */
} dx_tls_server_config;

/* Client side. */
typedef struct dx_tls_client_config {
    const char *ca_file;   /* PEM CAs to trust; NULL: the system store */
    const char *cert_file; /* optional client certificate chain (PEM) */
    const char *key_file;  /* its private key (PEM); required with cert_file */
    bool insecure;         /* true: no verification at all (chain, name, dates);
                              for tests against self-signed servers only */
} dx_tls_client_config;

/* ---- contexts: the configuration loaded once, shared by connections ------------ */

/* A loaded configuration (an OpenSSL SSL_CTX per certificate, the session cache).
 * Reference counted; connections hold their own reference. Thread-safe: one context
 * may serve connections on every loop (its session cache is locked). */
typedef struct dx_tls_ctx dx_tls_ctx;

/*
 * Build a server context from @cfg: load every certificate chain and key, and the
 * client CA file when client_auth is not NONE.
 *
 * Returns 0 and sets *@out, or:
 *   DX_EINVAL       no certificate, a NULL file name, client auth without a CA file
 *   DX_ETLS_CONFIG  a file could not be read or parsed, or a key does not match its
 *                   certificate (OpenSSL's reason is in its error queue until the
 *                   next TLS call on this thread)
 *   DX_ENOMEM
 */
DX_API int dx_tls_ctx_create_server(dx_tls_ctx **out, const dx_tls_server_config *cfg);

/*
 * Build a client context from @cfg (NULL: verify against the system store, no client
 * certificate). Returns 0 and sets *@out, or DX_EINVAL (cert_file without key_file
 * or the reverse), DX_ETLS_CONFIG (a file could not be loaded, or the system store
 * could not be set up), DX_ENOMEM.
 */
DX_API int dx_tls_ctx_create_client(dx_tls_ctx **out, const dx_tls_client_config *cfg);

/* Take another reference (for a second owner). Returns @ctx. Any thread. */
DX_API dx_tls_ctx *dx_tls_ctx_ref(dx_tls_ctx *ctx);

/* Drop a reference; connections keep the context alive until they are gone. NULL is
 * a no-op. Any thread. */
DX_API void dx_tls_ctx_release(dx_tls_ctx *ctx);

#ifdef __cplusplus
}
#endif
#endif /* DUPLEX_TLS_H */
