/* The shared helper layer (src/common): one parser per kind of value, the
 * configuration dialect, the JSON-lines logger, the Prometheus writer, the
 * buffer and JSON writer, UTF-8, hex and the snapshot holder. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <errno.h>
#include <sys/stat.h>

#include "common/b64.h"
#include "common/buf.h"
#include "common/file.h"
#include "common/hex.h"
#include "common/ini.h"
#include "common/log.h"
#include "common/parse.h"
#include "common/prom.h"
#include "common/snapshot.h"
#include "common/utf8.h"
#include "core/alloc.h"
#include "testutil.h"

static void test_durations(void **state) {
  (void)state;
  static const struct {
    const char *s;
    int ok;
    int64_t v;
  } c[] = {{"0", 1, 0},           {"90", 1, 90},       {"90s", 1, 90},       {"15m", 1, 900},
           {"1h", 1, 3600},       {"7d", 1, 604800},   {"2w", 1, 1209600},   {"3660d", 1, 3660LL * 86400},
           {"3661d", 0, 0},       {"", 0, 0},          {"s", 0, 0},          {"-5s", 0, 0},
           {"1.5h", 0, 0},        {"1 h", 0, 0},       {"1H", 0, 0},         {"1y", 0, 0},
           {"99999999999999999999", 0, 0}, {"1h30m", 0, 0}};
  for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
    int64_t v = -1;
    int rc = jk_parse_duration(c[i].s, &v);
    if ((rc == 0) != c[i].ok || (c[i].ok && v != c[i].v)) fail_msg("duration \"%s\": rc %d value %lld", c[i].s, rc, (long long)v);
  }
}

static void test_numbers_bools_times(void **state) {
  (void)state;
  uint64_t u;
  int64_t i;
  assert_int_equal(jk_parse_u64("65535", 1, 65535, &u), 0);
  assert_int_equal(u, 65535);
  assert_int_equal(jk_parse_u64("65536", 1, 65535, &u), -1);
  assert_int_equal(jk_parse_u64("18446744073709551615", 0, UINT64_MAX, &u), 0);
  assert_int_equal(jk_parse_u64("18446744073709551616", 0, UINT64_MAX, &u), -1);
  assert_int_equal(jk_parse_u64("+1", 0, 9, &u), -1);
  assert_int_equal(jk_parse_i64("-9223372036854775808", INT64_MIN, INT64_MAX, &i), 0);
  assert_true(i == INT64_MIN);
  assert_int_equal(jk_parse_i64("-", INT64_MIN, INT64_MAX, &i), -1);
  int b;
  static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no", "off", "0"};
  for (int k = 0; k < 4; k++) {
    assert_int_equal(jk_parse_bool(yes[k], &b), 0);
    assert_int_equal(b, 1);
    assert_int_equal(jk_parse_bool(no[k], &b), 0);
    assert_int_equal(b, 0);
  }
  assert_int_equal(jk_parse_bool("True", &b), -1);
  assert_int_equal(jk_parse_time("1700000000", &i), 0);
  assert_int_equal(i, 1700000000);
  assert_int_equal(jk_parse_time("2023-11-14T22:13:20Z", &i), 0);
  assert_int_equal(i, 1700000000);
  assert_int_equal(jk_parse_rfc3339("2023-11-14T23:13:20.999+01:00", &i), 0);
  assert_int_equal(i, 1700000000);
  assert_int_equal(jk_parse_rfc3339("2016-12-31T23:59:60Z", &i), 0); /* a leap second */
  assert_int_equal(i, 1483228799);
  assert_int_equal(jk_parse_rfc3339("2023-02-29T00:00:00Z", &i), -1);
  assert_int_equal(jk_parse_rfc3339("2024-02-29T00:00:00Z", &i), 0);
  assert_int_equal(jk_parse_rfc3339("2023-11-14 22:13:20Z", &i), -1);
  assert_int_equal(jk_parse_rfc3339("2023-11-14T22:13:20", &i), -1);
  char buf[40];
  jk_format_rfc3339(1700000000, buf, sizeof buf);
  assert_string_equal(buf, "2023-11-14T22:13:20Z");
  jk_format_rfc3339_ms(1700000000, 7, buf, sizeof buf);
  assert_string_equal(buf, "2023-11-14T22:13:20.007Z");
  jk_format_relative(1700000000 + 840, 1700000000, buf, sizeof buf);
  assert_string_equal(buf, "in 14m");
  jk_format_relative(1700000000 - 7, 1700000000, buf, sizeof buf);
  assert_string_equal(buf, "7s ago");
}

static void test_listen(void **state) {
  (void)state;
  jk_listen l;
  const char *why;
  assert_int_equal(jk_parse_listen("127.0.0.1:8080", 0, &l, &why), 0);
  assert_string_equal(l.text, "127.0.0.1:8080");
  assert_int_equal(l.port, 8080);
  assert_int_equal(jk_parse_listen("localhost:9000", 0, &l, &why), 0);
  assert_string_equal(l.text, "127.0.0.1:9000");
  assert_int_equal(jk_parse_listen("[::1]:443", 0, &l, &why), 0);
  assert_string_equal(l.text, "[::1]:443");
  assert_int_equal(jk_parse_listen("0.0.0.0:1", 0, &l, &why), 0);
  assert_int_equal(jk_parse_listen("127.0.0.1:0", 0, &l, &why), -1);
  assert_non_null(strstr(why, "1..65535"));
  assert_int_equal(jk_parse_listen("127.0.0.1:0", 1, &l, &why), 0); /* "any free port" where allowed */
  assert_int_equal(jk_parse_listen("127.0.0.1:65536", 1, &l, &why), -1);
  assert_int_equal(jk_parse_listen("example.com:80", 0, &l, &why), -1);
  assert_non_null(strstr(why, "no host names"));
  assert_int_equal(jk_parse_listen("::1:80", 0, &l, &why), -1);
  assert_non_null(strstr(why, "[ADDRESS]:PORT"));
  assert_int_equal(jk_parse_listen("[127.0.0.1]:80", 0, &l, &why), -1);
  assert_int_equal(jk_parse_listen("8080", 0, &l, &why), -1);
  assert_int_equal(jk_parse_listen("", 0, &l, &why), -1);
  assert_int_equal(jk_parse_listen("1.2.3.4:", 0, &l, &why), -1);
}

typedef struct ini_log {
  char text[2048];
} ini_log;

static int ini_collect(void *ctx, const jk_ini_item *it, char *err, size_t cap) {
  ini_log *L = ctx;
  size_t n = strlen(L->text);
  if (it->key == NULL)
    snprintf(L->text + n, sizeof L->text - n, "%d[%s|%s]", it->line, it->section, it->name ? it->name : "-");
  else
    snprintf(L->text + n, sizeof L->text - n, "%d%s/%s<%s>", it->line, it->section, it->key, it->value);
  if (it->key != NULL && strcmp(it->key, "bad") == 0) {
    snprintf(err, cap, "'bad' is not a key");
    return -1;
  }
  return 0;
}

static void test_ini_dialect(void **state) {
  (void)state;
  const char *text = "# comment\n"
                     "; comment too\n"
                     "\n"
                     "top = 1\n"
                     "[gate]\n"
                     "  listen=127.0.0.1:1   # trailing comment\r\n"
                     "[route  api ]\n"
                     "url = https://x.example/a#frag\n"
                     "header X-User = sub\n"
                     "path = \"/etc/a #b\"  # quoted keeps ' #'\n"
                     "esc = \"say \\\"hi\\\" \\\\\"\n"
                     "empty =\n"
                     "hash = #comment only\n"
                     "semi = a;b\n";
  ini_log L = {""};
  char err[256] = "";
  assert_int_equal(jk_ini_parse("f.conf", text, strlen(text), ini_collect, &L, err, sizeof err), 0);
  assert_string_equal(L.text, "4/top<1>5[gate|-]6gate/listen<127.0.0.1:1>7[route|api]8route/url<https://x.example/a#frag>"
                              "9route/header X-User<sub>10route/path</etc/a #b>11route/esc<say \"hi\" \\>12route/empty<>"
                              "13route/hash<>14route/semi<a;b>");
  static const struct {
    const char *text, *err;
  } bad[] = {{"a = 1\n[gate\n", "f.conf:2: unterminated section header"},
             {"x\n", "f.conf:1: expected key = value"},
             {" = 3\n", "f.conf:1: a line without a key"},
             {"k = \"open\n", "f.conf:1: unterminated quoted value"},
             {"k = \"a\" b\n", "f.conf:1: text after a quoted value"},
             {"ok = 1\nbad = 2\n", "f.conf:2: 'bad' is not a key"},
             {"[]\n", "f.conf:1: empty section header"}};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    L.text[0] = '\0';
    assert_int_equal(jk_ini_parse("f.conf", bad[i].text, strlen(bad[i].text), ini_collect, &L, err, sizeof err), -1);
    if (strncmp(err, bad[i].err, strlen(bad[i].err)) != 0) fail_msg("\"%s\": %s", bad[i].text, err);
  }
  char *long_line = malloc(JK_INI_MAX_LINE + 10);
  memset(long_line, 'a', JK_INI_MAX_LINE + 9);
  long_line[1] = '=';
  long_line[JK_INI_MAX_LINE + 9] = '\0';
  assert_int_equal(jk_ini_parse("f.conf", long_line, strlen(long_line), ini_collect, &L, err, sizeof err), -1);
  assert_non_null(strstr(err, "f.conf:1: line longer than"));
  free(long_line);
  assert_int_equal(jk_ini_parse("f.conf", "a = b\0c\n", 8, ini_collect, &L, err, sizeof err), -1);
  assert_non_null(strstr(err, "NUL"));
}

/* Lines are valid JSON objects whatever is logged, and never exceed the
 * buffer: every value length around the limit, with escapes and UTF-8. */
static void test_log_lines(void **state) {
  (void)state;
  char path[] = "/tmp/jwtkit-log.XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  jk_log_set_fd(fd);
  jk_log_set_level(JK_LOG_INFO);
  jk_logline L;
  assert_int_equal(jk_log_begin(&L, JK_LOG_DEBUG, "hidden"), 0);
  char *val = malloc(5000);
  for (size_t n = 3950; n <= 4100; n++) {
    memset(val, 'x', n);
    val[n / 2] = '"';
    val[n / 3] = '\n';
    val[n / 4] = (char)0xC3; /* an incomplete sequence: U+FFFD */
    assert_int_equal(jk_log_begin(&L, JK_LOG_WARN, "e\"v"), 1);
    jk_log_strn(&L, "path", val, n);
    jk_log_int(&L, "n", (int64_t)n);
    jk_log_bool(&L, "b", 1);
    jk_log_str(&L, "tail", "t");
    assert_true(L.len <= sizeof L.buf);
    jk_log_end(&L);
    assert_true(L.len <= sizeof L.buf);
  }
  free(val);
  jk_log(JK_LOG_ERROR, "done", "x=%d", 5);
  jk_log_set_fd(2);
  close(fd);
  size_t len = 0;
  char *all = tu_read_file(path, &len);
  unlink(path);
  assert_non_null(all);
  size_t lines = 0;
  for (char *p = all; *p;) {
    char *nl = strchr(p, '\n');
    assert_non_null(nl);
    json_error_t je;
    json_t *j = json_loadb(p, (size_t)(nl - p), 0, &je);
    if (j == NULL) fail_msg("line %zu is not JSON: %s", lines + 1, je.text);
    assert_true(json_is_string(json_object_get(j, "ts")));
    assert_true(json_is_string(json_object_get(j, "event")));
    json_decref(j);
    lines++;
    p = nl + 1;
  }
  assert_int_equal(lines, 151 + 1);
  assert_non_null(strstr(all, "\"truncated\":true"));
  assert_non_null(strstr(all, "\"event\":\"done\",\"msg\":\"x=5\"}"));
  assert_non_null(strstr(all, "\\ufffd"));
  free(all);
  jk_log_level lv;
  assert_int_equal(jk_log_parse_level("warning", &lv), 0);
  assert_int_equal(lv, JK_LOG_WARN);
  assert_int_equal(jk_log_parse_level("loud", &lv), -1);
}

static void test_prom_and_buf(void **state) {
  (void)state;
  jk_buf b;
  jk_buf_init(&b);
  jk_prom_family(&b, "jwtkit_x_total", "counter", "Things.");
  const char *const lab[] = {"route", "a\"b\\c\nd", "skip", NULL, "k", "v", NULL};
  jk_prom_u64(&b, "jwtkit_x_total", lab, 18446744073709551615ull);
  jk_prom_i64(&b, "jwtkit_y", NULL, -3);
  jk_prom_f64(&b, "jwtkit_z", NULL, 0.25);
  size_t n;
  char *s = jk_buf_take(&b, &n);
  assert_string_equal(s, "# HELP jwtkit_x_total Things.\n# TYPE jwtkit_x_total counter\n"
                         "jwtkit_x_total{route=\"a\\\"b\\\\c\\nd\",k=\"v\"} 18446744073709551615\n"
                         "jwtkit_y -3\njwtkit_z 0.25\n");
  free(s);
  /* a capped buffer fails like out of memory, and stays failed */
  jk_buf_init_max(&b, 8);
  jk_buf_puts(&b, "12345678");
  assert_int_equal(b.oom, 0);
  jk_buf_putc(&b, '9');
  assert_int_equal(b.oom, 1);
  assert_null(jk_buf_take(&b, &n));
  /* strict and lossy JSON strings */
  jk_buf_init(&b);
  assert_int_equal(jk_buf_json_str(&b, "a\xff", 2), -1);
  jk_buf_free(&b);
  jk_buf_init(&b);
  jk_buf_json_str_lossy(&b, "a\xff\x01\"\xe2\x80\xa8", 7);
  jk_buf_printf(&b, "|%05d", 42);
  s = jk_buf_take(&b, &n);
  assert_string_equal(s, "\"a\\ufffd\\u0001\\\"\xe2\x80\xa8\"|00042");
  free(s);
  char big[600];
  memset(big, 'q', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  jk_buf_init(&b);
  jk_buf_printf(&b, "<%s>", big); /* longer than printf's stack buffer */
  s = jk_buf_take(&b, &n);
  assert_int_equal(n, sizeof big + 1);
  free(s);
}

static void test_utf8_hex(void **state) {
  (void)state;
  assert_true(jk_utf8_valid((const unsigned char *)"caf\xc3\xa9 \xf0\x9f\x98\x80", 10));
  static const char *const bad[] = {"\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xc3", "\xff"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    assert_false(jk_utf8_valid((const unsigned char *)bad[i], strlen(bad[i])));
  char o[4];
  assert_int_equal(jk_utf8_encode(0x2028, o), 3);
  assert_memory_equal(o, "\xe2\x80\xa8", 3);
  assert_int_equal(jk_utf8_encode(0xD800, o), 0);
  assert_int_equal(jk_utf8_encode(0x110000, o), 0);
  assert_int_equal(jk_utf8_encode(0x1F600, o), 4);
  char hx[9];
  jk_hex_encode("\x01\xab\xff\x00", 4, hx);
  assert_string_equal(hx, "01abff00");
  unsigned char bin[4];
  assert_int_equal(jk_hex_decode("01ABff00", 8, bin, 4), 4);
  assert_memory_equal(bin, "\x01\xab\xff\x00", 4);
  assert_int_equal(jk_hex_decode("0g", 2, bin, 4), -1);
  assert_int_equal(jk_hex_decode("012", 3, bin, 4), -1);
  assert_int_equal(jk_hex_decode("0102030405", 10, bin, 4), -1);
}

typedef struct thing {
  jk_snap_obj base;
  int *destroyed;
} thing;

static void thing_destroy(jk_snap_obj *o) {
  thing *t = (thing *)o;
  (*t->destroyed)++;
  free(t);
}

static void test_snapshot(void **state) {
  (void)state;
  int destroyed = 0;
  jk_snap s;
  jk_snap_init(&s);
  assert_null(jk_snap_acquire(&s));
  thing *a = malloc(sizeof *a), *b = malloc(sizeof *b);
  a->destroyed = b->destroyed = &destroyed;
  jk_snap_obj_init(&a->base, thing_destroy);
  jk_snap_obj_init(&b->base, thing_destroy);
  jk_snap_publish(&s, &a->base);
  jk_snap_obj *r = jk_snap_acquire(&s); /* a reader holds a */
  assert_ptr_equal(r, &a->base);
  jk_snap_publish(&s, &b->base); /* a is replaced, but still read */
  assert_int_equal(destroyed, 0);
  jk_snap_release(r); /* the last reader of a lets go */
  assert_int_equal(destroyed, 1);
  r = jk_snap_acquire(&s);
  assert_ptr_equal(r, &b->base);
  jk_snap_release(r);
  jk_snap_destroy(&s);
  assert_int_equal(destroyed, 2);
  jk_snap_release(NULL);
}

/* Standard base64: RFC 4648 §10 vectors both ways, then what strictness
 * refuses: missing or extra padding, base64url's characters, whitespace,
 * non-zero unused bits. */
static void test_b64(void **state) {
  (void)state;
  static const char *const vec[][2] = {{"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},
                                       {"foo", "Zm9v"},  {"foob", "Zm9vYg=="},  {"fooba", "Zm9vYmE="},
                                       {"foobar", "Zm9vYmFy"}};
  char enc[64];
  unsigned char dec[64];
  size_t n;
  for (size_t i = 0; i < sizeof vec / sizeof *vec; i++) {
    size_t rl = strlen(vec[i][0]), el = strlen(vec[i][1]);
    assert_int_equal(jk_b64_enc_len(rl), el);
    assert_int_equal(jk_b64_encode(enc, (const unsigned char *)vec[i][0], rl), el);
    assert_memory_equal(enc, vec[i][1], el);
    assert_int_equal(jk_b64_decode(dec, &n, vec[i][1], el), 0);
    assert_int_equal(n, rl);
    assert_memory_equal(dec, vec[i][0], rl);
  }
  /* every byte value, past the chunk size of the decoder, both ways: 62 and
   * 63 come out as '+' and '/' */
  unsigned char raw[700], back[700];
  for (size_t i = 0; i < sizeof raw; i++) raw[i] = (unsigned char)(i * 131 + 7);
  char big[1000];
  for (size_t len = 0; len <= sizeof raw; len += 97) {
    size_t el = jk_b64_encode(big, raw, len);
    assert_int_equal(el, jk_b64_enc_len(len));
    assert_null(memchr(big, '-', el));
    assert_null(memchr(big, '_', el));
    assert_true(jk_b64_dec_max(el) <= sizeof back);
    assert_int_equal(jk_b64_decode(back, &n, big, el), 0);
    assert_int_equal(n, len);
    assert_memory_equal(back, raw, len);
  }
  static const unsigned char hi[] = {0xfb, 0xff};
  assert_int_equal(jk_b64_encode(enc, hi, 2), 4);
  assert_memory_equal(enc, "+/8=", 4);
  static const char *const bad[] = {"Zg",   "Zg=",  "Zm8",  "Zg===", "Z===",     "====",  "Zh==",   "Zm9=",
                                    "Zm-_", "_m9v", "Zm 8", "Zg==Zg==", "=Zg=", "Zm9\n", "Zm9v===="};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    if (jk_b64_decode(dec, &n, bad[i], strlen(bad[i])) == 0) fail_msg("\"%s\" decoded", bad[i]);
  assert_int_equal(jk_b64_decode(dec, &n, "Z\0==", 4), -1); /* a NUL inside */
}

/* mkdir -p, with and without the last component. */
static void test_mkdirs(void **state) {
  (void)state;
  char root[] = "/tmp/jk-mkdirs-XXXXXX", p[256];
  assert_non_null(mkdtemp(root));
  struct stat st;
  snprintf(p, sizeof p, "%s/a/b/file", root);
  assert_int_equal(jk_mkdirs(p, 0700, 0), 0);
  snprintf(p, sizeof p, "%s/a/b", root);
  assert_int_equal(stat(p, &st), 0);
  assert_true(S_ISDIR(st.st_mode));
  assert_int_equal(st.st_mode & 0777, 0700);
  snprintf(p, sizeof p, "%s/a/b/file", root);
  assert_int_not_equal(stat(p, &st), 0); /* the last component is a file name */
  snprintf(p, sizeof p, "%s/c/d", root);
  assert_int_equal(jk_mkdirs(p, 0750, 1), 0);
  assert_int_equal(stat(p, &st), 0);
  assert_true(S_ISDIR(st.st_mode));
  assert_int_equal(jk_mkdirs(p, 0750, 1), 0); /* existing: fine */
  assert_int_equal(jk_mkdirs("plain-name", 0700, 0), 0); /* nothing to create */
  /* a file where a directory must go */
  snprintf(p, sizeof p, "%s/f", root);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  fclose(f);
  snprintf(p, sizeof p, "%s/f/g/h", root);
  assert_int_equal(jk_mkdirs(p, 0700, 0), -1);
  assert_int_equal(errno, ENOTDIR);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
  assert_int_equal(system(cmd), 0);
}

/* Values written by jk_ini_put_value read back unchanged, raw when they
 * can be. */
static void test_ini_put_value(void **state) {
  (void)state;
  static const struct {
    const char *v, *written;
  } c[] = {{"plain", "plain"},
           {"a#b", "a#b"},
           {"https://x.example/#frag", "https://x.example/#frag"},
           {"a \"quoted\" word", "a \"quoted\" word"},
           {"", ""},
           {"/etc/a #b", "\"/etc/a #b\""},
           {"#lead", "\"#lead\""},
           {"\"lead", "\"\\\"lead\""},
           {" pad ", "\" pad \""},
           {"tab\t#x", "\"tab\t#x\""},
           {"back\\slash #", "\"back\\\\slash #\""},
           {"cr\r", "\"cr\r\""}};
  for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
    jk_buf b;
    jk_buf_init(&b);
    jk_buf_puts(&b, "k = ");
    assert_int_equal(jk_ini_put_value(&b, c[i].v), 0);
    jk_buf_puts(&b, "  # a comment\n");
    size_t len = 0;
    char *text = jk_buf_take(&b, &len);
    assert_non_null(text);
    if (strncmp(text + 4, c[i].written, strlen(c[i].written)) != 0) fail_msg("\"%s\" written as %s", c[i].v, text);
    ini_log L = {""};
    char err[256] = "";
    assert_int_equal(jk_ini_parse("f.conf", text, len, ini_collect, &L, err, sizeof err), 0);
    char want[300];
    snprintf(want, sizeof want, "1/k<%s>", c[i].v);
    if (strcmp(L.text, want) != 0) fail_msg("\"%s\" read back as %s", c[i].v, L.text);
    jk_free(text);
  }
  jk_buf b;
  jk_buf_init(&b);
  assert_int_equal(jk_ini_put_value(&b, "two\nlines"), -1);
  assert_int_equal(b.len, 0);
  jk_buf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_durations),  cmocka_unit_test(test_numbers_bools_times), cmocka_unit_test(test_listen),
      cmocka_unit_test(test_ini_dialect), cmocka_unit_test(test_log_lines),         cmocka_unit_test(test_prom_and_buf),
      cmocka_unit_test(test_utf8_hex),   cmocka_unit_test(test_snapshot),           cmocka_unit_test(test_b64),
      cmocka_unit_test(test_mkdirs),     cmocka_unit_test(test_ini_put_value),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
