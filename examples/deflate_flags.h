/*
 * The --deflate-* flags that echo-server and echo-client share: they fill a
 * dx_deflate_config (include/duplex/deflate.h says what each field means on each
 * side) and the compress_min threshold. Included by both programs.
 */
#ifndef DX_EXAMPLES_DEFLATE_FLAGS_H
#define DX_EXAMPLES_DEFLATE_FLAGS_H

#include <duplex/duplex.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The value of a --deflate-* flag: a plain decimal in @lo..@hi, or exit 2 saying why. */
static unsigned long deflate_value(const char *prog, const char *flag, const char *s,
                                   unsigned long lo, unsigned long hi, const char *what) {
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || errno || *end || v < lo || v > hi) {
        fprintf(stderr, "%s: %s '%s': expected %s\n", prog, flag, s, what);
        exit(2);
    }
    return v;
}

/* One --deflate-* flag @a (with its value @v, NULL when absent) into @d and @min.
 * Returns 0 when @a is not one, 1 when it took no value, 2 when it took @v, and -1
 * for a bad flag: an unknown --deflate-* name or a missing value (a usage error). */
static int deflate_flag(const char *prog, const char *a, const char *v, dx_deflate_config *d,
                        size_t *min) {
    static const char bits[] = "a window size in bits, 8 to 15";
    static const char level[] = "a number from 1 to 9";
    if (strcmp(a, "--deflate-server-no-context-takeover") == 0) {
        d->server_no_context_takeover = true;
        return 1;
    }
    if (strcmp(a, "--deflate-client-no-context-takeover") == 0) {
        d->client_no_context_takeover = true;
        return 1;
    }
    if (strncmp(a, "--deflate-", 10) != 0)
        return 0;
    if (!v)
        return -1;
    if (strcmp(a, "--deflate-server-window") == 0)
        d->server_max_window_bits = (uint8_t)deflate_value(prog, a, v, 8, 15, bits);
    else if (strcmp(a, "--deflate-client-window") == 0)
        d->client_max_window_bits = (uint8_t)deflate_value(prog, a, v, 8, 15, bits);
    else if (strcmp(a, "--deflate-mem-level") == 0)
        d->mem_level = (uint8_t)deflate_value(prog, a, v, 1, 9, level);
    else if (strcmp(a, "--deflate-level") == 0)
        d->level = (uint8_t)deflate_value(prog, a, v, 1, 9, level);
    else if (strcmp(a, "--deflate-min") == 0)
        *min = deflate_value(prog, a, v, 1, SIZE_MAX, "a size in bytes, 1 or more");
    else
        return -1;
    return 2;
}

#endif /* DX_EXAMPLES_DEFLATE_FLAGS_H */
