/* One verifier and one signer shared by many threads at once.  Run under
 * ASan (and TSan by `make test-tsan`): a race in the context pool or the
 * shared objects shows up here.  More threads than pool slots, so the
 * fallback path runs too. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define THREADS 12
#define ITERS 150
#define NOW 1700000000

static jwtkit_verifier *g_v;
static jwtkit_signer *g_signers[4];
static char *g_tokens[4];
static char *g_forged[4];
static atomic_int g_errors;

static void *worker(void *arg) {
  unsigned id = (unsigned)(uintptr_t)arg;
  for (int i = 0; i < ITERS; i++) {
    int w = (int)((id + (unsigned)i) % 4);
    jwtkit_claims *c = NULL;
    if (jwtkit_verify_at(g_v, g_tokens[w], strlen(g_tokens[w]), NOW, &c, NULL) != JWTKIT_OK) g_errors++;
    const char *sub = NULL;
    if (c == NULL || jwtkit_claims_get_string(c, "sub", &sub, NULL) != JWTKIT_OK || strcmp(sub, "shared") != 0)
      g_errors++;
    jwtkit_claims_free(c);
    if (jwtkit_verify_at(g_v, g_forged[w], strlen(g_forged[w]), NOW, NULL, NULL) != JWTKIT_ERR_BAD_SIGNATURE)
      g_errors++;
    /* sign concurrently with the shared signer and verify the result */
    char claims[64], tok[1024];
    size_t tl = sizeof tok;
    snprintf(claims, sizeof claims, "{\"sub\":\"t%u-%d\",\"exp\":1700000600}", id, i);
    if (jwtkit_signer_sign_buf(g_signers[w], claims, strlen(claims), tok, &tl, NULL) != JWTKIT_OK ||
        jwtkit_verify_at(g_v, tok, tl, NOW, NULL, NULL) != JWTKIT_OK)
      g_errors++;
  }
  return NULL;
}

static void test_shared_verifier(void **state) {
  (void)state;
  static const jwtkit_alg algs[4] = {JWTKIT_ALG_HS256, JWTKIT_ALG_ES256, JWTKIT_ALG_RS256, JWTKIT_ALG_EDDSA};
  static const char *kids[4] = {"h", "e", "r", "d"};
  jwtkit_policy *p = jwtkit_policy_new();
  jwtkit_key *keys[4];
  for (int i = 0; i < 4; i++) {
    assert_int_equal(jwtkit_key_generate(&keys[i], algs[i], 0, NULL), JWTKIT_OK);
    assert_int_equal(jwtkit_key_set_kid(keys[i], kids[i], 1), JWTKIT_OK);
    assert_int_equal(jwtkit_policy_allow_alg(p, algs[i]), JWTKIT_OK);
    assert_int_equal(jwtkit_policy_add_key(p, keys[i]), JWTKIT_OK);
    assert_int_equal(jwtkit_signer_new(&g_signers[i], keys[i], NULL, NULL), JWTKIT_OK);
    size_t n;
    const char *claims = "{\"sub\":\"shared\",\"exp\":1700000600}";
    assert_int_equal(jwtkit_signer_sign(g_signers[i], claims, strlen(claims), &g_tokens[i], &n, NULL), JWTKIT_OK);
    g_forged[i] = strdup(g_tokens[i]);
    char *dot = strrchr(g_forged[i], '.');
    dot[1] = dot[1] == 'A' ? 'B' : 'A'; /* first signature char: always canonical */
  }
  assert_int_equal(jwtkit_verifier_new(&g_v, p, NULL), JWTKIT_OK);
  jwtkit_policy_free(p);
  for (int i = 0; i < 4; i++) jwtkit_key_free(keys[i]); /* verifier and signers hold references */
  pthread_t t[THREADS];
  for (uintptr_t i = 0; i < THREADS; i++) assert_int_equal(pthread_create(&t[i], NULL, worker, (void *)i), 0);
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  assert_int_equal(atomic_load(&g_errors), 0);
  for (int i = 0; i < 4; i++) {
    jwtkit_signer_free(g_signers[i]);
    jwtkit_free(g_tokens[i]);
    free(g_forged[i]);
  }
  jwtkit_verifier_free(g_v);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_shared_verifier)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
