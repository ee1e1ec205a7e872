/*
 * permessage-deflate (RFC 7692): negotiation of the extension parameters (§5,
 * §7.1). A server reads the offers and writes its answer; a client writes its
 * offer and checks the answer. Both give the dx_deflate_params that the codec
 * (deflate.c) is created with. No zlib here. See include/duplex/deflate.h.
 */
#include "duplex/deflate.h"

#include "base/internal.h"
#include "proto/deflate_internal.h"

#define PMD_NAME "permessage-deflate"

enum {
    P_SERVER_NCT, /* server_no_context_takeover */
    P_CLIENT_NCT, /* client_no_context_takeover */
    P_SERVER_MWB, /* server_max_window_bits */
    P_CLIENT_MWB, /* client_max_window_bits */
    P_COUNT
};

static const char *const param_names[P_COUNT] = {
    "server_no_context_takeover",
    "client_no_context_takeover",
    "server_max_window_bits",
    "client_max_window_bits",
};

static int param_index(dx_span name) {
    for (int i = 0; i < P_COUNT; i++)
        if (dx_span_eq_nocase(name, dx_span_cstr(param_names[i])))
            return i;
    return -1;
}

/* Window bits: a plain decimal 8..15 without leading zeros (§7.1.2.1). */
static int parse_bits(const dx_ext_param *p) {
    char v[8];
    size_t len = 0;
    if (dx_ext_param_value(p, v, sizeof v, &len) != 0)
        return -1;
    if (len == 1 && v[0] >= '8' && v[0] <= '9')
        return v[0] - '0';
    if (len == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5')
        return 10 + (v[1] - '0');
    return -1;
}

static bool is_pmd(const dx_ext *e) {
    return dx_span_eq_nocase(e->name, dx_span_cstr(PMD_NAME));
}

/* What one element (an offer or an answer) says; bits are 0 when absent. */
typedef struct pmd_elem {
    bool nct[2];           /* server, client no_context_takeover */
    int bits[2];           /* server, client max_window_bits; 0: absent */
    bool client_bits_bare; /* client_max_window_bits without a value */
} pmd_elem;

/* Parse @e's parameters. @is_offer allows client_max_window_bits without a
 * value (only an offer may send it bare). Returns 0 or -1 (malformed). */
static int parse_elem(const dx_ext *e, bool is_offer, pmd_elem *out) {
    bool seen[P_COUNT] = {false};
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < e->num_params; i++) {
        const dx_ext_param *p = &e->params[i];
        int k = param_index(p->name);
        if (k < 0 || seen[k])
            return -1;
        seen[k] = true;
        switch (k) {
        case P_SERVER_NCT:
        case P_CLIENT_NCT:
            if (p->has_value)
                return -1;
            out->nct[k == P_CLIENT_NCT] = true;
            break;
        default: {
            int side = k == P_CLIENT_MWB;
            if (!p->has_value) {
                if (!(is_offer && side == 1))
                    return -1;
                out->client_bits_bare = true;
                break;
            }
            int b = parse_bits(p);
            if (b < 0)
                return -1;
            out->bits[side] = b;
            break;
        }
        }
    }
    return 0;
}

static const dx_deflate_config default_cfg;

int dx_deflate_parse_offer(const dx_ext *offer, dx_deflate_params *out, bool *client_bits_offered) {
    if (!offer || !is_pmd(offer))
        return DX_EDEFLATE_NONE;
    pmd_elem el;
    if (parse_elem(offer, true, &el) != 0)
        return DX_EDEFLATE_BAD_OFFER;
    if (out) {
        out->server_no_context_takeover = el.nct[0];
        out->client_no_context_takeover = el.nct[1];
        out->server_max_window_bits = (uint8_t)(el.bits[0] ? el.bits[0] : 15);
        out->client_max_window_bits = (uint8_t)(el.bits[1] ? el.bits[1] : 15);
    }
    if (client_bits_offered)
        *client_bits_offered = el.bits[1] != 0 || el.client_bits_bare;
    return 0;
}

/* A small bounded string builder: counts what it would need past @cap. */
typedef struct sbuf {
    char *p;
    size_t cap, len;
} sbuf;

static void sb_put(sbuf *b, const char *s) {
    for (; *s; s++) {
        if (b->len + 1 < b->cap)
            b->p[b->len] = *s;
        b->len++;
    }
}

static void sb_bits(sbuf *b, const char *name, int bits) {
    char num[3] = {0};
    if (bits >= 10) {
        num[0] = '1';
        num[1] = (char)('0' + bits - 10);
    } else {
        num[0] = (char)('0' + bits);
    }
    sb_put(b, "; ");
    sb_put(b, name);
    sb_put(b, "=");
    sb_put(b, num);
}

static int sb_finish(sbuf *b, size_t *len) {
    *len = b->len;
    if (b->len + 1 > b->cap) {
        if (b->cap > 0)
            b->p[0] = '\0';
        return DX_ENOSPACE;
    }
    b->p[b->len] = '\0';
    return 0;
}

static int min_int(int a, int b) {
    return a < b ? a : b;
}

int dx_deflate_accept(const dx_deflate_config *cfg, const dx_ext *offers, size_t num_offers,
                      dx_deflate_params *out, size_t *chosen, char *answer, size_t cap,
                      size_t *len) {
    if (!cfg)
        cfg = &default_cfg;
    if (dx__deflate_config_check(cfg) != 0 || (!answer && cap > 0) || !len)
        return DX_EINVAL;
    for (size_t i = 0; i < num_offers; i++) {
        if (!is_pmd(&offers[i]))
            continue;
        pmd_elem el;
        if (parse_elem(&offers[i], true, &el) != 0)
            continue; /* §7.1: a malformed offer is declined, not fatal */
        bool client_bits_offered = el.bits[1] != 0 || el.client_bits_bare;

        dx_deflate_params p;
        p.server_no_context_takeover = cfg->server_no_context_takeover || el.nct[0];
        p.client_no_context_takeover = cfg->client_no_context_takeover;
        int sbits = cfg->server_max_window_bits ? cfg->server_max_window_bits
                                                : DX_DEFLATE_DEFAULT_WINDOW_BITS;
        if (el.bits[0])
            sbits = min_int(sbits, el.bits[0]);
        int cbits = 15; /* what we tell the client */
        if (client_bits_offered && cfg->client_max_window_bits)
            cbits = cfg->client_max_window_bits;
        /* the client announced its own bound: it may use no more than that */
        int client_uses = el.bits[1] ? min_int(cbits, el.bits[1]) : cbits;
        p.server_max_window_bits = (uint8_t)sbits;
        p.client_max_window_bits = (uint8_t)client_uses;

        sbuf b = {answer, cap, 0};
        sb_put(&b, PMD_NAME);
        if (p.server_no_context_takeover)
            sb_put(&b, "; server_no_context_takeover");
        if (p.client_no_context_takeover)
            sb_put(&b, "; client_no_context_takeover");
        if (sbits < 15 || el.bits[0])
            sb_bits(&b, "server_max_window_bits", sbits);
        if (client_bits_offered && client_uses < 15)
            sb_bits(&b, "client_max_window_bits", client_uses);
        int rc = sb_finish(&b, len);
        if (rc != 0)
            return rc;
        if (out)
            *out = p;
        if (chosen)
            *chosen = i;
        return 0;
    }
    return DX_EDEFLATE_NONE;
}

/* The client's compressor window: the configured one, or the default. */
static int own_client_bits(const dx_deflate_config *cfg) {
    return cfg->client_max_window_bits ? cfg->client_max_window_bits
                                       : DX_DEFLATE_DEFAULT_WINDOW_BITS;
}

int dx_deflate_write_offer(const dx_deflate_config *cfg, char *out, size_t cap, size_t *len) {
    if (!cfg)
        cfg = &default_cfg;
    if (dx__deflate_config_check(cfg) != 0 || (!out && cap > 0) || !len)
        return DX_EINVAL;
    sbuf b = {out, cap, 0};
    sb_put(&b, PMD_NAME);
    if (cfg->server_no_context_takeover)
        sb_put(&b, "; server_no_context_takeover");
    if (cfg->client_no_context_takeover)
        sb_put(&b, "; client_no_context_takeover");
    if (cfg->server_max_window_bits && cfg->server_max_window_bits < 15)
        sb_bits(&b, "server_max_window_bits", cfg->server_max_window_bits);
    /* Always offered, so that the server may bound our window (§7.1.2.2): with
     * a value only when one was configured, bare otherwise, as browsers and
     * Node's ws offer it. Either way any answer 8..15 is accepted, and our
     * compressor uses the smaller of it and our own (dx_deflate_check_answer). */
    if (cfg->client_max_window_bits)
        sb_bits(&b, "client_max_window_bits", cfg->client_max_window_bits);
    else
        sb_put(&b, "; client_max_window_bits");
    return sb_finish(&b, len);
}

int dx_deflate_check_answer(const dx_deflate_config *cfg, const dx_ext *answer, size_t num_answer,
                            dx_deflate_params *out) {
    if (!cfg)
        cfg = &default_cfg;
    if (dx__deflate_config_check(cfg) != 0)
        return DX_EINVAL;
    const dx_ext *found = NULL;
    for (size_t i = 0; i < num_answer; i++) {
        if (!is_pmd(&answer[i]))
            continue;
        if (found)
            return DX_EDEFLATE_BAD_ANSWER; /* one offer, so at most one answer */
        found = &answer[i];
    }
    if (!found)
        return DX_EDEFLATE_NONE;
    pmd_elem el;
    if (parse_elem(found, false, &el) != 0)
        return DX_EDEFLATE_BAD_ANSWER;
    int offered_s = cfg->server_max_window_bits && cfg->server_max_window_bits < 15
                        ? cfg->server_max_window_bits
                        : 0;
    if (offered_s && (el.bits[0] == 0 || el.bits[0] > offered_s))
        return DX_EDEFLATE_BAD_ANSWER; /* §7.1.2.1: must accept with <= value */
    if (cfg->server_no_context_takeover && !el.nct[0])
        return DX_EDEFLATE_BAD_ANSWER; /* §7.1.1.1: must accept it */
    /* §7.1.2.2: the answer's client_max_window_bits (absent: 15) bounds our
     * window. Any value 8..15 is acceptable, even above the one we offered:
     * compressing within a smaller window than the server inflates with is
     * always safe, so our compressor takes the smaller of the two. */
    int wire_c = el.bits[1] ? el.bits[1] : 15;
    if (out) {
        out->server_no_context_takeover = el.nct[0];
        out->client_no_context_takeover = el.nct[1] || cfg->client_no_context_takeover;
        out->server_max_window_bits = (uint8_t)(el.bits[0] ? el.bits[0] : 15);
        out->client_max_window_bits = (uint8_t)min_int(own_client_bits(cfg), wire_c);
    }
    return 0;
}
