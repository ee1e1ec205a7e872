/*
 * src/tls/tls.h - the TLS engine: OpenSSL 3 behind memory BIOs (private).
 *
 * The engine knows no sockets (docs/design.md). The runtime moves bytes:
 *
 *   socket --read--> dx__tls_feed (ciphertext in)
 *                    dx__tls_handshake until 0, then dx__tls_read (plaintext out)
 *   app/proto -----> dx__tls_write (plaintext in)
 *                    dx__tls_output / dx__tls_consume (ciphertext out) --write--> socket
 *
 * After every call that may produce ciphertext (feed+handshake, read, write,
 * shutdown) the runtime sends what dx__tls_output() shows: handshake messages,
 * alerts, session tickets and key updates come out there too.
 *
 * Errors are sticky: once a call fails with a DX_ETLS_* code, every later call
 * returns the same code, and dx__tls_output() may still hold the alert that tells
 * the peer why (send it, then close the socket).
 *
 * Thread safety: a dx_tls_ctx may be shared by connections on any number of
 * threads (its session cache is locked; it is reference counted). A dx_tls_conn
 * belongs to one thread at a time.
 */
#ifndef DX_SRC_TLS_H
#define DX_SRC_TLS_H

#include "duplex/base.h"
#include "duplex/tls.h"

typedef struct dx_tls_conn dx_tls_conn; /* one connection: an SSL with two memory BIOs */

/*
 * A connection on @ctx. On a client context @host is the name or IP literal the
 * user asked for (brackets around IPv6 allowed): it selects the check (name or IP
 * address) and the SNI (names only); @host and @port select the session to resume
 * (one per server, so another service on the same host never sees it). On a server
 * context @host must be NULL and @port is ignored.
 *
 * Returns 0 and sets *out, or DX_EINVAL (@host missing on a client, or given on a
 * server, or empty), DX_ENOMEM.
 */
int dx__tls_conn_create(dx_tls_conn **out, dx_tls_ctx *ctx, const char *host, uint16_t port);

/* Free the connection (no close_notify is sent: call dx__tls_shutdown first for
 * a clean close). NULL is a no-op. */
void dx__tls_conn_destroy(dx_tls_conn *t);

/*
 * Give the engine @cipher, bytes read from the socket. They are copied; *used is
 * set to the number taken (all of them, today). Nothing is decrypted yet: call
 * dx__tls_handshake or dx__tls_read.
 *
 * On a server, the very first byte is checked: a TLS connection starts with a
 * handshake record (0x16); an upper-case ASCII letter is an HTTP request ("GET ",
 * "POST" ...), and on a client "HTTP" is a plain HTTP answer. Both fail at once.
 *
 * Returns 0, or:
 *   DX_ETLS_PLAIN_HTTP  the peer speaks plain HTTP (sticky)
 *   DX_ENOMEM           out of memory
 *   any sticky error of an earlier call
 */
int dx__tls_feed(dx_tls_conn *t, dx_span cipher, size_t *used);

/*
 * Advance the handshake with what was fed.
 *
 * Returns 0 when the handshake is complete (also on every later call), or:
 *   DX_EINCOMPLETE     not done yet: send dx__tls_output(), feed more, call again
 *   DX_ETLS_*          the handshake failed, and the code says which check:
 *                      UNKNOWN_CA, SELF_SIGNED, CERT_EXPIRED, CERT_NOT_YET_VALID,
 *                      HOSTNAME, IP, CERT_INVALID (the peer's certificate, as we
 *                      verified it), VERSION, CIPHER, CERT_REQUIRED, PLAIN_HTTP,
 *                      ALERT (the peer refused us: dx__tls_alert says why),
 *                      HANDSHAKE (anything else)
 *   DX_ENOMEM          out of memory
 * A failure may leave an alert in dx__tls_output(): send it before closing.
 */
int dx__tls_handshake(dx_tls_conn *t);

/*
 * Decrypt up to @cap bytes into @plain; *n is set to the number written.
 * Runs (or finishes) the handshake first if needed. Post-handshake messages
 * (TLS 1.3 session tickets, key updates) are handled here.
 *
 * Returns 0 with *n > 0, or:
 *   DX_EINCOMPLETE  no complete record is buffered: feed more (*n = 0)
 *   DX_ECLOSED      the peer sent close_notify: no more data will come (*n = 0)
 *   DX_ETLS_ALERT   the peer sent a fatal alert (dx__tls_alert says which); in
 *                   TLS 1.3 a client learns here that the server refused its
 *                   certificate
 *   DX_ETLS_PROTOCOL  a corrupt or unexpected record
 *   other DX_ETLS_* / DX_ENOMEM as for dx__tls_handshake
 */
int dx__tls_read(dx_tls_conn *t, uint8_t *plain, size_t cap, size_t *n);

/*
 * True when dx__tls_read can return bytes without any new input: decrypted bytes
 * are buffered in the SSL object (a large record partly read), or fed ciphertext
 * is still waiting in the input BIO. epoll cannot see either, so the runtime must
 * keep reading (or remember to) while this is true. After a dx__tls_read that
 * returned DX_EINCOMPLETE it is false.
 */
bool dx__tls_pending(const dx_tls_conn *t);

/*
 * Encrypt @plain (all of it: *used = plain.len on success) into the output.
 * Only after the handshake is complete.
 *
 * Returns 0, or DX_ESTATE (handshake not complete, or shutdown already started),
 * DX_ENOMEM, or a sticky error.
 */
int dx__tls_write(dx_tls_conn *t, dx_span plain, size_t *used);

/*
 * The ciphertext waiting to be sent. The span stays valid until the next call
 * on @t other than dx__tls_output / dx__tls_pending. Empty when nothing waits.
 */
dx_span dx__tls_output(const dx_tls_conn *t);

/* Drop the first @n bytes of dx__tls_output() (they were sent). @n is capped at
 * the output's length. */
void dx__tls_consume(dx_tls_conn *t, size_t n);

/*
 * Queue our close_notify (once; later calls do nothing). Send the output, then
 * either wait for the peer's close_notify (dx__tls_read returns DX_ECLOSED) or
 * close the socket.
 *
 * Returns 0, or a sticky error (no close_notify after a failure).
 */
int dx__tls_shutdown(dx_tls_conn *t);

/* True once the peer's close_notify has been read. */
bool dx__tls_peer_closed(const dx_tls_conn *t);

/* True once the handshake has completed. */
bool dx__tls_is_established(const dx_tls_conn *t);

/* The ALPN protocol agreed on ("http/1.1"), or an empty span. Valid while @t
 * lives. */
dx_span dx__tls_alpn(const dx_tls_conn *t);

/* True when the handshake resumed an earlier session (no full handshake). */
bool dx__tls_session_reused(const dx_tls_conn *t);

/* The SNI name the client sent (server side), or NULL. Valid while @t lives. */
const char *dx__tls_server_name(const dx_tls_conn *t);

/*
 * The last fatal alert the peer sent, as OpenSSL's long text ("unknown CA",
 * "certificate required", ...), or NULL when none arrived. @code (may be NULL)
 * receives its number (RFC 8446 §6). Static string.
 */
const char *dx__tls_alert(const dx_tls_conn *t, int *code);

/* The negotiated version ("TLSv1.3"), or "unknown" before the handshake. Static. */
const char *dx__tls_version(const dx_tls_conn *t);

#endif /* DX_SRC_TLS_H */
