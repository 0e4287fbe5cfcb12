/*
 * The HTTP side: libmicrohttpd with a thread pool over epoll.
 *
 *   GET /auth     (any method: nginx auth_request subrequests keep the
 *                 original method) 204 + claim headers, or 401 with
 *                 `WWW-Authenticate: Bearer error="invalid_token"` (no
 *                 token: `WWW-Authenticate: Bearer`), or 403 when no route
 *                 matches the request.  Nothing else is said to the client:
 *                 the reason goes to the log and to /metrics.
 *   GET /metrics  Prometheus text.
 *   GET /healthz  200 {"status":"ready"} once every route has a key,
 *                 else 503 {"status":"not_ready",...}.
 *
 * A request whose token has an unknown kid (or that arrives before the
 * first JWK Set) asks its source for a refetch; if a fetch starts or is
 * running, the connection is suspended (no thread waits) and resumed when
 * the fetch ends, then verified once more against what is there.  Within
 * the cooldown it is answered 401 at once.
 */
#include <microhttpd.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "gate_internal.h"

struct gate_app {
  pthread_rwlock_t lock;
  gate_state *state;
  struct MHD_Daemon *d;
  struct MHD_Response *r401_invalid, *r401_missing, *r403, *r404, *r405;
};

/* con_cls values: &g_seen after the first call; a req_ctx once parked */
static char g_seen;
typedef struct req_ctx {
  int resumed;
} req_ctx;

/* --------------------------------------------------------------- state */

gate_app *gate_http_new(gate_state *st) {
  gate_app *a = calloc(1, sizeof *a);
  if (a == NULL) return NULL;
  if (pthread_rwlock_init(&a->lock, NULL) != 0) {
    free(a);
    return NULL;
  }
  a->state = st;
  return a;
}

gate_state *gate_http_state(gate_app *a) {
  pthread_rwlock_rdlock(&a->lock);
  gate_state *s = gate_state_ref(a->state);
  pthread_rwlock_unlock(&a->lock);
  return s;
}

void gate_http_swap(gate_app *a, gate_state *st) {
  pthread_rwlock_wrlock(&a->lock);
  gate_state *old = a->state;
  a->state = st;
  pthread_rwlock_unlock(&a->lock);
  gate_state_release(old);
}

/* ------------------------------------------------------------ responses */

static struct MHD_Response *empty_response(void) {
  return MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
}

static struct MHD_Response *fixed(const char *www) {
  struct MHD_Response *r = empty_response();
  if (r != NULL && www != NULL) MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, www);
  if (r != NULL) MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  return r;
}

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, const char *ctype, char *body, size_t len,
                                 int must_free) {
  struct MHD_Response *r =
      MHD_create_response_from_buffer(len, body, must_free ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_MUST_COPY);
  if (r == NULL) {
    if (must_free) free(body);
    return MHD_NO;
  }
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
  MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  enum MHD_Result rc = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return rc;
}

/* ------------------------------------------------------------ tokens */

typedef struct tokscan {
  const gate_route_cfg *rc;
  const char *tok;
  size_t len;
  int ambiguous;
  int bad;
} tokscan;

static void offer(tokscan *t, const char *tok, size_t len) {
  if (t->tok == NULL) {
    t->tok = tok;
    t->len = len;
  } else if (len != t->len || memcmp(tok, t->tok, len) != 0) {
    t->ambiguous = 1;
  }
}

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
  (void)kind;
  tokscan *t = cls;
  if (key == NULL || value == NULL) return MHD_YES;
  const char *tok;
  size_t len;
  if (strcasecmp(key, "Authorization") == 0) {
    int r = gate_parse_bearer(value, &tok, &len);
    if (r == 1) offer(t, tok, len);
    else if (r < 0) t->bad = 1;
  } else if (t->rc->token_header != NULL && strcasecmp(key, t->rc->token_header) == 0) {
    int r = gate_parse_bearer(value, &tok, &len);
    if (r == 0) { /* the bare token */
      tok = value;
      while (*tok == ' ' || *tok == '\t') tok++;
      len = strlen(tok);
      while (len > 0 && (tok[len - 1] == ' ' || tok[len - 1] == '\t')) len--;
      r = len > 0 ? 1 : -1;
    }
    if (r == 1) offer(t, tok, len);
    else t->bad = 1;
  } else if (t->rc->token_cookie != NULL && strcasecmp(key, "Cookie") == 0) {
    int conflict = 0;
    if (gate_find_cookie(value, t->rc->token_cookie, &tok, &len, &conflict)) {
      if (len == 0) t->bad = 1;
      else offer(t, tok, len);
    }
    if (conflict) t->ambiguous = 1;
  }
  return MHD_YES;
}

/* ------------------------------------------------------------ verdicts */

typedef struct verdict {
  int reason;
  unsigned status;
  const char *route;
  jwtkit_errinfo info;
  int have_token;
  unsigned char digest[32];
  int have_digest;
  const char *kid;
  size_t kid_len;
  int64_t t0_us;
  const char *host;
  const char *path;
} verdict;

static int64_t mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void log_verdict(const verdict *v) {
  int allow = v->reason < GR_ALLOW_COUNT;
  gate_logline L;
  if (!gl_begin(&L, allow ? GL_DEBUG : GL_INFO, "decision")) return;
  char lb[48];
  gl_str(&L, "result", allow ? "allow" : "deny");
  gl_str(&L, "reason", gate_reason_label(v->reason, lb, sizeof lb));
  gl_int(&L, "status", v->status);
  if (v->route) gl_str(&L, "route", v->route);
  if (v->host) gl_str(&L, "host", v->host);
  if (v->path) gl_str(&L, "path", v->path);
  if (v->info.field[0]) gl_str(&L, "field", v->info.field);
  if (v->info.msg[0]) gl_str(&L, "detail", v->info.msg);
  if (v->kid) gl_strn(&L, "kid", v->kid, v->kid_len);
  if (v->have_digest) {
    static const char hx[] = "0123456789abcdef";
    char h[17];
    for (int i = 0; i < 8; i++) {
      h[2 * i] = hx[v->digest[i] >> 4];
      h[2 * i + 1] = hx[v->digest[i] & 15];
    }
    h[16] = '\0';
    gl_str(&L, "token_sha256", h); /* a prefix, to correlate; never the token */
  }
  gl_int(&L, "duration_us", mono_us() - v->t0_us);
  gl_end(&L);
}

static enum MHD_Result deny(gate_app *a, struct MHD_Connection *c, verdict *v, int reason) {
  v->reason = reason;
  struct MHD_Response *r;
  if (reason == GR_NO_ROUTE || reason == GR_BAD_URI) {
    v->status = MHD_HTTP_FORBIDDEN;
    r = a->r403;
  } else if (reason == GR_MISSING_TOKEN) {
    v->status = MHD_HTTP_UNAUTHORIZED;
    r = a->r401_missing;
  } else {
    v->status = MHD_HTTP_UNAUTHORIZED;
    r = a->r401_invalid;
  }
  atomic_fetch_add(&g_metrics.decisions[reason], 1);
  log_verdict(v);
  return MHD_queue_response(c, v->status, r);
}

static enum MHD_Result allow(struct MHD_Connection *c, verdict *v, int reason, const gate_route_cfg *rc,
                             const gate_hdr_val *hv, size_t nhv) {
  v->reason = reason;
  v->status = MHD_HTTP_NO_CONTENT;
  struct MHD_Response *r = empty_response();
  if (r == NULL) return MHD_NO;
  char val[8193];
  for (size_t i = 0; i < nhv; i++) {
    if (hv[i].map >= rc->nheaders || hv[i].len >= sizeof val) continue;
    memcpy(val, hv[i].val, hv[i].len);
    val[hv[i].len] = '\0';
    MHD_add_response_header(r, rc->headers[hv[i].map].name, val);
  }
  atomic_fetch_add(&g_metrics.decisions[reason], 1);
  log_verdict(v);
  enum MHD_Result rc2 = MHD_queue_response(c, v->status, r);
  MHD_destroy_response(r);
  return rc2;
}

/* cache entry still valid for this route snapshot? (under the stripe lock) */
typedef struct check_ctx {
  const gate_route *r;
  const gate_route_snap *rs;
  int64_t now;
} check_ctx;

static int check_entry(void *ctx, const gate_tc_entry *e, uint64_t *new_gen) {
  const check_ctx *k = ctx;
  if (e->legacy) return k->r->legacy != NULL && k->now < k->r->legacy_deadline;
  if (e->gen == k->rs->gen) return 1;
  size_t kl;
  const char *kid = gate_tc_entry_kid(e, &kl);
  if (kid == NULL || !gate_route_snap_has_kid(k->r, k->rs, kid, kl)) return 0;
  *new_gen = k->rs->gen;
  return 1;
}

/* Integer part of a NumericDate claim; 0 when absent or unusable. */
static int time_claim(const jwtkit_claims *cl, const char *name, int64_t *out) {
  if (jwtkit_claims_get_int(cl, name, out) == JWTKIT_OK) return 1;
  const char *j;
  size_t n;
  if (jwtkit_claims_get_json(cl, name, &j, &n) != JWTKIT_OK || n == 0 || n > 40) return 0;
  char buf[48];
  memcpy(buf, j, n);
  buf[n] = '\0';
  char *end;
  double d = strtod(buf, &end);
  if (end == buf || d < -1e15 || d > 1e15) return 0;
  int64_t v = (int64_t)d;
  if ((double)v > d) v--; /* floor */
  *out = v;
  return 1;
}

static enum MHD_Result handle_auth(gate_app *a, struct MHD_Connection *c, void **con_cls) {
  verdict v;
  memset(&v, 0, sizeof v);
  v.t0_us = mono_us();
  req_ctx *ctx = *con_cls != &g_seen ? *con_cls : NULL;
  if (ctx != NULL && ctx->resumed == 1) {
    ctx->resumed = 2;
    atomic_fetch_sub(&g_metrics.suspended, 1);
  }
  gate_state *st = gate_http_state(a);
  enum MHD_Result ret;

  /* route */
  const char *uri = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Original-URI");
  const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Original-Host");
  if (host == NULL) host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
  char nhost[256];
  if (host != NULL && gate_normalize_host(host, strlen(host), nhost, sizeof nhost) == 0) v.host = nhost;
  char npath[GATE_MAX_URI + 2];
  size_t plen = 0;
  if (uri != NULL) {
    size_t ul = strlen(uri);
    if (ul > GATE_MAX_URI || gate_normalize_path(uri, ul, npath, sizeof npath, &plen) != 0) {
      snprintf(v.info.msg, sizeof v.info.msg, "X-Original-URI cannot be normalised");
      ret = deny(a, c, &v, GR_BAD_URI);
      goto out;
    }
    v.path = npath;
  }
  size_t ri;
  const gate_route_cfg *rc = gate_select_route(st->cfg, v.host, v.path, plen, &ri);
  if (rc == NULL) {
    ret = deny(a, c, &v, GR_NO_ROUTE);
    goto out;
  }
  gate_route *r = &st->routes[ri];
  v.route = rc->name;

  /* token */
  tokscan ts = {.rc = rc};
  MHD_get_connection_values(c, MHD_HEADER_KIND, scan_header, &ts);
  if (ts.ambiguous) {
    snprintf(v.info.msg, sizeof v.info.msg, "the request carries different tokens");
    ret = deny(a, c, &v, GR_AMBIGUOUS_TOKEN);
    goto out;
  }
  if (ts.bad) {
    snprintf(v.info.msg, sizeof v.info.msg, "empty or unusable bearer credentials");
    ret = deny(a, c, &v, GR_BAD_AUTHORIZATION);
    goto out;
  }
  if (ts.tok == NULL) {
    ret = deny(a, c, &v, GR_MISSING_TOKEN);
    goto out;
  }
  v.have_token = 1;
  if (ts.len > st->cfg->max_token) {
    snprintf(v.info.msg, sizeof v.info.msg, "token of %zu bytes, the limit is %zu", ts.len, st->cfg->max_token);
    ret = deny(a, c, &v, GR_TOKEN_TOO_LARGE);
    goto out;
  }
  if (!gate_token_chars_ok(ts.tok, ts.len)) {
    snprintf(v.info.msg, sizeof v.info.msg, "the token has characters outside base64url and '.'");
    ret = deny(a, c, &v, gate_reason_for_err(JWTKIT_ERR_MALFORMED));
    goto out;
  }
  int64_t now = gate_now();
  gate_route_snap *rs = gate_route_snap_get(r);

  /* cache */
  if (st->cache != NULL && gate_sha256(ts.tok, ts.len, v.digest) == 0) {
    v.have_digest = 1;
    check_ctx ck = {r, rs, now};
    gate_tc_entry *e = gate_tcache_get(st->cache, v.digest, r->index, now, check_entry, &ck);
    if (e != NULL) {
      gate_hdr_val hv[GATE_MAX_HEADERS];
      size_t nhv = 0, pos = 0;
      while (nhv < GATE_MAX_HEADERS && gate_tc_entry_header(e, &pos, &hv[nhv])) nhv++;
      v.kid = gate_tc_entry_kid(e, &v.kid_len);
      if (e->legacy) gate_metrics_legacy_accept(now);
      ret = allow(c, &v, e->legacy ? GR_LEGACY_CACHED : GR_CACHED, rc, hv, nhv);
      v.kid = NULL;
      gate_tc_entry_release(e);
      gate_route_snap_release(rs);
      goto out;
    }
  }

  /* verify */
  jwtkit_claims *cl = NULL;
  jwtkit_err e = JWTKIT_OK;
  int not_ready = rs->v == NULL, legacy = 0, reason = -1;
  if (!not_ready) {
    e = jwtkit_verify_at(rs->v, ts.tok, ts.len, now, &cl, &v.info);
    if (r->src != NULL && gate_source_is_stale(r->src)) atomic_fetch_add(&g_metrics.stale_verifications, 1);
  }
  if ((not_ready || e == JWTKIT_ERR_ALG_NOT_ALLOWED) && r->legacy != NULL) {
    jwtkit_errinfo li = {0};
    jwtkit_claims *lc = NULL;
    jwtkit_err le = jwtkit_verify_at(r->legacy, ts.tok, ts.len, now, &lc, &li);
    if (le == JWTKIT_OK && now < r->legacy_deadline) {
      cl = lc;
      e = JWTKIT_OK;
      legacy = 1;
      not_ready = 0;
    } else if (le == JWTKIT_OK) {
      jwtkit_claims_free(lc);
      atomic_fetch_add(&g_metrics.legacy_refused_after_deadline, 1);
      char when[32];
      gate_fmt_rfc3339(r->legacy_deadline, when, sizeof when);
      memset(&v.info, 0, sizeof v.info);
      snprintf(v.info.msg, sizeof v.info.msg, "valid legacy HS256 token after the migration deadline %s", when);
      reason = GR_LEGACY_DEADLINE_PASSED;
      not_ready = 0;
    } else if (le != JWTKIT_ERR_ALG_NOT_ALLOWED) {
      e = le; /* an HS256 token that failed the legacy checks */
      v.info = li;
      not_ready = 0;
    }
  }
  if ((not_ready || e == JWTKIT_ERR_UNKNOWN_KID) && reason < 0 && r->src != NULL && (ctx == NULL || !ctx->resumed)) {
    if (ctx == NULL) {
      ctx = calloc(1, sizeof *ctx);
      if (ctx != NULL) *con_cls = ctx;
    }
    if (ctx != NULL) {
      ctx->resumed = 1; /* set before parking: the resume may come at once */
      if (gate_source_refetch(r->src, c)) {
        gate_route_snap_release(rs);
        gate_state_release(st);
        return MHD_YES; /* suspended; verified again when resumed */
      }
      ctx->resumed = 2;
    }
  }
  if (reason < 0 && not_ready) {
    snprintf(v.info.msg, sizeof v.info.msg, "no JWK Set fetched yet for %s", rc->jwks_url ? rc->jwks_url : "-");
    reason = GR_JWKS_NOT_READY;
  }
  if (reason >= 0 || e != JWTKIT_OK) {
    gate_route_snap_release(rs);
    ret = deny(a, c, &v, reason >= 0 ? reason : gate_reason_for_err(e));
    goto out;
  }

  /* allowed: claim headers */
  gate_hdr_val hv[GATE_MAX_HEADERS];
  size_t nhv = 0;
  size_t hmax = st->cfg->header_max;
  char *hbuf = rc->nheaders ? malloc(rc->nheaders * hmax) : NULL;
  if (rc->nheaders && hbuf == NULL) { /* never allow without the identity headers */
    jwtkit_claims_free(cl);
    gate_route_snap_release(rs);
    snprintf(v.info.msg, sizeof v.info.msg, "out of memory");
    ret = deny(a, c, &v, GR_INTERNAL);
    goto out;
  }
  for (size_t i = 0; hbuf != NULL && i < rc->nheaders; i++) {
    const char *j;
    size_t jl;
    if (jwtkit_claims_get_json(cl, rc->headers[i].claim, &j, &jl) != JWTKIT_OK) continue;
    long n = gate_render_claim(j, jl, hbuf + i * hmax, hmax);
    if (n < 0) {
      atomic_fetch_add(&g_metrics.headers_dropped, 1);
      gate_logline L;
      if (gl_begin(&L, GL_WARN, "claim_header_dropped")) {
        gl_str(&L, "route", rc->name);
        gl_str(&L, "header", rc->headers[i].name);
        gl_str(&L, "claim", rc->headers[i].claim);
        gl_str(&L, "why", jl > hmax ? "longer than header_max" : "control character or too long");
        gl_end(&L);
      }
      continue;
    }
    hv[nhv].map = (uint8_t)i;
    hv[nhv].val = hbuf + i * hmax;
    hv[nhv].len = (size_t)n;
    nhv++;
  }
  const char *kid = jwtkit_claims_kid(cl);
  v.kid = kid;
  v.kid_len = kid ? strlen(kid) : 0;
  int64_t exp;
  if (v.have_digest && time_claim(cl, "exp", &exp)) {
    int64_t iat;
    if (rc->max_age > 0 && time_claim(cl, "iat", &iat) && iat + rc->max_age < exp) exp = iat + rc->max_age;
    if (legacy && r->legacy_deadline < exp) exp = r->legacy_deadline;
    if (exp > now)
      gate_tcache_put(st->cache, v.digest, r->index, exp, rs->gen, legacy, kid, v.kid_len, hv, nhv);
  }
  if (legacy) gate_metrics_legacy_accept(now);
  ret = allow(c, &v, legacy ? GR_LEGACY : GR_VERIFIED, rc, hv, nhv);
  free(hbuf);
  jwtkit_claims_free(cl);
  gate_route_snap_release(rs);
out:
  gate_state_release(st);
  return ret;
}

/* ---------------------------------------------------- metrics, health */

static enum MHD_Result handle_metrics(gate_app *a, struct MHD_Connection *c) {
  gate_state *st = gate_http_state(a);
  char *body;
  size_t len;
  int rc = gate_metrics_render(st, &body, &len);
  gate_state_release(st);
  if (rc != 0) return send_text(c, 500, "text/plain", (char *)"metrics unavailable\n", 20, 0);
  return send_text(c, 200, "text/plain; version=0.0.4; charset=utf-8", body, len, 1);
}

typedef struct outbuf {
  char *p;
  size_t len, cap;
} outbuf;

static void ob_printf(outbuf *b, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void ob_printf(outbuf *b, const char *fmt, ...) {
  if (b->len + 1 >= b->cap) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  b->len += (size_t)n < b->cap - b->len ? (size_t)n : b->cap - b->len - 1;
}

static enum MHD_Result handle_healthz(gate_app *a, struct MHD_Connection *c) {
  gate_state *st = gate_http_state(a);
  outbuf b = {malloc(65536), 0, 65536};
  if (b.p == NULL) {
    gate_state_release(st);
    return MHD_NO;
  }
  b.p[0] = '\0';
  int ready = 1;
  ob_printf(&b, "\"routes\":[");
  for (size_t i = 0; i < st->nroutes; i++) {
    gate_route_snap *rs = gate_route_snap_get(&st->routes[i]);
    int ok = rs->v != NULL;
    ready &= ok;
    ob_printf(&b, "%s{\"name\":\"%s\",\"keys\":%zu,\"ready\":%s}", i ? "," : "", st->routes[i].cfg->name,
              rs->nkeys, ok ? "true" : "false");
    gate_route_snap_release(rs);
  }
  ob_printf(&b, "],\"jwks\":[");
  for (size_t i = 0; i < st->nsources; i++) {
    gate_source_status ss;
    gate_source_get_status(st->sources[i], &ss);
    ob_printf(&b, "%s{\"keys\":%zu,\"stale\":%s,\"age_s\":%lld}", i ? "," : "", ss.keys,
              ss.stale ? "true" : "false", (long long)(ss.age_ms < 0 ? -1 : ss.age_ms / 1000));
  }
  ob_printf(&b, "]}\n");
  gate_state_release(st);
  size_t hl = strlen(ready ? "ready" : "not_ready") + 14;
  char *out = malloc(b.len + hl + 1);
  if (out == NULL) {
    free(b.p);
    return MHD_NO;
  }
  int n = snprintf(out, b.len + hl + 1, "{\"status\":\"%s\",%s", ready ? "ready" : "not_ready", b.p);
  free(b.p);
  return send_text(c, ready ? 200 : 503, "application/json", out, n > 0 ? (size_t)n : 0, 1);
}

/* ------------------------------------------------------------ dispatch */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
  (void)version;
  (void)upload;
  gate_app *a = cls;
  if (*con_cls == NULL) {
    *con_cls = &g_seen;
    return MHD_YES;
  }
  if (*upload_size != 0) { /* bodies are ignored (use proxy_pass_request_body off) */
    *upload_size = 0;
    return MHD_YES;
  }
  if (strcmp(url, "/auth") == 0) return handle_auth(a, c, con_cls);
  int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
  if (strcmp(url, "/metrics") == 0) return get ? handle_metrics(a, c) : MHD_queue_response(c, 405, a->r405);
  if (strcmp(url, "/healthz") == 0) return get ? handle_healthz(a, c) : MHD_queue_response(c, 405, a->r405);
  return MHD_queue_response(c, MHD_HTTP_NOT_FOUND, a->r404);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
  (void)cls;
  (void)c;
  (void)toe;
  if (*con_cls != NULL && *con_cls != &g_seen) {
    req_ctx *ctx = *con_cls;
    if (ctx->resumed == 1) atomic_fetch_sub(&g_metrics.suspended, 1);
    free(ctx);
  }
  *con_cls = NULL;
}

/* libmicrohttpd's messages into the JSON log */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 2, 0)))
#endif
static void mhd_log(void *cls, const char *fmt, va_list ap) {
  (void)cls;
  char msg[512];
  vsnprintf(msg, sizeof msg, fmt, ap);
  size_t n = strlen(msg);
  while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = '\0';
  gate_log(GL_WARN, "http_server", "%s", msg);
}

int gate_http_start(gate_app *a, const struct sockaddr *sa, int v6, const gate_config *cfg, unsigned *port, char *err,
                    size_t errcap) {
  a->r401_invalid = fixed("Bearer error=\"invalid_token\"");
  a->r401_missing = fixed("Bearer");
  a->r403 = fixed(NULL);
  a->r404 = fixed(NULL);
  a->r405 = fixed(NULL);
  if (!a->r401_invalid || !a->r401_missing || !a->r403 || !a->r404 || !a->r405) {
    snprintf(err, errcap, "out of memory");
    return -1;
  }
  if (a->r405) MHD_add_response_header(a->r405, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
  unsigned threads = cfg->threads;
  if (threads == 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    threads = n < 1 ? 1 : n > 64 ? 64 : (unsigned)n;
  }
  /* per-connection memory: the request headers (a token of max_token and
   * the rest) and the response headers; libmicrohttpd clears it per request */
  size_t pool = cfg->max_token + 24 * 1024;
  unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
  if (v6) flags |= MHD_USE_IPv6;
  a->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, a, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                          MHD_OPTION_SOCK_ADDR, sa,
                          MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT, cfg->connection_limit,
                          MHD_OPTION_CONNECTION_TIMEOUT, cfg->idle_timeout, MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool,
                          MHD_OPTION_NOTIFY_COMPLETED, on_completed, a, MHD_OPTION_END);
  if (a->d == NULL) {
    snprintf(err, errcap, "cannot start the HTTP server (address in use or not available?)");
    return -1;
  }
  const union MHD_DaemonInfo *di = MHD_get_daemon_info(a->d, MHD_DAEMON_INFO_BIND_PORT);
  *port = di ? di->port : 0;
  gate_log(GL_INFO, "http_started", "thread pool of %u, epoll, idle timeout %u s", threads, cfg->idle_timeout);
  return 0;
}

void gate_http_quiesce(gate_app *a) {
  if (a->d == NULL) return;
  MHD_socket s = MHD_quiesce_daemon(a->d);
  if (s != MHD_INVALID_SOCKET) close(s);
}

void gate_http_stop(gate_app *a) {
  if (a->d != NULL) MHD_stop_daemon(a->d);
  a->d = NULL;
}

void gate_http_free(gate_app *a) {
  if (a == NULL) return;
  gate_http_stop(a);
  struct MHD_Response *rs[] = {a->r401_invalid, a->r401_missing, a->r403, a->r404, a->r405};
  for (size_t i = 0; i < sizeof rs / sizeof rs[0]; i++)
    if (rs[i]) MHD_destroy_response(rs[i]);
  if (a->state) gate_state_release(a->state);
  pthread_rwlock_destroy(&a->lock);
  free(a);
}
