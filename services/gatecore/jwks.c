/*
 * A remote JWK Set: the state machine (gatecore.h, gw_sm_*), pure logic on
 * plain data with the time passed in.  The front end fetches; this decides
 * when, and what each answer means.
 *
 * A fetch runs at start, then ahead of the set's expiry; an unknown kid may
 * ask for one more.  Unknown-kid refetches are limited against each other
 * only: one at a time, at most one per cooldown counted from the start of
 * the previous one (a failed one counts).  Background refreshes do not
 * delay them: with an issuer whose max-age is below min_ttl the refresh can
 * come every few seconds, and when it restarted the cooldown the first
 * token of a new key was refused for good.
 *
 * Lifetime: Cache-Control max-age (minus Age) clamped to [min_ttl, max_ttl];
 * default_ttl when absent; no-cache/no-store count as min_ttl.  The refresh
 * runs min(refresh_ahead, ttl/2) before expiry.  A 304 to If-None-Match
 * renews the lifetime of the set held.  When fetches fail the last good set
 * stays in use ("stale") until expiry + stale_max, then it is dropped and
 * every token of the routes using it is refused until a fetch succeeds.
 * Failed fetches are retried after 1, 2, 4 ... seconds, at most cooldown.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "gw_internal.h"

static const char *const k_names[GW_FETCH_COUNT] = {
    [GW_FETCH_OK] = "ok",           [GW_FETCH_NOT_MODIFIED] = "not_modified", [GW_FETCH_HTTP_ERROR] = "http_error",
    [GW_FETCH_TIMEOUT] = "timeout", [GW_FETCH_TOO_LARGE] = "too_large",       [GW_FETCH_TRUNCATED] = "truncated",
    [GW_FETCH_INVALID] = "invalid", [GW_FETCH_EMPTY] = "empty",               [GW_FETCH_CONNECT] = "connect_error",
    [GW_FETCH_TLS] = "tls_error",   [GW_FETCH_NETWORK] = "network_error",
};

const char *gw_fetch_result_name(gw_fetch_result r) {
  return (unsigned)r < GW_FETCH_COUNT ? k_names[r] : "unknown";
}

int64_t gw_refresh_after(const gw_jwks_opts *o, int64_t ttl) {
  int64_t ahead = o->refresh_ahead < ttl / 2 ? o->refresh_ahead : ttl / 2;
  return ttl - ahead;
}

void gw_sm_init(gw_jwks_sm *s) {
  memset(s, 0, sizeof *s);
  s->last_refetch_ms = INT64_MIN;
  s->issuer_max_age = -1;
}

void gw_sm_stop(gw_jwks_sm *s) { s->stop = 1; }

static int64_t drop_at(const gw_jwks_sm *s, const gw_jwks_def *d) { return s->expires_ms + d->o.stale_max * 1000; }

/* ---------------------------------------------------------------- poll */

int gw_sm_poll(gw_jwks_sm *s, const gw_jwks_def *d, int64_t now, gw_fetch_req *req, int64_t *wake) {
  int r = 0;
  *wake = INT64_MAX;
  if (s->stop) return 0;
  if (s->have_set && now >= drop_at(s, d)) {
    s->have_set = 0;
    s->etag[0] = '\0';
    s->gen++;
    r |= GW_SM_DROPPED;
    jk_log(JK_LOG_ERROR, "jwks_dropped",
           "the JWK Set of %s was stale for longer than %lld s and is dropped: tokens for its routes are refused "
           "until a fetch succeeds",
           d->url, (long long)d->o.stale_max);
  }
  if (s->fetching) { /* its end comes through gw_sm_done */
    if (s->have_set) *wake = drop_at(s, d);
    return r;
  }
  if (s->kick || now >= s->next_fetch_ms) {
    s->kick = 0;
    s->fetching = 1;
    s->sent_etag = s->have_set && s->etag[0] != '\0';
    *req = (gw_fetch_req){.url = d->url,
                          .allow_http = d->allow_http,
                          .timeout_ms = d->o.timeout_ms,
                          .max_bytes = d->o.max_bytes,
                          .ca_file = d->o.ca_file,
                          .discovery = d->discovery};
    snprintf(req->if_none_match, sizeof req->if_none_match, "%s", s->sent_etag ? s->etag : "");
    if (s->have_set) *wake = drop_at(s, d);
    return r | GW_SM_FETCH;
  }
  *wake = s->next_fetch_ms;
  if (s->have_set && drop_at(s, d) < *wake) *wake = drop_at(s, d);
  return r;
}

/* ------------------------------------------------------------- refetch */

gw_refetch gw_sm_refetch(gw_jwks_sm *s, const gw_jwks_def *d, int64_t now) {
  if (s->stop) return GW_REFETCH_NO;
  int may = s->last_refetch_ms == INT64_MIN || now - s->last_refetch_ms >= d->o.cooldown * 1000;
  if (s->kick || s->refetch_queued) return GW_REFETCH_WAIT; /* a fetch starting after this request is coming */
  if (s->fetching) {
    /* the running fetch may have started before the key was published: one
     * more after it when allowed, else wait for this one (without a set
     * yet, the running fetch is the first one: wait for it) */
    if (may && s->have_set) {
      s->refetch_queued = 1;
      s->last_refetch_ms = now;
      atomic_fetch_add(&gw_stats.refetch_triggered, 1);
      jk_log(JK_LOG_INFO, "jwks_refetch", "unknown kid: refetching %s after the fetch in progress", d->url);
    }
    return GW_REFETCH_WAIT;
  }
  if (!may) {
    atomic_fetch_add(&gw_stats.refetch_cooldown, 1);
    return GW_REFETCH_NO;
  }
  s->kick = 1;
  s->last_refetch_ms = now;
  atomic_fetch_add(&gw_stats.refetch_triggered, 1);
  jk_log(JK_LOG_INFO, "jwks_refetch", "unknown kid: refetching %s", d->url);
  return GW_REFETCH_KICKED;
}

/* ------------------------------------------------------------ evaluate */

/* Cache-Control -> lifetime in seconds; *raw gets the issuer's own value
 * before the clamp (max-age minus Age, 0 for no-cache / no-store), -1 when
 * it gave none. */
static int64_t lifetime(const gw_jwks_opts *o, const char *cc, int64_t age, int64_t *raw) {
  int64_t ttl = o->default_ttl;
  *raw = -1;
  const char *p = cc;
  while (p != NULL && *p) {
    while (*p == ' ' || *p == '\t' || *p == ',') p++;
    const char *e = p;
    while (*e && *e != ',') e++;
    size_t n = (size_t)(e - p);
    if (n >= 8 && strncasecmp(p, "max-age=", 8) == 0) {
      const char *q = p + 8;
      if (*q == '"') q++;
      int64_t v = 0;
      int digits = 0;
      while (q < e && *q >= '0' && *q <= '9') {
        if (v < 100000000) v = v * 10 + (*q - '0');
        q++;
        digits++;
      }
      if (digits > 0) {
        ttl = v - (age > 0 ? age : 0);
        *raw = ttl < 0 ? 0 : ttl;
      }
    } else if (n >= 8 && (strncasecmp(p, "no-store", 8) == 0 || strncasecmp(p, "no-cache", 8) == 0)) {
      ttl = 0;
      *raw = 0;
      break;
    }
    p = e;
  }
  if (ttl < o->min_ttl) ttl = o->min_ttl;
  if (ttl > o->max_ttl) ttl = o->max_ttl;
  return ttl;
}

typedef struct skip_ctx {
  const char *url;
  size_t n;
} skip_ctx;

static void on_skip(void *ctx, size_t index, const jwtkit_errinfo *why) {
  skip_ctx *k = ctx;
  k->n++;
  jk_logline L;
  if (jk_log_begin(&L, JK_LOG_DEBUG, "jwks_key_skipped")) {
    jk_log_str(&L, "source", k->url);
    jk_log_uint(&L, "index", index);
    jk_log_str(&L, "reason", jwtkit_errname(why->code));
    jk_log_str(&L, "detail", why->msg);
    jk_log_end(&L);
  }
}

void gw_fetch_outcome_clear(gw_fetch_outcome *o) {
  jwtkit_jwks_free(o->jwks);
  o->jwks = NULL;
}

void gw_fetch_evaluate(const gw_jwks_def *d, int sent_etag, const gw_fetch_resp *resp, gw_fetch_outcome *out) {
  memset(out, 0, sizeof *out);
  out->max_age = -1;
  out->status = resp->status;
  out->bytes = resp->len;
  if (resp->result != GW_FETCH_OK) {
    out->r = resp->result;
    snprintf(out->detail, sizeof out->detail, "%s", resp->detail ? resp->detail : gw_fetch_result_name(out->r));
    return;
  }
  if (resp->status == 304 && sent_etag) {
    out->r = GW_FETCH_NOT_MODIFIED;
    out->ttl = lifetime(&d->o, resp->cache_control, resp->age, &out->max_age);
    return;
  }
  if (resp->status != 200) {
    out->r = GW_FETCH_HTTP_ERROR;
    snprintf(out->detail, sizeof out->detail, "HTTP status %ld", resp->status);
    return;
  }
  jwtkit_errinfo info = {0};
  skip_ctx sk = {d->url, 0};
  jwtkit_jwks *set = NULL;
  jwtkit_err e = resp->len > 0 ? jwtkit_jwks_parse(&set, resp->body, resp->len, d->rsa_default, on_skip, &sk, &info)
                               : JWTKIT_ERR_MALFORMED;
  out->skipped = sk.n;
  if (e != JWTKIT_OK) {
    out->r = GW_FETCH_INVALID;
    snprintf(out->detail, sizeof out->detail, "%s: %s", jwtkit_errname(e), resp->len ? info.msg : "empty body");
    return;
  }
  if (jwtkit_jwks_count(set) == 0) {
    jwtkit_jwks_free(set);
    out->r = GW_FETCH_EMPTY;
    snprintf(out->detail, sizeof out->detail, "no usable signature key in the set (%zu skipped)", sk.n);
    return;
  }
  out->r = GW_FETCH_OK;
  out->jwks = set;
  out->ttl = lifetime(&d->o, resp->cache_control, resp->age, &out->max_age);
  snprintf(out->etag, sizeof out->etag, "%s", resp->etag ? resp->etag : "");
}

/* ---------------------------------------------------------------- done */

static int max_age_short(const gw_jwks_sm *s, const gw_jwks_def *d) {
  return s->issuer_max_age >= 0 && s->issuer_max_age < d->o.min_ttl;
}

void gw_sm_warn_max_age(const gw_jwks_sm *s, const gw_jwks_def *d) {
  if (!max_age_short(s, d)) return;
  jk_logline L;
  if (!jk_log_begin(&L, JK_LOG_WARN, "jwks_max_age_below_min_ttl")) return;
  const gw_jwks_opts *o = &d->o;
  char msg[640];
  snprintf(msg, sizeof msg,
           "the issuer's JWK Set max-age (%lld s) is below jwks_min_ttl (%lld s): the gate keeps the set %lld s "
           "and refreshes it every %lld s, so a key the issuer publishes less than that before it signs is learnt "
           "only by an unknown-kid refetch, at most one per jwks_cooldown (%lld s); set jwks_min_ttl to %lld s or "
           "less, or jwks_cooldown below the issuer's rotation period",
           (long long)s->issuer_max_age, (long long)o->min_ttl, (long long)o->min_ttl,
           (long long)gw_refresh_after(o, o->min_ttl), (long long)o->cooldown,
           (long long)(s->issuer_max_age > 0 ? s->issuer_max_age : 1));
  jk_log_str(&L, "source", d->url);
  jk_log_int(&L, "issuer_max_age_s", s->issuer_max_age);
  jk_log_int(&L, "jwks_min_ttl_s", o->min_ttl);
  jk_log_int(&L, "jwks_cooldown_s", o->cooldown);
  jk_log_str(&L, "msg", msg);
  jk_log_end(&L);
}

static int apply_good(gw_jwks_sm *s, const gw_jwks_def *d, gw_fetch_outcome *o, int64_t now) {
  int was_stale = s->have_set && now >= s->expires_ms;
  s->fetched_ms = now;
  s->expires_ms = now + o->ttl * 1000;
  s->next_fetch_ms = now + gw_refresh_after(&d->o, o->ttl) * 1000;
  if (o->max_age != s->issuer_max_age) s->warned_max_age = 0;
  s->issuer_max_age = o->max_age;
  if (max_age_short(s, d) && !s->warned_max_age) {
    gw_sm_warn_max_age(s, d);
    s->warned_max_age = 1;
  }
  s->failures = 0;
  s->logged_stale = 0;
  int r = 0;
  jk_logline L;
  if (o->r == GW_FETCH_OK) {
    snprintf(s->etag, sizeof s->etag, "%s", o->etag);
    s->have_set = 1;
    s->gen++;
    r = GW_SM_PUBLISH;
    if (jk_log_begin(&L, JK_LOG_INFO, "jwks_fetched")) {
      jk_log_str(&L, "source", d->url);
      jk_log_uint(&L, "keys", jwtkit_jwks_count(o->jwks));
      jk_log_uint(&L, "skipped", o->skipped);
      jk_log_uint(&L, "bytes", o->bytes);
      jk_log_int(&L, "ttl_s", o->ttl);
      jk_log_uint(&L, "generation", s->gen);
      jk_log_bool(&L, "etag", s->etag[0] != '\0');
      jk_log_end(&L);
    }
  } else if (jk_log_begin(&L, JK_LOG_DEBUG, "jwks_not_modified")) {
    jk_log_str(&L, "source", d->url);
    jk_log_int(&L, "ttl_s", o->ttl);
    jk_log_end(&L);
  }
  if (was_stale) jk_log(JK_LOG_INFO, "jwks_fresh_again", "the JWK Set of %s is fresh again", d->url);
  return r;
}

static void apply_failure(gw_jwks_sm *s, const gw_jwks_def *d, const gw_fetch_outcome *o, int64_t now) {
  s->failures++;
  int64_t backoff = s->failures >= 20 ? d->o.cooldown : ((int64_t)1 << (s->failures - 1));
  if (backoff > d->o.cooldown) backoff = d->o.cooldown;
  s->next_fetch_ms = now + backoff * 1000;
  int stale = s->have_set && now >= s->expires_ms;
  jk_logline L;
  if (jk_log_begin(&L, stale || !s->have_set ? JK_LOG_WARN : JK_LOG_INFO, "jwks_fetch_failed")) {
    jk_log_str(&L, "source", d->url);
    jk_log_str(&L, "result", gw_fetch_result_name(o->r));
    if (o->status) jk_log_int(&L, "http_status", o->status);
    jk_log_str(&L, "detail", o->detail);
    jk_log_int(&L, "consecutive_failures", s->failures);
    jk_log_int(&L, "retry_in_s", backoff);
    jk_log_bool(&L, "have_set", s->have_set);
    if (s->have_set) {
      jk_log_bool(&L, "serving_stale", stale);
      jk_log_int(&L, "set_age_s", (now - s->fetched_ms) / 1000);
    }
    jk_log_end(&L);
  }
  if (stale && !s->logged_stale) {
    s->logged_stale = 1;
    jk_log(JK_LOG_WARN, "jwks_stale",
           "serving the last good JWK Set of %s past its lifetime; it is dropped after %lld s more without a "
           "successful fetch",
           d->url, (long long)((drop_at(s, d) - now) / 1000));
  }
}

int gw_sm_done(gw_jwks_sm *s, const gw_jwks_def *d, int64_t now, gw_fetch_outcome *o) {
  int r = 0;
  if (!s->stop || o->r == GW_FETCH_OK) {
    if (o->r == GW_FETCH_NOT_MODIFIED && !s->have_set) o->r = GW_FETCH_HTTP_ERROR; /* 304 without a set */
    s->fetches[o->r]++;
    if (o->r == GW_FETCH_OK || o->r == GW_FETCH_NOT_MODIFIED)
      r = apply_good(s, d, o, now);
    else
      apply_failure(s, d, o, now);
  }
  s->fetching = 0;
  if (s->refetch_queued && !s->stop) {
    /* an unknown kid came while this fetch ran (it may have started before
     * the key was published): one more at once; the parked requests wait
     * for it */
    s->refetch_queued = 0;
    s->kick = 1;
    r |= GW_SM_AGAIN;
  }
  return r;
}

/* -------------------------------------------------------------- status */

void gw_sm_status(const gw_jwks_sm *s, const gw_jwks_def *d, int64_t now, gw_source_status *st) {
  memset(st, 0, sizeof *st);
  st->have_set = s->have_set;
  st->gen = s->gen;
  st->stale = s->have_set && now >= s->expires_ms;
  st->age_ms = s->have_set ? now - s->fetched_ms : -1;
  st->expires_in_ms = s->have_set ? s->expires_ms - now : 0;
  st->issuer_max_age = s->issuer_max_age;
  st->min_ttl = d->o.min_ttl;
  st->max_age_below_min_ttl = max_age_short(s, d);
  memcpy(st->fetches, s->fetches, sizeof st->fetches);
}
