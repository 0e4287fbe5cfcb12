/*
 * gate_request: the /auth decision of `jwtkit gate` without a socket: the
 * gateway core's gw_request_read (host and URI normalisation, route
 * selection, token extraction from Authorization, a token header and a
 * cookie) and gw_decide (the token cache, the main and the migration-mode
 * HS256 verifiers, claim headers), then the decision's count and log line.
 *
 * Set up once: a fixed configuration (below) whose key files the harness
 * writes into a private temporary directory, built with gw_state_build
 * (no JWKS fetching), and a fixed clock NOW.
 *
 * Input:
 *
 *   Name: value LF      header fields of the /auth subrequest, up to an
 *   ...                 empty line
 *   LF
 *   K claims            optional: selector byte K, then claims JSON
 *
 * When the claims part is there, the harness signs it (jwtkit_sign) with
 * the key, typ and kid that K selects and replaces every "%T" in the field
 * values with the token; so mutations reach the claim checks and the
 * header rendering with tokens that verify.
 *
 * Properties: the status is 204, 401 or 403, 403 exactly for no route or a
 * bad URI, 204 exactly for the allow reasons; an allowed request has a
 * token signed in the harness by a key of the matched route (never by a
 * key of another route or an unknown key, never by the HS256 secret
 * outside the migration route before its deadline; HS256 under another
 * route's verifier: never), and its claim headers are mapped, not empty,
 * at most header_max bytes of printable ASCII with every '%' starting a
 * %XX escape and no space at either end; on a route with
 * claim_header_failure = deny (all but "legacy") every mapping that is not
 * optional_header is there; a claim_header denial only comes from such a
 * route; the same request decided
 * again (now from the token cache when it was allowed) gets the same
 * status, the same allow/deny class and reason, and the same headers; the
 * log line of every decision is one strict JSON object.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "gate_internal.h"
#include "svc.h"
#include "common/attr.h"

#define NOW 1700000000LL

/* Signing keys the selector byte picks (K % NKEYS). */
enum { K_ADMIN, K_API_EC, K_ED, K_RSA, K_LEGACY, K_WRONG_HS, K_UNKNOWN, NKEYS };
static const char *const k_kids[NKEYS] = {"es-admin", "es-api", "ed-1", "rsa-1", "legacy", "hs-other", "es-unknown"};

/* Routes and the keys each one trusts (bit per K_*). */
static const struct {
  const char *name;
  unsigned keys;
} k_routes[] = {
    {"admin", 1u << K_ADMIN},
    {"api", 1u << K_API_EC | 1u << K_ED | 1u << K_RSA},
    {"legacy", 1u << K_ED | 1u << K_LEGACY},
    {"old", 1u << K_ADMIN},
    {"remote", 0},
};

static struct {
  int ready, verbose;
  gw_state *st;
  jwtkit_key *keys[NKEYS];
  int logfd; /* read end of the log pipe */
} g;

static const char k_legacy_secret[] = "legacy-hs256-secret-for-the-fuzz-harness-0123456789";

static char *public_jwk(jwtkit_key *k) {
  char *out = NULL;
  size_t n = 0;
  JKF_CHECK(jwtkit_key_to_jwk(k, 0, &out, &n) == JWTKIT_OK, "export");
  return out;
}

static void init(void) {
  if (g.ready) return;
  g.ready = 1;
  g.verbose = getenv("JKF_VERBOSE") != NULL;
  g.keys[K_ADMIN] = jkf_key_from_jwk(jkf_rfc7515_a3_es256, JWTKIT_ALG_ES256, k_kids[K_ADMIN]);
  g.keys[K_API_EC] = jkf_key_from_jwk(jkf_rfc7520_ec, JWTKIT_ALG_ES512, k_kids[K_API_EC]);
  g.keys[K_ED] = jkf_key_from_jwk(jkf_rfc8037_ed25519, JWTKIT_ALG_EDDSA, k_kids[K_ED]);
  g.keys[K_RSA] = jkf_key_from_jwk(jkf_rfc7520_rsa, JWTKIT_ALG_RS256, k_kids[K_RSA]);
  jwtkit_errinfo ei;
  JKF_CHECK(jwtkit_key_from_secret(&g.keys[K_LEGACY], JWTKIT_ALG_HS256, k_legacy_secret, strlen(k_legacy_secret),
                                   &ei) == JWTKIT_OK,
            "legacy key");
  g.keys[K_WRONG_HS] = jkf_key_from_jwk(jkf_rfc7520_hmac, JWTKIT_ALG_HS256, k_kids[K_WRONG_HS]);
  JKF_CHECK(jwtkit_key_generate(&g.keys[K_UNKNOWN], JWTKIT_ALG_ES256, 0, &ei) == JWTKIT_OK &&
                jwtkit_key_set_kid(g.keys[K_UNKNOWN], k_kids[K_UNKNOWN], strlen(k_kids[K_UNKNOWN])) == JWTKIT_OK,
            "unknown key");

  char *admin = public_jwk(g.keys[K_ADMIN]), *ec = public_jwk(g.keys[K_API_EC]), *ed = public_jwk(g.keys[K_ED]),
       *rsa = public_jwk(g.keys[K_RSA]);
  char set[8192], paths[4][600];
  snprintf(set, sizeof set, "{\"keys\":[%s,%s,%s]}", ec, ed, rsa);
  snprintf(paths[0], sizeof paths[0], "%s", jkf_write_file("admin.jwk", admin, strlen(admin), 0644));
  snprintf(paths[1], sizeof paths[1], "%s", jkf_write_file("api.jwks", set, strlen(set), 0644));
  snprintf(paths[2], sizeof paths[2], "%s", jkf_write_file("ed.jwk", ed, strlen(ed), 0644));
  snprintf(paths[3], sizeof paths[3], "%s",
           jkf_write_file("legacy.key", k_legacy_secret, strlen(k_legacy_secret), 0600));
  jwtkit_free(admin);
  jwtkit_free(ec);
  jwtkit_free(ed);
  jwtkit_free(rsa);
  char until[32], passed[32];
  jk_format_rfc3339(NOW + 86400, until, sizeof until);
  jk_format_rfc3339(NOW - 86400, passed, sizeof passed);

  jkf_text t = {0};
  jkf_text_printf(&t,
                  "[gate]\ntoken_cache = 1000\nmax_token = 4096\nheader_max = 64\n\n"
                  "[route admin]\nmatch_host = api.example.com\nmatch_path_prefix = /admin/\n"
                  "issuer = https://id.example.com\naudience = https://admin.example.com\nkey_file = %s\n"
                  "algs = ES256\ntyp = at+jwt\nmax_age = 15m\nrequire = client_id\nheader X-Client = client_id\n\n"
                  "[route api]\nmatch_host = api.example.com\nmatch_host = *.api.example.com\n"
                  "issuer = https://id.example.com\naudience = https://api.example.com\naudience = other\n"
                  "key_file = %s\nalgs = RS256, ES512, EdDSA\nheader X-User = sub\noptional_header X-Scope = scope\n"
                  "optional_header X-Aud = aud\nheader X-Roles = roles\ntoken_cookie = access_token\ntoken_header = X-Token\n\n"
                  "[route legacy]\nmatch_path_prefix = /legacy/\nissuer = https://old.example.com\nkey_file = %s\n"
                  "algs = EdDSA\nleeway = 0\nlegacy_hs256_secret_file = %s\nlegacy_deadline = %s\n"
                  "claim_header_failure = allow\nheader X-User = sub\n\n"
                  "[route old]\nmatch_path_prefix = /old/\nkey_file = %s\nalgs = ES256\n"
                  "legacy_hs256_secret_file = %s\nlegacy_deadline = %s\n\n"
                  "[route remote]\nmatch_host = remote.example.com\n"
                  "jwks_url = https://127.0.0.1:9/.well-known/jwks.json\nalgs = ES256\n",
                  paths[0], paths[1], paths[2], paths[3], until, paths[0], paths[3], passed);
  gate_config *cfg = NULL;
  char err[1024];
  JKF_CHECK(gate_config_parse("gate.conf", t.p, t.len, &cfg, err, sizeof err) == 0, "config: %s", err);
  jkf_text_free(&t);
  JKF_CHECK(cfg->core->nroutes == sizeof k_routes / sizeof k_routes[0], "routes");
  jk_log_set_level(JK_LOG_ERROR);
  gw_build b = {.generation = 1};
  JKF_CHECK(gw_state_build(cfg->core, &b, &g.st, err, sizeof err) == 0, "state: %s", err);
  cfg->core = NULL;
  gate_config_free(cfg);
  gw_metrics_init();

  /* decision log lines go to a pipe the harness reads back */
  int fds[2];
  JKF_CHECK(pipe(fds) == 0, "pipe");
  JKF_CHECK(fcntl(fds[0], F_SETFL, O_NONBLOCK) == 0 && fcntl(fds[1], F_SETFL, O_NONBLOCK) == 0, "O_NONBLOCK");
  g.logfd = fds[0];
  jk_log_set_fd(fds[1]);
  jk_log_set_level(JK_LOG_DEBUG);
}

/* Every line written to the log since the last call is strict JSON. */
static void check_log(void) {
  static char buf[1 << 16];
  size_t n = 0;
  for (;;) {
    ssize_t r = read(g.logfd, buf + n, sizeof buf - 1 - n);
    if (r > 0) {
      n += (size_t)r;
      if (n < sizeof buf - 1) continue;
    }
    JKF_CHECK(r >= 0 || errno == EAGAIN || errno == EWOULDBLOCK, "reading the log pipe");
    break;
  }
  size_t i = 0;
  while (i < n) {
    char *nl = memchr(buf + i, '\n', n - i);
    JKF_CHECK(nl != NULL, "a log line without its newline");
    size_t len = (size_t)(nl - (buf + i));
    if (g.verbose) fprintf(stderr, "log: %.*s\n", (int)len, buf + i);
    JKF_CHECK(jkf_json_ok(buf + i, len, 1), "log line is not strict JSON: %.*s", (int)len, buf + i);
    i += len + 1;
  }
}

/* ------------------------------------------------------------ request */

typedef struct token {
  char *tok; /* NULL: none signed */
  int key;   /* K_* */
} token;

static void sign(const char *spec, size_t n, token *t) {
  static const char *const typs[] = {"at+jwt", NULL, "application/at+jwt", ""};
  t->tok = NULL;
  if (n == 0) return;
  unsigned char sel = (unsigned char)spec[0];
  t->key = sel % NKEYS;
  jwtkit_sign_opts o = {typs[(sel / NKEYS) % 4], NULL, NULL};
  switch ((sel / (NKEYS * 4)) % 4) {
    case 1: o.kid = ""; break;                  /* none */
    case 2: o.kid = k_kids[(t->key + 1) % NKEYS]; break; /* another key's */
    case 3: o.kid = "nope"; break;
    default: break;                             /* the key's own */
  }
  size_t len = 0;
  if (jwtkit_sign(g.keys[t->key], &o, spec + 1, n - 1, &t->tok, &len, NULL) != JWTKIT_OK) t->tok = NULL;
}

/* Replace "%T" in every value by the token. */
static void substitute(jkf_fields *f, const token *t) {
  if (t->tok == NULL) return;
  for (size_t i = 0; i < f->n; i++) {
    if (strstr(f->value[i], "%T") == NULL) continue;
    jkf_text out = {0};
    for (const char *p = f->value[i]; *p;) {
      const char *m = strstr(p, "%T");
      if (m == NULL) {
        jkf_text_put(&out, p, strlen(p));
        break;
      }
      jkf_text_put(&out, p, (size_t)(m - p));
      jkf_text_put(&out, t->tok, strlen(t->tok));
      p = m + 2;
    }
    free(f->value[i]);
    f->value[i] = out.p;
  }
}

static int route_index(const char *name) {
  for (size_t i = 0; i < sizeof k_routes / sizeof k_routes[0]; i++)
    if (strcmp(k_routes[i].name, name) == 0) return (int)i;
  return -1;
}

static int uhex(unsigned char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); }

static void check(const gw_decision *d, const token *t, int used_token) {
  JKF_CHECK(d->status == 204 || d->status == 401 || d->status == 403, "status %u", d->status);
  JKF_CHECK((d->status == 204) == (d->reason < GW_R_ALLOW_COUNT), "status %u for reason %d", d->status, d->reason);
  JKF_CHECK((d->status == 403) == (d->reason == GW_R_NO_ROUTE || d->reason == GW_R_BAD_URI), "403 / reason %d",
            d->reason);
  JKF_CHECK(d->reason != GW_R_CLAIM_HEADER || (d->rc != NULL && !d->rc->claim_header_allow),
            "claim_header denial on a route that allows failures");
  JKF_CHECK(d->reason >= 0 && d->reason < GW_R_COUNT, "reason %d", d->reason);
  JKF_CHECK(memchr(d->info.msg, '\0', sizeof d->info.msg) && memchr(d->info.field, '\0', sizeof d->info.field),
            "errinfo");
  JKF_CHECK(d->status == 401 ? d->www_authenticate != NULL &&
                                    strcmp(d->www_authenticate, d->reason == GW_R_MISSING_TOKEN
                                                                    ? "Bearer"
                                                                    : "Bearer error=\"invalid_token\"") == 0
                              : d->www_authenticate == NULL,
            "status %u with challenge %s", d->status, d->www_authenticate ? d->www_authenticate : "(none)");
  JKF_CHECK(d->refetch == NULL || (d->route != NULL && strcmp(d->route, "remote") == 0), "a refetch on route %s",
            d->route ? d->route : "-");
  if (d->status != 204) {
    JKF_CHECK(d->nhv == 0, "headers on a denial");
    return;
  }
  JKF_CHECK(d->have_token && d->route != NULL && d->rc != NULL, "allowed without a token or route");
  int ri = route_index(d->route);
  JKF_CHECK(ri >= 0, "route %s", d->route);
  JKF_CHECK(used_token && t->tok != NULL, "allowed a token the harness did not sign (route %s)", d->route);
  JKF_CHECK(k_routes[ri].keys & (1u << t->key), "route %s allowed a token of key %s", d->route, k_kids[t->key]);
  int legacy = d->reason == GW_R_LEGACY || d->reason == GW_R_LEGACY_CACHED;
  JKF_CHECK(legacy == (t->key == K_LEGACY), "legacy reason %d for key %s", d->reason, k_kids[t->key]);
  size_t hmax = gw_state_config(g.st)->header_max;
  unsigned long long present = 0;
  for (size_t i = 0; i < d->nhv; i++) {
    JKF_CHECK(d->hv[i].map < d->rc->nheaders, "header map %u", d->hv[i].map);
    const char *hn = d->rc->headers[d->hv[i].map].name;
    JKF_CHECK(d->hv[i].name == hn, "header %u named %s, mapped as %s", d->hv[i].map, d->hv[i].name, hn);
    const unsigned char *v = (const unsigned char *)d->hv[i].val;
    size_t n = d->hv[i].len;
    JKF_CHECK(n > 0 && n <= hmax, "header %s of %zu bytes", hn, n);
    for (size_t k = 0; k < n; k++) {
      JKF_CHECK(v[k] >= 0x20 && v[k] <= 0x7e, "byte %#x outside printable ASCII in header %s", v[k], hn);
      if (v[k] == '%')
        JKF_CHECK(k + 2 < n && uhex(v[k + 1]) && uhex(v[k + 2]), "a '%%' that is not %%XX in header %s", hn);
    }
    JKF_CHECK(v[0] != ' ' && v[n - 1] != ' ', "a space at an end of header %s (HTTP strips it)", hn);
    for (size_t k = 0; k < i; k++) JKF_CHECK(d->hv[k].map != d->hv[i].map, "header twice");
    present |= 1ull << d->hv[i].map;
  }
  /* claim_header_failure = deny: every mapping that is not optional_header
   * reached the answer */
  if (!d->rc->claim_header_allow)
    for (size_t m = 0; m < d->rc->nheaders; m++)
      JKF_CHECK(d->rc->headers[m].optional || (present >> m & 1), "route %s allowed without header %s", d->route,
                d->rc->headers[m].name);
}

static int allow_class(int reason) {
  switch (reason) {
    case GW_R_VERIFIED:
    case GW_R_CACHED:
      return 1;
    case GW_R_LEGACY:
    case GW_R_LEGACY_CACHED:
      return 2;
    default:
      return 0;
  }
}

static void same(const gw_decision *a, const gw_decision *b) {
  JKF_CHECK(a->status == b->status, "decided again: %u, then %u", a->status, b->status);
  if (a->status != 204) {
    JKF_CHECK(a->reason == b->reason, "decided again: reason %d, then %d", a->reason, b->reason);
    return;
  }
  JKF_CHECK(allow_class(a->reason) == allow_class(b->reason), "allowed as %d, then %d", a->reason, b->reason);
  JKF_CHECK(a->nhv == b->nhv, "%zu headers, then %zu", a->nhv, b->nhv);
  for (size_t i = 0; i < a->nhv; i++) {
    size_t k = 0;
    while (k < b->nhv && b->hv[k].map != a->hv[i].map) k++;
    JKF_CHECK(k < b->nhv && a->hv[i].len == b->hv[k].len && memcmp(a->hv[i].val, b->hv[k].val, a->hv[i].len) == 0,
              "header %u differs the second time", a->hv[i].map);
  }
  JKF_CHECK(a->kid_len == b->kid_len && (a->kid_len == 0 || memcmp(a->kid, b->kid, a->kid_len) == 0), "kid");
}

/* Decide; a refetch the decision asks for is tried (no transport: the
 * source answers at once, so nothing parks). */
static void decide(const jkf_fields *f, gw_decision *d) {
  gw_fields fl = {jkf_fields_get, jkf_fields_each, JK_UNCONST(f)};
  gw_request rq;
  gw_request_read(&rq, g.st, &fl);
  gw_decide(g.st, &rq, NOW, 0, d);
  if (d->refetch != NULL) JKF_CHECK(gw_source_refetch(d->refetch, 0, d) == 0, "parked without a transport");
  gw_decision_count(d);
  gw_decision_log(d);
}

int jkf_gate_request(const uint8_t *data, size_t size) {
  init();
  jkf_fields f;
  size_t rest = 0;
  jkf_fields_parse(&f, (const char *)data, size, &rest);
  token t = {NULL, 0};
  int used = 0;
  if (rest < size) {
    sign((const char *)data + rest, size - rest, &t);
    for (size_t i = 0; i < f.n; i++) used |= strstr(f.value[i], "%T") != NULL;
    substitute(&f, &t);
  }
  gw_decision d1, d2;
  decide(&f, &d1);
  if (g.verbose) fprintf(stderr, "gate_request: %u reason %d route %s\n", d1.status, d1.reason, d1.route ? d1.route : "-");
  check(&d1, &t, used);
  decide(&f, &d2);
  check(&d2, &t, used);
  same(&d1, &d2);
  check_log();
  gw_decision_free(&d1);
  gw_decision_free(&d2);
  jkf_fields_free(&f);
  jwtkit_free(t.tok);
  return 0;
}

JKF_ENTRY(jkf_gate_request)
