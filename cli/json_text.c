/*
 * JSON for the command line, over the library's strict parser
 * (codec/json.h): member lookup, NumericDates as the verifier reads them,
 * and indented printing.  No second JSON reader: every text is parsed by
 * the one parser, with its limits, before anything is taken from it.
 */
#include <string.h>

#include "cli.h"
#include "codec/json.h"
#include "core/alloc.h"

jwtkit_err cli_json_check_object(const char *json, size_t len) { return jwtkit_json_validate(json, len, 1, NULL); }

jwtkit_err cli_json_check_value(const char *json, size_t len) { return jwtkit_json_validate(json, len, 0, NULL); }

/* The span of a node's text (strings with their quotes). */
static void span(const jk_jdoc *d, uint32_t i, const char **p, size_t *n) {
  const jk_jnode *nd = &d->nodes[i];
  *p = d->src + (nd->type == JK_J_STRING ? nd->off - 1 : nd->off);
  *n = nd->type == JK_J_STRING ? (size_t)nd->len + 2 : nd->len;
}

int cli_json_member(const char *json, size_t len, const char *name, const char **val, size_t *vlen) {
  jk_jdoc d;
  if (jk_json_parse_alloc(&d, json, len, 1, NULL) != JWTKIT_OK) return 0;
  int i = jk_json_get(&d, 0, name, strlen(name));
  if (i >= 0) span(&d, (uint32_t)i, val, vlen);
  jk_free(d.nodes);
  return i >= 0;
}

int cli_json_seconds(const char *json, size_t len, const char *name, int64_t *out) {
  jk_jdoc d;
  if (jk_json_parse_alloc(&d, json, len, 1, NULL) != JWTKIT_OK) return 0;
  int i = jk_json_get(&d, 0, name, strlen(name));
  int64_t fl, ce;
  int ok = i >= 0 && jk_json_seconds(&d, (uint32_t)i, &fl, &ce) == 0;
  if (ok) *out = fl;
  jk_free(d.nodes);
  return ok;
}

static void newline(FILE *f, int indent, int depth) {
  fputc('\n', f);
  for (int k = 0; k < indent * depth; k++) fputc(' ', f);
}

/* Node i and its subtree; returns the index after it. */
static uint32_t pretty(FILE *f, const jk_jdoc *d, uint32_t i, int indent, int depth) {
  const jk_jnode *nd = &d->nodes[i];
  if (nd->type != JK_J_OBJECT && nd->type != JK_J_ARRAY) {
    const char *p;
    size_t n;
    span(d, i, &p, &n);
    fwrite(p, 1, n, f);
    return i + 1;
  }
  int obj = nd->type == JK_J_OBJECT;
  fputc(obj ? '{' : '[', f);
  uint32_t k = i + 1;
  if (k == nd->end) {
    fputc(obj ? '}' : ']', f);
    return k;
  }
  while (k < nd->end) {
    newline(f, indent, depth + 1);
    if (obj) {
      k = pretty(f, d, k, indent, depth + 1); /* the member name */
      fputs(": ", f);
    }
    k = pretty(f, d, k, indent, depth + 1);
    if (k < nd->end) fputc(',', f);
  }
  newline(f, indent, depth);
  fputc(obj ? '}' : ']', f);
  return nd->end;
}

void cli_json_pretty(FILE *f, const char *json, size_t len, int indent) {
  jk_jdoc d;
  if (jk_json_parse_alloc(&d, json, len, 0, NULL) != JWTKIT_OK) {
    fwrite(json, 1, len, f); /* not expected: callers pass validated text */
    return;
  }
  pretty(f, &d, 0, indent, 0);
  jk_free(d.nodes);
}
