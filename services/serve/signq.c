/* The signer threads of POST /token for token (PKCS#11) keys.
 *
 * A token key signs with one of the token's sessions, and when all are
 * busy the signer waits for one (up to the key's wait_ms).  An HTTP thread
 * that waited there would leave every other connection libmicrohttpd gave
 * it unread: they would run into the header timeout.  So the HTTP thread
 * decides the request (authentication, scope), suspends the connection
 * and queues the signature here; a signer thread signs, waiting if need
 * be, and resumes the connection, whose answer is queued on its HTTP
 * thread.  Software keys sign inline, as before.
 *
 * At most SV_SIGNERS threads, started when a job finds no idle one; at
 * most SV_SIGN_QUEUE jobs waiting (the caller answers 503 beyond).  A job
 * holds references on the snapshots it was decided on: a reload meanwhile
 * frees nothing it uses. */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "serve.h"

static struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  sv_signjob *head, *tail;
  unsigned queued, running, idle, nthreads;
  int stopping;
  pthread_t threads[SV_SIGNERS];
  void (*resume)(void *conn);
} g_q = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

void sv_signjob_free(sv_signjob *j) {
  if (j == NULL) return;
  sv_mint_free(&j->m);
  sv_answer_free(&j->a);
  sv_keysnap_release(j->ks);
  sv_confsnap_release(j->cs);
  free(j);
}

static void *signer(void *arg) {
  (void)arg;
  pthread_mutex_lock(&g_q.mu);
  for (;;) {
    while (g_q.head == NULL && !g_q.stopping) {
      g_q.idle++;
      pthread_cond_wait(&g_q.cv, &g_q.mu);
      g_q.idle--;
    }
    sv_signjob *j = g_q.head;
    if (j == NULL) break; /* stopping, nothing left */
    g_q.head = j->next;
    if (g_q.head == NULL) g_q.tail = NULL;
    g_q.queued--;
    g_q.running++;
    int stopping = g_q.stopping;
    pthread_mutex_unlock(&g_q.mu);
    if (stopping) {
      sv_mint_free(&j->m);
      sv_answer_init(&j->a);
      sv_answer_token_error(&j->a, 503, SV_TE_TEMPORARILY_UNAVAILABLE, "the issuer is shutting down; retry", NULL);
      j->a.retry_after = 1;
    } else {
      sv_token_mint(j->cs, j->ks, &j->m, &j->a);
    }
    /* the snapshots are not needed for the answer: let a reload free them */
    sv_keysnap_release(j->ks);
    sv_confsnap_release(j->cs);
    j->ks = NULL;
    j->cs = NULL;
    void *conn = j->conn;
    pthread_mutex_lock(&g_q.mu);
    g_q.running--;
    pthread_mutex_unlock(&g_q.mu);
    g_q.resume(conn); /* the HTTP thread owns j from here */
    pthread_mutex_lock(&g_q.mu);
  }
  pthread_mutex_unlock(&g_q.mu);
  return NULL;
}

void sv_signq_init(void (*resume)(void *conn)) {
  pthread_mutex_lock(&g_q.mu);
  g_q.resume = resume;
  g_q.stopping = 0;
  pthread_mutex_unlock(&g_q.mu);
}

int sv_signq_submit(sv_signjob *j, void (*park)(void *conn)) {
  pthread_mutex_lock(&g_q.mu);
  if (g_q.stopping || g_q.resume == NULL || g_q.queued >= SV_SIGN_QUEUE) {
    pthread_mutex_unlock(&g_q.mu);
    return -1;
  }
  if (g_q.idle <= g_q.queued && g_q.nthreads < SV_SIGNERS) {
    /* signals go to the main thread (sigwait): none here */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    if (pthread_create(&g_q.threads[g_q.nthreads], NULL, signer, NULL) == 0) g_q.nthreads++;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (g_q.nthreads == 0) { /* no thread to sign it */
      pthread_mutex_unlock(&g_q.mu);
      jk_log(JK_LOG_ERROR, "signer_thread", "cannot start a signer thread for token keys");
      return -1;
    }
  }
  park(j->conn);
  j->next = NULL;
  if (g_q.tail != NULL) g_q.tail->next = j;
  else g_q.head = j;
  g_q.tail = j;
  g_q.queued++;
  pthread_cond_signal(&g_q.cv);
  pthread_mutex_unlock(&g_q.mu);
  return 0;
}

unsigned sv_signq_pending(void) {
  pthread_mutex_lock(&g_q.mu);
  unsigned n = g_q.queued + g_q.running;
  pthread_mutex_unlock(&g_q.mu);
  return n;
}

void sv_signq_stop(void) {
  pthread_mutex_lock(&g_q.mu);
  g_q.stopping = 1;
  pthread_cond_broadcast(&g_q.cv);
  unsigned n = g_q.nthreads;
  pthread_mutex_unlock(&g_q.mu);
  for (unsigned i = 0; i < n; i++) pthread_join(g_q.threads[i], NULL);
  pthread_mutex_lock(&g_q.mu);
  g_q.nthreads = 0;
  g_q.resume = NULL;
  pthread_mutex_unlock(&g_q.mu);
}
