/* The request log lines.  A successful request is logged at debug.  A
 * refused one (4xx, 5xx, or none: the client went away) is logged at info
 * (5xx and none at warn), at most LOG_REFUSED_LINES of them per
 * SV_LOG_INTERVAL_MS; all of them are counted, and the interval ends with
 * one summary line.  So the log grows by a bounded number of lines
 * whatever a client sends. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "serve.h"

#define LOG_INTERVAL_MS SV_LOG_INTERVAL_MS
#define LOG_REFUSED_LINES 5u /* lines of their own per interval */
#define NSUMMARY 16

static struct {
  pthread_mutex_t mu;
  int64_t window_ms; /* start of the interval, 0: none open */
  unsigned lines;
  uint64_t refused, server_errors;
  unsigned status[NSUMMARY];
  uint64_t count[NSUMMARY];
  size_t n;
} g_refused = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* The summary of the interval (under mu); closes it. */
static void refused_summary(void) {
  if (g_refused.window_ms != 0 && g_refused.refused > 0) {
    char by[NSUMMARY * 24] = "";
    for (size_t i = 0; i < g_refused.n; i++) {
      size_t l = strlen(by);
      snprintf(by + l, sizeof by - l, "%s%u=%llu", i ? " " : "", g_refused.status[i],
               (unsigned long long)g_refused.count[i]);
    }
    jk_logline L;
    if (jk_log_begin(&L, g_refused.server_errors ? JK_LOG_WARN : JK_LOG_INFO, "requests_refused_summary")) {
      jk_log_int(&L, "interval_s", LOG_INTERVAL_MS / 1000);
      jk_log_uint(&L, "refused", g_refused.refused);
      jk_log_uint(&L, "logged", g_refused.lines);
      jk_log_str(&L, "by_status", by);
      jk_log_end(&L);
    }
  }
  g_refused.window_ms = 0;
  g_refused.lines = 0;
  g_refused.refused = g_refused.server_errors = 0;
  g_refused.n = 0;
}

/* Count a refused request; 1 when it gets a line of its own. */
static int refused_note(unsigned status, int64_t now) {
  pthread_mutex_lock(&g_refused.mu);
  if (g_refused.window_ms != 0 && now - g_refused.window_ms >= LOG_INTERVAL_MS) refused_summary();
  if (g_refused.window_ms == 0) g_refused.window_ms = now;
  g_refused.refused++;
  if (status >= 500 || status == 0) g_refused.server_errors++;
  size_t i = 0;
  while (i < g_refused.n && g_refused.status[i] != status) i++;
  if (i == g_refused.n && g_refused.n < NSUMMARY) {
    g_refused.status[g_refused.n] = status;
    g_refused.count[g_refused.n++] = 0;
  }
  if (i < g_refused.n) g_refused.count[i]++;
  int own = g_refused.lines < LOG_REFUSED_LINES;
  if (own) g_refused.lines++;
  pthread_mutex_unlock(&g_refused.mu);
  return own;
}

void sv_reqlog_flush(int64_t now, int force) {
  pthread_mutex_lock(&g_refused.mu);
  if (g_refused.window_ms != 0 && (force || now - g_refused.window_ms >= LOG_INTERVAL_MS)) refused_summary();
  pthread_mutex_unlock(&g_refused.mu);
}

void sv_reqlog_write(const sv_reqlog *r, int64_t now_ms) {
  int refused = r->status >= 400 || r->status == 0;
  jk_log_level level = r->status >= 500 || r->status == 0 ? JK_LOG_WARN : refused ? JK_LOG_INFO : JK_LOG_DEBUG;
  int own = refused ? refused_note(r->status, now_ms) : 1; /* every refusal is counted */
  jk_logline L;
  if (!own || !jk_log_begin(&L, level, "request")) return;
  jk_log_str(&L, "method", r->method);
  jk_log_str(&L, "path", r->path);
  jk_log_uint(&L, "status", r->status);
  jk_log_int(&L, "duration_us", r->duration_us);
  jk_log_str(&L, "remote", r->remote);
  jk_log_str(&L, "client_id", r->client_id);
  jk_log_str(&L, "kid", r->kid);
  jk_log_str(&L, "error", r->error);
  jk_log_str(&L, "throttled", r->throttled);
  if (r->termination >= 0) jk_log_int(&L, "termination", r->termination);
  jk_log_end(&L);
}
