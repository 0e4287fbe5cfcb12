/* A bounded growable buffer and the one JSON string escaper of the issuer.
 * Every JSON text the issuer produces (responses, discovery, logs) goes
 * through sv_json_str for its strings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "serve.h"

void sv_buf_init(sv_buf *b, size_t max) {
  b->p = NULL;
  b->len = b->cap = 0;
  b->max = max;
  b->failed = 0;
}

void sv_buf_free(sv_buf *b) {
  free(b->p);
  sv_buf_init(b, b->max);
}

void sv_buf_free_wipe(sv_buf *b) {
  if (b->p) OPENSSL_cleanse(b->p, b->cap);
  sv_buf_free(b);
}

static int grow(sv_buf *b, size_t add) {
  if (b->failed) return -1;
  if (add > b->max || b->len + add + 1 > b->max) {
    b->failed = 1;
    return -1;
  }
  size_t need = b->len + add + 1;
  if (need <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < need) cap *= 2;
  if (cap > b->max) cap = b->max;
  /* copy-and-wipe rather than realloc: buffers may hold tokens */
  char *p = malloc(cap);
  if (p == NULL) {
    b->failed = 1;
    return -1;
  }
  if (b->p) {
    memcpy(p, b->p, b->len);
    OPENSSL_cleanse(b->p, b->cap);
    free(b->p);
  }
  b->p = p;
  b->cap = cap;
  return 0;
}

void sv_buf_put(sv_buf *b, const void *s, size_t n) {
  if (n == 0 || grow(b, n) != 0) return;
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

void sv_buf_puts(sv_buf *b, const char *s) { sv_buf_put(b, s, strlen(s)); }

void sv_buf_putc(sv_buf *b, char c) { sv_buf_put(b, &c, 1); }

void sv_buf_int(sv_buf *b, int64_t v) {
  char tmp[24];
  int n = snprintf(tmp, sizeof tmp, "%lld", (long long)v);
  sv_buf_put(b, tmp, (size_t)n);
}

void sv_buf_printf(sv_buf *b, const char *fmt, ...) {
  char tmp[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) {
    b->failed = 1;
    return;
  }
  if ((size_t)n >= sizeof tmp) n = (int)sizeof tmp - 1; /* callers format short things */
  sv_buf_put(b, tmp, (size_t)n);
}

/* A well-formed UTF-8 sequence at s[i] that can be copied as it is. */
static size_t utf8_seq(const unsigned char *s, size_t i, size_t n) {
  size_t len = sv_utf8_seq(s, i, n);
  if (len != 3) return len;
  unsigned cp = (unsigned)(s[i] & 0x0F) << 12 | (unsigned)(s[i + 1] & 0x3F) << 6 | (s[i + 2] & 0x3F);
  /* U+2028 and U+2029 are valid JSON but break JavaScript embedding */
  if (cp == 0x2028 || cp == 0x2029) return 0;
  return len;
}

void sv_json_str(sv_buf *b, const char *str, size_t n) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *s = (const unsigned char *)str;
  sv_buf_putc(b, '"');
  size_t run = 0; /* start of the pending run of bytes copied as they are */
  for (size_t i = 0; i < n;) {
    unsigned c = s[i];
    const char *esc = NULL;
    char ubuf[7];
    size_t adv = 1;
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      i++;
      continue;
    }
    if (c >= 0x80) {
      size_t l = utf8_seq(s, i, n);
      if (l > 0) {
        i += l;
        continue;
      }
      /* not UTF-8 (or U+2028/9): escape the code point when it is one of
       * the two separators, else replace the byte */
      if (i + 2 < n && c == 0xE2 && s[i + 1] == 0x80 && (s[i + 2] == 0xA8 || s[i + 2] == 0xA9)) {
        esc = s[i + 2] == 0xA8 ? "\\u2028" : "\\u2029";
        adv = 3;
      } else {
        esc = "\\ufffd";
      }
    } else if (c == '"') {
      esc = "\\\"";
    } else if (c == '\\') {
      esc = "\\\\";
    } else if (c == '\n') {
      esc = "\\n";
    } else if (c == '\r') {
      esc = "\\r";
    } else if (c == '\t') {
      esc = "\\t";
    } else {
      ubuf[0] = '\\';
      ubuf[1] = 'u';
      ubuf[2] = '0';
      ubuf[3] = '0';
      ubuf[4] = hex[c >> 4];
      ubuf[5] = hex[c & 15];
      ubuf[6] = '\0';
      esc = ubuf;
    }
    sv_buf_put(b, s + run, i - run);
    sv_buf_puts(b, esc);
    i += adv;
    run = i;
  }
  sv_buf_put(b, s + run, n - run);
  sv_buf_putc(b, '"');
}

void sv_json_kv_str(sv_buf *b, const char *key, const char *s, int first) {
  if (!first) sv_buf_putc(b, ',');
  sv_json_str(b, key, strlen(key));
  sv_buf_putc(b, ':');
  sv_json_str(b, s, strlen(s));
}

void sv_json_kv_int(sv_buf *b, const char *key, int64_t v, int first) {
  if (!first) sv_buf_putc(b, ',');
  sv_json_str(b, key, strlen(key));
  sv_buf_putc(b, ':');
  sv_buf_int(b, v);
}

char *sv_buf_take(sv_buf *b, size_t *len) {
  if (b->failed) {
    sv_buf_free_wipe(b);
    return NULL;
  }
  if (b->p == NULL) {
    if (grow(b, 0) != 0) return NULL;
    b->p[0] = '\0';
  }
  char *p = b->p;
  if (len) *len = b->len;
  b->p = NULL;
  b->len = b->cap = 0;
  return p;
}
