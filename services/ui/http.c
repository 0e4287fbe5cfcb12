/*
 * The HTTP side of `jwtkit ui`: libmicrohttpd on a socket bound by ui.c,
 * with the services' connection guard (services/common: peer close,
 * header deadline, eviction, reserve) and request framing checks, the
 * body read up to UI_MAX_BODY (wiped when freed: it may hold keys), then
 * ui_respond decides and the answer goes out with ui_security_headers.
 *
 * Logged (common/log.h, JSON lines on stderr): each request at debug with
 * its method, status and duration, and the path only when it is one the
 * page uses; refused requests at info, rate-limited.  Never a header, a
 * query or a body: they hold the secret, tokens and keys.
 */
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "connguard.h"
#include "core/alloc.h"
#include "ui_internal.h"
#include "common/attr.h"

#define CONN_LIMIT 64u
#define CONN_RESERVE 8u
#define HEADER_TIMEOUT_MS 10000
#define IDLE_TIMEOUT_S 60
#define THREADS 4u
#define LOG_INTERVAL_MS 10000

struct ui_server {
  struct MHD_Daemon *d;
  svc_guard *guard;
  const ui_app *app;
  svc_loglimit mhd_lines, refused_lines;
};

typedef struct creq {
  jk_buf body; /* capped at UI_MAX_BODY; grows and is freed wiped */
  int64_t start_us;
  unsigned status;
  const char *refused;
  char path[32]; /* a path the page uses, else "" */
  char method[8];
} creq;

/* ------------------------------------------------------------ headers */

static const char *conn_get(void *ctx, const char *name) {
  return MHD_lookup_connection_value((struct MHD_Connection *)ctx, MHD_HEADER_KIND, name);
}

/* ------------------------------------------------------------ answers */

static void free_wiped(void *cls) {
  ui_resp *r = cls;
  ui_resp_free(r);
  free(r);
}

static enum MHD_Result answer(struct MHD_Connection *c, creq *q, ui_resp *r, int close) {
  struct MHD_Response *m;
  q->status = r->status;
  q->refused = r->refused;
  if (r->owned != NULL) {
    ui_resp *keep = malloc(sizeof *keep); /* freed with the response: the body is wiped then */
    if (keep == NULL) {
      ui_resp_free(r);
      return MHD_NO;
    }
    *keep = *r;
    m = MHD_create_response_from_buffer_with_free_callback_cls(r->len, JK_UNCONST(r->body), free_wiped, keep);
    if (m == NULL) free_wiped(keep);
  } else {
    m = MHD_create_response_from_buffer(r->len, JK_UNCONST(r->body), MHD_RESPMEM_PERSISTENT);
  }
  if (m == NULL) return MHD_NO;
  MHD_add_response_header(m, MHD_HTTP_HEADER_CONTENT_TYPE, r->ctype);
  for (size_t i = 0; ui_security_headers[i][0] != NULL; i++)
    MHD_add_response_header(m, ui_security_headers[i][0], ui_security_headers[i][1]);
  if (r->allow != NULL) MHD_add_response_header(m, MHD_HTTP_HEADER_ALLOW, r->allow);
  if (close) MHD_add_response_header(m, MHD_HTTP_HEADER_CONNECTION, "close");
  enum MHD_Result rc = MHD_queue_response(c, r->status, m);
  MHD_destroy_response(m);
  return rc;
}

static enum MHD_Result send_text(struct MHD_Connection *c, creq *q, unsigned status, const char *text, int close) {
  ui_resp r = {.status = status, .ctype = "text/plain; charset=utf-8", .body = (const unsigned char *)text,
               .len = strlen(text)};
  return answer(c, q, &r, close);
}

/* ------------------------------------------------------------ requests */


static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
  ui_server *s = cls;
  creq *q = *con_cls;
  if (q == NULL) {
    if ((q = calloc(1, sizeof *q)) == NULL) return MHD_NO;
    *con_cls = q;
    jk_buf_init_max(&q->body, UI_MAX_BODY);
    q->start_us = jk_mono_us();
    snprintf(q->path, sizeof q->path, "%s", ui_known_path(url) && strlen(url) < sizeof q->path ? url : "");
    snprintf(q->method, sizeof q->method, "%s", method);
    /* framing first: two lengths, a list, an unknown coding would let a
     * proxy in front and this server disagree on where a request ends */
    svc_framing fr;
    svc_framing_check(svc_each_header, c, version != NULL && strcmp(version, MHD_HTTP_VERSION_1_0) == 0, UI_MAX_BODY, &fr);
    if (fr.status == 413) fr.why = "the request body is larger than 1 MiB";
    if (fr.status != 0) {
      svc_guard_rejected(s->guard, c);
      char text[200];
      snprintf(text, sizeof text, "%s\n", fr.why);
      ui_resp r = {.status = fr.status, .ctype = "text/plain; charset=utf-8", .refused = "framing"};
      r.body = (const unsigned char *)text;
      r.len = strlen(text);
      return answer(c, q, &r, 1);
    }
    if (svc_guard_request_begin(s->guard, c, fr.length > 0 || fr.chunked)) {
      svc_guard_reserve_refused(s->guard);
      return send_text(c, q, 503, "the workbench is at its connection limit; retry shortly\n", 1);
    }
    if (fr.length > 0) jk_buf_reserve(&q->body, (size_t)fr.length); /* at most UI_MAX_BODY: framing checked it */
    return MHD_YES; /* answered once the whole request is in */
  }
  if (q->status != 0) { /* answered early: the rest is ignored */
    *upload_size = 0;
    return MHD_YES;
  }
  if (*upload_size > 0) {
    size_t n = *upload_size;
    *upload_size = 0;
    if (q->body.len + n > UI_MAX_BODY) {
      /* a chunked body past the cap: libmicrohttpd takes no answer in the
       * middle of a body, so the 413 is written to the socket and the
       * connection closed */
      q->status = 413;
      q->refused = "too-large";
      svc_reject_raw(s->guard, c, 413, "the request body is larger than 1 MiB");
      return MHD_NO;
    }
    jk_buf_put(&q->body, upload, n);
    return q->body.oom ? MHD_NO : MHD_YES;
  }
  svc_guard_body_done(s->guard, c);
  ui_req rq = {.method = method,
               .path = url,
               .get = conn_get,
               .ctx = c,
               .body = q->body.p,
               .body_len = q->body.len};
  ui_resp r;
  ui_respond(s->app, &rq, jk_now(), &r);
  return answer(c, q, &r, 0);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
  ui_server *s = cls;
  svc_guard_request_end(s->guard, c);
  creq *q = *con_cls;
  *con_cls = NULL;
  if (q == NULL) return;
  int refused = q->status >= 400 || q->status == 0;
  jk_log_level level = q->status == 0 || q->status >= 500 ? JK_LOG_WARN : refused ? JK_LOG_INFO : JK_LOG_DEBUG;
  jk_logline L;
  if ((!refused || svc_loglimit_allow(&s->refused_lines, jk_mono_ms())) &&
      jk_log_begin(&L, level, refused ? "request_refused" : "request")) {
    jk_log_str(&L, "method", q->method);
    jk_log_str(&L, "path", q->path[0] ? q->path : "(other)");
    jk_log_int(&L, "status", q->status);
    if (q->refused != NULL) jk_log_str(&L, "reason", q->refused);
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) jk_log_int(&L, "termination", (int64_t)toe);
    jk_log_int(&L, "duration_us", jk_mono_us() - q->start_us);
    jk_log_end(&L);
  }
  jk_buf_free_wipe(&q->body);
  free(q);
}

/* libmicrohttpd's own messages: at most 5 lines per interval. */
static void mhd_log(void *cls, const char *fmt, va_list ap) JK_PRINTF(2, 0);
static void mhd_log(void *cls, const char *fmt, va_list ap) {
  ui_server *s = cls;
  svc_guard_mhd_message(s->guard, fmt);
  if (!svc_loglimit_allow(&s->mhd_lines, jk_mono_ms())) return;
  char msg[512];
  vsnprintf(msg, sizeof msg, fmt, ap);
  size_t n = strlen(msg);
  while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = '\0';
  jk_log(JK_LOG_WARN, "http_server", "%s", msg);
}

/* Once a second from the guard's thread: what the limits held back. */
static void tick(void *ctx, int64_t now) {
  ui_server *s = ctx;
  uint64_t n = svc_loglimit_take(&s->refused_lines, now, 0);
  if (n > 0) jk_log(JK_LOG_INFO, "request_refused_suppressed", "%llu more requests refused", (unsigned long long)n);
  n = svc_loglimit_take(&s->mhd_lines, now, 0);
  if (n > 0) jk_log(JK_LOG_WARN, "http_server_suppressed", "%llu more libmicrohttpd messages", (unsigned long long)n);
}

int ui_http_start(ui_server **out, const ui_app *app, int listen_fd, int v6, char *err, size_t cap) {
  *out = NULL;
  ui_server *s = calloc(1, sizeof *s);
  if (s == NULL) {
    snprintf(err, cap, "out of memory");
    return -1;
  }
  s->app = app;
  s->mhd_lines = (svc_loglimit){.interval_ms = LOG_INTERVAL_MS, .burst = 5};
  s->refused_lines = (svc_loglimit){.interval_ms = LOG_INTERVAL_MS, .burst = 5};
  svc_guard_opts go = {.limit = CONN_LIMIT,
                       .reserve = CONN_RESERVE,
                       .header_timeout_ms = HEADER_TIMEOUT_MS,
                       .idle_timeout_ms = IDLE_TIMEOUT_S * 1000,
                       .tick = tick,
                       .tick_ctx = s};
  if (svc_guard_new(&s->guard, &go, err, cap) != 0) {
    free(s);
    return -1;
  }
  unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
  if (v6) flags |= MHD_USE_IPv6;
  s->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
                          MHD_OPTION_LISTEN_SOCKET, listen_fd, MHD_OPTION_THREAD_POOL_SIZE, THREADS,
                          MHD_OPTION_CONNECTION_LIMIT, svc_guard_mhd_limit(&go), MHD_OPTION_CONNECTION_TIMEOUT,
                          (unsigned)IDLE_TIMEOUT_S, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                          MHD_OPTION_NOTIFY_CONNECTION, svc_guard_notify, s->guard, MHD_OPTION_STRICT_FOR_CLIENT, 1,
                          MHD_OPTION_END);
  if (s->d == NULL) {
    snprintf(err, cap, "cannot start the HTTP server on the bound socket");
    svc_guard_free(s->guard);
    free(s);
    return -1;
  }
  *out = s;
  return 0;
}

void ui_http_stop(ui_server *s) {
  if (s == NULL) return;
  MHD_stop_daemon(s->d);
  svc_guard_free(s->guard);
  uint64_t n = svc_loglimit_take(&s->refused_lines, jk_mono_ms(), 1);
  if (n > 0) jk_log(JK_LOG_INFO, "request_refused_suppressed", "%llu more requests refused", (unsigned long long)n);
  free(s);
}
