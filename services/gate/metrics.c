/* Counters (lock-free atomics) and the Prometheus text exposition. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connguard.h"
#include "gate_internal.h"

gate_metrics g_metrics;

void gate_metrics_init(void) {
  for (size_t i = 0; i < GR_COUNT; i++) atomic_init(&g_metrics.decisions[i], 0);
  for (size_t i = 0; i < 60; i++) atomic_init(&g_metrics.legacy_minute[i], 0);
  g_metrics.started_at = gate_now();
}

static const char *const gate_reasons[GR_LIB_BASE] = {
    [GR_VERIFIED] = "verified",
    [GR_CACHED] = "cached",
    [GR_LEGACY] = "legacy_hs256",
    [GR_LEGACY_CACHED] = "legacy_hs256_cached",
    [GR_MISSING_TOKEN] = "missing_token",
    [GR_AMBIGUOUS_TOKEN] = "ambiguous_token",
    [GR_TOKEN_TOO_LARGE] = "token_too_large",
    [GR_BAD_AUTHORIZATION] = "bad_authorization",
    [GR_NO_ROUTE] = "no_route",
    [GR_BAD_URI] = "bad_uri",
    [GR_JWKS_NOT_READY] = "jwks_not_ready",
    [GR_LEGACY_DEADLINE_PASSED] = "legacy_deadline_passed",
    [GR_CLAIM_HEADER] = "claim_header",
    [GR_INTERNAL] = "internal",
};

int gate_reason_for_err(jwtkit_err e) {
  if ((int)e <= 0 || (int)e >= GATE_NLIBERR) return GR_INTERNAL;
  return GR_LIB_BASE + (int)e;
}

const char *gate_reason_label(int reason, char *buf, size_t cap) {
  if (reason >= 0 && reason < GR_LIB_BASE) return gate_reasons[reason];
  const char *n = jwtkit_errname((jwtkit_err)(reason - GR_LIB_BASE));
  size_t i = 0;
  for (; n[i] && i + 1 < cap; i++) buf[i] = (char)tolower((unsigned char)n[i]);
  buf[i] = '\0';
  return buf;
}

#define SEC_SHIFT 24
#define CNT_MASK ((UINT64_C(1) << SEC_SHIFT) - 1)

void gate_metrics_legacy_accept(int64_t now) {
  atomic_fetch_add(&g_metrics.legacy_accepted, 1);
  atomic_uint_fast64_t *slot = &g_metrics.legacy_minute[(uint64_t)now % 60];
  uint64_t old = atomic_load(slot), nv;
  do {
    if ((old >> SEC_SHIFT) == (uint64_t)now)
      nv = (old & CNT_MASK) == CNT_MASK ? old : old + 1;
    else
      nv = ((uint64_t)now << SEC_SHIFT) | 1;
  } while (!atomic_compare_exchange_weak(slot, &old, nv));
}

uint64_t gate_metrics_legacy_last_minute(int64_t now) {
  uint64_t sum = 0;
  for (size_t i = 0; i < 60; i++) {
    uint64_t v = atomic_load(&g_metrics.legacy_minute[i]);
    int64_t sec = (int64_t)(v >> SEC_SHIFT);
    if (v != 0 && sec <= now && now - sec < 60) sum += v & CNT_MASK;
  }
  return sum;
}

/* ------------------------------------------------------------ render */

typedef struct sbuf {
  char *p;
  size_t len, cap;
  int failed;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void sb_printf(sbuf *b, const char *fmt, ...) {
  if (b->failed) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
      b->failed = 1;
      return;
    }
    if ((size_t)n < b->cap - b->len) {
      b->len += (size_t)n;
      return;
    }
    size_t nc = b->cap * 2;
    if (nc > (4u << 20)) {
      b->failed = 1;
      return;
    }
    char *np = realloc(b->p, nc);
    if (np == NULL) {
      b->failed = 1;
      return;
    }
    b->p = np;
    b->cap = nc;
  }
}

/* label value escaping (Prometheus text format: \\, \" and \n) */
static void label_escape(const char *s, char *out, size_t cap) {
  size_t o = 0;
  for (; *s && o + 3 < cap; s++) {
    if (*s == '\\' || *s == '"') {
      out[o++] = '\\';
      out[o++] = *s;
    } else if (*s == '\n') {
      out[o++] = '\\';
      out[o++] = 'n';
    } else {
      out[o++] = *s;
    }
  }
  out[o] = '\0';
}

static unsigned long ld(atomic_ulong *a) { return atomic_load(a); }

int gate_metrics_render(gate_state *st, char **out, size_t *outlen) {
  sbuf b = {malloc(16384), 0, 16384, 0};
  if (b.p == NULL) return -1;
  int64_t now = gate_now();
  char lb[48];

  sb_printf(&b, "# HELP jwtkit_gate_decisions_total Authorization decisions by result and reason.\n"
                "# TYPE jwtkit_gate_decisions_total counter\n");
  for (int r = 0; r < GR_COUNT; r++) {
    unsigned long v = ld(&g_metrics.decisions[r]);
    if (r >= GR_LIB_BASE) {
      /* library codes: the common ones always, the others once seen */
      jwtkit_err e = (jwtkit_err)(r - GR_LIB_BASE);
      if (e == JWTKIT_OK || strcmp(jwtkit_errname(e), "UNKNOWN") == 0) continue;
      if (v == 0 && e != JWTKIT_ERR_MALFORMED && e != JWTKIT_ERR_BAD_SIGNATURE && e != JWTKIT_ERR_EXPIRED &&
          e != JWTKIT_ERR_UNKNOWN_KID && e != JWTKIT_ERR_ALG_NOT_ALLOWED && e != JWTKIT_ERR_CLAIM_MISMATCH)
        continue;
    }
    sb_printf(&b, "jwtkit_gate_decisions_total{result=\"%s\",reason=\"%s\"} %lu\n",
              r < GR_ALLOW_COUNT ? "allow" : "deny", gate_reason_label(r, lb, sizeof lb), v);
  }

  sb_printf(&b,
            "# HELP jwtkit_gate_legacy_hs256_accepted_total HS256 tokens accepted in migration mode.\n"
            "# TYPE jwtkit_gate_legacy_hs256_accepted_total counter\n"
            "jwtkit_gate_legacy_hs256_accepted_total %lu\n"
            "# HELP jwtkit_gate_legacy_hs256_accepted_last_minute HS256 acceptances in the last 60 seconds.\n"
            "# TYPE jwtkit_gate_legacy_hs256_accepted_last_minute gauge\n"
            "jwtkit_gate_legacy_hs256_accepted_last_minute %llu\n"
            "# HELP jwtkit_gate_legacy_hs256_refused_after_deadline_total Valid legacy HS256 tokens refused because the deadline passed.\n"
            "# TYPE jwtkit_gate_legacy_hs256_refused_after_deadline_total counter\n"
            "jwtkit_gate_legacy_hs256_refused_after_deadline_total %lu\n",
            ld(&g_metrics.legacy_accepted), (unsigned long long)gate_metrics_legacy_last_minute(now),
            ld(&g_metrics.legacy_refused_after_deadline));
  if (st != NULL) {
    int any = 0;
    for (size_t i = 0; i < st->nroutes; i++) {
      const gate_route *r = &st->routes[i];
      if (r->legacy == NULL) continue;
      if (!any)
        sb_printf(&b, "# HELP jwtkit_gate_legacy_hs256_deadline_seconds Migration deadline (Unix time) per route.\n"
                      "# TYPE jwtkit_gate_legacy_hs256_deadline_seconds gauge\n");
      any = 1;
      sb_printf(&b, "jwtkit_gate_legacy_hs256_deadline_seconds{route=\"%s\"} %lld\n", r->cfg->name,
                (long long)r->legacy_deadline);
    }
  }

  size_t entries = st && st->cache ? gate_tcache_count(st->cache) : 0;
  sb_printf(&b,
            "# HELP jwtkit_gate_token_cache_hits_total Verified-token cache hits.\n"
            "# TYPE jwtkit_gate_token_cache_hits_total counter\n"
            "jwtkit_gate_token_cache_hits_total %lu\n"
            "# HELP jwtkit_gate_token_cache_misses_total Verified-token cache misses.\n"
            "# TYPE jwtkit_gate_token_cache_misses_total counter\n"
            "jwtkit_gate_token_cache_misses_total %lu\n"
            "# HELP jwtkit_gate_token_cache_inserts_total Allow decisions stored in the cache.\n"
            "# TYPE jwtkit_gate_token_cache_inserts_total counter\n"
            "jwtkit_gate_token_cache_inserts_total %lu\n"
            "# HELP jwtkit_gate_token_cache_evictions_total Entries evicted to stay within capacity.\n"
            "# TYPE jwtkit_gate_token_cache_evictions_total counter\n"
            "jwtkit_gate_token_cache_evictions_total %lu\n"
            "# HELP jwtkit_gate_token_cache_expired_total Entries dropped at the token's exp.\n"
            "# TYPE jwtkit_gate_token_cache_expired_total counter\n"
            "jwtkit_gate_token_cache_expired_total %lu\n"
            "# HELP jwtkit_gate_token_cache_invalidated_total Entries dropped because their key left the JWK Set.\n"
            "# TYPE jwtkit_gate_token_cache_invalidated_total counter\n"
            "jwtkit_gate_token_cache_invalidated_total %lu\n"
            "# HELP jwtkit_gate_token_cache_entries Entries in the verified-token cache.\n"
            "# TYPE jwtkit_gate_token_cache_entries gauge\n"
            "jwtkit_gate_token_cache_entries %zu\n"
            "# HELP jwtkit_gate_token_cache_capacity Capacity of the verified-token cache (0: disabled).\n"
            "# TYPE jwtkit_gate_token_cache_capacity gauge\n"
            "jwtkit_gate_token_cache_capacity %zu\n",
            ld(&g_metrics.tc_hits), ld(&g_metrics.tc_misses), ld(&g_metrics.tc_inserts), ld(&g_metrics.tc_evictions),
            ld(&g_metrics.tc_expired),
            ld(&g_metrics.tc_invalidated), entries, st && st->cache ? gate_tcache_capacity(st->cache) : (size_t)0);

  sb_printf(&b,
            "# HELP jwtkit_gate_jwks_refetch_total Unknown-kid refetches: triggered, refused by the cooldown, requests that waited.\n"
            "# TYPE jwtkit_gate_jwks_refetch_total counter\n"
            "jwtkit_gate_jwks_refetch_total{outcome=\"triggered\"} %lu\n"
            "jwtkit_gate_jwks_refetch_total{outcome=\"cooldown\"} %lu\n"
            "jwtkit_gate_jwks_refetch_total{outcome=\"waited\"} %lu\n"
            "# HELP jwtkit_gate_jwks_stale_verifications_total Tokens checked against a JWK Set past its cache lifetime.\n"
            "# TYPE jwtkit_gate_jwks_stale_verifications_total counter\n"
            "jwtkit_gate_jwks_stale_verifications_total %lu\n",
            ld(&g_metrics.refetch_triggered), ld(&g_metrics.refetch_cooldown), ld(&g_metrics.refetch_waited),
            ld(&g_metrics.stale_verifications));

  if (st != NULL && st->nsources > 0) {
    static const char *const fam[][3] = {
        {"jwtkit_gate_jwks_fetch_total", "counter", "JWK Set fetches by result."},
        {"jwtkit_gate_jwks_stale", "gauge", "1 while the JWK Set is served past its cache lifetime."},
        {"jwtkit_gate_jwks_ready", "gauge", "1 when a JWK Set is held."},
        {"jwtkit_gate_jwks_cache_age_seconds", "gauge", "Seconds since the JWK Set was last fetched or revalidated."},
        {"jwtkit_gate_jwks_expires_in_seconds", "gauge", "Seconds until the cached JWK Set's lifetime ends (negative: stale)."},
        {"jwtkit_gate_jwks_keys", "gauge", "Keys in the cached JWK Set."},
        {"jwtkit_gate_jwks_issuer_max_age_seconds", "gauge",
         "The issuer's Cache-Control max-age (minus Age) in its last answer, before the clamp (-1: none seen)."},
        {"jwtkit_gate_jwks_max_age_below_min_ttl", "gauge",
         "1 when the issuer's max-age is below jwks_min_ttl (new keys may wait for an unknown-kid refetch)."},
    };
    size_t ns = st->nsources;
    gate_source_status *ss = calloc(ns, sizeof *ss);
    if (ss == NULL) {
      free(b.p);
      return -1;
    }
    for (size_t i = 0; i < ns; i++) gate_source_get_status(st->sources[i], &ss[i]);
    for (size_t f = 0; f < sizeof fam / sizeof fam[0]; f++) {
      sb_printf(&b, "# HELP %s %s\n# TYPE %s %s\n", fam[f][0], fam[f][2], fam[f][0], fam[f][1]);
      for (size_t i = 0; i < ns; i++) {
        char url[600];
        label_escape(gate_source_url(st->sources[i]), url, sizeof url);
        const gate_source_status *s = &ss[i];
        switch (f) {
          case 0:
            for (int r = 0; r < GF_COUNT; r++)
              sb_printf(&b, "%s{source=\"%s\",result=\"%s\"} %llu\n", fam[f][0], url,
                        gate_fetch_result_name((gate_fetch_result)r), (unsigned long long)s->fetches[r]);
            break;
          case 1:
            sb_printf(&b, "%s{source=\"%s\"} %d\n", fam[f][0], url, s->stale);
            break;
          case 2:
            sb_printf(&b, "%s{source=\"%s\"} %d\n", fam[f][0], url, s->have_set);
            break;
          case 3:
            sb_printf(&b, "%s{source=\"%s\"} %.3f\n", fam[f][0], url, s->age_ms < 0 ? -1.0 : (double)s->age_ms / 1000.0);
            break;
          case 4:
            sb_printf(&b, "%s{source=\"%s\"} %.3f\n", fam[f][0], url, (double)s->expires_in_ms / 1000.0);
            break;
          case 5:
            sb_printf(&b, "%s{source=\"%s\"} %zu\n", fam[f][0], url, s->keys);
            break;
          case 6:
            sb_printf(&b, "%s{source=\"%s\"} %lld\n", fam[f][0], url, (long long)s->issuer_max_age);
            break;
          case 7:
            sb_printf(&b, "%s{source=\"%s\"} %d\n", fam[f][0], url, s->max_age_below_min_ttl);
            break;
        }
      }
    }
    free(ss);
  }

  svc_guard_stats cs;
  svc_guard_get_stats(g_gate_guard, &cs);
  sb_printf(&b,
            "# HELP jwtkit_gate_connections_open Open HTTP connections (reserve included).\n"
            "# TYPE jwtkit_gate_connections_open gauge\n"
            "jwtkit_gate_connections_open %u\n"
            "# HELP jwtkit_gate_connections_closed_total Connections closed by the connection guard, by reason.\n"
            "# TYPE jwtkit_gate_connections_closed_total counter\n",
            cs.open);
  for (int i = 0; i < SVC_GC_COUNT; i++)
    sb_printf(&b, "jwtkit_gate_connections_closed_total{reason=\"%s\"} %llu\n", svc_guard_reason_name(i),
              (unsigned long long)cs.closed[i]);
  sb_printf(&b,
            "# HELP jwtkit_gate_connections_reserve_total Connections admitted into the reserve, and their requests "
            "refused (503).\n"
            "# TYPE jwtkit_gate_connections_reserve_total counter\n"
            "jwtkit_gate_connections_reserve_total{outcome=\"admitted\"} %llu\n"
            "jwtkit_gate_connections_reserve_total{outcome=\"refused\"} %llu\n",
            (unsigned long long)cs.reserve_admitted, (unsigned long long)cs.reserve_refused);

  sb_printf(&b,
            "# HELP jwtkit_gate_claim_headers_dropped_total Claim headers left out of an allowed answer (claim_header_failure = allow).\n"
            "# TYPE jwtkit_gate_claim_headers_dropped_total counter\n"
            "jwtkit_gate_claim_headers_dropped_total %lu\n"
            "# HELP jwtkit_gate_config_reloads_total Configuration reloads (SIGHUP) by result.\n"
            "# TYPE jwtkit_gate_config_reloads_total counter\n"
            "jwtkit_gate_config_reloads_total{result=\"ok\"} %lu\n"
            "jwtkit_gate_config_reloads_total{result=\"error\"} %lu\n"
            "# HELP jwtkit_gate_config_generation Generation of the configuration in use (1 at start).\n"
            "# TYPE jwtkit_gate_config_generation gauge\n"
            "jwtkit_gate_config_generation %llu\n"
            "# HELP jwtkit_gate_suspended_requests Requests waiting for an unknown-kid refetch.\n"
            "# TYPE jwtkit_gate_suspended_requests gauge\n"
            "jwtkit_gate_suspended_requests %ld\n"
            "# HELP jwtkit_gate_start_time_seconds Start time of the process (Unix time).\n"
            "# TYPE jwtkit_gate_start_time_seconds gauge\n"
            "jwtkit_gate_start_time_seconds %lld\n"
            "# HELP jwtkit_gate_build_info Build information.\n"
            "# TYPE jwtkit_gate_build_info gauge\n"
            "jwtkit_gate_build_info{version=\"%s\"} 1\n",
            ld(&g_metrics.headers_dropped), ld(&g_metrics.reloads_ok), ld(&g_metrics.reloads_failed),
            (unsigned long long)(st ? st->generation : 0), (long)atomic_load(&g_metrics.suspended),
            (long long)g_metrics.started_at, jwtkit_version());
  if (b.failed) {
    free(b.p);
    return -1;
  }
  *out = b.p;
  *outlen = b.len;
  return 0;
}
