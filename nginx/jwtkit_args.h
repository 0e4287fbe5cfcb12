/*
 * nginx/jwtkit_args.h - what ngx_http_jwtkit_module parses and checks
 * itself, in plain C without nginx types (unit-tested and fuzzed on its
 * own): auth_jwt_require_claim (present / equals / contains), the realm of
 * auth_jwt and the WWW-Authenticate challenges built from it.  Everything
 * else a directive says is checked by the gateway core's vocabulary
 * (gw_route_set).  Nothing here allocates.
 */
#ifndef JWTKIT_NGX_ARGS_H
#define JWTKIT_NGX_ARGS_H

#include <stddef.h>

#include "jwtkit/jwtkit.h"

#define JKA_MAX_CLAIM_NAME 127u
#define JKA_MAX_VALUE 1024u
#define JKA_MAX_REALM 256u

typedef enum jka_op { JKA_PRESENT = 0, JKA_EQUALS, JKA_CONTAINS } jka_op;

/* One auth_jwt_require_claim: name and value point into the caller's
 * argument strings, which must outlive it. */
typedef struct jka_claim_req {
  const char *name;
  size_t name_len;
  jka_op op;
  const char *value; /* NULL for JKA_PRESENT */
  size_t value_len;
} jka_claim_req;

/* auth_jwt_require_claim NAME | NAME equals VALUE | NAME contains VALUE.
 * args[i] are NUL-free byte strings of lens[i] bytes.  0, or -1 with a
 * sentence in err. */
int jka_claim_req_parse(const char *const *args, const size_t *lens, size_t nargs, jka_claim_req *out, char *err,
                        size_t cap);
/* 1 when the verified claims meet the requirement, 0 when not:
 *   present   the claim exists and is not null
 *   equals    a string claim equal to VALUE, or another claim whose JSON
 *             text is VALUE (true, 42)
 *   contains  a string claim whose space-separated words include VALUE
 *             (an OAuth scope), or an array of strings with an item VALUE */
int jka_claim_req_holds(const jka_claim_req *q, const jwtkit_claims *cl);
/* The same on a payload's JSON text: the verified claims' (jwtkit_claims_json),
 * or a token cache hit's, decoded from the token that was verified.  0
 * when the text is not a strict JSON object. */
int jka_claim_req_holds_json(const jka_claim_req *q, const char *json, size_t len);

/* auth_jwt_legacy_hs256 secret_file=PATH deadline=TIME (either order, each
 * once): *file and *deadline point into args.  0, or -1 with err.  The
 * values themselves are checked by the core (the secret-file rule, RFC 3339). */
int jka_legacy_parse(const char *const *args, const size_t *lens, size_t nargs, const char **file, size_t *file_len,
                     const char **deadline, size_t *deadline_len, char *err, size_t cap);

/* auth_jwt_jwks_settings KEY=VALUE ...: one argument split at its first
 * '='.  *key is one of the settings below; the value is checked by the
 * core (gw_config_set "jwks_" KEY) or, for "unavailable", here (401 or
 * 503: *status).  0, or -1 with err. */
int jka_setting_split(const char *arg, size_t len, const char **key, size_t *key_len, const char **value,
                      size_t *value_len, char *err, size_t cap);
/* "unavailable=401|503": 0 with *status, or -1 with err. */
int jka_unavailable(const char *v, size_t n, unsigned *status, char *err, size_t cap);

/* The realm of auth_jwt: 1..JKA_MAX_REALM printable ASCII bytes without
 * '"' and '\' (it goes into a quoted-string unchanged).  0, or -1 with err. */
int jka_realm_check(const char *s, size_t n, char *err, size_t cap);

typedef enum jka_challenge_kind {
  JKA_CH_MISSING = 0, /* no token: no error attribute (RFC 6750 3.1) */
  JKA_CH_INVALID,     /* error="invalid_token" */
  JKA_CH_SCOPE        /* error="insufficient_scope" */
} jka_challenge_kind;
/* Bearer realm="REALM"[, error="..."] into out; the length, or -1 when
 * cap is too small. */
long jka_challenge(char *out, size_t cap, const char *realm, size_t realm_len, jka_challenge_kind k);

/* At most `burst` log lines per `interval_ms` (a window that starts with
 * its first line); the rest are counted, to be summarised. */
typedef struct jka_loglimit {
  int64_t interval_ms;
  uint32_t burst;
  int64_t window_ms; /* start of the current window; 0: none yet */
  uint32_t used;
  uint64_t suppressed;
} jka_loglimit;
/* 1: write this line; 0: suppressed (counted). */
int jka_loglimit_allow(jka_loglimit *l, int64_t now_ms);
/* The lines suppressed in a window that is over (then counting starts
 * again), or 0. */
uint64_t jka_loglimit_take(jka_loglimit *l, int64_t now_ms);

/* Printable-ASCII copy of s for a log line: other bytes become '?', at
 * most cap - 1 bytes, NUL-terminated.  The length written. */
size_t jka_log_safe(char *out, size_t cap, const char *s, size_t n);

#endif
