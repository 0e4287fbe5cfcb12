/* Shared helpers for the cmocka tests. */
#ifndef JK_TESTUTIL_H
#define JK_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the three above first */
#include <cmocka.h>

#include <jansson.h>

#include "jwtkit/jwtkit.h"

/* Directory of the shared vectors: $JWTKIT_VECTORS or the build default. */
const char *tu_vectors_dir(void);
/* 1 when running under CI (CI=true): missing vectors are then a failure. */
int tu_ci(void);
/* A string member of a jansson object, or NULL. */
const char *tu_jstr(const json_t *obj, const char *name);
/* Strict base64url decode into a malloc'd buffer; NULL when not canonical. */
unsigned char *tu_b64url_dec(const char *s, size_t n, size_t *out_len);
/* Import a JWK given as a jansson object. */
jwtkit_err tu_import_jwk(const json_t *jwk, jwtkit_alg alg, jwtkit_key **key, jwtkit_errinfo *info);
/* OpenSSL's encoding of pkey (type "PEM" or "DER"; structure
 * "SubjectPublicKeyInfo", "PrivateKeyInfo", "EncryptedPrivateKeyInfo",
 * "type-specific"), NUL-terminated, malloc'd; *len may be NULL. */
typedef struct evp_pkey_st tu_evp_pkey;
char *tu_pkey_encode(tu_evp_pkey *pkey, int selection, const char *type, const char *structure, const char *pass,
                     size_t *len);

/* Skip the calling test (fail under CI) when <vectors>/<sub> is missing;
 * label names the set in the message. */
void tu_require_vectors(const char *sub, const char *label);
/* Load <vectors>/<sub>/<name> with jansson (duplicates rejected); fails the
 * test when it cannot. */
json_t *tu_load_vectors_json(const char *sub, const char *name);
/* Read a whole file (NUL-terminated); NULL on failure. Free with free(). */
char *tu_read_file(const char *path, size_t *len);
/* Remove a temporary directory tree (rm -rf); complains on stderr if it fails. */
void tu_rm_rf(const char *dir);
/* Decode lowercase hex into a malloc'd buffer. */
unsigned char *tu_hex(const char *hex, size_t *len);
/* Base64url-encode (no padding) into a malloc'd NUL-terminated string. */
char *tu_b64url(const unsigned char *in, size_t n);
/* Build a compact token from raw header/payload JSON and signature bytes. */
char *tu_token(const char *header, const char *payload, const unsigned char *sig, size_t sig_len);
/* Sign header.payload with key via the library, with an arbitrary header
 * (the library's own signer would refuse odd headers). */
char *tu_sign_raw(jwtkit_key *key, const char *header, const char *payload);
/* A fresh key for alg (cached per process, do not free). */
jwtkit_key *tu_key(jwtkit_alg alg);
/* Verifier for one key/alg with default policy plus ignore_audience. */
jwtkit_verifier *tu_verifier(jwtkit_key *key);

#endif
