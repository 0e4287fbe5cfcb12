/* Signing and verification behaviour: every algorithm round trip, header
 * options, the claimset builder, every claim check with its boundary, and
 * the claims accessors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define NOW 1700000000

typedef struct fixture {
  jwtkit_key *key;
  jwtkit_signer *signer;
} fixture;

static char *sign_claims(jwtkit_key *key, const jwtkit_sign_opts *opts, const char *claims) {
  char *tok = NULL;
  size_t n;
  jwtkit_errinfo ei;
  if (jwtkit_sign(key, opts, claims, strlen(claims), &tok, &n, &ei) != JWTKIT_OK) fail_msg("sign: %s", ei.msg);
  return tok;
}

/* Build a verifier; `setup` may add rules. */
static jwtkit_verifier *verifier(jwtkit_key *key, void (*setup)(jwtkit_policy *)) {
  jwtkit_policy *p = jwtkit_policy_new();
  assert_int_equal(jwtkit_policy_allow_alg(p, jwtkit_key_alg(key)), JWTKIT_OK);
  assert_int_equal(jwtkit_policy_add_key(p, key), JWTKIT_OK);
  if (setup) setup(p);
  jwtkit_verifier *v = NULL;
  jwtkit_errinfo ei;
  if (jwtkit_verifier_new(&v, p, &ei) != JWTKIT_OK) fail_msg("verifier: %s", ei.msg);
  jwtkit_policy_free(p);
  return v;
}

static jwtkit_err check_at(jwtkit_verifier *v, const char *tok, int64_t now, jwtkit_errinfo *ei) {
  jwtkit_claims *c = (jwtkit_claims *)0x1;
  jwtkit_err rc = jwtkit_verify_at(v, tok, strlen(tok), now, &c, ei);
  if (rc == JWTKIT_OK)
    assert_non_null(c);
  else
    assert_null(c);
  jwtkit_claims_free(c);
  return rc;
}

static void test_roundtrip_every_alg(void **state) {
  (void)state;
  for (int a = 1; a < JWTKIT_ALG_COUNT; a++) {
    for (unsigned bits = 0; bits <= (a == JWTKIT_ALG_EDDSA ? 448u : 0u); bits += 448) {
      jwtkit_key *k = NULL;
      assert_int_equal(jwtkit_key_generate(&k, (jwtkit_alg)a, bits, NULL), JWTKIT_OK);
      assert_int_equal(jwtkit_key_set_kid(k, "kid-1", 5), JWTKIT_OK);
      char *tok = sign_claims(k, NULL, "{\"sub\":\"alice\",\"exp\":1700000600}");
      jwtkit_verifier *v = verifier(k, NULL);
      jwtkit_claims *c = NULL;
      jwtkit_errinfo ei;
      jwtkit_err rc = jwtkit_verify_at(v, tok, strlen(tok), NOW, &c, &ei);
      if (rc != JWTKIT_OK) fail_msg("%s: %s", jwtkit_alg_name((jwtkit_alg)a), ei.msg);
      assert_int_equal(jwtkit_claims_alg(c), a);
      assert_string_equal(jwtkit_claims_kid(c), "kid-1");
      const char *sub;
      assert_int_equal(jwtkit_claims_get_string(c, "sub", &sub, NULL), JWTKIT_OK);
      assert_string_equal(sub, "alice");
      jwtkit_claims_free(c);
      /* the public half alone verifies */
      if (jwtkit_key_kty(k) != JWTKIT_KTY_OCT) {
        char *jwk = NULL;
        size_t n;
        assert_int_equal(jwtkit_key_to_jwk(k, 0, &jwk, &n), JWTKIT_OK);
        jwtkit_key *pub = NULL;
        assert_int_equal(jwtkit_key_from_jwk(&pub, JWTKIT_ALG_UNSPEC, jwk, n, NULL), JWTKIT_OK);
        jwtkit_verifier *pv = verifier(pub, NULL);
        assert_int_equal(check_at(pv, tok, NOW, NULL), JWTKIT_OK);
        /* and cannot sign */
        char *t2 = NULL;
        assert_int_equal(jwtkit_sign(pub, NULL, "{}", 2, &t2, &n, NULL), JWTKIT_ERR_INVALID_KEY);
        jwtkit_verifier_free(pv);
        jwtkit_key_free(pub);
        jwtkit_free(jwk);
      }
      jwtkit_verifier_free(v);
      jwtkit_free(tok);
      jwtkit_key_free(k);
    }
  }
}

static void test_header_options(void **state) {
  (void)state;
  jwtkit_key *k = tu_key(JWTKIT_ALG_HS256);
  char *h = NULL, *p = NULL;
  size_t hl, pl;
  jwtkit_sign_opts o = {.typ = "at+jwt", .kid = "override", .extra_header = "{\"cty\":\"x\",\"n\":1}"};
  char *tok = sign_claims(k, &o, "{}");
  assert_int_equal(jwtkit_decode_unverified(tok, strlen(tok), &h, &hl, &p, &pl, NULL), JWTKIT_OK);
  assert_string_equal(h, "{\"alg\":\"HS256\",\"typ\":\"at+jwt\",\"kid\":\"override\",\"cty\":\"x\",\"n\":1}");
  assert_string_equal(p, "{}");
  jwtkit_free(h);
  jwtkit_free(p);
  jwtkit_free(tok);
  jwtkit_sign_opts none = {.typ = "", .kid = ""};
  tok = sign_claims(k, &none, "{}");
  assert_int_equal(jwtkit_decode_unverified(tok, strlen(tok), &h, &hl, &p, &pl, NULL), JWTKIT_OK);
  assert_string_equal(h, "{\"alg\":\"HS256\"}");
  jwtkit_free(h);
  jwtkit_free(p);
  jwtkit_free(tok);
  /* extra headers may not smuggle alg, crit, b64 or duplicates */
  static const char *bad[] = {"{\"alg\":\"none\"}", "{\"crit\":[\"x\"]}", "{\"b64\":false}", "{\"typ\":\"JWT\"}",
                              "[1]", "{\"a\":1,\"a\":2}"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    jwtkit_signer *s = NULL;
    jwtkit_sign_opts ob = {.extra_header = bad[i]};
    assert_int_not_equal(jwtkit_signer_new(&s, k, &ob, NULL), JWTKIT_OK);
    assert_null(s);
  }
  /* claims must be a strict JSON object */
  char *t = NULL;
  size_t n;
  assert_int_equal(jwtkit_sign(k, NULL, "[]", 2, &t, &n, NULL), JWTKIT_ERR_MALFORMED);
  assert_int_equal(jwtkit_sign(k, NULL, "{\"a\":1,\"a\":1}", 13, &t, &n, NULL), JWTKIT_ERR_MALFORMED);
  assert_null(t);
}

static void test_sign_buf(void **state) {
  (void)state;
  jwtkit_signer *s = NULL;
  assert_int_equal(jwtkit_signer_new(&s, tu_key(JWTKIT_ALG_ES256), NULL, NULL), JWTKIT_OK);
  char small[16];
  size_t n = sizeof small;
  assert_int_equal(jwtkit_signer_sign_buf(s, "{}", 2, small, &n, NULL), JWTKIT_ERR_TOO_LARGE);
  assert_true(n > sizeof small);
  char *big = malloc(n);
  size_t cap = n;
  assert_int_equal(jwtkit_signer_sign_buf(s, "{}", 2, big, &cap, NULL), JWTKIT_OK);
  assert_int_equal(strlen(big), cap);
  assert_int_equal(cap + 1, n);
  free(big);
  jwtkit_signer_free(s);
  jwtkit_signer_free(NULL);
}


/* Decoded payloads of every size around each power of two up to 8 KiB, with
 * and without claims handed out.  The verdict-only path decodes payloads of
 * up to 2048 bytes into a stack buffer and writes a NUL after them: a
 * payload of exactly 2048 bytes once wrote one byte past that buffer (seen
 * by ASan as a stack-buffer-overflow). */
static void test_payload_sizes_around_powers_of_two(void **state) {
  (void)state;
  const jwtkit_alg algs[] = {JWTKIT_ALG_HS256, JWTKIT_ALG_ES256};
  static const char head[] = "{\"exp\":1700000600,\"pad\":\"";
  static const char tail[] = "\"}";
  char *claims = malloc(8192 + 8);
  assert_non_null(claims);
  for (size_t a = 0; a < sizeof algs / sizeof *algs; a++) {
    jwtkit_key *k = tu_key(algs[a]);
    jwtkit_verifier *v = verifier(k, NULL);
    size_t tested = 0;
    for (size_t pow = 32; pow <= 8192; pow *= 2) {
      for (size_t size = pow - 4; size <= pow + 4; size++) {
        size_t pad = size - (sizeof head - 1) - (sizeof tail - 1);
        memcpy(claims, head, sizeof head - 1);
        memset(claims + sizeof head - 1, 'x', pad);
        memcpy(claims + sizeof head - 1 + pad, tail, sizeof tail);
        assert_int_equal(strlen(claims), size);
        char *tok = sign_claims(k, NULL, claims);
        jwtkit_errinfo ei;
        jwtkit_err rc = jwtkit_verify_at(v, tok, strlen(tok), NOW, NULL, &ei);
        if (rc != JWTKIT_OK) fail_msg("%s payload of %zu bytes, no claims: %s", jwtkit_alg_name(algs[a]), size, ei.msg);
        jwtkit_claims *c = NULL;
        rc = jwtkit_verify_at(v, tok, strlen(tok), NOW, &c, &ei);
        if (rc != JWTKIT_OK) fail_msg("%s payload of %zu bytes, claims: %s", jwtkit_alg_name(algs[a]), size, ei.msg);
        size_t pl = 0;
        const char *pj = jwtkit_claims_json(c, &pl);
        assert_int_equal(pl, size);
        assert_memory_equal(pj, claims, size);
        assert_int_equal(pj[pl], '\0');
        jwtkit_claims_free(c);
        /* the same size, expired: the verdict-only path also decides claims */
        assert_int_equal(jwtkit_verify_at(v, tok, strlen(tok), NOW + 3600, NULL, NULL), JWTKIT_ERR_EXPIRED);
        jwtkit_free(tok);
        tested++;
      }
    }
    assert_int_equal(tested, 9 * 9);
    jwtkit_verifier_free(v);
  }
  free(claims);
}

static void typ_at_setup(jwtkit_policy *p) { assert_int_equal(jwtkit_policy_set_typ(p, "at+jwt"), JWTKIT_OK); }

/* Header strings are compared after unescaping: an "alg" or "typ" written
 * entirely with \u escapes (six bytes a character) is the same value.  An
 * alg with three or more escapes was once refused because its escaped
 * length was compared against the longest name. */
static void test_escaped_header_values(void **state) {
  (void)state;
  jwtkit_key *k = tu_key(JWTKIT_ALG_ES256);
  jwtkit_verifier *v = verifier(k, typ_at_setup);
  static const char *const hdrs[] = {
      "{\"alg\":\"\\u0045S256\",\"typ\":\"at+jwt\"}",
      "{\"alg\":\"\\u0045\\u0053\\u0032\\u0035\\u0036\",\"typ\":\"at+jwt\"}",
      ("{\"alg\":\"ES256\",\"typ\":\"\\u0061\\u0070\\u0070\\u006c\\u0069\\u0063\\u0061\\u0074\\u0069\\u006f\\u006e"
       "\\u002f\\u0061\\u0074\\u002b\\u006a\\u0077\\u0074\"}"),
  };
  for (size_t i = 0; i < sizeof hdrs / sizeof *hdrs; i++) {
    char *tok = tu_sign_raw(k, hdrs[i], "{\"exp\":1700000600}");
    jwtkit_errinfo ei;
    jwtkit_err rc = jwtkit_verify_at(v, tok, strlen(tok), NOW, NULL, &ei);
    if (rc != JWTKIT_OK) fail_msg("header %s: %s", hdrs[i], ei.msg);
    free(tok);
  }
  /* and still refused when the unescaped value is another algorithm */
  char *tok = tu_sign_raw(k, "{\"alg\":\"\\u0045\\u0053\\u0032\\u0035\\u0037\",\"typ\":\"at+jwt\"}", "{\"exp\":1700000600}");
  assert_int_equal(jwtkit_verify_at(v, tok, strlen(tok), NOW, NULL, NULL), JWTKIT_ERR_ALG_NOT_ALLOWED);
  free(tok);
  jwtkit_verifier_free(v);
}

static void test_claimset(void **state) {
  (void)state;
  jwtkit_claimset *cs = jwtkit_claimset_new();
  const char *merge = "{\"scope\":\"a b\",\"n\":[1,2]}";
  assert_int_equal(jwtkit_claimset_merge_json(cs, merge, strlen(merge)), JWTKIT_OK);
  assert_int_equal(jwtkit_claimset_set_string(cs, "iss", "https://issuer"), JWTKIT_OK);
  assert_int_equal(jwtkit_claimset_add_audience(cs, "one"), JWTKIT_OK);
  assert_int_equal(jwtkit_claimset_add_audience(cs, "two"), JWTKIT_OK);
  assert_int_equal(jwtkit_claimset_add_audience(cs, "thr\"ee"), JWTKIT_OK);
  assert_int_equal(jwtkit_claimset_set_lifetime(cs, NOW, 900), JWTKIT_OK);
  assert_int_equal(jwtkit_claimset_set_bool(cs, "admin", 0), JWTKIT_OK);
  assert_int_equal(jwtkit_claimset_set_json(cs, "obj", "{\"k\":null}", 10), JWTKIT_OK);
  assert_int_equal(jwtkit_claimset_set_string(cs, "scope", "replaced"), JWTKIT_OK);
  assert_int_equal(jwtkit_claimset_set_jti(cs), JWTKIT_OK);
  /* a failed setter is sticky: the claimset is never serialised or signed */
  jwtkit_claimset *bad = jwtkit_claimset_new();
  assert_int_equal(jwtkit_claimset_set_string(bad, "sub", "alice"), JWTKIT_OK);
  assert_int_equal(jwtkit_claimset_set_json(bad, "bad", "{\"k\":}", 6), JWTKIT_ERR_MALFORMED);
  assert_int_equal(jwtkit_claimset_set_string(bad, "bad", "\xff"), JWTKIT_ERR_INVALID_ARG);
  assert_int_equal(jwtkit_claimset_set_lifetime(bad, NOW, 0), JWTKIT_ERR_INVALID_ARG);
  assert_int_equal(jwtkit_claimset_set_string(bad, "iss", "https://issuer"), JWTKIT_OK);
  char *bj = (char *)1;
  size_t bn = 0;
  assert_int_equal(jwtkit_claimset_to_json(bad, &bj, &bn), JWTKIT_ERR_MALFORMED); /* the first error */
  assert_null(bj);
  jwtkit_signer *bs = NULL;
  assert_int_equal(jwtkit_signer_new(&bs, tu_key(JWTKIT_ALG_HS256), NULL, NULL), JWTKIT_OK);
  jwtkit_errinfo bei;
  char *btok = (char *)1;
  assert_int_equal(jwtkit_signer_sign_claimset(bs, bad, &btok, NULL, &bei), JWTKIT_ERR_MALFORMED);
  assert_null(btok);
  assert_non_null(strstr(bei.msg, "jwtkit_claimset_set_json failed earlier"));
  jwtkit_signer_free(bs);
  jwtkit_claimset_free(bad);
  /* "" is a valid member name, and merging keeps it */
  jwtkit_claimset *empty = jwtkit_claimset_new();
  assert_int_equal(jwtkit_claimset_merge_json(empty, "{\"\":1,\"a\":2}", 12), JWTKIT_OK);
  char *ej = NULL;
  size_t en;
  assert_int_equal(jwtkit_claimset_to_json(empty, &ej, &en), JWTKIT_OK);
  assert_string_equal(ej, "{\"\":1,\"a\":2}");
  jwtkit_free(ej);
  jwtkit_claimset_free(empty);
  char *json = NULL;
  size_t n;
  assert_int_equal(jwtkit_claimset_to_json(cs, &json, &n), JWTKIT_OK);
  const char *expect_prefix =
      "{\"scope\":\"replaced\",\"n\":[1,2],\"iss\":\"https://issuer\",\"aud\":[\"one\",\"two\",\"thr\\\"ee\"],"
      "\"iat\":1700000000,\"exp\":1700000900,\"admin\":false,\"obj\":{\"k\":null},\"jti\":\"";
  assert_int_equal(strncmp(json, expect_prefix, strlen(expect_prefix)), 0);
  assert_int_equal(strlen(json) - strlen(expect_prefix), 22 + 2); /* 128-bit jti, quote, brace */
  jwtkit_free(json);

  /* sign it and read everything back through the accessors */
  jwtkit_key *k = tu_key(JWTKIT_ALG_ES256);
  jwtkit_signer *s = NULL;
  assert_int_equal(jwtkit_signer_new(&s, k, NULL, NULL), JWTKIT_OK);
  char *tok = NULL;
  assert_int_equal(jwtkit_signer_sign_claimset(s, cs, &tok, &n, NULL), JWTKIT_OK);
  jwtkit_policy *p = jwtkit_policy_new();
  assert_int_equal(jwtkit_policy_allow_alg(p, JWTKIT_ALG_ES256), JWTKIT_OK);
  assert_int_equal(jwtkit_policy_add_key(p, k), JWTKIT_OK);
  assert_int_equal(jwtkit_policy_add_audience(p, "thr\"ee"), JWTKIT_OK);
  assert_int_equal(jwtkit_policy_add_issuer(p, "https://issuer"), JWTKIT_OK);
  jwtkit_verifier *v = NULL;
  assert_int_equal(jwtkit_verifier_new(&v, p, NULL), JWTKIT_OK);
  jwtkit_claims *c = NULL;
  assert_int_equal(jwtkit_verify_at(v, tok, n, NOW + 10, &c, NULL), JWTKIT_OK);
  const char *str;
  size_t sl;
  int64_t iv;
  int bv;
  assert_int_equal(jwtkit_claims_get_string(c, "scope", &str, &sl), JWTKIT_OK);
  assert_string_equal(str, "replaced");
  assert_int_equal(sl, 8);
  assert_int_equal(jwtkit_claims_get_int(c, "exp", &iv), JWTKIT_OK);
  assert_int_equal(iv, NOW + 900);
  assert_int_equal(jwtkit_claims_get_bool(c, "admin", &bv), JWTKIT_OK);
  assert_int_equal(bv, 0);
  assert_int_equal(jwtkit_claims_get_json(c, "obj", &str, &sl), JWTKIT_OK);
  assert_int_equal(sl, 10);
  assert_memory_equal(str, "{\"k\":null}", 10);
  assert_int_equal(jwtkit_claims_get_json(c, "iss", &str, &sl), JWTKIT_OK);
  assert_memory_equal(str, "\"https://issuer\"", sl);
  assert_int_equal(jwtkit_claims_get_string(c, "n", &str, NULL), JWTKIT_ERR_TYPE);
  assert_int_equal(jwtkit_claims_get_int(c, "scope", &iv), JWTKIT_ERR_TYPE);
  assert_int_equal(jwtkit_claims_get_bool(c, "exp", &bv), JWTKIT_ERR_TYPE);
  assert_int_equal(jwtkit_claims_get_string(c, "nope", &str, NULL), JWTKIT_ERR_NOT_FOUND);
  assert_int_equal(jwtkit_claims_get_string(NULL, "x", &str, NULL), JWTKIT_ERR_INVALID_ARG);
  size_t jl;
  assert_non_null(jwtkit_claims_json(c, &jl));
  assert_non_null(strstr(jwtkit_claims_header_json(c, NULL), "\"ES256\""));
  assert_null(jwtkit_claims_kid(c));
  assert_ptr_equal(jwtkit_claims_key(c), k); /* the key that verified it */
  /* NumericDates as the verifier reads them */
  int64_t fl = 0, ce = 0;
  assert_int_equal(jwtkit_claims_get_numericdate(c, "exp", &fl, &ce), JWTKIT_OK);
  assert_true(fl == NOW + 900 && ce == NOW + 900);
  assert_int_equal(jwtkit_claims_get_numericdate(c, "scope", &fl, NULL), JWTKIT_ERR_TYPE);
  assert_int_equal(jwtkit_claims_get_numericdate(c, "nope", NULL, NULL), JWTKIT_ERR_NOT_FOUND);
  /* string lists: "aud" is an array here, "iss" a plain string, "n" numbers */
  size_t cnt = 0;
  assert_int_equal(jwtkit_claims_get_string_list(c, "aud", &cnt), JWTKIT_OK);
  assert_int_equal(cnt, 3);
  assert_int_equal(jwtkit_claims_get_string_item(c, "aud", 2, &str, &sl), JWTKIT_OK);
  assert_string_equal(str, "thr\"ee");
  assert_int_equal(sl, 6);
  assert_int_equal(jwtkit_claims_get_string_item(c, "aud", 3, &str, &sl), JWTKIT_ERR_NOT_FOUND);
  assert_int_equal(jwtkit_claims_get_string_list(c, "iss", &cnt), JWTKIT_OK);
  assert_int_equal(cnt, 1);
  assert_int_equal(jwtkit_claims_get_string_item(c, "iss", 0, &str, NULL), JWTKIT_OK);
  assert_string_equal(str, "https://issuer");
  assert_int_equal(jwtkit_claims_get_string_list(c, "n", &cnt), JWTKIT_ERR_TYPE);
  assert_int_equal(jwtkit_claims_get_string_list(c, "exp", &cnt), JWTKIT_ERR_TYPE);
  /* members in order */
  static const char *const order[] = {"scope", "n", "iss", "aud", "iat", "exp", "admin", "obj", "jti"};
  size_t cur = 0, m = 0;
  const char *name, *js;
  while (jwtkit_claims_next(c, &cur, &name, &js, &sl) == JWTKIT_OK) {
    assert_true(m < sizeof order / sizeof *order);
    assert_string_equal(name, order[m]);
    const char *want = NULL;
    size_t wl = 0;
    assert_int_equal(jwtkit_claims_get_json(c, name, &want, &wl), JWTKIT_OK);
    assert_ptr_equal(js, want);
    assert_int_equal(sl, wl);
    m++;
  }
  assert_int_equal(m, sizeof order / sizeof *order);
  assert_int_equal(jwtkit_claims_next(c, &cur, &name, NULL, NULL), JWTKIT_ERR_NOT_FOUND);
  assert_int_equal(jwtkit_claims_next(NULL, &cur, NULL, NULL, NULL), JWTKIT_ERR_INVALID_ARG);
  /* claims keep their key alive after the verifier is gone */
  jwtkit_verifier_free(v);
  v = NULL;
  assert_int_equal(jwtkit_key_alg(jwtkit_claims_key(c)), JWTKIT_ALG_ES256);
  jwtkit_claims_free(c);
  jwtkit_verifier_free(v);
  jwtkit_policy_free(p);
  jwtkit_signer_free(s);
  jwtkit_free(tok);
  jwtkit_claimset_free(cs);
}

static void test_escaped_strings_in_claims(void **state) {
  (void)state;
  jwtkit_key *k = tu_key(JWTKIT_ALG_HS256);
  char *tok = sign_claims(k, NULL,
                          "{\"exp\":1700000600,\"\\u0073ub\":\"caf\\u00e9\\n\",\"emoji\":\"\\ud83d\\ude00\"}");
  jwtkit_verifier *v = tu_verifier(k);
  jwtkit_claims *c = NULL;
  assert_int_equal(jwtkit_verify_at(v, tok, strlen(tok), NOW, &c, NULL), JWTKIT_OK);
  const char *s;
  assert_int_equal(jwtkit_claims_get_string(c, "sub", &s, NULL), JWTKIT_OK);
  assert_string_equal(s, "caf\xc3\xa9\n");
  assert_int_equal(jwtkit_claims_get_string(c, "emoji", &s, NULL), JWTKIT_OK);
  assert_string_equal(s, "\xf0\x9f\x98\x80");
  /* raw JSON stays as signed */
  const char *raw;
  size_t rl;
  assert_int_equal(jwtkit_claims_get_json(c, "sub", &raw, &rl), JWTKIT_OK);
  assert_memory_equal(raw, "\"caf\\u00e9\\n\"", rl);
  jwtkit_claims_free(c);
  jwtkit_verifier_free(v);
  jwtkit_free(tok);
}

/* ---------------------------------------------------------- claim checks */

static jwtkit_key *g_k;

static jwtkit_err vclaims(void (*setup)(jwtkit_policy *), const char *claims, int64_t now, jwtkit_errinfo *ei) {
  char *tok = sign_claims(g_k, NULL, claims);
  jwtkit_verifier *v = verifier(g_k, setup);
  jwtkit_err rc = check_at(v, tok, now, ei);
  jwtkit_verifier_free(v);
  jwtkit_free(tok);
  return rc;
}

static void no_exp(jwtkit_policy *p) { assert_int_equal(jwtkit_policy_set_require_exp(p, 0), JWTKIT_OK); }
static void leeway0(jwtkit_policy *p) { assert_int_equal(jwtkit_policy_set_leeway(p, 0), JWTKIT_OK); }
static void iss_ab(jwtkit_policy *p) {
  assert_int_equal(jwtkit_policy_add_issuer(p, "a"), JWTKIT_OK);
  assert_int_equal(jwtkit_policy_add_issuer(p, "b"), JWTKIT_OK);
}
static void aud_api(jwtkit_policy *p) { assert_int_equal(jwtkit_policy_add_audience(p, "api"), JWTKIT_OK); }
static void ignore_aud(jwtkit_policy *p) { assert_int_equal(jwtkit_policy_ignore_audience(p), JWTKIT_OK); }
static void sub_alice(jwtkit_policy *p) { assert_int_equal(jwtkit_policy_set_subject(p, "alice"), JWTKIT_OK); }
static void need_scope(jwtkit_policy *p) { assert_int_equal(jwtkit_policy_require_claim(p, "scope"), JWTKIT_OK); }
static void max_age_60(jwtkit_policy *p) {
  assert_int_equal(jwtkit_policy_set_max_age(p, 60), JWTKIT_OK);
  assert_int_equal(jwtkit_policy_set_leeway(p, 0), JWTKIT_OK);
}
static void typ_jwt(jwtkit_policy *p) { assert_int_equal(jwtkit_policy_set_typ(p, "application/JWT"), JWTKIT_OK); }
static void typ_at(jwtkit_policy *p) { assert_int_equal(jwtkit_policy_set_typ(p, "at+jwt"), JWTKIT_OK); }

static void test_time_claims(void **state) {
  (void)state;
  g_k = tu_key(JWTKIT_ALG_HS256);
  jwtkit_errinfo ei;
  /* exp: required by default, exclusive, leeway 60 s */
  assert_int_equal(vclaims(NULL, "{}", NOW, &ei), JWTKIT_ERR_CLAIM_MISSING);
  assert_string_equal(ei.field, "exp");
  assert_int_equal(vclaims(no_exp, "{}", NOW, &ei), JWTKIT_OK);
  assert_int_equal(vclaims(NULL, "{\"exp\":1700000000}", NOW + 59, &ei), JWTKIT_OK);
  assert_int_equal(vclaims(NULL, "{\"exp\":1700000000}", NOW + 60, &ei), JWTKIT_ERR_EXPIRED);
  assert_non_null(strstr(ei.msg, "expired"));
  assert_int_equal(vclaims(leeway0, "{\"exp\":1700000000}", NOW - 1, &ei), JWTKIT_OK);
  assert_int_equal(vclaims(leeway0, "{\"exp\":1700000000}", NOW, &ei), JWTKIT_ERR_EXPIRED);
  /* fractional NumericDate: valid strictly before the instant */
  assert_int_equal(vclaims(leeway0, "{\"exp\":1700000000.5}", NOW, &ei), JWTKIT_OK);
  assert_int_equal(vclaims(leeway0, "{\"exp\":1700000000.5}", NOW + 1, &ei), JWTKIT_ERR_EXPIRED);
  /* type errors are malformed, never ignored */
  assert_int_equal(vclaims(NULL, "{\"exp\":\"1700000600\"}", NOW, &ei), JWTKIT_ERR_MALFORMED);
  assert_int_equal(vclaims(NULL, "{\"exp\":null}", NOW, &ei), JWTKIT_ERR_MALFORMED);
  assert_int_equal(vclaims(NULL, "{\"exp\":1e15}", NOW, &ei), JWTKIT_ERR_MALFORMED); /* out of range */
  /* exponent forms are NumericDates too, read exactly (an issuer sent
   * "exp":1.7000036e+09 in real tokens) */
  assert_int_equal(vclaims(leeway0, "{\"exp\":1.7e9}", NOW - 1, &ei), JWTKIT_OK);
  assert_int_equal(vclaims(leeway0, "{\"exp\":1.7e9}", NOW, &ei), JWTKIT_ERR_EXPIRED);
  assert_int_equal(vclaims(leeway0, "{\"exp\":1.7000036e+09}", NOW + 3599, &ei), JWTKIT_OK);
  assert_int_equal(vclaims(leeway0, "{\"exp\":1.7000036e+09}", NOW + 3600, &ei), JWTKIT_ERR_EXPIRED);
  assert_int_equal(vclaims(leeway0, "{\"exp\":17000000005E-1}", NOW, &ei), JWTKIT_OK); /* 1700000000.5 */
  assert_int_equal(vclaims(leeway0, "{\"exp\":17000000005E-1}", NOW + 1, &ei), JWTKIT_ERR_EXPIRED);
  assert_int_equal(vclaims(leeway0, "{\"exp\":1.8e9,\"nbf\":1.700000001e9}", NOW, &ei), JWTKIT_ERR_NOT_YET_VALID);
  assert_int_equal(vclaims(leeway0, "{\"exp\":1.8e9,\"iat\":1.7e9,\"nbf\":1.7e9}", NOW, &ei), JWTKIT_OK);
  /* nbf */
  assert_int_equal(vclaims(leeway0, "{\"exp\":1800000000,\"nbf\":1700000001}", NOW, &ei), JWTKIT_ERR_NOT_YET_VALID);
  assert_int_equal(vclaims(leeway0, "{\"exp\":1800000000,\"nbf\":1700000000}", NOW, &ei), JWTKIT_OK);
  assert_int_equal(vclaims(NULL, "{\"exp\":1800000000,\"nbf\":1700000060}", NOW, &ei), JWTKIT_OK);
  assert_int_equal(vclaims(NULL, "{\"exp\":1800000000,\"nbf\":1700000061}", NOW, &ei), JWTKIT_ERR_NOT_YET_VALID);
  /* iat in the future */
  assert_int_equal(vclaims(NULL, "{\"exp\":1800000000,\"iat\":1700000061}", NOW, &ei), JWTKIT_ERR_ISSUED_IN_FUTURE);
  assert_int_equal(vclaims(NULL, "{\"exp\":1800000000,\"iat\":1700000060}", NOW, &ei), JWTKIT_OK);
  /* max age */
  assert_int_equal(vclaims(max_age_60, "{\"exp\":1800000000}", NOW, &ei), JWTKIT_ERR_CLAIM_MISSING);
  assert_int_equal(vclaims(max_age_60, "{\"exp\":1800000000,\"iat\":1699999940}", NOW, &ei), JWTKIT_OK);
  assert_int_equal(vclaims(max_age_60, "{\"exp\":1800000000,\"iat\":1699999939}", NOW, &ei), JWTKIT_ERR_TOO_OLD);
}

static void test_identity_claims(void **state) {
  (void)state;
  g_k = tu_key(JWTKIT_ALG_HS256);
  jwtkit_errinfo ei;
  assert_int_equal(vclaims(iss_ab, "{\"exp\":1800000000,\"iss\":\"b\"}", NOW, &ei), JWTKIT_OK);
  assert_int_equal(vclaims(iss_ab, "{\"exp\":1800000000,\"iss\":\"c\"}", NOW, &ei), JWTKIT_ERR_CLAIM_MISMATCH);
  assert_string_equal(ei.field, "iss");
  assert_int_equal(vclaims(iss_ab, "{\"exp\":1800000000,\"iss\":\"A\"}", NOW, &ei), JWTKIT_ERR_CLAIM_MISMATCH);
  assert_int_equal(vclaims(iss_ab, "{\"exp\":1800000000,\"iss\":[\"a\"]}", NOW, &ei), JWTKIT_ERR_CLAIM_MISMATCH);
  assert_int_equal(vclaims(iss_ab, "{\"exp\":1800000000}", NOW, &ei), JWTKIT_ERR_CLAIM_MISSING);
  /* aud: string or array, any-of */
  assert_int_equal(vclaims(aud_api, "{\"exp\":1800000000,\"aud\":\"api\"}", NOW, &ei), JWTKIT_OK);
  assert_int_equal(vclaims(aud_api, "{\"exp\":1800000000,\"aud\":[\"x\",\"api\"]}", NOW, &ei), JWTKIT_OK);
  assert_int_equal(vclaims(aud_api, "{\"exp\":1800000000,\"aud\":[\"x\",\"y\"]}", NOW, &ei), JWTKIT_ERR_CLAIM_MISMATCH);
  assert_string_equal(ei.field, "aud");
  assert_int_equal(vclaims(aud_api, "{\"exp\":1800000000,\"aud\":[\"api\",1]}", NOW, &ei), JWTKIT_ERR_MALFORMED);
  assert_int_equal(vclaims(aud_api, "{\"exp\":1800000000,\"aud\":[]}", NOW, &ei), JWTKIT_ERR_CLAIM_MISMATCH);
  assert_int_equal(vclaims(aud_api, "{\"exp\":1800000000}", NOW, &ei), JWTKIT_ERR_CLAIM_MISSING);
  /* a token with an audience needs a verifier that knows its own */
  assert_int_equal(vclaims(NULL, "{\"exp\":1800000000,\"aud\":\"api\"}", NOW, &ei), JWTKIT_ERR_CLAIM_MISMATCH);
  assert_int_equal(vclaims(ignore_aud, "{\"exp\":1800000000,\"aud\":\"api\"}", NOW, &ei), JWTKIT_OK);
  /* sub and required claims */
  assert_int_equal(vclaims(sub_alice, "{\"exp\":1800000000,\"sub\":\"alice\"}", NOW, &ei), JWTKIT_OK);
  assert_int_equal(vclaims(sub_alice, "{\"exp\":1800000000,\"sub\":\"bob\"}", NOW, &ei), JWTKIT_ERR_CLAIM_MISMATCH);
  assert_int_equal(vclaims(need_scope, "{\"exp\":1800000000}", NOW, &ei), JWTKIT_ERR_CLAIM_MISSING);
  assert_string_equal(ei.field, "scope");
  assert_int_equal(vclaims(need_scope, "{\"exp\":1800000000,\"scope\":null}", NOW, &ei), JWTKIT_OK);
}

static void test_typ(void **state) {
  (void)state;
  jwtkit_key *k = tu_key(JWTKIT_ALG_HS256);
  static const struct {
    const char *typ;
    void (*setup)(jwtkit_policy *);
    jwtkit_err want;
  } cases[] = {{"JWT", typ_jwt, JWTKIT_OK},           {"jwt", typ_jwt, JWTKIT_OK},
               {"application/jwt", typ_jwt, JWTKIT_OK}, {"at+jwt", typ_jwt, JWTKIT_ERR_CLAIM_MISMATCH},
               {"at+jwt", typ_at, JWTKIT_OK},          {"application/at+JWT", typ_at, JWTKIT_OK},
               {"JWT", typ_at, JWTKIT_ERR_CLAIM_MISMATCH}, {"text/jwt", typ_jwt, JWTKIT_ERR_CLAIM_MISMATCH},
               {"", typ_jwt, JWTKIT_ERR_CLAIM_MISSING}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    jwtkit_sign_opts o = {.typ = cases[i].typ};
    char *tok = sign_claims(k, &o, "{\"exp\":1800000000}");
    jwtkit_verifier *v = verifier(k, cases[i].setup);
    jwtkit_errinfo ei;
    jwtkit_err rc = check_at(v, tok, NOW, &ei);
    if (rc != cases[i].want) fail_msg("typ %s: got %s", cases[i].typ, jwtkit_errname(rc));
    jwtkit_verifier_free(v);
    jwtkit_free(tok);
  }
}

static void test_policy_validation(void **state) {
  (void)state;
  jwtkit_policy *p = jwtkit_policy_new();
  jwtkit_verifier *v = NULL;
  jwtkit_errinfo ei;
  /* no algorithm: refused, there is no default */
  assert_int_equal(jwtkit_policy_add_key(p, tu_key(JWTKIT_ALG_HS256)), JWTKIT_OK);
  assert_int_equal(jwtkit_verifier_new(&v, p, &ei), JWTKIT_ERR_INVALID_ARG);
  assert_string_equal(ei.field, "alg");
  /* a key whose alg is not allowed */
  assert_int_equal(jwtkit_policy_allow_alg(p, JWTKIT_ALG_RS256), JWTKIT_OK);
  assert_int_equal(jwtkit_verifier_new(&v, p, &ei), JWTKIT_ERR_INVALID_ARG);
  assert_int_equal(jwtkit_policy_allow_alg(p, JWTKIT_ALG_HS256), JWTKIT_OK);
  assert_int_equal(jwtkit_verifier_new(&v, p, &ei), JWTKIT_OK);
  jwtkit_verifier_free(v);
  /* bounds */
  assert_int_equal(jwtkit_policy_allow_alg(p, JWTKIT_ALG_UNSPEC), JWTKIT_ERR_INVALID_ARG);
  assert_int_equal(jwtkit_policy_allow_alg(p, (jwtkit_alg)99), JWTKIT_ERR_INVALID_ARG);
  assert_int_equal(jwtkit_policy_set_leeway(p, -1), JWTKIT_ERR_INVALID_ARG);
  assert_int_equal(jwtkit_policy_set_leeway(p, JWTKIT_MAX_LEEWAY + 1), JWTKIT_ERR_INVALID_ARG);
  assert_int_equal(jwtkit_policy_set_leeway(p, JWTKIT_MAX_LEEWAY), JWTKIT_OK);
  assert_int_equal(jwtkit_policy_add_issuer(p, ""), JWTKIT_ERR_INVALID_ARG);
  assert_int_equal(jwtkit_policy_add_issuer(p, NULL), JWTKIT_ERR_INVALID_ARG);
  assert_int_equal(jwtkit_policy_set_max_token(p, 1), JWTKIT_ERR_INVALID_ARG);
  /* no key */
  jwtkit_policy *q = jwtkit_policy_new();
  assert_int_equal(jwtkit_policy_allow_alg(q, JWTKIT_ALG_HS256), JWTKIT_OK);
  assert_int_equal(jwtkit_verifier_new(&v, q, &ei), JWTKIT_ERR_INVALID_ARG);
  jwtkit_policy_free(q);
  jwtkit_policy_free(p);
  jwtkit_policy_free(NULL);
  jwtkit_verifier_free(NULL);
}

static int64_t fixed_clock(void *ctx) { return *(int64_t *)ctx; }

static void test_injected_clock(void **state) {
  (void)state;
  jwtkit_key *k = tu_key(JWTKIT_ALG_HS256);
  char *tok = sign_claims(k, NULL, "{\"exp\":1700000000}");
  int64_t now = NOW - 100;
  jwtkit_policy *p = jwtkit_policy_new();
  assert_int_equal(jwtkit_policy_allow_alg(p, JWTKIT_ALG_HS256), JWTKIT_OK);
  assert_int_equal(jwtkit_policy_add_key(p, k), JWTKIT_OK);
  assert_int_equal(jwtkit_policy_set_clock(p, fixed_clock, &now), JWTKIT_OK);
  jwtkit_verifier *v = NULL;
  assert_int_equal(jwtkit_verifier_new(&v, p, NULL), JWTKIT_OK);
  assert_int_equal(jwtkit_verify(v, tok, strlen(tok), NULL, NULL), JWTKIT_OK);
  now = NOW + 3600;
  assert_int_equal(jwtkit_verify(v, tok, strlen(tok), NULL, NULL), JWTKIT_ERR_EXPIRED);
  jwtkit_verifier_free(v);
  jwtkit_policy_free(p);
  jwtkit_free(tok);
}

static void test_large_payload_nodes(void **state) {
  (void)state;
  /* more values than the inline node array holds */
  jwtkit_key *k = tu_key(JWTKIT_ALG_HS256);
  char claims[4096];
  size_t n = (size_t)snprintf(claims, sizeof claims, "{\"exp\":1800000000,\"list\":[");
  for (int i = 0; i < 300; i++) n += (size_t)snprintf(claims + n, sizeof claims - n, "%s%d", i ? "," : "", i);
  snprintf(claims + n, sizeof claims - n, "],\"last\":\"x\"}");
  char *tok = sign_claims(k, NULL, claims);
  jwtkit_verifier *v = tu_verifier(k);
  jwtkit_claims *c = NULL;
  assert_int_equal(jwtkit_verify_at(v, tok, strlen(tok), NOW, &c, NULL), JWTKIT_OK);
  const char *s;
  assert_int_equal(jwtkit_claims_get_string(c, "last", &s, NULL), JWTKIT_OK);
  assert_string_equal(s, "x");
  jwtkit_claims_free(c);
  jwtkit_verifier_free(v);
  jwtkit_free(tok);
}

static void test_decode_unverified(void **state) {
  (void)state;
  char *h, *p;
  size_t hl, pl;
  jwtkit_errinfo ei;
  assert_int_equal(jwtkit_decode_unverified("a.b", 3, &h, &hl, &p, &pl, &ei), JWTKIT_ERR_MALFORMED);
  assert_null(h);
  char *tok = tu_token("{\"alg\":\"none\"}", "{\"a\":1}", (const unsigned char *)"", 0);
  assert_int_equal(jwtkit_decode_unverified(tok, strlen(tok), &h, &hl, &p, &pl, &ei), JWTKIT_OK);
  assert_string_equal(p, "{\"a\":1}");
  jwtkit_free(h);
  jwtkit_free(p);
  free(tok);
  tok = tu_token("{\"alg\":\"none\"}", "{\"a\":1,\"a\":2}", (const unsigned char *)"", 0);
  assert_int_equal(jwtkit_decode_unverified(tok, strlen(tok), &h, &hl, &p, &pl, &ei), JWTKIT_ERR_MALFORMED);
  assert_string_equal(ei.field, "payload");
  free(tok);
}

static void test_strerror_table(void **state) {
  (void)state;
  assert_string_equal(jwtkit_strerror(JWTKIT_OK), "success");
  assert_string_equal(jwtkit_strerror(JWTKIT_ERR_BAD_SIGNATURE), "bad signature");
  assert_string_equal(jwtkit_errname(JWTKIT_ERR_EXPIRED), "EXPIRED");
  assert_string_equal(jwtkit_strerror((jwtkit_err)1000), "unknown error");
  /* stable numbers */
  assert_int_equal(JWTKIT_ERR_MALFORMED, 1);
  assert_int_equal(JWTKIT_ERR_BAD_SIGNATURE, 2);
  assert_int_equal(JWTKIT_ERR_EXPIRED, 5);
  assert_int_equal(JWTKIT_ERR_NOMEM, 12);
  assert_string_equal(jwtkit_version(), JWTKIT_VERSION);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roundtrip_every_alg), cmocka_unit_test(test_header_options),
      cmocka_unit_test(test_sign_buf),            cmocka_unit_test(test_payload_sizes_around_powers_of_two),
      cmocka_unit_test(test_escaped_header_values),            cmocka_unit_test(test_claimset),
      cmocka_unit_test(test_escaped_strings_in_claims), cmocka_unit_test(test_time_claims),
      cmocka_unit_test(test_identity_claims),     cmocka_unit_test(test_typ),
      cmocka_unit_test(test_policy_validation),   cmocka_unit_test(test_injected_clock),
      cmocka_unit_test(test_large_payload_nodes), cmocka_unit_test(test_decode_unverified),
      cmocka_unit_test(test_strerror_table),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
