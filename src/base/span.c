/* Span helpers. */
#include "base/internal.h"

dx_span dx_span_cstr(const char *s) {
    dx_span sp = {(const uint8_t *)s, s ? strlen(s) : 0};
    return sp;
}

bool dx_span_eq(dx_span a, dx_span b) {
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

bool dx_span_eq_nocase(dx_span a, dx_span b) {
    if (a.len != b.len)
        return false;
    for (size_t i = 0; i < a.len; i++)
        if (dx__ascii_lower(a.ptr[i]) != dx__ascii_lower(b.ptr[i]))
            return false;
    return true;
}
