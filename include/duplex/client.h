/*
 * duplex/client.h - a WebSocket client on a dx_loop, with the browser API's semantics.
 *
 *   dx_client_connect(url)  CONNECTING: resolve the host (off the loop thread), connect
 *                           (through an HTTP CONNECT proxy if one applies), send the
 *                           upgrade request, check the answer (RFC 6455 §4.1)
 *   on_open                 OPEN
 *   dx_conn_close           CLOSING; the server closes TCP; on_close (clean)
 *   failure at any point    on_error(reason) then on_close(1006, not clean)
 *
 * Exactly one on_close per connection. dx_conn_send while CONNECTING fails with
 * DX_ECONNECTING (the browser's InvalidStateError). dx_conn_close validates like the
 * browser: 1000 or 3000-4999, reason <= 123 bytes of UTF-8.
 *
 * Threads: loop-thread only (name resolution runs on a short-lived thread of its own
 * and reports back through dx_loop_post).
 */
#ifndef DUPLEX_CLIENT_H
#define DUPLEX_CLIENT_H

#include "duplex/conn.h"
#include "duplex/deflate.h"
#include "duplex/http.h"
#include "duplex/tls.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Opt-in reconnection. When a connection ends without the application having closed
 * it (dx_conn_close or dx_conn_abort), a NEW connection to the same URL, with the same
 * options, callbacks and user pointer, is created right after on_close returns and
 * starts after a delay: min_ms * 2^(n-1) for the n-th consecutive attempt, capped at
 * max_ms, times a random factor in [0.5, 1] (jitter, so that many clients do not
 * return at once). A connection that opens resets n. on_reconnect receives the new
 * connection. No reconnection after max_attempts consecutive failures, nor after the
 * server refused the handshake with a 4xx status other than 408 and 429 (it would
 * refuse again). */
typedef struct dx_reconnect {
    bool enabled;
    uint32_t min_ms;       /* default 500 ms */
    uint32_t max_ms;       /* default 30 s */
    unsigned max_attempts; /* 0: no limit */
} dx_reconnect;

#define DX_DEFAULT_RECONNECT_MIN_MS 500u
#define DX_DEFAULT_RECONNECT_MAX_MS 30000u

typedef struct dx_client_options {
    const char *const *protocols; /* subprotocols to offer, in preference order */
    size_t num_protocols;
    bool protocol_optional;        /* accept a server that answers without choosing one
                                      of them (RFC 6455 allows it); false, the default:
                                      fail the handshake with DX_EHS_NO_PROTOCOL, as a
                                      browser does */
    const char *origin;            /* Origin header; NULL: none */
    const dx_http_header *headers; /* extra request headers (Authorization, Cookie...) */
    size_t num_headers;
    /* Limits, timeouts (timeouts.handshake_ms covers the whole of CONNECTING:
       resolution, connect, proxy, TLS, handshake), send policy and compression: with
       conn.compression.deflate set, permessage-deflate is offered with it and used
       when the server agrees; a malformed answer fails the handshake with
       DX_EDEFLATE_BAD_ANSWER. */
    dx_conn_options conn;
    /*
     * HTTP CONNECT proxy, "http://[user:pass@]host[:port]" (default port 1080, as
     * curl; user:pass is sent as Basic authentication). NULL: take it from the
     * environment -- https_proxy for wss://, http_proxy for ws://, then all_proxy
     * (each lower case first, then upper case; but never HTTP_PROXY, which a CGI
     * request can set, as curl) -- unless no_proxy (comma-separated host names,
     * domain suffixes, IP literals, or "*") matches the target host. "": direct.
     */
    const char *proxy;
    bool no_env_proxy; /* ignore the proxy environment variables */

    /* wss://: how to verify the server (NULL: against the system's CAs, with the host
       name or IP address checked) and an optional client certificate. The files are
       loaded once, by dx_client_connect. */
    const dx_tls_client_config *tls;

    dx_reconnect reconnect;        /* off unless reconnect.enabled */
    const dx_allocator *allocator; /* every connection's memory (OpenSSL's aside); NULL:
                                      the loop's. Must outlive the connections */
} dx_client_options;

/*
 * Open a connection to @url: a ws:// or wss:// URL (http:// and https:// mean the same,
 * as in a browser), read as a browser reads it (url.h). @opts, @cb and the strings
 * they point to are copied. @user is the connection's user pointer. On success *@out
 * is the connection, in CONNECTING; every outcome is then reported through the
 * callbacks (on_open, or on_error + on_close), never during this call.
 *
 * Returns 0, or (with nothing created and no callback to come):
 *   DX_EURL_*      a malformed URL (a fragment, a bad scheme, host, port)
 *   DX_EHS_BAD_URL a request target over 8 KiB
 *   DX_ETLS_CONFIG a CA file or client certificate could not be loaded (wss://)
 *   DX_EPROXY_URL  a malformed proxy URL (option or environment)
 *   DX_EINVAL      a NULL argument, or a protocol, origin or header that the
 *                  request cannot carry (dx_handshake_write_request's checks),
 *                  or deflate window bits or levels out of range
 *   DX_ENOMEM
 */
DX_API int dx_client_connect(dx_conn **out, dx_loop *loop, const char *url,
                             const dx_client_options *opts, const dx_conn_callbacks *cb,
                             void *user);

#ifdef __cplusplus
}
#endif
#endif /* DUPLEX_CLIENT_H */
