/*
 * The client: the CONNECTING phase of a client connection. The stream layer resolves
 * the name off the loop thread, connects to each address in turn, through an HTTP
 * CONNECT tunnel if one applies, and speaks TLS for wss://; this file sends the
 * upgrade request once the stream is open and checks the answer (RFC 6455 §4.1).
 * From the 101 on, the connection layer (src/conn/) takes over. A reconnection
 * (reconnect.c) is a new attempt, a new connection, on the shared configuration
 * (client_config.c).
 */
#include "client/client_internal.h"
#include "duplex/url.h"

#define RESOURCE_MAX 8192

/* ---- connecting ---------------------------------------------------------------------- */

/* Connect the stream. Returns 0 or a negative code (a malformed proxy URL, from the
 * option or the environment), with no callback called. */
static int connect_stream(dx_conn *c) {
    client *cl = client_of(c);
    client_config *cfg = cl->cfg;
    dx_connect_options o = {.host = cl->host,
                            .port = cl->port,
                            .proxy = cfg->opts.proxy,
                            .no_env_proxy = cfg->opts.no_env_proxy,
                            .tls = cfg->tls,
                            .timeout_ms = DX_NEVER, /* the handshake timeout covers it */
                            .allocator = cfg->alloc};
    cl->stage = STAGE_CONNECTING;
    return dx__conn_connect(c, &o);
}

/* The stream is up (through the proxy, TLS done): send the upgrade request. */
static void client_on_open(dx_conn *c) {
    client *cl = client_of(c);
    cl->stage = STAGE_UPGRADE;
    cl->scan = (dx_http_scan){.max_head = dx__conn_opts(c)->limits.max_head};
    int rc = dx__conn_send_raw(c, cl->request, cl->request_len);
    if (rc < 0)
        dx__conn_fail(c, rc);
}

/* ---- the answer ------------------------------------------------------------------------- */

/* Check the answer's head (@head_len bytes at @head) and open. Returns 0 or the
 * failure (the connection is then failed). */
static int on_upgrade_answer(dx_conn *c, const uint8_t *head, size_t head_len) {
    client *cl = client_of(c);
    dx_http_header headers[DX_DEFAULT_MAX_HEADERS];
    dx_http_response resp;
    dx_ws_response ws;
    int rc = dx_http_parse_response(head, head_len, &resp, headers, DX_DEFAULT_MAX_HEADERS);
    if (rc == 0) {
        c->http_status = (uint16_t)resp.status;
        rc = dx_handshake_check_response(&cl->hs, &cl->req, &resp, &ws);
    }
    dx_deflate_params params;
    bool pmd = false;
    if (rc == 0 && cl->cfg->deflate_on && ws.extensions.len) {
        dx_ext exts[DX_MAX_EXTENSIONS];
        dx_ext_param ext_params[DX_MAX_EXT_PARAMS];
        size_t n = 0, np = 0;
        rc = dx_ext_parse_value(ws.extensions, exts, DX_MAX_EXTENSIONS, &n, ext_params,
                                DX_MAX_EXT_PARAMS, &np);
        if (rc == 0)
            rc = dx_deflate_check_answer(&cl->cfg->deflate, exts, n, &params);
        pmd = rc == 0;
        if (rc == DX_EDEFLATE_NONE)
            rc = 0;
        else if (rc == DX_EHS_BAD_EXTENSIONS || rc == DX_EHS_TOO_MANY)
            rc = DX_EDEFLATE_BAD_ANSWER;
    }
    if (rc == 0)
        rc = dx__conn_set_info(c, ws.protocol, ws.extensions, cl->cfg->url);
    if (rc < 0) {
        dx__conn_fail(c, rc);
        return rc;
    }
    cl->opened = true;
    return dx__conn_open(c, pmd ? &params : NULL, &cl->cfg->deflate);
}

/* The answer's head, read as it comes (the stream keeps what is not consumed); the
 * frames right behind it go to the connection once it is open. */
static size_t client_on_data(dx_conn *c, uint8_t *data, size_t len) {
    client *cl = client_of(c);
    if (cl->stage != STAGE_UPGRADE)
        return len; /* nothing was asked yet: a server that talks first is ignored */
    size_t head_len;
    int rc = dx_http_scan_feed(&cl->scan, data, len, &head_len);
    if (rc == DX_EINCOMPLETE)
        return 0;
    if (rc < 0) {
        dx__conn_fail(c, rc);
        return len;
    }
    if (on_upgrade_answer(c, data, head_len) < 0 || c->phase != PHASE_OPEN)
        return len;
    return head_len + dx__conn_deliver(c, data + head_len, len - head_len);
}

static void client_on_timeout(dx_conn *c) {
    client *cl = client_of(c);
    if (cl->stage == STAGE_WAITING) { /* a reconnection's delay is over */
        int rc = connect_stream(c);
        if (rc < 0)
            dx__conn_fail(c, rc);
        return;
    }
    bool connecting = c->stream.state == ST_CONNECTING; /* TLS counts as the handshake */
    dx__conn_fail(c, connecting ? DX_ECONNECT_TIMEOUT : DX_EHANDSHAKE_TIMEOUT);
}

static void client_on_eof(dx_conn *c) {
    dx__conn_fail(c, DX_EHANDSHAKE_EOF);
}

/* ---- one attempt ------------------------------------------------------------------------- */

static void free_client(client *cl) {
    if (!cl)
        return;
    const dx_allocator *a = cl->cfg->alloc;
    dx__free(a, cl->request, cl->request_cap);
    dx__client_config_unref(cl->cfg);
    dx__free(a, cl, sizeof(*cl));
}

static void client_release(dx_conn *c) {
    free_client(client_of(c));
    c->owner = NULL;
}

/* Write the request for this attempt (a fresh key each time; this also checks every
 * option). */
static int prepare(client *cl, const dx_url *url) {
    const dx_client_options *o = &cl->cfg->opts;
    size_t hlen;
    int rc = dx_url_write_host(url, cl->host, sizeof cl->host, &hlen);
    if (rc < 0)
        return rc == DX_ENOSPACE ? DX_EURL_HOST : rc;
    cl->port = url->port;
    char resource[RESOURCE_MAX];
    size_t rlen;
    rc = dx_url_write_resource(url, resource, sizeof resource, &rlen);
    if (rc < 0)
        return rc == DX_ENOSPACE ? DX_EHS_BAD_URL : rc;
    cl->req =
        (dx_request_options){.host = cl->host,
                             .port = url->port,
                             .secure = url->secure,
                             .resource = resource,
                             .origin = o->origin,
                             .protocols = o->protocols,
                             .num_protocols = o->num_protocols,
                             .headers = o->headers,
                             .num_headers = o->num_headers,
                             .protocol_optional = o->protocol_optional,
                             .extensions = cl->cfg->deflate_on ? cl->cfg->deflate_offer : NULL};
    rc = dx_client_handshake_init(&cl->hs, NULL);
    size_t need = 0;
    if (rc == 0)
        rc = dx_handshake_write_request(&cl->hs, &cl->req, NULL, 0, &need);
    if (rc == DX_ENOSPACE) {
        cl->request = dx__alloc(cl->cfg->alloc, need);
        cl->request_cap = cl->request ? need : 0;
        rc = cl->request ? dx_handshake_write_request(&cl->hs, &cl->req, cl->request, need,
                                                      &cl->request_len)
                         : DX_ENOMEM;
    }
    cl->req.resource = NULL; /* only protocols and extensions are read again */
    return rc;
}

static const dx__conn_role client_role = {
    .on_data = client_on_data,
    .on_open = client_on_open,
    .on_timeout = client_on_timeout,
    .on_eof = client_on_eof,
    .after_close = dx__client_reconnect,
    .release = client_release,
};

int dx__client_start_attempt(client_config *cfg, unsigned attempt, uint32_t delay_ms,
                             dx_conn **out) {
    dx_url u;
    int rc = dx_url_parse(dx_span_cstr(cfg->url), &u);
    if (rc < 0)
        return rc;
    const dx_allocator *a = cfg->alloc;
    client *cl = dx__calloc(a, sizeof(*cl));
    dx_conn *c = dx__calloc(a, sizeof(*c));
    if (!cl || !c) {
        dx__free(a, cl, sizeof(*cl));
        dx__free(a, c, sizeof(*c));
        return DX_ENOMEM;
    }
    cl->cfg = cfg;
    cfg->refs++;
    dx__conn_class_init(&cfg->cls, cfg->loop, &client_role, &cfg->cb, &cfg->conn);
    cl->attempt = attempt;
    rc = prepare(cl, &u);
    bool set_up = false;
    if (rc == 0 && (rc = dx__conn_init_client(c, cfg->loop, &cfg->cls, cl, cfg->user, a)) == 0)
        set_up = true;
    if (rc == 0)
        rc = dx__conn_set_info(c, (dx_span){0}, (dx_span){0}, cfg->url);
    if (rc == 0 && delay_ms) {
        cl->stage = STAGE_WAITING;
        dx_stream_set_timeout(&c->stream, delay_ms);
    } else if (rc == 0) {
        rc = connect_stream(c);
    }
    if (rc < 0) { /* nothing was reported: undo quietly */
        if (set_up)
            dx__conn_discard(c);
        else
            dx__free(a, c, sizeof(*c));
        free_client(cl);
        return rc;
    }
    c->seen = true; /* the application holds it from now on: on_close is owed */
    *out = c;
    return 0;
}

/* ---- dx_client_connect --------------------------------------------------------------------- */

int dx_client_connect(dx_conn **out, dx_loop *loop, const char *url, const dx_client_options *opts,
                      const dx_conn_callbacks *cb, void *user) {
    static const dx_client_options no_opts;
    if (!out || !loop || !url)
        return DX_EINVAL;
    client_config *cfg;
    int rc = dx__client_config_new(&cfg, loop, url, opts ? opts : &no_opts, cb, user);
    if (rc < 0)
        return rc;
    rc = dx__client_start_attempt(cfg, 0, 0, out);
    dx__client_config_unref(cfg); /* the attempt holds its own reference */
    return rc;
}
