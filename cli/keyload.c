/* Key files: content sniffing, import, and binding a key to one algorithm. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static size_t lead_ws(const char *p, size_t len) {
  size_t i = 0;
  while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n')) i++;
  return i;
}

cli_keyfmt cli_key_format(const char *p, size_t len) {
  size_t i = lead_ws(p, len);
  if (len - i >= 10 && memcmp(p + i, "-----BEGIN", 10) == 0) return CLI_KEYFMT_PEM;
  if (i < len && p[i] == '{') {
    const char *v;
    size_t vl;
    if (cli_json_check_object(p, len) == JWTKIT_OK && cli_json_member(p, len, "keys", &v, &vl))
      return CLI_KEYFMT_JWKS;
    return CLI_KEYFMT_JWK; /* the library reports what is wrong with it */
  }
  if (len > 0 && (unsigned char)p[0] == 0x30) return CLI_KEYFMT_DER;
  return CLI_KEYFMT_UNKNOWN;
}

static jwtkit_err import_as(cli_keyfmt fmt, jwtkit_alg alg, const char *text, size_t len, const char *pass,
                            jwtkit_key **out, jwtkit_errinfo *info) {
  memset(info, 0, sizeof *info);
  switch (fmt) {
    case CLI_KEYFMT_PEM:
      return jwtkit_key_from_pem(out, alg, text, len, pass, info);
    case CLI_KEYFMT_DER:
      return jwtkit_key_from_der(out, alg, (const unsigned char *)text, len, info);
    default:
      return jwtkit_key_from_jwk(out, alg, text, len, info);
  }
}

static int mismatch_class(jwtkit_err rc) { return rc == JWTKIT_ERR_INVALID_ARG || rc == JWTKIT_ERR_INVALID_KEY; }

static int report(const cli_args *a, const char *src, jwtkit_err rc, const jwtkit_errinfo *info, const char *hint) {
  char msg[300];
  return cli_fail(a, cli_exit_for(rc), "key %s: %s%s", src, cli_errtext(rc, info, msg, sizeof msg), hint);
}

int cli_key_import(const cli_args *a, const char *src, const char *text, size_t len, const char *passphrase,
                   const cli_algset *allowed, int strict, jwtkit_key **out) {
  *out = NULL;
  cli_keyfmt fmt = cli_key_format(text, len);
  if (fmt == CLI_KEYFMT_UNKNOWN) return cli_fail(a, CLI_USAGE, "key %s: not a key (expected PEM, DER or JWK)", src);
  if (fmt == CLI_KEYFMT_JWKS) return cli_fail(a, CLI_USAGE, "key %s: is a JWK Set; one key is expected here", src);
  jwtkit_errinfo info;
  jwtkit_key *key = NULL;
  jwtkit_err rc = import_as(fmt, JWTKIT_ALG_UNSPEC, text, len, passphrase, &key, &info);
  if (rc == JWTKIT_OK) {
    jwtkit_alg alg = jwtkit_key_alg(key);
    if (strict && allowed != NULL && allowed->n > 0 && !cli_algset_has(allowed, alg)) {
      jwtkit_key_free(key);
      return cli_fail(a, CLI_USAGE, "key %s is bound to %s, which --alg does not allow", src, jwtkit_alg_name(alg));
    }
    *out = key;
    return CLI_OK;
  }
  if (rc == JWTKIT_ERR_PASSPHRASE && passphrase == NULL)
    return report(a, src, rc, &info, " (use --passphrase-file or --passphrase-env)");
  if (!mismatch_class(rc)) return report(a, src, rc, &info, "");

  /* the key needs an explicit algorithm (RSA, oct without "alg", RSA DER):
   * it takes the one allowed algorithm it imports with */
  jwtkit_errinfo first = info, other;
  jwtkit_err other_rc = JWTKIT_OK;
  jwtkit_alg bound = JWTKIT_ALG_UNSPEC, also = JWTKIT_ALG_UNSPEC;
  size_t fits = 0;
  for (size_t i = 0; allowed != NULL && i < allowed->n; i++) {
    jwtkit_key *k = NULL;
    jwtkit_errinfo ti;
    jwtkit_err r = import_as(fmt, allowed->v[i], text, len, passphrase, &k, &ti);
    if (r == JWTKIT_OK) {
      if (fits++ == 0) {
        key = k;
        bound = allowed->v[i];
      } else {
        jwtkit_key_free(k);
        also = allowed->v[i];
      }
    } else if (!mismatch_class(r) && other_rc == JWTKIT_OK) {
      other_rc = r;
      other = ti;
    }
  }
  if (fits == 1) {
    *out = key;
    return CLI_OK;
  }
  if (fits > 1) {
    jwtkit_key_free(key);
    return cli_fail(a, CLI_USAGE, "key %s fits both %s and %s; give only one of them in --alg", src,
                    jwtkit_alg_name(bound), jwtkit_alg_name(also));
  }
  if (other_rc != JWTKIT_OK) return report(a, src, other_rc, &other, "");
  const char *hint = "";
  if (rc == JWTKIT_ERR_INVALID_ARG || strcmp(first.field, "alg") == 0)
    hint = allowed != NULL && allowed->n > 0 ? " (no algorithm of --alg fits it)" : " (give --alg)";
  return report(a, src, rc, &first, hint);
}

const char *cli_uri_shown(const char *uri, char *buf, size_t cap) {
  size_t n = strcspn(uri, "?");
  snprintf(buf, cap, "%.*s", (int)(n < cap ? n : cap - 1), uri);
  return buf;
}

int cli_key_load_pkcs11(const cli_args *a, const char *uri, const cli_algset *allowed, int strict, int sign,
                        jwtkit_key **out) {
  *out = NULL;
  char shown[512];
  cli_uri_shown(uri, shown, sizeof shown);
  /* signing: the one algorithm asked for (a second attempt would log in
   * again); the public half: the curve's, else the one RS* or PS* allowed */
  jwtkit_alg one = JWTKIT_ALG_UNSPEC, rsa = JWTKIT_ALG_UNSPEC;
  if (sign && allowed != NULL && allowed->n == 1) one = allowed->v[0];
  if (allowed != NULL && cli_algset_family(allowed, JWTKIT_KTY_RSA, &rsa) != 1) rsa = JWTKIT_ALG_UNSPEC;
  jwtkit_errinfo info = {0};
  jwtkit_err rc = sign ? jwtkit_key_from_pkcs11(out, one, uri, &info) : jwtkit_pkcs11_public_key(out, one, uri, &info);
  if (rc == JWTKIT_ERR_INVALID_ARG && one == JWTKIT_ALG_UNSPEC && rsa != JWTKIT_ALG_UNSPEC &&
      strcmp(info.field, "alg") == 0) {
    /* an RSA key takes the one RS* or PS* algorithm allowed */
    memset(&info, 0, sizeof info);
    rc = sign ? jwtkit_key_from_pkcs11(out, rsa, uri, &info) : jwtkit_pkcs11_public_key(out, rsa, uri, &info);
  }
  if (rc != JWTKIT_OK) {
    const char *hint = rc == JWTKIT_ERR_INVALID_ARG && strcmp(info.field, "alg") == 0 ? " (give --alg)" : "";
    return report(a, shown, rc, &info, hint);
  }
  jwtkit_alg alg = jwtkit_key_alg(*out);
  if (strict && allowed != NULL && allowed->n > 0 && !cli_algset_has(allowed, alg)) {
    jwtkit_key_free(*out);
    *out = NULL;
    return cli_fail(a, CLI_USAGE, "key %s is bound to %s, which --alg does not allow", shown, jwtkit_alg_name(alg));
  }
  return CLI_OK;
}

int cli_key_load(cli_args *a, const char *path, const char *passphrase, const cli_algset *allowed, int strict,
                 jwtkit_key **out) {
  cli_buf b;
  *out = NULL;
  if (jwtkit_is_pkcs11_uri(path)) return cli_key_load_pkcs11(a, path, allowed, strict, 0, out);
  int rc = cli_read_file(a, "key file", path, CLI_MAX_KEYFILE, 1, &b);
  if (rc != CLI_OK) return rc;
  rc = cli_key_import(a, strcmp(path, "-") == 0 ? "stdin" : path, b.p, b.len, passphrase, allowed, strict, out);
  if (rc == CLI_OK && jwtkit_key_can_sign(*out) && (rc = cli_check_secret_mode(a, path, &b)) != CLI_OK) {
    jwtkit_key_free(*out);
    *out = NULL;
  }
  cli_buf_free(&b);
  return rc;
}

int cli_secret_key(cli_args *a, const cli_buf *secret, jwtkit_alg alg, jwtkit_key **key) {
  /* the secret rule is the library's: one trailing newline is not part of
   * the secret, a key is never a secret (jwtkit_key_from_secret_text), and
   * a secret file gives group and others no access */
  jwtkit_errinfo info = {0};
  char msg[300];
  *key = NULL;
  jwtkit_err e = jwtkit_key_from_secret_text(key, alg, secret->p, secret->len, &info);
  if (e != JWTKIT_OK) return cli_fail(a, cli_exit_for(e), "secret: %s", cli_errtext(e, &info, msg, sizeof msg));
  int rc = cli_check_secret_mode(a, cli_opt_str(a, "secret-file"), secret);
  if (rc != CLI_OK) {
    jwtkit_key_free(*key);
    *key = NULL;
  }
  return rc;
}
