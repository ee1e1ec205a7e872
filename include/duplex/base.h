/*
 * duplex/base.h - spans, allocator hooks, the error table and the random source.
 *
 * Everything in duplex returns 0 on success or a negative code. System errors pass
 * through as -errno (-1 .. -999); library errors live in the range below -1000 and
 * are generated, with their names and messages, from the one DX_ERRORS table.
 *
 * Thread safety: every function in this header is safe to call from any thread.
 */
#ifndef DUPLEX_BASE_H
#define DUPLEX_BASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(DX_BUILDING) && defined(__GNUC__)
#define DX_API __attribute__((visibility("default")))
#else
#define DX_API
#endif

/* A borrowed byte range. Who owns the bytes and how long they live is stated at
 * every function that hands one out. */
typedef struct dx_span {
    const uint8_t *ptr; /* first byte; may be NULL when len is 0 */
    size_t len;         /* number of bytes */
} dx_span;

/* A span over a NUL-terminated C string (NULL gives the empty span). */
DX_API dx_span dx_span_cstr(const char *s);

/* True when @a and @b hold the same bytes. */
DX_API bool dx_span_eq(dx_span a, dx_span b);

/* True when @a and @b are equal ignoring ASCII case (HTTP tokens). */
DX_API bool dx_span_eq_nocase(dx_span a, dx_span b);

/*
 * Allocator hooks. @free receives the size given to @alloc, so arenas work.
 * @alloc returns NULL on failure. A NULL allocator pointer anywhere in the API
 * means the C library's malloc/free.
 */
typedef struct dx_allocator {
    void *(*alloc)(size_t size, void *ctx);          /* size > 0 */
    void (*free)(void *ptr, size_t size, void *ctx); /* ptr may be NULL */
    void *ctx;                                       /* passed to both */
} dx_allocator;

/* The default allocator (malloc/free). Never NULL. */
DX_API const dx_allocator *dx_allocator_default(void);

/*
 * Source of unpredictable bytes: the client's Sec-WebSocket-Key and its per-frame
 * masking keys (RFC 6455 §5.3, §10.3). Fills @buf with @len bytes. Returns 0 or a
 * negative code; a failing source makes the operation that needed it fail.
 */
typedef struct dx_random {
    int (*fill)(uint8_t *buf, size_t len, void *ctx);
    void *ctx;
} dx_random;

/*
 * The default random source: the kernel's CSPRNG (getrandom(2)), read in blocks
 * of a few KiB into a thread-local pool so that a masking key does not cost a
 * system call. Never NULL.
 */
DX_API const dx_random *dx_random_default(void);

/* Fill @buf with @len bytes from the default source. Returns 0 or -errno. */
DX_API int dx_random_bytes(uint8_t *buf, size_t len);

/* clang-format off */
#define DX_ERRORS(X)                                                                        \
    /* general */                                                                           \
    X(NOMEM,            -1000, "out of memory")                                            \
    X(INVAL,            -1001, "invalid argument")                                         \
    X(STATE,            -1002, "not allowed in the current state")                         \
    X(LIMIT,            -1003, "configured limit exceeded")                                \
    X(NOTSUP,           -1004, "not supported by this build")                              \
    X(INCOMPLETE,       -1005, "more input is needed")                                     \
    X(NOSPACE,          -1006, "output buffer too small")                                  \
    /* HTTP/1.1 head parsing (RFC 9112) */                                                  \
    X(HTTP_HEAD_TOO_LARGE,   -1100, "HTTP head exceeds the size limit")                    \
    X(HTTP_TOO_MANY_HEADERS, -1101, "HTTP head has too many header fields")                \
    X(HTTP_NUL,              -1102, "NUL byte in HTTP head")                               \
    X(HTTP_BARE_CR,          -1103, "CR not followed by LF in HTTP head")                  \
    X(HTTP_BARE_LF,          -1104, "LF without CR in HTTP head")                          \
    X(HTTP_OBS_FOLD,         -1105, "obsolete line folding in HTTP head")                  \
    X(HTTP_BAD_METHOD,       -1106, "request method is not a token")                       \
    X(HTTP_BAD_TARGET,       -1107, "malformed request target")                            \
    X(HTTP_BAD_VERSION,      -1108, "malformed or unsupported HTTP version")               \
    X(HTTP_BAD_REQUEST_LINE, -1109, "malformed request line")                              \
    X(HTTP_BAD_STATUS_LINE,  -1110, "malformed status line")                               \
    X(HTTP_BAD_HEADER_NAME,  -1111, "header field name is not a token")                    \
    X(HTTP_BAD_HEADER_VALUE, -1112, "control character in header field value")            \
    X(HTTP_NO_COLON,         -1113, "header line without a colon")                         \
    X(HTTP_SPACE_BEFORE_COLON, -1114, "whitespace between header name and colon")          \
    /* opening handshake, server side (RFC 6455 §4.2.1) */                                  \
    X(HS_METHOD,             -1200, "handshake method is not GET")                         \
    X(HS_HTTP_VERSION,       -1201, "handshake needs HTTP/1.1 or later")                   \
    X(HS_NO_HOST,            -1202, "missing or repeated Host header")                     \
    X(HS_NO_UPGRADE,         -1203, "missing Upgrade: websocket")                          \
    X(HS_NO_CONNECTION,      -1204, "Connection header lacks the Upgrade token")           \
    X(HS_NO_KEY,             -1205, "missing Sec-WebSocket-Key")                           \
    X(HS_DUPLICATE_KEY,      -1206, "more than one Sec-WebSocket-Key")                     \
    X(HS_BAD_KEY,            -1207, "Sec-WebSocket-Key is not 16 bytes in base64")         \
    X(HS_NO_VERSION,         -1208, "missing Sec-WebSocket-Version")                       \
    X(HS_BAD_VERSION,        -1209, "Sec-WebSocket-Version is not 13")                     \
    X(HS_BAD_PROTOCOL,       -1210, "malformed Sec-WebSocket-Protocol")                    \
    X(HS_BAD_EXTENSIONS,     -1211, "malformed Sec-WebSocket-Extensions")                  \
    X(HS_TOO_MANY,           -1212, "too many subprotocols or extensions offered")         \
    /* opening handshake, client side (RFC 6455 §4.1) */                                    \
    X(HS_STATUS,             -1250, "server answered with a status other than 101")        \
    X(HS_RESP_NO_UPGRADE,    -1251, "response lacks Upgrade: websocket")                   \
    X(HS_RESP_NO_CONNECTION, -1252, "response Connection header lacks Upgrade")            \
    X(HS_NO_ACCEPT,          -1253, "response lacks Sec-WebSocket-Accept")                 \
    X(HS_BAD_ACCEPT,         -1254, "Sec-WebSocket-Accept does not match the key")         \
    X(HS_PROTOCOL_NOT_OFFERED, -1255, "server chose a subprotocol we did not offer")       \
    X(HS_EXTENSION_NOT_OFFERED, -1256, "server chose an extension we did not offer")       \
    X(HS_NO_PROTOCOL,        -1249, "no subprotocol in common: the client offered some, none was chosen") \
    X(HS_BAD_URL,            -1257, "malformed WebSocket URL")                            \
    /* WebSocket URLs (WHATWG URL Standard, url.h), more precise than HS_BAD_URL */         \
    X(URL_SCHEME,            -1258, "URL scheme is not ws or wss (or http or https)")      \
    X(URL_FRAGMENT,          -1259, "URL holds a fragment identifier")                     \
    X(URL_HOST,              -1260, "URL host is missing or malformed")                    \
    X(URL_PORT,              -1261, "URL port is not a number in 1..65535")             \
    X(URL_IDNA,              -1262, "URL host is not ASCII (IDNA is not supported)")       \
    /* runtime: connections, server, client */                                              \
    X(RESOLVE,               -1300, "host name could not be resolved")                     \
    X(CONNECT_TIMEOUT,       -1301, "timed out connecting to the server")                  \
    X(HANDSHAKE_TIMEOUT,     -1302, "opening handshake timed out")                         \
    X(PING_TIMEOUT,          -1303, "no pong before the keep-alive deadline")              \
    X(CLOSE_TIMEOUT,         -1304, "closing handshake timed out")                         \
    X(IDLE_TIMEOUT,          -1305, "connection idle for too long")                        \
    X(CONNECTING,            -1306, "connection is still CONNECTING (InvalidStateError)")  \
    X(CLOSED,                -1307, "connection is closing or closed")                     \
    X(BAD_CLOSE_CODE,        -1308, "close code must be 1000 or 3000-4999 (InvalidAccessError)") \
    X(CLOSE_REASON,          -1309, "close reason is not UTF-8 of at most 123 bytes (SyntaxError)") \
    X(HANDSHAKE_EOF,         -1310, "peer closed the connection during the opening handshake") \
    X(PROXY,                 -1311, "proxy refused the CONNECT request")                   \
    X(PROXY_URL,             -1312, "malformed proxy URL")                                 \
    X(SEND_QUEUE,            -1313, "send queue is over its cap")                          \
    X(SHUTDOWN,              -1314, "server is shutting down")                             \
    X(PROTOCOL,              -1315, "peer violated the WebSocket protocol (see the close code)") \
    X(NOT_UTF8,              -1316, "text message is not valid UTF-8")                     \
    X(TIMEOUT,               -1317, "timed out (the stream's timer, with no on_timeout)")  \
    /* permessage-deflate (RFC 7692) */                                                     \
    X(DEFLATE_NONE,          -1400, "permessage-deflate was not negotiated")                 \
    X(DEFLATE_BAD_OFFER,     -1401, "malformed permessage-deflate offer")                    \
    X(DEFLATE_BAD_ANSWER,    -1402, "malformed or unacceptable permessage-deflate response") \
    X(DEFLATE_DATA,          -1403, "corrupt or truncated compressed message")               \
    X(DEFLATE_TOO_BIG,       -1404, "inflated message exceeds the limit")                    \
    /* TLS engine (src/tls): which check failed */                                          \
    X(TLS_UNKNOWN_CA,        -1500, "peer certificate is not signed by a trusted CA")        \
    X(TLS_SELF_SIGNED,       -1501, "peer certificate is self-signed and not trusted")       \
    X(TLS_CERT_EXPIRED,      -1502, "peer certificate has expired")                          \
    X(TLS_CERT_NOT_YET_VALID, -1503, "peer certificate is not yet valid")                    \
    X(TLS_HOSTNAME,          -1504, "peer certificate does not match the host name")         \
    X(TLS_IP,                -1505, "peer certificate does not match the IP address")        \
    X(TLS_CERT_INVALID,      -1506, "peer certificate failed verification (other reason)")   \
    X(TLS_VERSION,           -1507, "no TLS protocol version in common with the peer")       \
    X(TLS_CIPHER,            -1508, "no TLS cipher suite in common with the peer")           \
    X(TLS_HANDSHAKE,         -1509, "TLS handshake failed")                                  \
    X(TLS_CERT_REQUIRED,     -1510, "peer sent no certificate but one is required")          \
    X(TLS_PLAIN_HTTP,        -1511, "peer speaks plain HTTP, not TLS")                       \
    X(TLS_ALERT,             -1512, "peer sent a fatal TLS alert")                           \
    X(TLS_CONFIG,            -1513, "TLS certificate, key or CA file could not be loaded")   \
    X(TLS_PROTOCOL,          -1514, "TLS record layer error after the handshake")
/* clang-format on */

enum dx_error {
#define DX_X_ENUM(name, code, text) DX_E##name = code,
    DX_ERRORS(DX_X_ENUM)
#undef DX_X_ENUM
};

/*
 * Human-readable message for @err (0, a DX_E* code or -errno). Never NULL; the
 * string is static. Unknown codes give "unknown error".
 */
DX_API const char *dx_strerror(int err);

/* Symbolic name of @err: "DX_ENOMEM", "ECONNREFUSED", "OK", "UNKNOWN". Static. */
DX_API const char *dx_err_name(int err);

#ifdef __cplusplus
}
#endif
#endif /* DUPLEX_BASE_H */
