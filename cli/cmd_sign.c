/* jwtkit sign */
#include <string.h>
#include <time.h>

#include "cli.h"

#define DEFAULT_TTL 900 /* 15m */

static int claims_error(const cli_args *a, const char *what, jwtkit_err e) {
  if (e == JWTKIT_ERR_NOMEM) return cli_fail(a, CLI_INTERNAL, "out of memory");
  if (e == JWTKIT_ERR_TOO_LARGE)
    return cli_fail(a, CLI_USAGE, "%s: too many members or nested too deeply", what);
  return cli_fail(a, CLI_USAGE, "%s: not a strict JSON object (RFC 8259, UTF-8, no duplicate names)", what);
}

static int set_string(const cli_args *a, jwtkit_claimset *cs, const char *name, const char *value) {
  jwtkit_err e = jwtkit_claimset_set_string(cs, name, value);
  if (e == JWTKIT_OK) return CLI_OK;
  if (e == JWTKIT_ERR_NOMEM) return cli_fail(a, CLI_INTERNAL, "out of memory");
  return cli_usage(a, "--%s must be UTF-8 text", name);
}

/* --header NAME=VALUE...: one JSON object for jwtkit_sign_opts.extra_header. */
static int build_header(const cli_args *a, char **out) {
  size_t n;
  const char *const *v = cli_opt_all(a, "header", &n);
  *out = NULL;
  if (n == 0) return CLI_OK;
  jwtkit_claimset *h = jwtkit_claimset_new();
  if (h == NULL) return cli_fail(a, CLI_INTERNAL, "out of memory");
  int rc = CLI_OK;
  for (size_t i = 0; i < n && rc == CLI_OK; i++) {
    const char *eq = strchr(v[i], '=');
    if (eq == NULL || eq == v[i]) {
      rc = cli_usage(a, "--header wants NAME=VALUE, got \"%s\"", v[i]);
      break;
    }
    char name[256];
    size_t nl = (size_t)(eq - v[i]);
    if (nl >= sizeof name) {
      rc = cli_usage(a, "--header name too long");
      break;
    }
    memcpy(name, v[i], nl);
    name[nl] = '\0';
    const char *val = eq + 1;
    jwtkit_err e = cli_json_check_value(val, strlen(val)) == JWTKIT_OK
                       ? jwtkit_claimset_set_json(h, name, val, strlen(val))
                       : jwtkit_claimset_set_string(h, name, val);
    if (e == JWTKIT_ERR_NOMEM)
      rc = cli_fail(a, CLI_INTERNAL, "out of memory");
    else if (e != JWTKIT_OK)
      rc = cli_usage(a, "--header \"%s\": name and value must be UTF-8 text", v[i]);
  }
  size_t len;
  if (rc == CLI_OK && jwtkit_claimset_to_json(h, out, &len) != JWTKIT_OK) rc = cli_fail(a, CLI_INTERNAL, "out of memory");
  jwtkit_claimset_free(h);
  return rc;
}

/* --keyring: the keyring's active key for alg, now (a token for tests:
 * the other options may make it expired, not yet valid or for another
 * audience). */
static int keyring_key(cli_args *a, const char *where, jwtkit_alg alg, jwtkit_key **key) {
  cli_buf pass = {0};
  unsigned char(*keks)[32] = NULL;
  size_t nkeks = 0;
  int rc = cli_read_passphrase(a, &pass);
  if (rc == CLI_OK && jwtkit_keyring_location_is_postgres(where)) rc = cli_read_keks(a, &keks, &nkeks);
  jwtkit_keyring *kr = NULL;
  jwtkit_errinfo ei = {0};
  char msg[300];
  if (rc == CLI_OK) {
    jwtkit_keyring_secrets sec = {.passphrase = pass.p, .keks = (const unsigned char(*)[32])keks, .nkeks = nkeks};
    jwtkit_err e = jwtkit_keyring_open_ex(&kr, where, &sec, &ei);
    if (e != JWTKIT_OK) rc = cli_fail(a, cli_exit_for(e), "keyring: %s", cli_errtext(e, &ei, msg, sizeof msg));
  }
  if (rc == CLI_OK) {
    jwtkit_key *k = NULL;
    jwtkit_err e = jwtkit_keyring_signing_key(kr, alg, (int64_t)time(NULL), &k, NULL);
    if (e != JWTKIT_OK)
      rc = cli_fail(a, CLI_USAGE, "the keyring has no active %s key now (%s); see `jwtkit keyring plan`", jwtkit_alg_name(alg),
                    jwtkit_strerror(e));
    else
      *key = jwtkit_key_ref(k); /* outlives the keyring handle */
  }
  jwtkit_keyring_free(kr);
  jwtkit_kek_free(keks, nkeks);
  cli_buf_free(&pass);
  return rc;
}

static int load_signing_key(cli_args *a, jwtkit_alg alg, jwtkit_key **key) {
  const char *path = cli_opt_str(a, "key"), *ring = cli_opt_str(a, "keyring");
  cli_buf secret;
  int have_secret = 0;
  int rc = cli_read_secret(a, &secret, &have_secret);
  if (rc != CLI_OK) return rc;
  if ((path != NULL) + (ring != NULL) + have_secret != 1) {
    cli_buf_free(&secret);
    return cli_usage(a, "give exactly one of --key, --keyring, --secret-file, --secret-env");
  }
  if (ring != NULL) return keyring_key(a, ring, alg, key);
  if (have_secret) {
    if (jwtkit_alg_kty(alg) != JWTKIT_KTY_OCT) {
      cli_buf_free(&secret);
      return cli_usage(a, "a secret signs HS256, HS384 or HS512 only, not %s", jwtkit_alg_name(alg));
    }
    rc = cli_secret_key(a, &secret, alg, key);
    cli_buf_free(&secret);
    return rc;
  }
  cli_algset only = {{alg}, 1};
  if (jwtkit_is_pkcs11_uri(path)) {
    /* the key stays in the token; its PIN comes from the URI's pin-source= or $JWTKIT_PKCS11_PIN */
    if (cli_opt_str(a, "passphrase-file") != NULL || cli_opt_str(a, "passphrase-env") != NULL)
      return cli_usage(a, "a passphrase decrypts PEM files; a token key needs its PIN (pin-source= in the URI or "
                          "JWTKIT_PKCS11_PIN)");
    if (jwtkit_alg_kty(alg) == JWTKIT_KTY_OCT)
      return cli_usage(a, "%s signs with a secret; a token key signs RS*, PS*, ES* or EdDSA", jwtkit_alg_name(alg));
    rc = cli_key_load_pkcs11(a, path, &only, 1, 1, key);
  } else {
    cli_buf pass;
    if ((rc = cli_read_passphrase(a, &pass)) != CLI_OK) return rc;
    rc = cli_key_load(a, path, pass.p, &only, 1, key);
    cli_buf_free(&pass);
  }
  if (rc != CLI_OK) return rc;
  if (!jwtkit_key_can_sign(*key)) {
    jwtkit_key_free(*key);
    *key = NULL;
    return cli_fail(a, CLI_USAGE, "key %s is a public key; signing needs the private key", path);
  }
  /* tokens name their key: keys without kid sign with their thumbprint
   * (never for secrets, whose thumbprint hashes the secret) */
  if (jwtkit_key_kid(*key) == NULL && jwtkit_key_kty(*key) != JWTKIT_KTY_OCT) {
    char tp[44];
    if (jwtkit_key_thumbprint(*key, tp) != JWTKIT_OK || jwtkit_key_set_kid(*key, tp, strlen(tp)) != JWTKIT_OK) {
      jwtkit_key_free(*key);
      *key = NULL;
      return cli_fail(a, CLI_INTERNAL, "cannot compute the key's thumbprint");
    }
  }
  return CLI_OK;
}

int cli_cmd_sign(cli_args *a) {
  const char *alg_s = cli_opt_str(a, "alg");
  if (alg_s == NULL) return cli_usage(a, "--alg is required");
  jwtkit_alg alg;
  int rc = cli_alg_parse(a, alg_s, &alg);
  if (rc != CLI_OK) return rc;

  int64_t now = (int64_t)time(NULL), ttl = DEFAULT_TTL, nbf = 0;
  const char *s;
  if ((rc = cli_opt_time(a, "at", &now)) != CLI_OK || (rc = cli_opt_duration(a, "ttl", 1, &ttl)) != CLI_OK ||
      (rc = cli_opt_time(a, "nbf", &nbf)) != CLI_OK)
    return rc;
  const char *nbf_s = cli_opt_str(a, "nbf");

  jwtkit_claimset *cs = NULL;
  jwtkit_key *key = NULL;
  jwtkit_signer *signer = NULL;
  char *extra = NULL, *token = NULL;
  cli_buf claims = {0};
  jwtkit_err e;
  jwtkit_errinfo info = {0};
  char msg[300];

  if ((rc = build_header(a, &extra)) != CLI_OK) goto done;
  if ((cs = jwtkit_claimset_new()) == NULL) {
    rc = cli_fail(a, CLI_INTERNAL, "out of memory");
    goto done;
  }
  if ((s = cli_opt_str(a, "claims")) != NULL) {
    if ((rc = cli_read_arg(a, "--claims", s, CLI_MAX_CLAIMS, &claims)) != CLI_OK) goto done;
    if ((e = jwtkit_claimset_merge_json(cs, claims.p, claims.len)) != JWTKIT_OK) {
      rc = claims_error(a, "--claims", e);
      goto done;
    }
  }
  if ((s = cli_opt_str(a, "iss")) != NULL && (rc = set_string(a, cs, "iss", s)) != CLI_OK) goto done;
  if ((s = cli_opt_str(a, "sub")) != NULL && (rc = set_string(a, cs, "sub", s)) != CLI_OK) goto done;
  size_t naud;
  const char *const *aud = cli_opt_all(a, "aud", &naud);
  for (size_t i = 0; i < naud; i++) {
    if ((e = jwtkit_claimset_add_audience(cs, aud[i])) != JWTKIT_OK) {
      rc = e == JWTKIT_ERR_NOMEM ? cli_fail(a, CLI_INTERNAL, "out of memory") : cli_usage(a, "--aud must be UTF-8 text");
      goto done;
    }
  }
  if (now > INT64_MAX - ttl) {
    rc = cli_usage(a, "--ttl too large");
    goto done;
  }
  e = cli_opt_flag(a, "no-iat") ? jwtkit_claimset_set_int(cs, "exp", now + ttl) : jwtkit_claimset_set_lifetime(cs, now, ttl);
  if (e == JWTKIT_OK && nbf_s != NULL) e = jwtkit_claimset_set_int(cs, "nbf", nbf);
  if (e == JWTKIT_OK && cli_opt_flag(a, "jti")) e = jwtkit_claimset_set_jti(cs);
  if (e != JWTKIT_OK) {
    rc = cli_fail(a, CLI_INTERNAL, "cannot build the claims: %s", jwtkit_strerror(e));
    goto done;
  }

  if ((rc = load_signing_key(a, alg, &key)) != CLI_OK) goto done;
  jwtkit_sign_opts opts = {cli_opt_str(a, "typ"), cli_opt_str(a, "kid"), extra};
  if ((e = jwtkit_signer_new(&signer, key, &opts, &info)) != JWTKIT_OK) {
    rc = cli_fail(a, cli_exit_for(e), "%s", cli_errtext(e, &info, msg, sizeof msg));
    goto done;
  }
  size_t tl = 0;
  memset(&info, 0, sizeof info);
  if ((e = jwtkit_signer_sign_claimset(signer, cs, &token, &tl, &info)) != JWTKIT_OK) {
    rc = cli_fail(a, cli_exit_for(e), "%s", cli_errtext(e, &info, msg, sizeof msg));
    goto done;
  }
  if ((rc = cli_write_stdout(a, token, tl)) == CLI_OK) rc = cli_write_stdout(a, "\n", 1);
done:
  jwtkit_free(token);
  jwtkit_signer_free(signer);
  jwtkit_key_free(key);
  jwtkit_claimset_free(cs);
  jwtkit_free(extra);
  cli_buf_free(&claims);
  return rc;
}
