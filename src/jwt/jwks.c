/* JWK Sets: import (skipping what is not ours), lookup, public export. */
#include <string.h>

#include "codec/json.h"
#include "core/alloc.h"
#include "core/error_internal.h"
#include "crypto/key_internal.h"
#include "jwtkit/jwks.h"

struct jwtkit_jwks {
  jwtkit_key **keys;
  size_t n;
};

jwtkit_jwks *jwtkit_jwks_new(void) { return jk_calloc(1, sizeof(jwtkit_jwks)); }

void jwtkit_jwks_free(jwtkit_jwks *set) {
  if (set == NULL) return;
  for (size_t i = 0; i < set->n; i++) jwtkit_key_free(set->keys[i]);
  jk_free(set->keys);
  jk_free(set);
}

jwtkit_key *jwtkit_jwks_find(const jwtkit_jwks *set, const char *kid, size_t kid_len) {
  if (set == NULL || kid == NULL) return NULL;
  for (size_t i = 0; i < set->n; i++) {
    const jwtkit_key *k = set->keys[i];
    if (k->kid != NULL && k->kid_len == kid_len && memcmp(k->kid, kid, kid_len) == 0) return set->keys[i];
  }
  return NULL;
}

jwtkit_err jwtkit_jwks_add(jwtkit_jwks *set, jwtkit_key *key) {
  if (set == NULL || key == NULL) return JWTKIT_ERR_INVALID_ARG;
  if (set->n >= JWTKIT_MAX_JWKS_KEYS) return JWTKIT_ERR_TOO_LARGE;
  for (size_t i = 0; i < set->n; i++) {
    const jwtkit_key *k = set->keys[i];
    if (key->kid != NULL && k->kid != NULL) {
      if (k->kid_len == key->kid_len && memcmp(k->kid, key->kid, key->kid_len) == 0) return JWTKIT_ERR_INVALID_ARG;
    } else if (key->kid == NULL && k->kid == NULL && k->ai == key->ai) {
      return JWTKIT_ERR_INVALID_ARG; /* two kid-less keys for one alg */
    }
  }
  jwtkit_key **nk = jk_realloc(set->keys, (set->n + 1) * sizeof *nk);
  if (nk == NULL) return JWTKIT_ERR_NOMEM;
  set->keys = nk;
  set->keys[set->n++] = jwtkit_key_ref(key);
  return JWTKIT_OK;
}

size_t jwtkit_jwks_count(const jwtkit_jwks *set) { return set ? set->n : 0; }

jwtkit_key *jwtkit_jwks_get(const jwtkit_jwks *set, size_t i) {
  return (set != NULL && i < set->n) ? set->keys[i] : NULL;
}

jwtkit_err jwtkit_jwks_parse(jwtkit_jwks **out, const char *json, size_t len, jwtkit_alg rsa_default,
                             jwtkit_jwks_skip_fn skip, void *skip_ctx, jwtkit_errinfo *info) {
  if (out == NULL || json == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, NULL);
  *out = NULL;
  if (len > JWTKIT_MAX_JWKS_BYTES) return jk_fail(info, JWTKIT_ERR_TOO_LARGE, NULL, "JWK Set over 1 MiB");
  if (rsa_default != JWTKIT_ALG_UNSPEC && jwtkit_alg_kty(rsa_default) != JWTKIT_KTY_RSA)
    return jk_fail(info, JWTKIT_ERR_INVALID_ARG, "alg", "rsa_default must be an RS* or PS* algorithm");
  jk_jdoc d;
  jwtkit_err rc = jk_json_parse_alloc(&d, json, len, 1, info);
  if (rc != JWTKIT_OK) return rc;
  jwtkit_jwks *set = NULL;
  int ka = jk_json_get(&d, 0, "keys", 4);
  if (ka < 0 || d.nodes[ka].type != JK_J_ARRAY) {
    rc = jk_fail(info, JWTKIT_ERR_INVALID_KEY, "keys", "not a JWK Set: no \"keys\" array");
    goto done;
  }
  if ((set = jwtkit_jwks_new()) == NULL) {
    rc = jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
    goto done;
  }
  size_t index = 0;
  for (uint32_t i = (uint32_t)ka + 1; i < d.nodes[ka].end; i = d.nodes[i].end, index++) {
    const jk_jnode *nd = &d.nodes[i];
    jwtkit_errinfo why;
    jk_info_clear(&why);
    if (nd->type != JK_J_OBJECT) {
      jk_fail(&why, JWTKIT_ERR_INVALID_KEY, NULL, "entry is not a JSON object");
      if (skip) skip(skip_ctx, index, &why);
      continue;
    }
    if (index >= JWTKIT_MAX_JWKS_KEYS) {
      rc = jk_fail(info, JWTKIT_ERR_TOO_LARGE, "keys", "more than %u keys", JWTKIT_MAX_JWKS_KEYS);
      goto done;
    }
    jk_jdoc one = {json, len, d.nodes, d.count};
    int kty = jk_json_get(&one, i, "kty", 3);
    if (kty >= 0 && jk_json_str_eq(&one, (uint32_t)kty, "oct", 3)) {
      /* a set of public keys never introduces a secret: an "oct" key from a
       * fetched JWKS would let its publisher mint HMAC tokens */
      jk_fail(&why, JWTKIT_ERR_UNSUPPORTED, "kty", "secret (oct) keys are never taken from a JWK Set");
      if (skip) skip(skip_ctx, index, &why);
      continue;
    }
    jwtkit_key *k = NULL;
    jwtkit_err kr = jwtkit_key_from_jwk(&k, JWTKIT_ALG_UNSPEC, json + nd->off, nd->len, &why);
    if (kr == JWTKIT_ERR_INVALID_ARG && rsa_default != JWTKIT_ALG_UNSPEC) {
      /* RSA without alg: bind to the caller's choice */
      jk_info_clear(&why);
      kr = jwtkit_key_from_jwk(&k, rsa_default, json + nd->off, nd->len, &why);
    }
    if (kr == JWTKIT_ERR_NOMEM) {
      rc = jk_fail(info, kr, NULL, NULL);
      goto done;
    }
    if (kr != JWTKIT_OK) {
      if (kr == JWTKIT_ERR_INVALID_ARG)
        jk_fail(&why, JWTKIT_ERR_UNSUPPORTED, "alg", "RSA key without \"alg\" (RS* or PS* cannot be told apart)");
      if (skip) skip(skip_ctx, index, &why);
      continue;
    }
    kr = jwtkit_jwks_add(set, k);
    jwtkit_key_free(k);
    if (kr != JWTKIT_OK) {
      rc = kr == JWTKIT_ERR_INVALID_ARG
               ? jk_fail(info, JWTKIT_ERR_INVALID_KEY, "kid", "duplicate kid in the JWK Set (key %zu)", index)
               : jk_fail(info, kr, NULL, NULL);
      goto done;
    }
  }
done:
  jk_free(d.nodes);
  if (rc != JWTKIT_OK) {
    jwtkit_jwks_free(set);
    return rc;
  }
  *out = set;
  return JWTKIT_OK;
}

jwtkit_err jwtkit_jwks_to_json(const jwtkit_jwks *set, char **json, size_t *len) {
  if (set == NULL || json == NULL) return JWTKIT_ERR_INVALID_ARG;
  *json = NULL;
  jk_buf b;
  jk_buf_init(&b);
  jk_buf_puts(&b, "{\"keys\":[");
  int first = 1;
  for (size_t i = 0; i < set->n; i++) {
    if (set->keys[i]->kty == JWTKIT_KTY_OCT) continue; /* secrets are never published */
    char *jwk = NULL;
    size_t jl = 0;
    jwtkit_err rc = jwtkit_key_to_jwk(set->keys[i], 0, &jwk, &jl);
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

jwtkit_err jwtkit_policy_add_jwks(jwtkit_policy *p, const jwtkit_jwks *set) {
  if (p == NULL || set == NULL) return JWTKIT_ERR_INVALID_ARG;
  for (size_t i = 0; i < set->n; i++) {
    jwtkit_err rc = jwtkit_policy_add_key(p, set->keys[i]);
    if (rc != JWTKIT_OK) return rc;
  }
  return JWTKIT_OK;
}
