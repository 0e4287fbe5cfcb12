/*
 * token: the compact parser and verifier.
 *
 * Mode 1 (first byte >= 0x20, i.e. anything that can start a token): the
 * input is a compact token.  Three fixed verifiers (all algorithms allowed,
 * audience ignored, exp optional, clock at 1300819000 so the RFC 7515
 * example tokens are valid) verify it:
 *   A: RFC 7515 A.1 HS256, A.2 RS256, A.3 ES256, A.4 ES512, RFC 8037 Ed25519
 *   B: RFC 7520 RSA as RS256 and PS384, EC P-521 as ES512, HMAC as HS256,
 *      all without kid (tokens with a kid fall back to them)
 *   C: RFC 7520 RSA as RS256 and HMAC as HS256 with their kids
 * and jwtkit_decode_unverified decodes it.  Properties: a verified token
 * decodes, its claims and header are the decoded bytes, the claims
 * accessors work, the verdict does not depend on whether claims are asked
 * for, errinfo matches the result.
 *
 * Mode 2 (first byte < 0x20): byte 0 selects one of 14 signing keys (every
 * algorithm, Ed25519 and Ed448) and a header variant; the rest is a claims
 * JSON text.  Whenever signing succeeds the token must verify with the
 * public key (claim checks may refuse it, a signature or parse failure may
 * not) with and without claims handed out, decode to exactly the claims,
 * and fail with BAD_SIGNATURE once its signature is altered.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

#define RFC_NOW 1300819000 /* RFC 7515 A.1-A.4 tokens expire at 1300819380 */
#define RT_NOW 1700000000

static jwtkit_verifier *g_ver[3];
static jwtkit_key *g_sign[14];
static jwtkit_verifier *g_sign_ver[14];
static int g_ready;

static jwtkit_verifier *make_verifier(jwtkit_key **keys, size_t n, size_t max_token) {
  jwtkit_policy *p = jwtkit_policy_new();
  JKF_CHECK(p != NULL, "policy_new");
  for (int a = 1; a < JWTKIT_ALG_COUNT; a++) JKF_CHECK(jwtkit_policy_allow_alg(p, (jwtkit_alg)a) == JWTKIT_OK, "allow");
  for (size_t i = 0; i < n; i++) {
    JKF_CHECK(jwtkit_policy_add_key(p, keys[i]) == JWTKIT_OK, "add_key");
    jwtkit_key_free(keys[i]);
  }
  JKF_CHECK(jwtkit_policy_ignore_audience(p) == JWTKIT_OK, "ignore_audience");
  JKF_CHECK(jwtkit_policy_set_require_exp(p, 0) == JWTKIT_OK, "require_exp");
  JKF_CHECK(jwtkit_policy_set_max_token(p, max_token) == JWTKIT_OK, "max_token");
  jwtkit_verifier *v = NULL;
  jwtkit_errinfo info;
  jwtkit_err rc = jwtkit_verifier_new(&v, p, &info);
  JKF_CHECK(rc == JWTKIT_OK, "verifier_new: %s", info.msg);
  jwtkit_policy_free(p);
  return v;
}

static jwtkit_key *gen(jwtkit_alg alg, unsigned bits) {
  jwtkit_key *k = NULL;
  JKF_CHECK(jwtkit_key_generate(&k, alg, bits, NULL) == JWTKIT_OK, "generate %s", jwtkit_alg_name(alg));
  return k;
}

static void init(void) {
  if (g_ready) return;
  g_ready = 1;
  jwtkit_key *a[] = {
      jkf_key_from_jwk(jkf_rfc7515_a1_hs256, JWTKIT_ALG_HS256, NULL),
      jkf_key_from_jwk(jkf_rfc7515_a2_rs256_pub, JWTKIT_ALG_RS256, NULL),
      jkf_key_from_jwk(jkf_rfc7515_a3_es256, JWTKIT_ALG_ES256, NULL),
      jkf_key_from_jwk(jkf_rfc7515_a4_es512_pub, JWTKIT_ALG_ES512, NULL),
      jkf_key_from_jwk(jkf_rfc8037_ed25519, JWTKIT_ALG_EDDSA, NULL),
  };
  g_ver[0] = make_verifier(a, sizeof a / sizeof *a, JWTKIT_DEFAULT_MAX_TOKEN);
  jwtkit_key *b[] = {
      jkf_key_from_jwk(jkf_rfc7520_rsa, JWTKIT_ALG_RS256, NULL),
      jkf_key_from_jwk(jkf_rfc7520_rsa, JWTKIT_ALG_PS384, NULL),
      jkf_key_from_jwk(jkf_rfc7520_ec, JWTKIT_ALG_ES512, NULL),
      jkf_key_from_jwk(jkf_rfc7520_hmac, JWTKIT_ALG_HS256, NULL),
  };
  g_ver[1] = make_verifier(b, sizeof b / sizeof *b, JWTKIT_DEFAULT_MAX_TOKEN);
  jwtkit_key *c[] = {
      jkf_key_from_jwk(jkf_rfc7520_rsa, JWTKIT_ALG_RS256, "bilbo.baggins@hobbiton.example"),
      jkf_key_from_jwk(jkf_rfc7520_hmac, JWTKIT_ALG_HS256, "018c0ae5-4d9b-471b-bfd6-eef314bc7037"),
  };
  g_ver[2] = make_verifier(c, sizeof c / sizeof *c, JWTKIT_DEFAULT_MAX_TOKEN);

  /* signing keys for mode 2: one RSA key loaded for all six RSA algorithms */
  jwtkit_key *rsa = gen(JWTKIT_ALG_RS256, 2048);
  char *pem = NULL;
  size_t pl = 0;
  JKF_CHECK(jwtkit_key_to_pem(rsa, 1, NULL, &pem, &pl) == JWTKIT_OK, "RSA PEM export");
  jwtkit_key_free(rsa);
  size_t n = 0;
  for (int a2 = 1; a2 < JWTKIT_ALG_COUNT; a2++) {
    jwtkit_alg alg = (jwtkit_alg)a2;
    jwtkit_kty kty = jwtkit_alg_kty(alg);
    jwtkit_key *k = NULL;
    if (kty == JWTKIT_KTY_RSA)
      JKF_CHECK(jwtkit_key_from_pem(&k, alg, pem, pl, NULL, NULL) == JWTKIT_OK, "RSA PEM import");
    else
      k = gen(alg, 0);
    g_sign[n++] = k;
  }
  g_sign[n++] = gen(JWTKIT_ALG_EDDSA, 448);
  jwtkit_free(pem);
  for (size_t i = 0; i < n; i++) {
    jwtkit_key *pub = jkf_public_of(g_sign[i]);
    g_sign_ver[i] = make_verifier(&pub, 1, 1u << 20);
  }
}

/* Claim accessors on verified claims: each must agree with the JSON. */
static void poke_claims(const jwtkit_claims *c) {
  static const char *const names[] = {"sub", "iss", "aud", "exp", "nbf", "iat", "jti", "http://example.com/is_root", "x"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    const char *s = NULL, *j = NULL;
    size_t sl = 0, jl = 0;
    int64_t iv;
    int bv;
    jwtkit_err rj = jwtkit_claims_get_json(c, names[i], &j, &jl);
    jwtkit_err rs = jwtkit_claims_get_string(c, names[i], &s, &sl);
    jwtkit_err ri = jwtkit_claims_get_int(c, names[i], &iv);
    jwtkit_err rb = jwtkit_claims_get_bool(c, names[i], &bv);
    if (rj == JWTKIT_ERR_NOT_FOUND) {
      JKF_CHECK(rs == rj && ri == rj && rb == rj, "claim %s: absent for get_json only", names[i]);
      continue;
    }
    JKF_CHECK(rj == JWTKIT_OK, "get_json(%s): %s", names[i], jwtkit_errname(rj));
    JKF_CHECK(jkf_json_ok(j, jl, 0), "get_json(%s) is not a JSON value: %.*s", names[i], (int)jl, j);
    JKF_CHECK((rs == JWTKIT_OK) == (j[0] == '"'), "get_string(%s) vs JSON type", names[i]);
    if (rs == JWTKIT_OK) JKF_CHECK(strlen(s) == sl && sl <= jl, "get_string(%s) length", names[i]);
    JKF_CHECK((rb == JWTKIT_OK) == (j[0] == 't' || j[0] == 'f'), "get_bool(%s) vs JSON type", names[i]);
    if (ri == JWTKIT_OK) {
      char tmp[32];
      snprintf(tmp, sizeof tmp, "%lld", (long long)iv);
      JKF_CHECK((strlen(tmp) == jl && memcmp(tmp, j, jl) == 0) || (iv == 0 && jl == 2 && memcmp(j, "-0", 2) == 0),
                "get_int(%s) = %s but the JSON says %.*s", names[i], tmp, (int)jl, j);
    }
  }
}

/* One verifier on the token; returns the result code. */
static jwtkit_err verify_one(const jwtkit_verifier *v, const char *tok, size_t len, int64_t now, const char *dh,
                             size_t dhl, const char *dp, size_t dpl, jwtkit_err drc) {
  jwtkit_claims *c = (jwtkit_claims *)&c; /* must be reset to NULL */
  jwtkit_errinfo info;
  memset(&info, 0x5a, sizeof info);
  jwtkit_err rc = jwtkit_verify_at(v, tok, len, now, &c, &info);
  JKF_CHECK((rc == JWTKIT_OK) == (c != NULL), "verify %s but claims %p", jwtkit_errname(rc), (void *)c);
  if (rc != JWTKIT_OK) {
    JKF_CHECK(jkf_errinfo_sane(&info), "errinfo not NUL-terminated after %s", jwtkit_errname(rc));
    JKF_CHECK(info.code == rc, "verify returned %s but errinfo.code is %s", jwtkit_errname(rc),
              jwtkit_errname(info.code));
  }
  jwtkit_err rc2 = jwtkit_verify_at(v, tok, len, now, NULL, NULL);
  JKF_CHECK(rc2 == rc, "verdict without claims %s, with claims %s", jwtkit_errname(rc2), jwtkit_errname(rc));
  if (rc == JWTKIT_OK) {
    JKF_CHECK(drc == JWTKIT_OK, "verified token fails decode_unverified: %s", jwtkit_errname(drc));
    size_t pl = 0, hl = 0;
    const char *pj = jwtkit_claims_json(c, &pl);
    const char *hj = jwtkit_claims_header_json(c, &hl);
    JKF_CHECK(pl == dpl && memcmp(pj, dp, pl) == 0 && pj[pl] == '\0', "claims JSON differs from the decoded payload");
    JKF_CHECK(hl == dhl && memcmp(hj, dh, hl) == 0 && hj[hl] == '\0', "header JSON differs from the decoded header");
    jwtkit_alg alg = jwtkit_claims_alg(c);
    JKF_CHECK(alg != JWTKIT_ALG_UNSPEC, "verified claims without alg");
    const char *kid = jwtkit_claims_kid(c);
    if (kid != NULL) JKF_CHECK(strlen(kid) > 0, "empty kid handed out");
    poke_claims(c);
    jwtkit_claims_free(c);
  }
  return rc;
}

static int token_mode(const uint8_t *data, size_t size) {
  const char *tok = (const char *)data;
  char *dh = NULL, *dp = NULL;
  size_t dhl = 0, dpl = 0;
  jwtkit_errinfo info;
  jwtkit_err drc = jwtkit_decode_unverified(tok, size, &dh, &dhl, &dp, &dpl, &info);
  JKF_CHECK((drc == JWTKIT_OK) == (dh != NULL) && (drc == JWTKIT_OK) == (dp != NULL), "decode out-parameters");
  if (drc == JWTKIT_OK) {
    JKF_CHECK(strlen(dh) == dhl && strlen(dp) == dpl, "decoded texts hold a NUL");
    JKF_CHECK(jkf_json_ok(dh, dhl, 1) && jkf_json_ok(dp, dpl, 1), "decoded texts are not strict JSON objects");
  } else {
    JKF_CHECK(jkf_errinfo_sane(&info), "decode errinfo");
  }
  for (size_t i = 0; i < 3; i++) verify_one(g_ver[i], tok, size, RFC_NOW, dh, dhl, dp, dpl, drc);
  jwtkit_free(dh);
  jwtkit_free(dp);
  return 0;
}

/* Claim checks may refuse a round-tripped token; nothing else may. */
static int claim_refusal(jwtkit_err rc, const jwtkit_errinfo *info) {
  switch (rc) {
    case JWTKIT_ERR_EXPIRED:
    case JWTKIT_ERR_NOT_YET_VALID:
    case JWTKIT_ERR_ISSUED_IN_FUTURE:
    case JWTKIT_ERR_TOO_OLD:
    case JWTKIT_ERR_CLAIM_MISMATCH:
    case JWTKIT_ERR_CLAIM_MISSING:
      return 1;
    case JWTKIT_ERR_MALFORMED: /* a NumericDate or aud of the wrong type */
      return strcmp(info->field, "exp") == 0 || strcmp(info->field, "nbf") == 0 || strcmp(info->field, "iat") == 0 ||
             strcmp(info->field, "aud") == 0;
    default:
      return 0;
  }
}

static int roundtrip_mode(uint8_t sel, const uint8_t *data, size_t size) {
  size_t ki = sel % 14u;
  int variant = sel / 14u; /* 0, 1, 2 */
  jwtkit_key *key = g_sign[ki];
  jwtkit_sign_opts opts = {NULL, NULL, NULL};
  if (variant == 1) {
    opts.typ = "at+jwt";
    opts.kid = "fuzz-kid";
  } else if (variant == 2) {
    opts.typ = "";
    opts.extra_header = "{\"cty\":\"JWT\",\"x5t\":\"AAAA\"}";
  }
  const char *claims = (const char *)data;
  char *tok = NULL;
  size_t tl = 0;
  jwtkit_errinfo info;
  jwtkit_err rc = jwtkit_sign(key, &opts, claims, size, &tok, &tl, &info);
  if (rc != JWTKIT_OK) {
    JKF_CHECK(tok == NULL, "failed sign left a token");
    JKF_CHECK(rc == JWTKIT_ERR_MALFORMED || rc == JWTKIT_ERR_TOO_LARGE, "sign failed with %s (%s)", jwtkit_errname(rc),
              info.msg);
    JKF_CHECK(!jkf_json_ok(claims, size, 1) || size > JWTKIT_DEFAULT_MAX_TOKEN,
              "sign refused claims that parse as a strict JSON object: %s (%s)", jwtkit_errname(rc), info.msg);
    return 0;
  }
  JKF_CHECK(strlen(tok) == tl, "token length");
  char *dh = NULL, *dp = NULL;
  size_t dhl = 0, dpl = 0;
  if (tl <= JWTKIT_DEFAULT_MAX_TOKEN) {
    rc = jwtkit_decode_unverified(tok, tl, &dh, &dhl, &dp, &dpl, &info);
    JKF_CHECK(rc == JWTKIT_OK, "own token fails decode_unverified: %s (%s)", jwtkit_errname(rc), info.msg);
    JKF_CHECK(dpl == size && memcmp(dp, claims, size) == 0, "decoded payload differs from the signed claims");
    jwtkit_free(dh);
    jwtkit_free(dp);
  }
  jwtkit_claims *c = NULL;
  rc = jwtkit_verify_at(g_sign_ver[ki], tok, tl, RT_NOW, &c, &info);
  JKF_CHECK(rc == JWTKIT_OK || claim_refusal(rc, &info), "%s token does not verify: %s (field %s: %s)",
            jwtkit_alg_name(jwtkit_key_alg(key)), jwtkit_errname(rc), info.field, info.msg);
  /* the verdict-only path (no claims handed out) on the same valid token:
   * it decodes small payloads into a stack buffer of its own */
  jwtkit_errinfo info2;
  jwtkit_err rc2 = jwtkit_verify_at(g_sign_ver[ki], tok, tl, RT_NOW, NULL, &info2);
  JKF_CHECK(rc2 == rc, "%s token: verdict without claims %s, with claims %s", jwtkit_alg_name(jwtkit_key_alg(key)),
            jwtkit_errname(rc2), jwtkit_errname(rc));
  if (rc == JWTKIT_OK) {
    size_t pl = 0;
    const char *pj = jwtkit_claims_json(c, &pl);
    JKF_CHECK(pl == size && memcmp(pj, claims, size) == 0, "verified claims differ from the signed claims");
    JKF_CHECK(jwtkit_claims_alg(c) == jwtkit_key_alg(key), "verified alg differs");
    const char *kid = jwtkit_claims_kid(c);
    JKF_CHECK(variant == 1 ? (kid != NULL && strcmp(kid, "fuzz-kid") == 0) : kid == NULL, "verified kid");
    poke_claims(c);
    jwtkit_claims_free(c);
  }
  /* alter the first signature character: must be a bad signature, whatever
   * the claims say (signature first) */
  char *dot = strrchr(tok, '.');
  JKF_CHECK(dot != NULL && dot[1] != '\0', "token without signature");
  dot[1] = dot[1] == 'A' ? 'B' : 'A';
  rc = jwtkit_verify_at(g_sign_ver[ki], tok, tl, RT_NOW, NULL, &info);
  JKF_CHECK(rc == JWTKIT_ERR_BAD_SIGNATURE, "altered %s signature gives %s", jwtkit_alg_name(jwtkit_key_alg(key)),
            jwtkit_errname(rc));
  jwtkit_free(tok);
  return 0;
}

int jkf_token(const uint8_t *data, size_t size) {
  init();
  if (size > 0 && data[0] < 0x20) {
    /* NUL-free copy not needed: the API takes (pointer, length) */
    return roundtrip_mode(data[0], data + 1, size - 1);
  }
  return token_mode(data, size);
}

JKF_ENTRY(jkf_token)
