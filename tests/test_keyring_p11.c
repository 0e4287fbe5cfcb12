/* Keyrings whose private keys live in a PKCS#11 token (SoftHSM2 in a
 * temporary directory), on the directory store (ctest keyring_pkcs11) and
 * on the PostgreSQL metadata store (ctest pg_keyring_pkcs11:
 * tests/pkcs11/run_pg.sh starts a throwaway server and passes its URL in
 * JWTKIT_TEST_PG_URL).  Label pkcs11; skipped (exit 77) without SoftHSM, a
 * failure under CI=true.
 *
 *   - rotation minute by minute over five periods with an injected clock:
 *     every token still valid verifies against the JWKS fetched now and the
 *     one fetched max-age ago; the signing key is a token key; pending,
 *     active and retiring keys are in the token, retired ones gone from it
 *     (private and public objects, looked for through the API); no key
 *     file and no sealed row exists, the document holds no private member;
 *   - the document records the token (no PIN) and is authenticated: a
 *     changed token URI or token flag is refused;
 *   - faults: a wrong PIN (one login, one clear error), a missing module, a
 *     token missing at open (an error naming it, and no key file is used
 *     even when one is planted), URIs that name a key or carry a PIN;
 *     imports refused, verify-only keys and keys generated for a new
 *     algorithm, revocation destroying the token key;
 *   - every allocation of opening a token keyring, and of adding a key to
 *     it, failed in turn: NOMEM, balanced, and no key left in the token. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef JWTKIT_WITH_POSTGRES
#include <libpq-fe.h>
#endif
#include <p11-kit/pkcs11.h>

#include "crypto/p11.h"
#include "testutil.h"

#define T0 1800000000LL

static char g_dir[256];   /* SoftHSM's directory and the keyrings' */
static char g_pin[320];   /* the right PIN (1234), mode 0600 */
static char g_module[256];
static char g_token[1024]; /* pkcs11:token=jwtkit?pin-source=...&module-path=... */
static const char *g_pg;  /* PostgreSQL URL, or NULL: directory keyrings */
static char g_loc[1024];  /* this test's keyring location */
static unsigned char g_kek[1][32];
static int g_case;

/* ------------------------------------------------------------ helpers */

#ifdef JWTKIT_WITH_POSTGRES
static long sql_count(const char *q) {
  PGconn *c = PQconnectdb(g_loc);
  if (PQstatus(c) != CONNECTION_OK) fail_msg("connect: %s", PQerrorMessage(c));
  PGresult *r = PQexec(c, q);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) fail_msg("%s: %s", q, PQerrorMessage(c));
  long n = strtol(PQgetvalue(r, 0, 0), NULL, 10);
  PQclear(r);
  PQfinish(c);
  return n;
}

static void sql(const char *q) {
  PGconn *c = PQconnectdb(g_loc);
  if (PQstatus(c) != CONNECTION_OK) fail_msg("connect: %s", PQerrorMessage(c));
  PGresult *r = PQexec(c, q);
  if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
    fail_msg("%s: %s", q, PQerrorMessage(c));
  PQclear(r);
  PQfinish(c);
}
#endif

/* Each test: a keyring of its own (a directory, or a schema). */
static int setup(void **state) {
  (void)state;
  g_case++;
  if (g_pg == NULL) {
    snprintf(g_loc, sizeof g_loc, "%s/ring%d", g_dir, g_case);
    return 0;
  }
#ifdef JWTKIT_WITH_POSTGRES
  char name[40];
  snprintf(name, sizeof name, "p11_%d_%ld", g_case, (long)getpid());
  snprintf(g_loc, sizeof g_loc, "%s%soptions=-csearch_path%%3D%s", g_pg, strchr(g_pg, '?') ? "&" : "?", name);
  PGconn *c = PQconnectdb(g_pg);
  if (PQstatus(c) != CONNECTION_OK) return -1;
  char q[96];
  snprintf(q, sizeof q, "CREATE SCHEMA %s", name);
  PGresult *r = PQexec(c, q);
  int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  PQclear(r);
  PQfinish(c);
  return ok ? 0 : -1;
#else
  return -1;
#endif
}

static int teardown(void **state) {
  (void)state;
  jk_p11_test_hook = NULL;
  char away[300], here[300];
  snprintf(away, sizeof away, "%s/tokens.away", g_dir);
  snprintf(here, sizeof here, "%s/tokens", g_dir);
  if (access(away, F_OK) == 0) (void)rename(away, here); /* a failed test_faults */
  return 0;
}

static jwtkit_keyring_secrets secrets(const char *pass, const char *token) {
  jwtkit_keyring_secrets s = {.passphrase = pass,
                              .keks = g_pg ? (const unsigned char(*)[32])g_kek : NULL,
                              .nkeks = g_pg ? 1 : 0,
                              .pkcs11 = token};
  return s;
}

static jwtkit_keyring_timing timing(void) {
  jwtkit_keyring_timing t;
  jwtkit_keyring_timing_default(&t);
  t.max_age = 300;
  t.token_ttl = 600;
  t.leeway = 60;
  t.rotate_every = 3600;
  t.publish_ahead = 900;
  return t;
}

static void make_ring(const jwtkit_alg *algs, size_t n, const char *pass) {
  jwtkit_keyring_secrets s = secrets(pass, g_token);
  jwtkit_keyring_timing t = timing();
  jwtkit_errinfo ei = {0};
  if (jwtkit_keyring_init_ex(g_loc, algs, n, &t, &s, T0, NULL, NULL, &ei) != JWTKIT_OK) fail_msg("init: %s", ei.msg);
}

static jwtkit_keyring *open_ring(const char *pass) {
  jwtkit_keyring *kr = NULL;
  jwtkit_keyring_secrets s = secrets(pass, NULL);
  jwtkit_errinfo ei = {0};
  if (jwtkit_keyring_open_ex(&kr, g_loc, &s, &ei) != JWTKIT_OK) fail_msg("open %s: %s", g_loc, ei.msg);
  return kr;
}

static jwtkit_err open_fails(const char *pass, jwtkit_errinfo *ei) {
  jwtkit_keyring *kr = (jwtkit_keyring *)&kr;
  jwtkit_keyring_secrets s = secrets(pass, NULL);
  memset(ei, 0, sizeof *ei);
  jwtkit_err rc = jwtkit_keyring_open_ex(&kr, g_loc, &s, ei);
  if (rc == JWTKIT_OK) fail_msg("open %s succeeded", g_loc);
  if (kr != NULL) fail_msg("a failed open left a handle");
  return rc;
}

/* Is the private / public key object of kid in the token?  Asked through
 * the API: a signing key by its label, the public half without a PIN. */
static int private_in_token(const char *kid) {
  char u[1200];
  snprintf(u, sizeof u, "pkcs11:token=jwtkit;object=%s?pin-source=%s&module-path=%s", kid, g_pin, g_module);
  jwtkit_key *k = NULL;
  jwtkit_errinfo e = {0};
  jwtkit_err rc = jwtkit_key_from_pkcs11(&k, JWTKIT_ALG_UNSPEC, u, &e);
  jwtkit_key_free(k);
  if (rc == JWTKIT_ERR_NOT_FOUND && strcmp(e.field, "object") == 0) return 0;
  if (rc != JWTKIT_OK) fail_msg("looking for %s: %s", kid, e.msg);
  return 1;
}

static int public_in_token(const char *kid) {
  char u[1200];
  snprintf(u, sizeof u, "pkcs11:token=jwtkit;object=%s;type=public?module-path=%s", kid, g_module);
  jwtkit_key *k = NULL;
  jwtkit_errinfo e = {0};
  jwtkit_err rc = jwtkit_pkcs11_public_key(&k, JWTKIT_ALG_UNSPEC, u, &e);
  jwtkit_key_free(k);
  if (rc == JWTKIT_ERR_NOT_FOUND) return 0;
  if (rc != JWTKIT_OK) fail_msg("looking for public %s: %s", kid, e.msg);
  return 1;
}

/* Private key objects in the token, counted in a session of our own on
 * the module a token key uses. */
static long token_private_keys(jwtkit_key *any_token_key) {
  void *flp = NULL;
  unsigned long slot = 0;
  assert_int_equal(jk_p11_test_module(any_token_key, &flp, &slot), 0);
  CK_FUNCTION_LIST *fl = flp;
  CK_SESSION_HANDLE h;
  assert_int_equal(fl->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_OK);
  CK_SESSION_INFO si;
  assert_int_equal(fl->C_GetSessionInfo(h, &si), CKR_OK);
  if (si.state == CKS_RO_PUBLIC_SESSION) assert_int_equal(fl->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR) "1234", 4), CKR_OK);
  CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
  CK_ATTRIBUTE t = {CKA_CLASS, &cls, sizeof cls};
  CK_OBJECT_HANDLE o[256];
  CK_ULONG n = 0;
  assert_int_equal(fl->C_FindObjectsInit(h, &t, 1), CKR_OK);
  assert_int_equal(fl->C_FindObjects(h, o, 256, &n), CKR_OK);
  assert_int_equal(fl->C_FindObjectsFinal(h), CKR_OK);
  assert_int_equal(fl->C_CloseSession(h), CKR_OK);
  return (long)n;
}

/* No private key material outside the token: no key file, no sealed row. */
static void no_private_material(void) {
  if (g_pg == NULL) {
    char kd[1100];
    snprintf(kd, sizeof kd, "%s/keys", g_loc);
    DIR *d = opendir(kd);
    int files = 0;
    if (d != NULL) {
      struct dirent *de;
      while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.') files++;
      closedir(d);
    }
    assert_int_equal(files, 0);
    char p[1100];
    snprintf(p, sizeof p, "%s/keyring.json", g_loc);
    char *meta = tu_read_file(p, NULL);
    assert_non_null(meta);
    assert_null(strstr(meta, "\"d\":"));
    assert_null(strstr(meta, "PRIVATE"));
    assert_null(strstr(meta, "pin-value"));
    free(meta);
  } else {
#ifdef JWTKIT_WITH_POSTGRES
    assert_int_equal(sql_count("SELECT count(*) FROM jwtkit_private_keys"), 0);
    assert_int_equal(sql_count("SELECT count(*) FROM jwtkit_keyring WHERE doc LIKE '%\"d\":%' OR doc LIKE '%pin-value%'"), 0);
#endif
  }
}

static jwtkit_verifier *jwks_verifier(const char *json) {
  jwtkit_jwks *set = NULL;
  jwtkit_errinfo ei;
  if (jwtkit_jwks_parse(&set, json, strlen(json), JWTKIT_ALG_UNSPEC, NULL, NULL, &ei) != JWTKIT_OK)
    fail_msg("jwks: %s", ei.msg);
  jwtkit_policy *p = jwtkit_policy_new();
  for (size_t i = 0; i < jwtkit_jwks_count(set); i++)
    assert_int_equal(jwtkit_policy_allow_alg(p, jwtkit_key_alg(jwtkit_jwks_get(set, i))), JWTKIT_OK);
  assert_int_equal(jwtkit_policy_add_jwks(p, set), JWTKIT_OK);
  assert_int_equal(jwtkit_policy_set_kidless(p, JWTKIT_KIDLESS_REJECT), JWTKIT_OK);
  jwtkit_verifier *v = NULL;
  if (jwtkit_verifier_new(&v, p, &ei) != JWTKIT_OK) fail_msg("verifier: %s", ei.msg);
  jwtkit_policy_free(p);
  jwtkit_jwks_free(set);
  return v;
}

/* --------------------------------------------------------- lifecycle */

#define MINUTES (5 * 60 + 30)
static void test_lifecycle(void **state) {
  (void)state;
  jwtkit_alg algs[2] = {JWTKIT_ALG_ES256, JWTKIT_ALG_EDDSA};
  jwtkit_keyring_timing t = timing();
  make_ring(algs, 2, NULL);
  jwtkit_keyring *kr = open_ring(NULL);
  assert_non_null(jwtkit_keyring_pkcs11(kr));
  assert_null(strstr(jwtkit_keyring_pkcs11(kr), "object="));
  static char *tokens[(MINUTES + 1) * 2];
  static int64_t exps[(MINUTES + 1) * 2];
  static char *snapshots[MINUTES + 1];
  size_t ntok = 0;
  int activations = 0, retirements = 0;
  uint64_t checked = 0;
  char retired_kids[64][48];
  size_t nretired = 0;
  jwtkit_errinfo ei = {0};
  for (int m = 0; m <= MINUTES; m++) {
    int64_t now = T0 + 60LL * m;
    if (jwtkit_keyring_rotate(kr, now, 0, NULL, NULL, &ei) != JWTKIT_OK) fail_msg("minute %d: rotate: %s", m, ei.msg);
    int active[JWTKIT_ALG_COUNT] = {0};
    int changed = jwtkit_keyring_generation(kr) != checked;
    for (size_t i = 0; i < jwtkit_keyring_count(kr); i++) {
      jwtkit_keyring_entry e;
      assert_int_equal(jwtkit_keyring_get(kr, i, &e), JWTKIT_OK);
      if (e.state == JWTKIT_KEY_ACTIVE) active[e.alg]++;
      if (e.activated != 0 && e.activated != T0) assert_true(e.activated - e.published >= t.max_age);
      if (m > 0 && e.activated == now) activations++;
      if (m > 0 && e.retired == now) {
        retirements++;
        assert_true(nretired < 64);
        snprintf(retired_kids[nretired++], sizeof retired_kids[0], "%s", e.kid);
      }
      /* live keys are in the token, retired ones are gone from it */
      assert_int_equal(e.in_token, e.state <= JWTKIT_KEY_RETIRING);
      if (changed) {
        int live = e.state <= JWTKIT_KEY_RETIRING;
        if (private_in_token(e.kid) != live || public_in_token(e.kid) != live)
          fail_msg("minute %d: %s key %s: private %d, public %d in the token", m, jwtkit_key_state_name(e.state), e.kid,
                   private_in_token(e.kid), public_in_token(e.kid));
      }
    }
    assert_int_equal(active[JWTKIT_ALG_ES256], 1);
    assert_int_equal(active[JWTKIT_ALG_EDDSA], 1);
    if (changed) {
      no_private_material();
      /* a fresh handle loads the same keys from the token */
      jwtkit_keyring *again = open_ring(NULL);
      for (int a = 0; a < 2; a++) {
        jwtkit_key *k1 = NULL, *k2 = NULL;
        assert_int_equal(jwtkit_keyring_signing_key(kr, algs[a], now, &k1, NULL), JWTKIT_OK);
        assert_int_equal(jwtkit_keyring_signing_key(again, algs[a], now, &k2, NULL), JWTKIT_OK);
        assert_int_equal(jwtkit_key_is_pkcs11(k2), 1);
        assert_string_equal(jwtkit_key_kid(k1), jwtkit_key_kid(k2));
      }
      jwtkit_keyring_free(again);
      checked = jwtkit_keyring_generation(kr);
    }
    assert_int_equal(jwtkit_keyring_jwks(kr, &snapshots[m], NULL), JWTKIT_OK);
    for (int a = 0; a < 2; a++) {
      jwtkit_key *sk = NULL;
      int64_t max_exp = 0;
      assert_int_equal(jwtkit_keyring_signing_key(kr, algs[a], now, &sk, &max_exp), JWTKIT_OK);
      assert_int_equal(jwtkit_key_is_pkcs11(sk), 1);
      char claims[64];
      snprintf(claims, sizeof claims, "{\"exp\":%lld,\"iat\":%lld}", (long long)max_exp, (long long)now);
      if (jwtkit_sign(sk, NULL, claims, strlen(claims), &tokens[ntok], NULL, &ei) != JWTKIT_OK)
        fail_msg("minute %d: sign: %s", m, ei.msg);
      exps[ntok++] = max_exp;
    }
    jwtkit_verifier *vnow = jwks_verifier(snapshots[m]);
    int old_m = m - (int)(t.max_age / 60);
    jwtkit_verifier *vold = old_m >= 0 ? jwks_verifier(snapshots[old_m]) : NULL;
    for (size_t i = 0; i < ntok; i++) {
      if (now >= exps[i] + t.leeway) continue;
      if (jwtkit_verify_at(vnow, tokens[i], strlen(tokens[i]), now, NULL, &ei) != JWTKIT_OK)
        fail_msg("minute %d token %zu (JWKS now): %s", m, i, ei.msg);
      if (vold != NULL && jwtkit_verify_at(vold, tokens[i], strlen(tokens[i]), now, NULL, &ei) != JWTKIT_OK)
        fail_msg("minute %d token %zu (JWKS of minute %d): %s", m, i, old_m, ei.msg);
    }
    jwtkit_verifier_free(vnow);
    jwtkit_verifier_free(vold);
  }
  assert_true(activations >= 8);
  assert_true(retirements >= 6);
  /* the retired keys are gone from the token for good */
  for (size_t i = 0; i < nretired; i++) {
    assert_int_equal(private_in_token(retired_kids[i]), 0);
    assert_int_equal(public_in_token(retired_kids[i]), 0);
  }
  /* and the token holds exactly the live keys of this keyring (and the
   * other tests' live keys: counted before and after would need no other
   * keyring; here the count of live entries bounds it from below) */
  size_t live = 0;
  for (size_t i = 0; i < jwtkit_keyring_count(kr); i++) {
    jwtkit_keyring_entry e;
    jwtkit_keyring_get(kr, i, &e);
    if (e.state <= JWTKIT_KEY_RETIRING) live++;
  }
  jwtkit_key *sk = NULL;
  assert_int_equal(jwtkit_keyring_signing_key(kr, JWTKIT_ALG_ES256, T0 + 60LL * MINUTES, &sk, NULL), JWTKIT_OK);
  assert_true(token_private_keys(sk) >= (long)live);
  for (size_t i = 0; i < ntok; i++) jwtkit_free(tokens[i]);
  for (int m = 0; m <= MINUTES; m++) jwtkit_free(snapshots[m]);
  jwtkit_keyring_free(kr);
}

/* ------------------------------------------------ document and MAC */

static void replace_in(const char *path, const char *from, const char *to) {
  char *s = tu_read_file(path, NULL);
  assert_non_null(s);
  char *at = strstr(s, from);
  if (at == NULL) fail_msg("%s: no \"%s\"", path, from);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fwrite(s, 1, (size_t)(at - s), f);
  fputs(to, f);
  fputs(at + strlen(from), f);
  fclose(f);
  free(s);
}

static void test_document(void **state) {
  (void)state;
  const jwtkit_alg alg = JWTKIT_ALG_ES256;
  const char *pass = g_pg ? NULL : "correct horse battery staple"; /* authenticated: KEK, or the passphrase */
  make_ring(&alg, 1, pass);
  jwtkit_keyring *kr = open_ring(pass);
  char want[1100];
  snprintf(want, sizeof want, "pkcs11:token=jwtkit?pin-source=%s&module-path=%s", g_pin, g_module);
  assert_string_equal(jwtkit_keyring_pkcs11(kr), want);
  jwtkit_keyring_entry e;
  assert_int_equal(jwtkit_keyring_get(kr, 0, &e), JWTKIT_OK);
  assert_int_equal(e.in_token, 1);
  char kid[64];
  snprintf(kid, sizeof kid, "%s", e.kid);
  jwtkit_keyring_free(kr);
  no_private_material();
  jwtkit_errinfo ei;
  if (g_pg == NULL) {
    char p[1100];
    snprintf(p, sizeof p, "%s/keyring.json", g_loc);
    char *saved = tu_read_file(p, NULL);
    assert_non_null(strstr(saved, "\"encrypted\":false"));
    assert_non_null(strstr(saved, "\"token\":true"));
    /* another module, or the key no longer said to be in the token: refused */
    replace_in(p, g_module, "/usr/lib/x86_64-linux-gnu/evil.so");
    assert_int_equal(open_fails(pass, &ei), JWTKIT_ERR_BAD_SIGNATURE);
    assert_string_equal(ei.field, "auth");
    FILE *f = fopen(p, "w");
    fputs(saved, f);
    fclose(f);
    replace_in(p, "\"token\":true,", "");
    assert_int_equal(open_fails(pass, &ei), JWTKIT_ERR_BAD_SIGNATURE);
    f = fopen(p, "w");
    fputs(saved, f);
    fclose(f);
    free(saved);
  } else {
#ifdef JWTKIT_WITH_POSTGRES
    assert_int_equal(sql_count("SELECT count(*) FROM jwtkit_keyring WHERE doc LIKE '%\"token\":true%'"), 1);
    sql("UPDATE jwtkit_keyring SET doc = replace(doc, 'libsofthsm2.so', 'libother.so')");
    assert_int_equal(open_fails(NULL, &ei), JWTKIT_ERR_BAD_SIGNATURE);
    sql("UPDATE jwtkit_keyring SET doc = replace(doc, 'libother.so', 'libsofthsm2.so')");
    sql("UPDATE jwtkit_keyring SET doc = replace(doc, '\"token\":true,', '')");
    assert_int_equal(open_fails(NULL, &ei), JWTKIT_ERR_BAD_SIGNATURE);
#endif
  }
  if (g_pg != NULL) return;
  /* without a passphrase the permissions guard the document: a key whose
   * token flag is removed has no file either, and is refused as such */
  size_t ll = strlen(g_loc);
  assert_true(ll + 7 < sizeof g_loc);
  memcpy(g_loc + ll, "-plain", 7);
  make_ring(&alg, 1, NULL);
  char p[1100];
  snprintf(p, sizeof p, "%s/keyring.json", g_loc);
  replace_in(p, "\"token\":true,", "");
  assert_int_equal(open_fails(NULL, &ei), JWTKIT_ERR_MALFORMED);
  assert_non_null(strstr(ei.msg, "bad token key entry"));
  (void)kid;
}

/* ------------------------------------------------------------- faults */

static int g_logins;
static unsigned long count_logins(int ev, const jwtkit_key *key) {
  (void)key;
  if (ev == JK_P11_EV_LOGIN) g_logins++;
  return 0;
}

static void write_pin(const char *path, const char *pin) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fprintf(f, "%s\n", pin);
  fclose(f);
  assert_int_equal(chmod(path, 0600), 0);
}

static void test_faults(void **state) {
  (void)state;
  jwtkit_errinfo ei;
  jwtkit_alg alg = JWTKIT_ALG_ES256;
  jwtkit_keyring_timing t = timing();
  /* URIs that name a key, carry a PIN, or are not URIs */
  static const char *const bad[] = {"pkcs11:token=jwtkit;object=k1", "pkcs11:token=jwtkit;id=%01",
                                    "pkcs11:token=jwtkit?pin-value=86420", "/etc/jwtkit/key.pem", "pkcs11:token=a;x-y=1"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    jwtkit_keyring_secrets s = secrets(NULL, bad[i]);
    memset(&ei, 0, sizeof ei);
    assert_int_equal(jwtkit_keyring_init_ex(g_loc, &alg, 1, &t, &s, T0, NULL, NULL, &ei), JWTKIT_ERR_INVALID_ARG);
    assert_null(strstr(ei.msg, "86420"));
  }
  if (g_pg == NULL) assert_int_equal(access(g_loc, F_OK), -1); /* refused before anything was created */

  /* a wrong PIN at init: one login, one clear error, nothing stored */
  char wrong[300], uri[1200];
  snprintf(wrong, sizeof wrong, "%s/wrong.pin", g_dir);
  write_pin(wrong, "9999");
  snprintf(uri, sizeof uri, "pkcs11:token=jwtkit?pin-source=%s&module-path=%s", wrong, g_module);
  g_logins = 0;
  jk_p11_test_hook = count_logins;
  jwtkit_keyring_secrets s = secrets(NULL, uri);
  memset(&ei, 0, sizeof ei);
  assert_int_equal(jwtkit_keyring_init_ex(g_loc, &alg, 1, &t, &s, T0, NULL, NULL, &ei), JWTKIT_ERR_PASSPHRASE);
  assert_non_null(strstr(ei.msg, "refused the PIN (CKR_PIN_INCORRECT); not retried"));
  assert_int_equal(g_logins, 1);
  assert_int_equal(open_fails(NULL, &ei), JWTKIT_ERR_NOT_FOUND); /* no keyring was stored */

  /* a keyring whose PIN source says something else later: one login per open, one error */
  char pin2[300];
  snprintf(pin2, sizeof pin2, "%s/ring%d.pin", g_dir, g_case);
  write_pin(pin2, "1234");
  snprintf(uri, sizeof uri, "pkcs11:token=jwtkit?pin-source=%s&module-path=%s", pin2, g_module);
  s = secrets(NULL, uri);
  if (jwtkit_keyring_init_ex(g_loc, &alg, 1, &t, &s, T0, NULL, NULL, &ei) != JWTKIT_OK) fail_msg("init: %s", ei.msg);
  write_pin(pin2, "0000");
  g_logins = 0;
  assert_int_equal(open_fails(NULL, &ei), JWTKIT_ERR_PASSPHRASE);
  assert_non_null(strstr(ei.msg, "refused the PIN"));
  assert_non_null(strstr(ei.msg, "pin-source="));
  assert_int_equal(g_logins, 1);
  write_pin(pin2, "1234");
  jk_p11_test_hook = NULL;
  jwtkit_keyring *kr = open_ring(NULL);
  jwtkit_keyring_entry e;
  assert_int_equal(jwtkit_keyring_get(kr, 0, &e), JWTKIT_OK);
  char kid[64];
  snprintf(kid, sizeof kid, "%s", e.kid);
  jwtkit_keyring_free(kr);

  /* the token missing at open: an error naming it; a key file planted
   * where a file keyring would keep the key is never used */
  char away[300], here[300];
  snprintf(here, sizeof here, "%s/tokens", g_dir);
  snprintf(away, sizeof away, "%s/tokens.away", g_dir);
  if (g_pg == NULL) {
    char pem_path[1200];
    snprintf(pem_path, sizeof pem_path, "%s/keys/%s.pem", g_loc, kid);
    jwtkit_key *decoy = NULL;
    assert_int_equal(jwtkit_key_generate(&decoy, JWTKIT_ALG_ES256, 0, NULL), JWTKIT_OK);
    char *pem = NULL;
    size_t pl = 0;
    assert_int_equal(jwtkit_key_to_pem(decoy, 1, NULL, &pem, &pl), JWTKIT_OK);
    FILE *f = fopen(pem_path, "w");
    fwrite(pem, 1, pl, f);
    fclose(f);
    chmod(pem_path, 0600);
    jwtkit_free(pem);
    jwtkit_key_free(decoy);
  }
  assert_int_equal(rename(here, away), 0);
  jwtkit_err rc = open_fails(NULL, &ei);
  assert_true(rc == JWTKIT_ERR_NOT_FOUND || rc == JWTKIT_ERR_IO);
  if (strstr(ei.msg, "jwtkit") == NULL || strstr(ei.msg, "this keyring's keys are only in that token") == NULL)
    fail_msg("token missing: %s", ei.msg);
  /* its document alone still opens, and publishes, without the token */
  jwtkit_keyring *pub = NULL;
  jwtkit_keyring_secrets ps = secrets(NULL, NULL);
  if (jwtkit_keyring_open_public(&pub, g_loc, &ps, &ei) != JWTKIT_OK) fail_msg("open_public without the token: %s", ei.msg);
  char *jwks = NULL;
  assert_int_equal(jwtkit_keyring_jwks(pub, &jwks, NULL), JWTKIT_OK);
  assert_non_null(strstr(jwks, kid));
  jwtkit_key *none = NULL;
  assert_int_equal(jwtkit_keyring_signing_key(pub, alg, T0 + 1, &none, NULL), JWTKIT_ERR_NOT_FOUND);
  assert_int_equal(jwtkit_keyring_rotate(pub, T0 + 1, 1, NULL, NULL, &ei), JWTKIT_ERR_STATE);
  jwtkit_keyring_free(pub);
  assert_int_equal(rename(away, here), 0);
  kr = open_ring(NULL);
  char *jwks2 = NULL;
  assert_int_equal(jwtkit_keyring_jwks(kr, &jwks2, NULL), JWTKIT_OK);
  assert_string_equal(jwks, jwks2); /* the same JWKS with and without the token */
  jwtkit_free(jwks);
  jwtkit_free(jwks2);
  jwtkit_key *sk = NULL;
  assert_int_equal(jwtkit_keyring_signing_key(kr, alg, T0 + 1, &sk, NULL), JWTKIT_OK);
  assert_int_equal(jwtkit_key_is_pkcs11(sk), 1);

  /* no private key joins from elsewhere; public keys and new keys do */
  jwtkit_key *imp = NULL;
  assert_int_equal(jwtkit_key_generate(&imp, JWTKIT_ALG_ES256, 0, NULL), JWTKIT_OK);
  assert_int_equal(jwtkit_keyring_add(kr, imp, T0 + 2, NULL, NULL, &ei), JWTKIT_ERR_UNSUPPORTED);
  assert_non_null(strstr(ei.msg, "PKCS#11 token"));
  assert_int_equal(jwtkit_keyring_add_verify_only(kr, imp, T0 + 2, NULL, NULL, &ei), JWTKIT_OK);
  assert_int_equal(jwtkit_keyring_add_generated(kr, JWTKIT_ALG_ES384, T0 + 3, NULL, NULL, &ei), JWTKIT_OK);
  assert_int_equal(jwtkit_keyring_add_generated(kr, JWTKIT_ALG_HS256, T0 + 3, NULL, NULL, &ei), JWTKIT_ERR_INVALID_ARG);
  int saw_vo = 0, saw_new = 0;
  for (size_t i = 0; i < jwtkit_keyring_count(kr); i++) {
    jwtkit_keyring_get(kr, i, &e);
    if (e.verify_only) saw_vo = !e.in_token;
    if (e.alg == JWTKIT_ALG_ES384) saw_new = e.in_token && e.state == JWTKIT_KEY_PENDING && private_in_token(e.kid);
  }
  assert_true(saw_vo && saw_new);
  jwtkit_key_free(imp);
  no_private_material();

  /* revoke: out of the JWKS now, destroyed in the token once stored */
  assert_int_equal(jwtkit_keyring_revoke(kr, kid, T0 + 10, NULL, NULL, &ei), JWTKIT_OK);
  assert_int_equal(private_in_token(kid), 0);
  assert_int_equal(public_in_token(kid), 0);
  for (size_t i = 0; i < jwtkit_keyring_count(kr); i++) {
    jwtkit_keyring_get(kr, i, &e);
    if (strcmp(e.kid, kid) == 0) {
      assert_int_equal(e.state, JWTKIT_KEY_REVOKED);
      assert_int_equal(e.in_token, 0);
    }
  }
  assert_int_equal(jwtkit_keyring_signing_key(kr, alg, T0 + 11, &sk, NULL), JWTKIT_OK);
  assert_string_not_equal(jwtkit_key_kid(sk), kid);
  assert_int_equal(jwtkit_key_is_pkcs11(sk), 1);
  jwtkit_keyring_free(kr);

  /* a module that is not there (a directory keyring's document is guarded
   * by its permissions: changed here as its owner could) */
  if (g_pg == NULL) {
    char p[1100];
    snprintf(p, sizeof p, "%s/keyring.json", g_loc);
    replace_in(p, g_module, "/nonexistent/libsofthsm2.so");
    assert_int_equal(open_fails(NULL, &ei), JWTKIT_ERR_NOT_FOUND);
    assert_string_equal(ei.field, "module-path");
    assert_non_null(strstr(ei.msg, "/nonexistent/libsofthsm2.so"));
  }
}

/* ------------------------------------------------- allocation failures */

typedef struct hdr {
  size_t size;
  size_t pad;
} hdr;
static long g_fail_at = -1, g_count, g_allocs, g_frees;
static void *t_malloc(size_t n) {
  if (g_fail_at >= 0 && g_count++ == g_fail_at) return NULL;
  hdr *h = malloc(sizeof *h + n);
  if (h == NULL) return NULL;
  h->size = n;
  g_allocs++;
  return h + 1;
}
static void t_free(void *p) {
  if (p == NULL) return;
  g_frees++;
  free((hdr *)p - 1);
}
static void *t_realloc(void *p, size_t n) {
  if (p == NULL) return t_malloc(n);
  void *q = t_malloc(n);
  if (q == NULL) return NULL;
  hdr *h = (hdr *)p - 1;
  memcpy(q, p, h->size < n ? h->size : n);
  t_free(p);
  return q;
}

static void test_allocation_failures(void **state) {
  (void)state;
  const jwtkit_alg algs[] = {JWTKIT_ALG_ES256, JWTKIT_ALG_EDDSA};
  make_ring(algs, 2, NULL);
  /* a handle that stays open: its key keeps the module loaded and counts
   * the token's private keys */
  jwtkit_keyring *holder = open_ring(NULL);
  jwtkit_key *sk = NULL;
  assert_int_equal(jwtkit_keyring_signing_key(holder, JWTKIT_ALG_ES256, T0, &sk, NULL), JWTKIT_OK);
  static const jwtkit_allocator counting = {t_malloc, t_realloc, t_free};
  for (int which = 0; which < 2; which++) {
    long before = token_private_keys(sk), n;
    for (n = 0; n < 5000; n++) {
      g_fail_at = n;
      g_count = g_allocs = g_frees = 0;
      jwtkit_set_allocator(&counting);
      jwtkit_keyring *kr = NULL;
      jwtkit_errinfo ei;
      memset(&ei, 0x5a, sizeof ei);
      jwtkit_keyring_secrets s = secrets(NULL, NULL);
      jwtkit_err rc = jwtkit_keyring_open_ex(&kr, g_loc, &s, &ei);
      if (which == 1 && rc == JWTKIT_OK) {
        /* adding a key: the key made in the token goes again when the change fails */
        rc = jwtkit_keyring_add_generated(kr, JWTKIT_ALG_ES384, T0 + 5, NULL, NULL, &ei);
        if (rc == JWTKIT_OK) {
          jwtkit_keyring_free(kr);
          jwtkit_set_allocator(NULL);
          break; /* it was added: done (the count below checks the one key) */
        }
      }
      jwtkit_keyring_free(kr);
      jwtkit_set_allocator(NULL);
      if (rc == JWTKIT_OK) {
        if (g_allocs != g_frees) fail_msg("%d: complete run: %ld allocations, %ld frees", which, g_allocs, g_frees);
        if (g_count <= n) break;
        continue;
      }
      if (rc != JWTKIT_ERR_NOMEM || ei.code != JWTKIT_ERR_NOMEM)
        fail_msg("%d: failing allocation %ld gave %s (%s)", which, n, jwtkit_errname(rc), ei.msg);
      if (g_allocs != g_frees) fail_msg("%d: failing allocation %ld: %ld allocations, %ld frees", which, n, g_allocs, g_frees);
      if (which == 1 && token_private_keys(sk) != before)
        fail_msg("failing allocation %ld left a key in the token (%ld, was %ld)", n, token_private_keys(sk), before);
    }
    g_fail_at = -1;
    if (n < 10) fail_msg("%d: only %ld allocations?", which, n);
    print_message("token keyring %s: %ld allocations, each failed in turn\n", which ? "open + add" : "open", n);
    if (which == 1) assert_int_equal(token_private_keys(sk), before + 1);
  }
  jwtkit_keyring_free(holder);
}

/* ------------------------------------------------------------- setup */

static int run(const char *cmd) { return system(cmd) == 0 ? 0 : -1; }

static int setup_token(void) {
  const char *m = getenv("JWTKIT_SOFTHSM_MODULE");
  snprintf(g_module, sizeof g_module, "%s", m ? m : "/usr/lib/softhsm/libsofthsm2.so");
  if (access(g_module, R_OK) != 0 || run("command -v softhsm2-util >/dev/null 2>&1") != 0) return 77;
  snprintf(g_dir, sizeof g_dir, "%s/jwtkit-krp11-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (mkdtemp(g_dir) == NULL) return 1;
  char path[512];
  snprintf(path, sizeof path, "%s/tokens", g_dir);
  if (mkdir(path, 0700) != 0) return 1;
  snprintf(path, sizeof path, "%s/softhsm2.conf", g_dir);
  FILE *f = fopen(path, "w");
  if (f == NULL) return 1;
  fprintf(f, "directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n", g_dir);
  fclose(f);
  setenv("SOFTHSM2_CONF", path, 1);
  unsetenv("JWTKIT_PKCS11_PIN");
  if (run("softhsm2-util --init-token --free --label jwtkit --pin 1234 --so-pin 5678 >/dev/null") != 0) return 1;
  snprintf(g_pin, sizeof g_pin, "%s/user.pin", g_dir);
  f = fopen(g_pin, "w");
  if (f == NULL) return 1;
  fputs("1234\n", f);
  fclose(f);
  chmod(g_pin, 0600);
  snprintf(g_token, sizeof g_token, "pkcs11:token=jwtkit?module-path=%s&pin-source=%s", g_module, g_pin);
  return 0;
}

int main(void) {
  if (!jwtkit_pkcs11_available()) {
    printf("SKIP: built without PKCS#11 support\n");
    return 77;
  }
  g_pg = getenv("JWTKIT_TEST_PG_URL");
  if (g_pg != NULL && g_pg[0] == '\0') g_pg = NULL;
#ifndef JWTKIT_WITH_POSTGRES
  if (g_pg != NULL) {
    printf("SKIP: built without PostgreSQL support\n");
    return 77;
  }
#endif
  int s = setup_token();
  if (s == 77) {
    if (tu_ci()) {
      fprintf(stderr, "FAIL: SoftHSM2 not installed (%s, softhsm2-util); CI=true requires it\n", g_module);
      return 1;
    }
    printf("SKIP: SoftHSM2 not installed (%s, softhsm2-util)\n", g_module);
    return 77;
  }
  if (s != 0) {
    fprintf(stderr, "cannot set up a SoftHSM token in %s\n", g_dir);
    return 1;
  }
  for (int i = 0; i < 32; i++) g_kek[0][i] = (unsigned char)(0xa5 ^ i);
  printf("keyrings on %s\n", g_pg ? "PostgreSQL" : "directories");
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest all[] = {T(test_lifecycle), T(test_document), T(test_faults), T(test_allocation_failures)};
  const struct CMUnitTest pg[] = {T(test_lifecycle), T(test_document), T(test_faults)};
#undef T
  int rc = g_pg ? cmocka_run_group_tests_name("pg", pg, NULL, NULL) : cmocka_run_group_tests_name("dir", all, NULL, NULL);
  tu_rm_rf(g_dir);
  return rc;
}
