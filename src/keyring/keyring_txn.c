/* Changes to a keyring: lock, reload, apply, commit, unlock, and the
 * report lines given out once a change is stored. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "codec/json.h"
#include "core/alloc.h"
#include "core/error_internal.h"
#include "jwtkit/jwks.h"
#include "keyring_internal.h"


static void vnote(jk_kr_txn *x, const char *fmt, va_list ap) JK_PRINTF(2, 0);
static void vnote(jk_kr_txn *x, const char *fmt, va_list ap) {
  if (x->report == NULL) return;
  char line[512];
  vsnprintf(line, sizeof line, fmt, ap);
  jk_buf_put(&x->lines, line, strlen(line) + 1);
}

/* A line to report, once the change is stored, that changes nothing. */
void jk_kr_note(jk_kr_txn *x, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vnote(x, fmt, ap);
  va_end(ap);
}

/* An action: marks the keyring changed and reports it once stored. */
void jk_kr_say(jk_kr_txn *x, const char *fmt, ...) {
  x->changed = 1;
  va_list ap;
  va_start(ap, fmt);
  vnote(x, fmt, ap);
  va_end(ap);
}

void jk_kr_fmt_time(int64_t t, char out[32]) {
  time_t tt = (time_t)t;
  struct tm tm;
  if (gmtime_r(&tt, &tm) == NULL || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) snprintf(out, 32, "%lld", (long long)t);
}

/* A fresh key pair made in the keyring's token, appended. */
static jwtkit_err new_token_key(jwtkit_keyring *kr, jk_kr_txn *x, jwtkit_alg alg, jwtkit_key_state st, int64_t now,
                                kr_key **out, jwtkit_errinfo *info) {
  if (kr->n >= KR_MAX_KEYS) return jk_fail(info, JWTKIT_ERR_TOO_LARGE, NULL, "a keyring holds at most %u keys", KR_MAX_KEYS);
  unsigned bits = jwtkit_alg_kty(alg) == JWTKIT_KTY_RSA ? kr->t.rsa_bits : 0;
  jwtkit_key *key = NULL, *pub = NULL;
  jwtkit_err rc = jk_kr_token_generate(kr, alg, bits, &key, info);
  if (rc != JWTKIT_OK) return rc;
  /* from here on the token holds a key this change made: destroyed again
   * unless the change is stored */
  const char *kid = jwtkit_key_kid(key); /* its thumbprint: the token's label */
  if (x->ncreated_token < KR_MAX_KEYS)
    snprintf(x->created_token[x->ncreated_token++], sizeof x->created_token[0], "%s", kid);
  char *jwk = NULL;
  size_t jl = 0;
  kr_key *k = NULL;
  for (size_t i = 0; i < kr->n; i++)
    if (strcmp(kr->keys[i].kid, kid) == 0) {
      rc = jk_fail(info, JWTKIT_ERR_INVALID_ARG, "kid", "the keyring already holds key %s", kid);
      goto fail;
    }
  /* the public half read from the token once, kept in the document */
  if ((rc = jwtkit_key_to_jwk(key, 0, &jwk, &jl)) != JWTKIT_OK || (rc = jwtkit_key_from_jwk(&pub, alg, jwk, jl, info)) != JWTKIT_OK)
    goto fail;
  jk_free(jwk);
  jwk = NULL;
  if ((rc = jwtkit_key_set_kid(pub, kid, strlen(kid))) != JWTKIT_OK || (rc = jwtkit_key_to_jwk(pub, 0, &jwk, &jl)) != JWTKIT_OK)
    goto fail;
  if ((k = jk_kr_push_key(kr)) == NULL || (k->kid = jk_strdup(kid)) == NULL) {
    if (k) kr->n--;
    rc = JWTKIT_ERR_NOMEM;
    goto fail;
  }
  k->file[0] = '\0';
  k->token = 1;
  k->alg = alg;
  k->state = st;
  k->created = k->published = now;
  k->activated = st == JWTKIT_KEY_ACTIVE ? now : 0;
  k->jwk = jwk;
  k->pub = pub;
  k->priv = key;
  *out = k;
  return JWTKIT_OK;
fail:
  jk_free(jwk);
  jwtkit_key_free(pub);
  jwtkit_key_free(key);
  return rc == JWTKIT_ERR_NOMEM || info == NULL || info->code != rc ? jk_fail(info, rc, NULL, NULL) : rc;
}

/* Create a fresh key for alg, store its private part, append it. */
jwtkit_err jk_kr_new_key(jwtkit_keyring *kr, jk_kr_txn *x, jwtkit_alg alg, jwtkit_key *given, jwtkit_key_state st,
                          int64_t now, kr_key **out, jwtkit_errinfo *info) {
  if (kr->pkcs11 != NULL) {
    if (given != NULL)
      return jk_fail(info, JWTKIT_ERR_UNSUPPORTED, "pkcs11", "this keyring makes its keys in its PKCS#11 token");
    return new_token_key(kr, x, alg, st, now, out, info);
  }
  jwtkit_key *key = given ? jwtkit_key_ref(given) : NULL;
  jwtkit_err rc = JWTKIT_OK;
  if (key == NULL) {
    unsigned bits = jwtkit_alg_kty(alg) == JWTKIT_KTY_RSA ? kr->t.rsa_bits : 0;
    rc = jwtkit_key_generate(&key, alg, bits, info);
    if (rc != JWTKIT_OK) return rc;
  }
  char tp[44];
  char *pem = NULL, *jwk = NULL;
  size_t pl = 0, jl = 0;
  kr_key *k = NULL;
  if ((rc = jwtkit_key_thumbprint(key, tp)) != JWTKIT_OK) goto fail;
  const char *kid = jwtkit_key_kid(key) ? jwtkit_key_kid(key) : tp;
  for (size_t i = 0; i < kr->n; i++)
    if (strcmp(kr->keys[i].kid, kid) == 0 || strcmp(kr->keys[i].file, tp) == 0) {
      rc = jk_fail(info, JWTKIT_ERR_INVALID_ARG, "kid", "the keyring already holds key %s", kid);
      goto fail;
    }
  /* the stored copies carry the kid */
  jwtkit_key *pub = NULL;
  if ((rc = jwtkit_key_to_jwk(key, 0, &jwk, &jl)) != JWTKIT_OK) goto fail;
  if ((rc = jwtkit_key_from_jwk(&pub, alg, jwk, jl, info)) != JWTKIT_OK) goto fail;
  jk_free(jwk);
  jwk = NULL;
  if ((rc = jwtkit_key_set_kid(pub, kid, strlen(kid))) != JWTKIT_OK || (rc = jwtkit_key_to_jwk(pub, 0, &jwk, &jl)) != JWTKIT_OK) {
    jwtkit_key_free(pub);
    goto fail;
  }
  if ((rc = jwtkit_key_to_pem(key, 1, kr->passphrase, &pem, &pl)) != JWTKIT_OK) {
    jwtkit_key_free(pub);
    goto fail;
  }
  if (kr->n >= KR_MAX_KEYS) {
    jwtkit_key_free(pub);
    rc = jk_fail(info, JWTKIT_ERR_TOO_LARGE, NULL, "a keyring holds at most %u keys", KR_MAX_KEYS);
    goto fail;
  }
  if ((rc = kr->store->ops->put_key(kr->store, tp, pem, pl, info)) != JWTKIT_OK) {
    jwtkit_key_free(pub);
    goto fail;
  }
  if (x->ncreated < KR_MAX_KEYS) snprintf(x->created[x->ncreated++], sizeof x->created[0], "%s", tp);
  k = jk_kr_push_key(kr);
  if (k == NULL || (k->kid = jk_strdup(kid)) == NULL) {
    jwtkit_key_free(pub);
    if (k) kr->n--;
    rc = jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
    goto fail;
  }
  /* the private key handle: a fresh import so it can take the kid */
  jwtkit_key *priv = NULL;
  rc = jwtkit_key_from_pem(&priv, alg, pem, pl, kr->passphrase, info);
  if (rc == JWTKIT_OK) rc = jwtkit_key_set_kid(priv, kid, strlen(kid));
  if (rc != JWTKIT_OK) {
    jwtkit_key_free(priv);
    jwtkit_key_free(pub);
    jk_kr_key_clear(k);
    kr->n--;
    goto fail;
  }
  snprintf(k->file, sizeof k->file, "%s", tp);
  k->alg = alg;
  k->state = st;
  k->created = k->published = now;
  k->activated = st == JWTKIT_KEY_ACTIVE ? now : 0;
  k->jwk = jwk;
  jwk = NULL;
  k->pub = pub;
  k->priv = priv;
  *out = k;
fail:
  if (pem) jk_free_secret(pem, pl);
  jk_free(jwk);
  jwtkit_key_free(key);
  return rc;
}

/* Drop the oldest retired entries beyond the history we keep. */
static void prune(jwtkit_keyring *kr) {
  size_t retired = 0;
  for (size_t i = 0; i < kr->n; i++)
    if (kr->keys[i].state >= JWTKIT_KEY_RETIRED) retired++;
  while (retired > KR_KEEP_RETIRED) {
    size_t oldest = kr->n;
    /* an entry whose private key is still to be destroyed in the token stays */
    for (size_t i = 0; i < kr->n; i++)
      if (kr->keys[i].state >= JWTKIT_KEY_RETIRED && !kr->keys[i].token &&
          (oldest == kr->n || kr->keys[i].retired < kr->keys[oldest].retired))
        oldest = i;
    if (oldest == kr->n) break;
    jk_kr_key_clear(&kr->keys[oldest]);
    memmove(&kr->keys[oldest], &kr->keys[oldest + 1], (kr->n - oldest - 1) * sizeof(kr_key));
    kr->n--;
    retired--;
  }
}

void jk_kr_retire(jk_kr_txn *x, kr_key *k, jwtkit_key_state st, int64_t now) {
  k->state = st;
  k->retired = now;
  jwtkit_key_free(k->priv);
  k->priv = NULL;
  k->held = 0;
  if (k->file[0] != '\0' && x->ndoomed < KR_MAX_KEYS)
    snprintf(x->doomed[x->ndoomed++], sizeof x->doomed[0], "%s", k->file);
}

/* Persist: metadata first (atomic), then destroy doomed private files. */
static jwtkit_err commit(jwtkit_keyring *kr, jk_kr_txn *x, jwtkit_errinfo *info) {
  if (!x->changed) return JWTKIT_OK;
  prune(kr);
  kr->generation++;
  size_t len = 0;
  char *json = NULL;
  jwtkit_err rc = jk_kr_meta_json(kr, &json, &len);
  if (rc != JWTKIT_OK) return jk_fail(info, rc, NULL, rc == JWTKIT_ERR_NOMEM ? NULL : "authenticating the keyring document failed");
  rc = kr->store->ops->save_meta(kr->store, json, len, info);
  if (rc != JWTKIT_OK) {
    jk_free(json);
    return rc;
  }
  jk_free(kr->meta); /* the in-memory state is what was just stored */
  kr->meta = json;
  kr->meta_len = len;
  if (kr->auth.mode == JK_DOCAUTH_KEK) kr->auth.verified_by = 0; /* just authenticated under the first KEK */
  for (size_t i = 0; i < x->ndoomed; i++) kr->store->ops->del_key(kr->store, x->doomed[i]);
  /* orphans: private files no live key references (a crash between writing
   * a key file and the metadata leaves one) */
  char *names = NULL;
  size_t count = 0;
  if (kr->store->ops->list_keys(kr->store, &names, &count) == JWTKIT_OK) {
    const char *nm = names;
    for (size_t i = 0; i < count; i++, nm += strlen(nm) + 1) {
      int live = 0;
      for (size_t j = 0; j < kr->n; j++)
        if (kr->keys[j].state <= JWTKIT_KEY_RETIRING && strcmp(kr->keys[j].file, nm) == 0) live = 1;
      if (!live) kr->store->ops->del_key(kr->store, nm);
    }
    jk_free(names);
  }
  return JWTKIT_OK;
}

/* Clock values the planning arithmetic can take (see meta_parse). */
int jk_kr_time_ok(int64_t now) { return now >= 0 && now <= 95617584000LL; }

jk_kr_txn *jk_kr_txn_new(jwtkit_keyring_report_fn report, void *ctx) {
  jk_kr_txn *x = jk_calloc(1, sizeof *x);
  if (x == NULL) return NULL;
  x->report = report;
  x->ctx = ctx;
  jk_buf_init(&x->lines);
  return x;
}

/* End a change begun under the exclusive lock: commit it (rc OK) or undo
 * what the store cannot roll back (private files this change wrote), then
 * unlock; report the actions only once they are stored.  Returns the
 * final outcome.  Frees x. */
jwtkit_err jk_kr_txn_end(jwtkit_keyring *kr, jk_kr_txn *x, jwtkit_err rc, jwtkit_errinfo *info) {
  if (rc == JWTKIT_OK) rc = commit(kr, x, info);
  if (rc != JWTKIT_OK) {
    for (size_t i = 0; i < x->ncreated; i++) (void)kr->store->ops->del_key(kr->store, x->created[i]);
    /* token keys of a change that was certainly not stored; a failing
     * COMMIT below may yet have stored it, so those stay (never published
     * unless stored, and harmless in the token) */
    for (size_t i = 0; i < x->ncreated_token; i++) {
      jwtkit_errinfo ignore;
      (void)jk_kr_token_destroy(kr, x->created_token[i], &ignore);
    }
  }
  /* a database backend commits here: only now is the change stored */
  jwtkit_err urc = kr->store->ops->unlock(kr->store, rc == JWTKIT_OK, info);
  if (rc == JWTKIT_OK) rc = urc;
  /* only a committed generation counts as seen: a failed commit's is reused */
  if (rc == JWTKIT_OK && kr->generation > kr->seen) kr->seen = kr->generation;
  if (rc == JWTKIT_OK && x->report != NULL && !x->lines.oom) {
    for (size_t o = 0; o < x->lines.len; o += strlen(x->lines.p + o) + 1) x->report(x->ctx, x->lines.p + o);
  }
  jk_buf_free(&x->lines);
  jk_free(x);
  return rc;
}

/* lock, reload the latest state, apply, commit, unlock */
jwtkit_err jk_kr_mutate(jwtkit_keyring *kr, jk_kr_mutation_fn fn, void *arg, int64_t now, jwtkit_keyring_report_fn report,
                         void *ctx, jwtkit_errinfo *info) {
  if (!jk_kr_time_ok(now)) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, "clock out of range");
  if (kr->review)
    return jk_fail(info, JWTKIT_ERR_STATE, NULL, "a keyring opened for review can only be listed and trusted");
  if (kr->public_only)
    return jk_fail(info, JWTKIT_ERR_STATE, NULL, "a keyring opened without its private keys can only be listed and published");
  jwtkit_err rc = kr->store->ops->lock(kr->store, 1, info);
  if (rc != JWTKIT_OK) return rc;
  jk_kr_txn *x = jk_kr_txn_new(report, ctx);
  if (x == NULL) {
    (void)kr->store->ops->unlock(kr->store, 0, info);
    return jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
  }
  rc = jk_kr_reload(kr, info);
  if (rc == JWTKIT_OK && kr->pkcs11 != NULL) jk_kr_token_sweep(kr, x);
  if (rc == JWTKIT_OK) rc = fn(kr, x, arg, now, info);
  rc = jk_kr_txn_end(kr, x, rc, info);
  if (rc != JWTKIT_OK) {
    jwtkit_errinfo ignore;
    jk_free(kr->meta); /* the in-memory keys were changed: force a real reload */
    kr->meta = NULL;
    /* back to what is stored (if the store is unreachable the handle is
     * left empty and the next mutation or open tries again) */
    if (kr->store->ops->lock(kr->store, 0, &ignore) == JWTKIT_OK) {
      (void)jk_kr_reload(kr, &ignore);
      (void)kr->store->ops->unlock(kr->store, 0, &ignore);
    } else {
      jk_kr_keys_clear(kr);
    }
  }
  return rc;
}

