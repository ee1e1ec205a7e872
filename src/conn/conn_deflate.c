/*
 * permessage-deflate on a connection (RFC 7692): incoming messages whose first frame
 * has RSV1 are inflated under the message limit (a zip bomb stops at the limit) and
 * checked for UTF-8 once inflated; outgoing whole messages over the threshold are
 * compressed into a scratch buffer and queued with RSV1. The codec itself is
 * src/proto/deflate.c.
 */
#include "conn/conn_internal.h"

/* A piece of a compressed message (RSV1 on its first frame, RFC 7692 §6.2):
 * inflate it under the message limit, check text once it is inflated, deliver. */
void dx__conn_on_compressed(dx_conn *c, const dx_event *ev) {
    const dx_conn_callbacks *cb = dx__conn_cb(c);
    const dx_allocator *a = dx__conn_alloc(c);
    dx__pmd *m = c->pmd;
    bool streaming = dx__conn_opts(c)->streaming, fin = ev->u.data.fin;
    bool text = ev->u.data.opcode == DX_OP_TEXT;
    dx__buf **out = streaming ? &m->scratch : &c->msg;
    if (ev->u.data.first) {
        m->utf8 = (dx_utf8_state){0};
        m->stream_started = false;
        c->msg_opcode = (uint8_t)ev->u.data.opcode;
        if (c->msg)
            c->msg->len = 0;
    }
    if (streaming && m->scratch)
        m->scratch->len = 0; /* shared with sends, which leave their last message there */
    dx_span in = ev->u.data.data;
    size_t most = dx__conn_opts(c)->limits.max_message + 256; /* the codec stops at the limit */
    for (;;) {
        size_t len = dx__buf_len(*out), cap = *out ? (*out)->cap : 0;
        size_t want = cap < 4096 ? 4096 : cap * 2 < most ? cap * 2 : most;
        if (len + 256 > cap && dx__buf_reserve(a, out, want > len + 256 ? want : len + 256) != 0) {
            dx__conn_end_abnormally(c, DX_ENOMEM, false);
            return;
        }
        size_t used = 0, wrote = 0;
        int rc = dx_deflate_inflate(m->codec, in, fin, (*out)->data + len, (*out)->cap - len, &used,
                                    &wrote);
        in.ptr += used;
        in.len -= used;
        (*out)->len += wrote;
        if (rc == DX_EDEFLATE_TOO_BIG) {
            dx__conn_fail_with(c, DX_CLOSE_MESSAGE_TOO_BIG, rc, "message too big");
            return;
        }
        if (rc < 0 && rc != DX_ENOSPACE) {
            dx__conn_fail_with(c, DX_CLOSE_INVALID_PAYLOAD, rc, "invalid compressed data");
            return;
        }
        bool done = rc == 0;
        if (streaming && (wrote || (done && fin))) {
            dx__buf *b = m->scratch;
            if (text && (!dx_utf8_feed(&m->utf8, b->data, b->len) ||
                         (done && fin && !dx_utf8_is_complete(&m->utf8)))) {
                dx__conn_fail_with(c, DX_CLOSE_INVALID_PAYLOAD, DX_EPROTOCOL, "invalid UTF-8");
                return;
            }
            dx_fragment f = {.opcode = (dx_opcode)c->msg_opcode,
                             .data = {b->data, b->len},
                             .first = !m->stream_started,
                             .fin = done && fin};
            m->stream_started = true;
            if (cb->on_fragment)
                cb->on_fragment(c, &f, c->stream.user);
            if (c->phase != PHASE_OPEN)
                return;
            m->scratch->len = 0;
        }
        if (done)
            break;
    }
    if (streaming || !fin)
        return;
    size_t len = c->msg->len;
    c->msg->len = 0;
    if (text && !dx_utf8_valid(c->msg->data, len)) {
        dx__conn_fail_with(c, DX_CLOSE_INVALID_PAYLOAD, DX_EPROTOCOL, "invalid UTF-8");
        return;
    }
    if (cb->on_message)
        cb->on_message(c, (dx_opcode)c->msg_opcode, (dx_span){c->msg->data, len}, c->stream.user);
    if (len > DX__BUF_KEEP_MAX)
        dx__conn_settle_soon(c);
}

/* Compress a whole message into the scratch buffer and queue it with RSV1. */
int dx__conn_send_compressed(dx_conn *c, dx_proto *p, dx_opcode opcode, dx_span data) {
    const dx_allocator *a = dx__conn_alloc(c);
    dx__pmd *m = c->pmd;
    if (m->scratch)
        m->scratch->len = 0;
    dx_span in = data;
    for (;;) {
        size_t len = dx__buf_len(m->scratch), cap = m->scratch ? m->scratch->cap : 0;
        if (len + 64 > cap &&
            dx__buf_reserve(a, &m->scratch, cap ? cap * 2 : data.len / 2 + 1024) != 0)
            return DX_ENOMEM;
        size_t used = 0, wrote = 0;
        int rc = dx_deflate_compress(m->codec, in, true, m->scratch->data + len,
                                     m->scratch->cap - len, &used, &wrote);
        in.ptr += used;
        in.len -= used;
        m->scratch->len += wrote;
        if (rc == 0)
            break;
        if (rc != DX_ENOSPACE)
            return rc;
    }
    return dx_proto_send_rsv(p, opcode, (dx_span){m->scratch->data, m->scratch->len}, true,
                             DX_RSV1);
}

void dx__conn_free_pmd(dx_conn *c) {
    if (!c->pmd_on)
        return;
    dx_deflate_destroy(c->pmd->codec);
    dx__buf_free(dx__conn_alloc(c), &c->pmd->scratch);
    dx__free(dx__conn_alloc(c), c->pmd, sizeof(dx__pmd));
    c->pmd = NULL;
    c->pmd_on = false;
}
