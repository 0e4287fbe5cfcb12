/* Signing with a token key: the mechanism of each JWA algorithm, the
 * token's offer checked, the session pool, one retry after a lost session
 * (p11_internal.h lists the parts). */
#include "p11_internal.h"
#include "common/attr.h"

#ifdef JWTKIT_WITH_PKCS11

/* ---------------------------------------------------------- mechanisms */
p11_mech jk_p11_mech_for(const jk_alg_info *ai) {
  switch (ai->id) {
    case JWTKIT_ALG_RS256: return (p11_mech){CKM_SHA256_RSA_PKCS, "CKM_SHA256_RSA_PKCS", 0};
    case JWTKIT_ALG_RS384: return (p11_mech){CKM_SHA384_RSA_PKCS, "CKM_SHA384_RSA_PKCS", 0};
    case JWTKIT_ALG_RS512: return (p11_mech){CKM_SHA512_RSA_PKCS, "CKM_SHA512_RSA_PKCS", 0};
    case JWTKIT_ALG_PS256: return (p11_mech){CKM_SHA256_RSA_PKCS_PSS, "CKM_SHA256_RSA_PKCS_PSS", 0};
    case JWTKIT_ALG_PS384: return (p11_mech){CKM_SHA384_RSA_PKCS_PSS, "CKM_SHA384_RSA_PKCS_PSS", 0};
    case JWTKIT_ALG_PS512: return (p11_mech){CKM_SHA512_RSA_PKCS_PSS, "CKM_SHA512_RSA_PKCS_PSS", 0};
    case JWTKIT_ALG_ES256:
    case JWTKIT_ALG_ES384:
    case JWTKIT_ALG_ES512: return (p11_mech){CKM_ECDSA, "CKM_ECDSA", 1};
    case JWTKIT_ALG_EDDSA: return (p11_mech){CKM_EDDSA, "CKM_EDDSA", 0};
    default: return (p11_mech){0, NULL, 0};
  }
}

#define P11_MAX_MECHS 512u

jwtkit_err jk_p11_mech_check(const p11_token *t, CK_MECHANISM_TYPE m, const char *name, CK_FLAGS need,
                             const char *why, jwtkit_errinfo *info) {
  CK_MECHANISM_INFO mi;
  char b[32];
  /* the list first: some tokens answer C_GetMechanismInfo for mechanisms
   * they do not offer (SoftHSM with slots.mechanisms) */
  CK_MECHANISM_TYPE list[P11_MAX_MECHS];
  CK_ULONG n = P11_MAX_MECHS;
  CK_RV rv = t->fl->C_GetMechanismList(t->slot, list, &n);
  if (rv == CKR_OK) {
    int listed = 0;
    for (CK_ULONG i = 0; i < n && !listed; i++) listed = list[i] == m;
    if (!listed)
      return jk_fail(info, JWTKIT_ERR_UNSUPPORTED, "alg", "%s does not offer %s (needed %s)", t->where, name, why);
  } else if (rv != CKR_BUFFER_TOO_SMALL) { /* more than we list: C_GetMechanismInfo decides */
    return jk_fail(info, JWTKIT_ERR_IO, "alg", "C_GetMechanismList on %s: %s", t->where, jk_p11_rv_text(rv, b));
  }
  rv = t->fl->C_GetMechanismInfo(t->slot, m, &mi);
  if (rv == CKR_MECHANISM_INVALID || (rv == CKR_OK && (mi.flags & need) != need))
    return jk_fail(info, JWTKIT_ERR_UNSUPPORTED, "alg", "%s does not offer %s (needed %s)", t->where, name, why);
  if (rv != CKR_OK) return jk_fail(info, JWTKIT_ERR_IO, "alg", "C_GetMechanismInfo(%s) on %s: %s", name, t->where, jk_p11_rv_text(rv, b));
  return JWTKIT_OK;
}

static CK_RV sign_once(struct jk_p11key *p, const jwtkit_key *key, const p11_sess *s, const unsigned char *in,
                       size_t inl, unsigned char *sig, size_t cap, size_t *sig_len) {
  CK_RV rv = jk_p11_hook(JK_P11_EV_SIGN, key);
  if (rv != CKR_OK) return rv;
  CK_MECHANISM m = p->mech;
  rv = p->tok.fl->C_SignInit(s->h, &m, s->obj);
  if (rv != CKR_OK) return rv;
  CK_ULONG n = (CK_ULONG)cap;
  rv = p->tok.fl->C_Sign(s->h, (CK_BYTE_PTR)JK_UNCONST(in), (CK_ULONG)inl, sig, &n);
  if (rv == CKR_OK) *sig_len = n;
  return rv;
}

/* The signature of in[0..inl) (the data, or its digest), with one retry
 * after a lost session; in a jk_p11_enter. */
static jwtkit_err sign_attempts(struct jk_p11key *p, const jwtkit_key *key, const unsigned char *in, size_t inl,
                                unsigned char *sig, size_t cap, size_t *sig_len, jwtkit_errinfo *info) {
  char b[32];
  for (int attempt = 0;; attempt++) {
    p11_sess s;
    jwtkit_err rc = jk_p11_sess_get(p, key, &s, info);
    if (rc != JWTKIT_OK) return rc;
    size_t n = 0;
    CK_RV rv = sign_once(p, key, &s, in, inl, sig, cap, &n);
    jk_p11_sess_put(p, &s, rv);
    if (rv == CKR_OK) {
      if (n != p->sig_len)
        return jk_fail(info, JWTKIT_ERR_CRYPTO, NULL, "%s returned a %zu-byte %s signature; %zu expected", p->tok.where,
                       n, p->ai->name, p->sig_len);
      *sig_len = n;
      return JWTKIT_OK;
    }
    if (jk_p11_rv_lost(rv) && attempt == 0) {
      atomic_fetch_add(&p->retries, 1);
      continue;
    }
    if (rv == CKR_MECHANISM_INVALID || rv == CKR_MECHANISM_PARAM_INVALID || rv == CKR_KEY_TYPE_INCONSISTENT ||
        rv == CKR_KEY_FUNCTION_NOT_PERMITTED)
      return jk_fail(info, JWTKIT_ERR_UNSUPPORTED, "alg", "%s refused to sign %s with this key: %s", p->tok.where,
                     p->ai->name, jk_p11_rv_text(rv, b));
    if (jk_p11_rv_gone(rv)) jk_p11_module_suspect(p->tok.mod); /* still away on a fresh session */
    return jk_fail(info, JWTKIT_ERR_IO, "sign", "%s failed to sign: %s%s", p->tok.where, jk_p11_rv_text(rv, b),
                   attempt ? " (after re-opening the session)" : "");
  }
}

jwtkit_err jk_p11_sign(const jwtkit_key *key, const unsigned char *data, size_t len, unsigned char *sig, size_t cap,
                       size_t *sig_len, jwtkit_errinfo *info) {
  struct jk_p11key *p = key->p11;
  unsigned char dg[64];
  const unsigned char *in = data;
  size_t inl = len;
  if (p->prehash) {
    const EVP_MD *md = jk_md_sha2(p->ai->hash_len);
    unsigned dl = 0;
    if (md == NULL || EVP_Digest(data, len, dg, &dl, md, NULL) != 1) {
      ERR_clear_error();
      return jk_fail(info, JWTKIT_ERR_CRYPTO, NULL, "digest failed");
    }
    in = dg;
    inl = dl;
  }
  /* a module that lost the token is re-initialised (at most once a
   * second, and never inside another module call of this thread) */
  (void)jk_p11_module_recover(p->tok.mod);
  jk_p11_enter();
  jwtkit_err rc = sign_attempts(p, key, in, inl, sig, cap, sig_len, info);
  jk_p11_leave();
  return rc;
}

#endif /* JWTKIT_WITH_PKCS11 */
