/*
 * Fuzz target for the client's proxy settings (src/client/proxy.c): the proxy URL
 * parser, the no_proxy matcher and the choice from the environment.
 *
 * The input is split at the first two newlines into a proxy URL, a no_proxy list and
 * a host name, each copied into an allocation of exactly its size plus the NUL.
 * dx__proxy_parse must answer 0 or DX_EPROXY_URL; on success the host is non-empty,
 * NUL-terminated, free of ':' unless an IPv6 literal, the port non-zero, the
 * credentials empty or base64, and the CONNECT request it writes is one head ending
 * in CRLF CRLF with no other bare CR or LF. dx__no_proxy_match must say yes for "*"
 * and for the host itself. dx__proxy_from_env, given the pieces as variables, must
 * agree with calling the parser and matcher directly. Any breach aborts.
 */
#include "runtime/proxy.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *piece(const uint8_t **p, const uint8_t *end) {
    const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
    const uint8_t *stop = nl ? nl : end;
    size_t n = (size_t)(stop - *p);
    char *s = malloc(n + 1);
    if (!s)
        abort();
    memcpy(s, *p, n);
    s[n] = '\0';
    *p = nl ? nl + 1 : end;
    return s;
}

static const char *env_proxy, *env_no_proxy;

static const char *fake_env(const char *name) {
    if (strcmp(name, "http_proxy") == 0)
        return env_proxy;
    if (strcmp(name, "no_proxy") == 0)
        return env_no_proxy;
    return NULL;
}

static bool is_b64(char ch) {
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '+' || ch == '/' || ch == '=';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *p = data, *end = data + size;
    char *url = piece(&p, end), *no_proxy = piece(&p, end), *host = piece(&p, end);

    dx__proxy px;
    int rc = dx__proxy_parse(url, &px);
    if (rc != 0 && rc != DX_EPROXY_URL)
        abort();
    if (rc == 0) {
        size_t hl = strnlen(px.host, sizeof px.host);
        if (hl == 0 || hl == sizeof px.host || px.port == 0)
            abort();
        if (!px.ipv6 && strchr(px.host, ':'))
            abort();
        for (const char *a = px.auth; *a; a++)
            if (!is_b64(*a))
                abort();
        char req[2048];
        size_t len;
        if (dx__proxy_write_connect(&px, host, false, 443, req, sizeof req, &len) == 0) {
            if (len < 4 || memcmp(req + len - 4, "\r\n\r\n", 4) != 0)
                abort();
            for (size_t i = 0; i + 4 < len; i++) /* one head: CRLF pairs only */
                if ((req[i] == '\r') != (req[i + 1] == '\n') &&
                    (req[i] == '\r' || req[i + 1] == '\n'))
                    if (!(req[i] == '\r' && req[i + 1] == '\n'))
                        abort();
        }
    }

    if (!dx__no_proxy_match("*", host))
        abort();
    /* a host lists itself, unless it holds what the list syntax gives meaning to */
    if (host[0] && host[0] != '.' && !strpbrk(host, ", \t[]:") && !dx__no_proxy_match(host, host))
        abort();
    bool bypass = dx__no_proxy_match(no_proxy, host);

    env_proxy = url;
    env_no_proxy = no_proxy;
    dx__proxy env;
    int erc = dx__proxy_from_env(false, host, fake_env, &env);
    int want = bypass || !url[0] ? 0 : rc == 0 ? 1 : DX_EPROXY_URL;
    if (erc != want)
        abort();
    if (erc == 1 && (strcmp(env.host, px.host) != 0 || env.port != px.port))
        abort();

    free(url);
    free(no_proxy);
    free(host);
    return 0;
}
