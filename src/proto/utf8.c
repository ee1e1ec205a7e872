/*
 * Incremental UTF-8 validation (RFC 3629 §4, RFC 6455 §8.1).
 *
 * The core is a shift-based DFA: each byte indexes a 64-bit row that packs the
 * next state for every current state, 6 bits apiece, and a state is the shift
 * that selects its field. One load and one shift per byte; the load does not
 * depend on the state, so the loop-carried chain is a single shift. Long runs are
 * split at a character boundary and walked as two independent streams, which
 * doubles the throughput on non-ASCII text.
 *
 * On top of it sit ASCII skips (two words, 16 or 32 bytes at a time) and, with
 * AVX2, a vector validator that checks 32 bytes per step with nibble lookup
 * tables (the "lookup" method of Keiser and Lemire, 2021). All variants report
 * the same verdict for every call.
 */
#include "proto/simd.h"

#include "base/internal.h"

#include <stdatomic.h>
#include <string.h>

#if DX__SIMD_X86
#include <immintrin.h>
#endif

/*
 * DFA states, as shift amounts. S_ACC is 0 so that a zeroed dx_utf8_state is at a
 * character boundary. S_Cn: n continuation bytes (80..BF) still expected. The
 * others constrain the next byte: after E0 it must be A0..BF (no overlong), after
 * ED 80..9F (no surrogate), after F0 90..BF (no overlong), after F4 80..8F (not
 * above U+10FFFF). S_ERR is absorbing.
 */
enum {
    S_ACC = 0,
    S_ERR = 6,
    S_C1 = 12,
    S_C2 = 18,
    S_C3 = 24,
    S_E0 = 30,
    S_ED = 36,
    S_F0 = 42,
    S_F4 = 48,
};

/* clang-format off */
#define F(cur, next) ((uint64_t)(next) << (cur))
/* Every state to S_ERR; rows below replace the fields that go elsewhere. */
#define ALL_ERR                                                                                \
    (F(S_ACC, S_ERR) | F(S_ERR, S_ERR) | F(S_C1, S_ERR) | F(S_C2, S_ERR) | F(S_C3, S_ERR) |      \
     F(S_E0, S_ERR) | F(S_ED, S_ERR) | F(S_F0, S_ERR) | F(S_F4, S_ERR))
/* Replace the S_ERR in field @cur by @next (XOR of two values in one field). */
#define GO(cur, next) F(cur, (uint64_t)(S_ERR ^ (next)))

#define R_ASCII (ALL_ERR ^ GO(S_ACC, S_ACC))
#define R_80_8F                                                                                \
    (ALL_ERR ^ GO(S_C1, S_ACC) ^ GO(S_C2, S_C1) ^ GO(S_C3, S_C2) ^ GO(S_ED, S_C1) ^           \
     GO(S_F4, S_C2))
#define R_90_9F                                                                                \
    (ALL_ERR ^ GO(S_C1, S_ACC) ^ GO(S_C2, S_C1) ^ GO(S_C3, S_C2) ^ GO(S_ED, S_C1) ^           \
     GO(S_F0, S_C2))
#define R_A0_BF                                                                                \
    (ALL_ERR ^ GO(S_C1, S_ACC) ^ GO(S_C2, S_C1) ^ GO(S_C3, S_C2) ^ GO(S_E0, S_C1) ^           \
     GO(S_F0, S_C2))
#define R_BAD ALL_ERR /* C0, C1, F5..FF: never valid */
#define R_C2_DF (ALL_ERR ^ GO(S_ACC, S_C1))
#define R_E0 (ALL_ERR ^ GO(S_ACC, S_E0))
#define R_E1_EF (ALL_ERR ^ GO(S_ACC, S_C2)) /* E1..EC, EE, EF */
#define R_ED (ALL_ERR ^ GO(S_ACC, S_ED))
#define R_F0 (ALL_ERR ^ GO(S_ACC, S_F0))
#define R_F1_F3 (ALL_ERR ^ GO(S_ACC, S_C3))
#define R_F4 (ALL_ERR ^ GO(S_ACC, S_F4))

#define X4(r) r, r, r, r
#define X16(r) X4(r), X4(r), X4(r), X4(r)

static const uint64_t utf8_dfa[256] = {
    X16(R_ASCII), X16(R_ASCII), X16(R_ASCII), X16(R_ASCII), /* 00..3F */
    X16(R_ASCII), X16(R_ASCII), X16(R_ASCII), X16(R_ASCII), /* 40..7F */
    X16(R_80_8F),                                           /* 80..8F */
    X16(R_90_9F),                                           /* 90..9F */
    X16(R_A0_BF), X16(R_A0_BF),                             /* A0..BF */
    R_BAD, R_BAD, X4(R_C2_DF), X4(R_C2_DF), X4(R_C2_DF),    /* C0..CF */
    R_C2_DF, R_C2_DF,                                       /* ... */
    X16(R_C2_DF),                                           /* D0..DF */
    R_E0, X4(R_E1_EF), X4(R_E1_EF), X4(R_E1_EF), R_ED,      /* E0..ED */
    R_E1_EF, R_E1_EF,                                       /* EE..EF */
    R_F0, R_F1_F3, R_F1_F3, R_F1_F3, R_F4,                  /* F0..F4 */
    R_BAD, R_BAD, R_BAD, X4(R_BAD), X4(R_BAD),              /* F5..FF */
};

/* clang-format on */

_Static_assert(S_F4 + 6 <= 64, "every state's field fits in the 64-bit row");

/* Move @at back over at most three continuation bytes, to a character start. */
static inline size_t back_to_lead(const uint8_t *p, size_t at) {
    for (int k = 0; k < 3 && (p[at] & 0xC0) == 0x80; k++)
        at--;
    return at;
}

/*
 * Run the DFA over @n bytes from state @st and return the state after them.
 * Long runs are cut at character starts (backing up over at most three
 * continuation bytes) into two or four pieces walked at once, each after the
 * first starting at S_ACC: the chains are independent, so they overlap in the
 * pipeline. Every piece but the last must end at a boundary for the whole to be
 * valid. If a cut lands inside a run of four continuation bytes, the input is
 * invalid anyway and the piece that starts on a continuation byte says so.
 */
static inline uint32_t dfa_run(uint32_t st, const uint8_t *p, size_t n) {
    uint64_t a = st;
    if (n >= 256) {
        size_t c1 = back_to_lead(p, n / 4), c2 = back_to_lead(p, n / 2);
        size_t c3 = back_to_lead(p, n / 4 * 3);
        const uint8_t *q1 = p + c1, *q2 = p + c2, *q3 = p + c3;
        size_t m = c1; /* the shortest piece: each is n/4 give or take 3 */
        if (c2 - c1 < m)
            m = c2 - c1;
        if (c3 - c2 < m)
            m = c3 - c2;
        if (n - c3 < m)
            m = n - c3;
        uint64_t b = S_ACC, c = S_ACC, d = S_ACC;
        for (size_t i = 0; i < m; i++) {
            a = utf8_dfa[p[i]] >> (a & 63);
            b = utf8_dfa[q1[i]] >> (b & 63);
            c = utf8_dfa[q2[i]] >> (c & 63);
            d = utf8_dfa[q3[i]] >> (d & 63);
        }
        for (size_t i = m; i < c1; i++)
            a = utf8_dfa[p[i]] >> (a & 63);
        for (size_t i = m; i < c2 - c1; i++)
            b = utf8_dfa[q1[i]] >> (b & 63);
        for (size_t i = m; i < c3 - c2; i++)
            c = utf8_dfa[q2[i]] >> (c & 63);
        for (size_t i = m; i < n - c3; i++)
            d = utf8_dfa[q3[i]] >> (d & 63);
        bool joined = ((a | b | c) & 63) == S_ACC;
        return joined ? (uint32_t)(d & 63) : S_ERR;
    }
    if (n >= 64) {
        size_t mid = back_to_lead(p, n / 2);
        const uint8_t *q = p + mid;
        size_t nb = n - mid; /* >= mid */
        uint64_t b = S_ACC;
        size_t i = 0;
        for (; i < mid; i++) {
            a = utf8_dfa[p[i]] >> (a & 63);
            b = utf8_dfa[q[i]] >> (b & 63);
        }
        for (; i < nb; i++)
            b = utf8_dfa[q[i]] >> (b & 63);
        return (a & 63) == S_ACC ? (uint32_t)(b & 63) : S_ERR;
    }
    for (size_t i = 0; i < n; i++)
        a = utf8_dfa[p[i]] >> (a & 63);
    return (uint32_t)(a & 63);
}

/* The shape every variant shares: at a boundary, skip what @skip says is ASCII;
 * then walk a chunk with the DFA. The chunk grows while the skips find nothing
 * (non-ASCII text) and shrinks back when they find ASCII again (mixed text). */
static inline __attribute__((always_inline)) bool
feed_loop(dx_utf8_state *s, const uint8_t *p, size_t n, size_t (*skip)(const uint8_t *, size_t)) {
    uint32_t st = s->state;
    if (st == S_ERR)
        return false;
    size_t i = 0, chunk = 64;
    while (i < n) {
        if (st == S_ACC) {
            size_t k = skip(p + i, n - i);
            i += k;
            if (i == n)
                break;
            chunk = k ? 64 : (chunk < 4096 ? chunk * 2 : chunk);
        }
        size_t m = n - i < chunk ? n - i : chunk;
        st = dfa_run(st, p + i, m);
        i += m;
        if (st == S_ERR)
            break;
    }
    s->state = st;
    return st != S_ERR;
}

/* From @i, skip whole 8-byte words of ASCII: what the block skips leave of a short
 * text (a 20-byte chat message never fills a vector). */
static inline size_t skip_ascii_tail(const uint8_t *p, size_t i, size_t n) {
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, sizeof w);
        if (w & 0x8080808080808080ull)
            break;
    }
    return i;
}

/* Bytes at the start of @p, in whole 16-byte steps then 8-byte ones, that are all
 * ASCII. */
static size_t skip_ascii_words(const uint8_t *p, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        uint64_t w[2];
        memcpy(w, p + i, sizeof w);
        if ((w[0] | w[1]) & 0x8080808080808080ull)
            break;
    }
    return skip_ascii_tail(p, i, n);
}

bool dx__utf8_feed_scalar(dx_utf8_state *s, const uint8_t *buf, size_t len) {
    return feed_loop(s, buf, len, skip_ascii_words);
}

#if DX__SIMD_X86

__attribute__((target("sse2"))) static size_t skip_ascii_sse2(const uint8_t *p, size_t n) {
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m128i a = _mm_loadu_si128((const void *)(p + i));
        __m128i b = _mm_loadu_si128((const void *)(p + i + 16));
        if (_mm_movemask_epi8(_mm_or_si128(a, b)))
            break;
    }
    if (i + 16 <= n && !_mm_movemask_epi8(_mm_loadu_si128((const void *)(p + i))))
        i += 16;
    return skip_ascii_tail(p, i, n);
}

__attribute__((target("sse2"))) bool dx__utf8_feed_sse2(dx_utf8_state *s, const uint8_t *buf,
                                                        size_t len) {
    return feed_loop(s, buf, len, skip_ascii_sse2);
}

__attribute__((target("avx2"))) static size_t skip_ascii_avx2(const uint8_t *p, size_t n) {
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m256i a = _mm256_loadu_si256((const void *)(p + i));
        __m256i b = _mm256_loadu_si256((const void *)(p + i + 32));
        if (_mm256_movemask_epi8(_mm256_or_si256(a, b)))
            break;
    }
    if (i + 32 <= n && !_mm256_movemask_epi8(_mm256_loadu_si256((const void *)(p + i))))
        i += 32;
    return skip_ascii_tail(p, i, n);
}

/*
 * The vector validator. Every byte is checked together with the three before
 * it. Three 16-entry tables, indexed by the high nibble of the previous byte, its
 * low nibble and the high nibble of this byte, give a bit set of the errors each
 * nibble is compatible with; the AND of the three is non-zero exactly when the
 * pair (previous, this) is one of these:
 */
enum {
    TOO_SHORT = 1 << 0,      /* lead followed by ASCII or another lead */
    TOO_LONG = 1 << 1,       /* ASCII followed by a continuation */
    OVERLONG_3 = 1 << 2,     /* E0 80..9F */
    TOO_LARGE = 1 << 3,      /* F4 90..BF, F5..FF 90..BF */
    SURROGATE = 1 << 4,      /* ED A0..BF */
    OVERLONG_2 = 1 << 5,     /* C0..C1 80..BF */
    TOO_LARGE_1000 = 1 << 6, /* F5..FF 80..8F */
    OVERLONG_4 = 1 << 6,     /* F0 80..8F (shares the bit: the nibbles tell them apart) */
    TWO_CONTS = 1 << 7,      /* continuation followed by continuation */
    CARRY = TOO_SHORT | TOO_LONG | TWO_CONTS, /* depend on the high nibbles alone */
};

/* clang-format off */
/* by the high nibble of the previous byte */
static const uint8_t lut_prev_high[16] = {
    TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, /* 0..7 */
    TWO_CONTS, TWO_CONTS, TWO_CONTS, TWO_CONTS,                                     /* 8..B */
    TOO_SHORT | OVERLONG_2,                                                         /* C */
    TOO_SHORT,                                                                      /* D */
    TOO_SHORT | OVERLONG_3 | SURROGATE,                                             /* E */
    TOO_SHORT | TOO_LARGE | TOO_LARGE_1000 | OVERLONG_4,                            /* F */
};

/* by the low nibble of the previous byte */
static const uint8_t lut_prev_low[16] = {
    CARRY | OVERLONG_3 | OVERLONG_2 | OVERLONG_4,  /* x0 */
    CARRY | OVERLONG_2,                            /* x1 */
    CARRY,                                         /* x2 */
    CARRY,                                         /* x3 */
    CARRY | TOO_LARGE,                             /* x4 */
    CARRY | TOO_LARGE | TOO_LARGE_1000,            /* x5 */
    CARRY | TOO_LARGE | TOO_LARGE_1000,            /* x6 */
    CARRY | TOO_LARGE | TOO_LARGE_1000,            /* x7 */
    CARRY | TOO_LARGE | TOO_LARGE_1000,            /* x8 */
    CARRY | TOO_LARGE | TOO_LARGE_1000,            /* x9 */
    CARRY | TOO_LARGE | TOO_LARGE_1000,            /* xA */
    CARRY | TOO_LARGE | TOO_LARGE_1000,            /* xB */
    CARRY | TOO_LARGE | TOO_LARGE_1000,            /* xC */
    CARRY | TOO_LARGE | TOO_LARGE_1000 | SURROGATE, /* xD */
    CARRY | TOO_LARGE | TOO_LARGE_1000,            /* xE */
    CARRY | TOO_LARGE | TOO_LARGE_1000,            /* xF */
};

/* by the high nibble of this byte */
static const uint8_t lut_this_high[16] = {
    TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT,
    TOO_LONG | OVERLONG_2 | TWO_CONTS | OVERLONG_3 | TOO_LARGE_1000 | OVERLONG_4, /* 8 */
    TOO_LONG | OVERLONG_2 | TWO_CONTS | OVERLONG_3 | TOO_LARGE,                   /* 9 */
    TOO_LONG | OVERLONG_2 | TWO_CONTS | SURROGATE | TOO_LARGE,                    /* A */
    TOO_LONG | OVERLONG_2 | TWO_CONTS | SURROGATE | TOO_LARGE,                    /* B */
    TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT,                                   /* C..F */
};

/* Lead bytes in the last three positions of a block whose sequence runs past it:
 * the last byte may not be a lead, the one before not a 3- or 4-byte lead, the
 * one before that not a 4-byte lead. A saturating subtraction of this leaves a
 * non-zero byte exactly there. */
static const uint8_t incomplete_max[32] = {
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 0xEF, 0xDF, 0xBF,
};
/* clang-format on */

typedef struct {
    __m256i lut_ph, lut_pl, lut_th, nib, incomplete_max;
} avx2_consts;

/*
 * Errors of block @in given the block before it, @prev. The pair tables catch
 * every error between neighbours; what remains is the rule that a continuation
 * after a continuation is allowed only as the 3rd or 4th byte of a sequence:
 * TWO_CONTS (bit 7) must be set exactly where the byte two back is a 3/4-byte
 * lead or the byte three back is a 4-byte lead, so XOR with that marks any
 * mismatch.
 */
__attribute__((target("avx2"))) static inline __m256i
avx2_errors(const avx2_consts *c, __m256i in, __m256i prev1, __m256i prev2, __m256i prev3) {
    __m256i ph = _mm256_and_si256(_mm256_srli_epi16(prev1, 4), c->nib);
    __m256i pl = _mm256_and_si256(prev1, c->nib);
    __m256i th = _mm256_and_si256(_mm256_srli_epi16(in, 4), c->nib);
    __m256i sc = _mm256_and_si256(
        _mm256_and_si256(_mm256_shuffle_epi8(c->lut_ph, ph), _mm256_shuffle_epi8(c->lut_pl, pl)),
        _mm256_shuffle_epi8(c->lut_th, th));
    /* >= 0x80 exactly where prev2 >= E0 or prev3 >= F0 */
    __m256i third = _mm256_subs_epu8(prev2, _mm256_set1_epi8(0xE0 - 0x80));
    __m256i fourth = _mm256_subs_epu8(prev3, _mm256_set1_epi8(0xF0 - 0x80));
    __m256i must23 = _mm256_and_si256(_mm256_or_si256(third, fourth), _mm256_set1_epi8((char)0x80));
    return _mm256_xor_si256(sc, must23);
}

/* Block @in, loaded from @p, with its previous bytes read from memory before @p
 * (which the caller guarantees are part of the same call's buffer). */
__attribute__((target("avx2"))) static inline __m256i avx2_errors_at(const avx2_consts *c,
                                                                     const uint8_t *p, __m256i in) {
    return avx2_errors(c, in, _mm256_loadu_si256((const void *)(p - 1)),
                       _mm256_loadu_si256((const void *)(p - 2)),
                       _mm256_loadu_si256((const void *)(p - 3)));
}

/* The first block of a call: the bytes before it are not in memory we may read,
 * and since the call starts at a boundary they may as well be ASCII (zero), so
 * shift them in from a zero vector. */
__attribute__((target("avx2"))) static inline __m256i avx2_first_errors(const avx2_consts *c,
                                                                        __m256i in) {
    __m256i shifted = _mm256_permute2x128_si256(_mm256_setzero_si256(), in, 0x21);
    return avx2_errors(c, in, _mm256_alignr_epi8(in, shifted, 15),
                       _mm256_alignr_epi8(in, shifted, 14), _mm256_alignr_epi8(in, shifted, 13));
}

__attribute__((target("avx2"))) bool dx__utf8_feed_avx2(dx_utf8_state *s, const uint8_t *buf,
                                                        size_t len) {
    uint32_t st = s->state;
    if (st == S_ERR)
        return false;
    size_t i = 0;
    /* Finish a sequence left open by the previous call with the DFA. */
    while (st != S_ACC && i < len)
        st = (uint32_t)(utf8_dfa[buf[i++]] >> st) & 63;
    if (st == S_ERR || len - i < 32)
        goto tail;

    const avx2_consts c = {
        .lut_ph = _mm256_broadcastsi128_si256(_mm_loadu_si128((const void *)lut_prev_high)),
        .lut_pl = _mm256_broadcastsi128_si256(_mm_loadu_si128((const void *)lut_prev_low)),
        .lut_th = _mm256_broadcastsi128_si256(_mm_loadu_si128((const void *)lut_this_high)),
        .nib = _mm256_set1_epi8(0x0F),
        .incomplete_max = _mm256_loadu_si256((const void *)incomplete_max),
    };
    /* The first block shifts in zeros for the bytes before it (avx2_first_errors).
     * Later blocks read their previous bytes with overlapping unaligned loads
     * from @buf: loads have two ports, where shifting them in from the previous
     * block would put four more shuffles on the one port the lookups need. */
    __m256i in = _mm256_loadu_si256((const void *)(buf + i));
    __m256i err = avx2_first_errors(&c, in);
    i += 32;
    while (len - i >= 64) {
        __m256i a = _mm256_loadu_si256((const void *)(buf + i));
        __m256i b = _mm256_loadu_si256((const void *)(buf + i + 32));
        if (!_mm256_movemask_epi8(_mm256_or_si256(a, b))) {
            /* All ASCII: only a sequence left open at the end of the block
             * before can be wrong (a lead in its last three bytes). */
            __m256i last = _mm256_loadu_si256((const void *)(buf + i - 32));
            err = _mm256_or_si256(err, _mm256_subs_epu8(last, c.incomplete_max));
            i += 64;
            /* then run ahead while the text stays ASCII */
            while (len - i >= 64) {
                __m256i x = _mm256_loadu_si256((const void *)(buf + i));
                __m256i y = _mm256_loadu_si256((const void *)(buf + i + 32));
                if (_mm256_movemask_epi8(_mm256_or_si256(x, y)))
                    break;
                i += 64;
            }
            continue;
        }
        err = _mm256_or_si256(err, avx2_errors_at(&c, buf + i, a));
        err = _mm256_or_si256(err, avx2_errors_at(&c, buf + i + 32, b));
        i += 64;
        /* Stop early on invalid input, but not on every block. */
        if ((i & 1023) < 64 && !_mm256_testz_si256(err, err))
            break;
    }
    if (len - i >= 32) {
        in = _mm256_loadu_si256((const void *)(buf + i));
        err = _mm256_or_si256(err, avx2_errors_at(&c, buf + i, in));
        i += 32;
    }
    if (!_mm256_testz_si256(err, err)) {
        st = S_ERR;
        goto out;
    }
    /* Every pair inside buf[0, i) is checked; only a sequence that runs past i
     * is not. Back up to its lead byte and let the DFA take it from there. */
    for (size_t k = 1; k <= 3; k++) {
        uint8_t b = buf[i - k];
        if (b < 0x80)
            break;
        if (b >= 0xC0) {
            size_t need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;
            if (need > k)
                i -= k;
            break;
        }
    }
tail:
    s->state = st;
    if (i == len) /* also keeps a NULL @buf with @len 0 from meeting pointer arithmetic */
        return st != S_ERR;
    return feed_loop(s, buf + i, len - i, skip_ascii_avx2);
out:
    s->state = st;
    return false;
}

#endif /* DX__SIMD_X86 */

static dx__utf8_fn utf8_pick(void) {
#if DX__SIMD_X86
    switch (dx__simd_selected()) {
    case DX__SIMD_AVX2:
        return dx__utf8_feed_avx2;
    case DX__SIMD_SSE2:
        return dx__utf8_feed_sse2;
    default:
        break;
    }
#endif
    return dx__utf8_feed_scalar;
}

static bool utf8_resolve(dx_utf8_state *s, const uint8_t *buf, size_t len);
static _Atomic(dx__utf8_fn) utf8_impl = utf8_resolve;

/* See mask.c: every racing thread stores the same pointer. */
static bool utf8_resolve(dx_utf8_state *s, const uint8_t *buf, size_t len) {
    dx__utf8_fn fn = utf8_pick();
    atomic_store_explicit(&utf8_impl, fn, memory_order_relaxed);
    return fn(s, buf, len);
}

#define SHORT_ASCII_MAX 64 /* below a SIMD implementation's first full block */

/* True when the @len (<= SHORT_ASCII_MAX) bytes at @buf are all ASCII: a word at
 * a time, the last word overlapping the one before it. */
static bool short_ascii(const uint8_t *buf, size_t len) {
    uint64_t acc = 0, w;
    if (len < 8) {
        if (len >= 4) { /* two words that overlap */
            uint32_t a, b;
            memcpy(&a, buf, sizeof a);
            memcpy(&b, buf + len - 4, sizeof b);
            return ((a | b) & 0x80808080u) == 0;
        }
        for (size_t i = 0; i < len; i++)
            acc |= buf[i];
        return (acc & 0x80u) == 0;
    }
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        memcpy(&w, buf + i, sizeof w);
        acc |= w;
    }
    memcpy(&w, buf + len - 8, sizeof w);
    acc |= w;
    return (acc & 0x8080808080808080u) == 0;
}

bool dx_utf8_feed(dx_utf8_state *s, const uint8_t *buf, size_t len) {
    /* Chat lines, JSON keys, tickers: most text messages are short and ASCII, and
     * for them the dispatch and the SIMD set-up cost more than the check. */
    if (s->state == S_ACC && len <= SHORT_ASCII_MAX && short_ascii(buf, len))
        return true;
    return atomic_load_explicit(&utf8_impl, memory_order_relaxed)(s, buf, len);
}

bool dx_utf8_is_complete(const dx_utf8_state *s) {
    return s->state == S_ACC;
}

bool dx_utf8_valid(const uint8_t *buf, size_t len) {
    dx_utf8_state s = {0};
    return dx_utf8_feed(&s, buf, len) && dx_utf8_is_complete(&s);
}
