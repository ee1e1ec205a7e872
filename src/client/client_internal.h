/* Internal to src/client/: a client connection's attempt, and what every attempt of
 * one dx_client_connect shares. */
#ifndef DUPLEX_CLIENT_INTERNAL_H
#define DUPLEX_CLIENT_INTERNAL_H

#include "conn/conn_internal.h"
#include "duplex/client.h"
#include "duplex/handshake.h"
#include "runtime/proxy.h"

typedef enum stage {
    STAGE_WAITING = 0, /* a reconnection waiting for its delay */
    STAGE_CONNECTING,  /* the stream connects (resolve, connect, proxy, TLS) */
    STAGE_UPGRADE,     /* GET sent; waiting for the 101 */
} stage;

/* What every connection of one dx_client_connect shares, reconnections included. */
typedef struct client_config {
    unsigned refs; /* one per connection still allocated */
    dx_loop *loop;
    char *url;                 /* copied */
    dx_client_options opts;    /* copied; its pointers point to the copies below */
    char **protocols;          /* copies of the offered subprotocols */
    size_t protocols_cap;      /* entries allocated in protocols */
    char *origin;              /* copy, or NULL */
    dx_http_header *headers;   /* copies; each name and value is its own allocation */
    size_t headers_cap;        /* entries allocated in headers */
    char *proxy;               /* copy, or NULL */
    dx_conn_options conn;      /* with defaults */
    dx_conn_callbacks cb;      /* the application's, copied */
    dx__conn_class cls;        /* role, cb and conn, for every attempt */
    dx_tls_ctx *tls;           /* wss://: the verification setup, loaded once */
    dx_deflate_config deflate; /* permessage-deflate, when deflate_on */
    bool deflate_on;
    char deflate_offer[160];   /* its offer */
    void *user;                /* given to every connection */
    const dx_allocator *alloc; /* this, and the connections' memory */
} client_config;

/* One connection attempt. */
typedef struct client {
    client_config *cfg;
    unsigned attempt;                 /* consecutive reconnections before this one succeeded */
    bool opened;                      /* this attempt reached OPEN */
    dx_client_handshake hs;           /* key and expected accept */
    dx_request_options req;           /* what was offered, for the answer's checks */
    char host[DX_PROXY_HOST_MAX + 1]; /* the server's host, NUL-terminated */
    uint16_t port;
    uint8_t *request; /* the upgrade request */
    size_t request_len, request_cap;
    stage stage;
    dx_http_scan scan;
} client;

static inline client *client_of(const dx_conn *c) {
    return c->owner;
}

/* Copy everything @o points to into a new configuration with one reference (the
 * caller's), so that later attempts can use it. (client_config.c) */
int dx__client_config_new(client_config **out, dx_loop *loop, const char *url,
                          const dx_client_options *o, const dx_conn_callbacks *cb, void *user);
void dx__client_config_unref(client_config *cfg);

/* Create attempt number @attempt (0: the first), connecting after @delay_ms (0: at
 * once; the stream's connect reports back in a later iteration, never here). Returns
 * 0 or a negative code with nothing reported. (client.c) */
int dx__client_start_attempt(client_config *cfg, unsigned attempt, uint32_t delay_ms,
                             dx_conn **out);

/* After @c's close callback: start the next attempt if the policy says so, and tell
 * the application. (reconnect.c) */
void dx__client_reconnect(dx_conn *c);

#endif
