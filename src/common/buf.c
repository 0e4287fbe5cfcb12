/* The dynamic buffer and the JSON text writer: the one writer of the
 * project (library, command, services).  Appends are sticky on failure
 * (`oom`): check once at the end with jk_buf_take.  A buffer may be capped
 * (jk_buf_init_max): an append past the cap fails like out-of-memory.
 * Growth copies and wipes the old block, so a buffer that held secrets
 * never leaves an unwiped copy behind. */
#include "common/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/utf8.h"
#include "core/alloc.h"

void jk_buf_init(jk_buf *b) { memset(b, 0, sizeof *b); }

void jk_buf_init_max(jk_buf *b, size_t max) {
  jk_buf_init(b);
  b->max = max;
}

void jk_buf_free(jk_buf *b) {
  size_t max = b->max;
  jk_free(b->p);
  jk_buf_init_max(b, max);
}

void jk_buf_free_wipe(jk_buf *b) {
  if (b->p != NULL) jk_wipe(b->p, b->cap);
  jk_buf_free(b);
}

int jk_buf_reserve(jk_buf *b, size_t extra) {
  if (b->oom) return -1;
  size_t need;
  if (!jk_add_ok(b->len, extra, &need) || !jk_add_ok(need, 1, &need)) {
    b->oom = 1;
    return -1;
  }
  if (b->max != 0 && need > b->max + 1) { /* + 1: the NUL */
    b->oom = 1;
    return -1;
  }
  if (need <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need) {
    if (cap > SIZE_MAX / 2) {
      cap = need;
      break;
    }
    cap *= 2;
  }
  if (b->max != 0 && cap > b->max + 1) cap = b->max + 1;
  /* grow by copy so a buffer that held secrets is never left behind unwiped */
  char *np = jk_malloc(cap);
  if (np == NULL) {
    b->oom = 1;
    return -1;
  }
  if (b->p != NULL) {
    memcpy(np, b->p, b->len);
    jk_wipe(b->p, b->cap);
    jk_free(b->p);
  }
  b->p = np;
  b->cap = cap;
  return 0;
}

void jk_buf_put(jk_buf *b, const void *s, size_t n) {
  if (jk_buf_reserve(b, n) != 0) return;
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

void jk_buf_puts(jk_buf *b, const char *s) { jk_buf_put(b, s, strlen(s)); }

void jk_buf_putc(jk_buf *b, char c) { jk_buf_put(b, &c, 1); }

int jk_buf_json_str(jk_buf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  if (!jk_utf8_valid((const unsigned char *)s, n) || memchr(s, '\0', n) != NULL) {
    b->oom = 1; /* poison: the document can no longer be completed */
    return -1;
  }
  size_t worst;
  if (!jk_mul_ok(n, 6, &worst) || !jk_add_ok(worst, 2, &worst) || jk_buf_reserve(b, worst) != 0)
    return -2;
  char *o = b->p + b->len;
  *o++ = '"';
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      *o++ = '\\';
      *o++ = (char)c;
    } else if (c < 0x20) {
      *o++ = '\\';
      switch (c) {
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        default:
          *o++ = 'u';
          *o++ = '0';
          *o++ = '0';
          *o++ = hex[c >> 4];
          *o++ = hex[c & 15];
      }
    } else {
      *o++ = (char)c;
    }
  }
  *o++ = '"';
  b->len = (size_t)(o - b->p);
  b->p[b->len] = '\0';
  return 0;
}

void jk_buf_json_str_lossy(jk_buf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *p = (const unsigned char *)s;
  jk_buf_putc(b, '"');
  size_t i = 0;
  while (i < n && !b->oom) {
    size_t run = i;
    while (run < n && p[run] >= 0x20 && p[run] < 0x7F && p[run] != '"' && p[run] != '\\') run++;
    if (run > i) {
      jk_buf_put(b, s + i, run - i);
      i = run;
      continue;
    }
    unsigned char c = p[i];
    if (c == '"' || c == '\\') {
      char e[2] = {'\\', (char)c};
      jk_buf_put(b, e, 2);
      i++;
    } else if (c < 0x20 || c == 0x7F) {
      char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      jk_buf_put(b, e, 6);
      i++;
    } else {
      size_t k = jk_utf8_seq(p + i, n - i);
      if (k == 0) {
        jk_buf_puts(b, "\\ufffd");
        i++;
      } else {
        jk_buf_put(b, s + i, k);
        i += k;
      }
    }
  }
  jk_buf_putc(b, '"');
}

void jk_buf_printf(jk_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char tmp[256];
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) {
    b->oom = 1;
    return;
  }
  if ((size_t)n < sizeof tmp) {
    jk_buf_put(b, tmp, (size_t)n);
    return;
  }
  if (jk_buf_reserve(b, (size_t)n) != 0) return;
  va_start(ap, fmt);
  vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

void jk_buf_int(jk_buf *b, int64_t v) {
  char tmp[24];
  char *e = tmp + sizeof tmp, *q = e;
  uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  do {
    *--q = (char)('0' + u % 10);
    u /= 10;
  } while (u != 0);
  if (v < 0) *--q = '-';
  jk_buf_put(b, q, (size_t)(e - q));
}

char *jk_buf_take(jk_buf *b, size_t *len) {
  if (b->oom) {
    jk_buf_free_wipe(b);
    return NULL;
  }
  if (b->p == NULL && jk_buf_reserve(b, 0) != 0) return NULL;
  char *p = b->p;
  if (len != NULL) *len = b->len;
  jk_buf_init(b);
  return p;
}
