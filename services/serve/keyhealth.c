/* Health of the signing keys that live in a PKCS#11 token.
 *
 * A key file signs in memory and cannot go away; a token key signs in the
 * token, which can be unplugged, run out of sessions, lose its login or
 * refuse the PIN.  Every signature's outcome with a token key (token
 * requests, and a probe) sets its algorithm's state: up, or down with a
 * reason and the token's message.  While a configured algorithm's key is
 * down, /healthz answers 503 with the reason and token requests 503
 * temporarily_unavailable with Retry-After; /metrics has
 * jwtkit_serve_signing_key_up{alg,kid} and
 * jwtkit_serve_sign_failures_total{reason}.
 *
 * The probe thread signs a small token with each token key once a second
 * while it is down (each try lets the library re-initialise the module and
 * open and log in sessions again, so signing recovers without traffic,
 * and /healthz says so) and after SV_PROBE_IDLE_MS without any signature
 * while it is up, so an unplugged token shows before a client meets it.
 * Request threads touch the mutex only when a key's state changes. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/prom.h"
#include "serve.h"

#define SV_PROBE_IDLE_MS 2000 /* an idle token key is tried this often */
#define SV_PROBE_DOWN_MS 1000 /* a down one this often */

static const char *const k_reasons[] = {"token_absent", "session", "pin", "token_error"};
#define NREASONS (sizeof k_reasons / sizeof k_reasons[0])

typedef struct kh_key {
  char kid[100];            /* the key the state is about ("" : none yet) */
  atomic_ullong kid_hash;   /* its hash, for request threads (0: none yet) */
  atomic_int down;          /* read without the mutex by request threads */
  atomic_llong last_ms;     /* last signature tried (monotonic ms) */
  char reason[16], msg[200]; /* why it is down (under the mutex) */
} kh_key;

static struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  kh_key k[JWTKIT_ALG_COUNT];
  atomic_ullong failures[NREASONS];
  pthread_t th;
  int running, stop;
} g_kh = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static int64_t mono_ms(void) { return jk_mono_ms(); }

/* FNV-1a of the kid, never 0. */
static unsigned long long kid_hash(const char *kid) {
  unsigned long long h = 1469598103934665603ULL;
  for (const char *c = kid; *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211ULL;
  return h ? h : 1;
}

/* The reason label of a token key's failure. */
static size_t reason_of(jwtkit_err rc, const jwtkit_errinfo *ei) {
  if (rc == JWTKIT_ERR_PASSPHRASE) return 2;
  if (ei != NULL && (strcmp(ei->field, "token") == 0 || strcmp(ei->field, "module-path") == 0 ||
                     strcmp(ei->field, "object") == 0)) /* the token, or the key in it, went away */
    return 0;
  if (ei != NULL && strcmp(ei->field, "session") == 0) return 1;
  return 3;
}

int sv_keyhealth_signed(jwtkit_alg alg, const jwtkit_key *key, jwtkit_err rc, const jwtkit_errinfo *ei) {
  if (key == NULL || !jwtkit_key_is_pkcs11(key) || alg <= 0 || alg >= JWTKIT_ALG_COUNT) return 0;
  kh_key *k = &g_kh.k[alg];
  const char *kid = jwtkit_key_kid(key) ? jwtkit_key_kid(key) : "";
  atomic_store(&k->last_ms, mono_ms());
  int was_down = atomic_load(&k->down);
  unsigned long long h = kid_hash(kid);
  if (rc == JWTKIT_OK && !was_down && atomic_load(&k->kid_hash) == h) return 0; /* the common case: nothing to write */
  size_t r = rc == JWTKIT_OK ? 0 : reason_of(rc, ei);
  if (rc != JWTKIT_OK) atomic_fetch_add(&g_kh.failures[r], 1);
  pthread_mutex_lock(&g_kh.mu);
  int same = strcmp(k->kid, kid) == 0;
  if (!same) {
    snprintf(k->kid, sizeof k->kid, "%s", kid);
    atomic_store(&k->kid_hash, h);
    was_down = 0; /* the state was another key's */
  }
  int changed = was_down != (rc != JWTKIT_OK); /* a new key counts as up before */
  if (rc == JWTKIT_OK) {
    atomic_store(&k->down, 0);
  } else {
    atomic_store(&k->down, 1);
    snprintf(k->reason, sizeof k->reason, "%s", k_reasons[r]);
    snprintf(k->msg, sizeof k->msg, "%s", ei && ei->msg[0] ? ei->msg : jwtkit_strerror(rc));
  }
  char reason[16], msg[200];
  snprintf(reason, sizeof reason, "%s", k->reason);
  snprintf(msg, sizeof msg, "%s", k->msg);
  pthread_mutex_unlock(&g_kh.mu);
  if (changed) { /* logged when the state changes, not for every request */
    jk_logline L;
    if (jk_log_begin(&L, rc == JWTKIT_OK ? JK_LOG_INFO : JK_LOG_ERROR,
                     rc == JWTKIT_OK ? "signing_key_up" : "signing_key_down")) {
      jk_log_str(&L, "msg", rc == JWTKIT_OK ? "signing key available again" : "signing key unavailable");
      jk_log_str(&L, "alg", jwtkit_alg_name(alg));
      jk_log_str(&L, "kid", kid);
      if (rc != JWTKIT_OK) {
        jk_log_str(&L, "reason", reason);
        jk_log_str(&L, "detail", msg);
      }
      jk_log_end(&L);
    }
  }
  return rc != JWTKIT_OK;
}

int sv_keyhealth_down(jwtkit_alg alg, const jwtkit_key *key, char *why, size_t cap) {
  if (key == NULL || !jwtkit_key_is_pkcs11(key) || alg <= 0 || alg >= JWTKIT_ALG_COUNT) return 0;
  kh_key *k = &g_kh.k[alg];
  if (!atomic_load(&k->down)) return 0;
  const char *kid = jwtkit_key_kid(key) ? jwtkit_key_kid(key) : "";
  pthread_mutex_lock(&g_kh.mu);
  int down = atomic_load(&k->down) && strcmp(k->kid, kid) == 0; /* a new key is not known down */
  if (down && why != NULL) snprintf(why, cap, "%s: %s", k->reason, k->msg);
  pthread_mutex_unlock(&g_kh.mu);
  return down;
}

void sv_keyhealth_render(jk_buf *b, const sv_keysnap *ks) {
  jk_prom_family(b, "jwtkit_serve_signing_key_up", "gauge",
                 "1 when the algorithm's active key can sign (a token key: its last signature or probe worked), 0 "
                 "when it cannot.");
  for (size_t i = 0; ks != NULL && i < ks->nsig; i++) {
    const sv_sig *s = &ks->sig[i];
    int up = s->signer != NULL && !sv_keyhealth_down(s->alg, s->key, NULL, 0);
    const char *kid = s->key && jwtkit_key_kid(s->key) ? jwtkit_key_kid(s->key) : "";
    const char *labels[] = {"alg",   jwtkit_alg_name(s->alg),
                            "kid",   kid,
                            "store", s->key && jwtkit_key_is_pkcs11(s->key) ? "pkcs11" : "memory",
                            NULL};
    jk_prom_i64(b, "jwtkit_serve_signing_key_up", labels, up);
  }
  jk_prom_family(b, "jwtkit_serve_sign_failures_total", "counter",
                 "Signatures a token key failed (token requests and probes), by reason.");
  for (size_t r = 0; r < NREASONS; r++) {
    const char *labels[] = {"reason", k_reasons[r], NULL};
    jk_prom_u64(b, "jwtkit_serve_sign_failures_total", labels, (uint64_t)atomic_load(&g_kh.failures[r]));
  }
  jk_prom_family(b, "jwtkit_serve_sign_queue", "gauge",
                 "Token-key signatures handed to the signer threads and not answered yet (queued, waiting for one "
                 "of the token's sessions, or signing).");
  jk_prom_u64(b, "jwtkit_serve_sign_queue", NULL, sv_signq_pending());
}

/* ------------------------------------------------------------- probe */

static void probe_once(void) {
  sv_keysnap *ks = sv_keysnap_acquire();
  int64_t now = mono_ms();
  for (size_t i = 0; ks != NULL && i < ks->nsig; i++) {
    const sv_sig *s = &ks->sig[i];
    if (s->key == NULL || !jwtkit_key_is_pkcs11(s->key)) continue;
    kh_key *k = &g_kh.k[s->alg];
    int down = sv_keyhealth_down(s->alg, s->key, NULL, 0);
    /* a key the state is not about yet is tried at once */
    int fresh = atomic_load(&k->kid_hash) != kid_hash(jwtkit_key_kid(s->key) ? jwtkit_key_kid(s->key) : "");
    if (!fresh && now - atomic_load(&k->last_ms) < (down ? SV_PROBE_DOWN_MS : SV_PROBE_IDLE_MS)) continue;
    char *tok = NULL;
    jwtkit_errinfo ei;
    memset(&ei, 0, sizeof ei);
    static const char probe[] = "{\"sub\":\"jwtkit-serve-probe\"}";
    jwtkit_err rc = jwtkit_sign(s->key, NULL, probe, sizeof probe - 1, &tok, NULL, &ei);
    if (tok != NULL) jwtkit_free(tok);
    (void)sv_keyhealth_signed(s->alg, s->key, rc, &ei);
  }
  sv_keysnap_release(ks);
}

static void *probe_main(void *arg) {
  (void)arg;
  for (;;) {
    pthread_mutex_lock(&g_kh.mu);
    if (!g_kh.stop) {
      struct timespec until;
      clock_gettime(CLOCK_REALTIME, &until);
      until.tv_nsec += 250 * 1000000L;
      if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
      }
      pthread_cond_timedwait(&g_kh.cv, &g_kh.mu, &until);
    }
    int stop = g_kh.stop;
    pthread_mutex_unlock(&g_kh.mu);
    if (stop) break;
    probe_once();
  }
  return NULL;
}

void sv_keyhealth_start(void) {
  pthread_mutex_lock(&g_kh.mu);
  g_kh.stop = 0;
  pthread_mutex_unlock(&g_kh.mu);
  if (!g_kh.running && pthread_create(&g_kh.th, NULL, probe_main, NULL) == 0) g_kh.running = 1;
}

void sv_keyhealth_stop(void) {
  if (!g_kh.running) return;
  pthread_mutex_lock(&g_kh.mu);
  g_kh.stop = 1;
  pthread_cond_signal(&g_kh.cv);
  pthread_mutex_unlock(&g_kh.mu);
  pthread_join(g_kh.th, NULL);
  g_kh.running = 0;
}
