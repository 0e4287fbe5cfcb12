/* The HTTP server (libmicrohttpd) and the endpoints.
 *
 *   GET  /.well-known/jwks.json                   the keyring's public keys
 *   GET  /.well-known/openid-configuration        discovery (OpenID form)
 *   GET  /.well-known/oauth-authorization-server  discovery (RFC 8414)
 *   POST /token                                   client credentials grant
 *   GET  /healthz, GET /metrics
 *
 * Threads: MHD's internal polling thread pool (epoll, else poll).  A
 * request takes references on the current configuration and keyring
 * snapshots; nothing it reads can change under it.
 *
 * The decisions take no MHD connection: sv_http_head (route, method and
 * header checks), sv_http_too_large, sv_http_not_modified and
 * sv_token_respond read the header fields through sv_headers and return
 * an sv_answer, which the MHD glue below (send_answer) turns into a
 * response; the fuzz harness fuzz/fuzz_serve_http.c calls them directly. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <openssl/crypto.h>

#include "connguard.h"
#include "serve.h"

#define HDR_CONN_MEMORY (32u * 1024u) /* request line + headers (MHD answers 414/431 beyond) */
#define CONN_TIMEOUT 10u              /* seconds of inactivity (the keep-alive idle timeout) */
#define CONN_RESERVE 16u              /* connections beyond max_connections for /healthz and /metrics */
#define SV_MAX_DISCARD (1u << 20)     /* body bytes read past the cap before the connection is closed */
#define LOG_INTERVAL_MS 10000         /* refused requests: a summary line per interval ... */
#define LOG_REFUSED_LINES 5u          /* ... after this many lines of their own */

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
} sv_req;

/* ------------------------------------------------------- conf snapshot */

static pthread_mutex_t g_cs_mu = PTHREAD_MUTEX_INITIALIZER;
static sv_confsnap *g_cs;

sv_confsnap *sv_confsnap_acquire(void) {
  pthread_mutex_lock(&g_cs_mu);
  sv_confsnap *cs = g_cs;
  if (cs) atomic_fetch_add_explicit(&cs->refs, 1, memory_order_relaxed);
  pthread_mutex_unlock(&g_cs_mu);
  return cs;
}

static void confsnap_destroy(sv_confsnap *cs) {
  sv_http_release_confsnap(cs);
  sv_clients_free(&cs->clients);
  free(cs->issuer_path);
  free(cs->openid);
  free(cs->oauth);
  free(cs);
}

void sv_confsnap_release(sv_confsnap *cs) {
  if (cs && atomic_fetch_sub_explicit(&cs->refs, 1, memory_order_acq_rel) == 1) confsnap_destroy(cs);
}

void sv_confsnap_install(sv_confsnap *cs) {
  pthread_mutex_lock(&g_cs_mu);
  sv_confsnap *old = g_cs;
  g_cs = cs;
  pthread_mutex_unlock(&g_cs_mu);
  sv_confsnap_release(old);
}

static void json_alg_array(sv_buf *b, const sv_settings *s) {
  sv_buf_putc(b, '[');
  for (size_t i = 0; i < s->nalgs; i++) {
    if (i) sv_buf_putc(b, ',');
    const char *n = jwtkit_alg_name(s->algs[i]);
    sv_json_str(b, n, strlen(n));
  }
  sv_buf_putc(b, ']');
}

static char *discovery(const sv_confsnap *cs, int openid, size_t *len) {
  sv_buf b;
  sv_buf_init(&b, 64 * 1024);
  sv_buf_putc(&b, '{');
  sv_json_kv_str(&b, "issuer", cs->settings.issuer, 1);
  sv_json_kv_str(&b, "jwks_uri", cs->jwks_uri, 0);
  sv_json_kv_str(&b, "token_endpoint", cs->token_endpoint, 0);
  sv_buf_puts(&b, ",\"grant_types_supported\":[\"client_credentials\"]");
  sv_buf_puts(&b, ",\"token_endpoint_auth_methods_supported\":[\"client_secret_basic\",\"client_secret_post\"]");
  /* REQUIRED in both RFC 8414 §2 and OpenID Connect Discovery §3; there is
   * no authorization endpoint, so no response type is supported */
  sv_buf_puts(&b, ",\"response_types_supported\":[]");
  if (openid) {
    sv_buf_puts(&b, ",\"subject_types_supported\":[\"public\"]");
    sv_buf_puts(&b, ",\"id_token_signing_alg_values_supported\":");
    json_alg_array(&b, &cs->settings);
  }
  /* token_endpoint_auth_signing_alg_values_supported is left out on
   * purpose: it belongs to private_key_jwt / client_secret_jwt, which this
   * issuer does not offer (RFC 8414 §2) */
  sv_buf_puts(&b, "}");
  return sv_buf_take(&b, len);
}

int sv_confsnap_build(sv_confsnap **out, const sv_settings *s, sv_clients *clients, int legacy_loaded, char *err,
                      size_t cap) {
  *out = NULL;
  for (size_t i = 0; i < clients->n; i++) {
    const sv_client *c = &clients->v[i];
    if (c->alg == JWTKIT_ALG_UNSPEC) continue;
    int ok = 0;
    for (size_t a = 0; a < s->nalgs; a++) ok |= s->algs[a] == c->alg;
    if (!ok) {
      sv_fmt(err, cap, "client %s (%s:%d) asks for alg %s, which is not among the configured algorithms",
               c->name, s->clients, c->line, jwtkit_alg_name(c->alg));
      return -1;
    }
  }
  sv_confsnap *cs = calloc(1, sizeof *cs);
  if (cs == NULL) {
    sv_fmt(err, cap, "out of memory");
    return -1;
  }
  atomic_init(&cs->refs, 1);
  cs->settings = *s;
  cs->clients = *clients;
  memset(clients, 0, sizeof *clients);
  cs->legacy_loaded = legacy_loaded;
  /* endpoints hang below the issuer (a trailing '/' is not doubled) */
  char base[512];
  snprintf(base, sizeof base, "%s", s->issuer);
  size_t bl = strlen(base);
  if (bl > 0 && base[bl - 1] == '/') base[--bl] = '\0';
  snprintf(cs->token_endpoint, sizeof cs->token_endpoint, "%s/token", base);
  snprintf(cs->jwks_uri, sizeof cs->jwks_uri, "%s/.well-known/jwks.json", base);
  const char *hostp = strstr(base, "://");
  const char *path = hostp ? strchr(hostp + 3, '/') : NULL;
  cs->issuer_path = strdup(path ? path : "");
  cs->openid = discovery(cs, 1, &cs->openid_len);
  cs->oauth = discovery(cs, 0, &cs->oauth_len);
  if (cs->issuer_path == NULL || cs->openid == NULL || cs->oauth == NULL) {
    confsnap_destroy(cs);
    sv_fmt(err, cap, "out of memory");
    return -1;
  }
  sv_etag(cs->openid, cs->openid_len, cs->openid_etag);
  sv_etag(cs->oauth, cs->oauth_len, cs->oauth_etag);
  if (sv_http_prepare_confsnap(cs) != 0) {
    confsnap_destroy(cs);
    sv_fmt(err, cap, "out of memory");
    return -1;
  }
  *out = cs;
  return 0;
}

/* --------------------------------------------------- prepared responses */

static struct MHD_Response *doc_response(const char *body, size_t len, const char *ctype, const char *etag,
                                         int64_t max_age) {
  struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
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

int sv_http_prepare_keysnap(sv_keysnap *ks) {
  ks->http[0] = doc_response(ks->jwks, ks->jwks_len, "application/jwk-set+json", ks->etag, ks->timing.max_age);
  ks->http[1] = not_modified(ks->etag, ks->timing.max_age);
  return ks->http[0] && ks->http[1] ? 0 : -1;
}

void sv_http_release_keysnap(sv_keysnap *ks) {
  for (int i = 0; i < 2; i++)
    if (ks->http[i]) MHD_destroy_response(ks->http[i]);
}

int sv_http_prepare_confsnap(sv_confsnap *cs) {
  cs->http[0] = doc_response(cs->openid, cs->openid_len, "application/json", cs->openid_etag, DISCOVERY_MAX_AGE);
  cs->http[1] = not_modified(cs->openid_etag, DISCOVERY_MAX_AGE);
  cs->http[2] = doc_response(cs->oauth, cs->oauth_len, "application/json", cs->oauth_etag, DISCOVERY_MAX_AGE);
  cs->http[3] = not_modified(cs->oauth_etag, DISCOVERY_MAX_AGE);
  return cs->http[0] && cs->http[1] && cs->http[2] && cs->http[3] ? 0 : -1;
}

void sv_http_release_confsnap(sv_confsnap *cs) {
  for (int i = 0; i < 4; i++)
    if (cs->http[i]) MHD_destroy_response(cs->http[i]);
}

/* ------------------------------------------------------------ helpers */

static void free_wipe(void *p) {
  if (p == NULL) return;
  OPENSSL_cleanse(p, strlen(p));
  free(p);
}

/* Queue a shared prepared response (MHD keeps its own reference). */
static enum MHD_Result send_shared(struct MHD_Connection *c, sv_req *rq, unsigned status, void *resp) {
  rq->status = status;
  rq->responded = 1;
  return MHD_queue_response(c, status, resp);
}

/* Queue body (malloc'd NUL-terminated text, or a static string when
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
  return send_body(c, rq, status, "text/plain; charset=utf-8", (char *)text, 1, MHD_HTTP_HEADER_CACHE_CONTROL,
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
  sv_buf b;
  sv_buf_init(&b, 4096);
  sv_buf_putc(&b, '{');
  sv_json_kv_str(&b, "error", rq->error, 1);
  if (desc) sv_json_kv_str(&b, "error_description", desc, 0);
  sv_buf_putc(&b, '}');
  char *body = sv_buf_take(&b, NULL);
  if (body == NULL) return MHD_NO;
  return send_body(c, rq, status, "application/json", body, 0, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store",
                   MHD_HTTP_HEADER_PRAGMA, "no-cache", MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                   status == 401 ? "Basic realm=\"jwtkit\", charset=\"UTF-8\"" : NULL, MHD_HTTP_HEADER_ALLOW, allow,
                   MHD_HTTP_HEADER_RETRY_AFTER, retry_after > 0 ? ra : NULL, NULL);
}

/* ------------------------------------------------------------ routing */

static enum sv_route route_of(const char *url, const sv_confsnap *cs) {
  static const struct {
    const char *path;
    enum sv_route r;
  } k_map[] = {{"/.well-known/jwks.json", SV_R_JWKS},
               {"/.well-known/openid-configuration", SV_R_OPENID},
               {"/.well-known/oauth-authorization-server", SV_R_OAUTH},
               {"/token", SV_R_TOKEN},
               {"/healthz", SV_R_HEALTHZ},
               {"/metrics", SV_R_METRICS}};
  const char *ip = cs ? cs->issuer_path : "";
  size_t il = strlen(ip);
  if (il > 0) {
    /* RFC 8414 §3: the well-known segment goes between host and path */
    if (strncmp(url, "/.well-known/oauth-authorization-server", 39) == 0 && strcmp(url + 39, ip) == 0)
      return SV_R_OAUTH;
    /* behind a proxy that keeps the issuer's path */
    if (strncmp(url, ip, il) == 0 && url[il] == '/') url += il;
  }
  for (size_t i = 0; i < sizeof k_map / sizeof k_map[0]; i++)
    if (strcmp(url, k_map[i].path) == 0) return k_map[i].r;
  return SV_R_OTHER;
}

/* ------------------------------------------------------ header fields */

void sv_answer_init(sv_answer *a) {
  memset(a, 0, sizeof *a);
  a->token_error = -1;
}

void sv_answer_free(sv_answer *a) {
  free_wipe(a->json);
  a->json = NULL;
}

static int text_answer(sv_answer *a, unsigned status, const char *text, const char *allow) {
  a->status = status;
  a->token_error = -1;
  a->text = text;
  a->allow = allow;
  return 1;
}

static int token_answer(sv_answer *a, unsigned status, enum sv_token_error e, const char *desc, const char *allow) {
  a->status = status;
  a->token_error = (int)e;
  a->text = desc;
  a->allow = allow;
  return 1;
}

typedef struct inm_ctx {
  const char *etag;
  int matched;
} inm_ctx;

static int inm_each(void *cls, const char *key, const char *value) {
  inm_ctx *x = cls;
  if (key && value && strcasecmp(key, MHD_HTTP_HEADER_IF_NONE_MATCH) == 0 && sv_if_none_match(value, x->etag))
    x->matched = 1;
  return 1;
}

int sv_http_not_modified(const sv_headers *h, const char *etag) {
  inm_ctx x = {etag, 0};
  h->each(h->ctx, inm_each, &x);
  return x.matched;
}

static int count_each(void *cls, const char *key, const char *value) {
  (void)value;
  int *n = cls;
  if (key && strcasecmp(key, MHD_HTTP_HEADER_AUTHORIZATION) == 0) (*n)++;
  return 1;
}

/* application/x-www-form-urlencoded, with optional parameters (charset). */
static int form_content_type(const char *ct) {
  static const char want[] = "application/x-www-form-urlencoded";
  if (ct == NULL) return 0;
  while (*ct == ' ' || *ct == '\t') ct++;
  if (strncasecmp(ct, want, sizeof want - 1) != 0) return 0;
  const char *rest = ct + sizeof want - 1;
  while (*rest == ' ' || *rest == '\t') rest++;
  return *rest == '\0' || *rest == ';';
}

int sv_http_head(const sv_confsnap *cs, const char *method, const char *url, const sv_headers *h, sv_head *hd,
                 sv_answer *a) {
  sv_answer_init(a);
  hd->method = !strcmp(method, "GET")    ? SV_M_GET
               : !strcmp(method, "HEAD") ? SV_M_HEAD
               : !strcmp(method, "POST") ? SV_M_POST
                                         : SV_M_OTHER;
  hd->route = route_of(url, cs);
  hd->length = -1;
  hd->too_large = 0;
  if (hd->route == SV_R_OTHER) return text_answer(a, 404, "not found\n", NULL);
  if (hd->route == SV_R_TOKEN) {
    if (hd->method != SV_M_POST)
      return token_answer(a, 405, SV_TE_INVALID_REQUEST, "the token endpoint takes POST", "POST");
    if (!form_content_type(h->get(h->ctx, MHD_HTTP_HEADER_CONTENT_TYPE)))
      return token_answer(a, 415, SV_TE_INVALID_REQUEST, "the body must be application/x-www-form-urlencoded", NULL);
  } else if (hd->method != SV_M_GET && hd->method != SV_M_HEAD) {
    return text_answer(a, 405, "method not allowed\n", "GET, HEAD");
  }
  const char *cl = h->get(h->ctx, MHD_HTTP_HEADER_CONTENT_LENGTH);
  if (cl != NULL) {
    long long n;
    if (sv_parse_int(cl, 0, (long long)SV_MAX_BODY, &n) != 0) {
      hd->too_large = 1;
      sv_http_too_large(hd->route, a);
      return 1;
    }
    hd->length = n;
  }
  return 0;
}

void sv_http_too_large(enum sv_route route, sv_answer *a) {
  if (route == SV_R_TOKEN) token_answer(a, 413, SV_TE_INVALID_REQUEST, "the body is larger than 16 KiB", NULL);
  else text_answer(a, 413, "request body too large\n", NULL);
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
  if (rq->route == SV_R_JWKS) {
    sv_keysnap *ks = sv_keysnap_acquire();
    if (ks == NULL) return send_text(c, rq, 503, "keyring not loaded\n", NULL);
    sv_headers h = conn_headers(c);
    int nm = sv_http_not_modified(&h, ks->etag);
    enum MHD_Result r = send_shared(c, rq, nm ? 304 : 200, ks->http[nm ? 1 : 0]);
    sv_keysnap_release(ks);
    return r;
  }
  sv_confsnap *cs = sv_confsnap_acquire();
  if (cs == NULL) return send_text(c, rq, 503, "not configured\n", NULL);
  int base = rq->route == SV_R_OPENID ? 0 : 2;
  sv_headers h = conn_headers(c);
  int nm = sv_http_not_modified(&h, rq->route == SV_R_OPENID ? cs->openid_etag : cs->oauth_etag);
  enum MHD_Result r = send_shared(c, rq, nm ? 304 : 200, cs->http[base + (nm ? 1 : 0)]);
  sv_confsnap_release(cs);
  return r;
}

static enum MHD_Result handle_healthz(struct MHD_Connection *c, sv_req *rq) {
  sv_keysnap *ks = sv_keysnap_acquire();
  sv_confsnap *cs = sv_confsnap_acquire();
  char msg[256] = "ok\n";
  int ok = ks != NULL && cs != NULL;
  if (!ok) snprintf(msg, sizeof msg, "not ready\n");
  int64_t now = (int64_t)time(NULL);
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
  char *body = strdup(msg);
  if (body == NULL) return MHD_NO;
  return send_body(c, rq, ok ? 200 : 503, "text/plain; charset=utf-8", body, 0, MHD_HTTP_HEADER_CACHE_CONTROL,
                   "no-store", NULL);
}

static void metrics_connections(sv_buf *b);

static enum MHD_Result handle_metrics(struct MHD_Connection *c, sv_req *rq) {
  sv_keysnap *ks = sv_keysnap_acquire();
  size_t len = 0;
  char *text = sv_metrics_render(ks, (int64_t)time(NULL), &len);
  sv_keysnap_release(ks);
  if (text == NULL) return send_text(c, rq, 500, "metrics unavailable\n", NULL);
  sv_buf b;
  sv_buf_init(&b, 2u << 20);
  sv_buf_put(&b, text, len);
  free(text);
  metrics_connections(&b);
  text = sv_buf_take(&b, NULL);
  if (text == NULL) return send_text(c, rq, 500, "metrics unavailable\n", NULL);
  return send_body(c, rq, 200, "text/plain; version=0.0.4; charset=utf-8", text, 0, MHD_HTTP_HEADER_CACHE_CONTROL,
                   "no-store", NULL);
}

/* The granted scope: the requested one (each token allowed), or every
 * allowed scope when none was requested.  Returns 0 or -1 (invalid_scope). */
static int grant_scope(const sv_client *cl, const char *req, sv_buf *out) {
  if (req == NULL) {
    for (size_t i = 0; i < cl->nscopes; i++) {
      if (i) sv_buf_putc(out, ' ');
      sv_buf_puts(out, cl->scopes[i]);
    }
    return 0;
  }
  const char *p = req;
  const char *granted[SV_MAX_SCOPES];
  size_t ng = 0;
  while (*p) {
    if (*p == ' ') {
      p++;
      continue;
    }
    const char *e = p;
    while (*e && *e != ' ') e++;
    size_t n = (size_t)(e - p);
    if (!sv_scope_token_ok(p, n)) return -1;
    const char *match = NULL;
    for (size_t i = 0; i < cl->nscopes; i++)
      if (strlen(cl->scopes[i]) == n && memcmp(cl->scopes[i], p, n) == 0) match = cl->scopes[i];
    if (match == NULL) return -1;
    int dup = 0;
    for (size_t i = 0; i < ng; i++) dup |= granted[i] == match;
    if (!dup) granted[ng++] = match; /* ng <= nscopes <= SV_MAX_SCOPES */
    p = e;
  }
  if (ng == 0) return -1;
  for (size_t i = 0; i < ng; i++) {
    if (i) sv_buf_putc(out, ' ');
    sv_buf_puts(out, granted[i]);
  }
  return 0;
}

/* Only the id of a registered client is logged: a secret pasted into the
 * client_id field by mistake must not end up in the logs. */
static void note_client(sv_answer *a, const sv_confsnap *cs, const char *id) {
  if (id && sv_clients_find(&cs->clients, id, strlen(id)) != NULL)
    snprintf(a->client_id, sizeof a->client_id, "%s", id);
}

static void throttled_answer(sv_answer *a, int by, int64_t retry_after) {
  token_answer(a, 429, SV_TE_TEMPORARILY_UNAVAILABLE,
               by == SV_RL_BY_ADDR ? "too many token requests from this address; retry after the time in Retry-After"
                                   : "too many token requests for this client; retry after the time in Retry-After",
               NULL);
  a->throttled = by;
  a->retry_after = retry_after;
}

/* sv_token_respond behind the token buckets (rl NULL: none). */
static void token_respond(const sv_confsnap *cs, const sv_keysnap *ks, const sv_headers *h, char *body, size_t len,
                          int64_t now, sv_limiter *rl, const unsigned char *addr, int64_t now_ms, sv_answer *a) {
  sv_answer_init(a);
  int64_t wait = 0;
  int by = rl ? sv_limiter_admit(rl, &cs->settings, addr, NULL, now_ms, &wait) : 0;
  if (by != 0) {
    throttled_answer(a, by, wait);
    return;
  }
  /* at most one Authorization field */
  int nauth = 0;
  h->each(h->ctx, count_each, &nauth);
  if (nauth > 1) {
    token_answer(a, 400, SV_TE_INVALID_REQUEST, "more than one Authorization field", NULL);
    return;
  }
  const char *authz = h->get(h->ctx, MHD_HTTP_HEADER_AUTHORIZATION);

  sv_form f;
  const char *why = NULL;
  char empty[1];
  if (body == NULL) {
    body = empty;
    len = 0;
  }
  int fr = sv_form_parse(body, len, &f, &why);
  if (fr != SV_FORM_OK) {
    token_answer(a, 400, SV_TE_INVALID_REQUEST, why, NULL);
    return;
  }

  const char *grant = sv_form_get(&f, "grant_type");
  const char *post_id = sv_form_get(&f, "client_id");
  const char *post_secret = sv_form_get(&f, "client_secret");
  size_t post_secret_len = post_secret ? strlen(post_secret) : 0;
  if (grant == NULL) {
    token_answer(a, 400, SV_TE_INVALID_REQUEST, "grant_type is missing", NULL);
    return;
  }

  char cred[1024];
  const char *id = NULL, *secret = NULL;
  size_t secret_len = 0;
  if (authz != NULL) {
    if (post_secret != NULL) {
      token_answer(a, 400, SV_TE_INVALID_REQUEST,
                   "more than one client authentication method (Authorization and client_secret)", NULL);
      goto out;
    }
    int br = sv_basic_parse(authz, cred, sizeof cred, &id, &secret, &secret_len);
    if (br != 0) {
      token_answer(a, 401, SV_TE_INVALID_CLIENT,
                   br == -1 ? "unsupported authentication scheme: use Basic or client_secret_post"
                            : "malformed Basic credentials",
                   NULL);
      goto out;
    }
    if (post_id != NULL && strcmp(post_id, id) != 0) {
      note_client(a, cs, id);
      token_answer(a, 400, SV_TE_INVALID_REQUEST, "client_id differs from the authenticated client", NULL);
      goto out;
    }
  } else if (post_secret != NULL) {
    if (post_id == NULL) {
      token_answer(a, 400, SV_TE_INVALID_REQUEST, "client_secret without client_id", NULL);
      goto out;
    }
    id = post_id;
    secret = post_secret;
    secret_len = post_secret_len;
  } else {
    note_client(a, cs, post_id);
    token_answer(a, 401, SV_TE_INVALID_CLIENT, "client authentication is required", NULL);
    goto out;
  }
  note_client(a, cs, id);
  if (strcmp(grant, "client_credentials") != 0) {
    token_answer(a, 400, SV_TE_UNSUPPORTED_GRANT_TYPE, "only client_credentials is supported", NULL);
    goto out;
  }
  const sv_client *cl = sv_clients_find(&cs->clients, id, strlen(id));
  if (rl != NULL && cl != NULL && (by = sv_limiter_admit(rl, &cs->settings, NULL, cl->name, now_ms, &wait)) != 0) {
    throttled_answer(a, by, wait);
    goto out;
  }
  if (!sv_secret_check(cl ? &cl->hash : NULL, secret, secret_len) || cl == NULL) {
    token_answer(a, 401, SV_TE_INVALID_CLIENT, "client authentication failed", NULL);
    goto out;
  }
  if (cl->disabled) {
    token_answer(a, 400, SV_TE_UNAUTHORIZED_CLIENT, "the client is disabled", NULL);
    goto out;
  }
  sv_buf scope;
  sv_buf_init(&scope, 16 * 1024);
  if (grant_scope(cl, sv_form_get(&f, "scope"), &scope) != 0 || scope.failed) {
    sv_buf_free(&scope);
    token_answer(a, 400, SV_TE_INVALID_SCOPE, "the requested scope is not allowed for this client", NULL);
    goto out;
  }

  /* the key: the keyring's active key, with its exp clamp */
  jwtkit_alg alg = cl->alg != JWTKIT_ALG_UNSPEC ? cl->alg : cs->settings.algs[0];
  jwtkit_key *key = NULL;
  int64_t max_exp = 0;
  const sv_sig *sig = NULL;
  for (size_t i = 0; i < ks->nsig; i++)
    if (ks->sig[i].alg == alg) sig = &ks->sig[i];
  if (sig == NULL || sig->signer == NULL || jwtkit_keyring_signing_key(ks->kr, alg, now, &key, &max_exp) != JWTKIT_OK ||
      key != sig->key) {
    sv_buf_free(&scope);
    token_answer(a, 503, SV_TE_TEMPORARILY_UNAVAILABLE, "no signing key is available right now", NULL);
    goto out;
  }
  int64_t ttl = cl->ttl > 0 ? cl->ttl : ks->timing.token_ttl;
  if (cs->settings.transition_ttl > 0 && cs->settings.transition_ttl < ttl) ttl = cs->settings.transition_ttl;
  int64_t exp = now + ttl;
  if (exp > max_exp) exp = max_exp;

  jwtkit_claimset *claims = jwtkit_claimset_new();
  jwtkit_err e = claims ? JWTKIT_OK : JWTKIT_ERR_NOMEM;
  if (e == JWTKIT_OK) e = jwtkit_claimset_set_string(claims, "iss", cs->settings.issuer);
  if (e == JWTKIT_OK) e = jwtkit_claimset_set_string(claims, "sub", cl->name);
  for (size_t i = 0; e == JWTKIT_OK && i < cl->naud; i++) e = jwtkit_claimset_add_audience(claims, cl->aud[i]);
  if (e == JWTKIT_OK) e = jwtkit_claimset_set_string(claims, "client_id", cl->name);
  if (e == JWTKIT_OK) e = jwtkit_claimset_set_lifetime(claims, now, exp - now);
  if (e == JWTKIT_OK) e = jwtkit_claimset_set_jti(claims);
  if (e == JWTKIT_OK && scope.len > 0) e = jwtkit_claimset_set_string(claims, "scope", scope.p);
  char *tok = NULL;
  size_t tl = 0;
  jwtkit_errinfo ei = {0};
  if (e == JWTKIT_OK) {
    e = jwtkit_signer_sign_claimset(sig->signer, claims, &tok, &tl, &ei);
    if (sv_keyhealth_signed(alg, key, e, &ei)) { /* a token key failed: it may come back */
      jwtkit_claimset_free(claims);
      sv_buf_free(&scope);
      token_answer(a, 503, SV_TE_TEMPORARILY_UNAVAILABLE, "the signing key's token is unavailable; retry later", NULL);
      a->retry_after = SV_TOKEN_RETRY_AFTER;
      goto out;
    }
  }
  jwtkit_claimset_free(claims);
  if (e != JWTKIT_OK) {
    sv_buf_free(&scope);
    sv_logf(SV_LOG_ERROR, "signing failed", "%s", jwtkit_strerror(e));
    token_answer(a, 500, SV_TE_SERVER_ERROR, "the token could not be signed", NULL);
    goto out;
  }
  snprintf(a->kid, sizeof a->kid, "%s", jwtkit_key_kid(key) ? jwtkit_key_kid(key) : "");
  sv_buf b;
  sv_buf_init(&b, 256 * 1024);
  sv_buf_putc(&b, '{');
  sv_json_kv_str(&b, "access_token", tok, 1);
  sv_json_kv_str(&b, "token_type", "Bearer", 0);
  sv_json_kv_int(&b, "expires_in", exp - now, 0);
  if (scope.len > 0) sv_json_kv_str(&b, "scope", scope.p, 0);
  sv_buf_putc(&b, '}');
  OPENSSL_cleanse(tok, tl);
  jwtkit_free(tok);
  sv_buf_free(&scope);
  a->json = sv_buf_take(&b, NULL);
  if (a->json == NULL) {
    token_answer(a, 500, SV_TE_SERVER_ERROR, NULL, NULL);
    goto out;
  }
  sv_metrics_minted(sig->minted);
  a->status = 200;
out:
  OPENSSL_cleanse(cred, sizeof cred);
}

void sv_token_respond(const sv_confsnap *cs, const sv_keysnap *ks, const sv_headers *h, char *body, size_t len,
                      int64_t now, sv_answer *a) {
  token_respond(cs, ks, h, body, len, now, NULL, NULL, 0, a);
}

void sv_token_respond_limited(const sv_confsnap *cs, const sv_keysnap *ks, const sv_headers *h, char *body,
                              size_t len, int64_t now, sv_limiter *l, const unsigned char *addr, int64_t now_ms,
                              sv_answer *a) {
  token_respond(cs, ks, h, body, len, now, l, addr, now_ms, a);
  /* a token or a server error costs 1, any other refusal token_fail_cost,
   * a 429 nothing (it did no work) */
  long long cost = a->status == 429 ? 0 : a->status == 200 || a->status >= 500 ? 1 : cs->settings.fail_cost;
  sv_limiter_charge(l, &cs->settings, addr, a->client_id[0] ? a->client_id : NULL, cost, now_ms);
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
    sv_token_respond_limited(cs, ks, &h, rq->body, rq->body_len, (int64_t)time(NULL), g_srv ? g_srv->limiter : NULL,
                             rq->have_addr ? rq->addr : NULL, svc_mono_ms(), &a);
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
  char *text = malloc(strlen(fr->why) + 2);
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
    rq->start_us = sv_mono_us();
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
      rq->body = malloc((size_t)hd.length + 1);
      if (rq->body == NULL) return MHD_NO;
      rq->body_cap = (size_t)hd.length + 1;
    }
    /* answer once the whole request is in: an answer queued before that
     * makes MHD close the connection instead of keeping it alive */
    return MHD_YES;
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
      char *nb = malloc(cap);
      if (nb == NULL) return MHD_NO;
      if (rq->body) {
        memcpy(nb, rq->body, rq->body_len);
        sv_free_secret(rq->body, rq->body_cap);
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

/* ------------------------------------------------------ request logs
 *
 * A successful request is logged at debug.  A refused one (4xx, 5xx, or
 * none: the client went away) is logged at info (5xx and none at warn),
 * at most LOG_REFUSED_LINES of them per LOG_INTERVAL_MS; all of them are
 * counted, and the interval ends with one summary line.  So the log grows
 * by a bounded number of lines whatever a client sends. */

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
    sv_buf b;
    if (sv_log_begin(&b, g_refused.server_errors ? SV_LOG_WARN : SV_LOG_INFO, "requests refused (summary)")) {
      sv_log_int(&b, "interval_s", LOG_INTERVAL_MS / 1000);
      sv_log_int(&b, "refused", (int64_t)g_refused.refused);
      sv_log_int(&b, "logged", g_refused.lines);
      sv_log_str(&b, "by_status", by);
      sv_log_end(&b);
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

/* End the interval when it is over (or now, with force). */
static void refused_flush(int64_t now, int force) {
  pthread_mutex_lock(&g_refused.mu);
  if (g_refused.window_ms != 0 && (force || now - g_refused.window_ms >= LOG_INTERVAL_MS)) refused_summary();
  pthread_mutex_unlock(&g_refused.mu);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
  sv_server *srv = cls;
  svc_guard_request_end(srv->guard, c);
  sv_req *rq = *con_cls;
  if (rq == NULL) return;
  *con_cls = NULL;
  sv_metrics_request(rq->route, rq->status);
  int refused = rq->status >= 400 || rq->status == 0;
  int level = rq->status >= 500 || rq->status == 0 ? SV_LOG_WARN : refused ? SV_LOG_INFO : SV_LOG_DEBUG;
  int own = refused ? refused_note(rq->status, svc_mono_ms()) : 1; /* every refusal is counted */
  sv_buf b;
  if (own && sv_log_begin(&b, level, "request")) {
    sv_log_str(&b, "method", rq->method_s);
    sv_log_str(&b, "path", rq->path);
    sv_log_int(&b, "status", rq->status);
    sv_log_int(&b, "duration_us", sv_mono_us() - rq->start_us);
    if (rq->remote[0]) sv_log_str(&b, "remote", rq->remote);
    if (rq->client_id[0]) sv_log_str(&b, "client_id", rq->client_id);
    if (rq->kid[0]) sv_log_str(&b, "kid", rq->kid);
    if (rq->error) sv_log_str(&b, "error", rq->error);
    if (rq->throttled) sv_log_str(&b, "throttled", rq->throttled == SV_RL_BY_ADDR ? "address" : "client");
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) sv_log_int(&b, "termination", (int64_t)toe);
    sv_log_end(&b);
  }
  if (rq->body) sv_free_secret(rq->body, rq->body_cap);
  free(rq);
  atomic_fetch_sub(&srv->inflight, 1);
}

/* libmicrohttpd's own diagnostics: the format comes from the library.
 * At most 5 lines per interval; the rest are counted in the summary. */
#if defined(__clang__) || defined(__GNUC__)
__attribute__((format(printf, 2, 0)))
#endif
static void mhd_log(void *cls, const char *fmt, va_list ap) {
  sv_server *srv = cls;
  if (srv != NULL) {
    svc_guard_mhd_message(srv->guard, fmt);
    if (!svc_loglimit_allow(&srv->mhd_lines, svc_mono_ms())) return;
  }
  char line[512];
  vsnprintf(line, sizeof line, fmt, ap);
  size_t n = strlen(line);
  while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
  sv_log(SV_LOG_WARN, "libmicrohttpd", line);
}

/* Once a second, from the guard's thread: the summaries whose interval is
 * over. */
static void http_tick(void *ctx, int64_t now) {
  sv_server *srv = ctx;
  refused_flush(now, 0);
  uint64_t n = svc_loglimit_take(&srv->mhd_lines, now, 0);
  if (n > 0) sv_logf(SV_LOG_WARN, "libmicrohttpd messages suppressed", "%llu in the last interval",
                     (unsigned long long)n);
  if (now - srv->logged_ms < LOG_INTERVAL_MS) return;
  svc_guard_stats st;
  svc_guard_get_stats(srv->guard, &st);
  uint64_t any = st.reserve_admitted - srv->logged.reserve_admitted;
  for (int i = 0; i < SVC_GC_COUNT; i++) any += st.closed[i] - srv->logged.closed[i];
  if (any == 0) return;
  sv_buf b;
  if (sv_log_begin(&b, SV_LOG_INFO, "connections closed by the guard (summary)")) {
    for (int i = 0; i < SVC_GC_COUNT; i++)
      if (st.closed[i] != srv->logged.closed[i])
        sv_log_int(&b, svc_guard_reason_name(i), (int64_t)(st.closed[i] - srv->logged.closed[i]));
    sv_log_int(&b, "reserve_admitted", (int64_t)(st.reserve_admitted - srv->logged.reserve_admitted));
    sv_log_int(&b, "open", st.open);
    sv_log_int(&b, "open_max", st.open_max);
    sv_log_end(&b);
  }
  srv->logged = st;
  srv->logged_ms = now;
}

/* Connection and rate-limit metrics, appended to /metrics. */
static void metrics_connections(sv_buf *b) {
  sv_server *srv = g_srv;
  if (srv == NULL) return;
  svc_guard_stats st;
  svc_guard_get_stats(srv->guard, &st);
  sv_buf_puts(b, "# HELP jwtkit_connections_open Open HTTP connections (reserve included).\n"
                 "# TYPE jwtkit_connections_open gauge\n");
  sv_buf_printf(b, "jwtkit_connections_open %u\n", st.open);
  sv_buf_puts(b, "# HELP jwtkit_connections_closed_total Connections closed by the connection guard, by reason.\n"
                 "# TYPE jwtkit_connections_closed_total counter\n");
  for (int i = 0; i < SVC_GC_COUNT; i++)
    sv_buf_printf(b, "jwtkit_connections_closed_total{reason=\"%s\"} %llu\n", svc_guard_reason_name(i),
                  (unsigned long long)st.closed[i]);
  sv_buf_puts(b, "# HELP jwtkit_connections_reserve_total Connections admitted into the reserve, and their "
                 "requests refused (503).\n# TYPE jwtkit_connections_reserve_total counter\n");
  sv_buf_printf(b, "jwtkit_connections_reserve_total{outcome=\"admitted\"} %llu\n",
                (unsigned long long)st.reserve_admitted);
  sv_buf_printf(b, "jwtkit_connections_reserve_total{outcome=\"refused\"} %llu\n",
                (unsigned long long)st.reserve_refused);
  sv_buf_puts(b, "# HELP jwtkit_token_throttled_total Token requests refused with 429, by the bucket that was "
                 "empty.\n# TYPE jwtkit_token_throttled_total counter\n");
  sv_buf_printf(b, "jwtkit_token_throttled_total{by=\"address\"} %llu\n",
                (unsigned long long)sv_limiter_throttled(srv->limiter, 0));
  sv_buf_printf(b, "jwtkit_token_throttled_total{by=\"client\"} %llu\n",
                (unsigned long long)sv_limiter_throttled(srv->limiter, 1));
}

int sv_http_start(sv_server **out, const sv_settings *s, char *err, size_t cap) {
  *out = NULL;
  struct sockaddr_storage ss;
  unsigned sl = 0;
  if (sv_parse_listen(s->listen, &ss, &sl, err, cap) != 0) return -1;
  sv_server *srv = calloc(1, sizeof *srv);
  if (srv == NULL) {
    sv_fmt(err, cap, "out of memory");
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
    if (srv->limiter == NULL) sv_fmt(err, cap, "out of memory");
    sv_limiter_free(srv->limiter);
    free(srv);
    return -1;
  }
  unsigned conn_limit = svc_guard_mhd_limit(&go);
  /* a descriptor per connection, plus the listening socket, epoll, files
   * and the keyring's: raise the soft limit when it is lower */
  unsigned long nofile = svc_raise_nofile(conn_limit + 64);
  if (nofile < conn_limit + 64)
    sv_logf(SV_LOG_WARN, "open file limit below the connection limit",
            "RLIMIT_NOFILE is %lu for max_connections %lld + reserve %u; raise it (ulimit -n, LimitNOFILE=) or "
            "lower max_connections",
            nofile, s->max_connections, CONN_RESERVE);
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  unsigned threads = s->threads > 0 ? (unsigned)s->threads : (unsigned)(cores > 0 ? (cores > 256 ? 256 : cores) : 1);
  int epoll = MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES;
  for (int attempt = 0; attempt < 2 && srv->d == NULL; attempt++) {
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_USE_ITC;
    flags |= epoll ? MHD_USE_EPOLL : MHD_USE_POLL;
    if (ss.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
    struct MHD_OptionItem ops[] = {
        {MHD_OPTION_SOCK_ADDR, 0, &ss},
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
      sv_log(SV_LOG_WARN, "epoll unavailable, falling back to poll", NULL);
      epoll = 0;
    } else {
      break;
    }
  }
  if (srv->d == NULL) {
    sv_fmt(err, cap, "cannot listen on %s (address in use or not permitted?)", s->listen);
    svc_guard_free(srv->guard);
    sv_limiter_free(srv->limiter);
    free(srv);
    return -1;
  }
  g_srv = srv;
  sv_buf b;
  if (sv_log_begin(&b, SV_LOG_INFO, "listening")) {
    sv_log_str(&b, "listen", s->listen);
    sv_log_str(&b, "issuer", s->issuer);
    sv_log_int(&b, "threads", threads);
    sv_log_str(&b, "poll", epoll ? "epoll" : "poll");
    sv_log_int(&b, "max_connections", s->max_connections);
    sv_log_int(&b, "connection_reserve", CONN_RESERVE);
    sv_log_int(&b, "max_connections_per_ip", s->max_connections_ip);
    sv_log_int(&b, "header_timeout_s", s->header_timeout);
    sv_log_int(&b, "idle_timeout_s", CONN_TIMEOUT);
    sv_log_end(&b);
  }
  *out = srv;
  return 0;
}

void sv_http_stop(sv_server *srv, int grace_ms) {
  if (srv == NULL) return;
  srv->listen_fd = MHD_quiesce_daemon(srv->d); /* no new connections */
  int64_t deadline = sv_mono_us() + (int64_t)grace_ms * 1000;
  while (atomic_load(&srv->inflight) > 0 && sv_mono_us() < deadline) {
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  int left = atomic_load(&srv->inflight);
  if (left > 0) sv_logf(SV_LOG_WARN, "shutdown grace period over", "%d requests still in flight", left);
  MHD_stop_daemon(srv->d);
  if (srv->listen_fd != MHD_INVALID_SOCKET) close(srv->listen_fd);
  g_srv = NULL;
  svc_guard_free(srv->guard);
  refused_flush(svc_mono_ms(), 1);
  uint64_t n = svc_loglimit_take(&srv->mhd_lines, svc_mono_ms(), 1);
  if (n > 0) sv_logf(SV_LOG_WARN, "libmicrohttpd messages suppressed", "%llu in the last interval",
                     (unsigned long long)n);
  sv_limiter_free(srv->limiter);
  free(srv);
}
