/* private_key_jwt clients whose keys are a jwks_uri (RFC 7591 §2).
 *
 * Each such client of a serving configuration snapshot has a JWK Set
 * source of the gateway core (services/gatecore: when to fetch, what an
 * answer means, Cache-Control clamped, refresh ahead, one refetch per
 * cooldown on an unknown kid, stale-if-error up to a bound) and a fetch
 * thread of its own (the core's gw_worker, services/gatecore/thread.c)
 * that runs the source's timers and fetches with the
 * project's libcurl client (services/fetch: size cap, timeout, no
 * redirects).  A request thread only reads the published set and may ask
 * for a refetch, which signals that thread: it never fetches and never
 * waits.  The assertion verifier of the published set is built once per
 * generation, under a lock of the client's own (no I/O under it), and
 * handed out with a reference so a newer set never frees it under a
 * verification. */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "core/alloc.h"
#include "fetch.h"
#include "fetch_gw.h"
#include "gatecore.h"
#include "serve.h"

/* ------------------------------------------------------------ the URL */

int sv_jwks_uri_ok(const char *url, char *err, size_t cap) {
  size_t n = strlen(url);
  if (n > SV_MAX_JWKS_URI) {
    snprintf(err, cap, "jwks_uri: %zu bytes; at most %u", n, SV_MAX_JWKS_URI);
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)url[i];
    if (ch <= 0x20 || ch >= 0x7f || ch == '#') {
      snprintf(err, cap, "jwks_uri: '%.200s' holds a space, a control, a non-ASCII byte or a fragment", url);
      return -1;
    }
  }
  int https = strncmp(url, "https://", 8) == 0;
  int http = strncmp(url, "http://", 7) == 0;
  if (!https && !http) {
    snprintf(err, cap, "jwks_uri: '%.200s' is not an https:// URL (http:// only to a loopback address, with "
                       "allow_http_jwks = true)", url);
    return -1;
  }
  const char *host = url + (https ? 8 : 7);
  size_t hl = strcspn(host, "/?");
  if (hl == 0 || memchr(host, '@', hl) != NULL) {
    snprintf(err, cap, "jwks_uri: '%.200s' has no host, or user information before it", url);
    return -1;
  }
  if (http) {
    /* the host without the port: localhost, [::1] or an IPv4 address in
     * 127.0.0.0/8 (the fetch checks the address it connects to as well) */
    size_t nl = hl;
    const char *rb = host[0] == '[' ? memchr(host, ']', hl) : NULL;
    if (rb != NULL) nl = (size_t)(rb - host) + 1; /* [v6 address] */
    else if (host[0] != '[') nl = strcspn(host, ":/?");
    char name[64] = "";
    struct in_addr a4;
    if (nl < sizeof name) {
      memcpy(name, host, nl);
      name[nl] = '\0';
    }
    int port_ok = nl == hl || host[nl] == ':';
    int loop = port_ok && (strcmp(name, "localhost") == 0 || strcmp(name, "[::1]") == 0 ||
                           (inet_pton(AF_INET, name, &a4) == 1 && ((const unsigned char *)&a4)[0] == 127));
    if (!loop) {
      snprintf(err, cap, "jwks_uri: '%.200s' is http:// to a host that is not a loopback address; use https://",
               url);
      return -1;
    }
  }
  return 0;
}

static atomic_int g_live;
void sv_remote_set_live(int live) { atomic_store(&g_live, live); }
int sv_remote_live(void) { return atomic_load(&g_live); }

/* ------------------------------------------------------- the transport */

/* What a client's source thread keeps between fetches (gw_worker_ops.user). */
typedef struct fetcher {
  gw_source *src;                   /* set at the first fetch, for count_fetches */
  jk_fetcher *http;                 /* its libcurl handle, made at the first fetch */
  uint64_t counted[GW_FETCH_COUNT]; /* the source's fetch counts already added to g_fetches */
} fetcher;

/* Every source's fetches by result, for /metrics (process-wide: a reload's
 * new sources add to them). */
static atomic_uint_fast64_t g_fetches[GW_FETCH_COUNT];
_Static_assert(GW_FETCH_COUNT == SV_REMOTE_RESULTS, "serve.h names every fetch result of the gateway core");

void sv_remote_fetch_counts(uint64_t out[SV_REMOTE_RESULTS], const char *names[SV_REMOTE_RESULTS]) {
  for (int r = 0; r < GW_FETCH_COUNT; r++) {
    out[r] = atomic_load_explicit(&g_fetches[r], memory_order_relaxed);
    names[r] = gw_fetch_result_name((gw_fetch_result)r);
  }
}

/* What the source counted since the last call, added to g_fetches. */
static void count_fetches(fetcher *f) {
  gw_source_status st;
  gw_source_status_get(f->src, jk_mono_ms(), &st);
  for (int r = 0; r < GW_FETCH_COUNT; r++) {
    if (st.fetches[r] > f->counted[r]) atomic_fetch_add(&g_fetches[r], st.fetches[r] - f->counted[r]);
    f->counted[r] = st.fetches[r];
  }
}

static void fetch_once(void *user, gw_source *src, const gw_fetch_req *req, atomic_int *abort) {
  fetcher *f = user;
  f->src = src;
  if (f->http == NULL) f->http = jk_fetcher_new();
  if (f->http == NULL) {
    gw_fetch_resp gr = {.result = GW_FETCH_NETWORK, .detail = "cannot initialise libcurl"};
    gw_source_fetch_done(f->src, jk_mono_ms(), &gr);
    count_fetches(f);
    return;
  }
  jk_fetch_opts o = {.http = req->allow_http ? JK_FETCH_HTTP_LOOPBACK : JK_FETCH_HTTPS_ONLY,
                     .timeout_ms = req->timeout_ms,
                     .max_bytes = req->max_bytes,
                     .ca_file = req->ca_file,
                     .agent = "jwtkit-serve",
                     .accept = "application/jwk-set+json, application/json",
                     .if_none_match = req->if_none_match,
                     .abort = abort};
  jk_fetch_resp r;
  jk_fetcher_get(f->http, req->url, &o, &r);
  gw_fetch_resp gr = {jk_fetch_gw_result(r.result), r.status, r.body, r.len, r.cache_control, r.etag, r.age, r.detail};
  gw_source_fetch_done(f->src, jk_mono_ms(), &gr);
  jk_fetch_resp_free(&r);
  count_fetches(f);
}

static void fetcher_fini(void *user) { jk_fetcher_free(((fetcher *)user)->http); }

static const gw_worker_ops k_ops = {.user_size = sizeof(fetcher), .fetch = fetch_once, .fini = fetcher_fini};

static void *f_open(void *ctx, gw_source *s) {
  (void)ctx;
  return gw_worker_open(&k_ops, s);
}

/* ----------------------------------------------------------- a client */

struct sv_remote_verifier {
  atomic_int refs;
  jwtkit_verifier *v;
  uint64_t gen;
};

struct sv_remote {
  gw_source *src;
  const sv_confsnap *cs; /* the snapshot holding the client (outlives this) */
  const sv_client *c;
  pthread_mutex_t mu;
  sv_remote_verifier *cur; /* under mu: of generation cur->gen */
  uint64_t bad_gen;        /* under mu: a generation whose set builds no verifier (0: none) */
};

static void holder_release(sv_remote_verifier *h) {
  if (h != NULL && atomic_fetch_sub(&h->refs, 1) == 1) {
    jwtkit_verifier_free(h->v);
    free(h);
  }
}

void sv_remote_verifier_release(sv_remote_verifier *h) { holder_release(h); }

sv_remote *sv_remote_new(const sv_confsnap *cs, const sv_client *c) {
  sv_remote *r = calloc(1, sizeof *r);
  if (r == NULL) return NULL;
  r->cs = cs;
  r->c = c;
  if (pthread_mutex_init(&r->mu, NULL) != 0) {
    free(r);
    return NULL;
  }
  /* the gateway's defaults but the two settings (docs/serve.md) */
  gw_jwks_def d = {.url = c->jwks_uri,
                   .allow_http = c->allow_http_jwks,
                   .rsa_default = JWTKIT_ALG_UNSPEC,
                   .o = {.timeout_ms = 5000,
                         .max_bytes = 65536,
                         .min_ttl = cs->settings.client_jwks_min_ttl,
                         .max_ttl = 3600,
                         .default_ttl = 300,
                         .refresh_ahead = 30,
                         .cooldown = 30,
                         .stale_max = cs->settings.client_jwks_stale_max,
                         .ca_file = NULL},
                   .discovery = 0};
  gw_transport t = {.open = f_open, .start = gw_worker_start, .cancel = gw_worker_cancel, .close = gw_worker_close};
  r->src = gw_source_new(&d, &t);
  if (r->src == NULL) {
    pthread_mutex_destroy(&r->mu);
    free(r);
    return NULL;
  }
  jk_logline L;
  if (jk_log_begin(&L, JK_LOG_INFO, "client_jwks_uri")) {
    jk_log_str(&L, "client_id", c->name);
    jk_log_str(&L, "jwks_uri", c->jwks_uri);
    jk_log_end(&L);
  }
  return r;
}

void sv_remote_free(sv_remote *r) {
  if (r == NULL) return;
  gw_source_stop(r->src);
  gw_source_release(r->src);
  holder_release(r->cur);
  pthread_mutex_destroy(&r->mu);
  free(r);
}

void sv_remote_refetch(sv_remote *r) { (void)gw_source_refetch(r->src, jk_mono_ms(), NULL); }

sv_remote_verifier *sv_remote_verifier_get(sv_remote *r, const jwtkit_verifier **v, const char **why) {
  uint64_t gen = gw_source_gen(r->src);
  sv_remote_verifier *h = NULL;
  pthread_mutex_lock(&r->mu);
  if (r->cur != NULL && r->cur->gen == gen) {
    h = r->cur;
    atomic_fetch_add(&h->refs, 1);
    pthread_mutex_unlock(&r->mu);
    *v = h->v;
    return h;
  }
  gw_keyset *ks = gw_source_keyset(r->src);
  if (ks->jwks == NULL) {
    *why = "no JWK Set fetched from its jwks_uri yet (or dropped past the stale bound)";
  } else if (ks->gen == r->bad_gen) {
    *why = "the JWK Set fetched from its jwks_uri cannot verify assertions";
  } else {
    jwtkit_verifier *nv = NULL;
    char err[512];
    if (sv_assertion_verifier(r->cs, r->c, ks->jwks, &nv, err, sizeof err) != 0) {
      r->bad_gen = ks->gen;
      jk_log(JK_LOG_WARN, "client_jwks_unusable", "%s", err);
      *why = "the JWK Set fetched from its jwks_uri cannot verify assertions";
    } else if ((h = calloc(1, sizeof *h)) == NULL) {
      jwtkit_verifier_free(nv);
      *why = "out of memory";
    } else {
      h->v = nv;
      h->gen = ks->gen;
      atomic_init(&h->refs, 2); /* r->cur and the caller */
      holder_release(r->cur);
      r->cur = h;
      *v = nv;
    }
  }
  pthread_mutex_unlock(&r->mu);
  gw_keyset_release(ks);
  return h;
}
