/*
 * Unit tests of the gate and its core's pure parts: URI and host
 * normalisation, route selection, bearer/cookie extraction, claim ->
 * header rendering (the claims accessors, percent-encoding), the
 * configuration file (the project's INI dialect, durations, listen
 * addresses, booleans), claim header failures in gw_decide (deny, allow,
 * optional_header), key loading, the token cache, the legacy window.
 * CHECK works under NDEBUG.  The JWK Set source: test_gatecore.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <unistd.h>

#include "common/log.h"
#include "crypto/seal.h"
#include "gate_internal.h"
#include "gw_internal.h"

#include "check.h"

static int norm(const char *in, const char *want) {
  char out[256];
  size_t n;
  if (gw_normalize_path(in, strlen(in), out, sizeof out, &n) != 0) return want == NULL;
  if (want == NULL) {
    fprintf(stderr, "  %s -> %s, expected an error\n", in, out);
    return 0;
  }
  if (strcmp(out, want) != 0 || n != strlen(want)) {
    fprintf(stderr, "  %s -> %s, expected %s\n", in, out, want);
    return 0;
  }
  return 1;
}

static void test_paths(void) {
  CHECK(norm("/", "/"));
  CHECK(norm("/api/v1?x=1", "/api/v1"));
  CHECK(norm("/api//v1/", "/api/v1/"));
  CHECK(norm("/api/../admin/x", "/admin/x"));
  CHECK(norm("/api/./x#frag", "/api/x"));
  CHECK(norm("/api/%2e%2e/admin", "/admin"));
  CHECK(norm("/a/b/..", "/a/"));
  CHECK(norm("/../../x", "/x"));
  CHECK(norm("/%41pi", "/Api"));
  CHECK(norm("http://h.example/api/x?y", "/api/x"));
  CHECK(norm("https://h.example", "/"));
  CHECK(norm("/bad%2", NULL));
  CHECK(norm("/bad%zz", NULL));
  CHECK(norm("/x%0d%0aSet-Cookie:a", NULL));
  CHECK(norm("x/y", NULL));
  CHECK(norm("", NULL));
  char h[64];
  CHECK(gw_normalize_host("API.Example.com:8443", 20, h, sizeof h) == 0 && strcmp(h, "api.example.com") == 0);
  CHECK(gw_normalize_host("example.com.", 12, h, sizeof h) == 0 && strcmp(h, "example.com") == 0);
  CHECK(gw_normalize_host("[::1]:80", 8, h, sizeof h) == 0 && strcmp(h, "[::1]") == 0);
  CHECK(gw_normalize_host("a b", 3, h, sizeof h) != 0);
  CHECK(gw_normalize_host("host:80x", 8, h, sizeof h) != 0);
  CHECK(gw_host_matches("*.example.com", "a.example.com"));
  CHECK(gw_host_matches("*.example.com", "a.b.example.com"));
  CHECK(!gw_host_matches("*.example.com", "example.com"));
  CHECK(!gw_host_matches("*.example.com", "badexample.com"));
  CHECK(gw_host_matches("example.com", "example.com"));
}

static void test_tokens(void) {
  const char *t;
  size_t n;
  CHECK(gw_parse_bearer("Bearer abc.def.ghi", &t, &n) == 1 && n == 11 && memcmp(t, "abc.def.ghi", 11) == 0);
  CHECK(gw_parse_bearer("bearer   abc  ", &t, &n) == 1 && n == 3);
  CHECK(gw_parse_bearer("Basic dXNlcjpwYXNz", &t, &n) == 0);
  CHECK(gw_parse_bearer("Bearerabc", &t, &n) == 0);
  CHECK(gw_parse_bearer("Bearer", &t, &n) == -1);
  CHECK(gw_parse_bearer("Bearer a b", &t, &n) == -1);
  CHECK(gw_parse_bearer("Bearer a,Bearer b", &t, &n) == -1);
  int conflict = 0;
  CHECK(gw_find_cookie("a=1; at=tok; b=2", "at", &t, &n, &conflict) == 1 && n == 3 && conflict == 0);
  CHECK(gw_find_cookie("at=\"tok\"", "at", &t, &n, &conflict) == 1 && n == 3 && memcmp(t, "tok", 3) == 0);
  CHECK(gw_find_cookie("at=x; at=y", "at", &t, &n, &conflict) == 1 && conflict == 1);
  conflict = 0;
  CHECK(gw_find_cookie("at=x; at=x", "at", &t, &n, &conflict) == 1 && conflict == 0);
  CHECK(gw_find_cookie("xat=1; ata=2", "at", &t, &n, &conflict) == 0);
  CHECK(gw_token_chars_ok("eyJ.eyJ-_.abc", 13));
  CHECK(!gw_token_chars_ok("a\"b", 3));
  CHECK(!gw_token_chars_ok("a b", 3));
}

#define NOW 1700000000LL

/* Claims of a token carrying {"v": JSON, "exp": ...}, verified: what the
 * decision renders from (HS256 here only to make tokens quickly). */
static jwtkit_key *g_hs;
static jwtkit_verifier *g_hv;

static void render_setup(void) {
  static const char secret[] = "a secret for the render tests, 32 bytes or more";
  jwtkit_policy *p = jwtkit_policy_new();
  jwtkit_errinfo info;
  CHECK(jwtkit_key_from_secret(&g_hs, JWTKIT_ALG_HS256, secret, sizeof secret - 1, &info) == JWTKIT_OK);
  CHECK(p != NULL && jwtkit_policy_allow_alg(p, JWTKIT_ALG_HS256) == JWTKIT_OK &&
        jwtkit_policy_add_key(p, g_hs) == JWTKIT_OK && jwtkit_verifier_new(&g_hv, p, &info) == JWTKIT_OK);
  jwtkit_policy_free(p);
}

static jwtkit_claims *claims_of(const char *json) {
  char payload[1024], *tok = NULL;
  size_t tl = 0;
  snprintf(payload, sizeof payload, "{\"v\":%s,\"exp\":%lld}", json, NOW + 600);
  jwtkit_claims *cl = NULL;
  if (jwtkit_sign(g_hs, NULL, payload, strlen(payload), &tok, &tl, NULL) != JWTKIT_OK ||
      jwtkit_verify_at(g_hv, tok, tl, NOW, &cl, NULL) != JWTKIT_OK)
    fprintf(stderr, "  cannot make a token of %s\n", payload);
  jwtkit_free(tok);
  return cl;
}

/* gw_render_claim of claim "v" = json: want, or the GW_RENDER_* code. */
static int render_is(const char *json, long code, const char *want, size_t cap) {
  char out[256];
  jwtkit_claims *cl = claims_of(json);
  if (cl == NULL) return 0;
  long n = gw_render_claim(cl, "v", out, cap);
  jwtkit_claims_free(cl);
  if (want == NULL ? n == code : n >= 0 && (size_t)n == strlen(want) && memcmp(out, want, (size_t)n) == 0) return 1;
  fprintf(stderr, "  %s -> %.*s (%ld), expected %s (%ld)\n", json, n < 0 ? 0 : (int)n, out, n, want ? want : "-",
          code);
  return 0;
}
#define render(json, want, cap) render_is((json), 0, (want), (cap))
#define render_fails(json, code, cap) render_is((json), (code), NULL, (cap))

static void test_render(void) {
  render_setup();
  CHECK(render("\"alice\"", "alice", 256));
  CHECK(render("\"read write\"", "read write", 256)); /* inner spaces stay */
  /* every byte outside printable ASCII, and '%', is percent-encoded */
  CHECK(render("\"caf\\u00e9\"", "caf%C3%A9", 256));
  CHECK(render("\"caf\xc3\xa9\"", "caf%C3%A9", 256));
  CHECK(render("\"\\ud83d\\ude00\"", "%F0%9F%98%80", 256));
  CHECK(render("\"a\\u2028b\\u2029c\\u0085d\"", "a%E2%80%A8b%E2%80%A9c%C2%85d", 256));
  CHECK(render("\"100%\"", "100%25", 256));
  CHECK(render("\"%41\"", "%2541", 256)); /* decodes back to "%41", not "A" */
  /* spaces at either end would be stripped by HTTP: encoded */
  CHECK(render("\" admin\"", "%20admin", 256));
  CHECK(render("\"admin  \"", "admin%20%20", 256));
  CHECK(render("\"  \"", "%20%20", 256));
  CHECK(render("\" a b \"", "%20a b%20", 256));
  /* control characters (header injection): never emitted */
  CHECK(render_fails("\"a\\nX-Admin: 1\"", GW_RENDER_BAD_BYTES, 256));
  CHECK(render_fails("\"a\\r\"", GW_RENDER_BAD_BYTES, 256));
  CHECK(render_fails("\"a\\u007f\"", GW_RENDER_BAD_BYTES, 256));
  CHECK(render_fails("\"a\\tb\"", GW_RENDER_BAD_BYTES, 256));
  CHECK(render_fails("\"a\\u001bb\"", GW_RENDER_BAD_BYTES, 256));
  CHECK(render_fails("\"a\\r\\nb\"", GW_RENDER_BAD_BYTES, 256));
  /* JSON allows a raw DEL in a string: never emitted either, whatever the
   * value's shape (the array and object ones fall back to the JSON form) */
  CHECK(render_fails("\"a\x7f\"", GW_RENDER_BAD_BYTES, 256));
  CHECK(render_fails("[\"admin\",\"\x7fps\"]", GW_RENDER_BAD_BYTES, 256));
  CHECK(render_fails("{\"a\":\"\x7f\"}", GW_RENDER_BAD_BYTES, 256));
  CHECK(render("[\"read\", \"write\"]", "read,write", 256));
  CHECK(render("[\"r\\u00e9ad\", \"w\"]", "r%C3%A9ad,w", 256));
  CHECK(render("[]", "", 256));
  CHECK(render("\"\"", "", 256));
  CHECK(render("[\"a,b\",\"c\"]", "[\"a,b\",\"c\"]", 256));
  CHECK(render("[1, 2]", "[1,2]", 256));
  CHECK(render("[\"a\", 2]", "[\"a\",2]", 256));
  CHECK(render("{\"a\": [1,\n 2], \"b\": \"x y\"}", "{\"a\":[1,2],\"b\":\"x y\"}", 256));
  CHECK(render("{\"n\":\"Zo\xc3\xab\"}", "{\"n\":\"Zo%C3%AB\"}", 256));
  CHECK(render("[\"a\\nb\"]", "[\"a\\nb\"]", 256)); /* JSON form: the escape is text */
  CHECK(render("42", "42", 256));
  CHECK(render("1.5e3", "1.5e3", 256));
  CHECK(render("true", "true", 256));
  CHECK(render("null", "null", 256));
  /* the limit applies to the encoded value */
  CHECK(render_fails("\"abcdefgh\"", GW_RENDER_TOO_LONG, 4));
  CHECK(render("\"abcd\"", "abcd", 4));
  CHECK(render("\"\\u00e9\"", "%C3%A9", 6));
  CHECK(render_fails("\"\\u00e9\"", GW_RENDER_TOO_LONG, 5));
  CHECK(render("\"a%\"", "a%25", 4));
  CHECK(render_fails("\"a%\"", GW_RENDER_TOO_LONG, 3));
  CHECK(render_fails("[\"abc\",\"def\"]", GW_RENDER_TOO_LONG, 6));
  /* a claim the token does not have */
  jwtkit_claims *cl = claims_of("1");
  CHECK(cl != NULL && gw_render_claim(cl, "missing", (char[8]){0}, 8) == GW_RENDER_MISSING);
  jwtkit_claims_free(cl);
  jwtkit_verifier_free(g_hv);
  jwtkit_key_free(g_hs);
}

static const char *good_cfg =
    "# test\n"
    "[gate]\n"
    "token_cache = 100\n"
    "jwks_timeout = 500ms\n"
    "[route api]\n"
    "match_host = API.example.com\n"
    "match_path_prefix = /api/\n"
    "issuer = https://issuer.example\n"
    "jwks_url = http://127.0.0.1:1/jwks.json\n"
    "allow_http_jwks = true\n"
    "algs = RS256, ES256\n"
    "audience = api\n"
    "audience = api2\n"
    "header X-User = sub\n"
    "header X-Scope = \"scope\"\n"
    "token_cookie = at\n"
    "leeway = 30\n"
    "max_age = 1h\n"
    "[route other]\n"
    "jwks_url = https://issuer.example/jwks.json\n"
    "algs = EdDSA\n";

static int cfg_err(const char *text, const char *needle) {
  gate_config *c = NULL;
  char err[512] = "";
  int rc = gate_config_parse("t.conf", text, strlen(text), &c, err, sizeof err);
  gate_config_free(c);
  if (rc == 0) {
    fprintf(stderr, "  accepted: %s\n", text);
    return 0;
  }
  if (strstr(err, needle) == NULL) {
    fprintf(stderr, "  error \"%s\" lacks \"%s\"\n", err, needle);
    return 0;
  }
  return 1;
}

static void test_config(void) {
  gate_config *c = NULL;
  char err[512] = "";
  int rc = gate_config_parse("t.conf", good_cfg, strlen(good_cfg), &c, err, sizeof err);
  CHECK(rc == 0);
  if (rc != 0) {
    fprintf(stderr, "  %s\n", err);
    return;
  }
  const gw_config *g = c->core;
  CHECK(g->nroutes == 2);
  CHECK(g->token_cache == 100 && g->jwks.timeout_ms == 500 && g->max_token == 8192);
  CHECK(g->jwks.min_ttl == 30 && g->jwks.max_ttl == 3600 && g->jwks.default_ttl == 300);
  CHECK(g->jwks.cooldown == 30 && g->jwks.stale_max == 86400 && g->jwks.max_bytes == 65536);
  CHECK(c->header_timeout == 5 && c->idle_timeout == 120 && c->connection_limit == 1024 && !c->has_listen);
  const gw_route_cfg *r = &g->routes[0];
  CHECK(strcmp(r->hosts.v[0], "api.example.com") == 0);
  CHECK(r->nalgs == 2 && r->algs[0] == JWTKIT_ALG_RS256 && r->algs[1] == JWTKIT_ALG_ES256);
  CHECK(r->audiences.n == 2 && r->nheaders == 2 && strcmp(r->headers[1].claim, "scope") == 0);
  CHECK(r->leeway == 30 && r->max_age == 3600 && r->allow_http_jwks == 1);
  CHECK(gw_route_rsa_default(r) == JWTKIT_ALG_RS256);
  CHECK(gw_route_select(g, "api.example.com", "/api/x", 6) == 0);
  CHECK(gw_route_select(g, "api.example.com", "/other", 6) == 1);
  CHECK(gw_route_select(g, "www.example.com", "/api/x", 6) == 1);
  CHECK(gw_route_select(g, NULL, NULL, 0) == 1);
  gate_config_free(c);

  /* the project's one dialect and value grammar (common/ini.h, common/parse.h) */
  const char *uni = "; a comment line\n"
                    "[gate]\n"
                    "listen = localhost:9090   # an inline comment\n"
                    "threads = 3\n"
                    "connection_limit = 16\n"
                    "idle_timeout = 2m\n"
                    "header_timeout = 7\n"
                    "log_level = warning\n"
                    "jwks_stale_max = 2w\n"
                    "jwks_cooldown = \"45s\"\n"
                    "[route  r1 ]\n"
                    "jwks_url = http://127.0.0.1:1/j # here too\n"
                    "allow_http_jwks = on\n"
                    "algs = ES256\n"
                    "issuer = https://id.example/#frag\n"
                    "max_age = 1w\n";
  rc = gate_config_parse("u.conf", uni, strlen(uni), &c, err, sizeof err);
  CHECK(rc == 0);
  if (rc == 0) {
    g = c->core;
    CHECK(c->has_listen && strcmp(c->listen.text, "127.0.0.1:9090") == 0 && c->listen.port == 9090);
    CHECK(c->threads == 3 && c->connection_limit == 16 && c->idle_timeout == 120 && c->header_timeout == 7);
    CHECK(c->has_log_level && c->log_level == JK_LOG_WARN);
    CHECK(g->jwks.stale_max == 14 * 86400 && g->jwks.cooldown == 45);
    CHECK(strcmp(g->routes[0].name, "r1") == 0 && strcmp(g->routes[0].jwks_url, "http://127.0.0.1:1/j") == 0);
    CHECK(g->routes[0].allow_http_jwks == 1 && g->routes[0].max_age == 7 * 86400);
    CHECK(strcmp(g->routes[0].issuer, "https://id.example/#frag") == 0); /* '#' not after a blank: text */
    gate_config_free(c);
  } else {
    fprintf(stderr, "  %s\n", err);
  }
  CHECK(cfg_err("[gate]\nlisten = 127.0.0.1:0\n[route a]\njwks_url = https://x/j\nalgs = RS256\n",
                "t.conf:2: 'listen': the port must be 1..65535"));
  CHECK(cfg_err("[gate]\nlisten = gate.example:80\n[route a]\njwks_url = https://x/j\nalgs = RS256\n",
                "t.conf:2: 'listen': the address must be a numeric"));
  CHECK(cfg_err("[route a]\njwks_url = https://x/j\nalgs = RS256\nallow_http_jwks = maybe\n",
                "t.conf:4: 'allow_http_jwks': expected true, false, yes, no, on, off, 1 or 0"));
  CHECK(cfg_err("[gate]\nidle_timeout = 2x\n[route a]\njwks_url = https://x/j\nalgs = RS256\n",
                "t.conf:2: 'idle_timeout': bad duration \"2x\" (a number of seconds, or a number followed by s, m"));
  CHECK(cfg_err("[gate x]\n", "t.conf:1: [gate] takes no name"));
  CHECK(cfg_err("[gate]\n[gate]\n", "t.conf:2: [gate] given twice"));
  CHECK(cfg_err("[route]\n", "t.conf:1: a route needs a name"));
  CHECK(cfg_err("[routes a]\n", "t.conf:1: unknown section [routes]"));
  CHECK(cfg_err("[gate]\nnope = 1\n", "t.conf:2: unknown key 'nope' in [gate]"));
  CHECK(cfg_err("[route a]\nalgs = ES256\nkey_file = /k\n\n[route b]\nalgs = ES256\n",
                "t.conf:5: [route b]: needs 'jwks_url', 'issuer_discovery' or 'key_file'"));

  CHECK(cfg_err("[gate]\nheader_timeout = 0\n[route a]\njwks_url = https://x/j\nalgs = RS256\n",
                "t.conf:2: 'header_timeout': bad duration \"0\""));
  CHECK(cfg_err("[gate]\nheader_timeout = 10m\n[route a]\njwks_url = https://x/j\nalgs = RS256\n", "1..300 s"));
  CHECK(cfg_err("[route a]\njwks_url = https://x/j\n", "'algs' is required"));
  CHECK(cfg_err("[route a]\njwks_url = https://x/j\nalgs = HS256\n", "migration mode"));
  CHECK(cfg_err("[route a]\njwks_url = https://x/j\nalgs = none\n", "never accepted"));
  CHECK(cfg_err("[route a]\njwks_url = http://x/j\nalgs = RS256\n", "allow_http_jwks"));
  CHECK(cfg_err("[route a]\njwks_url = ftp://x/j\nalgs = RS256\n", "https://"));
  CHECK(cfg_err("[route a]\nalgs = RS256\n", "needs 'jwks_url', 'issuer_discovery' or 'key_file'"));
  CHECK(cfg_err("[route a]\njwks_url = https://x/j\nalgs = RS256\nfoo = 1\n", "t.conf:4: unknown key 'foo'"));
  CHECK(cfg_err("[route a]\njwks_url = https://x/j\njwks_url = https://y/j\nalgs = RS256\n", "given twice"));
  CHECK(cfg_err("[route a]\njwks_url = https://x/j\nalgs = RS256\nleeway = 301\n", "'leeway'"));
  CHECK(cfg_err("[route a]\njwks_url = https://x/j\nalgs = RS256\nlegacy_deadline = 2026-01-01T00:00:00Z\n",
                "both"));
  CHECK(cfg_err("[route a]\njwks_url = https://x/j\nalgs = RS256\nheader Content-Length = sub\n", "reserved"));
  CHECK(cfg_err("[route a]\njwks_url = https://x/j\nalgs = RS256\nheader X-A = sub\nheader x-a = iss\n",
                "mapped twice"));
  CHECK(cfg_err("[route a]\njwks_url = https://x/j\nalgs = RS256\n[route a]\n", "defined twice"));
  CHECK(cfg_err("algs = RS256\n", "outside a section"));
  CHECK(cfg_err("[gate]\ntoken_cache = lots\n", "whole number"));
  CHECK(cfg_err("[gate]\n", "no [route NAME] section"));
  CHECK(cfg_err("[route a]\njwks_url = https://x/j\nalgs = RS256\nmatch_path_prefix = api\n", "start with '/'"));
  CHECK(cfg_err("[route a]\njwks_url = https://x/j\nalgs = RS256\nclaim_header_failure = drop\n",
                "t.conf:4: 'claim_header_failure': expected deny or allow, got \"drop\""));
  CHECK(cfg_err("[route a]\njwks_url = https://x/j\nalgs = RS256\nclaim_header_failure = deny\n"
                "claim_header_failure = allow\n",
                "given twice"));
  CHECK(cfg_err("[route a]\njwks_url = https://x/j\nalgs = RS256\nheader X-A = sub\noptional_header x-a = iss\n",
                "mapped twice"));
  CHECK(cfg_err("[route a]\njwks_url = https://x/j\nalgs = RS256\noptional_header Content-Type = sub\n", "reserved"));

  /* claim_header_failure: deny unless the route says allow; optional_header */
  const char *ch = "[route d]\njwks_url = https://x/j\nalgs = ES256\nheader X-User = sub\n"
                   "optional_header X-Tenant = tenant\n"
                   "[route a]\njwks_url = https://x/j\nalgs = ES256\nclaim_header_failure = allow\n"
                   "header X-User = sub\n";
  rc = gate_config_parse("t.conf", ch, strlen(ch), &c, err, sizeof err);
  CHECK(rc == 0);
  if (rc == 0) {
    const gw_route_cfg *rt = c->core->routes;
    CHECK(rt[0].claim_header_allow == 0 && rt[1].claim_header_allow == 1);
    CHECK(rt[0].nheaders == 2 && !rt[0].headers[0].optional && rt[0].headers[1].optional);
    CHECK(strcmp(rt[0].headers[1].name, "X-Tenant") == 0 && strcmp(rt[0].headers[1].claim, "tenant") == 0);
    gate_config_free(c);
  }
}

/* ------------------------------------------------- decisions: claim headers */

typedef struct fake_req {
  const char *uri;
  char auth[4096];
} fake_req;

static const char *fr_get(void *ctx, const char *name) {
  fake_req *f = ctx;
  if (strcasecmp(name, "X-Original-URI") == 0) return f->uri;
  if (strcasecmp(name, "Authorization") == 0) return f->auth;
  return NULL;
}

static void fr_each(void *ctx, int (*fn)(void *cls, const char *name, const char *value), void *cls) {
  fake_req *f = ctx;
  if (fn(cls, "X-Original-URI", f->uri)) fn(cls, "Authorization", f->auth);
}

static void decide_tok(gw_state *st, const char *uri, const char *tok, gw_decision *d) {
  fake_req f = {uri, ""};
  snprintf(f.auth, sizeof f.auth, "Bearer %s", tok ? tok : "");
  gw_fields fl = {fr_get, fr_each, &f};
  gw_request rq;
  gw_request_read(&rq, st, &fl);
  gw_decide(st, &rq, NOW, 0, d);
}

/* Decide a request to uri with a token of `claims` signed by k (kept in
 * *keep when keep is not NULL; free with jwtkit_free). */
static void decide_claims_keep(gw_state *st, jwtkit_key *k, const char *uri, const char *claims, gw_decision *d,
                               char **keep) {
  char *tok = NULL;
  size_t tl = 0;
  CHECK(jwtkit_sign(k, NULL, claims, strlen(claims), &tok, &tl, NULL) == JWTKIT_OK);
  decide_tok(st, uri, tok, d);
  if (keep != NULL)
    *keep = tok;
  else
    jwtkit_free(tok);
}

static void decide_claims(gw_state *st, jwtkit_key *k, const char *uri, const char *claims, gw_decision *d) {
  decide_claims_keep(st, k, uri, claims, d, NULL);
}

/* The value of header `name` in an allowed decision, NULL when absent. */
static int has_header(const gw_decision *d, const char *name, const char *want) {
  for (size_t i = 0; i < d->nhv; i++) {
    if (strcmp(d->hv[i].name, name) != 0 || strcmp(d->rc->headers[d->hv[i].map].name, name) != 0) continue;
    if (want == NULL) return 0;
    if (d->hv[i].len == strlen(want) && memcmp(d->hv[i].val, want, d->hv[i].len) == 0) return 1;
    fprintf(stderr, "  %s: %.*s, expected %s\n", name, (int)d->hv[i].len, d->hv[i].val, want);
    return 0;
  }
  return want == NULL;
}

/* A denial for claim `field` whose detail contains `why`. */
static int denied(const gw_decision *d, const char *field, const char *why) {
  int ok = d->status == 401 && d->reason == GW_R_CLAIM_HEADER && d->nhv == 0 && strcmp(d->info.field, field) == 0 &&
           strstr(d->info.msg, why) != NULL;
  if (!ok) fprintf(stderr, "  status %u reason %d field %s detail %s\n", d->status, d->reason, d->info.field, d->info.msg);
  return ok;
}

static void test_claim_headers(void) {
  jwtkit_key *k = NULL;
  CHECK(jwtkit_key_generate(&k, JWTKIT_ALG_ES256, 0, NULL) == JWTKIT_OK);
  if (k == NULL) return;
  char *jwk = NULL;
  size_t jl = 0;
  CHECK(jwtkit_key_to_jwk(k, 0, &jwk, &jl) == JWTKIT_OK);
  char path[] = "/tmp/jwtkit-gate-units-XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0 && jwk != NULL && write(fd, jwk, jl) == (ssize_t)jl);
  if (fd >= 0) close(fd);
  jwtkit_free(jwk);
  char text[2048];
  snprintf(text, sizeof text,
           "[gate]\ntoken_cache = 100\nheader_max = 64\n"
           "[route strict]\nmatch_path_prefix = /strict/\nkey_file = %s\nalgs = ES256\n"
           "header X-User = sub\nheader X-Scope = scope\noptional_header X-Tenant = tenant\n"
           "[route lenient]\nmatch_path_prefix = /lenient/\nkey_file = %s\nalgs = ES256\n"
           "claim_header_failure = allow\nheader X-User = sub\nheader X-Scope = scope\n"
           "[route fresh]\nmatch_path_prefix = /fresh/\nkey_file = %s\nalgs = ES256\ntoken_cache = off\n"
           "header X-User = sub\n",
           path, path, path);
  gate_config *cfg = NULL;
  gw_state *st = NULL;
  char err[1024] = "";
  int rc = gate_config_parse("c.conf", text, strlen(text), &cfg, err, sizeof err);
  CHECK(rc == 0);
  if (rc == 0) {
    gw_build b = {.generation = 1};
    rc = gw_state_build(cfg->core, &b, &st, err, sizeof err);
    CHECK(rc == 0);
    if (rc == 0) cfg->core = NULL;
    gate_config_free(cfg);
  }
  unlink(path);
  if (rc != 0) {
    fprintf(stderr, "  %s\n", err);
    jwtkit_key_free(k);
    return;
  }
  gw_decision d;
#define EXP "\"exp\":1700000600"
  /* every mapped claim there: allowed, values percent-encoded */
  decide_claims(st, k, "/strict/x", "{\"sub\":\"Zo\u00eb 100%\",\"scope\":\"read write\"," EXP "}", &d);
  CHECK(d.status == 204 && has_header(&d, "X-User", "Zo%C3%AB 100%25") && has_header(&d, "X-Scope", "read write"));
  CHECK(has_header(&d, "X-Tenant", NULL)); /* optional and absent: no header */
  gw_decision_free(&d);
  /* deny (the default): a mapped claim that cannot be emitted denies */
  char *tok = NULL;
  decide_claims_keep(st, k, "/strict/x", "{\"sub\":\"alice\"," EXP "}", &d, &tok);
  CHECK(denied(&d, "scope", "missing"));
  gw_decision_free(&d);
  decide_tok(st, "/strict/x", tok, &d); /* nothing was cached: denied again */
  CHECK(denied(&d, "scope", "missing"));
  gw_decision_free(&d);
  jwtkit_free(tok);
  decide_claims(st, k, "/strict/x", "{\"sub\":\"alice\",\"scope\":\"\"," EXP "}", &d);
  CHECK(denied(&d, "scope", "empty"));
  gw_decision_free(&d);
  decide_claims(st, k, "/strict/x", "{\"sub\":\"alice\",\"scope\":[]," EXP "}", &d);
  CHECK(denied(&d, "scope", "empty"));
  gw_decision_free(&d);
  decide_claims(st, k, "/strict/x", "{\"sub\":\"eve\\r\\nX-Admin: 1\",\"scope\":\"r\"," EXP "}", &d);
  CHECK(denied(&d, "sub", "control character"));
  gw_decision_free(&d);
  decide_claims(st, k, "/strict/x",
                "{\"sub\":\"a\",\"scope\":\"0123456789012345678901234567890123456789012345678901234567890\"," EXP "}",
                &d); /* 61 bytes: fits header_max 64 */
  CHECK(d.status == 204);
  gw_decision_free(&d);
  decide_claims(st, k, "/strict/x",
                "{\"sub\":\"a\",\"scope\":\"01234567890123456789012345678901234567890123456789012345678901234\"," EXP
                "}",
                &d); /* 65 bytes */
  CHECK(denied(&d, "scope", "longer than header_max"));
  gw_decision_free(&d);
  /* 30 x U+00E9: 60 bytes of UTF-8 fit in 64, their 180 encoded bytes do not */
  char wide[512] = "{\"sub\":\"a\",\"scope\":\"";
  for (int i = 0; i < 30; i++) strcat(wide, "\\u00e9");
  strcat(wide, "\"," EXP "}");
  decide_claims(st, k, "/strict/x", wide, &d);
  CHECK(denied(&d, "scope", "longer than header_max once encoded"));
  gw_decision_free(&d);
  /* optional: absent or empty is fine, a present value must still be clean */
  decide_claims(st, k, "/strict/x", "{\"sub\":\"a\",\"scope\":\"s\",\"tenant\":\"\"," EXP "}", &d);
  CHECK(d.status == 204 && has_header(&d, "X-Tenant", NULL) && d.nhv == 2);
  gw_decision_free(&d);
  decide_claims(st, k, "/strict/x", "{\"sub\":\"a\",\"scope\":\"s\",\"tenant\":\"t\\n\"," EXP "}", &d);
  CHECK(denied(&d, "tenant", "control character"));
  gw_decision_free(&d);
  /* allow: left out, counted, the request passes */
  unsigned long before = atomic_load(&gw_stats.headers_dropped);
  decide_claims(st, k, "/lenient/x", "{\"sub\":\"eve\\r\\nX-Admin: 1\",\"scope\":\"r\"," EXP "}", &d);
  CHECK(d.status == 204 && has_header(&d, "X-User", NULL) && has_header(&d, "X-Scope", "r") && d.nhv == 1);
  CHECK(atomic_load(&gw_stats.headers_dropped) == before + 1);
  gw_decision_free(&d);
  decide_claims_keep(st, k, "/lenient/x", "{\"sub\":\"alice\"," EXP "}", &d, &tok);
  CHECK(d.status == 204 && d.reason == GW_R_VERIFIED && has_header(&d, "X-User", "alice") &&
        has_header(&d, "X-Scope", NULL));
  gw_decision_free(&d);
  decide_tok(st, "/lenient/x", tok, &d); /* a cache hit gives the same headers */
  CHECK(d.reason == GW_R_CACHED && has_header(&d, "X-User", "alice") && d.nhv == 1);
  gw_decision_free(&d);
  /* the same token on the strict route: denied, even though it is cached
   * as an allow for the lenient one */
  decide_tok(st, "/strict/x", tok, &d);
  CHECK(denied(&d, "scope", "missing"));
  gw_decision_free(&d);
  jwtkit_free(tok);
  /* token_cache = off: the route verifies every time, with its headers */
  decide_claims_keep(st, k, "/fresh/x", "{\"sub\":\"bob\"," EXP "}", &d, &tok);
  CHECK(d.reason == GW_R_VERIFIED && has_header(&d, "X-User", "bob"));
  gw_decision_free(&d);
  decide_tok(st, "/fresh/x", tok, &d);
  CHECK(d.reason == GW_R_VERIFIED && has_header(&d, "X-User", "bob"));
  gw_decision_free(&d);
  jwtkit_free(tok);
#undef EXP
  gw_state_destroy(st);
  jwtkit_key_free(k);
}

static void test_keys(void) {
  const char *text = "[route k]\nkey_file = /dev/null\nalgs = ES256\n";
  gate_config *c = NULL;
  char err[512] = "";
  CHECK(gate_config_parse("k.conf", text, strlen(text), &c, err, sizeof err) == 0);
  if (c == NULL) return;
  const gw_route_cfg *rt = c->core->routes;
  jwtkit_key *priv = NULL, *rsa = NULL;
  CHECK(jwtkit_key_generate(&priv, JWTKIT_ALG_ES256, 0, NULL) == JWTKIT_OK);
  CHECK(jwtkit_key_generate(&rsa, JWTKIT_ALG_RS256, 0, NULL) == JWTKIT_OK);
  char *pem;
  size_t len;
  jwtkit_key **keys = NULL;
  size_t n = 0;
  /* public PEM: ok */
  CHECK(jwtkit_key_to_pem(priv, 0, NULL, &pem, &len) == JWTKIT_OK);
  CHECK(gw_load_key_text(&rt[0], "pub.pem", pem, len, &keys, &n, err, sizeof err) == 0 && n == 1);
  jwtkit_free(pem);
  /* private PEM: refused */
  err[0] = '\0';
  CHECK(jwtkit_key_to_pem(priv, 1, NULL, &pem, &len) == JWTKIT_OK);
  CHECK(gw_load_key_text(&rt[0], "priv.pem", pem, len, &keys, &n, err, sizeof err) != 0);
  CHECK(strstr(err, "private key") != NULL);
  jwtkit_free(pem);
  /* RSA key on an ES256-only route: refused */
  err[0] = '\0';
  CHECK(jwtkit_key_to_pem(rsa, 0, NULL, &pem, &len) == JWTKIT_OK);
  CHECK(gw_load_key_text(&rt[0], "rsa.pem", pem, len, &keys, &n, err, sizeof err) != 0);
  jwtkit_free(pem);
  /* a JWK Set with only an oct key: nothing usable */
  const char *oct = "{\"keys\":[{\"kty\":\"oct\",\"k\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\",\"alg\":\"HS256\"}]}";
  err[0] = '\0';
  CHECK(gw_load_key_text(&rt[0], "oct.jwks", oct, strlen(oct), &keys, &n, err, sizeof err) != 0);
  CHECK(strstr(err, "no usable") != NULL);
  /* a public JWK */
  CHECK(jwtkit_key_to_jwk(priv, 0, &pem, &len) == JWTKIT_OK);
  CHECK(gw_load_key_text(&rt[0], "pub.jwk", pem, len, &keys, &n, err, sizeof err) == 0 && n == 2);
  jwtkit_free(pem);
  CHECK(gw_load_key_text(&rt[0], "junk", "hello", 5, &keys, &n, err, sizeof err) != 0);
  for (size_t i = 0; i < n; i++) jwtkit_key_free(keys[i]);
  free(keys);
  jwtkit_key_free(priv);
  jwtkit_key_free(rsa);
  gate_config_free(c);
}

static void sha(const char *s, size_t n, unsigned char out[32]) { CHECK(jk_sha256_2(s, n, NULL, 0, out) == 0); }

static int keep_if_kid_a(void *ctx, const gw_tc_entry *e, uint64_t *ng) {
  (void)ctx;
  size_t kl;
  const char *kid = gw_tc_entry_kid(e, &kl);
  *ng = 7;
  return kid != NULL && kl == 1 && kid[0] == 'a';
}

static void test_cache(void) {
  CHECK(gw_tcache_new(0) == NULL);
  gw_tcache *c = gw_tcache_new(100);
  CHECK(c != NULL);
  if (c == NULL) return;
  unsigned char k[32];
  gw_header hv[2] = {{0, NULL, "alice", 5}, {1, NULL, "r,w", 3}};
  sha("tok1", 4, k);
  gw_tcache_put(c, k, 0, 1000, 1, 0, "a", 1, hv, 2);
  gw_tc_entry *e = gw_tcache_get(c, k, 0, 999, NULL, NULL);
  CHECK(e != NULL);
  if (e != NULL) {
    gw_header o;
    size_t pos = 0;
    CHECK(gw_tc_entry_header(e, &pos, &o) && o.map == 0 && o.len == 5 && memcmp(o.val, "alice", 5) == 0);
    CHECK(gw_tc_entry_header(e, &pos, &o) && o.map == 1 && o.len == 3 && memcmp(o.val, "r,w", 3) == 0);
    CHECK(!gw_tc_entry_header(e, &pos, &o));
    gw_tc_entry_release(e);
  }
  CHECK(gw_tcache_get(c, k, 1, 999, NULL, NULL) == NULL); /* another route */
  CHECK(gw_tcache_get(c, k, 0, 1000, NULL, NULL) == NULL); /* at exp: gone */
  CHECK(gw_tcache_count(c) == 0);
  /* check callback: keep (gen updated) or drop */
  gw_tcache_put(c, k, 0, 1000, 1, 0, "a", 1, NULL, 0);
  e = gw_tcache_get(c, k, 0, 1, keep_if_kid_a, NULL);
  CHECK(e != NULL && e->gen == 7);
  gw_tc_entry_release(e);
  gw_tcache_put(c, k, 0, 1000, 1, 0, "b", 1, NULL, 0); /* replaces */
  CHECK(gw_tcache_count(c) == 1);
  CHECK(gw_tcache_get(c, k, 0, 1, keep_if_kid_a, NULL) == NULL);
  CHECK(gw_tcache_count(c) == 0);
  /* bounded */
  for (int i = 0; i < 1000; i++) {
    char t[16];
    snprintf(t, sizeof t, "t%d", i);
    sha(t, strlen(t), k);
    gw_tcache_put(c, k, 0, 1000, 1, 0, NULL, 0, hv, 1);
  }
  CHECK(gw_tcache_count(c) <= 100 && gw_tcache_count(c) >= 90);
  /* recent entries survive, old ones were evicted */
  sha("t999", 4, k);
  e = gw_tcache_get(c, k, 0, 1, NULL, NULL);
  CHECK(e != NULL);
  gw_tc_entry_release(e);
  sha("t0", 2, k);
  CHECK(gw_tcache_get(c, k, 0, 1, NULL, NULL) == NULL);
  gw_tcache_free(c);
  c = gw_tcache_new(3);
  for (int i = 0; i < 10; i++) {
    char t[16];
    snprintf(t, sizeof t, "s%d", i);
    sha(t, strlen(t), k);
    gw_tcache_put(c, k, 0, 1000, 1, 0, NULL, 0, NULL, 0);
  }
  CHECK(gw_tcache_count(c) == 3);
  gw_tcache_free(c);
}

static void test_legacy_window(void) {
  gw_metrics_init();
  gw_metrics_legacy_accept(1000);
  gw_metrics_legacy_accept(1000);
  gw_metrics_legacy_accept(1030);
  CHECK(gw_metrics_legacy_last_minute(1030) == 3);
  CHECK(gw_metrics_legacy_last_minute(1059) == 3);
  CHECK(gw_metrics_legacy_last_minute(1060) == 1);
  CHECK(gw_metrics_legacy_last_minute(1100) == 0);
  gw_metrics_legacy_accept(1060); /* same slot as 1000: replaced */
  CHECK(gw_metrics_legacy_last_minute(1060) == 2);
}

/* Every configuration key (the server's and the core's vocabulary) is in
 * the man page (an entry of its own) and in docs/gateway.md (`key`); every
 * key is one gw_route_set / gw_config_set / the server takes. */
static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return NULL;
  char *buf = malloc(1u << 20);
  size_t n = buf ? fread(buf, 1, (1u << 20) - 1, f) : 0;
  fclose(f);
  if (buf) buf[n] = '\0';
  return buf;
}

static int man_has(const char *man, const char *key) {
  char a[160], b[160];
  snprintf(a, sizeof a, "\n.B %s\n", key);
  snprintf(b, sizeof b, "\n.BI \"%s ", key);
  return strstr(man, a) != NULL || strstr(man, b) != NULL;
}

static int md_has(const char *md, const char *key) {
  char a[160];
  snprintf(a, sizeof a, "| `%s", key);
  if (strstr(md, a)) return 1;
  snprintf(a, sizeof a, ", `%s`", key); /* a second key in one row */
  return strstr(md, a) != NULL;
}

static void test_vocabulary_documented(void) {
  char *man = slurp(GATE_SRC_DIR "/docs/man/jwtkit-gate.1"), *md = slurp(GATE_SRC_DIR "/docs/gateway.md");
  CHECK(man != NULL && md != NULL);
  if (man == NULL || md == NULL) {
    free(man);
    free(md);
    return;
  }
  const char *const *lists[] = {gate_server_keys(), gw_global_keys(), gw_route_keys()};
  size_t total = 0;
  for (size_t l = 0; l < 3; l++)
    for (const char *const *k = lists[l]; *k; k++) {
      total++;
      if (!man_has(man, *k)) {
        fprintf(stderr, "  docs/man/jwtkit-gate.1 has no entry for '%s'\n", *k);
        CHECK(0);
      }
      if (!md_has(md, *k)) {
        fprintf(stderr, "  docs/gateway.md has no table row for '%s'\n", *k);
        CHECK(0);
      }
    }
  CHECK(total >= 40);
  /* the lists are what the parsers take: a route key is not "unknown" */
  gw_config *c = gw_config_new();
  char err[256];
  gw_route_cfg *r = c ? gw_config_add_route(c, "v", 1, err, sizeof err) : NULL;
  for (const char *const *k = gw_route_keys(); r && *k; k++) {
    char key[96];
    int named = strcmp(*k, "header") == 0 || strcmp(*k, "optional_header") == 0;
    snprintf(key, sizeof key, "%s%s", *k, named ? " X-Vocab" : "");
    err[0] = '\0';
    gw_route_set(r, key, "x", err, sizeof err);
    if (strstr(err, "unknown key")) {
      fprintf(stderr, "  gw_route_set does not take '%s'\n", *k);
      CHECK(0);
    }
  }
  for (const char *const *k = gw_global_keys(); c && *k; k++) CHECK(gw_config_set(c, *k, "x", err, sizeof err) != 1);
  gw_config_free(c);
  free(man);
  free(md);
}

int main(void) {
  jk_log_set_level(JK_LOG_ERROR);
  test_paths();
  test_tokens();
  test_render();
  test_config();
  test_claim_headers();
  test_keys();
  test_cache();
  test_legacy_window();
  test_vocabulary_documented();
  printf("%d checks, %d failed\n", checks, fails);
  return fails ? 1 : 0;
}
