/*
 * Internal: the per-ISA variants behind dx_mask/dx_mask_copy (mask.c) and
 * dx_utf8_feed (utf8.c), and how to ask which ones this CPU can run. The public
 * functions pick the fastest supported variant once, at first use; tests, fuzzers
 * and benches call the variants directly to compare them. Every variant gives
 * identical results: the same bytes for masking, the same verdict for every call
 * of a chunked UTF-8 stream.
 */
#ifndef DX_PROTO_SIMD_H
#define DX_PROTO_SIMD_H

#include "duplex/frame.h"
#include "duplex/utf8.h"

/* -DDX_NO_SIMD builds only the portable code, as on a CPU other than x86; it
 * lets that path be built and tested on x86 too. */
#if (defined(__x86_64__) || defined(__i386__)) && !defined(DX_NO_SIMD)
#define DX__SIMD_X86 1
#else
#define DX__SIMD_X86 0
#endif

/* Variant bits for dx__simd_supported()/dx__simd_selected(). */
#define DX__SIMD_SCALAR 1u /* word-at-a-time C: every CPU */
#define DX__SIMD_SSE2 2u   /* x86 with SSE2 */
#define DX__SIMD_AVX2 4u   /* x86 with AVX2 (and an OS that saves YMM state) */

/* Masking: @dst may equal @src (in place) but must not otherwise overlap. */
typedef void (*dx__mask_fn)(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t key[4],
                            size_t key_pos);
/* Incremental UTF-8 validation with the contract of dx_utf8_feed. */
typedef bool (*dx__utf8_fn)(dx_utf8_state *s, const uint8_t *buf, size_t len);

void dx__mask_scalar(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t key[4],
                     size_t key_pos);
bool dx__utf8_feed_scalar(dx_utf8_state *s, const uint8_t *buf, size_t len);

#if DX__SIMD_X86
void dx__mask_sse2(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t key[4],
                   size_t key_pos);
void dx__mask_avx2(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t key[4],
                   size_t key_pos);
bool dx__utf8_feed_sse2(dx_utf8_state *s, const uint8_t *buf, size_t len);
bool dx__utf8_feed_avx2(dx_utf8_state *s, const uint8_t *buf, size_t len);
#endif

/* Bit set of the DX__SIMD_* variants this build and CPU can run (SCALAR always). */
unsigned dx__simd_supported(void);

/* The single DX__SIMD_* variant that dx_mask and dx_utf8_feed use: the best supported. */
unsigned dx__simd_selected(void);

/* One variant, for code that wants to run them all. */
typedef struct dx__simd_variant {
    const char *name;      /* "scalar", "sse2", "avx2" */
    unsigned isa;          /* its DX__SIMD_* bit */
    dx__mask_fn mask;      /* masking variant */
    dx__utf8_fn utf8_feed; /* UTF-8 validation variant */
} dx__simd_variant;

/*
 * Fill @out with the variants this CPU supports, scalar first, fastest last, and
 * return how many (1..3). The names are static strings.
 */
size_t dx__simd_variants(dx__simd_variant out[3]);

#endif /* DX_PROTO_SIMD_H */
