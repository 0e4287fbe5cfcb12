/* DER and keys for the PEM validator: the outer shape of a block's DER (one
 * SEQUENCE with DER lengths and nothing after it); decoding it with OpenSSL
 * as the structure its label announces, or else finding what it really
 * holds; decrypting an encrypted PKCS#8 or legacy encrypted key when a
 * passphrase is given; and the key inside: family, size or curve, RSA
 * exponent, approved curves, a public point on its curve, a private key
 * that matches its own public half.  The first key and the first
 * certificate key of a file are kept for the pair check. */
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

#include "key_openssl.h"
#include "pem_internal.h"
#include "common/attr.h"

#define RSA_MIN_BITS 2048u
#define RSA_MAX_BITS 16384u

/* Order in which content of a mislabeled block is identified. */
static const dkind k_identify_order[] = {K_PKCS8, K_PKCS8_ENC, K_SPKI, K_CERT, K_RSA_PRIV, K_EC_PRIV, K_RSA_PUB};

static void set_str(char *dst, size_t cap, const char *s) { jk_pem_printable(dst, cap, s, strlen(s)); }

/* ------------------------------------------------------------- DER */

/* The outer TLV must be one SEQUENCE spanning exactly n bytes. */
static const char *der_outer_problem(const unsigned char *d, size_t n, char *buf, size_t cap) {
  if (n < 2 || d[0] != 0x30) return "the content is not DER (it does not start with a SEQUENCE)";
  size_t len, hdr;
  if (d[1] < 0x80) {
    len = d[1];
    hdr = 2;
  } else {
    size_t nb = d[1] & 0x7f;
    if (nb == 0) return "the content uses a BER indefinite length, not DER";
    if (nb > 4 || n < 2 + nb) return "the content is not DER (bad length field)";
    len = 0;
    for (size_t i = 0; i < nb; i++) len = (len << 8) | d[2 + i];
    hdr = 2 + nb;
  }
  if (len > n - hdr) {
    snprintf(buf, cap, "the DER structure is truncated: %zu bytes announced, %zu present", len, n - hdr);
    return buf;
  }
  if (len < n - hdr) {
    snprintf(buf, cap, "%zu bytes follow the DER structure", n - hdr - len);
    return buf;
  }
  return NULL;
}

/* Tags of the first elements of the outer SEQUENCE (which der_outer_problem
 * has checked); returns how many elements it holds (counting at most 16). */
static size_t der_children(const unsigned char *d, size_t n, unsigned char *tags, size_t max,
                           unsigned char *first_int) {
  size_t i = (d[1] < 0x80) ? 2 : 2 + (size_t)(d[1] & 0x7f), count = 0;
  *first_int = 0xff;
  while (i + 2 <= n && count < 16) {
    unsigned char tag = d[i];
    size_t len, hdr;
    if (d[i + 1] < 0x80) {
      len = d[i + 1];
      hdr = 2;
    } else {
      size_t nb = d[i + 1] & 0x7f;
      if (nb == 0 || nb > 4 || i + 2 + nb > n) break;
      len = 0;
      for (size_t k = 0; k < nb; k++) len = (len << 8) | d[i + 2 + k];
      hdr = 2 + nb;
    }
    if (len > n - i - hdr) break;
    if (count < max) tags[count] = tag;
    if (count == 0 && tag == 0x02 && len == 1) *first_int = d[i + hdr];
    count++;
    i += hdr + len;
  }
  return count;
}

/* The type-specific structures have no OID, and OpenSSL's "type-specific"
 * decoders also accept PKCS#8 input: check their shape first.
 *   RSAPublicKey  ::= SEQUENCE { n INTEGER, e INTEGER }
 *   RSAPrivateKey ::= SEQUENCE { version 0, n, e, d, p, q, dp, dq, qinv (INTEGERs) ... }
 *   ECPrivateKey  ::= SEQUENCE { version 1, privateKey OCTET STRING, ... } */
static int type_specific_shape(dkind k, const unsigned char *d, size_t n) {
  unsigned char tags[9], v;
  size_t c = der_children(d, n, tags, sizeof tags, &v);
  switch (k) {
    case K_RSA_PUB:
      return c == 2 && tags[0] == 0x02 && tags[1] == 0x02;
    case K_RSA_PRIV:
      if (c < 9 || v > 1) return 0; /* version 1: multi-prime */
      for (size_t i = 0; i < 9; i++)
        if (tags[i] != 0x02) return 0;
      return 1;
    case K_EC_PRIV:
      return c >= 2 && v == 1 && tags[1] == 0x04;
    default:
      return 1;
  }
}

enum { DEC_FAIL = 0, DEC_OK, DEC_BAD_PASS, DEC_UNSUPPORTED };

static int ossl_decode(EVP_PKEY **pk, const char *structure, const char *keytype, int selection,
                       const unsigned char *d, size_t n) {
  *pk = NULL;
  OSSL_DECODER_CTX *ctx = OSSL_DECODER_CTX_new_for_pkey(pk, "DER", structure, keytype, selection, NULL, NULL);
  if (ctx == NULL) return 0;
  const unsigned char *p = d;
  size_t l = n;
  int ok = OSSL_DECODER_from_data(ctx, &p, &l) == 1 && *pk != NULL && l == 0;
  OSSL_DECODER_CTX_free(ctx);
  if (!ok) {
    EVP_PKEY_free(*pk);
    *pk = NULL;
  }
  return ok;
}

static void oid_text(const ASN1_OBJECT *obj, char *out, size_t cap) {
  char tmp[80];
  if (obj == NULL || OBJ_obj2txt(tmp, sizeof tmp, obj, 0) <= 0) snprintf(tmp, sizeof tmp, "?");
  set_str(out, cap, tmp);
}

static int is_pbe(const X509_SIG *sig) {
  const X509_ALGOR *alg = NULL;
  X509_SIG_get0(sig, &alg, NULL);
  const ASN1_OBJECT *obj = NULL;
  X509_ALGOR_get0(&obj, NULL, NULL, alg);
  int nid = OBJ_obj2nid(obj);
  return nid == NID_pbes2 || EVP_PBE_find(EVP_PBE_TYPE_OUTER, nid, NULL, NULL, NULL) == 1;
}

static EVP_PKEY *p8_to_pkey(PKCS8_PRIV_KEY_INFO *p8, char *oid, size_t cap) {
  EVP_PKEY *pk = EVP_PKCS82PKEY(p8);
  if (pk == NULL) {
    const ASN1_OBJECT *obj = NULL;
    PKCS8_pkey_get0(&obj, NULL, NULL, NULL, p8);
    oid_text(obj, oid, cap);
  }
  return pk;
}

/* Decode der as dkind k.  *pk gets the key when there is one (not for an
 * encrypted key without passphrase); oid names an algorithm OpenSSL cannot
 * read (DEC_UNSUPPORTED). */
static int decode_as(dkind k, const unsigned char *d, size_t n, const char *pass, EVP_PKEY **pk, char *oid,
                     size_t oidcap) {
  const unsigned char *p = d, *end = d + n;
  long ln = (long)n;
  *pk = NULL;
  if (!type_specific_shape(k, d, n)) return DEC_FAIL;
  switch (k) {
    case K_SPKI: {
      *pk = d2i_PUBKEY(NULL, &p, ln);
      if (*pk != NULL && p == end) return DEC_OK;
      EVP_PKEY_free(*pk);
      *pk = NULL;
      p = d;
      X509_PUBKEY *xp = d2i_X509_PUBKEY(NULL, &p, ln);
      int rc = DEC_FAIL;
      if (xp != NULL && p == end) {
        ASN1_OBJECT *obj = NULL;
        X509_PUBKEY_get0_param(&obj, NULL, NULL, NULL, xp);
        oid_text(obj, oid, oidcap);
        rc = DEC_UNSUPPORTED;
      }
      X509_PUBKEY_free(xp);
      return rc;
    }
    case K_PKCS8: {
      PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, ln);
      int rc = DEC_FAIL;
      if (p8 != NULL && p == end) rc = (*pk = p8_to_pkey(p8, oid, oidcap)) != NULL ? DEC_OK : DEC_UNSUPPORTED;
      PKCS8_PRIV_KEY_INFO_free(p8);
      return rc;
    }
    case K_PKCS8_ENC: {
      X509_SIG *sig = d2i_X509_SIG(NULL, &p, ln);
      int rc = DEC_FAIL;
      if (sig != NULL && p == end && is_pbe(sig)) {
        rc = DEC_OK;
        if (pass != NULL) {
          PKCS8_PRIV_KEY_INFO *p8 = PKCS8_decrypt(sig, pass, (int)strlen(pass));
          if (p8 == NULL)
            rc = DEC_BAD_PASS;
          else if ((*pk = p8_to_pkey(p8, oid, oidcap)) == NULL)
            rc = DEC_UNSUPPORTED;
          PKCS8_PRIV_KEY_INFO_free(p8);
        }
      }
      X509_SIG_free(sig);
      return rc;
    }
    case K_CERT: {
      X509 *x = d2i_X509(NULL, &p, ln);
      int rc = DEC_FAIL;
      if (x != NULL && p == end) {
        *pk = X509_get_pubkey(x);
        rc = DEC_OK;
        if (*pk == NULL) {
          ASN1_OBJECT *obj = NULL;
          X509_PUBKEY_get0_param(&obj, NULL, NULL, NULL, X509_get_X509_PUBKEY(x));
          oid_text(obj, oid, oidcap);
          rc = DEC_UNSUPPORTED;
        }
      }
      X509_free(x);
      return rc;
    }
    case K_RSA_PUB:
      if (ossl_decode(pk, "type-specific", "RSA", EVP_PKEY_PUBLIC_KEY, d, n) && !jk_pkey_has_private(*pk))
        return DEC_OK;
      break;
    case K_RSA_PRIV:
      if (ossl_decode(pk, "type-specific", "RSA", EVP_PKEY_KEYPAIR, d, n) && jk_pkey_has_private(*pk))
        return DEC_OK;
      break;
    case K_EC_PRIV:
      if (ossl_decode(pk, "type-specific", "EC", EVP_PKEY_KEYPAIR, d, n) && jk_pkey_has_private(*pk))
        return DEC_OK;
      break;
    case K_NONE:
    case K_COUNT:
      break;
  }
  EVP_PKEY_free(*pk);
  *pk = NULL;
  return DEC_FAIL;
}

/* ------------------------------------------------------------- keys */

static int pkey_check(EVP_PKEY *pk, int pairwise) {
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
  if (ctx == NULL) return 1; /* cannot tell: do not accuse */
  int rc = pairwise ? EVP_PKEY_pairwise_check(ctx) : EVP_PKEY_public_check(ctx);
  EVP_PKEY_CTX_free(ctx);
  return rc == 1 || rc == -2; /* -2: the check is not implemented for the type */
}

/* RSA private/public consistency by a signature round trip: the private
 * half signs, the public half (n, e) verifies.  EVP_PKEY_pairwise_check
 * would also test p and q for primality, which costs ~0.5 s at 4096 bits. */
static int rsa_roundtrip_ok(EVP_PKEY *pk) {
  static const unsigned char digest[32] = "jwtkit pem check: rsa roundtrip";
  unsigned char sig[RSA_MAX_BITS / 8];
  size_t sl = sizeof sig;
  int ok = 1; /* cannot tell: do not accuse */
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
  if (ctx != NULL && EVP_PKEY_sign_init(ctx) == 1 && EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
      EVP_PKEY_sign(ctx, sig, &sl, digest, sizeof digest) == 1) {
    ok = EVP_PKEY_verify_init(ctx) == 1 && EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
         EVP_PKEY_verify(ctx, sig, sl, digest, sizeof digest) == 1;
  }
  EVP_PKEY_CTX_free(ctx);
  return ok;
}

static void analyse_key(file_ctx *fc, int bi, EVP_PKEY *pk, int priv) {
  size_t line = jk_pem_blk(fc, bi)->line;
  int base = EVP_PKEY_get_base_id(pk);
  int check = 1;
  switch (base) {
    case EVP_PKEY_RSA:
    case EVP_PKEY_RSA_PSS: {
      unsigned bits = (unsigned)EVP_PKEY_get_bits(pk);
      set_str(jk_pem_blk(fc, bi)->family, sizeof jk_pem_blk(fc, bi)->family, "RSA");
      jk_pem_blk(fc, bi)->bits = bits;
      if (base == EVP_PKEY_RSA_PSS)
        jk_pem_add(fc, JWTKIT_PEM_PROB_UNSUPPORTED_KEY, bi, line,
            "RSASSA-PSS-restricted RSA key (id-RSASSA-PSS); JWS needs an rsaEncryption key");
      if (bits < RSA_MIN_BITS)
        jk_pem_add(fc, JWTKIT_PEM_PROB_RSA_TOO_SMALL, bi, line, "RSA key has %u bits; at least %u are required", bits,
            RSA_MIN_BITS);
      else if (bits > RSA_MAX_BITS)
        jk_pem_add(fc, JWTKIT_PEM_PROB_RSA_TOO_LARGE, bi, line, "RSA key has %u bits; at most %u are accepted", bits,
            RSA_MAX_BITS);
      BIGNUM *e = NULL;
      if (EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &e) != 1) {
        jk_pem_add(fc, JWTKIT_PEM_PROB_KEY_INVALID, bi, line, "RSA key without a public exponent");
      } else if (!BN_is_word(e, 65537)) {
        char *dec = BN_bn2dec(e);
        char shown[24];
        set_str(shown, sizeof shown, dec ? dec : "?");
        jk_pem_add(fc, JWTKIT_PEM_PROB_RSA_EXPONENT, bi, line, "RSA public exponent is %s; it must be 65537", shown);
        OPENSSL_free(dec);
      }
      BN_free(e);
      check = 0;
      if (priv && bits <= RSA_MAX_BITS && !rsa_roundtrip_ok(pk))
        jk_pem_add(fc, JWTKIT_PEM_PROB_KEY_INVALID, bi, line, "the RSA private key does not match its own public key");
      break;
    }
    case EVP_PKEY_EC: {
      char group[64] = "", nist[16] = "";
      size_t gl = 0;
      set_str(jk_pem_blk(fc, bi)->family, sizeof jk_pem_blk(fc, bi)->family, "EC");
      int bits = EVP_PKEY_get_bits(pk);
      jk_pem_blk(fc, bi)->bits = bits > 0 ? (unsigned)bits : 0;
      if (EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &gl) != 1) {
        jk_pem_add(fc, JWTKIT_PEM_PROB_UNAPPROVED_CURVE, bi, line,
            "EC key with explicit curve parameters; only the named curves P-256, P-384 and P-521 are approved");
        break;
      }
      const char *nn = EC_curve_nid2nist(OBJ_sn2nid(group));
      if (nn != NULL) set_str(nist, sizeof nist, nn);
      set_str(jk_pem_blk(fc, bi)->curve, sizeof jk_pem_blk(fc, bi)->curve, nist[0] ? nist : group);
      if (strcmp(nist, "P-256") != 0 && strcmp(nist, "P-384") != 0 && strcmp(nist, "P-521") != 0) {
        char shown[40];
        set_str(shown, sizeof shown, group);
        jk_pem_add(fc, JWTKIT_PEM_PROB_UNAPPROVED_CURVE, bi, line,
            "EC curve %s%s%s is not approved; use P-256, P-384, P-521, Ed25519 or Ed448", shown,
            nist[0] ? " = " : "", nist);
      }
      if (!priv && !pkey_check(pk, 0))
        jk_pem_add(fc, JWTKIT_PEM_PROB_KEY_INVALID, bi, line, "EC public point is not on curve %s",
            jk_pem_blk(fc, bi)->curve);
      break;
    }
    case EVP_PKEY_ED25519:
    case EVP_PKEY_ED448:
      set_str(jk_pem_blk(fc, bi)->family, sizeof jk_pem_blk(fc, bi)->family, "OKP");
      set_str(jk_pem_blk(fc, bi)->curve, sizeof jk_pem_blk(fc, bi)->curve,
              base == EVP_PKEY_ED25519 ? "Ed25519" : "Ed448");
      jk_pem_blk(fc, bi)->bits = base == EVP_PKEY_ED25519 ? 255 : 448;
      break;
    case EVP_PKEY_X25519:
    case EVP_PKEY_X448:
      set_str(jk_pem_blk(fc, bi)->family, sizeof jk_pem_blk(fc, bi)->family, "OKP");
      set_str(jk_pem_blk(fc, bi)->curve, sizeof jk_pem_blk(fc, bi)->curve, base == EVP_PKEY_X25519 ? "X25519" : "X448");
      jk_pem_blk(fc, bi)->bits = base == EVP_PKEY_X25519 ? 255 : 448;
      jk_pem_add(fc, JWTKIT_PEM_PROB_UNAPPROVED_CURVE, bi, line,
          "%s is a key-agreement curve, not a signature curve; use Ed25519 or Ed448", jk_pem_blk(fc, bi)->curve);
      check = 0;
      break;
    default: {
      const char *tn = EVP_PKEY_get0_type_name(pk);
      if (tn == NULL) tn = OBJ_nid2sn(base);
      char shown[32];
      set_str(shown, sizeof shown, tn ? tn : "unknown");
      jk_pem_add(fc, JWTKIT_PEM_PROB_UNSUPPORTED_KEY, bi, line,
          "%s key: JWS signature keys are RSA, EC (P-256/384/521) or EdDSA (Ed25519/Ed448)", shown);
      check = 0;
      break;
    }
  }
  if (priv && check && !pkey_check(pk, 1))
    jk_pem_add(fc, JWTKIT_PEM_PROB_KEY_INVALID, bi, line, "the private key does not match its own public key");
  ERR_clear_error();
}

/* Keep the first key and first certificate key for the pair check. */
static void keep_key(file_ctx *fc, int bi, EVP_PKEY *pk, int priv) {
  jwtkit_pem_type t = jk_pem_blk(fc, bi)->type;
  if (t == JWTKIT_PEM_CERTIFICATE && fc->cert_key == NULL) {
    fc->cert_key = pk;
    fc->cert_block = bi;
  } else if (t != JWTKIT_PEM_CERTIFICATE && t != JWTKIT_PEM_UNKNOWN && fc->key == NULL) {
    fc->key = pk;
    fc->key_private = priv;
    fc->key_block = bi;
  } else {
    EVP_PKEY_free(pk);
  }
}

/* The DER of a block whose label announces `want`. */
void jk_pem_analyse_der(file_ctx *fc, int bi, dkind want, const unsigned char *der, size_t n) {
  size_t line = jk_pem_blk(fc, bi)->line;
  char buf[128], oid[64] = "";
  const char *why = der_outer_problem(der, n, buf, sizeof buf);
  if (why != NULL) {
    jk_pem_add(fc, JWTKIT_PEM_PROB_DER_INVALID, bi, line, "%s block: %s", jk_pem_kinds[want].label, why);
    return;
  }
  EVP_PKEY *pk = NULL;
  dkind got = want;
  int rc = decode_as(want, der, n, fc->pass, &pk, oid, sizeof oid);
  if (rc == DEC_FAIL) {
    for (size_t i = 0; i < sizeof k_identify_order / sizeof *k_identify_order && rc == DEC_FAIL; i++) {
      if (k_identify_order[i] == want) continue;
      got = k_identify_order[i];
      rc = decode_as(got, der, n, fc->pass, &pk, oid, sizeof oid);
    }
    ERR_clear_error();
    if (rc == DEC_FAIL) {
      jk_pem_add(fc, JWTKIT_PEM_PROB_DER_INVALID, bi, line, "the content of the %s block is not a valid %s",
          jk_pem_kinds[want].label, jk_pem_kinds[want].structure);
      return;
    }
    jk_pem_add(fc, JWTKIT_PEM_PROB_LABEL_CONTENT, bi, line, "the block labeled %s holds %s (label %s)",
        jk_pem_kinds[want].label, jk_pem_kinds[got].what, jk_pem_kinds[got].label);
    jk_pem_blk(fc, bi)->type = jk_pem_kinds[got].type;
  }
  ERR_clear_error();
  switch (rc) {
    case DEC_BAD_PASS:
      jk_pem_add(fc, JWTKIT_PEM_PROB_WRONG_PASSPHRASE, bi, line,
          "the passphrase does not decrypt this encrypted private key");
      break;
    case DEC_UNSUPPORTED:
      jk_pem_add(fc, JWTKIT_PEM_PROB_UNSUPPORTED_KEY, bi, line,
          "key algorithm %s is not supported; JWS keys are RSA, EC or EdDSA", oid);
      break;
    default:
      if (pk == NULL) {
        if (got == K_PKCS8_ENC) fc->encrypted_unread = 1;
        break;
      }
      analyse_key(fc, bi, pk, jk_pem_kinds[got].priv);
      keep_key(fc, bi, pk, jk_pem_kinds[got].priv);
      break;
  }
}

/* Legacy "Proc-Type: 4,ENCRYPTED" body: decrypt with the DEK-Info cipher and
 * analyse the plaintext as the label says. */
void jk_pem_analyse_legacy(file_ctx *fc, int bi, dkind want, unsigned char *data, size_t n, char *headers,
                           int overflow) {
  size_t line = jk_pem_blk(fc, bi)->line;
  if (fc->pass == NULL) {
    fc->encrypted_unread = 1;
    return;
  }
  EVP_CIPHER_INFO ci;
  long len = (long)n;
  if (overflow || PEM_get_EVP_CIPHER_INFO(headers, &ci) != 1) {
    ERR_clear_error();
    jk_pem_add(fc, JWTKIT_PEM_PROB_WRONG_PASSPHRASE, bi, line,
        "cannot decrypt: the DEK-Info header names no usable cipher and IV");
    return;
  }
  if (PEM_do_header(&ci, data, &len, NULL, JK_UNCONST(fc->pass)) != 1 || len <= 0) {
    ERR_clear_error();
    jk_pem_add(fc, JWTKIT_PEM_PROB_WRONG_PASSPHRASE, bi, line, "the passphrase does not decrypt this private key");
    return;
  }
  EVP_PKEY *pk = NULL;
  char oid[64] = "";
  int rc = want == K_PKCS8_ENC ? DEC_FAIL : decode_as(want, data, (size_t)len, NULL, &pk, oid, sizeof oid);
  ERR_clear_error();
  if (rc != DEC_OK || pk == NULL) {
    EVP_PKEY_free(pk);
    jk_pem_add(fc, JWTKIT_PEM_PROB_WRONG_PASSPHRASE, bi, line,
        "the decrypted data is not %s: wrong passphrase or damaged key", jk_pem_kinds[want].what);
    return;
  }
  analyse_key(fc, bi, pk, jk_pem_kinds[want].priv);
  keep_key(fc, bi, pk, jk_pem_kinds[want].priv);
}
