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

static void fetch_once(fetcher *f, const gw_fetch_req *req) {
  jk_fetch_opts o;
  gate_fetch_opts(req, &o);
  o.abort = &f->abort;
  jk_fetch_resp r;
  if (f->http == NULL) f->http = jk_fetcher_new();
  if (f->http != NULL) {
    jk_fetcher_get(f->http, req->url, &o, &r);
  } else {
    memset(&r, 0, sizeof r);
    r.result = JK_FETCH_NOMEM;
    strcpy(r.detail, "cannot initialise libcurl");
  }
  gw_fetch_resp gr = {gate_fetch_result(r.result), r.status, r.body, r.len, r.cache_control, r.etag, r.age, r.detail};
  gw_source_fetch_done(f->src, jk_mono_ms(), &gr);
  jk_fetch_resp_free(&r);
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
