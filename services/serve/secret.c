/* Client secrets.
 *
 * A secret is 32 bytes from the CSPRNG in base64url (43 characters); the
 * clients file stores only  sha256$<salt>$<HMAC-SHA256(key=salt, secret)>.
 * A fast keyed hash is enough here because the secret is not a password:
 * with 256 bits of entropy, no dictionary applies and exhausting the space
 * is out of reach whatever the cost per guess, so a slow KDF would add
 * latency to every token request and buy nothing (docs/serve.md). */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "serve.h"

#define SALT_BYTES 16u

int sv_secret_generate(char out[SV_SECRET_CHARS + 1]) {
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) return -1;
  sv_b64url_encode(raw, sizeof raw, out);
  OPENSSL_cleanse(raw, sizeof raw);
  return 0;
}

static int mac(const unsigned char *salt, size_t salt_len, const char *secret, size_t len, unsigned char out[32]) {
  unsigned int ol = 0;
  if (HMAC(EVP_sha256(), salt, (int)salt_len, (const unsigned char *)secret, len, out, &ol) == NULL || ol != 32)
    return -1;
  return 0;
}

int sv_secret_hash_new(const char *secret, size_t len, char *out, size_t cap) {
  unsigned char salt[SALT_BYTES], m[32];
  if (len < SV_MIN_SECRET_LEN || len > SV_MAX_SECRET_LEN || cap < 128) return -1;
  if (RAND_bytes(salt, sizeof salt) != 1 || mac(salt, sizeof salt, secret, len, m) != 0) return -1;
  char s64[32], m64[48];
  sv_b64url_encode(salt, sizeof salt, s64);
  sv_b64url_encode(m, sizeof m, m64);
  snprintf(out, cap, "sha256$%s$%s", s64, m64);
  OPENSSL_cleanse(m, sizeof m);
  return 0;
}

int sv_secret_hash_parse(const char *s, sv_secret_hash *h) {
  memset(h, 0, sizeof *h);
  if (strncmp(s, "sha256$", 7) != 0) return -1;
  const char *salt = s + 7;
  const char *dollar = strchr(salt, '$');
  if (dollar == NULL) return -1;
  const char *m = dollar + 1;
  size_t ml = 0;
  if (sv_b64url_decode(salt, (size_t)(dollar - salt), h->salt, sizeof h->salt, &h->salt_len) != 0 ||
      h->salt_len < 16 || sv_b64url_decode(m, strlen(m), h->mac, sizeof h->mac, &ml) != 0 || ml != 32) {
    memset(h, 0, sizeof *h);
    return -1;
  }
  return 0;
}

int sv_secret_check(const sv_secret_hash *h, const char *secret, size_t len) {
  static const unsigned char dummy_salt[SALT_BYTES] = {0};
  unsigned char m[32];
  int ok_len = len >= SV_MIN_SECRET_LEN && len <= SV_MAX_SECRET_LEN;
  /* the MAC is computed for unknown clients too, so the response time does
   * not tell which client names exist */
  if (mac(h ? h->salt : dummy_salt, h ? h->salt_len : sizeof dummy_salt, secret,
          len > SV_MAX_SECRET_LEN ? SV_MAX_SECRET_LEN : len, m) != 0)
    return 0;
  int eq = h != NULL && CRYPTO_memcmp(m, h->mac, sizeof m) == 0;
  OPENSSL_cleanse(m, sizeof m);
  return eq && ok_len;
}
