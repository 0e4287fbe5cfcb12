/* A thread per source: the transport jwtkit gate and jwtkit serve (its
 * jwks_uri clients) give their JWK Set sources.  The thread runs the
 * front end's fetch for each request of the source, and between requests
 * gw_source_tick, sleeping until the time the source asks for.  It takes
 * no asynchronous signal: a service may start sources before its main
 * thread blocks SIGTERM/SIGINT/SIGHUP for sigwait, and such a signal
 * handed to this thread would end the process. */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

#include "common/clock.h"
#include "gatecore.h"

struct gw_worker {
  const gw_worker_ops *ops;
  gw_source *src; /* not referenced: the source owns its worker */
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int job;          /* under mu: req is to be fetched */
  gw_fetch_req req; /* url and ca_file point into the source's definition */
  int closing;
  atomic_int abort;
  void *user; /* ops->user_size bytes, zeroed, for ops->fetch */
};

/* Sleep (under mu) until deadline (monotonic ms) or a signal. */
static void wait_until(gw_worker *w, int64_t deadline) {
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
  pthread_cond_timedwait(&w->cv, &w->mu, &ts);
}

static void *run(void *arg) {
  gw_worker *w = arg;
  pthread_mutex_lock(&w->mu);
  while (!w->closing) {
    if (w->job) {
      gw_fetch_req req = w->req;
      w->job = 0;
      pthread_mutex_unlock(&w->mu);
      w->ops->fetch(w->user, w->src, &req, &w->abort);
      pthread_mutex_lock(&w->mu);
      continue;
    }
    pthread_mutex_unlock(&w->mu);
    int64_t wake = gw_source_tick(w->src, jk_mono_ms());
    pthread_mutex_lock(&w->mu);
    if (!w->job && !w->closing) wait_until(w, wake);
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

gw_worker *gw_worker_open(const gw_worker_ops *ops, gw_source *s) {
  gw_worker *w = calloc(1, sizeof *w);
  if (w == NULL) return NULL;
  w->ops = ops;
  w->src = s;
  atomic_init(&w->abort, 0);
  if (ops->user_size > 0 && (w->user = calloc(1, ops->user_size)) == NULL) {
    free(w);
    return NULL;
  }
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  int ok = pthread_cond_init(&w->cv, &ca) == 0;
  pthread_condattr_destroy(&ca);
  if (ok && pthread_mutex_init(&w->mu, NULL) != 0) {
    pthread_cond_destroy(&w->cv);
    ok = 0;
  }
  /* the thread starts with every asynchronous signal blocked (faults
   * still reach it, and the sanitizers' handlers with them) */
  sigset_t all, old;
  sigfillset(&all);
  sigdelset(&all, SIGSEGV);
  sigdelset(&all, SIGBUS);
  sigdelset(&all, SIGFPE);
  sigdelset(&all, SIGILL);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  if (ok && pthread_create(&w->thread, NULL, run, w) != 0) {
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    ok = 0;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (!ok) {
    free(w->user);
    free(w);
    return NULL;
  }
  return w;
}

void gw_worker_start(void *h, const gw_fetch_req *req) {
  gw_worker *w = h;
  pthread_mutex_lock(&w->mu);
  w->req = *req;
  w->job = 1;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

/* Abort the fetch in progress and wake the thread (to end, with closing). */
static void stop(gw_worker *w, int closing) {
  atomic_store(&w->abort, 1);
  pthread_mutex_lock(&w->mu);
  w->closing |= closing;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

void gw_worker_cancel(void *h) { stop(h, 0); }

void gw_worker_close(void *h) {
  gw_worker *w = h;
  stop(w, 1);
  pthread_join(w->thread, NULL);
  if (w->ops->fini != NULL && w->user != NULL) w->ops->fini(w->user);
  free(w->user);
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->cv);
  free(w);
}
