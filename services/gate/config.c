/*
 * The configuration file: INI-like, strict.
 *
 *   # comment (whole lines only: values may contain '#')
 *   [gate]                    global settings (optional)
 *   key = value
 *   [route NAME]              one per policy, first match wins
 *   key = value
 *   header X-User = sub       claim -> response header
 *   optional_header X-Tenant = tenant   the same; the claim may be absent
 *
 * Unknown keys, a repeated single-valued key, a value out of range and a
 * route without algs or keys are errors with FILE:LINE.  Parsing has no
 * side effects: keys are loaded by state.c.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gate_internal.h"

typedef struct parser {
  const char *name;
  int line;
  char *err;
  size_t errcap;
  gate_config *cfg;
  gate_route_cfg *route; /* NULL in [gate] */
  int in_section;
  unsigned seen_gate; /* bit per single-valued [gate] key */
  unsigned seen_route;
} parser;

static int perr(parser *p, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static int perr(parser *p, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (p->line > 0)
    snprintf(p->err, p->errcap, "%s:%d: %s", p->name, p->line, msg);
  else
    snprintf(p->err, p->errcap, "%s: %s", p->name, msg);
  return -1;
}

static void strlist_free(gate_strlist *l) {
  for (size_t i = 0; i < l->n; i++) free(l->v[i]);
  free(l->v);
  l->v = NULL;
  l->n = 0;
}

static int strlist_add(parser *p, gate_strlist *l, const char *key, const char *v) {
  if (l->n >= GATE_MAX_LIST) return perr(p, "too many '%s' values (at most %u)", key, GATE_MAX_LIST);
  char **nv = realloc(l->v, (l->n + 1) * sizeof *nv);
  if (nv == NULL) return perr(p, "out of memory");
  l->v = nv;
  if ((l->v[l->n] = gate_strndup(v, strlen(v))) == NULL) return perr(p, "out of memory");
  l->n++;
  return 0;
}

static int set_str(parser *p, char **dst, const char *key, const char *v) {
  if (*dst != NULL) return perr(p, "'%s' given twice", key);
  if (*v == '\0') return perr(p, "'%s' needs a value", key);
  if ((*dst = gate_strndup(v, strlen(v))) == NULL) return perr(p, "out of memory");
  return 0;
}

static void route_free(gate_route_cfg *r) {
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

void gate_config_free(gate_config *c) {
  if (c == NULL) return;
  for (size_t i = 0; i < c->nroutes; i++) route_free(&c->routes[i]);
  free(c->routes);
  free(c->path);
  free(c->listen);
  free(c->jwks_ca_file);
  free(c);
}

static int is_tchar(int c) {
  return isalnum(c) || strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int valid_header_name(const char *s) {
  if (*s == '\0' || strlen(s) >= GATE_MAX_HEADER_NAME) return 0;
  for (const char *q = s; *q; q++)
    if (!(isalnum((unsigned char)*q) || *q == '-' || *q == '_')) return 0;
  return 1;
}

static int reserved_header(const char *s) {
  static const char *const r[] = {"connection", "content-length", "content-type", "transfer-encoding",
                                  "keep-alive", "www-authenticate", "date", "server", "set-cookie",
                                  "upgrade", "trailer", "te", "proxy-authenticate", "location", NULL};
  for (size_t i = 0; r[i]; i++)
    if (strcasecmp(s, r[i]) == 0) return 1;
  return 0;
}

static int parse_duration_key(parser *p, const char *key, const char *v, int64_t lo, int64_t hi, int64_t *out) {
  int64_t d;
  if (gate_parse_duration(v, &d) != 0 || d < lo || d > hi)
    return perr(p, "'%s': bad duration \"%s\" (seconds, or a number with s, m, h, d; %lld..%lld s)", key, v,
                (long long)lo, (long long)hi);
  *out = d;
  return 0;
}

static int parse_uint_key(parser *p, const char *key, const char *v, uint64_t lo, uint64_t hi, uint64_t *out) {
  if (gate_parse_uint(v, lo, hi, out) != 0)
    return perr(p, "'%s': expected a whole number in %llu..%llu, got \"%s\"", key, (unsigned long long)lo,
                (unsigned long long)hi, v);
  return 0;
}

/* ------------------------------------------------------------ [gate] */

static const char *const gate_keys[] = {"listen", "log_level", "threads", "token_cache", "max_token",
                                        "header_max", "connection_limit", "idle_timeout", "jwks_timeout",
                                        "jwks_max_bytes", "jwks_min_ttl", "jwks_max_ttl", "jwks_default_ttl",
                                        "jwks_refresh_ahead", "jwks_cooldown", "jwks_stale_max",
                                        "jwks_ca_file", "header_timeout", NULL};

static int gate_key(parser *p, const char *k, const char *v) {
  gate_config *c = p->cfg;
  int idx = -1;
  for (int i = 0; gate_keys[i]; i++)
    if (strcmp(gate_keys[i], k) == 0) idx = i;
  if (idx < 0) return perr(p, "unknown key '%s' in [gate]", k);
  if (p->seen_gate & (1u << idx)) return perr(p, "'%s' given twice", k);
  p->seen_gate |= 1u << idx;
  uint64_t u;
  switch (idx) {
    case 0:
      return set_str(p, &c->listen, k, v);
    case 1:
      if (gate_log_parse_level(v, &c->log_level) != 0)
        return perr(p, "'log_level': expected debug, info, warn or error, got \"%s\"", v);
      c->has_log_level = 1;
      return 0;
    case 2:
      if (parse_uint_key(p, k, v, 1, 256, &u)) return -1;
      c->threads = (unsigned)u;
      return 0;
    case 3:
      if (parse_uint_key(p, k, v, 0, GATE_MAX_CACHE_ENTRIES, &u)) return -1;
      c->token_cache = (size_t)u;
      return 0;
    case 4:
      if (parse_uint_key(p, k, v, 256, GATE_MAX_TOKEN_CAP, &u)) return -1;
      c->max_token = (size_t)u;
      return 0;
    case 5:
      if (parse_uint_key(p, k, v, 16, 8192, &u)) return -1;
      c->header_max = (size_t)u;
      return 0;
    case 6:
      if (parse_uint_key(p, k, v, 16, 65536, &u)) return -1;
      c->connection_limit = (unsigned)u;
      return 0;
    case 7: {
      int64_t d = 0;
      if (parse_duration_key(p, k, v, 1, 3600, &d)) return -1;
      c->idle_timeout = (unsigned)d;
      return 0;
    }
    case 8: {
      size_t n = strlen(v);
      if (n > 2 && strcmp(v + n - 2, "ms") == 0) {
        char num[24];
        if (n - 2 >= sizeof num) return perr(p, "'jwks_timeout': bad value \"%s\"", v);
        memcpy(num, v, n - 2);
        num[n - 2] = '\0';
        if (parse_uint_key(p, k, num, 100, 60000, &u)) return -1;
        c->jwks_timeout_ms = (int64_t)u;
        return 0;
      }
      int64_t d = 0;
      if (parse_duration_key(p, k, v, 1, 60, &d)) return -1;
      c->jwks_timeout_ms = d * 1000;
      return 0;
    }
    case 9:
      if (parse_uint_key(p, k, v, 1024, JWTKIT_MAX_JWKS_BYTES, &u)) return -1;
      c->jwks_max_bytes = (size_t)u;
      return 0;
    case 10:
      return parse_duration_key(p, k, v, 1, 86400, &c->jwks_min_ttl);
    case 11:
      return parse_duration_key(p, k, v, 1, 7 * 86400, &c->jwks_max_ttl);
    case 12:
      return parse_duration_key(p, k, v, 1, 7 * 86400, &c->jwks_default_ttl);
    case 13:
      return parse_duration_key(p, k, v, 0, 86400, &c->jwks_refresh_ahead);
    case 14:
      return parse_duration_key(p, k, v, 1, 86400, &c->jwks_cooldown);
    case 15:
      return parse_duration_key(p, k, v, 0, 30 * 86400, &c->jwks_stale_max);
    case 16:
      return set_str(p, &c->jwks_ca_file, k, v);
    case 17: {
      int64_t d = 0;
      if (parse_duration_key(p, k, v, 1, 300, &d)) return -1;
      c->header_timeout = (unsigned)d;
      return 0;
    }
  }
  return perr(p, "unknown key '%s'", k);
}

/* ----------------------------------------------------------- [route] */

static const char *const route_single[] = {"issuer", "jwks_url", "typ", "leeway", "max_age", "token_cookie",
                                           "token_header", "allow_http_jwks", "legacy_hs256_secret_file",
                                           "legacy_deadline", "claim_header_failure", NULL};

static int parse_algs(parser *p, gate_route_cfg *r, const char *v) {
  const char *s = v;
  for (;;) {
    while (*s == ' ' || *s == '\t') s++;
    const char *e = s;
    while (*e && *e != ',') e++;
    const char *t = e;
    while (t > s && (t[-1] == ' ' || t[-1] == '\t')) t--;
    size_t n = (size_t)(t - s);
    if (n == 0) return perr(p, "'algs': empty algorithm name in \"%s\"", v);
    jwtkit_alg a = jwtkit_alg_from_name(s, n);
    if (a == JWTKIT_ALG_UNSPEC) {
      if (n == 4 && strncasecmp(s, "none", 4) == 0) return perr(p, "'algs': \"none\" is never accepted");
      return perr(p, "'algs': unknown algorithm \"%.*s\" (RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA)",
                  (int)n, s);
    }
    if (jwtkit_alg_kty(a) == JWTKIT_KTY_OCT)
      return perr(p,
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

static int route_key(parser *p, const char *k, const char *v) {
  gate_route_cfg *r = p->route;
  for (int i = 0; route_single[i]; i++)
    if (strcmp(route_single[i], k) == 0) {
      if (p->seen_route & (1u << i)) return perr(p, "'%s' given twice in [route %s]", k, r->name);
      p->seen_route |= 1u << i;
    }
  if (*v == '\0') return perr(p, "'%s' needs a value", k);
  int optional = strncmp(k, "optional_header", 15) == 0 && (k[15] == ' ' || k[15] == '\t');
  if (optional || (strncmp(k, "header", 6) == 0 && (k[6] == ' ' || k[6] == '\t'))) {
    const char *name = k + (optional ? 16 : 7);
    while (*name == ' ' || *name == '\t') name++;
    if (!valid_header_name(name)) return perr(p, "header name \"%s\": letters, digits, '-' and '_' only", name);
    if (reserved_header(name)) return perr(p, "header name \"%s\" is reserved", name);
    if (strlen(v) >= sizeof r->headers[0].claim) return perr(p, "claim name too long");
    if (r->nheaders >= GATE_MAX_HEADERS) return perr(p, "at most %u header mappings per route", GATE_MAX_HEADERS);
    for (size_t i = 0; i < r->nheaders; i++)
      if (strcasecmp(r->headers[i].name, name) == 0) return perr(p, "header %s mapped twice", name);
    snprintf(r->headers[r->nheaders].name, sizeof r->headers[0].name, "%s", name);
    snprintf(r->headers[r->nheaders].claim, sizeof r->headers[0].claim, "%s", v);
    r->headers[r->nheaders].optional = optional;
    r->nheaders++;
    return 0;
  }
  if (strcmp(k, "match_host") == 0) {
    char h[256];
    size_t n = strlen(v);
    if (n >= sizeof h) return perr(p, "'match_host' too long");
    for (size_t i = 0; i <= n; i++) h[i] = (char)tolower((unsigned char)v[i]);
    for (size_t i = 0; i < n; i++)
      if (!(isalnum((unsigned char)h[i]) || h[i] == '.' || h[i] == '-' || (h[i] == '*' && i == 0)))
        return perr(p, "'match_host': bad host \"%s\" (a name, or *.name for subdomains; no port)", v);
    if (h[0] == '*' && h[1] != '.') return perr(p, "'match_host': a wildcard must be \"*.domain\"");
    return strlist_add(p, &r->hosts, k, h);
  }
  if (strcmp(k, "match_path_prefix") == 0) {
    if (v[0] != '/') return perr(p, "'match_path_prefix' must start with '/'");
    for (const char *q = v; *q; q++)
      if ((unsigned char)*q <= 0x20 || *q == 0x7F || *q == '?' || *q == '#')
        return perr(p, "'match_path_prefix': no spaces, controls, '?' or '#'");
    return strlist_add(p, &r->prefixes, k, v);
  }
  if (strcmp(k, "issuer") == 0) return set_str(p, &r->issuer, k, v);
  if (strcmp(k, "jwks_url") == 0) {
    for (const char *q = v; *q; q++)
      if ((unsigned char)*q <= 0x20 || *q == 0x7F) return perr(p, "'jwks_url': no spaces or control characters");
    if (strlen(v) > 2048) return perr(p, "'jwks_url' too long");
    if (strncasecmp(v, "https://", 8) != 0 && strncasecmp(v, "http://", 7) != 0)
      return perr(p, "'jwks_url' must be an https:// URL");
    return set_str(p, &r->jwks_url, k, v);
  }
  if (strcmp(k, "key_file") == 0) return strlist_add(p, &r->key_files, k, v);
  if (strcmp(k, "algs") == 0) return parse_algs(p, r, v);
  if (strcmp(k, "audience") == 0) return strlist_add(p, &r->audiences, k, v);
  if (strcmp(k, "typ") == 0) return set_str(p, &r->typ, k, v);
  if (strcmp(k, "require") == 0) return strlist_add(p, &r->require, k, v);
  if (strcmp(k, "leeway") == 0) return parse_duration_key(p, k, v, 0, JWTKIT_MAX_LEEWAY, &r->leeway);
  if (strcmp(k, "max_age") == 0) return parse_duration_key(p, k, v, 1, 366 * 86400, &r->max_age);
  if (strcmp(k, "token_cookie") == 0) {
    for (const char *q = v; *q; q++)
      if (!is_tchar((unsigned char)*q)) return perr(p, "'token_cookie': bad cookie name \"%s\"", v);
    return set_str(p, &r->token_cookie, k, v);
  }
  if (strcmp(k, "token_header") == 0) {
    if (!valid_header_name(v)) return perr(p, "'token_header': bad header name \"%s\"", v);
    if (strcasecmp(v, "Cookie") == 0 || strcasecmp(v, "Host") == 0)
      return perr(p, "'token_header' cannot be %s", v);
    if (strcasecmp(v, "Authorization") == 0) return 0; /* always read */
    return set_str(p, &r->token_header, k, v);
  }
  if (strcmp(k, "allow_http_jwks") == 0) {
    if (gate_parse_bool(v, &r->allow_http_jwks) != 0) return perr(p, "'%s': expected true or false", k);
    return 0;
  }
  if (strcmp(k, "claim_header_failure") == 0) {
    if (strcmp(v, "deny") == 0) r->claim_header_allow = 0;
    else if (strcmp(v, "allow") == 0) r->claim_header_allow = 1;
    else return perr(p, "'claim_header_failure': expected deny or allow, got \"%s\"", v);
    return 0;
  }
  if (strcmp(k, "legacy_hs256_secret_file") == 0) return set_str(p, &r->legacy_secret_file, k, v);
  if (strcmp(k, "legacy_deadline") == 0) {
    if (gate_parse_rfc3339(v, &r->legacy_deadline) != 0)
      return perr(p, "'legacy_deadline': expected an RFC 3339 time like 2026-12-31T00:00:00Z, got \"%s\"", v);
    r->has_legacy_deadline = 1;
    return 0;
  }
  return perr(p, "unknown key '%s' in [route %s]", k, r->name);
}

static int route_check(parser *p, const gate_route_cfg *r) {
  p->line = r->line;
  if (r->nalgs == 0) return perr(p, "[route %s]: 'algs' is required (there is no default algorithm)", r->name);
  if (r->jwks_url == NULL && r->key_files.n == 0)
    return perr(p, "[route %s]: needs 'jwks_url' or 'key_file'", r->name);
  if (r->jwks_url != NULL && strncasecmp(r->jwks_url, "http://", 7) == 0 && !r->allow_http_jwks)
    return perr(p, "[route %s]: jwks_url is plain http://; use https:// or set allow_http_jwks = true", r->name);
  if ((r->legacy_secret_file != NULL) != (r->has_legacy_deadline != 0))
    return perr(p, "[route %s]: migration mode needs both legacy_hs256_secret_file and legacy_deadline", r->name);
  return 0;
}

/* ------------------------------------------------------------- parse */

static char *trim(char *s) {
  while (*s == ' ' || *s == '\t') s++;
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) s[--n] = '\0';
  return s;
}

static int section(parser *p, char *s) {
  size_t n = strlen(s);
  if (s[n - 1] != ']') return perr(p, "unterminated section header");
  s[n - 1] = '\0';
  char *name = trim(s + 1);
  p->in_section = 1;
  if (strcmp(name, "gate") == 0) {
    if (p->seen_gate & 0x80000000u) return perr(p, "[gate] given twice");
    p->seen_gate |= 0x80000000u;
    p->route = NULL;
    return 0;
  }
  if (strncmp(name, "route", 5) != 0 || (name[5] != ' ' && name[5] != '\t'))
    return perr(p, "unknown section [%s] (expected [gate] or [route NAME])", name);
  char *rn = trim(name + 6);
  if (*rn == '\0' || strlen(rn) > 64) return perr(p, "a route needs a name of 1..64 characters");
  for (char *q = rn; *q; q++)
    if (!(isalnum((unsigned char)*q) || *q == '-' || *q == '_' || *q == '.'))
      return perr(p, "route name \"%s\": letters, digits, '-', '_' and '.' only", rn);
  gate_config *c = p->cfg;
  for (size_t i = 0; i < c->nroutes; i++)
    if (strcmp(c->routes[i].name, rn) == 0) return perr(p, "route %s defined twice", rn);
  if (c->nroutes >= GATE_MAX_ROUTES) return perr(p, "at most %u routes", GATE_MAX_ROUTES);
  gate_route_cfg *nr = realloc(c->routes, (c->nroutes + 1) * sizeof *nr);
  if (nr == NULL) return perr(p, "out of memory");
  c->routes = nr;
  gate_route_cfg *r = &c->routes[c->nroutes];
  memset(r, 0, sizeof *r);
  r->leeway = -1;
  r->line = p->line;
  if ((r->name = gate_strndup(rn, strlen(rn))) == NULL) return perr(p, "out of memory");
  c->nroutes++;
  p->route = r;
  p->seen_route = 0;
  return 0;
}

int gate_config_parse(const char *name, const char *text, size_t len, gate_config **out, char *err, size_t errcap) {
  *out = NULL;
  gate_config *c = calloc(1, sizeof *c);
  if (c == NULL) {
    snprintf(err, errcap, "%s: out of memory", name);
    return -1;
  }
  c->token_cache = 10000;
  c->max_token = 8192;
  c->header_max = 1024;
  c->connection_limit = 1024;
  c->idle_timeout = 120;
  c->header_timeout = 5;
  c->jwks_timeout_ms = 5000;
  c->jwks_max_bytes = 65536;
  c->jwks_min_ttl = 30;
  c->jwks_max_ttl = 3600;
  c->jwks_default_ttl = 300;
  c->jwks_refresh_ahead = 30;
  c->jwks_cooldown = 30;
  c->jwks_stale_max = 86400;
  parser p = {.name = name, .err = err, .errcap = errcap, .cfg = c};
  if ((c->path = gate_strndup(name, strlen(name))) == NULL) goto oom;
  if (memchr(text, '\0', len) != NULL) {
    perr(&p, "the file contains a NUL byte");
    goto fail;
  }
  size_t pos = 0;
  while (pos < len) {
    p.line++;
    size_t e = pos;
    while (e < len && text[e] != '\n') e++;
    if (e - pos >= GATE_MAX_LINE) {
      perr(&p, "line longer than %u bytes", GATE_MAX_LINE);
      goto fail;
    }
    char buf[GATE_MAX_LINE];
    memcpy(buf, text + pos, e - pos);
    buf[e - pos] = '\0';
    pos = e + 1;
    char *s = trim(buf);
    if (*s == '\0' || *s == '#' || *s == ';') continue;
    if (*s == '[') {
      if (section(&p, s) != 0) goto fail;
      continue;
    }
    char *eq = strchr(s, '=');
    if (eq == NULL) {
      perr(&p, "expected 'key = value'");
      goto fail;
    }
    *eq = '\0';
    char *k = trim(s);
    char *v = trim(eq + 1);
    size_t vl = strlen(v);
    if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
      v[vl - 1] = '\0';
      v++;
    }
    if (*k == '\0') {
      perr(&p, "missing key before '='");
      goto fail;
    }
    if (!p.in_section) {
      perr(&p, "'%s' outside a section ([gate] or [route NAME])", k);
      goto fail;
    }
    if ((p.route ? route_key(&p, k, v) : gate_key(&p, k, v)) != 0) goto fail;
  }
  if (c->nroutes == 0) {
    p.line = 0;
    perr(&p, "no [route NAME] section");
    goto fail;
  }
  if (c->jwks_min_ttl > c->jwks_max_ttl) {
    p.line = 0;
    perr(&p, "jwks_min_ttl is larger than jwks_max_ttl");
    goto fail;
  }
  for (size_t i = 0; i < c->nroutes; i++)
    if (route_check(&p, &c->routes[i]) != 0) goto fail;
  *out = c;
  return 0;
oom:
  snprintf(err, errcap, "%s: out of memory", name);
fail:
  gate_config_free(c);
  return -1;
}

int gate_config_load(const char *path, gate_config **out, char *err, size_t errcap) {
  char *text;
  size_t len;
  *out = NULL;
  if (gate_read_file(path, GATE_MAX_CONFIG, 0, &text, &len, err, errcap) != 0) return -1;
  int rc = gate_config_parse(path, text, len, out, err, errcap);
  free(text);
  return rc;
}
