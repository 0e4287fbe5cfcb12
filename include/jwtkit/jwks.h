/*
 * jwtkit/jwks.h - JWK Sets (RFC 7517 §5).
 *
 * A set holds keys by reference; kids are unique within a set (a key
 * without kid may appear, but at most one such key per algorithm, so
 * kid-less lookup stays unambiguous).  Export is public-only and never
 * contains "oct" (HMAC) keys: secrets are never published.
 * A set is immutable once shared; building it is single-threaded.
 */
#ifndef JWTKIT_JWKS_H
#define JWTKIT_JWKS_H

#include <stddef.h>

#include "error.h"
#include "jwt.h"
#include "key.h"

#ifdef __cplusplus
extern "C" {
#endif

#define JWTKIT_MAX_JWKS_BYTES (1u << 20) /* JSON text of a set */
#define JWTKIT_MAX_JWKS_KEYS 256u

typedef struct jwtkit_jwks jwtkit_jwks;

jwtkit_jwks *jwtkit_jwks_new(void);
void jwtkit_jwks_free(jwtkit_jwks *set);

/* Add a key (the set takes a reference).  JWTKIT_ERR_INVALID_ARG when its
 * kid is already in the set. */
jwtkit_err jwtkit_jwks_add(jwtkit_jwks *set, jwtkit_key *key);

/* Called for every key an import skips, with its index in "keys" and why. */
typedef void (*jwtkit_jwks_skip_fn)(void *ctx, size_t index, const jwtkit_errinfo *why);

/*
 * Parse {"keys":[...]}.  "oct" (secret) keys are always skipped: a set of
 * public keys must never introduce an HMAC key.  A key whose kty, crv or alg jwtkit does not
 * support, or whose "use" is not "sig", is skipped and reported through
 * `skip` (may be NULL); a key that claims a supported type but is broken
 * (bad base64url, point not on the curve, RSA < 2048 bits) is skipped the
 * same way.  RSA keys without "alg" get `rsa_default` (JWTKIT_ALG_UNSPEC:
 * skipped, because RS* and PS* cannot be told apart).  A duplicate kid fails
 * the whole set (JWTKIT_ERR_INVALID_KEY), as does text that is not a JWK Set.
 * A set in which every key was skipped is returned empty (count 0).
 */
JWTKIT_NODISCARD jwtkit_err jwtkit_jwks_parse(jwtkit_jwks **out, const char *json, size_t len,
                                              jwtkit_alg rsa_default, jwtkit_jwks_skip_fn skip,
                                              void *skip_ctx, jwtkit_errinfo *info);

size_t jwtkit_jwks_count(const jwtkit_jwks *set);
/* Borrowed pointer (valid while the set lives); NULL past the end. */
jwtkit_key *jwtkit_jwks_get(const jwtkit_jwks *set, size_t i);
/* Exact byte match on kid; NULL when absent. */
jwtkit_key *jwtkit_jwks_find(const jwtkit_jwks *set, const char *kid, size_t kid_len);

/* {"keys":[...]} with public members only; oct keys are left out. */
JWTKIT_NODISCARD jwtkit_err jwtkit_jwks_to_json(const jwtkit_jwks *set, char **json, size_t *len);

/* Trust every key of the set in a policy (each keeps its own algorithm). */
jwtkit_err jwtkit_policy_add_jwks(jwtkit_policy *p, const jwtkit_jwks *set);

#ifdef __cplusplus
}
#endif
#endif
