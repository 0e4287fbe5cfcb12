/*
 * services/fetch/fetch.h - the project's one HTTP(S) client (libcurl), for
 * `jwtkit verify --jwks URL`, the JWK Sets of `jwtkit gate` and whatever
 * else fetches a document (not installed; the static library jwtkit_fetch).
 *
 * Every fetch is bounded and plain: https:// only unless the caller allows
 * http:// (anywhere, or to a loopback address only, checked on the address
 * actually connected to), no redirects (a 3xx is an answer like any other),
 * a time limit on the whole exchange, a cap on the body (Content-Length up
 * front and the bytes as they come), certificates and host names verified
 * (an optional CA file), and the User-Agent "PRODUCT/JWTKIT_VERSION".
 */
#ifndef JK_FETCH_H
#define JK_FETCH_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef enum jk_fetch_http {
  JK_FETCH_HTTPS_ONLY = 0, /* http:// refused */
  JK_FETCH_HTTP_LOOPBACK,  /* http:// only to a loopback address (127.0.0.0/8, ::1) */
  JK_FETCH_HTTP_ANY        /* http:// allowed */
} jk_fetch_http;

typedef struct jk_fetch_opts {
  jk_fetch_http http;
  int64_t timeout_ms;        /* the whole exchange, connection included; 0: 5000 */
  size_t max_bytes;          /* largest body; 0: 1 MiB */
  const char *ca_file;       /* CA bundle for https:// (NULL: the system's) */
  const char *agent;         /* User-Agent product ("jwtkit-gate"); NULL: "jwtkit" */
  const char *accept;        /* Accept value, NULL: none */
  const char *if_none_match; /* an ETag to revalidate, NULL or "": none */
  atomic_int *abort;         /* non-NULL: the transfer stops soon after *abort turns non-zero */
} jk_fetch_opts;

typedef enum jk_fetch_result {
  JK_FETCH_OK = 0,    /* a whole HTTP answer came (any status: the caller judges it) */
  JK_FETCH_REFUSED,   /* refused before any byte was sent: scheme, address, or a malformed URL */
  JK_FETCH_TIMEOUT,   /* timeout_ms passed */
  JK_FETCH_TOO_LARGE, /* the body is over max_bytes */
  JK_FETCH_TRUNCATED, /* the connection closed before the end of the body */
  JK_FETCH_CONNECT,   /* no connection (refused, unreachable, name not resolved) */
  JK_FETCH_TLS,       /* TLS handshake or certificate */
  JK_FETCH_NETWORK,   /* anything else on the way */
  JK_FETCH_ABORTED,   /* *abort was set */
  JK_FETCH_NOMEM,
  JK_FETCH_COUNT
} jk_fetch_result;

#define JK_FETCH_MAX_ETAG 256u

typedef struct jk_fetch_resp {
  jk_fetch_result result;
  long status;                      /* HTTP status (0: none) */
  char *body;                       /* NUL-terminated (jk_fetch_resp_free); NULL unless JK_FETCH_OK */
  size_t len;
  char cache_control[512];          /* "" when absent (or too long) */
  char etag[JK_FETCH_MAX_ETAG];     /* "" when absent, too long or holding control characters */
  int64_t age;                      /* the Age header in seconds, 0 when absent */
  char detail[256];                 /* what went wrong, for logs and messages ("" on success) */
} jk_fetch_resp;

/* libcurl's global set-up and tear-down: once, in main, before any thread
 * fetches.  0 or -1. */
int jk_fetch_global_init(void);
void jk_fetch_global_cleanup(void);

/* A fetcher keeps one libcurl handle (and its connection) for the fetches
 * made with it; use it from one thread at a time. */
typedef struct jk_fetcher jk_fetcher;
jk_fetcher *jk_fetcher_new(void);
void jk_fetcher_free(jk_fetcher *f);
/* GET url.  *out is always filled (free it with jk_fetch_resp_free);
 * returns out->result. */
jk_fetch_result jk_fetcher_get(jk_fetcher *f, const char *url, const jk_fetch_opts *o, jk_fetch_resp *out);

/* One GET with a fetcher of its own. */
jk_fetch_result jk_fetch_get(const char *url, const jk_fetch_opts *o, jk_fetch_resp *out);

void jk_fetch_resp_free(jk_fetch_resp *r);
/* "ok", "refused", "timeout", "too_large", "truncated", "connect_error",
 * "tls_error", "network_error", "aborted", "out_of_memory". */
const char *jk_fetch_result_name(jk_fetch_result r);

#endif
