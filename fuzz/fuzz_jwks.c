/*
 * jwks: jwtkit_jwks_parse, with rsa_default UNSPEC and RS256.
 *
 * Properties when a set parses: every entry of "keys" is either in the set
 * or reported to the skip callback (exactly once); no key in it is an HMAC
 * key; kids are unique and jwtkit_jwks_find returns the key; the set exports
 * with jwtkit_jwks_to_json to strict JSON that parses again (same
 * rsa_default) to a set of the same size with equal keys, algorithms and
 * kids, in order; a non-empty set builds a verifier.
 */
#include <string.h>

#include "codec/json.h"
#include "common.h"
#include "core/alloc.h"

typedef struct skips {
  size_t calls;
  size_t last;
  int order_ok;
} skips;

static void on_skip(void *ctx, size_t index, const jwtkit_errinfo *why) {
  skips *s = ctx;
  JKF_CHECK(why != NULL && jkf_errinfo_sane(why), "skip reason");
  if (s->calls > 0 && index <= s->last) s->order_ok = 0;
  s->last = index;
  s->calls++;
}

/* Entries of the "keys" array, or -1. */
static long count_entries(const char *json, size_t len) {
  jk_jdoc d;
  if (jk_json_parse_alloc(&d, json, len, 1, NULL) != JWTKIT_OK) return -1;
  long n = -1;
  int ka = jk_json_get(&d, 0, "keys", 4);
  if (ka >= 0 && d.nodes[ka].type == JK_J_ARRAY) {
    n = 0;
    for (uint32_t i = (uint32_t)ka + 1; i < d.nodes[ka].end; i = d.nodes[i].end) n++;
  }
  jk_free(d.nodes);
  return n;
}

static void one(const char *json, size_t size, jwtkit_alg rsa_default) {
  skips sk = {0, 0, 1};
  jwtkit_jwks *set = (jwtkit_jwks *)&set;
  jwtkit_errinfo info;
  memset(&info, 0x5a, sizeof info);
  jwtkit_err rc = jwtkit_jwks_parse(&set, json, size, rsa_default, on_skip, &sk, &info);
  if (rc != JWTKIT_OK) {
    JKF_CHECK(set == NULL, "failed parse left a set");
    JKF_CHECK(jkf_errinfo_sane(&info), "errinfo not NUL-terminated");
    return;
  }
  size_t n = jwtkit_jwks_count(set);
  long entries = count_entries(json, size);
  JKF_CHECK(entries >= 0, "a JWK Set parsed without a keys array");
  JKF_CHECK(sk.order_ok, "skip callback indexes out of order");
  JKF_CHECK(n + sk.calls == (size_t)entries, "%zu keys + %zu skipped != %ld entries", n, sk.calls, entries);
  for (size_t i = 0; i < n; i++) {
    jwtkit_key *k = jwtkit_jwks_get(set, i);
    JKF_CHECK(k != NULL, "get(%zu)", i);
    JKF_CHECK(jwtkit_key_kty(k) != JWTKIT_KTY_OCT, "a JWK Set introduced an HMAC key");
    const char *kid = jwtkit_key_kid(k);
    if (kid != NULL) JKF_CHECK(jwtkit_jwks_find(set, kid, strlen(kid)) == k, "find(%s)", kid);
  }
  JKF_CHECK(jwtkit_jwks_get(set, n) == NULL, "get past the end");

  char *out = NULL;
  size_t ol = 0;
  rc = jwtkit_jwks_to_json(set, &out, &ol);
  JKF_CHECK(rc == JWTKIT_OK, "to_json: %s", jwtkit_errname(rc));
  JKF_CHECK(strlen(out) == ol && jkf_json_ok(out, ol, 1), "exported set is not strict JSON");
  jwtkit_jwks *again = NULL;
  rc = jwtkit_jwks_parse(&again, out, ol, rsa_default, NULL, NULL, &info);
  JKF_CHECK(rc == JWTKIT_OK, "exported set does not parse: %s (%s)", jwtkit_errname(rc), info.msg);
  JKF_CHECK(jwtkit_jwks_count(again) == n, "exported set has %zu keys, not %zu", jwtkit_jwks_count(again), n);
  for (size_t i = 0; i < n; i++) {
    jwtkit_key *a = jwtkit_jwks_get(set, i), *b = jwtkit_jwks_get(again, i);
    JKF_CHECK(jwtkit_key_equal_public(a, b) && jwtkit_key_alg(a) == jwtkit_key_alg(b), "key %zu changed", i);
    const char *ka = jwtkit_key_kid(a), *kb = jwtkit_key_kid(b);
    JKF_CHECK((ka == NULL) == (kb == NULL) && (ka == NULL || strcmp(ka, kb) == 0), "kid %zu changed", i);
  }
  jwtkit_jwks_free(again);
  jwtkit_free(out);

  if (n > 0) {
    jwtkit_policy *p = jwtkit_policy_new();
    JKF_CHECK(p != NULL, "policy_new");
    for (int a = 1; a < JWTKIT_ALG_COUNT; a++) JKF_CHECK(jwtkit_policy_allow_alg(p, (jwtkit_alg)a) == JWTKIT_OK, "allow");
    JKF_CHECK(jwtkit_policy_add_jwks(p, set) == JWTKIT_OK, "add_jwks");
    jwtkit_verifier *v = NULL;
    rc = jwtkit_verifier_new(&v, p, &info);
    JKF_CHECK(rc == JWTKIT_OK, "a parsed set does not build a verifier: %s (%s)", jwtkit_errname(rc), info.msg);
    jwtkit_verifier_free(v);
    jwtkit_policy_free(p);
  }
  jwtkit_jwks_free(set);
}

int jkf_jwks(const uint8_t *data, size_t size) {
  const char *json = (const char *)data;
  one(json, size, JWTKIT_ALG_UNSPEC);
  one(json, size, JWTKIT_ALG_RS256);
  return 0;
}

JKF_ENTRY(jkf_jwks)
