/* jwtkit keygen */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

/* A random kid for HMAC keys: their thumbprint hashes the secret, and a kid
 * is published in every token header. */
static int random_kid(char out[40]) {
  unsigned char r[12];
  if (jwtkit_random(r, sizeof r) != 0) return -1;
  strcpy(out, "hs-");
  for (size_t i = 0; i < sizeof r; i++) {
    static const char hex[] = "0123456789abcdef";
    out[3 + 2 * i] = hex[r[i] >> 4];
    out[4 + 2 * i] = hex[r[i] & 15];
  }
  out[3 + 2 * sizeof r] = '\0';
  return 0;
}

/* Wipe and release library output. */
static void free_lib_text(char *p, size_t len) {
  if (p != NULL) jwtkit_wipe(p, len);
  jwtkit_free(p);
}

/* A copy of p that ends with a newline (files end with one); wiped by
 * free_copy. */
static char *copy_nl(const char *p, size_t len, size_t *out_len) {
  int add = len == 0 || p[len - 1] != '\n';
  char *n = malloc(len + 2);
  if (n == NULL) return NULL;
  memcpy(n, p, len);
  if (add) n[len++] = '\n';
  n[len] = '\0';
  *out_len = len;
  return n;
}

static void free_copy(char *p, size_t len) {
  if (p != NULL) jwtkit_wipe(p, len);
  free(p);
}

/* --pkcs11 URI: generate inside the token; only the public key may be
 * written (--pub).  Options were checked by the caller. */
static int keygen_pkcs11(cli_args *a, const char *uri, jwtkit_alg alg, unsigned bits, const char *kid,
                         const char *pub, int jwk, int force) {
  char shown[512], msg[300];
  cli_uri_shown(uri, shown, sizeof shown);
  struct stat st;
  if (!force && pub != NULL && strcmp(pub, "-") != 0 && lstat(pub, &st) == 0)
    return cli_fail(a, CLI_USAGE, "%s exists (use --force to replace it)", pub);
  jwtkit_key *key = NULL;
  jwtkit_errinfo info = {0};
  jwtkit_err e = jwtkit_pkcs11_generate(&key, alg, bits, uri, &info);
  if (e != JWTKIT_OK)
    return cli_fail(a, cli_exit_for(e), "cannot generate the key in %s: %s", shown, cli_errtext(e, &info, msg, sizeof msg));
  int rc = CLI_OK;
  char *kuri = NULL, *pubtext = NULL, *pubnl = NULL;
  size_t ulen = 0, pub_len = 0, pubnl_len = 0;
  if (kid != NULL && (e = jwtkit_key_set_kid(key, kid, strlen(kid))) != JWTKIT_OK)
    rc = cli_fail(a, CLI_USAGE, "bad --kid: %s", jwtkit_strerror(e));
  if (rc == CLI_OK && (e = jwtkit_pkcs11_key_uri(key, &kuri, &ulen)) != JWTKIT_OK)
    rc = cli_fail(a, CLI_INTERNAL, "cannot name the key: %s", jwtkit_strerror(e));
  if (rc == CLI_OK && pub != NULL) {
    e = jwk ? jwtkit_key_to_jwk(key, 0, &pubtext, &pub_len) : jwtkit_key_to_pem(key, 0, NULL, &pubtext, &pub_len);
    if (e != JWTKIT_OK)
      rc = cli_fail(a, CLI_INTERNAL, "cannot export the public key: %s", jwtkit_strerror(e));
    else if ((pubnl = copy_nl(pubtext, pub_len, &pubnl_len)) == NULL)
      rc = cli_fail(a, CLI_INTERNAL, "out of memory");
    else
      rc = cli_write_atomic(a, pub, pubnl, pubnl_len, 0644, force);
  }
  if (rc == CLI_OK) {
    fprintf(stderr, "kid: %s\n", jwtkit_key_kid(key));
    fprintf(stderr, "private key: %s (%s, in the token: sensitive, not extractable)\n", kuri, jwtkit_alg_name(alg));
    if (pub != NULL) fprintf(stderr, "public key: %s\n", strcmp(pub, "-") == 0 ? "stdout" : pub);
  } else {
    fprintf(stderr, "jwtkit: keygen: note: the key pair stays in the token: %s\n", kuri ? kuri : shown);
  }
  free(pubnl);
  jwtkit_free(pubtext);
  jwtkit_free(kuri);
  jwtkit_key_free(key);
  return rc;
}

int cli_cmd_keygen(cli_args *a) {
  const char *alg_s = cli_opt_str(a, "alg"), *out = cli_opt_str(a, "out"), *pub = cli_opt_str(a, "pub");
  const char *fmt = cli_opt_str(a, "format"), *bits_s = cli_opt_str(a, "bits"), *kid = cli_opt_str(a, "kid");
  const char *p11 = cli_opt_str(a, "pkcs11");
  int force = cli_opt_flag(a, "force");
  if (alg_s == NULL) return cli_usage(a, "--alg is required");
  if (p11 != NULL && out != NULL)
    return cli_usage(a, "--out and --pkcs11 exclude each other: a token key never leaves the token (--pub writes "
                        "its public half)");
  if (out == NULL && p11 == NULL) return cli_usage(a, "--out is required (a key file), or --pkcs11 URI (a key in a token)");
  jwtkit_alg alg;
  int rc = cli_alg_parse(a, alg_s, &alg);
  if (rc != CLI_OK) return rc;
  jwtkit_kty kty = jwtkit_alg_kty(alg);
  int oct = kty == JWTKIT_KTY_OCT;
  if (p11 != NULL) {
    if (!jwtkit_is_pkcs11_uri(p11)) return cli_usage(a, "--pkcs11 wants a pkcs11: URI (pkcs11:token=T;object=NAME)");
    if (oct) return cli_usage(a, "%s keys are secrets: a token key is RS*, PS*, ES* or EdDSA", alg_s);
    if (cli_opt_str(a, "passphrase-file") != NULL || cli_opt_str(a, "passphrase-env") != NULL)
      return cli_usage(a, "a passphrase encrypts key files; a token key is protected by the token's PIN");
  }
  if (fmt == NULL) fmt = oct ? "jwk" : "pem";
  int pem = strcmp(fmt, "pem") == 0, jwk = strcmp(fmt, "jwk") == 0, raw = strcmp(fmt, "raw") == 0;
  if (!pem && !jwk && !raw) return cli_usage(a, "--format must be pem, jwk or raw");
  if (oct && pem) return cli_usage(a, "HS* keys have no PEM form; use --format jwk or --format raw");
  if (!oct && raw) return cli_usage(a, "--format raw is only for HS* secrets");
  if (oct && pub != NULL)
    return cli_usage(a, "--pub is invalid for %s: an HMAC key is a secret and has no public part", alg_s);
  if (pub != NULL && out != NULL && strcmp(pub, out) == 0) return cli_usage(a, "--out and --pub name the same file");
  unsigned bits = 0;
  if (bits_s != NULL) {
    if (kty != JWTKIT_KTY_RSA && kty != JWTKIT_KTY_OKP)
      return cli_usage(a, "--bits applies to RS*/PS* (2048..16384) and EdDSA (255 or 448) only");
    char *end;
    unsigned long v = strtoul(bits_s, &end, 10);
    if (*bits_s < '0' || *bits_s > '9' || *end != '\0' || v > 16384) return cli_usage(a, "bad --bits value \"%s\"", bits_s);
    bits = (unsigned)v;
  }
  if (kid != NULL && (kid[0] == '\0' || strlen(kid) > 255)) return cli_usage(a, "--kid must be 1..255 bytes");
  if (raw && kid != NULL) return cli_usage(a, "--format raw stores no kid; use --format jwk to keep one");
  if (p11 != NULL) return keygen_pkcs11(a, p11, alg, bits, kid, pub, jwk, force);

  cli_buf pass;
  if ((rc = cli_read_passphrase(a, &pass)) != CLI_OK) return rc;
  if (pass.p != NULL && !pem) {
    cli_buf_free(&pass);
    return cli_usage(a, "a passphrase only encrypts PEM output (--format pem)");
  }
  /* fail before the (slow) generation when the files cannot be written */
  struct stat st;
  if (!force && strcmp(out, "-") != 0 && lstat(out, &st) == 0)
    rc = cli_fail(a, CLI_USAGE, "%s exists (use --force to replace it)", out);
  else if (!force && pub != NULL && strcmp(pub, "-") != 0 && lstat(pub, &st) == 0)
    rc = cli_fail(a, CLI_USAGE, "%s exists (use --force to replace it)", pub);
  else
    rc = cli_git_guard_private(a, out, force);
  if (rc != CLI_OK) {
    cli_buf_free(&pass);
    return rc;
  }

  jwtkit_key *key = NULL;
  jwtkit_errinfo info = {0};
  char msg[300];
  char *priv = NULL, *pubtext = NULL, *privnl = NULL, *pubnl = NULL;
  size_t priv_len = 0, pub_len = 0, privnl_len = 0, pubnl_len = 0;
  unsigned char secret[96]; /* --format raw: base64url of up to 64 bytes and a newline */
  size_t secret_len = 0;
  jwtkit_err e;
  if (raw) {
    /* a secret file as jwtkit serve, jwtkit gate and `sign --secret-file`
     * read it (the secret rule): a line of base64url text for 32/48/64
     * random bytes, the newline not part of the secret; text, so it never
     * ends in a byte the rule would drop */
    unsigned char rnd[64];
    size_t rl = alg == JWTKIT_ALG_HS256 ? 32 : alg == JWTKIT_ALG_HS384 ? 48 : 64;
    if (jwtkit_random(rnd, rl) != 0) {
      rc = cli_fail(a, CLI_INTERNAL, "the random generator failed");
      goto done;
    }
    secret_len = jwtkit_b64url_encode((char *)secret, rnd, rl);
    jwtkit_wipe(rnd, sizeof rnd);
    e = jwtkit_key_from_secret(&key, alg, secret, secret_len, &info);
    secret[secret_len++] = '\n';
  } else {
    e = jwtkit_key_generate(&key, alg, bits, &info);
  }
  if (e != JWTKIT_OK) {
    rc = cli_fail(a, e == JWTKIT_ERR_INVALID_ARG ? CLI_USAGE : CLI_INTERNAL, "cannot generate the key: %s",
                  cli_errtext(e, &info, msg, sizeof msg));
    goto done;
  }
  char kidbuf[96];
  if (!raw) {
    if (kid == NULL) {
      if (oct ? random_kid(kidbuf) != 0 : jwtkit_key_thumbprint(key, kidbuf) != JWTKIT_OK) {
        rc = cli_fail(a, CLI_INTERNAL, "cannot compute the kid");
        goto done;
      }
      kid = kidbuf;
    }
    if ((e = jwtkit_key_set_kid(key, kid, strlen(kid))) != JWTKIT_OK) {
      rc = cli_fail(a, CLI_USAGE, "bad --kid: %s", jwtkit_strerror(e));
      goto done;
    }
  }
  if (raw) {
    e = JWTKIT_OK;
  } else if (pem) {
    e = jwtkit_key_to_pem(key, 1, pass.p, &priv, &priv_len);
    if (e == JWTKIT_OK && pub != NULL) e = jwtkit_key_to_pem(key, 0, NULL, &pubtext, &pub_len);
  } else {
    e = jwtkit_key_to_jwk(key, 1, &priv, &priv_len);
    if (e == JWTKIT_OK && pub != NULL) e = jwtkit_key_to_jwk(key, 0, &pubtext, &pub_len);
  }
  if (e != JWTKIT_OK) {
    rc = cli_fail(a, CLI_INTERNAL, "cannot export the key: %s", jwtkit_strerror(e));
    goto done;
  }
  if (!raw && ((privnl = copy_nl(priv, priv_len, &privnl_len)) == NULL ||
               (pubtext != NULL && (pubnl = copy_nl(pubtext, pub_len, &pubnl_len)) == NULL))) {
    rc = cli_fail(a, CLI_INTERNAL, "out of memory");
    goto done;
  }
  rc = raw ? cli_write_atomic(a, out, secret, secret_len, 0600, force)
           : cli_write_atomic(a, out, privnl, privnl_len, 0600, force);
  if (rc == CLI_OK && pub != NULL) rc = cli_write_atomic(a, pub, pubnl, pubnl_len, 0644, force);
  if (rc == CLI_OK) {
    if (!raw) fprintf(stderr, "kid: %s\n", kid);
    fprintf(stderr, "private key: %s (%s %s%s)\n", strcmp(out, "-") == 0 ? "stdout" : out, alg_s,
            raw ? "raw secret" : pem ? "PEM PKCS#8" : "JWK", pass.p != NULL ? ", encrypted" : "");
    if (pub != NULL) fprintf(stderr, "public key: %s\n", strcmp(pub, "-") == 0 ? "stdout" : pub);
  }
done:
  jwtkit_wipe(secret, sizeof secret);
  free_copy(privnl, privnl_len);
  free_lib_text(priv, priv_len);
  free(pubnl);
  jwtkit_free(pubtext);
  jwtkit_key_free(key);
  cli_buf_free(&pass);
  return rc;
}
