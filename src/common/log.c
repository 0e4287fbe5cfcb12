/* JSON-lines logs (log.h). */
#include "common/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/parse.h"
#include "common/utf8.h"

static atomic_int g_level = JK_LOG_INFO;
static atomic_int g_fd = 2;
static const char *const k_names[] = {"debug", "info", "warn", "error"};

void jk_log_set_level(jk_log_level l) { atomic_store(&g_level, (int)l); }
jk_log_level jk_log_get_level(void) { return (jk_log_level)atomic_load(&g_level); }
int jk_log_enabled(jk_log_level l) { return (int)l >= atomic_load(&g_level); }
void jk_log_set_fd(int fd) { atomic_store(&g_fd, fd); }
const char *jk_log_level_name(jk_log_level l) { return (unsigned)l < 4 ? k_names[l] : "info"; }

int jk_log_parse_level(const char *s, jk_log_level *out) {
  for (int i = 0; i < 4; i++)
    if (strcmp(s, k_names[i]) == 0) {
      *out = (jk_log_level)i;
      return 0;
    }
  if (strcmp(s, "warning") == 0) {
    *out = JK_LOG_WARN;
    return 0;
  }
  return -1;
}

/* room kept for a closing quote and `,"truncated":true}\n` */
#define RESERVE 32

/* Append n bytes; `partial`: may be cut when the line is full (inside a
 * string value), else all or nothing.  Once full, nothing more is added.
 * The room is computed so it never wraps: a string that filled the line to
 * the limit may have put its closing quote into the reserve, and len is
 * then past the limit. */
static void put_(jk_logline *L, const char *s, size_t n, int partial) {
  if (L->truncated) return;
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

static void put_escaped(jk_logline *L, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < n && !L->truncated) {
    unsigned char c = p[i];
    if (c == '"' || c == '\\') {
      char e[2] = {'\\', (char)c};
      put(L, e, 2);
      i++;
    } else if (c < 0x20 || c == 0x7F) {
      char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      put(L, e, 6);
      i++;
    } else if (c < 0x80) {
      size_t j = i;
      while (j < n && p[j] >= 0x20 && p[j] < 0x7F && p[j] != '"' && p[j] != '\\') j++;
      put_(L, s + i, j - i, 1);
      i = j;
    } else {
      size_t k = jk_utf8_seq(p + i, n - i);
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

/* `,"key":` all or nothing (keys are short ASCII names). */
static void key(jk_logline *L, const char *k) {
  char t[80];
  size_t n = strlen(k);
  if (n > sizeof t - 5) n = sizeof t - 5;
  t[0] = ',';
  t[1] = '"';
  memcpy(t + 2, k, n);
  t[n + 2] = '"';
  t[n + 3] = ':';
  put(L, t, n + 4);
}

int jk_log_begin(jk_logline *L, jk_log_level l, const char *event) {
  if (!jk_log_enabled(l)) return 0;
  L->len = 0;
  L->truncated = 0;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  char when[40];
  jk_format_rfc3339_ms((int64_t)ts.tv_sec, (int)(ts.tv_nsec / 1000000), when, sizeof when);
  put(L, "{\"ts\":\"", 7);
  put(L, when, strlen(when));
  put(L, "\",\"level\":\"", 11);
  put(L, jk_log_level_name(l), strlen(jk_log_level_name(l)));
  put(L, "\",\"event\":\"", 11);
  put_escaped(L, event, strlen(event));
  L->buf[L->len++] = '"'; /* the reserve has room for it */
  return 1;
}

void jk_log_strn(jk_logline *L, const char *k, const char *val, size_t n) {
  if (val == NULL || L->truncated) return;
  size_t mark = L->len;
  key(L, k);
  put(L, "\"", 1);
  if (L->truncated) { /* not even the start of the field fits: leave it out */
    L->len = mark;
    return;
  }
  put_escaped(L, val, n);          /* may be cut, at a character boundary */
  L->buf[L->len++] = '"';          /* the reserve has room for it */
}

void jk_log_str(jk_logline *L, const char *k, const char *val) {
  if (val != NULL) jk_log_strn(L, k, val, strlen(val));
}

/* A field whose value is not a string: all or nothing. */
static void field(jk_logline *L, const char *k, const char *v, size_t n) {
  if (L->truncated) return;
  size_t mark = L->len;
  key(L, k);
  put(L, v, n);
  if (L->truncated) L->len = mark;
}

void jk_log_int(jk_logline *L, const char *k, int64_t v) {
  char num[24];
  int n = snprintf(num, sizeof num, "%lld", (long long)v);
  field(L, k, num, (size_t)n);
}

void jk_log_uint(jk_logline *L, const char *k, uint64_t v) {
  char num[24];
  int n = snprintf(num, sizeof num, "%llu", (unsigned long long)v);
  field(L, k, num, (size_t)n);
}

void jk_log_bool(jk_logline *L, const char *k, int v) { field(L, k, v ? "true" : "false", v ? 4 : 5); }

void jk_log_end(jk_logline *L) {
  static const char trunc[] = ",\"truncated\":true}\n";
  /* len <= the limit + 1 (a closing quote in the reserve): both fit */
  if (L->truncated) {
    memcpy(L->buf + L->len, trunc, sizeof trunc - 1);
    L->len += sizeof trunc - 1;
  } else {
    memcpy(L->buf + L->len, "}\n", 2);
    L->len += 2;
  }
  int fd = atomic_load(&g_fd);
  size_t off = 0;
  while (off < L->len) {
    ssize_t w = write(fd, L->buf + off, L->len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    off += (size_t)w;
  }
}

void jk_log(jk_log_level l, const char *event, const char *fmt, ...) {
  if (!jk_log_enabled(l)) return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  jk_logline L;
  if (!jk_log_begin(&L, l, event)) return;
  jk_log_str(&L, "msg", msg);
  jk_log_end(&L);
}
