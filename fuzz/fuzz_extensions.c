/*
 * Fuzz target for the Sec-WebSocket-Extensions grammar (RFC 6455 §9.1).
 * Input: the header value(s); '\n' separates header lines (up to 16). The grammar
 * parser is not incremental, so there is no chunking.
 *
 * Invariants (any violation aborts):
 *   - the lines parsed as separate headers (dx_ext_parse) give the same code and
 *     the same extensions as the lines joined with ',' (dx_ext_parse_value): the
 *     lines are one list;
 *   - every name is a non-empty token; every value is a token, or a quoted string
 *     that unescapes (dx_ext_param_value, at exactly the reported size) to one;
 *   - serialising the result canonically (values bare) and again with every value
 *     quoted and every character escaped both parse back to the same extensions.
 */
#include "hs_fuzz.h"

#define MAX_LINES 16

typedef struct parsed {
    dx_ext exts[DX_MAX_EXTENSIONS];
    dx_ext_param params[DX_MAX_EXT_PARAMS];
    size_t num_exts, num_params;
} parsed;

/* The unescaped value of @p into @out (which has room for the raw length + 1). */
static size_t value_of(const dx_ext_param *p, char *out, size_t cap) {
    size_t need = 0;
    int rc = dx_ext_param_value(p, out, 0, &need);
    fz_require(rc == DX_ENOSPACE && need <= p->value.len);
    size_t len = 0;
    fz_require(need + 1 <= cap);
    fz_require(dx_ext_param_value(p, out, need, &len) == DX_ENOSPACE && len == need);
    fz_require(dx_ext_param_value(p, out, need + 1, &len) == 0 && len == need);
    fz_require(out[len] == '\0');
    return len;
}

static void check_parsed(const parsed *p, char *scratch, size_t cap) {
    size_t params = 0;
    for (size_t i = 0; i < p->num_exts; i++) {
        const dx_ext *e = &p->exts[i];
        fz_require(dx__span_is_token(e->name));
        params += e->num_params;
        for (size_t k = 0; k < e->num_params; k++) {
            const dx_ext_param *prm = &e->params[k];
            fz_require(dx__span_is_token(prm->name));
            if (!prm->has_value) {
                fz_require(!prm->quoted && prm->value.len == 0);
                size_t len;
                fz_require(dx_ext_param_value(prm, scratch, cap, &len) == DX_EINVAL);
                continue;
            }
            size_t len = value_of(prm, scratch, cap);
            fz_require(dx__span_is_token((dx_span){(const uint8_t *)scratch, len}));
            if (!prm->quoted)
                fz_require(len == prm->value.len && memcmp(scratch, prm->value.ptr, len) == 0);
        }
    }
    fz_require(params <= DX_MAX_EXT_PARAMS);
}

/* Same extensions, comparing names and unescaped values. */
static void require_same(const parsed *a, const parsed *b, char *s1, char *s2, size_t cap) {
    fz_require(a->num_exts == b->num_exts);
    for (size_t i = 0; i < a->num_exts; i++) {
        const dx_ext *x = &a->exts[i], *y = &b->exts[i];
        fz_require(dx_span_eq(x->name, y->name) && x->num_params == y->num_params);
        for (size_t k = 0; k < x->num_params; k++) {
            fz_require(dx_span_eq(x->params[k].name, y->params[k].name));
            fz_require(x->params[k].has_value == y->params[k].has_value);
            if (!x->params[k].has_value)
                continue;
            size_t l1 = value_of(&x->params[k], s1, cap);
            size_t l2 = value_of(&y->params[k], s2, cap);
            fz_require(l1 == l2 && memcmp(s1, s2, l1) == 0);
        }
    }
}

/* Serialise @p: values bare, or quoted with every character escaped. */
static size_t serialise(const parsed *p, bool quoted, char *out, char *scratch, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < p->num_exts; i++) {
        const dx_ext *e = &p->exts[i];
        if (i > 0)
            out[o++] = ',';
        memcpy(out + o, e->name.ptr, e->name.len);
        o += e->name.len;
        for (size_t k = 0; k < e->num_params; k++) {
            const dx_ext_param *prm = &e->params[k];
            out[o++] = ';';
            memcpy(out + o, prm->name.ptr, prm->name.len);
            o += prm->name.len;
            if (!prm->has_value)
                continue;
            size_t len = value_of(prm, scratch, cap);
            out[o++] = '=';
            if (quoted)
                out[o++] = '"';
            for (size_t c = 0; c < len; c++) {
                if (quoted)
                    out[o++] = '\\';
                out[o++] = scratch[c];
            }
            if (quoted)
                out[o++] = '"';
        }
    }
    return o;
}

static int parse_value(dx_span v, parsed *p) {
    memset(p, 0, sizeof *p);
    return dx_ext_parse_value(v, p->exts, DX_MAX_EXTENSIONS, &p->num_exts, p->params,
                              DX_MAX_EXT_PARAMS, &p->num_params);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *buf = fz_copy(data, size);
    /* the lines as headers */
    dx_http_header h[MAX_LINES + 1];
    size_t nh = 0, start = 0, used = size;
    h[nh++] = (dx_http_header){dx_span_cstr("Host"), dx_span_cstr("ignored, (x")};
    for (size_t i = 0; i <= size; i++) {
        if (i < size && buf[i] != '\n')
            continue;
        if (nh == MAX_LINES + 1) { /* the rest is not looked at */
            used = start - 1;
            break;
        }
        h[nh].name = dx_span_cstr(nh % 2 ? "Sec-WebSocket-Extensions" : "sec-websocket-EXTENSIONS");
        h[nh].value = (dx_span){buf + start, i - start};
        nh++;
        start = i + 1;
    }

    parsed a;
    memset(&a, 0, sizeof a);
    int rc_a =
        dx_ext_parse(h, nh, a.exts, DX_MAX_EXTENSIONS, a.params, DX_MAX_EXT_PARAMS, &a.num_exts);
    fz_require(rc_a == 0 || rc_a == DX_EHS_BAD_EXTENSIONS || rc_a == DX_EHS_TOO_MANY);

    /* the same lines joined into one value */
    uint8_t *joined = fz_copy(buf, used);
    for (size_t i = 0; i < used; i++)
        if (joined[i] == '\n')
            joined[i] = ',';
    parsed b;
    int rc_b = parse_value((dx_span){joined, used}, &b);
    fz_require(rc_a == rc_b);

    size_t cap = size + 1;
    char *s1 = malloc(cap), *s2 = malloc(cap);
    fz_require(s1 && s2);
    if (rc_a == 0) {
        fz_require(a.num_exts > 0);
        check_parsed(&a, s1, cap);
        check_parsed(&b, s1, cap);
        require_same(&a, &b, s1, s2, cap);

        /* canonical and fully escaped serialisations parse back the same */
        for (int q = 0; q < 2; q++) {
            char *out = malloc(4 * size + 16);
            fz_require(out != NULL);
            size_t n = serialise(&a, q == 1, out, s1, cap);
            parsed c;
            fz_require(parse_value((dx_span){(const uint8_t *)out, n}, &c) == 0);
            require_same(&a, &c, s1, s2, cap);
            free(out);
        }
    }
    free(s1);
    free(s2);
    free(joined);
    free(buf);
    return 0;
}
