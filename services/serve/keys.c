/* Keyring snapshots and the rotation thread.
 *
 * Request threads never touch the keyring files or a keyring handle that is
 * being mutated: they take a reference on the current immutable snapshot
 * (its own read-only keyring handle, the JWKS body and ETag, prepared
 * responses and one signer per configured algorithm) under a mutex held for
 * a pointer copy and an atomic increment.  The rotation thread owns the
 * mutable handle: every --rotate-check seconds it runs
 * jwtkit_keyring_rotate(now), which re-reads the directory under its lock,
 * and whenever the generation it sees differs from the snapshot's (its own
 * change, or an external `jwtkit keyring rotate` on the same directory) it
 * opens the keyring again, builds a new snapshot and swaps it in.  Once a
 * second it also asks the keyring's change watch (keyring.json's identity
 * for a directory; LISTEN jwtkit_keyring for PostgreSQL) so a change made
 * elsewhere is picked up without waiting for the next check; the check
 * itself re-reads the stored state, so a lost notification costs at most
 * one --rotate-check interval.  When the keyring cannot be reached
 * (PostgreSQL down) the served snapshot stays as it is: the JWKS and the
 * active keys live in memory.
 *
 * The same holds when the stored keyring document is refused: changed by
 * someone without the KEK (or passphrase), older than a generation this
 * process has already served (every handle is opened with
 * jwtkit_keyring_open_seen and the newest generation seen), or gone after
 * one was served (no new keyring is created then).  Such a rejection is
 * logged once and counted in jwtkit_keyring_rejected_total{reason} when it
 * begins, and logged again when an acceptable document is back. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/clock.h"
#include "common/file.h"
#include "common/log.h"
#include "core/alloc.h"
#include "serve.h"

/* -------------------------------------------------------------- holder */

/* sv_keysnap_acquire, _release, _install */
SV_SNAP_HOLDER(sv_keysnap)

static void keysnap_destroy(jk_snap_obj *o) {
  sv_keysnap *ks = (sv_keysnap *)o;
  sv_attachment_drop(&ks->attached);
  for (size_t i = 0; i < ks->nsig; i++) {
    jwtkit_signer_free(ks->sig[i].signer);
    sv_metrics_mint_release(ks->sig[i].minted);
  }
  jwtkit_free(ks->jwks);
  jwtkit_keyring_free(ks->kr);
  free(ks);
}

int sv_keysnap_build(sv_keysnap **out, jwtkit_keyring *kr, const jwtkit_alg *algs, size_t nalgs, int64_t now) {
  *out = NULL;
  sv_keysnap *ks = calloc(1, sizeof *ks);
  if (ks == NULL) {
    jwtkit_keyring_free(kr);
    return -1;
  }
  jk_snap_obj_init(&ks->obj, keysnap_destroy);
  atomic_init(&ks->attached, NULL);
  ks->kr = kr;
  ks->generation = jwtkit_keyring_generation(kr);
  jwtkit_keyring_get_timing(kr, &ks->timing);
  if (jwtkit_keyring_jwks(kr, &ks->jwks, &ks->jwks_len) != JWTKIT_OK) {
    keysnap_destroy(&ks->obj);
    return -1;
  }
  sv_etag(ks->jwks, ks->jwks_len, ks->etag);
  jwtkit_sign_opts opts = {.typ = "at+jwt", .kid = NULL, .extra_header = NULL};
  for (size_t i = 0; i < nalgs && i < SV_MAX_ALGS; i++) {
    sv_sig *s = &ks->sig[ks->nsig++];
    s->alg = algs[i];
    jwtkit_key *key = NULL;
    int64_t max_exp = 0;
    if (jwtkit_keyring_signing_key(kr, algs[i], now, &key, &max_exp) != JWTKIT_OK) continue;
    jwtkit_errinfo ei;
    if (jwtkit_signer_new(&s->signer, key, &opts, &ei) != JWTKIT_OK) {
      jk_log(JK_LOG_ERROR, "signer_failed", "cannot prepare a signer for %s: %s", jwtkit_alg_name(algs[i]), ei.msg);
      continue;
    }
    s->key = key;
    s->minted = sv_metrics_mint_slot(jwtkit_key_kid(key) ? jwtkit_key_kid(key) : "", algs[i]);
  }
  *out = ks;
  return 0;
}

/* ------------------------------------------------------------ keyring */

/* The newest keyring generation this process has served or committed: a
 * stored document older than that is refused.  Written at start-up and
 * then by the rotation thread only. */
static uint64_t g_seen;
/* The reason the stored document is being refused, or NULL. */
static const char *g_rejecting;

static void saw(uint64_t generation) {
  if (generation > g_seen) g_seen = generation;
}

/* A refused keyring document: which kind, or NULL for other failures. */
static const char *rejection_of(jwtkit_err rc, const jwtkit_errinfo *ei) {
  if ((rc == JWTKIT_ERR_BAD_SIGNATURE || rc == JWTKIT_ERR_PASSPHRASE || rc == JWTKIT_ERR_KEK) && strcmp(ei->field, "auth") == 0)
    return "unauthenticated";
  if (rc == JWTKIT_ERR_STATE && strcmp(ei->field, "generation") == 0) return "rollback";
  if (rc == JWTKIT_ERR_NOT_FOUND && strcmp(ei->field, "keyring") == 0) return "missing";
  return NULL;
}

/* A failure to read or change the keyring: a refused document is logged
 * and counted once when its rejection begins; anything else is logged as
 * `event` (with the sentence `msg`) every time. */
static void keyring_failed(jwtkit_err rc, const jwtkit_errinfo *ei, const char *event, const char *msg,
                           const char *detail) {
  const char *reason = rejection_of(rc, ei);
  jk_logline L;
  if (reason == NULL) {
    if (jk_log_begin(&L, JK_LOG_ERROR, event)) {
      jk_log_str(&L, "msg", msg);
      jk_log_str(&L, "detail", detail);
      jk_log_end(&L);
    }
    return;
  }
  if (g_rejecting != NULL && strcmp(g_rejecting, reason) == 0) return;
  g_rejecting = reason;
  sv_metrics_keyring_rejected(reason);
  if (jk_log_begin(&L, JK_LOG_ERROR, "keyring_rejected")) {
    jk_log_str(&L, "msg", "keyring document rejected; still serving the last good snapshot");
    jk_log_str(&L, "reason", reason);
    jk_log_int(&L, "serving_generation", (int64_t)g_seen);
    jk_log_str(&L, "detail", ei->msg);
    jk_log_end(&L);
  }
}

static void keyring_accepted(uint64_t generation) {
  if (g_rejecting == NULL) return;
  g_rejecting = NULL;
  sv_metrics_keyring_accepted();
  jk_logline L;
  if (jk_log_begin(&L, JK_LOG_INFO, "keyring_accepted")) {
    jk_log_str(&L, "msg", "keyring document accepted again");
    jk_log_int(&L, "generation", (int64_t)generation);
    jk_log_end(&L);
  }
}

void sv_keycfg_free(sv_keycfg *k) {
  if (k == NULL) return;
  if (k->passphrase) jk_free_secret(k->passphrase, strlen(k->passphrase));
  k->passphrase = NULL;
  jwtkit_kek_free(k->keks, k->nkeks);
  k->keks = NULL;
  k->nkeks = 0;
}

static jwtkit_keyring_secrets secrets_of(const sv_keycfg *kc) {
  jwtkit_keyring_secrets sec = {
      .passphrase = kc->passphrase, .keks = (const unsigned char(*)[32])kc->keks, .nkeks = kc->nkeks};
  return sec;
}

/* "activated key KID (ES256): ..." -> KID */
static void kid_of_line(const char *line, char *kid, size_t cap) {
  kid[0] = '\0';
  const char *p = strstr(line, "key ");
  if (p == NULL) return;
  p += 4;
  size_t n = strcspn(p, " :");
  if (n >= cap) n = cap - 1;
  memcpy(kid, p, n);
  kid[n] = '\0';
}

static void report(void *ctx, const char *line) {
  int *count = ctx;
  if (count) (*count)++;
  sv_metrics_rotation_line(line);
  jk_logline L;
  if (jk_log_begin(&L, JK_LOG_INFO, "keyring_action")) {
    char kid[128];
    kid_of_line(line, kid, sizeof kid);
    if (kid[0]) jk_log_str(&L, "kid", kid);
    jk_log_str(&L, "action", line);
    jk_log_end(&L);
  }
}

static int exit_for(jwtkit_err rc) {
  switch (rc) {
    case JWTKIT_ERR_PASSPHRASE:
    case JWTKIT_ERR_KEK:
    case JWTKIT_ERR_PERMISSION:
    case JWTKIT_ERR_MALFORMED:
    case JWTKIT_ERR_INVALID_ARG:
      return SV_EXIT_USAGE;
    default:
      return SV_EXIT_RUNTIME;
  }
}

static int meta_path(const char *dir, char *out, size_t cap) {
  return (size_t)snprintf(out, cap, "%s/keyring.json", dir) < cap ? 0 : -1;
}

/* sv_keyring_prepare; *lib (if any) receives the library's error. */
static int prepare(const sv_keycfg *kc, jwtkit_keyring **out, char *err, size_t cap, jwtkit_errinfo *lib) {
  *out = NULL;
  char meta[SV_PATH_MAX + 32];
  if (meta_path(kc->dir, meta, sizeof meta) != 0) {
    snprintf(err, cap, "keyring path too long");
    return SV_EXIT_USAGE;
  }
  jwtkit_errinfo ei;
  memset(&ei, 0, sizeof ei);
  int64_t now = jk_now();
  jwtkit_keyring_secrets sec = secrets_of(kc);
  int pg = jwtkit_keyring_location_is_postgres(kc->dir);
  struct stat st;
  jwtkit_keyring *kr = NULL;
  jwtkit_err rc = JWTKIT_OK;
  int create;
  if (pg) {
    /* replicas starting together: each tries to open, the first to take
     * the lock creates, the others find it created (STATE) and open */
    rc = jwtkit_keyring_open_seen(&kr, kc->dir, &sec, g_seen, &ei);
    create = rc == JWTKIT_ERR_NOT_FOUND;
    if (rc != JWTKIT_OK && !create) {
      if (lib) *lib = ei;
      snprintf(err, cap, "opening the keyring %s: %s", kc->where, ei.msg[0] ? ei.msg : jwtkit_strerror(rc));
      return exit_for(rc);
    }
  } else {
    create = stat(meta, &st) != 0 && errno == ENOENT;
    if (create && jk_mkdirs(kc->dir, 0700, 0) != 0) {
      snprintf(err, cap, "cannot create the parent directories of %s: %s", kc->dir, strerror(errno));
      return SV_EXIT_RUNTIME;
    }
  }
  if (create && g_seen > 0) {
    /* a keyring this process served is gone (a table emptied, keyring.json
     * deleted): creating a fresh one would replace every published key */
    snprintf(err, cap, "the keyring %s is gone after generation %llu was served; not creating a new one (restart to create one)",
           kc->where, (unsigned long long)g_seen);
    if (lib) {
      memset(lib, 0, sizeof *lib);
      lib->code = JWTKIT_ERR_NOT_FOUND;
      snprintf(lib->field, sizeof lib->field, "keyring");
      snprintf(lib->msg, sizeof lib->msg, "%s", err);
    }
    return SV_EXIT_RUNTIME;
  }
  if (create) {
    rc = jwtkit_keyring_init_ex(kc->dir, kc->algs, kc->nalgs, &kc->timing, &sec, now, report, NULL, &ei);
    if (rc == JWTKIT_OK) {
      jk_logline L;
      if (jk_log_begin(&L, JK_LOG_INFO, "keyring_created")) {
        jk_log_str(&L, "keyring", kc->where);
        jk_log_int(&L, "max_age", kc->timing.max_age);
        jk_log_int(&L, "token_ttl", kc->timing.token_ttl);
        jk_log_int(&L, "rotate_every", kc->timing.rotate_every);
        jk_log_end(&L);
      }
    } else if (!(pg && rc == JWTKIT_ERR_STATE)) { /* STATE: another replica created it meanwhile */
      if (lib) *lib = ei;
      snprintf(err, cap, "creating the keyring in %s: %s", kc->where, ei.msg[0] ? ei.msg : jwtkit_strerror(rc));
      return exit_for(rc);
    }
  }
  if (kr == NULL && (rc = jwtkit_keyring_open_seen(&kr, kc->dir, &sec, g_seen, &ei)) != JWTKIT_OK) {
    if (lib) *lib = ei;
    snprintf(err, cap, "opening the keyring %s: %s", kc->where, ei.msg[0] ? ei.msg : jwtkit_strerror(rc));
    return exit_for(rc);
  }
  jwtkit_keyring_timing t;
  jwtkit_keyring_get_timing(kr, &t);
  if (((kc->timing_set & SV_SET_MAX_AGE) && t.max_age != kc->timing.max_age) ||
      ((kc->timing_set & SV_SET_TOKEN_TTL) && t.token_ttl != kc->timing.token_ttl) ||
      ((kc->timing_set & SV_SET_ROTATE_EVERY) && t.rotate_every != kc->timing.rotate_every) ||
      ((kc->timing_set & SV_SET_LEEWAY) && t.leeway != kc->timing.leeway) ||
      ((kc->timing_set & SV_SET_PUBLISH_AHEAD) && t.publish_ahead != kc->timing.publish_ahead)) {
    jk_logline L;
    if (jk_log_begin(&L, JK_LOG_WARN, "keyring_timing_kept")) {
      jk_log_str(&L, "msg", "timing options apply when a keyring is created; the existing keyring keeps its own");
      jk_log_int(&L, "max_age", t.max_age);
      jk_log_int(&L, "token_ttl", t.token_ttl);
      jk_log_int(&L, "rotate_every", t.rotate_every);
      jk_log_int(&L, "leeway", t.leeway);
      jk_log_int(&L, "publish_ahead", t.publish_ahead);
      jk_log_end(&L);
    }
  }
  /* an algorithm configured after the keyring was created gets a pending
   * key; it activates through rotation once published for max_age */
  for (size_t a = 0; a < kc->nalgs; a++) {
    int have = 0;
    for (size_t i = 0; i < jwtkit_keyring_count(kr); i++) {
      jwtkit_keyring_entry e;
      if (jwtkit_keyring_get(kr, i, &e) == JWTKIT_OK && e.alg == kc->algs[a] &&
          (e.state == JWTKIT_KEY_ACTIVE || e.state == JWTKIT_KEY_PENDING))
        have = 1;
    }
    if (have) continue;
    /* made where the keyring keeps its keys: a file, a sealed row, its token */
    rc = jwtkit_keyring_add_generated(kr, kc->algs[a], now, report, NULL, &ei);
    if (rc != JWTKIT_OK) {
      if (lib) *lib = ei;
      snprintf(err, cap, "adding a %s key to the keyring: %s", jwtkit_alg_name(kc->algs[a]),
               ei.msg[0] ? ei.msg : jwtkit_strerror(rc));
      jwtkit_keyring_free(kr);
      return exit_for(rc);
    }
  }
  saw(jwtkit_keyring_generation(kr));
  *out = kr;
  return 0;
}

int sv_keyring_prepare(const sv_keycfg *kc, jwtkit_keyring **out, char *err, size_t cap) {
  return prepare(kc, out, err, cap, NULL);
}

/* A fresh read-only handle and a snapshot from it. */
int sv_keysnap_reload(const sv_keycfg *kc, uint64_t *served_gen) {
  jwtkit_keyring *kr = NULL;
  jwtkit_errinfo ei;
  memset(&ei, 0, sizeof ei);
  jwtkit_keyring_secrets sec = secrets_of(kc);
  jwtkit_err rc = jwtkit_keyring_open_seen(&kr, kc->dir, &sec, g_seen, &ei);
  if (rc != JWTKIT_OK) {
    keyring_failed(rc, &ei, "keyring_reopen_failed", "cannot re-open the keyring; still serving the previous snapshot",
                   ei.msg[0] ? ei.msg : jwtkit_strerror(rc));
    return -1;
  }
  sv_keysnap *ks = NULL;
  if (sv_keysnap_build(&ks, kr, kc->algs, kc->nalgs, jk_now()) != 0) {
    jk_log(JK_LOG_ERROR, "snapshot_failed", "cannot build a keyring snapshot; still serving the previous one");
    return -1;
  }
  *served_gen = ks->generation;
  saw(ks->generation);
  keyring_accepted(ks->generation);
  jk_logline L;
  if (jk_log_begin(&L, JK_LOG_INFO, "keyring_serving")) {
    jk_log_int(&L, "generation", (int64_t)ks->generation);
    jk_log_str(&L, "etag", ks->etag);
    for (size_t i = 0; i < ks->nsig; i++) {
      char k[32];
      snprintf(k, sizeof k, "kid_%s", jwtkit_alg_name(ks->sig[i].alg));
      jk_log_str(&L, k, ks->sig[i].key ? jwtkit_key_kid(ks->sig[i].key) : "(none)");
    }
    jk_log_end(&L);
  }
  sv_keysnap_install(ks);
  sv_metrics_mint_prune(ks); /* the series of keys that left the JWKS go with them */
  return 0;
}

/* ------------------------------------------------------ rotation thread */

static struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t th;
  int running, stop;
  sv_keycfg *pending; /* new configuration from SIGHUP */
  sv_keycfg cfg;      /* owned by the thread */
  jwtkit_keyring *kr; /* owned by the thread */
} g_rot = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

/* The thread's mutable handle changes under g_rot.mu, so that
 * sv_rotation_stop can interrupt a wait of the current one (a PostgreSQL
 * lock held by another replica) instead of joining for up to its lock
 * timeout.  The old handle is freed outside the mutex. */
static void set_kr(jwtkit_keyring *kr) {
  pthread_mutex_lock(&g_rot.mu);
  jwtkit_keyring *old = g_rot.kr;
  g_rot.kr = kr;
  if (kr != NULL && g_rot.stop) jwtkit_keyring_interrupt(kr);
  pthread_mutex_unlock(&g_rot.mu);
  jwtkit_keyring_free(old);
}

static void *rotation_main(void *arg) {
  (void)arg;
  sv_keysnap *cur = sv_keysnap_acquire();
  uint64_t served = cur ? cur->generation : 0;
  sv_keysnap_release(cur);
  jwtkit_keyring_watch *watch = NULL;
  jwtkit_errinfo wi;
  if (jwtkit_keyring_watch_open(&watch, g_rot.cfg.dir, &wi) != JWTKIT_OK)
    jk_log(JK_LOG_WARN, "watch_unavailable", "no change notifications; relying on the periodic check: %s", wi.msg);
  int64_t next_check = 0;
  for (;;) {
    pthread_mutex_lock(&g_rot.mu);
    if (g_rot.stop) {
      pthread_mutex_unlock(&g_rot.mu);
      break;
    }
    sv_keycfg *pending = g_rot.pending;
    g_rot.pending = NULL;
    pthread_mutex_unlock(&g_rot.mu);

    int force = 0;
    if (pending != NULL) {
      char err[600];
      jwtkit_keyring *kr = NULL;
      jwtkit_errinfo lib;
      memset(&lib, 0, sizeof lib);
      if (prepare(pending, &kr, err, sizeof err, &lib) == 0) {
        set_kr(kr);
        sv_keycfg_free(&g_rot.cfg);
        g_rot.cfg = *pending;
        force = 1;
        jk_log(JK_LOG_INFO, "keyring_reopened", "keyring re-opened: %s", g_rot.cfg.where);
        jwtkit_keyring_watch_free(watch);
        watch = NULL;
        if (jwtkit_keyring_watch_open(&watch, g_rot.cfg.dir, &wi) != JWTKIT_OK)
          jk_log(JK_LOG_WARN, "watch_unavailable", "no change notifications; relying on the periodic check: %s", wi.msg);
      } else {
        keyring_failed(lib.code, &lib, "keyring_reload_failed", "reload: keyring not re-opened; keeping the previous one", err);
        sv_keycfg_free(pending);
      }
      free(pending);
    }
    int64_t now = jk_now();
    int external = jwtkit_keyring_watch_poll(watch);
    if (force || external || now >= next_check) {
      if (g_rot.kr == NULL) {
        char err[600];
        jwtkit_keyring *kr = NULL;
        jwtkit_errinfo lib;
        memset(&lib, 0, sizeof lib);
        if (prepare(&g_rot.cfg, &kr, err, sizeof err, &lib) != 0)
          keyring_failed(lib.code, &lib, "keyring_unavailable", "keyring unavailable; still serving the previous snapshot", err);
        else
          set_kr(kr);
      }
      int actions = 0;
      if (g_rot.kr != NULL) {
        jwtkit_errinfo ei;
        memset(&ei, 0, sizeof ei);
        jwtkit_err rc = jwtkit_keyring_rotate(g_rot.kr, now, 0, report, &actions, &ei);
        if (rc != JWTKIT_OK) {
          if (rejection_of(rc, &ei) == NULL) sv_metrics_rotation_action("failed");
          keyring_failed(rc, &ei, "keyring_rotation_failed", "keyring rotation failed; still serving the previous snapshot",
                         ei.msg[0] ? ei.msg : jwtkit_strerror(rc));
          set_kr(NULL); /* its state is unknown: open again next time */
        } else {
          saw(jwtkit_keyring_generation(g_rot.kr));
          if (jwtkit_keyring_generation(g_rot.kr) == served) keyring_accepted(served);
        }
      }
      if (g_rot.kr != NULL && (force || jwtkit_keyring_generation(g_rot.kr) != served)) {
        if (actions == 0 && !force) sv_metrics_rotation_action("reloaded");
        if (sv_keysnap_reload(&g_rot.cfg, &served) != 0) served = 0; /* retry next time */
      }
      /* clients in the keyring's database follow the same notification
       * and the same periodic check */
      if (g_rot.cfg.clients_pg) sv_clients_pg_refresh(&g_rot.cfg);
      (void)jwtkit_keyring_watch_poll(watch); /* our own change */
      /* expired client assertion ids leave the shared table */
      if (now >= next_check && jwtkit_keyring_location_is_postgres(g_rot.cfg.dir)) sv_pg_jti_cleanup(&g_rot.cfg, now);
      if (now >= next_check) next_check = now + g_rot.cfg.rotate_check;
    }
    /* sleep one second, or until stop / reload */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 1;
    pthread_mutex_lock(&g_rot.mu);
    if (!g_rot.stop && g_rot.pending == NULL) pthread_cond_timedwait(&g_rot.cv, &g_rot.mu, &until);
    pthread_mutex_unlock(&g_rot.mu);
  }
  jwtkit_keyring_watch_free(watch);
  return NULL;
}

int sv_rotation_start(const sv_keycfg *kc, jwtkit_keyring *kr) {
  g_rot.cfg = *kc; /* the thread owns the passphrase copy from now on */
  g_rot.kr = kr;
  g_rot.stop = 0;
  g_rot.pending = NULL;
  if (pthread_create(&g_rot.th, NULL, rotation_main, NULL) != 0) {
    g_rot.kr = NULL;
    memset(&g_rot.cfg, 0, sizeof g_rot.cfg); /* the caller keeps kr and the passphrase */
    return -1;
  }
  g_rot.running = 1;
  sv_keyhealth_start();
  return 0;
}

void sv_rotation_reload(sv_keycfg *kc) {
  sv_keycfg *copy = malloc(sizeof *copy);
  if (copy == NULL) {
    sv_keycfg_free(kc);
    return;
  }
  *copy = *kc; /* takes the passphrase and the KEKs */
  kc->passphrase = NULL;
  kc->keks = NULL;
  kc->nkeks = 0;
  pthread_mutex_lock(&g_rot.mu);
  if (g_rot.pending) {
    sv_keycfg_free(g_rot.pending);
    free(g_rot.pending);
  }
  g_rot.pending = copy;
  pthread_cond_signal(&g_rot.cv);
  pthread_mutex_unlock(&g_rot.mu);
}

void sv_rotation_stop(void) {
  sv_keyhealth_stop();
  if (g_rot.running) {
    pthread_mutex_lock(&g_rot.mu);
    g_rot.stop = 1;
    if (g_rot.kr != NULL) jwtkit_keyring_interrupt(g_rot.kr);
    pthread_cond_signal(&g_rot.cv);
    pthread_mutex_unlock(&g_rot.mu);
    pthread_join(g_rot.th, NULL);
    g_rot.running = 0;
  }
  if (g_rot.pending) {
    sv_keycfg_free(g_rot.pending);
    free(g_rot.pending);
    g_rot.pending = NULL;
  }
  jwtkit_keyring_free(g_rot.kr);
  g_rot.kr = NULL;
  sv_keycfg_free(&g_rot.cfg);
  sv_keysnap_install(NULL);
}
