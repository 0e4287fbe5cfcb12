/* serve_verify_jwks JWKS_FILE TOKEN_FILE --iss ISS --aud AUD [--kid KID] [--now UNIX]
 *
 * Verifies an access token minted by jwtkit serve against a JWK Set saved
 * to a file (it fetches nothing): signature with the set's keys only, typ
 * at+jwt, iss, aud, and the RFC 9068 claims.  Prints
 *   ok kid=<kid> alg=<alg> sub=<sub> client_id=<id> scope=<scope> ttl=<exp-iat>
 * and exits 0, or prints the reason and exits 1 (2 on usage errors). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jwtkit/jwtkit.h"

static char *slurp(const char *path, size_t max, size_t *len) {
  FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
  if (f == NULL) return NULL;
  char *buf = malloc(max + 1);
  size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
  if (f != stdin) fclose(f);
  if (buf == NULL || n > max) {
    free(buf);
    return NULL;
  }
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ')) n--;
  buf[n] = '\0';
  *len = n;
  return buf;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: serve_verify_jwks JWKS_FILE TOKEN_FILE --iss ISS --aud AUD [--kid KID] [--now T]\n");
    return 2;
  }
  const char *iss = NULL, *aud = NULL, *want_kid = NULL;
  long long now = (long long)time(NULL);
  for (int i = 3; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--iss") == 0) iss = argv[i + 1];
    else if (strcmp(argv[i], "--aud") == 0) aud = argv[i + 1];
    else if (strcmp(argv[i], "--kid") == 0) want_kid = argv[i + 1];
    else if (strcmp(argv[i], "--now") == 0) now = atoll(argv[i + 1]);
    else {
      fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  if (iss == NULL || aud == NULL) {
    fprintf(stderr, "--iss and --aud are required\n");
    return 2;
  }
  size_t jl = 0, tl = 0;
  char *jwks = slurp(argv[1], JWTKIT_MAX_JWKS_BYTES, &jl);
  char *tok = slurp(argv[2], JWTKIT_DEFAULT_MAX_TOKEN, &tl);
  if (jwks == NULL || tok == NULL) {
    fprintf(stderr, "cannot read %s\n", jwks == NULL ? argv[1] : argv[2]);
    return 2;
  }
  int rc = 1;
  jwtkit_errinfo ei;
  memset(&ei, 0, sizeof ei);
  jwtkit_jwks *set = NULL;
  jwtkit_policy *p = NULL;
  jwtkit_verifier *v = NULL;
  jwtkit_claims *claims = NULL;
  if (jwtkit_jwks_parse(&set, jwks, jl, JWTKIT_ALG_UNSPEC, NULL, NULL, &ei) != JWTKIT_OK) {
    printf("jwks: %s\n", ei.msg);
    goto out;
  }
  if (jwtkit_jwks_count(set) == 0) {
    printf("jwks: no usable key\n");
    goto out;
  }
  p = jwtkit_policy_new();
  for (size_t i = 0; i < jwtkit_jwks_count(set); i++) {
    jwtkit_key *k = jwtkit_jwks_get(set, i);
    if (jwtkit_key_kty(k) == JWTKIT_KTY_OCT || jwtkit_key_can_sign(k)) {
      printf("jwks: key %zu is a secret or private key\n", i);
      goto out;
    }
    if (jwtkit_policy_allow_alg(p, jwtkit_key_alg(k)) != JWTKIT_OK) {
      printf("jwks: key %zu has no usable algorithm\n", i);
      goto out;
    }
  }
  if (jwtkit_policy_add_jwks(p, set) != JWTKIT_OK || jwtkit_policy_add_issuer(p, iss) != JWTKIT_OK ||
      jwtkit_policy_add_audience(p, aud) != JWTKIT_OK || jwtkit_policy_set_typ(p, "at+jwt") != JWTKIT_OK ||
      jwtkit_policy_set_kidless(p, JWTKIT_KIDLESS_REJECT) != JWTKIT_OK ||
      jwtkit_policy_require_claim(p, "jti") != JWTKIT_OK || jwtkit_policy_require_claim(p, "iat") != JWTKIT_OK ||
      jwtkit_policy_require_claim(p, "sub") != JWTKIT_OK || jwtkit_policy_require_claim(p, "client_id") != JWTKIT_OK) {
    printf("policy setup failed\n");
    goto out;
  }
  if (jwtkit_verifier_new(&v, p, &ei) != JWTKIT_OK) {
    printf("verifier: %s\n", ei.msg);
    goto out;
  }
  jwtkit_err e = jwtkit_verify_at(v, tok, tl, (int64_t)now, &claims, &ei);
  if (e != JWTKIT_OK) {
    printf("%s: %s\n", jwtkit_errname(e), ei.msg);
    goto out;
  }
  const char *kid = jwtkit_claims_kid(claims);
  const char *sub = NULL, *cid = NULL, *scope = "";
  int64_t iat = 0, exp = 0;
  jwtkit_claims_get_string(claims, "sub", &sub, NULL);
  jwtkit_claims_get_string(claims, "client_id", &cid, NULL);
  jwtkit_claims_get_string(claims, "scope", &scope, NULL);
  jwtkit_claims_get_int(claims, "iat", &iat);
  jwtkit_claims_get_int(claims, "exp", &exp);
  if (sub == NULL || cid == NULL || strcmp(sub, cid) != 0) {
    printf("sub and client_id differ\n");
    goto out;
  }
  if (want_kid != NULL && (kid == NULL || strcmp(kid, want_kid) != 0)) {
    printf("kid %s, expected %s\n", kid ? kid : "(none)", want_kid);
    goto out;
  }
  printf("ok kid=%s alg=%s sub=%s client_id=%s scope=%s ttl=%lld\n", kid ? kid : "", jwtkit_alg_name(jwtkit_claims_alg(claims)),
         sub, cid, scope ? scope : "", (long long)(exp - iat));
  rc = 0;
out:
  jwtkit_claims_free(claims);
  jwtkit_verifier_free(v);
  jwtkit_policy_free(p);
  jwtkit_jwks_free(set);
  free(jwks);
  free(tok);
  return rc;
}
