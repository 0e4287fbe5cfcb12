/* Verification policies (every setter sticky) and the immutable verifiers
 * built from them. */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "codec/b64url.h"
#include "codec/json.h"
#include "core/alloc.h"
#include "core/error_internal.h"
#include "crypto/key_internal.h"
#include "jwt_internal.h"
#include "jwtkit/jwt.h"
#include "verify_internal.h"

static jwtkit_err note(jwtkit_policy *p, jwtkit_err rc, const char *fn) {
  if (rc != JWTKIT_OK && p != NULL && p->err == JWTKIT_OK) {
    p->err = rc;
    p->err_fn = fn;
  }
  return rc;
}


/* ------------------------------------------------------------ helpers */

static void strlist_free(strlist *l) {
  for (size_t i = 0; i < l->n; i++) jk_free(l->v[i]);
  jk_free(l->v);
  l->v = NULL;
  l->n = 0;
}

static jwtkit_err strlist_add(strlist *l, const char *s) {
  if (s == NULL) return JWTKIT_ERR_INVALID_ARG;
  size_t len = strlen(s);
  if (len == 0 || !jk_utf8_valid((const unsigned char *)s, len)) return JWTKIT_ERR_INVALID_ARG;
  if (l->n >= JK_MAX_LIST) return JWTKIT_ERR_TOO_LARGE;
  for (size_t i = 0; i < l->n; i++)
    if (strcmp(l->v[i], s) == 0) return JWTKIT_OK;
  char **nv = jk_realloc(l->v, (l->n + 1) * sizeof *nv);
  if (nv == NULL) return JWTKIT_ERR_NOMEM;
  l->v = nv;
  if ((l->v[l->n] = jk_strdup(s)) == NULL) return JWTKIT_ERR_NOMEM;
  l->n++;
  return JWTKIT_OK;
}

static jwtkit_err strlist_copy(strlist *dst, const strlist *src) {
  dst->v = NULL;
  dst->n = 0;
  for (size_t i = 0; i < src->n; i++) {
    jwtkit_err rc = strlist_add(dst, src->v[i]);
    if (rc != JWTKIT_OK) return rc;
  }
  return JWTKIT_OK;
}

static jwtkit_err set_str(char **slot, const char *s) {
  char *c = NULL;
  if (s != NULL) {
    size_t len = strlen(s);
    if (!jk_utf8_valid((const unsigned char *)s, len)) return JWTKIT_ERR_INVALID_ARG;
    if ((c = jk_strdup(s)) == NULL) return JWTKIT_ERR_NOMEM;
  }
  jk_free(*slot);
  *slot = c;
  return JWTKIT_OK;
}

static void rules_free(rules *r) {
  for (size_t i = 0; i < r->nkeys; i++) jwtkit_key_free(r->keys[i]);
  jk_free(r->keys);
  strlist_free(&r->iss);
  strlist_free(&r->aud);
  strlist_free(&r->req);
  jk_free(r->typ);
  jk_free(r->sub);
  memset(r, 0, sizeof *r);
}

static int64_t default_clock(void *ctx) {
  (void)ctx;
  return (int64_t)time(NULL);
}


/* ------------------------------------------------------------- policy */

jwtkit_policy *jwtkit_policy_new(void) {
  jwtkit_policy *p = jk_calloc(1, sizeof *p);
  if (p == NULL) return NULL;
  p->r.leeway = JWTKIT_DEFAULT_LEEWAY;
  p->r.require_exp = 1;
  p->r.clock = default_clock;
  p->r.max_token = JWTKIT_DEFAULT_MAX_TOKEN;
  p->r.max_header = JWTKIT_DEFAULT_MAX_HEADER;
  p->r.max_header_values = JWTKIT_DEFAULT_MAX_HEADER_VALUES;
  p->r.kidless = JWTKIT_KIDLESS_SINGLE;
  return p;
}

void jwtkit_policy_free(jwtkit_policy *p) {
  if (p == NULL) return;
  rules_free(&p->r);
  jk_free(p);
}

static jwtkit_err pol_allow_alg(jwtkit_policy *p, jwtkit_alg alg) {
  if (p == NULL || jk_alg_get(alg) == NULL) return JWTKIT_ERR_INVALID_ARG;
  p->r.allowed |= 1u << alg;
  return JWTKIT_OK;
}

static jwtkit_err pol_add_key(jwtkit_policy *p, jwtkit_key *key) {
  if (p == NULL || key == NULL) return JWTKIT_ERR_INVALID_ARG;
  if (p->r.nkeys >= JK_MAX_KEYS) return JWTKIT_ERR_TOO_LARGE;
  jwtkit_key **nk = jk_realloc(p->r.keys, (p->r.nkeys + 1) * sizeof *nk);
  if (nk == NULL) return JWTKIT_ERR_NOMEM;
  p->r.keys = nk;
  p->r.keys[p->r.nkeys++] = jwtkit_key_ref(key);
  return JWTKIT_OK;
}

static jwtkit_err pol_add_issuer(jwtkit_policy *p, const char *iss) {
  return p ? strlist_add(&p->r.iss, iss) : JWTKIT_ERR_INVALID_ARG;
}

static jwtkit_err pol_add_audience(jwtkit_policy *p, const char *aud) {
  return p ? strlist_add(&p->r.aud, aud) : JWTKIT_ERR_INVALID_ARG;
}

static jwtkit_err pol_ignore_audience(jwtkit_policy *p) {
  if (p == NULL) return JWTKIT_ERR_INVALID_ARG;
  p->r.ignore_aud = 1;
  return JWTKIT_OK;
}

static jwtkit_err pol_set_typ(jwtkit_policy *p, const char *typ) {
  return p ? set_str(&p->r.typ, typ) : JWTKIT_ERR_INVALID_ARG;
}

static jwtkit_err pol_set_subject(jwtkit_policy *p, const char *sub) {
  return p ? set_str(&p->r.sub, sub) : JWTKIT_ERR_INVALID_ARG;
}

static jwtkit_err pol_require_claim(jwtkit_policy *p, const char *name) {
  return p ? strlist_add(&p->r.req, name) : JWTKIT_ERR_INVALID_ARG;
}

static jwtkit_err pol_set_leeway(jwtkit_policy *p, int64_t seconds) {
  if (p == NULL || seconds < 0 || seconds > JWTKIT_MAX_LEEWAY) return JWTKIT_ERR_INVALID_ARG;
  p->r.leeway = seconds;
  return JWTKIT_OK;
}

static jwtkit_err pol_set_require_exp(jwtkit_policy *p, int required) {
  if (p == NULL) return JWTKIT_ERR_INVALID_ARG;
  p->r.require_exp = required != 0;
  return JWTKIT_OK;
}

static jwtkit_err pol_set_max_age(jwtkit_policy *p, int64_t seconds) {
  if (p == NULL || seconds < 0 || seconds > JK_TIME_BOUND) return JWTKIT_ERR_INVALID_ARG;
  p->r.max_age = seconds;
  return JWTKIT_OK;
}

static jwtkit_err pol_set_clock(jwtkit_policy *p, jwtkit_clock_fn fn, void *ctx) {
  if (p == NULL) return JWTKIT_ERR_INVALID_ARG;
  p->r.clock = fn ? fn : default_clock;
  p->r.clock_ctx = fn ? ctx : NULL;
  return JWTKIT_OK;
}

static jwtkit_err pol_set_max_token(jwtkit_policy *p, size_t bytes) {
  if (p == NULL || bytes < 16 || bytes > (64u << 20)) return JWTKIT_ERR_INVALID_ARG;
  p->r.max_token = bytes;
  return JWTKIT_OK;
}

static jwtkit_err pol_set_max_header(jwtkit_policy *p, size_t bytes, size_t values) {
  if (p == NULL || bytes < 16 || bytes > JWTKIT_MAX_HEADER_LIMIT || values < 8 || values > JWTKIT_MAX_HEADER_VALUES_LIMIT)
    return JWTKIT_ERR_INVALID_ARG;
  p->r.max_header = bytes;
  p->r.max_header_values = (uint32_t)values;
  return JWTKIT_OK;
}

static jwtkit_err pol_set_kidless(jwtkit_policy *p, jwtkit_kidless mode) {
  if (p == NULL || (mode != JWTKIT_KIDLESS_SINGLE && mode != JWTKIT_KIDLESS_REJECT)) return JWTKIT_ERR_INVALID_ARG;
  p->r.kidless = mode;
  return JWTKIT_OK;
}


/* Public setters: every failure is also kept in the policy (sticky). */
jwtkit_err jwtkit_policy_allow_alg(jwtkit_policy *p, jwtkit_alg alg) {
  return note(p, pol_allow_alg(p, alg), "jwtkit_policy_allow_alg");
}
jwtkit_err jwtkit_policy_add_key(jwtkit_policy *p, jwtkit_key *key) {
  return note(p, pol_add_key(p, key), "jwtkit_policy_add_key");
}
jwtkit_err jwtkit_policy_add_issuer(jwtkit_policy *p, const char *iss) {
  return note(p, pol_add_issuer(p, iss), "jwtkit_policy_add_issuer");
}
jwtkit_err jwtkit_policy_add_audience(jwtkit_policy *p, const char *aud) {
  return note(p, pol_add_audience(p, aud), "jwtkit_policy_add_audience");
}
jwtkit_err jwtkit_policy_ignore_audience(jwtkit_policy *p) {
  return note(p, pol_ignore_audience(p), "jwtkit_policy_ignore_audience");
}
jwtkit_err jwtkit_policy_set_typ(jwtkit_policy *p, const char *typ) {
  return note(p, pol_set_typ(p, typ), "jwtkit_policy_set_typ");
}
jwtkit_err jwtkit_policy_set_subject(jwtkit_policy *p, const char *sub) {
  return note(p, pol_set_subject(p, sub), "jwtkit_policy_set_subject");
}
jwtkit_err jwtkit_policy_require_claim(jwtkit_policy *p, const char *name) {
  return note(p, pol_require_claim(p, name), "jwtkit_policy_require_claim");
}
jwtkit_err jwtkit_policy_set_leeway(jwtkit_policy *p, int64_t seconds) {
  return note(p, pol_set_leeway(p, seconds), "jwtkit_policy_set_leeway");
}
jwtkit_err jwtkit_policy_set_require_exp(jwtkit_policy *p, int required) {
  return note(p, pol_set_require_exp(p, required), "jwtkit_policy_set_require_exp");
}
jwtkit_err jwtkit_policy_set_max_age(jwtkit_policy *p, int64_t seconds) {
  return note(p, pol_set_max_age(p, seconds), "jwtkit_policy_set_max_age");
}
jwtkit_err jwtkit_policy_set_clock(jwtkit_policy *p, jwtkit_clock_fn fn, void *ctx) {
  return note(p, pol_set_clock(p, fn, ctx), "jwtkit_policy_set_clock");
}
jwtkit_err jwtkit_policy_set_max_token(jwtkit_policy *p, size_t bytes) {
  return note(p, pol_set_max_token(p, bytes), "jwtkit_policy_set_max_token");
}
jwtkit_err jwtkit_policy_set_max_header(jwtkit_policy *p, size_t bytes, size_t values) {
  return note(p, pol_set_max_header(p, bytes, values), "jwtkit_policy_set_max_header");
}
jwtkit_err jwtkit_policy_set_kidless(jwtkit_policy *p, jwtkit_kidless mode) {
  return note(p, pol_set_kidless(p, mode), "jwtkit_policy_set_kidless");
}

/* ----------------------------------------------------------- verifier */

jwtkit_err jwtkit_verifier_new(jwtkit_verifier **out, const jwtkit_policy *p, jwtkit_errinfo *info) {
  if (out == NULL || p == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, NULL);
  *out = NULL;
  if (p->err != JWTKIT_OK)
    return jk_fail(info, p->err, NULL, "%s failed earlier (%s); fix that call: no verifier is built from an incomplete policy",
                   p->err_fn, jwtkit_strerror(p->err));
  const rules *r = &p->r;
  if (r->allowed == 0)
    return jk_fail(info, JWTKIT_ERR_INVALID_ARG, "alg", "the policy allows no algorithm; name them explicitly");
  if (r->nkeys == 0) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, "key", "the policy has no key");
  for (size_t i = 0; i < r->nkeys; i++) {
    const jwtkit_key *k = r->keys[i];
    if (!(r->allowed & (1u << k->ai->id)))
      return jk_fail(info, JWTKIT_ERR_INVALID_ARG, "alg", "key %zu is bound to %s, which the policy does not allow",
                     i, k->ai->name);
    for (size_t j = 0; j < i && k->kid != NULL; j++)
      if (r->keys[j]->kid != NULL && r->keys[j]->kid_len == k->kid_len &&
          memcmp(r->keys[j]->kid, k->kid, k->kid_len) == 0)
        return jk_fail(info, JWTKIT_ERR_INVALID_ARG, "kid", "two keys share the kid \"%s\"", k->kid);
  }
  jwtkit_verifier *v = jk_calloc(1, sizeof *v);
  if (v == NULL) return jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
  atomic_init(&v->refs, 1);
  rules *d = &v->r;
  *d = *r;
  d->keys = NULL;
  d->nkeys = 0;
  d->iss = d->aud = d->req = (strlist){NULL, 0};
  d->typ = d->sub = NULL;
  jwtkit_err rc = JWTKIT_OK;
  if ((d->keys = jk_calloc(r->nkeys, sizeof *d->keys)) == NULL) rc = JWTKIT_ERR_NOMEM;
  for (size_t i = 0; rc == JWTKIT_OK && i < r->nkeys; i++) d->keys[d->nkeys++] = jwtkit_key_ref(r->keys[i]);
  if (rc == JWTKIT_OK) rc = strlist_copy(&d->iss, &r->iss);
  if (rc == JWTKIT_OK) rc = strlist_copy(&d->aud, &r->aud);
  if (rc == JWTKIT_OK) rc = strlist_copy(&d->req, &r->req);
  if (rc == JWTKIT_OK) rc = set_str(&d->typ, r->typ);
  if (rc == JWTKIT_OK) rc = set_str(&d->sub, r->sub);
  if (rc != JWTKIT_OK) {
    rules_free(d);
    jk_free(v);
    return jk_fail(info, rc, NULL, NULL);
  }
  *out = v;
  return JWTKIT_OK;
}

jwtkit_verifier *jwtkit_verifier_ref(jwtkit_verifier *v) {
  if (v != NULL) atomic_fetch_add_explicit(&v->refs, 1, memory_order_relaxed);
  return v;
}

void jwtkit_verifier_free(jwtkit_verifier *v) {
  if (v == NULL) return;
  if (atomic_fetch_sub_explicit(&v->refs, 1, memory_order_acq_rel) != 1) return;
  rules_free(&v->r);
  jk_free(v);
}

