/*
 * Fuzz target for response heads: dx_http_scan_feed + dx_http_parse_response.
 * Input: one control byte, then the head (see hs_fuzz.h); the control byte's low
 * nibble picks the header array size (0: DX_DEFAULT_MAX_HEADERS).
 *
 * Invariants: those of fuzz_http_request (chunked scan == whole scan, parser and
 * scanner agree, trailing bytes change nothing), and a parsed response has
 * HTTP/1.x, a status in 100..999 written as three digits, a reason free of
 * controls other than HTAB, and well-formed headers. A parsed response written
 * back with dx_http_write_response re-parses to the same status and headers.
 */
#include "hs_fuzz.h"

static void check_response(const dx_http_response *r, const uint8_t *buf, size_t len,
                           size_t max_headers) {
    fz_require(memcmp(buf, "HTTP/1.", 7) == 0);
    fz_require(r->minor_version == buf[7] - '0');
    fz_require(r->status >= 100 && r->status <= 999);
    fz_require(r->status == (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0'));
    for (size_t i = 0; i < r->reason.len; i++) {
        uint8_t c = r->reason.ptr[i];
        fz_require(c == '\t' || (c >= 0x20 && c != 0x7F));
    }
    fz_require(r->num_headers <= max_headers);
    for (size_t i = 0; i < r->num_headers; i++)
        fz_check_header(&r->headers[i], buf, len);
}

/* Write @r back out (as a server would relay it) and parse the result again. */
static void rewrite(const dx_http_response *r) {
    size_t need = 0;
    int status = r->status;
    dx_span body = {NULL, 0};
    int rc = dx_http_write_response(NULL, 0, &need, status, r->headers, r->num_headers, body);
    fz_require(rc == DX_ENOSPACE || (rc == 0 && need == 0));
    uint8_t *out = malloc(need);
    fz_require(out != NULL);
    size_t len = 0;
    fz_require(dx_http_write_response(out, need, &len, status, r->headers, r->num_headers, body) ==
               0);
    fz_require(len == need);
    dx_http_header h[DX_DEFAULT_MAX_HEADERS + 2];
    dx_http_response back;
    dx_http_scan s = {.max_head = len + 1};
    size_t head_len;
    fz_require(dx_http_scan_feed(&s, out, len, &head_len) == 0);
    fz_require(dx_http_parse_response(out, head_len, &back, h, DX_DEFAULT_MAX_HEADERS + 2) == 0);
    fz_require(back.status == status && back.minor_version == 1);
    fz_require(back.num_headers >= r->num_headers);
    for (size_t i = 0; i < r->num_headers; i++) {
        fz_require(dx_span_eq(back.headers[i].name, r->headers[i].name));
        fz_require(dx_span_eq(back.headers[i].value, r->headers[i].value));
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1)
        return 0;
    uint8_t ctl = data[0];
    data++;
    size--;
    size_t max_headers = (ctl & 15) ? (size_t)(ctl & 15) : DX_DEFAULT_MAX_HEADERS;

    /* The whole input and the same bytes in chunks must scan alike. */
    uint8_t *all = fz_copy(data, size);
    size_t whole_len;
    int rc_whole = fz_scan_whole_and_chunked(all, data, size, (uint8_t)(ctl >> 4), &whole_len);

    dx_http_header h[DX_DEFAULT_MAX_HEADERS];
    dx_http_response resp;
    int rc_all = dx_http_parse_response(all, size, &resp, h, max_headers);
    fz_require(rc_all == 0 || rc_all == DX_EINCOMPLETE || fz_is_http_error(rc_all));
    if (rc_all == 0)
        fz_require(rc_whole == 0);
    if (rc_whole != 0)
        fz_require(rc_all != 0);

    if (rc_whole == 0) {
        uint8_t *head = fz_copy(data, whole_len);
        int rc = dx_http_parse_response(head, whole_len, &resp, h, max_headers);
        fz_require(rc == rc_all);
        fz_require(rc != DX_EINCOMPLETE && !fz_is_byte_error(rc));
        if (rc == 0) {
            check_response(&resp, head, whole_len, max_headers);
            rewrite(&resp);
        }
        free(head);
    }
    free(all);
    return 0;
}
