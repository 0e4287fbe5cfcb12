/* /metrics: the core's counters, the sources, the connection guard and the
 * server's own counters in the Prometheus text format (common/prom.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/prom.h"
#include "connguard.h"
#include "core/alloc.h"
#include "gate_internal.h"

#define P "jwtkit_gate_"

static uint64_t ld(atomic_ulong *a) { return atomic_load(a); }

static void counter(jk_buf *b, const char *name, const char *help, uint64_t v) {
  jk_prom_family(b, name, "counter", help);
  jk_prom_u64(b, name, NULL, v);
}

static void gauge(jk_buf *b, const char *name, const char *help, int64_t v) {
  jk_prom_family(b, name, "gauge", help);
  jk_prom_i64(b, name, NULL, v);
}

static void decisions(jk_buf *b) {
  jk_prom_family(b, P "decisions_total", "counter", "Authorization decisions by result and reason.");
  char lb[48];
  for (int r = 0; r < GW_R_COUNT; r++) {
    uint64_t v = ld(&gw_stats.decisions[r]);
    if (r >= GW_R_LIB_BASE) {
      /* library codes: the common ones always, the others once seen */
      jwtkit_err e = (jwtkit_err)(r - GW_R_LIB_BASE);
      if (e == JWTKIT_OK || strcmp(jwtkit_errname(e), "UNKNOWN") == 0) continue;
      if (v == 0 && e != JWTKIT_ERR_MALFORMED && e != JWTKIT_ERR_BAD_SIGNATURE && e != JWTKIT_ERR_EXPIRED &&
          e != JWTKIT_ERR_UNKNOWN_KID && e != JWTKIT_ERR_ALG_NOT_ALLOWED && e != JWTKIT_ERR_CLAIM_MISMATCH)
        continue;
    }
    const char *labels[] = {"result", r < GW_R_ALLOW_COUNT ? "allow" : "deny", "reason",
                            gw_reason_label(r, lb, sizeof lb), NULL};
    jk_prom_u64(b, P "decisions_total", labels, v);
  }
}

static void legacy(jk_buf *b, gw_state *st, int64_t now) {
  counter(b, P "legacy_hs256_accepted_total", "HS256 tokens accepted in migration mode.", ld(&gw_stats.legacy_accepted));
  gauge(b, P "legacy_hs256_accepted_last_minute", "HS256 acceptances in the last 60 seconds.",
        (int64_t)gw_metrics_legacy_last_minute(now));
  counter(b, P "legacy_hs256_refused_after_deadline_total",
          "Valid legacy HS256 tokens refused because the deadline passed.", ld(&gw_stats.legacy_refused_after_deadline));
  if (st == NULL) return;
  int any = 0;
  for (size_t i = 0; i < gw_state_config(st)->nroutes; i++) {
    gw_route_info ri;
    gw_state_route_info(st, i, &ri);
    if (!ri.legacy) continue;
    if (!any) jk_prom_family(b, P "legacy_hs256_deadline_seconds", "gauge", "Migration deadline (Unix time) per route.");
    any = 1;
    const char *labels[] = {"route", ri.cfg->name, NULL};
    jk_prom_i64(b, P "legacy_hs256_deadline_seconds", labels, ri.legacy_deadline);
  }
}

static void cache(jk_buf *b, gw_state *st) {
  counter(b, P "token_cache_hits_total", "Verified-token cache hits.", ld(&gw_stats.tc_hits));
  counter(b, P "token_cache_misses_total", "Verified-token cache misses.", ld(&gw_stats.tc_misses));
  counter(b, P "token_cache_inserts_total", "Allow decisions stored in the cache.", ld(&gw_stats.tc_inserts));
  counter(b, P "token_cache_evictions_total", "Entries evicted to stay within capacity.", ld(&gw_stats.tc_evictions));
  counter(b, P "token_cache_expired_total", "Entries dropped at the token's exp.", ld(&gw_stats.tc_expired));
  counter(b, P "token_cache_invalidated_total", "Entries dropped because their key left the JWK Set.",
          ld(&gw_stats.tc_invalidated));
  gauge(b, P "token_cache_entries", "Entries in the verified-token cache.",
        st ? (int64_t)gw_state_cache_entries(st) : 0);
  gauge(b, P "token_cache_capacity", "Capacity of the verified-token cache (0: disabled).",
        st ? (int64_t)gw_state_cache_capacity(st) : 0);
}

static void refetches(jk_buf *b) {
  const char *name = P "jwks_refetch_total";
  jk_prom_family(b, name, "counter",
                 "Unknown-kid refetches: triggered, refused by the cooldown, requests that waited.");
  jk_prom_u64(b, name, (const char *[]){"outcome", "triggered", NULL}, ld(&gw_stats.refetch_triggered));
  jk_prom_u64(b, name, (const char *[]){"outcome", "cooldown", NULL}, ld(&gw_stats.refetch_cooldown));
  jk_prom_u64(b, name, (const char *[]){"outcome", "waited", NULL}, ld(&gw_stats.refetch_waited));
  counter(b, P "jwks_stale_verifications_total", "Tokens checked against a JWK Set past its cache lifetime.",
          ld(&gw_stats.stale_verifications));
}

static const char *const k_fam[][3] = {
    {P "jwks_fetch_total", "counter", "JWK Set fetches by result."},
    {P "jwks_stale", "gauge", "1 while the JWK Set is served past its cache lifetime."},
    {P "jwks_ready", "gauge", "1 when a JWK Set is held."},
    {P "jwks_cache_age_seconds", "gauge", "Seconds since the JWK Set was last fetched or revalidated."},
    {P "jwks_expires_in_seconds", "gauge", "Seconds until the cached JWK Set's lifetime ends (negative: stale)."},
    {P "jwks_keys", "gauge", "Keys in the cached JWK Set."},
    {P "jwks_issuer_max_age_seconds", "gauge",
     "The issuer's Cache-Control max-age (minus Age) in its last answer, before the clamp (-1: none seen)."},
    {P "jwks_max_age_below_min_ttl", "gauge",
     "1 when the issuer's max-age is below jwks_min_ttl (new keys may wait for an unknown-kid refetch)."},
};

static void source_sample(jk_buf *b, size_t f, const char *url, const gw_source_status *s) {
  const char *n = k_fam[f][0];
  const char *src[] = {"source", url, NULL};
  switch (f) {
    case 0:
      for (int r = 0; r < GW_FETCH_COUNT; r++) {
        const char *l[] = {"source", url, "result", gw_fetch_result_name((gw_fetch_result)r), NULL};
        jk_prom_u64(b, n, l, s->fetches[r]);
      }
      break;
    case 1:
      jk_prom_i64(b, n, src, s->stale);
      break;
    case 2:
      jk_prom_i64(b, n, src, s->have_set);
      break;
    case 3:
      jk_prom_f64(b, n, src, s->age_ms < 0 ? -1.0 : (double)s->age_ms / 1000.0);
      break;
    case 4:
      jk_prom_f64(b, n, src, (double)s->expires_in_ms / 1000.0);
      break;
    case 5:
      jk_prom_u64(b, n, src, s->keys);
      break;
    case 6:
      jk_prom_i64(b, n, src, s->issuer_max_age);
      break;
    default:
      jk_prom_i64(b, n, src, s->max_age_below_min_ttl);
  }
}

static int sources(jk_buf *b, gw_state *st) {
  size_t ns = st ? gw_state_nsources(st) : 0;
  if (ns == 0) return 0;
  gw_source_status *ss = calloc(ns, sizeof *ss);
  if (ss == NULL) return -1;
  int64_t now = jk_mono_ms();
  for (size_t i = 0; i < ns; i++) gw_source_status_get(gw_state_source(st, i), now, &ss[i]);
  for (size_t f = 0; f < sizeof k_fam / sizeof k_fam[0]; f++) {
    jk_prom_family(b, k_fam[f][0], k_fam[f][1], k_fam[f][2]);
    for (size_t i = 0; i < ns; i++) source_sample(b, f, gw_source_def(gw_state_source(st, i))->url, &ss[i]);
  }
  free(ss);
  return 0;
}

static void connections(jk_buf *b, struct svc_guard *guard) {
  svc_guard_stats cs;
  svc_guard_get_stats(guard, &cs);
  gauge(b, P "connections_open", "Open HTTP connections (reserve included).", cs.open);
  const char *name = P "connections_closed_total";
  jk_prom_family(b, name, "counter", "Connections closed by the connection guard, by reason.");
  for (int i = 0; i < SVC_GC_COUNT; i++)
    jk_prom_u64(b, name, (const char *[]){"reason", svc_guard_reason_name(i), NULL}, cs.closed[i]);
  name = P "connections_reserve_total";
  jk_prom_family(b, name, "counter", "Connections admitted into the reserve, and their requests refused (503).");
  jk_prom_u64(b, name, (const char *[]){"outcome", "admitted", NULL}, cs.reserve_admitted);
  jk_prom_u64(b, name, (const char *[]){"outcome", "refused", NULL}, cs.reserve_refused);
}

static void server(jk_buf *b, gw_state *st) {
  counter(b, P "claim_headers_dropped_total",
          "Claim headers left out of an allowed answer (claim_header_failure = allow).", ld(&gw_stats.headers_dropped));
  const char *name = P "config_reloads_total";
  jk_prom_family(b, name, "counter", "Configuration reloads (SIGHUP) by result.");
  jk_prom_u64(b, name, (const char *[]){"result", "ok", NULL}, ld(&g_gate.reloads_ok));
  jk_prom_u64(b, name, (const char *[]){"result", "error", NULL}, ld(&g_gate.reloads_failed));
  gauge(b, P "config_generation", "Generation of the configuration in use (1 at start).",
        st ? (int64_t)gw_state_generation(st) : 0);
  gauge(b, P "suspended_requests", "Requests waiting for an unknown-kid refetch.", atomic_load(&g_gate.suspended));
  gauge(b, P "start_time_seconds", "Start time of the process (Unix time).", g_gate.started_at);
  jk_prom_family(b, P "build_info", "gauge", "Build information.");
  jk_prom_u64(b, P "build_info", (const char *[]){"version", jwtkit_version(), NULL}, 1);
}

int gate_metrics_render(gw_state *st, struct svc_guard *guard, char **out, size_t *outlen) {
  jk_buf b;
  jk_buf_init_max(&b, 4u << 20);
  decisions(&b);
  legacy(&b, st, jk_now());
  cache(&b, st);
  refetches(&b);
  if (sources(&b, st) != 0) b.oom = 1;
  connections(&b, guard);
  server(&b, st);
  *out = jk_buf_take(&b, outlen);
  return *out != NULL ? 0 : -1;
}
