/* JSON-lines logs: one object per line on stderr, written with one write(2)
 * so lines from different threads never interleave.  Values are escaped;
 * bytes that are not valid UTF-8 become U+FFFD.  Tokens and secrets are
 * never passed here (callers log a token's SHA-256 prefix at most). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gate_internal.h"

static atomic_int g_level = GL_INFO;
static atomic_int g_fd = 2;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void gate_log_set_level(gate_level l) { atomic_store(&g_level, (int)l); }
gate_level gate_log_level(void) { return (gate_level)atomic_load(&g_level); }
void gate_log_set_fd(int fd) { atomic_store(&g_fd, fd); }

int gate_log_parse_level(const char *s, gate_level *out) {
  for (int i = 0; i < 4; i++)
    if (strcmp(s, level_names[i]) == 0) {
      *out = (gate_level)i;
      return 0;
    }
  if (strcmp(s, "warning") == 0) {
    *out = GL_WARN;
    return 0;
  }
  return -1;
}

/* room kept for a closing quote and `,"truncated":true}\n` */
#define RESERVE 32

/* Append n bytes; `partial`: may be cut when the line is full (plain
 * string content), else all or nothing.  Once full, nothing more is added. */
static void put_(gate_logline *L, const char *s, size_t n, int partial) {
  if (L->truncated) return;
  /* a string that filled the line exactly had its closing quote written
   * into the reserve (gl_strn): len is then past the limit and nothing
   * fits any more (found by fuzz/fuzz_gate_request.c: the unsigned
   * subtraction wrapped and the next field overran the buffer) */
  size_t limit = sizeof L->buf - RESERVE;
  size_t room = L->len < limit ? limit - L->len : 0;
  if (n > room) {
    L->truncated = 1;
    if (!partial) return;
    n = room;
  }
  memcpy(L->buf + L->len, s, n);
  L->len += n;
}
#define put(L, s, n) put_((L), (s), (n), 0)

static size_t utf8_len(const unsigned char *p, size_t n) {
  unsigned char c = p[0];
  size_t need;
  uint32_t cp;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) need = 2, cp = c & 0x1F;
  else if (c >= 0xE0 && c <= 0xEF) need = 3, cp = c & 0x0F;
  else if (c >= 0xF0 && c <= 0xF4) need = 4, cp = c & 0x07;
  else return 0;
  if (n < need) return 0;
  for (size_t i = 1; i < need; i++) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3F);
  }
  if ((need == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (need == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
    return 0;
  return need;
}

static void put_escaped(gate_logline *L, const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < n && !L->truncated) {
    unsigned char c = p[i];
    char esc[8];
    if (c == '"' || c == '\\') {
      esc[0] = '\\';
      esc[1] = (char)c;
      put(L, esc, 2);
      i++;
    } else if (c < 0x20 || c == 0x7F) {
      snprintf(esc, sizeof esc, "\\u%04x", c);
      put(L, esc, 6);
      i++;
    } else if (c < 0x80) {
      size_t j = i;
      while (j < n && p[j] >= 0x20 && p[j] < 0x7F && p[j] != '"' && p[j] != '\\') j++;
      put_(L, s + i, j - i, 1);
      i = j;
    } else {
      size_t k = utf8_len(p + i, n - i);
      if (k == 0) {
        put(L, "\\ufffd", 6);
        i++;
      } else {
        put(L, s + i, k);
        i += k;
      }
    }
  }
}

int gl_begin(gate_logline *L, gate_level lvl, const char *event) {
  L->len = 0;
  L->truncated = 0;
  if ((int)lvl < atomic_load(&g_level)) return 0;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  time_t t = ts.tv_sec;
  gmtime_r(&t, &tm);
  char head[96];
  int n = snprintf(head, sizeof head, "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\",\"event\":\"",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                   ts.tv_nsec / 1000000, level_names[lvl]);
  put(L, head, (size_t)n);
  put_escaped(L, event, strlen(event));
  put(L, "\"", 1);
  return 1;
}

/* Keys are program constants: written whole or not at all.  Returns 0
 * when the line is full (the field is then left out). */
static int key(gate_logline *L, const char *k) {
  if (L->len == 0 || L->truncated) return 0;
  size_t start = L->len;
  put(L, ",\"", 2);
  put(L, k, strlen(k));
  put(L, "\":", 2);
  if (L->truncated) {
    L->len = start;
    return 0;
  }
  return 1;
}

void gl_strn(gate_logline *L, const char *k, const char *val, size_t n) {
  size_t start = L->len;
  if (!key(L, k)) return;
  if (val == NULL) {
    put(L, "null", 4);
    if (L->truncated) L->len = start;
    return;
  }
  put(L, "\"", 1);
  if (L->truncated) {
    L->len = start;
    return;
  }
  put_escaped(L, val, n);
  /* the reserve always leaves room for the closing quote */
  L->buf[L->len++] = '"';
}

void gl_str(gate_logline *L, const char *k, const char *val) { gl_strn(L, k, val, val ? strlen(val) : 0); }

void gl_int(gate_logline *L, const char *k, int64_t v) {
  size_t start = L->len;
  if (!key(L, k)) return;
  char num[24];
  int n = snprintf(num, sizeof num, "%lld", (long long)v);
  put(L, num, (size_t)n);
  if (L->truncated) L->len = start;
}

void gl_bool(gate_logline *L, const char *k, int v) {
  size_t start = L->len;
  if (!key(L, k)) return;
  put(L, v ? "true" : "false", v ? 4 : 5);
  if (L->truncated) L->len = start;
}

void gl_end(gate_logline *L) {
  if (L->len == 0) return;
  if (L->truncated) {
    static const char tail[] = ",\"truncated\":true}\n";
    memcpy(L->buf + L->len, tail, sizeof tail - 1);
    L->len += sizeof tail - 1;
  } else {
    L->buf[L->len++] = '}';
    L->buf[L->len++] = '\n';
  }
  const char *p = L->buf;
  size_t n = L->len;
  int fd = atomic_load(&g_fd);
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      break;
    }
    p += w;
    n -= (size_t)w;
  }
  L->len = 0;
}

void gate_log(gate_level lvl, const char *event, const char *fmt, ...) {
  gate_logline L;
  if (!gl_begin(&L, lvl, event)) return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  gl_str(&L, "msg", msg);
  gl_end(&L);
}
