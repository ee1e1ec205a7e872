/*
 * Fuzz target for the WebSocket URL parser (src/proto/url.c).
 *
 * The input is the URL text, copied into an allocation of exactly its size so a
 * read past the end trips ASan. The answer must be 0 or one of the documented
 * codes; '#' anywhere must give DX_EURL_FRAGMENT. On success: every span lies
 * inside the input (or is the static "/" of an empty path), the host is
 * non-empty, the port non-zero and equal to the default unless explicit, path
 * and resource start with '/', the pieces put back together (scheme, "//",
 * userinfo "@", host in brackets if IPv6, ":" port, resource) parse again to the
 * same fields, and dx_url_write_resource() agrees with the spans. Any breach
 * aborts.
 */
#include "duplex/url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_inside(dx_span s, const uint8_t *p, size_t n) {
    if (s.len == 0)
        return;
    if (s.ptr >= p && s.ptr + s.len <= p + n)
        return;
    if (s.len == 1 && s.ptr[0] == '/')
        return; /* the static "/" */
    abort();
}

/* A printable pointer for "%.*s" (an empty span may hold NULL). */
static const char *str_of(dx_span s) {
    return s.len ? (const char *)s.ptr : "";
}

static bool span_is(dx_span s, const char *str) {
    return dx_span_eq(s, dx_span_cstr(str));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *p = malloc(size ? size : 1);
    if (!p)
        abort();
    if (size)
        memcpy(p, data, size);
    dx_url u;
    int rc = dx_url_parse((dx_span){p, size}, &u);
    if (size && memchr(p, '#', size) && rc != DX_EURL_FRAGMENT)
        abort();
    if (rc != 0) {
        if (rc != DX_EHS_BAD_URL && rc != DX_EURL_SCHEME && rc != DX_EURL_FRAGMENT &&
            rc != DX_EURL_HOST && rc != DX_EURL_PORT)
            abort();
        free(p);
        return 0;
    }

    for (size_t i = 0; i < size; i++)
        if (p[i] < 0x21 || p[i] > 0x7E)
            abort();
    check_inside(u.host, p, size);
    check_inside(u.path, p, size);
    check_inside(u.query, p, size);
    check_inside(u.userinfo, p, size);
    check_inside(u.resource, p, size);
    if (u.host.len == 0 || u.port == 0 || u.path.len == 0 || u.path.ptr[0] != '/')
        abort();
    if (!u.port_explicit && u.port != (u.secure ? 443 : 80))
        abort();
    if (u.query.len && !u.has_query)
        abort();
    if (u.resource.len == 0) {
        /* only "ws://h?q": no path in the text, but a query */
        if (!u.has_query || !span_is(u.path, "/") || (u.path.ptr >= p && u.path.ptr < p + size))
            abort();
    } else if (u.resource.ptr[0] != '/') {
        abort();
    }

    /* the request target, written out */
    char res[4096];
    size_t rlen;
    if (dx_url_write_resource(&u, res, sizeof res, &rlen) != 0)
        abort();
    if (rlen != strlen(res))
        abort();
    if (u.resource.len && (u.resource.len != rlen || memcmp(u.resource.ptr, res, rlen) != 0))
        abort();

    /* reassemble and parse again: the same URL, field for field */
    char again[8192];
    int m = snprintf(
        again, sizeof again, "%s://%.*s%s%s%.*s%s", u.secure ? "wss" : "ws", (int)u.userinfo.len,
        str_of(u.userinfo), u.userinfo.len || memchr(p, '@', (size_t)(u.host.ptr - p)) ? "@" : "",
        u.host_is_ipv6 ? "[" : "", (int)u.host.len, str_of(u.host), u.host_is_ipv6 ? "]" : "");
    if (m < 0 || (size_t)m >= sizeof again)
        abort();
    if (u.port_explicit)
        m += snprintf(again + m, sizeof again - (size_t)m, ":%u", (unsigned)u.port);
    if ((size_t)m + rlen >= sizeof again)
        abort();
    memcpy(again + m, res, rlen + 1);
    dx_url v;
    if (dx_url_parse(dx_span_cstr(again), &v) != 0)
        abort();
    if (v.secure != u.secure || !dx_span_eq(v.host, u.host) || v.host_is_ipv6 != u.host_is_ipv6 ||
        v.port != u.port || v.port_explicit != u.port_explicit || !dx_span_eq(v.path, u.path) ||
        v.has_query != u.has_query || !dx_span_eq(v.query, u.query) ||
        !dx_span_eq(v.userinfo, u.userinfo))
        abort();
    free(p);
    return 0;
}
