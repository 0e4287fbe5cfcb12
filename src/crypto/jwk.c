/* JWK (RFC 7517/7518/8037) import and export, RFC 7638 thumbprints. */
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <string.h>

#include "codec/b64url.h"
#include "codec/json.h"
#include "core/alloc.h"
#include "core/error_internal.h"
#include "key_internal.h"
#include "key_openssl.h"

#define JK_MAX_JWK 65536u
#define JK_MAX_BIN 2048u /* largest decoded member: an RSA-16384 modulus */

typedef struct jwk_ctx {
  const jk_jdoc *doc;
  jwtkit_errinfo *info;
} jwk_ctx;

/* Decode the base64url string member `name` into a fresh buffer.
 * Returns 1 when found, 0 when absent, -1 on error (info filled). */
static int get_b64(jwk_ctx *c, const char *name, unsigned char **out, size_t *outlen) {
  *out = NULL;
  *outlen = 0;
  int v = jk_json_get(c->doc, 0, name, strlen(name));
  if (v < 0) return 0;
  const jk_jnode *nd = &c->doc->nodes[v];
  if (nd->type != JK_J_STRING || nd->esc) {
    jk_fail(c->info, JWTKIT_ERR_INVALID_KEY, name, "JWK member \"%s\" must be a base64url string", name);
    return -1;
  }
  size_t max = jk_b64url_dec_max(nd->len);
  if (max > JK_MAX_BIN + 2) {
    jk_fail(c->info, JWTKIT_ERR_TOO_LARGE, name, "JWK member \"%s\" is too long", name);
    return -1;
  }
  unsigned char *buf = jk_malloc(max);
  if (buf == NULL) {
    jk_fail(c->info, JWTKIT_ERR_NOMEM, NULL, NULL);
    return -1;
  }
  if (jk_b64url_decode(buf, outlen, c->doc->src + nd->off, nd->len) != 0 || *outlen == 0) {
    jk_free_secret(buf, max);
    jk_fail(c->info, JWTKIT_ERR_INVALID_KEY, name, "JWK member \"%s\" is not canonical base64url", name);
    return -1;
  }
  *out = buf;
  return 1;
}

/* String member into a caller buffer.  1 found, 0 absent, -1 error. */
static int get_str(jwk_ctx *c, const char *name, char *out, size_t cap) {
  int v = jk_json_get(c->doc, 0, name, strlen(name));
  if (v < 0) return 0;
  const jk_jnode *nd = &c->doc->nodes[v];
  if (nd->type != JK_J_STRING) {
    jk_fail(c->info, JWTKIT_ERR_INVALID_KEY, name, "JWK member \"%s\" must be a short string", name);
    return -1;
  }
  if (nd->len < cap) { /* unescaping never grows */
    jk_json_unescape(c->doc, (uint32_t)v, out);
    return 1;
  }
  /* the escaped text may be up to six times the value: the value decides */
  char *tmp = jk_malloc((size_t)nd->len + 1);
  if (tmp == NULL) {
    jk_fail(c->info, JWTKIT_ERR_NOMEM, NULL, NULL);
    return -1;
  }
  size_t n = jk_json_unescape(c->doc, (uint32_t)v, tmp);
  if (n >= cap) {
    jk_free(tmp);
    jk_fail(c->info, JWTKIT_ERR_INVALID_KEY, name, "JWK member \"%s\" must be a short string", name);
    return -1;
  }
  memcpy(out, tmp, n + 1);
  jk_free(tmp);
  return 1;
}

static int json_has_oth(jwk_ctx *c);

static void free_bins(unsigned char **b, const size_t *l, int n) {
  for (int i = 0; i < n; i++) jk_free_secret(b[i], l[i]);
}

static jwtkit_err pkey_fromdata(EVP_PKEY **pkey, const char *type, OSSL_PARAM_BLD *bld, int priv) {
  *pkey = NULL;
  OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
  jwtkit_err rc = JWTKIT_ERR_INVALID_KEY;
  if (params != NULL && ctx != NULL && EVP_PKEY_fromdata_init(ctx) == 1 &&
      EVP_PKEY_fromdata(ctx, pkey, priv ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY, params) == 1)
    rc = JWTKIT_OK;
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  ERR_clear_error();
  return rc;
}

/* Recover p and q from (n, e, d) and derive dp, dq, qi (NIST SP 800-56B
 * rev. 2, appendix C): k = d*e - 1 = 2^t * r; for a base g, some square
 * root of 1 in the sequence g^r, g^2r, ... is nontrivial with probability
 * >= 1/2, and gcd(root - 1, n) is a factor.  A private JWK without CRT
 * members signs either way, but PKCS#8 export needs them. */
static int rsa_recover_crt(const BIGNUM *n, const BIGNUM *e, const BIGNUM *d, BIGNUM *out[5]) {
  BN_CTX *ctx = BN_CTX_new();
  BIGNUM *k = BN_new(), *r = BN_new(), *y = BN_new(), *x = BN_new(), *nm1 = BN_new(), *g = BN_new(),
         *p = BN_new(), *q = BN_new(), *one = BN_new(), *tmp = BN_new(), *rem = BN_new();
  int ok = 0, found = 0;
  if (ctx == NULL || k == NULL || r == NULL || y == NULL || x == NULL || nm1 == NULL || g == NULL || p == NULL ||
      q == NULL || one == NULL || tmp == NULL || rem == NULL)
    goto done;
  BN_set_flags(k, BN_FLG_CONSTTIME);
  BN_set_flags(r, BN_FLG_CONSTTIME);
  if (!BN_one(one) || !BN_mul(k, d, e, ctx) || !BN_sub_word(k, 1) || BN_is_odd(k) || BN_is_zero(k) ||
      !BN_sub(nm1, n, one))
    goto done;
  int t = 0;
  if (!BN_copy(r, k)) goto done;
  while (!BN_is_odd(r)) {
    if (!BN_rshift1(r, r)) goto done;
    t++;
  }
  static const unsigned bases[] = {2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53,
                                   59, 61, 67, 71, 73, 79, 83, 89, 97, 101, 103, 107, 109, 113};
  for (size_t bi = 0; bi < sizeof bases / sizeof *bases && !found; bi++) {
    if (!BN_set_word(g, bases[bi]) || !BN_mod_exp_mont_consttime(y, g, r, n, ctx, NULL)) goto done;
    if (BN_is_one(y) || BN_cmp(y, nm1) == 0) continue;
    for (int i = 0; i < t && !found; i++) {
      if (!BN_mod_sqr(x, y, n, ctx)) goto done;
      if (BN_is_one(x)) { /* y is a nontrivial square root of 1 */
        if (!BN_sub(tmp, y, one) || !BN_gcd(p, tmp, n, ctx)) goto done;
        found = !BN_is_one(p) && BN_cmp(p, n) != 0;
        break;
      }
      if (BN_cmp(x, nm1) == 0) break;
      if (!BN_copy(y, x)) goto done;
    }
  }
  if (!found || !BN_div(q, rem, n, p, ctx) || !BN_is_zero(rem)) goto done;
  if (BN_cmp(p, q) < 0) BN_swap(p, q); /* conventional: p > q, qi = q^-1 mod p */
  for (int i = 0; i < 5; i++) {
    if ((out[i] = BN_new()) == NULL) goto done;
    BN_set_flags(out[i], BN_FLG_CONSTTIME);
  }
  if (!BN_copy(out[0], p) || !BN_copy(out[1], q) || !BN_sub(tmp, p, one) || !BN_mod(out[2], d, tmp, ctx) ||
      !BN_sub(tmp, q, one) || !BN_mod(out[3], d, tmp, ctx) || BN_mod_inverse(out[4], q, p, ctx) == NULL)
    goto done;
  ok = 1;
done:
  if (!ok)
    for (int i = 0; i < 5; i++) {
      BN_clear_free(out[i]);
      out[i] = NULL;
    }
  BN_clear_free(k);
  BN_clear_free(r);
  BN_clear_free(y);
  BN_clear_free(x);
  BN_free(nm1);
  BN_free(g);
  BN_clear_free(p);
  BN_clear_free(q);
  BN_free(one);
  BN_clear_free(tmp);
  BN_clear_free(rem);
  BN_CTX_free(ctx);
  return ok;
}

static jwtkit_err rsa_from_jwk(jwk_ctx *c, EVP_PKEY **pkey) {
  static const char *const names[8] = {"n", "e", "d", "p", "q", "dp", "dq", "qi"};
  static const char *const params[8] = {OSSL_PKEY_PARAM_RSA_N,        OSSL_PKEY_PARAM_RSA_E,
                                        OSSL_PKEY_PARAM_RSA_D,        OSSL_PKEY_PARAM_RSA_FACTOR1,
                                        OSSL_PKEY_PARAM_RSA_FACTOR2,  OSSL_PKEY_PARAM_RSA_EXPONENT1,
                                        OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1};
  unsigned char *b[8] = {0};
  size_t l[8] = {0};
  int have[8] = {0};
  jwtkit_err rc = JWTKIT_ERR_INVALID_KEY;
  for (int i = 0; i < 8; i++) {
    have[i] = get_b64(c, names[i], &b[i], &l[i]);
    if (have[i] < 0) {
      rc = c->info ? c->info->code : JWTKIT_ERR_INVALID_KEY;
      goto out;
    }
  }
  if (!have[0] || !have[1]) {
    rc = jk_fail(c->info, JWTKIT_ERR_INVALID_KEY, have[0] ? "e" : "n", "RSA JWK needs n and e");
    goto out;
  }
  if (json_has_oth(c)) {
    rc = jk_fail(c->info, JWTKIT_ERR_UNSUPPORTED, "oth", "multi-prime RSA keys are not supported");
    goto out;
  }
  int crt = have[3] + have[4] + have[5] + have[6] + have[7];
  if ((crt != 0 && crt != 5) || (crt != 0 && !have[2])) {
    rc = jk_fail(c->info, JWTKIT_ERR_INVALID_KEY, "p", "RSA JWK: p, q, dp, dq, qi must come together with d");
    goto out;
  }
  OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
  BIGNUM *bn[8] = {0};
  int ok = bld != NULL;
  for (int i = 0; ok && i < 8; i++) {
    if (!have[i]) continue;
    bn[i] = BN_bin2bn(b[i], (int)l[i], NULL);
    if (i >= 2) BN_set_flags(bn[i], BN_FLG_CONSTTIME);
    ok = bn[i] != NULL && OSSL_PARAM_BLD_push_BN(bld, params[i], bn[i]) == 1;
  }
  if (ok && have[2] && crt == 0) { /* n, e, d only: derive the CRT members */
    if (!rsa_recover_crt(bn[0], bn[1], bn[2], &bn[3])) {
      rc = jk_fail(c->info, JWTKIT_ERR_INVALID_KEY, "d", "RSA JWK: d does not belong to n and e");
      ok = 0;
      goto built;
    }
    for (int i = 3; ok && i < 8; i++) ok = OSSL_PARAM_BLD_push_BN(bld, params[i], bn[i]) == 1;
  }
  if (ok)
    rc = pkey_fromdata(pkey, "RSA", bld, have[2]);
  else
    rc = JWTKIT_ERR_NOMEM;
  if (rc != JWTKIT_OK) jk_fail(c->info, rc, NULL, "RSA JWK does not form a key");
built:
  for (int i = 0; i < 8; i++) BN_clear_free(bn[i]);
  OSSL_PARAM_BLD_free(bld);
out:
  free_bins(b, l, 8);
  return rc;
}

static jwtkit_err ec_from_jwk(jwk_ctx *c, const char *crv, EVP_PKEY **pkey, jwtkit_alg *implied) {
  const char *group;
  size_t w;
  if (strcmp(crv, "P-256") == 0) {
    group = "prime256v1";
    w = 32;
    *implied = JWTKIT_ALG_ES256;
  } else if (strcmp(crv, "P-384") == 0) {
    group = "secp384r1";
    w = 48;
    *implied = JWTKIT_ALG_ES384;
  } else if (strcmp(crv, "P-521") == 0) {
    group = "secp521r1";
    w = 66;
    *implied = JWTKIT_ALG_ES512;
  } else {
    return jk_fail(c->info, JWTKIT_ERR_UNSUPPORTED, "crv", "EC curve \"%s\" is not supported", crv);
  }
  unsigned char *b[3] = {0};
  size_t l[3] = {0};
  int hx = get_b64(c, "x", &b[0], &l[0]);
  int hy = hx < 0 ? -1 : get_b64(c, "y", &b[1], &l[1]);
  int hd = hy < 0 ? -1 : get_b64(c, "d", &b[2], &l[2]);
  jwtkit_err rc;
  if (hx < 0 || hy < 0 || hd < 0) {
    rc = c->info ? c->info->code : JWTKIT_ERR_INVALID_KEY;
    goto out;
  }
  if (!hx || !hy || l[0] != w || l[1] != w || (hd && l[2] != w)) {
    rc = jk_fail(c->info, JWTKIT_ERR_INVALID_KEY, !hx || l[0] != w ? "x" : !hy || l[1] != w ? "y" : "d",
                 "EC JWK coordinates must be exactly %zu bytes for %s", w, crv);
    goto out;
  }
  unsigned char pub[1 + 2 * 66];
  pub[0] = 0x04;
  memcpy(pub + 1, b[0], w);
  memcpy(pub + 1 + w, b[1], w);
  OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
  BIGNUM *d = hd ? BN_bin2bn(b[2], (int)w, NULL) : NULL;
  if (d) BN_set_flags(d, BN_FLG_CONSTTIME);
  int ok = bld != NULL && (!hd || d != NULL) &&
           OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) == 1 &&
           OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, 1 + 2 * w) == 1 &&
           (!hd || OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d) == 1);
  rc = ok ? pkey_fromdata(pkey, "EC", bld, hd) : JWTKIT_ERR_NOMEM;
  if (rc != JWTKIT_OK) jk_fail(c->info, rc, "x", "EC JWK point is not on %s", crv);
  BN_clear_free(d);
  OSSL_PARAM_BLD_free(bld);
out:
  free_bins(b, l, 3);
  return rc;
}

static jwtkit_err okp_from_jwk(jwk_ctx *c, const char *crv, EVP_PKEY **pkey) {
  int type;
  size_t w;
  if (strcmp(crv, "Ed25519") == 0) {
    type = EVP_PKEY_ED25519;
    w = 32;
  } else if (strcmp(crv, "Ed448") == 0) {
    type = EVP_PKEY_ED448;
    w = 57;
  } else {
    return jk_fail(c->info, JWTKIT_ERR_UNSUPPORTED, "crv", "OKP curve \"%s\" is not a signature curve", crv);
  }
  unsigned char *x = NULL, *d = NULL;
  size_t xl = 0, dl = 0;
  int hx = get_b64(c, "x", &x, &xl);
  int hd = hx < 0 ? -1 : get_b64(c, "d", &d, &dl);
  jwtkit_err rc = JWTKIT_ERR_INVALID_KEY;
  if (hx < 0 || hd < 0) {
    rc = c->info ? c->info->code : JWTKIT_ERR_INVALID_KEY;
  } else if (!hx || xl != w || (hd && dl != w)) {
    rc = jk_fail(c->info, JWTKIT_ERR_INVALID_KEY, !hx || xl != w ? "x" : "d",
                 "%s JWK members must be exactly %zu bytes", crv, w);
  } else if (hd) {
    *pkey = EVP_PKEY_new_raw_private_key(type, NULL, d, dl);
    unsigned char derived[57];
    size_t dlen = sizeof derived;
    if (*pkey == NULL || EVP_PKEY_get_raw_public_key(*pkey, derived, &dlen) != 1) {
      rc = jk_fail(c->info, JWTKIT_ERR_INVALID_KEY, "d", "bad %s private key", crv);
    } else if (dlen != xl || memcmp(derived, x, xl) != 0) {
      rc = jk_fail(c->info, JWTKIT_ERR_INVALID_KEY, "d", "%s private key does not match x", crv);
    } else {
      rc = JWTKIT_OK;
    }
  } else {
    *pkey = EVP_PKEY_new_raw_public_key(type, NULL, x, xl);
    rc = *pkey ? JWTKIT_OK : jk_fail(c->info, JWTKIT_ERR_INVALID_KEY, "x", "bad %s public key", crv);
  }
  if (rc != JWTKIT_OK) {
    EVP_PKEY_free(*pkey);
    *pkey = NULL;
  }
  ERR_clear_error();
  jk_free_secret(x, xl);
  jk_free_secret(d, dl);
  return rc;
}

static int json_has_oth(jwk_ctx *c) { return jk_json_get(c->doc, 0, "oth", 3) >= 0; }

/* "use" must be "sig" when present; "key_ops" must allow sign or verify. */
static jwtkit_err check_use(jwk_ctx *c) {
  char use[16];
  int r = get_str(c, "use", use, sizeof use);
  if (r < 0) return c->info ? c->info->code : JWTKIT_ERR_INVALID_KEY;
  if (r == 1 && strcmp(use, "sig") != 0)
    return jk_fail(c->info, JWTKIT_ERR_INVALID_KEY, "use", "JWK \"use\" is \"%s\", not \"sig\"", use);
  int ops = jk_json_get(c->doc, 0, "key_ops", 7);
  if (ops >= 0) {
    const jk_jnode *a = &c->doc->nodes[ops];
    int sig_op = 0;
    if (a->type != JK_J_ARRAY) return jk_fail(c->info, JWTKIT_ERR_INVALID_KEY, "key_ops", "key_ops must be an array");
    for (uint32_t i = (uint32_t)ops + 1; i < a->end; i = c->doc->nodes[i].end) {
      if (c->doc->nodes[i].type != JK_J_STRING)
        return jk_fail(c->info, JWTKIT_ERR_INVALID_KEY, "key_ops", "key_ops must hold strings");
      if (jk_json_str_eq(c->doc, i, "sign", 4) || jk_json_str_eq(c->doc, i, "verify", 6)) sig_op = 1;
    }
    if (!sig_op)
      return jk_fail(c->info, JWTKIT_ERR_INVALID_KEY, "key_ops", "key_ops allows neither sign nor verify");
  }
  return JWTKIT_OK;
}

jwtkit_err jwtkit_key_from_jwk(jwtkit_key **out, jwtkit_alg alg, const char *json, size_t len,
                               jwtkit_errinfo *info) {
  if (out == NULL || json == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, NULL);
  *out = NULL;
  if (len > JK_MAX_JWK) return jk_fail(info, JWTKIT_ERR_TOO_LARGE, NULL, "JWK over 64 KiB");
  jwtkit_errinfo local;
  if (info == NULL) info = &local;
  jk_info_clear(info);
  jk_jdoc doc;
  jwtkit_err rc = jk_json_parse_alloc(&doc, json, len, 1, info);
  if (rc != JWTKIT_OK) {
    if (rc == JWTKIT_ERR_MALFORMED) info->code = rc = JWTKIT_ERR_INVALID_KEY;
    return rc;
  }
  jwk_ctx c = {&doc, info};
  char kty[8], crv[16], algname[16];
  jwtkit_alg jalg = JWTKIT_ALG_UNSPEC, implied = JWTKIT_ALG_UNSPEC;
  EVP_PKEY *pkey = NULL;
  jwtkit_key *key = NULL;
  int r = get_str(&c, "kty", kty, sizeof kty);
  if (r != 1) {
    rc = r < 0 ? info->code : jk_fail(info, JWTKIT_ERR_INVALID_KEY, "kty", "JWK without kty");
    goto done;
  }
  r = get_str(&c, "alg", algname, sizeof algname);
  if (r < 0) {
    rc = info->code == JWTKIT_ERR_NOMEM ? JWTKIT_ERR_NOMEM
                                        : jk_fail(info, JWTKIT_ERR_UNSUPPORTED, "alg", "JWK alg is not a supported algorithm");
    goto done;
  }
  if (r == 1) {
    jalg = jwtkit_alg_from_name(algname, strlen(algname));
    if (jalg == JWTKIT_ALG_UNSPEC) {
      rc = jk_fail(info, JWTKIT_ERR_UNSUPPORTED, "alg", "JWK alg \"%s\" is not a supported signature algorithm", algname);
      goto done;
    }
    if (alg != JWTKIT_ALG_UNSPEC && alg != jalg) {
      rc = jk_fail(info, JWTKIT_ERR_INVALID_KEY, "alg", "JWK is for %s, not %s", algname, jwtkit_alg_name(alg));
      goto done;
    }
  }
  if (alg == JWTKIT_ALG_UNSPEC) alg = jalg;
  if ((rc = check_use(&c)) != JWTKIT_OK) goto done;

  if (strcmp(kty, "oct") == 0) {
    unsigned char *k = NULL;
    size_t kl = 0;
    r = get_b64(&c, "k", &k, &kl);
    if (r != 1) {
      rc = r < 0 ? info->code : jk_fail(info, JWTKIT_ERR_INVALID_KEY, "k", "oct JWK without k");
      goto done;
    }
    if (alg == JWTKIT_ALG_UNSPEC || jwtkit_alg_kty(alg) != JWTKIT_KTY_OCT) {
      jk_free_secret(k, kl);
      rc = jk_fail(info, JWTKIT_ERR_INVALID_KEY, "alg", "an oct JWK can only be an HS256/384/512 key");
      goto done;
    }
    rc = jwtkit_key_from_secret(&key, alg, k, kl, info);
    jk_free_secret(k, kl);
  } else {
    if (strcmp(kty, "RSA") == 0) {
      rc = rsa_from_jwk(&c, &pkey);
    } else if (strcmp(kty, "EC") == 0 || strcmp(kty, "OKP") == 0) {
      r = get_str(&c, "crv", crv, sizeof crv);
      if (r != 1) {
        rc = r < 0 ? info->code : jk_fail(info, JWTKIT_ERR_INVALID_KEY, "crv", "%s JWK without crv", kty);
        goto done;
      }
      if (kty[0] == 'E') {
        rc = ec_from_jwk(&c, crv, &pkey, &implied);
      } else {
        rc = okp_from_jwk(&c, crv, &pkey);
        implied = JWTKIT_ALG_EDDSA;
      }
      if (rc == JWTKIT_OK && alg == JWTKIT_ALG_UNSPEC) alg = implied;
    } else {
      rc = jk_fail(info, JWTKIT_ERR_UNSUPPORTED, "kty", "JWK kty \"%s\" is not supported", kty);
    }
    if (rc != JWTKIT_OK) goto done;
    rc = jk_key_from_pkey(&key, alg, pkey, info); /* takes pkey */
    pkey = NULL;
  }
  if (rc != JWTKIT_OK) goto done;
  int kv = jk_json_get(&doc, 0, "kid", 3);
  if (kv >= 0) {
    if (doc.nodes[kv].type != JK_J_STRING || doc.nodes[kv].len == 0) {
      rc = jk_fail(info, JWTKIT_ERR_INVALID_KEY, "kid", "JWK kid must be a non-empty string");
      goto done;
    }
    /* 255 bytes unescaped; written escaped, each may take six characters */
    char kid[6 * 255 + 1];
    if (doc.nodes[kv].len >= sizeof kid) {
      rc = jk_fail(info, JWTKIT_ERR_INVALID_KEY, "kid", "JWK kid longer than 255 bytes");
      goto done;
    }
    size_t kl = jk_json_unescape(&doc, (uint32_t)kv, kid);
    if (kl > 255) {
      rc = jk_fail(info, JWTKIT_ERR_INVALID_KEY, "kid", "JWK kid longer than 255 bytes");
      goto done;
    }
    /* the only failure left is the copy's allocation */
    if ((rc = jwtkit_key_set_kid(key, kid, kl)) != JWTKIT_OK) {
      rc = jk_fail(info, rc, "kid", NULL);
      goto done;
    }
  }
done:
  if (rc != JWTKIT_OK) {
    jwtkit_key_free(key);
    key = NULL;
  }
  EVP_PKEY_free(pkey);
  jk_free(doc.nodes);
  *out = key;
  return rc;
}

/* ------------------------------------------------------------- export */

static int put_bn(jk_buf *b, const EVP_PKEY *pk, const char *param, size_t pad) {
  BIGNUM *bn = NULL;
  if (EVP_PKEY_get_bn_param(pk, param, &bn) != 1) {
    ERR_clear_error();
    return -1;
  }
  unsigned char tmp[JK_MAX_BIN];
  int n = BN_num_bytes(bn);
  if (pad == 0) pad = n == 0 ? 1 : (size_t)n;
  int ok = (size_t)n <= pad && pad <= sizeof tmp && BN_bn2binpad(bn, tmp, (int)pad) >= 0;
  BN_clear_free(bn);
  if (!ok) return -1;
  jk_buf_putc(b, '"');
  jk_buf_b64url(b, tmp, pad);
  jk_buf_putc(b, '"');
  jk_wipe(tmp, pad);
  return 0;
}

static int put_raw(jk_buf *b, const EVP_PKEY *pk, int priv) {
  unsigned char tmp[57];
  size_t n = sizeof tmp;
  int ok = priv ? EVP_PKEY_get_raw_private_key(pk, tmp, &n) : EVP_PKEY_get_raw_public_key(pk, tmp, &n);
  if (ok != 1) return -1;
  jk_buf_putc(b, '"');
  jk_buf_b64url(b, tmp, n);
  jk_buf_putc(b, '"');
  jk_wipe(tmp, sizeof tmp);
  return 0;
}

/* Required public members in RFC 7638 order, written as "name":value
 * pairs separated by commas, starting with kty-specific ones. */
static int put_members(jk_buf *b, const jwtkit_key *key, int canonical, int priv) {
  const EVP_PKEY *pk = (const EVP_PKEY *)key->pkey;
  size_t w = key->ai->ec_bytes;
  int rc = 0;
  switch (key->kty) {
    case JWTKIT_KTY_OCT:
      jk_buf_puts(b, canonical ? "\"k\":\"" : "\"kty\":\"oct\",\"k\":\"");
      jk_buf_b64url(b, key->secret, key->secret_len);
      jk_buf_puts(b, canonical ? "\",\"kty\":\"oct\"" : "\"");
      return 0;
    case JWTKIT_KTY_RSA:
      if (canonical) {
        jk_buf_puts(b, "\"e\":");
        rc |= put_bn(b, pk, OSSL_PKEY_PARAM_RSA_E, 0);
        jk_buf_puts(b, ",\"kty\":\"RSA\",\"n\":");
        rc |= put_bn(b, pk, OSSL_PKEY_PARAM_RSA_N, 0);
        return rc;
      }
      jk_buf_puts(b, "\"kty\":\"RSA\",\"n\":");
      rc |= put_bn(b, pk, OSSL_PKEY_PARAM_RSA_N, 0);
      jk_buf_puts(b, ",\"e\":");
      rc |= put_bn(b, pk, OSSL_PKEY_PARAM_RSA_E, 0);
      if (priv) {
        static const char *const nm[6] = {"d", "p", "q", "dp", "dq", "qi"};
        static const char *const pr[6] = {OSSL_PKEY_PARAM_RSA_D,         OSSL_PKEY_PARAM_RSA_FACTOR1,
                                          OSSL_PKEY_PARAM_RSA_FACTOR2,   OSSL_PKEY_PARAM_RSA_EXPONENT1,
                                          OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1};
        for (int i = 0; i < 6; i++) {
          size_t mark = b->len;
          jk_buf_puts(b, ",\"");
          jk_buf_puts(b, nm[i]);
          jk_buf_puts(b, "\":");
          if (put_bn(b, pk, pr[i], 0) != 0) {
            if (i == 0) return -1;
            b->len = mark; /* key without CRT factors */
            if (b->p) b->p[mark] = '\0';
            break;
          }
        }
      }
      return rc;
    case JWTKIT_KTY_EC:
      jk_buf_puts(b, canonical ? "\"crv\":\"" : "\"kty\":\"EC\",\"crv\":\"");
      jk_buf_puts(b, key->curve);
      jk_buf_puts(b, canonical ? "\",\"kty\":\"EC\",\"x\":" : "\",\"x\":");
      rc |= put_bn(b, pk, OSSL_PKEY_PARAM_EC_PUB_X, w);
      jk_buf_puts(b, ",\"y\":");
      rc |= put_bn(b, pk, OSSL_PKEY_PARAM_EC_PUB_Y, w);
      if (priv) {
        jk_buf_puts(b, ",\"d\":");
        rc |= put_bn(b, pk, OSSL_PKEY_PARAM_PRIV_KEY, w);
      }
      return rc;
    case JWTKIT_KTY_OKP:
      jk_buf_puts(b, canonical ? "\"crv\":\"" : "\"kty\":\"OKP\",\"crv\":\"");
      jk_buf_puts(b, key->curve);
      jk_buf_puts(b, canonical ? "\",\"kty\":\"OKP\",\"x\":" : "\",\"x\":");
      rc |= put_raw(b, pk, 0);
      if (priv) {
        jk_buf_puts(b, ",\"d\":");
        rc |= put_raw(b, pk, 1);
      }
      return rc;
  }
  return -1;
}

jwtkit_err jwtkit_key_to_jwk(const jwtkit_key *key, int include_private, char **json, size_t *len) {
  if (key == NULL || json == NULL) return JWTKIT_ERR_INVALID_ARG;
  *json = NULL;
  if (key->kty == JWTKIT_KTY_OCT && !include_private) return JWTKIT_ERR_INVALID_ARG;
  if (include_private && key->p11 != NULL) return JWTKIT_ERR_UNSUPPORTED; /* the private key stays in the token */
  if (include_private && !key->can_sign) return JWTKIT_ERR_INVALID_ARG;
  jk_buf b;
  jk_buf_init(&b);
  jk_buf_putc(&b, '{');
  if (put_members(&b, key, 0, include_private) != 0) {
    jk_buf_free_wipe(&b);
    return JWTKIT_ERR_CRYPTO;
  }
  jk_buf_puts(&b, ",\"alg\":\"");
  jk_buf_puts(&b, key->ai->name);
  jk_buf_puts(&b, "\",\"use\":\"sig\"");
  if (key->kid != NULL) {
    jk_buf_puts(&b, ",\"kid\":");
    jk_buf_json_str(&b, key->kid, key->kid_len);
  }
  jk_buf_putc(&b, '}');
  *json = jk_buf_take(&b, len);
  return *json ? JWTKIT_OK : JWTKIT_ERR_NOMEM;
}

jwtkit_err jwtkit_key_thumbprint(const jwtkit_key *key, char out[44]) {
  if (key == NULL || out == NULL) return JWTKIT_ERR_INVALID_ARG;
  jk_buf b;
  jk_buf_init(&b);
  jk_buf_putc(&b, '{');
  int bad = put_members(&b, key, 1, 0);
  jk_buf_putc(&b, '}');
  if (bad || b.oom) {
    int oom = b.oom;
    jk_buf_free_wipe(&b);
    return oom ? JWTKIT_ERR_NOMEM : JWTKIT_ERR_CRYPTO; /* out of memory is said so, not taken for a bad key */
  }
  unsigned char dg[32];
  unsigned dl = 0;
  int ok = EVP_Digest(b.p, b.len, dg, &dl, EVP_sha256(), NULL) == 1;
  jk_buf_free_wipe(&b);
  if (!ok) return JWTKIT_ERR_CRYPTO;
  size_t n = jk_b64url_encode(out, dg, dl);
  out[n] = '\0';
  return JWTKIT_OK;
}

jwtkit_err jwtkit_key_thumbprint_uri(const jwtkit_key *key, char out[96]) {
  static const char prefix[] = "urn:ietf:params:oauth:jwk-thumbprint:sha-256:";
  char tp[44];
  jwtkit_err rc = jwtkit_key_thumbprint(key, tp);
  if (rc != JWTKIT_OK) return rc;
  memcpy(out, prefix, sizeof prefix - 1);
  memcpy(out + sizeof prefix - 1, tp, sizeof tp);
  return JWTKIT_OK;
}

int jwtkit_key_equal_public(const jwtkit_key *a, const jwtkit_key *b) {
  if (a == NULL || b == NULL || a->kty != b->kty) return 0;
  if (a->kty == JWTKIT_KTY_OCT)
    return a->secret_len == b->secret_len && jk_ct_equal(a->secret, b->secret, a->secret_len);
  return EVP_PKEY_eq((const EVP_PKEY *)a->pkey, (const EVP_PKEY *)b->pkey) == 1;
}
