/* permessage-deflate (RFC 7692): the codec (§7.2). */
#include "deflate_util.h"

#include <time.h>

/* ---- helpers -------------------------------------------------------------------- */

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
