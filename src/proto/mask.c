/*
 * Payload masking (RFC 6455 §5.3): octet i of the payload is XORed with octet
 * (i mod 4) of the masking key. A payload can arrive in pieces, so every entry
 * point takes the key position at which the piece starts.
 *
 * Three variants give identical bytes: word-at-a-time C (8 bytes per XOR), SSE2
 * (16) and AVX2 (32). The vector ones are compiled with target attributes, not a
 * global -mavx2, so the library runs on any x86-64; the best one the CPU has is
 * chosen at first use. This file also owns the CPU feature query for utf8.c.
 */
#include "proto/simd.h"

#include "base/internal.h"

#include <stdatomic.h>

#if DX__SIMD_X86
#include <immintrin.h>
#endif

/*
 * The key rotated to start at key position @pos, as the 32-bit word whose bytes in
 * memory order are key[pos], key[pos+1], ... Built in a register: writing the
 * pattern byte by byte and reloading it as a word or vector would stall on store
 * forwarding, which costs more than masking a short payload.
 */
static uint32_t key_word(const uint8_t key[4], size_t pos) {
    uint32_t k;
    memcpy(&k, key, sizeof k);
    unsigned r = (unsigned)(pos & 3) * 8;
    if (r == 0)
        return k;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return k << r | k >> (32 - r);
#else
    return k >> r | k << (32 - r);
#endif
}

static void mask_bytes(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t key[4],
                       size_t pos) {
    for (size_t i = 0; i < len; i++)
        dst[i] = (uint8_t)(src[i] ^ key[(pos + i) & 3]);
}

void dx__mask_scalar(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t key[4],
                     size_t key_pos) {
    size_t i = 0;
    if (len >= 8) {
        /* 8 is a multiple of 4, so one rotated pattern serves every word. memcpy
         * loads and stores keep this free of alignment and aliasing UB; compilers
         * turn them into plain moves. */
        uint64_t k = key_word(key, key_pos);
        k |= k << 32; /* both halves equal: the same in either byte order */
        for (; i + 32 <= len; i += 32) {
            uint64_t w[4];
            memcpy(w, src + i, sizeof w);
            w[0] ^= k;
            w[1] ^= k;
            w[2] ^= k;
            w[3] ^= k;
            memcpy(dst + i, w, sizeof w);
        }
        for (; i + 8 <= len; i += 8) {
            uint64_t w;
            memcpy(&w, src + i, sizeof w);
            w ^= k;
            memcpy(dst + i, &w, sizeof w);
        }
    }
    mask_bytes(dst + i, src + i, len - i, key, key_pos + i);
}

#if DX__SIMD_X86

__attribute__((target("sse2"))) void dx__mask_sse2(uint8_t *dst, const uint8_t *src, size_t len,
                                                   const uint8_t key[4], size_t key_pos) {
    size_t i = 0;
    if (len >= 16) {
        const __m128i k = _mm_set1_epi32((int)key_word(key, key_pos));
        for (; i + 64 <= len; i += 64) {
            __m128i a = _mm_loadu_si128((const void *)(src + i));
            __m128i b = _mm_loadu_si128((const void *)(src + i + 16));
            __m128i c = _mm_loadu_si128((const void *)(src + i + 32));
            __m128i d = _mm_loadu_si128((const void *)(src + i + 48));
            _mm_storeu_si128((void *)(dst + i), _mm_xor_si128(a, k));
            _mm_storeu_si128((void *)(dst + i + 16), _mm_xor_si128(b, k));
            _mm_storeu_si128((void *)(dst + i + 32), _mm_xor_si128(c, k));
            _mm_storeu_si128((void *)(dst + i + 48), _mm_xor_si128(d, k));
        }
        for (; i + 16 <= len; i += 16) {
            __m128i a = _mm_loadu_si128((const void *)(src + i));
            _mm_storeu_si128((void *)(dst + i), _mm_xor_si128(a, k));
        }
    }
    dx__mask_scalar(dst + i, src + i, len - i, key, key_pos + i);
}

__attribute__((target("avx2"))) void dx__mask_avx2(uint8_t *dst, const uint8_t *src, size_t len,
                                                   const uint8_t key[4], size_t key_pos) {
    size_t i = 0;
    if (len >= 256) {
        /* Align the stores: a 32-byte store that splits a cache line costs about
         * twice as much, and big payloads are where that shows. */
        size_t head = (size_t)(-(uintptr_t)dst & 31);
        mask_bytes(dst, src, head, key, key_pos);
        i = head;
    }
    if (len - i >= 32) {
        const __m256i k = _mm256_set1_epi32((int)key_word(key, key_pos + i));
        for (; i + 128 <= len; i += 128) {
            __m256i a = _mm256_loadu_si256((const void *)(src + i));
            __m256i b = _mm256_loadu_si256((const void *)(src + i + 32));
            __m256i c = _mm256_loadu_si256((const void *)(src + i + 64));
            __m256i d = _mm256_loadu_si256((const void *)(src + i + 96));
            _mm256_storeu_si256((void *)(dst + i), _mm256_xor_si256(a, k));
            _mm256_storeu_si256((void *)(dst + i + 32), _mm256_xor_si256(b, k));
            _mm256_storeu_si256((void *)(dst + i + 64), _mm256_xor_si256(c, k));
            _mm256_storeu_si256((void *)(dst + i + 96), _mm256_xor_si256(d, k));
        }
        for (; i + 32 <= len; i += 32) {
            __m256i a = _mm256_loadu_si256((const void *)(src + i));
            _mm256_storeu_si256((void *)(dst + i), _mm256_xor_si256(a, k));
        }
        if (i + 16 <= len) {
            __m128i a = _mm_loadu_si128((const void *)(src + i));
            _mm_storeu_si128((void *)(dst + i), _mm_xor_si128(a, _mm256_castsi256_si128(k)));
            i += 16;
        }
        /* The tail is a sibling call, where gcc does not put the vzeroupper it puts
         * before a return: without it the upper halves stay dirty, and every later
         * SSE instruction (memcpy's, the scalar tail's) pays for the mixed state,
         * measured at about 125 ns a call here. */
        _mm256_zeroupper();
    }
    dx__mask_scalar(dst + i, src + i, len - i, key, key_pos + i);
}

#endif /* DX__SIMD_X86 */

unsigned dx__simd_supported(void) {
    unsigned isa = DX__SIMD_SCALAR;
#if DX__SIMD_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse2"))
        isa |= DX__SIMD_SSE2;
    if (__builtin_cpu_supports("avx2"))
        isa |= DX__SIMD_AVX2;
#endif
    return isa;
}

unsigned dx__simd_selected(void) {
    unsigned isa = dx__simd_supported();
    if (isa & DX__SIMD_AVX2)
        return DX__SIMD_AVX2;
    if (isa & DX__SIMD_SSE2)
        return DX__SIMD_SSE2;
    return DX__SIMD_SCALAR;
}

size_t dx__simd_variants(dx__simd_variant out[3]) {
    unsigned isa = dx__simd_supported();
    size_t n = 0;
    out[n++] = (dx__simd_variant){"scalar", DX__SIMD_SCALAR, dx__mask_scalar, dx__utf8_feed_scalar};
#if DX__SIMD_X86
    if (isa & DX__SIMD_SSE2)
        out[n++] = (dx__simd_variant){"sse2", DX__SIMD_SSE2, dx__mask_sse2, dx__utf8_feed_sse2};
    if (isa & DX__SIMD_AVX2)
        out[n++] = (dx__simd_variant){"avx2", DX__SIMD_AVX2, dx__mask_avx2, dx__utf8_feed_avx2};
#else
    (void)isa;
#endif
    return n;
}

/*
 * Run-time dispatch: the pointer starts at a resolver that picks the variant,
 * stores it and forwards the call. Every thread that races through the resolver
 * stores the same value, and the relaxed atomic makes that race well defined.
 */
static void mask_resolve(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t key[4],
                         size_t key_pos);

static _Atomic(dx__mask_fn) mask_impl = mask_resolve;

static dx__mask_fn mask_pick(void) {
#if DX__SIMD_X86
    switch (dx__simd_selected()) {
    case DX__SIMD_AVX2:
        return dx__mask_avx2;
    case DX__SIMD_SSE2:
        return dx__mask_sse2;
    default:
        break;
    }
#endif
    return dx__mask_scalar;
}

static void mask_resolve(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t key[4],
                         size_t key_pos) {
    dx__mask_fn fn = mask_pick();
    atomic_store_explicit(&mask_impl, fn, memory_order_relaxed);
    fn(dst, src, len, key, key_pos);
}

#define SMALL_MASK_MAX 32 /* below a SIMD variant's first full vector */

/* Up to SMALL_MASK_MAX bytes: words of 8, then 4, then single bytes, with no call
 * through the dispatch. Small frames (chat lines, ticks, acks) are most frames. */
static void mask_small(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t key[4],
                       size_t key_pos) {
    uint32_t k32 = key_word(key, key_pos);
    uint64_t k64 = (uint64_t)k32 | (uint64_t)k32 << 32;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, src + i, sizeof w);
        w ^= k64;
        memcpy(dst + i, &w, sizeof w);
    }
    if (i + 4 <= len) { /* i is a multiple of 8: the key's rotation is unchanged */
        uint32_t w;
        memcpy(&w, src + i, sizeof w);
        w ^= k32;
        memcpy(dst + i, &w, sizeof w);
        i += 4;
    }
    mask_bytes(dst + i, src + i, len - i, key, key_pos + i);
}

void dx_mask(uint8_t *buf, size_t len, const uint8_t key[4], size_t key_pos) {
    if (len == 0)
        return; /* @buf may be NULL */
    if (len < SMALL_MASK_MAX)
        mask_small(buf, buf, len, key, key_pos);
    else
        atomic_load_explicit(&mask_impl, memory_order_relaxed)(buf, buf, len, key, key_pos);
}

void dx_mask_copy(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t key[4],
                  size_t key_pos) {
    if (len == 0)
        return; /* @dst and @src may be NULL */
    if (len < SMALL_MASK_MAX)
        mask_small(dst, src, len, key, key_pos);
    else
        atomic_load_explicit(&mask_impl, memory_order_relaxed)(dst, src, len, key, key_pos);
}
