/* Key-encryption keys: parsing, ids, generation. */
#include <string.h>

#include "codec/b64url.h"
#include "core/alloc.h"
#include "core/error_internal.h"
#include "crypto/key_internal.h" /* jk_random */
#include "crypto/seal.h"
#include "jwtkit/keyring.h"
#include "store.h"

#define KEK_MAX 16u
#define KEK_TEXT_MAX (64u << 10)

void jk_kek_id(const unsigned char kek[32], char out[JK_KEK_ID_LEN + 1]) {
  unsigned char md[32];
  int ok = jk_sha256_2("jwtkit-kek", 10, kek, 32, md) == 0;
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < JK_KEK_ID_LEN / 2; i++) {
    /* a failed digest yields an id no row carries: nothing opens */
    out[2 * i] = ok ? hex[md[i] >> 4] : 'x';
    out[2 * i + 1] = ok ? hex[md[i] & 15] : 'x';
  }
  out[JK_KEK_ID_LEN] = '\0';
}

void jwtkit_kek_id(const unsigned char kek[32], char out[17]) { jk_kek_id(kek, out); }

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* One entry (trimmed) into out; 0 or -1. */
static int kek_decode(const char *s, size_t n, unsigned char out[32]) {
  if (n == 64) {
    for (size_t i = 0; i < 32; i++) {
      int h = hexval(s[2 * i]), l = hexval(s[2 * i + 1]);
      if (h < 0 || l < 0) return -1;
      out[i] = (unsigned char)(h << 4 | l);
    }
    return 0;
  }
  if (n == 44 && s[43] == '=') n = 43;
  if (n != 43) return -1;
  char url[43];
  for (size_t i = 0; i < 43; i++) url[i] = s[i] == '+' ? '-' : s[i] == '/' ? '_' : s[i];
  unsigned char buf[34];
  size_t got = 0;
  int rc = jk_b64url_decode(buf, &got, url, 43) == 0 && got == 32 ? 0 : -1;
  if (rc == 0) memcpy(out, buf, 32);
  jk_wipe(buf, sizeof buf);
  jk_wipe(url, sizeof url);
  return rc;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

jwtkit_err jwtkit_kek_parse(const char *text, size_t len, unsigned char (**keks)[32], size_t *n, jwtkit_errinfo *info) {
  if (keks == NULL || n == NULL || (text == NULL && len > 0)) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, NULL);
  *keks = NULL;
  *n = 0;
  if (len > KEK_TEXT_MAX) return jk_fail(info, JWTKIT_ERR_TOO_LARGE, NULL, "KEK text larger than %u bytes", KEK_TEXT_MAX);
  unsigned char(*out)[32] = jk_malloc(KEK_MAX * sizeof *out);
  if (out == NULL) return jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
  size_t count = 0, line = 1, i = 0;
  jwtkit_err rc = JWTKIT_OK;
  while (i < len && rc == JWTKIT_OK) {
    /* a comment line */
    size_t j = i;
    while (j < len && is_space(text[j])) j++;
    if (j < len && text[j] == '#') {
      while (j < len && text[j] != '\n') j++;
      i = j;
      continue;
    }
    size_t end = j;
    while (end < len && text[end] != '\n' && text[end] != ',') end++;
    size_t e = end;
    while (e > j && is_space(text[e - 1])) e--;
    if (e > j) {
      if (count == KEK_MAX) {
        rc = jk_fail(info, JWTKIT_ERR_TOO_LARGE, NULL, "more than %u KEKs", KEK_MAX);
      } else if (kek_decode(text + j, e - j, out[count]) != 0) {
        rc = jk_fail(info, JWTKIT_ERR_INVALID_KEY, NULL,
                     "KEK %zu (line %zu): expected 32 bytes as 64 hex digits or 43 base64url characters", count + 1,
                     line);
      } else {
        for (size_t k = 0; k < count && rc == JWTKIT_OK; k++)
          if (jk_ct_equal(out[k], out[count], 32))
            rc = jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, "KEK %zu is listed twice", k + 1);
        count++;
      }
    }
    if (end < len && text[end] == '\n') line++;
    i = end + 1;
  }
  if (rc == JWTKIT_OK && count == 0) rc = jk_fail(info, JWTKIT_ERR_INVALID_KEY, NULL, "no KEK given");
  if (rc != JWTKIT_OK) {
    jk_free_secret(out, KEK_MAX * sizeof *out);
    return rc;
  }
  *keks = out;
  *n = count;
  return JWTKIT_OK;
}

void jwtkit_kek_free(unsigned char (*keks)[32], size_t n) {
  (void)n; /* the array always holds room for the maximum */
  if (keks) jk_free_secret(keks, KEK_MAX * sizeof *keks);
}

jwtkit_err jwtkit_kek_generate(char out[44]) {
  unsigned char k[32];
  if (jk_random(k, sizeof k) != 0) return JWTKIT_ERR_CRYPTO;
  size_t n = jk_b64url_encode(out, k, sizeof k);
  out[n] = '\0';
  jk_wipe(k, sizeof k);
  return JWTKIT_OK;
}
