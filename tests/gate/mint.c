/*
 * gate_mint - sign test tokens with a key file (library-only).
 *
 *   gate_mint --alg ALG (--key PEMFILE | --secret-file FILE)
 *             [--kid KID | --kid-file FILE] [--iss S] [--sub S] [--aud S]...
 *             [--ttl SECONDS] [--exp T] [--iat T] [--nbf T] [--no-exp]
 *             [--typ T] [--claim NAME=JSON]... [--count N]
 *
 * Prints one token per line (--count N: N different tokens, each with its
 * own jti; "{n}" in --kid is replaced by the token's number).  Times are Unix seconds; --ttl may be negative (an expired
 * token: iat = now - 3600, exp = now + ttl).  --secret-file takes the raw
 * bytes as an HS* secret (so a public PEM can be used to forge the
 * algorithm-confusion token the gate must refuse).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jwtkit/jwtkit.h"

static void die(const char *a, const char *b) {
  fprintf(stderr, "gate_mint: %s%s%s\n", a, b ? ": " : "", b ? b : "");
  exit(2);
}

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) die("cannot open", path);
  char *buf = malloc(1 << 20);
  if (buf == NULL) die("out of memory", NULL);
  size_t n = fread(buf, 1, (1 << 20) - 1, f);
  fclose(f);
  buf[n] = '\0';
  *len = n;
  return buf;
}

int main(int argc, char **argv) {
  const char *alg_s = NULL, *keyf = NULL, *secf = NULL, *kid = NULL, *iss = NULL, *sub = NULL, *typ = NULL;
  const char *aud[16], *claims[32];
  size_t naud = 0, nclaims = 0;
  long long ttl = 300, exp = 0, iat = 0, nbf = 0;
  int have_exp = 0, have_iat = 0, have_nbf = 0, no_exp = 0;
  long count = 1;
  char kidbuf[256];
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--no-exp") == 0) {
      no_exp = 1;
      continue;
    }
    if (i + 1 >= argc) die("option needs a value", a);
    const char *v = argv[++i];
    if (strcmp(a, "--alg") == 0) alg_s = v;
    else if (strcmp(a, "--key") == 0) keyf = v;
    else if (strcmp(a, "--secret-file") == 0) secf = v;
    else if (strcmp(a, "--kid") == 0) kid = v;
    else if (strcmp(a, "--kid-file") == 0) {
      size_t n;
      char *t = slurp(v, &n);
      while (n > 0 && (t[n - 1] == '\n' || t[n - 1] == '\r')) t[--n] = '\0';
      snprintf(kidbuf, sizeof kidbuf, "%s", t);
      free(t);
      kid = kidbuf;
    } else if (strcmp(a, "--iss") == 0) iss = v;
    else if (strcmp(a, "--sub") == 0) sub = v;
    else if (strcmp(a, "--typ") == 0) typ = v;
    else if (strcmp(a, "--aud") == 0 && naud < 16) aud[naud++] = v;
    else if (strcmp(a, "--claim") == 0 && nclaims < 32) claims[nclaims++] = v;
    else if (strcmp(a, "--ttl") == 0) ttl = atoll(v);
    else if (strcmp(a, "--exp") == 0) exp = atoll(v), have_exp = 1;
    else if (strcmp(a, "--iat") == 0) iat = atoll(v), have_iat = 1;
    else if (strcmp(a, "--nbf") == 0) nbf = atoll(v), have_nbf = 1;
    else if (strcmp(a, "--count") == 0) count = atol(v);
    else die("unknown option", a);
  }
  if (alg_s == NULL || (keyf == NULL) == (secf == NULL)) die("usage: --alg ALG (--key FILE | --secret-file FILE) ...", NULL);
  jwtkit_alg alg = jwtkit_alg_from_name(alg_s, strlen(alg_s));
  if (alg == JWTKIT_ALG_UNSPEC) die("unknown algorithm", alg_s);
  jwtkit_key *key = NULL;
  jwtkit_errinfo info = {0};
  size_t len;
  char *text = slurp(keyf ? keyf : secf, &len);
  jwtkit_err e = keyf ? jwtkit_key_from_pem(&key, alg, text, len, NULL, &info)
                      : jwtkit_key_from_secret(&key, alg, text, len, &info);
  free(text);
  if (e != JWTKIT_OK) die("key", info.msg);
  const char *kid_n = kid ? strstr(kid, "{n}") : NULL;
  jwtkit_sign_opts opts = {.typ = typ, .kid = kid ? kid : ""};
  jwtkit_signer *s = NULL;
  if (jwtkit_signer_new(&s, key, &opts, &info) != JWTKIT_OK) die("signer", info.msg);
  long long now = (long long)time(NULL);
  for (long n = 0; n < count; n++) {
    if (kid_n != NULL) { /* a signer per token: the kid is in the protected header */
      char k[300];
      snprintf(k, sizeof k, "%.*s%ld%s", (int)(kid_n - kid), kid, n + 1, kid_n + 3);
      jwtkit_sign_opts o2 = {.typ = typ, .kid = k};
      jwtkit_signer_free(s);
      s = NULL;
      if (jwtkit_signer_new(&s, key, &o2, &info) != JWTKIT_OK) die("signer", info.msg);
    }
    jwtkit_claimset *cs = jwtkit_claimset_new();
    jwtkit_err ce = cs ? JWTKIT_OK : JWTKIT_ERR_NOMEM;
    if (ce == JWTKIT_OK && iss) ce = jwtkit_claimset_set_string(cs, "iss", iss);
    if (ce == JWTKIT_OK && sub) ce = jwtkit_claimset_set_string(cs, "sub", sub);
    for (size_t i = 0; ce == JWTKIT_OK && i < naud; i++) ce = jwtkit_claimset_add_audience(cs, aud[i]);
    if (ce == JWTKIT_OK) ce = jwtkit_claimset_set_int(cs, "iat", have_iat ? iat : ttl < 0 ? now - 3600 : now);
    if (ce == JWTKIT_OK && !no_exp) ce = jwtkit_claimset_set_int(cs, "exp", have_exp ? exp : now + ttl);
    if (ce == JWTKIT_OK && have_nbf) ce = jwtkit_claimset_set_int(cs, "nbf", nbf);
    if (ce == JWTKIT_OK && count > 1) ce = jwtkit_claimset_set_jti(cs);
    if (ce != JWTKIT_OK) die("claims", jwtkit_strerror(ce));
    for (size_t i = 0; i < nclaims; i++) {
      const char *eq = strchr(claims[i], '=');
      if (eq == NULL) die("--claim NAME=JSON", claims[i]);
      char name[128];
      snprintf(name, sizeof name, "%.*s", (int)(eq - claims[i]), claims[i]);
      if (jwtkit_claimset_set_json(cs, name, eq + 1, strlen(eq + 1)) != JWTKIT_OK) die("bad claim JSON", claims[i]);
    }
    char *tok;
    size_t tl;
    if (jwtkit_signer_sign_claimset(s, cs, &tok, &tl, &info) != JWTKIT_OK) die("sign", info.msg);
    printf("%s\n", tok);
    jwtkit_free(tok);
    jwtkit_claimset_free(cs);
  }
  jwtkit_signer_free(s);
  jwtkit_key_free(key);
  return 0;
}
