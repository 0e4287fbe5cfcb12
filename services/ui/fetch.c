/*
 * The one place the workbench fetches a URL: a JWKS for the verify pane
 * and the JWK Set viewer, with the gate's rules (https only, http only to
 * a loopback address; bounded size and time; no redirects).
 *
 * The project gets ONE libcurl JWKS fetcher, shared by the gate and this
 * workbench, and it is being written with the gate's new core.  Until it
 * is in this tree this function answers 501 with a sentence the page
 * shows, so there is no third fetcher: plug the shared one in here (and
 * nowhere else: the panes call app->fetch, which is this function).
 */
#include <stdio.h>

#include "ui_internal.h"

int ui_fetch_jwks(const char *url, char **body, size_t *len, char *err, size_t cap) {
  (void)url;
  *body = NULL;
  *len = 0;
  snprintf(err, cap,
           "fetching a JWKS URL is not in this build yet (it comes with the gate's shared fetcher); paste the JWK "
           "Set instead (curl -s URL shows it)");
  return 501;
}
