/*
 * loadgen: drive a WebSocket (or raw TCP) echo server and measure what it costs.
 *
 *   loadgen --url ws://127.0.0.1:PORT/ [--conns N] [--inflight K] [--size BYTES]
 *           [--duration SECS] [--warmup SECS] [--binary] [--raw] [--server-pid PID]
 *           [--mode echo|idle|handshake] [--batch N] [--sources M]
 *           [--tls] [--deflate] [--deflate-window BITS] [--payload cycle|random|text|json]
 *
 * One thread, one epoll loop (edge-triggered), non-blocking sockets. The client
 * side of the protocol is duplex's own: the handshake helpers (handshake.h) and a
 * dx_proto with side=DX_SIDE_CLIENT; permessage-deflate is duplex's codec
 * (deflate.h). TLS is OpenSSL used directly on the non-blocking socket (a bench
 * tool, not library code); the server's certificate is not verified.
 *
 * echo       N connections, K messages of SIZE bytes in flight on each. Every echo
 *            is checked byte for byte (after inflation with --deflate): each
 *            message starts with its connection and sequence number in hex, then a
 *            filler that depends on both, so a lost, repeated, reordered or altered
 *            message is seen.
 * idle       N connections opened, then the server's RSS before and after. With
 *            --deflate, each connection first exchanges one SIZE-byte message each
 *            way, so both halves of the server's codec exist (they are created
 *            lazily); an echo that comes back uncompressed is an error.
 * handshake  N workers, each repeatedly: connect, (TLS handshake,) WebSocket
 *            handshake, close frame, wait for the server to close TCP.
 * --raw      no WebSocket at all: SIZE-byte chunks over plain TCP (for tcp-echo).
 * --tls      wss: TLS (1.2 or 1.3, OpenSSL's defaults) under the WebSocket; also
 *            implied by a wss:// URL. Every handshake is a full one (no resumption).
 * --deflate  offer permessage-deflate (like a browser: client_max_window_bits,
 *            compressing with a 2^BITS window, --deflate-window, 15 by default,
 *            zlib memLevel 8, level 6) and require it; every message we send is
 *            compressed (RSV1); echoes are inflated whether compressed or not.
 * --payload  the filler: cycle (default: the alphabet, or bytes 0..250 with
 *            --binary, repeated: compresses to almost nothing), random (base64
 *            characters, or random bytes with --binary), text (English-like words),
 *            json (JSON records with repeated keys and varying values, like app
 *            traffic). random, text and json are cut from a 1 MiB pool at an
 *            offset that depends on the connection and the sequence number.
 *
 * Prints one result line. Server CPU time comes from /proc/PID/stat (utime + stime
 * of every thread) at the start and the end of the measured window. Any error
 * (refused connection, bad handshake, wrong echo, nothing received for 5 s, the
 * server exiting) is reported on stderr and exits 1; bad options exit 2.
 */
#include <duplex/duplex.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_S 1000000000ull
#define TIMEOUT_NS (5 * NS_PER_S)   /* nothing received for this long is an error */
#define CHECK_EVERY_NS 250000000ull /* how often timeouts and the server are checked */
#define HDR_LEN 16                  /* message header: connection and sequence, hex */
#define READ_BUF_SIZE (256u << 10)  /* the one read buffer every connection shares */
#define MAX_SIZE (16u << 20)        /* the peers allow 16 MiB messages */
#define MAX_EVENTS 512
#define PORTS_PER_SOURCE 25000 /* local ports one source address gives (of ~28k) */
#define IOV_MAX_USED 64
#define POOL_SIZE (1u << 20)      /* random/text/json: messages are cut from this much */
#define INFLATE_CHUNK (64u << 10) /* inflated echoes are checked this much at a time */

typedef enum mode { MODE_ECHO, MODE_IDLE, MODE_HANDSHAKE } mode;
typedef enum payload { PAY_CYCLE, PAY_RANDOM, PAY_TEXT, PAY_JSON } payload;

static const char *const payload_names[] = {"cycle", "random", "text", "json"};

/* The command line. */
static struct options {
    const char *url;         /* as given */
    struct sockaddr_in addr; /* server address */
    char host[64];           /* host for the request's Host header */
    char resource[2048];     /* request target, e.g. "/" */
    dx_request_options req;  /* what the handshake asks for (and checks against) */
    size_t conns;            /* connections (echo, idle) or workers (handshake) */
    size_t inflight;         /* messages in flight per connection */
    size_t size;             /* message size in bytes */
    uint64_t duration_ns;    /* measured window */
    uint64_t warmup_ns;      /* time before the window starts */
    bool binary;             /* binary messages instead of text */
    bool raw;                /* plain TCP, no WebSocket */
    pid_t server_pid;        /* 0: unknown, no server figures */
    mode mode;               /* what to do */
    size_t batch;            /* connections being set up at once */
    unsigned sources;        /* local addresses 127.0.0.1.. to spread ports over */
    size_t max_message;      /* proto limits: the larger of size and the default */
    bool tls;                /* wss: TLS under the WebSocket */
    bool deflate;            /* offer (and require) permessage-deflate */
    payload payload;         /* what fills the messages */
    dx_deflate_config dcfg;  /* our offer and codec settings (--deflate) */
    char offer[128];         /* the Sec-WebSocket-Extensions offer (--deflate) */
} opt = {
    .conns = 100,
    .inflight = 1,
    .size = 20,
    .duration_ns = 5 * NS_PER_S,
    .warmup_ns = 1 * NS_PER_S,
    .mode = MODE_ECHO,
    .batch = 100,
    .dcfg = {.client_max_window_bits = 15, .mem_level = 8},
};

typedef enum conn_state {
    CS_IDLE = 0,   /* no socket */
    CS_CONNECTING, /* TCP connect in progress */
    CS_TLS,        /* TLS handshake in progress (--tls) */
    CS_HANDSHAKE,  /* request being written, response being read */
    CS_OPEN,       /* messages flow (echo), or parked (idle) */
    CS_CLOSING,    /* handshake mode: close sent, waiting for the server's TCP close */
} conn_state;

static const char *const state_names[] = {"idle", "connect", "tls", "handshake", "open", "close"};

/* What a connection needs during the opening handshake only. */
typedef struct handshake_buf {
    dx_client_handshake hs;            /* the key sent and the accept expected */
    dx_http_scan scan;                 /* finds the end of the response head */
    size_t req_len;                    /* bytes in req */
    size_t req_sent;                   /* of which written */
    size_t have;                       /* bytes in resp */
    uint8_t req[4096];                 /* the GET request */
    uint8_t resp[DX_DEFAULT_MAX_HEAD]; /* the response head, maybe frames after it */
} handshake_buf;

typedef struct conn {
    int fd;            /* -1 when idle */
    uint32_t id;       /* slot index; written into every message header */
    uint32_t gen;      /* bumped for every new socket: stale events are ignored */
    conn_state state;  /* see conn_state */
    bool got_close;    /* handshake mode: the server's close frame arrived */
    handshake_buf *hb; /* during the opening handshake only */
    dx_proto *proto;   /* the WebSocket client endpoint (not in raw mode) */
    SSL *ssl;          /* --tls: the TLS connection over fd */
    dx_deflate *dfl;   /* --deflate: our compressor and inflater */
    bool rx_z;         /* --deflate: the message being received is compressed */
    size_t rx_wire;    /* --deflate: frame payload bytes of that message so far */
    uint64_t tx_seq;   /* messages queued so far */
    uint64_t wr_seq;   /* raw mode: messages completely written */
    size_t wr_off;     /* raw mode: bytes of message wr_seq written */
    uint64_t rx_seq;   /* messages completely echoed */
    size_t rx_off;     /* bytes of message rx_seq echoed so far */
    uint64_t *sent_ns; /* send times of the messages in flight, by seq % inflight */
    uint64_t last_ns;  /* last progress: the 5 s timeout counts from here */
    uint64_t start_ns; /* handshake mode: when this cycle's connect started */
} conn;

typedef enum phase {
    PH_CONNECT, /* opening the N connections (echo, idle) */
    PH_WARMUP,  /* running, not measured yet */
    PH_MEASURE, /* the measured window */
    PH_SETTLE,  /* idle mode: the second after the last open */
} phase;

static struct run {
    phase ph;                      /* current phase */
    uint64_t ph_end;               /* when a timed phase ends */
    uint64_t t0, t1;               /* the measured window */
    uint64_t done;                 /* messages (or handshakes) completed in the window */
    uint64_t total_done;           /* ... since the start, for error messages */
    unsigned long long cpu0, cpu1; /* server clock ticks at t0 and t1 */
    double self0, self1;           /* our own CPU seconds at t0 and t1 */
    long rss_before_kb;            /* idle mode: before the first connect */
    long rss_after_kb;             /* at the end */
    size_t open;                   /* connections that completed their setup */
    size_t connecting;             /* connections in CS_CONNECTING or CS_HANDSHAKE */
    size_t next;                   /* next slot to open for the first time */
    uint64_t tx_plain, tx_wire;    /* --deflate, in the window: payload bytes sent, and */
    uint64_t rx_plain, rx_wire;    /* ... their frame payload bytes on the wire; echoes */
    uint64_t rx_compressed;        /* --deflate: echoes that came compressed (all phases) */
} run;

static conn *conns;
static int epfd = -1;
static uint64_t now;      /* monotonic ns, refreshed after every wait and read */
static uint8_t *rbuf;     /* READ_BUF_SIZE: every read lands here */
static uint8_t *txbuf;    /* opt.size: one message being built */
static uint8_t *fill;     /* opt.size + period: the filler pattern */
static size_t period;     /* filler offsets: 26 (text) or 251 (binary), else POOL_SIZE */
static uint8_t *zbuf;     /* --deflate: one compressed message being built */
static size_t zcap;       /* its size (grown when a message does not fit) */
static uint8_t *ibuf;     /* --deflate: INFLATE_CHUNK bytes of inflated echo */
static SSL_CTX *ssl_ctx;  /* --tls */
static uint64_t *sent_ns; /* opt.conns * opt.inflight send times */

/* ---- small helpers ---------------------------------------------------------- */

static uint64_t clock_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

__attribute__((format(printf, 1, 2), noreturn)) static void fatal(const char *fmt, ...) {
    va_list ap;
    fputs("loadgen: error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

__attribute__((format(printf, 1, 2), noreturn)) static void usage_error(const char *fmt, ...) {
    va_list ap;
    fputs("loadgen: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nusage: loadgen --url ws://127.0.0.1:PORT/ [--mode echo|idle|handshake]\n"
          "         [--conns N] [--inflight K] [--size BYTES[k|m]] [--duration SECS]\n"
          "         [--warmup SECS] [--binary] [--raw] [--server-pid PID] [--batch N]\n"
          "         [--sources M] [--tls] [--deflate] [--deflate-window BITS]\n"
          "         [--payload cycle|random|text|json]\n",
          stderr);
    exit(2);
}

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n, size);
    if (!p)
        fatal("out of memory (%zu x %zu bytes)", n, size);
    return p;
}

static double self_cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

/* ---- the server process, through /proc ---------------------------------------- */

/* Read /proc/PID/stat: the state letter and utime + stime in clock ticks. */
static bool proc_stat(pid_t pid, char *state, unsigned long long *ticks) {
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold spaces and parens */
    if (!p)
        return false;
    /* after ")": field 3 (state), then 4..13, then 14 utime and 15 stime */
    unsigned long long ut, st;
    if (sscanf(p + 1, " %c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", state, &ut, &st) !=
        3)
        return false;
    *ticks = ut + st;
    return true;
}

static bool server_alive(void) {
    char st;
    unsigned long long t;
    return proc_stat(opt.server_pid, &st, &t) && st != 'Z' && st != 'X' && st != 'x';
}

static unsigned long long server_ticks(void) {
    char st;
    unsigned long long t;
    if (!proc_stat(opt.server_pid, &st, &t) || st == 'Z' || st == 'X' || st == 'x')
        fatal("server process %d has exited", (int)opt.server_pid);
    return t;
}

/* VmRSS of the server in KiB. */
static long server_rss_kb(void) {
    char path[64], line[256];
    long kb = -1;
    snprintf(path, sizeof path, "/proc/%d/status", (int)opt.server_pid);
    FILE *f = fopen(path, "r");
    if (!f)
        fatal("server process %d has exited (no %s)", (int)opt.server_pid, path);
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    if (kb < 0)
        fatal("no VmRSS in %s (a zombie?)", path);
    return kb;
}

/* ---- latency histogram: 32 sub-buckets per power of two (3 % steps), no allocation --- */

#define HIST_SUB_BITS 5u
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS ((64u - HIST_SUB_BITS + 1u) * HIST_SUB)

static uint64_t hist[HIST_BUCKETS];
static uint64_t hist_total;

static size_t hist_index(uint64_t v) {
    if (v < 2 * HIST_SUB)
        return (size_t)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= HIST_SUB_BITS + 1 */
    return (size_t)(e - HIST_SUB_BITS + 1u) * HIST_SUB +
           (size_t)((v >> (e - HIST_SUB_BITS)) & (HIST_SUB - 1u));
}

/* The middle of bucket @i. */
static uint64_t hist_value(size_t i) {
    if (i < 2 * HIST_SUB)
        return i;
    unsigned e = (unsigned)(i / HIST_SUB) + HIST_SUB_BITS - 1u;
    uint64_t sub = i % HIST_SUB;
    uint64_t width = 1ull << (e - HIST_SUB_BITS);
    return (HIST_SUB + sub) * width + width / 2;
}

static void hist_add(uint64_t ns) {
    hist[hist_index(ns)]++;
    hist_total++;
}

/* The @q quantile in microseconds (0 when empty). */
static double hist_quantile_us(double q) {
    if (hist_total == 0)
        return 0;
    double want = q * (double)hist_total;
    uint64_t target = (uint64_t)want;
    if ((double)target < want)
        target++;
    if (target == 0)
        target = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        seen += hist[i];
        if (seen >= target)
            return (double)hist_value(i) / 1000.0;
    }
    return (double)hist_value(HIST_BUCKETS - 1) / 1000.0;
}

/* ---- the message pattern ------------------------------------------------------ */

/* The first HDR_LEN bytes of message @seq on connection @id: 16 hex digits of
 * id << 40 | seq, least significant first, so even a 1-byte message changes
 * from one message to the next. */
static void make_hdr(uint8_t h[HDR_LEN], uint32_t id, uint64_t seq) {
    static const char hex[] = "0123456789abcdef";
    uint64_t v = ((uint64_t)id << 40) | (seq & ((1ull << 40) - 1));
    for (size_t i = 0; i < HDR_LEN; i++, v >>= 4)
        h[i] = (uint8_t)hex[v & 15];
}

static uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The filler of message @seq on connection @id: bytes HDR_LEN.. are
 * fill[shift + i - HDR_LEN]. The cycle payload shifts by the sequence number
 * alone, as it always did; the pools are cut at a pseudo-random place, so that
 * consecutive messages do not repeat each other (a compressor with context
 * takeover would otherwise find each message in its window). */
static const uint8_t *filler(uint32_t id, uint64_t seq) {
    if (opt.payload == PAY_CYCLE)
        return fill + seq % period;
    uint64_t st = ((uint64_t)id << 40) ^ seq;
    return fill + splitmix64(&st) % period;
}

/* Append @s to @p (at most @end), returning the new end. */
static uint8_t *put(uint8_t *p, const uint8_t *end, const char *s) {
    while (*s && p < end)
        *p++ = (uint8_t)*s++;
    return p;
}

static const char *pick(const char *const *list, size_t n, uint64_t *rng) {
    return list[splitmix64(rng) % n];
}

/* Fill @buf (@len bytes) with the --payload pattern. Deterministic (fixed seed);
 * every byte is ASCII except random with --binary, so text messages are UTF-8. */
static void make_fill(uint8_t *buf, size_t len) {
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    static const char *const words[] = {
        "the",     "of",     "and",     "to",      "in",      "is",      "that",     "for",
        "it",      "as",     "was",     "with",    "be",      "by",      "on",       "not",
        "he",      "this",   "are",     "or",      "his",     "from",    "at",       "which",
        "but",     "have",   "an",      "had",     "they",    "you",     "were",     "their",
        "one",     "all",    "we",      "can",     "her",     "has",     "there",    "been",
        "if",      "more",   "when",    "will",    "would",   "who",     "so",       "no",
        "server",  "client", "message", "network", "latency", "buffer",  "window",   "frame",
        "request", "answer", "memory",  "connect", "between", "through", "because",  "while",
        "people",  "time",   "year",    "world",   "system",  "program", "question", "small",
        "large",   "number", "another", "example", "without", "several", "always",   "before"};
    static const char *const types[] = {"trade", "quote", "update", "heartbeat", "order"};
    static const char *const symbols[] = {"BTC-USD", "ETH-USD",  "SOL-USD",
                                          "ETH-BTC", "DOGE-USD", "ADA-USD"};
    static const char *const names[] = {"alice", "bob",   "carol", "dave", "erin",
                                        "frank", "grace", "heidi", "ivan", "judy"};
    static const char *const tiers[] = {"free", "basic", "gold", "platinum"};
    static const char *const sides[] = {"buy", "sell"};
    uint64_t rng = 42;
    uint8_t *p = buf, *end = buf + len;
    char tmp[512];
    if (opt.payload == PAY_RANDOM) {
        for (size_t i = 0; i < len; i++) {
            uint64_t r = splitmix64(&rng);
            buf[i] = opt.binary ? (uint8_t)r : (uint8_t)b64[r & 63];
        }
        return;
    }
    uint64_t ts = 1718030400000ull, id = 48213;
    while (p < end) {
        if (opt.payload == PAY_TEXT) {
            size_t n = 6 + splitmix64(&rng) % 12; /* words in a sentence */
            for (size_t w = 0; w < n && p < end; w++) {
                const char *word = pick(words, sizeof words / sizeof *words, &rng);
                if (w == 0 && p < end) { /* capitalised */
                    *p++ = (uint8_t)(word[0] - 'a' + 'A');
                    word++;
                }
                p = put(p, end, word);
                p = put(p, end, w + 1 < n ? (splitmix64(&rng) % 9 == 0 ? ", " : " ") : ". ");
            }
            continue;
        }
        /* json: one record per line */
        uint64_t r1 = splitmix64(&rng), r2 = splitmix64(&rng);
        ts += r1 % 2000;
        id += 1 + r2 % 7;
        snprintf(tmp, sizeof tmp,
                 "{\"id\":%" PRIu64 ",\"type\":\"%s\",\"symbol\":\"%s\",\"price\":%u.%02u,"
                 "\"qty\":0.%04u,\"side\":\"%s\",\"ts\":%" PRIu64 ",\"user\":{\"name\":\"%s\","
                 "\"tier\":\"%s\",\"verified\":%s},\"tags\":[\"api\",\"%s\"]}\n",
                 id, pick(types, 5, &rng), pick(symbols, 6, &rng), (unsigned)(1000 + r1 % 2000),
                 (unsigned)(r2 % 100), (unsigned)(r1 >> 20) % 10000u, pick(sides, 2, &rng), ts,
                 pick(names, 10, &rng), pick(tiers, 4, &rng), (r2 >> 33) & 1 ? "true" : "false",
                 (r2 >> 34) & 1 ? "fast" : "bulk");
        p = put(p, end, tmp);
    }
}

static size_t min_sz(size_t a, size_t b) {
    return a < b ? a : b;
}

/* Write message @seq of connection @c into txbuf. */
static void build_message(const conn *c, uint64_t seq) {
    uint8_t h[HDR_LEN];
    make_hdr(h, c->id, seq);
    memcpy(txbuf, h, min_sz(HDR_LEN, opt.size));
    if (opt.size > HDR_LEN)
        memcpy(txbuf + HDR_LEN, filler(c->id, seq), opt.size - HDR_LEN);
}

static void mismatch(const conn *c, const uint8_t *got, const uint8_t *want, size_t n, size_t off) {
    size_t i = 0;
    while (i < n && got[i] == want[i])
        i++;
    fatal("connection %u, message %" PRIu64 ": echoed byte %zu is 0x%02x, sent 0x%02x", c->id,
          c->rx_seq, off + i, got[i], want[i]);
}

/* Check @n echoed bytes that sit at c->rx_off in message c->rx_seq. */
static void check_piece(const conn *c, const uint8_t *p, size_t n) {
    size_t off = c->rx_off;
    if (off + n > opt.size)
        fatal("connection %u, message %" PRIu64 ": echo longer than the %zu bytes sent", c->id,
              c->rx_seq, opt.size);
    if (off < HDR_LEN && n > 0) {
        uint8_t h[HDR_LEN];
        make_hdr(h, c->id, c->rx_seq);
        size_t k = min_sz(min_sz(HDR_LEN, opt.size) - off, n);
        if (memcmp(p, h + off, k) != 0)
            mismatch(c, p, h + off, k, off);
        p += k;
        n -= k;
        off += k;
    }
    if (n > 0) {
        const uint8_t *want = filler(c->id, c->rx_seq) + (off - HDR_LEN);
        if (memcmp(p, want, n) != 0)
            mismatch(c, p, want, n, off);
    }
}

/* Message c->rx_seq is completely echoed. */
static void message_done(conn *c) {
    uint64_t lat = now - c->sent_ns[c->rx_seq % opt.inflight];
    if (run.ph == PH_MEASURE) {
        hist_add(lat);
        run.done++;
    }
    run.total_done++;
    c->rx_seq++;
    c->rx_off = 0;
    if (opt.mode == MODE_IDLE) { /* --deflate: the one exchange is done, park it */
        run.open++;
        dx_deflate_destroy(c->dfl); /* our side's memory: nothing more will flow */
        c->dfl = NULL;
    }
}

/* ---- TLS ---------------------------------------------------------------------------- */

/* The OpenSSL error queue as one string (for fatal messages). */
static const char *ssl_errors(void) {
    static char msg[512];
    size_t len = 0;
    unsigned long e;
    msg[0] = '\0';
    while ((e = ERR_get_error()) != 0 && len + 2 < sizeof msg) {
        if (len)
            msg[len++] = ';';
        ERR_error_string_n(e, msg + len, sizeof msg - len);
        len += strlen(msg + len);
    }
    return len ? msg : "no OpenSSL error queued";
}

static void tls_init(void) {
    ssl_ctx = SSL_CTX_new(TLS_client_method());
    if (!ssl_ctx)
        fatal("SSL_CTX_new: %s", ssl_errors());
    SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_NONE, NULL); /* our own test certificate */
    /* partial writes: the proto's output is consumed as records go out, and it may
     * move (grow) between a write that would block and its retry */
    SSL_CTX_set_mode(ssl_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* a TCP close without close_notify ends the stream like one (handshake mode) */
    SSL_CTX_set_options(ssl_ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
}

/* What an SSL_read/SSL_write/SSL_do_handshake result @r means, as read(2) would
 * say it: > 0 bytes, 0 for the end of the stream, -1 with errno (EAGAIN when it
 * would block). A TLS failure is fatal. */
static ssize_t tls_result(const conn *c, int r, const char *what) {
    if (r > 0)
        return r;
    int err = SSL_get_error(c->ssl, r);
    switch (err) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        errno = EAGAIN; /* edge-triggered epoll reports the socket's next change */
        return -1;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        if (errno == 0)
            errno = ECONNRESET;
        return -1;
    default:
        fatal("connection %u: TLS %s failed: %s", c->id, what, ssl_errors());
    }
}

/* read(2) through TLS when --tls. */
static ssize_t io_read(conn *c, uint8_t *buf, size_t cap) {
    if (!c->ssl)
        return read(c->fd, buf, cap);
    ERR_clear_error();
    errno = 0;
    return tls_result(c, SSL_read(c->ssl, buf, cap > INT_MAX ? INT_MAX : (int)cap), "read");
}

/* write(2) through TLS when --tls. A write that would block is retried later with
 * the same bytes at the start of a buffer at least as long (the proto's output
 * only grows until consumed), as OpenSSL requires. */
static ssize_t io_write(conn *c, const uint8_t *p, size_t n) {
    if (!c->ssl)
        return write(c->fd, p, n);
    ERR_clear_error();
    errno = 0;
    return tls_result(c, SSL_write(c->ssl, p, n > INT_MAX ? INT_MAX : (int)n), "write");
}

/* ---- connections ---------------------------------------------------------------- */

static void conn_close(conn *c) {
    SSL_free(c->ssl); /* no close_notify: the server closed first, or we are done */
    c->ssl = NULL;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    dx_proto_destroy(c->proto);
    c->proto = NULL;
    dx_deflate_destroy(c->dfl);
    c->dfl = NULL;
    free(c->hb);
    c->hb = NULL;
    c->state = CS_IDLE;
}

static void conn_start(conn *c) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        fatal("socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (opt.sources > 1) {
        /* spread the 4-tuples over 127.0.0.1..M; the port is still picked at connect */
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr = htonl(INADDR_LOOPBACK + c->id % opt.sources);
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(fd, (struct sockaddr *)&src, sizeof src) != 0)
            fatal("bind to 127.0.0.%u: %s", 1 + c->id % opt.sources, strerror(errno));
    }
    c->fd = fd;
    c->gen++;
    c->state = CS_CONNECTING;
    c->got_close = false;
    c->tx_seq = c->wr_seq = c->rx_seq = 0;
    c->wr_off = c->rx_off = 0;
    c->start_ns = c->last_ns = now;
    run.connecting++;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                             .data.u64 = (uint64_t)c->gen << 32 | c->id};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
        fatal("epoll_ctl: %s", strerror(errno));
    if (connect(fd, (struct sockaddr *)&opt.addr, sizeof opt.addr) != 0 && errno != EINPROGRESS)
        fatal("connect to %s (connection %u): %s%s", opt.url, c->id, strerror(errno),
              errno == EADDRNOTAVAIL ? " (out of local ports: try --sources)" : "");
}

/* Queue txbuf compressed, with RSV1 (--deflate). */
static void send_compressed(conn *c, dx_opcode op) {
    size_t in_off = 0, len = 0;
    for (;;) {
        size_t used = 0, wrote = 0;
        int rc = dx_deflate_compress(c->dfl, (dx_span){txbuf + in_off, opt.size - in_off}, true,
                                     zbuf + len, zcap - len, &used, &wrote);
        in_off += used;
        len += wrote;
        if (rc == 0)
            break;
        if (rc != DX_ENOSPACE)
            fatal("dx_deflate_compress: %s", dx_strerror(rc));
        zcap *= 2; /* incompressible data grows a little */
        zbuf = realloc(zbuf, zcap);
        if (!zbuf)
            fatal("out of memory (%zu bytes)", zcap);
    }
    int rc = dx_proto_send_rsv(c->proto, op, (dx_span){zbuf, len}, true, DX_RSV1);
    if (rc != 0)
        fatal("dx_proto_send_rsv: %s", dx_strerror(rc));
    if (run.ph == PH_MEASURE) {
        run.tx_plain += opt.size;
        run.tx_wire += len;
    }
}

/* How many messages a connection keeps in flight: K in echo mode; in idle mode
 * with --deflate, one message in all (so the server's codec exists). */
static bool window_open(const conn *c) {
    if (opt.mode == MODE_ECHO)
        return c->tx_seq - c->rx_seq < opt.inflight;
    return opt.mode == MODE_IDLE && opt.deflate && c->tx_seq == 0;
}

/* Queue messages until the window is full. */
static void fill_window(conn *c) {
    if (c->state != CS_OPEN)
        return;
    while (window_open(c)) {
        if (c->tx_seq == c->rx_seq)
            c->last_ns = now; /* nothing was outstanding: the timeout starts now */
        c->sent_ns[c->tx_seq % opt.inflight] = now;
        if (!opt.raw) {
            dx_opcode op = opt.binary ? DX_OP_BINARY : DX_OP_TEXT;
            build_message(c, c->tx_seq);
            if (c->dfl) {
                send_compressed(c, op);
            } else {
                int rc = dx_proto_send(c->proto, op, (dx_span){txbuf, opt.size}, true);
                if (rc != 0)
                    fatal("dx_proto_send: %s", dx_strerror(rc));
            }
        }
        c->tx_seq++;
    }
}

static void write_failed(const conn *c, const char *what) {
    fatal("connection %u: %s: %s (server gone?)", c->id, what, strerror(errno));
}

/* Write what is queued until done or the socket is full (edge-triggered epoll will
 * report when there is room again). */
static void conn_flush(conn *c) {
    if (c->state == CS_HANDSHAKE && c->hb) {
        handshake_buf *hb = c->hb;
        while (hb->req_sent < hb->req_len) {
            ssize_t w = io_write(c, hb->req + hb->req_sent, hb->req_len - hb->req_sent);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0 && errno == EAGAIN)
                return;
            if (w < 0)
                write_failed(c, "write");
            hb->req_sent += (size_t)w;
        }
        return;
    }
    if (c->state != CS_OPEN && c->state != CS_CLOSING)
        return;
    if (!opt.raw) {
        for (;;) {
            dx_span out = dx_proto_output(c->proto);
            if (out.len == 0)
                return;
            ssize_t w = io_write(c, out.ptr, out.len);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0 && errno == EAGAIN)
                return;
            if (w < 0)
                write_failed(c, "write");
            dx_proto_output_consume(c->proto, (size_t)w);
        }
    }
    /* raw: the bytes are generated from (wr_seq, wr_off); nothing is buffered */
    while (c->wr_seq < c->tx_seq) {
        struct iovec iov[IOV_MAX_USED];
        uint8_t hdrs[IOV_MAX_USED / 2][HDR_LEN];
        int n = 0;
        size_t m = 0, off = c->wr_off, hl = min_sz(HDR_LEN, opt.size);
        for (uint64_t s = c->wr_seq; s < c->tx_seq && n + 2 <= IOV_MAX_USED; s++, m++, off = 0) {
            make_hdr(hdrs[m], c->id, s);
            if (off < hl)
                iov[n++] = (struct iovec){hdrs[m] + off, hl - off};
            if (opt.size > HDR_LEN) {
                size_t fo = off > HDR_LEN ? off - HDR_LEN : 0;
                iov[n++] = (struct iovec){(void *)(filler(c->id, s) + fo), opt.size - HDR_LEN - fo};
            }
        }
        ssize_t w = writev(c->fd, iov, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN)
            return;
        if (w < 0)
            write_failed(c, "writev");
        size_t left = (size_t)w;
        while (left > 0) {
            size_t rest = opt.size - c->wr_off;
            if (left < rest) {
                c->wr_off += left;
                break;
            }
            left -= rest;
            c->wr_seq++;
            c->wr_off = 0;
        }
    }
}

/* The connection is set up: TCP connected (raw) or handshake done (WebSocket). */
static void conn_opened(conn *c) {
    c->state = CS_OPEN;
    c->last_ns = now;
    run.connecting--;
    if (opt.mode != MODE_HANDSHAKE) {
        if (opt.mode == MODE_ECHO || !opt.deflate)
            run.open++; /* idle with --deflate: once its exchange is done */
        return;
    }
    /* handshake mode: close at once; the server must answer and close TCP */
    c->state = CS_CLOSING;
    if (opt.raw) {
        if (shutdown(c->fd, SHUT_WR) != 0)
            write_failed(c, "shutdown");
        return;
    }
    int rc = dx_proto_close(c->proto, DX_CLOSE_NORMAL, (dx_span){0});
    if (rc != 0)
        fatal("dx_proto_close: %s", dx_strerror(rc));
}

/* A handshake cycle ended with the server's TCP close: count it, start the next. */
static void cycle_done(conn *c) {
    if (run.ph == PH_MEASURE) {
        hist_add(now - c->start_ns);
        run.done++;
    }
    run.total_done++;
    conn_close(c);
    conn_start(c);
}

/* Inflate a piece of a compressed echo and check what comes out. */
static void inflate_piece(conn *c, dx_span in, bool fin) {
    for (;;) {
        size_t used = 0, wrote = 0;
        int rc = dx_deflate_inflate(c->dfl, in, fin, ibuf, INFLATE_CHUNK, &used, &wrote);
        if (rc != 0 && rc != DX_ENOSPACE)
            fatal("connection %u, message %" PRIu64 ": inflating the echo: %s", c->id, c->rx_seq,
                  dx_strerror(rc));
        check_piece(c, ibuf, wrote);
        c->rx_off += wrote;
        in.ptr += used;
        in.len -= used;
        if (rc == 0)
            return;
    }
}

static void on_data(conn *c, const dx_event *ev) {
    bool expected = opt.mode == MODE_ECHO || (opt.mode == MODE_IDLE && opt.deflate);
    if (c->state != CS_OPEN || !expected)
        fatal("connection %u: unexpected data message from the server", c->id);
    if (ev->u.data.first) {
        if (c->rx_seq >= c->tx_seq)
            fatal("connection %u: a message arrived that was never sent (after %" PRIu64 ")", c->id,
                  c->rx_seq);
        dx_opcode want = opt.binary ? DX_OP_BINARY : DX_OP_TEXT;
        if (ev->u.data.opcode != want)
            fatal("connection %u, message %" PRIu64 ": echoed as %s, sent as %s", c->id, c->rx_seq,
                  ev->u.data.opcode == DX_OP_TEXT ? "text" : "binary",
                  want == DX_OP_TEXT ? "text" : "binary");
        c->rx_z = (ev->u.data.rsv & DX_RSV1) != 0; /* the proto allows it only with --deflate */
        c->rx_wire = 0;
    }
    c->rx_wire += ev->u.data.data.len;
    if (c->rx_z) {
        inflate_piece(c, ev->u.data.data, ev->u.data.fin);
    } else {
        check_piece(c, ev->u.data.data.ptr, ev->u.data.data.len);
        c->rx_off += ev->u.data.data.len;
    }
    if (ev->u.data.fin) {
        if (c->rx_off != opt.size)
            fatal("connection %u, message %" PRIu64 ": echo has %zu bytes, sent %zu", c->id,
                  c->rx_seq, c->rx_off, opt.size);
        if (c->rx_z)
            run.rx_compressed++;
        else if (opt.mode == MODE_IDLE)
            fatal("connection %u: the echo came uncompressed, so the server's codec may not "
                  "exist and the memory figure would lie (a --size under its threshold?)",
                  c->id);
        if (run.ph == PH_MEASURE) {
            run.rx_plain += opt.size;
            run.rx_wire += c->rx_wire;
        }
        message_done(c);
    }
}

static void on_close(conn *c, const dx_event *ev) {
    if (opt.mode == MODE_HANDSHAKE && c->state == CS_CLOSING && ev->u.close.remote) {
        c->got_close = true;
        return;
    }
    fatal("connection %u: %s close, code %u \"%.*s\" (after %" PRIu64 " messages in all)", c->id,
          ev->u.close.remote ? "the server sent a" : "protocol error, our", ev->u.close.code,
          (int)ev->u.close.reason.len, (const char *)ev->u.close.reason.ptr, run.total_done);
}

/* Feed bytes from the server to the WebSocket endpoint. */
static void ws_input(conn *c, uint8_t *buf, size_t len) {
    while (len > 0) {
        size_t used = 0;
        dx_event ev = {0};
        int rc = dx_proto_recv(c->proto, buf, len, &used, &ev);
        if (rc < 0)
            fatal("dx_proto_recv: %s", dx_strerror(rc));
        if (used == 0 && ev.type == DX_EV_NONE)
            fatal("dx_proto_recv made no progress");
        buf += used;
        len -= used;
        if (ev.type == DX_EV_DATA)
            on_data(c, &ev);
        else if (ev.type == DX_EV_CLOSE)
            on_close(c, &ev);
    }
}

/* Bytes from a raw TCP echo: the stream of the messages sent, in order. */
static void raw_input(conn *c, const uint8_t *p, size_t n) {
    if (c->state != CS_OPEN || opt.mode != MODE_ECHO)
        fatal("connection %u: %zu unexpected bytes from the server", c->id, n);
    while (n > 0) {
        if (c->rx_seq >= c->wr_seq && (c->rx_seq > c->wr_seq || c->rx_off + n > c->wr_off))
            fatal("connection %u: received bytes that were never sent", c->id);
        size_t k = min_sz(n, opt.size - c->rx_off);
        check_piece(c, p, k);
        c->rx_off += k;
        p += k;
        n -= k;
        if (c->rx_off == opt.size)
            message_done(c);
    }
}

/* The server's 101 answer is complete in hb->resp[0..head_len). */
static void handshake_done(conn *c, size_t head_len) {
    handshake_buf *hb = c->hb;
    dx_http_header headers[DX_DEFAULT_MAX_HEADERS];
    dx_http_response resp;
    dx_ws_response ws;
    int rc = dx_http_parse_response(hb->resp, head_len, &resp, headers, DX_DEFAULT_MAX_HEADERS);
    if (rc != 0)
        fatal("connection %u: malformed handshake response: %s", c->id, dx_strerror(rc));
    rc = dx_handshake_check_response(&hb->hs, &opt.req, &resp, &ws);
    if (rc != 0)
        fatal("connection %u: handshake refused (HTTP %d): %s", c->id, resp.status,
              dx_strerror(rc));
    dx_proto_config cfg = {
        .side = DX_SIDE_CLIENT,
        .limits = {.max_frame = opt.max_message,
                   .max_message = opt.max_message,
                   .max_send_queue = opt.inflight * (opt.size + DX_MAX_HEADER_LEN) + (1u << 20)},
        .rsv_allowed = opt.deflate ? DX_RSV1 : 0,
    };
    if (opt.deflate) {
        dx_ext exts[DX_MAX_EXTENSIONS];
        dx_ext_param params[DX_MAX_EXT_PARAMS];
        size_t num_exts = 0, num_params = 0;
        dx_deflate_params agreed;
        rc = ws.extensions.len == 0
                 ? DX_EDEFLATE_NONE /* no header: nothing agreed */
                 : dx_ext_parse_value(ws.extensions, exts, DX_MAX_EXTENSIONS, &num_exts, params,
                                      DX_MAX_EXT_PARAMS, &num_params);
        if (rc == 0)
            rc = dx_deflate_check_answer(&opt.dcfg, exts, num_exts, &agreed);
        if (rc == DX_EDEFLATE_NONE)
            fatal("connection %u: the server did not accept permessage-deflate", c->id);
        if (rc != 0)
            fatal("connection %u: bad permessage-deflate answer \"%.*s\": %s", c->id,
                  (int)ws.extensions.len, (const char *)ws.extensions.ptr, dx_strerror(rc));
        rc = dx_deflate_create(&c->dfl, &agreed, false, &opt.dcfg, opt.max_message, NULL);
        if (rc != 0)
            fatal("dx_deflate_create: %s", dx_strerror(rc));
    }
    rc = dx_proto_create(&c->proto, &cfg);
    if (rc != 0)
        fatal("dx_proto_create: %s", dx_strerror(rc));
    size_t extra = hb->have - head_len;
    conn_opened(c);
    if (extra > 0) /* frames that came with the head */
        ws_input(c, hb->resp + head_len, extra);
    free(c->hb);
    c->hb = NULL;
}

/* The server closed TCP (EOF). */
static void conn_eof(conn *c) {
    if (opt.mode == MODE_HANDSHAKE && c->state == CS_CLOSING) {
        if (!opt.raw && !c->got_close)
            fatal("connection %u: the server closed TCP without answering our close frame", c->id);
        cycle_done(c);
        return;
    }
    fatal("connection %u: the server closed the connection during %s (after %" PRIu64
          " messages in all)",
          c->id, state_names[c->state], run.total_done);
}

/* Read until the socket is empty. Returns false if the slot got a new socket. */
static bool conn_read(conn *c) {
    uint32_t gen = c->gen;
    for (;;) {
        uint8_t *buf = rbuf;
        size_t cap = READ_BUF_SIZE;
        if (c->state == CS_HANDSHAKE) {
            buf = c->hb->resp + c->hb->have;
            cap = sizeof c->hb->resp - c->hb->have;
        }
        ssize_t n = io_read(c, buf, cap);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return true;
        if (n < 0)
            fatal("connection %u: read during %s: %s (server gone?)", c->id, state_names[c->state],
                  strerror(errno));
        now = clock_ns();
        if (n == 0) {
            conn_eof(c);
            return false;
        }
        c->last_ns = now;
        if (c->state == CS_HANDSHAKE) {
            handshake_buf *hb = c->hb;
            size_t head_len;
            hb->have += (size_t)n;
            int rc = dx_http_scan_feed(&hb->scan, hb->resp, hb->have, &head_len);
            if (rc == DX_EINCOMPLETE)
                continue;
            if (rc != 0)
                fatal("connection %u: bad handshake response: %s", c->id, dx_strerror(rc));
            handshake_done(c, head_len);
        } else if (opt.raw) {
            raw_input(c, buf, (size_t)n);
        } else {
            ws_input(c, buf, (size_t)n);
        }
        if (c->gen != gen)
            return false;
    }
}

/* Prepare the WebSocket upgrade request (conn_flush sends it). */
static void ws_request(conn *c) {
    handshake_buf *hb = xcalloc(1, sizeof *hb);
    int rc = dx_client_handshake_init(&hb->hs, NULL);
    if (rc == 0)
        rc = dx_handshake_write_request(&hb->hs, &opt.req, hb->req, sizeof hb->req, &hb->req_len);
    if (rc != 0)
        fatal("writing the handshake request: %s", dx_strerror(rc));
    c->hb = hb;
    c->state = CS_HANDSHAKE;
}

/* TCP connect finished (or failed). */
static void conn_connected(conn *c) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err != 0)
        fatal("connect to %s (connection %u): %s", opt.url, c->id, strerror(err));
    if (opt.raw) {
        conn_opened(c);
        return;
    }
    if (opt.tls) {
        c->ssl = SSL_new(ssl_ctx);
        if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1)
            fatal("SSL_new: %s", ssl_errors());
        SSL_set_connect_state(c->ssl);
        c->state = CS_TLS;
        return;
    }
    ws_request(c);
}

/* Drive the TLS handshake; once it is done, the WebSocket handshake starts.
 * Returns false while it is not done. */
static bool tls_step(conn *c) {
    ERR_clear_error();
    errno = 0;
    ssize_t r = tls_result(c, SSL_do_handshake(c->ssl), "handshake");
    if (r > 0) {
        now = clock_ns();
        c->last_ns = now;
        ws_request(c);
        return true;
    }
    if (r < 0 && errno == EAGAIN)
        return false;
    if (r == 0)
        fatal("connection %u: the server closed the connection during the TLS handshake", c->id);
    fatal("connection %u: TLS handshake: %s (server gone?)", c->id, strerror(errno));
}

static void conn_event(conn *c, uint32_t events) {
    if (c->state == CS_CONNECTING) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        conn_connected(c);
    }
    if (c->state == CS_TLS && !tls_step(c))
        return;
    if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && !conn_read(c))
        return;
    fill_window(c);
    conn_flush(c);
}

/* ---- phases, timeouts, results ---------------------------------------------------- */

static void start_pending(void) {
    while (run.next < opt.conns && run.connecting < opt.batch) {
        conn *c = &conns[run.next++];
        conn_start(c);
    }
}

static void check_timeouts(void) {
    for (size_t i = 0; i < run.next; i++) {
        conn *c = &conns[i];
        bool waiting = c->state == CS_CONNECTING || c->state == CS_TLS ||
                       c->state == CS_HANDSHAKE || c->state == CS_CLOSING ||
                       (c->state == CS_OPEN && c->rx_seq < c->tx_seq);
        if (waiting && now - c->last_ns > TIMEOUT_NS) {
            if (c->state == CS_OPEN)
                fatal("connection %u: nothing echoed for 5 s (message %" PRIu64
                      " outstanding, %zu of %zu bytes back)",
                      c->id, c->rx_seq, c->rx_off, opt.size);
            if (c->state == CS_HANDSHAKE)
                fatal("connection %u: no handshake answer for 5 s (request %zu of %zu bytes "
                      "sent, %zu bytes of answer; %zu of %zu connections open)",
                      c->id, c->hb->req_sent, c->hb->req_len, c->hb->have, run.open, opt.conns);
            fatal("connection %u: no progress for 5 s during %s (%zu of %zu connections open)",
                  c->id, state_names[c->state], run.open, opt.conns);
        }
    }
    if (opt.server_pid && !server_alive())
        fatal("server process %d has exited", (int)opt.server_pid);
}

static void begin_measure(void) {
    run.ph = PH_MEASURE;
    run.t0 = now;
    run.ph_end = now + opt.duration_ns;
    run.done = 0;
    memset(hist, 0, sizeof hist);
    hist_total = 0;
    run.self0 = self_cpu_s();
    if (opt.server_pid)
        run.cpu0 = server_ticks();
}

/* Move between phases. Returns true when the run is over. */
static bool advance(void) {
    switch (run.ph) {
    case PH_CONNECT:
        if (run.open < opt.conns)
            return false;
        if (opt.mode == MODE_IDLE) {
            run.ph = PH_SETTLE;
            run.ph_end = now + NS_PER_S;
        } else {
            run.ph = PH_WARMUP;
            run.ph_end = now + opt.warmup_ns;
        }
        return false;
    case PH_WARMUP:
        if (now >= run.ph_end)
            begin_measure();
        return false;
    case PH_MEASURE:
    case PH_SETTLE:
        if (now < run.ph_end)
            return false;
        run.t1 = now;
        run.self1 = self_cpu_s();
        if (opt.server_pid) {
            if (run.ph == PH_MEASURE)
                run.cpu1 = server_ticks();
            run.rss_after_kb = server_rss_kb();
        }
        return true;
    }
    return false;
}

/* " deflate=on ratio=.. ratio_tx=.. ratio_rx=..": frame payload bytes over message
 * bytes, both directions, then ours and the server's alone; NA without data. */
static const char *deflate_fields(void) {
    static char out[160];
    if (!opt.deflate)
        return "";
    char all[16] = "NA", tx[16] = "NA", rx[16] = "NA";
    if (run.tx_plain + run.rx_plain)
        snprintf(all, sizeof all, "%.4f",
                 (double)(run.tx_wire + run.rx_wire) / (double)(run.tx_plain + run.rx_plain));
    if (run.tx_plain)
        snprintf(tx, sizeof tx, "%.4f", (double)run.tx_wire / (double)run.tx_plain);
    if (run.rx_plain)
        snprintf(rx, sizeof rx, "%.4f", (double)run.rx_wire / (double)run.rx_plain);
    snprintf(out, sizeof out,
             " deflate=on ratio=%s ratio_tx=%s ratio_rx=%s compressed_echoes=%" PRIu64, all, tx, rx,
             run.rx_compressed);
    return out;
}

static void report(void) {
    const char *transport = opt.raw ? "raw" : opt.tls ? "wss" : "ws";
    if (opt.mode == MODE_IDLE) {
        long delta = run.rss_after_kb - run.rss_before_kb;
        char exchange[64] = ""; /* --deflate: the message each connection exchanged */
        if (opt.deflate)
            snprintf(exchange, sizeof exchange, " size=%zu payload=%s", opt.size,
                     payload_names[opt.payload]);
        printf("mode=idle conns=%zu rss_before_kb=%ld rss_after_kb=%ld bytes_per_conn=%.0f "
               "transport=%s%s%s\n",
               opt.conns, run.rss_before_kb, run.rss_after_kb,
               (double)delta * 1024.0 / (double)opt.conns, transport, exchange, deflate_fields());
        return;
    }
    double secs = (double)(run.t1 - run.t0) / 1e9;
    if (run.done == 0)
        fatal("nothing completed in the %.2f s measured", secs);
    char cpu[64] = "NA", pct[32] = "NA", rss[32] = "NA";
    if (opt.server_pid) {
        double cpu_s = (double)(run.cpu1 - run.cpu0) / (double)sysconf(_SC_CLK_TCK);
        snprintf(cpu, sizeof cpu, "%.3f", cpu_s * 1e6 / (double)run.done);
        snprintf(pct, sizeof pct, "%.1f", cpu_s / secs * 100.0);
        snprintf(rss, sizeof rss, "%ld", run.rss_after_kb);
    }
    double self_pct = (run.self1 - run.self0) / secs * 100.0;
    double p50 = hist_quantile_us(0.5), p99 = hist_quantile_us(0.99);
    double p999 = hist_quantile_us(0.999);
    if (opt.mode == MODE_HANDSHAKE) {
        printf("mode=handshake conns=%zu handshakes=%" PRIu64 " handshakes_per_s=%.0f "
               "p50_us=%.1f p99_us=%.1f p999_us=%.1f server_cpu_us_per_handshake=%s "
               "server_rss_kb=%s transport=%s secs=%.2f server_cpu_pct=%s loadgen_cpu_pct=%.1f\n",
               opt.conns, run.done, (double)run.done / secs, p50, p99, p999, cpu, rss, transport,
               secs, pct, self_pct);
        return;
    }
    printf("mode=echo conns=%zu inflight=%zu size=%zu msgs=%" PRIu64 " msgs_per_s=%.0f "
           "p50_us=%.1f p99_us=%.1f p999_us=%.1f server_cpu_us_per_msg=%s server_rss_kb=%s "
           "transport=%s type=%s secs=%.2f mbytes_per_s=%.1f server_cpu_pct=%s "
           "loadgen_cpu_pct=%.1f payload=%s%s\n",
           opt.conns, opt.inflight, opt.size, run.done, (double)run.done / secs, p50, p99, p999,
           cpu, rss, transport, opt.binary ? "binary" : "text", secs,
           (double)run.done * (double)opt.size / secs / 1e6, pct, self_pct,
           payload_names[opt.payload], deflate_fields());
}

/* ---- options -------------------------------------------------------------------- */

static double parse_num(const char *name, const char *s, double lo, double hi, bool integer) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    double mult = 1;
    if (end != s && integer && (*end == 'k' || *end == 'K'))
        mult = 1024, end++;
    else if (end != s && integer && (*end == 'm' || *end == 'M'))
        mult = 1024 * 1024, end++;
    v *= mult;
    if (errno != 0 || end == s || *end != '\0' || !(v >= lo && v <= hi) ||
        (integer && v != (double)(long long)v))
        usage_error("%s: expected %s in [%.15g, %.15g], got '%s'", name,
                    integer ? "an integer" : "a number", lo, hi, s);
    return v;
}

static void parse_url(const char *text) {
    dx_url u;
    int rc = dx_url_parse(dx_span_cstr(text), &u);
    if (rc != 0)
        usage_error("--url %s: %s", text, dx_strerror(rc));
    if (u.secure)
        opt.tls = true;
    size_t len;
    if (u.host_kind != DX_URL_HOST_IPV4 || dx_url_write_host(&u, opt.host, sizeof opt.host, &len))
        usage_error("--url %s: the host must be an IPv4 address", text);
    opt.addr.sin_family = AF_INET;
    opt.addr.sin_port = htons(u.port);
    memcpy(&opt.addr.sin_addr, u.addr, 4); /* network byte order, as dx_url keeps it */
    if (dx_url_write_resource(&u, opt.resource, sizeof opt.resource, &len) != 0)
        usage_error("--url %s: path too long", text);
    opt.url = text;
    opt.req.host = opt.host;
    opt.req.port = u.port;
    opt.req.resource = opt.resource;
    opt.req.secure = u.secure;
}

static void parse_args(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--binary") == 0) {
            opt.binary = true;
            continue;
        }
        if (strcmp(a, "--raw") == 0) {
            opt.raw = true;
            continue;
        }
        if (strcmp(a, "--tls") == 0) {
            opt.tls = true;
            continue;
        }
        if (strcmp(a, "--deflate") == 0) {
            opt.deflate = true;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
            usage_error("drive an echo server and print one result line");
        if (i + 1 >= argc)
            usage_error("%s: missing value or unknown option", a);
        const char *v = argv[++i];
        if (strcmp(a, "--url") == 0)
            parse_url(v);
        else if (strcmp(a, "--conns") == 0)
            opt.conns = (size_t)parse_num(a, v, 1, 1000000, true);
        else if (strcmp(a, "--inflight") == 0)
            opt.inflight = (size_t)parse_num(a, v, 1, 65536, true);
        else if (strcmp(a, "--size") == 0)
            opt.size = (size_t)parse_num(a, v, 1, MAX_SIZE, true);
        else if (strcmp(a, "--duration") == 0)
            opt.duration_ns = (uint64_t)(parse_num(a, v, 0.01, 86400, false) * 1e9);
        else if (strcmp(a, "--warmup") == 0)
            opt.warmup_ns = (uint64_t)(parse_num(a, v, 0, 86400, false) * 1e9);
        else if (strcmp(a, "--server-pid") == 0)
            opt.server_pid = (pid_t)parse_num(a, v, 1, 1 << 30, true);
        else if (strcmp(a, "--batch") == 0)
            opt.batch = (size_t)parse_num(a, v, 1, 100000, true);
        else if (strcmp(a, "--sources") == 0)
            opt.sources = (unsigned)parse_num(a, v, 1, 254, true);
        else if (strcmp(a, "--deflate-window") == 0)
            opt.dcfg.client_max_window_bits = (uint8_t)parse_num(a, v, 8, 15, true);
        else if (strcmp(a, "--payload") == 0) {
            size_t k = 0;
            while (k < sizeof payload_names / sizeof *payload_names &&
                   strcmp(v, payload_names[k]) != 0)
                k++;
            if (k == sizeof payload_names / sizeof *payload_names)
                usage_error("--payload: expected cycle, random, text or json, got '%s'", v);
            opt.payload = (payload)k;
        } else if (strcmp(a, "--mode") == 0) {
            if (strcmp(v, "echo") == 0)
                opt.mode = MODE_ECHO;
            else if (strcmp(v, "idle") == 0)
                opt.mode = MODE_IDLE;
            else if (strcmp(v, "handshake") == 0)
                opt.mode = MODE_HANDSHAKE;
            else
                usage_error("--mode: expected echo, idle or handshake, got '%s'", v);
        } else
            usage_error("unknown option '%s'", a);
    }
    if (!opt.url)
        usage_error("--url is required");
    if (opt.raw && (opt.tls || opt.deflate))
        usage_error("--raw is plain TCP: no --tls, wss:// or --deflate");
    if (opt.deflate && opt.mode == MODE_HANDSHAKE)
        usage_error("--deflate needs --mode echo or idle");
    if (opt.deflate) {
        size_t len;
        int rc = dx_deflate_write_offer(&opt.dcfg, opt.offer, sizeof opt.offer, &len);
        if (rc != 0)
            usage_error("--deflate: %s", dx_strerror(rc));
        opt.req.extensions = opt.offer;
    }
    if (opt.mode == MODE_IDLE && !opt.server_pid)
        usage_error("--mode idle needs --server-pid (it reports the server's memory)");
    if (opt.server_pid && !server_alive())
        usage_error("--server-pid %d: no such running process", (int)opt.server_pid);
    bool loopback = (ntohl(opt.addr.sin_addr.s_addr) >> 24) == 127;
    if (opt.sources == 0)
        opt.sources =
            loopback ? (unsigned)((opt.conns + PORTS_PER_SOURCE - 1) / PORTS_PER_SOURCE) : 1;
    if (opt.sources > 1 && !loopback)
        usage_error("--sources needs a 127.x.x.x server address");
    opt.max_message = opt.size > DX_DEFAULT_MAX_MESSAGE ? opt.size : DX_DEFAULT_MAX_MESSAGE;
}

/* Allow one descriptor per connection, and say so clearly when we cannot. */
static void raise_fd_limit(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        fatal("getrlimit: %s", strerror(errno));
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        fatal("setrlimit: %s", strerror(errno));
    if (rl.rlim_cur != RLIM_INFINITY && opt.conns + 16 > rl.rlim_cur)
        fatal("%zu connections need more descriptors than the hard limit of %llu (ulimit -Hn)",
              opt.conns, (unsigned long long)rl.rlim_cur);
}

int main(int argc, char **argv) {
    parse_args(argc, argv);
    raise_fd_limit();
    signal(SIGPIPE, SIG_IGN);

    rbuf = xcalloc(1, READ_BUF_SIZE);
    txbuf = xcalloc(1, opt.size);
    period = opt.payload != PAY_CYCLE ? POOL_SIZE : opt.binary ? 251 : 26;
    fill = xcalloc(1, opt.size + period);
    if (opt.payload == PAY_CYCLE) /* letters for text, every byte but 5 for binary */
        for (size_t i = 0; i < opt.size + period; i++)
            fill[i] = opt.binary ? (uint8_t)(i % period) : (uint8_t)('a' + i % period);
    else
        make_fill(fill, opt.size + period);
    conns = xcalloc(opt.conns, sizeof *conns);
    if (opt.mode == MODE_ECHO || (opt.mode == MODE_IDLE && opt.deflate))
        sent_ns = xcalloc(opt.conns * opt.inflight, sizeof *sent_ns);
    if (opt.deflate) {
        zcap = opt.size + opt.size / 8 + 1024;
        zbuf = xcalloc(1, zcap);
        ibuf = xcalloc(1, INFLATE_CHUNK);
    }
    if (opt.tls)
        tls_init();
    for (size_t i = 0; i < opt.conns; i++) {
        conns[i].fd = -1;
        conns[i].id = (uint32_t)i;
        conns[i].sent_ns = sent_ns ? sent_ns + i * opt.inflight : NULL;
    }
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        fatal("epoll_create1: %s", strerror(errno));

    now = clock_ns();
    if (opt.mode == MODE_IDLE)
        run.rss_before_kb = server_rss_kb();
    if (opt.mode == MODE_HANDSHAKE) {
        run.ph = PH_WARMUP;
        run.ph_end = now + opt.warmup_ns;
    }
    uint64_t next_check = now + CHECK_EVERY_NS;
    struct epoll_event evs[MAX_EVENTS];
    for (;;) {
        start_pending();
        int timeout_ms = 50;
        if (run.ph != PH_CONNECT && run.ph_end > now && (run.ph_end - now) / 1000000 < 50)
            timeout_ms = (int)((run.ph_end - now) / 1000000) + 1;
        int n = epoll_wait(epfd, evs, MAX_EVENTS, timeout_ms);
        if (n < 0 && errno != EINTR)
            fatal("epoll_wait: %s", strerror(errno));
        now = clock_ns();
        for (int i = 0; i < n; i++) {
            conn *c = &conns[(uint32_t)evs[i].data.u64];
            if (c->gen != (uint32_t)(evs[i].data.u64 >> 32) || c->fd < 0)
                continue; /* the socket this event was for is gone */
            conn_event(c, evs[i].events);
        }
        now = clock_ns();
        if (advance())
            break;
        if (now >= next_check) {
            check_timeouts();
            next_check = now + CHECK_EVERY_NS;
        }
    }
    report();
    fflush(stdout);
    return 0;
}
