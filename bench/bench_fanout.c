/*
 * bench_fanout: what a broadcast costs a duplex server per subscriber, in memory and
 * in CPU (issue 10, "shared zero-copy frames"): binary messages of S bytes sent with
 * dx_server_broadcast to N connections over loopback, permessage-deflate off.
 *
 * Two processes, so that the server's RSS is its own. This one forks the server (one
 * loop on one thread, pinned to CPU 0 when there are two CPUs) and plays the N
 * subscribers over raw TCP, the upgrade written by hand (pinned to CPU 1). They talk
 * over two pipes, a line a step. Each (mode, N, S) gets a fresh server and fresh
 * connections, left idle for a second once open before anything is measured.
 *
 * held: the subscribers never read after the handshake, so what is broadcast stays
 *   queued in the server. Their SO_RCVBUF is 4 KiB, and the server's send buffers are
 *   locked at 4 KiB (TCP autotuning would otherwise let the kernel take megabytes per
 *   connection). First, 512 B filler messages are broadcast until the kernel takes no
 *   more (about 12 KiB a connection), and the baseline is taken. Then K messages are
 *   broadcast (1, then 7 more: "x8" covers all 8) and the loop is run until the
 *   queues stop changing, which takes in the flush the loop does before its next
 *   wait. What is queued (dx_conn_buffered_amount) must have grown by N x K frames,
 *   less at most 1% the kernel may still take: else the bench fails.
 *     rss  (RSS after - RSS before) / (N x K), and that over S: what holding one more
 *          message costs per subscriber. While each connection copies the payload it
 *          is the frame size or more (buffers double as they grow); once one copy is
 *          shared it should be far below. x1 of a small message lands wherever the
 *          spare room of each queue's buffer puts it (0 to 2x); x8 is steadier.
 *     cpu  the server's CPU time (getrusage, user + sys) in the broadcast calls and
 *          that flush, / (N x K). Copying into fresh memory costs page faults, and
 *          those are most of it for 64 KiB messages.
 * read: the subscribers read everything and check every byte of every message, so a
 *   broken path cannot be measured. R broadcasts, each as soon as the server's queues
 *   have emptied into the kernel; R = 100, or fewer (at least 4) so that N x S x R
 *   stays within --read-mib MiB (512; --quick: 64).
 *     cpu  the server's CPU time from the first broadcast until its queues are empty
 *          after the last, / (N x R): a delivery's cost when data flows (on loopback
 *          the sender's CPU also runs most of the receiver's TCP work).
 *
 * One line per measurement, e.g. (before issue 10's rework; each on one line here):
 *   bench_fanout  held  10000 conns   65536 B  x8    rss +95968 B/conn/msg (1.46x payload)
 *                                                    cpu 405.21 us/delivery  gcc-12 -O2
 *   bench_fanout  read   1000 conns    1024 B  x100  cpu 7.70 us/delivery  checked 100000
 *                                                    gcc-12 -O2
 * A measurement whose estimated need (held: 1.5x the frames held, as while every
 * connection copies them) passes half of MemAvailable is skipped, with a line saying
 * so.
 *
 *   bench_fanout [--quick] [--conns N,N] [--sizes S,S] [--held K,K] [--mode held|read]
 *                [--read-mib M] [--server-cpu C] [--client-cpu C] [-v]
 *
 * Defaults: 1,000 and 10,000 connections, 1 KiB and 64 KiB, held x1 and x8, then read;
 * about a minute on two cores, and while every connection copies the payload the
 * server reaches ~7.5 GiB in held 10,000 x 64 KiB x8. --quick (what `make run-bench`
 * runs): 1,000 connections only, about 10 s. Each process needs N + 64 descriptors
 * (the soft RLIMIT_NOFILE is raised; the bench says so if the hard one is too low).
 * --server-cpu/--client-cpu -1: not pinned. -v: the steps and raw figures on stderr
 * (also the server's memory per idle connection).
 *
 * The server side uses duplex only through the functions under "the duplex calls"
 * below: when the issue renames the broadcast API, that is the part to change.
 */
#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROG "bench_fanout"
#define MAX_LIST 8                               /* entries of --conns, --sizes, --held */
#define HELD_RCVBUF 4096                         /* a held subscriber's SO_RCVBUF */
#define HELD_SNDBUF 4096                         /* the server's SO_SNDBUF in held mode */
#define FILLER_LEN 512                           /* the messages that fill the kernel's buffers */
#define FILL_MAX_PASSES 1000                     /* filler broadcasts before giving up */
#define FILL_QUIET_SECS 0.3                      /* the kernel took nothing for this long */
#define READ_ROUNDS_MIN 4                        /* broadcasts of a read measurement, at least */
#define READ_ROUNDS_MAX 100                      /* and at most */
#define CONNECT_WINDOW 256                       /* handshakes in progress at once */
#define FD_SPARE 64                              /* descriptors besides the connections */
#define STEP_TIMEOUT 120.0                       /* seconds any one step may take */
#define IDLE_SECS 1.0                            /* open and idle before measuring */
#define QUIET_ITER_SECS 200e-6                   /* an iteration this short did no work */
#define SEND_QUEUE ((size_t)16 << 20)            /* the server's max_send_queue */
#define READ_BUF ((size_t)256 << 10)             /* a subscriber's recv buffer (shared) */
#define HEAD_MAX 384                             /* room for the 101 response */
#define WS_KEY "dGhlIHNhbXBsZSBub25jZQ=="        /* RFC 6455 §1.3's example key... */
#define WS_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" /* ...and its accept value */

typedef struct config {
    size_t conns[MAX_LIST]; /* N */
    size_t nconns;
    size_t sizes[MAX_LIST]; /* S */
    size_t nsizes;
    unsigned held[MAX_LIST]; /* K, ascending */
    size_t nheld;
    bool do_held, do_read;
    size_t read_budget; /* bytes N x S x R a read measurement may deliver */
    int server_cpu;     /* CPU the server is pinned to; -1: none */
    int client_cpu;     /* CPU the subscribers are pinned to; -1: none */
    bool verbose;
} config;

static bool in_server;   /* this is the forked server process */
static pid_t server_pid; /* in the parent: the server while one runs, else 0 */
static bool verbose;

/* ---- helpers ------------------------------------------------------------------------ */

__attribute__((format(printf, 1, 0))) static void vsay(const char *fmt, va_list ap) {
    fprintf(stderr, "%s%s: ", PROG, in_server ? " (server)" : "");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsay(fmt, ap);
    va_end(ap);
    if (!in_server && server_pid > 0) { /* ours: do not leave it holding 10,000 sockets */
        kill(server_pid, SIGKILL);
        waitpid(server_pid, NULL, 0);
    }
    exit(1);
}

__attribute__((format(printf, 1, 2))) static void note(const char *fmt, ...) {
    if (!verbose)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsay(fmt, ap);
    va_end(ap);
}

/* Resident set size of this process, in bytes. */
static size_t rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    if (!f)
        die("/proc/self/statm: %s", strerror(errno));
    int n = fscanf(f, "%lu %lu", &size, &resident);
    fclose(f);
    if (n != 2)
        die("/proc/self/statm: unreadable");
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

/* CPU time of this process (user + sys), in nanoseconds. */
static uint64_t cpu_ns(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)ru.ru_utime.tv_sec * 1000000000u + (uint64_t)ru.ru_utime.tv_usec * 1000u +
           (uint64_t)ru.ru_stime.tv_sec * 1000000000u + (uint64_t)ru.ru_stime.tv_usec * 1000u;
}

/* MemAvailable from /proc/meminfo, in bytes (SIZE_MAX when unknown). */
static size_t mem_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return SIZE_MAX;
    char line[128];
    unsigned long kib = 0;
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = sscanf(line, "MemAvailable: %lu kB", &kib) == 1;
    fclose(f);
    return found ? (size_t)kib << 10 : SIZE_MAX;
}

static void pin(int cpu) {
    if (cpu < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET((unsigned)cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0)
        note("not pinned to CPU %d: %s", cpu, strerror(errno));
}

/* Raise RLIMIT_NOFILE to @need (the forked server inherits it). */
static void raise_nofile(size_t need) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        die("getrlimit: %s", strerror(errno));
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need)
            die("%zu connections need %zu open files in each process, and the hard limit is "
                "%llu (ulimit -Hn): raise it, or ask for fewer with --conns",
                need - FD_SPARE, need, (unsigned long long)rl.rlim_max);
        rl.rlim_cur = need;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            die("setrlimit(RLIMIT_NOFILE, %zu): %s", need, strerror(errno));
    }
}

/* Byte @i of message @msg: depends on both, so a lost, repeated or reordered message
 * shows in the check. */
static void make_message(uint8_t *p, size_t len, unsigned msg) {
    uint32_t x = 2166136261u ^ (msg * 16777619u);
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
}

/* The header of an unmasked FIN binary frame of @len bytes (RFC 6455 §5.2). Returns
 * its length (2, 4 or 10). */
static size_t frame_header(size_t len, uint8_t out[10]) {
    out[0] = 0x82;
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xffff) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    return 10;
}

/* The bytes of that frame on the wire. */
static size_t frame_len(size_t len) {
    uint8_t h[10];
    return frame_header(len, h) + len;
}

/* Write all of @s to @fd (a pipe). */
static void write_all(int fd, const char *s, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            die("pipe write: %s", w < 0 ? strerror(errno) : "closed");
        s += w;
        n -= (size_t)w;
    }
}

/* A line from a pipe, read into @buf/@len; returns true and copies it (without the
 * newline) to @out when one is complete. EOF: the other process is gone. */
static bool take_line(int fd, char *buf, size_t cap, size_t *len, char *out, size_t out_cap) {
    for (;;) {
        char *nl = memchr(buf, '\n', *len);
        if (nl) {
            size_t n = (size_t)(nl - buf);
            if (n >= out_cap)
                die("pipe: line too long");
            memcpy(out, buf, n);
            out[n] = '\0';
            memmove(buf, nl + 1, *len - n - 1);
            *len -= n + 1;
            return true;
        }
        if (*len == cap)
            die("pipe: line too long");
        ssize_t r = read(fd, buf + *len, cap - *len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return false;
        if (r <= 0)
            die("the other process is gone (%s)", r < 0 ? strerror(errno) : "pipe closed");
        *len += (size_t)r;
    }
}

/* ---- the server process --------------------------------------------------------------- */

typedef struct server_side {
    dx_loop *loop;
    dx_server *server;
    dx_conn **slots; /* the connections in the order they opened; NULL once closed */
    size_t cap;      /* slots */
    size_t opened;   /* connections that opened */
    size_t closed;   /* of those, closed since */
    int cmd_fd;      /* commands from the parent (non-blocking) */
    int reply_fd;    /* replies to it */
    char in[512];    /* command bytes not yet taken */
    size_t in_len;
} server_side;

static server_side SV;

/* ---- the duplex calls ----
 * Everything this bench asks of duplex's server side is in the functions of this
 * section (issue 10 will rename the broadcast API: this is the part to change). */

static void srv_on_open(dx_conn *c, void *user) {
    (void)user;
    if (SV.opened == SV.cap)
        die("more connections than subscribers");
    SV.slots[SV.opened] = c;
    dx_conn_set_user(c, &SV.slots[SV.opened]);
    SV.opened++;
}

static void srv_on_close(dx_conn *c, const dx_close_info *info, void *user) {
    (void)info;
    dx_conn **slot = user; /* NULL for one that never opened (the server's user) */
    if (slot && *slot == c) {
        *slot = NULL;
        SV.closed++;
    }
}

/* Create the loop and the server on 127.0.0.1, any port. Returns the port. @held: lock
 * each connection's kernel send buffer (SO_SNDBUF) small: without it, TCP autotuning
 * grows it towards tcp_wmem's maximum (4 MiB by default) although the peer reads
 * nothing, so the kernel would take a share of the messages that depends on the
 * machine, and 10,000 connections would press on the whole machine's TCP memory. */
static uint16_t srv_start(bool held) {
    int rc = dx_loop_create(&SV.loop, NULL);
    if (rc != 0)
        die("dx_loop_create: %s", dx_strerror(rc));
    /* no permessage-deflate (conn.compression.deflate NULL): the payload goes as it is */
    dx_server_options so = {
        .host = "127.0.0.1",
        .backlog = 4096,
        .conn = {.send = {.max_queue = SEND_QUEUE,           /* holds every held message */
                          .sndbuf = held ? HELD_SNDBUF : 0}, /* the kernel keeps little */
                 .timeouts.ping_interval_ms = DX_NEVER},     /* no keep-alive pings in the queues */
    };
    static const dx_conn_callbacks cb = {.on_open = srv_on_open, .on_close = srv_on_close};
    rc = dx_server_create(&SV.server, SV.loop, &so, &cb, NULL);
    if (rc != 0)
        die("dx_server_create: %s", dx_strerror(rc));
    return dx_server_port(SV.server);
}

/* One loop iteration, waiting at most @timeout_ms. */
static void srv_run_once(int timeout_ms) {
    int rc = dx_loop_run_once(SV.loop, timeout_ms);
    if (rc != 0)
        die("dx_loop_run_once: %s", dx_strerror(rc));
}

/* Broadcast the binary message @msg; returns the connections that queued it. */
static long srv_broadcast(const uint8_t *msg, size_t len) {
    dx_prepared *m;
    int rc = dx_prepared_create(&m, DX_OP_BINARY, (dx_span){msg, len}, NULL);
    if (rc != 0)
        die("dx_prepared_create: %s", dx_strerror(rc));
    size_t n = 0;
    rc = dx_server_broadcast(SV.server, m, &n);
    dx_prepared_release(m);
    if (rc != 0)
        die("dx_server_broadcast: %s", dx_strerror(rc));
    return (long)n;
}

/* Bytes queued on @c that the socket has not taken. */
static size_t srv_queued(const dx_conn *c) {
    return dx_conn_buffered_amount(c);
}

static void srv_stop(void) {
    dx_server_destroy(SV.server);
    for (int i = 0; i < 3; i++)
        srv_run_once(0); /* the closed connections are freed at the end of an iteration */
    dx_loop_destroy(SV.loop);
}

/* ---- end of the duplex calls ---- */

__attribute__((format(printf, 1, 2))) static void reply(const char *fmt, ...) {
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof line - 1)
        die("reply too long");
    line[n] = '\n';
    write_all(SV.reply_fd, line, (size_t)n + 1);
}

static size_t total_queued(void) {
    size_t q = 0;
    for (size_t i = 0; i < SV.opened; i++)
        if (SV.slots[i])
            q += srv_queued(SV.slots[i]);
    return q;
}

/* Connections with nothing queued (dies when one has closed). */
static size_t empty_queues(void) {
    size_t empty = 0;
    for (size_t i = 0; i < SV.opened; i++) {
        if (!SV.slots[i])
            die("a connection closed");
        empty += srv_queued(SV.slots[i]) == 0;
    }
    return empty;
}

static void check_deadline(double deadline, const char *what) {
    if (bench_now() > deadline)
        die("timed out %s", what);
}

/*
 * Run the loop until the queues stop changing: four iterations in a row that did no
 * work (each under QUIET_ITER_SECS; the flush of a few thousand connections takes
 * milliseconds) and left the total queued the same. Returns that total.
 */
static size_t settle(void) {
    size_t last = SIZE_MAX;
    int quiet = 0;
    double deadline = bench_now() + STEP_TIMEOUT;
    while (quiet < 4) {
        double t0 = bench_now();
        srv_run_once(0);
        if (bench_now() - t0 > QUIET_ITER_SECS) {
            quiet = 0;
            continue;
        }
        size_t q = total_queued();
        quiet = q == last ? quiet + 1 : 0;
        last = q;
        check_deadline(deadline, "waiting for the queues to settle");
    }
    return last;
}

/* "open N": wait for N connections, then IDLE_SECS more (duplex gives back a new
 * connection's spare memory at its first keep-alive tick, half a second after open). */
static void cmd_open(size_t n) {
    double deadline = bench_now() + STEP_TIMEOUT;
    while (SV.opened < n) {
        srv_run_once(10);
        check_deadline(deadline, "waiting for the connections to open");
    }
    double end = bench_now() + IDLE_SECS;
    while (bench_now() < end)
        srv_run_once(10);
    if (SV.closed)
        die("%zu connections closed while idle", SV.closed);
    reply("open %zu", rss_bytes());
}

/* Run the loop until the total queued has not changed for @secs (the kernel opens a
 * full socket's window again now and then for a while: tens of milliseconds apart). */
static void wait_quiet(double secs) {
    double deadline = bench_now() + STEP_TIMEOUT;
    size_t last = total_queued();
    double since = bench_now();
    while (bench_now() - since < secs) {
        srv_run_once(20);
        size_t q = total_queued();
        if (q != last)
            since = bench_now();
        last = q;
        check_deadline(deadline, "waiting for the kernel to stop taking bytes");
    }
}

/*
 * "fill": broadcast filler until the kernel takes no more, so that from then on what
 * is broadcast stays in user space. First until every queue holds bytes; then until a
 * filler broadcast made after a quiet wait leaves every byte of it queued: a full
 * socket signals writable only once a good part of its buffer is free, so room made
 * meanwhile (the peer's kernel compacting its receive queue and opening the window a
 * little) shows only when the next send takes it. The filler is small so that the queues
 * keep little spare room: a message held later makes them grow as it would on a
 * connection that had been idle.
 */
static void cmd_fill(void) {
    static uint8_t filler[FILLER_LEN];
    make_message(filler, sizeof filler, 0xf111);
    unsigned passes = 0, waits = 0;
    bool waited = false; /* the last broadcast came after a quiet wait */
    for (;;) {
        if (++passes > FILL_MAX_PASSES)
            die("the kernel took %u filler messages per connection and wants more",
                FILL_MAX_PASSES);
        size_t before = total_queued();
        if (srv_broadcast(filler, sizeof filler) != (long)SV.opened)
            die("a filler message did not reach every connection");
        settle();
        if (empty_queues()) {
            waited = false;
            continue;
        }
        if (waited && total_queued() == before + SV.opened * frame_len(FILLER_LEN))
            break;
        wait_quiet(FILL_QUIET_SECS);
        waits++;
        waited = true;
    }
    note("fill: %u filler broadcasts, %u quiet waits", passes, waits);
    reply("filled %zu %zu %u", rss_bytes(), total_queued(), passes);
}

/* "held K S": broadcast K messages of S bytes from @msgs (prepared before the
 * baseline), settle; CPU and wall time of both. */
static void cmd_held(unsigned k, size_t size, const uint8_t *msgs, unsigned first) {
    uint64_t c0 = cpu_ns();
    double w0 = bench_now();
    long count = 0;
    for (unsigned i = 0; i < k; i++)
        count += srv_broadcast(msgs + (size_t)(first + i) * size, size);
    size_t queued = settle();
    uint64_t c1 = cpu_ns();
    double w1 = bench_now();
    reply("held %ld %" PRIu64 " %.0f %zu %zu", count, c1 - c0, (w1 - w0) * 1e9, rss_bytes(),
          queued);
}

/* "read R S": R broadcasts, each once every queue has emptied into the kernel. */
static void cmd_read(unsigned rounds, size_t size) {
    uint8_t *msgs = malloc((size_t)rounds * size);
    if (!msgs)
        die("out of memory");
    for (unsigned r = 0; r < rounds; r++)
        make_message(msgs + (size_t)r * size, size, r);
    double deadline = bench_now() + STEP_TIMEOUT;
    uint64_t c0 = cpu_ns();
    double w0 = bench_now();
    long count = 0;
    for (unsigned r = 0; r < rounds; r++) {
        count += srv_broadcast(msgs + (size_t)r * size, size);
        size_t i = 0; /* connections before i are empty, and stay so until the next round */
        while (i < SV.opened) {
            if (!SV.slots[i] || srv_queued(SV.slots[i]) == 0) {
                i++;
                continue;
            }
            /* The flush runs before the wait, and when it empties the last queue nothing
             * wakes the wait: keep it short (waiting costs no CPU, only wall time). */
            srv_run_once(1);
            check_deadline(deadline, "waiting for the subscribers to read");
        }
    }
    uint64_t c1 = cpu_ns();
    double w1 = bench_now();
    free(msgs);
    reply("read %ld %" PRIu64 " %.0f", count, c1 - c0, (w1 - w0) * 1e9);
}

/* The server process: take commands until "quit" (or the parent is gone). */
static void serve(int cmd_fd, int reply_fd, const config *cfg, bool held, size_t conns, size_t size,
                  unsigned max_held) {
    pin(cfg->server_cpu);
    SV.cmd_fd = cmd_fd;
    SV.reply_fd = reply_fd;
    SV.cap = conns;
    SV.slots = calloc(conns, sizeof *SV.slots);
    /* held messages are made before any baseline: only what the broadcasts add counts */
    uint8_t *msgs = held ? malloc((size_t)max_held * size) : NULL;
    if (!SV.slots || (held && !msgs))
        die("out of memory");
    for (unsigned i = 0; held && i < max_held; i++)
        make_message(msgs + (size_t)i * size, size, i);
    fcntl(cmd_fd, F_SETFL, fcntl(cmd_fd, F_GETFL) | O_NONBLOCK);
    uint16_t port = srv_start(held);
    reply("ready %u %zu", port, rss_bytes());
    unsigned sent = 0;
    for (;;) {
        char cmd[256];
        if (!take_line(cmd_fd, SV.in, sizeof SV.in, &SV.in_len, cmd, sizeof cmd)) {
            srv_run_once(10);
            continue;
        }
        size_t n;
        unsigned k;
        if (strcmp(cmd, "quit") == 0)
            break;
        else if (sscanf(cmd, "open %zu", &n) == 1)
            cmd_open(n);
        else if (strcmp(cmd, "fill") == 0)
            cmd_fill();
        else if (sscanf(cmd, "held %u", &k) == 1 && held && sent + k <= max_held) {
            cmd_held(k, size, msgs, sent);
            sent += k;
        } else if (sscanf(cmd, "read %u", &k) == 1)
            cmd_read(k, size);
        else
            die("unknown command '%s'", cmd);
    }
    srv_stop();
    free(msgs);
    free(SV.slots);
}

/* ---- the subscribers (this process) ------------------------------------------------ */

enum { SUB_CONNECTING, SUB_HANDSHAKE, SUB_OPEN };

typedef struct sub {
    int fd;
    uint8_t phase;       /* SUB_* */
    uint8_t hdr_seen;    /* bytes of the current frame's header checked */
    uint16_t head_len;   /* bytes of the 101 response so far */
    unsigned msgs;       /* messages received and checked */
    size_t off;          /* payload bytes of the current message checked */
    char head[HEAD_MAX]; /* the 101 response */
} sub;

typedef struct client_side {
    sub *subs;
    size_t n;  /* subscribers */
    bool held; /* never read after the handshake */
    uint16_t port;
    int ep;               /* epoll */
    size_t started;       /* connects started */
    size_t opened;        /* handshakes completed */
    int cmd_fd, reply_fd; /* pipes to and from the server */
    char in[512];         /* reply bytes not yet taken */
    size_t in_len;
    /* read mode: what every subscriber must receive */
    const uint8_t *expect; /* rounds x size bytes */
    size_t size;
    unsigned rounds;
    uint8_t hdr[10];
    size_t hdr_len;
    size_t done;      /* subscribers that got every message */
    uint64_t checked; /* messages checked, all subscribers */
    uint8_t *buf;     /* READ_BUF bytes, shared */
} client_side;

static client_side CL;

#define REPLY_TAG UINT64_MAX /* epoll data of the reply pipe */

static void send_cmd(const char *cmd) {
    char line[128];
    int n = snprintf(line, sizeof line, "%s\n", cmd);
    write_all(CL.cmd_fd, line, (size_t)n);
}

/* Wait for the server's next reply line. */
static void await_reply(char *out, size_t cap) {
    double deadline = bench_now() + STEP_TIMEOUT;
    while (!take_line(CL.reply_fd, CL.in, sizeof CL.in, &CL.in_len, out, cap)) {
        struct pollfd p = {.fd = CL.reply_fd, .events = POLLIN};
        poll(&p, 1, 1000);
        check_deadline(deadline, "waiting for the server");
    }
    note("server: %s", out);
}

static void start_connect(size_t i) {
    sub *s = &CL.subs[i];
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0)
        die("socket: %s", strerror(errno));
    if (CL.held) { /* before connect: the window the server sees is small from the start */
        int rcv = HELD_RCVBUF;
        setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(CL.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(s->fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS)
        die("connect (subscriber %zu): %s", i, strerror(errno));
    struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = i};
    if (epoll_ctl(CL.ep, EPOLL_CTL_ADD, s->fd, &ev) != 0)
        die("epoll_ctl: %s", strerror(errno));
}

/* Check received frame bytes against what the server broadcast. */
static void sub_feed(sub *s, const uint8_t *p, size_t n) {
    while (n > 0) {
        if (s->hdr_seen < CL.hdr_len) {
            size_t take = CL.hdr_len - s->hdr_seen;
            take = take < n ? take : n;
            if (s->msgs >= CL.rounds)
                bench_fail(PROG, "a subscriber got more messages than were broadcast");
            if (memcmp(p, CL.hdr + s->hdr_seen, take) != 0)
                bench_fail(PROG, "a frame header differs from the message's");
            s->hdr_seen = (uint8_t)(s->hdr_seen + take);
            p += take;
            n -= take;
            continue;
        }
        size_t take = CL.size - s->off;
        take = take < n ? take : n;
        if (memcmp(p, CL.expect + (size_t)s->msgs * CL.size + s->off, take) != 0)
            bench_fail(PROG, "a subscriber got bytes the server did not broadcast");
        s->off += take;
        p += take;
        n -= take;
        if (s->off == CL.size) {
            s->off = 0;
            s->hdr_seen = 0;
            s->msgs++;
            CL.checked++;
            if (s->msgs == CL.rounds)
                CL.done++;
        }
    }
}

static void sub_event(size_t i, uint32_t events) {
    sub *s = &CL.subs[i];
    if (s->phase == SUB_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err)
            die("connect (subscriber %zu): %s", i, strerror(err));
        char req[256];
        int n = snprintf(req, sizeof req,
                         "GET / HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nUpgrade: websocket\r\n"
                         "Connection: Upgrade\r\nSec-WebSocket-Key: " WS_KEY "\r\n"
                         "Sec-WebSocket-Version: 13\r\n\r\n",
                         CL.port);
        if (send(s->fd, req, (size_t)n, MSG_NOSIGNAL) != n) /* a fresh socket takes it */
            die("sending the upgrade request: %s", strerror(errno));
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = i};
        if (epoll_ctl(CL.ep, EPOLL_CTL_MOD, s->fd, &ev) != 0)
            die("epoll_ctl: %s", strerror(errno));
        s->phase = SUB_HANDSHAKE;
        return;
    }
    if (!(events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
        return;
    if (s->phase == SUB_HANDSHAKE) {
        ssize_t r = recv(s->fd, s->head + s->head_len, sizeof s->head - s->head_len, 0);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (r <= 0)
            die("the server %s a connection in the handshake", r ? "reset" : "closed");
        s->head_len = (uint16_t)(s->head_len + r);
        char *end = memmem(s->head, s->head_len, "\r\n\r\n", 4);
        if (!end) {
            if (s->head_len == sizeof s->head)
                die("the server's 101 response is longer than %d bytes", HEAD_MAX);
            return;
        }
        size_t head = (size_t)(end + 4 - s->head);
        if (memcmp(s->head, "HTTP/1.1 101 ", 13) != 0 ||
            !memmem(s->head, head, "\r\nSec-WebSocket-Accept: " WS_ACCEPT "\r\n",
                    sizeof("\r\nSec-WebSocket-Accept: " WS_ACCEPT "\r\n") - 1))
            die("the server refused or botched the upgrade: %.*s", (int)head, s->head);
        s->phase = SUB_OPEN;
        CL.opened++;
        if (CL.held) { /* never read again: the kernel's buffers fill, then the server's */
            if (epoll_ctl(CL.ep, EPOLL_CTL_DEL, s->fd, NULL) != 0)
                die("epoll_ctl: %s", strerror(errno));
            if (head != s->head_len)
                die("frames arrived before any broadcast");
        } else if (head != s->head_len) {
            sub_feed(s, (const uint8_t *)s->head + head, s->head_len - head);
        }
        return;
    }
    ssize_t r = recv(s->fd, CL.buf, READ_BUF, 0);
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (r <= 0)
        die("the server %s a connection", r ? "reset" : "closed");
    if (CL.rounds == 0)
        die("frames arrived before any broadcast");
    sub_feed(s, CL.buf, (size_t)r);
}

/* One epoll wait: subscriber events, and the reply pipe when @reply_line is given
 * (returns true when a line was taken into it; without it a reply is an error). */
static bool poll_subs(int timeout_ms, char *reply_line, size_t cap) {
    struct epoll_event ev[256];
    int k = epoll_wait(CL.ep, ev, 256, timeout_ms);
    if (k < 0 && errno != EINTR)
        die("epoll_wait: %s", strerror(errno));
    bool got = false;
    for (int j = 0; j < k; j++) {
        if (ev[j].data.u64 != REPLY_TAG)
            sub_event((size_t)ev[j].data.u64, ev[j].events);
        else if (!reply_line)
            die("the server spoke out of turn (or died)");
        else if (!got)
            got = take_line(CL.reply_fd, CL.in, sizeof CL.in, &CL.in_len, reply_line, cap);
    }
    return got;
}

static void connect_all(void) {
    double t0 = bench_now(), deadline = t0 + STEP_TIMEOUT;
    while (CL.opened < CL.n) {
        while (CL.started < CL.n && CL.started - CL.opened < CONNECT_WINDOW)
            start_connect(CL.started++);
        poll_subs(100, NULL, 0);
        check_deadline(deadline, "opening the connections");
    }
    note("%zu connections open in %.2f s", CL.n, bench_now() - t0);
}

/* Reset every connection (SO_LINGER 0: no TIME_WAIT left to hold the ports, and the
 * server's sockets go at once instead of lingering with unsent bytes). */
static void close_all(void) {
    for (size_t i = 0; i < CL.started; i++) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(CL.subs[i].fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(CL.subs[i].fd);
    }
    close(CL.ep);
    free(CL.subs);
    free(CL.buf);
    CL.subs = NULL;
    CL.buf = NULL;
}

/* ---- one measurement ------------------------------------------------------------------ */

static const char *mode_name(bool held) {
    return held ? "held" : "read";
}

/* Start a server for (@held, @n, @size) and open @n subscribers to it. */
static void setup(const config *cfg, bool held, size_t n, size_t size, unsigned max_held) {
    int to_server[2], from_server[2];
    if (pipe2(to_server, O_CLOEXEC) != 0 || pipe2(from_server, O_CLOEXEC) != 0)
        die("pipe: %s", strerror(errno));
    fflush(NULL); /* the child must not write our buffered output again */
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        in_server = true;
        close(to_server[1]);
        close(from_server[0]);
        serve(to_server[0], from_server[1], cfg, held, n, size, max_held);
        _exit(0);
    }
    server_pid = pid;
    close(to_server[0]);
    close(from_server[1]);
    memset(&CL, 0, sizeof CL);
    CL.cmd_fd = to_server[1];
    CL.reply_fd = from_server[0];
    fcntl(CL.reply_fd, F_SETFL, fcntl(CL.reply_fd, F_GETFL) | O_NONBLOCK);
    CL.n = n;
    CL.held = held;
    CL.subs = calloc(n, sizeof *CL.subs);
    CL.buf = held ? NULL : malloc(READ_BUF);
    CL.ep = epoll_create1(EPOLL_CLOEXEC);
    if (!CL.subs || (!held && !CL.buf) || CL.ep < 0)
        die("out of memory or descriptors");
    char line[256];
    unsigned port;
    size_t rss;
    await_reply(line, sizeof line);
    if (sscanf(line, "ready %u %zu", &port, &rss) != 2)
        die("server: '%s'", line);
    CL.port = (uint16_t)port;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = REPLY_TAG};
    if (epoll_ctl(CL.ep, EPOLL_CTL_ADD, CL.reply_fd, &ev) != 0)
        die("epoll_ctl: %s", strerror(errno));
    connect_all();
    char cmd[64];
    snprintf(cmd, sizeof cmd, "open %zu", n);
    send_cmd(cmd);
    await_reply(line, sizeof line);
    size_t rss_open;
    if (sscanf(line, "open %zu", &rss_open) != 1)
        die("server: '%s'", line);
    note("%s %zu conns: server rss %zu KiB before, %zu KiB open and idle (%.0f B/conn)",
         mode_name(held), n, rss >> 10, rss_open >> 10,
         ((double)rss_open - (double)rss) / (double)n);
}

static void teardown(void) {
    close_all();
    send_cmd("quit");
    int status;
    if (waitpid(server_pid, &status, 0) != server_pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0)
        die("the server did not exit cleanly");
    server_pid = 0;
    close(CL.cmd_fd);
    close(CL.reply_fd);
}

/* Whether @need bytes fit comfortably (half of MemAvailable); prints a skip line if not. */
static bool fits(bool held, size_t n, size_t size, unsigned k, size_t need) {
    size_t avail = mem_available();
    if (avail == SIZE_MAX || need <= avail / 2)
        return true;
    printf("bench_fanout  %s  %5zu conns  %6zu B  x%-4u skipped: needs ~%zu MiB, %zu MiB "
           "available\n",
           mode_name(held), n, size, k, need >> 20, avail >> 20);
    fflush(stdout);
    return false;
}

static void measure_held(const config *cfg, size_t n, size_t size) {
    unsigned max_held = cfg->held[cfg->nheld - 1];
    /* while each connection copies: its copies in buffers that double as they grow
     * (1.5x measured), the filler, and the kernel's 8 KiB buffers */
    size_t need = n * (max_held * frame_len(size) / 2 * 3 + 4 * FILLER_LEN);
    if (!fits(true, n, size, max_held, need))
        return;
    setup(cfg, true, n, size, max_held);
    char line[256];
    send_cmd("fill");
    await_reply(line, sizeof line);
    size_t rss0, queued0;
    unsigned passes;
    if (sscanf(line, "filled %zu %zu %u", &rss0, &queued0, &passes) != 3)
        die("server: '%s'", line);
    note("filled the kernel's buffers with %u x %d B messages: %zu B left queued per conn", passes,
         FILLER_LEN, queued0 / n);
    unsigned sent = 0;
    uint64_t cpu = 0;
    double wall = 0;
    for (size_t j = 0; j < cfg->nheld; j++) {
        unsigned k = cfg->held[j];
        char cmd[64];
        snprintf(cmd, sizeof cmd, "held %u", k - sent);
        send_cmd(cmd);
        await_reply(line, sizeof line);
        long count;
        uint64_t cpu_step;
        double wall_step;
        size_t rss, queued;
        if (sscanf(line, "held %ld %" SCNu64 " %lf %zu %zu", &count, &cpu_step, &wall_step, &rss,
                   &queued) != 5)
            die("server: '%s'", line);
        if (count != (long)(n * (k - sent)))
            bench_fail(PROG, "a held message did not reach every connection");
        cpu += cpu_step;
        wall += wall_step;
        sent = k;
        /* The kernel may still open a window a crack now and then (a few KiB on a few
         * connections); more than a hundredth of the bytes and the figures are off. */
        size_t want = n * k * frame_len(size);
        size_t taken = queued < queued0 + want ? queued0 + want - queued : 0;
        if (queued > queued0 + want || taken > want / 100) {
            fprintf(stderr, "%s: %zu B queued, %zu B expected\n", PROG, queued, queued0 + want);
            bench_fail(PROG, "the held messages did not stay in the server's queues");
        }
        note("the kernel took %zu B of the %zu B held", taken, want);
        double per = ((double)rss - (double)rss0) / ((double)n * k);
        double deliveries = (double)n * k;
        printf("bench_fanout  held  %5zu conns  %6zu B  x%-4u rss %+.0f B/conn/msg (%.2fx "
               "payload)  cpu %.2f us/delivery  %s %s\n",
               n, size, k, per, per / (double)size, (double)cpu / deliveries / 1e3,
               bench_compiler(), bench_opt());
        fflush(stdout);
        note("wall %.2f us/delivery; rss %zu KiB -> %zu KiB", wall / deliveries / 1e3, rss0 >> 10,
             rss >> 10);
    }
    teardown();
}

static void measure_read(const config *cfg, size_t n, size_t size) {
    size_t rounds = cfg->read_budget / (n * size);
    rounds = rounds < READ_ROUNDS_MIN   ? READ_ROUNDS_MIN
             : rounds > READ_ROUNDS_MAX ? READ_ROUNDS_MAX
                                        : rounds;
    if (!fits(false, n, size, (unsigned)rounds, n * frame_len(size) / 4 * 5))
        return;
    setup(cfg, false, n, size, 0);
    uint8_t *expect = malloc(rounds * size);
    if (!expect)
        die("out of memory");
    for (unsigned r = 0; r < rounds; r++)
        make_message(expect + (size_t)r * size, size, r);
    CL.expect = expect;
    CL.size = size;
    CL.hdr_len = frame_header(size, CL.hdr);
    CL.rounds = (unsigned)rounds;
    char cmd[64], line[256] = "";
    snprintf(cmd, sizeof cmd, "read %zu", rounds);
    send_cmd(cmd);
    double deadline = bench_now() + STEP_TIMEOUT;
    bool replied = false;
    while (!replied || CL.done < n) {
        replied = poll_subs(100, line, sizeof line) || replied;
        check_deadline(deadline, "reading the broadcasts");
    }
    note("server: %s", line);
    long count;
    uint64_t cpu;
    double wall;
    if (sscanf(line, "read %ld %" SCNu64 " %lf", &count, &cpu, &wall) != 3)
        die("server: '%s'", line);
    if (count != (long)(n * rounds) || CL.checked != n * rounds)
        bench_fail(PROG, "a message did not reach every subscriber");
    double deliveries = (double)n * (double)rounds;
    printf("bench_fanout  read  %5zu conns  %6zu B  x%-4zu cpu %.2f us/delivery  checked %" PRIu64
           "  %s %s\n",
           n, size, rounds, (double)cpu / deliveries / 1e3, CL.checked, bench_compiler(),
           bench_opt());
    fflush(stdout);
    note("wall %.2f us/delivery", wall / deliveries / 1e3);
    free(expect);
    teardown();
}

/* ---- options ------------------------------------------------------------------------ */

static void usage(void) {
    fprintf(stderr,
            "usage: %s [--quick] [--conns N,N] [--sizes S,S] [--held K,K] [--mode held|read]\n"
            "          [--read-mib M] [--server-cpu C] [--client-cpu C] [-v]\n",
            PROG);
    exit(2);
}

/* Parse "a,b,c" (positive integers) into @out; returns the count. */
static size_t parse_list(const char *s, size_t *out, unsigned long long max) {
    size_t n = 0;
    while (*s) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (end == s || errno || v == 0 || v > max || n == MAX_LIST || (*end && *end != ','))
            usage();
        out[n++] = (size_t)v;
        s = *end ? end + 1 : end;
    }
    if (!n)
        usage();
    return n;
}

static int parse_cpu(const char *s) {
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < -1 || v > 1023)
        usage();
    return (int)v;
}

static void parse_args(int argc, char **argv, config *cfg) {
    bool quick = false;
    const char *conns = NULL, *sizes = NULL, *held = NULL, *mode = NULL, *mib = NULL;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->server_cpu = cpus >= 2 ? 0 : -1;
    cfg->client_cpu = cpus >= 2 ? 1 : -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        if (strcmp(a, "--quick") == 0)
            quick = true;
        else if (strcmp(a, "-v") == 0)
            cfg->verbose = true;
        else if (strcmp(a, "--conns") == 0 && has_value)
            conns = argv[++i];
        else if (strcmp(a, "--sizes") == 0 && has_value)
            sizes = argv[++i];
        else if (strcmp(a, "--held") == 0 && has_value)
            held = argv[++i];
        else if (strcmp(a, "--mode") == 0 && has_value)
            mode = argv[++i];
        else if (strcmp(a, "--read-mib") == 0 && has_value)
            mib = argv[++i];
        else if (strcmp(a, "--server-cpu") == 0 && has_value)
            cfg->server_cpu = parse_cpu(argv[++i]);
        else if (strcmp(a, "--client-cpu") == 0 && has_value)
            cfg->client_cpu = parse_cpu(argv[++i]);
        else
            usage();
    }
    cfg->nconns = parse_list(conns ? conns : quick ? "1000" : "1000,10000", cfg->conns, 1000000);
    cfg->nsizes = parse_list(sizes ? sizes : "1024,65536", cfg->sizes, (size_t)1 << 30);
    size_t k[MAX_LIST];
    cfg->nheld = parse_list(held ? held : "1,8", k, 1000000);
    for (size_t i = 0; i < cfg->nheld; i++) {
        if (i > 0 && k[i] <= k[i - 1])
            usage(); /* ascending: each step adds to what is held */
        cfg->held[i] = (unsigned)k[i];
    }
    size_t budget[1];
    parse_list(mib ? mib : quick ? "64" : "512", budget, 1u << 20);
    cfg->read_budget = budget[0] << 20;
    cfg->do_held = !mode || strcmp(mode, "held") == 0;
    cfg->do_read = !mode || strcmp(mode, "read") == 0;
    if (!cfg->do_held && !cfg->do_read)
        usage();
}

int main(int argc, char **argv) {
    config cfg = {0};
    parse_args(argc, argv, &cfg);
    verbose = cfg.verbose;
    signal(SIGPIPE, SIG_IGN); /* a dead server shows as a write error, not as our death */
    size_t max_conns = 0;
    for (size_t i = 0; i < cfg.nconns; i++)
        max_conns = cfg.conns[i] > max_conns ? cfg.conns[i] : max_conns;
    raise_nofile(max_conns + FD_SPARE);
    pin(cfg.client_cpu);
    for (int held = 1; held >= 0; held--) {
        if (held ? !cfg.do_held : !cfg.do_read)
            continue;
        for (size_t i = 0; i < cfg.nconns; i++)
            for (size_t j = 0; j < cfg.nsizes; j++) {
                if (held)
                    measure_held(&cfg, cfg.conns[i], cfg.sizes[j]);
                else
                    measure_read(&cfg, cfg.conns[i], cfg.sizes[j]);
            }
    }
    return 0;
}
