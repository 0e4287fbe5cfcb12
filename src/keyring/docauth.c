/* The keyring document's MAC: see docauth.h. */
#include "docauth.h"

#include <string.h>

#include "codec/b64url.h"
#include "core/alloc.h"
#include "core/error_internal.h"
#include "crypto/key_internal.h" /* jk_random */
#include "crypto/seal.h"

#define MAC_B64 43u  /* base64url of 32 bytes */
#define SALT_B64 22u /* base64url of 16 bytes */
#define CHECK_B64 11u /* base64url of the 8-byte passphrase check */
static const char k_tail[] = "\"}}\n"; /* after the MAC value: closes auth and the document */

jwtkit_err jk_docauth_set_keks(jk_docauth *a, const unsigned char (*keks)[32], size_t n, jwtkit_errinfo *info) {
  if (n == 0 || n > JK_DOC_MAX_KEKS) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, "1..%u KEKs", JK_DOC_MAX_KEKS);
  a->mode = JK_DOCAUTH_KEK;
  a->nkeys = n;
  a->verified_by = -1;
  for (size_t i = 0; i < n; i++) {
    jk_kek_id(keks[i], a->ids[i]);
    /* a key of its own for the document: the KEK itself only seals */
    if (jk_hmac_sha256_2(keks[i], 32, JK_DOC_MAC_LABEL, strlen(JK_DOC_MAC_LABEL), "", 0, a->keys[i]) != 0) {
      jk_docauth_wipe(a);
      return jk_fail(info, JWTKIT_ERR_CRYPTO, NULL, "deriving the keyring document key failed");
    }
  }
  return JWTKIT_OK;
}

void jk_docauth_set_pass(jk_docauth *a, const char *pass) {
  a->mode = JK_DOCAUTH_PASS;
  a->pass = pass;
  a->have_salt = 0;
  a->verified_by = -1;
}

void jk_docauth_wipe(jk_docauth *a) { jk_wipe(a, sizeof *a); }

int jk_docauth_version(const jk_docauth *a) { return a->mode == JK_DOCAUTH_NONE ? 1 : 2; }

/* PASS: the key for salt (derived once per salt and kept). */
static int pass_key(jk_docauth *a, const unsigned char salt[16]) {
  if (a->have_salt && memcmp(a->salt, salt, 16) == 0) return 0;
  unsigned char s[sizeof JK_DOC_MAC_LABEL - 1 + 16];
  memcpy(s, JK_DOC_MAC_LABEL, sizeof JK_DOC_MAC_LABEL - 1);
  memcpy(s + sizeof JK_DOC_MAC_LABEL - 1, salt, 16);
  a->have_salt = 0;
  if (jk_pbkdf2_sha256(a->pass, strlen(a->pass), s, sizeof s, JK_DOC_PBKDF2_ITER, a->pkey) != 0) return -1;
  memcpy(a->salt, salt, 16);
  a->have_salt = 1;
  return 0;
}

/* PASS: 8 bytes that tell a wrong passphrase from a changed document. */
static int pass_check(const jk_docauth *a, char out[CHECK_B64 + 1]) {
  unsigned char md[32];
  if (jk_hmac_sha256_2(a->pkey, 32, "passphrase check", 16, "", 0, md) != 0) return -1;
  jk_b64url_encode(out, md, 8);
  out[CHECK_B64] = '\0';
  return 0;
}

static int mac_of(const unsigned char key[32], const char *doc, size_t len, char out[MAC_B64 + 1]) {
  unsigned char md[32];
  if (jk_hmac_sha256_2(key, 32, doc, len, "", 0, md) != 0) return -1;
  jk_b64url_encode(out, md, 32);
  out[MAC_B64] = '\0';
  return 0;
}

jwtkit_err jk_docauth_close(jk_docauth *a, jk_buf *b) {
  if (a->mode == JK_DOCAUTH_NONE) {
    jk_buf_puts(b, "}\n");
    return b->oom ? JWTKIT_ERR_NOMEM : JWTKIT_OK;
  }
  const unsigned char *key = NULL;
  if (a->mode == JK_DOCAUTH_KEK) {
    jk_buf_puts(b, ",\"auth\":{\"kek\":\"");
    jk_buf_puts(b, a->ids[0]);
    key = a->keys[0];
  } else {
    if (!a->have_salt) {
      unsigned char salt[16];
      if (jk_random(salt, sizeof salt) != 0 || pass_key(a, salt) != 0) return JWTKIT_ERR_CRYPTO;
    }
    char salt[SALT_B64 + 1], check[CHECK_B64 + 1];
    jk_b64url_encode(salt, a->salt, 16);
    salt[SALT_B64] = '\0';
    if (pass_check(a, check) != 0) return JWTKIT_ERR_CRYPTO;
    jk_buf_puts(b, ",\"auth\":{\"salt\":\"");
    jk_buf_puts(b, salt);
    jk_buf_puts(b, "\",\"check\":\"");
    jk_buf_puts(b, check);
    key = a->pkey;
  }
  jk_buf_puts(b, "\",\"mac\":\"");
  if (b->oom) return JWTKIT_ERR_NOMEM;
  char mac[MAC_B64 + 1];
  if (mac_of(key, b->p, b->len, mac) != 0) return JWTKIT_ERR_CRYPTO;
  jk_buf_puts(b, mac);
  jk_buf_puts(b, k_tail);
  return b->oom ? JWTKIT_ERR_NOMEM : JWTKIT_OK;
}

/* A string member of obj made of exactly n base64url characters (no
 * escapes), or NULL. */
static const char *b64_member(const jk_jdoc *d, int obj, const char *name, size_t n) {
  int i = jk_json_get(d, (uint32_t)obj, name, strlen(name));
  if (i < 0 || d->nodes[i].type != JK_J_STRING || d->nodes[i].esc || d->nodes[i].len != n) return NULL;
  const char *s = d->src + d->nodes[i].off;
  for (size_t k = 0; k < n; k++)
    if (!((s[k] >= 'A' && s[k] <= 'Z') || (s[k] >= 'a' && s[k] <= 'z') || (s[k] >= '0' && s[k] <= '9') ||
          s[k] == '-' || s[k] == '_'))
      return NULL;
  return s;
}

jwtkit_err jk_docauth_check(jk_docauth *a, const jk_jdoc *d, const char *what, int *authenticated,
                            jwtkit_errinfo *info) {
  *authenticated = 0;
  a->verified_by = -1;
  int au = jk_json_get(d, 0, "auth", 4);
  if (a->mode == JK_DOCAUTH_NONE) {
    if (au < 0) return JWTKIT_OK;
    return jk_fail(info, JWTKIT_ERR_PASSPHRASE, "auth",
                   "%s is authenticated with the keyring's passphrase: give the passphrase", what);
  }
  const char *who = a->mode == JK_DOCAUTH_KEK ? "the KEK" : "the passphrase";
  if (au < 0)
    return jk_fail(info, JWTKIT_ERR_BAD_SIGNATURE, "auth",
                   "%s is not authenticated (written by an older jwtkit, or changed by someone without %s); "
                   "review it: jwtkit keyring trust-document",
                   what, who);
  const char *mac = d->nodes[au].type == JK_J_OBJECT ? b64_member(d, au, "mac", MAC_B64) : NULL;
  /* the MAC value is the last thing in the document but for the fixed tail */
  size_t off = mac ? (size_t)(mac - d->src) : 0;
  if (mac == NULL || off + MAC_B64 + sizeof k_tail - 1 != d->len ||
      memcmp(mac + MAC_B64, k_tail, sizeof k_tail - 1) != 0)
    return jk_fail(info, JWTKIT_ERR_BAD_SIGNATURE, "auth", "%s: its auth member is malformed (changed by someone without %s)",
                   what, who);
  const unsigned char *key = NULL;
  int kek = -1;
  if (a->mode == JK_DOCAUTH_KEK) {
    const char *id = b64_member(d, au, "kek", JK_KEK_ID_LEN); /* hex digits are base64url characters too */
    if (id == NULL)
      return jk_fail(info, JWTKIT_ERR_BAD_SIGNATURE, "auth", "%s is not authenticated under a KEK (changed by someone without one)",
                     what);
    for (size_t i = 0; i < a->nkeys && kek < 0; i++)
      if (memcmp(a->ids[i], id, JK_KEK_ID_LEN) == 0) kek = (int)i;
    if (kek < 0)
      return jk_fail(info, JWTKIT_ERR_KEK, "auth",
                     "%s is authenticated under KEK %.16s, which is not among the configured KEKs (a wrong KEK, or "
                     "changed by someone without one)",
                     what, id);
    key = a->keys[kek];
  } else {
    const char *s = b64_member(d, au, "salt", SALT_B64), *check = b64_member(d, au, "check", CHECK_B64);
    unsigned char salt[18];
    size_t sl = 0;
    if (s == NULL || check == NULL || jk_b64url_decode(salt, &sl, s, SALT_B64) != 0 || sl != 16)
      return jk_fail(info, JWTKIT_ERR_BAD_SIGNATURE, "auth",
                     "%s is not authenticated with a passphrase (changed by someone without it)", what);
    char want[CHECK_B64 + 1];
    if (pass_key(a, salt) != 0 || pass_check(a, want) != 0)
      return jk_fail(info, JWTKIT_ERR_CRYPTO, NULL, "deriving the keyring document key failed");
    if (!jk_ct_equal(want, check, CHECK_B64))
      return jk_fail(info, JWTKIT_ERR_PASSPHRASE, "auth",
                     "wrong passphrase for %s (or the file was changed by someone without it)", what);
    key = a->pkey;
  }
  char want[MAC_B64 + 1];
  if (mac_of(key, d->src, off, want) != 0) return jk_fail(info, JWTKIT_ERR_CRYPTO, NULL, "computing a MAC failed");
  if (!jk_ct_equal(want, mac, MAC_B64)) {
    if (a->mode == JK_DOCAUTH_KEK)
      return jk_fail(info, JWTKIT_ERR_BAD_SIGNATURE, "auth",
                     "%s does not match its MAC under KEK %s: changed by someone without the KEK; refused", what,
                     a->ids[kek]);
    return jk_fail(info, JWTKIT_ERR_BAD_SIGNATURE, "auth",
                   "%s does not match its MAC: changed by someone without the passphrase; refused", what);
  }
  a->verified_by = kek;
  *authenticated = 1;
  return JWTKIT_OK;
}
