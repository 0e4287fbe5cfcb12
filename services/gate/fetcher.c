/*
 * The gateway core's JWK Set transport for jwtkit gate: the core's thread
 * per source (gw_worker, services/gatecore/thread.c) fetching with the
 * shared libcurl client (services/fetch; its handle, and so its
 * connection, kept between fetches), issuer discovery included.
 * Verifying threads never wait for it.
 */
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "fetch.h"
#include "fetch_gw.h"
#include "gate_internal.h"

/* What a source's thread keeps between fetches (gw_worker_ops.user). */
typedef struct fetcher {
  jk_fetcher *http;              /* its libcurl handle, made at the first fetch */
  char last_uri[GW_MAX_URL + 1]; /* a discovery source's jwks_uri of the last fetch */
} fetcher;

void gate_fetch_opts(const gw_fetch_req *req, jk_fetch_opts *o) {
  *o = (jk_fetch_opts){.http = req->allow_http ? JK_FETCH_HTTP_ANY : JK_FETCH_HTTPS_ONLY,
                       .timeout_ms = req->timeout_ms,
                       .max_bytes = req->max_bytes,
                       .ca_file = req->ca_file,
                       .agent = "jwtkit-gate",
                       .accept = "application/jwk-set+json, application/json",
                       .if_none_match = req->if_none_match};
}

static jk_fetch_result get(jk_fetcher *http, const char *url, const jk_fetch_opts *o, jk_fetch_resp *r) {
  return http != NULL ? jk_fetcher_get(http, url, o, r) : jk_fetch_get(url, o, r);
}

/* The metadata of a discovery source: its jwks_uri in g->uri, or a failed
 * answer in g->gr (detail in g->detail). */
static int discover(jk_fetcher *http, const gw_fetch_req *req, atomic_int *abort, gate_fetched *g) {
  jk_fetch_opts o;
  gate_fetch_opts(req, &o);
  o.http = req->allow_http ? JK_FETCH_HTTP_LOOPBACK : JK_FETCH_HTTPS_ONLY;
  o.accept = "application/json";
  o.if_none_match = NULL;
  o.abort = abort;
  char url[GW_MAX_URL + 128], first[GW_MAX_URL + 128] = "";
  for (int which = 0; which < 2; which++) {
    if (gw_discovery_url(req->url, which, url, sizeof url) != 0) {
      g->gr.result = GW_FETCH_INVALID;
      snprintf(g->detail, sizeof g->detail, "issuer_discovery: the issuer URL is too long");
      return -1;
    }
    jk_fetch_resp m;
    jk_fetch_result fr = get(http, url, &o, &m);
    if (fr == JK_FETCH_OK && m.status == 404 && which == 0) { /* no OpenID document: RFC 8414's */
      jk_fetch_resp_free(&m);
      snprintf(first, sizeof first, "%s", url);
      continue;
    }
    int ok = -1;
    if (fr != JK_FETCH_OK) {
      g->gr.result = jk_fetch_gw_result(fr);
      snprintf(g->detail, sizeof g->detail, "issuer_discovery: %.300s: %.250s", url, m.detail);
    } else if (m.status == 404) {
      g->gr.result = GW_FETCH_HTTP_ERROR;
      snprintf(g->detail, sizeof g->detail, "issuer_discovery: no metadata document (HTTP 404 at %.280s and at %.280s)",
               first, url);
    } else if (m.status != 200) {
      g->gr.result = GW_FETCH_HTTP_ERROR;
      snprintf(g->detail, sizeof g->detail, "issuer_discovery: %.300s: HTTP status %ld", url, m.status);
    } else {
      char why[512];
      ok = gw_discovery_read(m.body, m.len, req->url, req->allow_http, g->uri, sizeof g->uri, why, sizeof why);
      if (ok != 0) {
        g->gr.result = GW_FETCH_INVALID;
        snprintf(g->detail, sizeof g->detail, "issuer_discovery: %.200s: %.400s", url, why);
      }
    }
    jk_fetch_resp_free(&m);
    return ok;
  }
  return -1; /* not reached: the second answer returns */
}

void gate_fetch(jk_fetcher *http, const gw_fetch_req *req, atomic_int *abort, char *last_uri, gate_fetched *g) {
  memset(g, 0, sizeof *g);
  const char *url = req->url;
  gw_fetch_req r2 = *req;
  if (req->discovery) {
    if (discover(http, req, abort, g) != 0) {
      g->gr.detail = g->detail;
      return;
    }
    url = r2.url = g->uri;
    if (last_uri != NULL) {
      if (strcmp(last_uri, g->uri) != 0) { /* a new jwks_uri: no ETag of the old one */
        jk_logline L;
        if (jk_log_begin(&L, JK_LOG_INFO, "jwks_discovered")) {
          jk_log_str(&L, "issuer", req->url);
          jk_log_str(&L, "jwks_uri", g->uri);
          jk_log_bool(&L, "changed", last_uri[0] != '\0');
          jk_log_end(&L);
        }
        r2.if_none_match[0] = '\0';
        snprintf(last_uri, GW_MAX_URL + 1, "%s", g->uri);
      }
    }
  }
  jk_fetch_opts o;
  gate_fetch_opts(&r2, &o);
  if (req->discovery && req->allow_http) o.http = JK_FETCH_HTTP_LOOPBACK;
  o.abort = abort;
  get(http, url, &o, &g->raw);
  g->have_raw = 1;
  jk_fetch_resp *r = &g->raw;
  g->gr = (gw_fetch_resp){jk_fetch_gw_result(r->result), r->status, r->body, r->len, r->cache_control, r->etag, r->age,
                          r->detail};
}

void gate_fetched_free(gate_fetched *g) {
  if (g->have_raw) jk_fetch_resp_free(&g->raw);
  g->have_raw = 0;
}

static void fetch_once(void *user, gw_source *src, const gw_fetch_req *req, atomic_int *abort) {
  fetcher *f = user;
  if (f->http == NULL) f->http = jk_fetcher_new();
  if (f->http == NULL) {
    gw_fetch_resp gr = {.result = GW_FETCH_NETWORK, .detail = "cannot initialise libcurl"};
    gw_source_fetch_done(src, jk_mono_ms(), &gr);
    return;
  }
  gate_fetched g;
  gate_fetch(f->http, req, abort, f->last_uri, &g);
  gw_source_fetch_done(src, jk_mono_ms(), &g.gr);
  gate_fetched_free(&g);
}

static void fetcher_fini(void *user) { jk_fetcher_free(((fetcher *)user)->http); }

static const gw_worker_ops k_ops = {.user_size = sizeof(fetcher), .fetch = fetch_once, .fini = fetcher_fini};

static void *f_open(void *ctx, gw_source *s) {
  (void)ctx;
  return gw_worker_open(&k_ops, s);
}

void gate_fetcher_transport(gw_transport *t) {
  t->open = f_open;
  t->start = gw_worker_start;
  t->cancel = gw_worker_cancel;
  t->close = gw_worker_close;
}
