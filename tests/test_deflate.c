/* permessage-deflate (RFC 7692): negotiation (§5, §7.1) and the codec (§7.2). */
#include "duplex/deflate.h"
#include "test.h"

#include <time.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- helpers -------------------------------------------------------------------- */

typedef struct buf {
    uint8_t *p;
    size_t len, cap;
} buf;

static void buf_put(buf *b, const uint8_t *p, size_t n) {
    if (b->len + n > b->cap) {
        size_t c = b->cap ? b->cap : 256;
        while (c < b->len + n)
            c *= 2;
        b->p = realloc(b->p, c);
        if (!b->p)
            abort();
        b->cap = c;
    }
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
}

/* Output capacity for the next call: fixed, or random 16..4111 when @cap is 0. */
static size_t next_cap(size_t cap) {
    return cap ? cap : 16 + (size_t)(dx_test_rand() % 4096);
}

/* dx_deflate_compress and dx_deflate_inflate take the same arguments. */
typedef int (*codec_fn)(dx_deflate *d, dx_span in, bool fin, uint8_t *out, size_t cap,
                        size_t *consumed, size_t *written);

/* Run one message through @fn, its input cut by @split, output buffers of @cap
 * bytes (0: random sizes). Appends what comes out to @out. */
static int run_msg(codec_fn fn, dx_deflate *d, const uint8_t *msg, size_t len, dx_split split,
                   size_t cap, buf *out) {
    size_t off = 0;
    uint8_t *tmp = malloc(8192);
    int rc;
    for (;;) {
        size_t piece = len - off ? dx_split_next(split, len - off) : 0;
        bool fin = off + piece == len;
        size_t used = 0, wrote = 0;
        size_t c = next_cap(cap);
        if (c > 8192)
            c = 8192;
        rc = fn(d, (dx_span){len ? msg + off : NULL, piece}, fin, tmp, c, &used, &wrote);
        buf_put(out, tmp, wrote);
        off += used;
        if (rc == DX_ENOSPACE)
            continue;
        if (rc != 0 || fin)
            break;
    }
    free(tmp);
    return rc;
}

/* Compress one message (the payload of its frames). */
static int compress_msg(dx_deflate *d, const uint8_t *msg, size_t len, dx_split split, size_t cap,
                        buf *out) {
    return run_msg(dx_deflate_compress, d, msg, len, split, cap, out);
}

/* Inflate one message payload. */
static int inflate_msg(dx_deflate *d, const uint8_t *p, size_t len, dx_split split, size_t cap,
                       buf *out) {
    return run_msg(dx_deflate_inflate, d, p, len, split, cap, out);
}

static dx_deflate_params params_of(int sbits, int cbits, bool snct, bool cnct) {
    dx_deflate_params p = {snct, cnct, (uint8_t)sbits, (uint8_t)cbits};
    return p;
}

static dx_deflate *make(const dx_deflate_params *p, bool server, size_t limit) {
    dx_deflate *d = NULL;
    CHECK_RC(dx_deflate_create(&d, p, server, NULL, limit, NULL), 0);
    return d;
}

static void expect_inflate(dx_deflate *d, const uint8_t *p, size_t n, const char *want) {
    buf out = {0};
    CHECK_RC(inflate_msg(d, p, n, DX_SPLIT_WHOLE, 4096, &out), 0);
    CHECK_EQ_INT(out.len, strlen(want));
    if (out.len == strlen(want) && out.len > 0)
        CHECK_MEM(out.p, want, out.len);
    free(out.p);
}

/* ---- §7.2.3 examples -------------------------------------------------------------- */

static const uint8_t hello_c[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};

TEST(rfc7692_7_2_3_1_hello_compresses_to_the_rfc_bytes) {
    dx_deflate_params p = params_of(15, 15, false, false);
    dx_deflate *d = make(&p, true, 0);
    buf out = {0};
    CHECK_RC(compress_msg(d, (const uint8_t *)"Hello", 5, DX_SPLIT_WHOLE, 64, &out), 0);
    CHECK_EQ_INT(out.len, sizeof hello_c);
    if (out.len == sizeof hello_c)
        CHECK_MEM(out.p, hello_c, sizeof hello_c);
    free(out.p);
    dx_deflate_destroy(d);

    /* byte by byte, output buffers of the minimum size */
    for (size_t i = 0; i < 3; i++) {
        d = make(&p, false, 0);
        buf o2 = {0};
        CHECK_RC(compress_msg(d, (const uint8_t *)"Hello", 5, dx_all_splits[i], 16, &o2), 0);
        CHECK(o2.len == sizeof hello_c && memcmp(o2.p, hello_c, sizeof hello_c) == 0);
        free(o2.p);
        dx_deflate_destroy(d);
    }
}

TEST(rfc7692_7_2_3_1_hello_inflates_whole_bytewise_and_split) {
    dx_deflate_params p = params_of(15, 15, false, false);
    for (size_t i = 0; i < 3; i++) {
        dx_deflate *d = make(&p, false, 0);
        buf out = {0};
        CHECK_RC(inflate_msg(d, hello_c, sizeof hello_c, dx_all_splits[i], 1 + i, &out), 0);
        CHECK(out.len == 5 && memcmp(out.p, "Hello", 5) == 0);
        free(out.p);
        dx_deflate_destroy(d);
    }
}

TEST(rfc7692_7_2_3_2_two_messages_share_the_lz77_window) {
    static const uint8_t second[] = {0xf2, 0x00, 0x11, 0x00, 0x00};
    dx_deflate_params p = params_of(15, 15, false, false);
    dx_deflate *d = make(&p, true, 0);
    expect_inflate(d, hello_c, sizeof hello_c, "Hello");
    expect_inflate(d, second, sizeof second, "Hello");
    dx_deflate_destroy(d);

    /* our compressor: the second "Hello" refers back to the first, and inflates */
    dx_deflate *c = make(&p, false, 0);
    d = make(&p, true, 0);
    buf a = {0}, b = {0};
    CHECK_RC(compress_msg(c, (const uint8_t *)"Hello", 5, DX_SPLIT_WHOLE, 64, &a), 0);
    CHECK_RC(compress_msg(c, (const uint8_t *)"Hello", 5, DX_SPLIT_WHOLE, 64, &b), 0);
    CHECK(b.len < a.len);
    expect_inflate(d, a.p, a.len, "Hello");
    expect_inflate(d, b.p, b.len, "Hello");
    free(a.p);
    free(b.p);
    dx_deflate_destroy(c);
    dx_deflate_destroy(d);
}

TEST(rfc7692_no_context_takeover_resets_the_compressor_per_message) {
    /* client_no_context_takeover: the client's second "Hello" is the first again */
    dx_deflate_params p = params_of(15, 15, false, true);
    dx_deflate *c = make(&p, false, 0);
    dx_deflate *s = make(&p, true, 0);
    for (int i = 0; i < 3; i++) {
        buf a = {0};
        CHECK_RC(compress_msg(c, (const uint8_t *)"Hello", 5, DX_SPLIT_WHOLE, 64, &a), 0);
        CHECK(a.len == sizeof hello_c && memcmp(a.p, hello_c, sizeof hello_c) == 0);
        expect_inflate(s, a.p, a.len, "Hello");
        free(a.p);
    }
    /* the server's own direction keeps its context */
    buf x = {0}, y = {0};
    CHECK_RC(compress_msg(s, (const uint8_t *)"Hello", 5, DX_SPLIT_WHOLE, 64, &x), 0);
    CHECK_RC(compress_msg(s, (const uint8_t *)"Hello", 5, DX_SPLIT_WHOLE, 64, &y), 0);
    CHECK(y.len < x.len);
    free(x.p);
    free(y.p);
    dx_deflate_destroy(c);
    dx_deflate_destroy(s);
}

TEST(rfc7692_7_2_3_3_deflate_block_with_no_compression) {
    static const uint8_t m[] = {0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00};
    dx_deflate_params p = params_of(15, 15, false, false);
    dx_deflate *d = make(&p, true, 0);
    expect_inflate(d, m, sizeof m, "Hello");
    expect_inflate(d, hello_c, sizeof hello_c, "Hello");
    dx_deflate_destroy(d);
}

TEST(rfc7692_7_2_3_4_deflate_block_with_bfinal_set) {
    static const uint8_t m[] = {0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
    static const uint8_t m2[] = {0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00};
    dx_deflate_params p = params_of(15, 15, false, false);
    dx_deflate *d = make(&p, true, 0);
    expect_inflate(d, m, sizeof m, "Hello");
    expect_inflate(d, m2, sizeof m2, "Hello"); /* the stream restarts after BFINAL */
    expect_inflate(d, hello_c, sizeof hello_c, "Hello");
    dx_deflate_destroy(d);
}

TEST(rfc7692_7_2_3_5_two_deflate_blocks_in_one_message) {
    static const uint8_t m[] = {0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff,
                                0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00};
    dx_deflate_params p = params_of(15, 15, false, false);
    for (size_t i = 0; i < 3; i++) {
        dx_deflate *d = make(&p, true, 0);
        buf out = {0};
        CHECK_RC(inflate_msg(d, m, sizeof m, dx_all_splits[i], 0, &out), 0);
        CHECK(out.len == 5 && memcmp(out.p, "Hello", 5) == 0);
        free(out.p);
        dx_deflate_destroy(d);
    }
}

TEST(rfc7692_7_2_3_6_empty_message_is_one_zero_byte) {
    static const uint8_t zero[] = {0x00};
    dx_deflate_params p = params_of(15, 15, false, false);
    dx_deflate *c = make(&p, false, 0);
    dx_deflate *s = make(&p, true, 0);
    for (int i = 0; i < 2; i++) {
        buf e = {0}, h = {0};
        CHECK_RC(compress_msg(c, NULL, 0, DX_SPLIT_WHOLE, 16, &e), 0);
        CHECK(e.len == 1 && e.p[0] == 0);
        expect_inflate(s, e.p, e.len, "");
        CHECK_RC(compress_msg(c, (const uint8_t *)"Hello", 5, DX_SPLIT_WHOLE, 16, &h), 0);
        expect_inflate(s, h.p, h.len, "Hello");
        free(e.p);
        free(h.p);
    }
    expect_inflate(s, zero, 1, "");
    /* an empty payload (no byte at all) would be 00 00 FF FF alone, a stored block
     * cut short; it is read as an empty message, as browsers read it, and leaves
     * the context as it was: the next message still refers back into it */
    buf e = {0}, h = {0};
    CHECK_RC(compress_msg(c, (const uint8_t *)"Hello, Hello!", 13, DX_SPLIT_WHOLE, 16, &h), 0);
    expect_inflate(s, h.p, h.len, "Hello, Hello!");
    free(h.p);
    h = (buf){0};
    CHECK_RC(inflate_msg(s, NULL, 0, DX_SPLIT_WHOLE, 16, &e), 0);
    CHECK_EQ_INT(e.len, 0);
    CHECK_RC(compress_msg(c, (const uint8_t *)"Hello, Hello!", 13, DX_SPLIT_WHOLE, 16, &h), 0);
    CHECK(h.len < 8); /* a back-reference to the message before the empty one */
    expect_inflate(s, h.p, h.len, "Hello, Hello!");
    free(e.p);
    free(h.p);
    dx_deflate_destroy(c);
    dx_deflate_destroy(s);
}

/* ---- round trips ---------------------------------------------------------------- */

/* Random bytes, or "compressible": a random 3000-byte block repeated with a few
 * changes, so matches reach far back and a too-wide window would show. */
static void fill(uint8_t *p, size_t n, bool compressible) {
    if (!compressible) {
        for (size_t i = 0; i < n; i++)
            p[i] = (uint8_t)dx_test_rand();
        return;
    }
    uint8_t block[3000];
    for (size_t i = 0; i < sizeof block; i++)
        block[i] = (uint8_t)('a' + dx_test_rand() % 16);
    for (size_t i = 0; i < n; i++)
        p[i] = block[i % sizeof block];
    for (size_t i = 0; i < n / 500; i++)
        p[dx_test_rand() % n] = (uint8_t)dx_test_rand();
}

static size_t fails_shown;

static void round_trip(int bits, bool snct, bool cnct, bool compressible, const size_t *sizes,
                       size_t num_sizes) {
    dx_deflate_params p = params_of(bits, bits, snct, cnct);
    dx_deflate *c = make(&p, false, 2u << 20);
    dx_deflate *s = make(&p, true, 2u << 20);
    for (size_t k = 0; k < num_sizes; k++) {
        size_t n = sizes[k];
        uint8_t *msg = malloc(n ? n : 1);
        fill(msg, n, compressible);
        for (int dir = 0; dir < 2; dir++) {
            dx_deflate *tx = dir ? s : c, *rx = dir ? c : s;
            dx_split split = dx_all_splits[(k + (size_t)dir) % 3];
            if (split == DX_SPLIT_BYTES && n > 4096)
                split = DX_SPLIT_RANDOM;
            buf z = {0}, back = {0};
            int rc1 = compress_msg(tx, msg, n, split, 0, &z);
            int rc2 = inflate_msg(rx, z.p, z.len, split, 0, &back);
            bool ok = rc1 == 0 && rc2 == 0 && back.len == n && (n == 0 || !memcmp(back.p, msg, n));
            if (compressible && n >= 65536 && bits >= 12) /* the 3000-byte period fits */
                ok = ok && z.len < n / 4;
            if (!ok && fails_shown++ < 5)
                printf("    bits=%d snct=%d cnct=%d comp=%d n=%zu dir=%d: rc %s %s, %zu -> %zu\n",
                       bits, snct, cnct, compressible, n, dir, dx_err_name(rc1), dx_err_name(rc2),
                       z.len, back.len);
            CHECK(ok);
            free(z.p);
            free(back.p);
        }
        free(msg);
    }
    dx_deflate_destroy(c);
    dx_deflate_destroy(s);
}

TEST(rfc7692_7_2_round_trips_every_window_and_context_takeover) {
    static const size_t sizes[] = {0, 1, 5, 1000, 0, 65536, 200000, 3};
    for (int bits = 8; bits <= 15; bits++)
        for (int nct = 0; nct < 4; nct++)
            for (int comp = 0; comp < 2; comp++)
                round_trip(bits, nct & 1, nct & 2, comp, sizes, ARRAY_LEN(sizes));
}

TEST(rfc7692_7_2_round_trips_of_one_mib) {
    static const size_t sizes[] = {1u << 20, 12345, 1u << 20};
    for (int bits = 8; bits <= 15; bits += 7)
        for (int nct = 0; nct < 4; nct += 3)
            for (int comp = 0; comp < 2; comp++)
                round_trip(bits, nct & 1, nct & 2, comp, sizes, ARRAY_LEN(sizes));
}

TEST(rfc7692_window_8_compresses_with_9_within_reach_of_a_256_byte_window) {
    /* Our compressor asks zlib for 9 when 8 is agreed; its matches still stay
     * within 250 bytes, so an inflater with an 8-bit window accepts them. */
    dx_deflate_params p8 = params_of(8, 8, false, false);
    dx_deflate *c = make(&p8, false, 0);
    dx_deflate *s = make(&p8, true, 0);
    uint8_t msg[20000];
    for (size_t i = 0; i < sizeof msg; i++) /* repeats at distance 300 and 200 */
        msg[i] = (uint8_t)(i % 300 < 150 ? 'a' + (i * 7 % 300) % 26 : 'A' + (i % 200) % 26);
    for (int m = 0; m < 4; m++) {
        buf z = {0}, back = {0};
        CHECK_RC(compress_msg(c, msg, sizeof msg, DX_SPLIT_RANDOM, 0, &z), 0);
        CHECK_RC(inflate_msg(s, z.p, z.len, DX_SPLIT_RANDOM, 0, &back), 0);
        CHECK(back.len == sizeof msg && memcmp(back.p, msg, sizeof msg) == 0);
        CHECK(z.len < sizeof msg / 2);
        free(z.p);
        free(back.p);
    }
    dx_deflate_destroy(c);
    dx_deflate_destroy(s);
}

TEST(rfc7692_inflater_uses_the_agreed_window) {
    /* a stream compressed with a 32 KiB window and a back reference 20000 bytes
     * away does not inflate under a 10-bit agreement (with output buffers of
     * 4 KiB: zlib also resolves far distances inside one call's output buffer,
     * see deflate.h) */
    dx_deflate_params wide = params_of(15, 15, false, false);
    dx_deflate_params narrow = params_of(10, 10, false, false);
    dx_deflate *c = make(&wide, false, 0);
    dx_deflate *s = make(&narrow, true, 0);
    uint8_t *msg = malloc(40000);
    fill(msg, 20000, false);
    memcpy(msg + 20000, msg, 20000);
    buf z = {0}, back = {0};
    CHECK_RC(compress_msg(c, msg, 40000, DX_SPLIT_WHOLE, 4096, &z), 0);
    CHECK_RC(inflate_msg(s, z.p, z.len, DX_SPLIT_WHOLE, 4096, &back), DX_EDEFLATE_DATA);
    free(z.p);
    free(back.p);
    free(msg);
    dx_deflate_destroy(c);
    dx_deflate_destroy(s);
}

/* ---- limits, bombs, corrupt data ------------------------------------------------ */

/* A bit writer, LSB first as DEFLATE packs (RFC 1951 §3.1.1). */
typedef struct bits {
    uint8_t *p;
    size_t n;    /* bytes started */
    unsigned at; /* bits used in p[n-1] (0..8) */
} bits;

static void put_bits(bits *b, uint32_t v, unsigned count) {
    for (unsigned i = 0; i < count; i++) {
        if (b->at == 0 || b->at == 8) {
            b->p[b->n++] = 0;
            b->at = 0;
        }
        b->p[b->n - 1] |= (uint8_t)(((v >> i) & 1u) << b->at);
        b->at++;
    }
}

/* A Huffman code goes most significant bit first. */
static void put_code(bits *b, uint32_t code, unsigned len) {
    for (unsigned i = len; i-- > 0;)
        put_bits(b, (code >> i) & 1u, 1);
}

/* A fixed-Huffman block: one literal 0, then @reps copies of (length 258,
 * distance 1), each 13 bits: 1 + 258 * reps bytes. Ends with the end-of-block
 * code and the first 3 bits of an empty stored block, as a sync flush leaves
 * it once 00 00 FF FF is removed. Returns the byte count; @out is malloc'd. */
static size_t make_bomb(size_t reps, uint8_t **out) {
    size_t cap = reps * 13 / 8 + 16;
    bits b = {calloc(1, cap), 0, 0};
    put_bits(&b, 0, 1);    /* BFINAL 0 */
    put_bits(&b, 1, 2);    /* BTYPE 01: fixed codes */
    put_code(&b, 0x30, 8); /* literal 0 */
    for (size_t i = 0; i < reps; i++) {
        put_code(&b, 0xc5, 8); /* code 285: length 258 */
        put_code(&b, 0, 5);    /* distance code 0: distance 1 */
    }
    put_code(&b, 0, 7); /* end of block (256) */
    put_bits(&b, 0, 3); /* stored block header; the rest pads the byte */
    *out = b.p;
    return b.n;
}

TEST(rfc7692_a_small_bomb_under_the_limit_inflates_exactly) {
    uint8_t *bomb;
    size_t n = make_bomb(100, &bomb);
    dx_deflate_params p = params_of(15, 15, false, false);
    dx_deflate *d = make(&p, true, 25801);
    buf out = {0};
    CHECK_RC(inflate_msg(d, bomb, n, DX_SPLIT_RANDOM, 0, &out), 0);
    CHECK_EQ_INT(out.len, 25801);
    bool zeros = true;
    for (size_t i = 0; i < out.len; i++)
        zeros = zeros && out.p[i] == 0;
    CHECK(zeros);
    free(out.p);
    dx_deflate_destroy(d);

    /* one byte less of limit: refused, and nothing past the limit was written */
    d = make(&p, true, 25800);
    buf o2 = {0};
    CHECK_RC(inflate_msg(d, bomb, n, DX_SPLIT_WHOLE, 100000, &o2), DX_EDEFLATE_TOO_BIG);
    CHECK(o2.len <= 25800);
    size_t used, wrote;
    uint8_t tmp[16];
    CHECK_RC(dx_deflate_inflate(d, (dx_span){bomb, 1}, true, tmp, 16, &used, &wrote), DX_EINVAL);
    free(o2.p);
    dx_deflate_destroy(d);
    free(bomb);
}

TEST(rfc7692_zip_bomb_of_one_gib_stops_at_the_limit_quickly_in_bounded_memory) {
    /* DEFLATE cannot exceed about 1032:1, so 1 GiB takes at least 1 MiB of input;
     * this fixed-code bomb (13 bits per 258 bytes) is 6.5 MB for 1 GiB. What
     * matters: inflation stops after reading about 6.6 KB of it. */
    size_t reps = ((size_t)1 << 30) / 258;
    uint8_t *bomb;
    size_t n = make_bomb(reps, &bomb);
    CHECK(n > 6000000);
    dx_fail_alloc fa;
    dx_fail_alloc_init(&fa, -1);
    dx_deflate_params p = params_of(15, 15, false, false);
    dx_deflate *d = NULL;
    REQUIRE(dx_deflate_create(&d, &p, true, NULL, 1u << 20, &fa.a) == 0);
    clock_t t0 = clock();
    size_t off = 0, total = 0, max_mem = 0;
    static uint8_t out[65529]; /* not a divisor of the limit */
    int rc = 0;
    while (off < n) {
        size_t piece = n - off < 4096 ? n - off : 4096;
        size_t used = 0, wrote = 0;
        rc = dx_deflate_inflate(d, (dx_span){bomb + off, piece}, off + piece == n, out, sizeof out,
                                &used, &wrote);
        off += used;
        total += wrote;
        if (fa.live_bytes > max_mem)
            max_mem = fa.live_bytes;
        if (rc != 0 && rc != DX_ENOSPACE)
            break;
    }
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    CHECK_RC(rc, DX_EDEFLATE_TOO_BIG);
    CHECK(total <= (1u << 20));
    CHECK(total >= (1u << 20) - sizeof out);
    CHECK(off < 16384);
    CHECK(max_mem < 48 * 1024);
    CHECK(secs < 2.0);
    printf("    bomb: %zu of %zu input bytes read, %zu bytes out, %zu bytes of zlib memory, "
           "%.3f s\n",
           off, n, total, max_mem, secs);
    dx_deflate_destroy(d);
    CHECK_EQ_INT(fa.live, 0);
    free(bomb);
}

TEST(rfc7692_limit_is_per_message_and_exact) {
    dx_deflate_params p = params_of(15, 15, false, false);
    uint8_t msg[5000];
    fill(msg, sizeof msg, true);
    dx_deflate *c = make(&p, false, 0);
    buf z = {0};
    CHECK_RC(compress_msg(c, msg, sizeof msg, DX_SPLIT_WHOLE, 0, &z), 0);
    dx_deflate *s = make(&p, true, sizeof msg);
    for (int i = 0; i < 3; i++) { /* the same limit again for each message */
        buf back = {0};
        dx_deflate *c2 = make(&p, false, 0);
        buf z2 = {0};
        CHECK_RC(compress_msg(c2, msg, sizeof msg, DX_SPLIT_WHOLE, 0, &z2), 0);
        dx_deflate *s2 = make(&p, true, sizeof msg);
        CHECK_RC(inflate_msg(s2, z2.p, z2.len, dx_all_splits[i], 0, &back), 0);
        CHECK_EQ_INT(back.len, sizeof msg);
        free(back.p);
        free(z2.p);
        dx_deflate_destroy(c2);
        dx_deflate_destroy(s2);
    }
    dx_deflate *s3 = make(&p, true, sizeof msg - 1);
    buf b3 = {0};
    CHECK_RC(inflate_msg(s3, z.p, z.len, DX_SPLIT_BYTES, 7, &b3), DX_EDEFLATE_TOO_BIG);
    CHECK(b3.len <= sizeof msg - 1);
    free(b3.p);
    free(z.p);
    dx_deflate_destroy(c);
    dx_deflate_destroy(s);
    dx_deflate_destroy(s3);
}

static void expect_corrupt(const uint8_t *m, size_t n, const char *what) {
    dx_deflate_params p = params_of(15, 15, false, false);
    for (size_t i = 0; i < 3; i++) {
        dx_deflate *d = make(&p, true, 0);
        buf out = {0};
        int rc = inflate_msg(d, m, n, dx_all_splits[i], 0, &out);
        if (rc != DX_EDEFLATE_DATA)
            printf("    %s (%s)\n", what, dx_split_name(dx_all_splits[i]));
        CHECK_RC(rc, DX_EDEFLATE_DATA);
        /* the error is final */
        size_t used, wrote;
        uint8_t tmp[16];
        CHECK_RC(dx_deflate_inflate(d, (dx_span){hello_c, 7}, true, tmp, 16, &used, &wrote),
                 DX_EINVAL);
        free(out.p);
        dx_deflate_destroy(d);
    }
}

TEST(rfc7692_truncated_and_corrupt_messages_fail_with_deflate_data) {
    static const uint8_t trunc1[] = {0xf2, 0x48, 0xcd};
    static const uint8_t trunc2[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07};
    static const uint8_t btype3[] = {0x06, 0x00};
    static const uint8_t stored_len[] = {0x00, 0x05, 0x00, 0x00, 0x00, 'H', 'e', 'l', 'l', 'o'};
    static const uint8_t stored_short[] = {0x00, 0x05, 0x00, 0xfa, 0xff, 'H', 'e'};
    /* distance 1 before any byte was produced */
    uint8_t far[8] = {0};
    bits b = {far, 0, 0};
    put_bits(&b, 0, 1);
    put_bits(&b, 1, 2);
    put_code(&b, 0xc5, 8);
    put_code(&b, 0, 5);
    put_code(&b, 0, 7);
    put_bits(&b, 0, 3);
    expect_corrupt(trunc1, sizeof trunc1, "truncated after 3 bytes");
    expect_corrupt(trunc2, sizeof trunc2, "truncated before the end of block");
    expect_corrupt(btype3, sizeof btype3, "reserved block type 11");
    expect_corrupt(stored_len, sizeof stored_len, "stored LEN/NLEN mismatch");
    expect_corrupt(stored_short, sizeof stored_short, "stored block cut short");
    expect_corrupt(far, b.n, "distance too far back");
}

/* ---- allocation, memory --------------------------------------------------------- */

TEST(rfc7692_every_allocation_failure_is_clean) {
    dx_deflate_params p = params_of(11, 15, false, false);
    uint8_t msg[3000];
    fill(msg, sizeof msg, true);
    int completed = 0;
    for (long k = 0; k < 20 && !completed; k++) {
        dx_fail_alloc fa;
        dx_fail_alloc_init(&fa, k);
        dx_deflate *c = NULL, *s = NULL;
        int rc = dx_deflate_create(&c, &p, false, NULL, 0, &fa.a);
        if (rc == 0)
            rc = dx_deflate_create(&s, &p, true, NULL, 0, &fa.a);
        buf z = {0}, back = {0};
        if (rc == 0)
            rc = compress_msg(c, msg, sizeof msg, DX_SPLIT_WHOLE, 0, &z);
        if (rc == 0)
            rc = inflate_msg(s, z.p, z.len, DX_SPLIT_WHOLE, 0, &back);
        if (rc == 0) {
            CHECK(back.len == sizeof msg && memcmp(back.p, msg, sizeof msg) == 0);
            completed = 1;
        } else {
            CHECK_RC(rc, DX_ENOMEM);
        }
        free(z.p);
        free(back.p);
        dx_deflate_destroy(c);
        dx_deflate_destroy(s);
        CHECK_EQ_INT(fa.live, 0);
        CHECK(!fa.size_mismatch);
    }
    CHECK(completed);
}

/* Memory one connection holds after a message each way. */
static size_t conn_memory(int own_bits, int peer_bits, int mem_level, size_t *deflate_part) {
    dx_deflate_params p = params_of(own_bits, peer_bits, false, false);
    dx_deflate_params peer = p;
    dx_deflate_config cfg = {.mem_level = (uint8_t)mem_level};
    dx_fail_alloc fa;
    dx_fail_alloc_init(&fa, -1);
    dx_deflate *d = NULL, *other = NULL;
    if (dx_deflate_create(&d, &p, true, &cfg, 0, &fa.a) != 0 ||
        dx_deflate_create(&other, &peer, false, NULL, 0, NULL) != 0)
        abort();
    uint8_t msg[70000];
    fill(msg, sizeof msg, true);
    buf z = {0}, back = {0};
    CHECK_RC(compress_msg(d, msg, sizeof msg, DX_SPLIT_WHOLE, 0, &z), 0);
    size_t after_deflate = dx_deflate_memory(d);
    buf z2 = {0};
    CHECK_RC(compress_msg(other, msg, sizeof msg, DX_SPLIT_WHOLE, 0, &z2), 0);
    CHECK_RC(inflate_msg(d, z2.p, z2.len, DX_SPLIT_WHOLE, 0, &back), 0);
    size_t total = fa.live_bytes;
    CHECK(dx_deflate_memory(d) + sizeof(void *) <= total);
    *deflate_part = after_deflate;
    free(z.p);
    free(z2.p);
    free(back.p);
    dx_deflate_destroy(d);
    dx_deflate_destroy(other);
    return total;
}

TEST(rfc7692_memory_per_connection) {
    size_t dpart;
    size_t big = conn_memory(15, 15, 8, &dpart);
    printf("    memory: window 15/memLevel 8 both ways: %zu bytes (compressor %zu, zlib formula "
           "%d + inflater %d)\n",
           big, dpart, (1 << 17) + (1 << 17), 1 << 15);
    CHECK(dpart >= (1 << 17) + (1 << 17));
    size_t def =
        conn_memory(DX_DEFLATE_DEFAULT_WINDOW_BITS, 15, DX_DEFLATE_DEFAULT_MEM_LEVEL, &dpart);
    printf("    memory: defaults (our window %d, memLevel %d, peer window 15): %zu bytes "
           "(compressor %zu)\n",
           DX_DEFLATE_DEFAULT_WINDOW_BITS, DX_DEFLATE_DEFAULT_MEM_LEVEL, def, dpart);
    CHECK(def <= 64 * 1024);
    size_t small = conn_memory(9, 9, 1, &dpart);
    printf("    memory: window 9/memLevel 1 both ways: %zu bytes (compressor %zu)\n", small, dpart);
    CHECK(small < def);
}

TEST(rfc7692_nothing_is_allocated_before_the_first_message) {
    dx_deflate_params p = params_of(15, 15, false, false);
    dx_deflate *d = make(&p, true, 0);
    CHECK_EQ_INT(dx_deflate_memory(d), 0);
    dx_deflate_destroy(d);
    dx_deflate_destroy(NULL);
}

TEST(rfc7692_create_and_compress_refuse_bad_arguments) {
    dx_deflate *d = NULL;
    dx_deflate_params p = params_of(7, 15, false, false);
    CHECK_RC(dx_deflate_create(&d, &p, true, NULL, 0, NULL), DX_EINVAL);
    p = params_of(15, 16, false, false);
    CHECK_RC(dx_deflate_create(&d, &p, true, NULL, 0, NULL), DX_EINVAL);
    dx_deflate_config cfg = {.mem_level = 10};
    p = params_of(15, 15, false, false);
    CHECK_RC(dx_deflate_create(&d, &p, true, &cfg, 0, NULL), DX_EINVAL);
    CHECK(d == NULL);
    d = make(&p, true, 0);
    uint8_t out[15];
    size_t used, wrote;
    CHECK_RC(dx_deflate_compress(d, dx_span_cstr("x"), true, out, sizeof out, &used, &wrote),
             DX_EINVAL);
    dx_deflate_destroy(d);
}

/* ---- negotiation ---------------------------------------------------------------- */

typedef struct exts {
    dx_ext e[8];
    dx_ext_param prm[16];
    size_t n, np;
} exts;

static int parse_exts(const char *v, exts *x) {
    memset(x, 0, sizeof *x);
    return dx_ext_parse_value(dx_span_cstr(v), x->e, 8, &x->n, x->prm, 16, &x->np);
}

typedef struct accept_case {
    const char *cfg;    /* "S" server nct, "C" client nct, "sN"/"cN" window bits */
    const char *offers; /* the Sec-WebSocket-Extensions value */
    const char *answer; /* NULL: no acceptable offer */
    int chosen;
    int sbits, cbits; /* agreed */
} accept_case;

static dx_deflate_config cfg_of(const char *spec) {
    dx_deflate_config c = {0};
    for (const char *s = spec; *s; s++) {
        if (*s == 'S')
            c.server_no_context_takeover = true;
        else if (*s == 'C')
            c.client_no_context_takeover = true;
        else if (*s == 's' || *s == 'c') {
            uint8_t v = (uint8_t)strtoul(s + 1, NULL, 10);
            if (*s == 's')
                c.server_max_window_bits = v;
            else
                c.client_max_window_bits = v;
        }
    }
    return c;
}

TEST(rfc7692_7_1_server_accepts_the_first_acceptable_offer) {
    static const accept_case cases[] = {
        {"", "permessage-deflate", "permessage-deflate; server_max_window_bits=11", 0, 11, 15},
        {"s15", "permessage-deflate", "permessage-deflate", 0, 15, 15},
        {"", "permessage-deflate; client_max_window_bits",
         "permessage-deflate; server_max_window_bits=11", 0, 11, 15},
        {"c10", "permessage-deflate; client_max_window_bits",
         "permessage-deflate; server_max_window_bits=11; client_max_window_bits=10", 0, 11, 10},
        {"c10", "permessage-deflate", "permessage-deflate; server_max_window_bits=11", 0, 11, 15},
        {"", "permessage-deflate; client_max_window_bits=9",
         "permessage-deflate; server_max_window_bits=11; client_max_window_bits=9", 0, 11, 9},
        {"c12", "permessage-deflate; client_max_window_bits=13",
         "permessage-deflate; server_max_window_bits=11; client_max_window_bits=12", 0, 11, 12},
        {"", "permessage-deflate; server_max_window_bits=10",
         "permessage-deflate; server_max_window_bits=10", 0, 10, 15},
        {"s15", "permessage-deflate; server_max_window_bits=15",
         "permessage-deflate; server_max_window_bits=15", 0, 15, 15},
        {"", "permessage-deflate; server_max_window_bits=8",
         "permessage-deflate; server_max_window_bits=8", 0, 8, 15},
        {"", "permessage-deflate; server_max_window_bits=\"12\"",
         "permessage-deflate; server_max_window_bits=11", 0, 11, 15},
        {"", "permessage-deflate; server_no_context_takeover",
         "permessage-deflate; server_no_context_takeover; server_max_window_bits=11", 0, 11, 15},
        {"SC", "permessage-deflate; client_no_context_takeover",
         "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
         "server_max_window_bits=11",
         0, 11, 15},
        {"s15", "PerMessage-Deflate; Server_No_Context_Takeover",
         "permessage-deflate; server_no_context_takeover", 0, 15, 15},
        /* other extensions and malformed offers are skipped */
        {"s15", "x-webkit-deflate-frame, permessage-deflate", "permessage-deflate", 1, 15, 15},
        {"s15", "permessage-deflate; foo, permessage-deflate; server_max_window_bits=9",
         "permessage-deflate; server_max_window_bits=9", 1, 9, 15},
        {"s15",
         "permessage-deflate; client_max_window_bits=16, permessage-deflate; "
         "server_max_window_bits, permessage-deflate",
         "permessage-deflate", 2, 15, 15},
        {"", "foo, bar", NULL, 0, 0, 0},
        {"", "permessage-deflate; server_max_window_bits=7", NULL, 0, 0, 0},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        const accept_case *t = &cases[i];
        exts x;
        REQUIRE(parse_exts(t->offers, &x) == 0);
        dx_deflate_config cfg = cfg_of(t->cfg);
        dx_deflate_params p;
        memset(&p, 0, sizeof p);
        size_t chosen = 99, len = 0;
        char ans[256];
        int rc = dx_deflate_accept(&cfg, x.e, x.n, &p, &chosen, ans, sizeof ans, &len);
        bool ok;
        if (!t->answer)
            ok = rc == DX_EDEFLATE_NONE;
        else
            ok = rc == 0 && strcmp(ans, t->answer) == 0 && len == strlen(ans) &&
                 chosen == (size_t)t->chosen && p.server_max_window_bits == t->sbits &&
                 p.client_max_window_bits == t->cbits;
        if (!ok)
            printf("    case %zu: cfg \"%s\" offers \"%s\": rc %s, answer \"%s\", s=%d c=%d\n", i,
                   t->cfg, t->offers, dx_err_name(rc), rc == 0 ? ans : "", p.server_max_window_bits,
                   p.client_max_window_bits);
        CHECK(ok);
        if (rc == 0) {
            /* the answer is valid §9.1 and a client that offered the same accepts it */
            exts a;
            CHECK_RC(parse_exts(ans, &a), 0);
        }
    }
}

TEST(rfc7692_7_1_server_applies_no_context_takeover_to_the_right_side) {
    exts x;
    REQUIRE(parse_exts("permessage-deflate; server_no_context_takeover", &x) == 0);
    dx_deflate_config cfg = cfg_of("C");
    dx_deflate_params p;
    char ans[128];
    size_t len;
    CHECK_RC(dx_deflate_accept(&cfg, x.e, x.n, &p, NULL, ans, sizeof ans, &len), 0);
    CHECK(p.server_no_context_takeover && p.client_no_context_takeover);
    /* too small a buffer: the length needed */
    CHECK_RC(dx_deflate_accept(&cfg, x.e, x.n, &p, NULL, ans, 10, &len), DX_ENOSPACE);
    CHECK_EQ_INT(len, strlen("permessage-deflate; server_no_context_takeover; "
                             "client_no_context_takeover; server_max_window_bits=11"));
    dx_deflate_config bad = {.server_max_window_bits = 16};
    CHECK_RC(dx_deflate_accept(&bad, x.e, x.n, &p, NULL, ans, sizeof ans, &len), DX_EINVAL);
}

TEST(rfc7692_7_1_every_malformed_offer_is_refused) {
    static const char *const bad[] = {
        "permessage-deflate; foo",
        "permessage-deflate; foo=1",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
        "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
        "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
        "permessage-deflate; client_max_window_bits; client_max_window_bits",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; client_no_context_takeover=true",
        "permessage-deflate; server_no_context_takeover=\"x\"",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=0",
        "permessage-deflate; server_max_window_bits=08",
        "permessage-deflate; server_max_window_bits=010",
        "permessage-deflate; server_max_window_bits=+9",
        "permessage-deflate; server_max_window_bits=-9",
        "permessage-deflate; server_max_window_bits=9.0",
        "permessage-deflate; server_max_window_bits=0x9",
        "permessage-deflate; server_max_window_bits=1a",
        "permessage-deflate; server_max_window_bits=99",
        "permessage-deflate; server_max_window_bits=\"16\"",
        "permessage-deflate; client_max_window_bits=7",
        "permessage-deflate; client_max_window_bits=16",
        "permessage-deflate; client_max_window_bits=09",
        "permessage-deflate; client_max_window_bits=\"8 \"",
        "permessage-deflate; client_max_window_bits=100000000000000000009",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        exts x;
        if (parse_exts(bad[i], &x) != 0)
            continue; /* refused by the §9.1 grammar already: also fine */
        REQUIRE(x.n == 1);
        dx_deflate_params p;
        bool cb;
        int rc1 = dx_deflate_parse_offer(&x.e[0], &p, &cb);
        char ans[128];
        size_t len;
        int rc2 = dx_deflate_accept(NULL, x.e, x.n, &p, NULL, ans, sizeof ans, &len);
        if (rc1 != DX_EDEFLATE_BAD_OFFER || rc2 != DX_EDEFLATE_NONE)
            printf("    offer \"%s\": %s / %s\n", bad[i], dx_err_name(rc1), dx_err_name(rc2));
        CHECK_RC(rc1, DX_EDEFLATE_BAD_OFFER);
        CHECK_RC(rc2, DX_EDEFLATE_NONE);
    }
    /* not permessage-deflate at all */
    exts x;
    REQUIRE(parse_exts("permessage-deflatex", &x) == 0);
    CHECK_RC(dx_deflate_parse_offer(&x.e[0], NULL, NULL), DX_EDEFLATE_NONE);
    /* valid: every parameter once, client_max_window_bits bare */
    REQUIRE(parse_exts("permessage-deflate; server_no_context_takeover; client_no_context_takeover;"
                       " server_max_window_bits=8; client_max_window_bits",
                       &x) == 0);
    dx_deflate_params p;
    bool cb = false;
    CHECK_RC(dx_deflate_parse_offer(&x.e[0], &p, &cb), 0);
    CHECK(cb && p.server_no_context_takeover && p.client_no_context_takeover);
    CHECK(p.server_max_window_bits == 8 && p.client_max_window_bits == 15);
}

TEST(rfc7692_7_1_client_writes_its_offer) {
    char out[256];
    size_t len;
    /* §7.1.2.2: client_max_window_bits is always offered; bare by default (as
     * browsers offer it), with the value only when one is configured */
    static const char *const offers[][2] = {
        {"", "permessage-deflate; client_max_window_bits"},
        {"c11", "permessage-deflate; client_max_window_bits=11"},
        {"c8", "permessage-deflate; client_max_window_bits=8"},
        {"c15", "permessage-deflate; client_max_window_bits=15"},
        {"S", "permessage-deflate; server_no_context_takeover; client_max_window_bits"},
        {"Cs12", "permessage-deflate; client_no_context_takeover; server_max_window_bits=12; "
                 "client_max_window_bits"},
        {"s15", "permessage-deflate; client_max_window_bits"},
    };
    for (size_t i = 0; i < ARRAY_LEN(offers); i++) {
        dx_deflate_config c = cfg_of(offers[i][0]);
        CHECK_RC(dx_deflate_write_offer(&c, out, sizeof out, &len), 0);
        if (strcmp(out, offers[i][1]) != 0)
            printf("    cfg \"%s\": offer \"%s\"\n", offers[i][0], out);
        CHECK(strcmp(out, offers[i][1]) == 0 && len == strlen(out));
    }
    CHECK_RC(dx_deflate_write_offer(NULL, out, sizeof out, &len), 0);
    CHECK(strcmp(out, "permessage-deflate; client_max_window_bits") == 0);
    dx_deflate_config c = cfg_of("SCs10c15");
    CHECK_RC(dx_deflate_write_offer(&c, out, sizeof out, &len), 0);
    CHECK(strcmp(out, "permessage-deflate; server_no_context_takeover; client_no_context_takeover;"
                      " server_max_window_bits=10; client_max_window_bits=15") == 0);
    CHECK_EQ_INT(len, strlen(out));
    CHECK_RC(dx_deflate_write_offer(&c, out, 5, &len), DX_ENOSPACE);
    CHECK_EQ_INT(len, strlen("permessage-deflate; server_no_context_takeover; "
                             "client_no_context_takeover; server_max_window_bits=10; "
                             "client_max_window_bits=15"));
    c.client_max_window_bits = 7;
    CHECK_RC(dx_deflate_write_offer(&c, out, sizeof out, &len), DX_EINVAL);
    /* our own offer is one our server accepts */
    exts x;
    c = cfg_of("s9c9");
    CHECK_RC(dx_deflate_write_offer(&c, out, sizeof out, &len), 0);
    REQUIRE(parse_exts(out, &x) == 0);
    dx_deflate_params p;
    char ans[128];
    CHECK_RC(dx_deflate_accept(NULL, x.e, x.n, &p, NULL, ans, sizeof ans, &len), 0);
    CHECK(p.server_max_window_bits == 9 && p.client_max_window_bits == 9);
    exts a;
    REQUIRE(parse_exts(ans, &a) == 0);
    dx_deflate_params q;
    CHECK_RC(dx_deflate_check_answer(&c, a.e, a.n, &q), 0);
    CHECK(memcmp(&p, &q, sizeof p) == 0);
}

typedef struct answer_case {
    const char *cfg;
    const char *answer;
    int rc;
    int sbits, cbits;
    bool snct, cnct;
} answer_case;

TEST(rfc7692_7_1_client_validates_the_answer) {
    static const answer_case cases[] = {
        {"", "permessage-deflate", 0, 15, 11, false, false},
        {"", "permessage-deflate; server_max_window_bits=10; client_max_window_bits=9", 0, 10, 9,
         false, false},
        {"", "permessage-deflate; server_no_context_takeover; client_no_context_takeover", 0, 15,
         11, true, true},
        {"C", "permessage-deflate", 0, 15, 11, false, true},
        {"c15", "permessage-deflate; client_max_window_bits=8", 0, 15, 8, false, false},
        {"", "foo, permessage-deflate", 0, 15, 11, false, false},
        {"", "foo", DX_EDEFLATE_NONE, 0, 0, false, false},
        {"", "permessage-deflate, permessage-deflate", DX_EDEFLATE_BAD_ANSWER, 0, 0, false, false},
        {"", "permessage-deflate; client_max_window_bits", DX_EDEFLATE_BAD_ANSWER, 0, 0, false,
         false},
        {"", "permessage-deflate; client_max_window_bits=12", 0, 15, 11, false, false},
        {"", "permessage-deflate; server_max_window_bits", DX_EDEFLATE_BAD_ANSWER, 0, 0, false,
         false},
        {"", "permessage-deflate; server_max_window_bits=16", DX_EDEFLATE_BAD_ANSWER, 0, 0, false,
         false},
        {"", "permessage-deflate; server_max_window_bits=08", DX_EDEFLATE_BAD_ANSWER, 0, 0, false,
         false},
        {"", "permessage-deflate; foo", DX_EDEFLATE_BAD_ANSWER, 0, 0, false, false},
        {"", "permessage-deflate; server_no_context_takeover=1", DX_EDEFLATE_BAD_ANSWER, 0, 0,
         false, false},
        {"", "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
         DX_EDEFLATE_BAD_ANSWER, 0, 0, false, false},
        {"s10", "permessage-deflate", DX_EDEFLATE_BAD_ANSWER, 0, 0, false, false},
        {"s10", "permessage-deflate; server_max_window_bits=12", DX_EDEFLATE_BAD_ANSWER, 0, 0,
         false, false},
        {"s10", "permessage-deflate; server_max_window_bits=10", 0, 10, 11, false, false},
        {"s10", "permessage-deflate; server_max_window_bits=8", 0, 8, 11, false, false},
        {"S", "permessage-deflate", DX_EDEFLATE_BAD_ANSWER, 0, 0, false, false},
        {"S", "permessage-deflate; server_no_context_takeover", 0, 15, 11, true, false},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        const answer_case *t = &cases[i];
        exts x;
        REQUIRE(parse_exts(t->answer, &x) == 0);
        dx_deflate_config cfg = cfg_of(t->cfg);
        dx_deflate_params p;
        memset(&p, 0, sizeof p);
        int rc = dx_deflate_check_answer(&cfg, x.e, x.n, &p);
        bool ok = rc == t->rc;
        if (ok && rc == 0)
            ok = p.server_max_window_bits == t->sbits && p.client_max_window_bits == t->cbits &&
                 p.server_no_context_takeover == t->snct && p.client_no_context_takeover == t->cnct;
        if (!ok)
            printf("    case %zu: cfg \"%s\" answer \"%s\": %s s=%d c=%d\n", i, t->cfg, t->answer,
                   dx_err_name(rc), p.server_max_window_bits, p.client_max_window_bits);
        CHECK(ok);
    }
}

/* The window our compressor uses with @cfg's client_max_window_bits (0: default)
 * when the server answers @answered (0: no client_max_window_bits, i.e. 15). */
static int client_window(int configured, int answered) {
    int own = configured ? configured : DX_DEFLATE_DEFAULT_WINDOW_BITS;
    int wire = answered ? answered : 15;
    return own < wire ? own : wire;
}

TEST(rfc7692_7_1_2_2_client_accepts_any_client_window_the_server_answers) {
    /* A server may answer any client_max_window_bits 8..15, even above the value
     * we offered (common servers answer 15); we compress within the smaller of
     * ours and the answer's, which its inflater (using the answer's) accepts. */
    static const int configured[] = {0, 8, 9, 11, 12, 15};
    for (size_t i = 0; i < ARRAY_LEN(configured); i++) {
        dx_deflate_config cfg = {.client_max_window_bits = (uint8_t)configured[i]};
        for (int ans = 7; ans <= 15; ans++) { /* 7: the parameter is absent */
            char answer[128] = "permessage-deflate";
            if (ans != 7)
                snprintf(answer, sizeof answer, "permessage-deflate; client_max_window_bits=%d",
                         ans);
            int answered = ans == 7 ? 0 : ans;
            exts x;
            REQUIRE(parse_exts(answer, &x) == 0);
            dx_deflate_params p;
            memset(&p, 0, sizeof p);
            int rc = dx_deflate_check_answer(&cfg, x.e, x.n, &p);
            int want = client_window(configured[i], answered);
            bool ok = rc == 0 && p.client_max_window_bits == want &&
                      p.server_max_window_bits == 15 && !p.server_no_context_takeover &&
                      !p.client_no_context_takeover;
            dx_deflate *d = NULL;
            if (ok) { /* the codec compresses within that window */
                ok = dx_deflate_create(&d, &p, false, &cfg, 0, NULL) == 0 &&
                     dx_deflate_window_bits(d) == want;
                dx_deflate_destroy(d);
            }
            if (!ok)
                printf("    configured %d, answer \"%s\": %s, client window %d (want %d)\n",
                       configured[i], answer, dx_err_name(rc), p.client_max_window_bits, want);
            CHECK(ok);
        }
    }
    /* with the other parameters, as Autobahn 13.4.x/13.6.x answer */
    static const answer_case with_others[] = {
        {"", "permessage-deflate; client_no_context_takeover; client_max_window_bits=15", 0, 15, 11,
         false, true},
        {"c9", "permessage-deflate; client_no_context_takeover; client_max_window_bits=15", 0, 15,
         9, false, true},
        {"", "permessage-deflate; server_no_context_takeover; client_max_window_bits=\"15\"", 0, 15,
         11, true, false},
        {"s10c10", "permessage-deflate; server_max_window_bits=10; client_max_window_bits=14", 0,
         10, 10, false, false},
        {"SC", "permessage-deflate; server_no_context_takeover; client_max_window_bits=12", 0, 15,
         11, true, true},
    };
    /* still a handshake failure: no value, a value outside 8..15 or malformed, a
     * repeated parameter (for a default and an explicit offer alike) */
    static const char *const bad[] = {
        "permessage-deflate; client_max_window_bits=16",
        "permessage-deflate; client_max_window_bits=7",
        "permessage-deflate; client_max_window_bits=0",
        "permessage-deflate; client_max_window_bits=08",
        "permessage-deflate; client_max_window_bits=015",
        "permessage-deflate; client_max_window_bits=+9",
        "permessage-deflate; client_max_window_bits=\"16\"",
        "permessage-deflate; client_max_window_bits=ten",
        "permessage-deflate; client_max_window_bits",
        "permessage-deflate; client_max_window_bits=\"\"",
        "permessage-deflate; client_max_window_bits=15; client_max_window_bits=15",
        "permessage-deflate; client_max_window_bits=9; client_max_window_bits=10",
        "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
    };
    for (size_t i = 0; i < ARRAY_LEN(with_others); i++) {
        const answer_case *t = &with_others[i];
        exts x;
        REQUIRE(parse_exts(t->answer, &x) == 0);
        dx_deflate_config cfg = cfg_of(t->cfg);
        dx_deflate_params p;
        memset(&p, 0, sizeof p);
        int rc = dx_deflate_check_answer(&cfg, x.e, x.n, &p);
        bool ok = rc == 0 && p.server_max_window_bits == t->sbits &&
                  p.client_max_window_bits == t->cbits && p.server_no_context_takeover == t->snct &&
                  p.client_no_context_takeover == t->cnct;
        if (!ok)
            printf("    cfg \"%s\" answer \"%s\": %s s=%d c=%d\n", t->cfg, t->answer,
                   dx_err_name(rc), p.server_max_window_bits, p.client_max_window_bits);
        CHECK(ok);
    }
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        exts x;
        if (parse_exts(bad[i], &x) != 0)
            continue; /* refused by the §9.1 grammar already: also a failure */
        for (size_t k = 0; k < ARRAY_LEN(configured); k++) {
            dx_deflate_config cfg = {.client_max_window_bits = (uint8_t)configured[k]};
            dx_deflate_params p;
            int rc = dx_deflate_check_answer(&cfg, x.e, x.n, &p);
            if (rc != DX_EDEFLATE_BAD_ANSWER)
                printf("    configured %d, answer \"%s\": %s\n", configured[k], bad[i],
                       dx_err_name(rc));
            CHECK_RC(rc, DX_EDEFLATE_BAD_ANSWER);
        }
    }
}

TEST(rfc7692_7_1_2_2_a_client_window_below_the_agreed_one_inflates_on_the_server) {
    /* The client compresses within its own window (configured, or the default
     * 11) while the server, having answered a larger client_max_window_bits,
     * inflates with that larger window. Every message must come through, with
     * and without context takeover, and also through an inflater of exactly the
     * client's window (output in 256-byte pieces, so zlib cannot reach further
     * back through its output buffer): the compressor stays within its own. */
    static const int cases[][2] = {/* configured (0: default), answered (0: absent) */
                                   {0, 15}, {0, 0},   {0, 13},  {9, 15},
                                   {8, 15}, {10, 12}, {11, 14}, {12, 15}};
    static const size_t sizes[] = {50000, 3000, 3000, 100, 0, 70000};
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        for (int cnct = 0; cnct < 2; cnct++) {
            int configured = cases[i][0], answered = cases[i][1];
            int own = client_window(configured, answered);
            int agreed = answered ? answered : 15;
            dx_deflate_config cfg = {.client_max_window_bits = (uint8_t)configured};
            char answer[128];
            snprintf(answer, sizeof answer, "permessage-deflate%s",
                     cnct ? "; client_no_context_takeover" : "");
            if (answered) {
                size_t n = strlen(answer);
                snprintf(answer + n, sizeof answer - n, "; client_max_window_bits=%d", answered);
            }
            exts x;
            REQUIRE(parse_exts(answer, &x) == 0);
            dx_deflate_params cp;
            REQUIRE(dx_deflate_check_answer(&cfg, x.e, x.n, &cp) == 0);
            CHECK_EQ_INT(cp.client_max_window_bits, own);
            dx_deflate_params sp = params_of(15, agreed, false, cnct); /* the server's view */
            dx_deflate_params np = params_of(15, own, false, cnct);    /* exactly ours */
            dx_deflate *c = make(&cp, false, 0), *s = make(&sp, true, 0), *n = make(&np, true, 0);
            /* a prepared message may go out in place of our output: its window
             * (ours) is within what the server inflates with */
            CHECK(dx_deflate_window_bits(c) == own && own <= agreed);
            for (size_t k = 0; k < ARRAY_LEN(sizes); k++) {
                size_t len = sizes[k];
                uint8_t *msg = malloc(len ? len : 1);
                fill(msg, len, k != 3);
                buf z = {0}, back = {0}, back2 = {0};
                CHECK_RC(compress_msg(c, msg, len, dx_all_splits[k % 3], 0, &z), 0);
                CHECK_RC(inflate_msg(s, z.p, z.len, DX_SPLIT_RANDOM, 0, &back), 0);
                CHECK(back.len == len && (len == 0 || memcmp(back.p, msg, len) == 0));
                CHECK_RC(inflate_msg(n, z.p, z.len, DX_SPLIT_WHOLE, 256, &back2), 0);
                CHECK(back2.len == len && (len == 0 || memcmp(back2.p, msg, len) == 0));
                free(z.p);
                free(back.p);
                free(back2.p);
                free(msg);
            }
            /* a prepared form (a fresh server-side compressor with our window, no
             * context) sent in place of our output, then our own again */
            dx_deflate_params fp = params_of(dx_deflate_window_bits(c), 15, true, false);
            dx_deflate *f = make(&fp, true, 0);
            uint8_t msg[20000];
            fill(msg, sizeof msg, true);
            buf z = {0}, back = {0}, z2 = {0}, back2 = {0};
            CHECK_RC(compress_msg(f, msg, sizeof msg, DX_SPLIT_WHOLE, 0, &z), 0);
            CHECK_RC(inflate_msg(s, z.p, z.len, DX_SPLIT_WHOLE, 0, &back), 0);
            CHECK(back.len == sizeof msg && memcmp(back.p, msg, sizeof msg) == 0);
            CHECK_RC(dx_deflate_reset_compressor(c), 0);
            CHECK_RC(compress_msg(c, msg, sizeof msg, DX_SPLIT_RANDOM, 0, &z2), 0);
            CHECK_RC(inflate_msg(s, z2.p, z2.len, DX_SPLIT_RANDOM, 0, &back2), 0);
            CHECK(back2.len == sizeof msg && memcmp(back2.p, msg, sizeof msg) == 0);
            free(z.p);
            free(back.p);
            free(z2.p);
            free(back2.p);
            dx_deflate_destroy(f);
            dx_deflate_destroy(c);
            dx_deflate_destroy(s);
            dx_deflate_destroy(n);
        }
    }
}

TEST(rfc7692_negotiated_params_work_end_to_end) {
    /* offer -> accept -> check_answer -> both codecs agree on the wire */
    static const char *const specs[][2] = {{"", ""},     {"s9c8", "c9"},   {"SC", "s10c10"},
                                           {"c12", "S"}, {"s8c8", "s8c8"}, {"", "c10"},
                                           {"c9", ""},   {"c13", "c14"}};
    for (size_t i = 0; i < ARRAY_LEN(specs); i++) {
        dx_deflate_config cc = cfg_of(specs[i][0]), sc = cfg_of(specs[i][1]);
        char offer[256], ans[256];
        size_t len;
        REQUIRE(dx_deflate_write_offer(&cc, offer, sizeof offer, &len) == 0);
        exts o, a;
        REQUIRE(parse_exts(offer, &o) == 0);
        dx_deflate_params sp, cp;
        REQUIRE(dx_deflate_accept(&sc, o.e, o.n, &sp, NULL, ans, sizeof ans, &len) == 0);
        REQUIRE(parse_exts(ans, &a) == 0);
        CHECK_RC(dx_deflate_check_answer(&cc, a.e, a.n, &cp), 0);
        CHECK(sp.server_max_window_bits == cp.server_max_window_bits);
        /* the client compresses within its own window when the server allows
         * more (the server inflates with what it allows) */
        CHECK_EQ_INT(cp.client_max_window_bits,
                     client_window(cc.client_max_window_bits, sp.client_max_window_bits));
        CHECK(sp.server_no_context_takeover == cp.server_no_context_takeover);
        CHECK(!sp.client_no_context_takeover || cp.client_no_context_takeover);
        dx_deflate *c = NULL, *s = NULL;
        REQUIRE(dx_deflate_create(&c, &cp, false, &cc, 0, NULL) == 0);
        REQUIRE(dx_deflate_create(&s, &sp, true, &sc, 0, NULL) == 0);
        uint8_t msg[50000];
        fill(msg, sizeof msg, true);
        for (int m = 0; m < 3; m++) {
            buf z = {0}, back = {0}, z2 = {0}, back2 = {0};
            CHECK_RC(compress_msg(c, msg, sizeof msg, DX_SPLIT_RANDOM, 0, &z), 0);
            CHECK_RC(inflate_msg(s, z.p, z.len, DX_SPLIT_RANDOM, 0, &back), 0);
            CHECK(back.len == sizeof msg && memcmp(back.p, msg, sizeof msg) == 0);
            CHECK_RC(compress_msg(s, msg, sizeof msg, DX_SPLIT_RANDOM, 0, &z2), 0);
            CHECK_RC(inflate_msg(c, z2.p, z2.len, DX_SPLIT_RANDOM, 0, &back2), 0);
            CHECK(back2.len == sizeof msg && memcmp(back2.p, msg, sizeof msg) == 0);
            free(z.p);
            free(back.p);
            free(z2.p);
            free(back2.p);
        }
        dx_deflate_destroy(c);
        dx_deflate_destroy(s);
    }
}
