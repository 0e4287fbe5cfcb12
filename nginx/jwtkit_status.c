/* The page of auth_jwt_status: Prometheus text or JSON (jwtkit_status.h). */
#include "jwtkit_status.h"

#include <string.h>

#include "common/prom.h"

static const char *reason_name(int i, char *lb, size_t cap) {
  return i == JKS_R_SCOPE ? "insufficient_scope" : gw_reason_label(i, lb, cap);
}

void jks_render_prom(jk_buf *b, const jks_status *s) {
  char lb[48];
  if (s->have_counters) {
    jk_prom_family(b, "jwtkit_nginx_decisions_total", "counter",
                   "requests decided by auth_jwt, by result and reason (all workers)");
    for (int i = 0; i <= JKS_R_SCOPE; i++) {
      if (s->decisions[i] == 0 && i != GW_R_VERIFIED) continue;
      const char *lab[] = {"result", i < GW_R_ALLOW_COUNT ? "allow" : "deny", "reason", reason_name(i, lb, sizeof lb),
                           NULL};
      jk_prom_u64(b, "jwtkit_nginx_decisions_total", lab, s->decisions[i]);
    }
    jk_prom_family(b, "jwtkit_nginx_refetch_total", "counter",
                   "unknown-kid refetches asked for: waited (parked), cooldown (refused at once)");
    const char *w[] = {"outcome", "waited", NULL}, *c[] = {"outcome", "cooldown", NULL};
    jk_prom_u64(b, "jwtkit_nginx_refetch_total", w, s->refetch_waited);
    jk_prom_u64(b, "jwtkit_nginx_refetch_total", c, s->refetch_cooldown);
  }
  static const char *const fam[][3] = {
      {"jwtkit_nginx_jwks_fetches_total", "counter", "JWK Set fetches by result (all workers)"},
      {"jwtkit_nginx_jwks_generation", "gauge", "generation of the set in shared memory (0: none)"},
      {"jwtkit_nginx_jwks_keys", "gauge", "keys in the set this worker parsed"},
      {"jwtkit_nginx_jwks_stale", "gauge", "1 while the set is used past its lifetime"},
      {"jwtkit_nginx_jwks_age_seconds", "gauge", "since the last good fetch or 304 (-1: none)"}};
  for (size_t f = 0; s->nsrc > 0 && f < sizeof fam / sizeof fam[0]; f++) {
    jk_prom_family(b, fam[f][0], fam[f][1], fam[f][2]);
    for (size_t i = 0; i < s->nsrc; i++) {
      const jks_source *js = &s->src[i];
      const char *lab[] = {"source", js->url, NULL};
      if (f == 0) {
        for (int r = 0; r < GW_FETCH_COUNT; r++) {
          const char *l2[] = {"source", js->url, "result", gw_fetch_result_name((gw_fetch_result)r), NULL};
          if (js->fetches[r] != 0 || r == GW_FETCH_OK) jk_prom_u64(b, fam[f][0], l2, js->fetches[r]);
        }
      } else if (f == 1) {
        jk_prom_u64(b, fam[f][0], lab, js->have_set ? js->gen : 0);
      } else if (f == 2) {
        jk_prom_u64(b, fam[f][0], lab, js->keys);
      } else if (f == 3) {
        jk_prom_u64(b, fam[f][0], lab, (uint64_t)(js->have_set && js->stale));
      } else {
        jk_prom_i64(b, fam[f][0], lab, js->age_s);
      }
    }
  }
}

static void json_key(jk_buf *b, const char *k, int *first) {
  if (!*first) jk_buf_putc(b, ',');
  *first = 0;
  jk_buf_json_str_lossy(b, k, strlen(k));
  jk_buf_putc(b, ':');
}

static void json_u64(jk_buf *b, const char *k, uint64_t v, int *first) {
  json_key(b, k, first);
  jk_buf_printf(b, "%llu", (unsigned long long)v);
}

void jks_render_json(jk_buf *b, const jks_status *s) {
  char lb[48];
  int first = 1;
  jk_buf_putc(b, '{');
  if (s->have_counters) {
    json_key(b, "decisions", &first);
    jk_buf_putc(b, '{');
    int f2 = 1;
    for (int allow = 1; allow >= 0; allow--) {
      json_key(b, allow ? "allow" : "deny", &f2);
      jk_buf_putc(b, '{');
      int f3 = 1;
      for (int i = 0; i <= JKS_R_SCOPE; i++) {
        if ((i < GW_R_ALLOW_COUNT) != allow) continue;
        const char *name = reason_name(i, lb, sizeof lb);
        /* the library's codes that are not errors or not codes (ok, unknown) never happen */
        if (s->decisions[i] == 0 && (strcmp(name, "ok") == 0 || strcmp(name, "unknown") == 0)) continue;
        json_u64(b, name, s->decisions[i], &f3);
      }
      jk_buf_putc(b, '}');
    }
    jk_buf_putc(b, '}');
    json_key(b, "refetch", &first);
    jk_buf_putc(b, '{');
    f2 = 1;
    json_u64(b, "waited", s->refetch_waited, &f2);
    json_u64(b, "cooldown", s->refetch_cooldown, &f2);
    jk_buf_putc(b, '}');
  }
  json_key(b, "jwks", &first);
  jk_buf_putc(b, '[');
  for (size_t i = 0; i < s->nsrc; i++) {
    const jks_source *js = &s->src[i];
    int f2 = 1;
    jk_buf_puts(b, i ? ",{" : "{");
    json_key(b, "source", &f2);
    jk_buf_json_str_lossy(b, js->url, strlen(js->url));
    json_u64(b, "generation", js->have_set ? js->gen : 0, &f2);
    json_u64(b, "keys", js->keys, &f2);
    json_key(b, "stale", &f2);
    jk_buf_puts(b, js->have_set && js->stale ? "true" : "false");
    json_key(b, "age_seconds", &f2);
    if (js->age_s < 0) jk_buf_puts(b, "null");
    else jk_buf_int(b, js->age_s);
    json_key(b, "fetches", &f2);
    jk_buf_putc(b, '{');
    int f3 = 1;
    for (int r = 0; r < GW_FETCH_COUNT; r++)
      json_u64(b, gw_fetch_result_name((gw_fetch_result)r), js->fetches[r], &f3);
    jk_buf_puts(b, "}}");
  }
  jk_buf_puts(b, "]}\n");
}
