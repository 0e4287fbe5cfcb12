/*
 * The raw OpenSSL floor: the least work a compact JWS of the fixed shape
 * needs with OpenSSL 3, and no JSON.
 *
 *   sign:   header_b64 (prepared once) "." b64url(claims) ; MAC/sign that
 *           signing input ; "." b64url(signature)  (ECDSA: DER -> r||s)
 *   verify: find the two dots ; b64url-decode the signature ; MAC/verify the
 *           signing input (ECDSA: r||s -> DER) ; b64url-decode the payload
 *
 * Techniques (the fastest this OpenSSL offers for each family):
 *   HMAC       one EVP_MAC_CTX keyed once, EVP_MAC_init(ctx, NULL, 0, NULL)
 *              per op; CRYPTO_memcmp on verify
 *   RSA/ECDSA  EVP_PKEY_CTX prepared once (sign_init/verify_init, padding,
 *              md, PSS salt) + the digest per op with a reused EVP_MD_CTX
 *              and a prefetched EVP_MD
 *   EdDSA      EVP_DigestSignInit_ex/EVP_DigestVerifyInit_ex per op on a
 *              reused EVP_MD_CTX (OpenSSL 3.0 has no other one-shot path)
 */
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/opensslv.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

enum { F_HMAC, F_RSA, F_EC, F_OKP };

struct floor_ctx {
  const bench_fixture *fx;
  int kind;
  EVP_MAC *mac;
  EVP_MAC_CTX *mac_ctx;
  EVP_PKEY *priv, *pub;
  EVP_PKEY_CTX *sctx, *vctx;
  EVP_MD *md;
  EVP_MD_CTX *mdctx;  /* digest (RSA/ECDSA) or DigestSign (EdDSA) */
  EVP_MD_CTX *vmdctx; /* DigestVerify (EdDSA): OpenSSL 3.0 cannot sign-init a
                         context last verify-initialised with another key */
  size_t ec_w;    /* r and s width for ECDSA */
  size_t sig_len; /* JWS signature length */
  char hdr[192];  /* base64url of the protected header */
  size_t hdr_len;
};

const char *floor_openssl_version(void) { return OpenSSL_version(OPENSSL_VERSION); }

int floor_random(unsigned char *out, size_t n) { return RAND_bytes(out, (int)n) == 1 ? 0 : -1; }

/* ---------------------------------------------------------- base64url */

static const char k_b64[64] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static unsigned char k_unb64[256];

static void b64_init(void) {
  memset(k_unb64, 0xFF, sizeof k_unb64);
  for (unsigned i = 0; i < 64; i++) k_unb64[(unsigned char)k_b64[i]] = (unsigned char)i;
}

static size_t b64_enc(char *o, const unsigned char *in, size_t n) {
  char *s = o;
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
    *o++ = k_b64[v >> 18];
    *o++ = k_b64[(v >> 12) & 63];
    *o++ = k_b64[(v >> 6) & 63];
    *o++ = k_b64[v & 63];
  }
  if (n - i == 1) {
    *o++ = k_b64[in[i] >> 2];
    *o++ = k_b64[(in[i] & 3) << 4];
  } else if (n - i == 2) {
    unsigned v = (unsigned)in[i] << 8 | in[i + 1];
    *o++ = k_b64[v >> 10];
    *o++ = k_b64[(v >> 4) & 63];
    *o++ = k_b64[(v & 15) << 2];
  }
  return (size_t)(o - s);
}

/* Decoded length, or (size_t)-1 on a character outside the alphabet. */
static size_t b64_dec(unsigned char *o, const char *in, size_t n) {
  const unsigned char *s = (const unsigned char *)in;
  unsigned char *start = o;
  size_t full = n & ~(size_t)3, rem = n & 3;
  unsigned bad = 0;
  for (size_t i = 0; i < full; i += 4) {
    unsigned a = k_unb64[s[i]], b = k_unb64[s[i + 1]], c = k_unb64[s[i + 2]], d = k_unb64[s[i + 3]];
    bad |= a | b | c | d;
    unsigned v = a << 18 | b << 12 | c << 6 | d;
    o[0] = (unsigned char)(v >> 16);
    o[1] = (unsigned char)(v >> 8);
    o[2] = (unsigned char)v;
    o += 3;
  }
  if (rem >= 2) {
    unsigned a = k_unb64[s[full]], b = k_unb64[s[full + 1]], c = rem == 3 ? k_unb64[s[full + 2]] : 0;
    bad |= a | b | c;
    unsigned v = a << 18 | b << 12 | c << 6;
    *o++ = (unsigned char)(v >> 16);
    if (rem == 3) *o++ = (unsigned char)(v >> 8);
  }
  return (bad & 0x80) || rem == 1 ? (size_t)-1 : (size_t)(o - start);
}

/* ------------------------------------------------- ECDSA DER <-> r||s */

static size_t der_put_int(unsigned char *o, const unsigned char *v, size_t n) {
  while (n > 1 && v[0] == 0) v++, n--;
  size_t pad = v[0] >> 7, k = 0;
  o[k++] = 0x02;
  if (n + pad >= 0x80) o[k++] = 0x81;
  o[k++] = (unsigned char)(n + pad);
  if (pad) o[k++] = 0;
  memcpy(o + k, v, n);
  return k + n;
}

static size_t raw_to_der(unsigned char *out, const unsigned char *raw, size_t w) {
  unsigned char body[2 * 66 + 8];
  size_t bl = der_put_int(body, raw, w);
  bl += der_put_int(body + bl, raw + w, w);
  size_t k = 0;
  out[k++] = 0x30;
  if (bl >= 0x80) out[k++] = 0x81;
  out[k++] = (unsigned char)bl;
  memcpy(out + k, body, bl);
  return k + bl;
}

/* OpenSSL's own output, so only the shape is checked. */
static int der_get_int(const unsigned char **p, const unsigned char *end, unsigned char *out, size_t w) {
  const unsigned char *d = *p;
  if (end - d < 2 || d[0] != 0x02) return -1;
  size_t len = d[1], hl = 2;
  if (len == 0x81) len = d[2], hl = 3;
  d += hl;
  if ((size_t)(end - d) < len) return -1;
  *p = d + len;
  while (len > 0 && d[0] == 0) d++, len--;
  if (len > w) return -1;
  memset(out, 0, w - len);
  memcpy(out + w - len, d, len);
  return 0;
}

static int der_to_raw(unsigned char *raw, size_t w, const unsigned char *der, size_t n) {
  if (n < 2 || der[0] != 0x30) return -1;
  const unsigned char *p = der + (der[1] == 0x81 ? 3 : 2), *end = der + n;
  return der_get_int(&p, end, raw, w) == 0 && der_get_int(&p, end, raw + w, w) == 0 ? 0 : -1;
}

/* ------------------------------------------------------ the primitives */

static int digest(floor_ctx *f, const unsigned char *d, size_t n, unsigned char *dg, unsigned *dl) {
  return EVP_DigestInit_ex2(f->mdctx, f->md, NULL) == 1 && EVP_DigestUpdate(f->mdctx, d, n) == 1 &&
                 EVP_DigestFinal_ex(f->mdctx, dg, dl) == 1
             ? 0
             : -1;
}

/* Signature over d[0..n) in JWS form; its length or 0. */
static size_t sig_compute(floor_ctx *f, const unsigned char *d, size_t n, unsigned char *sig, size_t cap) {
  size_t out = cap;
  switch (f->kind) {
    case F_HMAC:
      if (EVP_MAC_init(f->mac_ctx, NULL, 0, NULL) != 1 || EVP_MAC_update(f->mac_ctx, d, n) != 1 ||
          EVP_MAC_final(f->mac_ctx, sig, &out, cap) != 1)
        return 0;
      return out;
    case F_RSA: {
      unsigned char dg[EVP_MAX_MD_SIZE];
      unsigned dl;
      if (digest(f, d, n, dg, &dl) != 0 || EVP_PKEY_sign(f->sctx, sig, &out, dg, dl) != 1) return 0;
      return out;
    }
    case F_EC: {
      unsigned char dg[EVP_MAX_MD_SIZE], der[2 * 66 + 16];
      unsigned dl;
      size_t derl = sizeof der;
      if (digest(f, d, n, dg, &dl) != 0 || EVP_PKEY_sign(f->sctx, der, &derl, dg, dl) != 1 ||
          der_to_raw(sig, f->ec_w, der, derl) != 0)
        return 0;
      return 2 * f->ec_w;
    }
    default:
      if (EVP_DigestSignInit_ex(f->mdctx, NULL, NULL, NULL, NULL, f->priv, NULL) != 1 ||
          EVP_DigestSign(f->mdctx, sig, &out, d, n) != 1)
        return 0;
      return out;
  }
}

/* 1 valid, 0 not. */
static int sig_check(floor_ctx *f, const unsigned char *d, size_t n, const unsigned char *sig, size_t sl) {
  if (sl != f->sig_len) return 0;
  int ok = 0;
  switch (f->kind) {
    case F_HMAC: {
      unsigned char mac[EVP_MAX_MD_SIZE];
      size_t ml = 0;
      ok = EVP_MAC_init(f->mac_ctx, NULL, 0, NULL) == 1 && EVP_MAC_update(f->mac_ctx, d, n) == 1 &&
           EVP_MAC_final(f->mac_ctx, mac, &ml, sizeof mac) == 1 && ml == sl && CRYPTO_memcmp(mac, sig, sl) == 0;
      break;
    }
    case F_RSA: {
      unsigned char dg[EVP_MAX_MD_SIZE];
      unsigned dl;
      ok = digest(f, d, n, dg, &dl) == 0 && EVP_PKEY_verify(f->vctx, sig, sl, dg, dl) == 1;
      break;
    }
    case F_EC: {
      unsigned char dg[EVP_MAX_MD_SIZE], der[2 * 66 + 16];
      unsigned dl;
      size_t derl = raw_to_der(der, sig, f->ec_w);
      ok = digest(f, d, n, dg, &dl) == 0 && EVP_PKEY_verify(f->vctx, der, derl, dg, dl) == 1;
      break;
    }
    default:
      ok = EVP_DigestVerifyInit_ex(f->vmdctx, NULL, NULL, NULL, NULL, f->pub, NULL) == 1 &&
           EVP_DigestVerify(f->vmdctx, sig, sl, d, n) == 1;
      break;
  }
  if (!ok) ERR_clear_error();
  return ok;
}

/* ---------------------------------------------------------------- ops */

size_t floor_sign_token(floor_ctx *f, char *out, size_t cap) {
  const bench_fixture *fx = f->fx;
  if (cap < f->hdr_len + 1 + (fx->claims_len + 2) / 3 * 4 + 1 + (f->sig_len + 2) / 3 * 4 + 1) return 0;
  char *o = out;
  memcpy(o, f->hdr, f->hdr_len);
  o += f->hdr_len;
  *o++ = '.';
  o += b64_enc(o, (const unsigned char *)fx->claims, fx->claims_len);
  unsigned char sig[1024];
  size_t sl = sig_compute(f, (const unsigned char *)out, (size_t)(o - out), sig, sizeof sig);
  if (sl == 0) return 0;
  *o++ = '.';
  o += b64_enc(o, sig, sl);
  *o = '\0';
  return (size_t)(o - out);
}

int floor_verify_token(floor_ctx *f, const char *tok, size_t len) {
  const char *d1 = memchr(tok, '.', len);
  const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok)) : NULL;
  if (d2 == NULL) return 0;
  const char *sig_b64 = d2 + 1;
  size_t sig_b64_len = len - (size_t)(sig_b64 - tok);
  unsigned char sig[1024], pay[BENCH_TOKEN_CAP];
  if (sig_b64_len > sizeof sig / 3 * 4) return 0;
  size_t sl = b64_dec(sig, sig_b64, sig_b64_len);
  if (sl == (size_t)-1 || !sig_check(f, (const unsigned char *)tok, (size_t)(d2 - tok), sig, sl)) return 0;
  size_t pay_b64_len = (size_t)(d2 - d1 - 1);
  if (pay_b64_len > sizeof pay / 4 * 3) return 0;
  return b64_dec(pay, d1 + 1, pay_b64_len) != (size_t)-1;
}

int floor_op_sign(void *ctx) {
  char tok[BENCH_TOKEN_CAP];
  return floor_sign_token(ctx, tok, sizeof tok) != 0 ? 0 : -1;
}

int floor_op_verify(void *ctx) {
  floor_ctx *f = ctx;
  return floor_verify_token(f, f->fx->token, f->fx->token_len) ? 0 : -1;
}

/* -------------------------------------------------------------- setup */

static EVP_PKEY *load_pem(const char *pem, size_t len, int priv) {
  BIO *b = BIO_new_mem_buf(pem, (int)len);
  if (b == NULL) return NULL;
  EVP_PKEY *k = priv ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
  BIO_free(b);
  return k;
}

static EVP_PKEY_CTX *pkey_ctx(floor_ctx *f, EVP_PKEY *k, int sign, int pss) {
  EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
  int ok = c != NULL && (sign ? EVP_PKEY_sign_init(c) : EVP_PKEY_verify_init(c)) == 1 &&
           EVP_PKEY_CTX_set_signature_md(c, f->md) > 0;
  if (ok && f->kind == F_RSA)
    ok = EVP_PKEY_CTX_set_rsa_padding(c, pss ? RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING) > 0 &&
         (!pss || (EVP_PKEY_CTX_set_rsa_mgf1_md(c, f->md) > 0 &&
                   EVP_PKEY_CTX_set_rsa_pss_saltlen(c, RSA_PSS_SALTLEN_DIGEST) > 0));
  if (!ok) {
    EVP_PKEY_CTX_free(c);
    return NULL;
  }
  return c;
}

static const char *md_name(jwtkit_alg alg) {
  switch (alg) {
    case JWTKIT_ALG_HS256: case JWTKIT_ALG_RS256: case JWTKIT_ALG_PS256: case JWTKIT_ALG_ES256: return "SHA256";
    case JWTKIT_ALG_HS384: case JWTKIT_ALG_RS384: case JWTKIT_ALG_PS384: case JWTKIT_ALG_ES384: return "SHA384";
    case JWTKIT_ALG_HS512: case JWTKIT_ALG_RS512: case JWTKIT_ALG_PS512: case JWTKIT_ALG_ES512: return "SHA512";
    default: return NULL;
  }
}

floor_ctx *floor_new(const bench_fixture *fx, const floor_ctx *share, char *err, size_t errlen) {
  static int b64_ready;
  if (!b64_ready) {
    b64_init();
    b64_ready = 1;
  }
  floor_ctx *f = calloc(1, sizeof *f);
  if (f == NULL) return snprintf(err, errlen, "out of memory"), NULL;
  f->fx = fx;
  jwtkit_alg alg = fx->a->alg;
  jwtkit_kty kty = jwtkit_alg_kty(alg);
  f->kind = kty == JWTKIT_KTY_OCT ? F_HMAC : kty == JWTKIT_KTY_RSA ? F_RSA : kty == JWTKIT_KTY_EC ? F_EC : F_OKP;
  int pss = alg == JWTKIT_ALG_PS256 || alg == JWTKIT_ALG_PS384 || alg == JWTKIT_ALG_PS512;
  f->hdr_len = b64_enc(f->hdr, (const unsigned char *)fx->header, fx->header_len);
  const char *what = "setup";
  if (md_name(alg) != NULL && (f->md = EVP_MD_fetch(NULL, md_name(alg), NULL)) == NULL) {
    what = "EVP_MD_fetch";
    goto fail;
  }
  if ((f->mdctx = EVP_MD_CTX_new()) == NULL || (f->vmdctx = EVP_MD_CTX_new()) == NULL) goto fail;
  if (f->kind == F_HMAC) {
    OSSL_PARAM params[2] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)(uintptr_t)md_name(alg), 0),
                            OSSL_PARAM_construct_end()};
    what = "HMAC context";
    if ((f->mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL || (f->mac_ctx = EVP_MAC_CTX_new(f->mac)) == NULL ||
        EVP_MAC_init(f->mac_ctx, fx->secret, fx->secret_len, params) != 1)
      goto fail;
    f->sig_len = fx->secret_len; /* the secret is as long as the hash */
  } else {
    what = "PEM key";
    if (share != NULL) {
      if (EVP_PKEY_up_ref(share->priv) != 1) goto fail;
      f->priv = share->priv;
      if (EVP_PKEY_up_ref(share->pub) != 1) goto fail;
      f->pub = share->pub;
    } else if ((f->priv = load_pem(fx->priv_pem, fx->priv_pem_len, 1)) == NULL ||
               (f->pub = load_pem(fx->pub_pem, fx->pub_pem_len, 0)) == NULL) {
      goto fail;
    }
    if (f->kind == F_RSA || f->kind == F_EC) {
      what = "EVP_PKEY_CTX";
      if ((f->sctx = pkey_ctx(f, f->priv, 1, pss)) == NULL || (f->vctx = pkey_ctx(f, f->pub, 0, pss)) == NULL)
        goto fail;
    }
    /* RSA and EdDSA: get_size is the signature size; ECDSA: r||s */
    f->ec_w = f->kind == F_EC ? (size_t)(EVP_PKEY_get_bits(f->pub) + 7) / 8 : 0;
    f->sig_len = f->kind == F_EC ? 2 * f->ec_w : (size_t)EVP_PKEY_get_size(f->pub);
  }
  return f;
fail:
  snprintf(err, errlen, "floor: %s failed", what);
  ERR_clear_error();
  floor_free(f);
  return NULL;
}

void floor_free(floor_ctx *f) {
  if (f == NULL) return;
  EVP_MAC_CTX_free(f->mac_ctx);
  EVP_MAC_free(f->mac);
  EVP_PKEY_CTX_free(f->sctx);
  EVP_PKEY_CTX_free(f->vctx);
  EVP_PKEY_free(f->priv);
  EVP_PKEY_free(f->pub);
  EVP_MD_CTX_free(f->mdctx);
  EVP_MD_CTX_free(f->vmdctx);
  EVP_MD_free(f->md);
  free(f);
}
