/*
 * What deflate_negotiation.c and deflate.c (the codec) share: the check of a
 * dx_deflate_config, made by every call that takes one. Not installed.
 */
#ifndef DX_PROTO_DEFLATE_INTERNAL_H
#define DX_PROTO_DEFLATE_INTERNAL_H

#include "duplex/deflate.h"

static inline bool dx__deflate_bits_ok(uint8_t b) {
    return b == 0 || (b >= 8 && b <= 15);
}

/* 0, or DX_EINVAL when @cfg holds window bits outside 8..15 (0 aside) or a
 * mem_level or level above 9. */
static inline int dx__deflate_config_check(const dx_deflate_config *cfg) {
    if (!dx__deflate_bits_ok(cfg->server_max_window_bits) ||
        !dx__deflate_bits_ok(cfg->client_max_window_bits) || cfg->mem_level > 9 || cfg->level > 9)
        return DX_EINVAL;
    return 0;
}

#endif /* DX_PROTO_DEFLATE_INTERNAL_H */
