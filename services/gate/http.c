/*
 * The HTTP side: libmicrohttpd with a thread pool over epoll, around the
 * gateway core.
 *
 *   /auth     (any method: nginx auth_request subrequests keep the
 *             original method) the core's decision: 204 + claim headers,
 *             401 with its WWW-Authenticate value, or 403.  Nothing else is
 *             said to the client: the reason goes to the log and /metrics.
 *   /metrics  Prometheus text.
 *   /healthz  200 {"status":"ready"} once every route has a key, else 503.
 *
 * A decision that asks for a refetch (an unknown kid, or no set yet) parks
 * its connection on the source (MHD suspend: no thread waits) until a fetch
 * that started after it ends, then decides again, once.  Within the
 * cooldown the answer goes out at once.
 *
 * Logs stay bounded whatever clients send: denied decisions at most
 * DENY_LINES per LOG_INTERVAL_MS, refused requests and libmicrohttpd's
 * messages at most 5, each then summarised with the count.
 */
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "connguard.h"
#include "core/alloc.h"
#include "gate_internal.h"
#include "common/attr.h"

#define CONN_RESERVE 16u      /* connections beyond connection_limit for /healthz and /metrics */
#define GATE_MAX_BODY 0u      /* /auth takes no body (nginx: proxy_pass_request_body off) */
#define LOG_INTERVAL_MS 10000 /* the interval of the bounded log lines ... */
#define DENY_LINES 100u       /* ... denied decisions logged in one */
#define OTHER_LINES 5u        /* ... refused requests, libmicrohttpd's messages */

struct gate_app {
  jk_snap state; /* gw_state */
  struct MHD_Daemon *d;
  struct MHD_Response *r401_invalid, *r401_missing, *r403, *r404, *r405, *r503_busy;
  svc_guard *guard;
  svc_loglimit mhd_lines;     /* libmicrohttpd's messages */
  svc_loglimit refused_lines; /* request_refused events */
  svc_loglimit deny_lines;    /* decision lines of denials */
  svc_guard_stats logged;     /* the guard's counters at the last summary (guard thread) */
  int64_t logged_ms;
};

gate_counters g_gate;

/* con_cls values: &g_seen after the first call; a req_ctx once parked */
static char g_seen;
typedef struct req_ctx {
  int parked; /* 1 while suspended on a refetch, 2 once decided again */
} req_ctx;

/* --------------------------------------------------------------- state */

gate_app *gate_http_new(gw_state *st) {
  gate_app *a = calloc(1, sizeof *a);
  if (a == NULL) return NULL;
  jk_snap_init(&a->state);
  gw_state_publish(&a->state, st);
  return a;
}

gw_state *gate_http_state(gate_app *a) { return gw_state_acquire(&a->state); }
void gate_http_swap(gate_app *a, gw_state *st) { gw_state_publish(&a->state, st); }
struct svc_guard *gate_http_guard(gate_app *a) { return a->guard; }

static void park(void *ctx, void *waiter) {
  (void)ctx;
  MHD_suspend_connection(waiter);
}

static void resume(void *ctx, void *waiter) {
  (void)ctx;
  MHD_resume_connection(waiter);
}

void gate_http_transport(gw_transport *t) {
  t->park = park;
  t->resume = resume;
}

/* ------------------------------------------------------------ responses */

static struct MHD_Response *empty_response(void) {
  return MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
}

static struct MHD_Response *fixed(const char *www) {
  struct MHD_Response *r = empty_response();
  if (r != NULL && www != NULL) MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, www);
  if (r != NULL) MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  return r;
}

/* A body (copied) with its content type. */
static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, const char *ctype, char *body,
                                 size_t len) {
  struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_COPY);
  if (r == NULL) return MHD_NO;
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
  MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  enum MHD_Result rc = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return rc;
}

/* ------------------------------------------------------------ /auth */

typedef struct each_ctx {
  int (*fn)(void *cls, const char *name, const char *value);
  void *cls;
} each_ctx;

static enum MHD_Result each_cb(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
  (void)kind;
  each_ctx *x = cls;
  return x->fn(x->cls, key, value) ? MHD_YES : MHD_NO;
}

/* libmicrohttpd's header fields as the core's gw_fields */
static void conn_each(void *ctx, int (*fn)(void *cls, const char *name, const char *value), void *cls) {
  each_ctx x = {fn, cls};
  MHD_get_connection_values(ctx, MHD_HEADER_KIND, each_cb, &x);
}

static const char *conn_get(void *ctx, const char *name) {
  return MHD_lookup_connection_value(ctx, MHD_HEADER_KIND, name);
}

/* Count the decision, and log it: allows at debug, denials at info within
 * the interval's budget. */
static void report(gate_app *a, const gw_decision *d) {
  gw_decision_count(d);
  if (d->status == MHD_HTTP_NO_CONTENT) {
    if (jk_log_enabled(JK_LOG_DEBUG)) gw_decision_log(d);
  } else if (jk_log_enabled(JK_LOG_INFO) && svc_loglimit_allow(&a->deny_lines, jk_mono_ms())) {
    gw_decision_log(d);
  }
}

static enum MHD_Result respond(gate_app *a, struct MHD_Connection *c, const gw_decision *d) {
  report(a, d);
  if (d->status != MHD_HTTP_NO_CONTENT) {
    struct MHD_Response *r = d->status == MHD_HTTP_FORBIDDEN ? a->r403
                             : d->reason == GW_R_MISSING_TOKEN ? a->r401_missing
                                                                : a->r401_invalid;
    return MHD_queue_response(c, d->status, r);
  }
  struct MHD_Response *r = empty_response();
  if (r == NULL) return MHD_NO;
  char val[8193];
  for (size_t i = 0; i < d->nhv; i++) {
    if (d->hv[i].len >= sizeof val) continue;
    memcpy(val, d->hv[i].val, d->hv[i].len);
    val[d->hv[i].len] = '\0';
    MHD_add_response_header(r, d->hv[i].name, val);
  }
  enum MHD_Result rc = MHD_queue_response(c, d->status, r);
  MHD_destroy_response(r);
  return rc;
}

/* Park the connection on a refetch, once per request.  1 when parked. */
static int park_on(struct MHD_Connection *c, void **con_cls, gw_source *src) {
  req_ctx *rc = *con_cls != &g_seen ? *con_cls : NULL;
  if (rc != NULL) return 0; /* parked before: answer with what is there */
  if ((rc = calloc(1, sizeof *rc)) == NULL) return 0;
  *con_cls = rc;
  rc->parked = 1; /* before parking: the resume may come at once */
  if (gw_source_refetch(src, jk_mono_ms(), c)) {
    atomic_fetch_add(&g_gate.suspended, 1);
    return 1;
  }
  rc->parked = 2;
  return 0;
}

static enum MHD_Result handle_auth(gate_app *a, struct MHD_Connection *c, const char *method, void **con_cls) {
  req_ctx *ctx = *con_cls != &g_seen ? *con_cls : NULL;
  if (ctx != NULL && ctx->parked == 1) {
    ctx->parked = 2;
    atomic_fetch_sub(&g_gate.suspended, 1);
  }
  gw_state *st = gate_http_state(a);
  gw_fields f = {conn_get, conn_each, c};
  gw_request rq;
  gw_request_read(&rq, st, &f);
  rq.method = method;
  gw_decision d;
  gw_decide(st, &rq, jk_now(), jk_mono_ms(), &d);
  enum MHD_Result ret = MHD_YES; /* parked: decided again when resumed */
  if (d.refetch == NULL || !park_on(c, con_cls, d.refetch)) ret = respond(a, c, &d);
  gw_decision_free(&d);
  gw_state_release(st);
  return ret;
}

/* ---------------------------------------------------- metrics, health */

static enum MHD_Result handle_metrics(gate_app *a, struct MHD_Connection *c) {
  gw_state *st = gate_http_state(a);
  char *body;
  size_t len;
  int rc = gate_metrics_render(st, a->guard, &body, &len);
  gw_state_release(st);
  if (rc != 0) return send_text(c, 500, "text/plain", (char *)"metrics unavailable\n", 20);
  enum MHD_Result r = send_text(c, 200, "text/plain; version=0.0.4; charset=utf-8", body, len);
  jk_free(body);
  return r;
}

static enum MHD_Result handle_healthz(gate_app *a, struct MHD_Connection *c) {
  gw_state *st = gate_http_state(a);
  const gw_config *cfg = gw_state_config(st);
  jk_buf b;
  jk_buf_init_max(&b, 1u << 20);
  int ready = 1;
  jk_buf_puts(&b, "\"routes\":[");
  for (size_t i = 0; i < cfg->nroutes; i++) {
    gw_route_info ri;
    gw_state_route_info(st, i, &ri);
    ready &= ri.ready;
    jk_buf_puts(&b, i ? ",{\"name\":" : "{\"name\":");
    jk_buf_json_str_lossy(&b, ri.cfg->name, strlen(ri.cfg->name));
    jk_buf_printf(&b, ",\"keys\":%zu,\"ready\":%s}", ri.keys, ri.ready ? "true" : "false");
  }
  jk_buf_puts(&b, "],\"jwks\":[");
  int64_t now = jk_mono_ms();
  for (size_t i = 0; i < gw_state_nsources(st); i++) {
    gw_source_status ss;
    gw_source_status_get(gw_state_source(st, i), now, &ss);
    jk_buf_printf(&b, "%s{\"keys\":%zu,\"stale\":%s,\"age_s\":%lld,\"issuer_max_age_s\":%lld", i ? "," : "", ss.keys,
                  ss.stale ? "true" : "false", (long long)(ss.age_ms < 0 ? -1 : ss.age_ms / 1000),
                  (long long)ss.issuer_max_age);
    if (ss.max_age_below_min_ttl)
      jk_buf_printf(&b,
                    ",\"warning\":\"the issuer's max-age (%lld s) is below jwks_min_ttl (%lld s): new keys may be "
                    "refused until a refetch; see docs/gateway.md\"",
                    (long long)ss.issuer_max_age, (long long)ss.min_ttl);
    jk_buf_putc(&b, '}');
  }
  jk_buf_puts(&b, "]}\n");
  gw_state_release(st);
  size_t blen = 0;
  char *body = jk_buf_take(&b, &blen);
  if (body == NULL) return MHD_NO;
  jk_buf out;
  jk_buf_init(&out);
  jk_buf_printf(&out, "{\"status\":\"%s\",%s", ready ? "ready" : "not_ready", body);
  jk_free(body);
  size_t len = 0;
  char *text = jk_buf_take(&out, &len);
  if (text == NULL) return MHD_NO;
  enum MHD_Result rc = send_text(c, ready ? 200 : 503, "application/json", text, len);
  jk_free(text);
  return rc;
}

/* ------------------------------------------------------------ dispatch */

/* Refused framing or body (RFC 9112 §6.3): answered before the body with
 * Connection: close, so libmicrohttpd reads none of it and closes. */
static enum MHD_Result reject(gate_app *a, struct MHD_Connection *c, const svc_framing *fr) {
  svc_guard_rejected(a->guard, c);
  jk_logline L;
  if (jk_log_enabled(JK_LOG_INFO) && svc_loglimit_allow(&a->refused_lines, jk_mono_ms()) &&
      jk_log_begin(&L, JK_LOG_INFO, "request_refused")) {
    jk_log_int(&L, "status", fr->status);
    jk_log_str(&L, "detail", fr->why);
    jk_log_end(&L);
  }
  size_t n = strlen(fr->why);
  struct MHD_Response *r = MHD_create_response_from_buffer(n, JK_UNCONST(fr->why), MHD_RESPMEM_PERSISTENT);
  if (r == NULL) return MHD_NO;
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
  MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
  enum MHD_Result rc = MHD_queue_response(c, fr->status, r);
  MHD_destroy_response(r);
  return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
  (void)upload;
  gate_app *a = cls;
  if (*con_cls == NULL) {
    *con_cls = &g_seen;
    svc_framing fr;
    svc_framing_check(conn_each, c, version != NULL && strcmp(version, MHD_HTTP_VERSION_1_0) == 0, GATE_MAX_BODY,
                      &fr);
    if (fr.status == 413) fr.why = "the gate takes no request body (nginx: proxy_pass_request_body off)";
    if (fr.status != 0) return reject(a, c, &fr);
    int reserve = svc_guard_request_begin(a->guard, c, 0);
    if (reserve && strcmp(url, "/healthz") != 0 && strcmp(url, "/metrics") != 0) {
      svc_guard_reserve_refused(a->guard);
      return MHD_queue_response(c, MHD_HTTP_SERVICE_UNAVAILABLE, a->r503_busy);
    }
    return MHD_YES;
  }
  if (*upload_size != 0) {
    /* a chunked body: refused at its first byte; libmicrohttpd takes no
     * answer in the middle of a body, so it is written here and the
     * connection closed */
    if (jk_log_enabled(JK_LOG_INFO) && svc_loglimit_allow(&a->refused_lines, jk_mono_ms()))
      jk_log(JK_LOG_INFO, "request_refused", "a request body on %s: the gate takes none (proxy_pass_request_body off)",
             url);
    svc_reject_raw(a->guard, c, 413, "the gate takes no request body (nginx: proxy_pass_request_body off)");
    return MHD_NO;
  }
  if (strcmp(url, "/auth") == 0) return handle_auth(a, c, method, con_cls);
  int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
  if (strcmp(url, "/metrics") == 0) return get ? handle_metrics(a, c) : MHD_queue_response(c, 405, a->r405);
  if (strcmp(url, "/healthz") == 0) return get ? handle_healthz(a, c) : MHD_queue_response(c, 405, a->r405);
  return MHD_queue_response(c, MHD_HTTP_NOT_FOUND, a->r404);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
  (void)toe;
  gate_app *a = cls;
  svc_guard_request_end(a->guard, c);
  if (*con_cls != NULL && *con_cls != &g_seen) {
    req_ctx *ctx = *con_cls;
    if (ctx->parked == 1) atomic_fetch_sub(&g_gate.suspended, 1);
    free(ctx);
  }
  *con_cls = NULL;
}

/* libmicrohttpd's messages into the JSON log */
JK_PRINTF(2, 0)
static void mhd_log(void *cls, const char *fmt, va_list ap) {
  gate_app *a = cls;
  if (a != NULL) {
    svc_guard_mhd_message(a->guard, fmt);
    if (!svc_loglimit_allow(&a->mhd_lines, jk_mono_ms())) return; /* counted, summarised once per interval */
  }
  char msg[512];
  vsnprintf(msg, sizeof msg, fmt, ap);
  size_t n = strlen(msg);
  while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = '\0';
  jk_log(JK_LOG_WARN, "http_server", "%s", msg);
}

/* The summary of a bounded log: the lines left out, when its interval is
 * over (or now, with force). */
static void summarise(svc_loglimit *l, int64_t now, int force, jk_log_level lvl, const char *event,
                      const char *what) {
  uint64_t n = svc_loglimit_take(l, now, force);
  jk_logline L;
  if (n == 0 || !jk_log_begin(&L, lvl, event)) return;
  char msg[160];
  snprintf(msg, sizeof msg, "%llu more %s in the last %d s", (unsigned long long)n, what, LOG_INTERVAL_MS / 1000);
  jk_log_uint(&L, "count", n);
  jk_log_str(&L, "msg", msg);
  jk_log_end(&L);
}

static void summarise_all(gate_app *a, int64_t now, int force) {
  summarise(&a->mhd_lines, now, force, JK_LOG_WARN, "http_server_suppressed", "libmicrohttpd messages");
  summarise(&a->refused_lines, now, force, JK_LOG_INFO, "request_refused_suppressed", "requests refused");
  summarise(&a->deny_lines, now, force, JK_LOG_INFO, "decision_suppressed", "denied decisions");
}

/* Once a second from the guard's thread: summaries whose interval is over. */
static void http_tick(void *ctx, int64_t now) {
  gate_app *a = ctx;
  summarise_all(a, now, 0);
  if (now - a->logged_ms < LOG_INTERVAL_MS) return;
  svc_guard_stats st;
  svc_guard_get_stats(a->guard, &st);
  uint64_t any = st.reserve_admitted - a->logged.reserve_admitted;
  for (int i = 0; i < SVC_GC_COUNT; i++) any += st.closed[i] - a->logged.closed[i];
  if (any == 0) return;
  jk_logline L;
  if (jk_log_begin(&L, JK_LOG_INFO, "connections_closed")) {
    for (int i = 0; i < SVC_GC_COUNT; i++)
      if (st.closed[i] != a->logged.closed[i])
        jk_log_uint(&L, svc_guard_reason_name(i), st.closed[i] - a->logged.closed[i]);
    jk_log_uint(&L, "reserve_admitted", st.reserve_admitted - a->logged.reserve_admitted);
    jk_log_uint(&L, "open", st.open);
    jk_log_uint(&L, "open_max", st.open_max);
    jk_log_end(&L);
  }
  a->logged = st;
  a->logged_ms = now;
}

static int make_responses(gate_app *a) {
  a->r401_invalid = fixed("Bearer error=\"invalid_token\"");
  a->r401_missing = fixed("Bearer");
  a->r403 = fixed(NULL);
  a->r404 = fixed(NULL);
  a->r405 = fixed(NULL);
  static const char busy[] = "the gate is at its connection limit; retry shortly\n";
  a->r503_busy = MHD_create_response_from_buffer(sizeof busy - 1, JK_UNCONST(busy), MHD_RESPMEM_PERSISTENT);
  if (!a->r401_invalid || !a->r401_missing || !a->r403 || !a->r404 || !a->r405 || !a->r503_busy) return -1;
  MHD_add_response_header(a->r503_busy, MHD_HTTP_HEADER_CONNECTION, "close");
  MHD_add_response_header(a->r503_busy, MHD_HTTP_HEADER_RETRY_AFTER, "1");
  MHD_add_response_header(a->r503_busy, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  MHD_add_response_header(a->r405, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
  return 0;
}

int gate_http_start(gate_app *a, const gate_config *cfg, const jk_listen *l, unsigned *port, char *err, size_t cap) {
  if (make_responses(a) != 0) {
    snprintf(err, cap, "out of memory");
    return -1;
  }
  unsigned threads = cfg->threads;
  if (threads == 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    threads = n < 1 ? 1 : n > 64 ? 64 : (unsigned)n;
  }
  /* per-connection memory: the request headers (a token of max_token and
   * the rest) and the response headers; libmicrohttpd clears it per request */
  gw_state *st = gate_http_state(a);
  size_t pool = gw_state_config(st)->max_token + 24 * 1024;
  gw_state_release(st);
  a->mhd_lines = (svc_loglimit){.interval_ms = LOG_INTERVAL_MS, .burst = OTHER_LINES};
  a->refused_lines = (svc_loglimit){.interval_ms = LOG_INTERVAL_MS, .burst = OTHER_LINES};
  a->deny_lines = (svc_loglimit){.interval_ms = LOG_INTERVAL_MS, .burst = DENY_LINES};
  svc_guard_opts go = {.limit = cfg->connection_limit,
                       .reserve = CONN_RESERVE,
                       .header_timeout_ms = (int64_t)cfg->header_timeout * 1000,
                       .idle_timeout_ms = (int64_t)cfg->idle_timeout * 1000,
                       .tick = http_tick,
                       .tick_ctx = a};
  char gerr[256];
  if (svc_guard_new(&a->guard, &go, gerr, sizeof gerr) != 0) {
    snprintf(err, cap, "%s", gerr);
    return -1;
  }
  unsigned conn_limit = svc_guard_mhd_limit(&go);
  unsigned long nofile = svc_raise_nofile(conn_limit + 64);
  if (nofile < conn_limit + 64)
    jk_log(JK_LOG_WARN, "nofile_limit",
           "RLIMIT_NOFILE is %lu for connection_limit %u + reserve %u; raise it (ulimit -n, LimitNOFILE=) or lower "
           "connection_limit",
           nofile, cfg->connection_limit, CONN_RESERVE);
  unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
  if (l->family == AF_INET6) flags |= MHD_USE_IPv6;
  a->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, a, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, a,
                          MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)&l->ss, MHD_OPTION_THREAD_POOL_SIZE, threads,
                          MHD_OPTION_CONNECTION_LIMIT, conn_limit, MHD_OPTION_CONNECTION_TIMEOUT, cfg->idle_timeout,
                          MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool, MHD_OPTION_NOTIFY_COMPLETED, on_completed, a,
                          MHD_OPTION_NOTIFY_CONNECTION, svc_guard_notify, a->guard, MHD_OPTION_END);
  if (a->d == NULL) {
    snprintf(err, cap, "cannot start the HTTP server on %s (address in use or not available?)", l->text);
    svc_guard_free(a->guard);
    a->guard = NULL;
    return -1;
  }
  const union MHD_DaemonInfo *di = MHD_get_daemon_info(a->d, MHD_DAEMON_INFO_BIND_PORT);
  *port = di ? di->port : 0;
  jk_log(JK_LOG_INFO, "http_started",
         "thread pool of %u, epoll, idle timeout %u s, header timeout %u s, %u connections + %u in reserve", threads,
         cfg->idle_timeout, cfg->header_timeout, cfg->connection_limit, CONN_RESERVE);
  return 0;
}

void gate_http_quiesce(gate_app *a) {
  if (a->d == NULL) return;
  MHD_socket s = MHD_quiesce_daemon(a->d);
  if (s != MHD_INVALID_SOCKET) close(s);
}

void gate_http_stop(gate_app *a) {
  if (a->d != NULL) MHD_stop_daemon(a->d);
  a->d = NULL;
  if (a->guard != NULL) {
    svc_guard_free(a->guard);
    a->guard = NULL;
    summarise_all(a, jk_mono_ms(), 1);
  }
}

void gate_http_free(gate_app *a) {
  if (a == NULL) return;
  gate_http_stop(a);
  struct MHD_Response *rs[] = {a->r401_invalid, a->r401_missing, a->r403, a->r404, a->r405, a->r503_busy};
  for (size_t i = 0; i < sizeof rs / sizeof rs[0]; i++)
    if (rs[i]) MHD_destroy_response(rs[i]);
  jk_snap_destroy(&a->state);
  free(a);
}
