/*
 * A stream's bytes through the TLS engine (src/tls): ciphertext read from the socket
 * is fed to the engine and plaintext comes out; the queue's plaintext goes in a
 * record's worth at a time, and only when the ciphertext before it is gone, so the
 * engine never holds more than a record or two and backpressure stays in the
 * stream's queue. The engine's pending plaintext is invisible to epoll: tls_more
 * brings the stream back from the flush hook.
 */
#include "runtime/stream_internal.h"

#include "runtime/sock.h"
#include "tls/tls.h"

#define TLS_CHUNK ((size_t)16 << 10) /* one TLS record's worth per write */

size_t dx__stream_tls_pending_out(const dx_stream *s) {
    return s->tls ? dx__tls_output(s->tls).len : 0;
}

int dx__stream_tls_send(dx_stream *s) {
    dx_span out = dx__tls_output(s->tls);
    while (out.len) {
        ssize_t w = dx__sock_writev(s->io.fd, &out, 1);
        if (w < 0)
            return (int)w;
        if (w == 0)
            break;
        dx__tls_consume(s->tls, (size_t)w);
        out = dx__tls_output(s->tls);
    }
    return 0;
}

int dx__stream_tls_flush(dx_stream *s) {
    bool up = dx__tls_is_established(s->tls) && (s->state == ST_OPEN || s->state == ST_CLOSING);
    for (;;) {
        int rc = dx__stream_tls_send(s); /* handshake messages, alerts, earlier records */
        if (rc < 0)
            return rc;
        if (dx__stream_tls_pending_out(s) || !up || !dx_outq_len(&s->out))
            return 0;
        dx_span plain = dx_outq_front(&s->out);
        size_t used = 0;
        rc = dx__tls_write(
            s->tls, (dx_span){plain.ptr, plain.len < TLS_CHUNK ? plain.len : TLS_CHUNK}, &used);
        if (rc < 0)
            return rc;
        dx_outq_consume(&s->out, used);
    }
}

ssize_t dx__stream_tls_read(dx_stream *s, uint8_t *buf, size_t cap, uint8_t *cipher_buf) {
    for (;;) {
        int rc;
        if (!dx__tls_is_established(s->tls)) {
            rc = dx__tls_handshake(s->tls);
            if (dx__stream_tls_pending_out(s) || rc == 0)
                dx__stream_want_flush(s); /* its messages, or what waited for it */
            if (rc < 0 && rc != DX_EINCOMPLETE)
                return rc;
        }
        if (dx__tls_is_established(s->tls)) {
            size_t n = 0;
            rc = dx__tls_read(s->tls, buf, cap, &n);
            if (dx__stream_tls_pending_out(s))
                dx__stream_want_flush(s); /* tickets, key updates */
            if (rc == 0) {
                if (dx__tls_pending(s->tls)) { /* epoll will not say so: come back */
                    s->tls_more = true;
                    dx__stream_want_flush(s);
                }
                return (ssize_t)n;
            }
            if (rc == DX_ECLOSED)
                return 0; /* close_notify: the end of the stream */
            if (rc != DX_EINCOMPLETE)
                return rc;
        }
        ssize_t m = dx__sock_recv(s->io.fd, cipher_buf, cap);
        if (m <= 0)
            return m; /* EOF, DX_EINCOMPLETE, or -errno */
        size_t used;
        rc = dx__tls_feed(s->tls, (dx_span){cipher_buf, (size_t)m}, &used);
        if (rc < 0) {
            dx__stream_want_flush(s); /* an alert may say why */
            return rc;
        }
    }
}
