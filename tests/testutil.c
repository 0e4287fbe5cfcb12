#include "testutil.h"

#include <openssl/crypto.h>
#include <openssl/encoder.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "codec/b64url.h"
#include "crypto/key_internal.h"

const char *tu_vectors_dir(void) {
  const char *e = getenv("JWTKIT_VECTORS");
  return (e != NULL && e[0] != '\0') ? e : JWTKIT_VECTORS_DEFAULT;
}

int tu_ci(void) {
  const char *e = getenv("CI");
  return e != NULL && strcmp(e, "true") == 0;
}

const char *tu_jstr(const json_t *obj, const char *name) { return json_string_value(json_object_get(obj, name)); }

unsigned char *tu_b64url_dec(const char *s, size_t n, size_t *out_len) {
  unsigned char *buf = malloc(jk_b64url_dec_max(n) + 1);
  if (buf == NULL) return NULL;
  if (jk_b64url_decode(buf, out_len, s, n) != 0) {
    free(buf);
    return NULL;
  }
  return buf;
}

jwtkit_err tu_import_jwk(const json_t *jwk, jwtkit_alg alg, jwtkit_key **key, jwtkit_errinfo *info) {
  *key = NULL;
  char *text = json_dumps(jwk, JSON_COMPACT);
  if (text == NULL) return JWTKIT_ERR_NOMEM;
  jwtkit_err rc = jwtkit_key_from_jwk(key, alg, text, strlen(text), info);
  free(text);
  return rc;
}

char *tu_pkey_encode(tu_evp_pkey *pkey, int selection, const char *type, const char *structure, const char *pass,
                     size_t *len) {
  OSSL_ENCODER_CTX *ctx = OSSL_ENCODER_CTX_new_for_pkey(pkey, selection, type, structure, NULL);
  assert_non_null(ctx);
  if (pass != NULL) {
    assert_int_equal(OSSL_ENCODER_CTX_set_cipher(ctx, "AES-256-CBC", NULL), 1);
    assert_int_equal(OSSL_ENCODER_CTX_set_passphrase(ctx, (const unsigned char *)pass, strlen(pass)), 1);
  }
  unsigned char *data = NULL;
  size_t n = 0;
  assert_int_equal(OSSL_ENCODER_to_data(ctx, &data, &n), 1);
  OSSL_ENCODER_CTX_free(ctx);
  char *out = malloc(n + 1);
  assert_non_null(out);
  memcpy(out, data, n);
  out[n] = '\0';
  OPENSSL_free(data);
  if (len != NULL) *len = n;
  return out;
}

void tu_require_vectors(const char *sub, const char *label) {
  char path[4096];
  struct stat st;
  snprintf(path, sizeof path, "%s/%s", tu_vectors_dir(), sub);
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return;
  printf("%s vectors not found at %s (set JWTKIT_VECTORS to the vectors directory)\n", label, path);
  if (tu_ci()) fail_msg("vectors directory missing under CI: %s", path);
  skip();
}

json_t *tu_load_vectors_json(const char *sub, const char *name) {
  char path[4096];
  json_error_t err;
  snprintf(path, sizeof path, "%s/%s/%s", tu_vectors_dir(), sub, name);
  json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
  if (root == NULL) fail_msg("cannot load %s: %s (line %d)", path, err.text, err.line);
  return root;
}

char *tu_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return NULL;
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (n + 1 >= cap) {
      cap *= 2;
      buf = realloc(buf, cap);
    }
    size_t r = fread(buf + n, 1, cap - n - 1, f);
    if (r == 0) break;
    n += r;
  }
  fclose(f);
  buf[n] = '\0';
  if (len != NULL) *len = n;
  return buf;
}

unsigned char *tu_hex(const char *hex, size_t *len) {
  size_t n = strlen(hex) / 2;
  unsigned char *out = malloc(n + 1);
  for (size_t i = 0; i < n; i++) {
    unsigned v;
    sscanf(hex + 2 * i, "%2x", &v);
    out[i] = (unsigned char)v;
  }
  *len = n;
  return out;
}

char *tu_b64url(const unsigned char *in, size_t n) {
  char *out = malloc(jk_b64url_enc_len(n) + 1);
  size_t m = jk_b64url_encode(out, in, n);
  out[m] = '\0';
  return out;
}

char *tu_token(const char *header, const char *payload, const unsigned char *sig, size_t sig_len) {
  char *h = tu_b64url((const unsigned char *)header, strlen(header));
  char *p = tu_b64url((const unsigned char *)payload, strlen(payload));
  char *s = tu_b64url(sig, sig_len);
  size_t n = strlen(h) + strlen(p) + strlen(s) + 3;
  char *t = malloc(n);
  snprintf(t, n, "%s.%s.%s", h, p, s);
  free(h);
  free(p);
  free(s);
  return t;
}

char *tu_sign_raw(jwtkit_key *key, const char *header, const char *payload) {
  char *h = tu_b64url((const unsigned char *)header, strlen(header));
  char *p = tu_b64url((const unsigned char *)payload, strlen(payload));
  size_t n = strlen(h) + strlen(p) + 2;
  char *input = malloc(n);
  snprintf(input, n, "%s.%s", h, p);
  unsigned char sig[2048];
  size_t sl = 0;
  if (jk_sig_sign(key, (const unsigned char *)input, strlen(input), sig, sizeof sig, &sl) != JWTKIT_OK) sl = 0;
  char *s = tu_b64url(sig, sl);
  size_t tn = strlen(input) + strlen(s) + 2;
  char *t = malloc(tn);
  snprintf(t, tn, "%s.%s", input, s);
  free(h);
  free(p);
  free(s);
  free(input);
  return t;
}

static jwtkit_key *g_keys[JWTKIT_ALG_COUNT];

static void free_keys(void) {
  for (int i = 0; i < JWTKIT_ALG_COUNT; i++) jwtkit_key_free(g_keys[i]);
}

jwtkit_key *tu_key(jwtkit_alg alg) {
  static int registered;
  if (!registered) {
    atexit(free_keys);
    registered = 1;
  }
  if (g_keys[alg] == NULL) {
    jwtkit_errinfo ei;
    if (jwtkit_key_generate(&g_keys[alg], alg, 0, &ei) != JWTKIT_OK) {
      fprintf(stderr, "keygen %s: %s\n", jwtkit_alg_name(alg), ei.msg);
      abort();
    }
  }
  return g_keys[alg];
}

jwtkit_verifier *tu_verifier(jwtkit_key *key) {
  jwtkit_policy *p = jwtkit_policy_new();
  jwtkit_verifier *v = NULL;
  if (jwtkit_policy_allow_alg(p, jwtkit_key_alg(key)) != JWTKIT_OK || jwtkit_policy_add_key(p, key) != JWTKIT_OK ||
      jwtkit_policy_ignore_audience(p) != JWTKIT_OK || jwtkit_verifier_new(&v, p, NULL) != JWTKIT_OK)
    v = NULL;
  jwtkit_policy_free(p);
  return v;
}

void tu_rm_rf(const char *dir) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "cleanup of %s failed\n", dir);
}
