/*
 * gate_config: the configuration file of `jwtkit gate`
 * (gate_config_parse, services/gate/config.c: the INI dialect of
 * common/ini.h and the gateway core's vocabulary, gw_config_set and
 * gw_route_set), and for the files that parse, the state built from them
 * (gw_state_build: key files, the migration-mode HS256 verifier, JWK Set
 * sources without fetching, the token cache) with a request through
 * gw_decide.
 *
 * Properties: a refused file gives no configuration and a NUL-terminated
 * message naming the file ("gate.conf:LINE: ..." or "gate.conf: ...");
 * an accepted one has 1..256 routes with valid, unique names, each with an
 * asymmetric algorithm (never HS*), a jwks_url, a key_file or
 * issuer_discovery (then no jwks_url and an https:// issuer), an https://
 * jwks_url unless allow_http_jwks, both or neither of the migration
 * settings, valid and unreserved claim-header names (unique ignoring case),
 * lowercase hosts and '/'-prefixed paths, jwks_min_ttl <= jwks_max_ttl;
 * written back as a configuration file it parses to the same configuration
 * (every global setting, every route value, in order).
 *
 * Key files: the names es256.pub.jwk, keys.jwks, ed25519.pub.pem and
 * legacy.key (mode 0600) refer to files the harness writes into a private
 * temporary directory at start-up (public keys from RFC 7515 A.3, RFC 8037
 * and RFC 7520, an HS256 secret); a configuration whose key files are all
 * among them (and whose token_cache is at most 100000) is built into a
 * state.  A state that builds answers a request without a token with 401
 * (no token) or 403 (no route), never 204.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common.h"
#include "gate_internal.h"
#include "svc.h"

#define NAME "gate.conf"

static const char *const k_files[] = {"es256.pub.jwk", "keys.jwks", "ed25519.pub.pem", "legacy.key"};
#define NFILES (sizeof k_files / sizeof k_files[0])
static char g_paths[NFILES][600];
static int g_ready;

static char *public_text(const char *jwk, jwtkit_alg alg, const char *kid, int pem) {
  jwtkit_key *k = jkf_key_from_jwk(jwk, alg, kid);
  char *out = NULL;
  size_t n = 0;
  JKF_CHECK((pem ? jwtkit_key_to_pem(k, 0, NULL, &out, &n) : jwtkit_key_to_jwk(k, 0, &out, &n)) == JWTKIT_OK,
            "export");
  jwtkit_key_free(k);
  return out;
}

static void init(void) {
  if (g_ready) return;
  g_ready = 1;
  jk_log_set_level(JK_LOG_ERROR);
  char *es = public_text(jkf_rfc7515_a3_es256, JWTKIT_ALG_ES256, "es-1", 0);
  char *ed = public_text(jkf_rfc8037_ed25519, JWTKIT_ALG_EDDSA, "ed-1", 0);
  char *rsa = public_text(jkf_rfc7520_rsa, JWTKIT_ALG_RS256, "rsa-1", 0);
  char *edpem = public_text(jkf_rfc8037_ed25519, JWTKIT_ALG_EDDSA, NULL, 1);
  char set[8192];
  snprintf(set, sizeof set, "{\"keys\":[%s,%s,%s]}", es, ed, rsa);
  static const char secret[] = "legacy-hs256-secret-for-the-fuzz-harness-0123456789";
  const char *text[NFILES] = {es, set, edpem, secret};
  for (size_t i = 0; i < NFILES; i++)
    snprintf(g_paths[i], sizeof g_paths[i], "%s",
             jkf_write_file(k_files[i], text[i], strlen(text[i]), i == NFILES - 1 ? 0600 : 0644));
  jwtkit_free(es);
  jwtkit_free(ed);
  jwtkit_free(rsa);
  jwtkit_free(edpem);
}

/* ------------------------------------------------------- write back */

/* key=value, quoted only when the parser would otherwise trim, unquote or
 * cut the value (blanks at either end, a leading '"', " #" inside): the
 * shortest form, so that a line of the input at the length limit still
 * fits when written back.  Inside quotes '"' and '\\' are escaped. */
static void kv(jkf_text *t, const char *key, const char *v) {
  size_t n = strlen(v);
  int quote = n > 0 && (v[0] == ' ' || v[0] == '\t' || v[0] == '"' || v[n - 1] == ' ' || v[n - 1] == '\t' ||
                        v[n - 1] == '\r' || strstr(v, " #") != NULL || strstr(v, "\t#") != NULL);
  if (!quote) {
    jkf_text_printf(t, "%s=%s\n", key, v);
    return;
  }
  jkf_text_printf(t, "%s=\"", key);
  for (size_t i = 0; i < n; i++) {
    if (v[i] == '"' || v[i] == '\\') jkf_text_put(t, "\\", 1);
    jkf_text_put(t, v + i, 1);
  }
  jkf_text_printf(t, "\"\n");
}

static void kv_list(jkf_text *t, const char *key, const gw_strlist *l) {
  for (size_t i = 0; i < l->n; i++) kv(t, key, l->v[i]);
}

static const char *const k_levels[] = {"debug", "info", "warn", "error"};

static char *write_back(const gate_config *gc, size_t *len) {
  const gw_config *c = gc->core;
  const gw_jwks_opts *j = &c->jwks;
  jkf_text t = {0};
  jkf_text_printf(&t, "[gate]\n");
  if (gc->has_listen) kv(&t, "listen", gc->listen.text);
  if (gc->has_log_level) kv(&t, "log_level", k_levels[gc->log_level]);
  if (gc->threads) jkf_text_printf(&t, "threads=%u\n", gc->threads);
  jkf_text_printf(&t, "token_cache=%zu\nmax_token=%zu\nheader_max=%zu\nconnection_limit=%u\nidle_timeout=%u\n",
                  c->token_cache, c->max_token, c->header_max, gc->connection_limit, gc->idle_timeout);
  jkf_text_printf(&t, "header_timeout=%u\n", gc->header_timeout);
  jkf_text_printf(&t, "jwks_timeout=%lldms\njwks_max_bytes=%zu\n", (long long)j->timeout_ms, j->max_bytes);
  jkf_text_printf(&t, "jwks_min_ttl=%lld\njwks_max_ttl=%lld\njwks_default_ttl=%lld\njwks_refresh_ahead=%lld\n",
                  (long long)j->min_ttl, (long long)j->max_ttl, (long long)j->default_ttl,
                  (long long)j->refresh_ahead);
  jkf_text_printf(&t, "jwks_cooldown=%lld\njwks_stale_max=%lld\n", (long long)j->cooldown, (long long)j->stale_max);
  if (j->ca_file) kv(&t, "jwks_ca_file", j->ca_file);
  for (size_t i = 0; i < c->nroutes; i++) {
    const gw_route_cfg *r = &c->routes[i];
    jkf_text_printf(&t, "\n[route %s]\n", r->name);
    kv_list(&t, "match_host", &r->hosts);
    kv_list(&t, "match_path_prefix", &r->prefixes);
    if (r->issuer) kv(&t, "issuer", r->issuer);
    if (r->jwks_url) kv(&t, "jwks_url", r->jwks_url);
    kv_list(&t, "key_file", &r->key_files);
    jkf_text_printf(&t, "algs=");
    for (size_t k = 0; k < r->nalgs; k++) jkf_text_printf(&t, "%s%s", k ? "," : "", jwtkit_alg_name(r->algs[k]));
    jkf_text_printf(&t, "\n");
    kv_list(&t, "audience", &r->audiences);
    if (r->typ) kv(&t, "typ", r->typ);
    kv_list(&t, "require", &r->require);
    if (r->leeway >= 0) jkf_text_printf(&t, "leeway=%lld\n", (long long)r->leeway);
    if (r->max_age > 0) jkf_text_printf(&t, "max_age=%lld\n", (long long)r->max_age);
    for (size_t k = 0; k < r->nheaders; k++) {
      char key[GW_MAX_HEADER_NAME + 20];
      snprintf(key, sizeof key, "%sheader %s", r->headers[k].optional ? "optional_" : "", r->headers[k].name);
      kv(&t, key, r->headers[k].claim);
    }
    jkf_text_printf(&t, "claim_header_failure=%s\n", r->claim_header_allow ? "allow" : "deny");
    if (r->token_cookie) kv(&t, "token_cookie", r->token_cookie);
    if (r->token_header) kv(&t, "token_header", r->token_header);
    jkf_text_printf(&t, "allow_http_jwks=%s\n", r->allow_http_jwks ? "true" : "false");
    if (r->issuer_discovery) jkf_text_printf(&t, "issuer_discovery=true\n");
    if (r->strip_authorization) jkf_text_printf(&t, "strip_authorization=true\n");
    if (r->token_cache_off) jkf_text_printf(&t, "token_cache=false\n");
    if (r->legacy_secret_file) kv(&t, "legacy_hs256_secret_file", r->legacy_secret_file);
    if (r->has_legacy_deadline) {
      char when[40];
      jk_format_rfc3339(r->legacy_deadline, when, sizeof when);
      kv(&t, "legacy_deadline", when);
    }
  }
  *len = t.len;
  return t.p;
}

/* ------------------------------------------------------------ checks */

static void same_str(const char *a, const char *b, const char *what, const char *route) {
  JKF_CHECK((a == NULL) == (b == NULL) && (a == NULL || strcmp(a, b) == 0), "%s %s: '%s' became '%s'", route, what,
            a ? a : "(none)", b ? b : "(none)");
}

static void same_list(const gw_strlist *a, const gw_strlist *b, const char *what, const char *route) {
  JKF_CHECK(a->n == b->n, "%s %s: %zu values became %zu", route, what, a->n, b->n);
  for (size_t i = 0; i < a->n; i++) same_str(a->v[i], b->v[i], what, route);
}

static void same(const gate_config *ga, const gate_config *gb) {
  const gw_config *a = ga->core, *b = gb->core;
  JKF_CHECK(ga->has_listen == gb->has_listen && (!ga->has_listen || strcmp(ga->listen.text, gb->listen.text) == 0),
            "listen");
  same_str(a->jwks.ca_file, b->jwks.ca_file, "jwks_ca_file", "[gate]");
  JKF_CHECK(ga->has_log_level == gb->has_log_level && (!ga->has_log_level || ga->log_level == gb->log_level),
            "log_level");
  JKF_CHECK(ga->threads == gb->threads && a->token_cache == b->token_cache && a->max_token == b->max_token &&
                a->header_max == b->header_max && ga->connection_limit == gb->connection_limit &&
                ga->idle_timeout == gb->idle_timeout && ga->header_timeout == gb->header_timeout,
            "[gate] numbers");
  JKF_CHECK(memcmp(&a->jwks, &b->jwks, offsetof(gw_jwks_opts, ca_file)) == 0, "[gate] jwks_* settings");
  JKF_CHECK(a->nroutes == b->nroutes, "%zu routes became %zu", a->nroutes, b->nroutes);
  for (size_t i = 0; i < a->nroutes; i++) {
    const gw_route_cfg *x = &a->routes[i], *y = &b->routes[i];
    const char *n = x->name;
    same_str(x->name, y->name, "name", n);
    same_list(&x->hosts, &y->hosts, "match_host", n);
    same_list(&x->prefixes, &y->prefixes, "match_path_prefix", n);
    same_str(x->issuer, y->issuer, "issuer", n);
    same_str(x->jwks_url, y->jwks_url, "jwks_url", n);
    same_list(&x->key_files, &y->key_files, "key_file", n);
    JKF_CHECK(x->nalgs == y->nalgs && memcmp(x->algs, y->algs, x->nalgs * sizeof x->algs[0]) == 0, "%s algs", n);
    same_list(&x->audiences, &y->audiences, "audience", n);
    same_str(x->typ, y->typ, "typ", n);
    same_list(&x->require, &y->require, "require", n);
    JKF_CHECK(x->leeway == y->leeway && x->max_age == y->max_age, "%s leeway/max_age", n);
    JKF_CHECK(x->nheaders == y->nheaders, "%s headers", n);
    for (size_t k = 0; k < x->nheaders; k++)
      JKF_CHECK(strcmp(x->headers[k].name, y->headers[k].name) == 0 &&
                    strcmp(x->headers[k].claim, y->headers[k].claim) == 0 &&
                    x->headers[k].optional == y->headers[k].optional,
                "%s header %zu", n, k);
    JKF_CHECK(x->claim_header_allow == y->claim_header_allow, "%s claim_header_failure", n);
    same_str(x->token_cookie, y->token_cookie, "token_cookie", n);
    same_str(x->token_header, y->token_header, "token_header", n);
    JKF_CHECK(x->allow_http_jwks == y->allow_http_jwks, "%s allow_http_jwks", n);
    JKF_CHECK(x->issuer_discovery == y->issuer_discovery, "%s issuer_discovery", n);
    JKF_CHECK(x->strip_authorization == y->strip_authorization, "%s strip_authorization", n);
    JKF_CHECK(x->token_cache_off == y->token_cache_off, "%s token_cache", n);
    same_str(x->legacy_secret_file, y->legacy_secret_file, "legacy_hs256_secret_file", n);
    JKF_CHECK(x->has_legacy_deadline == y->has_legacy_deadline &&
                  (!x->has_legacy_deadline || x->legacy_deadline == y->legacy_deadline),
              "%s legacy_deadline %lld became %lld", n, (long long)x->legacy_deadline, (long long)y->legacy_deadline);
  }
}

static int header_name_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n >= GW_MAX_HEADER_NAME) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) return 0;
  }
  return 1;
}

static void check(const gate_config *gc) {
  const gw_config *c = gc->core;
  JKF_CHECK(c->nroutes >= 1 && c->nroutes <= GW_MAX_ROUTES, "%zu routes", c->nroutes);
  JKF_CHECK(c->jwks.min_ttl <= c->jwks.max_ttl, "jwks_min_ttl > jwks_max_ttl");
  JKF_CHECK(!gc->has_listen || (gc->listen.port >= 1 && gc->listen.port <= 65535), "listen port %u", gc->listen.port);
  JKF_CHECK(c->max_token >= 256 && c->max_token <= GW_MAX_TOKEN_CAP, "max_token %zu", c->max_token);
  JKF_CHECK(c->header_max >= 16 && c->header_max <= 8192, "header_max %zu", c->header_max);
  for (size_t i = 0; i < c->nroutes; i++) {
    const gw_route_cfg *r = &c->routes[i];
    JKF_CHECK(r->name != NULL && r->name[0] != '\0' && strlen(r->name) <= 64, "route %zu name", i);
    for (size_t k = 0; k < i; k++) JKF_CHECK(strcmp(c->routes[k].name, r->name) != 0, "route %s twice", r->name);
    JKF_CHECK(r->nalgs >= 1 && r->nalgs < JWTKIT_ALG_COUNT, "%s: %zu algs", r->name, r->nalgs);
    for (size_t k = 0; k < r->nalgs; k++)
      JKF_CHECK(r->algs[k] != JWTKIT_ALG_UNSPEC && jwtkit_alg_kty(r->algs[k]) != JWTKIT_KTY_OCT, "%s: alg %s",
                r->name, jwtkit_alg_name(r->algs[k]));
    JKF_CHECK(r->jwks_url != NULL || r->key_files.n > 0 || r->issuer_discovery, "%s: no key source", r->name);
    if (r->issuer_discovery) /* the set's URL comes from the issuer's metadata: never both */
      JKF_CHECK(r->jwks_url == NULL && r->issuer != NULL &&
                    (strncasecmp(r->issuer, "https://", 8) == 0 ||
                     (r->allow_http_jwks && strncasecmp(r->issuer, "http://", 7) == 0)),
                "%s: issuer_discovery with jwks_url or without an https issuer", r->name);
    if (r->jwks_url != NULL)
      JKF_CHECK(strncasecmp(r->jwks_url, "https://", 8) == 0 || (r->allow_http_jwks && strncasecmp(r->jwks_url,
                                                                                                 "http://", 7) == 0),
                "%s: jwks_url %s", r->name, r->jwks_url);
    JKF_CHECK((r->legacy_secret_file != NULL) == (r->has_legacy_deadline != 0), "%s: half a migration", r->name);
    for (size_t k = 0; k < r->nheaders; k++) {
      JKF_CHECK(header_name_ok(r->headers[k].name), "%s: header name %s", r->name, r->headers[k].name);
      for (size_t j = 0; j < k; j++)
        JKF_CHECK(strcasecmp(r->headers[j].name, r->headers[k].name) != 0, "%s: header %s twice", r->name,
                  r->headers[k].name);
      JKF_CHECK(r->headers[k].claim[0] != '\0', "%s: empty claim", r->name);
    }
    for (size_t k = 0; k < r->hosts.n; k++)
      for (const char *p = r->hosts.v[k]; *p; p++) JKF_CHECK(!(*p >= 'A' && *p <= 'Z'), "host %s", r->hosts.v[k]);
    for (size_t k = 0; k < r->prefixes.n; k++) JKF_CHECK(r->prefixes.v[k][0] == '/', "prefix %s", r->prefixes.v[k]);
  }
}

/* ------------------------------------------------------------ state */

/* Point the known file names at the harness's files; 0 when some file is
 * another one (the harness reads no file it did not write). */
static int own_files(gw_config *c) {
  if (c->token_cache > 100000) return 0;
  for (size_t i = 0; i < c->nroutes; i++) {
    gw_route_cfg *r = &c->routes[i];
    char **files[GW_MAX_LIST + 1];
    size_t n = 0;
    for (size_t k = 0; k < r->key_files.n; k++) files[n++] = &r->key_files.v[k];
    if (r->legacy_secret_file) files[n++] = &r->legacy_secret_file;
    for (size_t k = 0; k < n; k++) {
      size_t f = 0;
      while (f < NFILES && strcmp(*files[k], k_files[f]) != 0) f++;
      if (f == NFILES) return 0;
      char *p = strdup(g_paths[f]);
      JKF_CHECK(p != NULL, "out of memory");
      free(*files[k]);
      *files[k] = p;
    }
  }
  return 1;
}

static const char *no_header(void *ctx, const char *name) {
  const char *const *kv = ctx;
  for (size_t i = 0; kv[i] != NULL; i += 2)
    if (strcasecmp(kv[i], name) == 0) return kv[i + 1];
  return NULL;
}

static void each_header(void *ctx, int (*fn)(void *cls, const char *name, const char *value), void *cls) {
  const char *const *kv = ctx;
  for (size_t i = 0; kv[i] != NULL; i += 2)
    if (!fn(cls, kv[i], kv[i + 1])) return;
}

static void build_state(gw_config *c) {
  gw_state *st = NULL;
  char err[1024];
  memset(err, 0x5a, sizeof err);
  gw_build b = {.generation = 1};
  if (gw_state_build(c, &b, &st, err, sizeof err) != 0) {
    JKF_CHECK(st == NULL && memchr(err, '\0', sizeof err) != NULL && err[0] != '\0', "state build: no message");
    gw_config_free(c);
    return;
  }
  JKF_CHECK(gw_state_config(st) == c, "state");
  static const char *const hosts[] = {"api.example.com", "a.api.example.com", NULL};
  for (size_t h = 0; h < 3; h++) {
    const char *kv[] = {"X-Original-URI", "/admin/x?y", "Host", hosts[h], NULL, NULL};
    if (hosts[h] == NULL) kv[2] = NULL;
    gw_fields f = {no_header, each_header, (void *)kv};
    gw_request rq;
    gw_request_read(&rq, st, &f);
    gw_decision d;
    gw_decide(st, &rq, 1700000000, 0, &d);
    JKF_CHECK((d.status == 401 && d.reason == GW_R_MISSING_TOKEN && d.www_authenticate != NULL &&
               strcmp(d.www_authenticate, "Bearer") == 0) ||
                  (d.status == 403 && (d.reason == GW_R_NO_ROUTE || d.reason == GW_R_BAD_URI) &&
                   d.www_authenticate == NULL),
              "a request without a token: %u (reason %d)", d.status, d.reason);
    JKF_CHECK(d.refetch == NULL, "a refetch for a request without a token");
    gw_decision_free(&d);
  }
  gw_state_destroy(st);
}

int jkf_gate_config(const uint8_t *data, size_t size) {
  init();
  gate_config *c = (gate_config *)&c;
  char err[1024];
  memset(err, 0x5a, sizeof err);
  if (gate_config_parse(NAME, (const char *)data, size, &c, err, sizeof err) != 0) {
    JKF_CHECK(c == NULL, "a refused file gave a configuration");
    JKF_CHECK(memchr(err, '\0', sizeof err) != NULL, "error message not terminated");
    JKF_CHECK(strncmp(err, NAME ":", sizeof NAME) == 0, "error message does not name the file: %.200s", err);
    return 0;
  }
  JKF_CHECK(c != NULL, "no configuration");
  check(c);
  size_t tl = 0;
  char *text = write_back(c, &tl);
  gate_config *again = NULL;
  int rc = gate_config_parse(NAME, text, tl, &again, err, sizeof err);
  JKF_CHECK(rc == 0, "written-back configuration refused: %s\n%s", err, text);
  same(c, again);
  gate_config_free(again);
  free(text);
  if (own_files(c->core)) {
    build_state(c->core);
    c->core = NULL;
  }
  gate_config_free(c);
  return 0;
}

JKF_ENTRY(jkf_gate_config)
