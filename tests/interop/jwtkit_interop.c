/*
 * jwtkit_interop - the jwtkit side of the cross-implementation interop
 * suite (tests/interop/run.sh).
 *
 *   jwtkit_interop keygen ALG DIR
 *       New key for ALG into DIR: priv.pem (PKCS#8, 0600) and pub.pem (SPKI),
 *       jwk.json (the public JWK with its kid; for HS* the oct JWK), jwks.json
 *       (a JWK Set with the key and a decoy of the same algorithm; empty for
 *       HS*, which jwtkit never publishes) and, for HS*, secret.bin.
 *   jwtkit_interop sign ALG DIR CLAIMS_JSON [KID]
 *       Print a token signed with DIR's private key (or secret).  The header
 *       carries the kid from jwk.json, or KID when given ("" for none).
 *   jwtkit_interop verify ALG DIR TOKEN [EXTRA_ALGS]
 *       Verify with DIR's public key (or secret) and its kid; the policy
 *       allows ALG plus the comma-separated EXTRA_ALGS, ignores audiences
 *       and keeps every other default (exp required, 60 s leeway).  Prints
 *       the claims JSON, or the error name (exit 1).
 *
 * ALG is a JWA name (HS256 ... ES512, EdDSA for Ed25519) or Ed448 (EdDSA
 * with an Ed448 key).  Exit status: 0 ok, 1 verification failed, 2 usage or
 * I/O error.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jwtkit/jwtkit.h"

static int usage(void) {
  fputs("usage: jwtkit_interop keygen ALG DIR\n"
        "       jwtkit_interop sign ALG DIR CLAIMS_JSON [KID]\n"
        "       jwtkit_interop verify ALG DIR TOKEN [EXTRA_ALGS]\n",
        stderr);
  return 2;
}

static int die(const char *what, jwtkit_err rc, const jwtkit_errinfo *info) {
  fprintf(stderr, "jwtkit_interop: %s: %s%s%s\n", what, jwtkit_errname(rc), info && info->msg[0] ? ": " : "",
          info ? info->msg : "");
  return 2;
}

/* ALG argument -> algorithm and key size (448 for Ed448). */
static jwtkit_alg parse_alg(const char *s, unsigned *bits) {
  *bits = 0;
  if (strcmp(s, "Ed448") == 0) {
    *bits = 448;
    return JWTKIT_ALG_EDDSA;
  }
  return jwtkit_alg_from_name(s, strlen(s));
}

static char *path_in(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = malloc(n);
  if (p != NULL) snprintf(p, n, "%s/%s", dir, name);
  return p;
}

static char *read_file(const char *dir, const char *name, size_t *len) {
  char *p = path_in(dir, name);
  FILE *f = p ? fopen(p, "rb") : NULL;
  if (f == NULL) {
    fprintf(stderr, "jwtkit_interop: cannot read %s/%s: %s\n", dir, name, strerror(errno));
    free(p);
    return NULL;
  }
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  while (buf != NULL) {
    n += fread(buf + n, 1, cap - n - 1, f);
    if (n < cap - 1) break;
    char *nb = realloc(buf, cap * 2);
    if (nb == NULL) {
      free(buf);
      buf = NULL;
      break;
    }
    buf = nb;
    cap *= 2;
  }
  fclose(f);
  free(p);
  if (buf != NULL) {
    buf[n] = '\0';
    if (len != NULL) *len = n;
  }
  return buf;
}

static int write_file(const char *dir, const char *name, const void *data, size_t len, mode_t mode) {
  char *p = path_in(dir, name);
  int fd = p ? open(p, O_WRONLY | O_CREAT | O_TRUNC, mode) : -1;
  int ok = fd >= 0 && write(fd, data, len) == (ssize_t)len;
  if (fd >= 0 && close(fd) != 0) ok = 0;
  if (!ok) fprintf(stderr, "jwtkit_interop: cannot write %s/%s: %s\n", dir, name, strerror(errno));
  free(p);
  return ok ? 0 : -1;
}

/* Strict base64url decoding of the "k" member text (no padding). */
static int b64url_decode(const char *in, size_t n, unsigned char *out, size_t *outlen) {
  static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  unsigned acc = 0;
  int bits = 0;
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    const char *c = memchr(alpha, in[i], 64);
    if (in[i] == '\0' || c == NULL) return -1;
    acc = (acc << 6) | (unsigned)(c - alpha);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (unsigned char)(acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  *outlen = o;
  return 0;
}

/* The raw secret of an HMAC key, via its private JWK. */
static int hmac_secret(const jwtkit_key *key, unsigned char *out, size_t *len) {
  char *jwk = NULL;
  size_t jl = 0;
  if (jwtkit_key_to_jwk(key, 1, &jwk, &jl) != JWTKIT_OK) return -1;
  const char *k = strstr(jwk, "\"k\":\"");
  const char *end = k ? strchr(k + 5, '"') : NULL;
  int rc = (k && end && (size_t)(end - k - 5) <= 4 * 64 / 3 + 2) ? b64url_decode(k + 5, (size_t)(end - k - 5), out, len) : -1;
  jwtkit_free(jwk);
  return rc;
}

static jwtkit_key *new_key(jwtkit_alg alg, unsigned bits, const char *kid_prefix) {
  jwtkit_key *k = NULL;
  jwtkit_errinfo info;
  jwtkit_err rc = jwtkit_key_generate(&k, alg, bits, &info);
  if (rc != JWTKIT_OK) {
    die("key generation", rc, &info);
    return NULL;
  }
  char tp[44], kid[80];
  if (jwtkit_key_thumbprint(k, tp) != JWTKIT_OK) {
    jwtkit_key_free(k);
    return NULL;
  }
  snprintf(kid, sizeof kid, "%s-%s-%.12s", kid_prefix, bits == 448 ? "Ed448" : jwtkit_alg_name(alg), tp);
  if (jwtkit_key_set_kid(k, kid, strlen(kid)) != JWTKIT_OK) {
    jwtkit_key_free(k);
    return NULL;
  }
  return k;
}

static int cmd_keygen(jwtkit_alg alg, unsigned bits, const char *dir) {
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
    fprintf(stderr, "jwtkit_interop: mkdir %s: %s\n", dir, strerror(errno));
    return 2;
  }
  jwtkit_key *k = new_key(alg, bits, "jwtkit");
  if (k == NULL) return 2;
  int bad = 0;
  char *text = NULL;
  size_t len = 0;
  jwtkit_jwks *set = jwtkit_jwks_new();
  if (jwtkit_alg_kty(alg) == JWTKIT_KTY_OCT) {
    unsigned char secret[128];
    size_t sl = 0;
    bad |= hmac_secret(k, secret, &sl) != 0 || write_file(dir, "secret.bin", secret, sl, 0600) != 0;
    bad |= jwtkit_key_to_jwk(k, 1, &text, &len) != JWTKIT_OK || write_file(dir, "jwk.json", text, len, 0600) != 0;
    jwtkit_free(text);
  } else {
    bad |= jwtkit_key_to_pem(k, 1, NULL, &text, &len) != JWTKIT_OK || write_file(dir, "priv.pem", text, len, 0600) != 0;
    jwtkit_free(text);
    bad |= jwtkit_key_to_pem(k, 0, NULL, &text, &len) != JWTKIT_OK || write_file(dir, "pub.pem", text, len, 0644) != 0;
    jwtkit_free(text);
    bad |= jwtkit_key_to_jwk(k, 0, &text, &len) != JWTKIT_OK || write_file(dir, "jwk.json", text, len, 0644) != 0;
    jwtkit_free(text);
    jwtkit_key *decoy = new_key(alg, bits, "decoy");
    bad |= decoy == NULL || set == NULL || jwtkit_jwks_add(set, decoy) != JWTKIT_OK || jwtkit_jwks_add(set, k) != JWTKIT_OK;
    jwtkit_key_free(decoy);
  }
  text = NULL;
  bad |= set == NULL || jwtkit_jwks_to_json(set, &text, &len) != JWTKIT_OK || write_file(dir, "jwks.json", text, len, 0644) != 0;
  jwtkit_free(text);
  jwtkit_jwks_free(set);
  jwtkit_key_free(k);
  if (bad) fprintf(stderr, "jwtkit_interop: keygen into %s failed\n", dir);
  return bad ? 2 : 0;
}

/* The kid recorded in DIR/jwk.json (NULL when none); caller frees. */
static char *dir_kid(const char *dir, jwtkit_alg alg) {
  size_t len = 0;
  char *json = read_file(dir, "jwk.json", &len);
  if (json == NULL) return NULL;
  jwtkit_key *k = NULL;
  char *kid = NULL;
  if (jwtkit_key_from_jwk(&k, alg, json, len, NULL) == JWTKIT_OK && jwtkit_key_kid(k) != NULL)
    kid = strdup(jwtkit_key_kid(k));
  jwtkit_key_free(k);
  free(json);
  return kid;
}

/* DIR's key: private (can sign) or public, bound to alg, with its kid. */
static jwtkit_key *load_key(jwtkit_alg alg, const char *dir, int priv) {
  jwtkit_key *k = NULL;
  jwtkit_errinfo info;
  jwtkit_err rc;
  size_t len = 0;
  if (jwtkit_alg_kty(alg) == JWTKIT_KTY_OCT) {
    char *secret = read_file(dir, "secret.bin", &len);
    if (secret == NULL) return NULL;
    rc = jwtkit_key_from_secret(&k, alg, secret, len, &info);
    free(secret);
  } else {
    char *pem = read_file(dir, priv ? "priv.pem" : "pub.pem", &len);
    if (pem == NULL) return NULL;
    rc = jwtkit_key_from_pem(&k, alg, pem, len, NULL, &info);
    free(pem);
  }
  if (rc != JWTKIT_OK) {
    die("loading the key", rc, &info);
    return NULL;
  }
  char *kid = dir_kid(dir, alg);
  if (kid != NULL) {
    rc = jwtkit_key_set_kid(k, kid, strlen(kid));
    free(kid);
    if (rc != JWTKIT_OK) {
      jwtkit_key_free(k);
      return NULL;
    }
  }
  return k;
}

static int cmd_sign(jwtkit_alg alg, const char *dir, const char *claims, const char *kid) {
  jwtkit_key *k = load_key(alg, dir, 1);
  if (k == NULL) return 2;
  jwtkit_sign_opts opts = {NULL, kid, NULL};
  char *tok = NULL;
  size_t tl = 0;
  jwtkit_errinfo info;
  jwtkit_err rc = jwtkit_sign(k, &opts, claims, strlen(claims), &tok, &tl, &info);
  jwtkit_key_free(k);
  if (rc != JWTKIT_OK) return die("sign", rc, &info);
  printf("%s\n", tok);
  jwtkit_free(tok);
  return 0;
}

static int cmd_verify(jwtkit_alg alg, const char *dir, const char *token, const char *extra) {
  jwtkit_key *k = load_key(alg, dir, 0);
  if (k == NULL) return 2;
  jwtkit_policy *p = jwtkit_policy_new();
  int bad = p == NULL || jwtkit_policy_allow_alg(p, alg) != JWTKIT_OK || jwtkit_policy_add_key(p, k) != JWTKIT_OK ||
            jwtkit_policy_ignore_audience(p) != JWTKIT_OK;
  jwtkit_key_free(k);
  for (const char *s = extra; !bad && s != NULL && *s != '\0';) {
    const char *comma = strchr(s, ',');
    size_t n = comma ? (size_t)(comma - s) : strlen(s);
    jwtkit_alg a = jwtkit_alg_from_name(s, n);
    if (a == JWTKIT_ALG_UNSPEC || jwtkit_policy_allow_alg(p, a) != JWTKIT_OK) {
      fprintf(stderr, "jwtkit_interop: unknown extra algorithm %.*s\n", (int)n, s);
      bad = 1;
    }
    s = comma ? comma + 1 : s + n;
  }
  jwtkit_verifier *v = NULL;
  jwtkit_errinfo info;
  jwtkit_err rc = bad ? JWTKIT_ERR_INVALID_ARG : jwtkit_verifier_new(&v, p, &info);
  jwtkit_policy_free(p);
  if (rc != JWTKIT_OK) return die("verifier", rc, bad ? NULL : &info);
  jwtkit_claims *c = NULL;
  rc = jwtkit_verify(v, token, strlen(token), &c, &info);
  jwtkit_verifier_free(v);
  if (rc != JWTKIT_OK) {
    printf("%s\n", jwtkit_errname(rc));
    fprintf(stderr, "jwtkit_interop: verify: %s%s%s\n", jwtkit_errname(rc), info.msg[0] ? ": " : "", info.msg);
    return 1;
  }
  size_t len = 0;
  const char *json = jwtkit_claims_json(c, &len);
  printf("%.*s\n", (int)len, json);
  jwtkit_claims_free(c);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 4) return usage();
  unsigned bits = 0;
  jwtkit_alg alg = parse_alg(argv[2], &bits);
  if (alg == JWTKIT_ALG_UNSPEC) {
    fprintf(stderr, "jwtkit_interop: unknown algorithm %s\n", argv[2]);
    return 2;
  }
  const char *dir = argv[3];
  if (strcmp(argv[1], "keygen") == 0 && argc == 4) return cmd_keygen(alg, bits, dir);
  if (strcmp(argv[1], "sign") == 0 && (argc == 5 || argc == 6)) return cmd_sign(alg, dir, argv[4], argc == 6 ? argv[5] : NULL);
  if (strcmp(argv[1], "verify") == 0 && (argc == 5 || argc == 6))
    return cmd_verify(alg, dir, argv[4], argc == 6 ? argv[5] : NULL);
  return usage();
}
