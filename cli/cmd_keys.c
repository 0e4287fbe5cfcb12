/* jwtkit jwk, jwks, thumbprint: key format conversion and identification. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* --alg (optional, single) as a set of zero or one algorithm. */
static int alg_option(cli_args *a, cli_algset *set) {
  const char *s = cli_opt_str(a, "alg");
  set->n = 0;
  if (s == NULL) return CLI_OK;
  int rc = cli_alg_parse(a, s, &set->v[0]);
  if (rc == CLI_OK) set->n = 1;
  return rc;
}

/* Keys that are published get a kid: the thumbprint unless they have one. */
static int ensure_kid(const cli_args *a, jwtkit_key *key) {
  if (jwtkit_key_kid(key) != NULL || jwtkit_key_kty(key) == JWTKIT_KTY_OCT) return CLI_OK;
  char tp[44];
  if (jwtkit_key_thumbprint(key, tp) != JWTKIT_OK || jwtkit_key_set_kid(key, tp, strlen(tp)) != JWTKIT_OK)
    return cli_fail(a, CLI_INTERNAL, "cannot compute the key's thumbprint");
  return CLI_OK;
}

static int print_line(const cli_args *a, const char *text, size_t len) {
  int rc = cli_write_stdout(a, text, len);
  return rc == CLI_OK ? cli_write_stdout(a, "\n", 1) : rc;
}

/* ---------------------------------------------------------------- jwk */

int cli_cmd_jwk(cli_args *a) {
  cli_algset algs;
  cli_buf pass;
  if (cli_opt_flag(a, "private") && jwtkit_is_pkcs11_uri(a->pos[0]))
    return cli_fail(a, CLI_USAGE, "the private key stays in the token (not extractable): only its public JWK exists");
  int rc = alg_option(a, &algs);
  if (rc != CLI_OK || (rc = cli_read_passphrase(a, &pass)) != CLI_OK) return rc;
  jwtkit_key *key = NULL;
  rc = cli_key_load(a, a->pos[0], pass.p, &algs, 1, &key);
  cli_buf_free(&pass);
  if (rc != CLI_OK) return rc;
  int priv = cli_opt_flag(a, "private");
  const char *kid = cli_opt_str(a, "kid");
  char *json = NULL;
  size_t len = 0;
  if (!priv && jwtkit_key_kty(key) == JWTKIT_KTY_OCT) {
    rc = cli_usage(a, "an oct key is a secret and has no public form; --private prints it");
  } else if (priv && !jwtkit_key_can_sign(key)) {
    rc = cli_fail(a, CLI_USAGE, "%s holds a public key; --private needs a private key", a->pos[0]);
  } else if (kid != NULL && (kid[0] == '\0' || jwtkit_key_set_kid(key, kid, strlen(kid)) != JWTKIT_OK)) {
    rc = cli_usage(a, "bad --kid (1..255 bytes)");
  } else if ((rc = ensure_kid(a, key)) == CLI_OK) {
    jwtkit_err e = jwtkit_key_to_jwk(key, priv, &json, &len);
    rc = e == JWTKIT_OK ? print_line(a, json, len) : cli_fail(a, CLI_INTERNAL, "%s", jwtkit_strerror(e));
  }
  if (json != NULL && priv) jwtkit_wipe(json, len);
  jwtkit_free(json);
  jwtkit_key_free(key);
  return rc;
}

/* --------------------------------------------------------------- jwks */

typedef struct jwks_ctx {
  const cli_args *a;
  const char *src;
} jwks_ctx;

static void warn_skip(void *ctx, size_t index, const jwtkit_errinfo *why) {
  jwks_ctx *c = ctx;
  fprintf(stderr, "jwtkit: %s: warning: %s: key %zu left out: %s\n", c->a->cmd->name, c->src, index, why->msg);
}

static int add_to_set(const cli_args *a, jwtkit_jwks *set, jwtkit_key *key, const char *src) {
  if (jwtkit_key_kty(key) == JWTKIT_KTY_OCT)
    return cli_fail(a, CLI_USAGE, "%s holds a secret (oct) key: secrets are never published in a JWK Set", src);
  jwtkit_err e = jwtkit_jwks_add(set, key);
  if (e == JWTKIT_ERR_INVALID_ARG)
    return cli_fail(a, CLI_USAGE, "%s: kid \"%s\" is already in the set", src,
                    jwtkit_key_kid(key) ? jwtkit_key_kid(key) : "(none)");
  if (e != JWTKIT_OK) return cli_fail(a, cli_exit_for(e), "%s: %s", src, jwtkit_strerror(e));
  return CLI_OK;
}

static int add_file(cli_args *a, jwtkit_jwks *set, const char *path, const char *pass, const cli_algset *algs) {
  if (jwtkit_is_pkcs11_uri(path)) { /* the public half of a token key */
    jwtkit_key *key = NULL;
    char shown[512];
    int rc = cli_key_load_pkcs11(a, path, algs, 0, 0, &key);
    if (rc == CLI_OK && (rc = ensure_kid(a, key)) == CLI_OK)
      rc = add_to_set(a, set, key, cli_uri_shown(path, shown, sizeof shown));
    jwtkit_key_free(key);
    return rc;
  }
  cli_buf b;
  int rc = cli_read_file(a, "key file", path, CLI_MAX_KEYFILE, 1, &b);
  if (rc != CLI_OK) return rc;
  const char *src = strcmp(path, "-") == 0 ? "stdin" : path;
  if (cli_key_format(b.p, b.len) == CLI_KEYFMT_JWKS) {
    jwtkit_jwks *in = NULL;
    jwtkit_errinfo info = {0};
    char msg[300];
    jwks_ctx ctx = {a, src};
    jwtkit_alg rsa = algs->n == 1 && jwtkit_alg_kty(algs->v[0]) == JWTKIT_KTY_RSA ? algs->v[0] : JWTKIT_ALG_UNSPEC;
    jwtkit_err e = jwtkit_jwks_parse(&in, b.p, b.len, rsa, warn_skip, &ctx, &info);
    if (e != JWTKIT_OK) rc = cli_fail(a, cli_exit_for(e), "%s: %s", src, cli_errtext(e, &info, msg, sizeof msg));
    for (size_t i = 0; rc == CLI_OK && i < jwtkit_jwks_count(in); i++)
      if (jwtkit_key_can_sign(jwtkit_jwks_get(in, i))) rc = cli_check_secret_mode(a, path, &b);
    for (size_t i = 0; rc == CLI_OK && i < jwtkit_jwks_count(in); i++) rc = add_to_set(a, set, jwtkit_jwks_get(in, i), src);
    jwtkit_jwks_free(in);
  } else {
    jwtkit_key *key = NULL;
    rc = cli_key_import(a, src, b.p, b.len, pass, algs, 0, &key);
    if (rc == CLI_OK && jwtkit_key_can_sign(key)) rc = cli_check_secret_mode(a, path, &b);
    if (rc == CLI_OK && (rc = ensure_kid(a, key)) == CLI_OK) rc = add_to_set(a, set, key, src);
    jwtkit_key_free(key);
  }
  cli_buf_free(&b);
  return rc;
}

int cli_cmd_jwks(cli_args *a) {
  cli_algset algs;
  cli_buf pass;
  int rc = alg_option(a, &algs);
  if (rc != CLI_OK || (rc = cli_read_passphrase(a, &pass)) != CLI_OK) return rc;
  jwtkit_jwks *set = jwtkit_jwks_new();
  if (set == NULL) rc = cli_fail(a, CLI_INTERNAL, "out of memory");
  for (size_t i = 0; rc == CLI_OK && i < a->npos; i++) rc = add_file(a, set, a->pos[i], pass.p, &algs);
  cli_buf_free(&pass);
  char *json = NULL;
  size_t len = 0;
  if (rc == CLI_OK) {
    jwtkit_err e = jwtkit_jwks_to_json(set, &json, &len);
    rc = e == JWTKIT_OK ? print_line(a, json, len) : cli_fail(a, cli_exit_for(e), "%s", jwtkit_strerror(e));
  }
  jwtkit_free(json);
  jwtkit_jwks_free(set);
  return rc;
}

/* --------------------------------------------------------- thumbprint */

int cli_cmd_thumbprint(cli_args *a) {
  cli_buf pass;
  int rc = cli_read_passphrase(a, &pass);
  if (rc != CLI_OK) return rc;
  /* the thumbprint does not depend on the algorithm, but a key needs one to
   * be loaded: RSA keys are loaded as RS256, oct keys without alg as HS256 */
  cli_algset any = {{JWTKIT_ALG_RS256, JWTKIT_ALG_HS256}, 2};
  jwtkit_key *key = NULL;
  rc = cli_key_load(a, a->pos[0], pass.p, &any, 0, &key);
  cli_buf_free(&pass);
  if (rc != CLI_OK) return rc;
  char out[96];
  jwtkit_err e = cli_opt_flag(a, "uri") ? jwtkit_key_thumbprint_uri(key, out) : jwtkit_key_thumbprint(key, out);
  if (e != JWTKIT_OK) {
    rc = cli_fail(a, CLI_INTERNAL, "%s", jwtkit_strerror(e));
  } else {
    if (jwtkit_key_kty(key) == JWTKIT_KTY_OCT)
      fprintf(stderr, "jwtkit: thumbprint: warning: this thumbprint is derived from a secret; do not publish it\n");
    rc = print_line(a, out, strlen(out));
  }
  jwtkit_key_free(key);
  return rc;
}
