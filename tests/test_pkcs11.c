/* Keys in a PKCS#11 token, against SoftHSM2 in a temporary directory
 * (ctest label pkcs11).  Skipped (exit 77) when SoftHSM is not installed,
 * a failure under CI=true.
 *
 *   - every algorithm SoftHSM offers: generated in the token, signed there,
 *     verified with the exported public JWK; loaded again by URI;
 *   - the private key cannot be read: CKA_SENSITIVE, CKA_EXTRACTABLE as
 *     generated, CKA_VALUE / CKA_PRIVATE_EXPONENT refused with
 *     CKR_ATTRIBUTE_SENSITIVE, private PEM/JWK export UNSUPPORTED;
 *   - faults: wrong PIN (one login attempt, never retried), a locked PIN,
 *     no PIN, pin-source with mode 0644, pin-value=, a missing module, a
 *     token or object that is not there, an existing label;
 *   - the session pool: a bound of 1 makes a second signer wait (and fail
 *     after wait_ms when the first never lets go), the token's own session
 *     limit (CKR_SESSION_COUNT) lowers the bound, lost sessions and a
 *     logout are recovered with one retry, a removed token is looked up
 *     again;
 *   - N threads signing through one key;
 *   - every allocation of loading a token key failed in turn.
 * Faults a token cannot be made to show on purpose are injected with
 * jk_p11_test_hook (src/crypto/p11.h) at the call that would return them. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#include "crypto/p11.h"
#include "testutil.h"
#include "common/attr.h"

static char g_dir[256];
static char g_pin[320];     /* the PIN file (1234, mode 0600) */
static char g_module[256];

/* pkcs11:token=jwtkit;object=OBJ?pin-source=...&module-path=... */
static const char *uri_of(char *buf, size_t cap, const char *object) {
  snprintf(buf, cap, "pkcs11:token=jwtkit;object=%s?pin-source=%s&module-path=%s", object, g_pin, g_module);
  return buf;
}

/* ------------------------------------------------------------- the hook */

static pthread_mutex_t g_hmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_hcv = PTHREAD_COND_INITIALIZER;
static struct {
  int inject_ev;            /* event whose call fails ... */
  unsigned long inject_rv;  /* ... with this CKR */
  int inject_count;         /* ... this many times */
  int logins;               /* LOGIN events seen */
  int block_sign;           /* SIGN events that block until release */
  int blocked, waiting, release;
} H;

static unsigned long test_hook(int ev, const jwtkit_key *key) {
  (void)key;
  unsigned long rv = 0;
  pthread_mutex_lock(&g_hmu);
  if (ev == JK_P11_EV_LOGIN) H.logins++;
  if (ev == JK_P11_EV_WAIT) {
    H.waiting++;
    pthread_cond_broadcast(&g_hcv);
  }
  if (ev == JK_P11_EV_SIGN && H.block_sign > 0) {
    H.block_sign--;
    H.blocked++;
    pthread_cond_broadcast(&g_hcv);
    while (!H.release) pthread_cond_wait(&g_hcv, &g_hmu);
  }
  if (ev == H.inject_ev && H.inject_count > 0) {
    H.inject_count--;
    rv = H.inject_rv;
  }
  pthread_mutex_unlock(&g_hmu);
  return rv;
}

static void hook_reset(void) {
  pthread_mutex_lock(&g_hmu);
  memset(&H, 0, sizeof H);
  pthread_mutex_unlock(&g_hmu);
  jk_p11_test_hook = test_hook;
}

static void hook_inject(int ev, unsigned long rv, int count) {
  pthread_mutex_lock(&g_hmu);
  H.inject_ev = ev;
  H.inject_rv = rv;
  H.inject_count = count;
  pthread_mutex_unlock(&g_hmu);
}

static void hook_release(void) {
  pthread_mutex_lock(&g_hmu);
  H.release = 1;
  pthread_cond_broadcast(&g_hcv);
  pthread_mutex_unlock(&g_hmu);
}

/* Wait until *field reaches n (set by other threads through the hook); a
 * failure after 60 s, so a pool that never makes a signer wait cannot
 * hang the test (the blocked signer is released first). */
static void hook_wait_for(int *field, int n, const char *what) {
  struct timespec dl;
  clock_gettime(CLOCK_REALTIME, &dl);
  dl.tv_sec += 60;
  pthread_mutex_lock(&g_hmu);
  int r = 0;
  while (*field < n && r != ETIMEDOUT) r = pthread_cond_timedwait(&g_hcv, &g_hmu, &dl);
  int ok = *field >= n;
  pthread_mutex_unlock(&g_hmu);
  if (!ok) {
    hook_release();
    fail_msg("waited 60 s for: %s", what);
  }
}

/* After every test: no hook, nothing injected. */
static int hook_off(void **state) {
  (void)state;
  jk_p11_test_hook = NULL;
  jk_p11_reinit_ms = 1000;
  char away[300], here[300];
  snprintf(away, sizeof away, "%s/tokens.away", g_dir);
  snprintf(here, sizeof here, "%s/tokens", g_dir);
  if (access(away, F_OK) == 0) (void)rename(away, here); /* a failed test_token_away_and_back */
  hook_release();
  pthread_mutex_lock(&g_hmu);
  memset(&H, 0, sizeof H);
  pthread_mutex_unlock(&g_hmu);
  return 0;
}

static int hook_logins(void) {
  pthread_mutex_lock(&g_hmu);
  int n = H.logins;
  pthread_mutex_unlock(&g_hmu);
  return n;
}

/* -------------------------------------------------------------- helpers */

/* Sign with key, verify with a key imported from its public JWK; a
 * changed signature must fail. */
static void sign_and_verify(jwtkit_key *key, const char *what) {
  char *jwk = NULL, *tok = NULL;
  size_t jl = 0, tl = 0;
  jwtkit_key *pub = NULL;
  jwtkit_errinfo e = {0};
  assert_int_equal(jwtkit_key_to_jwk(key, 0, &jwk, &jl), JWTKIT_OK);
  if (jwtkit_key_from_jwk(&pub, jwtkit_key_alg(key), jwk, jl, &e) != JWTKIT_OK) fail_msg("%s: public JWK: %s", what, e.msg);
  assert_int_equal(jwtkit_key_can_sign(pub), 0);
  const char *claims = "{\"sub\":\"token-key\",\"exp\":4102444800}";
  if (jwtkit_sign(key, NULL, claims, strlen(claims), &tok, &tl, &e) != JWTKIT_OK) fail_msg("%s: sign: %s", what, e.msg);
  jwtkit_verifier *v = tu_verifier(pub);
  if (jwtkit_verify(v, tok, tl, NULL, &e) != JWTKIT_OK) fail_msg("%s: verify: %s", what, e.msg);
  /* flip a bit of the signature's first character */
  char *dot = strrchr(tok, '.');
  dot[1] = dot[1] == 'A' ? 'B' : 'A';
  jwtkit_err r = jwtkit_verify(v, tok, tl, NULL, NULL);
  if (r != JWTKIT_ERR_BAD_SIGNATURE && r != JWTKIT_ERR_MALFORMED) fail_msg("%s: a changed signature gave %s", what, jwtkit_errname(r));
  jwtkit_verifier_free(v);
  jwtkit_free(tok);
  jwtkit_free(jwk);
  jwtkit_key_free(pub);
}

static jwtkit_key *load(const char *object, jwtkit_alg alg, const jwtkit_pkcs11_opts *opts) {
  char u[1024];
  jwtkit_key *k = NULL;
  jwtkit_errinfo e = {0};
  if (jwtkit_key_from_pkcs11_opts(&k, alg, uri_of(u, sizeof u, object), opts, &e) != JWTKIT_OK)
    fail_msg("load %s: %s: %s", object, jwtkit_errname(e.code), e.msg);
  return k;
}

static jwtkit_key *generate(const char *object, jwtkit_alg alg, unsigned bits) {
  char u[1024];
  jwtkit_key *k = NULL;
  jwtkit_errinfo e = {0};
  if (jwtkit_pkcs11_generate(&k, alg, bits, uri_of(u, sizeof u, object), &e) != JWTKIT_OK)
    fail_msg("generate %s: %s: %s", object, jwtkit_errname(e.code), e.msg);
  return k;
}

/* The module instance and slot of key, and a session of our own on it. */
static CK_FUNCTION_LIST *module_of(jwtkit_key *key, CK_SLOT_ID *slot) {
  void *fl = NULL;
  unsigned long s = 0;
  assert_int_equal(jk_p11_test_module(key, &fl, &s), 0);
  *slot = s;
  return fl;
}

static jwtkit_err expect_fail(const char *uri, jwtkit_err want, const char *needle, jwtkit_errinfo *e) {
  jwtkit_key *k = (jwtkit_key *)&k;
  memset(e, 0, sizeof *e);
  jwtkit_err rc = jwtkit_key_from_pkcs11(&k, JWTKIT_ALG_UNSPEC, uri, e);
  if (rc != want) fail_msg("%s: got %s (%s), want %s", uri, jwtkit_errname(rc), e->msg, jwtkit_errname(want));
  if (k != NULL) fail_msg("%s: a failed load left a key", uri);
  if (e->code != want) fail_msg("%s: errinfo.code %s", uri, jwtkit_errname(e->code));
  if (needle != NULL && strstr(e->msg, needle) == NULL) fail_msg("%s: message \"%s\" lacks \"%s\"", uri, e->msg, needle);
  return rc;
}

/* --------------------------------------------------------------- tests */

static void test_roundtrip_every_alg(void **state) {
  (void)state;
  static const struct {
    const char *name;
    jwtkit_alg alg;
    unsigned bits;
    const char *curve;
  } cases[] = {
      {"rt-es256", JWTKIT_ALG_ES256, 0, "P-256"},   {"rt-es384", JWTKIT_ALG_ES384, 0, "P-384"},
      {"rt-es512", JWTKIT_ALG_ES512, 0, "P-521"},   {"rt-rs256", JWTKIT_ALG_RS256, 0, NULL},
      {"rt-rs384", JWTKIT_ALG_RS384, 3072, NULL},   {"rt-rs512", JWTKIT_ALG_RS512, 0, NULL},
      {"rt-ps256", JWTKIT_ALG_PS256, 0, NULL},      {"rt-ps384", JWTKIT_ALG_PS384, 0, NULL},
      {"rt-ps512", JWTKIT_ALG_PS512, 0, NULL},      {"rt-ed25519", JWTKIT_ALG_EDDSA, 0, "Ed25519"},
      {"rt-ed448", JWTKIT_ALG_EDDSA, 448, "Ed448"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    jwtkit_key *k = generate(cases[i].name, cases[i].alg, cases[i].bits);
    assert_int_equal(jwtkit_key_alg(k), cases[i].alg);
    assert_int_equal(jwtkit_key_can_sign(k), 1);
    assert_int_equal(jwtkit_key_is_pkcs11(k), 1);
    if (cases[i].curve != NULL) assert_string_equal(jwtkit_key_curve(k), cases[i].curve);
    if (cases[i].bits == 3072) assert_int_equal(jwtkit_key_bits(k), 3072);
    /* the kid is the thumbprint, and the URI carries it as id= */
    char tp[44];
    assert_int_equal(jwtkit_key_thumbprint(k, tp), JWTKIT_OK);
    assert_string_equal(jwtkit_key_kid(k), tp);
    char *kuri = NULL;
    assert_int_equal(jwtkit_pkcs11_key_uri(k, &kuri, NULL), JWTKIT_OK);
    assert_non_null(strstr(kuri, ";id=%"));
    sign_and_verify(k, cases[i].name);

    /* loaded again by its label and by the printed URI: the same key */
    jwtkit_key *again = load(cases[i].name, cases[i].alg, NULL);
    assert_int_equal(jwtkit_key_equal_public(k, again), 1);
    assert_null(jwtkit_key_kid(again));
    sign_and_verify(again, cases[i].name);
    jwtkit_key *by_uri = NULL;
    jwtkit_errinfo e = {0};
    if (jwtkit_key_from_pkcs11(&by_uri, cases[i].alg, kuri, &e) != JWTKIT_OK) fail_msg("%s: %s", kuri, e.msg);
    assert_int_equal(jwtkit_key_equal_public(k, by_uri), 1);
    /* the public half alone, without a PIN */
    char pu[1024];
    snprintf(pu, sizeof pu, "pkcs11:token=jwtkit;object=%s?module-path=%s", cases[i].name, g_module);
    jwtkit_key *pub = NULL;
    unsetenv("JWTKIT_PKCS11_PIN");
    if (jwtkit_pkcs11_public_key(&pub, cases[i].alg, pu, &e) != JWTKIT_OK) fail_msg("%s: public: %s", pu, e.msg);
    assert_int_equal(jwtkit_key_can_sign(pub), 0);
    assert_int_equal(jwtkit_key_is_pkcs11(pub), 0);
    assert_int_equal(jwtkit_key_equal_public(k, pub), 1);
    jwtkit_key_free(pub);
    jwtkit_key_free(by_uri);
    jwtkit_key_free(again);
    jwtkit_free(kuri);
    jwtkit_key_free(k);
  }
}

static void test_private_key_stays_in_token(void **state) {
  (void)state;
  static const struct {
    const char *name;
    jwtkit_alg alg;
    CK_ATTRIBUTE_TYPE secret;
  } cases[] = {{"ex-ec", JWTKIT_ALG_ES256, CKA_VALUE},
               {"ex-rsa", JWTKIT_ALG_RS256, CKA_PRIVATE_EXPONENT},
               {"ex-ed", JWTKIT_ALG_EDDSA, CKA_VALUE}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    jwtkit_key *k = generate(cases[i].name, cases[i].alg, 0);
    char *out = NULL;
    size_t n = 0;
    assert_int_equal(jwtkit_key_to_pem(k, 1, NULL, &out, &n), JWTKIT_ERR_UNSUPPORTED);
    assert_null(out);
    assert_int_equal(jwtkit_key_to_pem(k, 1, "pass phrase", &out, &n), JWTKIT_ERR_UNSUPPORTED);
    assert_int_equal(jwtkit_key_to_jwk(k, 1, &out, &n), JWTKIT_ERR_UNSUPPORTED);
    assert_null(out);
    assert_int_equal(jwtkit_key_to_pem(k, 0, NULL, &out, &n), JWTKIT_OK); /* the public half exports */
    jwtkit_free(out);

    /* ask the token itself, in a session of our own (the key's login holds) */
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *fl = module_of(k, &slot);
    CK_SESSION_HANDLE h;
    assert_int_equal(fl->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_OK);
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE t[2] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_LABEL, JK_UNCONST(cases[i].name), strlen(cases[i].name)}};
    CK_OBJECT_HANDLE o[2];
    CK_ULONG found = 0;
    assert_int_equal(fl->C_FindObjectsInit(h, t, 2), CKR_OK);
    assert_int_equal(fl->C_FindObjects(h, o, 2, &found), CKR_OK);
    assert_int_equal(fl->C_FindObjectsFinal(h), CKR_OK);
    assert_int_equal(found, 1);
    CK_BBOOL sensitive = CK_FALSE, extractable = CK_TRUE, always = CK_FALSE, never = CK_FALSE, tok = CK_FALSE;
    CK_ATTRIBUTE flags[5] = {{CKA_SENSITIVE, &sensitive, sizeof sensitive},
                             {CKA_EXTRACTABLE, &extractable, sizeof extractable},
                             {CKA_ALWAYS_SENSITIVE, &always, sizeof always},
                             {CKA_NEVER_EXTRACTABLE, &never, sizeof never},
                             {CKA_TOKEN, &tok, sizeof tok}};
    assert_int_equal(fl->C_GetAttributeValue(h, o[0], flags, 5), CKR_OK);
    assert_int_equal(sensitive, CK_TRUE);
    assert_int_equal(extractable, CK_FALSE);
    assert_int_equal(always, CK_TRUE);
    assert_int_equal(never, CK_TRUE);
    assert_int_equal(tok, CK_TRUE);
    unsigned char buf[1024];
    CK_ATTRIBUTE secret = {cases[i].secret, buf, sizeof buf};
    CK_RV rv = fl->C_GetAttributeValue(h, o[0], &secret, 1);
    if (rv != CKR_ATTRIBUTE_SENSITIVE) fail_msg("%s: reading the private value gave 0x%lx", cases[i].name, (unsigned long)rv);
    assert_int_equal(secret.ulValueLen, CK_UNAVAILABLE_INFORMATION);
    assert_int_equal(fl->C_CloseSession(h), CKR_OK);
    jwtkit_key_free(k);
  }
}

static void test_pin_faults(void **state) {
  (void)state;
  jwtkit_key *k = generate("pin-key", JWTKIT_ALG_ES256, 0);
  jwtkit_key_free(k);
  char u[1024], bad[320], wide[320];
  jwtkit_errinfo e;
  snprintf(bad, sizeof bad, "%s/wrong.pin", g_dir);
  snprintf(wide, sizeof wide, "%s/wide.pin", g_dir);
  FILE *f = fopen(bad, "w");
  fputs("9999\n", f);
  fclose(f);
  chmod(bad, 0600);
  f = fopen(wide, "w");
  fputs("1234\n", f);
  fclose(f);
  chmod(wide, 0644);

  /* wrong PIN: refused, said so, and tried exactly once */
  hook_reset();
  snprintf(u, sizeof u, "pkcs11:token=jwtkit;object=pin-key?pin-source=%s&module-path=%s", bad, g_module);
  expect_fail(u, JWTKIT_ERR_PASSPHRASE, "refused the PIN (CKR_PIN_INCORRECT); not retried", &e);
  assert_string_equal(e.field, "pin");
  assert_int_equal(hook_logins(), 1);
  /* the same wrong PIN through the environment */
  hook_reset();
  setenv("JWTKIT_PKCS11_PIN", "0000", 1);
  snprintf(u, sizeof u, "pkcs11:token=jwtkit;object=pin-key?module-path=%s", g_module);
  expect_fail(u, JWTKIT_ERR_PASSPHRASE, "CKR_PIN_INCORRECT", &e);
  assert_int_equal(hook_logins(), 1);
  /* ... and the right one */
  setenv("JWTKIT_PKCS11_PIN", "1234", 1);
  assert_int_equal(jwtkit_key_from_pkcs11(&k, JWTKIT_ALG_ES256, u, &e), JWTKIT_OK);
  jwtkit_key_free(k);
  unsetenv("JWTKIT_PKCS11_PIN");
  /* no PIN at all: what to do, and no login attempted */
  hook_reset();
  expect_fail(u, JWTKIT_ERR_PASSPHRASE, "pin-source=FILE", &e);
  assert_non_null(strstr(e.msg, "JWTKIT_PKCS11_PIN"));
  assert_int_equal(hook_logins(), 0);
  /* a PIN file others can read: refused before the token is asked */
  snprintf(u, sizeof u, "pkcs11:token=jwtkit;object=pin-key?pin-source=%s&module-path=%s", wide, g_module);
  expect_fail(u, JWTKIT_ERR_PERMISSION, "chmod 600", &e);
  assert_non_null(strstr(e.msg, "0644"));
  assert_int_equal(hook_logins(), 0);
  /* pin-value=: refused, and the PIN is not repeated in the message */
  snprintf(u, sizeof u, "pkcs11:token=jwtkit;object=pin-key?pin-value=8642&module-path=%s", g_module);
  expect_fail(u, JWTKIT_ERR_INVALID_ARG, "pin-source=FILE", &e);
  assert_null(strstr(e.msg, "8642"));
  assert_int_equal(hook_logins(), 0);
  /* a locked PIN (injected: SoftHSM does not lock): said so */
  hook_reset();
  hook_inject(JK_P11_EV_LOGIN, CKR_PIN_LOCKED, 1);
  expect_fail(uri_of(u, sizeof u, "pin-key"), JWTKIT_ERR_PASSPHRASE, "locked", &e);
  assert_non_null(strstr(e.msg, "security officer"));
  assert_int_equal(hook_logins(), 1);
  jk_p11_test_hook = NULL;
}

/* A PIN refused at a re-login is never tried again by that key. */
static void test_refused_pin_is_sticky(void **state) {
  (void)state;
  jwtkit_key *k = generate("sticky", JWTKIT_ALG_ES256, 0);
  jwtkit_key_free(k);
  k = load("sticky", JWTKIT_ALG_ES256, NULL);
  hook_reset();
  CK_SLOT_ID slot;
  CK_FUNCTION_LIST *fl = module_of(k, &slot);
  assert_int_equal(fl->C_CloseAllSessions(slot), CKR_OK); /* the token forgets the login */
  hook_inject(JK_P11_EV_LOGIN, CKR_PIN_INCORRECT, 1);
  jwtkit_errinfo e = {0};
  char *tok = NULL;
  assert_int_equal(jwtkit_sign(k, NULL, "{}", 2, &tok, NULL, &e), JWTKIT_ERR_PASSPHRASE);
  assert_non_null(strstr(e.msg, "not retried"));
  assert_int_equal(hook_logins(), 1);
  for (int i = 0; i < 3; i++) {
    memset(&e, 0, sizeof e);
    assert_int_equal(jwtkit_sign(k, NULL, "{}", 2, &tok, NULL, &e), JWTKIT_ERR_PASSPHRASE);
    assert_non_null(strstr(e.msg, "CKR_PIN_INCORRECT"));
  }
  assert_int_equal(hook_logins(), 1); /* fail fast: the token was not asked again */
  jk_p11_stats st;
  assert_int_equal(jk_p11_get_stats(k, &st), 0);
  assert_int_equal(st.logins, 2); /* the first login, and the refused one */
  jk_p11_test_hook = NULL;
  jwtkit_key_free(k);
}

/* A PIN the token refused is not tried again by any key of the process
 * while the module stays loaded (here by a key that logged in fine): an
 * issuer opening its keyring again and again cannot lock the token. */
static void test_refused_pin_is_remembered(void **state) {
  (void)state;
  jwtkit_key *g = generate("remember", JWTKIT_ALG_ES256, 0);
  jwtkit_key_free(g);
  jwtkit_key *holder = load("remember", JWTKIT_ALG_ES256, NULL);
  char bad[320], u[1024];
  snprintf(bad, sizeof bad, "%s/remember.pin", g_dir);
  FILE *f = fopen(bad, "w");
  fputs("4321\n", f);
  fclose(f);
  chmod(bad, 0600);
  snprintf(u, sizeof u, "pkcs11:token=jwtkit;object=remember?pin-source=%s&module-path=%s", bad, g_module);
  /* the session the holder has keeps the token logged in: close them all,
   * so that the next keys have to log in */
  CK_SLOT_ID slot;
  CK_FUNCTION_LIST *fl = module_of(holder, &slot);
  assert_int_equal(fl->C_CloseAllSessions(slot), CKR_OK);
  hook_reset();
  jwtkit_errinfo e;
  expect_fail(u, JWTKIT_ERR_PASSPHRASE, "refused the PIN (CKR_PIN_INCORRECT)", &e);
  assert_int_equal(hook_logins(), 1);
  for (int i = 0; i < 3; i++) {
    expect_fail(u, JWTKIT_ERR_PASSPHRASE, "refused this PIN before (CKR_PIN_INCORRECT); not tried again", &e);
    assert_string_equal(e.field, "pin");
  }
  assert_int_equal(hook_logins(), 1);
  /* another PIN (the file fixed) is tried */
  f = fopen(bad, "w");
  fputs("1234\n", f);
  fclose(f);
  jwtkit_key *k = NULL;
  if (jwtkit_key_from_pkcs11(&k, JWTKIT_ALG_ES256, u, &e) != JWTKIT_OK) fail_msg("fixed PIN: %s", e.msg);
  assert_int_equal(hook_logins(), 2);
  jwtkit_key_free(k);
  jk_p11_test_hook = NULL;
  jwtkit_key_free(holder);
}

static void test_not_found_faults(void **state) {
  (void)state;
  jwtkit_key *k = generate("there", JWTKIT_ALG_ES256, 0);
  jwtkit_key_free(k);
  char u[1024];
  jwtkit_errinfo e;
  /* a module that is not there */
  snprintf(u, sizeof u, "pkcs11:token=jwtkit;object=there?pin-source=%s&module-path=%s/no-such-module.so", g_pin, g_dir);
  expect_fail(u, JWTKIT_ERR_NOT_FOUND, "no-such-module.so", &e);
  assert_non_null(strstr(e.msg, "module-path="));
  assert_string_equal(e.field, "module-path");
  /* a relative module path is refused (loading a module runs its code) */
  expect_fail("pkcs11:token=jwtkit;object=there?module-path=libsofthsm2.so", JWTKIT_ERR_INVALID_ARG, "absolute", &e);
  /* a token that is not there: the tokens seen are listed */
  snprintf(u, sizeof u, "pkcs11:token=elsewhere;object=there?pin-source=%s&module-path=%s", g_pin, g_module);
  expect_fail(u, JWTKIT_ERR_NOT_FOUND, "no token matches token=elsewhere; tokens seen: \"jwtkit\"", &e);
  snprintf(u, sizeof u, "pkcs11:token=jwtkit;serial=0000;object=there?pin-source=%s&module-path=%s", g_pin, g_module);
  expect_fail(u, JWTKIT_ERR_NOT_FOUND, "tokens seen", &e);
  /* an object that is not there */
  expect_fail(uri_of(u, sizeof u, "not-there"), JWTKIT_ERR_NOT_FOUND, "no private key object=not-there", &e);
  /* no object named at all */
  snprintf(u, sizeof u, "pkcs11:token=jwtkit?pin-source=%s&module-path=%s", g_pin, g_module);
  expect_fail(u, JWTKIT_ERR_INVALID_ARG, "names no key", &e);
  /* the wrong algorithm for the key */
  jwtkit_key *x = NULL;
  assert_int_equal(jwtkit_key_from_pkcs11(&x, JWTKIT_ALG_ES384, uri_of(u, sizeof u, "there"), &e), JWTKIT_ERR_INVALID_KEY);
  assert_null(x);
  assert_int_equal(jwtkit_key_from_pkcs11(&x, JWTKIT_ALG_HS256, u, &e), JWTKIT_ERR_INVALID_KEY);
  /* type=public cannot sign */
  snprintf(u, sizeof u, "pkcs11:token=jwtkit;object=there;type=public?pin-source=%s&module-path=%s", g_pin, g_module);
  expect_fail(u, JWTKIT_ERR_INVALID_ARG, "private key", &e);
  /* generating over an existing label */
  assert_int_equal(jwtkit_pkcs11_generate(&x, JWTKIT_ALG_ES256, 0, uri_of(u, sizeof u, "there"), &e), JWTKIT_ERR_STATE);
  assert_non_null(strstr(e.msg, "already holds an object labelled \"there\""));
  assert_null(x);
  /* HMAC keys are not made in tokens */
  assert_int_equal(jwtkit_pkcs11_generate(&x, JWTKIT_ALG_HS256, 0, uri_of(u, sizeof u, "h"), &e), JWTKIT_ERR_UNSUPPORTED);
}

static void test_destroy(void **state) {
  (void)state;
  char u[1024];
  jwtkit_errinfo e = {0};
  jwtkit_key *k = generate("doomed", JWTKIT_ALG_ES256, 0);
  char *kuri = NULL;
  assert_int_equal(jwtkit_pkcs11_key_uri(k, &kuri, NULL), JWTKIT_OK);
  jwtkit_key_free(k);
  /* by the canonical URI (label and id) */
  if (jwtkit_pkcs11_destroy(kuri, &e) != JWTKIT_OK) fail_msg("destroy: %s", e.msg);
  expect_fail(kuri, JWTKIT_ERR_NOT_FOUND, "no private key", &e);
  assert_int_equal(jwtkit_pkcs11_destroy(kuri, &e), JWTKIT_ERR_NOT_FOUND);
  /* the public object went too: the label can be used again */
  k = generate("doomed", JWTKIT_ALG_EDDSA, 0);
  jwtkit_key_free(k);
  assert_int_equal(jwtkit_pkcs11_destroy(uri_of(u, sizeof u, "doomed"), &e), JWTKIT_OK);
  jwtkit_free(kuri);
}

/* Destroy the public key object labelled `label`, through key's module. */
static void destroy_public(jwtkit_key *key, const char *label) {
  CK_SLOT_ID slot;
  CK_FUNCTION_LIST *fl = module_of(key, &slot);
  CK_SESSION_HANDLE h;
  assert_int_equal(fl->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h), CKR_OK);
  CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
  CK_ATTRIBUTE t[2] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_LABEL, JK_UNCONST(label), strlen(label)}};
  CK_OBJECT_HANDLE o[2];
  CK_ULONG n = 0;
  assert_int_equal(fl->C_FindObjectsInit(h, t, 2), CKR_OK);
  assert_int_equal(fl->C_FindObjects(h, o, 2, &n), CKR_OK);
  assert_int_equal(fl->C_FindObjectsFinal(h), CKR_OK);
  assert_int_equal(n, 1);
  assert_int_equal(fl->C_DestroyObject(h, o[0]), CKR_OK);
  assert_int_equal(fl->C_CloseSession(h), CKR_OK);
}

/* Keys whose public key object is gone: RSA keys carry their public
 * members on the private object (read after a login), EC keys do not. */
static void test_public_object_missing(void **state) {
  (void)state;
  jwtkit_key *rsa = generate("nopub-rsa", JWTKIT_ALG_PS256, 0);
  jwtkit_key *ec = generate("nopub-ec", JWTKIT_ALG_ES256, 0);
  destroy_public(rsa, "nopub-rsa");
  destroy_public(ec, "nopub-ec");
  char u[1024], pu[1024];
  jwtkit_errinfo e = {0};
  jwtkit_key *k = NULL;
  /* the signing key: RSA still loads (and signs: its public half came from the private object) */
  k = load("nopub-rsa", JWTKIT_ALG_PS256, NULL);
  assert_int_equal(jwtkit_key_equal_public(k, rsa), 1);
  sign_and_verify(k, "RSA without public object");
  jwtkit_key_free(k);
  expect_fail(uri_of(u, sizeof u, "nopub-ec"), JWTKIT_ERR_NOT_FOUND, "has no public key object", &e);
  /* the public half: without a PIN it cannot be found, with one it can (RSA) */
  snprintf(pu, sizeof pu, "pkcs11:token=jwtkit;object=nopub-rsa?module-path=%s", g_module);
  assert_int_equal(jwtkit_pkcs11_public_key(&k, JWTKIT_ALG_PS256, pu, &e), JWTKIT_ERR_NOT_FOUND);
  assert_non_null(strstr(e.msg, "needs the user PIN"));
  assert_null(k);
  if (jwtkit_pkcs11_public_key(&k, JWTKIT_ALG_PS256, uri_of(u, sizeof u, "nopub-rsa"), &e) != JWTKIT_OK)
    fail_msg("public half of nopub-rsa: %s", e.msg);
  assert_int_equal(jwtkit_key_equal_public(k, rsa), 1);
  assert_int_equal(jwtkit_key_can_sign(k), 0);
  jwtkit_key_free(k);
  k = (jwtkit_key *)&k;
  assert_int_equal(jwtkit_pkcs11_public_key(&k, JWTKIT_ALG_ES256, uri_of(u, sizeof u, "nopub-ec"), &e), JWTKIT_ERR_NOT_FOUND);
  assert_null(k);
  jwtkit_key_free(rsa);
  jwtkit_key_free(ec);
  /* what is left goes with destroy */
  assert_int_equal(jwtkit_pkcs11_destroy(uri_of(u, sizeof u, "nopub-ec"), &e), JWTKIT_OK);
  expect_fail(u, JWTKIT_ERR_NOT_FOUND, "no private key", &e);
}

static void *sign_thread(void *arg) {
  jwtkit_key *k = arg;
  jwtkit_errinfo *e = calloc(1, sizeof *e);
  char *tok = NULL;
  if (jwtkit_sign(k, NULL, "{\"sub\":\"t\"}", 11, &tok, NULL, e) == JWTKIT_OK) e->code = JWTKIT_OK;
  jwtkit_free(tok);
  return e;
}

/* A bound of one session: a second signer waits for it, then signs. */
static void test_pool_bound_waits(void **state) {
  (void)state;
  jwtkit_key *g = generate("pool", JWTKIT_ALG_ES256, 0);
  jwtkit_key_free(g);
  jwtkit_pkcs11_opts o = {1, 0};
  jwtkit_key *k = load("pool", JWTKIT_ALG_ES256, &o);
  hook_reset();
  H.block_sign = 1;
  pthread_t a, b;
  assert_int_equal(pthread_create(&a, NULL, sign_thread, k), 0);
  hook_wait_for(&H.blocked, 1, "the first signer inside C_Sign"); /* a holds the only session */
  assert_int_equal(pthread_create(&b, NULL, sign_thread, k), 0);
  hook_wait_for(&H.waiting, 1, "the second signer waiting"); /* b found it busy */
  hook_release();
  void *ra, *rb;
  pthread_join(a, &ra);
  pthread_join(b, &rb);
  jwtkit_errinfo *ea = ra, *eb = rb;
  if (ea->code != JWTKIT_OK || eb->code != JWTKIT_OK) fail_msg("a: %s / b: %s", ea->msg, eb->msg);
  free(ra);
  free(rb);
  jk_p11_stats st;
  assert_int_equal(jk_p11_get_stats(k, &st), 0);
  assert_int_equal(st.opens, 1); /* never a second session */
  assert_int_equal(st.waits, 1);
  assert_int_equal(st.open_now, 1);
  jk_p11_test_hook = NULL;
  jwtkit_key_free(k);
}

/* The first signer never lets go: the second fails cleanly after wait_ms. */
static void test_pool_wait_is_bounded(void **state) {
  (void)state;
  jwtkit_pkcs11_opts o = {1, 100};
  jwtkit_key *k = load("pool", JWTKIT_ALG_ES256, &o);
  hook_reset();
  H.block_sign = 1;
  pthread_t a, b;
  assert_int_equal(pthread_create(&a, NULL, sign_thread, k), 0);
  hook_wait_for(&H.blocked, 1, "the first signer inside C_Sign");
  assert_int_equal(pthread_create(&b, NULL, sign_thread, k), 0);
  void *ra, *rb;
  pthread_join(b, &rb); /* a is still blocked: b can only time out */
  hook_release();
  pthread_join(a, &ra);
  jwtkit_errinfo *ea = ra, *eb = rb;
  assert_int_equal(ea->code, JWTKIT_OK);
  assert_int_equal(eb->code, JWTKIT_ERR_IO);
  if (strstr(eb->msg, "all 1 sessions of the key") == NULL || strstr(eb->msg, "100 ms") == NULL)
    fail_msg("timeout message: %s", eb->msg);
  free(ra);
  free(rb);
  jk_p11_test_hook = NULL;
  jwtkit_key_free(k);
}

/* The token's own session limit: the key lowers its bound and waits. */
static void test_token_session_limit(void **state) {
  (void)state;
  jwtkit_pkcs11_opts o = {4, 0};
  jwtkit_key *k = load("pool", JWTKIT_ALG_ES256, &o);
  hook_reset();
  H.block_sign = 1;
  pthread_t a, b;
  assert_int_equal(pthread_create(&a, NULL, sign_thread, k), 0);
  hook_wait_for(&H.blocked, 1, "the first signer inside C_Sign");
  hook_inject(JK_P11_EV_OPEN, CKR_SESSION_COUNT, 1); /* b's new session is refused */
  assert_int_equal(pthread_create(&b, NULL, sign_thread, k), 0);
  hook_wait_for(&H.waiting, 1, "the second signer waiting after CKR_SESSION_COUNT");
  hook_release();
  void *ra, *rb;
  pthread_join(a, &ra);
  pthread_join(b, &rb);
  jwtkit_errinfo *ea = ra, *eb = rb;
  if (ea->code != JWTKIT_OK || eb->code != JWTKIT_OK) fail_msg("a: %s / b: %s", ea->msg, eb->msg);
  free(ra);
  free(rb);
  jk_p11_stats st;
  assert_int_equal(jk_p11_get_stats(k, &st), 0);
  assert_int_equal(st.max_sessions, 1);
  assert_int_equal(st.opens, 1);
  jwtkit_key_free(k);
  /* with no session open at all, the same refusal is an error that says so */
  hook_reset();
  hook_inject(JK_P11_EV_OPEN, CKR_SESSION_COUNT, 1);
  jwtkit_errinfo e;
  char u[1024];
  expect_fail(uri_of(u, sizeof u, "pool"), JWTKIT_ERR_IO, "CKR_SESSION_COUNT", &e);
  jk_p11_test_hook = NULL;
}

/* Sessions lost behind the key's back are replaced, with one retry. */
static void test_lost_sessions(void **state) {
  (void)state;
  jwtkit_key *k = load("pool", JWTKIT_ALG_ES256, NULL);
  CK_SLOT_ID slot;
  CK_FUNCTION_LIST *fl = module_of(k, &slot);
  jk_p11_stats st0, st;
  assert_int_equal(jk_p11_get_stats(k, &st0), 0);
  /* every session closed (and with them the login) */
  assert_int_equal(fl->C_CloseAllSessions(slot), CKR_OK);
  sign_and_verify(k, "after C_CloseAllSessions");
  assert_int_equal(jk_p11_get_stats(k, &st), 0);
  assert_int_equal(st.retries, st0.retries + 1);
  assert_int_equal(st.opens, st0.opens + 1);
  assert_int_equal(st.logins, st0.logins + 1);
  /* logged out by someone else */
  CK_SESSION_HANDLE h;
  assert_int_equal(fl->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_OK);
  assert_int_equal(fl->C_Logout(h), CKR_OK);
  sign_and_verify(k, "after C_Logout");
  st0 = st;
  assert_int_equal(jk_p11_get_stats(k, &st), 0);
  assert_int_equal(st.retries, st0.retries + 1);
  assert_int_equal(st.logins, st0.logins + 1);
  assert_int_equal(fl->C_CloseSession(h), CKR_OK);
  /* the token "removed" and back (injected): looked up again, signs */
  hook_reset();
  hook_inject(JK_P11_EV_SIGN, CKR_DEVICE_REMOVED, 1);
  sign_and_verify(k, "after CKR_DEVICE_REMOVED");
  st0 = st;
  assert_int_equal(jk_p11_get_stats(k, &st), 0);
  assert_int_equal(st.retries, st0.retries + 1);
  hook_inject(JK_P11_EV_SIGN, CKR_USER_NOT_LOGGED_IN, 1);
  sign_and_verify(k, "after CKR_USER_NOT_LOGGED_IN");
  /* still away on the retry: one retry only, then a clear error */
  hook_inject(JK_P11_EV_SIGN, CKR_TOKEN_NOT_PRESENT, 2);
  jwtkit_errinfo e = {0};
  char *tok = NULL;
  assert_int_equal(jwtkit_sign(k, NULL, "{}", 2, &tok, NULL, &e), JWTKIT_ERR_IO);
  if (strstr(e.msg, "CKR_TOKEN_NOT_PRESENT (after re-opening the session)") == NULL) fail_msg("%s", e.msg);
  /* and an error that is not a lost session is not retried */
  st0 = st;
  assert_int_equal(jk_p11_get_stats(k, &st0), 0);
  hook_inject(JK_P11_EV_SIGN, CKR_DEVICE_ERROR, 1);
  assert_int_equal(jwtkit_sign(k, NULL, "{}", 2, &tok, NULL, &e), JWTKIT_ERR_IO);
  assert_non_null(strstr(e.msg, "CKR_DEVICE_ERROR"));
  assert_int_equal(jk_p11_get_stats(k, &st), 0);
  assert_int_equal(st.retries, st0.retries);
  /* a token that turns down the mechanism at sign time (after offering it) */
  hook_inject(JK_P11_EV_SIGN, CKR_MECHANISM_INVALID, 1);
  assert_int_equal(jwtkit_sign(k, NULL, "{}", 2, &tok, NULL, &e), JWTKIT_ERR_UNSUPPORTED);
  assert_non_null(strstr(e.msg, "refused to sign ES256 with this key: CKR_MECHANISM_INVALID"));
  jk_p11_test_hook = NULL;
  sign_and_verify(k, "afterwards");
  jwtkit_key_free(k);
}

/* The token goes away and comes back (SoftHSM: its token directory moved
 * away and back).  SoftHSM marks a token whose directory vanished invalid
 * for the life of its C_Initialize; the module is re-initialised (at most
 * once per jk_p11_reinit_ms; 0 here, so each step below is one call) and
 * every key on it recovers by itself: sessions re-opened, logged in. */
static void move_tokens(const char *from, const char *to) {
  char a[512], b[512];
  snprintf(a, sizeof a, "%s/%s", g_dir, from);
  snprintf(b, sizeof b, "%s/%s", g_dir, to);
  if (rename(a, b) != 0) fail_msg("rename %s %s: %s", a, b, strerror(errno));
}

static void test_token_away_and_back(void **state) {
  (void)state;
  jwtkit_key *g = generate("away-es", JWTKIT_ALG_ES256, 0);
  jwtkit_key_free(g);
  g = generate("away-ed", JWTKIT_ALG_EDDSA, 0);
  jwtkit_key_free(g);
  jwtkit_key *k = load("away-es", JWTKIT_ALG_ES256, NULL);
  jwtkit_key *k2 = load("away-ed", JWTKIT_ALG_EDDSA, NULL); /* a second key on the same module */
  sign_and_verify(k, "before");
  sign_and_verify(k2, "before");
  long saved = jk_p11_reinit_ms;
  jk_p11_reinit_ms = 0;
  jk_p11_stats st0, st;
  assert_int_equal(jk_p11_get_stats(k, &st0), 0);
  move_tokens("tokens", "tokens.away");
  char *tok = NULL;
  jwtkit_errinfo e = {0};
  /* the first signature finds the object gone, or the token failing */
  jwtkit_err r = jwtkit_sign(k, NULL, "{}", 2, &tok, NULL, &e);
  if (r != JWTKIT_ERR_IO && r != JWTKIT_ERR_NOT_FOUND) fail_msg("token away, first signature: %s %s", jwtkit_errname(r), e.msg);
  assert_null(tok);
  /* the next re-initialises the module, which finds no token now */
  memset(&e, 0, sizeof e);
  assert_int_equal(jwtkit_sign(k, NULL, "{}", 2, &tok, NULL, &e), JWTKIT_ERR_IO);
  if (strstr(e.msg, "token \"jwtkit\" is not present") == NULL || strstr(e.msg, "signing resumes") == NULL)
    fail_msg("token away: %s", e.msg);
  assert_string_equal(e.field, "token");
  /* loading a key meanwhile says which token is missing */
  jwtkit_key *x = NULL;
  char u[1024];
  memset(&e, 0, sizeof e);
  assert_int_equal(jwtkit_key_from_pkcs11(&x, JWTKIT_ALG_ES256, uri_of(u, sizeof u, "away-es"), &e), JWTKIT_ERR_NOT_FOUND);
  assert_null(x);
  assert_string_equal(e.field, "token");
  move_tokens("tokens.away", "tokens");
  /* back: both keys sign again, each after a fresh session and login */
  sign_and_verify(k, "after the token came back");
  sign_and_verify(k2, "after the token came back (second key)");
  assert_int_equal(jk_p11_get_stats(k, &st), 0);
  assert_true(st.logins > st0.logins);
  assert_true(st.opens > st0.opens);
  /* and a key loaded now works as well */
  x = load("away-es", JWTKIT_ALG_ES256, NULL);
  sign_and_verify(x, "loaded after the token came back");
  jwtkit_key_free(x);
  jk_p11_reinit_ms = saved;
  jwtkit_key_free(k2);
  jwtkit_key_free(k);
}

#define THREADS 8
#define ITERS 40

typedef struct thr {
  jwtkit_key *key;
  jwtkit_verifier *v;
  int errors;
  char msg[200];
} thr;

static void *many_signs(void *arg) {
  thr *t = arg;
  for (int i = 0; i < ITERS; i++) {
    char claims[64];
    snprintf(claims, sizeof claims, "{\"sub\":\"n%d\",\"exp\":4102444800}", i);
    char *tok = NULL;
    size_t tl = 0;
    jwtkit_errinfo e = {0};
    if (jwtkit_sign(t->key, NULL, claims, strlen(claims), &tok, &tl, &e) != JWTKIT_OK ||
        jwtkit_verify(t->v, tok, tl, NULL, &e) != JWTKIT_OK) {
      t->errors++;
      snprintf(t->msg, sizeof t->msg, "%s", e.msg);
    }
    jwtkit_free(tok);
  }
  return NULL;
}

static void test_threads(void **state) {
  (void)state;
  static const jwtkit_alg algs[] = {JWTKIT_ALG_ES256, JWTKIT_ALG_EDDSA};
  static const char *const names[] = {"thr-es", "thr-ed"};
  for (size_t a = 0; a < 2; a++) {
    jwtkit_key *g = generate(names[a], algs[a], 0);
    jwtkit_key_free(g);
    jwtkit_pkcs11_opts o = {3, 0};
    jwtkit_key *k = load(names[a], algs[a], &o);
    jwtkit_verifier *v = tu_verifier(k); /* verification uses the public half, in OpenSSL */
    thr t[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
      t[i] = (thr){k, v, 0, ""};
      assert_int_equal(pthread_create(&th[i], NULL, many_signs, &t[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < THREADS; i++)
      if (t[i].errors) fail_msg("%s thread %d: %d errors: %s", names[a], i, t[i].errors, t[i].msg);
    jk_p11_stats st;
    assert_int_equal(jk_p11_get_stats(k, &st), 0);
    assert_true(st.opens <= 3);
    assert_true(st.open_now <= 3);
    assert_int_equal(st.logins, 1);
    jwtkit_verifier_free(v);
    jwtkit_key_free(k);
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

/* Every allocation of loading a token key (signing and public) fails in
 * turn: NOMEM each time, nothing lost, then a complete load. */
static void test_allocation_failures(void **state) {
  (void)state;
  jwtkit_key *g = generate("alloc", JWTKIT_ALG_RS256, 0);
  jwtkit_key_free(g);
  static const jwtkit_allocator counting = {t_malloc, t_realloc, t_free};
  char u[1024], pu[1024];
  uri_of(u, sizeof u, "alloc");
  snprintf(pu, sizeof pu, "pkcs11:token=jwtkit;object=alloc?module-path=%s", g_module);
  for (int which = 0; which < 2; which++) {
    long n;
    jwtkit_set_allocator(&counting);
    for (n = 0; n < 1000; n++) {
      g_fail_at = n;
      g_count = g_allocs = g_frees = 0;
      jwtkit_key *k = NULL;
      jwtkit_errinfo e;
      memset(&e, 0x5a, sizeof e);
      jwtkit_err rc = which == 0 ? jwtkit_key_from_pkcs11(&k, JWTKIT_ALG_RS256, u, &e)
                                 : jwtkit_pkcs11_public_key(&k, JWTKIT_ALG_RS256, pu, &e);
      if (rc == JWTKIT_OK) {
        jwtkit_key_free(k);
        if (g_allocs != g_frees) fail_msg("%d: complete load: %ld allocations, %ld frees", which, g_allocs, g_frees);
        if (g_count <= n) break;
        continue;
      }
      if (rc != JWTKIT_ERR_NOMEM || e.code != JWTKIT_ERR_NOMEM)
        fail_msg("%d: failing allocation %ld gave %s (%s)", which, n, jwtkit_errname(rc), e.msg);
      if (k != NULL) fail_msg("%d: a failed load left a key", which);
      if (g_allocs != g_frees) fail_msg("%d: failing allocation %ld: %ld allocations, %ld frees", which, n, g_allocs, g_frees);
    }
    g_fail_at = -1;
    jwtkit_set_allocator(NULL);
    if (n < 2) fail_msg("%d: only %ld allocations?", which, n);
    printf("pkcs11 %s load: %ld allocations, each failed once\n", which ? "public" : "signing", n);
  }
}

/* --------------------------------------------------------------- setup */

static int run(const char *cmd) {
  int r = system(cmd);
  return r == 0 ? 0 : -1;
}

static int setup_token(void) {
  const char *m = getenv("JWTKIT_SOFTHSM_MODULE");
  snprintf(g_module, sizeof g_module, "%s", m ? m : "/usr/lib/softhsm/libsofthsm2.so");
  if (access(g_module, R_OK) != 0 || run("command -v softhsm2-util >/dev/null 2>&1") != 0) return 77;
  snprintf(g_dir, sizeof g_dir, "%s/jwtkit-p11-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (mkdtemp(g_dir) == NULL) return 1;
  char path[512], cmd[1024];
  snprintf(path, sizeof path, "%s/tokens", g_dir);
  if (mkdir(path, 0700) != 0) return 1;
  snprintf(path, sizeof path, "%s/softhsm2.conf", g_dir);
  FILE *f = fopen(path, "w");
  if (f == NULL) return 1;
  fprintf(f, "directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n", g_dir);
  fclose(f);
  setenv("SOFTHSM2_CONF", path, 1);
  unsetenv("JWTKIT_PKCS11_PIN");
  snprintf(cmd, sizeof cmd, "softhsm2-util --init-token --free --label jwtkit --pin 1234 --so-pin 5678 >/dev/null");
  if (run(cmd) != 0) return 1;
  snprintf(g_pin, sizeof g_pin, "%s/user.pin", g_dir);
  f = fopen(g_pin, "w");
  if (f == NULL) return 1;
  fputs("1234\n", f);
  fclose(f);
  chmod(g_pin, 0600);
  return 0;
}

int main(void) {
  if (!jwtkit_pkcs11_available()) {
    printf("SKIP: built without PKCS#11 support (tests/test_p11_uri.c checks the UNSUPPORTED answers)\n");
    return 77;
  }
  int s = setup_token();
  if (s == 77) {
    if (tu_ci()) {
      fprintf(stderr, "FAIL: SoftHSM2 not installed (%s, softhsm2-util); CI=true requires it (apt-get install softhsm2)\n",
              g_module);
      return 1;
    }
    printf("SKIP: SoftHSM2 not installed (%s, softhsm2-util)\n", g_module);
    return 77;
  }
  if (s != 0) {
    fprintf(stderr, "cannot set up a SoftHSM token in %s\n", g_dir);
    return 1;
  }
#define T(f) cmocka_unit_test_teardown(f, hook_off)
  const struct CMUnitTest tests[] = {
      T(test_roundtrip_every_alg), T(test_private_key_stays_in_token), T(test_pin_faults),
      T(test_refused_pin_is_sticky), T(test_refused_pin_is_remembered), T(test_not_found_faults), T(test_destroy), T(test_public_object_missing),
      T(test_pool_bound_waits), T(test_pool_wait_is_bounded), T(test_token_session_limit),
      T(test_lost_sessions), T(test_token_away_and_back), T(test_threads), T(test_allocation_failures),
  };
#undef T
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  tu_rm_rf(g_dir);
  return rc;
}
