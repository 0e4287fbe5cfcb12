/*
 * serve_http: the endpoints of `jwtkit serve` without a socket: the
 * request-line and header checks (sv_http_head: route, method,
 * Content-Type, Content-Length), the body limit, POST /token
 * (sv_token_respond: urlencoded form, Basic and client_secret_post
 * credentials, grant type, scope, signing), If-None-Match on the
 * documents, and the metrics text.  services/serve/http.c runs the same
 * functions under libmicrohttpd.
 *
 * Input: an HTTP/1.1-like request
 *
 *   METHOD SP PATH LF
 *   Name: value LF      (header fields, up to an empty line)
 *   LF
 *   body
 *
 * Set up once: a keyring (ES256 and EdDSA keys) in a private temporary
 * directory, the issuer configured for ES256, EdDSA and ES384 (no ES384
 * key: its client gets 503), https://issuer.example/tenant as issuer, and
 * four clients with known secrets (docs/reliability.md; the seeds of
 * fuzz/make-corpus.sh use them).  The clock is fixed at start-up.
 *
 * Properties: every answer has a status from the endpoint's set; OAuth
 * error answers (RFC 6749 §5.2) come only from /token, with a known error
 * code, 401 only as invalid_client, and their JSON body (as http.c builds
 * it) is strict JSON; a 200 carries strict JSON with token_type Bearer, a
 * positive expires_in and an access token that verifies with the issuer's
 * JWK Set at the fixed clock, whose sub and client_id name a registered,
 * enabled client, whose aud is that client's audiences, whose scope is a
 * subset of its scopes, whose lifetime is at most its ttl and whose kid is
 * the one the answer reports; the client_id noted for the logs is empty
 * or a registered client; the JSON escaping of the request path (as in
 * the request log line) is strict JSON.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec/json.h"
#include "common.h"
#include "common/buf.h"
#include "common/log.h"
#include "core/alloc.h"
#include "serve.h"
#include "svc.h"

#define ISSUER "https://issuer.example/tenant"

/* Clients and their secrets (43 characters, like generated ones). */
static const struct {
  const char *name, *secret, *rest;
} k_clients[] = {
    {"svc-a", "secret-of-svc-a-0123456789-abcdefghijklmnop",
     "audience = https://api.example\naudience = https://ledger.example\nscopes = read write admin:all\nttl = 10m\n"
     "alg = EdDSA\n"},
    {"svc.b", "secret-of-svc.b-0123456789-abcdefghijklmnop", "audience = https://api.example\n"},
    {"off", "secret-of-off-000-0123456789-abcdefghijklmno", "audience = https://api.example\ndisabled = true\n"},
    {"c384", "secret-of-c384-00-0123456789-abcdefghijklmn", "audience = https://api.example\nalg = ES384\n"},
};
#define NCLIENTS (sizeof k_clients / sizeof k_clients[0])

static struct {
  int ready, verbose;
  int64_t now;
  jwtkit_verifier *v;
} g;

static void init(void) {
  if (g.ready) return;
  g.ready = 1;
  g.verbose = getenv("JKF_VERBOSE") != NULL; /* print each answer (writing seeds) */
  sv_metrics_init();
  jk_log_set_level(JK_LOG_ERROR);
  g.now = (int64_t)time(NULL);
  char dir[400];
  snprintf(dir, sizeof dir, "%s/keyring", jkf_tmpdir());
  jwtkit_alg kalgs[2] = {JWTKIT_ALG_ES256, JWTKIT_ALG_EDDSA};
  jwtkit_keyring_timing t;
  jwtkit_keyring_timing_default(&t);
  jwtkit_errinfo ei;
  jwtkit_err rc = jwtkit_keyring_init(dir, kalgs, 2, &t, NULL, g.now, NULL, NULL, &ei);
  JKF_CHECK(rc == JWTKIT_OK, "keyring_init: %s", ei.msg);
  jwtkit_keyring *kr = NULL;
  rc = jwtkit_keyring_open(&kr, dir, NULL, &ei);
  JKF_CHECK(rc == JWTKIT_OK, "keyring_open: %s", ei.msg);
  jwtkit_alg algs[3] = {JWTKIT_ALG_ES256, JWTKIT_ALG_EDDSA, JWTKIT_ALG_ES384};
  sv_keysnap *ks = NULL;
  JKF_CHECK(sv_keysnap_build(&ks, kr, algs, 3, g.now) == 0, "keysnap");
  sv_keysnap_install(ks);

  sv_settings s;
  char err[512];
  sv_settings_defaults(&s);
  JKF_CHECK(sv_settings_set(&s, "issuer", ISSUER, 0, err, sizeof err) == 0, "%s", err);
  JKF_CHECK(sv_settings_set(&s, "algs", "ES256, EdDSA, ES384", 0, err, sizeof err) == 0, "%s", err);
  JKF_CHECK(sv_settings_finish(&s, err, sizeof err) == 0, "%s", err);
  jk_buf b;
  jk_buf_init_max(&b, 1u << 16);
  sv_secret_set_dummy_iter(1);
  for (size_t i = 0; i < NCLIENTS; i++) {
    /* one PBKDF2 iteration (and as many for unknown clients): a fast
     * harness; the hash's cost is not what is fuzzed */
    char hash[SV_SECRET_HASH_MAX];
    JKF_CHECK(sv_secret_hash_new_iter(k_clients[i].secret, strlen(k_clients[i].secret), 1, hash, sizeof hash) == 0,
              "hash");
    jk_buf_printf(&b, "[client %s]\nsecret_hash = %s\n%s\n", k_clients[i].name, hash, k_clients[i].rest);
  }
  size_t tl = 0;
  char *text = jk_buf_take(&b, &tl);
  JKF_CHECK(text != NULL, "clients text");
  sv_clients clients;
  JKF_CHECK(sv_clients_parse(&clients, text, tl, "clients.conf", err, sizeof err) == 0, "clients: %s", err);
  jk_free(text);
  sv_confsnap *cs = NULL;
  JKF_CHECK(sv_confsnap_build(&cs, &s, &clients, 0, err, sizeof err) == 0, "confsnap: %s", err);
  sv_confsnap_install(cs);

  /* the relying party's view: the published JWK Set */
  jwtkit_jwks *set = NULL;
  JKF_CHECK(jwtkit_jwks_parse(&set, ks->jwks, ks->jwks_len, JWTKIT_ALG_UNSPEC, NULL, NULL, &ei) == JWTKIT_OK,
            "jwks: %s", ei.msg);
  jwtkit_policy *p = jwtkit_policy_new();
  JKF_CHECK(p != NULL, "policy");
  JKF_CHECK(jwtkit_policy_allow_alg(p, JWTKIT_ALG_ES256) == JWTKIT_OK &&
                jwtkit_policy_allow_alg(p, JWTKIT_ALG_EDDSA) == JWTKIT_OK &&
                jwtkit_policy_add_jwks(p, set) == JWTKIT_OK && jwtkit_policy_add_issuer(p, ISSUER) == JWTKIT_OK &&
                jwtkit_policy_ignore_audience(p) == JWTKIT_OK && jwtkit_policy_set_typ(p, "at+jwt") == JWTKIT_OK,
            "policy setup");
  JKF_CHECK(jwtkit_verifier_new(&g.v, p, &ei) == JWTKIT_OK, "verifier: %s", ei.msg);
  jwtkit_policy_free(p);
  jwtkit_jwks_free(set);
}

/* ------------------------------------------------------------ checks */

static int in(unsigned v, const unsigned *set, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (set[i] == v) return 1;
  return 0;
}

static void json_ok(const char *s, size_t n, const char *what) {
  JKF_CHECK(jkf_json_ok(s, n, 1), "%s is not strict JSON: %.*s", what, (int)(n > 300 ? 300 : n), s);
}

/* A string member of the object at node 0, unescaped (malloc'd) or NULL. */
static char *member_str(const jk_jdoc *d, const char *name) {
  int i = jk_json_get(d, 0, name, strlen(name));
  if (i < 0 || d->nodes[i].type != JK_J_STRING) return NULL;
  return jk_json_strdup(d, (uint32_t)i, NULL);
}

static const sv_client *registered(const sv_confsnap *cs, const char *name) {
  return name ? sv_clients_find(&cs->clients, name, strlen(name)) : NULL;
}

/* The token of a 200 answer, as a relying party sees it. */
static void check_token(const sv_confsnap *cs, const sv_keysnap *ks, const sv_answer *a) {
  size_t bl = strlen(a->json);
  json_ok(a->json, bl, "token response");
  jk_jdoc d;
  JKF_CHECK(jk_json_parse_alloc(&d, a->json, bl, 1, NULL) == JWTKIT_OK, "token response");
  char *tok = member_str(&d, "access_token"), *type = member_str(&d, "token_type"), *scope = member_str(&d, "scope");
  int ei = jk_json_get(&d, 0, "expires_in", 10);
  int64_t expires_in = 0;
  JKF_CHECK(ei >= 0 && jk_json_int(&d, (uint32_t)ei, &expires_in) == 0 && expires_in > 0, "expires_in");
  JKF_CHECK(tok != NULL && type != NULL && strcmp(type, "Bearer") == 0, "access_token / token_type");

  jwtkit_claims *c = NULL;
  jwtkit_errinfo info;
  jwtkit_err rc = jwtkit_verify_at(g.v, tok, strlen(tok), g.now, &c, &info);
  JKF_CHECK(rc == JWTKIT_OK, "a minted token does not verify: %s (%s)", jwtkit_errname(rc), info.msg);
  const char *sub = NULL, *cid = NULL, *cscope = NULL;
  JKF_CHECK(jwtkit_claims_get_string(c, "sub", &sub, NULL) == JWTKIT_OK, "sub");
  JKF_CHECK(jwtkit_claims_get_string(c, "client_id", &cid, NULL) == JWTKIT_OK && strcmp(sub, cid) == 0, "client_id");
  const sv_client *cl = registered(cs, sub);
  JKF_CHECK(cl != NULL && !cl->disabled, "token for %s, not an enabled client", sub);
  JKF_CHECK(strcmp(a->client_id, sub) == 0, "logged client %s, token for %s", a->client_id, sub);
  const char *kid = jwtkit_claims_kid(c);
  JKF_CHECK(kid != NULL && strcmp(kid, a->kid) == 0, "kid %s, logged %s", kid ? kid : "-", a->kid);
  JKF_CHECK(cl->alg == JWTKIT_ALG_UNSPEC || jwtkit_claims_alg(c) == cl->alg, "the client's alg was not used");

  /* aud: the client's audiences, a string when there is one */
  const char *aj;
  size_t al;
  JKF_CHECK(jwtkit_claims_get_json(c, "aud", &aj, &al) == JWTKIT_OK, "aud");
  jk_jdoc ad;
  JKF_CHECK(jk_json_parse_alloc(&ad, aj, al, 0, NULL) == JWTKIT_OK, "aud JSON");
  if (cl->naud == 1) {
    JKF_CHECK(ad.nodes[0].type == JK_J_STRING && jk_json_str_eq(&ad, 0, cl->aud[0], strlen(cl->aud[0])), "aud");
  } else {
    JKF_CHECK(ad.nodes[0].type == JK_J_ARRAY, "aud array");
    size_t k = 0;
    for (uint32_t i = jk_json_first(&ad, 0); i < ad.nodes[0].end; i = jk_json_next(&ad, i), k++)
      JKF_CHECK(k < cl->naud && jk_json_str_eq(&ad, i, cl->aud[k], strlen(cl->aud[k])), "aud[%zu]", k);
    JKF_CHECK(k == cl->naud, "aud has %zu members", k);
  }
  jk_free(ad.nodes);

  /* scope: tokens of the client's scopes, the same in claim and answer */
  rc = jwtkit_claims_get_string(c, "scope", &cscope, NULL);
  JKF_CHECK((rc == JWTKIT_OK) == (scope != NULL), "scope in the claims but not the answer, or back");
  if (scope != NULL) {
    JKF_CHECK(strcmp(scope, cscope) == 0 && scope[0] != '\0', "scope %s / %s", scope, cscope);
    for (const char *p = scope; *p;) {
      size_t n = strcspn(p, " ");
      int found = 0;
      for (size_t i = 0; i < cl->nscopes; i++) found |= strlen(cl->scopes[i]) == n && memcmp(cl->scopes[i], p, n) == 0;
      JKF_CHECK(found, "scope %.*s not allowed for %s", (int)n, p, cl->name);
      p += n;
      if (*p == ' ') p++;
    }
  } else {
    JKF_CHECK(cl->nscopes == 0, "no scope granted to %s, which has scopes", cl->name);
  }
  int64_t iat = 0, exp = 0;
  JKF_CHECK(jwtkit_claims_get_int(c, "iat", &iat) == JWTKIT_OK && jwtkit_claims_get_int(c, "exp", &exp) == JWTKIT_OK,
            "iat/exp");
  int64_t ttl = cl->ttl > 0 ? cl->ttl : ks->timing.token_ttl;
  JKF_CHECK(iat == g.now && exp > iat && exp - iat <= ttl && exp - iat == expires_in, "lifetime %lld..%lld",
            (long long)iat, (long long)exp);
  jwtkit_claims_free(c);
  jk_free(d.nodes);
  jk_free(tok);
  jk_free(type);
  jk_free(scope);
}

static void check_answer(const sv_confsnap *cs, const sv_keysnap *ks, enum sv_route route, const sv_answer *a) {
  static const unsigned token_status[] = {200, 400, 401, 405, 413, 415, 500, 503};
  static const unsigned text_status[] = {404, 405, 413};
  if (g.verbose)
    fprintf(stderr, "serve_http: route %d: %u %s %s\n", (int)route, a->status,
            a->token_error >= 0 ? sv_token_error_name((enum sv_token_error)a->token_error) : "",
            a->json ? a->json : a->text ? a->text : "");
  JKF_CHECK(!a->no_answer, "no answer (out of memory?)");
  JKF_CHECK(memchr(a->client_id, '\0', sizeof a->client_id) && memchr(a->kid, '\0', sizeof a->kid), "strings");
  JKF_CHECK(a->client_id[0] == '\0' || registered(cs, a->client_id) != NULL, "logged client_id %s is not registered",
            a->client_id);
  if (a->token_error >= 0) {
    JKF_CHECK(route == SV_R_TOKEN, "an OAuth error from route %d", (int)route);
    JKF_CHECK(a->token_error < SV_TE_COUNT && a->json == NULL, "token error %d", a->token_error);
    JKF_CHECK(in(a->status, token_status, sizeof token_status / sizeof *token_status) && a->status != 200,
              "token error status %u", a->status);
    JKF_CHECK(a->status != 401 || a->token_error == SV_TE_INVALID_CLIENT, "401 with %s",
              sv_token_error_name((enum sv_token_error)a->token_error));
    /* the body http.c sends */
    size_t n = 0;
    char *body = sv_token_error_body((enum sv_token_error)a->token_error, a->text, &n);
    JKF_CHECK(body != NULL, "error body");
    json_ok(body, n, "error body");
    jk_free(body);
  } else if (a->json != NULL) {
    JKF_CHECK(route == SV_R_TOKEN && a->status == 200, "JSON answer %u on route %d", a->status, (int)route);
    check_token(cs, ks, a);
  } else {
    JKF_CHECK(a->text != NULL && in(a->status, text_status, sizeof text_status / sizeof *text_status),
              "text answer %u", a->status);
    JKF_CHECK(route != SV_R_TOKEN, "a plain-text answer from /token");
  }
}

/* The request path escaped as the request log line does it (the logger's
 * lossy escaping, common/log.c and jk_buf_json_str_lossy alike). */
static void check_log_escape(const char *s) {
  jk_buf b;
  jk_buf_init_max(&b, 1u << 16);
  jk_buf_puts(&b, "{\"path\":");
  jk_buf_json_str_lossy(&b, s, strlen(s));
  jk_buf_putc(&b, '}');
  size_t n = 0;
  char *t = jk_buf_take(&b, &n);
  JKF_CHECK(t != NULL, "escape");
  json_ok(t, n, "escaped path");
  jk_free(t);
}

int jkf_serve_http(const uint8_t *data, size_t size) {
  init();
  const char *in_ = (const char *)data;
  const char *nl = memchr(in_, '\n', size);
  size_t ll = nl ? (size_t)(nl - in_) : size;
  if (ll > 0 && in_[ll - 1] == '\r') ll--;
  char line[512];
  if (ll >= sizeof line) ll = sizeof line - 1;
  memcpy(line, in_, ll);
  line[ll] = '\0';
  char *sp = strchr(line, ' ');
  const char *method = line, *path = "";
  if (sp != NULL) {
    *sp = '\0';
    path = sp + 1;
  }
  size_t off = nl ? (size_t)(nl - in_) + 1 : size;
  jkf_fields f;
  size_t rest = 0;
  jkf_fields_parse(&f, in_ + off, size - off, &rest);
  const char *body = in_ + off + rest;
  size_t blen = size - off - rest;
  sv_headers h = {jkf_fields_get, jkf_fields_each, &f};

  check_log_escape(path);
  sv_confsnap *cs = sv_confsnap_acquire();
  sv_keysnap *ks = sv_keysnap_acquire();
  sv_head hd;
  sv_answer a;
  if (sv_http_head(cs, method, path, &h, &hd, &a)) {
    check_answer(cs, ks, hd.route, &a);
    sv_answer_free(&a);
    goto out;
  }
  JKF_CHECK(hd.route != SV_R_OTHER && !hd.too_large, "route %d went on", (int)hd.route);
  JKF_CHECK(hd.length >= -1 && hd.length <= (long long)SV_MAX_BODY, "Content-Length %lld", hd.length);
  if (blen > SV_MAX_BODY) {
    sv_answer_init(&a);
    sv_http_too_large(hd.route, &a);
    check_answer(cs, ks, hd.route, &a);
    goto out;
  }
  switch (hd.route) {
    case SV_R_TOKEN: {
      JKF_CHECK(hd.method == SV_M_POST, "token request by method %d", hd.method);
      /* the body in a buffer of exactly len + 1 bytes, as http.c keeps it */
      char *buf = blen ? malloc(blen + 1) : NULL;
      JKF_CHECK(blen == 0 || buf != NULL, "out of memory");
      if (blen) memcpy(buf, body, blen);
      sv_token_respond(cs, ks, &h, buf, blen, g.now, &a);
      check_answer(cs, ks, hd.route, &a);
      sv_answer_free(&a);
      free(buf);
      break;
    }
    case SV_R_JWKS:
    case SV_R_OPENID:
    case SV_R_OAUTH: {
      const char *etag = hd.route == SV_R_JWKS ? ks->etag : hd.route == SV_R_OPENID ? cs->openid_etag : cs->oauth_etag;
      int nm = sv_http_not_modified(&h, etag);
      JKF_CHECK(!nm || jkf_fields_get(&f, "If-None-Match") != NULL, "304 without If-None-Match");
      break;
    }
    case SV_R_HEALTHZ:
      break;
    case SV_R_METRICS: {
      size_t n = 0;
      char *text = sv_metrics_render(ks, NULL, g.now, &n);
      JKF_CHECK(text != NULL && strlen(text) == n, "metrics");
      jk_free(text);
      break;
    }
    default:
      JKF_CHECK(0, "route %d", (int)hd.route);
  }
out:
  sv_keysnap_release(ks);
  sv_confsnap_release(cs);
  jkf_fields_free(&f);
  return 0;
}

JKF_ENTRY(jkf_serve_http)
