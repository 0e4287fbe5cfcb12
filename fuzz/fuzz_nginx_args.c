/*
 * nginx_args: what ngx_http_jwtkit_module parses itself (nginx/jwtkit_args.c):
 * auth_jwt_require_claim, auth_jwt_legacy_hs256, auth_jwt_jwks_settings,
 * the realm of auth_jwt and its challenges, log-safe copies.  The first byte picks the parser, the
 * rest is split at '\n' into the directive's arguments (at most 4).
 *
 * Properties: a refused argument list gives a non-empty message; an
 * accepted auth_jwt_require_claim names a claim of 1..127 printable bytes
 * without spaces, has a value exactly when it is equals/contains (1..1024
 * bytes, no space for contains), and is evaluated on fixed verified claims
 * as the oracle says (present: the claims present and not null; equals on
 * sub; contains on scope and roles); an accepted auth_jwt_legacy_hs256
 * points both values into its arguments after their prefixes; an accepted
 * realm makes three challenges "Bearer realm="REALM"..." without control
 * characters; a log-safe copy is printable and bounded; an accepted
 * setting splits its argument at the first '=' into a known key and a
 * non-empty value, and unavailable takes 401 and 503 only.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"
#include "jwtkit/jwtkit.h"
#include "../nginx/jwtkit_args.h"

static jwtkit_claims *g_claims;

static void init(void) {
  if (g_claims != NULL) return;
  static const char payload[] = "{\"exp\":99999,\"sub\":\"alice\",\"scope\":\"read write\",\"roles\":[\"a\",\"b c\"],"
                                "\"n\":42,\"ok\":true,\"gone\":null}";
  jwtkit_key *k = jkf_key_from_jwk(jkf_rfc7515_a3_es256, JWTKIT_ALG_ES256, "k");
  jwtkit_policy *p = jwtkit_policy_new();
  jwtkit_verifier *v = NULL;
  char *tok = NULL;
  size_t tl = 0;
  JKF_CHECK(p != NULL && jwtkit_policy_allow_alg(p, JWTKIT_ALG_ES256) == JWTKIT_OK &&
                jwtkit_policy_add_key(p, k) == JWTKIT_OK && jwtkit_policy_ignore_audience(p) == JWTKIT_OK &&
                jwtkit_verifier_new(&v, p, NULL) == JWTKIT_OK,
            "verifier");
  JKF_CHECK(jwtkit_sign(k, NULL, payload, strlen(payload), &tok, &tl, NULL) == JWTKIT_OK, "sign");
  JKF_CHECK(jwtkit_verify_at(v, tok, tl, 1000, &g_claims, NULL) == JWTKIT_OK, "verify");
  jwtkit_free(tok);
  jwtkit_verifier_free(v);
  jwtkit_policy_free(p);
  jwtkit_key_free(k);
}

static int eq(const char *a, size_t n, const char *lit) { return n == strlen(lit) && memcmp(a, lit, n) == 0; }

static void require_claim(const char *const *args, const size_t *lens, size_t n) {
  jka_claim_req q;
  char err[256];
  err[0] = '\0';
  if (jka_claim_req_parse(args, lens, n, &q, err, sizeof err) != 0) {
    JKF_CHECK(err[0] != '\0' && memchr(err, '\0', sizeof err) != NULL, "refused without a message");
    return;
  }
  JKF_CHECK(n == 1 || n == 3, "accepted %zu arguments", n);
  JKF_CHECK(q.name == args[0] && q.name_len == lens[0] && q.name_len >= 1 && q.name_len <= JKA_MAX_CLAIM_NAME,
            "claim name");
  for (size_t i = 0; i < q.name_len; i++)
    JKF_CHECK(q.name[i] > 0x20 && q.name[i] < 0x7f, "claim name byte 0x%02x", (unsigned)(unsigned char)q.name[i]);
  JKF_CHECK((q.op == JKA_PRESENT) == (n == 1) && (q.value == NULL) == (q.op == JKA_PRESENT), "op and value");
  if (q.value != NULL) {
    JKF_CHECK(q.value == args[2] && q.value_len == lens[2] && q.value_len >= 1 && q.value_len <= JKA_MAX_VALUE, "value");
    JKF_CHECK(q.op != JKA_CONTAINS || memchr(q.value, ' ', q.value_len) == NULL, "contains with a space");
  }
  int h = jka_claim_req_holds(&q, g_claims);
  JKF_CHECK(h == 0 || h == 1, "holds returned %d", h);
  const char *nm = q.name, *v = q.value;
  size_t nl = q.name_len, vl = q.value_len;
  int want = -1;
  if (q.op == JKA_PRESENT)
    want = eq(nm, nl, "exp") || eq(nm, nl, "sub") || eq(nm, nl, "scope") || eq(nm, nl, "roles") || eq(nm, nl, "n") ||
           eq(nm, nl, "ok");
  else if (q.op == JKA_EQUALS && eq(nm, nl, "sub"))
    want = eq(v, vl, "alice");
  else if (q.op == JKA_EQUALS && eq(nm, nl, "n"))
    want = eq(v, vl, "42");
  else if (q.op == JKA_CONTAINS && eq(nm, nl, "scope"))
    want = eq(v, vl, "read") || eq(v, vl, "write");
  else if (q.op == JKA_CONTAINS && eq(nm, nl, "roles"))
    want = eq(v, vl, "a");
  else if (q.op == JKA_CONTAINS && eq(nm, nl, "gone"))
    want = 0;
  if (want >= 0) JKF_CHECK(h == want, "%.*s: holds %d, expected %d", (int)nl, nm, h, want);
}

static void legacy(const char *const *args, const size_t *lens, size_t n) {
  const char *f, *d;
  size_t fl, dl;
  char err[256];
  err[0] = '\0';
  if (jka_legacy_parse(args, lens, n, &f, &fl, &d, &dl, err, sizeof err) != 0) {
    JKF_CHECK(err[0] != '\0', "refused without a message");
    return;
  }
  JKF_CHECK(n == 2, "accepted %zu arguments", n);
  int fi = lens[0] >= 12 && memcmp(args[0], "secret_file=", 12) == 0 ? 0 : 1;
  JKF_CHECK(f == args[fi] + 12 && fl == lens[fi] - 12 && fl > 0, "secret_file value");
  JKF_CHECK(d == args[1 - fi] + 9 && dl == lens[1 - fi] - 9 && dl > 0 && memcmp(args[1 - fi], "deadline=", 9) == 0,
            "deadline value");
}

static void settings(const char *const *args, const size_t *lens, size_t n) {
  static const char *const known[] = {"timeout", "max_bytes", "min_ttl",  "max_ttl", "default_ttl",
                                      "refresh_ahead", "cooldown", "stale_max", "ca_file", "unavailable"};
  for (size_t i = 0; i < n; i++) {
    const char *k, *v;
    size_t kl, vl;
    char err[256];
    err[0] = '\0';
    if (jka_setting_split(args[i], lens[i], &k, &kl, &v, &vl, err, sizeof err) != 0) {
      JKF_CHECK(err[0] != '\0', "refused without a message");
      continue;
    }
    JKF_CHECK(k == args[i] && kl >= 1 && k[kl] == '=' && memchr(k, '=', kl) == NULL && v == k + kl + 1 && vl >= 1 &&
                  kl + 1 + vl == lens[i],
              "split");
    int ok = 0;
    for (size_t j = 0; j < sizeof known / sizeof known[0]; j++) ok |= eq(k, kl, known[j]);
    JKF_CHECK(ok, "accepted an unknown key %.*s", (int)kl, k);
    unsigned st = 0;
    if (jka_unavailable(v, vl, &st, err, sizeof err) == 0)
      JKF_CHECK((st == 401 && eq(v, vl, "401")) || (st == 503 && eq(v, vl, "503")), "unavailable %u", st);
  }
}

static void realm(const char *s, size_t n) {
  char err[256], out[512];
  err[0] = '\0';
  if (jka_realm_check(s, n, err, sizeof err) != 0) {
    JKF_CHECK(err[0] != '\0', "refused without a message");
    return;
  }
  for (int k = JKA_CH_MISSING; k <= JKA_CH_SCOPE; k++) {
    long len = jka_challenge(out, sizeof out, s, n, (jka_challenge_kind)k);
    JKF_CHECK(len > 0 && (size_t)len == strlen(out), "challenge length");
    JKF_CHECK(strncmp(out, "Bearer realm=\"", 14) == 0 && memcmp(out + 14, s, n) == 0 && out[14 + n] == '"',
              "challenge form");
    for (long i = 0; i < len; i++) JKF_CHECK(out[i] >= 0x20 && out[i] < 0x7f, "challenge byte");
  }
}

int jkf_nginx_args(const uint8_t *data, size_t size) {
  init();
  if (size == 0) return 0;
  int which = data[0] % 5;
  const char *in = (const char *)data + 1;
  size_t len = size - 1;
  /* the arguments, as nginx hands them over: copies, NUL-terminated */
  char *copy = malloc(len + 1);
  JKF_CHECK(copy != NULL, "malloc");
  memcpy(copy, in, len);
  copy[len] = '\0';
  const char *args[4];
  size_t lens[4], n = 0, start = 0;
  for (size_t i = 0; i <= len && n < 4; i++)
    if (i == len || copy[i] == '\n') {
      args[n] = copy + start;
      lens[n] = i - start;
      copy[i] = '\0';
      n++;
      start = i + 1;
    }
  switch (which) {
    case 0:
      require_claim(args, lens, n);
      break;
    case 1:
      legacy(args, lens, n);
      break;
    case 2:
      realm(copy, lens[0]);
      break;
    case 3:
      settings(args, lens, n);
      break;
    default: {
      char out[64];
      size_t w = jka_log_safe(out, sizeof out, in, len);
      JKF_CHECK(w <= len && w < sizeof out && out[w] == '\0', "log-safe length");
      for (size_t i = 0; i < w; i++) JKF_CHECK(out[i] >= 0x20 && out[i] < 0x7f, "log-safe byte");
    }
  }
  free(copy);
  return 0;
}

JKF_ENTRY(jkf_nginx_args)
