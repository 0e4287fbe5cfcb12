/* base64url codec: RFC 4648 test vectors and canonical-form strictness. */
#include <string.h>

#include "codec/b64url.h"
#include "testutil.h"

static void roundtrip(const char *plain, const char *enc) {
  char out[64];
  size_t n = jk_b64url_encode(out, (const unsigned char *)plain, strlen(plain));
  assert_int_equal(n, strlen(enc));
  assert_int_equal(n, jk_b64url_enc_len(strlen(plain)));
  assert_memory_equal(out, enc, n);
  unsigned char dec[64];
  size_t dl = 0;
  assert_int_equal(jk_b64url_decode(dec, &dl, enc, strlen(enc)), 0);
  assert_int_equal(dl, strlen(plain));
  assert_memory_equal(dec, plain, dl);
}

static void test_rfc4648_vectors(void **state) {
  (void)state;
  roundtrip("", "");
  roundtrip("f", "Zg");
  roundtrip("fo", "Zm8");
  roundtrip("foo", "Zm9v");
  roundtrip("foob", "Zm9vYg");
  roundtrip("fooba", "Zm9vYmE");
  roundtrip("foobar", "Zm9vYmFy");
  roundtrip("\xfb\xff", "-_8"); /* the two URL-safe characters */
}

static int dec(const char *s) {
  unsigned char out[64];
  size_t n;
  return jk_b64url_decode(out, &n, s, strlen(s));
}

static void test_rejects_non_canonical(void **state) {
  (void)state;
  assert_int_equal(dec("Zg=="), -1);  /* padding */
  assert_int_equal(dec("Zm8="), -1);
  assert_int_equal(dec("Z"), -1);     /* length % 4 == 1 */
  assert_int_equal(dec("Zh"), -1);    /* unused bits set: 'h' has low bits */
  assert_int_equal(dec("Zm9"), -1);   /* 'Zm9' decodes 'fo' with trailing bits 01 */
  assert_int_equal(dec("+/8"), -1);   /* standard alphabet */
  assert_int_equal(dec("Zm 9v"), -1); /* whitespace */
  assert_int_equal(dec("Zm9v\n"), -1);
  assert_int_equal(dec("Zm9\0v"), -1); /* strlen stops at the NUL: "Zm9" has stray bits */
  assert_int_equal(dec("Zm9vYg"), 0);
  assert_int_equal(dec("Zm8"), 0);
}

static void test_all_bytes(void **state) {
  (void)state;
  unsigned char in[256], back[260];
  for (int i = 0; i < 256; i++) in[i] = (unsigned char)i;
  char enc[400];
  for (size_t n = 0; n <= 256; n++) {
    size_t m = jk_b64url_encode(enc, in, n);
    size_t bl = 0;
    assert_int_equal(jk_b64url_decode(back, &bl, enc, m), 0);
    assert_int_equal(bl, n);
    assert_memory_equal(back, in, n);
    assert_true(bl <= jk_b64url_dec_max(m));
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rfc4648_vectors),
      cmocka_unit_test(test_rejects_non_canonical),
      cmocka_unit_test(test_all_bytes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
