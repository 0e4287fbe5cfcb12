/*
 * services/gatecore/gatecore.h - the gateway core: what decides an nginx
 * auth_request, without the HTTP server around it.  Used by `jwtkit gate`
 * (libmicrohttpd, services/gate) and meant for an in-process nginx module;
 * neither's specifics are in here.  Static library jwtkit_gatecore, on the
 * public API of libjwtkit and src/common; not installed.
 *
 *   policy    gw_config / gw_route_cfg: plain data, filled key by key by a
 *             front end (the gate's INI file, nginx directives) through
 *             gw_config_set / gw_route_set, which own the vocabulary and
 *             its checks
 *   state     gw_state: routes with their keys and verifiers, the JWK Set
 *             sources, the verified-token cache; refcounted, swapped whole
 *             on a reload
 *   request   gw_request: plain data (normalised host and path, the route,
 *             the token the route names); gw_request_read fills it from an
 *             auth_request subrequest's header fields
 *   decision  gw_decide: allow + claim headers, or deny + reason + status +
 *             WWW-Authenticate value; no I/O
 *   JWK Sets  the source state machine (gw_sm_*: when to fetch, what an
 *             answer means, stale rules, cooldowns) is pure logic on plain
 *             data with the time passed in; gw_source wraps it for threaded
 *             front ends, and the fetching itself is the front end's
 *             gw_transport
 *   counters  gw_stats: decisions, token cache, refetches (process-wide)
 *
 * Threads: gw_decide, gw_request_read and gw_source_refetch may run in any
 * number of threads at once on one state.  A gw_source serialises itself
 * (one mutex); its transport's callbacks are documented at gw_transport.
 * gw_sm_* functions do not lock: whoever shares a gw_jwks_sm serialises.
 * Logs go through common/log.h.
 */
#ifndef JWTKIT_GATECORE_H
#define JWTKIT_GATECORE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common/snapshot.h"
#include "jwtkit/jwtkit.h"

/* ------------------------------------------------------------ limits */
#define GW_MAX_ROUTES 256u
#define GW_MAX_LIST 64u         /* values of one repeatable key */
#define GW_MAX_HEADERS 32u      /* claim -> header mappings per route */
#define GW_MAX_HEADER_NAME 64u
#define GW_MAX_CLAIM_NAME 128u
#define GW_MAX_URI 8192u        /* request URI considered */
#define GW_MAX_HOST 256u
#define GW_MAX_WAITERS 64u      /* requests parked per JWK Set refetch */
#define GW_MAX_ETAG 256u
#define GW_MAX_URL 2048u
#define GW_MAX_TOKEN_CAP 65536u /* max_token upper bound */
#define GW_MAX_CACHE_ENTRIES 10000000u
#define GW_MAX_KEYFILE (1u << 20)

/* The allow answer's header of a route with strip_authorization: the proxy
 * drops Authorization from the upstream request when it is "true" (a claim
 * header cannot take this name). */
#define GW_STRIP_AUTHORIZATION_HEADER "X-Strip-Authorization"

/* =============================================================== policy */

typedef struct gw_strlist {
  char **v;
  size_t n;
} gw_strlist;

typedef struct gw_header_map {
  char name[GW_MAX_HEADER_NAME]; /* response header, e.g. X-User */
  char claim[GW_MAX_CLAIM_NAME]; /* claim name, e.g. sub */
  int optional;                  /* optional_header: absent or empty is fine */
} gw_header_map;

typedef struct gw_route_cfg {
  char *name;
  int line;              /* where the front end defined it (messages), 0: unknown */
  gw_strlist hosts;      /* match_host (any of); lowercase */
  gw_strlist prefixes;   /* match_path_prefix (any of) */
  char *issuer;
  char *jwks_url;
  gw_strlist key_files;
  jwtkit_alg algs[JWTKIT_ALG_COUNT];
  size_t nalgs;
  gw_strlist audiences;
  char *typ;
  gw_strlist require;
  int64_t leeway;  /* -1 = library default (60) */
  int64_t max_age; /* 0 = off */
  gw_header_map headers[GW_MAX_HEADERS];
  size_t nheaders;
  int claim_header_allow; /* claim_header_failure = allow (default deny) */
  int strip_authorization; /* an allow asks the proxy not to pass Authorization on (default: it does) */
  int issuer_discovery;    /* the JWK Set's URL from the issuer's metadata document (no jwks_url) */
  int token_cache_off;     /* token_cache = off: this route never uses the token cache (default: it does) */
  char *token_cookie;
  char *token_header;
  int allow_http_jwks;
  char *legacy_secret_file;
  int64_t legacy_deadline;
  int has_legacy_deadline;
  unsigned seen; /* single-valued keys given (gw_route_set) */
} gw_route_cfg;

typedef struct gw_jwks_opts {
  int64_t timeout_ms;    /* whole fetch (5000) */
  size_t max_bytes;      /* body (65536) */
  int64_t min_ttl;       /* clamp of the lifetime, seconds (30) ... */
  int64_t max_ttl;       /* ... (3600) */
  int64_t default_ttl;   /* without max-age (300) */
  int64_t refresh_ahead; /* refresh this long before expiry, at most half the lifetime (30) */
  int64_t cooldown;      /* between unknown-kid refetches; longest retry interval (30) */
  int64_t stale_max;     /* a set past its lifetime is used this long while fetches fail (86400) */
  const char *ca_file;   /* NULL: the system's */
} gw_jwks_opts;

/* Which proxy convention names the original request (proxy_headers): a
 * listener trusts one, and the other's header fields are ignored there,
 * since a proxy passes on whatever a client sent of the convention it
 * does not use itself. */
typedef enum gw_proxy_headers {
  GW_PROXY_ORIGINAL = 0, /* nginx auth_request: X-Original-URI, X-Original-Host (else Host) */
  GW_PROXY_FORWARDED     /* Caddy forward_auth, Traefik forwardAuth: X-Forwarded-Uri, -Host, -Method */
} gw_proxy_headers;

typedef struct gw_config {
  size_t token_cache; /* entries, 0 = off (10000) */
  size_t max_token;   /* bytes (8192) */
  size_t header_max;  /* bytes of one emitted claim header (1024) */
  gw_jwks_opts jwks;  /* ca_file owned */
  gw_proxy_headers proxy_headers; /* the front end's listener (original) */
  gw_route_cfg *routes;
  size_t nroutes;
  unsigned seen; /* keys given (gw_config_set) */
} gw_config;

/* A configuration with the defaults and no route; NULL when out of memory. */
gw_config *gw_config_new(void);
void gw_config_free(gw_config *c);
/* A global setting: token_cache, max_token, header_max, jwks_timeout (also
 * "500ms"), jwks_max_bytes, jwks_min_ttl, jwks_max_ttl, jwks_default_ttl,
 * jwks_refresh_ahead, jwks_cooldown, jwks_stale_max, jwks_ca_file,
 * proxy_headers (original | forwarded: the listener's convention).
 * Returns 0, 1 when key is not one of them (the front end's own, or
 * unknown), or -1 with a sentence in err (the front end adds FILE:LINE). */
int gw_config_set(gw_config *c, const char *key, const char *value, char *err, size_t cap);
/* A new route (name: letters, digits, '-', '_', '.'; unique).  NULL with
 * err.  The pointer is valid until the next gw_config_add_route. */
gw_route_cfg *gw_config_add_route(gw_config *c, const char *name, int line, char *err, size_t cap);
/* One route key (docs/gateway.md): "header NAME" and "optional_header NAME"
 * carry the header name in the key.  0, or -1 with err (unknown keys too). */
int gw_route_set(gw_route_cfg *r, const char *key, const char *value, char *err, size_t cap);
/* What needs the whole configuration: at least one route, each with algs
 * and a key source, min_ttl <= max_ttl, migration settings paired.  0, or
 * -1 with err and *line = the failing route's line (0: the file). */
int gw_config_check(const gw_config *c, int *line, char *err, size_t cap);
/* The vocabulary, for docs and their tests: every key gw_config_set takes,
 * then every key gw_route_set takes ("header NAME" and "optional_header
 * NAME" as "header" and "optional_header"); NULL-terminated. */
const char *const *gw_global_keys(void);
const char *const *gw_route_keys(void);
/* The single RS / PS algorithm among a route's algs, else UNSPEC. */
jwtkit_alg gw_route_rsa_default(const gw_route_cfg *rc);
/* What names a route's JWK Set source: jwks_url, or the issuer with
 * issuer_discovery; NULL for a route with key files only. */
const char *gw_route_source_url(const gw_route_cfg *rc);
/* A front end's own values, checked and worded like the core's: a duration
 * (common/parse.h) in lo..hi seconds, a whole number in lo..hi.  0, or -1
 * with "'KEY': ..." in err. */
int gw_value_duration(const char *key, const char *v, int64_t lo, int64_t hi, int64_t *out, char *err, size_t cap);
int gw_value_whole(const char *key, const char *v, uint64_t lo, uint64_t hi, uint64_t *out, char *err, size_t cap);
/* "original" or "forwarded" (a front end with several listeners sets one
 * per listener and passes it to gw_request_read_as).  0, or -1 with err. */
int gw_value_proxy_headers(const char *key, const char *v, gw_proxy_headers *out, char *err, size_t cap);

/* ============================================================ JWK Sets */

typedef enum gw_fetch_result {
  GW_FETCH_OK = 0,
  GW_FETCH_NOT_MODIFIED,
  GW_FETCH_HTTP_ERROR,
  GW_FETCH_TIMEOUT,
  GW_FETCH_TOO_LARGE,
  GW_FETCH_TRUNCATED,
  GW_FETCH_INVALID,
  GW_FETCH_EMPTY,
  GW_FETCH_CONNECT,
  GW_FETCH_TLS,
  GW_FETCH_NETWORK,
  GW_FETCH_COUNT
} gw_fetch_result;
/* "ok", "not_modified", "http_error", ... (the metrics' result label) */
const char *gw_fetch_result_name(gw_fetch_result r);

/* What identifies a source: two routes (or two configurations) with equal
 * definitions share one. */
typedef struct gw_jwks_def {
  const char *url;
  int allow_http;
  jwtkit_alg rsa_default; /* for RSA keys without "alg" (gw_route_rsa_default) */
  gw_jwks_opts o;
  int discovery; /* url is an issuer: the set's URL is its metadata's jwks_uri (gw_discovery_read) */
} gw_jwks_def;

/* A fetch the core asks the transport for. */
typedef struct gw_fetch_req {
  const char *url;
  int allow_http;
  int64_t timeout_ms;
  size_t max_bytes;
  const char *ca_file;
  char if_none_match[GW_MAX_ETAG]; /* "" : none */
  int discovery;                   /* url is an issuer: read its metadata first (below) */
} gw_fetch_req;

/* issuer_discovery.  The metadata document's URLs in the order to try
 * (the second when the first answers 404): which 0, OpenID Connect
 * Discovery (ISSUER/.well-known/openid-configuration); 1, RFC 8414
 * (https://HOST/.well-known/oauth-authorization-server/PATH).  0, or -1
 * when it does not fit in cap. */
int gw_discovery_url(const char *issuer, int which, char *out, size_t cap);
/* The jwks_uri of a metadata document: its "issuer" must equal `issuer`
 * exactly; jwks_uri must be https://, or http:// to a loopback address
 * with allow_http (at most GW_MAX_URL bytes, no spaces or controls).  0,
 * or -1 with a sentence naming both values in err. */
int gw_discovery_read(const char *body, size_t len, const char *issuer, int allow_http, char *jwks_uri, size_t cap,
                      char *err, size_t errcap);

/* The transport's answer.  result GW_FETCH_OK: an HTTP answer came whole
 * (status, body and headers as received, no redirect followed); else one of
 * TIMEOUT, TOO_LARGE, TRUNCATED, CONNECT, TLS, NETWORK with a detail. */
typedef struct gw_fetch_resp {
  gw_fetch_result result;
  long status;
  const char *body;
  size_t len;
  const char *cache_control; /* NULL or "": none */
  const char *etag;          /* NULL or "": none */
  int64_t age;               /* the Age header, seconds */
  const char *detail;
} gw_fetch_resp;

/* What an answer means, before it changes any state (gw_fetch_evaluate). */
typedef struct gw_fetch_outcome {
  gw_fetch_result r;
  jwtkit_jwks *jwks; /* OK: the new set (owned until gw_sm_done takes it) */
  int64_t ttl;       /* OK, NOT_MODIFIED: the lifetime, clamped */
  int64_t max_age;   /* the issuer's max-age minus Age before the clamp; -1: none */
  char etag[GW_MAX_ETAG];
  long status;
  size_t bytes, skipped;
  char detail[640];
} gw_fetch_outcome;

/* The source state machine: plain data without pointers or locks, so it
 * may live in memory shared by processes; whoever shares it serialises the
 * calls.  Times are monotonic milliseconds, passed in. */
typedef struct gw_jwks_sm {
  int stop;
  int kick;            /* a fetch is wanted at once (start-up, unknown kid) */
  int fetching;        /* a fetch was started and has not ended */
  int sent_etag;       /* ... with If-None-Match */
  int refetch_queued;  /* an unknown-kid refetch to start when the running fetch ends */
  int failures;
  int have_set;
  int warned_max_age;  /* jwks_max_age_below_min_ttl logged for the current value */
  int logged_stale;    /* jwks_stale logged for this outage */
  int64_t last_refetch_ms; /* start of the last unknown-kid refetch; INT64_MIN: never */
  int64_t next_fetch_ms;
  int64_t fetched_ms;  /* the last 200 or 304 */
  int64_t expires_ms;
  int64_t issuer_max_age; /* -1: none seen */
  uint64_t gen;        /* of the set published last (a dropped set counts) */
  char etag[GW_MAX_ETAG];
  uint64_t fetches[GW_FETCH_COUNT];
} gw_jwks_sm;

void gw_sm_init(gw_jwks_sm *s);

enum {
  GW_SM_FETCH = 1,   /* start the fetch in *req now (the machine counts it as running) */
  GW_SM_DROPPED = 2, /* the set was dropped (stale bound): publish "no set", generation s->gen */
  GW_SM_PUBLISH = 4, /* gw_sm_done: publish o->jwks as generation s->gen (take it: o->jwks = NULL) */
  GW_SM_AGAIN = 8    /* gw_sm_done: another fetch is due at once (poll); keep the parked requests */
};

/* Timers: a fetch due (start-up, refresh ahead of expiry, retry after a
 * failure, a kick) and the stale bound.  Returns GW_SM_* bits; *wake_ms
 * gets when to call again. */
int gw_sm_poll(gw_jwks_sm *s, const gw_jwks_def *d, int64_t now_ms, gw_fetch_req *req, int64_t *wake_ms);

typedef enum gw_refetch {
  GW_REFETCH_NO = 0, /* no fetch can help now (cooldown, stopped): answer at once */
  GW_REFETCH_WAIT,   /* a fetch that starts after this request will run: wait for its end */
  GW_REFETCH_KICKED  /* the same, and it is due now: call gw_sm_poll */
} gw_refetch;
/* A token with an unknown kid (or no set yet).  Unknown-kid refetches are
 * limited against each other only: one at a time, at most one per cooldown
 * from the start of the previous one, failed ones included; a background
 * refresh neither counts nor delays one (when it runs, the refetch is
 * queued right after it). */
gw_refetch gw_sm_refetch(gw_jwks_sm *s, const gw_jwks_def *d, int64_t now_ms);

/* What the transport's answer means: status, body (jwtkit_jwks_parse: oct
 * keys never taken), Cache-Control (max-age minus Age, clamped to
 * [min_ttl, max_ttl]; no-cache/no-store = min_ttl; default_ttl without
 * one), ETag, 304 (only as an answer to If-None-Match).  Pure. */
void gw_fetch_evaluate(const gw_jwks_def *d, int sent_etag, const gw_fetch_resp *resp, gw_fetch_outcome *out);
/* Frees what an outcome still owns. */
void gw_fetch_outcome_clear(gw_fetch_outcome *o);

/* The running fetch ended with o.  A good set or a 304 renews the
 * lifetime; failures keep the set (stale serving) and retry after 1, 2,
 * 4 ... s, at most cooldown.  Returns GW_SM_PUBLISH / GW_SM_AGAIN bits. */
int gw_sm_done(gw_jwks_sm *s, const gw_jwks_def *d, int64_t now_ms, gw_fetch_outcome *o);
/* No more fetches. */
void gw_sm_stop(gw_jwks_sm *s);

typedef struct gw_source_status {
  int have_set;
  size_t keys;
  int stale;
  int64_t age_ms;        /* since the last good fetch or 304, -1 when none */
  int64_t expires_in_ms; /* negative: stale */
  uint64_t gen;
  uint64_t fetches[GW_FETCH_COUNT];
  int64_t issuer_max_age;    /* -1: none seen */
  int64_t min_ttl;
  int max_age_below_min_ttl; /* the issuer's max-age is known and below min_ttl */
} gw_source_status;
void gw_sm_status(const gw_jwks_sm *s, const gw_jwks_def *d, int64_t now_ms, gw_source_status *st);
/* Log jwks_max_age_below_min_ttl again when it applies (a reload). */
void gw_sm_warn_max_age(const gw_jwks_sm *s, const gw_jwks_def *d);

/* ---------------------------------------------------- the threaded source */

/* An immutable published JWK Set (jwks NULL: none yet, or dropped). */
typedef struct gw_keyset {
  jk_snap_obj obj;
  jwtkit_jwks *jwks;
  uint64_t gen;
} gw_keyset;
void gw_keyset_release(gw_keyset *ks);

typedef struct gw_source gw_source;

/* How a front end fetches and parks requests.  Every callback may be NULL
 * but start.  ctx is passed to open, park and resume; handle (what open
 * returned) to start, cancel and close.
 *   open    a new source: set up its fetching (a thread, a timer); NULL
 *           fails gw_source_new.  Called with the source's lock held: it
 *           must not call the source itself (a thread it starts may: it
 *           waits until open returned).  The front end calls
 *           gw_source_tick when the time it returned has come, and
 *           gw_source_fetch_done with each answer.
 *   start   fetch req now without blocking (no lock of the source is
 *           held; any thread); exactly one gw_source_fetch_done follows
 *   cancel  abort the fetch in progress, start no other (stop)
 *   close   the source is freed: release what open set up
 *   park    keep `waiter` (a request) until resume; called with the
 *           source's lock held, so a resume never comes before it
 *   resume  the parked request may be decided again (no lock held) */
typedef struct gw_transport {
  void *(*open)(void *ctx, gw_source *s);
  void (*start)(void *handle, const gw_fetch_req *req);
  void (*cancel)(void *handle);
  void (*close)(void *handle);
  void (*park)(void *ctx, void *waiter);
  void (*resume)(void *ctx, void *waiter);
  void *ctx;
} gw_transport;

/* A thread per source (thread.c): the fetching half of a transport for a
 * front end that may block while it fetches (jwtkit gate; jwtkit serve's
 * jwks_uri clients).  The thread calls ops->fetch for each request, which
 * does one fetch (abort is set when the source cancels or closes) and hands
 * the answer to gw_source_fetch_done; between requests it runs
 * gw_source_tick.  It takes no asynchronous signal.  A front end's open
 * returns gw_worker_open(&its_ops, s); start, cancel and close are
 * gw_worker_start, gw_worker_cancel and gw_worker_close. */
typedef struct gw_worker gw_worker;
typedef struct gw_worker_ops {
  size_t user_size; /* per source, zeroed, handed to fetch and fini */
  void (*fetch)(void *user, gw_source *src, const gw_fetch_req *req, atomic_int *abort);
  void (*fini)(void *user); /* the source closes (NULL: nothing to release) */
} gw_worker_ops;
gw_worker *gw_worker_open(const gw_worker_ops *ops, gw_source *s);
void gw_worker_start(void *h, const gw_fetch_req *req);
void gw_worker_cancel(void *h);
void gw_worker_close(void *h);

/* A source (strings copied).  t NULL: it never fetches and never parks
 * (configuration checks, tests).  NULL when out of memory or open failed. */
gw_source *gw_source_new(const gw_jwks_def *d, const gw_transport *t);
gw_source *gw_source_ref(gw_source *s);
/* The last reference stops it, closes the transport's handle and frees. */
void gw_source_release(gw_source *s);
/* Stop fetching, abort the fetch in progress, resume every parked request. */
void gw_source_stop(gw_source *s);
/* Run the timers; returns when to call again (monotonic ms). */
int64_t gw_source_tick(gw_source *s, int64_t now_ms);
/* The transport's answer to the last start. */
void gw_source_fetch_done(gw_source *s, int64_t now_ms, const gw_fetch_resp *r);
/* Unknown kid, or no set yet: 1 when `waiter` was parked (resumed when a
 * fetch that started after this call ends), 0: answer now.  waiter NULL:
 * never parks (but may still start the refetch). */
int gw_source_refetch(gw_source *s, int64_t now_ms, void *waiter);
const gw_jwks_def *gw_source_def(const gw_source *s);
/* Generation of the published set (lock-free). */
uint64_t gw_source_gen(const gw_source *s);
/* The published set with a reference (never NULL). */
gw_keyset *gw_source_keyset(gw_source *s);
/* For a front end that runs the state machine elsewhere (an nginx module:
 * gw_sm_* on memory shared by its worker processes, under its own lock) and
 * parses the set it holds in each process: publish jwks (taken; NULL: no
 * set) as generation gen, past its lifetime at expires_ms (monotonic;
 * INT64_MAX: never; gw_source_is_stale).  Routes rebuild their verifiers
 * on the new generation as after a fetch. */
void gw_source_publish(gw_source *s, jwtkit_jwks *jwks, uint64_t gen, int64_t expires_ms);
/* 1 when the published set is past its lifetime (lock-free). */
int gw_source_is_stale(const gw_source *s, int64_t now_ms);
void gw_source_status_get(gw_source *s, int64_t now_ms, gw_source_status *st);
void gw_source_warn_max_age(gw_source *s);

/* ================================================================ state */

typedef struct gw_state gw_state;

typedef struct gw_build {
  const gw_state *prev;           /* sources with equal definitions are taken over: a reload does not refetch */
  uint64_t generation;            /* of this configuration (1 at start) */
  const gw_transport *transport;  /* NULL: no fetching */
  /* the last release calls this instead of gw_state_destroy (a front end
   * that must destroy in one thread); NULL: destroyed at once */
  void (*retire)(gw_state *st);
} gw_build;

/* Load every key file and secret, build every verifier, find or create the
 * sources.  On success the state owns cfg.  -1 with err (nothing leaks, cfg
 * is not consumed). */
int gw_state_build(gw_config *cfg, const gw_build *b, gw_state **out, char *err, size_t cap);
gw_state *gw_state_ref(gw_state *st);
void gw_state_release(gw_state *st);
void gw_state_destroy(gw_state *st);
/* A holder of the current state (common/snapshot.h): acquire gives a
 * reference (NULL when none), publish takes the caller's. */
gw_state *gw_state_acquire(jk_snap *h);
void gw_state_publish(jk_snap *h, gw_state *st);

const gw_config *gw_state_config(const gw_state *st);
uint64_t gw_state_generation(const gw_state *st);
void gw_state_stop_sources(gw_state *st);
size_t gw_state_nsources(const gw_state *st);
gw_source *gw_state_source(const gw_state *st, size_t i);
size_t gw_state_cache_entries(const gw_state *st);
size_t gw_state_cache_capacity(const gw_state *st);

typedef struct gw_route_info {
  const gw_route_cfg *cfg;
  size_t static_keys;
  size_t keys;             /* in the current verifier */
  int ready;               /* the route has a verifier (a key) */
  int legacy;              /* migration mode */
  int64_t legacy_deadline;
} gw_route_info;
/* Route i (0 .. gw_state_config(st)->nroutes - 1); rebuilds its verifier
 * when its JWK Set changed. */
void gw_state_route_info(gw_state *st, size_t i, gw_route_info *out);

/* ============================================================== request */

/* A request's header fields: get the first named one (case-insensitive),
 * or call fn for each in order until it returns 0. */
typedef struct gw_fields {
  const char *(*get)(void *ctx, const char *name);
  void (*each)(void *ctx, int (*fn)(void *cls, const char *name, const char *value), void *cls);
  void *ctx;
} gw_fields;

/* The token a request carries for a route: p/len (NULL: none), unless two
 * different ones came (ambiguous) or "Bearer" with no usable token (bad). */
typedef struct gw_token {
  const char *p;
  size_t len;
  int ambiguous;
  int bad;
} gw_token;

#define GW_NO_ROUTE ((size_t)-1)

typedef struct gw_request {
  const char *method;          /* for the log line; may be NULL (forwarded: X-Forwarded-Method) */
  const char *host;            /* normalised (gw_normalize_host); NULL: none */
  const char *path;            /* normalised (gw_normalize_path); NULL: none */
  size_t path_len;
  int bad_uri;                 /* the URI could not be normalised: 403 bad_uri */
  size_t route;                /* gw_route_select; GW_NO_ROUTE: 403 no_route */
  gw_token token;              /* gw_token_field over the fields, for that route */
  char hostbuf[GW_MAX_HOST];   /* storage for gw_request_read */
  char pathbuf[GW_MAX_URI + 2];
} gw_request;

/* An authorization subrequest, by the configuration's proxy_headers:
 *   original   X-Original-Host (else Host), X-Original-URI (nginx);
 *              X-Forwarded-* ignored
 *   forwarded  X-Forwarded-Host, X-Forwarded-Uri, X-Forwarded-Method
 *              (Caddy, Traefik); X-Original-* and Host ignored (Host names
 *              the gate there, not the site)
 * then the route's token sources: Authorization: Bearer, token_header,
 * token_cookie.  The proxy must set (replace) the fields of its
 * convention: the first of a name is taken. */
void gw_request_read(gw_request *rq, const gw_state *st, const gw_fields *f);
/* The same with the listener's convention given. */
void gw_request_read_as(gw_request *rq, const gw_state *st, const gw_fields *f, gw_proxy_headers conv);
/* The first route (file order) whose matchers all match; GW_NO_ROUTE. */
size_t gw_route_select(const gw_config *c, const char *host, const char *path, size_t path_len);
/* Offer one header field to the token scan of route rc (start with a
 * zeroed gw_token).  Values must stay valid while the token is used. */
void gw_token_field(gw_token *t, const gw_route_cfg *rc, const char *name, const char *value);

/* Path of a request URI (origin or absolute form): query and fragment
 * dropped, percent-decoded, slashes merged, "." and ".." resolved (RFC 3986
 * 5.2.4).  0, or -1 for bad escapes, control bytes, no leading '/'. */
int gw_normalize_path(const char *uri, size_t len, char *out, size_t cap, size_t *outlen);
/* Host header value -> lowercase host without port or trailing dot. */
int gw_normalize_host(const char *host, size_t len, char *out, size_t cap);
int gw_host_matches(const char *pattern, const char *host);
int gw_path_matches(const char *prefix, const char *path, size_t len);
/* Authorization value: 1 with the Bearer token, 0 another scheme, -1
 * "Bearer" with no usable token. */
int gw_parse_bearer(const char *v, const char **tok, size_t *len);
/* Cookie `name` in a Cookie header: 1 when found; *conflict counts later
 * occurrences with another value. */
int gw_find_cookie(const char *header, const char *name, const char **val, size_t *len, int *conflict);
/* 1 when every byte is a token68 character or '.'. */
int gw_token_chars_ok(const char *t, size_t n);

/* Claim -> header value: a string as its text, an array of strings joined
 * with ',' (unless an element holds ',' or a control character), anything
 * else as compact JSON; then bytes outside printable ASCII, '%' and spaces
 * at either end percent-encoded.  The length (0: empty), or GW_RENDER_*. */
enum { GW_RENDER_BAD_BYTES = -1, GW_RENDER_TOO_LONG = -2, GW_RENDER_MISSING = -3 };
long gw_render_claim(const jwtkit_claims *cl, const char *name, char *out, size_t cap);
/* The same rendering for a member of a JSON object text that a verifier
 * accepted (a verified token's protected header, jwtkit_claims_header_json;
 * a front end's $jwt_header_NAME).  GW_RENDER_MISSING also when the text is
 * not a strict JSON object. */
long gw_render_json_member(const char *json, size_t len, const char *name, char *out, size_t cap);

/* ============================================================= decision */

/* Reasons: allows first, then the gate's denials, then one per library
 * error (label = lowercase errname). */
enum {
  GW_R_VERIFIED = 0,
  GW_R_CACHED,
  GW_R_LEGACY,
  GW_R_LEGACY_CACHED,
  GW_R_ALLOW_COUNT,
  GW_R_MISSING_TOKEN = GW_R_ALLOW_COUNT,
  GW_R_AMBIGUOUS_TOKEN,
  GW_R_TOKEN_TOO_LARGE,
  GW_R_BAD_AUTHORIZATION,
  GW_R_NO_ROUTE,
  GW_R_BAD_URI,
  GW_R_JWKS_NOT_READY,
  GW_R_LEGACY_DEADLINE_PASSED,
  GW_R_CLAIM_HEADER,
  GW_R_INTERNAL,
  GW_R_LIB_BASE
};
#define GW_NLIBERR 64 /* >= the number of jwtkit_err codes */
#define GW_R_COUNT (GW_R_LIB_BASE + GW_NLIBERR)
int gw_reason_for_err(jwtkit_err e);
const char *gw_reason_label(int reason, char *buf, size_t cap);

typedef struct gw_header {
  uint8_t map;      /* index in the route's header mappings */
  const char *name; /* response header */
  const char *val;  /* printable ASCII, not NUL-terminated */
  size_t len;
} gw_header;

struct gw_tc_entry;

typedef struct gw_decision {
  int reason;                  /* GW_R_* */
  unsigned status;             /* 204 allow, 401, 403 */
  const char *www_authenticate; /* the 401's challenge, NULL otherwise */
  const char *route;           /* the matched route's name, NULL when none */
  const gw_route_cfg *rc;
  jwtkit_errinfo info;         /* why it was denied (logs only, never to the client) */
  gw_source *refetch;          /* denied for an unknown kid or no set yet: a fetch of this source may
                                  change the answer (gw_source_refetch, then decide again) */
  int have_token;
  int have_digest;
  unsigned char digest[32];    /* SHA-256 of the token (cache key) */
  const char *kid;             /* the allowed token's kid (kid_len bytes), NULL: none */
  size_t kid_len;
  const char *host, *path, *method;
  gw_header hv[GW_MAX_HEADERS]; /* allow: the claim headers to emit */
  size_t nhv;
  int64_t t0_us;
  /* owned (gw_decision_free) */
  char *hbuf;
  struct gw_tc_entry *entry;
  jwtkit_claims *claims;
} gw_decision;

/* Decide at `now` (Unix seconds; the token's clock) and mono_ms (the JWK
 * Sets' clock).  Keep the reference on st until gw_decision_free: the
 * decision points into it. */
void gw_decide(gw_state *st, const gw_request *rq, int64_t now, int64_t mono_ms, gw_decision *d);
/* Count the decision (gw_stats.decisions). */
void gw_decision_count(const gw_decision *d);
/* Its log line: "decision" at info for a denial, debug for an allow. */
void gw_decision_log(const gw_decision *d);
void gw_decision_free(gw_decision *d);

/* ============================================================= counters */

typedef struct gw_metrics {
  atomic_ulong decisions[GW_R_COUNT];
  atomic_ulong legacy_accepted;
  atomic_ulong legacy_refused_after_deadline;
  atomic_uint_fast64_t legacy_minute[60]; /* (second << 24) | count */
  atomic_ulong tc_hits, tc_misses, tc_inserts, tc_evictions, tc_expired, tc_invalidated;
  atomic_ulong headers_dropped;
  atomic_ulong refetch_triggered, refetch_cooldown, refetch_waited;
  atomic_ulong stale_verifications;
} gw_metrics;

extern gw_metrics gw_stats;

void gw_metrics_init(void);
void gw_metrics_legacy_accept(int64_t now);
uint64_t gw_metrics_legacy_last_minute(int64_t now);

#endif
