/* The keyring: the lifecycle rules (keyring_internal.h lists the parts). */
#include "jwtkit/keyring.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "codec/json.h"
#include "core/alloc.h"
#include "core/error_internal.h"
#include "jwtkit/jwks.h"
#include "jwtkit/pkcs11.h"
#include "keyring_internal.h"
#include "common/attr.h"

static const char *const k_state_names[] = {NULL, "pending", "active", "retiring", "retired", "revoked"};

const char *jwtkit_key_state_name(jwtkit_key_state s) {
  return (s >= JWTKIT_KEY_PENDING && s <= JWTKIT_KEY_REVOKED) ? k_state_names[s] : "unknown";
}

jwtkit_key_state jk_kr_state_from(const char *s, size_t n) {
  for (int i = 1; i <= 5; i++)
    if (strlen(k_state_names[i]) == n && memcmp(k_state_names[i], s, n) == 0) return (jwtkit_key_state)i;
  return (jwtkit_key_state)0;
}

void jwtkit_keyring_timing_default(jwtkit_keyring_timing *t) {
  t->max_age = 300;
  t->token_ttl = 900;
  t->leeway = 60;
  t->rotate_every = 30 * 86400;
  t->publish_ahead = 0;
  t->rsa_bits = 2048;
}

static int64_t publish_ahead(const jwtkit_keyring_timing *t) {
  if (t->publish_ahead > 0) return t->publish_ahead;
  int64_t a = 2 * t->max_age, b = t->rotate_every / 30;
  return a > b ? a : b;
}

jwtkit_err jk_kr_check_timing(const jwtkit_keyring_timing *t, jwtkit_errinfo *info) {
  const int64_t year = 366 * 86400LL;
  if (t->max_age < 0 || t->max_age > 86400 || t->token_ttl <= 0 || t->token_ttl > year || t->leeway < 0 ||
      t->leeway > 300 || t->rotate_every <= 0 || t->rotate_every > 10 * year || t->publish_ahead < 0 ||
      t->publish_ahead >= t->rotate_every)
    return jk_fail(info, JWTKIT_ERR_INVALID_ARG, "timing",
                   "timing out of range (max_age 0..86400, ttl 1..1y, leeway 0..300, rotation 1s..10y, "
                   "publish_ahead < rotation)");
  int64_t ahead = publish_ahead(t);
  if (ahead < t->max_age || ahead >= t->rotate_every)
    return ahead < t->max_age
               ? jk_fail(info, JWTKIT_ERR_INVALID_ARG, "timing",
                         "publish_ahead (%llds) must be at least max_age (%llds): a key is published max_age before it "
                         "signs", (long long)ahead, (long long)t->max_age)
               : jk_fail(info, JWTKIT_ERR_INVALID_ARG, "timing",
                         "rotate_every (%llds) must be more than %s (%llds), so the next key is published within the "
                         "period", (long long)t->rotate_every,
                         t->publish_ahead > 0 ? "publish_ahead" : "max(2 x max_age, rotate_every/30)", (long long)ahead);
  if (t->rsa_bits != 0 && (t->rsa_bits < 2048 || t->rsa_bits > 16384))
    return jk_fail(info, JWTKIT_ERR_INVALID_ARG, "rsa_bits", "RSA size 2048..16384");
  return JWTKIT_OK;
}

/* ------------------------------------------------------------ memory */

void jk_kr_key_clear(kr_key *k) {
  jk_free(k->kid);
  jk_free(k->jwk);
  jwtkit_key_free(k->pub);
  jwtkit_key_free(k->priv);
  memset(k, 0, sizeof *k);
}

void jk_kr_keys_clear(jwtkit_keyring *kr) {
  for (size_t i = 0; i < kr->n; i++) jk_kr_key_clear(&kr->keys[i]);
  jk_free(kr->keys);
  kr->keys = NULL;
  kr->n = 0;
}

void jwtkit_keyring_free(jwtkit_keyring *kr) {
  if (kr == NULL) return;
  jk_kr_keys_clear(kr);
  jk_free(kr->meta);
  jk_free(kr->pkcs11);
  if (kr->store) kr->store->ops->close(kr->store);
  if (kr->passphrase) jk_free_secret(kr->passphrase, strlen(kr->passphrase));
  jk_docauth_wipe(&kr->auth);
  jk_free(kr);
}

kr_key *jk_kr_push_key(jwtkit_keyring *kr) {
  if (kr->n >= KR_MAX_KEYS) return NULL;
  kr_key *nk = jk_realloc(kr->keys, (kr->n + 1) * sizeof *nk);
  if (nk == NULL) return NULL;
  kr->keys = nk;
  memset(&kr->keys[kr->n], 0, sizeof(kr_key));
  return &kr->keys[kr->n++];
}

/* ------------------------------------------------------------ timing */

kr_key *jk_kr_find_state(jwtkit_keyring *kr, jwtkit_alg alg, jwtkit_key_state st) {
  kr_key *best = NULL;
  for (size_t i = 0; i < kr->n; i++) {
    kr_key *k = &kr->keys[i];
    if (k->alg == alg && k->state == st && (best == NULL || k->published < best->published)) best = k;
  }
  return best;
}

static int64_t planned_end(const jwtkit_keyring *kr, const kr_key *active) {
  return active->activated + kr->t.rotate_every;
}

static int64_t retire_after(const jwtkit_keyring *kr, int64_t stop_signing) {
  return stop_signing + kr->t.token_ttl + kr->t.leeway + kr->t.max_age;
}

void jk_kr_entry_of(const jwtkit_keyring *kr, const kr_key *k, jwtkit_keyring_entry *e) {
  memset(e, 0, sizeof *e);
  e->kid = k->kid;
  e->alg = k->alg;
  e->state = k->state;
  e->created = k->created;
  e->published = k->published;
  e->activated = k->activated;
  e->retiring = k->retiring;
  e->retired = k->retired;
  e->verify_only = k->verify_only;
  e->held = k->held;
  e->in_token = k->token;
  switch (k->state) {
    case JWTKIT_KEY_PENDING: {
      int64_t at = k->published + kr->t.max_age;
      const kr_key *a = jk_kr_find_state(JK_UNCONST(kr), k->alg, JWTKIT_KEY_ACTIVE);
      if (a != NULL && planned_end(kr, a) > at) at = planned_end(kr, a);
      e->planned_activation = at;
      e->planned_retiring = at + kr->t.rotate_every;
      e->planned_retirement = retire_after(kr, e->planned_retiring);
      break;
    }
    case JWTKIT_KEY_ACTIVE:
      e->planned_retiring = planned_end(kr, k);
      e->planned_retirement = retire_after(kr, e->planned_retiring);
      break;
    case JWTKIT_KEY_RETIRING:
      e->planned_retirement = k->held ? 0 : retire_after(kr, k->retiring);
      break;
    default:
      break;
  }
}

static jwtkit_err do_add(jwtkit_keyring *kr, jk_kr_txn *x, void *arg, int64_t now, jwtkit_errinfo *info) {
  jwtkit_key *key = arg;
  kr_key *k = NULL;
  jwtkit_err rc = jk_kr_new_key(kr, x, jwtkit_key_alg(key), key, JWTKIT_KEY_PENDING, now, &k, info);
  if (rc != JWTKIT_OK) return rc;
  char when[32];
  jwtkit_keyring_entry e;
  jk_kr_entry_of(kr, k, &e);
  jk_kr_fmt_time(e.planned_activation, when);
  jk_kr_say(x, "added pending key %s (%s): published now, can sign from %s", k->kid, jwtkit_alg_name(k->alg), when);
  return JWTKIT_OK;
}

jwtkit_err jwtkit_keyring_add(jwtkit_keyring *kr, jwtkit_key *private_key, int64_t now, jwtkit_keyring_report_fn report,
                              void *ctx, jwtkit_errinfo *info) {
  if (kr == NULL || private_key == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, NULL);
  jwtkit_kty kty = jwtkit_key_kty(private_key);
  if (!jwtkit_key_can_sign(private_key) || kty == JWTKIT_KTY_OCT)
    return jk_fail(info, JWTKIT_ERR_INVALID_KEY, NULL, "a keyring takes RSA, EC or OKP private keys");
  if (kr->pkcs11 != NULL)
    return jk_fail(info, JWTKIT_ERR_UNSUPPORTED, "pkcs11",
                   "this keyring makes its keys in its PKCS#11 token and takes no private key from elsewhere "
                   "(add --verify-only publishes a public key; rotate makes the next key)");
  if (jwtkit_key_is_pkcs11(private_key))
    return jk_fail(info, JWTKIT_ERR_UNSUPPORTED, "pkcs11",
                   "a token key joins a keyring only by being made there: keyring init --pkcs11");
  return jk_kr_mutate(kr, do_add, private_key, now, report, ctx, info);
}

/* A fresh key, made where the keyring keeps its keys, as pending. */
static jwtkit_err do_add_generated(jwtkit_keyring *kr, jk_kr_txn *x, void *arg, int64_t now, jwtkit_errinfo *info) {
  jwtkit_alg alg = *(jwtkit_alg *)arg;
  kr_key *k = NULL;
  jwtkit_err rc = jk_kr_new_key(kr, x, alg, NULL, JWTKIT_KEY_PENDING, now, &k, info);
  if (rc != JWTKIT_OK) return rc;
  char when[32];
  jwtkit_keyring_entry e;
  jk_kr_entry_of(kr, k, &e);
  jk_kr_fmt_time(e.planned_activation, when);
  jk_kr_say(x, "added pending key %s (%s)%s: published now, can sign from %s", k->kid, jwtkit_alg_name(k->alg),
            k->token ? ", made in the token" : "", when);
  return JWTKIT_OK;
}

jwtkit_err jwtkit_keyring_add_generated(jwtkit_keyring *kr, jwtkit_alg alg, int64_t now,
                                        jwtkit_keyring_report_fn report, void *ctx, jwtkit_errinfo *info) {
  if (kr == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, NULL);
  jwtkit_kty kty = jwtkit_alg_kty(alg);
  if (kty == 0 || kty == JWTKIT_KTY_OCT)
    return jk_fail(info, JWTKIT_ERR_INVALID_ARG, "alg", "a keyring holds RS*, PS*, ES* and EdDSA keys only");
  return jk_kr_mutate(kr, do_add_generated, &alg, now, report, ctx, info);
}

const char *jwtkit_keyring_pkcs11(const jwtkit_keyring *kr) { return kr != NULL ? kr->pkcs11 : NULL; }

/* A public key of another keyring, published and held. */
static jwtkit_err do_add_verify_only(jwtkit_keyring *kr, jk_kr_txn *x, void *arg, int64_t now, jwtkit_errinfo *info) {
  jwtkit_key *key = arg;
  jwtkit_alg alg = jwtkit_key_alg(key);
  char tp[44];
  char *jwk = NULL;
  size_t jl = 0;
  jwtkit_key *pub = NULL;
  jwtkit_err rc = jwtkit_key_thumbprint(key, tp);
  if (rc != JWTKIT_OK) return jk_fail(info, rc, NULL, NULL);
  const char *kid = jwtkit_key_kid(key) ? jwtkit_key_kid(key) : tp;
  for (size_t i = 0; i < kr->n; i++)
    if (strcmp(kr->keys[i].kid, kid) == 0)
      return jk_fail(info, JWTKIT_ERR_STATE, "kid", "the keyring already holds key %s (%s)", kid,
                     jwtkit_key_state_name(kr->keys[i].state));
  /* the public half only, with its kid */
  if ((rc = jwtkit_key_to_jwk(key, 0, &jwk, &jl)) == JWTKIT_OK && (rc = jwtkit_key_from_jwk(&pub, alg, jwk, jl, info)) == JWTKIT_OK &&
      (rc = jwtkit_key_set_kid(pub, kid, strlen(kid))) == JWTKIT_OK) {
    jk_free(jwk);
    jwk = NULL;
    rc = jwtkit_key_to_jwk(pub, 0, &jwk, &jl);
  }
  kr_key *k = NULL;
  if (rc == JWTKIT_OK && kr->n >= KR_MAX_KEYS) rc = jk_fail(info, JWTKIT_ERR_TOO_LARGE, NULL, "a keyring holds at most %u keys", KR_MAX_KEYS);
  if (rc == JWTKIT_OK && ((k = jk_kr_push_key(kr)) == NULL || (k->kid = jk_strdup(kid)) == NULL)) {
    if (k != NULL) kr->n--;
    rc = jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
  }
  if (rc != JWTKIT_OK) {
    jk_free(jwk);
    jwtkit_key_free(pub);
    return rc == JWTKIT_ERR_NOMEM ? jk_fail(info, rc, NULL, NULL) : rc;
  }
  k->file[0] = '\0'; /* no private part here */
  k->alg = alg;
  k->state = JWTKIT_KEY_RETIRING;
  k->created = k->published = k->retiring = now;
  k->jwk = jwk;
  k->pub = pub;
  k->verify_only = k->held = 1;
  jk_kr_say(x, "imported verify-only key %s (%s): published now, never signs here; held until `release`", k->kid,
            jwtkit_alg_name(alg));
  return JWTKIT_OK;
}

jwtkit_err jwtkit_keyring_add_verify_only(jwtkit_keyring *kr, jwtkit_key *key, int64_t now,
                                          jwtkit_keyring_report_fn report, void *ctx, jwtkit_errinfo *info) {
  if (kr == NULL || key == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, NULL);
  jwtkit_kty kty = jwtkit_key_kty(key);
  if (kty == JWTKIT_KTY_OCT || kty == 0)
    return jk_fail(info, JWTKIT_ERR_INVALID_KEY, NULL, "a keyring publishes RSA, EC or OKP public keys only");
  return jk_kr_mutate(kr, do_add_verify_only, key, now, report, ctx, info);
}

static jwtkit_err do_release(jwtkit_keyring *kr, jk_kr_txn *x, void *arg, int64_t now, jwtkit_errinfo *info) {
  (void)arg;
  (void)info;
  char when[32];
  int any = 0;
  for (size_t i = 0; i < kr->n; i++) {
    kr_key *k = &kr->keys[i];
    if (!k->held) continue;
    k->held = 0;
    k->retiring = now;
    any = 1;
    jk_kr_fmt_time(retire_after(kr, now), when);
    jk_kr_say(x, "released verify-only key %s (%s): it leaves the JWKS at the first rotation after %s", k->kid,
              jwtkit_alg_name(k->alg), when);
  }
  if (!any) jk_kr_note(x, "no held verify-only key: nothing to release");
  return JWTKIT_OK;
}

jwtkit_err jwtkit_keyring_release(jwtkit_keyring *kr, int64_t now, jwtkit_keyring_report_fn report, void *ctx,
                                  jwtkit_errinfo *info) {
  if (kr == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, NULL);
  return jk_kr_mutate(kr, do_release, NULL, now, report, ctx, info);
}

static jwtkit_err rotate_alg(jwtkit_keyring *kr, jk_kr_txn *x, jwtkit_alg alg, int64_t now, int force, jwtkit_errinfo *info) {
  char when[32];
  kr_key *a = jk_kr_find_state(kr, alg, JWTKIT_KEY_ACTIVE);
  kr_key *p = jk_kr_find_state(kr, alg, JWTKIT_KEY_PENDING);
  int due = a == NULL || force || now >= planned_end(kr, a);
  if (p == NULL && (due || now >= planned_end(kr, a) - publish_ahead(&kr->t))) {
    jwtkit_err rc = jk_kr_new_key(kr, x, alg, NULL, JWTKIT_KEY_PENDING, now, &p, info);
    if (rc != JWTKIT_OK) return rc;
    a = jk_kr_find_state(kr, alg, JWTKIT_KEY_ACTIVE); /* the array may have moved */
    jwtkit_keyring_entry e;
    jk_kr_entry_of(kr, p, &e);
    jk_kr_fmt_time(e.planned_activation, when);
    jk_kr_say(x, "published pending key %s (%s); it can sign from %s", p->kid, jwtkit_alg_name(alg), when);
  }
  if (p != NULL && due) {
    if (now >= p->published + kr->t.max_age) {
      p->state = JWTKIT_KEY_ACTIVE;
      p->activated = now;
      jk_kr_say(x, "activated key %s (%s): published for %lld s >= max-age %lld s", p->kid, jwtkit_alg_name(alg),
          (long long)(now - p->published), (long long)kr->t.max_age);
      if (a != NULL) {
        a->state = JWTKIT_KEY_RETIRING;
        a->retiring = now;
        jwtkit_key_free(a->priv);
        a->priv = NULL;
        jk_kr_fmt_time(retire_after(kr, now), when);
        jk_kr_say(x, "key %s (%s) stopped signing and is retiring; it stays published until %s", a->kid, jwtkit_alg_name(alg),
            when);
      }
    } else if (force) {
      jk_kr_fmt_time(p->published + kr->t.max_age, when);
      jk_kr_note(x, "waiting: pending key %s (%s) cannot sign before %s (max-age)", p->kid, jwtkit_alg_name(alg), when);
    }
  }
  return JWTKIT_OK;
}

static jwtkit_err do_rotate(jwtkit_keyring *kr, jk_kr_txn *x, void *arg, int64_t now, jwtkit_errinfo *info) {
  int force = *(int *)arg;
  char when[32];
  for (size_t i = 0; i < kr->n; i++) {
    kr_key *k = &kr->keys[i];
    if (k->state == JWTKIT_KEY_RETIRING && !k->held && now >= retire_after(kr, k->retiring)) {
      if (k->token) {
        /* a retiring key is never loaded: destroyed before the change is
         * stored, so a retired token key is never left in the token; a
         * token that refuses keeps it retiring (published) until it agrees */
        jwtkit_errinfo e = {0};
        if (jk_kr_token_destroy(kr, k->kid, &e) != JWTKIT_OK) {
          jk_kr_note(x, "key %s (%s) stays published: its private key could not be destroyed in the token now (%s)",
                     k->kid, jwtkit_alg_name(k->alg), e.msg);
          continue;
        }
        k->token = 0;
      }
      jk_kr_retire(x, k, JWTKIT_KEY_RETIRED, now);
      jk_kr_fmt_time(k->retiring, when);
      jk_kr_say(x, "retired key %s (%s): no token it signed (last at %s) can still be valid; private key destroyed", k->kid,
          jwtkit_alg_name(k->alg), when);
    }
  }
  /* every algorithm that has a live key */
  jwtkit_alg seen[JWTKIT_ALG_COUNT] = {0};
  for (size_t i = 0; i < kr->n; i++) {
    kr_key *k = &kr->keys[i];
    if ((k->state == JWTKIT_KEY_ACTIVE || k->state == JWTKIT_KEY_PENDING) && !seen[k->alg]) {
      seen[k->alg] = k->alg;
    }
  }
  for (int a = 1; a < JWTKIT_ALG_COUNT; a++) {
    if (!seen[a]) continue;
    jwtkit_err rc = rotate_alg(kr, x, (jwtkit_alg)a, now, force, info);
    if (rc != JWTKIT_OK) return rc;
  }
  return JWTKIT_OK;
}

jwtkit_err jwtkit_keyring_rotate(jwtkit_keyring *kr, int64_t now, int force, jwtkit_keyring_report_fn report, void *ctx,
                                 jwtkit_errinfo *info) {
  if (kr == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, NULL);
  return jk_kr_mutate(kr, do_rotate, &force, now, report, ctx, info);
}

static jwtkit_err do_revoke(jwtkit_keyring *kr, jk_kr_txn *x, void *arg, int64_t now, jwtkit_errinfo *info) {
  const char *kid = arg;
  kr_key *k = NULL;
  for (size_t i = 0; i < kr->n; i++)
    if (strcmp(kr->keys[i].kid, kid) == 0) k = &kr->keys[i];
  if (k == NULL) return jk_fail(info, JWTKIT_ERR_NOT_FOUND, "kid", "no key %s in the keyring", kid);
  if (k->state >= JWTKIT_KEY_RETIRED) return jk_fail(info, JWTKIT_ERR_STATE, "kid", "key %s is already %s", kid, jwtkit_key_state_name(k->state));
  jwtkit_alg alg = k->alg;
  int was_active = k->state == JWTKIT_KEY_ACTIVE;
  jk_kr_retire(x, k, JWTKIT_KEY_REVOKED, now);
  jk_kr_say(x, "revoked key %s (%s): removed from the JWKS now, private key destroyed", kid, jwtkit_alg_name(alg));
  if (!was_active) return JWTKIT_OK;
  kr_key *p = jk_kr_find_state(kr, alg, JWTKIT_KEY_PENDING);
  if (p == NULL) {
    jwtkit_err rc = jk_kr_new_key(kr, x, alg, NULL, JWTKIT_KEY_PENDING, now, &p, info);
    if (rc != JWTKIT_OK) return rc;
  }
  p->state = JWTKIT_KEY_ACTIVE;
  p->activated = now;
  jk_kr_say(x, "activated key %s (%s) at once (emergency: verifiers holding an older JWKS refetch on the unknown kid)", p->kid,
      jwtkit_alg_name(alg));
  return JWTKIT_OK;
}

static jwtkit_err do_nothing(jwtkit_keyring *kr, jk_kr_txn *x, void *arg, int64_t now, jwtkit_errinfo *info) {
  (void)kr, (void)x, (void)arg, (void)now, (void)info;
  return JWTKIT_OK;
}

jwtkit_err jwtkit_keyring_revoke(jwtkit_keyring *kr, const char *kid, int64_t now, jwtkit_keyring_report_fn report,
                                 void *ctx, jwtkit_errinfo *info) {
  if (kr == NULL || kid == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, NULL);
  jwtkit_err rc = jk_kr_mutate(kr, do_revoke, JK_UNCONST(kid), now, report, ctx, info);
  /* a revoked token key is destroyed once the revocation is stored (it may
   * have been pending or active: loaded, and needed if the change were not
   * stored), by the sweep at the start of a change: this one, or later */
  if (rc == JWTKIT_OK && kr->pkcs11 != NULL) {
    jwtkit_errinfo ignore;
    (void)jk_kr_mutate(kr, do_nothing, NULL, now, report, ctx, &ignore);
  }
  return rc;
}

jwtkit_err jwtkit_keyring_jwks(const jwtkit_keyring *kr, char **json, size_t *len) {
  if (kr == NULL || json == NULL) return JWTKIT_ERR_INVALID_ARG;
  *json = NULL;
  jk_buf b;
  jk_buf_init(&b);
  jk_buf_puts(&b, "{\"keys\":[");
  int first = 1;
  for (size_t i = 0; i < kr->n; i++) {
    const kr_key *k = &kr->keys[i];
    if (k->state > JWTKIT_KEY_RETIRING) continue;
    /* from the key the stored JWK was validated into (public, its kid,
     * its algorithm), exported again: never the stored text */
    char *jwk = NULL;
    size_t jl = 0;
    jwtkit_err rc = jwtkit_key_to_jwk(k->pub, 0, &jwk, &jl);
    if (rc != JWTKIT_OK) {
      jk_buf_free(&b);
      return rc;
    }
    if (!first) jk_buf_putc(&b, ',');
    jk_buf_put(&b, jwk, jl);
    jk_free(jwk);
    first = 0;
  }
  jk_buf_puts(&b, "]}");
  *json = jk_buf_take(&b, len);
  return *json ? JWTKIT_OK : JWTKIT_ERR_NOMEM;
}

jwtkit_err jwtkit_keyring_signing_key(const jwtkit_keyring *kr, jwtkit_alg alg, int64_t now, jwtkit_key **key,
                                      int64_t *max_exp) {
  if (kr == NULL || key == NULL) return JWTKIT_ERR_INVALID_ARG;
  *key = NULL;
  if (!jk_kr_time_ok(now)) return JWTKIT_ERR_INVALID_ARG;
  kr_key *a = jk_kr_find_state(JK_UNCONST(kr), alg, JWTKIT_KEY_ACTIVE);
  if (a == NULL || a->priv == NULL) return JWTKIT_ERR_NOT_FOUND;
  int64_t limit = planned_end(kr, a) + kr->t.token_ttl;
  int64_t exp = now + kr->t.token_ttl;
  if (exp > limit) exp = limit;
  if (exp <= now) return JWTKIT_ERR_STATE;
  *key = a->priv;
  if (max_exp != NULL) *max_exp = exp;
  return JWTKIT_OK;
}

size_t jwtkit_keyring_count(const jwtkit_keyring *kr) { return kr ? kr->n : 0; }

jwtkit_err jwtkit_keyring_get(const jwtkit_keyring *kr, size_t i, jwtkit_keyring_entry *e) {
  if (kr == NULL || e == NULL) return JWTKIT_ERR_INVALID_ARG;
  if (i >= kr->n) return JWTKIT_ERR_NOT_FOUND;
  jk_kr_entry_of(kr, &kr->keys[i], e);
  return JWTKIT_OK;
}

void jwtkit_keyring_get_timing(const jwtkit_keyring *kr, jwtkit_keyring_timing *t) {
  if (kr != NULL && t != NULL) *t = kr->t;
}

uint64_t jwtkit_keyring_generation(const jwtkit_keyring *kr) { return kr ? kr->generation : 0; }

static void dur(int64_t s, char out[24]) {
  if (s % 86400 == 0)
    snprintf(out, 24, "%lldd", (long long)(s / 86400));
  else if (s % 3600 == 0)
    snprintf(out, 24, "%lldh", (long long)(s / 3600));
  else if (s % 60 == 0)
    snprintf(out, 24, "%lldm", (long long)(s / 60));
  else
    snprintf(out, 24, "%llds", (long long)s);
}

jwtkit_err jwtkit_keyring_plan(const jwtkit_keyring *kr, int64_t now, char **text, size_t *len) {
  if (kr == NULL || text == NULL) return JWTKIT_ERR_INVALID_ARG;
  jk_buf b;
  jk_buf_init(&b);
  char line[512], t0[32], t1[32], t2[32], t3[32], d1[24], d2[24], d3[24], d4[24], d5[24];
  jk_kr_fmt_time(now, t0);
  dur(kr->t.max_age, d1);
  dur(kr->t.token_ttl, d2);
  dur(kr->t.leeway, d3);
  dur(kr->t.rotate_every, d4);
  dur(publish_ahead(&kr->t), d5);
  snprintf(line, sizeof line,
           "keyring plan at %s (generation %llu)\n"
           "rules: JWKS max-age %s, token TTL %s, leeway %s, rotation every %s, next key published %s ahead\n\n",
           t0, (unsigned long long)kr->generation, d1, d2, d3, d4, d5);
  jk_buf_puts(&b, line);
  snprintf(line, sizeof line, "%-44s %-6s %-9s %-21s %-22s %-22s %s\n", "KID", "ALG", "STATE", "PUBLISHED", "SIGNS FROM",
           "SIGNS UNTIL", "LEAVES JWKS");
  jk_buf_puts(&b, line);
  for (size_t i = 0; i < kr->n; i++) {
    jwtkit_keyring_entry e;
    jk_kr_entry_of(kr, &kr->keys[i], &e);
    const char *mark_from = "", *mark_until = "", *mark_leave = "";
    jk_kr_fmt_time(e.published, t0);
    switch (e.state) {
      case JWTKIT_KEY_PENDING:
        jk_kr_fmt_time(e.planned_activation, t1);
        jk_kr_fmt_time(e.planned_retiring, t2);
        jk_kr_fmt_time(e.planned_retirement, t3);
        mark_from = mark_until = mark_leave = "~";
        break;
      case JWTKIT_KEY_ACTIVE:
        jk_kr_fmt_time(e.activated, t1);
        jk_kr_fmt_time(e.planned_retiring, t2);
        jk_kr_fmt_time(e.planned_retirement, t3);
        mark_until = mark_leave = "~";
        break;
      case JWTKIT_KEY_RETIRING:
        if (e.activated) jk_kr_fmt_time(e.activated, t1); else snprintf(t1, sizeof t1, "-");
        if (e.verify_only) snprintf(t1, sizeof t1, "verify-only");
        jk_kr_fmt_time(e.retiring, t2);
        if (e.held) {
          snprintf(t2, sizeof t2, "-");
          snprintf(t3, sizeof t3, "held (release)");
        } else {
          jk_kr_fmt_time(e.planned_retirement, t3);
          mark_leave = "~";
        }
        break;
      default:
        if (e.activated) jk_kr_fmt_time(e.activated, t1); else snprintf(t1, sizeof t1, "-");
        if (e.retiring) jk_kr_fmt_time(e.retiring, t2); else if (e.state == JWTKIT_KEY_REVOKED) jk_kr_fmt_time(e.retired, t2); else snprintf(t2, sizeof t2, "-");
        jk_kr_fmt_time(e.retired, t3);
        break;
    }
    char c1[40], c2[40], c3[40];
    snprintf(c1, sizeof c1, "%s%s", mark_from, t1);
    snprintf(c2, sizeof c2, "%s%s", mark_until, t2);
    snprintf(c3, sizeof c3, "%s%s", mark_leave, t3);
    snprintf(line, sizeof line, "%-44s %-6s %-9s %-21s %-22s %-22s %s\n", e.kid, jwtkit_alg_name(e.alg),
             jwtkit_key_state_name(e.state), t0, c1, c2, c3);
    jk_buf_puts(&b, line);
  }
  jk_buf_puts(&b, "\n~ planned: the earliest the rules allow; a late rotation moves them later,\n"
                  "  `rotate --force` and `revoke` sooner.\n");
  for (int a = 1; a < JWTKIT_ALG_COUNT; a++) {
    kr_key *act = jk_kr_find_state(JK_UNCONST(kr), (jwtkit_alg)a, JWTKIT_KEY_ACTIVE);
    if (act == NULL) continue;
    if (jk_kr_find_state(JK_UNCONST(kr), (jwtkit_alg)a, JWTKIT_KEY_PENDING) == NULL) {
      jk_kr_fmt_time(planned_end(kr, act) - publish_ahead(&kr->t), t1);
      snprintf(line, sizeof line, "next: a new %s key will be published at %s\n", jwtkit_alg_name((jwtkit_alg)a), t1);
      jk_buf_puts(&b, line);
    }
  }
  *text = jk_buf_take(&b, len);
  return *text ? JWTKIT_OK : JWTKIT_ERR_NOMEM;
}
