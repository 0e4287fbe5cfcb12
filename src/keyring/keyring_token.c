/* Keys of a keyring that live in a PKCS#11 token (keyring_internal.h lists
 * the parts).
 *
 * The keyring document names the token once ("pkcs11": a URI with the
 * token's attributes and the module and PIN source, never a PIN) and marks
 * each key whose private part is there ("token": true).  Every such key is
 * a key pair made in the token by the keyring, labelled with its kid
 * (CKA_LABEL = the kid, CKA_ID = its 32 bytes), so the token's object
 * names are the kids the document lists; the document keeps the public
 * JWK, read from the token once when the key was made, so publishing needs
 * no token.  A token key is never looked for anywhere but in the token. */
#include <stdio.h>
#include <string.h>

#include "codec/b64url.h"
#include "core/alloc.h"
#include "core/error_internal.h"
#include "crypto/p11.h"
#include "jwtkit/pkcs11.h"
#include "keyring_internal.h"

jwtkit_err jk_kr_token_canon(const char *uri, char **out, jwtkit_errinfo *info) {
  *out = NULL;
  if (uri == NULL || !jwtkit_is_pkcs11_uri(uri))
    return jk_fail(info, JWTKIT_ERR_INVALID_ARG, "pkcs11", "the keyring's token must be a pkcs11: URI (pkcs11:token=LABEL)");
  jk_p11_uri u;
  jwtkit_err rc = jk_p11_uri_parse(&u, uri, strlen(uri), info);
  if (rc != JWTKIT_OK) return rc;
  if (u.object != NULL || u.id != NULL || u.type != JK_P11_TYPE_ANY) {
    jk_p11_uri_free(&u);
    return jk_fail(info, JWTKIT_ERR_INVALID_ARG, "pkcs11",
                   "the keyring's token URI names the token only (no object=, id= or type=): the keyring labels each "
                   "key with its kid");
  }
  size_t n = jk_p11_uri_format(&u, 1, NULL, 0);
  char *s = jk_malloc(n + 1);
  if (s == NULL) {
    jk_p11_uri_free(&u);
    return jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
  }
  jk_p11_uri_format(&u, 1, s, n + 1);
  jk_p11_uri_free(&u);
  *out = s;
  return JWTKIT_OK;
}

jwtkit_err jk_kr_token_available(jwtkit_errinfo *info) {
  if (jwtkit_pkcs11_available()) return JWTKIT_OK;
  return jk_fail(info, JWTKIT_ERR_UNSUPPORTED, "pkcs11",
                 "this jwtkit was built without PKCS#11 support: a keyring cannot keep its keys in a token");
}

/* The token's label (or its URI without the query: module, PIN source),
 * for messages. */
static void token_name(const jwtkit_keyring *kr, char *out, size_t cap) {
  jk_p11_uri u;
  snprintf(out, cap, "the keyring's token");
  if (jk_p11_uri_parse(&u, kr->pkcs11, strlen(kr->pkcs11), NULL) != JWTKIT_OK) return;
  if (u.token != NULL)
    snprintf(out, cap, "token \"%s\"", u.token);
  else if (jk_p11_uri_format(&u, 0, out, cap) >= cap)
    snprintf(out, cap, "the keyring's token");
  jk_p11_uri_free(&u);
}

/* A token failure, said to be about the keyring's token: what the token
 * code said (what went wrong and what to do), the token named, and that no
 * key file takes its place. */
static jwtkit_err token_fail(const jwtkit_keyring *kr, jwtkit_err rc, const jwtkit_errinfo *e, jwtkit_errinfo *info) {
  if (rc == JWTKIT_ERR_NOMEM) return jk_fail(info, rc, NULL, NULL);
  char name[64];
  token_name(kr, name, sizeof name);
  const char *field = e->field[0] ? e->field : "pkcs11";
  static const char tail[] = " (this keyring's keys are only in that token; no key file is used)";
  if (strcmp(field, "pin") == 0) /* the PIN's messages name the token and the fix */
    return jk_fail(info, rc, field, "%s", e->msg);
  int named = strstr(e->msg, name) != NULL;
  int room = (int)sizeof info->msg - 1 - (int)(sizeof tail - 1) - (named ? 0 : (int)strlen(name) + 2);
  if (room < 40) room = 40;
  return jk_fail(info, rc, field, "%s%s%.*s%s", named ? "" : name, named ? "" : ": ", room, e->msg, tail);
}

/* The URI of kid's key in the keyring's token (jk_malloc). */
static jwtkit_err key_uri(const jwtkit_keyring *kr, const char *kid, char **out, jwtkit_errinfo *info) {
  *out = NULL;
  jk_p11_uri u;
  jwtkit_err rc = jk_p11_uri_parse(&u, kr->pkcs11, strlen(kr->pkcs11), info);
  if (rc != JWTKIT_OK) return rc;
  unsigned char id[48];
  size_t idl = 0;
  u.object = kid;
  if (strlen(kid) == 43 && jk_b64url_decode(id, &idl, kid, 43) == 0 && idl == 32) {
    u.id = id;
    u.id_len = idl;
  }
  size_t n = jk_p11_uri_format(&u, 1, NULL, 0);
  char *s = n < JK_P11_URI_MAX ? jk_malloc(n + 1) : NULL;
  if (s != NULL) jk_p11_uri_format(&u, 1, s, n + 1);
  u.object = NULL;
  u.id = NULL;
  jk_p11_uri_free(&u);
  if (s == NULL)
    return n < JK_P11_URI_MAX ? jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL)
                              : jk_fail(info, JWTKIT_ERR_TOO_LARGE, "pkcs11", "the key's token URI is too long");
  *out = s;
  return JWTKIT_OK;
}

jwtkit_err jk_kr_token_generate(jwtkit_keyring *kr, jwtkit_alg alg, unsigned bits, jwtkit_key **out,
                                jwtkit_errinfo *info) {
  jwtkit_errinfo e = {0};
  jwtkit_err rc = jk_p11_generate_kid(out, alg, bits, kr->pkcs11, &e);
  return rc == JWTKIT_OK ? rc : token_fail(kr, rc, &e, info);
}

jwtkit_err jk_kr_token_load(jwtkit_keyring *kr, kr_key *k, jwtkit_errinfo *info) {
  char *uri = NULL;
  jwtkit_err rc = key_uri(kr, k->kid, &uri, info);
  if (rc != JWTKIT_OK) return rc;
  jwtkit_errinfo e = {0};
  rc = jwtkit_key_from_pkcs11(&k->priv, k->alg, uri, &e);
  jk_free(uri);
  if (rc != JWTKIT_OK) return token_fail(kr, rc, &e, info);
  if ((rc = jwtkit_key_set_kid(k->priv, k->kid, strlen(k->kid))) != JWTKIT_OK) return jk_fail(info, rc, "kid", NULL);
  if (!jwtkit_key_equal_public(k->priv, k->pub))
    return jk_fail(info, JWTKIT_ERR_INVALID_KEY, "kid", "the token's key %s does not match its public key in %s",
                   k->kid, jk_kr_doc_name(kr));
  return JWTKIT_OK;
}

jwtkit_err jk_kr_token_destroy(const jwtkit_keyring *kr, const char *kid, jwtkit_errinfo *info) {
  char *uri = NULL;
  jwtkit_err rc = key_uri(kr, kid, &uri, info);
  if (rc != JWTKIT_OK) return rc;
  jwtkit_errinfo e = {0};
  rc = jwtkit_pkcs11_destroy(uri, &e);
  jk_free(uri);
  if (rc == JWTKIT_OK || rc == JWTKIT_ERR_NOT_FOUND) return JWTKIT_OK;
  return token_fail(kr, rc, &e, info);
}

void jk_kr_token_sweep(jwtkit_keyring *kr, jk_kr_txn *x) {
  for (size_t i = 0; i < kr->n; i++) {
    kr_key *k = &kr->keys[i];
    if (!k->token || k->state < JWTKIT_KEY_RETIRED) continue;
    jwtkit_errinfo e = {0};
    if (jk_kr_token_destroy(kr, k->kid, &e) != JWTKIT_OK) {
      jk_kr_note(x, "the private key of %s key %s is still in the token (%s); tried again at the next change",
                 jwtkit_key_state_name(k->state), k->kid, e.msg);
      continue;
    }
    k->token = 0;
    jk_kr_say(x, "destroyed the private key of %s key %s in the token", jwtkit_key_state_name(k->state), k->kid);
  }
}
