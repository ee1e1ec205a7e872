/*
 * bench_utf8: UTF-8 validation throughput (RFC 3629, RFC 6455 §8.1) for 1 KiB and
 * 1 MiB of ASCII, accented Latin (French and German), CJK and emoji text, for each
 * variant the CPU supports and for the dispatching dx_utf8_feed, next to memcpy
 * of the same buffer measured in the same run. Every iteration checks the
 * verdict (true for the text, and false for a copy with one bad byte, every 16th
 * iteration, so a validator that says yes to everything fails the bench).
 *
 * One line per measurement:
 *   bench_utf8  1MiB  cjk avx2  12.0 GB/s  0.50x memcpy  0 allocs/op  gcc-12 -O2
 */
#include "simd_bench.h"

#include "proto/simd.h"

static const struct {
    const char *name;
    const char *text;
} samples[] = {
    {"ascii", "The WebSocket Protocol enables two-way communication between a client "
              "running untrusted code in a controlled environment to a remote host that "
              "has opted-in to communications from that code. "},
    {"latin", "Le cœur a ses raisons que la raison ne connaît point ; à l'été, "
              "nous étions déjà là-bas, près du château où naïveté et fraîcheur "
              "régnaient. Über den Wolken muß die Freiheit wohl grenzenlos sein; "
              "Größe, Maß und Bärenhöhle überraschen während der Fußgängerzone. "},
    {"cjk", "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。"
            "天地玄黄，宇宙洪荒。日月盈昃，辰宿列张。寒来暑往，秋收冬藏。"
            "모든 인간은 태어날 때부터 자유로우며 그 존엄과 권리에 있어 동등하다。"},
    {"emoji", "😀😃😄😁😆😅🤣😂🙂🙃😉😊"
              "😇🥰😍🤩😘😗😚😙🥲😋😛😜"
              "🤪😝🤑🤗🤭🤫🤔🚀🌍🌎🌏🎉"
              "🎊🎈🎁🏆⚽🏀🏈⚾🎾🏐🏉🎱"
              "🏓🏸🥅🏒🏑🏏⛳🏹🎣🤿🥊🥋"
              "🎽"},
};

/* Fill @out with copies of @text, cut at a character boundary and padded with
 * spaces to exactly @size bytes. */
static void fill(uint8_t *out, size_t size, const char *text) {
    size_t tl = strlen(text), n = 0;
    while (n + tl <= size) {
        memcpy(out + n, text, tl);
        n += tl;
    }
    size_t i = 0;
    while (n + i < size) { /* the longest whole-character prefix that fits */
        size_t cl = 1;
        uint8_t b = (uint8_t)text[i];
        if (b >= 0xF0)
            cl = 4;
        else if (b >= 0xE0)
            cl = 3;
        else if (b >= 0xC0)
            cl = 2;
        if (n + i + cl > size)
            break;
        memcpy(out + n + i, text + i, cl);
        i += cl;
    }
    memset(out + n + i, ' ', size - n - i);
}

int main(void) {
    static const size_t sizes[] = {1024, 1u << 20};
    dx__simd_variant v[3];
    size_t nv = dx__simd_variants(v);
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        size_t size = sizes[si];
        size_t iters = bench_iters(size);
        uint8_t *buf = bench_alloc(size), *bad = bench_alloc(size);
        uint8_t *dst[2] = {bench_alloc(size), bench_alloc(size)};
        for (size_t c = 0; c < sizeof samples / sizeof samples[0]; c++) {
            fill(buf, size, samples[c].text);
            if (!dx_utf8_valid(buf, size))
                bench_fail("bench_utf8", "sample text");
            memcpy(bad, buf, size);
            bad[size - size / 3] = 0xFF; /* never valid */

            double best_memcpy = 0;
            for (int run = 0; run < BENCH_RUNS; run++) {
                double t0 = bench_now();
                for (size_t it = 0; it < iters; it++) {
                    uint8_t *d = dst[it & 1];
                    memcpy(d, buf, size);
                    if (d[size - 1 - (it & 15)] != buf[size - 1 - (it & 15)])
                        bench_fail("bench_utf8", "memcpy");
                }
                double gbs = bench_gbs(size * iters, bench_now() - t0);
                if (gbs > best_memcpy)
                    best_memcpy = gbs;
            }
            char name[64];
            snprintf(name, sizeof name, "%s memcpy", samples[c].name);
            bench_line("bench_utf8", size, name, best_memcpy, best_memcpy, 0);

            for (size_t k = 0; k <= nv; k++) {
                dx__utf8_fn feed = k < nv ? v[k].utf8_feed : dx_utf8_feed;
                snprintf(name, sizeof name, "%s %s", samples[c].name,
                         k < nv ? v[k].name : "dx_utf8_feed");
                double best = 0;
                long allocs = 0;
                for (int run = 0; run < BENCH_RUNS; run++) {
                    long a0 = bench_allocs();
                    double t0 = bench_now();
                    for (size_t it = 0; it < iters; it++) {
                        bool want_ok = (it & 15) != 15;
                        dx_utf8_state s = {0};
                        bool ok = feed(&s, want_ok ? buf : bad, size) && dx_utf8_is_complete(&s);
                        if (ok != want_ok)
                            bench_fail("bench_utf8", name);
                    }
                    double gbs = bench_gbs(size * iters, bench_now() - t0);
                    allocs += bench_allocs() - a0;
                    if (gbs > best)
                        best = gbs;
                }
                bench_line("bench_utf8", size, name, best, best_memcpy,
                           (double)allocs / (double)(iters * BENCH_RUNS));
            }
        }
        bench_free(buf, size);
        bench_free(bad, size);
        bench_free(dst[0], size);
        bench_free(dst[1], size);
    }
    return 0;
}
