/* The one HTTP(S) client (fetch.h). */
#include "fetch.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/parse.h"
#include "core/alloc.h"
#include "jwtkit/version.h"

#define DEFAULT_TIMEOUT_MS 5000
#define DEFAULT_MAX_BYTES (1u << 20)

struct jk_fetcher {
  CURL *curl;
};

static const char *const k_names[JK_FETCH_COUNT] = {
    [JK_FETCH_OK] = "ok",
    [JK_FETCH_REFUSED] = "refused",
    [JK_FETCH_TIMEOUT] = "timeout",
    [JK_FETCH_TOO_LARGE] = "too_large",
    [JK_FETCH_TRUNCATED] = "truncated",
    [JK_FETCH_CONNECT] = "connect_error",
    [JK_FETCH_TLS] = "tls_error",
    [JK_FETCH_NETWORK] = "network_error",
    [JK_FETCH_ABORTED] = "aborted",
    [JK_FETCH_NOMEM] = "out_of_memory",
};

const char *jk_fetch_result_name(jk_fetch_result r) {
  return (unsigned)r < JK_FETCH_COUNT ? k_names[r] : "unknown";
}

int jk_fetch_global_init(void) { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1; }
void jk_fetch_global_cleanup(void) { curl_global_cleanup(); }

jk_fetcher *jk_fetcher_new(void) {
  jk_fetcher *f = calloc(1, sizeof *f);
  if (f == NULL) return NULL;
  if ((f->curl = curl_easy_init()) == NULL) {
    free(f);
    return NULL;
  }
  return f;
}

void jk_fetcher_free(jk_fetcher *f) {
  if (f == NULL) return;
  curl_easy_cleanup(f->curl);
  free(f);
}

void jk_fetch_resp_free(jk_fetch_resp *r) {
  if (r == NULL) return;
  jk_free(r->body);
  r->body = NULL;
  r->len = 0;
}

/* ------------------------------------------------------------ callbacks */

typedef struct xfer {
  const jk_fetch_opts *o;
  jk_fetch_resp *out;
  jk_buf body;
  size_t max;
  int too_large;
  int plain_http;       /* the URL is http:// */
  int not_loopback;     /* an http:// connection to another address was refused */
  char peer[INET6_ADDRSTRLEN];
} xfer;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud) {
  xfer *x = ud;
  size_t n = size * nmemb;
  if (n > x->max - x->body.len) {
    x->too_large = 1;
    return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
  }
  jk_buf_put(&x->body, ptr, n);
  return x->body.oom ? 0 : n;
}

/* A header value without surrounding blanks and the line end; "" when it
 * does not fit. */
static void header_value(const char *v, size_t n, char *out, size_t cap) {
  while (n > 0 && (*v == ' ' || *v == '\t')) v++, n--;
  while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ' || v[n - 1] == '\t')) n--;
  if (n >= cap) n = 0;
  memcpy(out, v, n);
  out[n] = '\0';
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ud) {
  xfer *x = ud;
  jk_fetch_resp *r = x->out;
  size_t n = size * nitems;
  if (n >= 5 && strncmp(buf, "HTTP/", 5) == 0) { /* a new answer (after a 1xx): start over */
    r->cache_control[0] = r->etag[0] = '\0';
    r->age = 0;
    return n;
  }
  const char *colon = memchr(buf, ':', n);
  if (colon == NULL) return n;
  size_t kn = (size_t)(colon - buf), vn = n - kn - 1;
  const char *v = colon + 1;
  if (kn == 13 && strncasecmp(buf, "Cache-Control", 13) == 0) {
    header_value(v, vn, r->cache_control, sizeof r->cache_control);
  } else if (kn == 4 && strncasecmp(buf, "ETag", 4) == 0) {
    header_value(v, vn, r->etag, sizeof r->etag);
    for (const char *q = r->etag; *q; q++)
      if ((unsigned char)*q < 0x20 || *q == 0x7F) r->etag[0] = '\0';
  } else if (kn == 3 && strncasecmp(buf, "Age", 3) == 0) {
    char a[24];
    uint64_t u;
    header_value(v, vn, a, sizeof a);
    if (jk_parse_u64(a, 0, 100000000, &u) == 0) r->age = (int64_t)u;
  }
  return n;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
  (void)dt, (void)dn, (void)ut, (void)un;
  const xfer *x = ud;
  return atomic_load(x->o->abort) ? 1 : 0;
}

static int is_loopback(const struct sockaddr *sa) {
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
    return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
  }
  if (sa->sa_family == AF_INET6) {
    const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    if (IN6_IS_ADDR_LOOPBACK(a)) return 1;
    return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
  }
  return 0;
}

/* http:// to loopback only: judged on the address connected to, so a
 * name that resolves elsewhere is refused too. */
static curl_socket_t on_open(void *ud, curlsocktype purpose, struct curl_sockaddr *addr) {
  xfer *x = ud;
  (void)purpose;
  if (x->plain_http && x->o->http == JK_FETCH_HTTP_LOOPBACK && !is_loopback(&addr->addr)) {
    x->not_loopback = 1;
    const void *ip = addr->family == AF_INET6 ? (const void *)&((struct sockaddr_in6 *)&addr->addr)->sin6_addr
                                              : (const void *)&((struct sockaddr_in *)&addr->addr)->sin_addr;
    if (inet_ntop(addr->family, ip, x->peer, sizeof x->peer) == NULL) snprintf(x->peer, sizeof x->peer, "?");
    return CURL_SOCKET_BAD;
  }
  return socket(addr->family, addr->socktype, addr->protocol);
}

/* ---------------------------------------------------------------- fetch */

static jk_fetch_result map_error(CURLcode rc, const xfer *x) {
  switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
      return JK_FETCH_TIMEOUT;
    case CURLE_FILESIZE_EXCEEDED:
      return JK_FETCH_TOO_LARGE;
    case CURLE_WRITE_ERROR:
      return x->too_large ? JK_FETCH_TOO_LARGE : x->body.oom ? JK_FETCH_NOMEM : JK_FETCH_NETWORK;
    case CURLE_PARTIAL_FILE:
      return JK_FETCH_TRUNCATED;
    case CURLE_ABORTED_BY_CALLBACK:
      return JK_FETCH_ABORTED;
    case CURLE_OUT_OF_MEMORY:
      return JK_FETCH_NOMEM;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
      return JK_FETCH_REFUSED;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return x->not_loopback ? JK_FETCH_REFUSED : JK_FETCH_CONNECT;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
      return JK_FETCH_TLS;
    default:
      return JK_FETCH_NETWORK;
  }
}

static int setup(CURL *c, const char *url, const jk_fetch_opts *o, xfer *x, struct curl_slist *hl, char *errbuf) {
  char agent[96];
  snprintf(agent, sizeof agent, "%s/%s", o->agent ? o->agent : "jwtkit", JWTKIT_VERSION);
  int64_t tmo = o->timeout_ms > 0 ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
  int ok = 1;
  ok &= curl_easy_setopt(c, CURLOPT_URL, url) == CURLE_OK;
  ok &= curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, o->http == JK_FETCH_HTTPS_ONLY ? "https" : "https,http") ==
        CURLE_OK;
  ok &= curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK;
  ok &= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) == CURLE_OK;
  ok &= curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)tmo) == CURLE_OK;
  ok &= curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)tmo) == CURLE_OK;
  ok &= curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x->max) == CURLE_OK;
  ok &= curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK;
  ok &= curl_easy_setopt(c, CURLOPT_WRITEDATA, x) == CURLE_OK;
  ok &= curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header) == CURLE_OK;
  ok &= curl_easy_setopt(c, CURLOPT_HEADERDATA, x) == CURLE_OK;
  ok &= curl_easy_setopt(c, CURLOPT_USERAGENT, agent) == CURLE_OK;
  ok &= curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK;
  ok &= curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK;
  ok &= curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf) == CURLE_OK;
  if (hl != NULL) ok &= curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl) == CURLE_OK;
  if (o->ca_file != NULL) ok &= curl_easy_setopt(c, CURLOPT_CAINFO, o->ca_file) == CURLE_OK;
  if (o->abort != NULL) {
    ok &= curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress) == CURLE_OK;
    ok &= curl_easy_setopt(c, CURLOPT_XFERINFODATA, x) == CURLE_OK;
    ok &= curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L) == CURLE_OK;
  }
  if (o->http == JK_FETCH_HTTP_LOOPBACK) {
    /* the peer must be the address connected to: no proxy in between */
    ok &= curl_easy_setopt(c, CURLOPT_PROXY, "") == CURLE_OK;
    ok &= curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, on_open) == CURLE_OK;
    ok &= curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, x) == CURLE_OK;
  }
  return ok ? 0 : -1;
}

jk_fetch_result jk_fetcher_get(jk_fetcher *f, const char *url, const jk_fetch_opts *o, jk_fetch_resp *out) {
  memset(out, 0, sizeof *out);
  xfer x = {.o = o, .out = out, .max = o->max_bytes ? o->max_bytes : DEFAULT_MAX_BYTES};
  jk_buf_init(&x.body);
  x.plain_http = strncasecmp(url, "http://", 7) == 0;
  if (strncasecmp(url, "https://", 8) != 0 && !(x.plain_http && o->http != JK_FETCH_HTTPS_ONLY)) {
    out->result = JK_FETCH_REFUSED;
    snprintf(out->detail, sizeof out->detail, "%s",
             x.plain_http ? "plain http:// is refused: https:// only" : "only https:// URLs are fetched");
    return out->result;
  }
  struct curl_slist *hl = NULL, *t;
  char line[JK_FETCH_MAX_ETAG + 64];
  int hdr_ok = 1;
  if (o->accept != NULL) {
    snprintf(line, sizeof line, "Accept: %s", o->accept);
    hdr_ok &= (t = curl_slist_append(hl, line)) != NULL;
    if (t != NULL) hl = t;
  }
  if (o->if_none_match != NULL && o->if_none_match[0] != '\0') {
    snprintf(line, sizeof line, "If-None-Match: %s", o->if_none_match);
    hdr_ok &= (t = curl_slist_append(hl, line)) != NULL;
    if (t != NULL) hl = t;
  }
  char errbuf[CURL_ERROR_SIZE] = "";
  curl_easy_reset(f->curl);
  if (!hdr_ok || setup(f->curl, url, o, &x, hl, errbuf) != 0) {
    curl_slist_free_all(hl);
    out->result = JK_FETCH_NOMEM;
    snprintf(out->detail, sizeof out->detail, "cannot set up libcurl (out of memory?)");
    return out->result;
  }
  CURLcode rc = curl_easy_perform(f->curl);
  curl_easy_getinfo(f->curl, CURLINFO_RESPONSE_CODE, &out->status);
  curl_easy_reset(f->curl); /* nothing left pointing at this stack frame */
  curl_slist_free_all(hl);
  if (rc == CURLE_OK && x.body.oom) rc = CURLE_WRITE_ERROR;
  if (rc != CURLE_OK) {
    out->result = map_error(rc, &x);
    if (x.not_loopback)
      snprintf(out->detail, sizeof out->detail, "plain http:// is allowed to a loopback address only, not %s",
               x.peer);
    else if (out->result == JK_FETCH_TOO_LARGE)
      snprintf(out->detail, sizeof out->detail, "the body is over %zu bytes", x.max);
    else
      snprintf(out->detail, sizeof out->detail, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
    jk_buf_free(&x.body);
    return out->result;
  }
  if (x.body.p == NULL) jk_buf_put(&x.body, "", 0);
  out->body = jk_buf_take(&x.body, &out->len);
  if (out->body == NULL) {
    out->result = JK_FETCH_NOMEM;
    snprintf(out->detail, sizeof out->detail, "out of memory");
    return out->result;
  }
  out->result = JK_FETCH_OK;
  return out->result;
}

jk_fetch_result jk_fetch_get(const char *url, const jk_fetch_opts *o, jk_fetch_resp *out) {
  jk_fetcher *f = jk_fetcher_new();
  if (f == NULL) {
    memset(out, 0, sizeof *out);
    out->result = JK_FETCH_NOMEM;
    snprintf(out->detail, sizeof out->detail, "cannot initialise libcurl");
    return out->result;
  }
  jk_fetch_result r = jk_fetcher_get(f, url, o, out);
  jk_fetcher_free(f);
  return r;
}
