/*
 * HTTP CONNECT proxies for the stream layer's connect: the proxy URL, the choice
 * from the usual environment variables (http_proxy, https_proxy, all_proxy,
 * no_proxy) and the CONNECT request. Pure functions, no I/O. Not installed.
 */
#ifndef DX_RUNTIME_PROXY_H
#define DX_RUNTIME_PROXY_H

#include "duplex/base.h"

#define DX_PROXY_HOST_MAX 255
#define DX_PROXY_AUTH_MAX 512 /* base64 of "user:pass" */
#define DX_PROXY_DEFAULT_PORT 1080

typedef struct dx__proxy {
    char host[DX_PROXY_HOST_MAX + 1]; /* without the brackets of an IPv6 literal */
    bool ipv6;                        /* host is an IPv6 literal */
    uint16_t port;
    char auth[DX_PROXY_AUTH_MAX + 1]; /* base64("user:pass"), percent-decoded first;
                                         empty: no Proxy-Authorization */
} dx__proxy;

/* Parse "[http://][user:pass@]host[:port][/]". Returns 0 or DX_EPROXY_URL (another
 * scheme, an empty or malformed host, a bad port, a path, oversized fields). */
int dx__proxy_parse(const char *text, dx__proxy *out);

/* True when @no_proxy (comma-separated: "*", host names, ".domain" or "domain"
 * suffixes, IP literals; an optional ":port" is ignored) covers @host. */
bool dx__no_proxy_match(const char *no_proxy, const char *host);

/*
 * The proxy the environment asks for: https_proxy (wss) or http_proxy (ws), then
 * all_proxy, each lower case first then upper case, unless no_proxy / NO_PROXY covers
 * @host. @get is getenv (tests pass their own). Returns 1 with *@out set, 0 for a
 * direct connection, or DX_EPROXY_URL.
 */
int dx__proxy_from_env(bool secure, const char *host, const char *(*get)(const char *name),
                       dx__proxy *out);

/* Write "CONNECT host:port HTTP/1.1" with Host and, when set, Proxy-Authorization.
 * Returns 0 with *@len, DX_ENOSPACE, or DX_EINVAL for an empty host or one holding
 * spaces, controls or non-ASCII bytes (no request splitting). */
int dx__proxy_write_connect(const dx__proxy *p, const char *host, bool host_ipv6, uint16_t port,
                            char *out, size_t cap, size_t *len);

#endif /* DX_RUNTIME_PROXY_H */
