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
/* Skip the calling test (fail under CI) when <vectors>/<sub> is missing;
 * label names the set in the message. */
void tu_require_vectors(const char *sub, const char *label);
/* Load <vectors>/<sub>/<name> with jansson (duplicates rejected); fails the
 * test when it cannot. */
json_t *tu_load_vectors_json(const char *sub, const char *name);
/* Read a whole file (NUL-terminated); NULL on failure. Free with free(). */
char *tu_read_file(const char *path, size_t *len);
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
