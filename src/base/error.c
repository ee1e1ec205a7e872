/* Error messages and names, generated from the one DX_ERRORS table. */
#include "duplex/base.h"

#include <errno.h>
#include <string.h>

const char *dx_strerror(int err) {
    if (err == 0)
        return "success";
    switch (err) {
#define DX_X_TEXT(name, code, text)                                                                \
    case code:                                                                                     \
        return text;
        DX_ERRORS(DX_X_TEXT)
#undef DX_X_TEXT
    default:
        break;
    }
    /* strerror() is not thread-safe in general; glibc's returns a static table entry
     * for every known errno, which is the only case we forward. */
    if (err < 0 && err > -1000)
        return strerror(-err);
    return "unknown error";
}

const char *dx_err_name(int err) {
    if (err == 0)
        return "OK";
    switch (err) {
#define DX_X_NAME(name, code, text)                                                                \
    case code:                                                                                     \
        return "DX_E" #name;
        DX_ERRORS(DX_X_NAME)
#undef DX_X_NAME
    default:
        break;
    }
    if (err < 0 && err > -1000) {
        const char *n = strerrorname_np(-err);
        if (n)
            return n;
    }
    return "UNKNOWN";
}
