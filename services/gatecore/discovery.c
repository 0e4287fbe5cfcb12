/*
 * issuer_discovery: where an issuer's metadata document is (OpenID Connect
 * Discovery 1.0 §4, RFC 8414 §3) and what the gate takes from it (the
 * jwks_uri, after the document's issuer matched).  Pure: the front end's
 * transport fetches.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "codec/json.h"
#include "core/alloc.h"
#include "gw_internal.h"

#define OIDC_WELL_KNOWN "/.well-known/openid-configuration"
#define OAUTH_WELL_KNOWN "/.well-known/oauth-authorization-server"

int gw_discovery_url(const char *issuer, int which, char *out, size_t cap) {
  size_t n = strlen(issuer);
  while (n > 0 && issuer[n - 1] == '/') n--; /* "https://id.example/" -> no double slash */
  int w;
  if (which == 0) {
    w = snprintf(out, cap, "%.*s" OIDC_WELL_KNOWN, (int)n, issuer);
  } else {
    /* RFC 8414 §3.1: the well-known part goes between the host and the
     * issuer's path */
    const char *scheme_end = strstr(issuer, "://");
    const char *path = scheme_end ? memchr(scheme_end + 3, '/', n - (size_t)(scheme_end + 3 - issuer)) : NULL;
    size_t host_len = path ? (size_t)(path - issuer) : n;
    w = snprintf(out, cap, "%.*s" OAUTH_WELL_KNOWN "%.*s", (int)host_len, issuer, (int)(n - host_len),
                 issuer + host_len);
  }
  return w < 0 || (size_t)w >= cap ? -1 : 0;
}

/* 1 when the URL's host is 127.0.0.0/8, [::1] or localhost. */
static int loopback_host(const char *url) {
  const char *h = strstr(url, "://");
  if (h == NULL) return 0;
  h += 3;
  const char *at = strpbrk(h, "@/?#");
  if (at != NULL && *at == '@') return 0; /* userinfo: never */
  size_t n = strcspn(h, ":/?#");
  if (h[0] == '[') return strncasecmp(h, "[::1]", 5) == 0 && strchr(":/?#", h[5]) != NULL;
  if (n == 9 && strncasecmp(h, "localhost", 9) == 0) return 1;
  if (n < 9 || strncmp(h, "127.", 4) != 0) return 0;
  int dots = 0;
  for (size_t i = 0; i < n; i++) {
    if (h[i] == '.') dots++;
    else if (h[i] < '0' || h[i] > '9') return 0;
  }
  return dots == 3;
}

int gw_discovery_read(const char *body, size_t len, const char *issuer, int allow_http, char *jwks_uri, size_t cap,
                      char *err, size_t errcap) {
  jk_jdoc doc;
  jwtkit_errinfo info = {0};
  if (len == 0) {
    snprintf(err, errcap, "the metadata document is empty");
    return -1;
  }
  if (jk_json_parse_alloc(&doc, body, len, 1, &info) != JWTKIT_OK) {
    snprintf(err, errcap, "the metadata document is not a JSON object (%s)", info.msg);
    return -1;
  }
  static const char *const names[] = {"issuer", "jwks_uri"};
  int idx[2];
  jk_json_get_many(&doc, 0, names, 2, idx);
  int rc = -1;
  char *iss = NULL, *uri = NULL;
  size_t il = 0, ul = 0;
  if (idx[0] < 0 || doc.nodes[idx[0]].type != JK_J_STRING || (iss = jk_json_strdup(&doc, (uint32_t)idx[0], &il)) == NULL) {
    snprintf(err, errcap, "the metadata document has no \"issuer\" string");
    goto out;
  }
  if (il != strlen(issuer) || memcmp(iss, issuer, il) != 0) {
    snprintf(err, errcap, "the metadata document names issuer \"%.200s\", not the configured \"%.200s\"", iss, issuer);
    goto out;
  }
  if (idx[1] < 0 || doc.nodes[idx[1]].type != JK_J_STRING || (uri = jk_json_strdup(&doc, (uint32_t)idx[1], &ul)) == NULL) {
    snprintf(err, errcap, "the metadata document has no \"jwks_uri\" string");
    goto out;
  }
  for (size_t i = 0; i < ul; i++)
    if ((unsigned char)uri[i] <= 0x20 || uri[i] == 0x7f) {
      snprintf(err, errcap, "jwks_uri holds a space or control character");
      goto out;
    }
  if (ul > GW_MAX_URL || ul >= cap) {
    snprintf(err, errcap, "jwks_uri is longer than %u bytes", GW_MAX_URL);
    goto out;
  }
  if (strncasecmp(uri, "https://", 8) != 0) {
    if (strncasecmp(uri, "http://", 7) != 0 || !allow_http || !loopback_host(uri)) {
      snprintf(err, errcap, "jwks_uri \"%.200s\" is not https:// (plain http:// only to a loopback address, with "
               "allow_http_jwks = true)", uri);
      goto out;
    }
  }
  memcpy(jwks_uri, uri, ul + 1);
  rc = 0;
out:
  jk_free(iss);
  jk_free(uri);
  jk_free(doc.nodes);
  return rc;
}
