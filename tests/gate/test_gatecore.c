/*
 * The gateway core through its interface (services/gatecore/gatecore.h),
 * with the time passed in and a fake transport that records what the core
 * asks for: no thread, no network, no clock, so every edge is hit on
 * purpose.
 *
 *   answers    what a fetch's answer means: status, body, Cache-Control
 *              (clamping, Age, no-cache), 304 only for If-None-Match
 *   refresh    start-up fetch, refresh ahead of expiry with If-None-Match,
 *              a 304 renewing the lifetime
 *   refetch    unknown-kid refetches: one at a time, one per cooldown from
 *              the start of the previous one, failed ones counted; a
 *              background refresh neither delays one nor restarts the
 *              cooldown; parked requests resumed when a fetch that started
 *              after them ends; at most GW_MAX_WAITERS parked
 *   stale      failures keep the set past its lifetime, backoff 1, 2, 4 s up
 *              to the cooldown, the set dropped at the stale bound
 *   max-age    an issuer max-age below jwks_min_ttl warned about once per
 *              value, and again on request
 *   decisions  a state built from a configuration set key by key: no set
 *              yet, allow and cache, unknown kid, the challenges, no route
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/attr.h"
#include "common/log.h"
#include "gatecore.h"

#include "check.h"

/* ------------------------------------------------------------ the log */

static char g_logpath[] = "/tmp/jwtkit-gatecore-log.XXXXXX";
static int g_logfd = -1;
static off_t g_logmark;

/* Count from here on. */
static void log_mark(void) { g_logmark = lseek(g_logfd, 0, SEEK_END); }

/* Occurrences of `what` (non-empty) logged since the mark. */
static int logged(const char *what) {
  off_t end = lseek(g_logfd, 0, SEEK_END);
  size_t n = (size_t)(end - g_logmark);
  char *buf = malloc(n + 1);
  int count = 0;
  if (buf != NULL && pread(g_logfd, buf, n, g_logmark) == (ssize_t)n) {
    buf[n] = '\0';
    for (const char *p = buf; (p = strstr(p, what)) != NULL; p += strlen(what)) count++;
  }
  free(buf);
  return count;
}

/* ------------------------------------------------------- fake transport */

typedef struct fake {
  int starts;
  gw_fetch_req last;
  int parked, resumed, cancels, closes;
  void *resumed_w[2 * GW_MAX_WAITERS];
} fake;

static void *f_open(void *ctx, gw_source *s) {
  (void)s;
  return ctx;
}
static void f_start(void *h, const gw_fetch_req *req) {
  fake *f = h;
  f->starts++;
  f->last = *req;
}
static void f_cancel(void *h) { ((fake *)h)->cancels++; }
static void f_close(void *h) { ((fake *)h)->closes++; }
static void f_park(void *ctx, void *w) {
  (void)w;
  ((fake *)ctx)->parked++;
}
static void f_resume(void *ctx, void *w) {
  fake *f = ctx;
  if (f->resumed < (int)(sizeof f->resumed_w / sizeof f->resumed_w[0])) f->resumed_w[f->resumed] = w;
  f->resumed++;
}

static gw_transport transport(fake *f) {
  memset(f, 0, sizeof *f);
  gw_transport t = {f_open, f_start, f_cancel, f_close, f_park, f_resume, f};
  return t;
}

/* --------------------------------------------------------------- keys */

static jwtkit_key *g_k1, *g_k2;
static char g_set1[2048], g_set12[4096], g_set2[2048];

static void keys_setup(void) {
  char *j1 = NULL, *j2 = NULL;
  size_t n;
  CHECK(jwtkit_key_generate(&g_k1, JWTKIT_ALG_ES256, 0, NULL) == JWTKIT_OK);
  CHECK(jwtkit_key_generate(&g_k2, JWTKIT_ALG_ES256, 0, NULL) == JWTKIT_OK);
  CHECK(jwtkit_key_set_kid(g_k1, "k1", 2) == JWTKIT_OK && jwtkit_key_set_kid(g_k2, "k2", 2) == JWTKIT_OK);
  CHECK(jwtkit_key_to_jwk(g_k1, 0, &j1, &n) == JWTKIT_OK && jwtkit_key_to_jwk(g_k2, 0, &j2, &n) == JWTKIT_OK);
  snprintf(g_set1, sizeof g_set1, "{\"keys\":[%s]}", j1);
  snprintf(g_set2, sizeof g_set2, "{\"keys\":[%s]}", j2);
  snprintf(g_set12, sizeof g_set12, "{\"keys\":[%s,%s]}", j1, j2);
  jwtkit_free(j1);
  jwtkit_free(j2);
}

/* An answer from the issuer. */
static gw_fetch_resp answer(long status, const char *body, const char *cc, const char *etag) {
  gw_fetch_resp r = {GW_FETCH_OK, status, body, body ? strlen(body) : 0, cc, etag, 0, NULL};
  return r;
}

/* The defaults (30 s..1 h, 5 min without max-age, refresh 30 s ahead, 30 s
 * cooldown) with a stale bound of 100 s. */
static gw_jwks_def def(void) {
  gw_config *c = gw_config_new();
  gw_jwks_def d = {"https://issuer.test/jwks.json", 0, JWTKIT_ALG_UNSPEC, c->jwks, 0};
  gw_config_free(c);
  d.o.stale_max = 100;
  return d;
}

/* A source with the fake transport f. */
static gw_source *source(fake *f, gw_jwks_def *d) {
  gw_transport t = transport(f);
  *d = def();
  gw_source *s = gw_source_new(d, &t);
  CHECK(s != NULL);
  return s;
}

/* ------------------------------------------------------------ answers */

static int ttl_of(const char *cc, int64_t age, int64_t *max_age) {
  gw_jwks_def d = def();
  gw_fetch_resp r = answer(200, g_set1, cc, NULL);
  r.age = age;
  gw_fetch_outcome o;
  gw_fetch_evaluate(&d, 0, &r, &o);
  int ttl = o.r == GW_FETCH_OK ? (int)o.ttl : -1;
  *max_age = o.max_age;
  gw_fetch_outcome_clear(&o);
  return ttl;
}

static gw_fetch_result result_of(int sent_etag, gw_fetch_resp r, char *detail, size_t cap) {
  gw_jwks_def d = def();
  gw_fetch_outcome o;
  gw_fetch_evaluate(&d, sent_etag, &r, &o);
  if (detail) snprintf(detail, cap, "%.*s", (int)(cap > 0 ? cap - 1 : 0), o.detail);
  gw_fetch_outcome_clear(&o);
  return o.r;
}

static void test_answers(void) {
  int64_t m;
  CHECK(ttl_of("max-age=60", 0, &m) == 60 && m == 60);
  CHECK(ttl_of("public, max-age=90", 30, &m) == 60 && m == 60);     /* Age subtracted */
  CHECK(ttl_of("max-age=10", 0, &m) == 30 && m == 10);              /* below min_ttl: clamped */
  CHECK(ttl_of("max-age=20", 25, &m) == 30 && m == 0);              /* older than its max-age */
  CHECK(ttl_of("max-age=100000", 0, &m) == 3600 && m == 100000);    /* above max_ttl */
  CHECK(ttl_of("max-age=\"120\"", 0, &m) == 120 && m == 120);       /* quoted */
  CHECK(ttl_of("no-cache", 0, &m) == 30 && m == 0);
  CHECK(ttl_of("max-age=600, no-store", 0, &m) == 30 && m == 0);
  CHECK(ttl_of(NULL, 0, &m) == 300 && m == -1);                     /* none: default_ttl */
  CHECK(ttl_of("private", 0, &m) == 300 && m == -1);
  char why[256];
  CHECK(result_of(0, answer(500, "oops", NULL, NULL), why, sizeof why) == GW_FETCH_HTTP_ERROR &&
        strcmp(why, "HTTP status 500") == 0);
  CHECK(result_of(0, answer(302, "", NULL, NULL), NULL, 0) == GW_FETCH_HTTP_ERROR);
  CHECK(result_of(1, answer(304, NULL, "max-age=60", NULL), NULL, 0) == GW_FETCH_NOT_MODIFIED);
  CHECK(result_of(0, answer(304, NULL, NULL, NULL), NULL, 0) == GW_FETCH_HTTP_ERROR); /* not asked for */
  CHECK(result_of(0, answer(200, "not json", NULL, NULL), NULL, 0) == GW_FETCH_INVALID);
  CHECK(result_of(0, answer(200, "", NULL, NULL), why, sizeof why) == GW_FETCH_INVALID && strstr(why, "empty body"));
  static const char oct[] = "{\"keys\":[{\"kty\":\"oct\",\"k\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}]}";
  CHECK(result_of(0, answer(200, oct, NULL, NULL), why, sizeof why) == GW_FETCH_EMPTY && strstr(why, "1 skipped"));
  gw_fetch_resp t = {GW_FETCH_TIMEOUT, 0, NULL, 0, NULL, NULL, 0, "timed out after 5000 ms"};
  CHECK(result_of(0, t, why, sizeof why) == GW_FETCH_TIMEOUT && strcmp(why, "timed out after 5000 ms") == 0);
  CHECK(strcmp(gw_fetch_result_name(GW_FETCH_CONNECT), "connect_error") == 0);
}

/* ------------------------------------------------------------ refresh */

static uint64_t keys_in(gw_source *s, const char *kid) {
  gw_keyset *ks = gw_source_keyset(s);
  uint64_t r = ks->jwks != NULL && jwtkit_jwks_find(ks->jwks, kid, strlen(kid)) != NULL ? ks->gen : 0;
  gw_keyset_release(ks);
  return r;
}

/* A set held elsewhere (the nginx module's shared memory), published as
 * the front end parsed it: generations, expiry, routes' verifiers. */
static void test_publish(void) {
  gw_jwks_def d = def();
  gw_source *s = gw_source_new(&d, NULL);
  CHECK(s != NULL && gw_source_gen(s) == 0 && keys_in(s, "k1") == 0);
  gw_fetch_resp r = answer(200, g_set1, "max-age=60", NULL);
  gw_fetch_outcome o;
  gw_fetch_evaluate(&d, 0, &r, &o);
  CHECK(o.r == GW_FETCH_OK && o.jwks != NULL);
  gw_source_publish(s, o.jwks, 7, 5000);
  o.jwks = NULL; /* taken */
  gw_fetch_outcome_clear(&o);
  CHECK(gw_source_gen(s) == 7 && keys_in(s, "k1") == 7 && keys_in(s, "k2") == 0);
  CHECK(!gw_source_is_stale(s, 4999) && gw_source_is_stale(s, 5000));
  gw_fetch_evaluate(&d, 0, &(gw_fetch_resp){GW_FETCH_OK, 200, g_set2, strlen(g_set2), NULL, NULL, 0, NULL}, &o);
  gw_source_publish(s, o.jwks, 8, INT64_MAX);
  o.jwks = NULL;
  gw_fetch_outcome_clear(&o);
  CHECK(gw_source_gen(s) == 8 && keys_in(s, "k2") == 8 && keys_in(s, "k1") == 0 && !gw_source_is_stale(s, INT64_MAX - 1));
  gw_source_publish(s, NULL, 9, 1); /* dropped: no set, and no set is never stale */
  CHECK(gw_source_gen(s) == 9 && keys_in(s, "k2") == 0 && !gw_source_is_stale(s, 10));
  gw_source_release(s);
}

/* gw_render_json_member renders a member of a JSON object text exactly as
 * gw_render_claim renders the same claim (the nginx module's
 * $jwt_header_NAME and its $jwt_claim_NAME agree). */
static void test_render_json(void) {
  static const char pl[] = "{\"exp\":99999, \"s\":\" Zo\\u00eb 100% \",\"a\":[\"x\",\"y\"],\"c\":[\"x,y\",\"z\"],"
                           "\"m\":[\"x\", 1],\"e\":[],\"n\": 42,\"o\":{ \"k\" : [1, 2] },\"t\":true,"
                           "\"crlf\":\"a\\r\\nb\",\"ac\":[\"a\\nb\"]}";
  jwtkit_policy *p = jwtkit_policy_new();
  jwtkit_verifier *v = NULL;
  jwtkit_claims *cl = NULL;
  char *tok = NULL;
  size_t tl = 0;
  CHECK(p != NULL && jwtkit_policy_allow_alg(p, JWTKIT_ALG_ES256) == JWTKIT_OK &&
        jwtkit_policy_add_key(p, g_k1) == JWTKIT_OK && jwtkit_policy_ignore_audience(p) == JWTKIT_OK &&
        jwtkit_verifier_new(&v, p, NULL) == JWTKIT_OK);
  CHECK(jwtkit_sign(g_k1, NULL, pl, strlen(pl), &tok, &tl, NULL) == JWTKIT_OK);
  CHECK(jwtkit_verify_at(v, tok, tl, 1000, &cl, NULL) == JWTKIT_OK && cl != NULL);
  static const char *const names[] = {"exp", "s", "a", "c", "m", "e", "n", "o", "t", "crlf", "ac", "missing"};
  for (size_t i = 0; cl != NULL && i < sizeof names / sizeof names[0]; i++) {
    char a[256], b[256];
    long ra = gw_render_claim(cl, names[i], a, sizeof a);
    long rb = gw_render_json_member(pl, strlen(pl), names[i], b, sizeof b);
    CHECK(ra == rb && (ra <= 0 || memcmp(a, b, (size_t)ra) == 0));
    if (ra != rb) fprintf(stderr, "render %s: claim %ld, member %ld\n", names[i], ra, rb);
  }
  char b[64];
  CHECK(gw_render_json_member(pl, strlen(pl), "s", b, sizeof b) == 21 && memcmp(b, "%20Zo%C3%AB 100%25%20", 21) == 0);
  CHECK(gw_render_json_member(pl, strlen(pl), "o", b, sizeof b) == 11 && memcmp(b, "{\"k\":[1,2]}", 11) == 0);
  CHECK(gw_render_json_member(pl, strlen(pl), "s", b, 8) == GW_RENDER_TOO_LONG);
  CHECK(gw_render_json_member("[1]", 3, "s", b, sizeof b) == GW_RENDER_MISSING);
  CHECK(gw_render_json_member("{\"s\":", 5, "s", b, sizeof b) == GW_RENDER_MISSING);
  jwtkit_claims_free(cl);
  jwtkit_free(tok);
  jwtkit_verifier_free(v);
  jwtkit_policy_free(p);
}

static void test_refresh(void) {
  fake f;
  gw_jwks_def d;
  gw_source *s = source(&f, &d);
  if (s == NULL) return;
  log_mark();
  CHECK(gw_source_gen(s) == 0 && keys_in(s, "k1") == 0);
  /* start-up: a fetch at once, unconditional */
  gw_source_tick(s, 1000);
  CHECK(f.starts == 1 && f.last.if_none_match[0] == '\0' && strcmp(f.last.url, d.url) == 0);
  gw_source_tick(s, 1001); /* running: nothing more */
  CHECK(f.starts == 1);
  gw_fetch_resp r = answer(200, g_set1, "max-age=60", "\"e1\"");
  gw_source_fetch_done(s, 1100, &r);
  CHECK(gw_source_gen(s) == 1 && keys_in(s, "k1") == 1);
  CHECK(logged("\"event\":\"jwks_fetched\"") == 1);
  /* the refresh runs min(refresh_ahead, ttl / 2) = 30 s before expiry */
  CHECK(gw_source_tick(s, 2000) == 1100 + 30000);
  CHECK(f.starts == 1);
  CHECK(gw_source_tick(s, 31100) == 1100 + 60000 + 100 * 1000); /* fetching: the stale bound is next */
  CHECK(f.starts == 2 && strcmp(f.last.if_none_match, "\"e1\"") == 0);
  /* 304: the set stays (same generation), its lifetime starts again */
  r = answer(304, NULL, "max-age=60", NULL);
  gw_source_fetch_done(s, 31200, &r);
  CHECK(gw_source_gen(s) == 1);
  gw_source_status st;
  gw_source_status_get(s, 31200, &st);
  CHECK(st.have_set && st.keys == 1 && st.expires_in_ms == 60000 && st.age_ms == 0 && !st.stale);
  CHECK(st.fetches[GW_FETCH_OK] == 1 && st.fetches[GW_FETCH_NOT_MODIFIED] == 1);
  /* a new set replaces it with a higher generation */
  gw_source_tick(s, 31200 + 30000);
  r = answer(200, g_set12, "max-age=60", "\"e2\"");
  gw_source_fetch_done(s, 61300, &r);
  CHECK(gw_source_gen(s) == 2 && keys_in(s, "k2") == 2);
  gw_source_release(s);
  CHECK(f.cancels == 1 && f.closes == 1);
}

/* ------------------------------------------------------------ refetch */

static void test_refetch(void) {
  fake f;
  gw_jwks_def d;
  gw_source *s = source(&f, &d);
  if (s == NULL) return;
  gw_source_tick(s, 0);
  gw_fetch_resp ok1 = answer(200, g_set1, "max-age=3600", NULL), ok12 = answer(200, g_set12, "max-age=3600", NULL);
  /* the first fetch is running: a request for an unknown kid waits for it */
  unsigned long trig0 = atomic_load(&gw_stats.refetch_triggered), cool0 = atomic_load(&gw_stats.refetch_cooldown);
  int w[GW_MAX_WAITERS + 2];
  CHECK(gw_source_refetch(s, 10, &w[0]) == 1 && f.parked == 1 && f.starts == 1);
  CHECK(atomic_load(&gw_stats.refetch_triggered) == trig0); /* no set yet: the first fetch is the one */
  gw_source_fetch_done(s, 20, &ok1);
  CHECK(f.resumed == 1 && f.resumed_w[0] == &w[0]);

  /* an unknown kid: a refetch at once, the request parked until it ends */
  int64_t t0 = 100000;
  CHECK(gw_source_refetch(s, t0, &w[1]) == 1 && f.starts == 2);
  CHECK(atomic_load(&gw_stats.refetch_triggered) == trig0 + 1);
  /* one at a time: others wait for the same fetch, none starts */
  CHECK(gw_source_refetch(s, t0 + 10, &w[2]) == 1 && gw_source_refetch(s, t0 + 20, &w[3]) == 1 && f.starts == 2);
  gw_source_fetch_done(s, t0 + 50, &ok12);
  CHECK(f.resumed == 4 && keys_in(s, "k2") == 2);
  /* one per cooldown, counted from the start of the previous one */
  CHECK(gw_source_refetch(s, t0 + 29999, &w[4]) == 0 && f.starts == 2 && f.parked == 4);
  CHECK(atomic_load(&gw_stats.refetch_cooldown) == cool0 + 1);
  CHECK(gw_source_refetch(s, t0 + 30000, &w[4]) == 1 && f.starts == 3);
  /* a failed one counts */
  gw_fetch_resp down = {GW_FETCH_CONNECT, 0, NULL, 0, NULL, NULL, 0, "connection refused"};
  gw_source_fetch_done(s, t0 + 30010, &down);
  CHECK(f.resumed == 5);
  /* the failure's retry, 1 s later, is a background fetch: it neither
   * waits for the cooldown nor restarts it */
  CHECK(gw_source_tick(s, t0 + 31010) == t0 + 50 + 3600 * 1000 + 100 * 1000 && f.starts == 4);
  gw_source_fetch_done(s, t0 + 31100, &ok12);
  CHECK(gw_source_refetch(s, t0 + 59999, NULL) == 0 && f.starts == 4); /* 30 s after the failed refetch: not yet */
  int64_t t1 = t0 + 60000;
  CHECK(gw_source_refetch(s, t1, &w[5]) == 1 && f.starts == 5);
  gw_source_fetch_done(s, t1 + 10, &ok12);

  /* a background refresh in progress: the refetch runs right after it,
   * and the parked request waits for that one, not for the refresh */
  int64_t refresh_at = t1 + 10 + (3600 - 30) * 1000;
  gw_source_tick(s, refresh_at);
  CHECK(f.starts == 6);
  int64_t t2 = refresh_at + 5;
  CHECK(gw_source_refetch(s, t2, &w[6]) == 1 && f.starts == 6);
  CHECK(gw_source_refetch(s, t2 + 1, &w[7]) == 1 && f.starts == 6); /* queued already: wait */
  int resumed = f.resumed;
  gw_source_fetch_done(s, t2 + 10, &ok1); /* the refresh ends ... */
  CHECK(f.starts == 7 && f.resumed == resumed); /* ... the refetch starts, nobody resumed yet */
  gw_source_fetch_done(s, t2 + 20, &ok12);
  CHECK(f.resumed == resumed + 2);
  /* the refresh did not restart the cooldown: 30 s after the refetch, not the refresh */
  CHECK(gw_source_refetch(s, t2 + 29999, NULL) == 0 && f.starts == 7);
  CHECK(gw_source_refetch(s, t2 + 30000, NULL) == 0 && f.starts == 8); /* started; NULL never parks */
  gw_source_fetch_done(s, t2 + 30010, &ok12);

  /* at most GW_MAX_WAITERS parked on one fetch; the rest answered at once */
  int64_t t3 = t2 + 60000;
  int parked = 0;
  for (int i = 0; i < (int)GW_MAX_WAITERS + 2; i++) parked += gw_source_refetch(s, t3, &w[i]);
  CHECK(parked == (int)GW_MAX_WAITERS && f.starts == 9);
  /* stop: the parked requests are resumed, no fetch starts any more */
  resumed = f.resumed;
  gw_source_stop(s);
  CHECK(f.resumed == resumed + (int)GW_MAX_WAITERS && f.cancels == 1);
  CHECK(gw_source_refetch(s, t3 + 100000, &w[0]) == 0 && f.starts == 9);
  gw_source_fetch_done(s, t3 + 10, &ok12); /* the aborted fetch's answer still arrives */
  CHECK(gw_source_tick(s, t3 + 100000) == INT64_MAX && f.starts == 9);
  gw_source_release(s);

  /* nothing to fetch with: never parks */
  gw_source *n = gw_source_new(&d, NULL);
  CHECK(n != NULL && gw_source_refetch(n, 0, &w[0]) == 0);
  gw_source_release(n);
}

/* -------------------------------------------------------------- stale */

static void test_stale(void) {
  fake f;
  gw_jwks_def d;
  gw_source *s = source(&f, &d);
  if (s == NULL) return;
  gw_source_tick(s, 0);
  gw_fetch_resp ok = answer(200, g_set1, "max-age=40", NULL);
  gw_source_fetch_done(s, 0, &ok); /* expires at 40 s, refresh at 20 s */
  gw_fetch_resp down = {GW_FETCH_TIMEOUT, 0, NULL, 0, NULL, NULL, 0, "timed out"};
  CHECK(gw_source_tick(s, 1000) == 20000);
  /* failures: retried after 1, 2, 4 ... s, at most the cooldown (30 s) */
  log_mark();
  int64_t now = 20000, want[] = {1000, 2000, 4000, 8000, 16000, 30000, 30000};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    gw_source_tick(s, now);
    gw_source_fetch_done(s, now, &down);
    int64_t next = gw_source_tick(s, now);
    CHECK(next == now + want[i]);
    now = next;
  }
  CHECK(f.starts == 8 && now == 111000);
  CHECK(logged("\"event\":\"jwks_fetch_failed\"") == 7);
  /* past its lifetime (40 s) the set is still used, said to be stale, and
   * that is logged once for the outage (the failure at 51 s) */
  CHECK(logged("\"event\":\"jwks_stale\"") == 1 && logged("\"serving_stale\":true") == 2);
  CHECK(!gw_source_is_stale(s, 39999) && gw_source_is_stale(s, 40000));
  gw_source_status st;
  gw_source_status_get(s, 50000, &st);
  CHECK(st.have_set && st.stale && st.expires_in_ms == -10000 && st.fetches[GW_FETCH_TIMEOUT] == 7);
  CHECK(keys_in(s, "k1") == 1);
  /* the stale bound: expiry + stale_max (100 s) */
  gw_source_tick(s, now);
  gw_source_fetch_done(s, now, &down); /* next retry at 141 s */
  CHECK(gw_source_tick(s, 139999) == 140000 && keys_in(s, "k1") == 1 && gw_source_gen(s) == 1);
  CHECK(gw_source_tick(s, 140000) == 141000);
  CHECK(gw_source_gen(s) == 2 && keys_in(s, "k1") == 0);
  CHECK(logged("\"level\":\"error\",\"event\":\"jwks_dropped\"") == 1);
  gw_source_status_get(s, 140000, &st);
  CHECK(!st.have_set && st.keys == 0 && !st.stale && !gw_source_is_stale(s, 140000));
  /* a fetch that succeeds brings a set back */
  gw_source_tick(s, 141000);
  gw_source_fetch_done(s, 141000, &ok); /* expires at 181 s, refresh at 161 s */
  CHECK(gw_source_gen(s) == 3 && keys_in(s, "k1") == 3);
  /* stale, then fresh again: logged */
  gw_source_tick(s, 161000);
  gw_source_fetch_done(s, 161000, &down);
  CHECK(gw_source_tick(s, 181000) == 141000 + 40000 + 100000 && f.starts == 12);
  gw_source_fetch_done(s, 181000, &ok);
  CHECK(logged("\"event\":\"jwks_fresh_again\"") == 1);
  gw_source_release(s);
}

/* ------------------------------------------------------------ max-age */

static void test_max_age(void) {
  fake f;
  gw_jwks_def d;
  gw_source *s = source(&f, &d);
  if (s == NULL) return;
  log_mark();
  gw_source_tick(s, 0);
  gw_fetch_resp r = answer(200, g_set1, "max-age=5", NULL);
  gw_source_fetch_done(s, 0, &r);
  CHECK(logged("\"issuer_max_age_s\":5,\"jwks_min_ttl_s\":30,\"jwks_cooldown_s\":30") == 1);
  gw_source_status st;
  gw_source_status_get(s, 0, &st);
  CHECK(st.issuer_max_age == 5 && st.max_age_below_min_ttl && st.min_ttl == 30);
  /* kept min_ttl (30 s): refreshed every 15 s */
  CHECK(gw_source_tick(s, 1) == 15000);
  gw_source_tick(s, 15000);
  gw_source_fetch_done(s, 15000, &r);
  CHECK(logged("jwks_max_age_below_min_ttl") == 1); /* the same value: once */
  gw_source_warn_max_age(s);                        /* a reload asks again */
  CHECK(logged("jwks_max_age_below_min_ttl") == 2);
  log_mark();
  r = answer(200, g_set1, "max-age=60", NULL);
  gw_source_tick(s, 30000);
  gw_source_fetch_done(s, 30000, &r);
  gw_source_status_get(s, 30000, &st);
  CHECK(st.issuer_max_age == 60 && !st.max_age_below_min_ttl);
  gw_source_warn_max_age(s);
  CHECK(logged("jwks_max_age_below_min_ttl") == 0);
  gw_source_release(s);
}

/* ---------------------------------------------------------- decisions */

#define NOW 1700000000LL

static const char *get(void *ctx, const char *name) {
  const char *const *kv = ctx;
  for (size_t i = 0; kv[i] != NULL; i += 2)
    if (strcasecmp(kv[i], name) == 0) return kv[i + 1];
  return NULL;
}
static void each(void *ctx, int (*fn)(void *cls, const char *name, const char *value), void *cls) {
  const char *const *kv = ctx;
  for (size_t i = 0; kv[i] != NULL; i += 2)
    if (!fn(cls, kv[i], kv[i + 1])) return;
}

static void decide(gw_state *st, const char *uri, const char *auth, gw_decision *d) {
  const char *kv[] = {"X-Original-URI", uri, auth ? "Authorization" : NULL, auth, NULL, NULL};
  gw_fields f = {get, each, JK_UNCONST(kv)};
  gw_request rq;
  gw_request_read(&rq, st, &f);
  gw_decide(st, &rq, NOW, 0, d);
}

static char *sign(jwtkit_key *k) {
  static const char claims[] = "{\"iss\":\"https://issuer.test\",\"sub\":\"alice\",\"exp\":1700000600}";
  char *tok = NULL;
  size_t n;
  CHECK(jwtkit_sign(k, NULL, claims, sizeof claims - 1, &tok, &n, NULL) == JWTKIT_OK);
  return tok;
}

static void test_decisions(void) {
  char err[512] = "";
  gw_config *c = gw_config_new();
  gw_route_cfg *r = c ? gw_config_add_route(c, "api", 1, err, sizeof err) : NULL;
  CHECK(r != NULL);
  if (r == NULL) {
    gw_config_free(c);
    return;
  }
  static const char *const kv[][2] = {{"match_path_prefix", "/api/"}, {"issuer", "https://issuer.test"},
                                      {"jwks_url", "https://issuer.test/jwks.json"}, {"algs", "ES256"},
                                      {"header X-User", "sub"}};
  for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) CHECK(gw_route_set(r, kv[i][0], kv[i][1], err, sizeof err) == 0);
  CHECK(gw_config_set(c, "jwks_cooldown", "30s", err, sizeof err) == 0);
  CHECK(gw_config_set(c, "listen", "x", err, sizeof err) == 1); /* not the core's */
  CHECK(gw_config_set(c, "jwks_cooldown", "31s", err, sizeof err) == -1 && strstr(err, "given twice"));
  int line = -1;
  CHECK(gw_config_check(c, &line, err, sizeof err) == 0);
  fake f;
  gw_transport t = transport(&f);
  gw_build b = {.generation = 1, .transport = &t};
  gw_state *st = NULL;
  CHECK(gw_state_build(c, &b, &st, err, sizeof err) == 0);
  if (st == NULL) {
    fprintf(stderr, "  %s\n", err);
    gw_config_free(c);
    return;
  }
  gw_source *src = gw_state_source(st, 0);
  CHECK(gw_state_nsources(st) == 1 && src != NULL);
  char *t1 = sign(g_k1), *t2 = sign(g_k2), a1[1024], a2[1024];
  snprintf(a1, sizeof a1, "Bearer %s", t1);
  snprintf(a2, sizeof a2, "Bearer %s", t2);
  gw_decision d;
  /* no set yet: refused, and a refetch may help */
  decide(st, "/api/x", a1, &d);
  CHECK(d.status == 401 && d.reason == GW_R_JWKS_NOT_READY && d.refetch == src);
  CHECK(d.www_authenticate && strcmp(d.www_authenticate, "Bearer error=\"invalid_token\"") == 0);
  gw_decision_free(&d);
  gw_source_tick(src, 0);
  gw_fetch_resp ok = answer(200, g_set1, "max-age=300", NULL);
  gw_source_fetch_done(src, 10, &ok);
  /* allowed, with the claim header; then from the cache */
  decide(st, "/api/x", a1, &d);
  CHECK(d.status == 204 && d.reason == GW_R_VERIFIED && d.refetch == NULL && d.www_authenticate == NULL);
  CHECK(d.nhv == 1 && strcmp(d.hv[0].name, "X-User") == 0 && d.hv[0].len == 5 && memcmp(d.hv[0].val, "alice", 5) == 0);
  CHECK(d.kid_len == 2 && memcmp(d.kid, "k1", 2) == 0);
  gw_decision_free(&d);
  decide(st, "/api/x", a1, &d);
  CHECK(d.status == 204 && d.reason == GW_R_CACHED && d.nhv == 1 && strcmp(d.hv[0].name, "X-User") == 0);
  gw_decision_free(&d);
  /* a kid the set does not have: refused, a refetch may help */
  decide(st, "/api/x", a2, &d);
  CHECK(d.status == 401 && d.reason == gw_reason_for_err(JWTKIT_ERR_UNKNOWN_KID) && d.refetch == src);
  gw_decision_free(&d);
  CHECK(gw_source_refetch(src, 20, &f) == 1 && f.starts == 2);
  ok = answer(200, g_set2, "max-age=300", NULL); /* k1 rotated out */
  gw_source_fetch_done(src, 30, &ok);
  decide(st, "/api/x", a2, &d);
  CHECK(d.status == 204 && d.reason == GW_R_VERIFIED);
  gw_decision_free(&d);
  /* a key that left the set takes its cached tokens with it */
  decide(st, "/api/x", a1, &d);
  CHECK(d.status == 401 && d.reason == gw_reason_for_err(JWTKIT_ERR_UNKNOWN_KID));
  gw_decision_free(&d);
  /* the challenges, and the 403s */
  decide(st, "/api/x", NULL, &d);
  CHECK(d.status == 401 && d.reason == GW_R_MISSING_TOKEN && strcmp(d.www_authenticate, "Bearer") == 0);
  CHECK(d.refetch == NULL);
  gw_decision_free(&d);
  decide(st, "/other", a2, &d);
  CHECK(d.status == 403 && d.reason == GW_R_NO_ROUTE && d.www_authenticate == NULL && d.route == NULL);
  gw_decision_free(&d);
  decide(st, "/api/%zz", a2, &d);
  CHECK(d.status == 403 && d.reason == GW_R_BAD_URI && d.www_authenticate == NULL);
  gw_decision_free(&d);
  char lb[48];
  CHECK(strcmp(gw_reason_label(gw_reason_for_err(JWTKIT_ERR_UNKNOWN_KID), lb, sizeof lb), "unknown_kid") == 0);
  jwtkit_free(t1);
  jwtkit_free(t2);
  gw_state_release(st); /* no retire hook: destroyed here, the source closed */
  CHECK(f.closes == 1);
}

/* proxy_headers: the listener's convention is read, the other one (and,
 * behind Caddy / Traefik, Host) is never taken from the client */
static void read_as(gw_state *st, const char *const *kv, gw_proxy_headers conv, gw_request *rq) {
  gw_fields f = {get, each, JK_UNCONST(kv)};
  gw_request_read_as(rq, st, &f, conv);
}

static void test_proxy_headers(void) {
  char err[512] = "";
  gw_config *c = gw_config_new();
  CHECK(c != NULL && c->proxy_headers == GW_PROXY_ORIGINAL); /* the default: nginx */
  gw_proxy_headers ph = GW_PROXY_ORIGINAL;
  CHECK(gw_value_proxy_headers("proxy_headers", "traefik", &ph, err, sizeof err) == -1 && ph == GW_PROXY_ORIGINAL);
  CHECK(strstr(err, "'proxy_headers'") && strstr(err, "\"traefik\"") && strstr(err, "forwarded"));
  CHECK(gw_config_set(c, "proxy_headers", "forwarded", err, sizeof err) == 0 && c->proxy_headers == GW_PROXY_FORWARDED);
  CHECK(gw_config_set(c, "proxy_headers", "original", err, sizeof err) == -1 && strstr(err, "given twice"));
  gw_route_cfg *r = gw_config_add_route(c, "api", 1, err, sizeof err);
  CHECK(r != NULL);
  if (r == NULL) {
    gw_config_free(c);
    return;
  }
  static const char *const kv[][2] = {{"match_host", "api.test"}, {"match_path_prefix", "/api/"},
                                      {"jwks_url", "https://issuer.test/jwks.json"}, {"algs", "ES256"}};
  for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) CHECK(gw_route_set(r, kv[i][0], kv[i][1], err, sizeof err) == 0);
  gw_build b = {.generation = 1};
  gw_state *st = NULL;
  CHECK(gw_state_build(c, &b, &st, err, sizeof err) == 0);
  if (st == NULL) {
    gw_config_free(c);
    return;
  }
  gw_request rq;
  /* forwarded (the configuration's): X-Forwarded-* are the request */
  const char *const fwd[] = {"Host", "127.0.0.1:8081", "X-Forwarded-Method", "DELETE", "X-Forwarded-Proto", "https",
                             "X-Forwarded-Host", "API.test:443", "X-Forwarded-Uri", "/api/../api/x?q=1",
                             "Authorization", "Bearer a.b.c", NULL, NULL};
  gw_fields f = {get, each, JK_UNCONST(fwd)};
  gw_request_read(&rq, st, &f);
  CHECK(rq.route == 0 && rq.host && strcmp(rq.host, "api.test") == 0 && rq.path && strcmp(rq.path, "/api/x") == 0);
  CHECK(rq.method && strcmp(rq.method, "DELETE") == 0);
  CHECK(rq.token.p && rq.token.len == 5 && memcmp(rq.token.p, "a.b.c", 5) == 0);
  /* ... and X-Original-* sent by a client beside them change nothing */
  const char *const mixed[] = {"X-Original-URI", "/other", "X-Original-Host", "evil.test", "X-Forwarded-Host",
                               "api.test", "X-Forwarded-Uri", "/api/x", NULL, NULL};
  read_as(st, mixed, GW_PROXY_FORWARDED, &rq);
  CHECK(rq.route == 0 && strcmp(rq.host, "api.test") == 0 && strcmp(rq.path, "/api/x") == 0);
  /* the original convention on the same fields: X-Forwarded-* ignored */
  read_as(st, mixed, GW_PROXY_ORIGINAL, &rq);
  CHECK(rq.route == GW_NO_ROUTE && strcmp(rq.host, "evil.test") == 0 && strcmp(rq.path, "/other") == 0);
  CHECK(rq.method == NULL);
  const char *const only_fwd[] = {"Host", "api.test", "X-Forwarded-Uri", "/other", "X-Forwarded-Host", "evil.test",
                                  "X-Original-URI", "/api/x", NULL, NULL};
  read_as(st, only_fwd, GW_PROXY_ORIGINAL, &rq);
  CHECK(rq.route == 0 && strcmp(rq.host, "api.test") == 0 && strcmp(rq.path, "/api/x") == 0);
  /* forwarded: Host is the gate's address there, never the site's */
  const char *const host_only[] = {"Host", "api.test", "X-Forwarded-Uri", "/api/x", NULL, NULL};
  read_as(st, host_only, GW_PROXY_FORWARDED, &rq);
  CHECK(rq.route == GW_NO_ROUTE && rq.host == NULL && strcmp(rq.path, "/api/x") == 0);
  /* a bad forwarded URI is a bad URI */
  const char *const bad[] = {"X-Forwarded-Host", "api.test", "X-Forwarded-Uri", "/api/%zz", NULL, NULL};
  read_as(st, bad, GW_PROXY_FORWARDED, &rq);
  CHECK(rq.bad_uri == 1 && rq.route == GW_NO_ROUTE);
  gw_state_release(st);
}

/* issuer_discovery: the metadata URLs, what is taken from a document, the
 * configuration checks */
static int disc(const char *doc, const char *issuer, int allow_http, char *uri, char *err) {
  return gw_discovery_read(doc, strlen(doc), issuer, allow_http, uri, GW_MAX_URL + 1, err, 512);
}

static void test_discovery(void) {
  char u[GW_MAX_URL + 1], err[512];
  CHECK(gw_discovery_url("https://id.test", 0, u, sizeof u) == 0 &&
        strcmp(u, "https://id.test/.well-known/openid-configuration") == 0);
  CHECK(gw_discovery_url("https://id.test/", 0, u, sizeof u) == 0 &&
        strcmp(u, "https://id.test/.well-known/openid-configuration") == 0);
  CHECK(gw_discovery_url("https://id.test/tenant/a", 0, u, sizeof u) == 0 &&
        strcmp(u, "https://id.test/tenant/a/.well-known/openid-configuration") == 0);
  CHECK(gw_discovery_url("https://id.test", 1, u, sizeof u) == 0 &&
        strcmp(u, "https://id.test/.well-known/oauth-authorization-server") == 0);
  CHECK(gw_discovery_url("https://id.test/tenant/a", 1, u, sizeof u) == 0 &&
        strcmp(u, "https://id.test/.well-known/oauth-authorization-server/tenant/a") == 0);
  CHECK(gw_discovery_url("https://id.test", 0, u, 20) == -1);

  CHECK(disc("{\"issuer\":\"https://id.test\",\"jwks_uri\":\"https://keys.test/jwks\"}", "https://id.test", 0, u, err) == 0 &&
        strcmp(u, "https://keys.test/jwks") == 0);
  /* escapes are read as the JSON says */
  CHECK(disc("{\"issuer\":\"https:\\/\\/id.test\",\"jwks_uri\":\"https:\\/\\/id.test\\/k\"}", "https://id.test", 0, u, err) == 0 &&
        strcmp(u, "https://id.test/k") == 0);
  /* the issuer must match exactly: both named */
  CHECK(disc("{\"issuer\":\"https://evil.test\",\"jwks_uri\":\"https://evil.test/k\"}", "https://id.test", 0, u, err) == -1 &&
        strstr(err, "\"https://evil.test\"") && strstr(err, "\"https://id.test\""));
  CHECK(disc("{\"issuer\":\"https://id.test/\",\"jwks_uri\":\"https://id.test/k\"}", "https://id.test", 0, u, err) == -1);
  CHECK(disc("{\"jwks_uri\":\"https://id.test/k\"}", "https://id.test", 0, u, err) == -1 && strstr(err, "\"issuer\""));
  CHECK(disc("{\"issuer\":7,\"jwks_uri\":\"https://id.test/k\"}", "https://id.test", 0, u, err) == -1);
  CHECK(disc("{\"issuer\":\"https://id.test\"}", "https://id.test", 0, u, err) == -1 && strstr(err, "jwks_uri"));
  CHECK(disc("{\"issuer\":\"https://id.test\",\"jwks_uri\":[\"https://id.test/k\"]}", "https://id.test", 0, u, err) == -1);
  /* https only; http:// to loopback with allow_http */
  CHECK(disc("{\"issuer\":\"https://id.test\",\"jwks_uri\":\"http://id.test/k\"}", "https://id.test", 1, u, err) == -1 &&
        strstr(err, "\"http://id.test/k\"") && strstr(err, "https://"));
  CHECK(disc("{\"issuer\":\"https://id.test\",\"jwks_uri\":\"http://127.0.0.1:8080/k\"}", "https://id.test", 0, u, err) == -1);
  CHECK(disc("{\"issuer\":\"https://id.test\",\"jwks_uri\":\"http://127.0.0.1:8080/k\"}", "https://id.test", 1, u, err) == 0);
  CHECK(disc("{\"issuer\":\"https://id.test\",\"jwks_uri\":\"http://[::1]:8080/k\"}", "https://id.test", 1, u, err) == 0);
  CHECK(disc("{\"issuer\":\"https://id.test\",\"jwks_uri\":\"http://localhost/k\"}", "https://id.test", 1, u, err) == 0);
  CHECK(disc("{\"issuer\":\"https://id.test\",\"jwks_uri\":\"http://127.0.0.1.evil.test/k\"}", "https://id.test", 1, u, err) == -1);
  CHECK(disc("{\"issuer\":\"https://id.test\",\"jwks_uri\":\"http://127.0.0.1@evil.test/k\"}", "https://id.test", 1, u, err) == -1);
  CHECK(disc("{\"issuer\":\"https://id.test\",\"jwks_uri\":\"ftp://id.test/k\"}", "https://id.test", 1, u, err) == -1);
  CHECK(disc("{\"issuer\":\"https://id.test\",\"jwks_uri\":\"https://id.test/a b\"}", "https://id.test", 0, u, err) == -1);
  /* not a document */
  CHECK(disc("<html>", "https://id.test", 0, u, err) == -1 && strstr(err, "not a JSON object"));
  CHECK(disc("[]", "https://id.test", 0, u, err) == -1);
  CHECK(gw_discovery_read("", 0, "https://id.test", 0, u, sizeof u, err, sizeof err) == -1 && strstr(err, "empty"));

  /* configuration */
  gw_config *c = gw_config_new();
  gw_route_cfg *r = c ? gw_config_add_route(c, "d", 3, err, sizeof err) : NULL;
  CHECK(r != NULL);
  if (r == NULL) {
    gw_config_free(c);
    return;
  }
  int line = 0;
  CHECK(gw_route_set(r, "issuer_discovery", "maybe", err, sizeof err) == -1);
  CHECK(gw_route_set(r, "algs", "ES256", err, sizeof err) == 0);
  r->issuer_discovery = 1;
  CHECK(gw_config_check(c, &line, err, sizeof err) == -1 && line == 3 && strstr(err, "needs 'issuer'"));
  CHECK(gw_route_set(r, "issuer", "http://127.0.0.1:8080", err, sizeof err) == 0);
  CHECK(gw_config_check(c, &line, err, sizeof err) == -1 && strstr(err, "https://"));
  CHECK(gw_route_set(r, "allow_http_jwks", "true", err, sizeof err) == 0);
  CHECK(gw_config_check(c, &line, err, sizeof err) == 0);
  CHECK(strcmp(gw_route_source_url(r), "http://127.0.0.1:8080") == 0);
  CHECK(gw_route_set(r, "jwks_url", "http://127.0.0.1:8080/jwks.json", err, sizeof err) == 0);
  CHECK(gw_config_check(c, &line, err, sizeof err) == -1 && strstr(err, "both"));
  gw_config_free(c);
}

int main(void) {
  g_logfd = mkstemp(g_logpath);
  if (g_logfd < 0) return 1;
  unlink(g_logpath);
  jk_log_set_fd(g_logfd);
  jk_log_set_level(JK_LOG_DEBUG);
  gw_metrics_init();
  keys_setup();
  test_answers();
  test_publish();
  test_render_json();
  test_refresh();
  test_refetch();
  test_stale();
  test_max_age();
  test_decisions();
  test_proxy_headers();
  test_discovery();
  jwtkit_key_free(g_k1);
  jwtkit_key_free(g_k2);
  close(g_logfd);
  printf("%d checks, %d failed\n", checks, fails);
  return fails ? 1 : 0;
}
