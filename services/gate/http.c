/*
 * The HTTP side: libmicrohttpd with a thread pool over epoll.
 *
 *   GET /auth     (any method: nginx auth_request subrequests keep the
 *                 original method) 204 + claim headers, or 401 with
 *                 `WWW-Authenticate: Bearer error="invalid_token"` (no
 *                 token: `WWW-Authenticate: Bearer`), or 403 when no route
 *                 matches the request.  Nothing else is said to the client:
 *                 the reason goes to the log and to /metrics.
 *   GET /metrics  Prometheus text.
 *   GET /healthz  200 {"status":"ready"} once every route has a key,
 *                 else 503 {"status":"not_ready",...}.
 *
 * A request whose token has an unknown kid (or that arrives before the
 * first JWK Set) asks its source for a refetch; if a fetch starts or is
 * running, the connection is suspended (no thread waits) and resumed when
 * the fetch ends, then verified once more against what is there.  Within
 * the cooldown it is answered 401 at once.
 *
 * The decision itself is gate_decide (decide.c), which reads the header
 * fields through a gate_req; this file adapts the MHD connection to it,
 * parks and resumes connections, and queues the response.
 */
#include <microhttpd.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "connguard.h"
#include "gate_internal.h"

#define CONN_RESERVE 16u        /* connections beyond connection_limit for /healthz and /metrics */
#define GATE_MAX_BODY 0u        /* /auth takes no body (nginx: proxy_pass_request_body off) */
#define LOG_INTERVAL_MS 10000   /* summaries of libmicrohttpd's messages and of the guard */

struct gate_app {
  pthread_rwlock_t lock;
  gate_state *state;
  struct MHD_Daemon *d;
  struct MHD_Response *r401_invalid, *r401_missing, *r403, *r404, *r405, *r503_busy;
  svc_guard *guard;
  svc_loglimit mhd_lines;     /* libmicrohttpd's messages */
  svc_loglimit refused_lines; /* request_refused events */
  svc_guard_stats logged; /* the guard's counters at the last summary (guard thread) */
  int64_t logged_ms;
};

svc_guard *g_gate_guard;

/* con_cls values: &g_seen after the first call; a req_ctx once parked */
static char g_seen;
typedef struct req_ctx {
  int resumed;
} req_ctx;

/* --------------------------------------------------------------- state */

gate_app *gate_http_new(gate_state *st) {
  gate_app *a = calloc(1, sizeof *a);
  if (a == NULL) return NULL;
  if (pthread_rwlock_init(&a->lock, NULL) != 0) {
    free(a);
    return NULL;
  }
  a->state = st;
  return a;
}

gate_state *gate_http_state(gate_app *a) {
  pthread_rwlock_rdlock(&a->lock);
  gate_state *s = gate_state_ref(a->state);
  pthread_rwlock_unlock(&a->lock);
  return s;
}

void gate_http_swap(gate_app *a, gate_state *st) {
  pthread_rwlock_wrlock(&a->lock);
  gate_state *old = a->state;
  a->state = st;
  pthread_rwlock_unlock(&a->lock);
  gate_state_release(old);
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

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, const char *ctype, char *body, size_t len,
                                 int must_free) {
  struct MHD_Response *r =
      MHD_create_response_from_buffer(len, body, must_free ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_MUST_COPY);
  if (r == NULL) {
    if (must_free) free(body);
    return MHD_NO;
  }
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
  MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  enum MHD_Result rc = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return rc;
}

/* ------------------------------------------------------------ /auth */

/* libmicrohttpd's header fields as a gate_req. */
typedef struct conn_ctx {
  struct MHD_Connection *c;
  void **con_cls;
} conn_ctx;

typedef struct each_ctx {
  int (*fn)(void *cls, const char *name, const char *value);
  void *cls;
} each_ctx;

static enum MHD_Result each_cb(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
  (void)kind;
  each_ctx *x = cls;
  return x->fn(x->cls, key, value) ? MHD_YES : MHD_NO;
}

static void conn_each(void *ctx, int (*fn)(void *cls, const char *name, const char *value), void *cls) {
  conn_ctx *cc = ctx;
  each_ctx x = {fn, cls};
  MHD_get_connection_values(cc->c, MHD_HEADER_KIND, each_cb, &x);
}

static const char *conn_get(void *ctx, const char *name) {
  conn_ctx *cc = ctx;
  return MHD_lookup_connection_value(cc->c, MHD_HEADER_KIND, name);
}

/* Park the connection on a refetch of src, once per request. */
static int conn_park(void *ctx, gate_source *src) {
  conn_ctx *cc = ctx;
  req_ctx *rc = *cc->con_cls != &g_seen ? *cc->con_cls : NULL;
  if (rc != NULL && rc->resumed) return 0; /* parked before: answer with what is there */
  if (rc == NULL) {
    rc = calloc(1, sizeof *rc);
    if (rc == NULL) return 0;
    *cc->con_cls = rc;
  }
  rc->resumed = 1; /* set before parking: the resume may come at once */
  if (gate_source_refetch(src, cc->c)) return 1;
  rc->resumed = 2;
  return 0;
}

static enum MHD_Result respond(gate_app *a, struct MHD_Connection *c, const gate_decision *d) {
  if (d->status != MHD_HTTP_NO_CONTENT) {
    struct MHD_Response *r = d->status == MHD_HTTP_FORBIDDEN    ? a->r403
                             : d->reason == GR_MISSING_TOKEN ? a->r401_missing
                                                             : a->r401_invalid;
    gate_decision_report(d);
    return MHD_queue_response(c, d->status, r);
  }
  struct MHD_Response *r = empty_response();
  if (r == NULL) return MHD_NO;
  char val[8193];
  for (size_t i = 0; i < d->nhv; i++) {
    if (d->hv[i].map >= d->rc->nheaders || d->hv[i].len >= sizeof val) continue;
    memcpy(val, d->hv[i].val, d->hv[i].len);
    val[d->hv[i].len] = '\0';
    MHD_add_response_header(r, d->rc->headers[d->hv[i].map].name, val);
  }
  gate_decision_report(d);
  enum MHD_Result rc = MHD_queue_response(c, d->status, r);
  MHD_destroy_response(r);
  return rc;
}

static enum MHD_Result handle_auth(gate_app *a, struct MHD_Connection *c, void **con_cls) {
  req_ctx *ctx = *con_cls != &g_seen ? *con_cls : NULL;
  if (ctx != NULL && ctx->resumed == 1) {
    ctx->resumed = 2;
    atomic_fetch_sub(&g_metrics.suspended, 1);
  }
  gate_state *st = gate_http_state(a);
  conn_ctx cc = {c, con_cls};
  gate_req rq = {conn_get, conn_each, conn_park, &cc};
  gate_decision d;
  if (gate_decide(st, &rq, gate_now(), &d) != 0) {
    gate_state_release(st);
    return MHD_YES; /* suspended; decided again when resumed */
  }
  enum MHD_Result ret = respond(a, c, &d);
  gate_decision_free(&d);
  gate_state_release(st);
  return ret;
}

/* ---------------------------------------------------- metrics, health */

static enum MHD_Result handle_metrics(gate_app *a, struct MHD_Connection *c) {
  gate_state *st = gate_http_state(a);
  char *body;
  size_t len;
  int rc = gate_metrics_render(st, &body, &len);
  gate_state_release(st);
  if (rc != 0) return send_text(c, 500, "text/plain", (char *)"metrics unavailable\n", 20, 0);
  return send_text(c, 200, "text/plain; version=0.0.4; charset=utf-8", body, len, 1);
}

typedef struct outbuf {
  char *p;
  size_t len, cap;
} outbuf;

static void ob_printf(outbuf *b, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void ob_printf(outbuf *b, const char *fmt, ...) {
  if (b->len + 1 >= b->cap) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  b->len += (size_t)n < b->cap - b->len ? (size_t)n : b->cap - b->len - 1;
}

static enum MHD_Result handle_healthz(gate_app *a, struct MHD_Connection *c) {
  gate_state *st = gate_http_state(a);
  outbuf b = {malloc(65536), 0, 65536};
  if (b.p == NULL) {
    gate_state_release(st);
    return MHD_NO;
  }
  b.p[0] = '\0';
  int ready = 1;
  ob_printf(&b, "\"routes\":[");
  for (size_t i = 0; i < st->nroutes; i++) {
    gate_route_snap *rs = gate_route_snap_get(&st->routes[i]);
    int ok = rs->v != NULL;
    ready &= ok;
    ob_printf(&b, "%s{\"name\":\"%s\",\"keys\":%zu,\"ready\":%s}", i ? "," : "", st->routes[i].cfg->name,
              rs->nkeys, ok ? "true" : "false");
    gate_route_snap_release(rs);
  }
  ob_printf(&b, "],\"jwks\":[");
  for (size_t i = 0; i < st->nsources; i++) {
    gate_source_status ss;
    gate_source_get_status(st->sources[i], &ss);
    ob_printf(&b, "%s{\"keys\":%zu,\"stale\":%s,\"age_s\":%lld,\"issuer_max_age_s\":%lld", i ? "," : "",
              ss.keys, ss.stale ? "true" : "false", (long long)(ss.age_ms < 0 ? -1 : ss.age_ms / 1000),
              (long long)ss.issuer_max_age);
    if (ss.max_age_below_min_ttl)
      ob_printf(&b,
                ",\"warning\":\"the issuer's max-age (%lld s) is below jwks_min_ttl (%lld s): new keys may be "
                "refused until a refetch; see docs/gateway.md\"",
                (long long)ss.issuer_max_age, (long long)ss.min_ttl);
    ob_printf(&b, "}");
  }
  ob_printf(&b, "]}\n");
  gate_state_release(st);
  size_t hl = strlen(ready ? "ready" : "not_ready") + 14;
  char *out = malloc(b.len + hl + 1);
  if (out == NULL) {
    free(b.p);
    return MHD_NO;
  }
  int n = snprintf(out, b.len + hl + 1, "{\"status\":\"%s\",%s", ready ? "ready" : "not_ready", b.p);
  free(b.p);
  return send_text(c, ready ? 200 : 503, "application/json", out, n > 0 ? (size_t)n : 0, 1);
}

/* ------------------------------------------------------------ dispatch */

/* Refused framing or body (RFC 9112 §6.3): answered before the body with
 * Connection: close, so libmicrohttpd reads none of it and closes. */
static enum MHD_Result reject(gate_app *a, struct MHD_Connection *c, const svc_framing *fr) {
  svc_guard_rejected(a->guard, c);
  gate_logline L;
  if (svc_loglimit_allow(&a->refused_lines, svc_mono_ms()) && gl_begin(&L, GL_INFO, "request_refused")) {
    gl_int(&L, "status", fr->status);
    gl_str(&L, "detail", fr->why);
    gl_end(&L);
  }
  size_t n = strlen(fr->why);
  struct MHD_Response *r = MHD_create_response_from_buffer(n, (void *)fr->why, MHD_RESPMEM_PERSISTENT);
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
    conn_ctx cc = {c, con_cls};
    svc_framing fr;
    svc_framing_check(conn_each, &cc, version != NULL && strcmp(version, MHD_HTTP_VERSION_1_0) == 0, GATE_MAX_BODY,
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
    if (svc_loglimit_allow(&a->refused_lines, svc_mono_ms()))
      gate_log(GL_INFO, "request_refused", "a request body on %s: the gate takes none (proxy_pass_request_body off)",
               url);
    svc_reject_raw(a->guard, c, 413, "the gate takes no request body (nginx: proxy_pass_request_body off)");
    return MHD_NO;
  }
  if (strcmp(url, "/auth") == 0) return handle_auth(a, c, con_cls);
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
    if (ctx->resumed == 1) atomic_fetch_sub(&g_metrics.suspended, 1);
    free(ctx);
  }
  *con_cls = NULL;
}

/* libmicrohttpd's messages into the JSON log */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 2, 0)))
#endif
static void mhd_log(void *cls, const char *fmt, va_list ap) {
  gate_app *a = cls;
  if (a != NULL) {
    svc_guard_mhd_message(a->guard, fmt);
    if (!svc_loglimit_allow(&a->mhd_lines, svc_mono_ms())) return; /* counted, summarised once per interval */
  }
  char msg[512];
  vsnprintf(msg, sizeof msg, fmt, ap);
  size_t n = strlen(msg);
  while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = '\0';
  gate_log(GL_WARN, "http_server", "%s", msg);
}

/* Once a second from the guard's thread: summaries whose interval is over. */
static void http_tick(void *ctx, int64_t now) {
  gate_app *a = ctx;
  uint64_t n = svc_loglimit_take(&a->mhd_lines, now, 0);
  if (n > 0) gate_log(GL_WARN, "http_server_suppressed", "%llu more libmicrohttpd messages in the last %d s",
                      (unsigned long long)n, LOG_INTERVAL_MS / 1000);
  n = svc_loglimit_take(&a->refused_lines, now, 0);
  if (n > 0) gate_log(GL_INFO, "request_refused_suppressed", "%llu more requests refused in the last %d s",
                      (unsigned long long)n, LOG_INTERVAL_MS / 1000);
  if (now - a->logged_ms < LOG_INTERVAL_MS) return;
  svc_guard_stats st;
  svc_guard_get_stats(a->guard, &st);
  uint64_t any = st.reserve_admitted - a->logged.reserve_admitted;
  for (int i = 0; i < SVC_GC_COUNT; i++) any += st.closed[i] - a->logged.closed[i];
  if (any == 0) return;
  gate_logline L;
  if (gl_begin(&L, GL_INFO, "connections_closed")) {
    for (int i = 0; i < SVC_GC_COUNT; i++)
      if (st.closed[i] != a->logged.closed[i])
        gl_int(&L, svc_guard_reason_name(i), (int64_t)(st.closed[i] - a->logged.closed[i]));
    gl_int(&L, "reserve_admitted", (int64_t)(st.reserve_admitted - a->logged.reserve_admitted));
    gl_int(&L, "open", st.open);
    gl_int(&L, "open_max", st.open_max);
    gl_end(&L);
  }
  a->logged = st;
  a->logged_ms = now;
}

int gate_http_start(gate_app *a, const struct sockaddr *sa, int v6, const gate_config *cfg, unsigned *port, char *err,
                    size_t errcap) {
  a->r401_invalid = fixed("Bearer error=\"invalid_token\"");
  a->r401_missing = fixed("Bearer");
  a->r403 = fixed(NULL);
  a->r404 = fixed(NULL);
  a->r405 = fixed(NULL);
  static const char busy[] = "the gate is at its connection limit; retry shortly\n";
  a->r503_busy = MHD_create_response_from_buffer(sizeof busy - 1, (void *)busy, MHD_RESPMEM_PERSISTENT);
  if (!a->r401_invalid || !a->r401_missing || !a->r403 || !a->r404 || !a->r405 || !a->r503_busy) {
    snprintf(err, errcap, "out of memory");
    return -1;
  }
  MHD_add_response_header(a->r503_busy, MHD_HTTP_HEADER_CONNECTION, "close");
  MHD_add_response_header(a->r503_busy, MHD_HTTP_HEADER_RETRY_AFTER, "1");
  MHD_add_response_header(a->r503_busy, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  if (a->r405) MHD_add_response_header(a->r405, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
  unsigned threads = cfg->threads;
  if (threads == 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    threads = n < 1 ? 1 : n > 64 ? 64 : (unsigned)n;
  }
  /* per-connection memory: the request headers (a token of max_token and
   * the rest) and the response headers; libmicrohttpd clears it per request */
  size_t pool = cfg->max_token + 24 * 1024;
  a->mhd_lines.interval_ms = LOG_INTERVAL_MS;
  a->mhd_lines.burst = 5;
  a->refused_lines.interval_ms = LOG_INTERVAL_MS;
  a->refused_lines.burst = 5;
  svc_guard_opts go = {.limit = cfg->connection_limit,
                       .reserve = CONN_RESERVE,
                       .header_timeout_ms = (int64_t)cfg->header_timeout * 1000,
                       .idle_timeout_ms = (int64_t)cfg->idle_timeout * 1000,
                       .tick = http_tick,
                       .tick_ctx = a};
  char gerr[256];
  if (svc_guard_new(&a->guard, &go, gerr, sizeof gerr) != 0) {
    snprintf(err, errcap, "%s", gerr);
    return -1;
  }
  g_gate_guard = a->guard;
  unsigned conn_limit = svc_guard_mhd_limit(&go);
  unsigned long nofile = svc_raise_nofile(conn_limit + 64);
  if (nofile < conn_limit + 64)
    gate_log(GL_WARN, "nofile_limit",
             "RLIMIT_NOFILE is %lu for connection_limit %u + reserve %u; raise it (ulimit -n, LimitNOFILE=) or lower "
             "connection_limit",
             nofile, cfg->connection_limit, CONN_RESERVE);
  unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
  if (v6) flags |= MHD_USE_IPv6;
  a->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, a, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, a,
                          MHD_OPTION_SOCK_ADDR, sa,
                          MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT, conn_limit,
                          MHD_OPTION_CONNECTION_TIMEOUT, cfg->idle_timeout, MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool,
                          MHD_OPTION_NOTIFY_COMPLETED, on_completed, a, MHD_OPTION_NOTIFY_CONNECTION,
                          svc_guard_notify, a->guard, MHD_OPTION_END);
  if (a->d == NULL) {
    snprintf(err, errcap, "cannot start the HTTP server (address in use or not available?)");
    g_gate_guard = NULL;
    svc_guard_free(a->guard);
    a->guard = NULL;
    return -1;
  }
  const union MHD_DaemonInfo *di = MHD_get_daemon_info(a->d, MHD_DAEMON_INFO_BIND_PORT);
  *port = di ? di->port : 0;
  gate_log(GL_INFO, "http_started",
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
    g_gate_guard = NULL;
    svc_guard_free(a->guard);
    a->guard = NULL;
    uint64_t n = svc_loglimit_take(&a->mhd_lines, svc_mono_ms(), 1);
    if (n > 0) gate_log(GL_WARN, "http_server_suppressed", "%llu more libmicrohttpd messages", (unsigned long long)n);
    n = svc_loglimit_take(&a->refused_lines, svc_mono_ms(), 1);
    if (n > 0) gate_log(GL_INFO, "request_refused_suppressed", "%llu more requests refused", (unsigned long long)n);
  }
}

void gate_http_free(gate_app *a) {
  if (a == NULL) return;
  gate_http_stop(a);
  struct MHD_Response *rs[] = {a->r401_invalid, a->r401_missing, a->r403, a->r404, a->r405, a->r503_busy};
  for (size_t i = 0; i < sizeof rs / sizeof rs[0]; i++)
    if (rs[i]) MHD_destroy_response(rs[i]);
  if (a->state) gate_state_release(a->state);
  pthread_rwlock_destroy(&a->lock);
  free(a);
}
