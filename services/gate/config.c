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

void gate_config_free(gate_config *c) {
  if (c == NULL) return;
  gw_config_free(c->core);
  free(c->path);
  free(c);
}

static const char *const k_server[] = {"listen", "log_level", "threads", "connection_limit", "idle_timeout",
                                       "header_timeout", NULL};

const char *const *gate_server_keys(void) { return k_server; }

/* A [gate] key: the server's own, else the core's. */
static int gate_key(gate_config *c, const char *k, const char *v, char *err, size_t cap) {
  int idx = -1;
  for (int i = 0; k_server[i]; i++)
    if (strcmp(k_server[i], k) == 0) idx = i;
  int r = 0;
  if (idx < 0) {
    if ((r = gw_config_set(c->core, k, v, err, cap)) == 1) snprintf(err, cap, "unknown key '%s' in [gate]", k);
    return r == 0 ? 0 : -1;
  }
  if (c->seen & (1u << idx)) {
    snprintf(err, cap, "'%s' given twice", k);
    return -1;
  }
  c->seen |= 1u << idx;
  const char *why = NULL;
  uint64_t u = 0;
  int64_t d = 0;
  unsigned *dst = NULL;
  switch (idx) {
    case 0:
      if ((r = jk_parse_listen(v, 0, &c->listen, &why)) != 0)
        snprintf(err, cap, "'listen': %s: \"%s\" (%s)", why, v, JK_LISTEN_HELP);
      c->has_listen = r == 0;
      return r;
    case 1:
      if ((r = jk_log_parse_level(v, &c->log_level)) != 0)
        snprintf(err, cap, "'log_level': expected debug, info, warn or error, got \"%s\"", v);
      c->has_log_level = r == 0;
      return r;
    case 2:
      dst = &c->threads;
      r = gw_value_whole(k, v, 1, 256, &u, err, cap);
      break;
    case 3:
      dst = &c->connection_limit;
      r = gw_value_whole(k, v, 16, 65536, &u, err, cap);
      break;
    case 4:
      dst = &c->idle_timeout;
      r = gw_value_duration(k, v, 1, 3600, &d, err, cap);
      u = (uint64_t)d;
      break;
    default:
      dst = &c->header_timeout;
      r = gw_value_duration(k, v, 1, 300, &d, err, cap);
      u = (uint64_t)d;
  }
  if (r == 0) *dst = (unsigned)u; /* each range fits */
  return r;
}

static int section(parser *p, const jk_ini_item *it, char *err, size_t cap) {
  if (strcmp(it->section, "gate") == 0) {
    if (it->name != NULL || p->gate_seen) {
      snprintf(err, cap, "%s", it->name != NULL ? "[gate] takes no name" : "[gate] given twice");
      return -1;
    }
    p->gate_seen = 1;
    p->where = IN_GATE;
    return 0;
  }
  if (strcmp(it->section, "route") != 0) {
    snprintf(err, cap, "unknown section [%s] (expected [gate] or [route NAME])", it->section);
    return -1;
  }
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
      snprintf(err, cap, "'%s' outside a section ([gate] or [route NAME])", it->key);
      return -1;
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
