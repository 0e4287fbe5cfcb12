/* The configuration snapshot a request reads (settings, clients, the
 * endpoint URLs) and the two discovery documents derived from it: OpenID
 * Connect Discovery and RFC 8414 authorization server metadata, each with
 * its ETag.  A request takes a reference on the snapshot; SIGHUP installs
 * a new one and the old one goes with its last request. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "core/alloc.h"
#include "serve.h"

/* -------------------------------------------------------------- holder */

/* sv_confsnap_acquire, _release, _install */
SV_SNAP_HOLDER(sv_confsnap)

/* Installs by serving threads: one at a time, so that a reload and a
 * refresh of the PostgreSQL clients are never interleaved. */
static pthread_mutex_t g_install_mu = PTHREAD_MUTEX_INITIALIZER;

void sv_confsnap_replace(sv_confsnap *cs) {
  pthread_mutex_lock(&g_install_mu);
  sv_confsnap_install(cs);
  pthread_mutex_unlock(&g_install_mu);
}

int sv_confsnap_install_if(sv_confsnap *cs, const sv_confsnap *expected) {
  pthread_mutex_lock(&g_install_mu);
  sv_confsnap *cur = sv_confsnap_acquire();
  int ok = cur == expected;
  sv_confsnap_release(cur);
  if (ok) sv_confsnap_install(cs);
  pthread_mutex_unlock(&g_install_mu);
  if (!ok) sv_confsnap_release(cs);
  return ok ? 0 : -1;
}

static void confsnap_destroy(jk_snap_obj *o) {
  sv_confsnap *cs = (sv_confsnap *)o;
  sv_attachment_drop(&cs->attached);
  sv_clients_free(&cs->clients);
  jk_free(cs->issuer_path);
  jk_free(cs->openid);
  jk_free(cs->oauth);
  free(cs);
}

/* ----------------------------------------------------------- documents */

static void member(jk_buf *b, const char *name, const char *value) {
  jk_buf_putc(b, ',');
  jk_buf_json_str(b, name, strlen(name));
  jk_buf_putc(b, ':');
  jk_buf_json_str(b, value, strlen(value));
}

static char *discovery(const sv_confsnap *cs, int openid, size_t *len) {
  jk_buf b;
  jk_buf_init_max(&b, 64 * 1024);
  jk_buf_puts(&b, "{\"issuer\":");
  jk_buf_json_str(&b, cs->settings.issuer, strlen(cs->settings.issuer));
  member(&b, "jwks_uri", cs->jwks_uri);
  member(&b, "token_endpoint", cs->token_endpoint);
  jk_buf_puts(&b, ",\"grant_types_supported\":[\"client_credentials\"]");
  /* private_key_jwt (RFC 7523 §2.2) is named once a client uses it, with
   * the algorithms the clients' assertions may use */
  jwtkit_alg aalgs[SV_MAX_ASSERTION_ALGS * 4];
  size_t naalgs = 0;
  for (size_t i = 0; i < cs->clients.n; i++)
    for (size_t k = 0; k < cs->clients.v[i].nassertion_algs; k++) {
      int dup = 0;
      for (size_t j = 0; j < naalgs; j++) dup |= aalgs[j] == cs->clients.v[i].assertion_algs[k];
      if (!dup && naalgs < sizeof aalgs / sizeof aalgs[0]) aalgs[naalgs++] = cs->clients.v[i].assertion_algs[k];
    }
  jk_buf_puts(&b, ",\"token_endpoint_auth_methods_supported\":[\"client_secret_basic\",\"client_secret_post\"");
  jk_buf_puts(&b, naalgs ? ",\"private_key_jwt\"]" : "]");
  if (naalgs) {
    jk_buf_puts(&b, ",\"token_endpoint_auth_signing_alg_values_supported\":[");
    for (size_t i = 0; i < naalgs; i++) {
      if (i) jk_buf_putc(&b, ',');
      const char *n = jwtkit_alg_name(aalgs[i]);
      jk_buf_json_str(&b, n, strlen(n));
    }
    jk_buf_putc(&b, ']');
  }
  /* REQUIRED in both RFC 8414 §2 and OpenID Connect Discovery §3; there is
   * no authorization endpoint, so no response type is supported */
  jk_buf_puts(&b, ",\"response_types_supported\":[]");
  if (openid) {
    jk_buf_puts(&b, ",\"subject_types_supported\":[\"public\"]");
    jk_buf_puts(&b, ",\"id_token_signing_alg_values_supported\":[");
    for (size_t i = 0; i < cs->settings.nalgs; i++) {
      if (i) jk_buf_putc(&b, ',');
      const char *n = jwtkit_alg_name(cs->settings.algs[i]);
      jk_buf_json_str(&b, n, strlen(n));
    }
    jk_buf_putc(&b, ']');
  }
  /* token_endpoint_auth_signing_alg_values_supported is left out on
   * purpose: it belongs to private_key_jwt / client_secret_jwt, which this
   * issuer does not offer (RFC 8414 §2) */
  jk_buf_putc(&b, '}');
  return jk_buf_take(&b, len);
}

/* aud is the token endpoint or the issuer (RFC 7523 §3 item 3), iss and
 * sub the client */
int sv_assertion_verifier(const sv_confsnap *cs, const sv_client *c, const jwtkit_jwks *set, jwtkit_verifier **out,
                          char *err, size_t cap) {
  jwtkit_policy *p = jwtkit_policy_new();
  jwtkit_errinfo ei;
  memset(&ei, 0, sizeof ei);
  jwtkit_err rc = p ? JWTKIT_OK : JWTKIT_ERR_NOMEM;
  for (size_t k = 0; rc == JWTKIT_OK && k < c->nassertion_algs; k++) rc = jwtkit_policy_allow_alg(p, c->assertion_algs[k]);
  if (rc == JWTKIT_OK) rc = jwtkit_policy_add_jwks(p, set);
  if (rc == JWTKIT_OK) rc = jwtkit_policy_add_audience(p, cs->token_endpoint);
  if (rc == JWTKIT_OK) rc = jwtkit_policy_add_audience(p, cs->settings.issuer);
  if (rc == JWTKIT_OK) rc = jwtkit_policy_add_issuer(p, c->name);
  if (rc == JWTKIT_OK) rc = jwtkit_policy_set_subject(p, c->name);
  if (rc == JWTKIT_OK) rc = jwtkit_policy_require_claim(p, "jti");
  if (rc == JWTKIT_OK) rc = jwtkit_policy_set_require_exp(p, 1);
  if (rc == JWTKIT_OK) rc = jwtkit_policy_set_leeway(p, SV_ASSERTION_LEEWAY);
  if (rc == JWTKIT_OK) rc = jwtkit_policy_set_max_token(p, SV_MAX_ASSERTION);
  if (rc == JWTKIT_OK) rc = jwtkit_verifier_new(out, p, &ei);
  jwtkit_policy_free(p);
  if (rc != JWTKIT_OK) {
    snprintf(err, cap, "client %s: its keys cannot verify assertions: %.300s", c->name,
             ei.msg[0] ? ei.msg : jwtkit_strerror(rc));
    return -1;
  }
  return 0;
}

int sv_confsnap_build(sv_confsnap **out, const sv_settings *s, sv_clients *clients, int legacy_loaded, char *err,
                      size_t cap) {
  *out = NULL;
  for (size_t i = 0; i < clients->n; i++) {
    const sv_client *c = &clients->v[i];
    if (c->alg == JWTKIT_ALG_UNSPEC) continue;
    int ok = 0;
    for (size_t a = 0; a < s->nalgs; a++) ok |= s->algs[a] == c->alg;
    if (!ok) {
      if (c->line > 0)
        snprintf(err, cap, "%s:%d: client %s asks for alg %s, which is not among the configured algorithms",
                 s->clients, c->line, c->name, jwtkit_alg_name(c->alg));
      else
        snprintf(err, cap, "PostgreSQL clients table: client %s asks for alg %s, which is not among the configured "
                           "algorithms", c->name, jwtkit_alg_name(c->alg));
      return -1;
    }
  }
  sv_confsnap *cs = calloc(1, sizeof *cs);
  if (cs == NULL) {
    snprintf(err, cap, "out of memory");
    return -1;
  }
  jk_snap_obj_init(&cs->obj, confsnap_destroy);
  atomic_init(&cs->attached, NULL);
  cs->settings = *s;
  cs->clients = *clients;
  memset(clients, 0, sizeof *clients);
  cs->legacy_loaded = legacy_loaded;
  /* endpoints hang below the issuer (a trailing '/' is not doubled) */
  char base[512];
  snprintf(base, sizeof base, "%s", s->issuer);
  size_t bl = strlen(base);
  if (bl > 0 && base[bl - 1] == '/') base[--bl] = '\0';
  snprintf(cs->token_endpoint, sizeof cs->token_endpoint, "%s/token", base);
  snprintf(cs->jwks_uri, sizeof cs->jwks_uri, "%s/.well-known/jwks.json", base);
  const char *hostp = strstr(base, "://");
  const char *path = hostp ? strchr(hostp + 3, '/') : NULL;
  cs->issuer_path = jk_strdup(path ? path : "");
  /* private_key_jwt: each such client's verifier (of its inline keys), or
   * the source of its jwks_uri in a serving process */
  for (size_t i = 0; i < cs->clients.n; i++) {
    sv_client *c = &cs->clients.v[i];
    if (c->jwks != NULL && sv_assertion_verifier(cs, c, c->jwks, &c->assertion, err, cap) != 0) {
      confsnap_destroy(&cs->obj);
      return -1;
    }
    if (c->jwks_uri != NULL && sv_remote_live() && (c->remote = sv_remote_new(cs, c)) == NULL) {
      snprintf(err, cap, "client %s: cannot start the source of its jwks_uri (out of memory or threads)", c->name);
      confsnap_destroy(&cs->obj);
      return -1;
    }
  }
  cs->openid = discovery(cs, 1, &cs->openid_len);
  cs->oauth = discovery(cs, 0, &cs->oauth_len);
  if (cs->issuer_path == NULL || cs->openid == NULL || cs->oauth == NULL) {
    confsnap_destroy(&cs->obj);
    snprintf(err, cap, "out of memory");
    return -1;
  }
  sv_etag(cs->openid, cs->openid_len, cs->openid_etag);
  sv_etag(cs->oauth, cs->oauth_len, cs->oauth_etag);
  *out = cs;
  return 0;
}

int sv_confsnap_rebuild_clients(const sv_confsnap *cur, sv_clients *clients, uint64_t revision, sv_confsnap **out,
                                char *err, size_t cap) {
  if (sv_confsnap_build(out, &cur->settings, clients, cur->legacy_loaded, err, cap) != 0) return -1;
  (*out)->clients_pg = 1;
  (*out)->clients_revision = revision;
  return 0;
}
