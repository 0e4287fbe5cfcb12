/*
 * gw_source: the JWK Set state machine (jwks.c) behind one mutex, for front
 * ends with threads.  It publishes each good set as a refcounted gw_keyset
 * (common/snapshot.h) that verifying threads read without waiting for the
 * network, keeps the requests parked on a refetch (at most GW_MAX_WAITERS),
 * and asks the front end's transport to fetch.  Transport callbacks are
 * made without the mutex, except park (so a resume never precedes it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "gw_internal.h"
#include "common/attr.h"

struct gw_source {
  atomic_uint refs;
  gw_jwks_def def; /* url and ca_file point at the copies below */
  char *url, *ca_file;
  gw_transport t;
  int has_t;
  void *handle;

  pthread_mutex_t mu;
  gw_jwks_sm sm; /* under mu */
  void *waiters[GW_MAX_WAITERS];
  size_t nwaiters;

  jk_snap keyset;             /* gw_keyset */
  atomic_uint_fast64_t gen;   /* of the published keyset */
  atomic_llong expires_pub;   /* the set's expiry while one is held, else INT64_MAX */
};

/* ------------------------------------------------------------ keysets */

static void keyset_destroy(jk_snap_obj *o) {
  gw_keyset *ks = (gw_keyset *)o;
  jwtkit_jwks_free(ks->jwks);
  free(ks);
}

void gw_keyset_release(gw_keyset *ks) {
  if (ks != NULL) jk_snap_release(&ks->obj);
}

/* Publish jwks (taken; NULL: no set) as generation gen (under mu). */
static void publish(gw_source *s, jwtkit_jwks *jwks, uint64_t gen) {
  gw_keyset *ks = calloc(1, sizeof *ks);
  if (ks == NULL) {
    jwtkit_jwks_free(jwks);
    jk_log(JK_LOG_ERROR, "jwks_publish_failed", "out of memory: the JWK Set of %s is not published", s->url);
    return;
  }
  jk_snap_obj_init(&ks->obj, keyset_destroy);
  ks->jwks = jwks;
  ks->gen = gen;
  jk_snap_publish(&s->keyset, &ks->obj);
  atomic_store(&s->gen, gen);
}

static void publish_expiry(gw_source *s) {
  atomic_store(&s->expires_pub, s->sm.have_set ? s->sm.expires_ms : INT64_MAX);
}

/* Take the parked requests (under mu). */
static size_t take_waiters(gw_source *s, void **out) {
  size_t n = s->nwaiters;
  memcpy(out, s->waiters, n * sizeof *out);
  s->nwaiters = 0;
  return n;
}

static void resume_all(gw_source *s, void **w, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s->t.resume != NULL) s->t.resume(s->t.ctx, w[i]);
}

/* -------------------------------------------------------------- public */

gw_source *gw_source_new(const gw_jwks_def *d, const gw_transport *t) {
  gw_source *s = calloc(1, sizeof *s);
  if (s == NULL) return NULL;
  atomic_init(&s->refs, 1);
  atomic_init(&s->gen, 0);
  atomic_init(&s->expires_pub, INT64_MAX);
  s->def = *d;
  s->url = strdup(d->url);
  s->ca_file = d->o.ca_file ? strdup(d->o.ca_file) : NULL;
  s->def.url = s->url;
  s->def.o.ca_file = s->ca_file;
  gw_sm_init(&s->sm);
  jk_snap_init(&s->keyset);
  if (s->url == NULL || (d->o.ca_file && s->ca_file == NULL) || pthread_mutex_init(&s->mu, NULL) != 0) goto fail;
  publish(s, NULL, 0);
  if (s->keyset.cur == NULL) goto fail_mu; /* out of memory: readers need a keyset */
  if (t != NULL) {
    s->t = *t;
    s->has_t = 1;
    /* under the lock: a thread that open starts may tick at once, and
     * waits for the handle to be set */
    pthread_mutex_lock(&s->mu);
    int ok = t->open == NULL || (s->handle = t->open(t->ctx, s)) != NULL;
    pthread_mutex_unlock(&s->mu);
    if (!ok) goto fail_mu;
  }
  return s;
fail_mu:
  pthread_mutex_destroy(&s->mu);
fail:
  jk_snap_destroy(&s->keyset);
  free(s->url);
  free(s->ca_file);
  free(s);
  return NULL;
}

gw_source *gw_source_ref(gw_source *s) {
  atomic_fetch_add(&s->refs, 1);
  return s;
}

void gw_source_stop(gw_source *s) {
  void *w[GW_MAX_WAITERS];
  pthread_mutex_lock(&s->mu);
  gw_sm_stop(&s->sm);
  size_t n = take_waiters(s, w);
  pthread_mutex_unlock(&s->mu);
  if (s->has_t && s->t.cancel != NULL) s->t.cancel(s->handle);
  resume_all(s, w, n);
}

void gw_source_release(gw_source *s) {
  if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1) return;
  gw_source_stop(s);
  if (s->has_t && s->t.close != NULL) s->t.close(s->handle);
  jk_snap_destroy(&s->keyset);
  pthread_mutex_destroy(&s->mu);
  free(s->url);
  free(s->ca_file);
  free(s);
}

const gw_jwks_def *gw_source_def(const gw_source *s) { return &s->def; }

uint64_t gw_source_gen(const gw_source *s) { return atomic_load(&((gw_source *)JK_UNCONST(s))->gen); }

gw_keyset *gw_source_keyset(gw_source *s) { return (gw_keyset *)jk_snap_acquire(&s->keyset); }

int gw_source_is_stale(const gw_source *s, int64_t now_ms) {
  long long e = atomic_load(&((gw_source *)JK_UNCONST(s))->expires_pub);
  return e != INT64_MAX && now_ms >= e;
}

/* Poll the machine (under mu); 1 when *req must be started once unlocked. */
static int poll_locked(gw_source *s, int64_t now, gw_fetch_req *req, int64_t *wake) {
  int r = gw_sm_poll(&s->sm, &s->def, now, req, wake);
  if (r & GW_SM_DROPPED) publish(s, NULL, s->sm.gen);
  publish_expiry(s);
  return (r & GW_SM_FETCH) != 0;
}

int64_t gw_source_tick(gw_source *s, int64_t now_ms) {
  gw_fetch_req req;
  int64_t wake;
  pthread_mutex_lock(&s->mu);
  int start = poll_locked(s, now_ms, &req, &wake);
  pthread_mutex_unlock(&s->mu);
  if (start && s->has_t) s->t.start(s->handle, &req);
  return wake;
}

void gw_source_fetch_done(gw_source *s, int64_t now_ms, const gw_fetch_resp *r) {
  pthread_mutex_lock(&s->mu);
  int sent_etag = s->sm.sent_etag;
  pthread_mutex_unlock(&s->mu);
  gw_fetch_outcome o;
  gw_fetch_evaluate(&s->def, sent_etag, r, &o); /* parsing: outside the lock */
  void *w[GW_MAX_WAITERS];
  size_t n = 0;
  gw_fetch_req req;
  int64_t wake;
  int start = 0;
  pthread_mutex_lock(&s->mu);
  int rr = gw_sm_done(&s->sm, &s->def, now_ms, &o);
  if (rr & GW_SM_PUBLISH) {
    publish(s, o.jwks, s->sm.gen);
    o.jwks = NULL;
  }
  if (rr & GW_SM_AGAIN)
    start = poll_locked(s, now_ms, &req, &wake);
  else
    n = take_waiters(s, w);
  publish_expiry(s);
  pthread_mutex_unlock(&s->mu);
  gw_fetch_outcome_clear(&o);
  if (start && s->has_t) s->t.start(s->handle, &req);
  resume_all(s, w, n);
}

int gw_source_refetch(gw_source *s, int64_t now_ms, void *waiter) {
  if (!s->has_t) return 0; /* nothing fetches: answer with what is there */
  gw_fetch_req req;
  int64_t wake;
  int start = 0, parked = 0;
  pthread_mutex_lock(&s->mu);
  gw_refetch rr = gw_sm_refetch(&s->sm, &s->def, now_ms);
  if (rr == GW_REFETCH_KICKED) start = poll_locked(s, now_ms, &req, &wake);
  if (rr != GW_REFETCH_NO && waiter != NULL && s->nwaiters < GW_MAX_WAITERS) {
    /* a fetch is about to run or running: park the request until it ends */
    s->waiters[s->nwaiters++] = waiter;
    if (s->t.park != NULL) s->t.park(s->t.ctx, waiter);
    atomic_fetch_add(&gw_stats.refetch_waited, 1);
    parked = 1;
  }
  pthread_mutex_unlock(&s->mu);
  if (start) s->t.start(s->handle, &req);
  return parked;
}

void gw_source_publish(gw_source *s, jwtkit_jwks *jwks, uint64_t gen, int64_t expires_ms) {
  pthread_mutex_lock(&s->mu);
  int have = jwks != NULL;
  publish(s, jwks, gen);
  atomic_store(&s->expires_pub, have ? expires_ms : INT64_MAX);
  pthread_mutex_unlock(&s->mu);
}

void gw_source_status_get(gw_source *s, int64_t now_ms, gw_source_status *st) {
  pthread_mutex_lock(&s->mu);
  gw_sm_status(&s->sm, &s->def, now_ms, st);
  pthread_mutex_unlock(&s->mu);
  gw_keyset *ks = gw_source_keyset(s);
  st->keys = ks ? jwtkit_jwks_count(ks->jwks) : 0;
  gw_keyset_release(ks);
}

void gw_source_warn_max_age(gw_source *s) {
  pthread_mutex_lock(&s->mu);
  gw_sm_warn_max_age(&s->sm, &s->def);
  pthread_mutex_unlock(&s->mu);
}
