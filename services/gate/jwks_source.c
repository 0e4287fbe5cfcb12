/*
 * A remote JWK Set, cached.
 *
 * One fetcher thread per source owns the curl handle.  It fetches at start,
 * then ahead of the set's expiry; an unknown kid may ask for one extra fetch
 * (gate_source_refetch).  Unknown-kid refetches are limited against each
 * other only: one at a time, at most one per cooldown counted from the
 * start of the previous one (a failed one counts).  Background refreshes do
 * not delay them: with an issuer whose max-age is below min_ttl the
 * background refresh can come every few seconds, and when it restarted the
 * cooldown the first token of a new key was refused for good.  Each good
 * set is published as a new refcounted gate_keyset with a higher
 * generation; verifying threads only ever read the latest published keyset
 * and never wait for the network.
 *
 * Lifetime: Cache-Control max-age (minus Age) clamped to [min_ttl, max_ttl];
 * default_ttl when absent; no-cache/no-store count as min_ttl.  The refresh
 * runs min(refresh_ahead, ttl/2) before expiry.  A 304 to If-None-Match
 * renews the lifetime of the set held.  When fetches fail the last good set
 * stays in use ("stale") until expiry + stale_max, then it is dropped and
 * every token of the routes using it is refused until a fetch succeeds.
 * Failed fetches are retried after 1, 2, 4 ... seconds, at most `cooldown`.
 */
#include <curl/curl.h>
#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "gate_internal.h"

struct gate_source {
  atomic_uint refs;
  char *url;
  int allow_http;
  jwtkit_alg rsa_default;
  gate_source_opts o;
  char *ca_file;

  pthread_t thread;
  int thread_started;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  atomic_int abort_fetch;

  /* under mu */
  int stop;
  int kick;
  int fetching;
  int refetch_queued;      /* an unknown-kid refetch to start once the running fetch ends */
  int64_t last_refetch_ms; /* start of the last unknown-kid refetch; INT64_MIN: never */
  int64_t issuer_max_age;  /* the issuer's max-age (minus Age) in the last answer; -1: none seen */
  int warned_max_age;      /* the max-age below min_ttl warning was logged for the current value */
  int64_t next_fetch_ms;
  int failures;
  gate_keyset *cur; /* never NULL */
  int have_set;
  int64_t fetched_ms; /* last 200 or 304 */
  int64_t expires_ms;
  uint64_t gen_counter;
  char etag[GATE_MAX_ETAG];
  struct MHD_Connection *waiters[GATE_MAX_WAITERS];
  size_t nwaiters;
  int logged_stale;

  /* lock-free readers */
  atomic_uint_fast64_t gen;
  atomic_llong expires_pub; /* expires_ms while have_set, else INT64_MAX */
  atomic_ulong fetches[GF_COUNT];

  CURL *curl; /* fetcher thread only */
};

static const char *const fetch_names[GF_COUNT] = {
    [GF_OK] = "ok",         [GF_NOT_MODIFIED] = "not_modified", [GF_HTTP_ERROR] = "http_error",
    [GF_TIMEOUT] = "timeout", [GF_TOO_LARGE] = "too_large",     [GF_TRUNCATED] = "truncated",
    [GF_INVALID] = "invalid", [GF_EMPTY] = "empty",             [GF_CONNECT] = "connect_error",
    [GF_TLS] = "tls_error",   [GF_NETWORK] = "network_error",
};

const char *gate_fetch_result_name(gate_fetch_result r) {
  return (r >= 0 && r < GF_COUNT) ? fetch_names[r] : "unknown";
}

/* ------------------------------------------------------------ keysets */

static gate_keyset *keyset_new(jwtkit_jwks *jwks, uint64_t gen) {
  gate_keyset *ks = calloc(1, sizeof *ks);
  if (ks == NULL) return NULL;
  atomic_init(&ks->refs, 1);
  ks->jwks = jwks;
  ks->gen = gen;
  return ks;
}

gate_keyset *gate_keyset_ref(gate_keyset *ks) {
  if (ks != NULL) atomic_fetch_add(&ks->refs, 1);
  return ks;
}

void gate_keyset_release(gate_keyset *ks) {
  if (ks == NULL || atomic_fetch_sub(&ks->refs, 1) != 1) return;
  jwtkit_jwks_free(ks->jwks);
  free(ks);
}

/* ----------------------------------------------------------- helpers */

static void resume_all(struct MHD_Connection **w, size_t n) {
  for (size_t i = 0; i < n; i++) MHD_resume_connection(w[i]);
}

/* Take the parked connections (under mu). */
static size_t take_waiters(gate_source *s, struct MHD_Connection **out) {
  size_t n = s->nwaiters;
  memcpy(out, s->waiters, n * sizeof *out);
  s->nwaiters = 0;
  return n;
}

static void publish(gate_source *s, jwtkit_jwks *jwks) {
  gate_keyset *ks = keyset_new(jwks, ++s->gen_counter);
  if (ks == NULL) {
    jwtkit_jwks_free(jwks);
    gate_log(GL_ERROR, "jwks_publish_failed", "out of memory");
    return;
  }
  gate_keyset *old = s->cur;
  s->cur = ks;
  atomic_store(&s->gen, ks->gen);
  gate_keyset_release(old);
}

/* Cache-Control -> lifetime in seconds; *raw gets the issuer's own value
 * before the clamp (max-age minus Age, 0 for no-cache / no-store), -1 when
 * it gave none. */
static int64_t lifetime(const gate_source *s, const char *cc, int64_t age, int64_t *raw) {
  int64_t ttl = s->o.default_ttl;
  *raw = -1;
  const char *p = cc;
  while (p != NULL && *p) {
    while (*p == ' ' || *p == '\t' || *p == ',') p++;
    const char *e = p;
    while (*e && *e != ',') e++;
    size_t n = (size_t)(e - p);
    if (n >= 8 && strncasecmp(p, "max-age=", 8) == 0) {
      const char *q = p + 8;
      int quoted = *q == '"';
      if (quoted) q++;
      int64_t v = 0;
      int digits = 0;
      while (q < e && *q >= '0' && *q <= '9') {
        if (v < 100000000) v = v * 10 + (*q - '0');
        q++;
        digits++;
      }
      if (digits > 0) ttl = v - (age > 0 ? age : 0);
      if (digits > 0) *raw = ttl < 0 ? 0 : ttl;
    } else if ((n >= 8 && strncasecmp(p, "no-store", 8) == 0) || (n >= 8 && strncasecmp(p, "no-cache", 8) == 0)) {
      ttl = 0;
      *raw = 0;
      break;
    }
    p = e;
  }
  if (ttl < s->o.min_ttl) ttl = s->o.min_ttl;
  if (ttl > s->o.max_ttl) ttl = s->o.max_ttl;
  return ttl;
}

/* -------------------------------------------------------------- curl */

typedef struct fetch_ctx {
  gate_source *s;
  char *body;
  size_t len, cap;
  int too_large;
  char cc[512];
  char etag[GATE_MAX_ETAG];
  int64_t age;
} fetch_ctx;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud) {
  fetch_ctx *f = ud;
  size_t n = size * nmemb;
  if (n > f->s->o.max_bytes - f->len) {
    f->too_large = 1;
    return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
  }
  if (f->len + n + 1 > f->cap) {
    size_t nc = f->cap ? f->cap : 4096;
    while (nc < f->len + n + 1) nc *= 2;
    if (nc > f->s->o.max_bytes + 1) nc = f->s->o.max_bytes + 1;
    char *nb = realloc(f->body, nc);
    if (nb == NULL) return 0;
    f->body = nb;
    f->cap = nc;
  }
  memcpy(f->body + f->len, ptr, n);
  f->len += n;
  f->body[f->len] = '\0';
  return n;
}

static void header_value(const char *v, size_t n, char *out, size_t cap) {
  while (n > 0 && (*v == ' ' || *v == '\t')) v++, n--;
  while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ' || v[n - 1] == '\t')) n--;
  if (n >= cap) {
    out[0] = '\0'; /* too long: ignored */
    return;
  }
  memcpy(out, v, n);
  out[n] = '\0';
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ud) {
  fetch_ctx *f = ud;
  size_t n = size * nitems;
  if (n >= 5 && strncmp(buf, "HTTP/", 5) == 0) { /* a new response (after 1xx): start over */
    f->cc[0] = f->etag[0] = '\0';
    f->age = 0;
    return n;
  }
  const char *colon = memchr(buf, ':', n);
  if (colon == NULL) return n;
  size_t kn = (size_t)(colon - buf);
  const char *v = colon + 1;
  size_t vn = n - kn - 1;
  if (kn == 13 && strncasecmp(buf, "Cache-Control", 13) == 0) {
    header_value(v, vn, f->cc, sizeof f->cc);
  } else if (kn == 4 && strncasecmp(buf, "ETag", 4) == 0) {
    header_value(v, vn, f->etag, sizeof f->etag);
    for (char *q = f->etag; *q; q++)
      if ((unsigned char)*q < 0x20 || *q == 0x7F) f->etag[0] = '\0';
  } else if (kn == 3 && strncasecmp(buf, "Age", 3) == 0) {
    char a[24];
    header_value(v, vn, a, sizeof a);
    uint64_t u;
    if (gate_parse_uint(a, 0, 100000000, &u) == 0) f->age = (int64_t)u;
  }
  return n;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
  (void)dt, (void)dn, (void)ut, (void)un;
  gate_source *s = ud;
  return atomic_load(&s->abort_fetch) ? 1 : 0;
}

static int curl_setup(gate_source *s) {
  if (s->curl != NULL) return 0;
  CURL *c = curl_easy_init();
  if (c == NULL) return -1;
  int ok = 1;
  ok &= curl_easy_setopt(c, CURLOPT_URL, s->url) == CURLE_OK;
  ok &= curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, s->allow_http ? "https,http" : "https") == CURLE_OK;
  ok &= curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "https") == CURLE_OK;
  ok &= curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK;
  ok &= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) == CURLE_OK;
  ok &= curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)s->o.timeout_ms) == CURLE_OK;
  ok &= curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)s->o.timeout_ms) == CURLE_OK;
  ok &= curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)s->o.max_bytes) == CURLE_OK;
  ok &= curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK;
  ok &= curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header) == CURLE_OK;
  ok &= curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress) == CURLE_OK;
  ok &= curl_easy_setopt(c, CURLOPT_XFERINFODATA, s) == CURLE_OK;
  ok &= curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L) == CURLE_OK;
  ok &= curl_easy_setopt(c, CURLOPT_USERAGENT, "jwtkit-gate/" JWTKIT_VERSION) == CURLE_OK;
  ok &= curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK;
  ok &= curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK;
  if (s->ca_file != NULL) ok &= curl_easy_setopt(c, CURLOPT_CAINFO, s->ca_file) == CURLE_OK;
  if (!ok) {
    curl_easy_cleanup(c);
    return -1;
  }
  s->curl = c;
  return 0;
}

typedef struct skip_ctx {
  const char *url;
  size_t n;
} skip_ctx;

static void on_skip(void *ctx, size_t index, const jwtkit_errinfo *why) {
  skip_ctx *k = ctx;
  k->n++;
  gate_logline L;
  if (gl_begin(&L, GL_DEBUG, "jwks_key_skipped")) {
    gl_str(&L, "source", k->url);
    gl_int(&L, "index", (int64_t)index);
    gl_str(&L, "reason", jwtkit_errname(why->code));
    gl_str(&L, "detail", why->msg);
    gl_end(&L);
  }
}

typedef struct fetch_out {
  gate_fetch_result r;
  jwtkit_jwks *jwks;
  int64_t ttl;
  int64_t max_age; /* the issuer's, before the clamp; -1: none */
  char etag[GATE_MAX_ETAG];
  long status;
  size_t bytes, skipped;
  char detail[256];
} fetch_out;

/* One HTTP exchange, outside the lock.  `etag`: the If-None-Match value or "". */
static void fetch_once(gate_source *s, const char *etag, fetch_out *out) {
  memset(out, 0, sizeof *out);
  fetch_ctx f = {.s = s};
  if (curl_setup(s) != 0) {
    out->r = GF_NETWORK;
    snprintf(out->detail, sizeof out->detail, "curl initialisation failed");
    return;
  }
  struct curl_slist *hl = curl_slist_append(NULL, "Accept: application/jwk-set+json, application/json");
  char inm[GATE_MAX_ETAG + 32];
  if (etag[0] != '\0') {
    snprintf(inm, sizeof inm, "If-None-Match: %s", etag);
    struct curl_slist *t = curl_slist_append(hl, inm);
    if (t != NULL) hl = t;
  }
  curl_easy_setopt(s->curl, CURLOPT_HTTPHEADER, hl);
  curl_easy_setopt(s->curl, CURLOPT_WRITEDATA, &f);
  curl_easy_setopt(s->curl, CURLOPT_HEADERDATA, &f);
  char cerr[CURL_ERROR_SIZE];
  cerr[0] = '\0';
  curl_easy_setopt(s->curl, CURLOPT_ERRORBUFFER, cerr);
  CURLcode rc = curl_easy_perform(s->curl);
  curl_easy_setopt(s->curl, CURLOPT_HTTPHEADER, NULL);
  curl_easy_setopt(s->curl, CURLOPT_ERRORBUFFER, NULL);
  curl_slist_free_all(hl);
  long status = 0;
  curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
  out->status = status;
  out->bytes = f.len;
  if (rc != CURLE_OK) {
    switch (rc) {
      case CURLE_OPERATION_TIMEDOUT:
        out->r = GF_TIMEOUT;
        break;
      case CURLE_FILESIZE_EXCEEDED:
        out->r = GF_TOO_LARGE;
        break;
      case CURLE_WRITE_ERROR:
        out->r = f.too_large ? GF_TOO_LARGE : GF_NETWORK;
        break;
      case CURLE_PARTIAL_FILE:
        out->r = GF_TRUNCATED;
        break;
      case CURLE_COULDNT_CONNECT:
      case CURLE_COULDNT_RESOLVE_HOST:
      case CURLE_COULDNT_RESOLVE_PROXY:
        out->r = GF_CONNECT;
        break;
      case CURLE_SSL_CONNECT_ERROR:
      case CURLE_PEER_FAILED_VERIFICATION:
      case CURLE_SSL_CERTPROBLEM:
      case CURLE_SSL_CIPHER:
      case CURLE_SSL_CACERT_BADFILE:
        out->r = GF_TLS;
        break;
      default:
        out->r = GF_NETWORK;
    }
    snprintf(out->detail, sizeof out->detail, "%s", cerr[0] ? cerr : curl_easy_strerror(rc));
    free(f.body);
    return;
  }
  if (status == 304 && etag[0] != '\0') {
    out->r = GF_NOT_MODIFIED;
    out->ttl = lifetime(s, f.cc, f.age, &out->max_age);
    free(f.body);
    return;
  }
  if (status != 200) {
    out->r = GF_HTTP_ERROR;
    snprintf(out->detail, sizeof out->detail, "HTTP status %ld", status);
    free(f.body);
    return;
  }
  jwtkit_errinfo info = {0};
  skip_ctx sk = {s->url, 0};
  jwtkit_jwks *set = NULL;
  jwtkit_err e = f.body ? jwtkit_jwks_parse(&set, f.body, f.len, s->rsa_default, on_skip, &sk, &info)
                        : JWTKIT_ERR_MALFORMED;
  free(f.body);
  out->skipped = sk.n;
  if (e != JWTKIT_OK) {
    out->r = GF_INVALID;
    snprintf(out->detail, sizeof out->detail, "%s: %s", jwtkit_errname(e), f.len ? info.msg : "empty body");
    return;
  }
  if (jwtkit_jwks_count(set) == 0) {
    jwtkit_jwks_free(set);
    out->r = GF_EMPTY;
    snprintf(out->detail, sizeof out->detail, "no usable signature key in the set (%zu skipped)", sk.n);
    return;
  }
  out->r = GF_OK;
  out->jwks = set;
  out->ttl = lifetime(s, f.cc, f.age, &out->max_age);
  snprintf(out->etag, sizeof out->etag, "%s", f.etag);
}

/* The refresh interval for a lifetime (the refresh runs this long after a
 * good fetch). */
static int64_t refresh_after(const gate_source *s, int64_t ttl) {
  int64_t ahead = s->o.refresh_ahead < ttl / 2 ? s->o.refresh_ahead : ttl / 2;
  return ttl - ahead;
}

/* The issuer's max-age is below jwks_min_ttl (under mu; logged once per
 * value, and again by gate_source_warn_max_age at reload). */
static void warn_max_age(gate_source *s) {
  gate_logline L;
  if (!gl_begin(&L, GL_WARN, "jwks_max_age_below_min_ttl")) return;
  char msg[640];
  snprintf(msg, sizeof msg,
           "the issuer's JWK Set max-age (%lld s) is below jwks_min_ttl (%lld s): the gate keeps the set %lld s "
           "and refreshes it every %lld s, so a key the issuer publishes less than that before it signs is learnt "
           "only by an unknown-kid refetch, at most one per jwks_cooldown (%lld s); set jwks_min_ttl to %lld s or "
           "less, or jwks_cooldown below the issuer's rotation period",
           (long long)s->issuer_max_age, (long long)s->o.min_ttl, (long long)s->o.min_ttl,
           (long long)refresh_after(s, s->o.min_ttl), (long long)s->o.cooldown,
           (long long)(s->issuer_max_age > 0 ? s->issuer_max_age : 1));
  gl_str(&L, "source", s->url);
  gl_int(&L, "issuer_max_age_s", s->issuer_max_age);
  gl_int(&L, "jwks_min_ttl_s", s->o.min_ttl);
  gl_int(&L, "jwks_cooldown_s", s->o.cooldown);
  gl_str(&L, "msg", msg);
  gl_end(&L);
}

static int max_age_short(const gate_source *s) {
  return s->issuer_max_age >= 0 && s->issuer_max_age < s->o.min_ttl;
}

void gate_source_warn_max_age(gate_source *s) {
  pthread_mutex_lock(&s->mu);
  if (max_age_short(s)) warn_max_age(s);
  pthread_mutex_unlock(&s->mu);
}

/* Apply a fetch outcome (under mu). */
static void apply(gate_source *s, fetch_out *fo, int64_t now) {
  if (fo->r == GF_NOT_MODIFIED && !s->have_set) fo->r = GF_HTTP_ERROR; /* 304 without a set: not expected */
  atomic_fetch_add(&s->fetches[fo->r], 1);
  gate_logline L;
  if (fo->r == GF_OK || fo->r == GF_NOT_MODIFIED) {
    int64_t ttl = fo->ttl;
    int was_stale = s->have_set && now >= s->expires_ms;
    s->fetched_ms = now;
    s->expires_ms = now + ttl * 1000;
    s->next_fetch_ms = now + refresh_after(s, ttl) * 1000;
    if (fo->max_age != s->issuer_max_age) s->warned_max_age = 0;
    s->issuer_max_age = fo->max_age;
    if (max_age_short(s) && !s->warned_max_age) {
      warn_max_age(s);
      s->warned_max_age = 1;
    }
    s->failures = 0;
    s->logged_stale = 0;
    if (fo->r == GF_OK) {
      size_t nkeys = jwtkit_jwks_count(fo->jwks);
      snprintf(s->etag, sizeof s->etag, "%s", fo->etag);
      publish(s, fo->jwks);
      fo->jwks = NULL;
      s->have_set = 1;
      if (gl_begin(&L, GL_INFO, "jwks_fetched")) {
        gl_str(&L, "source", s->url);
        gl_int(&L, "keys", (int64_t)nkeys);
        gl_int(&L, "skipped", (int64_t)fo->skipped);
        gl_int(&L, "bytes", (int64_t)fo->bytes);
        gl_int(&L, "ttl_s", ttl);
        gl_int(&L, "generation", (int64_t)s->gen_counter);
        gl_bool(&L, "etag", s->etag[0] != '\0');
        gl_end(&L);
      }
    } else if (gl_begin(&L, GL_DEBUG, "jwks_not_modified")) {
      gl_str(&L, "source", s->url);
      gl_int(&L, "ttl_s", ttl);
      gl_end(&L);
    }
    if (was_stale) gate_log(GL_INFO, "jwks_fresh_again", "the JWK Set of %s is fresh again", s->url);
    atomic_store(&s->expires_pub, s->expires_ms);
    return;
  }
  s->failures++;
  int64_t backoff = s->failures >= 20 ? s->o.cooldown : ((int64_t)1 << (s->failures - 1));
  if (backoff > s->o.cooldown) backoff = s->o.cooldown;
  s->next_fetch_ms = now + backoff * 1000;
  int stale = s->have_set && now >= s->expires_ms;
  if (gl_begin(&L, stale || !s->have_set ? GL_WARN : GL_INFO, "jwks_fetch_failed")) {
    gl_str(&L, "source", s->url);
    gl_str(&L, "result", fetch_names[fo->r]);
    if (fo->status) gl_int(&L, "http_status", fo->status);
    gl_str(&L, "detail", fo->detail);
    gl_int(&L, "consecutive_failures", s->failures);
    gl_int(&L, "retry_in_s", backoff);
    gl_bool(&L, "have_set", s->have_set);
    if (s->have_set) {
      gl_bool(&L, "serving_stale", stale);
      gl_int(&L, "set_age_s", (now - s->fetched_ms) / 1000);
    }
    gl_end(&L);
  }
  if (stale && !s->logged_stale) {
    s->logged_stale = 1;
    gate_log(GL_WARN, "jwks_stale",
             "serving the last good JWK Set of %s past its lifetime; it is dropped after %lld s more without a "
             "successful fetch",
             s->url, (long long)((s->expires_ms + s->o.stale_max * 1000 - now) / 1000));
  }
}

/* Drop a set that has been stale for longer than stale_max (under mu). */
static void check_drop(gate_source *s, int64_t now) {
  if (!s->have_set || now < s->expires_ms + s->o.stale_max * 1000) return;
  s->have_set = 0;
  s->etag[0] = '\0';
  atomic_store(&s->expires_pub, INT64_MAX);
  publish(s, NULL);
  gate_log(GL_ERROR, "jwks_dropped",
           "the JWK Set of %s was stale for longer than %lld s and is dropped: tokens for its routes are refused "
           "until a fetch succeeds",
           s->url, (long long)s->o.stale_max);
}

static void wait_until(gate_source *s, int64_t deadline_ms) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  int64_t d = deadline_ms - now;
  if (d <= 0) return;
  if (d > 3600 * 1000) d = 3600 * 1000;
  ts.tv_sec += d / 1000;
  ts.tv_nsec += (d % 1000) * 1000000;
  if (ts.tv_nsec >= 1000000000) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000;
  }
  pthread_cond_timedwait(&s->cv, &s->mu, &ts);
}

static void *fetcher(void *arg) {
  gate_source *s = arg;
  struct MHD_Connection *w[GATE_MAX_WAITERS];
  pthread_mutex_lock(&s->mu);
  while (!s->stop) {
    int64_t now = gate_mono_ms();
    check_drop(s, now);
    if (!s->kick && now < s->next_fetch_ms) {
      int64_t wake = s->next_fetch_ms;
      if (s->have_set) {
        int64_t drop = s->expires_ms + s->o.stale_max * 1000;
        if (drop < wake) wake = drop;
      }
      wait_until(s, wake);
      continue;
    }
    s->kick = 0;
    s->fetching = 1;
    char etag[GATE_MAX_ETAG];
    snprintf(etag, sizeof etag, "%s", s->have_set ? s->etag : "");
    pthread_mutex_unlock(&s->mu);

    fetch_out fo;
    fetch_once(s, etag, &fo);

    pthread_mutex_lock(&s->mu);
    if (!s->stop || fo.r == GF_OK) apply(s, &fo, gate_mono_ms());
    jwtkit_jwks_free(fo.jwks);
    s->fetching = 0;
    if (s->refetch_queued && !s->stop) {
      /* an unknown kid came while this fetch ran (it may have started
       * before the key was published): one more, at once; the parked
       * requests wait for it */
      s->refetch_queued = 0;
      s->kick = 1;
      continue;
    }
    size_t n = take_waiters(s, w);
    pthread_mutex_unlock(&s->mu);
    resume_all(w, n);
    pthread_mutex_lock(&s->mu);
  }
  size_t n = take_waiters(s, w);
  pthread_mutex_unlock(&s->mu);
  resume_all(w, n);
  return NULL;
}

/* ------------------------------------------------------------- public */

gate_source *gate_source_new(const char *url, int allow_http, jwtkit_alg rsa_default, const gate_source_opts *o,
                             int start) {
  gate_source *s = calloc(1, sizeof *s);
  if (s == NULL) return NULL;
  atomic_init(&s->refs, 1);
  s->allow_http = allow_http;
  s->rsa_default = rsa_default;
  s->o = *o;
  s->o.ca_file = NULL;
  s->url = gate_strndup(url, strlen(url));
  s->ca_file = o->ca_file ? gate_strndup(o->ca_file, strlen(o->ca_file)) : NULL;
  s->cur = keyset_new(NULL, 0);
  s->last_refetch_ms = INT64_MIN;
  s->issuer_max_age = -1;
  s->next_fetch_ms = 0;
  atomic_init(&s->expires_pub, INT64_MAX);
  if (s->url == NULL || s->cur == NULL || (o->ca_file && s->ca_file == NULL)) goto fail;
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  int cv_ok = pthread_cond_init(&s->cv, &ca) == 0;
  pthread_condattr_destroy(&ca);
  if (!cv_ok) goto fail;
  if (pthread_mutex_init(&s->mu, NULL) != 0) {
    pthread_cond_destroy(&s->cv);
    goto fail;
  }
  if (start) {
    if (pthread_create(&s->thread, NULL, fetcher, s) != 0) {
      pthread_mutex_destroy(&s->mu);
      pthread_cond_destroy(&s->cv);
      goto fail;
    }
    s->thread_started = 1;
  }
  return s;
fail:
  gate_keyset_release(s->cur);
  free(s->url);
  free(s->ca_file);
  free(s);
  return NULL;
}

gate_source *gate_source_ref(gate_source *s) {
  atomic_fetch_add(&s->refs, 1);
  return s;
}

void gate_source_stop(gate_source *s) {
  struct MHD_Connection *w[GATE_MAX_WAITERS];
  pthread_mutex_lock(&s->mu);
  s->stop = 1;
  atomic_store(&s->abort_fetch, 1);
  pthread_cond_broadcast(&s->cv);
  size_t n = take_waiters(s, w);
  pthread_mutex_unlock(&s->mu);
  resume_all(w, n);
}

void gate_source_release(gate_source *s) {
  if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1) return;
  gate_source_stop(s);
  if (s->thread_started) pthread_join(s->thread, NULL);
  if (s->curl) curl_easy_cleanup(s->curl);
  gate_keyset_release(s->cur);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  free(s->url);
  free(s->ca_file);
  free(s);
}

int gate_source_matches(const gate_source *s, const char *url, int allow_http, jwtkit_alg rsa_default,
                        const gate_source_opts *o) {
  if (strcmp(s->url, url) != 0 || s->allow_http != allow_http || s->rsa_default != rsa_default) return 0;
  if ((s->ca_file == NULL) != (o->ca_file == NULL) || (s->ca_file && strcmp(s->ca_file, o->ca_file) != 0)) return 0;
  return s->o.timeout_ms == o->timeout_ms && s->o.max_bytes == o->max_bytes && s->o.min_ttl == o->min_ttl &&
         s->o.max_ttl == o->max_ttl && s->o.default_ttl == o->default_ttl &&
         s->o.refresh_ahead == o->refresh_ahead && s->o.cooldown == o->cooldown && s->o.stale_max == o->stale_max;
}

const char *gate_source_url(const gate_source *s) { return s->url; }

uint64_t gate_source_gen(const gate_source *s) { return atomic_load(&((gate_source *)s)->gen); }

gate_keyset *gate_source_keyset(gate_source *s) {
  pthread_mutex_lock(&s->mu);
  gate_keyset *ks = gate_keyset_ref(s->cur);
  pthread_mutex_unlock(&s->mu);
  return ks;
}

int gate_source_is_stale(const gate_source *s) {
  long long e = atomic_load(&((gate_source *)s)->expires_pub);
  return e != INT64_MAX && gate_mono_ms() >= e;
}

int gate_source_refetch(gate_source *s, struct MHD_Connection *conn) {
  pthread_mutex_lock(&s->mu);
  if (s->stop || !s->thread_started) {
    pthread_mutex_unlock(&s->mu);
    return 0;
  }
  int64_t now = gate_mono_ms();
  /* unknown-kid refetches are limited against each other, never by the
   * background refresh */
  int may = s->last_refetch_ms == INT64_MIN || now - s->last_refetch_ms >= s->o.cooldown * 1000;
  if (s->kick || s->refetch_queued) {
    /* a fetch that starts after this request is coming: wait for it */
  } else if (s->fetching) {
    /* the running fetch may have started before the key was published:
     * one more after it when allowed, else wait for this one (without a
     * set yet, the running fetch is the first one: wait for it) */
    if (may && s->have_set) {
      s->refetch_queued = 1;
      s->last_refetch_ms = now;
      atomic_fetch_add(&g_metrics.refetch_triggered, 1);
      gate_log(GL_INFO, "jwks_refetch", "unknown kid: refetching %s after the fetch in progress", s->url);
    }
  } else if (may) {
    s->kick = 1;
    s->last_refetch_ms = now;
    pthread_cond_broadcast(&s->cv);
    atomic_fetch_add(&g_metrics.refetch_triggered, 1);
    gate_log(GL_INFO, "jwks_refetch", "unknown kid: refetching %s", s->url);
  } else {
    pthread_mutex_unlock(&s->mu);
    atomic_fetch_add(&g_metrics.refetch_cooldown, 1);
    return 0;
  }
  /* a fetch is about to run or running: park the request until it ends */
  if (conn == NULL || s->nwaiters >= GATE_MAX_WAITERS) {
    pthread_mutex_unlock(&s->mu);
    return 0;
  }
  s->waiters[s->nwaiters++] = conn;
  atomic_fetch_add(&g_metrics.suspended, 1);
  atomic_fetch_add(&g_metrics.refetch_waited, 1);
  MHD_suspend_connection(conn);
  pthread_mutex_unlock(&s->mu);
  return 1;
}

void gate_source_get_status(gate_source *s, gate_source_status *st) {
  memset(st, 0, sizeof *st);
  int64_t now = gate_mono_ms();
  pthread_mutex_lock(&s->mu);
  st->have_set = s->have_set;
  st->keys = jwtkit_jwks_count(s->cur->jwks);
  st->gen = s->cur->gen;
  st->stale = s->have_set && now >= s->expires_ms;
  st->age_ms = s->have_set ? now - s->fetched_ms : -1;
  st->expires_in_ms = s->have_set ? s->expires_ms - now : 0;
  st->issuer_max_age = s->issuer_max_age;
  st->min_ttl = s->o.min_ttl;
  st->max_age_below_min_ttl = max_age_short(s);
  pthread_mutex_unlock(&s->mu);
  for (int i = 0; i < GF_COUNT; i++) st->fetches[i] = atomic_load(&s->fetches[i]);
}

gate_fetch_result gate_source_fetch_now(gate_source *s) {
  pthread_mutex_lock(&s->mu);
  char etag[GATE_MAX_ETAG];
  snprintf(etag, sizeof etag, "%s", s->have_set ? s->etag : "");
  pthread_mutex_unlock(&s->mu);
  fetch_out fo;
  fetch_once(s, etag, &fo);
  pthread_mutex_lock(&s->mu);
  gate_fetch_result r = fo.r;
  apply(s, &fo, gate_mono_ms());
  jwtkit_jwks_free(fo.jwks);
  pthread_mutex_unlock(&s->mu);
  return r;
}
