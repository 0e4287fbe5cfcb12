/* Key-encryption keys and keyring locations, without a database: KEK
 * parsing (every accepted and refused form), ids, generation, password
 * masking of PostgreSQL URLs, and what a build does with a URL and no
 * KEK. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static const char *const HEX1 = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
/* the same 32 bytes in base64url, base64 and base64 with padding */
static const char *const URL1 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
static const char *const B641 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

static void parse_ok(const char *text, size_t want_n, unsigned char (**keks)[32]) {
  size_t n = 0;
  jwtkit_errinfo ei;
  jwtkit_err rc = jwtkit_kek_parse(text, strlen(text), keks, &n, &ei);
  if (rc != JWTKIT_OK) fail_msg("\"%s\": %s", text, ei.msg);
  assert_int_equal(n, want_n);
}

static void parse_bad(const char *text, jwtkit_err want) {
  unsigned char(*keks)[32] = NULL;
  size_t n = 99;
  jwtkit_errinfo ei;
  assert_int_equal(jwtkit_kek_parse(text, strlen(text), &keks, &n, &ei), want);
  assert_null(keks);
  assert_int_equal(n, 0);
  assert_true(ei.msg[0] != '\0');
}

static void test_kek_forms(void **state) {
  (void)state;
  unsigned char expect[32];
  for (int i = 0; i < 32; i++) expect[i] = (unsigned char)i;
  const char *forms[] = {HEX1, URL1, B641};
  for (size_t f = 0; f < 3; f++) {
    unsigned char(*k)[32] = NULL;
    parse_ok(forms[f], 1, &k);
    assert_memory_equal(k[0], expect, 32);
    jwtkit_kek_free(k, 1);
  }
  /* a file: comment, blank line, CRLF, surrounding spaces; order kept */
  char text[512];
  snprintf(text, sizeof text, "# current first\r\n  %s  \r\n\n# the previous one\n%s\n", URL1,
           "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff");
  unsigned char(*k)[32] = NULL;
  parse_ok(text, 2, &k);
  assert_memory_equal(k[0], expect, 32);
  assert_int_equal(k[1][0], 0xff);
  jwtkit_kek_free(k, 2);
  /* an environment variable: comma separated */
  snprintf(text, sizeof text, "%s,%s", HEX1, "0101010101010101010101010101010101010101010101010101010101010101");
  parse_ok(text, 2, &k);
  jwtkit_kek_free(k, 2);
}

static void test_kek_refused(void **state) {
  (void)state;
  parse_bad("", JWTKIT_ERR_INVALID_KEY);
  parse_bad("# only a comment\n\n", JWTKIT_ERR_INVALID_KEY);
  parse_bad("00010203", JWTKIT_ERR_INVALID_KEY);                                                          /* short */
  parse_bad("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1g", JWTKIT_ERR_INVALID_KEY); /* not hex */
  parse_bad("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh", JWTKIT_ERR_INVALID_KEY);                    /* 42 chars */
  parse_bad("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9", JWTKIT_ERR_INVALID_KEY); /* non-zero padding bits */
  parse_bad("a passphrase is not a key", JWTKIT_ERR_INVALID_KEY);
  char text[4096];
  snprintf(text, sizeof text, "%s\n%s\n", HEX1, URL1); /* the same key twice, two spellings */
  parse_bad(text, JWTKIT_ERR_INVALID_ARG);
  /* more than 16 */
  text[0] = '\0';
  for (int i = 0; i < 17; i++) {
    char line[80];
    snprintf(line, sizeof line, "%02x%s\n", i, HEX1 + 2);
    strncat(text, line, sizeof text - strlen(text) - 1);
  }
  parse_bad(text, JWTKIT_ERR_TOO_LARGE);
  unsigned char(*k)[32] = NULL;
  size_t n = 0;
  jwtkit_errinfo ei;
  assert_int_equal(jwtkit_kek_parse(NULL, 0, &k, &n, &ei), JWTKIT_ERR_INVALID_KEY);
  assert_int_equal(jwtkit_kek_parse(NULL, 5, &k, &n, &ei), JWTKIT_ERR_INVALID_ARG);
}

static void test_kek_id_and_generate(void **state) {
  (void)state;
  unsigned char a[32] = {0}, b[32] = {0};
  b[31] = 1;
  char ia[17], ib[17], ia2[17];
  jwtkit_kek_id(a, ia);
  jwtkit_kek_id(b, ib);
  jwtkit_kek_id(a, ia2);
  assert_int_equal(strlen(ia), 16);
  assert_string_equal(ia, ia2);
  assert_string_not_equal(ia, ib);
  /* the id is a hash of the key, not a prefix of it */
  assert_string_not_equal(ia, "0000000000000000");
  char g1[44], g2[44];
  assert_int_equal(jwtkit_kek_generate(g1), JWTKIT_OK);
  assert_int_equal(jwtkit_kek_generate(g2), JWTKIT_OK);
  assert_int_equal(strlen(g1), 43);
  assert_string_not_equal(g1, g2);
  unsigned char(*k)[32] = NULL;
  parse_ok(g1, 1, &k);
  jwtkit_kek_free(k, 1);
}

static void redacts(const char *in, const char *want) {
  char out[512];
  jwtkit_keyring_location_redact(in, out, sizeof out);
  assert_string_equal(out, want);
}

static void test_location(void **state) {
  (void)state;
  assert_true(jwtkit_keyring_location_is_postgres("postgres://h/db"));
  assert_true(jwtkit_keyring_location_is_postgres("postgresql://h/db"));
  assert_false(jwtkit_keyring_location_is_postgres("./var/keyring"));
  assert_false(jwtkit_keyring_location_is_postgres("postgres:/h"));
  assert_false(jwtkit_keyring_location_is_postgres(NULL));
  redacts("postgresql://issuer:s3cret@db.internal:5432/keys", "postgresql://issuer:***@db.internal:5432/keys");
  redacts("postgres://issuer@db/keys", "postgres://issuer@db/keys");
  redacts("postgres://db/keys?user=issuer&password=s3cret&sslmode=verify-full",
          "postgres://db/keys?user=issuer&password=***&sslmode=verify-full");
  redacts("postgres://db/keys?password=s3cret", "postgres://db/keys?password=***");
  /* an @ in the path or query is not user info */
  redacts("postgres://db/k@ys", "postgres://db/k@ys");
  redacts("./var/keyring", "./var/keyring");
  char small[8];
  jwtkit_keyring_location_redact("postgresql://u:pw@h/d", small, sizeof small);
  assert_int_equal(strlen(small), 7);
  assert_null(strstr(small, "pw"));
}

static void test_postgres_needs_kek(void **state) {
  (void)state;
  /* refused before any connection is tried: no KEK, no keyring */
  const jwtkit_alg algs[] = {JWTKIT_ALG_ES256};
  jwtkit_errinfo ei;
  jwtkit_keyring *kr = NULL;
  jwtkit_err rc = jwtkit_keyring_open(&kr, "postgresql://u:pw@127.0.0.1:1/d", NULL, &ei);
#ifdef JWTKIT_WITH_POSTGRES
  assert_int_equal(rc, JWTKIT_ERR_KEK);
  assert_non_null(strstr(ei.msg, "key-encryption key"));
  assert_string_equal(jwtkit_strerror(rc), "wrong or missing key-encryption key");
#else
  assert_int_equal(rc, JWTKIT_ERR_UNSUPPORTED);
#endif
  assert_null(kr);
  rc = jwtkit_keyring_init("postgresql://u:pw@127.0.0.1:1/d", algs, 1, NULL, NULL, 1800000000, NULL, NULL, &ei);
  assert_true(rc == JWTKIT_ERR_KEK || rc == JWTKIT_ERR_UNSUPPORTED);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_kek_forms),
      cmocka_unit_test(test_kek_refused),
      cmocka_unit_test(test_kek_id_and_generate),
      cmocka_unit_test(test_location),
      cmocka_unit_test(test_postgres_needs_kek),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
