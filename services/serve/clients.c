/* The clients file: one [client NAME] section per client, in the project's
 * configuration dialect (common/ini.h).  Parsing is bounded (file size,
 * line length, number of clients and values) and every error is
 * "FILE:LINE: ...". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/file.h"
#include "common/ini.h"
#include "common/parse.h"
#include "common/utf8.h"
#include "core/alloc.h"
#include "serve.h"

int sv_client_name_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > SV_MAX_CLIENT_NAME) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
          c == '~' || c == '-'))
      return 0;
  }
  return 1;
}

static void client_clear(sv_client *c) {
  sv_remote_free(c->remote); /* first: its fetch thread ends */
  jk_free(c->name);
  for (size_t i = 0; i < c->naud; i++) jk_free(c->aud[i]);
  for (size_t i = 0; i < c->nscopes; i++) jk_free(c->scopes[i]);
  jwtkit_jwks_free(c->jwks);
  jk_free(c->jwks_uri);
  jwtkit_verifier_free(c->assertion);
  memset(c, 0, sizeof *c);
}

void sv_clients_free(sv_clients *c) {
  if (c == NULL) return;
  for (size_t i = 0; i < c->n; i++) client_clear(&c->v[i]);
  jk_free(c->v);
  c->v = NULL;
  c->n = 0;
}

/* The keys of a client; each may be given once, but audience. */
enum {
  K_HASH = 1,
  K_SCOPES = 2,
  K_TTL = 4,
  K_ALG = 8,
  K_DISABLED = 16,
  K_JWKS = 32,
  K_AALGS = 64,
  K_JWKS_URI = 128,
  K_ALLOW_HTTP = 256
};

typedef struct clients_ctx {
  sv_clients *out;
  size_t cap;
  sv_client *cur;
  unsigned seen; /* K_* of the current client */
} clients_ctx;

static int new_client(clients_ctx *x, const jk_ini_item *it, char *err, size_t cap) {
  if (strcmp(it->section, "client") != 0 || it->name == NULL) {
    snprintf(err, cap, "expected [client NAME], not [%.64s%s%.64s]", it->section, it->name ? " " : "",
             it->name ? it->name : "");
    return -1;
  }
  if (!sv_client_name_ok(it->name)) {
    snprintf(err, cap, "client names are 1..%u characters of A-Z a-z 0-9 . _ ~ - ('%.64s')", SV_MAX_CLIENT_NAME,
             it->name);
    return -1;
  }
  if (x->out->n >= SV_MAX_CLIENTS) {
    snprintf(err, cap, "more than %u clients", SV_MAX_CLIENTS);
    return -1;
  }
  if (x->out->n == x->cap) {
    size_t nc = x->cap ? x->cap * 2 : 16;
    sv_client *nv = jk_realloc(x->out->v, nc * sizeof *nv);
    if (nv == NULL) {
      snprintf(err, cap, "out of memory");
      return -1;
    }
    x->out->v = nv;
    x->cap = nc;
  }
  x->cur = &x->out->v[x->out->n++];
  memset(x->cur, 0, sizeof *x->cur);
  x->cur->line = it->line;
  x->seen = 0;
  if ((x->cur->name = jk_strdup(it->name)) == NULL) {
    snprintf(err, cap, "out of memory");
    return -1;
  }
  return 0;
}

static int add_audience(sv_client *c, const char *v, char *err, size_t cap) {
  size_t vl = strlen(v);
  if (c->naud >= SV_MAX_AUDIENCES) {
    snprintf(err, cap, "more than %u audiences", SV_MAX_AUDIENCES);
    return -1;
  }
  if (vl == 0 || vl > SV_MAX_AUDIENCE_LEN || !jk_utf8_valid((const unsigned char *)v, vl)) {
    snprintf(err, cap, "audience: 1..%u bytes of UTF-8", SV_MAX_AUDIENCE_LEN);
    return -1;
  }
  for (size_t i = 0; i < vl; i++)
    if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f) {
      snprintf(err, cap, "audience: control character");
      return -1;
    }
  for (size_t i = 0; i < c->naud; i++)
    if (strcmp(c->aud[i], v) == 0) {
      snprintf(err, cap, "audience '%.64s' listed twice", v);
      return -1;
    }
  if ((c->aud[c->naud] = jk_strdup(v)) == NULL) {
    snprintf(err, cap, "out of memory");
    return -1;
  }
  c->naud++;
  return 0;
}

static int add_scopes(sv_client *c, const char *v, char *err, size_t cap) {
  const char *p = v;
  while (*p) {
    while (*p == ' ') p++;
    if (!*p) break;
    const char *e = p;
    while (*e && *e != ' ') e++;
    size_t n = (size_t)(e - p);
    if (!sv_scope_token_ok(p, n)) {
      snprintf(err, cap, "scopes: '%.*s' is not a scope token (RFC 6749 §3.3)", (int)(n > 64 ? 64 : n), p);
      return -1;
    }
    if (c->nscopes >= SV_MAX_SCOPES) {
      snprintf(err, cap, "more than %u scopes", SV_MAX_SCOPES);
      return -1;
    }
    int dup = 0;
    for (size_t i = 0; i < c->nscopes; i++)
      if (strlen(c->scopes[i]) == n && memcmp(c->scopes[i], p, n) == 0) dup = 1;
    if (!dup) {
      if ((c->scopes[c->nscopes] = jk_strndup(p, n)) == NULL) {
        snprintf(err, cap, "out of memory");
        return -1;
      }
      c->nscopes++;
    }
    p = e;
  }
  return 0;
}

/* A key the JWK Set skipped: the first reason is kept for the error. */
typedef struct skip_ctx {
  size_t n;
  size_t index;
  char why[200];
} skip_ctx;

static void on_skip(void *ctx, size_t index, const jwtkit_errinfo *why) {
  skip_ctx *s = ctx;
  if (s->n++ == 0) {
    s->index = index;
    snprintf(s->why, sizeof s->why, "%s", why && why->msg[0] ? why->msg : "not usable");
  }
}

/* jwks = {"keys":[...]}: the client's public keys for private_key_jwt.
 * Every key must be usable (a skipped one is an error, not a surprise at
 * the first assertion); RSA keys must name their alg. */
static int parse_jwks(sv_client *c, const char *v, char *err, size_t cap) {
  skip_ctx sk;
  memset(&sk, 0, sizeof sk);
  jwtkit_errinfo ei;
  memset(&ei, 0, sizeof ei);
  if (jwtkit_jwks_parse(&c->jwks, v, strlen(v), JWTKIT_ALG_UNSPEC, on_skip, &sk, &ei) != JWTKIT_OK) {
    snprintf(err, cap, "jwks: not a JWK Set of public keys: %.300s", ei.msg[0] ? ei.msg : "malformed");
    return -1;
  }
  if (sk.n > 0) {
    snprintf(err, cap, "jwks: key %zu cannot verify client assertions: %.200s (public RSA, EC or OKP signing keys; an "
                       "RSA key names its alg)", sk.index, sk.why);
    return -1;
  }
  if (jwtkit_jwks_count(c->jwks) == 0) {
    snprintf(err, cap, "jwks: the set holds no key");
    return -1;
  }
  return 0;
}

/* assertion_algs = ES256 EdDSA: what the client's assertions may be
 * signed with (never HS*, never none). */
static int parse_assertion_algs(sv_client *c, const char *v, char *err, size_t cap) {
  const char *p = v;
  while (*p) {
    while (*p == ' ' || *p == ',') p++;
    if (!*p) break;
    const char *e = p;
    while (*e && *e != ' ' && *e != ',') e++;
    size_t n = (size_t)(e - p);
    jwtkit_alg a = jwtkit_alg_from_name(p, n);
    if (a == JWTKIT_ALG_UNSPEC || jwtkit_alg_kty(a) == JWTKIT_KTY_OCT) {
      snprintf(err, cap, "assertion_algs: '%.*s' is not an asymmetric algorithm (RS*, PS*, ES*, EdDSA; never HS* or none)",
               (int)(n > 32 ? 32 : n), p);
      return -1;
    }
    int dup = 0;
    for (size_t i = 0; i < c->nassertion_algs; i++) dup |= c->assertion_algs[i] == a;
    if (!dup) {
      if (c->nassertion_algs >= SV_MAX_ASSERTION_ALGS) {
        snprintf(err, cap, "assertion_algs: more than %u", SV_MAX_ASSERTION_ALGS);
        return -1;
      }
      c->assertion_algs[c->nassertion_algs++] = a;
    }
    p = e;
  }
  if (c->nassertion_algs == 0) {
    snprintf(err, cap, "assertion_algs: empty");
    return -1;
  }
  return 0;
}

static int client_item(void *ctx, const jk_ini_item *it, char *err, size_t cap) {
  clients_ctx *x = ctx;
  if (it->key == NULL) return new_client(x, it, err, cap);
  if (x->cur == NULL) {
    snprintf(err, cap, "'%.64s' outside a [client NAME] section", it->key);
    return -1;
  }
  sv_client *c = x->cur;
  const char *k = it->key, *v = it->value;
  unsigned once = strcmp(k, "secret_hash") == 0                           ? K_HASH
                  : strcmp(k, "scopes") == 0 || strcmp(k, "scope") == 0 ? K_SCOPES
                  : strcmp(k, "ttl") == 0                                 ? K_TTL
                  : strcmp(k, "alg") == 0                                 ? K_ALG
                  : strcmp(k, "disabled") == 0                            ? K_DISABLED
                  : strcmp(k, "jwks") == 0                                ? K_JWKS
                  : strcmp(k, "assertion_algs") == 0                      ? K_AALGS
                  : strcmp(k, "jwks_uri") == 0                            ? K_JWKS_URI
                  : strcmp(k, "allow_http_jwks") == 0                     ? K_ALLOW_HTTP
                                                                          : 0;
  if (once != 0 && (x->seen & once)) {
    snprintf(err, cap, "%s given twice for client %s", k, c->name);
    return -1;
  }
  x->seen |= once;
  if ((once == K_JWKS || once == K_JWKS_URI) && (x->seen & (K_JWKS | K_JWKS_URI)) == (K_JWKS | K_JWKS_URI)) {
    snprintf(err, cap,
             "client %s has both jwks and jwks_uri: its keys are given one way (inline, or fetched from the URL)",
             c->name);
    return -1;
  }
  switch (once) {
    case K_HASH:
      if (sv_secret_hash_parse(v, &c->hash) != 0) {
        snprintf(err, cap,
                 "secret_hash: expected pbkdf2-sha256$<iterations>$<salt>$<hash> (or the earlier sha256$<salt>$<hash>), "
                 "base64url, as `jwtkit serve client add` writes it; plaintext secrets are not accepted");
        return -1;
      }
      return 0;
    case K_SCOPES:
      return add_scopes(c, v, err, cap);
    case K_TTL:
      if (jk_parse_duration(v, &c->ttl) != 0 || c->ttl < 1 || c->ttl > 366 * 86400LL) {
        snprintf(err, cap, "ttl: '%.32s' is not a duration from 1s to 366d; expected %s", v, JK_DURATION_HELP);
        return -1;
      }
      return 0;
    case K_ALG: {
      c->alg = jwtkit_alg_from_name(v, strlen(v));
      if (c->alg == JWTKIT_ALG_UNSPEC || jwtkit_alg_kty(c->alg) == JWTKIT_KTY_OCT) {
        snprintf(err, cap, "alg: '%.32s' is not an asymmetric algorithm (RS*, PS*, ES*, EdDSA)", v);
        return -1;
      }
      return 0;
    }
    case K_DISABLED:
      if (jk_parse_bool(v, &c->disabled) != 0) {
        snprintf(err, cap, "disabled: '%.32s' is not %s", v, JK_BOOL_HELP);
        return -1;
      }
      return 0;
    case K_JWKS:
      return parse_jwks(c, v, err, cap);
    case K_AALGS:
      return parse_assertion_algs(c, v, err, cap);
    case K_JWKS_URI:
      if (sv_jwks_uri_ok(v, err, cap) != 0) return -1;
      c->jwks_uri = jk_strdup(v);
      if (c->jwks_uri == NULL) {
        snprintf(err, cap, "out of memory");
        return -1;
      }
      return 0;
    case K_ALLOW_HTTP:
      if (jk_parse_bool(v, &c->allow_http_jwks) != 0) {
        snprintf(err, cap, "allow_http_jwks: '%.32s' is not %s", v, JK_BOOL_HELP);
        return -1;
      }
      return 0;
    default:
      break;
  }
  if (strcmp(k, "audience") == 0) return add_audience(c, v, err, cap);
  snprintf(err, cap,
           "unknown client setting '%.64s' (secret_hash, audience, scopes, ttl, alg, disabled, jwks, jwks_uri, "
           "allow_http_jwks, assertion_algs)",
           k);
  return -1;
}

static int cmp_client(const void *a, const void *b) {
  return strcmp(((const sv_client *)a)->name, ((const sv_client *)b)->name);
}

/* What a whole client needs, reported at its section's line. */
static int check_clients(const sv_clients *cs, const char *path, char *err, size_t cap) {
  size_t nuri = 0;
  for (size_t i = 0; i < cs->n; i++) {
    const sv_client *c = &cs->v[i];
    if (c->jwks_uri != NULL && ++nuri > SV_MAX_JWKS_URI_CLIENTS) {
      snprintf(err, cap,
               "%s:%d: client %s is client number %zu with a jwks_uri; at most %u (each has a fetch thread): give "
               "the others their keys inline (jwks)",
               path, c->line, c->name, nuri, SV_MAX_JWKS_URI_CLIENTS);
      return -1;
    }
    int keyed = c->jwks != NULL || c->jwks_uri != NULL;
    const char *missing = c->hash.salt_len == 0 && !keyed ? "secret_hash (or jwks or jwks_uri, for private_key_jwt)"
                          : c->naud == 0                  ? "audience"
                          : keyed && c->nassertion_algs == 0 ? "assertion_algs (the algorithms of its keys)"
                          : !keyed && c->nassertion_algs > 0 ? "jwks or jwks_uri (assertion_algs without keys)"
                                                             : NULL;
    if (missing != NULL) {
      snprintf(err, cap, "%s:%d: client %s has no %s", path, c->line, c->name, missing);
      return -1;
    }
    if (c->hash.salt_len != 0 && keyed) {
      snprintf(err, cap,
               "%s:%d: client %s has both secret_hash and %s: a client authenticates one way (remove the "
               "secret_hash to use private_key_jwt)",
               path, c->line, c->name, c->jwks != NULL ? "jwks" : "jwks_uri");
      return -1;
    }
    if (c->jwks_uri != NULL && strncmp(c->jwks_uri, "http://", 7) == 0 && !c->allow_http_jwks) {
      snprintf(err, cap,
               "%s:%d: client %s: jwks_uri %.300s is http://: add allow_http_jwks = true to fetch it from a loopback "
               "address (tests, a local sidecar), or use https://",
               path, c->line, c->name, c->jwks_uri);
      return -1;
    }
    for (size_t k = 0; c->jwks != NULL && k < jwtkit_jwks_count(c->jwks); k++) {
      const jwtkit_key *key = jwtkit_jwks_get(c->jwks, k);
      jwtkit_alg a = jwtkit_key_alg(key);
      int ok = 0;
      for (size_t j = 0; j < c->nassertion_algs; j++) ok |= c->assertion_algs[j] == a;
      if (!ok) {
        snprintf(err, cap, "%s:%d: client %s: jwks key %s is for %s, which is not in its assertion_algs", path, c->line,
                 c->name, jwtkit_key_kid(key) ? jwtkit_key_kid(key) : "(no kid)", jwtkit_alg_name(a));
        return -1;
      }
    }
  }
  return 0;
}

int sv_clients_parse(sv_clients *out, const char *text, size_t len, const char *path, char *err, size_t cap) {
  memset(out, 0, sizeof *out);
  clients_ctx x = {out, 0, NULL, 0};
  int rc = jk_ini_parse(path, text, len, client_item, &x, err, cap);
  if (rc == 0) rc = check_clients(out, path, err, cap);
  if (rc == 0 && out->n > 1) {
    qsort(out->v, out->n, sizeof *out->v, cmp_client);
    for (size_t i = 1; i < out->n; i++)
      if (strcmp(out->v[i - 1].name, out->v[i].name) == 0) {
        int l1 = out->v[i - 1].line, l2 = out->v[i].line;
        snprintf(err, cap, "%s:%d: client %s is already defined at line %d", path, l1 > l2 ? l1 : l2, out->v[i].name,
                 l1 > l2 ? l2 : l1);
        rc = -1;
        break;
      }
  }
  if (rc != 0) sv_clients_free(out);
  return rc;
}

int sv_clients_load(sv_clients *out, const char *path, char *err, size_t cap) {
  char *text = NULL;
  size_t len = 0;
  jwtkit_errinfo ei;
  memset(&ei, 0, sizeof ei);
  memset(out, 0, sizeof *out);
  jwtkit_err rc = jk_read_secret_file(path, SV_MAX_CLIENTS_FILE, &text, &len, &ei);
  if (rc == JWTKIT_ERR_NOT_FOUND) {
    snprintf(err, cap,
             "clients file: %.1000s does not exist; register a client with `jwtkit serve client add NAME --audience "
             "AUD --clients %.1000s` (or start with --demo for a demo client)",
             path, path);
    return -1;
  }
  if (rc != JWTKIT_OK) {
    snprintf(err, cap, "clients file: %s", ei.msg[0] ? ei.msg : jwtkit_strerror(rc));
    return -1;
  }
  int r = sv_clients_parse(out, text, len, path, err, cap);
  jk_free_secret(text, len + 1);
  return r;
}

const sv_client *sv_clients_find(const sv_clients *c, const char *name, size_t len) {
  if (c == NULL || len == 0 || len > SV_MAX_CLIENT_NAME || memchr(name, '\0', len) != NULL) return NULL;
  char key[SV_MAX_CLIENT_NAME + 1];
  memcpy(key, name, len);
  key[len] = '\0';
  size_t lo = 0, hi = c->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int r = strcmp(key, c->v[mid].name);
    if (r == 0) return &c->v[mid];
    if (r < 0) hi = mid;
    else lo = mid + 1;
  }
  return NULL;
}

void sv_fmt_duration(int64_t v, char *out, size_t cap) {
  if (v > 0 && v % 86400 == 0) snprintf(out, cap, "%lldd", (long long)(v / 86400));
  else if (v > 0 && v % 3600 == 0) snprintf(out, cap, "%lldh", (long long)(v / 3600));
  else if (v > 0 && v % 60 == 0) snprintf(out, cap, "%lldm", (long long)(v / 60));
  else snprintf(out, cap, "%llds", (long long)v);
}

int sv_client_ttl_warning(const sv_client *c, int64_t token_ttl, const char *whose, const char *where, char *out,
                          size_t cap) {
  if (c->ttl <= 0 || token_ttl <= 0 || c->ttl <= token_ttl) return 0;
  char ttl[32], max[32];
  sv_fmt_duration(c->ttl, ttl, sizeof ttl);
  sv_fmt_duration(token_ttl, max, sizeof max);
  snprintf(out, cap,
           "client %s%s%s%s: ttl %s exceeds %s token_ttl %s, so its tokens are cut to %s (expires_in says %lld); "
           "give it a ttl of %s or less, or use a keyring created with a longer token_ttl",
           c->name, where && *where ? " (" : "", where ? where : "", where && *where ? ")" : "", ttl, whose, max, max,
           (long long)token_ttl, max);
  return 1;
}

void sv_clients_warn_ttl(const sv_clients *cs, int64_t token_ttl, const char *path) {
  for (size_t i = 0; i < cs->n; i++) {
    const sv_client *c = &cs->v[i];
    char where[SV_PATH_MAX + 32], msg[SV_PATH_MAX + 600];
    if (c->line > 0) snprintf(where, sizeof where, "%.1000s:%d", path, c->line);
    else snprintf(where, sizeof where, "%.1000s", path);
    if (!sv_client_ttl_warning(c, token_ttl, "the keyring's", where, msg, sizeof msg)) continue;
    jk_logline L;
    if (jk_log_begin(&L, JK_LOG_WARN, "client_ttl_cut")) {
      jk_log_str(&L, "msg", msg);
      jk_log_str(&L, "client_id", c->name);
      jk_log_int(&L, "ttl", c->ttl);
      jk_log_int(&L, "token_ttl", token_ttl);
      jk_log_end(&L);
    }
  }
}
