/* Key import/export: every PEM/DER form, JWK members, and the checks that
 * bind a key to its algorithm (docs/security.md invariant 2). */
#include <openssl/core_names.h>
#include <openssl/encoder.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jwtkit/openssl.h"
#include "testutil.h"

static EVP_PKEY *gen(const char *type, const char *arg) {
  EVP_PKEY *p = strcmp(type, "RSA") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)atoi(arg))
                : arg                   ? EVP_PKEY_Q_keygen(NULL, NULL, type, arg)
                                        : EVP_PKEY_Q_keygen(NULL, NULL, type);
  assert_non_null(p);
  return p;
}

static jwtkit_err load_pem(jwtkit_alg alg, const char *pem, const char *pass, jwtkit_key **out, jwtkit_errinfo *ei) {
  return jwtkit_key_from_pem(out, alg, pem, strlen(pem), pass, ei);
}

static void test_pem_forms(void **state) {
  (void)state;
  static const struct {
    const char *type, *arg;
    jwtkit_alg alg;
  } kinds[] = {{"RSA", "2048", JWTKIT_ALG_RS256}, {"EC", "P-256", JWTKIT_ALG_ES256},
               {"EC", "P-384", JWTKIT_ALG_ES384}, {"EC", "P-521", JWTKIT_ALG_ES512},
               {"ED25519", NULL, JWTKIT_ALG_EDDSA}, {"ED448", NULL, JWTKIT_ALG_EDDSA}};
  for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
    EVP_PKEY *pk = gen(kinds[k].type, kinds[k].arg);
    static const struct {
      int sel;
      const char *structure;
      const char *pass;
      int priv;
    } forms[] = {{EVP_PKEY_PUBLIC_KEY, "SubjectPublicKeyInfo", NULL, 0},
                 {EVP_PKEY_KEYPAIR, "PrivateKeyInfo", NULL, 1},
                 {EVP_PKEY_KEYPAIR, "EncryptedPrivateKeyInfo", "s3cret pass", 1},
                 {EVP_PKEY_KEYPAIR, "type-specific", NULL, 1},
                 {EVP_PKEY_PUBLIC_KEY, "type-specific", NULL, 0}};
    for (size_t f = 0; f < sizeof forms / sizeof *forms; f++) {
      int is_ed = kinds[k].arg == NULL;
      int is_ec = strcmp(kinds[k].type, "EC") == 0;
      if (strcmp(forms[f].structure, "type-specific") == 0 && (is_ed || (is_ec && !forms[f].priv))) continue;
      size_t n;
      char *pem = tu_pkey_encode(pk, forms[f].sel, "PEM", forms[f].structure, forms[f].pass, &n);
      jwtkit_key *key = NULL;
      jwtkit_errinfo ei = {0};
      jwtkit_err rc = load_pem(kinds[k].alg, pem, forms[f].pass, &key, &ei);
      if (rc != JWTKIT_OK) fail_msg("%s %s: %s", kinds[k].type, forms[f].structure, ei.msg);
      assert_int_equal(jwtkit_key_can_sign(key), forms[f].priv);
      assert_int_equal(jwtkit_key_alg(key), kinds[k].alg);
      if (forms[f].pass != NULL) {
        jwtkit_key *k2 = NULL;
        assert_int_equal(load_pem(kinds[k].alg, pem, NULL, &k2, NULL), JWTKIT_ERR_PASSPHRASE);
        assert_int_equal(load_pem(kinds[k].alg, pem, "wrong", &k2, NULL), JWTKIT_ERR_PASSPHRASE);
        assert_null(k2);
      }
      /* DER of the same structure */
      if (forms[f].pass == NULL) {
        size_t dn;
        char *der = tu_pkey_encode(pk, forms[f].sel, "DER", forms[f].structure, NULL, &dn);
        jwtkit_key *k3 = NULL;
        jwtkit_err drc = jwtkit_key_from_der(&k3, kinds[k].alg, (unsigned char *)der, dn, &ei);
        if (drc != JWTKIT_OK) fail_msg("DER %s %s: %s", kinds[k].type, forms[f].structure, ei.msg);
        assert_true(jwtkit_key_equal_public(key, k3));
        jwtkit_key_free(k3);
        free(der);
      }
      /* EC and OKP keys may leave the algorithm to the curve */
      if (kinds[k].alg != JWTKIT_ALG_RS256) {
        jwtkit_key *k4 = NULL;
        assert_int_equal(load_pem(JWTKIT_ALG_UNSPEC, pem, forms[f].pass, &k4, NULL), JWTKIT_OK);
        assert_int_equal(jwtkit_key_alg(k4), kinds[k].alg);
        jwtkit_key_free(k4);
      } else {
        jwtkit_key *k4 = NULL;
        assert_int_equal(load_pem(JWTKIT_ALG_UNSPEC, pem, forms[f].pass, &k4, NULL), JWTKIT_ERR_INVALID_ARG);
      }
      jwtkit_key_free(key);
      free(pem);
    }
    EVP_PKEY_free(pk);
  }
}

static void test_pem_export_roundtrip(void **state) {
  (void)state;
  jwtkit_key *k = tu_key(JWTKIT_ALG_ES256);
  char *pub = NULL, *priv = NULL, *enc = NULL;
  size_t n;
  assert_int_equal(jwtkit_key_to_pem(k, 0, NULL, &pub, &n), JWTKIT_OK);
  assert_non_null(strstr(pub, "BEGIN PUBLIC KEY"));
  assert_int_equal(jwtkit_key_to_pem(k, 1, NULL, &priv, &n), JWTKIT_OK);
  assert_non_null(strstr(priv, "BEGIN PRIVATE KEY"));
  assert_int_equal(jwtkit_key_to_pem(k, 1, "pw", &enc, &n), JWTKIT_OK);
  assert_non_null(strstr(enc, "BEGIN ENCRYPTED PRIVATE KEY"));
  jwtkit_key *a = NULL, *b = NULL, *c = NULL;
  assert_int_equal(load_pem(JWTKIT_ALG_ES256, pub, NULL, &a, NULL), JWTKIT_OK);
  assert_int_equal(load_pem(JWTKIT_ALG_ES256, priv, NULL, &b, NULL), JWTKIT_OK);
  assert_int_equal(load_pem(JWTKIT_ALG_ES256, enc, "pw", &c, NULL), JWTKIT_OK);
  assert_true(jwtkit_key_equal_public(k, a) && jwtkit_key_equal_public(k, b) && jwtkit_key_equal_public(k, c));
  assert_false(jwtkit_key_can_sign(a));
  assert_true(jwtkit_key_can_sign(c));
  /* a public key cannot export a private PEM; an HMAC key has no PEM */
  char *x = NULL;
  assert_int_equal(jwtkit_key_to_pem(a, 1, NULL, &x, &n), JWTKIT_ERR_INVALID_ARG);
  assert_int_equal(jwtkit_key_to_pem(tu_key(JWTKIT_ALG_HS256), 0, NULL, &x, &n), JWTKIT_ERR_UNSUPPORTED);
  jwtkit_key_free(a);
  jwtkit_key_free(b);
  jwtkit_key_free(c);
  jwtkit_free(pub);
  jwtkit_free(priv);
  jwtkit_free(enc);
}

static void test_pem_structure_errors(void **state) {
  (void)state;
  jwtkit_key *k = tu_key(JWTKIT_ALG_ES256), *out = NULL;
  char *pub = NULL;
  size_t n;
  assert_int_equal(jwtkit_key_to_pem(k, 0, NULL, &pub, &n), JWTKIT_OK);
  char buf[4096];
  /* two blocks */
  snprintf(buf, sizeof buf, "%s%s", pub, pub);
  assert_int_equal(load_pem(JWTKIT_ALG_ES256, buf, NULL, &out, NULL), JWTKIT_ERR_INVALID_KEY);
  /* trailing garbage */
  snprintf(buf, sizeof buf, "%sjunk\n", pub);
  assert_int_equal(load_pem(JWTKIT_ALG_ES256, buf, NULL, &out, NULL), JWTKIT_ERR_INVALID_KEY);
  /* leading and trailing whitespace is fine */
  snprintf(buf, sizeof buf, "\n  %s\n\n", pub);
  assert_int_equal(load_pem(JWTKIT_ALG_ES256, buf, NULL, &out, NULL), JWTKIT_OK);
  jwtkit_key_free(out);
  out = NULL;
  /* mismatched END label */
  snprintf(buf, sizeof buf, "%s", pub);
  char *end = strstr(buf, "-----END PUBLIC KEY");
  memcpy(end, "-----END PUBLIK KEY", 19);
  assert_int_equal(load_pem(JWTKIT_ALG_ES256, buf, NULL, &out, NULL), JWTKIT_ERR_INVALID_KEY);
  /* bad base64 in the body */
  snprintf(buf, sizeof buf, "%s", pub);
  buf[40] = '*';
  assert_int_equal(load_pem(JWTKIT_ALG_ES256, buf, NULL, &out, NULL), JWTKIT_ERR_INVALID_KEY);
  /* a label that says PRIVATE around a public key */
  snprintf(buf, sizeof buf, "%s", pub);
  char *b = strstr(buf, "PUBLIC KEY-----");
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "-----BEGIN PRIVATE KEY-----%s", b + 15);
  char *e2 = strstr(tmp, "-----END PUBLIC KEY-----");
  snprintf(e2, sizeof tmp - (size_t)(e2 - tmp), "-----END PRIVATE KEY-----\n");
  assert_int_equal(load_pem(JWTKIT_ALG_ES256, tmp, NULL, &out, NULL), JWTKIT_ERR_INVALID_KEY);
  /* a certificate is not a key */
  assert_int_equal(load_pem(JWTKIT_ALG_ES256, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", NULL, &out,
                            NULL),
                   JWTKIT_ERR_UNSUPPORTED);
  assert_int_equal(load_pem(JWTKIT_ALG_ES256, "not pem", NULL, &out, NULL), JWTKIT_ERR_INVALID_KEY);
  assert_null(out);
  jwtkit_free(pub);
}

static void test_algorithm_binding(void **state) {
  (void)state;
  jwtkit_errinfo ei;
  jwtkit_key *out = NULL;
  size_t n;
  /* RSA below 2048 bits */
  EVP_PKEY *small = gen("RSA", "1024");
  char *pem = tu_pkey_encode(small, EVP_PKEY_PUBLIC_KEY, "PEM", "SubjectPublicKeyInfo", NULL, &n);
  assert_int_equal(load_pem(JWTKIT_ALG_RS256, pem, NULL, &out, &ei), JWTKIT_ERR_WEAK_KEY);
  assert_string_equal(ei.field, "n");
  free(pem);
  EVP_PKEY_free(small);
  /* RSA with e = 3 */
  EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
  EVP_PKEY *e3 = NULL;
  BIGNUM *three = BN_new();
  BN_set_word(three, 3);
  assert_int_equal(EVP_PKEY_keygen_init(c), 1);
  assert_int_equal(EVP_PKEY_CTX_set_rsa_keygen_bits(c, 2048), 1);
  assert_int_equal(EVP_PKEY_CTX_set1_rsa_keygen_pubexp(c, three), 1);
  assert_int_equal(EVP_PKEY_keygen(c, &e3), 1);
  pem = tu_pkey_encode(e3, EVP_PKEY_PUBLIC_KEY, "PEM", "SubjectPublicKeyInfo", NULL, &n);
  assert_int_equal(load_pem(JWTKIT_ALG_RS256, pem, NULL, &out, &ei), JWTKIT_ERR_WEAK_KEY);
  assert_string_equal(ei.field, "e");
  free(pem);
  EVP_PKEY_free(e3);
  BN_free(three);
  EVP_PKEY_CTX_free(c);
  /* a key of one family cannot take another family's alg */
  EVP_PKEY *ec = gen("EC", "P-256");
  pem = tu_pkey_encode(ec, EVP_PKEY_PUBLIC_KEY, "PEM", "SubjectPublicKeyInfo", NULL, &n);
  assert_int_equal(load_pem(JWTKIT_ALG_ES384, pem, NULL, &out, &ei), JWTKIT_ERR_INVALID_KEY); /* wrong curve */
  assert_int_equal(load_pem(JWTKIT_ALG_RS256, pem, NULL, &out, &ei), JWTKIT_ERR_INVALID_KEY);
  assert_int_equal(load_pem(JWTKIT_ALG_EDDSA, pem, NULL, &out, &ei), JWTKIT_ERR_INVALID_KEY);
  free(pem);
  EVP_PKEY_free(ec);
  /* an unapproved curve */
  EVP_PKEY *k1 = gen("EC", "secp256k1");
  pem = tu_pkey_encode(k1, EVP_PKEY_PUBLIC_KEY, "PEM", "SubjectPublicKeyInfo", NULL, &n);
  assert_int_equal(load_pem(JWTKIT_ALG_UNSPEC, pem, NULL, &out, &ei), JWTKIT_ERR_INVALID_KEY);
  free(pem);
  EVP_PKEY_free(k1);
  /* not a signature key type */
  EVP_PKEY *x = gen("X25519", NULL);
  pem = tu_pkey_encode(x, EVP_PKEY_PUBLIC_KEY, "PEM", "SubjectPublicKeyInfo", NULL, &n);
  assert_int_equal(load_pem(JWTKIT_ALG_UNSPEC, pem, NULL, &out, &ei), JWTKIT_ERR_UNSUPPORTED);
  free(pem);
  EVP_PKEY_free(x);
  assert_null(out);
}

static void test_hmac_secrets(void **state) {
  (void)state;
  unsigned char s[64] = {0};
  jwtkit_key *k = NULL;
  assert_int_equal(jwtkit_key_from_secret(&k, JWTKIT_ALG_HS256, s, 31, NULL), JWTKIT_ERR_WEAK_KEY);
  assert_int_equal(jwtkit_key_from_secret(&k, JWTKIT_ALG_HS384, s, 47, NULL), JWTKIT_ERR_WEAK_KEY);
  assert_int_equal(jwtkit_key_from_secret(&k, JWTKIT_ALG_HS512, s, 63, NULL), JWTKIT_ERR_WEAK_KEY);
  assert_int_equal(jwtkit_key_from_secret(&k, JWTKIT_ALG_RS256, s, 64, NULL), JWTKIT_ERR_INVALID_KEY);
  assert_int_equal(jwtkit_key_from_secret(&k, JWTKIT_ALG_HS512, s, 64, NULL), JWTKIT_OK);
  assert_int_equal(jwtkit_key_bits(k), 512);
  /* an HMAC key never becomes public material */
  char *out = NULL;
  size_t n;
  assert_int_equal(jwtkit_key_to_jwk(k, 0, &out, &n), JWTKIT_ERR_INVALID_ARG);
  assert_int_equal(jwtkit_key_to_jwk(k, 1, &out, &n), JWTKIT_OK);
  assert_non_null(strstr(out, "\"kty\":\"oct\""));
  jwtkit_free(out);
  jwtkit_key_free(k);
}

static jwtkit_err jwk(jwtkit_alg alg, const char *json, jwtkit_errinfo *ei) {
  jwtkit_key *k = NULL;
  jwtkit_err rc = jwtkit_key_from_jwk(&k, alg, json, strlen(json), ei);
  jwtkit_key_free(k);
  return rc;
}

static void test_jwk_import_rules(void **state) {
  (void)state;
  jwtkit_errinfo ei;
  /* RFC 7515 A.3 P-256 public key */
  const char *ec = "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
                   "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}";
  assert_int_equal(jwk(JWTKIT_ALG_UNSPEC, ec, &ei), JWTKIT_OK);
  assert_int_equal(jwk(JWTKIT_ALG_ES384, ec, &ei), JWTKIT_ERR_INVALID_KEY);
  assert_int_equal(jwk(JWTKIT_ALG_HS256, ec, &ei), JWTKIT_ERR_INVALID_KEY); /* public key as HMAC */
  /* point not on the curve: change the last y character */
  char bad[512];
  snprintf(bad, sizeof bad, "%s", ec);
  char *y = strstr(bad, "5a0\"");
  y[2] = '1';
  assert_int_equal(jwk(JWTKIT_ALG_UNSPEC, bad, &ei), JWTKIT_ERR_INVALID_KEY);
  /* coordinate of the wrong length */
  assert_int_equal(jwk(JWTKIT_ALG_UNSPEC,
                       "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAA\",\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}",
                       &ei),
                   JWTKIT_ERR_INVALID_KEY);
  assert_string_equal(ei.field, "x");
  /* alg member and argument must agree; unknown alg and "none" refused */
  char withalg[512];
  snprintf(withalg, sizeof withalg, "%.*s,\"alg\":\"ES256\"}", (int)strlen(ec) - 1, ec);
  assert_int_equal(jwk(JWTKIT_ALG_ES256, withalg, &ei), JWTKIT_OK);
  snprintf(withalg, sizeof withalg, "%.*s,\"alg\":\"none\"}", (int)strlen(ec) - 1, ec);
  assert_int_equal(jwk(JWTKIT_ALG_UNSPEC, withalg, &ei), JWTKIT_ERR_UNSUPPORTED);
  snprintf(withalg, sizeof withalg, "%.*s,\"use\":\"enc\"}", (int)strlen(ec) - 1, ec);
  assert_int_equal(jwk(JWTKIT_ALG_UNSPEC, withalg, &ei), JWTKIT_ERR_INVALID_KEY);
  snprintf(withalg, sizeof withalg, "%.*s,\"key_ops\":[\"encrypt\"]}", (int)strlen(ec) - 1, ec);
  assert_int_equal(jwk(JWTKIT_ALG_UNSPEC, withalg, &ei), JWTKIT_ERR_INVALID_KEY);
  snprintf(withalg, sizeof withalg, "%.*s,\"key_ops\":[\"verify\"]}", (int)strlen(ec) - 1, ec);
  assert_int_equal(jwk(JWTKIT_ALG_UNSPEC, withalg, &ei), JWTKIT_OK);
  /* non-canonical base64url in a member */
  assert_int_equal(jwk(JWTKIT_ALG_HS256, "{\"kty\":\"oct\",\"k\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}", &ei),
                   JWTKIT_ERR_INVALID_KEY);
  /* oct without an HS alg, short oct */
  assert_int_equal(jwk(JWTKIT_ALG_UNSPEC, "{\"kty\":\"oct\",\"k\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}", &ei),
                   JWTKIT_ERR_INVALID_KEY);
  assert_int_equal(jwk(JWTKIT_ALG_HS256, "{\"kty\":\"oct\",\"k\":\"AAAA\"}", &ei), JWTKIT_ERR_WEAK_KEY);
  assert_int_equal(jwk(JWTKIT_ALG_HS256, "{\"kty\":\"oct\",\"k\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}", &ei),
                   JWTKIT_OK);
  /* unsupported kty / crv, malformed JSON, duplicate members */
  assert_int_equal(jwk(JWTKIT_ALG_UNSPEC, "{\"kty\":\"XYZ\"}", &ei), JWTKIT_ERR_UNSUPPORTED);
  assert_int_equal(jwk(JWTKIT_ALG_UNSPEC, "{\"kty\":\"OKP\",\"crv\":\"X25519\",\"x\":\"AAAA\"}", &ei),
                   JWTKIT_ERR_UNSUPPORTED);
  assert_int_equal(jwk(JWTKIT_ALG_UNSPEC, "{\"kty\":", &ei), JWTKIT_ERR_INVALID_KEY);
  assert_int_equal(jwk(JWTKIT_ALG_UNSPEC, "{\"kty\":\"EC\",\"kty\":\"EC\"}", &ei), JWTKIT_ERR_INVALID_KEY);
  assert_int_equal(jwk(JWTKIT_ALG_UNSPEC, "{}", &ei), JWTKIT_ERR_INVALID_KEY);
}

static void test_jwk_roundtrip_all(void **state) {
  (void)state;
  for (int a = 1; a < JWTKIT_ALG_COUNT; a++) {
    jwtkit_key *k = tu_key((jwtkit_alg)a);
    for (int priv = 0; priv <= 1; priv++) {
      if (!priv && jwtkit_key_kty(k) == JWTKIT_KTY_OCT) continue;
      char *json = NULL;
      size_t n;
      assert_int_equal(jwtkit_key_to_jwk(k, priv, &json, &n), JWTKIT_OK);
      assert_int_equal(strlen(json), n);
      int has_private = strstr(json, "\"d\":") != NULL || strstr(json, "\"k\":") != NULL;
      assert_int_equal(has_private, priv);
      jwtkit_key *back = NULL;
      jwtkit_errinfo ei;
      if (jwtkit_key_from_jwk(&back, JWTKIT_ALG_UNSPEC, json, n, &ei) != JWTKIT_OK)
        fail_msg("%s: %s (%s)", jwtkit_alg_name((jwtkit_alg)a), ei.msg, json);
      assert_true(jwtkit_key_equal_public(k, back));
      assert_int_equal(jwtkit_key_can_sign(back), priv);
      char t1[44], t2[44];
      assert_int_equal(jwtkit_key_thumbprint(k, t1), JWTKIT_OK);
      assert_int_equal(jwtkit_key_thumbprint(back, t2), JWTKIT_OK);
      assert_string_equal(t1, t2);
      jwtkit_key_free(back);
      jwtkit_free(json);
    }
  }
}

/* A private RSA JWK with only n, e, d (as RFC 7515 A.2 prints it): the CRT
 * members are recovered, so the key exports as PKCS#8; a d that does not
 * belong to n and e is refused. */
static void test_rsa_jwk_without_crt(void **state) {
  (void)state;
  jwtkit_key *k = tu_key(JWTKIT_ALG_RS256);
  char *json = NULL;
  size_t n;
  assert_int_equal(jwtkit_key_to_jwk(k, 1, &json, &n), JWTKIT_OK);
  /* cut everything after "d":"..." up to "alg" */
  char *pp = strstr(json, ",\"p\":");
  char *alg = strstr(json, ",\"alg\":");
  assert_non_null(pp);
  assert_non_null(alg);
  memmove(pp, alg, strlen(alg) + 1);
  assert_null(strstr(json, "\"qi\""));
  jwtkit_key *nocrt = NULL;
  jwtkit_errinfo ei;
  assert_int_equal(jwtkit_key_from_jwk(&nocrt, JWTKIT_ALG_UNSPEC, json, strlen(json), &ei), JWTKIT_OK);
  char *pem = NULL;
  size_t pl;
  assert_int_equal(jwtkit_key_to_pem(nocrt, 1, NULL, &pem, &pl), JWTKIT_OK);
  jwtkit_key *back = NULL;
  assert_int_equal(jwtkit_key_from_pem(&back, JWTKIT_ALG_RS256, pem, pl, NULL, &ei), JWTKIT_OK);
  assert_true(jwtkit_key_equal_public(k, back));
  /* a token signed by the recovered key verifies with the original */
  char *tok = NULL;
  assert_int_equal(jwtkit_sign(back, NULL, "{\"exp\":1}", 9, &tok, &n, NULL), JWTKIT_OK);
  jwtkit_verifier *v = tu_verifier(k);
  assert_int_equal(jwtkit_verify_at(v, tok, n, 0, NULL, NULL), JWTKIT_OK);
  jwtkit_verifier_free(v);
  jwtkit_free(tok);
  /* another d: refused */
  char *d = strstr(json, "\"d\":\"") + 5;
  d[10] = d[10] == 'A' ? 'B' : 'A';
  jwtkit_key *bad = NULL;
  assert_int_equal(jwtkit_key_from_jwk(&bad, JWTKIT_ALG_UNSPEC, json, strlen(json), &ei), JWTKIT_ERR_INVALID_KEY);
  assert_null(bad);
  jwtkit_free(pem);
  jwtkit_free(json);
  jwtkit_key_free(back);
  jwtkit_key_free(nocrt);
}

/* Any kid set_kid accepts survives a JWK round trip, even when every byte
 * is written as a six-character escape (found by the fuzz review). */
static void test_kid_escape_roundtrip(void **state) {
  (void)state;
  jwtkit_key *k = NULL, *back = NULL;
  assert_int_equal(jwtkit_key_generate(&k, JWTKIT_ALG_ES256, 0, NULL), JWTKIT_OK);
  char kid[255];
  memset(kid, 0x01, sizeof kid);
  assert_int_equal(jwtkit_key_set_kid(k, kid, sizeof kid), JWTKIT_OK);
  char *jwk = NULL;
  size_t len = 0;
  assert_int_equal(jwtkit_key_to_jwk(k, 0, &jwk, &len), JWTKIT_OK);
  jwtkit_errinfo ei;
  assert_int_equal(jwtkit_key_from_jwk(&back, JWTKIT_ALG_UNSPEC, jwk, len, &ei), JWTKIT_OK);
  assert_memory_equal(jwtkit_key_kid(back), kid, sizeof kid);
  assert_int_equal(strlen(jwtkit_key_kid(back)), sizeof kid);
  jwtkit_free(jwk);
  jwtkit_key_free(back);
  jwtkit_key_free(k);
}

static void test_kid_and_refs(void **state) {
  (void)state;
  jwtkit_key *k = NULL;
  assert_int_equal(jwtkit_key_generate(&k, JWTKIT_ALG_ES256, 0, NULL), JWTKIT_OK);
  assert_null(jwtkit_key_kid(k));
  assert_int_equal(jwtkit_key_set_kid(k, "a\0b", 3), JWTKIT_ERR_INVALID_ARG);
  assert_int_equal(jwtkit_key_set_kid(k, "key-1", 5), JWTKIT_OK);
  assert_string_equal(jwtkit_key_kid(k), "key-1");
  jwtkit_key_ref(k);
  assert_int_equal(jwtkit_key_set_kid(k, "key-2", 5), JWTKIT_ERR_STATE); /* shared: immutable */
  jwtkit_key_free(k);
  jwtkit_key_free(k);
  jwtkit_key_free(NULL);
  char uri[96];
  assert_int_equal(jwtkit_key_thumbprint_uri(tu_key(JWTKIT_ALG_EDDSA), uri), JWTKIT_OK);
  assert_int_equal(strncmp(uri, "urn:ietf:params:oauth:jwk-thumbprint:sha-256:", 45), 0);
  assert_int_equal(strlen(uri), 45 + 43);
}

static void test_generate_sizes(void **state) {
  (void)state;
  jwtkit_key *k = NULL;
  assert_int_equal(jwtkit_key_generate(&k, JWTKIT_ALG_RS256, 1024, NULL), JWTKIT_ERR_INVALID_ARG);
  assert_int_equal(jwtkit_key_generate(&k, JWTKIT_ALG_PS256, 3072, NULL), JWTKIT_OK);
  assert_int_equal(jwtkit_key_bits(k), 3072);
  jwtkit_key_free(k);
  assert_int_equal(jwtkit_key_generate(&k, JWTKIT_ALG_EDDSA, 448, NULL), JWTKIT_OK);
  assert_string_equal(jwtkit_key_curve(k), "Ed448");
  jwtkit_key_free(k);
  assert_int_equal(jwtkit_key_generate(&k, JWTKIT_ALG_HS384, 0, NULL), JWTKIT_OK);
  assert_int_equal(jwtkit_key_bits(k), 384);
  jwtkit_key_free(k);
  assert_int_equal(jwtkit_key_generate(&k, JWTKIT_ALG_UNSPEC, 0, NULL), JWTKIT_ERR_INVALID_ARG);
}

static void test_evp_bridge(void **state) {
  (void)state;
  EVP_PKEY *pk = gen("EC", "P-384");
  jwtkit_key *k = NULL;
  assert_int_equal(jwtkit_key_from_evp(&k, JWTKIT_ALG_UNSPEC, pk, NULL), JWTKIT_OK);
  assert_int_equal(jwtkit_key_alg(k), JWTKIT_ALG_ES384);
  assert_ptr_equal(jwtkit_key_evp(k), pk);
  EVP_PKEY_free(pk); /* the key holds its own reference */
  assert_true(jwtkit_key_can_sign(k));
  jwtkit_key_free(k);
}


/* JWK string members are compared after unescaping: "kty", "crv", "alg"
 * and "use" written entirely with \u escapes are the same values.  Their
 * escaped length was once compared against the short value buffers. */
static void test_jwk_escaped_members(void **state) {
  (void)state;
  static const char jwk[] =
      "{\"kty\":\"\\u0045\\u0043\",\"crv\":\"\\u0050\\u002d\\u0032\\u0035\\u0036\","
      "\"alg\":\"\\u0045\\u0053\\u0032\\u0035\\u0036\",\"use\":\"\\u0073\\u0069\\u0067\","
      "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\",\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}";
  jwtkit_key *k = NULL;
  jwtkit_errinfo ei;
  jwtkit_err rc = jwtkit_key_from_jwk(&k, JWTKIT_ALG_UNSPEC, jwk, strlen(jwk), &ei);
  if (rc != JWTKIT_OK) fail_msg("escaped JWK members: %s", ei.msg);
  assert_int_equal(jwtkit_key_alg(k), JWTKIT_ALG_ES256);
  jwtkit_key_free(k);
  /* a value that is long once unescaped is still refused */
  static const char longalg[] = "{\"kty\":\"EC\",\"crv\":\"P-256\",\"alg\":\"ES256ES256ES256ES256\","
                                "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
                                "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}";
  assert_int_equal(jwtkit_key_from_jwk(&k, JWTKIT_ALG_UNSPEC, longalg, strlen(longalg), &ei), JWTKIT_ERR_UNSUPPORTED);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pem_forms),          cmocka_unit_test(test_pem_export_roundtrip),
      cmocka_unit_test(test_pem_structure_errors), cmocka_unit_test(test_algorithm_binding),
      cmocka_unit_test(test_hmac_secrets),       cmocka_unit_test(test_jwk_import_rules),
      cmocka_unit_test(test_jwk_roundtrip_all),  cmocka_unit_test(test_kid_and_refs),
      cmocka_unit_test(test_rsa_jwk_without_crt), cmocka_unit_test(test_kid_escape_roundtrip), cmocka_unit_test(test_jwk_escaped_members),
      cmocka_unit_test(test_generate_sizes),     cmocka_unit_test(test_evp_bridge),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
