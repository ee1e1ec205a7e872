/*
 * echo-client: connects to a WebSocket server and echoes every message it receives
 * until the server closes the connection.
 *
 *   echo-client URL [--protocol P]... [--protocol-optional]
 *                   [--header "Name: value"]... [--origin O]
 *                   [--proxy URL] [--send TEXT]... [--close-after N]
 *                   [--max-message BYTES] [--quiet] [--no-deflate]
 *                   [--deflate-server-window N] [--deflate-client-window N]
 *                   [--deflate-server-no-context-takeover]
 *                   [--deflate-client-no-context-takeover]
 *                   [--deflate-mem-level N] [--deflate-level N] [--deflate-min BYTES]
 *                   [--ca FILE] [--insecure] [--cert FILE --key FILE]
 *
 * --send sends TEXT once the connection opens (before echoing); --close-after closes
 * with 1000 after echoing N messages. --protocol offers subprotocols; a server that
 * answers without choosing one fails the handshake, as in a browser, unless
 * --protocol-optional (RFC 6455 allows such an answer). Events go to stderr:
 * "open protocol=P extensions=E", "error: ...", and "close code=N clean=0|1
 * remote=0|1 reason=R [error=NAME]" (NAME: the dx_err_name of why the library
 * ended the connection, when it did).
 *
 * permessage-deflate (RFC 7692) is offered with duplex's default settings
 * ("permessage-deflate; client_max_window_bits") unless the --deflate-* flags (see
 * include/duplex/deflate.h, client side) say otherwise; --no-deflate does not offer
 * it. "open" also shows the extensions agreed.
 *   --deflate-server-window N   offer server_max_window_bits=N (8..15): the server must
 *                               compress within 2^N bytes (15: no restriction, not sent)
 *   --deflate-client-window N   our compressor's window, 8..15 (default 11), offered as
 *                               client_max_window_bits=N (without the flag: no value).
 *                               The server may lower it; a larger answer is accepted
 *                               and we keep N
 *   --deflate-server-no-context-takeover  ask the server to reset after each message
 *   --deflate-client-no-context-takeover  reset our compressor after each message (and
 *                               say so in the offer)
 *   --deflate-mem-level N       zlib memLevel of our compressor, 1..9 (default 4)
 *   --deflate-level N           zlib compression level, 1..9 (default 6)
 *   --deflate-min BYTES         send messages shorter than this uncompressed, >= 1
 *                               (default 64)
 * An answer that does not honour the offer (a larger server window, a missing
 * server_no_context_takeover, ...) fails the handshake: "error: malformed or
 * unacceptable permessage-deflate response (offered: OFFER)", exit 2, nothing sent.
 * wss:// URLs verify the server against the system's CAs, or --ca FILE (PEM), and
 * check its name; --insecure skips every check (tests only); --cert and --key
 * present a client certificate (mTLS).
 *
 * Exit status:
 *   0  the connection opened and closed cleanly: the closing handshake completed,
 *      started by the server (with any code) or by --close-after (1000)
 *   1  it ended without a complete closing handshake: TCP dropped (1006), or our
 *      close frame was never answered (close timeout)
 *   2  it never opened (resolution, connect, proxy or handshake failure), or a bad
 *      command line (the message names the argument)
 *   3  the client failed the connection because of what the server did or did not
 *      do: a protocol violation (it sent 1002), invalid UTF-8 or compressed data
 *      (1007), a message over --max-message (1009), no pong to a keep-alive ping
 *      (1011) -- whether or not the server then answered the close frame
 */
#include <duplex/duplex.h>

#include "deflate_flags.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LIST 16

static const char *protocols[MAX_LIST];
static size_t num_protocols;
static dx_http_header headers[MAX_LIST];
static size_t num_headers;
static const char *sends[MAX_LIST];
static size_t num_sends;
static unsigned long close_after;
static unsigned long echoed;
static bool quiet;
static bool opened;
static int status = 2;
static char deflate_offer[160]; /* what we offer, for the error message */

static void on_open(dx_conn *c, void *user) {
    (void)user;
    opened = true;
    dx_span p = dx_conn_protocol(c);
    dx_span e = dx_conn_extensions(c);
    if (!quiet)
        fprintf(stderr, "open protocol=%.*s extensions=%.*s\n", (int)p.len, (const char *)p.ptr,
                (int)e.len, (const char *)e.ptr);
    for (size_t i = 0; i < num_sends; i++)
        dx_conn_send_text(c, dx_span_cstr(sends[i]));
}

static void on_message(dx_conn *c, dx_opcode op, dx_span data, void *user) {
    (void)user;
    int rc = dx_conn_send(c, op, data);
    if (rc < 0 && rc != DX_ECLOSED)
        fprintf(stderr, "echo-client: send: %s\n", dx_strerror(rc));
    if (dx_conn_buffered_amount(c) > ((size_t)1 << 20))
        dx_conn_pause(c); /* the server reads slower than it sends */
    if (close_after && ++echoed == close_after)
        dx_conn_close(c, DX_CLOSE_NORMAL, (dx_span){0});
}

static void on_drain(dx_conn *c, void *user) {
    (void)user;
    dx_conn_resume(c);
}

static void on_error(dx_conn *c, int err, void *user) {
    (void)user;
    if (err == DX_EHS_STATUS || err == DX_EPROXY)
        fprintf(stderr, "error: %s (HTTP %d)\n", dx_strerror(err), dx_conn_http_status(c));
    else if (err == DX_ETLS_ALERT && dx_conn_tls_alert(c))
        fprintf(stderr, "error: %s (%s)\n", dx_strerror(err), dx_conn_tls_alert(c));
    else if (err == DX_EDEFLATE_BAD_ANSWER)
        fprintf(stderr, "error: %s (offered: %s)\n", dx_strerror(err), deflate_offer);
    else
        fprintf(stderr, "error: %s\n", dx_strerror(err));
}

/* The library closed the connection because of what the server did or did not do
 * (rather than the application, the server, or the transport ending it). */
static bool failed_by_us(const dx_close_info *info) {
    return !info->remote && info->error != 0 && info->error != DX_ENOMEM &&
           info->error != DX_ECLOSE_TIMEOUT;
}

static void on_close(dx_conn *c, const dx_close_info *info, void *user) {
    (void)c;
    (void)user;
    if (!quiet) {
        fprintf(stderr, "close code=%u clean=%d remote=%d reason=%.*s", info->code, info->clean,
                info->remote, (int)info->reason.len, (const char *)info->reason.ptr);
        if (info->error && opened)
            fprintf(stderr, " error=%s", dx_err_name(info->error));
        fputc('\n', stderr);
    }
    status = !opened ? 2 : failed_by_us(info) ? 3 : info->clean ? 0 : 1;
}

static void usage(FILE *f) {
    fprintf(f, "usage: echo-client URL [--protocol P]... [--protocol-optional]\n"
               "                   [--header \"Name: value\"]... [--origin O] [--proxy URL]\n"
               "                   [--send TEXT]... [--close-after N] [--max-message BYTES]\n"
               "                   [--quiet] [--no-deflate] [--deflate-server-window N]\n"
               "                   [--deflate-client-window N]\n"
               "                   [--deflate-server-no-context-takeover]\n"
               "                   [--deflate-client-no-context-takeover]\n"
               "                   [--deflate-mem-level N] [--deflate-level N]\n"
               "                   [--deflate-min BYTES] [--ca FILE] [--insecure]\n"
               "                   [--cert FILE --key FILE]\n"
               "(the comment at the top of examples/echo-client.c says what each does)\n");
}

/* A command-line mistake: name it, exit 2. */
static void bad_usage(const char *arg, const char *why) {
    fprintf(stderr, "echo-client: %s: %s (see echo-client --help)\n", arg, why);
    exit(2);
}

static unsigned long number(const char *flag, const char *s) {
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || errno || *end)
        bad_usage(flag, "expected a non-negative number");
    return v;
}

/* "Name: value" into a header whose spans point into @s. */
static void add_header(const char *s) {
    const char *colon = strchr(s, ':');
    if (!colon || colon == s)
        bad_usage(s, "--header takes \"Name: value\"");
    if (num_headers == MAX_LIST)
        bad_usage("--header", "given too many times (at most 16)");
    const char *v = colon + 1;
    while (*v == ' ')
        v++;
    headers[num_headers++] =
        (dx_http_header){{(const uint8_t *)s, (size_t)(colon - s)}, dx_span_cstr(v)};
}

int main(int argc, char **argv) {
    const char *url = NULL;
    static dx_deflate_config deflate; /* duplex's defaults, unless --deflate-* flags */
    bool no_deflate = false, deflate_flags = false;
    dx_tls_client_config tls = {0};
    dx_client_options opts = {.deflate = &deflate,
                              .conn = {.max_message = (size_t)16 << 20,
                                       .max_send_queue = (size_t)40 << 20,
                                       .low_water = (size_t)256 << 10}};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(a, "--quiet") == 0) {
            quiet = true;
            continue;
        }
        if (strcmp(a, "--no-deflate") == 0) {
            no_deflate = true;
            continue;
        }
        if (strcmp(a, "--protocol-optional") == 0) {
            opts.protocol_optional = true;
            continue;
        }
        int d = deflate_flag("echo-client", a, v, &deflate, &opts.conn.compress_min);
        if (d < 0)
            bad_usage(a, v ? "unknown --deflate-* option" : "needs a value");
        if (d) {
            deflate_flags = true;
            i += d - 1;
            continue;
        }
        if (strcmp(a, "--insecure") == 0) {
            tls.insecure = true;
            continue;
        }
        if (a[0] != '-') {
            if (url)
                bad_usage(a, "a second URL");
            url = a;
            continue;
        }
        static const char *const valued[] = {"--protocol",    "--header",     "--ca",    "--cert",
                                             "--key",         "--origin",     "--proxy", "--send",
                                             "--close-after", "--max-message"};
        bool known = false;
        for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++)
            known = known || strcmp(a, valued[k]) == 0;
        if (!known)
            bad_usage(a, "unknown option");
        if (!v)
            bad_usage(a, "needs a value");
        i++;
        if (strcmp(a, "--protocol") == 0) {
            if (num_protocols == MAX_LIST)
                bad_usage(a, "given too many times (at most 16)");
            protocols[num_protocols++] = v;
        } else if (strcmp(a, "--header") == 0) {
            add_header(v);
        } else if (strcmp(a, "--ca") == 0) {
            tls.ca_file = v;
        } else if (strcmp(a, "--cert") == 0) {
            tls.cert_file = v;
        } else if (strcmp(a, "--key") == 0) {
            tls.key_file = v;
        } else if (strcmp(a, "--origin") == 0) {
            opts.origin = v;
        } else if (strcmp(a, "--proxy") == 0) {
            opts.proxy = v;
        } else if (strcmp(a, "--send") == 0) {
            if (num_sends == MAX_LIST)
                bad_usage(a, "given too many times (at most 16)");
            sends[num_sends++] = v;
        } else if (strcmp(a, "--close-after") == 0) {
            close_after = number(a, v);
        } else {
            opts.conn.max_message = number(a, v);
        }
    }
    if (!url)
        bad_usage("URL", "missing (ws://HOST[:PORT]/PATH or wss://...)");
    if (no_deflate && deflate_flags) {
        fprintf(stderr, "echo-client: --no-deflate contradicts the --deflate-* flags\n");
        return 2;
    }
    if (no_deflate) {
        opts.deflate = NULL;
    } else {
        size_t len;
        dx_deflate_write_offer(&deflate, deflate_offer, sizeof deflate_offer, &len);
    }
    signal(SIGPIPE, SIG_IGN);
    opts.tls = &tls;
    opts.protocols = protocols;
    opts.num_protocols = num_protocols;
    opts.headers = headers;
    opts.num_headers = num_headers;
    dx_conn_callbacks cb = {.on_open = on_open,
                            .on_message = on_message,
                            .on_drain = on_drain,
                            .on_error = on_error,
                            .on_close = on_close};
    dx_loop *loop;
    dx_conn *c;
    int rc = dx_loop_create(&loop, NULL);
    if (rc == 0)
        rc = dx_client_connect(&c, loop, url, &opts, &cb, NULL);
    if (rc < 0) {
        fprintf(stderr, "error: %s\n", dx_strerror(rc));
        dx_loop_destroy(loop);
        return 2;
    }
    rc = dx_loop_run(loop);
    dx_loop_destroy(loop);
    if (rc < 0) {
        fprintf(stderr, "echo-client: loop: %s\n", dx_strerror(rc));
        return 1;
    }
    return status;
}
