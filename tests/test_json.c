/* The strict JSON parser: RFC 8259 grammar, UTF-8, escapes, duplicates,
 * depth and node limits, and the accessors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/json.h"
#include "testutil.h"

static jwtkit_err parse(const char *s, int top_object) {
  jk_jdoc d;
  jwtkit_err rc = jk_json_parse_alloc(&d, s, strlen(s), top_object, NULL);
  if (rc == JWTKIT_OK) free(d.nodes);
  return rc;
}

static void test_accepts_valid(void **state) {
  (void)state;
  static const char *ok[] = {
      "{}", " { } ", "{\"a\":1}", "{\"a\":[1,2,{\"b\":null}],\"c\":true,\"d\":false}",
      "{\"n\":-0.5e+10}", "{\"n\":0}", "{\"n\":-0}", "{\"n\":1E3}", "{\"s\":\"\\u00e9\\n\\t\\\"\\\\\\/\"}",
      "{\"s\":\"\\ud83d\\ude00\"}", "{\"s\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}", "{\"\":1}",
      "{\"a\":1,\"A\":2}", "\t\r\n{\"a\":\"b\"}\n",
  };
  for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
    if (parse(ok[i], 1) != JWTKIT_OK) fail_msg("rejected valid JSON: %s", ok[i]);
  }
  assert_int_equal(parse("[1,\"x\"]", 0), JWTKIT_OK);
  assert_int_equal(parse("\"x\"", 0), JWTKIT_OK);
  assert_int_equal(parse("12", 0), JWTKIT_OK);
}

static void test_rejects_invalid(void **state) {
  (void)state;
  static const char *bad[] = {
      "", "{", "}", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{,}", "{\"a\":1}x", "{\"a\":1}{}",
      "{'a':1}", "{a:1}", "{\"a\":01}", "{\"a\":1.}", "{\"a\":.5}", "{\"a\":+1}", "{\"a\":1e}",
      "{\"a\":0x10}", "{\"a\":NaN}", "{\"a\":Infinity}", "{\"a\":tru}", "{\"a\":nul}",
      "{\"a\":\"\\x\"}", "{\"a\":\"\\u12\"}", "{\"a\":\"\\u0000\"}", "{\"a\":\"\\ud800\"}",
      "{\"a\":\"\\udc00\"}", "{\"a\":\"\\ud800\\u0041\"}", "{\"a\":\"tab\there\"}",
      "{\"a\":\"\x01\"}", "{\"a\":\"\xff\"}", "{\"a\":\"\xc0\xaf\"}", /* overlong '/' */
      "{\"a\":\"\xed\xa0\x80\"}", /* encoded surrogate */
      "{\"a\":\"\xf4\x90\x80\x80\"}", /* > U+10FFFF */
      "{\"a\":\"\xe2\x82\"}", /* truncated */
      "{\"a\":1,\"a\":2}", "{\"a\":1,\"\\u0061\":2}", "{\"x\":{\"b\":1,\"b\":1}}",
      "{\"a\":[1,2}", "{\"a\":\"unterminated}", "\xef\xbb\xbf{}", /* BOM */
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    jwtkit_err rc = parse(bad[i], 1);
    if (rc == JWTKIT_OK) fail_msg("accepted invalid JSON #%zu: %s", i, bad[i]);
  }
  /* explicit length: an embedded NUL after the object is trailing garbage */
  jk_jdoc d;
  assert_int_not_equal(jk_json_parse_alloc(&d, "{}\0", 3, 1, NULL), JWTKIT_OK);
  /* top-level must be an object when asked */
  assert_int_equal(parse("[]", 1), JWTKIT_ERR_MALFORMED);
}

static void test_depth_limit(void **state) {
  (void)state;
  char buf[256];
  for (unsigned depth = JWTKIT_MAX_JSON_DEPTH; depth <= JWTKIT_MAX_JSON_DEPTH + 1; depth++) {
    size_t n = 0;
    buf[n++] = '{';
    buf[n++] = '"';
    buf[n++] = 'a';
    buf[n++] = '"';
    buf[n++] = ':';
    for (unsigned i = 1; i < depth; i++) buf[n++] = '[';
    buf[n++] = '1';
    for (unsigned i = 1; i < depth; i++) buf[n++] = ']';
    buf[n++] = '}';
    buf[n] = '\0';
    jwtkit_err rc = parse(buf, 1);
    if (depth <= JWTKIT_MAX_JSON_DEPTH)
      assert_int_equal(rc, JWTKIT_OK);
    else
      assert_int_equal(rc, JWTKIT_ERR_TOO_LARGE);
  }
}

static void test_node_capacity(void **state) {
  (void)state;
  const char *s = "{\"a\":[1,2,3,4,5,6,7,8,9,10]}";
  jk_jnode nodes[4];
  jk_jdoc d;
  uint32_t needed = 0;
  assert_int_equal(jk_json_parse(&d, s, strlen(s), nodes, 4, 1, &needed, NULL), JWTKIT_ERR_TOO_LARGE);
  assert_int_equal(needed, 13); /* object, key, array, ten numbers */
  jk_jnode big[13];
  assert_int_equal(jk_json_parse(&d, s, strlen(s), big, 13, 1, &needed, NULL), JWTKIT_OK);
  assert_int_equal(d.count, 13);
}

static void test_accessors(void **state) {
  (void)state;
  const char *s = "{\"iss\":\"a\\\"b\",\"n\":-42,\"big\":9223372036854775807,\"over\":9223372036854775808,"
                  "\"f\":1.5,\"e\":1e3,\"t\":1700000000.25,\"neg\":-1.5,\"\\u0078\":\"esc-key\"}";
  jk_jdoc d;
  assert_int_equal(jk_json_parse_alloc(&d, s, strlen(s), 1, NULL), JWTKIT_OK);
  int i = jk_json_get(&d, 0, "iss", 3);
  assert_true(i > 0);
  assert_true(jk_json_str_eq(&d, (uint32_t)i, "a\"b", 3));
  char buf[16];
  assert_int_equal(jk_json_unescape(&d, (uint32_t)i, buf), 3);
  assert_string_equal(buf, "a\"b");
  int64_t v = 0;
  assert_int_equal(jk_json_int(&d, (uint32_t)jk_json_get(&d, 0, "n", 1), &v), 0);
  assert_int_equal(v, -42);
  assert_int_equal(jk_json_int(&d, (uint32_t)jk_json_get(&d, 0, "big", 3), &v), 0);
  assert_true(v == INT64_MAX);
  assert_int_equal(jk_json_int(&d, (uint32_t)jk_json_get(&d, 0, "over", 4), &v), -1);
  assert_int_equal(jk_json_int(&d, (uint32_t)jk_json_get(&d, 0, "f", 1), &v), -1);
  int64_t fl, ce;
  assert_int_equal(jk_json_seconds(&d, (uint32_t)jk_json_get(&d, 0, "t", 1), &fl, &ce), 0);
  assert_true(fl == 1700000000 && ce == 1700000001);
  assert_int_equal(jk_json_seconds(&d, (uint32_t)jk_json_get(&d, 0, "neg", 3), &fl, &ce), 0);
  assert_true(fl == -2 && ce == -1);
  assert_int_equal(jk_json_seconds(&d, (uint32_t)jk_json_get(&d, 0, "n", 1), &fl, &ce), 0);
  assert_true(fl == -42 && ce == -42);
  assert_int_equal(jk_json_seconds(&d, (uint32_t)jk_json_get(&d, 0, "e", 1), &fl, &ce), 0); /* 1e3 */
  assert_true(fl == 1000 && ce == 1000);
  /* member names compare after unescaping */
  assert_true(jk_json_get(&d, 0, "x", 1) > 0);
  assert_int_equal(jk_json_get(&d, 0, "missing", 7), -1);
  free(d.nodes);
}


/* NumericDate: every JSON number form, evaluated exactly in decimal, with
 * |value| < 1e15.  Exponent forms are what some issuers send
 * ("exp":1.7000036e+09). */
static void test_numericdate_forms(void **state) {
  (void)state;
  static const struct {
    const char *num;
    int ok;
    int64_t fl, ce;
  } cases[] = {
      {"1700003600", 1, 1700003600, 1700003600},
      {"1.7000036e+09", 1, 1700003600, 1700003600},
      {"1.7000036E9", 1, 1700003600, 1700003600},
      {"17000036000e-1", 1, 1700003600, 1700003600},
      {"1.70000360005e9", 1, 1700003600, 1700003601}, /* 1700003600.05 */
      {"-1.5e0", 1, -2, -1},
      {"-15e-1", 1, -2, -1},
      {"0.5e1", 1, 5, 5},
      {"5e-1", 1, 0, 1},
      {"-5e-1", 1, -1, 0},
      {"1e-999999999", 1, 0, 1},
      {"0e999999999", 1, 0, 0},
      {"-0", 1, 0, 0},
      {"0.000", 1, 0, 0},
      {"1e14", 1, 100000000000000LL, 100000000000000LL},
      {"9.99999999999999e14", 1, 999999999999999LL, 999999999999999LL},
      {"999999999999999.5", 1, 999999999999999LL, 1000000000000000LL},
      {"-999999999999999", 1, -999999999999999LL, -999999999999999LL},
      {"1e15", 0, 0, 0},
      {"1000000000000000", 0, 0, 0},
      {"-1e15", 0, 0, 0},
      {"1e999999999999", 0, 0, 0},
      {"12345678901234567890e-5", 1, 123456789012345LL, 123456789012346LL},
      {"0.00000000000000000001e20", 1, 1, 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char doc[128];
    snprintf(doc, sizeof doc, "{\"t\":%s}", cases[i].num);
    jk_jdoc d;
    assert_int_equal(jk_json_parse_alloc(&d, doc, strlen(doc), 1, NULL), JWTKIT_OK);
    int64_t fl = 7, ce = 7;
    int rc = jk_json_seconds(&d, (uint32_t)jk_json_get(&d, 0, "t", 1), &fl, &ce);
    if (rc != (cases[i].ok ? 0 : -1)) fail_msg("%s: rc %d", cases[i].num, rc);
    if (cases[i].ok && (fl != cases[i].fl || ce != cases[i].ce))
      fail_msg("%s: floor %lld ceil %lld, want %lld %lld", cases[i].num, (long long)fl, (long long)ce,
               (long long)cases[i].fl, (long long)cases[i].ce);
    free(d.nodes);
  }
}

static void test_writer(void **state) {
  (void)state;
  jk_buf b;
  jk_buf_init(&b);
  jk_buf_putc(&b, '{');
  assert_int_equal(jk_buf_json_str(&b, "q\"\\\n\x01\xc3\xa9", 7), 0);
  jk_buf_putc(&b, ':');
  jk_buf_int(&b, INT64_MIN);
  jk_buf_putc(&b, '}');
  size_t n = 0;
  char *s = jk_buf_take(&b, &n);
  assert_string_equal(s, "{\"q\\\"\\\\\\n\\u0001\xc3\xa9\":-9223372036854775808}");
  /* what the writer produces, the parser accepts */
  jk_jdoc d;
  assert_int_equal(jk_json_parse_alloc(&d, s, n, 1, NULL), JWTKIT_OK);
  free(d.nodes);
  jwtkit_free(s);
  /* invalid UTF-8 or NUL is refused by the writer */
  jk_buf_init(&b);
  assert_int_equal(jk_buf_json_str(&b, "\xff", 1), -1);
  assert_null(jk_buf_take(&b, NULL));
  jk_buf_init(&b);
  assert_int_equal(jk_buf_json_str(&b, "a\0b", 3), -1);
  assert_null(jk_buf_take(&b, NULL));
}

static void test_many_members_duplicate(void **state) {
  (void)state;
  /* duplicates far apart in a large object are still found */
  size_t cap = 200 * 16 + 64;
  char *s = malloc(cap);
  size_t n = 0;
  s[n++] = '{';
  for (int i = 0; i < 200; i++) n += (size_t)snprintf(s + n, cap - n, "%s\"k%d\":%d", i ? "," : "", i, i);
  n += (size_t)snprintf(s + n, cap - n, ",\"k7\":0}");
  jk_jdoc d;
  assert_int_equal(jk_json_parse_alloc(&d, s, n, 1, NULL), JWTKIT_ERR_MALFORMED);
  free(s);
}

/* Large objects: duplicates found by sorting, escaped names included (the
 * pairwise check made a 100,000-member object cost ~15 s). */
static void test_large_object_duplicates(void **state) {
  (void)state;
  const int members = 100000;
  size_t cap = (size_t)members * 16 + 64, n = 0;
  char *s = malloc(cap);
  s[n++] = '{';
  for (int i = 0; i < members; i++) n += (size_t)snprintf(s + n, cap - n, "%s\"m%d\":0", i ? "," : "", i);
  size_t body = n;
  n += (size_t)snprintf(s + n, cap - n, "}");
  jk_jdoc d;
  assert_int_equal(jk_json_parse_alloc(&d, s, n, 1, NULL), JWTKIT_OK);
  free(d.nodes);
  n = body + (size_t)snprintf(s + body, cap - body, ",\"m77777\":1}");
  assert_int_equal(jk_json_parse_alloc(&d, s, n, 1, NULL), JWTKIT_ERR_MALFORMED);
  n = body + (size_t)snprintf(s + body, cap - body, ",\"\\u006d5\":1}"); /* "m5" escaped */
  assert_int_equal(jk_json_parse_alloc(&d, s, n, 1, NULL), JWTKIT_ERR_MALFORMED);
  free(s);
}

static void test_public_validate(void **state) {
  (void)state;
  jwtkit_errinfo ei;
  assert_int_equal(jwtkit_json_validate("{\"a\":1}", 7, 1, &ei), JWTKIT_OK);
  assert_int_equal(jwtkit_json_validate("[1]", 3, 1, &ei), JWTKIT_ERR_MALFORMED);
  assert_int_equal(jwtkit_json_validate("[1]", 3, 0, &ei), JWTKIT_OK);
  assert_int_equal(jwtkit_json_validate("{\"a\":1,\"a\":2}", 13, 1, &ei), JWTKIT_ERR_MALFORMED);
  assert_non_null(strstr(ei.msg, "duplicate member name at byte 8"));
  assert_int_equal(jwtkit_json_validate(NULL, 0, 0, &ei), JWTKIT_ERR_INVALID_ARG);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_accepts_valid),      cmocka_unit_test(test_rejects_invalid),
      cmocka_unit_test(test_depth_limit),        cmocka_unit_test(test_node_capacity),
      cmocka_unit_test(test_accessors), cmocka_unit_test(test_numericdate_forms),          cmocka_unit_test(test_writer),
      cmocka_unit_test(test_many_members_duplicate), cmocka_unit_test(test_public_validate),
      cmocka_unit_test(test_large_object_duplicates),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
