/* AES-256-GCM, SHA-256, HMAC-SHA-256 and PBKDF2 for data at rest. */
#include "crypto/seal.h"
#include "common/attr.h"
#include "key_openssl.h"

#include <limits.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

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
  if (ok && !enc) ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, JK_GCM_TAG, JK_UNCONST(in + len)) == 1;
  if (ok) ok = EVP_CipherFinal_ex(c, out + l, &fl) == 1; /* opening: the tag check */
  if (ok && enc) ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, JK_GCM_TAG, out + len) == 1;
  EVP_CIPHER_CTX_free(c);
  return ok ? 0 : -1;
}

int jk_sha256_2(const void *a, size_t alen, const void *b, size_t blen, unsigned char out[32]) {
  unsigned int n = 0;
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  int ok = c != NULL && EVP_DigestInit_ex(c, jk_md_sha2(32), NULL) == 1 && EVP_DigestUpdate(c, a, alen) == 1 &&
           EVP_DigestUpdate(c, b, blen) == 1 && EVP_DigestFinal_ex(c, out, &n) == 1 && n == 32;
  EVP_MD_CTX_free(c);
  return ok ? 0 : -1;
}

int jk_hmac_sha256_2(const unsigned char *key, size_t klen, const void *a, size_t alen, const void *b, size_t blen,
                     unsigned char out[32]) {
  EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
  EVP_MAC_CTX *c = mac ? EVP_MAC_CTX_new(mac) : NULL;
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_construct_end()};
  size_t n = 0;
  int ok = c != NULL && EVP_MAC_init(c, key, klen, params) == 1 && EVP_MAC_update(c, a, alen) == 1 &&
           EVP_MAC_update(c, b, blen) == 1 && EVP_MAC_final(c, out, &n, 32) == 1 && n == 32;
  EVP_MAC_CTX_free(c);
  EVP_MAC_free(mac);
  return ok ? 0 : -1;
}

int jk_pbkdf2_sha256(const char *pass, size_t plen, const unsigned char *salt, size_t slen, unsigned iter,
                     unsigned char out[32]) {
  if (plen > INT_MAX || slen > INT_MAX || iter == 0 || iter > INT_MAX) return -1;
  return PKCS5_PBKDF2_HMAC(pass, (int)plen, salt, (int)slen, (int)iter, EVP_sha256(), 32, out) == 1 ? 0 : -1;
}
