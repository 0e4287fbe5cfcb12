/* The wipe and the constant-time compare of core/alloc.h, over OpenSSL's
 * (OPENSSL_cleanse is never optimised away; CRYPTO_memcmp takes the same
 * time wherever the inputs differ). */
#include <openssl/crypto.h>

#include "core/alloc.h"

void jk_wipe(void *p, size_t n) {
  if (p != NULL && n != 0) OPENSSL_cleanse(p, n);
}

int jk_ct_equal(const void *a, const void *b, size_t n) { return CRYPTO_memcmp(a, b, n) == 0; }
