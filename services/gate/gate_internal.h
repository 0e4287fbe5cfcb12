/*
 * services/gate/gate_internal.h - the parts of jwtkit gate.
 *
 *   config.c      INI-like configuration -> gate_config (no side effects)
 *   state.c       gate_config -> gate_state: routes with their keys and
 *                 verifiers, the JWKS sources, the token cache; the current
 *                 state is a refcounted snapshot swapped on SIGHUP
 *   jwks_source.c one remote JWK Set: background fetcher thread (libcurl),
 *                 cache lifetime, ETag, unknown-kid refetch with cooldown,
 *                 stale serving; publishes refcounted gate_keyset snapshots
 *   token_cache.c verified-token cache: SHA-256 keyed, bounded, lock striped
 *   request.c     token extraction, route selection, URI normalisation,
 *                 claim -> header rendering (pure functions, unit tested)
 *   decide.c      the /auth decision from header fields and a clock (no
 *                 I/O: http.c and the fuzz harness call it)
 *   http.c        libmicrohttpd daemon: /auth, /metrics, /healthz
 *   metrics.c     counters and the Prometheus text
 *   log.c         JSON-lines logs on stderr
 *   util.c        time, durations, RFC 3339, files
 *   gate.c        jwtkit_gate_main: options, signals, reload, shutdown
 *
 * Thread model: MHD worker threads (thread pool + epoll) verify; one fetcher
 * thread per JWKS source downloads; the main thread waits for signals and
 * frees retired states.  Verifying threads never wait for a fetch: they read
 * the latest published snapshot.  Only this program's public surface is
 * <jwtkit/jwtkit.h>; OpenSSL is used directly for SHA-256 and wiping only.
 */
#ifndef JWTKIT_GATE_INTERNAL_H
#define JWTKIT_GATE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "jwtkit/jwtkit.h"

#define GATE_PROG "jwtkit-gate"

/* ------------------------------------------------------------ limits */
#define GATE_MAX_CONFIG (1u << 20)       /* config file bytes */
#define GATE_MAX_LINE 4096u              /* config line */
#define GATE_MAX_KEYFILE (1u << 20)      /* PEM/JWK/JWKS key file */
#define GATE_MAX_SECRET 4096u            /* legacy HS256 secret file */
#define GATE_MAX_ROUTES 256u
#define GATE_MAX_LIST 64u                /* values of one repeatable key */
#define GATE_MAX_HEADERS 32u             /* claim -> header mappings per route */
#define GATE_MAX_HEADER_NAME 64u
#define GATE_MAX_URI 8192u               /* X-Original-URI considered */
#define GATE_MAX_WAITERS 64u             /* requests parked per JWKS refetch */
#define GATE_MAX_ETAG 256u
#define GATE_MAX_TOKEN_CAP 65536u        /* max_token upper bound */
#define GATE_MAX_CACHE_ENTRIES 10000000u

/* ------------------------------------------------------------- log.c */
typedef enum gate_level { GL_DEBUG = 0, GL_INFO = 1, GL_WARN = 2, GL_ERROR = 3 } gate_level;

void gate_log_set_level(gate_level l);
gate_level gate_log_level(void);
int gate_log_parse_level(const char *s, gate_level *out);
/* Redirect log lines (tests); fd 2 by default. */
void gate_log_set_fd(int fd);

typedef struct gate_logline {
  char buf[4096];
  size_t len;
  int truncated;
} gate_logline;

/* Start a line; returns 0 (and writes nothing later) when `lvl` is below
 * the current level.  Fields are appended in order; gl_end writes the line
 * with one write(2). */
int gl_begin(gate_logline *L, gate_level lvl, const char *event);
void gl_str(gate_logline *L, const char *key, const char *val);
void gl_strn(gate_logline *L, const char *key, const char *val, size_t n);
void gl_int(gate_logline *L, const char *key, int64_t v);
void gl_bool(gate_logline *L, const char *key, int v);
void gl_end(gate_logline *L);
/* One-line convenience: event and a "msg". */
void gate_log(gate_level lvl, const char *event, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* ------------------------------------------------------------ util.c */
int64_t gate_now(void);     /* Unix seconds (CLOCK_REALTIME) */
int64_t gate_mono_ms(void); /* CLOCK_MONOTONIC milliseconds */

/* "90", "90s", "5m", "1h", "2d" -> seconds (0 .. 10 years).  0 = ok. */
int gate_parse_duration(const char *s, int64_t *out);
/* RFC 3339 "2026-12-31T00:00:00Z" / "+02:00" offsets, optional fraction
 * (ignored) -> Unix seconds.  0 = ok. */
int gate_parse_rfc3339(const char *s, int64_t *out);
/* Unix seconds -> "YYYY-MM-DDTHH:MM:SSZ" (buf >= 21). */
void gate_fmt_rfc3339(int64_t t, char *buf, size_t cap);
/* Unsigned decimal in [lo, hi].  0 = ok. */
int gate_parse_uint(const char *s, uint64_t lo, uint64_t hi, uint64_t *out);
int gate_parse_bool(const char *s, int *out);

/* Read a whole regular file of at most `cap` bytes, NUL-terminated.
 * secret: refuse group/other-readable files and wipe on free.  On failure
 * *err gets a sentence and -1 is returned. */
int gate_read_file(const char *path, size_t cap, int secret, char **buf, size_t *len, char *err,
                   size_t errcap);
void gate_free_secret(char *p, size_t len);
void gate_wipe(void *p, size_t n);

/* SHA-256 (OpenSSL).  0 = ok; on failure the caller must not use out
 * (the token cache is then bypassed). */
int gate_sha256(const void *a, size_t alen, unsigned char out[32]);

/* strdup that aborts the caller's operation on NULL (returns NULL). */
char *gate_strndup(const char *s, size_t n);

/* ---------------------------------------------------------- config.c */
typedef struct gate_strlist {
  char **v;
  size_t n;
} gate_strlist;

typedef struct gate_header_map {
  char name[GATE_MAX_HEADER_NAME]; /* response header, e.g. X-User */
  char claim[128];                 /* claim name, e.g. sub */
  int optional;                    /* optional_header: absent or empty is fine */
} gate_header_map;

typedef struct gate_route_cfg {
  char *name;
  int line; /* of the [route] header, for messages */
  gate_strlist hosts;    /* match_host (any of); lowercase */
  gate_strlist prefixes; /* match_path_prefix (any of) */
  char *issuer;
  char *jwks_url;
  gate_strlist key_files;
  jwtkit_alg algs[JWTKIT_ALG_COUNT];
  size_t nalgs;
  gate_strlist audiences;
  char *typ;
  gate_strlist require;
  int64_t leeway;  /* -1 = library default (60) */
  int64_t max_age; /* 0 = off */
  gate_header_map headers[GATE_MAX_HEADERS];
  size_t nheaders;
  int claim_header_allow; /* claim_header_failure = allow (default deny) */
  char *token_cookie;
  char *token_header;
  int allow_http_jwks;
  char *legacy_secret_file;
  int64_t legacy_deadline;
  int has_legacy_deadline;
} gate_route_cfg;

typedef struct gate_config {
  char *path;
  char *listen;         /* NULL: default/CLI */
  int has_log_level;
  gate_level log_level;
  unsigned threads;     /* 0 = number of CPUs */
  size_t token_cache;   /* entries, 0 = off (default 10000) */
  size_t max_token;     /* bytes (default 8192) */
  size_t header_max;    /* bytes of one emitted claim header (default 1024) */
  unsigned connection_limit;
  unsigned idle_timeout; /* seconds */
  unsigned header_timeout; /* seconds: a request's line and headers from the connection's start */
  /* JWKS fetching (design defaults) */
  int64_t jwks_timeout_ms;   /* 5000 */
  size_t jwks_max_bytes;     /* 65536 */
  int64_t jwks_min_ttl;      /* 30 */
  int64_t jwks_max_ttl;      /* 3600 */
  int64_t jwks_default_ttl;  /* 300 */
  int64_t jwks_refresh_ahead; /* 30 */
  int64_t jwks_cooldown;     /* 30 */
  int64_t jwks_stale_max;    /* 86400 */
  char *jwks_ca_file;        /* NULL = system store */
  gate_route_cfg *routes;
  size_t nroutes;
} gate_config;

/* Parse `path`.  On failure returns -1 with "FILE:LINE: message" in err. */
int gate_config_load(const char *path, gate_config **out, char *err, size_t errcap);
/* Same from text (unit tests); `name` is used in messages. */
int gate_config_parse(const char *name, const char *text, size_t len, gate_config **out, char *err,
                      size_t errcap);
void gate_config_free(gate_config *c);

/* --------------------------------------------------------- metrics.c */

/* Decision reasons: the first ones are allows, then gate-level denials,
 * then one per jwtkit error code (label = lowercase errname). */
enum {
  GR_VERIFIED = 0,
  GR_CACHED,
  GR_LEGACY,
  GR_LEGACY_CACHED,
  GR_ALLOW_COUNT,
  GR_MISSING_TOKEN = GR_ALLOW_COUNT,
  GR_AMBIGUOUS_TOKEN,
  GR_TOKEN_TOO_LARGE,
  GR_BAD_AUTHORIZATION, /* Bearer with no or an unusable token */
  GR_NO_ROUTE,
  GR_BAD_URI,
  GR_JWKS_NOT_READY,
  GR_LEGACY_DEADLINE_PASSED,
  GR_CLAIM_HEADER, /* a mapped claim header cannot be emitted (claim_header_failure = deny) */
  GR_INTERNAL,
  GR_LIB_BASE
};
#define GATE_NLIBERR 64 /* >= number of jwtkit_err codes */
#define GR_COUNT (GR_LIB_BASE + GATE_NLIBERR)

int gate_reason_for_err(jwtkit_err e);
const char *gate_reason_label(int reason, char *buf, size_t cap);

typedef struct gate_metrics {
  atomic_ulong decisions[GR_COUNT];
  atomic_ulong legacy_accepted;
  atomic_ulong legacy_refused_after_deadline;
  atomic_uint_fast64_t legacy_minute[60]; /* (second << 24) | count */
  atomic_ulong tc_hits, tc_misses, tc_inserts, tc_evictions, tc_expired, tc_invalidated;
  atomic_ulong headers_dropped;
  atomic_ulong reloads_ok, reloads_failed;
  atomic_ulong refetch_triggered, refetch_cooldown, refetch_waited;
  atomic_ulong stale_verifications;
  atomic_long suspended; /* connections parked on a refetch right now */
  int64_t started_at;
} gate_metrics;

extern gate_metrics g_metrics;

void gate_metrics_init(void);
void gate_metrics_legacy_accept(int64_t now);
uint64_t gate_metrics_legacy_last_minute(int64_t now);
struct gate_state;
/* Prometheus text for the current state (may be NULL); malloc'd. */
int gate_metrics_render(struct gate_state *st, char **out, size_t *len);

/* --------------------------------------------------------- jwks_source.c */

typedef enum gate_fetch_result {
  GF_OK = 0,
  GF_NOT_MODIFIED,
  GF_HTTP_ERROR,
  GF_TIMEOUT,
  GF_TOO_LARGE,
  GF_TRUNCATED,
  GF_INVALID,
  GF_EMPTY,
  GF_CONNECT,
  GF_TLS,
  GF_NETWORK,
  GF_COUNT
} gate_fetch_result;
const char *gate_fetch_result_name(gate_fetch_result r);

/* An immutable published JWK Set (NULL jwks: none yet, or dropped). */
typedef struct gate_keyset {
  atomic_uint refs;
  jwtkit_jwks *jwks;
  uint64_t gen;
} gate_keyset;

gate_keyset *gate_keyset_ref(gate_keyset *ks);
void gate_keyset_release(gate_keyset *ks);

typedef struct gate_source_opts {
  int64_t timeout_ms;
  size_t max_bytes;
  int64_t min_ttl, max_ttl, default_ttl, refresh_ahead, cooldown, stale_max;
  const char *ca_file; /* copied */
} gate_source_opts;

typedef struct gate_source gate_source;

struct MHD_Connection;

/* Create a source; with `start`, start its fetcher thread (first fetch at
 * once).  NULL when out of memory or the thread cannot start. */
gate_source *gate_source_new(const char *url, int allow_http, jwtkit_alg rsa_default,
                             const gate_source_opts *o, int start);
gate_source *gate_source_ref(gate_source *s);
/* The last reference stops the thread (aborting a fetch in progress) and
 * joins it; call only from the main thread. */
void gate_source_release(gate_source *s);
/* Stop fetching and resume parked connections (shutdown); idempotent. */
void gate_source_stop(gate_source *s);
int gate_source_matches(const gate_source *s, const char *url, int allow_http, jwtkit_alg rsa_default,
                        const gate_source_opts *o);
const char *gate_source_url(const gate_source *s);
/* Generation of the published keyset (lock-free). */
uint64_t gate_source_gen(const gate_source *s);
/* Current keyset with a reference (never NULL). */
gate_keyset *gate_source_keyset(gate_source *s);
/* 1 when the published set is past its lifetime (serving stale). */
int gate_source_is_stale(const gate_source *s);

/* Unknown kid: ask for a refetch.  Returns 1 when `conn` was suspended
 * (the caller must return MHD_YES without a response; it is resumed when
 * a fetch that started after the call ends), 0 when no fetch can happen
 * now (an unknown-kid refetch started less than a cooldown ago, stopped,
 * too many waiters): answer at once.  conn may be NULL (no waiting). */
int gate_source_refetch(gate_source *s, struct MHD_Connection *conn);

typedef struct gate_source_status {
  int have_set;
  size_t keys;
  int stale;
  int64_t age_ms;    /* since the last good fetch or 304, -1 when none */
  int64_t expires_in_ms;
  uint64_t gen;
  uint64_t fetches[GF_COUNT];
  int64_t issuer_max_age;    /* the issuer's max-age (minus Age) in its last answer, -1: none seen */
  int64_t min_ttl;           /* jwks_min_ttl */
  int max_age_below_min_ttl; /* issuer_max_age known and below min_ttl */
} gate_source_status;
/* Log jwks_max_age_below_min_ttl again when it applies (reload). */
void gate_source_warn_max_age(gate_source *s);
void gate_source_get_status(gate_source *s, gate_source_status *st);

/* Test hook: fetch synchronously once (no thread). */
gate_fetch_result gate_source_fetch_now(gate_source *s);

/* --------------------------------------------------------- token_cache.c */

typedef struct gate_tcache gate_tcache;

/* One cached allow decision (immutable but for gen, which is only touched
 * under its stripe lock). */
typedef struct gate_tc_entry {
  struct gate_tc_entry *hnext, *prev, *next;
  atomic_uint refs;
  unsigned char key[32];
  uint32_t route;
  int64_t expires; /* valid while now < expires */
  uint64_t gen;    /* JWKS generation it was verified against */
  uint8_t legacy;
  uint8_t nhdr;
  uint16_t kid_len; /* 0: the token had no kid */
  size_t data_len;
  /* data: kid bytes, then per header: u8 map index, u16 len (LE), bytes */
  unsigned char data[];
} gate_tc_entry;

/* Called under the stripe lock when the entry's gen differs from *cur_gen
 * semantics: return 1 to keep (gen is then updated to *new_gen), 0 to drop. */
typedef int (*gate_tc_check_fn)(void *ctx, const gate_tc_entry *e, uint64_t *new_gen);

gate_tcache *gate_tcache_new(size_t capacity); /* NULL for capacity 0 */
void gate_tcache_free(gate_tcache *c);
size_t gate_tcache_capacity(const gate_tcache *c);
size_t gate_tcache_count(gate_tcache *c);
/* A hit returns a referenced entry (release with gate_tc_entry_release). */
gate_tc_entry *gate_tcache_get(gate_tcache *c, const unsigned char key[32], uint32_t route, int64_t now,
                               gate_tc_check_fn check, void *ctx);
void gate_tc_entry_release(gate_tc_entry *e);

typedef struct gate_hdr_val {
  uint8_t map; /* index in the route's header list */
  const char *val;
  size_t len;
} gate_hdr_val;

void gate_tcache_put(gate_tcache *c, const unsigned char key[32], uint32_t route, int64_t expires,
                     uint64_t gen, int legacy, const char *kid, size_t kid_len, const gate_hdr_val *hv,
                     size_t nhv);
/* Iterate an entry's headers: returns 0 at the end. */
int gate_tc_entry_header(const gate_tc_entry *e, size_t *pos, gate_hdr_val *out);
const char *gate_tc_entry_kid(const gate_tc_entry *e, size_t *len);

/* ------------------------------------------------------------- state.c */

/* A built verifier for one route over one keyset generation. */
typedef struct gate_route_snap {
  atomic_uint refs;
  jwtkit_verifier *v; /* NULL: no key usable yet */
  gate_keyset *ks;    /* keyset it was built from (NULL without JWKS) */
  uint64_t gen;
  size_t nkeys;
} gate_route_snap;

typedef struct gate_route {
  const gate_route_cfg *cfg; /* owned by the state's config */
  const gate_config *gcfg;   /* the whole config (global settings) */
  uint32_t index;
  jwtkit_key **static_keys;
  size_t nstatic;
  gate_source *src;          /* NULL without jwks_url */
  jwtkit_verifier *legacy;   /* HS256-only verifier, NULL unless migration */
  int64_t legacy_deadline;
  pthread_mutex_t build_mu;
  pthread_rwlock_t snap_lock;
  gate_route_snap *snap;
} gate_route;

typedef struct gate_state {
  atomic_uint refs;
  uint64_t generation;
  gate_config *cfg;
  gate_route *routes;
  size_t nroutes;
  gate_source **sources; /* distinct sources (each referenced once here) */
  size_t nsources;
  gate_tcache *cache;
  struct gate_state *reap_next; /* graveyard link */
} gate_state;

/* Build a state from a config (the state owns cfg on success).  Sources
 * matching ones in `prev` (may be NULL) are reused, so a reload does not
 * refetch.  start_fetchers 0: no background threads (--check, tests).  -1
 * with err on failure (nothing leaks, cfg is not consumed). */
int gate_state_build(gate_config *cfg, const gate_state *prev, uint64_t generation, int start_fetchers,
                     gate_state **out, char *err, size_t errcap);
gate_state *gate_state_ref(gate_state *s);
/* Drop a reference; the last one queues the state for the main thread
 * (gate_state_reap) so worker threads never join fetcher threads. */
void gate_state_release(gate_state *s);
/* Free queued states (main thread). */
void gate_state_reap(void);
/* Free a state now (main thread, last reference). */
void gate_state_destroy(gate_state *s);
void gate_state_stop_sources(gate_state *s);

/* Current verifier snapshot of a route, rebuilt when its source published
 * a new keyset; never NULL.  Release with gate_route_snap_release. */
gate_route_snap *gate_route_snap_get(gate_route *r);
void gate_route_snap_release(gate_route_snap *s);
/* 1 when the snapshot trusts a key with this kid (static or JWKS). */
int gate_route_snap_has_kid(const gate_route *r, const gate_route_snap *s, const char *kid, size_t len);

/* Parse key file text for a route (PEM, JWK or JWK Set) into keys;
 * exported for tests.  -1 with err on failure. */
int gate_load_key_text(const gate_route_cfg *rc, const char *src, const char *text, size_t len,
                       jwtkit_key ***keys, size_t *nkeys, char *err, size_t errcap);
/* The single RS / PS algorithm among a route's algs, else UNSPEC. */
jwtkit_alg gate_route_rsa_default(const gate_route_cfg *rc);

/* ------------------------------------------------------------ decide.c */

/* The request as the decision reads it: libmicrohttpd's connection in
 * http.c, a list of fields in tests and fuzz/fuzz_gate_request.c. */
typedef struct gate_req {
  /* the first header field called name (case-insensitive), NULL if absent */
  const char *(*get)(void *ctx, const char *name);
  /* fn for every header field in order, until fn returns 0 */
  void (*each)(void *ctx, int (*fn)(void *cls, const char *name, const char *value), void *cls);
  /* Unknown kid, or no JWK Set yet, on a route with a jwks_url: ask src
   * for a refetch and park the request until it ends.  1 when parked.
   * NULL: never park. */
  int (*park)(void *ctx, gate_source *src);
  void *ctx;
} gate_req;

typedef struct gate_decision {
  int reason;                 /* GR_* */
  unsigned status;            /* 204 allow, 401, 403 */
  const char *route;          /* matched route's name, NULL when none */
  const gate_route_cfg *rc;   /* matched route */
  jwtkit_errinfo info;        /* why it was denied (logs only) */
  int have_token;
  unsigned char digest[32];   /* SHA-256 of the token: the cache key */
  int have_digest;
  const char *kid;            /* allowed token's kid, kid_len bytes (NULL: none) */
  size_t kid_len;
  const char *host, *path;    /* normalised request host and path, NULL when absent */
  gate_hdr_val hv[GATE_MAX_HEADERS]; /* allow: claim headers (map: index in rc->headers) */
  size_t nhv;
  int64_t t0_us;              /* CLOCK_MONOTONIC at the start (log duration) */
  /* owned; gate_decision_free */
  char nhost[256];
  char npath[GATE_MAX_URI + 2];
  char *hbuf;
  gate_tc_entry *entry;
  jwtkit_claims *claims;
} gate_decision;

/* Decide an /auth request at time `now` (Unix seconds).  The caller keeps
 * its reference on st until gate_decision_free (the decision points into
 * st's configuration).  Returns 0 with *d filled (free it), or 1 when
 * rq->park parked the request (nothing to free). */
int gate_decide(gate_state *st, const gate_req *rq, int64_t now, gate_decision *d);
/* Count the decision in the metrics and log it. */
void gate_decision_report(const gate_decision *d);
void gate_decision_free(gate_decision *d);

/* --------------------------------------------------------------- http.c */

/* The connection guard of the running server (services/common/connguard.h),
 * for /metrics; NULL when none. */
struct svc_guard;
extern struct svc_guard *g_gate_guard;

typedef struct gate_app gate_app;
struct sockaddr;

/* The HTTP front: owns one reference to the current state. */
gate_app *gate_http_new(gate_state *st);
/* Start libmicrohttpd on `sa` (thread pool + epoll).  *port gets the bound
 * port.  -1 with err on failure. */
int gate_http_start(gate_app *a, const struct sockaddr *sa, int v6, const gate_config *cfg, unsigned *port,
                    char *err, size_t errcap);
/* Current state with a reference. */
gate_state *gate_http_state(gate_app *a);
/* Publish a new state (takes its reference); the old one is released. */
void gate_http_swap(gate_app *a, gate_state *st);
/* Stop accepting connections (keep serving those open). */
void gate_http_quiesce(gate_app *a);
/* Stop the daemon (all suspended connections must have been resumed). */
void gate_http_stop(gate_app *a);
void gate_http_free(gate_app *a);

/* ------------------------------------------------------------ request.c */

/* Normalise the path of a request URI (origin- or absolute-form): drop
 * query and fragment, percent-decode, merge slashes, resolve "." and ".."
 * (RFC 3986 5.2.4).  Returns 0, or -1 for bad escapes, control bytes or a
 * path that does not start with '/'. */
int gate_normalize_path(const char *uri, size_t len, char *out, size_t cap, size_t *outlen);
/* Host header value -> lowercase host without port or trailing dot. */
int gate_normalize_host(const char *host, size_t len, char *out, size_t cap);
/* match_host pattern (lowercase; "*.example.com" matches subdomains). */
int gate_host_matches(const char *pattern, const char *host);
int gate_path_matches(const char *prefix, const char *path, size_t len);
/* The first route whose matchers all match; NULL if none. */
const gate_route_cfg *gate_select_route(const gate_config *cfg, const char *host, const char *path,
                                        size_t path_len, size_t *index);

/* Authorization value -> Bearer token.  Returns 1 with the token, 0 when
 * the scheme is not Bearer, -1 for "Bearer" with no usable token. */
int gate_parse_bearer(const char *v, const char **tok, size_t *len);
/* Find cookie `name` in a Cookie header value.  Returns the number of
 * occurrences with a value different from the first (0 or more) in *conflict,
 * 1 when found. */
int gate_find_cookie(const char *header, const char *name, const char **val, size_t *len, int *conflict);
/* 1 when every byte is a token68 / base64url character or '.'. */
int gate_token_chars_ok(const char *t, size_t n);

/* Render a claim's raw JSON value into a header value: strings unescaped,
 * arrays of strings joined with "," (unless an element holds a ',' or a
 * control character), other values as their compact JSON text.  Then every
 * byte outside printable ASCII (the UTF-8 of non-ASCII text), '%' itself
 * and spaces at either end are percent-encoded (%XX, uppercase), so the
 * value is printable ASCII that decodes to the claim's exact text.
 * Returns the length (0: empty), GATE_RENDER_BAD_BYTES when a string holds
 * an ASCII control character (CR, LF, NUL, tab, DEL: header injection; never
 * emitted), or GATE_RENDER_TOO_LONG when the encoded value exceeds cap. */
enum { GATE_RENDER_BAD_BYTES = -1, GATE_RENDER_TOO_LONG = -2 };
long gate_render_claim(const char *json, size_t len, char *out, size_t cap);

#endif
