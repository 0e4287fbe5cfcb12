/*
 * jwtkit/openssl.h - optional bridge to OpenSSL's EVP_PKEY.
 * Include it only if your program already uses OpenSSL 3.
 */
#ifndef JWTKIT_OPENSSL_H
#define JWTKIT_OPENSSL_H

#include <openssl/evp.h>

#include "key.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Wrap an EVP_PKEY after the same checks as PEM import.  The key takes its
 * own reference to pkey (the caller keeps theirs). */
JWTKIT_NODISCARD jwtkit_err jwtkit_key_from_evp(jwtkit_key **out, jwtkit_alg alg, EVP_PKEY *pkey,
                                                jwtkit_errinfo *info);

/* The underlying EVP_PKEY (borrowed; NULL for HMAC keys).  Do not modify. */
const EVP_PKEY *jwtkit_key_evp(const jwtkit_key *key);

#ifdef __cplusplus
}
#endif
#endif
