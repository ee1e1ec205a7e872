/*
 * bench_mask: masking throughput (RFC 6455 §5.3) for 1 KiB and 1 MiB payloads,
 * in place (the receive path) and copying (the send path), for each variant the
 * CPU supports and for the dispatching dx_mask/dx_mask_copy, next to memcpy of
 * the same buffer measured in the same run. memcpy and the copying mode both
 * alternate between two destinations and read a byte back, so no copy is dead
 * and both touch the same memory. Every iteration checks a byte of its answer,
 * and each variant is checked in full once.
 *
 * One line per measurement:
 *   bench_mask  1MiB  copy avx2  20.1 GB/s  0.95x memcpy  0 allocs/op  gcc-12 -O2
 */
#include "simd_bench.h"

#include "proto/simd.h"

static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};

static void run_mask(size_t k, const dx__simd_variant *v, size_t nv, uint8_t *dst,
                     const uint8_t *src, size_t size, bool inplace) {
    if (k < nv)
        v[k].mask(dst, src, size, key, 0);
    else if (inplace)
        dx_mask(dst, size, key, 0);
    else
        dx_mask_copy(dst, src, size, key, 0);
}

int main(void) {
    static const size_t sizes[] = {1024, 1u << 20};
    dx__simd_variant v[3];
    size_t nv = dx__simd_variants(v);
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        size_t size = sizes[si], wrap = size - 1; /* sizes are powers of two */
        uint8_t *src = bench_alloc(size), *buf = bench_alloc(size);
        uint8_t *dst[2] = {bench_alloc(size), bench_alloc(size)};
        for (size_t i = 0; i < size; i++)
            src[i] = (uint8_t)(i * 131 + (i >> 8));
        size_t iters = bench_iters(size);

        double best_memcpy = 0;
        for (int run = 0; run < BENCH_RUNS; run++) {
            double t0 = bench_now();
            for (size_t it = 0; it < iters; it++) {
                uint8_t *d = dst[it & 1];
                memcpy(d, src, size);
                size_t at = (it * 2654435761u) & wrap;
                if (d[at] != src[at])
                    bench_fail("bench_mask", "memcpy");
            }
            double gbs = bench_gbs(size * iters, bench_now() - t0);
            if (gbs > best_memcpy)
                best_memcpy = gbs;
        }
        /* every later line is relative to this figure */
        bench_line("bench_mask", size, "memcpy", best_memcpy, best_memcpy, 0);

        for (int inplace = 1; inplace >= 0; inplace--) {
            for (size_t k = 0; k <= nv; k++) {
                char name[64];
                snprintf(name, sizeof name, "%s %s", inplace ? "inplace" : "copy",
                         k < nv ? v[k].name : (inplace ? "dx_mask" : "dx_mask_copy"));
                /* full check once, from every key position */
                for (size_t pos = 0; pos < 4; pos++) {
                    memcpy(buf, src, size);
                    if (k < nv)
                        v[k].mask(buf, buf, size, key, pos);
                    else
                        dx_mask(buf, size, key, pos);
                    for (size_t i = 0; i < size; i++)
                        if (buf[i] != (uint8_t)(src[i] ^ key[(pos + i) & 3]))
                            bench_fail("bench_mask", name);
                }
                memcpy(buf, src, size);
                size_t calls = 0; /* in place: the buffer is masked iff calls is odd */
                double best = 0;
                long allocs = 0;
                for (int run = 0; run < BENCH_RUNS; run++) {
                    long a0 = bench_allocs();
                    double t0 = bench_now();
                    for (size_t it = 0; it < iters; it++) {
                        size_t at = (it * 2654435761u) & wrap;
                        uint8_t masked = (uint8_t)(src[at] ^ key[at & 3]);
                        if (inplace) {
                            run_mask(k, v, nv, buf, buf, size, true);
                            calls++;
                            if (buf[at] != (calls & 1 ? masked : src[at]))
                                bench_fail("bench_mask", name);
                        } else {
                            uint8_t *d = dst[it & 1];
                            run_mask(k, v, nv, d, src, size, false);
                            if (d[at] != masked)
                                bench_fail("bench_mask", name);
                        }
                    }
                    double gbs = bench_gbs(size * iters, bench_now() - t0);
                    allocs += bench_allocs() - a0;
                    if (gbs > best)
                        best = gbs;
                }
                bench_line("bench_mask", size, name, best, best_memcpy,
                           (double)allocs / (double)(iters * BENCH_RUNS));
            }
        }
        bench_free(src, size);
        bench_free(buf, size);
        bench_free(dst[0], size);
        bench_free(dst[1], size);
    }
    return 0;
}
