/*
 * The configuration file, in the project's one dialect (common/ini.h):
 *
 *   [gate]                    global settings (optional)
 *   key = value
 *   [route NAME]              one per policy, first match wins
 *   key = value
 *   header X-User = sub       claim -> response header
 *
 * The server's own keys (listen, log_level, threads, connection_limit,
 * idle_timeout, header_timeout) are read here; every other key is the
 * gateway core's (gw_config_set, gw_route_set), which checks it.  Every
 * error is FILE:LINE: what is wrong.  No side effects: keys are loaded
 * when the state is built.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/file.h"
#include "common/ini.h"
#include "core/alloc.h"
#include "gate_internal.h"

enum { IN_NONE, IN_GATE, IN_ROUTE };

typedef struct parser {
  gate_config *c;
  int where;
  size_t route; /* IN_ROUTE: index in c->core->routes */
  int gate_seen;
} parser;

static int ferr(char *err, size_t cap, const char *fmt, ...) JK_PRINTF(3, 4);
static int ferr(char *err, size_t cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, cap, fmt, ap);
  va_end(ap);
  return -1;
}

void gate_config_free(gate_config *c) {
  if (c == NULL) return;
  gw_config_free(c->core);
  free(c->path);
  free(c);
}

static int duration_s(const char *k, const char *v, int64_t lo, int64_t hi, unsigned *out, char *err, size_t cap) {
  int64_t d;
  if (jk_parse_duration(v, &d) != 0 || d < lo || d > hi)
    return ferr(err, cap, "'%s': bad duration \"%s\" (%s; %lld..%lld s)", k, v, JK_DURATION_HELP, (long long)lo,
                (long long)hi);
  *out = (unsigned)d;
  return 0;
}

static int whole(const char *k, const char *v, uint64_t lo, uint64_t hi, unsigned *out, char *err, size_t cap) {
  uint64_t u;
  if (jk_parse_u64(v, lo, hi, &u) != 0)
    return ferr(err, cap, "'%s': expected a whole number in %llu..%llu, got \"%s\"", k, (unsigned long long)lo,
                (unsigned long long)hi, v);
  *out = (unsigned)u;
  return 0;
}

static const char *const k_server[] = {"listen", "log_level", "threads", "connection_limit", "idle_timeout",
                                       "header_timeout", NULL};

/* A [gate] key: the server's own, else the core's. */
static int gate_key(gate_config *c, const char *k, const char *v, char *err, size_t cap) {
  int idx = -1;
  for (int i = 0; k_server[i]; i++)
    if (strcmp(k_server[i], k) == 0) idx = i;
  if (idx < 0) {
    int r = gw_config_set(c->core, k, v, err, cap);
    return r == 1 ? ferr(err, cap, "unknown key '%s' in [gate]", k) : r;
  }
  if (c->seen & (1u << idx)) return ferr(err, cap, "'%s' given twice", k);
  c->seen |= 1u << idx;
  const char *why = NULL;
  switch (idx) {
    case 0:
      if (jk_parse_listen(v, 0, &c->listen, &why) != 0)
        return ferr(err, cap, "'listen': %s: \"%s\" (%s)", why, v, JK_LISTEN_HELP);
      c->has_listen = 1;
      return 0;
    case 1:
      if (jk_log_parse_level(v, &c->log_level) != 0)
        return ferr(err, cap, "'log_level': expected debug, info, warn or error, got \"%s\"", v);
      c->has_log_level = 1;
      return 0;
    case 2:
      return whole(k, v, 1, 256, &c->threads, err, cap);
    case 3:
      return whole(k, v, 16, 65536, &c->connection_limit, err, cap);
    case 4:
      return duration_s(k, v, 1, 3600, &c->idle_timeout, err, cap);
    default:
      return duration_s(k, v, 1, 300, &c->header_timeout, err, cap);
  }
}

static int section(parser *p, const jk_ini_item *it, char *err, size_t cap) {
  if (strcmp(it->section, "gate") == 0) {
    if (it->name != NULL) return ferr(err, cap, "[gate] takes no name");
    if (p->gate_seen) return ferr(err, cap, "[gate] given twice");
    p->gate_seen = 1;
    p->where = IN_GATE;
    return 0;
  }
  if (strcmp(it->section, "route") != 0)
    return ferr(err, cap, "unknown section [%s] (expected [gate] or [route NAME])", it->section);
  if (gw_config_add_route(p->c->core, it->name ? it->name : "", it->line, err, cap) == NULL) return -1;
  p->where = IN_ROUTE;
  p->route = p->c->core->nroutes - 1;
  return 0;
}

static int on_item(void *ctx, const jk_ini_item *it, char *err, size_t cap) {
  parser *p = ctx;
  if (it->key == NULL) return section(p, it, err, cap);
  switch (p->where) {
    case IN_GATE:
      return gate_key(p->c, it->key, it->value, err, cap);
    case IN_ROUTE:
      return gw_route_set(&p->c->core->routes[p->route], it->key, it->value, err, cap);
    default:
      return ferr(err, cap, "'%s' outside a section ([gate] or [route NAME])", it->key);
  }
}

int gate_config_parse(const char *name, const char *text, size_t len, gate_config **out, char *err, size_t cap) {
  *out = NULL;
  gate_config *c = calloc(1, sizeof *c);
  if (c == NULL || (c->core = gw_config_new()) == NULL || (c->path = strdup(name)) == NULL) {
    gate_config_free(c);
    snprintf(err, cap, "%s: out of memory", name);
    return -1;
  }
  c->connection_limit = 1024;
  c->idle_timeout = 120;
  c->header_timeout = 5;
  parser p = {.c = c};
  if (jk_ini_parse(name, text, len, on_item, &p, err, cap) != 0) {
    gate_config_free(c);
    return -1;
  }
  int line = 0;
  char why[512];
  if (gw_config_check(c->core, &line, why, sizeof why) != 0) {
    if (line > 0)
      snprintf(err, cap, "%s:%d: %s", name, line, why);
    else
      snprintf(err, cap, "%s: %s", name, why);
    gate_config_free(c);
    return -1;
  }
  *out = c;
  return 0;
}

int gate_config_load(const char *path, gate_config **out, char *err, size_t cap) {
  char *text = NULL;
  size_t len = 0;
  jwtkit_errinfo info = {0};
  *out = NULL;
  if (jk_read_file(path, GATE_MAX_CONFIG, &text, &len, &info) != JWTKIT_OK) {
    snprintf(err, cap, "%s", info.msg);
    return -1;
  }
  int rc = gate_config_parse(path, text, len, out, err, cap);
  jk_free(text);
  return rc;
}
