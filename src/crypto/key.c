#define _GNU_SOURCE /* memmem */
/* Keys: construction from secrets, PEM, DER and EVP_PKEY; validation for
 * the bound algorithm; generation; PEM export. */
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>

#include "codec/json.h"
#include "core/alloc.h"
#include "core/error_internal.h"
#include "common/file.h"
#include "key_internal.h"
#include "key_openssl.h"
#include "p11.h"

#define JK_RSA_MIN_BITS 2048u
#define JK_RSA_MAX_BITS 16384u
#define JK_MAX_KEY_INPUT (1u << 20) /* 1 MiB of PEM/DER/JWK text */

static jwtkit_key *key_alloc(void) {
  jwtkit_key *k = jk_calloc(1, sizeof *k);
  if (k == NULL) return NULL;
  atomic_init(&k->refs, 1);
  k->slots = jk_slots_new();
  if (k->slots == NULL) {
    jk_free(k);
    return NULL;
  }
  return k;
}

jwtkit_key *jwtkit_key_ref(jwtkit_key *key) {
  if (key != NULL) atomic_fetch_add_explicit(&key->refs, 1, memory_order_relaxed);
  return key;
}

void jwtkit_key_free(jwtkit_key *key) {
  if (key == NULL) return;
  if (atomic_fetch_sub_explicit(&key->refs, 1, memory_order_acq_rel) != 1) return;
  jk_p11_key_free(key->p11);
  jk_slots_free(key->slots);
  EVP_PKEY_free((EVP_PKEY *)key->pkey);
  jk_free_secret(key->secret, key->secret_len);
  jk_free(key->kid);
  jk_wipe(key, sizeof *key);
  jk_free(key);
}

jwtkit_err jwtkit_key_set_kid(jwtkit_key *key, const char *kid, size_t len) {
  if (key == NULL || (kid == NULL && len != 0) || len > 255) return JWTKIT_ERR_INVALID_ARG;
  if (atomic_load(&key->refs) != 1) return JWTKIT_ERR_STATE;
  if (len != 0 && memchr(kid, '\0', len) != NULL) return JWTKIT_ERR_INVALID_ARG;
  char *copy = NULL;
  if (len != 0 && (copy = jk_strndup(kid, len)) == NULL) return JWTKIT_ERR_NOMEM;
  jk_free(key->kid);
  key->kid = copy;
  key->kid_len = len;
  return JWTKIT_OK;
}

const char *jwtkit_key_kid(const jwtkit_key *key) { return key ? key->kid : NULL; }
jwtkit_alg jwtkit_key_alg(const jwtkit_key *key) { return key ? key->ai->id : JWTKIT_ALG_UNSPEC; }
jwtkit_kty jwtkit_key_kty(const jwtkit_key *key) { return key ? key->kty : (jwtkit_kty)0; }
int jwtkit_key_can_sign(const jwtkit_key *key) { return key ? key->can_sign : 0; }
unsigned jwtkit_key_bits(const jwtkit_key *key) { return key ? key->bits : 0; }
const char *jwtkit_key_curve(const jwtkit_key *key) { return key ? key->curve : NULL; }

/* ------------------------------------------------------------- secrets */

/* A complete DER SEQUENCE (definite length, spanning all len bytes). */
static int der_sequence_spans(const unsigned char *p, size_t len) {
  if (len < 2 || p[0] != 0x30) return 0;
  size_t n, hdr;
  if (p[1] < 0x80) {
    n = p[1];
    hdr = 2;
  } else {
    size_t k = p[1] & 0x7fu;
    if (k == 0 || k > 4 || len < 2 + k) return 0;
    n = 0;
    for (size_t i = 0; i < k; i++) n = (n << 8) | p[2 + i];
    hdr = 2 + k;
  }
  return hdr + n == len;
}

static jwtkit_err decode_pkey(EVP_PKEY **pkey, const char *type, const char *structure, const char *keytype,
                              const unsigned char *data, size_t len, const char *passphrase);

static const char *jk_secret_key_form(const void *secret, size_t len) {
  const unsigned char *p = secret;
  if (len >= 11 && memmem(p, len, "-----BEGIN ", 11) != NULL) return "a PEM block";
  size_t i = 0;
  while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n')) i++;
  if (i < len && p[i] == '{') {
    jk_jdoc d;
    if (jk_json_parse_alloc(&d, (const char *)p, len, 1, NULL) == JWTKIT_OK) {
      int key = jk_json_get(&d, 0, "kty", 3) >= 0 || jk_json_get(&d, 0, "keys", 4) >= 0;
      jk_free(d.nodes);
      if (key) return "a JWK";
    }
  }
  if (der_sequence_spans(p, len)) {
    static const char *const types[] = {"RSA", "EC", "ED25519", "ED448"};
    for (size_t t = 0; t < sizeof types / sizeof *types; t++) {
      EVP_PKEY *pk = NULL;
      if (decode_pkey(&pk, "DER", NULL, types[t], p, len, NULL) == JWTKIT_OK) {
        EVP_PKEY_free(pk);
        return "a DER key";
      }
    }
  }
  return NULL;
}

static jwtkit_err key_form_fail(const char *form, jwtkit_errinfo *info) {
  return jk_fail(info, JWTKIT_ERR_INVALID_KEY, "k",
                 "the secret is %s: a key is never an HMAC secret (load it as a key; the algorithm-confusion "
                 "pattern)",
                 form);
}

static jwtkit_err secret_key(jwtkit_key **out, const jk_alg_info *ai, const void *secret, size_t len,
                             jwtkit_errinfo *info) {
  if (len > 4096) return jk_fail(info, JWTKIT_ERR_TOO_LARGE, "k", "HMAC secret over 4096 bytes");
  jwtkit_key *k = key_alloc();
  if (k == NULL || (k->secret = jk_malloc(len)) == NULL) {
    jwtkit_key_free(k);
    return jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
  }
  memcpy(k->secret, secret, len);
  k->secret_len = len;
  k->ai = ai;
  k->kty = JWTKIT_KTY_OCT;
  k->can_sign = 1;
  k->bits = (unsigned)(len * 8);
  k->sig_len = ai->hash_len;
  *out = k;
  return JWTKIT_OK;
}

static jwtkit_err secret_alg(jwtkit_alg alg, const jk_alg_info **ai, jwtkit_errinfo *info) {
  *ai = jk_alg_get(alg);
  if (*ai == NULL || (*ai)->kty != JWTKIT_KTY_OCT)
    return jk_fail(info, JWTKIT_ERR_INVALID_KEY, "alg", "a secret can only be an HS256/384/512 key");
  return JWTKIT_OK;
}

jwtkit_err jwtkit_key_from_secret(jwtkit_key **out, jwtkit_alg alg, const void *secret, size_t len,
                                  jwtkit_errinfo *info) {
  if (out == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, NULL);
  *out = NULL;
  const jk_alg_info *ai;
  jwtkit_err rc = secret_alg(alg, &ai, info);
  if (rc != JWTKIT_OK) return rc;
  if (secret == NULL || len < ai->hash_len)
    return jk_fail(info, JWTKIT_ERR_WEAK_KEY, "k",
                   "%s needs a secret of at least %u bytes (RFC 7518 3.2), got %zu", ai->name,
                   ai->hash_len, secret ? len : 0);
  if (len > 4096) return jk_fail(info, JWTKIT_ERR_TOO_LARGE, "k", "HMAC secret over 4096 bytes");
  const char *form = jk_secret_key_form(secret, len);
  if (form != NULL) return key_form_fail(form, info);
  return secret_key(out, ai, secret, len, info);
}

jwtkit_err jwtkit_key_from_secret_text(jwtkit_key **out, jwtkit_alg alg, const char *text, size_t len,
                                       jwtkit_errinfo *info) {
  if (out == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, NULL);
  *out = NULL;
  if (text == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, NULL);
  size_t n = jk_secret_text_len(text, len);
  /* a key is never a secret, judged on the bytes as given too: a DER key
   * whose last byte is 0x0a would no longer parse once the "newline" is
   * taken off (1 in 256 keys) */
  const char *form = n != len && len <= 4096 ? jk_secret_key_form(text, len) : NULL;
  if (form != NULL) return key_form_fail(form, info);
  return jwtkit_key_from_secret(out, alg, text, n, info);
}

jwtkit_err jwtkit_key_from_secret_file(jwtkit_key **out, jwtkit_alg alg, const char *path, jwtkit_errinfo *info) {
  if (out == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, NULL);
  *out = NULL;
  const jk_alg_info *ai;
  jwtkit_err rc = secret_alg(alg, &ai, info);
  if (rc != JWTKIT_OK) return rc;
  char *text = NULL;
  size_t len = 0;
  mode_t mode = 0;
  if ((rc = jk_read_file_mode(path, JK_MAX_SECRET_FILE, &text, &len, &mode, info)) != JWTKIT_OK) return rc;
  /* what the bytes are first (a key is never a secret), then who may read them */
  rc = jwtkit_key_from_secret_text(out, alg, text, len, info);
  jk_free_secret(text, len + 1);
  if (rc == JWTKIT_OK && (rc = jk_check_secret_mode(path, mode, info)) != JWTKIT_OK) {
    jwtkit_key_free(*out);
    *out = NULL;
  }
  if (rc != JWTKIT_OK && info != NULL && strncmp(info->msg, path, strlen(path)) != 0) {
    char msg[sizeof info->msg];
    memcpy(msg, info->msg, sizeof msg);
    size_t pl = strlen(path);
    if (pl + 2 < sizeof info->msg) {
      memcpy(info->msg, path, pl);
      memcpy(info->msg + pl, ": ", 2);
      size_t room = sizeof info->msg - pl - 3;
      size_t ml = strnlen(msg, room);
      memcpy(info->msg + pl + 2, msg, ml);
      info->msg[pl + 2 + ml] = '\0';
    }
  }
  return rc;
}

int jk_pkey_has_private(const EVP_PKEY *pkey) {
  BIGNUM *bn = NULL;
  size_t len = 0;
  switch (EVP_PKEY_get_base_id(pkey)) {
    case EVP_PKEY_RSA:
      if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_D, &bn) == 1) {
        BN_clear_free(bn);
        return 1;
      }
      break;
    case EVP_PKEY_EC:
      if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY, &bn) == 1) {
        BN_clear_free(bn);
        return 1;
      }
      break;
    case EVP_PKEY_ED25519:
    case EVP_PKEY_ED448:
      if (EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY, NULL, 0, &len) == 1)
        return 1;
      break;
    default:
      break;
  }
  ERR_clear_error();
  return 0;
}

static jwtkit_alg alg_for_curve(const char *group) {
  if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0) return JWTKIT_ALG_ES256;
  if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0) return JWTKIT_ALG_ES384;
  if (strcmp(group, "secp521r1") == 0 || strcmp(group, "P-521") == 0) return JWTKIT_ALG_ES512;
  return JWTKIT_ALG_UNSPEC;
}

/* ROCA (CVE-2017-15361, Nemec et al. 2017): moduli from the flawed
 * Infineon generator have the form k * M + (65537^a mod M) for the
 * primorial M, so n mod p lies in the subgroup that 65537 generates in
 * Z_p* for every small prime p of M.  A random modulus passes that test for
 * all 38 primes with negligible probability. */
static int rsa_roca_fingerprint(const BIGNUM *n) {
  static const unsigned primes[] = {3,  5,  7,  11, 13, 17, 19, 23,  29,  31,  37,  41,  43,  47,  53,  59,  61,  67,  71,
                                    73, 79, 83, 89, 97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167};
  for (size_t i = 0; i < sizeof primes / sizeof *primes; i++) {
    unsigned p = primes[i];
    BN_ULONG r = BN_mod_word(n, p);
    if (r == (BN_ULONG)-1) return 0;
    unsigned g = 65537u % p, x = 1;
    int member = 0;
    for (unsigned k = 0; k < p; k++) { /* walk the cyclic subgroup <g> */
      if (x == (unsigned)r) {
        member = 1;
        break;
      }
      x = (x * g) % p;
      if (x == 1) break;
    }
    if (!member) return 0;
  }
  return 1;
}

/* Private/public consistency of a private key. */
static int pairwise_ok(EVP_PKEY *pkey) {
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
  if (ctx == NULL) return 0;
  int ok = EVP_PKEY_pairwise_check(ctx) == 1;
  EVP_PKEY_CTX_free(ctx);
  ERR_clear_error();
  return ok;
}

static int public_ok(EVP_PKEY *pkey) {
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
  if (ctx == NULL) return 0;
  int ok = EVP_PKEY_public_check(ctx) == 1;
  EVP_PKEY_CTX_free(ctx);
  ERR_clear_error();
  return ok;
}

/* Sign and verify a fixed message: catches a private exponent that does not
 * belong to the modulus when the CRT factors are absent. */
static int rsa_roundtrip_ok(jwtkit_key *k) {
  static const unsigned char msg[] = "jwtkit pairwise check";
  unsigned char sig[2048];
  size_t sl = 0;
  if (jk_sig_sign(k, msg, sizeof msg - 1, sig, sizeof sig, &sl) != JWTKIT_OK) return 0;
  return jk_sig_verify(k, msg, sizeof msg - 1, sig, sl) == 1;
}

jwtkit_err jk_key_from_pkey(jwtkit_key **out, jwtkit_alg alg, EVP_PKEY *pkey, jwtkit_errinfo *info) {
  *out = NULL;
  const jk_alg_info *ai = NULL;
  jwtkit_err rc;
  int base = EVP_PKEY_get_base_id(pkey);
  int priv = jk_pkey_has_private(pkey);
  jwtkit_key *k = NULL;
  unsigned bits = 0;
  const char *curve = NULL;
  size_t sig_len = 0;
  unsigned char order[66] = {0};

  if (alg != JWTKIT_ALG_UNSPEC && (ai = jk_alg_get(alg)) == NULL) {
    rc = jk_fail(info, JWTKIT_ERR_INVALID_ARG, "alg", "unknown algorithm");
    goto fail;
  }
  if (ai != NULL && ai->kty == JWTKIT_KTY_OCT) {
    rc = jk_fail(info, JWTKIT_ERR_INVALID_KEY, "alg",
                 "%s needs a secret; a PEM, DER or public key can never be an HMAC key", ai->name);
    goto fail;
  }
  switch (base) {
    case EVP_PKEY_RSA: {
      if (ai == NULL) {
        rc = jk_fail(info, JWTKIT_ERR_INVALID_ARG, "alg", "RSA keys need an explicit RS* or PS* algorithm");
        goto fail;
      }
      if (ai->kty != JWTKIT_KTY_RSA) goto mismatch;
      bits = (unsigned)EVP_PKEY_get_bits(pkey);
      if (bits < JK_RSA_MIN_BITS) {
        rc = jk_fail(info, JWTKIT_ERR_WEAK_KEY, "n", "RSA key has %u bits; at least %u are required",
                     bits, JK_RSA_MIN_BITS);
        goto fail;
      }
      if (bits > JK_RSA_MAX_BITS) {
        rc = jk_fail(info, JWTKIT_ERR_TOO_LARGE, "n", "RSA key has %u bits; at most %u are accepted",
                     bits, JK_RSA_MAX_BITS);
        goto fail;
      }
      BIGNUM *nbn = NULL;
      int roca = EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &nbn) == 1 && rsa_roca_fingerprint(nbn);
      BN_free(nbn);
      if (roca) {
        rc = jk_fail(info, JWTKIT_ERR_WEAK_KEY, "n",
                     "RSA modulus has the ROCA fingerprint (CVE-2017-15361): its private key can be recovered");
        goto fail;
      }
      BIGNUM *e = NULL;
      if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e) != 1) {
        rc = jk_fail(info, JWTKIT_ERR_INVALID_KEY, "e", "RSA key without public exponent");
        goto fail;
      }
      int weak_e = !BN_is_odd(e) || BN_num_bits(e) < 17; /* e >= 65537 and odd */
      BN_free(e);
      if (weak_e) {
        rc = jk_fail(info, JWTKIT_ERR_WEAK_KEY, "e", "RSA public exponent must be odd and >= 65537");
        goto fail;
      }
      sig_len = (size_t)EVP_PKEY_get_size(pkey);
      break;
    }
    case EVP_PKEY_EC: {
      char group[64];
      size_t gl = 0;
      if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &gl) != 1) {
        rc = jk_fail(info, JWTKIT_ERR_INVALID_KEY, "crv", "EC key without a named curve");
        goto fail;
      }
      jwtkit_alg calg = alg_for_curve(group);
      if (calg == JWTKIT_ALG_UNSPEC) {
        rc = jk_fail(info, JWTKIT_ERR_INVALID_KEY, "crv", "EC curve %s is not a JOSE curve", group);
        goto fail;
      }
      if (ai == NULL) ai = jk_alg_get(calg);
      if (ai->kty != JWTKIT_KTY_EC) goto mismatch;
      if (ai->id != calg) {
        rc = jk_fail(info, JWTKIT_ERR_INVALID_KEY, "crv", "curve %s does not match %s", group, ai->name);
        goto fail;
      }
      if (!public_ok(pkey)) {
        rc = jk_fail(info, JWTKIT_ERR_INVALID_KEY, "x", "EC public point is not on the curve");
        goto fail;
      }
      BIGNUM *ord = NULL;
      if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_ORDER, &ord) != 1 ||
          BN_bn2binpad(ord, order, (int)ai->ec_bytes) < 0) {
        BN_free(ord);
        rc = jk_fail(info, JWTKIT_ERR_CRYPTO, NULL, "cannot read the EC group order");
        goto fail;
      }
      BN_free(ord);
      bits = ai->id == JWTKIT_ALG_ES256 ? 256 : ai->id == JWTKIT_ALG_ES384 ? 384 : 521;
      curve = ai->id == JWTKIT_ALG_ES256 ? "P-256" : ai->id == JWTKIT_ALG_ES384 ? "P-384" : "P-521";
      sig_len = 2 * (size_t)ai->ec_bytes;
      break;
    }
    case EVP_PKEY_ED25519:
    case EVP_PKEY_ED448:
      if (ai == NULL) ai = jk_alg_get(JWTKIT_ALG_EDDSA);
      if (ai->kty != JWTKIT_KTY_OKP) goto mismatch;
      bits = base == EVP_PKEY_ED25519 ? 255 : 448;
      curve = base == EVP_PKEY_ED25519 ? "Ed25519" : "Ed448";
      sig_len = base == EVP_PKEY_ED25519 ? 64 : 114;
      break;
    default:
      rc = jk_fail(info, JWTKIT_ERR_UNSUPPORTED, "kty", "key type %s is not a JOSE signature key",
                   EVP_PKEY_get0_type_name(pkey) ? EVP_PKEY_get0_type_name(pkey) : "?");
      goto fail;
  }
  if (priv && base != EVP_PKEY_RSA && !pairwise_ok(pkey)) {
    rc = jk_fail(info, JWTKIT_ERR_INVALID_KEY, "d", "private key does not match its public key");
    goto fail;
  }
  if ((k = key_alloc()) == NULL) {
    rc = jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
    goto fail;
  }
  k->ai = ai;
  k->kty = ai->kty;
  k->pkey = pkey;
  k->can_sign = priv;
  k->bits = bits;
  k->curve = curve;
  k->sig_len = sig_len;
  memcpy(k->order, order, sizeof order);
  if (priv && base == EVP_PKEY_RSA && !rsa_roundtrip_ok(k)) {
    k->pkey = NULL;
    jwtkit_key_free(k);
    rc = jk_fail(info, JWTKIT_ERR_INVALID_KEY, "d", "RSA private key does not match its public key");
    goto fail;
  }
  *out = k;
  return JWTKIT_OK;
mismatch:
  rc = jk_fail(info, JWTKIT_ERR_INVALID_KEY, "alg", "a %s key cannot be used with %s",
               EVP_PKEY_get0_type_name(pkey) ? EVP_PKEY_get0_type_name(pkey) : "?", ai->name);
fail:
  EVP_PKEY_free(pkey);
  ERR_clear_error();
  return rc;
}

/* ---------------------------------------------------------- PEM / DER */

static const char *const k_key_labels[] = {"PUBLIC KEY",     "RSA PUBLIC KEY", "PRIVATE KEY",
                                           "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY",
                                           NULL};

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* Find the single PEM block; refuse text outside it. */
static jwtkit_err pem_single_block(const char *pem, size_t len, const char **blk, size_t *blen,
                                   char *label, size_t lcap, jwtkit_errinfo *info) {
  static const char begin[] = "-----BEGIN ", end[] = "-----END ";
  size_t i = 0;
  while (i < len && is_space(pem[i])) i++;
  if (len - i < sizeof begin - 1 || memcmp(pem + i, begin, sizeof begin - 1) != 0)
    return jk_fail(info, JWTKIT_ERR_INVALID_KEY, NULL, "not a PEM key (no BEGIN line)");
  size_t ls = i + sizeof begin - 1, le = ls;
  while (le < len && pem[le] != '-' && pem[le] != '\n') le++;
  if (le + 5 > len || memcmp(pem + le, "-----", 5) != 0 || le - ls >= lcap)
    return jk_fail(info, JWTKIT_ERR_INVALID_KEY, NULL, "bad PEM BEGIN line");
  memcpy(label, pem + ls, le - ls);
  label[le - ls] = '\0';
  /* find the END line with the same label */
  const char *p = pem + le;
  size_t rest = len - le;
  const char *e = NULL;
  for (size_t k = 0; k + sizeof end - 1 <= rest; k++) {
    if (p[k] == '-' && memcmp(p + k, end, sizeof end - 1) == 0) {
      e = p + k;
      break;
    }
  }
  if (e == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_KEY, NULL, "PEM block has no END line");
  size_t el = (size_t)(e - pem) + sizeof end - 1;
  size_t ll = strlen(label);
  if (len - el < ll + 5 || memcmp(pem + el, label, ll) != 0 || memcmp(pem + el + ll, "-----", 5) != 0)
    return jk_fail(info, JWTKIT_ERR_INVALID_KEY, NULL, "PEM END label does not match BEGIN %s", label);
  size_t stop = el + ll + 5;
  for (size_t k = stop; k < len; k++)
    if (!is_space(pem[k]))
      return jk_fail(info, JWTKIT_ERR_INVALID_KEY, NULL,
                     "text after the PEM block (one key per file is expected)");
  int known = 0;
  for (int k = 0; k_key_labels[k] != NULL; k++)
    if (strcmp(label, k_key_labels[k]) == 0) known = 1;
  if (!known) return jk_fail(info, JWTKIT_ERR_UNSUPPORTED, NULL, "PEM block \"%s\" is not a key", label);
  *blk = pem + i;
  *blen = stop - i;
  return JWTKIT_OK;
}

static jwtkit_err decode_pkey(EVP_PKEY **pkey, const char *type, const char *structure, const char *keytype,
                              const unsigned char *data, size_t len, const char *passphrase) {
  *pkey = NULL;
  OSSL_DECODER_CTX *dctx = OSSL_DECODER_CTX_new_for_pkey(pkey, type, structure, keytype, 0, NULL, NULL);
  if (dctx == NULL) return JWTKIT_ERR_CRYPTO;
  if (passphrase != NULL)
    OSSL_DECODER_CTX_set_passphrase(dctx, (const unsigned char *)passphrase, strlen(passphrase));
  const unsigned char *p = data;
  size_t l = len;
  int ok = OSSL_DECODER_from_data(dctx, &p, &l);
  OSSL_DECODER_CTX_free(dctx);
  ERR_clear_error();
  if (!ok || *pkey == NULL) {
    EVP_PKEY_free(*pkey);
    *pkey = NULL;
    return JWTKIT_ERR_INVALID_KEY;
  }
  if (l != 0) { /* trailing bytes inside the structure */
    EVP_PKEY_free(*pkey);
    *pkey = NULL;
    return JWTKIT_ERR_INVALID_KEY;
  }
  return JWTKIT_OK;
}

jwtkit_err jwtkit_key_from_pem(jwtkit_key **out, jwtkit_alg alg, const char *pem, size_t len,
                               const char *passphrase, jwtkit_errinfo *info) {
  if (out == NULL || pem == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, NULL);
  *out = NULL;
  if (len > JK_MAX_KEY_INPUT) return jk_fail(info, JWTKIT_ERR_TOO_LARGE, NULL, "PEM input over 1 MiB");
  const char *blk = NULL;
  size_t blen = 0;
  char label[64];
  jwtkit_err rc = pem_single_block(pem, len, &blk, &blen, label, sizeof label, info);
  if (rc != JWTKIT_OK) return rc;
  int encrypted = strcmp(label, "ENCRYPTED PRIVATE KEY") == 0 ||
                  (blen > 24 && memmem(blk, blen, "Proc-Type: 4,ENCRYPTED", 22) != NULL);
  if (encrypted && passphrase == NULL)
    return jk_fail(info, JWTKIT_ERR_PASSPHRASE, NULL, "the private key is encrypted; a passphrase is needed");
  EVP_PKEY *pkey = NULL;
  rc = decode_pkey(&pkey, "PEM", NULL, NULL, (const unsigned char *)blk, blen, encrypted ? passphrase : NULL);
  if (rc != JWTKIT_OK) {
    if (encrypted) return jk_fail(info, JWTKIT_ERR_PASSPHRASE, NULL, "cannot decrypt the private key (wrong passphrase?)");
    return jk_fail(info, rc, NULL, "cannot decode the PEM %s block", label);
  }
  int wants_private = strstr(label, "PRIVATE") != NULL;
  if (wants_private != jk_pkey_has_private(pkey)) {
    EVP_PKEY_free(pkey);
    return jk_fail(info, JWTKIT_ERR_INVALID_KEY, NULL, "PEM label %s does not match its content", label);
  }
  return jk_key_from_pkey(out, alg, pkey, info);
}

jwtkit_err jwtkit_key_from_der(jwtkit_key **out, jwtkit_alg alg, const unsigned char *der, size_t len,
                               jwtkit_errinfo *info) {
  if (out == NULL || der == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, NULL);
  *out = NULL;
  if (len > JK_MAX_KEY_INPUT) return jk_fail(info, JWTKIT_ERR_TOO_LARGE, NULL, "DER input over 1 MiB");
  /* DER carries no label, and a bare SEQUENCE of INTEGERs decodes as more
   * than one algorithm's key: only ask for the key types the algorithm can
   * use (RSA needs an explicit alg anyway). */
  static const char *const any[] = {"EC", "ED25519", "ED448", NULL};
  static const char *const rsa[] = {"RSA", NULL};
  static const char *const ec[] = {"EC", NULL};
  static const char *const okp[] = {"ED25519", "ED448", NULL};
  const char *const *types = any;
  switch (jwtkit_alg_kty(alg)) {
    case JWTKIT_KTY_RSA: types = rsa; break;
    case JWTKIT_KTY_EC: types = ec; break;
    case JWTKIT_KTY_OKP: types = okp; break;
    case JWTKIT_KTY_OCT:
      return jk_fail(info, JWTKIT_ERR_INVALID_KEY, "alg", "a DER key can never be an HMAC key");
  }
  EVP_PKEY *pkey = NULL;
  jwtkit_err rc = JWTKIT_ERR_INVALID_KEY;
  for (size_t i = 0; types[i] != NULL && rc != JWTKIT_OK; i++)
    rc = decode_pkey(&pkey, "DER", NULL, types[i], der, len, NULL);
  if (rc != JWTKIT_OK) return jk_fail(info, rc, NULL, "cannot decode the DER key");
  return jk_key_from_pkey(out, alg, pkey, info);
}

/* ---------------------------------------------------------- generation */

jwtkit_err jwtkit_key_generate(jwtkit_key **out, jwtkit_alg alg, unsigned bits, jwtkit_errinfo *info) {
  if (out == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, NULL);
  *out = NULL;
  const jk_alg_info *ai = jk_alg_get(alg);
  if (ai == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, "alg", "unknown algorithm");
  EVP_PKEY *pkey = NULL;
  switch (ai->kty) {
    case JWTKIT_KTY_OCT: {
      unsigned char secret[64];
      if (jk_random(secret, ai->hash_len) != 0) return jk_fail(info, JWTKIT_ERR_CRYPTO, NULL, "CSPRNG failed");
      jwtkit_err rc = secret_key(out, ai, secret, ai->hash_len, info); /* random bytes: no form check */
      jk_wipe(secret, sizeof secret);
      return rc;
    }
    case JWTKIT_KTY_RSA:
      if (bits == 0) bits = 2048;
      if (bits < JK_RSA_MIN_BITS || bits > JK_RSA_MAX_BITS || bits % 8 != 0)
        return jk_fail(info, JWTKIT_ERR_INVALID_ARG, "bits", "RSA size must be a multiple of 8 in 2048..16384");
      pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
      break;
    case JWTKIT_KTY_EC:
      pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", ai->curve);
      break;
    case JWTKIT_KTY_OKP:
      if (bits != 0 && bits != 255 && bits != 448)
        return jk_fail(info, JWTKIT_ERR_INVALID_ARG, "bits", "EdDSA: 255 (Ed25519) or 448 (Ed448)");
      pkey = EVP_PKEY_Q_keygen(NULL, NULL, bits == 448 ? "ED448" : "ED25519");
      break;
  }
  if (pkey == NULL) {
    ERR_clear_error();
    return jk_fail(info, JWTKIT_ERR_CRYPTO, NULL, "key generation failed");
  }
  return jk_key_from_pkey(out, alg, pkey, info);
}

/* ------------------------------------------------------------ PEM out */

jwtkit_err jwtkit_key_to_pem(const jwtkit_key *key, int include_private, const char *passphrase,
                             char **pem, size_t *len) {
  if (key == NULL || pem == NULL) return JWTKIT_ERR_INVALID_ARG;
  *pem = NULL;
  if (key->kty == JWTKIT_KTY_OCT) return JWTKIT_ERR_UNSUPPORTED;
  if (include_private && key->p11 != NULL) return JWTKIT_ERR_UNSUPPORTED; /* the private key stays in the token */
  if (include_private && !key->can_sign) return JWTKIT_ERR_INVALID_ARG;
  BIO *bio = BIO_new(BIO_s_mem());
  if (bio == NULL) return JWTKIT_ERR_NOMEM;
  int ok;
  EVP_PKEY *pk = (EVP_PKEY *)key->pkey;
  if (include_private) {
    if (passphrase != NULL)
      ok = PEM_write_bio_PKCS8PrivateKey(bio, pk, EVP_aes_256_cbc(), passphrase, (int)strlen(passphrase),
                                         NULL, NULL);
    else
      ok = PEM_write_bio_PKCS8PrivateKey(bio, pk, NULL, NULL, 0, NULL, NULL);
  } else {
    ok = PEM_write_bio_PUBKEY(bio, pk);
  }
  jwtkit_err rc = JWTKIT_ERR_CRYPTO;
  if (ok == 1) {
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    if (n > 0) {
      *pem = jk_strndup(data, (size_t)n);
      rc = *pem ? JWTKIT_OK : JWTKIT_ERR_NOMEM;
      if (len != NULL) *len = (size_t)n;
      jk_wipe(data, (size_t)n);
    }
  }
  BIO_free(bio);
  ERR_clear_error();
  return rc;
}

/* ------------------------------------------------------ OpenSSL bridge */

#include "jwtkit/openssl.h"

jwtkit_err jwtkit_key_from_evp(jwtkit_key **out, jwtkit_alg alg, EVP_PKEY *pkey, jwtkit_errinfo *info) {
  if (out == NULL || pkey == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, NULL);
  *out = NULL;
  if (EVP_PKEY_up_ref(pkey) != 1) return jk_fail(info, JWTKIT_ERR_CRYPTO, NULL, NULL);
  return jk_key_from_pkey(out, alg, pkey, info);
}

const EVP_PKEY *jwtkit_key_evp(const jwtkit_key *key) { return key ? (const EVP_PKEY *)key->pkey : NULL; }
