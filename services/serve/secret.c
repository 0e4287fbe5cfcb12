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

#include "codec/b64url.h"
#include "core/alloc.h"
#include "crypto/seal.h"
#include "serve.h"

#define SALT_BYTES 16u

int sv_secret_generate(char out[SV_SECRET_CHARS + 1]) {
  unsigned char raw[32];
  if (jk_random(raw, sizeof raw) != 0) return -1;
  out[jk_b64url_encode(out, raw, sizeof raw)] = '\0';
  jk_wipe(raw, sizeof raw);
  return 0;
}

static int mac(const unsigned char *salt, size_t salt_len, const char *secret, size_t len, unsigned char out[32]) {
  return jk_hmac_sha256_2(salt, salt_len, secret, len, NULL, 0, out);
}

int sv_secret_hash_new(const char *secret, size_t len, char *out, size_t cap) {
  unsigned char salt[SALT_BYTES], m[32];
  if (len < SV_MIN_SECRET_LEN || len > SV_MAX_SECRET_LEN || cap < 128) return -1;
  if (jk_random(salt, sizeof salt) != 0 || mac(salt, sizeof salt, secret, len, m) != 0) return -1;
  char s64[32], m64[48];
  s64[jk_b64url_encode(s64, salt, sizeof salt)] = '\0';
  m64[jk_b64url_encode(m64, m, sizeof m)] = '\0';
  snprintf(out, cap, "sha256$%s$%s", s64, m64);
  jk_wipe(m, sizeof m);
  return 0;
}

int sv_secret_hash_parse(const char *s, sv_secret_hash *h) {
  memset(h, 0, sizeof *h);
  if (strncmp(s, "sha256$", 7) != 0) return -1;
  const char *salt = s + 7;
  const char *dollar = strchr(salt, '$');
  if (dollar == NULL) return -1;
  const char *m = dollar + 1;
  size_t sl = (size_t)(dollar - salt), ml = strlen(m);
  /* the decoder needs jk_b64url_dec_max(n) bytes: 2 more than the most
   * that is kept */
  unsigned char sb[sizeof h->salt + 2], mb[sizeof h->mac + 2];
  size_t sn = 0, mn = 0;
  if (jk_b64url_dec_max(sl) > sizeof sb || jk_b64url_decode(sb, &sn, salt, sl) != 0 || sn < 16 ||
      sn > sizeof h->salt || jk_b64url_dec_max(ml) > sizeof mb || jk_b64url_decode(mb, &mn, m, ml) != 0 ||
      mn != sizeof h->mac)
    return -1;
  memcpy(h->salt, sb, sn);
  h->salt_len = sn;
  memcpy(h->mac, mb, sizeof h->mac);
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
  int eq = h != NULL && jk_ct_equal(m, h->mac, sizeof m);
  jk_wipe(m, sizeof m);
  return eq && ok_len;
}
