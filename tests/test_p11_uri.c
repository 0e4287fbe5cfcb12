/* The RFC 7512 "pkcs11:" URI parser and formatter (src/crypto/p11_uri.c),
 * which needs no token; and, in a build without PKCS#11 support, the
 * UNSUPPORTED answers of every jwtkit/pkcs11.h function. */
#include <string.h>

#include "crypto/p11.h"
#include "testutil.h"

static jwtkit_err parse(jk_p11_uri *u, const char *text, jwtkit_errinfo *e) {
  memset(e, 0, sizeof *e);
  return jk_p11_uri_parse(u, text, strlen(text), e);
}

static void test_valid(void **state) {
  (void)state;
  jk_p11_uri u;
  jwtkit_errinfo e;
  assert_int_equal(parse(&u,
                         "pkcs11:token=jwtkit;object=issuer-2026-12;id=%01%ff%00"
                         "?pin-source=/run/jwtkit/pin&module-path=/usr/lib/softhsm/libsofthsm2.so",
                         &e),
                   JWTKIT_OK);
  assert_string_equal(u.token, "jwtkit");
  assert_string_equal(u.object, "issuer-2026-12");
  assert_int_equal(u.id_len, 3);
  assert_memory_equal(u.id, "\x01\xff\x00", 3);
  assert_string_equal(u.pin_source, "/run/jwtkit/pin");
  assert_string_equal(u.module_path, "/usr/lib/softhsm/libsofthsm2.so");
  assert_null(u.module_name);
  assert_int_equal(u.type, JK_P11_TYPE_ANY);
  jk_p11_uri_free(&u);

  /* RFC 7512 section 3 examples, the scheme in any case, percent-decoding */
  assert_int_equal(parse(&u, "PKCS11:object=my%20key;type=private;manufacturer=Snake%20Oil,%20Inc.;serial=42;"
                             "model=HSM%201;library-manufacturer=Snake%20Oil;library-description=Lib;"
                             "library-version=2.6;slot-id=18446744073709551615;slot-description=S%20d;"
                             "slot-manufacturer=M",
                         &e),
                   JWTKIT_OK);
  assert_string_equal(u.object, "my key");
  assert_int_equal(u.type, JK_P11_TYPE_PRIVATE);
  assert_string_equal(u.manufacturer, "Snake Oil, Inc.");
  assert_string_equal(u.serial, "42");
  assert_string_equal(u.model, "HSM 1");
  assert_int_equal(u.has_lib_version, 1);
  assert_int_equal(u.lib_major, 2);
  assert_int_equal(u.lib_minor, 6);
  assert_int_equal(u.has_slot_id, 1);
  assert_true(u.slot_id == 18446744073709551615ul);
  assert_string_equal(u.slot_description, "S d");
  jk_p11_uri_free(&u);

  /* the query alone, file: forms of pin-source, module-name, '?' and '/' in query values */
  assert_int_equal(parse(&u, "pkcs11:?pin-source=file:///etc/pin&module-name=softhsm2", &e), JWTKIT_OK);
  assert_string_equal(u.pin_source, "/etc/pin");
  assert_string_equal(u.module_name, "softhsm2");
  assert_null(u.token);
  jk_p11_uri_free(&u);
  assert_int_equal(parse(&u, "pkcs11:object=a?pin-source=file:rel/pin", &e), JWTKIT_OK);
  assert_string_equal(u.pin_source, "rel/pin");
  jk_p11_uri_free(&u);
  assert_int_equal(parse(&u, "pkcs11:", &e), JWTKIT_OK);
  jk_p11_uri_free(&u);
  assert_int_equal(parse(&u, "pkcs11:object=a&b;library-version=3", &e), JWTKIT_OK); /* '&' in a path value */
  assert_string_equal(u.object, "a&b");
  assert_int_equal(u.lib_major, 3);
  assert_int_equal(u.lib_minor, 0);
  jk_p11_uri_free(&u);
  jk_p11_uri_free(&u); /* twice: a cleared URI is fine */
}

static void test_refused(void **state) {
  (void)state;
  static const struct {
    const char *uri;
    jwtkit_err rc;
    const char *field;
    const char *needle;
  } cases[] = {
      {"pkcs:token=a", JWTKIT_ERR_INVALID_ARG, "", "not a PKCS#11 URI"},
      {"pkcs11:token=a;token=b", JWTKIT_ERR_INVALID_ARG, "token", "given twice"},
      {"pkcs11:color=blue", JWTKIT_ERR_INVALID_ARG, "", "unknown PKCS#11 URI attribute \"color\""},
      {"pkcs11:x-vendor=1", JWTKIT_ERR_INVALID_ARG, "", "unknown PKCS#11 URI attribute \"x-vendor\""},
      {"pkcs11:token", JWTKIT_ERR_INVALID_ARG, "", "has no '='"},
      {"pkcs11:token=a;;object=b", JWTKIT_ERR_INVALID_ARG, "", "empty attribute"},
      {"pkcs11:token=a;", JWTKIT_ERR_INVALID_ARG, "", "ends with a separator"},
      {"pkcs11:token=", JWTKIT_ERR_INVALID_ARG, "token", "empty value"},
      {"pkcs11:token=a%2", JWTKIT_ERR_INVALID_ARG, "token", "bad percent-encoding"},
      {"pkcs11:token=a%zz", JWTKIT_ERR_INVALID_ARG, "token", "bad percent-encoding"},
      {"pkcs11:object=my key", JWTKIT_ERR_INVALID_ARG, "object", "must be written %20"},
      {"pkcs11:object=a/b", JWTKIT_ERR_INVALID_ARG, "object", "'/' at offset 15 must be written %2F"},
      {"pkcs11:object=a%00b", JWTKIT_ERR_INVALID_ARG, "object", "control character"},
      {"pkcs11:object=a%0Ab", JWTKIT_ERR_INVALID_ARG, "object", "control character"},
      {"pkcs11:object=\xc3\xa9", JWTKIT_ERR_INVALID_ARG, "object", "byte 0xc3"},
      {"pkcs11:token=123456789012345678901234567890123", JWTKIT_ERR_INVALID_ARG, "token", "longer than 32 bytes"},
      {"pkcs11:serial=12345678901234567", JWTKIT_ERR_INVALID_ARG, "serial", "longer than 16"},
      {"pkcs11:type=secret", JWTKIT_ERR_INVALID_ARG, "type", "public, private, cert"},
      {"pkcs11:library-version=2.x", JWTKIT_ERR_INVALID_ARG, "library-version", "MAJOR[.MINOR]"},
      {"pkcs11:library-version=256", JWTKIT_ERR_INVALID_ARG, "library-version", "0..255"},
      {"pkcs11:slot-id=18446744073709551616", JWTKIT_ERR_INVALID_ARG, "slot-id", "decimal"},
      {"pkcs11:slot-id=-1", JWTKIT_ERR_INVALID_ARG, "slot-id", "decimal"},
      {"pkcs11:pin-source=/p", JWTKIT_ERR_INVALID_ARG, "pin-source", "belongs in the query"},
      {"pkcs11:?token=a", JWTKIT_ERR_INVALID_ARG, "token", "belongs in the path"},
      {"pkcs11:?pin-source=|/bin/cat%20pin", JWTKIT_ERR_INVALID_ARG, "pin-source", "runs a program"},
      {"pkcs11:?pin-source=file://host/pin", JWTKIT_ERR_INVALID_ARG, "pin-source", "only local files"},
      {"pkcs11:?pin-source=file:", JWTKIT_ERR_INVALID_ARG, "pin-source", "names no file"},
      {"pkcs11:?module-path=libsofthsm2.so", JWTKIT_ERR_INVALID_ARG, "module-path", "absolute path"},
      {"pkcs11:?module-name=/usr/lib/x.so", JWTKIT_ERR_INVALID_ARG, "module-name", "give it as module-path="},
      {"pkcs11:?pin-value=1234", JWTKIT_ERR_INVALID_ARG, "pin-value", "use pin-source=FILE (mode 0600)"},
      {"pkcs11:?pin-value=", JWTKIT_ERR_INVALID_ARG, "pin-value", "JWTKIT_PKCS11_PIN"},
      {"pkcs11:?module-path=/a;b", JWTKIT_ERR_INVALID_ARG, "module-path", "';'"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    jk_p11_uri u;
    jwtkit_errinfo e;
    memset(&u, 0x5a, sizeof u);
    jwtkit_err rc = parse(&u, cases[i].uri, &e);
    if (rc != cases[i].rc) fail_msg("%s: %s (%s)", cases[i].uri, jwtkit_errname(rc), e.msg);
    if (strcmp(e.field, cases[i].field) != 0) fail_msg("%s: field \"%s\"", cases[i].uri, e.field);
    if (strstr(e.msg, cases[i].needle) == NULL) fail_msg("%s: message \"%s\" lacks \"%s\"", cases[i].uri, e.msg, cases[i].needle);
    assert_null(u.buf); /* cleared on failure */
    assert_null(u.token);
  }
  /* the PIN is never repeated */
  jk_p11_uri u;
  jwtkit_errinfo e;
  assert_int_equal(parse(&u, "pkcs11:token=t;object=o?pin-value=s3cr3t-Pin", &e), JWTKIT_ERR_INVALID_ARG);
  assert_null(strstr(e.msg, "s3cr3t"));
  /* length caps */
  char big[JK_P11_URI_MAX + 64];
  memset(big, 'a', sizeof big);
  memcpy(big, "pkcs11:object=", 14);
  assert_int_equal(jk_p11_uri_parse(&u, big, sizeof big, &e), JWTKIT_ERR_TOO_LARGE);
  assert_int_equal(jk_p11_uri_parse(&u, big, 14 + 256, &e), JWTKIT_ERR_INVALID_ARG);
  assert_non_null(strstr(e.msg, "longer than 255 bytes"));
  assert_int_equal(jk_p11_uri_parse(&u, big, 14 + 255, &e), JWTKIT_OK);
  assert_int_equal(strlen(u.object), 255);
  jk_p11_uri_free(&u);
  /* not NUL-terminated input: only len bytes are read */
  assert_int_equal(jk_p11_uri_parse(&u, "pkcs11:object=abcdef", 17, &e), JWTKIT_OK);
  assert_string_equal(u.object, "abc");
  jk_p11_uri_free(&u);
  assert_int_equal(jk_p11_uri_parse(NULL, "pkcs11:", 7, &e), JWTKIT_ERR_INVALID_ARG);
  assert_int_equal(jk_p11_uri_parse(&u, NULL, 0, &e), JWTKIT_ERR_INVALID_ARG);
}

/* format(parse(x)) parses to the same attributes, and formatting is a
 * fixed point. */
static void test_format_roundtrip(void **state) {
  (void)state;
  static const char *const uris[] = {
      "pkcs11:token=jwtkit;object=issuer-2026-12;id=%01%FF%00?pin-source=/run/pin&module-path=/usr/lib/x.so",
      "pkcs11:object=a%26b%3Bc%3Fd%25e;type=public",
      "pkcs11:slot-id=7;library-version=2.60;model=m;serial=s;manufacturer=Snake%20Oil",
      "pkcs11:?module-name=p11-kit-trust",
      "pkcs11:",
      "pkcs11:token=%7E;object=:[]@!$'()*+,=;slot-description=%C3%A9",
      /* found by the p11uri fuzz harness: a path that itself starts with file: */
      "pkcs11:?pin-source=file:file:///etc/pin",
      "pkcs11:?pin-source=file:%7Cnot-a-program",
  };
  static const char *const canonical[] = {
      "pkcs11:token=jwtkit;object=issuer-2026-12;id=%01%FF%00?pin-source=/run/pin&module-path=/usr/lib/x.so",
      "pkcs11:object=a%26b%3Bc%3Fd%25e;type=public",
      "pkcs11:manufacturer=Snake%20Oil;serial=s;model=m;library-version=2.60;slot-id=7",
      "pkcs11:?module-name=p11-kit-trust",
      "pkcs11:",
      "pkcs11:token=~;slot-description=%C3%A9;object=:[]@!$'()*+,=",
      "pkcs11:?pin-source=file:file:///etc/pin",
      "pkcs11:?pin-source=file:|not-a-program",
  };
  for (size_t i = 0; i < sizeof uris / sizeof *uris; i++) {
    jk_p11_uri a, b;
    jwtkit_errinfo e;
    if (parse(&a, uris[i], &e) != JWTKIT_OK) fail_msg("%s: %s", uris[i], e.msg);
    char t1[512], t2[512];
    size_t n1 = jk_p11_uri_format(&a, 1, t1, sizeof t1);
    assert_int_equal(n1, strlen(t1));
    /* the formatter's order: token, manufacturer, serial, model, library-*, slot-*, object, id, type */
    if (strcmp(t1, canonical[i]) != 0) fail_msg("%s formatted as %s", uris[i], t1);
    assert_int_equal(parse(&b, t1, &e), JWTKIT_OK);
    size_t n2 = jk_p11_uri_format(&b, 1, t2, sizeof t2);
    assert_int_equal(n1, n2);
    assert_string_equal(t1, t2);
    /* the size asked for is the size needed; a short buffer is cut and terminated */
    char small[8];
    assert_int_equal(jk_p11_uri_format(&a, 1, small, sizeof small), n1);
    assert_int_equal(strlen(small), sizeof small - 1);
    assert_int_equal(jk_p11_uri_format(&a, 1, NULL, 0), n1);
    /* without the query */
    char t3[512];
    jk_p11_uri_format(&a, 0, t3, sizeof t3);
    assert_null(strchr(t3, '?'));
    jk_p11_uri_free(&a);
    jk_p11_uri_free(&b);
  }
}

static void test_is_uri(void **state) {
  (void)state;
  assert_int_equal(jwtkit_is_pkcs11_uri("pkcs11:token=a"), 1);
  assert_int_equal(jwtkit_is_pkcs11_uri("PKCS11:"), 1);
  assert_int_equal(jwtkit_is_pkcs11_uri("pkcs11"), 0);
  assert_int_equal(jwtkit_is_pkcs11_uri("./pkcs11:x"), 0);
  assert_int_equal(jwtkit_is_pkcs11_uri(""), 0);
  assert_int_equal(jwtkit_is_pkcs11_uri(NULL), 0);
}

/* A build without p11-kit answers UNSUPPORTED, saying how to get support;
 * a build with it rejects bad arguments before any module is loaded. */
static void test_unsupported_or_args(void **state) {
  (void)state;
  jwtkit_key *k = (jwtkit_key *)&k;
  jwtkit_errinfo e = {0};
  char *s = (char *)&s;
  if (!jwtkit_pkcs11_available()) {
    assert_int_equal(jwtkit_key_from_pkcs11(&k, JWTKIT_ALG_ES256, "pkcs11:object=a", &e), JWTKIT_ERR_UNSUPPORTED);
    assert_null(k);
    assert_non_null(strstr(e.msg, "-DJWTKIT_PKCS11=ON"));
    k = (jwtkit_key *)&k;
    assert_int_equal(jwtkit_pkcs11_public_key(&k, JWTKIT_ALG_ES256, "pkcs11:object=a", &e), JWTKIT_ERR_UNSUPPORTED);
    assert_null(k);
    k = (jwtkit_key *)&k;
    assert_int_equal(jwtkit_pkcs11_generate(&k, JWTKIT_ALG_ES256, 0, "pkcs11:object=a", &e), JWTKIT_ERR_UNSUPPORTED);
    assert_null(k);
    assert_int_equal(jwtkit_pkcs11_destroy("pkcs11:object=a", &e), JWTKIT_ERR_UNSUPPORTED);
    assert_int_equal(jwtkit_pkcs11_key_uri(tu_key(JWTKIT_ALG_ES256), &s, NULL), JWTKIT_ERR_UNSUPPORTED);
    assert_null(s);
    assert_int_equal(jwtkit_key_is_pkcs11(tu_key(JWTKIT_ALG_ES256)), 0);
    return;
  }
  assert_int_equal(jwtkit_key_from_pkcs11(NULL, JWTKIT_ALG_ES256, "pkcs11:object=a", &e), JWTKIT_ERR_INVALID_ARG);
  assert_int_equal(jwtkit_key_from_pkcs11(&k, JWTKIT_ALG_ES256, NULL, &e), JWTKIT_ERR_INVALID_ARG);
  assert_null(k);
  assert_int_equal(jwtkit_key_from_pkcs11(&k, JWTKIT_ALG_ES256, "/etc/key.pem", &e), JWTKIT_ERR_INVALID_ARG);
  assert_int_equal(jwtkit_key_from_pkcs11(&k, JWTKIT_ALG_ES256, "pkcs11:token=a", &e), JWTKIT_ERR_INVALID_ARG);
  assert_non_null(strstr(e.msg, "names no key"));
  jwtkit_pkcs11_opts o = {1000, 0};
  assert_int_equal(jwtkit_key_from_pkcs11_opts(&k, JWTKIT_ALG_ES256, "pkcs11:object=a?module-path=/nonexistent/p11.so", &o, &e),
                   JWTKIT_ERR_INVALID_ARG); /* before any module is looked for */
  assert_string_equal(e.field, "max_sessions");
  assert_int_equal(jwtkit_key_from_pkcs11(&k, JWTKIT_ALG_ES256, "pkcs11:object=a?module-path=/nonexistent/p11.so", &e),
                   JWTKIT_ERR_NOT_FOUND);
  assert_non_null(strstr(e.msg, "/nonexistent/p11.so"));
  assert_int_equal(jwtkit_pkcs11_generate(&k, JWTKIT_ALG_RS256, 1024, "pkcs11:object=a", &e), JWTKIT_ERR_INVALID_ARG);
  assert_int_equal(jwtkit_pkcs11_generate(&k, JWTKIT_ALG_ES256, 0, "pkcs11:id=%01", &e), JWTKIT_ERR_INVALID_ARG);
  assert_non_null(strstr(e.msg, "needs its label"));
  assert_int_equal(jwtkit_pkcs11_key_uri(tu_key(JWTKIT_ALG_ES256), &s, NULL), JWTKIT_ERR_INVALID_ARG);
  assert_null(s);
  assert_int_equal(jwtkit_key_is_pkcs11(tu_key(JWTKIT_ALG_ES256)), 0);
  assert_int_equal(jwtkit_key_is_pkcs11(NULL), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid),  cmocka_unit_test(test_refused),            cmocka_unit_test(test_format_roundtrip),
      cmocka_unit_test(test_is_uri), cmocka_unit_test(test_unsupported_or_args),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
