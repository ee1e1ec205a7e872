/*
 * lws-echo: a minimal libwebsockets echo server, a peer for bench/load/run-echo.sh.
 *
 *   lws-echo [--port N]     (0, the default: the kernel picks a port)
 *
 * Echoes every message with its type (text or binary). Messages are reassembled
 * from however libwebsockets delivers them (fragments, and pieces of large
 * frames), up to 16 MiB; a larger one closes the connection with 1009. Text is
 * UTF-8 checked by libwebsockets (LWS_SERVER_OPTION_VALIDATE_UTF8), as duplex and
 * Node's ws do. Replies are queued per connection and written one per WRITEABLE
 * callback, the way libwebsockets asks; reading pauses while 64 wait.
 * Prints "listening on 127.0.0.1:PORT" once listening. Stop it with a signal.
 *
 * Built by `make bench-peers` only (needs libwebsockets-dev).
 */
#include <libwebsockets.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define MAX_MESSAGE (16u << 20)
#define QUEUE_HIGH 64 /* stop reading while this many replies wait */
#define QUEUE_LOW 16  /* read again below this */

/* One message: received, then queued for the echo. */
typedef struct msg {
    struct msg *next; /* queue link */
    size_t len;       /* payload bytes in data + LWS_PRE */
    size_t cap;       /* payload room after LWS_PRE */
    int binary;       /* the message was binary */
    unsigned char data[];
} msg;

/* Per connection (libwebsockets allocates and zeroes it). */
typedef struct session {
    msg *cur;      /* the message being reassembled; NULL between messages */
    msg *head;     /* replies to write, oldest first */
    msg *tail;     /* last reply */
    size_t queued; /* replies in the queue */
    int rx_paused; /* reading paused for backpressure */
} session;

static int append(session *s, struct lws *wsi, const void *in, size_t len) {
    msg *m = s->cur;
    size_t need = (m ? m->len : 0) + len;
    if (need > MAX_MESSAGE) {
        lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, NULL, 0);
        return -1;
    }
    if (!m || need > m->cap) {
        size_t cap = m ? m->cap * 2 : len + lws_remaining_packet_payload(wsi);
        if (cap < need)
            cap = need;
        if (cap > MAX_MESSAGE)
            cap = MAX_MESSAGE;
        msg *n = realloc(m, sizeof *n + LWS_PRE + cap);
        if (!n)
            return -1;
        if (!m) {
            n->next = NULL;
            n->len = 0;
            n->binary = lws_frame_is_binary(wsi);
        }
        n->cap = cap;
        s->cur = m = n;
    }
    if (len > 0)
        memcpy(m->data + LWS_PRE + m->len, in, len);
    m->len += len;
    return 0;
}

static void free_all(session *s) {
    free(s->cur);
    s->cur = NULL;
    while (s->head) {
        msg *m = s->head;
        s->head = m->next;
        free(m);
    }
    s->tail = NULL;
    s->queued = 0;
}

static int callback_echo(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len) {
    session *s = user;
    switch (reason) {
    case LWS_CALLBACK_RECEIVE:
        if (append(s, wsi, in, len) != 0)
            return -1;
        if (!lws_is_final_fragment(wsi))
            break;
        if (s->tail)
            s->tail->next = s->cur;
        else
            s->head = s->cur;
        s->tail = s->cur;
        s->cur = NULL;
        if (++s->queued >= QUEUE_HIGH && !s->rx_paused) {
            s->rx_paused = 1;
            lws_rx_flow_control(wsi, 0);
        }
        lws_callback_on_writable(wsi);
        break;
    case LWS_CALLBACK_SERVER_WRITEABLE: {
        msg *m = s->head;
        if (!m)
            break;
        int n = lws_write(wsi, m->data + LWS_PRE, m->len,
                          m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
        if (n < 0 || (size_t)n < m->len)
            return -1;
        s->head = m->next;
        if (!s->head)
            s->tail = NULL;
        free(m);
        s->queued--;
        if (s->rx_paused && s->queued < QUEUE_LOW) {
            s->rx_paused = 0;
            lws_rx_flow_control(wsi, 1);
        }
        if (s->head)
            lws_callback_on_writable(wsi);
        break;
    }
    case LWS_CALLBACK_CLOSED:
        free_all(s);
        break;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* The first protocol is the one a client that names none gets. */
static const struct lws_protocols protocols[] = {
    {.name = "echo",
     .callback = callback_echo,
     .per_session_data_size = sizeof(session),
     .rx_buffer_size = 65536},
    {.name = NULL},
};

int main(int argc, char **argv) {
    long port = 0;
    if (argc == 3 && strcmp(argv[1], "--port") == 0) {
        char *end;
        port = strtol(argv[2], &end, 10);
        if (*end != '\0' || end == argv[2] || port < 0 || port > 65535)
            argc = 0;
    }
    if (argc != 1 && argc != 3) {
        fprintf(stderr, "usage: lws-echo [--port N]   (0: any free port)\n");
        return 2;
    }
    struct rlimit rl; /* one descriptor per connection (lws sizes its table from this) */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    lws_set_log_level(LLL_ERR, NULL);

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = (int)port;
    info.iface = "127.0.0.1";
    info.protocols = protocols;
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8 | LWS_SERVER_OPTION_DISABLE_IPV6;
    struct lws_context *ctx = lws_create_context(&info);
    if (!ctx) {
        fprintf(stderr, "lws-echo: lws_create_context failed\n");
        return 1;
    }
    struct lws_vhost *vh = lws_get_vhost_by_name(ctx, "default");
    if (!vh) {
        fprintf(stderr, "lws-echo: no default vhost\n");
        return 1;
    }
    printf("listening on 127.0.0.1:%d\n", lws_get_vhost_listen_port(vh));
    fflush(stdout);
    for (;;)
        if (lws_service(ctx, 0) < 0)
            break;
    lws_context_destroy(ctx);
    return 1;
}
