/*
 * jwtkit/pkcs11.h - signing keys that stay in a PKCS#11 token (an HSM, a
 * smart card, SoftHSM).
 *
 * A token key is a jwtkit_key like any other: it is bound to one algorithm,
 * jwtkit_key_can_sign() is 1, jwtkit_sign() and signers work, and its
 * public half (read from the token) verifies, exports as JWK or PEM and
 * has a thumbprint.  Signing goes to the token; the private key never
 * leaves it: jwtkit_key_to_pem(key, 1, ...) and jwtkit_key_to_jwk(key, 1,
 * ...) return JWTKIT_ERR_UNSUPPORTED.
 *
 * Keys are named by RFC 7512 URIs:
 *
 *   pkcs11:token=jwtkit;object=issuer-2026-12?pin-source=/etc/jwtkit/pin&module-path=/usr/lib/softhsm/libsofthsm2.so
 *
 *   path (';'):  token, manufacturer, serial, model, slot-id,
 *                slot-description, slot-manufacturer, library-manufacturer,
 *                library-description, library-version select the token
 *                (exactly one must match); object (CKA_LABEL), id (CKA_ID,
 *                percent-encoded bytes) and type select the key.
 *   query ('&'): pin-source=FILE (or file:///FILE): the user PIN is the
 *                first line of FILE, read by the secret-file rule
 *                (jwtkit_read_secret_file: owner-only mode); without it the
 *                environment variable JWTKIT_PKCS11_PIN.  pin-value= is
 *                refused: a PIN in a URI ends up in process lists and logs.
 *                module-path=/ABSOLUTE/PATH loads that module; else
 *                module-name=NAME picks a module of p11-kit's configuration;
 *                else every module p11-kit is configured with is searched
 *                for the token.
 *
 * Unknown attributes are refused (an ignored constraint could select
 * another key).  The PIN is asked for only when the token requires a
 * login, and tried exactly once: a wrong PIN is reported
 * (JWTKIT_ERR_PASSPHRASE) and never tried again by that key.
 *
 * Signing: ES256/384/512 with CKM_ECDSA over the hash computed here;
 * RS256/384/512 with CKM_SHA256_RSA_PKCS...; PS256/384/512 with
 * CKM_SHA256_RSA_PKCS_PSS... (MGF1 with the same hash, salt = hash length);
 * EdDSA with CKM_EDDSA.  A token that lacks the mechanism is reported
 * (JWTKIT_ERR_UNSUPPORTED) when the key is loaded.  Each key keeps a pool
 * of sessions: one per concurrent signer up to a bound, reused; a signer
 * that finds every session busy waits (bounded).  A session lost to the
 * token (CKR_SESSION_HANDLE_INVALID, CKR_DEVICE_REMOVED,
 * CKR_TOKEN_NOT_PRESENT, CKR_USER_NOT_LOGGED_IN) is replaced - the token is
 * looked up again, the session re-opened and logged in - and the signature
 * retried once.
 *
 * Built with p11-kit (pkg-config p11-kit-1; -DJWTKIT_PKCS11=ON, the default
 * when p11-kit is found).  Without it every function here returns
 * JWTKIT_ERR_UNSUPPORTED.  docs/pkcs11.md has the setup and the errors.
 */
#ifndef JWTKIT_PKCS11_H
#define JWTKIT_PKCS11_H

#include <stddef.h>

#include "error.h"
#include "key.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Tuning of a token key; a zeroed struct (or NULL) means the defaults. */
typedef struct jwtkit_pkcs11_opts {
  unsigned max_sessions; /* sessions the key opens at most, 1..256 (0 = 8);
                            more concurrent signers wait for one */
  unsigned wait_ms;      /* how long a signer waits for a free session
                            before JWTKIT_ERR_IO (0 = 10000) */
} jwtkit_pkcs11_opts;

/* 1 when this build has PKCS#11 support. */
int jwtkit_pkcs11_available(void);

/* 1 when text starts with "pkcs11:" (any letter case). */
int jwtkit_is_pkcs11_uri(const char *text);

/* The private key the URI names (object= and/or id=; type= absent or
 * "private"), bound to alg (UNSPEC: EC and EdDSA keys take the curve's;
 * RSA keys need RS* or PS*).  Checks that the key may sign (CKA_SIGN), that
 * the token offers the mechanism, and signs once to check that the public
 * key read from the token (on the private object, else on the public key
 * object with the same CKA_ID) is its pair.  The key has no kid. */
JWTKIT_NODISCARD jwtkit_err jwtkit_key_from_pkcs11(jwtkit_key **out, jwtkit_alg alg, const char *uri,
                                                   jwtkit_errinfo *info);
JWTKIT_NODISCARD jwtkit_err jwtkit_key_from_pkcs11_opts(jwtkit_key **out, jwtkit_alg alg, const char *uri,
                                                        const jwtkit_pkcs11_opts *opts, jwtkit_errinfo *info);

/* Only the public half of the key the URI names: a public key object, else
 * the public members of the private key (which needs a login).  No login
 * when the public object is visible without one.  The key cannot sign. */
JWTKIT_NODISCARD jwtkit_err jwtkit_pkcs11_public_key(jwtkit_key **out, jwtkit_alg alg, const char *uri,
                                                     jwtkit_errinfo *info);

/* Generate a key pair inside the token for alg (RS*, PS*, ES*, EdDSA; bits
 * as for jwtkit_key_generate) with CKA_LABEL = object= (required) and
 * CKA_ID = id= or, without id=, the 32 bytes of the key's RFC 7638
 * thumbprint.  The private key: CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE true,
 * CKA_EXTRACTABLE false, CKA_SIGN true (and nothing else: no decrypt,
 * unwrap or derive).  An object with the same label or id in the token is
 * an error (JWTKIT_ERR_STATE).  On success *out is the signing key, its
 * kid set to its thumbprint. */
JWTKIT_NODISCARD jwtkit_err jwtkit_pkcs11_generate(jwtkit_key **out, jwtkit_alg alg, unsigned bits,
                                                   const char *uri, jwtkit_errinfo *info);

/* Destroy the private key the URI names and its public key object(s) (the
 * same CKA_ID, else the same label).  JWTKIT_ERR_NOT_FOUND when there is
 * neither; several private keys matching is JWTKIT_ERR_INVALID_ARG. */
JWTKIT_NODISCARD jwtkit_err jwtkit_pkcs11_destroy(const char *uri, jwtkit_errinfo *info);

/* 1 when key is a token key (from jwtkit_key_from_pkcs11 or _generate). */
int jwtkit_key_is_pkcs11(const jwtkit_key *key);

/* The canonical URI of a token key: token label and serial, object, id,
 * and the query (pin-source, module-name, module-path) it was loaded with.
 * Release with jwtkit_free().  JWTKIT_ERR_INVALID_ARG for other keys. */
JWTKIT_NODISCARD jwtkit_err jwtkit_pkcs11_key_uri(const jwtkit_key *key, char **uri, size_t *len);

#ifdef __cplusplus
}
#endif
#endif
