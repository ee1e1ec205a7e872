/* Tests for src/proto/utf8.c: incremental UTF-8 validation (RFC 3629, RFC 6455
 * §8.1), every variant, against a reference decoder written here. */
#include "proto/simd.h"
#include "test.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Reference: decode code points with arithmetic instead of a state table. After
 * each byte of a multi-byte sequence it asks whether ANY completion could still be
 * valid: the possible code points form the interval [lo, hi] (remaining bytes all
 * 0x80 .. all 0xBF), which must meet the range for that length (no overlongs, not
 * above U+10FFFF) without lying wholly inside the surrogates D800..DFFF.
 *
 * Returns the index of the first byte after which the input cannot be valid
 * UTF-8, or @n when every prefix is a valid prefix; *complete says whether the
 * input ends at a character boundary.
 */
static size_t ref_first_error(const uint8_t *p, size_t n, bool *complete) {
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    static const uint32_t max_cp[5] = {0, 0x7F, 0x7FF, 0xFFFF, 0x10FFFF};
    unsigned len = 0, have = 0;
    uint32_t cp = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = p[i];
        if (have == 0) {
            if (b < 0x80)
                continue;
            if ((b & 0xE0) == 0xC0)
                len = 2, cp = b & 0x1Fu;
            else if ((b & 0xF0) == 0xE0)
                len = 3, cp = b & 0x0Fu;
            else if ((b & 0xF8) == 0xF0)
                len = 4, cp = b & 0x07u;
            else
                return i; /* continuation without a lead, or F8..FF */
            have = 1;
        } else {
            if ((b & 0xC0) != 0x80)
                return i;
            cp = cp << 6 | (b & 0x3Fu);
            have++;
        }
        unsigned rest = 6 * (len - have);
        uint32_t lo = cp << rest, hi = lo | ((1u << rest) - 1);
        if (lo < min_cp[len])
            lo = min_cp[len];
        if (hi > max_cp[len])
            hi = max_cp[len];
        if (lo > hi || (lo >= 0xD800 && hi <= 0xDFFF))
            return i;
        if (have == len)
            have = 0;
    }
    *complete = have == 0;
    return n;
}

static dx__simd_variant variants[3];
static size_t num_variants;

static void load_variants(void) {
    num_variants = dx__simd_variants(variants);
}

/* The validators under test: every variant, then the public dx_utf8_feed. */
static size_t num_impls(void) {
    return num_variants + 1;
}
static dx__utf8_fn impl(size_t k) {
    return k < num_variants ? variants[k].utf8_feed : dx_utf8_feed;
}
static const char *impl_name(size_t k) {
    return k < num_variants ? variants[k].name : "dx_utf8_feed";
}

/*
 * Feed @p in pieces chosen by @split to implementation @k and check every call's
 * answer against the reference: a call must return false exactly when its piece
 * holds the first bad byte or comes after it, and is_complete must agree at the
 * end. Returns the number of mismatches (printing the first few).
 */
static long check_split(size_t k, const uint8_t *p, size_t n, dx_split split) {
    bool complete = false;
    size_t bad_at = ref_first_error(p, n, &complete);
    dx_utf8_state s = {0};
    dx__utf8_fn feed = impl(k);
    long errs = 0;
    size_t off = 0;
    do {
        size_t m = dx_split_next(split, n - off);
        bool want = bad_at >= off + m;
        bool got = feed(&s, p + off, m);
        if (got != want) {
            if (errs == 0) {
                printf("    %s/%s: call at %zu+%zu returned %d, want %d (first error at %zu)\n",
                       impl_name(k), dx_split_name(split), off, m, got, want, bad_at);
                dx_test_hexdump("input", p, n);
            }
            errs++;
        }
        off += m;
    } while (off < n);
    /* poisoned stays poisoned, even for an empty call */
    if (bad_at < n && feed(&s, (const uint8_t *)"a", 1))
        errs++;
    if (bad_at < n && feed(&s, NULL, 0))
        errs++;
    bool want_complete = bad_at == n && complete;
    if (dx_utf8_is_complete(&s) != want_complete)
        errs++;
    return errs;
}

/* Every implementation, every split. */
static long check_all(const uint8_t *p, size_t n) {
    long errs = 0;
    for (size_t k = 0; k < num_impls(); k++)
        for (size_t sp = 0; sp < 3; sp++)
            errs += check_split(k, p, n, dx_all_splits[sp]);
    bool complete = false;
    bool valid = ref_first_error(p, n, &complete) == n && complete;
    if (dx_utf8_valid(p, n) != valid)
        errs++;
    return errs;
}

/* One case: @s (length @n) must first fail at byte @fail_at (n: never) and end
 * complete or not. Checked alone and behind ASCII runs of every length 0..70,
 * so that it meets the vector paths at every offset of a block. */
static void expect_case(const char *s, size_t n, size_t fail_at, bool complete) {
    bool c = false;
    size_t ref = ref_first_error((const uint8_t *)s, n, &c);
    CHECK_EQ_INT(ref, fail_at); /* the reference agrees with the hand-written answer */
    if (fail_at == n)
        CHECK_EQ_INT(c, complete);
    uint8_t buf[200];
    REQUIRE(n + 140 <= sizeof buf);
    for (size_t pad = 0; pad <= 70; pad++) {
        memset(buf, 'a', pad);
        memcpy(buf + pad, s, n);
        CHECK_EQ_INT(check_all(buf, pad + n), 0);
        /* and followed by ASCII, so a bad byte deep inside a block is found */
        memset(buf + pad + n, 'z', 70 - pad);
        CHECK_EQ_INT(check_all(buf, 70 + n), 0);
    }
    /* byte by byte the call that gets the bad byte is the one that fails */
    dx_utf8_state st = {0};
    for (size_t i = 0; i < n; i++)
        CHECK_EQ_INT(dx_utf8_feed(&st, (const uint8_t *)s + i, 1), i < fail_at);
}

#define VALID(lit) expect_case(lit, sizeof(lit) - 1, sizeof(lit) - 1, true)
#define TRUNCATED(lit) expect_case(lit, sizeof(lit) - 1, sizeof(lit) - 1, false)
#define FAILS_AT(lit, at) expect_case(lit, sizeof(lit) - 1, at, false)

TEST(rfc3629_boundary_code_points_are_valid) {
    load_variants();
    expect_case("\x00", 1, 1, true); /* U+0000 */
    VALID("\x7F");                   /* U+007F */
    VALID("\xC2\x80");               /* U+0080 */
    VALID("\xDF\xBF");               /* U+07FF */
    VALID("\xE0\xA0\x80");           /* U+0800 */
    VALID("\xED\x9F\xBF");           /* U+D7FF */
    VALID("\xEE\x80\x80");           /* U+E000 */
    VALID("\xEF\xBF\xBD");           /* U+FFFD */
    VALID("\xEF\xBF\xBF");           /* U+FFFF (a noncharacter, still valid) */
    VALID("\xF0\x90\x80\x80");       /* U+10000 */
    VALID("\xF4\x8F\xBF\xBF");       /* U+10FFFF */
    VALID("\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5"); /* Kuhn 1: "kosme" in Greek */
    VALID("Hello-\xC2\xB5@\xC3\x9F\xC3\xB6\xC3\xA4\xC3\xBC\xC3\xA0\xC3\xA1-UTF-8!!");
    VALID("\xF0\x9F\x98\x80\xE4\xB8\xAD\xE6\x96\x87");
}

TEST(rfc3629_overlong_encodings_fail_at_first_impossible_byte) {
    load_variants();
    FAILS_AT("\xC0\xAF", 0);             /* "/" in 2 bytes: C0 can never start one */
    FAILS_AT("\xE0\x80\xAF", 1);         /* "/" in 3 bytes: E0 80 is overlong */
    FAILS_AT("\xF0\x80\x80\xAF", 1);     /* "/" in 4 bytes */
    FAILS_AT("\xF8\x80\x80\x80\xAF", 0); /* 5 bytes (old RFC 2279 form) */
    FAILS_AT("\xFC\x80\x80\x80\x80\xAF", 0);
    FAILS_AT("\xC1\xBF", 0);         /* largest overlong 2-byte (U+007F) */
    FAILS_AT("\xE0\x9F\xBF", 1);     /* largest overlong 3-byte (U+07FF) */
    FAILS_AT("\xF0\x8F\xBF\xBF", 1); /* largest overlong 4-byte (U+FFFF) */
    FAILS_AT("\xC0\x80", 0);         /* overlong NUL */
    FAILS_AT("\xE0\x80\x80", 1);
    FAILS_AT("\xF0\x80\x80\x80", 1);
}

TEST(rfc3629_surrogates_fail_at_second_byte) {
    load_variants();
    FAILS_AT("\xED\xA0\x80", 1);             /* U+D800 */
    FAILS_AT("\xED\xAD\xBF", 1);             /* U+DB7F */
    FAILS_AT("\xED\xAE\x80", 1);             /* U+DB80 */
    FAILS_AT("\xED\xAF\xBF", 1);             /* U+DBFF */
    FAILS_AT("\xED\xB0\x80", 1);             /* U+DC00 */
    FAILS_AT("\xED\xBF\xBF", 1);             /* U+DFFF */
    FAILS_AT("\xED\xA0\x80\xED\xB0\x80", 1); /* a UTF-16 pair, encoded one by one */
    FAILS_AT("\xED\xAF\xBF\xED\xBF\xBF", 1);
}

TEST(rfc3629_above_u10ffff_fails) {
    load_variants();
    FAILS_AT("\xF4\x90", 1); /* U+110000 starts: fails at the 0x90, not later */
    FAILS_AT("\xF4\x90\x80\x80", 1);
    FAILS_AT("\xF4\xBF\xBF\xBF", 1);
    FAILS_AT("\xF5\x80\x80\x80", 0); /* F5..FF never appear */
    FAILS_AT("\xF7\xBF\xBF\xBF", 0);
    FAILS_AT("\xFE", 0);
    FAILS_AT("\xFF", 0);
    FAILS_AT("\xFE\xFE\xFF\xFF", 0);
}

TEST(rfc3629_unexpected_continuation_bytes_fail) {
    load_variants();
    FAILS_AT("\x80", 0);
    FAILS_AT("\xBF", 0);
    FAILS_AT("a\x80\xBF", 1);
    FAILS_AT("\xC3\xA9\x80", 2); /* one continuation too many */
    FAILS_AT("\xE2\x82\xAC\xAC", 3);
    FAILS_AT("\xF0\x9F\x98\x80\x80", 4);
    FAILS_AT("\xC2\x41", 1); /* lead then ASCII */
    FAILS_AT("\xE2\x82\x41", 2);
    FAILS_AT("\xF0\x9F\x98\x41", 3);
    FAILS_AT("\xC2\xC2\x80", 1); /* lead then lead */
    FAILS_AT("\xE1\xE1\x80\x80", 1);
    /* Kuhn 3.3: each sequence missing its last byte, all concatenated */
    FAILS_AT("\xC0\xE0\x80\xF0\x80\x80", 0);
    FAILS_AT("\xDF\xEF\xBF\xF4\x8F\xBF", 1);
}

TEST(rfc6455_8_1_truncated_sequences_are_valid_prefixes_but_incomplete) {
    load_variants();
    TRUNCATED("\xC3");
    TRUNCATED("\xE2");
    TRUNCATED("\xE2\x82");
    TRUNCATED("\xF0");
    TRUNCATED("\xF0\x9F");
    TRUNCATED("\xF0\x9F\x98");
    TRUNCATED("\xF4\x8F\xBF");
    TRUNCATED("abc\xED\x9F");
    /* the same ends are fine once completed */
    VALID("\xC3\xA9");
    VALID("\xF0\x9F\x98\x80");
    CHECK(!dx_utf8_valid((const uint8_t *)"\xE2\x82", 2));
    CHECK(dx_utf8_valid((const uint8_t *)"\xE2\x82\xAC", 3));
}

TEST(rfc6455_8_1_sequence_split_across_calls_at_every_point) {
    /* "€" (E2 82 AC) and "😀" (F0 9F 98 80) cut at every pair of points, for every
     * implementation, behind ASCII runs that end anywhere in a vector. */
    load_variants();
    static const char text[] = "\xE2\x82\xAC\xF0\x9F\x98\x80\xC3\xA9";
    size_t n = sizeof text - 1;
    uint8_t buf[128];
    long errs = 0;
    for (size_t pad = 0; pad < 70; pad += 1) {
        memset(buf, 'x', pad);
        memcpy(buf + pad, text, n);
        size_t total = pad + n;
        for (size_t k = 0; k < num_impls(); k++)
            for (size_t a = 0; a <= total; a++)
                for (size_t b = a; b <= total; b++) {
                    dx_utf8_state s = {0};
                    dx__utf8_fn feed = impl(k);
                    bool ok = feed(&s, buf, a) && feed(&s, buf + a, b - a) &&
                              feed(&s, buf + b, total - b);
                    if (!ok || !dx_utf8_is_complete(&s))
                        errs++;
                }
    }
    CHECK_EQ_INT(errs, 0);
}

TEST(rfc6455_8_1_zero_state_is_ready_and_empty_is_valid) {
    load_variants();
    dx_utf8_state s = {0};
    CHECK(dx_utf8_is_complete(&s));
    CHECK(dx_utf8_feed(&s, NULL, 0));
    CHECK(dx_utf8_is_complete(&s));
    CHECK(dx_utf8_valid(NULL, 0));
    CHECK(dx_utf8_feed(&s, (const uint8_t *)"\xC3", 1));
    CHECK(!dx_utf8_is_complete(&s));
    CHECK(dx_utf8_feed(&s, NULL, 0));
    CHECK(!dx_utf8_is_complete(&s));
    CHECK(dx_utf8_feed(&s, (const uint8_t *)"\xA9", 1));
    CHECK(dx_utf8_is_complete(&s));
    CHECK(!dx_utf8_feed(&s, (const uint8_t *)"\xFF", 1));
    CHECK(!dx_utf8_is_complete(&s));
    CHECK(!dx_utf8_feed(&s, (const uint8_t *)"ok", 2)); /* poisoned */
}

/* All strings made of a set of bytes that sit on every range boundary, up to four
 * bytes long, placed at every offset across a 32-byte block boundary. */
TEST(rfc3629_exhaustive_boundary_bytes_up_to_four) {
    load_variants();
    static const uint8_t edge[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF,
                                   0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE,
                                   0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF};
    const size_t ne = sizeof edge;
    uint8_t buf[96];
    long errs = 0, cases = 0;
    for (size_t len = 1; len <= 4; len++) {
        size_t total = 1;
        for (size_t i = 0; i < len; i++)
            total *= ne;
        for (size_t c = 0; c < total; c++) {
            uint8_t s[4];
            size_t x = c;
            for (size_t i = 0; i < len; i++, x /= ne)
                s[i] = edge[x % ne];
            bool complete = false;
            size_t bad = ref_first_error(s, len, &complete);
            /* offsets around the 32- and 64-byte marks; the tail is ASCII */
            static const size_t offs[] = {0, 13, 29, 30, 31, 32, 61, 62, 63, 64};
            for (size_t o = 0; o < ARRAY_LEN(offs); o++) {
                size_t off = offs[o];
                memset(buf, ' ', sizeof buf);
                memcpy(buf + off, s, len);
                for (size_t end = off + len; end <= sizeof buf; end += sizeof buf - off - len) {
                    bool whole_complete = false;
                    bool want = ref_first_error(buf, end, &whole_complete) == end;
                    bool comp = want && whole_complete;
                    /* the short string alone, checked by hand: the reference's
                     * verdict carries over when nothing or ASCII follows */
                    if (end == off + len && (want != (bad == len) || comp != (want && complete)))
                        errs++;
                    for (size_t k = 0; k < num_impls(); k++) {
                        dx_utf8_state st = {0};
                        bool got = impl(k)(&st, buf, end);
                        if (got != want || dx_utf8_is_complete(&st) != comp)
                            errs++;
                    }
                    cases++;
                    if (end == sizeof buf)
                        break;
                }
            }
        }
    }
    CHECK(cases > 400000);
    CHECK_EQ_INT(errs, 0);
}

/* Every pair of bytes, every third byte after a 3-byte-capable lead. */
TEST(rfc3629_exhaustive_all_two_byte_strings) {
    load_variants();
    uint8_t buf[64];
    long errs = 0;
    for (unsigned a = 0; a < 256; a++)
        for (unsigned b = 0; b < 256; b++) {
            memset(buf, 'q', sizeof buf);
            buf[31] = (uint8_t)a;
            buf[32] = (uint8_t)b;
            bool complete;
            bool want = ref_first_error(buf, sizeof buf, &complete) == sizeof buf;
            for (size_t k = 0; k < num_impls(); k++) {
                dx_utf8_state st = {0};
                if (impl(k)(&st, buf, sizeof buf) != want)
                    errs++;
                dx_utf8_state s2 = {0};
                if (impl(k)(&s2, buf + 31, 2) != (ref_first_error(buf + 31, 2, &complete) == 2))
                    errs++;
            }
        }
    CHECK_EQ_INT(errs, 0);
}

/* ---- random and mutated text ------------------------------------------------- */

static size_t put_cp(uint8_t *o, uint32_t cp) {
    if (cp < 0x80) {
        o[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (uint8_t)(0xC0 | cp >> 6);
        o[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xE0 | cp >> 12);
        o[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | cp >> 18);
    o[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
    o[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* A random code point: mostly ASCII, Latin, CJK or emoji, sometimes anything,
 * including the edges of each range. Never a surrogate. */
static uint32_t rand_cp(unsigned style) {
    uint64_t r = dx_test_rand();
    uint32_t cp;
    switch ((style + r % 3) % 6) {
    case 0:
        cp = (uint32_t)(r >> 8) % 0x80;
        break;
    case 1:
        cp = 0x80 + (uint32_t)(r >> 8) % 0x780;
        break;
    case 2:
        cp = 0x4E00 + (uint32_t)(r >> 8) % 0x5000;
        break;
    case 3:
        cp = 0x1F300 + (uint32_t)(r >> 8) % 0x300;
        break;
    case 4: {
        static const uint32_t edges[] = {0,      0x7F,   0x80,   0x7FF,   0x800,    0xD7FF,
                                         0xE000, 0xFFFD, 0xFFFF, 0x10000, 0x10FFFF, 0xFFFE};
        cp = edges[(r >> 8) % ARRAY_LEN(edges)];
        break;
    }
    default:
        cp = (uint32_t)(r >> 8) % 0x110000;
        if (cp >= 0xD800 && cp <= 0xDFFF)
            cp -= 0x800;
        break;
    }
    return cp;
}

static size_t make_text(uint8_t *o, size_t cap) {
    size_t n = 0;
    size_t want = (size_t)(dx_test_rand() % (cap - 4));
    if (dx_test_rand() % 4 == 0)
        want %= 40;
    unsigned style = (unsigned)(dx_test_rand() % 6);
    while (n < want)
        n += put_cp(o + n, rand_cp(style));
    return n;
}

static size_t mutate(uint8_t *o, size_t n, size_t cap) {
    unsigned count = 1 + (unsigned)(dx_test_rand() % 3);
    for (unsigned c = 0; c < count; c++) {
        uint64_t r = dx_test_rand();
        size_t at = n ? (size_t)(r >> 16) % n : 0;
        switch (r % 6) {
        case 0: /* replace a byte */
            if (n)
                o[at] = (uint8_t)(r >> 40);
            break;
        case 1: /* flip a bit */
            if (n)
                o[at] ^= (uint8_t)(1u << (r >> 40) % 8);
            break;
        case 2: /* delete a byte */
            if (n) {
                memmove(o + at, o + at + 1, n - at - 1);
                n--;
            }
            break;
        case 3: /* insert an edge byte */
            if (n < cap) {
                static const uint8_t ins[] = {0x80, 0xBF, 0xC0, 0xC2, 0xE0, 0xED,
                                              0xF0, 0xF4, 0xF5, 0xFF, 0x90, 0xA0};
                memmove(o + at + 1, o + at, n - at);
                o[at] = ins[(r >> 40) % sizeof ins];
                n++;
            }
            break;
        case 4: /* truncate */
            n = at;
            break;
        default: /* leave it valid */
            break;
        }
    }
    return n;
}

/* Differential: a million random or mutated strings, every implementation, fed
 * whole and at random splits (plus bytewise for the short ones), against the
 * reference decoder. */
TEST(rfc3629_differential_random_and_mutated_vs_reference) {
    load_variants();
    static uint8_t buf[1100];
    long errs = 0, valid = 0, invalid = 0;
    const long rounds = 1000000;
    for (long r = 0; r < rounds && errs == 0; r++) {
        size_t cap = (r % 16 == 0) ? sizeof buf - 8 : 200;
        size_t n = make_text(buf, cap);
        if (r % 2)
            n = mutate(buf, n, cap);
        bool complete;
        if (ref_first_error(buf, n, &complete) == n && complete)
            valid++;
        else
            invalid++;
        for (size_t k = 0; k < num_impls(); k++) {
            errs += check_split(k, buf, n, DX_SPLIT_WHOLE);
            errs += check_split(k, buf, n, DX_SPLIT_RANDOM);
            if (n < 64 && r % 8 == 0)
                errs += check_split(k, buf, n, DX_SPLIT_BYTES);
        }
    }
    CHECK_EQ_INT(errs, 0);
    CHECK(valid > rounds / 3); /* both kinds were well represented */
    CHECK(invalid > rounds / 3);
}

/* Inputs that end at a PROT_NONE page: vector tails must not read past the end. */
TEST(rfc3629_inputs_ending_at_guard_page) {
    load_variants();
    uint8_t text[700];
    long errs = 0;
    for (size_t len = 0; len <= 300; len++) {
        for (int kind = 0; kind < 4; kind++) {
            size_t n;
            if (kind == 0) {
                memset(text, 'a', len); /* ASCII */
                n = len;
            } else {
                n = make_text(text, sizeof text);
                if (kind == 3)
                    n = mutate(text, n, sizeof text);
                if (n > len)
                    n = len; /* may cut a sequence: incomplete */
            }
            uint8_t *g = dx_guard_alloc(text, n);
            bool complete;
            size_t bad = ref_first_error(g, n, &complete);
            for (size_t k = 0; k < num_impls(); k++) {
                dx_utf8_state s = {0};
                bool got = impl(k)(&s, g, n);
                if (got != (bad == n) || dx_utf8_is_complete(&s) != (bad == n && complete))
                    errs++;
                /* and in two pieces, the second ending at the guard */
                dx_utf8_state s2 = {0};
                size_t cut = n ? (size_t)(dx_test_rand() % n) : 0;
                bool g1 = impl(k)(&s2, g, cut);
                bool g2 = g1 && impl(k)(&s2, g + cut, n - cut);
                if (g2 != (bad == n))
                    errs++;
            }
            dx_guard_free(g, n);
        }
    }
    CHECK_EQ_INT(errs, 0);
}

/* Long inputs that cross many vector blocks, with one defect at every position of
 * a 100-byte window: the verdict must not depend on where the defect falls. */
TEST(rfc3629_single_defect_at_every_position) {
    load_variants();
    static const char *fills[] = {"a", "\xC3\xA9", "\xE4\xB8\xAD", "\xF0\x9F\x98\x80"};
    static const uint8_t defects[] = {0x80, 0xC0, 0xFF, 0xED, 0xF4, 0xE0};
    uint8_t buf[400];
    long errs = 0;
    for (size_t f = 0; f < ARRAY_LEN(fills); f++) {
        size_t fl = strlen(fills[f]), n = 0;
        while (n + fl <= 300) {
            memcpy(buf + n, fills[f], fl);
            n += fl;
        }
        for (size_t d = 0; d < sizeof defects; d++)
            for (size_t at = 100; at < 200; at++) {
                uint8_t save = buf[at];
                buf[at] = defects[d];
                for (size_t k = 0; k < num_impls(); k++)
                    errs += check_split(k, buf, n, DX_SPLIT_WHOLE) +
                            check_split(k, buf, n, DX_SPLIT_RANDOM);
                buf[at] = save;
            }
    }
    CHECK_EQ_INT(errs, 0);
}

/* Long non-ASCII texts with one byte deleted at every position (a truncated
 * sequence followed by the next lead, or a stray continuation): the scalar paths
 * cut long runs into pieces walked in parallel, and a defect right before a cut
 * must still be found whichever piece it falls in. */
TEST(rfc3629_byte_deleted_at_every_position_of_long_text) {
    load_variants();
    static const char *fills[] = {"\xC3\xA9", "\xE4\xB8\xAD", "\xF0\x9F\x98\x80",
                                  "\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80z"};
    static uint8_t text[3000], cut[3000];
    long errs = 0;
    for (size_t f = 0; f < ARRAY_LEN(fills); f++) {
        size_t fl = strlen(fills[f]), n = 0;
        while (n + fl <= sizeof text) {
            memcpy(text + n, fills[f], fl);
            n += fl;
        }
        for (size_t at = 0; at < n; at++) {
            memcpy(cut, text, at);
            memcpy(cut + at, text + at + 1, n - at - 1);
            for (size_t k = 0; k < num_impls(); k++)
                errs += check_split(k, cut, n - 1, DX_SPLIT_WHOLE);
        }
    }
    CHECK_EQ_INT(errs, 0);
}

/* Short texts (0..80 bytes, across dx_utf8_feed's short-ASCII check at 64) with a
 * non-ASCII byte, a valid two-byte character or a lead cut short at every
 * position, whole and in random pieces (so the check also meets a state inside a
 * sequence), through every implementation against the reference. */
TEST(rfc3629_short_texts_with_one_non_ascii_byte_at_every_position) {
    load_variants();
    static const char *inserts[] = {
        "\x80", "\xFF", "\xC3", "\xC3\xA9", "\xE4\xB8\xAD", "\xF0\x9F\x98\x80", "\x7F"};
    uint8_t buf[96];
    long errs = 0;
    for (size_t n = 0; n <= 80; n++)
        for (size_t in = 0; in < ARRAY_LEN(inserts); in++) {
            size_t il = strlen(inserts[in]);
            for (size_t at = 0; at + il <= n; at++) {
                memset(buf, 'a' + (int)(n % 26), n);
                memcpy(buf + at, inserts[in], il);
                for (size_t k = 0; k < num_impls(); k++)
                    errs += check_split(k, buf, n, DX_SPLIT_WHOLE) +
                            check_split(k, buf, n, DX_SPLIT_RANDOM);
            }
            if (n == 0) {
                for (size_t k = 0; k < num_impls(); k++)
                    errs += check_split(k, buf, 0, DX_SPLIT_WHOLE);
            }
        }
    CHECK_EQ_INT(errs, 0);
}
