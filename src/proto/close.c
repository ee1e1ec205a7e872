/*
 * Close frame payloads (RFC 6455 §5.5.1, §7.4): which status codes may travel on
 * the wire, and parsing a received payload into code and reason.
 */
#include "base/internal.h"
#include "duplex/frame.h"
#include "duplex/utf8.h"

bool dx_close_code_is_valid(unsigned code) {
    /* §7.4.1 defines 1000-1011 but reserves 1004 and forbids 1005 and 1006 on the
     * wire. 1012 (service restart), 1013 (try again later) and 1014 (bad gateway)
     * were registered with IANA since (§11.7) and real peers send them; 1015 is
     * for reports only, like 1005/1006; 1016-2999 are unassigned (§7.4.2);
     * 3000-3999 are registered for libraries and applications, 4000-4999 are
     * private use. */
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

int dx_close_payload_parse(dx_span payload, uint16_t *code, dx_span *reason) {
    reason->ptr = NULL;
    reason->len = 0;
    if (payload.len == 0) {
        *code = DX_CLOSE_NO_STATUS;
        return 0;
    }
    /* A 1-byte body cannot hold the 2-byte code; over 125 is not a control frame. */
    if (payload.len == 1 || payload.len > DX_MAX_CONTROL_PAYLOAD) {
        *code = DX_CLOSE_PROTOCOL_ERROR;
        return DX_EINVAL;
    }
    uint16_t c = dx__load_be16(payload.ptr);
    if (!dx_close_code_is_valid(c)) {
        *code = DX_CLOSE_PROTOCOL_ERROR;
        return DX_EINVAL;
    }
    /* §5.5.1: the body after the code is UTF-8 (checked per §8.1 like text). */
    if (!dx_utf8_valid(payload.ptr + 2, payload.len - 2)) {
        *code = DX_CLOSE_INVALID_PAYLOAD;
        return DX_EINVAL;
    }
    *code = c;
    reason->ptr = payload.ptr + 2;
    reason->len = payload.len - 2;
    return 0;
}
