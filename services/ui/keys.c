/*
 * Keys pasted into the page, through the library's constructors only:
 * jwtkit_key_from_pem, jwtkit_key_from_jwk, jwtkit_jwks_parse and the
 * secret rule (jwtkit_key_from_secret_text).  A key that names no
 * algorithm (an RSA PEM, an RSA or oct JWK without "alg") serves the one
 * pinned algorithm of its family; with several pinned the page is told to
 * choose, never guessed for.
 */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "ui_internal.h"

void ui_keyset_free(ui_keyset *s) {
  for (size_t i = 0; i < s->n; i++) jwtkit_key_free(s->v[i]);
  s->n = 0;
}

static void trim(const char **p, size_t *n) {
  while (*n > 0 && (**p == ' ' || **p == '\t' || **p == '\r' || **p == '\n')) (*p)++, (*n)--;
  while (*n > 0 && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t' || (*p)[*n - 1] == '\r' || (*p)[*n - 1] == '\n'))
    (*n)--;
}

static int is_pem(const char *p, size_t n) { return n >= 10 && memcmp(p, "-----BEGIN", 10) == 0; }

/* The pinned algorithms of a family: how many, and the first. */
static size_t of_family(const jwtkit_alg *algs, size_t n, jwtkit_kty kty, jwtkit_alg *one) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (jwtkit_alg_kty(algs[i]) == kty && k++ == 0) *one = algs[i];
  return k;
}

static int pinned(const jwtkit_alg *algs, size_t n, jwtkit_alg a) {
  for (size_t i = 0; i < n; i++)
    if (algs[i] == a) return 1;
  return 0;
}

static jwtkit_err import(const char *text, size_t len, jwtkit_alg alg, jwtkit_key **k, jwtkit_errinfo *info) {
  memset(info, 0, sizeof *info);
  return is_pem(text, len) ? jwtkit_key_from_pem(k, alg, text, len, NULL, info)
                           : jwtkit_key_from_jwk(k, alg, text, len, info);
}

/* One PEM or JWK key for a verifier. */
static int trust_one(ui_call *c, const char *field, const char *text, size_t len, const jwtkit_alg *algs, size_t n,
                     ui_keyset *s) {
  jwtkit_key *k = NULL;
  jwtkit_errinfo info;
  jwtkit_err rc = import(text, len, JWTKIT_ALG_UNSPEC, &k, &info);
  if (rc != JWTKIT_OK && strcmp(info.field, "alg") == 0) {
    /* the library says the key needs an algorithm: RSA (INVALID_ARG) or a
     * secret (an oct JWK) */
    jwtkit_kty kty = rc == JWTKIT_ERR_INVALID_ARG ? JWTKIT_KTY_RSA : JWTKIT_KTY_OCT;
    const char *fam = kty == JWTKIT_KTY_RSA ? "RS256, RS384, RS512, PS256, PS384 or PS512" : "HS256, HS384 or HS512";
    jwtkit_alg one = JWTKIT_ALG_UNSPEC;
    size_t k_fam = of_family(algs, n, kty, &one);
    if (k_fam == 0)
      return ui_fail(c, 422, field, "the key names no algorithm and none of its family is pinned: pin one of %s",
                     fam);
    if (k_fam > 1)
      return ui_fail(c, 422, field,
                     "the key names no algorithm and several of its family are pinned: a key serves one algorithm, "
                     "so pin only one of %s (or paste a JWK with \"alg\")",
                     fam);
    rc = import(text, len, one, &k, &info);
  }
  if (rc != JWTKIT_OK) return ui_fail_lib(c, field, "the key", rc, &info);
  if (!pinned(algs, n, jwtkit_key_alg(k))) {
    jwtkit_alg a = jwtkit_key_alg(k);
    jwtkit_key_free(k);
    return ui_fail(c, 422, field, "the key is bound to %s, which is not among the pinned algorithms",
                   jwtkit_alg_name(a));
  }
  if (s->n >= UI_MAX_KEYS) {
    jwtkit_key_free(k);
    return ui_fail(c, 422, field, "more than %u keys", UI_MAX_KEYS);
  }
  s->v[s->n++] = k;
  return 0;
}

typedef struct skip_ctx {
  jk_buf *notes;
} skip_ctx;

static void on_skip(void *ctx, size_t index, const jwtkit_errinfo *why) {
  skip_ctx *x = ctx;
  char msg[320];
  snprintf(msg, sizeof msg, "key %zu of the JWK Set skipped: %s", index, why->msg);
  jk_buf_putc(x->notes, ',');
  jk_buf_json_str_lossy(x->notes, msg, strlen(msg));
}

int ui_keys_trust(ui_call *c, const char *field, const char *text, size_t len, const jwtkit_alg *algs, size_t n,
                  ui_keyset *s, jk_buf *notes) {
  trim(&text, &len);
  if (len == 0) return 0;
  if (is_pem(text, len)) return trust_one(c, field, text, len, algs, n, s);
  if (text[0] != '{') return ui_fail(c, 422, field, "not a key: paste a PEM key, a JWK or a JWK Set");
  jk_jdoc d;
  jwtkit_errinfo info = {0};
  jwtkit_err rc = jk_json_parse_alloc(&d, text, len, 1, &info);
  if (rc != JWTKIT_OK) return ui_fail_lib(c, field, "the key", rc, &info);
  int is_set = jk_json_get(&d, 0, "keys", 4) >= 0;
  jk_free(d.nodes);
  if (!is_set) return trust_one(c, field, text, len, algs, n, s);

  jwtkit_alg rsa = JWTKIT_ALG_UNSPEC;
  if (of_family(algs, n, JWTKIT_KTY_RSA, &rsa) != 1) rsa = JWTKIT_ALG_UNSPEC; /* RS* or PS*: not guessed */
  skip_ctx x = {notes};
  jwtkit_jwks *set = NULL;
  rc = jwtkit_jwks_parse(&set, text, len, rsa, on_skip, &x, &info);
  if (rc != JWTKIT_OK) return ui_fail_lib(c, field, "the key", rc, &info);
  for (size_t i = 0; i < jwtkit_jwks_count(set); i++) {
    jwtkit_key *k = jwtkit_jwks_get(set, i);
    if (!pinned(algs, n, jwtkit_key_alg(k))) {
      char msg[400];
      snprintf(msg, sizeof msg, "key %s (%s) of the JWK Set not used: its algorithm is not pinned",
               jwtkit_key_kid(k) ? jwtkit_key_kid(k) : "without kid", jwtkit_alg_name(jwtkit_key_alg(k)));
      jk_buf_putc(notes, ',');
      jk_buf_json_str_lossy(notes, msg, strlen(msg));
      continue;
    }
    if (s->n >= UI_MAX_KEYS) break;
    s->v[s->n++] = jwtkit_key_ref(k);
  }
  jwtkit_jwks_free(set);
  return 0;
}

int ui_key_for(ui_call *c, const char *field, const char *text, size_t len, jwtkit_alg alg, int want_private,
               jwtkit_key **out) {
  *out = NULL;
  trim(&text, &len);
  if (len == 0) return ui_fail(c, 400, field, "paste a key, or leave the field empty to generate one");
  jwtkit_errinfo info = {0};
  jwtkit_err rc;
  if (is_pem(text, len) || text[0] == '{')
    rc = import(text, len, alg, out, &info);
  else if (jwtkit_alg_kty(alg) == JWTKIT_KTY_OCT)
    rc = jwtkit_key_from_secret_text(out, alg, text, len, &info);
  else
    return ui_fail(c, 422, field, "not a key: paste a PEM key or a JWK (a secret text only for HS*)");
  if (rc != JWTKIT_OK) return ui_fail_lib(c, field, "the key", rc, &info);
  if (want_private && !jwtkit_key_can_sign(*out)) {
    jwtkit_key_free(*out);
    *out = NULL;
    return ui_fail(c, 422, field, "a public key cannot sign: paste the private key");
  }
  return 0;
}

void ui_out_key(jk_buf *b, const char *name, const jwtkit_key *k) {
  jk_buf_putc(b, ',');
  jk_buf_json_str(b, name, strlen(name));
  jk_buf_puts(b, ":{\"alg\":");
  const char *alg = jwtkit_alg_name(jwtkit_key_alg(k));
  jk_buf_json_str(b, alg, strlen(alg));
  static const char *const kty[] = {"?", "oct", "RSA", "EC", "OKP"};
  unsigned t = (unsigned)jwtkit_key_kty(k);
  ui_out_cstr(b, "kty", kty[t < 5 ? t : 0]);
  ui_out_cstr(b, "kid", jwtkit_key_kid(k));
  ui_out_int(b, "bits", jwtkit_key_bits(k));
  ui_out_cstr(b, "curve", jwtkit_key_curve(k));
  ui_out_bool(b, "private", jwtkit_key_can_sign(k));
  char tp[44];
  if (jwtkit_key_kty(k) != JWTKIT_KTY_OCT && jwtkit_key_thumbprint(k, tp) == JWTKIT_OK)
    ui_out_cstr(b, "thumbprint", tp);
  jk_buf_putc(b, '}');
}
