/* Key objects in the token: finding them, reading attributes and the
 * public half, loading a signing key or a public key by URI
 * (p11_internal.h lists the parts). */
#include "p11_internal.h"
#include "common/attr.h"

#ifdef JWTKIT_WITH_PKCS11

/* ------------------------------------------------------------- objects */

/* Objects of class cls with the label and/or id: up to 2 handles (2 means
 * "several"). */
jwtkit_err jk_p11_find_objects(const p11_token *t, CK_SESSION_HANDLE h, CK_OBJECT_CLASS cls, const char *label,
                               const unsigned char *id, size_t id_len, CK_OBJECT_HANDLE found[2], CK_ULONG *n,
                               jwtkit_errinfo *info) {
  CK_ATTRIBUTE tmpl[3];
  CK_ULONG k = 0;
  tmpl[k++] = (CK_ATTRIBUTE){CKA_CLASS, &cls, sizeof cls};
  if (label != NULL) tmpl[k++] = (CK_ATTRIBUTE){CKA_LABEL, JK_UNCONST(label), strlen(label)};
  if (id != NULL) tmpl[k++] = (CK_ATTRIBUTE){CKA_ID, JK_UNCONST(id), id_len};
  char b[32];
  CK_RV rv = t->fl->C_FindObjectsInit(h, tmpl, k);
  *n = 0;
  if (rv == CKR_OK) {
    rv = t->fl->C_FindObjects(h, found, 2, n);
    CK_RV r2 = t->fl->C_FindObjectsFinal(h);
    if (rv == CKR_OK) rv = r2;
  }
  if (rv != CKR_OK) return jk_fail(info, JWTKIT_ERR_IO, NULL, "searching %s: %s", t->where, jk_p11_rv_text(rv, b));
  return JWTKIT_OK;
}

/* One attribute into buf (cap bytes).  0 with *len; 1 when the object
 * does not have it (or it is sensitive); -1 on other errors. */
int jk_p11_get_attr(const p11_token *t, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type, void *buf,
                    size_t cap, size_t *len, CK_RV *rv_out) {
  CK_ATTRIBUTE a = {type, buf, (CK_ULONG)cap};
  CK_RV rv = t->fl->C_GetAttributeValue(h, o, &a, 1);
  if (rv_out != NULL) *rv_out = rv;
  if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE ||
      (rv == CKR_OK && a.ulValueLen == CK_UNAVAILABLE_INFORMATION))
    return 1;
  if (rv != CKR_OK) return -1;
  *len = a.ulValueLen;
  return 0;
}

int jk_p11_get_bool(const p11_token *t, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type, int dflt) {
  CK_BBOOL v = CK_FALSE;
  size_t n = 0;
  if (jk_p11_get_attr(t, h, o, type, &v, sizeof v, &n, NULL) != 0 || n != sizeof v) return dflt;
  return v == CK_TRUE;
}

/* ------------------------------------------------- public key material */

const unsigned char jk_p11_oid_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
const unsigned char jk_p11_oid_p384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
const unsigned char jk_p11_oid_p521[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23};
const unsigned char jk_p11_oid_ed25519[] = {0x06, 0x03, 0x2b, 0x65, 0x70};
const unsigned char jk_p11_oid_ed448[] = {0x06, 0x03, 0x2b, 0x65, 0x71};
static const unsigned char k_name_ed25519[] = {0x13, 0x0c, 'e', 'd', 'w', 'a', 'r', 'd', 's', '2', '5', '5', '1', '9'};
static const unsigned char k_name_ed448[] = {0x13, 0x0a, 'e', 'd', 'w', 'a', 'r', 'd', 's', '4', '4', '8'};


static int same(const unsigned char *a, size_t an, const unsigned char *b, size_t bn) {
  return an == bn && memcmp(a, b, an) == 0;
}

static int curve_of(const unsigned char *p, size_t n, curve_info *c) {
  if (same(p, n, jk_p11_oid_p256, sizeof jk_p11_oid_p256)) *c = (curve_info){"prime256v1", 65, 0};
  else if (same(p, n, jk_p11_oid_p384, sizeof jk_p11_oid_p384)) *c = (curve_info){"secp384r1", 97, 0};
  else if (same(p, n, jk_p11_oid_p521, sizeof jk_p11_oid_p521)) *c = (curve_info){"secp521r1", 133, 0};
  else if (same(p, n, jk_p11_oid_ed25519, sizeof jk_p11_oid_ed25519) || same(p, n, k_name_ed25519, sizeof k_name_ed25519))
    *c = (curve_info){"ED25519", 32, 1};
  else if (same(p, n, jk_p11_oid_ed448, sizeof jk_p11_oid_ed448) || same(p, n, k_name_ed448, sizeof k_name_ed448))
    *c = (curve_info){"ED448", 57, 1};
  else
    return -1;
  return 0;
}

/* CKA_EC_POINT: a DER OCTET STRING around the point (PKCS#11), or the bare
 * point (some tokens).  Returns the point or NULL. */
static const unsigned char *ec_point(const unsigned char *p, size_t n, size_t want) {
  if (n == want && (want != 65 && want != 97 && want != 133 ? 1 : p[0] == 0x04)) return p;
  if (n < 2 || p[0] != 0x04) return NULL;
  size_t hdr, len;
  if (p[1] < 0x80) {
    len = p[1];
    hdr = 2;
  } else if (p[1] == 0x81 && n >= 3) {
    len = p[2];
    hdr = 3;
  } else {
    return NULL;
  }
  if (hdr + len != n || len != want) return NULL;
  if (want == 65 || want == 97 || want == 133) return p[hdr] == 0x04 ? p + hdr : NULL;
  return p + hdr;
}

static EVP_PKEY *pkey_rsa(const unsigned char *n, size_t nl, const unsigned char *e, size_t el) {
  EVP_PKEY *pkey = NULL;
  BIGNUM *bn = BN_bin2bn(n, (int)nl, NULL), *be = BN_bin2bn(e, (int)el, NULL);
  OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM *params = NULL;
  EVP_PKEY_CTX *ctx = NULL;
  if (bn && be && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) == 1 &&
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) == 1 && (params = OSSL_PARAM_BLD_to_param(bld)) &&
      (ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) && EVP_PKEY_fromdata_init(ctx) == 1 &&
      EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
    pkey = NULL;
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  BN_free(bn);
  BN_free(be);
  ERR_clear_error();
  return pkey;
}

static EVP_PKEY *pkey_ec(const char *group, const unsigned char *pt, size_t ptl) {
  EVP_PKEY *pkey = NULL;
  OSSL_PARAM params[3];
  params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, JK_UNCONST(group), 0);
  params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, JK_UNCONST(pt), ptl);
  params[2] = OSSL_PARAM_construct_end();
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
  if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 || EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
    pkey = NULL;
  EVP_PKEY_CTX_free(ctx);
  ERR_clear_error();
  return pkey;
}

/* The EVP_PKEY of the public half: the attributes of `o` (a public key, or
 * a private key that carries its public members), else of `pub`. */
jwtkit_err jk_p11_read_public(const p11_token *t, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_OBJECT_HANDLE pub,
                              const char *what, EVP_PKEY **out, jwtkit_errinfo *info) {
  *out = NULL;
  CK_KEY_TYPE kt = 0;
  size_t n = 0;
  if (jk_p11_get_attr(t, h, o, CKA_KEY_TYPE, &kt, sizeof kt, &n, NULL) != 0 || n != sizeof kt)
    return jk_fail(info, JWTKIT_ERR_INVALID_KEY, NULL, "%s has no CKA_KEY_TYPE", what);
  if (kt == CKK_RSA) {
    unsigned char mod[2048 + 8], exp[16];
    size_t ml = 0, el = 0;
    CK_OBJECT_HANDLE src = o;
    int r = jk_p11_get_attr(t, h, src, CKA_MODULUS, mod, sizeof mod, &ml, NULL);
    if (r == 1 && pub != CK_INVALID_HANDLE) r = jk_p11_get_attr(t, h, src = pub, CKA_MODULUS, mod, sizeof mod, &ml, NULL);
    if (r == 0) r = jk_p11_get_attr(t, h, src, CKA_PUBLIC_EXPONENT, exp, sizeof exp, &el, NULL);
    if (r != 0 || ml == 0 || el == 0)
      return jk_fail(info, JWTKIT_ERR_INVALID_KEY, "n", "cannot read the RSA public key of %s (CKA_MODULUS, CKA_PUBLIC_EXPONENT; at most 16384 bits)", what);
    if ((*out = pkey_rsa(mod, ml, exp, el)) == NULL)
      return jk_fail(info, JWTKIT_ERR_INVALID_KEY, "n", "the RSA public key of %s is not valid", what);
    return JWTKIT_OK;
  }
  if (kt != CKK_EC && kt != CKK_EC_EDWARDS)
    return jk_fail(info, JWTKIT_ERR_UNSUPPORTED, "kty",
                   "%s is not an RSA, EC or Edwards key (CKK 0x%lx): no JOSE signature algorithm", what,
                   (unsigned long)kt);
  unsigned char params[64], point[160];
  size_t pl = 0, ptl = 0;
  int r = jk_p11_get_attr(t, h, o, CKA_EC_PARAMS, params, sizeof params, &pl, NULL);
  if (r == 1 && pub != CK_INVALID_HANDLE) r = jk_p11_get_attr(t, h, pub, CKA_EC_PARAMS, params, sizeof params, &pl, NULL);
  curve_info c;
  if (r != 0 || curve_of(params, pl, &c) != 0)
    return jk_fail(info, JWTKIT_ERR_UNSUPPORTED, "crv",
                   "the curve of %s (CKA_EC_PARAMS) is not P-256, P-384, P-521, Ed25519 or Ed448", what);
  r = jk_p11_get_attr(t, h, o, CKA_EC_POINT, point, sizeof point, &ptl, NULL);
  if (r == 1 && pub != CK_INVALID_HANDLE) r = jk_p11_get_attr(t, h, pub, CKA_EC_POINT, point, sizeof point, &ptl, NULL);
  const unsigned char *pt = r == 0 ? ec_point(point, ptl, c.point) : NULL;
  if (pt == NULL && r == 1 && pub == CK_INVALID_HANDLE)
    return jk_fail(info, JWTKIT_ERR_NOT_FOUND, "x",
                   "%s has no public key object with its CKA_ID (or label), and only that holds the public point", what);
  if (pt == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_KEY, "x", "cannot read the public point of %s (CKA_EC_POINT)", what);
  if (c.edwards)
    *out = EVP_PKEY_new_raw_public_key(c.point == 32 ? EVP_PKEY_ED25519 : EVP_PKEY_ED448, NULL, pt, c.point);
  else
    *out = pkey_ec(c.ossl, pt, c.point);
  ERR_clear_error();
  if (*out == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_KEY, "x", "the public key of %s is not valid", what);
  return JWTKIT_OK;
}

/* ---------------------------------------------------------- key loading */

/* Build the jwtkit_key of the private key the (owned) URI names, on the
 * token tok (its module owned too): read the public half, check the key
 * and the mechanism, sign once.  Everything is released on failure. */
jwtkit_err jk_p11_load_key(p11_token *tok, jk_p11_uri *uri, char **pin, size_t pin_len, jwtkit_alg alg,
                           const jwtkit_pkcs11_opts *opts, jwtkit_key **out, jwtkit_errinfo *info) {
  *out = NULL;
  char what[200];
  struct jk_p11key *p = NULL;
  jwtkit_err rc = jk_p11_key_new(tok, uri, opts, &p, info);
  if (rc != JWTKIT_OK) {
    jk_free_secret(*pin, pin_len + 1);
    *pin = NULL;
    return rc;
  }
  p->pin = *pin;
  p->pin_len = pin_len;
  *pin = NULL;
  snprintf(what, sizeof what, "the key%s%s in %s", p->uri.object ? " " : "", p->uri.object ? p->uri.object : "",
           p->tok.where);

  /* a first session: logs in, finds the object */
  p11_sess s;
  p->open = 1;
  CK_RV orv;
  if ((rc = jk_p11_sess_open(p, NULL, &s, &orv, info)) != JWTKIT_OK) {
    p->open = 0;
    jk_p11_key_free(p);
    return rc;
  }
  CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE;
  EVP_PKEY *pkey = NULL;
  if (rc == JWTKIT_OK) {
    if (!jk_p11_get_bool(&p->tok, s.h, s.obj, CKA_SIGN, 0))
      rc = jk_fail(info, JWTKIT_ERR_INVALID_KEY, "key_ops", "%s may not sign (CKA_SIGN is false)", what);
    else if (jk_p11_get_bool(&p->tok, s.h, s.obj, CKA_ALWAYS_AUTHENTICATE, 0))
      rc = jk_fail(info, JWTKIT_ERR_UNSUPPORTED, NULL,
                   "%s wants the PIN for every signature (CKA_ALWAYS_AUTHENTICATE); jwtkit cannot use such keys", what);
  }
  if (rc == JWTKIT_OK) {
    /* its public key object: the same CKA_ID, else the same label */
    unsigned char id[256];
    size_t idl = 0;
    int have_id = jk_p11_get_attr(&p->tok, s.h, s.obj, CKA_ID, id, sizeof id, &idl, NULL) == 0 && idl > 0;
    char label[256];
    size_t ll = 0;
    int have_label = !have_id && jk_p11_get_attr(&p->tok, s.h, s.obj, CKA_LABEL, label, sizeof label - 1, &ll, NULL) == 0 && ll > 0;
    if (have_label) label[ll] = '\0';
    if (have_id || have_label) {
      CK_OBJECT_HANDLE pf[2];
      CK_ULONG pn = 0;
      if (jk_p11_find_objects(&p->tok, s.h, CKO_PUBLIC_KEY, have_label ? label : NULL, have_id ? id : NULL, idl, pf, &pn,
                       NULL) == JWTKIT_OK &&
          pn == 1)
        pub = pf[0];
    }
    rc = jk_p11_read_public(&p->tok, s.h, s.obj, pub, what, &pkey, info);
  }
  jwtkit_key *key = NULL;
  if (rc == JWTKIT_OK) {
    rc = jk_key_from_pkey(&key, alg, pkey, info); /* takes pkey: every check of a public key */
    pkey = NULL;
  }
  if (rc == JWTKIT_OK) {
    p->ai = key->ai;
    p->sig_len = key->sig_len;
    p11_mech m = jk_p11_mech_for(p->ai);
    p->prehash = m.prehash;
    p->mech = (CK_MECHANISM){m.type, NULL, 0};
    if (p->ai->pss) {
      CK_MECHANISM_TYPE h = p->ai->hash_len == 32 ? CKM_SHA256 : p->ai->hash_len == 48 ? CKM_SHA384 : CKM_SHA512;
      CK_RSA_PKCS_MGF_TYPE g = p->ai->hash_len == 32 ? CKG_MGF1_SHA256 : p->ai->hash_len == 48 ? CKG_MGF1_SHA384 : CKG_MGF1_SHA512;
      p->pss = (CK_RSA_PKCS_PSS_PARAMS){h, g, p->ai->hash_len};
      p->mech.pParameter = &p->pss;
      p->mech.ulParameterLen = sizeof p->pss;
    }
    char why[32];
    snprintf(why, sizeof why, "for %s", p->ai->name);
    rc = jk_p11_mech_check(&p->tok, m.type, m.name, CKF_SIGN, why, info);
  }
  /* the first session joins the pool */
  pthread_mutex_lock(&p->mu);
  p->idle[p->nidle++] = s;
  pthread_mutex_unlock(&p->mu);
  if (rc == JWTKIT_OK) {
    key->p11 = p;
    key->can_sign = 1;
    p = NULL;
    /* the token's key and the public key read are a pair */
    static const unsigned char msg[] = "jwtkit pkcs11 pairwise check";
    unsigned char sig[2048];
    size_t sl = 0;
    rc = jk_p11_sign(key, msg, sizeof msg - 1, sig, sizeof sig, &sl, info);
    if (rc == JWTKIT_OK && jk_sig_verify(key, msg, sizeof msg - 1, sig, sl) != 1)
      rc = jk_fail(info, JWTKIT_ERR_INVALID_KEY, NULL,
                   "%s does not match the public key read from the token (CKA_ID of the public object?)", what);
  }
  EVP_PKEY_free(pkey);
  jk_p11_key_free(p);
  if (rc != JWTKIT_OK) {
    jwtkit_key_free(key);
    return rc;
  }
  if (key->p11->tok.entered) { /* the key is loaded: its module calls enter on their own */
    jk_p11_leave();
    key->p11->tok.entered = 0;
  }
  *out = key;
  return JWTKIT_OK;
}

jwtkit_err jk_p11_uri_for_key(const char *text, jk_p11_uri *u, jwtkit_errinfo *info) {
  if (text == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, "no PKCS#11 URI");
  jwtkit_err rc = jk_p11_uri_parse(u, text, strlen(text), info);
  if (rc != JWTKIT_OK) return rc;
  if (u->object == NULL && u->id == NULL) {
    jk_p11_uri_free(u);
    return jk_fail(info, JWTKIT_ERR_INVALID_ARG, "object",
                   "the PKCS#11 URI names no key: add object=LABEL and/or id=%%XX... (pkcs11:token=T;object=NAME)");
  }
  return JWTKIT_OK;
}

jwtkit_err jwtkit_key_from_pkcs11_opts(jwtkit_key **out, jwtkit_alg alg, const char *uri,
                                       const jwtkit_pkcs11_opts *opts, jwtkit_errinfo *info) {
  if (out == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, NULL);
  *out = NULL;
  if (opts != NULL && opts->max_sessions > P11_MAX_SESSIONS)
    return jk_fail(info, JWTKIT_ERR_INVALID_ARG, "max_sessions", "max_sessions %u is over %u", opts->max_sessions,
                   P11_MAX_SESSIONS);
  jk_p11_uri u;
  jwtkit_err rc = jk_p11_uri_for_key(uri, &u, info);
  if (rc != JWTKIT_OK) return rc;
  if (u.type != JK_P11_TYPE_ANY && u.type != JK_P11_TYPE_PRIVATE) {
    jk_p11_uri_free(&u);
    return jk_fail(info, JWTKIT_ERR_INVALID_ARG, "type",
                   "signing needs the private key: drop type= from the URI or write type=private");
  }
  if (alg != JWTKIT_ALG_UNSPEC && jwtkit_alg_kty(alg) == JWTKIT_KTY_OCT) {
    jk_p11_uri_free(&u);
    return jk_fail(info, JWTKIT_ERR_INVALID_KEY, "alg", "%s needs a secret; a token key is RS*, PS*, ES* or EdDSA",
                   jwtkit_alg_name(alg));
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
  return jk_p11_load_key(&t, &u, &pin, pin_len, alg, opts, out, info);
}

jwtkit_err jwtkit_key_from_pkcs11(jwtkit_key **out, jwtkit_alg alg, const char *uri, jwtkit_errinfo *info) {
  return jwtkit_key_from_pkcs11_opts(out, alg, uri, NULL, info);
}

/* -------------------------------------------------------- public only */

jwtkit_err jwtkit_pkcs11_public_key(jwtkit_key **out, jwtkit_alg alg, const char *uri, jwtkit_errinfo *info) {
  if (out == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, NULL);
  *out = NULL;
  jk_p11_uri u;
  jwtkit_err rc = jk_p11_uri_for_key(uri, &u, info);
  if (rc != JWTKIT_OK) return rc;
  if (u.type != JK_P11_TYPE_ANY && u.type != JK_P11_TYPE_PRIVATE && u.type != JK_P11_TYPE_PUBLIC) {
    jk_p11_uri_free(&u);
    return jk_fail(info, JWTKIT_ERR_INVALID_ARG, "type", "type= must be public or private for a key");
  }
  p11_token t;
  if ((rc = jk_p11_token_open(&u, &t, info)) != JWTKIT_OK) {
    jk_p11_uri_free(&u);
    return rc;
  }
  char b[32], what[200];
  snprintf(what, sizeof what, "the key%s%s in %s", u.object ? " " : "", u.object ? u.object : "", t.where);
  CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
  CK_RV rv = t.fl->C_OpenSession(t.slot, CKF_SERIAL_SESSION, NULL, NULL, &h);
  char *pin = NULL;
  size_t pin_len = 0;
  EVP_PKEY *pkey = NULL;
  if (rv != CKR_OK) rc = jk_fail(info, JWTKIT_ERR_IO, "session", "cannot open a session on %s: %s", t.where, jk_p11_rv_text(rv, b));
  CK_OBJECT_HANDLE f[2];
  CK_ULONG n = 0;
  int logged_in = 0;
  for (int pass = 0; rc == JWTKIT_OK && pass < 2; pass++) {
    /* a public key object visible now; then (private key) after a login */
    if (u.type != JK_P11_TYPE_PRIVATE &&
        (rc = jk_p11_find_objects(&t, h, CKO_PUBLIC_KEY, u.object, u.id, u.id_len, f, &n, info)) == JWTKIT_OK && n > 0) {
      rc = n == 1 ? jk_p11_read_public(&t, h, f[0], CK_INVALID_HANDLE, what, &pkey, info)
                  : jk_fail(info, JWTKIT_ERR_INVALID_ARG, "object", "several public keys in %s match the URI; add id=", t.where);
      break;
    }
    /* private keys are visible once logged in, or at once on a token without logins */
    if (rc == JWTKIT_OK && u.type != JK_P11_TYPE_PUBLIC && (logged_in || !(t.flags & CKF_LOGIN_REQUIRED)) &&
        (rc = jk_p11_find_objects(&t, h, CKO_PRIVATE_KEY, u.object, u.id, u.id_len, f, &n, info)) == JWTKIT_OK && n > 0) {
      rc = n == 1 ? jk_p11_read_public(&t, h, f[0], CK_INVALID_HANDLE, what, &pkey, info)
                  : jk_fail(info, JWTKIT_ERR_INVALID_ARG, "object", "several private keys in %s match the URI; add id=", t.where);
      break;
    }
    if (rc != JWTKIT_OK) break;
    if (pass == 0 && (t.flags & CKF_LOGIN_REQUIRED) && u.type != JK_P11_TYPE_PUBLIC) {
      int refused = 0;
      if ((rc = jk_p11_pin_read(&u, &pin, &pin_len, info)) != JWTKIT_OK) break;
      if (pin == NULL && !(t.flags & CKF_PROTECTED_AUTHENTICATION_PATH)) {
        rc = jk_fail(info, JWTKIT_ERR_NOT_FOUND, "object",
                     "%s has no public key object; its private key needs the user PIN (pin-source= or " P11_PIN_ENV ")",
                     what);
        break;
      }
      if ((rc = jk_p11_login_if_needed(&t, h, pin, pin_len, NULL, NULL, &refused, info)) != JWTKIT_OK) break;
      logged_in = 1;
      continue;
    }
    rc = jk_fail(info, JWTKIT_ERR_NOT_FOUND, "object", "%s has no key object=%s%s", t.where, u.object ? u.object : "(any)",
                 u.id ? " with that id" : "");
    break;
  }
  if (h != CK_INVALID_HANDLE) (void)t.fl->C_CloseSession(h);
  jk_p11_token_close(&t);
  jk_free_secret(pin, pin_len + 1);
  jk_p11_uri_free(&u);
  if (rc != JWTKIT_OK) {
    EVP_PKEY_free(pkey);
    return rc;
  }
  return jk_key_from_pkey(out, alg, pkey, info);
}

#endif /* JWTKIT_WITH_PKCS11 */
