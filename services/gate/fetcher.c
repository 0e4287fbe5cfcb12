/*
 * The gateway core's JWK Set transport for jwtkit gate: one thread per
 * source, fetching with the shared libcurl client (services/fetch; its
 * handle, and so its connection, kept between fetches).  The thread runs
 * the source's timers (gw_source_tick), sleeps until the next one or until
 * the core starts a fetch, and hands every answer back
 * (gw_source_fetch_done).  Verifying threads never wait for it.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "fetch.h"
#include "gate_internal.h"

typedef struct fetcher {
  gw_source *src; /* not referenced: the source owns its fetcher */
  jk_fetcher *http;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int job;          /* under mu: req is to be fetched */
  gw_fetch_req req; /* url and ca_file point into the source's definition */
  int closing;
  atomic_int abort;
  char last_uri[GW_MAX_URL + 1]; /* a discovery source's jwks_uri of the last fetch */
} fetcher;

gw_fetch_result gate_fetch_result(jk_fetch_result r) {
  switch (r) {
    case JK_FETCH_OK:
      return GW_FETCH_OK;
    case JK_FETCH_TIMEOUT:
      return GW_FETCH_TIMEOUT;
    case JK_FETCH_TOO_LARGE:
      return GW_FETCH_TOO_LARGE;
    case JK_FETCH_TRUNCATED:
      return GW_FETCH_TRUNCATED;
    case JK_FETCH_CONNECT:
      return GW_FETCH_CONNECT;
    case JK_FETCH_TLS:
      return GW_FETCH_TLS;
    default:
      return GW_FETCH_NETWORK;
  }
}

void gate_fetch_opts(const gw_fetch_req *req, jk_fetch_opts *o) {
  *o = (jk_fetch_opts){.http = req->allow_http ? JK_FETCH_HTTP_ANY : JK_FETCH_HTTPS_ONLY,
                       .timeout_ms = req->timeout_ms,
                       .max_bytes = req->max_bytes,
                       .ca_file = req->ca_file,
                       .agent = "jwtkit-gate",
                       .accept = "application/jwk-set+json, application/json",
                       .if_none_match = req->if_none_match};
}

static jk_fetch_result get(jk_fetcher *http, const char *url, const jk_fetch_opts *o, jk_fetch_resp *r) {
  return http != NULL ? jk_fetcher_get(http, url, o, r) : jk_fetch_get(url, o, r);
}

/* The metadata of a discovery source: its jwks_uri in g->uri, or a failed
 * answer in g->gr (detail in g->detail). */
static int discover(jk_fetcher *http, const gw_fetch_req *req, atomic_int *abort, gate_fetched *g) {
  jk_fetch_opts o;
  gate_fetch_opts(req, &o);
  o.http = req->allow_http ? JK_FETCH_HTTP_LOOPBACK : JK_FETCH_HTTPS_ONLY;
  o.accept = "application/json";
  o.if_none_match = NULL;
  o.abort = abort;
  char url[GW_MAX_URL + 128], first[GW_MAX_URL + 128] = "";
  for (int which = 0; which < 2; which++) {
    if (gw_discovery_url(req->url, which, url, sizeof url) != 0) {
      g->gr.result = GW_FETCH_INVALID;
      snprintf(g->detail, sizeof g->detail, "issuer_discovery: the issuer URL is too long");
      return -1;
    }
    jk_fetch_resp m;
    jk_fetch_result fr = get(http, url, &o, &m);
    if (fr == JK_FETCH_OK && m.status == 404 && which == 0) { /* no OpenID document: RFC 8414's */
      jk_fetch_resp_free(&m);
      snprintf(first, sizeof first, "%s", url);
      continue;
    }
    int ok = -1;
    if (fr != JK_FETCH_OK) {
      g->gr.result = gate_fetch_result(fr);
      snprintf(g->detail, sizeof g->detail, "issuer_discovery: %.300s: %.250s", url, m.detail);
    } else if (m.status == 404) {
      g->gr.result = GW_FETCH_HTTP_ERROR;
      snprintf(g->detail, sizeof g->detail, "issuer_discovery: no metadata document (HTTP 404 at %.280s and at %.280s)",
               first, url);
    } else if (m.status != 200) {
      g->gr.result = GW_FETCH_HTTP_ERROR;
      snprintf(g->detail, sizeof g->detail, "issuer_discovery: %.300s: HTTP status %ld", url, m.status);
    } else {
      char why[512];
      ok = gw_discovery_read(m.body, m.len, req->url, req->allow_http, g->uri, sizeof g->uri, why, sizeof why);
      if (ok != 0) {
        g->gr.result = GW_FETCH_INVALID;
        snprintf(g->detail, sizeof g->detail, "issuer_discovery: %.200s: %.400s", url, why);
      }
    }
    jk_fetch_resp_free(&m);
    return ok;
  }
  return -1; /* not reached: the second answer returns */
}

void gate_fetch(jk_fetcher *http, const gw_fetch_req *req, atomic_int *abort, char *last_uri, gate_fetched *g) {
  memset(g, 0, sizeof *g);
  const char *url = req->url;
  gw_fetch_req r2 = *req;
  if (req->discovery) {
    if (discover(http, req, abort, g) != 0) {
      g->gr.detail = g->detail;
      return;
    }
    url = r2.url = g->uri;
    if (last_uri != NULL) {
      if (strcmp(last_uri, g->uri) != 0) { /* a new jwks_uri: no ETag of the old one */
        jk_logline L;
        if (jk_log_begin(&L, JK_LOG_INFO, "jwks_discovered")) {
          jk_log_str(&L, "issuer", req->url);
          jk_log_str(&L, "jwks_uri", g->uri);
          jk_log_bool(&L, "changed", last_uri[0] != '\0');
          jk_log_end(&L);
        }
        r2.if_none_match[0] = '\0';
        snprintf(last_uri, GW_MAX_URL + 1, "%s", g->uri);
      }
    }
  }
  jk_fetch_opts o;
  gate_fetch_opts(&r2, &o);
  if (req->discovery && req->allow_http) o.http = JK_FETCH_HTTP_LOOPBACK;
  o.abort = abort;
  get(http, url, &o, &g->raw);
  g->have_raw = 1;
  jk_fetch_resp *r = &g->raw;
  g->gr = (gw_fetch_resp){gate_fetch_result(r->result), r->status, r->body, r->len, r->cache_control, r->etag, r->age,
                          r->detail};
}

void gate_fetched_free(gate_fetched *g) {
  if (g->have_raw) jk_fetch_resp_free(&g->raw);
  g->have_raw = 0;
}

static void fetch_once(fetcher *f, const gw_fetch_req *req) {
  if (f->http == NULL) f->http = jk_fetcher_new();
  if (f->http == NULL) {
    gw_fetch_resp gr = {.result = GW_FETCH_NETWORK, .detail = "cannot initialise libcurl"};
    gw_source_fetch_done(f->src, jk_mono_ms(), &gr);
    return;
  }
  gate_fetched g;
  gate_fetch(f->http, req, &f->abort, f->last_uri, &g);
  gw_source_fetch_done(f->src, jk_mono_ms(), &g.gr);
  gate_fetched_free(&g);
}

/* Sleep (under mu) until deadline (monotonic ms) or a signal. */
static void wait_until(fetcher *f, int64_t deadline) {
  int64_t d = deadline - jk_mono_ms();
  if (d <= 0) return;
  if (d > 3600 * 1000) d = 3600 * 1000;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  ts.tv_sec += d / 1000;
  ts.tv_nsec += (d % 1000) * 1000000;
  if (ts.tv_nsec >= 1000000000) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000;
  }
  pthread_cond_timedwait(&f->cv, &f->mu, &ts);
}

static void *run(void *arg) {
  fetcher *f = arg;
  pthread_mutex_lock(&f->mu);
  while (!f->closing) {
    if (f->job) {
      gw_fetch_req req = f->req;
      f->job = 0;
      pthread_mutex_unlock(&f->mu);
      fetch_once(f, &req);
      pthread_mutex_lock(&f->mu);
      continue;
    }
    pthread_mutex_unlock(&f->mu);
    int64_t wake = gw_source_tick(f->src, jk_mono_ms());
    pthread_mutex_lock(&f->mu);
    if (!f->job && !f->closing) wait_until(f, wake);
  }
  pthread_mutex_unlock(&f->mu);
  return NULL;
}

static void *f_open(void *ctx, gw_source *s) {
  (void)ctx;
  fetcher *f = calloc(1, sizeof *f);
  if (f == NULL) return NULL;
  f->src = s;
  atomic_init(&f->abort, 0);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  int ok = pthread_cond_init(&f->cv, &ca) == 0;
  pthread_condattr_destroy(&ca);
  if (ok && pthread_mutex_init(&f->mu, NULL) != 0) {
    pthread_cond_destroy(&f->cv);
    ok = 0;
  }
  if (ok && pthread_create(&f->thread, NULL, run, f) != 0) {
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cv);
    ok = 0;
  }
  if (!ok) {
    free(f);
    return NULL;
  }
  return f;
}

static void f_start(void *h, const gw_fetch_req *req) {
  fetcher *f = h;
  pthread_mutex_lock(&f->mu);
  f->req = *req;
  f->job = 1;
  pthread_cond_signal(&f->cv);
  pthread_mutex_unlock(&f->mu);
}

/* Abort the fetch in progress and wake the thread (to end, with closing). */
static void stop(fetcher *f, int closing) {
  atomic_store(&f->abort, 1);
  pthread_mutex_lock(&f->mu);
  f->closing |= closing;
  pthread_cond_signal(&f->cv);
  pthread_mutex_unlock(&f->mu);
}

static void f_cancel(void *h) { stop(h, 0); }

static void f_close(void *h) {
  fetcher *f = h;
  stop(f, 1);
  pthread_join(f->thread, NULL);
  jk_fetcher_free(f->http);
  pthread_mutex_destroy(&f->mu);
  pthread_cond_destroy(&f->cv);
  free(f);
}

void gate_fetcher_transport(gw_transport *t) {
  t->open = f_open;
  t->start = f_start;
  t->cancel = f_cancel;
  t->close = f_close;
}
