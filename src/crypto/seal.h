/* The primitives the rest of the project needs beside JWS: AES-256-GCM,
 * SHA-256, HMAC-SHA-256, PBKDF2 and random bytes, for data at rest (the
 * PostgreSQL keyring's private keys, the keyring document's MAC) and for
 * the programs (ETags, client secret hashes, random seeds).  Kept here so
 * only src/crypto/ includes OpenSSL; wipe and constant-time compare are in
 * core/alloc.h. */
#ifndef JK_SEAL_H
#define JK_SEAL_H

#include <stddef.h>

#define JK_GCM_NONCE 12u
#define JK_GCM_TAG 16u

/* AES-256-GCM.  enc: out = ciphertext || tag (len + 16 bytes).  !enc: in
 * is ciphertext || tag (len + 16 bytes), out receives len bytes.  0, or -1
 * (an authentication failure when opening). */
int jk_aes256gcm(int enc, const unsigned char key[32], const unsigned char nonce[JK_GCM_NONCE],
                 const unsigned char *aad, size_t aadlen, const unsigned char *in, size_t len, unsigned char *out);

/* SHA-256 of a || b.  0 or -1. */
int jk_sha256_2(const void *a, size_t alen, const void *b, size_t blen, unsigned char out[32]);

/* HMAC-SHA-256 keyed with key[0..klen) over a || b.  0 or -1. */
int jk_hmac_sha256_2(const unsigned char *key, size_t klen, const void *a, size_t alen, const void *b, size_t blen,
                     unsigned char out[32]);

/* PBKDF2-HMAC-SHA-256 (RFC 8018) of pass with salt and iter iterations,
 * 32 bytes.  0 or -1. */
int jk_pbkdf2_sha256(const char *pass, size_t plen, const unsigned char *salt, size_t slen, unsigned iter,
                     unsigned char out[32]);

/* n bytes from the CSPRNG.  0 or -1. */
int jk_random(unsigned char *out, size_t n);

#endif
