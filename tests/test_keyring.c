/* The keyring: storage, lifecycle rules with an injected clock, revoke,
 * import, and crash safety under SIGKILL. */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#define T0 1800000000LL

static char g_dir[256];

static int setup(void **state) {
  (void)state;
  snprintf(g_dir, sizeof g_dir, "/tmp/jwtkit-keyring-XXXXXX");
  if (mkdtemp(g_dir) == NULL) return -1;
  strncat(g_dir, "/ring", sizeof g_dir - strlen(g_dir) - 1);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char *slash = strrchr(g_dir, '/');
  *slash = '\0';
  tu_rm_rf(g_dir);
  return 0;
}

static jwtkit_keyring_timing test_timing(void) {
  jwtkit_keyring_timing t;
  jwtkit_keyring_timing_default(&t);
  t.max_age = 300;
  t.token_ttl = 600;
  t.leeway = 60;
  t.rotate_every = 3600;
  t.publish_ahead = 900;
  return t;
}

static int g_lines;
static char g_last[512];
static void report(void *ctx, const char *line) {
  (void)ctx;
  g_lines++;
  snprintf(g_last, sizeof g_last, "%s", line);
}

static jwtkit_verifier *jwks_verifier(const char *json) {
  jwtkit_jwks *set = NULL;
  jwtkit_errinfo ei;
  if (jwtkit_jwks_parse(&set, json, strlen(json), JWTKIT_ALG_UNSPEC, NULL, NULL, &ei) != JWTKIT_OK)
    fail_msg("jwks: %s", ei.msg);
  jwtkit_policy *p = jwtkit_policy_new();
  for (size_t i = 0; i < jwtkit_jwks_count(set); i++) assert_int_equal(jwtkit_policy_allow_alg(p, jwtkit_key_alg(jwtkit_jwks_get(set, i))), JWTKIT_OK);
  assert_int_equal(jwtkit_policy_add_jwks(p, set), JWTKIT_OK);
  assert_int_equal(jwtkit_policy_set_kidless(p, JWTKIT_KIDLESS_REJECT), JWTKIT_OK);
  jwtkit_verifier *v = NULL;
  if (jwtkit_verifier_new(&v, p, &ei) != JWTKIT_OK) fail_msg("verifier: %s", ei.msg);
  jwtkit_policy_free(p);
  jwtkit_jwks_free(set);
  return v;
}

static void test_init_open_and_files(void **state) {
  (void)state;
  jwtkit_alg algs[2] = {JWTKIT_ALG_ES256, JWTKIT_ALG_EDDSA};
  jwtkit_keyring_timing t = test_timing();
  jwtkit_errinfo ei;
  g_lines = 0;
  assert_int_equal(jwtkit_keyring_init(g_dir, algs, 2, &t, NULL, T0, report, NULL, &ei), JWTKIT_OK);
  assert_int_equal(g_lines, 2);
  /* a second init is refused; HMAC has no place in a keyring */
  assert_int_equal(jwtkit_keyring_init(g_dir, algs, 1, &t, NULL, T0, NULL, NULL, &ei), JWTKIT_ERR_STATE);
  jwtkit_alg hs = JWTKIT_ALG_HS256;
  char other[300];
  snprintf(other, sizeof other, "%s-hs", g_dir);
  assert_int_equal(jwtkit_keyring_init(other, &hs, 1, &t, NULL, T0, NULL, NULL, &ei), JWTKIT_ERR_INVALID_ARG);

  jwtkit_keyring *kr = NULL;
  assert_int_equal(jwtkit_keyring_open(&kr, g_dir, NULL, &ei), JWTKIT_OK);
  assert_int_equal(jwtkit_keyring_count(kr), 2);
  jwtkit_keyring_entry e;
  assert_int_equal(jwtkit_keyring_get(kr, 0, &e), JWTKIT_OK);
  assert_int_equal(e.state, JWTKIT_KEY_ACTIVE);
  assert_int_equal(e.planned_retiring, T0 + 3600);
  assert_int_equal(e.planned_retirement, T0 + 3600 + 600 + 60 + 300);
  /* the kid is the RFC 7638 thumbprint */
  jwtkit_key *sk = NULL;
  int64_t max_exp = 0;
  assert_int_equal(jwtkit_keyring_signing_key(kr, JWTKIT_ALG_ES256, T0 + 10, &sk, &max_exp), JWTKIT_OK);
  assert_int_equal(max_exp, T0 + 10 + 600);
  char tp[44];
  assert_int_equal(jwtkit_key_thumbprint(sk, tp), JWTKIT_OK);
  assert_string_equal(jwtkit_key_kid(sk), tp);
  jwtkit_key *none = NULL;
  assert_int_equal(jwtkit_keyring_signing_key(kr, JWTKIT_ALG_RS256, T0, &none, &max_exp), JWTKIT_ERR_NOT_FOUND);
  assert_null(none);
  /* private key files are 0600, the metadata holds no private member */
  char path[600];
  snprintf(path, sizeof path, "%s/keys/%s.pem", g_dir, tp);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  snprintf(path, sizeof path, "%s/keyring.json", g_dir);
  char *meta = tu_read_file(path, NULL);
  assert_non_null(meta);
  assert_null(strstr(meta, "\"d\":"));
  assert_null(strstr(meta, "PRIVATE"));
  free(meta);
  /* the JWKS is public only and verifies what the active key signs */
  char *jwks = NULL;
  size_t jl;
  assert_int_equal(jwtkit_keyring_jwks(kr, &jwks, &jl), JWTKIT_OK);
  assert_null(strstr(jwks, "\"d\":"));
  char *tok = NULL;
  size_t tl;
  assert_int_equal(jwtkit_sign(sk, NULL, "{\"exp\":1800000600}", 18, &tok, &tl, NULL), JWTKIT_OK);
  jwtkit_verifier *v = jwks_verifier(jwks);
  assert_int_equal(jwtkit_verify_at(v, tok, tl, T0 + 10, NULL, NULL), JWTKIT_OK);
  jwtkit_verifier_free(v);
  jwtkit_free(tok);
  jwtkit_free(jwks);
  char *plan = NULL;
  assert_int_equal(jwtkit_keyring_plan(kr, T0, &plan, NULL), JWTKIT_OK);
  assert_non_null(strstr(plan, "active"));
  assert_non_null(strstr(plan, "next: a new ES256 key will be published at 2027-01-15T08:45:00Z"));
  jwtkit_free(plan);
  jwtkit_keyring_free(kr);

  /* a private key file readable by the group is refused */
  snprintf(path, sizeof path, "%s/keys/%s.pem", g_dir, tp);
  assert_int_equal(chmod(path, 0640), 0);
  assert_int_equal(jwtkit_keyring_open(&kr, g_dir, NULL, &ei), JWTKIT_ERR_PERMISSION);
  assert_null(kr);
  assert_int_equal(chmod(path, 0600), 0);
  /* corrupt metadata is a clear error, not a crash */
  snprintf(path, sizeof path, "%s/keyring.json", g_dir);
  char *saved = tu_read_file(path, NULL);
  FILE *f = fopen(path, "w");
  fputs("{\"format\":\"jwtkit-keyring\",\"version\":1,", f);
  fclose(f);
  assert_int_equal(jwtkit_keyring_open(&kr, g_dir, NULL, &ei), JWTKIT_ERR_MALFORMED);
  f = fopen(path, "w");
  fputs(saved, f);
  fclose(f);
  free(saved);
  assert_int_equal(jwtkit_keyring_open(&kr, g_dir, NULL, &ei), JWTKIT_OK);
  jwtkit_keyring_free(kr);
}

static void test_passphrase(void **state) {
  (void)state;
  jwtkit_alg alg = JWTKIT_ALG_ES384;
  jwtkit_keyring_timing t = test_timing();
  jwtkit_errinfo ei;
  assert_int_equal(jwtkit_keyring_init(g_dir, &alg, 1, &t, "correct horse", T0, NULL, NULL, &ei), JWTKIT_OK);
  jwtkit_keyring *kr = NULL;
  assert_int_equal(jwtkit_keyring_open(&kr, g_dir, NULL, &ei), JWTKIT_ERR_PASSPHRASE);
  assert_int_equal(jwtkit_keyring_open(&kr, g_dir, "wrong", &ei), JWTKIT_ERR_PASSPHRASE);
  assert_int_equal(jwtkit_keyring_open(&kr, g_dir, "correct horse", &ei), JWTKIT_OK);
  /* the file on disk is encrypted PKCS#8 */
  DIR *d;
  char kd[600];
  snprintf(kd, sizeof kd, "%s/keys", g_dir);
  d = opendir(kd);
  struct dirent *de;
  int seen = 0;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.') continue;
    char p[900];
    snprintf(p, sizeof p, "%s/%s", kd, de->d_name);
    char *pem = tu_read_file(p, NULL);
    assert_non_null(strstr(pem, "BEGIN ENCRYPTED PRIVATE KEY"));
    free(pem);
    seen++;
  }
  closedir(d);
  assert_int_equal(seen, 1);
  jwtkit_keyring_free(kr);
}

/* The lifecycle, minute by minute over five rotation periods: every token
 * minted so far that is still valid verifies against the JWKS a verifier
 * may hold (fetched now, or up to max-age ago), retired keys are gone, and
 * no key signs before it was published for max-age. */
#define MINUTES (5 * 60 + 30)
static void test_lifecycle_simulation(void **state) {
  (void)state;
  jwtkit_alg algs[2] = {JWTKIT_ALG_ES256, JWTKIT_ALG_EDDSA};
  jwtkit_keyring_timing t = test_timing();
  jwtkit_errinfo ei;
  assert_int_equal(jwtkit_keyring_init(g_dir, algs, 2, &t, NULL, T0, NULL, NULL, &ei), JWTKIT_OK);
  jwtkit_keyring *kr = NULL;
  assert_int_equal(jwtkit_keyring_open(&kr, g_dir, NULL, &ei), JWTKIT_OK);
  static char *tokens[(MINUTES + 1) * 2];
  static int64_t exps[(MINUTES + 1) * 2];
  static char *snapshots[MINUTES + 1];
  size_t ntok = 0;
  int activations = 0, retirements = 0;
  for (int m = 0; m <= MINUTES; m++) {
    int64_t now = T0 + 60LL * m;
    assert_int_equal(jwtkit_keyring_rotate(kr, now, 0, NULL, NULL, &ei), JWTKIT_OK);
    /* invariants of the stored state */
    int active[JWTKIT_ALG_COUNT] = {0};
    for (size_t i = 0; i < jwtkit_keyring_count(kr); i++) {
      jwtkit_keyring_entry e;
      assert_int_equal(jwtkit_keyring_get(kr, i, &e), JWTKIT_OK);
      if (e.state == JWTKIT_KEY_ACTIVE) active[e.alg]++;
      if (e.activated != 0 && e.activated != T0) assert_true(e.activated - e.published >= t.max_age);
      if (e.state == JWTKIT_KEY_RETIRED) assert_true(e.retired >= e.retiring + t.token_ttl + t.leeway + t.max_age);
    }
    assert_int_equal(active[JWTKIT_ALG_ES256], 1);
    assert_int_equal(active[JWTKIT_ALG_EDDSA], 1);
    assert_int_equal(jwtkit_keyring_jwks(kr, &snapshots[m], NULL), JWTKIT_OK);
    /* retired keys are not in the JWKS */
    for (size_t i = 0; i < jwtkit_keyring_count(kr); i++) {
      jwtkit_keyring_entry e;
      jwtkit_keyring_get(kr, i, &e);
      char needle[80];
      snprintf(needle, sizeof needle, "\"kid\":\"%s\"", e.kid);
      int listed = strstr(snapshots[m], needle) != NULL;
      assert_int_equal(listed, e.state <= JWTKIT_KEY_RETIRING);
      if (m > 0 && e.activated == now) activations++;
      if (m > 0 && e.retired == now) retirements++;
    }
    /* mint one token per algorithm with the allowed lifetime */
    for (int a = 0; a < 2; a++) {
      jwtkit_key *sk = NULL;
      int64_t max_exp = 0;
      assert_int_equal(jwtkit_keyring_signing_key(kr, algs[a], now, &sk, &max_exp), JWTKIT_OK);
      assert_true(max_exp > now && max_exp <= now + t.token_ttl);
      char claims[64];
      snprintf(claims, sizeof claims, "{\"exp\":%lld,\"iat\":%lld}", (long long)max_exp, (long long)now);
      size_t tl;
      assert_int_equal(jwtkit_sign(sk, NULL, claims, strlen(claims), &tokens[ntok], &tl, NULL), JWTKIT_OK);
      exps[ntok++] = max_exp;
    }
    /* every token still valid verifies with the JWKS fetched now and with
     * the one fetched max-age ago */
    jwtkit_verifier *vnow = jwks_verifier(snapshots[m]);
    int old_m = m - (int)(t.max_age / 60);
    jwtkit_verifier *vold = old_m >= 0 ? jwks_verifier(snapshots[old_m]) : NULL;
    for (size_t i = 0; i < ntok; i++) {
      if (now >= exps[i] + t.leeway) continue;
      jwtkit_err r1 = jwtkit_verify_at(vnow, tokens[i], strlen(tokens[i]), now, NULL, &ei);
      if (r1 != JWTKIT_OK) fail_msg("minute %d token %zu (now JWKS): %s", m, i, ei.msg);
      /* a verifier holding the older set saw every key that signs now */
      if (vold != NULL) {
        jwtkit_err r2 = jwtkit_verify_at(vold, tokens[i], strlen(tokens[i]), now, NULL, &ei);
        if (r2 != JWTKIT_OK) fail_msg("minute %d token %zu (JWKS of minute %d): %s", m, i, old_m, ei.msg);
      }
    }
    jwtkit_verifier_free(vnow);
    jwtkit_verifier_free(vold);
  }
  /* five periods: four rotations per algorithm, with retirements */
  assert_true(activations >= 8);
  assert_true(retirements >= 6);
  for (size_t i = 0; i < ntok; i++) jwtkit_free(tokens[i]);
  for (int m = 0; m <= MINUTES; m++) jwtkit_free(snapshots[m]);
  char *plan = NULL;
  assert_int_equal(jwtkit_keyring_plan(kr, T0 + 60LL * MINUTES, &plan, NULL), JWTKIT_OK);
  assert_non_null(strstr(plan, "retired"));
  assert_non_null(strstr(plan, "active"));
  jwtkit_free(plan);
  /* retired keys' private files are gone */
  char kd[600];
  snprintf(kd, sizeof kd, "%s/keys", g_dir);
  DIR *d = opendir(kd);
  int files = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL)
    if (de->d_name[0] != '.') files++;
  closedir(d);
  int live = 0;
  for (size_t i = 0; i < jwtkit_keyring_count(kr); i++) {
    jwtkit_keyring_entry e;
    jwtkit_keyring_get(kr, i, &e);
    if (e.state <= JWTKIT_KEY_RETIRING) live++;
  }
  assert_int_equal(files, live);
  jwtkit_keyring_free(kr);
}

static void test_overdue_rotation_shortens_tokens(void **state) {
  (void)state;
  jwtkit_alg alg = JWTKIT_ALG_ES256;
  jwtkit_keyring_timing t = test_timing();
  assert_int_equal(jwtkit_keyring_init(g_dir, &alg, 1, &t, NULL, T0, NULL, NULL, NULL), JWTKIT_OK);
  jwtkit_keyring *kr = NULL;
  assert_int_equal(jwtkit_keyring_open(&kr, g_dir, NULL, NULL), JWTKIT_OK);
  jwtkit_key *sk;
  int64_t max_exp;
  /* nobody rotated: past the planned end, exp never passes end + ttl */
  assert_int_equal(jwtkit_keyring_signing_key(kr, alg, T0 + 3600 + 100, &sk, &max_exp), JWTKIT_OK);
  assert_int_equal(max_exp, T0 + 3600 + 600);
  assert_int_equal(jwtkit_keyring_signing_key(kr, alg, T0 + 3600 + 600, &sk, &max_exp), JWTKIT_ERR_STATE);
  /* rotate late: the new key is published now and signs only after max-age */
  g_lines = 0;
  assert_int_equal(jwtkit_keyring_rotate(kr, T0 + 3700, 0, report, NULL, NULL), JWTKIT_OK);
  assert_int_equal(g_lines, 1);
  assert_non_null(strstr(g_last, "published pending key"));
  assert_int_equal(jwtkit_keyring_rotate(kr, T0 + 3700 + 299, 0, report, NULL, NULL), JWTKIT_OK);
  assert_int_equal(g_lines, 1); /* nothing safe to do yet */
  assert_int_equal(jwtkit_keyring_rotate(kr, T0 + 3700 + 300, 0, report, NULL, NULL), JWTKIT_OK);
  assert_int_equal(g_lines, 3); /* activated + retiring */
  assert_int_equal(jwtkit_keyring_signing_key(kr, alg, T0 + 4000, &sk, &max_exp), JWTKIT_OK);
  assert_int_equal(max_exp, T0 + 4000 + 600);
  jwtkit_keyring_free(kr);
}

static void test_revoke_and_add(void **state) {
  (void)state;
  jwtkit_alg alg = JWTKIT_ALG_ES256;
  jwtkit_keyring_timing t = test_timing();
  assert_int_equal(jwtkit_keyring_init(g_dir, &alg, 1, &t, NULL, T0, NULL, NULL, NULL), JWTKIT_OK);
  jwtkit_keyring *kr = NULL;
  assert_int_equal(jwtkit_keyring_open(&kr, g_dir, NULL, NULL), JWTKIT_OK);
  jwtkit_keyring_entry e;
  jwtkit_keyring_get(kr, 0, &e);
  char old_kid[64];
  snprintf(old_kid, sizeof old_kid, "%s", e.kid);
  jwtkit_key *sk;
  int64_t max_exp;
  assert_int_equal(jwtkit_keyring_signing_key(kr, alg, T0 + 5, &sk, &max_exp), JWTKIT_OK);
  char *tok = NULL;
  size_t tl;
  assert_int_equal(jwtkit_sign(sk, NULL, "{\"exp\":1800000500}", 18, &tok, &tl, NULL), JWTKIT_OK);
  /* emergency revoke: gone from the JWKS at once, a new key signs */
  jwtkit_errinfo ei;
  assert_int_equal(jwtkit_keyring_revoke(kr, old_kid, T0 + 10, report, NULL, &ei), JWTKIT_OK);
  char *jwks = NULL;
  assert_int_equal(jwtkit_keyring_jwks(kr, &jwks, NULL), JWTKIT_OK);
  assert_null(strstr(jwks, old_kid));
  jwtkit_verifier *v = jwks_verifier(jwks);
  assert_int_equal(jwtkit_verify_at(v, tok, tl, T0 + 11, NULL, NULL), JWTKIT_ERR_UNKNOWN_KID);
  jwtkit_verifier_free(v);
  jwtkit_free(jwks);
  jwtkit_free(tok);
  assert_int_equal(jwtkit_keyring_signing_key(kr, alg, T0 + 11, &sk, &max_exp), JWTKIT_OK);
  assert_string_not_equal(jwtkit_key_kid(sk), old_kid);
  assert_int_equal(jwtkit_keyring_revoke(kr, old_kid, T0 + 12, NULL, NULL, &ei), JWTKIT_ERR_STATE);
  assert_int_equal(jwtkit_keyring_revoke(kr, "nope", T0 + 12, NULL, NULL, &ei), JWTKIT_ERR_NOT_FOUND);
  /* import an existing key: pending, published, signs after max-age + rotation */
  jwtkit_key *imp = NULL;
  assert_int_equal(jwtkit_key_generate(&imp, JWTKIT_ALG_ES256, 0, NULL), JWTKIT_OK);
  assert_int_equal(jwtkit_key_set_kid(imp, "imported-1", 10), JWTKIT_OK);
  assert_int_equal(jwtkit_keyring_add(kr, imp, T0 + 20, report, NULL, &ei), JWTKIT_OK);
  assert_non_null(strstr(g_last, "imported-1"));
  assert_int_equal(jwtkit_keyring_add(kr, imp, T0 + 21, NULL, NULL, &ei), JWTKIT_ERR_INVALID_ARG); /* twice */
  assert_int_equal(jwtkit_keyring_jwks(kr, &jwks, NULL), JWTKIT_OK);
  assert_non_null(strstr(jwks, "imported-1"));
  jwtkit_free(jwks);
  /* a public key cannot be added */
  char *pub = NULL;
  size_t pl;
  assert_int_equal(jwtkit_key_to_jwk(imp, 0, &pub, &pl), JWTKIT_OK);
  jwtkit_key *pk = NULL;
  assert_int_equal(jwtkit_key_from_jwk(&pk, JWTKIT_ALG_UNSPEC, pub, pl, NULL), JWTKIT_OK);
  assert_int_equal(jwtkit_keyring_add(kr, pk, T0 + 22, NULL, NULL, &ei), JWTKIT_ERR_INVALID_KEY);
  jwtkit_key_free(pk);
  jwtkit_free(pub);
  /* force: the imported key activates once its max-age has passed */
  assert_int_equal(jwtkit_keyring_rotate(kr, T0 + 100, 1, NULL, NULL, &ei), JWTKIT_OK);
  assert_int_equal(jwtkit_keyring_signing_key(kr, alg, T0 + 100, &sk, &max_exp), JWTKIT_OK);
  assert_string_not_equal(jwtkit_key_kid(sk), "imported-1");
  assert_int_equal(jwtkit_keyring_rotate(kr, T0 + 320, 1, NULL, NULL, &ei), JWTKIT_OK);
  assert_int_equal(jwtkit_keyring_signing_key(kr, alg, T0 + 320, &sk, &max_exp), JWTKIT_OK);
  assert_string_equal(jwtkit_key_kid(sk), "imported-1");
  jwtkit_key_free(imp);
  jwtkit_keyring_free(kr);
}

/* A child rotates as fast as it can with a simulated clock; the parent
 * kills it with SIGKILL at random moments, then checks the keyring loads
 * and no published key vanished before its retirement. */
static int64_t latest_time(jwtkit_keyring *kr) {
  int64_t m = 0;
  for (size_t i = 0; i < jwtkit_keyring_count(kr); i++) {
    jwtkit_keyring_entry e;
    jwtkit_keyring_get(kr, i, &e);
    int64_t v[5] = {e.created, e.published, e.activated, e.retiring, e.retired};
    for (int k = 0; k < 5; k++)
      if (v[k] > m) m = v[k];
  }
  return m;
}

static void test_crash_safety(void **state) {
  (void)state;
  jwtkit_alg algs[2] = {JWTKIT_ALG_ES256, JWTKIT_ALG_EDDSA};
  jwtkit_keyring_timing t = test_timing();
  t.max_age = 60;
  t.token_ttl = 60;
  t.leeway = 0;
  t.rotate_every = 600;
  t.publish_ahead = 120;
  assert_int_equal(jwtkit_keyring_init(g_dir, algs, 2, &t, NULL, T0, NULL, NULL, NULL), JWTKIT_OK);
  unsigned seed = (unsigned)time(NULL);
  srand(seed);
  char published[64][64];
  size_t npub = 0;
  int rounds = 40, kills = 0;
  for (int r = 0; r < rounds; r++) {
    jwtkit_keyring *kr = NULL;
    jwtkit_errinfo ei;
    if (jwtkit_keyring_open(&kr, g_dir, NULL, &ei) != JWTKIT_OK) fail_msg("round %d (seed %u): %s", r, seed, ei.msg);
    /* nothing published before may be missing unless it was retired by the rules */
    char *jwks = NULL;
    assert_int_equal(jwtkit_keyring_jwks(kr, &jwks, NULL), JWTKIT_OK);
    for (size_t i = 0; i < npub; i++) {
      char needle[96];
      snprintf(needle, sizeof needle, "\"kid\":\"%.63s\"", published[i]);
      if (strstr(jwks, needle) != NULL) continue;
      int ok = 0;
      for (size_t j = 0; j < jwtkit_keyring_count(kr); j++) {
        jwtkit_keyring_entry e;
        jwtkit_keyring_get(kr, j, &e);
        if (strcmp(e.kid, published[i]) == 0)
          ok = e.state == JWTKIT_KEY_RETIRED && e.retired >= e.retiring + t.token_ttl + t.leeway + t.max_age;
      }
      if (!ok) fail_msg("round %d (seed %u): key %s left the JWKS before its retirement", r, seed, published[i]);
    }
    jwtkit_verifier *v = jwks_verifier(jwks); /* the set parses */
    jwtkit_verifier_free(v);
    npub = 0;
    int active = 0;
    for (size_t j = 0; j < jwtkit_keyring_count(kr) && npub < 64; j++) {
      jwtkit_keyring_entry e;
      jwtkit_keyring_get(kr, j, &e);
      if (e.state <= JWTKIT_KEY_RETIRING) snprintf(published[npub++], sizeof published[0], "%.63s", e.kid);
      if (e.state == JWTKIT_KEY_ACTIVE) active++;
    }
    assert_int_equal(active, 2);
    int64_t start = latest_time(kr) + 1;
    jwtkit_free(jwks);
    jwtkit_keyring_free(kr);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      jwtkit_keyring *ck = NULL;
      if (jwtkit_keyring_open(&ck, g_dir, NULL, NULL) != JWTKIT_OK) _exit(2);
      for (int64_t now = start;; now += 40)
        if (jwtkit_keyring_rotate(ck, now, (now / 40) % 3 == 0, NULL, NULL, NULL) != JWTKIT_OK) _exit(3);
    }
    struct timespec ts = {0, (long)(rand() % 40000) * 1000L};
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status)) kills++;
    else fail_msg("round %d: the rotating child exited on its own (status %d)", r, WEXITSTATUS(status));
  }
  printf("crash safety: %d SIGKILLs during rotation, keyring consistent after each (seed %u)\n", kills, seed);
  assert_int_equal(kills, rounds);
}

/* ------------------------------------------ the stored document, edited */

static char *meta_path(char *buf, size_t cap) {
  snprintf(buf, cap, "%s/keyring.json", g_dir);
  return buf;
}

static char *read_meta(void) {
  char p[600];
  char *m = tu_read_file(meta_path(p, sizeof p), NULL);
  assert_non_null(m);
  return m;
}

static void write_meta(const char *text) {
  char p[600];
  FILE *f = fopen(meta_path(p, sizeof p), "w");
  assert_non_null(f);
  assert_int_equal(fputs(text, f) >= 0 && fclose(f) == 0, 1);
}

/* text with the first `from` replaced by `to` (malloc'd); fails the test
 * when `from` is not there */
static char *replace1(const char *text, const char *from, const char *to) {
  const char *at = strstr(text, from);
  if (at == NULL) fail_msg("\"%s\" not found in the keyring document", from);
  size_t n = strlen(text) - strlen(from) + strlen(to) + 1;
  char *out = malloc(n);
  assert_non_null(out);
  snprintf(out, n, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
  return out;
}

static void edit_meta(const char *from, const char *to) {
  char *m = read_meta();
  char *e = replace1(m, from, to);
  write_meta(e);
  free(e);
  free(m);
}

static char *jwks_of(const char *pass) {
  jwtkit_keyring *kr = NULL;
  jwtkit_errinfo ei;
  if (jwtkit_keyring_open(&kr, g_dir, pass, &ei) != JWTKIT_OK) fail_msg("open: %s", ei.msg);
  char *jwks = NULL;
  assert_int_equal(jwtkit_keyring_jwks(kr, &jwks, NULL), JWTKIT_OK);
  jwtkit_keyring_free(kr);
  return jwks;
}

/* The JWKS is exported from the validated keys: what the stored JWK text
 * carries beyond the key (an extra member) is not published, a private
 * member or a JWK naming another kid is refused outright. */
static void test_jwks_from_validated_keys(void **state) {
  (void)state;
  jwtkit_alg alg = JWTKIT_ALG_ES256;
  jwtkit_keyring_timing t = test_timing();
  jwtkit_errinfo ei;
  assert_int_equal(jwtkit_keyring_init(g_dir, &alg, 1, &t, NULL, T0, NULL, NULL, &ei), JWTKIT_OK);
  char *before = jwks_of(NULL);
  char *saved = read_meta();

  /* an extra member: dropped, the JWKS is byte-identical to before */
  edit_meta("\"use\":\"sig\",", "\"use\":\"sig\",\"x5u\":\"https://attacker.example/k\",");
  char *after = jwks_of(NULL);
  assert_null(strstr(after, "x5u"));
  assert_null(strstr(after, "attacker"));
  assert_string_equal(after, before);
  jwtkit_free(after);

  /* a private member: the stored JWK is a private key */
  write_meta(saved);
  jwtkit_keyring *kr = NULL;
  assert_int_equal(jwtkit_keyring_open(&kr, g_dir, NULL, &ei), JWTKIT_OK);
  jwtkit_key *sk = NULL;
  assert_int_equal(jwtkit_keyring_signing_key(kr, alg, T0 + 1, &sk, NULL), JWTKIT_OK);
  char *priv = NULL;
  assert_int_equal(jwtkit_key_to_jwk(sk, 1, &priv, NULL), JWTKIT_OK);
  jwtkit_keyring_free(kr);
  const char *d = strstr(priv, ",\"d\":\"");
  assert_non_null(d);
  char dmember[128];
  snprintf(dmember, sizeof dmember, "\"use\":\"sig\"%.*s", (int)(strchr(d + 6, '"') + 1 - d), d);
  edit_meta("\"use\":\"sig\"", dmember);
  assert_int_equal(jwtkit_keyring_open(&kr, g_dir, NULL, &ei), JWTKIT_ERR_MALFORMED);
  assert_null(kr);
  assert_non_null(strstr(ei.msg, "private key material"));
  jwtkit_free(priv);

  /* a JWK that names another kid than its key */
  write_meta(saved);
  jwtkit_keyring_entry e;
  assert_int_equal(jwtkit_keyring_open(&kr, g_dir, NULL, &ei), JWTKIT_OK);
  assert_int_equal(jwtkit_keyring_get(kr, 0, &e), JWTKIT_OK);
  char from[128];
  snprintf(from, sizeof from, ",\"kid\":\"%s\"}}", e.kid);
  jwtkit_keyring_free(kr);
  edit_meta(from, ",\"kid\":\"someone-else\"}}");
  assert_int_equal(jwtkit_keyring_open(&kr, g_dir, NULL, &ei), JWTKIT_ERR_MALFORMED);
  assert_non_null(strstr(ei.msg, "names kid someone-else"));

  write_meta(saved);
  after = jwks_of(NULL);
  assert_string_equal(after, before);
  jwtkit_free(after);
  jwtkit_free(before);
  free(saved);
}

/* The directory and its files are the trust boundary: writable by group
 * or others is refused (checked on what was opened). */
static void test_directory_permissions(void **state) {
  (void)state;
  jwtkit_alg alg = JWTKIT_ALG_ES256;
  jwtkit_keyring_timing t = test_timing();
  jwtkit_errinfo ei;
  assert_int_equal(jwtkit_keyring_init(g_dir, &alg, 1, &t, NULL, T0, NULL, NULL, &ei), JWTKIT_OK);
  char p[600], keys[600];
  meta_path(p, sizeof p);
  snprintf(keys, sizeof keys, "%s/keys", g_dir);
  struct {
    const char *path;
    mode_t bad, good;
    const char *says;
  } cases[] = {
      {g_dir, 0770, 0700, "keyring directory"}, {g_dir, 0702, 0700, "keyring directory"},
      {keys, 0777, 0700, "keyring directory"},  {p, 0664, 0644, "keyring.json is writable"},
      {p, 0646, 0644, "keyring.json is writable"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    jwtkit_keyring *kr = NULL;
    assert_int_equal(chmod(cases[i].path, cases[i].bad), 0);
    jwtkit_err rc = jwtkit_keyring_open(&kr, g_dir, NULL, &ei);
    if (rc != JWTKIT_ERR_PERMISSION) fail_msg("%s mode %03o: got %s", cases[i].path, (unsigned)cases[i].bad, jwtkit_strerror(rc));
    assert_null(kr);
    assert_non_null(strstr(ei.msg, cases[i].says));
    assert_non_null(strstr(ei.msg, "writable by group or others"));
    assert_int_equal(chmod(cases[i].path, cases[i].good), 0);
    assert_int_equal(jwtkit_keyring_open(&kr, g_dir, NULL, &ei), JWTKIT_OK);
    jwtkit_keyring_free(kr);
  }
}

/* A passphrase keyring authenticates keyring.json with a key derived from
 * the passphrase: a change made without it is refused, an older document
 * put back is refused by a handle that saw a newer one, and a document
 * written before jwtkit authenticated it is refused until reviewed and
 * trusted. */
static void test_passphrase_document_mac(void **state) {
  (void)state;
  const char *pass = "correct horse";
  jwtkit_alg alg = JWTKIT_ALG_ES256;
  jwtkit_keyring_timing t = test_timing();
  jwtkit_errinfo ei;
  assert_int_equal(jwtkit_keyring_init(g_dir, &alg, 1, &t, pass, T0, NULL, NULL, &ei), JWTKIT_OK);
  char *saved = read_meta();
  assert_non_null(strstr(saved, "\"version\":2"));
  assert_non_null(strstr(saved, ",\"auth\":{\"salt\":\""));
  jwtkit_keyring *kr = NULL;

  /* edits without the passphrase: a timing value, a state, a time */
  const char *edits[][2] = {{"\"max_age\":300", "\"max_age\":299"},
                            {"\"state\":\"active\"", "\"state\":\"retiring\""},
                            {"\"retiring\":0", "\"retiring\":1"}};
  for (size_t i = 0; i < 3; i++) {
    edit_meta(edits[i][0], edits[i][1]);
    assert_int_equal(jwtkit_keyring_open(&kr, g_dir, pass, &ei), JWTKIT_ERR_BAD_SIGNATURE);
    assert_null(kr);
    assert_string_equal(ei.field, "auth");
    assert_non_null(strstr(ei.msg, "does not match its MAC"));
    write_meta(saved);
  }
  /* a key of someone else's, appended as retiring */
  jwtkit_key *mine = NULL;
  assert_int_equal(jwtkit_key_generate(&mine, JWTKIT_ALG_ES256, 0, NULL), JWTKIT_OK);
  assert_int_equal(jwtkit_key_set_kid(mine, "attacker", 8), JWTKIT_OK);
  char *jwk = NULL;
  assert_int_equal(jwtkit_key_to_jwk(mine, 0, &jwk, NULL), JWTKIT_OK);
  char entry[1024];
  snprintf(entry, sizeof entry,
           "\"keys\":[{\"kid\":\"attacker\",\"alg\":\"ES256\",\"state\":\"retiring\",\"file\":\"attacker\","
           "\"created\":1800000000,\"published\":1800000000,\"activated\":1800000000,\"retiring\":1800000100,"
           "\"retired\":0,\"jwk\":%s},",
           jwk);
  jwtkit_free(jwk);
  jwtkit_key_free(mine);
  edit_meta("\"keys\":[", entry);
  assert_int_equal(jwtkit_keyring_open(&kr, g_dir, pass, &ei), JWTKIT_ERR_BAD_SIGNATURE);
  /* the operator's review shows it, and trusting it is refused: no
   * private key of it is in the keyring */
  jwtkit_keyring_secrets sec = {.passphrase = pass, .keks = NULL, .nkeks = 0};
  jwtkit_errinfo verdict;
  assert_int_equal(jwtkit_keyring_open_review(&kr, g_dir, &sec, &verdict, &ei), JWTKIT_OK);
  assert_int_equal(verdict.code, JWTKIT_ERR_BAD_SIGNATURE);
  assert_int_equal(jwtkit_keyring_count(kr), 2);
  assert_int_equal(jwtkit_keyring_rotate(kr, T0 + 1, 1, NULL, NULL, &ei), JWTKIT_ERR_STATE); /* review only */
  assert_int_equal(jwtkit_keyring_trust(kr, NULL, NULL, &ei), JWTKIT_ERR_STATE);
  assert_non_null(strstr(ei.msg, "key attacker (retiring) has no matching private key here"));
  jwtkit_keyring_free(kr);
  write_meta(saved);

  /* rollback: a handle that committed generation 2 refuses generation 1
   * put back; a fresh handle cannot know (it trusts the newest authentic
   * document it is shown), unless told what was seen */
  assert_int_equal(jwtkit_keyring_open(&kr, g_dir, pass, &ei), JWTKIT_OK);
  assert_int_equal(jwtkit_keyring_generation(kr), 1);
  assert_int_equal(jwtkit_keyring_rotate(kr, T0 + 100, 1, NULL, NULL, &ei), JWTKIT_OK);
  assert_int_equal(jwtkit_keyring_generation(kr), 2);
  char *gen2 = read_meta();
  write_meta(saved);
  assert_int_equal(jwtkit_keyring_rotate(kr, T0 + 200, 1, NULL, NULL, &ei), JWTKIT_ERR_STATE);
  assert_string_equal(ei.field, "generation");
  assert_non_null(strstr(ei.msg, "generation 1, older than generation 2"));
  jwtkit_keyring_free(kr);
  jwtkit_keyring *fresh = NULL;
  assert_int_equal(jwtkit_keyring_open_seen(&fresh, g_dir, &sec, 2, &ei), JWTKIT_ERR_STATE);
  assert_null(fresh);
  assert_int_equal(jwtkit_keyring_open_seen(&fresh, g_dir, &sec, 0, &ei), JWTKIT_OK); /* the limit */
  assert_int_equal(jwtkit_keyring_generation(fresh), 1);
  jwtkit_keyring_free(fresh);
  write_meta(gen2);
  free(gen2);

  /* written before documents were authenticated: version 1, no auth */
  char *m = read_meta();
  char *auth = strstr(m, ",\"auth\":");
  assert_non_null(auth);
  strcpy(auth, "}\n");
  char *legacy = replace1(m, "\"version\":2", "\"version\":1");
  free(m);
  write_meta(legacy);
  free(legacy);
  assert_int_equal(jwtkit_keyring_open(&kr, g_dir, pass, &ei), JWTKIT_ERR_BAD_SIGNATURE);
  assert_non_null(strstr(ei.msg, "is not authenticated"));
  assert_non_null(strstr(ei.msg, "trust-document"));
  /* a wrong passphrase is still told apart when reviewing */
  jwtkit_keyring_secrets wrong = {.passphrase = "wrong", .keks = NULL, .nkeks = 0};
  assert_int_equal(jwtkit_keyring_open_review(&kr, g_dir, &wrong, &verdict, &ei), JWTKIT_ERR_PASSPHRASE);
  assert_int_equal(jwtkit_keyring_open_review(&kr, g_dir, &sec, &verdict, &ei), JWTKIT_OK);
  assert_int_equal(verdict.code, JWTKIT_ERR_BAD_SIGNATURE);
  g_lines = 0;
  assert_int_equal(jwtkit_keyring_trust(kr, report, NULL, &ei), JWTKIT_OK);
  assert_int_equal(g_lines, 1);
  assert_string_equal(g_last, "authenticated keyring.json as generation 3 with the passphrase");
  /* now an ordinary handle that can rotate */
  assert_int_equal(jwtkit_keyring_rotate(kr, T0 + 500, 1, NULL, NULL, &ei), JWTKIT_OK); /* activates */
  jwtkit_keyring_free(kr);
  assert_int_equal(jwtkit_keyring_open(&kr, g_dir, pass, &ei), JWTKIT_OK);
  assert_int_equal(jwtkit_keyring_generation(kr), 4);
  /* trusting an authentic document does nothing */
  assert_int_equal(jwtkit_keyring_trust(kr, report, NULL, &ei), JWTKIT_OK);
  assert_non_null(strstr(g_last, "already authenticated"));
  jwtkit_keyring_free(kr);
  free(saved);
}

/* A directory keyring without a passphrase is not authenticated (its
 * permissions protect it): trust-document says so instead of pretending. */
static void test_plain_directory_cannot_be_trusted(void **state) {
  (void)state;
  jwtkit_alg alg = JWTKIT_ALG_ES256;
  jwtkit_keyring_timing t = test_timing();
  jwtkit_errinfo ei;
  assert_int_equal(jwtkit_keyring_init(g_dir, &alg, 1, &t, NULL, T0, NULL, NULL, &ei), JWTKIT_OK);
  char *m = read_meta();
  assert_non_null(strstr(m, "\"version\":1"));
  assert_null(strstr(m, "\"auth\""));
  free(m);
  jwtkit_keyring *kr = NULL;
  jwtkit_errinfo verdict;
  assert_int_equal(jwtkit_keyring_open_review(&kr, g_dir, NULL, &verdict, &ei), JWTKIT_OK);
  assert_int_equal(verdict.code, JWTKIT_OK);
  assert_int_equal(jwtkit_keyring_trust(kr, NULL, NULL, &ei), JWTKIT_ERR_UNSUPPORTED);
  assert_non_null(strstr(ei.msg, "file permissions"));
  jwtkit_keyring_free(kr);
}


static size_t count_key_files(const char *ring) {
  char kd[300];
  snprintf(kd, sizeof kd, "%s/keys", ring);
  DIR *dh = opendir(kd);
  size_t n = 0;
  struct dirent *e;
  while (dh != NULL && (e = readdir(dh)) != NULL)
    if (strstr(e->d_name, ".pem") != NULL) n++;
  if (dh) closedir(dh);
  return n;
}

/* Verify-only keys: a public key of another keyring, published and held
 * until released, then gone on the retiring schedule; never activated,
 * no private part stored, kept across reopening. */
static void test_verify_only_keys(void **state) {
  (void)state;
  jwtkit_keyring_timing t = test_timing();
  const jwtkit_alg es = JWTKIT_ALG_ES256;
  jwtkit_errinfo ei;
  assert_int_equal(jwtkit_keyring_init(g_dir, &es, 1, &t, NULL, T0, NULL, NULL, &ei), JWTKIT_OK);
  jwtkit_keyring *kr = NULL;
  assert_int_equal(jwtkit_keyring_open(&kr, g_dir, NULL, &ei), JWTKIT_OK);
  /* the other keyring's key: given as a private key, only its public half is kept */
  jwtkit_key *other = NULL, *pub = NULL;
  assert_int_equal(jwtkit_key_generate(&other, JWTKIT_ALG_ES256, 0, NULL), JWTKIT_OK);
  assert_int_equal(jwtkit_key_set_kid(other, "other-ring-key", 14), JWTKIT_OK);
  char *ojwk = NULL;
  size_t ol = 0;
  assert_int_equal(jwtkit_key_to_jwk(other, 0, &ojwk, &ol), JWTKIT_OK);
  assert_int_equal(jwtkit_key_from_jwk(&pub, JWTKIT_ALG_ES256, ojwk, ol, NULL), JWTKIT_OK);
  size_t files = count_key_files(g_dir);
  g_lines = 0;
  assert_int_equal(jwtkit_keyring_add_verify_only(kr, other, T0 + 10, report, NULL, &ei), JWTKIT_OK);
  assert_int_equal(g_lines, 1);
  assert_non_null(strstr(g_last, "imported verify-only key other-ring-key (ES256)"));
  assert_int_equal(count_key_files(g_dir), files); /* no private part stored */
  /* twice: refused; an RSA public key of the same kid too */
  assert_int_equal(jwtkit_keyring_add_verify_only(kr, pub, T0 + 11, NULL, NULL, &ei), JWTKIT_ERR_STATE);
  assert_string_equal(ei.field, "kid");
  /* published: a token of the other keyring verifies against this JWKS */
  char *tok = NULL, *jwks = NULL;
  size_t jl = 0;
  const char *claims = "{\"exp\":1800009999}";
  assert_int_equal(jwtkit_sign(other, NULL, claims, strlen(claims), &tok, NULL, NULL), JWTKIT_OK);
  assert_int_equal(jwtkit_keyring_jwks(kr, &jwks, &jl), JWTKIT_OK);
  assert_null(strstr(jwks, "\"d\":"));
  jwtkit_verifier *v = jwks_verifier(jwks);
  assert_int_equal(jwtkit_verify_at(v, tok, strlen(tok), T0 + 20, NULL, NULL), JWTKIT_OK);
  jwtkit_verifier_free(v);
  jwtkit_free(jwks);
  /* listed as verify-only and held; reopened from the document the same */
  jwtkit_keyring_free(kr);
  assert_int_equal(jwtkit_keyring_open(&kr, g_dir, NULL, &ei), JWTKIT_OK);
  jwtkit_keyring_entry e;
  size_t vi = jwtkit_keyring_count(kr);
  for (size_t i = 0; i < jwtkit_keyring_count(kr); i++) {
    assert_int_equal(jwtkit_keyring_get(kr, i, &e), JWTKIT_OK);
    if (strcmp(e.kid, "other-ring-key") == 0) vi = i;
  }
  assert_true(vi < jwtkit_keyring_count(kr));
  assert_int_equal(jwtkit_keyring_get(kr, vi, &e), JWTKIT_OK);
  assert_int_equal(e.state, JWTKIT_KEY_RETIRING);
  assert_true(e.verify_only && e.held);
  assert_int_equal(e.planned_retirement, 0);
  /* rotations, forced ones included, never activate or retire a held key */
  for (int64_t now = T0 + 60; now < T0 + 5 * 86400; now += 1800) {
    assert_int_equal(jwtkit_keyring_rotate(kr, now, (now / 1800) % 3 == 0, NULL, NULL, &ei), JWTKIT_OK);
    jwtkit_key *sk = NULL;
    assert_int_equal(jwtkit_keyring_signing_key(kr, JWTKIT_ALG_ES256, now, &sk, NULL), JWTKIT_OK);
    assert_string_not_equal(jwtkit_key_kid(sk), "other-ring-key");
  }
  for (size_t i = 0; i < jwtkit_keyring_count(kr); i++) {
    assert_int_equal(jwtkit_keyring_get(kr, i, &e), JWTKIT_OK);
    if (strcmp(e.kid, "other-ring-key") == 0) assert_true(e.state == JWTKIT_KEY_RETIRING && e.held);
  }
  char *plan = NULL;
  size_t pl = 0;
  assert_int_equal(jwtkit_keyring_plan(kr, T0 + 5 * 86400, &plan, &pl), JWTKIT_OK);
  assert_non_null(strstr(plan, "held (release)"));
  jwtkit_free(plan);
  /* released: retiring from then, gone once its window has closed */
  int64_t rel = T0 + 5 * 86400;
  g_lines = 0;
  assert_int_equal(jwtkit_keyring_release(kr, rel, report, NULL, &ei), JWTKIT_OK);
  assert_int_equal(g_lines, 1);
  assert_non_null(strstr(g_last, "released verify-only key other-ring-key"));
  int64_t leave = rel + t.token_ttl + t.leeway + t.max_age;
  assert_int_equal(jwtkit_keyring_rotate(kr, leave - 1, 0, NULL, NULL, &ei), JWTKIT_OK);
  assert_int_equal(jwtkit_keyring_jwks(kr, &jwks, &jl), JWTKIT_OK);
  assert_non_null(strstr(jwks, "other-ring-key"));
  jwtkit_free(jwks);
  assert_int_equal(jwtkit_keyring_rotate(kr, leave, 0, NULL, NULL, &ei), JWTKIT_OK);
  assert_int_equal(jwtkit_keyring_jwks(kr, &jwks, &jl), JWTKIT_OK);
  assert_null(strstr(jwks, "other-ring-key"));
  jwtkit_free(jwks);
  /* nothing left to release; a held key can also be revoked at once */
  g_lines = 0;
  assert_int_equal(jwtkit_keyring_release(kr, leave + 1, report, NULL, &ei), JWTKIT_OK);
  assert_non_null(strstr(g_last, "nothing to release"));
  jwtkit_key *third = NULL;
  assert_int_equal(jwtkit_key_generate(&third, JWTKIT_ALG_ES256, 0, NULL), JWTKIT_OK);
  assert_int_equal(jwtkit_key_set_kid(third, "third", 5), JWTKIT_OK);
  assert_int_equal(jwtkit_keyring_add_verify_only(kr, third, leave + 2, NULL, NULL, &ei), JWTKIT_OK);
  assert_int_equal(jwtkit_keyring_revoke(kr, "third", leave + 3, NULL, NULL, &ei), JWTKIT_OK);
  assert_int_equal(jwtkit_keyring_jwks(kr, &jwks, &jl), JWTKIT_OK);
  assert_null(strstr(jwks, "\"third\""));
  jwtkit_free(jwks);
  /* a secret is never published */
  jwtkit_key *hs = tu_key(JWTKIT_ALG_HS256);
  assert_int_equal(jwtkit_keyring_add_verify_only(kr, hs, leave + 4, NULL, NULL, &ei), JWTKIT_ERR_INVALID_KEY);
  jwtkit_key_free(third);
  jwtkit_key_free(other);
  jwtkit_key_free(pub);
  jwtkit_free(ojwk);
  jwtkit_free(tok);
  jwtkit_keyring_free(kr);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_init_open_and_files, setup, teardown),
      cmocka_unit_test_setup_teardown(test_passphrase, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lifecycle_simulation, setup, teardown),
      cmocka_unit_test_setup_teardown(test_overdue_rotation_shortens_tokens, setup, teardown),
      cmocka_unit_test_setup_teardown(test_revoke_and_add, setup, teardown),
      cmocka_unit_test_setup_teardown(test_crash_safety, setup, teardown),
      cmocka_unit_test_setup_teardown(test_jwks_from_validated_keys, setup, teardown),
      cmocka_unit_test_setup_teardown(test_directory_permissions, setup, teardown),
      cmocka_unit_test_setup_teardown(test_passphrase_document_mac, setup, teardown),
      cmocka_unit_test_setup_teardown(test_plain_directory_cannot_be_trusted, setup, teardown),
      cmocka_unit_test_setup_teardown(test_verify_only_keys, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
