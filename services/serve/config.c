/* Settings: the defaults, one option at a time (a config-file key or a
 * command-line option), the config file in the project's dialect
 * (common/ini.h: `key = value`, `#` and `;` comment lines, ` #` comments
 * after a value, quoted values), layers and the checks across options.
 * Every value is checked when it is given, so an error names the file and
 * line (or the option) that gave it. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "common/file.h"
#include "common/ini.h"
#include "common/parse.h"
#include "core/alloc.h"
#include "serve.h"

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
  s->leeway = t.leeway;
  s->publish_ahead = t.publish_ahead;
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
  s->client_jwks_min_ttl = 30;
  s->client_jwks_stale_max = 86400;
  s->log_level = JK_LOG_INFO;
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
  uint64_t n;
  if (jk_parse_u64(num, 0, 1000000, &n) != 0) return -1;
  int64_t per;
  if (strcmp(slash + 1, "s") == 0) per = 1;
  else if (strcmp(slash + 1, "m") == 0) per = 60;
  else if (strcmp(slash + 1, "h") == 0) per = 3600;
  else return -1;
  out->count = (long long)n;
  out->per = n == 0 ? 1 : per;
  return 0;
}

int sv_issuer_ok(const char *s, char *err, size_t cap) {
  const char *rest;
  if (strncmp(s, "https://", 8) == 0) rest = s + 8;
  else if (strncmp(s, "http://", 7) == 0) rest = s + 7;
  else {
    snprintf(err, cap, "issuer: must be an http:// or https:// URL");
    return -1;
  }
  if (strlen(s) > 500) {
    snprintf(err, cap, "issuer: longer than 500 bytes");
    return -1;
  }
  size_t hostlen = strcspn(rest, "/");
  if (hostlen == 0) {
    snprintf(err, cap, "issuer: no host");
    return -1;
  }
  for (const char *p = s; *p; p++) {
    unsigned char c = (unsigned char)*p;
    if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>') {
      snprintf(err, cap, "issuer: characters outside printable ASCII, quotes or spaces");
      return -1;
    }
  }
  if (strchr(s, '?') || strchr(s, '#') || memchr(rest, '@', hostlen)) {
    snprintf(err, cap, "issuer: no query, fragment or user info (RFC 8414 §2)");
    return -1;
  }
  return 0;
}

typedef enum { K_STR, K_LISTEN, K_ISSUER, K_DUR, K_INT, K_ALG, K_LEVEL, K_BOOL, K_RATE } kind;

typedef struct opt_def {
  const char *name;
  kind k;
  size_t off, size;
  uint32_t bit;
  long long lo, hi; /* K_DUR / K_INT range */
} opt_def;

#define F(m) offsetof(sv_settings, m), sizeof(((sv_settings *)0)->m)
static const opt_def k_opts[] = {
    {"listen", K_LISTEN, F(listen), SV_SET_LISTEN, 0, 0},
    {"issuer", K_ISSUER, F(issuer), SV_SET_ISSUER, 0, 0},
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
    {"leeway", K_DUR, F(leeway), SV_SET_LEEWAY, 0, 300},
    {"publish_ahead", K_DUR, F(publish_ahead), SV_SET_PUBLISH_AHEAD, 1, 10 * 366 * 86400LL},
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
    {"client_jwks_min_ttl", K_DUR, F(client_jwks_min_ttl), SV_SET_CLIENT_JWKS_MIN_TTL, 1, 3600},
    {"client_jwks_stale_max", K_DUR, F(client_jwks_stale_max), SV_SET_CLIENT_JWKS_STALE_MAX, 0, 30 * 86400LL},
    {"log_level", K_LEVEL, F(log_level), SV_SET_LOGLEVEL, 0, 0},
    {"demo", K_BOOL, F(demo), SV_SET_DEMO, 0, 0},
};
#undef F

static int bit_index(uint32_t bit) {
  int i = 0;
  while (i < SV_SET_BITS && bit != (1u << i)) i++;
  return i < SV_SET_BITS ? i : 0;
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
      snprintf(err, cap, "unknown algorithm '%.*s' (RS256..RS512, PS256..PS512, ES256..ES512, EdDSA)",
               (int)(e - p > 32 ? 32 : e - p), p);
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
        snprintf(err, cap, "algorithm %s named twice", jwtkit_alg_name(a));
        return -1;
      }
    if (s->nalgs >= SV_MAX_ALGS) {
      snprintf(err, cap, "at most %u algorithms", SV_MAX_ALGS);
      return -1;
    }
    s->algs[s->nalgs++] = a;
    any = 1;
    p = e;
  }
  if (!any) {
    snprintf(err, cap, "no algorithm named");
    return -1;
  }
  return 0;
}

/* A string value: not empty, no control character, fits the field. */
static int put_str(const opt_def *d, char *field, const char *value, char *err, size_t cap) {
  size_t n = strlen(value);
  if (n == 0) {
    snprintf(err, cap, "%s: empty value", d->name);
    return -1;
  }
  if (n >= d->size) {
    snprintf(err, cap, "%s: value longer than %zu bytes", d->name, d->size - 1);
    return -1;
  }
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)value[i] < 0x20 || value[i] == 0x7f) {
      snprintf(err, cap, "%s: control character in value", d->name);
      return -1;
    }
  memcpy(field, value, n + 1);
  return 0;
}

static int set_value(sv_settings *s, const opt_def *d, const char *value, char *err, size_t cap) {
  char *field = (char *)s + d->off;
  switch (d->k) {
    case K_STR:
      return put_str(d, field, value, err, cap);
    case K_LISTEN: {
      jk_listen l;
      const char *why = NULL;
      if (jk_parse_listen(value, 0, &l, &why) != 0) {
        snprintf(err, cap, "%s: %s ('%.64s'; expected %s)", d->name, why, value, JK_LISTEN_HELP);
        return -1;
      }
      return put_str(d, field, value, err, cap);
    }
    case K_ISSUER:
      if (sv_issuer_ok(value, err, cap) != 0) return -1;
      return put_str(d, field, value, err, cap);
    case K_DUR: {
      int64_t v;
      if (jk_parse_duration(value, &v) != 0 || v < d->lo || v > d->hi) {
        snprintf(err, cap, "%s: '%.32s' is not a duration from %llds to %llds; expected %s", d->name, value, d->lo, d->hi,
                 JK_DURATION_HELP);
        return -1;
      }
      *(int64_t *)field = v;
      return 0;
    }
    case K_INT: {
      int64_t v;
      if (jk_parse_i64(value, d->lo, d->hi, &v) != 0) {
        snprintf(err, cap, "%s: '%.32s' is not an integer in %lld..%lld", d->name, value, d->lo, d->hi);
        return -1;
      }
      *(long long *)field = v;
      return 0;
    }
    case K_ALG: {
      if (!(s->set & SV_SET_ALGS)) s->nalgs = 0; /* the first alg line of a layer replaces the default */
      char e2[200];
      if (add_algs(s, value, e2, sizeof e2) != 0) {
        snprintf(err, cap, "%s: %s", d->name, e2);
        return -1;
      }
      return 0;
    }
    case K_LEVEL:
      if (jk_log_parse_level(value, &s->log_level) != 0) {
        snprintf(err, cap, "%s: '%.32s' is not debug, info, warn or error", d->name, value);
        return -1;
      }
      return 0;
    case K_RATE: {
      sv_rate r;
      if (sv_parse_rate(value, &r) != 0) {
        snprintf(err, cap, "%s: '%.32s' is not a rate like 20/s, 600/m or 100/h (at most 1000000), or off", d->name,
                 value);
        return -1;
      }
      memcpy(field, &r, sizeof r);
      return 0;
    }
    case K_BOOL:
      if (jk_parse_bool(value, (int *)field) != 0) {
        snprintf(err, cap, "%s: '%.32s' is not %s", d->name, value, JK_BOOL_HELP);
        return -1;
      }
      return 0;
  }
  return -1;
}

int sv_settings_set(sv_settings *s, const char *key, const char *value, int line, char *err, size_t cap) {
  const opt_def *d = NULL;
  for (size_t i = 0; i < sizeof k_opts / sizeof k_opts[0]; i++)
    if (strcmp(k_opts[i].name, key) == 0) d = &k_opts[i];
  if (d == NULL) {
    snprintf(err, cap, "unknown option '%.64s'", key);
    return -1;
  }
  if (set_value(s, d, value, err, cap) != 0) return -1;
  s->set |= d->bit;
  s->line[bit_index(d->bit)] = line;
  return 0;
}

static int settings_item(void *ctx, const jk_ini_item *it, char *err, size_t cap) {
  if (it->key == NULL) {
    snprintf(err, cap, "sections are not used in the config file (clients go in the clients file)");
    return -1;
  }
  if (strcmp(it->key, "demo") == 0 || strcmp(it->key, "config") == 0) {
    snprintf(err, cap, "'%s' is a command-line option only", it->key);
    return -1;
  }
  return sv_settings_set(ctx, it->key, it->value, it->line, err, cap);
}

int sv_settings_parse(sv_settings *s, const char *text, size_t len, const char *path, char *err, size_t cap) {
  snprintf(s->config, sizeof s->config, "%s", path); /* named in the checks across options */
  return jk_ini_parse(path, text, len, settings_item, s, err, cap);
}

int sv_settings_load(sv_settings *s, const char *path, char *err, size_t cap) {
  char *text = NULL;
  size_t len = 0;
  jwtkit_errinfo ei;
  memset(&ei, 0, sizeof ei);
  jwtkit_err rc = jk_read_file(path, SV_MAX_CONFIG, &text, &len, &ei);
  if (rc != JWTKIT_OK) {
    snprintf(err, cap, "config file: %s", ei.msg[0] ? ei.msg : jwtkit_strerror(rc));
    return -1;
  }
  int r = sv_settings_parse(s, text, len, path, err, cap);
  jk_free(text);
  return r;
}

void sv_settings_overlay(sv_settings *dst, const sv_settings *src) {
#define OV(bit, field)                                    \
  if (src->set & (bit)) memcpy(&dst->field, &src->field, sizeof dst->field)
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
  OV(SV_SET_LEEWAY, leeway);
  OV(SV_SET_PUBLISH_AHEAD, publish_ahead);
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
  OV(SV_SET_CLIENT_JWKS_MIN_TTL, client_jwks_min_ttl);
  OV(SV_SET_CLIENT_JWKS_STALE_MAX, client_jwks_stale_max);
  OV(SV_SET_LOGLEVEL, log_level);
  OV(SV_SET_DEMO, demo);
#undef OV
  if (src->set & SV_SET_ALGS) {
    memcpy(dst->algs, src->algs, sizeof dst->algs);
    dst->nalgs = src->nalgs;
  }
  for (int i = 0; i < SV_SET_BITS; i++)
    if (src->set & (1u << i)) dst->line[i] = src->line[i];
  if (src->config[0] != '\0') memcpy(dst->config, src->config, sizeof dst->config);
  dst->set |= src->set;
}

void sv_settings_origin(const sv_settings *s, uint32_t bit, const char *name, char *out, size_t cap) {
  int line = s->line[bit_index(bit)];
  if (!(s->set & bit)) {
    snprintf(out, cap, "%s", "");
  } else if (line > 0) {
    snprintf(out, cap, "%s:%d", s->config, line);
  } else {
    snprintf(out, cap, "--%s", name);
    for (char *p = out + 2; *p; p++)
      if (*p == '_') *p = '-';
  }
}

/* Two options of which one may be given. */
static int one_of(const sv_settings *s, uint32_t a, const char *an, uint32_t b, const char *bn, char *err, size_t cap) {
  if (!((s->set & a) && (s->set & b))) return 0;
  char wa[SV_PATH_MAX + 16], wb[SV_PATH_MAX + 16];
  sv_settings_origin(s, a, an, wa, sizeof wa);
  sv_settings_origin(s, b, bn, wb, sizeof wb);
  snprintf(err, cap, "%s: %s: give %s (%s) or %s, not both", wb, bn, an, wa, bn);
  return -1;
}

/* The timing options, as the keyring will hold them, checked by the
 * keyring's own rules (its message names the rule and the values); the
 * error starts where the options involved were given. */
static int check_timing(const sv_settings *s, char *err, size_t cap) {
  jwtkit_keyring_timing t;
  jwtkit_keyring_timing_default(&t);
  t.max_age = s->max_age;
  t.token_ttl = s->token_ttl;
  t.leeway = s->leeway;
  t.rotate_every = s->rotate_every;
  t.publish_ahead = s->publish_ahead;
  jwtkit_errinfo ei;
  memset(&ei, 0, sizeof ei);
  if (jwtkit_keyring_timing_check(&t, &ei) == JWTKIT_OK) return 0;
  static const struct {
    uint32_t bit;
    const char *name;
  } k_timing[] = {{SV_SET_PUBLISH_AHEAD, "publish_ahead"}, {SV_SET_ROTATE_EVERY, "rotate_every"},
                  {SV_SET_MAX_AGE, "max_age"},             {SV_SET_LEEWAY, "leeway"},
                  {SV_SET_TOKEN_TTL, "token_ttl"}};
  char where[1200] = "", first[SV_PATH_MAX + 16] = "";
  for (size_t i = 0; i < sizeof k_timing / sizeof k_timing[0]; i++) {
    if (!(s->set & k_timing[i].bit)) continue;
    char o[SV_PATH_MAX + 16];
    sv_settings_origin(s, k_timing[i].bit, k_timing[i].name, o, sizeof o);
    if (first[0] == '\0') snprintf(first, sizeof first, "%s", o);
    size_t l = strlen(where);
    snprintf(where + l, sizeof where - l, "%s%s at %s", l ? ", " : "", k_timing[i].name, o);
  }
  snprintf(err, cap, "%.300s%stiming: %.400s (the keyring's rule; %s%.400s)", first, first[0] ? ": " : "", ei.msg,
           where[0] ? "given: " : "every value is its default", where);
  return -1;
}

int sv_settings_finish(sv_settings *s, char *err, size_t cap) {
  if (!(s->set & SV_SET_ISSUER) && jwtkit_keyring_location_is_postgres(s->keyring)) {
    /* replicas of one keyring would each mint the iss of their own listen
     * address: verifiers pinning one issuer would refuse the others' */
    char w[SV_PATH_MAX + 16];
    sv_settings_origin(s, SV_SET_KEYRING, "keyring", w, sizeof w);
    snprintf(err, cap,
             "%s%sissuer: required with a PostgreSQL keyring, which replicas share: without it each replica would "
             "mint the iss of its own listen address; set the one URL every replica answers for, e.g. "
             "`issuer = https://auth.example` (or --issuer https://auth.example)",
             w, w[0] ? ": " : "");
    return -1;
  }
  if (!(s->set & SV_SET_ISSUER)) {
    snprintf(s->issuer, sizeof s->issuer, "http://%s", s->listen);
    char e2[256], w[SV_PATH_MAX + 16];
    if (sv_issuer_ok(s->issuer, e2, sizeof e2) != 0) { /* not expected: listen was checked */
      sv_settings_origin(s, SV_SET_LISTEN, "listen", w, sizeof w);
      snprintf(err, cap, "%s: listen: the default %s", w, e2);
      return -1;
    }
  }
  if (one_of(s, SV_SET_PASSFILE, "passphrase_file", SV_SET_PASSENV, "passphrase_env", err, cap) != 0 ||
      one_of(s, SV_SET_KEKFILE, "kek_file", SV_SET_KEKENV, "kek_env", err, cap) != 0)
    return -1;
  if (check_timing(s, err, cap) != 0) return -1;
  uint32_t kek = s->set & (SV_SET_KEKFILE | SV_SET_KEKENV);
  if (kek && !jwtkit_keyring_location_is_postgres(s->keyring)) {
    char w[SV_PATH_MAX + 16];
    const char *name = (kek & SV_SET_KEKFILE) ? "kek_file" : "kek_env";
    sv_settings_origin(s, (kek & SV_SET_KEKFILE) ? SV_SET_KEKFILE : SV_SET_KEKENV, name, w, sizeof w);
    snprintf(err, cap, "%s: %s applies to a PostgreSQL keyring (keyring = postgres://...), and the keyring is %.200s",
             w, name, s->keyring);
    return -1;
  }
  return 0;
}

int sv_settings_clients_in_pg(const sv_settings *s) {
  /* --demo writes and reads its clients file wherever its keyring is */
  return jwtkit_keyring_location_is_postgres(s->keyring) && !(s->set & SV_SET_CLIENTS) && !s->demo;
}
