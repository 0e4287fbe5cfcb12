/*
 * The libjwt 1.10 peer.  Each op is what a libjwt user writes:
 *   sign:   jwt_new, jwt_add_grant(_int) for the six claims, jwt_add_header
 *           kid, jwt_set_alg with the secret or PKCS#8 PEM, jwt_encode_str
 *   verify: jwt_decode with the secret or SPKI PEM, then the checks jwtkit's
 *           verifier makes for this token, done by hand because libjwt 1.10
 *           has no validation API: alg pinned, exp (and iat) against the
 *           same clock and leeway, iss and aud compared.
 * libjwt 1.10 has no PS* and no EdDSA: those rows report n/a.
 */
#include "bench.h"

#ifdef JWTKIT_BENCH_LIBJWT

#include <errno.h>
#include <jwt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef JWTKIT_BENCH_LIBJWT_VERSION
#define JWTKIT_BENCH_LIBJWT_VERSION "?"
#endif

struct peer_ctx {
  const bench_fixture *fx;
  jwt_alg_t alg;
  const unsigned char *skey, *vkey; /* secret, or PKCS#8 / SPKI PEM */
  int skey_len, vkey_len;
};

int peer_available(void) { return 1; }
const char *peer_version(void) { return JWTKIT_BENCH_LIBJWT_VERSION; }

static jwt_alg_t peer_alg(const bench_alg *a) {
  switch (a->alg) {
    case JWTKIT_ALG_HS256: return JWT_ALG_HS256;
    case JWTKIT_ALG_HS384: return JWT_ALG_HS384;
    case JWTKIT_ALG_HS512: return JWT_ALG_HS512;
    case JWTKIT_ALG_RS256: return JWT_ALG_RS256;
    case JWTKIT_ALG_RS384: return JWT_ALG_RS384;
    case JWTKIT_ALG_RS512: return JWT_ALG_RS512;
    case JWTKIT_ALG_ES256: return JWT_ALG_ES256;
    case JWTKIT_ALG_ES384: return JWT_ALG_ES384;
    case JWTKIT_ALG_ES512: return JWT_ALG_ES512;
    default: return JWT_ALG_INVAL; /* PS*, EdDSA: not in libjwt 1.10 */
  }
}

int peer_supports(const bench_alg *a) { return peer_alg(a) != JWT_ALG_INVAL; }

peer_ctx *peer_new(const bench_fixture *fx, char *err, size_t errlen) {
  if (!peer_supports(fx->a)) return snprintf(err, errlen, "libjwt: %s not supported", fx->a->label), NULL;
  peer_ctx *p = calloc(1, sizeof *p);
  if (p == NULL) return snprintf(err, errlen, "out of memory"), NULL;
  p->fx = fx;
  p->alg = peer_alg(fx->a);
  if (bench_alg_is_hmac(fx->a)) {
    p->skey = p->vkey = fx->secret;
    p->skey_len = p->vkey_len = (int)fx->secret_len;
  } else {
    p->skey = (const unsigned char *)fx->priv_pem;
    p->skey_len = (int)fx->priv_pem_len;
    p->vkey = (const unsigned char *)fx->pub_pem;
    p->vkey_len = (int)fx->pub_pem_len;
  }
  return p;
}

void peer_free(peer_ctx *p) { free(p); }

static char *encode(const peer_ctx *p) {
  const bench_fixture *fx = p->fx;
  jwt_t *j = NULL;
  if (jwt_new(&j) != 0) return NULL;
  char *out = NULL;
  if (jwt_add_grant(j, "sub", BENCH_SUB) == 0 && jwt_add_grant(j, "iss", BENCH_ISS) == 0 &&
      jwt_add_grant(j, "aud", BENCH_AUD) == 0 && jwt_add_grant_int(j, "iat", (long)fx->now) == 0 &&
      jwt_add_grant_int(j, "exp", (long)(fx->now + BENCH_TTL)) == 0 &&
      jwt_add_grant(j, "scope", BENCH_SCOPE) == 0 && jwt_add_header(j, "kid", BENCH_KID) == 0 &&
      jwt_set_alg(j, p->alg, p->skey, p->skey_len) == 0)
    out = jwt_encode_str(j);
  jwt_free(j);
  return out;
}

static int claims_ok(jwt_t *j, const peer_ctx *p) {
  long now = (long)p->fx->now;
  if (jwt_get_alg(j) != p->alg) return 0;
  errno = 0;
  long exp = jwt_get_grant_int(j, "exp");
  if (errno != 0 || now >= exp + BENCH_LEEWAY) return 0;
  errno = 0;
  long iat = jwt_get_grant_int(j, "iat");
  if (errno == 0 && iat > now + BENCH_LEEWAY) return 0;
  const char *iss = jwt_get_grant(j, "iss");
  const char *aud = jwt_get_grant(j, "aud");
  return iss != NULL && strcmp(iss, BENCH_ISS) == 0 && aud != NULL && strcmp(aud, BENCH_AUD) == 0;
}

int peer_verify_token(peer_ctx *p, const char *tok) {
  jwt_t *j = NULL;
  if (jwt_decode(&j, tok, p->vkey, p->vkey_len) != 0) return 0;
  int ok = claims_ok(j, p);
  jwt_free(j);
  return ok;
}

size_t peer_sign_token(peer_ctx *p, char *out, size_t cap) {
  char *t = encode(p);
  if (t == NULL) return 0;
  size_t n = strlen(t);
  if (n >= cap) n = 0;
  else memcpy(out, t, n + 1);
  free(t);
  return n;
}

int peer_op_sign(void *ctx) {
  char *t = encode(ctx);
  int rc = t != NULL ? 0 : -1;
  free(t);
  return rc;
}

int peer_op_verify(void *ctx) {
  peer_ctx *p = ctx;
  return peer_verify_token(p, p->fx->token) ? 0 : -1;
}

#else /* no libjwt at build time */

int peer_available(void) { return 0; }
const char *peer_version(void) { return NULL; }
int peer_supports(const bench_alg *a) {
  (void)a;
  return 0;
}
peer_ctx *peer_new(const bench_fixture *fx, char *err, size_t errlen) {
  (void)fx;
  (void)err;
  (void)errlen;
  return NULL;
}
void peer_free(peer_ctx *p) { (void)p; }
int peer_op_sign(void *ctx) {
  (void)ctx;
  return -1;
}
int peer_op_verify(void *ctx) {
  (void)ctx;
  return -1;
}
size_t peer_sign_token(peer_ctx *p, char *out, size_t cap) {
  (void)p;
  (void)out;
  (void)cap;
  return 0;
}
int peer_verify_token(peer_ctx *p, const char *tok) {
  (void)p;
  (void)tok;
  return 0;
}

#endif
