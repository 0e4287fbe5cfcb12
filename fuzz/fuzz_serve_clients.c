/*
 * serve_clients: the clients file of `jwtkit serve` (sv_clients_parse,
 * services/serve/config.c).
 *
 * Properties: a refused file leaves an empty list and a NUL-terminated
 * message naming the file ("clients.conf:..."); a file that parses gives
 * clients sorted by name, without duplicates, each found by
 * sv_clients_find (and a longer or shorter name is not), each with a valid
 * name, 1..16 distinct audiences (UTF-8, no control characters), distinct
 * RFC 6749 scope tokens, a ttl of 0 or 1 s..366 d and an asymmetric
 * algorithm or none, and either a secret hash or (private_key_jwt) a
 * non-empty JWK Set whose every key's algorithm is among its 1..8
 * asymmetric assertion_algs, or a jwks_uri sv_jwks_uri_ok accepts (http://
 * only with allow_http_jwks) with 1..8 of them, at most
 * SV_MAX_JWKS_URI_CLIENTS such clients; written back as a clients file
 * (secret_hash re-encoded from the parsed salt and MAC, jwks from
 * jwtkit_jwks_to_json, values written by jk_ini_put_value) it parses to
 * the same clients.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/b64url.h"
#include "common.h"
#include "common/buf.h"
#include "common/ini.h"
#include "common/utf8.h"
#include "core/alloc.h"
#include "serve.h"

#define NAME "clients.conf"

static char *write_back(const sv_clients *cs, size_t *len) {
  jk_buf b;
  jk_buf_init_max(&b, 64u << 20);
  for (size_t i = 0; i < cs->n; i++) {
    const sv_client *c = &cs->v[i];
    JKF_CHECK(c->hash.salt_len <= 64, "salt of %zu bytes", c->hash.salt_len);
    jk_buf_printf(&b, "[client %s]\n", c->name);
    if (c->jwks_uri != NULL) {
      jk_buf_puts(&b, "jwks_uri=");
      JKF_CHECK(jk_ini_put_value(&b, c->jwks_uri) == 0, "jwks_uri with a newline");
      jk_buf_printf(&b, "\nallow_http_jwks = %s\nassertion_algs =", c->allow_http_jwks ? "yes" : "no");
      for (size_t k = 0; k < c->nassertion_algs; k++) jk_buf_printf(&b, " %s", jwtkit_alg_name(c->assertion_algs[k]));
      jk_buf_putc(&b, '\n');
    } else if (c->jwks == NULL) {
      jk_buf_puts(&b, "secret_hash = sha256$");
      jk_buf_b64url(&b, c->hash.salt, c->hash.salt_len);
      jk_buf_putc(&b, '$');
      jk_buf_b64url(&b, c->hash.mac, sizeof c->hash.mac);
      jk_buf_putc(&b, '\n');
    } else {
      char *j = NULL;
      size_t jl = 0;
      JKF_CHECK(jwtkit_jwks_to_json(c->jwks, &j, &jl) == JWTKIT_OK, "jwks to JSON");
      jk_buf_puts(&b, "jwks=");
      JKF_CHECK(jk_ini_put_value(&b, j) == 0, "jwks with a newline");
      jk_buf_puts(&b, "\nassertion_algs =");
      for (size_t k = 0; k < c->nassertion_algs; k++) jk_buf_printf(&b, " %s", jwtkit_alg_name(c->assertion_algs[k]));
      jk_buf_putc(&b, '\n');
      jwtkit_free(j);
    }
    /* the shortest spelling: a line of the input at the length limit
     * must still fit (a value that needs quotes came quoted) */
    for (size_t k = 0; k < c->naud; k++) {
      jk_buf_puts(&b, "audience=");
      JKF_CHECK(jk_ini_put_value(&b, c->aud[k]) == 0, "audience with a newline");
      jk_buf_putc(&b, '\n');
    }
    if (c->nscopes > 0) {
      jk_buf sc;
      jk_buf_init(&sc);
      for (size_t k = 0; k < c->nscopes; k++) jk_buf_printf(&sc, "%s%s", k ? " " : "", c->scopes[k]);
      char *t = jk_buf_take(&sc, NULL);
      JKF_CHECK(t != NULL, "scopes");
      jk_buf_puts(&b, "scope=");
      JKF_CHECK(jk_ini_put_value(&b, t) == 0, "scopes with a newline");
      jk_buf_putc(&b, '\n');
      jk_free(t);
    }
    if (c->ttl > 0) jk_buf_printf(&b, "ttl = %lld\n", (long long)c->ttl);
    if (c->alg != JWTKIT_ALG_UNSPEC) jk_buf_printf(&b, "alg = %s\n", jwtkit_alg_name(c->alg));
    jk_buf_printf(&b, "disabled = %s\n\n", c->disabled ? "true" : "false");
  }
  JKF_CHECK(!b.oom, "write-back buffer");
  return jk_buf_take(&b, len);
}

static void check_client(const sv_clients *cs, size_t i) {
  const sv_client *c = &cs->v[i];
  JKF_CHECK(c->name != NULL && sv_client_name_ok(c->name), "client %zu name", i);
  size_t nl = strlen(c->name);
  if (i > 0) JKF_CHECK(strcmp(cs->v[i - 1].name, c->name) < 0, "clients not sorted/unique at %s", c->name);
  JKF_CHECK(sv_clients_find(cs, c->name, nl) == c, "find(%s)", c->name);
  char longer[SV_MAX_CLIENT_NAME + 2];
  memcpy(longer, c->name, nl);
  longer[nl] = '~';
  longer[nl + 1] = '\0';
  const sv_client *f = sv_clients_find(cs, longer, nl + 1);
  JKF_CHECK(f == NULL || strcmp(f->name, longer) == 0, "find(%s) gave %s", longer, f->name);
  if (nl > 1) {
    f = sv_clients_find(cs, c->name, nl - 1);
    JKF_CHECK(f == NULL || (strlen(f->name) == nl - 1 && memcmp(f->name, c->name, nl - 1) == 0), "find prefix");
  }
  if (c->jwks_uri != NULL) {
    char why[600];
    JKF_CHECK(c->jwks == NULL && c->hash.salt_len == 0, "%s: a jwks_uri and other keys", c->name);
    JKF_CHECK(sv_jwks_uri_ok(c->jwks_uri, why, sizeof why) == 0, "%s: jwks_uri refused after load: %s", c->name, why);
    JKF_CHECK(c->allow_http_jwks || strncmp(c->jwks_uri, "http://", 7) != 0, "%s: http:// without allow", c->name);
    JKF_CHECK(c->nassertion_algs >= 1 && c->nassertion_algs <= SV_MAX_ASSERTION_ALGS, "%s: %zu assertion_algs", c->name,
              c->nassertion_algs);
  } else if (c->jwks != NULL) {
    JKF_CHECK(c->hash.salt_len == 0, "%s: a secret hash and a jwks", c->name);
    JKF_CHECK(jwtkit_jwks_count(c->jwks) >= 1, "%s: an empty jwks", c->name);
    JKF_CHECK(c->nassertion_algs >= 1 && c->nassertion_algs <= SV_MAX_ASSERTION_ALGS, "%s: %zu assertion_algs", c->name,
              c->nassertion_algs);
    for (size_t k = 0; k < c->nassertion_algs; k++)
      JKF_CHECK(c->assertion_algs[k] != JWTKIT_ALG_UNSPEC && jwtkit_alg_kty(c->assertion_algs[k]) != JWTKIT_KTY_OCT,
                "%s: assertion alg", c->name);
    for (size_t k = 0; k < jwtkit_jwks_count(c->jwks); k++) {
      jwtkit_alg a = jwtkit_key_alg(jwtkit_jwks_get(c->jwks, k));
      int ok = 0;
      for (size_t j = 0; j < c->nassertion_algs; j++) ok |= c->assertion_algs[j] == a;
      JKF_CHECK(ok, "%s: jwks key %zu outside assertion_algs", c->name, k);
    }
  } else {
    JKF_CHECK(c->nassertion_algs == 0, "%s: assertion_algs without jwks", c->name);
    JKF_CHECK(c->hash.salt_len >= 16 && c->hash.salt_len <= sizeof c->hash.salt, "salt of %zu bytes", c->hash.salt_len);
  }
  JKF_CHECK(c->naud >= 1 && c->naud <= SV_MAX_AUDIENCES, "%s: %zu audiences", c->name, c->naud);
  for (size_t k = 0; k < c->naud; k++) {
    size_t al = strlen(c->aud[k]);
    JKF_CHECK(al >= 1 && al <= SV_MAX_AUDIENCE_LEN && jk_utf8_valid((const unsigned char *)c->aud[k], al),
              "audience %zu", k);
    for (size_t j = 0; j < al; j++)
      JKF_CHECK((unsigned char)c->aud[k][j] >= 0x20 && c->aud[k][j] != 0x7f, "control character in an audience");
    for (size_t j = 0; j < k; j++) JKF_CHECK(strcmp(c->aud[j], c->aud[k]) != 0, "audience twice");
  }
  JKF_CHECK(c->nscopes <= SV_MAX_SCOPES, "%zu scopes", c->nscopes);
  for (size_t k = 0; k < c->nscopes; k++) {
    JKF_CHECK(sv_scope_token_ok(c->scopes[k], strlen(c->scopes[k])), "scope %s", c->scopes[k]);
    for (size_t j = 0; j < k; j++) JKF_CHECK(strcmp(c->scopes[j], c->scopes[k]) != 0, "scope twice");
  }
  JKF_CHECK(c->ttl == 0 || (c->ttl >= 1 && c->ttl <= 366 * 86400LL), "ttl %lld", (long long)c->ttl);
  JKF_CHECK(c->alg == JWTKIT_ALG_UNSPEC || jwtkit_alg_kty(c->alg) != JWTKIT_KTY_OCT, "client alg");
  JKF_CHECK(c->disabled == 0 || c->disabled == 1, "disabled %d", c->disabled);
}

static void same(const sv_clients *a, const sv_clients *b) {
  JKF_CHECK(a->n == b->n, "%zu clients became %zu", a->n, b->n);
  for (size_t i = 0; i < a->n; i++) {
    const sv_client *x = &a->v[i], *y = &b->v[i];
    JKF_CHECK(strcmp(x->name, y->name) == 0, "name %s became %s", x->name, y->name);
    JKF_CHECK(x->hash.salt_len == y->hash.salt_len && memcmp(x->hash.salt, y->hash.salt, x->hash.salt_len) == 0 &&
                  memcmp(x->hash.mac, y->hash.mac, sizeof x->hash.mac) == 0,
              "%s: secret_hash changed", x->name);
    JKF_CHECK(x->naud == y->naud, "%s: audiences", x->name);
    for (size_t k = 0; k < x->naud; k++) JKF_CHECK(strcmp(x->aud[k], y->aud[k]) == 0, "%s: audience %zu", x->name, k);
    JKF_CHECK(x->nscopes == y->nscopes, "%s: %zu scopes became %zu", x->name, x->nscopes, y->nscopes);
    for (size_t k = 0; k < x->nscopes; k++)
      JKF_CHECK(strcmp(x->scopes[k], y->scopes[k]) == 0, "%s: scope %zu", x->name, k);
    JKF_CHECK(x->ttl == y->ttl && x->alg == y->alg && x->disabled == y->disabled, "%s: ttl/alg/disabled", x->name);
    JKF_CHECK((x->jwks == NULL) == (y->jwks == NULL), "%s: jwks came or went", x->name);
    JKF_CHECK((x->jwks_uri == NULL && y->jwks_uri == NULL) ||
                  (x->jwks_uri != NULL && y->jwks_uri != NULL && strcmp(x->jwks_uri, y->jwks_uri) == 0 &&
                   x->allow_http_jwks == y->allow_http_jwks),
              "%s: jwks_uri changed", x->name);
    JKF_CHECK(x->nassertion_algs == y->nassertion_algs &&
                  memcmp(x->assertion_algs, y->assertion_algs, x->nassertion_algs * sizeof x->assertion_algs[0]) == 0,
              "%s: assertion_algs", x->name);
    if (x->jwks != NULL) {
      JKF_CHECK(jwtkit_jwks_count(x->jwks) == jwtkit_jwks_count(y->jwks), "%s: jwks keys", x->name);
      for (size_t k = 0; k < jwtkit_jwks_count(x->jwks); k++) {
        const jwtkit_key *kx = jwtkit_jwks_get(x->jwks, k), *ky = jwtkit_jwks_get(y->jwks, k);
        const char *ix = jwtkit_key_kid(kx), *iy = jwtkit_key_kid(ky);
        JKF_CHECK(jwtkit_key_alg(kx) == jwtkit_key_alg(ky) && ((ix == NULL && iy == NULL) ||
                                                               (ix != NULL && iy != NULL && strcmp(ix, iy) == 0)),
                  "%s: jwks key %zu", x->name, k);
      }
    }
  }
}

int jkf_serve_clients(const uint8_t *data, size_t size) {
  sv_clients cs;
  char err[1024];
  memset(err, 0x5a, sizeof err);
  memset(&cs, 0x5a, sizeof cs);
  if (sv_clients_parse(&cs, (const char *)data, size, NAME, err, sizeof err) != 0) {
    JKF_CHECK(cs.v == NULL && cs.n == 0, "a refused file left clients");
    JKF_CHECK(memchr(err, '\0', sizeof err) != NULL, "error message not terminated");
    JKF_CHECK(strncmp(err, NAME ":", sizeof NAME) == 0 || strcmp(err, "out of memory") == 0,
              "error message does not name the file: %.200s", err);
    return 0;
  }
  JKF_CHECK(cs.n <= SV_MAX_CLIENTS && (cs.n == 0 || cs.v != NULL), "%zu clients", cs.n);
  size_t nuri = 0;
  for (size_t i = 0; i < cs.n; i++) {
    check_client(&cs, i);
    nuri += cs.v[i].jwks_uri != NULL;
  }
  JKF_CHECK(nuri <= SV_MAX_JWKS_URI_CLIENTS, "%zu clients with a jwks_uri", nuri);
  JKF_CHECK(sv_clients_find(&cs, "", 0) == NULL, "find(\"\")");

  size_t tl = 0;
  char *text = write_back(&cs, &tl);
  JKF_CHECK(text != NULL, "write back");
  sv_clients again;
  int rc = sv_clients_parse(&again, text, tl, NAME, err, sizeof err);
  JKF_CHECK(rc == 0, "written-back clients refused: %s", err);
  same(&cs, &again);
  sv_clients_free(&again);
  jk_free(text);
  sv_clients_free(&cs);
  return 0;
}

JKF_ENTRY(jkf_serve_clients)
