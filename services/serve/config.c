/* Settings (config file and command line) and the clients file.
 *
 * Both files are INI-like: `key = value` lines, `#` or `;` comment lines,
 * blank lines; the clients file has `[client NAME]` sections.  Parsing is
 * bounded (file size, line length, number of clients and values) and every
 * error names FILE:LINE. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "serve.h"

/* ------------------------------------------------------------ settings */

void sv_settings_defaults(sv_settings *s) {
  memset(s, 0, sizeof *s);
  snprintf(s->listen, sizeof s->listen, "127.0.0.1:8080");
  snprintf(s->keyring, sizeof s->keyring, "./var/keyring");
  snprintf(s->clients, sizeof s->clients, "./var/clients.conf");
  s->algs[0] = JWTKIT_ALG_ES256;
  s->nalgs = 1;
  s->rotate_check = 30;
  jwtkit_keyring_timing t;
  jwtkit_keyring_timing_default(&t);
  s->max_age = t.max_age;
  s->token_ttl = t.token_ttl;
  s->rotate_every = t.rotate_every;
  s->transition_ttl = 0;
  s->threads = 0; /* number of cores */
  s->max_connections = 1024;
  s->header_timeout = 5;
  s->max_connections_ip = 64;
  s->rate_ip.count = 20;
  s->rate_ip.per = 1;
  s->burst_ip = 100;
  s->rate_client.count = 10;
  s->rate_client.per = 1;
  s->burst_client = 100;
  s->fail_cost = 10;
  s->log_level = SV_LOG_INFO;
}

int sv_parse_rate(const char *s, sv_rate *out) {
  if (strcmp(s, "off") == 0 || strcmp(s, "0") == 0) {
    out->count = 0;
    out->per = 1;
    return 0;
  }
  const char *slash = strchr(s, '/');
  if (slash == NULL || slash == s || (size_t)(slash - s) > 9) return -1;
  char num[16];
  memcpy(num, s, (size_t)(slash - s));
  num[slash - s] = '\0';
  long long n;
  if (sv_parse_int(num, 0, 1000000, &n) != 0) return -1;
  int64_t per;
  if (strcmp(slash + 1, "s") == 0) per = 1;
  else if (strcmp(slash + 1, "m") == 0) per = 60;
  else if (strcmp(slash + 1, "h") == 0) per = 3600;
  else return -1;
  out->count = n;
  out->per = n == 0 ? 1 : per;
  return 0;
}

typedef enum { K_STR, K_DUR, K_INT, K_ALG, K_LEVEL, K_BOOL, K_RATE } kind;

typedef struct opt_def {
  const char *name;
  kind k;
  size_t off, size;
  uint32_t bit;
  long long lo, hi; /* K_DUR / K_INT range */
} opt_def;

#define F(m) offsetof(sv_settings, m), sizeof(((sv_settings *)0)->m)
static const opt_def k_opts[] = {
    {"listen", K_STR, F(listen), SV_SET_LISTEN, 0, 0},
    {"issuer", K_STR, F(issuer), SV_SET_ISSUER, 0, 0},
    {"keyring", K_STR, F(keyring), SV_SET_KEYRING, 0, 0},
    {"clients", K_STR, F(clients), SV_SET_CLIENTS, 0, 0},
    {"passphrase_file", K_STR, F(passphrase_file), SV_SET_PASSFILE, 0, 0},
    {"passphrase_env", K_STR, F(passphrase_env), SV_SET_PASSENV, 0, 0},
    {"kek_file", K_STR, F(kek_file), SV_SET_KEKFILE, 0, 0},
    {"kek_env", K_STR, F(kek_env), SV_SET_KEKENV, 0, 0},
    {"legacy_hs256_secret_file", K_STR, F(legacy_secret_file), SV_SET_LEGACY, 0, 0},
    {"alg", K_ALG, F(algs), SV_SET_ALGS, 0, 0},
    {"algs", K_ALG, F(algs), SV_SET_ALGS, 0, 0},
    {"rotate_check", K_DUR, F(rotate_check), SV_SET_ROTATE_CHECK, 1, 86400},
    {"max_age", K_DUR, F(max_age), SV_SET_MAX_AGE, 0, 86400},
    {"token_ttl", K_DUR, F(token_ttl), SV_SET_TOKEN_TTL, 1, 366 * 86400LL},
    {"rotate_every", K_DUR, F(rotate_every), SV_SET_ROTATE_EVERY, 1, 10 * 366 * 86400LL},
    {"transition_ttl", K_DUR, F(transition_ttl), SV_SET_TRANSITION, 0, 86400},
    {"thread_pool", K_INT, F(threads), SV_SET_THREADS, 1, 256},
    {"max_connections", K_INT, F(max_connections), SV_SET_MAXCONN, 1, 100000},
    {"max_connections_per_ip", K_INT, F(max_connections_ip), SV_SET_MAXCONN_IP, 0, 100000},
    {"header_timeout", K_DUR, F(header_timeout), SV_SET_HEADER_TIMEOUT, 1, 300},
    {"token_rate_ip", K_RATE, F(rate_ip), SV_SET_RATE_IP, 0, 0},
    {"token_burst_ip", K_INT, F(burst_ip), SV_SET_BURST_IP, 1, 1000000},
    {"token_rate_client", K_RATE, F(rate_client), SV_SET_RATE_CLIENT, 0, 0},
    {"token_burst_client", K_INT, F(burst_client), SV_SET_BURST_CLIENT, 1, 1000000},
    {"token_fail_cost", K_INT, F(fail_cost), SV_SET_FAIL_COST, 1, 1000},
    {"log_level", K_LEVEL, F(log_level), SV_SET_LOGLEVEL, 0, 0},
    {"demo", K_BOOL, F(demo), SV_SET_DEMO, 0, 0},
};
#undef F

static int parse_bool(const char *v, int *out) {
  if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on") || !strcmp(v, "1")) *out = 1;
  else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off") || !strcmp(v, "0")) *out = 0;
  else return -1;
  return 0;
}

/* "ES256", "ES256,RS256", "ES256 RS256" appended to s->algs. */
static int add_algs(sv_settings *s, const char *v, char *err, size_t cap) {
  const char *p = v;
  int any = 0;
  while (*p) {
    while (*p == ' ' || *p == ',' || *p == '\t') p++;
    if (!*p) break;
    const char *e = p;
    while (*e && *e != ' ' && *e != ',' && *e != '\t') e++;
    jwtkit_alg a = jwtkit_alg_from_name(p, (size_t)(e - p));
    jwtkit_kty kty = jwtkit_alg_kty(a);
    if (a == JWTKIT_ALG_UNSPEC) {
      sv_fmt(err, cap, "unknown algorithm '%.*s'", (int)(e - p > 32 ? 32 : e - p), p);
      return -1;
    }
    if (kty == JWTKIT_KTY_OCT) {
      snprintf(err, cap,
               "%s is never minted: the issuer signs with RS*, PS*, ES* or EdDSA keys only (an HS256 "
               "secret of a migration goes in legacy_hs256_secret_file)",
               jwtkit_alg_name(a));
      return -1;
    }
    for (size_t i = 0; i < s->nalgs; i++)
      if (s->algs[i] == a) {
        sv_fmt(err, cap, "algorithm %s named twice", jwtkit_alg_name(a));
        return -1;
      }
    if (s->nalgs >= SV_MAX_ALGS) {
      sv_fmt(err, cap, "at most %u algorithms", SV_MAX_ALGS);
      return -1;
    }
    s->algs[s->nalgs++] = a;
    any = 1;
    p = e;
  }
  if (!any) {
    sv_fmt(err, cap, "no algorithm named");
    return -1;
  }
  return 0;
}

int sv_settings_set(sv_settings *s, const char *key, const char *value, char *err, size_t cap) {
  const opt_def *d = NULL;
  for (size_t i = 0; i < sizeof k_opts / sizeof k_opts[0]; i++)
    if (strcmp(k_opts[i].name, key) == 0) d = &k_opts[i];
  if (d == NULL) {
    sv_fmt(err, cap, "unknown option '%.64s'", key);
    return -1;
  }
  char *field = (char *)s + d->off;
  switch (d->k) {
    case K_STR: {
      size_t n = strlen(value);
      if (n == 0) {
        sv_fmt(err, cap, "%s: empty value", key);
        return -1;
      }
      if (n >= d->size) {
        sv_fmt(err, cap, "%s: value longer than %zu bytes", key, d->size - 1);
        return -1;
      }
      for (size_t i = 0; i < n; i++)
        if ((unsigned char)value[i] < 0x20 || value[i] == 0x7f) {
          sv_fmt(err, cap, "%s: control character in value", key);
          return -1;
        }
      memcpy(field, value, n + 1);
      break;
    }
    case K_DUR: {
      int64_t v;
      if (sv_parse_duration(value, &v) != 0 || v < d->lo || v > d->hi) {
        sv_fmt(err, cap, "%s: expected a duration like 90s, 15m, 1h, 7d in %llds..%llds", key, d->lo, d->hi);
        return -1;
      }
      *(int64_t *)field = v;
      break;
    }
    case K_INT: {
      long long v;
      if (sv_parse_int(value, d->lo, d->hi, &v) != 0) {
        sv_fmt(err, cap, "%s: expected an integer in %lld..%lld", key, d->lo, d->hi);
        return -1;
      }
      *(long long *)field = v;
      break;
    }
    case K_ALG: {
      if (!(s->set & SV_SET_ALGS)) s->nalgs = 0; /* the first alg line of a layer replaces the default */
      char e2[200];
      if (add_algs(s, value, e2, sizeof e2) != 0) {
        sv_fmt(err, cap, "%s: %s", key, e2);
        return -1;
      }
      break;
    }
    case K_LEVEL: {
      int l = sv_log_parse_level(value);
      if (l < 0) {
        sv_fmt(err, cap, "%s: expected debug, info, warn or error", key);
        return -1;
      }
      s->log_level = l;
      break;
    }
    case K_RATE: {
      sv_rate r;
      if (sv_parse_rate(value, &r) != 0) {
        sv_fmt(err, cap, "%s: expected a rate like 20/s, 600/m or 100/h (at most 1000000), or off", key);
        return -1;
      }
      memcpy(field, &r, sizeof r);
      break;
    }
    case K_BOOL: {
      int b;
      if (parse_bool(value, &b) != 0) {
        sv_fmt(err, cap, "%s: expected true or false", key);
        return -1;
      }
      *(int *)field = b;
      break;
    }
  }
  s->set |= d->bit;
  return 0;
}

static void trim(char **s, size_t *n) {
  while (*n > 0 && (**s == ' ' || **s == '\t')) {
    (*s)++;
    (*n)--;
  }
  while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t')) (*n)--;
}

/* Iterate the lines of text: fn(ctx, lineno, line) with the line trimmed
 * and NUL-terminated in place; comments and blank lines skipped. */
typedef int (*line_fn)(void *ctx, int lineno, char *line, size_t n, char *err, size_t cap);

static int each_line(char *text, size_t len, const char *path, line_fn fn, void *ctx, char *err, size_t cap) {
  if (memchr(text, '\0', len) != NULL) {
    sv_fmt(err, cap, "%s: contains a NUL byte", path);
    return -1;
  }
  int lineno = 0;
  size_t i = 0;
  while (i < len) {
    lineno++;
    char *nl = memchr(text + i, '\n', len - i);
    size_t end = nl ? (size_t)(nl - text) : len;
    size_t n = end - i;
    if (n > SV_MAX_LINE) {
      sv_fmt(err, cap, "%s:%d: line longer than %u bytes", path, lineno, SV_MAX_LINE);
      return -1;
    }
    char *line = text + i;
    if (n > 0 && line[n - 1] == '\r') n--;
    trim(&line, &n);
    line[n] = '\0';
    if (n > 0 && line[0] != '#' && line[0] != ';') {
      char e2[512];
      if (fn(ctx, lineno, line, n, e2, sizeof e2) != 0) {
        sv_fmt(err, cap, "%s:%d: %s", path, lineno, e2);
        return -1;
      }
    }
    i = end + 1;
  }
  return 0;
}

/* each_line over a private, NUL-terminated copy of text[0..len). */
static int each_line_copy(const char *text, size_t len, const char *path, line_fn fn, void *ctx, char *err,
                          size_t cap) {
  char *copy = malloc(len + 1);
  if (copy == NULL) {
    sv_fmt(err, cap, "out of memory");
    return -1;
  }
  memcpy(copy, text, len);
  copy[len] = '\0';
  int rc = each_line(copy, len, path, fn, ctx, err, cap);
  free(copy);
  return rc;
}

/* "key = value" -> key, value (trimmed, NUL-terminated in place). */
static int split_kv(char *line, size_t n, char **key, char **value, char *err, size_t cap) {
  char *eq = memchr(line, '=', n);
  if (eq == NULL) {
    sv_fmt(err, cap, "expected 'key = value'");
    return -1;
  }
  char *k = line;
  size_t kl = (size_t)(eq - line);
  char *v = eq + 1;
  size_t vl = n - kl - 1;
  trim(&k, &kl);
  trim(&v, &vl);
  k[kl] = '\0';
  v[vl] = '\0';
  if (kl == 0) {
    sv_fmt(err, cap, "missing key before '='");
    return -1;
  }
  *key = k;
  *value = v;
  return 0;
}

static int settings_line(void *ctx, int lineno, char *line, size_t n, char *err, size_t cap) {
  (void)lineno;
  if (line[0] == '[') {
    sv_fmt(err, cap, "sections are not used in the config file (clients go in the clients file)");
    return -1;
  }
  char *k, *v;
  if (split_kv(line, n, &k, &v, err, cap) != 0) return -1;
  if (strcmp(k, "demo") == 0 || strcmp(k, "config") == 0) {
    sv_fmt(err, cap, "'%s' is a command-line option only", k);
    return -1;
  }
  return sv_settings_set(ctx, k, v, err, cap);
}

int sv_settings_load(sv_settings *s, const char *path, char *err, size_t cap) {
  char *text = NULL;
  size_t len = 0;
  char e2[512];
  if (sv_read_file(path, SV_MAX_CONFIG, &text, &len, NULL, e2, sizeof e2) != 0) {
    sv_fmt(err, cap, "config %s", e2);
    return -1;
  }
  int rc = sv_settings_parse(s, text, len, path, err, cap);
  free(text);
  return rc;
}

int sv_settings_parse(sv_settings *s, const char *text, size_t len, const char *path, char *err, size_t cap) {
  return each_line_copy(text, len, path, settings_line, s, err, cap);
}

void sv_settings_overlay(sv_settings *dst, const sv_settings *src) {
#define OV(bit, field)                                    \
  if (src->set & (bit)) memcpy(&dst->field, &src->field, sizeof dst->field)
  OV(SV_SET_CONFIG, config);
  OV(SV_SET_LISTEN, listen);
  OV(SV_SET_ISSUER, issuer);
  OV(SV_SET_KEYRING, keyring);
  OV(SV_SET_CLIENTS, clients);
  OV(SV_SET_PASSFILE, passphrase_file);
  OV(SV_SET_PASSENV, passphrase_env);
  OV(SV_SET_KEKFILE, kek_file);
  OV(SV_SET_KEKENV, kek_env);
  OV(SV_SET_LEGACY, legacy_secret_file);
  OV(SV_SET_ROTATE_CHECK, rotate_check);
  OV(SV_SET_MAX_AGE, max_age);
  OV(SV_SET_TOKEN_TTL, token_ttl);
  OV(SV_SET_ROTATE_EVERY, rotate_every);
  OV(SV_SET_TRANSITION, transition_ttl);
  OV(SV_SET_THREADS, threads);
  OV(SV_SET_MAXCONN, max_connections);
  OV(SV_SET_MAXCONN_IP, max_connections_ip);
  OV(SV_SET_HEADER_TIMEOUT, header_timeout);
  OV(SV_SET_RATE_IP, rate_ip);
  OV(SV_SET_BURST_IP, burst_ip);
  OV(SV_SET_RATE_CLIENT, rate_client);
  OV(SV_SET_BURST_CLIENT, burst_client);
  OV(SV_SET_FAIL_COST, fail_cost);
  OV(SV_SET_LOGLEVEL, log_level);
  OV(SV_SET_DEMO, demo);
#undef OV
  if (src->set & SV_SET_ALGS) {
    memcpy(dst->algs, src->algs, sizeof dst->algs);
    dst->nalgs = src->nalgs;
  }
  dst->set |= src->set;
}

int sv_parse_listen(const char *s, void *ss_out, unsigned *len_out, char *err, size_t cap) {
  char host[256];
  const char *colon;
  size_t hl;
  if (s[0] == '[') {
    const char *rb = strchr(s, ']');
    if (rb == NULL || rb[1] != ':') {
      sv_fmt(err, cap, "listen: expected [IPv6]:PORT");
      return -1;
    }
    hl = (size_t)(rb - s - 1);
    if (hl >= sizeof host) hl = sizeof host - 1;
    memcpy(host, s + 1, hl);
    colon = rb + 1;
  } else {
    colon = strrchr(s, ':');
    if (colon == NULL) {
      sv_fmt(err, cap, "listen: expected ADDR:PORT");
      return -1;
    }
    hl = (size_t)(colon - s);
    if (hl >= sizeof host) hl = sizeof host - 1;
    memcpy(host, s, hl);
  }
  host[hl] = '\0';
  long long port;
  if (sv_parse_int(colon + 1, 1, 65535, &port) != 0) {
    sv_fmt(err, cap, "listen: port must be 1..65535");
    return -1;
  }
  struct sockaddr_storage *ss = ss_out;
  memset(ss, 0, sizeof *ss);
  if (strcmp(host, "localhost") == 0) snprintf(host, sizeof host, "127.0.0.1");
  struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
  if (s[0] != '[' && inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    *len_out = sizeof *a4;
  } else if (s[0] == '[' && inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)port);
    *len_out = sizeof *a6;
  } else {
    sv_fmt(err, cap, "listen: '%.64s' is not a numeric IPv4 address or a bracketed IPv6 address", host);
    return -1;
  }
  return 0;
}

int sv_issuer_ok(const char *s, char *err, size_t cap) {
  const char *rest;
  if (strncmp(s, "https://", 8) == 0) rest = s + 8;
  else if (strncmp(s, "http://", 7) == 0) rest = s + 7;
  else {
    sv_fmt(err, cap, "issuer: must be an http:// or https:// URL");
    return -1;
  }
  if (strlen(s) > 500) {
    sv_fmt(err, cap, "issuer: longer than 500 bytes");
    return -1;
  }
  size_t hostlen = strcspn(rest, "/");
  if (hostlen == 0) {
    sv_fmt(err, cap, "issuer: no host");
    return -1;
  }
  for (const char *p = s; *p; p++) {
    unsigned char c = (unsigned char)*p;
    if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>') {
      sv_fmt(err, cap, "issuer: characters outside printable ASCII, quotes or spaces");
      return -1;
    }
  }
  if (strchr(s, '?') || strchr(s, '#') || memchr(rest, '@', hostlen)) {
    sv_fmt(err, cap, "issuer: no query, fragment or user info (RFC 8414 §2)");
    return -1;
  }
  return 0;
}

int sv_settings_finish(sv_settings *s, char *err, size_t cap) {
  struct sockaddr_storage ss;
  unsigned sl;
  if (sv_parse_listen(s->listen, &ss, &sl, err, cap) != 0) return -1;
  if (!(s->set & SV_SET_ISSUER)) snprintf(s->issuer, sizeof s->issuer, "http://%s", s->listen);
  if (sv_issuer_ok(s->issuer, err, cap) != 0) return -1;
  if (s->nalgs == 0) {
    sv_fmt(err, cap, "no algorithm configured");
    return -1;
  }
  if ((s->set & SV_SET_PASSFILE) && (s->set & SV_SET_PASSENV)) {
    sv_fmt(err, cap, "give passphrase_file or passphrase_env, not both");
    return -1;
  }
  if ((s->set & SV_SET_KEKFILE) && (s->set & SV_SET_KEKENV)) {
    sv_fmt(err, cap, "give kek_file or kek_env, not both");
    return -1;
  }
  if ((s->set & (SV_SET_KEKFILE | SV_SET_KEKENV)) && !jwtkit_keyring_location_is_postgres(s->keyring)) {
    sv_fmt(err, cap, "kek_file and kek_env apply to a PostgreSQL keyring (keyring = postgres://...)");
    return -1;
  }
  return 0;
}

/* -------------------------------------------------------------- clients */

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
  free(c->name);
  for (size_t i = 0; i < c->naud; i++) free(c->aud[i]);
  for (size_t i = 0; i < c->nscopes; i++) free(c->scopes[i]);
  memset(c, 0, sizeof *c);
}

void sv_clients_free(sv_clients *c) {
  if (c == NULL) return;
  for (size_t i = 0; i < c->n; i++) client_clear(&c->v[i]);
  free(c->v);
  c->v = NULL;
  c->n = 0;
}

typedef struct clients_ctx {
  sv_clients *out;
  size_t cap;
  sv_client *cur;
  int have_hash, have_scopes, have_ttl, have_alg, have_disabled;
  const char *path;
} clients_ctx;

static int finish_client(clients_ctx *x, char *err, size_t cap) {
  if (x->cur == NULL) return 0;
  if (!x->have_hash) {
    sv_fmt(err, cap, "client %s (line %d) has no secret_hash", x->cur->name, x->cur->line);
    return -1;
  }
  if (x->cur->naud == 0) {
    sv_fmt(err, cap, "client %s (line %d) has no audience", x->cur->name, x->cur->line);
    return -1;
  }
  return 0;
}

static int clients_line(void *ctx, int lineno, char *line, size_t n, char *err, size_t cap) {
  clients_ctx *x = ctx;
  if (line[0] == '[') {
    if (line[n - 1] != ']') {
      sv_fmt(err, cap, "expected [client NAME]");
      return -1;
    }
    line[n - 1] = '\0';
    char *p = line + 1;
    while (*p == ' ' || *p == '\t') p++;
    if (strncmp(p, "client", 6) != 0 || (p[6] != ' ' && p[6] != '\t')) {
      sv_fmt(err, cap, "expected [client NAME]");
      return -1;
    }
    p += 6;
    while (*p == ' ' || *p == '\t') p++;
    size_t nl = strlen(p);
    while (nl > 0 && (p[nl - 1] == ' ' || p[nl - 1] == '\t')) p[--nl] = '\0';
    if (!sv_client_name_ok(p)) {
      sv_fmt(err, cap, "client names are 1..%u characters of A-Z a-z 0-9 . _ ~ -", SV_MAX_CLIENT_NAME);
      return -1;
    }
    /* the previous section's line is in its message */
    char e2[300];
    if (finish_client(x, e2, sizeof e2) != 0) {
      sv_fmt(err, cap, "%s", e2);
      return -1;
    }
    if (x->out->n >= SV_MAX_CLIENTS) {
      sv_fmt(err, cap, "more than %u clients", SV_MAX_CLIENTS);
      return -1;
    }
    if (x->out->n == x->cap) {
      size_t nc = x->cap ? x->cap * 2 : 16;
      sv_client *nv = realloc(x->out->v, nc * sizeof *nv);
      if (nv == NULL) {
        sv_fmt(err, cap, "out of memory");
        return -1;
      }
      x->out->v = nv;
      x->cap = nc;
    }
    x->cur = &x->out->v[x->out->n++];
    memset(x->cur, 0, sizeof *x->cur);
    x->cur->line = lineno;
    x->have_hash = x->have_scopes = x->have_ttl = x->have_alg = x->have_disabled = 0;
    if ((x->cur->name = strdup(p)) == NULL) {
      sv_fmt(err, cap, "out of memory");
      return -1;
    }
    return 0;
  }
  char *k, *v;
  if (split_kv(line, n, &k, &v, err, cap) != 0) return -1;
  if (x->cur == NULL) {
    sv_fmt(err, cap, "'%.64s' outside a [client NAME] section", k);
    return -1;
  }
  sv_client *c = x->cur;
  size_t vl = strlen(v);
  if (strcmp(k, "secret_hash") == 0) {
    if (x->have_hash++) goto twice;
    if (sv_secret_hash_parse(v, &c->hash) != 0) {
      sv_fmt(err, cap, "secret_hash: expected sha256$<salt>$<hash> (base64url); plaintext secrets are not accepted");
      return -1;
    }
  } else if (strcmp(k, "audience") == 0) {
    if (c->naud >= SV_MAX_AUDIENCES) {
      sv_fmt(err, cap, "more than %u audiences", SV_MAX_AUDIENCES);
      return -1;
    }
    if (vl == 0 || vl > SV_MAX_AUDIENCE_LEN || !sv_utf8_valid(v, vl)) {
      sv_fmt(err, cap, "audience: 1..%u bytes of UTF-8", SV_MAX_AUDIENCE_LEN);
      return -1;
    }
    for (size_t i = 0; i < vl; i++)
      if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f) {
        sv_fmt(err, cap, "audience: control character");
        return -1;
      }
    for (size_t i = 0; i < c->naud; i++)
      if (strcmp(c->aud[i], v) == 0) {
        sv_fmt(err, cap, "audience '%.64s' listed twice", v);
        return -1;
      }
    if ((c->aud[c->naud] = strdup(v)) == NULL) goto oom;
    c->naud++;
  } else if (strcmp(k, "scopes") == 0 || strcmp(k, "scope") == 0) {
    if (x->have_scopes++) goto twice;
    char *p = v;
    while (*p) {
      while (*p == ' ') p++;
      if (!*p) break;
      char *e = p;
      while (*e && *e != ' ') e++;
      if (!sv_scope_token_ok(p, (size_t)(e - p))) {
        sv_fmt(err, cap, "scopes: '%.*s' is not a scope token (RFC 6749 §3.3)", (int)(e - p > 64 ? 64 : e - p), p);
        return -1;
      }
      if (c->nscopes >= SV_MAX_SCOPES) {
        sv_fmt(err, cap, "more than %u scopes", SV_MAX_SCOPES);
        return -1;
      }
      int dup = 0;
      for (size_t i = 0; i < c->nscopes; i++)
        if (strlen(c->scopes[i]) == (size_t)(e - p) && memcmp(c->scopes[i], p, (size_t)(e - p)) == 0) dup = 1;
      if (!dup) {
        if ((c->scopes[c->nscopes] = strndup(p, (size_t)(e - p))) == NULL) goto oom;
        c->nscopes++;
      }
      p = e;
    }
  } else if (strcmp(k, "ttl") == 0) {
    if (x->have_ttl++) goto twice;
    if (sv_parse_duration(v, &c->ttl) != 0 || c->ttl < 1 || c->ttl > 366 * 86400LL) {
      sv_fmt(err, cap, "ttl: expected a duration like 15m");
      return -1;
    }
  } else if (strcmp(k, "alg") == 0) {
    if (x->have_alg++) goto twice;
    c->alg = jwtkit_alg_from_name(v, vl);
    jwtkit_kty kty = jwtkit_alg_kty(c->alg);
    if (c->alg == JWTKIT_ALG_UNSPEC || kty == JWTKIT_KTY_OCT) {
      sv_fmt(err, cap, "alg: an asymmetric algorithm (RS*, PS*, ES*, EdDSA)");
      return -1;
    }
  } else if (strcmp(k, "disabled") == 0) {
    if (x->have_disabled++) goto twice;
    if (parse_bool(v, &c->disabled) != 0) {
      sv_fmt(err, cap, "disabled: expected true or false");
      return -1;
    }
  } else {
    sv_fmt(err, cap, "unknown client setting '%.64s' (secret_hash, audience, scopes, ttl, alg, disabled)", k);
    return -1;
  }
  return 0;
twice:
  sv_fmt(err, cap, "%s given twice for client %s", k, c->name);
  return -1;
oom:
  sv_fmt(err, cap, "out of memory");
  return -1;
}

static int cmp_client(const void *a, const void *b) {
  return strcmp(((const sv_client *)a)->name, ((const sv_client *)b)->name);
}

int sv_clients_parse(sv_clients *out, const char *text, size_t len, const char *path, char *err, size_t cap) {
  memset(out, 0, sizeof *out);
  clients_ctx x = {out, 0, NULL, 0, 0, 0, 0, 0, path};
  int rc = each_line_copy(text, len, path, clients_line, &x, err, cap);
  if (rc == 0 && finish_client(&x, err, cap) != 0) {
    char e2[400];
    snprintf(e2, sizeof e2, "%s: %s", path, err);
    sv_fmt(err, cap, "%s", e2);
    rc = -1;
  }
  if (rc == 0 && out->n > 1) {
    qsort(out->v, out->n, sizeof *out->v, cmp_client);
    for (size_t i = 1; i < out->n; i++)
      if (strcmp(out->v[i - 1].name, out->v[i].name) == 0) {
        int l1 = out->v[i - 1].line, l2 = out->v[i].line;
        sv_fmt(err, cap, "%s:%d: client %s is already defined at line %d", path, l1 > l2 ? l1 : l2,
                 out->v[i].name, l1 > l2 ? l2 : l1);
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
  char e2[512];
  memset(out, 0, sizeof *out);
  if (sv_read_secret_file(path, SV_MAX_CLIENTS_FILE, &text, &len, NULL, e2, sizeof e2) != 0) {
    sv_fmt(err, cap, "clients file: %s", e2);
    return -1;
  }
  int rc = sv_clients_parse(out, text, len, path, err, cap);
  jwtkit_free_secret(text, len + 1);
  return rc;
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
