/*
 * The one place the workbench fetches a URL: a JWKS for the verify pane
 * and the JWK Set viewer, through the project's one HTTP client
 * (services/fetch) with the gate's rules: https, or http to a loopback
 * address only (judged on the address connected to); at most
 * JWTKIT_MAX_JWKS_BYTES; 5 s for the whole exchange; no redirects.
 *
 * Answers: 0 with the body; 400 when the URL is refused before any byte
 * is sent (scheme, address, malformed); 502 for anything the server at the
 * other end did (no connection, TLS, timeout, too large, a status other
 * than 200).  err says which, for the page.
 */
#include <stdio.h>

#include "fetch.h"
#include "jwtkit/jwks.h"
#include "ui_internal.h"

int ui_fetch_jwks(const char *url, char **body, size_t *len, char *err, size_t cap) {
  *body = NULL;
  *len = 0;
  jk_fetch_opts o = {
      .http = JK_FETCH_HTTP_LOOPBACK,
      .timeout_ms = 5000,
      .max_bytes = JWTKIT_MAX_JWKS_BYTES,
      .agent = "jwtkit-ui",
      .accept = "application/jwk-set+json, application/json",
  };
  jk_fetch_resp r;
  jk_fetch_result res = jk_fetch_get(url, &o, &r);
  if (res == JK_FETCH_REFUSED) {
    snprintf(err, cap, "%s: the workbench fetches https:// URLs, or http:// to a loopback address only", r.detail);
    jk_fetch_resp_free(&r);
    return 400;
  }
  if (res != JK_FETCH_OK) {
    snprintf(err, cap, "fetching the JWK Set failed: %s", r.detail[0] ? r.detail : "no answer");
    jk_fetch_resp_free(&r);
    return 502;
  }
  if (r.status != 200) {
    snprintf(err, cap, "the server answered HTTP %ld, not 200 with a JWK Set", r.status);
    jk_fetch_resp_free(&r);
    return 502;
  }
  *body = r.body; /* allocated with jk_malloc: the panes free it with jk_free */
  *len = r.len;
  r.body = NULL;
  return 0;
}
