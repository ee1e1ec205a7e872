/*
 * The Sec-WebSocket-Extensions grammar (RFC 6455 §9.1):
 *
 *   extension-list  = 1#extension
 *   extension       = extension-token *( ";" extension-param )
 *   extension-token = registered-token = token
 *   extension-param = token [ "=" (token | quoted-string) ]
 *
 * with optional whitespace around ",", ";" and "=" (the implied linear white
 * space of RFC 2616's ABNF, which §9.1 uses), and empty list elements tolerated
 * as RFC 9110 §5.6.1.2 asks of recipients (", ,a" is one element) while a list
 * with no element at all is malformed. A quoted value must be a token once
 * unescaped (§9.1), so every character inside the quotes is a tchar, escaped or
 * not. Spans point into the caller's header value; nothing is copied.
 */
#include "proto/http_internal.h"

#include "duplex/handshake.h"

static size_t skip_ows(const uint8_t *p, size_t n, size_t i) {
    while (i < n && dx__is_ows(p[i]))
        i++;
    return i;
}

static size_t skip_token(const uint8_t *p, size_t n, size_t i) {
    while (i < n && dx__is_tchar(p[i]))
        i++;
    return i;
}

/*
 * Parse one value, appending to the arrays. *@elements counts the extensions
 * found (so the caller can apply the 1# rule across several header lines).
 * Counters are updated only on success.
 */
static int parse_value(dx_span value, dx_ext *exts, size_t max_exts, size_t *num_exts,
                       dx_ext_param *params, size_t max_params, size_t *num_params,
                       size_t *elements) {
    const uint8_t *p = value.ptr;
    size_t n = value.len, i = 0;
    size_t ne = *num_exts, np = *num_params, found = 0;

    for (;;) {
        i = skip_ows(p, n, i);
        if (i == n)
            break;
        if (p[i] == ',') { /* an empty element */
            i++;
            continue;
        }
        size_t start = i;
        i = skip_token(p, n, i);
        if (i == start)
            return DX_EHS_BAD_EXTENSIONS;
        if (ne == max_exts)
            return DX_EHS_TOO_MANY;
        dx_ext *e = &exts[ne];
        e->name.ptr = p + start;
        e->name.len = i - start;
        e->params = params ? params + np : NULL;
        e->num_params = 0;

        i = skip_ows(p, n, i);
        while (i < n && p[i] == ';') {
            i = skip_ows(p, n, i + 1);
            dx_ext_param prm;
            memset(&prm, 0, sizeof(prm));
            start = i;
            i = skip_token(p, n, i);
            if (i == start)
                return DX_EHS_BAD_EXTENSIONS;
            prm.name.ptr = p + start;
            prm.name.len = i - start;
            prm.value.ptr = p + i;
            i = skip_ows(p, n, i);
            if (i < n && p[i] == '=') {
                i = skip_ows(p, n, i + 1);
                prm.has_value = true;
                if (i < n && p[i] == '"') {
                    start = ++i;
                    while (i < n && p[i] != '"') {
                        if (p[i] == '\\')
                            i++; /* quoted-pair: the escaped byte must be a tchar too */
                        if (i == n || !dx__is_tchar(p[i]))
                            return DX_EHS_BAD_EXTENSIONS;
                        i++;
                    }
                    if (i == n || i == start) /* unterminated, or "" (not a token) */
                        return DX_EHS_BAD_EXTENSIONS;
                    prm.quoted = true;
                    prm.value.ptr = p + start;
                    prm.value.len = i - start;
                    i++; /* the closing quote */
                } else {
                    start = i;
                    i = skip_token(p, n, i);
                    if (i == start)
                        return DX_EHS_BAD_EXTENSIONS;
                    prm.value.ptr = p + start;
                    prm.value.len = i - start;
                }
                i = skip_ows(p, n, i);
            }
            if (np == max_params)
                return DX_EHS_TOO_MANY;
            params[np++] = prm;
            e->num_params++;
        }
        ne++;
        found++;
        if (i == n)
            break;
        if (p[i] != ',')
            return DX_EHS_BAD_EXTENSIONS;
        i++;
    }
    *num_exts = ne;
    *num_params = np;
    *elements += found;
    return 0;
}

int dx_ext_parse_value(dx_span value, dx_ext *exts, size_t max_exts, size_t *num_exts,
                       dx_ext_param *params, size_t max_params, size_t *num_params) {
    if (!exts)
        max_exts = 0;
    if (!params)
        max_params = 0;
    if (*num_exts > max_exts || *num_params > max_params)
        return DX_EINVAL;
    size_t elements = 0;
    int rc =
        parse_value(value, exts, max_exts, num_exts, params, max_params, num_params, &elements);
    if (rc < 0)
        return rc;
    return elements > 0 ? 0 : DX_EHS_BAD_EXTENSIONS;
}

int dx_ext_parse(const dx_http_header *headers, size_t num_headers, dx_ext *exts, size_t max_exts,
                 dx_ext_param *params, size_t max_params, size_t *num_exts) {
    if (!exts)
        max_exts = 0;
    if (!params)
        max_params = 0;
    dx_span name = dx_span_cstr("Sec-WebSocket-Extensions");
    size_t ne = 0, np = 0, elements = 0;
    bool present = false;
    for (size_t h = 0; h < num_headers; h++) {
        if (!dx_span_eq_nocase(headers[h].name, name))
            continue;
        present = true;
        int rc =
            parse_value(headers[h].value, exts, max_exts, &ne, params, max_params, &np, &elements);
        if (rc < 0)
            return rc;
    }
    /* The lines form one 1#extension list: at least one element in all of them. */
    if (present && elements == 0)
        return DX_EHS_BAD_EXTENSIONS;
    *num_exts = ne;
    return 0;
}

int dx_ext_param_value(const dx_ext_param *p, char *out, size_t cap, size_t *len) {
    if (!p->has_value)
        return DX_EINVAL;
    size_t n = 0;
    for (size_t i = 0; i < p->value.len; i++) {
        if (p->quoted && p->value.ptr[i] == '\\' && i + 1 < p->value.len)
            i++;
        n++;
    }
    *len = n;
    if (n + 1 > cap)
        return DX_ENOSPACE;
    n = 0;
    for (size_t i = 0; i < p->value.len; i++) {
        if (p->quoted && p->value.ptr[i] == '\\' && i + 1 < p->value.len)
            i++;
        out[n++] = (char)p->value.ptr[i];
    }
    out[n] = '\0';
    return 0;
}
