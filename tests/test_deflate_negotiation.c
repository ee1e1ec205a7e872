/* permessage-deflate (RFC 7692): negotiation of the parameters (§5, §7.1), and
 * the codecs created with what was agreed. */
#include "deflate_util.h"

/* ---- helpers -------------------------------------------------------------------- */

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
