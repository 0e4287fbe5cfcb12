/* The HTTP server: libmicrohttpd, the connection guard around it
 * (services/common), the responses; each request's log line goes to
 * reqlog.c.
 *
 * Threads: MHD's internal polling thread pool (epoll, else poll).  A
 * request takes references on the current configuration and keyring
 * snapshots; nothing it reads can change under it.
 *
 * The decisions take no MHD connection: route.c (route, method and header
 * checks) and token.c (POST /token) read the header fields through
 * sv_headers and return an sv_answer, which send_answer below turns into
 * a response.  The documents' prepared responses (a 200 and a 304 each)
 * hang on the snapshots as attachments, made by the first request that
 * needs them. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "common/attr.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/parse.h"
#include "core/alloc.h"
#include "connguard.h"
#include "serve.h"

#define HDR_CONN_MEMORY (32u * 1024u) /* request line + headers (MHD answers 414/431 beyond) */
#define CONN_TIMEOUT 10u              /* seconds of inactivity (the keep-alive idle timeout) */
#define CONN_RESERVE 16u              /* connections beyond max_connections for /healthz and /metrics */
#define SV_MAX_DISCARD (1u << 20)     /* body bytes read past the cap before the connection is closed */
#define LOG_INTERVAL_MS SV_LOG_INTERVAL_MS /* libmicrohttpd's lines, the guard's summaries */

struct sv_server {
  struct MHD_Daemon *d;
  atomic_int inflight;
  MHD_socket listen_fd;
  svc_guard *guard;
  sv_limiter *limiter;
  svc_loglimit mhd_lines; /* libmicrohttpd's messages */
  /* the guard's counters at the last summary line (guard thread only) */
  svc_guard_stats logged;
  int64_t logged_ms;
};

/* The running server, for /metrics and the log summaries. */
static sv_server *g_srv;

typedef struct sv_req {
  enum sv_route route;
  int method;
  int64_t start_us;
  unsigned status;
  int responded;
  int too_large;
  char *body;
  size_t body_len, body_cap;
  size_t discarded; /* bytes dropped after the body went over SV_MAX_BODY */
  unsigned char addr[16]; /* rate-limit key of the source address */
  int have_addr;
  int throttled;          /* SV_RL_BY_*: answered 429 */
  char method_s[12];
  char path[200];
  char remote[64];
  char client_id[SV_MAX_CLIENT_NAME + 1];
  char kid[100];
  const char *error; /* OAuth error code of a token response */
  const char *scope_note;
  sv_signjob *job; /* POST /token signed by a token key: suspended until it is answered */
} sv_req;

/* --------------------------------------------------- prepared responses */

static struct MHD_Response *doc_response(const char *body, size_t len, const char *ctype, const char *etag,
                                         int64_t max_age) {
  struct MHD_Response *r = MHD_create_response_from_buffer(len, JK_UNCONST(body), MHD_RESPMEM_MUST_COPY);
  if (r == NULL) return NULL;
  char cc[64];
  snprintf(cc, sizeof cc, "public, max-age=%lld", (long long)max_age);
  if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype) != MHD_YES ||
      MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, cc) != MHD_YES ||
      MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag) != MHD_YES ||
      MHD_add_response_header(r, "Access-Control-Allow-Origin", "*") != MHD_YES ||
      MHD_add_response_header(r, "X-Content-Type-Options", "nosniff") != MHD_YES) {
    MHD_destroy_response(r);
    return NULL;
  }
  return r;
}

/* 304: the headers a 200 would carry that RFC 9110 §15.4.5 asks for. */
static struct MHD_Response *not_modified(const char *etag, int64_t max_age) {
  struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
  if (r == NULL) return NULL;
  char cc[64];
  snprintf(cc, sizeof cc, "public, max-age=%lld", (long long)max_age);
  if (MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, cc) != MHD_YES ||
      MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag) != MHD_YES ||
      MHD_add_response_header(r, "Access-Control-Allow-Origin", "*") != MHD_YES) {
    MHD_destroy_response(r);
    return NULL;
  }
  return r;
}

#define DISCOVERY_MAX_AGE 300

/* The prepared responses of a snapshot: each document's 200 and 304 (the
 * JWKS: r[0], r[1]; the OpenID and RFC 8414 documents: r[0..3]). */
typedef struct prepared {
  sv_attachment base;
  struct MHD_Response *r[4];
} prepared;

static void prepared_free(sv_attachment *a) {
  prepared *p = (prepared *)a;
  for (size_t i = 0; i < 4; i++)
    if (p->r[i] != NULL) MHD_destroy_response(p->r[i]);
  free(p);
}

/* Hang p on the snapshot's slot, unless another request did first (then
 * that one is used and p freed); NULL when p is NULL or incomplete. */
static prepared *attach(_Atomic(sv_attachment *) *slot, prepared *p, size_t n) {
  if (p == NULL) return NULL;
  for (size_t i = 0; i < n; i++)
    if (p->r[i] == NULL) {
      prepared_free(&p->base);
      return NULL;
    }
  sv_attachment *first = NULL;
  if (atomic_compare_exchange_strong(slot, &first, &p->base)) return p;
  prepared_free(&p->base);
  return (prepared *)first;
}

static prepared *prepared_new(void) {
  prepared *p = calloc(1, sizeof *p);
  if (p != NULL) p->base.free = prepared_free;
  return p;
}

static prepared *jwks_prepared(sv_keysnap *ks) {
  sv_attachment *a = atomic_load(&ks->attached);
  if (a != NULL) return (prepared *)a;
  prepared *p = prepared_new();
  if (p != NULL) {
    p->r[0] = doc_response(ks->jwks, ks->jwks_len, "application/jwk-set+json", ks->etag, ks->timing.max_age);
    p->r[1] = not_modified(ks->etag, ks->timing.max_age);
  }
  return attach(&ks->attached, p, 2);
}

static prepared *discovery_prepared(sv_confsnap *cs) {
  sv_attachment *a = atomic_load(&cs->attached);
  if (a != NULL) return (prepared *)a;
  prepared *p = prepared_new();
  if (p != NULL) {
    p->r[0] = doc_response(cs->openid, cs->openid_len, "application/json", cs->openid_etag, DISCOVERY_MAX_AGE);
    p->r[1] = not_modified(cs->openid_etag, DISCOVERY_MAX_AGE);
    p->r[2] = doc_response(cs->oauth, cs->oauth_len, "application/json", cs->oauth_etag, DISCOVERY_MAX_AGE);
    p->r[3] = not_modified(cs->oauth_etag, DISCOVERY_MAX_AGE);
  }
  return attach(&cs->attached, p, 4);
}

/* ------------------------------------------------------------ helpers */

/* Bodies handed to libmicrohttpd come from jk_malloc and may hold a
 * token: wiped when it is done with them. */
static void free_wipe(void *p) {
  if (p != NULL) jk_free_secret(p, strlen(p));
}

/* Queue a shared prepared response (MHD keeps its own reference). */
static enum MHD_Result send_shared(struct MHD_Connection *c, sv_req *rq, unsigned status, void *resp) {
  rq->status = status;
  rq->responded = 1;
  return MHD_queue_response(c, status, resp);
}

/* Queue body (jk_malloc'd NUL-terminated text, or a static string when
 * is_static) with headers given as name, value, ..., NULL. */
static enum MHD_Result send_body(struct MHD_Connection *c, sv_req *rq, unsigned status, const char *ctype, char *body,
                                 int is_static, ...) {
  struct MHD_Response *r;
  size_t len = body ? strlen(body) : 0;
  if (is_static) r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_PERSISTENT);
  else r = MHD_create_response_from_buffer_with_free_callback_cls(len, body, free_wipe, body);
  if (r == NULL) {
    if (!is_static) free_wipe(body);
    return MHD_NO;
  }
  int ok = 1;
  if (ctype) ok &= MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype) == MHD_YES;
  ok &= MHD_add_response_header(r, "X-Content-Type-Options", "nosniff") == MHD_YES;
  va_list ap;
  va_start(ap, is_static);
  for (;;) {
    const char *name = va_arg(ap, const char *);
    if (name == NULL) break;
    const char *value = va_arg(ap, const char *);
    if (value != NULL) ok &= MHD_add_response_header(r, name, value) == MHD_YES;
  }
  va_end(ap);
  enum MHD_Result ret = MHD_NO;
  if (ok) {
    rq->status = status;
    rq->responded = 1;
    ret = MHD_queue_response(c, status, r);
  }
  MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result send_text(struct MHD_Connection *c, sv_req *rq, unsigned status, const char *text,
                                 const char *allow) {
  return send_body(c, rq, status, "text/plain; charset=utf-8", JK_UNCONST(text), 1, MHD_HTTP_HEADER_CACHE_CONTROL,
                   "no-store", MHD_HTTP_HEADER_ALLOW, allow, NULL);
}

/* RFC 6749 §5.2 error response.  Every 401 carries a challenge (RFC 9110
 * §11.6.1); RFC 6749 requires it when the client used Basic. */
static enum MHD_Result token_error(struct MHD_Connection *c, sv_req *rq, unsigned status, enum sv_token_error e,
                                   const char *desc, const char *allow, int64_t retry_after) {
  sv_metrics_token_error(e);
  char ra[24];
  snprintf(ra, sizeof ra, "%lld", (long long)retry_after);
  rq->error = sv_token_error_name(e);
  char *body = sv_token_error_body(e, desc, NULL);
  if (body == NULL) return MHD_NO;
  return send_body(c, rq, status, "application/json", body, 0, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store",
                   MHD_HTTP_HEADER_PRAGMA, "no-cache", MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                   status == 401 ? "Basic realm=\"jwtkit\", charset=\"UTF-8\"" : NULL, MHD_HTTP_HEADER_ALLOW, allow,
                   MHD_HTTP_HEADER_RETRY_AFTER, retry_after > 0 ? ra : NULL, NULL);
}

/* libmicrohttpd's header fields as sv_headers. */
typedef struct conn_each_ctx {
  int (*fn)(void *cls, const char *name, const char *value);
  void *cls;
} conn_each_ctx;

static enum MHD_Result conn_each_cb(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
  (void)kind;
  conn_each_ctx *x = cls;
  return x->fn(x->cls, key, value) ? MHD_YES : MHD_NO;
}

static void conn_each(void *ctx, int (*fn)(void *cls, const char *name, const char *value), void *cls) {
  conn_each_ctx x = {fn, cls};
  MHD_get_connection_values(ctx, MHD_HEADER_KIND, conn_each_cb, &x);
}

static const char *conn_get(void *ctx, const char *name) {
  return MHD_lookup_connection_value(ctx, MHD_HEADER_KIND, name);
}

static sv_headers conn_headers(struct MHD_Connection *c) {
  sv_headers h = {conn_get, conn_each, c};
  return h;
}

/* Queue an answer, then free it. */
static enum MHD_Result send_answer(struct MHD_Connection *c, sv_req *rq, sv_answer *a) {
  if (a->client_id[0]) snprintf(rq->client_id, sizeof rq->client_id, "%s", a->client_id);
  if (a->kid[0]) snprintf(rq->kid, sizeof rq->kid, "%s", a->kid);
  enum MHD_Result r;
  if (a->no_answer) {
    r = MHD_NO;
  } else if (a->token_error >= 0) {
    r = token_error(c, rq, a->status, (enum sv_token_error)a->token_error, a->text, a->allow, a->retry_after);
    rq->throttled = a->throttled;
  } else if (a->json != NULL) {
    char *body = a->json; /* send_body frees it */
    a->json = NULL;
    r = send_body(c, rq, a->status, "application/json", body, 0, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store",
                  MHD_HTTP_HEADER_PRAGMA, "no-cache", NULL);
  } else {
    r = send_text(c, rq, a->status, a->text, a->allow);
  }
  sv_answer_free(a);
  return r;
}

/* ----------------------------------------------------------- handlers */

static enum MHD_Result handle_doc(struct MHD_Connection *c, sv_req *rq) {
  sv_headers h = conn_headers(c);
  if (rq->route == SV_R_JWKS) {
    sv_keysnap *ks = sv_keysnap_acquire();
    if (ks == NULL) return send_text(c, rq, 503, "keyring not loaded\n", NULL);
    prepared *p = jwks_prepared(ks);
    int nm = sv_http_not_modified(&h, ks->etag);
    enum MHD_Result r = p ? send_shared(c, rq, nm ? 304 : 200, p->r[nm ? 1 : 0]) : MHD_NO;
    sv_keysnap_release(ks);
    return r;
  }
  sv_confsnap *cs = sv_confsnap_acquire();
  if (cs == NULL) return send_text(c, rq, 503, "not configured\n", NULL);
  prepared *p = discovery_prepared(cs);
  int base = rq->route == SV_R_OPENID ? 0 : 2;
  int nm = sv_http_not_modified(&h, rq->route == SV_R_OPENID ? cs->openid_etag : cs->oauth_etag);
  enum MHD_Result r = p ? send_shared(c, rq, nm ? 304 : 200, p->r[base + (nm ? 1 : 0)]) : MHD_NO;
  sv_confsnap_release(cs);
  return r;
}

static enum MHD_Result handle_healthz(struct MHD_Connection *c, sv_req *rq) {
  sv_keysnap *ks = sv_keysnap_acquire();
  sv_confsnap *cs = sv_confsnap_acquire();
  char msg[256] = "ok\n";
  int ok = ks != NULL && cs != NULL;
  if (!ok) snprintf(msg, sizeof msg, "not ready\n");
  int64_t now = jk_now();
  for (size_t i = 0; ok && i < cs->settings.nalgs; i++) {
    jwtkit_alg alg = cs->settings.algs[i];
    jwtkit_key *key = NULL;
    int64_t max_exp = 0;
    int have = 0;
    for (size_t k = 0; k < ks->nsig; k++)
      if (ks->sig[k].alg == alg && ks->sig[k].signer != NULL) have = 1;
    char why[180];
    if (!have || jwtkit_keyring_signing_key(ks->kr, alg, now, &key, &max_exp) != JWTKIT_OK) {
      snprintf(msg, sizeof msg, "no signing key for %s\n", jwtkit_alg_name(alg));
      ok = 0;
    } else if (sv_keyhealth_down(alg, key, why, sizeof why)) { /* its token is away, or failing */
      snprintf(msg, sizeof msg, "signing key for %s unavailable: %s\n", jwtkit_alg_name(alg), why);
      ok = 0;
    }
  }
  sv_keysnap_release(ks);
  sv_confsnap_release(cs);
  char *body = jk_strdup(msg);
  if (body == NULL) return MHD_NO;
  return send_body(c, rq, ok ? 200 : 503, "text/plain; charset=utf-8", body, 0, MHD_HTTP_HEADER_CACHE_CONTROL,
                   "no-store", NULL);
}

static enum MHD_Result handle_metrics(struct MHD_Connection *c, sv_req *rq) {
  sv_conn_metrics cm;
  sv_server *srv = g_srv;
  svc_guard_stats st;
  static const char *reasons[SVC_GC_COUNT];
  if (srv != NULL) {
    svc_guard_get_stats(srv->guard, &st);
    for (int i = 0; i < SVC_GC_COUNT; i++) reasons[i] = svc_guard_reason_name(i);
    cm = (sv_conn_metrics){.open = st.open,
                           .reasons = reasons,
                           .closed = st.closed,
                           .nreasons = SVC_GC_COUNT,
                           .reserve_admitted = st.reserve_admitted,
                           .reserve_refused = st.reserve_refused,
                           .throttled = {sv_limiter_throttled(srv->limiter, 0), sv_limiter_throttled(srv->limiter, 1)}};
  }
  sv_keysnap *ks = sv_keysnap_acquire();
  char *text = sv_metrics_render(ks, srv ? &cm : NULL, jk_now(), NULL);
  sv_keysnap_release(ks);
  if (text == NULL) return send_text(c, rq, 500, "metrics unavailable\n", NULL);
  return send_body(c, rq, 200, "text/plain; version=0.0.4; charset=utf-8", text, 0, MHD_HTTP_HEADER_CACHE_CONTROL,
                   "no-store", NULL);
}

static void park_conn(void *conn) { MHD_suspend_connection(conn); }
static void resume_conn(void *conn) { MHD_resume_connection(conn); }

/* A token key's signature goes to a signer thread (signq.c): the
 * connection is suspended meanwhile, so this thread never waits for one
 * of the token's sessions.  1 when queued (the snapshots' references go
 * with the job), else the answer is set. */
static int queue_signature(struct MHD_Connection *c, sv_req *rq, sv_confsnap *cs, sv_keysnap *ks, sv_mint *m,
                           sv_answer *a) {
  sv_signjob *j = calloc(1, sizeof *j);
  if (j != NULL) {
    j->cs = cs;
    j->ks = ks;
    j->m = *m;
    j->conn = c;
    sv_answer_init(&j->a);
    rq->job = j; /* before the submit: the resume may come at once */
    if (sv_signq_submit(j, park_conn) == 0) return 1;
    rq->job = NULL;
    free(j);
  }
  sv_mint_free(m);
  sv_answer_token_error(a, 503, SV_TE_TEMPORARILY_UNAVAILABLE,
                        "too many token requests are waiting for the signing key's token; retry after the time in "
                        "Retry-After",
                        NULL);
  a->retry_after = 1;
  return 0;
}

static enum MHD_Result handle_token(struct MHD_Connection *c, sv_req *rq) {
  sv_confsnap *cs = sv_confsnap_acquire();
  sv_keysnap *ks = sv_keysnap_acquire();
  enum MHD_Result r;
  if (cs == NULL || ks == NULL) {
    r = token_error(c, rq, 503, SV_TE_TEMPORARILY_UNAVAILABLE, "the issuer is starting", NULL, 0);
  } else {
    sv_headers h = conn_headers(c);
    sv_answer a;
    sv_mint m;
    sv_token_respond_limited(cs, ks, &h, rq->body, rq->body_len, jk_now(), g_srv ? g_srv->limiter : NULL,
                             rq->have_addr ? rq->addr : NULL, jk_mono_ms(), &m, &a);
    if (m.pending && queue_signature(c, rq, cs, ks, &m, &a)) {
      sv_answer_free(&a);
      return MHD_YES; /* answered when resumed */
    }
    r = send_answer(c, rq, &a);
  }
  sv_keysnap_release(ks);
  sv_confsnap_release(cs);
  return r;
}

/* --------------------------------------------------------- MHD glue */

/* A request whose framing is refused (RFC 9112 §6.3): the answer goes out
 * with Connection: close, queued before the body, so libmicrohttpd reads
 * none of it and closes the connection after the answer. */
static enum MHD_Result reject_framing(sv_server *srv, struct MHD_Connection *c, sv_req *rq, const svc_framing *fr) {
  svc_guard_rejected(srv->guard, c);
  rq->route = SV_R_OTHER;
  char *text = jk_malloc(strlen(fr->why) + 2);
  if (text == NULL) return MHD_NO;
  snprintf(text, strlen(fr->why) + 2, "%s\n", fr->why);
  rq->error = "bad_framing";
  return send_body(c, rq, fr->status, "text/plain; charset=utf-8", text, 0, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store",
                   MHD_HTTP_HEADER_CONNECTION, "close", NULL);
}

/* A reserve connection (the connection limit is reached and nothing could
 * be closed for room) asking for anything but /healthz or /metrics. */
static enum MHD_Result send_busy(sv_server *srv, struct MHD_Connection *c, sv_req *rq) {
  svc_guard_reserve_refused(srv->guard);
  rq->error = "connection_limit";
  return send_body(c, rq, 503, "text/plain; charset=utf-8",
                   (char *)"the issuer is at its connection limit; retry shortly\n", 1, MHD_HTTP_HEADER_CACHE_CONTROL,
                   "no-store", MHD_HTTP_HEADER_RETRY_AFTER, "1", MHD_HTTP_HEADER_CONNECTION, "close", NULL);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
  sv_server *srv = cls;
  sv_req *rq = *con_cls;
  if (rq == NULL) {
    rq = calloc(1, sizeof *rq);
    if (rq == NULL) return MHD_NO;
    *con_cls = rq;
    atomic_fetch_add(&srv->inflight, 1);
    rq->start_us = jk_mono_us();
    snprintf(rq->method_s, sizeof rq->method_s, "%s", method);
    snprintf(rq->path, sizeof rq->path, "%s", url);
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr) {
      const struct sockaddr *sa = ci->client_addr;
      if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, rq->remote, sizeof rq->remote);
      else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, rq->remote,
                  sizeof rq->remote);
      sv_limiter_key_addr(sa, rq->addr);
      rq->have_addr = 1;
    }
    sv_headers h = conn_headers(c);
    /* framing first: two lengths, a list, an unknown coding would let a
     * proxy in front and this server disagree on where the request ends */
    svc_framing fr;
    svc_framing_check(h.each, h.ctx, version != NULL && strcmp(version, MHD_HTTP_VERSION_1_0) == 0, ~0ULL, &fr);
    if (fr.status != 0) return reject_framing(srv, c, rq, &fr);
    sv_confsnap *cs = sv_confsnap_acquire();
    sv_head hd;
    sv_answer ans;
    int answered = sv_http_head(cs, method, url, &h, &hd, &ans);
    sv_confsnap_release(cs);
    rq->route = hd.route;
    rq->method = hd.method;
    rq->too_large = hd.too_large;
    int reserve = svc_guard_request_begin(srv->guard, c, !answered && (hd.length > 0 || fr.chunked));
    if (reserve && rq->route != SV_R_HEALTHZ && rq->route != SV_R_METRICS) {
      sv_answer_free(&ans);
      return send_busy(srv, c, rq);
    }
    if (answered) return send_answer(c, rq, &ans);
    if (hd.length > 0 && rq->route == SV_R_TOKEN) {
      rq->body = jk_malloc((size_t)hd.length + 1);
      if (rq->body == NULL) return MHD_NO;
      rq->body_cap = (size_t)hd.length + 1;
    }
    /* answer once the whole request is in: an answer queued before that
     * makes MHD close the connection instead of keeping it alive */
    return MHD_YES;
  }
  if (rq->job != NULL) { /* resumed: its signer thread answered */
    sv_signjob *j = rq->job;
    rq->job = NULL;
    sv_answer a = j->a;
    sv_answer_init(&j->a);
    sv_signjob_free(j);
    *upload_data_size = 0;
    return send_answer(c, rq, &a);
  }
  if (rq->responded) {
    *upload_data_size = 0; /* an early answer was queued: ignore the rest */
    return MHD_YES;
  }
  if (*upload_data_size > 0) {
    size_t n = *upload_data_size;
    *upload_data_size = 0;
    if (rq->too_large || rq->body_len + n > SV_MAX_BODY) {
      /* MHD takes no answer in the middle of a body: drop the rest and
       * answer 413 at its end, or close once it runs past a bound */
      rq->too_large = 1;
      rq->discarded += n;
      return rq->discarded > SV_MAX_DISCARD ? MHD_NO : MHD_YES;
    }
    if (rq->route != SV_R_TOKEN) {
      rq->body_len += n; /* a body on a GET is counted and ignored */
      return MHD_YES;
    }
    if (rq->body_len + n + 1 > rq->body_cap) {
      /* chunked (no Content-Length) or a body longer than announced */
      size_t cap = rq->body_cap ? rq->body_cap : 1024;
      while (cap < rq->body_len + n + 1) cap *= 2;
      if (cap > SV_MAX_BODY + 1) cap = SV_MAX_BODY + 1;
      char *nb = jk_malloc(cap);
      if (nb == NULL) return MHD_NO;
      if (rq->body) {
        memcpy(nb, rq->body, rq->body_len);
        jk_free_secret(rq->body, rq->body_cap);
      }
      rq->body = nb;
      rq->body_cap = cap;
    }
    memcpy(rq->body + rq->body_len, upload_data, n);
    rq->body_len += n;
    return MHD_YES;
  }
  svc_guard_body_done(srv->guard, c); /* the whole request is in */
  if (rq->too_large) {
    sv_answer ans;
    sv_answer_init(&ans);
    sv_http_too_large(rq->route, &ans);
    return send_answer(c, rq, &ans);
  }
  switch (rq->route) {
    case SV_R_TOKEN:
      return handle_token(c, rq);
    case SV_R_JWKS:
    case SV_R_OPENID:
    case SV_R_OAUTH:
      return handle_doc(c, rq);
    case SV_R_HEALTHZ:
      return handle_healthz(c, rq);
    case SV_R_METRICS:
      return handle_metrics(c, rq);
    default:
      return send_text(c, rq, 404, "not found\n", NULL);
  }
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
  sv_server *srv = cls;
  svc_guard_request_end(srv->guard, c);
  sv_req *rq = *con_cls;
  if (rq == NULL) return;
  *con_cls = NULL;
  sv_metrics_request(rq->route, rq->status);
  sv_reqlog line = {.method = rq->method_s,
                    .path = rq->path,
                    .status = rq->status,
                    .duration_us = jk_mono_us() - rq->start_us,
                    .remote = rq->remote[0] ? rq->remote : NULL,
                    .client_id = rq->client_id[0] ? rq->client_id : NULL,
                    .kid = rq->kid[0] ? rq->kid : NULL,
                    .error = rq->error,
                    .throttled = rq->throttled == SV_RL_BY_ADDR ? "address" : rq->throttled ? "client" : NULL,
                    .termination = toe != MHD_REQUEST_TERMINATED_COMPLETED_OK ? (int)toe : -1};
  sv_reqlog_write(&line, jk_mono_ms());
  if (rq->body) jk_free_secret(rq->body, rq->body_cap);
  sv_signjob_free(rq->job); /* resumed but closed before it was answered */
  free(rq);
  atomic_fetch_sub(&srv->inflight, 1);
}

/* libmicrohttpd's own diagnostics: the format comes from the library.
 * At most 5 lines per interval; the rest are counted in the summary. */
JK_PRINTF(2, 0) static void mhd_log(void *cls, const char *fmt, va_list ap) {
  sv_server *srv = cls;
  if (srv != NULL) {
    svc_guard_mhd_message(srv->guard, fmt);
    if (!svc_loglimit_allow(&srv->mhd_lines, jk_mono_ms())) return;
  }
  char line[512];
  vsnprintf(line, sizeof line, fmt, ap);
  size_t n = strlen(line);
  while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
  jk_log(JK_LOG_WARN, "libmicrohttpd", "%s", line);
}

/* The count of libmicrohttpd's lines left out in the interval. */
static void mhd_suppressed(uint64_t n) {
  jk_logline L;
  if (n > 0 && jk_log_begin(&L, JK_LOG_WARN, "libmicrohttpd_suppressed")) {
    jk_log_uint(&L, "suppressed", n);
    jk_log_int(&L, "interval_s", LOG_INTERVAL_MS / 1000);
    jk_log_end(&L);
  }
}

/* Once a second, from the guard's thread: the summaries whose interval is
 * over. */
static void http_tick(void *ctx, int64_t now) {
  sv_server *srv = ctx;
  sv_reqlog_flush(now, 0);
  mhd_suppressed(svc_loglimit_take(&srv->mhd_lines, now, 0));
  if (now - srv->logged_ms < LOG_INTERVAL_MS) return;
  svc_guard_stats st;
  svc_guard_get_stats(srv->guard, &st);
  uint64_t any = st.reserve_admitted - srv->logged.reserve_admitted;
  for (int i = 0; i < SVC_GC_COUNT; i++) any += st.closed[i] - srv->logged.closed[i];
  if (any == 0) return;
  jk_logline L;
  if (jk_log_begin(&L, JK_LOG_INFO, "connections_closed")) {
    for (int i = 0; i < SVC_GC_COUNT; i++)
      if (st.closed[i] != srv->logged.closed[i])
        jk_log_uint(&L, svc_guard_reason_name(i), st.closed[i] - srv->logged.closed[i]);
    jk_log_uint(&L, "reserve_admitted", st.reserve_admitted - srv->logged.reserve_admitted);
    jk_log_uint(&L, "open", st.open);
    jk_log_uint(&L, "open_max", st.open_max);
    jk_log_end(&L);
  }
  srv->logged = st;
  srv->logged_ms = now;
}

int sv_http_start(sv_server **out, const sv_settings *s, char *err, size_t cap) {
  *out = NULL;
  jk_listen l;
  const char *why = NULL;
  if (jk_parse_listen(s->listen, 0, &l, &why) != 0) { /* checked when it was set */
    snprintf(err, cap, "listen: %s", why);
    return -1;
  }
  sv_server *srv = calloc(1, sizeof *srv);
  if (srv == NULL) {
    snprintf(err, cap, "out of memory");
    return -1;
  }
  atomic_init(&srv->inflight, 0);
  srv->listen_fd = MHD_INVALID_SOCKET;
  srv->mhd_lines.interval_ms = LOG_INTERVAL_MS;
  srv->mhd_lines.burst = 5;
  svc_guard_opts go = {.limit = (unsigned)s->max_connections,
                       .reserve = CONN_RESERVE,
                       .header_timeout_ms = s->header_timeout * 1000,
                       .idle_timeout_ms = CONN_TIMEOUT * 1000,
                       .tick = http_tick,
                       .tick_ctx = srv};
  srv->limiter = sv_limiter_new();
  if (srv->limiter == NULL || svc_guard_new(&srv->guard, &go, err, cap) != 0) {
    if (srv->limiter == NULL) snprintf(err, cap, "out of memory");
    sv_limiter_free(srv->limiter);
    free(srv);
    return -1;
  }
  unsigned conn_limit = svc_guard_mhd_limit(&go);
  /* a descriptor per connection, plus the listening socket, epoll, files
   * and the keyring's: raise the soft limit when it is lower */
  unsigned long nofile = svc_raise_nofile(conn_limit + 64);
  if (nofile < conn_limit + 64)
    jk_log(JK_LOG_WARN, "nofile_limit",
           "open file limit below the connection limit: RLIMIT_NOFILE is %lu for max_connections %lld + reserve %u; "
           "raise it (ulimit -n, LimitNOFILE=) or lower max_connections",
           nofile, s->max_connections, CONN_RESERVE);
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  unsigned threads = s->threads > 0 ? (unsigned)s->threads : (unsigned)(cores > 0 ? (cores > 256 ? 256 : cores) : 1);
  int epoll = MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES;
  for (int attempt = 0; attempt < 2 && srv->d == NULL; attempt++) {
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME;
    flags |= epoll ? MHD_USE_EPOLL : MHD_USE_POLL;
    if (l.family == AF_INET6) flags |= MHD_USE_IPv6;
    struct MHD_OptionItem ops[] = {
        {MHD_OPTION_SOCK_ADDR, 0, &l.ss},
        {MHD_OPTION_CONNECTION_LIMIT, (intptr_t)conn_limit, NULL},
        {MHD_OPTION_PER_IP_CONNECTION_LIMIT, (intptr_t)s->max_connections_ip, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, CONN_TIMEOUT, NULL},
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, HDR_CONN_MEMORY, NULL},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, srv},
        {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)svc_guard_notify, srv->guard},
        {MHD_OPTION_STRICT_FOR_CLIENT, 1, NULL},
        {MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL},
        {threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, threads, NULL},
        {MHD_OPTION_END, 0, NULL}};
    srv->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, srv,
                              MHD_OPTION_ARRAY, ops, MHD_OPTION_END);
    if (srv->d == NULL && epoll) {
      jk_log(JK_LOG_WARN, "epoll_unavailable", "epoll unavailable, falling back to poll");
      epoll = 0;
    } else {
      break;
    }
  }
  if (srv->d == NULL) {
    snprintf(err, cap, "cannot listen on %s (address in use or not permitted?)", s->listen);
    svc_guard_free(srv->guard);
    sv_limiter_free(srv->limiter);
    free(srv);
    return -1;
  }
  g_srv = srv;
  sv_signq_init(resume_conn);
  jk_logline L;
  if (jk_log_begin(&L, JK_LOG_INFO, "listening")) {
    jk_log_str(&L, "listen", l.text);
    jk_log_str(&L, "issuer", s->issuer);
    jk_log_uint(&L, "threads", threads);
    jk_log_str(&L, "poll", epoll ? "epoll" : "poll");
    jk_log_int(&L, "max_connections", s->max_connections);
    jk_log_uint(&L, "connection_reserve", CONN_RESERVE);
    jk_log_int(&L, "max_connections_per_ip", s->max_connections_ip);
    jk_log_int(&L, "header_timeout_s", s->header_timeout);
    jk_log_uint(&L, "idle_timeout_s", CONN_TIMEOUT);
    jk_log_end(&L);
  }
  *out = srv;
  return 0;
}

void sv_http_stop(sv_server *srv, int grace_ms) {
  if (srv == NULL) return;
  srv->listen_fd = MHD_quiesce_daemon(srv->d); /* no new connections */
  int64_t deadline = jk_mono_ms() + grace_ms;
  while (atomic_load(&srv->inflight) > 0 && jk_mono_ms() < deadline) {
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  int left = atomic_load(&srv->inflight);
  if (left > 0) jk_log(JK_LOG_WARN, "shutdown_grace_over", "shutdown grace period over: %d requests still in flight", left);
  /* libmicrohttpd stops with no connection suspended: the signatures still
   * queued are answered 503, the running ones finish, every one resumed */
  sv_signq_stop();
  for (deadline = jk_mono_ms() + 500; left > 0 && atomic_load(&srv->inflight) > 0 && jk_mono_ms() < deadline;) {
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  MHD_stop_daemon(srv->d);
  if (srv->listen_fd != MHD_INVALID_SOCKET) close(srv->listen_fd);
  g_srv = NULL;
  svc_guard_free(srv->guard);
  sv_reqlog_flush(jk_mono_ms(), 1);
  mhd_suppressed(svc_loglimit_take(&srv->mhd_lines, jk_mono_ms(), 1));
  sv_limiter_free(srv->limiter);
  free(srv);
}
