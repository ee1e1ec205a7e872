/*
 * The default random source: getrandom(2), the kernel's CSPRNG.
 *
 * A client masks every frame with a fresh 4-byte key (RFC 6455 §5.3); a system
 * call per frame would cost more than masking a small frame, so bytes are drawn
 * in blocks into a thread-local pool and handed out from there. The pool is
 * wiped as it is consumed so a later memory disclosure cannot reveal past keys.
 *
 * <sys/random.h> is the one OS header base/ may include: it is not I/O, and the
 * sans-I/O core still lets the caller supply its own source (dx_random).
 */
#include "base/internal.h"

#include <errno.h>
#include <sys/random.h>

#define POOL_SIZE 4096

static _Thread_local struct {
    uint8_t bytes[POOL_SIZE];
    size_t left; /* unread bytes at the end of bytes[] */
} pool;

static int fill_exact(uint8_t *buf, size_t len) {
    while (len > 0) {
        ssize_t n = getrandom(buf, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

int dx_random_bytes(uint8_t *buf, size_t len) {
    if (len > POOL_SIZE / 4)
        return fill_exact(buf, len);
    while (len > 0) {
        if (pool.left == 0) {
            int rc = fill_exact(pool.bytes, POOL_SIZE);
            if (rc < 0)
                return rc;
            pool.left = POOL_SIZE;
        }
        size_t take = len < pool.left ? len : pool.left;
        uint8_t *src = pool.bytes + POOL_SIZE - pool.left;
        memcpy(buf, src, take);
        memset(src, 0, take);
        pool.left -= take;
        buf += take;
        len -= take;
    }
    return 0;
}

static int default_fill(uint8_t *buf, size_t len, void *ctx) {
    (void)ctx;
    return dx_random_bytes(buf, len);
}

static const dx_random default_random = {default_fill, NULL};

const dx_random *dx_random_default(void) {
    return &default_random;
}
