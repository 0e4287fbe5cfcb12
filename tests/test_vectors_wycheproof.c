/*
 * Project Wycheproof conformance tests (vectors/wycheproof, see its README).
 *
 * Algorithm files (ECDSA P1363, Ed25519, HMAC, RSASSA-PKCS1-v1_5, RSASSA-PSS):
 * Wycheproof signs arbitrary `msg` bytes, not JWS signing inputs, so each
 * case goes through the library's signature primitive with the key bound to
 * its JWS algorithm: jk_sig_verify(), which includes jwtkit's own checks
 * (exact signature length, ECDSA r/s range) before OpenSSL.
 *
 * JWS-level files: json_web_signature_test.json (compact tokens through
 * jwtkit_verify) and json_web_key_test.json (JWK import plus a token).
 *
 * Every test of every file is accounted for; deviations by policy are counted
 * and asserted with their exact refusal code, never skipped.
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

static int g_oct_policy; /* valid cases refused through jwtkit_jwks_parse: oct keys are skipped */
static int g_fail; /* failed checks in the current test */
#define CHECK(cond, ...)                                \
  do {                                                  \
    if (!(cond)) {                                      \
      g_fail++;                                         \
      printf("    FAIL (%s:%d) ", __FILE__, __LINE__);  \
      printf(__VA_ARGS__);                              \
      printf("\n");                                     \
    }                                                   \
  } while (0)

/* Files covered below; test_wycheproof_files_covered() fails on others. */
static const char *const k_files[] = {
    "ecdsa_secp256r1_sha256_p1363_test.json", "ecdsa_secp384r1_sha384_p1363_test.json",
    "ecdsa_secp521r1_sha512_p1363_test.json", "ed25519_test.json",
    "hmac_sha256_test.json",                  "hmac_sha384_test.json",
    "hmac_sha512_test.json",                  "rsa_signature_2048_sha256_test.json",
    "rsa_signature_2048_sha384_test.json",    "rsa_signature_2048_sha512_test.json",
    "rsa_signature_3072_sha256_test.json",    "rsa_signature_4096_sha256_test.json",
    "rsa_pss_2048_sha256_mgf1_32_test.json",  "rsa_pss_2048_sha384_mgf1_48_test.json",
    "rsa_pss_4096_sha512_mgf1_64_test.json",  "json_web_signature_test.json",
    "json_web_key_test.json",                 NULL};

static void require_vectors(void) { tu_require_vectors("wycheproof", "Wycheproof"); }

static json_t *load_json(const char *name) { return tu_load_vectors_json("wycheproof", name); }

static int jint(const json_t *obj, const char *name) { return (int)json_integer_value(json_object_get(obj, name)); }

/* Lowercase hex of a member into a malloc'd buffer (never NULL). */
static unsigned char *jhex(const json_t *obj, const char *name, size_t *len) {
  const char *h = tu_jstr(obj, name);
  return tu_hex(h ? h : "", len);
}

static int has_flag(const json_t *test, const char *flag) {
  size_t i;
  const json_t *f;
  json_array_foreach(json_object_get(test, "flags"), i, f) {
    if (json_is_string(f) && strcmp(json_string_value(f), flag) == 0) return 1;
  }
  return 0;
}

static int hash_bytes(const char *sha) {
  if (sha == NULL) return 0;
  if (strcmp(sha, "SHA-256") == 0) return 32;
  if (strcmp(sha, "SHA-384") == 0) return 48;
  if (strcmp(sha, "SHA-512") == 0) return 64;
  return 0;
}

/* Index 0/1/2 for SHA-256/384/512, -1 otherwise. */
static int hash_index(const char *sha) {
  int n = hash_bytes(sha);
  return n == 32 ? 0 : n == 48 ? 1 : n == 64 ? 2 : -1;
}

/* ------------------------------------------------- algorithm files */

typedef struct sig_counts {
  int tests, valid, valid_ok, invalid, invalid_rejected;
  int acc_accepted, acc_rejected;
  int refused_e, refused_rsa_bits, refused_short_hmac, truncated_tag, refused_pss_params, not_jose;
  int mismatches;
} sig_counts;

/* Why a group's key is expected to be refused at import, or 0. */
enum { REFUSE_NONE = 0, REFUSE_E, REFUSE_RSA_BITS, REFUSE_SHORT_HMAC };

/* Public exponent (hex, big-endian) below 65537? */
static int small_exponent(const char *hex) {
  if (hex == NULL) return 0;
  while (hex[0] == '0' && hex[1] != '\0') hex++;
  size_t n = strlen(hex);
  if (n > 6) return 0;
  return strtoul(hex, NULL, 16) < 65537ul;
}

/* The JWS algorithm for a group, or UNSPEC when the group has no JOSE
 * counterpart (counted as not applicable). */
static jwtkit_alg group_alg(const char *type, const json_t *root, const json_t *g) {
  static const jwtkit_alg es[3] = {JWTKIT_ALG_ES256, JWTKIT_ALG_ES384, JWTKIT_ALG_ES512};
  static const jwtkit_alg rs[3] = {JWTKIT_ALG_RS256, JWTKIT_ALG_RS384, JWTKIT_ALG_RS512};
  static const jwtkit_alg ps[3] = {JWTKIT_ALG_PS256, JWTKIT_ALG_PS384, JWTKIT_ALG_PS512};
  static const jwtkit_alg hs[3] = {JWTKIT_ALG_HS256, JWTKIT_ALG_HS384, JWTKIT_ALG_HS512};
  static const char *const curves[3] = {"secp256r1", "secp384r1", "secp521r1"};
  int h = hash_index(tu_jstr(g, "sha"));
  if (strcmp(type, "EcdsaP1363Verify") == 0) {
    const char *curve = tu_jstr(json_object_get(g, "publicKey"), "curve");
    return h >= 0 && curve != NULL && strcmp(curve, curves[h]) == 0 ? es[h] : JWTKIT_ALG_UNSPEC;
  }
  if (strcmp(type, "EddsaVerify") == 0) {
    const char *curve = tu_jstr(json_object_get(g, "publicKey"), "curve");
    return curve != NULL && strcmp(curve, "edwards25519") == 0 ? JWTKIT_ALG_EDDSA : JWTKIT_ALG_UNSPEC;
  }
  if (strcmp(type, "RsassaPkcs1Verify") == 0) return h >= 0 ? rs[h] : JWTKIT_ALG_UNSPEC;
  if (strcmp(type, "RsassaPssVerify") == 0) return h >= 0 ? ps[h] : JWTKIT_ALG_UNSPEC;
  if (strcmp(type, "MacTest") == 0) {
    const char *a = tu_jstr(root, "algorithm");
    if (a == NULL || strncmp(a, "HMACSHA", 7) != 0) return JWTKIT_ALG_UNSPEC;
    int bits = atoi(a + 7);
    return bits == 256 ? hs[0] : bits == 384 ? hs[1] : bits == 512 ? hs[2] : JWTKIT_ALG_UNSPEC;
  }
  return JWTKIT_ALG_UNSPEC;
}

/* Build the group key (asymmetric families): JWK when the group has one,
 * else the SPKI DER. */
static jwtkit_err group_key(const json_t *g, jwtkit_alg alg, jwtkit_key **key, jwtkit_errinfo *ei) {
  const json_t *jwk = json_object_get(g, "publicKeyJwk");
  if (jwk == NULL) jwk = json_object_get(g, "keyJwk"); /* RSASSA-PKCS1 files */
  if (jwk != NULL) return tu_import_jwk(jwk, alg, key, ei);
  size_t n = 0;
  unsigned char *der = jhex(g, "publicKeyDer", &n);
  jwtkit_err rc = jwtkit_key_from_der(key, alg, der, n, ei);
  free(der);
  return rc;
}

/* One verification: record it against the expected result. */
static void record(sig_counts *c, const char *file, const json_t *t, int r, const char *why) {
  const char *result = tu_jstr(t, "result");
  int tc = jint(t, "tcId");
  if (strcmp(result, "valid") == 0) {
    c->valid++;
    if (r == 1) {
      c->valid_ok++;
    } else {
      c->mismatches++;
      CHECK(0, "%s tcId %d (%s): valid signature not accepted (%d)%s", file, tc, tu_jstr(t, "comment"), r, why);
    }
  } else if (strcmp(result, "invalid") == 0) {
    c->invalid++;
    if (r == 0) {
      c->invalid_rejected++;
    } else {
      c->mismatches++;
      CHECK(0, "%s tcId %d (%s): invalid signature %s (%d)%s", file, tc, tu_jstr(t, "comment"),
            r == 1 ? "accepted" : "caused an internal error", r, why);
    }
  } else if (strcmp(result, "acceptable") == 0) {
    if (r == 1) {
      c->acc_accepted++;
    } else if (r == 0) {
      c->acc_rejected++;
    } else {
      c->mismatches++;
      CHECK(0, "%s tcId %d: internal error (%d)", file, tc, r);
    }
  } else {
    c->mismatches++;
    CHECK(0, "%s tcId %d: unknown result %s", file, tc, result);
  }
}

static void run_sig_file(const char *file) {
  require_vectors();
  g_fail = 0;
  json_t *root = load_json(file);
  const char *schema = tu_jstr(root, "schema");
  const json_t *groups = json_object_get(root, "testGroups");
  assert_non_null(schema);
  assert_true(json_array_size(groups) > 0);
  sig_counts c = {0};
  size_t gi;
  const json_t *g;
  json_array_foreach(groups, gi, g) {
    const char *type = tu_jstr(g, "type");
    const json_t *tests = json_object_get(g, "tests");
    size_t ntests = json_array_size(tests);
    jwtkit_alg alg = type ? group_alg(type, root, g) : JWTKIT_ALG_UNSPEC;
    c.tests += (int)ntests;
    if (alg == JWTKIT_ALG_UNSPEC) { /* not a JOSE algorithm: count, say so */
      c.not_jose += (int)ntests;
      printf("  %s group %zu (%s): no JWS algorithm for it, %zu tests not applicable\n", file, gi,
             type ? type : "?", ntests);
      continue;
    }
    const jk_alg_info *ai = jk_alg_get(alg);
    int is_hmac = jwtkit_alg_kty(alg) == JWTKIT_KTY_OCT;

    /* policy expectations for the whole group */
    int refuse = REFUSE_NONE;
    int rejected_by_params = 0; /* every test must fail: truncated tags, foreign PSS parameters */
    if (jwtkit_alg_kty(alg) == JWTKIT_KTY_RSA) {
      if (small_exponent(tu_jstr(json_object_get(g, "publicKey"), "publicExponent")))
        refuse = REFUSE_E;
      else if (jint(g, "keySize") < 2048)
        refuse = REFUSE_RSA_BITS;
    }
    if (ai->pss) {
      int h = hash_bytes(tu_jstr(g, "sha"));
      const char *mgf = tu_jstr(g, "mgf");
      if (h != hash_bytes(tu_jstr(g, "mgfSha")) || jint(g, "sLen") != h || mgf == NULL || strcmp(mgf, "MGF1") != 0)
        rejected_by_params = 1; /* RFC 7518 3.5: MGF1 with the same hash, salt = hash length */
    }
    if (is_hmac && jint(g, "tagSize") < 8 * (int)ai->hash_len) rejected_by_params = 1;

    jwtkit_key *gkey = NULL;
    jwtkit_errinfo ei = {0};
    jwtkit_err grc = JWTKIT_OK;
    if (!is_hmac) {
      grc = group_key(g, alg, &gkey, &ei);
      if (refuse != REFUSE_NONE) {
        CHECK(grc == JWTKIT_ERR_WEAK_KEY, "%s group %zu: expected WEAK_KEY (policy %d), got %s (%s)", file, gi, refuse,
              jwtkit_errname(grc), ei.msg);
      } else if (grc != JWTKIT_OK) {
        printf("  %s group %zu: key import failed: %s %s (%s)\n", file, gi, jwtkit_errname(grc), ei.field, ei.msg);
      } else {
        CHECK(jwtkit_key_alg(gkey) == alg, "%s group %zu: key bound to %s, not %s", file, gi,
              jwtkit_alg_name(jwtkit_key_alg(gkey)), jwtkit_alg_name(alg));
      }
    }

    size_t ti;
    const json_t *t;
    json_array_foreach(tests, ti, t) {
      size_t ml = 0, sl = 0;
      unsigned char *msg = jhex(t, "msg", &ml);
      unsigned char *sig = jhex(t, is_hmac ? "tag" : "sig", &sl);
      jwtkit_key *key = gkey;
      jwtkit_err rc = grc;
      if (is_hmac) { /* the key is per test; RFC 7518 3.2: at least the hash length */
        size_t kl = 0;
        unsigned char *kb = jhex(t, "key", &kl);
        rc = jwtkit_key_from_secret(&key, alg, kb, kl, &ei);
        free(kb);
        refuse = kl < ai->hash_len ? REFUSE_SHORT_HMAC : REFUSE_NONE;
        if (refuse == REFUSE_SHORT_HMAC)
          CHECK(rc == JWTKIT_ERR_WEAK_KEY, "%s tcId %d: %zu-byte %s key: expected WEAK_KEY, got %s", file,
                jint(t, "tcId"), kl, ai->name, jwtkit_errname(rc));
      }
      if (refuse != REFUSE_NONE) {
        /* refused by policy at import: the case cannot be accepted */
        if (refuse == REFUSE_E)
          c.refused_e++;
        else if (refuse == REFUSE_RSA_BITS)
          c.refused_rsa_bits++;
        else
          c.refused_short_hmac++;
        CHECK(rc != JWTKIT_OK, "%s tcId %d: key expected to be refused was imported", file, jint(t, "tcId"));
      } else if (rc != JWTKIT_OK) {
        record(&c, file, t, 0, " [key import failed]");
      } else {
        int r = jk_sig_verify(key, msg, ml, sig, sl);
        if (rejected_by_params) {
          int *slot = is_hmac ? &c.truncated_tag : &c.refused_pss_params;
          (*slot)++;
          CHECK(r == 0, "%s tcId %d: %s must be rejected by a JWS verifier, got %d", file, jint(t, "tcId"),
                is_hmac ? "truncated tag" : "PSS parameters other than RFC 7518's", r);
        } else {
          record(&c, file, t, r, "");
        }
      }
      if (is_hmac) jwtkit_key_free(key);
      free(msg);
      free(sig);
    }
    jwtkit_key_free(gkey);
  }
  int declared = jint(root, "numberOfTests");
  printf("%s: valid ok %d/%d, invalid rejected %d/%d, acceptable (accepted %d, rejected %d), "
         "refused by policy: e<65537 %d, RSA<2048 %d, short HMAC key %d, truncated tag %d, "
         "non-RFC 7518 PSS params %d; not applicable %d; mismatches %d; total %d/%d\n",
         file, c.valid_ok, c.valid, c.invalid_rejected, c.invalid, c.acc_accepted, c.acc_rejected, c.refused_e,
         c.refused_rsa_bits, c.refused_short_hmac, c.truncated_tag, c.refused_pss_params, c.not_jose, c.mismatches,
         c.tests, declared);
  json_decref(root);
  assert_int_equal(g_fail, 0);
  assert_int_equal(c.mismatches, 0);
  assert_int_equal(c.tests, declared);
  assert_int_equal(c.valid + c.invalid + c.acc_accepted + c.acc_rejected + c.refused_e + c.refused_rsa_bits +
                       c.refused_short_hmac + c.truncated_tag + c.refused_pss_params + c.not_jose,
                   c.tests);
}

#define SIG_FILE_TEST(fn, file) \
  static void fn(void **state) { \
    (void)state;                 \
    run_sig_file(file);          \
  }

SIG_FILE_TEST(test_ecdsa_p256_sha256, "ecdsa_secp256r1_sha256_p1363_test.json")
SIG_FILE_TEST(test_ecdsa_p384_sha384, "ecdsa_secp384r1_sha384_p1363_test.json")
SIG_FILE_TEST(test_ecdsa_p521_sha512, "ecdsa_secp521r1_sha512_p1363_test.json")
SIG_FILE_TEST(test_ed25519, "ed25519_test.json")
SIG_FILE_TEST(test_hmac_sha256, "hmac_sha256_test.json")
SIG_FILE_TEST(test_hmac_sha384, "hmac_sha384_test.json")
SIG_FILE_TEST(test_hmac_sha512, "hmac_sha512_test.json")
SIG_FILE_TEST(test_rsa_pkcs1_2048_sha256, "rsa_signature_2048_sha256_test.json")
SIG_FILE_TEST(test_rsa_pkcs1_2048_sha384, "rsa_signature_2048_sha384_test.json")
SIG_FILE_TEST(test_rsa_pkcs1_2048_sha512, "rsa_signature_2048_sha512_test.json")
SIG_FILE_TEST(test_rsa_pkcs1_3072_sha256, "rsa_signature_3072_sha256_test.json")
SIG_FILE_TEST(test_rsa_pkcs1_4096_sha256, "rsa_signature_4096_sha256_test.json")
SIG_FILE_TEST(test_rsa_pss_2048_sha256, "rsa_pss_2048_sha256_mgf1_32_test.json")
SIG_FILE_TEST(test_rsa_pss_2048_sha384, "rsa_pss_2048_sha384_mgf1_48_test.json")
SIG_FILE_TEST(test_rsa_pss_4096_sha512, "rsa_pss_4096_sha512_mgf1_64_test.json")

/* ------------------------------------------------ JWS-level helpers */

/* Decoded "alg" of a compact token's header (malloc'd) or NULL. */
static char *token_alg(const char *token) {
  const char *dot = strchr(token, '.');
  if (dot == NULL) return NULL;
  size_t hl = 0;
  unsigned char *h = tu_b64url_dec(token, (size_t)(dot - token), &hl);
  if (h == NULL) return NULL;
  json_error_t err;
  json_t *hdr = json_loadb((const char *)h, hl, 0, &err);
  const char *a = tu_jstr(hdr, "alg");
  char *out = a ? strdup(a) : NULL;
  json_decref(hdr);
  free(h);
  return out;
}

/* Signature of a compact token valid under one of keys (JWS level, RFC 7515
 * 5.2 steps over the literal signing input)? */
static int token_sig_valid(jwtkit_key *const *keys, size_t n, const char *token) {
  const char *last = strrchr(token, '.');
  char *alg = token_alg(token);
  int ok = 0;
  if (last != NULL && alg != NULL) {
    jwtkit_alg a = jwtkit_alg_from_name(alg, strlen(alg));
    size_t sl = 0;
    unsigned char *sig = tu_b64url_dec(last + 1, strlen(last + 1), &sl);
    for (size_t i = 0; sig != NULL && i < n && !ok; i++)
      if (keys[i] != NULL && jwtkit_key_alg(keys[i]) == a)
        ok = jk_sig_verify(keys[i], (const unsigned char *)token, (size_t)(last - token), sig, sl) == 1;
    free(sig);
  }
  free(alg);
  return ok;
}

/* Only the compact-serialization alphabet (RFC 7515 2 and 7.1)? */
static int compact_charset_ok(const char *s) {
  for (; *s; s++) {
    char ch = *s;
    if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
          ch == '.'))
      return 0;
  }
  return 1;
}

enum { OUT_REJECTED = 0, OUT_ACCEPTED = 1, OUT_SIG_OK_NOT_JWT = 2 };

/* Payload segment of a compact token is canonical base64url of something
 * that is not a JSON object (i.e. a valid JWS whose payload is no JWT)? */
static int payload_is_non_jwt(const char *token) {
  const char *d1 = strchr(token, '.');
  const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
  if (d2 == NULL) return 0;
  size_t pl = 0;
  unsigned char *p = tu_b64url_dec(d1 + 1, (size_t)(d2 - d1 - 1), &pl);
  if (p == NULL) return 0; /* not base64url: the token itself is malformed */
  json_error_t err;
  json_t *v = json_loadb((const char *)p, pl, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &err);
  int non_jwt = !json_is_object(v);
  json_decref(v);
  free(p);
  return non_jwt;
}

/* Rejection codes seen, for the per-file summary. */
typedef struct err_hist {
  int n[32];
} err_hist;

static void hist_add(err_hist *h, jwtkit_err rc) {
  if ((int)rc >= 0 && (int)rc < 32) h->n[rc]++;
}

static void hist_print(const err_hist *h) {
  const char *sep = "";
  for (int i = 1; i < 32; i++) {
    if (h->n[i] == 0) continue;
    printf("%s%s %d", sep, jwtkit_errname((jwtkit_err)i), h->n[i]);
    sep = ", ";
  }
}

/* Verify a token with a verifier over keys[0..n): accepted, signature valid
 * but payload not a JWT claims object, or rejected (*err gets the code). */
static int verify_token(const jwtkit_verifier *v, jwtkit_key *const *keys, size_t n, const char *token,
                        jwtkit_err *err, jwtkit_errinfo *ei) {
  jwtkit_claims *cl = NULL;
  memset(ei, 0, sizeof *ei);
  jwtkit_err rc = jwtkit_verify_at(v, token, strlen(token), 1700000000, &cl, ei);
  *err = rc;
  int out = OUT_REJECTED;
  if (rc == JWTKIT_OK) {
    CHECK(cl != NULL, "verify OK without claims");
    out = OUT_ACCEPTED;
  } else {
    CHECK(cl == NULL, "claims handed out on failure");
    /* the signature is checked before the payload: MALFORMED/payload for a
     * well-encoded payload that is no JSON object means the JWS is valid
     * but not a JWT; confirm the signature independently */
    if (rc == JWTKIT_ERR_MALFORMED && strcmp(ei->field, "payload") == 0 && payload_is_non_jwt(token)) {
      int sig_ok = token_sig_valid(keys, n, token);
      CHECK(sig_ok, "MALFORMED/payload reported but the signature does not verify: %s", token);
      if (sig_ok) out = OUT_SIG_OK_NOT_JWT;
    }
  }
  jwtkit_claims_free(cl);
  return out;
}

static jwtkit_verifier *verifier_for_keys(jwtkit_key *const *keys, size_t n, jwtkit_err *rc, jwtkit_errinfo *ei) {
  jwtkit_policy *p = jwtkit_policy_new();
  jwtkit_verifier *v = NULL;
  for (size_t i = 0; i < n; i++) {
    CHECK(jwtkit_policy_allow_alg(p, jwtkit_key_alg(keys[i])) == JWTKIT_OK, "allow_alg");
    CHECK(jwtkit_policy_add_key(p, keys[i]) == JWTKIT_OK, "add_key");
  }
  CHECK(jwtkit_policy_ignore_audience(p) == JWTKIT_OK, "ignore_audience");
  CHECK(jwtkit_policy_set_require_exp(p, 0) == JWTKIT_OK, "require_exp");
  *rc = jwtkit_verifier_new(&v, p, ei);
  jwtkit_policy_free(p);
  return v;
}

/* Keys for encryption only (RFC 7517 4.2/4.3, RFC 7518 4 and 5 algorithms). */
static int is_encryption_jwk(const json_t *jwk) {
  static const char *const jwe_prefixes[] = {"RSA1_5", "RSA-OAEP", "A128", "A192", "A256",
                                             "dir",    "ECDH-ES",  "PBES2", NULL};
  const char *use = tu_jstr(jwk, "use");
  const char *alg = tu_jstr(jwk, "alg");
  const json_t *ops = json_object_get(jwk, "key_ops");
  if (use != NULL && strcmp(use, "enc") == 0) return 1;
  if (ops != NULL) {
    int sig_op = 0;
    size_t i;
    const json_t *o;
    json_array_foreach(ops, i, o) {
      const char *s = json_string_value(o);
      if (s != NULL && (strcmp(s, "sign") == 0 || strcmp(s, "verify") == 0)) sig_op = 1;
    }
    if (!sig_op) return 1;
  }
  for (int i = 0; alg != NULL && jwe_prefixes[i] != NULL; i++)
    if (strncmp(alg, jwe_prefixes[i], strlen(jwe_prefixes[i])) == 0) return 1;
  return 0;
}

/* --------------------------------------- json_web_signature_test.json */

typedef struct jws_counts {
  int tests, valid, valid_ok, valid_not_jwt, invalid, invalid_rejected;
  int json_serialization;      /* not applicable: not compact */
  int key_refused_enc;         /* encryption-only key refused (tests all invalid) */
  int key_refused_alg;         /* JWK alg is not a registered JWS alg */
  int alg_binding;             /* valid token whose alg differs from the JWK's alg */
  int not_base64url;           /* valid-labelled token with non-base64url characters */
  int contradictory;           /* invalid-labelled token byte-identical to a valid one */
  int mismatches;
  err_hist rejected;           /* codes of the rejections of invalid tokens */
} jws_counts;

static int is_valid_twin(const json_t *root, const char *jws) {
  size_t gi, ti;
  const json_t *g, *t;
  json_array_foreach(json_object_get(root, "testGroups"), gi, g) {
    json_array_foreach(json_object_get(g, "tests"), ti, t) {
      const char *r = tu_jstr(t, "result"), *j = tu_jstr(t, "jws");
      if (r != NULL && j != NULL && strcmp(r, "valid") == 0 && strcmp(j, jws) == 0) return 1;
    }
  }
  return 0;
}

/* Verify a valid-labelled token that the strict path refused by JWK alg
 * policy, with the same key material bound to the token's algorithm: the
 * signature itself must be valid. */
static int valid_with_alg_from_token(const json_t *jwk, const char *token) {
  char *alg = token_alg(token);
  json_t *copy = json_deep_copy(jwk);
  json_object_del(copy, "alg");
  jwtkit_key *key = NULL;
  jwtkit_errinfo ei = {0};
  int out = OUT_REJECTED;
  jwtkit_alg a = alg ? jwtkit_alg_from_name(alg, strlen(alg)) : JWTKIT_ALG_UNSPEC;
  if (a != JWTKIT_ALG_UNSPEC && tu_import_jwk(copy, a, &key, &ei) == JWTKIT_OK) {
    jwtkit_err rc;
    jwtkit_verifier *v = verifier_for_keys(&key, 1, &rc, &ei);
    if (v != NULL) out = verify_token(v, &key, 1, token, &rc, &ei);
    jwtkit_verifier_free(v);
  }
  jwtkit_key_free(key);
  json_decref(copy);
  free(alg);
  return out != OUT_REJECTED;
}

static void test_json_web_signature(void **state) {
  (void)state;
  require_vectors();
  g_fail = 0;
  const char *file = "json_web_signature_test.json";
  json_t *root = load_json(file);
  jws_counts c = {0};
  size_t gi;
  const json_t *g;
  json_array_foreach(json_object_get(root, "testGroups"), gi, g) {
    const json_t *jwk = json_object_get(g, "public");
    if (jwk == NULL) jwk = json_object_get(g, "private"); /* HMAC groups */
    jwtkit_key *key = NULL;
    jwtkit_errinfo kei = {0};
    jwtkit_err krc = tu_import_jwk(jwk, JWTKIT_ALG_UNSPEC, &key, &kei);
    const char *jalg = tu_jstr(jwk, "alg");
    int enc_key = is_encryption_jwk(jwk);
    int unregistered_alg = jalg != NULL && jwtkit_alg_from_name(jalg, strlen(jalg)) == JWTKIT_ALG_UNSPEC && !enc_key;
    if (enc_key)
      CHECK(krc != JWTKIT_OK, "%s group %zu: encryption-only JWK imported as a signature key", file, gi);
    else if (unregistered_alg)
      CHECK(krc == JWTKIT_ERR_UNSUPPORTED && strcmp(kei.field, "alg") == 0,
            "%s group %zu: JWK alg %s: expected UNSUPPORTED/alg, got %s", file, gi, jalg, jwtkit_errname(krc));
    else
      CHECK(krc == JWTKIT_OK, "%s group %zu (%s): JWK import failed: %s %s (%s)", file, gi, tu_jstr(g, "comment"),
            jwtkit_errname(krc), kei.field, kei.msg);
    jwtkit_verifier *v = NULL;
    if (key != NULL) {
      jwtkit_err vrc;
      jwtkit_errinfo vei = {0};
      v = verifier_for_keys(&key, 1, &vrc, &vei);
      CHECK(v != NULL, "%s group %zu: verifier: %s", file, gi, vei.msg);
    }
    size_t ti;
    const json_t *t;
    json_array_foreach(json_object_get(g, "tests"), ti, t) {
      const char *jws = tu_jstr(t, "jws");
      const char *result = tu_jstr(t, "result");
      int tc = jint(t, "tcId");
      int want_valid = result != NULL && strcmp(result, "valid") == 0;
      c.tests++;
      if (jws == NULL || result == NULL) {
        c.mismatches++;
        CHECK(0, "%s tcId %d: no jws/result", file, tc);
        continue;
      }
      jwtkit_err rc = JWTKIT_ERR_INVALID_KEY;
      jwtkit_errinfo ei = {0};
      int out = v != NULL ? verify_token(v, &key, 1, jws, &rc, &ei) : OUT_REJECTED;
      int accepted = out != OUT_REJECTED;
      if (jws[0] == '{') { /* JSON serialization: not applicable to a compact-only library */
        c.json_serialization++;
        CHECK(!accepted, "%s tcId %d: JSON serialization accepted as compact", file, tc);
        if (want_valid) c.mismatches++; /* none in the file; would need a JSON-serialization API */
        continue;
      }
      if (accepted && !compact_charset_ok(jws)) {
        /* RFC 7515 2 and 7.1: base64url with no other characters, whatever
         * the vector's label */
        c.mismatches++;
        CHECK(0, "%s tcId %d (%s): token with characters outside base64url accepted", file, tc, tu_jstr(t, "comment"));
        if (want_valid) c.valid++; else c.invalid++;
        continue;
      }
      if (want_valid) {
        c.valid++;
        if (accepted) {
          c.valid_ok++;
          if (out == OUT_SIG_OK_NOT_JWT) c.valid_not_jwt++;
        } else if (!compact_charset_ok(jws)) {
          /* labelled valid, but a strict verifier must refuse it (above) */
          c.not_base64url++;
          printf("  tcId %d (%s): labelled valid but has characters outside base64url: rejected by strict "
                 "RFC 7515 decoding (%s %s)\n",
                 tc, tu_jstr(t, "comment"), jwtkit_errname(rc), ei.field);
        } else if (key == NULL && unregistered_alg) {
          int sig_ok = valid_with_alg_from_token(jwk, jws);
          CHECK(sig_ok, "%s tcId %d: signature invalid under the key with alg taken from the token", file, tc);
          if (sig_ok) {
            c.key_refused_alg++;
            printf("  tcId %d (%s): JWK alg \"%s\" refused by policy (UNSUPPORTED); same key without alg verifies it\n",
                   tc, tu_jstr(t, "comment"), jalg);
          } else {
            c.mismatches++;
          }
        } else if (rc == JWTKIT_ERR_ALG_NOT_ALLOWED && key != NULL) {
          char *talg = token_alg(jws);
          int differs = talg != NULL && strcmp(talg, jwtkit_alg_name(jwtkit_key_alg(key))) != 0;
          int sig_ok = differs && valid_with_alg_from_token(jwk, jws);
          CHECK(sig_ok, "%s tcId %d: valid token rejected with ALG_NOT_ALLOWED", file, tc);
          if (sig_ok) {
            c.alg_binding++;
            printf("  tcId %d (%s): token alg %s but JWK alg %s: refused by policy (key bound to its JWK alg); the "
                   "same key bound to %s verifies it\n",
                   tc, tu_jstr(t, "comment"), talg, jalg, talg);
          } else {
            c.mismatches++;
          }
          free(talg);
        } else {
          c.mismatches++;
          CHECK(0, "%s tcId %d (%s): valid token rejected: %s %s (%s)", file, tc, tu_jstr(t, "comment"),
                jwtkit_errname(rc), ei.field, ei.msg);
        }
      } else if (strcmp(result, "invalid") == 0) {
        c.invalid++;
        if (!accepted && (rc == JWTKIT_ERR_CRYPTO || rc == JWTKIT_ERR_NOMEM || rc == JWTKIT_ERR_INVALID_ARG)) {
          c.mismatches++;
          CHECK(0, "%s tcId %d (%s): rejected for an internal reason: %s (%s)", file, tc, tu_jstr(t, "comment"),
                jwtkit_errname(rc), ei.msg);
        } else if (!accepted) {
          c.invalid_rejected++;
          hist_add(&c.rejected, rc);
          if (key == NULL && enc_key) c.key_refused_enc++;
        } else if (is_valid_twin(root, jws)) {
          /* C2SP/wycheproof#236: same bytes as a valid test; consistency
           * with that twin is the only satisfiable outcome */
          c.contradictory++;
          printf("  tcId %d (%s): labelled invalid but byte-identical to a valid test: accepted like its twin\n", tc,
                 tu_jstr(t, "comment"));
        } else {
          c.mismatches++;
          CHECK(0, "%s tcId %d (%s): invalid token accepted", file, tc, tu_jstr(t, "comment"));
        }
      } else {
        c.mismatches++;
        CHECK(0, "%s tcId %d: unexpected result %s", file, tc, result);
      }
    }
    jwtkit_verifier_free(v);
    jwtkit_key_free(key);
  }
  int declared = jint(root, "numberOfTests");
  printf("%s: valid ok %d/%d (signature valid, payload not a JWT: %d), invalid rejected %d/%d "
         "(of them refused at key import, encryption-only key: %d); not applicable (JSON serialization): %d; "
         "vector/policy deviations: valid but JWK alg unregistered %d, valid but JWK alg != token alg %d, "
         "valid but not base64url %d, invalid but identical to a valid test %d; mismatches %d; total %d/%d\n",
         file, c.valid_ok, c.valid, c.valid_not_jwt, c.invalid_rejected, c.invalid, c.key_refused_enc,
         c.json_serialization, c.key_refused_alg, c.alg_binding, c.not_base64url, c.contradictory, c.mismatches,
         c.tests, declared);
  printf("  rejection codes of invalid tokens: ");
  hist_print(&c.rejected);
  printf("\n");
  json_decref(root);
  assert_int_equal(g_fail, 0);
  assert_int_equal(c.mismatches, 0);
  assert_int_equal(c.tests, declared);
  assert_int_equal(c.valid_ok + c.key_refused_alg + c.alg_binding + c.not_base64url, c.valid);
  assert_int_equal(c.invalid_rejected + c.contradictory, c.invalid);
  assert_int_equal(c.valid + c.invalid + c.json_serialization, c.tests);
}

/* ------------------------------------------ json_web_key_test.json */

/* Each case is run twice: with the keys imported one by one (the set is
 * usable only when every key imports) and through the library's JWK Set
 * import, jwtkit_jwks_parse(), which skips foreign or broken keys and fails
 * the set on a duplicate kid.  Both must give the expected result. */
typedef struct jwk_counts {
  int tests, valid, valid_ok, invalid, invalid_rejected;
  int rejected_at_import, rejected_at_verifier, rejected_at_verify;
  int weak_key, enc_only, ambiguous_accepted, ambiguous_rejected;
  int mismatches;
} jwk_counts;

typedef struct set_counts {
  int valid, valid_ok, invalid, invalid_rejected;
  int set_refused, set_empty, rejected_at_verify, keys_skipped;
  int ambiguous_accepted, ambiguous_rejected, mismatches;
} set_counts;

#define MAX_SET 8

static void on_skip(void *ctx, size_t index, const jwtkit_errinfo *why) {
  int *n = ctx;
  (*n)++;
  printf("    jwks_parse skipped key %zu: %s %s (%s)\n", index, jwtkit_errname(why->code), why->field, why->msg);
}

/* The JWK Set path for one group: a verifier over the parsed set, or NULL
 * (*why says whether the set was refused or came out empty). */
static jwtkit_verifier *set_verifier(const json_t *set_json, jwtkit_jwks **set, int *skipped, int *refused) {
  char *text = json_dumps(set_json, JSON_COMPACT);
  jwtkit_errinfo ei = {0};
  jwtkit_verifier *v = NULL;
  *set = NULL;
  *refused = 0;
  jwtkit_err rc = jwtkit_jwks_parse(set, text, strlen(text), JWTKIT_ALG_UNSPEC, on_skip, skipped, &ei);
  free(text);
  if (rc != JWTKIT_OK) {
    printf("    jwks_parse refused the set: %s %s (%s)\n", jwtkit_errname(rc), ei.field, ei.msg);
    *refused = 1;
    return NULL;
  }
  if (jwtkit_jwks_count(*set) == 0) return NULL;
  jwtkit_policy *p = jwtkit_policy_new();
  for (size_t i = 0; i < jwtkit_jwks_count(*set); i++)
    CHECK(jwtkit_policy_allow_alg(p, jwtkit_key_alg(jwtkit_jwks_get(*set, i))) == JWTKIT_OK, "allow_alg");
  CHECK(jwtkit_policy_add_jwks(p, *set) == JWTKIT_OK, "add_jwks");
  CHECK(jwtkit_policy_ignore_audience(p) == JWTKIT_OK, "ignore_audience");
  CHECK(jwtkit_policy_set_require_exp(p, 0) == JWTKIT_OK, "require_exp");
  rc = jwtkit_verifier_new(&v, p, &ei);
  CHECK(rc == JWTKIT_OK, "verifier over a parsed set: %s (%s)", jwtkit_errname(rc), ei.msg);
  jwtkit_policy_free(p);
  return v;
}

static void test_json_web_key(void **state) {
  (void)state;
  require_vectors();
  g_fail = 0;
  const char *file = "json_web_key_test.json";
  json_t *root = load_json(file);
  jwk_counts c = {0};
  set_counts sc = {0};
  size_t gi;
  const json_t *g;
  json_array_foreach(json_object_get(root, "testGroups"), gi, g) {
    const json_t *set = json_object_get(g, "public");
    if (set == NULL) set = json_object_get(g, "private");
    const json_t *jwks = json_object_get(set, "keys");
    printf("  group %zu (%s), %zu key(s):\n", gi, tu_jstr(g, "comment"), json_array_size(jwks));

    /* path 1: key by key */
    jwtkit_key *keys[MAX_SET] = {0};
    size_t nkeys = 0, refused = 0, enc = 0, weak = 0;
    size_t ki;
    const json_t *jwk;
    json_array_foreach(jwks, ki, jwk) {
      jwtkit_errinfo ei = {0};
      jwtkit_key *k = NULL;
      jwtkit_err rc = tu_import_jwk(jwk, JWTKIT_ALG_UNSPEC, &k, &ei);
      if (is_encryption_jwk(jwk)) {
        enc++;
        CHECK(rc != JWTKIT_OK, "%s group %zu: encryption-only key imported", file, gi);
      }
      if (rc == JWTKIT_OK && nkeys < MAX_SET) {
        keys[nkeys++] = k;
      } else {
        jwtkit_key_free(k);
        refused++;
        if (rc == JWTKIT_ERR_WEAK_KEY) weak++;
        printf("    key %zu refused: %s %s (%s)\n", ki, jwtkit_errname(rc), ei.field, ei.msg);
      }
    }
    jwtkit_verifier *v = NULL;
    jwtkit_err vrc = JWTKIT_ERR_INVALID_KEY;
    jwtkit_errinfo vei = {0};
    if (refused == 0 && nkeys > 0) v = verifier_for_keys(keys, nkeys, &vrc, &vei);
    if (refused == 0 && v == NULL)
      printf("    verifier refused the keys: %s %s (%s)\n", jwtkit_errname(vrc), vei.field, vei.msg);

    /* path 2: JWK Set import */
    jwtkit_jwks *parsed = NULL;
    int skipped = 0, set_refused = 0;
    jwtkit_verifier *sv = set_verifier(set, &parsed, &skipped, &set_refused);
    sc.keys_skipped += skipped;
    /* jwtkit never takes a secret (oct) key from a JWK Set */
    int set_has_oct = 0;
    size_t oi;
    const json_t *ok;
    json_array_foreach(json_object_get(set, "keys"), oi, ok) {
      const char *kty = tu_jstr(ok, "kty");
      if (kty != NULL && strcmp(kty, "oct") == 0) set_has_oct = 1;
    }

    size_t ti;
    const json_t *t;
    json_array_foreach(json_object_get(g, "tests"), ti, t) {
      const char *jws = tu_jstr(t, "jws");
      const char *result = tu_jstr(t, "result");
      int tc = jint(t, "tcId");
      int want_valid = result != NULL && strcmp(result, "valid") == 0;
      c.tests++;
      if (jws == NULL || result == NULL) {
        c.mismatches++;
        CHECK(0, "%s tcId %d: no jws/result", file, tc);
        continue;
      }
      jwtkit_err rc = refused ? JWTKIT_ERR_INVALID_KEY : vrc;
      jwtkit_errinfo ei = {0};
      int accepted = v != NULL && verify_token(v, keys, nkeys, jws, &rc, &ei) != OUT_REJECTED;
      jwtkit_err src = JWTKIT_ERR_INVALID_KEY;
      jwtkit_errinfo sei = {0};
      jwtkit_key *set_keys[MAX_SET] = {0};
      size_t nset = parsed ? jwtkit_jwks_count(parsed) : 0;
      for (size_t i = 0; i < nset && i < MAX_SET; i++) set_keys[i] = jwtkit_jwks_get(parsed, i);
      int set_accepted = sv != NULL && verify_token(sv, set_keys, nset, jws, &src, &sei) != OUT_REJECTED;

      if (has_flag(t, "Ambiguous")) {
        /* Wycheproof: behaviour "not well defined by the RFCs"; record */
        if (accepted) c.ambiguous_accepted++; else c.ambiguous_rejected++;
        if (set_accepted) sc.ambiguous_accepted++; else sc.ambiguous_rejected++;
        printf("    tcId %d (%s, flag Ambiguous, expected %s): key by key %s, JWK Set %s\n", tc, tu_jstr(t, "comment"),
               result, accepted ? "accepted" : "rejected", set_accepted ? "accepted" : "rejected");
        continue;
      }
      printf("    tcId %d (%s, expected %s): key by key %s, JWK Set %s\n", tc, tu_jstr(t, "comment"), result,
             accepted ? "accepted" : "rejected", set_accepted ? "accepted" : "rejected");
      if (want_valid) {
        c.valid++;
        sc.valid++;
        if (accepted) {
          c.valid_ok++;
        } else {
          c.mismatches++;
          CHECK(0, "%s tcId %d (%s): valid keys/token rejected key by key: %s %s (%s)", file, tc, tu_jstr(t, "comment"),
                jwtkit_errname(rc), ei.field, ei.msg);
        }
        if (set_accepted) {
          sc.valid_ok++;
        } else if (set_has_oct) {
          g_oct_policy++;
          printf("    tcId %d: JWK Set path refused by policy: secret (oct) keys are never taken from a JWK Set\n", tc);
        } else {
          sc.mismatches++;
          CHECK(0, "%s tcId %d (%s): valid JWK Set/token rejected: %s %s (%s)", file, tc, tu_jstr(t, "comment"),
                jwtkit_errname(src), sei.field, sei.msg);
        }
      } else {
        c.invalid++;
        sc.invalid++;
        if (!accepted) {
          c.invalid_rejected++;
          if (refused)
            c.rejected_at_import++;
          else if (v == NULL)
            c.rejected_at_verifier++;
          else
            c.rejected_at_verify++;
          if (enc) c.enc_only++;
          if (weak) c.weak_key++;
        } else {
          c.mismatches++;
          CHECK(0, "%s tcId %d (%s): invalid key/token accepted key by key (all %zu key(s) imported, token verified)",
                file, tc, tu_jstr(t, "comment"), nkeys);
        }
        if (!set_accepted) {
          sc.invalid_rejected++;
          if (set_refused)
            sc.set_refused++;
          else if (sv == NULL)
            sc.set_empty++;
          else
            sc.rejected_at_verify++;
        } else {
          sc.mismatches++;
          CHECK(0, "%s tcId %d (%s): invalid JWK Set/token accepted (%zu key(s) kept, token verified)", file, tc,
                tu_jstr(t, "comment"), nset);
        }
      }
    }
    jwtkit_verifier_free(sv);
    jwtkit_jwks_free(parsed);
    jwtkit_verifier_free(v);
    for (size_t i = 0; i < nkeys; i++) jwtkit_key_free(keys[i]);
  }
  int declared = jint(root, "numberOfTests");
  printf("%s (key by key): valid ok %d/%d, invalid rejected %d/%d (at key import %d, at verifier build %d, "
         "at verify %d; of them weak key %d, encryption-only key (not applicable to JWS, refused) %d); "
         "ambiguous (accepted %d, rejected %d); mismatches %d; total %d/%d\n",
         file, c.valid_ok, c.valid, c.invalid_rejected, c.invalid, c.rejected_at_import, c.rejected_at_verifier,
         c.rejected_at_verify, c.weak_key, c.enc_only, c.ambiguous_accepted, c.ambiguous_rejected, c.mismatches,
         c.tests, declared);
  printf("%s (jwtkit_jwks_parse): valid ok %d/%d, invalid rejected %d/%d (set refused %d, no usable key left %d, "
         "at verify %d; keys skipped %d); refused by policy (oct key in a JWK Set) %d; ambiguous (accepted %d, "
         "rejected %d); mismatches %d\n",
         file, sc.valid_ok, sc.valid, sc.invalid_rejected, sc.invalid, sc.set_refused, sc.set_empty,
         sc.rejected_at_verify, sc.keys_skipped, g_oct_policy, sc.ambiguous_accepted, sc.ambiguous_rejected,
         sc.mismatches);
  json_decref(root);
  assert_int_equal(g_fail, 0);
  assert_int_equal(c.mismatches, 0);
  assert_int_equal(sc.mismatches, 0);
  assert_int_equal(c.tests, declared);
  assert_int_equal(c.valid + c.invalid + c.ambiguous_accepted + c.ambiguous_rejected, c.tests);
  assert_int_equal(sc.valid + sc.invalid + sc.ambiguous_accepted + sc.ambiguous_rejected, c.tests);
}

/* ---------------------------------------------------------- coverage */

static void test_wycheproof_files_covered(void **state) {
  (void)state;
  require_vectors();
  char path[4096];
  snprintf(path, sizeof path, "%s/wycheproof", tu_vectors_dir());
  DIR *d = opendir(path);
  assert_non_null(d);
  int unknown = 0, seen = 0, listed = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    size_t n = strlen(e->d_name);
    if (n < 5 || strcmp(e->d_name + n - 5, ".json") != 0) continue;
    int known = 0;
    for (int i = 0; k_files[i] != NULL; i++) known |= strcmp(k_files[i], e->d_name) == 0;
    if (!known) {
      printf("  wycheproof/%s is not covered by test_vectors_wycheproof\n", e->d_name);
      unknown++;
    }
    seen++;
  }
  closedir(d);
  while (k_files[listed] != NULL) listed++;
  printf("wycheproof/: %d vector files, %d not covered\n", seen, unknown);
  assert_int_equal(unknown, 0);
  assert_int_equal(seen, listed);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_wycheproof_files_covered),
      cmocka_unit_test(test_ecdsa_p256_sha256),
      cmocka_unit_test(test_ecdsa_p384_sha384),
      cmocka_unit_test(test_ecdsa_p521_sha512),
      cmocka_unit_test(test_ed25519),
      cmocka_unit_test(test_hmac_sha256),
      cmocka_unit_test(test_hmac_sha384),
      cmocka_unit_test(test_hmac_sha512),
      cmocka_unit_test(test_rsa_pkcs1_2048_sha256),
      cmocka_unit_test(test_rsa_pkcs1_2048_sha384),
      cmocka_unit_test(test_rsa_pkcs1_2048_sha512),
      cmocka_unit_test(test_rsa_pkcs1_3072_sha256),
      cmocka_unit_test(test_rsa_pkcs1_4096_sha256),
      cmocka_unit_test(test_rsa_pss_2048_sha256),
      cmocka_unit_test(test_rsa_pss_2048_sha384),
      cmocka_unit_test(test_rsa_pss_4096_sha512),
      cmocka_unit_test(test_json_web_signature),
      cmocka_unit_test(test_json_web_key),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
