/*
 * autobahn-client: the client side of the Autobahn|Testsuite "fuzzingserver" protocol,
 * so that anyone with Autobahn can run its client cases against duplex.
 *
 *   autobahn-client [--url ws://127.0.0.1:9001] [--agent duplex] [--case N]
 *
 *   GET /getCaseCount                 a text message with the number of cases
 *   GET /runCase?case=I&agent=NAME    echo every message until the server closes
 *   GET /updateReports?agent=NAME     the server writes its reports and closes
 *
 * --case N runs only case N (and still updates the reports). One connection at a time,
 * one loop. Exit status 0 when every step could connect (case outcomes are Autobahn's to
 * judge, in its reports), 1 otherwise; 2 for a command-line mistake (the message names
 * the argument).
 */
#include <duplex/duplex.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum step { STEP_COUNT, STEP_CASE, STEP_REPORT, STEP_DONE } step;

typedef struct run {
    dx_loop *loop;
    const char *base;  /* ws://host:port, no trailing slash */
    const char *agent; /* reported to Autobahn */
    step step;
    unsigned long num_cases;
    unsigned long next_case;
    unsigned long only_case; /* 0: all */
    bool opened;
    int status;
} run;

static void next_step(run *r);

static void on_open(dx_conn *c, void *user) {
    (void)c;
    ((run *)user)->opened = true;
}

static void on_message(dx_conn *c, dx_opcode op, dx_span data, void *user) {
    run *r = user;
    if (r->step == STEP_COUNT) {
        char buf[32];
        size_t n = data.len < sizeof buf - 1 ? data.len : sizeof buf - 1;
        memcpy(buf, data.ptr, n);
        buf[n] = '\0';
        r->num_cases = strtoul(buf, NULL, 10);
        return;
    }
    if (r->step == STEP_CASE)
        dx_conn_send(c, op, data); /* the cases judge what we echo */
}

static void on_close(dx_conn *c, const dx_close_info *info, void *user) {
    (void)c;
    run *r = user;
    if (!r->opened) {
        fprintf(stderr, "autobahn-client: could not connect: %s\n", dx_strerror(info->error));
        r->status = 1;
        if (r->step != STEP_CASE) { /* nothing more can work */
            r->step = STEP_DONE;
            dx_loop_stop(r->loop);
            return;
        }
    }
    next_step(r);
}

static const dx_conn_callbacks callbacks = {
    .on_open = on_open, .on_message = on_message, .on_close = on_close};

/* Open base + path, where path is "/getCaseCount" (@n 0, no agent), "/runCase" (case
 * @n) or "/updateReports". */
static void open_url(run *r, const char *path, unsigned long n) {
    char url[1024];
    if (strcmp(path, "/runCase") == 0)
        snprintf(url, sizeof url, "%s%s?case=%lu&agent=%s", r->base, path, n, r->agent);
    else if (strcmp(path, "/updateReports") == 0)
        snprintf(url, sizeof url, "%s%s?agent=%s", r->base, path, r->agent);
    else
        snprintf(url, sizeof url, "%s%s", r->base, path);
    /* Autobahn sends up to 16 MiB messages; keep-alive pings would disturb the cases */
    static const dx_deflate_config deflate = {0}; /* offered, as browsers do */
    dx_client_options o = {
        .conn = {.limits.max_message = (size_t)64 << 20,
                 .send.max_queue = (size_t)160 << 20,
                 .timeouts = {.ping_interval_ms = DX_NEVER, .handshake_ms = 30000},
                 .compression.deflate = &deflate}};
    dx_conn *c;
    r->opened = false;
    int rc = dx_client_connect(&c, r->loop, url, &o, &callbacks, r);
    if (rc < 0) {
        fprintf(stderr, "autobahn-client: %s: %s\n", url, dx_strerror(rc));
        r->status = 1;
        r->step = STEP_DONE;
        dx_loop_stop(r->loop);
    }
}

/* Called when a connection ends: start the next one. */
static void next_step(run *r) {
    switch (r->step) {
    case STEP_COUNT:
        printf("%lu cases\n", r->num_cases);
        r->step = STEP_CASE;
        r->next_case = r->only_case ? r->only_case : 1;
        if (r->next_case > r->num_cases) {
            r->step = STEP_REPORT;
            open_url(r, "/updateReports", 0);
            return;
        }
        printf("case %lu\n", r->next_case);
        fflush(stdout);
        open_url(r, "/runCase", r->next_case);
        return;
    case STEP_CASE:
        r->next_case++;
        if (!r->only_case && r->next_case <= r->num_cases) {
            printf("case %lu\n", r->next_case);
            fflush(stdout);
            open_url(r, "/runCase", r->next_case);
            return;
        }
        r->step = STEP_REPORT;
        open_url(r, "/updateReports", 0);
        return;
    case STEP_REPORT:
        r->step = STEP_DONE;
        printf("reports updated\n");
        return;
    case STEP_DONE:
        return;
    }
}

static void usage(FILE *f) {
    fprintf(f, "usage: autobahn-client [--url ws://127.0.0.1:9001] [--agent NAME] [--case N]\n");
}

/* A command-line mistake: name it, exit 2. */
static void bad_usage(const char *arg, const char *why) {
    fprintf(stderr, "autobahn-client: %s: %s (see autobahn-client --help)\n", arg, why);
    exit(2);
}

int main(int argc, char **argv) {
    run r = {.base = "ws://127.0.0.1:9001", .agent = "duplex"};
    for (int i = 1; i < argc; i += 2) { /* every option takes a value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(a, "--url") != 0 && strcmp(a, "--agent") != 0 && strcmp(a, "--case") != 0)
            bad_usage(a, a[0] == '-' ? "unknown option" : "unexpected argument");
        if (!v)
            bad_usage(a, "needs a value");
        if (strcmp(a, "--url") == 0) {
            r.base = v;
        } else if (strcmp(a, "--agent") == 0) {
            r.agent = v;
        } else {
            char *end;
            errno = 0;
            r.only_case = strtoul(v, &end, 10);
            if (v[0] < '1' || v[0] > '9' || errno || *end)
                bad_usage(a, "expected a case number, 1 or more");
        }
    }
    size_t n = strlen(r.base);
    char base[512];
    if (n == 0 || n >= sizeof base)
        bad_usage("--url", "empty or too long");
    memcpy(base, r.base, n + 1);
    while (n > 0 && base[n - 1] == '/')
        base[--n] = '\0';
    r.base = base;
    for (const char *p = r.agent; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("-._~", *p)))
            bad_usage("--agent", "only letters, digits and -._~ (it goes into the query)");
    signal(SIGPIPE, SIG_IGN);
    if (dx_loop_create(&r.loop, NULL) != 0)
        return 1;
    open_url(&r, "/getCaseCount", 0);
    dx_loop_run(r.loop);
    dx_loop_destroy(r.loop);
    return r.status;
}
