/* The fixed token shape, the keys of each row, and jwtkit's operations. */
#include <stdio.h>
#include <string.h>

#include "bench.h"

static const bench_alg k_algs[] = {
    {"HS256", JWTKIT_ALG_HS256, 0},   {"HS384", JWTKIT_ALG_HS384, 0},   {"HS512", JWTKIT_ALG_HS512, 0},
    {"RS256", JWTKIT_ALG_RS256, 2048}, {"RS384", JWTKIT_ALG_RS384, 2048}, {"RS512", JWTKIT_ALG_RS512, 2048},
    {"PS256", JWTKIT_ALG_PS256, 2048}, {"PS384", JWTKIT_ALG_PS384, 2048}, {"PS512", JWTKIT_ALG_PS512, 2048},
    {"ES256", JWTKIT_ALG_ES256, 0},   {"ES384", JWTKIT_ALG_ES384, 0},   {"ES512", JWTKIT_ALG_ES512, 0},
    {"EdDSA", JWTKIT_ALG_EDDSA, 0},   {"Ed448", JWTKIT_ALG_EDDSA, 448},
};

const bench_alg *bench_algs(size_t *count) {
  *count = sizeof k_algs / sizeof k_algs[0];
  return k_algs;
}

int bench_alg_is_hmac(const bench_alg *a) { return jwtkit_alg_kty(a->alg) == JWTKIT_KTY_OCT; }

/* One RSA-2048 key serves all six RS and PS rows (generation is slow). */
static char *g_rsa_pem;
static size_t g_rsa_pem_len;

void fixture_cleanup(void) {
  jwtkit_free(g_rsa_pem);
  g_rsa_pem = NULL;
  g_rsa_pem_len = 0;
}

static int fail(char *err, size_t errlen, const char *what, jwtkit_err rc, const jwtkit_errinfo *info) {
  snprintf(err, errlen, "%s: %s (%s)", what, jwtkit_errname(rc),
           info != NULL && info->msg[0] != '\0' ? info->msg : jwtkit_strerror(rc));
  return -1;
}

static int make_keys(bench_fixture *fx, char *err, size_t errlen) {
  const bench_alg *a = fx->a;
  jwtkit_errinfo info = {0};
  jwtkit_err rc;
  if (bench_alg_is_hmac(a)) {
    size_t n = a->alg == JWTKIT_ALG_HS256 ? 32 : a->alg == JWTKIT_ALG_HS384 ? 48 : 64;
    if (floor_random(fx->secret, n) != 0) return snprintf(err, errlen, "RAND_bytes failed"), -1;
    fx->secret_len = n;
    if ((rc = jwtkit_key_from_secret(&fx->sign_key, a->alg, fx->secret, n, &info)) != JWTKIT_OK)
      return fail(err, errlen, "jwtkit_key_from_secret", rc, &info);
    if ((rc = jwtkit_key_from_secret(&fx->verify_key, a->alg, fx->secret, n, &info)) != JWTKIT_OK)
      return fail(err, errlen, "jwtkit_key_from_secret", rc, &info);
  } else {
    if (jwtkit_alg_kty(a->alg) == JWTKIT_KTY_RSA) {
      if (g_rsa_pem == NULL) {
        jwtkit_key *gen = NULL;
        if ((rc = jwtkit_key_generate(&gen, a->alg, a->bits, &info)) != JWTKIT_OK)
          return fail(err, errlen, "jwtkit_key_generate", rc, &info);
        rc = jwtkit_key_to_pem(gen, 1, NULL, &g_rsa_pem, &g_rsa_pem_len);
        jwtkit_key_free(gen);
        if (rc != JWTKIT_OK) return fail(err, errlen, "jwtkit_key_to_pem", rc, NULL);
      }
      if ((rc = jwtkit_key_from_pem(&fx->sign_key, a->alg, g_rsa_pem, g_rsa_pem_len, NULL, &info)) != JWTKIT_OK)
        return fail(err, errlen, "jwtkit_key_from_pem (private)", rc, &info);
    } else if ((rc = jwtkit_key_generate(&fx->sign_key, a->alg, a->bits, &info)) != JWTKIT_OK) {
      return fail(err, errlen, "jwtkit_key_generate", rc, &info);
    }
    if ((rc = jwtkit_key_to_pem(fx->sign_key, 1, NULL, &fx->priv_pem, &fx->priv_pem_len)) != JWTKIT_OK)
      return fail(err, errlen, "jwtkit_key_to_pem (private)", rc, NULL);
    if ((rc = jwtkit_key_to_pem(fx->sign_key, 0, NULL, &fx->pub_pem, &fx->pub_pem_len)) != JWTKIT_OK)
      return fail(err, errlen, "jwtkit_key_to_pem (public)", rc, NULL);
    if ((rc = jwtkit_key_from_pem(&fx->verify_key, a->alg, fx->pub_pem, fx->pub_pem_len, NULL, &info)) != JWTKIT_OK)
      return fail(err, errlen, "jwtkit_key_from_pem (public)", rc, &info);
  }
  if ((rc = jwtkit_key_set_kid(fx->sign_key, BENCH_KID, strlen(BENCH_KID))) != JWTKIT_OK ||
      (rc = jwtkit_key_set_kid(fx->verify_key, BENCH_KID, strlen(BENCH_KID))) != JWTKIT_OK)
    return fail(err, errlen, "jwtkit_key_set_kid", rc, NULL);
  return 0;
}

static int make_verifier(bench_fixture *fx, char *err, size_t errlen) {
  jwtkit_policy *p = jwtkit_policy_new();
  if (p == NULL) return snprintf(err, errlen, "jwtkit_policy_new: out of memory"), -1;
  jwtkit_errinfo info = {0};
  jwtkit_err rc = jwtkit_policy_allow_alg(p, fx->a->alg);
  if (rc == JWTKIT_OK) rc = jwtkit_policy_add_key(p, fx->verify_key);
  if (rc == JWTKIT_OK) rc = jwtkit_policy_add_issuer(p, BENCH_ISS);
  if (rc == JWTKIT_OK) rc = jwtkit_policy_add_audience(p, BENCH_AUD);
  if (rc == JWTKIT_OK) rc = jwtkit_verifier_new(&fx->verifier, p, &info);
  jwtkit_policy_free(p);
  return rc == JWTKIT_OK ? 0 : fail(err, errlen, "verifier", rc, &info);
}

int fixture_init(bench_fixture *fx, const bench_alg *a, int64_t now, char *err, size_t errlen) {
  memset(fx, 0, sizeof *fx);
  fx->a = a;
  fx->now = now;
  int n = snprintf(fx->claims, sizeof fx->claims,
                   "{\"sub\":\"" BENCH_SUB "\",\"iss\":\"" BENCH_ISS "\",\"aud\":\"" BENCH_AUD
                   "\",\"iat\":%lld,\"exp\":%lld,\"scope\":\"" BENCH_SCOPE "\"}",
                   (long long)now, (long long)(now + BENCH_TTL));
  fx->claims_len = (size_t)n;
  n = snprintf(fx->header, sizeof fx->header, "{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"" BENCH_KID "\"}",
               jwtkit_alg_name(a->alg));
  fx->header_len = (size_t)n;
  if (make_keys(fx, err, errlen) != 0 || make_verifier(fx, err, errlen) != 0) return -1;

  jwtkit_errinfo info = {0};
  jwtkit_err rc = jwtkit_signer_new(&fx->signer, fx->sign_key, NULL, &info);
  if (rc != JWTKIT_OK) return fail(err, errlen, "jwtkit_signer_new", rc, &info);
  fx->token_len = sizeof fx->token;
  rc = jwtkit_signer_sign_buf(fx->signer, fx->claims, fx->claims_len, fx->token, &fx->token_len, &info);
  if (rc != JWTKIT_OK) return fail(err, errlen, "jwtkit_signer_sign_buf", rc, &info);

  /* the token must verify, with the claims handed back intact */
  jwtkit_claims *c = NULL;
  rc = jwtkit_verify_at(fx->verifier, fx->token, fx->token_len, now, &c, &info);
  if (rc != JWTKIT_OK) return fail(err, errlen, "jwtkit_verify_at of jwtkit's own token", rc, &info);
  const char *sub = NULL;
  int64_t exp = 0;
  int good = jwtkit_claims_get_string(c, "sub", &sub, NULL) == JWTKIT_OK && strcmp(sub, BENCH_SUB) == 0 &&
             jwtkit_claims_get_int(c, "exp", &exp) == JWTKIT_OK && exp == now + BENCH_TTL &&
             jwtkit_claims_alg(c) == a->alg;
  size_t hl = 0;
  const char *hj = jwtkit_claims_header_json(c, &hl);
  good = good && hj != NULL && hl == fx->header_len && memcmp(hj, fx->header, hl) == 0;
  jwtkit_claims_free(c);
  if (!good) return snprintf(err, errlen, "jwtkit's verified claims or header differ from the fixed shape"), -1;
  return 0;
}

void fixture_free(bench_fixture *fx) {
  jwtkit_verifier_free(fx->verifier);
  jwtkit_signer_free(fx->signer);
  jwtkit_key_free(fx->verify_key);
  jwtkit_key_free(fx->sign_key);
  jwtkit_free(fx->priv_pem);
  jwtkit_free(fx->pub_pem);
  memset(fx, 0, sizeof *fx);
}

/* ------------------------------------------------------ jwtkit ops */

int jk_op_sign(void *ctx) {
  const bench_fixture *fx = ctx;
  char tok[BENCH_TOKEN_CAP];
  size_t n = sizeof tok;
  return jwtkit_signer_sign_buf(fx->signer, fx->claims, fx->claims_len, tok, &n, NULL) == JWTKIT_OK ? 0 : -1;
}

int jk_op_verify(void *ctx) {
  const bench_fixture *fx = ctx;
  return jwtkit_verify_at(fx->verifier, fx->token, fx->token_len, fx->now, NULL, NULL) == JWTKIT_OK ? 0 : -1;
}

int jk_op_verify_claims(void *ctx) {
  const bench_fixture *fx = ctx;
  jwtkit_claims *c = NULL;
  jwtkit_err rc = jwtkit_verify_at(fx->verifier, fx->token, fx->token_len, fx->now, &c, NULL);
  jwtkit_claims_free(c);
  return rc == JWTKIT_OK ? 0 : -1;
}

jwtkit_err jk_verify_token(const bench_fixture *fx, const char *tok, size_t len, jwtkit_errinfo *info) {
  return jwtkit_verify_at(fx->verifier, tok, len, fx->now, NULL, info);
}
