/*
 * Fuzz target for the server side of the opening handshake: scan (chunked), parse,
 * dx_handshake_check_request, then dx_handshake_write_accept or
 * dx_handshake_write_refusal into a buffer. Input: one control byte, then the
 * request head (see hs_fuzz.h); the control byte's low nibble also picks which
 * offered subprotocol the server chooses.
 *
 * Invariants (any violation aborts):
 *   - every failure, from the scanner, the parser or the check, has a refusal
 *     status (400, 405, 426 or 431), and the refusal written for it (at exactly the
 *     size reported by a first, too-small call) re-parses with that status;
 *   - a successful check has a 24-character key that decodes to 16 bytes, a path
 *     starting with '/' at the start of the target, a query that is the rest of
 *     the target after '?', distinct token subprotocols and token extension names;
 *   - the 101 written for it (at exactly the size reported) re-parses as status
 *     101 with the accept of the key, and a client holding that key and offering
 *     what the request offered accepts it, with the protocol the server chose.
 */
#include "hs_fuzz.h"

#include "proto/hash.h"

/* Write the refusal for @err with a first call that is too small, then with
 * exactly the size it reported, and parse it back. */
static void refuse(int err) {
    int status = dx_handshake_refusal_status(err);
    fz_require(status == 400 || status == 405 || status == 426 || status == 431);
    size_t need = 0;
    uint8_t tiny[8];
    fz_require(dx_handshake_write_refusal(err, tiny, sizeof tiny, &need) == DX_ENOSPACE);
    uint8_t *out = malloc(need);
    fz_require(out != NULL);
    size_t len = 0;
    fz_require(dx_handshake_write_refusal(err, out, need, &len) == 0 && len == need);
    dx_http_scan s = {0};
    size_t head_len;
    fz_require(dx_http_scan_feed(&s, out, len, &head_len) == 0);
    dx_http_header h[16];
    dx_http_response resp;
    fz_require(dx_http_parse_response(out, head_len, &resp, h, 16) == 0);
    fz_require(resp.status == status);
    if (status == 426) {
        const dx_http_header *v = dx_http_header_find(h, resp.num_headers, "Sec-WebSocket-Version");
        fz_require(v && dx_span_eq(v->value, dx_span_cstr("13")));
    }
    free(out);
}

static char *span_dup(dx_span s) {
    char *c = malloc(s.len + 1);
    fz_require(c != NULL);
    if (s.len)
        memcpy(c, s.ptr, s.len);
    c[s.len] = '\0';
    return c;
}

static void check_accepted(const dx_ws_request *ws, uint8_t ctl) {
    const dx_http_request *req = ws->http;
    /* the key */
    fz_require(ws->key.len == DX_KEY_LEN);
    uint8_t raw[18];
    size_t n;
    fz_require(dx__base64_decode(ws->key.ptr, ws->key.len, raw, sizeof raw, &n) == 0 && n == 16);
    /* the resource */
    fz_require(ws->path.ptr == req->target.ptr && ws->path.len >= 1 && ws->path.ptr[0] == '/');
    fz_require(memchr(ws->path.ptr, '?', ws->path.len) == NULL);
    if (ws->path.len < req->target.len)
        fz_require(ws->path.len + 1 + ws->query.len == req->target.len &&
                   ws->query.ptr == ws->path.ptr + ws->path.len + 1);
    else
        fz_require(ws->query.len == 0);
    fz_require(ws->host.len > 0);
    /* the offers */
    fz_require(ws->num_protocols <= DX_MAX_PROTOCOLS);
    for (size_t i = 0; i < ws->num_protocols; i++) {
        fz_require(dx__span_is_token(ws->protocols[i]));
        for (size_t j = 0; j < i; j++)
            fz_require(!dx_span_eq(ws->protocols[i], ws->protocols[j]));
    }
    fz_require(ws->num_extensions <= DX_MAX_EXTENSIONS);
    for (size_t i = 0; i < ws->num_extensions; i++) {
        fz_require(dx__span_is_token(ws->extensions[i].name));
        for (size_t k = 0; k < ws->extensions[i].num_params; k++)
            fz_require(dx__span_is_token(ws->extensions[i].params[k].name));
    }

    /* the answer: choose a protocol and the first extension, if offered */
    dx_accept_options ao;
    memset(&ao, 0, sizeof ao);
    if (ws->num_protocols > 0)
        ao.protocol = ws->protocols[(ctl & 15) % ws->num_protocols];
    if (ws->num_extensions > 0)
        ao.extensions = ws->extensions[0].name;
    size_t need = 0;
    fz_require(dx_handshake_write_accept(ws, &ao, NULL, 0, &need) == DX_ENOSPACE);
    uint8_t *out = malloc(need);
    fz_require(out != NULL);
    size_t len = 0;
    fz_require(dx_handshake_write_accept(ws, &ao, out, need, &len) == 0 && len == need);

    dx_http_scan s = {.max_head = len + 1};
    size_t head_len;
    fz_require(dx_http_scan_feed(&s, out, len, &head_len) == 0 && head_len == len);
    dx_http_header h[16];
    dx_http_response resp;
    fz_require(dx_http_parse_response(out, len, &resp, h, 16) == 0);
    fz_require(resp.status == 101);
    char accept[DX_ACCEPT_LEN];
    dx_handshake_accept_key(ws->key, accept);
    const dx_http_header *a = dx_http_header_find(h, resp.num_headers, "Sec-WebSocket-Accept");
    fz_require(a && a->value.len == DX_ACCEPT_LEN && memcmp(a->value.ptr, accept, 28) == 0);

    /* the client that sent this request accepts the answer */
    dx_client_handshake hs;
    memcpy(hs.key, ws->key.ptr, DX_KEY_LEN);
    hs.key[DX_KEY_LEN] = '\0';
    memcpy(hs.accept, accept, DX_ACCEPT_LEN);
    hs.accept[DX_ACCEPT_LEN] = '\0';
    char *protos[DX_MAX_PROTOCOLS];
    for (size_t i = 0; i < ws->num_protocols; i++)
        protos[i] = span_dup(ws->protocols[i]);
    char *ext = ws->num_extensions > 0 ? span_dup(ws->extensions[0].name) : NULL;
    dx_request_options ro;
    memset(&ro, 0, sizeof ro);
    ro.host = "h";
    ro.protocols = (const char *const *)protos;
    ro.num_protocols = ws->num_protocols;
    ro.extensions = ext;
    dx_ws_response wr;
    fz_require(dx_handshake_check_response(&hs, &ro, &resp, &wr) == 0);
    fz_require(dx_span_eq(wr.protocol, ao.protocol));
    fz_require(dx_span_eq(wr.extensions, ao.extensions));
    for (size_t i = 0; i < ws->num_protocols; i++)
        free(protos[i]);
    free(ext);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1)
        return 0;
    uint8_t ctl = data[0];
    data++;
    size--;

    fz_chunker ch = fz_chunker_init((uint8_t)(ctl >> 4), size);
    size_t head_len = 0;
    int rc = fz_scan_chunked(&ch, data, size, 0, &head_len);
    if (rc == DX_EINCOMPLETE)
        return 0;
    if (rc < 0) {
        refuse(rc);
        return 0;
    }
    uint8_t *head = fz_copy(data, head_len);
    dx_http_header h[DX_DEFAULT_MAX_HEADERS];
    dx_http_request req;
    rc = dx_http_parse_request(head, head_len, &req, h, DX_DEFAULT_MAX_HEADERS);
    if (rc == 0) {
        dx_ws_request ws;
        rc = dx_handshake_check_request(&req, &ws);
        if (rc == 0)
            check_accepted(&ws, ctl);
    }
    if (rc < 0)
        refuse(rc);
    free(head);
    return 0;
}
