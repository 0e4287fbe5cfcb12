/*
 * jwtkit/jwt.h - sign and verify compact JWS / JWT.
 *
 * Signing:   jwtkit_signer (prepared once, thread-safe) or jwtkit_sign().
 * Claims:    jwtkit_claimset builds a claims object with the registered-claim
 *            helpers (iat, nbf, exp, jti).
 * Verifying: a mutable jwtkit_policy is turned into an immutable
 *            jwtkit_verifier, which any number of threads may use at once.
 *            jwtkit_verify() hands back a jwtkit_claims only when the
 *            signature AND every claim check passed; on failure *claims is
 *            NULL.  The signature is checked before the claims, so a forged
 *            token that is also expired reports JWTKIT_ERR_BAD_SIGNATURE.
 */
#ifndef JWTKIT_JWT_H
#define JWTKIT_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "key.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Limits (documented defaults). */
#define JWTKIT_DEFAULT_MAX_TOKEN 65536u /* bytes of compact token */
#define JWTKIT_DEFAULT_MAX_HEADER 16384u /* bytes of encoded protected header (an x5c chain of ~8 certificates) */
#define JWTKIT_DEFAULT_MAX_HEADER_VALUES 128u /* JSON values (members, array items) in the header */
#define JWTKIT_MAX_HEADER_LIMIT (1u << 20)    /* largest jwtkit_policy_set_max_header bytes */
#define JWTKIT_MAX_HEADER_VALUES_LIMIT 4096u  /* largest jwtkit_policy_set_max_header values */
#define JWTKIT_MAX_JSON_DEPTH 32u       /* nesting of arrays/objects */
#define JWTKIT_DEFAULT_LEEWAY 60        /* seconds */
#define JWTKIT_MAX_LEEWAY 300           /* seconds */

/* ---------------------------------------------------------------- sign */

typedef struct jwtkit_sign_opts {
  /* "typ" header value; NULL -> "JWT"; "" -> no typ member. */
  const char *typ;
  /* "kid" header value; NULL -> the key's kid (if any); "" -> no kid. */
  const char *kid;
  /* Extra protected header members as a JSON object text ("{...}") or NULL.
   * "alg" may not appear; "typ"/"kid" may not appear twice; "crit", "b64"
   * and the JWE-only members (enc, zip, epk, apu, apv, iv, tag, p2s, p2c)
   * are refused because jwtkit would not verify such a token. */
  const char *extra_header;
} jwtkit_sign_opts;

typedef struct jwtkit_signer jwtkit_signer;

/* Prepare a signer for key (must be able to sign).  The header is encoded
 * once.  opts may be NULL.  The signer holds a reference to the key. */
JWTKIT_NODISCARD jwtkit_err jwtkit_signer_new(jwtkit_signer **out, jwtkit_key *key,
                                              const jwtkit_sign_opts *opts,
                                              jwtkit_errinfo *info);
void jwtkit_signer_free(jwtkit_signer *s);

/* Sign claims (a JSON object text, checked as strictly as on verify) and
 * return the compact token, NUL-terminated, freed with jwtkit_free().
 * Thread-safe. */
JWTKIT_NODISCARD jwtkit_err jwtkit_signer_sign(const jwtkit_signer *s, const char *claims,
                                               size_t claims_len, char **token,
                                               size_t *token_len, jwtkit_errinfo *info);

/* Same as above into a caller buffer: *token_len is in/out (capacity in,
 * length out, excluding NUL).  JWTKIT_ERR_TOO_LARGE when it does not fit,
 * with the needed size (including NUL) in *token_len. */
JWTKIT_NODISCARD jwtkit_err jwtkit_signer_sign_buf(const jwtkit_signer *s, const char *claims,
                                                   size_t claims_len, char *token,
                                                   size_t *token_len, jwtkit_errinfo *info);

/* One-shot: signer_new + sign + free. */
JWTKIT_NODISCARD jwtkit_err jwtkit_sign(jwtkit_key *key, const jwtkit_sign_opts *opts,
                                        const char *claims, size_t claims_len, char **token,
                                        size_t *token_len, jwtkit_errinfo *info);

/* ------------------------------------------------------------ claimset */

typedef struct jwtkit_claimset jwtkit_claimset;

jwtkit_claimset *jwtkit_claimset_new(void);
void jwtkit_claimset_free(jwtkit_claimset *cs);

/* Setting a name again replaces its value.  Names and string values must be
 * valid UTF-8 without NUL.  Every setter returns its error AND keeps the
 * first one in the claimset: jwtkit_claimset_to_json() and
 * jwtkit_signer_sign_claimset() then fail with it, so a claimset that lost
 * a member is never signed. */
JWTKIT_NODISCARD jwtkit_err jwtkit_claimset_set_string(jwtkit_claimset *cs, const char *name, const char *value);
JWTKIT_NODISCARD jwtkit_err jwtkit_claimset_set_int(jwtkit_claimset *cs, const char *name, int64_t value);
JWTKIT_NODISCARD jwtkit_err jwtkit_claimset_set_bool(jwtkit_claimset *cs, const char *name, int value);
/* value is JSON text, validated strictly. */
JWTKIT_NODISCARD jwtkit_err jwtkit_claimset_set_json(jwtkit_claimset *cs, const char *name, const char *value,
                                    size_t len);
/* Merge every member of a JSON object text (later calls replace). */
JWTKIT_NODISCARD jwtkit_err jwtkit_claimset_merge_json(jwtkit_claimset *cs, const char *object, size_t len);
/* Append to "aud": one audience stays a string, two or more become an array. */
JWTKIT_NODISCARD jwtkit_err jwtkit_claimset_add_audience(jwtkit_claimset *cs, const char *aud);
/* iat = now, exp = now + ttl (ttl > 0). */
JWTKIT_NODISCARD jwtkit_err jwtkit_claimset_set_lifetime(jwtkit_claimset *cs, int64_t now, int64_t ttl);
/* jti = 128 random bits, base64url (22 chars). */
JWTKIT_NODISCARD jwtkit_err jwtkit_claimset_set_jti(jwtkit_claimset *cs);
/* Serialise (members in insertion order).  Free with jwtkit_free(). */
JWTKIT_NODISCARD jwtkit_err jwtkit_claimset_to_json(const jwtkit_claimset *cs, char **json, size_t *len);

JWTKIT_NODISCARD jwtkit_err jwtkit_signer_sign_claimset(const jwtkit_signer *s,
                                                        const jwtkit_claimset *cs,
                                                        char **token, size_t *token_len,
                                                        jwtkit_errinfo *info);

/* -------------------------------------------------------------- verify */

typedef struct jwtkit_policy jwtkit_policy;
typedef struct jwtkit_verifier jwtkit_verifier;
typedef struct jwtkit_claims jwtkit_claims;

/* A clock returns Unix seconds. */
typedef int64_t (*jwtkit_clock_fn)(void *ctx);

/* How a token without "kid" finds its key. */
typedef enum jwtkit_kidless {
  JWTKIT_KIDLESS_SINGLE = 0, /* default: only if exactly one key fits the alg */
  JWTKIT_KIDLESS_REJECT = 1  /* a token must carry a kid */
} jwtkit_kidless;

jwtkit_policy *jwtkit_policy_new(void);
void jwtkit_policy_free(jwtkit_policy *p);

/* Every setter below returns its error AND keeps the first one in the
 * policy: jwtkit_verifier_new() then fails with that error, so a policy
 * that lost an issuer, audience or key (out of memory, a bad argument)
 * never becomes a verifier that checks less than the caller asked for. */

/* Accepted algorithms (required: a policy with none cannot be built). */
JWTKIT_NODISCARD jwtkit_err jwtkit_policy_allow_alg(jwtkit_policy *p, jwtkit_alg alg);
/* Add a trusted key (the policy takes its own reference).  Its alg must be
 * allowed by the time the verifier is built. */
JWTKIT_NODISCARD jwtkit_err jwtkit_policy_add_key(jwtkit_policy *p, jwtkit_key *key);
/* Accepted issuers ("iss" must equal one, byte for byte).  None: not checked. */
JWTKIT_NODISCARD jwtkit_err jwtkit_policy_add_issuer(jwtkit_policy *p, const char *iss);
/* Accepted audiences ("aud", string or array, must contain one).  With none
 * configured a token that carries "aud" is rejected (RFC 7519 §4.1.3) unless
 * jwtkit_policy_ignore_audience() was called. */
JWTKIT_NODISCARD jwtkit_err jwtkit_policy_add_audience(jwtkit_policy *p, const char *aud);
JWTKIT_NODISCARD jwtkit_err jwtkit_policy_ignore_audience(jwtkit_policy *p);
/* Expected "typ" header, compared as RFC 7515 §4.1.9 says (ASCII case
 * insensitive, "application/" prefix optional).  NULL: not checked. */
JWTKIT_NODISCARD jwtkit_err jwtkit_policy_set_typ(jwtkit_policy *p, const char *typ);
/* Expected "sub".  NULL: not checked. */
JWTKIT_NODISCARD jwtkit_err jwtkit_policy_set_subject(jwtkit_policy *p, const char *sub);
/* A claim that must be present (any value). */
JWTKIT_NODISCARD jwtkit_err jwtkit_policy_require_claim(jwtkit_policy *p, const char *name);
/* Clock skew allowance, 0..JWTKIT_MAX_LEEWAY seconds (default 60). */
JWTKIT_NODISCARD jwtkit_err jwtkit_policy_set_leeway(jwtkit_policy *p, int64_t seconds);
/* "exp" is required by default; 0 makes it optional (still checked if present). */
JWTKIT_NODISCARD jwtkit_err jwtkit_policy_set_require_exp(jwtkit_policy *p, int required);
/* Maximum age since "iat" (which then becomes required); 0 disables. */
JWTKIT_NODISCARD jwtkit_err jwtkit_policy_set_max_age(jwtkit_policy *p, int64_t seconds);
/* Clock (default: time()). */
JWTKIT_NODISCARD jwtkit_err jwtkit_policy_set_clock(jwtkit_policy *p, jwtkit_clock_fn fn, void *ctx);
/* Largest compact token accepted (default JWTKIT_DEFAULT_MAX_TOKEN). */
JWTKIT_NODISCARD jwtkit_err jwtkit_policy_set_max_token(jwtkit_policy *p, size_t bytes);
/* Largest protected header: bytes of its base64url text (16..1 MiB,
 * default JWTKIT_DEFAULT_MAX_HEADER) and JSON values in it (8..4096, default
 * JWTKIT_DEFAULT_MAX_HEADER_VALUES).  Raise them for tokens with long x5c
 * chains; both are also bounded by the token size. */
JWTKIT_NODISCARD jwtkit_err jwtkit_policy_set_max_header(jwtkit_policy *p, size_t bytes, size_t values);
JWTKIT_NODISCARD jwtkit_err jwtkit_policy_set_kidless(jwtkit_policy *p, jwtkit_kidless mode);

/* Build an immutable verifier (copies everything it needs from p, which may
 * be freed or reused afterwards).  Fails with the first error a policy
 * setter returned, if one did, and with JWTKIT_ERR_INVALID_ARG when no
 * algorithm is allowed, no key is present, a key's alg is not allowed, or two
 * keys share a kid. */
JWTKIT_NODISCARD jwtkit_err jwtkit_verifier_new(jwtkit_verifier **out, const jwtkit_policy *p,
                                                jwtkit_errinfo *info);
jwtkit_verifier *jwtkit_verifier_ref(jwtkit_verifier *v);
void jwtkit_verifier_free(jwtkit_verifier *v);

/* Verify a compact token.  *claims receives the verified claims on success
 * (free with jwtkit_claims_free) and is NULL on every failure.  claims may be
 * NULL when you only need the verdict. */
JWTKIT_NODISCARD jwtkit_err jwtkit_verify(const jwtkit_verifier *v, const char *token,
                                          size_t len, jwtkit_claims **claims,
                                          jwtkit_errinfo *info);

/* Same with an explicit clock value (Unix seconds) for this call. */
JWTKIT_NODISCARD jwtkit_err jwtkit_verify_at(const jwtkit_verifier *v, const char *token,
                                             size_t len, int64_t now, jwtkit_claims **claims,
                                             jwtkit_errinfo *info);

/* ------------------------------------------------------ verified claims */

void jwtkit_claims_free(jwtkit_claims *c);

/* String claim: *value is NUL-terminated UTF-8 owned by c; *len may be NULL.
 * JWTKIT_ERR_NOT_FOUND when absent, JWTKIT_ERR_TYPE when not a string. */
jwtkit_err jwtkit_claims_get_string(const jwtkit_claims *c, const char *name,
                                    const char **value, size_t *len);
/* Integer claim (JSON number without fraction or exponent, fits int64). */
jwtkit_err jwtkit_claims_get_int(const jwtkit_claims *c, const char *name, int64_t *value);
jwtkit_err jwtkit_claims_get_bool(const jwtkit_claims *c, const char *name, int *value);
/* Raw JSON text of any claim (not NUL-terminated, owned by c). */
jwtkit_err jwtkit_claims_get_json(const jwtkit_claims *c, const char *name,
                                  const char **json, size_t *len);
/* The whole payload JSON, as signed (owned by c, NUL-terminated). */
const char *jwtkit_claims_json(const jwtkit_claims *c, size_t *len);
/* The protected header JSON (owned by c, NUL-terminated). */
const char *jwtkit_claims_header_json(const jwtkit_claims *c, size_t *len);
/* NumericDate claim ("exp", "nbf", "iat" or your own) as the verifier reads
 * it: any JSON number, fraction and exponent allowed, evaluated exactly,
 * |value| < 1e15.  *floor_s and *ceil_s (either may be NULL) get the value
 * rounded down and up (equal for whole seconds).  JWTKIT_ERR_TYPE when not
 * a number, JWTKIT_ERR_TOO_LARGE when out of range. */
jwtkit_err jwtkit_claims_get_numericdate(const jwtkit_claims *c, const char *name, int64_t *floor_s,
                                         int64_t *ceil_s);
/* A claim that is a string or an array of strings (like "aud"): *count is 1
 * for a string, the number of items for an array.  JWTKIT_ERR_TYPE when it
 * is neither, or an item is not a string. */
jwtkit_err jwtkit_claims_get_string_list(const jwtkit_claims *c, const char *name, size_t *count);
/* Item `index` of such a claim (index 0 of a plain string is the string):
 * NUL-terminated, unescaped, owned by c.  JWTKIT_ERR_NOT_FOUND past the end. */
jwtkit_err jwtkit_claims_get_string_item(const jwtkit_claims *c, const char *name, size_t index,
                                         const char **value, size_t *len);
/* Iterate the payload's members in order: start with *cursor = 0; each call
 * gives the next member's name (unescaped, NUL-terminated, owned by c) and
 * its raw JSON value (as jwtkit_claims_get_json), and advances *cursor.
 * JWTKIT_ERR_NOT_FOUND after the last member.  Any of name, json, json_len
 * may be NULL. */
jwtkit_err jwtkit_claims_next(const jwtkit_claims *c, size_t *cursor, const char **name,
                              const char **json, size_t *json_len);
/* Algorithm and kid (NULL if none) of the verified token. */
jwtkit_alg jwtkit_claims_alg(const jwtkit_claims *c);
const char *jwtkit_claims_kid(const jwtkit_claims *c);
/* The trusted key that verified the token (owned by c; take your own
 * reference with jwtkit_key_ref to keep it longer).  Its kid
 * (jwtkit_key_kid) says which key of a set it was; NULL only for c NULL. */
const jwtkit_key *jwtkit_claims_key(const jwtkit_claims *c);

/* -------------------------------------------------------- inspection */

/* Check JSON text with the strict parser jwtkit uses for every header,
 * claims set and JWK (RFC 8259, UTF-8, no duplicate names, no \u0000,
 * nesting <= JWTKIT_MAX_JSON_DEPTH).  object_only: the value must be an
 * object.  On failure info->msg names the byte offset. */
JWTKIT_NODISCARD jwtkit_err jwtkit_json_validate(const char *json, size_t len, int object_only,
                                                 jwtkit_errinfo *info);

/* Decode WITHOUT verifying (for `jwtkit decode`): header and payload JSON
 * texts, both checked for strict JSON.  Free both with jwtkit_free().
 * Never use the result for an authorization decision. */
JWTKIT_NODISCARD jwtkit_err jwtkit_decode_unverified(const char *token, size_t len,
                                                     char **header, size_t *header_len,
                                                     char **payload, size_t *payload_len,
                                                     jwtkit_errinfo *info);

#ifdef __cplusplus
}
#endif
#endif
