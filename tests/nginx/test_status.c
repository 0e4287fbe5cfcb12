/*
 * The page of auth_jwt_status (nginx/jwtkit_status.c), without nginx: both
 * forms carry the same numbers, a URL is escaped in each so it cannot
 * break the page, a set not fetched yet is age -1 / null, the JSON lists
 * every reason (also those at 0), and a page that does not fit its buffer
 * is reported, not cut.
 */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "jwtkit_status.h"

static int has(const jk_buf *b, const char *s) {
  if (b->p == NULL || strstr(b->p, s) == NULL) {
    fprintf(stderr, "  missing: %s\n  in: %s\n", s, b->p ? b->p : "(null)");
    return 0;
  }
  return 1;
}

int main(void) {
  jks_source src[2];
  memset(src, 0, sizeof src);
  src[0].url = "https://id.example/jwks.json";
  src[0].have_set = 1;
  src[0].gen = 2;
  src[0].keys = 3;
  src[0].age_s = 12;
  src[0].fetches[GW_FETCH_OK] = 2;
  src[0].fetches[GW_FETCH_TIMEOUT] = 1;
  src[1].url = "http://127.0.0.1:9/\"x\\y\n";
  src[1].age_s = -1;
  jks_status st;
  memset(&st, 0, sizeof st);
  st.have_counters = 1;
  st.decisions[GW_R_VERIFIED] = 5;
  st.decisions[GW_R_CACHED] = 7;
  st.decisions[GW_R_MISSING_TOKEN] = 4;
  st.decisions[JKS_R_SCOPE] = 2;
  st.refetch_waited = 1;
  st.refetch_cooldown = 40;
  st.src = src;
  st.nsrc = 2;

  jk_buf b;
  jk_buf_init(&b);
  jks_render_prom(&b, &st);
  CHECK(!b.oom);
  jk_buf_putc(&b, '\0');
  CHECK(has(&b, "jwtkit_nginx_decisions_total{result=\"allow\",reason=\"verified\"} 5\n"));
  CHECK(has(&b, "jwtkit_nginx_decisions_total{result=\"allow\",reason=\"cached\"} 7\n"));
  CHECK(has(&b, "jwtkit_nginx_decisions_total{result=\"deny\",reason=\"missing_token\"} 4\n"));
  CHECK(has(&b, "jwtkit_nginx_decisions_total{result=\"deny\",reason=\"insufficient_scope\"} 2\n"));
  CHECK(strstr(b.p, "reason=\"expired\"") == NULL); /* Prometheus: a reason at 0 is left out */
  CHECK(has(&b, "jwtkit_nginx_refetch_total{outcome=\"cooldown\"} 40\n"));
  CHECK(has(&b, "jwtkit_nginx_jwks_fetches_total{source=\"https://id.example/jwks.json\",result=\"ok\"} 2\n"));
  CHECK(has(&b, "jwtkit_nginx_jwks_fetches_total{source=\"https://id.example/jwks.json\",result=\"timeout\"} 1\n"));
  CHECK(has(&b, "jwtkit_nginx_jwks_generation{source=\"https://id.example/jwks.json\"} 2\n"));
  CHECK(has(&b, "jwtkit_nginx_jwks_keys{source=\"https://id.example/jwks.json\"} 3\n"));
  CHECK(has(&b, "jwtkit_nginx_jwks_age_seconds{source=\"http://127.0.0.1:9/\\\"x\\\\y\\n\"} -1\n"));
  jk_buf_free(&b);

  jk_buf_init(&b);
  jks_render_json(&b, &st);
  CHECK(!b.oom);
  jk_buf_putc(&b, '\0');
  CHECK(has(&b, "{\"decisions\":{\"allow\":{\"verified\":5,\"cached\":7"));
  CHECK(has(&b, "\"deny\":{\"missing_token\":4,"));
  CHECK(has(&b, "\"expired\":0")); /* JSON: every reason */
  CHECK(has(&b, "\"insufficient_scope\":2}}"));
  CHECK(has(&b, "\"refetch\":{\"waited\":1,\"cooldown\":40}"));
  CHECK(has(&b, "\"jwks\":[{\"source\":\"https://id.example/jwks.json\",\"generation\":2,\"keys\":3,"
                "\"stale\":false,\"age_seconds\":12,\"fetches\":{\"ok\":2,"));
  CHECK(has(&b, "\"timeout\":1"));
  CHECK(strstr(b.p, "\"unknown\"") == NULL && strstr(b.p, "\"ok\":0,\"malformed") == NULL); /* no non-reasons */
  CHECK(has(&b, "\"unknown_kid\":0"));
  CHECK(has(&b, "{\"source\":\"http://127.0.0.1:9/\\\"x\\\\y\\u000a\",\"generation\":0,\"keys\":0,\"stale\":false,"
                "\"age_seconds\":null,"));
  CHECK(b.len >= 4 && strcmp(b.p + b.len - 5, "}]}\n") == 0);
  jk_buf_free(&b);

  /* no shared zone: no counters, the sets only; no set: an empty list */
  st.have_counters = 0;
  st.nsrc = 0;
  jk_buf_init(&b);
  jks_render_json(&b, &st);
  jk_buf_putc(&b, '\0');
  CHECK(b.p != NULL && strcmp(b.p, "{\"jwks\":[]}\n") == 0);
  jk_buf_free(&b);
  jk_buf_init(&b);
  jks_render_prom(&b, &st);
  CHECK(b.len == 0 && !b.oom);
  jk_buf_free(&b);

  /* a page larger than its buffer: reported (the handler answers 500) */
  st.have_counters = 1;
  st.nsrc = 2;
  jk_buf_init_max(&b, 64);
  jks_render_json(&b, &st);
  CHECK(b.oom);
  jk_buf_free(&b);
  printf("nginx_status: %d checks, %d failed\n", checks, fails);
  return fails ? 1 : 0;
}
