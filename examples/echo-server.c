/*
 * echo-server: echoes every message on every path, on duplex's event loop.
 *
 *   echo-server [--port N] [--host H] [--unix PATH] [--threads N]
 *               [--protocol P]... [--origin O]... [--require-auth TOKEN]
 *               [--max-message BYTES] [--commands] [--ping-interval MS] [--no-deflate]
 *               [--deflate-server-window N] [--deflate-client-window N]
 *               [--deflate-server-no-context-takeover] [--deflate-client-no-context-takeover]
 *               [--deflate-mem-level N] [--deflate-level N] [--deflate-min BYTES]
 *               [--cert FILE --key FILE]... [--client-ca FILE]
 *
 * --port 0 picks a free port; the line "listening on HOST:PORT" (or "listening on
 * unix:PATH") is printed once the server listens. --threads N runs N loops, one per
 * thread, sharing the port through SO_REUSEPORT. --protocol lists the subprotocols
 * the server speaks, in its preference order (the first the client offers is
 * chosen). --origin allows only these Origins (403 otherwise; a request without
 * Origin, from a non-browser client, is allowed). --require-auth refuses requests
 * without "Authorization: Bearer TOKEN" with 401. --commands makes text messages
 * "!close CODE [REASON]", "!ping [PAYLOAD]" and "!broadcast TEXT" (TEXT to every open
 * connection of the thread's server, compressed once: dx_server_broadcast) act instead
 * of echoing (for tests).
 * permessage-deflate (RFC 7692) is accepted when a client offers it, with duplex's
 * default settings unless the --deflate-* flags (see include/duplex/deflate.h, server side)
 * say otherwise; --no-deflate refuses it:
 *   --deflate-server-window N   our compressor's window, 8..15 bits (default 11), lowered
 *                               to the client's server_max_window_bits; the answer states
 *                               it when below 15 or when the client offered one
 *   --deflate-client-window N   the largest window the client may compress with, 8..15
 *                               (default 15); stated only when the client offered
 *                               client_max_window_bits (RFC 7692 §7.1.2.2)
 *   --deflate-server-no-context-takeover  reset our compressor after each message
 *   --deflate-client-no-context-takeover  ask the client to reset after each message
 *   --deflate-mem-level N       zlib memLevel of our compressor, 1..9 (default 4)
 *   --deflate-level N           zlib compression level, 1..9 (default 6)
 *   --deflate-min BYTES         send messages shorter than this uncompressed, >= 1
 *                               (default 64)
 * A command-line mistake (an unknown option, a missing or bad value, --no-deflate with
 * a --deflate-* flag) prints what is wrong, naming the argument, on stderr and exits
 * 2; --help prints the usage on stdout and exits 0. --cert and --key (PEM) serve wss://
 * (TLS 1.2/1.3) instead of ws://; given several times, the certificate is chosen by
 * the name the client asks for (SNI), the first being the default. --client-ca
 * requires a client certificate signed by one of those CAs (mTLS).
 *
 * SIGINT or SIGTERM: graceful shutdown (every connection closed with 1001, at most
 * 5 s), exit 0.
 *
 * Backpressure: when the echoes a client does not read pass 1 MiB, the server stops
 * reading from that client until they drain, so a client that never reads holds
 * bounded memory here.
 */
#include <duplex/duplex.h>

#include "deflate_flags.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define MAX_LIST 16
#define SHUTDOWN_MS 5000

typedef struct config {
    const char *host;
    const char *unix_path;
    unsigned port;
    unsigned threads;
    const char *protocols[MAX_LIST];
    size_t num_protocols;
    const char *origins[MAX_LIST];
    size_t num_origins;
    const char *auth_token;
    size_t max_message;
    bool commands;
    bool no_deflate;
    bool deflate_flags;        /* a --deflate-* flag was given */
    dx_deflate_config deflate; /* from the --deflate-* flags; zero: the defaults */
    size_t compress_min;       /* --deflate-min; 0: the default */
    uint32_t ping_interval_ms;
    const char *cert_files[MAX_LIST];
    const char *key_files[MAX_LIST];
    size_t num_certs, num_keys;
    const char *client_ca;
} config;

static config cfg = {.port = 9001, .threads = 1, .max_message = (size_t)16 << 20};

typedef struct worker {
    dx_loop *loop;
    dx_server *server;
    pthread_t thread;
    int sigfd; /* the first worker watches the signals */
    dx_io sig_io;
    struct worker *all;
    unsigned num;
    int rc;
} worker;

/* ---- the echo ---------------------------------------------------------------------------- */

/* "!broadcast TEXT": TEXT to every open connection of this thread's server, as one
 * prepared message (compressed once per window, not once per connection). */
static bool broadcast_command(dx_conn *c, dx_span text) {
    static const char cmd[] = "!broadcast ";
    size_t n = sizeof cmd - 1;
    if (text.len < n || memcmp(text.ptr, cmd, n) != 0)
        return false;
    dx_prepared *m;
    int rc = dx_prepared_create(&m, DX_OP_TEXT, (dx_span){text.ptr + n, text.len - n}, NULL);
    if (rc == 0) {
        rc = dx_server_broadcast(dx_conn_server(c), m, NULL);
        dx_prepared_release(m);
    }
    if (rc < 0)
        fprintf(stderr, "echo-server: !broadcast: %s\n", dx_strerror(rc));
    return true;
}

static void run_command(dx_conn *c, dx_span text) {
    if (broadcast_command(c, text))
        return;
    char buf[160];
    size_t n = text.len < sizeof buf - 1 ? text.len : sizeof buf - 1;
    memcpy(buf, text.ptr, n);
    buf[n] = '\0';
    if (strncmp(buf, "!close", 6) == 0) {
        char *end;
        unsigned long code = strtoul(buf + 6, &end, 10);
        while (*end == ' ')
            end++;
        int rc = dx_conn_close(c, (uint16_t)code, dx_span_cstr(end));
        if (rc < 0)
            fprintf(stderr, "echo-server: !close %lu: %s\n", code, dx_strerror(rc));
    } else if (strncmp(buf, "!ping", 5) == 0) {
        const char *p = buf[5] == ' ' ? buf + 6 : buf + 5;
        dx_conn_ping(c, dx_span_cstr(p));
    }
}

static void on_message(dx_conn *c, dx_opcode op, dx_span data, void *user) {
    (void)user;
    if (cfg.commands && op == DX_OP_TEXT && data.len && data.ptr[0] == '!') {
        run_command(c, data);
        return;
    }
    int rc = dx_conn_send(c, op, data);
    if (rc < 0 && rc != DX_ECLOSED) {
        fprintf(stderr, "echo-server: send: %s\n", dx_strerror(rc));
        dx_conn_close(c, DX_CLOSE_INTERNAL_ERROR, dx_span_cstr("echo failed"));
        return;
    }
    if (dx_conn_buffered_amount(c) > ((size_t)1 << 20))
        dx_conn_pause(c); /* the client reads slower than it sends */
}

static void on_drain(dx_conn *c, void *user) {
    (void)user;
    dx_conn_resume(c);
}

/* ---- the upgrade policy ------------------------------------------------------------------ */

static bool origin_allowed(const dx_ws_request *req) {
    if (cfg.num_origins == 0 || !req->has_origin)
        return true;
    for (size_t i = 0; i < cfg.num_origins; i++)
        if (dx_span_eq(req->origin, dx_span_cstr(cfg.origins[i])))
            return true;
    return false;
}

static bool authorized(const dx_ws_request *req) {
    if (!cfg.auth_token)
        return true;
    const dx_http_header *h =
        dx_http_header_find(req->http->headers, req->http->num_headers, "Authorization");
    char want[256];
    snprintf(want, sizeof want, "Bearer %s", cfg.auth_token);
    return h && dx_span_eq(h->value, dx_span_cstr(want));
}

static void on_upgrade(dx_conn *c, const dx_ws_request *req, void *user) {
    static const char text_plain[] = "text/plain";
    const dx_http_header ctype = {dx_span_cstr("Content-Type"), dx_span_cstr(text_plain)};
    if (!authorized(req)) {
        const dx_http_header h[] = {ctype,
                                    {dx_span_cstr("WWW-Authenticate"), dx_span_cstr("Bearer")}};
        dx_conn_respond(c, 401, h, 2, dx_span_cstr("a bearer token is required\n"));
        return;
    }
    if (!origin_allowed(req)) {
        dx_conn_respond(c, 403, &ctype, 1, dx_span_cstr("origin not allowed\n"));
        return;
    }
    dx_accept_options opts = {0};
    if (dx_handshake_select_protocol(req, cfg.protocols, cfg.num_protocols, &opts.protocol) != 0) {
        if (cfg.num_protocols) { /* none of the offers is one we were told to speak */
            char body[512];
            size_t n =
                (size_t)snprintf(body, sizeof body, "no subprotocol in common: this server speaks");
            for (size_t i = 0; i < cfg.num_protocols && n < sizeof body; i++)
                n += (size_t)snprintf(body + n, sizeof body - n, " %s", cfg.protocols[i]);
            if (n < sizeof body)
                snprintf(body + n, sizeof body - n, "\n");
            dx_conn_respond(c, 400, &ctype, 1, dx_span_cstr(body));
            return;
        }
        opts.protocol = req->protocols[0]; /* an echo speaks whatever the client speaks */
    }
    dx_conn_accept(c, &opts, user);
}

/* ---- loops, threads, signals ---------------------------------------------------------------- */

static void on_shutdown_done(dx_server *s, void *user) {
    worker *w = user;
    dx_server_destroy(s);
    w->server = NULL;
    dx_loop_stop(w->loop);
}

static void shutdown_worker(void *arg) {
    worker *w = arg;
    if (w->server)
        dx_server_shutdown(w->server, SHUTDOWN_MS, on_shutdown_done, w);
}

static void on_signal(dx_io *io, unsigned events, void *user) {
    (void)events;
    worker *w = user;
    struct signalfd_siginfo si;
    if (read(w->sigfd, &si, sizeof si) != (ssize_t)sizeof si)
        return;
    dx_io_stop(w->loop, io);
    for (unsigned i = 1; i < w->num; i++)
        dx_loop_post(w->all[i].loop, shutdown_worker, &w->all[i]);
    shutdown_worker(w);
}

static int start_worker(worker *w) {
    dx_tls_cert certs[MAX_LIST];
    for (size_t i = 0; i < cfg.num_certs; i++)
        certs[i] = (dx_tls_cert){.cert_file = cfg.cert_files[i], .key_file = cfg.key_files[i]};
    const dx_tls_server_config tls = {.certs = certs,
                                      .cert_count = cfg.num_certs,
                                      .client_auth = cfg.client_ca ? DX_TLS_CLIENT_AUTH_REQUIRED
                                                                   : DX_TLS_CLIENT_AUTH_NONE,
                                      .client_ca_file = cfg.client_ca};
    dx_server_options o = {
        .tls = cfg.num_certs ? &tls : NULL,
        .host = cfg.host,
        .port = (uint16_t)cfg.port,
        .unix_path = cfg.unix_path,
        .reuse_port = cfg.threads > 1,
        .conn = {.limits.max_message = cfg.max_message,
                 .send = {.max_queue = cfg.max_message * 2 + ((size_t)4 << 20),
                          .low_water = (size_t)256 << 10},
                 .timeouts.ping_interval_ms = cfg.ping_interval_ms,
                 .compression = {.deflate = cfg.no_deflate ? NULL : &cfg.deflate,
                                 .min_size = cfg.compress_min}},
    };
    static const dx_conn_callbacks cb = {
        .on_message = on_message, .on_drain = on_drain, .on_upgrade = on_upgrade};
    int rc = dx_loop_create(&w->loop, NULL);
    if (rc == 0)
        rc = dx_server_create(&w->server, w->loop, &o, &cb, NULL);
    return rc;
}

static void *run_worker(void *arg) {
    worker *w = arg;
    w->rc = dx_loop_run(w->loop);
    return NULL;
}

static void usage(FILE *f) {
    fprintf(f, "usage: echo-server [--port N] [--host H] [--unix PATH] [--threads N]\n"
               "                   [--protocol P]... [--origin O]... [--require-auth TOKEN]\n"
               "                   [--max-message BYTES] [--commands] [--ping-interval MS]\n"
               "                   [--no-deflate] [--deflate-server-window N]\n"
               "                   [--deflate-client-window N]\n"
               "                   [--deflate-server-no-context-takeover]\n"
               "                   [--deflate-client-no-context-takeover]\n"
               "                   [--deflate-mem-level N] [--deflate-level N]\n"
               "                   [--deflate-min BYTES] [--cert FILE --key FILE]...\n"
               "                   [--client-ca FILE]\n"
               "(the comment at the top of examples/echo-server.c says what each does)\n");
}

/* A command-line mistake: name it, exit 2. */
static void bad_usage(const char *arg, const char *why) {
    fprintf(stderr, "echo-server: %s: %s (see echo-server --help)\n", arg, why);
    exit(2);
}

static unsigned long number(const char *flag, const char *s, unsigned long max) {
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || errno || *end || v > max) {
        char why[96];
        snprintf(why, sizeof why, "'%s' is not a number from 0 to %lu", s, max);
        bad_usage(flag, why);
    }
    return v;
}

/* Append @v to a list of at most MAX_LIST entries. */
static void add_to(const char *flag, const char *v, const char **list, size_t *n) {
    if (*n == MAX_LIST)
        bad_usage(flag, "given too many times (at most 16)");
    list[(*n)++] = v;
}

static bool takes_value(const char *a) {
    static const char *const valued[] = {
        "--port",         "--host",        "--unix", "--threads", "--protocol",  "--origin",
        "--require-auth", "--max-message", "--cert", "--key",     "--client-ca", "--ping-interval"};
    for (size_t i = 0; i < sizeof valued / sizeof valued[0]; i++)
        if (strcmp(a, valued[i]) == 0)
            return true;
    return false;
}

static void parse_args(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = true;
        int d = deflate_flag("echo-server", a, v, &cfg.deflate, &cfg.compress_min);
        if (d < 0)
            bad_usage(a, v ? "unknown --deflate-* option" : "needs a value");
        if (d) {
            cfg.deflate_flags = true;
            takes = d == 2;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--commands") == 0) {
            cfg.commands = true;
            takes = false;
        } else if (strcmp(a, "--no-deflate") == 0) {
            cfg.no_deflate = true;
            takes = false;
        } else if (!takes_value(a)) {
            bad_usage(a, a[0] == '-' ? "unknown option" : "unexpected argument");
        } else if (!v) {
            bad_usage(a, "needs a value");
        } else if (strcmp(a, "--port") == 0) {
            cfg.port = (unsigned)number(a, v, 65535);
        } else if (strcmp(a, "--host") == 0) {
            cfg.host = v;
        } else if (strcmp(a, "--unix") == 0) {
            cfg.unix_path = v;
        } else if (strcmp(a, "--threads") == 0) {
            cfg.threads = (unsigned)number(a, v, 256);
            if (cfg.threads == 0)
                bad_usage(a, "must be at least 1");
        } else if (strcmp(a, "--protocol") == 0) {
            add_to(a, v, cfg.protocols, &cfg.num_protocols);
        } else if (strcmp(a, "--origin") == 0) {
            add_to(a, v, cfg.origins, &cfg.num_origins);
        } else if (strcmp(a, "--require-auth") == 0) {
            cfg.auth_token = v;
        } else if (strcmp(a, "--max-message") == 0) {
            cfg.max_message = number(a, v, (unsigned long)1 << 40);
        } else if (strcmp(a, "--cert") == 0) {
            add_to(a, v, cfg.cert_files, &cfg.num_certs);
        } else if (strcmp(a, "--key") == 0) {
            add_to(a, v, cfg.key_files, &cfg.num_keys);
        } else if (strcmp(a, "--client-ca") == 0) {
            cfg.client_ca = v;
        } else if (strcmp(a, "--ping-interval") == 0) {
            cfg.ping_interval_ms = (uint32_t)number(a, v, UINT32_MAX);
        } else {
            bad_usage(a, "unknown option");
        }
        if (takes)
            i++;
    }
    if (cfg.no_deflate && cfg.deflate_flags) {
        fprintf(stderr, "echo-server: --no-deflate contradicts the --deflate-* flags\n");
        exit(2);
    }
    if (cfg.unix_path && cfg.threads > 1)
        bad_usage("--threads", "a Unix socket is served by one thread");
    if (cfg.num_certs != cfg.num_keys)
        bad_usage("--cert", "each --cert needs its --key, in the same order");
    if (cfg.client_ca && !cfg.num_certs)
        bad_usage("--client-ca", "needs --cert and --key (it is for wss://)");
}

int main(int argc, char **argv) {
    parse_args(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &mask, NULL); /* inherited by the worker threads */

    worker *w = calloc(cfg.threads, sizeof *w);
    if (!w)
        return 1;
    for (unsigned i = 0; i < cfg.threads; i++) {
        w[i].all = w;
        w[i].num = cfg.threads;
        int rc = start_worker(&w[i]);
        if (rc < 0) {
            fprintf(stderr, "echo-server: %s\n", dx_strerror(rc));
            return 1;
        }
        if (i == 0 && cfg.port == 0)
            cfg.port = dx_server_port(w[0].server); /* the others share it */
    }
    w[0].sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    dx_io_init(&w[0].sig_io, w[0].sigfd, on_signal, &w[0]);
    if (w[0].sigfd < 0 || dx_io_start(w[0].loop, &w[0].sig_io, DX_IO_READ) != 0) {
        fprintf(stderr, "echo-server: signalfd: %s\n", strerror(errno));
        return 1;
    }
    if (cfg.unix_path)
        printf("listening on unix:%s\n", cfg.unix_path);
    else
        printf("listening on %s:%u\n", cfg.host ? cfg.host : "*", cfg.port);
    fflush(stdout);

    for (unsigned i = 1; i < cfg.threads; i++)
        pthread_create(&w[i].thread, NULL, run_worker, &w[i]);
    run_worker(&w[0]);
    for (unsigned i = 1; i < cfg.threads; i++)
        pthread_join(w[i].thread, NULL);
    int status = 0;
    for (unsigned i = 0; i < cfg.threads; i++) {
        if (w[i].rc < 0)
            status = 1;
        dx_server_destroy(w[i].server);
        dx_loop_run_once(w[i].loop, 0); /* free what was deferred */
        dx_loop_destroy(w[i].loop);
    }
    close(w[0].sigfd);
    free(w);
    return status;
}
