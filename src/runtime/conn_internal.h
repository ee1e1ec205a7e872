/*
 * The connection layer's private state, shared by conn.c (the OPEN and closing
 * phases, common to both sides), src/server/ and src/client/ (each owns the
 * CONNECTING phase of its side through a dx__conn_role). Not installed.
 */
#ifndef DX_RUNTIME_CONN_INTERNAL_H
#define DX_RUNTIME_CONN_INTERNAL_H

#include "base/internal.h"
#include "duplex/conn.h"

#include <sys/types.h>

/* Where a connection is in its life. Only conn.c moves it past PHASE_HANDSHAKE. */
typedef enum dx__phase {
    PHASE_HANDSHAKE = 0, /* the role's: resolve, connect, proxy, HTTP upgrade */
    PHASE_OPEN,          /* dx_proto in charge; may be CLOSING (close frame sent) */
    PHASE_LINGER,        /* our side is done: wait for the peer's FIN, then close */
    PHASE_DEAD,          /* finished; on_close ran (or was not owed); freed soon */
} dx__phase;

/* The CONNECTING phase of one side, and its clean-up. */
typedef struct dx__conn_role {
    /* The socket is ready (DX_IO_READ / DX_IO_WRITE bits) during PHASE_HANDSHAKE. */
    void (*on_io)(dx_conn *c, unsigned events);
    /* The handshake timer fired. */
    void (*on_timeout)(dx_conn *c);
    /* The connection finished (on_close is about to run): unlink from the owner. */
    void (*on_finish)(dx_conn *c);
    /* on_close has returned (or was not owed). */
    void (*after_close)(dx_conn *c);
    /* Free what the role attached (c->role_data), at the final free. */
    void (*release)(dx_conn *c);
} dx__conn_role;

struct dx_conn {
    dx_io io;       /* the socket's watcher */
    dx_timer timer; /* the next deadline: handshake, keep-alive, close */
    dx_defer defer; /* the final free */
    dx_loop *loop;
    dx_proto *proto;             /* NULL until OPEN */
    const dx_conn_callbacks *cb; /* the owner's table */
    const dx_conn_options *opts; /* the owner's options, defaults filled in */
    const dx__conn_role *role;   /* server or client */
    void *owner;                 /* the dx_server, or the client's state */
    void *role_data;             /* the role's handshake state, while CONNECTING */
    void *user;                  /* the application's */
    dx_conn *flush_next;         /* the loop's flush list */
    dx_conn *flush_prev;         /* the loop's flush list */
    dx_conn *prev, *next;        /* the owner's list of connections */
    uint8_t *in;                 /* bytes read but not yet consumed: the handshake
                                    head, or what arrived while paused */
    size_t in_len, in_cap;       /* in use, allocated */
    uint8_t *raw;                /* HTTP bytes to write before any frame (101,
                                    refusal, request, CONNECT) */
    size_t raw_len, raw_cap;     /* in use, allocated */
    uint8_t *msg;                /* the message being reassembled */
    size_t msg_len, msg_cap;     /* in use, allocated */
    uint64_t last_active;        /* loop ms of the last message either way */
    uint64_t last_recv;          /* loop ms of the last read */
    uint64_t pong_deadline;      /* loop ms; 0: no keep-alive ping outstanding */
    uint64_t ping_sent_us;       /* when the tracked ping left (for the RTT) */
    char *info;                  /* one block holding the strings below */
    size_t info_size;            /* its size */
    dx_span protocol;            /* agreed subprotocol (into info) */
    dx_span extensions;          /* agreed extensions (into info) */
    dx_span resource;            /* server: the request target (into info) */
    const char *url;             /* client: the URL (into info); else "" */
    dx_span close_reason;        /* the peer's reason, into the proto */
    int error;                   /* why it failed (dx_close_info.error) */
    int http_status;             /* client: the answer's status */
    int fd;
    uint32_t ping_seq;       /* counter for keep-alive ping payloads */
    uint8_t ping_data[8];    /* first bytes of the tracked ping's payload */
    uint16_t close_code;     /* for dx_close_info */
    uint8_t phase;           /* dx__phase */
    uint8_t side;            /* dx_side */
    uint8_t io_events;       /* DX_IO_* bits the watcher asks for */
    uint8_t msg_opcode;      /* the reassembled message's type */
    uint8_t ping_len;        /* 0: no tracked ping; else its payload length */
    bool paused;             /* dx_conn_pause (or a pending upgrade decision) */
    bool want_write;         /* the role waits for writability (connect) */
    bool seen;               /* the application knows it: on_close is owed */
    bool on_flush_list;      /* in the loop's flush list */
    bool close_started_here; /* we sent the first close frame */
    bool clean;              /* close frames were exchanged */
    bool remote;             /* the peer started the closing */
    bool drain_wanted;       /* went above low_water or a send was refused */
    bool in_pending;         /* in[] holds frames to deliver on resume */
    bool linger_after_raw;   /* end once raw[] is written (HTTP refusal) */
    bool app_closed;         /* the application called dx_conn_close or dx_conn_abort */
};

/* Fill zero fields of @in with defaults into @out. */
void dx__conn_options_resolve(const dx_conn_options *in, dx_conn_options *out);

/* Set up @c (zeroed by the caller) on @loop for socket @fd, owned by @role. Starts
 * reading and the handshake timer. Returns 0 or -errno (epoll). */
int dx__conn_init(dx_conn *c, dx_loop *loop, int fd, dx_side side, const dx__conn_role *role,
                  void *owner, const dx_conn_options *opts, const dx_conn_callbacks *cb,
                  void *user);

/* Give @c its socket (the client, once connect() started) and watch it, for
 * writability too when @want_write. Returns 0 or -errno. */
int dx__conn_attach_fd(dx_conn *c, int fd, bool want_write);

/* Stop watching and close @c's socket (a connect attempt that failed). */
void dx__conn_detach_fd(dx_conn *c);

/* Read once from the socket into the loop's shared buffer. Returns the bytes read
 * (> 0), 0 at EOF, DX_EINCOMPLETE when nothing is there, or -errno. *@buf points
 * to them. */
ssize_t dx__conn_read(dx_conn *c, uint8_t **buf);

/* Append bytes to in[] / raw[]. Return 0 or DX_ENOMEM. */
int dx__conn_keep_input(dx_conn *c, const uint8_t *p, size_t n);
int dx__conn_queue_raw(dx_conn *c, const uint8_t *p, size_t n);

/* Put @c on the loop's flush list (written before the next wait). */
void dx__conn_want_flush(dx_conn *c);

/* Recompute the watcher's events (read unless paused; write while output waits). */
void dx__conn_update_io(dx_conn *c);

/* Start the closing handshake with any code valid on the wire (the library's own
 * closes: shutdown, idle, backpressure). Returns 0 or a negative code. */
int dx__conn_close(dx_conn *c, uint16_t code, const char *reason);

/*
 * Leave the handshake: create the proto for @side, switch to OPEN, run on_open, then
 * deliver the bytes already kept in in[] past @head_len (frames that arrived with
 * the handshake). Returns 0, or a negative code after which @c is finished.
 */
int dx__conn_open(dx_conn *c, size_t head_len);

/* Fail @c during the handshake (or any time) with @err: no closing handshake;
 * on_error if seen, then on_close (1006). Frees @c after the iteration. */
void dx__conn_fail(dx_conn *c, int err);

/* Keep copies of the strings a connection reports for its life (any may be NULL
 * spans / NULL url). Returns 0 or DX_ENOMEM. */
int dx__conn_set_info(dx_conn *c, dx_span resource, dx_span protocol, dx_span extensions,
                      const char *url);

/* Send what raw[] holds, then shut the write side and linger until the peer closes
 * (an HTTP refusal). No on_close unless seen. */
void dx__conn_end_after_raw(dx_conn *c);

#endif /* DX_RUNTIME_CONN_INTERNAL_H */
