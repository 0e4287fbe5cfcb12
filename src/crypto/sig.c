/* The JWA algorithm table and the signature primitives over OpenSSL EVP. */
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error_internal.h"
#include "key_internal.h"
#include "key_openssl.h"
#include "p11.h"
#include "common/attr.h"

/* ------------------------------------------------------------- table */

static const jk_alg_info k_algs[JWTKIT_ALG_COUNT] = {
    [JWTKIT_ALG_HS256] = {JWTKIT_ALG_HS256, "HS256", JWTKIT_KTY_OCT, "SHA256", 32, 0, NULL, 0},
    [JWTKIT_ALG_HS384] = {JWTKIT_ALG_HS384, "HS384", JWTKIT_KTY_OCT, "SHA384", 48, 0, NULL, 0},
    [JWTKIT_ALG_HS512] = {JWTKIT_ALG_HS512, "HS512", JWTKIT_KTY_OCT, "SHA512", 64, 0, NULL, 0},
    [JWTKIT_ALG_RS256] = {JWTKIT_ALG_RS256, "RS256", JWTKIT_KTY_RSA, "SHA256", 32, 0, NULL, 0},
    [JWTKIT_ALG_RS384] = {JWTKIT_ALG_RS384, "RS384", JWTKIT_KTY_RSA, "SHA384", 48, 0, NULL, 0},
    [JWTKIT_ALG_RS512] = {JWTKIT_ALG_RS512, "RS512", JWTKIT_KTY_RSA, "SHA512", 64, 0, NULL, 0},
    [JWTKIT_ALG_PS256] = {JWTKIT_ALG_PS256, "PS256", JWTKIT_KTY_RSA, "SHA256", 32, 1, NULL, 0},
    [JWTKIT_ALG_PS384] = {JWTKIT_ALG_PS384, "PS384", JWTKIT_KTY_RSA, "SHA384", 48, 1, NULL, 0},
    [JWTKIT_ALG_PS512] = {JWTKIT_ALG_PS512, "PS512", JWTKIT_KTY_RSA, "SHA512", 64, 1, NULL, 0},
    [JWTKIT_ALG_ES256] = {JWTKIT_ALG_ES256, "ES256", JWTKIT_KTY_EC, "SHA256", 32, 0, "prime256v1", 32},
    [JWTKIT_ALG_ES384] = {JWTKIT_ALG_ES384, "ES384", JWTKIT_KTY_EC, "SHA384", 48, 0, "secp384r1", 48},
    [JWTKIT_ALG_ES512] = {JWTKIT_ALG_ES512, "ES512", JWTKIT_KTY_EC, "SHA512", 64, 0, "secp521r1", 66},
    [JWTKIT_ALG_EDDSA] = {JWTKIT_ALG_EDDSA, "EdDSA", JWTKIT_KTY_OKP, NULL, 0, 0, NULL, 0},
};

const jk_alg_info *jk_alg_get(jwtkit_alg alg) {
  if ((int)alg <= 0 || (int)alg >= JWTKIT_ALG_COUNT) return NULL;
  return &k_algs[alg];
}

jwtkit_alg jwtkit_alg_from_name(const char *name, size_t len) {
  if (name == NULL || len < 5 || len > 5) return JWTKIT_ALG_UNSPEC;
  for (int i = 1; i < JWTKIT_ALG_COUNT; i++)
    if (memcmp(k_algs[i].name, name, 5) == 0) return k_algs[i].id;
  return JWTKIT_ALG_UNSPEC;
}

const char *jwtkit_alg_name(jwtkit_alg alg) {
  const jk_alg_info *ai = jk_alg_get(alg);
  return ai ? ai->name : NULL;
}

jwtkit_kty jwtkit_alg_kty(jwtkit_alg alg) {
  const jk_alg_info *ai = jk_alg_get(alg);
  return ai ? ai->kty : (jwtkit_kty)0;
}

int jk_random(unsigned char *out, size_t n) {
  if (n > INT_MAX) return -1;
  return RAND_bytes(out, (int)n) == 1 ? 0 : -1;
}

/* ------------------------------------------------ prefetched algorithms */

static EVP_MAC *g_hmac;
static EVP_MD *g_md[3]; /* SHA256, SHA384, SHA512 */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void fetch_once(void) {
  g_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
  g_md[0] = EVP_MD_fetch(NULL, "SHA256", NULL);
  g_md[1] = EVP_MD_fetch(NULL, "SHA384", NULL);
  g_md[2] = EVP_MD_fetch(NULL, "SHA512", NULL);
}

const EVP_MD *jk_md_sha2(size_t hash_len) {
  pthread_once(&g_once, fetch_once);
  switch (hash_len) {
    case 32: return g_md[0];
    case 48: return g_md[1];
    case 64: return g_md[2];
    default: return NULL;
  }
}

static const EVP_MD *md_for(const jk_alg_info *ai) { return jk_md_sha2(ai->hash_len); }

static EVP_MAC *hmac_alg(void) {
  pthread_once(&g_once, fetch_once);
  return g_hmac;
}

/* ---------------------------------------------------------- context pool */

typedef struct jk_slot {
  atomic_int busy;
  EVP_MAC_CTX *mac;   /* keyed HMAC, re-initialised per use */
  EVP_PKEY_CTX *vctx; /* verify-initialised RSA/EC context */
  EVP_PKEY_CTX *sctx; /* sign-initialised RSA/EC context */
  EVP_MD_CTX *md;     /* digest (RSA/EC) or DigestSign/Verify (EdDSA) */
  char pad[128 - sizeof(atomic_int) - 4 * sizeof(void *)];
} jk_slot;

static void slot_clear(jk_slot *s) {
  EVP_MAC_CTX_free(s->mac);
  EVP_PKEY_CTX_free(s->vctx);
  EVP_PKEY_CTX_free(s->sctx);
  EVP_MD_CTX_free(s->md);
  s->mac = NULL;
  s->vctx = s->sctx = NULL;
  s->md = NULL;
}

void jk_slots_free(struct jk_slot *slots) {
  if (slots == NULL) return;
  for (int i = 0; i < JK_SLOTS; i++) slot_clear(&slots[i]);
  jk_free(slots);
}

static atomic_uint g_next_thread_slot;
static _Thread_local unsigned tl_slot = UINT_MAX;

static jk_slot *slot_acquire(const jwtkit_key *key, jk_slot *tmp) {
  if (key->slots != NULL) {
    if (tl_slot == UINT_MAX) tl_slot = atomic_fetch_add_explicit(&g_next_thread_slot, 1, memory_order_relaxed);
    for (unsigned k = 0; k < JK_SLOTS; k++) {
      jk_slot *s = &key->slots[(tl_slot + k) % JK_SLOTS];
      if (atomic_load_explicit(&s->busy, memory_order_relaxed) == 0 &&
          atomic_exchange_explicit(&s->busy, 1, memory_order_acquire) == 0)
        return s;
    }
  }
  memset(tmp, 0, sizeof *tmp);
  return tmp;
}

static void slot_release(jk_slot *s, jk_slot *tmp) {
  if (s == tmp) {
    slot_clear(tmp);
    return;
  }
  atomic_store_explicit(&s->busy, 0, memory_order_release);
}

/* -------------------------------------------------------------- HMAC */

static int hmac_compute(const jwtkit_key *key, jk_slot *s, const unsigned char *data, size_t len,
                        unsigned char *out, size_t *outlen) {
  if (s->mac == NULL) {
    EVP_MAC *mac = hmac_alg();
    if (mac == NULL) return -1;
    s->mac = EVP_MAC_CTX_new(mac);
    if (s->mac == NULL) return -1;
    OSSL_PARAM params[2];
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, JK_UNCONST(key->ai->md), 0);
    params[1] = OSSL_PARAM_construct_end();
    if (EVP_MAC_init(s->mac, key->secret, key->secret_len, params) != 1) {
      EVP_MAC_CTX_free(s->mac);
      s->mac = NULL;
      return -1;
    }
  } else if (EVP_MAC_init(s->mac, NULL, 0, NULL) != 1) {
    return -1;
  }
  if (EVP_MAC_update(s->mac, data, len) != 1) return -1;
  return EVP_MAC_final(s->mac, out, outlen, 64) == 1 ? 0 : -1;
}

/* --------------------------------------------------- RSA and ECDSA setup */

static int pkey_ctx_setup(const jwtkit_key *key, EVP_PKEY_CTX *ctx) {
  const jk_alg_info *ai = key->ai;
  if (EVP_PKEY_CTX_set_signature_md(ctx, md_for(ai)) <= 0) return -1;
  if (ai->kty == JWTKIT_KTY_RSA) {
    if (EVP_PKEY_CTX_set_rsa_padding(ctx, ai->pss ? RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING) <= 0)
      return -1;
    if (ai->pss) {
      /* RFC 7518 §3.5: MGF1 with the same hash, salt as long as the hash. */
      if (EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md_for(ai)) <= 0) return -1;
      if (EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_DIGEST) <= 0) return -1;
    }
  }
  return 0;
}

static EVP_PKEY_CTX *pkey_ctx_new(const jwtkit_key *key, int for_sign) {
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, (EVP_PKEY *)key->pkey, NULL);
  if (ctx == NULL) return NULL;
  int ok = for_sign ? EVP_PKEY_sign_init(ctx) : EVP_PKEY_verify_init(ctx);
  if (ok != 1 || pkey_ctx_setup(key, ctx) != 0) {
    EVP_PKEY_CTX_free(ctx);
    return NULL;
  }
  return ctx;
}

static int digest(const jwtkit_key *key, jk_slot *s, const unsigned char *data, size_t len,
                  unsigned char *out, unsigned *outlen) {
  if (s->md == NULL && (s->md = EVP_MD_CTX_new()) == NULL) return -1;
  if (EVP_DigestInit_ex2(s->md, md_for(key->ai), NULL) != 1) return -1;
  if (EVP_DigestUpdate(s->md, data, len) != 1) return -1;
  return EVP_DigestFinal_ex(s->md, out, outlen) == 1 ? 0 : -1;
}

/* ------------------------------------------- ECDSA raw <-> DER (strict) */

/* Write one DER INTEGER for the unsigned big-endian v[0..n). */
static size_t der_int(unsigned char *o, const unsigned char *v, size_t n) {
  while (n > 1 && v[0] == 0) {
    v++;
    n--;
  }
  size_t pad = (v[0] & 0x80) ? 1 : 0;
  size_t body = n + pad, k = 0;
  o[k++] = 0x02;
  if (body >= 0x80) o[k++] = 0x81;
  o[k++] = (unsigned char)body;
  if (pad) o[k++] = 0;
  memcpy(o + k, v, n);
  return k + n;
}

/* raw r||s (2*w bytes) -> DER SEQUENCE.  out needs 2*w + 16 bytes. */
static size_t ecdsa_raw_to_der(unsigned char *out, const unsigned char *raw, size_t w) {
  unsigned char body[2 * 66 + 8];
  size_t bl = der_int(body, raw, w);
  bl += der_int(body + bl, raw + w, w);
  size_t k = 0;
  out[k++] = 0x30;
  if (bl >= 0x80) out[k++] = 0x81;
  out[k++] = (unsigned char)bl;
  memcpy(out + k, body, bl);
  return k + bl;
}

static int der_read_len(const unsigned char *d, size_t n, size_t *pos, size_t *len) {
  if (*pos >= n) return -1;
  unsigned char b = d[(*pos)++];
  if (b < 0x80) {
    *len = b;
  } else if (b == 0x81) {
    if (*pos >= n || d[*pos] < 0x80) return -1;
    *len = d[(*pos)++];
  } else {
    return -1;
  }
  return *len <= n - *pos ? 0 : -1;
}

static int der_read_int(const unsigned char *d, size_t n, size_t *pos, unsigned char *out, size_t w) {
  size_t len;
  if (*pos >= n || d[(*pos)++] != 0x02 || der_read_len(d, n, pos, &len) != 0 || len == 0) return -1;
  const unsigned char *v = d + *pos;
  *pos += len;
  while (len > 0 && v[0] == 0) {
    v++;
    len--;
  }
  if (len > w) return -1;
  memset(out, 0, w - len);
  memcpy(out + (w - len), v, len);
  return 0;
}

static int ecdsa_der_to_raw(unsigned char *raw, size_t w, const unsigned char *der, size_t n) {
  size_t pos = 0, len;
  if (n < 2 || der[pos++] != 0x30 || der_read_len(der, n, &pos, &len) != 0 || pos + len != n) return -1;
  if (der_read_int(der, n, &pos, raw, w) != 0 || der_read_int(der, n, &pos, raw + w, w) != 0) return -1;
  return pos == n ? 0 : -1;
}

/* 1 when 0 < v < order (both big-endian, w bytes). */
static int in_range(const unsigned char *v, const unsigned char *order, size_t w) {
  int nonzero = 0;
  for (size_t i = 0; i < w; i++) nonzero |= v[i];
  return nonzero && memcmp(v, order, w) < 0;
}

/* --------------------------------------------------------- sign/verify */

jwtkit_err jk_sig_sign_info(const jwtkit_key *key, const unsigned char *data, size_t len, unsigned char *sig,
                            size_t cap, size_t *sig_len, jwtkit_errinfo *info) {
  if (key->p11 != NULL && key->can_sign && cap >= key->sig_len)
    return jk_p11_sign(key, data, len, sig, cap, sig_len, info);
  jwtkit_err rc = jk_sig_sign(key, data, len, sig, cap, sig_len);
  return rc == JWTKIT_OK ? rc : jk_fail(info, rc, NULL, "signing failed");
}

jwtkit_err jk_sig_sign(const jwtkit_key *key, const unsigned char *data, size_t len,
                       unsigned char *sig, size_t cap, size_t *sig_len) {
  if (!key->can_sign) return JWTKIT_ERR_INVALID_KEY;
  if (cap < key->sig_len) return JWTKIT_ERR_TOO_LARGE;
  if (key->p11 != NULL) return jk_p11_sign(key, data, len, sig, cap, sig_len, NULL);
  jk_slot tmp, *s = slot_acquire(key, &tmp);
  jwtkit_err rc = JWTKIT_ERR_CRYPTO;
  switch (key->kty) {
    case JWTKIT_KTY_OCT: {
      size_t out = 0;
      if (hmac_compute(key, s, data, len, sig, &out) == 0 && out == key->sig_len) {
        *sig_len = out;
        rc = JWTKIT_OK;
      }
      break;
    }
    case JWTKIT_KTY_RSA:
    case JWTKIT_KTY_EC: {
      unsigned char dg[64];
      unsigned dl = 0;
      if (digest(key, s, data, len, dg, &dl) != 0) break;
      if (s->sctx == NULL && (s->sctx = pkey_ctx_new(key, 1)) == NULL) break;
      if (key->kty == JWTKIT_KTY_RSA) {
        size_t out = cap;
        if (EVP_PKEY_sign(s->sctx, sig, &out, dg, dl) == 1 && out == key->sig_len) {
          *sig_len = out;
          rc = JWTKIT_OK;
        }
      } else {
        unsigned char der[2 * 66 + 16];
        size_t out = sizeof der;
        size_t w = key->ai->ec_bytes;
        if (EVP_PKEY_sign(s->sctx, der, &out, dg, dl) == 1 &&
            ecdsa_der_to_raw(sig, w, der, out) == 0) {
          *sig_len = 2 * w;
          rc = JWTKIT_OK;
        }
      }
      break;
    }
    case JWTKIT_KTY_OKP: {
      if (s->md == NULL && (s->md = EVP_MD_CTX_new()) == NULL) break;
      size_t out = cap;
      if (EVP_DigestSignInit_ex(s->md, NULL, NULL, NULL, NULL, (EVP_PKEY *)key->pkey, NULL) == 1 &&
          EVP_DigestSign(s->md, sig, &out, data, len) == 1 && out == key->sig_len) {
        *sig_len = out;
        rc = JWTKIT_OK;
      }
      break;
    }
  }
  slot_release(s, &tmp);
  return rc;
}

int jk_sig_verify(const jwtkit_key *key, const unsigned char *data, size_t len,
                  const unsigned char *sig, size_t sig_len) {
  if (sig_len != key->sig_len) return 0; /* exact length for every family */
  if (key->kty == JWTKIT_KTY_EC) {
    size_t w = key->ai->ec_bytes;
    if (!in_range(sig, key->order, w) || !in_range(sig + w, key->order, w)) return 0;
  }
  jk_slot tmp, *s = slot_acquire(key, &tmp);
  int rc = -1;
  switch (key->kty) {
    case JWTKIT_KTY_OCT: {
      unsigned char mac[64];
      size_t out = 0;
      if (hmac_compute(key, s, data, len, mac, &out) == 0 && out == sig_len)
        rc = jk_ct_equal(mac, sig, sig_len);
      jk_wipe(mac, sizeof mac);
      break;
    }
    case JWTKIT_KTY_RSA:
    case JWTKIT_KTY_EC: {
      unsigned char dg[64];
      unsigned dl = 0;
      if (digest(key, s, data, len, dg, &dl) != 0) break;
      if (s->vctx == NULL && (s->vctx = pkey_ctx_new(key, 0)) == NULL) break;
      int r;
      if (key->kty == JWTKIT_KTY_RSA) {
        r = EVP_PKEY_verify(s->vctx, sig, sig_len, dg, dl);
      } else {
        unsigned char der[2 * 66 + 16];
        size_t dn = ecdsa_raw_to_der(der, sig, key->ai->ec_bytes);
        r = EVP_PKEY_verify(s->vctx, der, dn, dg, dl);
      }
      rc = r == 1 ? 1 : 0;
      if (r != 1) ERR_clear_error();
      break;
    }
    case JWTKIT_KTY_OKP: {
      if (s->md == NULL && (s->md = EVP_MD_CTX_new()) == NULL) break;
      if (EVP_DigestVerifyInit_ex(s->md, NULL, NULL, NULL, NULL, (EVP_PKEY *)key->pkey, NULL) != 1)
        break;
      rc = EVP_DigestVerify(s->md, sig, sig_len, data, len) == 1 ? 1 : 0;
      if (rc != 1) ERR_clear_error();
      break;
    }
  }
  slot_release(s, &tmp);
  return rc;
}

struct jk_slot *jk_slots_new(void) { return jk_calloc(JK_SLOTS, sizeof(jk_slot)); }
