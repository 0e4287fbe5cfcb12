/* Internal: EVP_PKEY <-> jwtkit_key (src/crypto only). */
#ifndef JK_KEY_OPENSSL_H
#define JK_KEY_OPENSSL_H

#include <openssl/evp.h>

#include "jwtkit/key.h"

/* Wrap pkey (ownership taken, also on failure) after checking it for alg. */
jwtkit_err jk_key_from_pkey(jwtkit_key **out, jwtkit_alg alg, EVP_PKEY *pkey, jwtkit_errinfo *info);
int jk_pkey_has_private(const EVP_PKEY *pkey);
/* SHA-256, -384 or -512 by digest length (32, 48, 64), fetched once per
 * process: an implicit fetch by name on every digest costs more than
 * hashing a token (NULL for any other length or if the fetch failed). */
const EVP_MD *jk_md_sha2(size_t hash_len);

#endif
