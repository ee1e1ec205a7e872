/*
 * Fuzz target for the client side of the opening handshake: a fixed client (the
 * RFC 6455 §1.3 key, offering "chat" and "superchat" and two extensions) checks a
 * response head built from the fuzz bytes. Input: one control byte, then the
 * response head (see hs_fuzz.h); bit 3 of the control byte makes the client
 * offer nothing (opts NULL), bit 2 takes the RFC's rule on subprotocols
 * (protocol_optional) instead of the browser's.
 *
 * Invariants (any violation aborts):
 *   - the check returns 0 or one of its documented DX_EHS_* codes;
 *   - on success the status is 101, there is exactly one Sec-WebSocket-Accept and
 *     it is the §1.3 accept, the chosen protocol is empty or one we offered, and
 *     the extensions answer is empty or parses with only names we offered;
 *   - with the browser's rule, a success after an offer names a subprotocol, and
 *     DX_EHS_NO_PROTOCOL comes only for an answer without Sec-WebSocket-Protocol
 *     after an offer.
 */
#include "hs_fuzz.h"

static const char *const offered_protocols[] = {"chat", "superchat"};
static const char offered_extensions[] =
    "permessage-deflate; client_max_window_bits, x-webkit-deflate-frame";

static int sample_nonce(uint8_t *buf, size_t len, void *ctx) {
    (void)ctx;
    fz_require(len == 16);
    memcpy(buf, "the sample nonce", 16);
    return 0;
}

static bool is_client_error(int rc) {
    return rc == DX_EHS_STATUS || rc == DX_EHS_RESP_NO_UPGRADE || rc == DX_EHS_RESP_NO_CONNECTION ||
           rc == DX_EHS_NO_ACCEPT || rc == DX_EHS_BAD_ACCEPT || rc == DX_EHS_PROTOCOL_NOT_OFFERED ||
           rc == DX_EHS_EXTENSION_NOT_OFFERED || rc == DX_EHS_NO_PROTOCOL;
}

static void check_success(const dx_http_response *resp, const dx_request_options *opts,
                          const dx_ws_response *wr) {
    fz_require(resp->status == 101);
    fz_require(dx_http_header_count(resp->headers, resp->num_headers, "Sec-WebSocket-Accept") == 1);
    const dx_http_header *a =
        dx_http_header_find(resp->headers, resp->num_headers, "Sec-WebSocket-Accept");
    fz_require(dx_span_eq(a->value, dx_span_cstr("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")));
    if (opts && opts->num_protocols && !opts->protocol_optional)
        fz_require(wr->protocol.len > 0); /* the browser's rule */
    if (wr->protocol.len > 0) {
        fz_require(opts != NULL);
        bool found = false;
        for (size_t i = 0; i < opts->num_protocols; i++)
            found = found || dx_span_eq(wr->protocol, dx_span_cstr(opts->protocols[i]));
        fz_require(found);
    }
    if (wr->extensions.len > 0) {
        fz_require(opts != NULL);
        dx_ext got[DX_MAX_EXTENSIONS];
        dx_ext_param params[DX_MAX_EXT_PARAMS];
        size_t ne = 0, np = 0;
        fz_require(dx_ext_parse_value(wr->extensions, got, DX_MAX_EXTENSIONS, &ne, params,
                                      DX_MAX_EXT_PARAMS, &np) == 0);
        for (size_t i = 0; i < ne; i++)
            fz_require(dx_span_eq_nocase(got[i].name, dx_span_cstr("permessage-deflate")) ||
                       dx_span_eq_nocase(got[i].name, dx_span_cstr("x-webkit-deflate-frame")));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1)
        return 0;
    uint8_t ctl = data[0];
    data++;
    size--;

    static const dx_random nonce = {sample_nonce, NULL};
    dx_client_handshake hs;
    fz_require(dx_client_handshake_init(&hs, &nonce) == 0);
    dx_request_options o;
    memset(&o, 0, sizeof o);
    o.host = "server.example.com";
    o.protocols = offered_protocols;
    o.num_protocols = 2;
    o.extensions = offered_extensions;
    o.protocol_optional = (ctl & 4) != 0;
    const dx_request_options *opts = (ctl & 8) ? NULL : &o;

    fz_chunker ch = fz_chunker_init((uint8_t)(ctl >> 4), size);
    size_t head_len = 0;
    int rc = fz_scan_chunked(&ch, data, size, 0, &head_len);
    if (rc != 0)
        return 0;
    uint8_t *head = fz_copy(data, head_len);
    dx_http_header h[DX_DEFAULT_MAX_HEADERS];
    dx_http_response resp;
    if (dx_http_parse_response(head, head_len, &resp, h, DX_DEFAULT_MAX_HEADERS) == 0) {
        dx_ws_response wr;
        rc = dx_handshake_check_response(&hs, opts, &resp, &wr);
        fz_require(rc == 0 || is_client_error(rc));
        if (rc == 0)
            check_success(&resp, opts, &wr);
        if (rc == DX_EHS_NO_PROTOCOL)
            fz_require(
                opts && !opts->protocol_optional &&
                !dx_http_header_find(resp.headers, resp.num_headers, "Sec-WebSocket-Protocol"));
    }
    free(head);
    return 0;
}
