/*
 * The sans-I/O WebSocket endpoint (RFC 6455 §5-§8): a frame parser that keeps
 * at most one partial header between reads, the receive rules of each side, the
 * closing handshake, automatic pongs, limits, and the output buffer.
 *
 * Receive path, per call: header bytes (parsed in place when the whole header
 * is in the caller's buffer, else gathered in hdr[]) -> checks -> payload. Data
 * payloads are unmasked in place and handed out as spans into the caller's
 * buffer; control payloads (<= 125 bytes) are gathered in ctrl[]. Nothing on
 * the receive path allocates except growing the output buffer for an automatic
 * reply when it is full.
 *
 * Output: whole frames appended to a dx_outq (outq.h), the caller's (the runtime
 * gives its connection's queue, so HTTP bytes and frames share one order) or the
 * proto's own. Frames are copied in (and masked on the client side); a frame built
 * once for many connections goes in as a reference (dx_proto_send_shared). Once the
 * queue has grown to the working size, steady-state sending allocates nothing.
 */
#include "base/internal.h"
#include "duplex/proto.h"
#include "duplex/utf8.h"

#define OUT_INITIAL 256 /* room for a close and a pong without growing */

struct dx_proto {
    /* Ordered widest first so the struct packs without holes: the runtime keeps
     * one per connection, idle ones included. */
    const dx_allocator *alloc; /* from the config (or the default) */
    const dx_random *random;   /* masking keys (client side) */
    dx_proto_limits limits;    /* with defaults filled in */
    dx_outq *out;              /* where frames go: the caller's queue, or own_out */
    dx_outq own_out;           /* the queue when the config gives none */
    uint64_t left;             /* payload bytes of the current frame still to come */
    uint64_t msg_len;          /* sum of the fragment lengths announced so far */
    dx_frame_header frame;     /* the current frame's header */
    dx_side side;              /* server or client */
    dx_ready_state state;      /* OPEN, CLOSING or CLOSED */
    dx_utf8_state utf8;        /* validator state across frames and reads */

    uint8_t rsv_allowed; /* RSV bits an extension negotiated */
    bool close_sent;     /* a close frame is in (or went through) the output */
    bool close_reported; /* DX_EV_CLOSE was returned; nothing more will be */
    bool send_msg_open;  /* we sent a fragment with FIN=0 and owe the rest */

    /* receive: the frame being parsed */
    bool in_payload;  /* false: reading a header */
    bool hdr_checked; /* the first two bytes passed check_start() */
    uint8_t hdr_have; /* header bytes gathered in hdr[] (< 14) */
    uint8_t key_pos;  /* payload bytes unmasked so far, mod 4 */

    /* receive: the data message (may span frames, with control frames between) */
    bool msg_open;       /* a message started and its FIN frame has not ended */
    bool msg_first;      /* the next DX_EV_DATA is the message's first */
    bool msg_check_utf8; /* text without RSV bits: validate as it arrives */
    uint8_t msg_opcode;  /* DX_OP_TEXT or DX_OP_BINARY */
    uint8_t msg_rsv;     /* RSV bits of the first frame */
    uint8_t ctrl_len;    /* control payload bytes gathered (<= 125) */

    const uint8_t *close_reason; /* the reason DX_EV_CLOSE reported (ctrl[] or static) */
    uint8_t close_reason_len;

    uint8_t hdr[DX_MAX_HEADER_LEN];       /* a header split across reads */
    uint8_t ctrl[DX_MAX_CONTROL_PAYLOAD]; /* the control frame's payload */
};

/* ---- output --------------------------------------------------------------- */

static size_t out_pending(const dx_proto *p) {
    return dx_outq_len(p->out);
}

static size_t header_size(size_t payload_len, bool masked) {
    size_t n = payload_len <= 125 ? 2 : payload_len <= 0xFFFF ? 4 : 10;
    return n + (masked ? 4 : 0);
}

/* True when a frame of @payload_len bytes fits under limits.max_send_queue. */
static bool fits_send_queue(const dx_proto *p, size_t payload_len) {
    size_t pending = out_pending(p);
    size_t cap = p->limits.max_send_queue;
    size_t hs = header_size(payload_len, p->side == DX_SIDE_CLIENT);
    return pending <= cap && cap - pending >= hs && payload_len <= cap - pending - hs;
}

/* A fresh masking key from the random source (§5.3: unpredictable, per frame). */
static int new_mask_key(dx_proto *p, uint8_t key[4]) {
    int rc = p->random->fill(key, 4, p->random->ctx);
    return rc < 0 ? rc : 0;
}

/*
 * Append one whole frame. Nothing is written on failure. Returns 0, DX_ENOMEM, or
 * the random source's error (client side).
 */
static int queue_frame(dx_proto *p, unsigned opcode, bool fin, uint8_t rsv, dx_span payload) {
    dx_frame_header h = {
        .fin = fin, .rsv = rsv, .opcode = (uint8_t)opcode, .payload_len = payload.len};
    if (p->side == DX_SIDE_CLIENT) {
        h.masked = true;
        int rc = new_mask_key(p, h.mask);
        if (rc < 0)
            return rc;
    }
    uint8_t *dst = dx_outq_reserve(p->out, header_size(payload.len, h.masked) + payload.len);
    if (!dst)
        return DX_ENOMEM;
    size_t hl = dx_frame_header_encode(dst, &h);
    if (payload.len) {
        if (h.masked)
            dx_mask_copy(dst + hl, payload.ptr, payload.len, h.mask, 0);
        else
            memcpy(dst + hl, payload.ptr, payload.len);
    }
    dx_outq_commit(p->out, hl + payload.len);
    return 0;
}

/* Queue a close frame: no payload when @code is 0, else the code and @reason. */
static int queue_close(dx_proto *p, uint16_t code, dx_span reason) {
    uint8_t body[DX_MAX_CONTROL_PAYLOAD];
    dx_span payload = {body, 0};
    if (code != 0) {
        dx__store_be16(body, code);
        if (reason.len > DX_MAX_CLOSE_REASON)
            reason.len = DX_MAX_CLOSE_REASON;
        if (reason.len)
            memcpy(body + 2, reason.ptr, reason.len);
        payload.len = 2 + reason.len;
    }
    return queue_frame(p, DX_OP_CLOSE, true, 0, payload);
}

/* ---- receive -------------------------------------------------------------- */

static void set_close_event(dx_proto *p, dx_event *ev, uint16_t code, dx_span reason, bool remote) {
    p->close_reported = true;
    p->close_reason = reason.ptr;
    p->close_reason_len = (uint8_t)reason.len;
    ev->type = DX_EV_CLOSE;
    ev->u.close.code = code;
    ev->u.close.reason = reason;
    ev->u.close.remote = remote;
}

/*
 * Fail the connection (§7.1.7): queue a close with @code and a short reason
 * (unless we already sent one), go CLOSED, report DX_EV_CLOSE remote=false.
 * Returns 0, or the queueing error: the proto is CLOSED then too, without an
 * event (dx_proto_recv_eof reports 1006).
 */
static int fail(dx_proto *p, uint16_t code, const char *why, dx_event *ev) {
    dx_span reason = dx_span_cstr(why);
    p->state = DX_CLOSED;
    if (!p->close_sent) {
        p->close_sent = true;
        int rc = queue_close(p, code, reason);
        if (rc < 0)
            return rc;
    }
    set_close_event(p, ev, code, reason, false);
    return 0;
}

/* An automatic reply could not be queued: the connection cannot go on. */
static int resource_fail(dx_proto *p, int rc) {
    p->state = DX_CLOSED;
    return rc;
}

/*
 * Rules that the first two header bytes decide. Checked as soon as they arrive,
 * before the rest of the header. Returns 0 or the close code, with *@why set.
 */
static uint16_t check_start(const dx_proto *p, uint8_t b0, uint8_t b1, const char **why) {
    unsigned op = b0 & 0x0Fu;
    unsigned rsv = (b0 >> 4) & 0x7u;
    bool masked = (b1 & 0x80u) != 0;
    unsigned len7 = b1 & 0x7Fu;
    if (!dx_opcode_is_known(op)) { /* §5.2: reserved opcodes fail */
        *why = "reserved opcode";
        return DX_CLOSE_PROTOCOL_ERROR;
    }
    if (rsv & ~(unsigned)p->rsv_allowed) { /* §5.2: RSV bits without an extension */
        *why = "reserved bit set";
        return DX_CLOSE_PROTOCOL_ERROR;
    }
    if (rsv && (op == DX_OP_CONT || dx_opcode_is_control(op))) {
        /* Negotiated bits mark a whole message, so they belong on its first frame
         * only (RFC 7692 §6: never on control frames or continuations). */
        *why = "RSV bit on a control or continuation frame";
        return DX_CLOSE_PROTOCOL_ERROR;
    }
    if (p->side == DX_SIDE_SERVER && !masked) { /* §5.1 */
        *why = "unmasked frame from client";
        return DX_CLOSE_PROTOCOL_ERROR;
    }
    if (p->side == DX_SIDE_CLIENT && masked) { /* §5.1 */
        *why = "masked frame from server";
        return DX_CLOSE_PROTOCOL_ERROR;
    }
    if (dx_opcode_is_control(op)) {
        if (!(b0 & 0x80u)) { /* §5.5: control frames MUST NOT be fragmented */
            *why = "fragmented control frame";
            return DX_CLOSE_PROTOCOL_ERROR;
        }
        if (len7 > DX_MAX_CONTROL_PAYLOAD) { /* §5.5: 125 bytes or less */
            *why = "control frame over 125 bytes";
            return DX_CLOSE_PROTOCOL_ERROR;
        }
    } else if (op == DX_OP_CONT && !p->msg_open) { /* §5.4 */
        *why = "continuation without a message";
        return DX_CLOSE_PROTOCOL_ERROR;
    } else if (op != DX_OP_CONT && p->msg_open) { /* §5.4 */
        *why = "new message inside a fragmented one";
        return DX_CLOSE_PROTOCOL_ERROR;
    }
    return 0;
}

/*
 * A piece of a data frame's payload (@n may be 0 for an empty frame). Unmask,
 * validate, and report it. Ignored (parsed, not delivered) once we sent a close.
 */
static int data_chunk(dx_proto *p, uint8_t *chunk, size_t n, dx_event *ev) {
    p->left -= n;
    bool frame_done = p->left == 0;
    bool fin = frame_done && p->frame.fin;
    if (frame_done) {
        p->in_payload = false;
        if (p->frame.fin)
            p->msg_open = false;
    }
    if (p->state != DX_OPEN)
        return 0; /* §5.5.1: after our close, data is not processed */
    if (p->frame.masked && n) {
        dx_mask(chunk, n, p->frame.mask, p->key_pos);
        p->key_pos = (uint8_t)((p->key_pos + n) & 3u);
    }
    if (p->msg_check_utf8) {
        /* §8.1: fail fast. The whole chunk that holds the bad byte is withheld,
         * so the application never sees bytes of an invalid text message past
         * the previous (valid) event. */
        if (!dx_utf8_feed(&p->utf8, chunk, n))
            return fail(p, DX_CLOSE_INVALID_PAYLOAD, "invalid UTF-8 in text message", ev);
        if (fin && !dx_utf8_is_complete(&p->utf8))
            return fail(p, DX_CLOSE_INVALID_PAYLOAD, "text message ends inside a character", ev);
    }
    if (n == 0 && !p->msg_first && !fin)
        return 0; /* an empty middle fragment tells the application nothing */
    ev->type = DX_EV_DATA;
    ev->u.data.opcode = (dx_opcode)p->msg_opcode;
    ev->u.data.data.ptr = chunk;
    ev->u.data.data.len = n;
    ev->u.data.first = p->msg_first;
    ev->u.data.fin = fin;
    ev->u.data.rsv = p->msg_rsv;
    p->msg_first = false;
    return 0;
}

/* A whole control frame is in ctrl[]: act on it (§5.5). */
static int control_end(dx_proto *p, dx_event *ev) {
    dx_span payload = {p->ctrl, p->ctrl_len};
    int rc;
    switch (p->frame.opcode) {
    case DX_OP_PING:
        if (p->state != DX_OPEN)
            return 0; /* we sent a close: no more pongs (§5.5.1) */
        /* A peer that keeps pinging but does not read our output would grow it
         * without bound. One pong may take the output past max_send_queue; a
         * ping that finds it still past the cap fails the connection. */
        if (out_pending(p) > p->limits.max_send_queue)
            return fail(p, DX_CLOSE_POLICY_VIOLATION, "ping flood: output not read", ev);
        rc = queue_frame(p, DX_OP_PONG, true, 0, payload); /* §5.5.2: same payload */
        if (rc < 0)
            return resource_fail(p, rc);
        ev->type = DX_EV_PING;
        ev->u.ping = payload;
        return 0;
    case DX_OP_PONG:
        if (p->state != DX_OPEN)
            return 0;
        ev->type = DX_EV_PONG;
        ev->u.pong = payload;
        return 0;
    default: { /* DX_OP_CLOSE; check_start() let no other opcode through */
        uint16_t code;
        dx_span reason;
        if (dx_close_payload_parse(payload, &code, &reason) != 0) {
            const char *why = code == DX_CLOSE_INVALID_PAYLOAD ? "invalid UTF-8 in close reason"
                              : payload.len == 1               ? "close payload of 1 byte"
                                                               : "invalid close code";
            return fail(p, code, why, ev);
        }
        if (!p->close_sent) {
            /* §5.5.1: answer with a close, echoing the status code. */
            p->close_sent = true;
            dx_span none = {NULL, 0};
            rc = queue_close(p, code == DX_CLOSE_NO_STATUS ? 0 : code, none);
            if (rc < 0)
                return resource_fail(p, rc);
        }
        p->state = DX_CLOSED;
        set_close_event(p, ev, code, reason, true);
        return 0;
    }
    }
}

/* A header is complete in p->frame; @at is where its payload starts. */
static int frame_begin(dx_proto *p, uint8_t *at, dx_event *ev) {
    const dx_frame_header *f = &p->frame;
    p->left = f->payload_len;
    p->key_pos = 0;
    p->in_payload = true;
    if (dx_opcode_is_control(f->opcode)) {
        p->ctrl_len = 0;
        if (p->left == 0) {
            p->in_payload = false;
            return control_end(p, ev);
        }
        return 0;
    }
    /* Limits before any byte of the payload is looked at. max_frame applies to
     * data frames; control frames are bounded by 125 bytes anyway. */
    if (f->payload_len > p->limits.max_frame)
        return fail(p, DX_CLOSE_MESSAGE_TOO_BIG, "frame too big", ev);
    uint64_t before = f->opcode == DX_OP_CONT ? p->msg_len : 0;
    if (f->payload_len > p->limits.max_message - before)
        return fail(p, DX_CLOSE_MESSAGE_TOO_BIG, "message too big", ev);
    if (f->opcode != DX_OP_CONT) {
        p->msg_open = true;
        p->msg_first = true;
        p->msg_opcode = f->opcode;
        p->msg_rsv = f->rsv;
        /* With RSV bits an extension transformed the payload (e.g. compressed
         * it); the text can only be checked after it is undone, above us. */
        p->msg_check_utf8 = f->opcode == DX_OP_TEXT && f->rsv == 0;
        p->msg_len = 0;
        memset(&p->utf8, 0, sizeof(p->utf8));
    }
    p->msg_len += f->payload_len;
    if (p->left == 0)
        return data_chunk(p, at, 0, ev);
    return 0;
}

static int recv_header(dx_proto *p, uint8_t *buf, size_t len, size_t *off, dx_event *ev) {
    size_t avail = len - *off;
    size_t have = p->hdr_have;
    const uint8_t *h;
    size_t hlen;
    if (have == 0) { /* parse straight from the caller's buffer */
        h = buf + *off;
        hlen = avail;
    } else { /* continue a header split across reads */
        size_t take = DX_MAX_HEADER_LEN - have < avail ? DX_MAX_HEADER_LEN - have : avail;
        memcpy(p->hdr + have, buf + *off, take);
        h = p->hdr;
        hlen = have + take;
    }
    if (!p->hdr_checked && hlen >= 2) {
        const char *why = NULL;
        uint16_t code = check_start(p, h[0], h[1], &why);
        if (code)
            return fail(p, code, why, ev);
        p->hdr_checked = true;
    }
    size_t hdr_len;
    int rc = dx_frame_header_decode(h, hlen, &p->frame, &hdr_len);
    if (rc == DX_ELIMIT)
        return fail(p, DX_CLOSE_PROTOCOL_ERROR, "64-bit length with the top bit set", ev);
    if (rc == DX_EINCOMPLETE) {
        /* All of it belongs to the header (it is shorter than the header). */
        if (have == 0)
            memcpy(p->hdr, h, hlen);
        p->hdr_have = (uint8_t)hlen; /* < DX_MAX_HEADER_LEN: the header is incomplete */
        *off = len;
        return 0;
    }
    *off += hdr_len - have;
    p->hdr_have = 0;
    p->hdr_checked = false;
    return frame_begin(p, buf + *off, ev);
}

static int recv_payload(dx_proto *p, uint8_t *buf, size_t len, size_t *off, dx_event *ev) {
    size_t avail = len - *off;
    size_t n = p->left < avail ? (size_t)p->left : avail;
    uint8_t *chunk = buf + *off;
    *off += n;
    if (!dx_opcode_is_control(p->frame.opcode))
        return data_chunk(p, chunk, n, ev);
    /* Control payloads are gathered (<= 125 bytes), unmasked on the way. */
    if (p->frame.masked)
        dx_mask_copy(p->ctrl + p->ctrl_len, chunk, n, p->frame.mask, p->ctrl_len);
    else
        memcpy(p->ctrl + p->ctrl_len, chunk, n);
    p->ctrl_len = (uint8_t)(p->ctrl_len + n); /* n <= left, so the sum is <= 125 */
    p->left -= n;
    if (p->left > 0)
        return 0;
    p->in_payload = false;
    return control_end(p, ev);
}

int dx_proto_recv(dx_proto *p, uint8_t *buf, size_t len, size_t *used, dx_event *ev) {
    if (!p || !used || !ev || (!buf && len > 0))
        return DX_EINVAL;
    ev->type = DX_EV_NONE;
    *used = 0;
    if (p->state == DX_CLOSED) {
        *used = len; /* after the close, everything is ignored */
        return 0;
    }
    size_t off = 0;
    int rc = 0;
    while (rc == 0 && off < len && ev->type == DX_EV_NONE && p->state != DX_CLOSED) {
        if (p->in_payload)
            rc = recv_payload(p, buf, len, &off, ev);
        else
            rc = recv_header(p, buf, len, &off, ev);
    }
    *used = off;
    return rc;
}

int dx_proto_recv_eof(dx_proto *p, dx_event *ev) {
    if (!p || !ev)
        return DX_EINVAL;
    ev->type = DX_EV_NONE;
    if (p->close_reported)
        return 0;
    p->state = DX_CLOSED;
    dx_span none = {NULL, 0};
    set_close_event(p, ev, DX_CLOSE_ABNORMAL, none, false);
    return 0;
}

/* ---- send ----------------------------------------------------------------- */

/* The checks dx_proto_send and dx_proto_send_header share. */
static int check_send(const dx_proto *p, dx_opcode op) {
    if (op != DX_OP_CONT && op != DX_OP_TEXT && op != DX_OP_BINARY)
        return DX_EINVAL;
    if (p->state != DX_OPEN)
        return DX_ESTATE; /* §5.5.1: no data frames after a close */
    if (op == DX_OP_CONT ? !p->send_msg_open : p->send_msg_open)
        return DX_ESTATE; /* §5.4: fragments of one message, in order */
    return 0;
}

int dx_proto_send(dx_proto *p, dx_opcode op, dx_span payload, bool fin) {
    return dx_proto_send_rsv(p, op, payload, fin, 0);
}

int dx_proto_send_rsv(dx_proto *p, dx_opcode op, dx_span payload, bool fin, uint8_t rsv) {
    if (!p || (!payload.ptr && payload.len))
        return DX_EINVAL;
    int rc = check_send(p, op);
    if (rc < 0)
        return rc;
    /* §5.2: only what an extension negotiated; RFC 7692 §6: on a message's first frame */
    if ((rsv & ~p->rsv_allowed) || (rsv && op == DX_OP_CONT))
        return DX_EINVAL;
    if (!fits_send_queue(p, payload.len))
        return DX_ELIMIT;
    rc = queue_frame(p, op, fin, rsv, payload);
    if (rc < 0)
        return rc;
    p->send_msg_open = !fin;
    return 0;
}

int dx_proto_send_text(dx_proto *p, dx_span text) {
    return dx_proto_send(p, DX_OP_TEXT, text, true);
}

int dx_proto_send_binary(dx_proto *p, dx_span data) {
    return dx_proto_send(p, DX_OP_BINARY, data, true);
}

int dx_proto_send_header(dx_proto *p, dx_opcode op, size_t len, bool fin,
                         uint8_t hdr[DX_MAX_HEADER_LEN], size_t *hdr_len, uint8_t mask_key[4]) {
    if (!p || !hdr || !hdr_len || (p->side == DX_SIDE_CLIENT && !mask_key))
        return DX_EINVAL;
    if ((uint64_t)len >= ((uint64_t)1 << 63))
        return DX_EINVAL;
    int rc = check_send(p, op);
    if (rc < 0)
        return rc;
    dx_frame_header h = {.fin = fin, .opcode = (uint8_t)op, .payload_len = len};
    if (p->side == DX_SIDE_CLIENT) {
        h.masked = true;
        rc = new_mask_key(p, h.mask);
        if (rc < 0)
            return rc;
        memcpy(mask_key, h.mask, 4);
    }
    *hdr_len = dx_frame_header_encode(hdr, &h);
    p->send_msg_open = !fin;
    return 0;
}

int dx_proto_send_shared(dx_proto *p, dx_shared *frame, size_t off, size_t len) {
    if (!p || !frame)
        return DX_EINVAL;
    dx_span f = dx_shared_data(frame);
    if (off > f.len || len > f.len - off)
        return DX_EINVAL;
    dx_frame_header h;
    size_t hl;
    /* one whole, unmasked data frame, exactly: a client masks each frame with a key of
     * its own, so only a server can send the same bytes to many peers */
    if (p->side != DX_SIDE_SERVER || dx_frame_header_decode(f.ptr + off, len, &h, &hl) != 0 ||
        h.masked || !h.fin || h.payload_len != len - hl)
        return DX_EINVAL;
    int rc = check_send(p, (dx_opcode)h.opcode);
    if (rc < 0)
        return h.opcode == DX_OP_CONT ? DX_EINVAL : rc;
    if (h.rsv & ~p->rsv_allowed)
        return DX_EINVAL;
    if (!fits_send_queue(p, len - hl))
        return DX_ELIMIT;
    return dx_outq_append_shared(p->out, frame, off, len);
}

static int send_control(dx_proto *p, dx_opcode op, dx_span payload) {
    if (!p || (!payload.ptr && payload.len) || payload.len > DX_MAX_CONTROL_PAYLOAD)
        return DX_EINVAL;
    if (p->state != DX_OPEN)
        return DX_ESTATE;
    if (!fits_send_queue(p, payload.len))
        return DX_ELIMIT;
    return queue_frame(p, op, true, 0, payload);
}

int dx_proto_ping(dx_proto *p, dx_span payload) {
    return send_control(p, DX_OP_PING, payload);
}

int dx_proto_pong(dx_proto *p, dx_span payload) {
    return send_control(p, DX_OP_PONG, payload);
}

int dx_proto_close(dx_proto *p, uint16_t code, dx_span reason) {
    if (!p || (!reason.ptr && reason.len))
        return DX_EINVAL;
    if (code == 0 ? reason.len != 0 : !dx_close_code_is_valid(code))
        return DX_EINVAL;
    if (reason.len > DX_MAX_CLOSE_REASON || !dx_utf8_valid(reason.ptr, reason.len))
        return DX_EINVAL;
    if (p->state != DX_OPEN)
        return DX_ESTATE;
    int rc = queue_close(p, code, reason);
    if (rc < 0)
        return rc;
    p->close_sent = true;
    p->state = DX_CLOSING;
    return 0;
}

/* ---- lifetime and queries ------------------------------------------------- */

int dx_proto_create(dx_proto **out, const dx_proto_config *cfg) {
    static const dx_proto_config server_defaults = {.side = DX_SIDE_SERVER};
    if (!out)
        return DX_EINVAL;
    if (!cfg)
        cfg = &server_defaults;
    if (cfg->side != DX_SIDE_SERVER && cfg->side != DX_SIDE_CLIENT)
        return DX_EINVAL;
    if (cfg->rsv_allowed & ~(DX_RSV1 | DX_RSV2 | DX_RSV3))
        return DX_EINVAL;
    const dx_allocator *a = dx__allocator_or_default(cfg->allocator);
    dx_proto *p = dx__calloc(a, sizeof(*p));
    if (!p)
        return DX_ENOMEM;
    if (cfg->output) {
        p->out = cfg->output;
    } else {
        dx_outq_init(&p->own_out, a);
        p->out = &p->own_out;
        if (!dx_outq_reserve(p->out, OUT_INITIAL)) /* the automatic replies' room */
            goto err_free_proto;
    }
    p->alloc = a;
    p->random = cfg->random ? cfg->random : dx_random_default();
    p->side = cfg->side;
    p->state = DX_OPEN;
    p->rsv_allowed = cfg->rsv_allowed;
    p->limits.max_frame = cfg->limits.max_frame ? cfg->limits.max_frame : DX_DEFAULT_MAX_FRAME;
    p->limits.max_message =
        cfg->limits.max_message ? cfg->limits.max_message : DX_DEFAULT_MAX_MESSAGE;
    p->limits.max_send_queue =
        cfg->limits.max_send_queue ? cfg->limits.max_send_queue : DX_DEFAULT_MAX_SEND_QUEUE;
    *out = p;
    return 0;
err_free_proto:
    dx_outq_deinit(&p->own_out);
    dx__free(a, p, sizeof(*p));
    return DX_ENOMEM;
}

void dx_proto_destroy(dx_proto *p) {
    if (!p)
        return;
    dx_outq_deinit(&p->own_out); /* the caller's queue stays the caller's */
    dx__free(p->alloc, p, sizeof(*p));
}

dx_span dx_proto_output(const dx_proto *p) {
    return dx_outq_front(p->out);
}

size_t dx_proto_output_spans(const dx_proto *p, dx_span *v, size_t max) {
    return dx_outq_spans(p->out, v, max);
}

size_t dx_proto_output_capacity(const dx_proto *p) {
    return p ? dx_outq_memory(p->out) : 0;
}

void dx_proto_trim(dx_proto *p) {
    if (p)
        dx_outq_trim(p->out);
}

void dx_proto_output_consume(dx_proto *p, size_t n) {
    dx_outq_consume(p->out, n);
}

bool dx_proto_wants_write(const dx_proto *p) {
    return out_pending(p) > 0;
}

dx_ready_state dx_proto_get_state(const dx_proto *p) {
    return p->state;
}

bool dx_proto_is_idle(const dx_proto *p) {
    return p->state == DX_OPEN && out_pending(p) == 0 && !p->in_payload && p->hdr_have == 0 &&
           !p->msg_open && !p->send_msg_open;
}

bool dx_proto_is_done(const dx_proto *p) {
    return p->state == DX_CLOSED && out_pending(p) == 0;
}

dx_side dx_proto_side(const dx_proto *p) {
    return p->side;
}

dx_span dx_proto_close_reason(const dx_proto *p) {
    return p ? (dx_span){p->close_reason, p->close_reason_len} : (dx_span){0};
}
