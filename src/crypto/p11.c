/* Keys in PKCS#11 tokens, through p11-kit's module loading and the
 * PKCS#11 API itself (jwtkit/pkcs11.h).
 *
 * A token key is an ordinary jwtkit_key whose EVP_PKEY holds the public
 * half read from the token (verification, export and thumbprints work as
 * for any key) and whose `p11` member signs in the token.  A module is
 * loaded once per process (a p11-kit managed instance, so other users of
 * the module in the process are never finalized by us), shared by every
 * key on it, and re-initialised when its token went away and a fresh
 * C_Initialize may find it again (p11_module.c).  Each key keeps a pool of
 * sessions:
 *
 *   - a signer takes an idle session, or opens one (and logs in when the
 *     session is not logged in) while fewer than max_sessions are open,
 *     else waits on a condition variable, at most wait_ms;
 *   - a session that the token lost (CKR_SESSION_HANDLE_INVALID,
 *     CKR_SESSION_CLOSED, CKR_DEVICE_REMOVED, CKR_TOKEN_NOT_PRESENT,
 *     CKR_USER_NOT_LOGGED_IN) is closed, every idle session of that
 *     generation is dropped, the token is looked up again when it went
 *     away, and the signature is retried once on a fresh session;
 *   - a PIN the token refused (CKR_PIN_INCORRECT, CKR_PIN_LOCKED, ...) is
 *     never tried again: the key fails fast with the first message, so a
 *     busy issuer cannot lock the token.  Logins are serialised.
 *
 * Without p11-kit (JWTKIT_WITH_PKCS11 undefined) the public functions
 * return JWTKIT_ERR_UNSUPPORTED. */
#include "p11_internal.h"

unsigned long (*volatile jk_p11_test_hook)(int event, const jwtkit_key *key);

int jwtkit_is_pkcs11_uri(const char *text) { return text != NULL && jk_p11_is_uri(text, strnlen(text, 8)); }

#ifndef JWTKIT_WITH_PKCS11

#define NO_P11 "this jwtkit was built without PKCS#11 support (rebuild with p11-kit: libp11-kit-dev, -DJWTKIT_PKCS11=ON)"

int jwtkit_pkcs11_available(void) { return 0; }

volatile long jk_p11_reinit_ms = 1000;

jwtkit_err jwtkit_key_from_pkcs11(jwtkit_key **out, jwtkit_alg alg, const char *uri, jwtkit_errinfo *info) {
  return jwtkit_key_from_pkcs11_opts(out, alg, uri, NULL, info);
}

jwtkit_err jwtkit_key_from_pkcs11_opts(jwtkit_key **out, jwtkit_alg alg, const char *uri,
                                       const jwtkit_pkcs11_opts *opts, jwtkit_errinfo *info) {
  (void)alg, (void)uri, (void)opts;
  if (out != NULL) *out = NULL;
  return jk_fail(info, JWTKIT_ERR_UNSUPPORTED, NULL, NO_P11);
}

jwtkit_err jwtkit_pkcs11_public_key(jwtkit_key **out, jwtkit_alg alg, const char *uri, jwtkit_errinfo *info) {
  return jwtkit_key_from_pkcs11_opts(out, alg, uri, NULL, info);
}

jwtkit_err jwtkit_pkcs11_generate(jwtkit_key **out, jwtkit_alg alg, unsigned bits, const char *uri,
                                  jwtkit_errinfo *info) {
  (void)bits;
  return jwtkit_key_from_pkcs11_opts(out, alg, uri, NULL, info);
}

jwtkit_err jwtkit_pkcs11_destroy(const char *uri, jwtkit_errinfo *info) {
  (void)uri;
  return jk_fail(info, JWTKIT_ERR_UNSUPPORTED, NULL, NO_P11);
}

jwtkit_err jk_p11_generate_kid(jwtkit_key **out, jwtkit_alg alg, unsigned bits, const char *token_uri,
                               jwtkit_errinfo *info) {
  (void)bits;
  return jwtkit_key_from_pkcs11_opts(out, alg, token_uri, NULL, info);
}

int jwtkit_key_is_pkcs11(const jwtkit_key *key) {
  (void)key;
  return 0;
}

jwtkit_err jwtkit_pkcs11_key_uri(const jwtkit_key *key, char **uri, size_t *len) {
  (void)key, (void)len;
  if (uri != NULL) *uri = NULL;
  return JWTKIT_ERR_UNSUPPORTED;
}

jwtkit_err jk_p11_sign(const jwtkit_key *key, const unsigned char *data, size_t len, unsigned char *sig, size_t cap,
                       size_t *sig_len, jwtkit_errinfo *info) {
  (void)key, (void)data, (void)len, (void)sig, (void)cap, (void)sig_len;
  return jk_fail(info, JWTKIT_ERR_UNSUPPORTED, NULL, NO_P11);
}

void jk_p11_key_free(struct jk_p11key *p) { (void)p; }

int jk_p11_get_stats(const jwtkit_key *key, jk_p11_stats *out) {
  (void)key, (void)out;
  return -1;
}

int jk_p11_test_module(const jwtkit_key *key, void **function_list, unsigned long *slot) {
  (void)key, (void)function_list, (void)slot;
  return -1;
}

#else /* JWTKIT_WITH_PKCS11 */

int jwtkit_pkcs11_available(void) { return 1; }

/* ---------------------------------------------------------- accessors */

int jwtkit_key_is_pkcs11(const jwtkit_key *key) { return key != NULL && key->p11 != NULL; }

jwtkit_err jwtkit_pkcs11_key_uri(const jwtkit_key *key, char **uri, size_t *len) {
  if (uri == NULL) return JWTKIT_ERR_INVALID_ARG;
  *uri = NULL;
  if (key == NULL || key->p11 == NULL) return JWTKIT_ERR_INVALID_ARG;
  const struct jk_p11key *p = key->p11;
  jk_p11_uri u = p->uri;
  u.token = p->tok.label;
  if (p->tok.serial[0]) u.serial = p->tok.serial;
  size_t n = jk_p11_uri_format(&u, 1, NULL, 0);
  char *s = jk_malloc(n + 1);
  if (s == NULL) return JWTKIT_ERR_NOMEM;
  jk_p11_uri_format(&u, 1, s, n + 1);
  *uri = s;
  if (len != NULL) *len = n;
  return JWTKIT_OK;
}

#endif /* JWTKIT_WITH_PKCS11 */
