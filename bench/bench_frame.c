/*
 * bench_frame: the dx_proto frame path.
 *
 *   parse_small_masked   a server parses a buffer of 4096 masked text frames with
 *                        16-byte payloads (22 bytes on the wire each)
 *   parse_64KiB_masked   a server parses 16 masked binary frames of 64 KiB
 *   send_small_client    a client queues 16-byte text frames (fresh masking key
 *                        from the default random source each), draining the
 *                        output every 64 frames
 *   send_64KiB_client    the same with 64 KiB binary frames, drained every frame
 *
 * Payloads are unmasked in place, so the receive buffer is parsed again as is:
 * the key and the text are ASCII, so both the text and its masked form are valid
 * UTF-8, and each pass checks that it got the other one back. Every iteration
 * checks its answer (event count, lengths, a byte of every payload, a checksum of
 * the output); the first pass of each case checks every byte. Allocations are
 * counted through a dx_allocator and reported per frame after warm-up.
 *
 * One line per measurement:
 *   bench_frame  parse_small_masked  41.2 Mframes/s  0.91 GB/s  0 allocs/op  gcc-12 -O2
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RUNS 7 /* best of */

static void line(const char *name, double frames_per_s, double bytes_per_s, double allocs) {
    printf("bench_frame  %s  %.1f Mframes/s  %.2f GB/s  %g allocs/op  %s %s\n", name,
           frames_per_s / 1e6, bytes_per_s / 1e9, allocs, bench_compiler(), bench_opt());
    fflush(stdout);
}

static const uint8_t key[4] = {0x12, 0x34, 0x56, 0x78}; /* ASCII, so text^key is ASCII */

/* Build @n masked frames of @len bytes of opcode @op; plain[] gets the payload. */
static uint8_t *build(size_t n, size_t len, unsigned op, uint8_t *plain, size_t *total) {
    size_t hl = (len <= 125 ? 2u : len <= 0xFFFF ? 4u : 10u) + 4;
    uint8_t *buf = malloc(n * (hl + len));
    if (!buf)
        bench_fail("bench_frame", "malloc");
    for (size_t i = 0; i < len; i++)
        plain[i] = (uint8_t)('a' + i % 26);
    size_t off = 0;
    for (size_t f = 0; f < n; f++) {
        dx_frame_header h = {
            .fin = true, .opcode = (uint8_t)op, .masked = true, .payload_len = len};
        memcpy(h.mask, key, 4);
        off += dx_frame_header_encode(buf + off, &h);
        dx_mask_copy(buf + off, plain, len, key, 0);
        off += len;
    }
    *total = off;
    return buf;
}

/* Parse @buf (@n frames of @len) once; pass @pass says which content to expect:
 * even passes see the plain text, odd ones its masked form. */
static void parse_once(dx_proto *p, uint8_t *buf, size_t total, size_t n, size_t len,
                       const uint8_t *plain, unsigned pass, bool full_check) {
    size_t off = 0, frames = 0;
    while (off < total) {
        size_t used;
        dx_event ev;
        if (dx_proto_recv(p, buf + off, total - off, &used, &ev) != 0)
            bench_fail("bench_frame", "recv");
        off += used;
        if (ev.type != DX_EV_DATA || ev.u.data.data.len != len || !ev.u.data.fin)
            bench_fail("bench_frame", "event");
        const uint8_t *d = ev.u.data.data.ptr;
        size_t at = frames % len;
        uint8_t want = (uint8_t)(plain[at] ^ ((pass & 1) ? key[at % 4] : 0));
        if (d[at] != want)
            bench_fail("bench_frame", "payload byte");
        if (full_check)
            for (size_t i = 0; i < len; i++)
                if (d[i] != (uint8_t)(plain[i] ^ ((pass & 1) ? key[i % 4] : 0)))
                    bench_fail("bench_frame", "payload");
        frames++;
    }
    if (frames != n)
        bench_fail("bench_frame", "frame count");
}

static void bench_parse(const char *name, size_t n, size_t len, unsigned op, int passes) {
    uint8_t *plain = malloc(len);
    size_t total;
    uint8_t *buf = build(n, len, op, plain, &total);
    dx_proto_config cfg = {.side = DX_SIDE_SERVER, .allocator = bench_counting()};
    dx_proto *p;
    if (dx_proto_create(&p, &cfg) != 0)
        bench_fail("bench_frame", "create");
    /* pass 0 (full check) is the warm-up; then the buffer alternates */
    unsigned pass = 0;
    parse_once(p, buf, total, n, len, plain, pass++, true);
    parse_once(p, buf, total, n, len, plain, pass++, true);
    double best = 1e9;
    long a0 = bench_counted_allocs;
    for (int r = 0; r < RUNS; r++) {
        double t0 = bench_now();
        for (int i = 0; i < passes; i++)
            parse_once(p, buf, total, n, len, plain, pass++, false);
        double t = bench_now() - t0;
        if (t < best)
            best = t;
    }
    double frames = (double)n * passes;
    line(name, frames / best, (double)total * passes / best,
         (double)(bench_counted_allocs - a0) / (frames * RUNS));
    if (dx_proto_get_state(p) != DX_OPEN || dx_proto_wants_write(p))
        bench_fail("bench_frame", "state");
    dx_proto_destroy(p);
    free(buf);
    free(plain);
}

static void bench_send(const char *name, size_t len, size_t batch, size_t frames) {
    uint8_t *plain = malloc(len);
    for (size_t i = 0; i < len; i++)
        plain[i] = (uint8_t)('a' + i % 26);
    dx_proto_config cfg = {.side = DX_SIDE_CLIENT, .allocator = bench_counting()};
    dx_proto *p;
    if (dx_proto_create(&p, &cfg) != 0)
        bench_fail("bench_frame", "create");
    size_t wire = (len <= 125 ? 2u : len <= 0xFFFF ? 4u : 10u) + 4 + len;
    double best = 1e9;
    long a0 = 0;
    for (int r = -1; r < RUNS; r++) { /* run -1 is the warm-up */
        if (r == 0)
            a0 = bench_counted_allocs;
        double t0 = bench_now();
        for (size_t f = 0; f < frames; f += batch) {
            for (size_t b = 0; b < batch; b++)
                if (dx_proto_send(p, len <= 125 ? DX_OP_TEXT : DX_OP_BINARY, (dx_span){plain, len},
                                  true) != 0)
                    bench_fail("bench_frame", "send");
            dx_span out = dx_proto_output(p);
            if (out.len != batch * wire)
                bench_fail("bench_frame", "output length");
            /* unmask one byte of the last frame with its own key */
            const uint8_t *last = out.ptr + out.len - wire;
            const uint8_t *k = last + wire - len - 4;
            size_t at = f % len;
            if ((uint8_t)(last[wire - len + at] ^ k[at % 4]) != plain[at] || !(last[1] & 0x80))
                bench_fail("bench_frame", "masked payload");
            dx_proto_output_consume(p, out.len);
        }
        double t = bench_now() - t0;
        if (r >= 0 && t < best)
            best = t;
    }
    line(name, (double)frames / best, (double)frames * (double)wire / best,
         (double)(bench_counted_allocs - a0) / ((double)frames * RUNS));
    dx_proto_destroy(p);
    free(plain);
}

int main(void) {
    bench_parse("parse_small_masked", 4096, 16, DX_OP_TEXT, 200);
    bench_parse("parse_64KiB_masked", 16, 65536, DX_OP_BINARY, 40);
    bench_send("send_small_client", 16, 64, 1u << 20);
    bench_send("send_64KiB_client", 65536, 1, 2048);
    return 0;
}
