/*
 * Keys and verifiers of a route.
 *
 * Two verifiers per route, never mixed (algorithm confusion, docs/security.md
 * invariant 1):
 *   - the main one: the route's algs (never HS*), its key files and the
 *     keys of its JWK Set whose algorithm is in algs;
 *   - the legacy one (migration mode only): HS256 alone with the legacy
 *     secret.  A token signed with HS256 using a public key as the secret
 *     fails both: the main verifier refuses HS256, the legacy one has a
 *     different secret.
 * Both apply the same claim checks (iss, aud, typ, require, leeway,
 * max_age, max_token).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "gw_internal.h"

static int alg_in(const gw_route_cfg *rc, jwtkit_alg a) {
  for (size_t i = 0; i < rc->nalgs; i++)
    if (rc->algs[i] == a) return 1;
  return 0;
}

static int push_key(jwtkit_key ***keys, size_t *n, jwtkit_key *k) {
  jwtkit_key **nk = realloc(*keys, (*n + 1) * sizeof *nk);
  if (nk == NULL) return -1;
  *keys = nk;
  (*keys)[(*n)++] = k;
  return 0;
}

static int check_key(const gw_route_cfg *rc, const char *src, jwtkit_key *k, char *err, size_t errcap) {
  if (jwtkit_key_can_sign(k)) {
    snprintf(err, errcap, "%s holds a private key; a gateway only needs the public key (jwtkit jwk %s > pub.jwk)",
             src, src);
    return -1;
  }
  if (!alg_in(rc, jwtkit_key_alg(k))) {
    snprintf(err, errcap, "%s: key%s%s is for %s, which route %s does not allow (algs)", src,
             jwtkit_key_kid(k) ? " " : "", jwtkit_key_kid(k) ? jwtkit_key_kid(k) : "", jwtkit_alg_name(jwtkit_key_alg(k)),
             rc->name);
    return -1;
  }
  return 0;
}

typedef struct skip_log {
  const char *src;
} skip_log;

static void key_skipped(void *ctx, size_t index, const jwtkit_errinfo *why) {
  const skip_log *sl = ctx;
  jk_logline L;
  if (jk_log_begin(&L, JK_LOG_WARN, "key_file_key_skipped")) {
    jk_log_str(&L, "file", sl->src);
    jk_log_int(&L, "index", (int64_t)index);
    jk_log_str(&L, "reason", jwtkit_errname(why->code));
    jk_log_str(&L, "detail", why->msg);
    jk_log_end(&L);
  }
}

int gw_load_key_text(const gw_route_cfg *rc, const char *src, const char *text, size_t len, jwtkit_key ***keys,
                       size_t *nkeys, char *err, size_t errcap) {
  jwtkit_alg rsa = gw_route_rsa_default(rc);
  jwtkit_errinfo info = {0};
  size_t i = 0;
  while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n')) i++;
  jwtkit_key *k = NULL;
  if (i < len && text[i] == '{') {
    /* a JWK Set has "keys"; anything else is taken as one JWK */
    jwtkit_jwks *set = NULL;
    skip_log sl = {src};
    jwtkit_err e = jwtkit_jwks_parse(&set, text, len, rsa, key_skipped, &sl, &info);
    if (e == JWTKIT_OK) {
      size_t n = jwtkit_jwks_count(set);
      if (n == 0) {
        jwtkit_jwks_free(set);
        snprintf(err, errcap, "%s: no usable signature key in the JWK Set", src);
        return -1;
      }
      for (size_t j = 0; j < n; j++) {
        jwtkit_key *jk = jwtkit_jwks_get(set, j);
        if (check_key(rc, src, jk, err, errcap) != 0 || push_key(keys, nkeys, jwtkit_key_ref(jk)) != 0) {
          if (err[0] == '\0') snprintf(err, errcap, "out of memory");
          jwtkit_jwks_free(set);
          return -1;
        }
      }
      jwtkit_jwks_free(set);
      return 0;
    }
    if (!(e == JWTKIT_ERR_INVALID_KEY && strcmp(info.field, "keys") == 0)) {
      snprintf(err, errcap, "%s: not a usable JWK Set: %s (%s)", src, jwtkit_strerror(e), info.msg);
      return -1;
    }
    e = jwtkit_key_from_jwk(&k, JWTKIT_ALG_UNSPEC, text, len, &info);
    if (e != JWTKIT_OK && rsa != JWTKIT_ALG_UNSPEC) {
      jwtkit_errinfo info2 = {0};
      if (jwtkit_key_from_jwk(&k, rsa, text, len, &info2) == JWTKIT_OK) e = JWTKIT_OK;
    }
    if (e != JWTKIT_OK) {
      snprintf(err, errcap, "%s: not a usable JWK: %s (%s)%s", src, jwtkit_strerror(e), info.msg,
               rsa == JWTKIT_ALG_UNSPEC ? "; an RSA JWK without \"alg\" needs exactly one RS*/PS* algorithm in algs" : "");
      return -1;
    }
  } else if (len - i >= 10 && memcmp(text + i, "-----BEGIN", 10) == 0) {
    jwtkit_err e = jwtkit_key_from_pem(&k, JWTKIT_ALG_UNSPEC, text, len, NULL, &info);
    if (e != JWTKIT_OK && rsa != JWTKIT_ALG_UNSPEC) {
      jwtkit_errinfo info2 = {0};
      if (jwtkit_key_from_pem(&k, rsa, text, len, NULL, &info2) == JWTKIT_OK) e = JWTKIT_OK;
    }
    if (e != JWTKIT_OK) {
      snprintf(err, errcap, "%s: not a usable PEM key: %s (%s)%s", src, jwtkit_strerror(e), info.msg,
               rsa == JWTKIT_ALG_UNSPEC ? "; an RSA key needs exactly one RS*/PS* algorithm in algs" : "");
      return -1;
    }
  } else {
    snprintf(err, errcap, "%s: expected a PEM public key, a JWK or a JWK Set", src);
    return -1;
  }
  if (check_key(rc, src, k, err, errcap) != 0 || push_key(keys, nkeys, k) != 0) {
    if (err[0] == '\0') snprintf(err, errcap, "out of memory");
    jwtkit_key_free(k);
    return -1;
  }
  return 0;
}

/* ---------------------------------------------------------- verifiers */

static jwtkit_err apply_checks(jwtkit_policy *p, const gw_route_cfg *rc, const gw_config *cfg) {
  jwtkit_err e = JWTKIT_OK;
  if (rc->issuer) e = e ? e : jwtkit_policy_add_issuer(p, rc->issuer);
  for (size_t i = 0; i < rc->audiences.n; i++) e = e ? e : jwtkit_policy_add_audience(p, rc->audiences.v[i]);
  if (rc->typ) e = e ? e : jwtkit_policy_set_typ(p, rc->typ);
  for (size_t i = 0; i < rc->require.n; i++) e = e ? e : jwtkit_policy_require_claim(p, rc->require.v[i]);
  if (rc->leeway >= 0) e = e ? e : jwtkit_policy_set_leeway(p, rc->leeway);
  if (rc->max_age > 0) e = e ? e : jwtkit_policy_set_max_age(p, rc->max_age);
  e = e ? e : jwtkit_policy_set_max_token(p, cfg->max_token);
  return e;
}

static int kid_in(jwtkit_key *const *keys, size_t n, const char *kid) {
  if (kid == NULL) return 0;
  for (size_t i = 0; i < n; i++) {
    const char *k = jwtkit_key_kid(keys[i]);
    if (k != NULL && strcmp(k, kid) == 0) return 1;
  }
  return 0;
}

/* Main verifier: static keys + the JWK Set's keys for the route's algs.
 * *v NULL (and OK) when there is no key at all. */
jwtkit_err gw_build_main(const gw_route *r, const jwtkit_jwks *jwks, jwtkit_verifier **v, size_t *nkeys,
                         jwtkit_errinfo *info) {
  const gw_config *cfg = r->gcfg;
  *v = NULL;
  *nkeys = 0;
  const gw_route_cfg *rc = r->cfg;
  jwtkit_policy *p = jwtkit_policy_new();
  if (p == NULL) return JWTKIT_ERR_NOMEM;
  jwtkit_err e = JWTKIT_OK;
  for (size_t i = 0; i < rc->nalgs && !e; i++) e = jwtkit_policy_allow_alg(p, rc->algs[i]);
  for (size_t i = 0; i < r->nstatic && !e; i++, (*nkeys)++) e = jwtkit_policy_add_key(p, r->static_keys[i]);
  size_t nj = jwtkit_jwks_count(jwks);
  for (size_t i = 0; i < nj && !e; i++) {
    jwtkit_key *k = jwtkit_jwks_get(jwks, i);
    if (!alg_in(rc, jwtkit_key_alg(k))) continue; /* e.g. an ES384 key for another audience */
    if (kid_in(r->static_keys, r->nstatic, jwtkit_key_kid(k))) {
      jk_log(JK_LOG_WARN, "jwks_kid_conflict", "route %s: JWKS key %s has the kid of a key_file key; the key_file key wins",
               rc->name, jwtkit_key_kid(k));
      continue;
    }
    e = jwtkit_policy_add_key(p, k);
    (*nkeys)++;
  }
  if (!e) e = apply_checks(p, rc, cfg);
  if (!e && *nkeys > 0) e = jwtkit_verifier_new(v, p, info);
  jwtkit_policy_free(p);
  return e;
}

int gw_build_legacy(gw_route *r, char *err, size_t errcap) {
  const gw_config *cfg = r->gcfg;
  const gw_route_cfg *rc = r->cfg;
  /* the library's secret rule, as the command and jwtkit serve read the
   * same file: owner-only mode on the opened file, one trailing newline not
   * part of the secret, a key never taken as a secret */
  jwtkit_key *k = NULL;
  jwtkit_errinfo info = {0};
  jwtkit_err e = jwtkit_key_from_secret_file(&k, JWTKIT_ALG_HS256, rc->legacy_secret_file, &info);
  if (e != JWTKIT_OK) {
    snprintf(err, errcap, "legacy_hs256_secret_file: %s (%s)", info.msg, jwtkit_strerror(e));
    return -1;
  }
  jwtkit_policy *p = jwtkit_policy_new();
  if (p == NULL) e = JWTKIT_ERR_NOMEM;
  if (!e) e = jwtkit_policy_allow_alg(p, JWTKIT_ALG_HS256);
  if (!e) e = jwtkit_policy_add_key(p, k);
  if (!e) e = apply_checks(p, rc, cfg);
  if (!e) e = jwtkit_verifier_new(&r->legacy, p, &info);
  jwtkit_policy_free(p);
  jwtkit_key_free(k);
  if (e != JWTKIT_OK) {
    snprintf(err, errcap, "route %s: legacy HS256 verifier: %s (%s)", rc->name, jwtkit_strerror(e), info.msg);
    return -1;
  }
  r->legacy_deadline = rc->legacy_deadline;
  return 0;
}

