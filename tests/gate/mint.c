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
 * bytes as an HS* secret.  When the library refuses them because they are a
 * key (a public PEM), the token is made here with OpenSSL's HMAC instead:
 * the algorithm-confusion forgery the gate must refuse.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

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

/* header.payload.HMAC with the raw bytes as the HMAC key, outside the
 * library (which never takes a key as a secret). */
static void forge_hmac(jwtkit_alg alg, const char *secret, size_t slen, const char *kid, const char *typ,
                       const char *claims, size_t clen) {
  const EVP_MD *md = alg == JWTKIT_ALG_HS384 ? EVP_sha384() : alg == JWTKIT_ALG_HS512 ? EVP_sha512() : EVP_sha256();
  char hdr[512];
  snprintf(hdr, sizeof hdr, "{\"alg\":\"%s\",\"typ\":\"%s\"%s%s%s}", jwtkit_alg_name(alg), typ ? typ : "JWT",
           kid && *kid ? ",\"kid\":\"" : "", kid && *kid ? kid : "", kid && *kid ? "\"" : "");
  size_t hl = strlen(hdr);
  char *out = malloc(jwtkit_b64url_encoded_len(hl) + jwtkit_b64url_encoded_len(clen) + 200);
  if (out == NULL) die("out of memory", NULL);
  size_t o = jwtkit_b64url_encode(out, hdr, hl);
  out[o++] = '.';
  o += jwtkit_b64url_encode(out + o, claims, clen);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int ml = 0;
  if (HMAC(md, secret, (int)slen, (const unsigned char *)out, o, mac, &ml) == NULL) die("HMAC", NULL);
  out[o++] = '.';
  o += jwtkit_b64url_encode(out + o, mac, ml);
  out[o] = '\0';
  printf("%s\n", out);
  free(out);
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
  if (e == JWTKIT_ERR_INVALID_KEY && secf != NULL && count == 1) { /* a key as the secret: forge */
    long long t = (long long)time(NULL);
    char claims_json[2048];
    int cl = snprintf(claims_json, sizeof claims_json, "{%s%s%s%s%s%s\"iat\":%lld,\"exp\":%lld}", iss ? "\"iss\":\"" : "",
                      iss ? iss : "", iss ? "\"," : "", sub ? "\"sub\":\"" : "", sub ? sub : "", sub ? "\"," : "",
                      have_iat ? iat : t, have_exp ? exp : t + ttl);
    if (naud > 0) { /* one audience is enough for the forgeries the tests make */
      char with_aud[2300];
      cl = snprintf(with_aud, sizeof with_aud, "{\"aud\":\"%s\",%s", aud[0], claims_json + 1);
      memcpy(claims_json, with_aud, (size_t)cl + 1);
    }
    forge_hmac(alg, text, len, kid, typ, claims_json, (size_t)cl);
    free(text);
    return 0;
  }
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
