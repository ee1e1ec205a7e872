/* Tests for src/proto/mask.c: payload masking (RFC 6455 §5.3), every variant. */
#include "proto/simd.h"
#include "test.h"

/* The obvious definition, byte by byte (§5.3: j = i MOD 4). */
static void ref_mask(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t key[4],
                     size_t pos) {
    for (size_t i = 0; i < len; i++)
        dst[i] = (uint8_t)(src[i] ^ key[(pos + i) % 4]);
}

static void fill_random(uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)dx_test_rand();
}

static dx__simd_variant variants[3];
static size_t num_variants;

static void load_variants(void) {
    num_variants = dx__simd_variants(variants);
}

/* §5.7: a single-frame masked text message containing "Hello". */
static const uint8_t hello_frame[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                      0x7f, 0x9f, 0x4d, 0x51, 0x58};

TEST(rfc6455_5_7_masked_hello_unmasks_in_place) {
    uint8_t buf[sizeof hello_frame];
    memcpy(buf, hello_frame, sizeof buf);
    const uint8_t *key = hello_frame + 2;
    dx_mask(buf + 6, 5, key, 0);
    CHECK_MEM(buf + 6, "Hello", 5);
    CHECK_MEM(buf, hello_frame, 6); /* header untouched */
}

TEST(rfc6455_5_7_masked_hello_unmasks_by_copy_and_masks_back) {
    uint8_t out[5], back[5];
    const uint8_t *key = hello_frame + 2;
    dx_mask_copy(out, hello_frame + 6, 5, key, 0);
    CHECK_MEM(out, "Hello", 5);
    dx_mask_copy(back, (const uint8_t *)"Hello", 5, key, 0);
    CHECK_MEM(back, hello_frame + 6, 5);
}

TEST(rfc6455_5_7_masked_hello_every_variant) {
    load_variants();
    REQUIRE(num_variants >= 1);
    CHECK(strcmp(variants[0].name, "scalar") == 0);
    for (size_t v = 0; v < num_variants; v++) {
        uint8_t buf[5];
        memcpy(buf, hello_frame + 6, 5);
        variants[v].mask(buf, buf, 5, hello_frame + 2, 0);
        CHECK_MEM(buf, "Hello", 5);
    }
}

TEST(rfc6455_5_3_payload_in_pieces_continues_at_key_pos) {
    /* Unmask "Hello" one piece at a time: key_pos is the count of bytes done. */
    const uint8_t *key = hello_frame + 2;
    for (size_t cut = 0; cut <= 5; cut++) {
        uint8_t buf[5];
        memcpy(buf, hello_frame + 6, 5);
        dx_mask(buf, cut, key, 0);
        dx_mask(buf + cut, 5 - cut, key, cut);
        CHECK_MEM(buf, "Hello", 5);
    }
    /* Byte by byte, with key positions far past 4: only pos % 4 matters. */
    uint8_t buf[5];
    memcpy(buf, hello_frame + 6, 5);
    for (size_t i = 0; i < 5; i++)
        dx_mask(buf + i, 1, key, 4000 + i);
    CHECK_MEM(buf, "Hello", 5);
}

TEST(rfc6455_5_3_key_pos_wraps_at_size_max) {
    /* 2^64 is a multiple of 4, so the position sequence stays consistent when
     * pos + i wraps around. */
    static const uint8_t key[4] = {1, 2, 4, 8};
    uint8_t src[300], want[300], got[300];
    fill_random(src, sizeof src);
    size_t pos = SIZE_MAX - 5; /* ≡ 2 (mod 4) */
    ref_mask(want, src, sizeof src, key, 2);
    load_variants();
    for (size_t v = 0; v < num_variants; v++) {
        variants[v].mask(got, src, sizeof src, key, pos);
        CHECK_MEM(got, want, sizeof want);
    }
}

TEST(rfc6455_5_3_zero_length_touches_nothing) {
    static const uint8_t key[4] = {0xde, 0xad, 0xbe, 0xef};
    dx_mask(NULL, 0, key, 3);
    dx_mask_copy(NULL, NULL, 0, key, 1);
    uint8_t b = 0x5a;
    load_variants();
    for (size_t v = 0; v < num_variants; v++)
        variants[v].mask(&b, &b, 0, key, 2);
    CHECK_EQ_INT(b, 0x5a);
}

/*
 * Every variant against the reference for every length 0..300, every key
 * position 0..3 and every source and destination alignment 0..63, both in place
 * and copying. Canary bytes around the destination catch stray writes.
 */
TEST(rfc6455_5_3_every_variant_matches_reference_all_lengths_alignments) {
    load_variants();
    enum { MAXLEN = 300, ALIGNS = 64, PAD = 64 };
    static uint8_t srcbuf[MAXLEN + ALIGNS + 2 * PAD], dstbuf[MAXLEN + ALIGNS + 2 * PAD];
    static uint8_t want[MAXLEN], inplace[MAXLEN + ALIGNS + 2 * PAD];
    long bad = 0;
    for (size_t len = 0; len <= MAXLEN; len++) {
        for (size_t pos = 0; pos < 4; pos++) {
            uint8_t key[4];
            fill_random(key, 4);
            for (size_t al = 0; al < ALIGNS; al++) {
                size_t dal = (al * 7 + len) % ALIGNS; /* dst alignment independent of src */
                fill_random(srcbuf, sizeof srcbuf);
                uint8_t *src = srcbuf + PAD + al;
                ref_mask(want, src, len, key, pos);
                for (size_t v = 0; v < num_variants; v++) {
                    /* copy */
                    memset(dstbuf, 0xA5, sizeof dstbuf);
                    uint8_t *dst = dstbuf + PAD + dal;
                    variants[v].mask(dst, src, len, key, pos);
                    if (memcmp(dst, want, len) != 0)
                        bad++;
                    for (size_t i = 0; i < sizeof dstbuf; i++)
                        if ((dstbuf + i < dst || dstbuf + i >= dst + len) && dstbuf[i] != 0xA5)
                            bad++;
                    /* in place, at the source alignment */
                    memcpy(inplace, srcbuf, sizeof inplace);
                    variants[v].mask(inplace + PAD + al, inplace + PAD + al, len, key, pos);
                    if (memcmp(inplace + PAD + al, want, len) != 0)
                        bad++;
                    if (memcmp(inplace, srcbuf, PAD + al) != 0 ||
                        memcmp(inplace + PAD + al + len, src + len,
                               sizeof inplace - PAD - al - len) != 0)
                        bad++;
                }
            }
        }
    }
    CHECK_EQ_INT(bad, 0);
}

TEST(rfc6455_5_3_public_entry_points_match_reference) {
    uint8_t src[4096 + 64], want[4096], got[4096 + 64];
    for (int round = 0; round < 2000; round++) {
        size_t len = (size_t)(dx_test_rand() % 4097);
        size_t al = (size_t)(dx_test_rand() % 64);
        size_t pos = (size_t)dx_test_rand();
        uint8_t key[4];
        fill_random(key, 4);
        fill_random(src, sizeof src);
        ref_mask(want, src + al, len, key, pos);
        dx_mask_copy(got + (63 - al), src + al, len, key, pos);
        CHECK_MEM(got + (63 - al), want, len);
        dx_mask(src + al, len, key, pos);
        CHECK_MEM(src + al, want, len);
    }
}

/* The public entry points take small payloads (below 32 bytes) on their own path:
 * every length around it, every key position and alignment, both entry points. */
TEST(rfc6455_5_3_public_entry_points_small_payloads_exhaustive) {
    uint8_t src[64 + 16], want[64], got[64 + 16], buf[64 + 16];
    uint8_t key[4];
    fill_random(key, 4);
    long errs = 0;
    for (size_t len = 0; len <= 40; len++)
        for (size_t pos = 0; pos < 8; pos++)
            for (size_t al = 0; al < 16; al++) {
                size_t kp = pos < 4 ? pos : SIZE_MAX - 7 + pos; /* also near the wrap */
                fill_random(src, sizeof src);
                ref_mask(want, src + al, len, key, kp);
                dx_mask_copy(got + al, src + al, len, key, kp);
                errs += len && memcmp(got + al, want, len) != 0;
                memcpy(buf, src, sizeof buf);
                dx_mask(buf + al, len, key, kp);
                errs += len && memcmp(buf + al, want, len) != 0;
                /* nothing around the payload is touched */
                errs += memcmp(buf, src, al) != 0;
                errs += memcmp(buf + al + len, src + al + len, sizeof buf - al - len) != 0;
            }
    CHECK_EQ_INT(errs, 0);
}

TEST(rfc6455_5_3_random_pieces_equal_whole) {
    static uint8_t src[70000], whole[70000], pieces[70000];
    load_variants();
    for (int round = 0; round < 40; round++) {
        size_t len = (size_t)(dx_test_rand() % sizeof src);
        uint8_t key[4];
        fill_random(key, 4);
        fill_random(src, len);
        ref_mask(whole, src, len, key, 0);
        for (size_t v = 0; v < num_variants; v++) {
            memcpy(pieces, src, len);
            size_t off = 0;
            while (off < len) {
                size_t n = (size_t)(dx_test_rand() % 1000) + 1;
                if (n > len - off)
                    n = len - off;
                variants[v].mask(pieces + off, pieces + off, n, key, off);
                off += n;
            }
            CHECK_MEM(pieces, whole, len);
        }
    }
}

TEST(rfc6455_5_3_masking_twice_restores) {
    uint8_t src[1000], buf[1000];
    fill_random(src, sizeof src);
    memcpy(buf, src, sizeof buf);
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    dx_mask(buf, sizeof buf, key, 1);
    CHECK(memcmp(buf, src, sizeof buf) != 0);
    dx_mask(buf, sizeof buf, key, 1);
    CHECK_MEM(buf, src, sizeof buf);
}

/* Inputs and outputs that end right before a PROT_NONE page: no variant may read
 * or write a byte past the end, however the tail is handled. */
TEST(rfc6455_5_3_buffers_ending_at_guard_page) {
    load_variants();
    uint8_t data[600], want[600];
    fill_random(data, sizeof data);
    for (size_t len = 0; len <= sizeof data; len += (len < 300 ? 1 : 37)) {
        for (size_t pos = 0; pos < 4; pos++) {
            static const uint8_t key[4] = {0x11, 0x22, 0x44, 0x88};
            ref_mask(want, data, len, key, pos);
            for (size_t v = 0; v < num_variants; v++) {
                uint8_t *src = dx_guard_alloc(data, len);
                uint8_t *dst = dx_guard_alloc(data, len);
                variants[v].mask(dst, src, len, key, pos);
                CHECK_MEM(dst, want, len);
                variants[v].mask(src, src, len, key, pos);
                CHECK_MEM(src, want, len);
                dx_guard_free(src, len);
                dx_guard_free(dst, len);
            }
        }
    }
}

TEST(simd_dispatch_selects_a_supported_variant) {
    unsigned sup = dx__simd_supported();
    unsigned sel = dx__simd_selected();
    CHECK(sup & DX__SIMD_SCALAR);
    CHECK((sup & sel) == sel);
    CHECK(sel == DX__SIMD_SCALAR || sel == DX__SIMD_SSE2 || sel == DX__SIMD_AVX2);
    /* the best one: nothing supported ranks above the selection */
    CHECK((sup & ~(sel | (sel - 1))) == 0);
    load_variants();
    CHECK_EQ_INT(variants[num_variants - 1].isa, sel);
#if defined(__x86_64__) && !defined(DX_NO_SIMD)
    CHECK(sup & DX__SIMD_SSE2); /* baseline on x86-64 */
#endif
}
