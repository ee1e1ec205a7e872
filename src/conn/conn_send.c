/*
 * The send API of a connection (conn.h): messages, fragments, prepared messages,
 * pings, and the closing handshake. Frames go into the stream's queue through the
 * proto; a large server frame on an idle stream skips the copy (one sendmsg of header
 * and payload); backpressure is the proto's max_send_queue, with the connection's
 * policy when a send would pass it.
 */
#include "conn/conn_internal.h"
#include "conn/prepared.h"

/* The proto to send on, or the reason a send is refused. */
static int sendable(dx_conn *c, dx_proto **p) {
    if (!c)
        return DX_EINVAL;
    if (c->phase == PHASE_HANDSHAKE)
        return DX_ECONNECTING;
    if (c->phase != PHASE_OPEN || (c->proto && dx_proto_get_state(c->proto) != DX_OPEN))
        return DX_ECLOSED;
    *p = dx__conn_proto(c);
    return *p ? 0 : DX_ENOMEM;
}

static int sent(dx_conn *c, int rc) {
    if (rc == DX_ELIMIT) {
        c->drain_wanted = true;
        dx__stream_expect_drain(&c->stream);
        if (dx__conn_opts(c)->send.when_full == DX_BP_CLOSE) {
            c->stream.error = DX_ESEND_QUEUE;
            dx__conn_close(c, DX_CLOSE_POLICY_VIOLATION, "send queue full");
        }
        return DX_ESEND_QUEUE;
    }
    if (rc < 0)
        return rc;
    c->last_active = dx__conn_now_ms(c);
    dx__stream_want_flush(&c->stream);
    size_t queued = dx_stream_buffered(&c->stream);
    if (queued > dx__conn_opts(c)->send.low_water) {
        c->drain_wanted = true;
        dx__stream_expect_drain(&c->stream);
    }
    if (queued > DX__BUF_KEEP_MAX)
        dx__conn_settle_soon(c); /* the output grew for it */
    return 0;
}

/*
 * A large frame on an idle stream skips the copy into the queue: its header and the
 * caller's bytes go out at once with one sendmsg, and only what the socket did not
 * take is copied. The server side only: a client must mask, which is a copy anyway.
 */
static int send_direct(dx_conn *c, dx_proto *p, dx_opcode opcode, dx_span data, bool fin) {
    if (dx_stream_buffered(&c->stream) + data.len > dx__conn_opts(c)->send.max_queue)
        return DX_ELIMIT;
    uint8_t hdr[DX_MAX_HEADER_LEN];
    size_t hlen;
    int rc = dx_proto_send_header(p, opcode, data.len, fin, hdr, &hlen, NULL);
    if (rc < 0)
        return rc;
    dx_span v[2] = {{hdr, hlen}, data};
    return dx__stream_send_now(&c->stream, v, 2); /* DX_ENOMEM: the frame is half-sent */
}

#define DIRECT_MIN ((size_t)16 << 10) /* below this the copy costs less than a syscall */

int dx_conn_send_fragment(dx_conn *c, dx_opcode opcode, dx_span data, bool fin) {
    dx_proto *p;
    int rc = sendable(c, &p);
    if (rc < 0)
        return rc;
    if (data.len >= DIRECT_MIN && c->side == DX_SIDE_SERVER && !c->stream.tls &&
        !dx_stream_buffered(&c->stream) && data.ptr) {
        rc = send_direct(c, p, opcode, data, fin);
        if (rc == DX_ENOMEM) {
            dx__conn_end_abnormally(c, rc, false);
            return rc;
        }
        return sent(c, rc);
    }
    return sent(c, dx_proto_send(p, opcode, data, fin));
}

int dx_conn_send_ex(dx_conn *c, dx_opcode opcode, dx_span data, unsigned flags) {
    if (opcode != DX_OP_TEXT && opcode != DX_OP_BINARY)
        return DX_EINVAL;
    if (!c || !c->pmd_on || (flags & DX_SEND_NO_COMPRESS) ||
        data.len < dx__conn_opts(c)->compression.min_size || (!data.ptr && data.len))
        return dx_conn_send_fragment(c, opcode, data, true);
    dx_proto *p;
    int rc = sendable(c, &p);
    if (rc < 0)
        return rc;
    /* refuse before the compressor's context takes the message in: deflate's worst
     * case grows data by well under 1/512 plus a few bytes */
    if (dx_stream_buffered(&c->stream) + data.len + data.len / 512 + 64 >
        dx__conn_opts(c)->send.max_queue)
        return sent(c, DX_ELIMIT);
    rc = dx__conn_send_compressed(c, p, opcode, data);
    if (rc < 0) {
        /* the compressor's context may hold this message now: the stream is broken */
        dx__conn_fail_with(c, DX_CLOSE_INTERNAL_ERROR, rc, "compression failed");
        return rc;
    }
    return sent(c, rc);
}

/* A whole frame of a prepared message: by reference on the server side; a client
 * masks, so it frames a copy of the payload (after @hdr_len header bytes). */
static int send_frame(dx_conn *c, dx_proto *p, dx_shared *frame, size_t hdr_len, dx_opcode opcode,
                      uint8_t rsv) {
    dx_span f = dx_shared_data(frame);
    if (c->side == DX_SIDE_SERVER)
        return dx_proto_send_shared(p, frame, 0, f.len);
    return dx_proto_send_rsv(p, opcode, (dx_span){f.ptr + hdr_len, f.len - hdr_len}, true, rsv);
}

int dx_conn_send_prepared(dx_conn *c, dx_prepared *m) {
    if (!m)
        return DX_EINVAL;
    dx_opcode opcode = dx__prepared_opcode(m);
    dx_proto *p;
    int rc = sendable(c, &p);
    if (rc < 0)
        return rc;
    dx_shared *z = NULL;
    size_t zh = 0;
    if (c->pmd_on && !dx__prepared_no_compress(m) &&
        dx__prepared_payload(m).len >= dx__conn_opts(c)->compression.min_size) {
        rc = dx__prepared_compressed(m, dx_deflate_window_bits(c->pmd->codec), &z, &zh);
        if (rc < 0)
            return rc;
    }
    if (!z) { /* uncompressed: no extension, too small, opted out, or it does not pay */
        dx_shared *plain = dx__prepared_frame(m);
        size_t hl = dx_shared_data(plain).len - dx__prepared_payload(m).len;
        return sent(c, send_frame(c, p, plain, hl, opcode, 0));
    }
    rc = send_frame(c, p, z, zh, opcode, DX_RSV1);
    if (rc == 0 && (rc = dx_deflate_reset_compressor(c->pmd->codec)) < 0) {
        dx__conn_fail_with(c, DX_CLOSE_INTERNAL_ERROR, rc, "compression failed");
        return rc;
    }
    return sent(c, rc);
}

int dx_conn_send(dx_conn *c, dx_opcode opcode, dx_span data) {
    return dx_conn_send_ex(c, opcode, data, 0);
}

int dx_conn_send_text(dx_conn *c, dx_span text) {
    return dx_conn_send(c, DX_OP_TEXT, text);
}

int dx_conn_send_binary(dx_conn *c, dx_span data) {
    return dx_conn_send(c, DX_OP_BINARY, data);
}

int dx_conn_ping(dx_conn *c, dx_span payload) {
    dx_proto *p;
    int rc = sendable(c, &p);
    if (rc < 0)
        return rc;
    rc = dx_proto_ping(p, payload);
    if (rc == 0)
        dx__conn_track_ping(c, payload);
    return sent(c, rc);
}

/* ---- closing ------------------------------------------------------------------------ */

/* Start the closing handshake (arguments already checked). */
static int close_with(dx_conn *c, uint16_t code, dx_span reason) {
    if (c->phase != PHASE_OPEN || (c->proto && dx_proto_get_state(c->proto) != DX_OPEN))
        return 0;
    dx_proto *p = dx__conn_proto(c);
    if (!p)
        return DX_ENOMEM;
    int rc = dx_proto_close(p, code, reason);
    if (rc < 0)
        return rc;
    c->close_started_here = true;
    dx__conn_timer_closing(c);
    dx__conn_output_changed(c);
    return 0;
}

int dx__conn_close(dx_conn *c, uint16_t code, const char *reason) {
    if (c->phase == PHASE_HANDSHAKE) {
        dx__conn_end_abnormally(c, 0, false);
        return 0;
    }
    return close_with(c, code, dx_span_cstr(reason));
}

/* The browser's checks on close(code, reason), on the client; the wire's on the server. */
static int check_close(const dx_conn *c, uint16_t *code_io, dx_span reason) {
    uint16_t code = *code_io;
    if (reason.len && !code)
        code = DX_CLOSE_NORMAL; /* the browser's rule */
    if (code && (c->side == DX_SIDE_CLIENT ? code != DX_CLOSE_NORMAL && (code < 3000 || code > 4999)
                                           : !dx_close_code_is_valid(code)))
        return DX_EBAD_CLOSE_CODE;
    if (reason.len > DX_MAX_CLOSE_REASON || (reason.len && !reason.ptr) ||
        !dx_utf8_valid(reason.ptr, reason.len))
        return DX_ECLOSE_REASON;
    *code_io = code;
    return 0;
}

int dx_conn_close(dx_conn *c, uint16_t code, dx_span reason) {
    if (!c)
        return DX_EINVAL;
    int rc = check_close(c, &code, reason);
    if (rc < 0)
        return rc;
    c->app_closed = true;
    if (c->phase == PHASE_HANDSHAKE) {
        dx__conn_end_abnormally(c, 0, false);
        return 0;
    }
    return close_with(c, code, reason);
}

void dx_conn_abort(dx_conn *c) {
    if (!c)
        return;
    c->app_closed = true;
    dx__conn_end_abnormally(c, 0, false);
}
