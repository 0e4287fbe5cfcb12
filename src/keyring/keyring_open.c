/* Keyring locations (directory or postgres:// URL), opening, creating,
 * trusting a document after review, re-sealing under new KEKs. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "codec/json.h"
#include "core/alloc.h"
#include "core/error_internal.h"
#include "jwtkit/jwks.h"
#include "keyring_internal.h"

/* ---------------------------------------------------------------- API */

int jwtkit_keyring_location_is_postgres(const char *location) {
  return location != NULL && (strncmp(location, "postgres://", 11) == 0 || strncmp(location, "postgresql://", 13) == 0);
}

void jwtkit_keyring_location_redact(const char *location, char *out, size_t cap) {
  if (out == NULL || cap == 0) return;
  out[0] = '\0';
  if (location == NULL) return;
  if (!jwtkit_keyring_location_is_postgres(location)) {
    snprintf(out, cap, "%s", location);
    return;
  }
  /* scheme://[user[:password]@]host...[?...password=...&...] */
  jk_buf b;
  jk_buf_init(&b);
  const char *p = strstr(location, "://") + 3;
  jk_buf_put(&b, location, (size_t)(p - location));
  const char *at = strchr(p, '@'), *slash = strchr(p, '/'), *q = strchr(p, '?');
  const char *end_auth = slash ? slash : q;
  if (at != NULL && (end_auth == NULL || at < end_auth)) {
    const char *colon = memchr(p, ':', (size_t)(at - p));
    if (colon != NULL) {
      jk_buf_put(&b, p, (size_t)(colon - p));
      jk_buf_puts(&b, ":***");
      p = at;
    }
  }
  while (*p) {
    /* a password=... query parameter */
    if ((*p == '?' || *p == '&') && strncmp(p + 1, "password=", 9) == 0) {
      jk_buf_put(&b, p, 10);
      jk_buf_puts(&b, "***");
      p += 10;
      while (*p && *p != '&') p++;
      continue;
    }
    jk_buf_putc(&b, *p++);
  }
  size_t n = 0;
  char *s = jk_buf_take(&b, &n);
  snprintf(out, cap, "%s", s ? s : "(PostgreSQL keyring)");
  jk_free(s);
}

/* review: 2 = public metadata only (a PostgreSQL keyring read without any
 * KEK); else a KEK is required there. */
static jwtkit_err open_store(jwtkit_keyring **out, const char *dir, const jwtkit_keyring_secrets *sec, int create,
                             int review, jwtkit_errinfo *info) {
  *out = NULL;
  if (dir == NULL || dir[0] == '\0') return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, "no keyring location");
  jwtkit_keyring *kr = jk_calloc(1, sizeof *kr);
  if (kr == NULL) return jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
  const char *passphrase = sec ? sec->passphrase : NULL;
  jwtkit_err rc;
  if (jwtkit_keyring_location_is_postgres(dir)) {
#ifdef JWTKIT_WITH_POSTGRES
    rc = jk_store_pg_open(&kr->store, dir, sec ? sec->keks : NULL, sec ? sec->nkeks : 0, info);
#else
    rc = jk_fail(info, JWTKIT_ERR_UNSUPPORTED, NULL, "this jwtkit was built without PostgreSQL support");
#endif
  } else {
    rc = jk_store_dir_open(&kr->store, dir, create, info);
  }
  if (rc == JWTKIT_OK && passphrase != NULL && (kr->passphrase = jk_strdup(passphrase)) == NULL)
    rc = jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
  /* the document is authenticated with the keyring's secret: the KEKs, or
   * a directory keyring's passphrase */
  kr->pg = jwtkit_keyring_location_is_postgres(dir);
  if (rc == JWTKIT_OK && kr->pg && (sec == NULL || sec->nkeks == 0)) {
    if (review != 2) {
      rc = jk_fail(info, JWTKIT_ERR_KEK, NULL,
                   "a PostgreSQL keyring needs a key-encryption key (KEK): --kek-file, --kek-env or $JWTKIT_KEK (its "
                   "private keys are sealed and its document authenticated under it)");
    } else { /* public metadata only: the document cannot be authenticated */
      kr->auth.mode = JK_DOCAUTH_KEK;
      kr->auth.nkeys = 0;
      kr->auth.verified_by = -1;
    }
  } else if (rc == JWTKIT_OK && kr->pg) {
    rc = jk_docauth_set_keks(&kr->auth, sec->keks, sec->nkeks, info); /* the store checked them */
  }
  else if (rc == JWTKIT_OK && kr->passphrase != NULL)
    jk_docauth_set_pass(&kr->auth, kr->passphrase);
  if (rc != JWTKIT_OK) {
    jwtkit_keyring_free(kr);
    return rc;
  }
  *out = kr;
  return JWTKIT_OK;
}

typedef struct init_arg {
  const jwtkit_alg *algs;
  size_t n;
} init_arg;

static jwtkit_err do_init(jwtkit_keyring *kr, jk_kr_txn *x, void *arg, int64_t now, jwtkit_errinfo *info) {
  init_arg *a = arg;
  for (size_t i = 0; i < a->n; i++) {
    kr_key *k = NULL;
    jwtkit_err rc = jk_kr_new_key(kr, x, a->algs[i], NULL, JWTKIT_KEY_ACTIVE, now, &k, info);
    if (rc != JWTKIT_OK) return rc;
    jk_kr_say(x, "created active key %s (%s): first key of a new keyring, signs at once", k->kid, jwtkit_alg_name(k->alg));
  }
  return JWTKIT_OK;
}

jwtkit_err jwtkit_keyring_init(const char *dir, const jwtkit_alg *algs, size_t nalgs, const jwtkit_keyring_timing *timing,
                               const char *passphrase, int64_t now, jwtkit_keyring_report_fn report, void *ctx,
                               jwtkit_errinfo *info) {
  jwtkit_keyring_secrets sec = {.passphrase = passphrase, .keks = NULL, .nkeks = 0};
  return jwtkit_keyring_init_ex(dir, algs, nalgs, timing, &sec, now, report, ctx, info);
}

jwtkit_err jwtkit_keyring_init_ex(const char *dir, const jwtkit_alg *algs, size_t nalgs,
                                  const jwtkit_keyring_timing *timing, const jwtkit_keyring_secrets *sec, int64_t now,
                                  jwtkit_keyring_report_fn report, void *ctx, jwtkit_errinfo *info) {
  const char *passphrase = sec ? sec->passphrase : NULL;
  if (dir == NULL || algs == NULL || nalgs == 0 || nalgs > 16) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, "alg", "name 1..16 algorithms");
  if (!jk_kr_time_ok(now)) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, "clock out of range");
  jwtkit_keyring_timing t;
  if (timing)
    t = *timing;
  else
    jwtkit_keyring_timing_default(&t);
  if (t.rsa_bits == 0) t.rsa_bits = 2048;
  jwtkit_err rc = jk_kr_check_timing(&t, info);
  if (rc != JWTKIT_OK) return rc;
  char *token = NULL; /* keys in a PKCS#11 token: checked before anything is created */
  if (sec != NULL && sec->pkcs11 != NULL &&
      ((rc = jk_kr_token_available(info)) != JWTKIT_OK || (rc = jk_kr_token_canon(sec->pkcs11, &token, info)) != JWTKIT_OK))
    return rc;
  for (size_t i = 0; i < nalgs; i++) {
    jwtkit_kty kty = jwtkit_alg_kty(algs[i]);
    if (kty == 0 || kty == JWTKIT_KTY_OCT) rc = jk_fail(info, JWTKIT_ERR_INVALID_ARG, "alg", "a keyring holds RS*, PS*, ES* and EdDSA keys only");
    for (size_t j = 0; rc == JWTKIT_OK && j < i; j++)
      if (algs[j] == algs[i]) rc = jk_fail(info, JWTKIT_ERR_INVALID_ARG, "alg", "algorithm named twice");
    if (rc != JWTKIT_OK) {
      jk_free(token);
      return rc;
    }
  }
  jwtkit_keyring *kr = NULL;
  if ((rc = open_store(&kr, dir, sec, 1, 0, info)) != JWTKIT_OK) {
    jk_free(token);
    return rc;
  }
  kr->pkcs11 = token;
  if ((rc = kr->store->ops->lock(kr->store, 1, info)) != JWTKIT_OK) {
    jwtkit_keyring_free(kr);
    return rc;
  }
  char *existing = NULL;
  size_t el;
  jwtkit_errinfo probe;
  rc = kr->store->ops->load_meta(kr->store, &existing, &el, &probe);
  jk_free(existing);
  if (rc != JWTKIT_ERR_NOT_FOUND) {
    (void)kr->store->ops->unlock(kr->store, 0, &probe);
    jwtkit_keyring_free(kr);
    char where[512];
    jwtkit_keyring_location_redact(dir, where, sizeof where);
    return rc == JWTKIT_OK ? jk_fail(info, JWTKIT_ERR_STATE, NULL, "%s already holds a keyring", where)
                           : jk_fail(info, rc, NULL, "%s", probe.msg);
  }
  kr->t = t;
  kr->encrypted = passphrase != NULL && kr->pkcs11 == NULL; /* token keyrings have no key files to encrypt */
  jk_kr_txn *x = jk_kr_txn_new(report, ctx);
  if (x == NULL) {
    (void)kr->store->ops->unlock(kr->store, 0, info);
    rc = jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
  } else {
    init_arg a = {algs, nalgs};
    rc = jk_kr_txn_end(kr, x, do_init(kr, x, &a, now, info), info);
  }
  jwtkit_keyring_free(kr);
  return rc;
}

jwtkit_err jwtkit_keyring_open(jwtkit_keyring **out, const char *dir, const char *passphrase, jwtkit_errinfo *info) {
  jwtkit_keyring_secrets sec = {.passphrase = passphrase, .keks = NULL, .nkeks = 0};
  return jwtkit_keyring_open_ex(out, dir, &sec, info);
}

jwtkit_err jwtkit_keyring_open_ex(jwtkit_keyring **out, const char *dir, const jwtkit_keyring_secrets *sec,
                                  jwtkit_errinfo *info) {
  return jwtkit_keyring_open_seen(out, dir, sec, 0, info);
}

/* open_seen, open_review (review 1) and open_public (review 0, public 1) */
static jwtkit_err open_as(jwtkit_keyring **out, const char *dir, const jwtkit_keyring_secrets *sec, uint64_t seen,
                          int review, int public, jwtkit_errinfo *info) {
  if (out == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, NULL);
  int public_only = review && jwtkit_keyring_location_is_postgres(dir) && (sec == NULL || sec->nkeks == 0);
  jwtkit_err rc = open_store(out, dir, sec, 0, public_only ? 2 : 0, info);
  if (rc != JWTKIT_OK) return rc;
  (*out)->seen = seen;
  (*out)->review = review;
  (*out)->public_only = public_only || public;
  /* a shared lock: a concurrent rotation never shows half its files */
  if ((rc = (*out)->store->ops->lock((*out)->store, 0, info)) == JWTKIT_OK) {
    rc = jk_kr_reload(*out, info);
    jwtkit_errinfo ignore;
    (void)(*out)->store->ops->unlock((*out)->store, 0, &ignore);
  }
  if (rc != JWTKIT_OK) {
    jwtkit_keyring_free(*out);
    *out = NULL;
  }
  return rc;
}

jwtkit_err jwtkit_keyring_open_seen(jwtkit_keyring **out, const char *location, const jwtkit_keyring_secrets *secrets,
                                    uint64_t seen, jwtkit_errinfo *info) {
  return open_as(out, location, secrets, seen, 0, 0, info);
}

jwtkit_err jwtkit_keyring_open_public(jwtkit_keyring **out, const char *location, const jwtkit_keyring_secrets *secrets,
                                      jwtkit_errinfo *info) {
  return open_as(out, location, secrets, 0, 0, 1, info);
}

jwtkit_err jwtkit_keyring_open_review(jwtkit_keyring **out, const char *location,
                                      const jwtkit_keyring_secrets *secrets, jwtkit_errinfo *verdict,
                                      jwtkit_errinfo *info) {
  jwtkit_err rc = open_as(out, location, secrets, 0, 1, 0, info);
  if (rc == JWTKIT_OK && verdict != NULL) *verdict = (*out)->verdict;
  return rc;
}

/* trust: a published key whose private part is not in the store, or does
 * not match, was not made by this keyring */
static jwtkit_err check_private_parts(jwtkit_keyring *kr, jwtkit_errinfo *info) {
  for (size_t i = 0; i < kr->n; i++) {
    kr_key *k = &kr->keys[i];
    if (k->state > JWTKIT_KEY_RETIRING || k->priv != NULL || k->verify_only) continue; /* pending, active: loaded */
    kr_key tmp = *k;
    tmp.priv = NULL;
    jwtkit_errinfo why;
    jwtkit_err rc = jk_kr_load_private(kr, &tmp, &why);
    jwtkit_key_free(tmp.priv);
    if (rc == JWTKIT_ERR_NOMEM) return jk_fail(info, rc, NULL, NULL);
    if (rc != JWTKIT_OK)
      return jk_fail(info, JWTKIT_ERR_STATE, "kid",
                     "key %.64s (%s) has no matching private key here (%.60s): not made by this keyring; remove it "
                     "or restore a backup",
                     k->kid, jwtkit_key_state_name(k->state), why.msg);
  }
  return JWTKIT_OK;
}

jwtkit_err jwtkit_keyring_trust(jwtkit_keyring *kr, jwtkit_keyring_report_fn report, void *ctx, jwtkit_errinfo *info) {
  if (kr == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, NULL);
  if (kr->auth.mode == JK_DOCAUTH_NONE)
    return jk_fail(info, JWTKIT_ERR_UNSUPPORTED, NULL,
                   "a directory keyring without a passphrase has no key to authenticate its document with; its "
                   "file permissions protect it");
  if (kr->meta == NULL) return jk_fail(info, JWTKIT_ERR_STATE, NULL, "no keyring document loaded");
  if (kr->public_only && kr->review)
    return jk_fail(info, JWTKIT_ERR_KEK, NULL, "authenticating the keyring document needs its KEK (--kek-file, --kek-env)");
  char line[200];
  if (!kr->review || kr->verdict.code == JWTKIT_OK) {
    snprintf(line, sizeof line, "%s (generation %llu) is already authenticated; nothing to do", jk_kr_doc_name(kr),
             (unsigned long long)kr->generation);
    if (report != NULL) report(ctx, line);
    return JWTKIT_OK;
  }
  jwtkit_err rc = kr->store->ops->lock(kr->store, 1, info);
  if (rc != JWTKIT_OK) return rc;
  /* exactly what was reviewed, and every published key made here */
  char *stored = NULL, *json = NULL;
  size_t sl = 0, len = 0;
  rc = kr->store->ops->load_meta(kr->store, &stored, &sl, info);
  if (rc == JWTKIT_OK && (sl != kr->meta_len || memcmp(stored, kr->meta, sl) != 0))
    rc = jk_fail(info, JWTKIT_ERR_STATE, NULL, "%s changed since it was reviewed; review it again", jk_kr_doc_name(kr));
  jk_free(stored);
  if (rc == JWTKIT_OK) rc = check_private_parts(kr, info);
  uint64_t gen = kr->generation;
  if (rc == JWTKIT_OK) {
    /* a new generation, authenticated; nothing else is changed or removed */
    kr->generation++;
    rc = jk_kr_meta_json(kr, &json, &len);
    if (rc != JWTKIT_OK) rc = jk_fail(info, rc, NULL, rc == JWTKIT_ERR_NOMEM ? NULL : "authenticating the keyring document failed");
  }
  if (rc == JWTKIT_OK) rc = kr->store->ops->save_meta(kr->store, json, len, info);
  jwtkit_err urc = kr->store->ops->unlock(kr->store, rc == JWTKIT_OK, info);
  if (rc == JWTKIT_OK) rc = urc;
  if (rc != JWTKIT_OK) {
    kr->generation = gen;
    jk_free(json);
    return rc;
  }
  jk_free(kr->meta);
  kr->meta = json;
  kr->meta_len = len;
  kr->review = 0;
  jk_info_clear(&kr->verdict);
  kr->auth.verified_by = 0;
  kr->seen = kr->generation;
  if (kr->auth.mode == JK_DOCAUTH_KEK)
    snprintf(line, sizeof line, "authenticated %s as generation %llu under KEK %s", jk_kr_doc_name(kr),
             (unsigned long long)kr->generation, kr->auth.ids[0]);
  else
    snprintf(line, sizeof line, "authenticated %s as generation %llu with the passphrase", jk_kr_doc_name(kr),
             (unsigned long long)kr->generation);
  if (report != NULL) report(ctx, line);
  return JWTKIT_OK;
}

jwtkit_err jwtkit_keyring_rekey(jwtkit_keyring *kr, jwtkit_keyring_report_fn report, void *ctx, jwtkit_errinfo *info) {
  if (kr == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, NULL);
  if (kr->store->ops->rekey == NULL || kr->auth.mode != JK_DOCAUTH_KEK)
    return jk_fail(info, JWTKIT_ERR_UNSUPPORTED, NULL,
                   "rekey applies to a PostgreSQL keyring (KEKs); a directory keyring's keys use its passphrase");
  if (kr->review || kr->public_only)
    return jk_fail(info, JWTKIT_ERR_STATE, NULL, "a keyring opened for review or without its private keys cannot be re-sealed");
  jwtkit_err rc = kr->store->ops->lock(kr->store, 1, info);
  if (rc != JWTKIT_OK) return rc;
  /* the document as stored, authenticated by one of the KEKs */
  rc = jk_kr_reload(kr, info);
  int remac = rc == JWTKIT_OK && kr->auth.verified_by != 0;
  size_t resealed = 0, total = 0;
  if (rc == JWTKIT_OK) rc = kr->store->ops->rekey(kr->store, &resealed, &total, info);
  /* and its MAC under the first KEK: same content, same generation */
  char *json = NULL;
  size_t len = 0;
  if (rc == JWTKIT_OK && remac) {
    rc = jk_kr_meta_json(kr, &json, &len);
    if (rc != JWTKIT_OK) rc = jk_fail(info, rc, NULL, rc == JWTKIT_ERR_NOMEM ? NULL : "authenticating the keyring document failed");
    if (rc == JWTKIT_OK) rc = kr->store->ops->save_meta(kr->store, json, len, info);
  }
  jwtkit_err urc = kr->store->ops->unlock(kr->store, rc == JWTKIT_OK, info);
  if (rc == JWTKIT_OK) rc = urc;
  if (rc == JWTKIT_OK && remac) {
    jk_free(kr->meta);
    kr->meta = json;
    kr->meta_len = len;
    kr->auth.verified_by = 0;
    json = NULL;
  }
  jk_free(json);
  if (rc == JWTKIT_OK && report != NULL) {
    char line[160];
    if (remac) {
      snprintf(line, sizeof line, "re-authenticated the keyring document (generation %llu) under the first KEK %s",
               (unsigned long long)kr->generation, kr->auth.ids[0]);
      report(ctx, line);
    }
    snprintf(line, sizeof line, "re-sealed %zu of %zu private keys under the first KEK (%zu were already under it)",
             resealed, total, total - resealed);
    report(ctx, line);
  }
  return rc;
}

void jwtkit_keyring_interrupt(jwtkit_keyring *kr) {
  if (kr != NULL && kr->store->ops->interrupt != NULL) kr->store->ops->interrupt(kr->store);
}

