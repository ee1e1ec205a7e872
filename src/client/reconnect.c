/*
 * Reconnection with backoff: when a client connection ends without the application
 * having closed it, a new attempt (a new connection) starts after min * 2^(n-1)
 * milliseconds, capped and jittered, unless the server refused in a way that would
 * come again or the attempts ran out (include/duplex/client.h, dx_reconnect).
 */
#include "client/client_internal.h"

/* min * 2^(n-1), capped, times a random factor in [0.5, 1]. */
static uint32_t backoff_ms(const dx_reconnect *o, unsigned n) {
    uint64_t d = o->min_ms;
    for (unsigned i = 1; i < n && d < o->max_ms; i++)
        d *= 2;
    if (d > o->max_ms)
        d = o->max_ms;
    uint32_t r = 0;
    dx_random_bytes((uint8_t *)&r, sizeof r);
    d = d / 2 + (d - d / 2) * r / UINT32_MAX;
    return d ? (uint32_t)d : 1;
}

void dx__client_reconnect(dx_conn *c) {
    client *cl = client_of(c);
    client_config *cfg = cl->cfg;
    if (!cfg->opts.reconnect.enabled || c->app_closed)
        return;
    int st = c->http_status;
    if (c->stream.error == DX_EHS_STATUS && st >= 400 && st < 500 && st != 408 && st != 429)
        return; /* a refusal that would come again */
    unsigned n = cl->opened ? 1 : cl->attempt + 1;
    if (cfg->opts.reconnect.max_attempts && n > cfg->opts.reconnect.max_attempts)
        return;
    uint32_t delay = backoff_ms(&cfg->opts.reconnect, n);
    dx_conn *next;
    if (dx__client_start_attempt(cfg, n, delay, &next) < 0)
        return; /* out of memory: nothing left to report to */
    if (cfg->cb.on_reconnect)
        cfg->cb.on_reconnect(next, n, delay, cfg->user);
}
