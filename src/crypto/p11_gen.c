/* Key pairs made in the token and destroyed there (p11_internal.h lists
 * the parts). */
#include "p11_internal.h"
#include "common/attr.h"

#ifdef JWTKIT_WITH_PKCS11

/* ----------------------------------------------------------- generation */

/* A session that may write, logged in. */
static jwtkit_err rw_session(const p11_token *t, const char *pin, size_t pin_len, CK_SESSION_HANDLE *h,
                             jwtkit_errinfo *info) {
  char b[32];
  if (t->flags & CKF_WRITE_PROTECTED)
    return jk_fail(info, JWTKIT_ERR_PERMISSION, "token", "%s is write-protected", t->where);
  CK_RV rv = t->fl->C_OpenSession(t->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, h);
  if (rv != CKR_OK) return jk_fail(info, JWTKIT_ERR_IO, "session", "cannot open a read-write session on %s: %s", t->where, jk_p11_rv_text(rv, b));
  int refused = 0;
  jwtkit_err rc = jk_p11_login_if_needed(t, *h, pin, pin_len, NULL, NULL, &refused, info);
  if (rc != JWTKIT_OK) {
    (void)t->fl->C_CloseSession(*h);
    *h = CK_INVALID_HANDLE;
  }
  return rc;
}

/* Any key object with this label (or this id). */
int jk_p11_object_exists(const p11_token *t, CK_SESSION_HANDLE h, const char *label, const unsigned char *id,
                         size_t id_len) {
  static const CK_OBJECT_CLASS classes[] = {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY, CKO_SECRET_KEY, CKO_CERTIFICATE, CKO_DATA};
  for (size_t i = 0; i < sizeof classes / sizeof *classes; i++) {
    CK_OBJECT_HANDLE f[2];
    CK_ULONG n = 0;
    if (jk_p11_find_objects(t, h, classes[i], label, id, id_len, f, &n, NULL) != JWTKIT_OK || n > 0) return 1;
  }
  return 0;
}

/* label_kid: the URI names no object; the pair is made under a temporary
 * label of its own, then labelled with its kid (the thumbprint) like its
 * CKA_ID. */
static jwtkit_err generate(jwtkit_key **out, jwtkit_alg alg, unsigned bits, const char *uri, int label_kid,
                           jwtkit_errinfo *info) {
  if (out == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, NULL);
  *out = NULL;
  const jk_alg_info *ai = jk_alg_get(alg);
  if (ai == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, "alg", "unknown algorithm");
  if (ai->kty == JWTKIT_KTY_OCT)
    return jk_fail(info, JWTKIT_ERR_UNSUPPORTED, "alg", "%s keys are secrets; jwtkit makes token keys for RS*, PS*, ES* and EdDSA", ai->name);
  if (ai->kty == JWTKIT_KTY_RSA) {
    if (bits == 0) bits = 2048;
    if (bits < 2048 || bits > 16384 || bits % 8 != 0)
      return jk_fail(info, JWTKIT_ERR_INVALID_ARG, "bits", "RSA size must be a multiple of 8 in 2048..16384");
  } else if (ai->kty == JWTKIT_KTY_OKP && bits != 0 && bits != 255 && bits != 448) {
    return jk_fail(info, JWTKIT_ERR_INVALID_ARG, "bits", "EdDSA: 255 (Ed25519) or 448 (Ed448)");
  }
  jk_p11_uri u;
  jwtkit_err rc = uri == NULL ? jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, "no PKCS#11 URI")
                              : jk_p11_uri_parse(&u, uri, strlen(uri), info);
  if (rc != JWTKIT_OK) return rc;
  char temp[40];
  if (label_kid) {
    unsigned char r[12];
    if (u.object != NULL || u.id != NULL || u.type != JK_P11_TYPE_ANY) {
      jk_p11_uri_free(&u);
      return jk_fail(info, JWTKIT_ERR_INVALID_ARG, "object",
                     "the token's URI names no key (no object=, id= or type=): each key is labelled with its kid");
    }
    if (jk_random(r, sizeof r) != 0) {
      jk_p11_uri_free(&u);
      return jk_fail(info, JWTKIT_ERR_CRYPTO, NULL, "no randomness");
    }
    strcpy(temp, "jwtkit-new-");
    jk_b64url_encode(temp + strlen(temp), r, sizeof r);
    temp[strlen("jwtkit-new-") + 16] = '\0';
    u.object = temp;
  } else if (u.object == NULL || (u.type != JK_P11_TYPE_ANY && u.type != JK_P11_TYPE_PRIVATE)) {
    jk_p11_uri_free(&u);
    return jk_fail(info, JWTKIT_ERR_INVALID_ARG, "object",
                   "a new key needs its label: pkcs11:token=T;object=NAME (and no type= other than private)");
  }
  char *pin = NULL;
  size_t pin_len = 0;
  p11_token t;
  if ((rc = jk_p11_pin_read(&u, &pin, &pin_len, info)) != JWTKIT_OK) {
    jk_p11_uri_free(&u);
    return rc;
  }
  if ((rc = jk_p11_token_open(&u, &t, info)) != JWTKIT_OK) {
    jk_free_secret(pin, pin_len + 1);
    jk_p11_uri_free(&u);
    return rc;
  }
  p11_mech sm = jk_p11_mech_for(ai);
  CK_MECHANISM_TYPE gm = ai->kty == JWTKIT_KTY_RSA ? CKM_RSA_PKCS_KEY_PAIR_GEN
                         : ai->kty == JWTKIT_KTY_EC ? CKM_EC_KEY_PAIR_GEN
                                                    : CKM_EC_EDWARDS_KEY_PAIR_GEN;
  const char *gname = ai->kty == JWTKIT_KTY_RSA ? "CKM_RSA_PKCS_KEY_PAIR_GEN"
                      : ai->kty == JWTKIT_KTY_EC ? "CKM_EC_KEY_PAIR_GEN"
                                                 : "CKM_EC_EDWARDS_KEY_PAIR_GEN";
  char why[40];
  snprintf(why, sizeof why, "for %s keys", ai->name);
  CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
  CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE, priv = CK_INVALID_HANDLE;
  EVP_PKEY *pkey = NULL;
  jwtkit_key *pubkey = NULL;
  if ((rc = jk_p11_mech_check(&t, gm, gname, CKF_GENERATE_KEY_PAIR, why, info)) == JWTKIT_OK &&
      (rc = jk_p11_mech_check(&t, sm.type, sm.name, CKF_SIGN, why, info)) == JWTKIT_OK)
    rc = rw_session(&t, pin, pin_len, &h, info);
  if (rc == JWTKIT_OK && jk_p11_object_exists(&t, h, u.object, NULL, 0))
    rc = jk_fail(info, JWTKIT_ERR_STATE, "object", "%s already holds an object labelled \"%s\": choose another object= (or destroy it)",
                 t.where, u.object);
  if (rc == JWTKIT_OK && u.id != NULL && jk_p11_object_exists(&t, h, NULL, u.id, u.id_len))
    rc = jk_fail(info, JWTKIT_ERR_STATE, "id", "%s already holds an object with that id=: choose another", t.where);
  if (rc == JWTKIT_OK) {
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ULONG mbits = bits;
    static const CK_BYTE e65537[] = {0x01, 0x00, 0x01};
    const unsigned char *params = ai->id == JWTKIT_ALG_ES256   ? jk_p11_oid_p256
                                  : ai->id == JWTKIT_ALG_ES384 ? jk_p11_oid_p384
                                  : ai->id == JWTKIT_ALG_ES512 ? jk_p11_oid_p521
                                  : bits == 448                ? jk_p11_oid_ed448
                                                               : jk_p11_oid_ed25519;
    size_t params_len = ai->id == JWTKIT_ALG_ES256   ? sizeof jk_p11_oid_p256
                        : ai->id == JWTKIT_ALG_ES384 ? sizeof jk_p11_oid_p384
                        : ai->id == JWTKIT_ALG_ES512 ? sizeof jk_p11_oid_p521
                        : bits == 448                ? sizeof jk_p11_oid_ed448
                                                     : sizeof jk_p11_oid_ed25519;
    CK_ULONG ll = strlen(u.object);
    CK_ATTRIBUTE pt[10], kt[12];
    CK_ULONG pn = 0, kn = 0;
    pt[pn++] = (CK_ATTRIBUTE){CKA_TOKEN, &yes, sizeof yes};
    pt[pn++] = (CK_ATTRIBUTE){CKA_PRIVATE, &no, sizeof no};
    pt[pn++] = (CK_ATTRIBUTE){CKA_VERIFY, &yes, sizeof yes};
    pt[pn++] = (CK_ATTRIBUTE){CKA_ENCRYPT, &no, sizeof no};
    pt[pn++] = (CK_ATTRIBUTE){CKA_WRAP, &no, sizeof no};
    pt[pn++] = (CK_ATTRIBUTE){CKA_LABEL, JK_UNCONST(u.object), ll};
    if (u.id != NULL) pt[pn++] = (CK_ATTRIBUTE){CKA_ID, JK_UNCONST(u.id), u.id_len};
    if (ai->kty == JWTKIT_KTY_RSA) {
      pt[pn++] = (CK_ATTRIBUTE){CKA_MODULUS_BITS, &mbits, sizeof mbits};
      pt[pn++] = (CK_ATTRIBUTE){CKA_PUBLIC_EXPONENT, JK_UNCONST(e65537), sizeof e65537};
    } else {
      pt[pn++] = (CK_ATTRIBUTE){CKA_EC_PARAMS, JK_UNCONST(params), params_len};
    }
    kt[kn++] = (CK_ATTRIBUTE){CKA_TOKEN, &yes, sizeof yes};
    kt[kn++] = (CK_ATTRIBUTE){CKA_PRIVATE, &yes, sizeof yes};
    kt[kn++] = (CK_ATTRIBUTE){CKA_SENSITIVE, &yes, sizeof yes};
    kt[kn++] = (CK_ATTRIBUTE){CKA_EXTRACTABLE, &no, sizeof no};
    kt[kn++] = (CK_ATTRIBUTE){CKA_SIGN, &yes, sizeof yes};
    kt[kn++] = (CK_ATTRIBUTE){CKA_DECRYPT, &no, sizeof no};
    kt[kn++] = (CK_ATTRIBUTE){CKA_UNWRAP, &no, sizeof no};
    kt[kn++] = (CK_ATTRIBUTE){CKA_DERIVE, &no, sizeof no};
    kt[kn++] = (CK_ATTRIBUTE){CKA_LABEL, JK_UNCONST(u.object), ll};
    if (u.id != NULL) kt[kn++] = (CK_ATTRIBUTE){CKA_ID, JK_UNCONST(u.id), u.id_len};
    CK_MECHANISM m = {gm, NULL, 0};
    char b[32];
    CK_RV rv = t.fl->C_GenerateKeyPair(h, &m, pt, pn, kt, kn, &pub, &priv);
    if (rv != CKR_OK)
      rc = jk_fail(info, rv == CKR_KEY_SIZE_RANGE ? JWTKIT_ERR_UNSUPPORTED : JWTKIT_ERR_IO, "alg",
                   "%s could not generate the %s key pair: %s", t.where, ai->name, jk_p11_rv_text(rv, b));
  }
  /* the private key must have come out as asked, whatever the token's defaults */
  if (rc == JWTKIT_OK && (!jk_p11_get_bool(&t, h, priv, CKA_SENSITIVE, 0) || jk_p11_get_bool(&t, h, priv, CKA_EXTRACTABLE, 1) ||
                          !jk_p11_get_bool(&t, h, priv, CKA_TOKEN, 0)))
    rc = jk_fail(info, JWTKIT_ERR_STATE, NULL, "%s made the key extractable or not sensitive; it was destroyed", t.where);
  if (rc == JWTKIT_OK && (rc = jk_p11_read_public(&t, h, pub, CK_INVALID_HANDLE, "the new key", &pkey, info)) == JWTKIT_OK) {
    rc = jk_key_from_pkey(&pubkey, alg, pkey, info);
    pkey = NULL;
  }
  char tp[44];
  jwtkit_err trc;
  if (rc == JWTKIT_OK && (trc = jwtkit_key_thumbprint(pubkey, tp)) != JWTKIT_OK)
    rc = jk_fail(info, trc, NULL, trc == JWTKIT_ERR_NOMEM ? NULL : "thumbprint failed");
  /* without id=: the 32 bytes of the thumbprint identify the pair (and,
   * label_kid, the kid labels it) */
  unsigned char tpb[33];
  size_t tpl = 0;
  if (rc == JWTKIT_OK && label_kid && jk_b64url_decode(tpb, &tpl, tp, strlen(tp)) == 0 &&
      (jk_p11_object_exists(&t, h, tp, NULL, 0) || jk_p11_object_exists(&t, h, NULL, tpb, tpl)))
    rc = jk_fail(info, JWTKIT_ERR_STATE, "object", "%s already holds an object labelled %s or with its id", t.where, tp);
  if (rc == JWTKIT_OK && u.id == NULL) {
    char b[32];
    CK_RV rv = CKR_FUNCTION_FAILED;
    if (jk_b64url_decode(tpb, &tpl, tp, strlen(tp)) == 0) {
      CK_ATTRIBUTE a[2] = {{CKA_ID, tpb, tpl}, {CKA_LABEL, tp, strlen(tp)}};
      CK_ULONG na = label_kid ? 2 : 1;
      rv = t.fl->C_SetAttributeValue(h, priv, a, na);
      if (rv == CKR_OK) rv = t.fl->C_SetAttributeValue(h, pub, a, na);
    }
    if (rv != CKR_OK) rc = jk_fail(info, JWTKIT_ERR_IO, "id", "%s could not set the new key's CKA_ID%s: %s", t.where,
                                   label_kid ? " and CKA_LABEL" : "", jk_p11_rv_text(rv, b));
    else {
      u.id = tpb; /* into the canonical URI below */
      u.id_len = tpl;
      if (label_kid) u.object = tp;
    }
  }
  /* the signing key, through the same path as every token key */
  if (rc == JWTKIT_OK) {
    char text[JK_P11_URI_MAX + 1];
    size_t tl = jk_p11_uri_format(&u, 1, text, sizeof text);
    jk_p11_uri key_uri;
    if (tl >= sizeof text)
      rc = jk_fail(info, JWTKIT_ERR_TOO_LARGE, NULL, "the key's URI is too long");
    else if ((rc = jk_p11_uri_parse(&key_uri, text, tl, info)) == JWTKIT_OK) {
      /* the module again for the key; this session stays logged in
       * meanwhile, so the key needs no second login */
      p11_token kt;
      jk_p11_token_again(&t, &kt);
      char *kpin = NULL;
      size_t kpin_len = 0;
      if (pin != NULL && (kpin = jk_strndup(pin, pin_len)) == NULL) {
        jk_p11_token_close(&kt);
        jk_p11_uri_free(&key_uri);
        rc = jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
      } else {
        kpin_len = kpin ? pin_len : 0;
        rc = jk_p11_load_key(&kt, &key_uri, &kpin, kpin_len, alg, NULL, out, info);
      }
    }
  }
  if (rc == JWTKIT_OK && (rc = jwtkit_key_set_kid(*out, tp, strlen(tp))) != JWTKIT_OK) {
    jwtkit_key_free(*out);
    *out = NULL;
    rc = jk_fail(info, rc, NULL, NULL);
  }
  if (rc != JWTKIT_OK && priv != CK_INVALID_HANDLE) {
    (void)t.fl->C_DestroyObject(h, priv);
    (void)t.fl->C_DestroyObject(h, pub);
  }
  jwtkit_key_free(pubkey);
  EVP_PKEY_free(pkey);
  if (h != CK_INVALID_HANDLE) (void)t.fl->C_CloseSession(h);
  jk_p11_token_close(&t);
  jk_free_secret(pin, pin_len + 1);
  u.id = NULL;
  jk_p11_uri_free(&u);
  return rc;
}

jwtkit_err jwtkit_pkcs11_generate(jwtkit_key **out, jwtkit_alg alg, unsigned bits, const char *uri,
                                  jwtkit_errinfo *info) {
  return generate(out, alg, bits, uri, 0, info);
}

jwtkit_err jk_p11_generate_kid(jwtkit_key **out, jwtkit_alg alg, unsigned bits, const char *token_uri,
                               jwtkit_errinfo *info) {
  return generate(out, alg, bits, token_uri, 1, info);
}

/* -------------------------------------------------------------- destroy */

jwtkit_err jwtkit_pkcs11_destroy(const char *uri, jwtkit_errinfo *info) {
  jk_p11_uri u;
  jwtkit_err rc = jk_p11_uri_for_key(uri, &u, info);
  if (rc != JWTKIT_OK) return rc;
  char *pin = NULL;
  size_t pin_len = 0;
  p11_token t;
  if ((rc = jk_p11_pin_read(&u, &pin, &pin_len, info)) != JWTKIT_OK) {
    jk_p11_uri_free(&u);
    return rc;
  }
  if ((rc = jk_p11_token_open(&u, &t, info)) != JWTKIT_OK) {
    jk_free_secret(pin, pin_len + 1);
    jk_p11_uri_free(&u);
    return rc;
  }
  CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
  CK_OBJECT_HANDLE pf[2], kf[2];
  CK_ULONG pn = 0, kn = 0;
  unsigned char id[256];
  size_t idl = 0;
  if ((rc = rw_session(&t, pin, pin_len, &h, info)) == JWTKIT_OK &&
      (rc = jk_p11_find_objects(&t, h, CKO_PRIVATE_KEY, u.object, u.id, u.id_len, kf, &kn, info)) == JWTKIT_OK) {
    if (kn > 1) {
      rc = jk_fail(info, JWTKIT_ERR_INVALID_ARG, "object", "several private keys in %s match the URI; add id=", t.where);
    } else {
      /* the public partner: by the private key's CKA_ID when the URI has none */
      const unsigned char *pid = u.id;
      size_t pidl = u.id_len;
      if (kn == 1 && pid == NULL && jk_p11_get_attr(&t, h, kf[0], CKA_ID, id, sizeof id, &idl, NULL) == 0 && idl > 0) {
        pid = id;
        pidl = idl;
      }
      rc = jk_p11_find_objects(&t, h, CKO_PUBLIC_KEY, pid == u.id ? u.object : NULL, pid, pidl, pf, &pn, info);
      if (rc == JWTKIT_OK && kn == 0 && pn == 0)
        rc = jk_fail(info, JWTKIT_ERR_NOT_FOUND, "object", "%s has no key object=%s%s", t.where,
                     u.object ? u.object : "(any)", u.id ? " with that id" : "");
      if (rc == JWTKIT_OK && pn > 1)
        rc = jk_fail(info, JWTKIT_ERR_INVALID_ARG, "object", "several public keys in %s match; add id=", t.where);
    }
  }
  char b[32];
  CK_RV rv = CKR_OK;
  if (rc == JWTKIT_OK && kn == 1) rv = t.fl->C_DestroyObject(h, kf[0]);
  if (rc == JWTKIT_OK && rv == CKR_OK && pn == 1) rv = t.fl->C_DestroyObject(h, pf[0]);
  if (rc == JWTKIT_OK && rv != CKR_OK) rc = jk_fail(info, JWTKIT_ERR_IO, "object", "%s could not destroy the key: %s", t.where, jk_p11_rv_text(rv, b));
  if (h != CK_INVALID_HANDLE) (void)t.fl->C_CloseSession(h);
  jk_p11_token_close(&t);
  jk_free_secret(pin, pin_len + 1);
  jk_p11_uri_free(&u);
  return rc;
}

#endif /* JWTKIT_WITH_PKCS11 */
