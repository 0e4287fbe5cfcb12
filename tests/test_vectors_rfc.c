/*
 * Known-answer tests from the JOSE RFCs (RFC 7515 Appendix A, RFC 7520
 * section 4, RFC 8037 Appendix A, RFC 7517 Appendices A/B, RFC 7638 3.1),
 * read from the shared vector files (see vectors/README.md).  Every vector in
 * every file is accounted for: verified, re-signed, rejected as expected,
 * refused by policy, or counted as not applicable, never dropped.
 */
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "codec/b64url.h"
#include "crypto/key_internal.h"
#include "testutil.h"

/* ------------------------------------------------------------ helpers */

/* Non-fatal check: print and count, so that every vector is reported and
 * every object freed before the test asserts on the total. */
static int g_fail;
#define CHECK(cond, ...)                                  \
  do {                                                    \
    if (!(cond)) {                                        \
      g_fail++;                                           \
      printf("    FAIL (%s:%d) ", __FILE__, __LINE__);    \
      printf(__VA_ARGS__);                                \
      printf("\n");                                       \
    }                                                     \
  } while (0)

/* The files this test covers; test_rfc_files_covered() fails when the
 * directory holds another one. */
static const char *const k_rfc_files[] = {"rfc7515_appendix_a.json", "rfc7520_section4.json",
                                          "rfc7517_keys.json", "rfc7638_thumbprint.json",
                                          "rfc8037_ed25519.json", NULL};

static void require_vectors(void) { tu_require_vectors("rfc", "RFC"); }

static json_t *load_json(const char *name) { return tu_load_vectors_json("rfc", name); }

/* Copy of a JWK without one member. */
static json_t *jwk_without(const json_t *jwk, const char *member) {
  json_t *c = json_deep_copy(jwk);
  if (c != NULL) json_object_del(c, member);
  return c;
}

static int is_json_object_text(const char *s, size_t n) {
  json_error_t err;
  json_t *v = json_loadb(s, n, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &err);
  int obj = json_is_object(v);
  json_decref(v);
  return obj;
}

/* Verifier for one key: exactly its algorithm, no exp required, audience
 * ignored (the RFC payloads are not full JWT claim sets). */
static jwtkit_verifier *verifier_for(jwtkit_key *key) {
  jwtkit_policy *p = jwtkit_policy_new();
  jwtkit_verifier *v = NULL;
  int ok = p != NULL && jwtkit_policy_allow_alg(p, jwtkit_key_alg(key)) == JWTKIT_OK &&
           jwtkit_policy_add_key(p, key) == JWTKIT_OK && jwtkit_policy_ignore_audience(p) == JWTKIT_OK &&
           jwtkit_policy_set_require_exp(p, 0) == JWTKIT_OK;
  if (ok && jwtkit_verifier_new(&v, p, NULL) != JWTKIT_OK) v = NULL;
  jwtkit_policy_free(p);
  return v;
}

/* A clock at which an "exp" in the payload (if any) is still valid: RFC 7515
 * A.1-A.3 carry exp 1300819380, so this gives 1300819000. */
static int64_t clock_for_payload(const char *payload) {
  int64_t now = 1300819000;
  json_error_t err;
  json_t *v = json_loads(payload, JSON_DECODE_ANY, &err);
  json_t *exp = json_object_get(v, "exp");
  if (json_is_integer(exp)) now = (int64_t)json_integer_value(exp) - 380;
  json_decref(v);
  return now;
}

/* ------------------------------------------------------ JWS vectors */

typedef struct jws_counts {
  int total;
  int verified;              /* jwtkit_verify -> JWTKIT_OK */
  int verified_not_jwt;      /* signature valid, payload not a JSON object */
  int resigned;              /* deterministic: byte-exact re-signature */
  int fresh_signed;          /* randomised: our own signature verifies */
  int rejected_expected;     /* expected reject_by_default */
  int not_applicable;        /* JSON serialization only or detached payload */
  int na_signature_checked;  /* signatures of those checked at JWS level */
} jws_counts;

/* Signature-level check of one (alg, key, signing input, signature). */
static int sig_level_ok(const char *alg_name, const json_t *jwk, const char *signing_input,
                        const char *sig_b64u, const char *id) {
  jwtkit_alg alg = jwtkit_alg_from_name(alg_name, strlen(alg_name));
  jwtkit_key *key = NULL;
  jwtkit_errinfo ei = {0};
  size_t sl = 0;
  unsigned char *sig = tu_b64url_dec(sig_b64u, strlen(sig_b64u), &sl);
  int ok = 0;
  if (alg != JWTKIT_ALG_UNSPEC && sig != NULL && tu_import_jwk(jwk, alg, &key, &ei) == JWTKIT_OK)
    ok = jk_sig_verify(key, (const unsigned char *)signing_input, strlen(signing_input), sig, sl) == 1;
  CHECK(ok, "%s: %s signature does not verify at JWS level (%s)", id, alg_name, ei.msg);
  jwtkit_key_free(key);
  free(sig);
  return ok;
}

/* Vectors without a usable compact form: check their signatures at the JWS
 * level from the JSON serialization (RFC 7515 7.2), and make sure the compact
 * verifier does not accept a detached-payload token. */
static void not_applicable_vector(const json_t *v, jws_counts *c) {
  const char *id = tu_jstr(v, "id");
  const json_t *gen = json_object_get(v, "json_general");
  const char *payload = tu_jstr(gen, "payload");
  if (payload == NULL) payload = tu_jstr(v, "payload_b64u"); /* detached content */
  const json_t *sigs = json_object_get(gen, "signatures");
  const json_t *keys = json_object_get(v, "keys");
  const json_t *algs = json_object_get(v, "algs");
  size_t i;
  const json_t *s;
  c->not_applicable++;
  CHECK(payload != NULL && json_array_size(sigs) > 0, "%s: no JSON serialization to check", id);
  json_array_foreach(sigs, i, s) {
    const char *prot = tu_jstr(s, "protected");
    const char *alg = algs ? json_string_value(json_array_get(algs, i)) : tu_jstr(v, "alg");
    const json_t *jwk = keys ? json_array_get(keys, i) : json_object_get(v, "key");
    const char *sig = tu_jstr(s, "signature");
    if (alg == NULL || jwk == NULL || sig == NULL || payload == NULL) {
      CHECK(0, "%s: signature %zu lacks alg, key or value", id, i);
      continue;
    }
    size_t n = (prot ? strlen(prot) : 0) + strlen(payload) + 2;
    char *input = malloc(n);
    snprintf(input, n, "%s.%s", prot ? prot : "", payload);
    if (sig_level_ok(alg, jwk, input, sig, id)) c->na_signature_checked++;
    free(input);
  }
  const char *compact = tu_jstr(v, "compact");
  const char *alg_name = tu_jstr(v, "alg");
  if (compact != NULL && alg_name != NULL) { /* detached: hdr..sig */
    jwtkit_alg alg = jwtkit_alg_from_name(alg_name, strlen(alg_name));
    jwtkit_key *key = NULL;
    if (tu_import_jwk(json_object_get(v, "key"), alg, &key, NULL) == JWTKIT_OK) {
      jwtkit_verifier *ver = verifier_for(key);
      jwtkit_claims *cl = NULL;
      jwtkit_err rc = jwtkit_verify_at(ver, compact, strlen(compact), 1300819000, &cl, NULL);
      CHECK(rc != JWTKIT_OK && cl == NULL, "%s: detached-payload compact token accepted without its content", id);
      jwtkit_claims_free(cl);
      jwtkit_verifier_free(ver);
    } else {
      CHECK(0, "%s: key does not import", id);
    }
    jwtkit_key_free(key);
  }
}

/* RFC 7515 A.5 style: alg "none" must be refused even by a verifier that
 * allows every algorithm jwtkit knows. */
static void reject_by_default_vector(const json_t *v, jws_counts *c) {
  const char *id = tu_jstr(v, "id");
  const char *alg = tu_jstr(v, "alg");
  const char *compact = tu_jstr(v, "compact");
  if (alg == NULL || compact == NULL) {
    CHECK(0, "%s: vector lacks alg or compact", id);
    return;
  }
  CHECK(jwtkit_alg_from_name(alg, strlen(alg)) == JWTKIT_ALG_UNSPEC, "%s: alg %s has a jwtkit value", id, alg);
  jwtkit_policy *p = jwtkit_policy_new();
  for (int a = 1; a < JWTKIT_ALG_COUNT; a++)
    CHECK(jwtkit_policy_allow_alg(p, (jwtkit_alg)a) == JWTKIT_OK, "allow %d", a);
  CHECK(jwtkit_policy_add_key(p, tu_key(JWTKIT_ALG_HS256)) == JWTKIT_OK, "add key");
  assert_int_equal(jwtkit_policy_ignore_audience(p), JWTKIT_OK);
  assert_int_equal(jwtkit_policy_set_require_exp(p, 0), JWTKIT_OK);
  jwtkit_verifier *ver = NULL;
  CHECK(jwtkit_verifier_new(&ver, p, NULL) == JWTKIT_OK, "verifier");
  jwtkit_policy_free(p);
  jwtkit_claims *cl = NULL;
  jwtkit_errinfo ei = {0};
  const char *payload = tu_jstr(v, "payload_utf8");
  int64_t now = clock_for_payload(payload ? payload : "");
  jwtkit_err rc = jwtkit_verify_at(ver, compact, strlen(compact), now, &cl, &ei);
  CHECK(rc == JWTKIT_ERR_ALG_NOT_ALLOWED && cl == NULL, "%s: expected ALG_NOT_ALLOWED, got %s (%s)", id,
        jwtkit_errname(rc), ei.msg);
  if (rc == JWTKIT_ERR_ALG_NOT_ALLOWED) c->rejected_expected++;
  jwtkit_claims_free(cl);
  jwtkit_verifier_free(ver);
}

static void valid_vector(const json_t *v, jws_counts *c) {
  const char *id = tu_jstr(v, "id");
  const char *alg_name = tu_jstr(v, "alg");
  const char *compact = tu_jstr(v, "compact");
  const char *input = tu_jstr(v, "signing_input");
  const char *sig_b64u = tu_jstr(v, "signature_b64u");
  const char *payload = tu_jstr(v, "payload_utf8");
  const char *header = tu_jstr(v, "protected_header_utf8");
  const json_t *priv_jwk = json_object_get(v, "key");
  const json_t *pub_jwk = json_object_get(v, "public_key");
  if (pub_jwk == NULL) pub_jwk = priv_jwk; /* oct keys */
  if (alg_name == NULL || compact == NULL || input == NULL || sig_b64u == NULL || payload == NULL ||
      header == NULL || priv_jwk == NULL) {
    CHECK(0, "%s: vector lacks a required field", id);
    return;
  }
  size_t in_len = strlen(input);
  jwtkit_alg alg = jwtkit_alg_from_name(alg_name, strlen(alg_name));
  CHECK(alg != JWTKIT_ALG_UNSPEC, "%s: alg %s unknown to jwtkit", id, alg_name);
  if (alg == JWTKIT_ALG_UNSPEC) return;

  /* the vector's own consistency: compact == signing_input "." signature,
   * and the encoded header/payload decode (canonically) to the UTF-8 ones */
  CHECK(strncmp(compact, input, in_len) == 0 && compact[in_len] == '.' && strcmp(compact + in_len + 1, sig_b64u) == 0,
        "%s: compact is not signing_input.signature", id);
  static const char *const pairs[2][2] = {{"protected_header_b64u", "protected_header_utf8"},
                                          {"payload_b64u", "payload_utf8"}};
  for (int i = 0; i < 2; i++) {
    const char *enc = tu_jstr(v, pairs[i][0]), *dec = tu_jstr(v, pairs[i][1]);
    size_t n = 0;
    unsigned char *raw = enc ? tu_b64url_dec(enc, strlen(enc), &n) : NULL;
    CHECK(raw != NULL && dec != NULL && n == strlen(dec) && memcmp(raw, dec, n) == 0, "%s: %s does not decode to %s",
          id, pairs[i][0], pairs[i][1]);
    free(raw);
  }

  jwtkit_key *pub = NULL, *priv = NULL;
  jwtkit_errinfo ei = {0};
  jwtkit_err rc = tu_import_jwk(pub_jwk, alg, &pub, &ei);
  CHECK(rc == JWTKIT_OK, "%s: public JWK import failed: %s %s (%s)", id, jwtkit_errname(rc), ei.field, ei.msg);
  rc = tu_import_jwk(priv_jwk, alg, &priv, &ei);
  CHECK(rc == JWTKIT_OK, "%s: private JWK import failed: %s %s (%s)", id, jwtkit_errname(rc), ei.field, ei.msg);
  size_t sig_len = 0;
  unsigned char *sig = tu_b64url_dec(sig_b64u, strlen(sig_b64u), &sig_len);
  CHECK(sig != NULL, "%s: signature_b64u is not canonical base64url", id);
  if (pub == NULL || priv == NULL || sig == NULL) goto out;
  CHECK(jwtkit_key_can_sign(priv), "%s: private key cannot sign", id);
  CHECK(jwtkit_key_equal_public(pub, priv), "%s: private and public JWK differ", id);

  /* full JWS/JWT path */
  jwtkit_verifier *ver = verifier_for(pub);
  CHECK(ver != NULL, "%s: cannot build a verifier", id);
  jwtkit_claims *cl = NULL;
  memset(&ei, 0, sizeof ei);
  rc = jwtkit_verify_at(ver, compact, strlen(compact), clock_for_payload(payload), &cl, &ei);
  int sig_ok = jk_sig_verify(pub, (const unsigned char *)input, in_len, sig, sig_len);
  CHECK(sig_ok == 1, "%s: signature does not verify at JWS level (%d)", id, sig_ok);
  if (is_json_object_text(payload, strlen(payload))) {
    CHECK(rc == JWTKIT_OK, "%s: verify: %s %s (%s)", id, jwtkit_errname(rc), ei.field, ei.msg);
    if (rc == JWTKIT_OK) {
      size_t n = 0;
      const char *got = jwtkit_claims_json(cl, &n);
      CHECK(n == strlen(payload) && memcmp(got, payload, n) == 0, "%s: verified payload differs", id);
      got = jwtkit_claims_header_json(cl, &n);
      CHECK(n == strlen(header) && memcmp(got, header, n) == 0, "%s: verified header differs", id);
      CHECK(jwtkit_claims_alg(cl) == alg, "%s: verified alg differs", id);
      c->verified++;
    }
  } else {
    /* RFC 7520 and others sign plain text: the signature passes, then the
     * JWT layer refuses the payload (never BAD_SIGNATURE). */
    CHECK(rc == JWTKIT_ERR_MALFORMED && strcmp(ei.field, "payload") == 0 && cl == NULL,
          "%s: non-JSON payload: expected MALFORMED/payload, got %s/%s (%s)", id, jwtkit_errname(rc), ei.field,
          ei.msg);
    if (rc == JWTKIT_ERR_MALFORMED && sig_ok == 1) c->verified_not_jwt++;
  }
  jwtkit_claims_free(cl);
  jwtkit_verifier_free(ver);

  /* negative control: one flipped bit */
  sig[sig_len / 2] ^= 0x01;
  CHECK(jk_sig_verify(pub, (const unsigned char *)input, in_len, sig, sig_len) == 0,
        "%s: signature with a flipped bit verifies", id);
  sig[sig_len / 2] ^= 0x01;

  /* signing */
  unsigned char mine[2048];
  size_t mine_len = 0;
  rc = jk_sig_sign(priv, (const unsigned char *)input, in_len, mine, sizeof mine, &mine_len);
  CHECK(rc == JWTKIT_OK, "%s: signing failed: %s", id, jwtkit_errname(rc));
  if (rc == JWTKIT_OK) {
    if (json_is_true(json_object_get(v, "deterministic"))) {
      int same = mine_len == sig_len && memcmp(mine, sig, sig_len) == 0;
      CHECK(same, "%s: deterministic %s signature not reproduced byte for byte", id, alg_name);
      if (same) c->resigned++;
    } else {
      int ok = jk_sig_verify(pub, (const unsigned char *)input, in_len, mine, mine_len) == 1;
      CHECK(ok, "%s: our own %s signature does not verify", id, alg_name);
      if (ok) c->fresh_signed++;
    }
  }
out:
  free(sig);
  jwtkit_key_free(pub);
  jwtkit_key_free(priv);
}

static void run_jws_file(const char *file) {
  require_vectors();
  g_fail = 0;
  json_t *root = load_json(file);
  const json_t *vectors = json_object_get(root, "vectors");
  assert_true(json_is_array(vectors));
  jws_counts c = {0};
  int expect_na = 0;
  size_t i;
  const json_t *v;
  json_array_foreach(vectors, i, v) {
    if (tu_jstr(v, "compact") == NULL || json_is_true(json_object_get(v, "detached_payload"))) expect_na++;
  }
  json_array_foreach(vectors, i, v) {
    c.total++;
    const char *expected = tu_jstr(v, "expected");
    if (tu_jstr(v, "compact") == NULL || json_is_true(json_object_get(v, "detached_payload")))
      not_applicable_vector(v, &c);
    else if (expected != NULL && strcmp(expected, "reject_by_default") == 0)
      reject_by_default_vector(v, &c);
    else if (expected != NULL && strcmp(expected, "valid") == 0)
      valid_vector(v, &c);
    else
      CHECK(0, "%s: unknown expectation %s", tu_jstr(v, "id"), expected ? expected : "(none)");
  }
  printf("%s: %d vectors: verified %d (JWT: %d; signature valid, payload not a JWT: %d), "
         "re-signed byte-exact %d, randomised re-sign verified %d, rejected-as-expected %d, "
         "not applicable (JSON serialization/detached): %d (their signatures checked at JWS level: %d)\n",
         file, c.total, c.verified + c.verified_not_jwt, c.verified, c.verified_not_jwt, c.resigned,
         c.fresh_signed, c.rejected_expected, c.not_applicable, c.na_signature_checked);
  json_decref(root);
  assert_int_equal(g_fail, 0);
  assert_int_equal(c.not_applicable, expect_na);
  assert_int_equal(c.verified + c.verified_not_jwt + c.rejected_expected + c.not_applicable, c.total);
}

static void test_rfc7515_appendix_a(void **state) {
  (void)state;
  run_jws_file("rfc7515_appendix_a.json");
}

static void test_rfc7520_section4(void **state) {
  (void)state;
  run_jws_file("rfc7520_section4.json");
}

/* ----------------------------------------------------- thumbprints */

static void check_thumbprint(const json_t *jwk, jwtkit_alg alg, const char *expected, const char *what) {
  jwtkit_key *key = NULL;
  jwtkit_errinfo ei = {0};
  jwtkit_err rc = tu_import_jwk(jwk, alg, &key, &ei);
  CHECK(rc == JWTKIT_OK, "%s: import failed: %s %s (%s)", what, jwtkit_errname(rc), ei.field, ei.msg);
  if (rc != JWTKIT_OK) return;
  char tp[44] = {0};
  char uri[96] = {0};
  CHECK(jwtkit_key_thumbprint(key, tp) == JWTKIT_OK && strcmp(tp, expected) == 0, "%s: thumbprint %s, expected %s",
        what, tp, expected);
  static const char prefix[] = "urn:ietf:params:oauth:jwk-thumbprint:sha-256:"; /* RFC 9278 */
  CHECK(jwtkit_key_thumbprint_uri(key, uri) == JWTKIT_OK && strncmp(uri, prefix, sizeof prefix - 1) == 0 &&
            strcmp(uri + sizeof prefix - 1, expected) == 0,
        "%s: thumbprint URI %s", what, uri);
  printf("  %s: thumbprint %s ok\n", what, tp);
  jwtkit_key_free(key);
}

static void test_rfc7638_thumbprint(void **state) {
  (void)state;
  require_vectors();
  g_fail = 0;
  json_t *root = load_json("rfc7638_thumbprint.json");
  const char *expected = tu_jstr(root, "thumbprint_b64u");
  assert_non_null(expected);
  assert_string_equal(tu_jstr(root, "hash"), "SHA-256");
  check_thumbprint(json_object_get(root, "jwk"), JWTKIT_ALG_UNSPEC, expected, "RFC 7638 3.1 RSA key");
  printf("rfc7638_thumbprint.json: thumbprints matched 1/1\n");
  json_decref(root);
  assert_int_equal(g_fail, 0);
}

/* RFC 8037: A.1/A.2 keys agree, A.3 thumbprint of both, A.4 JWS. */
static void test_rfc8037_ed25519(void **state) {
  (void)state;
  require_vectors();
  g_fail = 0;
  json_t *root = load_json("rfc8037_ed25519.json");
  const json_t *priv_jwk = json_object_get(root, "A.1_private_key");
  const json_t *pub_jwk = json_object_get(root, "A.2_public_key");
  const char *expected = tu_jstr(json_object_get(root, "A.3_thumbprint"), "thumbprint_b64u");
  assert_non_null(priv_jwk);
  assert_non_null(pub_jwk);
  assert_non_null(expected);
  jwtkit_key *priv = NULL, *pub = NULL;
  CHECK(tu_import_jwk(priv_jwk, JWTKIT_ALG_UNSPEC, &priv, NULL) == JWTKIT_OK, "A.1 private key import");
  CHECK(tu_import_jwk(pub_jwk, JWTKIT_ALG_UNSPEC, &pub, NULL) == JWTKIT_OK, "A.2 public key import");
  if (priv != NULL && pub != NULL) {
    CHECK(jwtkit_key_alg(priv) == JWTKIT_ALG_EDDSA && jwtkit_key_alg(pub) == JWTKIT_ALG_EDDSA, "Ed25519 -> EdDSA");
    CHECK(jwtkit_key_can_sign(priv) && !jwtkit_key_can_sign(pub), "A.1 signs, A.2 does not");
    CHECK(jwtkit_key_equal_public(priv, pub), "A.1 private key does not match A.2 public key");
    CHECK(strcmp(jwtkit_key_curve(pub), "Ed25519") == 0, "curve name");
  }
  jwtkit_key_free(priv);
  jwtkit_key_free(pub);
  check_thumbprint(priv_jwk, JWTKIT_ALG_UNSPEC, expected, "RFC 8037 A.3 (from A.1 private key)");
  check_thumbprint(pub_jwk, JWTKIT_ALG_UNSPEC, expected, "RFC 8037 A.3 (from A.2 public key)");
  printf("rfc8037_ed25519.json: A.1/A.2 keys match, thumbprints matched 2/2\n");
  json_decref(root);
  assert_int_equal(g_fail, 0);
  run_jws_file("rfc8037_ed25519.json");
}

/* ---------------------------------------------------- RFC 7517 keys */

typedef struct key_counts {
  int keys;              /* top-level JWKs in the file */
  int imported;          /* imported as given */
  int refused;           /* refused as given (any reason below) */
  int refused_use;       /* "use" other than "sig" */
  int refused_alg;       /* "alg" that is not a JWS algorithm */
  int refused_weak;      /* HMAC secret shorter than the hash */
  int stripped_imported; /* refused ones imported after dropping that member */
  int round_tripped;
} key_counts;

/* Export (public and, when possible, private) and re-import. */
static void round_trip(jwtkit_key *key, const char *what, key_counts *c) {
  int ok = 1;
  for (int priv = 0; priv <= 1; priv++) {
    if (priv && !jwtkit_key_can_sign(key)) continue;
    if (!priv && jwtkit_key_kty(key) == JWTKIT_KTY_OCT) continue; /* no public form */
    char *json = NULL;
    size_t len = 0;
    jwtkit_err rc = jwtkit_key_to_jwk(key, priv, &json, &len);
    CHECK(rc == JWTKIT_OK, "%s: export (private=%d): %s", what, priv, jwtkit_errname(rc));
    if (rc != JWTKIT_OK) {
      ok = 0;
      continue;
    }
    jwtkit_key *again = NULL;
    jwtkit_errinfo ei = {0};
    rc = jwtkit_key_from_jwk(&again, JWTKIT_ALG_UNSPEC, json, len, &ei);
    CHECK(rc == JWTKIT_OK, "%s: re-import (private=%d): %s %s (%s)", what, priv, jwtkit_errname(rc), ei.field, ei.msg);
    if (rc == JWTKIT_OK) {
      CHECK(jwtkit_key_equal_public(key, again), "%s: re-imported key (private=%d) differs", what, priv);
      CHECK(jwtkit_key_alg(again) == jwtkit_key_alg(key), "%s: alg changed on round trip", what);
      CHECK(jwtkit_key_can_sign(again) == priv, "%s: can_sign %d after private=%d export", what,
            jwtkit_key_can_sign(again), priv);
      const char *k1 = jwtkit_key_kid(key), *k2 = jwtkit_key_kid(again);
      CHECK((k1 == NULL && k2 == NULL) || (k1 && k2 && strcmp(k1, k2) == 0), "%s: kid changed on round trip", what);
      ok &= jwtkit_key_equal_public(key, again);
    } else {
      ok = 0;
    }
    jwtkit_key_free(again);
    jwtkit_free(json);
  }
  if (ok) c->round_tripped++;
}

static int is_jws_alg_name(const char *alg) {
  return alg != NULL && jwtkit_alg_from_name(alg, strlen(alg)) != JWTKIT_ALG_UNSPEC;
}

/* Algorithm to import a key with when the JWK names none: RS256 for RSA (the
 * library needs one), HS256 for oct (RFC 7517 A.3 is the RFC 7515 A.1 HS256
 * key), the curve's for EC/OKP. */
static jwtkit_alg default_alg(const json_t *jwk) {
  const char *kty = tu_jstr(jwk, "kty");
  if (kty != NULL && strcmp(kty, "RSA") == 0) return JWTKIT_ALG_RS256;
  if (kty != NULL && strcmp(kty, "oct") == 0) return JWTKIT_ALG_HS256;
  return JWTKIT_ALG_UNSPEC;
}

static jwtkit_key *one_rfc7517_key(const json_t *jwk, const char *what, key_counts *c, int depth);

/* A refused JWK: try the same key material without the offending member. */
static jwtkit_key *retry_without(const json_t *jwk, const char *member, const char *what, key_counts *c,
                                 int depth) {
  json_t *stripped = jwk_without(jwk, member);
  jwtkit_key *key = one_rfc7517_key(stripped, what, c, depth + 1);
  json_decref(stripped);
  if (key != NULL) c->stripped_imported++;
  return key;
}

/* One JWK: import it as the RFC gives it, or assert the exact reason it is
 * refused.  Returns the imported key or NULL. */
static jwtkit_key *one_rfc7517_key(const json_t *jwk, const char *what, key_counts *c, int depth) {
  const char *use = tu_jstr(jwk, "use");
  const char *alg = tu_jstr(jwk, "alg");
  const char *k = tu_jstr(jwk, "k");
  jwtkit_alg a = alg != NULL ? JWTKIT_ALG_UNSPEC : default_alg(jwk);
  jwtkit_key *key = NULL;
  jwtkit_errinfo ei = {0};
  if (depth == 0) c->keys++;
  jwtkit_err rc = tu_import_jwk(jwk, a, &key, &ei);
  if (use != NULL && strcmp(use, "sig") != 0) {
    CHECK(rc == JWTKIT_ERR_INVALID_KEY && strcmp(ei.field, "use") == 0,
          "%s: use=%s: expected INVALID_KEY/use, got %s/%s", what, use, jwtkit_errname(rc), ei.field);
    printf("  %s: refused by policy (use \"%s\" is not \"sig\"): %s; retrying without \"use\"\n", what, use, ei.msg);
    c->refused_use++;
    if (depth == 0) c->refused++;
    jwtkit_key_free(key);
    return retry_without(jwk, "use", what, c, depth);
  }
  if (alg != NULL && !is_jws_alg_name(alg)) {
    CHECK(rc == JWTKIT_ERR_UNSUPPORTED && strcmp(ei.field, "alg") == 0,
          "%s: alg=%s: expected UNSUPPORTED/alg, got %s/%s", what, alg, jwtkit_errname(rc), ei.field);
    printf("  %s: refused by policy (alg \"%s\" is not a JWS algorithm): %s; retrying without \"alg\"\n", what, alg,
           ei.msg);
    c->refused_alg++;
    if (depth == 0) c->refused++;
    jwtkit_key_free(key);
    return retry_without(jwk, "alg", what, c, depth);
  }
  if (k != NULL && a == JWTKIT_ALG_HS256) {
    size_t kl = 0;
    unsigned char *kb = tu_b64url_dec(k, strlen(k), &kl);
    free(kb);
    if (kl < 32) {
      CHECK(rc == JWTKIT_ERR_WEAK_KEY, "%s: %zu-byte HS256 secret: expected WEAK_KEY, got %s", what, kl,
            jwtkit_errname(rc));
      printf("  %s: refused by policy (%zu-byte secret, HS256 needs 32): %s\n", what, kl, ei.msg);
      c->refused_weak++;
      if (depth == 0) c->refused++;
      jwtkit_key_free(key);
      return NULL;
    }
  }
  CHECK(rc == JWTKIT_OK, "%s: import failed: %s %s (%s)", what, jwtkit_errname(rc), ei.field, ei.msg);
  if (rc != JWTKIT_OK) {
    if (depth == 0) c->refused++;
    return NULL;
  }
  if (depth == 0) c->imported++;
  const char *kid = tu_jstr(jwk, "kid");
  const char *got = jwtkit_key_kid(key);
  CHECK((kid == NULL && got == NULL) || (kid && got && strcmp(kid, got) == 0), "%s: kid not kept", what);
  int has_private = json_object_get(jwk, "d") != NULL || k != NULL;
  CHECK(jwtkit_key_can_sign(key) == has_private, "%s: can_sign=%d", what, jwtkit_key_can_sign(key));
  round_trip(key, what, c);
  printf("  %s: imported as %s (%u bits, %s), export/re-import ok\n", what, jwtkit_alg_name(jwtkit_key_alg(key)),
         jwtkit_key_bits(key), has_private ? "private" : "public");
  return key;
}

static void on_skip(void *ctx, size_t index, const jwtkit_errinfo *why) {
  int *n = ctx;
  (*n)++;
  printf("    jwks_parse skipped key %zu: %s %s (%s)\n", index, jwtkit_errname(why->code), why->field, why->msg);
}

/* Would jwtkit_jwks_parse(..., rsa_default=RS256) keep this JWK?  Per
 * jwks.h: exactly the keys that import with their own (or no) alg, RSA keys
 * without alg getting RS256. */
static jwtkit_key *importable_as_in_set(const json_t *jwk) {
  jwtkit_key *k = NULL;
  const char *kty = tu_jstr(jwk, "kty");
  jwtkit_alg a = (kty && strcmp(kty, "RSA") == 0 && tu_jstr(jwk, "alg") == NULL) ? JWTKIT_ALG_RS256 : JWTKIT_ALG_UNSPEC;
  if (tu_import_jwk(jwk, a, &k, NULL) != JWTKIT_OK) return NULL;
  return k;
}

/* RFC 7517 5: the same keys as a JWK Set through jwtkit_jwks_parse, then
 * jwtkit_jwks_to_json (public members only, no oct) and parse again. */
static void rfc7517_as_set(const json_t *set_json, const char *name, int *kept_total, int *skipped_total) {
  const json_t *keys = json_object_get(set_json, "keys");
  char *text = json_dumps(set_json, JSON_COMPACT);
  jwtkit_jwks *set = NULL;
  jwtkit_errinfo ei = {0};
  int skipped = 0;
  printf("  RFC 7517 %s as a JWK Set:\n", name);
  jwtkit_err rc = jwtkit_jwks_parse(&set, text, strlen(text), JWTKIT_ALG_RS256, on_skip, &skipped, &ei);
  free(text);
  CHECK(rc == JWTKIT_OK, "%s: jwks_parse: %s %s (%s)", name, jwtkit_errname(rc), ei.field, ei.msg);
  if (rc != JWTKIT_OK) return;
  size_t expected = 0, public_expected = 0, i;
  const json_t *jwk;
  json_array_foreach(keys, i, jwk) {
    jwtkit_key *k = importable_as_in_set(jwk);
    if (k == NULL) continue;
    expected++;
    if (jwtkit_key_kty(k) != JWTKIT_KTY_OCT) public_expected++;
    const char *kid = jwtkit_key_kid(k);
    jwtkit_key *in_set = kid ? jwtkit_jwks_find(set, kid, strlen(kid)) : NULL;
    CHECK(in_set != NULL && jwtkit_key_equal_public(in_set, k) && jwtkit_key_alg(in_set) == jwtkit_key_alg(k),
          "%s: key %zu (kid %s) missing from the parsed set or different", name, i, kid ? kid : "-");
    jwtkit_key_free(k);
  }
  CHECK(jwtkit_jwks_count(set) == expected, "%s: set kept %zu keys, expected %zu", name, jwtkit_jwks_count(set),
        expected);
  CHECK((size_t)skipped + jwtkit_jwks_count(set) == json_array_size(keys), "%s: %d skipped + %zu kept != %zu", name,
        skipped, jwtkit_jwks_count(set), json_array_size(keys));
  char *out = NULL;
  size_t out_len = 0;
  rc = jwtkit_jwks_to_json(set, &out, &out_len);
  CHECK(rc == JWTKIT_OK, "%s: jwks_to_json: %s", name, jwtkit_errname(rc));
  if (rc == JWTKIT_OK) {
    jwtkit_jwks *again = NULL;
    int skipped2 = 0;
    rc = jwtkit_jwks_parse(&again, out, out_len, JWTKIT_ALG_UNSPEC, on_skip, &skipped2, &ei);
    CHECK(rc == JWTKIT_OK && skipped2 == 0 && jwtkit_jwks_count(again) == public_expected,
          "%s: exported set re-parsed to %zu keys (%d skipped), expected %zu", name, jwtkit_jwks_count(again), skipped2,
          public_expected);
    for (size_t k = 0; k < jwtkit_jwks_count(again); k++) {
      jwtkit_key *a = jwtkit_jwks_get(again, k);
      const char *kid = jwtkit_key_kid(a);
      jwtkit_key *orig = kid ? jwtkit_jwks_find(set, kid, strlen(kid)) : NULL;
      CHECK(orig != NULL && jwtkit_key_equal_public(a, orig) && !jwtkit_key_can_sign(a),
            "%s: exported key %zu differs or carries private members", name, k);
    }
    jwtkit_jwks_free(again);
  }
  jwtkit_free(out);
  printf("  RFC 7517 %s as a JWK Set: kept %zu, skipped %d, exported/re-parsed %zu public key(s)\n", name,
         jwtkit_jwks_count(set), skipped, public_expected);
  *kept_total += (int)jwtkit_jwks_count(set);
  *skipped_total += skipped;
  jwtkit_jwks_free(set);
}

static void test_rfc7517_keys(void **state) {
  (void)state;
  require_vectors();
  g_fail = 0;
  json_t *root = load_json("rfc7517_keys.json");
  key_counts c = {0};
  static const char *const sets[] = {"A.1_public_keys", "A.2_private_keys", "A.3_symmetric_keys"};
  jwtkit_key *pubs[8] = {0};
  size_t npub = 0;
  for (size_t s = 0; s < sizeof sets / sizeof sets[0]; s++) {
    const json_t *keys = json_object_get(json_object_get(root, sets[s]), "keys");
    CHECK(json_array_size(keys) > 0, "%s: no keys", sets[s]);
    size_t i;
    const json_t *jwk;
    json_array_foreach(keys, i, jwk) {
      char what[96];
      snprintf(what, sizeof what, "RFC 7517 %s[%zu] (%s)", sets[s], i, tu_jstr(jwk, "kty") ? tu_jstr(jwk, "kty") : "?");
      jwtkit_key *key = one_rfc7517_key(jwk, what, &c, 0);
      if (s == 0 && key != NULL && npub < 8) {
        pubs[npub++] = key;
        continue;
      }
      if (s == 1 && key != NULL) { /* the A.2 private keys belong to the A.1 public keys */
        int found = 0;
        for (size_t p = 0; p < npub; p++) found |= jwtkit_key_equal_public(pubs[p], key);
        CHECK(found, "%s: no matching A.1 public key", what);
      }
      jwtkit_key_free(key);
    }
  }
  int set_kept = 0, set_skipped = 0;
  for (size_t s = 0; s < sizeof sets / sizeof sets[0]; s++)
    rfc7517_as_set(json_object_get(root, sets[s]), sets[s], &set_kept, &set_skipped);
  jwtkit_key *x5c = one_rfc7517_key(json_object_get(root, "B_x5c"), "RFC 7517 B (RSA with x5c)", &c, 0);
  jwtkit_key_free(x5c);
  for (size_t p = 0; p < npub; p++) jwtkit_key_free(pubs[p]);
  printf("rfc7517_keys.json: %d keys: imported as given %d, refused by policy %d (use!=sig %d, non-JWS alg %d, "
         "weak HMAC key %d; key material imported after dropping the member: %d), export/re-import ok %d\n",
         c.keys, c.imported, c.refused, c.refused_use, c.refused_alg, c.refused_weak, c.stripped_imported,
         c.round_tripped);
  printf("rfc7517_keys.json as JWK Sets (jwtkit_jwks_parse, RSA default RS256): kept %d, skipped %d\n", set_kept,
         set_skipped);
  json_decref(root);
  assert_int_equal(g_fail, 0);
  assert_int_equal(c.imported + c.refused, c.keys);
  assert_int_equal(c.round_tripped, c.imported + c.stripped_imported);
}

/* Every file in rfc/ is covered by a test above. */
static void test_rfc_files_covered(void **state) {
  (void)state;
  require_vectors();
  char path[4096];
  snprintf(path, sizeof path, "%s/rfc", tu_vectors_dir());
  DIR *d = opendir(path);
  assert_non_null(d);
  int unknown = 0, seen = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    size_t n = strlen(e->d_name);
    if (n < 5 || strcmp(e->d_name + n - 5, ".json") != 0) continue;
    int known = 0;
    for (int i = 0; k_rfc_files[i] != NULL; i++) known |= strcmp(k_rfc_files[i], e->d_name) == 0;
    if (!known) {
      printf("  rfc/%s is not covered by test_vectors_rfc\n", e->d_name);
      unknown++;
    }
    seen++;
  }
  closedir(d);
  printf("rfc/: %d vector files, %d not covered\n", seen, unknown);
  assert_int_equal(unknown, 0);
  assert_int_equal(seen, 5);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rfc_files_covered), cmocka_unit_test(test_rfc7515_appendix_a),
      cmocka_unit_test(test_rfc7520_section4),  cmocka_unit_test(test_rfc8037_ed25519),
      cmocka_unit_test(test_rfc7638_thumbprint), cmocka_unit_test(test_rfc7517_keys),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
