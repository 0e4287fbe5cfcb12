/*
 * The module's own parsing and checks (nginx/jwtkit_args.c), without
 * nginx: auth_jwt_require_claim (grammar and what each check accepts on
 * verified claims), the realm rule, the challenges, log-safe copies.
 */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "jwtkit/jwtkit.h"
#include "jwtkit_args.h"

static jwtkit_key *g_key;
static jwtkit_verifier *g_ver;

/* Claims of a token signed and verified here (exp far ahead, ES256). */
static jwtkit_claims *claims_of(const char *json) {
  char *tok = NULL;
  size_t tl = 0;
  jwtkit_claims *cl = NULL;
  if (jwtkit_sign(g_key, NULL, json, strlen(json), &tok, &tl, NULL) != JWTKIT_OK) return NULL;
  if (jwtkit_verify_at(g_ver, tok, tl, 1000, &cl, NULL) != JWTKIT_OK) cl = NULL;
  jwtkit_free(tok);
  return cl;
}

static int parse(const char *a0, const char *a1, const char *a2, jka_claim_req *q, char *err, size_t cap) {
  const char *args[3] = {a0, a1, a2};
  size_t lens[3] = {0, 0, 0}, n = 0;
  for (; n < 3 && args[n]; n++) lens[n] = strlen(args[n]);
  return jka_claim_req_parse(args, lens, n, q, err, cap);
}

/* Does the requirement hold on these claims? -1 when it did not parse. */
static int holds(const char *json, const char *a0, const char *a1, const char *a2) {
  jka_claim_req q;
  char err[256];
  if (parse(a0, a1, a2, &q, err, sizeof err) != 0) return -1;
  jwtkit_claims *cl = claims_of(json);
  if (cl == NULL) return -2;
  int r = jka_claim_req_holds(&q, cl);
  jwtkit_claims_free(cl);
  return r;
}

int main(void) {
  jwtkit_policy *p = jwtkit_policy_new();
  if (jwtkit_key_generate(&g_key, JWTKIT_ALG_ES256, 0, NULL) != JWTKIT_OK || p == NULL ||
      jwtkit_policy_allow_alg(p, JWTKIT_ALG_ES256) != JWTKIT_OK || jwtkit_policy_add_key(p, g_key) != JWTKIT_OK ||
      jwtkit_policy_ignore_audience(p) != JWTKIT_OK || jwtkit_verifier_new(&g_ver, p, NULL) != JWTKIT_OK) {
    fprintf(stderr, "setup failed\n");
    return 1;
  }
  jwtkit_policy_free(p);
  const char *tok = "{\"exp\":99999,\"sub\":\"alice\",\"scope\":\"read  write\",\"roles\":[\"a\",\"b c\"],"
                    "\"n\":42,\"ok\":true,\"gone\":null,\"mixed\":[\"a\",1],\"obj\":{\"a\":\"read\"}}";

  /* grammar */
  jka_claim_req q;
  char err[256];
  CHECK(parse("sub", NULL, NULL, &q, err, sizeof err) == 0 && q.op == JKA_PRESENT && q.value == NULL);
  CHECK(parse("scope", "contains", "write", &q, err, sizeof err) == 0 && q.op == JKA_CONTAINS && q.value_len == 5);
  CHECK(parse("tenant", "equals", "acme", &q, err, sizeof err) == 0 && q.op == JKA_EQUALS);
  CHECK(parse("scope", "has", "x", &q, err, sizeof err) == -1 && strstr(err, "\"has\"") && strstr(err, "equals or contains"));
  CHECK(parse("scope", "contains", NULL, &q, err, sizeof err) == -1 && strstr(err, "2 arguments"));
  CHECK(parse("scope", "contains", "a b", &q, err, sizeof err) == -1 && strstr(err, "one word"));
  CHECK(parse("scope", "equals", "", &q, err, sizeof err) == -1 && strstr(err, "value of 0 bytes"));
  CHECK(parse("", NULL, NULL, &q, err, sizeof err) == -1 && strstr(err, "claim name of 0 bytes"));
  CHECK(parse("a b", NULL, NULL, &q, err, sizeof err) == -1 && strstr(err, "byte 1 is 0x20"));
  CHECK(parse("caf\xc3\xa9", NULL, NULL, &q, err, sizeof err) == -1 && strstr(err, "byte 3 is 0xc3"));
  char longname[200];
  memset(longname, 'a', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  CHECK(parse(longname, NULL, NULL, &q, err, sizeof err) == -1 && strstr(err, "199 bytes"));
  {
    const char *args[4] = {"a", "equals", "b", "c"};
    size_t lens[4] = {1, 6, 1, 1};
    CHECK(jka_claim_req_parse(args, lens, 4, &q, err, sizeof err) == -1 && strstr(err, "4 arguments"));
    CHECK(jka_claim_req_parse(args, lens, 0, &q, err, sizeof err) == -1);
  }

  /* present */
  CHECK(holds(tok, "sub", NULL, NULL) == 1);
  CHECK(holds(tok, "obj", NULL, NULL) == 1);
  CHECK(holds(tok, "nope", NULL, NULL) == 0);
  CHECK(holds(tok, "gone", NULL, NULL) == 0); /* null is not present */
  /* equals: strings by value, others by JSON text */
  CHECK(holds(tok, "sub", "equals", "alice") == 1);
  CHECK(holds(tok, "sub", "equals", "alic") == 0);
  CHECK(holds(tok, "sub", "equals", "alice2") == 0);
  CHECK(holds(tok, "sub", "equals", "\"alice\"") == 0);
  CHECK(holds(tok, "n", "equals", "42") == 1);
  CHECK(holds(tok, "n", "equals", "4") == 0);
  CHECK(holds(tok, "ok", "equals", "true") == 1);
  CHECK(holds(tok, "nope", "equals", "x") == 0);
  /* contains: words of a string (scope), string items of an array */
  CHECK(holds(tok, "scope", "contains", "write") == 1);
  CHECK(holds(tok, "scope", "contains", "read") == 1);
  CHECK(holds(tok, "scope", "contains", "rea") == 0);
  CHECK(holds(tok, "scope", "contains", "admin") == 0);
  CHECK(holds(tok, "roles", "contains", "a") == 1);
  CHECK(holds(tok, "roles", "contains", "b") == 0); /* "b c" is one item */
  CHECK(holds(tok, "mixed", "contains", "a") == 0); /* not an array of strings */
  CHECK(holds(tok, "obj", "contains", "read") == 0);
  CHECK(holds(tok, "n", "contains", "42") == 0);
  /* an escaped string compares unescaped */
  CHECK(holds("{\"exp\":99999,\"t\":\"a\\u0062c\"}", "t", "equals", "abc") == 1);
  CHECK(jka_claim_req_holds(&q, NULL) == 0);
  /* the same checks on a payload's text (a token cache hit) */
  {
    static const char pl[] = "{ \"scope\" : \"read  wr\\u0069te\" ,\n \"roles\":[\"a\", \"b\"], \"mixed\":[\"a\",1],"
                             " \"n\": 42, \"o\":{\"x\":1}, \"gone\": null }";
    jka_claim_req r;
    CHECK(parse("scope", "contains", "write", &r, err, sizeof err) == 0 && jka_claim_req_holds_json(&r, pl, strlen(pl)) == 1);
    CHECK(parse("scope", "contains", "wr", &r, err, sizeof err) == 0 && jka_claim_req_holds_json(&r, pl, strlen(pl)) == 0);
    CHECK(parse("roles", "contains", "b", &r, err, sizeof err) == 0 && jka_claim_req_holds_json(&r, pl, strlen(pl)) == 1);
    CHECK(parse("mixed", "contains", "a", &r, err, sizeof err) == 0 && jka_claim_req_holds_json(&r, pl, strlen(pl)) == 0);
    CHECK(parse("n", "equals", "42", &r, err, sizeof err) == 0 && jka_claim_req_holds_json(&r, pl, strlen(pl)) == 1);
    CHECK(parse("o", "equals", "{\"x\":1}", &r, err, sizeof err) == 0 && jka_claim_req_holds_json(&r, pl, strlen(pl)) == 1);
    CHECK(parse("gone", NULL, NULL, &r, err, sizeof err) == 0 && jka_claim_req_holds_json(&r, pl, strlen(pl)) == 0);
    CHECK(parse("o", NULL, NULL, &r, err, sizeof err) == 0 && jka_claim_req_holds_json(&r, pl, strlen(pl)) == 1);
    CHECK(jka_claim_req_holds_json(&r, "[1]", 3) == 0);                      /* not an object */
    CHECK(jka_claim_req_holds_json(&r, "{\"o\":1,\"o\":2}", 13) == 0);       /* duplicate names: refused */
    CHECK(jka_claim_req_holds_json(&r, "{\"o\":1", 6) == 0);                 /* not JSON */
  }

  /* auth_jwt_legacy_hs256 */
  {
    const char *f, *d;
    size_t fl, dl;
    const char *a1[2] = {"secret_file=/etc/s", "deadline=2026-12-31T00:00:00Z"};
    size_t l1[2] = {18, 29};
    CHECK(jka_legacy_parse(a1, l1, 2, &f, &fl, &d, &dl, err, sizeof err) == 0 && fl == 6 && memcmp(f, "/etc/s", 6) == 0 &&
          dl == 20 && memcmp(d, "2026-12-31T00:00:00Z", 20) == 0);
    const char *a2[2] = {"deadline=x", "secret_file=y"};
    size_t l2[2] = {10, 13};
    CHECK(jka_legacy_parse(a2, l2, 2, &f, &fl, &d, &dl, err, sizeof err) == 0 && fl == 1 && *f == 'y' && *d == 'x');
    const char *a3[2] = {"secret_file=a", "secret_file=b"};
    size_t l3[2] = {13, 13};
    CHECK(jka_legacy_parse(a3, l3, 2, &f, &fl, &d, &dl, err, sizeof err) == -1 && strstr(err, "secret_file given twice"));
    const char *a4[2] = {"secret_file=", "deadline=x"};
    size_t l4[2] = {12, 10};
    CHECK(jka_legacy_parse(a4, l4, 2, &f, &fl, &d, &dl, err, sizeof err) == -1 && strstr(err, "secret_file needs a value"));
    const char *a5[2] = {"secret=a", "deadline=x"};
    size_t l5[2] = {8, 10};
    CHECK(jka_legacy_parse(a5, l5, 2, &f, &fl, &d, &dl, err, sizeof err) == -1 && strstr(err, "unknown argument \"secret=a\""));
    CHECK(jka_legacy_parse(a5, l5, 1, &f, &fl, &d, &dl, err, sizeof err) == -1 && strstr(err, "1 arguments"));
    const char *a6[2] = {"secret_file=a\0b", "deadline=x"};
    size_t l6[2] = {15, 10};
    CHECK(jka_legacy_parse(a6, l6, 2, &f, &fl, &d, &dl, err, sizeof err) == -1 && strstr(err, "NUL"));
  }

  /* auth_jwt_jwks_settings */
  {
    const char *k, *v;
    size_t kl, vl;
    unsigned st = 0;
    CHECK(jka_setting_split("cooldown=2s", 11, &k, &kl, &v, &vl, err, sizeof err) == 0 && kl == 8 && vl == 2 &&
          memcmp(v, "2s", 2) == 0);
    CHECK(jka_setting_split("ca_file=/a=b", 12, &k, &kl, &v, &vl, err, sizeof err) == 0 && kl == 7 && vl == 4);
    CHECK(jka_setting_split("cooldown", 8, &k, &kl, &v, &vl, err, sizeof err) == -1 && strstr(err, "KEY=VALUE"));
    CHECK(jka_setting_split("=2s", 3, &k, &kl, &v, &vl, err, sizeof err) == -1);
    CHECK(jka_setting_split("cooldown=", 9, &k, &kl, &v, &vl, err, sizeof err) == -1 && strstr(err, "needs a value"));
    CHECK(jka_setting_split("speed=9", 7, &k, &kl, &v, &vl, err, sizeof err) == -1 && strstr(err, "unknown setting \"speed\""));
    CHECK(jka_unavailable("401", 3, &st, err, sizeof err) == 0 && st == 401);
    CHECK(jka_unavailable("503", 3, &st, err, sizeof err) == 0 && st == 503);
    CHECK(jka_unavailable("500", 3, &st, err, sizeof err) == -1 && strstr(err, "401 or 503"));
  }

  /* realm */
  CHECK(jka_realm_check("api", 3, err, sizeof err) == 0);
  CHECK(jka_realm_check("my api", 6, err, sizeof err) == 0);
  CHECK(jka_realm_check("a\"b", 3, err, sizeof err) == -1 && strstr(err, "without '\"'"));
  CHECK(jka_realm_check("a\\b", 3, err, sizeof err) == -1);
  CHECK(jka_realm_check("a\nb", 3, err, sizeof err) == -1);
  CHECK(jka_realm_check("", 0, err, sizeof err) == -1 && strstr(err, "0 bytes"));

  /* challenges */
  char ch[128];
  CHECK(jka_challenge(ch, sizeof ch, "api", 3, JKA_CH_MISSING) == 18 && strcmp(ch, "Bearer realm=\"api\"") == 0);
  CHECK(jka_challenge(ch, sizeof ch, "api", 3, JKA_CH_INVALID) > 0 &&
        strcmp(ch, "Bearer realm=\"api\", error=\"invalid_token\"") == 0);
  CHECK(jka_challenge(ch, sizeof ch, "api", 3, JKA_CH_SCOPE) > 0 &&
        strcmp(ch, "Bearer realm=\"api\", error=\"insufficient_scope\"") == 0);
  CHECK(jka_challenge(ch, 10, "api", 3, JKA_CH_SCOPE) == -1);

  /* the log limit: 3 lines per 1000 ms, the rest counted and taken once the window is over */
  {
    jka_loglimit l = {.interval_ms = 1000, .burst = 3};
    int shown = 0;
    for (int i = 0; i < 10; i++) shown += jka_loglimit_allow(&l, 5000 + i);
    CHECK(shown == 3 && l.suppressed == 7);
    CHECK(jka_loglimit_take(&l, 5999) == 0); /* the window is not over */
    CHECK(jka_loglimit_take(&l, 6000) == 7 && jka_loglimit_take(&l, 6000) == 0);
    CHECK(jka_loglimit_allow(&l, 6000) == 1 && l.used == 1); /* a new window */
    CHECK(jka_loglimit_allow(&l, 6001) == 1 && jka_loglimit_allow(&l, 6002) == 1 && jka_loglimit_allow(&l, 6003) == 0);
    CHECK(jka_loglimit_take(&l, 7003) == 1);
  }

  /* log-safe copies */
  char ls[8];
  CHECK(jka_log_safe(ls, sizeof ls, "a\r\nb\xff", 5) == 5 && strcmp(ls, "a??b?") == 0);
  CHECK(jka_log_safe(ls, sizeof ls, "0123456789", 10) == 7 && strcmp(ls, "0123456") == 0);

  jwtkit_verifier_free(g_ver);
  jwtkit_key_free(g_key);
  printf("test_nginx_args: %d checks, %d failed\n", checks, fails);
  return fails ? 1 : 0;
}
