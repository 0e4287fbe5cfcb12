/* Compact JWS signing. */
#include <string.h>

#include "codec/b64url.h"
#include "codec/json.h"
#include "core/alloc.h"
#include "core/error_internal.h"
#include "crypto/key_internal.h"
#include "jwt_internal.h"
#include "jwtkit/jwt.h"

#define JK_MAX_SIG 2048u /* RSA-16384 */

struct jwtkit_signer {
  jwtkit_key *key;
  char *hdr; /* base64url of the protected header */
  size_t hdr_len;
};

static int member_present(const jk_jdoc *d, const char *name) { return jk_json_get(d, 0, name, strlen(name)) >= 0; }

jwtkit_err jwtkit_signer_new(jwtkit_signer **out, jwtkit_key *key, const jwtkit_sign_opts *opts,
                             jwtkit_errinfo *info) {
  if (out == NULL || key == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, NULL);
  *out = NULL;
  if (!key->can_sign) return jk_fail(info, JWTKIT_ERR_INVALID_KEY, NULL, "a public key cannot sign");
  const char *typ = opts && opts->typ ? opts->typ : "JWT";
  const char *kid = opts && opts->kid ? opts->kid : key->kid;
  const char *extra = opts ? opts->extra_header : NULL;
  jk_buf h;
  jk_buf_init(&h);
  jk_buf_puts(&h, "{\"alg\":\"");
  jk_buf_puts(&h, key->ai->name);
  jk_buf_putc(&h, '"');
  if (typ[0] != '\0') {
    jk_buf_puts(&h, ",\"typ\":");
    int r = jk_buf_json_str(&h, typ, strlen(typ));
    if (r != 0) {
      jk_buf_free(&h);
      return r == -1 ? jk_fail(info, JWTKIT_ERR_INVALID_ARG, "typ", "typ must be UTF-8 text")
                     : jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
    }
  }
  if (kid != NULL && kid[0] != '\0') {
    jk_buf_puts(&h, ",\"kid\":");
    int r = jk_buf_json_str(&h, kid, strlen(kid));
    if (r != 0) {
      jk_buf_free(&h);
      return r == -1 ? jk_fail(info, JWTKIT_ERR_INVALID_ARG, "kid", "kid must be UTF-8 text")
                     : jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
    }
  }
  if (extra != NULL) {
    size_t el = strlen(extra);
    jk_jdoc d;
    jwtkit_err rc = jk_json_parse_alloc(&d, extra, el, 1, info);
    if (rc != JWTKIT_OK) {
      jk_buf_free(&h);
      return rc;
    }
    /* alg is the key's; crit, b64 and the JWE-only members would make a
     * token that jwtkit refuses to verify */
    static const char *const refused[] = {"alg", "crit", "b64", "enc", "zip", "epk", "apu", "apv", "iv", "tag", "p2s", "p2c"};
    int bad = 0;
    for (size_t i = 0; i < sizeof refused / sizeof *refused && !bad; i++) bad = member_present(&d, refused[i]);
    uint32_t members = d.nodes[0].flags;
    jk_free(d.nodes);
    if (bad) {
      jk_buf_free(&h);
      return jk_fail(info, JWTKIT_ERR_INVALID_ARG, "header", "extra header may not set alg, crit, b64 or a JWE-only member (enc, zip, epk, apu, apv, iv, tag, p2s, p2c)");
    }
    if (members > 0) { /* splice the members in: drop the outer braces */
      const char *open = memchr(extra, '{', el);
      const char *close = extra + el;
      while (close > open && close[-1] != '}') close--;
      jk_buf_putc(&h, ',');
      jk_buf_put(&h, open + 1, (size_t)(close - 1 - (open + 1)));
    }
  }
  jk_buf_putc(&h, '}');
  if (h.oom) {
    jk_buf_free(&h);
    return jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
  }
  /* the final header must pass our own verifier's parser (no duplicates) */
  jwtkit_err rc = jk_json_check(h.p, h.len, 1, info);
  if (rc != JWTKIT_OK) {
    jk_buf_free(&h);
    if (rc == JWTKIT_ERR_MALFORMED) {
      rc = JWTKIT_ERR_INVALID_ARG;
      if (info != NULL) info->code = rc;
    }
    return rc;
  }
  jwtkit_signer *s = jk_calloc(1, sizeof *s);
  size_t el = jk_b64url_enc_len(h.len);
  if (s == NULL || (s->hdr = jk_malloc(el + 1)) == NULL) {
    jk_free(s);
    jk_buf_free(&h);
    return jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
  }
  s->hdr_len = jk_b64url_encode(s->hdr, (const unsigned char *)h.p, h.len);
  s->hdr[s->hdr_len] = '\0';
  jk_buf_free(&h);
  s->key = jwtkit_key_ref(key);
  *out = s;
  return JWTKIT_OK;
}

void jwtkit_signer_free(jwtkit_signer *s) {
  if (s == NULL) return;
  jwtkit_key_free(s->key);
  jk_free(s->hdr);
  jk_free(s);
}

jwtkit_err jwtkit_signer_sign_buf(const jwtkit_signer *s, const char *claims, size_t claims_len,
                                  char *token, size_t *token_len, jwtkit_errinfo *info) {
  if (s == NULL || claims == NULL || token_len == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, NULL);
  if (claims_len > JWTKIT_DEFAULT_MAX_TOKEN)
    return jk_fail(info, JWTKIT_ERR_TOO_LARGE, NULL, "claims over %u bytes", JWTKIT_DEFAULT_MAX_TOKEN);
  jwtkit_err rc = jk_json_check(claims, claims_len, 1, info);
  if (rc != JWTKIT_OK) return rc;
  size_t need = s->hdr_len + 1 + jk_b64url_enc_len(claims_len) + 1 + jk_b64url_enc_len(s->key->sig_len) + 1;
  if (token == NULL || *token_len < need) {
    *token_len = need;
    return jk_fail(info, JWTKIT_ERR_TOO_LARGE, NULL, "token buffer too small");
  }
  char *o = token;
  memcpy(o, s->hdr, s->hdr_len);
  o += s->hdr_len;
  *o++ = '.';
  o += jk_b64url_encode(o, (const unsigned char *)claims, claims_len);
  size_t signed_len = (size_t)(o - token);
  unsigned char sig[JK_MAX_SIG];
  size_t sig_len = 0;
  rc = jk_sig_sign_info(s->key, (const unsigned char *)token, signed_len, sig, sizeof sig, &sig_len, info);
  if (rc != JWTKIT_OK) return rc;
  *o++ = '.';
  o += jk_b64url_encode(o, sig, sig_len);
  *o = '\0';
  *token_len = (size_t)(o - token);
  return JWTKIT_OK;
}

jwtkit_err jwtkit_signer_sign(const jwtkit_signer *s, const char *claims, size_t claims_len, char **token,
                              size_t *token_len, jwtkit_errinfo *info) {
  if (s == NULL || token == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, NULL);
  *token = NULL;
  if (claims_len > JWTKIT_DEFAULT_MAX_TOKEN)
    return jk_fail(info, JWTKIT_ERR_TOO_LARGE, NULL, "claims over %u bytes", JWTKIT_DEFAULT_MAX_TOKEN);
  size_t cap = s->hdr_len + 1 + jk_b64url_enc_len(claims_len) + 1 + jk_b64url_enc_len(s->key->sig_len) + 1;
  char *buf = jk_malloc(cap);
  if (buf == NULL) return jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
  size_t len = cap;
  jwtkit_err rc = jwtkit_signer_sign_buf(s, claims, claims_len, buf, &len, info);
  if (rc != JWTKIT_OK) {
    jk_free(buf);
    return rc;
  }
  *token = buf;
  if (token_len != NULL) *token_len = len;
  return JWTKIT_OK;
}

jwtkit_err jwtkit_sign(jwtkit_key *key, const jwtkit_sign_opts *opts, const char *claims, size_t claims_len,
                       char **token, size_t *token_len, jwtkit_errinfo *info) {
  if (token != NULL) *token = NULL;
  jwtkit_signer *s = NULL;
  jwtkit_err rc = jwtkit_signer_new(&s, key, opts, info);
  if (rc != JWTKIT_OK) return rc;
  rc = jwtkit_signer_sign(s, claims, claims_len, token, token_len, info);
  jwtkit_signer_free(s);
  return rc;
}

jwtkit_err jwtkit_signer_sign_claimset(const jwtkit_signer *s, const jwtkit_claimset *cs, char **token,
                                       size_t *token_len, jwtkit_errinfo *info) {
  if (token != NULL) *token = NULL;
  char *json = NULL;
  size_t len = 0;
  const char *failed = NULL;
  jwtkit_err rc = jk_claimset_error(cs, &failed);
  if (rc != JWTKIT_OK && failed != NULL)
    return jk_fail(info, rc, NULL, "%s failed earlier (%s); the claimset is not signed", failed, jwtkit_strerror(rc));
  rc = jwtkit_claimset_to_json(cs, &json, &len);
  if (rc != JWTKIT_OK) return jk_fail(info, rc, NULL, NULL);
  rc = jwtkit_signer_sign(s, json, len, token, token_len, info);
  jk_free(json);
  return rc;
}
