/*
 * The auth_request decision without I/O: the route's token, the token
 * cache, verification (main and legacy verifiers), claim headers.  The
 * front end reads the request (gw_request), decides, parks the request on
 * a refetch when the decision asks for one, and answers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/hex.h"
#include "common/log.h"
#include "common/parse.h"
#include "crypto/seal.h"
#include "gw_internal.h"

static const char k_challenge[] = "Bearer";
static const char k_challenge_invalid[] = "Bearer error=\"invalid_token\"";

void gw_decision_count(const gw_decision *d) { atomic_fetch_add(&gw_stats.decisions[d->reason], 1); }

void gw_decision_log(const gw_decision *d) {
  int allow = d->reason < GW_R_ALLOW_COUNT;
  jk_logline L;
  if (!jk_log_begin(&L, allow ? JK_LOG_DEBUG : JK_LOG_INFO, "decision")) return;
  char lb[48];
  jk_log_str(&L, "result", allow ? "allow" : "deny");
  jk_log_str(&L, "reason", gw_reason_label(d->reason, lb, sizeof lb));
  jk_log_int(&L, "status", d->status);
  jk_log_str(&L, "route", d->route);
  jk_log_str(&L, "method", d->method);
  jk_log_str(&L, "host", d->host);
  jk_log_str(&L, "path", d->path);
  if (d->info.field[0]) jk_log_str(&L, "field", d->info.field);
  if (d->info.msg[0]) jk_log_str(&L, "detail", d->info.msg);
  if (d->kid) jk_log_strn(&L, "kid", d->kid, d->kid_len);
  if (d->have_digest) {
    char h[17];
    jk_hex_encode(d->digest, 8, h);
    jk_log_str(&L, "token_sha256", h); /* a prefix, to correlate; never the token */
  }
  jk_log_int(&L, "duration_us", jk_mono_us() - d->t0_us);
  jk_log_end(&L);
}

void gw_decision_free(gw_decision *d) {
  free(d->hbuf);
  d->hbuf = NULL;
  jwtkit_claims_free(d->claims);
  d->claims = NULL;
  gw_tc_entry_release(d->entry);
  d->entry = NULL;
  d->kid = NULL;
  d->nhv = 0;
}

static void deny(gw_decision *d, int reason) {
  d->reason = reason;
  d->status = reason == GW_R_NO_ROUTE || reason == GW_R_BAD_URI ? 403 : 401;
  d->www_authenticate = d->status != 401 ? NULL : reason == GW_R_MISSING_TOKEN ? k_challenge : k_challenge_invalid;
  d->nhv = 0;
}

/* Is a cache entry still valid for this route snapshot?  (stripe lock) */
typedef struct check_ctx {
  const gw_route *r;
  const gw_route_snap *rs;
  int64_t now;
} check_ctx;

static int check_entry(void *ctx, const gw_tc_entry *e, uint64_t *new_gen) {
  const check_ctx *k = ctx;
  if (e->legacy) return k->r->legacy != NULL && k->now < k->r->legacy_deadline;
  if (e->gen == k->rs->gen) return 1;
  size_t kl;
  const char *kid = gw_tc_entry_kid(e, &kl);
  if (kid == NULL || !gw_route_snap_has_kid(k->r, k->rs, kid, kl)) return 0;
  *new_gen = k->rs->gen;
  return 1;
}

/* Why a claim header cannot be emitted. */
enum { H_OK, H_MISSING, H_EMPTY, H_CONTROL, H_LONG };
static const char *const k_hwhy[] = {
    [H_OK] = "ok",
    [H_MISSING] = "missing (nginx would pass no header)",
    [H_EMPTY] = "empty (nginx passes an empty header as none)",
    [H_CONTROL] = "holding a control character (CR, LF, NUL, tab, DEL)",
    [H_LONG] = "longer than header_max once encoded",
};

/* The token and the cache; 1 when decided. */
static int from_cache(gw_state *st, gw_route *r, const gw_route_snap *rs, const gw_token *t, int64_t now,
                      gw_decision *d) {
  if (st->cache == NULL || r->cfg->token_cache_off || jk_sha256_2(t->p, t->len, NULL, 0, d->digest) != 0) return 0;
  d->have_digest = 1;
  check_ctx ck = {r, rs, now};
  gw_tc_entry *e = gw_tcache_get(st->cache, d->digest, r->index, now, check_entry, &ck);
  if (e == NULL) return 0;
  d->entry = e;
  size_t pos = 0;
  while (d->nhv < GW_MAX_HEADERS && gw_tc_entry_header(e, &pos, &d->hv[d->nhv])) {
    d->hv[d->nhv].name = r->cfg->headers[d->hv[d->nhv].map].name;
    d->nhv++;
  }
  d->kid = gw_tc_entry_kid(e, &d->kid_len);
  if (e->legacy) gw_metrics_legacy_accept(now);
  d->reason = e->legacy ? GW_R_LEGACY_CACHED : GW_R_CACHED;
  d->status = 204;
  return 1;
}

/* Verification: main verifier, then the legacy one for an algorithm the
 * main one does not allow.  Returns the reason of a denial (>= 0), or -1
 * with *cl set (allowed; *legacy when by the migration verifier). */
static int verify(gw_route *r, const gw_route_snap *rs, const gw_token *t, int64_t now, int64_t mono_ms,
                  gw_decision *d, jwtkit_claims **cl, int *legacy) {
  jwtkit_err e = JWTKIT_OK;
  int not_ready = rs->v == NULL;
  *cl = NULL;
  *legacy = 0;
  if (!not_ready) {
    e = jwtkit_verify_at(rs->v, t->p, t->len, now, cl, &d->info);
    if (r->src != NULL && gw_source_is_stale(r->src, mono_ms)) atomic_fetch_add(&gw_stats.stale_verifications, 1);
  }
  if ((not_ready || e == JWTKIT_ERR_ALG_NOT_ALLOWED) && r->legacy != NULL) {
    jwtkit_errinfo li = {0};
    jwtkit_claims *lc = NULL;
    jwtkit_err le = jwtkit_verify_at(r->legacy, t->p, t->len, now, &lc, &li);
    if (le == JWTKIT_OK && now < r->legacy_deadline) {
      *cl = lc;
      *legacy = 1;
      return -1;
    }
    if (le == JWTKIT_OK) {
      jwtkit_claims_free(lc);
      atomic_fetch_add(&gw_stats.legacy_refused_after_deadline, 1);
      char when[32];
      jk_format_rfc3339(r->legacy_deadline, when, sizeof when);
      memset(&d->info, 0, sizeof d->info);
      snprintf(d->info.msg, sizeof d->info.msg, "valid legacy HS256 token after the migration deadline %s", when);
      return GW_R_LEGACY_DEADLINE_PASSED;
    }
    if (le != JWTKIT_ERR_ALG_NOT_ALLOWED) { /* an HS256 token that failed the legacy checks */
      d->info = li;
      return gw_reason_for_err(le);
    }
  }
  if ((not_ready || e == JWTKIT_ERR_UNKNOWN_KID) && r->src != NULL) d->refetch = r->src;
  if (not_ready) {
    memset(&d->info, 0, sizeof d->info);
    snprintf(d->info.msg, sizeof d->info.msg, "no JWK Set fetched yet for %s",
             gw_route_source_url(r->cfg) ? gw_route_source_url(r->cfg) : "-");
    return GW_R_JWKS_NOT_READY;
  }
  return e == JWTKIT_OK ? -1 : gw_reason_for_err(e);
}

/* The claim headers of an allowed token; the reason of a denial, or -1. */
static int claim_headers(const gw_config *gc, const gw_route_cfg *rc, const jwtkit_claims *cl, gw_decision *d) {
  size_t hmax = gc->header_max;
  if (rc->nheaders == 0) return -1;
  if ((d->hbuf = malloc(rc->nheaders * hmax)) == NULL) { /* never allow without the identity headers */
    snprintf(d->info.msg, sizeof d->info.msg, "out of memory");
    return GW_R_INTERNAL;
  }
  for (size_t i = 0; i < rc->nheaders; i++) {
    const gw_header_map *m = &rc->headers[i];
    long n = gw_render_claim(cl, m->claim, d->hbuf + i * hmax, hmax);
    int why = n == GW_RENDER_MISSING ? H_MISSING
              : n == GW_RENDER_TOO_LONG ? H_LONG
              : n < 0                   ? H_CONTROL
              : n == 0                  ? H_EMPTY
                                        : H_OK;
    if (why == H_OK) {
      d->hv[d->nhv++] = (gw_header){(uint8_t)i, m->name, d->hbuf + i * hmax, (size_t)n};
      continue;
    }
    /* the upstream gets no header: fine for an optional claim that is
     * absent or empty, and for any claim when the route allows failures */
    if (m->optional && (why == H_MISSING || why == H_EMPTY)) continue;
    if (!rc->claim_header_allow) {
      memset(&d->info, 0, sizeof d->info);
      snprintf(d->info.field, sizeof d->info.field, "%.31s", m->claim);
      int w = snprintf(d->info.msg, sizeof d->info.msg, "claim \"%.60s\" for header %s is %s", m->claim, m->name,
                       k_hwhy[why]);
      (void)w; /* at most 60 + 63 + 51 + 24 bytes: fits */
      return GW_R_CLAIM_HEADER;
    }
    if (why == H_MISSING) continue; /* allow: no header, as documented */
    atomic_fetch_add(&gw_stats.headers_dropped, 1);
    jk_logline L;
    if (jk_log_begin(&L, JK_LOG_WARN, "claim_header_dropped")) {
      jk_log_str(&L, "route", rc->name);
      jk_log_str(&L, "header", m->name);
      jk_log_str(&L, "claim", m->claim);
      jk_log_str(&L, "why", k_hwhy[why]);
      jk_log_end(&L);
    }
  }
  return -1;
}

/* Cache an allow until the token's exp (without leeway), iat + max_age, or
 * the migration deadline, whichever is first. */
static void remember(gw_state *st, const gw_route *r, const gw_route_snap *rs, const jwtkit_claims *cl, int legacy,
                     int64_t now, const gw_decision *d) {
  int64_t exp, iat;
  if (!d->have_digest || jwtkit_claims_get_numericdate(cl, "exp", &exp, NULL) != JWTKIT_OK) return;
  if (r->cfg->max_age > 0 && jwtkit_claims_get_numericdate(cl, "iat", &iat, NULL) == JWTKIT_OK &&
      iat + r->cfg->max_age < exp)
    exp = iat + r->cfg->max_age;
  if (legacy && r->legacy_deadline < exp) exp = r->legacy_deadline;
  if (exp > now) gw_tcache_put(st->cache, d->digest, r->index, exp, rs->gen, legacy, d->kid, d->kid_len, d->hv, d->nhv);
}

/* The request's own denials, before any token is looked at; -1: none. */
static int precheck(const gw_config *gc, const gw_request *rq, gw_decision *d) {
  if (rq->bad_uri) {
    snprintf(d->info.msg, sizeof d->info.msg, "the request URI cannot be normalised");
    return GW_R_BAD_URI;
  }
  if (rq->route == GW_NO_ROUTE || rq->route >= gc->nroutes) return GW_R_NO_ROUTE;
  d->rc = &gc->routes[rq->route];
  d->route = d->rc->name;
  const gw_token *t = &rq->token;
  if (t->ambiguous) {
    snprintf(d->info.msg, sizeof d->info.msg, "the request carries different tokens");
    return GW_R_AMBIGUOUS_TOKEN;
  }
  if (t->bad) {
    snprintf(d->info.msg, sizeof d->info.msg, "empty or unusable bearer credentials");
    return GW_R_BAD_AUTHORIZATION;
  }
  if (t->p == NULL) return GW_R_MISSING_TOKEN;
  d->have_token = 1;
  if (t->len > gc->max_token) {
    snprintf(d->info.msg, sizeof d->info.msg, "token of %zu bytes, the limit is %zu", t->len, gc->max_token);
    return GW_R_TOKEN_TOO_LARGE;
  }
  return -1;
}

/* The token's characters, checked on a cache miss only: a hit is byte for
 * byte (its SHA-256 is the key) a token that passed this check. */
static int token_chars(const gw_token *t, gw_decision *d) {
  if (gw_token_chars_ok(t->p, t->len)) return -1;
  snprintf(d->info.msg, sizeof d->info.msg, "the token has characters outside base64url and '.'");
  return gw_reason_for_err(JWTKIT_ERR_MALFORMED);
}

void gw_decide(gw_state *st, const gw_request *rq, int64_t now, int64_t mono_ms, gw_decision *d) {
  memset(d, 0, sizeof *d);
  d->t0_us = jk_mono_us();
  d->host = rq->host;
  d->path = rq->bad_uri ? NULL : rq->path;
  d->method = rq->method;
  int reason = precheck(st->cfg, rq, d);
  if (reason >= 0) {
    deny(d, reason);
    return;
  }
  gw_route *r = &st->routes[rq->route];
  gw_route_snap *rs = gw_route_snap_get(r);
  if (from_cache(st, r, rs, &rq->token, now, d)) {
    gw_route_snap_release(rs);
    return;
  }
  if ((reason = token_chars(&rq->token, d)) >= 0) {
    gw_route_snap_release(rs);
    deny(d, reason);
    return;
  }
  jwtkit_claims *cl = NULL;
  int legacy = 0;
  reason = verify(r, rs, &rq->token, now, mono_ms, d, &cl, &legacy);
  if (reason < 0) {
    d->claims = cl;
    d->refetch = NULL;
    reason = claim_headers(st->cfg, r->cfg, cl, d);
  }
  if (reason >= 0) {
    jwtkit_claims_free(d->claims);
    d->claims = NULL;
    gw_route_snap_release(rs);
    deny(d, reason);
    return;
  }
  const char *kid = jwtkit_claims_kid(cl);
  d->kid = kid;
  d->kid_len = kid ? strlen(kid) : 0;
  remember(st, r, rs, cl, legacy, now, d);
  if (legacy) gw_metrics_legacy_accept(now);
  d->reason = legacy ? GW_R_LEGACY : GW_R_VERIFIED;
  d->status = 204;
  gw_route_snap_release(rs);
}
