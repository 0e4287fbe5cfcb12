/*
 * From configuration to running state: per route the static keys, the
 * migration-mode HS256 verifier, the JWKS source and the current verifier
 * snapshot; the shared token cache.
 *
 * Two verifiers per route, never mixed (algorithm confusion, docs/security.md invariant 1):
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

#include "gate_internal.h"

/* --------------------------------------------------------------- keys */

static int alg_in(const gate_route_cfg *rc, jwtkit_alg a) {
  for (size_t i = 0; i < rc->nalgs; i++)
    if (rc->algs[i] == a) return 1;
  return 0;
}

jwtkit_alg gate_route_rsa_default(const gate_route_cfg *rc) {
  jwtkit_alg one = JWTKIT_ALG_UNSPEC;
  size_t n = 0;
  for (size_t i = 0; i < rc->nalgs; i++)
    if (jwtkit_alg_kty(rc->algs[i]) == JWTKIT_KTY_RSA) {
      one = rc->algs[i];
      n++;
    }
  return n == 1 ? one : JWTKIT_ALG_UNSPEC;
}

static int push_key(jwtkit_key ***keys, size_t *n, jwtkit_key *k) {
  jwtkit_key **nk = realloc(*keys, (*n + 1) * sizeof *nk);
  if (nk == NULL) return -1;
  *keys = nk;
  (*keys)[(*n)++] = k;
  return 0;
}

static int check_key(const gate_route_cfg *rc, const char *src, jwtkit_key *k, char *err, size_t errcap) {
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
  gate_logline L;
  if (gl_begin(&L, GL_WARN, "key_file_key_skipped")) {
    gl_str(&L, "file", sl->src);
    gl_int(&L, "index", (int64_t)index);
    gl_str(&L, "reason", jwtkit_errname(why->code));
    gl_str(&L, "detail", why->msg);
    gl_end(&L);
  }
}

int gate_load_key_text(const gate_route_cfg *rc, const char *src, const char *text, size_t len, jwtkit_key ***keys,
                       size_t *nkeys, char *err, size_t errcap) {
  jwtkit_alg rsa = gate_route_rsa_default(rc);
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

static jwtkit_err apply_checks(jwtkit_policy *p, const gate_route_cfg *rc, const gate_config *cfg) {
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
static jwtkit_err build_main(const gate_route *r, const gate_config *cfg, const jwtkit_jwks *jwks,
                             jwtkit_verifier **v, size_t *nkeys, jwtkit_errinfo *info) {
  *v = NULL;
  *nkeys = 0;
  const gate_route_cfg *rc = r->cfg;
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
      gate_log(GL_WARN, "jwks_kid_conflict", "route %s: JWKS key %s has the kid of a key_file key; the key_file key wins",
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

static int load_legacy(gate_route *r, const gate_config *cfg, char *err, size_t errcap) {
  const gate_route_cfg *rc = r->cfg;
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

/* ----------------------------------------------------------- snapshots */

static gate_route_snap *snap_new(gate_route *r, const gate_config *cfg, gate_keyset *ks, char *err, size_t errcap) {
  gate_route_snap *s = calloc(1, sizeof *s);
  if (s == NULL) {
    gate_keyset_release(ks);
    snprintf(err, errcap, "out of memory");
    return NULL;
  }
  atomic_init(&s->refs, 1);
  s->ks = ks;
  s->gen = ks ? ks->gen : 0;
  jwtkit_errinfo info = {0};
  jwtkit_err e = build_main(r, cfg, ks ? ks->jwks : NULL, &s->v, &s->nkeys, &info);
  if (e != JWTKIT_OK) {
    snprintf(err, errcap, "route %s: cannot build the verifier: %s (%s)", r->cfg->name, jwtkit_strerror(e), info.msg);
    gate_keyset_release(ks);
    free(s);
    return NULL;
  }
  return s;
}

void gate_route_snap_release(gate_route_snap *s) {
  if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1) return;
  jwtkit_verifier_free(s->v);
  gate_keyset_release(s->ks);
  free(s);
}

static gate_route_snap *snap_load(gate_route *r) {
  pthread_rwlock_rdlock(&r->snap_lock);
  gate_route_snap *s = r->snap;
  atomic_fetch_add(&s->refs, 1);
  pthread_rwlock_unlock(&r->snap_lock);
  return s;
}

gate_route_snap *gate_route_snap_get(gate_route *r) {
  gate_route_snap *s = snap_load(r);
  if (r->src == NULL || s->gen == gate_source_gen(r->src)) return s;
  /* a new keyset was published: rebuild once; other threads keep using
   * the previous verifier meanwhile (unless there is none yet) */
  if (s->v != NULL) {
    if (pthread_mutex_trylock(&r->build_mu) != 0) return s;
  } else {
    pthread_mutex_lock(&r->build_mu);
  }
  gate_route_snap *cur = snap_load(r);
  if (cur->gen == gate_source_gen(r->src)) {
    pthread_mutex_unlock(&r->build_mu);
    gate_route_snap_release(s);
    return cur;
  }
  gate_route_snap_release(cur);
  char err[512];
  gate_keyset *ks = gate_source_keyset(r->src);
  uint64_t gen = ks->gen;
  gate_route_snap *ns = snap_new(r, r->gcfg, ks, err, sizeof err);
  if (ns == NULL) {
    /* keep verifying with the previous keys, but mark this generation as
     * done so the next requests do not retry (and log) until a new set */
    gate_log(GL_ERROR, "verifier_build_failed", "%s; keeping the previous keys", err);
    ns = calloc(1, sizeof *ns);
    if (ns == NULL) {
      pthread_mutex_unlock(&r->build_mu);
      return s;
    }
    atomic_init(&ns->refs, 1);
    ns->v = s->v ? jwtkit_verifier_ref(s->v) : NULL;
    ns->ks = gate_keyset_ref(s->ks);
    ns->nkeys = s->nkeys;
    ns->gen = gen;
  }
  gate_logline L;
  if (gl_begin(&L, GL_INFO, "verifier_rebuilt")) {
    gl_str(&L, "route", r->cfg->name);
    gl_int(&L, "jwks_generation", (int64_t)ns->gen);
    gl_int(&L, "keys", (int64_t)ns->nkeys);
    gl_end(&L);
  }
  atomic_fetch_add(&ns->refs, 1); /* the caller's */
  pthread_rwlock_wrlock(&r->snap_lock);
  gate_route_snap *old = r->snap;
  r->snap = ns;
  pthread_rwlock_unlock(&r->snap_lock);
  pthread_mutex_unlock(&r->build_mu);
  gate_route_snap_release(old);
  gate_route_snap_release(s);
  return ns;
}

int gate_route_snap_has_kid(const gate_route *r, const gate_route_snap *s, const char *kid, size_t len) {
  for (size_t i = 0; i < r->nstatic; i++) {
    const char *k = jwtkit_key_kid(r->static_keys[i]);
    if (k != NULL && strlen(k) == len && memcmp(k, kid, len) == 0) return 1;
  }
  return s->ks != NULL && jwtkit_jwks_find(s->ks->jwks, kid, len) != NULL;
}

/* ---------------------------------------------------------------- state */

static pthread_mutex_t g_reap_mu = PTHREAD_MUTEX_INITIALIZER;
static gate_state *g_reap;

static void route_free(gate_route *r) {
  gate_route_snap_release(r->snap);
  for (size_t i = 0; i < r->nstatic; i++) jwtkit_key_free(r->static_keys[i]);
  free(r->static_keys);
  jwtkit_verifier_free(r->legacy);
  pthread_mutex_destroy(&r->build_mu);
  pthread_rwlock_destroy(&r->snap_lock);
}

/* Free everything but the config (which the caller may still own). */
static void state_free_parts(gate_state *st, size_t nroutes_init) {
  for (size_t i = 0; i < nroutes_init; i++) route_free(&st->routes[i]);
  free(st->routes);
  for (size_t i = 0; i < st->nsources; i++) gate_source_release(st->sources[i]);
  free(st->sources);
  gate_tcache_free(st->cache);
}

void gate_state_destroy(gate_state *st) {
  if (st == NULL) return;
  state_free_parts(st, st->nroutes);
  gate_config_free(st->cfg);
  free(st);
}

gate_state *gate_state_ref(gate_state *s) {
  atomic_fetch_add(&s->refs, 1);
  return s;
}

void gate_state_release(gate_state *s) {
  if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1) return;
  pthread_mutex_lock(&g_reap_mu);
  s->reap_next = g_reap;
  g_reap = s;
  pthread_mutex_unlock(&g_reap_mu);
}

void gate_state_reap(void) {
  pthread_mutex_lock(&g_reap_mu);
  gate_state *s = g_reap;
  g_reap = NULL;
  pthread_mutex_unlock(&g_reap_mu);
  while (s != NULL) {
    gate_state *n = s->reap_next;
    gate_log(GL_DEBUG, "state_freed", "configuration generation %llu released", (unsigned long long)s->generation);
    gate_state_destroy(s);
    s = n;
  }
}

void gate_state_stop_sources(gate_state *s) {
  for (size_t i = 0; i < s->nsources; i++) gate_source_stop(s->sources[i]);
}

static gate_source *find_source(gate_source *const *v, size_t n, const char *url, int allow_http, jwtkit_alg rsa,
                                const gate_source_opts *o) {
  for (size_t i = 0; i < n; i++)
    if (gate_source_matches(v[i], url, allow_http, rsa, o)) return v[i];
  return NULL;
}

int gate_state_build(gate_config *cfg, const gate_state *prev, uint64_t generation, int start_fetchers,
                     gate_state **out, char *err, size_t errcap) {
  *out = NULL;
  err[0] = '\0';
  gate_state *st = calloc(1, sizeof *st);
  if (st == NULL) goto oom;
  atomic_init(&st->refs, 1);
  st->generation = generation;
  st->routes = calloc(cfg->nroutes, sizeof *st->routes);
  st->sources = calloc(cfg->nroutes, sizeof *st->sources);
  if (st->routes == NULL || st->sources == NULL) {
    free(st->routes);
    free(st->sources);
    free(st);
    goto oom;
  }
  gate_source_opts so = {
      .timeout_ms = cfg->jwks_timeout_ms, .max_bytes = cfg->jwks_max_bytes, .min_ttl = cfg->jwks_min_ttl,
      .max_ttl = cfg->jwks_max_ttl, .default_ttl = cfg->jwks_default_ttl, .refresh_ahead = cfg->jwks_refresh_ahead,
      .cooldown = cfg->jwks_cooldown, .stale_max = cfg->jwks_stale_max, .ca_file = cfg->jwks_ca_file};
  size_t ninit = 0;
  for (size_t i = 0; i < cfg->nroutes; i++) {
    gate_route *r = &st->routes[i];
    r->cfg = &cfg->routes[i];
    r->gcfg = cfg;
    r->index = (uint32_t)i;
    if (pthread_mutex_init(&r->build_mu, NULL) != 0) goto fail;
    if (pthread_rwlock_init(&r->snap_lock, NULL) != 0) {
      pthread_mutex_destroy(&r->build_mu);
      goto fail;
    }
    ninit++;
    for (size_t k = 0; k < r->cfg->key_files.n; k++) {
      const char *path = r->cfg->key_files.v[k];
      char *text;
      size_t len;
      if (gate_read_file(path, GATE_MAX_KEYFILE, 0, &text, &len, err, errcap) != 0) goto fail;
      int rc = gate_load_key_text(r->cfg, path, text, len, &r->static_keys, &r->nstatic, err, errcap);
      gate_wipe(text, len);
      free(text);
      if (rc != 0) goto fail;
    }
    if (r->cfg->legacy_secret_file != NULL && load_legacy(r, cfg, err, errcap) != 0) goto fail;
    if (r->cfg->jwks_url != NULL) {
      jwtkit_alg rsa = gate_route_rsa_default(r->cfg);
      gate_source *src = find_source(st->sources, st->nsources, r->cfg->jwks_url, r->cfg->allow_http_jwks, rsa, &so);
      if (src == NULL) {
        gate_source *old =
            prev ? find_source(prev->sources, prev->nsources, r->cfg->jwks_url, r->cfg->allow_http_jwks, rsa, &so) : NULL;
        src = old ? gate_source_ref(old) : gate_source_new(r->cfg->jwks_url, r->cfg->allow_http_jwks, rsa, &so,
                                                            start_fetchers);
        if (src == NULL) goto oom_fail;
        st->sources[st->nsources++] = src;
      }
      r->src = src;
    }
    r->snap = snap_new(r, cfg, r->src ? gate_source_keyset(r->src) : NULL, err, errcap);
    if (r->snap == NULL) goto fail;
    if (r->src == NULL && r->snap->v == NULL) {
      snprintf(err, errcap, "route %s: no key", r->cfg->name);
      goto fail;
    }
  }
  st->nroutes = cfg->nroutes;
  if (cfg->token_cache > 0 && (st->cache = gate_tcache_new(cfg->token_cache)) == NULL) goto oom_fail;
  for (size_t i = 0; i + 1 < cfg->nroutes; i++) {
    const gate_route_cfg *rc = &cfg->routes[i];
    if (rc->hosts.n == 0 && rc->prefixes.n == 0) {
      gate_log(GL_WARN, "route_unreachable",
               "route %s matches every request, so the %zu route(s) after it are never used", rc->name,
               cfg->nroutes - i - 1);
      break;
    }
  }
  st->cfg = cfg;
  *out = st;
  return 0;
oom_fail:
  snprintf(err, errcap, "out of memory");
fail:
  state_free_parts(st, ninit);
  free(st);
  return -1;
oom:
  snprintf(err, errcap, "out of memory");
  return -1;
}
