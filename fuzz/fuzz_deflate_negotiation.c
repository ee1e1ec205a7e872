/*
 * Fuzz target for permessage-deflate negotiation (RFC 7692 §7.1): the server's
 * choice among offers and the client's check of an answer.
 *
 * Input: byte 0 and 1 pick a config (byte 0: bit 0 server_no_context_takeover,
 * bit 1 client_no_context_takeover, bits 4-7 server_max_window_bits (values
 * 8..15 used as is, others mean 0); byte 1: bits 4-7 client_max_window_bits the
 * same way); the rest is a Sec-WebSocket-Extensions value.
 *
 * Invariants (any violation aborts):
 *   - as offers: dx_deflate_accept returns 0 or DX_EDEFLATE_NONE; on 0 the chosen
 *     offer is the first permessage-deflate one that dx_deflate_parse_offer
 *     accepts, the agreed windows are 8..15 and within what the offer allows, an
 *     offered server_no_context_takeover is kept, and the answer parses as one
 *     permessage-deflate element that a client checks back to the same windows;
 *     a too-small buffer gives DX_ENOSPACE with the same length;
 *   - as an answer: dx_deflate_check_answer returns exactly what an oracle
 *     built on dx_deflate_parse_offer expects: DX_EDEFLATE_NONE without a
 *     permessage-deflate element; DX_EDEFLATE_BAD_ANSWER for two of them, one
 *     the offer rules refuse, a bare client_max_window_bits, a server window
 *     above the one asked for (or none when one was), or server_no_context_
 *     takeover missing when asked for; 0 otherwise (whatever client window
 *     8..15 it states, §7.1.2.2), with the server's parameters as answered and
 *     the client window min(ours, the answer's or 15), and a working codec.
 */
#include "hs_fuzz.h"

#include "duplex/deflate.h"

static uint8_t bits_of(uint8_t nibble) {
    return nibble >= 8 ? nibble : 0;
}

/* Does @e carry client_max_window_bits without a value (allowed in an offer only)? */
static bool client_bits_bare(const dx_ext *e) {
    for (size_t i = 0; i < e->num_params; i++)
        if (!e->params[i].has_value &&
            dx_span_eq_nocase(e->params[i].name, dx_span_cstr("client_max_window_bits")))
            return true;
    return false;
}

/* What dx_deflate_check_answer must return for @exts under @cfg; @want gets the
 * params when that is 0. */
static int answer_oracle(const dx_deflate_config *cfg, const dx_ext *exts, size_t n,
                         dx_deflate_params *want) {
    const dx_ext *found = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!dx_span_eq_nocase(exts[i].name, dx_span_cstr("permessage-deflate")))
            continue;
        if (found)
            return DX_EDEFLATE_BAD_ANSWER;
        found = &exts[i];
    }
    if (!found)
        return DX_EDEFLATE_NONE;
    dx_deflate_params a;
    if (dx_deflate_parse_offer(found, &a, NULL) != 0 || client_bits_bare(found))
        return DX_EDEFLATE_BAD_ANSWER;
    /* an absent server_max_window_bits reads as 15, above any value we ask for */
    uint8_t asked = cfg->server_max_window_bits;
    if (asked && asked < 15 && a.server_max_window_bits > asked)
        return DX_EDEFLATE_BAD_ANSWER;
    if (cfg->server_no_context_takeover && !a.server_no_context_takeover)
        return DX_EDEFLATE_BAD_ANSWER;
    uint8_t own =
        cfg->client_max_window_bits ? cfg->client_max_window_bits : DX_DEFLATE_DEFAULT_WINDOW_BITS;
    *want = a;
    want->client_no_context_takeover =
        a.client_no_context_takeover || cfg->client_no_context_takeover;
    if (want->client_max_window_bits > own)
        want->client_max_window_bits = own;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2)
        return 0;
    dx_deflate_config cfg = {
        .server_no_context_takeover = data[0] & 1,
        .client_no_context_takeover = data[0] & 2,
        .server_max_window_bits = bits_of(data[0] >> 4),
        .client_max_window_bits = bits_of(data[1] >> 4),
    };
    uint8_t *v = fz_copy(data + 2, size - 2);
    dx_ext exts[DX_MAX_EXTENSIONS];
    dx_ext_param params[DX_MAX_EXT_PARAMS];
    size_t n = 0, np = 0;
    if (dx_ext_parse_value((dx_span){v, size - 2}, exts, DX_MAX_EXTENSIONS, &n, params,
                           DX_MAX_EXT_PARAMS, &np) != 0) {
        free(v);
        return 0;
    }

    /* as offers, to a server */
    dx_deflate_params p;
    size_t chosen = 0, len = 0;
    char ans[256];
    int rc = dx_deflate_accept(&cfg, exts, n, &p, &chosen, ans, sizeof ans, &len);
    fz_require(rc == 0 || rc == DX_EDEFLATE_NONE);
    size_t first_ok = n;
    for (size_t i = 0; i < n; i++) {
        int r = dx_deflate_parse_offer(&exts[i], NULL, NULL);
        fz_require(r == 0 || r == DX_EDEFLATE_NONE || r == DX_EDEFLATE_BAD_OFFER);
        if (r == 0 && first_ok == n)
            first_ok = i;
    }
    if (rc == DX_EDEFLATE_NONE) {
        fz_require(first_ok == n);
    } else {
        fz_require(chosen == first_ok && len == strlen(ans));
        dx_deflate_params o;
        bool cb = false;
        fz_require(dx_deflate_parse_offer(&exts[chosen], &o, &cb) == 0);
        fz_require(p.server_max_window_bits >= 8 && p.server_max_window_bits <= 15);
        fz_require(p.client_max_window_bits >= 8 && p.client_max_window_bits <= 15);
        fz_require(p.server_max_window_bits <= o.server_max_window_bits);
        fz_require(p.client_max_window_bits <= o.client_max_window_bits);
        fz_require(!o.server_no_context_takeover || p.server_no_context_takeover);
        if (cfg.server_max_window_bits)
            fz_require(p.server_max_window_bits <= cfg.server_max_window_bits);
        if (cfg.client_max_window_bits && cb)
            fz_require(p.client_max_window_bits <= cfg.client_max_window_bits);
        /* the answer is one valid element */
        dx_ext a[2];
        dx_ext_param ap[8];
        size_t an = 0, anp = 0;
        fz_require(dx_ext_parse_value(dx_span_cstr(ans), a, 2, &an, ap, 8, &anp) == 0 && an == 1);
        dx_deflate_params back;
        fz_require(dx_deflate_parse_offer(&a[0], &back, NULL) == 0);
        fz_require(back.server_no_context_takeover == p.server_no_context_takeover);
        fz_require(back.client_no_context_takeover == p.client_no_context_takeover);
        fz_require(back.server_max_window_bits == p.server_max_window_bits);
        if (back.client_max_window_bits != 15)
            fz_require(back.client_max_window_bits == p.client_max_window_bits);
        /* a buffer one byte short */
        size_t len2 = 0;
        char small[256];
        fz_require(dx_deflate_accept(&cfg, exts, n, NULL, NULL, small, len, &len2) == DX_ENOSPACE &&
                   len2 == len);
    }

    /* as an answer, to a client */
    rc = dx_deflate_check_answer(&cfg, exts, n, &p);
    dx_deflate_params want;
    fz_require(rc == answer_oracle(&cfg, exts, n, &want));
    if (rc == 0) {
        fz_require(p.server_max_window_bits >= 8 && p.server_max_window_bits <= 15);
        fz_require(p.client_max_window_bits >= 8 && p.client_max_window_bits <= 15);
        fz_require(p.server_no_context_takeover == want.server_no_context_takeover);
        fz_require(p.client_no_context_takeover == want.client_no_context_takeover);
        fz_require(p.server_max_window_bits == want.server_max_window_bits);
        fz_require(p.client_max_window_bits == want.client_max_window_bits);
        /* the agreed parameters make a working codec that compresses within the
         * window the client uses */
        dx_deflate *d = NULL;
        fz_require(dx_deflate_create(&d, &p, false, &cfg, 0, NULL) == 0);
        fz_require(dx_deflate_window_bits(d) == p.client_max_window_bits);
        dx_deflate_destroy(d);
    }
    free(v);
    return 0;
}
