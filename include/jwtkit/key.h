/*
 * jwtkit/key.h - algorithms and keys.
 *
 * A jwtkit_key is bound to exactly one JWA algorithm when it is created and
 * is checked for it (docs/security.md, invariants 1 and 2):
 *   - HMAC keys come only from secret bytes (jwtkit_key_from_secret or an
 *     "oct" JWK) and must be at least as long as the hash output;
 *   - RSA keys must have at least 2048 bits (and at most 16384);
 *   - EC keys must be on the curve the algorithm names (P-256 for ES256, ...);
 *   - EdDSA keys are Ed25519 or Ed448.
 * A PEM, DER or public JWK can never become an HMAC key.
 *
 * Keys are reference counted and immutable after creation except for the
 * kid, which may be set once before the key is shared.  All functions on a
 * shared key are thread-safe.  jwtkit_key_free(NULL) is a no-op.
 */
#ifndef JWTKIT_KEY_H
#define JWTKIT_KEY_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define JWTKIT_NODISCARD __attribute__((warn_unused_result))
#else
#define JWTKIT_NODISCARD
#endif

/* JWA signature algorithms (RFC 7518 §3, RFC 8037).  There is no value for
 * "none": it cannot be named, so it cannot be allowed. */
typedef enum jwtkit_alg {
  JWTKIT_ALG_UNSPEC = 0, /* "take it from the key material" where possible */
  JWTKIT_ALG_HS256 = 1,
  JWTKIT_ALG_HS384 = 2,
  JWTKIT_ALG_HS512 = 3,
  JWTKIT_ALG_RS256 = 4,
  JWTKIT_ALG_RS384 = 5,
  JWTKIT_ALG_RS512 = 6,
  JWTKIT_ALG_PS256 = 7,
  JWTKIT_ALG_PS384 = 8,
  JWTKIT_ALG_PS512 = 9,
  JWTKIT_ALG_ES256 = 10,
  JWTKIT_ALG_ES384 = 11,
  JWTKIT_ALG_ES512 = 12,
  JWTKIT_ALG_EDDSA = 13 /* Ed25519 or Ed448, chosen by the key */
} jwtkit_alg;

#define JWTKIT_ALG_COUNT 14

/* Key families. */
typedef enum jwtkit_kty {
  JWTKIT_KTY_OCT = 1, /* HMAC secret */
  JWTKIT_KTY_RSA = 2,
  JWTKIT_KTY_EC = 3,
  JWTKIT_KTY_OKP = 4 /* Ed25519 / Ed448 */
} jwtkit_kty;

/* "HS256" -> JWTKIT_ALG_HS256.  Exact, case-sensitive match (RFC 7515 §4.1.1
 * values are case-sensitive).  Returns JWTKIT_ALG_UNSPEC for anything not in
 * the table, including every spelling of "none". */
jwtkit_alg jwtkit_alg_from_name(const char *name, size_t len);

/* "HS256", or NULL for JWTKIT_ALG_UNSPEC and out-of-range values. */
const char *jwtkit_alg_name(jwtkit_alg alg);

/* Family an algorithm needs. 0 for JWTKIT_ALG_UNSPEC. */
jwtkit_kty jwtkit_alg_kty(jwtkit_alg alg);

typedef struct jwtkit_key jwtkit_key;

/*
 * Constructors.  On success *out holds a new key with one reference; on
 * failure *out is NULL and the error says why (JWTKIT_ERR_WEAK_KEY,
 * JWTKIT_ERR_INVALID_KEY, JWTKIT_ERR_PASSPHRASE, ...).  `info` may be NULL.
 */

/* HMAC secret.  alg must be HS256/384/512; len >= 32/48/64 bytes.  The bytes
 * are copied; wipe your copy when you no longer need it.  Bytes that are a
 * key (a PEM block anywhere, a JSON object with "kty" or "keys", a DER key)
 * are refused with JWTKIT_ERR_INVALID_KEY: a key is never an HMAC secret
 * (the algorithm-confusion pattern). */
JWTKIT_NODISCARD jwtkit_err jwtkit_key_from_secret(jwtkit_key **out, jwtkit_alg alg,
                                                   const void *secret, size_t len,
                                                   jwtkit_errinfo *info);

/* The secret rule for text, wherever it came from (a file, stdin, an
 * environment variable): one trailing "\n" or "\r\n" is not part of the
 * secret; every other byte is, spaces included.  Then as
 * jwtkit_key_from_secret. */
JWTKIT_NODISCARD jwtkit_err jwtkit_key_from_secret_text(jwtkit_key **out, jwtkit_alg alg,
                                                        const char *text, size_t len,
                                                        jwtkit_errinfo *info);

/* An HMAC secret from a file, as every jwtkit program reads one: the file
 * rule of jwtkit_read_secret_file (jwtkit/util.h: owner-only mode checked on
 * the opened descriptor, at most 64 KiB), then jwtkit_key_from_secret_text.
 * Messages name the path. */
JWTKIT_NODISCARD jwtkit_err jwtkit_key_from_secret_file(jwtkit_key **out, jwtkit_alg alg,
                                                        const char *path, jwtkit_errinfo *info);

/* PEM text with exactly one key block: SPKI "PUBLIC KEY", PKCS#1 "RSA PUBLIC
 * KEY"/"RSA PRIVATE KEY", PKCS#8 "PRIVATE KEY", "ENCRYPTED PRIVATE KEY"
 * (needs `passphrase`), SEC1 "EC PRIVATE KEY".  alg may be UNSPEC for EC and
 * OKP keys (the curve decides); RSA keys need an explicit RS* or PS* alg.
 * Never produces an HMAC key. */
JWTKIT_NODISCARD jwtkit_err jwtkit_key_from_pem(jwtkit_key **out, jwtkit_alg alg,
                                                const char *pem, size_t len,
                                                const char *passphrase,
                                                jwtkit_errinfo *info);

/* DER: SubjectPublicKeyInfo, PKCS#8 PrivateKeyInfo, PKCS#1 or SEC1.  Same
 * alg rules as PEM. */
JWTKIT_NODISCARD jwtkit_err jwtkit_key_from_der(jwtkit_key **out, jwtkit_alg alg,
                                                const unsigned char *der, size_t len,
                                                jwtkit_errinfo *info);

/* One JWK (RFC 7517) as JSON text: kty RSA, EC, OKP or oct, public or private.
 * The algorithm is `alg` if given, else the JWK's "alg" member, else (EC and
 * OKP only) the one the curve implies.  When both are given they must agree.
 * The JWK's "kid" becomes the key's kid.  A JWK whose "use" is not "sig" or
 * whose "key_ops" has no verify/sign operation is refused. */
JWTKIT_NODISCARD jwtkit_err jwtkit_key_from_jwk(jwtkit_key **out, jwtkit_alg alg,
                                                const char *json, size_t len,
                                                jwtkit_errinfo *info);

/* Generate a fresh key from the CSPRNG.  bits: RSA modulus size (0 means
 * 2048; 2048..16384), ignored for other families.  For EdDSA, bits selects
 * the curve: 0 or 255 -> Ed25519, 448 -> Ed448.  HMAC secrets get the hash
 * output length. */
JWTKIT_NODISCARD jwtkit_err jwtkit_key_generate(jwtkit_key **out, jwtkit_alg alg,
                                                unsigned bits, jwtkit_errinfo *info);

/* Take another reference; returns key. */
jwtkit_key *jwtkit_key_ref(jwtkit_key *key);

/* Drop a reference.  The last one wipes secret material. */
void jwtkit_key_free(jwtkit_key *key);

/* Set the key id (any bytes but NUL, 1..255 bytes).  Only allowed while the
 * caller holds the only reference (JWTKIT_ERR_STATE otherwise). */
jwtkit_err jwtkit_key_set_kid(jwtkit_key *key, const char *kid, size_t len);

/* The kid, NUL-terminated, or NULL when the key has none. */
const char *jwtkit_key_kid(const jwtkit_key *key);

jwtkit_alg jwtkit_key_alg(const jwtkit_key *key);
jwtkit_kty jwtkit_key_kty(const jwtkit_key *key);

/* 1 when the key can sign (private key or HMAC secret). */
int jwtkit_key_can_sign(const jwtkit_key *key);

/* RSA modulus bits, EC field bits (256/384/521), 255/448 for OKP, secret bits
 * for HMAC. */
unsigned jwtkit_key_bits(const jwtkit_key *key);

/* Curve name for EC/OKP keys ("P-256", "Ed25519", ...), else NULL. */
const char *jwtkit_key_curve(const jwtkit_key *key);

/*
 * Export.  Output buffers are allocated with the jwtkit allocator, NUL
 * terminated (the length excludes the NUL) and released with jwtkit_free().
 */

/* JWK JSON with kty, the public members, "alg", "use":"sig" and "kid" when
 * set.  Private members (and any oct key) only when include_private is 1;
 * an HMAC key with include_private 0 is JWTKIT_ERR_INVALID_ARG. */
JWTKIT_NODISCARD jwtkit_err jwtkit_key_to_jwk(const jwtkit_key *key, int include_private,
                                              char **json, size_t *len);

/* PEM: SPKI "PUBLIC KEY", or PKCS#8 "PRIVATE KEY" when include_private is 1
 * ("ENCRYPTED PRIVATE KEY", AES-256-CBC + PBKDF2, when passphrase != NULL).
 * HMAC keys have no PEM form (JWTKIT_ERR_UNSUPPORTED). */
JWTKIT_NODISCARD jwtkit_err jwtkit_key_to_pem(const jwtkit_key *key, int include_private,
                                              const char *passphrase, char **pem,
                                              size_t *len);

/* RFC 7638 JWK thumbprint with SHA-256, base64url (43 chars + NUL in out).
 * For HMAC keys it hashes the oct JWK (k), so never publish it. */
JWTKIT_NODISCARD jwtkit_err jwtkit_key_thumbprint(const jwtkit_key *key, char out[44]);

/* RFC 9278 form: "urn:ietf:params:oauth:jwk-thumbprint:sha-256:<tp>". */
JWTKIT_NODISCARD jwtkit_err jwtkit_key_thumbprint_uri(const jwtkit_key *key, char out[96]);

/* 1 when a and b hold the same public key (or the same secret). */
int jwtkit_key_equal_public(const jwtkit_key *a, const jwtkit_key *b);

/*
 * Allocation.  Every allocation jwtkit makes goes through these hooks, so
 * tests can fail the Nth allocation.  Set them before any other call.
 */
typedef struct jwtkit_allocator {
  void *(*malloc_fn)(size_t);
  void *(*realloc_fn)(void *, size_t);
  void (*free_fn)(void *);
} jwtkit_allocator;

/* NULL restores the C library's functions. */
void jwtkit_set_allocator(const jwtkit_allocator *a);

/* Free memory that jwtkit returned to you (tokens, JSON, PEM). NULL is ok. */
void jwtkit_free(void *p);

#ifdef __cplusplus
}
#endif
#endif
