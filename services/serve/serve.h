/*
 * services/serve/serve.h - internals of `jwtkit serve` (not installed).
 *
 * The values people type, the configuration dialect, logs, buffers and
 * JSON, files, base64, Prometheus text, snapshots and clocks are the
 * project's shared layer (src/common); crypto/seal.h and core/alloc.h give
 * hashes, MACs, random bytes, wiping and constant-time comparison.
 *
 * Module map:
 *   serve.c          jwtkit_serve_main: options, settings layers, demo, signals, reload
 *   clients_admin.c  `jwtkit serve client add`: the clients file, under its lock
 *   config.c         settings: defaults, one key at a time, the config file, layers, checks
 *   clients.c        the clients file: [client NAME] sections, lookup
 *   secret.c         client secrets: generation, PBKDF2 hashes, constant-time check, verification cache
 *   form.c           application/x-www-form-urlencoded, Basic credentials, scope tokens
 *   etag.c           ETags and If-None-Match (RFC 9110)
 *   keys.c           keyring snapshots and the rotation thread (nothing of HTTP)
 *   metrics.c        counters and the Prometheus text exposition
 *   ratelimit.c      token buckets of POST /token by source address and client
 *   discovery.c      the configuration snapshot and the discovery documents
 *   route.c          routing and the checks before a body: answers without I/O
 *   token.c          POST /token: the client credentials grant
 *   http.c           libmicrohttpd: the server, the guard, prepared responses
 *   reqlog.c         request log lines, bounded: summaries of refused requests
 *   keyhealth.c      health of token (PKCS#11) signing keys: states, probe, metrics
 */
#ifndef JWTKIT_SERVE_INTERNAL_H
#define JWTKIT_SERVE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common/attr.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/snapshot.h"
#include "jwtkit/jwtkit.h"

/* Exit codes. */
enum { SV_EXIT_OK = 0, SV_EXIT_USAGE = 2, SV_EXIT_RUNTIME = 3 };

/* Limits. */
#define SV_PATH_MAX 1024u
#define SV_MAX_ALGS 8u
#define SV_MAX_BODY (16u * 1024u)        /* POST /token body */
#define SV_MAX_CONFIG (256u * 1024u)     /* config file */
#define SV_MAX_CLIENTS_FILE (4u << 20)   /* clients file */
#define SV_MAX_CLIENTS 10000u
#define SV_MAX_CLIENT_NAME 128u
#define SV_MAX_AUDIENCES 16u
#define SV_MAX_AUDIENCE_LEN 512u
#define SV_MAX_SCOPES 64u
#define SV_MAX_SCOPE_LEN 128u
#define SV_MAX_SECRET_LEN 512u
#define SV_MIN_SECRET_LEN 32u
#define SV_MAX_PASSPHRASE 1024u
#define SV_MAX_FORM_PARAMS 32u
/* private_key_jwt (RFC 7523 §2.2): a client assertion */
#define SV_ASSERTION_TYPE "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#define SV_MAX_ASSERTION_ALGS 8u
/* clients with a jwks_uri in one configuration: each has a fetch thread */
#define SV_MAX_JWKS_URI_CLIENTS 256u
#define SV_ASSERTION_MAX_LIFETIME 300 /* exp at most this far ahead of now (s) */
#define SV_ASSERTION_LEEWAY 60        /* clock leeway of its exp, nbf, iat (s) */
#define SV_MAX_ASSERTION (8u * 1024u) /* bytes of the compact JWT */
#define SV_MAX_JTI 256u               /* bytes of its jti */
#define SV_JTI_SLOTS 65536u           /* assertion ids remembered (replay) */

/* Something another module hangs on a snapshot (the HTTP layer's prepared
 * responses), made on first use and freed with the snapshot: the snapshot
 * modules know nothing of what it is. */
typedef struct sv_attachment {
  void (*free)(struct sv_attachment *a);
} sv_attachment;

/* Free what hangs on a snapshot (from its destructor). */
static inline void sv_attachment_drop(_Atomic(sv_attachment *) *slot) {
  sv_attachment *a = atomic_load(slot);
  if (a != NULL) a->free(a);
}

/* The holder of the snapshot being served, for a type T that embeds
 * jk_snap_obj `obj` first (common/snapshot.h), with typed functions:
 *   T *T_acquire(void)     the current one with a reference (NULL: none yet)
 *   void T_release(T *)    let go of a reference (NULL: nothing)
 *   void T_install(T *)    serve it (the holder takes the caller's
 *                          reference; NULL: none); the previous one is
 *                          released */
#define SV_SNAP_HOLDER(T)                                                   \
  static jk_snap T##_holder = {.mu = PTHREAD_MUTEX_INITIALIZER, .cur = NULL}; \
  T *T##_acquire(void) { return (T *)jk_snap_acquire(&T##_holder); }        \
  void T##_release(T *x) {                                                  \
    if (x != NULL) jk_snap_release(&x->obj);                                \
  }                                                                         \
  void T##_install(T *x) { jk_snap_publish(&T##_holder, x ? &x->obj : NULL); }

/* ---------------------------------------------------------- secret.c */

#define SV_SECRET_CHARS 43u /* 32 bytes in base64url */
#define SV_PBKDF2_ITER 50000u /* PBKDF2-HMAC-SHA-256 iterations of new secret hashes */
#define SV_PBKDF2_ITER_MAX 10000000u
#define SV_SECRET_HASH_MAX 160u /* the longest stored form, with its NUL */

typedef struct sv_secret_hash {
  unsigned char salt[64];
  size_t salt_len;
  unsigned char mac[32];
  unsigned iter; /* PBKDF2 iterations; 0: the earlier HMAC form */
} sv_secret_hash;

/* 32 random bytes as base64url: out[44]. */
int sv_secret_generate(char out[SV_SECRET_CHARS + 1]);
/* "pbkdf2-sha256$<iterations>$<salt b64url>$<PBKDF2-HMAC-SHA-256 b64url>"
 * with a fresh 16-byte salt and SV_PBKDF2_ITER iterations (_iter: given,
 * 1..SV_PBKDF2_ITER_MAX).  out needs SV_SECRET_HASH_MAX bytes. */
int sv_secret_hash_new(const char *secret, size_t len, char *out, size_t cap);
int sv_secret_hash_new_iter(const char *secret, size_t len, unsigned iter, char *out, size_t cap);
/* Parse the stored form: the PBKDF2 one, or the earlier
 * "sha256$<salt>$<HMAC-SHA256(salt, secret)>". */
int sv_secret_hash_parse(const char *s, sv_secret_hash *h);
/* 1 when secret matches (constant time in the comparison), always with
 * the full hash.  Secrets outside SV_MIN_SECRET_LEN..SV_MAX_SECRET_LEN
 * never match.  h may be NULL (unknown client): a dummy hash as slow as a
 * real one is still computed and 0 returned. */
int sv_secret_check(const sv_secret_hash *h, const char *secret, size_t len);
/* sv_secret_check for the client `name` through the verification cache:
 * a (name, stored hash, secret) that matched before matches again without
 * the slow hash; the stored hash is part of the key, so a rotated secret
 * or a re-added client never matches an old entry.  Thread-safe. */
int sv_secret_verify(const char *name, const sv_secret_hash *h, const char *secret, size_t len);
/* The iterations of the dummy hash computed for unknown clients
 * (default SV_PBKDF2_ITER, as new secrets); the fuzz harness, whose
 * clients use 1 iteration, lowers it to stay fast. */
void sv_secret_set_dummy_iter(unsigned iter);
/* Forget every cached verification (tests); counters of the cache. */
void sv_secret_cache_clear(void);
void sv_secret_cache_stats(uint64_t *hits, uint64_t *misses);

/* ------------------------------------------------------------ form.c */

typedef struct sv_param {
  const char *name, *value; /* NUL-terminated, decoded, in the caller's buffer */
  size_t name_len, value_len;
} sv_param;

typedef struct sv_form {
  sv_param p[SV_MAX_FORM_PARAMS];
  size_t n;
} sv_form;

enum { SV_FORM_OK = 0, SV_FORM_MALFORMED = 1, SV_FORM_DUPLICATE = 2, SV_FORM_TOO_MANY = 3 };

/* Decode body[0..len) in place (the buffer needs len + 1 bytes): pairs
 * separated by '&', %XX escapes (two hex digits, nothing else), '+' as
 * space, decoded text must be UTF-8 without NUL or control characters.
 * Empty pairs are skipped; a parameter named twice is SV_FORM_DUPLICATE
 * (RFC 6749 §3.2).  Parameters with an empty value are kept (the caller
 * treats them as absent, RFC 6749 §3.1). */
int sv_form_parse(char *body, size_t len, sv_form *f, const char **why);
/* Value of name or NULL when absent or empty. */
const char *sv_form_get(const sv_form *f, const char *name);
/* 1 when the parameter is present, even with an empty value. */
int sv_form_has(const sv_form *f, const char *name);
/* Decode one form-urlencoded component in place (Basic credentials per RFC
 * 6749 §2.3.1).  Returns the new length or -1. */
long sv_form_decode(char *s, size_t len);
/* "Basic <b64(id:secret)>" -> id and secret, each form-urldecoded, into
 * buf (cap bytes).  Returns 0, -1 when the value is not Basic (other
 * scheme), -2 when malformed. */
int sv_basic_parse(const char *header, char *buf, size_t cap, const char **id, const char **secret,
                   size_t *secret_len);
/* RFC 6749 §3.3 scope-token syntax (NQCHAR, 1+ chars). */
int sv_scope_token_ok(const char *s, size_t n);

/* ------------------------------------------------------------ etag.c */

/* Strong ETag: quoted base64url SHA-256 of body; out[48]. */
void sv_etag(const void *body, size_t len, char out[48]);
/* RFC 9110 §13.1.2: 1 when the If-None-Match field value ("*" or a list
 * of entity-tags, weak comparison) matches etag; 0 when it does not or
 * the value is not valid (an invalid precondition is ignored). */
int sv_if_none_match(const char *field, const char *etag);

/* ---------------------------------------------------------- config.c */

enum {
  SV_SET_LISTEN = 1u << 0,
  SV_SET_ISSUER = 1u << 1,
  SV_SET_KEYRING = 1u << 2,
  SV_SET_CLIENTS = 1u << 3,
  SV_SET_PASSFILE = 1u << 4,
  SV_SET_PASSENV = 1u << 5,
  SV_SET_ALGS = 1u << 6,
  SV_SET_ROTATE_CHECK = 1u << 7,
  SV_SET_MAX_AGE = 1u << 8,
  SV_SET_TOKEN_TTL = 1u << 9,
  SV_SET_ROTATE_EVERY = 1u << 10,
  SV_SET_THREADS = 1u << 11,
  SV_SET_MAXCONN = 1u << 12,
  SV_SET_LOGLEVEL = 1u << 13,
  SV_SET_LEGACY = 1u << 14,
  SV_SET_TRANSITION = 1u << 15,
  SV_SET_DEMO = 1u << 16,
  SV_SET_CONFIG = 1u << 17,
  SV_SET_KEKFILE = 1u << 18,
  SV_SET_KEKENV = 1u << 19,
  SV_SET_HEADER_TIMEOUT = 1u << 20,
  SV_SET_MAXCONN_IP = 1u << 21,
  SV_SET_RATE_IP = 1u << 22,
  SV_SET_BURST_IP = 1u << 23,
  SV_SET_RATE_CLIENT = 1u << 24,
  SV_SET_BURST_CLIENT = 1u << 25,
  SV_SET_FAIL_COST = 1u << 26,
  SV_SET_LEEWAY = 1u << 27,
  SV_SET_PUBLISH_AHEAD = 1u << 28,
  SV_SET_CLIENT_JWKS_MIN_TTL = 1u << 29,
  SV_SET_CLIENT_JWKS_STALE_MAX = 1u << 30
};
#define SV_SET_BITS 31

/* A rate: `count` per `per` seconds (1, 60 or 3600); count 0 is off. */
typedef struct sv_rate {
  long long count;
  int64_t per;
} sv_rate;
/* "20/s", "600/m", "100/h", or "0" / "off". */
int sv_parse_rate(const char *s, sv_rate *out);

typedef struct sv_settings {
  uint32_t set; /* SV_SET_* of the fields given in this layer */
  int line[SV_SET_BITS]; /* per SV_SET_* bit: the config file's line that gave it; 0: not the file */
  char config[SV_PATH_MAX];
  char listen[256];
  char issuer[512];
  char keyring[SV_PATH_MAX];
  char clients[SV_PATH_MAX];
  char passphrase_file[SV_PATH_MAX];
  char passphrase_env[128];
  char kek_file[SV_PATH_MAX];
  char kek_env[128];
  char legacy_secret_file[SV_PATH_MAX];
  jwtkit_alg algs[SV_MAX_ALGS];
  size_t nalgs;
  int64_t rotate_check, max_age, token_ttl, rotate_every, transition_ttl;
  int64_t leeway, publish_ahead; /* keyring timing (publish_ahead 0: the keyring's default rule) */
  long long threads, max_connections;
  int64_t header_timeout;       /* seconds: a request's line, headers and body */
  long long max_connections_ip; /* per source address, 0: off */
  sv_rate rate_ip, rate_client; /* POST /token token buckets */
  long long burst_ip, burst_client, fail_cost;
  /* private_key_jwt clients' jwks_uri sets: shortest lifetime, and how long
   * past it a set is used while fetches fail */
  int64_t client_jwks_min_ttl, client_jwks_stale_max;
  jk_log_level log_level;
  int demo;
} sv_settings;

/* Defaults (nothing marked as set). */
void sv_settings_defaults(sv_settings *s);
/* Set one option by its config-file name ("max_age", "alg", ...), given
 * at `line` of the config file (0: on the command line).  Returns 0, or -1
 * with "name: what is wrong" in err ("unknown option ..." for a name that
 * is none). */
int sv_settings_set(sv_settings *s, const char *key, const char *value, int line, char *err, size_t cap);
/* Read a config file into s (a layer).  Errors are "FILE:LINE: message"
 * (or "FILE: message" for the file as a whole). */
int sv_settings_load(sv_settings *s, const char *path, char *err, size_t cap);
/* The same from text[0..len); path names it in messages. */
int sv_settings_parse(sv_settings *s, const char *text, size_t len, const char *path, char *err, size_t cap);
/* dst = dst overridden by every field set in src. */
void sv_settings_overlay(sv_settings *dst, const sv_settings *src);
/* Check what no single option can (two passphrase sources, KEKs for a
 * keyring that is not PostgreSQL, the keyring's timing rules across
 * max_age, token_ttl, leeway, rotate_every and publish_ahead) and complete
 * the settings (the default issuer from listen).  An error names where the
 * option was given ("serve.conf:LINE" or "--option").  Returns 0 or -1. */
int sv_settings_finish(sv_settings *s, char *err, size_t cap);
/* Where the option `name` (its SV_SET_* bit) was given: "FILE:LINE" of the
 * config file, "--name-with-dashes" for the command line, "" when it keeps
 * its default. */
void sv_settings_origin(const sv_settings *s, uint32_t bit, const char *name, char *out, size_t cap);
/* Issuer URL checks (http/https, host, no query/fragment/userinfo). */
int sv_issuer_ok(const char *s, char *err, size_t cap);

/* --------------------------------------------------------- clients.c */

typedef struct sv_client {
  char *name;
  sv_secret_hash hash;
  char *aud[SV_MAX_AUDIENCES];
  size_t naud;
  char *scopes[SV_MAX_SCOPES];
  size_t nscopes;
  int64_t ttl;     /* 0: the keyring's token TTL */
  jwtkit_alg alg;  /* UNSPEC: the first configured algorithm */
  int disabled;    /* 1: unauthorized_client */
  int line;        /* where its section starts */
  /* private_key_jwt instead of a secret: its public keys and the
   * algorithms its assertions may use; the verifier is built with the
   * configuration snapshot (audience: the token endpoint or the issuer) */
  jwtkit_jwks *jwks;
  /* ... or the URL they are fetched from (RFC 7591 jwks_uri; exclusive
   * with jwks); http:// only with allow_http_jwks, to a loopback address */
  char *jwks_uri;
  int allow_http_jwks;
  jwtkit_alg assertion_algs[SV_MAX_ASSERTION_ALGS];
  size_t nassertion_algs;
  jwtkit_verifier *assertion;
  struct sv_remote *remote; /* jwks_uri in a serving snapshot: its source (jwksuri.c) */
} sv_client;

typedef struct sv_clients {
  sv_client *v; /* sorted by name */
  size_t n;
} sv_clients;

/* Parse a clients file.  Errors are "FILE:LINE: message". */
int sv_clients_load(sv_clients *out, const char *path, char *err, size_t cap);
int sv_clients_parse(sv_clients *out, const char *text, size_t len, const char *path, char *err,
                     size_t cap);
void sv_clients_free(sv_clients *c);
const sv_client *sv_clients_find(const sv_clients *c, const char *name, size_t len);
/* Client names: [A-Za-z0-9._~-]{1,128}. */
int sv_client_name_ok(const char *s);
/* "15m", "2h", "7d", "90s": the largest unit that divides v. */
void sv_fmt_duration(int64_t v, char *out, size_t cap);
/* A client whose ttl exceeds the keyring's token_ttl gets tokens cut to
 * token_ttl: the warning naming the client, where it is defined, both
 * values (whose: "the keyring's") and the fix (1), or nothing (0). */
int sv_client_ttl_warning(const sv_client *c, int64_t token_ttl, const char *whose, const char *where, char *out,
                          size_t cap);
/* That warning logged (event client_ttl_cut) for every such client;
 * `path` names where they come from (FILE:LINE is added per client). */
void sv_clients_warn_ttl(const sv_clients *cs, int64_t token_ttl, const char *path);

/* --------------------------------------------------------- jwksuri.c */

/* private_key_jwt keys from a jwks_uri: the gateway core's JWK Set source
 * (services/gatecore: Cache-Control clamped, refresh ahead, one refetch per
 * cooldown on an unknown kid, stale-if-error up to a bound) with a fetch
 * thread of its own per client (services/fetch), so a request never
 * fetches. */
typedef struct sv_remote sv_remote;
/* https://HOST[:PORT]/PATH, or http:// to 127.0.0.0/8, [::1] or localhost
 * (the entry's allow_http_jwks decides), at most SV_MAX_JWKS_URI bytes, no
 * spaces, controls, userinfo or fragment.  0, or -1 with err. */
#define SV_MAX_JWKS_URI 512u
int sv_jwks_uri_ok(const char *url, char *err, size_t cap);
/* 1: client snapshots built from now on start their sources (a serving
 * process); 0 (the default): --check and the client commands never fetch. */
void sv_remote_set_live(int live);
int sv_remote_live(void);
/* The source of client c (its verifier policy from cs).  NULL when out of
 * memory. */
struct sv_confsnap;
sv_remote *sv_remote_new(const struct sv_confsnap *cs, const sv_client *c);
void sv_remote_free(sv_remote *r);
/* The verifier of the set published now, with a reference (release it with
 * sv_remote_verifier_release), or NULL with *why (no set yet, dropped past
 * the stale bound, unusable).  Never fetches, never waits. */
typedef struct sv_remote_verifier sv_remote_verifier;
sv_remote_verifier *sv_remote_verifier_get(sv_remote *r, const jwtkit_verifier **v, const char **why);
void sv_remote_verifier_release(sv_remote_verifier *h);
/* The fetches of every jwks_uri source since start, by result ("ok",
 * "not_modified", "http_error", "timeout", "too_large", "truncated",
 * "invalid", "empty", "connect_error", "tls_error", "network_error"). */
#define SV_REMOTE_RESULTS 11u
void sv_remote_fetch_counts(uint64_t out[SV_REMOTE_RESULTS], const char *names[SV_REMOTE_RESULTS]);
/* An unknown kid or no set: ask for a refetch (rate-limited by the core);
 * never waits. */
void sv_remote_refetch(sv_remote *r);
/* The assertion verifier of client c's policy over the keys `set`.  0, or
 * -1 with err. */
int sv_assertion_verifier(const struct sv_confsnap *cs, const sv_client *c, const jwtkit_jwks *set,
                          jwtkit_verifier **out, char *err, size_t cap);

/* --------------------------------------------------------- metrics.c */

enum sv_route {
  SV_R_JWKS = 0,
  SV_R_OPENID,
  SV_R_OAUTH,
  SV_R_TOKEN,
  SV_R_HEALTHZ,
  SV_R_METRICS,
  SV_R_OTHER,
  SV_R_COUNT
};

enum sv_token_error {
  SV_TE_INVALID_REQUEST = 0,
  SV_TE_INVALID_CLIENT,
  SV_TE_INVALID_GRANT,
  SV_TE_UNAUTHORIZED_CLIENT,
  SV_TE_UNSUPPORTED_GRANT_TYPE,
  SV_TE_INVALID_SCOPE,
  SV_TE_SERVER_ERROR,
  SV_TE_TEMPORARILY_UNAVAILABLE,
  SV_TE_COUNT
};

const char *sv_route_path(enum sv_route r);
const char *sv_token_error_name(enum sv_token_error e);

typedef struct sv_mint_counter sv_mint_counter;

void sv_metrics_init(void);
void sv_metrics_request(enum sv_route r, unsigned status);
void sv_metrics_token_error(enum sv_token_error e);
/* Counter slot for tokens minted with kid, taken by a snapshot that signs
 * with that key (looked up once per snapshot) and given back when the
 * snapshot goes (sv_metrics_mint_release).  A slot no snapshot holds lives
 * on while its kid is published, then it is freed with its series
 * (sv_metrics_mint_prune with the snapshot being served; the exposition
 * prunes too): /metrics holds series for published keys only. */
sv_mint_counter *sv_metrics_mint_slot(const char *kid, jwtkit_alg alg);
void sv_metrics_mint_release(sv_mint_counter *slot);
struct sv_keysnap;
void sv_metrics_mint_prune(const struct sv_keysnap *ks);
void sv_metrics_minted(sv_mint_counter *slot);
/* A keyring report line ("activated key ...") -> action counter. */
void sv_metrics_rotation_line(const char *line);
void sv_metrics_rotation_action(const char *action);
/* A stored keyring document refused ("unauthenticated", "rollback",
 * "missing"); and accepted again. */
void sv_metrics_keyring_rejected(const char *reason);
void sv_metrics_keyring_accepted(void);

/* What the HTTP layer knows of its connections, for the exposition. */
typedef struct sv_conn_metrics {
  unsigned open;                 /* open connections, reserve included */
  const char *const *reasons;    /* names of the closed[] counters */
  const uint64_t *closed;        /* connections closed by the guard, by reason */
  size_t nreasons;
  uint64_t reserve_admitted, reserve_refused;
  uint64_t throttled[2];         /* POST /token answered 429: by address, by client */
} sv_conn_metrics;

struct sv_keysnap;
/* The exposition text (from jk_malloc, free with jk_free); ks and conn
 * may be NULL. */
char *sv_metrics_render(const struct sv_keysnap *ks, const sv_conn_metrics *conn, int64_t now, size_t *len);

/* ------------------------------------------------------------ keys.c */

typedef struct sv_sig {
  jwtkit_alg alg;
  jwtkit_signer *signer; /* NULL: no active key for alg */
  jwtkit_key *key;       /* the keyring's key the signer was built from */
  sv_mint_counter *minted;
} sv_sig;

typedef struct sv_keysnap {
  jk_snap_obj obj;    /* first: the holder's reference count */
  jwtkit_keyring *kr; /* opened for this snapshot, never mutated: read-only use from any thread */
  uint64_t generation;
  jwtkit_keyring_timing timing;
  char *jwks;
  size_t jwks_len;
  char etag[48];
  sv_sig sig[SV_MAX_ALGS];
  size_t nsig;
  _Atomic(sv_attachment *) attached; /* the HTTP layer's prepared responses */
} sv_keysnap;

/* Build a snapshot from a freshly opened keyring (takes ownership of kr);
 * its signers are the keys active at `now`. */
int sv_keysnap_build(sv_keysnap **out, jwtkit_keyring *kr, const jwtkit_alg *algs, size_t nalgs, int64_t now);
/* Its holder (SV_SNAP_HOLDER). */
sv_keysnap *sv_keysnap_acquire(void);
void sv_keysnap_release(sv_keysnap *ks);
void sv_keysnap_install(sv_keysnap *ks);

/* The keyring side of the settings, handed to the rotation thread. */
typedef struct sv_keycfg {
  char dir[SV_PATH_MAX]; /* a directory or a postgres:// URL */
  char where[SV_PATH_MAX]; /* dir with any password masked, for logs */
  char *passphrase; /* malloc'd, wiped on free; NULL: none */
  unsigned char (*keks)[32]; /* PostgreSQL keyring KEKs (jwtkit_kek_parse) */
  size_t nkeks;
  jwtkit_alg algs[SV_MAX_ALGS];
  size_t nalgs;
  int64_t rotate_check;
  jwtkit_keyring_timing timing; /* used at creation */
  uint32_t timing_set;          /* SV_SET_MAX_AGE | ... given explicitly */
  int clients_pg;               /* the clients live in the keyring's database: refreshed with the keyring */
} sv_keycfg;

void sv_keycfg_free(sv_keycfg *k);
/* The keyring side of settings s: location, algorithms, timing, and the
 * passphrase and KEKs read from where s names them (serve.c).  0 or -1. */
int sv_keycfg_make(const sv_settings *s, sv_keycfg *kc, char *err, size_t cap);
/* The token_ttl tokens are cut to: the keyring's (*from_keyring 1) when
 * the keyring s names can be read, else s's own (serve.c). */
int64_t sv_keyring_token_ttl(const sv_settings *s, int *from_keyring);
/* Create the keyring when missing, open it, add keys for configured
 * algorithms that have none.  Returns 0, or the exit code to use. */
int sv_keyring_prepare(const sv_keycfg *kc, jwtkit_keyring **out, char *err, size_t cap);
/* Open the keyring again (read-only handle), build a snapshot and install
 * it; *gen receives its generation.  0 or -1 (logged). */
int sv_keysnap_reload(const sv_keycfg *kc, uint64_t *gen);
/* Start/stop the rotation thread; it owns kr from now on. */
int sv_rotation_start(const sv_keycfg *kc, jwtkit_keyring *kr);
/* Hand a new keyring configuration to the thread (SIGHUP); it re-opens the
 * keyring and swaps a fresh snapshot in. */
void sv_rotation_reload(sv_keycfg *kc);
void sv_rotation_stop(void);

/* ------------------------------------------------------- keyhealth.c */

/* A signature's outcome with key (the active key of alg): recorded when
 * key is a PKCS#11 token key.  Returns 1 when it is a token key that
 * failed (answer 503 with Retry-After: the token may come back). */
int sv_keyhealth_signed(jwtkit_alg alg, const jwtkit_key *key, jwtkit_err rc, const jwtkit_errinfo *ei);
/* 1 when key is a token key known down (why: "reason: message"). */
int sv_keyhealth_down(jwtkit_alg alg, const jwtkit_key *key, char *why, size_t cap);
/* jwtkit_serve_signing_key_up and jwtkit_serve_sign_failures_total. */
void sv_keyhealth_render(jk_buf *b, const sv_keysnap *ks);
/* The probe thread (started with the rotation thread). */
void sv_keyhealth_start(void);
void sv_keyhealth_stop(void);
#define SV_TOKEN_RETRY_AFTER 2 /* seconds, for a token key that failed */

/* ------------------------------------------------------- ratelimit.c */

/* Token buckets of POST /token (the rates come from the settings of each
 * call, so a reload applies at once).  Thread-safe. */
typedef struct sv_limiter sv_limiter;
enum { SV_RL_BY_ADDR = 1, SV_RL_BY_CLIENT = 2 };
sv_limiter *sv_limiter_new(void);
void sv_limiter_free(sv_limiter *l);
/* The bucket key of a struct sockaddr (IPv4 mapped; IPv6 by its /64). */
void sv_limiter_key_addr(const void *sockaddr, unsigned char key[16]);
/* Before the work: 0 when admitted, else SV_RL_BY_* with the seconds to
 * wait in *retry_after.  addr / client may be NULL (not limited); client is
 * a registered client's name. */
int sv_limiter_admit(sv_limiter *l, const sv_settings *s, const unsigned char addr[16], const char *client,
                     int64_t now_ms, int64_t *retry_after);
/* After the answer: take `cost` tokens. */
void sv_limiter_charge(sv_limiter *l, const sv_settings *s, const unsigned char addr[16], const char *client,
                       long long cost, int64_t now_ms);
/* Requests refused so far: which 0 by address, 1 by client. */
uint64_t sv_limiter_throttled(const sv_limiter *l, int which);

/* ------------------------------------------------------- discovery.c */

typedef struct sv_confsnap {
  jk_snap_obj obj;            /* first: the holder's reference count */
  sv_settings settings;
  sv_clients clients;
  char token_endpoint[600], jwks_uri[600];
  char *issuer_path;          /* path part of the issuer ("" when none) */
  char *openid, *oauth;       /* discovery documents */
  size_t openid_len, oauth_len;
  char openid_etag[48], oauth_etag[48];
  int legacy_loaded;          /* a legacy HS256 secret is configured (never published) */
  int clients_pg;             /* the clients come from the PostgreSQL clients table */
  uint64_t clients_revision;  /* ... at this revision */
  _Atomic(sv_attachment *) attached; /* the HTTP layer's prepared responses */
} sv_confsnap;

/* Build the snapshot of settings and clients (takes the clients). */
int sv_confsnap_build(sv_confsnap **out, const sv_settings *s, sv_clients *clients, int legacy_loaded,
                      char *err, size_t cap);
/* Its holder (SV_SNAP_HOLDER).  Serving threads install with
 * sv_confsnap_replace or sv_confsnap_install_if, which take one lock, so a
 * reload (SIGHUP) and a refresh of the PostgreSQL clients never undo each
 * other. */
sv_confsnap *sv_confsnap_acquire(void);
void sv_confsnap_release(sv_confsnap *cs);
void sv_confsnap_install(sv_confsnap *cs);
void sv_confsnap_replace(sv_confsnap *cs);
/* Install cs when the served snapshot is still `expected` (the caller
 * holds a reference on it); otherwise cs is released.  0 or -1. */
int sv_confsnap_install_if(sv_confsnap *cs, const sv_confsnap *expected);
/* A snapshot with cur's settings and other clients (taken), from the
 * PostgreSQL clients table at `revision`. */
int sv_confsnap_rebuild_clients(const sv_confsnap *cur, sv_clients *clients, uint64_t revision, sv_confsnap **out,
                                char *err, size_t cap);

/* --------------------------------------------------------- assertion.c */

/* Remember the assertion id jti of client until `until` (Unix seconds):
 * 0 when it was new, 1 when it is remembered (a replay), -1 when the table
 * has no room for it (SV_JTI_SLOTS ids not yet expired near its slot).
 * Thread-safe; at most SV_JTI_SLOTS ids, each kept until its exp plus the
 * leeway. */
int sv_jti_remember(const char *client, const char *jti, size_t jti_len, int64_t until, int64_t now);
/* Forget every id (tests). */
void sv_jti_reset(void);
/* The same for the replicas of a PostgreSQL keyring at `url`: one row per
 * id in jwtkit_client_jti (a unique insert; an expired row is taken over),
 * on a connection of the calling thread's own.  0 new, 1 replay, -1 the
 * database cannot tell (refuse: fail closed). */
int sv_pg_jti_remember(const char *url, const char *client, const char *jti, size_t jti_len, int64_t until,
                       int64_t now);
/* Delete the expired ids (the rotation thread, at each check). */
void sv_pg_jti_cleanup(const sv_keycfg *kc, int64_t now);
/* Create or upgrade the tables (jk_pg_lock_migrate) in a transaction of
 * its own: an issuer whose clients need jwtkit_client_jti makes sure it is
 * there.  0, or -1 with err. */
int sv_pg_migrate(const sv_keycfg *kc, char *err, size_t cap);

/* ------------------------------------------------------- clients_pg.c */

/* Clients in the PostgreSQL keyring's database (kc->dir the URL, kc->keks
 * its KEKs): the tables, their MAC and revisions are described in
 * clients_pg.c and docs/serve.md. */
/* Load every client, authenticated, at a revision not older than `seen`.
 * 0, or -1 with err (and *reason "unauthenticated" or "rollback" when the
 * stored set itself is refused). */
int sv_clients_pg_load(const sv_keycfg *kc, uint64_t seen, sv_clients *out, uint64_t *revision, const char **reason,
                       char *err, size_t cap);
enum { SV_PG_ADD, SV_PG_REMOVE, SV_PG_SECRET };
typedef struct sv_pg_change {
  int kind;                /* SV_PG_* */
  const char *name;
  const char *secret_hash; /* ADD, SECRET */
  const char *settings;    /* ADD: the client's other lines in the clients file's dialect */
} sv_pg_change;
/* One change in one transaction under the keyring's lock (migrating the
 * tables first), the set re-authenticated under the first KEK at the next
 * revision, NOTIFY sent.  The exit status (SV_EXIT_*), with err. */
int sv_clients_pg_change(const sv_keycfg *kc, const sv_pg_change *ch, char *err, size_t cap);
/* The issuer: the newest revision served; note one served. */
uint64_t sv_clients_pg_seen(void);
void sv_clients_pg_served(uint64_t revision);
/* From the rotation thread, after a change notification or at each check:
 * read and authenticate the clients; serve them when their revision moved
 * (a refused set is logged once, clients_rejected, and the served one kept). */
void sv_clients_pg_refresh(const sv_keycfg *kc);
/* 1 when the clients of settings s live in the PostgreSQL keyring's
 * database: a PostgreSQL keyring and no `clients` file named. */
int sv_settings_clients_in_pg(const sv_settings *s);

/* ----------------------------------------------------------- route.c */

/* The endpoints without I/O.  The libmicrohttpd glue (and the fuzz harness
 * fuzz/fuzz_serve_http.c) reads the request through sv_headers and turns
 * an sv_answer into a response. */

/* Request header fields: libmicrohttpd's connection, or a list. */
typedef struct sv_headers {
  /* the first field called name (case-insensitive), NULL when absent */
  const char *(*get)(void *ctx, const char *name);
  /* fn for every field in order, until fn returns 0 */
  void (*each)(void *ctx, int (*fn)(void *cls, const char *name, const char *value), void *cls);
  void *ctx;
} sv_headers;

enum { SV_M_GET, SV_M_HEAD, SV_M_POST, SV_M_OTHER };

typedef struct sv_answer {
  unsigned status;   /* 0: no answer */
  int token_error;   /* enum sv_token_error: an RFC 6749 §5.2 JSON error; -1: none */
  const char *text;  /* static: the error_description of a token error (may be
                        NULL), else the text/plain body */
  const char *allow; /* Allow field, or NULL */
  char *json;        /* the 200 body of the token endpoint (jk_malloc'd; holds a
                        token: sv_answer_free wipes it) */
  int no_answer;     /* out of memory: close the connection */
  char client_id[SV_MAX_CLIENT_NAME + 1]; /* a registered client the request named (logs) */
  char kid[100];     /* the key that signed the token (logs) */
  int throttled;     /* SV_RL_BY_* when refused by a rate limit (429) */
  int64_t retry_after; /* seconds (Retry-After), 0: none */
} sv_answer;

void sv_answer_init(sv_answer *a);
void sv_answer_free(sv_answer *a);
/* Set a as an RFC 6749 §5.2 error answer / a text/plain answer. */
void sv_answer_token_error(sv_answer *a, unsigned status, enum sv_token_error e, const char *desc,
                           const char *allow);
void sv_answer_text(sv_answer *a, unsigned status, const char *text, const char *allow);
/* The JSON body of a token error: {"error":..,"error_description":..}
 * (jk_malloc'd, NULL when out of memory). */
char *sv_token_error_body(enum sv_token_error e, const char *desc, size_t *len);

typedef struct sv_head {
  enum sv_route route;
  int method;       /* SV_M_* */
  long long length; /* Content-Length, -1 when absent */
  int too_large;    /* Content-Length over SV_MAX_BODY or not a number */
} sv_head;

/* Route, method, Content-Type (token endpoint) and Content-Length checks on
 * the request line and header fields, before any body.  cs may be NULL.
 * Returns 1 when the request is answered now (*a), 0 when the body is to
 * be read. */
int sv_http_head(const sv_confsnap *cs, const char *method, const char *url, const sv_headers *h, sv_head *hd,
                 sv_answer *a);
/* The answer to a body over SV_MAX_BODY. */
void sv_http_too_large(enum sv_route route, sv_answer *a);
/* 1 when an If-None-Match field of h matches etag. */
int sv_http_not_modified(const sv_headers *h, const char *etag);

/* ----------------------------------------------------------- token.c */

/* POST /token with body[0..len) (decoded in place: the buffer needs len + 1
 * bytes; NULL when len is 0): client authentication (Basic or
 * client_secret_post), grant type, scope, then a token signed at `now` by
 * the active key of ks.  Always answers (*a). */
void sv_token_respond(const sv_confsnap *cs, const sv_keysnap *ks, const sv_headers *h, char *body, size_t len,
                      int64_t now, sv_answer *a);
/* A token whose signature is left to the caller (sv_token_mint, on a
 * signer thread): its key is a token key, which may wait for a session. */
typedef struct sv_mint {
  int pending;          /* 1: *a is not set, sign with sv_token_mint */
  const sv_client *cl;  /* in the configuration snapshot */
  char *scope;          /* the granted scope (jk_malloc'd) */
  size_t scope_len;
  int64_t now;
} sv_mint;
/* sv_token_respond behind the token buckets of l (the settings' rates) for the
 * source address addr (16 bytes, sv_limiter_key_addr; NULL: none): a
 * request over a limit is answered 429 with Retry-After before the client
 * is authenticated; every answer is then charged (sv_limiter_charge).
 * defer NULL: the token is signed here.  Else a request whose signing key
 * is a token key is left pending in *defer (a is then unset). */
void sv_token_respond_limited(const sv_confsnap *cs, const sv_keysnap *ks, const sv_headers *h, char *body,
                              size_t len, int64_t now, sv_limiter *l, const unsigned char *addr, int64_t now_ms,
                              sv_mint *defer, sv_answer *a);
/* Sign the pending token of m with the snapshots it was decided on; frees
 * m's parts.  Always answers (*a). */
void sv_token_mint(const sv_confsnap *cs, const sv_keysnap *ks, sv_mint *m, sv_answer *a);
void sv_mint_free(sv_mint *m);

/* ----------------------------------------------------------- signq.c */

/* The signer threads of token keys: a job's connection is suspended until
 * a signer thread has signed (waiting for a session if need be). */
#define SV_SIGNERS 8       /* signer threads at most (started on demand) */
#define SV_SIGN_QUEUE 256  /* jobs waiting at most; beyond: 503 */
typedef struct sv_signjob {
  sv_confsnap *cs; /* the job's references */
  sv_keysnap *ks;
  sv_mint m;
  sv_answer a;     /* set when done */
  void *conn;      /* handed to the resume callback */
  struct sv_signjob *next;
} sv_signjob;
/* resume(conn) is called once a job is answered. */
void sv_signq_init(void (*resume)(void *conn));
/* Queue j, calling park(conn) first under the queue's lock (so a resume
 * cannot come before it).  0 when queued; -1 when the queue is full or
 * stopping (nothing called, j untouched). */
int sv_signq_submit(sv_signjob *j, void (*park)(void *conn));
/* Answer the jobs still queued 503 (not signed), wait for the running
 * ones, end the threads.  Every queued connection has been resumed then. */
void sv_signq_stop(void);
/* Jobs queued or being signed. */
unsigned sv_signq_pending(void);
/* Free a job's references and parts (the answer too). */
void sv_signjob_free(sv_signjob *j);

/* ---------------------------------------------------------- reqlog.c */

#define SV_LOG_INTERVAL_MS 10000 /* the interval of the summary lines */

/* What the log line of a request says (NULL strings are left out;
 * termination -1: completed). */
typedef struct sv_reqlog {
  const char *method, *path, *remote, *client_id, *kid, *error, *throttled;
  unsigned status; /* 0: none (the client went away) */
  int64_t duration_us;
  int termination;
} sv_reqlog;

/* The request's line, or only its count in the interval's summary. */
void sv_reqlog_write(const sv_reqlog *r, int64_t now_ms);
/* End the interval with its summary line when it is over (now, with
 * force). */
void sv_reqlog_flush(int64_t now_ms, int force);

/* ------------------------------------------------------------ http.c */

typedef struct sv_server sv_server;
/* Start listening (settings: listen, threads, max_connections). */
int sv_http_start(sv_server **out, const sv_settings *s, char *err, size_t cap);
/* Graceful stop: stop accepting, wait up to grace_ms for in-flight
 * requests, close everything. */
void sv_http_stop(sv_server *srv, int grace_ms);

/* ----------------------------------------------------------- serve.c */

/* "jwtkit serve: MESSAGE" and a pointer to --help on stderr; returns
 * SV_EXIT_USAGE. */
int sv_usage_error(const char *fmt, ...) JK_PRINTF(1, 2);

/* ---------------------------------------------------- clients_admin.c */

/* `jwtkit serve client ...` (argv[1] is "client"): the exit status. */
int sv_client_admin_main(int argc, char **argv);

#endif
