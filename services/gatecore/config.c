/*
 * The policy vocabulary: every key a front end may set, its value's
 * grammar and range (durations, booleans and times by common/parse.h), and
 * the checks that need the whole configuration.  No file format here: the
 * gate reads the keys from its INI file (common/ini.h), an nginx module
 * from its directives.  Single-valued keys given twice are refused.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/attr.h"
#include "common/parse.h"
#include "gw_internal.h"

static char *dup_str(const char *s) {
  size_t n = strlen(s);
  char *p = malloc(n + 1);
  if (p != NULL) memcpy(p, s, n + 1);
  return p;
}

static void strlist_free(gw_strlist *l) {
  for (size_t i = 0; i < l->n; i++) free(l->v[i]);
  free(l->v);
  l->v = NULL;
  l->n = 0;
}

static int strlist_add(gw_strlist *l, const char *key, const char *v, char *err, size_t cap) {
  if (l->n >= GW_MAX_LIST) return jk_errf(err, cap, "too many '%s' values (at most %u)", key, GW_MAX_LIST);
  char **nv = realloc(l->v, (l->n + 1) * sizeof *nv);
  if (nv == NULL) return jk_errf(err, cap, "out of memory");
  l->v = nv;
  if ((l->v[l->n] = dup_str(v)) == NULL) return jk_errf(err, cap, "out of memory");
  l->n++;
  return 0;
}

static int set_str(char **dst, const char *key, const char *v, char *err, size_t cap) {
  if (*v == '\0') return jk_errf(err, cap, "'%s' needs a value", key);
  if ((*dst = dup_str(v)) == NULL) return jk_errf(err, cap, "out of memory");
  return 0;
}

/* ------------------------------------------------------------- values */

int gw_value_duration(const char *key, const char *v, int64_t lo, int64_t hi, int64_t *out, char *err, size_t cap) {
  int64_t d;
  if (jk_parse_duration(v, &d) != 0 || d < lo || d > hi)
    return jk_errf(err, cap, "'%s': bad duration \"%s\" (%s; %lld..%lld s)", key, v, JK_DURATION_HELP, (long long)lo,
                   (long long)hi);
  *out = d;
  return 0;
}

int gw_value_whole(const char *key, const char *v, uint64_t lo, uint64_t hi, uint64_t *out, char *err, size_t cap) {
  if (jk_parse_u64(v, lo, hi, out) != 0)
    return jk_errf(err, cap, "'%s': expected a whole number in %llu..%llu, got \"%s\"", key, (unsigned long long)lo,
                   (unsigned long long)hi, v);
  return 0;
}

int gw_value_proxy_headers(const char *key, const char *v, gw_proxy_headers *out, char *err, size_t cap) {
  if (strcmp(v, "original") == 0) *out = GW_PROXY_ORIGINAL;
  else if (strcmp(v, "forwarded") == 0) *out = GW_PROXY_FORWARDED;
  else
    return jk_errf(err, cap,
                   "'%s': expected original (nginx: X-Original-URI, X-Original-Host) or forwarded (Caddy, Traefik: "
                   "X-Forwarded-Uri, -Host, -Method), got \"%s\"",
                   key, v);
  return 0;
}

/* jwks_timeout: a duration (1..60 s) or N ms (100..60000). */
static int timeout_ms(const char *v, int64_t *out, char *err, size_t cap) {
  size_t n = strlen(v);
  if (n > 2 && strcmp(v + n - 2, "ms") == 0) {
    char num[24];
    uint64_t u;
    if (n - 2 >= sizeof num) return jk_errf(err, cap, "'jwks_timeout': bad value \"%s\"", v);
    memcpy(num, v, n - 2);
    num[n - 2] = '\0';
    if (gw_value_whole("jwks_timeout", num, 100, 60000, &u, err, cap) != 0) return -1;
    *out = (int64_t)u;
    return 0;
  }
  int64_t d = 0;
  if (gw_value_duration("jwks_timeout", v, 1, 60, &d, err, cap) != 0) return -1;
  *out = d * 1000;
  return 0;
}

/* ------------------------------------------------------------- global */

gw_config *gw_config_new(void) {
  gw_config *c = calloc(1, sizeof *c);
  if (c == NULL) return NULL;
  c->token_cache = 10000;
  c->max_token = 8192;
  c->header_max = 1024;
  c->jwks = (gw_jwks_opts){.timeout_ms = 5000,
                           .max_bytes = 65536,
                           .min_ttl = 30,
                           .max_ttl = 3600,
                           .default_ttl = 300,
                           .refresh_ahead = 30,
                           .cooldown = 30,
                           .stale_max = 86400};
  return c;
}

static void route_free(gw_route_cfg *r) {
  free(r->name);
  strlist_free(&r->hosts);
  strlist_free(&r->prefixes);
  free(r->issuer);
  free(r->jwks_url);
  strlist_free(&r->key_files);
  strlist_free(&r->audiences);
  free(r->typ);
  strlist_free(&r->require);
  free(r->token_cookie);
  free(r->token_header);
  free(r->legacy_secret_file);
}

void gw_config_free(gw_config *c) {
  if (c == NULL) return;
  for (size_t i = 0; i < c->nroutes; i++) route_free(&c->routes[i]);
  free(c->routes);
  free(JK_UNCONST(c->jwks.ca_file));
  free(c);
}

static const char *const k_global[] = {"token_cache",   "max_token",       "header_max",         "jwks_timeout",
                                       "jwks_max_bytes", "jwks_min_ttl",    "jwks_max_ttl",       "jwks_default_ttl",
                                       "jwks_refresh_ahead", "jwks_cooldown", "jwks_stale_max",    "jwks_ca_file",
                                       "proxy_headers",  NULL};

int gw_config_set(gw_config *c, const char *k, const char *v, char *err, size_t cap) {
  int idx = -1;
  for (int i = 0; k_global[i]; i++)
    if (strcmp(k_global[i], k) == 0) idx = i;
  if (idx < 0) return 1;
  if (c->seen & (1u << idx)) return jk_errf(err, cap, "'%s' given twice", k);
  c->seen |= 1u << idx;
  gw_jwks_opts *j = &c->jwks;
  uint64_t u;
  switch (idx) {
    case 0:
      if (gw_value_whole(k, v, 0, GW_MAX_CACHE_ENTRIES, &u, err, cap)) return -1;
      c->token_cache = (size_t)u;
      return 0;
    case 1:
      if (gw_value_whole(k, v, 256, GW_MAX_TOKEN_CAP, &u, err, cap)) return -1;
      c->max_token = (size_t)u;
      return 0;
    case 2:
      if (gw_value_whole(k, v, 16, 8192, &u, err, cap)) return -1;
      c->header_max = (size_t)u;
      return 0;
    case 3:
      return timeout_ms(v, &j->timeout_ms, err, cap);
    case 4:
      if (gw_value_whole(k, v, 1024, JWTKIT_MAX_JWKS_BYTES, &u, err, cap)) return -1;
      j->max_bytes = (size_t)u;
      return 0;
    case 5:
      return gw_value_duration(k, v, 1, 86400, &j->min_ttl, err, cap);
    case 6:
      return gw_value_duration(k, v, 1, 7 * 86400, &j->max_ttl, err, cap);
    case 7:
      return gw_value_duration(k, v, 1, 7 * 86400, &j->default_ttl, err, cap);
    case 8:
      return gw_value_duration(k, v, 0, 86400, &j->refresh_ahead, err, cap);
    case 9:
      return gw_value_duration(k, v, 1, 86400, &j->cooldown, err, cap);
    case 10:
      return gw_value_duration(k, v, 0, 30 * 86400, &j->stale_max, err, cap);
    case 12:
      return gw_value_proxy_headers(k, v, &c->proxy_headers, err, cap);
    default: {
      char *p = NULL;
      if (set_str(&p, k, v, err, cap) != 0) return -1;
      j->ca_file = p;
      return 0;
    }
  }
}

gw_route_cfg *gw_config_add_route(gw_config *c, const char *name, int line, char *err, size_t cap) {
  size_t n = strlen(name);
  if (n == 0 || n > 64) {
    jk_errf(err, cap, "a route needs a name of 1..64 characters");
    return NULL;
  }
  for (const char *q = name; *q; q++)
    if (!(isalnum((unsigned char)*q) || *q == '-' || *q == '_' || *q == '.')) {
      jk_errf(err, cap, "route name \"%s\": letters, digits, '-', '_' and '.' only", name);
      return NULL;
    }
  for (size_t i = 0; i < c->nroutes; i++)
    if (strcmp(c->routes[i].name, name) == 0) {
      jk_errf(err, cap, "route %s defined twice", name);
      return NULL;
    }
  if (c->nroutes >= GW_MAX_ROUTES) {
    jk_errf(err, cap, "at most %u routes", GW_MAX_ROUTES);
    return NULL;
  }
  gw_route_cfg *nr = realloc(c->routes, (c->nroutes + 1) * sizeof *nr);
  if (nr == NULL) {
    jk_errf(err, cap, "out of memory");
    return NULL;
  }
  c->routes = nr;
  gw_route_cfg *r = &c->routes[c->nroutes];
  memset(r, 0, sizeof *r);
  r->leeway = -1;
  r->line = line;
  if ((r->name = dup_str(name)) == NULL) {
    jk_errf(err, cap, "out of memory");
    return NULL;
  }
  c->nroutes++;
  return r;
}

/* -------------------------------------------------------------- route */

static int is_tchar(int c) { return isalnum(c) || strchr("!#$%&'*+-.^_`|~", c) != NULL; }

static int valid_header_name(const char *s) {
  if (*s == '\0' || strlen(s) >= GW_MAX_HEADER_NAME) return 0;
  for (const char *q = s; *q; q++)
    if (!(isalnum((unsigned char)*q) || *q == '-' || *q == '_')) return 0;
  return 1;
}

static int reserved_header(const char *s) {
  static const char *const r[] = {"connection", "content-length", "content-type", "transfer-encoding",
                                  "keep-alive", "www-authenticate", "date", "server", "set-cookie",
                                  "upgrade", "trailer", "te", "proxy-authenticate", "location",
                                  GW_STRIP_AUTHORIZATION_HEADER, NULL};
  for (size_t i = 0; r[i]; i++)
    if (strcasecmp(s, r[i]) == 0) return 1;
  return 0;
}

static int parse_algs(gw_route_cfg *r, const char *v, char *err, size_t cap) {
  const char *s = v;
  for (;;) {
    while (*s == ' ' || *s == '\t') s++;
    const char *e = s;
    while (*e && *e != ',') e++;
    const char *t = e;
    while (t > s && (t[-1] == ' ' || t[-1] == '\t')) t--;
    size_t n = (size_t)(t - s);
    if (n == 0) return jk_errf(err, cap, "'algs': empty algorithm name in \"%s\"", v);
    jwtkit_alg a = jwtkit_alg_from_name(s, n);
    if (a == JWTKIT_ALG_UNSPEC) {
      if (n == 4 && strncasecmp(s, "none", 4) == 0) return jk_errf(err, cap, "'algs': \"none\" is never accepted");
      return jk_errf(err, cap,
                     "'algs': unknown algorithm \"%.*s\" (RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA)",
                     (int)n, s);
    }
    if (jwtkit_alg_kty(a) == JWTKIT_KTY_OCT)
      return jk_errf(err, cap,
                     "'algs': %s is not accepted from a JWK Set or key file; HS256 tokens are accepted only "
                     "in migration mode (legacy_hs256_secret_file + legacy_deadline)",
                     jwtkit_alg_name(a));
    int dup = 0;
    for (size_t i = 0; i < r->nalgs; i++) dup |= r->algs[i] == a;
    if (!dup) r->algs[r->nalgs++] = a;
    if (*e == '\0') break;
    s = e + 1;
  }
  return 0;
}

static int header_key(gw_route_cfg *r, const char *k, const char *v, int optional, char *err, size_t cap) {
  const char *name = k + (optional ? 16 : 7);
  while (*name == ' ' || *name == '\t') name++;
  if (!valid_header_name(name))
    return jk_errf(err, cap, "header name \"%s\": letters, digits, '-' and '_' only", name);
  if (reserved_header(name)) return jk_errf(err, cap, "header name \"%s\" is reserved", name);
  if (strlen(v) >= GW_MAX_CLAIM_NAME) return jk_errf(err, cap, "claim name too long");
  if (r->nheaders >= GW_MAX_HEADERS) return jk_errf(err, cap, "at most %u header mappings per route", GW_MAX_HEADERS);
  for (size_t i = 0; i < r->nheaders; i++)
    if (strcasecmp(r->headers[i].name, name) == 0) return jk_errf(err, cap, "header %s mapped twice", name);
  gw_header_map *m = &r->headers[r->nheaders++];
  snprintf(m->name, sizeof m->name, "%s", name);
  snprintf(m->claim, sizeof m->claim, "%s", v);
  m->optional = optional;
  return 0;
}

static int host_key(gw_route_cfg *r, const char *k, const char *v, char *err, size_t cap) {
  char h[GW_MAX_HOST];
  size_t n = strlen(v);
  if (n >= sizeof h) return jk_errf(err, cap, "'match_host' too long");
  for (size_t i = 0; i <= n; i++) h[i] = (char)tolower((unsigned char)v[i]);
  for (size_t i = 0; i < n; i++)
    if (!(isalnum((unsigned char)h[i]) || h[i] == '.' || h[i] == '-' || (h[i] == '*' && i == 0)))
      return jk_errf(err, cap, "'match_host': bad host \"%s\" (a name, or *.name for subdomains; no port)", v);
  if (h[0] == '*' && h[1] != '.') return jk_errf(err, cap, "'match_host': a wildcard must be \"*.domain\"");
  return strlist_add(&r->hosts, k, h, err, cap);
}

static const char *const k_single[] = {"issuer",          "jwks_url",        "typ",
                                       "leeway",          "max_age",         "token_cookie",
                                       "token_header",    "allow_http_jwks", "legacy_hs256_secret_file",
                                       "legacy_deadline", "claim_header_failure", "strip_authorization",
                                       "issuer_discovery", "token_cache", NULL};

int gw_route_set(gw_route_cfg *r, const char *k, const char *v, char *err, size_t cap) {
  for (int i = 0; k_single[i]; i++)
    if (strcmp(k_single[i], k) == 0) {
      if (r->seen & (1u << i)) return jk_errf(err, cap, "'%s' given twice in [route %s]", k, r->name);
      r->seen |= 1u << i;
    }
  if (*v == '\0') return jk_errf(err, cap, "'%s' needs a value", k);
  int optional = strncmp(k, "optional_header", 15) == 0 && (k[15] == ' ' || k[15] == '\t');
  if (optional || (strncmp(k, "header", 6) == 0 && (k[6] == ' ' || k[6] == '\t')))
    return header_key(r, k, v, optional, err, cap);
  if (strcmp(k, "match_host") == 0) return host_key(r, k, v, err, cap);
  if (strcmp(k, "match_path_prefix") == 0) {
    if (v[0] != '/') return jk_errf(err, cap, "'match_path_prefix' must start with '/'");
    for (const char *q = v; *q; q++)
      if ((unsigned char)*q <= 0x20 || *q == 0x7F || *q == '?' || *q == '#')
        return jk_errf(err, cap, "'match_path_prefix': no spaces, controls, '?' or '#'");
    return strlist_add(&r->prefixes, k, v, err, cap);
  }
  if (strcmp(k, "issuer") == 0) return set_str(&r->issuer, k, v, err, cap);
  if (strcmp(k, "jwks_url") == 0) {
    for (const char *q = v; *q; q++)
      if ((unsigned char)*q <= 0x20 || *q == 0x7F) return jk_errf(err, cap, "'jwks_url': no spaces or control characters");
    if (strlen(v) > GW_MAX_URL) return jk_errf(err, cap, "'jwks_url' too long (at most %u bytes)", GW_MAX_URL);
    if (strncasecmp(v, "https://", 8) != 0 && strncasecmp(v, "http://", 7) != 0)
      return jk_errf(err, cap, "'jwks_url' must be an https:// URL");
    return set_str(&r->jwks_url, k, v, err, cap);
  }
  if (strcmp(k, "key_file") == 0) return strlist_add(&r->key_files, k, v, err, cap);
  if (strcmp(k, "algs") == 0) return parse_algs(r, v, err, cap);
  if (strcmp(k, "audience") == 0) return strlist_add(&r->audiences, k, v, err, cap);
  if (strcmp(k, "typ") == 0) return set_str(&r->typ, k, v, err, cap);
  if (strcmp(k, "require") == 0) return strlist_add(&r->require, k, v, err, cap);
  if (strcmp(k, "leeway") == 0) return gw_value_duration(k, v, 0, JWTKIT_MAX_LEEWAY, &r->leeway, err, cap);
  if (strcmp(k, "max_age") == 0) return gw_value_duration(k, v, 1, 366 * 86400, &r->max_age, err, cap);
  if (strcmp(k, "token_cookie") == 0) {
    for (const char *q = v; *q; q++)
      if (!is_tchar((unsigned char)*q)) return jk_errf(err, cap, "'token_cookie': bad cookie name \"%s\"", v);
    return set_str(&r->token_cookie, k, v, err, cap);
  }
  if (strcmp(k, "token_header") == 0) {
    if (!valid_header_name(v)) return jk_errf(err, cap, "'token_header': bad header name \"%s\"", v);
    if (strcasecmp(v, "Cookie") == 0 || strcasecmp(v, "Host") == 0)
      return jk_errf(err, cap, "'token_header' cannot be %s", v);
    if (strcasecmp(v, "Authorization") == 0) return 0; /* always read */
    return set_str(&r->token_header, k, v, err, cap);
  }
  if (strcmp(k, "issuer_discovery") == 0) {
    if (jk_parse_bool(v, &r->issuer_discovery) != 0)
      return jk_errf(err, cap, "'%s': expected %s, got \"%s\"", k, JK_BOOL_HELP, v);
    return 0;
  }
  if (strcmp(k, "token_cache") == 0) {
    int on = 1;
    if (jk_parse_bool(v, &on) != 0) return jk_errf(err, cap, "'%s': expected %s, got \"%s\"", k, JK_BOOL_HELP, v);
    r->token_cache_off = !on;
    return 0;
  }
  if (strcmp(k, "strip_authorization") == 0) {
    if (jk_parse_bool(v, &r->strip_authorization) != 0)
      return jk_errf(err, cap, "'%s': expected %s, got \"%s\"", k, JK_BOOL_HELP, v);
    return 0;
  }
  if (strcmp(k, "allow_http_jwks") == 0) {
    if (jk_parse_bool(v, &r->allow_http_jwks) != 0)
      return jk_errf(err, cap, "'%s': expected %s, got \"%s\"", k, JK_BOOL_HELP, v);
    return 0;
  }
  if (strcmp(k, "claim_header_failure") == 0) {
    if (strcmp(v, "deny") == 0) r->claim_header_allow = 0;
    else if (strcmp(v, "allow") == 0) r->claim_header_allow = 1;
    else return jk_errf(err, cap, "'claim_header_failure': expected deny or allow, got \"%s\"", v);
    return 0;
  }
  if (strcmp(k, "legacy_hs256_secret_file") == 0) return set_str(&r->legacy_secret_file, k, v, err, cap);
  if (strcmp(k, "legacy_deadline") == 0) {
    if (jk_parse_rfc3339(v, &r->legacy_deadline) != 0)
      return jk_errf(err, cap, "'legacy_deadline': expected an RFC 3339 time like 2026-12-31T00:00:00Z, got \"%s\"", v);
    r->has_legacy_deadline = 1;
    return 0;
  }
  return jk_errf(err, cap, "unknown key '%s' in [route %s]", k, r->name);
}

/* -------------------------------------------------------------- check */

static int route_check(const gw_route_cfg *r, char *err, size_t cap) {
  if (r->nalgs == 0) return jk_errf(err, cap, "[route %s]: 'algs' is required (there is no default algorithm)", r->name);
  if (r->issuer_discovery) {
    if (r->jwks_url != NULL)
      return jk_errf(err, cap, "[route %s]: 'jwks_url' and 'issuer_discovery' both name the JWK Set; keep one", r->name);
    if (r->issuer == NULL)
      return jk_errf(err, cap, "[route %s]: 'issuer_discovery' needs 'issuer' (its metadata is read from there)", r->name);
    if (strncasecmp(r->issuer, "https://", 8) != 0 && (strncasecmp(r->issuer, "http://", 7) != 0 || !r->allow_http_jwks))
      return jk_errf(err, cap,
                     "[route %s]: 'issuer_discovery' needs an https:// issuer (\"%s\"; http:// only with "
                     "allow_http_jwks = true, to a loopback address)",
                     r->name, r->issuer);
    for (const char *q = r->issuer; *q; q++)
      if ((unsigned char)*q <= 0x20 || *q == 0x7F || *q == '?' || *q == '#')
        return jk_errf(err, cap, "[route %s]: 'issuer_discovery': the issuer \"%s\" is not a plain URL", r->name,
                       r->issuer);
    if (strlen(r->issuer) > GW_MAX_URL - 64)
      return jk_errf(err, cap, "[route %s]: 'issuer_discovery': the issuer is too long", r->name);
  }
  if (r->jwks_url == NULL && r->key_files.n == 0 && !r->issuer_discovery)
    return jk_errf(err, cap, "[route %s]: needs 'jwks_url', 'issuer_discovery' or 'key_file'", r->name);
  if (r->jwks_url != NULL && strncasecmp(r->jwks_url, "http://", 7) == 0 && !r->allow_http_jwks)
    return jk_errf(err, cap, "[route %s]: jwks_url is plain http://; use https:// or set allow_http_jwks = true",
                   r->name);
  if ((r->legacy_secret_file != NULL) != (r->has_legacy_deadline != 0))
    return jk_errf(err, cap, "[route %s]: migration mode needs both legacy_hs256_secret_file and legacy_deadline",
                   r->name);
  return 0;
}

int gw_config_check(const gw_config *c, int *line, char *err, size_t cap) {
  *line = 0;
  if (c->nroutes == 0) return jk_errf(err, cap, "no [route NAME] section");
  if (c->jwks.min_ttl > c->jwks.max_ttl) return jk_errf(err, cap, "jwks_min_ttl is larger than jwks_max_ttl");
  for (size_t i = 0; i < c->nroutes; i++)
    if (route_check(&c->routes[i], err, cap) != 0) {
      *line = c->routes[i].line;
      return -1;
    }
  return 0;
}

static const char *const k_repeatable[] = {"match_host", "match_path_prefix", "key_file", "algs", "audience",
                                           "require", "header", "optional_header", NULL};

const char *const *gw_global_keys(void) { return k_global; }

static const char *g_route_keys[sizeof k_single / sizeof k_single[0] + sizeof k_repeatable / sizeof k_repeatable[0]];
static pthread_once_t g_route_keys_once = PTHREAD_ONCE_INIT;

static void route_keys_init(void) {
  size_t n = 0;
  for (size_t i = 0; k_repeatable[i]; i++) g_route_keys[n++] = k_repeatable[i];
  for (size_t i = 0; k_single[i]; i++) g_route_keys[n++] = k_single[i];
  g_route_keys[n] = NULL;
}

const char *const *gw_route_keys(void) {
  pthread_once(&g_route_keys_once, route_keys_init);
  return g_route_keys;
}

const char *gw_route_source_url(const gw_route_cfg *rc) {
  return rc->jwks_url != NULL ? rc->jwks_url : rc->issuer_discovery ? rc->issuer : NULL;
}

jwtkit_alg gw_route_rsa_default(const gw_route_cfg *rc) {
  jwtkit_alg one = JWTKIT_ALG_UNSPEC;
  size_t n = 0;
  for (size_t i = 0; i < rc->nalgs; i++)
    if (jwtkit_alg_kty(rc->algs[i]) == JWTKIT_KTY_RSA) {
      one = rc->algs[i];
      n++;
    }
  return n == 1 ? one : JWTKIT_ALG_UNSPEC;
}
