/*
 * ui_respond: one request, decided without a socket.
 *
 * In this order, for every request:
 *   1. Host must be an address this workbench is bound to (or localhost on
 *      loopback): a page of another site whose name was made to resolve to
 *      127.0.0.1 (DNS rebinding) sends its own name and gets 403;
 *   2. Origin, when the browser sends one, must be http:// and that Host: a
 *      cross-site request gets 403;
 *   3. /api/: Sec-Fetch-Site, when sent, must be same-origin; the per-start
 *      secret must come in the X-Jwtkit-Ui-Secret header (compared in
 *      constant time), else 403; POST only, a JSON body (at most 1 MiB:
 *      http.c answers 413 to more) parsed by the library's strict parser
 *      (400);
 *   4. anything else is an embedded asset (GET or HEAD).
 * Every answer carries ui_security_headers (http.c adds them).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "core/alloc.h"
#include "ui_internal.h"

const char *const ui_security_headers[][2] = {
    {"Content-Security-Policy",
     "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'"},
    {"X-Content-Type-Options", "nosniff"},
    {"Referrer-Policy", "no-referrer"},
    {"X-Frame-Options", "DENY"},
    {"Cache-Control", "no-store"},
    {"Cross-Origin-Opener-Policy", "same-origin"},
    {"Cross-Origin-Resource-Policy", "same-origin"},
    {NULL, NULL}};

/* -------------------------------------------------------------- hosts */

static void add_host(ui_app *app, int bracket, const char *addr, unsigned port) {
  if (app->nhosts < UI_MAX_HOSTS)
    snprintf(app->hosts[app->nhosts++], sizeof app->hosts[0], bracket ? "[%s]:%u" : "%s:%u", addr, port);
}

void ui_app_hosts(ui_app *app, const jk_listen *l, unsigned port) {
  app->nhosts = 0;
  app->any_ip = 0;
  app->port = port;
  char addr[INET6_ADDRSTRLEN];
  int loopback = 0;
  if (l->family == AF_INET) {
    const struct in_addr *a = &((const struct sockaddr_in *)(const void *)&l->ss)->sin_addr;
    uint32_t v = ntohl(a->s_addr);
    inet_ntop(AF_INET, a, addr, sizeof addr);
    loopback = (v >> 24) == 127;
    app->any_ip = v == 0;
    if (app->any_ip) snprintf(addr, sizeof addr, "127.0.0.1");
    add_host(app, 0, addr, port);
  } else {
    const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)&l->ss)->sin6_addr;
    inet_ntop(AF_INET6, a, addr, sizeof addr);
    loopback = IN6_IS_ADDR_LOOPBACK(a);
    app->any_ip = IN6_IS_ADDR_UNSPECIFIED(a);
    if (app->any_ip) snprintf(addr, sizeof addr, "::1");
    add_host(app, 1, addr, port);
  }
  app->loopback = loopback;
  if (loopback || app->any_ip) add_host(app, 0, "localhost", port);
}

void ui_app_url(const ui_app *app, char *out, size_t cap) {
  snprintf(out, cap, "http://%s/?token=%s", app->nhosts ? app->hosts[0] : "127.0.0.1", app->secret);
}

static int host_ok(const ui_app *app, const char *host) {
  if (host == NULL || *host == '\0') return 0;
  for (size_t i = 0; i < app->nhosts; i++)
    if (strcasecmp(host, app->hosts[i]) == 0) return 1;
  if (!app->any_ip) return 0;
  /* a wildcard address: an IP literal (no name: nothing to rebind) with our port */
  jk_listen l;
  return strncasecmp(host, "localhost:", 10) != 0 && jk_parse_listen(host, 0, &l, NULL) == 0 && l.port == app->port;
}

static int origin_ok(const char *origin, const char *host) {
  return strncmp(origin, "http://", 7) == 0 && strcasecmp(origin + 7, host) == 0;
}

static int secret_ok(const ui_app *app, const char *given) {
  return given != NULL && strlen(given) == UI_SECRET_LEN && jk_ct_equal(given, app->secret, UI_SECRET_LEN);
}

/* ------------------------------------------------------------ answers */

static int fixed(ui_resp *r, unsigned status, const char *text) {
  r->status = status;
  r->ctype = "text/plain; charset=utf-8";
  r->body = (const unsigned char *)text;
  r->len = strlen(text);
  return 0;
}

static int refuse(ui_resp *r, const char *why, const char *text) {
  fixed(r, 403, text);
  r->refused = why;
  return 0;
}

void ui_resp_free(ui_resp *r) {
  if (r->owned != NULL) {
    jk_wipe(r->owned, r->len);
    jk_free(r->owned);
  }
  r->owned = NULL;
  r->body = NULL;
}

/* {"ok":false,"error":..,"field":..} */
static int api_error(ui_resp *r, unsigned status, const char *field, const char *msg) {
  jk_buf b;
  jk_buf_init_max(&b, 4096);
  jk_buf_puts(&b, "{\"ok\":false");
  ui_out_cstr(&b, "error", msg);
  ui_out_cstr(&b, "field", field != NULL && field[0] ? field : NULL);
  jk_buf_puts(&b, "}\n");
  size_t len;
  char *text = jk_buf_take(&b, &len);
  if (text == NULL) return fixed(r, 500, "out of memory\n");
  r->status = status;
  r->ctype = "application/json";
  r->owned = text;
  r->body = (const unsigned char *)text;
  r->len = len;
  return 0;
}

/* --------------------------------------------------------------- API */

static const struct {
  const char *path;
  int (*fn)(ui_call *c);
} k_api[] = {
    {"/api/info", ui_api_info},         {"/api/decode", ui_api_decode}, {"/api/verify", ui_api_verify},
    {"/api/generate", ui_api_generate}, {"/api/pem", ui_api_pem},       {"/api/jwks", ui_api_jwks},
    {"/api/plan", ui_api_plan},
};

int ui_known_path(const char *path) {
  for (size_t k = 0; k < sizeof k_api / sizeof k_api[0]; k++)
    if (strcmp(path, k_api[k].path) == 0) return 1;
  for (const ui_asset *a = ui_assets; a->path != NULL; a++)
    if (strcmp(path, a->path) == 0) return 1;
  return strcmp(path, "/") == 0;
}

static int json_ctype(const char *ct) {
  static const char want[] = "application/json";
  if (ct == NULL || strncasecmp(ct, want, sizeof want - 1) != 0) return 0;
  const char *rest = ct + sizeof want - 1;
  while (*rest == ' ' || *rest == '\t') rest++;
  return *rest == '\0' || *rest == ';';
}

static int api(const ui_app *app, const ui_req *rq, int64_t now, ui_resp *r) {
  const char *site = rq->get(rq->ctx, "Sec-Fetch-Site");
  if (site != NULL && strcmp(site, "same-origin") != 0)
    return refuse(r, "fetch-site", "403 Forbidden: the API answers only this workbench's own page\n");
  if (!secret_ok(app, rq->get(rq->ctx, UI_SECRET_HEADER)))
    return refuse(r, "secret",
                  "403 Forbidden: the API needs the secret of the URL that `jwtkit ui` printed (reopen that URL)\n");
  size_t k = 0;
  while (k < sizeof k_api / sizeof k_api[0] && strcmp(rq->path, k_api[k].path) != 0) k++;
  if (k == sizeof k_api / sizeof k_api[0]) return api_error(r, 404, NULL, "no such API endpoint");
  if (strcmp(rq->method, "POST") != 0) {
    r->allow = "POST";
    return api_error(r, 405, NULL, "the API takes POST with a JSON body");
  }
  if (!json_ctype(rq->get(rq->ctx, "Content-Type")))
    return api_error(r, 415, NULL, "the request body must be application/json");

  ui_in *in = jk_calloc(1, sizeof *in);
  if (in == NULL) return fixed(r, 500, "out of memory\n");
  jwtkit_errinfo info = {0};
  uint32_t needed = 0;
  jwtkit_err rc = jk_json_parse(&in->d, rq->body != NULL ? rq->body : "", rq->body_len, in->nodes, UI_MAX_JSON_VALUES,
                                1, &needed, &info);
  if (rc != JWTKIT_OK) {
    jk_free(in);
    char msg[300];
    if (rc == JWTKIT_ERR_TOO_LARGE && needed > 0)
      snprintf(msg, sizeof msg, "the request holds %u JSON values; at most %u are read", needed, UI_MAX_JSON_VALUES);
    else
      snprintf(msg, sizeof msg, "the request body: %s", info.msg[0] ? info.msg : jwtkit_strerror(rc));
    return api_error(r, 400, NULL, msg);
  }
  jk_buf out;
  jk_buf_init_max(&out, UI_MAX_ANSWER);
  jk_buf_puts(&out, "{\"ok\":true");
  ui_call c = {.app = app, .in = in, .now = now, .out = &out, .status = 200};
  int ok = k_api[k].fn(&c) == 0;
  for (size_t i = 0; i < in->ns; i++) jk_free_secret(in->s[i], in->slen[i]);
  jk_free(in);
  if (!ok) {
    jk_buf_free_wipe(&out);
    return api_error(r, c.status, c.field, c.err);
  }
  jk_buf_puts(&out, "}\n");
  size_t len;
  char *text = jk_buf_take(&out, &len);
  if (text == NULL) return api_error(r, 500, NULL, "the answer is over 8 MiB, or memory ran out");
  r->status = 200;
  r->ctype = "application/json";
  r->owned = text;
  r->body = (const unsigned char *)text;
  r->len = len;
  return 0;
}

/* ------------------------------------------------------------ the page */

static int asset(const ui_req *rq, ui_resp *r) {
  const char *path = strcmp(rq->path, "/") == 0 ? "/index.html" : rq->path;
  const ui_asset *a = ui_assets;
  while (a->path != NULL && strcmp(a->path, path) != 0) a++;
  if (a->path == NULL) return fixed(r, 404, "404 Not Found\n");
  if (strcmp(rq->method, "GET") != 0 && strcmp(rq->method, "HEAD") != 0) {
    r->allow = "GET, HEAD";
    return fixed(r, 405, "405 Method Not Allowed\n");
  }
  r->status = 200;
  r->ctype = a->ctype;
  r->body = a->data;
  r->len = a->len;
  return 0;
}

void ui_respond(const ui_app *app, const ui_req *rq, int64_t now, ui_resp *r) {
  memset(r, 0, sizeof *r);
  const char *host = rq->get(rq->ctx, "Host");
  if (!host_ok(app, host)) {
    refuse(r, "host", "403 Forbidden: the Host is not this workbench's address; open the URL `jwtkit ui` printed\n");
    return;
  }
  const char *origin = rq->get(rq->ctx, "Origin");
  if (origin != NULL && !origin_ok(origin, host))
    refuse(r, "origin", "403 Forbidden: a request from another origin\n");
  else if (strncmp(rq->path, "/api/", 5) == 0)
    api(app, rq, now, r);
  else
    asset(rq, r);
}

/* POST /api/info {}: what the page shows at start. */
int ui_api_info(ui_call *c) {
  ui_out_cstr(c->out, "version", jwtkit_version());
  if (c->app->keyring != NULL) {
    char where[512];
    jwtkit_keyring_location_redact(c->app->keyring, where, sizeof where);
    ui_out_cstr(c->out, "keyring", where);
  } else {
    ui_out_cstr(c->out, "keyring", NULL);
  }
  ui_out_int(c->out, "now", c->now);
  return 0;
}
