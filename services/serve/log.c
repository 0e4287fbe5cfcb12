/* Structured logs: one JSON object per line on stderr,
 *   {"ts":"2026-01-02T03:04:05.678Z","level":"info","msg":"...", fields...}
 * Each line is written with a single write(2) so lines from different
 * threads never interleave.  Callers never pass secrets: client secrets,
 * passphrases, Authorization values and tokens have no field here. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "serve.h"

#define SV_LOG_MAX_LINE 8192u

static atomic_int g_level = SV_LOG_INFO;
static const char *const k_names[] = {"debug", "info", "warn", "error"};

int sv_log_parse_level(const char *s) {
  for (int i = 0; i < 4; i++)
    if (strcmp(s, k_names[i]) == 0) return i;
  if (strcmp(s, "warning") == 0) return SV_LOG_WARN;
  return -1;
}

const char *sv_log_level_name(int level) { return level >= 0 && level < 4 ? k_names[level] : "info"; }

void sv_log_set_level(int level) { atomic_store(&g_level, level); }

int sv_log_enabled(int level) { return level >= atomic_load(&g_level); }

int sv_log_begin(sv_buf *b, int level, const char *msg) {
  if (!sv_log_enabled(level)) return 0;
  sv_buf_init(b, SV_LOG_MAX_LINE);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  time_t sec = ts.tv_sec;
  gmtime_r(&sec, &tm);
  char when[96];
  snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
           tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L);
  sv_buf_puts(b, "{\"ts\":\"");
  sv_buf_puts(b, when);
  sv_buf_puts(b, "\",\"level\":\"");
  sv_buf_puts(b, sv_log_level_name(level));
  sv_buf_puts(b, "\",\"msg\":");
  sv_json_str(b, msg, strlen(msg));
  return 1;
}

void sv_log_strn(sv_buf *b, const char *key, const char *value, size_t n) {
  if (value == NULL) return;
  if (n > 1024) n = 1024; /* a field never takes the whole line */
  sv_buf_putc(b, ',');
  sv_json_str(b, key, strlen(key));
  sv_buf_putc(b, ':');
  sv_json_str(b, value, n);
}

void sv_log_str(sv_buf *b, const char *key, const char *value) {
  if (value != NULL) sv_log_strn(b, key, value, strlen(value));
}

void sv_log_int(sv_buf *b, const char *key, int64_t v) { sv_json_kv_int(b, key, v, 0); }

void sv_log_end(sv_buf *b) {
  sv_buf_puts(b, "}\n");
  if (b->failed) {
    /* over the line cap: say so rather than write half a JSON object */
    sv_buf_free(b);
    static const char over[] = "{\"level\":\"warn\",\"msg\":\"log line over the size cap dropped\"}\n";
    (void)!write(STDERR_FILENO, over, sizeof over - 1);
    return;
  }
  size_t off = 0;
  while (off < b->len) {
    ssize_t w = write(STDERR_FILENO, b->p + off, b->len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    off += (size_t)w;
  }
  sv_buf_free(b);
}

void sv_log(int level, const char *msg, const char *detail) {
  sv_buf b;
  if (!sv_log_begin(&b, level, msg)) return;
  sv_log_str(&b, "detail", detail);
  sv_log_end(&b);
}

void sv_logf(int level, const char *msg, const char *fmt, ...) {
  if (!sv_log_enabled(level)) return;
  char detail[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  sv_log(level, msg, detail);
}
