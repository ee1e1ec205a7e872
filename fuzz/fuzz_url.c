/*
 * Fuzz target for the WebSocket URL parser (src/proto/url.c).
 *
 * The input is the URL text, copied into an allocation of exactly its size so a read past
 * the end trips ASan. Oracles, any breach aborts:
 *   - the answer is 0 or one of the documented DX_EURL_* codes, and never 0 when a '#' is
 *     in the input;
 *   - the pieces as written lie inside the input;
 *   - every writer writes exactly the length dx_url_parse() measured, refuses a buffer
 *     without room for the NUL, and writes the same bytes twice;
 *   - the request target starts with '/' and holds only bytes 0x21..0x7E, no '#'; the
 *     userinfo holds only bytes 0x21..0x7E and none of "@/?#[]\"; the host is a lowercase
 *     domain without a forbidden domain code point, a dotted quad that is the address kept,
 *     or an IPv6 address that inet_pton() reads back as the address kept;
 *   - the port is 1..65535 and explicit exactly when it is not the scheme's default;
 *   - the URL written back out ("ws[s]://" userinfo "@" host ":" port target) parses to
 *     itself (a fixed point), with the same address;
 *   - the input without its tabs and newlines parses to the same result (the standard
 *     removes them first; the parser skips them in place).
 */
#include "duplex/url.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef int (*url_writer)(const dx_url *, char *, size_t, size_t *);

/* Write with @fn into a fresh buffer of exactly the measured size; NULL-terminated, owned
 * by the caller. */
static char *write_checked(url_writer fn, const dx_url *u, size_t measured) {
    size_t len = 0;
    char one[1];
    if (fn(u, one, 0, &len) != DX_ENOSPACE || len != measured)
        abort();
    char *buf = malloc(len + 1);
    if (!buf)
        abort();
    if (len > 0 && fn(u, buf, len, &len) != DX_ENOSPACE)
        abort();
    if (fn(u, buf, len + 1, &len) != 0 || len != measured || strlen(buf) != len)
        abort();
    char *again = malloc(len + 1);
    if (!again || fn(u, again, len + 1, &len) != 0 || memcmp(buf, again, len + 1) != 0)
        abort();
    free(again);
    return buf;
}

static void check_inside(dx_span s, const uint8_t *p, size_t n) {
    if (s.len && (s.ptr < p || s.ptr + s.len > p + n))
        abort();
}

static bool printable(const char *s) {
    for (; *s; s++)
        if ((uint8_t)*s < 0x21 || (uint8_t)*s > 0x7E)
            return false;
    return true;
}

/* The URL as a browser serialises it; malloc'd. */
static char *href_of(const dx_url *u, char **host_out, char **target_out) {
    char *host = write_checked(dx_url_write_host, u, u->host_len);
    char *target = write_checked(dx_url_write_resource, u, u->resource_len);
    char *ui = write_checked(dx_url_write_userinfo, u, u->userinfo_len);
    size_t cap = strlen(host) + strlen(target) + strlen(ui) + 32;
    char *href = malloc(cap);
    if (!href)
        abort();
    bool v6 = u->host_kind == DX_URL_HOST_IPV6;
    int m = snprintf(href, cap, "%s://%s%s%s%s%s", u->secure ? "wss" : "ws", ui, *ui ? "@" : "",
                     v6 ? "[" : "", host, v6 ? "]" : "");
    if (m < 0 || (size_t)m >= cap)
        abort();
    if (u->port_explicit)
        m += snprintf(href + m, cap - (size_t)m, ":%u", (unsigned)u->port);
    snprintf(href + m, cap - (size_t)m, "%s", target);
    /* the userinfo: encoded, so none of the authority's delimiters */
    if (!printable(ui) || strpbrk(ui, "@/?#[]\\"))
        abort();
    free(ui);
    if (host_out)
        *host_out = host;
    else
        free(host);
    if (target_out)
        *target_out = target;
    else
        free(target);
    return href;
}

static void check_host(const dx_url *u, const char *host) {
    if (!*host)
        abort();
    if (u->host_kind == DX_URL_HOST_IPV4) {
        unsigned a[4];
        char tail;
        if (sscanf(host, "%3u.%3u.%3u.%3u%c", &a[0], &a[1], &a[2], &a[3], &tail) != 4)
            abort();
        for (int k = 0; k < 4; k++)
            if (a[k] != u->addr[k])
                abort();
        char back[16];
        snprintf(back, sizeof back, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
        if (strcmp(back, host) != 0) /* no leading zeros */
            abort();
    } else if (u->host_kind == DX_URL_HOST_IPV6) {
        uint8_t a[16];
        if (inet_pton(AF_INET6, host, a) != 1 || memcmp(a, u->addr, 16) != 0)
            abort();
        for (const char *c = host; *c; c++)
            if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f') || *c == ':'))
                abort();
    } else {
        if (!printable(host) || strpbrk(host, "#%/:<>?@[\\]^|"))
            abort();
        for (const char *c = host; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                abort();
        for (int k = 0; k < 16; k++)
            if (u->addr[k])
                abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *p = malloc(size ? size : 1);
    if (!p)
        abort();
    if (size)
        memcpy(p, data, size);
    dx_url u;
    int rc = dx_url_parse((dx_span){p, size}, &u);
    if (rc != 0 && rc != DX_EURL_SCHEME && rc != DX_EURL_FRAGMENT && rc != DX_EURL_HOST &&
        rc != DX_EURL_PORT && rc != DX_EURL_IDNA)
        abort();
    if (rc == 0 && size && memchr(p, '#', size))
        abort();

    /* the same input without tab, LF and CR: the same answer */
    uint8_t *q = malloc(size ? size : 1);
    if (!q)
        abort();
    size_t qn = 0;
    for (size_t i = 0; i < size; i++)
        if (p[i] != '\t' && p[i] != '\n' && p[i] != '\r')
            q[qn++] = p[i];
    dx_url w;
    int rc2 = dx_url_parse((dx_span){q, qn}, &w);
    if (rc2 != rc)
        abort();

    if (rc == 0) {
        check_inside(u.host_text, p, size);
        check_inside(u.userinfo_text, p, size);
        check_inside(u.path_text, p, size);
        check_inside(u.query_text, p, size);
        if (u.port == 0 || u.port_explicit != (u.port != (u.secure ? 443 : 80)))
            abort();
        if (!u.has_query && u.query_text.len)
            abort();
        char *host, *target;
        char *href = href_of(&u, &host, &target);
        check_host(&u, host);
        if (target[0] != '/' || !printable(target) || strchr(target, '#'))
            abort();
        if (u.has_query != (strchr(target, '?') != NULL))
            abort();

        char *href_w = href_of(&w, NULL, NULL);
        if (strcmp(href, href_w) != 0 || w.host_kind != u.host_kind ||
            memcmp(w.addr, u.addr, 16) != 0)
            abort();
        free(href_w);

        /* parse(serialise(u)) is u */
        dx_url v;
        if (dx_url_parse(dx_span_cstr(href), &v) != 0)
            abort();
        char *href_v = href_of(&v, NULL, NULL);
        if (strcmp(href, href_v) != 0 || v.secure != u.secure || v.port != u.port ||
            v.host_kind != u.host_kind || memcmp(v.addr, u.addr, 16) != 0)
            abort();
        free(href_v);
        free(href);
        free(host);
        free(target);
    }
    free(q);
    free(p);
    return 0;
}
