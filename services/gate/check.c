/*
 * jwtkit gate --check --fetch: besides loading the configuration, fetch
 * every JWK Set once, with the settings the running gate would use
 * (jwks_timeout, jwks_max_bytes, jwks_ca_file, allow_http_jwks; the
 * issuer's metadata first with issuer_discovery), read it as
 * the gate would (gw_fetch_evaluate), and report per route: reachable, the
 * keys and their kids, and which of them serve the route's pinned algs.  A
 * route whose set cannot be fetched or read, or has no key for its algs,
 * fails, named with the URL and the reason.
 */
#include <stdlib.h>
#include <string.h>

#include "gate_internal.h"

#define MAX_KIDS_LISTED 16

typedef struct fetched {
  gw_fetch_outcome o;
  int done;
  char uri[GW_MAX_URL + 1]; /* a discovery source's jwks_uri ("" when not found) */
} fetched;

/* A value from the network for a terminal: printable ASCII, at most n bytes shown. */
static void put_safe(FILE *out, const char *s, size_t n) {
  size_t i = 0;
  for (; s[i] && i < n; i++) fputc(s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?', out);
  if (s[i]) fputs("...", out);
}

static int key_serves(const jwtkit_key *k, const gw_route_cfg *rc, jwtkit_alg *which) {
  jwtkit_alg ka = jwtkit_key_alg(k);
  for (size_t i = 0; i < rc->nalgs; i++) {
    jwtkit_alg a = rc->algs[i];
    if (ka == a || (ka == JWTKIT_ALG_UNSPEC && jwtkit_alg_kty(a) == jwtkit_key_kty(k))) {
      *which = a;
      return 1;
    }
  }
  return 0;
}

static void fetch_source(gw_source *src, fetched *f) {
  const gw_jwks_def *d = gw_source_def(src);
  gw_fetch_req req = {.url = d->url,
                      .allow_http = d->allow_http,
                      .timeout_ms = d->o.timeout_ms,
                      .max_bytes = d->o.max_bytes,
                      .ca_file = d->o.ca_file,
                      .discovery = d->discovery};
  gate_fetched g;
  gate_fetch(NULL, &req, NULL, NULL, &g);
  gw_fetch_evaluate(d, 0, &g.gr, &f->o);
  snprintf(f->uri, sizeof f->uri, "%s", g.uri);
  gate_fetched_free(&g);
  f->done = 1;
}

static size_t report_route(FILE *out, const gw_route_cfg *rc, const fetched *f) {
  fprintf(out, "route %s: %s: ", rc->name, gw_route_source_url(rc));
  if (rc->issuer_discovery && f->uri[0]) {
    fputs("jwks_uri ", out);
    put_safe(out, f->uri, 256);
    fputs(": ", out);
  }
  if (f->o.r != GW_FETCH_OK) {
    fprintf(out, "FAILED (%s", gw_fetch_result_name(f->o.r));
    if (f->o.status) fprintf(out, ", HTTP %ld", f->o.status);
    if (f->o.detail[0]) {
      fputs(": ", out);
      put_safe(out, f->o.detail, sizeof f->o.detail);
    }
    fputs(")\n", out);
    return 1;
  }
  size_t n = jwtkit_jwks_count(f->o.jwks), serving = 0;
  fprintf(out, "reachable, %zu key%s", n, n == 1 ? "" : "s");
  if (f->o.skipped) fprintf(out, " (%zu entr%s skipped)", f->o.skipped, f->o.skipped == 1 ? "y" : "ies");
  fputs("; for algs ", out);
  for (size_t i = 0; i < rc->nalgs; i++) fprintf(out, "%s%s", i ? "," : "", jwtkit_alg_name(rc->algs[i]));
  fputs(":", out);
  for (size_t i = 0; i < n; i++) {
    const jwtkit_key *k = jwtkit_jwks_get(f->o.jwks, i);
    jwtkit_alg a;
    if (!key_serves(k, rc, &a)) continue;
    if (++serving > MAX_KIDS_LISTED) continue;
    const char *kid = jwtkit_key_kid(k);
    fputs(" kid ", out);
    if (kid != NULL) put_safe(out, kid, 64);
    else fputs("(none)", out);
    fprintf(out, " (%s)", jwtkit_alg_name(a));
  }
  if (serving > MAX_KIDS_LISTED) fprintf(out, " and %zu more", serving - MAX_KIDS_LISTED);
  if (serving == 0) {
    fputs(" none: FAILED (no key of the set serves the route's algs; the other keys: ", out);
    for (size_t i = 0; i < n && i < MAX_KIDS_LISTED; i++) {
      const jwtkit_key *k = jwtkit_jwks_get(f->o.jwks, i);
      const char *kid = jwtkit_key_kid(k);
      jwtkit_alg ka = jwtkit_key_alg(k);
      fputs(i ? ", " : "", out);
      if (kid != NULL) put_safe(out, kid, 64);
      else fputs("(no kid)", out);
      fprintf(out, " %s", ka == JWTKIT_ALG_UNSPEC ? "(no alg)" : jwtkit_alg_name(ka));
    }
    fputs(n == 0 ? "none)\n" : ")\n", out);
    return 1;
  }
  fputc('\n', out);
  return 0;
}

size_t gate_check_fetch(gw_state *st, FILE *out) {
  const gw_config *c = gw_state_config(st);
  size_t ns = gw_state_nsources(st), failed = 0;
  fetched *f = calloc(ns ? ns : 1, sizeof *f);
  if (f == NULL) {
    fprintf(out, "out of memory\n");
    return c->nroutes ? c->nroutes : 1;
  }
  for (size_t i = 0; i < c->nroutes; i++) {
    const gw_route_cfg *rc = &c->routes[i];
    const char *url = gw_route_source_url(rc);
    if (url == NULL) {
      fprintf(out, "route %s: no jwks_url (key files only)\n", rc->name);
      continue;
    }
    size_t s = 0;
    for (; s < ns; s++) {
      const gw_jwks_def *d = gw_source_def(gw_state_source(st, s));
      if (strcmp(d->url, url) == 0 && d->discovery == rc->issuer_discovery && d->rsa_default == gw_route_rsa_default(rc))
        break;
    }
    if (s == ns) { /* cannot happen: every jwks_url has its source */
      fprintf(out, "route %s: %s: FAILED (no source)\n", rc->name, url);
      failed++;
      continue;
    }
    if (!f[s].done) fetch_source(gw_state_source(st, s), &f[s]);
    failed += report_route(out, rc, &f[s]);
  }
  for (size_t s = 0; s < ns; s++) gw_fetch_outcome_clear(&f[s].o);
  free(f);
  return failed;
}
