/* Internal: EVP_PKEY <-> jwtkit_key (src/crypto only). */
#ifndef JK_KEY_OPENSSL_H
#define JK_KEY_OPENSSL_H

#include <openssl/evp.h>

#include "jwtkit/key.h"

/* Wrap pkey (ownership taken, also on failure) after checking it for alg. */
jwtkit_err jk_key_from_pkey(jwtkit_key **out, jwtkit_alg alg, EVP_PKEY *pkey, jwtkit_errinfo *info);
int jk_pkey_has_private(const EVP_PKEY *pkey);

#endif
