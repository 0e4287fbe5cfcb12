/*
 * The /auth decision without I/O: route selection, token extraction, the
 * token cache, verification (main and legacy verifiers), claim headers.
 * http.c reads the request from libmicrohttpd and queues the response;
 * tests and the fuzz harness (fuzz/fuzz_gate_request.c) call gate_decide
 * with a list of header fields and a fixed clock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "gate_internal.h"

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

static int scan_header(void *cls, const char *key, const char *value) {
  tokscan *t = cls;
  if (key == NULL || value == NULL) return 1;
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
  return 1;
}

/* ------------------------------------------------------------ verdicts */

static int64_t mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void gate_decision_report(const gate_decision *d) {
  int allow = d->reason < GR_ALLOW_COUNT;
  atomic_fetch_add(&g_metrics.decisions[d->reason], 1);
  gate_logline L;
  if (!gl_begin(&L, allow ? GL_DEBUG : GL_INFO, "decision")) return;
  char lb[48];
  gl_str(&L, "result", allow ? "allow" : "deny");
  gl_str(&L, "reason", gate_reason_label(d->reason, lb, sizeof lb));
  gl_int(&L, "status", d->status);
  if (d->route) gl_str(&L, "route", d->route);
  if (d->host) gl_str(&L, "host", d->host);
  if (d->path) gl_str(&L, "path", d->path);
  if (d->info.field[0]) gl_str(&L, "field", d->info.field);
  if (d->info.msg[0]) gl_str(&L, "detail", d->info.msg);
  if (d->kid) gl_strn(&L, "kid", d->kid, d->kid_len);
  if (d->have_digest) {
    static const char hx[] = "0123456789abcdef";
    char h[17];
    for (int i = 0; i < 8; i++) {
      h[2 * i] = hx[d->digest[i] >> 4];
      h[2 * i + 1] = hx[d->digest[i] & 15];
    }
    h[16] = '\0';
    gl_str(&L, "token_sha256", h); /* a prefix, to correlate; never the token */
  }
  gl_int(&L, "duration_us", mono_us() - d->t0_us);
  gl_end(&L);
}

void gate_decision_free(gate_decision *d) {
  free(d->hbuf);
  d->hbuf = NULL;
  jwtkit_claims_free(d->claims);
  d->claims = NULL;
  if (d->entry != NULL) gate_tc_entry_release(d->entry);
  d->entry = NULL;
  d->kid = NULL;
  d->nhv = 0;
}

static int deny(gate_decision *d, int reason) {
  d->reason = reason;
  d->status = reason == GR_NO_ROUTE || reason == GR_BAD_URI ? 403 : 401;
  d->nhv = 0;
  return 0;
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
  double v = strtod(buf, &end);
  if (end == buf || v < -1e15 || v > 1e15) return 0;
  int64_t t = (int64_t)v;
  if ((double)t > v) t--; /* floor */
  *out = t;
  return 1;
}

/* Why a claim header cannot be emitted. */
enum { H_OK, H_MISSING, H_EMPTY, H_CONTROL, H_LONG };
static const char *const h_why[] = {
    [H_OK] = "ok",
    [H_MISSING] = "missing (nginx would pass no header)",
    [H_EMPTY] = "empty (nginx passes an empty header as none)",
    [H_CONTROL] = "holding a control character (CR, LF, NUL, tab, DEL)",
    [H_LONG] = "longer than header_max once encoded",
};

int gate_decide(gate_state *st, const gate_req *rq, int64_t now, gate_decision *d) {
  memset(d, 0, sizeof *d);
  d->t0_us = mono_us();

  /* route */
  const char *uri = rq->get(rq->ctx, "X-Original-URI");
  const char *host = rq->get(rq->ctx, "X-Original-Host");
  if (host == NULL) host = rq->get(rq->ctx, "Host");
  if (host != NULL && gate_normalize_host(host, strlen(host), d->nhost, sizeof d->nhost) == 0) d->host = d->nhost;
  size_t plen = 0;
  if (uri != NULL) {
    size_t ul = strlen(uri);
    if (ul > GATE_MAX_URI || gate_normalize_path(uri, ul, d->npath, sizeof d->npath, &plen) != 0) {
      snprintf(d->info.msg, sizeof d->info.msg, "X-Original-URI cannot be normalised");
      return deny(d, GR_BAD_URI);
    }
    d->path = d->npath;
  }
  size_t ri;
  const gate_route_cfg *rc = gate_select_route(st->cfg, d->host, d->path, plen, &ri);
  if (rc == NULL) return deny(d, GR_NO_ROUTE);
  gate_route *r = &st->routes[ri];
  d->route = rc->name;
  d->rc = rc;

  /* token */
  tokscan ts = {.rc = rc};
  rq->each(rq->ctx, scan_header, &ts);
  if (ts.ambiguous) {
    snprintf(d->info.msg, sizeof d->info.msg, "the request carries different tokens");
    return deny(d, GR_AMBIGUOUS_TOKEN);
  }
  if (ts.bad) {
    snprintf(d->info.msg, sizeof d->info.msg, "empty or unusable bearer credentials");
    return deny(d, GR_BAD_AUTHORIZATION);
  }
  if (ts.tok == NULL) return deny(d, GR_MISSING_TOKEN);
  d->have_token = 1;
  if (ts.len > st->cfg->max_token) {
    snprintf(d->info.msg, sizeof d->info.msg, "token of %zu bytes, the limit is %zu", ts.len, st->cfg->max_token);
    return deny(d, GR_TOKEN_TOO_LARGE);
  }
  if (!gate_token_chars_ok(ts.tok, ts.len)) {
    snprintf(d->info.msg, sizeof d->info.msg, "the token has characters outside base64url and '.'");
    return deny(d, gate_reason_for_err(JWTKIT_ERR_MALFORMED));
  }
  gate_route_snap *rs = gate_route_snap_get(r);

  /* cache */
  if (st->cache != NULL && gate_sha256(ts.tok, ts.len, d->digest) == 0) {
    d->have_digest = 1;
    check_ctx ck = {r, rs, now};
    gate_tc_entry *e = gate_tcache_get(st->cache, d->digest, r->index, now, check_entry, &ck);
    if (e != NULL) {
      d->entry = e;
      size_t pos = 0;
      while (d->nhv < GATE_MAX_HEADERS && gate_tc_entry_header(e, &pos, &d->hv[d->nhv])) d->nhv++;
      d->kid = gate_tc_entry_kid(e, &d->kid_len);
      if (e->legacy) gate_metrics_legacy_accept(now);
      d->reason = e->legacy ? GR_LEGACY_CACHED : GR_CACHED;
      d->status = 204;
      gate_route_snap_release(rs);
      return 0;
    }
  }

  /* verify */
  jwtkit_claims *cl = NULL;
  jwtkit_err e = JWTKIT_OK;
  int not_ready = rs->v == NULL, legacy = 0, reason = -1;
  if (!not_ready) {
    e = jwtkit_verify_at(rs->v, ts.tok, ts.len, now, &cl, &d->info);
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
      memset(&d->info, 0, sizeof d->info);
      snprintf(d->info.msg, sizeof d->info.msg, "valid legacy HS256 token after the migration deadline %s", when);
      reason = GR_LEGACY_DEADLINE_PASSED;
      not_ready = 0;
    } else if (le != JWTKIT_ERR_ALG_NOT_ALLOWED) {
      e = le; /* an HS256 token that failed the legacy checks */
      d->info = li;
      not_ready = 0;
    }
  }
  if ((not_ready || e == JWTKIT_ERR_UNKNOWN_KID) && reason < 0 && r->src != NULL && rq->park != NULL &&
      rq->park(rq->ctx, r->src)) {
    gate_route_snap_release(rs);
    return 1; /* parked; decided again when resumed */
  }
  if (reason < 0 && not_ready) {
    snprintf(d->info.msg, sizeof d->info.msg, "no JWK Set fetched yet for %s", rc->jwks_url ? rc->jwks_url : "-");
    reason = GR_JWKS_NOT_READY;
  }
  if (reason >= 0 || e != JWTKIT_OK) {
    gate_route_snap_release(rs);
    return deny(d, reason >= 0 ? reason : gate_reason_for_err(e));
  }

  /* allowed: claim headers */
  d->claims = cl;
  size_t hmax = st->cfg->header_max;
  d->hbuf = rc->nheaders ? malloc(rc->nheaders * hmax) : NULL;
  if (rc->nheaders && d->hbuf == NULL) { /* never allow without the identity headers */
    gate_route_snap_release(rs);
    snprintf(d->info.msg, sizeof d->info.msg, "out of memory");
    return deny(d, GR_INTERNAL);
  }
  for (size_t i = 0; d->hbuf != NULL && i < rc->nheaders; i++) {
    const gate_header_map *m = &rc->headers[i];
    const char *j;
    size_t jl;
    long n = 0;
    int why = H_OK;
    if (jwtkit_claims_get_json(cl, m->claim, &j, &jl) != JWTKIT_OK)
      why = H_MISSING;
    else if ((n = gate_render_claim(j, jl, d->hbuf + i * hmax, hmax)) == GATE_RENDER_TOO_LONG)
      why = H_LONG;
    else if (n < 0)
      why = H_CONTROL;
    else if (n == 0)
      why = H_EMPTY;
    if (why == H_OK) {
      d->hv[d->nhv].map = (uint8_t)i;
      d->hv[d->nhv].val = d->hbuf + i * hmax;
      d->hv[d->nhv].len = (size_t)n;
      d->nhv++;
      continue;
    }
    /* the upstream gets no header: fine for an optional claim that is
     * absent or empty, and for any claim when the route allows failures */
    if (m->optional && (why == H_MISSING || why == H_EMPTY)) continue;
    if (!rc->claim_header_allow) {
      jwtkit_claims_free(cl);
      d->claims = NULL;
      gate_route_snap_release(rs);
      memset(&d->info, 0, sizeof d->info);
      snprintf(d->info.field, sizeof d->info.field, "%.31s", m->claim);
      int w = snprintf(d->info.msg, sizeof d->info.msg, "claim \"%.60s\" for header %s is %s", m->claim, m->name,
                       h_why[why]);
      (void)w; /* at most 60 + 63 + 51 + 24 bytes: fits */
      return deny(d, GR_CLAIM_HEADER);
    }
    if (why == H_MISSING) continue; /* allow: no header, as documented */
    atomic_fetch_add(&g_metrics.headers_dropped, 1);
    gate_logline L;
    if (gl_begin(&L, GL_WARN, "claim_header_dropped")) {
      gl_str(&L, "route", rc->name);
      gl_str(&L, "header", m->name);
      gl_str(&L, "claim", m->claim);
      gl_str(&L, "why", h_why[why]);
      gl_end(&L);
    }
  }
  const char *kid = jwtkit_claims_kid(cl);
  d->kid = kid;
  d->kid_len = kid ? strlen(kid) : 0;
  int64_t exp;
  if (d->have_digest && time_claim(cl, "exp", &exp)) {
    int64_t iat;
    if (rc->max_age > 0 && time_claim(cl, "iat", &iat) && iat + rc->max_age < exp) exp = iat + rc->max_age;
    if (legacy && r->legacy_deadline < exp) exp = r->legacy_deadline;
    if (exp > now)
      gate_tcache_put(st->cache, d->digest, r->index, exp, rs->gen, legacy, kid, d->kid_len, d->hv, d->nhv);
  }
  if (legacy) gate_metrics_legacy_accept(now);
  d->reason = legacy ? GR_LEGACY : GR_VERIFIED;
  d->status = 204;
  gate_route_snap_release(rs);
  return 0;
}
