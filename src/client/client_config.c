/*
 * A client's configuration: a copy of everything dx_client_connect was given (the
 * URL, the options and every string they point to, the callbacks), with the
 * defaults filled in and the TLS setup loaded once, shared by reference among the
 * connection attempts, reconnections included.
 */
#include "client/client_internal.h"
#include "duplex/url.h"

static char *str_dup(const dx_allocator *a, dx_span s) {
    char *p = dx__alloc(a, s.len + 1);
    if (p) {
        if (s.len)
            memcpy(p, s.ptr, s.len);
        p[s.len] = '\0';
    }
    return p;
}

static void str_free(const dx_allocator *a, const char *p, size_t len) {
    if (p)
        dx__free(a, (void *)p, len + 1);
}

void dx__client_config_unref(client_config *cfg) {
    if (!cfg || --cfg->refs > 0)
        return;
    const dx_allocator *a = cfg->alloc;
    str_free(a, cfg->url, strlen(cfg->url));
    for (size_t i = 0; i < cfg->opts.num_protocols; i++)
        str_free(a, cfg->protocols[i], strlen(cfg->protocols[i]));
    dx__free(a, cfg->protocols, cfg->protocols_cap * sizeof(char *));
    for (size_t i = 0; i < cfg->opts.num_headers; i++) {
        str_free(a, (const char *)cfg->headers[i].name.ptr, cfg->headers[i].name.len);
        str_free(a, (const char *)cfg->headers[i].value.ptr, cfg->headers[i].value.len);
    }
    dx__free(a, cfg->headers, cfg->headers_cap * sizeof(dx_http_header));
    if (cfg->origin)
        str_free(a, cfg->origin, strlen(cfg->origin));
    if (cfg->proxy)
        str_free(a, cfg->proxy, strlen(cfg->proxy));
    dx_tls_ctx_release(cfg->tls);
    dx__free(a, cfg, sizeof(*cfg));
}

int dx__client_config_new(client_config **out, dx_loop *loop, const char *url,
                          const dx_client_options *o, const dx_conn_callbacks *cb, void *user) {
    const dx_allocator *a = o->allocator ? o->allocator : dx_loop_allocator(loop);
    client_config *cfg = dx__calloc(a, sizeof(*cfg));
    if (!cfg)
        return DX_ENOMEM;
    cfg->refs = 1;
    cfg->loop = loop;
    cfg->alloc = a;
    cfg->opts = *o;
    cfg->opts.num_protocols = cfg->opts.num_headers = 0;
    cfg->opts.origin = cfg->opts.proxy = NULL;
    cfg->opts.conn.compression.deflate = NULL;
    cfg->opts.tls = NULL;
    cfg->user = user;
    if (cb)
        cfg->cb = *cb;
    dx__conn_options_resolve(&o->conn, &cfg->conn);
    dx_reconnect *r = &cfg->opts.reconnect;
    if (!r->min_ms)
        r->min_ms = DX_DEFAULT_RECONNECT_MIN_MS;
    if (!r->max_ms)
        r->max_ms = DX_DEFAULT_RECONNECT_MAX_MS;
    int rc = DX_ENOMEM;
    if (!(cfg->url = str_dup(a, dx_span_cstr(url))) ||
        (o->origin && !(cfg->origin = str_dup(a, dx_span_cstr(o->origin)))) ||
        (o->proxy && !(cfg->proxy = str_dup(a, dx_span_cstr(o->proxy)))))
        goto fail;
    cfg->opts.origin = cfg->origin;
    cfg->opts.proxy = cfg->proxy;
    if (o->num_protocols) {
        if (!(cfg->protocols = dx__calloc(a, o->num_protocols * sizeof(char *))))
            goto fail;
        cfg->protocols_cap = o->num_protocols;
    }
    for (; cfg->opts.num_protocols < o->num_protocols; cfg->opts.num_protocols++) {
        const char *p = o->protocols[cfg->opts.num_protocols];
        if (!p) {
            rc = DX_EINVAL;
            goto fail;
        }
        if (!(cfg->protocols[cfg->opts.num_protocols] = str_dup(a, dx_span_cstr(p))))
            goto fail;
    }
    cfg->opts.protocols = (const char *const *)cfg->protocols;
    if (o->num_headers) {
        if (!(cfg->headers = dx__calloc(a, o->num_headers * sizeof(dx_http_header))))
            goto fail;
        cfg->headers_cap = o->num_headers;
    }
    for (; cfg->opts.num_headers < o->num_headers; cfg->opts.num_headers++) {
        const dx_http_header *h = &o->headers[cfg->opts.num_headers];
        dx_http_header *d = &cfg->headers[cfg->opts.num_headers];
        if ((h->name.len && !h->name.ptr) || (h->value.len && !h->value.ptr)) {
            rc = DX_EINVAL;
            goto fail;
        }
        char *name = str_dup(a, h->name), *value = str_dup(a, h->value);
        d->name = (dx_span){(const uint8_t *)name, h->name.len};
        d->value = (dx_span){(const uint8_t *)value, h->value.len};
        if (!name || !value) {
            cfg->opts.num_headers++; /* so that both are freed */
            goto fail;
        }
    }
    cfg->opts.headers = cfg->headers;
    if (o->conn.compression.deflate) {
        size_t len;
        cfg->deflate = *o->conn.compression.deflate;
        cfg->deflate_on = true;
        rc = dx_deflate_write_offer(&cfg->deflate, cfg->deflate_offer, sizeof cfg->deflate_offer,
                                    &len);
        if (rc < 0)
            goto fail;
    }
    cfg->conn.compression.deflate = cfg->deflate_on ? &cfg->deflate : NULL; /* our copy */
    dx_url u;
    if (dx_url_parse(dx_span_cstr(url), &u) == 0 && u.secure &&
        (rc = dx_tls_ctx_create_client(&cfg->tls, o->tls)) < 0)
        goto fail;
    *out = cfg;
    return 0;
fail:
    dx__client_config_unref(cfg);
    return rc;
}
