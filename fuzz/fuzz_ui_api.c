/*
 * ui_api: one request to `jwtkit ui` without a socket (ui_respond,
 * services/ui/route.c: the Host, Origin and secret checks, the assets and
 * every API handler: decode, verify, generate, pem, jwks, plan, info).
 *
 * Set up once: an app bound (on paper) to 127.0.0.1:8080 with a fixed
 * secret, a JWKS fetcher that serves one fixed set for one URL, plans made
 * under the harness's temporary directory, a fixed clock NOW.
 *
 * Input:
 *
 *   METHOD PATH LF          the request line
 *   Name: value LF          header fields, up to an empty line
 *   ...
 *   LF
 *   body                    the rest
 *
 * In field values and the body, %S becomes the secret and %H the host
 * (127.0.0.1:8080); in the body %T becomes a token signed by the fixed
 * ES256 key (iss https://issuer.example, aud api, valid at NOW) and %J the
 * public JWK Set of that key as the content of a JSON string, so mutations
 * reach the handlers with requests that pass the checks.
 *
 * JKF_VERBOSE in the environment prints each answer's start.
 *
 * Properties: the status is one of those the workbench gives, never 500;
 * a request whose Host is not the app's, or that carries an Origin other
 * than http://<its Host>, is 403; an /api/ request without the secret is
 * 403, never answered; every /api/ answer but a 403 is one strict JSON
 * object, {"ok":true... exactly when 200; no answer contains the secret
 * (unless the request's body did);
 * a verify answer is "valid":true exactly when none of its checks failed;
 * decode, verify, pem, jwks, info and the assets answer the same request
 * the same way twice.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common.h"
#include "core/alloc.h"
#include "svc.h"
#include "ui_internal.h"
#include "common/attr.h"

#define NOW 1700000000LL
#define SECRET "k1u3Yx2Qv9bWn5Tz0aLm8Rc4Hd7Gf6Js2Pq1Ew3Ny5Q" /* 43 characters, as a real one */
#define HOST "127.0.0.1:8080"
#define JWKS_URL "https://issuer.example/jwks"

static struct {
  int ready, verbose;
  ui_app app;
  jwtkit_key *key;
  char *token;
  char *jwks;     /* the public set */
  char *jwks_esc; /* the same inside a JSON string */
} g;

static int fetch(const char *url, char **body, size_t *len, char *err, size_t cap) {
  if (strcmp(url, JWKS_URL) != 0) {
    snprintf(err, cap, "no such URL in the harness");
    return 502;
  }
  *len = strlen(g.jwks);
  *body = jk_malloc(*len + 1);
  JKF_CHECK(*body != NULL, "out of memory");
  memcpy(*body, g.jwks, *len + 1);
  return 0;
}

static void setup(void) {
  if (g.ready) return;
  g.ready = 1;
  g.verbose = getenv("JKF_VERBOSE") != NULL;
  jk_listen l;
  JKF_CHECK(jk_parse_listen(HOST, 0, &l, NULL) == 0, "listen");
  ui_app_hosts(&g.app, &l, l.port);
  JKF_CHECK(strlen(SECRET) == UI_SECRET_LEN, "the harness's secret has %zu characters", strlen(SECRET));
  snprintf(g.app.secret, sizeof g.app.secret, "%s", SECRET);
  g.app.fetch = fetch;
  g.app.plan_dir = jkf_tmpdir();
  g.key = jkf_key_from_jwk(jkf_rfc7515_a3_es256, JWTKIT_ALG_ES256, "es-1");
  char claims[160];
  snprintf(claims, sizeof claims, "{\"iss\":\"https://issuer.example\",\"aud\":\"api\",\"iat\":%lld,\"exp\":%lld}",
           NOW - 10, NOW + 3600);
  size_t n;
  JKF_CHECK(jwtkit_sign(g.key, NULL, claims, strlen(claims), &g.token, &n, NULL) == JWTKIT_OK, "sign");
  jwtkit_jwks *set = jwtkit_jwks_new();
  JKF_CHECK(set != NULL && jwtkit_jwks_add(set, g.key) == JWTKIT_OK, "set");
  JKF_CHECK(jwtkit_jwks_to_json(set, &g.jwks, &n) == JWTKIT_OK, "set json");
  jwtkit_jwks_free(set);
  jkf_text t = {0};
  for (const char *p = g.jwks; *p; p++) jkf_text_put(&t, *p == '"' ? "\\\"" : p, *p == '"' ? 2 : 1);
  g.jwks_esc = t.p;
}

/* text with the placeholders replaced */
static void expand(jkf_text *out, const char *s, size_t n, int body) {
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '%' && i + 1 < n) {
      const char *r = s[i + 1] == 'S' ? SECRET : s[i + 1] == 'H' ? HOST : NULL;
      if (body && s[i + 1] == 'T') r = g.token;
      if (body && s[i + 1] == 'J') r = g.jwks_esc;
      if (r != NULL) {
        jkf_text_put(out, r, strlen(r));
        i++;
        continue;
      }
    }
    jkf_text_put(out, s + i, 1);
  }
}

static const unsigned k_statuses[] = {200, 400, 403, 404, 405, 415, 422, 501, 502};

static int status_known(unsigned s) {
  for (size_t i = 0; i < sizeof k_statuses / sizeof k_statuses[0]; i++)
    if (k_statuses[i] == s) return 1;
  return 0;
}

static void check(const ui_req *rq, const ui_resp *r, const jkf_fields *f) {
  const char *host = jkf_fields_get(JK_UNCONST(f), "Host"), *origin = jkf_fields_get(JK_UNCONST(f), "Origin");
  const char *secret = jkf_fields_get(JK_UNCONST(f), UI_SECRET_HEADER);
  int api = strncmp(rq->path, "/api/", 5) == 0;
  JKF_CHECK(status_known(r->status), "status %u", r->status);
  int host_ok = host != NULL && (strcasecmp(host, HOST) == 0 || strcasecmp(host, "localhost:8080") == 0);
  if (!host_ok) JKF_CHECK(r->status == 403, "foreign Host \"%s\" answered %u", host ? host : "(none)", r->status);
  if (origin != NULL && !(host != NULL && strncmp(origin, "http://", 7) == 0 && strcasecmp(origin + 7, host) == 0))
    JKF_CHECK(r->status == 403, "foreign Origin \"%s\" answered %u", origin, r->status);
  if (api && (secret == NULL || strcmp(secret, SECRET) != 0))
    JKF_CHECK(r->status == 403, "%s without the secret answered %u", rq->path, r->status);
  const char *b = (const char *)r->body;
  /* (a body that holds it may hear it back in a message about that value) */
  if (rq->body == NULL || !jkf_contains(rq->body, rq->body_len, SECRET))
    JKF_CHECK(!jkf_contains(b, r->len, SECRET), "the answer holds the secret");
  if (api && r->status != 403) {
    JKF_CHECK(jkf_json_ok(b, r->len, 1), "%s: the answer is not one strict JSON object", rq->path);
    int ok = r->len >= 10 && memcmp(b, "{\"ok\":true", 10) == 0;
    JKF_CHECK(ok == (r->status == 200), "%s: ok %d with status %u", rq->path, ok, r->status);
  }
  if (r->status == 200 && strcmp(rq->path, "/api/verify") == 0) {
    int valid = jkf_contains(b, r->len, "\"valid\":true"), failed = jkf_contains(b, r->len, "\"status\":\"fail\"");
    JKF_CHECK(valid != failed, "verify: valid %d but a failed check %d", valid, failed);
  }
}

int jkf_ui_api(const uint8_t *data, size_t size) {
  setup();
  const char *text = (const char *)data;
  const char *nl = memchr(text, '\n', size);
  if (nl == NULL) return 0;
  char method[16], path[256];
  const char *sp = memchr(text, ' ', (size_t)(nl - text));
  if (sp == NULL || (size_t)(sp - text) >= sizeof method || (size_t)(nl - sp - 1) >= sizeof path) return 0;
  memcpy(method, text, (size_t)(sp - text));
  method[sp - text] = '\0';
  memcpy(path, sp + 1, (size_t)(nl - sp - 1));
  path[nl - sp - 1] = '\0';
  if (path[0] != '/') return 0;
  /* the header block ends at the first empty line; the body follows */
  size_t off = (size_t)(nl - text) + 1, hdr_end = size, body_at = size, rest = 0;
  for (size_t i = off; i < size;) {
    const char *e = memchr(text + i, '\n', size - i);
    size_t end = e != NULL ? (size_t)(e - text) : size;
    if (end == i || (end == i + 1 && text[i] == '\r')) {
      hdr_end = i;
      body_at = e != NULL ? end + 1 : size;
      break;
    }
    i = end + 1;
  }
  jkf_text raw = {0}, body = {0};
  expand(&raw, text + off, hdr_end - off, 0);
  jkf_fields f;
  jkf_fields_parse(&f, raw.p ? raw.p : "", raw.len, &rest);
  expand(&body, text + body_at, size - body_at, 1);
  /* generating RSA keys takes seconds: the library's keygen is not what is fuzzed here */
  int slow = strcmp(path, "/api/generate") == 0 && body.p != NULL &&
             (jkf_contains(body.p, body.len, "\"RS") || jkf_contains(body.p, body.len, "\"PS"));
  if (!slow) {
    ui_req rq = {.method = method,
                 .path = path,
                 .get = jkf_fields_get,
                 .ctx = &f,
                 .body = body.p,
                 .body_len = body.len};
    ui_resp r;
    ui_respond(&g.app, &rq, NOW, &r);
    if (g.verbose) fprintf(stderr, "ui_api: %s %s -> %u %.*s\n", method, path, r.status, (int)(r.len < 200 ? r.len : 200),
                           (const char *)r.body);
    check(&rq, &r, &f);
    int again = strcmp(path, "/api/generate") != 0 && strcmp(path, "/api/plan") != 0;
    if (again) {
      ui_resp r2;
      ui_respond(&g.app, &rq, NOW, &r2);
      JKF_CHECK(r2.status == r.status && r2.len == r.len && memcmp(r2.body, r.body, r.len) == 0,
                "%s %s answered differently the second time (%u, %u)", method, path, r.status, r2.status);
      ui_resp_free(&r2);
    }
    ui_resp_free(&r);
  }
  jkf_text_free(&body);
  jkf_text_free(&raw);
  jkf_fields_free(&f);
  return 0;
}

JKF_ENTRY(jkf_ui_api)
