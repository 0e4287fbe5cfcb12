/* Logins and the session pool of a token key: a signer takes an idle
 * session, opens one (and logs it in) while fewer than max_sessions are
 * open, or waits for one at most wait_ms; lost sessions are dropped by
 * generation (p11_internal.h lists the parts). */
#include "p11_internal.h"
#include "common/attr.h"

#ifdef JWTKIT_WITH_PKCS11

/* --------------------------------------------------------------- login */

/* Log the session's user in, once.  Sets *refused for a PIN the token
 * refused (never to be tried again). */
static jwtkit_err login(const p11_token *t, CK_SESSION_HANDLE h, const char *pin, size_t pin_len,
                        const jwtkit_key *key, atomic_ulong *count, int *refused, jwtkit_errinfo *info) {
  char b[32];
  CK_TOKEN_INFO ti;
  CK_FLAGS flags = t->fl->C_GetTokenInfo(t->slot, &ti) == CKR_OK ? ti.flags : t->flags;
  if (flags & CKF_USER_PIN_LOCKED) {
    *refused = 1;
    return jk_fail(info, JWTKIT_ERR_PASSPHRASE, "pin",
                   "the user PIN of %s is locked: the security officer must unblock it (pkcs11-tool --init-pin "
                   "--login --login-type so); not tried",
                   t->where);
  }
  int protected_path = (flags & CKF_PROTECTED_AUTHENTICATION_PATH) != 0;
  if (pin == NULL && !protected_path)
    return jk_fail(info, JWTKIT_ERR_PASSPHRASE, "pin",
                   "%s needs the user PIN: add pin-source=FILE to the URI (first line, mode 0600) or set " P11_PIN_ENV,
                   t->where);
  CK_RV before = jk_p11_pin_refused(t, pin, pin_len);
  if (before != CKR_OK) {
    *refused = 1;
    return jk_fail(info, JWTKIT_ERR_PASSPHRASE, "pin",
                   "%s refused this PIN before (%s); not tried again: fix pin-source= or " P11_PIN_ENV, t->where,
                   jk_p11_rv_text(before, b));
  }
  CK_RV rv = jk_p11_hook(JK_P11_EV_LOGIN, key);
  if (count != NULL) atomic_fetch_add(count, 1);
  if (rv == CKR_OK)
    rv = t->fl->C_Login(h, CKU_USER, pin ? (CK_UTF8CHAR_PTR)JK_UNCONST(pin) : NULL_PTR, pin ? (CK_ULONG)pin_len : 0);
  if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN) return JWTKIT_OK;
  if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_INVALID || rv == CKR_PIN_LEN_RANGE || rv == CKR_PIN_LOCKED ||
      rv == CKR_PIN_EXPIRED)
    jk_p11_pin_note_refused(t, pin, pin_len, rv);
  switch (rv) {
    case CKR_PIN_INCORRECT:
    case CKR_PIN_INVALID:
    case CKR_PIN_LEN_RANGE: {
      *refused = 1;
      CK_FLAGS after = t->fl->C_GetTokenInfo(t->slot, &ti) == CKR_OK ? ti.flags : 0;
      return jk_fail(info, JWTKIT_ERR_PASSPHRASE, "pin",
                     "%s refused the PIN (%s); not retried%s: check pin-source= or " P11_PIN_ENV, t->where,
                     jk_p11_rv_text(rv, b),
                     (after & CKF_USER_PIN_LOCKED)       ? ", the PIN is now locked"
                     : (after & CKF_USER_PIN_FINAL_TRY) ? ", one more wrong PIN locks it"
                                                         : "");
    }
    case CKR_PIN_LOCKED:
      *refused = 1;
      return jk_fail(info, JWTKIT_ERR_PASSPHRASE, "pin",
                     "the user PIN of %s is locked (CKR_PIN_LOCKED): the security officer must unblock it "
                     "(pkcs11-tool --init-pin --login --login-type so)",
                     t->where);
    case CKR_PIN_EXPIRED:
      *refused = 1;
      return jk_fail(info, JWTKIT_ERR_PASSPHRASE, "pin", "the user PIN of %s has expired: set a new one (pkcs11-tool --change-pin)",
                     t->where);
    case CKR_USER_PIN_NOT_INITIALIZED:
      *refused = 1;
      return jk_fail(info, JWTKIT_ERR_STATE, "pin", "%s has no user PIN yet: initialise it (softhsm2-util --init-token, pkcs11-tool --init-pin)",
                     t->where);
    default:
      return jk_fail(info, JWTKIT_ERR_IO, "pin", "login to %s failed: %s", t->where, jk_p11_rv_text(rv, b));
  }
}

/* Log in if the session is not logged in yet (a new session of a token
 * that requires a login; a token's login holds for all its sessions). */
jwtkit_err jk_p11_login_if_needed(const p11_token *t, CK_SESSION_HANDLE h, const char *pin, size_t pin_len,
                                  const jwtkit_key *key, atomic_ulong *count, int *refused, jwtkit_errinfo *info) {
  if (!(t->flags & CKF_LOGIN_REQUIRED)) return JWTKIT_OK;
  CK_SESSION_INFO si;
  char b[32];
  CK_RV rv = t->fl->C_GetSessionInfo(h, &si);
  if (rv != CKR_OK) return jk_fail(info, JWTKIT_ERR_IO, NULL, "C_GetSessionInfo on %s: %s", t->where, jk_p11_rv_text(rv, b));
  if (si.state != CKS_RO_PUBLIC_SESSION && si.state != CKS_RW_PUBLIC_SESSION) return JWTKIT_OK;
  return login(t, h, pin, pin_len, key, count, refused, info);
}

/* ------------------------------------------------------------ the pool */

static void sess_close(struct jk_p11key *p, CK_SESSION_HANDLE h) { (void)p->tok.fl->C_CloseSession(h); }

/* Open a session on the key's token, log in if needed, find the key. */
jwtkit_err jk_p11_sess_open(struct jk_p11key *p, const jwtkit_key *key, p11_sess *s, CK_RV *rv_out,
                            jwtkit_errinfo *info) {
  char b[32];
  *rv_out = CKR_OK;
  pthread_mutex_lock(&p->login_mu);
  pthread_mutex_lock(&p->mu);
  int rescan = p->rescan;
  unsigned long gen = p->gen;
  pthread_mutex_unlock(&p->mu);
  jwtkit_err rc = JWTKIT_OK;
  p11_token t = p->tok;
  CK_RV irv;
  if (rescan && !jk_p11_module_ready(p->tok.mod, &irv)) {
    pthread_mutex_unlock(&p->login_mu);
    jk_p11_module_suspect(p->tok.mod);
    return jk_fail(info, JWTKIT_ERR_IO, "token",
                   "%s is not present: its module did not initialise again (%s); insert it, signing resumes then",
                   p->tok.where, jk_p11_rv_text(irv, b));
  }
  if (rescan) {
    p11_token fresh;
    memset(&fresh, 0, sizeof fresh);
    int r = jk_p11_token_search(p->tok.fl, &p->uri, &fresh, NULL, 0, info);
    if (r != 1) {
      pthread_mutex_unlock(&p->login_mu);
      jk_p11_module_suspect(p->tok.mod); /* a module that lost the token may find it once re-initialised */
      if (r < 0) return info ? info->code : JWTKIT_ERR_IO;
      return jk_fail(info, JWTKIT_ERR_IO, "token", "%s is not present (removed?); insert it, signing resumes then",
                     p->tok.where);
    }
    pthread_mutex_lock(&p->mu);
    p->tok.slot = fresh.slot;
    p->tok.flags = fresh.flags;
    p->rescan = 0;
    t = p->tok;
    pthread_mutex_unlock(&p->mu);
  }
  CK_RV rv = jk_p11_hook(JK_P11_EV_OPEN, key);
  CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
  if (rv == CKR_OK) rv = t.fl->C_OpenSession(t.slot, CKF_SERIAL_SESSION, NULL, NULL, &h);
  *rv_out = rv;
  if (rv != CKR_OK) {
    if (jk_p11_rv_gone(rv)) {
      pthread_mutex_lock(&p->mu);
      p->rescan = 1;
      pthread_mutex_unlock(&p->mu);
    }
    pthread_mutex_unlock(&p->login_mu);
    if (rv != CKR_SESSION_COUNT) jk_p11_module_suspect(p->tok.mod);
    if (rv == CKR_SESSION_COUNT)
      return jk_fail(info, JWTKIT_ERR_IO, "session", "%s opens no more sessions (CKR_SESSION_COUNT): its session limit is reached",
                     t.where);
    return jk_fail(info, JWTKIT_ERR_IO, "session", "cannot open a session on %s: %s", t.where, jk_p11_rv_text(rv, b));
  }
  int refused = 0;
  jwtkit_errinfo why = {0};
  rc = jk_p11_login_if_needed(&t, h, p->pin, p->pin_len, key, &p->logins, &refused, &why);
  if (rc != JWTKIT_OK && info != NULL) *info = why;
  if (refused) { /* every later signature fails with this, without asking the token */
    pthread_mutex_lock(&p->mu);
    p->refused = 1;
    p->refused_info = why;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
  }
  pthread_mutex_unlock(&p->login_mu);
  if (rc == JWTKIT_ERR_IO) jk_p11_module_suspect(p->tok.mod); /* a login the token failed, not a PIN it refused */
  if (rc == JWTKIT_OK) {
    CK_OBJECT_HANDLE found[2];
    CK_ULONG n = 0;
    rc = jk_p11_find_objects(&t, h, CKO_PRIVATE_KEY, p->uri.object, p->uri.id, p->uri.id_len, found, &n, info);
    /* a key that was there and is not now: the token may be another one,
     * or the module lost it */
    if (rc == JWTKIT_ERR_IO || (rc == JWTKIT_OK && n == 0 && key != NULL)) jk_p11_module_suspect(p->tok.mod);
    if (rc == JWTKIT_OK && n == 0)
      rc = jk_fail(info, JWTKIT_ERR_NOT_FOUND, "object",
                   "%s has no private key object=%s%s (list them: pkcs11-tool --list-objects --login)", t.where,
                   p->uri.object ? p->uri.object : "(any)", p->uri.id ? " with that id" : "");
    else if (rc == JWTKIT_OK && n > 1)
      rc = jk_fail(info, JWTKIT_ERR_INVALID_ARG, "object", "several private keys in %s match the URI; add id=",
                   t.where);
    if (rc == JWTKIT_OK) {
      s->h = h;
      s->obj = found[0];
      s->gen = gen;
      atomic_fetch_add(&p->opens, 1);
      return JWTKIT_OK;
    }
  }
  sess_close(p, h);
  return rc;
}

static void add_ms(struct timespec *ts, unsigned ms) {
  ts->tv_sec += ms / 1000;
  ts->tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000L;
  }
}

/* Take a session: an idle one, a new one while fewer than max are open,
 * else wait for one (at most wait_ms). */
jwtkit_err jk_p11_sess_get(struct jk_p11key *p, const jwtkit_key *key, p11_sess *s, jwtkit_errinfo *info) {
  struct timespec deadline;
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  add_ms(&deadline, p->wait_ms);
  int waited = 0;
  unsigned long epoch = jk_p11_module_epoch(p->tok.mod);
  pthread_mutex_lock(&p->mu);
  if (p->epoch != epoch) {
    /* the module was re-initialised: its sessions are gone (their handles
     * mean nothing now, or another key's sessions), the slot may differ */
    p->open -= p->nidle;
    p->nidle = 0;
    p->epoch = epoch;
    p->gen++;
    p->rescan = 1;
  }
  for (;;) {
    if (p->refused) {
      jwtkit_errinfo why = p->refused_info;
      pthread_mutex_unlock(&p->mu);
      return jk_fail(info, why.code, why.field, "%s", why.msg);
    }
    while (p->nidle > 0) {
      p11_sess c = p->idle[--p->nidle];
      if (c.gen == p->gen) {
        pthread_mutex_unlock(&p->mu);
        *s = c;
        return JWTKIT_OK;
      }
      p->open--; /* lost with its generation */
      sess_close(p, c.h);
    }
    if (p->open < p->max) {
      p->open++;
      pthread_mutex_unlock(&p->mu);
      CK_RV rv;
      jwtkit_err rc = jk_p11_sess_open(p, key, s, &rv, info);
      if (rc == JWTKIT_OK) return rc;
      pthread_mutex_lock(&p->mu);
      p->open--;
      pthread_cond_broadcast(&p->cv);
      if (rv == CKR_SESSION_COUNT && p->open > 0) {
        /* the token's own limit: wait for one of ours */
        p->max = p->open;
        continue;
      }
      pthread_mutex_unlock(&p->mu);
      return rc;
    }
    if (!waited) {
      waited = 1;
      atomic_fetch_add(&p->waits, 1);
      pthread_mutex_unlock(&p->mu);
      (void)jk_p11_hook(JK_P11_EV_WAIT, key);
      pthread_mutex_lock(&p->mu);
      continue;
    }
    int w = pthread_cond_timedwait(&p->cv, &p->mu, &deadline);
    if (w == ETIMEDOUT && p->nidle == 0 && !p->refused && p->open >= p->max) {
      unsigned max = p->max;
      pthread_mutex_unlock(&p->mu);
      return jk_fail(info, JWTKIT_ERR_IO, "session",
                     "all %u sessions of the key in %s stayed busy for %u ms (raise max_sessions or wait_ms)", max,
                     p->tok.where, p->wait_ms);
    }
  }
}

/* Give a session back: kept when it still works, else closed. */
void jk_p11_sess_put(struct jk_p11key *p, const p11_sess *s, CK_RV rv) {
  pthread_mutex_lock(&p->mu);
  int keep = rv == CKR_OK && s->gen == p->gen && p->nidle < p->cap && !p->refused;
  if (keep) {
    p->idle[p->nidle++] = *s;
  } else {
    p->open--;
    if (jk_p11_rv_lost(rv)) {
      p->gen++; /* the other idle sessions are as lost as this one */
      if (jk_p11_rv_gone(rv)) p->rescan = 1;
    }
  }
  pthread_cond_signal(&p->cv);
  pthread_mutex_unlock(&p->mu);
  if (!keep) sess_close(p, s->h);
}

void jk_p11_key_free(struct jk_p11key *p) {
  if (p == NULL) return;
  if (p->tok.mod != NULL) {
    jk_p11_enter();
    if (p->epoch == jk_p11_module_epoch(p->tok.mod))
      for (unsigned i = 0; i < p->nidle; i++) sess_close(p, p->idle[i].h);
    jk_p11_leave();
  }
  jk_p11_token_close(&p->tok);
  pthread_mutex_destroy(&p->mu);
  pthread_mutex_destroy(&p->login_mu);
  pthread_cond_destroy(&p->cv);
  jk_free(p->idle);
  jk_free_secret(p->pin, p->pin_len + 1);
  jk_p11_uri_free(&p->uri);
  jk_wipe(p, sizeof *p);
  jk_free(p);
}

/* A new key state owning tok (also on failure: *out NULL, token closed). */
jwtkit_err jk_p11_key_new(p11_token *tok, jk_p11_uri *uri, const jwtkit_pkcs11_opts *opts, struct jk_p11key **out,
                             jwtkit_errinfo *info) {
  *out = NULL;
  unsigned max = opts && opts->max_sessions ? opts->max_sessions : P11_DEFAULT_SESSIONS;
  if (max > P11_MAX_SESSIONS) {
    jk_p11_token_close(tok);
    jk_p11_uri_free(uri);
    return jk_fail(info, JWTKIT_ERR_INVALID_ARG, "max_sessions", "max_sessions %u is over %u", max, P11_MAX_SESSIONS);
  }
  struct jk_p11key *p = jk_calloc(1, sizeof *p);
  if (p == NULL || (p->idle = jk_calloc(max, sizeof *p->idle)) == NULL) {
    jk_free(p);
    jk_p11_token_close(tok);
    jk_p11_uri_free(uri);
    return jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
  }
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&p->cv, &ca);
  pthread_condattr_destroy(&ca);
  pthread_mutex_init(&p->mu, NULL);
  pthread_mutex_init(&p->login_mu, NULL);
  p->tok = *tok;
  p->epoch = jk_p11_module_epoch(tok->mod);
  memset(tok, 0, sizeof *tok);
  p->uri = *uri;
  memset(uri, 0, sizeof *uri);
  p->max = p->cap = max;
  p->wait_ms = opts && opts->wait_ms ? opts->wait_ms : P11_DEFAULT_WAIT_MS;
  *out = p;
  return JWTKIT_OK;
}

int jk_p11_get_stats(const jwtkit_key *key, jk_p11_stats *out) {
  if (key == NULL || key->p11 == NULL) return -1;
  struct jk_p11key *p = key->p11;
  out->opens = atomic_load(&p->opens);
  out->logins = atomic_load(&p->logins);
  out->waits = atomic_load(&p->waits);
  out->retries = atomic_load(&p->retries);
  pthread_mutex_lock(&p->mu);
  out->open_now = p->open;
  out->max_sessions = p->max;
  pthread_mutex_unlock(&p->mu);
  return 0;
}

int jk_p11_test_module(const jwtkit_key *key, void **function_list, unsigned long *slot) {
  if (key == NULL || key->p11 == NULL) return -1;
  struct jk_p11key *p = key->p11;
  pthread_mutex_lock(&p->mu);
  *function_list = p->tok.fl;
  *slot = p->tok.slot;
  pthread_mutex_unlock(&p->mu);
  return 0;
}

#endif /* JWTKIT_WITH_PKCS11 */
