/*
 * Fuzz target for request heads: dx_http_scan_feed + dx_http_parse_request.
 * Input: one control byte, then the head (see hs_fuzz.h). The control byte also
 * picks the header array size (its low nibble; 0: DX_DEFAULT_MAX_HEADERS).
 *
 * Invariants (any violation aborts):
 *   - chunked scanning agrees with one whole-buffer scan (same code, same length);
 *   - the parser agrees with the scanner: it never reports a byte error or an
 *     incomplete head for a head the scanner completed, and never succeeds on an
 *     input the scanner rejected or found incomplete;
 *   - parsing the exact head or the head plus trailing bytes gives the same code;
 *   - a parsed request has a token method, a printable target, HTTP/1.x and
 *     headers that are tokens with trimmed, control-free values inside the buffer.
 */
#include "hs_fuzz.h"

static void check_request(const dx_http_request *r, const uint8_t *buf, size_t len,
                          size_t max_headers) {
    fz_require(dx__span_is_token(r->method));
    fz_require(r->method.ptr == buf);
    fz_require(r->target.len > 0);
    for (size_t i = 0; i < r->target.len; i++)
        fz_require(r->target.ptr[i] >= 0x21 && r->target.ptr[i] <= 0x7E);
    fz_require(r->minor_version >= 0 && r->minor_version <= 9);
    fz_require(r->num_headers <= max_headers);
    for (size_t i = 0; i < r->num_headers; i++)
        fz_check_header(&r->headers[i], buf, len);
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
    dx_http_request req;
    int rc_all = dx_http_parse_request(all, size, &req, h, max_headers);
    fz_require(rc_all == 0 || rc_all == DX_EINCOMPLETE || fz_is_http_error(rc_all));
    if (rc_all == 0)
        fz_require(rc_whole == 0);
    if (rc_whole != 0)
        fz_require(rc_all != 0);

    if (rc_whole == 0) {
        fz_require(whole_len >= 4 && memcmp(data + whole_len - 4, "\r\n\r\n", 4) == 0);
        uint8_t *head = fz_copy(data, whole_len);
        int rc = dx_http_parse_request(head, whole_len, &req, h, max_headers);
        fz_require(rc == rc_all);
        fz_require(rc != DX_EINCOMPLETE && !fz_is_byte_error(rc));
        if (rc == 0) {
            check_request(&req, head, whole_len, max_headers);
            /* lookups over what was parsed must not misbehave */
            (void)dx_http_header_has_token(h, req.num_headers, "Connection", "upgrade");
            (void)dx_http_header_count(h, req.num_headers, "Host");
            for (size_t i = 0; i < req.num_headers; i++) {
                size_t pos = 0;
                dx_span e;
                while (dx_http_list_next(h[i].value, &pos, &e))
                    fz_require(e.len > 0 && !dx__is_ows(e.ptr[0]) &&
                               !dx__is_ows(e.ptr[e.len - 1]) && memchr(e.ptr, ',', e.len) == 0);
            }
        }
        free(head);
    }
    free(all);
    return 0;
}
