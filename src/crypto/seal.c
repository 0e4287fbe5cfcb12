/* AES-256-GCM and SHA-256 for sealing data at rest. */
#include "crypto/seal.h"

#include <limits.h>

#include <openssl/evp.h>

int jk_aes256gcm(int enc, const unsigned char key[32], const unsigned char nonce[JK_GCM_NONCE],
                 const unsigned char *aad, size_t aadlen, const unsigned char *in, size_t len, unsigned char *out) {
  if (len > INT_MAX || aadlen > INT_MAX) return -1;
  EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
  int ok = c != NULL && EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) == 1 &&
           EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, JK_GCM_NONCE, NULL) == 1 &&
           EVP_CipherInit_ex(c, NULL, NULL, key, nonce, enc) == 1;
  int l = 0, fl = 0;
  if (ok) ok = EVP_CipherUpdate(c, NULL, &l, aad, (int)aadlen) == 1;
  if (ok) ok = EVP_CipherUpdate(c, out, &l, in, (int)len) == 1;
  if (ok && !enc) ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, JK_GCM_TAG, (void *)(in + len)) == 1;
  if (ok) ok = EVP_CipherFinal_ex(c, out + l, &fl) == 1; /* opening: the tag check */
  if (ok && enc) ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, JK_GCM_TAG, out + len) == 1;
  EVP_CIPHER_CTX_free(c);
  return ok ? 0 : -1;
}

int jk_sha256_2(const void *a, size_t alen, const void *b, size_t blen, unsigned char out[32]) {
  unsigned int n = 0;
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  int ok = c != NULL && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 && EVP_DigestUpdate(c, a, alen) == 1 &&
           EVP_DigestUpdate(c, b, blen) == 1 && EVP_DigestFinal_ex(c, out, &n) == 1 && n == 32;
  EVP_MD_CTX_free(c);
  return ok ? 0 : -1;
}
