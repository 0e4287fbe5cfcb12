/*
 * From configuration to running state: per route the key files, the
 * migration-mode verifier, the JWK Set source and the current verifier
 * snapshot (rebuilt by the first request after its set changed); the
 * shared token cache.  A state is refcounted and replaced whole on a
 * reload; sources with the same definition move into the new state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/file.h"
#include "common/log.h"
#include "core/alloc.h"
#include "gw_internal.h"

/* ----------------------------------------------------------- snapshots */

static void snap_destroy(jk_snap_obj *o) {
  gw_route_snap *s = (gw_route_snap *)o;
  jwtkit_verifier_free(s->v);
  gw_keyset_release(s->ks);
  free(s);
}

void gw_route_snap_release(gw_route_snap *s) {
  if (s != NULL) jk_snap_release(&s->obj);
}

/* A snapshot over ks (takes its reference). */
static gw_route_snap *snap_new(gw_route *r, gw_keyset *ks, char *err, size_t cap) {
  gw_route_snap *s = calloc(1, sizeof *s);
  if (s == NULL) {
    gw_keyset_release(ks);
    snprintf(err, cap, "out of memory");
    return NULL;
  }
  jk_snap_obj_init(&s->obj, snap_destroy);
  s->ks = ks;
  s->gen = ks ? ks->gen : 0;
  jwtkit_errinfo info = {0};
  jwtkit_err e = gw_build_main(r, ks ? ks->jwks : NULL, &s->v, &s->nkeys, &info);
  if (e != JWTKIT_OK) {
    snprintf(err, cap, "route %s: cannot build the verifier: %s (%s)", r->cfg->name, jwtkit_strerror(e), info.msg);
    gw_route_snap_release(s);
    return NULL;
  }
  return s;
}

static gw_route_snap *snap_load(gw_route *r) { return (gw_route_snap *)jk_snap_acquire(&r->snap); }

/* After a failed rebuild: the previous keys, marked with the new
 * generation so the next requests do not retry (and log) until another set. */
static gw_route_snap *snap_keep(const gw_route_snap *s, uint64_t gen) {
  gw_route_snap *ns = calloc(1, sizeof *ns);
  if (ns == NULL) return NULL;
  jk_snap_obj_init(&ns->obj, snap_destroy);
  ns->v = s->v ? jwtkit_verifier_ref(s->v) : NULL;
  ns->ks = s->ks;
  if (ns->ks != NULL) atomic_fetch_add(&ns->ks->obj.refs, 1);
  ns->nkeys = s->nkeys;
  ns->gen = gen;
  return ns;
}

gw_route_snap *gw_route_snap_get(gw_route *r) {
  gw_route_snap *s = snap_load(r);
  if (r->src == NULL || s->gen == gw_source_gen(r->src)) return s;
  /* a new set was published: rebuild once; other threads keep using the
   * previous verifier meanwhile (unless there is none yet) */
  if (s->v != NULL) {
    if (pthread_mutex_trylock(&r->build_mu) != 0) return s;
  } else {
    pthread_mutex_lock(&r->build_mu);
  }
  gw_route_snap *cur = snap_load(r);
  if (cur->gen == gw_source_gen(r->src)) {
    pthread_mutex_unlock(&r->build_mu);
    gw_route_snap_release(s);
    return cur;
  }
  gw_route_snap_release(cur);
  char err[512];
  gw_keyset *ks = gw_source_keyset(r->src);
  uint64_t gen = ks->gen;
  gw_route_snap *ns = snap_new(r, ks, err, sizeof err);
  if (ns == NULL) {
    jk_log(JK_LOG_ERROR, "verifier_build_failed", "%s; keeping the previous keys", err);
    if ((ns = snap_keep(s, gen)) == NULL) {
      pthread_mutex_unlock(&r->build_mu);
      return s;
    }
  }
  jk_logline L;
  if (jk_log_begin(&L, JK_LOG_INFO, "verifier_rebuilt")) {
    jk_log_str(&L, "route", r->cfg->name);
    jk_log_uint(&L, "jwks_generation", ns->gen);
    jk_log_uint(&L, "keys", ns->nkeys);
    jk_log_end(&L);
  }
  atomic_fetch_add(&ns->obj.refs, 1); /* the caller's */
  jk_snap_publish(&r->snap, &ns->obj);
  pthread_mutex_unlock(&r->build_mu);
  gw_route_snap_release(s);
  return ns;
}

int gw_route_snap_has_kid(const gw_route *r, const gw_route_snap *s, const char *kid, size_t len) {
  for (size_t i = 0; i < r->nstatic; i++) {
    const char *k = jwtkit_key_kid(r->static_keys[i]);
    if (k != NULL && strlen(k) == len && memcmp(k, kid, len) == 0) return 1;
  }
  return s->ks != NULL && jwtkit_jwks_find(s->ks->jwks, kid, len) != NULL;
}

/* ---------------------------------------------------------------- state */

static void route_free(gw_route *r) {
  jk_snap_destroy(&r->snap);
  for (size_t i = 0; i < r->nstatic; i++) jwtkit_key_free(r->static_keys[i]);
  free(r->static_keys);
  jwtkit_verifier_free(r->legacy);
  pthread_mutex_destroy(&r->build_mu);
}

/* Everything but the config (which the caller may still own). */
static void state_free_parts(gw_state *st, size_t nroutes_init) {
  for (size_t i = 0; i < nroutes_init; i++) route_free(&st->routes[i]);
  free(st->routes);
  for (size_t i = 0; i < st->nsources; i++) gw_source_release(st->sources[i]);
  free(st->sources);
  gw_tcache_free(st->cache);
}

void gw_state_destroy(gw_state *st) {
  if (st == NULL) return;
  state_free_parts(st, st->nroutes);
  gw_config_free(st->cfg);
  free(st);
}

static void state_last_ref(jk_snap_obj *o) {
  gw_state *st = (gw_state *)o;
  if (st->retire != NULL)
    st->retire(st);
  else
    gw_state_destroy(st);
}

gw_state *gw_state_ref(gw_state *st) {
  atomic_fetch_add(&st->obj.refs, 1);
  return st;
}

void gw_state_release(gw_state *st) {
  if (st != NULL) jk_snap_release(&st->obj);
}

gw_state *gw_state_acquire(jk_snap *h) { return (gw_state *)jk_snap_acquire(h); }
void gw_state_publish(jk_snap *h, gw_state *st) { jk_snap_publish(h, st ? &st->obj : NULL); }

const gw_config *gw_state_config(const gw_state *st) { return st->cfg; }
uint64_t gw_state_generation(const gw_state *st) { return st->generation; }
size_t gw_state_nsources(const gw_state *st) { return st->nsources; }
gw_source *gw_state_source(const gw_state *st, size_t i) { return i < st->nsources ? st->sources[i] : NULL; }
size_t gw_state_cache_entries(const gw_state *st) { return st->cache ? gw_tcache_count(st->cache) : 0; }
size_t gw_state_cache_capacity(const gw_state *st) { return st->cache ? gw_tcache_capacity(st->cache) : 0; }

void gw_state_stop_sources(gw_state *st) {
  for (size_t i = 0; i < st->nsources; i++) gw_source_stop(st->sources[i]);
}

void gw_state_route_info(gw_state *st, size_t i, gw_route_info *out) {
  gw_route *r = &st->routes[i];
  gw_route_snap *s = gw_route_snap_get(r);
  *out = (gw_route_info){.cfg = r->cfg,
                         .static_keys = r->nstatic,
                         .keys = s->nkeys,
                         .ready = s->v != NULL,
                         .legacy = r->legacy != NULL,
                         .legacy_deadline = r->legacy_deadline};
  gw_route_snap_release(s);
}

static int same_def(const gw_jwks_def *a, const gw_jwks_def *b) {
  const gw_jwks_opts *x = &a->o, *y = &b->o;
  if (strcmp(a->url, b->url) != 0 || a->allow_http != b->allow_http || a->rsa_default != b->rsa_default ||
      a->discovery != b->discovery)
    return 0;
  if ((x->ca_file == NULL) != (y->ca_file == NULL) || (x->ca_file && strcmp(x->ca_file, y->ca_file) != 0)) return 0;
  return x->timeout_ms == y->timeout_ms && x->max_bytes == y->max_bytes && x->min_ttl == y->min_ttl &&
         x->max_ttl == y->max_ttl && x->default_ttl == y->default_ttl && x->refresh_ahead == y->refresh_ahead &&
         x->cooldown == y->cooldown && x->stale_max == y->stale_max;
}

static gw_source *find_source(gw_source *const *v, size_t n, const gw_jwks_def *d) {
  for (size_t i = 0; i < n; i++)
    if (same_def(gw_source_def(v[i]), d)) return v[i];
  return NULL;
}

static int load_key_files(gw_route *r, char *err, size_t cap) {
  for (size_t k = 0; k < r->cfg->key_files.n; k++) {
    const char *path = r->cfg->key_files.v[k];
    char *text = NULL;
    size_t len = 0;
    jwtkit_errinfo info = {0};
    if (jk_read_file(path, GW_MAX_KEYFILE, &text, &len, &info) != JWTKIT_OK) {
      snprintf(err, cap, "key_file %s: %s", path, info.msg);
      return -1;
    }
    int rc = gw_load_key_text(r->cfg, path, text, len, &r->static_keys, &r->nstatic, err, cap);
    jk_free_secret(text, len + 1); /* a private key is refused, but was read */
    if (rc != 0) return -1;
  }
  return 0;
}

/* The route's source: one of this state's, the previous state's, or new. */
static int attach_source(gw_state *st, gw_route *r, const gw_build *b) {
  gw_jwks_def d = {gw_route_source_url(r->cfg), r->cfg->allow_http_jwks, gw_route_rsa_default(r->cfg), st->cfg->jwks,
                   r->cfg->jwks_url == NULL};
  gw_source *src = find_source(st->sources, st->nsources, &d);
  if (src == NULL) {
    gw_source *old = b->prev ? find_source(b->prev->sources, b->prev->nsources, &d) : NULL;
    src = old ? gw_source_ref(old) : gw_source_new(&d, b->transport);
    if (src == NULL) return -1;
    st->sources[st->nsources++] = src;
  }
  r->src = src;
  return 0;
}

static int build_route(gw_state *st, gw_route *r, const gw_build *b, char *err, size_t cap) {
  if (load_key_files(r, err, cap) != 0) return -1;
  if (r->cfg->legacy_secret_file != NULL && gw_build_legacy(r, err, cap) != 0) return -1;
  if (gw_route_source_url(r->cfg) != NULL && attach_source(st, r, b) != 0) {
    snprintf(err, cap, "out of memory (or the JWK Set fetcher cannot start)");
    return -1;
  }
  gw_route_snap *s = snap_new(r, r->src ? gw_source_keyset(r->src) : NULL, err, cap);
  if (s == NULL) return -1;
  jk_snap_publish(&r->snap, &s->obj);
  if (r->src == NULL && s->v == NULL) {
    snprintf(err, cap, "route %s: no key", r->cfg->name);
    return -1;
  }
  return 0;
}

static void warn_unreachable(const gw_config *cfg) {
  for (size_t i = 0; i + 1 < cfg->nroutes; i++) {
    const gw_route_cfg *rc = &cfg->routes[i];
    if (rc->hosts.n == 0 && rc->prefixes.n == 0) {
      jk_log(JK_LOG_WARN, "route_unreachable",
             "route %s matches every request, so the %zu route(s) after it are never used", rc->name,
             cfg->nroutes - i - 1);
      return;
    }
  }
}

int gw_state_build(gw_config *cfg, const gw_build *b, gw_state **out, char *err, size_t cap) {
  *out = NULL;
  err[0] = '\0';
  gw_state *st = calloc(1, sizeof *st);
  if (st == NULL) {
    snprintf(err, cap, "out of memory");
    return -1;
  }
  jk_snap_obj_init(&st->obj, state_last_ref);
  st->generation = b->generation;
  st->retire = b->retire;
  st->cfg = cfg;
  st->routes = calloc(cfg->nroutes ? cfg->nroutes : 1, sizeof *st->routes);
  st->sources = calloc(cfg->nroutes ? cfg->nroutes : 1, sizeof *st->sources);
  size_t ninit = 0;
  if (st->routes == NULL || st->sources == NULL) goto oom;
  for (size_t i = 0; i < cfg->nroutes; i++) {
    gw_route *r = &st->routes[i];
    r->cfg = &cfg->routes[i];
    r->gcfg = cfg;
    r->index = (uint32_t)i;
    if (pthread_mutex_init(&r->build_mu, NULL) != 0) goto oom;
    jk_snap_init(&r->snap);
    ninit++;
    if (build_route(st, r, b, err, cap) != 0) goto fail;
  }
  st->nroutes = cfg->nroutes;
  if (cfg->token_cache > 0 && (st->cache = gw_tcache_new(cfg->token_cache)) == NULL) goto oom;
  warn_unreachable(cfg);
  *out = st;
  return 0;
oom:
  snprintf(err, cap, "out of memory");
fail:
  state_free_parts(st, ninit);
  free(st);
  return -1;
}
