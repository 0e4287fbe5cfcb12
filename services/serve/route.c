/* Routing and the checks a request gets before its body is read, without
 * I/O: header fields come through sv_headers and the decision is an
 * sv_answer, which the libmicrohttpd glue (http.c) and the fuzz harness
 * (fuzz/fuzz_serve_http.c) turn into a response or check.
 *
 *   GET  /.well-known/jwks.json                   the keyring's public keys
 *   GET  /.well-known/openid-configuration        discovery (OpenID form)
 *   GET  /.well-known/oauth-authorization-server  discovery (RFC 8414)
 *   POST /token                                   client credentials grant
 *   GET  /healthz, GET /metrics */
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/parse.h"
#include "core/alloc.h"
#include "serve.h"

void sv_answer_init(sv_answer *a) {
  memset(a, 0, sizeof *a);
  a->token_error = -1;
}

void sv_answer_free(sv_answer *a) {
  if (a->json != NULL) jk_free_secret(a->json, strlen(a->json));
  a->json = NULL;
}

void sv_answer_text(sv_answer *a, unsigned status, const char *text, const char *allow) {
  a->status = status;
  a->token_error = -1;
  a->text = text;
  a->allow = allow;
}

void sv_answer_token_error(sv_answer *a, unsigned status, enum sv_token_error e, const char *desc,
                           const char *allow) {
  a->status = status;
  a->token_error = (int)e;
  a->text = desc;
  a->allow = allow;
}

char *sv_token_error_body(enum sv_token_error e, const char *desc, size_t *len) {
  const char *name = sv_token_error_name(e);
  jk_buf b;
  jk_buf_init_max(&b, 4096);
  jk_buf_puts(&b, "{\"error\":");
  jk_buf_json_str(&b, name, strlen(name));
  if (desc != NULL) {
    jk_buf_puts(&b, ",\"error_description\":");
    jk_buf_json_str(&b, desc, strlen(desc));
  }
  jk_buf_putc(&b, '}');
  return jk_buf_take(&b, len);
}

static enum sv_route route_of(const char *url, const sv_confsnap *cs) {
  static const struct {
    const char *path;
    enum sv_route r;
  } k_map[] = {{"/.well-known/jwks.json", SV_R_JWKS},
               {"/.well-known/openid-configuration", SV_R_OPENID},
               {"/.well-known/oauth-authorization-server", SV_R_OAUTH},
               {"/token", SV_R_TOKEN},
               {"/healthz", SV_R_HEALTHZ},
               {"/metrics", SV_R_METRICS}};
  const char *ip = cs ? cs->issuer_path : "";
  size_t il = strlen(ip);
  if (il > 0) {
    /* RFC 8414 §3: the well-known segment goes between host and path */
    if (strncmp(url, "/.well-known/oauth-authorization-server", 39) == 0 && strcmp(url + 39, ip) == 0)
      return SV_R_OAUTH;
    /* behind a proxy that keeps the issuer's path */
    if (strncmp(url, ip, il) == 0 && url[il] == '/') url += il;
  }
  for (size_t i = 0; i < sizeof k_map / sizeof k_map[0]; i++)
    if (strcmp(url, k_map[i].path) == 0) return k_map[i].r;
  return SV_R_OTHER;
}

typedef struct inm_ctx {
  const char *etag;
  int matched;
} inm_ctx;

static int inm_each(void *cls, const char *key, const char *value) {
  inm_ctx *x = cls;
  if (key && value && strcasecmp(key, "If-None-Match") == 0 && sv_if_none_match(value, x->etag)) x->matched = 1;
  return 1;
}

int sv_http_not_modified(const sv_headers *h, const char *etag) {
  inm_ctx x = {etag, 0};
  h->each(h->ctx, inm_each, &x);
  return x.matched;
}

/* application/x-www-form-urlencoded, with optional parameters (charset). */
static int form_content_type(const char *ct) {
  static const char want[] = "application/x-www-form-urlencoded";
  if (ct == NULL) return 0;
  while (*ct == ' ' || *ct == '\t') ct++;
  if (strncasecmp(ct, want, sizeof want - 1) != 0) return 0;
  const char *rest = ct + sizeof want - 1;
  while (*rest == ' ' || *rest == '\t') rest++;
  return *rest == '\0' || *rest == ';';
}

int sv_http_head(const sv_confsnap *cs, const char *method, const char *url, const sv_headers *h, sv_head *hd,
                 sv_answer *a) {
  sv_answer_init(a);
  hd->method = !strcmp(method, "GET")    ? SV_M_GET
               : !strcmp(method, "HEAD") ? SV_M_HEAD
               : !strcmp(method, "POST") ? SV_M_POST
                                         : SV_M_OTHER;
  hd->route = route_of(url, cs);
  hd->length = -1;
  hd->too_large = 0;
  if (hd->route == SV_R_OTHER) {
    sv_answer_text(a, 404, "not found\n", NULL);
    return 1;
  }
  if (hd->route == SV_R_TOKEN) {
    if (hd->method != SV_M_POST) {
      sv_answer_token_error(a, 405, SV_TE_INVALID_REQUEST, "the token endpoint takes POST", "POST");
      return 1;
    }
    if (!form_content_type(h->get(h->ctx, "Content-Type"))) {
      sv_answer_token_error(a, 415, SV_TE_INVALID_REQUEST, "the body must be application/x-www-form-urlencoded",
                            NULL);
      return 1;
    }
  } else if (hd->method != SV_M_GET && hd->method != SV_M_HEAD) {
    sv_answer_text(a, 405, "method not allowed\n", "GET, HEAD");
    return 1;
  }
  const char *cl = h->get(h->ctx, "Content-Length");
  if (cl != NULL) {
    uint64_t n;
    if (jk_parse_u64(cl, 0, SV_MAX_BODY, &n) != 0) {
      hd->too_large = 1;
      sv_http_too_large(hd->route, a);
      return 1;
    }
    hd->length = (long long)n;
  }
  return 0;
}

void sv_http_too_large(enum sv_route route, sv_answer *a) {
  if (route == SV_R_TOKEN) sv_answer_token_error(a, 413, SV_TE_INVALID_REQUEST, "the body is larger than 16 KiB", NULL);
  else sv_answer_text(a, 413, "request body too large\n", NULL);
}
