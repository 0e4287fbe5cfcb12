/* Allocation failures (every allocation goes through the
 * jwtkit_set_allocator hook): JWK import (RSA, EC, OKP, oct; private and
 * public), JWK Set import, keyring load and thumbprints.  For N = 0, 1, 2, ... the Nth
 * allocation through the hook fails, until the operation completes
 * without reaching its Nth allocation.  Every run must end in
 * JWTKIT_ERR_NOMEM (or succeed completely: a JWK Set or keyring that loads
 * has all its keys, none silently dropped), never crash, and free every
 * block it took: the hook counts allocations and frees and they must
 * balance; under `make test-asan` LeakSanitizer checks the rest.
 *
 * OpenSSL's own allocations (BIGNUMs, EVP_PKEYs, decoders) do not go
 * through the hook: they are not failed here, only jwtkit's are.  (A
 * CRYPTO_set_mem_functions hook would fail them too, but OpenSSL allocates
 * lazily and caches across calls, so the counts would not balance per
 * call.) */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/p11.h"
#include "testutil.h"
#include "common/attr.h"

/* ---- a counting allocator that fails the Nth allocation (0-based) */
typedef struct hdr {
  size_t size;
  size_t pad;
} hdr;

static long g_fail_at = -1; /* -1: never */
static long g_count;        /* allocation attempts */
static long g_allocs, g_frees;

static void *t_malloc(size_t n) {
  if (g_fail_at >= 0 && g_count++ == g_fail_at) return NULL;
  hdr *h = malloc(sizeof *h + n);
  if (h == NULL) return NULL;
  h->size = n;
  g_allocs++;
  return h + 1;
}

static void t_free(void *p) {
  if (p == NULL) return;
  g_frees++;
  free((hdr *)p - 1);
}

static void *t_realloc(void *p, size_t n) {
  if (p == NULL) return t_malloc(n);
  void *q = t_malloc(n);
  if (q == NULL) return NULL;
  hdr *h = (hdr *)p - 1;
  memcpy(q, p, h->size < n ? h->size : n);
  t_free(p);
  return q;
}

static const jwtkit_allocator COUNTING = {t_malloc, t_realloc, t_free};

/* An operation under test: returns its result and frees what it made. */
typedef jwtkit_err (*op_fn)(void *ctx, jwtkit_errinfo *info);

/* Fail allocation 0, 1, 2, ... of op until it completes without reaching
 * the failing one.  Returns the number of allocations of a complete run. */
static long fail_each_allocation(const char *what, op_fn op, void *ctx) {
  jwtkit_set_allocator(&COUNTING);
  long n = 0;
  for (;; n++) {
    if (n > 100000) fail_msg("%s: more than 100000 allocations?", what);
    g_fail_at = n;
    g_count = g_allocs = g_frees = 0;
    jwtkit_errinfo info;
    memset(&info, 0x5a, sizeof info);
    jwtkit_err rc = op(ctx, &info);
    if (g_allocs != g_frees)
      fail_msg("%s: failing allocation %ld: %ld allocations, %ld frees (rc %s)", what, n, g_allocs, g_frees,
               jwtkit_errname(rc));
    if (rc == JWTKIT_OK) {
      if (g_count <= n) break; /* the failing allocation was never reached: done */
      continue;                /* an allocation failed and was survived (nothing lost: op checked) */
    }
    if (rc != JWTKIT_ERR_NOMEM)
      fail_msg("%s: failing allocation %ld gave %s (%s), not NOMEM", what, n, jwtkit_errname(rc), info.msg);
    if (info.code != JWTKIT_ERR_NOMEM)
      fail_msg("%s: failing allocation %ld: errinfo.code %d for NOMEM", what, n, (int)info.code);
  }
  g_fail_at = -1;
  jwtkit_set_allocator(NULL);
  return n;
}



/* ------------------------------------------------------------- JWK */

typedef struct jwk_case {
  const char *name;
  const char *jwk;
  jwtkit_alg alg;
  int private_key;
} jwk_case;

static jwtkit_err op_jwk(void *ctx, jwtkit_errinfo *info) {
  const jwk_case *c = ctx;
  jwtkit_key *k = (jwtkit_key *)&k;
  jwtkit_err rc = jwtkit_key_from_jwk(&k, c->alg, c->jwk, strlen(c->jwk), info);
  if (rc != JWTKIT_OK) {
    if (k != NULL) fail_msg("%s: a failed import left a key", c->name);
    return rc;
  }
  if (jwtkit_key_alg(k) != c->alg || jwtkit_key_can_sign(k) != c->private_key)
    fail_msg("%s: imported key is not the one asked for", c->name);
  const char *kid = jwtkit_key_kid(k);
  if (kid == NULL || strcmp(kid, "k1") != 0) fail_msg("%s: kid lost", c->name);
  jwtkit_key_free(k);
  return rc;
}

/* The keys: members without braces (a kid, use and alg are added). */
/* RFC 7520 §3.4 RSA key (with the CRT members) */
#define RSA_PRIV_M \
    "\"kty\":\"RSA\",\"n\":\"n4EPtAOCc9AlkeQHPzHStgAbgs7bTZLwUBZdR8_KuKPEHLd4rHVTeT-O-XV2jRojdNhxJWTDvNd7" \
    "nqQ0VEiZQHz_AJmSCpMaJMRBSFKrKb2wqVwGU_NsYOYL-QtiWN2lbzcEe6XC0dApr5ydQLrHqkHHig3RBordaZ6Aj-oBHqFEHYpP" \
    "e7Tpe-OfVfHd1E6cS6M1FZcD1NNLYD5lFHpPI9bTwJlsde3uhGqC0ZCuEHg8lhzwOHrtIQbS0FVbb9k3-tVTU4fg_3L_vniUFAKw" \
    "uCLqKnS2BYwdq_mzSnbLY7h_qixoR7jig3__kRhuaxwUkRz5iaiQkqgc5gHdrNP5zw\",\"e\":\"AQAB\",\"d\":\"bWUC9B-E" \
    "FRIo8kpGfh0ZuyGPvMNKvYWNtB_ikiH9k20eT-O1q_I78eiZkpXxXQ0UTEs2LsNRS-8uJbvQ-A1irkwMSMkK1J3XTGgdrhCku9gR" \
    "ldY7sNA_AKZGh-Q661_42rINLRCe8W-nZ34ui_qOfkLnK9QWDDqpaIsA-bMwWWSDFu2MUBYwkHTMEzLYGqOe04noqeq1hExBTHBO" \
    "BdkMXiuFhUq1BU6l-DqEiWxqg82sXt2h-LMnT3046AOYJoRioz75tSUQfGCshWTBnP5uDjd18kKhyv07lhfSJdrPdM5Plyl21hsF" \
    "f4L_mHCuoFau7gdsPfHPxxjVOcOpBrQzwQ\",\"p\":\"3Slxg_DwTXJcb6095RoXygQCAZ5RnAvZlno1yhHtnUex_fp7AZ_9nRa" \
    "O7HX_-SFfGQeutao2TDjDAWU4Vupk8rw9JR0AzZ0N2fvuIAmr_WCsmGpeNqQnev1T7IyEsnh8UMt-n5CafhkikzhEsrmndH6LxOr" \
    "vRJlsPp6Zv8bUq0k\",\"q\":\"uKE2dh-cTf6ERF4k4e_jy78GfPYUIaUyoSSJuBzp3Cubk3OCqs6grT8bR_cu0Dm1MZwWmtdqD" \
    "yI95HrUeq3MP15vMMON8lHTeZu2lmKvwqW7anV5UzhM1iZ7z4yMkuUwFWoBvyY898EXvRD-hdqRxHlSqAZ192zB3pVFJ0s7pFc\"" \
    ",\"dp\":\"B8PVvXkvJrj2L-GYQ7v3y9r6Kw5g9SahXBwsWUzp19TVlgI-YV85q1NIb1rxQtD-IsXXR3-TanevuRPRt5OBOdiMGQ" \
    "p8pbt26gljYfKU_E9xn-RULHz0-ed9E9gXLKD4VGngpz-PfQ_q29pk5xWHoJp009Qf1HvChixRX59ehik\",\"dq\":\"CLDmDGd" \
    "uhylc9o7r84rEUVn7pzQ6PF83Y-iBZx5NT-TpnOZKF1pErAMVeKzFEl41DlHHqqBLSM0W1sOFbwTxYWZDm6sI6og5iTbwQGIC3gn" \
    "JKbi_7k_vJgGHwHxgPaX2PnvP-zyEkDERuf-ry4c_Z11Cq9AqC2yeL6kdKT1cYF8\",\"qi\":\"3PiqvXQN0zwMeE-sBvZgi289" \
    "XP9XCQF3VWqPzMKnIgQp7_Tugo6-NZBKCQsMf3HaEGBjTVJs_jcK8-TRXvaKe-7ZMaQj8VfBdYkssbu0NKDDhjJ-GtiseaDVWt7d" \
    "cH0cfwxgFUHpQh7FoCrjFJ6h6ZEpMF6xmujs4qMpPz8aaI4\""
/* RFC 7515 A.3 P-256 key */
#define EC_PRIV_M \
    "\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\",\"y\":\"x_FEz" \
    "Ru9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\",\"d\":\"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI\""
/* RFC 8037 A.1 Ed25519 key */
#define OKP_PRIV_M \
    "\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"d\":\"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A\",\"x\":\"11" \
    "qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\""
/* RFC 7515 A.1 HMAC key */
#define OCT_M \
    "\"kty\":\"oct\",\"k\":\"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjA" \
    "zZr1Z9CAow\""
/* RFC 7515 A.2 RSA public key */
#define RSA_PUB_M \
    "\"kty\":\"RSA\",\"n\":\"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrc" \
    "S2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSX" \
    "ndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxX" \
    "FvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ\",\"e\":\"AQAB\""
#define EC_PUB_M \
    "\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\",\"y\":\"x_FEz" \
    "Ru9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\""
#define OKP_PUB_M "\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\""

#define JWK(members, alg) "{\"kid\":\"k1\",\"use\":\"sig\",\"alg\":\"" alg "\"," members "}"

static void test_jwk_import(void **state) {
  (void)state;
  const jwk_case cases[] = {
      {"RSA private", JWK(RSA_PRIV_M, "RS256"), JWTKIT_ALG_RS256, 1},
      {"EC private", JWK(EC_PRIV_M, "ES256"), JWTKIT_ALG_ES256, 1},
      {"OKP private", JWK(OKP_PRIV_M, "EdDSA"), JWTKIT_ALG_EDDSA, 1},
      {"oct", JWK(OCT_M, "HS256"), JWTKIT_ALG_HS256, 1},
      {"RSA public", JWK(RSA_PUB_M, "PS384"), JWTKIT_ALG_PS384, 0},
      {"EC public", JWK(EC_PUB_M, "ES256"), JWTKIT_ALG_ES256, 0},
      {"OKP public", JWK(OKP_PUB_M, "EdDSA"), JWTKIT_ALG_EDDSA, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    long n = fail_each_allocation(cases[i].name, op_jwk, JK_UNCONST(&cases[i]));
    print_message("jwtkit_key_from_jwk %-12s %3ld allocations, each failed in turn\n", cases[i].name, n);
    assert_true(n >= 1);
  }
}

/* ------------------------------------------------------------ JWKS */

typedef struct jwks_case {
  const char *json;
  size_t keys;    /* keys a complete import holds */
  size_t skipped; /* entries it reports skipped */
} jwks_case;

static void count_skip(void *ctx, size_t index, const jwtkit_errinfo *why) {
  (void)index;
  (void)why;
  (*(size_t *)ctx)++;
}

static jwtkit_err op_jwks(void *ctx, jwtkit_errinfo *info) {
  const jwks_case *c = ctx;
  jwtkit_jwks *set = (jwtkit_jwks *)&set;
  size_t skipped = 0;
  jwtkit_err rc = jwtkit_jwks_parse(&set, c->json, strlen(c->json), JWTKIT_ALG_UNSPEC, count_skip, &skipped, info);
  if (rc != JWTKIT_OK) {
    if (set != NULL) fail_msg("a failed JWK Set import left a set");
    return rc;
  }
  /* a set that loads is complete: an allocation failure never drops a key */
  if (jwtkit_jwks_count(set) != c->keys || skipped != c->skipped)
    fail_msg("JWK Set imported with %zu keys (%zu skipped), not %zu (%zu)", jwtkit_jwks_count(set), skipped, c->keys,
             c->skipped);
  if (jwtkit_jwks_find(set, "ec", 2) == NULL || jwtkit_jwks_find(set, "rsa", 3) == NULL)
    fail_msg("JWK Set lost a kid");
  jwtkit_jwks_free(set);
  return rc;
}

static void test_jwks_import(void **state) {
  (void)state;
  /* RSA (with alg), EC and OKP public keys, then an oct key and an
   * unknown kty (both skipped by design) */
  static const char json[] = "{\"keys\":[{\"kid\":\"rsa\",\"alg\":\"RS256\"," RSA_PUB_M "},{\"kid\":\"ec\"," EC_PUB_M
                             "},{\"kid\":\"okp\",\"use\":\"sig\"," OKP_PUB_M "},{\"kid\":\"hs\"," OCT_M
                             "},{\"kty\":\"XYZ\",\"kid\":\"x\"}]}";
  jwks_case c = {json, 3, 2};
  long n = fail_each_allocation("jwks", op_jwks, &c);
  print_message("jwtkit_jwks_parse (3 keys + 2 skipped) %ld allocations, each failed in turn\n", n);
  assert_true(n >= 3);
}

/* --------------------------------------------------------- keyring */

#define T0 1800000000LL

static char g_dir[256];

static int setup(void **state) {
  (void)state;
  snprintf(g_dir, sizeof g_dir, "/tmp/jwtkit-allocfail-XXXXXX");
  return mkdtemp(g_dir) != NULL ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  tu_rm_rf(g_dir);
  return 0;
}

typedef struct ring_case {
  char dir[300];
  const char *passphrase;
  size_t keys;
} ring_case;

static jwtkit_err op_keyring_open(void *ctx, jwtkit_errinfo *info) {
  const ring_case *c = ctx;
  jwtkit_keyring *kr = (jwtkit_keyring *)&kr;
  jwtkit_err rc = jwtkit_keyring_open(&kr, c->dir, c->passphrase, info);
  if (rc != JWTKIT_OK) {
    if (kr != NULL) fail_msg("a failed keyring_open left a keyring");
    return rc;
  }
  if (jwtkit_keyring_count(kr) != c->keys) fail_msg("keyring opened with %zu keys", jwtkit_keyring_count(kr));
  jwtkit_keyring_free(kr);
  return rc;
}

static void make_ring(ring_case *c, const char *name, const jwtkit_alg *algs, size_t nalgs, const char *pass) {
  snprintf(c->dir, sizeof c->dir, "%s/%s", g_dir, name);
  c->passphrase = pass;
  c->keys = nalgs;
  jwtkit_keyring_timing t;
  jwtkit_keyring_timing_default(&t);
  jwtkit_errinfo ei;
  if (jwtkit_keyring_init(c->dir, algs, nalgs, &t, pass, T0, NULL, NULL, &ei) != JWTKIT_OK)
    fail_msg("keyring_init %s: %s", name, ei.msg);
}

static void test_keyring_open(void **state) {
  (void)state;
  const jwtkit_alg algs[] = {JWTKIT_ALG_ES256, JWTKIT_ALG_EDDSA, JWTKIT_ALG_RS256};
  ring_case plain, sealed;
  make_ring(&plain, "plain", algs, 3, NULL);
  make_ring(&sealed, "sealed", algs, 2, "correct horse battery staple");
  long n = fail_each_allocation("keyring", op_keyring_open, &plain);
  print_message("jwtkit_keyring_open (ES256, EdDSA, RS256) %ld allocations, each failed in turn\n", n);
  assert_true(n >= 3);
  n = fail_each_allocation("keyring with a passphrase", op_keyring_open, &sealed);
  print_message("jwtkit_keyring_open (encrypted, ES256, EdDSA) %ld allocations, each failed in turn\n", n);
  assert_true(n >= 2);
}


/* ------------------------------------------- sticky policy and claimset */

/* A caller that ignores every setter's result (the fail-open pattern):
 * whatever allocation fails, the verifier is either not built, or checks
 * every rule it was given.  Without the sticky error, a failed
 * jwtkit_policy_add_issuer left a verifier with no issuer check. */
typedef struct sticky_case {
  jwtkit_key *key;
  char *good, *other_iss, *other_aud;
  jwtkit_verifier *check; /* for the claimset case: built outside the hook */
} sticky_case;

static jwtkit_err nomem(jwtkit_errinfo *info) {
  info->code = JWTKIT_ERR_NOMEM;
  return JWTKIT_ERR_NOMEM;
}

static jwtkit_err op_policy(void *ctx, jwtkit_errinfo *info) {
  const sticky_case *c = ctx;
  jwtkit_policy *p = jwtkit_policy_new();
  if (p == NULL) return nomem(info);
  jwtkit_err ignored[5];
  ignored[0] = jwtkit_policy_allow_alg(p, JWTKIT_ALG_HS256);
  ignored[1] = jwtkit_policy_add_key(p, c->key);
  ignored[2] = jwtkit_policy_add_issuer(p, "https://issuer.example");
  ignored[3] = jwtkit_policy_add_audience(p, "api");
  ignored[4] = jwtkit_policy_require_claim(p, "scope");
  (void)ignored;
  jwtkit_verifier *v = NULL;
  jwtkit_err rc = jwtkit_verifier_new(&v, p, info);
  jwtkit_policy_free(p);
  if (rc != JWTKIT_OK) return rc;
  if (jwtkit_verify_at(v, c->other_iss, strlen(c->other_iss), 1700000000, NULL, NULL) == JWTKIT_OK)
    fail_msg("a verifier built after a failed setter accepts another issuer's token");
  if (jwtkit_verify_at(v, c->other_aud, strlen(c->other_aud), 1700000000, NULL, NULL) == JWTKIT_OK)
    fail_msg("a verifier built after a failed setter accepts another audience's token");
  rc = jwtkit_verify_at(v, c->good, strlen(c->good), 1700000000, NULL, info);
  jwtkit_verifier_free(v);
  return rc;
}

static jwtkit_err op_claimset(void *ctx, jwtkit_errinfo *info) {
  const sticky_case *c = ctx;
  jwtkit_claimset *cs = jwtkit_claimset_new();
  if (cs == NULL) return nomem(info);
  jwtkit_err ignored[5];
  ignored[0] = jwtkit_claimset_set_string(cs, "iss", "https://issuer.example");
  ignored[1] = jwtkit_claimset_add_audience(cs, "api");
  ignored[2] = jwtkit_claimset_set_string(cs, "scope", "read");
  ignored[3] = jwtkit_claimset_set_lifetime(cs, 1700000000, 600);
  ignored[4] = jwtkit_claimset_set_jti(cs);
  (void)ignored;
  jwtkit_signer *s = NULL;
  char *tok = NULL;
  jwtkit_err rc = jwtkit_signer_new(&s, c->key, NULL, info);
  if (rc == JWTKIT_OK) rc = jwtkit_signer_sign_claimset(s, cs, &tok, NULL, info);
  jwtkit_signer_free(s);
  jwtkit_claimset_free(cs);
  if (rc != JWTKIT_OK) {
    if (tok != NULL) fail_msg("a failed sign left a token");
    return rc;
  }
  /* signed: then nothing was lost */
  jwtkit_errinfo ei;
  jwtkit_err vr = jwtkit_verify_at(c->check, tok, strlen(tok), 1700000000, NULL, &ei);
  if (vr != JWTKIT_OK) fail_msg("a claimset signed after a failed setter lost a member: %s", ei.msg);
  if (strstr(tok, ".") == NULL) fail_msg("not a token");
  jwtkit_free(tok);
  return JWTKIT_OK;
}

static char *hs_token(jwtkit_key *k, const char *claims) {
  char *t = NULL;
  if (jwtkit_sign(k, NULL, claims, strlen(claims), &t, NULL, NULL) != JWTKIT_OK) fail_msg("sign");
  return t;
}

static void test_sticky_setters(void **state) {
  (void)state;
  sticky_case c = {0};
  c.key = tu_key(JWTKIT_ALG_HS256);
  c.good = hs_token(c.key, "{\"iss\":\"https://issuer.example\",\"aud\":\"api\",\"scope\":\"r\",\"exp\":1700000600}");
  c.other_iss = hs_token(c.key, "{\"iss\":\"https://evil.example\",\"aud\":\"api\",\"scope\":\"r\",\"exp\":1700000600}");
  c.other_aud = hs_token(c.key, "{\"iss\":\"https://issuer.example\",\"aud\":\"web\",\"scope\":\"r\",\"exp\":1700000600}");
  jwtkit_policy *p = jwtkit_policy_new();
  assert_int_equal(jwtkit_policy_allow_alg(p, JWTKIT_ALG_HS256), JWTKIT_OK);
  assert_int_equal(jwtkit_policy_add_key(p, c.key), JWTKIT_OK);
  assert_int_equal(jwtkit_policy_add_issuer(p, "https://issuer.example"), JWTKIT_OK);
  assert_int_equal(jwtkit_policy_add_audience(p, "api"), JWTKIT_OK);
  assert_int_equal(jwtkit_policy_require_claim(p, "scope"), JWTKIT_OK);
  assert_int_equal(jwtkit_policy_require_claim(p, "jti"), JWTKIT_OK);
  assert_int_equal(jwtkit_policy_require_claim(p, "iat"), JWTKIT_OK);
  assert_int_equal(jwtkit_verifier_new(&c.check, p, NULL), JWTKIT_OK);
  jwtkit_policy_free(p);
  long n = fail_each_allocation("policy with ignored setters", op_policy, &c);
  print_message("policy + verifier_new, setters unchecked: %ld allocations, each failed in turn\n", n);
  assert_true(n >= 3);
  n = fail_each_allocation("claimset with ignored setters", op_claimset, &c);
  print_message("claimset + sign, setters unchecked: %ld allocations, each failed in turn\n", n);
  assert_true(n >= 5);
  jwtkit_verifier_free(c.check);
  jwtkit_free(c.good);
  jwtkit_free(c.other_iss);
  jwtkit_free(c.other_aud);
}

/* ------------------------------------------------------ PKCS#11 URIs */

static jwtkit_err op_p11_uri(void *ctx, jwtkit_errinfo *info) {
  const char *text = ctx;
  jk_p11_uri u;
  memset(&u, 0x5a, sizeof u);
  jwtkit_err rc = jk_p11_uri_parse(&u, text, strlen(text), info);
  if (rc != JWTKIT_OK) {
    if (u.buf != NULL || u.object != NULL) fail_msg("%s: a failed parse kept its buffer", text);
    return rc;
  }
  if (u.object == NULL || strcmp(u.object, "issuer 1") != 0 || u.pin_source == NULL) fail_msg("%s: attributes lost", text);
  char again[512];
  size_t n = jk_p11_uri_format(&u, 1, again, sizeof again);
  jk_p11_uri_free(&u);
  if (n >= sizeof again) fail_msg("%s: formatted URI cut", text);
  return JWTKIT_OK;
}

static void test_p11_uri(void **state) {
  (void)state;
  static const char *const uris[] = {
      "pkcs11:token=jwtkit;object=issuer%201;id=%01%02?pin-source=/run/pin&module-path=/usr/lib/softhsm/libsofthsm2.so",
      "pkcs11:object=issuer%201;type=private;library-version=2.6;slot-id=3?pin-source=file:///p",
  };
  for (size_t i = 0; i < sizeof uris / sizeof *uris; i++) {
    long n = fail_each_allocation(uris[i], op_p11_uri, JK_UNCONST(uris[i]));
    print_message("PKCS#11 URI parse: %ld allocation(s), each failed in turn\n", n);
    assert_true(n >= 1);
  }
}

/* A thumbprint whose buffer could not grow is NOMEM, never CRYPTO (a
 * caller took CRYPTO for a broken key: a keyring adding a token key
 * reported "thumbprint failed" for an out-of-memory). */
static jwtkit_err op_thumbprint(void *ctx, jwtkit_errinfo *info) {
  char tp[44];
  jwtkit_err rc = jwtkit_key_thumbprint(ctx, tp);
  info->code = rc;
  if (rc == JWTKIT_OK && strlen(tp) != 43) fail_msg("thumbprint of %zu characters", strlen(tp));
  return rc;
}

static void test_thumbprint(void **state) {
  (void)state;
  static const jwtkit_alg algs[] = {JWTKIT_ALG_RS256, JWTKIT_ALG_ES256, JWTKIT_ALG_EDDSA, JWTKIT_ALG_HS256};
  for (size_t i = 0; i < sizeof algs / sizeof *algs; i++) {
    long n = fail_each_allocation(jwtkit_alg_name(algs[i]), op_thumbprint, tu_key(algs[i]));
    print_message("thumbprint (%s): %ld allocation(s), each failed in turn\n", jwtkit_alg_name(algs[i]), n);
    assert_true(n >= 1);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_thumbprint),
      cmocka_unit_test(test_jwk_import),
      cmocka_unit_test(test_jwks_import),
      cmocka_unit_test(test_keyring_open),
      cmocka_unit_test(test_sticky_setters),
      cmocka_unit_test(test_p11_uri),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
